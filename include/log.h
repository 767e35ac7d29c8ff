/* log.h - log lines on stderr, with secrets redacted.
 *
 * Every secret the program learns (tokens, passwords, emails used to log
 * in, JWTs, connection passwords) is registered with log_add_secret(); every
 * log line and every string passed through log_redact() has each registered
 * secret replaced by "[redacted]". Log lines look like
 *   2026-11-24T08:01:21Z info  [district-a] message
 */
#ifndef INVSYNC_LOG_H
#define INVSYNC_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Send log lines to f instead of stderr (NULL: back to stderr). The caller
 * keeps ownership of f and must not close it while it is set. */
void log_set_stream(FILE *f);

/* Register a secret (copied). Strings shorter than 4 bytes are ignored. */
void log_add_secret(const char *s);
/* Forget every secret (frees memory; tests and exit). */
void log_clear_secrets(void);

/* Append s to out with every registered secret replaced. */
void log_redact(struct buf *out, const char *s);
/* Redact the contents of b in place. */
void log_redact_buf(struct buf *b);

/* source may be NULL. */
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

#endif
