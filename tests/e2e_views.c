/* e2e_views.c - the reporting views of sql/008_reporting_views.sql over a
 * small inventory written with SQL: a Mosyle source "school" of eight
 * devices and a Syncro source "msp" of six assets, loaded through
 * stage_rows() and commit_rows() as a run loads them, and a run log. Each
 * view's rows are checked one by one. */
#include "e2e.h"
#include "schema.h"
#include "test.h"

#include <stdarg.h>
#include <string.h>


/* The devices, one per line (see the file comment of the test below). */
#define DEVICE_COLUMNS                                                         \
	"device_key, serial_number, os, device_name, model, os_version, user_id, " \
	"user_name, user_email, last_checkin, tags, attrs, page, attempt"
static const char devices_sql[] =
	"('D1', 'C02AAA', 'ios', 'iPad 1', 'iPad7,11', '17.4', 'u1', 'Ann Lee',"
	"  'ann@school.example', now() - interval '1 day', NULL,"
	"  '{\"needosupdate\": false}', 1, 1),"
	"('D2', 'c02 bbb ', 'ios', 'iPad 2', 'iPad7,11', '17.2', 'u1', 'Ann Lee',"
	"  'ann@school.example', now() - interval '40 days 1 hour', NULL,"
	"  '{\"needosupdate\": true, \"AvailableOSUpdates\": \"[{\\\"Version\\\":\\\"17.4\\\"}]\"}',"
	"  1, 1),"
	"('D3', 'C02CCC', 'ios', 'Cart iPad 3', 'iPad7,11', '17.3', NULL, NULL, NULL,"
	"  now() - interval '10 days', NULL,"
	"  '{\"needosupdate\": false, \"SharedCartName\": \"Cart 1\"}', 1, 1),"
	"('D4', 'C02DDD', 'mac', 'Mac 4', 'Mac14,2', '14.5', 'u2', 'Bob Roe', 'bob@school.example',"
	"  NULL, '{lab,Cart-7}', '{}', 1, 1),"
	"('D5', 'C02EEE', 'mac', 'Mac 5', 'Mac14,2', '14.5', '', NULL, NULL,"
	"  now() - interval '100 days 1 hour', NULL, '{\"SharedCartName\": \"\"}', 1, 1),"
	"('D6', NULL, 'tvos', 'TV 6', 'AppleTV11,1', '17.5', NULL, NULL, NULL,"
	"  now() - interval '2 days', NULL, '{}', 1, 1),"
	"('D7', 'C02FFF', 'ios', 'iPad 7', 'iPad7,12', '17.10', 'u3', 'Cy Doe', NULL,"
	"  now() - interval '3 days', NULL, '{}', 2, 1),"
	"('D8', 'C02GGG', 'ios', 'iPad 8', 'iPad7,12', '17.9', 'u3', 'Cy Doe', NULL,"
	"  now() - interval '3 days', NULL, '{}', 2, 1)";

#define ASSET_COLUMNS "asset_id, name, asset_type, asset_serial, contact_id, attrs, page, attempt"
static const char assets_sql[] =
	"(101, 'iPad 1', 'iPad', ' c02aaa', 1, '{}', 1, 1),"
	"(102, 'ipad 2 ', 'iPad', 'C02BBB', 1, '{}', 1, 1),"
	"(103, 'Cart iPad three', 'iPad', 'C02CCC', NULL, '{}', 1, 1),"
	"(104, 'Mac 4', 'Mac', 'C02DDD', 2, '{}', 1, 1),"
	"(105, 'Printer', 'Printer', 'ZZ999', NULL, '{}', 1, 1),"
	"(106, 'No serial', NULL, '  ', NULL, '{}', 1, 1)";

