/* e2e_limits.c - answers too big to take: [fetch] max_response_mb against
 * the simulator's big pages and its "huge" fault (a device name of
 * megabytes). An answer over the cap fails its source at once, without a
 * retry, and leaves the previous inventory as it was; a big string field
 * inside the cap loads byte for byte. */
#include "e2e.h"
#include "simdata.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

/* A config with the given cap (0: the default). */
static const char *limits_config(const char *schema, const struct e2e_sim *sim, int max_mb)
{
	char fetch[256];
	snprintf(fetch, sizeof(fetch),
		 "concurrency = 16\nwindow = 4\nretries = 3\nretry_delay_ms = 20\ntimeout = 20\n");
	if (max_mb > 0)
		snprintf(fetch + strlen(fetch), sizeof(fetch) - strlen(fetch), "max_response_mb = %d\n",
			 max_mb);
	return e2e_mosyle_config(schema, sim->base_url, fetch, NULL);
}

/* iOS in three pages of 100 (and the sentinel page 4), the other OSes in
 * one or two; every page is well under 1 MiB. */
#define SEED 11
#define IOS 250
#define MAC 120
#define TVOS 7
#define SIM_ARGS "--ios 250 --mac 120 --tvos 7 --visionos 0 --seed 11"

/* The last run succeeded with exactly the simulator's devices, none
 * twice. */
static void assert_inventory(PGconn *db, long ios, long mac, long tvos)
{
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'ios'"), ios);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'mac'"), mac);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'tvos'"), tvos);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT device_key) FROM mosyle_devices"),
		      ios + mac + tvos);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND loaded = %ld AND error IS NULL"
				     " AND run_id = (SELECT max(run_id) FROM sync_runs)",
				 ios + mac + tvos),
		      1);
}

/* got must equal want byte for byte; on a difference, say where. */
static void assert_same_text(const char *what, const struct buf *got, const struct buf *want)
{
	size_t n = got->len < want->len ? got->len : want->len;
	size_t i = 0;
	while (i < n && got->data[i] == want->data[i])
		i++;
	if (got->len != want->len || i < n)
		test_fail(__FILE__, __LINE__, "%s: %zu bytes, want %zu; first difference at byte %zu"
			  " (got \"%.40s\", want \"%.40s\")", what, got->len, want->len, i,
			  buf_str(got) + (i < got->len ? i : got->len),
			  buf_str(want) + (i < want->len ? i : want->len));
}

