/* e2e_sim_mosyle.c - the simulator's Mosyle endpoints beyond /listdevices
 * over HTTP: each endpoint's pages, end of list and variants, exactly the
 * records simdata computes, references between them, the admin log date
 * filter, JWT expiry, faults on the new endpoints and the stats. */
#include "test.h"
#include "e2e.h"
#include "simdata.h"
#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <yajl/yajl_tree.h>

#define SEED 1 /* the simulator's default */
#define TOKEN_BODY "\"accessToken\":\"" E2E_TOKEN "\""
#define UNAUTHORIZED "{\"status\":\"error\",\"message\":\"Unauthorized\"}"

struct answer {
	long status;
	struct buf body;
	char authorization[1024]; /* the Authorization response header's value */
};

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	buf_append(&((struct answer *)userdata)->body, p, size * n);
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	struct answer *a = userdata;
	static const char name[] = "Authorization:";
	size_t len = size * n;
	if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		size_t from = sizeof(name) - 1, to = len;
		while (from < to && p[from] == ' ')
			from++;
		while (to > from && (p[to - 1] == '\r' || p[to - 1] == '\n'))
			to--;
		snprintf(a->authorization, sizeof(a->authorization), "%.*s", (int)(to - from),
			 p + from);
	}
	return len;
}

