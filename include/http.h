/* http.h - HTTP transfers on the libuv loop, through libcurl's multi socket API.
 *
 * One http_client per process owns a curl multi handle and drives it from
 * the loop: one uv_poll_t per socket curl asks about, one uv_timer_t for
 * curl's timeout. Connections are kept alive and reused, HTTP/2 is used and
 * multiplexed over TLS when the server offers it, responses are requested
 * compressed, and TLS peers are always verified.
 *
 * A transfer streams its body to on_data as bytes arrive (after content
 * decoding) and reports its end once through on_done. Nothing is buffered
 * here beyond curl's own receive buffer. */
#ifndef INVSYNC_HTTP_H
#define INVSYNC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "util.h"

struct http_client;
struct http_transfer;

struct http_options {
	int max_total_connections;  /* 0: unlimited */
	int max_host_connections;   /* 0: unlimited */
	long connect_timeout_ms;
	long timeout_ms;            /* whole transfer; 0: none */
	long first_byte_timeout_ms; /* start to first byte of the answer; 0: none */
	long low_speed_time_s;      /* abort if < 1 byte/s for this long; 0: off */
	const char *ca_file;        /* extra CA bundle; NULL: system store */
	const char *user_agent;
};

/* Returned by on_data to stop delivery until http_resume(); the same bytes
 * are delivered again then. */
#define HTTP_PAUSE 1

struct http_result {
	int curl_code;          /* CURLcode; 0 when the exchange completed */
	long status;            /* HTTP status; 0 if none was received */
	const char *error;      /* human-readable transport error, "" if none */
	const char *captured;   /* value of request.capture_header, or NULL */
	long retry_after_s;     /* Retry-After in seconds, -1 if absent */
	uint64_t body_bytes;    /* bytes delivered to on_data */
	double seconds;         /* total time */
};

struct http_request {
	const char *method;          /* "GET" or "POST" */
	const char *url;
	const char *const *headers;  /* NULL-terminated "Name: value" lines, may be NULL */
	const char *body;            /* POST body, copied; may be NULL */
	size_t body_len;
	const char *capture_header;  /* header name to capture (case-insensitive), or NULL */
	/* Body bytes. Return 0 to accept them all, HTTP_PAUSE to have them
	 * delivered again after http_resume(), or a negative value to abort
	 * the transfer (on_done then reports a write error; the caller keeps
	 * its own reason). */
	int (*on_data)(void *arg, const char *data, size_t len);
	/* Fires exactly once when the transfer ends (not after
	 * http_cancel()). The transfer is freed after it returns: do not use
	 * it any more. res is valid only during the call. */
	void (*on_done)(void *arg, const struct http_result *res);
	void *arg;
};

/* Create the client. Returns 0 or a negative error; the client must be
 * closed with http_client_close() and the loop run until close_cb fires. */
int http_client_new(struct http_client **out, uv_loop_t *loop,
		    const struct http_options *opt) MUSTCHECK;

/* Cancel every transfer (their on_done does not fire), shut curl down and
 * release the loop handles; close_cb(arg) fires from the loop once every
 * handle is closed, after which the client is freed. */
void http_client_close(struct http_client *c, void (*close_cb)(void *arg), void *arg);

/* Start a transfer. On success returns 0 and sets *out; on_done will fire
 * later, never from inside this call. On failure returns a negative error
 * and no callback fires. */
int http_start(struct http_client *c, const struct http_request *req,
	       struct http_transfer **out) MUSTCHECK;

/* HTTP status of the response being received (0 before headers). */
long http_status(const struct http_transfer *t);

/* Let a paused transfer deliver again. May call on_data before returning;
 * if on_data refuses the bytes held back, the transfer ends and on_done
 * fires from the loop (never inside this call) with the write error. */
void http_resume(struct http_transfer *t);
bool http_paused(const struct http_transfer *t);

/* Stop and free a transfer now; its on_done does not fire. Must not be
 * called from inside that transfer's own callbacks. */
void http_cancel(struct http_transfer *t);

/* True for transfer errors another attempt cannot cure: the server's
 * certificate or host name failed verification, the CA file is unusable,
 * the URL is malformed or its protocol unsupported. */
bool http_error_is_permanent(int curl_code);

/* Longest wait one Retry-After may impose: a server that asks for more is
 * asked again after this long rather than stall a run for hours. */
#define HTTP_MAX_RETRY_AFTER_S 300

/* How long to wait before asking again after an answer whose Retry-After
 * was retry_after_s (http_result's, -1 when absent): that, at most
 * HTTP_MAX_RETRY_AFTER_S, or default_s (not capped) when the server gave
 * none. In ms. */
uint64_t http_retry_after_ms(long retry_after_s, long default_s);

/* Whether a request that ended as res is worth another try: a transport
 * error that is not permanent, or an answer of 429 or 5xx. */
bool http_result_is_transient(const struct http_result *res);

/* The wait before trying again after failed attempt number attempt (from
 * 1), without jitter: base_ms, doubled for each attempt after the first,
 * or the answer's Retry-After (retry_after_s, -1 when absent; capped as
 * above) when that is longer. In ms. */
uint64_t http_backoff_ms(unsigned base_ms, int attempt, long retry_after_s);

/* Why a request failed, for a log line: the transport error, or "HTTP
 * 503" (", Retry-After" added when the answer had one). Written into out
 * (size bytes, HTTP_WHY_MAX holds any), which is returned. */
#define HTTP_WHY_MAX 512
const char *http_result_why(const struct http_result *res, char *out, size_t size);

/* Transfers started and not yet finished. */
size_t http_active(const struct http_client *c);

#endif
