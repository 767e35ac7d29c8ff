/* e2e_mosyle.c - invsync sync against the simulator and a real PostgreSQL:
 * exact counts, field values, run log, every paging variant, failures. */
#include "e2e.h"
#include "simdata.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN E2E_TOKEN
#define EMAIL E2E_EMAIL
#define PASSWORD E2E_PASSWORD

#define FETCH "concurrency = 16\nwindow = 4\nretries = 2\nretry_delay_ms = 20\ntimeout = 20\n"

static const char *mosyle_config(const char *schema, const struct e2e_sim *sim, const char *extra)
{
	return e2e_mosyle_config(schema, sim->base_url, FETCH, extra);
}

/* Sync a fresh schema against a simulator started with sim_args and check
 * that exactly the simulator's devices were loaded. */
static void check_variant(const char *name, const char *sim_args, const char *extra_config,
			  long ios, long mac, long tvos, long visionos)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema(name);
	e2e_sim_start(&sim, sim_args);
	const char *cfg = mosyle_config(schema, &sim, extra_config);
	int status = e2e_sync(cfg, &res);
	e2e_sim_stop(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'ios'"), ios);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'mac'"), mac);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'tvos'"), tvos);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'visionos'"),
		      visionos);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND loaded = %ld AND error IS NULL",
				 ios + mac + tvos + visionos),
		      1);
	/* no device lost or duplicated against the simulator's own list */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT serial_number) FROM mosyle_devices"),
		      ios + mac + tvos + visionos);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_sync_loads_every_device_with_values)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("values");
	e2e_sim_start(&sim, "--ios 250 --mac 120 --tvos 7 --visionos 0 --seed 7");
	const char *cfg = mosyle_config(schema, &sim, NULL);
	int status = e2e_sync(cfg, &res);
	e2e_sim_stop(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_CONTAINS(res.out.data, "succeeded");

	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'ios'"), 250);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'mac'"), 120);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'tvos'"), 7);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'visionos'"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND loaded = 377 AND records = 377 AND finished_at IS NOT NULL"),
		      1);
	/* 250 iOS devices in pages of 100 with a usable total: 3 pages and the
	 * sentinel that confirms the end, nothing wasted */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT pages FROM sync_run_endpoints WHERE endpoint = 'devices/ios'"), 4);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT pages_wasted FROM sync_run_endpoints WHERE endpoint = 'devices/ios'"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT total_hint FROM sync_run_endpoints WHERE endpoint = 'devices/ios'"), 250);

	struct simdata_options opt = {.seed = 7};
	static const int sample[] = {0, 1, 7, 13, 57, 110, 249};
	struct buf v = BUF_INIT;
	for (size_t i = 0; i < sizeof(sample) / sizeof(sample[0]); i++) {
		struct simdata_device d;
		simdata_device(&opt, SIMDATA_IOS, (uint64_t)sample[i], &d);
		char key[96];
		if (d.has_udid)
			snprintf(key, sizeof(key), "%s", d.udid);
		else
			snprintf(key, sizeof(key), "serial:%s", d.serial_number);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE device_key = '%s'"
					     " AND serial_number = '%s'",
					 key, d.serial_number),
			      1);
		/* the name with its tabs, newlines, quotes, backslashes and UTF-8,
		 * byte for byte, in the typed column and in the full record */
		e2e_db_str(db, &v, "SELECT device_name FROM mosyle_devices WHERE device_key = '%s'", key);
		ASSERT_EQ_MEM(v.data, v.len, d.name, d.name_len);
		e2e_db_str(db, &v, "SELECT attrs->>'device_name' FROM mosyle_devices WHERE device_key = '%s'", key);
		ASSERT_EQ_MEM(v.data, v.len, d.name, d.name_len);
		e2e_db_str(db, &v, "SELECT coalesce(user_email, '<none>') FROM mosyle_devices WHERE device_key = '%s'", key);
		ASSERT_EQ_STR(v.data, d.has_user ? d.useremail : "<none>");
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT (attrs ? 'userid')::int FROM mosyle_devices WHERE device_key = '%s'", key),
			      d.has_user);
		e2e_db_str(db, &v, "SELECT coalesce(asset_tag, '') FROM mosyle_devices WHERE device_key = '%s'", key);
		ASSERT_EQ_STR(v.data, d.asset_tag);
		e2e_db_str(db, &v, "SELECT array_to_string(tags, ',') FROM mosyle_devices WHERE device_key = '%s'", key);
		struct buf want = BUF_INIT;
		/* tags arrive as "a, b,c": the column holds the trimmed elements */
		for (const char *p = d.tags; *p;) {
			while (*p == ' ')
				p++;
			const char *end = strchr(p, ',');
			size_t n = end ? (size_t)(end - p) : strlen(p);
			size_t m = n;
			while (m && p[m - 1] == ' ')
				m--;
			if (m) {
				if (want.len)
					buf_putc(&want, ',');
				buf_append(&want, p, m);
			}
			p += n + (end ? 1 : 0);
		}
		ASSERT_EQ_STR(v.data, buf_str(&want));
		buf_free(&want);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT coalesce(extract(epoch FROM last_checkin)::bigint, 0)"
					     " FROM mosyle_devices WHERE device_key = '%s'", key),
			      d.date_last_beat);
		ASSERT_EQ_INT(e2e_db_int(db, "SELECT is_supervised::int FROM mosyle_devices WHERE device_key = '%s'", key),
			      d.is_supervised);
		e2e_db_str(db, &v, "SELECT os_version || '|' || model || '|' || total_disk::text FROM mosyle_devices WHERE device_key = '%s'", key);
		char want2[160];
		snprintf(want2, sizeof(want2), "%s|%s|%s", d.osversion, d.device_model, d.total_disk);
		/* numeric keeps the scale it was given ("256.0000000000") */
		ASSERT_EQ_STR(v.data, want2);
	}
	buf_free(&v);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_variant_rows_as_string)
{
	check_variant("rows_string", "--ios 230 --mac 101 --tvos 3 --visionos 1 --rows string", NULL,
		      230, 101, 3, 1);
}

