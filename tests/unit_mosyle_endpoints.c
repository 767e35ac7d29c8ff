/* unit_mosyle_endpoints.c - the Mosyle endpoint descriptions (src/mosyle.c):
 * answers in the shapes of the wire formats go through jstream with each
 * endpoint's spec, and the captures, keys and exact COPY rows are checked;
 * so are the request bodies. */
#include "test.h"

#include <stdlib.h>
#include <time.h>

#include "buf.h"
#include "endpoint.h"
#include "jstream.h"
#include "mosyle.h"

#define MAX_CAPTURES 8

/* What one answer gave: rows, record keys, the last value of each capture. */
struct answer {
	const struct endpoint *ep;
	struct endpoint_row_ctx ctx;
	struct buf rows;
	struct buf keys;    /* "key\n" per record */
	struct buf scratch; /* record_key's */
	struct buf caps[MAX_CAPTURES];
	bool cap_seen[MAX_CAPTURES];
	long records;
	int bad;
	bool list_seen;
};

static int on_record(void *arg, const struct jstream_record *rec)
{
	struct answer *a = arg;
	const char *key = NULL;
	size_t keylen = a->ep->record_key(rec, &a->scratch, &key);
	a->records++;
	if (keylen == 0) {
		buf_puts(&a->keys, "(none)\n");
		return 0;
	}
	buf_append(&a->keys, key, keylen);
	buf_putc(&a->keys, '\n');
	a->bad += a->ep->encode_row(&a->rows, rec, key, keylen, &a->ctx);
	return 0;
}

static void on_capture(void *arg, size_t id, const struct jstream_value *v)
{
	struct answer *a = arg;
	ASSERT(id < MAX_CAPTURES);
	buf_reset(&a->caps[id]);
	buf_append(&a->caps[id], v->text, v->len);
	a->cap_seen[id] = true;
}

/* Parse doc as an answer of ep on a stream of OS variant (or NULL), rows
 * stamped attempt 7, page 2. */
static void answer(struct answer *a, const struct endpoint *ep, const char *variant,
		   const char *doc)
{
	memset(a, 0, sizeof(*a));
	a->ep = ep;
	a->ctx = (struct endpoint_row_ctx){7, 2, variant};
	buf_puts(&a->rows, "");
	buf_puts(&a->keys, "");
	struct jstream_callbacks cb = {on_record, on_capture, a};
	struct jstream *js;
	ASSERT_EQ_INT(jstream_new(&js, &ep->spec, &cb), 0);
	ASSERT_EQ_INT(jstream_feed(js, doc, strlen(doc)), 0);
	ASSERT_EQ_INT(jstream_finish(js), 0);
	a->list_seen = jstream_stats(js)->list_seen;
	jstream_free(js);
}

static void answer_free(struct answer *a)
{
	buf_free(&a->rows);
	buf_free(&a->keys);
	buf_free(&a->scratch);
	for (int i = 0; i < MAX_CAPTURES; i++)
		buf_free(&a->caps[i]);
}

/* The value of capture index cap (an endpoint's cap_*), or NULL if the
 * endpoint has none (-1) or the answer did not give it. */
static const char *cap(const struct answer *a, int cap)
{
	if (cap < 0 || !a->cap_seen[cap])
		return NULL;
	return buf_str(&a->caps[cap]);
}

static const char *outer_status(const struct answer *a)
{
	for (int i = 0; a->ep->spec.captures[i]; i++)
		if (strcmp(a->ep->spec.captures[i], "status") == 0)
			return cap(a, i);
	return NULL;
}

