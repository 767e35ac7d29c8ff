/* e2e_pgfaults.c - invsync when PostgreSQL fails under it or invsync is
 * stopped: the COPY connection ended, the server restarting, invsync
 * killed, a reporting query holding a lock, a full tablespace, characters
 * the database cannot store, a violated constraint, SIGINT and SIGTERM.
 * Every test checks the exit status, the run log, that the previous
 * inventory is intact (same rows, same run) and that no load table is left
 * behind. */
#include "e2e.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN E2E_TOKEN
#define EMAIL E2E_EMAIL
#define PASSWORD E2E_PASSWORD

/* The inventory every test expects to survive: one quick run. */
#define OLD_IOS 300
#define OLD_SIM "--ios 300 --mac 0 --tvos 0 --visionos 0 --seed 3"
/* A run of about 3 s: 60 pages answered after 200 ms each, 4 at a time. */
#define SLOW_SIM "--ios 6000 --mac 0 --tvos 0 --visionos 0 --seed 5 --latency-ms 200"

/* database_keys go into [database] after the schema; sources replace the
 * single [mosyle district] section when given (%s is the base URL). */
static const char *pg_config(const char *schema, const struct e2e_sim *sim,
			     const char *database_keys, const char *sources)
{
	static char body[4096];
	char src[2048];
	snprintf(src, sizeof(src),
		 sources ? sources
			 : "[mosyle district]\nbase_url = %s\naccess_token = " TOKEN
			   "\nemail = " EMAIL "\npassword = " PASSWORD "\nos = ios\nendpoints = devices\n",
		 sim->base_url, sim->base_url);
	snprintf(body, sizeof(body),
		 "%s\n[fetch]\nconcurrency = 4\nwindow = 4\nretries = 2\nretry_delay_ms = 20\n"
		 "timeout = 20\n\n%s",
		 database_keys ? database_keys : "", src);
	return e2e_config(schema, body);
}

static pid_t sync_start(const char *cfg)
{
	const char *argv[] = {"sync", "-c", cfg, NULL};
	return e2e_invsync_start(argv);
}

/* Wait for invsync; kill it and fail if it takes longer than timeout_ms. */
static void sync_wait(pid_t pid, long timeout_ms, struct e2e_result *res, const char *what)
{
	if (e2e_invsync_wait_ms(pid, timeout_ms, res))
		return;
	kill(pid, SIGKILL);
	(void)e2e_invsync_wait_ms(pid, -1, res);
	test_fail(__FILE__, __LINE__, "invsync still ran %ld ms after %s: %s", timeout_ms, what,
		  buf_str(&res->err));
}

/* A first, successful run: the inventory that must survive. Its run id. */
static long long previous_run(const char *schema, const char *database_keys)
{
	struct e2e_sim sim;
	struct e2e_result res;
	e2e_sim_start(&sim, OLD_SIM);
	int status = e2e_sync(pg_config(schema, &sim, database_keys, NULL), &res);
	e2e_sim_stop(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "the first run exited %d: %s", status, buf_str(&res.err));
	e2e_result_free(&res);
	PGconn *db = e2e_db(schema);
	long long run = e2e_db_int(db, "SELECT run_id FROM sync_runs WHERE status = 'succeeded'");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld", run),
		      OLD_IOS);
	PQfinish(db);
	return run;
}

/* The rows of run `run` are still the whole inventory, and that run is
 * still the only one that succeeded. */
static void assert_previous_intact(PGconn *db, long long run)
{
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), OLD_IOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld", run),
		      OLD_IOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT device_key) FROM mosyle_devices"), OLD_IOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT run_id FROM sync_runs WHERE status = 'succeeded'"), run);
}

/* invsync's server sessions end shortly after invsync does (a vanished
 * client is noticed at the session's next read), and what they roll back
 * is gone only then: wait for them. */
