/* pgsink.c - non-blocking COPY into PostgreSQL on the libuv loop (see pgsink.h). */
#include "pgsink.h"
#include "log.h"
#include "schema.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Rows are handed to libpq in batches of about this size. */
#define BATCH_BYTES (256 * 1024)

enum sink_state {
	SINK_IDLE,     /* connected, nothing in progress */
	SINK_COPYING,  /* COPY FROM STDIN accepting data */
	SINK_WAITING,  /* COPY end or query sent, waiting for results */
	SINK_FAILED,
	SINK_CLOSED,
};

struct pgsink {
	uv_loop_t *loop;
	PGconn *conn;
	uv_poll_t poll;
	bool poll_open;
	int poll_events;
	enum sink_state state;
	struct pgsink_callbacks cb;
	struct buf rows;
	bool congested;
	bool flushing_end;    /* COPY end queued behind a congested flush */
	uint64_t bytes_sent;
	pgsink_done_fn done;
	void *done_arg;
	PGresult *result;     /* the first result of the running command */
	struct buf error;
	uv_idle_t notify;     /* defers on_error out of the caller's stack */
	bool notify_open;
	bool error_pending;
};

static void poll_cb(uv_poll_t *p, int status, int events);

static void trim_nl(struct buf *b)
{
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == ' '))
		b->data[--b->len] = '\0';
}

static void set_events(struct pgsink *s, int events)
{
	if (!s->poll_open || s->poll_events == events)
		return;
	s->poll_events = events;
	if (events)
		uv_poll_start(&s->poll, events, poll_cb);
	else
		uv_poll_stop(&s->poll);
}

static void notify_cb(uv_idle_t *h)
{
	struct pgsink *s = h->data;
	uv_idle_stop(h);
	if (s->error_pending && s->state != SINK_CLOSED) {
		s->error_pending = false;
		pgsink_done_fn done = s->done;
		s->done = NULL;
		if (done)
			done(s->done_arg, NULL, buf_str(&s->error));
		else if (s->cb.on_error)
			s->cb.on_error(s->cb.arg, buf_str(&s->error));
	}
}

/* Enter the failed state; the reason is reported from the loop. */
static void fail(struct pgsink *s, const char *what, const char *detail)
{
	if (s->state == SINK_FAILED || s->state == SINK_CLOSED)
		return;
	s->state = SINK_FAILED;
	buf_reset(&s->error);
	buf_printf(&s->error, "%s: %s", what, detail && *detail ? detail : "connection lost");
	trim_nl(&s->error);
	log_redact_buf(&s->error);
	set_events(s, 0);
	s->error_pending = true;
	uv_idle_start(&s->notify, notify_cb);
}

int pgsink_open(struct pgsink **out, uv_loop_t *loop, const char *conninfo, const char *schema,
		const struct pgsink_callbacks *cb, struct buf *err)
{
	PGconn *conn = PQconnectdb(conninfo ? conninfo : "");
	if (PQstatus(conn) != CONNECTION_OK) {
		struct buf e = BUF_INIT;
		buf_puts(&e, PQerrorMessage(conn));
		trim_nl(&e);
		log_redact(err, "cannot connect to PostgreSQL: ");
		log_redact(err, e.data ? e.data : "");
		buf_free(&e);
		PQfinish(conn);
		return -1;
	}
	if (schema && schema_use(conn, schema, err) < 0) {
		PQfinish(conn);
		return -1;
	}
	struct pgsink *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->conn = conn;
	s->cb = *cb;
	s->state = SINK_IDLE;
	buf_init(&s->rows);
	buf_init(&s->error);
	uv_idle_init(loop, &s->notify);
	s->notify.data = s;
	s->notify_open = true;
	*out = s;
	return 0;
}

PGconn *pgsink_conn(struct pgsink *s)
{
	return s->conn;
}

