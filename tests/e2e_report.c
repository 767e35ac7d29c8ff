/* e2e_report.c - invsync report against a database loaded by real runs:
 * a Mosyle source "district" and a Syncro source "msp" synced from the
 * simulator, synced again with devices added, removed and renamed and
 * assets removed, then a run of the district that fails. A few rows are
 * then edited with SQL (serial keys as invsync would compute them): three
 * Syncro assets take Mosyle serial numbers (so
 * the reconciliation has matches that disagree) and one device is given a
 * name full of markup, quotes and control characters. Every format is
 * read back (JSON with yajl, CSV with a strict RFC 4180 reader, the HTML
 * page in headless Chromium) and its figures compared with the database's
 * own counts and with what the simulator served. */
#include "e2e.h"
#include "test.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#define FETCH "concurrency = 16\nwindow = 4\nretries = 1\nretry_delay_ms = 20\ntimeout = 20\n"
#define SYNCRO_KEY "report-test-syncro-key"
/* The test cluster trusts local connections: this password is never
 * checked, but it is a secret the report must not print. */
#define DB_PASSWORD "report-db-password-9731"

/* run 1, run 2 (devices added, removed, renamed; assets removed) */
#define SIM_RUN1 "--seed 5 --ios 120 --mac 40 --tvos 3 --visionos 0 --syncro-assets 60 " \
		 "--syncro-customers 6"
#define SIM_RUN2 "--seed 5 --ios 130 --mac 35 --tvos 3 --visionos 0 --rename-every 20 " \
		 "--syncro-assets 55 --syncro-customers 6"

#define MARKUP_NAME "<script>alert(\"x\")</script> & 'q', \t\"tab\"\nline \xc3\xa9"
#define MARKUP_SQL "E'<script>alert(\"x\")</script> & ''q'', \\t\"tab\"\\nline \xc3\xa9'"

/* A name of emoji and CJK characters, two terminal columns each: 44 in
 * all, more than the text format shows of a device name. */
#define WIDE_NAME "\xf0\x9f\x8d\x8e\xf0\x9f\x8d\x8e\xf0\x9f\x8d\x8e\xf0\x9f\x8d\x8e" \
		  "\xf0\x9f\x8d\x8e\xf0\x9f\x8d\x8e\xf0\x9f\x8d\x8e\xf0\x9f\x8d\x8e" \
		  "\xf0\x9f\x8d\x8e\xf0\x9f\x8d\x8e\xe6\xbc\xa2\xe5\xad\x97\xe6\xbc\xa2" \
		  "\xe5\xad\x97\xe6\xbc\xa2\xe5\xad\x97\xe6\xbc\xa2\xe5\xad\x97\xe6\xbc\xa2" \
		  "\xe5\xad\x97\xe6\xbc\xa2\xe5\xad\x97"

struct fixture {
	const char *schema;
	const char *cfg;
	PGconn *db;
};

static const char *fixture_config(const char *schema, int port)
{
	struct buf body = BUF_INIT;
	buf_printf(&body,
		   "conninfo = password=" DB_PASSWORD "\n\n[fetch]\n" FETCH
		   "syncro_requests_per_minute = 60000\n\n"
		   "[mosyle district]\nbase_url = http://127.0.0.1:%d/v2\naccess_token = " E2E_TOKEN
		   "\nemail = " E2E_EMAIL "\npassword = " E2E_PASSWORD "\nendpoints = devices\n\n"
		   "[syncro msp]\nbase_url = http://127.0.0.1:%d/api/v1\napi_key = " SYNCRO_KEY
		   "\nendpoints = assets, contacts\n",
		   port, port);
	const char *path = e2e_config(schema, body.data);
	buf_free(&body);
	return path;
}

/* One sync against a simulator started with sim_args; only: one source or
 * NULL. Returns the config it used. */
static const char *sync_step(const char *schema, const char *sim_args, const char *only,
			     int want_status)
{
	struct e2e_sim sim;
	struct e2e_result res;
	char args[512];
	snprintf(args, sizeof(args), "%s --syncro-api-key " SYNCRO_KEY, sim_args);
	e2e_sim_start(&sim, args);
	const char *cfg = fixture_config(schema, sim.port);
	const char *argv[] = {"sync", "-q", "-c", cfg, only ? "--source" : NULL, only, NULL};
	e2e_invsync(&res, argv);
	e2e_sim_stop(&sim);
	if (res.status != want_status)
		test_fail(__FILE__, __LINE__, "invsync sync exited %d, not %d: %s", res.status,
			  want_status, buf_str(&res.err));
	e2e_result_free(&res);
	return cfg;
}

static void fixture_init(struct fixture *fx, const char *name)
{
	fx->schema = e2e_schema(name);
	sync_step(fx->schema, SIM_RUN1, NULL, 0);
	sync_step(fx->schema, SIM_RUN2, NULL, 0);
	fx->cfg = sync_step(fx->schema, SIM_RUN2 " --fail-login", "district", 1);
	fx->db = e2e_db(fx->schema);
	/* three Syncro assets carry the serials of three Macs, written as
	 * Mosyle would not (lower case, a trailing space); the first keeps
	 * the device's name, the others do not */
	e2e_db_exec(fx->db,
		    "WITH d AS (SELECT serial_number, device_name,"
		    "  row_number() OVER (ORDER BY device_key) AS i FROM mosyle_devices"
		    "  WHERE os = 'mac' AND serial_number IS NOT NULL),"
		    " a AS (SELECT asset_id, row_number() OVER (ORDER BY asset_id) AS i"
		    "  FROM syncro_assets)"
		    " UPDATE syncro_assets s SET asset_serial = lower(d.serial_number) || ' ',"
		    "  serial_key = serial_key(lower(d.serial_number) || ' '),"
		    "  name = CASE WHEN d.i = 1 THEN d.device_name ELSE 'Front desk ' || d.i END"
		    " FROM d JOIN a USING (i) WHERE s.asset_id = a.asset_id AND d.i <= 3");
	/* the device Syncro lacks that checked in last */
	e2e_db_exec(fx->db,
		    "UPDATE mosyle_devices SET device_name = " MARKUP_SQL ","
		    " user_name = E'Ann\\nLee', model = E'iPad\\r7',"
		    " last_checkin = now() + interval '1 minute'"
		    " WHERE device_key ="
		    " (SELECT device_key FROM mosyle_devices WHERE os = 'ios'"
		    "  AND serial_number IS NOT NULL ORDER BY device_key LIMIT 1)");
	/* and the one after it */
	e2e_db_exec(fx->db,
		    "UPDATE mosyle_devices SET device_name = '" WIDE_NAME "',"
		    " last_checkin = now() + interval '30 seconds' WHERE device_key ="
		    " (SELECT device_key FROM mosyle_devices WHERE os = 'ios'"
		    "  AND serial_number IS NOT NULL ORDER BY device_key OFFSET 1 LIMIT 1)");
}

static void fixture_free(struct fixture *fx)
{
	PQfinish(fx->db);
}

/* invsync report -c cfg with more arguments (NULL-terminated). */
static void report(struct e2e_result *res, const char *cfg, const char *const *more)
{
	const char *argv[24] = {"report", "-c", cfg};
	size_t n = 3;
	for (; more && *more && n < ARRAY_SIZE(argv) - 1; more++)
		argv[n++] = *more;
	argv[n] = NULL;
	e2e_invsync(res, argv);
}

