/* e2e_history.c - what a run records of the changes since the previous
 * run (record_changes, removed_records): three runs of one source against
 * the simulator with devices added, removed and renamed in between. */
#include "e2e.h"
#include "simdata.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

#define FETCH "concurrency = 16\nwindow = 4\nretries = 2\nretry_delay_ms = 20\ntimeout = 20\n"
#define SEED 3

/* One sync of schema against a simulator started with sim_args; it must
 * succeed. */
static void sync_with(const char *schema, const char *sim_args)
{
	struct e2e_sim sim;
	struct e2e_result res;
	e2e_sim_start(&sim, sim_args);
	int status = e2e_sync(e2e_mosyle_config(schema, sim.base_url, FETCH, NULL), &res);
	e2e_sim_stop(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	e2e_result_free(&res);
}

static long long changes(PGconn *db, long long run, const char *change)
{
	return e2e_db_int(db, "SELECT count(*) FROM record_changes r JOIN sync_runs s USING (run_id, source)"
			      " WHERE s.run_id = (SELECT run_id FROM sync_runs ORDER BY run_id"
			      " OFFSET %lld LIMIT 1) AND change = '%s'"
			      " AND table_name = 'mosyle_devices' AND source = 'district'",
			  run - 1, change);
}

/* The row of record_changes for field of device (os, index) in the n-th run
 * (from 1), as "old|new". */
static void field_change(PGconn *db, struct buf *out, long long run, enum simdata_os os,
			 uint64_t index, const char *field)
{
	struct simdata_options opt = {.seed = SEED};
	char udid[48];
	simdata_device_udid(&opt, os, index, udid);
	e2e_db_str(db, out, "SELECT string_agg(old_value || '|' || new_value, ';') FROM record_changes"
			    " WHERE run_id = (SELECT run_id FROM sync_runs ORDER BY run_id OFFSET %lld"
			    " LIMIT 1) AND record_key = '%s' AND field = '%s'",
		   run - 1, udid, field);
}

TEST(e2e_history_appeared_removed_changed)
{
	const char *schema = e2e_schema("history");
	char args[256];
	struct buf got = BUF_INIT, want = BUF_INIT;
	struct simdata_options opt = {.seed = SEED};
	struct simdata_device dev;

	/* run 1: 300 iOS and 100 Mac devices; a first load records nothing */
	snprintf(args, sizeof(args), "--seed %d --ios 300 --mac 100 --tvos 0 --visionos 0", SEED);
	sync_with(schema, args);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM removed_records"), 0);

	/* run 2: iOS 300..319 appear, Mac 90..99 go, and the kept devices at
	 * index 0, 50, ... 250 (iOS) and 0, 50 (Mac) change name and OS
	 * version: 8 devices, 2 fields each */
	snprintf(args, sizeof(args),
		 "--seed %d --ios 320 --mac 90 --tvos 0 --visionos 0 --rename-every 50", SEED);
	sync_with(schema, args);
	ASSERT_EQ_INT(changes(db, 2, "appeared"), 20);
	ASSERT_EQ_INT(changes(db, 2, "removed"), 10);
	ASSERT_EQ_INT(changes(db, 2, "changed"), 16);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes WHERE change = 'changed'"
				     " AND field NOT IN ('device_name', 'os_version')"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT record_key) FROM record_changes"
				     " WHERE change = 'changed'"), 8);
	/* appeared and removed rows name the devices the simulator added and
	 * dropped */
	for (uint64_t i = 300; i < 320; i += 19) {
		simdata_device_udid(&opt, SIMDATA_IOS, i, dev.udid);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes WHERE change = 'appeared'"
					     " AND record_key = '%s' AND field IS NULL", dev.udid), 1);
	}
	simdata_device_udid(&opt, SIMDATA_MAC, 95, dev.udid);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes WHERE change = 'removed'"
				     " AND record_key = '%s'", dev.udid), 1);
	/* the removed devices' last versions are kept, stamped with the run
	 * and the time of the change */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM removed_records r JOIN record_changes c"
				     " USING (source, table_name, record_key, run_id)"
				     " WHERE c.change = 'removed' AND r.removed_at = c.changed_at"
				     " AND r.row_data->>'os' = 'mac'"), 10);
	simdata_device(&opt, SIMDATA_MAC, 95, &dev);
	e2e_db_str(db, &got, "SELECT row_data->>'device_name' FROM removed_records"
			     " WHERE record_key = '%s'", dev.udid);
	ASSERT_EQ_STR(buf_str(&got), dev.name);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 410);

	/* the exact old and new values of a renamed device */
	simdata_device(&opt, SIMDATA_IOS, 150, &dev);
	field_change(db, &got, 2, SIMDATA_IOS, 150, "device_name");
	buf_reset(&want);
	buf_printf(&want, "%s|%s (renamed)", dev.name, dev.name);
	ASSERT_EQ_STR(buf_str(&got), buf_str(&want));
	field_change(db, &got, 2, SIMDATA_IOS, 150, "os_version");
	buf_reset(&want);
	buf_printf(&want, "%s|%s.1", dev.osversion, dev.osversion);
	ASSERT_EQ_STR(buf_str(&got), buf_str(&want));
	field_change(db, &got, 2, SIMDATA_IOS, 151, "device_name");
	ASSERT_EQ_STR(buf_str(&got), "");

	/* run 3: the renames undone (iOS 300 too, renamed when it appeared:
	 * 9 devices), the Mac devices back */
	snprintf(args, sizeof(args), "--seed %d --ios 320 --mac 100 --tvos 0 --visionos 0", SEED);
	sync_with(schema, args);
	ASSERT_EQ_INT(changes(db, 3, "appeared"), 10);
	ASSERT_EQ_INT(changes(db, 3, "removed"), 0);
	ASSERT_EQ_INT(changes(db, 3, "changed"), 18);
	field_change(db, &got, 3, SIMDATA_IOS, 150, "device_name");
	buf_reset(&want);
	buf_printf(&want, "%s (renamed)|%s", dev.name, dev.name);
	ASSERT_EQ_STR(buf_str(&got), buf_str(&want));
	/* a removal stays recorded after the record came back */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM removed_records"), 10);
	/* the report of the issue: changes in a time range, per source */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes WHERE source = 'district'"
				     " AND changed_at >= now() - interval '7 days'"),
		      20 + 10 + 16 + 10 + 18);
	/* every row belongs to a run that succeeded */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes c WHERE NOT EXISTS"
				     " (SELECT 1 FROM sync_runs s WHERE s.run_id = c.run_id"
				     " AND s.source = c.source AND s.status = 'succeeded')"), 0);

	/* with history off for devices, a run records nothing */
	e2e_db_int(db, "WITH u AS (UPDATE history_tables SET enabled = false"
		       " WHERE table_name = 'mosyle_devices' RETURNING 1) SELECT count(*) FROM u");
	snprintf(args, sizeof(args), "--seed %d --ios 10 --mac 0 --tvos 0 --visionos 0", SEED);
	sync_with(schema, args);
	ASSERT_EQ_INT(changes(db, 4, "removed"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 10);

	PQfinish(db);
	buf_free(&got);
	buf_free(&want);
}

