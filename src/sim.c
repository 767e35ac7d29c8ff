/* sim.c - invsync-sim, a Mosyle Manager and Syncro API simulator.
 *
 * Serves POST /login, /listdevices and the other Mosyle reads (users,
 * classes, device groups and their members, accounts, custom attributes,
 * admin logs; matched on the last path segment, so any base path works)
 * over HTTP/1.1 with keep-alive, or over HTTPS with a certificate and key
 * given as files, from the deterministic district of simdata.c: every
 * reply is chosen by the request and the command line, never by timing or
 * history (but JWTs expire after a time or a number of requests when asked
 * to). The variants that real tenants show (first page 0 or 1, rows as
 * int/string/absent, end of list as [] or an inner NOTFOUND status,
 * page_size honoured or not, page ignored, response as object or
 * one-element array, failing logins, NUL bytes in names, and the other
 * endpoints' own keys and shapes) are switched by options, and GET
 * /_sim/stats reports what was served.
 *
 * Faults (error statuses, 429 with or without Retry-After, connections
 * reset or truncated mid-body, malformed or non-JSON bodies, stalls, slow
 * answers, a device name of megabytes, an inner INVALID_DATA status) can
 * be put on chosen pages of any Mosyle endpoint (--fault) or on a share of
 * all its requests (--fault-rate, drawn from a hash of the seed and a
 * request counter, so a run is reproducible). --fault also puts the error
 * statuses, 429s among them, on logins and on chosen requests of a Syncro
 * endpoint.
 *
 * It also serves the Syncro API (GET customer_assets, customers, contacts,
 * settings and me, again on the last path segment) from simdata_syncro.c:
 * pages with or without meta, a configurable page size, disabled customers
 * listed only with include_disabled=true, API keys in a header (a key in
 * the query is refused, to catch a client that leaks it) for several
 * tenants at once, expired keys, a missing "Assets - List/Search"
 * permission, and one per-address rate limit over a sliding minute for all
 * of them, answering 429 with or without Retry-After.
 *
 * libmicrohttpd runs one thread per connection, so a per-request latency
 * is a plain sleep that delays only its own connection.
 */
#include "simdata.h"
#include "buf.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <yajl/yajl_tree.h>

#define BODY_MAX (1024 * 1024)
#define PAGE_SIZE_MAX 5000
#define JSON_TYPE "application/json"
#define HTML_TYPE "text/html; charset=utf-8"
#define FAULT_RULES_MAX 32
#define FAULT_RATES_MAX 16
#define STALL_MS 30000
#define SLOW_MS 3000
#define PEM_FILE_MAX (1024 * 1024)

enum rows_mode {
	ROWS_INT,
	ROWS_STRING,
	ROWS_ABSENT,
};

enum end_mode {
	END_EMPTY,
	END_NOTFOUND,
};

/* What a faulty listdevices answer does instead of the real one. */
enum fault_kind {
	FAULT_NONE = 0,
	FAULT_500,
	FAULT_502,
	FAULT_503,
	FAULT_429,
	FAULT_429_RETRY_AFTER,
	FAULT_RESET,     /* half the body, then a TCP reset */
	FAULT_TRUNCATE,  /* half the body, then a plain close */
	FAULT_MALFORMED, /* 200, the real body with one ':' made invalid */
	FAULT_HTML,      /* 200, an HTML error page */
	FAULT_EMPTY,     /* 200, no body */
	FAULT_STALL,     /* half the body, a long pause, then the rest */
	FAULT_SLOW,      /* a pause, then the real answer */
	FAULT_HUGE,      /* the real page, its first device named with --huge-size bytes */
	FAULT_NESTED,    /* the real page, its first device with a value nested 100 deep */
	FAULT_BADUTF8,   /* the real page, its first device's name invalid UTF-8 */
	FAULT_DUPKEYS,   /* the real page, its first device with keys given twice */
	FAULT_TYPES,     /* the real page, its first device with values of the wrong types */
	FAULT_INNER,     /* 200, an inner INVALID_DATA status instead of the page */
	FAULT_NKINDS,
};

static const char *const fault_names[FAULT_NKINDS] = {
	[FAULT_500] = "500",
	[FAULT_502] = "502",
	[FAULT_503] = "503",
	[FAULT_429] = "429",
	[FAULT_429_RETRY_AFTER] = "429ra",
	[FAULT_RESET] = "reset",
	[FAULT_TRUNCATE] = "truncate",
	[FAULT_MALFORMED] = "malformed",
	[FAULT_HTML] = "html",
	[FAULT_EMPTY] = "empty",
	[FAULT_STALL] = "stall",
	[FAULT_SLOW] = "slow",
	[FAULT_HUGE] = "huge",
	[FAULT_NESTED] = "nested",
	[FAULT_BADUTF8] = "badutf8",
	[FAULT_DUPKEYS] = "dupkeys",
	[FAULT_TYPES] = "types",
	[FAULT_INNER] = "inner",
};

/* The info of the "inner" fault's INVALID_DATA answer. */
#define FAULT_INNER_INFO "invsync-sim fault: injected inner error"

/* The Mosyle endpoints, by the last segment of their path. */
enum mosyle_endpoint {
	EP_LOGIN = 0,
	EP_DEVICES,
	EP_USERS,
	EP_CLASSES,
	EP_GROUPS,
	EP_GROUP_DEVICES,
	EP_ACCOUNTS,
	EP_ATTRIBUTES,
	EP_ADMINLOGS,
	EP_NENDPOINTS,
};

struct endpoint_def {
	const char *path;   /* the last path segment, and its name in the stats */
	const char *target; /* its name in --fault; NULL: cannot be faulted */
	bool per_os;        /* takes options.os */
};

static const struct endpoint_def endpoint_defs[EP_NENDPOINTS] = {
	[EP_LOGIN] = {"login", "login", false},
	[EP_DEVICES] = {"listdevices", "devices", true},
	[EP_USERS] = {"listusers", "users", false},
	[EP_CLASSES] = {"listclasses", "classes", false},
	[EP_GROUPS] = {"listdevicegroups", "groups", true},
	[EP_GROUP_DEVICES] = {"listdevicegroupsdevices", "groupdevices", true},
	[EP_ACCOUNTS] = {"accounts", "accounts", false},
	[EP_ATTRIBUTES] = {"customdeviceattribute", "attributes", true},
	[EP_ADMINLOGS] = {"adminlogs", "adminlogs", false},
};

/* Page sizes of the endpoints beyond /listdevices. */
#define USERS_PAGE_DEFAULT 500
#define USERS_PAGE_MAX 1000
#define CLASSES_PAGE 100
#define GROUPS_PAGE 50
#define GROUP_DEVICES_PAGE_DEFAULT 50
#define GROUP_DEVICES_PAGE_MAX 1000
#define ADMINLOGS_PAGE 200

/* The Syncro endpoints, by the last segment of their path. */
enum syncro_endpoint {
	SYNCRO_NONE = 0,
	SYNCRO_ASSETS,
	SYNCRO_CUSTOMERS,
	SYNCRO_CONTACTS,
	SYNCRO_SETTINGS,
	SYNCRO_ME,
	SYNCRO_NENDPOINTS,
};

/* Their names in --fault: "syncro-" and the endpoint, so that none can be
 * taken for a Mosyle one. */
static const char *const syncro_fault_targets[SYNCRO_NENDPOINTS] = {
	[SYNCRO_ASSETS] = "syncro-assets",
	[SYNCRO_CUSTOMERS] = "syncro-customers",
	[SYNCRO_CONTACTS] = "syncro-contacts",
	[SYNCRO_SETTINGS] = "syncro-settings",
	[SYNCRO_ME] = "syncro-me",
};

/* --fault TARGET:PAGE:KIND[:TIMES] */
struct fault_rule {
	enum syncro_endpoint syncro; /* a Syncro endpoint's rule; SYNCRO_NONE: a Mosyle one */
	enum mosyle_endpoint endpoint;
	int os;                  /* -1: every OS (or an endpoint without one) */
	unsigned long long page; /* as requested, before --ignore-page; 1 if unpaged */
	enum fault_kind kind;
	unsigned times;          /* requests it applies to; 0: all */
};

/* --fault-rate PERCENT:KIND */
struct fault_rate {
	unsigned basis_points;   /* out of 10000 */
	enum fault_kind kind;
};

/* A Syncro API key the simulator knows, one per simulated tenant. */
#define SYNCRO_KEYS_MAX 16

enum syncro_key_kind {
	SYNCRO_KEY_VALID = 1,
	SYNCRO_KEY_NO_ASSETS, /* valid, without the assets permission */
	SYNCRO_KEY_EXPIRED,
};

struct syncro_key {
	const char *key;
	enum syncro_key_kind kind;
};

struct sim_config {
	const char *bind;
	unsigned port;
	const char *port_file;
	const char *tls_cert; /* PEM files; both set: serve HTTPS */
	const char *tls_key;
	struct simdata_options data; /* devices, users, classes, ... are in here */
	bool users_given;
	const char *access_token;
	const char *email;
	const char *password;
	bool fail_login;
	unsigned login_fail_status;
	unsigned first_page;
	unsigned page_size;
	bool honour_page_size;
	enum rows_mode rows;
	enum end_mode end;
	bool ignore_page;
	bool response_array;
	/* the other Mosyle endpoints */
	enum end_mode users_end;
	bool users_no_total;
	bool user_location_strings;
	bool classes_name_key;       /* "name" instead of "class_name" */
	bool groups_response_array;
	unsigned groups_first_page;
	bool not_district;
	unsigned long long token_ttl_ms;       /* 0: JWTs never expire */
	unsigned long long token_max_requests; /* 0: no limit */
	unsigned latency_ms;
	unsigned jitter_ms;
	unsigned max_connections;
	unsigned timeout_s;
	struct fault_rule faults[FAULT_RULES_MAX];
	unsigned nfaults;
	struct fault_rate rates[FAULT_RATES_MAX];
	unsigned nrates;
	size_t huge_size; /* bytes of the "huge" fault's device name */
	/* Syncro */
	struct simdata_syncro_options syncro; /* seed copied from data.seed */
	uint64_t syncro_assets;
	unsigned syncro_page_size;
	bool syncro_honour_per_page;
	bool syncro_no_meta;
	/* the keys the sim knows (--syncro-api-key and the like); with no
	 * --syncro-api-key, SYNCRO_DEFAULT_KEY is accepted too */
	struct syncro_key syncro_keys[SYNCRO_KEYS_MAX];
	unsigned syncro_nkeys;
	bool syncro_default_key;         /* no --syncro-api-key was given */
	bool syncro_no_asset_permission; /* no key has the assets permission */
	unsigned syncro_rate;        /* requests a minute per client address; 0: no limit */
	unsigned syncro_retry_after; /* seconds in Retry-After on a 429; 0: no header */
	unsigned syncro_window_ms;   /* the sliding window the rate is counted over */
};

struct sim_stats {
	atomic_ullong requests;
	atomic_ullong logins;
	atomic_ullong login_failures;
	atomic_ullong unauthorized;   /* Mosyle requests answered 401 */
	atomic_ullong expired_tokens; /* of them, for a JWT past its TTL or request limit */
	atomic_ullong endpoint_requests[EP_NENDPOINTS];
	atomic_llong adminlogs_start_date; /* the last /adminlogs start_date; -1: none */
	atomic_ullong pages[SIMDATA_NOS];
	atomic_ullong past_end;
	atomic_ullong faults;
	atomic_ullong connections;   /* TCP connections accepted */
	atomic_ullong in_flight;     /* requests being answered now */
	atomic_ullong max_in_flight; /* most requests answered at once */
	atomic_ullong compressed;    /* requests that accepted a compressed answer */
	atomic_ullong syncro_requests;         /* requests for a Syncro endpoint */
	atomic_ullong syncro_429;              /* of them, refused by the rate limit */
	atomic_ullong syncro_unauthorized;     /* of them, answered 401 */
	atomic_ullong syncro_api_key_in_query; /* of them, with ?api_key= (refused) */
};

/* The Syncro rate limit: per client address, the times (ms) of the
 * requests let through in the last minute, a ring of --syncro-rate slots. */
struct rate_client {
	int family;
	unsigned char addr[16];
	unsigned long long *times;
	unsigned next;  /* the oldest slot once the ring is full */
	unsigned count;
};

struct rate_table {
	pthread_mutex_t lock;
	struct rate_client *clients;
	size_t n, cap;
};

/* A JWT handed out by /login, and what its expiry depends on. */
struct token {
	char *jwt;
	unsigned long long issued_ms; /* util_now_ms() at the login */
	atomic_ullong uses;           /* requests that presented it */
};

/* The JWTs handed out by /login: an open-addressing hash set. */
struct token_set {
	pthread_rwlock_t lock;
	struct token **slots;
	size_t cap;
	size_t count;
};

enum token_state {
	TOKEN_UNKNOWN,
	TOKEN_OK,
	TOKEN_EXPIRED,
};

struct sim {
	struct sim_config cfg;
	struct sim_stats stats;
	struct token_set tokens;
	struct rate_table syncro_rate;
	atomic_ullong login_serial;
	uint64_t token_secret;
	atomic_uint fault_hits[FAULT_RULES_MAX]; /* requests each rule has faulted */
	atomic_ullong list_serial;                /* Mosyle reads but /login, for --fault-rate */
	atomic_bool stopping;                     /* cuts stalls and slow answers short */
};

/* One HTTP request: the body as it arrives. */
struct request {
	struct buf body;
	bool too_large;
	bool counted; /* in stats.in_flight */
};

