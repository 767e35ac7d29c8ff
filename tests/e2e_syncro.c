/* e2e_syncro.c - invsync sync of Syncro sources against the simulator and a
 * real PostgreSQL: exact counts and values, paging with and without meta,
 * the rate budget (never over the limit, recovery after 429s, shared by
 * every source of an egress), authentication failures, `invsync check`, and
 * a mixed Mosyle + Syncro run in which the Syncro source gets the free
 * transfer slots first. */
#include "e2e.h"
#include "simdata.h"
#include "test.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#define KEY "sim-syncro-key"
#define KEY2 "tenant-two-key"

#define FETCH "concurrency = 16\nwindow = 4\nretries = 2\nretry_delay_ms = 20\ntimeout = 20\n"

/* [syncro NAME] on the simulator with key. */
static void syncro_section(struct buf *b, const struct e2e_sim *sim, const char *name,
			   const char *key, const char *extra)
{
	buf_printf(b, "[syncro %s]\nbase_url = http://127.0.0.1:%d/api/v1\napi_key = %s\n%s\n", name,
		   sim->port, key, extra ? extra : "");
}

static const char *syncro_config(const char *schema, const struct e2e_sim *sim,
				 const char *fetch_extra, const char *source_extra)
{
	struct buf body = BUF_INIT;
	/* tests of other things need not wait for the default budget */
	buf_printf(&body, "[fetch]\n" FETCH "%s\n",
		   fetch_extra ? fetch_extra : "syncro_requests_per_minute = 60000\n");
	syncro_section(&body, sim, "msp", KEY, source_extra);
	const char *path = e2e_config(schema, body.data);
	buf_free(&body);
	return path;
}

static void sync_ok(const char *cfg, struct e2e_result *res)
{
	int status = e2e_sync(cfg, res);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res->err));
	/* the key never shows, in any output */
	ASSERT(!strstr(buf_str(&res->out), KEY) && !strstr(buf_str(&res->err), KEY));
}

/* Values of asset i as the simulator served them (seed 7, 50 customers,
 * 2 contacts each). */
static void sim_asset(uint64_t i, struct simdata_syncro_asset *a)
{
	struct simdata_syncro_options opt = {.seed = 7, .customers = 50, .contacts_per_customer = 2};
	simdata_syncro_asset(&opt, i, a);
}

#define SIM_MSP "--seed 7 --syncro-customers 50 --syncro-contacts 2 --syncro-page-size 25"