/* Replace the source's rows of parent with rows, as a run does. */
static void load(PGconn *db, const char *parent, long long run, const char *source,
		 const char *columns, const char *rows, const char *key)
{
	struct buf t = BUF_INIT;
	e2e_db_exec(db, "BEGIN");
	e2e_db_str(db, &t, "SELECT stage_rows('%s', %lld, '%s')", parent, run, source);
	e2e_db_exec(db, "INSERT INTO %s (%s) VALUES %s", buf_str(&t), columns, rows);
	/* the columns invsync computes while it encodes a row (the SQL
	 * functions say the same: e2e_views_computed_columns) */
	if (strcmp(parent, "mosyle_devices") == 0)
		e2e_db_exec(db, "UPDATE %s SET serial_key = serial_key(serial_number),"
				" os_update_pending = mosyle_needs_os_update(attrs),"
				" shared_cart = device_cart(attrs, tags)", buf_str(&t));
	else if (strcmp(parent, "syncro_assets") == 0)
		e2e_db_exec(db, "UPDATE %s SET serial_key = serial_key(asset_serial)", buf_str(&t));
	e2e_db_exec(db, "SELECT commit_rows('%s', '%s', '%s', '{}', '%s')", parent, buf_str(&t), source,
	     key);
	e2e_db_exec(db, "COMMIT");
	/* after the commit, as a run does */
	e2e_db_exec(db, "SELECT built FROM index_partitions('%s')", source);
	buf_free(&t);
}

static PGconn *views_db(const char *test_name)
{
	const char *schema = e2e_schema(test_name);
	PGconn *db = e2e_db(schema);
	struct buf err = BUF_INIT;
	if (schema_migrate(db, schema, &err) != 0)
		test_fail(__FILE__, __LINE__, "migrate: %s", buf_str(&err));
	buf_free(&err);
	e2e_db_exec(db, "SET search_path = %s, pg_catalog", schema);
	/* twice: the second swaps partitions, building the indexes again */
	for (long long run = 1; run <= 2; run++) {
		load(db, "mosyle_devices", run, "school", DEVICE_COLUMNS, devices_sql, "device_key");
		load(db, "syncro_assets", run, "msp", ASSET_COLUMNS, assets_sql, "asset_id");
	}
	load(db, "syncro_contacts", 2, "msp", "contact_id, name, email, attrs, page, attempt",
	     "(1, ' ann lee', 'Ann@School.example', '{}', 1, 1),"
	     "(2, 'Someone Else', 'other@msp.example', '{}', 1, 1)",
	     "contact_id");
	return db;
}

/* The indexes of source's partition of table that are its own (not
 * attached to an index of the parent): the reporting indexes. */
static long long own_indexes(PGconn *db, const char *table, const char *source)
{
	return e2e_db_int(db, "SELECT count(*) FROM pg_index i"
			      " WHERE i.indrelid = current_partition('%s', '%s')"
			      " AND NOT EXISTS (SELECT 1 FROM pg_inherits h"
			      " WHERE h.inhrelid = i.indexrelid)",
			  table, source);
}

TEST(e2e_views_partition_indexes)
{
	PGconn *db = views_db("e2e_views_indexes");
	/* index_partitions() built every index partition_indexes lists on the
	 * partitions the second load attached, and only there: the parents
	 * carry none of them, so the swap does not build them */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM partition_indexes"
				     " WHERE table_name = 'mosyle_devices'"),
		      7);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_indexes"
				     " WHERE schemaname = current_schema()"
				     " AND tablename = current_partition('mosyle_devices',"
				     " 'school')::text AND indexname LIKE '%%\\_serial\\_key'"
				     " AND indexdef LIKE '%%(serial_key) INCLUDE%%'"),
		      1);
	ASSERT_EQ_INT(own_indexes(db, "mosyle_devices", "school"),
		      7);
	ASSERT_EQ_INT(own_indexes(db, "syncro_assets", "msp"),
		      2);
	ASSERT_EQ_INT(own_indexes(db, "syncro_contacts", "msp"),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_indexes"
				     " WHERE schemaname = current_schema()"
				     " AND tablename IN ('mosyle_devices', 'syncro_assets')"
				     " AND indexdef LIKE '%%serial_key%%'"),
		      0);
	/* the first load's partitions went with their indexes; nothing is
	 * left to build, and a second call builds nothing */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class"
				     " WHERE relnamespace = current_schema()::regnamespace"
				     " AND relname LIKE '%%\\_r1\\_%%'"),
		      0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT built FROM index_partitions(NULL)"), 0);
	/* what a run vacuums after its commit: the source's current
	 * partitions, of every table, and nothing else */
	struct buf parts = BUF_INIT;
	e2e_db_str(db, &parts, "SELECT source_partitions('msp') = current_partition('syncro_assets',"
			       " 'msp')::text || ', ' || current_partition('syncro_contacts', 'msp')::text");
	ASSERT_EQ_STR(buf_str(&parts), "t");
	e2e_db_str(db, &parts, "SELECT source_partitions('school') = current_partition("
			       "'mosyle_devices', 'school')::text");
	ASSERT_EQ_STR(buf_str(&parts), "t");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM (SELECT source_partitions('nobody')) s(l)"
				     " WHERE l IS NULL"),
		      1);
	buf_free(&parts);
	/* and a lookup by serial key uses its index */
	e2e_db_exec(db, "SET enable_seqscan = off");
	PGresult *r = PQexec(db, "EXPLAIN SELECT device_key FROM mosyle_devices"
				 " WHERE serial_key = 'C02BBB'");
	ASSERT(PQresultStatus(r) == PGRES_TUPLES_OK);
	struct buf text = BUF_INIT;
	for (int i = 0; i < PQntuples(r); i++)
		buf_printf(&text, "%s\n", PQgetvalue(r, i, 0));
	PQclear(r);
	ASSERT_CONTAINS(buf_str(&text), "serial_key on ");
	ASSERT(strstr(buf_str(&text), "Seq Scan") == NULL);
	buf_free(&text);
	PQfinish(db);
}

