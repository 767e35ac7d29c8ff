/* unit_syncro.c - the Syncro endpoints (src/syncro.c) on the simulator's
 * own answers: requests, captures, record keys and the exact COPY rows,
 * and the customer name read from an asset's embedded customer. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "endpoint.h"
#include "jstream.h"
#include "rowenc.h"
#include "simdata.h"
#include "syncro.h"

static const struct simdata_syncro_options opts = {
	.seed = 1, .customers = 50, .contacts_per_customer = 2,
};

#define ATTEMPT 7
#define PAGE 3

/* ---- harness ------------------------------------------------------------- */

/* What one answer gave: rows, keys and captures. */
struct load {
	const struct endpoint *ep;
	struct buf rows;
	struct buf keys;    /* one key a line */
	struct buf scratch;
	struct buf error;   /* the cap_error capture */
	long total;         /* cap_total, -1 if none */
	long per_page;      /* cap_page_size, -1 if none */
	long records, unkeyed;
	int bad;
	bool list_seen;
};

static int on_record(void *arg, const struct jstream_record *rec)
{
	struct load *l = arg;
	const char *key = NULL;
	size_t n = l->ep->record_key(rec, &l->scratch, &key);
	if (n == 0) {
		l->unkeyed++;
		return 0;
	}
	buf_append(&l->keys, key, n);
	buf_putc(&l->keys, '\n');
	struct endpoint_row_ctx ctx = {ATTEMPT, PAGE, NULL};
	l->bad += l->ep->encode_row(&l->rows, rec, key, n, &ctx);
	l->records++;
	return 0;
}

static void on_capture(void *arg, size_t id, const struct jstream_value *v)
{
	struct load *l = arg;
	if ((int)id == l->ep->cap_total)
		l->total = atol(v->text);
	else if ((int)id == l->ep->cap_page_size)
		l->per_page = atol(v->text);
	else if ((int)id == l->ep->cap_error)
		buf_append(&l->error, v->text, v->len);
}

static void load_free(struct load *l)
{
	buf_free(&l->rows);
	buf_free(&l->keys);
	buf_free(&l->scratch);
	buf_free(&l->error);
}

/* Parse body with ep's spec, fed in chunks of chunk bytes (0: whole). */
static void load_chunked(struct load *l, const struct endpoint *ep, const struct buf *body,
			 size_t chunk)
{
	struct jstream *js;

	memset(l, 0, sizeof(*l));
	struct jstream_callbacks cb = {on_record, on_capture, l};
	l->ep = ep;
	l->total = l->per_page = -1;
	ASSERT_EQ_INT(jstream_new(&js, &ep->spec, &cb), 0);
	for (size_t off = 0; off < body->len;) {
		size_t n = chunk && chunk < body->len - off ? chunk : body->len - off;
		int rc = jstream_feed(js, body->data + off, n);
		if (rc != 0)
			test_fail(__FILE__, __LINE__, "feed: %s", jstream_error(js));
		off += n;
	}
	if (jstream_finish(js) != 0)
		test_fail(__FILE__, __LINE__, "finish: %s", jstream_error(js));
	l->list_seen = jstream_stats(js)->list_seen;
	jstream_free(js);
}

/* Parse body whole and in 13-byte chunks; both must give the same. */
static void load(struct load *l, const struct endpoint *ep, const struct buf *body)
{
	struct load again;
	load_chunked(l, ep, body, 0);
	load_chunked(&again, ep, body, 13);
	ASSERT_EQ_STR(buf_str(&again.rows), buf_str(&l->rows));
	ASSERT_EQ_STR(buf_str(&again.keys), buf_str(&l->keys));
	ASSERT_EQ_INT(again.total, l->total);
	ASSERT_EQ_INT(again.per_page, l->per_page);
	load_free(&again);
}

/* COPY text escaping, written out again so the expected rows do not come
 * from the code under test. */
static void copy_text(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '\\': buf_puts(b, "\\\\"); break;
		case '\t': buf_puts(b, "\\t"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		default: buf_putc(b, s[i]);
		}
	}
}

static void copy_str(struct buf *b, const char *s)
{
	copy_text(b, s, strlen(s));
}

/* The text of a JSON object member of a compact sim record, from after
 * "name": to just before ,"next". */