TEST(e2e_syncro_loads_assets_customers_contacts_and_types)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("syncro_all");
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 1000 --syncro-honour-per-page");
	sync_ok(syncro_config(schema, &sim, NULL, NULL), &res);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_api_key_in_query"), 0);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_unauthorized"), 0);
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"), 1000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT asset_id) FROM syncro_assets"), 1000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_customers"), 50);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_contacts"), 100);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_asset_types"),
		      SIMDATA_SYNCRO_NASSET_TYPES);
	/* per_page=100 asked and honoured: meta planned 10 pages, plus the
	 * sentinel past the end */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT total_hint FROM sync_run_endpoints"
				     " WHERE endpoint = 'assets'"),
		      1000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT pages FROM sync_run_endpoints WHERE endpoint = 'assets'"),
		      11);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT loaded FROM sync_run_endpoints WHERE endpoint = 'assets'"),
		      1000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND kind = 'syncro' AND throttled = 0 AND loaded = %d",
				 1000 + 50 + 100 + SIMDATA_SYNCRO_NASSET_TYPES),
		      1);

	/* sampled values against the simulator's own */
	static const uint64_t sample[] = {0, 1, 2, 7, 11, 999};
	for (size_t k = 0; k < ARRAY_SIZE(sample); k++) {
		struct simdata_syncro_asset a;
		sim_asset(sample[k], &a);
		struct buf v = BUF_INIT;
		e2e_db_str(db, &v, "SELECT concat_ws('|', name, asset_type, coalesce(asset_serial, '-'),"
				   " customer_id, coalesce(contact_id::text, '-'),"
				   " created_at = '%s'::timestamptz, updated_at = '%s'::timestamptz)"
				   " FROM syncro_assets WHERE asset_id = %lld",
			   a.created_at, a.updated_at, a.id);
		struct buf want = BUF_INIT;
		char contact[24] = "-";
		if (a.has_contact)
			snprintf(contact, sizeof(contact), "%lld", a.contact_id);
		buf_printf(&want, "%s|%s|%s|%lld|%s|t|t", a.name, a.asset_type,
			   a.has_serial ? a.asset_serial : "-", a.customer_id, contact);
		ASSERT_EQ_STR(v.data, want.data);
		buf_free(&v);
		buf_free(&want);
	}
	/* properties keep keys that differ only by case */
	struct simdata_syncro_asset a2;
	sim_asset(2, &a2);
	ASSERT(a2.notes_pair);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE asset_id = %lld"
				     " AND properties ? 'Notes' AND properties ? 'notes'"
				     " AND properties->>'Notes' <> properties->>'notes'",
				 a2.id),
		      1);
	/* agent-managed assets carry the RMM inventory */
	struct simdata_syncro_asset a0;
	sim_asset(0, &a0);
	ASSERT(a0.agent_managed);
	struct buf v = BUF_INIT;
	e2e_db_str(db, &v, "SELECT properties->'kabuto_information'->'general'->>'model'"
			   " FROM syncro_assets WHERE asset_id = %lld", a0.id);
	ASSERT_EQ_STR(v.data, a0.model);
	/* the customer's name comes from the embedded customer */
	struct simdata_syncro_customer cust;
	struct simdata_syncro_options opt = {.seed = 7, .customers = 50, .contacts_per_customer = 2};
	simdata_syncro_customer(&opt, a0.customer_index, &cust);
	buf_reset(&v);
	e2e_db_str(db, &v, "SELECT customer_name FROM syncro_assets WHERE asset_id = %lld", a0.id);
	ASSERT_EQ_STR(v.data, cust.business_name);
	/* the full record is kept */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"
				     " WHERE attrs->'rmm_store' ? 'override_disable_alerts'"),
		      1000);
	buf_free(&v);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_syncro_without_meta_walks_to_the_empty_page)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("syncro_no_meta");
	/* pages of 25 whatever is asked, no meta: 12 pages, then the empty one */
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 290 --syncro-no-meta");
	sync_ok(syncro_config(schema, &sim, NULL, "endpoints = assets"), &res);
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"), 290);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_customers"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_run_endpoints WHERE endpoint = 'assets'"
				     " AND total_hint IS NULL AND loaded = 290"),
		      1);
	PQfinish(db);
	e2e_result_free(&res);
}

/* A budget equal to the server's limit is never refused. The simulator
 * counts its limit over a 3 s sliding window (1200/min = 60 per 3 s) so
 * that the test takes seconds; the budget's 5% margin covers the burst in
 * so short a window. The lower bound on the run time shows the budget
 * really held the rate down. */
TEST(e2e_syncro_budget_at_the_limit_is_never_refused)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("syncro_budget");
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 12000 --syncro-honour-per-page"
				    " --syncro-rate 1200 --syncro-window-ms 3000");
	const char *cfg = syncro_config(schema, &sim, "syncro_requests_per_minute = 1200\n"
						      "syncro_safety_margin = 5\n",
					"endpoints = assets");
	unsigned long long t0 = util_now_ms();
	sync_ok(cfg, &res);
	unsigned long long took = util_now_ms() - t0;
	long long requests = e2e_sim_stat(&sim, "syncro_requests");
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_429"), 0);
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(requests, 121); /* 120 pages and the sentinel */
	/* 2 go at once, the rest at most 1140/min */
	if (took < (unsigned long long)((requests - 2) * 60000 / 1140))
		test_fail(__FILE__, __LINE__, "%lld requests in %llu ms: faster than the budget",
			  requests, took);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"), 12000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT throttled FROM sync_runs"), 0);
	PQfinish(db);
	e2e_result_free(&res);
}

