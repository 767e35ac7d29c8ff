/* e2e_util.c - see e2e.h. */
#include "e2e.h"
#include "test.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *env_or_fail(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		test_fail(__FILE__, __LINE__, "%s is not set: run the tests with 'make test'", name);
	return v;
}

/* A path in the test's temp dir, formatted into the caller's buffer. */
static char *tmp_path(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static char *tmp_path(char *out, size_t size, const char *fmt, ...)
{
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	snprintf(out, size, "%s/%d-%s", env_or_fail("INVSYNC_TEST_TMP"), (int)getpid(), name);
	return out;
}

static void read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
}

/* Start the simulator with the arguments in tls (NULL-terminated, may be
 * NULL) and then args; base_url is scheme://host:PORT/v2. */
static void sim_start(struct e2e_sim *sim, const char *const *tls, const char *scheme,
		      const char *host, const char *args)
{
	const char *bin = env_or_fail("INVSYNC_SIM");
	static char port_file[512], log_file[512];
	tmp_path(port_file, sizeof(port_file), "sim.port");
	tmp_path(log_file, sizeof(log_file), "sim.log");
	unlink(port_file);
	char *argv[64];
	int argc = 0;
	char *copy = strdup(args ? args : "");
	argv[argc++] = (char *)bin;
	argv[argc++] = "--port-file";
	argv[argc++] = port_file;
	for (; tls && *tls && argc < 62; tls++)
		argv[argc++] = (char *)*tls;
	for (char *tok = strtok(copy, " "); tok && argc < 62; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* the simulator must not outlive a test that failed before
		 * stopping it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(log_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(bin, argv);
		_exit(127);
	}
	free(copy);
	sim->pid = pid;
	for (int i = 0; i < 500; i++) {
		struct buf b = BUF_INIT;
		read_file(port_file, &b);
		if (b.len && b.data[b.len - 1] == '\n') {
			sim->port = atoi(b.data);
			buf_free(&b);
			snprintf(sim->base_url, sizeof(sim->base_url), "%s://%s:%d/v2", scheme, host,
				 sim->port);
			return;
		}
		buf_free(&b);
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			struct buf log = BUF_INIT;
			read_file(log_file, &log);
			test_fail(__FILE__, __LINE__, "simulator exited: %s", buf_str(&log));
		}
		usleep(10000);
	}
	test_fail(__FILE__, __LINE__, "simulator did not report its port");
}

void e2e_sim_start(struct e2e_sim *sim, const char *args)
{
	sim->ca_file[0] = '\0';
	sim->tls_name[0] = '\0';
	sim_start(sim, NULL, "http", "127.0.0.1", args);
}

const char *e2e_test_ca(void)
{
	static char dir[512];
	char ca[600];
	tmp_path(dir, sizeof(dir), "tls");
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	if (access(ca, R_OK) == 0)
		return dir;
	const char *script = env_or_fail("INVSYNC_GEN_CA");
	pid_t pid = fork();
	if (pid < 0)
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		execl("/bin/sh", "sh", script, dir, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || access(ca, R_OK) != 0)
		test_fail(__FILE__, __LINE__, "%s %s failed (status %d)", script, dir, status);
	return dir;
}

void e2e_sim_start_tls(struct e2e_sim *sim, const char *cert, const char *host,
		       const char *args)
{
	const char *dir = e2e_test_ca();
	char cert_file[600], key_file[600];
	snprintf(cert_file, sizeof(cert_file), "%s/%s.pem", dir, cert);
	snprintf(key_file, sizeof(key_file), "%s/%s.key", dir, cert);
	snprintf(sim->ca_file, sizeof(sim->ca_file), "%s/ca.pem", dir);
	/* the names gen-test-ca.sh gives its certificates */
	snprintf(sim->tls_name, sizeof(sim->tls_name), "%s",
		 strcmp(cert, "wrong-host") == 0 ? "wrong.example" : "localhost");
	const char *const tls[] = {"--tls-cert", cert_file, "--tls-key", key_file, NULL};
	sim_start(sim, tls, "https", host, args);
}

void e2e_sim_stop(struct e2e_sim *sim)
{
	(void)e2e_sim_stop_status(sim, NULL);
}

