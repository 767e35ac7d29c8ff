/* e2e_faults.c - invsync against a simulator that misbehaves on purpose:
 * error statuses, 429 with and without Retry-After, connections cut
 * mid-body, malformed and non-JSON bodies, stalls, random faults. Every
 * test checks the exact inventory in PostgreSQL, the run log, and that the
 * simulator itself exited cleanly. */
#include "e2e.h"
#include "http.h"
#include "simdata.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN E2E_TOKEN
#define EMAIL E2E_EMAIL
#define PASSWORD E2E_PASSWORD

static const char *faults_config(const char *schema, const struct e2e_sim *sim, int retries,
				 int timeout_s, const char *extra)
{
	char fetch[256];
	snprintf(fetch, sizeof(fetch),
		 "concurrency = 16\nwindow = 4\nretries = %d\nretry_delay_ms = 20\ntimeout = %d\n",
		 retries, timeout_s);
	return e2e_mosyle_config(schema, sim->base_url, fetch, extra);
}

static const char *first_byte_config(const char *schema, const struct e2e_sim *sim)
{
	return e2e_mosyle_config(schema, sim->base_url,
				 "concurrency = 16\nwindow = 4\nretries = 2\nretry_delay_ms = 20\n"
				 "timeout = 20\nfirst_byte_timeout = 1\n",
				 NULL);
}

/* The inventory most tests serve: iOS in three pages of 100 (and the
 * sentinel page 4), the other OSes in one or two. */
#define SEED 11
#define IOS 250
#define MAC 120
#define TVOS 7
#define SIM_ARGS "--ios 250 --mac 120 --tvos 7 --visionos 0 --seed 11"

/* Every iOS device index in [from, to) is loaded from page `page`. */
static void assert_ios_range_loaded(PGconn *db, uint64_t from, uint64_t to, int page)
{
	struct simdata_options opt = {.seed = SEED};
	struct buf serials = BUF_INIT;
	for (uint64_t i = from; i < to; i++) {
		struct simdata_device d;
		simdata_device(&opt, SIMDATA_IOS, i, &d);
		buf_printf(&serials, "%s'%s'", i == from ? "" : ",", d.serial_number);
	}
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'ios'"
				     " AND page = %d AND serial_number IN (%s)",
				 page, serials.data),
		      (long long)(to - from));
	buf_free(&serials);
}

/* The single run succeeded with exactly the simulator's devices, none
 * twice. */
static void assert_inventory(PGconn *db, long ios, long mac, long tvos)
{
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'ios'"), ios);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'mac'"), mac);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'tvos'"), tvos);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'visionos'"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT device_key) FROM mosyle_devices"),
		      ios + mac + tvos);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND loaded = %ld AND error IS NULL AND finished_at IS NOT NULL",
				 ios + mac + tvos),
		      1);
	/* one attempt's rows per page: a failed attempt left nothing behind */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM (SELECT os, page FROM mosyle_devices"
				     " GROUP BY os, page HAVING count(DISTINCT attempt) > 1) p"),
		      0);
}

/* Rows COPYed into the table that is now the source's partition, and
 * rows deleted from it before it was attached. The load's backend
 * publishes these when it exits, shortly after invsync does: wait. */
static void load_table_figures(PGconn *db, long long min_inserted, long long *inserted,
			       long long *deleted)
{
	for (int i = 0; i < 200; i++) {
		*inserted = e2e_db_int(db, "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables"
					   " WHERE relid = current_partition('mosyle_devices', 'district')");
		if (*inserted >= min_inserted)
			break;
		usleep(50 * 1000);
		PQclear(PQexec(db, "SELECT pg_stat_clear_snapshot()"));
	}
	*deleted = e2e_db_int(db, "SELECT coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables"
				  " WHERE relid = current_partition('mosyle_devices', 'district')");
}

/* One transient fault on iOS page 2 (of 3): the page is fetched again,
 * the run succeeds with every device exactly once and one retry. With
 * streamed, the failed attempt had already sent rows of page 2 into the
 * COPY before failing: they must be gone. */