/* A budget far above the server's limit earns 429s: each one blocks the
 * egress for Retry-After (or syncro_backoff) and slows the budget down;
 * the refused pages are fetched again and nothing is lost or doubled. */
static void check_recovery(const char *name, const char *sim_extra, const char *fetch_extra)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema(name);
	char args[256];
	snprintf(args, sizeof(args), SIM_MSP " --syncro-assets 3000 --syncro-honour-per-page"
					     " --syncro-rate 600 --syncro-window-ms 1000 %s",
		 sim_extra);
	e2e_sim_start(&sim, args);
	sync_ok(syncro_config(schema, &sim, fetch_extra, "endpoints = assets, customers"), &res);
	long long refused = e2e_sim_stat(&sim, "syncro_429");
	e2e_sim_stop_clean(&sim);
	ASSERT(refused > 0);
	ASSERT_CONTAINS(res.err.data, "rate limited (HTTP 429");
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"), 3000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT asset_id) FROM syncro_assets"), 3000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_customers"), 50);
	/* every refusal is counted in the run log */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT throttled FROM sync_runs WHERE status = 'succeeded'"),
		      refused);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT sum(throttled) FROM sync_run_endpoints"), refused);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_syncro_429_with_retry_after_recovers_nothing_lost)
{
	check_recovery("syncro_429_ra", "--syncro-retry-after 1",
		       "syncro_requests_per_minute = 1200\n");
}

TEST(e2e_syncro_429_without_retry_after_backs_off_nothing_lost)
{
	check_recovery("syncro_429", "", "syncro_requests_per_minute = 1200\nsyncro_backoff = 1\n");
}

/* Two tenants behind one egress share one budget: together they stay
 * within the limit. Given separate egress budgets, the same two tenants
 * go over it (the control that shows the sharing is what keeps them
 * under). */
static long long two_tenants(const char *name, const char *egress_a, const char *egress_b)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema(name);
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 4000 --syncro-honour-per-page"
				    " --syncro-rate 1200 --syncro-window-ms 3000 --syncro-api-key " KEY
				    " --syncro-api-key " KEY2);
	struct buf body = BUF_INIT;
	buf_printf(&body, "[fetch]\n" FETCH "syncro_requests_per_minute = 1200\n"
			  "syncro_safety_margin = 5\nsyncro_backoff = 1\n");
	syncro_section(&body, &sim, "tenant-a", KEY, egress_a);
	syncro_section(&body, &sim, "tenant-b", KEY2, egress_b);
	sync_ok(e2e_config(schema, body.data), &res);
	buf_free(&body);
	long long refused = e2e_sim_stat(&sim, "syncro_429");
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE source = 'tenant-a'"),
		      4000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE source = 'tenant-b'"),
		      4000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 2);
	PQfinish(db);
	e2e_result_free(&res);
	return refused;
}

TEST(e2e_syncro_two_tenants_share_one_budget)
{
	ASSERT_EQ_INT(two_tenants("syncro_shared", "endpoints = assets\n",
				  "endpoints = assets\n"),
		      0);
	ASSERT(two_tenants("syncro_unshared", "endpoints = assets\negress = a\n",
			   "endpoints = assets\negress = b\n") > 0);
}

/* A rate-limited source gets the free transfer slots before an unlimited
 * one: a Syncro token not spent now is lost to the budget, while a Mosyle
 * page only waits a moment. With one slot, pages go one at a time, so the
 * order in which they end (the page events of a JSON log at --verbose) is
 * the order in which the slot was given: once the Syncro source has
 * started, no page of the district (listed first in the configuration)
 * may end until Syncro's last one has. Nothing here depends on timing:
 * the Syncro budget always holds a token (a burst of 2, refilled at about
 * 10 a millisecond, and each request lasts at least the simulator's 5 ms
 * latency), and the district has more pages than Syncro, so from its
 * login on both sources have a page to start at every choice. Giving the
 * slot to each source in turn, or in configuration order, puts district
 * pages between Syncro's. */