static void wait_invsync_sessions_gone(PGconn *db)
{
	for (int i = 0; i < 1000; i++) {
		if (e2e_db_int(db, "SELECT count(*) FROM pg_stat_activity"
				   " WHERE application_name = 'invsync'") == 0)
			return;
		usleep(10 * 1000);
	}
	test_fail(__FILE__, __LINE__, "invsync's database sessions did not end");
}

/* The tables named like a load table are the attached partitions and
 * exactly `left` load tables a killed run left behind (the next run of the
 * source drops them). */
static void assert_load_tables_left(PGconn *db, const char *schema, int partitions, int left)
{
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_inherits"
				     " WHERE inhparent = 'mosyle_devices'::regclass"),
		      partitions);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class c"
				     " JOIN pg_namespace n ON n.oid = c.relnamespace"
				     " WHERE n.nspname = '%s' AND c.relkind = 'r'"
				     " AND c.relname LIKE 'mosyle\\_devices\\_r%%'",
				 schema),
		      partitions + left);
}

/* No load table is left over: the tables named like one are exactly the
 * attached partitions. */
static void assert_no_load_tables(PGconn *db, const char *schema, int partitions)
{
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_inherits"
				     " WHERE inhparent = 'mosyle_devices'::regclass"),
		      partitions);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class c"
				     " JOIN pg_namespace n ON n.oid = c.relnamespace"
				     " WHERE n.nspname = '%s' AND c.relkind = 'r'"
				     " AND c.relname LIKE 'mosyle\\_devices\\_r%%'",
				 schema),
		      partitions);
}

/* Poll until the query returns a count above zero. */
static void wait_until(PGconn *db, long timeout_ms, const char *what, const char *sql)
{
	unsigned long long deadline = util_now_ms() + (unsigned long long)timeout_ms;
	while (e2e_db_int(db, "%s", sql) <= 0) {
		if (util_now_ms() > deadline)
			test_fail(__FILE__, __LINE__, "waited %ld ms for %s", timeout_ms, what);
		usleep(20 * 1000);
	}
}

/* Wait until the simulator has answered n iOS pages: the run is loading. */
static void wait_pages(const struct e2e_sim *sim, long long n)
{
	for (int i = 0; i < 500; i++) {
		if (e2e_sim_stat(sim, "ios") >= n)
			return;
		usleep(20 * 1000);
	}
	test_fail(__FILE__, __LINE__, "the simulator did not see %lld pages", n);
}

#define INVSYNC_WAITS_FOR_LOCK                                                   \
	"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"    \
	" WHERE a.application_name = 'invsync' AND NOT l.granted"

static void assert_failed_run(PGconn *db, long long after_run, const char *error_like)
{
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id > %lld", after_run),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id > %lld"
				     " AND status = 'failed' AND finished_at IS NOT NULL"
				     " AND loaded IS NULL AND error LIKE '%s'",
				 after_run, error_like),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'running'"), 0);
}

/* ---- the COPY connection ended by an administrator ---- */

TEST(e2e_pg_copy_connection_killed_fails_cleanly)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("pg_copy_killed");
	long long run1 = previous_run(schema, NULL);
	e2e_sim_start(&sim, SLOW_SIM);
	pid_t pid = sync_start(pg_config(schema, &sim, NULL, NULL));
	wait_pages(&sim, 10);
	PGconn *db = e2e_db(schema);
	/* invsync names its sessions: only its COPY is ended */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
				     " WHERE application_name = 'invsync' AND query LIKE 'COPY %%'"),
		      1);
	sync_wait(pid, 10000, &res, "its COPY connection was ended");
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(res.status, 1);
	ASSERT_CONTAINS(res.err.data, "failed: loading devices into PostgreSQL failed: the database ended"
				      " the connection: terminating connection due to administrator"
				      " command");
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", run1);
	ASSERT_EQ_STR(err.data, "loading devices into PostgreSQL failed: the database ended the connection:"
				" terminating connection due to administrator command");
	buf_free(&err);
	assert_failed_run(db, run1, "loading devices into PostgreSQL failed:%");
	wait_invsync_sessions_gone(db);
	assert_previous_intact(db, run1);
	assert_no_load_tables(db, schema, 1);
	PQfinish(db);
	e2e_result_free(&res);
}