static void assert_no_secrets(const char *s)
{
	static const char *const secrets[] = {DB_PASSWORD, SYNCRO_KEY, E2E_TOKEN, E2E_EMAIL,
					      E2E_PASSWORD};
	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++)
		if (strstr(s, secrets[i]))
			test_fail(__FILE__, __LINE__, "a secret (%s) is in the output", secrets[i]);
}

static PGresult *rows(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", sql, PQresultErrorMessage(r));
	return r;
}

/* The run ids of the district, oldest first. */
static long long district_run(PGconn *db, int n)
{
	return e2e_db_int(db, "SELECT run_id FROM sync_runs WHERE source = 'district'"
			      " ORDER BY run_id OFFSET %d LIMIT 1", n - 1);
}

/* ---- JSON ------------------------------------------------------------------ */

static yajl_val json_parse(const char *text)
{
	char errbuf[256];
	yajl_val v = yajl_tree_parse(text, errbuf, sizeof(errbuf));
	if (!v)
		test_fail(__FILE__, __LINE__, "not JSON: %s", errbuf);
	return v;
}

/* v[a][b] (b may be NULL); fails the test if missing. */
static yajl_val jpath(yajl_val v, const char *a, const char *b)
{
	const char *path[] = {a, b, NULL};
	yajl_val r = yajl_tree_get(v, path, yajl_t_any);
	if (!r)
		test_fail(__FILE__, __LINE__, "no %s%s%s in the JSON", a, b ? "." : "", b ? b : "");
	return r;
}

static yajl_val jarray(yajl_val v, const char *a, const char *b)
{
	yajl_val r = jpath(v, a, b);
	if (!YAJL_IS_ARRAY(r))
		test_fail(__FILE__, __LINE__, "%s.%s is not an array", a, b ? b : "");
	return r;
}

static yajl_val jfield(yajl_val obj, const char *key)
{
	const char *path[] = {key, NULL};
	yajl_val r = yajl_tree_get(obj, path, yajl_t_any);
	if (!r)
		test_fail(__FILE__, __LINE__, "no key %s", key);
	return r;
}

/* A string field; NULL for JSON null. */
static const char *jstr(yajl_val obj, const char *key)
{
	yajl_val v = jfield(obj, key);
	if (YAJL_IS_NULL(v))
		return NULL;
	if (!YAJL_IS_STRING(v))
		test_fail(__FILE__, __LINE__, "%s is not a string", key);
	return YAJL_GET_STRING(v);
}

/* An integer field; -1 for JSON null. */
static long long jint(yajl_val obj, const char *key)
{
	yajl_val v = jfield(obj, key);
	if (YAJL_IS_NULL(v))
		return -1;
	if (!YAJL_IS_INTEGER(v))
		test_fail(__FILE__, __LINE__, "%s is not an integer", key);
	return YAJL_GET_INTEGER(v);
}

/* The element of arr whose k1 is v1 (and k2 is v2, if k2), or NULL. */
static yajl_val jfind(yajl_val arr, const char *k1, const char *v1, const char *k2, const char *v2)
{
	for (size_t i = 0; i < arr->u.array.len; i++) {
		yajl_val e = arr->u.array.values[i];
		const char *a = jstr(e, k1), *b = k2 ? jstr(e, k2) : NULL;
		if (a && strcmp(a, v1) == 0 && (!k2 || (b && strcmp(b, v2) == 0)))
			return e;
	}
	return NULL;
}

/* Every row of sql (key1, key2, count) is the row of arr with those keys
 * and that count, and arr has no other row. */
static void assert_rows_match(PGconn *db, yajl_val arr, const char *sql, const char *k1,
			      const char *k2, const char *count)
{
	PGresult *r = rows(db, sql);
	ASSERT_EQ_INT(arr->u.array.len, PQntuples(r));
	for (int i = 0; i < PQntuples(r); i++) {
		yajl_val e = jfind(arr, k1, PQgetvalue(r, i, 0), k2, PQgetvalue(r, i, 1));
		if (!e)
			test_fail(__FILE__, __LINE__, "no row %s=%s %s=%s", k1, PQgetvalue(r, i, 0),
				  k2, PQgetvalue(r, i, 1));
		ASSERT_EQ_INT(jint(e, count), atoll(PQgetvalue(r, i, 2)));
	}
	PQclear(r);
}