/* A run builds the reporting indexes of the partitions it attached after
 * its commit; when that fails, the run has still succeeded and says so. */
TEST(e2e_views_run_builds_indexes_after_commit)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("views_run_indexes");
	e2e_sim_start(&sim, "--ios 150 --mac 30 --tvos 0 --visionos 0");
	const char *cfg = e2e_mosyle_config(schema, sim.base_url, NULL, NULL);
	int status = e2e_sync(cfg, &res);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_CONTAINS(buf_str(&res.err), "reporting indexes built: 7 in");
	ASSERT_CONTAINS(buf_str(&res.err), "new tables vacuumed and analyzed in");
	PGconn *db = e2e_db(schema);
	/* vacuumed and analyzed by the run itself (autovacuum's would show
	 * as last_autovacuum, last_autoanalyze), the row count known, and
	 * statistics for the planner. (Whether that VACUUM could also mark
	 * the pages visible to all depends, on a server committing
	 * asynchronously as this one does, on the other transactions of the
	 * moment: not checked.) */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_stat_all_tables"
				     " WHERE relid = current_partition('mosyle_devices', 'district')"
				     " AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL"),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class"
				     " WHERE oid = current_partition('mosyle_devices', 'district')"
				     " AND relpages > 0 AND reltuples = 180"),
		      1);
	ASSERT(e2e_db_int(db, "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema()"
			      " AND tablename = current_partition('mosyle_devices', 'district')::text"
			      " AND attname = 'serial_key'") == 1);
	/* and so every table of the source (this one has one): none left
	 * never vacuumed nor analyzed (reltuples -1) */
	ASSERT(e2e_db_int(db, "SELECT count(*) FROM pg_class c JOIN pg_inherits h"
			      " ON h.inhrelid = c.oid WHERE c.relnamespace ="
			      " current_schema()::regnamespace AND pg_get_expr(c.relpartbound,"
			      " c.oid) = 'FOR VALUES IN (''district'')'") == 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class c JOIN pg_inherits h"
				     " ON h.inhrelid = c.oid WHERE c.relnamespace ="
				     " current_schema()::regnamespace AND pg_get_expr(c.relpartbound,"
				     " c.oid) = 'FOR VALUES IN (''district'')' AND c.reltuples < 0"),
		      0);
	/* its attrs are stored out of line, and only its attrs: reading
	 * every device's other columns reads no TOAST page (load tables
	 * toasted down to 128 bytes put names, UDIDs and e-mail addresses
	 * there too, and every swap and view paid a lookup per value) */
	const char *toast_pages = "SELECT coalesce(toast_blks_read, 0) + coalesce(toast_blks_hit, 0)"
				  " FROM pg_statio_all_tables"
				  " WHERE relid = current_partition('mosyle_devices', 'district')";
	e2e_db_exec(db, "SELECT pg_stat_clear_snapshot()");
	long long before = e2e_db_int(db, "%s", toast_pages);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"
				     " WHERE length(concat(udid, serial_number, device_name, model,"
				     " model_name, os_version, tags, user_id, user_name, user_email,"
				     " user_type, enrollment_type, serial_key, shared_cart)) > 0"),
		      180);
	e2e_db_exec(db, "SELECT pg_stat_force_next_flush()");
	e2e_db_exec(db, "SELECT pg_stat_clear_snapshot()");
	ASSERT_EQ_INT(e2e_db_int(db, "%s", toast_pages), before);
	/* the control: attrs is out there */
	e2e_db_int(db, "SELECT sum(length(attrs::text)) FROM mosyle_devices");
	e2e_db_exec(db, "SELECT pg_stat_force_next_flush()");
	e2e_db_exec(db, "SELECT pg_stat_clear_snapshot()");
	ASSERT(e2e_db_int(db, "%s", toast_pages) > before);
	ASSERT_EQ_INT(own_indexes(db, "mosyle_devices", "district"),
		      7);
	e2e_result_free(&res);

	/* an index that cannot be built: the others are, and the run has
	 * committed all the same */
	e2e_db_exec(db, "INSERT INTO partition_indexes VALUES"
			" ('mosyle_devices', 'broken', '(no_such_column)')");
	status = e2e_sync(cfg, &res);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_CONTAINS(buf_str(&res.err), "reporting indexes built: 7 in");
	ASSERT_CONTAINS(buf_str(&res.err), "could not build reporting index mosyle_devices_r");
	ASSERT_CONTAINS(buf_str(&res.err), "_broken: column \"no_such_column\" does not exist");
	ASSERT_EQ_INT(own_indexes(db, "mosyle_devices", "district"),
		      7);
	e2e_result_free(&res);

	/* the new tables cannot be vacuumed: autovacuum will, and the
	 * indexes are built all the same */
	e2e_db_exec(db, "ALTER FUNCTION source_partitions(text) RENAME TO source_partitions_gone");
	status = e2e_sync(cfg, &res);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_CONTAINS(buf_str(&res.err), "vacuuming the new tables failed");
	ASSERT_CONTAINS(buf_str(&res.err), "source_partitions");
	ASSERT_CONTAINS(buf_str(&res.err), "reporting indexes built: 7 in");
	ASSERT_EQ_INT(own_indexes(db, "mosyle_devices", "district"),
		      7);
	e2e_db_exec(db, "ALTER FUNCTION source_partitions_gone(text) RENAME TO source_partitions");
	e2e_result_free(&res);

	/* no index can be built at all */
	e2e_db_exec(db, "ALTER FUNCTION index_partitions(text) RENAME TO index_partitions_gone");
	status = e2e_sync(cfg, &res);
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_CONTAINS(buf_str(&res.err), "building the reporting indexes failed");
	ASSERT_CONTAINS(buf_str(&res.err), "index_partitions");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND loaded = 180"),
		      4);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 180);
	ASSERT_EQ_INT(own_indexes(db, "mosyle_devices", "district"),
		      0);
	e2e_result_free(&res);
	PQfinish(db);
}

