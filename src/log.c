/* log.c - log lines, as text or JSON, with registered secrets redacted
 * (see log.h).
 *
 * Redaction marks every byte covered by any occurrence of any registered
 * secret, then replaces each maximal run of marked bytes by one
 * "[redacted]". Overlapping or nested secrets therefore disappear whole:
 * no tail of a longer secret survives next to the marker of a shorter one.
 *
 * A text line is composed whole and then redacted. A JSON line is composed
 * field by field, and each string is redacted before it is escaped: a
 * secret holding a quote, a backslash or a control character would no
 * longer match once escaped.
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
static enum log_format current_format = LOG_FORMAT_TEXT;
static FILE *log_stream; /* NULL: stderr */
static void (*hook_before)(void *arg);
static void (*hook_after)(void *arg);
static void *hook_arg;
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

void log_set_format(enum log_format format)
{
	current_format = format;
}

enum log_format log_get_format(void)
{
	return current_format;
}

void log_set_stream(FILE *f)
{
	log_stream = f;
}

void log_set_hooks(void (*before)(void *arg), void (*after)(void *arg), void *arg)
{
	hook_before = before;
	hook_after = after;
	hook_arg = arg;
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

void log_json_string(struct buf *out, const char *s, size_t n)
{
	struct buf clean = BUF_INIT;
	redact_mem(&clean, s, n);
	const char *p = buf_str(&clean);
	size_t len = clean.len;

	buf_putc(out, '"');
	size_t i = 0;
	while (i < len) {
		/* copy a run of bytes that need nothing in one go */
		size_t start = i;
		while (i < len) {
			unsigned char c = (unsigned char)p[i];
			if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f)
				break;
			i++;
		}
		buf_append(out, p + start, i - start);
		if (i == len)
			break;

		unsigned char c = (unsigned char)p[i];
		if (c >= 0x80) {
			size_t clen;
			if (util_utf8_next(p + i, len - i, &clen))
				buf_append(out, p + i, clen);
			else
				buf_puts(out, "\xEF\xBF\xBD");
			i += clen;
			continue;
		}
		switch (c) {
		case '"':
			buf_puts(out, "\\\"");
			break;
		case '\\':
			buf_puts(out, "\\\\");
			break;
		case '\n':
			buf_puts(out, "\\n");
			break;
		case '\r':
			buf_puts(out, "\\r");
			break;
		case '\t':
			buf_puts(out, "\\t");
			break;
		case '\b':
			buf_puts(out, "\\b");
			break;
		case '\f':
			buf_puts(out, "\\f");
			break;
		default:
			buf_printf(out, "\\u%04x", c);
			break;
		}
		i++;
	}
	buf_putc(out, '"');
	buf_free(&clean);
}

static void put_json_field(struct buf *out, const char *name, const char *value)
{
	buf_printf(out, ",\"%s\":", name);
	log_json_string(out, value, strlen(value));
}

static void format_text(struct buf *out, const char *level_name, const char *source,
			const char *endpoint, long page, const struct buf *msg)
{
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(stamp, "0000-00-00T00:00:00Z");

	struct buf line = BUF_INIT;
	buf_printf(&line, "%s %-5s ", stamp, level_name);
	if (source)
		buf_printf(&line, "[%s] ", source);
	/* the same words run.c has always written by hand: "devices/ios page 12: " */
	if (endpoint && page >= 0)
		buf_printf(&line, "%s page %ld: ", endpoint, page);
	else if (endpoint)
		buf_printf(&line, "%s: ", endpoint);
	else if (page >= 0)
		buf_printf(&line, "page %ld: ", page);
	buf_append(&line, buf_str(msg), msg->len);
	redact_mem(out, buf_str(&line), line.len);
	buf_free(&line);
}

static void format_json(struct buf *out, const char *level_name, const char *source,
			const char *endpoint, long page, const char *event, const struct buf *msg)
{
	char stamp[40];
	struct timespec ts;
	struct tm tm;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm) ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		strcpy(stamp, "0000-00-00T00:00:00");

	buf_printf(out, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\"", stamp, ts.tv_nsec / 1000000,
		   level_name);
	if (source)
		put_json_field(out, "source", source);
	if (endpoint)
		put_json_field(out, "endpoint", endpoint);
	if (page >= 0)
		buf_printf(out, ",\"page\":%ld", page);
	if (event)
		put_json_field(out, "event", event);
	buf_puts(out, ",\"message\":");
	log_json_string(out, buf_str(msg), msg->len);
	buf_putc(out, '}');
}

void log_vevent(enum log_level level, const char *source, const char *endpoint, long page,
		const char *event, const char *fmt, va_list ap)
{
	if (level > current_level)
		return;

	const char *name = (unsigned)level < ARRAY_SIZE(level_names) ? level_names[level] : "?";
	struct buf msg = BUF_INIT;
	buf_vprintf(&msg, fmt, ap);

	struct buf out = BUF_INIT;
	if (current_format == LOG_FORMAT_JSON)
		format_json(&out, name, source, endpoint, page, event, &msg);
	else
		format_text(&out, name, source, endpoint, page, &msg);
	buf_putc(&out, '\n');

	FILE *f = log_stream ? log_stream : stderr;
	if (hook_before)
		hook_before(hook_arg);
	/* One write per line keeps lines whole when several processes share stderr. */
	fwrite(out.data, 1, out.len, f);
	fflush(f);
	if (hook_after)
		hook_after(hook_arg);
	buf_free(&out);
	buf_free(&msg);
}

void log_event(enum log_level level, const char *source, const char *endpoint, long page,
	       const char *event, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vevent(level, source, endpoint, page, event, fmt, ap);
	va_end(ap);
}

void log_msg(enum log_level level, const char *source, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vevent(level, source, NULL, -1, NULL, fmt, ap);
	va_end(ap);
}