TEST(e2e_variant_rows_absent_uses_window)
{
	check_variant("rows_absent", "--ios 730 --mac 100 --tvos 0 --visionos 5 --rows absent", NULL,
		      730, 100, 0, 5);
}

TEST(e2e_variant_end_as_devices_notfound)
{
	check_variant("end_notfound", "--ios 205 --mac 99 --tvos 100 --visionos 0 --end notfound --rows absent",
		      NULL, 205, 99, 100, 0);
}

TEST(e2e_variant_response_as_array)
{
	check_variant("resp_array", "--ios 150 --mac 20 --tvos 1 --visionos 1 --response-array", NULL,
		      150, 20, 1, 1);
}

TEST(e2e_variant_server_counts_from_zero)
{
	check_variant("zero_based", "--ios 301 --mac 1 --tvos 0 --visionos 0 --first-page 0 --rows absent",
		      "first_page = 0\n", 301, 1, 0, 0);
}

TEST(e2e_variant_page_zero_aliases_page_one)
{
	/* a server counting from 1, asked from page 0 */
	check_variant("alias_zero", "--ios 301 --mac 150 --tvos 0 --visionos 0 --rows absent",
		      "first_page = 0\n", 301, 150, 0, 0);
}

TEST(e2e_variant_page_size_honoured)
{
	check_variant("size_honoured", "--ios 250 --mac 75 --tvos 2 --visionos 0 --honour-page-size",
		      "page_size = 37\n", 250, 75, 2, 0);
}

TEST(e2e_variant_page_size_ignored_by_server)
{
	check_variant("size_ignored", "--ios 1250 --mac 3 --tvos 0 --visionos 0 --page-size 500",
		      "page_size = 100\n", 1250, 3, 0, 0);
}

TEST(e2e_os_subset)
{
	check_variant("os_subset", "--ios 50 --mac 60 --tvos 70 --visionos 80", "os = mac, tvos\n", 0,
		      60, 70, 0);
}

