/* http.c - libcurl multi socket API driven by a libuv loop (see http.h).
 *
 * curl tells us which sockets to watch (socket_cb) and when to call it
 * back (timer_cb); we turn those into uv_poll_t and uv_timer_t handles and
 * report readiness with curl_multi_socket_action(). Finished transfers are
 * collected with curl_multi_info_read() after every action. */
#include "http.h"
#include "buf.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

struct http_client {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	uv_idle_t reaper;    /* reports transfers that failed outside curl */
	uv_timer_t first_byte; /* checks transfers still waiting for an answer */
	struct http_options opt;
	char *ca_file;
	char *user_agent;
	size_t active;
	size_t open_handles; /* timer + socket polls not yet closed */
	bool closing;
	bool in_action;      /* inside curl_multi_socket_action() */
	void (*close_cb)(void *arg);
	void *close_arg;
	struct http_transfer *transfers; /* all live transfers, for close */
};

struct http_transfer {
	struct http_client *client;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	int (*on_data)(void *arg, const char *data, size_t len);
	void (*on_done)(void *arg, const struct http_result *res);
	void *arg;
	char *capture_name;
	struct buf captured;
	bool have_captured;
	bool paused;
	CURLcode failed;     /* set outside curl; the reaper reports it */
	bool answered;       /* a first byte of the answer arrived */
	uint64_t first_byte_deadline; /* loop time (ms); 0: none */
	uint64_t body_bytes;
	char errbuf[CURL_ERROR_SIZE];
	struct http_transfer *prev, *next;
};

struct sock_watch {
	uv_poll_t poll;
	struct http_client *client;
	curl_socket_t fd;
	int events;
};

static void check_done(struct http_client *c);

static void client_free_if_closed(struct http_client *c)
{
	if (!c->closing || c->open_handles)
		return;
	void (*cb)(void *) = c->close_cb;
	void *arg = c->close_arg;
	free(c->ca_file);
	free(c->user_agent);
	free(c);
	if (cb)
		cb(arg);
}

static void poll_closed(uv_handle_t *h)
{
	struct sock_watch *w = h->data;
	struct http_client *c = w->client;
	free(w);
	c->open_handles--;
	client_free_if_closed(c);
}

/* Close callback of the client's own handles (timer, reaper). */
static void client_handle_closed(uv_handle_t *h)
{
	struct http_client *c = h->data;
	c->open_handles--;
	client_free_if_closed(c);
}

static void socket_action(struct http_client *c, curl_socket_t fd, int ev)
{
	int running = 0;
	c->in_action = true;
	CURLMcode rc = curl_multi_socket_action(c->multi, fd, ev, &running);
	c->in_action = false;
	if (rc != CURLM_OK)
		log_error(NULL, "curl_multi_socket_action: %s", curl_multi_strerror(rc));
	check_done(c);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct sock_watch *w = p->data;
	int ev = 0;
	if (status < 0)
		ev = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			ev |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			ev |= CURL_CSELECT_OUT;
	}
	socket_action(w->client, w->fd, ev);
}

static void timer_cb(uv_timer_t *t)
{
	socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arm the uv timer here; curl must not be
 * called back from inside its own callback. A 0 ms timeout fires on the
 * next loop iteration, unclamped. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct http_client *c = userp;
	if (c->closing)
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, timer_cb, (uint64_t)timeout_ms, 0);
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: one uv_poll_t per socket, events updated in
 * place, stopped and closed on CURL_POLL_REMOVE. */
static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	(void)easy;
	struct http_client *c = userp;
	struct sock_watch *w = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (w) {
			curl_multi_assign(c->multi, fd, NULL);
			uv_poll_stop(&w->poll);
			uv_close((uv_handle_t *)&w->poll, poll_closed);
		}
		return 0;
	}
	if (!w) {
		w = xcalloc(1, sizeof(*w));
		w->client = c;
		w->fd = fd;
		int rc = uv_poll_init_socket(c->loop, &w->poll, fd);
		if (rc < 0) {
			log_error(NULL, "cannot watch socket %d: %s", (int)fd, uv_strerror(rc));
			free(w);
			return -1;
		}
		w->poll.data = w;
		c->open_handles++;
		curl_multi_assign(c->multi, fd, w);
	}
	int events = 0;
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	w->events = events;
	int rc = uv_poll_start(&w->poll, events, poll_cb);
	if (rc < 0) {
		log_error(NULL, "cannot poll socket %d: %s", (int)fd, uv_strerror(rc));
		return -1;
	}
	return 0;
}