TEST(e2e_report_json)
{
	struct fixture fx;
	fixture_init(&fx, "report_json");
	struct e2e_result res;
	const char *more[] = {"--format", "json", "--top", "3", NULL};
	report(&res, fx.cfg, more);
	ASSERT_EQ_INT(res.status, 0);
	assert_no_secrets(res.out.data);
	yajl_val j = json_parse(res.out.data);
	PGconn *db = fx.db;

	/* summary: what the simulator served the second time */
	yajl_val sum = jpath(j, "summary", NULL);
	ASSERT_EQ_INT(jint(sum, "sources"), 2);
	ASSERT_EQ_INT(jint(sum, "mosyle_devices"), 130 + 35 + 3);
	ASSERT_EQ_INT(jint(sum, "syncro_assets"), 55);
	ASSERT_EQ_INT(jint(sum, "last_runs_succeeded"), 1);
	ASSERT_EQ_INT(jint(sum, "last_runs_failed"), 1);
	ASSERT_EQ_INT(jint(sum, "last_runs_running"), 0);

	/* inventory: per source and OS or asset type, and per OS version */
	yajl_val by_os = jarray(j, "inventory", "by_os");
	ASSERT_EQ_INT(jint(jfind(by_os, "source", "district", "os", "ios"), "devices"), 130);
	ASSERT_EQ_INT(jint(jfind(by_os, "source", "district", "os", "mac"), "devices"), 35);
	ASSERT_EQ_STR(jstr(jfind(by_os, "source", "msp", NULL, NULL), "kind"), "syncro");
	assert_rows_match(db, by_os,
			  "SELECT source, os, count(*) FROM mosyle_devices GROUP BY 1, 2"
			  " UNION ALL SELECT source, asset_type, count(*) FROM syncro_assets"
			  " GROUP BY 1, 2",
			  "source", "os", "devices");
	assert_rows_match(db, jarray(j, "inventory", "by_os_version"),
			  "SELECT os, os_version, count(*) FROM mosyle_devices GROUP BY 1, 2",
			  "os", "os_version", "devices");

	/* last runs: the district's failed, its last success is run 2's */
	yajl_val runs = jarray(j, "last_runs", NULL);
	ASSERT_EQ_INT(runs->u.array.len, 2);
	yajl_val d = jfind(runs, "source", "district", NULL, NULL);
	ASSERT_EQ_STR(jstr(d, "status"), "failed");
	ASSERT_EQ_INT(jint(d, "run_id"), district_run(db, 3));
	ASSERT_EQ_INT(jint(d, "loaded"), -1);
	ASSERT_EQ_INT(jint(d, "recent_runs"), 3);
	ASSERT_EQ_INT(jint(d, "recent_failures"), 1);
	ASSERT_CONTAINS(jstr(d, "error"), "login failed");
	struct buf s = BUF_INIT;
	e2e_db_str(db, &s, "SELECT error FROM sync_runs WHERE run_id = %lld AND source = 'district'",
		   district_run(db, 3));
	ASSERT_EQ_STR(jstr(d, "error"), buf_str(&s));
	e2e_db_str(db, &s, "SELECT to_char(finished_at AT TIME ZONE 'UTC',"
			   " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM sync_runs"
			   " WHERE run_id = %lld AND source = 'district'", district_run(db, 2));
	ASSERT_EQ_STR(jstr(d, "last_succeeded_at"), buf_str(&s));
	ASSERT(YAJL_IS_DOUBLE(jfield(d, "duration_s")) || YAJL_IS_INTEGER(jfield(d, "duration_s")));
	yajl_val m = jfind(runs, "source", "msp", NULL, NULL);
	ASSERT_EQ_STR(jstr(m, "status"), "succeeded");
	ASSERT(jstr(m, "error") == NULL);
	ASSERT_EQ_INT(jint(m, "loaded"), e2e_db_int(db, "SELECT loaded FROM sync_runs"
						      " WHERE source = 'msp' ORDER BY run_id DESC LIMIT 1"));

	/* changes of each source's latest success: the district's run 2 added
	 * iOS 120..129, dropped Mac 35..39, renamed (name and OS version) the
	 * kept devices at index 0, 20, ...: 6 iOS, 2 Mac, 1 tvOS */
	yajl_val ch = jarray(j, "changes", "runs");
	ASSERT_EQ_INT(ch->u.array.len, 2);
	yajl_val dc = jfind(ch, "source", "district", NULL, NULL);
	ASSERT_EQ_INT(jint(dc, "run_id"), district_run(db, 2));
	ASSERT_EQ_INT(jint(dc, "previous_run_id"), district_run(db, 1));
	ASSERT_EQ_INT(jint(dc, "appeared"), 10);
	ASSERT_EQ_INT(jint(dc, "removed"), 5);
	ASSERT_EQ_INT(jint(dc, "changed"), 9);
	ASSERT_EQ_INT(jint(dc, "field_changes"), 18);
	yajl_val mc = jfind(ch, "source", "msp", NULL, NULL);
	ASSERT_EQ_INT(jint(mc, "appeared"), 0);
	ASSERT_EQ_INT(jint(mc, "removed"), 5);
	ASSERT_EQ_INT(jint(mc, "changed"), 0);
	yajl_val fields = jarray(j, "changes", "fields");
	ASSERT_EQ_INT(fields->u.array.len, 2);
	ASSERT_EQ_INT(jint(jfind(fields, "source", "district", "field", "device_name"), "records"), 9);
	ASSERT_EQ_INT(jint(jfind(fields, "source", "district", "field", "os_version"), "records"), 9);

	/* reconciliation: the counts are the views', the lists cut at 3 */
	yajl_val counts = jarray(j, "gaps", "counts");
	ASSERT_EQ_INT(counts->u.array.len, 3);
	long long not_in_syncro = e2e_db_int(db, "SELECT count(*) FROM mosyle_devices_not_in_syncro");
	long long not_in_mosyle = e2e_db_int(db, "SELECT count(*) FROM syncro_assets_not_in_mosyle");
	ASSERT(not_in_syncro > 100 && not_in_mosyle > 40);
	yajl_val g = jfind(counts, "gap", "mosyle_devices_not_in_syncro", NULL, NULL);
	ASSERT_EQ_INT(jint(g, "records"), not_in_syncro);
	ASSERT_EQ_INT(jint(g, "name_differs"), -1);
	g = jfind(counts, "gap", "syncro_assets_not_in_mosyle", NULL, NULL);
	ASSERT_EQ_INT(jint(g, "records"), not_in_mosyle);
	g = jfind(counts, "gap", "serial_mismatches", NULL, NULL);
	ASSERT_EQ_INT(jint(g, "records"), e2e_db_int(db, "SELECT count(*) FROM serial_mismatches"));
	ASSERT(jint(g, "records") >= 2);
	ASSERT_EQ_INT(jint(g, "name_differs"),
		      e2e_db_int(db, "SELECT count(*) FROM serial_mismatches WHERE name_differs"));
	ASSERT_EQ_INT(jint(g, "user_differs"),
		      e2e_db_int(db, "SELECT count(*) FROM serial_mismatches WHERE user_differs"));
	yajl_val list = jarray(j, "gaps", "mosyle_devices_not_in_syncro");
	ASSERT_EQ_INT(list->u.array.len, 3);
	/* the latest check-in first: the device with the markup name, intact */
	ASSERT_EQ_STR(jstr(list->u.array.values[0], "device_name"), MARKUP_NAME);
	ASSERT_EQ_STR(jstr(list->u.array.values[0], "user_name"), "Ann\nLee");
	ASSERT_EQ_STR(jstr(list->u.array.values[0], "model"), "iPad\r7");
	ASSERT_EQ_STR(jstr(list->u.array.values[1], "device_name"), WIDE_NAME);
	ASSERT_EQ_INT(jarray(j, "gaps", "syncro_assets_not_in_mosyle")->u.array.len, 3);
	list = jarray(j, "gaps", "serial_mismatches");
	ASSERT_EQ_INT(list->u.array.len, jint(g, "records") < 3 ? jint(g, "records") : 3);
	for (size_t i = 0; i < list->u.array.len; i++) {
		yajl_val e = list->u.array.values[i];
		ASSERT_EQ_STR(jstr(e, "syncro_source"), "msp");
		e2e_db_str(db, &s, "SELECT serial_key FROM serial_mismatches WHERE asset_id = %lld",
			   jint(e, "asset_id"));
		ASSERT_EQ_STR(jstr(e, "serial_key"), buf_str(&s));
		ASSERT(YAJL_IS_TRUE(jfield(e, "name_differs")) ||
		       YAJL_IS_FALSE(jfield(e, "name_differs")));
	}

	/* devices needing attention */
	yajl_val att = jarray(j, "attention", NULL);
	ASSERT_EQ_INT(att->u.array.len, 1);
	ASSERT_EQ_INT(jint(att->u.array.values[0], "stale_30d"),
		      e2e_db_int(db, "SELECT count(*) FROM stale_devices(30)"));
	ASSERT_EQ_INT(jint(att->u.array.values[0], "needing_os_update"),
		      e2e_db_int(db, "SELECT count(*) FROM devices_needing_os_update"));
	ASSERT_EQ_INT(jint(att->u.array.values[0], "without_user"),
		      e2e_db_int(db, "SELECT count(*) FROM devices_without_user"));
	ASSERT(jint(att->u.array.values[0], "without_user") > 0);

	/* trend: every run, oldest first per source, with what it loaded */
	yajl_val trend = jarray(j, "trend", NULL);
	ASSERT_EQ_INT(trend->u.array.len, e2e_db_int(db, "SELECT count(*) FROM sync_runs"));
	ASSERT_EQ_INT(trend->u.array.len, 5);
	ASSERT_EQ_INT(jint(trend->u.array.values[0], "run_id"), district_run(db, 1));
	ASSERT_EQ_INT(jint(trend->u.array.values[0], "loaded"), 120 + 40 + 3);
	ASSERT_EQ_INT(jint(trend->u.array.values[1], "loaded"), 168);
	ASSERT_EQ_INT(jint(trend->u.array.values[1], "loaded_change"), 5);
	ASSERT_EQ_STR(jstr(trend->u.array.values[2], "status"), "failed");
	ASSERT_EQ_INT(jint(trend->u.array.values[2], "loaded"), -1);
	ASSERT_EQ_STR(jstr(trend->u.array.values[3], "source"), "msp");

	yajl_tree_free(j);
	buf_free(&s);
	e2e_result_free(&res);
	fixture_free(&fx);
}

