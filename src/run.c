/* run.c - one sync run: sources, page jobs, retries, backpressure, commit.
 *
 * Objects and their lifetimes:
 *   struct run      the whole run; owns the loop, the HTTP client, the
 *                   control connection (run ids, run log, per-source
 *                   locks) and the rate budgets (one per egress).
 *   struct source   one configured source; owns its table loads and its
 *                   streams, and for Mosyle its session token.
 *   struct load     one endpoint table of a source: a COPY connection and
 *                   the load table the run's rows go into. Each load's
 *                   COPY commits on its own when its streams are done; the
 *                   source's tables are swapped in together, in one
 *                   transaction, once every load is in.
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
#include "metrics.h"
#include "mosyle.h"
#include "obs.h"
#include "progress.h"
#include "pgsink.h"
#include "planner.h"
#include "rate_budget.h"
#include "schema.h"
#include "syncro.h"
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
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>
#include <yajl/yajl_tree.h>

/* How much of an error answer's body is kept for the message. */
#define ERROR_BODY_MAX 512
/* How long writing a failure to the run log waits for a database that went
 * away (a restart) to come back. */
#define RECONNECT_WAIT_MS 15000
/* SQLSTATE lock_not_available: lock_timeout expired. */
#define SQLSTATE_LOCK_TIMEOUT "55P03"
/* A page refused with 429 this many times fails its source. */
#define MAX_THROTTLED 30
/* A page whose session token Mosyle refused this many times fails its
 * source, even though Mosyle accepted those tokens for other pages. */
#define MAX_AUTH_REFUSALS 3

enum source_state {
	SOURCE_QUEUED,    /* waiting for connections (or, in worker mode, a claim) */
	SOURCE_LOGIN,
	SOURCE_FETCHING,
	SOURCE_COMMITTING,
	SOURCE_FAILING,   /* failed; pump() still has to clean up */
	SOURCE_FAILED,
	SOURCE_SUCCEEDED,
	SOURCE_ELSEWHERE, /* worker mode: another worker loads (or loaded) it */
};

enum job_state {
	JOB_FETCHING,
	JOB_BACKOFF,
	JOB_WAIT_AUTH,    /* refused with an old token: waits for the renewal */
	JOB_CLOSING,
};

struct run;
struct source;
struct snapshot;

/* A rate budget shared by the Syncro sources of one egress. */
struct budget {
	struct run *run;
	char *name;
	struct rate_budget rb;
	uv_timer_t timer; /* wakes the pump when a token is due */
	uint64_t throttled;
	unsigned long long first_ms, last_ms; /* first and last request let through */
};

struct load {
	struct source *src;
	const struct endpoint *ep;
	struct pgsink *sink;
	char *load_table;
	char *cursor;     /* incremental endpoints: where this run starts */
	int *discards;    /* attempts whose rows are dropped at commit */
	size_t ndiscards, discards_cap;
	int jobs_live;
	bool ending;      /* COPY end sent */
	bool ended;       /* COPY committed */
	long loaded;      /* after the swap: rows current (or added) */
};

struct stream {
	struct source *src;
	struct load *load;
	const struct endpoint *ep;
	const char *variant; /* OS name for per-OS streams */
	char name[48];       /* "devices/ios" */
	struct page_window pw;
	uint64_t bytes;
	uint64_t records;
	uint64_t unkeyed;
	long total_hint;
	long throttled;      /* 429 answers */
	long loaded;         /* rows current after the swap, -1 unknown */
	unsigned long long first_ms, done_ms; /* first request sent; last page in */
	struct buf note;     /* "not a district account (...)" */
};

struct page_job {
	struct stream *st;
	enum job_state state;
	int page;
	int attempt_no;   /* 1 for the first try */
	int attempt_id;   /* staged with every row of this attempt */
	int throttled_no; /* 429s this page received */
	unsigned jwt_gen; /* session token generation the request carried */
	int auth_renewals;
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
	struct buf api_error;
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
	bool mosyle;
	/* Mosyle session token */
	char *jwt;
	unsigned jwt_gen;
	unsigned long long jwt_at_ms;
	bool renewing;    /* a new token is being fetched; pages wait */
	bool jwt_accepted; /* Mosyle answered a page sent with the current token */
	long renewals;
	struct http_transfer *login;
	int login_attempts;
	uv_timer_t login_timer;
	bool login_timer_open;
	/* Syncro */
	struct budget *budget;
	struct load *loads;
	int nloads;
	struct stream *streams;
	int nstreams;
	int next_attempt;
	int next_stream;   /* where start_pages() begins next time */
	struct page_job *jobs;
	int jobs_live;
	struct buf error;
	struct buf keybuf;
	uint64_t nul_replaced;
	uint64_t bad_values;
	long loaded;
	unsigned long long started_ms, finished_ms, index_started_ms;
	bool recorded; /* the final sync_runs update is written */
	bool indexing; /* succeeded; its new partitions are being vacuumed and indexed */
	bool excluded; /* not one of the sources asked for (--source) */
	double last_success_s; /* Unix time of the last succeeded run, 0: none */
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
	struct budget *budgets;
	size_t nbudgets;
	int in_flight;
	size_t next_source; /* where start_pages() begins next time */
	uint64_t parse_ns; /* CPU time spent parsing and encoding rows */
	uv_idle_t pump;
	uv_signal_t sigint, sigterm;
	int signals;
	bool interrupted;
	bool shutting_down;
	bool control_gone; /* lost, and connecting again failed: give up on it */
	int db_conns;      /* loading connections open */
	/* worker mode */
	bool worker;
	char worker_id[128];
	uv_timer_t queue_timer; /* lease renewal, and polling for work */
	bool queue_timer_open;
	bool queue_drained;     /* nothing left to claim, nobody else loading */
	/* progress and metrics */
	struct snapshot *snap;
	uv_timer_t obs_timer;
	bool obs_timer_open;
	unsigned long long metrics_due_ms;
	unsigned long long started_ms;
	long long started_s; /* wall clock */
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

static void add_discard(struct load *ld, int attempt)
{
	if (ld->ndiscards == ld->discards_cap) {
		ld->discards_cap = ld->discards_cap ? ld->discards_cap * 2 : 32;
		ld->discards = xrealloc(ld->discards, ld->discards_cap * sizeof(int));
	}
	ld->discards[ld->ndiscards++] = attempt;
}

static void discard_cb(void *arg, int attempt)
{
	add_discard(arg, attempt);
}

static const char *source_name(const struct source *src)
{
	return src->cfg->name;
}

/* The "error" member of a small JSON error answer ({"error":"Not
 * authorized..."}), or of its first element when "error" holds a list;
 * appended to out. */
static void json_error_text(struct buf *out, const char *body)
{
	yajl_val root = yajl_tree_parse(body, NULL, 0);
	if (!root)
		return;
	static const char *const keys[][2] = {{"error", NULL}, {"message", NULL}, {"errors", NULL}};
	for (size_t i = 0; i < ARRAY_SIZE(keys) && !out->len; i++) {
		const char *path[2] = {keys[i][0], NULL};
		yajl_val v = yajl_tree_get(root, path, yajl_t_any);
		if (v && YAJL_IS_ARRAY(v) && v->u.array.len > 0)
			v = v->u.array.values[0];
		const char *text = v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
		if (text)
			log_redact(out, text);
	}
	yajl_tree_free(root);
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
			  long *throttled, uint64_t *records, uint64_t *bytes)
{
	*pages = *wasted = *retries = *throttled = 0;
	*records = *bytes = 0;
	for (int i = 0; i < src->nstreams; i++) {
		const struct stream *st = &src->streams[i];
		*pages += st->pw.pages_done;
		*wasted += st->pw.pages_wasted;
		*retries += st->pw.retries;
		*throttled += st->throttled;
		*records += st->records;
		*bytes += st->bytes;
	}
}

/* SQL that records the per-endpoint figures (numbers and our own endpoint
 * names only; the source name and notes are escaped literals). */
static void endpoint_rows_sql(struct buf *sql, const struct source *src, PGconn *conn,
			      const char *lit_source)
{
	buf_printf(sql, "INSERT INTO sync_run_endpoints (run_id, source, endpoint, pages,"
			" pages_wasted, records, bytes, retries, throttled, total_hint, note) VALUES ");
	for (int i = 0; i < src->nstreams; i++) {
		const struct stream *st = &src->streams[i];
		char total[24] = "NULL";
		if (st->total_hint >= 0)
			snprintf(total, sizeof(total), "%ld", st->total_hint);
		char *note = st->note.len ? PQescapeLiteral(conn, st->note.data, st->note.len) : NULL;
		buf_printf(sql, "%s(%lld, %s, '%s', %ld, %ld, %" PRIu64 ", %" PRIu64 ", %ld, %ld, %s, %s)",
			   i ? ", " : "", src->run->run_id, lit_source, st->name, st->pw.pages_done,
			   st->pw.pages_wasted, st->records, st->bytes, st->pw.retries, st->throttled,
			   total, note ? note : "NULL");
		PQfreemem(note);
	}
}

static void warnings_text(const struct source *src, struct buf *w)
{
	for (int i = 0; i < src->nstreams; i++) {
		const struct stream *st = &src->streams[i];
		if (st->pw.warning.len)
			buf_printf(w, "%s%s: %s", w->len ? "; " : "", st->name, buf_str(&st->pw.warning));
		if (st->unkeyed)
			buf_printf(w, "%s%s: %" PRIu64 " records without an identifier were skipped",
				   w->len ? "; " : "", st->name, st->unkeyed);
		if (st->note.len)
			buf_printf(w, "%s%s: %s", w->len ? "; " : "", st->name, st->note.data);
	}
	if (src->nul_replaced)
		buf_printf(w, "%s%" PRIu64 " NUL characters replaced by U+FFFD", w->len ? "; " : "",
			   src->nul_replaced);
	if (src->bad_values)
		buf_printf(w, "%s%" PRIu64 " values could not be converted and were stored as NULL"
			      " (the full record keeps them)",
			   w->len ? "; " : "", src->bad_values);
	if (src->renewals)
		buf_printf(w, "%sthe session token was renewed %ld time%s", w->len ? "; " : "",
			   src->renewals, src->renewals == 1 ? "" : "s");
}

/* SET list shared by the succeeded and failed updates. */
static void run_figures_sql(struct buf *sql, const struct source *src)
{
	long pages, wasted, retries, throttled;
	uint64_t records, bytes;
	stream_totals(src, &pages, &wasted, &retries, &throttled, &records, &bytes);
	/* clock_timestamp(): now() would be the start of the swap transaction */
	buf_printf(sql, "finished_at = clock_timestamp(), pages = %ld, pages_wasted = %ld,"
			" records = %" PRIu64 ", bytes = %" PRIu64 ", retries = %ld,"
			" throttled = %ld, token_renewals = %ld, nul_replaced = %" PRIu64,
		   pages, wasted, records, bytes, retries, throttled, src->renewals,
		   src->nul_replaced);
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

/* Drop this run's load tables of a failed source (best effort: a later
 * run of the source drops what is left). */
static void drop_load_tables(struct source *src)
{
	struct run *r = src->run;
	if (r->control_gone || PQstatus(r->control) != CONNECTION_OK)
		return;
	const char *params[1] = {source_name(src)};
	struct buf err = BUF_INIT;
	/* a closed COPY connection's backend may hold its lock a moment more */
	PQclear(PQexec(r->control, "SET lock_timeout = '5s'"));
	if (control_exec(r, "SELECT drop_load_tables($1, -1)", 1, params, &err) < 0)
		log_warn(source_name(src), "could not drop the run's load tables (the next run"
					   " will): %s", buf_str(&err));
	PQclear(PQexec(r->control, "RESET lock_timeout"));
	buf_free(&err);
}

static void queue_mark_failed(struct source *src);

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
		endpoint_rows_sql(&sql, src, r->control, lit);
		if (control_exec_failure(r, sql.data, 0, NULL, &err) < 0)
			log_error(source_name(src), "could not record endpoint figures: %s", buf_str(&err));
	}
	PQfreemem(lit);
	buf_free(&sql);
	buf_free(&w);
	buf_free(&err);
	drop_load_tables(src);
	queue_mark_failed(src);
}

