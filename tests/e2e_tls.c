/* e2e_tls.c - invsync over HTTPS against the simulator serving a
 * certificate of a throwaway CA (tests/gen-test-ca.sh): the CA given with
 * ca_file is trusted, by host name and by IP address; without it, with an
 * unrelated CA, or with a certificate for another host name, the source
 * fails before a single request (so before any credential) is sent. */
#include "e2e.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static const char *tls_config(const char *schema, const struct e2e_sim *sim, const char *ca)
{
	const char *dir = e2e_test_ca();
	const char *slash = strrchr(dir, '/');
	char fetch[800];
	int n = snprintf(fetch, sizeof(fetch),
			 "concurrency = 8\nwindow = 4\nretries = 1\nretry_delay_ms = 20\ntimeout = 20\n");
	if (ca)
		snprintf(fetch + n, sizeof(fetch) - (size_t)n, "ca_file = %s/%s\n",
			 slash ? slash + 1 : dir, ca);
	return e2e_mosyle_config(schema, sim->base_url, fetch, NULL);
}

#define IOS 250
#define MAC 120
#define TVOS 7
#define SIM_ARGS "--ios 250 --mac 120 --tvos 7 --visionos 0 --seed 5"

/* Sync over HTTPS, the simulator serving cert and invsync reaching it as
 * host with ca trusted, and expect every device loaded. */
static void check_loads(const char *name, const char *host, const char *ca)
{
	struct e2e_sim sim = {0};
	struct e2e_result res;
	const char *schema = e2e_schema(name);

	e2e_sim_start_tls(&sim, "server", host, SIM_ARGS);
	ASSERT(strncmp(sim.base_url, "https://", 8) == 0);
	const char *cfg = tls_config(schema, &sim, ca);
	int status = e2e_sync(cfg, &res);
	long long logins = e2e_sim_stat(&sim, "logins");
	/* a clean exit: no sanitizer report from the TLS server either */
	ASSERT_EQ_INT(e2e_sim_stop_status(&sim, NULL), 0);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "invsync exited %d: %s", status, buf_str(&res.err));
	ASSERT_CONTAINS(res.out.data, "succeeded");
	ASSERT_EQ_INT(logins, 1);

	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'ios'"), IOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'mac'"), MAC);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'tvos'"), TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE os = 'visionos'"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT serial_number) FROM mosyle_devices"),
		      IOS + MAC + TVOS);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND loaded = %d AND error IS NULL", IOS + MAC + TVOS),
		      1);
	PQfinish(db);
	e2e_result_free(&res);
}

/* Sync over HTTPS where verification must fail: exit 1, the run marked
 * failed with a reason about the certificate, nothing loaded, and not one
 * request reached the simulator (the login, with its credentials, is only
 * sent once the server is verified). */
static void check_refused(const char *name, const char *cert, const char *host, const char *ca,
			  const char *reason)
{
	struct e2e_sim sim = {0};
	struct e2e_result res;
	struct buf error = BUF_INIT;
	const char *schema = e2e_schema(name);

	e2e_sim_start_tls(&sim, cert, host, SIM_ARGS);
	const char *cfg = tls_config(schema, &sim, ca);
	int status = e2e_sync(cfg, &res);
	long long requests = e2e_sim_stat(&sim, "requests");
	ASSERT_EQ_INT(e2e_sim_stop_status(&sim, NULL), 0);
	if (status != 1)
		test_fail(__FILE__, __LINE__, "invsync exited %d, expected 1: %s", status,
			  buf_str(&res.err));
	ASSERT_EQ_INT(requests, 0);
	ASSERT_CONTAINS(res.err.data, "certificate");
	/* a certificate that failed verification will fail again: no retry */
	if (strstr(buf_str(&res.err), "retrying"))
		test_fail(__FILE__, __LINE__, "a verification failure was retried: %s",
			  buf_str(&res.err));

	PGconn *db = e2e_db(schema);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs"), 1);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'failed'"
				     " AND loaded IS NULL AND finished_at IS NOT NULL"),
		      1);
	e2e_db_str(db, &error, "SELECT error FROM sync_runs");
	ASSERT_CONTAINS(error.data, "login failed");
	ASSERT_CONTAINS(error.data, "certificate");
	ASSERT_CONTAINS(error.data, reason);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), 0);
	PQfinish(db);
	buf_free(&error);
	e2e_result_free(&res);
}

TEST(e2e_tls_private_ca_file_loads_every_device)
{
	check_loads("tls_ca", "localhost", "ca.pem");
}

TEST(e2e_tls_ip_address_in_certificate_is_verified)
{
	check_loads("tls_ip", "127.0.0.1", "ca.pem");
}

TEST(e2e_tls_unknown_ca_is_refused)
{
	/* the system's CAs alone do not know the test CA */
	check_refused("tls_no_ca", "server", "localhost", NULL, "local issuer");
}

TEST(e2e_tls_other_ca_is_refused)
{
	check_refused("tls_other_ca", "server", "localhost", "other-ca.pem", "local issuer");
}

TEST(e2e_tls_wrong_host_name_is_refused)
{
	/* signed by the trusted CA, but for wrong.example only */
	check_refused("tls_wrong_host", "wrong-host", "localhost", "ca.pem", "subject name");
}