/* ---- CSV ------------------------------------------------------------------- */

struct csv_row {
	char block[64];
	size_t n;
	char *f[24];
};

struct csv {
	struct csv_row *rows;
	size_t n;
};

/* A strict RFC 4180 reader of the report's layout: "# NAME" lines start a
 * block, an empty line ends it; every line ends in CRLF. */
static void csv_parse(const char *p, struct csv *out)
{
	char block[64] = "";
	out->rows = NULL;
	out->n = 0;
	while (*p) {
		if (p[0] == '\r' && p[1] == '\n') {
			block[0] = '\0';
			p += 2;
			continue;
		}
		if (*p == '#') {
			const char *e = strstr(p, "\r\n");
			if (!e || p[1] != ' ' || e - p - 2 >= (long)sizeof(block))
				test_fail(__FILE__, __LINE__, "bad block line at %.40s", p);
			snprintf(block, sizeof(block), "%.*s", (int)(e - p - 2), p + 2);
			p = e + 2;
			continue;
		}
		if (!block[0])
			test_fail(__FILE__, __LINE__, "a record outside a block: %.40s", p);
		out->rows = xrealloc(out->rows, (out->n + 1) * sizeof(*out->rows));
		struct csv_row *r = &out->rows[out->n++];
		memset(r, 0, sizeof(*r));
		snprintf(r->block, sizeof(r->block), "%s", block);
		for (;;) {
			struct buf f = BUF_INIT;
			if (*p == '"') {
				for (p++;; p++) {
					if (!*p)
						test_fail(__FILE__, __LINE__, "unterminated quote");
					if (*p == '"' && p[1] == '"')
						buf_putc(&f, *p++);
					else if (*p == '"')
						break;
					else
						buf_putc(&f, *p);
				}
				p++;
			} else {
				while (*p && *p != ',' && *p != '\r' && *p != '\n' && *p != '"')
					buf_putc(&f, *p++);
				if (*p == '"' || *p == '\n')
					test_fail(__FILE__, __LINE__, "a bare quote or LF: %.40s", p);
			}
			if (r->n == ARRAY_SIZE(r->f))
				test_fail(__FILE__, __LINE__, "too many fields");
			r->f[r->n++] = f.data ? f.data : xstrdup("");
			if (*p == ',') {
				p++;
				continue;
			}
			if (p[0] == '\r' && p[1] == '\n') {
				p += 2;
				break;
			}
			test_fail(__FILE__, __LINE__, "a record not ending in CRLF: %.40s", p);
		}
	}
}

static void csv_free(struct csv *c)
{
	for (size_t i = 0; i < c->n; i++)
		for (size_t k = 0; k < c->rows[i].n; k++)
			free(c->rows[i].f[k]);
	free(c->rows);
}

/* The rows of a block (the heading first) joined as "a|b|c" lines. */
static void csv_block(const struct csv *c, const char *block, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->rows[i].block, block) != 0)
			continue;
		for (size_t k = 0; k < c->rows[i].n; k++)
			buf_printf(out, "%s%s", k ? "|" : "", c->rows[i].f[k]);
		buf_putc(out, '\n');
	}
}

TEST(e2e_report_csv)
{
	struct fixture fx;
	fixture_init(&fx, "report_csv");
	struct e2e_result res;
	const char *more[] = {"--format", "csv", NULL};
	report(&res, fx.cfg, more);
	ASSERT_EQ_INT(res.status, 0);
	assert_no_secrets(res.out.data);
	struct csv c;
	csv_parse(res.out.data, &c);
	struct buf got = BUF_INIT, want = BUF_INIT;

	/* every table, in order, each block once */
	static const char *const blocks[] = {
		"summary", "inventory.by_os", "inventory.by_os_version", "last_runs", "changes.runs",
		"changes.fields", "gaps.counts", "gaps.mosyle_devices_not_in_syncro",
		"gaps.syncro_assets_not_in_mosyle", "gaps.serial_mismatches", "attention", "trend"};
	size_t b = 0;
	for (size_t i = 0; i < c.n; i++) {
		if (b < ARRAY_SIZE(blocks) && strcmp(c.rows[i].block, blocks[b]) == 0)
			b++;
		else if (b == 0 || strcmp(c.rows[i].block, blocks[b - 1]) != 0)
			test_fail(__FILE__, __LINE__, "block %s out of order", c.rows[i].block);
	}
	ASSERT_EQ_INT(b, ARRAY_SIZE(blocks));

	/* the inventory, row for row, as the database counts it */
	csv_block(&c, "inventory.by_os", &got);
	PGresult *r = rows(fx.db, "SELECT 'mosyle|' || source || '|' || os || '|' || count(*)"
				  " FROM mosyle_devices GROUP BY source, os ORDER BY count(*) DESC, os");
	buf_puts(&want, "kind|source|os|devices\n");
	for (int i = 0; i < PQntuples(r); i++)
		buf_printf(&want, "%s\n", PQgetvalue(r, i, 0));
	PQclear(r);
	r = rows(fx.db, "SELECT 'syncro|' || source || '|' || asset_type || '|' || count(*)"
			" FROM syncro_assets GROUP BY source, asset_type"
			" ORDER BY count(*) DESC, asset_type");
	for (int i = 0; i < PQntuples(r); i++)
		buf_printf(&want, "%s\n", PQgetvalue(r, i, 0));
	PQclear(r);
	ASSERT_EQ_STR(buf_str(&got), buf_str(&want));
	ASSERT_CONTAINS(buf_str(&got), "mosyle|district|ios|130\n");

	/* exact rows of the changes and the reconciliation counts */
	csv_block(&c, "changes.fields", &got);
	ASSERT_EQ_STR(buf_str(&got), "source|table_name|field|records\n"
				     "district|mosyle_devices|device_name|9\n"
				     "district|mosyle_devices|os_version|9\n");
	csv_block(&c, "gaps.counts", &got);
	buf_reset(&want);
	buf_printf(&want,
		   "gap|records|name_differs|user_differs\n"
		   "mosyle_devices_not_in_syncro|%lld||\nsyncro_assets_not_in_mosyle|%lld||\n"
		   "serial_mismatches|%lld|%lld|%lld\n",
		   e2e_db_int(fx.db, "SELECT count(*) FROM mosyle_devices_not_in_syncro"),
		   e2e_db_int(fx.db, "SELECT count(*) FROM syncro_assets_not_in_mosyle"),
		   e2e_db_int(fx.db, "SELECT count(*) FROM serial_mismatches"),
		   e2e_db_int(fx.db, "SELECT count(*) FROM serial_mismatches WHERE name_differs"),
		   e2e_db_int(fx.db, "SELECT count(*) FROM serial_mismatches WHERE user_differs"));
	ASSERT_EQ_STR(buf_str(&got), buf_str(&want));

	/* the markup name survives quoting (comma, quotes, tab, LF), and so
	 * do a model with nothing but a CR and a user name with nothing but
	 * an LF in it */
	bool seen = false;
	for (size_t i = 0; i < c.n; i++) {
		if (strcmp(c.rows[i].block, "gaps.mosyle_devices_not_in_syncro") == 0 &&
		    c.rows[i].n == 8 && strcmp(c.rows[i].f[3], MARKUP_NAME) == 0) {
			ASSERT_EQ_STR(c.rows[i].f[5], "iPad\r7");
			ASSERT_EQ_STR(c.rows[i].f[6], "Ann\nLee");
			seen = true;
		}
	}
	ASSERT(seen);
	/* 10 rows of each list by default, under the heading */
	csv_block(&c, "gaps.syncro_assets_not_in_mosyle", &got);
	size_t lines = 0;
	for (const char *p = got.data; (p = strchr(p, '\n')); p++)
		lines++;
	ASSERT_EQ_INT(lines, 1 + 10);
	/* booleans and NULLs */
	csv_block(&c, "last_runs", &got);
	ASSERT_CONTAINS(buf_str(&got), "|failed|");
	csv_block(&c, "gaps.serial_mismatches", &got);
	ASSERT(strstr(buf_str(&got), "|true|") || strstr(buf_str(&got), "|false|"));

	csv_free(&c);
	buf_free(&got);
	buf_free(&want);
	e2e_result_free(&res);
	fixture_free(&fx);
}

