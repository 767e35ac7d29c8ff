/* pgsink.c - non-blocking COPY into PostgreSQL on the libuv loop (see pgsink.h). */
#include "pgsink.h"
#include "log.h"
#include "schema.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Rows are handed to libpq in batches of about this size. */
#define BATCH_BYTES (256 * 1024)
/* A longer DETAIL (a failing row, quoted whole) is left out of messages. */
#define DETAIL_MAX 200

enum sink_state {
	SINK_IDLE,     /* connected, nothing in progress */
	SINK_COPYING,  /* COPY FROM STDIN accepting data */
	SINK_WAITING,  /* COPY end or query sent, waiting for results */
	SINK_FAILED,
	SINK_CLOSED,
};

/* What SINK_WAITING waits for. */
enum sink_wait {
	WAIT_QUERY,    /* a query's results */
	WAIT_CHUNK,    /* a chunk's COPY end: its verdict and row count */
	WAIT_COPY,     /* the next chunk's COPY to start */
	WAIT_COMMIT,   /* the commit of the sink's own transaction */
};

struct pgsink {
	uv_loop_t *loop;
	PGconn *conn;
	uv_poll_t poll;
	bool poll_open;
	int poll_events;
	enum sink_state state;
	enum sink_wait wait;
	struct pgsink_callbacks cb;
	struct buf rows;
	bool congested;
	bool flushing_end;    /* COPY end queued behind a congested flush */
	uint64_t bytes_sent;
	char *copy_sql;       /* the COPY statement, run again for each chunk */
	bool own_xact;        /* the sink began the transaction the chunks share */
	uint64_t chunk_bytes; /* handed to libpq since the chunk's COPY began */
	uint64_t copy_rows;   /* rows of the COPY's chunks ended so far */
	PGresult *copy_result; /* the last chunk's result, while committing */
	pgsink_done_fn done;
	void *done_arg;
	PGresult *result;     /* the first result of the running command */
	struct buf error;
	char sqlstate[6];     /* of the last error the server reported */
	unsigned long notices; /* notices and warnings the server sent */
	bool copy_aborted;    /* COPY ended to read the error the server sent */
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

/* The first line of a libpq message, without a "FATAL:  " style prefix
 * (the rest is libpq's advice to programmers). */
static void first_line(struct buf *out, const char *msg)
{
	static const char *const prefixes[] = {"FATAL:  ", "ERROR:  ", "PANIC:  "};
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
			msg += strlen(prefixes[i]);
	size_t n = strcspn(msg, "\n");
	buf_append(out, msg, n ? n : strlen(msg));
	trim_nl(out);
}

static void add_sentence(struct buf *out, const char *s)
{
	if (out->len && out->data[out->len - 1] != '.')
		buf_putc(out, '.');
	buf_printf(out, " %s", s);
}

void pgsink_describe_error(struct buf *out, const PGresult *res)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (!primary) { /* an error of libpq's own */
		first_line(out, PQresultErrorMessage(res));
		return;
	}
	buf_puts(out, primary);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	if (detail && strlen(detail) <= DETAIL_MAX)
		add_sentence(out, detail);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	if (hint)
		add_sentence(out, hint);
	trim_nl(out);
}

static void close_poll(struct pgsink *s);

static void set_events(struct pgsink *s, int events)
{
	if (!s->poll_open || uv_is_closing((uv_handle_t *)&s->poll) || s->poll_events == events)
		return;
	s->poll_events = events;
	if (events)
		uv_poll_start(&s->poll, events, poll_cb);
	else
		uv_poll_stop(&s->poll);
}

static void collect_results(struct pgsink *s);

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
	} else if (s->state == SINK_WAITING) {
		/* libpq may hold the whole answer already (read while sending):
		 * then the socket will not become readable again */
		collect_results(s);
	}
}

static void notice_cb(void *arg, const PGresult *res)
{
	struct pgsink *s = arg;
	struct buf msg = BUF_INIT;
	s->notices++;
	pgsink_describe_error(&msg, res);
	log_warn(NULL, "PostgreSQL: %s", buf_str(&msg));
	buf_free(&msg);
}