static void check_transient(const char *name, const char *kind, const char *reason,
			    bool streamed)
{
	struct e2e_sim sim;
	struct e2e_result res;
	char args[256];
	const char *schema = e2e_schema(name);
	snprintf(args, sizeof(args), SIM_ARGS " --fault ios:2:%s", kind);
	e2e_sim_start(&sim, args);
	int status = e2e_sync(faults_config(schema, &sim, 3, 5, NULL), &res);
	long long faults = e2e_sim_stat(&sim, "faults");
	long long ios_pages = e2e_sim_stat(&sim, "ios");
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_EQ_INT(faults, 1);
	/* pages 1-3, the sentinel 4, and page 2 again */
	ASSERT_EQ_INT(ios_pages, 5);
	ASSERT_CONTAINS(res.err.data, "devices/ios page 2: attempt 1 failed (");
	ASSERT_CONTAINS(res.err.data, reason);

	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT retries FROM sync_runs"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT retries FROM sync_run_endpoints"
				     " WHERE endpoint = 'devices/ios'"),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT sum(retries) FROM sync_run_endpoints"), 1);
	assert_ios_range_loaded(db, 0, 100, 1);
	assert_ios_range_loaded(db, 100, 200, 2);
	assert_ios_range_loaded(db, 200, 250, 3);
	long long inserted, deleted;
	load_table_figures(db, IOS + MAC + TVOS, &inserted, &deleted);
	ASSERT_EQ_INT(inserted - deleted, IOS + MAC + TVOS);
	if (streamed) {
		/* part of page 2 went into the COPY, then was dropped */
		if (inserted <= IOS + MAC + TVOS || inserted >= IOS + MAC + TVOS + 100)
			test_fail(__FILE__, __LINE__, "expected part of a page discarded: %lld rows"
				  " copied, %lld deleted", inserted, deleted);
	} else {
		ASSERT_EQ_INT(inserted, IOS + MAC + TVOS);
	}
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_500_retried)
{
	check_transient("fault_500", "500", "HTTP 500)", false);
}

TEST(e2e_fault_502_retried)
{
	check_transient("fault_502", "502", "HTTP 502)", false);
}

TEST(e2e_fault_503_retried)
{
	check_transient("fault_503", "503", "HTTP 503)", false);
}

TEST(e2e_fault_429_retried)
{
	check_transient("fault_429", "429", "HTTP 429)", false);
}

TEST(e2e_fault_429_retry_after_honoured)
{
	unsigned long long t0 = util_now_ms();
	check_transient("fault_429ra", "429ra", "HTTP 429); retrying in 1000 ms", false);
	/* Retry-After: 1 held page 2 back for a second */
	unsigned long long took = util_now_ms() - t0;
	if (took < 1000)
		test_fail(__FILE__, __LINE__, "the run took %llu ms: Retry-After ignored", took);
}

TEST(e2e_fault_reset_mid_body_discards_rows)
{
	check_transient("fault_reset", "reset", "transfer failed: ", true);
}

TEST(e2e_fault_truncate_mid_body_discards_rows)
{
	check_transient("fault_truncate", "truncate", "transfer failed: ", true);
}

TEST(e2e_fault_malformed_json_discards_rows)
{
	check_transient("fault_malformed", "malformed", "malformed JSON at byte ", true);
}

TEST(e2e_fault_html_body_retried)
{
	check_transient("fault_html", "html", "malformed JSON at byte 1:", false);
}

TEST(e2e_fault_empty_body_retried)
{
	check_transient("fault_empty", "empty", "empty body", false);
}