/* ---- Text ------------------------------------------------------------------ */

/* The terminal columns of the n bytes at s: emoji (4-byte UTF-8) and
 * CJK ideographs take two. */
static size_t display_cols(const char *s, size_t n)
{
	size_t cols = 0, len;
	for (size_t i = 0; i < n; i += len) {
		if (!util_utf8_next(s + i, n - i, &len))
			test_fail(__FILE__, __LINE__, "ill-formed UTF-8 at %zu", i);
		unsigned char c = (unsigned char)s[i];
		bool cjk = c == 0xe4 || (c >= 0xe5 && c <= 0xe9);
		cols += len == 4 || cjk ? 2 : 1;
	}
	return cols;
}

/* s with every run of spaces as one. */
static void squeeze(struct buf *out, const char *s)
{
	buf_reset(out);
	for (; *s; s++)
		if (*s != ' ' || (out->len && out->data[out->len - 1] != ' '))
			buf_putc(out, *s);
}

TEST(e2e_report_text)
{
	struct fixture fx;
	fixture_init(&fx, "report_text");
	struct e2e_result res;
	report(&res, fx.cfg, NULL);
	ASSERT_EQ_INT(res.status, 0);
	assert_no_secrets(res.out.data);
	const char *out = res.out.data;
	ASSERT(strncmp(out, "invsync report, ", 16) == 0);

	/* no line wider than 100 columns; no control character but LF */
	for (const char *line = out; *line;) {
		const char *nl = strchr(line, '\n');
		ASSERT(nl != NULL);
		for (const char *p = line; p < nl; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				test_fail(__FILE__, __LINE__, "control character %#x in %.*s", *p,
					  (int)(nl - line), line);
		if (display_cols(line, (size_t)(nl - line)) > 100)
			test_fail(__FILE__, __LINE__, "a line of %zu columns: %.*s",
				  display_cols(line, (size_t)(nl - line)), (int)(nl - line), line);
		line = nl + 1;
	}
	/* the list's rows line up: its last column, the check-in time, ends
	 * every row at the same column, wide characters or not */
	const char *list = strstr(out, "\nMosyle devices not in Syncro");
	ASSERT(list != NULL);
	list = strchr(list + 1, '\n') + 1;
	size_t row_cols = 0, nrows = 0;
	bool wide_seen = false;
	for (const char *line = strchr(list, '\n') + 1; strncmp(line, "  (", 3) != 0;
	     line = strchr(line, '\n') + 1, nrows++) {
		size_t cols = display_cols(line, (size_t)(strchr(line, '\n') - line));
		if (nrows == 0)
			row_cols = cols;
		if (cols != row_cols)
			test_fail(__FILE__, __LINE__, "row %zu is %zu columns, not %zu: %.40s", nrows,
				  cols, row_cols, line);
		wide_seen |= strstr(line, "\xf0\x9f\x8d\x8e\xf0\x9f\x8d\x8e") != NULL;
	}
	ASSERT_EQ_INT(nrows, 10);
	ASSERT(wide_seen);

	struct buf sq = BUF_INIT, want = BUF_INIT;
	squeeze(&sq, out);
	const char *s = buf_str(&sq);
	ASSERT_CONTAINS(s, "\n Mosyle devices 168\n");
	ASSERT_CONTAINS(s, "\n Syncro assets 55\n");
	ASSERT_CONTAINS(s, "\n last runs failed 1\n");
	ASSERT_CONTAINS(s, "\n mosyle district ios 130\n");
	ASSERT_CONTAINS(s, "\n mosyle district mac 35\n");
	/* the district's failed run, its error under it */
	ASSERT_CONTAINS(s, "\n district failed ");
	ASSERT_CONTAINS(s, "\n error: login failed");
	/* changes of run 2 after run 1: appeared, removed, changed */
	buf_printf(&want, "\n district %lld %lld ", district_run(fx.db, 2), district_run(fx.db, 1));
	ASSERT_CONTAINS(s, buf_str(&want));
	ASSERT_CONTAINS(s, " 10 5 9\n");
	ASSERT_CONTAINS(s, "\n district mosyle_devices device_name 9\n");
	/* the reconciliation, and the first 10 of the list */
	buf_reset(&want);
	buf_printf(&want, "\n mosyle_devices_not_in_syncro %lld - -\n",
		   e2e_db_int(fx.db, "SELECT count(*) FROM mosyle_devices_not_in_syncro"));
	ASSERT_CONTAINS(s, buf_str(&want));
	buf_reset(&want);
	buf_printf(&want, "\n (10 of %lld)\n",
		   e2e_db_int(fx.db, "SELECT count(*) FROM mosyle_devices_not_in_syncro"));
	ASSERT_CONTAINS(s, buf_str(&want));
	/* the markup name: its tab and LF are spaces, and it is cut */
	const char *name = strstr(s, "\n district ");
	name = name ? strstr(name, " <script>alert(\"x\")</script> &") : NULL;
	ASSERT(name != NULL);
	ASSERT(strchr(name, '\n') - name < 100);
	ASSERT(strstr(name, "\xe2\x80\xa6") && strstr(name, "\xe2\x80\xa6") < strchr(name, '\n'));
	/* the trend: a line per run */
	ASSERT_CONTAINS(s, "\nThe last 30 runs of each source\n");
	buf_reset(&want);
	buf_printf(&want, "\n district %lld ", district_run(fx.db, 3));
	ASSERT_CONTAINS(strstr(s, "\nThe last 30 runs"), buf_str(&want));

	buf_free(&sq);
	buf_free(&want);
	e2e_result_free(&res);
	fixture_free(&fx);
}

/* ---- The HTML page, in headless Chromium ------------------------------------ */

static void read_whole(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "r");
	if (!f)
		test_fail(__FILE__, __LINE__, "cannot read %s: %s", path, strerror(errno));
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
}