static void count(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long load(atomic_ullong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t k = 0; k < n; k++) {
		h ^= s[k];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* ------------------------------------------------------------------ */
/* tokens */

static void token_set_init(struct token_set *ts)
{
	pthread_rwlock_init(&ts->lock, NULL);
	ts->cap = 64;
	ts->count = 0;
	ts->slots = xcalloc(ts->cap, sizeof(*ts->slots));
}

static void token_set_free(struct token_set *ts)
{
	for (size_t k = 0; k < ts->cap; k++) {
		if (ts->slots[k])
			free(ts->slots[k]->jwt);
		free(ts->slots[k]);
	}
	free(ts->slots);
	ts->slots = NULL;
	pthread_rwlock_destroy(&ts->lock);
}

static size_t token_slot(struct token **slots, size_t cap, const char *tok, size_t len)
{
	size_t k = (size_t)fnv1a(UINT64_C(0xcbf29ce484222325), tok, len) & (cap - 1);
	while (slots[k] && !(strlen(slots[k]->jwt) == len && memcmp(slots[k]->jwt, tok, len) == 0))
		k = (k + 1) & (cap - 1);
	return k;
}

/* Takes ownership of jwt, issued now. */
static void token_set_add(struct token_set *ts, char *jwt)
{
	struct token *t = xcalloc(1, sizeof(*t));
	t->jwt = jwt;
	t->issued_ms = util_now_ms();
	atomic_init(&t->uses, 0);

	pthread_rwlock_wrlock(&ts->lock);
	if (2 * (ts->count + 1) > ts->cap) {
		size_t cap = ts->cap * 2;
		struct token **slots = xcalloc(cap, sizeof(*slots));
		for (size_t k = 0; k < ts->cap; k++)
			if (ts->slots[k])
				slots[token_slot(slots, cap, ts->slots[k]->jwt,
						 strlen(ts->slots[k]->jwt))] = ts->slots[k];
		free(ts->slots);
		ts->slots = slots;
		ts->cap = cap;
	}
	size_t k = token_slot(ts->slots, ts->cap, jwt, strlen(jwt));
	if (ts->slots[k]) {
		free(t->jwt);
		free(t);
	} else {
		ts->slots[k] = t;
		ts->count++;
	}
	pthread_rwlock_unlock(&ts->lock);
}

/* Count one use of the JWT tok[0, len) and say whether it is one we
 * issued and still valid: a JWT expires ttl_ms after its login, and after
 * max_uses requests have presented it (0: never). Expired JWTs stay in the
 * set, so they keep being told apart from unknown ones. */
static enum token_state token_set_use(struct token_set *ts, const char *tok, size_t len,
				      unsigned long long ttl_ms, unsigned long long max_uses)
{
	enum token_state state = TOKEN_UNKNOWN;

	pthread_rwlock_rdlock(&ts->lock);
	struct token *t = ts->slots[token_slot(ts->slots, ts->cap, tok, len)];
	if (t) {
		unsigned long long uses = atomic_fetch_add(&t->uses, 1) + 1;
		if (ttl_ms && util_now_ms() - t->issued_ms >= ttl_ms)
			state = TOKEN_EXPIRED;
		else if (max_uses && uses > max_uses)
			state = TOKEN_EXPIRED;
		else
			state = TOKEN_OK;
	}
	pthread_rwlock_unlock(&ts->lock);
	return state;
}

static void put_base64url(struct buf *b, const unsigned char *p, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t k = 0;
	for (; k + 3 <= n; k += 3) {
		uint32_t v = (uint32_t)p[k] << 16 | (uint32_t)p[k + 1] << 8 | p[k + 2];
		char out[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63],
			       alphabet[(v >> 6) & 63], alphabet[v & 63]};
		buf_append(b, out, 4);
	}
	if (n - k == 1) {
		uint32_t v = (uint32_t)p[k] << 16;
		char out[2] = {alphabet[v >> 18], alphabet[(v >> 12) & 63]};
		buf_append(b, out, 2);
	} else if (n - k == 2) {
		uint32_t v = (uint32_t)p[k] << 16 | (uint32_t)p[k + 1] << 8;
		char out[3] = {alphabet[v >> 18], alphabet[(v >> 12) & 63],
			       alphabet[(v >> 6) & 63]};
		buf_append(b, out, 3);
	}
}

/* A JWT-shaped token, unique per call; the caller owns it. */
static char *make_token(struct sim *sim)
{
	unsigned long long serial = atomic_fetch_add(&sim->login_serial, 1) + 1;
	long long now = (long long)time(NULL);
	struct buf payload = BUF_INIT, tok = BUF_INIT;
	unsigned char sig[32];

	/* exp says what --token-ttl-ms enforces, rounded up to a second */
	long long life = sim->cfg.token_ttl_ms ? (long long)((sim->cfg.token_ttl_ms + 999) / 1000)
					       : 86400;
	buf_printf(&payload, "{\"sub\":\"1\",\"iss\":\"invsync-sim\",\"iat\":%lld,\"exp\":%lld,"
		   "\"jti\":\"%llu\"}", now, now + life, serial);
	for (size_t k = 0; k < sizeof(sig); k += 8) {
		uint64_t v = simdata_mix64(sim->token_secret ^ simdata_mix64(serial * 4 + k / 8));
		memcpy(sig + k, &v, 8);
	}
	buf_puts(&tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.");
	put_base64url(&tok, (const unsigned char *)payload.data, payload.len);
	buf_putc(&tok, '.');
	put_base64url(&tok, sig, sizeof(sig));
	buf_free(&payload);
	return tok.data;
}

/* The state of the JWT in an Authorization header value ("Bearer <jwt>"),
 * counting one use of it. */
static enum token_state bearer_state(struct sim *sim, const char *value)
{
	if (!value)
		return TOKEN_UNKNOWN;
	while (*value == ' ' || *value == '\t')
		value++;
	if (strncasecmp(value, "Bearer ", 7) != 0)
		return TOKEN_UNKNOWN;
	value += 7;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t len = strlen(value);
	while (len && strchr(" \t\r\n", value[len - 1]))
		len--;
	if (!len)
		return TOKEN_UNKNOWN;
	return token_set_use(&sim->tokens, value, len, sim->cfg.token_ttl_ms,
			     sim->cfg.token_max_requests);
}

/* ------------------------------------------------------------------ */
/* JSON helpers */

static void put_json_string(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c < 0x20) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_putc(b, (char)c);
		}
	}
	buf_putc(b, '"');
}

static yajl_val get_key(yajl_val obj, const char *key)
{
	const char *path[] = {key, NULL};
	return obj ? yajl_tree_get(obj, path, yajl_t_any) : NULL;
}

/* The string at obj.key, or NULL. */
static const char *get_string(yajl_val obj, const char *key)
{
	yajl_val v = get_key(obj, key);
	return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

/* A non-negative integer given as a number or a string of digits. */
static bool get_count(yajl_val v, unsigned long long *out)
{
	if (YAJL_IS_INTEGER(v)) {
		if (YAJL_GET_INTEGER(v) < 0)
			return false;
		*out = (unsigned long long)YAJL_GET_INTEGER(v);
		return true;
	}
	if (YAJL_IS_STRING(v)) {
		const char *s = YAJL_GET_STRING(v);
		char *end;
		if (*s < '0' || *s > '9')
			return false;
		errno = 0;
		*out = strtoull(s, &end, 10);
		return !*end && errno == 0;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* replies */

/* Queue body (taken over: the response frees it) with status, content
 * type and NULL-terminated name/value header pairs (may be NULL). */
static enum MHD_Result reply_typed(struct MHD_Connection *conn, unsigned status,
				   struct buf *body, const char *content_type,
				   const char *const *headers)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!body->data)
		buf_puts(body, "");
	resp = MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		buf_free(body);
		return MHD_NO;
	}
	buf_init(body); /* owned by the response now */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (; headers && headers[0]; headers += 2)
		if (headers[1])
			MHD_add_response_header(resp, headers[0], headers[1]);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Queue a JSON body (taken over) with status and optional headers. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, struct buf *body,
			     const char *authorization, const char *allow)
{
	const char *headers[] = {MHD_HTTP_HEADER_AUTHORIZATION, authorization,
				 MHD_HTTP_HEADER_ALLOW, allow, NULL};
	return reply_typed(conn, status, body, JSON_TYPE, headers);
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status,
				  const char *text, const char *allow)
{
	struct buf body = BUF_INIT;
	buf_puts(&body, text);
	return reply(conn, status, &body, NULL, allow);
}

/* Mosyle's validation errors: HTTP 200, outer OK, inner status/info. */
static void put_inner_status(struct buf *body, const char *status, const char *info)
{
	buf_printf(body, "{\"status\":\"OK\",\"response\":[{\"status\":\"%s\",\"info\":", status);
	put_json_string(body, info);
	buf_puts(body, "}]}");
}

