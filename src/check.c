/* check.c - credentials and database pre-flight (see check.h). */
#include "check.h"
#include "http.h"
#include "log.h"
#include "mosyle.h"
#include "pgsink.h"
#include "rate_budget.h"
#include "syncro.h"
#include "version.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <uv.h>
#include <yajl/yajl_tree.h>

/* /me answers are small; anything longer is cut (and then not parsed). */
#define ME_BODY_MAX (64 * 1024)
/* A check is a pre-flight, often started by a unit with a start timeout of
 * a few minutes: GET /me refused with 429, or a Mosyle login that failed
 * in a way worth another try, is asked at most this many times (fewer if
 * [fetch] retries says so), so that the waits of a refusal without
 * Retry-After (syncro_backoff, 60 s by default) still fit. */
#define ME_MAX_ATTEMPTS 3

/* The rate budget of one egress. GET /me goes through it as a run's pages
 * do, so that a check never sends more than a run would, and a 429 holds
 * back every source behind the same address, not only the one refused. */
struct egress {
	const char *name;
	struct rate_budget rb;
};

struct check {
	const struct config *cfg;
	struct http_client *http;
	struct egress *egresses;
	size_t negresses;
};

struct probe {
	struct check *chk;
	const struct config_source *src;
	struct egress *egress;  /* Syncro: its egress's budget; Mosyle: NULL */
	struct http_transfer *xfer;
	uv_timer_t timer;       /* waits for the budget's next token, or out a 429 */
	int attempts;           /* requests sent */
	int max_attempts;       /* while Syncro answers 429, or the login fails transiently */
	struct buf body;
	bool truncated;
	bool done;
	bool ok;
	struct buf line; /* what is printed after "NAME: " */
};

static void probe_send(struct probe *p);

static int probe_on_data(void *arg, const char *data, size_t len)
{
	struct probe *p = arg;
	size_t room = ME_BODY_MAX - p->body.len;
	if (len > room) {
		p->truncated = true;
		len = room;
	}
	buf_append(&p->body, data, len);
	return 0;
}

/* "error" or "message" of an error answer, redacted. */
static void error_text(struct buf *out, const char *body)
{
	yajl_val root = yajl_tree_parse(body, NULL, 0);
	static const char *const keys[] = {"error", "message", "errors"};
	for (size_t i = 0; root && i < ARRAY_SIZE(keys) && !out->len; i++) {
		const char *path[2] = {keys[i], NULL};
		yajl_val v = yajl_tree_get(root, path, yajl_t_any);
		if (v && YAJL_IS_ARRAY(v) && v->u.array.len > 0)
			v = v->u.array.values[0];
		const char *text = v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
		if (text)
			log_redact(out, text);
	}
	yajl_tree_free(root);
}

/* Does the /me answer list the permission? */
static bool me_has_permission(const char *body, const char *perm, bool *listed)
{
	yajl_val root = yajl_tree_parse(body, NULL, 0);
	const char *path[] = {"permissions", NULL};
	yajl_val v = root ? yajl_tree_get(root, path, yajl_t_array) : NULL;
	bool found = false;
	*listed = v != NULL;
	for (size_t i = 0; v && i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		const char *name = YAJL_IS_STRING(e) ? YAJL_GET_STRING(e) : NULL;
		if (name && strcmp(name, perm) == 0)
			found = true;
	}
	yajl_tree_free(root);
	return found;
}

static void probe_timer_cb(uv_timer_t *t)
{
	probe_send(t->data);
}

/* Send the probe's request again after wait_ms, its last answer dropped. */
static void probe_again(struct probe *p, uint64_t wait_ms)
{
	buf_reset(&p->body);
	p->truncated = false;
	uv_timer_start(&p->timer, probe_timer_cb, wait_ms, 0);
}

/* Syncro refused GET /me with 429. As in a run, the whole egress waits
 * for Retry-After (or syncro_backoff) and slows down; then /me is asked
 * again, unless that was the last attempt. True when it will be asked
 * again, false when the check gives up (the line says why). */
static bool probe_throttled(struct probe *p, const struct http_result *res)
{
	const struct config_fetch *f = &p->chk->cfg->fetch;
	uint64_t wait_ms = http_retry_after_ms(res->retry_after_s, f->syncro_backoff_s);
	/* even when giving up: the other sources behind the address wait too */
	rate_budget_penalty(&p->egress->rb, wait_ms, util_now_ms());
	if (p->attempts >= p->max_attempts) {
		buf_printf(&p->line, "FAILED: rate limited: Syncro answered HTTP 429 to GET /me"
				     " on %s%d attempt%s; try again later",
			   p->attempts > 1 ? "all " : "", p->attempts, p->attempts > 1 ? "s" : "");
		return false;
	}
	char why[HTTP_WHY_MAX];
	log_event(LOG_LEVEL_WARN, p->src->name, NULL, -1, "throttled",
		  "GET /me: rate limited (%s) on attempt %d of %d; the egress waits %" PRIu64
		  " ms and slows down",
		  http_result_why(res, why, sizeof(why)), p->attempts, p->max_attempts, wait_ms);
	probe_again(p, wait_ms);
	return true;
}

