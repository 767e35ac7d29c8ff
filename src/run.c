/* run.c - one sync run: sources, page jobs, retries, backpressure, commit.
 *
 * Objects and their lifetimes:
 *   struct run      the whole run; owns the loop, the HTTP client, the
 *                   control connection (run ids, run log, per-source locks).
 *   struct source   one configured source; owns its COPY sink (one
 *                   connection, one transaction) and its streams.
 *   struct stream   one paged endpoint of a source (devices for one OS);
 *                   owns its page_window (planner.h).
 *   struct page_job one page being fetched; retried in place with a new
 *                   attempt id; freed from its timer's close callback.
 *
 * Everything happens on the loop thread. Work that must not run inside a
 * curl or libpq callback (cancelling transfers, closing a failed source,
 * starting pages) is done by pump(), an idle handle armed when needed. */
#include "run.h"
#include "endpoint.h"
#include "http.h"
#include "jstream.h"
#include "log.h"
#include "mosyle.h"
#include "pgsink.h"
#include "planner.h"
#include "schema.h"
#include "version.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libpq-fe.h>
#include <uv.h>

/* Longest pause a Retry-After may impose on one page. */
#define MAX_RETRY_AFTER_S 300
/* How much of an error answer's body is kept for the message. */
#define ERROR_BODY_MAX 512
/* How long writing a failure to the run log waits for a database that went
 * away (a restart) to come back. */
#define RECONNECT_WAIT_MS 15000
/* SQLSTATE lock_not_available: lock_timeout expired. */
#define SQLSTATE_LOCK_TIMEOUT "55P03"

enum source_state {
	SOURCE_LOGIN,
	SOURCE_FETCHING,
	SOURCE_COMMITTING,
	SOURCE_FAILING,   /* failed; pump() still has to clean up */
	SOURCE_FAILED,
	SOURCE_SUCCEEDED,
};

enum job_state {
	JOB_FETCHING,
	JOB_BACKOFF,
	JOB_CLOSING,
};

struct run;
struct source;

struct stream {
	struct source *src;
	const struct endpoint *ep;
	const char *variant; /* OS name for per-OS streams */
	char name[48];       /* "devices/ios" */
	struct page_window pw;
	uint64_t bytes;
	uint64_t records;
	long total_hint;
};

struct page_job {
	struct stream *st;
	enum job_state state;
	int page;
	int attempt_no;   /* 1 for the first try */
	int attempt_id;   /* staged with every row of this attempt */
	struct http_transfer *xfer;
	struct jstream *js;
	uv_timer_t timer; /* backoff; closing it frees the job */
	bool paused;
	long status;
	long total;
	long page_size;
	struct buf inner_status;
	struct buf inner_info;
	struct buf outer_status;
	struct buf errbody;
	struct buf reason;
	bool parse_failed;
	long records;
	uint64_t signature;
	uint64_t body_bytes; /* of this attempt's answer, against max_response_mb */
	struct page_job *prev, *next;
};

struct source {
	struct run *run;
	const struct config_source *cfg;
	enum source_state state;
	char *jwt;
	struct http_transfer *login;
	int login_attempts;
	uv_timer_t login_timer;
	bool login_timer_open;
	struct pgsink *sink;
	char *load_table; /* the table this run's rows are copied into */
	struct stream *streams;
	int nstreams;
	int next_attempt;
	int *discards;
	size_t ndiscards, discards_cap;
	struct page_job *jobs;
	int jobs_live;
	struct buf error;
	struct buf keybuf;
	uint64_t nul_replaced;
	uint64_t unkeyed;
	uint64_t bad_values;
	long loaded;
	unsigned long long started_ms, finished_ms;
	bool recorded; /* the final sync_runs update is written */
};

struct run {
	uv_loop_t loop;
	const struct config *cfg;
	const struct run_options *opt;
	PGconn *control;
	struct http_client *http;
	bool http_open;
	long long run_id;
	struct source *sources;
	size_t nsources;
	int in_flight;
	uint64_t parse_ns; /* CPU time spent parsing and encoding rows */
	uv_idle_t pump;
	uv_signal_t sigint, sigterm;
	int signals;
	bool interrupted;
	bool shutting_down;
	bool control_gone; /* lost, and connecting again failed: give up on it */
	unsigned long long started_ms;
};

