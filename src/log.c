/* log.c - log lines with registered secrets redacted (see log.h).
 *
 * Redaction marks every byte covered by any occurrence of any registered
 * secret, then replaces each maximal run of marked bytes by one
 * "[redacted]". Overlapping or nested secrets therefore disappear whole:
 * no tail of a longer secret survives next to the marker of a shorter one.
 */
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REDACTED "[redacted]"
#define MIN_SECRET_LEN 4

struct secret {
	char *text;
	size_t len;
};

static enum log_level current_level = LOG_LEVEL_INFO;
static FILE *log_stream; /* NULL: stderr */
static struct secret *secrets; /* longest first */
static size_t nsecrets;
static size_t secrets_cap;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void log_set_stream(FILE *f)
{
	log_stream = f;
}

void log_add_secret(const char *s)
{
	if (!s)
		return;
	size_t len = strlen(s);
	if (len < MIN_SECRET_LEN)
		return;
	for (size_t i = 0; i < nsecrets; i++)
		if (secrets[i].len == len && memcmp(secrets[i].text, s, len) == 0)
			return;
	if (nsecrets == secrets_cap) {
		secrets_cap = secrets_cap ? secrets_cap * 2 : 8;
		secrets = xrealloc(secrets, secrets_cap * sizeof(*secrets));
	}
	/* Keep the table longest first. */
	size_t at = 0;
	while (at < nsecrets && secrets[at].len >= len)
		at++;
	memmove(&secrets[at + 1], &secrets[at], (nsecrets - at) * sizeof(*secrets));
	secrets[at].text = xstrndup(s, len);
	secrets[at].len = len;
	nsecrets++;
}

void log_clear_secrets(void)
{
	for (size_t i = 0; i < nsecrets; i++)
		free(secrets[i].text);
	free(secrets);
	secrets = NULL;
	nsecrets = 0;
	secrets_cap = 0;
}

/* Append the n bytes at s to out, redacted. */
static void redact_mem(struct buf *out, const char *s, size_t n)
{
	if (nsecrets == 0 || n < MIN_SECRET_LEN) {
		buf_append(out, s, n);
		return;
	}
	unsigned char *covered = NULL;
	for (size_t i = 0; i < nsecrets; i++) {
		const struct secret *sec = &secrets[i];
		const char *p = s;
		const char *end = s + n;
		while ((size_t)(end - p) >= sec->len) {
			const char *hit = memmem(p, (size_t)(end - p), sec->text, sec->len);
			if (!hit)
				break;
			if (!covered)
				covered = xcalloc(n, 1);
			memset(covered + (hit - s), 1, sec->len);
			/* Step by one byte: occurrences of one secret may overlap. */
			p = hit + 1;
		}
	}
	if (!covered) {
		buf_append(out, s, n);
		return;
	}
	size_t i = 0;
	while (i < n) {
		size_t start = i;
		if (covered[i]) {
			while (i < n && covered[i])
				i++;
			buf_puts(out, REDACTED);
		} else {
			while (i < n && !covered[i])
				i++;
			buf_append(out, s + start, i - start);
		}
	}
	free(covered);
}

void log_redact(struct buf *out, const char *s)
{
	redact_mem(out, s, strlen(s));
}

void log_redact_buf(struct buf *b)
{
	if (nsecrets == 0 || b->len == 0)
		return;
	struct buf tmp = BUF_INIT;
	redact_mem(&tmp, b->data, b->len);
	buf_free(b);
	*b = tmp;
}

void log_msg(enum log_level level, const char *source, const char *fmt, ...)
{
	if (level > current_level)
		return;

	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(stamp, "0000-00-00T00:00:00Z");

	const char *name = (unsigned)level < ARRAY_SIZE(level_names) ? level_names[level] : "?";
	struct buf line = BUF_INIT;
	buf_printf(&line, "%s %-5s ", stamp, name);
	if (source)
		buf_printf(&line, "[%s] ", source);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&line, fmt, ap);
	va_end(ap);

	struct buf out = BUF_INIT;
	redact_mem(&out, line.data, line.len);
	buf_putc(&out, '\n');
	FILE *f = log_stream ? log_stream : stderr;
	/* One write per line keeps lines whole when several processes share stderr. */
	fwrite(out.data, 1, out.len, f);
	fflush(f);
	buf_free(&out);
	buf_free(&line);
}