/* "the database ended the connection: " when r is why the session ended. */
static void ended_prefix(struct buf *out, const PGconn *conn, const PGresult *r)
{
	const char *severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	if (PQstatus(conn) == CONNECTION_BAD ||
	    (severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0)))
		buf_puts(out, "the database ended the connection: ");
}

/* Enter the failed state with reason (redacted here); it is reported from
 * the loop. */
static void fail(struct pgsink *s, const char *reason)
{
	if (s->state == SINK_FAILED || s->state == SINK_CLOSED)
		return;
	s->state = SINK_FAILED;
	s->congested = true; /* producers hold off until on_error */
	buf_reset(&s->error);
	log_redact(&s->error, reason);
	trim_nl(&s->error);
	if (PQsocket(s->conn) < 0)
		close_poll(s); /* before the descriptor number is reused */
	else
		set_events(s, 0);
	s->error_pending = true;
	uv_idle_start(&s->notify, notify_cb);
}

/* libpq's message msg about a lost connection, for a person. It starts
 * with the server's own words when the server closed the session. */
static void lost_text(struct buf *out, const char *msg)
{
	bool said = strncmp(msg, "FATAL:  ", 8) == 0 || strncmp(msg, "PANIC:  ", 8) == 0;
	buf_puts(out, said ? "the database ended the connection: "
			   : "lost the connection to the database: ");
	first_line(out, msg);
}

/* Why the connection is gone, into out. The server usually says why before
 * it closes a session ("terminating connection due to administrator
 * command"); during COPY IN libpq leaves that message unread until the
 * COPY ends, so end it (nothing can be sent any more anyway). */
static void lost_reason(struct pgsink *s, struct buf *out)
{
	bool found = false;
	s->sqlstate[0] = '\0';
	if (s->state == SINK_COPYING)
		(void)PQputCopyEnd(s->conn, NULL);
	if (s->result && PQresultErrorField(s->result, PG_DIAG_MESSAGE_PRIMARY)) {
		/* read already, before the end of file */
		buf_puts(out, "the database ended the connection: ");
		pgsink_describe_error(out, s->result);
		found = true;
	}
	PGresult *r;
	/* the socket is closed: these calls return at once */
	for (int i = 0; i < 4 && (r = PQgetResult(s->conn)) != NULL; i++) {
		if (!found && PQresultStatus(r) == PGRES_FATAL_ERROR) {
			found = true;
			if (PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)) {
				buf_puts(out, "the database ended the connection: ");
				pgsink_describe_error(out, r);
			} else {
				lost_text(out, PQresultErrorMessage(r));
			}
		}
		PQclear(r);
	}
	if (!found)
		lost_text(out, PQerrorMessage(s->conn));
}

/* A libpq call about `what` failed: fail with the best reason there is. */
static void fail_call(struct pgsink *s, const char *what)
{
	struct buf reason = BUF_INIT;
	if (PQstatus(s->conn) == CONNECTION_BAD) {
		lost_reason(s, &reason);
	} else {
		buf_printf(&reason, "%s: ", what);
		first_line(&reason, PQerrorMessage(s->conn));
	}
	fail(s, reason.data);
	buf_free(&reason);
}

/* libpq closes the socket when it finds the connection lost, even inside
 * calls that report success (a send that failed is kept quiet until the
 * server's answer is read). Check after every call that may have done it. */
static bool dropped(struct pgsink *s)
{
	if (PQstatus(s->conn) != CONNECTION_BAD)
		return false;
	fail_call(s, "database connection");
	return true;
}