/* ---- the server restarting mid-run ---- */

static void restart_server(void)
{
	char cmd[1200];
	const char *pgtmp = getenv("INVSYNC_PGTMP"), *tmp = getenv("INVSYNC_TEST_TMP");
	if (!pgtmp || !tmp)
		test_fail(__FILE__, __LINE__, "INVSYNC_PGTMP is not set: run the tests with 'make test'");
	snprintf(cmd, sizeof(cmd), "sh '%s' restart '%s/pg'", pgtmp, tmp);
	int rc = system(cmd);
	if (rc != 0)
		test_fail(__FILE__, __LINE__, "%s exited %d", cmd, rc);
}

TEST(e2e_pg_server_restart_failure_recorded_after_reconnect)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("pg_restart");
	long long run1 = previous_run(schema, NULL);
	e2e_sim_start(&sim, SLOW_SIM);
	const char *cfg = pg_config(schema, &sim, NULL, NULL);
	pid_t pid = sync_start(cfg);
	wait_pages(&sim, 10);
	restart_server();
	/* the control connection died too: the failure is written after
	 * connecting again */
	sync_wait(pid, 20000, &res, "the server restarted");
	ASSERT_EQ_INT(res.status, 1);
	ASSERT_CONTAINS(res.err.data, "lost the connection to the database; connected again");
	ASSERT(!strstr(res.err.data, "could not record the failure"));
	PGconn *db = e2e_db(schema);
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", run1);
	ASSERT_EQ_STR(err.data, "loading devices into PostgreSQL failed: the database ended the connection:"
				" terminating connection due to administrator command");
	buf_free(&err);
	assert_failed_run(db, run1, "loading devices into PostgreSQL failed:%");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints WHERE run_id > %lld",
				 run1),
		      1);
	wait_invsync_sessions_gone(db);
	assert_previous_intact(db, run1);
	assert_no_load_tables(db, schema, 1);
	e2e_result_free(&res);

	/* and the next run works */
	ASSERT_EQ_INT(e2e_sync(cfg, &res), 0);
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 6000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'failed'"), 1);
	assert_no_load_tables(db, schema, 1);
	PQfinish(db);
	e2e_result_free(&res);
}

/* ---- invsync killed with SIGKILL ---- */

TEST(e2e_pg_killed_run_rolled_back_next_run_marks_it_abandoned)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("pg_kill9");
	long long run1 = previous_run(schema, NULL);
	e2e_sim_start(&sim, SLOW_SIM);
	pid_t pid = sync_start(pg_config(schema, &sim, NULL, NULL));
	wait_pages(&sim, 10);
	PGconn *db = e2e_db(schema);
	/* the load table exists while the run goes on, invisible to others */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name"
				     " = 'invsync' AND state = 'active' AND query LIKE 'COPY %%'"),
		      1);
	kill(pid, SIGKILL);
	sync_wait(pid, 5000, &res, "SIGKILL");
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(res.status, 128 + SIGKILL);
	e2e_result_free(&res);
	wait_invsync_sessions_gone(db);
	/* its load table is left (committed empty, unattached): the next run
	 * of the source drops it */
	assert_load_tables_left(db, schema, 1, 1);
	assert_previous_intact(db, run1);
	long long run2 = e2e_db_int(db, "SELECT run_id FROM sync_runs WHERE status = 'running'");
	ASSERT(run2 > run1);

	e2e_sim_start(&sim, "--ios 420 --mac 0 --tvos 0 --visionos 0 --seed 3");
	ASSERT_EQ_INT(e2e_sync(pg_config(schema, &sim, NULL, NULL), &res), 0);
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id = %lld"
				     " AND status = 'failed' AND finished_at IS NOT NULL"
				     " AND error LIKE 'abandoned: %%'",
				 run2),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id > %lld"
				     " AND status = 'succeeded' AND loaded = 420",
				 run2),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'running'"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id > %lld", run2),
		      420);
	assert_no_load_tables(db, schema, 1);
	PQfinish(db);
	e2e_result_free(&res);
}