/* POST body to /v2/PATH with "Authorization: Bearer jwt" (none if NULL). */
static CURLcode post_raw(const struct e2e_sim *sim, const char *path, const char *jwt,
			 const char *body, struct answer *a)
{
	char url[256];
	struct buf header = BUF_INIT;
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *curl = curl_easy_init();
	CURLcode rc;

	memset(a, 0, sizeof(*a));
	buf_init(&a->body);
	ASSERT(curl);
	snprintf(url, sizeof(url), "%s/%s", sim->base_url, path);
	if (jwt) {
		buf_printf(&header, "Authorization: Bearer %s", jwt);
		headers = curl_slist_append(headers, header.data);
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	buf_free(&header);
	return rc;
}

static void post(const struct e2e_sim *sim, const char *path, const char *jwt, const char *body,
		 struct answer *a)
{
	CURLcode rc = post_raw(sim, path, jwt, body, a);
	if (rc != CURLE_OK)
		test_fail(__FILE__, __LINE__, "POST %s: %s", path, curl_easy_strerror(rc));
}

static void answer_free(struct answer *a)
{
	buf_free(&a->body);
}

/* POST a login with the right credentials, whatever the answer. */
static void login_raw(const struct e2e_sim *sim, struct answer *a)
{
	post(sim, "login", NULL,
	     "{" TOKEN_BODY ",\"email\":\"" E2E_EMAIL "\",\"password\":\"" E2E_PASSWORD "\"}", a);
}

/* Log in; the JWT into jwt. */
static void login(const struct e2e_sim *sim, char *jwt, size_t size)
{
	struct answer a;
	login_raw(sim, &a);
	ASSERT_EQ_INT(a.status, 200);
	ASSERT(strncmp(a.authorization, "Bearer ", 7) == 0);
	snprintf(jwt, size, "%s", a.authorization + 7);
	answer_free(&a);
}

/* POST with a body built from fmt (the accessToken is added first), 200
 * expected; the answer parsed. */
static yajl_val call(const struct e2e_sim *sim, const char *jwt, const char *path,
		     struct answer *a, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static yajl_val call(const struct e2e_sim *sim, const char *jwt, const char *path,
		     struct answer *a, const char *fmt, ...)
{
	struct buf body = BUF_INIT;
	char err[256];
	va_list ap;

	buf_puts(&body, "{" TOKEN_BODY);
	va_start(ap, fmt);
	buf_vprintf(&body, fmt, ap);
	va_end(ap);
	buf_putc(&body, '}');
	post(sim, path, jwt, body.data, a);
	if (a->status != 200)
		test_fail(__FILE__, __LINE__, "POST %s %s: HTTP %ld %s", path, body.data, a->status,
			  buf_str(&a->body));
	yajl_val v = yajl_tree_parse(buf_str(&a->body), err, sizeof(err));
	if (!v)
		test_fail(__FILE__, __LINE__, "POST %s %s: not JSON (%s): %.300s", path, body.data,
			  err, buf_str(&a->body));
	buf_free(&body);
	return v;
}

static yajl_val at(yajl_val v, const char *k1, const char *k2, const char *k3)
{
	const char *path[] = {k1, k2, k3, NULL};
	return yajl_tree_get(v, path, yajl_t_any);
}

static const char *str_at(yajl_val v, const char *k1, const char *k2)
{
	yajl_val s = at(v, k1, k2, NULL);
	return YAJL_IS_STRING(s) ? YAJL_GET_STRING(s) : NULL;
}

/* The array at v.k1.k2 (the one element of v.k1 when that is an array). */
static yajl_val list_at(yajl_val v, const char *k1, const char *k2)
{
	yajl_val outer = at(v, k1, NULL, NULL);
	if (YAJL_IS_ARRAY(outer) && outer->u.array.len == 1)
		v = outer->u.array.values[0];
	else
		v = outer;
	yajl_val list = at(v, k2, NULL, NULL);
	if (!YAJL_IS_ARRAY(list))
		test_fail(__FILE__, __LINE__, "no array %s.%s", k1, k2);
	return list;
}

static const char *item_str(yajl_val item, const char *key)
{
	yajl_val s = at(item, key, NULL, NULL);
	return YAJL_IS_STRING(s) ? YAJL_GET_STRING(s) : NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A sorted set of strings. */
struct strset {
	char **items;
	size_t n, cap;
};

static void strset_add(struct strset *s, const char *v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->items = realloc(s->items, s->cap * sizeof(char *));
		ASSERT(s->items);
	}
	s->items[s->n++] = strdup(v);
}

static void strset_sort(struct strset *s)
{
	qsort(s->items, s->n, sizeof(char *), cmp_str);
	for (size_t k = 1; k < s->n; k++)
		if (strcmp(s->items[k - 1], s->items[k]) == 0)
			test_fail(__FILE__, __LINE__, "\"%s\" repeats", s->items[k]);
}

static bool strset_has(const struct strset *s, const char *v)
{
	return v && bsearch(&v, s->items, s->n, sizeof(char *), cmp_str) != NULL;
}

static void strset_free(struct strset *s)
{
	for (size_t k = 0; k < s->n; k++)
		free(s->items[k]);
	free(s->items);
}

/* The options a simulator started with args has, to compute what it serves. */
static struct simdata_options district(uint64_t devices, uint64_t users, uint64_t classes,
				       uint64_t groups, uint64_t admin_logs)
{
	struct simdata_options opt = {.seed = SEED, .users = users, .classes = classes,
				      .groups = groups, .admin_logs = admin_logs};
	for (int os = 0; os < SIMDATA_NOS; os++)
		opt.devices[os] = devices;
	return opt;
}

/* ------------------------------------------------------------------ */

/* Page through /listusers with page_size 200: exactly the users simdata
 * computes, byte for byte, then "users":[] with the total still there. */
TEST(e2e_sim_mosyle_users_pages)
{
	struct simdata_options opt = district(300, 1234, 100, 20, 1000);
	struct e2e_sim sim;
	struct answer a;
	char jwt[1024];
	uint64_t next = 0;

	e2e_sim_start(&sim, "--devices 300 --users 1234");
	login(&sim, jwt, sizeof(jwt));
	for (int page = 1;; page++) {
		struct buf want = BUF_INIT;
		yajl_val v = call(&sim, jwt, "listusers", &a,
				  ",\"options\":{\"page\":%d,\"page_size\":\"200\"}", page);
		/* the whole body, as simdata renders it */
		uint64_t end = next + 200 < opt.users ? next + 200 : opt.users;
		buf_puts(&want, "{\"status\":\"OK\",\"response\":{\"users\":[");
		for (uint64_t u = next; u < end; u++) {
			struct simdata_user user;
			if (u != next)
				buf_putc(&want, ',');
			simdata_user(&opt, u, &user);
			simdata_user_json(&user, false, &want);
		}
		buf_printf(&want, "],\"total\":\"1234\",\"page_size\":\"200\",\"page\":\"%d\"}}", page);
		ASSERT_EQ_STR(buf_str(&a.body), want.data);
		size_t n = list_at(v, "response", "users")->u.array.len;
		buf_free(&want);
		yajl_tree_free(v);
		answer_free(&a);
		if (n == 0)
			break;
		next += n;
		ASSERT(page < 20);
	}
	ASSERT_EQ_INT(next, 1234);

	/* page 0 is page 1; the default size is 500; sizes over 1000 are 1000 */
	yajl_val v = call(&sim, jwt, "listusers", &a, ",\"options\":{\"page\":0}");
	ASSERT_EQ_INT(list_at(v, "response", "users")->u.array.len, 500);
	ASSERT_EQ_STR(item_str(list_at(v, "response", "users")->u.array.values[0], "id"),
		      "adm-100000");
	ASSERT_EQ_STR(str_at(v, "response", "page_size"), "500");
	yajl_tree_free(v);
	answer_free(&a);
	v = call(&sim, jwt, "listusers", &a, ",\"options\":{\"page\":1,\"page_size\":5000}");
	ASSERT_EQ_INT(list_at(v, "response", "users")->u.array.len, 1000);
	ASSERT_EQ_STR(str_at(v, "response", "page_size"), "1000");
	yajl_tree_free(v);
	answer_free(&a);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "listusers"), 10);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_mosyle_users_variants)
{
	struct e2e_sim sim;
	struct answer a;
	char jwt[1024];
	yajl_val v, users;

	e2e_sim_start(&sim, "--devices 100 --users-end notfound --users-no-total "
			    "--user-locations strings");
	login(&sim, jwt, sizeof(jwt));
	v = call(&sim, jwt, "listusers", &a, ",\"options\":{\"page\":1}");
	users = list_at(v, "response", "users");
	ASSERT_EQ_INT(users->u.array.len, 100); /* --users defaults to the devices */
	ASSERT(at(v, "response", "total", NULL) == NULL);
	ASSERT_EQ_STR(str_at(v, "response", "page"), "1");
	yajl_val loc = at(users->u.array.values[3], "locations", NULL, NULL);
	ASSERT(YAJL_IS_ARRAY(loc) && YAJL_IS_STRING(loc->u.array.values[0]));
	yajl_tree_free(v);
	answer_free(&a);
	v = call(&sim, jwt, "listusers", &a, ",\"options\":{\"page\":2}");
	ASSERT_EQ_STR(buf_str(&a.body), "{\"status\":\"OK\",\"response\":{\"status\":"
					"\"USERS_NOTFOUND\",\"info\":\"No users found\"}}");
	yajl_tree_free(v);
	answer_free(&a);
	e2e_sim_stop_clean(&sim);

	/* --users 0 would leave the devices' users unserved */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' --users 0 --devices 10 >/dev/null 2>&1", getenv("INVSYNC_SIM"));
	ASSERT_EQ_INT(WEXITSTATUS(system(cmd)), 2);
}

