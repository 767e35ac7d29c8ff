/* e2e_ops.c - running unattended: the overlap lock, --source, many sources
 * within [database] connections, and several workers sharing the sources
 * through the queue (one of them killed mid-run). */
#include "e2e.h"
#include "test.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#define SYNCRO_KEY "sim-syncro-key"

/* n Mosyle sources m0..m(n-1) loading devices, then n_syncro Syncro
 * tenants s0..: all on the one simulator. */
static const char *many_config(const char *schema, const struct e2e_sim *sim, int n,
			       int n_syncro, const char *database_lines)
{
	struct buf body = BUF_INIT;
	buf_printf(&body, "%s\n[fetch]\nconcurrency = 16\nretries = 2\nretry_delay_ms = 20\n"
			  "syncro_requests_per_minute = 60000\n",
		   database_lines ? database_lines : "");
	for (int i = 0; i < n; i++)
		buf_printf(&body, "[mosyle m%d]\nbase_url = %s\naccess_token = " E2E_TOKEN
				  "\nemail = " E2E_EMAIL "\npassword = " E2E_PASSWORD
				  "\nos = ios\nendpoints = devices\n",
			   i, sim->base_url);
	for (int i = 0; i < n_syncro; i++)
		buf_printf(&body, "[syncro s%d]\nbase_url = http://127.0.0.1:%d/api/v1\napi_key = "
				  SYNCRO_KEY "\n",
			   i, sim->port);
	/* e2e_config puts its own [database] first: merge ours into it */
	const char *path = e2e_config(schema, body.data);
	buf_free(&body);
	return path;
}

static long long wait_for(PGconn *db, long long want, long timeout_ms, const char *sql)
{
	long long v = -1;
	for (long waited = 0; waited < timeout_ms; waited += 20) {
		v = e2e_db_int(db, "%s", sql);
		if (v >= want)
			return v;
		usleep(20 * 1000);
	}
	return v;
}

TEST(e2e_overlapping_run_skips_the_source_and_exits_cleanly)
{
	struct e2e_sim sim;
	struct e2e_result first, second;
	const char *schema = e2e_schema("ops_overlap");
	e2e_sim_start(&sim, "--ios 6000 --mac 0 --tvos 0 --visionos 0 --latency-ms 150");
	const char *cfg = e2e_mosyle_config(schema, sim.base_url, "concurrency = 2\n", "os = ios\n");
	const char *argv[] = {"sync", "-c", cfg, NULL};
	pid_t pid = e2e_invsync_start(argv);
	PGconn *db = e2e_db(schema);
	/* the first run holds the source's lock once its row is written */
	if (wait_for(db, 1, 10000, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
				   " AND tablename = 'sync_runs'") < 1 ||
	    wait_for(db, 1, 10000, "SELECT count(*) FROM sync_runs WHERE status = 'running'") < 1)
		test_fail(__FILE__, __LINE__, "the first run did not start");
	e2e_invsync(&second, argv);
	ASSERT_EQ_INT(second.status, 0);
	ASSERT_CONTAINS(second.err.data, "another invsync run is loading this source right now");
	ASSERT_CONTAINS(second.out.data, "skipped");
	/* it wrote nothing of its own */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs"), 1);
	ASSERT(e2e_invsync_wait_ms(pid, 60000, &first));
	ASSERT_EQ_INT(first.status, 0);
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 6000);
	PQfinish(db);
	e2e_result_free(&first);
	e2e_result_free(&second);
}

TEST(e2e_source_option_runs_a_subset)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("ops_subset");
	e2e_sim_start(&sim, "--ios 120 --mac 0 --tvos 0 --visionos 0 --syncro-assets 50");
	const char *cfg = many_config(schema, &sim, 3, 2, NULL);
	const char *argv[] = {"sync", "-c", cfg, "--source", "m1", "-s", "s0", NULL};
	e2e_invsync(&res, argv);
	ASSERT_EQ_INT(res.status, 0);
	PGconn *db = e2e_db(schema);
	struct buf v = BUF_INIT;
	e2e_db_str(db, &v, "SELECT string_agg(source || ':' || status, ',' ORDER BY source)"
			   " FROM sync_runs");
	ASSERT_EQ_STR(v.data, "m1:succeeded,s0:succeeded");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE source = 'm1'"), 120);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 120);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"), 50);
	/* the report names only what ran */
	ASSERT(!strstr(res.out.data, "m0 ") && !strstr(res.out.data, "s1 "));
	e2e_result_free(&res);
	/* an unknown name is a usage error */
	const char *bad[] = {"sync", "-c", cfg, "--source", "nope", NULL};
	e2e_invsync(&res, bad);
	ASSERT_EQ_INT(res.status, 2);
	ASSERT_CONTAINS(res.err.data, "--source nope: no such source");
	e2e_sim_stop_clean(&sim);
	buf_free(&v);
	PQfinish(db);
	e2e_result_free(&res);
}

/* Many sources in one process: each commits on its own, and no more than
 * [database] connections loading connections are open at once (plus the
 * run log's). */