TEST(e2e_syncro_pages_take_free_slots_before_mosyle_pages)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("syncro_slots_first");
	/* 61 district pages (60 and the sentinel), 31 Syncro pages */
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 750 --ios 6000 --mac 0 --tvos 0 --visionos 0"
				    " --latency-ms 5");
	struct buf body = BUF_INIT;
	buf_printf(&body, "[fetch]\nconcurrency = 1\nwindow = 4\nretries = 2\nretry_delay_ms = 20\n"
			  "timeout = 20\nsyncro_requests_per_minute = 600000\n\n"
			  "[mosyle district]\nbase_url = %s\naccess_token = " E2E_TOKEN
			  "\nemail = " E2E_EMAIL "\npassword = " E2E_PASSWORD
			  "\nendpoints = devices\nos = ios\n\n",
		   sim.base_url);
	syncro_section(&body, &sim, "msp", KEY, "endpoints = assets");
	const char *argv[] = {"sync", "-c", e2e_config(schema, body.data), "--verbose",
			      "--log-format", "json", NULL};
	e2e_invsync(&res, argv);
	buf_free(&body);
	e2e_sim_stop_clean(&sim);
	if (res.status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", res.status, buf_str(&res.err));

	/* the run as a string: L the district's login, m a district page
	 * ended, s a Syncro page ended */
	struct buf seq = BUF_INIT;
	char *save = NULL;
	for (char *line = strtok_r(res.err.data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char why[128];
		yajl_val v = yajl_tree_parse(line, why, sizeof(why));
		if (!v || !YAJL_IS_OBJECT(v))
			test_fail(__FILE__, __LINE__, "not a JSON object: %s (%s)", line, why);
		const char *source_path[] = {"source", NULL}, *event_path[] = {"event", NULL};
		yajl_val sv = yajl_tree_get(v, source_path, yajl_t_string);
		yajl_val ev = yajl_tree_get(v, event_path, yajl_t_string);
		const char *source = sv ? YAJL_GET_STRING(sv) : "";
		const char *event = ev ? YAJL_GET_STRING(ev) : "";
		if (strcmp(source, "district") == 0 && strcmp(event, "login") == 0)
			buf_putc(&seq, 'L');
		else if (strcmp(event, "page") == 0)
			buf_putc(&seq, strcmp(source, "msp") == 0 ? 's' : 'm');
		yajl_tree_free(v);
	}
	const char *s = buf_str(&seq);
	const char *login = strchr(s, 'L'), *first_s = strchr(s, 's'), *last_s = strrchr(s, 's');
	long mosyle = 0, syncro = 0, between = 0, after_login = 0;
	for (const char *p = s; *p; p++) {
		mosyle += *p == 'm';
		syncro += *p == 's';
		between += *p == 'm' && first_s && p > first_s && p < last_s;
		after_login += *p == 's' && login && p > login;
	}
	ASSERT_EQ_INT(mosyle, 61);
	ASSERT_EQ_INT(syncro, 31);
	/* at least two Syncro pages ended after the district's login: the
	 * slot the first of them freed had both sources to choose from, so
	 * the order below was a choice, not the district's absence */
	if (after_login < 2)
		test_fail(__FILE__, __LINE__, "the district logged in too late to compete: %s", s);
	/* no district page took the slot while Syncro had one to start */
	if (between != 0)
		test_fail(__FILE__, __LINE__, "%ld district pages between the first and the last"
			  " Syncro page: %s", between, s);

	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"), 750);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 6000);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"), 2);
	PQfinish(db);
	buf_free(&seq);
	e2e_result_free(&res);
}