TEST(e2e_fault_on_first_and_sentinel_pages)
{
	/* the first page decides the plan; the sentinel confirms the end */
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_first_sentinel");
	e2e_sim_start(&sim, SIM_ARGS " --fault ios:1:truncate --fault mac:1:503"
				     " --fault ios:4:malformed --fault tvos:2:reset");
	int status = e2e_sync(faults_config(schema, &sim, 3, 5, NULL), &res);
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_EQ_INT(faults, 4);
	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT retries FROM sync_runs"), 4);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT total_hint FROM sync_run_endpoints"
				     " WHERE endpoint = 'devices/ios'"),
		      IOS);
	assert_ios_range_loaded(db, 0, 100, 1);
	assert_ios_range_loaded(db, 100, 200, 2);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_sequence_on_one_page_within_retries)
{
	/* three different failures in a row, then the real page: the last
	 * of retries = 3 succeeds */
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_sequence");
	e2e_sim_start(&sim, SIM_ARGS " --fault ios:3:reset --fault ios:3:503 --fault ios:3:truncate");
	int status = e2e_sync(faults_config(schema, &sim, 3, 5, NULL), &res);
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_EQ_INT(faults, 3);
	ASSERT_CONTAINS(res.err.data, "devices/ios page 3: attempt 3 failed (");
	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT retries FROM sync_runs"), 3);
	assert_ios_range_loaded(db, 200, 250, 3);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_page_failing_past_retries_fails_run_keeps_inventory)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_exhausted");

	/* a good run first */
	e2e_sim_start(&sim, SIM_ARGS);
	ASSERT_EQ_INT(e2e_sync(faults_config(schema, &sim, 3, 5, NULL), &res), 0);
	e2e_result_free(&res);
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	long long first_run = e2e_db_int(db, "SELECT max(run_id) FROM sync_runs");

	/* then page 2 always fails */
	e2e_sim_start(&sim, "--ios 300 --mac 120 --tvos 7 --visionos 0 --seed 11"
			    " --fault ios:2:500:0");
	int status = e2e_sync(faults_config(schema, &sim, 3, 5, NULL), &res);
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(status, 1);
	/* the first try and three retries */
	ASSERT_EQ_INT(faults, 4);
	ASSERT_CONTAINS(res.err.data, "devices/ios: page 2 failed after 4 attempts: HTTP 500");
	ASSERT_CONTAINS(res.out.data, "failed");

	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", first_run);
	ASSERT_CONTAINS(err.data, "devices/ios: page 2");
	ASSERT_CONTAINS(err.data, "HTTP 500");
	ASSERT_EQ_STR(err.data, "devices/ios: page 2 failed after 4 attempts: HTTP 500");
	buf_free(&err);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id > %lld"
				     " AND status = 'failed' AND retries = 3 AND loaded IS NULL"
				     " AND finished_at IS NOT NULL",
				 first_run),
		      1);
	e2e_assert_inventory_kept(db, first_run, IOS + MAC + TVOS);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_random_rate_with_retries)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_rate");
	e2e_sim_start(&sim, "--ios 2000 --mac 500 --tvos 0 --visionos 0 --seed 1"
			    " --fault-rate 5:503");
	int status = e2e_sync(faults_config(schema, &sim, 6, 5, NULL), &res);
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	/* the seed is chosen so that some pages do fail */
	ASSERT(faults > 0);
	PGconn *db = e2e_db(schema);
	assert_inventory(db, 2000, 500, 0);
	/* every 503 cost exactly one retry */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT retries FROM sync_runs"), faults);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_stall_hits_timeout_and_is_retried)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_stall");
	e2e_sim_start(&sim, SIM_ARGS " --fault ios:2:stall");
	unsigned long long t0 = util_now_ms();
	int status = e2e_sync(faults_config(schema, &sim, 3, 2, NULL), &res);
	unsigned long long took = util_now_ms() - t0;
	long long faults = e2e_sim_stat(&sim, "faults");
	t0 = util_now_ms();
	/* the stalled answer noticed that invsync hung up: no 30 s wait */
	e2e_sim_stop_clean(&sim);
	unsigned long long stop_took = util_now_ms() - t0;
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_EQ_INT(faults, 1);
	ASSERT_CONTAINS(res.err.data, "devices/ios page 2: attempt 1 failed (transfer failed: ");
	if (took < 1900 || took > 20000)
		test_fail(__FILE__, __LINE__, "the run took %llu ms, want about 2 s", took);
	if (stop_took > 5000)
		test_fail(__FILE__, __LINE__, "the simulator took %llu ms to stop", stop_took);
	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	ASSERT(e2e_db_int(db, "SELECT retries FROM sync_runs") >= 1);
	assert_ios_range_loaded(db, 100, 200, 2);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_slow_answer_within_timeout_is_not_retried)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_slow");
	e2e_sim_start(&sim, SIM_ARGS " --fault ios:2:slow");
	unsigned long long t0 = util_now_ms();
	int status = e2e_sync(faults_config(schema, &sim, 3, 5, NULL), &res);
	unsigned long long took = util_now_ms() - t0;
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	if (took < 2900)
		test_fail(__FILE__, __LINE__, "the run took %llu ms: the slow page was not slow", took);
	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT retries FROM sync_runs"), 0);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_past_end_page_failing_does_not_matter)
{
	/* Without a total, pages 2-5 go out speculatively; page 4 is the end
	 * and page 5, past it, always fails or stalls: that must not fail
	 * the run nor hold it up. */
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_past_end");
	e2e_sim_start(&sim, SIM_ARGS " --rows absent --fault ios:5:500:0 --fault mac:4:stall");
	unsigned long long t0 = util_now_ms();
	/* enough retries that page 4 has answered before page 5 runs out */
	int status = e2e_sync(faults_config(schema, &sim, 6, 5, NULL), &res);
	unsigned long long took = util_now_ms() - t0;
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	if (took > 4000)
		test_fail(__FILE__, __LINE__, "the run took %llu ms: it waited for a page past the end",
			  took);
	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	PQfinish(db);
	e2e_result_free(&res);
}