/* ---------- page jobs ---------- */

static void job_closed(uv_handle_t *h)
{
	struct page_job *job = h->data;
	jstream_free(job->js);
	buf_free(&job->inner_status);
	buf_free(&job->inner_info);
	buf_free(&job->outer_status);
	buf_free(&job->api_error);
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
	job->st->load->jobs_live--;
	job->state = JOB_CLOSING;
	uv_timer_stop(&job->timer);
	uv_close((uv_handle_t *)&job->timer, job_closed);
}

/* The rows this attempt sent, if any, are dropped at commit. */
static void job_discard_rows(struct page_job *job)
{
	if (job->records > 0)
		add_discard(job->st->load, job->attempt_id);
	job->records = 0;
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
		job_discard_rows(job);
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
		st->unkeyed++;
		return 0;
	}
	job->signature = fnv1a(job->signature ? job->signature : 0xcbf29ce484222325ull, key, keylen);
	job->signature = fnv1a(job->signature, "\n", 1);
	struct endpoint_row_ctx ctx = {job->attempt_id, job->page, st->variant};
	struct pgsink *sink = st->load->sink;
	src->bad_values += (uint64_t)st->ep->encode_row(pgsink_buf(sink), rec, key, keylen, &ctx);
	job->records++;
	if (pgsink_rows_added(sink) < 0)
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
	} else if (cid == ep->cap_error) {
		buf_reset(&job->api_error);
		buf_append(&job->api_error, v->text, v->len);
	} else if (strcmp(ep->spec.captures[id], "status") == 0) {
		buf_reset(&job->outer_status);
		buf_append(&job->outer_status, v->text, v->len);
	}
}