TEST(e2e_syncro_expired_key_fails_only_its_own_source)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("syncro_expired");
	struct buf body = BUF_INIT;
	/* first both keys work */
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 300 --syncro-api-key " KEY
				    " --syncro-api-key " KEY2);
	buf_printf(&body, "[fetch]\n" FETCH "syncro_requests_per_minute = 60000\n");
	syncro_section(&body, &sim, "tenant-a", KEY, NULL);
	syncro_section(&body, &sim, "tenant-b", KEY2, NULL);
	const char *cfg = e2e_config(schema, body.data);
	sync_ok(cfg, &res);
	e2e_sim_stop_clean(&sim);
	e2e_result_free(&res);
	PGconn *db = e2e_db(schema);
	long long run1 = e2e_db_int(db, "SELECT max(run_id) FROM sync_runs");

	/* then tenant b's key expires */
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 320 --syncro-api-key " KEY
				    " --syncro-expired-key " KEY2);
	buf_reset(&body);
	buf_printf(&body, "[fetch]\n" FETCH "syncro_requests_per_minute = 60000\n");
	syncro_section(&body, &sim, "tenant-a", KEY, NULL);
	/* assets only, so that the refusal is the assets list's */
	syncro_section(&body, &sim, "tenant-b", KEY2, "endpoints = assets");
	ASSERT_EQ_INT(e2e_sync(e2e_config(schema, body.data), &res), 1);
	e2e_sim_stop_clean(&sim);
	ASSERT(!strstr(res.err.data, KEY2) && !strstr(res.out.data, KEY2));
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs WHERE source = 'tenant-b' AND run_id > %lld",
		   run1);
	ASSERT_CONTAINS(err.data, "Syncro refused the API key (HTTP 401): Not authorized.");
	ASSERT_CONTAINS(err.data, "expired");
	ASSERT_CONTAINS(err.data, "\"Assets - List/Search\"");
	ASSERT(!strstr(err.data, KEY2));
	buf_free(&err);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE run_id > %lld"
				     " AND source = 'tenant-a' AND status = 'succeeded'",
				 run1),
		      1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE source = 'tenant-a'"),
		      320);
	/* tenant b keeps what its last good run loaded */
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets WHERE source = 'tenant-b'"
				     " AND run_id = %lld",
				 run1),
		      300);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_customers WHERE source = 'tenant-b'"
				     " AND run_id = %lld",
				 run1),
		      50);
	buf_free(&body);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_syncro_missing_permission_names_it)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("syncro_permission");
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 100 --syncro-no-asset-permission");
	ASSERT_EQ_INT(e2e_sync(syncro_config(schema, &sim, NULL, NULL), &res), 1);
	e2e_sim_stop_clean(&sim);
	PGconn *db = e2e_db(schema);
	struct buf err = BUF_INIT;
	e2e_db_str(db, &err, "SELECT error FROM sync_runs");
	ASSERT_CONTAINS(err.data, "Syncro refused the API key (HTTP 401): Not authorized");
	ASSERT_CONTAINS(err.data, "listing assets needs the token permission \"Assets - List/Search\"");
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_assets"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM syncro_customers"), 0);
	buf_free(&err);
	PQfinish(db);
	e2e_result_free(&res);
}