/* chromium on PATH (or INVSYNC_CHROMIUM); the test fails without it. */
static const char *chromium(void)
{
	const char *env = getenv("INVSYNC_CHROMIUM");
	if (env && *env)
		return env;
	static char found[512];
	const char *path = getenv("PATH");
	char *copy = xstrdup(path ? path : "/usr/bin:/bin");
	for (char *dir = strtok(copy, ":"); dir; dir = strtok(NULL, ":")) {
		snprintf(found, sizeof(found), "%s/chromium", dir);
		if (access(found, X_OK) == 0) {
			free(copy);
			return found;
		}
	}
	free(copy);
	test_fail(__FILE__, __LINE__, "chromium is not installed (Debian: apt-get install chromium;"
				      " make test installs it)");
}

/* Run chromium headless with args, stdout to out_file, in a process
 * group of its own that is killed after 60 s or once it is done. */
static void run_chromium(const char *dir, const char *const *args, const char *out_file)
{
	const char *bin = chromium();
	char profile[600], err_file[600];
	snprintf(profile, sizeof(profile), "--user-data-dir=%s/profile", dir);
	snprintf(err_file, sizeof(err_file), "%s/chromium.err", dir);
	const char *argv[24] = {bin, "--headless", "--no-sandbox", "--disable-gpu",
				"--no-first-run", "--disable-dev-shm-usage", profile};
	size_t n = 7;
	for (; *args && n < ARRAY_SIZE(argv) - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		setpgid(0, 0);
		int o = open(out_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, 1);
		dup2(e, 2);
		/* its caches and crash reports go to the test's directory */
		setenv("HOME", dir, 1);
		setenv("XDG_CONFIG_HOME", dir, 1);
		setenv("XDG_CACHE_HOME", dir, 1);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid);
	int status = 0;
	unsigned long long deadline = util_now_ms() + 60000;
	pid_t w;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && util_now_ms() < deadline)
		usleep(20 * 1000);
	/* helpers it left behind, or all of it after the time limit */
	kill(-pid, SIGKILL);
	if (w == 0) {
		(void)waitpid(pid, &status, 0);
		test_fail(__FILE__, __LINE__, "chromium did not finish within 60 s");
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		struct buf e = BUF_INIT;
		read_whole(err_file, &e);
		test_fail(__FILE__, __LINE__, "chromium exited %d: %s", status, buf_str(&e));
	}
}

/* The data-v of the element whose data-k is key, in the DOM as Chromium
 * serialises it. */
static long long dom_value(const char *dom, const char *key)
{
	struct buf k = BUF_INIT;
	buf_printf(&k, "data-k=\"%s\" data-v=\"", key);
	const char *at = strstr(dom, k.data);
	if (!at)
		test_fail(__FILE__, __LINE__, "no %s in the page", k.data);
	long long v = atoll(at + k.len);
	buf_free(&k);
	return v;
}

static size_t count_of(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	if (d)
		closedir(d);
	return n;
}

