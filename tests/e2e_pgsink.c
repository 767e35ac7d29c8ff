/* e2e_pgsink.c - the COPY sink on its own, driven on a libuv loop: against
 * a small fake PostgreSQL server that fails the COPY at a moment of the
 * test's choosing, and against the throwaway cluster (a COPY of several
 * chunks). */
#include "pgsink.h"
#include "test.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a fake server: just enough of protocol 3 for one COPY ---- */

#define FAKE_ERROR "could not extend file \"base/5/16384\": No space left on device"

struct fake_pg {
	int listen_fd;
	int port;
	pthread_t thread;
	atomic_int error_sent; /* ErrorResponse sent; reading stopped */
	atomic_int resume;     /* read (and discard) the rest again */
	atomic_int start_error; /* the test says when to fail the COPY */
	bool fail_copy;
};

static int read_full(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t r = read(fd, c, n);
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static void write_full(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w <= 0)
			return;
		c += w;
		n -= (size_t)w;
	}
}

/* One message: type, length, body. */
static void put_msg(struct buf *out, char type, const void *body, size_t len)
{
	uint32_t n = htonl((uint32_t)(len + 4));
	buf_putc(out, type);
	buf_append(out, (const char *)&n, 4);
	buf_append(out, body, len);
}

static void put_param(struct buf *out, const char *name, const char *value)
{
	struct buf b = BUF_INIT;
	buf_append(&b, name, strlen(name) + 1);
	buf_append(&b, value, strlen(value) + 1);
	put_msg(out, 'S', b.data, b.len);
	buf_free(&b);
}

static void put_ready(struct buf *out, char xact)
{
	put_msg(out, 'Z', &xact, 1);
}

static void put_complete(struct buf *out, const char *tag)
{
	put_msg(out, 'C', tag, strlen(tag) + 1);
}

static void *fake_pg_main(void *arg)
{
	struct fake_pg *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	struct buf out = BUF_INIT, body = BUF_INIT;
	uint32_t n;
	/* the startup packet: its length, then what it says (ignored) */
	if (read_full(fd, &n, 4) < 0)
		goto out;
	n = ntohl(n);
	buf_reserve(&body, n);
	if (n < 8 || read_full(fd, body.data, n - 4) < 0)
		goto out;
	uint32_t ok = 0;
	put_msg(&out, 'R', &ok, 4);
	put_param(&out, "server_version", "15.0");
	put_param(&out, "client_encoding", "UTF8");
	put_param(&out, "standard_conforming_strings", "on");
	put_param(&out, "integer_datetimes", "on");
	uint32_t key[2] = {htonl(4242), htonl(1)};
	put_msg(&out, 'K', key, sizeof(key));
	put_ready(&out, 'I');
	write_full(fd, out.data, out.len);

	char xact = 'I';
	bool copying = false, failed = false, wait_for_test = false;
	for (;;) {
		char type;
		if (read_full(fd, &type, 1) < 0 || read_full(fd, &n, 4) < 0)
			break;
		n = ntohl(n) - 4;
		buf_reset(&body);
		buf_reserve(&body, n + 1);
		if (read_full(fd, body.data, n) < 0)
			break;
		body.data[n] = '\0';
		buf_reset(&out);
		if (type == 'X')
			break;
		if (type == 'Q' && strncmp(body.data, "BEGIN", 5) == 0) {
			xact = 'T';
			put_complete(&out, "BEGIN");
			put_ready(&out, xact);
		} else if (type == 'Q' && strncmp(body.data, "COPY", 4) == 0) {
			/* text format, one column */
			static const char g[] = {0, 0, 1, 0, 0};
			put_msg(&out, 'G', g, sizeof(g));
			copying = true;
			if (f->fail_copy)
				wait_for_test = true;
		} else if (type == 'Q') {
			xact = 'I';
			put_complete(&out, "ROLLBACK");
			put_ready(&out, xact);
		} else if (type == 'c' && copying && !failed) {
			put_complete(&out, "COPY 0");
			put_ready(&out, xact);
			copying = false;
		} else if (type == 'f' && copying && !failed) {
			static const char e[] = "SERROR\0VERROR\0C57014\0MCOPY from stdin failed\0";
			put_msg(&out, 'E', e, sizeof(e));
			xact = xact == 'I' ? 'I' : 'E';
			put_ready(&out, xact);
			copying = false;
		}
		/* once failed, CopyData, CopyDone and CopyFail are read and
		 * ignored, as PostgreSQL does */
		if (out.len)
			write_full(fd, out.data, out.len);

		if (wait_for_test) {
			while (!atomic_load(&f->start_error))
				usleep(1000);
			wait_for_test = false;
			/* The error a full disk raises, and ReadyForQuery right
			 * after it (PostgreSQL ends the statement at once); then
			 * read nothing until the test says so, so that the
			 * client's socket fills up with the error waiting. */
			static const char e[] = "SERROR\0VERROR\0C53100\0M" FAKE_ERROR "\0";
			buf_reset(&out);
			put_msg(&out, 'E', e, sizeof(e));
			xact = xact == 'I' ? 'I' : 'E';
			put_ready(&out, xact);
			write_full(fd, out.data, out.len);
			failed = true;
			atomic_store(&f->error_sent, 1);
			while (!atomic_load(&f->resume))
				usleep(1000);
		}
	}
out:
	close(fd);
	buf_free(&out);
	buf_free(&body);
	return NULL;
}