/* Every user a device names (through /listdevices) is one /listusers
 * serves, with the same name, email and type; with fewer users than
 * devices, the devices past them name none. */
TEST(e2e_sim_mosyle_device_users_are_served)
{
	struct e2e_sim sim;
	struct answer a;
	char jwt[1024];
	struct strset users = {0}, records = {0};
	unsigned with_user = 0;

	e2e_sim_start(&sim, "--devices 150 --users 120");
	login(&sim, jwt, sizeof(jwt));
	yajl_val v = call(&sim, jwt, "listusers", &a, ",\"options\":{\"page\":1}");
	yajl_val list = list_at(v, "response", "users");
	ASSERT_EQ_INT(list->u.array.len, 120);
	for (size_t k = 0; k < list->u.array.len; k++) {
		yajl_val u = list->u.array.values[k];
		struct buf rec = BUF_INIT;
		strset_add(&users, item_str(u, "id"));
		buf_printf(&rec, "%s|%s|%s|%s", item_str(u, "id"), item_str(u, "name"),
			   item_str(u, "email"), item_str(u, "type"));
		strset_add(&records, rec.data);
		buf_free(&rec);
	}
	strset_sort(&users);
	strset_sort(&records);
	yajl_tree_free(v);
	answer_free(&a);

	for (int os = 0; os < SIMDATA_NOS; os++) {
		for (int page = 1; page <= 2; page++) {
			v = call(&sim, jwt, "listdevices", &a, ",\"options\":{\"os\":\"%s\",\"page\":%d}",
				 simdata_os_name((enum simdata_os)os), page);
			list = list_at(v, "response", "devices");
			for (size_t k = 0; k < list->u.array.len; k++) {
				yajl_val d = list->u.array.values[k];
				size_t index = (size_t)(page - 1) * 100 + k;
				const char *userid = item_str(d, "userid");
				ASSERT_EQ_INT(userid != NULL, index % 5 != 0 && index < 120);
				if (!userid)
					continue;
				struct buf rec = BUF_INIT;
				buf_printf(&rec, "%s|%s|%s|%s", userid, item_str(d, "username"),
					   item_str(d, "useremail"), item_str(d, "usertype"));
				if (!strset_has(&records, rec.data))
					test_fail(__FILE__, __LINE__, "device user %s is not served",
						  rec.data);
				buf_free(&rec);
				with_user++;
			}
			yajl_tree_free(v);
			answer_free(&a);
		}
	}
	ASSERT_EQ_INT(with_user, 4 * 96);
	strset_free(&users);
	strset_free(&records);
	e2e_sim_stop_clean(&sim);
}

/* All of /listusers' ids, and which are students and teachers. */
static void served_users(const struct e2e_sim *sim, const char *jwt, struct strset *students,
			 struct strset *teachers)
{
	struct answer a;
	for (int page = 1;; page++) {
		yajl_val v = call(sim, jwt, "listusers", &a,
				  ",\"options\":{\"page\":%d,\"page_size\":1000}", page);
		yajl_val list = list_at(v, "response", "users");
		size_t n = list->u.array.len;
		for (size_t k = 0; k < n; k++) {
			yajl_val u = list->u.array.values[k];
			const char *type = item_str(u, "type");
			if (strcmp(type, "STUDENT") == 0)
				strset_add(students, item_str(u, "id"));
			else if (strcmp(type, "TEACHER") == 0)
				strset_add(teachers, item_str(u, "id"));
		}
		yajl_tree_free(v);
		answer_free(&a);
		if (n == 0)
			break;
	}
	strset_sort(students);
	strset_sort(teachers);
}