TEST(e2e_ignored_page_stops_with_warning)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("ignored_page");
	e2e_sim_start(&sim, "--ios 100 --mac 0 --tvos 0 --visionos 0 --ignore-page --rows absent");
	int status = e2e_sync(mosyle_config(schema, &sim, "os = ios\n"), &res);
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(status, 0);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 100);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND warnings LIKE '%%ignores the page parameter%%'"),
		      1);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_ignored_page_with_larger_total_fails)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("ignored_page_total");
	e2e_sim_start(&sim, "--ios 1000 --mac 0 --tvos 0 --visionos 0 --ignore-page");
	int status = e2e_sync(mosyle_config(schema, &sim, "os = ios\n"), &res);
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(status, 1);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'failed'"
				     " AND error LIKE '%%announced 1000 records%%'"),
		      1);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_failed_login_keeps_previous_inventory)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("failed_login");
	e2e_sim_start(&sim, "--ios 120 --mac 30 --tvos 0 --visionos 0");
	const char *cfg = mosyle_config(schema, &sim, NULL);
	ASSERT_EQ_INT(e2e_sync(cfg, &res), 0);
	e2e_result_free(&res);
	e2e_sim_stop(&sim);

	/* same port is not guaranteed: write the config again */
	e2e_sim_start(&sim, "--ios 500 --mac 30 --tvos 0 --visionos 0 --fail-login");
	cfg = mosyle_config(schema, &sim, NULL);
	ASSERT_EQ_INT(e2e_sync(cfg, &res), 1);
	e2e_sim_stop(&sim);
	ASSERT_CONTAINS(res.err.data, "login failed");
	ASSERT_CONTAINS(res.out.data, "failed");

	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 150);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT run_id) FROM mosyle_devices"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'failed'"
				     " AND error LIKE 'login failed%%Authorization header%%'"
				     " AND finished_at IS NOT NULL"),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'running'"), 0);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_second_run_keeps_first_seen)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("first_seen");
	e2e_sim_start(&sim, "--ios 40 --mac 0 --tvos 0 --visionos 0");
	const char *cfg = mosyle_config(schema, &sim, NULL);
	ASSERT_EQ_INT(e2e_sync(cfg, &res), 0);
	e2e_result_free(&res);
	PGconn *db = e2e_db(schema);
	long long first_run = e2e_db_int(db, "SELECT max(run_id) FROM sync_runs");
	PQclear(PQexec(db, "CREATE TABLE seen_before AS SELECT device_key, first_seen, last_seen FROM mosyle_devices"));
	ASSERT_EQ_INT(e2e_sync(cfg, &res), 0);
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 40);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices d JOIN seen_before b USING (device_key)"
				     " WHERE d.first_seen = b.first_seen AND d.last_seen > b.last_seen"),
		      40);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld", first_run), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 2);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_nul_in_strings_is_replaced_and_counted)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("nul");
	e2e_sim_start(&sim, "--ios 200 --mac 0 --tvos 0 --visionos 0 --nul-in-names");
	int status = e2e_sync(mosyle_config(schema, &sim, "os = ios\n"), &res);
	e2e_sim_stop(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 200);
	/* indexes 3 and 103 carry a NUL in their names */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT nul_replaced FROM sync_runs"), 2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE device_name LIKE '%%' || U&'\\FFFD' || '%%'"), 2);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE warnings LIKE '%%NUL characters replaced%%'"), 1);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_unreachable_api_fails_clearly)
{
	struct e2e_result res;
	const char *schema = e2e_schema("unreachable");
	struct e2e_sim sim = {.pid = 0};
	/* port 9 (discard) on loopback: nothing listens there */
	snprintf(sim.base_url, sizeof(sim.base_url), "http://127.0.0.1:9/v2");
	ASSERT_EQ_INT(e2e_sync(mosyle_config(schema, &sim, NULL), &res), 1);
	ASSERT_CONTAINS(res.err.data, "cannot reach http://127.0.0.1:9/v2");
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'failed' AND error LIKE 'login failed: cannot reach%%'"), 1);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_secrets_never_in_output_or_database)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("secrets");
	char pwfile[512], body[2048];
	snprintf(pwfile, sizeof(pwfile), "%s/%d-password", getenv("INVSYNC_TEST_TMP"), (int)getpid());
	FILE *f = fopen(pwfile, "w");
	fputs("Pw-Secret-4711\n", f);
	fclose(f);
	setenv("T_MOSYLE_TOKEN", "Tok-Secret-0815", 1);
	e2e_sim_start(&sim, "--ios 150 --mac 0 --tvos 0 --visionos 0 --access-token Tok-Secret-0815"
			    " --email it-admin@secret.example --password Pw-Secret-4711");
	snprintf(body, sizeof(body),
		 "[mosyle district]\nbase_url = %s\naccess_token_env = T_MOSYLE_TOKEN\n"
		 "email = it-admin@secret.example\npassword_file = %s\n",
		 sim.base_url, pwfile);
	const char *cfg = e2e_config(schema, body);
	const char *argv[] = {"sync", "-c", cfg, "--verbose", NULL};
	e2e_invsync(&res, argv);
	ASSERT_EQ_INT(res.status, 0);
	static const char *const secrets[] = {"Tok-Secret-0815", "Pw-Secret-4711",
					      "it-admin@secret.example", "eyJ"};
	for (size_t i = 0; i < 4; i++) {
		ASSERT(!strstr(buf_str(&res.out), secrets[i]));
		ASSERT(!strstr(buf_str(&res.err), secrets[i]));
	}
	e2e_result_free(&res);
	/* a refused login must not echo them either */
	snprintf(body, sizeof(body),
		 "[mosyle district]\nbase_url = %s\naccess_token_env = T_MOSYLE_TOKEN\n"
		 "email = it-admin@secret.example\npassword = Wrong-Secret-99\n",
		 sim.base_url);
	const char *argv2[] = {"sync", "-c", e2e_config(schema, body), "--verbose", NULL};
	e2e_invsync(&res, argv2);
	e2e_sim_stop(&sim);
	ASSERT_EQ_INT(res.status, 1);
	ASSERT(!strstr(buf_str(&res.err), "Wrong-Secret-99"));
	ASSERT(!strstr(buf_str(&res.err), "Tok-Secret-0815"));
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE concat_ws(' ', error, warnings, source)"
				     " ~ '(Tok-Secret|Pw-Secret|Wrong-Secret|secret\\.example|eyJ)'"),
		      0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE attrs::text ~ '(Tok-Secret|Pw-Secret|eyJ)'"), 0);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_bad_config_exits_2_naming_line)
{
	struct e2e_result res;
	const char *schema = e2e_schema("badcfg");
	const char *cfg = e2e_config(schema, "[fetch]\nconcurrency = lots\n");
	const char *argv[] = {"sync", "-c", cfg, NULL};
	e2e_invsync(&res, argv);
	ASSERT_EQ_INT(res.status, 2);
	ASSERT_CONTAINS(res.err.data, ".ini:5:");
	ASSERT_CONTAINS(res.err.data, "concurrency");
	e2e_result_free(&res);
}