static void member_text(struct buf *out, const struct buf *json, const char *name,
			const char *next)
{
	char from[64], to[64];
	snprintf(from, sizeof(from), "\"%s\":", name);
	snprintf(to, sizeof(to), ",\"%s\":", next);
	const char *p = strstr(json->data, from);
	ASSERT(p);
	p += strlen(from);
	const char *q = strstr(p, to);
	ASSERT(q);
	buf_append(out, p, (size_t)(q - p));
}

/* ---- sim answers ---------------------------------------------------------- */

/* /customer_assets with assets [first, first + n), and meta when
 * total >= 0 (page size per_page). */
static void assets_body(struct buf *b, uint64_t first, uint64_t n, long total,
			unsigned per_page, unsigned page)
{
	buf_puts(b, "{\"assets\":[");
	for (uint64_t i = first; i < first + n; i++) {
		struct simdata_syncro_asset a;
		if (i > first)
			buf_putc(b, ',');
		simdata_syncro_asset(&opts, i, &a);
		simdata_syncro_asset_json(&opts, &a, b);
	}
	buf_putc(b, ']');
	if (total >= 0)
		buf_printf(b, ",\"meta\":{\"total_pages\":%ld,\"total_entries\":%ld,"
			   "\"per_page\":%u,\"page\":%u}",
			   (total + per_page - 1) / per_page, total, per_page, page);
	buf_putc(b, '}');
}

static void expect_asset_row(struct buf *b, uint64_t i)
{
	struct simdata_syncro_asset a;
	struct simdata_syncro_customer c;
	struct buf json = BUF_INIT, props = BUF_INIT;

	simdata_syncro_asset(&opts, i, &a);
	simdata_syncro_customer(&opts, a.customer_index, &c);
	simdata_syncro_asset_json(&opts, &a, &json);
	member_text(&props, &json, "properties", "customer");

	buf_printf(b, "%d\t%d\t%lld\t", ATTEMPT, PAGE, a.id);
	copy_str(b, a.name);
	buf_printf(b, "\t%s\t", a.asset_type);
	buf_puts(b, a.has_serial ? a.asset_serial : "\\N");
	buf_printf(b, "\t%lld\t", a.customer_id);
	copy_str(b, c.business_name);
	if (a.has_contact)
		buf_printf(b, "\t%lld", a.contact_id);
	else
		buf_puts(b, "\t\\N");
	buf_printf(b, "\t%s\t%s\t", a.created_at, a.updated_at);
	copy_text(b, props.data, props.len);
	/* the serial key: the simulator's serials are upper case already */
	buf_printf(b, "\t%s\t", a.has_serial ? a.asset_serial : "\\N");
	copy_text(b, json.data, json.len);
	buf_putc(b, '\n');
	buf_free(&json);
	buf_free(&props);
}

/* Row k (from 0) of a block of rows. */
static void row_of(struct buf *out, const struct buf *rows, size_t k)
{
	const char *p = rows->data;
	for (size_t n = 0; n < k; n++) {
		p = strchr(p, '\n');
		ASSERT(p);
		p++;
	}
	const char *e = strchr(p, '\n');
	ASSERT(e);
	buf_reset(out);
	buf_append(out, p, (size_t)(e - p + 1));
}

static size_t count_char(const char *s, size_t n, char c)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += s[i] == c;
	return k;
}

/* Each row has as many columns as copy_columns names. */
static void assert_column_counts(const struct endpoint *ep, const struct buf *rows)
{
	size_t columns = count_char(ep->copy_columns, strlen(ep->copy_columns), ',') + 1;
	size_t nrows = count_char(rows->data, rows->len, '\n');
	ASSERT(nrows > 0);
	ASSERT_EQ_INT(count_char(rows->data, rows->len, '\t'), nrows * (columns - 1));
}

/* ---- endpoints as data ----------------------------------------------------- */