TEST(e2e_sim_mosyle_classes_pages_and_references)
{
	struct simdata_options opt = district(1000, 2500, 250, 20, 1000);
	struct e2e_sim sim;
	struct answer a;
	char jwt[1024];
	struct strset students = {0}, teachers = {0};
	uint64_t next = 0;

	e2e_sim_start(&sim, "--users 2500 --classes 250");
	login(&sim, jwt, sizeof(jwt));
	served_users(&sim, jwt, &students, &teachers);
	ASSERT_EQ_INT(students.n, simdata_user_count(&opt, SIMDATA_STUDENT));
	ASSERT_EQ_INT(teachers.n, simdata_user_count(&opt, SIMDATA_TEACHER));

	for (int page = 1; page <= 3; page++) {
		/* page_size is ignored: 100 a page */
		yajl_val v = call(&sim, jwt, "listclasses", &a,
				  ",\"options\":{\"page\":%d,\"page_size\":10}", page);
		yajl_val list = list_at(v, "response", "classes");
		ASSERT_EQ_INT(list->u.array.len, page < 3 ? 100 : 50);
		ASSERT(at(v, "response", "total", NULL) == NULL);
		for (size_t k = 0; k < list->u.array.len; k++, next++) {
			yajl_val c = list->u.array.values[k];
			struct simdata_class cls;
			simdata_class(&opt, next, &cls);
			ASSERT_EQ_STR(item_str(c, "id"), cls.id);
			ASSERT_EQ_STR(item_str(c, "class_name"), cls.name);
			yajl_val teacher = at(c, "teacher", NULL, NULL);
			if (YAJL_IS_NULL(teacher))
				ASSERT_EQ_INT(next % 97, 41);
			else
				ASSERT(strset_has(&teachers, YAJL_GET_STRING(teacher)));
			yajl_val s = at(c, "students", NULL, NULL);
			ASSERT(s->u.array.len >= 10 && s->u.array.len <= 30);
			for (size_t j = 0; j < s->u.array.len; j++)
				if (!strset_has(&students, YAJL_GET_STRING(s->u.array.values[j])))
					test_fail(__FILE__, __LINE__, "class %s: student %s is not served",
						  cls.id, YAJL_GET_STRING(s->u.array.values[j]));
			s = at(c, "coordinators", NULL, NULL);
			for (size_t j = 0; j < s->u.array.len; j++)
				ASSERT(strset_has(&teachers, YAJL_GET_STRING(s->u.array.values[j])));
		}
		/* and byte for byte */
		struct buf want = BUF_INIT;
		buf_puts(&want, "{\"status\":\"OK\",\"response\":{\"classes\":[");
		for (uint64_t c = (uint64_t)(page - 1) * 100; c < next; c++) {
			struct simdata_class cls;
			if (c != (uint64_t)(page - 1) * 100)
				buf_putc(&want, ',');
			simdata_class(&opt, c, &cls);
			simdata_class_json(&cls, false, &want);
		}
		buf_puts(&want, "]}}");
		ASSERT_EQ_STR(buf_str(&a.body), want.data);
		buf_free(&want);
		yajl_tree_free(v);
		answer_free(&a);
	}
	ASSERT_EQ_INT(next, 250);
	post(&sim, "listclasses", jwt, "{" TOKEN_BODY ",\"options\":{\"page\":4}}", &a);
	ASSERT_EQ_STR(buf_str(&a.body), "{\"status\":\"OK\",\"response\":{\"status\":"
					"\"NO_CLASSES_FOUND\",\"info\":\"No classes found\"}}");
	answer_free(&a);
	strset_free(&students);
	strset_free(&teachers);
	e2e_sim_stop_clean(&sim);

	e2e_sim_start(&sim, "--classes 5 --classes-name-key name");
	login(&sim, jwt, sizeof(jwt));
	yajl_val v = call(&sim, jwt, "listclasses", &a, ",\"options\":{}");
	yajl_val list = list_at(v, "response", "classes");
	ASSERT_EQ_INT(list->u.array.len, 5);
	ASSERT(item_str(list->u.array.values[0], "name") != NULL);
	ASSERT(at(list->u.array.values[0], "class_name", NULL, NULL) == NULL);
	yajl_tree_free(v);
	answer_free(&a);
	e2e_sim_stop_clean(&sim);
}

/* The UDIDs /listdevices serves for os. */
static void served_udids(const struct e2e_sim *sim, const char *jwt, enum simdata_os os,
			 struct strset *out)
{
	struct answer a;
	for (int page = 1;; page++) {
		yajl_val v = call(sim, jwt, "listdevices", &a, ",\"options\":{\"os\":\"%s\",\"page\":%d}",
				  simdata_os_name(os), page);
		yajl_val list = list_at(v, "response", "devices");
		size_t n = list->u.array.len;
		for (size_t k = 0; k < n; k++) {
			const char *udid = item_str(list->u.array.values[k], "deviceudid");
			if (udid)
				strset_add(out, udid);
		}
		yajl_tree_free(v);
		answer_free(&a);
		if (n == 0)
			break;
	}
	strset_sort(out);
}