/* fail_copy: fail the COPY when the test says (start_error) */
static void fake_pg_start(struct fake_pg *f, bool fail_copy)
{
	memset(f, 0, sizeof(*f));
	f->fail_copy = fail_copy;
	f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT(f->listen_fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	ASSERT(bind(f->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	ASSERT(listen(f->listen_fd, 1) == 0);
	ASSERT(getsockname(f->listen_fd, (struct sockaddr *)&a, &alen) == 0);
	f->port = ntohs(a.sin_port);
	ASSERT(pthread_create(&f->thread, NULL, fake_pg_main, f) == 0);
}

static void fake_pg_stop(struct fake_pg *f)
{
	atomic_store(&f->resume, 1);
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
}

/* ---- a producer of COPY rows driven by the sink ---- */

struct producer {
	struct pgsink *sink;
	uint64_t limit;        /* COPY text to send in all, then end the COPY */
	uint64_t rows;
	bool ended;
	bool done;             /* copy_end's done fired */
	bool ok;
	uint64_t result_rows;  /* pgsink_copy_rows() in done */
	struct buf error;      /* from on_error or done */
	uint64_t sent_at_error; /* pgsink_bytes_sent() when the error came */
	bool error_seen;
};

static void produce_done(void *arg, PGresult *res, const char *error)
{
	struct producer *p = arg;
	p->done = true;
	p->ok = res != NULL;
	p->result_rows = pgsink_copy_rows(p->sink);
	if (!res && !p->error_seen) {
		p->error_seen = true;
		p->sent_at_error = pgsink_bytes_sent(p->sink);
		buf_puts(&p->error, error);
	}
}

/* Append rows "N\t<padding>" of about 1 kB until the sink is congested,
 * then wait for on_drain; end the COPY after limit bytes. */
static void produce(struct producer *p)
{
	while (!p->ended && !pgsink_congested(p->sink) && !pgsink_failed(p->sink)) {
		if (pgsink_bytes_sent(p->sink) + pgsink_buf(p->sink)->len >= p->limit) {
			p->ended = true;
			if (pgsink_copy_end(p->sink, produce_done, p) < 0)
				test_fail(__FILE__, __LINE__, "pgsink_copy_end refused");
			return;
		}
		struct buf *b = pgsink_buf(p->sink);
		buf_printf(b, "%llu\t", (unsigned long long)++p->rows);
		for (int i = 0; i < 1000; i++)
			buf_putc(b, 'a' + (char)(i % 26));
		buf_putc(b, '\n');
		if (pgsink_rows_added(p->sink) < 0)
			return;
	}
}

static void on_drain(void *arg)
{
	produce(arg);
}

static void on_error(void *arg, const char *reason)
{
	struct producer *p = arg;
	if (p->error_seen)
		return;
	p->error_seen = true;
	p->sent_at_error = pgsink_bytes_sent(p->sink);
	buf_puts(&p->error, reason);
}

static void start_cb(uv_timer_t *t)
{
	produce(t->data);
}

/* Run the loop until nothing is left to do, close the sink and the loop:
 * every handle must be closed. */
static void run_and_close(uv_loop_t *loop, struct producer *p)
{
	uv_timer_t start;
	uv_timer_init(loop, &start);
	start.data = p;
	uv_timer_start(&start, start_cb, 0, 0);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&start, NULL);
	pgsink_close(p->sink);
	uv_run(loop, UV_RUN_DEFAULT);
	ASSERT_EQ_INT(uv_loop_close(loop), 0);
}

static bool socket_readable(struct pgsink *s)
{
	struct pollfd pfd = {.fd = PQsocket(pgsink_conn(s)), .events = POLLIN};
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/* libpq reads what has arrived whenever a non-blocking send cannot send
 * everything (pqSendSome(), to avoid deadlocking against a server that is
 * itself blocked sending). During COPY IN it leaves an ErrorResponse read
 * that way in its buffer, unparsed, and nothing public shows it: the
 * socket is no longer readable. Here the error is waiting in the socket
 * when the sink fills it up; the server then discards the rest, as
 * PostgreSQL does, so every later send succeeds. The sink must report the
 * error within a chunk, not after the whole COPY. */
TEST(e2e_pgsink_error_read_while_sending_is_reported_within_a_chunk)
{
	test_set_timeout(60);
	struct fake_pg f;
	fake_pg_start(&f, true);
	char conninfo[200];
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1 port=%d user=t dbname=t sslmode=disable gssencmode=disable",
		 f.port);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct producer p = {.limit = 4 * PGSINK_CHUNK_BYTES, .error = BUF_INIT};
	struct pgsink_callbacks cb = {on_drain, on_error, &p};
	struct buf err = BUF_INIT;
	if (pgsink_open(&p.sink, &loop, conninfo, NULL, &cb, &err) < 0)
		test_fail(__FILE__, __LINE__, "pgsink_open: %s", buf_str(&err));
	if (pgsink_copy_begin(p.sink, "COPY t FROM STDIN", &err) < 0)
		test_fail(__FILE__, __LINE__, "pgsink_copy_begin: %s", buf_str(&err));

	/* the server fails the COPY; its error is in our socket */
	atomic_store(&f.start_error, 1);
	while (!atomic_load(&f.error_sent))
		usleep(1000);
	struct pollfd pfd = {.fd = PQsocket(pgsink_conn(p.sink)), .events = POLLIN};
	ASSERT_EQ_INT(poll(&pfd, 1, 10000), 1);
	/* fill the socket before the loop runs: the send that cannot finish
	 * reads the error into libpq's buffer */
	produce(&p);
	ASSERT(pgsink_congested(p.sink));
	ASSERT(!pgsink_failed(p.sink));
	ASSERT(!socket_readable(p.sink)); /* libpq holds the error now */
	uint64_t sent_before = pgsink_bytes_sent(p.sink);
	atomic_store(&f.resume, 1);

	run_and_close(&loop, &p);
	fake_pg_stop(&f);
	ASSERT(p.error_seen);
	ASSERT_CONTAINS(p.error.data, FAKE_ERROR);
	/* The error was there before sent_before bytes had been handed over;
	 * the chunk it arrived in ends after PGSINK_CHUNK_BYTES at most, plus
	 * the batch that crossed the mark. */
	fprintf(stderr, "# error reported after %llu bytes (%llu sent when it was read)\n",
		(unsigned long long)p.sent_at_error, (unsigned long long)sent_before);
	if (p.sent_at_error > PGSINK_CHUNK_BYTES + (1 << 20))
		test_fail(__FILE__, __LINE__,
			  "the error was reported after %llu bytes of COPY, more than a chunk"
			  " (%llu) after the server sent it",
			  (unsigned long long)p.sent_at_error,
			  (unsigned long long)PGSINK_CHUNK_BYTES);
	ASSERT(!p.ok);
	buf_free(&p.error);
	buf_free(&err);
}

/* ---- the throwaway cluster ---- */

static PGconn *db_connect(void)
{
	PGconn *db = PQconnectdb("");
	if (PQstatus(db) != CONNECTION_OK)
		test_fail(__FILE__, __LINE__, "connect: %s", PQerrorMessage(db));
	return db;
}

static long long db_int(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", sql, PQresultErrorMessage(r));
	long long v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static void db_exec(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		test_fail(__FILE__, __LINE__, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

/* Load limit bytes into table with the sink; the producer's outcome. */
static void load_rows(const char *table, uint64_t limit, bool end, struct producer *p)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	memset(p, 0, sizeof(*p));
	p->limit = end ? limit : UINT64_MAX;
	buf_init(&p->error);
	struct pgsink_callbacks cb = {on_drain, on_error, p};
	struct buf err = BUF_INIT;
	char sql[200];
	if (pgsink_open(&p->sink, &loop, "", NULL, &cb, &err) < 0)
		test_fail(__FILE__, __LINE__, "pgsink_open: %s", buf_str(&err));
	snprintf(sql, sizeof(sql), "COPY %s (n, pad) FROM STDIN", table);
	if (pgsink_copy_begin(p->sink, sql, &err) < 0)
		test_fail(__FILE__, __LINE__, "pgsink_copy_begin: %s", buf_str(&err));
	if (end) {
		run_and_close(&loop, p);
	} else {
		/* close the sink mid-COPY once past limit (a later chunk) */
		while (pgsink_bytes_sent(p->sink) < limit && !pgsink_failed(p->sink)) {
			produce(p);
			uv_run(&loop, UV_RUN_ONCE);
		}
		pgsink_close(p->sink);
		uv_run(&loop, UV_RUN_DEFAULT);
		ASSERT_EQ_INT(uv_loop_close(&loop), 0);
	}
	buf_free(&err);
}

/* A COPY of several chunks: every row arrives, and the count covers them
 * all, not the last chunk's. */
TEST(e2e_pgsink_copy_of_several_chunks_loads_every_row)
{
	test_set_timeout(120);
	PGconn *db = db_connect();
	char table[64], sql[300];
	snprintf(table, sizeof(table), "public.pgsink_chunks_%d", (int)getpid());
	snprintf(sql, sizeof(sql), "CREATE TABLE %s (n bigint, pad text)", table);
	db_exec(db, sql);

	struct producer p;
	load_rows(table, 2 * PGSINK_CHUNK_BYTES + PGSINK_CHUNK_BYTES / 2, true, &p);
	if (!p.ok)
		test_fail(__FILE__, __LINE__, "the COPY failed: %s", buf_str(&p.error));
	ASSERT(!p.error_seen);
	ASSERT(p.rows > 2 * PGSINK_CHUNK_BYTES / 1010);
	ASSERT_EQ_INT(p.result_rows, p.rows);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	ASSERT_EQ_INT(db_int(db, sql), p.rows);
	snprintf(sql, sizeof(sql), "SELECT count(DISTINCT n) FROM %s WHERE n BETWEEN 1 AND %llu",
		 table, (unsigned long long)p.rows);
	ASSERT_EQ_INT(db_int(db, sql), p.rows);
	buf_free(&p.error);

	snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
	db_exec(db, sql);
	PQfinish(db);
}

/* Chunks commit together: a COPY abandoned in its third chunk leaves no
 * row of the first two behind. */
TEST(e2e_pgsink_abandoned_copy_of_several_chunks_leaves_nothing)
{
	test_set_timeout(120);
	PGconn *db = db_connect();
	char table[64], sql[300];
	snprintf(table, sizeof(table), "public.pgsink_abandon_%d", (int)getpid());
	snprintf(sql, sizeof(sql), "CREATE TABLE %s (n bigint, pad text)", table);
	db_exec(db, sql);

	struct producer p;
	load_rows(table, 2 * PGSINK_CHUNK_BYTES + (4 << 20), false, &p);
	ASSERT(!p.error_seen);
	ASSERT(p.rows > 2 * PGSINK_CHUNK_BYTES / 1010);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	ASSERT_EQ_INT(db_int(db, sql), 0);
	buf_free(&p.error);

	snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
	db_exec(db, sql);
	PQfinish(db);
}