int e2e_sim_stop_status(struct e2e_sim *sim, struct buf *log)
{
	if (sim->pid <= 0)
		return 0;
	kill(sim->pid, SIGTERM);
	int status = 0;
	while (waitpid(sim->pid, &status, 0) < 0 && errno == EINTR)
		;
	sim->pid = 0;
	if (log) {
		char log_file[512];
		read_file(tmp_path(log_file, sizeof(log_file), "sim.log"), log);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void e2e_sim_stats(const struct e2e_sim *sim, struct buf *out)
{
	char cmd[1024];
	if (sim->ca_file[0])
		/* verified like any HTTPS peer: the certificate's own name,
		 * resolved to the simulator's address */
		snprintf(cmd, sizeof(cmd), "curl -sS --cacert '%s' --resolve %s:%d:127.0.0.1 "
			 "https://%s:%d/_sim/stats", sim->ca_file, sim->tls_name, sim->port,
			 sim->tls_name, sim->port);
	else
		snprintf(cmd, sizeof(cmd), "curl -sS http://127.0.0.1:%d/_sim/stats", sim->port);
	FILE *p = popen(cmd, "r");
	if (!p)
		test_fail(__FILE__, __LINE__, "popen curl failed");
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_append(out, chunk, n);
	pclose(p);
}

long long e2e_sim_stat(const struct e2e_sim *sim, const char *name)
{
	struct buf stats = BUF_INIT, key = BUF_INIT;
	buf_printf(&key, "\"%s\":", name);
	e2e_sim_stats(sim, &stats);
	const char *at = strstr(buf_str(&stats), key.data);
	if (!at)
		test_fail(__FILE__, __LINE__, "no \"%s\" in the simulator's stats: %s", name,
			  buf_str(&stats));
	long long v = atoll(at + key.len);
	buf_free(&stats);
	buf_free(&key);
	return v;
}

const char *e2e_schema(const char *test_name)
{
	static char name[64];
	snprintf(name, sizeof(name), "t_%.56s", test_name);
	PGconn *db = PQconnectdb("");
	if (PQstatus(db) != CONNECTION_OK)
		test_fail(__FILE__, __LINE__, "cannot connect: %s", PQerrorMessage(db));
	char sql[128];
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", name);
	PQclear(PQexec(db, "SET client_min_messages = warning"));
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(db);
	return name;
}

const char *e2e_config(const char *schema, const char *body)
{
	/* several configs may be alive in one test */
	static char paths[8][512];
	static int slot;
	int n = slot++;
	char *path = tmp_path(paths[n % 8], sizeof(paths[0]), "%s-%d.ini", schema, n);
	FILE *f = fopen(path, "w");
	if (!f)
		test_fail(__FILE__, __LINE__, "cannot write %s", path);
	fprintf(f, "[database]\nschema = %s\n\n%s", schema, body);
	fclose(f);
	chmod(path, 0600);
	return path;
}

pid_t e2e_invsync_start(const char *const *args)
{
	const char *bin = env_or_fail("INVSYNC_BIN");
	char out_file[512], err_file[512];
	tmp_path(out_file, sizeof(out_file), "invsync.out");
	tmp_path(err_file, sizeof(err_file), "invsync.err");
	char *argv[32];
	int argc = 0;
	argv[argc++] = (char *)bin;
	for (; args && *args && argc < 31; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* invsync must not outlive a test that failed while it ran */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int o = open(out_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, 1);
		dup2(e, 2);
		execv(bin, argv);
		_exit(127);
	}
	return pid;
}

bool e2e_invsync_wait_ms(pid_t pid, long timeout_ms, struct e2e_result *res)
{
	int status = 0;
	unsigned long long deadline = util_now_ms() + (unsigned long long)(timeout_ms < 0 ? 0 : timeout_ms);
	for (;;) {
		pid_t w = waitpid(pid, &status, timeout_ms < 0 ? 0 : WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			test_fail(__FILE__, __LINE__, "waitpid: %s", strerror(errno));
		if (w == 0) {
			if (util_now_ms() >= deadline)
				return false;
			usleep(10 * 1000);
		}
	}
	char out_file[512], err_file[512];
	res->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	buf_init(&res->out);
	buf_init(&res->err);
	read_file(tmp_path(out_file, sizeof(out_file), "invsync.out"), &res->out);
	read_file(tmp_path(err_file, sizeof(err_file), "invsync.err"), &res->err);
	if (getenv("E2E_VERBOSE"))
		fprintf(stdout, "# invsync exit %d\n# stdout:\n%s\n# stderr:\n%s\n", res->status,
			buf_str(&res->out), buf_str(&res->err));
	return true;
}

void e2e_invsync(struct e2e_result *res, const char *const *args)
{
	(void)e2e_invsync_wait_ms(e2e_invsync_start(args), -1, res);
}

void e2e_result_free(struct e2e_result *res)
{
	buf_free(&res->out);
	buf_free(&res->err);
}

PGconn *e2e_db(const char *schema)
{
	PGconn *db = PQconnectdb("");
	if (PQstatus(db) != CONNECTION_OK)
		test_fail(__FILE__, __LINE__, "cannot connect: %s", PQerrorMessage(db));
	char sql[128];
	snprintf(sql, sizeof(sql), "SET search_path = %s", schema);
	PQclear(PQexec(db, sql));
	return db;
}

static PGresult *query(PGconn *db, const char *fmt, va_list ap)
{
	struct buf sql = BUF_INIT;
	buf_vprintf(&sql, fmt, ap);
	PGresult *r = PQexec(db, sql.data);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 1)
		test_fail(__FILE__, __LINE__, "query %s: %s (%d rows)", sql.data,
			  PQresultErrorMessage(r), PQntuples(r));
	buf_free(&sql);
	return r;
}

long long e2e_db_int(PGconn *db, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	PGresult *r = query(db, fmt, ap);
	va_end(ap);
	long long v = PQgetisnull(r, 0, 0) ? -1 : atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

void e2e_db_exec(PGconn *db, const char *fmt, ...)
{
	struct buf sql = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&sql, fmt, ap);
	va_end(ap);
	PGresult *r = PQexec(db, sql.data);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", sql.data, PQresultErrorMessage(r));
	PQclear(r);
	buf_free(&sql);
}

void e2e_db_str(PGconn *db, struct buf *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	PGresult *r = query(db, fmt, ap);
	va_end(ap);
	buf_reset(out);
	buf_puts(out, PQgetvalue(r, 0, 0));
	PQclear(r);
}

const char *e2e_mosyle_config(const char *schema, const char *base_url, const char *fetch_lines,
			      const char *source_lines)
{
	struct buf body = BUF_INIT;
	buf_printf(&body,
		   "[fetch]\n%s\n"
		   "[mosyle district]\nbase_url = %s\naccess_token = " E2E_TOKEN "\nemail = " E2E_EMAIL
		   "\npassword = " E2E_PASSWORD "\n%s%s",
		   fetch_lines ? fetch_lines : "", base_url, source_lines ? source_lines : "",
		   source_lines && strstr(source_lines, "endpoints") ? "" : "\nendpoints = devices\n");
	const char *path = e2e_config(schema, body.data);
	buf_free(&body);
	return path;
}

int e2e_sync(const char *cfg, struct e2e_result *res)
{
	const char *argv[] = {"sync", "-c", cfg, NULL};
	e2e_invsync(res, argv);
	return res->status;
}

void e2e_sim_stop_clean(struct e2e_sim *sim)
{
	struct buf log = BUF_INIT;
	int status = e2e_sim_stop_status(sim, &log);
	if (status != 0)
		test_fail(__FILE__, __LINE__, "the simulator exited %d: %s", status, buf_str(&log));
	buf_free(&log);
}

void e2e_assert_inventory_kept(PGconn *db, long long prev_run, long long count)
{
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'running'"), 0);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices"), count);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(DISTINCT device_key) FROM mosyle_devices"), count);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM mosyle_devices WHERE run_id = %lld",
				 prev_run),
		      count);
	ASSERT_EQ_INT(e2e_db_int(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded'"
				     " AND run_id = %lld",
				 prev_run),
		      1);
}
