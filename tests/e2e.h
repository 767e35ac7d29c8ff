/* e2e.h - helpers for end-to-end tests: the simulator as a child process,
 * invsync runs, and queries against the throwaway PostgreSQL cluster that
 * tests/run.sh starts (PG* environment). Every helper fails the test on an
 * unexpected error. */
#ifndef INVSYNC_E2E_H
#define INVSYNC_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "buf.h"

struct e2e_sim {
	pid_t pid;
	int port;
	char base_url[64];
	char ca_file[512];  /* HTTPS: the CA e2e_sim_stats() trusts; "" for HTTP */
	char tls_name[64];  /* HTTPS: a name the certificate is valid for */
};

/* Start invsync-sim with extra arguments (space-separated, no quoting). */
void e2e_sim_start(struct e2e_sim *sim, const char *args);

/* A throwaway CA made by tests/gen-test-ca.sh in the test's temp dir (on
 * the first call in a test): the directory, holding ca.pem, server.pem
 * (for localhost, 127.0.0.1 and ::1), wrong-host.pem (for wrong.example
 * only), their .key files, and other-ca.pem (a CA that signed nothing). */
const char *e2e_test_ca(void);
/* Start invsync-sim serving HTTPS with the certificate cert ("server" or
 * "wrong-host") of e2e_test_ca(); base_url is https://HOST:PORT/v2. */
void e2e_sim_start_tls(struct e2e_sim *sim, const char *cert, const char *host,
		       const char *args);
void e2e_sim_stop(struct e2e_sim *sim);
/* Stop it the same way and return its exit status: 0 for a clean exit
 * (a sanitizer report makes it non-zero), 128+signal if it was killed.
 * Its output is appended to log unless log is NULL. */
int e2e_sim_stop_status(struct e2e_sim *sim, struct buf *log);
/* GET /_sim/stats as text. */
void e2e_sim_stats(const struct e2e_sim *sim, struct buf *out);
/* The first counter called name in /_sim/stats ("requests", "faults",
 * "ios" for the iOS pages, ...). */
long long e2e_sim_stat(const struct e2e_sim *sim, const char *name);

/* A fresh schema name for this test ("t_<name>"), dropped first if left
 * over from an earlier run. */
const char *e2e_schema(const char *test_name);

/* Write a config file into the test's temp dir and return its path.
 * body is appended after a [database] section naming the schema. */
const char *e2e_config(const char *schema, const char *body);

struct e2e_result {
	int status;      /* exit status, or 128+signal */
	struct buf out;  /* stdout */
	struct buf err;  /* stderr */
};

/* The simulator's default credentials. */
#define E2E_TOKEN "sim-access-token"
#define E2E_EMAIL "admin@district.example"
#define E2E_PASSWORD "sim-password"

/* A config with one source, [mosyle district], on base_url with the
 * simulator's default credentials: fetch_lines go into [fetch],
 * source_lines after the credentials (either may be NULL). It loads the
 * devices endpoint only, unless source_lines name the endpoints. */
const char *e2e_mosyle_config(const char *schema, const char *base_url, const char *fetch_lines,
			      const char *source_lines);

/* invsync sync -c cfg; returns its exit status. */
int e2e_sync(const char *cfg, struct e2e_result *res);

/* Stop the simulator and fail the test unless it exited cleanly (no
 * crash, no sanitizer report). */
void e2e_sim_stop_clean(struct e2e_sim *sim);

/* After a failed run: no run is left 'running', and the inventory is
 * exactly the count devices that run prev_run loaded, which still reads
 * succeeded. */
void e2e_assert_inventory_kept(PGconn *db, long long prev_run, long long count);

/* Run invsync with arguments (NULL-terminated). */
void e2e_invsync(struct e2e_result *res, const char *const *argv);
/* Start invsync without waiting for it; its pid. It is killed if the test
 * process dies first. */
pid_t e2e_invsync_start(const char *const *argv);
/* Wait up to timeout_ms (-1: as long as it takes) for invsync started by
 * e2e_invsync_start(): true with res filled in, false if it still runs. */
bool e2e_invsync_wait_ms(pid_t pid, long timeout_ms, struct e2e_result *res);
void e2e_result_free(struct e2e_result *res);

PGconn *e2e_db(const char *schema);
long long e2e_db_int(PGconn *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run one SQL statement (printf-style); fail the test if it fails. */
void e2e_db_exec(PGconn *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The single value of a query as text ("" for NULL) in out. */
void e2e_db_str(PGconn *db, struct buf *out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