TEST(syncro_endpoint_table)
{
	const struct endpoint *const *e = syncro_endpoints;
	ASSERT(e[0] == &syncro_assets_endpoint);
	ASSERT(e[1] == &syncro_customers_endpoint);
	ASSERT(e[2] == &syncro_contacts_endpoint);
	ASSERT(e[3] == &syncro_asset_types_endpoint);
	ASSERT(e[4] == NULL);

	static const char *const names[] = {"assets", "customers", "contacts", "asset_types"};
	static const char *const paths[] = {"/customer_assets", "/customers", "/contacts",
					    "/settings"};
	static const char *const lists[] = {"assets", "customers", "contacts", "asset_types"};
	static const char *const tables[] = {"syncro_assets", "syncro_customers",
					     "syncro_contacts", "syncro_asset_types"};
	static const char *const keys[] = {"asset_id", "customer_id", "contact_id",
					   "asset_type_id"};
	for (int k = 0; k < 4; k++) {
		const struct endpoint *ep = e[k];
		ASSERT_EQ_STR(ep->name, names[k]);
		ASSERT_EQ_STR(ep->path, paths[k]);
		ASSERT_EQ_STR(ep->spec.list_path[0], lists[k]);
		ASSERT(ep->spec.list_path[1] == NULL);
		ASSERT_EQ_STR(ep->spec.fields[0], "id");
		ASSERT_EQ_STR(ep->table, tables[k]);
		ASSERT_EQ_STR(ep->key_columns, keys[k]);
		ASSERT(!ep->per_os);
		ASSERT_EQ_INT(ep->first_page, 1);
		ASSERT_EQ_INT(ep->commit, ENDPOINT_REPLACE);
		ASSERT_EQ_INT(ep->cap_status, -1);
		ASSERT_EQ_INT(ep->cap_info, -1);
		ASSERT(ep->end_statuses == NULL);
		ASSERT(ep->absent_statuses == NULL);
		ASSERT(ep->cursor_sql == NULL);
		ASSERT_EQ_STR(ep->spec.captures[ep->cap_error], "error");
		/* the COPY starts with the housekeeping columns, then the key */
		char head[64];
		snprintf(head, sizeof(head), "attempt, page, %s, ", keys[k]);
		ASSERT(strncmp(ep->copy_columns, head, strlen(head)) == 0);
		ASSERT(strcmp(ep->copy_columns + strlen(ep->copy_columns) - 7, ", attrs") == 0);
		if (k < 3) {
			ASSERT_EQ_INT(ep->paging, ENDPOINT_PAGED);
			ASSERT_EQ_STR(ep->spec.captures[ep->cap_total], "meta.total_entries");
			ASSERT_EQ_STR(ep->spec.captures[ep->cap_page_size], "meta.per_page");
		} else {
			ASSERT_EQ_INT(ep->paging, ENDPOINT_SINGLE);
			ASSERT_EQ_INT(ep->cap_total, -1);
			ASSERT_EQ_INT(ep->cap_page_size, -1);
		}
	}
	ASSERT_EQ_STR(syncro_asset_permission, "Assets - List/Search");
	ASSERT_EQ_STR(syncro_endpoint_permission(&syncro_assets_endpoint), "Assets - List/Search");
	ASSERT_EQ_STR(syncro_endpoint_permission(&syncro_customers_endpoint),
		      "Customers - List/Search");
	ASSERT(syncro_endpoint_permission(&syncro_asset_types_endpoint) == NULL);
}

TEST(syncro_requests_are_gets_with_a_query)
{
	static const char *const want[] = {
		"/customer_assets?page=3&per_page=100",
		"/customers?page=3&include_disabled=true",
		"/contacts?page=3",
		"/settings",
	};
	struct config_source src = {.kind = CONFIG_SOURCE_SYNCRO, .name = "msp",
				    .base_url = "https://acme.syncromsp.com/api/v1",
				    .api_key = "secret-key"};
	struct endpoint_request req = {&src, NULL, 3, NULL, 0};
	for (int k = 0; syncro_endpoints[k]; k++) {
		struct buf url = BUF_INIT, body = BUF_INIT;
		buf_puts(&url, syncro_endpoints[k]->path);
		syncro_endpoints[k]->request(&url, &body, &req);
		ASSERT_EQ_STR(buf_str(&url), want[k]);
		ASSERT_EQ_INT(body.len, 0);
		ASSERT(strstr(buf_str(&url), "secret-key") == NULL);
		buf_free(&url);
		buf_free(&body);
	}
}

/* ---- /customer_assets ------------------------------------------------------ */