/* Notices (auto_explain's plans) appended to a buffer. */
static void collect_notice(void *arg, const char *message)
{
	buf_puts(arg, message);
}

/* The count of rows of a query, and one string value of it. */
#define COUNT(db, ...) e2e_db_int(db, "SELECT count(*) FROM " __VA_ARGS__)

TEST(e2e_views_inventory_and_devices)
{
	PGconn *db = views_db("e2e_views_devices");
	struct buf s = BUF_INIT;

	/* 7 Mosyle groups (the Macs share one), 4 Syncro asset types */
	ASSERT_EQ_INT(COUNT(db, "inventory_by_model WHERE kind = 'mosyle' AND source = 'school'"), 7);
	ASSERT_EQ_INT(COUNT(db, "inventory_by_model WHERE kind = 'syncro' AND source = 'msp'"), 4);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT devices FROM inventory_by_model WHERE os = 'mac'"
				     " AND model = 'Mac14,2' AND os_version = '14.5'"), 2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT sum(devices) FROM inventory_by_model"
				     " WHERE kind = 'syncro'"), 6);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT devices FROM inventory_by_model"
				     " WHERE kind = 'syncro' AND os = 'iPad'"), 3);

	/* stale: D2 (40 days), D5 (100 days), D4 (never) */
	e2e_db_str(db, &s, "SELECT string_agg(device_key || ':' || coalesce(days_since_checkin::text,"
			   " '-'), ' ' ORDER BY device_key) FROM stale_devices_30d");
	ASSERT_EQ_STR(buf_str(&s), "D2:40 D4:- D5:100");
	e2e_db_str(db, &s, "SELECT string_agg(device_key, ' ' ORDER BY device_key)"
			   " FROM stale_devices(60)");
	ASSERT_EQ_STR(buf_str(&s), "D4 D5");
	ASSERT_EQ_INT(COUNT(db, "stale_devices(1000)"), 1);

	/* OS updates: D2 flagged by Mosyle; D3 (17.3 < 17.4) and D8
	 * (17.9 < 17.10) behind the newest of their model */
	e2e_db_str(db, &s, "SELECT string_agg(format('%%s:%%s:%%s', device_key, newest_version,"
			   " flagged_by_mosyle), ' ' ORDER BY device_key)"
			   " FROM devices_needing_os_update");
	ASSERT_EQ_STR(buf_str(&s), "D2:17.4:t D3:17.4:f D8:17.10:f");
	ASSERT_EQ_INT(COUNT(db, "os_versions_behind"), 3);

	/* users: D3, D5 (empty user id), D6 have none; u1 and u3 have two */
	e2e_db_str(db, &s, "SELECT string_agg(device_key, ' ' ORDER BY device_key)"
			   " FROM devices_without_user");
	ASSERT_EQ_STR(buf_str(&s), "D3 D5 D6");
	e2e_db_str(db, &s, "SELECT string_agg(format('%%s:%%s:%%s:%%s', user_id, user_name,"
			   " devices, cardinality(serial_numbers)), ' ' ORDER BY user_id)"
			   " FROM users_with_several_devices");
	ASSERT_EQ_STR(buf_str(&s), "u1:Ann Lee:2:2 u3:Cy Doe:2:2");

	/* carts: Mosyle's SharedCartName, or a tag starting with "cart" */
	e2e_db_str(db, &s, "SELECT string_agg(device_key || ':' || cart, ' ' ORDER BY device_key)"
			   " FROM shared_cart_devices");
	ASSERT_EQ_STR(buf_str(&s), "D3:Cart 1 D4:Cart-7");
	e2e_db_str(db, &s, "SELECT string_agg(cart || ':' || devices, ' ' ORDER BY cart)"
			   " FROM shared_carts");
	ASSERT_EQ_STR(buf_str(&s), "Cart 1:1 Cart-7:1");

	buf_free(&s);
	PQfinish(db);
}

