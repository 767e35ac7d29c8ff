/* log.h - log lines on stderr, as text or as JSON, with secrets redacted.
 *
 * Every secret the program learns (tokens, passwords, emails used to log
 * in, JWTs, connection passwords) is registered with log_add_secret(); every
 * log line and every string passed through log_redact() has each registered
 * secret replaced by "[redacted]".
 *
 * A log event carries a level, and optionally the source, the endpoint, the
 * page and a short machine word naming what happened ("page_retry",
 * "login", "committed"...). As text (the default) a line looks like
 *   2026-11-24T08:01:21Z info  [district-a] message
 *   2026-11-24T08:01:21Z warn  [district-a] devices/ios page 12: message
 * (the event word is not shown). As JSON, one object per line:
 *   {"time":"2026-11-24T08:01:21.042Z","level":"warn","source":"district-a",
 *    "endpoint":"devices/ios","page":12,"event":"page_retry","message":"..."}
 * with the fields that are absent left out; "time" and "level" and
 * "message" are always there. Each string is redacted before it is escaped,
 * so a secret cannot slip through as an escape sequence; control
 * characters are escaped and ill-formed UTF-8 becomes U+FFFD, so every line
 * is valid JSON whatever the message holds.
 */
#ifndef INVSYNC_LOG_H
#define INVSYNC_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "buf.h"

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_set_format(enum log_format format);
enum log_format log_get_format(void);

/* Send log lines to f instead of stderr (NULL: back to stderr). The caller
 * keeps ownership of f and must not close it while it is set. */
void log_set_stream(FILE *f);

/* Call before(arg) just before each log line is written and after(arg)
 * just after, e.g. to take a live progress display off the terminal and
 * draw it again below the line (progress_attach_log() does exactly that).
 * Either may be NULL; log_set_hooks(NULL, NULL, NULL) removes them. The
 * hooks must not log. */
void log_set_hooks(void (*before)(void *arg), void (*after)(void *arg), void *arg);

/* Register a secret (copied). Strings shorter than 4 bytes are ignored. */
void log_add_secret(const char *s);
/* Forget every secret (frees memory; tests and exit). */
void log_clear_secrets(void);

/* Append s to out with every registered secret replaced. */
void log_redact(struct buf *out, const char *s);
/* Redact the contents of b in place. */
void log_redact_buf(struct buf *b);

/* Append the n bytes at s to out as a JSON string literal, quotes
 * included: redacted first, then quotes, backslashes and control
 * characters (DEL too) escaped, each ill-formed UTF-8 sequence replaced by
 * U+FFFD; other non-ASCII characters pass through as UTF-8. What every
 * JSON log line uses for its strings; also for other JSON invsync writes
 * (the report). */
void log_json_string(struct buf *out, const char *s, size_t n);

/* Log one event if level is enabled. source, endpoint and event may be
 * NULL and page -1 (or any negative number) for none; the message is fmt
 * with its arguments. The line is written with one write and flushed. */
void log_event(enum log_level level, const char *source, const char *endpoint, long page,
	       const char *event, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void log_vevent(enum log_level level, const char *source, const char *endpoint, long page,
		const char *event, const char *fmt, va_list ap)
	__attribute__((format(printf, 6, 0)));

/* log_event() without endpoint, page or event. source may be NULL. */
void log_msg(enum log_level level, const char *source, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(src, ...) log_msg(LOG_LEVEL_ERROR, (src), __VA_ARGS__)
#define log_warn(src, ...) log_msg(LOG_LEVEL_WARN, (src), __VA_ARGS__)
#define log_info(src, ...) log_msg(LOG_LEVEL_INFO, (src), __VA_ARGS__)
#define log_debug(src, ...)                                          \
	do {                                                         \
		if (log_get_level() >= LOG_LEVEL_DEBUG)              \
			log_msg(LOG_LEVEL_DEBUG, (src), __VA_ARGS__); \
	} while (0)

/* The same with an endpoint, a page and an event word, e.g.
 *   log_warn_ev(src, "devices/ios", 12, "page_retry", "attempt %d failed", n); */
#define log_ev(level, src, endpoint, page, event, ...) \
	log_event((level), (src), (endpoint), (page), (event), __VA_ARGS__)
#define log_error_ev(src, endpoint, page, event, ...) \
	log_event(LOG_LEVEL_ERROR, (src), (endpoint), (page), (event), __VA_ARGS__)
#define log_warn_ev(src, endpoint, page, event, ...) \
	log_event(LOG_LEVEL_WARN, (src), (endpoint), (page), (event), __VA_ARGS__)
#define log_info_ev(src, endpoint, page, event, ...) \
	log_event(LOG_LEVEL_INFO, (src), (endpoint), (page), (event), __VA_ARGS__)
#define log_debug_ev(src, endpoint, page, event, ...)                                   \
	do {                                                                            \
		if (log_get_level() >= LOG_LEVEL_DEBUG)                                 \
			log_event(LOG_LEVEL_DEBUG, (src), (endpoint), (page), (event),  \
				  __VA_ARGS__);                                         \
	} while (0)

#endif