TEST(e2e_limit_pages_under_cap_load)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("limit_under_cap");
	e2e_sim_start(&sim, SIM_ARGS);
	int status = e2e_sync(limits_config(schema, &sim, 1), &res);
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT retries FROM sync_runs"), 0);
	/* pages of 100 devices: a few hundred KB each, every one under 1 MiB */
	long long bytes = e2e_db_int(db, "SELECT bytes FROM sync_run_endpoints"
					 " WHERE endpoint = 'devices/ios'");
	ASSERT(bytes > 3 * 100000);
	ASSERT(bytes < 4 * (1 << 20));
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_limit_huge_answer_fails_without_retry_keeps_inventory)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("limit_huge_answer");

	/* a good run first, with the default cap */
	e2e_sim_start(&sim, SIM_ARGS);
	ASSERT_EQ_INT(e2e_sync(limits_config(schema, &sim, 0), &res), 0);
	e2e_result_free(&res);
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	long long first_run = e2e_db_int(db, "SELECT max(run_id) FROM sync_runs");

	/* then page 3 of iOS answers with a 2 MiB device name, every time */
	e2e_sim_start(&sim, SIM_ARGS " --fault ios:3:huge:0");
	int status = e2e_sync(limits_config(schema, &sim, 1), &res);
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(status, 1);
	/* asked once: a retry would get the same answer */
	ASSERT_EQ_INT(faults, 1);
	ASSERT_CONTAINS(res.err.data, "devices/ios: page 3 answer exceeds max_response_mb (1 MiB)");
	ASSERT(strstr(res.err.data, "retrying") == NULL);
	ASSERT_CONTAINS(res.out.data, "failed");

	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", first_run);
	ASSERT_EQ_STR(err.data, "devices/ios: page 3 answer exceeds max_response_mb (1 MiB)");
	buf_free(&err);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id > %lld"
				     " AND status = 'failed' AND retries = 0 AND loaded IS NULL"
				     " AND finished_at IS NOT NULL",
				 first_run),
		      1);
	e2e_assert_inventory_kept(db, first_run, IOS + MAC + TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"
				     " WHERE octet_length(device_name) > 1000"),
		      0);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_limit_big_pages_over_cap_load_nothing)
{
	/* no fault: pages of 1000 devices are about 2.8 MB each */
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("limit_big_pages");
	e2e_sim_start(&sim, "--ios 2500 --mac 120 --tvos 7 --visionos 0 --seed 11 --page-size 1000");
	int status = e2e_sync(limits_config(schema, &sim, 1), &res);
	long long ios_pages = e2e_sim_stat(&sim, "ios");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(status, 1);
	ASSERT_EQ_INT(ios_pages, 1);
	ASSERT_CONTAINS(res.err.data, "devices/ios: page 1 answer exceeds max_response_mb (1 MiB)");
	PGconn *db = e2e_db(schema);
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs");
	ASSERT_EQ_STR(err.data, "devices/ios: page 1 answer exceeds max_response_mb (1 MiB)");
	buf_free(&err);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'failed'"
				     " AND retries = 0"),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 0);

	/* the same pages load once the cap allows them */
	e2e_result_free(&res);
	e2e_sim_start(&sim, "--ios 2500 --mac 120 --tvos 7 --visionos 0 --seed 11 --page-size 1000");
	status = e2e_sync(limits_config(schema, &sim, 3), &res);
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	assert_inventory(db, 2500, MAC, TVOS);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_limit_huge_string_field_within_cap_loads_exactly)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("limit_huge_field");
	/* the first iOS device's name is 1 MiB; the page is about 1.3 MiB */
	e2e_sim_start(&sim, SIM_ARGS " --fault ios:1:huge --huge-size 1048576");
	int status = e2e_sync(limits_config(schema, &sim, 2), &res);
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_EQ_INT(faults, 1);

	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT retries FROM sync_runs"), 0);

	struct simdata_options opt = {.seed = SEED};
	struct simdata_device d;
	simdata_device(&opt, SIMDATA_IOS, 0, &d);
	struct buf want = BUF_INIT, got = BUF_INIT;
	simdata_huge_name(1 << 20, &want);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT octet_length(device_name) FROM mosyle_devices"
				     " WHERE serial_number = '%s'",
				 d.serial_number),
		      1 << 20);
	e2e_db_str(db, &got, "SELECT device_name FROM mosyle_devices WHERE serial_number = '%s'",
		   d.serial_number);
	assert_same_text("device_name", &got, &want);
	e2e_db_str(db, &got, "SELECT attrs->>'device_name' FROM mosyle_devices"
			     " WHERE serial_number = '%s'",
		   d.serial_number);
	assert_same_text("attrs->>'device_name'", &got, &want);
	/* the rest of that record is intact */
	e2e_db_str(db, &got, "SELECT attrs->>'serial_number' FROM mosyle_devices"
			     " WHERE serial_number = '%s'",
		   d.serial_number);
	ASSERT_EQ_STR(got.data, d.serial_number);
	e2e_db_str(db, &got, "SELECT os_version FROM mosyle_devices WHERE serial_number = '%s'",
		   d.serial_number);
	ASSERT_EQ_STR(got.data, d.osversion);
	/* and only that device got the big name */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"
				     " WHERE octet_length(device_name) > 1000"),
		      1);
	buf_free(&want);
	buf_free(&got);
	PQfinish(db);
	e2e_result_free(&res);
}