TEST(e2e_views_reconciliation)
{
	PGconn *db = views_db("e2e_views_reconcile");
	struct buf s = BUF_INIT;

	/* ' c02aaa' and 'c02 bbb ' match C02AAA and C02BBB; D6 and asset 106
	 * have no serial and are left out */
	e2e_db_str(db, &s, "SELECT string_agg(device_key, ' ' ORDER BY device_key)"
			   " FROM mosyle_devices_not_in_syncro");
	ASSERT_EQ_STR(buf_str(&s), "D5 D7 D8");
	e2e_db_str(db, &s, "SELECT string_agg(asset_id::text, ' ' ORDER BY asset_id)"
			   " FROM syncro_assets_not_in_mosyle");
	ASSERT_EQ_STR(buf_str(&s), "105");

	/* D1/101 and D2/102 agree (names and contacts equal but for case and
	 * outer spaces); D3/103 differ in name, D4/104 in user */
	e2e_db_str(db, &s, "SELECT string_agg(format('%%s=%%s:%%s:%%s:%%s', device_key, asset_id,"
			   " serial_key, name_differs, user_differs), ' ' ORDER BY device_key)"
			   " FROM serial_mismatches");
	ASSERT_EQ_STR(buf_str(&s), "D3=103:C02CCC:t:f D4=104:C02DDD:f:t");
	e2e_db_str(db, &s, "SELECT mosyle_user || '/' || syncro_contact FROM serial_mismatches"
			   " WHERE device_key = 'D4'");
	ASSERT_EQ_STR(buf_str(&s), "Bob Roe/Someone Else");
	e2e_db_str(db, &s, "SELECT serial_key(' c0 2\ta a ')");
	ASSERT_EQ_STR(buf_str(&s), "C02AA");

	/* serial_mismatches reads three indexes and no table: the serial
	 * keys of both systems with the names and users they compare, and
	 * the contacts' names. Vacuumed and analyzed, as a run leaves them.
	 * (Whether it then reads any row also depends on whether VACUUM
	 * could mark every page visible to all, which the other sessions of
	 * this database decide: not checked.) */
	e2e_db_exec(db, "VACUUM (ANALYZE) mosyle_devices, syncro_assets, syncro_contacts");
	e2e_db_exec(db, "LOAD 'auto_explain'");
	e2e_db_exec(db, "SET auto_explain.log_min_duration = 0");
	e2e_db_exec(db, "SET auto_explain.log_nested_statements = on");
	e2e_db_exec(db, "SET auto_explain.log_analyze = on");
	e2e_db_exec(db, "SET auto_explain.log_level = notice");
	e2e_db_exec(db, "SET client_min_messages = notice");
	struct buf plan = BUF_INIT;
	PQnoticeProcessor prev = PQsetNoticeProcessor(db, collect_notice, &plan);
	ASSERT_EQ_INT(COUNT(db, "serial_mismatches()"), 2);
	PQsetNoticeProcessor(db, prev, NULL);
	e2e_db_exec(db, "SET auto_explain.log_min_duration = -1");
	const char *p = buf_str(&plan);
	ASSERT_CONTAINS(p, "Index Only Scan using mosyle_devices_r");
	ASSERT_CONTAINS(p, "_serial_key on mosyle_devices_r");
	ASSERT_CONTAINS(p, "Index Only Scan using syncro_assets_r");
	ASSERT_CONTAINS(p, "_serial_key on syncro_assets_r");
	ASSERT_CONTAINS(p, "Index Only Scan using syncro_contacts_r");
	ASSERT_CONTAINS(p, "_names on syncro_contacts_r");
	ASSERT(strstr(p, "Seq Scan") == NULL);
	buf_free(&plan);

	buf_free(&s);
	PQfinish(db);
}