TEST(e2e_sim_mosyle_groups_pages_and_members)
{
	struct simdata_options opt = district(300, 300, 100, 120, 1000);
	struct e2e_sim sim;
	struct answer a;
	char jwt[1024];

	e2e_sim_start(&sim, "--devices 300 --groups 120");
	login(&sim, jwt, sizeof(jwt));
	for (int os = 0; os < SIMDATA_NOS; os++) {
		const char *os_name = simdata_os_name((enum simdata_os)os);
		struct strset udids = {0};
		unsigned long long counted = 0, members = 0;
		served_udids(&sim, jwt, (enum simdata_os)os, &udids);

		/* /listdevicegroups: pages from 0, 50 a page, rows a string */
		for (int page = 0; page <= 3; page++) {
			yajl_val v = call(&sim, jwt, "listdevicegroups", &a,
					  ",\"options\":{\"os\":\"%s\",\"page\":%d}", os_name, page);
			ASSERT(YAJL_IS_OBJECT(at(v, "response", NULL, NULL)));
			ASSERT_EQ_STR(str_at(v, "response", "rows"), "120");
			yajl_val list = list_at(v, "response", "groups");
			ASSERT_EQ_INT(list->u.array.len, page < 2 ? 50 : page == 2 ? 20 : 0);
			for (size_t k = 0; k < list->u.array.len; k++) {
				struct simdata_group g;
				simdata_group(&opt, (enum simdata_os)os, (uint64_t)page * 50 + k, &g);
				yajl_val item = list->u.array.values[k];
				ASSERT_EQ_STR(item_str(item, "name"), g.name);
				ASSERT_EQ_STR(item_str(item, "os"), os_name);
				counted += strtoull(item_str(item, "devices_count"), NULL, 10);
			}
			yajl_tree_free(v);
			answer_free(&a);
		}

		/* /listdevicegroupsdevices: pages from 1, 50 groups by default */
		for (int page = 1;; page++) {
			yajl_val v = call(&sim, jwt, "listdevicegroupsdevices", &a,
					  ",\"options\":{\"os\":\"%s\",\"page\":%d}", os_name, page);
			ASSERT(YAJL_IS_ARRAY(at(v, "response", NULL, NULL)));
			yajl_val list = list_at(v, "response", "groups");
			size_t n = list->u.array.len;
			ASSERT_EQ_INT(n, page < 3 ? 50 : page == 3 ? 20 : 0);
			for (size_t k = 0; k < n; k++) {
				yajl_val ids = at(list->u.array.values[k], "deviceudids", NULL, NULL);
				for (size_t j = 0; j < ids->u.array.len; j++) {
					const char *udid = YAJL_GET_STRING(ids->u.array.values[j]);
					if (!strset_has(&udids, udid))
						test_fail(__FILE__, __LINE__, "%s member %s is not a "
							  "served device", os_name, udid);
					members++;
				}
			}
			yajl_tree_free(v);
			answer_free(&a);
			if (n == 0)
				break;
		}
		ASSERT_EQ_INT(members, counted);
		ASSERT(members > 120);
		strset_free(&udids);
	}

	/* page_size is honoured by /listdevicegroupsdevices */
	yajl_val v = call(&sim, jwt, "listdevicegroupsdevices", &a,
			  ",\"options\":{\"os\":\"mac\",\"page\":3,\"page_size\":7}");
	yajl_val list = list_at(v, "response", "groups");
	ASSERT_EQ_INT(list->u.array.len, 7);
	ASSERT_EQ_STR(item_str(list->u.array.values[0], "id"), "15");
	yajl_tree_free(v);
	answer_free(&a);
	/* os is required */
	v = call(&sim, jwt, "listdevicegroups", &a, ",\"options\":{\"page\":1}");
	ASSERT_EQ_STR(buf_str(&a.body), "{\"status\":\"OK\",\"response\":[{\"status\":"
					"\"MISSING_DATA\",\"info\":\"Missing key: os\"}]}");
	yajl_tree_free(v);
	answer_free(&a);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_mosyle_groups_variants)
{
	struct e2e_sim sim;
	struct answer a, b;
	char jwt[1024];

	e2e_sim_start(&sim, "--groups 60 --groups-response array --groups-first-page 1");
	login(&sim, jwt, sizeof(jwt));
	/* page 0 and page 1 are the same first page */
	yajl_val v = call(&sim, jwt, "listdevicegroups", &a, ",\"options\":{\"os\":\"ios\",\"page\":0}");
	yajl_val w = call(&sim, jwt, "listdevicegroups", &b, ",\"options\":{\"os\":\"ios\",\"page\":1}");
	ASSERT_EQ_STR(buf_str(&a.body), buf_str(&b.body));
	yajl_val response = at(v, "response", NULL, NULL);
	ASSERT(YAJL_IS_ARRAY(response) && response->u.array.len == 1);
	ASSERT_EQ_INT(list_at(v, "response", "groups")->u.array.len, 50);
	ASSERT_EQ_STR(item_str(response->u.array.values[0], "rows"), "60");
	yajl_tree_free(v);
	yajl_tree_free(w);
	answer_free(&a);
	answer_free(&b);
	v = call(&sim, jwt, "listdevicegroups", &a, ",\"options\":{\"os\":\"ios\",\"page\":2}");
	ASSERT_EQ_INT(list_at(v, "response", "groups")->u.array.len, 10);
	yajl_tree_free(v);
	answer_free(&a);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_mosyle_accounts_and_attributes)
{
	struct simdata_options opt = district(1000, 1000, 100, 20, 1000);
	struct e2e_sim sim;
	struct answer a;
	char jwt[1024];
	struct buf want = BUF_INIT;

	e2e_sim_start(&sim, "");
	login(&sim, jwt, sizeof(jwt));
	yajl_val v = call(&sim, jwt, "accounts", &a, "%s", "");
	buf_puts(&want, "{\"status\":\"OK\",\"accounts\":[");
	for (unsigned k = 0; k < SIMDATA_NACCOUNTS; k++) {
		struct simdata_account acct;
		if (k)
			buf_putc(&want, ',');
		simdata_account(k, &acct);
		simdata_account_json(&acct, &want);
	}
	buf_puts(&want, "]}");
	ASSERT_EQ_STR(buf_str(&a.body), want.data);
	yajl_tree_free(v);
	answer_free(&a);

	for (int os = 0; os < SIMDATA_NOS; os++) {
		struct simdata_custom_attribute attrs[SIMDATA_CUSTOM_ATTRIBUTES_MAX];
		unsigned n = simdata_custom_attributes(&opt, (enum simdata_os)os, attrs);
		v = call(&sim, jwt, "customdeviceattribute", &a,
			 ",\"elements\":[{\"operation\":\"list_custom_device_attributes\",\"os\":\"%s\"}]",
			 simdata_os_name((enum simdata_os)os));
		buf_reset(&want);
		buf_puts(&want, "{\"status\":\"OK\",\"response\":[{\"status\":\"OK\",\"info\":[");
		for (unsigned k = 0; k < n; k++) {
			if (k)
				buf_putc(&want, ',');
			simdata_custom_attribute_json(&attrs[k], &want);
		}
		buf_puts(&want, "]}]}");
		ASSERT_EQ_STR(buf_str(&a.body), want.data);
		yajl_tree_free(v);
		answer_free(&a);
	}
	v = call(&sim, jwt, "customdeviceattribute", &a,
		 ",\"elements\":[{\"operation\":\"list_everything\",\"os\":\"ios\"}]");
	ASSERT_CONTAINS(buf_str(&a.body), "\"status\":\"INVALID_DATA\"");
	yajl_tree_free(v);
	answer_free(&a);
	e2e_sim_stop_clean(&sim);

	e2e_sim_start(&sim, "--not-district");
	login(&sim, jwt, sizeof(jwt));
	v = call(&sim, jwt, "accounts", &a, "%s", "");
	ASSERT_EQ_STR(buf_str(&a.body), "{\"status\":\"OK\",\"response\":[{\"status\":"
					"\"NOT_ALLOWED\",\"info\":\"Only district accounts may "
					"list accounts\"}]}");
	yajl_tree_free(v);
	answer_free(&a);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "accounts"), 1);
	e2e_sim_stop_clean(&sim);
	buf_free(&want);
}