/* ---- the HTTP layer alone: a transfer paused by backpressure whose held
 * bytes are refused when it resumes (invsync does this when a page turns
 * out to be invalid JSON while PostgreSQL was slow) ---- */

struct paused_refusal {
	uv_timer_t resume_timer;
	struct http_transfer *xfer;
	char token[1024];
	int data_calls;
	bool done;
	int curl_code;
	long status;
	unsigned long long resumed_ms, done_ms;
};

static int refusal_login_data(void *arg, const char *data, size_t len)
{
	UNUSED(arg);
	UNUSED(data);
	UNUSED(len);
	return 0;
}

static void refusal_login_done(void *arg, const struct http_result *res)
{
	struct paused_refusal *pr = arg;
	pr->done = true;
	if (res->captured)
		snprintf(pr->token, sizeof(pr->token), "%s", res->captured);
}

static int refusal_page_data(void *arg, const char *data, size_t len)
{
	struct paused_refusal *pr = arg;
	UNUSED(data);
	UNUSED(len);
	/* first delivery: as if the COPY were congested; then: not JSON */
	return pr->data_calls++ == 0 ? HTTP_PAUSE : -EPROTO;
}

static void refusal_page_done(void *arg, const struct http_result *res)
{
	struct paused_refusal *pr = arg;
	pr->xfer = NULL;
	pr->done = true;
	pr->curl_code = res->curl_code;
	pr->status = res->status;
	pr->done_ms = util_now_ms();
}

static void refusal_resume_cb(uv_timer_t *t)
{
	struct paused_refusal *pr = t->data;
	pr->resumed_ms = util_now_ms();
	if (pr->xfer)
		http_resume(pr->xfer);
}

static void refusal_closed(void *arg)
{
	*(bool *)arg = true;
}