TEST(e2e_report_html_in_chromium)
{
	test_set_timeout(240);
	struct fixture fx;
	fixture_init(&fx, "report_html");
	PGconn *db = fx.db;
	char dir[512], pagedir[600], page[700], url[720], dom_file[600], png[600];
	snprintf(dir, sizeof(dir), "%s/%d-chromium", getenv("INVSYNC_TEST_TMP"), (int)getpid());
	snprintf(pagedir, sizeof(pagedir), "%s/page", dir);
	ASSERT(mkdir(dir, 0700) == 0 && mkdir(pagedir, 0755) == 0);
	snprintf(page, sizeof(page), "%s/report.html", pagedir);
	snprintf(url, sizeof(url), "file://%s", page);
	snprintf(dom_file, sizeof(dom_file), "%s/dom.html", dir);
	snprintf(png, sizeof(png), "%s/report.png", dir);

	/* --html with --format: JSON on stdout, the page in the file */
	struct e2e_result res;
	umask(077);
	const char *more[] = {"--format", "json", "--html", page, NULL};
	report(&res, fx.cfg, more);
	ASSERT_EQ_INT(res.status, 0);
	yajl_tree_free(json_parse(res.out.data));
	struct stat st;
	ASSERT(stat(page, &st) == 0 && S_ISREG(st.st_mode));
	ASSERT_EQ_INT(st.st_mode & 07777, 0644);
	ASSERT_EQ_INT(dir_entries(pagedir), 1); /* no temporary file left */

	/* self-contained, and the markup name is text */
	struct buf html = BUF_INIT;
	read_whole(page, &html);
	assert_no_secrets(html.data);
	static const char *const never[] = {"<script", "<link", " src=", " href=", "url(",
					    "@import", "<iframe", "<img"};
	for (size_t i = 0; i < ARRAY_SIZE(never); i++)
		if (strstr(html.data, never[i]))
			test_fail(__FILE__, __LINE__, "the page holds %s", never[i]);
	ASSERT_CONTAINS(html.data, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
				   "&#39;q&#39;, \t&quot;tab&quot;\nline \xc3\xa9");

	/* what Chromium made of it */
	const char *dump[] = {"--dump-dom", url, NULL};
	run_chromium(dir, dump, dom_file);
	struct buf dom = BUF_INIT;
	read_whole(dom_file, &dom);
	const char *d = buf_str(&dom);
	ASSERT_CONTAINS(d, "<h1>invsync report</h1>");
	ASSERT(strstr(d, "<script") == NULL);
	ASSERT_CONTAINS(d, "&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; 'q'");

	/* the figures, as the database has them */
	ASSERT_EQ_INT(dom_value(d, "summary.mosyle_devices"),
		      e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"));
	ASSERT_EQ_INT(dom_value(d, "summary.syncro_assets"), 55);
	ASSERT_EQ_INT(dom_value(d, "summary.last_runs_failed"), 1);
	ASSERT_EQ_INT(dom_value(d, "inventory.by_os.district.ios.devices"), 130);
	PGresult *r = rows(db, "SELECT source, asset_type, count(*) FROM syncro_assets GROUP BY 1, 2");
	for (int i = 0; i < PQntuples(r); i++) {
		char key[256];
		snprintf(key, sizeof(key), "inventory.by_os.%s.%s.devices", PQgetvalue(r, i, 0),
			 PQgetvalue(r, i, 1));
		ASSERT_EQ_INT(dom_value(d, key), atoll(PQgetvalue(r, i, 2)));
	}
	PQclear(r);
	ASSERT_EQ_INT(dom_value(d, "changes.runs.district.appeared"), 10);
	ASSERT_EQ_INT(dom_value(d, "changes.runs.district.removed"), 5);
	ASSERT_EQ_INT(dom_value(d, "gaps.counts.mosyle_devices_not_in_syncro.records"),
		      e2e_db_int(db, "SELECT count(*) FROM mosyle_devices_not_in_syncro"));
	ASSERT_EQ_INT(dom_value(d, "gaps.counts.serial_mismatches.records"),
		      e2e_db_int(db, "SELECT count(*) FROM serial_mismatches"));
	ASSERT_EQ_INT(dom_value(d, "attention.district.without_user"),
		      e2e_db_int(db, "SELECT count(*) FROM devices_without_user"));
	ASSERT_CONTAINS(d, "data-k=\"last_runs.district.status\" data-v=\"failed\"");

	/* the OS version chart: a bar per version, each the database's count */
	ASSERT_CONTAINS(d, "<svg class=\"chart versions\"");
	r = rows(db, "SELECT os, os_version, count(*) FROM mosyle_devices GROUP BY 1, 2");
	ASSERT(PQntuples(r) > 5);
	ASSERT_EQ_INT(count_of(d, "<g class=\"bar\""), PQntuples(r));
	for (int i = 0; i < PQntuples(r); i++) {
		char bar[256];
		snprintf(bar, sizeof(bar),
			 "<g class=\"bar\" data-os=\"%s\" data-version=\"%s\" data-devices=\"%s\">",
			 PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
		ASSERT_CONTAINS(d, bar);
	}
	PQclear(r);
	/* the runs chart: one per source, a bar per run with what it loaded */
	ASSERT_EQ_INT(count_of(d, "<svg class=\"chart trend\""), 2);
	ASSERT_EQ_INT(count_of(d, "<rect class=\"run "), 5);
	char want[256];
	snprintf(want, sizeof(want), "data-run=\"%lld\" data-status=\"succeeded\" data-loaded=\"168\"",
		 district_run(db, 2));
	ASSERT_CONTAINS(d, want);
	snprintf(want, sizeof(want), "<rect class=\"run failed\"");
	ASSERT_EQ_INT(count_of(d, want), 1);

	/* and it draws: a 1200 x 2000 PNG with far more in it than a blank
	 * page (about 11 kB) */
	char shot_arg[700];
	snprintf(shot_arg, sizeof(shot_arg), "--screenshot=%s", png);
	const char *shoot[] = {shot_arg, "--window-size=1200,2000", "--hide-scrollbars", url, NULL};
	char shot_out[600];
	snprintf(shot_out, sizeof(shot_out), "%s/shot.out", dir);
	run_chromium(dir, shoot, shot_out);
	struct buf img = BUF_INIT;
	read_whole(png, &img);
	ASSERT(img.len > 24);
	ASSERT_EQ_MEM(img.data, 8, "\x89PNG\r\n\x1a\n", 8);
	const unsigned char *u = (const unsigned char *)img.data;
	ASSERT_EQ_INT(((unsigned)u[16] << 24 | u[17] << 16 | u[18] << 8 | u[19]), 1200);
	ASSERT_EQ_INT(((unsigned)u[20] << 24 | u[21] << 16 | u[22] << 8 | u[23]), 2000);
	if (img.len < 50000)
		test_fail(__FILE__, __LINE__, "the screenshot is %zu bytes: a blank page?", img.len);

	buf_free(&img);
	buf_free(&dom);
	buf_free(&html);
	e2e_result_free(&res);
	fixture_free(&fx);
}

/* ---- Errors, filters, an empty schema ---------------------------------------- */

TEST(e2e_report_errors)
{
	const char *schema = e2e_schema("report_missing");
	const char *cfg = e2e_config(schema, "");
	struct e2e_result res;

	/* no such schema: exit 1, said plainly, and still no schema after */
	report(&res, cfg, NULL);
	ASSERT_EQ_INT(res.status, 1);
	ASSERT_EQ_INT(res.out.len, 0);
	ASSERT_CONTAINS(res.err.data, "invsync report: schema \"t_report_missing\" does not exist");
	e2e_result_free(&res);
	PGconn *db = e2e_db("public");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_namespace"
				     " WHERE nspname = 't_report_missing'"), 0);

	/* a schema without the reporting views: exit 1, nothing created */
	e2e_db_exec(db, "CREATE SCHEMA t_report_missing");
	report(&res, cfg, NULL);
	ASSERT_EQ_INT(res.status, 1);
	ASSERT_CONTAINS(res.err.data, "has no inventory_by_model, last_runs");
	ASSERT_CONTAINS(res.err.data, "'invsync migrate' upgrades it");
	e2e_result_free(&res);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
				     " ON n.oid = c.relnamespace WHERE n.nspname = 't_report_missing'"),
		      0);

	/* usage errors: exit 2 */
	static const char *const bad[][3] = {
		{"--format", "xml", "--format is text, json or csv, not 'xml'"},
		{"--top", "-1", "--top wants 0 to 10000 rows"},
		{"--html", "", "--html wants a file name"},
		{"--worker", NULL, "for 'invsync sync' only"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *more[] = {bad[i][0], bad[i][1], NULL};
		report(&res, cfg, more);
		ASSERT_EQ_INT(res.status, 2);
		ASSERT_CONTAINS(res.err.data, bad[i][2]);
		ASSERT_EQ_INT(res.out.len, 0);
		e2e_result_free(&res);
	}
	/* a configuration that does not load */
	const char *argv[] = {"report", "-c", "/nonexistent/invsync.ini", NULL};
	e2e_invsync(&res, argv);
	ASSERT_EQ_INT(res.status, 2);
	e2e_result_free(&res);
	/* the page cannot be written: exit 1, why */
	const char *mig[] = {"migrate", "-c", cfg, NULL};
	e2e_invsync(&res, mig);
	ASSERT_EQ_INT(res.status, 0);
	e2e_result_free(&res);
	const char *nodir[] = {"--html", "/nonexistent/dir/report.html", NULL};
	report(&res, cfg, nodir);
	ASSERT_EQ_INT(res.status, 1);
	ASSERT_CONTAINS(res.err.data, "report file /nonexistent/dir/report.html: cannot create a"
				      " temporary file in /nonexistent/dir");
	e2e_result_free(&res);
	PQfinish(db);
}