/* The request failed in a way worth another try (res: a transport error
 * or a 5xx, or a 429 from Mosyle). As in a run, it is sent again after
 * retry_delay_ms, doubled each time, or the answer's Retry-After when
 * longer, unless that was the last attempt. True when it will be. */
static bool probe_retry(struct probe *p, const struct http_result *res)
{
	if (p->attempts >= p->max_attempts)
		return false;
	const char *what = p->egress ? "GET /me" : "login";
	uint64_t wait_ms = http_backoff_ms((unsigned)p->chk->cfg->fetch.retry_delay_ms,
					   p->attempts, res->retry_after_s);
	char why[HTTP_WHY_MAX];
	log_warn(p->src->name, "%s attempt %d of %d failed (%s); retrying in %" PRIu64 " ms", what,
		 p->attempts, p->max_attempts, http_result_why(res, why, sizeof(why)), wait_ms);
	probe_again(p, wait_ms);
	return true;
}

static void probe_on_done(void *arg, const struct http_result *res)
{
	struct probe *p = arg;
	p->xfer = NULL;
	if (p->egress && res->curl_code == 0 && res->status == 429) {
		if (!probe_throttled(p, res))
			p->done = true;
		return;
	}
	bool transient = http_result_is_transient(res);
	if (transient && probe_retry(p, res))
		return;
	p->done = true;
	if (res->curl_code != 0) {
		buf_printf(&p->line, "FAILED: cannot reach %s: %s", p->src->base_url, res->error);
		if (transient && p->attempts > 1)
			buf_printf(&p->line, " (on all %d attempts)", p->attempts);
		return;
	}
	if (p->src->kind == CONFIG_SOURCE_MOSYLE && transient) {
		/* a busy or failing server says nothing about the credentials */
		buf_printf(&p->line, "FAILED: Mosyle answered HTTP %ld to the login on %s%d"
				     " attempt%s; try again later", res->status,
			   p->attempts > 1 ? "all " : "", p->attempts, p->attempts > 1 ? "s" : "");
		return;
	}
	if (p->src->kind == CONFIG_SOURCE_MOSYLE) {
		char *token = mosyle_login_token(res->captured);
		if (token) {
			log_add_secret(token);
			memset(token, 0, strlen(token));
			free(token);
			p->ok = true;
			buf_puts(&p->line, "OK (Mosyle login accepted)");
		} else {
			buf_printf(&p->line, "FAILED: Mosyle answered HTTP %ld without a session token;"
					     " check access_token, email and password", res->status);
		}
		return;
	}
	if (res->status != 200) {
		struct buf why = BUF_INIT;
		error_text(&why, buf_str(&p->body));
		buf_printf(&p->line, "FAILED: Syncro answered HTTP %ld to GET /me%s%s", res->status,
			   why.len ? ": " : "", buf_str(&why));
		if (transient && p->attempts > 1)
			buf_printf(&p->line, " (on all %d attempts)", p->attempts);
		buf_free(&why);
		return;
	}
	/* the permissions every endpoint the source loads needs */
	struct buf missing = BUF_INIT;
	bool listed = false;
	for (const struct endpoint *const *ep = syncro_endpoints; *ep; ep++) {
		if (!(*ep)->permission || !config_source_wants(p->src, (*ep)->name))
			continue;
		if (!me_has_permission(buf_str(&p->body), (*ep)->permission, &listed) && listed)
			buf_printf(&missing, "%s\"%s\" (for %s)", missing.len ? ", " : "",
				   (*ep)->permission, (*ep)->name);
	}
	if (missing.len) {
		buf_printf(&p->line, "FAILED: the API token lacks the permission %s", missing.data);
	} else {
		p->ok = true;
		buf_printf(&p->line, "OK (Syncro API key accepted%s)",
			   listed ? ", permissions present" : "");
	}
	buf_free(&missing);
}