TEST(e2e_fault_refused_after_pause_ends_transfer_at_once)
{
	struct e2e_sim sim;
	struct paused_refusal pr = {0};
	struct http_client *http;
	uv_loop_t loop;
	char url[128], auth[1100];
	bool closed = false;

	e2e_sim_start(&sim, "--ios 10 --fault ios:1:html");
	ASSERT_EQ_INT(uv_loop_init(&loop), 0);
	/* no low-speed check: only the 10 s timeout could end a forgotten
	 * transfer */
	struct http_options hopt = {.connect_timeout_ms = 5000, .timeout_ms = 10000};
	ASSERT_EQ_INT(http_client_new(&http, &loop, &hopt), 0);
	uv_timer_init(&loop, &pr.resume_timer);
	pr.resume_timer.data = &pr;

	const char *json_headers[] = {"Content-Type: application/json", NULL};
	const char *login = "{\"accessToken\":\"" TOKEN "\",\"email\":\"" EMAIL
			    "\",\"password\":\"" PASSWORD "\"}";
	snprintf(url, sizeof(url), "%s/login", sim.base_url);
	struct http_request req = {
		.method = "POST", .url = url, .headers = json_headers, .body = login,
		.body_len = strlen(login), .capture_header = "Authorization",
		.on_data = refusal_login_data, .on_done = refusal_login_done, .arg = &pr,
	};
	struct http_transfer *login_xfer;
	ASSERT_EQ_INT(http_start(http, &req, &login_xfer), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT(pr.done);
	ASSERT(pr.token[0]);

	pr.done = false;
	snprintf(auth, sizeof(auth), "Authorization: %s", pr.token);
	const char *page_headers[] = {"Content-Type: application/json", auth, NULL};
	const char *page = "{\"accessToken\":\"" TOKEN "\",\"options\":{\"os\":\"ios\",\"page\":1}}";
	snprintf(url, sizeof(url), "%s/listdevices", sim.base_url);
	req = (struct http_request){
		.method = "POST", .url = url, .headers = page_headers, .body = page,
		.body_len = strlen(page), .on_data = refusal_page_data,
		.on_done = refusal_page_done, .arg = &pr,
	};
	ASSERT_EQ_INT(http_start(http, &req, &pr.xfer), 0);
	uv_timer_start(&pr.resume_timer, refusal_resume_cb, 50, 0);
	uv_run(&loop, UV_RUN_DEFAULT);

	ASSERT(pr.done);
	ASSERT_EQ_INT(pr.data_calls, 2);
	ASSERT_EQ_INT(pr.status, 200);
	/* the refusal ended the transfer at once, not when a timer found it */
	if (pr.done_ms - pr.resumed_ms > 1000)
		test_fail(__FILE__, __LINE__, "on_done came %llu ms after the refused resume"
			  " (curl code %d)", pr.done_ms - pr.resumed_ms, pr.curl_code);
	/* and reported curl's write error, as for a refusal without pause */
	ASSERT_EQ_INT(pr.curl_code, 23 /* CURLE_WRITE_ERROR */);

	uv_close((uv_handle_t *)&pr.resume_timer, NULL);
	http_client_close(http, refusal_closed, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT(closed);
	ASSERT_EQ_INT(uv_loop_close(&loop), 0);
	e2e_sim_stop_clean(&sim);
}

/* ---- pages that are well-formed HTTP but hard JSON: nesting past the
 * parser's limit, invalid UTF-8, keys given twice, values of the wrong
 * types. Each fault changes the first device of iOS page 2 (index 100). ---- */

/* A fault on iOS page 2 that fails every attempt: a good run first, then
 * a run against a larger inventory that fails on that page with reason
 * and leaves the first run's inventory as it was. */
static void check_always_fails(const char *name, const char *kind, const char *reason)
{
	struct e2e_sim sim;
	struct e2e_result res;
	char args[256], want[256];
	const char *schema = e2e_schema(name);

	e2e_sim_start(&sim, SIM_ARGS);
	ASSERT_EQ_INT(e2e_sync(faults_config(schema, &sim, 3, 5, NULL), &res), 0);
	e2e_result_free(&res);
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	long long first_run = e2e_db_int(db, "SELECT max(run_id) FROM sync_runs");

	snprintf(args, sizeof(args), "--ios 300 --mac 120 --tvos 7 --visionos 0 --seed 11"
				     " --fault ios:2:%s:0", kind);
	e2e_sim_start(&sim, args);
	int status = e2e_sync(faults_config(schema, &sim, 3, 5, NULL), &res);
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(status, 1);
	/* the first try and three retries */
	ASSERT_EQ_INT(faults, 4);
	snprintf(want, sizeof(want), "devices/ios: page 2 failed after 4 attempts: %s", reason);
	ASSERT_CONTAINS(res.err.data, want);
	ASSERT_CONTAINS(res.err.data, "devices/ios page 2: attempt 3 failed (");

	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", first_run);
	ASSERT_CONTAINS(err.data, want);
	buf_free(&err);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id > %lld"
				     " AND status = 'failed' AND retries = 3 AND loaded IS NULL"
				     " AND finished_at IS NOT NULL",
				 first_run),
		      1);
	e2e_assert_inventory_kept(db, first_run, IOS + MAC + TVOS);
	assert_ios_range_loaded(db, 100, 200, 2);
	PQfinish(db);
	e2e_result_free(&res);
}

/* A fault on iOS page 2 that the run takes in its stride: it succeeds on
 * the first attempt of every page. The database is left open in *db for
 * the caller's checks of the altered device (iOS index 100, in *dev). */
static void run_accepted(const char *name, const char *kind, PGconn **db,
			 struct simdata_device *dev, struct e2e_result *res)
{
	struct e2e_sim sim;
	char args[256];
	const char *schema = e2e_schema(name);
	struct simdata_options opt = {.seed = SEED};