TEST(e2e_cli_usage_and_version)
{
	struct e2e_result res;
	const char *help[] = {"--help", NULL};
	e2e_invsync(&res, help);
	ASSERT_EQ_INT(res.status, 0);
	ASSERT_CONTAINS(res.out.data, "sync -c FILE");
	e2e_result_free(&res);
	const char *sync_help[] = {"sync", "--help", NULL};
	e2e_invsync(&res, sync_help);
	ASSERT_EQ_INT(res.status, 0);
	ASSERT_CONTAINS(res.out.data, "--config FILE");
	e2e_result_free(&res);
	const char *version[] = {"--version", NULL};
	e2e_invsync(&res, version);
	ASSERT_EQ_INT(res.status, 0);
	ASSERT_CONTAINS(res.out.data, "invsync ");
	e2e_result_free(&res);
	const char *nocfg[] = {"sync", NULL};
	e2e_invsync(&res, nocfg);
	ASSERT_EQ_INT(res.status, 2);
	e2e_result_free(&res);
	const char *bad[] = {"frobnicate", NULL};
	e2e_invsync(&res, bad);
	ASSERT_EQ_INT(res.status, 2);
	e2e_result_free(&res);
}

TEST(e2e_run_log_times_span_the_run)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("run_times");
	/* two sequential page rounds of at least 300 ms each */
	e2e_sim_start(&sim, "--ios 150 --mac 0 --tvos 0 --visionos 0 --latency-ms 300");
	ASSERT_EQ_INT(e2e_sync(mosyle_config(schema, &sim, "os = ios\n"), &res), 0);
	e2e_sim_stop(&sim);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT (finished_at - started_at >= interval '600 ms')::int FROM sync_runs"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT (finished_at <= clock_timestamp())::int FROM sync_runs"), 1);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_connections_reused_concurrency_bounded_compression_asked)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("conn_reuse");
	/* 40 pages at 30 ms each, through at most 4 connections */
	e2e_sim_start(&sim, "--ios 2000 --mac 1000 --tvos 0 --visionos 0 --latency-ms 30");
	char body[1024];
	snprintf(body, sizeof(body),
		 "[fetch]\nconcurrency = 4\nper_host = 4\nwindow = 8\n\n"
		 "[mosyle district]\nbase_url = %s\naccess_token = " TOKEN "\nemail = " EMAIL
		 "\npassword = " PASSWORD "\nos = ios, mac\nendpoints = devices\n",
		 sim.base_url);
	int status = e2e_sync(e2e_config(schema, body), &res);
	/* first: each stats query opens a connection of its own, counted too */
	long long connections = e2e_sim_stat(&sim, "connections") - 1;
	long long requests = e2e_sim_stat(&sim, "requests");
	long long max_in_flight = e2e_sim_stat(&sim, "max_in_flight");
	long long compressed = e2e_sim_stat(&sim, "compressed");
	e2e_sim_stop(&sim);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	/* login + 20 + 10 pages + one sentinel per OS */
	ASSERT_EQ_INT(requests, 1 + 20 + 1 + 10 + 1);
	/* keep-alive: the connections are reused, never more than the limit */
	if (connections < 1 || connections > 4)
		test_fail(__FILE__, __LINE__, "%lld connections for %lld requests", connections, requests);
	/* the limit holds, and it is used */
	ASSERT(max_in_flight >= 3 && max_in_flight <= 4);
	ASSERT_EQ_INT(compressed, requests);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 3000);
	PQfinish(db);
	e2e_result_free(&res);
}