TEST(e2e_check_reports_every_source_and_loads_nothing)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("check");
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 10 --syncro-api-key " KEY
				    " --syncro-expired-key " KEY2);
	struct buf body = BUF_INIT;
	buf_printf(&body, "[mosyle district]\nbase_url = %s\naccess_token = " E2E_TOKEN
			  "\nemail = " E2E_EMAIL "\npassword = " E2E_PASSWORD "\n\n"
			  "[mosyle wrong-password]\nbase_url = %s\naccess_token = " E2E_TOKEN
			  "\nemail = " E2E_EMAIL "\npassword = not-the-password\n\n",
		   sim.base_url, sim.base_url);
	syncro_section(&body, &sim, "good-msp", KEY, NULL);
	syncro_section(&body, &sim, "expired-msp", KEY2, NULL);
	const char *argv[] = {"check", "-c", e2e_config(schema, body.data), NULL};
	e2e_invsync(&res, argv);
	ASSERT_EQ_INT(e2e_sim_stat(&sim, "syncro_requests"), 2);
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(res.status, 1);
	ASSERT_CONTAINS(res.out.data, "database: OK");
	ASSERT_CONTAINS(res.out.data, "district: OK (Mosyle login accepted)");
	ASSERT_CONTAINS(res.out.data, "wrong-password: FAILED: Mosyle answered HTTP");
	ASSERT_CONTAINS(res.out.data, "good-msp: OK (Syncro API key accepted");
	ASSERT_CONTAINS(res.out.data, "expired-msp: FAILED: Syncro answered HTTP 401 to GET /me:"
				      " Not authorized.");
	ASSERT(!strstr(res.out.data, KEY) && !strstr(res.out.data, KEY2) &&
	       !strstr(res.out.data, "not-the-password"));
	e2e_result_free(&res);
	/* nothing was created, let alone loaded */
	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'", schema),
		      0);
	PQfinish(db);

	/* all good: exit 0 */
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 10 --syncro-no-asset-permission");
	buf_reset(&body);
	syncro_section(&body, &sim, "msp", KEY, NULL);
	argv[2] = e2e_config(schema, body.data);
	e2e_invsync(&res, argv);
	e2e_sim_stop_clean(&sim);
	/* /me lists the token's permissions: the missing one is named */
	ASSERT_EQ_INT(res.status, 1);
	ASSERT_CONTAINS(res.out.data, "msp: FAILED: the API token lacks the permission"
				      " \"Assets - List/Search\" (for assets)");
	e2e_result_free(&res);
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 10");
	buf_reset(&body);
	syncro_section(&body, &sim, "msp", KEY, NULL);
	argv[2] = e2e_config(schema, body.data);
	e2e_invsync(&res, argv);
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(res.status, 0);
	ASSERT_CONTAINS(res.out.data, "msp: OK (Syncro API key accepted, permissions present)");
	buf_free(&body);
	e2e_result_free(&res);
}

/* invsync check -c cfg into res; fails the test unless it exits status,
 * and whatever it exits, if the Syncro key or a Mosyle secret (password,
 * access token) shows in its output. */
static void check_exits(const char *cfg, int status, struct e2e_result *res)
{
	const char *argv[] = {"check", "-c", cfg, NULL};
	e2e_invsync(res, argv);
	if (res->status != status)
		test_fail(__FILE__, __LINE__, "invsync check exited %d, not %d: %s%s", res->status,
			  status, buf_str(&res->out), buf_str(&res->err));
	static const char *const secrets[] = {KEY, E2E_PASSWORD, E2E_TOKEN};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		ASSERT(!strstr(buf_str(&res->out), secrets[i]) &&
		       !strstr(buf_str(&res->err), secrets[i]));
}

/* Syncro refuses the check's GET /me with 429 and "Retry-After: 1", then
 * answers it: check waits as asked and asks again, as a run would, rather
 * than report a good key as failed. */
TEST(e2e_check_waits_out_a_429_on_me)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("check_429");
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 10 --fault syncro-me:1:429ra");
	check_exits(syncro_config(schema, &sim, NULL, NULL), 0, &res);
	long long requests = e2e_sim_stat(&sim, "syncro_requests");
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	/* the refused request and the one after the wait, nothing more */
	ASSERT_EQ_INT(requests, 2);
	ASSERT_EQ_INT(faults, 1);
	ASSERT_CONTAINS(res.out.data, "msp: OK (Syncro API key accepted, permissions present)");
	ASSERT_CONTAINS(res.err.data, "GET /me: rate limited (HTTP 429, Retry-After)");
	e2e_result_free(&res);
}