/* Page through /adminlogs with filter (the text after "page"), until
 * "logs":[]: each log must be simdata's, from log first on. Returns how
 * many came; the last one's date in *last_date. */
static size_t fetch_logs(const struct e2e_sim *sim, const char *jwt, const char *filter,
			 const struct simdata_options *opt, uint64_t first, long long *last_date)
{
	struct answer a;
	size_t total = 0;
	for (int page = 1;; page++) {
		yajl_val v = call(sim, jwt, "adminlogs", &a, ",\"page\":%d%s", page, filter);
		yajl_val list = list_at(v, "response", "logs");
		size_t n = list->u.array.len;
		ASSERT(n <= 200);
		for (size_t k = 0; k < n; k++, total++) {
			struct simdata_admin_log log;
			simdata_admin_log(opt, first + total, &log);
			yajl_val item = list->u.array.values[k];
			char id[24];
			snprintf(id, sizeof(id), "%llu", (unsigned long long)log.id);
			ASSERT_EQ_STR(item_str(item, "id"), id);
			*last_date = atoll(item_str(item, "date"));
			ASSERT_EQ_INT(*last_date, log.date);
			ASSERT_EQ_STR(item_str(item, "target"), log.target);
			ASSERT_EQ_STR(item_str(item, "details"), log.details);
		}
		yajl_tree_free(v);
		answer_free(&a);
		if (n == 0)
			break;
		ASSERT(page < 100);
	}
	return total;
}