/* ---- a reporting query holding a lock on mosyle_devices ---- */

TEST(e2e_pg_lock_held_by_report_times_out_keeps_inventory)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("pg_lock_held");
	long long run1 = previous_run(schema, "lock_timeout = 2\n");
	PGconn *db = e2e_db(schema);
	PGconn *report = e2e_db(schema);
	PQclear(PQexec(report, "BEGIN"));
	ASSERT_EQ_INT(e2e_db_int(report, "SELECT count(*) FROM mosyle_devices"), OLD_IOS);

	e2e_sim_start(&sim, "--ios 420 --mac 0 --tvos 0 --visionos 0 --seed 3");
	unsigned long long t0 = util_now_ms();
	pid_t pid = sync_start(pg_config(schema, &sim, "lock_timeout = 2\n", NULL));
	bool waited = false;
	/* the report reads the old inventory all along */
	while (!e2e_invsync_wait_ms(pid, 100, &res)) {
		ASSERT_EQ_INT(e2e_db_int(report, "SELECT count(*) FROM mosyle_devices"
						 " WHERE run_id = %lld", run1),
			      OLD_IOS);
		ASSERT_EQ_INT(e2e_db_int(report, "SELECT count(*) FROM mosyle_devices"), OLD_IOS);
		waited |= e2e_db_int(db, INVSYNC_WAITS_FOR_LOCK) > 0;
		if (util_now_ms() - t0 > 20000) {
			kill(pid, SIGKILL);
			test_fail(__FILE__, __LINE__, "invsync still waits after 20 s");
		}
	}
	unsigned long long took = util_now_ms() - t0;
	e2e_sim_stop(&sim);
	ASSERT(waited);
	if (took < 2000 || took > 10000)
		test_fail(__FILE__, __LINE__, "the run took %llu ms, want about 2 s", took);
	ASSERT_EQ_INT(res.status, 1);
	ASSERT_EQ_INT(e2e_db_int(report, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld",
				 run1),
		      OLD_IOS);
	PQclear(PQexec(report, "COMMIT"));
	PQfinish(report);

	static const char want[] = "could not swap in the new inventory: a query held a lock on"
				   " mosyle_devices for more than 2 s";
	ASSERT_CONTAINS(res.err.data, want);
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", run1);
	ASSERT_EQ_STR(err.data, want);
	buf_free(&err);
	assert_failed_run(db, run1, "could not swap in%");
	wait_invsync_sessions_gone(db);
	assert_previous_intact(db, run1);
	assert_no_load_tables(db, schema, 1);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_pg_short_lock_only_delays_commit)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("pg_lock_short");
	long long run1 = previous_run(schema, NULL);
	PGconn *db = e2e_db(schema);
	PGconn *report = e2e_db(schema);
	PQclear(PQexec(report, "BEGIN"));
	ASSERT_EQ_INT(e2e_db_int(report, "SELECT count(*) FROM mosyle_devices"), OLD_IOS);

	e2e_sim_start(&sim, "--ios 420 --mac 0 --tvos 0 --visionos 0 --seed 3");
	pid_t pid = sync_start(pg_config(schema, &sim, "lock_timeout = 10\n", NULL));
	wait_until(db, 10000, "invsync to wait for the report's lock", INVSYNC_WAITS_FOR_LOCK);
	usleep(1000 * 1000);
	ASSERT_EQ_INT(e2e_db_int(report, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld",
				 run1),
		      OLD_IOS);
	PQclear(PQexec(report, "COMMIT"));
	PQfinish(report);
	sync_wait(pid, 10000, &res, "the report ended");
	e2e_sim_stop(&sim);
	if (res.status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", res.status, buf_str(&res.err));
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id > %lld", run1),
		      420);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 420);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND loaded = 420 AND run_id > %lld", run1),
		      1);
	assert_no_load_tables(db, schema, 1);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_pg_two_sources_swap_without_deadlock)
{
	/* Each source's load runs in its own transaction while the other
	 * commits: neither may hold a lock the other's swap needs. */
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("pg_two_sources");
	static const char sources[] =
		"[mosyle north]\nbase_url = %s\naccess_token = " TOKEN "\nemail = " EMAIL
		"\npassword = " PASSWORD "\nos = ios\nendpoints = devices\n\n"
		"[mosyle south]\nbase_url = %s\naccess_token = " TOKEN "\nemail = " EMAIL
		"\npassword = " PASSWORD "\nos = ios\nendpoints = devices\n";
	e2e_sim_start(&sim, "--ios 800 --mac 0 --tvos 0 --visionos 0 --seed 3 --latency-ms 20");
	const char *cfg = pg_config(schema, &sim, "lock_timeout = 20\n", sources);
	PGconn *db = e2e_db(schema);
	for (int run = 1; run <= 3; run++) {
		if (e2e_sync(cfg, &res) != 0)
			test_fail(__FILE__, __LINE__, "run %d exited %d: %s", run, res.status,
				  buf_str(&res.err));
		e2e_result_free(&res);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"),
			      2 * run);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE source = 'north'"),
			      800);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE source = 'south'"),
			      800);
		assert_no_load_tables(db, schema, 2);
	}
	e2e_sim_stop(&sim);
	PQfinish(db);
}