TEST(e2e_many_sources_within_the_connection_limit)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("ops_many");
	e2e_sim_start(&sim, "--ios 300 --mac 0 --tvos 0 --visionos 0 --syncro-assets 80"
			    " --latency-ms 10");
	const char *cfg = many_config(schema, &sim, 6, 30, "connections = 5\n");
	const char *argv[] = {"sync", "-c", cfg, NULL};
	pid_t pid = e2e_invsync_start(argv);
	PGconn *db = e2e_db(schema);
	long long peak = 0;
	bool done = false;
	while (!done) {
		long long n = e2e_db_int(db, "SELECT count(*) FROM pg_stat_activity"
					     " WHERE application_name = 'invsync'");
		if (n > peak)
			peak = n;
		done = e2e_invsync_wait_ms(pid, 5, &res);
	}
	e2e_sim_stop_clean(&sim);
	if (res.status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", res.status, buf_str(&res.err));
	/* 5 loading connections and the control connection */
	if (peak > 6)
		test_fail(__FILE__, __LINE__, "%lld connections open at once", peak);
	ASSERT(peak >= 2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 36);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 6 * 300);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"), 30 * 80);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT source) FROM syncro_customers"), 30);
	PQfinish(db);
	e2e_result_free(&res);
}

static pid_t start_worker(const char *cfg, const char *schedule)
{
	const char *argv[] = {"sync", "-c", cfg, "--worker", "--schedule", schedule, "--lease", "3",
			      NULL};
	return e2e_invsync_start(argv);
}

/* Three workers share six sources: each is loaded exactly once. */
TEST(e2e_workers_share_the_sources_once_each)
{
	struct e2e_sim sim;
	const char *schema = e2e_schema("ops_workers");
	e2e_sim_start(&sim, "--ios 400 --mac 0 --tvos 0 --visionos 0 --latency-ms 30");
	const char *cfg = many_config(schema, &sim, 6, 0, "connections = 1\n");
	/* the schema first, so that the workers do not all wait on the migration */
	const char *mig[] = {"migrate", "-c", cfg, NULL};
	struct e2e_result res;
	e2e_invsync(&res, mig);
	ASSERT_EQ_INT(res.status, 0);
	e2e_result_free(&res);
	pid_t pids[3];
	for (int i = 0; i < 3; i++)
		pids[i] = start_worker(cfg, "night-1");
	int ran[3] = {0};
	for (int i = 0; i < 3; i++) {
		ASSERT(e2e_invsync_wait_ms(pids[i], 60000, &res));
		if (res.status != 0)
			test_fail(__FILE__, __LINE__, "worker %d exited %d: %s", i, res.status,
				  buf_str(&res.err));
		const char *p = buf_str(&res.err);
		while ((p = strstr(p, "claimed from the queue")) != NULL) {
			ran[i]++;
			p++;
		}
		e2e_result_free(&res);
	}
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(ran[0] + ran[1] + ran[2], 6);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM source_queue WHERE schedule = 'night-1'"
				     " AND state = 'done' AND attempts = 1"),
		      6);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 6);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs"), 6);
	/* each loaded by the run its queue row names */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM source_queue q JOIN sync_runs r"
				     " USING (run_id, source) WHERE r.status = 'succeeded'"),
		      6);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 6 * 400);
	/* the same schedule again: nothing left to do */
	pid_t again = start_worker(cfg, "night-1");
	ASSERT(e2e_invsync_wait_ms(again, 20000, &res));
	ASSERT_EQ_INT(res.status, 0);
	ASSERT(!strstr(buf_str(&res.err), "claimed from the queue"));
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs"), 6);
	e2e_result_free(&res);
	PQfinish(db);
}

/* A worker killed mid-run: its claim's lease runs out and another worker
 * loads the source; the killed run is marked abandoned. */
TEST(e2e_worker_killed_mid_run_its_source_is_taken_over)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("ops_killed_worker");
	e2e_sim_start(&sim, "--ios 3000 --mac 0 --tvos 0 --visionos 0 --latency-ms 100");
	const char *cfg = many_config(schema, &sim, 2, 0,
				      "connections = 1\n");
	const char *mig[] = {"migrate", "-c", cfg, NULL};
	e2e_invsync(&res, mig);
	ASSERT_EQ_INT(res.status, 0);
	e2e_result_free(&res);
	PGconn *db = e2e_db(schema);
	pid_t a = start_worker(cfg, "night-2");
	if (wait_for(db, 1, 10000, "SELECT count(*) FROM source_queue WHERE state = 'claimed'") < 1)
		test_fail(__FILE__, __LINE__, "worker A claimed nothing");
	usleep(300 * 1000); /* some pages loaded */
	kill(a, SIGKILL);
	ASSERT(e2e_invsync_wait_ms(a, 5000, &res));
	ASSERT_EQ_INT(res.status, 128 + SIGKILL);
	e2e_result_free(&res);
	struct buf held = BUF_INIT;
	e2e_db_str(db, &held, "SELECT source FROM source_queue WHERE state = 'claimed'");
	ASSERT(held.len > 0);

	pid_t b = start_worker(cfg, "night-2");
	ASSERT(e2e_invsync_wait_ms(b, 60000, &res));
	e2e_sim_stop_clean(&sim);
	if (res.status != 0)
		test_fail(__FILE__, __LINE__, "worker B exited %d: %s", res.status, buf_str(&res.err));
	e2e_result_free(&res);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM source_queue WHERE schedule = 'night-2'"
				     " AND state = 'done'"),
		      2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT attempts FROM source_queue WHERE source = '%s'",
				 held.data),
		      2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE source = '%s'"
				     " AND status = 'failed' AND error LIKE 'abandoned:%%'",
				 held.data),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 2 * 3000);
	/* and the dead worker's load table is gone */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
				     " ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
				     " AND c.relkind = 'r' AND NOT c.relispartition"
				     " AND c.relname LIKE 'mosyle\\_devices\\_r%%'"),
		      0);
	buf_free(&held);
	PQfinish(db);
}