	snprintf(args, sizeof(args), SIM_ARGS " --fault ios:2:%s", kind);
	e2e_sim_start(&sim, args);
	int status = e2e_sync(faults_config(schema, &sim, 3, 5, NULL), res);
	long long faults = e2e_sim_stat(&sim, "faults");
	long long ios_pages = e2e_sim_stat(&sim, "ios");
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res->err));
	ASSERT_EQ_INT(faults, 1);
	/* pages 1-3 and the sentinel 4, none twice */
	ASSERT_EQ_INT(ios_pages, 4);
	*db = e2e_db(schema);
	assert_inventory(*db, IOS, MAC, TVOS);
	ASSERT_EQ_INT(e2e_db_int(*db, "SELECT retries FROM sync_runs"), 0);
	assert_ios_range_loaded(*db, 0, 100, 1);
	assert_ios_range_loaded(*db, 100, 200, 2);
	assert_ios_range_loaded(*db, 200, 250, 3);
	simdata_device(&opt, SIMDATA_IOS, 100, dev);
}

TEST(e2e_fault_nested_too_deep_retried)
{
	check_transient("fault_nested", "nested", "nesting deeper than 64 levels", false);
}

TEST(e2e_fault_nested_always_fails_run_keeps_inventory)
{
	check_always_fails("fault_nested_always", "nested", "nesting deeper than 64 levels");
}

TEST(e2e_fault_badutf8_retried)
{
	check_transient("fault_badutf8", "badutf8", "invalid bytes in UTF8 string", false);
}

TEST(e2e_fault_badutf8_always_fails_run_keeps_inventory)
{
	check_always_fails("fault_badutf8_always", "badutf8",
			   "malformed JSON at byte 188: invalid bytes in UTF8 string");
}

TEST(e2e_fault_dupkeys_last_value_wins)
{
	struct simdata_device d;
	struct e2e_result res;
	struct buf s = BUF_INIT;
	PGconn *db;

	run_accepted("fault_dupkeys", "dupkeys", &db, &d, &res);
	/* the typed column and the stored record agree: the later value */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'ios'"
				     " AND serial_number = '%s' AND device_name = 'DUP-SECOND'"
				     " AND attrs->>'device_name' = 'DUP-SECOND'"
				     " AND attrs->>'serial_number' = '%s' AND page = 2",
				 d.serial_number, d.serial_number),
		      1);
	e2e_db_str(db, &s, "SELECT device_key FROM mosyle_devices WHERE serial_number = '%s'",
		   d.serial_number);
	if (d.has_udid) {
		ASSERT_EQ_STR(s.data, d.udid);
	} else {
		char key[64];
		snprintf(key, sizeof(key), "serial:%s", d.serial_number);
		ASSERT_EQ_STR(s.data, key);
	}
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE"
				     " device_name = 'DUP-FIRST' OR serial_number = 'DUP-SERIAL'"
				     " OR attrs::text LIKE '%%DUP-FIRST%%'"
				     " OR attrs::text LIKE '%%DUP-SERIAL%%'"),
		      0);
	/* only the first device of the page was touched */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"
				     " WHERE device_name LIKE 'DUP-%%'"),
		      1);
	buf_free(&s);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_types_converted_or_null_with_warning)
{
	struct simdata_device d;
	struct e2e_result res;
	struct buf s = BUF_INIT;
	PGconn *db;

	run_accepted("fault_types", "types", &db, &d, &res);
	const char *row = "FROM mosyle_devices WHERE os = 'ios' AND serial_number = '%s'";
	char q[512];
	snprintf(q, sizeof(q),
		 "SELECT count(*) %s AND total_disk = 256 AND is_supervised"
		 " AND os_version = '17.4' AND last_checkin = to_timestamp(1710264696)"
		 " AND battery IS NULL AND device_key = %s",
		 row, d.has_udid ? "udid" : "'serial:' || serial_number");
	ASSERT_EQ_INT(e2e_db_int(db, q, d.serial_number), 1);
	/* the full record keeps what was sent, with its JSON types */
	snprintf(q, sizeof(q),
		 "SELECT count(*) %s AND attrs->>'battery' = 'n/a'"
		 " AND jsonb_typeof(attrs->'battery') = 'string'"
		 " AND attrs->'total_disk' = '256'::jsonb"
		 " AND jsonb_typeof(attrs->'total_disk') = 'number'"
		 " AND attrs->'is_supervised' = 'true'::jsonb"
		 " AND attrs->'osversion' = '17.4'::jsonb"
		 " AND attrs->'date_last_beat' = '1710264696'::jsonb",
		 row);
	ASSERT_EQ_INT(e2e_db_int(db, q, d.serial_number), 1);
	if (d.has_udid) {
		snprintf(q, sizeof(q), "SELECT count(*) %s AND attrs->>'deviceudid' = '%s'", row,
			 d.udid);
		ASSERT_EQ_INT(e2e_db_int(db, q, d.serial_number), 1);
	}
	/* one value could not be converted: the battery */
	e2e_db_str(db, &s, "SELECT warnings FROM sync_runs");
	ASSERT_EQ_STR(s.data, "1 values could not be converted and were stored as NULL"
			      " (the full record keeps them)");
	buf_free(&s);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_slow_first_byte_hits_first_byte_timeout_and_is_retried)
{
	/* the page answers after 3 s; the first byte may take 1 s: the first
	 * attempt is given up after about a second and the retry loads it */
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_first_byte");
	e2e_sim_start(&sim, SIM_ARGS " --fault ios:2:slow");
	unsigned long long t0 = util_now_ms();
	int status = e2e_sync(first_byte_config(schema, &sim), &res);
	unsigned long long took = util_now_ms() - t0;
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	if (took >= 2900)
		test_fail(__FILE__, __LINE__, "the run took %llu ms: it waited for the slow answer", took);
	ASSERT_CONTAINS(res.err.data, "no answer within 1 s of sending the request");
	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT retries FROM sync_runs WHERE status = 'succeeded'"), 1);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_fault_always_slow_first_byte_fails_with_reason)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_first_byte_always");
	e2e_sim_start(&sim, SIM_ARGS " --fault ios:2:slow:0");
	int status = e2e_sync(first_byte_config(schema, &sim), &res);
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(status, 1);
	PGconn *db = e2e_db(schema);
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE status = 'failed'");
	ASSERT_EQ_STR(err.data, "devices/ios: page 2 failed after 3 attempts: transfer failed: "
				"no answer within 1 s of sending the request");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 0);
	buf_free(&err);
	PQfinish(db);
	e2e_result_free(&res);
}

