/* check.c - credentials and database pre-flight (see check.h). */
#include "check.h"
#include "http.h"
#include "log.h"
#include "mosyle.h"
#include "pgsink.h"
#include "syncro.h"
#include "version.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <uv.h>
#include <yajl/yajl_tree.h>

/* /me answers are small; anything longer is cut (and then not parsed). */
#define ME_BODY_MAX (64 * 1024)

struct probe {
	const struct config_source *src;
	struct http_transfer *xfer;
	struct buf body;
	bool truncated;
	bool done;
	bool ok;
	struct buf line; /* what is printed after "NAME: " */
};

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

static void probe_on_done(void *arg, const struct http_result *res)
{
	struct probe *p = arg;
	p->xfer = NULL;
	p->done = true;
	if (res->curl_code != 0) {
		buf_printf(&p->line, "FAILED: cannot reach %s: %s", p->src->base_url, res->error);
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
	struct probe *probes = xcalloc(cfg->nsources ? cfg->nsources : 1, sizeof(*probes));
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct probe *p = &probes[i];
		const struct config_source *src = &cfg->sources[i];
		struct buf url = BUF_INIT, body = BUF_INIT, auth = BUF_INIT;
		p->src = src;
		buf_init(&p->body);
		buf_init(&p->line);
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
		if (http_start(http, &req, &p->xfer) < 0) {
			p->done = true;
			buf_puts(&p->line, "FAILED: could not start the request");
		}
		if (body.data)
			memset(body.data, 0, body.len);
		if (auth.data)
			memset(auth.data, 0, auth.len);
		buf_free(&url);
		buf_free(&body);
		buf_free(&auth);
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
	}
	free(probes);
	bool closed = false;
	http_client_close(http, http_closed, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0) {
		fprintf(out, "internal error: event loop closed with handles still open\n");
		rc = 1;
	}
	fflush(out);
	return rc;
}