/* ---- a CHECK constraint added to mosyle_devices by an administrator ---- */

TEST(e2e_pg_constraint_kept_and_violation_fails_cleanly)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("pg_constraint");
	long long run1 = previous_run(schema, NULL);
	PGconn *db = e2e_db(schema);
	PQclear(PQexec(db, "ALTER TABLE mosyle_devices ADD CONSTRAINT three_pages_at_most"
			   " CHECK (page <= 3)"));
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_constraint"
				     " WHERE conname = 'three_pages_at_most'"
				     " AND conrelid = 'mosyle_devices'::regclass"),
		      1);
	/* rows that satisfy it load (the new partition carries it) */
	e2e_sim_start(&sim, OLD_SIM);
	const char *cfg = pg_config(schema, &sim, NULL, NULL);
	if (e2e_sync(cfg, &res) != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", res.status, buf_str(&res.err));
	e2e_sim_stop(&sim);
	e2e_result_free(&res);
	long long run2 = e2e_db_int(db, "SELECT max(run_id) FROM sync_runs WHERE status = 'succeeded'");
	ASSERT(run2 > run1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld", run2),
		      OLD_IOS);

	/* a fourth page breaks it: the run fails, the inventory stays */
	e2e_sim_start(&sim, "--ios 350 --mac 0 --tvos 0 --visionos 0 --seed 3");
	ASSERT_EQ_INT(e2e_sync(pg_config(schema, &sim, NULL, NULL), &res), 1);
	e2e_sim_stop(&sim);
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", run2);
	ASSERT_CONTAINS(err.data, "violates check constraint \"three_pages_at_most\"");
	/* the row itself (DETAIL) is not copied into the message */
	ASSERT(err.len < 300);
	buf_free(&err);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id > %lld"
				     " AND status = 'failed'", run2),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), OLD_IOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld", run2),
		      OLD_IOS);
	wait_invsync_sessions_gone(db);
	assert_no_load_tables(db, schema, 1);
	PQfinish(db);
	e2e_result_free(&res);
}

/* ---- a full disk: load tables in a tablespace on a 30 MB tmpfs ---- */

#define TINY_SPACE "invsync_tiny"

static void sh_or_fail(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0)
		test_fail(__FILE__, __LINE__, "%s: exit status %d", cmd, rc);
}