TEST(e2e_views_run_log)
{
	PGconn *db = views_db("e2e_views_run_log");
	struct buf s = BUF_INIT;

	/* school: runs 1..34, a day apart, run i lasting i minutes; every
	 * fifth failed. msp: one run still going. */
	e2e_db_exec(db, "INSERT INTO sync_runs (run_id, source, kind, started_at, finished_at, status,"
		 " records, loaded)"
		 " SELECT i, 'school', 'mosyle', now() - (40 - i) * interval '1 day',"
		 " now() - (40 - i) * interval '1 day' + i * interval '1 minute',"
		 " CASE WHEN i %% 5 = 0 THEN 'failed' ELSE 'succeeded' END, 1000 + i,"
		 " CASE WHEN i %% 5 <> 0 THEN 100 + i END FROM generate_series(1, 34) i");
	e2e_db_exec(db, "INSERT INTO sync_runs (run_id, source, kind, records)"
		 " VALUES (35, 'msp', 'syncro', 7)");

	ASSERT_EQ_INT(COUNT(db, "run_trend WHERE source = 'school'"), 30);
	e2e_db_str(db, &s, "SELECT string_agg(format('%%s:%%s:%%s', run_id, status,"
			   " coalesce(loaded_change::text, '-')), ' ' ORDER BY runs_ago)"
			   " FROM run_trend WHERE source = 'school' AND runs_ago <= 5");
	ASSERT_EQ_STR(buf_str(&s), "34:succeeded:1 33:succeeded:1 32:succeeded:1"
				   " 31:succeeded:- 30:failed:-");
	e2e_db_str(db, &s, "SELECT min(run_id) || '..' || max(run_id) FROM run_trend"
			   " WHERE source = 'school'");
	ASSERT_EQ_STR(buf_str(&s), "5..34");

	ASSERT_EQ_INT(COUNT(db, "last_runs"), 2);
	e2e_db_str(db, &s, "SELECT format('%%s %%s %%s %%s %%s/%%s %%s %%s', run_id, status,"
			   " duration, loaded, recent_failures, recent_runs, recent_max_duration,"
			   " last_succeeded_at = finished_at) FROM last_runs WHERE source = 'school'");
	ASSERT_EQ_STR(buf_str(&s), "34 succeeded 00:34:00 134 6/30 00:34:00 t");
	e2e_db_str(db, &s, "SELECT format('%%s %%s %%s %%s', run_id, status,"
			   " coalesce(duration::text, '-'), coalesce(last_succeeded_at::text, '-'))"
			   " FROM last_runs WHERE source = 'msp'");
	ASSERT_EQ_STR(buf_str(&s), "35 running - -");

	buf_free(&s);
	PQfinish(db);
}