static void pump_arm(struct run *r);
static void job_start(struct page_job *job);
static void source_fail(struct source *src, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---------- small helpers ---------- */

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static long parse_long(const struct jstream_value *v)
{
	if (v->type != JSTREAM_NUMBER && v->type != JSTREAM_STRING)
		return -1;
	char *end;
	errno = 0;
	long n = strtol(v->text, &end, 10);
	if (errno || end == v->text || n < 0)
		return -1;
	while (*end == ' ')
		end++;
	if (*end == '.') { /* "1328.0" */
		end++;
		while (*end == '0')
			end++;
	}
	return *end ? -1 : n;
}

static bool in_list(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static void add_discard(struct source *src, int attempt)
{
	if (src->ndiscards == src->discards_cap) {
		src->discards_cap = src->discards_cap ? src->discards_cap * 2 : 32;
		src->discards = xrealloc(src->discards, src->discards_cap * sizeof(int));
	}
	src->discards[src->ndiscards++] = attempt;
}

static void discard_cb(void *arg, int attempt)
{
	add_discard(arg, attempt);
}

static const char *source_name(const struct source *src)
{
	return src->cfg->name;
}

/* ---------- run log (control connection, blocking) ---------- */

static int control_exec(struct run *r, const char *sql, int n, const char *const *params,
			struct buf *err)
{
	PGresult *res = PQexecParams(r->control, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		if (err) {
			struct buf e = BUF_INIT;
			pgsink_describe_error(&e, res);
			log_redact(err, buf_str(&e));
			buf_free(&e);
		}
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

static void stream_totals(const struct source *src, long *pages, long *wasted, long *retries,
			  uint64_t *records, uint64_t *bytes)
{
	*pages = *wasted = *retries = 0;
	*records = *bytes = 0;
	for (int i = 0; i < src->nstreams; i++) {
		const struct stream *st = &src->streams[i];
		*pages += st->pw.pages_done;
		*wasted += st->pw.pages_wasted;
		*retries += st->pw.retries;
		*records += st->records;
		*bytes += st->bytes;
	}
}

/* SQL that records the per-endpoint figures (numbers and our own endpoint
 * names only; the source name is an escaped literal). */
static void endpoint_rows_sql(struct buf *sql, const struct source *src, const char *lit_source)
{
	buf_printf(sql, "INSERT INTO sync_run_endpoints (run_id, source, endpoint, pages,"
			" pages_wasted, records, bytes, retries, total_hint) VALUES ");
	for (int i = 0; i < src->nstreams; i++) {
		const struct stream *st = &src->streams[i];
		char total[24] = "NULL";
		if (st->total_hint >= 0)
			snprintf(total, sizeof(total), "%ld", st->total_hint);
		buf_printf(sql, "%s(%lld, %s, '%s', %ld, %ld, %" PRIu64 ", %" PRIu64 ", %ld, %s)",
			   i ? ", " : "", src->run->run_id, lit_source, st->name, st->pw.pages_done,
			   st->pw.pages_wasted, st->records, st->bytes, st->pw.retries, total);
	}
}

static void warnings_text(const struct source *src, struct buf *w)
{
	for (int i = 0; i < src->nstreams; i++) {
		const struct stream *st = &src->streams[i];
		if (st->pw.warning.len)
			buf_printf(w, "%s%s: %s", w->len ? "; " : "", st->name, buf_str(&st->pw.warning));
	}
	if (src->unkeyed)
		buf_printf(w, "%s%" PRIu64 " records without deviceudid or serial_number were skipped",
			   w->len ? "; " : "", src->unkeyed);
	if (src->nul_replaced)
		buf_printf(w, "%s%" PRIu64 " NUL characters replaced by U+FFFD", w->len ? "; " : "",
			   src->nul_replaced);
	if (src->bad_values)
		buf_printf(w, "%s%" PRIu64 " values could not be converted and were stored as NULL"
			      " (the full record keeps them)",
			   w->len ? "; " : "", src->bad_values);
}

/* SET list shared by the succeeded and failed updates. */
static void run_figures_sql(struct buf *sql, const struct source *src)
{
	long pages, wasted, retries;
	uint64_t records, bytes;
	stream_totals(src, &pages, &wasted, &retries, &records, &bytes);
	/* clock_timestamp(): now() would be the start of the load transaction */
	buf_printf(sql, "finished_at = clock_timestamp(), pages = %ld, pages_wasted = %ld,"
			" records = %" PRIu64 ", bytes = %" PRIu64 ", retries = %ld,"
			" nul_replaced = %" PRIu64,
		   pages, wasted, records, bytes, retries, src->nul_replaced);
}

/* Reset the lost control connection within the deadline: 0 or -1. */
static int reset_control(PGconn *conn, unsigned long long deadline)
{
	if (!PQresetStart(conn))
		return -1;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		unsigned long long now = util_now_ms();
		if (now >= deadline)
			return -1;
		struct pollfd pfd = {PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
		if (poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			return -1;
		st = PQresetPoll(conn);
	}
	return st == PGRES_POLLING_OK ? 0 : -1;
}

/* The control connection is gone (the server restarted, or someone ended
 * the session): connect again, waiting up to RECONNECT_WAIT_MS for the
 * server to come back, once per run. The session's advisory locks are
 * gone with it: only the run log is written afterwards. 0 or -1. */
static int control_reconnect(struct run *r)
{
	if (r->control_gone)
		return -1;
	unsigned long long deadline = util_now_ms() + RECONNECT_WAIT_MS;
	while (reset_control(r->control, deadline) < 0) {
		if (util_now_ms() + 200 >= deadline) {
			r->control_gone = true;
			return -1;
		}
		uv_sleep(200); /* refused while the server is down or starting */
	}
	struct buf err = BUF_INIT;
	int rc = schema_use(r->control, r->cfg->schema, &err);
	if (rc < 0)
		r->control_gone = true;
	else
		log_warn(NULL, "lost the connection to the database; connected again to write the"
			       " run log");
	buf_free(&err);
	return rc;
}

/* control_exec() for the run log of a failure: if the connection turns out
 * to be lost, connect again and retry once. */
static int control_exec_failure(struct run *r, const char *sql, int n, const char *const *params,
				struct buf *err)
{
	if (r->control_gone) {
		buf_puts(err, "the connection to the database is lost");
		return -1;
	}
	if (control_exec(r, sql, n, params, err) == 0)
		return 0;
	if (PQstatus(r->control) != CONNECTION_BAD)
		return -1;
	if (control_reconnect(r) < 0)
		return -1; /* err says how the connection was lost */
	buf_reset(err);
	return control_exec(r, sql, n, params, err);
}

static void record_failure(struct source *src)
{
	struct run *r = src->run;
	if (src->recorded || !r->control)
		return;
	src->recorded = true;
	struct buf sql = BUF_INIT, w = BUF_INIT, err = BUF_INIT;
	char *lit = PQescapeLiteral(r->control, source_name(src), strlen(source_name(src)));
	warnings_text(src, &w);
	buf_puts(&sql, "UPDATE sync_runs SET status = 'failed', error = $1, warnings = nullif($2, ''), ");
	run_figures_sql(&sql, src);
	/* only a running row: a commit whose answer was lost with the
	 * connection may have gone through, and its row says so */
	buf_printf(&sql, " WHERE run_id = %lld AND source = %s AND status = 'running'", r->run_id,
		   lit ? lit : "''");
	const char *params[2] = {buf_str(&src->error), buf_str(&w)};
	if (control_exec_failure(r, sql.data, 2, params, &err) < 0) {
		log_error(source_name(src), "could not record the failure in sync_runs: %s", buf_str(&err));
	} else if (lit) {
		buf_reset(&sql);
		endpoint_rows_sql(&sql, src, lit);
		if (control_exec_failure(r, sql.data, 0, NULL, &err) < 0)
			log_error(source_name(src), "could not record endpoint figures: %s", buf_str(&err));
	}
	PQfreemem(lit);
	buf_free(&sql);
	buf_free(&w);
	buf_free(&err);
}

/* ---------- page jobs ---------- */

static void job_closed(uv_handle_t *h)
{
	struct page_job *job = h->data;
	jstream_free(job->js);
	buf_free(&job->inner_status);
	buf_free(&job->inner_info);
	buf_free(&job->outer_status);
	buf_free(&job->errbody);
	buf_free(&job->reason);
	free(job);
}

/* Unlink and free (through the timer's close callback). The transfer must
 * already be gone. */
static void job_free(struct page_job *job)
{
	struct source *src = job->st->src;
	if (job->prev)
		job->prev->next = job->next;
	else
		src->jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	src->jobs_live--;
	job->state = JOB_CLOSING;
	uv_timer_stop(&job->timer);
	uv_close((uv_handle_t *)&job->timer, job_closed);
}

/* Stop a job from outside its own callbacks. Its rows, if any, are
 * discarded. */
static void job_cancel(struct page_job *job)
{
	struct source *src = job->st->src;
	if (job->xfer) {
		http_cancel(job->xfer);
		job->xfer = NULL;
		src->run->in_flight--;
		if (job->records > 0)
			add_discard(src, job->attempt_id);
	}
	job_free(job);
}

static int job_on_record(void *arg, const struct jstream_record *rec)
{
	struct page_job *job = arg;
	struct stream *st = job->st;
	struct source *src = st->src;
	const char *key = NULL;
	size_t keylen = st->ep->record_key(rec, &src->keybuf, &key);
	if (keylen == 0) {
		src->unkeyed++;
		return 0;
	}
	job->signature = fnv1a(job->signature ? job->signature : 0xcbf29ce484222325ull, key, keylen);
	job->signature = fnv1a(job->signature, "\n", 1);
	struct endpoint_row_ctx ctx = {job->attempt_id, job->page, st->variant};
	src->bad_values += (uint64_t)st->ep->encode_row(pgsink_buf(src->sink), rec, key, keylen, &ctx);
	job->records++;
	if (pgsink_rows_added(src->sink) < 0)
		return -ECANCELED; /* the sink reports why through on_error */
	return 0;
}

static void job_on_capture(void *arg, size_t id, const struct jstream_value *v)
{
	struct page_job *job = arg;
	const struct endpoint *ep = job->st->ep;
	int cid = (int)id;
	if (cid == ep->cap_total)
		job->total = parse_long(v);
	else if (cid == ep->cap_page_size)
		job->page_size = parse_long(v);
	else if (cid == ep->cap_status) {
		buf_reset(&job->inner_status);
		buf_append(&job->inner_status, v->text, v->len);
	} else if (cid == ep->cap_info) {
		buf_reset(&job->inner_info);
		buf_append(&job->inner_info, v->text, v->len);
	} else if (strcmp(ep->spec.captures[id], "status") == 0) {
		buf_reset(&job->outer_status);
		buf_append(&job->outer_status, v->text, v->len);
	}
}

static int job_on_data(void *arg, const char *data, size_t len)
{
	struct page_job *job = arg;
	struct source *src = job->st->src;
	if (src->state != SOURCE_FETCHING)
		return -ECANCELED;
	if (job->status == 0)
		job->status = http_status(job->xfer);
	if (job->status == 200 && pgsink_congested(src->sink)) {
		job->paused = true;
		return HTTP_PAUSE;
	}
	/* Counted only once accepted: paused bytes come again. An answer that
	 * big would be as big on a retry, so the source fails at once. */
	job->body_bytes += len;
	if (job->body_bytes > (uint64_t)src->run->cfg->fetch.max_response_mb << 20) {
		source_fail(src, "%s: page %d answer exceeds max_response_mb (%d MiB)", job->st->name,
			    job->page, src->run->cfg->fetch.max_response_mb);
		return -EFBIG;
	}
	if (job->status != 200) {
		/* keep the start of an error answer for the message */
		size_t room = ERROR_BODY_MAX - job->errbody.len;
		buf_append(&job->errbody, data, len < room ? len : room);
		return 0;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	int rc = jstream_feed(job->js, data, len); /* parses, and encodes each record */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	src->run->parse_ns += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
	if (rc < 0) {
		if (rc == -EPROTO) {
			job->parse_failed = true;
			buf_reset(&job->reason);
			buf_puts(&job->reason, jstream_error(job->js));
		}
		return rc;
	}
	return 0;
}

static void job_on_done(void *arg, const struct http_result *res);

static const char *const *job_headers(struct source *src, struct buf *auth)
{
	static const char *headers[4];
	buf_reset(auth);
	buf_printf(auth, "Authorization: Bearer %s", src->jwt);
	headers[0] = "Content-Type: application/json";
	headers[1] = "Accept: application/json";
	headers[2] = auth->data;
	headers[3] = NULL;
	return headers;
}

static void job_start(struct page_job *job)
{
	struct stream *st = job->st;
	struct source *src = st->src;
	struct run *r = src->run;
	struct buf url = BUF_INIT, body = BUF_INIT, auth = BUF_INIT;

	job->attempt_id = ++src->next_attempt;
	job->state = JOB_FETCHING;
	job->status = 0;
	job->total = -1;
	job->page_size = -1;
	job->records = 0;
	job->signature = 0;
	job->body_bytes = 0;
	job->paused = false;
	job->parse_failed = false;
	buf_reset(&job->inner_status);
	buf_reset(&job->inner_info);
	buf_reset(&job->outer_status);
	buf_reset(&job->errbody);
	buf_reset(&job->reason);
	jstream_reset(job->js);

	buf_printf(&url, "%s%s", src->cfg->base_url, st->ep->path);
	struct endpoint_request ereq = {src->cfg, st->variant, job->page, NULL};
	st->ep->request(&url, &body, &ereq);
	struct http_request req = {
		.method = "POST",
		.url = url.data,
		.headers = job_headers(src, &auth),
		.body = body.data,
		.body_len = body.len,
		.on_data = job_on_data,
		.on_done = job_on_done,
		.arg = job,
	};
	int rc = http_start(r->http, &req, &job->xfer);
	/* the request held secrets: wipe our copies */
	memset(body.data, 0, body.len);
	memset(auth.data, 0, auth.len);
	buf_free(&url);
	buf_free(&body);
	buf_free(&auth);
	if (rc < 0) {
		job->xfer = NULL;
		page_window_give_up(&st->pw, job->page, "could not start the request");
		source_fail(src, "%s page %d: could not start the request (%s)", st->name, job->page,
			    strerror(-rc));
		job_free(job);
		return;
	}
	r->in_flight++;
}

static void job_backoff_cb(uv_timer_t *t)
{
	struct page_job *job = t->data;
	struct source *src = job->st->src;
	if (src->state != SOURCE_FETCHING)
		return; /* pump() reaps it */
	if (page_window_past_end(&job->st->pw, job->page)) {
		page_window_abandon(&job->st->pw, job->page);
		job_free(job);
		pump_arm(src->run);
		return;
	}
	job_start(job);
}

static struct page_job *job_new(struct stream *st, int page)
{
	struct source *src = st->src;
	struct page_job *job = xcalloc(1, sizeof(*job));
	job->st = st;
	job->page = page;
	struct jstream_callbacks cb = {job_on_record, job_on_capture, job};
	if (jstream_new(&job->js, &st->ep->spec, &cb) < 0) {
		free(job);
		return NULL;
	}
	buf_init(&job->inner_status);
	buf_init(&job->inner_info);
	buf_init(&job->outer_status);
	buf_init(&job->errbody);
	buf_init(&job->reason);
	uv_timer_init(&src->run->loop, &job->timer);
	job->timer.data = job;
	job->next = src->jobs;
	if (src->jobs)
		src->jobs->prev = job;
	src->jobs = job;
	src->jobs_live++;
	return job;
}

/* The page failed in a way worth another try: schedule it, or give up. */
static void job_retry_or_fail(struct page_job *job, long retry_after_s, const char *reason)
{
	struct stream *st = job->st;
	struct source *src = st->src;
	const struct config_fetch *f = &src->run->cfg->fetch;
	if (job->records > 0)
		add_discard(src, job->attempt_id);
	if (job->attempt_no <= f->retries) {
		unsigned long long delay = (unsigned long long)f->retry_delay_ms << (job->attempt_no - 1);
		/* full jitter in [delay/2, delay*3/2): retries of many pages spread out */
		delay = delay / 2 + (delay ? (unsigned long long)rand() % (delay + 1) : 0);
		if (retry_after_s > 0) {
			unsigned long long ra = (unsigned long long)(retry_after_s > MAX_RETRY_AFTER_S
									 ? MAX_RETRY_AFTER_S
									 : retry_after_s) * 1000ull;
			if (ra > delay)
				delay = ra;
		}
		log_warn(source_name(src), "%s page %d attempt %d failed (%s); retrying in %llu ms",
			 st->name, job->page, job->attempt_no, reason, delay);
		job->attempt_no++;
		page_window_retry(&st->pw, job->page);
		job->state = JOB_BACKOFF;
		uv_timer_start(&job->timer, job_backoff_cb, delay, 0);
		return;
	}
	struct buf msg = BUF_INIT;
	buf_printf(&msg, "page %d failed after %d attempts: %s", job->page, job->attempt_no, reason);
	/* a failure the planner cannot judge yet (the end is unknown) is
	 * settled when the stream finishes */
	if (!page_window_give_up(&st->pw, job->page, msg.data))
		source_fail(src, "%s: %s", st->name, msg.data);
	buf_free(&msg);
	job_free(job);
}

static void job_on_done(void *arg, const struct http_result *res)
{
	struct page_job *job = arg;
	struct stream *st = job->st;
	struct source *src = st->src;
	struct run *r = src->run;
	struct buf reason = BUF_INIT;

	job->xfer = NULL;
	r->in_flight--;
	st->bytes += res->body_bytes;
	pump_arm(r);
	if (src->state != SOURCE_FETCHING) {
		if (job->records > 0)
			add_discard(src, job->attempt_id);
		job_free(job);
		goto out;
	}
	if (res->curl_code != 0) {
		if (job->parse_failed)
			buf_printf(&reason, "%s", buf_str(&job->reason));
		else
			buf_printf(&reason, "transfer failed: %s", res->error);
		if (res->status)
			buf_printf(&reason, " (HTTP %ld)", res->status);
		if (http_error_is_permanent(res->curl_code)) {
			source_fail(src, "%s: page %d: %s", st->name, job->page, reason.data);
			job_free(job);
			goto out;
		}
		job_retry_or_fail(job, -1, reason.data);
		goto out;
	}
	if (res->status == 401 || res->status == 403) {
		log_redact(&reason, buf_str(&job->errbody));
		source_fail(src, "Mosyle refused the session token on %s page %d (HTTP %ld%s%s)",
			    st->name, job->page, res->status, reason.len ? ": " : "", buf_str(&reason));
		job_free(job);
		goto out;
	}
	if (res->status == 429 || res->status >= 500) {
		buf_printf(&reason, "HTTP %ld", res->status);
		job_retry_or_fail(job, res->retry_after_s, reason.data);
		goto out;
	}
	if (res->status != 200) {
		log_redact(&reason, buf_str(&job->errbody));
		source_fail(src, "%s page %d: unexpected HTTP %ld from %s%s%s", st->name, job->page,
			    res->status, st->ep->path, reason.len ? ": " : "", buf_str(&reason));
		job_free(job);
		goto out;
	}
	if (jstream_finish(job->js) < 0) {
		buf_printf(&reason, "%s", jstream_error(job->js));
		job_retry_or_fail(job, -1, reason.data);
		goto out;
	}
	src->nul_replaced += jstream_stats(job->js)->nul_replaced;

	const char *outer = buf_str(&job->outer_status);
	const char *inner = buf_str(&job->inner_status);
	bool end_marker = false;
	if (mosyle_auth_refused(outer) || mosyle_auth_refused(inner)) {
		source_fail(src, "Mosyle refused the access token on %s page %d: %s", st->name,
			    job->page, *inner ? inner : outer);
		job_free(job);
		goto out;
	}
	if (*inner) {
		if (in_list(st->ep->end_statuses, inner)) {
			end_marker = true;
		} else {
			source_fail(src, "Mosyle answered %s on %s page %d: %s", inner, st->name,
				    job->page, job->inner_info.len ? job->inner_info.data : "(no info)");
			job_free(job);
			goto out;
		}
	} else if (*outer && strcmp(outer, "OK") != 0) {
		source_fail(src, "Mosyle answered status %s on %s page %d", outer, st->name, job->page);
		job_free(job);
		goto out;
	} else if (!jstream_stats(job->js)->list_seen) {
		job_retry_or_fail(job, -1, "the answer holds no device list");
		goto out;
	}
	if (job->page == st->pw.first_page && job->total >= 0)
		st->total_hint = job->total;
	struct page_result pr = {
		.page = job->page,
		.records = job->records,
		.signature = job->signature,
		.end_marker = end_marker || job->records == 0,
		.total_records = job->total,
		.page_size = job->page_size,
		.attempt = job->attempt_id,
	};
	st->records += (uint64_t)job->records;
	if (page_window_done(&st->pw, &pr) == PAGE_DISCARD && job->records > 0)
		add_discard(src, job->attempt_id);
	log_debug(source_name(src), "%s page %d: %ld records", st->name, job->page, job->records);
	job_free(job);
out:
	buf_free(&reason);
}

/* ---------- sources ---------- */

static void source_fail(struct source *src, const char *fmt, ...)
{
	if (src->state == SOURCE_FAILING || src->state == SOURCE_FAILED ||
	    src->state == SOURCE_SUCCEEDED)
		return;
	struct buf msg = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	buf_reset(&src->error);
	log_redact(&src->error, msg.data);
	buf_free(&msg);
	src->state = SOURCE_FAILING;
	pump_arm(src->run);
}

static void sink_drain(void *arg)
{
	struct source *src = arg;
	for (struct page_job *job = src->jobs; job; job = job->next) {
		if (!job->paused || !job->xfer)
			continue;
		job->paused = false;
		http_resume(job->xfer);
		if (pgsink_congested(src->sink))
			break;
	}
}

static void sink_error(void *arg, const char *reason)
{
	struct source *src = arg;
	source_fail(src, "loading into PostgreSQL failed: %s", reason);
}

static void commit_done(void *arg, PGresult *res, const char *error)
{
	struct source *src = arg;
	if (!res) {
		/* detaching the old partition needs mosyle_devices to itself */
		if (strcmp(pgsink_sqlstate(src->sink), SQLSTATE_LOCK_TIMEOUT) == 0)
			source_fail(src, "could not swap in the new inventory: a query held a lock on %s"
					 " for more than %d s", src->streams[0].ep->table,
				    src->run->cfg->lock_timeout_s);
		else
			source_fail(src, "committing the new inventory failed: %s", error);
		return;
	}
	if (PQntuples(res) > 0)
		src->loaded = atol(PQgetvalue(res, 0, 0));
	src->state = SOURCE_SUCCEEDED;
	src->recorded = true;
	src->finished_ms = util_now_ms();
	pgsink_close(src->sink);
	src->sink = NULL;
	log_info(source_name(src), "committed: %ld devices current", src->loaded);
	pump_arm(src->run);
}

static void copy_done(void *arg, PGresult *res, const char *error)
{
	struct source *src = arg;
	struct run *r = src->run;
	if (!res) {
		source_fail(src, "loading into PostgreSQL failed: %s", error);
		return;
	}
	PGconn *conn = pgsink_conn(src->sink);
	const struct endpoint *ep = src->streams[0].ep;
	char *lit = PQescapeLiteral(conn, source_name(src), strlen(source_name(src)));
	char *tlit = PQescapeLiteral(conn, src->load_table, strlen(src->load_table));
	struct buf sql = BUF_INIT, arr = BUF_INIT, w = BUF_INIT;
	buf_putc(&arr, '{');
	for (size_t i = 0; i < src->ndiscards; i++)
		buf_printf(&arr, "%s%d", i ? "," : "", src->discards[i]);
	buf_putc(&arr, '}');
	warnings_text(src, &w);
	char *wlit = PQescapeLiteral(conn, buf_str(&w), w.len);
	/* One round trip, one transaction: replace the rows, mark the run
	 * succeeded, record endpoint figures, commit. */
	buf_printf(&sql, "WITH c AS (SELECT commit_rows('%s', %s, %s, '%s', '%s') AS n)"
			 " UPDATE sync_runs SET status = 'succeeded', loaded = c.n,"
			 " warnings = nullif(%s, ''), ",
		   ep->table, tlit ? tlit : "''", lit ? lit : "''", arr.data, ep->key_columns,
		   wlit ? wlit : "''");
	run_figures_sql(&sql, src);
	buf_printf(&sql, " FROM c WHERE run_id = %lld AND source = %s RETURNING c.n;\n", r->run_id,
		   lit ? lit : "''");
	endpoint_rows_sql(&sql, src, lit ? lit : "''");
	buf_puts(&sql, ";\nCOMMIT");
	PQfreemem(lit);
	PQfreemem(tlit);
	PQfreemem(wlit);
	if (pgsink_query(src->sink, sql.data, 0, NULL, commit_done, src) < 0)
		source_fail(src, "could not send the commit");
	buf_free(&sql);
	buf_free(&arr);
	buf_free(&w);
}

static void source_commit(struct source *src)
{
	src->state = SOURCE_COMMITTING;
	for (int i = 0; i < src->nstreams; i++)
		page_window_late_discards(&src->streams[i].pw, discard_cb, src);
	long pages, wasted, retries;
	uint64_t records, bytes;
	stream_totals(src, &pages, &wasted, &retries, &records, &bytes);
	log_info(source_name(src), "all pages read (%ld pages, %ld wasted, %ld retries, %" PRIu64
				   " records); committing",
		 pages, wasted, retries, records);
	if (pgsink_copy_end(src->sink, copy_done, src) < 0)
		source_fail(src, "could not end the COPY");
}

/* A failed source: stop its work and record why. Called from pump(). */
static void source_reap_failed(struct source *src)
{
	while (src->jobs)
		job_cancel(src->jobs);
	if (src->login) {
		http_cancel(src->login);
		src->login = NULL;
	}
	if (src->login_timer_open)
		uv_timer_stop(&src->login_timer);
	if (src->sink) {
		pgsink_close(src->sink); /* the server rolls the transaction back */
		src->sink = NULL;
	}
	src->state = SOURCE_FAILED;
	src->finished_ms = util_now_ms();
	log_error(source_name(src), "failed: %s", buf_str(&src->error));
	record_failure(src);
}

static void login_start(struct source *src);

static void login_timer_cb(uv_timer_t *t)
{
	struct source *src = t->data;
	if (src->state == SOURCE_LOGIN)
		login_start(src);
}

static int login_on_data(void *arg, const char *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0; /* the body says nothing we need; the token is in a header */
}

static void login_on_done(void *arg, const struct http_result *res)
{
	struct source *src = arg;
	src->login = NULL;
	pump_arm(src->run);
	if (src->state != SOURCE_LOGIN)
		return;
	bool transient = (res->curl_code != 0 && !http_error_is_permanent(res->curl_code)) ||
			 res->status == 429 || res->status >= 500;
	if (transient && src->login_attempts <= src->run->cfg->fetch.retries) {
		unsigned long long delay = (unsigned long long)src->run->cfg->fetch.retry_delay_ms
					   << (src->login_attempts - 1);
		log_warn(source_name(src), "login attempt %d failed (%s%s); retrying in %llu ms",
			 src->login_attempts, res->curl_code ? res->error : "HTTP ",
			 res->curl_code ? "" : (res->status >= 500 ? "5xx" : "429"), delay);
		uv_timer_start(&src->login_timer, login_timer_cb, delay, 0);
		return;
	}
	if (res->curl_code != 0) {
		source_fail(src, "login failed: cannot reach %s: %s", src->cfg->base_url, res->error);
		return;
	}
	char *token = mosyle_login_token(res->captured);
	if (!token) {
		source_fail(src, "login failed: Mosyle answered HTTP %ld without a token in the "
				 "Authorization header; check access_token, email and password",
			    res->status);
		return;
	}
	log_add_secret(token);
	src->jwt = token;
	src->state = SOURCE_FETCHING;
	log_info(source_name(src), "logged in");
}

static void login_start(struct source *src)
{
	struct buf url = BUF_INIT, body = BUF_INIT;
	static const char *const headers[] = {"Content-Type: application/json",
					      "Accept: application/json", NULL};
	src->login_attempts++;
	buf_printf(&url, "%s/login", src->cfg->base_url);
	mosyle_login_body(&body, src->cfg);
	struct http_request req = {
		.method = "POST",
		.url = url.data,
		.headers = headers,
		.body = body.data,
		.body_len = body.len,
		.capture_header = "Authorization",
		.on_data = login_on_data,
		.on_done = login_on_done,
		.arg = src,
	};
	int rc = http_start(src->run->http, &req, &src->login);
	memset(body.data, 0, body.len);
	buf_free(&url);
	buf_free(&body);
	if (rc < 0) {
		src->login = NULL;
		source_fail(src, "login failed: could not start the request (%s)", strerror(-rc));
	}
}

/* Blocking preparation before the loop runs: lock, run log row, sink,
 * staging table, COPY. Returns 0 or -1 (source failed, reason set). */
static int source_prepare(struct source *src)
{
	struct run *r = src->run;
	const struct config *cfg = r->cfg;
	struct buf err = BUF_INIT;
	char run_id[24];
	snprintf(run_id, sizeof(run_id), "%lld", r->run_id);
	const char *params[3] = {run_id, source_name(src), "mosyle"};
	int rc = -1;

	if (control_exec(r, "INSERT INTO sync_runs (run_id, source, kind) VALUES ($1, $2, $3)", 3,
			 params, &err) < 0) {
		buf_printf(&src->error, "cannot write the run log: %s", buf_str(&err));
		goto out;
	}
	/* Our run holds the source's lock (taken in run_sync), so a 'running'
	 * row of an older run is one whose process died. */
	if (control_exec(r, "UPDATE sync_runs SET status = 'failed', finished_at = now(),"
			    " error = 'abandoned: the process running it stopped before it finished'"
			    " WHERE source = $2 AND status = 'running' AND run_id <> $1",
			 2, params, &err) < 0) {
		buf_printf(&src->error, "cannot update the run log: %s", buf_str(&err));
		goto out;
	}
	struct pgsink_callbacks cb = {sink_drain, sink_error, src};
	if (pgsink_open(&src->sink, &r->loop, cfg->conninfo, cfg->schema, &cb, &err) < 0) {
		buf_printf(&src->error, "%s", buf_str(&err));
		goto out;
	}
	const struct endpoint *ep = src->streams[0].ep;
	/* lock_timeout bounds the commit's wait for readers of mosyle_devices
	 * (detaching the old partition needs the table to itself) */
	char begin[96];
	snprintf(begin, sizeof(begin), "BEGIN; SET LOCAL lock_timeout = '%ds'", cfg->lock_timeout_s);
	if (pgsink_exec(src->sink, begin, &err) < 0) {
		buf_printf(&src->error, "preparing the load: %s", buf_str(&err));
		goto out;
	}
	const char *stage_params[4] = {ep->table, run_id, source_name(src), cfg->tablespace};
	PGresult *res = PQexecParams(pgsink_conn(src->sink), "SELECT stage_rows($1, $2, $3, $4)", 4,
				     NULL, stage_params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		struct buf e = BUF_INIT;
		pgsink_describe_error(&e, res);
		buf_puts(&src->error, "preparing the load: ");
		log_redact(&src->error, buf_str(&e));
		buf_free(&e);
		PQclear(res);
		goto out;
	}
	src->load_table = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	struct buf copy = BUF_INIT;
	buf_printf(&copy, "COPY %s (%s) FROM STDIN", src->load_table, ep->copy_columns);
	int crc = pgsink_copy_begin(src->sink, copy.data, &err);
	buf_free(&copy);
	if (crc < 0) {
		buf_printf(&src->error, "preparing the load: %s", buf_str(&err));
		goto out;
	}
	rc = 0;
out:
	buf_free(&err);
	return rc;
}

static void source_init(struct run *r, struct source *src, const struct config_source *cfg)
{
	static const enum config_os oses[] = {CONFIG_OS_IOS, CONFIG_OS_MAC, CONFIG_OS_TVOS,
					      CONFIG_OS_VISIONOS};
	src->run = r;
	src->cfg = cfg;
	src->state = SOURCE_LOGIN;
	buf_init(&src->error);
	buf_init(&src->keybuf);
	src->streams = xcalloc(ARRAY_SIZE(oses), sizeof(struct stream));
	for (size_t i = 0; i < ARRAY_SIZE(oses); i++) {
		if (!(cfg->os_mask & oses[i]))
			continue;
		struct stream *st = &src->streams[src->nstreams++];
		st->src = src;
		st->ep = &mosyle_devices_endpoint;
		st->variant = config_os_name(oses[i]);
		st->total_hint = -1;
		snprintf(st->name, sizeof(st->name), "%s/%s", st->ep->name, st->variant);
		page_window_init(&st->pw, cfg->first_page, r->cfg->fetch.window, r->cfg->fetch.max_pages);
	}
	uv_timer_init(&r->loop, &src->login_timer);
	src->login_timer.data = src;
	src->login_timer_open = true;
}

static void source_free(struct source *src)
{
	for (int i = 0; i < src->nstreams; i++)
		page_window_free(&src->streams[i].pw);
	free(src->streams);
	free(src->discards);
	free(src->load_table);
	if (src->jwt) {
		memset(src->jwt, 0, strlen(src->jwt));
		free(src->jwt);
	}
	buf_free(&src->error);
	buf_free(&src->keybuf);
}

/* ---------- the pump: everything that must run outside callbacks ---------- */

static bool stream_finished(struct stream *st)
{
	return page_window_finished(&st->pw);
}

static void start_pages(struct run *r)
{
	int limit = r->cfg->fetch.concurrency;
	bool progress = true;
	while (progress && r->in_flight < limit) {
		progress = false;
		for (size_t i = 0; i < r->nsources; i++) {
			struct source *src = &r->sources[i];
			if (src->state != SOURCE_FETCHING)
				continue;
			for (int s = 0; s < src->nstreams && r->in_flight < limit; s++) {
				struct stream *st = &src->streams[s];
				int page = page_window_next(&st->pw);
				if (page < 0)
					continue;
				struct page_job *job = job_new(st, page);
				if (!job) {
					page_window_give_up(&st->pw, page, "out of memory");
					source_fail(src, "out of memory starting a page");
					break;
				}
				job->attempt_no = 1;
				job_start(job);
				progress = true;
				if (src->state != SOURCE_FETCHING)
					break;
			}
		}
	}
}

static void cancel_past_end(struct source *src)
{
	struct page_job *job = src->jobs;
	while (job) {
		struct page_job *next = job->next;
		if (job->state != JOB_CLOSING && page_window_past_end(&job->st->pw, job->page)) {
			page_window_abandon(&job->st->pw, job->page);
			job_cancel(job);
		}
		job = next;
	}
}

static void shutdown_run(struct run *r);

static void pump_cb(uv_idle_t *h)
{
	struct run *r = h->data;
	uv_idle_stop(h);
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		if (src->state == SOURCE_FAILING)
			source_reap_failed(src);
		else if (src->state == SOURCE_LOGIN && !src->login && !uv_is_active((uv_handle_t *)&src->login_timer))
			login_start(src);
		else if (src->state == SOURCE_FETCHING)
			cancel_past_end(src);
	}
	start_pages(r);
	bool all_done = true;
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		if (src->state == SOURCE_FETCHING) {
			bool done = true, failed = false;
			for (int s = 0; s < src->nstreams; s++) {
				done &= stream_finished(&src->streams[s]);
				failed |= src->streams[s].pw.failed;
			}
			if (done && src->jobs_live == 0) {
				if (failed) {
					for (int s = 0; s < src->nstreams; s++)
						if (src->streams[s].pw.failed) {
							source_fail(src, "%s: %s", src->streams[s].name,
								    buf_str(&src->streams[s].pw.error));
							break;
						}
				} else {
					source_commit(src);
				}
			}
		}
		if (src->state == SOURCE_FAILING)
			source_reap_failed(src);
		if (src->state != SOURCE_FAILED && src->state != SOURCE_SUCCEEDED)
			all_done = false;
	}
	if (all_done)
		shutdown_run(r);
}

static void pump_arm(struct run *r)
{
	if (!r->shutting_down)
		uv_idle_start(&r->pump, pump_cb);
}

static void http_closed(void *arg)
{
	struct run *r = arg;
	r->http_open = false;
}

static void shutdown_run(struct run *r)
{
	if (r->shutting_down)
		return;
	r->shutting_down = true;
	uv_idle_stop(&r->pump);
	uv_close((uv_handle_t *)&r->pump, NULL);
	uv_close((uv_handle_t *)&r->sigint, NULL);
	uv_close((uv_handle_t *)&r->sigterm, NULL);
	for (size_t i = 0; i < r->nsources; i++)
		if (r->sources[i].login_timer_open) {
			r->sources[i].login_timer_open = false;
			uv_close((uv_handle_t *)&r->sources[i].login_timer, NULL);
		}
	if (r->http_open)
		http_client_close(r->http, http_closed, r);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	struct run *r = h->data;
	if (++r->signals > 1) {
		/* a second signal: stop at once */
		signal(signum, SIG_DFL);
		raise(signum);
		return;
	}
	log_warn(NULL, "%s received: stopping (send it again to exit at once)",
		 signum == SIGINT ? "SIGINT" : "SIGTERM");
	r->interrupted = true;
	/* Stopping libuv's watchers gives both signals their default action
	 * back: a second one ends the process even while the loop is blocked
	 * (the run log write below can wait on the database). */
	uv_signal_stop(&r->sigint);
	uv_signal_stop(&r->sigterm);
	for (size_t i = 0; i < r->nsources; i++)
		if (r->sources[i].state != SOURCE_SUCCEEDED && r->sources[i].state != SOURCE_FAILED)
			source_fail(&r->sources[i], "interrupted by %s before the run finished",
				    signum == SIGINT ? "SIGINT" : "SIGTERM");
	pump_arm(r);
}

/* ---------- report ---------- */

static void print_report(struct run *r, FILE *out)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	fprintf(out, "\ninvsync run %lld: %.1f s\n", r->run_id,
		(double)(util_now_ms() - r->started_ms) / 1000.0);
	fprintf(out, "%-20s %-9s %10s %8s %7s %7s %12s %8s\n", "source", "status", "devices", "pages",
		"wasted", "retries", "MB", "seconds");
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		long pages, wasted, retries;
		uint64_t records, bytes;
		stream_totals(src, &pages, &wasted, &retries, &records, &bytes);
		bool ok = src->state == SOURCE_SUCCEEDED;
		fprintf(out, "%-20s %-9s %10ld %8ld %7ld %7ld %12.1f %8.1f\n", source_name(src),
			ok ? "succeeded" : "failed", ok ? src->loaded : 0L, pages, wasted, retries,
			(double)bytes / 1e6,
			(double)((src->finished_ms ? src->finished_ms : util_now_ms()) - src->started_ms) /
				1000.0);
		for (int s = 0; s < src->nstreams; s++) {
			struct stream *st = &src->streams[s];
			fprintf(out, "  %-18s %-9s %10" PRIu64 " %8ld %7ld %7ld %12.1f\n", st->name, "",
				st->records, st->pw.pages_done, st->pw.pages_wasted, st->pw.retries,
				(double)st->bytes / 1e6);
		}
		if (!ok)
			fprintf(out, "  error: %s\n", buf_str(&src->error));
		struct buf w = BUF_INIT;
		warnings_text(src, &w);
		if (w.len)
			fprintf(out, "  warnings: %s\n", w.data);
		buf_free(&w);
	}
	fprintf(out, "CPU: %.2f s, of which parsing and row encoding %.2f s\n", cpu,
		(double)r->parse_ns / 1e9);
	fflush(out);
}

/* ---------- entry point ---------- */

static int start_control(struct run *r, struct buf *err)
{
	if (pgsink_connect(&r->control, r->cfg->conninfo, err) < 0)
		return -1;
	if (schema_migrate(r->control, r->cfg->schema, err) < 0)
		return -1;
	PGresult *res = PQexec(r->control, "SELECT nextval('run_id_seq')");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_redact(err, PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	r->run_id = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* Take the source's advisory lock for the whole run (released when the
 * control connection closes). */
static int lock_source(struct run *r, struct source *src)
{
	const char *params[1] = {source_name(src)};
	PGresult *res = PQexecParams(r->control,
				     "SELECT pg_try_advisory_lock(hashtext('invsync source ' || $1))", 1,
				     NULL, params, NULL, NULL, 0);
	int ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return ok ? 0 : -1;
}

int run_sync(const struct config *cfg, const struct run_options *opt, struct buf *err)
{
	struct run *r = xcalloc(1, sizeof(*r));
	int rc = -1;
	r->cfg = cfg;
	r->opt = opt;
	r->started_ms = util_now_ms();
	if (uv_loop_init(&r->loop) < 0) {
		buf_puts(err, "cannot create the event loop");
		free(r);
		return -1;
	}
	if (start_control(r, err) < 0)
		goto out_loop;

	struct http_options hopt = {
		.max_total_connections = cfg->fetch.concurrency,
		.max_host_connections = cfg->fetch.per_host,
		.connect_timeout_ms = (long)cfg->fetch.connect_timeout_s * 1000,
		.timeout_ms = (long)cfg->fetch.timeout_s * 1000,
		.first_byte_timeout_ms = (long)cfg->fetch.first_byte_timeout_s * 1000,
		.low_speed_time_s = cfg->fetch.timeout_s,
		.ca_file = cfg->fetch.ca_file,
		.user_agent = "invsync/" INVSYNC_VERSION,
	};
	if (http_client_new(&r->http, &r->loop, &hopt) < 0) {
		buf_puts(err, "cannot initialise libcurl");
		goto out_loop;
	}
	r->http_open = true;
	uv_idle_init(&r->loop, &r->pump);
	r->pump.data = r;
	uv_signal_init(&r->loop, &r->sigint);
	uv_signal_init(&r->loop, &r->sigterm);
	r->sigint.data = r->sigterm.data = r;
	uv_signal_start(&r->sigint, signal_cb, SIGINT);
	uv_signal_start(&r->sigterm, signal_cb, SIGTERM);

	r->nsources = cfg->nsources;
	r->sources = xcalloc(cfg->nsources ? cfg->nsources : 1, sizeof(struct source));
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct source *src = &r->sources[i];
		source_init(r, src, &cfg->sources[i]);
		src->started_ms = util_now_ms();
		if (cfg->sources[i].kind != CONFIG_SOURCE_MOSYLE) {
			buf_puts(&src->error, "this source kind is not supported yet");
			src->state = SOURCE_FAILING;
			continue;
		}
		if (lock_source(r, src) < 0) {
			buf_puts(&src->error, "another invsync run is loading this source right now");
			src->state = SOURCE_FAILED;
			src->recorded = true; /* its row belongs to the other run */
			log_error(source_name(src), "%s", buf_str(&src->error));
			continue;
		}
		if (source_prepare(src) < 0)
			src->state = SOURCE_FAILING;
	}
	pump_arm(r);
	uv_run(&r->loop, UV_RUN_DEFAULT);

	rc = 0;
	for (size_t i = 0; i < r->nsources; i++)
		if (r->sources[i].state != SOURCE_SUCCEEDED)
			rc = 1;
	if (opt && opt->report)
		print_report(r, opt->report);
	for (size_t i = 0; i < r->nsources; i++)
		source_free(&r->sources[i]);
	free(r->sources);
out_loop:
	if (!r->shutting_down && r->http_open) {
		http_client_close(r->http, http_closed, r);
		uv_run(&r->loop, UV_RUN_DEFAULT);
	}
	if (r->control)
		PQfinish(r->control);
	int lc = uv_loop_close(&r->loop);
	if (lc != 0) {
		log_error(NULL, "internal error: event loop closed with handles still open");
		if (rc == 0)
			rc = 1;
	}
	free(r);
	return rc;
}