/* Send the probe's request, once its egress's budget allows. */
static void probe_send(struct probe *p)
{
	const struct config_source *src = p->src;
	if (p->egress) {
		uint64_t wait = rate_budget_take(&p->egress->rb, util_now_ms());
		if (wait > 0) {
			uv_timer_start(&p->timer, probe_timer_cb, wait, 0);
			return;
		}
	}
	struct buf url = BUF_INIT, body = BUF_INIT, auth = BUF_INIT;
	const char *mosyle_headers[] = {"Content-Type: application/json",
					"Accept: application/json", NULL};
	const char *syncro_headers[3] = {"Accept: application/json", NULL, NULL};
	struct http_request req = {.on_data = probe_on_data, .on_done = probe_on_done, .arg = p};
	if (src->kind == CONFIG_SOURCE_MOSYLE) {
		buf_printf(&url, "%s/login", src->base_url);
		mosyle_login_body(&body, src);
		req.method = "POST";
		req.headers = mosyle_headers;
		req.body = body.data;
		req.body_len = body.len;
		req.capture_header = "Authorization";
	} else {
		buf_printf(&url, "%s/me", src->base_url);
		buf_printf(&auth, "Authorization: Bearer %s", src->api_key);
		syncro_headers[1] = auth.data;
		req.method = "GET";
		req.headers = syncro_headers;
	}
	req.url = url.data;
	p->attempts++;
	if (http_start(p->chk->http, &req, &p->xfer) < 0) {
		p->done = true;
		buf_puts(&p->line, "FAILED: could not start the request");
	}
	/* the request held secrets: wipe our copies */
	if (body.data)
		memset(body.data, 0, body.len);
	if (auth.data)
		memset(auth.data, 0, auth.len);
	buf_free(&url);
	buf_free(&body);
	buf_free(&auth);
}

/* The budget of the egress named (NULL: "default"), made on first use and
 * sized as a run sizes it. */
static struct egress *egress_for(struct check *chk, const char *egress)
{
	const char *name = egress ? egress : "default";
	for (size_t i = 0; i < chk->negresses; i++)
		if (strcmp(chk->egresses[i].name, name) == 0)
			return &chk->egresses[i];
	struct egress *e = &chk->egresses[chk->negresses++];
	const struct config_fetch *f = &chk->cfg->fetch;
	e->name = name;
	rate_budget_init(&e->rb, f->syncro_per_minute, f->syncro_margin_pct / 100.0,
			 RATE_BUDGET_SYNCRO_BURST, util_now_ms());
	return e;
}

static void http_closed(void *arg)
{
	*(bool *)arg = true;
}

int check_run(const struct config *cfg, FILE *out)
{
	int rc = 0;
	/* the database first: no loop needed */
	PGconn *conn = NULL;
	struct buf err = BUF_INIT;
	if (pgsink_connect(&conn, cfg->conninfo, &err) < 0) {
		fprintf(out, "database: FAILED: %s\n", buf_str(&err));
		rc = 1;
	} else {
		fprintf(out, "database: OK (PostgreSQL %d.%d)\n", PQserverVersion(conn) / 10000,
			PQserverVersion(conn) % 10000);
	}
	if (conn)
		PQfinish(conn);
	buf_free(&err);

	uv_loop_t loop;
	if (uv_loop_init(&loop) < 0) {
		fprintf(out, "FAILED: cannot create the event loop\n");
		return 1;
	}
	struct http_options hopt = {
		.max_total_connections = cfg->fetch.concurrency,
		.max_host_connections = cfg->fetch.per_host,
		.connect_timeout_ms = (long)cfg->fetch.connect_timeout_s * 1000,
		.timeout_ms = (long)cfg->fetch.timeout_s * 1000,
		.ca_file = cfg->fetch.ca_file,
		.user_agent = "invsync/" INVSYNC_VERSION,
	};
	struct http_client *http;
	if (http_client_new(&http, &loop, &hopt) < 0) {
		fprintf(out, "FAILED: cannot initialise libcurl\n");
		(void)uv_loop_close(&loop);
		return 1;
	}
	struct check chk = {
		.cfg = cfg,
		.http = http,
		.egresses = xcalloc(cfg->nsources ? cfg->nsources : 1, sizeof(struct egress)),
	};
	struct probe *probes = xcalloc(cfg->nsources ? cfg->nsources : 1, sizeof(*probes));
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct probe *p = &probes[i];
		p->chk = &chk;
		p->src = &cfg->sources[i];
		buf_init(&p->body);
		buf_init(&p->line);
		uv_timer_init(&loop, &p->timer);
		p->timer.data = p;
		if (p->src->kind == CONFIG_SOURCE_SYNCRO)
			p->egress = egress_for(&chk, p->src->egress);
		p->max_attempts = 1 + cfg->fetch.retries;
		if (p->max_attempts > ME_MAX_ATTEMPTS)
			p->max_attempts = ME_MAX_ATTEMPTS;
		probe_send(p);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct probe *p = &probes[i];
		if (!p->done)
			buf_puts(&p->line, "FAILED: no answer");
		fprintf(out, "%s: %s\n", cfg->sources[i].name, buf_str(&p->line));
		if (!p->ok)
			rc = 1;
		buf_free(&p->body);
		buf_free(&p->line);
		uv_close((uv_handle_t *)&p->timer, NULL);
	}
	bool closed = false;
	http_client_close(http, http_closed, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	free(probes); /* the timers in them are closed now */
	free(chk.egresses);
	if (uv_loop_close(&loop) != 0) {
		fprintf(out, "internal error: event loop closed with handles still open\n");
		rc = 1;
	}
	fflush(out);
	return rc;
}