int http_client_new(struct http_client **out, uv_loop_t *loop, const struct http_options *opt)
{
	static bool global_done;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -EIO;
		global_done = true;
	}
	struct http_client *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->opt = *opt;
	c->ca_file = opt->ca_file ? xstrdup(opt->ca_file) : NULL;
	c->user_agent = xstrdup(opt->user_agent ? opt->user_agent : "invsync");
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c->ca_file);
		free(c->user_agent);
		free(c);
		return -ENOMEM;
	}
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	uv_idle_init(loop, &c->reaper);
	c->reaper.data = c;
	uv_timer_init(loop, &c->first_byte);
	c->first_byte.data = c;
	c->open_handles = 3;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	if (opt->max_total_connections > 0) {
		curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
				  (long)opt->max_total_connections);
		/* keep every connection we may open in the reuse cache */
		curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
				  (long)opt->max_total_connections);
	}
	if (opt->max_host_connections > 0)
		curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
				  (long)opt->max_host_connections);
	*out = c;
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_transfer *t = userp;
	size_t len = size * nmemb;
	t->answered = true;
	if (!t->on_data) {
		t->body_bytes += len;
		return len;
	}
	int rc = t->on_data(t->arg, data, len);
	if (rc == HTTP_PAUSE) {
		t->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (rc < 0)
		return 0; /* curl reports CURLE_WRITE_ERROR */
	t->body_bytes += len;
	return len;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_transfer *t = userp;
	size_t len = size * nmemb;
	t->answered = true;
	if (!t->capture_name)
		return len;
	/* A status line starts a new response (after 100-continue): forget
	 * what an earlier one said. */
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		buf_reset(&t->captured);
		t->have_captured = false;
		return len;
	}
	size_t nlen = strlen(t->capture_name);
	if (len > nlen && data[nlen] == ':' && strncasecmp(data, t->capture_name, nlen) == 0) {
		const char *v = data + nlen + 1, *end = data + len;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
				   end[-1] == '\t'))
			end--;
		buf_reset(&t->captured);
		buf_append(&t->captured, v, (size_t)(end - v));
		t->have_captured = true;
	}
	return len;
}

static void transfer_free(struct http_transfer *t)
{
	struct http_client *c = t->client;
	if (t->prev)
		t->prev->next = t->next;
	else
		c->transfers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	curl_multi_remove_handle(c->multi, t->easy);
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	free(t->body);
	free(t->capture_name);
	/* the captured value may hold a token: wipe before freeing */
	if (t->captured.data)
		memset(t->captured.data, 0, t->captured.cap);
	buf_free(&t->captured);
	c->active--;
	free(t);
}

static void reaper_cb(uv_idle_t *h);

/* Fail, from the loop, the transfers whose answer has not begun by their
 * deadline; keep checking while any transfer still waits. */
static void first_byte_cb(uv_timer_t *h)
{
	struct http_client *c = h->data;
	uint64_t now = uv_now(c->loop);
	bool waiting = false, expired = false;
	for (struct http_transfer *t = c->transfers; t; t = t->next) {
		if (t->answered || t->failed || !t->first_byte_deadline)
			continue;
		if (t->first_byte_deadline > now) {
			waiting = true;
			continue;
		}
		snprintf(t->errbuf, sizeof(t->errbuf), "no answer within %ld s of sending the request",
			 c->opt.first_byte_timeout_ms / 1000);
		t->failed = CURLE_OPERATION_TIMEDOUT;
		curl_multi_remove_handle(c->multi, t->easy);
		expired = true;
	}
	if (expired)
		uv_idle_start(&c->reaper, reaper_cb);
	if (!waiting)
		uv_timer_stop(h);
}

int http_start(struct http_client *c, const struct http_request *req, struct http_transfer **out)
{
	if (c->closing)
		return -ECANCELED;
	struct http_transfer *t = xcalloc(1, sizeof(*t));
	t->client = c;
	t->on_data = req->on_data;
	t->on_done = req->on_done;
	t->arg = req->arg;
	buf_init(&t->captured);
	t->easy = curl_easy_init();
	if (!t->easy) {
		free(t);
		return -ENOMEM;
	}
	CURL *e = t->easy;
	for (const char *const *h = req->headers; h && *h; h++) {
		struct curl_slist *n = curl_slist_append(t->headers, *h);
		if (!n)
			goto fail;
		t->headers = n;
	}
	if (req->capture_header)
		t->capture_name = xstrdup(req->capture_header);

	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 65536L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if (c->opt.connect_timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->opt.connect_timeout_ms);
	if (c->opt.timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->opt.timeout_ms);
	if (c->opt.low_speed_time_s > 0) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->opt.low_speed_time_s);
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	if (t->headers)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	if (strcmp(req->method, "POST") == 0) {
		t->body = xmalloc(req->body_len + 1);
		if (req->body_len)
			memcpy(t->body, req->body, req->body_len);
		t->body[req->body_len] = '\0';
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	}

	t->next = c->transfers;
	if (c->transfers)
		c->transfers->prev = t;
	c->transfers = t;
	c->active++;
	/* curl may call curl_timer_cb from here; that only arms the timer, so
	 * on_done cannot fire inside this call. */
	CURLMcode mrc = curl_multi_add_handle(c->multi, e);
	if (mrc != CURLM_OK) {
		log_error(NULL, "curl_multi_add_handle: %s", curl_multi_strerror(mrc));
		transfer_free(t);
		return -EIO;
	}
	if (c->opt.first_byte_timeout_ms > 0) {
		t->first_byte_deadline = uv_now(c->loop) + (uint64_t)c->opt.first_byte_timeout_ms;
		if (!uv_is_active((uv_handle_t *)&c->first_byte)) {
			/* a coarse tick is enough for a limit counted in seconds */
			uint64_t tick = (uint64_t)c->opt.first_byte_timeout_ms / 4;
			if (tick < 50)
				tick = 50;
			if (tick > 1000)
				tick = 1000;
			uv_timer_start(&c->first_byte, first_byte_cb, tick, tick);
		}
	}
	*out = t;
	return 0;