TEST(e2e_report_empty_schema_and_filters)
{
	/* a schema just migrated: every section empty, valid JSON */
	const char *schema = e2e_schema("report_empty");
	const char *cfg = e2e_config(schema, "");
	struct e2e_result res;
	const char *mig[] = {"migrate", "-c", cfg, NULL};
	e2e_invsync(&res, mig);
	ASSERT_EQ_INT(res.status, 0);
	e2e_result_free(&res);
	const char *json[] = {"--format", "json", NULL};
	report(&res, cfg, json);
	ASSERT_EQ_INT(res.status, 0);
	yajl_val j = json_parse(res.out.data);
	ASSERT_EQ_INT(jint(jpath(j, "summary", NULL), "sources"), 0);
	ASSERT_EQ_INT(jarray(j, "inventory", "by_os")->u.array.len, 0);
	ASSERT_EQ_INT(jarray(j, "last_runs", NULL)->u.array.len, 0);
	ASSERT_EQ_INT(jarray(j, "trend", NULL)->u.array.len, 0);
	ASSERT_EQ_INT(jint(jarray(j, "gaps", "counts")->u.array.values[2], "records"), 0);
	yajl_tree_free(j);
	e2e_result_free(&res);
	report(&res, cfg, NULL);
	ASSERT_EQ_INT(res.status, 0);
	ASSERT_CONTAINS(res.out.data, "\nLast run of each source\n  (none)\n");
	e2e_result_free(&res);

	/* the loaded schema: the report reads, it writes nothing */
	struct fixture fx;
	fixture_init(&fx, "report_filters");
	const char *state = "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace ="
			    " current_schema()::regnamespace) * 1000000"
			    " + (SELECT count(*) FROM sync_runs) * 1000"
			    " + (SELECT count(*) FROM record_changes)";
	long long before = e2e_db_int(fx.db, "%s", state);

	/* --source msp: the Syncro tenant alone; a list cut to nothing still
	 * has its count */
	const char *only[] = {"--format", "json", "--source", "msp", "--top", "0", NULL};
	report(&res, fx.cfg, only);
	ASSERT_EQ_INT(res.status, 0);
	j = json_parse(res.out.data);
	yajl_val by_os = jarray(j, "inventory", "by_os");
	ASSERT(by_os->u.array.len > 0);
	for (size_t i = 0; i < by_os->u.array.len; i++)
		ASSERT_EQ_STR(jstr(by_os->u.array.values[i], "source"), "msp");
	ASSERT_EQ_INT(jarray(j, "last_runs", NULL)->u.array.len, 1);
	ASSERT_EQ_INT(jarray(j, "attention", NULL)->u.array.len, 0);
	ASSERT_EQ_INT(jarray(j, "trend", NULL)->u.array.len, 2);
	ASSERT_EQ_INT(jint(jpath(j, "summary", NULL), "mosyle_devices"), 0);
	yajl_val counts = jarray(j, "gaps", "counts");
	ASSERT_EQ_INT(jint(counts->u.array.values[0], "records"), 0);
	ASSERT_EQ_INT(jint(counts->u.array.values[1], "records"),
		      e2e_db_int(fx.db, "SELECT count(*) FROM syncro_assets_not_in_mosyle"));
	ASSERT_EQ_INT(jint(counts->u.array.values[2], "records"),
		      e2e_db_int(fx.db, "SELECT count(*) FROM serial_mismatches"));
	ASSERT_EQ_INT(jarray(j, "gaps", "syncro_assets_not_in_mosyle")->u.array.len, 0);
	ASSERT_EQ_INT(jarray(j, "changes", "fields")->u.array.len, 0);
	yajl_tree_free(j);
	e2e_result_free(&res);

	/* a source neither configured nor in the run log: exit 2 */
	const char *unknown[] = {"--source", "nowhere", NULL};
	report(&res, fx.cfg, unknown);
	ASSERT_EQ_INT(res.status, 2);
	ASSERT_CONTAINS(res.err.data, "--source nowhere: no such source in the configuration or"
				      " the run log");
	e2e_result_free(&res);
	/* one the configuration no longer names, still in the run log: fine */
	const char *cfg2 = e2e_config(fx.schema, "[syncro msp]\nbase_url = http://127.0.0.1:9/api/v1\n"
						 "api_key = " SYNCRO_KEY "\n");
	const char *old[] = {"--source", "district", "--format", "csv", NULL};
	report(&res, cfg2, old);
	ASSERT_EQ_INT(res.status, 0);
	ASSERT_CONTAINS(res.out.data, "\r\nmosyle,district,ios,130\r\n");
	ASSERT(strstr(res.out.data, "\r\nsyncro,msp,") == NULL);
	ASSERT(strstr(res.out.data, "\r\nmsp,") == NULL);
	e2e_result_free(&res);

	ASSERT_EQ_INT(e2e_db_int(fx.db, "%s", state), before);
	fixture_free(&fx);
}

/* ---- One snapshot, taken after a swap in progress ----------------------------- */

/* A swap of the devices of source "school" from 3 rows (run 1) to 5 rows
 * (run 2) is in progress, as a run's commit does it: the report waits for
 * it, then shows the new inventory with the run that loaded it, never the
 * new rows with the old run log. */
TEST(e2e_report_waits_for_a_swap_and_sees_it_whole)
{
	const char *schema = e2e_schema("report_swap");
	const char *cfg = e2e_config(schema, "");
	struct e2e_result res;
	const char *mig[] = {"migrate", "-c", cfg, NULL};
	e2e_invsync(&res, mig);
	ASSERT_EQ_INT(res.status, 0);
	e2e_result_free(&res);
	PGconn *db = e2e_db(schema), *swap = e2e_db(schema);
	struct buf t = BUF_INIT;
	for (int run = 1; run <= 2; run++) {
		e2e_db_exec(db, "INSERT INTO sync_runs (run_id, source, kind) VALUES (%d, 'school',"
				" 'mosyle')", run);
		e2e_db_str(db, &t, "SELECT stage_rows('mosyle_devices', %d, 'school')", run);
		e2e_db_exec(db, "INSERT INTO %s (device_key, os, attrs, page, attempt)"
				" SELECT 'D' || i, 'ios', '{}', 1, 1 FROM generate_series(1, %d) i",
			    t.data, run == 1 ? 3 : 5);
		if (run == 2)
			break;
		e2e_db_exec(db, "SELECT commit_rows('mosyle_devices', '%s', 'school', '{}',"
				" 'device_key')", t.data);
		e2e_db_exec(db, "UPDATE sync_runs SET status = 'succeeded', loaded = 3,"
				" finished_at = now() WHERE run_id = 1");
	}
	/* run 2's rows are committed in their load table; the swap holds its
	 * locks until it commits */
	e2e_db_exec(swap, "BEGIN");
	e2e_db_exec(swap, "SELECT commit_rows('mosyle_devices', '%s', 'school', '{}', 'device_key')",
		    t.data);
	e2e_db_exec(swap, "UPDATE sync_runs SET status = 'succeeded', loaded = 5, finished_at = now()"
			  " WHERE run_id = 2");

	const char *argv[] = {"report", "-c", cfg, "--format", "json", NULL};
	pid_t pid = e2e_invsync_start(argv);
	long long waiting = 0;
	for (int i = 0; i < 500 && !waiting; i++) {
		usleep(20 * 1000);
		waiting = e2e_db_int(db, "SELECT count(*) FROM pg_stat_activity"
					 " WHERE application_name = 'invsync' AND wait_event_type = 'Lock'");
	}
	ASSERT_EQ_INT(waiting, 1);
	ASSERT(!e2e_invsync_wait_ms(pid, 200, &res));
	e2e_db_exec(swap, "COMMIT");
	ASSERT(e2e_invsync_wait_ms(pid, 30000, &res));
	ASSERT_EQ_INT(res.status, 0);
	yajl_val j = json_parse(res.out.data);
	ASSERT_EQ_INT(jint(jpath(j, "summary", NULL), "mosyle_devices"), 5);
	yajl_val last = jarray(j, "last_runs", NULL)->u.array.values[0];
	ASSERT_EQ_INT(jint(last, "run_id"), 2);
	ASSERT_EQ_STR(jstr(last, "status"), "succeeded");
	ASSERT_EQ_INT(jint(last, "loaded"), 5);
	yajl_tree_free(j);
	e2e_result_free(&res);
	buf_free(&t);
	PQfinish(swap);
	PQfinish(db);
}