int pgsink_connect(PGconn **out, const char *conninfo, struct buf *err)
{
	/* dbname first: its value is expanded as a whole conninfo string or
	 * URI, and the keys after it override what it says. invsync sends
	 * UTF-8 whatever the user's settings: the server converts, or refuses
	 * what the database's encoding cannot store. */
	static const char *const keys[] = {"dbname", "fallback_application_name",
					   "client_encoding", NULL};
	const char *values[] = {conninfo ? conninfo : "", "invsync", "UTF8", NULL};
	PGconn *conn = PQconnectdbParams(keys, values, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		struct buf e = BUF_INIT;
		first_line(&e, PQerrorMessage(conn));
		log_redact(err, "cannot connect to PostgreSQL: ");
		log_redact(err, buf_str(&e));
		buf_free(&e);
		PQfinish(conn);
		*out = NULL;
		return -1;
	}
	*out = conn;
	return 0;
}

int pgsink_open(struct pgsink **out, uv_loop_t *loop, const char *conninfo, const char *schema,
		const struct pgsink_callbacks *cb, struct buf *err)
{
	PGconn *conn;
	if (pgsink_connect(&conn, conninfo, err) < 0)
		return -1;
	if (schema && schema_use(conn, schema, err) < 0) {
		PQfinish(conn);
		return -1;
	}
	struct pgsink *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->conn = conn;
	/* counted: during COPY IN anything else the server sends is an error */
	PQsetNoticeReceiver(conn, notice_cb, s);
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
		pgsink_describe_error(&e, r);
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
	/* The COPY is loaded in chunks (see end_chunk()): outside a
	 * transaction each chunk would commit on its own, and a load that
	 * fails halfway would leave its first chunks behind. */
	s->own_xact = PQtransactionStatus(s->conn) == PQTRANS_IDLE;
	if (s->own_xact && pgsink_exec(s, "BEGIN", err) < 0) {
		s->own_xact = false;
		return -1;
	}
	PGresult *r = PQexec(s->conn, copy_sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		struct buf e = BUF_INIT;
		pgsink_describe_error(&e, r);
		log_redact(err, "starting COPY: ");
		log_redact(err, buf_str(&e));
		buf_free(&e);
		PQclear(r);
		if (s->own_xact)
			PQclear(PQexec(s->conn, "ROLLBACK"));
		s->own_xact = false;
		return -1;
	}
	PQclear(r);
	free(s->copy_sql);
	s->copy_sql = xstrdup(copy_sql);
	s->chunk_bytes = 0;
	s->copy_rows = 0;
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

const char *pgsink_sqlstate(const struct pgsink *s)
{
	return s->sqlstate;
}

uint64_t pgsink_bytes_sent(const struct pgsink *s)
{
	return s->bytes_sent;
}

static int send_copy_end(struct pgsink *s, const char *errormsg);

/* Hand the buffered rows to libpq and try to send. Returns 0, or -1 after
 * fail(). Sets congested when libpq could not send everything, and ends
 * the chunk once it is big enough. */
static int push_rows(struct pgsink *s)
{
	if (s->rows.len) {
		int rc = PQputCopyData(s->conn, s->rows.data, (int)s->rows.len);
		if (rc != 1) {
			fail_call(s, "loading rows");
			return -1;
		}
		s->bytes_sent += s->rows.len;
		s->chunk_bytes += s->rows.len;
		buf_reset(&s->rows);
	}
	int f = PQflush(s->conn);
	if (f < 0) {
		fail_call(s, "sending rows");
		return -1;
	}
	if (dropped(s))
		return -1;
	if (s->chunk_bytes >= PGSINK_CHUNK_BYTES) {
		/* producers hold off until the next chunk's COPY has begun */
		s->congested = true;
		if (f == 0)
			return send_copy_end(s, NULL);
		s->flushing_end = true;
		set_events(s, UV_READABLE | UV_WRITABLE);
		return 0;
	}
	if (f == 1) {
		s->congested = true;
		set_events(s, UV_READABLE | UV_WRITABLE);
	}
	return 0;
}

int pgsink_rows_added(struct pgsink *s)
{
	/* while one chunk ends and the next begins, rows wait in the buffer */
	if (s->state == SINK_WAITING && (s->wait == WAIT_CHUNK || s->wait == WAIT_COPY))
		return 0;
	if (s->state != SINK_COPYING)
		return -1;
	if (s->rows.len < BATCH_BYTES || s->congested)
		return 0;
	return push_rows(s);
}

/* The server's error in r (NULL: libpq's last one) for a person, into out;
 * records its SQLSTATE. */
static void command_error(struct pgsink *s, const PGresult *r, struct buf *out)
{
	struct buf reason = BUF_INIT;
	const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", code ? code : "");
	if (r && PQresultStatus(r) == PGRES_FATAL_ERROR) {
		ended_prefix(&reason, s->conn, r);
		pgsink_describe_error(&reason, r);
	} else if (r) {
		buf_printf(&reason, "unexpected answer from the database: %s",
			   PQresStatus(PQresultStatus(r)));
	} else {
		first_line(&reason, PQerrorMessage(s->conn));
	}
	log_redact(out, buf_str(&reason));
	buf_free(&reason);
}

/* A query, or the commit that ends a COPY, has all its results. */
static void finish_command(struct pgsink *s)
{
	pgsink_done_fn done = s->done;
	void *arg = s->done_arg;
	PGresult *r = s->result;
	PGresult *copy = s->copy_result; /* this was the COPY's commit */
	s->done = NULL;
	s->result = NULL;
	s->copy_result = NULL;
	s->state = SINK_IDLE;
	s->wait = WAIT_QUERY;
	s->congested = false;
	set_events(s, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	/* a COMMIT of a transaction that had failed answers ROLLBACK */
	if (copy && st == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", "");
		if (done)
			done(arg, NULL, "the database rolled the load back");
	} else if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (done)
			done(arg, copy ? copy : r, NULL);
	} else {
		struct buf e = BUF_INIT;
		command_error(s, r, &e);
		if (done)
			done(arg, NULL, buf_str(&e));
		buf_free(&e);
	}
	PQclear(r);
	PQclear(copy);
}

/* During COPY IN the server speaks only to report an error (then it
 * ignores the rest of the COPY) or a notice. libpq hands notices over at
 * once but keeps an error unread until the COPY ends: so end it now, with
 * a failure message of ours, and read the error. Producers hold off. If
 * the server had not failed after all, it fails the COPY with our message:
 * no rows are lost silently either way. */
static void abort_copy(struct pgsink *s)
{
	s->congested = true;
	s->flushing_end = false;
	s->copy_aborted = true;
	(void)send_copy_end(s, "the server reported an error during COPY");
}

static void end_copy(struct pgsink *s);

/* A command is queued in libpq: send it, and wait for its results as wait
 * says; what names it in a failure. Returns 0, or -1 after fail_call() or
 * a lost connection. */
static int await_results(struct pgsink *s, enum sink_wait wait, const char *what)
{
	s->state = SINK_WAITING;
	s->wait = wait;
	int f = PQflush(s->conn);
	if (f < 0) {
		fail_call(s, what);
		return -1;
	}
	if (dropped(s))
		return -1;
	set_events(s, f == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE);
	/* libpq may read the whole answer while sending: see notify_cb() */
	uv_idle_start(&s->notify, notify_cb);
	return 0;
}

/* Send sql, one of the statements a chunked COPY runs between its chunks,
 * and wait for its results as wait says; what names it in a failure. */
static void send_between_chunks(struct pgsink *s, const char *sql, enum sink_wait wait,
				const char *what)
{
	if (!PQsendQuery(s->conn, sql)) {
		fail_call(s, what);
		return;
	}
	(void)await_results(s, wait, what);
}

/* Start the next chunk: the same COPY again, in the same transaction. */
static void start_chunk(struct pgsink *s)
{
	send_between_chunks(s, s->copy_sql, WAIT_COPY, "starting COPY");
}

/* A chunk's COPY end has all its results (in s->result): fail with the
 * server's error, or count its rows and go on with the next chunk, or,
 * once the whole COPY was ended, commit. */
static void chunk_done(struct pgsink *s)
{
	PGresult *r = s->result;
	s->result = NULL;
	s->copy_aborted = false;
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		/* fail() hands the error to done, if the COPY's end was asked
		 * for, else to on_error: the transaction is lost either way */
		struct buf e = BUF_INIT;
		command_error(s, r, &e);
		fail(s, buf_str(&e));
		buf_free(&e);
		PQclear(r);
		return;
	}
	s->copy_rows += strtoull(PQcmdTuples(r), NULL, 10);
	if (!s->done || s->rows.len) {
		PQclear(r);
		start_chunk(s);
		return;
	}
	if (!s->own_xact) {
		s->result = r;
		finish_command(s);
		return;
	}
	s->copy_result = r;
	s->own_xact = false;
	send_between_chunks(s, "COMMIT", WAIT_COMMIT, "committing the load");
}