/* One sync with a retried page, JSON logs, progress lines on a pipe and a
 * metrics file: every log line is a JSON object with the events a log
 * shipper filters on, progress lines show up, and the metrics file agrees
 * with the run log. */
TEST(e2e_json_logs_progress_and_metrics_of_a_run)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("ops_observe");
	char metrics[600];
	snprintf(metrics, sizeof(metrics), "%s/invsync.prom", getenv("INVSYNC_TEST_TMP"));
	e2e_sim_start(&sim, "--ios 1500 --mac 0 --tvos 0 --visionos 0 --latency-ms 100"
			    " --fault ios:3:500:1");
	const char *cfg = e2e_mosyle_config(schema, sim.base_url,
					    "concurrency = 2\nretry_delay_ms = 20\n", "os = ios\n");
	const char *argv[] = {"sync", "-c", cfg, "--log-format", "json", "--progress-interval",
			      "0.2", "--metrics-file", metrics, NULL};
	e2e_invsync(&res, argv);
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(res.status, 0);
	int lines = 0, progress = 0, retry = 0, login = 0, committed = 0;
	char *save = NULL;
	for (char *line = strtok_r(res.err.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char why[128];
		yajl_val v = yajl_tree_parse(line, why, sizeof(why));
		if (!v || !YAJL_IS_OBJECT(v))
			test_fail(__FILE__, __LINE__, "not a JSON object: %s (%s)", line, why);
		const char *time_path[] = {"time", NULL}, *event_path[] = {"event", NULL};
		const char *msg_path[] = {"message", NULL};
		ASSERT(YAJL_IS_STRING(yajl_tree_get(v, time_path, yajl_t_any)));
		ASSERT(YAJL_IS_STRING(yajl_tree_get(v, msg_path, yajl_t_any)));
		yajl_val ev = yajl_tree_get(v, event_path, yajl_t_string);
		const char *event = ev ? YAJL_GET_STRING(ev) : "";
		progress += strcmp(event, "progress") == 0;
		login += strcmp(event, "login") == 0;
		committed += strcmp(event, "committed") == 0;
		if (strcmp(event, "page_retry") == 0) {
			const char *ep[] = {"endpoint", NULL}, *pg[] = {"page", NULL};
			ASSERT_EQ_STR(YAJL_GET_STRING(yajl_tree_get(v, ep, yajl_t_string)), "devices/ios");
			ASSERT_EQ_INT(YAJL_GET_INTEGER(yajl_tree_get(v, pg, yajl_t_number)), 3);
			retry++;
		}
		yajl_tree_free(v);
		lines++;
	}
	ASSERT(lines >= 4);
	ASSERT_EQ_INT(login, 1);
	ASSERT_EQ_INT(retry, 1);
	ASSERT_EQ_INT(committed, 1);
	ASSERT(progress >= 1);
	ASSERT(!strstr(res.out.data, E2E_PASSWORD));

	/* the metrics file: the final figures, as in sync_runs */
	FILE *f = fopen(metrics, "r");
	ASSERT(f != NULL);
	struct buf text = BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&text, chunk, n);
	fclose(f);
	PGconn *db = e2e_db(schema);
	char want[256];
	snprintf(want, sizeof(want), "invsync_source_loaded{source=\"district\",kind=\"mosyle\"} %lld\n",
		 e2e_db_int(db, "SELECT loaded FROM sync_runs"));
	ASSERT_CONTAINS(text.data, want);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT loaded FROM sync_runs"), 1500);
	snprintf(want, sizeof(want), "invsync_source_retries_total{source=\"district\",kind=\"mosyle\"} %lld\n",
		 e2e_db_int(db, "SELECT retries FROM sync_runs"));
	ASSERT_CONTAINS(text.data, want);
	ASSERT_CONTAINS(text.data, "# TYPE invsync_source_status gauge\n");
	ASSERT_CONTAINS(text.data, "invsync_source_status{source=\"district\",kind=\"mosyle\",state=\"succeeded\"} 1\n");
	snprintf(want, sizeof(want), "invsync_run_id %lld\n", e2e_db_int(db, "SELECT run_id FROM sync_runs"));
	ASSERT_CONTAINS(text.data, want);
	buf_free(&text);
	PQfinish(db);
	e2e_result_free(&res);
}