TEST(syncro_assets_page_with_meta)
{
	struct buf body = BUF_INIT, want = BUF_INIT, row = BUF_INIT;
	struct load l;

	assets_body(&body, 0, 25, 1000, 25, 1);
	load(&l, &syncro_assets_endpoint, &body);
	ASSERT(l.list_seen);
	ASSERT_EQ_INT(l.records, 25);
	ASSERT_EQ_INT(l.unkeyed, 0);
	ASSERT_EQ_INT(l.bad, 0);
	ASSERT_EQ_INT(l.total, 1000);
	ASSERT_EQ_INT(l.per_page, 25);
	ASSERT_EQ_INT(l.error.len, 0);
	assert_column_counts(&syncro_assets_endpoint, &l.rows);

	/* every row exactly */
	for (uint64_t i = 0; i < 25; i++)
		expect_asset_row(&want, i);
	ASSERT_EQ_STR(buf_str(&l.rows), buf_str(&want));
	ASSERT(strncmp(buf_str(&l.keys), "100000\n100001\n100002\n", 21) == 0);

	/* and the quirks spelled out */
	row_of(&row, &l.rows, 1); /* contact_id null */
	ASSERT_CONTAINS(buf_str(&row), "\t\\N\t2024-");
	row_of(&row, &l.rows, 2); /* "Notes" and "notes", both kept */
	ASSERT_CONTAINS(buf_str(&row), "\"Notes\":\"Loaner 2, check battery\","
				       "\"notes\":\"imported from the old PSA\"");
	row_of(&row, &l.rows, 7); /* no serial */
	ASSERT_CONTAINS(buf_str(&row), "\tWindows Workstation\t\\N\t500007\t");
	row_of(&row, &l.rows, 11); /* a quote, a backslash and an accent */
	ASSERT(strncmp(buf_str(&row), "7\t3\t100011\tFront desk \"11\" \\\\ caf\xc3\xa9\t", 35) == 0);
	/* the record's JSON keeps its escapes, the backslash doubled for COPY */
	ASSERT_CONTAINS(buf_str(&row), "\"name\":\"Front desk \\\\\"11\\\\\" \\\\\\\\ caf\xc3\xa9\"");
	row_of(&row, &l.rows, 4); /* a disabled customer's asset: loaded all the same */
	ASSERT_CONTAINS(buf_str(&row), "\t500004\tEvergreen ");
	ASSERT_CONTAINS(buf_str(&row), "\"disabled\":true");

	load_free(&l);
	buf_free(&body);
	buf_free(&want);
	buf_free(&row);
}

TEST(syncro_assets_page_without_meta)
{
	struct buf body = BUF_INIT, want = BUF_INIT;
	struct load l;

	/* a later page without meta: rows the same, no total, no page size */
	assets_body(&body, 40, 10, -1, 0, 0);
	load(&l, &syncro_assets_endpoint, &body);
	ASSERT_EQ_INT(l.records, 10);
	ASSERT_EQ_INT(l.total, -1);
	ASSERT_EQ_INT(l.per_page, -1);
	for (uint64_t i = 40; i < 50; i++)
		expect_asset_row(&want, i);
	ASSERT_EQ_STR(buf_str(&l.rows), buf_str(&want));
	load_free(&l);

	/* the end of the list: an empty page */
	buf_reset(&body);
	assets_body(&body, 0, 0, -1, 0, 0);
	ASSERT_EQ_STR(buf_str(&body), "{\"assets\":[]}");
	load(&l, &syncro_assets_endpoint, &body);
	ASSERT(l.list_seen);
	ASSERT_EQ_INT(l.records, 0);
	ASSERT_EQ_INT(l.rows.len, 0);
	load_free(&l);

	/* past the end with meta: empty, meta still there */
	buf_reset(&body);
	assets_body(&body, 0, 0, 1000, 25, 41);
	load(&l, &syncro_assets_endpoint, &body);
	ASSERT_EQ_INT(l.records, 0);
	ASSERT_EQ_INT(l.total, 1000);
	load_free(&l);
	buf_free(&body);
	buf_free(&want);
}