/* The next chunk's COPY has begun: rows flow again, or the COPY ends if
 * that was asked for meanwhile. */
static void chunk_started(struct pgsink *s)
{
	s->state = SINK_COPYING;
	s->wait = WAIT_QUERY;
	s->chunk_bytes = 0;
	set_events(s, UV_READABLE);
	if (s->done) {
		end_copy(s);
		return;
	}
	s->congested = false;
	if (s->cb.on_drain)
		s->cb.on_drain(s->cb.arg);
}

/* Wait for the next chunk's COPY to begin. */
static void collect_copy_start(struct pgsink *s)
{
	while (!PQisBusy(s->conn)) {
		PGresult *r = PQgetResult(s->conn);
		if (r && PQresultStatus(r) == PGRES_COPY_IN && !s->result) {
			PQclear(r);
			chunk_started(s);
			return;
		}
		if (!r) {
			/* the COPY did not begin: its error is in s->result */
			struct buf e = BUF_INIT;
			buf_puts(&e, "starting COPY: ");
			command_error(s, s->result, &e);
			PQclear(s->result);
			s->result = NULL;
			fail(s, buf_str(&e));
			buf_free(&e);
			return;
		}
		if (!s->result)
			s->result = r;
		else
			PQclear(r);
	}
}

/* Complete the running command if libpq has all its results. */
static void collect_results(struct pgsink *s)
{
	if (s->wait == WAIT_COPY) {
		collect_copy_start(s);
		return;
	}
	while (!PQisBusy(s->conn)) {
		PGresult *r = PQgetResult(s->conn);
		if (!r) {
			if (s->wait == WAIT_CHUNK)
				chunk_done(s);
			else
				finish_command(s);
			return;
		}
		/* keep the first error, else the first result with rows, else
		 * the first result */
		ExecStatusType kept = s->result ? PQresultStatus(s->result) : PGRES_EMPTY_QUERY;
		ExecStatusType got = PQresultStatus(r);
		if (kept != PGRES_FATAL_ERROR &&
		    (!s->result || got == PGRES_FATAL_ERROR ||
		     (got == PGRES_TUPLES_OK && kept != PGRES_TUPLES_OK))) {
			PQclear(s->result);
			s->result = r;
		} else {
			PQclear(r);
		}
	}
}

