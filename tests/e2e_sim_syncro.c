/* e2e_sim_syncro.c - the simulator's Syncro API over HTTP: paging and meta,
 * disabled customers, authentication with several keys, expired keys, the
 * missing permission, the per-address rate limit and --fault rules. */
#include "test.h"
#include "e2e.h"
#include "simdata.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>

#include <curl/curl.h>
#include <yajl/yajl_tree.h>

#define KEY "sim-syncro-key"

struct answer {
	long status;
	struct buf body;
	char retry_after[32]; /* "" when absent */
};

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	buf_append(&((struct answer *)userdata)->body, p, size * n);
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	struct answer *a = userdata;
	static const char name[] = "Retry-After:";
	size_t len = size * n;
	if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		size_t from = sizeof(name) - 1, to = len;
		while (from < to && p[from] == ' ')
			from++;
		while (to > from && (p[to - 1] == '\r' || p[to - 1] == '\n'))
			to--;
		snprintf(a->retry_after, sizeof(a->retry_after), "%.*s", (int)(to - from), p + from);
	}
	return len;
}

/* GET http://127.0.0.1:PORT/api/v1/PATH with the Authorization header
 * auth (NULL: none). */
static void get(const struct e2e_sim *sim, const char *path, const char *auth, struct answer *a)
{
	char url[512], header[256];
	struct curl_slist *headers = NULL;
	CURL *curl = curl_easy_init();
	CURLcode rc;

	memset(a, 0, sizeof(*a));
	buf_init(&a->body);
	ASSERT(curl);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/%s", sim->port, path);
	if (auth) {
		snprintf(header, sizeof(header), "Authorization: %s", auth);
		headers = curl_slist_append(headers, header);
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK)
		test_fail(__FILE__, __LINE__, "GET %s: %s", url, curl_easy_strerror(rc));
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
}

static yajl_val parse(const struct answer *a)
{
	char err[256];
	yajl_val v = yajl_tree_parse(buf_str(&a->body), err, sizeof(err));
	if (!v)
		test_fail(__FILE__, __LINE__, "not JSON (%s): %.300s", err, buf_str(&a->body));
	return v;
}

static yajl_val at2(yajl_val v, const char *k1, const char *k2)
{
	const char *path[] = {k1, k2, NULL};
	return yajl_tree_get(v, path, yajl_t_any);
}

static long long meta(yajl_val v, const char *name)
{
	yajl_val n = at2(v, "meta", name);
	if (!YAJL_IS_INTEGER(n))
		test_fail(__FILE__, __LINE__, "no integer meta.%s", name);
	return YAJL_GET_INTEGER(n);
}

static size_t nassets(yajl_val v)
{
	yajl_val list = at2(v, "assets", NULL);
	if (!YAJL_IS_ARRAY(list))
		test_fail(__FILE__, __LINE__, "no \"assets\" array");
	return list->u.array.len;
}

static long long asset_id(yajl_val v, size_t k)
{
	yajl_val list = at2(v, "assets", NULL);
	const char *path[] = {"id", NULL};
	return YAJL_GET_INTEGER(yajl_tree_get(list->u.array.values[k], path, yajl_t_number));
}

static void answer_free(struct answer *a)
{
	buf_free(&a->body);
}