/* Syncro refuses every GET /me with 429 and no Retry-After: check waits
 * syncro_backoff between attempts, gives up after 1 + retries of them
 * (retries = 2 here) and says so, naming the source. */
TEST(e2e_check_gives_up_after_bounded_429s)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("check_429_always");
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 10 --fault syncro-me:1:429:0");
	check_exits(syncro_config(schema, &sim, "syncro_requests_per_minute = 60000\n"
						"syncro_backoff = 1\n", NULL),
		    1, &res);
	long long requests = e2e_sim_stat(&sim, "syncro_requests");
	long long faults = e2e_sim_stat(&sim, "faults");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(requests, 3);
	ASSERT_EQ_INT(faults, 3);
	ASSERT_CONTAINS(res.out.data, "database: OK");
	ASSERT_CONTAINS(res.out.data, "msp: FAILED: rate limited: Syncro answered HTTP 429 to"
				      " GET /me on all 3 attempts");
	ASSERT_CONTAINS(res.err.data, "GET /me: rate limited (HTTP 429)");
	e2e_result_free(&res);
}

/* Syncro answers GET /me with 502 twice (a gateway's page): check asks
 * again after retry_delay_ms, doubled, and the good key passes; a 5xx is
 * not the rate limit, so the egress does not wait syncro_backoff. */
TEST(e2e_check_retries_me_after_a_server_error)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("check_me_502");
	e2e_sim_start(&sim, SIM_MSP " --syncro-assets 10 --fault syncro-me:1:502:2");
	check_exits(syncro_config(schema, &sim, "syncro_backoff = 600\n",
				  NULL),
		    0, &res);
	long long requests = e2e_sim_stat(&sim, "syncro_requests");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(requests, 3);
	ASSERT_CONTAINS(res.out.data, "msp: OK (Syncro API key accepted, permissions present)");
	ASSERT_CONTAINS(res.err.data, "GET /me attempt 2 of 3 failed (HTTP 502); retrying in 40 ms");
	e2e_result_free(&res);
}

/* Mosyle answers the check's first login with 503: check tries again
 * after retry_delay_ms, as a run would, and the good credentials pass. */
TEST(e2e_check_retries_a_mosyle_login_that_failed_on_the_server)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("check_login_503");
	e2e_sim_start(&sim, "--ios 10 --mac 0 --tvos 0 --visionos 0 --fault login:1:503");
	check_exits(e2e_mosyle_config(schema, sim.base_url, "retry_delay_ms = 20\n", NULL), 0,
		    &res);
	long long logins = e2e_sim_stat(&sim, "login");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(logins, 2);
	ASSERT_CONTAINS(res.out.data, "district: OK (Mosyle login accepted)");
	ASSERT_CONTAINS(res.err.data, "login attempt 1 of 3 failed (HTTP 503); retrying in 20 ms");
	e2e_result_free(&res);
}

/* Mosyle refuses every login with 429: check gives up after 3 attempts
 * even when retries allows more, and blames the server, not the
 * credentials. */
TEST(e2e_check_gives_up_on_a_throttled_mosyle_login)
{
	struct e2e_sim sim;
	struct e2e_result res;
	const char *schema = e2e_schema("check_login_429");
	e2e_sim_start(&sim, "--ios 10 --mac 0 --tvos 0 --visionos 0 --fault login:1:429:0");
	check_exits(e2e_mosyle_config(schema, sim.base_url, "retries = 5\nretry_delay_ms = 20\n",
				      NULL),
		    1, &res);
	long long logins = e2e_sim_stat(&sim, "login");
	e2e_sim_stop_clean(&sim);
	ASSERT_EQ_INT(logins, 3);
	ASSERT_CONTAINS(res.out.data, "district: FAILED: Mosyle answered HTTP 429 to the login on all"
				      " 3 attempts; try again later");
	ASSERT_CONTAINS(res.err.data, "login attempt 2 of 3 failed (HTTP 429); retrying in 40 ms");
	e2e_result_free(&res);
}