fail:
	curl_slist_free_all(t->headers);
	curl_easy_cleanup(t->easy);
	free(t);
	return -ENOMEM;
}

/* Report a finished transfer through on_done, then free it. */
static void finish_transfer(struct http_client *c, struct http_transfer *t, CURLcode code)
{
	struct http_result res = {0};
	res.curl_code = (int)code;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &res.status);
	if (res.curl_code != CURLE_OK)
		res.error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
	else
		res.error = "";
	res.captured = t->have_captured ? buf_str(&t->captured) : NULL;
	curl_off_t ra = -1;
	if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK || ra <= 0)
		ra = -1;
	res.retry_after_s = (long)ra;
	res.body_bytes = t->body_bytes;
	curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &res.seconds);
	/* Take the handle out of the multi before the callback so the
	 * callback may start new transfers freely. */
	curl_multi_remove_handle(c->multi, t->easy);
	if (t->on_done)
		t->on_done(t->arg, &res);
	transfer_free(t);
}

static void check_done(struct http_client *c)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(c->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct http_transfer *t = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		if (!t)
			continue;
		finish_transfer(c, t, msg->data.result);
	}
}

/* Report the transfers http_resume() found failed. An on_done may start
 * or cancel other transfers: look again from the head after each. */
static void reaper_cb(uv_idle_t *h)
{
	struct http_client *c = h->data;
	uv_idle_stop(h);
	for (;;) {
		struct http_transfer *t = c->transfers;
		while (t && !t->failed)
			t = t->next;
		if (!t)
			break;
		finish_transfer(c, t, t->failed);
	}
}

long http_status(const struct http_transfer *t)
{
	long status = 0;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

void http_resume(struct http_transfer *t)
{
	if (!t->paused || t->failed)
		return;
	t->paused = false;
	/* may call write_cb right away, and may pause again */
	CURLcode rc = curl_easy_pause(t->easy, CURLPAUSE_CONT);
	if (rc != CURLE_OK) {
		/* The bytes held back were refused (on_data failed) or could
		 * not be delivered. curl does not end the transfer then: it
		 * would sit until a timeout. Stop driving it and report it
		 * from the loop, as on_done must not fire in here. */
		t->failed = rc;
		curl_multi_remove_handle(t->client->multi, t->easy);
		uv_idle_start(&t->client->reaper, reaper_cb);
	}
}

bool http_paused(const struct http_transfer *t)
{
	return t->paused;
}

void http_cancel(struct http_transfer *t)
{
	transfer_free(t);
}

uint64_t http_retry_after_ms(long retry_after_s, long default_s)
{
	long s = retry_after_s > 0 ? retry_after_s : default_s;
	/* only the server's figure is capped: a configured default is meant */
	if (retry_after_s > HTTP_MAX_RETRY_AFTER_S)
		s = HTTP_MAX_RETRY_AFTER_S;
	return s > 0 ? (uint64_t)s * 1000 : 0;
}

bool http_result_is_transient(const struct http_result *res)
{
	if (res->curl_code != 0)
		return !http_error_is_permanent(res->curl_code);
	return res->status == 429 || res->status >= 500;
}

uint64_t http_backoff_ms(unsigned base_ms, int attempt, long retry_after_s)
{
	int shift = attempt > 1 ? attempt - 1 : 0;
	/* past 2^20 times the base, the server's figure decides anyway */
	uint64_t wait = (uint64_t)base_ms << (shift < 20 ? shift : 20);
	uint64_t ra = http_retry_after_ms(retry_after_s, 0);
	return ra > wait ? ra : wait;
}

const char *http_result_why(const struct http_result *res, char *out, size_t size)
{
	if (res->curl_code)
		snprintf(out, size, "%s", res->error);
	else
		snprintf(out, size, "HTTP %ld%s", res->status,
			 res->retry_after_s > 0 ? ", Retry-After" : "");
	return out;
}

bool http_error_is_permanent(int curl_code)
{
	switch ((CURLcode)curl_code) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return true;
	default:
		return false;
	}
}

size_t http_active(const struct http_client *c)
{
	return c->active;
}

void http_client_close(struct http_client *c, void (*close_cb)(void *arg), void *arg)
{
	c->close_cb = close_cb;
	c->close_arg = arg;
	while (c->transfers)
		transfer_free(c->transfers);
	/* socket callbacks fire during cleanup and close their polls; closing
	 * must not be set before, or curl_socket_cb would still be needed */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	c->closing = true;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, client_handle_closed);
	uv_idle_stop(&c->reaper);
	uv_close((uv_handle_t *)&c->reaper, client_handle_closed);
	uv_timer_stop(&c->first_byte);
	uv_close((uv_handle_t *)&c->first_byte, client_handle_closed);
}