static bool listed(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

#define ASSERT_NULL(p) ASSERT((p) == NULL)

/* ---- the table of endpoints ---------------------------------------------- */

TEST(mosyle_endpoints_table)
{
	static const char *const names[] = {
		"devices", "users", "classes", "device_groups", "device_group_members",
		"accounts", "custom_attributes", "admin_logs",
	};
	size_t n = 0;
	for (; mosyle_endpoints[n]; n++) {
		const struct endpoint *ep = mosyle_endpoints[n];
		ASSERT(n < ARRAY_SIZE(names));
		ASSERT_EQ_STR(ep->name, names[n]);
		ASSERT(ep->path && ep->path[0] == '/');
		ASSERT(ep->request && ep->record_key && ep->encode_row && ep->table && ep->key_columns);
		ASSERT(strncmp(ep->copy_columns, "attempt, page, ", 15) == 0);
		ASSERT_EQ_INT(ep->cap_error, -1);
		bool has_status = false;
		size_t ncaps = 0;
		for (; ep->spec.captures[ncaps]; ncaps++)
			has_status |= strcmp(ep->spec.captures[ncaps], "status") == 0;
		ASSERT(has_status);
		ASSERT(ncaps <= MAX_CAPTURES);
		ASSERT(ep->cap_status >= 0 && (size_t)ep->cap_status < ncaps);
		ASSERT_EQ_STR(ep->spec.captures[ep->cap_status], "response.status");
		ASSERT(ep->cap_info >= 0 && (size_t)ep->cap_info < ncaps);
		ASSERT_EQ_STR(ep->spec.captures[ep->cap_info], "response.info");
		ASSERT(ep->cap_total < (int)ncaps && ep->cap_page_size < (int)ncaps);
		ASSERT_EQ_INT(ep->commit, strcmp(ep->name, "admin_logs") == 0 ? ENDPOINT_APPEND
									   : ENDPOINT_REPLACE);
		ASSERT_EQ_INT(ep->cursor_sql != NULL, ep->commit == ENDPOINT_APPEND);
	}
	ASSERT_EQ_INT(n, ARRAY_SIZE(names));
	ASSERT(mosyle_endpoints[0] == &mosyle_devices_endpoint);

	ASSERT_EQ_INT(mosyle_accounts_endpoint.paging, ENDPOINT_SINGLE);
	ASSERT_EQ_INT(mosyle_custom_attributes_endpoint.paging, ENDPOINT_SINGLE);
	ASSERT_EQ_INT(mosyle_users_endpoint.paging, ENDPOINT_PAGED);
	ASSERT_EQ_INT(mosyle_users_endpoint.first_page, 1);
	ASSERT_EQ_INT(mosyle_classes_endpoint.first_page, 1);
	ASSERT_EQ_INT(mosyle_device_groups_endpoint.first_page, 0);
	ASSERT_EQ_INT(mosyle_device_group_members_endpoint.first_page, 1);
	ASSERT_EQ_INT(mosyle_admin_logs_endpoint.first_page, 1);
	ASSERT_EQ_INT(mosyle_devices_endpoint.first_page, -1);
	ASSERT(mosyle_device_groups_endpoint.per_os && mosyle_device_group_members_endpoint.per_os &&
	       mosyle_custom_attributes_endpoint.per_os && !mosyle_users_endpoint.per_os &&
	       !mosyle_classes_endpoint.per_os && !mosyle_accounts_endpoint.per_os &&
	       !mosyle_admin_logs_endpoint.per_os);
	ASSERT_EQ_STR(mosyle_device_groups_endpoint.key_columns, "os, group_id");
	ASSERT_EQ_STR(mosyle_device_group_members_endpoint.key_columns, "os, group_id, udid");
	ASSERT(listed(mosyle_accounts_endpoint.absent_statuses, "NOT_ALLOWED"));
	for (size_t i = 0; mosyle_endpoints[i]; i++)
		if (mosyle_endpoints[i] != &mosyle_accounts_endpoint)
			ASSERT(!listed(mosyle_endpoints[i]->absent_statuses, "NOT_ALLOWED"));
}

/* Every row has as many columns as the endpoint's copy_columns. */
static void assert_column_counts(const struct answer *a)
{
	size_t cols = 1;
	for (const char *p = a->ep->copy_columns; *p; p++)
		cols += *p == ',';
	const char *row = buf_str(&a->rows);
	while (*row) {
		const char *nl = strchr(row, '\n');
		ASSERT(nl != NULL);
		size_t tabs = 0;
		for (const char *p = row; p < nl; p++)
			tabs += *p == '\t';
		ASSERT_EQ_INT(tabs + 1, cols);
		row = nl + 1;
	}
}

/* ---- /listdevices: the columns computed for the reports ---------------- */

/* The last four columns of a device row: serial_key, os_update_pending,
 * shared_cart (attrs dropped). */
static void device_extras(const char *record, const char *want)
{
	struct answer a;
	struct buf doc = BUF_INIT;
	buf_printf(&doc, "{\"status\":\"OK\",\"response\":{\"devices\":[%s]}}", record);
	answer(&a, &mosyle_devices_endpoint, "ios", buf_str(&doc));
	ASSERT_EQ_INT(a.records, 1);
	assert_column_counts(&a);
	const char *row = buf_str(&a.rows);
	const char *end = strrchr(row, '\t'); /* before attrs */
	ASSERT(end != NULL);
	const char *p = end;
	for (int tabs = 0; tabs < 3 && p > row; )
		if (*--p == '\t')
			tabs++;
	struct buf got = BUF_INIT;
	buf_append(&got, p + 1, (size_t)(end - p - 1));
	ASSERT_EQ_STR(buf_str(&got), want);
	buf_free(&got);
	answer_free(&a);
	buf_free(&doc);
}

TEST(mosyle_device_report_columns)
{
	/* serial key; no flag; no cart */
	device_extras("{\"deviceudid\":\"U1\",\"serial_number\":\" dmp x1 \"}", "DMPX1\tf\t\\N");
	device_extras("{\"deviceudid\":\"U1\"}", "\\N\tf\t\\N");
	/* needosupdate in every spelling Mosyle might use */
	device_extras("{\"deviceudid\":\"U1\",\"needosupdate\":true}", "\\N\tt\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"needosupdate\":\"True\"}", "\\N\tt\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"needosupdate\":1}", "\\N\tt\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"needosupdate\":\"yes\"}", "\\N\tt\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"needosupdate\":\"false\"}", "\\N\tf\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"needosupdate\":0}", "\\N\tf\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"needosupdate\":[true]}", "\\N\tf\t\\N");
	/* AvailableOSUpdates: JSON in a string, or a list */
	device_extras("{\"deviceudid\":\"U1\",\"AvailableOSUpdates\":\"[{\\\"Version\\\":\\\"17.4\\\"}]\"}",
		      "\\N\tt\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"AvailableOSUpdates\":\" [] \"}", "\\N\tf\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"AvailableOSUpdates\":\"null\"}", "\\N\tf\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"AvailableOSUpdates\":\"\"}", "\\N\tf\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"AvailableOSUpdates\":null}", "\\N\tf\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"AvailableOSUpdates\":[ ]}", "\\N\tf\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"AvailableOSUpdates\":[{\"Version\":\"18\"}]}",
		      "\\N\tt\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"AvailableOSUpdates\":{}}", "\\N\tt\t\\N");
	/* the cart: SharedCartName, trimmed, before any tag */
	device_extras("{\"deviceudid\":\"U1\",\"SharedCartName\":\" Cart 3 \",\"tags\":\"cart-9\"}",
		      "\\N\tf\tCart 3");
	device_extras("{\"deviceudid\":\"U1\",\"SharedCartName\":\"  \",\"tags\":\"lab, CART-9 ,x\"}",
		      "\\N\tf\tCART-9");
	device_extras("{\"deviceudid\":\"U1\",\"tags\":\"lab,carts\\tb\"}", "\\N\tf\tcarts\\tb");
	device_extras("{\"deviceudid\":\"U1\",\"tags\":\"lab,car,scart\"}", "\\N\tf\t\\N");
	device_extras("{\"deviceudid\":\"U1\",\"tags\":[\"lab\",\"Cart\\\\7\"]}", "\\N\tf\tCart\\\\7");
	device_extras("{\"deviceudid\":\"U1\",\"tags\":[\"lab\",null,5]}", "\\N\tf\t\\N");
}

/* ---- /listusers ---------------------------------------------------------- */

#define USER_ANA                                                                           \
	"{\"id\":\"u000123\",\"name\":\"Ana Adams\",\"email\":\"ana.adams@district.example\","  \
	"\"managedappleid\":\"ana.adams@district.example\",\"type\":\"STUDENT\","               \
	"\"locations\":[{\"name\":\"Lincoln Elementary\",\"grade_level\":\"5\"}],"              \
	"\"grades\":[\"5\"],\"serial_number\":null,\"account\":\"District\","                   \
	"\"assigned_devices\":[\"00008030-001A\",\"00008030-001B\"]}"
/* the variant: locations as strings, no managedappleid, a quote in a name */
#define USER_BO                                                                            \
	"{\"id\":\"u000007\",\"name\":\"Bo O\\\"Brien\",\"email\":\"bo@district.example\","      \
	"\"type\":\"TEACHER\",\"locations\":[\"Lincoln Elementary\",\"Oak Middle\"],"            \
	"\"grades\":[],\"serial_number\":\"DMPX1\",\"account\":\"District\","                   \
	"\"assigned_devices\":[]}"

#define ROW_ANA                                                                            \
	"7\t2\tu000123\tAna Adams\tana.adams@district.example\tSTUDENT\t"                       \
	"ana.adams@district.example\t{\"Lincoln Elementary\"}\t{\"5\"}\t\\N\tDistrict\t"        \
	"{\"00008030-001A\",\"00008030-001B\"}\t" USER_ANA "\n"
#define ROW_BO                                                                             \
	"7\t2\tu000007\tBo O\"Brien\tbo@district.example\tTEACHER\t\\N\t"                       \
	"{\"Lincoln Elementary\",\"Oak Middle\"}\t{}\tDMPX1\tDistrict\t{}\t"                    \
	"{\"id\":\"u000007\",\"name\":\"Bo O\\\\\"Brien\",\"email\":\"bo@district.example\","   \
	"\"type\":\"TEACHER\",\"locations\":[\"Lincoln Elementary\",\"Oak Middle\"],"            \
	"\"grades\":[],\"serial_number\":\"DMPX1\",\"account\":\"District\","                   \
	"\"assigned_devices\":[]}\n"

TEST(mosyle_users_answer)
{
	const struct endpoint *ep = &mosyle_users_endpoint;
	struct answer a;
	answer(&a, ep, NULL,
	       "{\"status\":\"OK\",\"response\":{\"users\":[" USER_ANA "," USER_BO "],"
	       "\"total\":\"1234\",\"page_size\":\"500\",\"page\":\"1\"}}");
	ASSERT_EQ_STR(outer_status(&a), "OK");
	ASSERT_EQ_STR(cap(&a, ep->cap_total), "1234");
	ASSERT_EQ_STR(cap(&a, ep->cap_page_size), "500");
	ASSERT_NULL(cap(&a, ep->cap_status));
	ASSERT_NULL(cap(&a, ep->cap_info));
	ASSERT(a.list_seen);
	ASSERT_EQ_STR(buf_str(&a.keys), "u000123\nu000007\n");
	ASSERT_EQ_STR(buf_str(&a.rows), ROW_ANA ROW_BO);
	ASSERT_EQ_INT(a.bad, 0);
	assert_column_counts(&a);
	answer_free(&a);

	/* response as a one-element array, no total */
	answer(&a, ep, NULL, "{\"status\":\"OK\",\"response\":[{\"users\":[" USER_ANA "]}]}");
	ASSERT_NULL(cap(&a, ep->cap_total));
	ASSERT_EQ_STR(buf_str(&a.rows), ROW_ANA);
	answer_free(&a);

	/* past the end, both ways */
	answer(&a, ep, NULL, "{\"status\":\"OK\",\"response\":{\"users\":[],\"total\":\"2\"}}");
	ASSERT(a.list_seen);
	ASSERT_EQ_INT(a.records, 0);
	answer_free(&a);
	answer(&a, ep, NULL,
	       "{\"status\":\"OK\",\"response\":{\"status\":\"USERS_NOTFOUND\","
	       "\"info\":\"No users found\"}}");
	ASSERT(!a.list_seen);
	ASSERT_EQ_STR(cap(&a, ep->cap_status), "USERS_NOTFOUND");
	ASSERT(listed(ep->end_statuses, "USERS_NOTFOUND"));
	ASSERT_EQ_STR(cap(&a, ep->cap_info), "No users found");
	ASSERT_EQ_STR(buf_str(&a.rows), "");
	answer_free(&a);

	/* an error answer */
	answer(&a, ep, NULL,
	       "{\"status\":\"OK\",\"response\":[{\"status\":\"MISSING_DATA\","
	       "\"info\":\"Missing key: page\"}]}");
	ASSERT_EQ_STR(cap(&a, ep->cap_status), "MISSING_DATA");
	ASSERT(!listed(ep->end_statuses, "MISSING_DATA"));
	ASSERT_EQ_STR(cap(&a, ep->cap_info), "Missing key: page");
	answer_free(&a);

	/* no id: no key, no row; unreadable values are counted */
	answer(&a, ep, NULL,
	       "{\"response\":{\"users\":[{\"name\":\"x\"},{\"id\":\"u1\",\"locations\":[[1]],"
	       "\"assigned_devices\":\"a,b\"}]}}");
	ASSERT_EQ_STR(buf_str(&a.keys), "(none)\nu1\n");
	ASSERT_EQ_INT(a.bad, 2);
	ASSERT_EQ_STR(buf_str(&a.rows),
		      "7\t2\tu1\t\\N\t\\N\t\\N\t\\N\t{}\t\\N\t\\N\t\\N\t\\N\t"
		      "{\"id\":\"u1\",\"locations\":[[1]],\"assigned_devices\":\"a,b\"}\n");
	answer_free(&a);
}

/* ---- /listclasses -------------------------------------------------------- */

TEST(mosyle_classes_answer)
{
	const struct endpoint *ep = &mosyle_classes_endpoint;
	struct answer a;
	answer(&a, ep, NULL,
	       "{\"status\":\"OK\",\"response\":{\"classes\":["
	       "{\"id\":\"c00042\",\"idclass\":\"42\",\"class_name\":\"Math 5A\","
	       "\"course_name\":\"Math 5\",\"location\":\"Lincoln Elementary\","
	       "\"teacher\":\"u000007\",\"students\":[\"u000123\",\"u000124\"],"
	       "\"coordinators\":[\"u000009\"]},"
	       "{\"id\":\"c00043\",\"idclass\":\"43\",\"name\":\"Art\",\"course_name\":\"\","
	       "\"location\":\"Oak\",\"teacher\":null,\"students\":[],\"coordinators\":[]},"
	       "{\"idclass\":\"44\",\"name\":\"No id\"}]}}");
	ASSERT_EQ_STR(outer_status(&a), "OK");
	ASSERT_NULL(cap(&a, ep->cap_status));
	ASSERT_EQ_INT(ep->cap_total, -1);
	ASSERT_EQ_INT(ep->cap_page_size, -1);
	ASSERT_EQ_STR(buf_str(&a.keys), "c00042\nc00043\n44\n");
	ASSERT_EQ_STR(buf_str(&a.rows),
		      "7\t2\tc00042\t42\tMath 5A\tMath 5\tLincoln Elementary\tu000007\t"
		      "{\"u000123\",\"u000124\"}\t{\"u000009\"}\t"
		      "{\"id\":\"c00042\",\"idclass\":\"42\",\"class_name\":\"Math 5A\","
		      "\"course_name\":\"Math 5\",\"location\":\"Lincoln Elementary\","
		      "\"teacher\":\"u000007\",\"students\":[\"u000123\",\"u000124\"],"
		      "\"coordinators\":[\"u000009\"]}\n"
		      "7\t2\tc00043\t43\tArt\t\\N\tOak\t\\N\t{}\t{}\t"
		      "{\"id\":\"c00043\",\"idclass\":\"43\",\"name\":\"Art\",\"course_name\":\"\","
		      "\"location\":\"Oak\",\"teacher\":null,\"students\":[],\"coordinators\":[]}\n"
		      "7\t2\t44\t44\tNo id\t\\N\t\\N\t\\N\t\\N\t\\N\t"
		      "{\"idclass\":\"44\",\"name\":\"No id\"}\n");
	ASSERT_EQ_INT(a.bad, 0);
	assert_column_counts(&a);
	answer_free(&a);

	/* class_name wins over name when both are there */
	answer(&a, ep, NULL,
	       "{\"response\":[{\"classes\":[{\"id\":\"c1\",\"name\":\"N\",\"class_name\":\"CN\"}]}]}");
	ASSERT_CONTAINS(buf_str(&a.rows), "7\t2\tc1\t\\N\tCN\t");
	answer_free(&a);

	answer(&a, ep, NULL,
	       "{\"status\":\"OK\",\"response\":{\"status\":\"NO_CLASSES_FOUND\","
	       "\"info\":\"No classes found\"}}");
	ASSERT_EQ_STR(cap(&a, ep->cap_status), "NO_CLASSES_FOUND");
	ASSERT(listed(ep->end_statuses, "NO_CLASSES_FOUND"));
	ASSERT_EQ_STR(cap(&a, ep->cap_info), "No classes found");
	ASSERT_EQ_INT(a.records, 0);
	answer_free(&a);
}

/* ---- /listdevicegroups --------------------------------------------------- */

#define GROUP_17 \
	"{\"id\":\"17\",\"name\":\"Cart 3\",\"os\":\"ios\",\"devices_count\":\"30\",\"type\":\"static\"}"
#define GROUP_18 "{\"id\":\"18\",\"name\":\"\",\"devices_count\":\"many\"}"

TEST(mosyle_device_groups_answer)
{
	const struct endpoint *ep = &mosyle_device_groups_endpoint;
	static const char *const docs[] = {
		"{\"status\":\"OK\",\"response\":"
		"{\"groups\":[" GROUP_17 "," GROUP_18 "],\"rows\":\"12\"}}",
		"{\"status\":\"OK\",\"response\":"
		"[{\"groups\":[" GROUP_17 "," GROUP_18 "],\"rows\":\"12\"}]}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
		struct answer a;
		answer(&a, ep, "ios", docs[i]);
		ASSERT_EQ_STR(outer_status(&a), "OK");
		ASSERT_EQ_STR(cap(&a, ep->cap_total), "12");
		ASSERT_NULL(cap(&a, ep->cap_status));
		ASSERT_EQ_STR(buf_str(&a.keys), "17\n18\n");
		ASSERT_EQ_STR(buf_str(&a.rows),
			      "7\t2\tios\t17\tCart 3\tstatic\t30\t" GROUP_17 "\n"
			      "7\t2\tios\t18\t\t\\N\t\\N\t" GROUP_18 "\n");
		ASSERT_EQ_INT(a.bad, 1); /* "many" */
		assert_column_counts(&a);
		answer_free(&a);
	}
	struct answer a;
	answer(&a, ep, "mac", "{\"status\":\"OK\",\"response\":{\"groups\":[],\"rows\":\"12\"}}");
	ASSERT(a.list_seen);
	ASSERT_EQ_INT(a.records, 0);
	answer_free(&a);
}

/* ---- /listdevicegroupsdevices -------------------------------------------- */

TEST(mosyle_device_group_members_answer)
{
	const struct endpoint *ep = &mosyle_device_group_members_endpoint;
	struct answer a;
	/* one row per UDID; a group without members gives none; escapes in
	 * a UDID are decoded for the udid column and kept in attrs */
	answer(&a, ep, "ios",
	       "{\"status\":\"OK\",\"response\":[{\"groups\":["
	       "{\"id\":\"17\",\"name\":\"Cart 3\",\"deviceudids\":[\"00008030-001A\",\"00008030-001B\"]},"
	       "{\"id\":\"18\",\"name\":\"Empty\",\"deviceudids\":[]},"
	       "{\"id\":\"19\",\"name\":\"Odd\",\"deviceudids\":[\"a\\tb\\u00e9\",\"\",null,{\"x\":1}]},"
	       "{\"id\":\"20\",\"name\":\"None\"}]}]}");
	ASSERT_EQ_STR(outer_status(&a), "OK");
	ASSERT_NULL(cap(&a, ep->cap_status));
	ASSERT_EQ_INT(a.records, 4);
	ASSERT_EQ_STR(buf_str(&a.keys), "17\n18\n19\n20\n");
	ASSERT_EQ_STR(buf_str(&a.rows),
		      "7\t2\tios\t17\t00008030-001A\tCart 3\t\"00008030-001A\"\n"
		      "7\t2\tios\t17\t00008030-001B\tCart 3\t\"00008030-001B\"\n"
		      "7\t2\tios\t19\ta\\tb\xc3\xa9\tOdd\t\"a\\\\tb\xc3\xa9\"\n");
	ASSERT_EQ_INT(a.bad, 1); /* the object */
	assert_column_counts(&a);
	answer_free(&a);

	answer(&a, ep, "mac", "{\"status\":\"OK\",\"response\":{\"groups\":[]}}");
	ASSERT(a.list_seen);
	ASSERT_EQ_INT(a.records, 0);
	answer_free(&a);
}

/* ---- /accounts ----------------------------------------------------------- */

TEST(mosyle_accounts_answer)
{
	const struct endpoint *ep = &mosyle_accounts_endpoint;
	struct answer a;
	answer(&a, ep, NULL,
	       "{\"status\":\"OK\",\"accounts\":[{\"id\":\"3\",\"name\":\"Lincoln Elementary\","
	       "\"school_code\":\"LE\",\"address\":\"1 Main St\",\"timezone\":\"America/Chicago\"},"
	       "{\"id\":\"4\",\"name\":\"Oak Middle\",\"school_code\":null}]}");
	ASSERT_EQ_STR(outer_status(&a), "OK");
	ASSERT_NULL(cap(&a, ep->cap_status));
	ASSERT(a.list_seen);
	ASSERT_EQ_STR(buf_str(&a.rows),
		      "7\t2\t3\tLincoln Elementary\tLE\t{\"id\":\"3\",\"name\":\"Lincoln Elementary\","
		      "\"school_code\":\"LE\",\"address\":\"1 Main St\","
		      "\"timezone\":\"America/Chicago\"}\n"
		      "7\t2\t4\tOak Middle\t\\N\t"
		      "{\"id\":\"4\",\"name\":\"Oak Middle\",\"school_code\":null}\n");
	assert_column_counts(&a);
	answer_free(&a);

	/* a school account: nothing to load, and the status says why */
	answer(&a, ep, NULL,
	       "{\"status\":\"OK\",\"response\":[{\"status\":\"NOT_ALLOWED\","
	       "\"info\":\"Only district accounts may list accounts\"}]}");
	ASSERT_EQ_STR(outer_status(&a), "OK");
	ASSERT_EQ_STR(cap(&a, ep->cap_status), "NOT_ALLOWED");
	ASSERT(listed(ep->absent_statuses, "NOT_ALLOWED"));
	ASSERT(!listed(ep->end_statuses, "NOT_ALLOWED"));
	ASSERT_EQ_STR(cap(&a, ep->cap_info), "Only district accounts may list accounts");
	ASSERT(!a.list_seen);
	ASSERT_EQ_INT(a.records, 0);
	answer_free(&a);
}

/* ---- /customdeviceattribute ---------------------------------------------- */

TEST(mosyle_custom_attributes_answer)
{
	const struct endpoint *ep = &mosyle_custom_attributes_endpoint;
	struct answer a;
	/* the list is response[0].info: the inner status is OK and info,
	 * being a list, is no status text */
	answer(&a, ep, "mac",
	       "{\"status\":\"OK\",\"response\":[{\"status\":\"OK\",\"info\":["
	       "{\"id\":\"5\",\"name\":\"Cart slot\",\"type\":\"text\",\"values_count\":\"120\"},"
	       "{\"id\":\"6\",\"name\":\"Room\"}]}]}");
	ASSERT_EQ_STR(outer_status(&a), "OK");
	ASSERT_EQ_STR(cap(&a, ep->cap_status), "OK");
	ASSERT_NULL(cap(&a, ep->cap_info));
	ASSERT(a.list_seen);
	ASSERT_EQ_STR(buf_str(&a.rows),
		      "7\t2\tmac\t5\tCart slot\ttext\t{\"id\":\"5\",\"name\":\"Cart slot\","
		      "\"type\":\"text\",\"values_count\":\"120\"}\n"
		      "7\t2\tmac\t6\tRoom\t\\N\t{\"id\":\"6\",\"name\":\"Room\"}\n");
	assert_column_counts(&a);
	answer_free(&a);

	answer(&a, ep, "mac",
	       "{\"status\":\"OK\",\"response\":[{\"status\":\"MISSING_DATA\","
	       "\"info\":\"Missing key: os\"}]}");
	ASSERT_EQ_STR(cap(&a, ep->cap_status), "MISSING_DATA");
	ASSERT_EQ_STR(cap(&a, ep->cap_info), "Missing key: os");
	ASSERT(!a.list_seen);
	ASSERT_EQ_INT(a.records, 0);
	answer_free(&a);
}

/* ---- /adminlogs ---------------------------------------------------------- */

#define LOG_1                                                                              \
	"{\"id\":\"90001\",\"date\":\"1710264696\",\"admin\":\"admin@district.example\","        \
	"\"action\":\"Device wiped\",\"target\":\"00008030-001A\",\"ip\":\"10.1.2.3\","          \
	"\"details\":\"line 1\\nline 2\"}"
#define LOG_NO_ID "{\"date\":\"1710264700\",\"admin\":\"a@d.example\",\"action\":\"Login\"}"

TEST(mosyle_admin_logs_answer)
{
	const struct endpoint *ep = &mosyle_admin_logs_endpoint;
	struct answer a;
	answer(&a, ep, NULL,
	       "{\"status\":\"OK\",\"response\":[{\"logs\":[" LOG_1 "," LOG_NO_ID "," LOG_NO_ID "]}]}");
	ASSERT_EQ_STR(outer_status(&a), "OK");
	ASSERT_NULL(cap(&a, ep->cap_status));
	ASSERT_EQ_INT(a.records, 3);
	/* no id: a key made from the entry, the same for the same entry */
	const char *keys = buf_str(&a.keys);
	ASSERT(strncmp(keys, "90001\nhash:", 11) == 0);
	const char *k2 = keys + 6, *k3 = strchr(k2, '\n') + 1;
	ASSERT_EQ_INT(strchr(k2, '\n') - k2, 21);
	ASSERT(strncmp(k2, k3, 22) == 0);
	char hash_key[22];
	memcpy(hash_key, k2, 21);
	hash_key[21] = '\0';
	struct buf want = BUF_INIT;
	buf_printf(&want,
		   "7\t2\t90001\t2024-03-12 17:31:36+00\tadmin@district.example\tDevice wiped\t"
		   "00008030-001A\t{\"id\":\"90001\",\"date\":\"1710264696\","
		   "\"admin\":\"admin@district.example\",\"action\":\"Device wiped\","
		   "\"target\":\"00008030-001A\",\"ip\":\"10.1.2.3\","
		   "\"details\":\"line 1\\\\nline 2\"}\n"
		   "7\t2\t%1$s\t2024-03-12 17:31:40+00\ta@d.example\tLogin\t\\N\t" LOG_NO_ID "\n"
		   "7\t2\t%1$s\t2024-03-12 17:31:40+00\ta@d.example\tLogin\t\\N\t" LOG_NO_ID "\n",
		   hash_key);
	ASSERT_EQ_STR(buf_str(&a.rows), buf_str(&want));
	buf_free(&want);
	answer_free(&a);

	answer(&a, ep, NULL, "{\"status\":\"OK\",\"response\":[{\"logs\":[]}]}");
	ASSERT(a.list_seen);
	ASSERT_EQ_INT(a.records, 0);
	answer_free(&a);
}

/* ---- request bodies ------------------------------------------------------ */

static void request(const struct endpoint *ep, const struct config_source *src,
		    const char *variant, int page, const char *cursor, const char *want)
{
	struct buf query = BUF_INIT, body = BUF_INIT;
	struct endpoint_request req = {src, variant, page, cursor, 0};
	ep->request(&query, &body, &req);
	ASSERT_EQ_INT(query.len, 0);
	ASSERT_EQ_STR(buf_str(&body), want);
	buf_free(&query);
	buf_free(&body);
}

#define TOK "{\"accessToken\":\"t\\\"k\\\\n\""

TEST(mosyle_endpoint_requests)
{
	struct config_source src = {.kind = CONFIG_SOURCE_MOSYLE, .access_token = "t\"k\\n",
				    .page_size = 100};
	request(&mosyle_devices_endpoint, &src, "ios", 3, NULL,
		TOK ",\"options\":{\"os\":\"ios\",\"page\":3,\"page_size\":100}}");
	request(&mosyle_users_endpoint, &src, NULL, 3, NULL,
		TOK ",\"options\":{\"page\":3,\"page_size\":100}}");
	request(&mosyle_classes_endpoint, &src, NULL, 2, NULL, TOK ",\"options\":{\"page\":2}}");
	request(&mosyle_device_groups_endpoint, &src, "tvos", 0, NULL,
		TOK ",\"options\":{\"os\":\"tvos\",\"page\":0}}");
	request(&mosyle_device_group_members_endpoint, &src, "mac", 2, NULL,
		TOK ",\"options\":{\"os\":\"mac\",\"page\":2,\"page_size\":50}}");
	request(&mosyle_accounts_endpoint, &src, NULL, 1, NULL, TOK "}");
	request(&mosyle_custom_attributes_endpoint, &src, "visionos", 1, NULL,
		TOK ",\"elements\":[{\"operation\":\"list_custom_device_attributes\","
		    "\"os\":\"visionos\"}]}");
	src.page_size = 0;
	request(&mosyle_users_endpoint, &src, NULL, 1, NULL, TOK ",\"options\":{\"page\":1}}");
	request(&mosyle_device_group_members_endpoint, &src, "ios", 1, NULL,
		TOK ",\"options\":{\"os\":\"ios\",\"page\":1,\"page_size\":50}}");

	/* admin logs: page and filter_options at the top level, from the
	 * cursor (or the beginning) to now */
	const char *cursors[] = {"1710264696", NULL};
	for (size_t i = 0; i < ARRAY_SIZE(cursors); i++) {
		struct buf query = BUF_INIT, body = BUF_INIT, head = BUF_INIT;
		struct endpoint_request req = {&src, NULL, 4, cursors[i], 0};
		long long before = (long long)time(NULL);
		mosyle_admin_logs_endpoint.request(&query, &body, &req);
		long long after = (long long)time(NULL);
		ASSERT_EQ_INT(query.len, 0);
		buf_printf(&head, TOK ",\"page\":4,\"filter_options\":{\"start_date\":\"%s\","
				      "\"end_date\":\"",
			   cursors[i] ? cursors[i] : "0");
		ASSERT(strncmp(buf_str(&body), head.data, head.len) == 0);
		char *end;
		long long end_date = strtoll(body.data + head.len, &end, 10);
		ASSERT_EQ_STR(end, "\"}}");
		ASSERT(end_date >= before && end_date <= after);
		buf_free(&query);
		buf_free(&body);
		buf_free(&head);
	}
}