static int job_on_data(void *arg, const char *data, size_t len)
{
	struct page_job *job = arg;
	struct source *src = job->st->src;
	struct pgsink *sink = job->st->load->sink;
	if (src->state != SOURCE_FETCHING)
		return -ECANCELED;
	if (job->status == 0)
		job->status = http_status(job->xfer);
	if (job->status == 200 && pgsink_congested(sink)) {
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

/* The request headers; auth holds the secret one and is wiped by the
 * caller. */
static const char *const *job_headers(struct source *src, struct buf *auth, bool json_body)
{
	static const char *headers[4];
	size_t n = 0;
	buf_reset(auth);
	buf_printf(auth, "Authorization: Bearer %s", src->mosyle ? src->jwt : src->cfg->api_key);
	if (json_body)
		headers[n++] = "Content-Type: application/json";
	headers[n++] = "Accept: application/json";
	headers[n++] = auth->data;
	headers[n] = NULL;
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
	job->jwt_gen = src->jwt_gen;
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
	buf_reset(&job->api_error);
	buf_reset(&job->errbody);
	buf_reset(&job->reason);
	jstream_reset(job->js);

	buf_printf(&url, "%s%s", src->cfg->base_url, st->ep->path);
	struct endpoint_request ereq = {src->cfg, st->variant, job->page, st->load->cursor,
					r->started_s};
	st->ep->request(&url, &body, &ereq);
	struct http_request req = {
		.method = body.len ? "POST" : "GET",
		.url = url.data,
		.headers = job_headers(src, &auth, body.len > 0),
		.body = body.data,
		.body_len = body.len,
		.on_data = job_on_data,
		.on_done = job_on_done,
		.arg = job,
	};
	int rc = http_start(r->http, &req, &job->xfer);
	if (!st->first_ms)
		st->first_ms = util_now_ms();
	/* the request held secrets: wipe our copies */
	if (body.data)
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

/* Take a token (0) or say how long until one is due. */
static uint64_t budget_take(struct budget *b)
{
	unsigned long long now = util_now_ms();
	uint64_t wait = rate_budget_take(&b->rb, now);
	if (wait == 0) {
		if (!b->first_ms)
			b->first_ms = now;
		b->last_ms = now;
	}
	return wait;
}

/* Wait for the source's rate budget, if it has one: 0 when the request
 * may go now (its token is taken), or how long to wait. */
static uint64_t budget_wait(struct source *src)
{
	if (!src->budget)
		return 0;
	return budget_take(src->budget);
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
	if (src->renewing) {
		job->state = JOB_WAIT_AUTH; /* pump() starts it with the new token */
		return;
	}
	uint64_t wait = budget_wait(src);
	if (wait > 0) {
		uv_timer_start(&job->timer, job_backoff_cb, wait, 0);
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
	buf_init(&job->api_error);
	buf_init(&job->errbody);
	buf_init(&job->reason);
	uv_timer_init(&src->run->loop, &job->timer);
	job->timer.data = job;
	job->next = src->jobs;
	if (src->jobs)
		src->jobs->prev = job;
	src->jobs = job;
	src->jobs_live++;
	st->load->jobs_live++;
	return job;
}

/* The page failed in a way worth another try: schedule it, or give up. */
static void job_retry_or_fail(struct page_job *job, long retry_after_s, const char *reason)
{
	struct stream *st = job->st;
	struct source *src = st->src;
	const struct config_fetch *f = &src->run->cfg->fetch;
	job_discard_rows(job);
	if (job->attempt_no <= f->retries) {
		unsigned long long delay = (unsigned long long)f->retry_delay_ms << (job->attempt_no - 1);
		/* full jitter in [delay/2, delay*3/2): retries of many pages spread out */
		delay = delay / 2 + (delay ? (unsigned long long)rand() % (delay + 1) : 0);
		/* the server's Retry-After when it asks for longer */
		unsigned long long ra = http_retry_after_ms(retry_after_s, 0);
		if (ra > delay)
			delay = ra;
		log_event(LOG_LEVEL_WARN, source_name(src), st->name, job->page, "page_retry",
			  "attempt %d failed (%s); retrying in %llu ms", job->attempt_no, reason, delay);
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

/* Syncro answered 429: the whole egress slows down and waits; the page is
 * tried again once the budget allows, without using up its retries. */
static void job_throttled(struct page_job *job, const struct http_result *res)
{
	struct stream *st = job->st;
	struct source *src = st->src;
	job_discard_rows(job);
	st->throttled++;
	if (++job->throttled_no > MAX_THROTTLED) {
		source_fail(src, "%s page %d: Syncro refused it with 429 %d times; giving up",
			    st->name, job->page, job->throttled_no - 1);
		job_free(job);
		return;
	}
	uint64_t wait_ms = http_retry_after_ms(res->retry_after_s,
					       src->run->cfg->fetch.syncro_backoff_s);
	if (src->budget) {
		rate_budget_penalty(&src->budget->rb, wait_ms, util_now_ms());
		src->budget->throttled++;
	}
	char why[HTTP_WHY_MAX];
	log_event(LOG_LEVEL_WARN, source_name(src), st->name, job->page, "throttled",
		  "rate limited (%s); the egress waits %" PRIu64 " ms and slows down",
		  http_result_why(res, why, sizeof(why)), wait_ms);
	job->state = JOB_BACKOFF;
	uv_timer_start(&job->timer, job_backoff_cb, wait_ms, 0);
}

/* Mosyle refused the session token on this page. A page that carried a
 * token since replaced is simply tried again with the new one; otherwise
 * the token is renewed and the page waits for it. A renewed token refused
 * before Mosyle accepted it for any page fails the source (a fresh token
 * refused: renewing again would not help). One it did accept has expired
 * since (a page that waited out a retry carries it late) and is renewed
 * again, until one page has been refused MAX_AUTH_REFUSALS times. */
static void job_auth_refused(struct page_job *job, const char *what)
{
	struct stream *st = job->st;
	struct source *src = st->src;
	job_discard_rows(job);
	if (!src->mosyle) {
		source_fail(src, "%s page %d: %s", st->name, job->page, what);
		job_free(job);
		return;
	}
	if (job->jwt_gen == src->jwt_gen && !src->renewing) {
		if (src->renewals > 0 && !src->jwt_accepted) {
			source_fail(src, "Mosyle refused a freshly renewed session token on %s page %d"
					 " (%s); check the account's API access",
				    st->name, job->page, what);
			job_free(job);
			return;
		}
		if (job->auth_renewals + 1 >= MAX_AUTH_REFUSALS) {
			source_fail(src, "Mosyle refused the session token on %s page %d %d times (%s),"
					 " though it accepted the same tokens for other pages; check the"
					 " account's access to %s",
				    st->name, job->page, job->auth_renewals + 1, what, st->ep->path);
			job_free(job);
			return;
		}
		log_warn(source_name(src), "%s page %d: Mosyle refused the session token (%s);"
					   " renewing it", st->name, job->page, what);
		src->renewing = true;
	}
	job->auth_renewals++;
	page_window_retry(&st->pw, job->page);
	job->state = JOB_WAIT_AUTH; /* pump() starts it again with the new token */
	pump_arm(src->run);
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
		job_discard_rows(job);
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
		struct buf msg = BUF_INIT;
		if (src->mosyle) {
			log_redact(&reason, buf_str(&job->errbody));
			buf_printf(&msg, "HTTP %ld%s%s", res->status, reason.len ? ": " : "",
				   buf_str(&reason));
		} else {
			json_error_text(&reason, buf_str(&job->errbody));
			buf_printf(&msg, "Syncro refused the API key (HTTP %ld): %s", res->status,
				   reason.len ? reason.data : "no reason given");
			if (st->ep->permission)
				buf_printf(&msg, "; listing %s needs the token permission \"%s\"",
					   st->ep->name, st->ep->permission);
		}
		job_auth_refused(job, msg.data);
		buf_free(&msg);
		goto out;
	}
	if (res->status == 429 && !src->mosyle) {
		job_throttled(job, res);
		goto out;
	}
	if (res->status == 429 || res->status >= 500) {
		buf_printf(&reason, "HTTP %ld", res->status);
		job_retry_or_fail(job, res->retry_after_s, reason.data);
		goto out;
	}
	if (res->status != 200) {
		struct buf text = BUF_INIT;
		json_error_text(&text, buf_str(&job->errbody));
		if (!text.len)
			log_redact(&text, buf_str(&job->errbody));
		source_fail(src, "%s page %d: unexpected HTTP %ld from %s%s%s", st->name, job->page,
			    res->status, st->ep->path, text.len ? ": " : "", buf_str(&text));
		buf_free(&text);
		job_free(job);
		goto out;
	}
	if (jstream_finish(job->js) < 0) {
		/* an empty or cut-off body, or one that is not JSON */
		buf_printf(&reason, "%s", jstream_error(job->js));
		job_retry_or_fail(job, -1, reason.data);
		goto out;
	}
	src->nul_replaced += jstream_stats(job->js)->nul_replaced;

	const char *outer = buf_str(&job->outer_status);
	const char *inner = buf_str(&job->inner_status);
	bool end_marker = false;
	if (src->mosyle && (mosyle_auth_refused(outer) || mosyle_auth_refused(inner))) {
		buf_printf(&reason, "%s", *inner ? inner : outer);
		job_auth_refused(job, reason.data);
		goto out;
	}
	if (src->mosyle && job->jwt_gen == src->jwt_gen)
		src->jwt_accepted = true;
	if (*inner && strcmp(inner, "OK") != 0) {
		if (in_list(st->ep->end_statuses, inner)) {
			end_marker = true;
		} else if (in_list(st->ep->absent_statuses, inner)) {
			/* the account has no such list (a school is not a district) */
			end_marker = true;
			buf_reset(&st->note);
			buf_printf(&st->note, "not available to this account (%s", inner);
			if (job->inner_info.len)
				log_redact(&st->note, ": ");
			log_redact(&st->note, buf_str(&job->inner_info));
			buf_putc(&st->note, ')');
			log_info(source_name(src), "%s: %s", st->name, st->note.data);
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
		job_retry_or_fail(job, -1, "the answer holds no list");
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
	if (page_window_done(&st->pw, &pr) == PAGE_DISCARD)
		job_discard_rows(job);
	if (log_get_level() >= LOG_LEVEL_DEBUG)
		log_event(LOG_LEVEL_DEBUG, source_name(src), st->name, job->page, "page",
			  "%ld records", job->records);
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

/* Close a load's connection, if open: it counts no more against
 * [database] connections. */
static void load_close(struct load *ld)
{
	if (!ld->sink)
		return;
	pgsink_close(ld->sink);
	ld->sink = NULL;
	ld->src->run->db_conns--;
}

static void sink_drain(void *arg)
{
	struct load *ld = arg;
	for (struct page_job *job = ld->src->jobs; job; job = job->next) {
		if (job->st->load != ld || !job->paused || !job->xfer)
			continue;
		job->paused = false;
		http_resume(job->xfer);
		if (pgsink_congested(ld->sink))
			break;
	}
}

static void sink_error(void *arg, const char *reason)
{
	struct load *ld = arg;
	source_fail(ld->src, "loading %s into PostgreSQL failed: %s", ld->ep->name, reason);
}

/* "devices 250\nusers 40": the endpoint figures the swap returns. */
static void read_loaded(struct source *src, const char *text)
{
	while (text && *text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);
		const char *sp = memchr(text, ' ', n);
		if (sp) {
			for (int i = 0; i < src->nstreams; i++) {
				struct stream *st = &src->streams[i];
				if (strlen(st->name) == (size_t)(sp - text) &&
				    strncmp(st->name, text, (size_t)(sp - text)) == 0)
					st->loaded = atol(sp + 1);
			}
		}
		text = nl ? nl + 1 : NULL;
	}
}

/* The reporting indexes are built (or not: the inventory stays committed,
 * the views are slower until the next run of the source builds them). */
static void index_done(void *arg, PGresult *res, const char *error)
{
	struct source *src = arg;
	double secs = (double)(util_now_ms() - src->index_started_ms) / 1000.0;
	if (!res) {
		struct buf e = BUF_INIT;
		log_redact(&e, error);
		log_warn(source_name(src), "building the reporting indexes failed after %.1f s: %s;"
					   " the reporting views read the tables until the next run builds"
					   " them", secs, buf_str(&e));
		buf_free(&e);
	} else {
		bool one = PQntuples(res) == 1 && PQnfields(res) == 2;
		log_event(LOG_LEVEL_INFO, source_name(src), NULL, -1, "indexed",
			  "reporting indexes built: %s in %.1f s", one ? PQgetvalue(res, 0, 0) : "0",
			  secs);
		if (one && !PQgetisnull(res, 0, 1)) {
			/* one a line: "index: reason" */
			struct buf e = BUF_INIT;
			log_redact(&e, PQgetvalue(res, 0, 1));
			for (char *line = e.data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
				nl = strchr(line, '\n');
				if (nl)
					*nl = '\0';
				log_warn(source_name(src), "could not build reporting index %s; the"
							   " views that use it read the table until the"
							   " next run builds it", line);
			}
			buf_free(&e);
		}
	}
	src->indexing = false;
	load_close(&src->loads[0]);
	pump_arm(src->run);
}

static void build_indexes(struct source *src)
{
	const char *params[1] = {source_name(src)};
	src->index_started_ms = util_now_ms();
	if (pgsink_query(src->loads[0].sink, "SELECT built, failed FROM index_partitions($1)", 1,
			 params, index_done, src) < 0)
		index_done(src, NULL, "could not send the query");
}

/* The new partitions are vacuumed and analyzed (or not: autovacuum will),
 * and then indexed. */
static void vacuum_done(void *arg, PGresult *res, const char *error)
{
	struct source *src = arg;
	double secs = (double)(util_now_ms() - src->index_started_ms) / 1000.0;
	if (!res) {
		struct buf e = BUF_INIT;
		log_redact(&e, error);
		log_warn(source_name(src), "vacuuming the new tables failed after %.1f s: %s; the"
					   " reporting views may be slower until autovacuum has been by",
			 secs, buf_str(&e));
		buf_free(&e);
	} else
		log_event(LOG_LEVEL_INFO, source_name(src), NULL, -1, "vacuumed",
			  "new tables vacuumed and analyzed in %.1f s", secs);
	build_indexes(src);
}

/* VACUUM runs outside a transaction, so not in a function: its list of
 * tables comes from source_partitions() (sql/011), quoted by the server.
 * It waits for a table's lock at most lock_timeout (set for the session
 * with the list). It does not skip a locked table: the lock is usually
 * autovacuum's, analyzing the load table it saw committed before the
 * swap, and autovacuum gives way to a waiting VACUUM within a second. */
static void partitions_done(void *arg, PGresult *res, const char *error)
{
	struct source *src = arg;
	if (!res || PQntuples(res) != 1 || PQnfields(res) != 2 || PQgetisnull(res, 0, 1)) {
		if (!res)
			vacuum_done(src, NULL, error);
		else
			build_indexes(src);
		return;
	}
	struct buf sql = BUF_INIT;
	buf_printf(&sql, "VACUUM (ANALYZE, PROCESS_TOAST FALSE) %s", PQgetvalue(res, 0, 1));
	if (pgsink_query(src->loads[0].sink, sql.data, 0, NULL, vacuum_done, src) < 0)
		vacuum_done(src, NULL, "could not send the query");
	buf_free(&sql);
}

static void commit_done(void *arg, PGresult *res, const char *error)
{
	struct source *src = arg;
	struct pgsink *sink = src->loads[0].sink;
	if (!res) {
		/* detaching an old partition needs its table to itself */
		if (strcmp(pgsink_sqlstate(sink), SQLSTATE_LOCK_TIMEOUT) == 0) {
			struct buf tables = BUF_INIT;
			for (int i = 0; i < src->nloads; i++)
				buf_printf(&tables, "%s%s", i ? ", " : "", src->loads[i].ep->table);
			source_fail(src, "could not swap in the new inventory: a query held a lock on"
					 " %s%s for more than %d s", src->nloads > 1 ? "one of " : "",
				    tables.data, src->run->cfg->lock_timeout_s);
			buf_free(&tables);
		} else
			source_fail(src, "committing the new inventory failed: %s", error);
		return;
	}
	if (PQntuples(res) > 0) {
		src->loaded = atol(PQgetvalue(res, 0, 0));
		read_loaded(src, PQgetvalue(res, 0, 1));
	}
	src->state = SOURCE_SUCCEEDED;
	src->recorded = true;
	src->finished_ms = util_now_ms();
	src->last_success_s = (double)time(NULL);
	log_event(LOG_LEVEL_INFO, source_name(src), NULL, -1, "committed", "committed: %ld rows current",
		  src->loaded);
	/* The new inventory is visible: now its new partitions are vacuumed
	 * and analyzed, and get their reporting indexes, outside the swap
	 * transaction (sql/009, sql/011). The source's lock is held until
	 * then, so no other run swaps them out meanwhile. */
	char timeout[32];
	snprintf(timeout, sizeof(timeout), "%ds", src->run->cfg->lock_timeout_s);
	const char *params[2] = {source_name(src), timeout};
	src->indexing = true;
	src->index_started_ms = util_now_ms();
	if (pgsink_query(sink, "SELECT set_config('lock_timeout', $2, false), source_partitions($1)", 2,
			 params, partitions_done, src) < 0)
		partitions_done(src, NULL, "could not send the query");
	pump_arm(src->run);
}

/* Every load is in: swap the source's tables, record the run and commit,
 * in one transaction and one round trip. */
static void source_swap(struct source *src)
{
	struct run *r = src->run;
	struct pgsink *sink = src->loads[0].sink;
	PGconn *conn = pgsink_conn(sink);
	char *lit = PQescapeLiteral(conn, source_name(src), strlen(source_name(src)));
	struct buf sql = BUF_INIT, w = BUF_INIT;
	const char *s = lit ? lit : "''";

	src->state = SOURCE_COMMITTING;
	long pages, wasted, retries, throttled;
	uint64_t records, bytes;
	stream_totals(src, &pages, &wasted, &retries, &throttled, &records, &bytes);
	log_info(source_name(src), "all pages read (%ld pages, %ld wasted, %ld retries, %" PRIu64
				   " records); committing",
		 pages, wasted, retries, records);

	/* lock_timeout bounds the wait for readers of the tables (detaching an
	 * old partition needs its table to itself). The commit is durable
	 * before the run says it succeeded, whatever the server's
	 * synchronous_commit; and once it is flushed, so are the loads'
	 * commits before it, and the VACUUM after it can mark the new rows
	 * visible to all (it cannot while their commit is unflushed). */
	buf_printf(&sql, "BEGIN; SET LOCAL lock_timeout = '%ds'; SET LOCAL synchronous_commit = on;\n",
		   r->cfg->lock_timeout_s);
	endpoint_rows_sql(&sql, src, conn, s);
	buf_puts(&sql, ";\n");
	/* the tables in a fixed order, so two sources never wait on each other */
	for (int i = 0; i < src->nloads; i++) {
		struct load *ld = &src->loads[i];
		const struct endpoint *ep = ld->ep;
		int first = -1, nst = 0;
		for (int k = 0; k < src->nstreams; k++)
			if (src->streams[k].load == ld) {
				if (first < 0)
					first = k;
				nst++;
			}
		/* swap_endpoint() swaps the rows in, then writes the count to
		 * sync_run_endpoints: no function that changes data runs inside
		 * an UPDATE (Citus refuses that on a distributed table). PERFORM
		 * in a DO block, because a SELECT's rows would be taken for the
		 * figures the transaction's last statement returns. No '$' can
		 * end the block early: a source's name is A-Z a-z 0-9 _ . - and
		 * a load table's is made of it. */
		char *tlit = PQescapeLiteral(conn, ld->load_table, strlen(ld->load_table));
		buf_printf(&sql, "DO $swap$BEGIN PERFORM swap_endpoint(%lld, %s, '%s', '%s', %s, '{",
			   r->run_id, s, src->streams[first].name, ep->table, tlit ? tlit : "''");
		for (size_t k = 0; k < ld->ndiscards; k++)
			buf_printf(&sql, "%s%d", k ? "," : "", ld->discards[k]);
		buf_printf(&sql, "}', '%s', %s); END$swap$;\n", ep->key_columns,
			   ep->commit == ENDPOINT_APPEND ? "true" : "false");
		PQfreemem(tlit);
		if (ep->per_os && nst > 0) {
			/* per OS: the rows each OS's stream left current */
			buf_printf(&sql, "UPDATE sync_run_endpoints e SET loaded = coalesce(c.n, 0)"
					 " FROM sync_run_endpoints e2 LEFT JOIN (SELECT os, count(*) AS n"
					 " FROM %s WHERE source = %s GROUP BY os) c"
					 " ON e2.endpoint = '%s/' || c.os"
					 " WHERE e.run_id = %lld AND e.source = %s AND e.endpoint LIKE '%s/%%'"
					 " AND e2.run_id = e.run_id AND e2.source = e.source"
					 " AND e2.endpoint = e.endpoint;\n",
				   ep->table, s, ep->name, r->run_id, s, ep->name);
		}
	}
	warnings_text(src, &w);
	char *wlit = PQescapeLiteral(conn, buf_str(&w), w.len);
	buf_printf(&sql, "UPDATE sync_runs SET status = 'succeeded', warnings = nullif(%s, ''),"
			 " loaded = (SELECT coalesce(sum(loaded), 0) FROM sync_run_endpoints"
			 " WHERE run_id = %lld AND source = %s), ",
		   wlit ? wlit : "''", r->run_id, s);
	run_figures_sql(&sql, src);
	if (r->worker) {
		char *qlit = PQescapeLiteral(conn, r->opt->schedule, strlen(r->opt->schedule));
		buf_printf(&sql, " WHERE run_id = %lld AND source = %s;\n"
				 "UPDATE source_queue SET state = 'done', lease_until = NULL,"
				 " finished_at = clock_timestamp(), run_id = %lld"
				 " WHERE schedule = %s AND source = %s;\n"
				 "SELECT loaded, ", r->run_id, s, r->run_id, qlit ? qlit : "''", s);
		PQfreemem(qlit);
		buf_printf(&sql, "(SELECT string_agg(endpoint || ' ' || loaded, E'\\n') FROM sync_run_endpoints"
				 " WHERE run_id = %lld AND source = %s AND loaded IS NOT NULL)"
				 " FROM sync_runs WHERE run_id = %lld AND source = %s;\nCOMMIT",
			   r->run_id, s, r->run_id, s);
		goto send;
	}
	buf_printf(&sql, " WHERE run_id = %lld AND source = %s RETURNING loaded,"
			 " (SELECT string_agg(endpoint || ' ' || loaded, E'\\n') FROM sync_run_endpoints"
			 " WHERE run_id = %lld AND source = %s AND loaded IS NOT NULL);\nCOMMIT",
		   r->run_id, s, r->run_id, s);
send:
	PQfreemem(lit);
	PQfreemem(wlit);
	if (pgsink_query(sink, sql.data, 0, NULL, commit_done, src) < 0)
		source_fail(src, "could not send the commit");
	buf_free(&sql);
	buf_free(&w);
}

static void load_copy_done(void *arg, PGresult *res, const char *error)
{
	struct load *ld = arg;
	struct source *src = ld->src;
	if (!res) {
		source_fail(src, "loading %s into PostgreSQL failed: %s", ld->ep->name, error);
		return;
	}
	ld->ended = true;
	if (ld != &src->loads[0])
		load_close(ld); /* its rows are committed in the load table */
	pump_arm(src->run);
}

/* Every stream of the load has finished: end its COPY. */
static void load_end(struct load *ld)
{
	struct source *src = ld->src;
	ld->ending = true;
	for (int i = 0; i < src->nstreams; i++)
		if (src->streams[i].load == ld)
			page_window_late_discards(&src->streams[i].pw, discard_cb, ld);
	if (pgsink_copy_end(ld->sink, load_copy_done, ld) < 0)
		source_fail(src, "could not end the COPY of %s", ld->ep->name);
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
	for (int i = 0; i < src->nloads; i++)
		load_close(&src->loads[i]); /* the server rolls a COPY back */
	src->state = SOURCE_FAILED;
	src->finished_ms = util_now_ms();
	log_event(LOG_LEVEL_ERROR, source_name(src), NULL, -1, "failed", "failed: %s",
		  buf_str(&src->error));
	record_failure(src);
}

static void login_start(struct source *src);

static void login_timer_cb(uv_timer_t *t)
{
	struct source *src = t->data;
	if (src->state == SOURCE_LOGIN || (src->state == SOURCE_FETCHING && src->renewing))
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
	bool renewal = src->state == SOURCE_FETCHING && src->renewing;
	if (src->state != SOURCE_LOGIN && !renewal)
		return;
	bool transient = http_result_is_transient(res);
	if (transient && src->login_attempts <= src->run->cfg->fetch.retries) {
		/* as a page's retry, without jitter: there is one login */
		uint64_t delay = http_backoff_ms((unsigned)src->run->cfg->fetch.retry_delay_ms,
						 src->login_attempts, res->retry_after_s);
		char why[HTTP_WHY_MAX];
		log_warn(source_name(src), "login attempt %d failed (%s); retrying in %" PRIu64 " ms",
			 src->login_attempts, http_result_why(res, why, sizeof(why)), delay);
		uv_timer_start(&src->login_timer, login_timer_cb, delay, 0);
		return;
	}
	if (res->curl_code != 0) {
		source_fail(src, "%s failed: cannot reach %s: %s", renewal ? "renewing the session"
					  : "login", src->cfg->base_url, res->error);
		return;
	}
	if (transient) {
		/* a busy or failing server says nothing about the credentials */
		source_fail(src, "%s failed: Mosyle answered HTTP %ld on %s%d attempt%s; try again"
				 " later", renewal ? "renewing the session" : "login", res->status,
			    src->login_attempts > 1 ? "all " : "", src->login_attempts,
			    src->login_attempts > 1 ? "s" : "");
		return;
	}
	char *token = mosyle_login_token(res->captured);
	if (!token) {
		source_fail(src, "%s failed: Mosyle answered HTTP %ld without a token in the "
				 "Authorization header; check access_token, email and password",
			    renewal ? "renewing the session" : "login", res->status);
		return;
	}
	log_add_secret(token);
	if (src->jwt) {
		memset(src->jwt, 0, strlen(src->jwt));
		free(src->jwt);
	}
	src->jwt = token;
	src->jwt_gen++;
	src->jwt_accepted = false;
	src->jwt_at_ms = util_now_ms();
	src->login_attempts = 0;
	if (renewal) {
		src->renewing = false;
		src->renewals++;
		log_event(LOG_LEVEL_INFO, source_name(src), NULL, -1, "token_renewed",
			  "session token renewed");
	} else {
		src->state = SOURCE_FETCHING;
		log_event(LOG_LEVEL_INFO, source_name(src), NULL, -1, "login", "logged in");
	}
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

/* Blocking: a load's connection, load table, cursor and COPY. 0 or -1
 * (source failed, reason set). */
static int load_prepare(struct load *ld, const char *run_id)
{
	struct source *src = ld->src;
	struct run *r = src->run;
	const struct config *cfg = r->cfg;
	const struct endpoint *ep = ld->ep;
	struct buf err = BUF_INIT;
	int rc = -1;

	struct pgsink_callbacks cb = {sink_drain, sink_error, ld};
	if (pgsink_open(&ld->sink, &r->loop, cfg->conninfo, cfg->schema, &cb, &err) < 0) {
		buf_printf(&src->error, "%s", buf_str(&err));
		goto out;
	}
	r->db_conns++;
	PGconn *conn = pgsink_conn(ld->sink);
	/* The load table is created and committed now, so that each table
	 * loads on its own connection; the swap at the end makes them all
	 * current at once. A run that dies leaves it behind for the next run
	 * of the source to drop. */
	const char *stage_params[4] = {ep->table, run_id, source_name(src), cfg->tablespace};
	PGresult *res = PQexecParams(conn, "SELECT stage_rows($1, $2, $3, $4)", 4, NULL,
				     stage_params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		struct buf e = BUF_INIT;
		pgsink_describe_error(&e, res);
		buf_printf(&src->error, "preparing the load of %s: ", ep->name);
		log_redact(&src->error, buf_str(&e));
		buf_free(&e);
		PQclear(res);
		goto out;
	}
	ld->load_table = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (ep->cursor_sql) {
		const char *cparams[1] = {source_name(src)};
		res = PQexecParams(conn, ep->cursor_sql, 1, NULL, cparams, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			struct buf e = BUF_INIT;
			pgsink_describe_error(&e, res);
			buf_printf(&src->error, "reading where %s left off: ", ep->name);
			log_redact(&src->error, buf_str(&e));
			buf_free(&e);
			PQclear(res);
			goto out;
		}
		if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
			ld->cursor = xstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	struct buf copy = BUF_INIT;
	buf_printf(&copy, "COPY %s (%s) FROM STDIN", ld->load_table, ep->copy_columns);
	int crc = pgsink_copy_begin(ld->sink, copy.data, &err);
	buf_free(&copy);
	if (crc < 0) {
		buf_printf(&src->error, "preparing the load of %s: %s", ep->name, buf_str(&err));
		goto out;
	}
	rc = 0;
out:
	buf_free(&err);
	return rc;
}

/* Blocking preparation before the loop runs: run log row, leftovers of
 * dead runs, loads. Returns 0 or -1 (source failed, reason set). */
static int source_prepare(struct source *src)
{
	struct run *r = src->run;
	struct buf err = BUF_INIT;
	char run_id[24];
	snprintf(run_id, sizeof(run_id), "%lld", r->run_id);
	const char *params[3] = {run_id, source_name(src), src->mosyle ? "mosyle" : "syncro"};
	int rc = -1;

	if (control_exec(r, "INSERT INTO sync_runs (run_id, source, kind) VALUES ($1, $2, $3)", 3,
			 params, &err) < 0) {
		buf_printf(&src->error, "cannot write the run log: %s", buf_str(&err));
		goto out;
	}
	/* Our run holds the source's lock (taken in run_sync), so a 'running'
	 * row of an older run is one whose process died, and so are load
	 * tables of other runs. */
	if (control_exec(r, "UPDATE sync_runs SET status = 'failed', finished_at = now(),"
			    " error = 'abandoned: the process running it stopped before it finished'"
			    " WHERE source = $2 AND status = 'running' AND run_id <> $1",
			 2, params, &err) < 0) {
		buf_printf(&src->error, "cannot update the run log: %s", buf_str(&err));
		goto out;
	}
	if (control_exec(r, "SELECT drop_load_tables($2, $1)", 2, params, &err) < 0) {
		buf_printf(&src->error, "cannot drop the load tables of an abandoned run: %s",
			   buf_str(&err));
		goto out;
	}
	for (int i = 0; i < src->nloads; i++)
		if (load_prepare(&src->loads[i], run_id) < 0)
			goto out;
	rc = 0;
out:
	buf_free(&err);
	return rc;
}

static struct budget *budget_for(struct run *r, const char *egress)
{
	const char *name = egress ? egress : "default";
	for (size_t i = 0; i < r->nbudgets; i++)
		if (strcmp(r->budgets[i].name, name) == 0)
			return &r->budgets[i];
	return NULL;
}

static void source_init(struct run *r, struct source *src, const struct config_source *cfg)
{
	static const enum config_os oses[] = {CONFIG_OS_IOS, CONFIG_OS_MAC, CONFIG_OS_TVOS,
					      CONFIG_OS_VISIONOS};
	const struct endpoint *const *eps = cfg->kind == CONFIG_SOURCE_MOSYLE ? mosyle_endpoints
									      : syncro_endpoints;
	size_t neps = 0;
	while (eps[neps])
		neps++;
	src->run = r;
	src->cfg = cfg;
	src->mosyle = cfg->kind == CONFIG_SOURCE_MOSYLE;
	src->state = SOURCE_QUEUED;
	if (!src->mosyle)
		src->budget = budget_for(r, cfg->egress);
	buf_init(&src->error);
	buf_init(&src->keybuf);
	src->loads = xcalloc(neps ? neps : 1, sizeof(struct load));
	src->streams = xcalloc(neps * ARRAY_SIZE(oses) + 1, sizeof(struct stream));
	for (size_t e = 0; e < neps; e++) {
		const struct endpoint *ep = eps[e];
		if (!config_source_wants(cfg, ep->name))
			continue;
		struct load *ld = &src->loads[src->nloads++];
		ld->src = src;
		ld->ep = ep;
		for (size_t o = 0; o < (ep->per_os ? ARRAY_SIZE(oses) : 1); o++) {
			if (ep->per_os && !(cfg->os_mask & oses[o]))
				continue;
			struct stream *st = &src->streams[src->nstreams++];
			st->src = src;
			st->load = ld;
			st->ep = ep;
			st->variant = ep->per_os ? config_os_name(oses[o]) : NULL;
			st->total_hint = -1;
			st->loaded = -1;
			buf_init(&st->note);
			if (st->variant)
				snprintf(st->name, sizeof(st->name), "%s/%s", ep->name, st->variant);
			else
				snprintf(st->name, sizeof(st->name), "%s", ep->name);
			page_window_init(&st->pw, ep->first_page >= 0 ? ep->first_page : cfg->first_page,
					 r->cfg->fetch.window, r->cfg->fetch.max_pages);
			if (ep->paging == ENDPOINT_SINGLE)
				page_window_set_single(&st->pw);
		}
	}
	uv_timer_init(&r->loop, &src->login_timer);
	src->login_timer.data = src;
	src->login_timer_open = true;
}

static void source_free(struct source *src)
{
	for (int i = 0; i < src->nstreams; i++) {
		page_window_free(&src->streams[i].pw);
		buf_free(&src->streams[i].note);
	}
	for (int i = 0; i < src->nloads; i++) {
		free(src->loads[i].discards);
		free(src->loads[i].load_table);
		free(src->loads[i].cursor);
	}
	free(src->streams);
	free(src->loads);
	if (src->jwt) {
		memset(src->jwt, 0, strlen(src->jwt));
		free(src->jwt);
	}
	buf_free(&src->error);
	buf_free(&src->keybuf);
}



/* ---------- snapshots, for progress lines and metrics ---------- */

/* What run.c knows, as obs.h shows it. The arrays live in the run and are
 * refilled at each snapshot. */
struct snapshot {
	struct obs_run run;
	struct obs_source *sources;
	struct obs_endpoint *endpoints;
	size_t cap_sources, cap_endpoints;
};

static enum obs_state obs_state_of(const struct source *src)
{
	switch (src->state) {
	case SOURCE_QUEUED: return OBS_QUEUED;
	case SOURCE_LOGIN:
	case SOURCE_FETCHING: return OBS_RUNNING;
	case SOURCE_COMMITTING: return OBS_COMMITTING;
	case SOURCE_SUCCEEDED: return OBS_SUCCEEDED;
	case SOURCE_FAILING:
	case SOURCE_FAILED: return OBS_FAILED;
	case SOURCE_ELSEWHERE: return OBS_SKIPPED;
	}
	return OBS_FAILED;
}

static void snapshot_fill(struct run *r, struct snapshot *sn)
{
	int nst = 0;
	for (size_t i = 0; i < r->nsources; i++)
		nst += r->sources[i].nstreams;
	if (sn->cap_sources < r->nsources) {
		sn->cap_sources = r->nsources;
		sn->sources = xrealloc(sn->sources, sn->cap_sources * sizeof(*sn->sources));
	}
	if (sn->cap_endpoints < (size_t)nst) {
		sn->cap_endpoints = (size_t)nst;
		sn->endpoints = xrealloc(sn->endpoints, sn->cap_endpoints * sizeof(*sn->endpoints));
	}
	double now = (double)r->started_s + (double)(util_now_ms() - r->started_ms) / 1000.0;
	size_t ns = 0, ne = 0;
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		if (src->excluded)
			continue;
		struct obs_source *o = &sn->sources[ns++];
		memset(o, 0, sizeof(*o));
		o->name = source_name(src);
		o->kind = src->mosyle ? "mosyle" : "syncro";
		o->state = obs_state_of(src);
		bool started = src->state != SOURCE_QUEUED && src->state != SOURCE_ELSEWHERE;
		o->started_s = started ? (double)r->started_s +
						 (double)(src->started_ms - r->started_ms) / 1000.0
				       : 0;
		o->elapsed_s = started ? (double)((src->finished_ms ? src->finished_ms : util_now_ms()) -
						  src->started_ms) / 1000.0
				       : 0;
		o->loaded = src->state == SOURCE_SUCCEEDED ? src->loaded : -1;
		o->last_success_s = src->last_success_s;
		o->error = src->state == SOURCE_FAILED || src->state == SOURCE_FAILING ||
				   src->state == SOURCE_ELSEWHERE
			   ? (src->error.len ? src->error.data : NULL)
			   : NULL;
		o->endpoints = &sn->endpoints[ne];
		bool unknown = false;
		for (int k = 0; k < src->nstreams; k++) {
			struct stream *st = &src->streams[k];
			struct obs_endpoint *e = &sn->endpoints[ne++];
			e->name = st->name;
			e->pages_done = st->pw.pages_done;
			if (st->pw.single)
				e->pages_planned = 1;
			else if (st->pw.end_page != INT32_MAX)
				e->pages_planned = st->pw.end_page - st->pw.first_page + 1;
			else if (st->pw.total_known && !st->pw.beyond_plan)
				e->pages_planned = st->pw.planned_end - st->pw.first_page + 1;
			else
				e->pages_planned = -1;
			if (e->pages_planned >= 0 && e->pages_planned < e->pages_done)
				e->pages_planned = e->pages_done;
			e->records = st->records;
			e->bytes = st->bytes;
			e->retries = st->pw.retries;
			e->throttled = st->throttled;
			e->finished = st->done_ms != 0;
			o->nendpoints++;
			o->pages_done += e->pages_done;
			o->records += e->records;
			o->bytes += e->bytes;
			o->retries += e->retries;
			o->throttled += e->throttled;
			if (e->pages_planned < 0)
				unknown = true;
			else
				o->pages_planned += e->pages_planned;
		}
		if (unknown)
			o->pages_planned = -1;
	}
	sn->run.run_id = r->run_id;
	sn->run.started_s = (double)r->started_s;
	sn->run.now_s = now;
	sn->run.sources = sn->sources;
	sn->run.nsources = ns;
}

static void snapshot_free(struct snapshot *sn)
{
	free(sn->sources);
	free(sn->endpoints);
}

static void write_metrics(struct run *r)
{
	struct buf err = BUF_INIT;
	if (metrics_write(r->opt->metrics_file, &r->snap->run, &err) < 0)
		log_warn(NULL, "could not write the metrics file: %s", buf_str(&err));
	buf_free(&err);
}

/* Every second: the progress display, and the metrics file when due. */
static void obs_timer_cb(uv_timer_t *t)
{
	struct run *r = t->data;
	snapshot_fill(r, r->snap);
	if (r->opt->progress)
		progress_update(r->opt->progress, &r->snap->run);
	if (r->opt->metrics_file && util_now_ms() >= r->metrics_due_ms) {
		write_metrics(r);
		r->metrics_due_ms = util_now_ms() + (unsigned long long)r->opt->metrics_interval_s * 1000;
	}
}

/* ---------- starting sources, and the work queue of worker mode ---------- */

static int lock_source(struct run *r, struct source *src);

/* Blocking: the source's lock, run log row and loads; then its first
 * request can go. */
static void source_start(struct source *src)
{
	struct run *r = src->run;
	src->started_ms = util_now_ms();
	if (lock_source(r, src) < 0) {
		/* not a failure: the other run is loading it (and its row in
		 * sync_runs is that run's) */
		buf_puts(&src->error, "another invsync run is loading this source right now; skipped");
		src->state = SOURCE_ELSEWHERE;
		src->recorded = true;
		src->finished_ms = src->started_ms;
		log_warn(source_name(src), "%s", buf_str(&src->error));
		if (r->worker) {
			/* leave the claim to expire: if that run dies, a worker
			 * takes the source over */
			const char *params[2] = {r->opt->schedule, source_name(src)};
			PQclear(PQexecParams(r->control, "UPDATE source_queue SET worker = NULL"
							 " WHERE schedule = $1 AND source = $2",
					     2, NULL, params, NULL, NULL, 0));
		}
		return;
	}
	if (source_prepare(src) < 0) {
		src->state = SOURCE_FAILING;
		return;
	}
	src->state = src->mosyle ? SOURCE_LOGIN : SOURCE_FETCHING;
	log_info(source_name(src), "started (%d endpoint table%s)", src->nloads,
		 src->nloads == 1 ? "" : "s");
}

/* Whether a source needing n loading connections may start now: within
 * [database] connections, or alone when it needs more than that. */
static bool conns_allow(struct run *r, int n)
{
	return r->db_conns == 0 || r->db_conns + n <= r->cfg->db_connections;
}

/* Put this run's sources in the schedule's queue (every worker does it,
 * so whichever starts first creates them). 0 or -1. */
static int queue_fill(struct run *r, struct buf *err)
{
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		if (src->excluded)
			continue;
		const char *params[3] = {r->opt->schedule, source_name(src),
					 src->mosyle ? "mosyle" : "syncro"};
		/* a source that failed in an earlier run of the schedule is
		 * tried again */
		if (control_exec(r, "INSERT INTO source_queue (schedule, source, kind)"
				    " VALUES ($1, $2, $3) ON CONFLICT (schedule, source) DO UPDATE"
				    " SET state = 'pending', worker = NULL, lease_until = NULL"
				    " WHERE source_queue.state = 'failed'",
				 3, params, err) < 0)
			return -1;
	}
	return 0;
}

/* The names of the sources this worker may still claim, as a text[]
 * literal (escaped by libpq). */
static void claimable_array(struct run *r, struct buf *out)
{
	buf_putc(out, '{');
	bool first = true;
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		if (src->excluded || src->state != SOURCE_QUEUED)
			continue;
		buf_printf(out, "%s\"", first ? "" : ",");
		for (const char *p = source_name(src); *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(out, '\\');
			buf_putc(out, *p);
		}
		buf_putc(out, '"');
		first = false;
	}
	buf_putc(out, '}');
}

/* Claim one source of the schedule that nobody holds (pending, or its
 * lease expired: its worker died). Returns it, or NULL. */
static struct source *queue_claim(struct run *r)
{
	struct buf names = BUF_INIT;
	claimable_array(r, &names);
	char lease[16], run_id[24];
	snprintf(lease, sizeof(lease), "%d", r->opt->lease_s);
	snprintf(run_id, sizeof(run_id), "%lld", r->run_id);
	const char *params[5] = {r->opt->schedule, names.data, r->worker_id, lease, run_id};
	PGresult *res = PQexecParams(
		r->control,
		"UPDATE source_queue q SET state = 'claimed', worker = $3, run_id = $5,"
		" lease_until = clock_timestamp() + make_interval(secs => $4::int),"
		" attempts = q.attempts + 1, claimed_at = clock_timestamp()"
		" FROM (SELECT source FROM source_queue WHERE schedule = $1 AND source = ANY ($2::text[])"
		"       AND (state = 'pending' OR (state = 'claimed' AND lease_until < clock_timestamp()))"
		"       ORDER BY source LIMIT 1 FOR UPDATE SKIP LOCKED) c"
		" WHERE q.schedule = $1 AND q.source = c.source RETURNING q.source",
		5, NULL, params, NULL, NULL, 0);
	buf_free(&names);
	struct source *found = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		struct buf e = BUF_INIT;
		pgsink_describe_error(&e, res);
		log_error(NULL, "claiming a source from the queue failed: %s", buf_str(&e));
		buf_free(&e);
	} else if (PQntuples(res) == 1) {
		const char *name = PQgetvalue(res, 0, 0);
		for (size_t i = 0; i < r->nsources && !found; i++)
			if (strcmp(source_name(&r->sources[i]), name) == 0)
				found = &r->sources[i];
	}
	PQclear(res);
	return found;
}

/* Does anybody still hold, or may anybody still claim, one of our
 * sources? When not, this worker is done. */
static bool queue_has_work(struct run *r)
{
	struct buf names = BUF_INIT;
	claimable_array(r, &names);
	const char *params[2] = {r->opt->schedule, names.data};
	PGresult *res = PQexecParams(r->control,
				     "SELECT count(*) FROM source_queue WHERE schedule = $1"
				     " AND source = ANY ($2::text[]) AND state IN ('pending', 'claimed')",
				     2, NULL, params, NULL, NULL, 0);
	buf_free(&names);
	bool work = PQresultStatus(res) != PGRES_TUPLES_OK || atol(PQgetvalue(res, 0, 0)) > 0;
	PQclear(res);
	return work;
}

/* A failed source's queue row (a succeeded one is marked in its swap
 * transaction). */
static void queue_mark_failed(struct source *src)
{
	struct run *r = src->run;
	if (!r->worker || r->control_gone)
		return;
	const char *params[2] = {r->opt->schedule, source_name(src)};
	struct buf err = BUF_INIT;
	/* interrupted: give the source back, another worker may load it */
	if (control_exec(r, r->interrupted
			    ? "UPDATE source_queue SET state = 'pending', worker = NULL,"
			      " lease_until = NULL WHERE schedule = $1 AND source = $2"
			      " AND state = 'claimed'"
			    : "UPDATE source_queue SET state = 'failed', lease_until = NULL,"
			      " finished_at = clock_timestamp() WHERE schedule = $1 AND source = $2"
			      " AND state = 'claimed'",
			 2, params, &err) < 0)
		log_warn(source_name(src), "could not mark the source failed in the queue: %s",
			 buf_str(&err));
	buf_free(&err);
}

/* Every lease_s / 3: extend the leases of the sources this worker is
 * loading, and look for work again. */
static void queue_timer_cb(uv_timer_t *t)
{
	struct run *r = t->data;
	char lease[16];
	snprintf(lease, sizeof(lease), "%d", r->opt->lease_s);
	const char *params[3] = {r->opt->schedule, r->worker_id, lease};
	struct buf err = BUF_INIT;
	if (!r->control_gone &&
	    control_exec(r, "UPDATE source_queue SET lease_until = clock_timestamp()"
			    " + make_interval(secs => $3::int)"
			    " WHERE schedule = $1 AND worker = $2 AND state = 'claimed'",
			 3, params, &err) < 0)
		log_warn(NULL, "could not renew the leases: %s", buf_str(&err));
	buf_free(&err);
	pump_arm(r);
}

/* Start what may start: queued sources in order within the connection
 * limit, or in worker mode sources claimed from the queue. */
static void admit_sources(struct run *r)
{
	if (!r->worker) {
		for (size_t i = 0; i < r->nsources; i++) {
			struct source *src = &r->sources[i];
			if (src->state != SOURCE_QUEUED || src->excluded)
				continue;
			if (!conns_allow(r, src->nloads))
				break; /* in order: the next source waits for this one */
			source_start(src);
		}
		return;
	}
	if (r->queue_drained || r->shutting_down || r->interrupted)
		return;
	int busy = 0, largest = 1;
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		if (src->state == SOURCE_QUEUED && !src->excluded && src->nloads > largest)
			largest = src->nloads;
		if (src->state >= SOURCE_LOGIN && src->state <= SOURCE_FAILING)
			busy++;
	}
	/* claim while a source of any size would fit */
	while (conns_allow(r, largest)) {
		struct source *src = queue_claim(r);
		if (!src)
			break;
		log_info(source_name(src), "claimed from the queue of schedule %s", r->opt->schedule);
		source_start(src);
		busy++;
	}
	if (busy == 0) {
		/* nothing to claim now: done, unless a source is still held
		 * by another worker (whose lease may yet expire) */
		if (!queue_has_work(r)) {
			r->queue_drained = true;
			for (size_t i = 0; i < r->nsources; i++)
				if (r->sources[i].state == SOURCE_QUEUED)
					r->sources[i].state = SOURCE_ELSEWHERE;
		}
		/* else the queue timer looks again */
	}
}

/* ---------- the pump: everything that must run outside callbacks ---------- */

static void budget_timer_cb(uv_timer_t *t)
{
	struct budget *b = t->data;
	pump_arm(b->run);
}

/* The budget has no token now: wake the pump when it will. */
static void budget_sleep(struct budget *b, uint64_t wait_ms)
{
	if (!uv_is_active((uv_handle_t *)&b->timer) || uv_timer_get_due_in(&b->timer) > wait_ms)
		uv_timer_start(&b->timer, budget_timer_cb, wait_ms, 0);
}

/* Pages waiting for a renewed token go again. */
static void restart_waiting(struct source *src)
{
	struct page_job *job = src->jobs;
	while (job && src->state == SOURCE_FETCHING) {
		struct page_job *next = job->next;
		if (job->state == JOB_WAIT_AUTH) {
			if (page_window_past_end(&job->st->pw, job->page)) {
				page_window_abandon(&job->st->pw, job->page);
				job_free(job);
			} else {
				job->state = JOB_BACKOFF;
				uv_timer_start(&job->timer, job_backoff_cb, 0, 0);
			}
		}
		job = next;
	}
}

/* Start one page of each stream of src that has one to start (within the
 * concurrency limit and, for Syncro, the budget). True if any started. */
static bool start_source_pages(struct run *r, struct source *src, int limit)
{
	bool progress = false;
	if (src->state != SOURCE_FETCHING || src->renewing)
		return false;
	if (src->mosyle && util_now_ms() - src->jwt_at_ms >=
				   (unsigned long long)src->cfg->token_renew_after_s * 1000) {
		log_info(source_name(src), "the session token is %d s old: renewing it",
			 src->cfg->token_renew_after_s);
		src->renewing = true; /* pages in flight finish with the old one */
		return false;
	}
	/* streams in turn, from a rotating start, so that no endpoint waits
	 * for another's pages */
	for (int k = 0; k < src->nstreams && r->in_flight < limit; k++) {
		struct stream *st = &src->streams[(src->next_stream + k) % src->nstreams];
		if (src->budget) {
			uint64_t wait = rate_budget_peek(&src->budget->rb, util_now_ms());
			if (wait > 0) {
				budget_sleep(src->budget, wait);
				break;
			}
		}
		int page = page_window_next(&st->pw);
		if (page < 0)
			continue;
		if (src->budget)
			(void)budget_take(src->budget);
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
	if (src->nstreams)
		src->next_stream = (src->next_stream + 1) % src->nstreams;
	return progress;
}

static void start_pages(struct run *r)
{
	int limit = r->cfg->fetch.concurrency;
	if (r->nsources == 0)
		return;
	/* Rate-limited sources first: a token not spent now is a request
	 * lost to the budget for good, while an unlimited source only waits
	 * a moment for a slot. Then every source in turn, from a rotating
	 * start, so that tenants sharing a budget share it evenly. */
	size_t first = r->next_source++ % r->nsources;
	for (int pass = 0; pass < 2; pass++) {
		bool progress = true;
		while (progress && r->in_flight < limit) {
			progress = false;
			for (size_t k = 0; k < r->nsources && r->in_flight < limit; k++) {
				struct source *src = &r->sources[(first + k) % r->nsources];
				if (pass == 0 && !src->budget)
					continue;
				progress |= start_source_pages(r, src, limit);
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

/* End the COPY of every load whose streams are done, fail the source if a
 * stream failed, swap once every load is in. */
static void source_progress(struct source *src)
{
	for (int s = 0; s < src->nstreams; s++) {
		struct stream *st = &src->streams[s];
		if (!page_window_finished(&st->pw))
			continue;
		if (!st->done_ms)
			st->done_ms = util_now_ms();
		if (st->pw.failed) {
			source_fail(src, "%s: %s", st->name, buf_str(&st->pw.error));
			return;
		}
	}
	bool all_ended = true;
	for (int l = 0; l < src->nloads && src->state == SOURCE_FETCHING; l++) {
		struct load *ld = &src->loads[l];
		if (ld->ended)
			continue;
		all_ended = false;
		if (ld->ending || ld->jobs_live > 0)
			continue;
		bool done = true;
		for (int s = 0; s < src->nstreams; s++)
			if (src->streams[s].load == ld && !src->streams[s].done_ms)
				done = false;
		if (done)
			load_end(ld);
	}
	if (all_ended && src->state == SOURCE_FETCHING && src->jobs_live == 0)
		source_swap(src);
}

static void shutdown_run(struct run *r);

static void pump_cb(uv_idle_t *h)
{
	struct run *r = h->data;
	uv_idle_stop(h);
	admit_sources(r);
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		if (src->state == SOURCE_FAILING) {
			source_reap_failed(src);
		} else if ((src->state == SOURCE_LOGIN || (src->state == SOURCE_FETCHING && src->renewing)) &&
			   !src->login && !uv_is_active((uv_handle_t *)&src->login_timer)) {
			login_start(src);
		} else if (src->state == SOURCE_FETCHING) {
			cancel_past_end(src);
			if (!src->renewing)
				restart_waiting(src);
		}
	}
	start_pages(r);
	bool all_done = true;
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		if (src->state == SOURCE_FETCHING)
			source_progress(src);
		if (src->state == SOURCE_FAILING)
			source_reap_failed(src);
		if ((src->state != SOURCE_FAILED && src->state != SOURCE_SUCCEEDED &&
		     src->state != SOURCE_ELSEWHERE) || src->indexing)
			all_done = false;
	}
	if (all_done)
		shutdown_run(r);
	else if (!r->worker)
		admit_sources(r); /* connections freed by sources that just ended */
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
	for (size_t i = 0; i < r->nbudgets; i++)
		uv_close((uv_handle_t *)&r->budgets[i].timer, NULL);
	if (r->queue_timer_open) {
		r->queue_timer_open = false;
		uv_close((uv_handle_t *)&r->queue_timer, NULL);
	}
	if (r->obs_timer_open) {
		r->obs_timer_open = false;
		uv_close((uv_handle_t *)&r->obs_timer, NULL);
	}
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
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		if (src->state == SOURCE_QUEUED) {
			/* never started: nothing to undo or record */
			buf_printf(&src->error, "interrupted by %s before it started",
				   signum == SIGINT ? "SIGINT" : "SIGTERM");
			src->state = r->worker ? SOURCE_ELSEWHERE : SOURCE_FAILED;
			src->recorded = true;
		} else if (src->state != SOURCE_SUCCEEDED && src->state != SOURCE_FAILED &&
			   src->state != SOURCE_ELSEWHERE) {
			source_fail(src, "interrupted by %s before the run finished",
				    signum == SIGINT ? "SIGINT" : "SIGTERM");
		}
	}
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
	fprintf(out, "%-32s %-9s %10s %8s %7s %7s %5s %10s %8s\n", "source / endpoint", "status",
		"loaded", "pages", "wasted", "retries", "429s", "MB", "seconds");
	for (size_t i = 0; i < r->nsources; i++) {
		struct source *src = &r->sources[i];
		long pages, wasted, retries, throttled;
		uint64_t records, bytes;
		if (src->excluded)
			continue;
		if (src->state == SOURCE_ELSEWHERE) {
			fprintf(out, "%-32s %-9s %s\n", source_name(src), "skipped",
				src->error.len ? buf_str(&src->error)
					       : "claimed by another worker, or already loaded in this"
						 " schedule");
			continue;
		}
		stream_totals(src, &pages, &wasted, &retries, &throttled, &records, &bytes);
		bool ok = src->state == SOURCE_SUCCEEDED;
		fprintf(out, "%-32s %-9s %10ld %8ld %7ld %7ld %5ld %10.1f %8.1f\n", source_name(src),
			ok ? "succeeded" : "failed", ok ? src->loaded : 0L, pages, wasted, retries,
			throttled, (double)bytes / 1e6,
			(double)((src->finished_ms ? src->finished_ms : util_now_ms()) - src->started_ms) /
				1000.0);
		for (int s = 0; s < src->nstreams; s++) {
			struct stream *st = &src->streams[s];
			char loaded[24] = "-";
			if (ok && st->loaded >= 0)
				snprintf(loaded, sizeof(loaded), "%ld", st->loaded);
			double secs = st->first_ms && st->done_ms ? (double)(st->done_ms - st->first_ms) / 1000.0
								  : 0.0;
			fprintf(out, "  %-30s %-9s %10s %8ld %7ld %7ld %5ld %10.1f %8.1f\n", st->name,
				st->note.len ? "n/a" : "", loaded, st->pw.pages_done, st->pw.pages_wasted,
				st->pw.retries, st->throttled, (double)st->bytes / 1e6, secs);
		}
		if (!ok)
			fprintf(out, "  error: %s\n", buf_str(&src->error));
		struct buf w = BUF_INIT;
		warnings_text(src, &w);
		if (w.len)
			fprintf(out, "  warnings: %s\n", w.data);
		buf_free(&w);
	}
	for (size_t i = 0; i < r->nbudgets; i++) {
		struct budget *b = &r->budgets[i];
		if (!b->rb.granted)
			continue;
		/* the rate achieved between the first and the last request, against
		 * the configured limit */
		double span_min = (double)(b->last_ms - b->first_ms) / 60000.0;
		double achieved = span_min > 0 ? (double)(b->rb.granted - 1) / span_min : 0.0;
		fprintf(out, "Syncro budget '%s': %" PRIu64 " requests, %" PRIu64 " refused (429),"
			     " %.0f/min achieved of %d/min (utilisation %.3f)\n",
			b->name, b->rb.granted, b->throttled, achieved, r->cfg->fetch.syncro_per_minute,
			achieved / r->cfg->fetch.syncro_per_minute);
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

/* One rate budget per egress named by a Syncro source. */
static void make_budgets(struct run *r)
{
	const struct config *cfg = r->cfg;
	r->budgets = xcalloc(cfg->nsources ? cfg->nsources : 1, sizeof(struct budget));
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct config_source *s = &cfg->sources[i];
		if (s->kind != CONFIG_SOURCE_SYNCRO || budget_for(r, s->egress))
			continue;
		struct budget *b = &r->budgets[r->nbudgets++];
		b->run = r;
		b->name = xstrdup(s->egress ? s->egress : "default");
		rate_budget_init(&b->rb, cfg->fetch.syncro_per_minute,
				 cfg->fetch.syncro_margin_pct / 100.0, RATE_BUDGET_SYNCRO_BURST,
				 util_now_ms());
		uv_timer_init(&r->loop, &b->timer);
		b->timer.data = b;
	}
}

int run_sync(const struct config *cfg, const struct run_options *opt, struct buf *err)
{
	struct run *r = xcalloc(1, sizeof(*r));
	int rc = -1;
	r->cfg = cfg;
	r->opt = opt;
	r->started_ms = util_now_ms();
	r->started_s = (long long)time(NULL);
	r->worker = opt && opt->worker;
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
	make_budgets(r);

	r->nsources = cfg->nsources;
	r->sources = xcalloc(cfg->nsources ? cfg->nsources : 1, sizeof(struct source));
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct source *src = &r->sources[i];
		source_init(r, src, &cfg->sources[i]);
		src->started_ms = util_now_ms();
		if (opt && opt->only) {
			src->excluded = true;
			for (const char *const *n = opt->only; *n; n++)
				if (strcmp(*n, source_name(src)) == 0)
					src->excluded = false;
			if (src->excluded)
				src->state = SOURCE_ELSEWHERE;
		}
	}
	/* when each source last succeeded, for the metrics */
	PGresult *last = PQexec(r->control, "SELECT source, extract(epoch FROM max(finished_at))"
					    " FROM sync_runs WHERE status = 'succeeded' GROUP BY source");
	for (int k = 0; PQresultStatus(last) == PGRES_TUPLES_OK && k < PQntuples(last); k++)
		for (size_t i = 0; i < r->nsources; i++)
			if (strcmp(source_name(&r->sources[i]), PQgetvalue(last, k, 0)) == 0)
				r->sources[i].last_success_s = atof(PQgetvalue(last, k, 1));
	PQclear(last);
	/* sources start from the pump, as connections allow; in worker mode,
	 * as they are claimed from the queue */
	if (r->worker) {
		char host[64] = "?";
		gethostname(host, sizeof(host) - 1);
		snprintf(r->worker_id, sizeof(r->worker_id), "%s:%ld:%lld", host, (long)getpid(),
			 r->run_id);
		struct buf qerr = BUF_INIT;
		if (queue_fill(r, &qerr) < 0) {
			log_error(NULL, "cannot fill the work queue: %s", buf_str(&qerr));
			for (size_t i = 0; i < r->nsources; i++)
				if (!r->sources[i].excluded)
					r->sources[i].state = SOURCE_FAILED;
		}
		buf_free(&qerr);
		uv_timer_init(&r->loop, &r->queue_timer);
		r->queue_timer.data = r;
		r->queue_timer_open = true;
		uint64_t every = (uint64_t)opt->lease_s * 1000 / 3;
		uv_timer_start(&r->queue_timer, queue_timer_cb, every ? every : 1, every ? every : 1);
	}
	r->snap = xcalloc(1, sizeof(*r->snap));
	if (opt && (opt->progress || opt->metrics_file)) {
		uv_timer_init(&r->loop, &r->obs_timer);
		r->obs_timer.data = r;
		r->obs_timer_open = true;
		uv_timer_start(&r->obs_timer, obs_timer_cb, 1000, 1000);
		r->metrics_due_ms = util_now_ms() + (unsigned long long)opt->metrics_interval_s * 1000;
	}
	pump_arm(r);
	uv_run(&r->loop, UV_RUN_DEFAULT);

	snapshot_fill(r, r->snap);
	if (opt && opt->progress)
		progress_finish(opt->progress, &r->snap->run);
	if (opt && opt->metrics_file)
		write_metrics(r);
	snapshot_free(r->snap);
	free(r->snap);
	rc = 0;
	for (size_t i = 0; i < r->nsources; i++)
		if (r->sources[i].state != SOURCE_SUCCEEDED && r->sources[i].state != SOURCE_ELSEWHERE)
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
	for (size_t i = 0; i < r->nbudgets; i++)
		free(r->budgets[i].name);
	free(r->budgets);
	free(r);
	return rc;
}