/* Read what the server sent and act on it. */
static void consume(struct pgsink *s)
{
	if (!PQconsumeInput(s->conn)) {
		fail_call(s, s->state == SINK_COPYING ? "loading rows" : "waiting for the database");
		return;
	}
	if (dropped(s))
		return;
	if (s->state == SINK_COPYING) {
		unsigned long notices = s->notices;
		(void)PQisBusy(s->conn); /* hands notices over */
		if (s->notices == notices)
			abort_copy(s);
		return;
	}
	if (s->state == SINK_WAITING)
		collect_results(s);
}

/* End the current chunk's COPY (failing it with errormsg unless NULL) and
 * wait for its result. Each chunk end brings the server's verdict on the
 * chunk: an error the server raised earlier is never left unread for
 * longer than a chunk, even when libpq read it while sending (PQflush()
 * reads whatever has arrived when the socket is full, and then the socket
 * no longer shows it). */
static int send_copy_end(struct pgsink *s, const char *errormsg)
{
	int rc = PQputCopyEnd(s->conn, errormsg);
	if (rc != 1) {
		fail_call(s, "ending COPY");
		return -1;
	}
	return await_results(s, WAIT_CHUNK, "ending COPY");
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct pgsink *s = p->data;
	if (status < 0) {
		/* libuv reports a socket error (the server reset the connection)
		 * as UV_EBADF and stops watching. The server's last words may
		 * still be readable: read them first. */
		s->poll_events = 0;
		if (s->state == SINK_COPYING || s->state == SINK_WAITING)
			consume(s);
		if (s->state == SINK_COPYING || s->state == SINK_WAITING) {
			if (PQstatus(s->conn) == CONNECTION_BAD) {
				fail_call(s, "database socket");
			} else {
				struct buf reason = BUF_INIT;
				buf_printf(&reason, "database socket: %s", uv_strerror(status));
				fail(s, reason.data);
				buf_free(&reason);
			}
		}
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
			fail_call(s, "sending rows");
			return;
		}
		if (dropped(s))
			return;
		if (f == 0) {
			if (s->state == SINK_COPYING) {
				set_events(s, UV_READABLE);
				if (s->flushing_end) {
					/* the chunk's end, or the whole COPY's */
					s->flushing_end = false;
					(void)send_copy_end(s, NULL);
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

/* Send what is buffered and end the COPY (s->done is set). */
static void end_copy(struct pgsink *s)
{
	s->congested = true;
	if (s->rows.len) {
		if (PQputCopyData(s->conn, s->rows.data, (int)s->rows.len) != 1) {
			fail_call(s, "loading rows");
			return; /* done fires with the error from the loop */
		}
		s->bytes_sent += s->rows.len;
		s->chunk_bytes += s->rows.len;
		buf_reset(&s->rows);
	}
	int f = PQflush(s->conn);
	if (f < 0) {
		fail_call(s, "loading rows");
		return;
	}
	if (dropped(s))
		return;
	if (f == 1) {
		s->flushing_end = true;
		set_events(s, UV_READABLE | UV_WRITABLE);
		return;
	}
	(void)send_copy_end(s, NULL);
}

int pgsink_copy_end(struct pgsink *s, pgsink_done_fn done, void *arg)
{
	if (s->state == SINK_WAITING && (s->wait == WAIT_CHUNK || s->wait == WAIT_COPY) &&
	    !s->done) {
		/* a chunk is ending (or ended to read the server's error): the
		 * COPY ends once it has, and done gets its outcome */
		s->done = done;
		s->done_arg = arg;
		return 0;
	}
	if (s->state != SINK_COPYING)
		return -1;
	s->done = done;
	s->done_arg = arg;
	end_copy(s);
	return 0;
}

uint64_t pgsink_copy_rows(const struct pgsink *s)
{
	return s->copy_rows;
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
		fail_call(s, "sending a query");
		return 0;
	}
	(void)await_results(s, WAIT_QUERY, "sending a query"); /* a failure reaches done */
	return 0;
}

static void sink_free(struct pgsink *s)
{
	PQclear(s->result);
	PQclear(s->copy_result);
	free(s->copy_sql);
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
	if (s->state == SINK_CLOSED && !s->poll_open && !s->notify_open)
		sink_free(s);
}

/* Stop watching the socket for good. libuv forgets the descriptor when
 * the handle is closed: this must happen before the descriptor is closed
 * and its number handed out again (to a curl socket, say). */
static void close_poll(struct pgsink *s)
{
	if (!s->poll_open || uv_is_closing((uv_handle_t *)&s->poll))
		return;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, handle_closed);
}

void pgsink_close(struct pgsink *s)
{
	/* tell the server why, rather than leave mid-COPY */
	if (s->state == SINK_COPYING)
		(void)PQputCopyEnd(s->conn, "invsync stopped the load");
	s->state = SINK_CLOSED;
	s->done = NULL;
	close_poll(s); /* before the socket goes away with PQfinish */
	PQfinish(s->conn);
	s->conn = NULL;
	uv_idle_stop(&s->notify);
	uv_close((uv_handle_t *)&s->notify, handle_closed);
}