int pgsink_exec(struct pgsink *s, const char *sql, struct buf *err)
{
	if (s->state != SINK_IDLE) {
		buf_puts(err, "database connection is busy or failed");
		return -1;
	}
	PGresult *r = PQexec(s->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		struct buf e = BUF_INIT;
		buf_puts(&e, PQresultErrorMessage(r));
		trim_nl(&e);
		log_redact(err, buf_str(&e));
		buf_free(&e);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

int pgsink_copy_begin(struct pgsink *s, const char *copy_sql, struct buf *err)
{
	if (s->state != SINK_IDLE) {
		buf_puts(err, "database connection is busy or failed");
		return -1;
	}
	PGresult *r = PQexec(s->conn, copy_sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		struct buf e = BUF_INIT;
		buf_puts(&e, PQresultErrorMessage(r));
		trim_nl(&e);
		buf_printf(err, "starting COPY: %s", buf_str(&e));
		buf_free(&e);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	if (PQsetnonblocking(s->conn, 1) != 0) {
		buf_printf(err, "cannot make the connection non-blocking: %s", PQerrorMessage(s->conn));
		return -1;
	}
	if (!s->poll_open) {
		/* the socket can change while connecting: read it now */
		int rc = uv_poll_init_socket(s->loop, &s->poll, PQsocket(s->conn));
		if (rc < 0) {
			buf_printf(err, "cannot watch the database socket: %s", uv_strerror(rc));
			return -1;
		}
		s->poll.data = s;
		s->poll_open = true;
	}
	s->state = SINK_COPYING;
	/* readable: an error the server sends mid-COPY is noticed at once */
	set_events(s, UV_READABLE);
	return 0;
}

struct buf *pgsink_buf(struct pgsink *s)
{
	return &s->rows;
}

bool pgsink_congested(const struct pgsink *s)
{
	return s->congested;
}

bool pgsink_failed(const struct pgsink *s)
{
	return s->state == SINK_FAILED;
}

uint64_t pgsink_bytes_sent(const struct pgsink *s)
{
	return s->bytes_sent;
}

/* Hand the buffered rows to libpq and try to send. Returns 0, or -1 after
 * fail(). Sets congested when libpq could not send everything. */
static int push_rows(struct pgsink *s)
{
	if (s->rows.len) {
		int rc = PQputCopyData(s->conn, s->rows.data, (int)s->rows.len);
		if (rc != 1) {
			fail(s, "loading rows", PQerrorMessage(s->conn));
			return -1;
		}
		s->bytes_sent += s->rows.len;
		buf_reset(&s->rows);
	}
	int f = PQflush(s->conn);
	if (f < 0) {
		fail(s, "sending rows", PQerrorMessage(s->conn));
		return -1;
	}
	if (f == 1) {
		s->congested = true;
		set_events(s, UV_READABLE | UV_WRITABLE);
	}
	return 0;
}

int pgsink_rows_added(struct pgsink *s)
{
	if (s->state != SINK_COPYING)
		return -1;
	if (s->rows.len < BATCH_BYTES || s->congested)
		return 0;
	return push_rows(s);
}

static void finish_command(struct pgsink *s)
{
	pgsink_done_fn done = s->done;
	void *arg = s->done_arg;
	PGresult *r = s->result;
	s->done = NULL;
	s->result = NULL;
	s->state = SINK_IDLE;
	set_events(s, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (done)
			done(arg, r, NULL);
	} else {
		struct buf e = BUF_INIT;
		log_redact(&e, r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
		trim_nl(&e);
		if (done)
			done(arg, NULL, buf_str(&e));
		buf_free(&e);
	}
	PQclear(r);
}

/* Read what the server sent; complete the running command if its results
 * are all in. */
static void consume(struct pgsink *s)
{
	if (!PQconsumeInput(s->conn)) {
		fail(s, s->state == SINK_COPYING ? "loading rows" : "waiting for the database",
		     PQerrorMessage(s->conn));
		return;
	}
	if (s->state == SINK_COPYING) {
		/* the server only talks during COPY IN to report an error */
		if (!PQisBusy(s->conn)) {
			PGresult *r = PQgetResult(s->conn);
			if (r && PQresultStatus(r) != PGRES_COPY_IN) {
				fail(s, "loading rows", PQresultErrorMessage(r));
			}
			PQclear(r);
		}
		return;
	}
	if (s->state != SINK_WAITING)
		return;
	while (!PQisBusy(s->conn)) {
		PGresult *r = PQgetResult(s->conn);
		if (!r) {
			finish_command(s);
			return;
		}
		if (!s->result || PQresultStatus(r) == PGRES_FATAL_ERROR) {
			PQclear(s->result);
			s->result = r;
		} else {
			PQclear(r);
		}
	}
}

static int send_copy_end(struct pgsink *s)
{
	int rc = PQputCopyEnd(s->conn, NULL);
	if (rc != 1) {
		fail(s, "ending COPY", PQerrorMessage(s->conn));
		return -1;
	}
	s->state = SINK_WAITING;
	int f = PQflush(s->conn);
	if (f < 0) {
		fail(s, "ending COPY", PQerrorMessage(s->conn));
		return -1;
	}
	set_events(s, f == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE);
	return 0;
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct pgsink *s = p->data;
	if (status < 0) {
		fail(s, "database socket", uv_strerror(status));
		return;
	}
	if (events & UV_READABLE) {
		consume(s);
		/* a completion callback may have closed or reused the sink */
		if (s->state != SINK_COPYING && s->state != SINK_WAITING)
			return;
	}
	if (events & UV_WRITABLE) {
		int f = PQflush(s->conn);
		if (f < 0) {
			fail(s, "sending rows", PQerrorMessage(s->conn));
			return;
		}
		if (f == 0) {
			if (s->state == SINK_COPYING) {
				set_events(s, UV_READABLE);
				if (s->flushing_end) {
					s->flushing_end = false;
					s->congested = false;
					send_copy_end(s);
					return;
				}
				if (s->congested) {
					s->congested = false;
					if (s->cb.on_drain)
						s->cb.on_drain(s->cb.arg);
				}
			} else if (s->state == SINK_WAITING) {
				set_events(s, UV_READABLE);
			}
		}
	}
}

int pgsink_copy_end(struct pgsink *s, pgsink_done_fn done, void *arg)
{
	if (s->state != SINK_COPYING)
		return -1;
	s->done = done;
	s->done_arg = arg;
	if (s->rows.len) {
		if (PQputCopyData(s->conn, s->rows.data, (int)s->rows.len) != 1) {
			fail(s, "loading rows", PQerrorMessage(s->conn));
			return 0; /* done fires with the error from the loop */
		}
		s->bytes_sent += s->rows.len;
		buf_reset(&s->rows);
	}
	int f = PQflush(s->conn);
	if (f < 0) {
		fail(s, "loading rows", PQerrorMessage(s->conn));
		return 0;
	}
	if (f == 1) {
		s->congested = true;
		s->flushing_end = true;
		set_events(s, UV_READABLE | UV_WRITABLE);
		return 0;
	}
	send_copy_end(s);
	return 0;
}

int pgsink_query(struct pgsink *s, const char *sql, int nparams, const char *const *params,
		 pgsink_done_fn done, void *arg)
{
	if (s->state != SINK_IDLE)
		return -1;
	if (!s->poll_open) {
		int rc = uv_poll_init_socket(s->loop, &s->poll, PQsocket(s->conn));
		if (rc < 0)
			return -1;
		s->poll.data = s;
		s->poll_open = true;
		PQsetnonblocking(s->conn, 1);
	}
	s->done = done;
	s->done_arg = arg;
	/* without parameters, the simple protocol: several statements may go
	 * in one round trip */
	int sent = params ? PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0)
			  : PQsendQuery(s->conn, sql);
	if (!sent) {
		fail(s, "sending a query", PQerrorMessage(s->conn));
		return 0;
	}
	s->state = SINK_WAITING;
	int f = PQflush(s->conn);
	if (f < 0) {
		fail(s, "sending a query", PQerrorMessage(s->conn));
		return 0;
	}
	set_events(s, f == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE);
	return 0;
}

static void sink_free(struct pgsink *s)
{
	PQclear(s->result);
	buf_free(&s->rows);
	buf_free(&s->error);
	free(s);
}

static void handle_closed(uv_handle_t *h)
{
	struct pgsink *s = h->data;
	if (h == (uv_handle_t *)&s->poll)
		s->poll_open = false;
	else
		s->notify_open = false;
	if (!s->poll_open && !s->notify_open)
		sink_free(s);
}

void pgsink_close(struct pgsink *s)
{
	s->state = SINK_CLOSED;
	s->done = NULL;
	/* stop watching before the socket goes away with PQfinish */
	if (s->poll_open) {
		uv_poll_stop(&s->poll);
		uv_close((uv_handle_t *)&s->poll, handle_closed);
	}
	PQfinish(s->conn);
	s->conn = NULL;
	uv_idle_stop(&s->notify);
	uv_close((uv_handle_t *)&s->notify, handle_closed);
}