TEST(syncro_assets_refused_token)
{
	struct buf body = BUF_INIT;
	struct load l;

	buf_puts(&body, "{\"error\":\"Not authorized. Missing permission: Assets - List/Search\"}");
	load(&l, &syncro_assets_endpoint, &body);
	ASSERT(!l.list_seen);
	ASSERT_EQ_INT(l.records, 0);
	ASSERT_EQ_STR(buf_str(&l.error), "Not authorized. Missing permission: Assets - List/Search");
	load_free(&l);
	/* an "error" inside a record is the record's business */
	buf_reset(&body);
	buf_puts(&body, "{\"assets\":[{\"id\":1,\"error\":\"x\"}]}");
	load(&l, &syncro_assets_endpoint, &body);
	ASSERT_EQ_INT(l.records, 1);
	ASSERT_EQ_INT(l.error.len, 0);
	load_free(&l);
	buf_free(&body);
}

TEST(syncro_record_keys)
{
	struct buf body = BUF_INIT;
	struct load l;

	/* ids as numbers or strings, normalised; records without a usable
	 * id are skipped */
	buf_puts(&body, "{\"assets\":[{\"id\":42},{\"id\":\"43\"},{\"id\":\" +007 \"},{\"id\":12.0},"
			"{\"id\":-5},{\"name\":\"no id\"},{\"id\":null},{\"id\":\"\"},{\"id\":\"abc\"},"
			"{\"id\":1.5},{\"id\":99999999999999999999},{\"id\":true},{\"id\":[1]},"
			"{\"id\":9223372036854775807}]}");
	load(&l, &syncro_assets_endpoint, &body);
	ASSERT_EQ_STR(buf_str(&l.keys), "42\n43\n7\n12\n-5\n9223372036854775807\n");
	ASSERT_EQ_INT(l.unkeyed, 8);
	/* a record with nothing but an id: every other column NULL */
	struct buf row = BUF_INIT;
	row_of(&row, &l.rows, 0);
	ASSERT_EQ_STR(buf_str(&row),
		      "7\t3\t42\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t{\"id\":42}\n");
	row_of(&row, &l.rows, 2);
	ASSERT(strncmp(buf_str(&row), "7\t3\t7\t", 6) == 0);
	ASSERT_EQ_INT(l.bad, 0);
	buf_free(&row);
	load_free(&l);
	buf_free(&body);
}

TEST(syncro_assets_odd_values)
{
	struct buf body = BUF_INIT;
	struct load l;

	/* properties that are not an object or array cannot be jsonb as is:
	 * NULL, and counted; [] is kept; bad times and ids are NULL, counted */
	buf_puts(&body, "{\"assets\":["
			"{\"id\":1,\"properties\":\"{}\",\"created_at\":\"yesterday\"},"
			"{\"id\":2,\"properties\":[],\"customer_id\":\"x\",\"contact_id\":\"7\"},"
			"{\"id\":3,\"properties\":null,\"customer\":\"Acme\","
			"\"updated_at\":\"2024-03-12T10:31:36-07:00\",\"asset_serial\":\"\"}]}");
	load(&l, &syncro_assets_endpoint, &body);
	ASSERT_EQ_INT(l.records, 3);
	ASSERT_EQ_INT(l.bad, 4);
	struct buf row = BUF_INIT;
	row_of(&row, &l.rows, 0);
	ASSERT_EQ_STR(buf_str(&row), "7\t3\t1\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t"
				     "{\"id\":1,\"properties\":\"{}\",\"created_at\":\"yesterday\"}\n");
	row_of(&row, &l.rows, 1);
	ASSERT_EQ_STR(buf_str(&row), "7\t3\t2\t\\N\t\\N\t\\N\t\\N\t\\N\t7\t\\N\t\\N\t[]\t\\N\t"
				     "{\"id\":2,\"properties\":[],\"customer_id\":\"x\","
				     "\"contact_id\":\"7\"}\n");
	row_of(&row, &l.rows, 2);
	ASSERT_EQ_STR(buf_str(&row), "7\t3\t3\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t"
				     "2024-03-12T10:31:36-07:00\t\\N\t\\N\t"
				     "{\"id\":3,\"properties\":null,\"customer\":\"Acme\","
				     "\"updated_at\":\"2024-03-12T10:31:36-07:00\","
				     "\"asset_serial\":\"\"}\n");
	buf_free(&row);
	load_free(&l);
	buf_free(&body);
}