/* One sync of the Syncro source "msp" (assets only) of schema against a
 * simulator started with sim_args. */
static void sync_assets_with(const char *schema, const char *sim_args)
{
	struct e2e_sim sim;
	struct e2e_result res;
	struct buf body = BUF_INIT;
	e2e_sim_start(&sim, sim_args);
	buf_printf(&body, "[fetch]\n" FETCH "syncro_requests_per_minute = 60000\n"
			  "[syncro msp]\nbase_url = http://127.0.0.1:%d/api/v1\n"
			  "api_key = sim-syncro-key\nendpoints = assets\n", sim.port);
	int status = e2e_sync(e2e_config(schema, body.data), &res);
	e2e_sim_stop(&sim);
	buf_free(&body);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	e2e_result_free(&res);
}

TEST(e2e_history_syncro_assets)
{
	const char *schema = e2e_schema("history_assets");
	struct buf got = BUF_INIT;

	/* asset i belongs to customer i % customers: going from 10 customers
	 * to 20 moves assets 10..19, 30..39, 50..59 and 70..79 (of the 90
	 * kept), and assets 90..99 go */
	sync_assets_with(schema, "--syncro-assets 100 --syncro-customers 10");
	sync_assets_with(schema, "--syncro-assets 90 --syncro-customers 20");
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes WHERE change = 'removed'"
				     " AND source = 'msp' AND table_name = 'syncro_assets'"), 10);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes WHERE change = 'appeared'"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM record_changes WHERE change = 'changed'"
				     " AND field = 'customer_id'"), 40);
	e2e_db_str(db, &got, "SELECT old_value || '|' || new_value FROM record_changes"
			     " WHERE field = 'customer_id' AND record_key = '%d'",
		   SIMDATA_SYNCRO_ASSET_ID_BASE + 15);
	ASSERT_EQ_STR(buf_str(&got), "500005|500015");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM removed_records WHERE table_name = 'syncro_assets'"
				     " AND (row_data->>'asset_id')::bigint BETWEEN %d AND %d",
				 SIMDATA_SYNCRO_ASSET_ID_BASE + 90, SIMDATA_SYNCRO_ASSET_ID_BASE + 99),
		      10);
	PQfinish(db);
	buf_free(&got);
}