/* The body, in a child process so that the parent can always unmount. */
static void full_tablespace_body(const char *schema, const char *dir)
{
	struct e2e_sim sim;
	struct e2e_result res;
	char sql[1024];
	PGconn *db = e2e_db(schema);
	snprintf(sql, sizeof(sql), "CREATE TABLESPACE " TINY_SPACE " LOCATION '%s'", dir);
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);

	long long run1 = previous_run(schema, "tablespace = " TINY_SPACE "\n");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_class c JOIN pg_tablespace t"
				     " ON t.oid = c.reltablespace WHERE t.spcname = '" TINY_SPACE "'"
				     " AND c.oid = current_partition('mosyle_devices', 'district')"),
		      1);
	long long used_before = e2e_db_int(db, "SELECT pg_tablespace_size('" TINY_SPACE "')");

	/* about 300 MB of JSON, several times what the 30 MB tablespace holds,
	 * so that it fills up well before the end whatever the timing */
	e2e_sim_start(&sim, "--ios 120000 --mac 0 --tvos 0 --visionos 0 --seed 3");
	int status = e2e_sync(pg_config(schema, &sim, "tablespace = " TINY_SPACE "\n", NULL), &res);
	long long pages = e2e_sim_stat(&sim, "ios");
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(status, 1);
	/* The load stopped soon after the disk filled up, not after the last
	 * page. A page is about 320 kB of COPY text, so a chunk of the COPY
	 * (PGSINK_CHUNK_BYTES, 32 MiB) is about 100 pages. The 30 MB
	 * tablespace is full before 64 MiB of COPY text have arrived (the
	 * rows take about as much room as their text; it would take them
	 * compressed to under half of it), so the server fails within the
	 * first two chunks, and the sink hears of it at the end of that
	 * chunk at the latest, even when libpq read the error while sending
	 * and nothing showed it. Two chunks, the 4 pages of the window in
	 * flight and the rows of pages paused mid-body while a chunk ends
	 * stay well under 250 pages; the load that missed the error fetched
	 * all 1201. */
	fprintf(stderr, "# %lld of 1201 pages fetched when the tablespace filled up\n", pages);
	if (pages > 250)
		test_fail(__FILE__, __LINE__, "%lld of 1201 pages fetched before the full tablespace"
			  " failed the load", pages);
	ASSERT_CONTAINS(res.err.data, "No space left on device");
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", run1);
	ASSERT_CONTAINS(err.data, "loading devices into PostgreSQL failed: could not extend file");
	ASSERT_CONTAINS(err.data, "No space left on device");
	buf_free(&err);
	assert_failed_run(db, run1, "%No space left on device%");
	wait_invsync_sessions_gone(db);
	assert_previous_intact(db, run1);
	assert_no_load_tables(db, schema, 1);
	/* the load's files are gone with it (their names at the next
	 * checkpoint) */
	PQclear(PQexec(db, "CHECKPOINT"));
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT pg_tablespace_size('" TINY_SPACE "')"), used_before);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_pg_full_tablespace_fails_cleanly)
{
	const char *schema = e2e_schema("pg_disk_full");
	char dir[512], cmd[1200];
	snprintf(dir, sizeof(dir), "%s/%d-tiny", getenv("INVSYNC_TEST_TMP"), (int)getpid());
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		test_fail(__FILE__, __LINE__, "mkdir %s: %s", dir, strerror(errno));
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=30m,mode=0700 tmpfs '%s'", dir);
	if (system(cmd) != 0)
		test_fail(__FILE__, __LINE__, "%s failed: this test needs to mount a tmpfs (run it"
			  " as root)", cmd);
	snprintf(cmd, sizeof(cmd), "if [ \"$(id -u)\" = 0 ]; then chown postgres '%s'; fi", dir);
	int chown_rc = system(cmd);

	pid_t child = fork();
	if (child < 0)
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (child == 0) {
		if (chown_rc != 0)
			test_fail(__FILE__, __LINE__, "%s: exit status %d", cmd, chown_rc);
		full_tablespace_body(schema, dir);
		fflush(NULL);
		_exit(0);
	}
	int status = 0;
	unsigned long long deadline = util_now_ms() + 50000;
	while (waitpid(child, &status, WNOHANG) == 0) {
		if (util_now_ms() > deadline) {
			kill(child, SIGKILL);
			waitpid(child, &status, 0);
			break;
		}
		usleep(20 * 1000);
	}

	/* whatever happened: empty the tablespace, drop it, unmount */
	PGconn *db = e2e_db(schema);
	PQclear(PQexec(db, "SET client_min_messages = warning"));
	snprintf(cmd, sizeof(cmd), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
	PQclear(PQexec(db, cmd));
	PGresult *r = PQexec(db, "DROP TABLESPACE IF EXISTS " TINY_SPACE);
	bool dropped = PQresultStatus(r) == PGRES_COMMAND_OK;
	struct buf drop_err = BUF_INIT;
	buf_puts(&drop_err, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(db);
	bool unmounted = false;
	snprintf(cmd, sizeof(cmd), "umount '%s' 2>/dev/null", dir);
	for (int i = 0; i < 50 && !unmounted; i++) {
		unmounted = system(cmd) == 0;
		if (!unmounted)
			usleep(100 * 1000);
	}
	if (!unmounted) {
		snprintf(cmd, sizeof(cmd), "umount -l '%s'", dir);
		sh_or_fail(cmd);
	}
	rmdir(dir);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		test_fail(__FILE__, __LINE__, "the test body failed (see above)%s",
			  WIFSIGNALED(status) ? ", killed after 50 s" : "");
	if (!dropped)
		test_fail(__FILE__, __LINE__, "DROP TABLESPACE: %s", buf_str(&drop_err));
	buf_free(&drop_err);
	ASSERT(unmounted);
}

/* ---- a LATIN1 database: characters it cannot store ---- */

TEST(e2e_pg_latin1_database_refuses_unrepresentable_names)
{
	struct e2e_sim sim;
	struct e2e_result res;
	PGconn *admin = PQconnectdb("");
	ASSERT_EQ_INT(PQstatus(admin), CONNECTION_OK);
	PQclear(PQexec(admin, "SET client_min_messages = warning"));
	PQclear(PQexec(admin, "DROP DATABASE IF EXISTS t_pg_latin1 WITH (FORCE)"));
	PGresult *r = PQexec(admin, "CREATE DATABASE t_pg_latin1 ENCODING 'LATIN1' LC_COLLATE 'C'"
				    " LC_CTYPE 'C' TEMPLATE template0");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		test_fail(__FILE__, __LINE__, "CREATE DATABASE: %s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(admin);
	/* invsync and this test's connections go there */
	setenv("PGDATABASE", "t_pg_latin1", 1);
	const char *schema = e2e_schema("pg_latin1");

	/* devices 0-6 have plain ASCII names */
	e2e_sim_start(&sim, "--ios 7 --mac 0 --tvos 0 --visionos 0 --seed 3");
	if (e2e_sync(pg_config(schema, &sim, NULL, NULL), &res) != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", res.status, buf_str(&res.err));
	e2e_sim_stop(&sim);
	e2e_result_free(&res);
	PGconn *db = e2e_db(schema);
	long long run1 = e2e_db_int(db, "SELECT run_id FROM sync_runs WHERE status = 'succeeded'");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld", run1), 7);

	/* device 7's name holds "é" (LATIN1 has it), "✓" and "🍎" (it has not) */
	e2e_sim_start(&sim, "--ios 60 --mac 0 --tvos 0 --visionos 0 --seed 3");
	ASSERT_EQ_INT(e2e_sync(pg_config(schema, &sim, NULL, NULL), &res), 1);
	e2e_sim_stop(&sim);
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", run1);
	ASSERT_EQ_STR(err.data, "loading devices into PostgreSQL failed: character with byte sequence 0xe2"
				" 0x9c 0x93 in encoding \"UTF8\" has no equivalent in encoding"
				" \"LATIN1\"");
	buf_free(&err);
	ASSERT_CONTAINS(res.err.data, "has no equivalent in encoding \"LATIN1\"");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'failed'"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 7);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld", run1), 7);
	wait_invsync_sessions_gone(db);
	assert_no_load_tables(db, schema, 1);
	PQfinish(db);
	e2e_result_free(&res);
}

/* ---- signals ---- */

TEST(e2e_pg_sigint_stops_run_promptly)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("pg_sigint");
	long long run1 = previous_run(schema, NULL);
	e2e_sim_start(&sim, SLOW_SIM);
	pid_t pid = sync_start(pg_config(schema, &sim, NULL, NULL));
	wait_pages(&sim, 10);
	unsigned long long t0 = util_now_ms();
	kill(pid, SIGINT);
	sync_wait(pid, 5000, &res, "SIGINT");
	unsigned long long took = util_now_ms() - t0;
	long long pages = e2e_sim_stat(&sim, "ios");
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(res.status, 1);
	if (took > 2000)
		test_fail(__FILE__, __LINE__, "invsync took %llu ms to stop", took);
	/* the transfers were cancelled: the run stopped well short of 61 pages */
	ASSERT(pages < 50);
	ASSERT_CONTAINS(res.err.data, "SIGINT received: stopping");
	PGconn *db = e2e_db(schema);
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE run_id > %lld", run1);
	ASSERT_EQ_STR(err.data, "interrupted by SIGINT before the run finished");
	buf_free(&err);
	assert_failed_run(db, run1, "interrupted%");
	wait_invsync_sessions_gone(db);
	assert_previous_intact(db, run1);
	assert_no_load_tables(db, schema, 1);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_pg_second_sigterm_exits_at_once)
{
	/* The first SIGTERM starts a clean stop that cannot finish: recording
	 * the failure waits for a lock the test holds on the run log row. The
	 * second SIGTERM must end invsync all the same. The server finishes
	 * the update it was waiting for once the lock is gone. */
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("pg_sigterm_twice");
	long long run1 = previous_run(schema, NULL);
	e2e_sim_start(&sim, SLOW_SIM);
	pid_t pid = sync_start(pg_config(schema, &sim, NULL, NULL));
	wait_pages(&sim, 10);
	PGconn *db = e2e_db(schema);
	PGconn *locker = e2e_db(schema);
	PQclear(PQexec(locker, "BEGIN"));
	ASSERT_EQ_INT(e2e_db_int(locker, "SELECT count(*) FROM (SELECT 1 FROM sync_runs"
					 " WHERE status = 'running' FOR UPDATE) l"),
		      1);
	kill(pid, SIGTERM);
	wait_until(db, 5000, "invsync to wait for the run log row", INVSYNC_WAITS_FOR_LOCK);
	unsigned long long t0 = util_now_ms();
	kill(pid, SIGTERM);
	sync_wait(pid, 2000, &res, "the second SIGTERM");
	unsigned long long took = util_now_ms() - t0;
	e2e_sim_stop(&sim);
	PQclear(PQexec(locker, "ROLLBACK"));
	PQfinish(locker);
	ASSERT_EQ_INT(res.status, 128 + SIGTERM);
	if (took > 1000)
		test_fail(__FILE__, __LINE__, "invsync took %llu ms to exit", took);
	ASSERT_CONTAINS(res.err.data, "SIGTERM received: stopping");
	e2e_result_free(&res);
	wait_invsync_sessions_gone(db);
	assert_previous_intact(db, run1);
	/* killed before it could drop its load table: the next run does */
	assert_load_tables_left(db, schema, 1, 1);
	long long run2 = e2e_db_int(db, "SELECT max(run_id) FROM sync_runs");
	ASSERT(run2 > run1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id = %lld"
				     " AND status = 'failed'"
				     " AND error = 'interrupted by SIGTERM before the run finished'",
				 run2),
		      1);

	/* the next run works */
	e2e_sim_start(&sim, OLD_SIM);
	ASSERT_EQ_INT(e2e_sync(pg_config(schema, &sim, NULL, NULL), &res), 0);
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'running'"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id > %lld", run2),
		      OLD_IOS);
	assert_no_load_tables(db, schema, 1);
	PQfinish(db);
	e2e_result_free(&res);
}