TEST(e2e_sim_mosyle_adminlogs_incremental)
{
	struct simdata_options opt = district(1000, 1000, 100, 20, 1000);
	struct e2e_sim sim;
	char jwt[1024], filter[128];
	long long last = 0, d;
	size_t n;

	e2e_sim_start(&sim, "--adminlogs 1000");
	login(&sim, jwt, sizeof(jwt));
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "adminlogs_last_start_date"), -1);
	/* everything, oldest first: 5 pages of 200, then [] */
	ASSERT_EQ_INT(fetch_logs(&sim, jwt, "", &opt, 0, &last), 1000);
	ASSERT_EQ_INT(last, simdata_admin_log_date(&opt, 999));
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "adminlogs"), 6);

	/* both ends inclusive: logs 2j and 2j + 1 share a date */
	d = simdata_admin_log_date(&opt, 301); /* = log 300's */
	snprintf(filter, sizeof(filter), ",\"filter_options\":{\"start_date\":\"%lld\","
		 "\"end_date\":\"%lld\"}", d, simdata_admin_log_date(&opt, 698));
	ASSERT_EQ_INT(fetch_logs(&sim, jwt, filter, &opt, 300, &last), 400);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "adminlogs_last_start_date"), d);
	/* a start between two dates; numbers work as well as strings */
	snprintf(filter, sizeof(filter), ",\"filter_options\":{\"start_date\":%lld}",
		 simdata_admin_log_date(&opt, 899) + 1);
	ASSERT_EQ_INT(fetch_logs(&sim, jwt, filter, &opt, 900, &last), 100);
	e2e_sim_stop_clean(&sim);

	/* More logs later: asking from the last date seen brings the two logs
	 * of that date again and the 300 new ones. */
	opt.admin_logs = 1300;
	e2e_sim_start(&sim, "--adminlogs 1300");
	login(&sim, jwt, sizeof(jwt));
	d = simdata_admin_log_date(&opt, 999);
	snprintf(filter, sizeof(filter), ",\"filter_options\":{\"start_date\":\"%lld\","
		 "\"end_date\":\"4102444800\"}", d);
	n = fetch_logs(&sim, jwt, filter, &opt, 998, &last);
	ASSERT_EQ_INT(n, 302);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "adminlogs_last_start_date"), d);
	e2e_sim_stop_clean(&sim);
}

/* A request of every kind with jwt: 200, or 401 with the one body. */
static long probe(const struct e2e_sim *sim, const char *jwt)
{
	struct answer a;
	post(sim, "listusers", jwt, "{" TOKEN_BODY ",\"options\":{\"page\":1,\"page_size\":1}}", &a);
	long status = a.status;
	if (status == 401)
		ASSERT_EQ_STR(buf_str(&a.body), UNAUTHORIZED);
	answer_free(&a);
	return status;
}

TEST(e2e_sim_mosyle_token_expires_after_requests)
{
	struct e2e_sim sim;
	struct answer a;
	char first[1024], second[1024];

	e2e_sim_start(&sim, "--token-max-requests 3");
	login(&sim, first, sizeof(first));
	ASSERT_EQ_INT(probe(&sim, first), 200);
	post(&sim, "accounts", first, "{" TOKEN_BODY "}", &a); /* any endpoint counts */
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	ASSERT_EQ_INT(probe(&sim, first), 200);
	ASSERT_EQ_INT(probe(&sim, first), 401);
	ASSERT_EQ_INT(probe(&sim, first), 401);
	/* a new login, a new JWT, three more requests */
	login(&sim, second, sizeof(second));
	ASSERT(strcmp(first, second) != 0);
	ASSERT_EQ_INT(probe(&sim, second), 200);
	ASSERT_EQ_INT(probe(&sim, first), 401);
	/* a wrong accessToken in the body is refused without using the JWT */
	post(&sim, "listusers", second, "{\"accessToken\":\"wrong\"}", &a);
	ASSERT_EQ_INT(a.status, 401);
	ASSERT_EQ_STR(buf_str(&a.body), UNAUTHORIZED);
	answer_free(&a);
	ASSERT_EQ_INT(probe(&sim, second), 200);
	ASSERT_EQ_INT(probe(&sim, second), 200);
	ASSERT_EQ_INT(probe(&sim, second), 401);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "logins"), 2);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "expired_tokens"), 4);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "unauthorized"), 5);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_mosyle_token_expires_after_ttl)
{
	struct e2e_sim sim;
	char first[1024], second[1024];

	e2e_sim_start(&sim, "--token-ttl-ms 1000");
	login(&sim, first, sizeof(first));
	ASSERT_EQ_INT(probe(&sim, first), 200);
	usleep(600 * 1000);
	login(&sim, second, sizeof(second));
	ASSERT(strcmp(first, second) != 0);
	ASSERT_EQ_INT(probe(&sim, first), 200); /* 600 ms old */
	usleep(600 * 1000);
	ASSERT_EQ_INT(probe(&sim, first), 401); /* 1200 ms old */
	ASSERT_EQ_INT(probe(&sim, second), 200); /* 600 ms old: older JWTs expire alone */
	usleep(600 * 1000);
	ASSERT_EQ_INT(probe(&sim, second), 401);
	/* an unknown JWT is refused the same way, but is not an expired one */
	ASSERT_EQ_INT(probe(&sim, "eyJ.not.issued"), 401);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "expired_tokens"), 2);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "unauthorized"), 3);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "logins"), 2);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_mosyle_faults_on_new_endpoints)
{
	struct e2e_sim sim;
	struct answer a;
	char jwt[1024];
	static const char users2[] = "{" TOKEN_BODY ",\"options\":{\"page\":2,\"page_size\":10}}";
	static const char mac0[] = "{" TOKEN_BODY ",\"options\":{\"os\":\"mac\",\"page\":0}}";
	static const char ios0[] = "{" TOKEN_BODY ",\"options\":{\"os\":\"ios\",\"page\":0}}";
	static const char logs1[] = "{" TOKEN_BODY ",\"page\":1}";

	e2e_sim_start(&sim, "--fault users:2:500 --fault groups.mac:0:inner:0 "
			    "--fault adminlogs:1:429ra:2 --fault classes:1:malformed "
			    "--fault accounts:1:inner --fault ios:1:503");
	login(&sim, jwt, sizeof(jwt));
	post(&sim, "listusers", jwt, users2, &a);
	ASSERT_EQ_INT(a.status, 500);
	answer_free(&a);
	post(&sim, "listusers", jwt, users2, &a);
	ASSERT_EQ_INT(a.status, 200); /* once by default */
	ASSERT_CONTAINS(buf_str(&a.body), "\"page\":\"2\"");
	answer_free(&a);
	for (int k = 0; k < 2; k++) { /* TIMES 0: every request */
		post(&sim, "listdevicegroups", jwt, mac0, &a);
		ASSERT_EQ_INT(a.status, 200);
		ASSERT_EQ_STR(buf_str(&a.body), "{\"status\":\"OK\",\"response\":[{\"status\":"
						"\"INVALID_DATA\",\"info\":\"invsync-sim fault: "
						"injected inner error\"}]}");
		answer_free(&a);
	}
	post(&sim, "listdevicegroups", jwt, ios0, &a);
	ASSERT_CONTAINS(buf_str(&a.body), "\"groups\":[{");
	answer_free(&a);
	for (int k = 0; k < 3; k++) {
		post(&sim, "adminlogs", jwt, logs1, &a);
		ASSERT_EQ_INT(a.status, k < 2 ? 429 : 200);
		answer_free(&a);
	}
	post(&sim, "listclasses", jwt, "{" TOKEN_BODY "}", &a);
	ASSERT_EQ_INT(a.status, 200);
	ASSERT(yajl_tree_parse(buf_str(&a.body), NULL, 0) == NULL);
	answer_free(&a);
	post(&sim, "accounts", jwt, "{" TOKEN_BODY "}", &a);
	ASSERT_CONTAINS(buf_str(&a.body), "injected inner error");
	answer_free(&a);
	/* the devices' OS:PAGE:KIND form is unchanged */
	post(&sim, "listdevices", jwt, "{" TOKEN_BODY ",\"options\":{\"os\":\"ios\",\"page\":1}}", &a);
	ASSERT_EQ_INT(a.status, 503);
	answer_free(&a);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "faults"), 8);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "listdevicegroups"), 3);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "adminlogs"), 3);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "login"), 1);
	e2e_sim_stop_clean(&sim);

	/* device-only kinds and unknown targets are refused */
	static const char *const bad[] = {"users:1:huge", "groups.android:0:500", "accounts.ios:1:500",
					  "login:1:reset", "login:1:inner", "login.ios:1:500"};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char cmd[1024];
		snprintf(cmd, sizeof(cmd), "'%s' --fault %s >/dev/null 2>&1", getenv("INVSYNC_SIM"),
			 bad[k]);
		ASSERT_EQ_INT(WEXITSTATUS(system(cmd)), 2);
	}
}