/* Mosyle refuses the first login with 429 and "Retry-After: 1": the run
 * waits the second asked for, not its own shorter backoff (20 ms here),
 * logs in and loads everything. */
TEST(e2e_fault_login_429_waits_for_retry_after)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_login_429");
	e2e_sim_start(&sim, SIM_ARGS " --fault login:1:429ra");
	int status = e2e_sync(faults_config(schema, &sim, 3, 5, NULL), &res);
	long long logins = e2e_sim_stat(&sim, "login");
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_EQ_INT(logins, 2);
	ASSERT_EQ_INT(faults, 1);
	ASSERT_CONTAINS(res.err.data, "login attempt 1 failed (HTTP 429, Retry-After);"
				      " retrying in 1000 ms");
	PGconn *db = e2e_db(schema);
	assert_inventory(db, IOS, MAC, TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 1);
	PQfinish(db);
	e2e_result_free(&res);
}

/* Mosyle answers every login with 503: after 1 + retries attempts the
 * source fails saying the server failed, not that the credentials are
 * wrong, and loads nothing. */
TEST(e2e_fault_login_503_every_time_blames_the_server)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("fault_login_503");
	e2e_sim_start(&sim, SIM_ARGS " --fault login:1:503:0");
	int status = e2e_sync(faults_config(schema, &sim, 2, 5, NULL), &res);
	long long logins = e2e_sim_stat(&sim, "login");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(status, 1);
	ASSERT_EQ_INT(logins, 3);
	ASSERT_CONTAINS(res.err.data, "login attempt 2 failed (HTTP 503); retrying in 40 ms");
	PGconn *db = e2e_db(schema);
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE status = 'failed'");
	ASSERT_EQ_STR(err.data, "login failed: Mosyle answered HTTP 503 on all 3 attempts;"
				" try again later");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 0);
	buf_free(&err);
	PQfinish(db);
	e2e_result_free(&res);

	/* with retries = 0, one attempt, said in the singular */
	schema = e2e_schema("fault_login_503_once");
	e2e_sim_start(&sim, SIM_ARGS " --fault login:1:503:0");
	ASSERT_EQ_INT(e2e_sync(faults_config(schema, &sim, 0, 5, NULL), &res), 1);
	logins = e2e_sim_stat(&sim, "login");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(logins, 1);
	db = e2e_db(schema);
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE status = 'failed'");
	ASSERT_EQ_STR(err.data, "login failed: Mosyle answered HTTP 503 on 1 attempt; try again later");
	buf_free(&err);
	PQfinish(db);
	e2e_result_free(&res);
}