static enum MHD_Result reply_inner_status(struct MHD_Connection *conn, const char *status,
					  const char *info)
{
	struct buf body = BUF_INIT;
	put_inner_status(&body, status, info);
	return reply(conn, MHD_HTTP_OK, &body, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* authentication */

/* Every Mosyle read wants the accessToken in the body and a JWT from
 * /login, unexpired, in the Authorization header. A body with the wrong
 * accessToken is refused before the JWT is looked at, so it does not count
 * as a use of the JWT. */
static enum token_state check_auth(struct sim *sim, struct MHD_Connection *conn, yajl_val root)
{
	const char *token = get_string(root, "accessToken");
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_AUTHORIZATION);
	if (!token || strcmp(token, sim->cfg.access_token) != 0)
		return TOKEN_UNKNOWN;
	return bearer_state(sim, auth);
}

/* The one answer to a refused request, whether the JWT is unknown or has
 * expired: a client cannot tell them apart, and must log in again. */
static enum MHD_Result reply_unauthorized(struct sim *sim, struct MHD_Connection *conn,
					  enum token_state state)
{
	count(&sim->stats.unauthorized);
	if (state == TOKEN_EXPIRED)
		count(&sim->stats.expired_tokens);
	return reply_text(conn, MHD_HTTP_UNAUTHORIZED,
			  "{\"status\":\"error\",\"message\":\"Unauthorized\"}", NULL);
}

/* ------------------------------------------------------------------ */
/* faults */

/* Faults that change the first device of a /listdevices page: on another
 * endpoint they would change nothing. */
static bool fault_is_device_only(enum fault_kind kind)
{
	return kind == FAULT_HUGE || kind == FAULT_NESTED || kind == FAULT_BADUTF8 ||
	       kind == FAULT_DUPKEYS || kind == FAULT_TYPES;
}

/* Whether rule k, which matches a request, takes it: a rule with a count
 * takes only that many requests. */
static bool fault_rule_takes(struct sim *sim, unsigned k)
{
	const struct fault_rule *rule = &sim->cfg.faults[k];
	if (rule->times == 0)
		return true;
	unsigned n = atomic_load(&sim->fault_hits[k]);
	while (n < rule->times)
		if (atomic_compare_exchange_weak(&sim->fault_hits[k], &n, n + 1))
			return true;
	return false;
}

/* The fault a --fault rule puts on one request, or FAULT_NONE: a request
 * of Syncro endpoint syncro, or (SYNCRO_NONE) of Mosyle endpoint ep and os
 * (-1 if it has none), for page (1 if unpaged). Rules are tried in the
 * order given; a rule with a count takes only that many requests, so
 * rules for one page are served one after the other. */
static enum fault_kind choose_rule_fault(struct sim *sim, enum syncro_endpoint syncro,
					 enum mosyle_endpoint ep, int os, unsigned long long page)
{
	const struct sim_config *cfg = &sim->cfg;

	for (unsigned k = 0; k < cfg->nfaults; k++) {
		const struct fault_rule *rule = &cfg->faults[k];
		if (rule->syncro != syncro || rule->page != page)
			continue;
		if (syncro == SYNCRO_NONE &&
		    (rule->endpoint != ep || (rule->os >= 0 && rule->os != os)))
			continue;
		if (fault_rule_takes(sim, k))
			return rule->kind;
	}
	return FAULT_NONE;
}

/* The fault for one read of endpoint ep, os and page: a --fault rule's,
 * else one drawn by --fault-rate, else FAULT_NONE. */
static enum fault_kind choose_fault(struct sim *sim, enum mosyle_endpoint ep, int os,
				    unsigned long long page)
{
	const struct sim_config *cfg = &sim->cfg;
	/* every request draws its number, faulted by a rule or not, so the
	 * random faults depend only on the order of requests */
	unsigned long long serial = atomic_fetch_add(&sim->list_serial, 1);
	enum fault_kind rule_kind = choose_rule_fault(sim, SYNCRO_NONE, ep, os, page);

	if (rule_kind != FAULT_NONE)
		return rule_kind;
	if (cfg->nrates) {
		/* the constant ("fault") keeps these draws apart from the
		 * inventory's, which hash the same seed */
		uint64_t draw = simdata_mix64(simdata_mix64(cfg->data.seed ^ UINT64_C(0x6661756c74)) ^ serial) % 10000;
		for (unsigned k = 0; k < cfg->nrates; k++) {
			if (draw < cfg->rates[k].basis_points)
				return ep != EP_DEVICES && fault_is_device_only(cfg->rates[k].kind)
					       ? FAULT_NONE : cfg->rates[k].kind;
			draw -= cfg->rates[k].basis_points;
		}
	}
	return FAULT_NONE;
}

static int connection_fd(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return info ? (int)info->connect_fd : -1;
}

/* Sleep up to ms on a connection's thread. Returns false early when the
 * client hangs up (a client timeout) or the simulator is stopping. */
static bool pause_connection(struct sim *sim, int fd, unsigned ms)
{
	unsigned long long deadline = util_now_ms() + ms;
	for (;;) {
		unsigned long long now = util_now_ms();
		if (atomic_load(&sim->stopping))
			return false;
		if (now >= deadline)
			return true;
		struct pollfd p = {.fd = fd, .events = POLLRDHUP};
		int wait = deadline - now < 100 ? (int)(deadline - now) : 100;
		if (fd < 0) {
			struct timespec ts = {0, (long)wait * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		if (poll(&p, 1, wait) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
			return false;
	}
}

/* Whether a fault serves the real page (delayed, cut or corrupted) rather
 * than an answer of its own. */
static bool fault_serves_page(enum fault_kind kind)
{
	return kind == FAULT_SLOW || kind == FAULT_MALFORMED || kind == FAULT_RESET ||
	       kind == FAULT_TRUNCATE || kind == FAULT_STALL || kind == FAULT_HUGE ||
	       kind == FAULT_NESTED || kind == FAULT_BADUTF8 || kind == FAULT_DUPKEYS ||
	       kind == FAULT_TYPES;
}

/* The faults answered without the page: error statuses, and the HTML and
 * empty bodies sent with 200. */
static enum MHD_Result reply_fault_status(struct MHD_Connection *conn, enum fault_kind kind)
{
	static const char *const retry_after[] = {MHD_HTTP_HEADER_RETRY_AFTER, "1", NULL};
	struct buf body = BUF_INIT;

	switch (kind) {
	case FAULT_500:
		buf_puts(&body, "{\"status\":\"error\",\"message\":\"Internal Server Error\"}");
		return reply_typed(conn, 500, &body, JSON_TYPE, NULL);
	case FAULT_502:
		buf_puts(&body, "<html><head><title>502 Bad Gateway</title></head><body>"
				"<h1>502 Bad Gateway</h1></body></html>\n");
		return reply_typed(conn, 502, &body, HTML_TYPE, NULL);
	case FAULT_503:
		buf_puts(&body, "{\"status\":\"error\",\"message\":\"Service Unavailable\"}");
		return reply_typed(conn, 503, &body, JSON_TYPE, NULL);
	case FAULT_429:
	case FAULT_429_RETRY_AFTER:
		buf_puts(&body, "{\"status\":\"error\",\"message\":\"Too Many Requests\"}");
		return reply_typed(conn, 429, &body, JSON_TYPE,
				   kind == FAULT_429_RETRY_AFTER ? retry_after : NULL);
	case FAULT_HTML:
		buf_puts(&body, "<html><body>Service temporarily unavailable</body></html>");
		return reply_typed(conn, MHD_HTTP_OK, &body, HTML_TYPE, NULL);
	case FAULT_EMPTY:
		return reply_typed(conn, MHD_HTTP_OK, &body, JSON_TYPE, NULL);
	case FAULT_INNER:
		return reply_inner_status(conn, "INVALID_DATA", FAULT_INNER_INFO);
	default:
		return MHD_NO; /* not an error-status fault: close the connection */
	}
}

/* Make the JSON invalid near the middle without changing its length: the
 * ':' after a key becomes '!'. A '"' preceded by a letter, digit or '_'
 * cannot be an escaped quote inside a string, and one that ends a value
 * is never followed by ':', so this always hits a key. */
static void corrupt_body(struct buf *body)
{
	size_t from = body->len / 2;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = from ? from : 1; k + 1 < body->len; k++) {
			char c = body->data[k - 1];
			if (body->data[k] == '"' && body->data[k + 1] == ':' &&
			    (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9'))) {
				body->data[k + 1] = '!';
				return;
			}
		}
		from = 0;
	}
}

/* Give the first device of the page the huge name (simdata_huge_name of
 * bytes bytes). The first '"device_name":"' is that device's key: a quote
 * inside a JSON string is always escaped, so the text cannot occur in a
 * value. A page without devices is left alone. */
static void put_huge_name(struct buf *body, size_t bytes)
{
	static const char key[] = "\"device_name\":";
	const char *at = strstr(buf_str(body), key);
	if (!at)
		return;
	size_t from = (size_t)(at - body->data) + sizeof(key) - 1; /* the opening quote */
	size_t to = from + 1;
	while (to < body->len && body->data[to] != '"')
		to += body->data[to] == '\\' ? 2 : 1;
	if (body->data[from] != '"' || to >= body->len)
		return;
	struct buf out = BUF_INIT, name = BUF_INIT;
	simdata_huge_name(bytes, &name);
	buf_reserve(&out, body->len + bytes * 2);
	buf_append(&out, body->data, from);
	put_json_string(&out, name.data);
	buf_append(&out, body->data + to + 1, body->len - to - 1);
	buf_free(&name);
	buf_free(body);
	*body = out;
}

/* The offset just past the JSON value starting at body[at] (after any
 * blanks), or body->len if it does not end. Strings are skipped with their
 * escapes, containers with everything inside them. */
static size_t json_value_end(const struct buf *body, size_t at)
{
	const char *s = body->data;
	size_t n = body->len, depth = 0;
	bool in_string = false;

	while (at < n && (s[at] == ' ' || s[at] == '\t' || s[at] == '\n' || s[at] == '\r'))
		at++;
	for (; at < n; at++) {
		char c = s[at];
		if (in_string) {
			if (c == '\\')
				at++;
			else if (c == '"') {
				in_string = false;
				if (depth == 0)
					return at + 1;
			}
		} else if (c == '"') {
			in_string = true;
		} else if (depth == 0 && (c == ',' || c == '}' || c == ']' || c == ' ' ||
					  c == '\t' || c == '\n' || c == '\r')) {
			return at; /* the end of a number, true, false or null */
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (--depth == 0)
				return at + 1;
		}
	}
	return n;
}

/* The first device of the page: [*from, *to) spans its object. False for
 * a page without devices. */
static bool first_device(const struct buf *body, size_t *from, size_t *to)
{
	static const char key[] = "\"devices\":[";
	const char *at = strstr(buf_str(body), key);
	if (!at)
		return false;
	size_t k = (size_t)(at - body->data) + sizeof(key) - 1;
	if (k >= body->len || body->data[k] != '{')
		return false;
	*from = k;
	*to = json_value_end(body, k);
	return *to <= body->len && body->data[*to - 1] == '}';
}

/* Within [from, to), the value of the key name of the first device:
 * [*vfrom, *vto). A '"name":' cannot occur inside a string value, where
 * quotes are escaped; the first device's own keys come before any of a
 * nested object's, since simdata puts no objects before its columns. */
static bool device_value(const struct buf *body, size_t from, size_t to, const char *name,
			 size_t *vfrom, size_t *vto)
{
	char key[64];
	int klen = snprintf(key, sizeof(key), "\"%s\":", name);
	if (klen < 0 || (size_t)klen >= sizeof(key))
		return false;
	const char *at = memmem(body->data + from, to - from, key, (size_t)klen);
	if (!at)
		return false;
	*vfrom = (size_t)(at - body->data) + (size_t)klen;
	*vto = json_value_end(body, *vfrom);
	return *vto <= to;
}

/* Replace body[from, to) with text (len bytes). */
static void splice(struct buf *body, size_t from, size_t to, const char *text, size_t len)
{
	struct buf out = BUF_INIT;
	buf_reserve(&out, body->len - (to - from) + len);
	buf_append(&out, body->data, from);
	buf_append(&out, text, len);
	buf_append(&out, body->data + to, body->len - to);
	buf_free(body);
	*body = out;
}

/* Replace the value of key name in the page's first device with text.
 * Nothing happens when the page has no devices or the device lacks the
 * key (a specific_columns request). */
static void replace_device_value(struct buf *body, const char *name, const char *text)
{
	size_t from, to, vfrom, vto;
	if (!first_device(body, &from, &to) || !device_value(body, from, to, name, &vfrom, &vto))
		return;
	splice(body, vfrom, vto, text, strlen(text));
}

#define NESTED_DEPTH 100

/* The "nested", "badutf8", "dupkeys" and "types" faults: the real page,
 * its first device changed. A page without devices is left alone. The
 * body is replaced, so Content-Length follows. */
static void alter_first_device(struct buf *body, enum fault_kind kind)
{
	size_t from, to;
	if (!first_device(body, &from, &to))
		return;
	switch (kind) {
	case FAULT_NESTED: {
		/* an extra key first: {"nested":{"a":{"a":...1...}},...} */
		struct buf v = BUF_INIT;
		buf_puts(&v, "\"nested\":");
		for (int k = 1; k < NESTED_DEPTH; k++)
			buf_puts(&v, "{\"a\":");
		buf_puts(&v, "[1]");
		for (int k = 1; k < NESTED_DEPTH; k++)
			buf_putc(&v, '}');
		buf_putc(&v, ',');
		splice(body, from + 1, from + 1, v.data, v.len);
		buf_free(&v);
		break;
	}
	case FAULT_BADUTF8:
		/* a truncated 2-byte sequence (0xC3 then '('), and 0xFF, which
		 * UTF-8 never uses */
		replace_device_value(body, "device_name", "\"Bad \xC3\x28 name \xFF end\"");
		break;
	case FAULT_DUPKEYS: {
		size_t vfrom, vto;
		if (device_value(body, from, to, "serial_number", &vfrom, &vto)) {
			/* "serial_number":"DUP-SERIAL","serial_number":<the real one> */
			struct buf v = BUF_INIT;
			buf_puts(&v, "\"DUP-SERIAL\",\"serial_number\":");
			buf_append(&v, body->data + vfrom, vto - vfrom);
			splice(body, vfrom, vto, v.data, v.len);
			buf_free(&v);
		}
		replace_device_value(body, "device_name",
				     "\"DUP-FIRST\",\"device_name\":\"DUP-SECOND\"");
		break;
	}
	case FAULT_TYPES:
		replace_device_value(body, "total_disk", "256");
		replace_device_value(body, "is_supervised", "true");
		replace_device_value(body, "osversion", "17.4");
		replace_device_value(body, "date_last_beat", "1710264696");
		replace_device_value(body, "battery", "\"n/a\"");
		break;
	default:
		break;
	}
}

/* A 200 answer whose body stops half way (reset, truncate) or pauses
 * there (stall). Owned by the MHD response; freed by partial_free. */
struct partial_body {
	struct sim *sim;
	struct buf body;
	size_t cut;          /* bytes sent before the fault */
	enum fault_kind kind;
	int fd;              /* the connection's socket */
	bool stalled;
};

static ssize_t partial_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct partial_body *pb = cls;
	size_t end = pb->kind == FAULT_STALL && pb->stalled ? pb->body.len : pb->cut;

	if (pos < end) {
		size_t n = end - (size_t)pos < max ? end - (size_t)pos : max;
		memcpy(out, pb->body.data + pos, n);
		return (ssize_t)n;
	}
	if (pb->kind == FAULT_STALL && !pb->stalled) {
		pb->stalled = true;
		if (!pause_connection(pb->sim, pb->fd, STALL_MS))
			return MHD_CONTENT_READER_END_WITH_ERROR; /* the client gave up */
		return partial_read(cls, pos, out, max);
	}
	if (pb->kind == FAULT_RESET && pb->fd >= 0) {
		/* A reset makes the client drop what it has received and not
		 * read yet: let the first half reach it and be read first. */
		int unsent = 0;
		for (int k = 0; k < 100; k++) {
			if (ioctl(pb->fd, TIOCOUTQ, &unsent) != 0 || unsent == 0)
				break;
			if (!pause_connection(pb->sim, pb->fd, 10))
				return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		if (!pause_connection(pb->sim, pb->fd, 200))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		/* An abortive close: dissolving the association sends a RST
		 * now, before libmicrohttpd's orderly shutdown could send a
		 * FIN. Zero linger makes the final close abortive as well. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		struct sockaddr unspec = {.sa_family = AF_UNSPEC};
		setsockopt(pb->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		/* if this fails, the zero-linger close still resets */
		(void)connect(pb->fd, &unspec, sizeof(unspec));
	}
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void partial_free(void *cls)
{
	struct partial_body *pb = cls;
	buf_free(&pb->body);
	free(pb);
}

/* Queue a reset, truncate or stall answer for body (taken over). */
static enum MHD_Result reply_partial(struct sim *sim, struct MHD_Connection *conn,
				     struct buf *body, enum fault_kind kind)
{
	struct partial_body *pb = xcalloc(1, sizeof(*pb));
	struct MHD_Response *resp;
	enum MHD_Result ret;

	pb->sim = sim;
	pb->body = *body;
	buf_init(body);
	pb->kind = kind;
	pb->cut = pb->body.len / 2 ? pb->body.len / 2 : 1;
	pb->fd = connection_fd(conn);
	resp = MHD_create_response_from_callback(pb->body.len, 16 * 1024, partial_read, pb,
						 partial_free);
	if (!resp) {
		partial_free(pb);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_TYPE);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The start of a faulty answer, for a request that drew fault (counted
 * here): true when the fault answers on its own (*ret holds the reply),
 * false when the page is to be built, then sent by reply_page. */
static bool fault_answers(struct sim *sim, struct MHD_Connection *conn, enum fault_kind fault,
			  enum MHD_Result *ret)
{
	if (fault == FAULT_NONE)
		return false;
	count(&sim->stats.faults);
	if (fault == FAULT_SLOW && !pause_connection(sim, connection_fd(conn), SLOW_MS)) {
		*ret = MHD_NO; /* the client is gone: close */
		return true;
	}
	if (!fault_serves_page(fault)) {
		*ret = reply_fault_status(conn, fault);
		return true;
	}
	return false;
}

/* Send a page (body, taken over) with what fault does to it. */
static enum MHD_Result reply_page(struct sim *sim, struct MHD_Connection *conn,
				  struct buf *body, enum fault_kind fault)
{
	if (fault == FAULT_HUGE)
		put_huge_name(body, sim->cfg.huge_size);
	if (fault == FAULT_MALFORMED)
		corrupt_body(body);
	if (fault == FAULT_NESTED || fault == FAULT_BADUTF8 || fault == FAULT_DUPKEYS ||
	    fault == FAULT_TYPES)
		alter_first_device(body, fault);
	if (fault == FAULT_RESET || fault == FAULT_TRUNCATE || fault == FAULT_STALL)
		return reply_partial(sim, conn, body, fault);
	return reply(conn, MHD_HTTP_OK, body, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* endpoints */

static enum MHD_Result do_login(struct sim *sim, struct MHD_Connection *conn, yajl_val root)
{
	const struct sim_config *cfg = &sim->cfg;
	const char *token = get_string(root, "accessToken");
	const char *email = get_string(root, "email");
	const char *password = get_string(root, "password");
	struct buf body = BUF_INIT, auth = BUF_INIT;
	enum MHD_Result ret;

	/* a --fault rule answers for the edge in front of the API, before
	 * the credentials are looked at; --fault-rate leaves logins alone */
	if (fault_answers(sim, conn, choose_rule_fault(sim, SYNCRO_NONE, EP_LOGIN, -1, 1), &ret))
		return ret;
	if (cfg->fail_login || !token || !email || !password ||
	    strcmp(token, cfg->access_token) != 0 || strcmp(email, cfg->email) != 0 ||
	    strcmp(password, cfg->password) != 0) {
		count(&sim->stats.login_failures);
		return reply_text(conn, cfg->login_fail_status,
				  "{\"status\":\"error\",\"message\":\"Invalid credentials\"}", NULL);
	}
	count(&sim->stats.logins);
	char *jwt = make_token(sim);
	buf_puts(&auth, "Bearer ");
	buf_puts(&auth, jwt);
	token_set_add(&sim->tokens, jwt);
	buf_puts(&body, "{\"UserID\":\"1\",\"email\":");
	put_json_string(&body, cfg->email);
	buf_putc(&body, '}');
	ret = reply(conn, MHD_HTTP_OK, &body, auth.data, NULL);
	buf_free(&auth);
	return ret;
}

static void put_meta_number(struct buf *b, const char *key, unsigned long long v,
			    enum rows_mode mode)
{
	if (mode == ROWS_ABSENT)
		return;
	if (mode == ROWS_STRING)
		buf_printf(b, ",\"%s\":\"%llu\"", key, v);
	else
		buf_printf(b, ",\"%s\":%llu", key, v);
}

/* options.specific_columns: false (and *unknown filled) if a name is not a
 * column; *filter false when every column is wanted. */
static bool parse_columns(yajl_val list, struct simdata_columns *cols, bool *filter,
			  struct buf *unknown)
{
	memset(cols, 0, sizeof(*cols));
	*filter = false;
	if (!YAJL_IS_ARRAY(list) || list->u.array.len == 0)
		return true;
	*filter = true;
	for (size_t k = 0; k < list->u.array.len; k++) {
		yajl_val v = list->u.array.values[k];
		const char *name = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : "";
		int index = simdata_column_index(name, strlen(name));
		if (index >= 0) {
			simdata_columns_add(cols, index);
			continue;
		}
		buf_puts(unknown, unknown->len ? ", " : "Unknown columns: ");
		buf_puts(unknown, name);
	}
	return unknown->len == 0;
}

static enum MHD_Result do_listdevices(struct sim *sim, struct MHD_Connection *conn,
				      yajl_val root)
{
	const struct sim_config *cfg = &sim->cfg;
	yajl_val options, os_val, page_val, size_val;
	unsigned long long page, page_size = cfg->page_size, rows, first, start, end;
	struct simdata_columns cols;
	bool filter;
	struct buf body = BUF_INIT;
	enum fault_kind fault;
	enum token_state auth;
	enum MHD_Result ret;
	int os;

	auth = check_auth(sim, conn, root);
	if (auth != TOKEN_OK)
		return reply_unauthorized(sim, conn, auth);
	options = get_key(root, "options");
	os_val = get_key(options, "os");
	if (!os_val)
		return reply_inner_status(conn, "MISSING_DATA", "Missing key: os");
	os = YAJL_IS_STRING(os_val) ? simdata_os_from_name(YAJL_GET_STRING(os_val)) : -1;
	if (os < 0)
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: os");

	page = cfg->first_page;
	page_val = get_key(options, "page");
	if (page_val && !get_count(page_val, &page))
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: page");
	size_val = get_key(options, "page_size");
	if (cfg->honour_page_size && size_val) {
		unsigned long long asked;
		if (get_count(size_val, &asked) && asked >= 1 && asked <= PAGE_SIZE_MAX)
			page_size = asked;
	}
	if (!parse_columns(get_key(options, "specific_columns"), &cols, &filter, &body)) {
		ret = reply_inner_status(conn, "UNKNOWN_COLUMNS", body.data);
		buf_free(&body);
		return ret;
	}

	fault = choose_fault(sim, EP_DEVICES, os, page);
	count(&sim->stats.pages[os]);
	if (fault_answers(sim, conn, fault, &ret))
		return ret;

	/* Page p >= F covers [(p - F) * S, (p - F + 1) * S); page 0 is the
	 * first page too when F is 1. */
	if (cfg->ignore_page)
		page = cfg->first_page;
	rows = cfg->data.devices[os];
	first = page > cfg->first_page ? page - cfg->first_page : 0;
	if (first >= (rows + page_size - 1) / page_size) {
		count(&sim->stats.past_end);
		if (cfg->end == END_NOTFOUND) {
			put_inner_status(&body, "DEVICES_NOTFOUND", "No devices found");
			return reply_page(sim, conn, &body, fault);
		}
		start = end = 0;
	} else {
		start = first * page_size;
		end = start + page_size < rows ? start + page_size : rows;
	}

	buf_reserve(&body, (size_t)(end - start) * 2800 + 256);
	buf_puts(&body, cfg->response_array ? "{\"status\":\"OK\",\"response\":[{\"devices\":["
					    : "{\"status\":\"OK\",\"response\":{\"devices\":[");
	for (unsigned long long i = start; i < end; i++) {
		struct simdata_device dev;
		if (i != start)
			buf_putc(&body, ',');
		simdata_device(&cfg->data, (enum simdata_os)os, i, &dev);
		if (filter)
			simdata_device_json_columns(&cfg->data, (enum simdata_os)os, &dev, &cols,
						    &body);
		else
			simdata_device_json(&cfg->data, (enum simdata_os)os, &dev, &body);
	}
	buf_putc(&body, ']');
	put_meta_number(&body, "rows", rows, cfg->rows);
	put_meta_number(&body, "page_size", page_size, cfg->rows);
	put_meta_number(&body, "page", page, cfg->rows);
	buf_puts(&body, cfg->response_array ? "}]}" : "}}");
	return reply_page(sim, conn, &body, fault);
}

/* A page number at obj.key into *page, left alone when absent; false if
 * it is there but not a count. */
static bool get_page(yajl_val obj, const char *key, unsigned long long *page)
{
	yajl_val v = get_key(obj, key);
	return !v || get_count(v, page);
}

/* options.os, or -1 after answering the inner status that says why. */
static int get_os(struct MHD_Connection *conn, yajl_val obj, enum MHD_Result *ret)
{
	yajl_val v = get_key(obj, "os");
	int os;
	if (!v) {
		*ret = reply_inner_status(conn, "MISSING_DATA", "Missing key: os");
		return -1;
	}
	os = YAJL_IS_STRING(v) ? simdata_os_from_name(YAJL_GET_STRING(v)) : -1;
	if (os < 0)
		*ret = reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: os");
	return os;
}

/* Items [*start, *end) of total on the page index-th page (from 0) of
 * size; false (and an empty range) past the end. */
static bool page_range(unsigned long long index, unsigned long long size,
		       unsigned long long total, unsigned long long *start, unsigned long long *end)
{
	if (index >= (total + size - 1) / size) {
		*start = *end = 0;
		return false;
	}
	*start = index * size;
	*end = *start + size < total ? *start + size : total;
	return true;
}

/* POST /listusers: options.page from 1 (0 is 1 too), options.page_size
 * honoured up to USERS_PAGE_MAX; total, page_size and page as strings. */
static enum MHD_Result do_listusers(struct sim *sim, struct MHD_Connection *conn, yajl_val root)
{
	const struct sim_config *cfg = &sim->cfg;
	yajl_val options = get_key(root, "options"), size_val;
	unsigned long long page = 1, size = USERS_PAGE_DEFAULT, asked, start, end;
	struct buf body = BUF_INIT;
	enum token_state auth;
	enum fault_kind fault;
	enum MHD_Result ret;

	auth = check_auth(sim, conn, root);
	if (auth != TOKEN_OK)
		return reply_unauthorized(sim, conn, auth);
	if (!get_page(options, "page", &page))
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: page");
	size_val = get_key(options, "page_size");
	if (size_val && get_count(size_val, &asked) && asked >= 1)
		size = asked < USERS_PAGE_MAX ? asked : USERS_PAGE_MAX;

	fault = choose_fault(sim, EP_USERS, -1, page);
	if (fault_answers(sim, conn, fault, &ret))
		return ret;
	if (!page_range(page ? page - 1 : 0, size, cfg->data.users, &start, &end) &&
	    cfg->users_end == END_NOTFOUND) {
		buf_puts(&body, "{\"status\":\"OK\",\"response\":{\"status\":\"USERS_NOTFOUND\","
				"\"info\":\"No users found\"}}");
		return reply_page(sim, conn, &body, fault);
	}
	buf_reserve(&body, (size_t)(end - start) * 512 + 256);
	buf_puts(&body, "{\"status\":\"OK\",\"response\":{\"users\":[");
	for (unsigned long long u = start; u < end; u++) {
		struct simdata_user user;
		if (u != start)
			buf_putc(&body, ',');
		simdata_user(&cfg->data, u, &user);
		simdata_user_json(&user, cfg->user_location_strings, &body);
	}
	buf_putc(&body, ']');
	if (!cfg->users_no_total)
		buf_printf(&body, ",\"total\":\"%llu\"", (unsigned long long)cfg->data.users);
	buf_printf(&body, ",\"page_size\":\"%llu\",\"page\":\"%llu\"}}", size, page);
	return reply_page(sim, conn, &body, fault);
}

/* POST /listclasses: options.page from 1 (0 is 1 too), CLASSES_PAGE a
 * page whatever page_size says, no total, NO_CLASSES_FOUND past the end. */
static enum MHD_Result do_listclasses(struct sim *sim, struct MHD_Connection *conn,
				      yajl_val root)
{
	const struct sim_config *cfg = &sim->cfg;
	unsigned long long page = 1, start, end;
	struct buf body = BUF_INIT;
	enum token_state auth;
	enum fault_kind fault;
	enum MHD_Result ret;

	auth = check_auth(sim, conn, root);
	if (auth != TOKEN_OK)
		return reply_unauthorized(sim, conn, auth);
	if (!get_page(get_key(root, "options"), "page", &page))
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: page");

	fault = choose_fault(sim, EP_CLASSES, -1, page);
	if (fault_answers(sim, conn, fault, &ret))
		return ret;
	if (!page_range(page ? page - 1 : 0, CLASSES_PAGE, cfg->data.classes, &start, &end)) {
		buf_puts(&body, "{\"status\":\"OK\",\"response\":{\"status\":\"NO_CLASSES_FOUND\","
				"\"info\":\"No classes found\"}}");
		return reply_page(sim, conn, &body, fault);
	}
	buf_reserve(&body, (size_t)(end - start) * 640 + 64);
	buf_puts(&body, "{\"status\":\"OK\",\"response\":{\"classes\":[");
	for (unsigned long long c = start; c < end; c++) {
		struct simdata_class cls;
		if (c != start)
			buf_putc(&body, ',');
		simdata_class(&cfg->data, c, &cls);
		simdata_class_json(&cls, cfg->classes_name_key, &body);
	}
	buf_puts(&body, "]}}");
	return reply_page(sim, conn, &body, fault);
}

/* POST /listdevicegroups: options.os, options.page from --groups-first-page
 * (with 1, page 0 is the first page too), GROUPS_PAGE a page, "rows" the
 * OS's group count as a string; response an object or a one-element array. */
static enum MHD_Result do_listdevicegroups(struct sim *sim, struct MHD_Connection *conn,
					   yajl_val root)
{
	const struct sim_config *cfg = &sim->cfg;
	yajl_val options = get_key(root, "options");
	unsigned long long page = cfg->groups_first_page, start, end;
	struct buf body = BUF_INIT;
	enum token_state auth;
	enum fault_kind fault;
	enum MHD_Result ret;
	int os;

	auth = check_auth(sim, conn, root);
	if (auth != TOKEN_OK)
		return reply_unauthorized(sim, conn, auth);
	os = get_os(conn, options, &ret);
	if (os < 0)
		return ret;
	if (!get_page(options, "page", &page))
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: page");

	fault = choose_fault(sim, EP_GROUPS, os, page);
	if (fault_answers(sim, conn, fault, &ret))
		return ret;
	page_range(page > cfg->groups_first_page ? page - cfg->groups_first_page : 0, GROUPS_PAGE,
		   cfg->data.groups, &start, &end);
	buf_reserve(&body, (size_t)(end - start) * 128 + 128);
	buf_puts(&body, cfg->groups_response_array ? "{\"status\":\"OK\",\"response\":[{\"groups\":["
						   : "{\"status\":\"OK\",\"response\":{\"groups\":[");
	for (unsigned long long g = start; g < end; g++) {
		struct simdata_group grp;
		if (g != start)
			buf_putc(&body, ',');
		simdata_group(&cfg->data, (enum simdata_os)os, g, &grp);
		simdata_group_json(&grp, &body);
	}
	buf_printf(&body, "],\"rows\":\"%llu\"%s", (unsigned long long)cfg->data.groups,
		   cfg->groups_response_array ? "}]}" : "}}");
	return reply_page(sim, conn, &body, fault);
}

/* POST /listdevicegroupsdevices: options.os, options.page from 1 (0 is 1
 * too), options.page_size groups a page (default GROUP_DEVICES_PAGE_DEFAULT,
 * at most GROUP_DEVICES_PAGE_MAX); each group with its members' UDIDs. */
static enum MHD_Result do_listdevicegroupsdevices(struct sim *sim, struct MHD_Connection *conn,
						  yajl_val root)
{
	const struct sim_config *cfg = &sim->cfg;
	yajl_val options = get_key(root, "options"), size_val;
	unsigned long long page = 1, size = GROUP_DEVICES_PAGE_DEFAULT, asked, start, end;
	struct buf body = BUF_INIT;
	enum token_state auth;
	enum fault_kind fault;
	enum MHD_Result ret;
	int os;

	auth = check_auth(sim, conn, root);
	if (auth != TOKEN_OK)
		return reply_unauthorized(sim, conn, auth);
	os = get_os(conn, options, &ret);
	if (os < 0)
		return ret;
	if (!get_page(options, "page", &page))
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: page");
	size_val = get_key(options, "page_size");
	if (size_val && get_count(size_val, &asked) && asked >= 1)
		size = asked < GROUP_DEVICES_PAGE_MAX ? asked : GROUP_DEVICES_PAGE_MAX;

	fault = choose_fault(sim, EP_GROUP_DEVICES, os, page);
	if (fault_answers(sim, conn, fault, &ret))
		return ret;
	page_range(page ? page - 1 : 0, size, cfg->data.groups, &start, &end);
	buf_reserve(&body, (size_t)(end - start) * (SIMDATA_GROUP_DEVICES_MAX * 48 + 64) + 64);
	buf_puts(&body, "{\"status\":\"OK\",\"response\":[{\"groups\":[");
	for (unsigned long long g = start; g < end; g++) {
		struct simdata_group grp;
		if (g != start)
			buf_putc(&body, ',');
		simdata_group(&cfg->data, (enum simdata_os)os, g, &grp);
		simdata_group_devices_json(&cfg->data, &grp, &body);
	}
	buf_puts(&body, "]}]}");
	return reply_page(sim, conn, &body, fault);
}

/* POST /accounts: the district's schools, not paged; NOT_ALLOWED for an
 * account that is not a district (--not-district). */
static enum MHD_Result do_accounts(struct sim *sim, struct MHD_Connection *conn, yajl_val root)
{
	struct buf body = BUF_INIT;
	enum token_state auth;
	enum fault_kind fault;
	enum MHD_Result ret;

	auth = check_auth(sim, conn, root);
	if (auth != TOKEN_OK)
		return reply_unauthorized(sim, conn, auth);
	fault = choose_fault(sim, EP_ACCOUNTS, -1, 1);
	if (fault_answers(sim, conn, fault, &ret))
		return ret;
	if (sim->cfg.not_district) {
		put_inner_status(&body, "NOT_ALLOWED", "Only district accounts may list accounts");
		return reply_page(sim, conn, &body, fault);
	}
	buf_puts(&body, "{\"status\":\"OK\",\"accounts\":[");
	for (unsigned k = 0; k < SIMDATA_NACCOUNTS; k++) {
		struct simdata_account acct;
		if (k)
			buf_putc(&body, ',');
		simdata_account(k, &acct);
		simdata_account_json(&acct, &body);
	}
	buf_puts(&body, "]}");
	return reply_page(sim, conn, &body, fault);
}

/* POST /customdeviceattribute: elements [{"operation":
 * "list_custom_device_attributes","os":OS}], one answer in "response" per
 * element (an inner status for a bad one); not paged. */
static enum MHD_Result do_customdeviceattribute(struct sim *sim, struct MHD_Connection *conn,
						yajl_val root)
{
	static const char operation[] = "list_custom_device_attributes";
	yajl_val elements = get_key(root, "elements");
	struct buf body = BUF_INIT;
	enum token_state auth;
	enum fault_kind fault;
	enum MHD_Result ret;
	int fault_os = -1;

	auth = check_auth(sim, conn, root);
	if (auth != TOKEN_OK)
		return reply_unauthorized(sim, conn, auth);
	if (!elements)
		return reply_inner_status(conn, "MISSING_DATA", "Missing key: elements");
	if (!YAJL_IS_ARRAY(elements) || elements->u.array.len == 0)
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: elements");
	/* a rule for an OS applies when the first element asks for it */
	const char *first_os = get_string(elements->u.array.values[0], "os");
	if (first_os)
		fault_os = simdata_os_from_name(first_os);
	fault = choose_fault(sim, EP_ATTRIBUTES, fault_os, 1);
	if (fault_answers(sim, conn, fault, &ret))
		return ret;

	buf_puts(&body, "{\"status\":\"OK\",\"response\":[");
	for (size_t k = 0; k < elements->u.array.len; k++) {
		yajl_val el = elements->u.array.values[k];
		const char *op = get_string(el, "operation");
		const char *os_name = get_string(el, "os");
		int os = os_name ? simdata_os_from_name(os_name) : -1;
		if (k)
			buf_putc(&body, ',');
		if (!op || strcmp(op, operation) != 0) {
			buf_puts(&body, "{\"status\":\"INVALID_DATA\",\"info\":\"Invalid value for "
					"key: operation\"}");
		} else if (!get_key(el, "os")) {
			buf_puts(&body, "{\"status\":\"MISSING_DATA\",\"info\":\"Missing key: os\"}");
		} else if (os < 0) {
			buf_puts(&body, "{\"status\":\"INVALID_DATA\",\"info\":\"Invalid value for "
					"key: os\"}");
		} else {
			struct simdata_custom_attribute attrs[SIMDATA_CUSTOM_ATTRIBUTES_MAX];
			unsigned n = simdata_custom_attributes(&sim->cfg.data, (enum simdata_os)os,
								attrs);
			buf_puts(&body, "{\"status\":\"OK\",\"info\":[");
			for (unsigned a = 0; a < n; a++) {
				if (a)
					buf_putc(&body, ',');
				simdata_custom_attribute_json(&attrs[a], &body);
			}
			buf_puts(&body, "]}");
		}
	}
	buf_puts(&body, "]}");
	return reply_page(sim, conn, &body, fault);
}

/* A Unix time in filter_options, as a string or a number: *out untouched
 * and true when absent, false when not a count. */
static bool get_date(yajl_val filter, const char *key, bool *given, long long *out)
{
	yajl_val v = get_key(filter, key);
	unsigned long long t;
	*given = false;
	if (!v)
		return true;
	if (!get_count(v, &t))
		return false;
	*out = t > (unsigned long long)LLONG_MAX ? LLONG_MAX : (long long)t;
	*given = true;
	return true;
}

/* POST /adminlogs: "page" (from 1; 0 is 1 too) and "filter_options"
 * {start_date, end_date} at the top level, both dates inclusive;
 * ADMINLOGS_PAGE logs a page of the filtered list, oldest first. */
static enum MHD_Result do_adminlogs(struct sim *sim, struct MHD_Connection *conn, yajl_val root)
{
	const struct sim_config *cfg = &sim->cfg;
	yajl_val filter = get_key(root, "filter_options");
	unsigned long long page = 1, start, end, from, to;
	long long start_date = 0, end_date = 0;
	bool has_start, has_end;
	struct buf body = BUF_INIT;
	enum token_state auth;
	enum fault_kind fault;
	enum MHD_Result ret;

	auth = check_auth(sim, conn, root);
	if (auth != TOKEN_OK)
		return reply_unauthorized(sim, conn, auth);
	if (!get_page(root, "page", &page))
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: page");
	if (!get_date(filter, "start_date", &has_start, &start_date))
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: start_date");
	if (!get_date(filter, "end_date", &has_end, &end_date))
		return reply_inner_status(conn, "INVALID_DATA", "Invalid value for key: end_date");
	atomic_store(&sim->stats.adminlogs_start_date, has_start ? start_date : -1);

	fault = choose_fault(sim, EP_ADMINLOGS, -1, page);
	if (fault_answers(sim, conn, fault, &ret))
		return ret;
	/* the filtered logs are [from, to): dates are non-decreasing */
	from = has_start ? simdata_admin_log_first_at(&cfg->data, start_date) : 0;
	to = has_end && end_date < LLONG_MAX ? simdata_admin_log_first_at(&cfg->data, end_date + 1)
					     : cfg->data.admin_logs;
	if (to < from)
		to = from;
	page_range(page ? page - 1 : 0, ADMINLOGS_PAGE, to - from, &start, &end);
	buf_reserve(&body, (size_t)(end - start) * 320 + 64);
	buf_puts(&body, "{\"status\":\"OK\",\"response\":[{\"logs\":[");
	for (unsigned long long k = from + start; k < from + end; k++) {
		struct simdata_admin_log log;
		if (k != from + start)
			buf_putc(&body, ',');
		simdata_admin_log(&cfg->data, k, &log);
		simdata_admin_log_json(&log, &body);
	}
	buf_puts(&body, "]}]}");
	return reply_page(sim, conn, &body, fault);
}

static enum MHD_Result do_stats(struct sim *sim, struct MHD_Connection *conn)
{
	struct sim_stats *st = &sim->stats;
	struct buf body = BUF_INIT;

	buf_printf(&body, "{\"requests\":%llu,\"logins\":%llu,\"login_failures\":%llu,"
		   "\"unauthorized\":%llu,\"pages\":{", load(&st->requests), load(&st->logins),
		   load(&st->login_failures), load(&st->unauthorized));
	for (int os = 0; os < SIMDATA_NOS; os++)
		buf_printf(&body, "%s\"%s\":%llu", os ? "," : "",
			   simdata_os_name((enum simdata_os)os), load(&st->pages[os]));
	buf_printf(&body, "},\"past_end\":%llu,\"faults\":%llu,\"connections\":%llu,"
		   "\"max_in_flight\":%llu,\"compressed\":%llu,", load(&st->past_end),
		   load(&st->faults), load(&st->connections), load(&st->max_in_flight),
		   load(&st->compressed));
	buf_printf(&body, "\"expired_tokens\":%llu,\"endpoint_requests\":{",
		   load(&st->expired_tokens));
	for (int ep = 0; ep < EP_NENDPOINTS; ep++)
		buf_printf(&body, "%s\"%s\":%llu", ep ? "," : "", endpoint_defs[ep].path,
			   load(&st->endpoint_requests[ep]));
	buf_printf(&body, "},\"adminlogs_last_start_date\":%lld,",
		   (long long)atomic_load(&st->adminlogs_start_date));
	buf_printf(&body, "\"syncro_requests\":%llu,\"syncro_429\":%llu,"
		   "\"syncro_unauthorized\":%llu,\"syncro_api_key_in_query\":%llu}",
		   load(&st->syncro_requests), load(&st->syncro_429),
		   load(&st->syncro_unauthorized), load(&st->syncro_api_key_in_query));
	return reply(conn, MHD_HTTP_OK, &body, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* request plumbing */

static void sleep_ms(unsigned long long ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The last path segment of url ("login" for "/v2/login/"). */
static void last_segment(const char *url, const char **seg, size_t *len)
{
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	size_t k = n;
	while (k && url[k - 1] != '/')
		k--;
	*seg = url + k;
	*len = n - k;
}

static bool segment_is(const char *seg, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(seg, name, len) == 0;
}

static bool is_stats_url(const char *url)
{
	static const char suffix[] = "/_sim/stats";
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	return n >= sizeof(suffix) - 1 &&
	       memcmp(url + n - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0;
}

/* ------------------------------------------------------------------ */
/* Syncro */

#define SYNCRO_CUSTOMERS_PAGE 100
#define SYNCRO_CONTACTS_PAGE 50
#define SYNCRO_PER_PAGE_MAX 100
#define SYNCRO_ASSET_PERMISSION "Assets - List/Search"
#define SYNCRO_DEFAULT_KEY "sim-syncro-key"
#define SYNCRO_EXPIRED_ANSWER "{\"error\":\"Not authorized. The API token has expired\"}"

static enum syncro_endpoint syncro_endpoint_of(const char *seg, size_t len)
{
	if (segment_is(seg, len, "customer_assets"))
		return SYNCRO_ASSETS;
	if (segment_is(seg, len, "customers"))
		return SYNCRO_CUSTOMERS;
	if (segment_is(seg, len, "contacts"))
		return SYNCRO_CONTACTS;
	if (segment_is(seg, len, "settings"))
		return SYNCRO_SETTINGS;
	if (segment_is(seg, len, "me"))
		return SYNCRO_ME;
	return SYNCRO_NONE;
}

static void rate_table_init(struct rate_table *t)
{
	pthread_mutex_init(&t->lock, NULL);
	t->clients = NULL;
	t->n = t->cap = 0;
}

static void rate_table_free(struct rate_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->clients[i].times);
	free(t->clients);
	pthread_mutex_destroy(&t->lock);
}

/* The client's address as (family, bytes), the port left out: the limit
 * is per address, as Syncro's is per IP. */
static void client_address(struct MHD_Connection *conn, int *family, unsigned char addr[16])
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	memset(addr, 0, 16);
	*family = 0;
	if (!info || !info->client_addr)
		return;
	*family = info->client_addr->sa_family;
	if (*family == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *)(const void *)info->client_addr)->sin_addr, 4);
	else if (*family == AF_INET6)
		memcpy(addr, &((const struct sockaddr_in6 *)(const void *)info->client_addr)->sin6_addr,
		       16);
}

/* True if the client may make one more request now (and counts it): a
 * sliding window of --syncro-window-ms (60 s by default) over the requests
 * let through, holding at most the per-minute rate scaled to the window. */
static bool syncro_rate_admit(struct sim *sim, struct MHD_Connection *conn)
{
	struct rate_table *t = &sim->syncro_rate;
	unsigned long long window = sim->cfg.syncro_window_ms;
	unsigned limit = (unsigned)((unsigned long long)sim->cfg.syncro_rate * window / 60000);
	if (sim->cfg.syncro_rate && !limit)
		limit = 1;
	unsigned long long now = util_now_ms();
	struct rate_client *c = NULL;
	unsigned char addr[16];
	int family;
	bool ok;

	if (!limit)
		return true;
	client_address(conn, &family, addr);
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++)
		if (t->clients[i].family == family && memcmp(t->clients[i].addr, addr, 16) == 0)
			c = &t->clients[i];
	if (!c) {
		if (t->n == t->cap) {
			t->cap = t->cap ? 2 * t->cap : 8;
			t->clients = xrealloc(t->clients, t->cap * sizeof(*t->clients));
		}
		c = &t->clients[t->n++];
		*c = (struct rate_client){.family = family};
		memcpy(c->addr, addr, 16);
		c->times = xcalloc(limit, sizeof(*c->times));
	}
	if (c->count < limit) {
		c->times[(c->next + c->count) % limit] = now;
		c->count++;
		ok = true;
	} else if (now - c->times[c->next] >= window) {
		/* the oldest request has left the window: its slot is free */
		c->times[c->next] = now;
		c->next = (c->next + 1) % limit;
		ok = true;
	} else {
		ok = false;
	}
	pthread_mutex_unlock(&t->lock);
	return ok;
}

/* What the Authorization header's key is, or 0 for a missing or unknown
 * key. */
static enum syncro_key_kind syncro_key_of(const struct sim_config *cfg, const char *auth)
{
	if (!auth)
		return 0;
	if (strncasecmp(auth, "Bearer ", 7) == 0)
		auth += 7;
	for (unsigned k = 0; k < cfg->syncro_nkeys; k++)
		if (strcmp(auth, cfg->syncro_keys[k].key) == 0)
			return cfg->syncro_keys[k].kind;
	if (cfg->syncro_default_key && strcmp(auth, SYNCRO_DEFAULT_KEY) == 0)
		return SYNCRO_KEY_VALID;
	return 0;
}

/* A positive integer query argument, or dflt when absent or not one. */
static unsigned long long query_number(struct MHD_Connection *conn, const char *name,
				       unsigned long long dflt)
{
	const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return dflt;
	errno = 0;
	v = strtoull(s, &end, 10);
	return *end || errno || v == 0 ? dflt : v;
}

/* One page of a listing: items [first, last) of total, and the meta. */
struct syncro_page {
	unsigned long long page, per_page, total, first, last;
};

static void syncro_page_of(struct MHD_Connection *conn, unsigned long long total,
			   unsigned long long per_page, struct syncro_page *p)
{
	p->page = query_number(conn, "page", 1);
	p->per_page = per_page;
	p->total = total;
	if (p->page - 1 >= (total + per_page - 1) / per_page) {
		p->first = p->last = total;
	} else {
		p->first = (p->page - 1) * per_page;
		p->last = p->first + per_page < total ? p->first + per_page : total;
	}
}

static void put_syncro_meta(struct buf *body, const struct syncro_page *p)
{
	buf_printf(body, ",\"meta\":{\"total_pages\":%llu,\"total_entries\":%llu,"
		   "\"per_page\":%llu,\"page\":%llu}",
		   (p->total + p->per_page - 1) / p->per_page, p->total, p->per_page, p->page);
}

static enum MHD_Result syncro_assets(struct sim *sim, struct MHD_Connection *conn)
{
	const struct sim_config *cfg = &sim->cfg;
	unsigned long long per_page = cfg->syncro_page_size;
	struct buf body = BUF_INIT;
	struct syncro_page p;

	if (cfg->syncro_honour_per_page) {
		unsigned long long asked = query_number(conn, "per_page", 0);
		if (asked >= 1 && asked <= SYNCRO_PER_PAGE_MAX)
			per_page = asked;
	}
	syncro_page_of(conn, cfg->syncro_assets, per_page, &p);
	buf_reserve(&body, (size_t)(p.last - p.first) * 4096 + 256);
	buf_puts(&body, "{\"assets\":[");
	for (unsigned long long i = p.first; i < p.last; i++) {
		struct simdata_syncro_asset asset;
		if (i > p.first)
			buf_putc(&body, ',');
		simdata_syncro_asset(&cfg->syncro, i, &asset);
		simdata_syncro_asset_json(&cfg->syncro, &asset, &body);
	}
	buf_putc(&body, ']');
	if (!cfg->syncro_no_meta)
		put_syncro_meta(&body, &p);
	buf_putc(&body, '}');
	return reply(conn, MHD_HTTP_OK, &body, NULL, NULL);
}

/* Syncro lists disabled customers only when asked to. */
static bool include_disabled(struct MHD_Connection *conn)
{
	const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "include_disabled");
	return s && (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0);
}

static enum MHD_Result syncro_customers(struct sim *sim, struct MHD_Connection *conn)
{
	const struct sim_config *cfg = &sim->cfg;
	struct buf body = BUF_INIT;
	struct syncro_page p;
	bool all = include_disabled(conn);

	syncro_page_of(conn, all ? cfg->syncro.customers
				 : simdata_syncro_enabled_customers(cfg->syncro.customers),
		       SYNCRO_CUSTOMERS_PAGE, &p);
	buf_puts(&body, "{\"customers\":[");
	for (unsigned long long k = p.first; k < p.last; k++) {
		struct simdata_syncro_customer cust;
		if (k > p.first)
			buf_putc(&body, ',');
		simdata_syncro_customer(&cfg->syncro, all ? k : simdata_syncro_enabled_customer(k),
					&cust);
		simdata_syncro_customer_json(&cust, &body);
	}
	buf_putc(&body, ']');
	put_syncro_meta(&body, &p);
	buf_putc(&body, '}');
	return reply(conn, MHD_HTTP_OK, &body, NULL, NULL);
}

static enum MHD_Result syncro_contacts(struct sim *sim, struct MHD_Connection *conn)
{
	const struct sim_config *cfg = &sim->cfg;
	struct buf body = BUF_INIT;
	struct syncro_page p;

	syncro_page_of(conn, cfg->syncro.customers * cfg->syncro.contacts_per_customer,
		       SYNCRO_CONTACTS_PAGE, &p);
	buf_puts(&body, "{\"contacts\":[");
	for (unsigned long long k = p.first; k < p.last; k++) {
		struct simdata_syncro_contact contact;
		if (k > p.first)
			buf_putc(&body, ',');
		simdata_syncro_contact(&cfg->syncro, k, &contact);
		simdata_syncro_contact_json(&contact, &body);
	}
	buf_putc(&body, ']');
	put_syncro_meta(&body, &p);
	buf_putc(&body, '}');
	return reply(conn, MHD_HTTP_OK, &body, NULL, NULL);
}

static enum MHD_Result syncro_settings(struct MHD_Connection *conn)
{
	struct buf body = BUF_INIT;

	buf_puts(&body, "{\"general\":{\"company_name\":\"Simulated MSP\",\"time_zone\":\"UTC\"},"
		 "\"asset_types\":[");
	for (int k = 0; k < SIMDATA_SYNCRO_NASSET_TYPES; k++) {
		buf_printf(&body, "%s{\"id\":%d,\"name\":", k ? "," : "",
			   SIMDATA_SYNCRO_ASSET_TYPE_ID_BASE + k);
		put_json_string(&body, simdata_syncro_asset_type_names[k]);
		buf_putc(&body, '}');
	}
	buf_puts(&body, "]}");
	return reply(conn, MHD_HTTP_OK, &body, NULL, NULL);
}

static enum MHD_Result syncro_me(struct MHD_Connection *conn, bool assets)
{
	struct buf body = BUF_INIT;

	buf_printf(&body, "{\"user_id\":1,\"user_name\":\"API Token\",\"email\":\"api@msp.example\","
		   "\"permissions\":[%s\"Customers - List/Search\",\"Contacts - List/Search\"]}",
		   assets ? "\"" SYNCRO_ASSET_PERMISSION "\"," : "");
	return reply(conn, MHD_HTTP_OK, &body, NULL, NULL);
}

static enum MHD_Result syncro_unauthorized(struct sim *sim, struct MHD_Connection *conn,
					   const char *json)
{
	count(&sim->stats.syncro_unauthorized);
	return reply_text(conn, MHD_HTTP_UNAUTHORIZED, json, NULL);
}

/* A Syncro request, in the order the checks are made: method, rate limit
 * (per client address, before any authentication, whatever the key: one
 * budget for every tenant behind the address), a --fault rule (as an edge
 * in front of the API would answer: before the key is looked at), api_key
 * in the query (refused: invsync must send the key in a header only), the
 * key, its expiry, the token's permission, then the answer. Every key sees
 * the same data. */
static enum MHD_Result do_syncro(struct sim *sim, struct MHD_Connection *conn,
				 const char *method, enum syncro_endpoint ep)
{
	const struct sim_config *cfg = &sim->cfg;
	enum syncro_key_kind key;
	enum MHD_Result ret;
	bool assets;

	count(&sim->stats.syncro_requests);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "{\"error\":\"Method not allowed\"}", MHD_HTTP_METHOD_GET);
	if (!syncro_rate_admit(sim, conn)) {
		char secs[24];
		const char *headers[] = {MHD_HTTP_HEADER_RETRY_AFTER,
					 cfg->syncro_retry_after ? secs : NULL, NULL};
		struct buf body = BUF_INIT;
		snprintf(secs, sizeof(secs), "%u", cfg->syncro_retry_after);
		count(&sim->stats.syncro_429);
		buf_puts(&body, "{\"error\":\"Too many requests\"}");
		return reply_typed(conn, MHD_HTTP_TOO_MANY_REQUESTS, &body, JSON_TYPE, headers);
	}
	/* only --fault rules: --fault-rate's draws follow the Mosyle reads */
	if (ep != SYNCRO_NONE &&
	    fault_answers(sim, conn,
			  choose_rule_fault(sim, ep, EP_NENDPOINTS, -1, query_number(conn, "page", 1)),
			  &ret))
		return ret;
	if (MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "api_key")) {
		count(&sim->stats.syncro_api_key_in_query);
		return syncro_unauthorized(sim, conn,
					   "{\"error\":\"Not authorized. invsync-sim refuses api_key "
					   "in the query string: send the key in the Authorization "
					   "header\"}");
	}
	key = syncro_key_of(cfg, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_AUTHORIZATION));
	if (!key)
		return syncro_unauthorized(sim, conn,
					   "{\"error\":\"Not authorized. Invalid or missing API "
					   "token\"}");
	if (key == SYNCRO_KEY_EXPIRED)
		return syncro_unauthorized(sim, conn, SYNCRO_EXPIRED_ANSWER);
	assets = key == SYNCRO_KEY_VALID && !cfg->syncro_no_asset_permission;
	switch (ep) {
	case SYNCRO_ASSETS:
		if (!assets)
			return syncro_unauthorized(sim, conn,
						   "{\"error\":\"Not authorized. Missing permission: "
						   SYNCRO_ASSET_PERMISSION "\"}");
		return syncro_assets(sim, conn);
	case SYNCRO_CUSTOMERS: return syncro_customers(sim, conn);
	case SYNCRO_CONTACTS: return syncro_contacts(sim, conn);
	case SYNCRO_SETTINGS: return syncro_settings(conn);
	case SYNCRO_ME: return syncro_me(conn, assets);
	case SYNCRO_NONE:
	case SYNCRO_NENDPOINTS: break;
	}
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "{\"message\":\"Not found\"}", NULL);
}

static enum MHD_Result route(struct sim *sim, struct MHD_Connection *conn, const char *url,
			     const char *method, struct request *req)
{
	const struct sim_config *cfg = &sim->cfg;
	const char *seg;
	size_t seg_len;
	int ep;
	yajl_val root;
	enum MHD_Result ret;
	char err[128];

	if (is_stats_url(url))
		return do_stats(sim, conn);

	count(&sim->stats.requests);
	/* what the client asked for, for tests of concurrency and compression */
	unsigned long long now_in = atomic_fetch_add(&sim->stats.in_flight, 1) + 1;
	req->counted = true;
	unsigned long long max = atomic_load(&sim->stats.max_in_flight);
	while (now_in > max && !atomic_compare_exchange_weak(&sim->stats.max_in_flight, &max, now_in))
		;
	const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");
	if (ae && (strstr(ae, "gzip") || strstr(ae, "br") || strstr(ae, "zstd") || strstr(ae, "deflate")))
		count(&sim->stats.compressed);
	if (cfg->latency_ms || cfg->jitter_ms) {
		uint64_t h = fnv1a(UINT64_C(0xcbf29ce484222325), url, strlen(url));
		h = simdata_mix64(fnv1a(h, req->body.data ? req->body.data : "", req->body.len));
		sleep_ms(cfg->latency_ms + h % ((uint64_t)cfg->jitter_ms + 1));
	}

	last_segment(url, &seg, &seg_len);
	enum syncro_endpoint syncro = syncro_endpoint_of(seg, seg_len);
	if (syncro != SYNCRO_NONE)
		return do_syncro(sim, conn, method, syncro);
	for (ep = 0; ep < EP_NENDPOINTS; ep++)
		if (segment_is(seg, seg_len, endpoint_defs[ep].path))
			break;
	if (ep == EP_NENDPOINTS)
		return reply_text(conn, MHD_HTTP_NOT_FOUND,
				  "{\"status\":\"error\",\"message\":\"Unknown endpoint\"}", NULL);
	count(&sim->stats.endpoint_requests[ep]);
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "{\"status\":\"error\",\"message\":\"Method not allowed\"}",
				  MHD_HTTP_METHOD_POST);
	if (req->too_large)
		return reply_text(conn, 413 /* Content Too Large */,
				  "{\"status\":\"error\",\"message\":\"Request body too large\"}",
				  NULL);

	root = yajl_tree_parse(buf_str(&req->body), err, sizeof(err));
	if (root && !YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		root = NULL;
	}
	switch ((enum mosyle_endpoint)ep) {
	case EP_LOGIN: ret = do_login(sim, conn, root); break;
	case EP_DEVICES: ret = do_listdevices(sim, conn, root); break;
	case EP_USERS: ret = do_listusers(sim, conn, root); break;
	case EP_CLASSES: ret = do_listclasses(sim, conn, root); break;
	case EP_GROUPS: ret = do_listdevicegroups(sim, conn, root); break;
	case EP_GROUP_DEVICES: ret = do_listdevicegroupsdevices(sim, conn, root); break;
	case EP_ACCOUNTS: ret = do_accounts(sim, conn, root); break;
	case EP_ATTRIBUTES: ret = do_customdeviceattribute(sim, conn, root); break;
	case EP_ADMINLOGS: ret = do_adminlogs(sim, conn, root); break;
	default: ret = MHD_NO; break;
	}
	yajl_tree_free(root);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct request *req = *con_cls;
	UNUSED(version);

	if (!req) {
		req = xcalloc(1, sizeof(*req));
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!req->too_large && req->body.len + *upload_data_size > BODY_MAX) {
			req->too_large = true;
			buf_free(&req->body);
		}
		if (!req->too_large)
			buf_append(&req->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	return route(cls, conn, url, method, req);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct sim *sim = cls;
	UNUSED(conn);
	UNUSED(socket_context);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		count(&sim->stats.connections);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *req = *con_cls;
	struct sim *sim = cls;
	UNUSED(conn);
	UNUSED(toe);
	if (req) {
		if (req->counted)
			atomic_fetch_sub(&sim->stats.in_flight, 1);
		buf_free(&req->body);
		free(req);
		*con_cls = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* generation benchmark */

static int gen_bench(const struct sim_config *cfg, unsigned long long n)
{
	struct buf page = BUF_INIT;
	unsigned long long bytes = 0, t0 = util_now_ns();
	uint64_t index[SIMDATA_NOS] = {0};

	/* Pages of 100, rotating through the OSes, as the server builds them. */
	for (unsigned long long done = 0; done < n;) {
		enum simdata_os os = (enum simdata_os)((done / 100) % SIMDATA_NOS);
		buf_reset(&page);
		buf_putc(&page, '[');
		for (int k = 0; k < 100 && done < n; k++, done++) {
			struct simdata_device dev;
			if (k)
				buf_putc(&page, ',');
			simdata_device(&cfg->data, os, index[os]++, &dev);
			simdata_device_json(&cfg->data, os, &dev, &page);
		}
		buf_putc(&page, ']');
		bytes += page.len;
	}
	double secs = (double)(util_now_ns() - t0) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	printf("gen-bench: %llu devices, %.1f MB in %.3f s: %.0f MB/s, %.0f devices/s, "
	       "%.0f bytes/device\n", n, (double)bytes / 1e6, secs, (double)bytes / 1e6 / secs,
	       (double)n / secs, n ? (double)bytes / (double)n : 0.0);
	buf_free(&page);
	return 0;
}

/* ------------------------------------------------------------------ */
/* command line */

static void usage(FILE *f)
{
	fputs("usage: invsync-sim [options]\n"
	      "Simulates the Mosyle Manager API (POST /login, /listdevices, /listusers,\n"
	      "/listclasses, /listdevicegroups, /listdevicegroupsdevices, /accounts,\n"
	      "/customdeviceattribute, /adminlogs) and the Syncro API (GET\n"
	      "/customer_assets, /customers, /contacts, /settings, /me)\n"
	      "over HTTP or HTTPS. Endpoints are matched on the last path segment, so any\n"
	      "base path works (/v2, /api/v1).\n"
	      "\n"
	      "Server:\n"
	      "  --bind ADDR              address to listen on (default 127.0.0.1; IPv6 allowed)\n"
	      "  --port N                 port (default 0: any free port)\n"
	      "  --port-file F            write the bound port and a newline to F (atomically)\n"
	      "  --tls-cert FILE          serve HTTPS with this PEM certificate (the server's\n"
	      "                           first, then any intermediates); needs --tls-key\n"
	      "  --tls-key FILE           the certificate's PEM private key (unencrypted)\n"
	      "  --max-connections N      concurrent connections (default 1024)\n"
	      "  --timeout S              idle connection timeout in seconds (default 60)\n"
	      "  --latency-ms L           sleep L ms before answering each request (default 0)\n"
	      "  --jitter-ms J            plus 0..J ms chosen by a hash of the request (default 0)\n"
	      "\n"
	      "Inventory:\n"
	      "  --seed S                 inventory seed (default 1)\n"
	      "  --devices N              devices per OS (default 1000)\n"
	      "  --ios N, --mac N, --tvos N, --visionos N   devices for one OS\n"
	      "  --nul-in-names           put \\u0000 in some device names\n"
	      "  --rename-every N         devices whose index within their OS is a multiple\n"
	      "                           of N get \" (renamed)\" after their device_name and\n"
	      "                           \".1\" after their osversion (default 0: none)\n"
	      "\n"
	      "Login:\n"
	      "  --access-token T         accepted accessToken (default sim-access-token)\n"
	      "  --email E                accepted email (default admin@district.example)\n"
	      "  --password P             accepted password (default sim-password)\n"
	      "  --fail-login             every login fails\n"
	      "  --login-fail-status N    HTTP status of a failed login: 401 (default) or 200\n"
	      "\n"
	      "Paging:\n"
	      "  --first-page 0|1         number of the first page (default 1; with 1, page 0\n"
	      "                           is the first page too)\n"
	      "  --page-size N            devices per page (default 100)\n"
	      "  --honour-page-size       use options.page_size from the request (1..5000)\n"
	      "  --rows int|string|absent how rows, page_size and page are sent (default int)\n"
	      "  --end empty|notfound     past the last page: \"devices\":[] (default) or\n"
	      "                           DEVICES_NOTFOUND\n"
	      "  --ignore-page            always answer the first page\n"
	      "  --response-array         send \"response\" as a one-element array\n"
	      "\n"
	      "The rest of the district (POST, authenticated like /listdevices):\n"
	      "  --users N                users (default: the most devices of any OS, so\n"
	      "                           every user a device names is served; devices at\n"
	      "                           index N and up name no user); /listusers pages\n"
	      "                           from 1, 500 a page or options.page_size (at most\n"
	      "                           1000), total/page_size/page as strings\n"
	      "  --users-end empty|notfound\n"
	      "                           past the last page: \"users\":[] (default) or\n"
	      "                           USERS_NOTFOUND\n"
	      "  --users-no-total         leave \"total\" out of /listusers\n"
	      "  --user-locations objects|strings\n"
	      "                           a user's locations as {\"name\",\"grade_level\"}\n"
	      "                           objects (default) or plain names\n"
	      "  --classes N              classes (default 100); /listclasses pages from 1,\n"
	      "                           100 a page whatever page_size says,\n"
	      "                           NO_CLASSES_FOUND past the end\n"
	      "  --classes-name-key class_name|name\n"
	      "                           the key of a class's name (default class_name)\n"
	      "  --groups N               device groups per OS (default 20); 50 a page on\n"
	      "                           /listdevicegroups, options.page_size (default 50,\n"
	      "                           at most 1000) on /listdevicegroupsdevices (pages\n"
	      "                           from 1); \"groups\":[] past the end of both\n"
	      "  --groups-response object|array\n"
	      "                           /listdevicegroups \"response\" as an object\n"
	      "                           (default) or a one-element array\n"
	      "  --groups-first-page 0|1  first /listdevicegroups page (default 0; with 1,\n"
	      "                           page 0 is the first page too)\n"
	      "  --not-district           /accounts answers NOT_ALLOWED\n"
	      "  --adminlogs N            admin log entries (default 1000); /adminlogs\n"
	      "                           pages from 1, 200 a page, oldest first, within\n"
	      "                           filter_options start_date..end_date (inclusive)\n"
	      "  /customdeviceattribute lists a fixed set per OS (none for visionos).\n"
	      "\n"
	      "Tokens:\n"
	      "  --token-ttl-ms N         a JWT is refused N ms after its login (default 0:\n"
	      "                           never)\n"
	      "  --token-max-requests N   a JWT is refused once N requests have presented\n"
	      "                           it (default 0: no limit)\n"
	      "  A refused JWT or accessToken gets 401 {\"status\":\"error\",\"message\":\n"
	      "  \"Unauthorized\"}. Each login issues a new JWT; older ones keep working\n"
	      "  until they expire themselves.\n"
	      "\n"
	      "Faults (every Mosyle and every Syncro endpoint):\n"
	      "  --fault TARGET:PAGE:KIND[:TIMES]\n"
	      "                           the first TIMES requests (default 1; 0: all) for\n"
	      "                           page PAGE of TARGET (as the request numbers it;\n"
	      "                           1 for /login, /accounts, /customdeviceattribute\n"
	      "                           and Syncro's settings and me) get fault KIND;\n"
	      "                           TARGET is an OS (its /listdevices pages) or users,\n"
	      "                           classes, groups, groupdevices, accounts,\n"
	      "                           attributes, adminlogs or devices, the per-OS ones\n"
	      "                           as NAME (every OS) or NAME.OS, or login, or\n"
	      "                           syncro-assets, syncro-customers, syncro-contacts,\n"
	      "                           syncro-settings or syncro-me (login and Syncro:\n"
	      "                           before the credentials are looked at, Syncro after\n"
	      "                           the rate limit; 500, 502, 503, 429, 429ra, html\n"
	      "                           and empty only); repeatable (up to 32); rules for\n"
	      "                           one page apply one after the other, in the order\n"
	      "                           given\n"
	      "  --fault-rate PERCENT:KIND\n"
	      "                           each Mosyle request but /login gets KIND with this\n"
	      "                           probability (0.01..100), drawn from a hash of\n"
	      "                           --seed and a request counter; repeatable (up to\n"
	      "                           16, sum <= 100);\n"
	      "                           --fault rules are tried first; huge, nested,\n"
	      "                           badutf8, dupkeys and types drawn for another\n"
	      "                           endpoint than /listdevices leave it alone\n"
	      "  KIND is one of:\n"
	      "    500, 502, 503          that status with a small JSON (502: HTML) body\n"
	      "    429, 429ra             429, without or with \"Retry-After: 1\"\n"
	      "    reset                  headers and about half the body, then a TCP reset\n"
	      "    truncate               headers and about half the body, then a close\n"
	      "                           (Content-Length announces the whole body)\n"
	      "    malformed              200 with the body made invalid JSON half way\n"
	      "    html                   200, text/html, a \"temporarily unavailable\" page\n"
	      "    empty                  200 with an empty body\n"
	      "    stall                  half the body, 30 s of silence, then the rest\n"
	      "    slow                   wait 3 s, then answer normally\n"
	      "    huge                   the real page, its first device's device_name a\n"
	      "                           --huge-size string (quotes, a tab, non-ASCII)\n"
	      "    nested                 the real page, its first device with an extra key\n"
	      "                           \"nested\" whose value is nested 100 levels deep\n"
	      "    badutf8                the real page, its first device's device_name\n"
	      "                           holding invalid UTF-8 (0xC3 0x28, a lone 0xFF)\n"
	      "    dupkeys                the real page, its first device with device_name\n"
	      "                           \"DUP-FIRST\" then \"DUP-SECOND\", and serial_number\n"
	      "                           \"DUP-SERIAL\" then the real one\n"
	      "    types                  the real page, its first device with total_disk\n"
	      "                           256, is_supervised true, osversion 17.4 and\n"
	      "                           date_last_beat 1710264696 as bare JSON, and\n"
	      "                           battery \"n/a\"\n"
	      "    inner                  200 with an inner INVALID_DATA status, info\n"
	      "                           \"" FAULT_INNER_INFO "\"\n"
	      "  --huge-size BYTES        length of that name once decoded (default 2097152)\n"
	      "\n"
	      "Syncro (GET only; --seed applies):\n"
	      "  --syncro-customers N     customers (default 50; 100 a page on /customers)\n"
	      "  --syncro-contacts N      contacts per customer (default 2; 50 a page on\n"
	      "                           /contacts)\n"
	      "  --syncro-assets N        assets, spread over the customers (default 1000)\n"
	      "  --syncro-page-size N     assets per /customer_assets page (default 25)\n"
	      "  --syncro-honour-per-page use per_page from the query (1..100) if given\n"
	      "  --syncro-no-meta         omit \"meta\" (the end is an empty \"assets\" list)\n"
	      "  --syncro-api-key KEY     accepted key, as \"Authorization: Bearer KEY\" or\n"
	      "                           the bare KEY; repeatable, one per tenant: all\n"
	      "                           see the same data and share the rate limit\n"
	      "                           (default sim-syncro-key); a missing or wrong key,\n"
	      "                           or any api_key= in the query, gets 401\n"
	      "  --syncro-no-assets-key KEY\n"
	      "                           an accepted key without \"Assets - List/Search\":\n"
	      "                           /customer_assets answers it 401; repeatable\n"
	      "  --syncro-expired-key KEY a key that has expired: every request with it\n"
	      "                           gets 401 {\"error\":\"Not authorized. The API\n"
	      "                           token has expired\"}; repeatable\n"
	      "                           (at most 16 keys in all)\n"
	      "  --syncro-no-asset-permission\n"
	      "                           no key has \"Assets - List/Search\":\n"
	      "                           /customer_assets answers 401\n"
	      "  --syncro-rate N          requests a minute per client address, a sliding\n"
	      "                           60 s window (default 0: no limit); past it 429\n"
	      "                           {\"error\":\"Too many requests\"}\n"
	      "  --syncro-retry-after S   send \"Retry-After: S\" with that 429 (default: none)\n"
	      "  --syncro-window-ms MS    count --syncro-rate over a sliding window of MS\n"
	      "                           (default 60000): at most rate x MS / 60000 requests\n"
	      "                           in any window (a short one makes tests quick)\n"
	      "\n"
	      "Other:\n"
	      "  --gen-bench[=N]          time generating N devices (default 200000) and exit\n"
	      "  --help                   this text\n"
	      "\n"
	      "GET /_sim/stats returns counters as JSON (requests excludes /_sim/ calls;\n"
	      "faults counts the faulty answers served; connections the TCP connections\n"
	      "accepted; max_in_flight the most requests answered at once; compressed the\n"
	      "requests that accepted a compressed answer; unauthorized the Mosyle requests\n"
	      "answered 401, expired_tokens those of them with an expired JWT;\n"
	      "endpoint_requests the requests per Mosyle endpoint; adminlogs_last_start_date\n"
	      "the start_date of the last /adminlogs request, -1 if it had none;\n"
	      "syncro_requests the requests for a Syncro endpoint, syncro_429 those\n"
	      "refused by --syncro-rate, syncro_unauthorized those answered 401 and\n"
	      "syncro_api_key_in_query those that put api_key in the query).\n", f);
}

enum {
	OPT_BIND = 256,
	OPT_PORT,
	OPT_PORT_FILE,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_MAX_CONNECTIONS,
	OPT_TIMEOUT,
	OPT_LATENCY,
	OPT_JITTER,
	OPT_SEED,
	OPT_DEVICES,
	OPT_IOS,
	OPT_MAC,
	OPT_TVOS,
	OPT_VISIONOS,
	OPT_NUL_IN_NAMES,
	OPT_RENAME_EVERY,
	OPT_ACCESS_TOKEN,
	OPT_EMAIL,
	OPT_PASSWORD,
	OPT_FAIL_LOGIN,
	OPT_LOGIN_FAIL_STATUS,
	OPT_FIRST_PAGE,
	OPT_PAGE_SIZE,
	OPT_HONOUR_PAGE_SIZE,
	OPT_ROWS,
	OPT_END,
	OPT_IGNORE_PAGE,
	OPT_RESPONSE_ARRAY,
	OPT_FAULT,
	OPT_FAULT_RATE,
	OPT_HUGE_SIZE,
	OPT_USERS,
	OPT_USERS_END,
	OPT_USERS_NO_TOTAL,
	OPT_USER_LOCATIONS,
	OPT_CLASSES,
	OPT_CLASSES_NAME_KEY,
	OPT_GROUPS,
	OPT_GROUPS_RESPONSE,
	OPT_GROUPS_FIRST_PAGE,
	OPT_NOT_DISTRICT,
	OPT_ADMINLOGS,
	OPT_TOKEN_TTL_MS,
	OPT_TOKEN_MAX_REQUESTS,
	OPT_SYNCRO_CUSTOMERS,
	OPT_SYNCRO_CONTACTS,
	OPT_SYNCRO_ASSETS,
	OPT_SYNCRO_PAGE_SIZE,
	OPT_SYNCRO_HONOUR_PER_PAGE,
	OPT_SYNCRO_NO_META,
	OPT_SYNCRO_API_KEY,
	OPT_SYNCRO_NO_ASSETS_KEY,
	OPT_SYNCRO_EXPIRED_KEY,
	OPT_SYNCRO_NO_ASSET_PERMISSION,
	OPT_SYNCRO_RATE,
	OPT_SYNCRO_WINDOW_MS,
	OPT_SYNCRO_RETRY_AFTER,
	OPT_GEN_BENCH,
	OPT_HELP,
};

static const struct option long_options[] = {
	{"bind", required_argument, NULL, OPT_BIND},
	{"port", required_argument, NULL, OPT_PORT},
	{"port-file", required_argument, NULL, OPT_PORT_FILE},
	{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},
	{"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"latency-ms", required_argument, NULL, OPT_LATENCY},
	{"jitter-ms", required_argument, NULL, OPT_JITTER},
	{"seed", required_argument, NULL, OPT_SEED},
	{"devices", required_argument, NULL, OPT_DEVICES},
	{"ios", required_argument, NULL, OPT_IOS},
	{"mac", required_argument, NULL, OPT_MAC},
	{"tvos", required_argument, NULL, OPT_TVOS},
	{"visionos", required_argument, NULL, OPT_VISIONOS},
	{"nul-in-names", no_argument, NULL, OPT_NUL_IN_NAMES},
	{"rename-every", required_argument, NULL, OPT_RENAME_EVERY},
	{"access-token", required_argument, NULL, OPT_ACCESS_TOKEN},
	{"email", required_argument, NULL, OPT_EMAIL},
	{"password", required_argument, NULL, OPT_PASSWORD},
	{"fail-login", no_argument, NULL, OPT_FAIL_LOGIN},
	{"login-fail-status", required_argument, NULL, OPT_LOGIN_FAIL_STATUS},
	{"first-page", required_argument, NULL, OPT_FIRST_PAGE},
	{"page-size", required_argument, NULL, OPT_PAGE_SIZE},
	{"honour-page-size", no_argument, NULL, OPT_HONOUR_PAGE_SIZE},
	{"rows", required_argument, NULL, OPT_ROWS},
	{"end", required_argument, NULL, OPT_END},
	{"ignore-page", no_argument, NULL, OPT_IGNORE_PAGE},
	{"response-array", no_argument, NULL, OPT_RESPONSE_ARRAY},
	{"fault", required_argument, NULL, OPT_FAULT},
	{"fault-rate", required_argument, NULL, OPT_FAULT_RATE},
	{"huge-size", required_argument, NULL, OPT_HUGE_SIZE},
	{"users", required_argument, NULL, OPT_USERS},
	{"users-end", required_argument, NULL, OPT_USERS_END},
	{"users-no-total", no_argument, NULL, OPT_USERS_NO_TOTAL},
	{"user-locations", required_argument, NULL, OPT_USER_LOCATIONS},
	{"classes", required_argument, NULL, OPT_CLASSES},
	{"classes-name-key", required_argument, NULL, OPT_CLASSES_NAME_KEY},
	{"groups", required_argument, NULL, OPT_GROUPS},
	{"groups-response", required_argument, NULL, OPT_GROUPS_RESPONSE},
	{"groups-first-page", required_argument, NULL, OPT_GROUPS_FIRST_PAGE},
	{"not-district", no_argument, NULL, OPT_NOT_DISTRICT},
	{"adminlogs", required_argument, NULL, OPT_ADMINLOGS},
	{"token-ttl-ms", required_argument, NULL, OPT_TOKEN_TTL_MS},
	{"token-max-requests", required_argument, NULL, OPT_TOKEN_MAX_REQUESTS},
	{"syncro-customers", required_argument, NULL, OPT_SYNCRO_CUSTOMERS},
	{"syncro-contacts", required_argument, NULL, OPT_SYNCRO_CONTACTS},
	{"syncro-assets", required_argument, NULL, OPT_SYNCRO_ASSETS},
	{"syncro-page-size", required_argument, NULL, OPT_SYNCRO_PAGE_SIZE},
	{"syncro-honour-per-page", no_argument, NULL, OPT_SYNCRO_HONOUR_PER_PAGE},
	{"syncro-no-meta", no_argument, NULL, OPT_SYNCRO_NO_META},
	{"syncro-api-key", required_argument, NULL, OPT_SYNCRO_API_KEY},
	{"syncro-no-assets-key", required_argument, NULL, OPT_SYNCRO_NO_ASSETS_KEY},
	{"syncro-expired-key", required_argument, NULL, OPT_SYNCRO_EXPIRED_KEY},
	{"syncro-no-asset-permission", no_argument, NULL, OPT_SYNCRO_NO_ASSET_PERMISSION},
	{"syncro-rate", required_argument, NULL, OPT_SYNCRO_RATE},
	{"syncro-window-ms", required_argument, NULL, OPT_SYNCRO_WINDOW_MS},
	{"syncro-retry-after", required_argument, NULL, OPT_SYNCRO_RETRY_AFTER},
	{"gen-bench", optional_argument, NULL, OPT_GEN_BENCH},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

/* Decimal in [lo, hi]; false with a message otherwise. */
static bool parse_number(const char *opt, const char *s, unsigned long long lo,
			 unsigned long long hi, unsigned long long *out)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		goto bad;
	*out = strtoull(s, &end, 10);
	if (*end || errno || *out < lo || *out > hi)
		goto bad;
	return true;
bad:
	fprintf(stderr, "invsync-sim: --%s wants a number from %llu to %llu, not \"%s\"\n",
		opt, lo, hi, s);
	return false;
}

/* A fault KIND by name; FAULT_NONE if unknown. */
static enum fault_kind fault_from_name(const char *s, size_t len)
{
	for (int k = FAULT_NONE + 1; k < FAULT_NKINDS; k++)
		if (strlen(fault_names[k]) == len && memcmp(fault_names[k], s, len) == 0)
			return (enum fault_kind)k;
	return FAULT_NONE;
}

/* A --fault TARGET into rule: an OS (its /listdevices pages), or an
 * endpoint's name, for an endpoint with an OS optionally followed by
 * ".OS"; false with a message if unknown. */
static bool parse_fault_target(const char *target, struct fault_rule *rule)
{
	const char *dot = strchr(target, '.');
	size_t len = dot ? (size_t)(dot - target) : strlen(target);

	rule->os = simdata_os_from_name(target);
	if (rule->os >= 0) {
		rule->endpoint = EP_DEVICES;
		return true;
	}
	for (int ep = 0; ep < EP_NENDPOINTS; ep++) {
		const struct endpoint_def *def = &endpoint_defs[ep];
		if (!def->target || strlen(def->target) != len || memcmp(def->target, target, len) != 0)
			continue;
		rule->endpoint = (enum mosyle_endpoint)ep;
		if (!dot)
			return true;
		rule->os = def->per_os ? simdata_os_from_name(dot + 1) : -1;
		if (rule->os >= 0)
			return true;
		break;
	}
	for (int ep = SYNCRO_NONE + 1; ep < SYNCRO_NENDPOINTS; ep++) {
		if (strcmp(target, syncro_fault_targets[ep]) == 0) {
			rule->syncro = (enum syncro_endpoint)ep;
			rule->os = -1;
			return true;
		}
	}
	fprintf(stderr, "invsync-sim: --fault: unknown TARGET \"%s\" (an OS, or devices, "
			"login, users, classes, groups, groupdevices, accounts, attributes or adminlogs; "
			"devices, groups, groupdevices and attributes may add .OS; or syncro-assets, "
			"syncro-customers, syncro-contacts, syncro-settings or syncro-me)\n", target);
	return false;
}

/* --fault TARGET:PAGE:KIND[:TIMES]; false with a message if malformed. */
static bool parse_fault(const char *arg, struct sim_config *cfg)
{
	char copy[128];
	char *part[5] = {NULL};
	int n = 0;
	unsigned long long v;

	if (cfg->nfaults == FAULT_RULES_MAX) {
		fprintf(stderr, "invsync-sim: at most %d --fault options\n", FAULT_RULES_MAX);
		return false;
	}
	if (strlen(arg) >= sizeof(copy))
		goto bad;
	strcpy(copy, arg);
	for (char *p = copy; p && n < 5; n++) {
		part[n] = p;
		p = strchr(p, ':');
		if (p)
			*p++ = '\0';
	}
	if (n < 3 || n > 4)
		goto bad;
	struct fault_rule *rule = &cfg->faults[cfg->nfaults];
	*rule = (struct fault_rule){.syncro = SYNCRO_NONE};
	if (!parse_fault_target(part[0], rule))
		return false;
	if (!parse_number("fault PAGE", part[1], 0, INT_MAX, &v))
		return false;
	rule->page = v;
	rule->kind = fault_from_name(part[2], strlen(part[2]));
	if (rule->kind == FAULT_NONE) {
		fprintf(stderr, "invsync-sim: --fault: unknown KIND \"%s\" (see --help)\n", part[2]);
		return false;
	}
	/* a Syncro endpoint or /login answers a fault of its own or its real
	 * answer: the faults that alter a Mosyle page have nothing to alter
	 * there */
	if ((rule->syncro != SYNCRO_NONE || rule->endpoint == EP_LOGIN) &&
	    (fault_serves_page(rule->kind) || rule->kind == FAULT_INNER)) {
		fprintf(stderr, "invsync-sim: --fault: KIND \"%s\" does not apply to %s (500, "
				"502, 503, 429, 429ra, html and empty do)\n", part[2], part[0]);
		return false;
	}
	if (rule->syncro == SYNCRO_NONE && rule->endpoint != EP_DEVICES &&
	    fault_is_device_only(rule->kind)) {
		fprintf(stderr, "invsync-sim: --fault: KIND \"%s\" changes a device: it applies "
				"to /listdevices only\n", part[2]);
		return false;
	}
	rule->times = 1;
	if (n == 4) {
		if (!parse_number("fault TIMES", part[3], 0, 1000000000, &v))
			return false;
		rule->times = (unsigned)v;
	}
	cfg->nfaults++;
	return true;
bad:
	fprintf(stderr, "invsync-sim: --fault wants TARGET:PAGE:KIND[:TIMES], not \"%s\"\n", arg);
	return false;
}

/* --fault-rate PERCENT:KIND, PERCENT with at most two decimals. */
static bool parse_fault_rate(const char *arg, struct sim_config *cfg)
{
	const char *colon = strchr(arg, ':');
	const char *p = arg;
	unsigned long long bp = 0, total = 0;
	int decimals = -1;

	if (cfg->nrates == FAULT_RATES_MAX) {
		fprintf(stderr, "invsync-sim: at most %d --fault-rate options\n", FAULT_RATES_MAX);
		return false;
	}
	if (!colon || colon == arg)
		goto bad;
	for (; p < colon; p++) {
		if (*p == '.' && decimals < 0) {
			decimals = 0;
			continue;
		}
		if (*p < '0' || *p > '9' || decimals == 2 || bp > 100000)
			goto bad;
		bp = bp * 10 + (unsigned)(*p - '0');
		if (decimals >= 0)
			decimals++;
	}
	for (int d = decimals < 0 ? 0 : decimals; d < 2; d++)
		bp *= 10;
	if (bp == 0 || bp > 10000)
		goto bad;
	for (unsigned k = 0; k < cfg->nrates; k++)
		total += cfg->rates[k].basis_points;
	if (total + bp > 10000) {
		fprintf(stderr, "invsync-sim: the --fault-rate percentages add up to more than 100\n");
		return false;
	}
	struct fault_rate *rate = &cfg->rates[cfg->nrates];
	rate->basis_points = (unsigned)bp;
	rate->kind = fault_from_name(colon + 1, strlen(colon + 1));
	if (rate->kind == FAULT_NONE) {
		fprintf(stderr, "invsync-sim: --fault-rate: unknown KIND \"%s\" (see --help)\n",
			colon + 1);
		return false;
	}
	cfg->nrates++;
	return true;
bad:
	fprintf(stderr, "invsync-sim: --fault-rate wants PERCENT:KIND with PERCENT from 0.01 "
			"to 100, not \"%s\"\n", arg);
	return false;
}

/* One more Syncro key; false with a message if it cannot be one. */
static bool add_syncro_key(struct sim_config *cfg, const char *key, enum syncro_key_kind kind)
{
	if (cfg->syncro_nkeys == SYNCRO_KEYS_MAX) {
		fprintf(stderr, "invsync-sim: at most %d Syncro keys\n", SYNCRO_KEYS_MAX);
		return false;
	}
	if (!*key) {
		fprintf(stderr, "invsync-sim: a Syncro key cannot be empty\n");
		return false;
	}
	for (unsigned k = 0; k < cfg->syncro_nkeys; k++)
		if (strcmp(cfg->syncro_keys[k].key, key) == 0) {
			fprintf(stderr, "invsync-sim: Syncro key \"%s\" given twice\n", key);
			return false;
		}
	cfg->syncro_keys[cfg->syncro_nkeys++] = (struct syncro_key){key, kind};
	return true;
}

/* optarg as one of two words: false with a message if neither. */
static bool parse_choice(const char *opt, const char *arg, const char *no, const char *yes,
			 bool *out)
{
	if (strcmp(arg, no) == 0 || strcmp(arg, yes) == 0) {
		*out = strcmp(arg, yes) == 0;
		return true;
	}
	fprintf(stderr, "invsync-sim: --%s is %s or %s\n", opt, no, yes);
	return false;
}

/* 0 on success, 1 for --help, -1 after printing why the options are wrong. */
static int parse_options(int argc, char **argv, struct sim_config *cfg,
			 unsigned long long *bench)
{
	unsigned long long v;
	bool b;
	int c;

	for (;;) {
		c = getopt_long(argc, argv, "", long_options, NULL);
		if (c == -1)
			break;
		const char *name = "";
		for (const struct option *o = long_options; o->name; o++)
			if (o->val == c)
				name = o->name;
		switch (c) {
		case OPT_BIND: cfg->bind = optarg; break;
		case OPT_PORT:
			if (!parse_number(name, optarg, 0, 65535, &v))
				return -1;
			cfg->port = (unsigned)v;
			break;
		case OPT_PORT_FILE: cfg->port_file = optarg; break;
		case OPT_TLS_CERT: cfg->tls_cert = optarg; break;
		case OPT_TLS_KEY: cfg->tls_key = optarg; break;
		case OPT_MAX_CONNECTIONS:
			if (!parse_number(name, optarg, 1, 100000, &v))
				return -1;
			cfg->max_connections = (unsigned)v;
			break;
		case OPT_TIMEOUT:
			if (!parse_number(name, optarg, 0, 86400, &v))
				return -1;
			cfg->timeout_s = (unsigned)v;
			break;
		case OPT_LATENCY:
		case OPT_JITTER:
			if (!parse_number(name, optarg, 0, 3600000, &v))
				return -1;
			*(c == OPT_LATENCY ? &cfg->latency_ms : &cfg->jitter_ms) = (unsigned)v;
			break;
		case OPT_SEED:
			if (!parse_number(name, optarg, 0, ULLONG_MAX, &v))
				return -1;
			cfg->data.seed = v;
			break;
		case OPT_DEVICES:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			for (int os = 0; os < SIMDATA_NOS; os++)
				cfg->data.devices[os] = v;
			break;
		case OPT_IOS:
		case OPT_MAC:
		case OPT_TVOS:
		case OPT_VISIONOS:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			cfg->data.devices[c - OPT_IOS] = v;
			break;
		case OPT_NUL_IN_NAMES: cfg->data.nul_in_names = true; break;
		case OPT_RENAME_EVERY:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			cfg->data.rename_every = v;
			break;
		case OPT_ACCESS_TOKEN: cfg->access_token = optarg; break;
		case OPT_EMAIL: cfg->email = optarg; break;
		case OPT_PASSWORD: cfg->password = optarg; break;
		case OPT_FAIL_LOGIN: cfg->fail_login = true; break;
		case OPT_LOGIN_FAIL_STATUS:
			if (strcmp(optarg, "401") != 0 && strcmp(optarg, "200") != 0) {
				fprintf(stderr, "invsync-sim: --login-fail-status is 401 or 200\n");
				return -1;
			}
			cfg->login_fail_status = (unsigned)atoi(optarg);
			break;
		case OPT_FIRST_PAGE:
			if (!parse_number(name, optarg, 0, 1, &v))
				return -1;
			cfg->first_page = (unsigned)v;
			break;
		case OPT_PAGE_SIZE:
			if (!parse_number(name, optarg, 1, PAGE_SIZE_MAX, &v))
				return -1;
			cfg->page_size = (unsigned)v;
			break;
		case OPT_HONOUR_PAGE_SIZE: cfg->honour_page_size = true; break;
		case OPT_ROWS:
			if (strcmp(optarg, "int") == 0) {
				cfg->rows = ROWS_INT;
			} else if (strcmp(optarg, "string") == 0) {
				cfg->rows = ROWS_STRING;
			} else if (strcmp(optarg, "absent") == 0) {
				cfg->rows = ROWS_ABSENT;
			} else {
				fprintf(stderr, "invsync-sim: --rows is int, string or absent\n");
				return -1;
			}
			break;
		case OPT_END:
			if (strcmp(optarg, "empty") == 0) {
				cfg->end = END_EMPTY;
			} else if (strcmp(optarg, "notfound") == 0) {
				cfg->end = END_NOTFOUND;
			} else {
				fprintf(stderr, "invsync-sim: --end is empty or notfound\n");
				return -1;
			}
			break;
		case OPT_IGNORE_PAGE: cfg->ignore_page = true; break;
		case OPT_RESPONSE_ARRAY: cfg->response_array = true; break;
		case OPT_FAULT:
			if (!parse_fault(optarg, cfg))
				return -1;
			break;
		case OPT_FAULT_RATE:
			if (!parse_fault_rate(optarg, cfg))
				return -1;
			break;
		case OPT_HUGE_SIZE:
			if (!parse_number(name, optarg, 1, 256u << 20, &v))
				return -1;
			cfg->huge_size = (size_t)v;
			break;
		case OPT_USERS:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			cfg->data.users = v;
			cfg->users_given = true;
			break;
		case OPT_USERS_END:
			if (!parse_choice(name, optarg, "empty", "notfound", &b))
				return -1;
			cfg->users_end = b ? END_NOTFOUND : END_EMPTY;
			break;
		case OPT_USERS_NO_TOTAL: cfg->users_no_total = true; break;
		case OPT_USER_LOCATIONS:
			if (!parse_choice(name, optarg, "objects", "strings",
					  &cfg->user_location_strings))
				return -1;
			break;
		case OPT_CLASSES:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			cfg->data.classes = v;
			break;
		case OPT_CLASSES_NAME_KEY:
			if (!parse_choice(name, optarg, "class_name", "name", &cfg->classes_name_key))
				return -1;
			break;
		case OPT_GROUPS:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			cfg->data.groups = v;
			break;
		case OPT_GROUPS_RESPONSE:
			if (!parse_choice(name, optarg, "object", "array", &cfg->groups_response_array))
				return -1;
			break;
		case OPT_GROUPS_FIRST_PAGE:
			if (!parse_number(name, optarg, 0, 1, &v))
				return -1;
			cfg->groups_first_page = (unsigned)v;
			break;
		case OPT_NOT_DISTRICT: cfg->not_district = true; break;
		case OPT_ADMINLOGS:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			cfg->data.admin_logs = v;
			break;
		case OPT_TOKEN_TTL_MS:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			cfg->token_ttl_ms = v;
			break;
		case OPT_TOKEN_MAX_REQUESTS:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			cfg->token_max_requests = v;
			break;
		case OPT_SYNCRO_CUSTOMERS:
			if (!parse_number(name, optarg, 1, 1000000, &v))
				return -1;
			cfg->syncro.customers = v;
			break;
		case OPT_SYNCRO_CONTACTS:
			if (!parse_number(name, optarg, 0, 1000, &v))
				return -1;
			cfg->syncro.contacts_per_customer = v;
			break;
		case OPT_SYNCRO_ASSETS:
			if (!parse_number(name, optarg, 0, UINT64_C(1) << 40, &v))
				return -1;
			cfg->syncro_assets = v;
			break;
		case OPT_SYNCRO_PAGE_SIZE:
			if (!parse_number(name, optarg, 1, 1000, &v))
				return -1;
			cfg->syncro_page_size = (unsigned)v;
			break;
		case OPT_SYNCRO_HONOUR_PER_PAGE: cfg->syncro_honour_per_page = true; break;
		case OPT_SYNCRO_NO_META: cfg->syncro_no_meta = true; break;
		case OPT_SYNCRO_API_KEY:
			if (!add_syncro_key(cfg, optarg, SYNCRO_KEY_VALID))
				return -1;
			cfg->syncro_default_key = false;
			break;
		case OPT_SYNCRO_NO_ASSETS_KEY:
			if (!add_syncro_key(cfg, optarg, SYNCRO_KEY_NO_ASSETS))
				return -1;
			break;
		case OPT_SYNCRO_EXPIRED_KEY:
			if (!add_syncro_key(cfg, optarg, SYNCRO_KEY_EXPIRED))
				return -1;
			break;
		case OPT_SYNCRO_NO_ASSET_PERMISSION: cfg->syncro_no_asset_permission = true; break;
		case OPT_SYNCRO_RATE:
			if (!parse_number(name, optarg, 0, 100000, &v))
				return -1;
			cfg->syncro_rate = (unsigned)v;
			break;
		case OPT_SYNCRO_WINDOW_MS:
			if (!parse_number(name, optarg, 100, 3600000, &v))
				return -1;
			cfg->syncro_window_ms = (unsigned)v;
			break;
		case OPT_SYNCRO_RETRY_AFTER:
			if (!parse_number(name, optarg, 0, 86400, &v))
				return -1;
			cfg->syncro_retry_after = (unsigned)v;
			break;
		case OPT_GEN_BENCH:
			*bench = 200000;
			if (optarg && !parse_number(name, optarg, 1, UINT64_C(1) << 40, bench))
				return -1;
			break;
		case OPT_HELP: return 1;
		default: return -1; /* getopt printed why */
		}
	}
	if (optind < argc) {
		fprintf(stderr, "invsync-sim: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		fprintf(stderr, "invsync-sim: --tls-cert and --tls-key go together\n");
		return -1;
	}
	/* Device i names user i: by default there are as many users as the
	 * largest OS has devices, so every user a device names is served. */
	uint64_t most = 0;
	for (int os = 0; os < SIMDATA_NOS; os++)
		if (cfg->data.devices[os] > most)
			most = cfg->data.devices[os];
	if (!cfg->users_given) {
		cfg->data.users = most;
	} else if (cfg->data.users == 0 && most) {
		/* simdata reads 0 as "no bound": devices would name users that
		 * /listusers does not serve */
		fprintf(stderr, "invsync-sim: --users 0 needs --devices 0 (devices name users)\n");
		return -1;
	}
	return 0;
}

/* Read the PEM file at path into out, NUL-terminated as libmicrohttpd
 * wants it; false with a message otherwise. */
static bool read_pem_file(const char *opt, const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char chunk[8192];
	size_t n;
	bool ok = false;

	if (!f) {
		fprintf(stderr, "invsync-sim: --%s: cannot open %s: %s\n", opt, path,
			strerror(errno));
		return false;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (out->len + n > PEM_FILE_MAX) {
			fprintf(stderr, "invsync-sim: --%s: %s is larger than %d KiB\n", opt, path,
				PEM_FILE_MAX / 1024);
			goto out;
		}
		buf_append(out, chunk, n);
	}
	if (ferror(f)) {
		fprintf(stderr, "invsync-sim: --%s: cannot read %s: %s\n", opt, path,
			strerror(errno));
		goto out;
	}
	if (!out->len || memchr(out->data, '\0', out->len)) {
		fprintf(stderr, "invsync-sim: --%s: %s is not a PEM file\n", opt, path);
		goto out;
	}
	ok = true;
out:
	fclose(f);
	return ok;
}

static int write_port_file(const char *path, unsigned port)
{
	struct buf tmp = BUF_INIT;
	FILE *f;
	int rc = -1;

	buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp.data, "w");
	if (!f)
		goto out;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0) {
		unlink(tmp.data);
		goto out;
	}
	if (rename(tmp.data, path) != 0) {
		unlink(tmp.data);
		goto out;
	}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "invsync-sim: cannot write port file %s: %s\n", path,
			strerror(errno));
	buf_free(&tmp);
	return rc;
}

int main(int argc, char **argv)
{
	static struct sim sim;
	struct sim_config *cfg = &sim.cfg;
	unsigned long long bench = 0;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr *addr;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *daemon;
	const union MHD_DaemonInfo *info;
	struct buf tls_cert = BUF_INIT, tls_key = BUF_INIT;
	/* the certificate and key, or nothing: filled in below */
	struct MHD_OptionItem tls_options[3] = {{MHD_OPTION_END, 0, NULL}};
	sigset_t signals;
	unsigned port;
	int sig, rc;

	*cfg = (struct sim_config){
		.bind = "127.0.0.1",
		.data = {.seed = 1, .nul_in_names = false,
			 .devices = {1000, 1000, 1000, 1000},
			 .classes = 100, .groups = 20, .admin_logs = 1000},
		.access_token = "sim-access-token",
		.email = "admin@district.example",
		.password = "sim-password",
		.login_fail_status = 401,
		.first_page = 1,
		.page_size = 100,
		.rows = ROWS_INT,
		.end = END_EMPTY,
		.max_connections = 1024,
		.timeout_s = 60,
		.huge_size = 2u << 20,
		.syncro = {.customers = 50, .contacts_per_customer = 2},
		.syncro_assets = 1000,
		.syncro_page_size = 25,
		.syncro_window_ms = 60000,
		.syncro_default_key = true,
	};
	rc = parse_options(argc, argv, cfg, &bench);
	if (rc > 0) {
		usage(stdout);
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "Try 'invsync-sim --help'.\n");
		return 2;
	}
	cfg->syncro.seed = cfg->data.seed;
	if (bench)
		return gen_bench(cfg, bench);

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, cfg->bind, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)cfg->port);
		addr = (struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, cfg->bind, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)cfg->port);
		addr = (struct sockaddr *)&sin6;
		flags |= MHD_USE_IPv6;
	} else {
		fprintf(stderr, "invsync-sim: --bind wants an IPv4 or IPv6 address, not \"%s\"\n",
			cfg->bind);
		return 2;
	}
	if (cfg->tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			fprintf(stderr, "invsync-sim: this libmicrohttpd was built without TLS\n");
			return 1;
		}
		if (!read_pem_file("tls-cert", cfg->tls_cert, &tls_cert) ||
		    !read_pem_file("tls-key", cfg->tls_key, &tls_key)) {
			rc = 2;
			goto out_tls;
		}
		flags |= MHD_USE_TLS;
		tls_options[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert.data};
		tls_options[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key.data};
		tls_options[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	}

	/* Threads started from here on inherit the mask: only sigwait() below
	 * sees SIGINT and SIGTERM. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	token_set_init(&sim.tokens);
	rate_table_init(&sim.syncro_rate);
	atomic_init(&sim.stats.adminlogs_start_date, -1);
	sim.token_secret = simdata_mix64(cfg->data.seed ^ (uint64_t)time(NULL) ^
				 ((uint64_t)getpid() << 32));
	daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, &sim,
				  MHD_OPTION_SOCK_ADDR, addr,
				  MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
				  MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
				  MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
				  MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, &sim,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, &sim,
				  MHD_OPTION_ARRAY, tls_options,
				  MHD_OPTION_END);
	if (!daemon) {
		fprintf(stderr, "invsync-sim: cannot listen on %s port %u%s\n", cfg->bind,
			cfg->port, cfg->tls_cert ? " (or the TLS certificate or key was refused)" : "");
		token_set_free(&sim.tokens);
		rate_table_free(&sim.syncro_rate);
		rc = 1;
		goto out_tls;
	}
	info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : cfg->port;
	rc = 0;
	if (cfg->port_file && write_port_file(cfg->port_file, port) != 0) {
		rc = 1;
		goto out;
	}
	printf(addr->sa_family == AF_INET6 ? "invsync-sim listening on [%s]:%u%s\n"
					   : "invsync-sim listening on %s:%u%s\n", cfg->bind, port,
	       cfg->tls_cert ? " (HTTPS)" : "");
	fflush(stdout);

	while (sigwait(&signals, &sig) != 0)
		;
out:
	/* stalled and slow answers notice this and end at once */
	atomic_store(&sim.stopping, true);
	MHD_stop_daemon(daemon);
	token_set_free(&sim.tokens);
	rate_table_free(&sim.syncro_rate);
out_tls:
	if (tls_key.data)
		explicit_bzero(tls_key.data, tls_key.len);
	buf_free(&tls_key);
	buf_free(&tls_cert);
	return rc;
}