/* --fault login:1:KIND answers the first logins with an error status
 * before the credentials are looked at (wrong ones included), then the
 * logins are answered as usual; --fault-rate leaves them alone. */
TEST(e2e_sim_mosyle_faults_on_login)
{
	struct e2e_sim sim;
	struct answer a;
	char jwt[1024];
	static const char wrong[] = "{" TOKEN_BODY ",\"email\":\"" E2E_EMAIL "\","
				    "\"password\":\"not-the-password\"}";

	e2e_sim_start(&sim, "--fault login:1:503 --fault login:1:429ra:2 --fault-rate 100:500");
	post(&sim, "login", NULL, wrong, &a);
	ASSERT_EQ_INT(a.status, 503);
	ASSERT_EQ_STR(a.authorization, "");
	answer_free(&a);
	for (int k = 0; k < 2; k++) {
		login_raw(&sim, &a);
		ASSERT_EQ_INT(a.status, 429);
		ASSERT_EQ_STR(a.authorization, "");
		answer_free(&a);
	}
	login(&sim, jwt, sizeof(jwt));
	post(&sim, "login", NULL, wrong, &a);
	ASSERT_EQ_INT(a.status, 401);
	answer_free(&a);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "faults"), 3);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "login"), 5);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "logins"), 1);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "login_failures"), 1);
	e2e_sim_stop_clean(&sim);
}

/* The latency option delays the new endpoints too; a cut answer (a
 * truncate fault) reaches them as well. */
TEST(e2e_sim_mosyle_latency_and_truncate)
{
	struct e2e_sim sim;
	struct answer a;
	char jwt[1024];

	e2e_sim_start(&sim, "--latency-ms 300 --fault groupdevices.tvos:1:truncate");
	login(&sim, jwt, sizeof(jwt));
	unsigned long long t0 = util_now_ms();
	post(&sim, "listclasses", jwt, "{" TOKEN_BODY "}", &a);
	ASSERT(util_now_ms() - t0 >= 300);
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	CURLcode rc = post_raw(&sim, "listdevicegroupsdevices", jwt,
			       "{" TOKEN_BODY ",\"options\":{\"os\":\"tvos\",\"page\":1}}", &a);
	ASSERT(rc != CURLE_OK);
	answer_free(&a);
	e2e_sim_stop_clean(&sim);
}