/* ---- customer_name --------------------------------------------------------- */

static void name_of(struct buf *out, const char *customer_json, int want_bad)
{
	struct jstream_value v = {JSTREAM_JSON, customer_json, strlen(customer_json)};
	buf_reset(out);
	ASSERT_EQ_INT(syncro_customer_name(out, &v), want_bad);
}

TEST(syncro_customer_name_rules)
{
	struct buf b = BUF_INIT;

	name_of(&b, "{\"id\":1,\"firstname\":\"Ana\",\"lastname\":\"Kim\",\"business_name\":\"Acme\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Acme");
	/* no business: the person */
	name_of(&b, "{\"firstname\":\"Ana\",\"lastname\":\"Kim\",\"business_name\":\"\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Ana Kim");
	name_of(&b, "{\"firstname\":\"Ana\",\"lastname\":\"Kim\",\"business_name\":null}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Ana Kim");
	name_of(&b, "{\"business_name\":\" \\t \",\"lastname\":\"Kim\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Kim");
	name_of(&b, "{\"firstname\":\"Ana\",\"lastname\":null}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Ana");
	/* nothing at all: NULL */
	name_of(&b, "{\"business_name\":\"\",\"firstname\":\"\",\"lastname\":\" \"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "\\N");
	name_of(&b, "{}", 0);
	ASSERT_EQ_STR(buf_str(&b), "\\N");
	/* a number where a name should be is no name */
	name_of(&b, "{\"business_name\":42,\"firstname\":\"Ana\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Ana");

	/* only top-level members count, whatever nested values hold */
	name_of(&b, "{\"properties\":{\"business_name\":\"Wrong\",\"x\":[\"}\",{\"a\":\"]\"}]},"
		    "\"contacts\":[{\"business_name\":\"Wrong too\"}],\"note\":\"\\\"business_name\\\":\","
		    "\"business_name\":\"Right\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Right");
	/* duplicate keys: the last wins, as for jstream's fields */
	name_of(&b, "{\"business_name\":\"First\",\"business_name\":\"Second\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Second");
	/* an escaped key is the same key */
	name_of(&b, "{\"business\\u005fname\":\"Escaped key\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Escaped key");
	/* whitespace between tokens */
	name_of(&b, " { \"a\" : [ 1 , 2 ] , \"business_name\" : \"Spaced\" } ", 0);
	ASSERT_EQ_STR(buf_str(&b), "Spaced");

	/* escapes decoded, then escaped again for COPY */
	name_of(&b, "{\"business_name\":\"North \\\"High\\\" \\\\ A\\/B\\tC\\nD\\r\\b\\f\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "North \"High\" \\\\ A/B\\tC\\nD\\r\b\f");
	name_of(&b, "{\"business_name\":\"caf\\u00e9 \\u20ac \\ud83d\\ude00 caf\xc3\xa9\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 caf\xc3\xa9");
	/* a lone surrogate and a NUL: U+FFFD, as jstream does */
	name_of(&b, "{\"business_name\":\"a\\udc00b\\u0000c\\ud800\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd");
	name_of(&b, "{\"firstname\":\"Zo\\u00eb\",\"lastname\":\"O\\u2019Neil\"}", 0);
	ASSERT_EQ_STR(buf_str(&b), "Zo\xc3\xab O\xe2\x80\x99Neil");

	/* a long name goes through whole */
	struct buf json = BUF_INIT, want = BUF_INIT;
	buf_puts(&json, "{\"business_name\":\"");
	for (int k = 0; k < 300; k++) {
		buf_printf(&json, "%d\\\\\\u00e9", k % 10);
		buf_printf(&want, "%d\\\\\xc3\xa9", k % 10);
	}
	buf_puts(&json, "\"}");
	name_of(&b, json.data, 0);
	ASSERT_EQ_STR(buf_str(&b), buf_str(&want));
	buf_free(&json);
	buf_free(&want);

	/* no customer: NULL; something else than an object: NULL, counted */
	struct jstream_value absent = {JSTREAM_ABSENT, "", 0}, null = {JSTREAM_NULL, "", 0};
	struct jstream_value text = {JSTREAM_STRING, "Acme", 4};
	buf_reset(&b);
	ASSERT_EQ_INT(syncro_customer_name(&b, &absent), 0);
	ASSERT_EQ_INT(syncro_customer_name(&b, &null), 0);
	ASSERT_EQ_INT(syncro_customer_name(&b, &text), 1);
	ASSERT_EQ_STR(buf_str(&b), "\\N\\N\\N");
	name_of(&b, "[{\"business_name\":\"In an array\"}]", 1);
	ASSERT_EQ_STR(buf_str(&b), "\\N");
	name_of(&b, "{\"business_name\":\"cut", 1);
	ASSERT_EQ_STR(buf_str(&b), "\\N");
	buf_free(&b);
}

TEST(syncro_customer_name_through_jstream)
{
	struct buf body = BUF_INIT, row = BUF_INIT;
	struct load l;

	/* what jstream makes of an embedded customer is what the scan reads */
	buf_puts(&body, "{\"assets\":[{\"id\":1,\"customer\":{\"id\":9,\"business_name\":"
			"\"Tab\\there \\\"q\\\" \\u00e9 \\ud83d\\ude00\"}},"
			"{\"id\":2,\"customer\":{\"id\":9,\"business_name\":null,\"firstname\":"
			"\"Ana\",\"lastname\":\"Kim\\\\\"}}]}");
	load(&l, &syncro_assets_endpoint, &body);
	ASSERT_EQ_INT(l.records, 2);
	row_of(&row, &l.rows, 0);
	ASSERT_CONTAINS(buf_str(&row), "\t\\N\tTab\\there \"q\" \xc3\xa9 \xf0\x9f\x98\x80\t\\N\t");
	row_of(&row, &l.rows, 1);
	ASSERT_CONTAINS(buf_str(&row), "\t\\N\tAna Kim\\\\\t\\N\t");
	ASSERT_EQ_INT(l.bad, 0);
	load_free(&l);
	buf_free(&body);
	buf_free(&row);
}

/* ---- /customers, /contacts, /settings -------------------------------------- */

TEST(syncro_customers_page)
{
	struct buf body = BUF_INIT, want = BUF_INIT;
	struct load l;

	buf_puts(&body, "{\"customers\":[");
	for (uint64_t c = 0; c < 10; c++) {
		struct simdata_syncro_customer cust;
		if (c)
			buf_putc(&body, ',');
		simdata_syncro_customer(&opts, c, &cust);
		simdata_syncro_customer_json(&cust, &body);

		struct buf json = BUF_INIT;
		simdata_syncro_customer_json(&cust, &json);
		buf_printf(&want, "%d\t%d\t%lld\t", ATTEMPT, PAGE, cust.id);
		copy_str(&want, cust.business_name);
		buf_printf(&want, "\t%s\t%s\t%s\t%s\t%s\t%s\t", cust.firstname, cust.lastname,
			   cust.email, cust.disabled ? "t" : "f", cust.created_at, cust.updated_at);
		copy_text(&want, json.data, json.len);
		buf_putc(&want, '\n');
		buf_free(&json);
	}
	buf_puts(&body, "],\"meta\":{\"total_pages\":1,\"total_entries\":10,\"per_page\":100,"
			"\"page\":1}}");
	load(&l, &syncro_customers_endpoint, &body);
	ASSERT_EQ_INT(l.records, 10);
	ASSERT_EQ_INT(l.total, 10);
	ASSERT_EQ_INT(l.per_page, 100);
	ASSERT_EQ_INT(l.bad, 0);
	ASSERT_EQ_STR(buf_str(&l.rows), buf_str(&want));
	ASSERT_CONTAINS(buf_str(&l.rows), "\t500004\tEvergreen ");
	ASSERT_CONTAINS(buf_str(&l.rows), "@customer4.example\tt\t"); /* disabled */
	assert_column_counts(&syncro_customers_endpoint, &l.rows);
	load_free(&l);

	/* empty names are NULL; disabled as a string */
	buf_reset(&body);
	buf_puts(&body, "{\"customers\":[{\"id\":\"77\",\"business_name\":\"\",\"firstname\":\"Ana\","
			"\"lastname\":\"Kim\",\"email\":\"\",\"disabled\":\"false\"}]}");
	load(&l, &syncro_customers_endpoint, &body);
	ASSERT_EQ_STR(buf_str(&l.rows), "7\t3\t77\t\\N\tAna\tKim\t\\N\tf\t\\N\t\\N\t"
					"{\"id\":\"77\",\"business_name\":\"\",\"firstname\":\"Ana\","
					"\"lastname\":\"Kim\",\"email\":\"\",\"disabled\":\"false\"}\n");
	load_free(&l);
	buf_free(&body);
	buf_free(&want);
}

TEST(syncro_contacts_page)
{
	struct buf body = BUF_INIT, want = BUF_INIT;
	struct load l;

	buf_puts(&body, "{\"contacts\":[");
	for (uint64_t k = 50; k < 60; k++) {
		struct simdata_syncro_contact c;
		struct buf json = BUF_INIT;
		if (k > 50)
			buf_putc(&body, ',');
		simdata_syncro_contact(&opts, k, &c);
		simdata_syncro_contact_json(&c, &body);
		simdata_syncro_contact_json(&c, &json);
		buf_printf(&want, "%d\t%d\t%lld\t%lld\t%s\t%s\t", ATTEMPT, PAGE, c.id, c.customer_id,
			   c.name, c.email);
		copy_text(&want, json.data, json.len);
		buf_putc(&want, '\n');
		buf_free(&json);
	}
	buf_puts(&body, "],\"meta\":{\"total_pages\":2,\"total_entries\":100,\"per_page\":50,"
			"\"page\":2}}");
	load(&l, &syncro_contacts_endpoint, &body);
	ASSERT_EQ_INT(l.records, 10);
	ASSERT_EQ_INT(l.total, 100);
	ASSERT_EQ_INT(l.per_page, 50);
	ASSERT_EQ_STR(buf_str(&l.rows), buf_str(&want));
	ASSERT(strncmp(buf_str(&l.rows), "7\t3\t700050\t500025\t", 18) == 0);
	assert_column_counts(&syncro_contacts_endpoint, &l.rows);
	load_free(&l);
	buf_free(&body);
	buf_free(&want);
}

TEST(syncro_asset_types_from_settings)
{
	struct buf body = BUF_INIT, want = BUF_INIT;
	struct load l;

	/* what the simulator's /settings answers */
	buf_puts(&body, "{\"general\":{\"company_name\":\"Simulated MSP\",\"time_zone\":\"UTC\"},"
			"\"asset_types\":[");
	for (int k = 0; k < SIMDATA_SYNCRO_NASSET_TYPES; k++) {
		buf_printf(&body, "%s{\"id\":%d,\"name\":\"%s\"}", k ? "," : "",
			   SIMDATA_SYNCRO_ASSET_TYPE_ID_BASE + k, simdata_syncro_asset_type_names[k]);
		buf_printf(&want, "%d\t%d\t%d\t%s\t{\"id\":%d,\"name\":\"%s\"}\n", ATTEMPT, PAGE,
			   SIMDATA_SYNCRO_ASSET_TYPE_ID_BASE + k, simdata_syncro_asset_type_names[k],
			   SIMDATA_SYNCRO_ASSET_TYPE_ID_BASE + k, simdata_syncro_asset_type_names[k]);
	}
	buf_puts(&body, "]}");
	load(&l, &syncro_asset_types_endpoint, &body);
	ASSERT(l.list_seen);
	ASSERT_EQ_INT(l.records, SIMDATA_SYNCRO_NASSET_TYPES);
	ASSERT_EQ_INT(l.total, -1);
	ASSERT_EQ_STR(buf_str(&l.rows), buf_str(&want));
	ASSERT(strncmp(buf_str(&l.rows), "7\t3\t9000\tWindows Workstation\t", 29) == 0);
	assert_column_counts(&syncro_asset_types_endpoint, &l.rows);
	load_free(&l);

	buf_reset(&body);
	buf_puts(&body, "{\"error\":\"Not authorized. The API token has expired\"}");
	load(&l, &syncro_asset_types_endpoint, &body);
	ASSERT(!l.list_seen);
	ASSERT_EQ_STR(buf_str(&l.error), "Not authorized. The API token has expired");
	load_free(&l);
	buf_free(&body);
	buf_free(&want);
}