TEST(e2e_sim_syncro_pages_of_25)
{
	struct e2e_sim sim;
	struct answer a;
	yajl_val v;

	e2e_sim_start(&sim, "--syncro-assets 1000");
	get(&sim, "customer_assets?page=1", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	v = parse(&a);
	ASSERT_EQ_INT(nassets(v), 25);
	ASSERT_EQ_INT(meta(v, "total_pages"), 40);
	ASSERT_EQ_INT(meta(v, "total_entries"), 1000);
	ASSERT_EQ_INT(meta(v, "per_page"), 25);
	ASSERT_EQ_INT(meta(v, "page"), 1);
	ASSERT_EQ_INT(asset_id(v, 0), SIMDATA_SYNCRO_ASSET_ID_BASE);
	yajl_tree_free(v);
	answer_free(&a);

	/* per_page is not honoured without --syncro-honour-per-page; the bare
	 * key works too */
	get(&sim, "customer_assets?page=40&per_page=100", KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	v = parse(&a);
	ASSERT_EQ_INT(nassets(v), 25);
	ASSERT_EQ_INT(meta(v, "per_page"), 25);
	ASSERT_EQ_INT(asset_id(v, 24), SIMDATA_SYNCRO_ASSET_ID_BASE + 999);
	yajl_tree_free(v);
	answer_free(&a);

	/* past the end: an empty list, meta still there */
	get(&sim, "customer_assets?page=41", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	v = parse(&a);
	ASSERT_EQ_INT(nassets(v), 0);
	ASSERT_EQ_INT(meta(v, "total_pages"), 40);
	ASSERT_EQ_INT(meta(v, "page"), 41);
	yajl_tree_free(v);
	answer_free(&a);

	/* the other reads */
	get(&sim, "customers?page=1&include_disabled=true", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	v = parse(&a);
	ASSERT_EQ_INT(meta(v, "total_entries"), 50);
	ASSERT_EQ_INT(meta(v, "per_page"), 100);
	yajl_tree_free(v);
	answer_free(&a);
	get(&sim, "contacts?page=2", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	v = parse(&a);
	ASSERT_EQ_INT(meta(v, "total_entries"), 100);
	ASSERT_EQ_INT(meta(v, "total_pages"), 2);
	yajl_tree_free(v);
	answer_free(&a);
	get(&sim, "settings", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	ASSERT_CONTAINS(buf_str(&a.body), "\"Windows Workstation\"");
	answer_free(&a);
	get(&sim, "me", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	ASSERT_CONTAINS(buf_str(&a.body), "\"Assets - List/Search\"");
	answer_free(&a);

	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_requests"), 7);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "requests"), 7);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_syncro_per_page_100_honoured)
{
	struct e2e_sim sim;
	struct answer a;
	yajl_val v;

	e2e_sim_start(&sim, "--syncro-honour-per-page");
	get(&sim, "customer_assets?page=10&per_page=100", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	v = parse(&a);
	ASSERT_EQ_INT(nassets(v), 100);
	ASSERT_EQ_INT(meta(v, "total_pages"), 10);
	ASSERT_EQ_INT(meta(v, "per_page"), 100);
	ASSERT_EQ_INT(meta(v, "page"), 10);
	ASSERT_EQ_INT(asset_id(v, 0), SIMDATA_SYNCRO_ASSET_ID_BASE + 900);
	yajl_tree_free(v);
	answer_free(&a);
	/* out of range: the server's size */
	get(&sim, "customer_assets?page=1&per_page=500", "Bearer " KEY, &a);
	v = parse(&a);
	ASSERT_EQ_INT(meta(v, "per_page"), 25);
	yajl_tree_free(v);
	answer_free(&a);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_syncro_no_meta_ends_with_empty_list)
{
	struct e2e_sim sim;
	struct answer a;
	size_t total = 0, pages = 0;

	e2e_sim_start(&sim, "--syncro-no-meta --syncro-assets 60");
	for (int page = 1;; page++) {
		char path[64];
		snprintf(path, sizeof(path), "customer_assets?page=%d", page);
		get(&sim, path, "Bearer " KEY, &a);
		ASSERT_EQ_INT(a.status, 200);
		yajl_val v = parse(&a);
		ASSERT(at2(v, "meta", NULL) == NULL);
		size_t n = nassets(v);
		yajl_tree_free(v);
		answer_free(&a);
		if (n == 0)
			break;
		total += n;
		pages++;
		ASSERT(page < 100);
	}
	ASSERT_EQ_INT(total, 60);
	ASSERT_EQ_INT(pages, 3);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_syncro_unauthorized)
{
	struct e2e_sim sim;
	struct answer a;

	e2e_sim_start(&sim, "--syncro-api-key right-key");
	get(&sim, "customer_assets?page=1", "Bearer wrong-key", &a);
	ASSERT_EQ_INT(a.status, 401);
	ASSERT_CONTAINS(buf_str(&a.body), "{\"error\":\"Not authorized.");
	answer_free(&a);
	get(&sim, "customer_assets?page=1", NULL, &a);
	ASSERT_EQ_INT(a.status, 401);
	answer_free(&a);
	/* the right key in the query is refused, even with the header */
	get(&sim, "customer_assets?page=1&api_key=right-key", "Bearer right-key", &a);
	ASSERT_EQ_INT(a.status, 401);
	ASSERT_CONTAINS(buf_str(&a.body), "\"error\":\"Not authorized.");
	answer_free(&a);
	get(&sim, "customer_assets?page=1", "Bearer right-key", &a);
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_api_key_in_query"), 1);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_unauthorized"), 3);
	e2e_sim_stop_clean(&sim);

	e2e_sim_start(&sim, "--syncro-no-asset-permission");
	get(&sim, "customer_assets?page=1", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 401);
	ASSERT_EQ_STR(buf_str(&a.body),
		      "{\"error\":\"Not authorized. Missing permission: Assets - List/Search\"}");
	answer_free(&a);
	/* the key still works elsewhere, and /me shows what is missing */
	get(&sim, "me", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	ASSERT(strstr(buf_str(&a.body), "Assets - List/Search") == NULL);
	answer_free(&a);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_syncro_rate_limit)
{
	struct e2e_sim sim;
	struct answer a;
	int ok = 0, limited = 0;

	e2e_sim_start(&sim, "--syncro-rate 30");
	for (int i = 0; i < 40; i++) {
		get(&sim, "me", "Bearer " KEY, &a);
		if (a.status == 200) {
			ok++;
		} else {
			ASSERT_EQ_INT(a.status, 429);
			ASSERT_EQ_STR(buf_str(&a.body), "{\"error\":\"Too many requests\"}");
			ASSERT_EQ_STR(a.retry_after, ""); /* none without --syncro-retry-after */
			limited++;
		}
		answer_free(&a);
	}
	ASSERT_EQ_INT(ok, 30);
	ASSERT_EQ_INT(limited, 10);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_429"), 10);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_requests"), 40);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_syncro_retry_after)
{
	struct e2e_sim sim;
	struct answer a;

	e2e_sim_start(&sim, "--syncro-rate 1 --syncro-retry-after 2");
	get(&sim, "customer_assets", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	get(&sim, "customer_assets", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 429);
	ASSERT_EQ_STR(a.retry_after, "2");
	answer_free(&a);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_429"), 1);
	e2e_sim_stop_clean(&sim);
}

/* --fault puts error statuses on chosen requests of a Syncro endpoint
 * (page 1 for /me), before the key is looked at; the faults that alter a
 * Mosyle page are refused there. */
TEST(e2e_sim_syncro_faults)
{
	struct e2e_sim sim;
	struct answer a;

	e2e_sim_start(&sim, "--fault syncro-me:1:429ra --fault syncro-assets:2:503:2");
	get(&sim, "me", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 429);
	ASSERT_EQ_STR(a.retry_after, "1");
	answer_free(&a);
	get(&sim, "me", NULL, &a); /* once by default; then the key counts again */
	ASSERT_EQ_INT(a.status, 401);
	answer_free(&a);
	get(&sim, "me", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	get(&sim, "customer_assets?page=1", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	for (int k = 0; k < 3; k++) {
		get(&sim, "customer_assets?page=2", "Bearer " KEY, &a);
		ASSERT_EQ_INT(a.status, k < 2 ? 503 : 200);
		answer_free(&a);
	}
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "faults"), 3);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_requests"), 7);
	/* a fault is not the rate limit's refusal */
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_429"), 0);
	e2e_sim_stop_clean(&sim);

	static const char *const bad[] = {"syncro-me:1:reset", "syncro-assets:1:inner",
					  "syncro-me:1:huge", "syncro-tickets:1:500"};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char cmd[1024];
		snprintf(cmd, sizeof(cmd), "'%s' --fault %s >/dev/null 2>&1", getenv("INVSYNC_SIM"),
			 bad[k]);
		ASSERT_EQ_INT(WEXITSTATUS(system(cmd)), 2);
	}
}

TEST(e2e_sim_syncro_get_only)
{
	struct e2e_sim sim;
	char cmd[256];
	FILE *p;
	char line[64] = "";

	e2e_sim_start(&sim, "");
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' -X POST "
		 "-H 'Authorization: Bearer " KEY "' http://127.0.0.1:%d/api/v1/customer_assets",
		 sim.port);
	p = popen(cmd, "r");
	ASSERT(p);
	ASSERT(fgets(line, sizeof(line), p) != NULL);
	pclose(p);
	ASSERT_EQ_STR(line, "405");
	e2e_sim_stop_clean(&sim);
}

/* The customer ids of one /customers answer, appended to ids; returns how
 * many, and the number of disabled ones in *disabled. */
static size_t customer_ids(yajl_val v, long long *ids, size_t *disabled)
{
	yajl_val list = at2(v, "customers", NULL);
	const char *id[] = {"id", NULL}, *dis[] = {"disabled", NULL};
	if (!YAJL_IS_ARRAY(list))
		test_fail(__FILE__, __LINE__, "no \"customers\" array");
	for (size_t k = 0; k < list->u.array.len; k++) {
		yajl_val c = list->u.array.values[k];
		ids[k] = YAJL_GET_INTEGER(yajl_tree_get(c, id, yajl_t_number));
		if (YAJL_IS_TRUE(yajl_tree_get(c, dis, yajl_t_any)))
			(*disabled)++;
	}
	return list->u.array.len;
}

TEST(e2e_sim_syncro_disabled_customers)
{
	struct e2e_sim sim;
	struct answer a;
	yajl_val v;
	long long ids[100];
	size_t n, disabled;
	const uint64_t customers = 150; /* 2 pages of 100 with them, 2 without */
	const uint64_t enabled = simdata_syncro_enabled_customers(customers);

	e2e_sim_start(&sim, "--syncro-customers 150 --syncro-assets 0");
	/* without include_disabled: the enabled ones only, meta counting them */
	disabled = 0;
	get(&sim, "customers?page=1", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	v = parse(&a);
	n = customer_ids(v, ids, &disabled);
	ASSERT_EQ_INT(n, 100);
	ASSERT_EQ_INT(disabled, 0);
	ASSERT_EQ_INT(meta(v, "total_entries"), enabled);
	ASSERT_EQ_INT(meta(v, "total_pages"), 2);
	for (size_t k = 0; k < n; k++)
		ASSERT_EQ_INT(ids[k], SIMDATA_SYNCRO_CUSTOMER_ID_BASE +
					      (long long)simdata_syncro_enabled_customer(k));
	yajl_tree_free(v);
	answer_free(&a);
	get(&sim, "customers?page=2&include_disabled=false", "Bearer " KEY, &a);
	v = parse(&a);
	n = customer_ids(v, ids, &disabled);
	ASSERT_EQ_INT(n, enabled - 100);
	ASSERT_EQ_INT(disabled, 0);
	yajl_tree_free(v);
	answer_free(&a);

	/* with it: every customer, in id order */
	size_t total = 0;
	for (int page = 1; page <= 3; page++) {
		char path[64];
		snprintf(path, sizeof(path), "customers?page=%d&include_disabled=true", page);
		get(&sim, path, "Bearer " KEY, &a);
		v = parse(&a);
		n = customer_ids(v, ids, &disabled);
		ASSERT_EQ_INT(meta(v, "total_entries"), customers);
		for (size_t k = 0; k < n; k++)
			ASSERT_EQ_INT(ids[k], SIMDATA_SYNCRO_CUSTOMER_ID_BASE + (long long)(total + k));
		total += n;
		yajl_tree_free(v);
		answer_free(&a);
	}
	ASSERT_EQ_INT(total, customers);
	ASSERT_EQ_INT(disabled, customers - enabled);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_syncro_several_keys)
{
	struct e2e_sim sim;
	struct answer a;

	e2e_sim_start(&sim, "--syncro-api-key tenant-a --syncro-api-key tenant-b "
			    "--syncro-no-assets-key tenant-c --syncro-expired-key tenant-old "
			    "--syncro-rate 9");
	get(&sim, "customer_assets?page=1", "Bearer tenant-a", &a);
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	get(&sim, "customer_assets?page=1", "tenant-b", &a);
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	/* the default key is gone once keys are given */
	get(&sim, "customer_assets?page=1", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 401);
	ASSERT_EQ_STR(buf_str(&a.body), "{\"error\":\"Not authorized. Invalid or missing API token\"}");
	answer_free(&a);
	/* a key without the assets permission reads the rest */
	get(&sim, "customer_assets?page=1", "Bearer tenant-c", &a);
	ASSERT_EQ_INT(a.status, 401);
	ASSERT_EQ_STR(buf_str(&a.body),
		      "{\"error\":\"Not authorized. Missing permission: Assets - List/Search\"}");
	answer_free(&a);
	get(&sim, "customers?page=1", "Bearer tenant-c", &a);
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	get(&sim, "me", "Bearer tenant-c", &a);
	ASSERT_EQ_INT(a.status, 200);
	ASSERT(strstr(buf_str(&a.body), "Assets - List/Search") == NULL);
	answer_free(&a);
	get(&sim, "me", "Bearer tenant-a", &a);
	ASSERT_CONTAINS(buf_str(&a.body), "\"Assets - List/Search\"");
	answer_free(&a);
	/* an expired key is refused everywhere, with its own message */
	get(&sim, "me", "Bearer tenant-old", &a);
	ASSERT_EQ_INT(a.status, 401);
	ASSERT_EQ_STR(buf_str(&a.body), "{\"error\":\"Not authorized. The API token has expired\"}");
	answer_free(&a);
	get(&sim, "customers?page=1", "tenant-old", &a);
	ASSERT_EQ_INT(a.status, 401);
	answer_free(&a);
	/* nine requests so far from one address, whatever their keys: the
	 * tenants share the limit */
	get(&sim, "me", "Bearer tenant-b", &a);
	ASSERT_EQ_INT(a.status, 429);
	answer_free(&a);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_unauthorized"), 4);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_429"), 1);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_syncro_expired_key_keeps_default)
{
	struct e2e_sim sim;
	struct answer a;

	/* keys that are not --syncro-api-key leave the default one in place */
	e2e_sim_start(&sim, "--syncro-expired-key old-key");
	get(&sim, "customer_assets?page=1", "Bearer " KEY, &a);
	ASSERT_EQ_INT(a.status, 200);
	answer_free(&a);
	get(&sim, "customer_assets?page=1", "Bearer old-key", &a);
	ASSERT_EQ_INT(a.status, 401);
	ASSERT_CONTAINS(buf_str(&a.body), "expired");
	answer_free(&a);
	e2e_sim_stop_clean(&sim);
}

TEST(e2e_sim_syncro_key_given_twice)
{
	const char *bin = getenv("INVSYNC_SIM");
	char cmd[512], line[256] = "";
	FILE *p;

	ASSERT(bin);
	snprintf(cmd, sizeof(cmd), "%s --syncro-api-key k --syncro-expired-key k 2>&1", bin);
	p = popen(cmd, "r");
	ASSERT(p);
	ASSERT(fgets(line, sizeof(line), p) != NULL);
	ASSERT(pclose(p) != 0);
	ASSERT_CONTAINS(line, "Syncro key \"k\" given twice");
}
