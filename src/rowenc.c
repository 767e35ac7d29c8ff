/* rowenc.c - PostgreSQL COPY text-format encoding of column values
 * (see rowenc.h).
 *
 * COPY text format needs backslash, tab, newline and carriage return
 * escaped; every other byte goes through as is. PostgreSQL cannot store a
 * NUL byte in text, so a stray NUL becomes U+FFFD. Conversions check their
 * input strictly enough that the server will accept what they emit: a value
 * PostgreSQL would reject fails the whole COPY, while a NULL only loses that
 * one value (and the caller counts it).
 */
#include "rowenc.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <yajl/yajl_parse.h>

/* Same limits as jstream: numbers PostgreSQL's numeric surely accepts. */
#define NUMERIC_MAX_LEN 1000
#define NUMERIC_MAX_EXP 1000
/* 9999-12-31 23:59:59 UTC */
#define UNIX_TIME_MAX 253402300799ull

static const char fffd[3] = {'\xef', '\xbf', '\xbd'};

/* Nonzero for bytes that COPY text format (or we) must rewrite. */
static const unsigned char copy_special[256] = {
	['\0'] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\\'] = 1,
};

static inline void room(struct buf *b, size_t n)
{
	if (b->cap - b->len <= n)
		buf_reserve(b, n);
}

static inline void put(struct buf *b, const void *p, size_t n)
{
	room(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* Append the COPY escape for one special byte. */
static void put_special(struct buf *b, unsigned char c)
{
	switch (c) {
	case '\0': put(b, fffd, 3); break;
	case '\t': put(b, "\\t", 2); break;
	case '\n': put(b, "\\n", 2); break;
	case '\r': put(b, "\\r", 2); break;
	default: put(b, "\\\\", 2); break;
	}
}

/* Index of the first byte at or after i that COPY needs rewritten (or
 * len), eight bytes at a time while clean. The word test flags any byte
 * below 0x0e or a backslash; the byte loop then decides. */
static inline size_t copy_safe_run(const unsigned char *p, size_t i, size_t len)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	while (len - i >= 8) {
		uint64_t x, y;
		memcpy(&x, p + i, 8);
		y = x ^ (ones * '\\');
		if ((((x - ones * 0x0e) & ~x) | ((y - ones) & ~y)) & highs)
			break;
		i += 8;
	}
	while (i < len && !copy_special[p[i]])
		i++;
	return i;
}

void rowenc_text(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	room(b, len);
	while (i < len) {
		size_t start = i;
		i = copy_safe_run(p, i, len);
		if (i > start)
			put(b, p + start, i - start);
		if (i < len)
			put_special(b, p[i++]);
	}
	if (b->data)
		b->data[b->len] = '\0';
}

void rowenc_value(struct buf *b, const struct jstream_value *v, int empty_is_null)
{
	if (v->type == JSTREAM_ABSENT || v->type == JSTREAM_NULL ||
	    (empty_is_null && v->type == JSTREAM_STRING && v->len == 0)) {
		rowenc_null(b);
		return;
	}
	rowenc_text(b, v->text, v->len);
}

/* ---- parsing helpers ----------------------------------------------------- */

static inline bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The value's text without surrounding whitespace. */
static void trimmed(const struct jstream_value *v, const char **s, size_t *len)
{
	const char *p = v->text;
	size_t n = v->len;
	while (n && is_space(*p)) {
		p++;
		n--;
	}
	while (n && is_space(p[n - 1]))
		n--;
	*s = p;
	*len = n;
}

/* What to do with a value before looking at its text. */
enum pre {
	PRE_NULL,   /* emit NULL, return 0 */
	PRE_BAD,    /* emit NULL, return 1 */
	PRE_PARSE,  /* parse s/len */
};

/* ABSENT, NULL and blank strings are NULL; strings and numbers are parsed;
 * booleans and JSON are not numbers or times. */
static enum pre numeric_text(const struct jstream_value *v, const char **s, size_t *len)
{
	switch (v->type) {
	case JSTREAM_STRING:
	case JSTREAM_NUMBER:
		trimmed(v, s, len);
		return *len ? PRE_PARSE : PRE_NULL;
	case JSTREAM_BOOL:
	case JSTREAM_JSON:
		return PRE_BAD;
	default:
		return PRE_NULL;
	}
}

static int emit_null(struct buf *b, int ret)
{
	rowenc_null(b);
	return ret;
}

static size_t digits(const char *s, size_t len, size_t i)
{
	while (i < len && is_digit(s[i]))
		i++;
	return i;
}

/* [+-]? (D+ (.D*)? | .D+) ([eE][+-]?D+)? within PostgreSQL's limits. */
static bool numeric_ok(const char *s, size_t len)
{
	size_t i = 0, d;

	if (len > NUMERIC_MAX_LEN)
		return false;
	if (s[i] == '+' || s[i] == '-')
		i++;
	d = digits(s, len, i);
	bool int_part = d > i;
	i = d;
	if (i < len && s[i] == '.') {
		d = digits(s, len, ++i);
		if (!int_part && d == i)
			return false;
		i = d;
	} else if (!int_part) {
		return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		d = digits(s, len, i);
		if (d == i)
			return false;
		long exp = 0;
		for (; i < d; i++) {
			exp = exp * 10 + (s[i] - '0');
			if (exp > NUMERIC_MAX_EXP)
				return false;
		}
	}
	return i == len;
}

/* ---- conversions --------------------------------------------------------- */

static bool word_is(const char *s, size_t len, const char *w)
{
	return strlen(w) == len && strncasecmp(s, w, len) == 0;
}

int rowenc_bool(struct buf *b, const struct jstream_value *v)
{
	const char *s;
	size_t len;

	switch (v->type) {
	case JSTREAM_BOOL:
		buf_putc(b, v->text[0] == 't' ? 't' : 'f');
		return 0;
	case JSTREAM_STRING:
	case JSTREAM_NUMBER:
		trimmed(v, &s, &len);
		if (!len)
			return emit_null(b, 0);
		if (word_is(s, len, "1") || word_is(s, len, "true") || word_is(s, len, "yes")) {
			buf_putc(b, 't');
			return 0;
		}
		if (word_is(s, len, "0") || word_is(s, len, "false") || word_is(s, len, "no")) {
			buf_putc(b, 'f');
			return 0;
		}
		return emit_null(b, 1);
	case JSTREAM_JSON:
		return emit_null(b, 1);
	default:
		return emit_null(b, 0);
	}
}

int rowenc_numeric(struct buf *b, const struct jstream_value *v)
{
	const char *s;
	size_t len;

	switch (numeric_text(v, &s, &len)) {
	case PRE_NULL:
		return emit_null(b, 0);
	case PRE_BAD:
		return emit_null(b, 1);
	default:
		break;
	}
	if (!numeric_ok(s, len))
		return emit_null(b, 1);
	put(b, s, len); /* only digits, signs, '.', 'e': nothing to escape */
	return 0;
}

/* An integer within bigint's range. "12.000" counts as 12 (Mosyle writes
 * whole numbers that way); any other fraction or an exponent does not. */
int rowenc_int(struct buf *b, const struct jstream_value *v)
{
	const char *s;
	size_t len, i = 0;

	switch (numeric_text(v, &s, &len)) {
	case PRE_NULL:
		return emit_null(b, 0);
	case PRE_BAD:
		return emit_null(b, 1);
	default:
		break;
	}
	bool neg = s[0] == '-';
	if (s[0] == '+' || s[0] == '-')
		i++;
	size_t start = i, end = digits(s, len, i);
	if (end == start)
		return emit_null(b, 1);
	if (end < len) {
		if (s[end] != '.')
			return emit_null(b, 1);
		for (size_t k = end + 1; k < len; k++)
			if (s[k] != '0')
				return emit_null(b, 1);
	}
	/* Range: at most 9223372036854775807 (or ...808 when negative). */
	size_t z = start;
	while (z + 1 < end && s[z] == '0')
		z++;
	if (end - z > 19)
		return emit_null(b, 1);
	if (end - z == 19) {
		uint64_t val = 0;
		for (size_t k = z; k < end; k++)
			val = val * 10 + (uint64_t)(s[k] - '0');
		if (val > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
			return emit_null(b, 1);
	}
	put(b, s, end);
	return 0;
}

static void put_2(char *o, unsigned v)
{
	o[0] = (char)('0' + v / 10);
	o[1] = (char)('0' + v % 10);
}

int rowenc_unix_time(struct buf *b, const struct jstream_value *v)
{
	const char *s;
	size_t len;

	switch (numeric_text(v, &s, &len)) {
	case PRE_NULL:
		return emit_null(b, 0);
	case PRE_BAD:
		return emit_null(b, 1);
	default:
		break;
	}
	/* D+ (.D*)?: seconds, with any fraction dropped. */
	size_t end = digits(s, len, 0);
	if (end == 0)
		return emit_null(b, 1);
	if (end < len && (s[end] != '.' || digits(s, len, end + 1) != len))
		return emit_null(b, 1);
	uint64_t secs = 0;
	for (size_t i = 0; i < end; i++) {
		secs = secs * 10 + (uint64_t)(s[i] - '0');
		if (secs > UNIX_TIME_MAX)
			return emit_null(b, 1);
	}
	if (secs == 0)
		return emit_null(b, 0);

	time_t t = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return emit_null(b, 1);
	/* YYYY-MM-DD HH:MM:SS+00 */
	char o[22];
	unsigned year = (unsigned)tm.tm_year + 1900;
	put_2(o, year / 100);
	put_2(o + 2, year % 100);
	o[4] = '-';
	put_2(o + 5, (unsigned)tm.tm_mon + 1);
	o[7] = '-';
	put_2(o + 8, (unsigned)tm.tm_mday);
	o[10] = ' ';
	put_2(o + 11, (unsigned)tm.tm_hour);
	o[13] = ':';
	put_2(o + 14, (unsigned)tm.tm_min);
	o[16] = ':';
	put_2(o + 17, (unsigned)tm.tm_sec);
	o[19] = '+';
	o[20] = '0';
	o[21] = '0';
	put(b, o, sizeof(o));
	return 0;
}

/* n digits at s[*i] as a number in [lo, hi]; advances *i. */
static bool field(const char *s, size_t len, size_t *i, size_t n, unsigned lo,
		  unsigned hi, unsigned *out)
{
	unsigned v = 0;
	if (len - *i < n)
		return false;
	for (size_t k = 0; k < n; k++) {
		char c = s[*i + k];
		if (!is_digit(c))
			return false;
		v = v * 10 + (unsigned)(c - '0');
	}
	*i += n;
	if (v < lo || v > hi)
		return false;
	if (out)
		*out = v;
	return true;
}

static bool lit(const char *s, size_t len, size_t *i, char c)
{
	if (*i < len && s[*i] == c) {
		(*i)++;
		return true;
	}
	return false;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/* YYYY-MM-DD[T ]HH:MM:SS[.f+][Z|+HH:MM|+HHMM|-HH:MM|-HHMM], with real dates. */
static bool iso_ok(const char *s, size_t len)
{
	size_t i = 0;
	unsigned y, m, d;

	if (!field(s, len, &i, 4, 1, 9999, &y) || !lit(s, len, &i, '-') ||
	    !field(s, len, &i, 2, 1, 12, &m) || !lit(s, len, &i, '-') ||
	    !field(s, len, &i, 2, 1, 31, &d) || d > days_in_month(y, m))
		return false;
	if (!lit(s, len, &i, 'T') && !lit(s, len, &i, ' '))
		return false;
	if (!field(s, len, &i, 2, 0, 23, NULL) || !lit(s, len, &i, ':') ||
	    !field(s, len, &i, 2, 0, 59, NULL) || !lit(s, len, &i, ':') ||
	    !field(s, len, &i, 2, 0, 59, NULL))
		return false;
	if (lit(s, len, &i, '.')) {
		size_t d2 = digits(s, len, i);
		if (d2 == i || d2 - i > 9)
			return false;
		i = d2;
	}
	if (i == len)
		return true;
	if (lit(s, len, &i, 'Z'))
		return i == len;
	if (!lit(s, len, &i, '+') && !lit(s, len, &i, '-'))
		return false;
	if (!field(s, len, &i, 2, 0, 15, NULL))
		return false;
	lit(s, len, &i, ':');
	return field(s, len, &i, 2, 0, 59, NULL) && i == len;
}

int rowenc_iso_time(struct buf *b, const struct jstream_value *v)
{
	const char *s;
	size_t len;

	switch (v->type) {
	case JSTREAM_STRING:
		trimmed(v, &s, &len);
		if (!len)
			return emit_null(b, 0);
		if (!iso_ok(s, len))
			return emit_null(b, 1);
		put(b, s, len); /* digits and -:.TZ+ only: nothing to escape */
		return 0;
	case JSTREAM_ABSENT:
	case JSTREAM_NULL:
		return emit_null(b, 0);
	default:
		return emit_null(b, 1);
	}
}

/* ---- arrays --------------------------------------------------------------
 * An element of a text[] literal is written double-quoted, with '"' and
 * '\' backslash-escaped; the literal is then COPY-escaped, which doubles
 * every backslash again. Both happen here in one pass. */

static void put_element_body(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	room(b, len);
	while (i < len) {
		size_t start = i;
		while (i < len && !copy_special[p[i]] && p[i] != '"')
			i++;
		if (i > start)
			put(b, p + start, i - start);
		if (i == len)
			break;
		unsigned char c = p[i++];
		if (c == '"')
			put(b, "\\\\\"", 3);        /* \"  -> COPY \\"   */
		else if (c == '\\')
			put(b, "\\\\\\\\", 4);      /* \\  -> COPY \\\\  */
		else
			put_special(b, c);
	}
}

static void put_element(struct buf *b, const char *s, size_t len)
{
	room(b, len + 2);
	put(b, "\"", 1);
	put_element_body(b, s, len);
	put(b, "\"", 1);
}

void rowenc_serial_key(struct buf *b, const struct jstream_value *v)
{
	if (v->type == JSTREAM_ABSENT || v->type == JSTREAM_NULL) {
		rowenc_null(b);
		return;
	}
	size_t start = b->len;
	room(b, v->len * 2);
	for (size_t i = 0; i < v->len; i++) {
		char c = v->text[i];
		if (c == ' ' || (c >= '\t' && c <= '\r'))
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c == '\\')
			put(b, "\\\\", 2);
		else
			put(b, &c, 1);
	}
	if (b->len == start)
		rowenc_null(b);
}

bool rowenc_csv_next(const char **s, const char *end, const char **el, size_t *len)
{
	while (*s && *s <= end) {
		const char *comma = memchr(*s, ',', (size_t)(end - *s));
		const char *e = comma ? comma : end;
		const char *a = *s;
		while (a < e && is_space(*a))
			a++;
		const char *z = e;
		while (z > a && is_space(z[-1]))
			z--;
		*s = comma ? comma + 1 : NULL;
		if (z > a) {
			*el = a;
			*len = (size_t)(z - a);
			return true;
		}
	}
	return false;
}

void rowenc_csv_array(struct buf *b, const struct jstream_value *v)
{
	if (v->type == JSTREAM_ABSENT || v->type == JSTREAM_NULL) {
		rowenc_null(b);
		return;
	}
	if (v->type == JSTREAM_JSON) {
		/* Already an array: take its elements as they are. */
		(void)rowenc_json_array(b, v);
		return;
	}
	const char *s = v->text, *end = v->text + v->len, *el;
	size_t len;
	bool first = true;
	buf_putc(b, '{');
	while (rowenc_csv_next(&s, end, &el, &len)) {
		if (!first)
			buf_putc(b, ',');
		put_element(b, el, len);
		first = false;
	}
	buf_putc(b, '}');
}

/* rowenc_json_array: a yajl pass over the array's text; each scalar is
 * appended as it comes, and the output rolled back if the text turns out
 * not to be a flat array. */
struct json_array {
	struct buf *b;
	int depth;
	bool nonempty;
};

static int ja_elem(struct json_array *ja, const char *s, size_t len, bool quote)
{
	if (ja->depth != 1)
		return 0; /* a scalar where the array should be */
	if (ja->nonempty)
		buf_putc(ja->b, ',');
	ja->nonempty = true;
	if (quote)
		put_element(ja->b, s, len);
	else
		put(ja->b, s, len);
	return 1;
}

static int ja_null(void *ctx)
{
	return ja_elem(ctx, "NULL", 4, false);
}

static int ja_bool(void *ctx, int v)
{
	return v ? ja_elem(ctx, "true", 4, true) : ja_elem(ctx, "false", 5, true);
}

static int ja_number(void *ctx, const char *s, size_t len)
{
	return ja_elem(ctx, s, len, true);
}

/* yajl decodes a lone "\udc00" escape to bytes PostgreSQL rejects as
 * UTF-8 (ED B0 80): those become U+FFFD. Raw text was checked by jstream. */
static int ja_string(void *ctx, const unsigned char *s, size_t len)
{
	const unsigned char *p = memchr(s, 0xed, len);
	if (!p)
		return ja_elem(ctx, (const char *)s, len, true);

	struct buf fixed = BUF_INIT;
	const unsigned char *end = s + len;
	while (p) {
		size_t keep = (size_t)(p - s);
		if (end - p >= 3 && p[1] >= 0xa0) {
			buf_append(&fixed, s, keep);
			buf_append(&fixed, fffd, 3);
			s = p + 3;
		} else {
			buf_append(&fixed, s, keep + 1);
			s = p + 1;
		}
		p = memchr(s, 0xed, (size_t)(end - s));
	}
	buf_append(&fixed, s, (size_t)(end - s));
	int rc = ja_elem(ctx, buf_str(&fixed), fixed.len, true);
	buf_free(&fixed);
	return rc;
}

static int ja_start_array(void *ctx)
{
	struct json_array *ja = ctx;
	if (ja->depth++ != 0)
		return 0; /* nested arrays are not a text[] of scalars */
	buf_putc(ja->b, '{');
	return 1;
}

static int ja_end_array(void *ctx)
{
	struct json_array *ja = ctx;
	ja->depth--;
	buf_putc(ja->b, '}');
	return 1;
}

static int ja_start_map(void *ctx)
{
	UNUSED(ctx);
	return 0;
}

static const yajl_callbacks json_array_callbacks = {
	.yajl_null = ja_null,
	.yajl_boolean = ja_bool,
	.yajl_number = ja_number,
	.yajl_string = ja_string,
	.yajl_start_map = ja_start_map,
	.yajl_start_array = ja_start_array,
	.yajl_end_array = ja_end_array,
};

/* Also takes a JSON array held in a string (Mosyle sends some lists as JSON
 * text inside a string); "" is NULL like elsewhere. */
int rowenc_json_array(struct buf *b, const struct jstream_value *v)
{
	switch (v->type) {
	case JSTREAM_ABSENT:
	case JSTREAM_NULL:
		return emit_null(b, 0);
	case JSTREAM_STRING:
		if (v->len == 0)
			return emit_null(b, 0);
		break;
	case JSTREAM_JSON:
		break;
	default:
		return emit_null(b, 1);
	}

	size_t mark = b->len;
	struct json_array ja = {b, 0, false};
	yajl_handle h = yajl_alloc(&json_array_callbacks, NULL, &ja);
	bool ok = false;
	if (h) {
		ok = yajl_parse(h, (const unsigned char *)v->text, v->len) == yajl_status_ok &&
		     yajl_complete_parse(h) == yajl_status_ok && ja.depth == 0 &&
		     b->len > mark;
		yajl_free(h);
	}
	if (ok)
		return 0;
	b->len = mark;
	if (b->data)
		b->data[mark] = '\0';
	return emit_null(b, 1);
}

/* ---- JSON text walked in place --------------------------------------------
 * A record field that is an array or an object arrives as compact JSON text
 * (jstream wrote it, so it is valid); a string field may hold JSON text as
 * well, and that text was only checked as UTF-8. The walk is therefore
 * strict about structure and never reads past the end, but allocates
 * nothing: each element is a slice of the text. */

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && is_space(*p))
		p++;
	return p;
}

/* End of the JSON string starting at p (its opening quote), past the
 * closing quote; NULL if it does not end. Escapes are checked when the
 * string is decoded. */
static const char *string_end(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\' && ++p == end)
			return NULL;
	}
	return NULL;
}

/* End of the object or array starting at p; NULL if it does not end or
 * its brackets do not match. Nothing but brackets and strings is checked:
 * its elements are checked when it is walked in turn. */
static const char *nested_end(const char *p, const char *end)
{
	char stack[64];
	size_t depth = 0;

	while (p < end) {
		char c = *p;
		if (c == '"') {
			p = string_end(p, end);
			if (!p)
				return NULL;
			continue;
		}
		if (c == '[' || c == '{') {
			if (depth == sizeof(stack))
				return NULL;
			stack[depth++] = c == '[' ? ']' : '}';
		} else if (c == ']' || c == '}') {
			if (depth == 0 || stack[--depth] != c)
				return NULL;
			if (depth == 0)
				return p + 1;
		}
		p++;
	}
	return NULL;
}

static bool is_word(const char *p, const char *end, const char *w, size_t n)
{
	return (size_t)(end - p) >= n && memcmp(p, w, n) == 0;
}

/* One value at p: fills type/raw/len and returns the byte after it, or
 * NULL if there is no well-formed value there. */
static const char *scan_value(const char *p, const char *end, struct rowenc_json_item *item)
{
	const char *q;

	if (p == end)
		return NULL;
	switch (*p) {
	case '"':
		item->type = JSTREAM_STRING;
		q = string_end(p, end);
		break;
	case '[':
	case '{':
		item->type = JSTREAM_JSON;
		q = nested_end(p, end);
		break;
	case 'n':
		item->type = JSTREAM_NULL;
		q = is_word(p, end, "null", 4) ? p + 4 : NULL;
		break;
	case 't':
		item->type = JSTREAM_BOOL;
		q = is_word(p, end, "true", 4) ? p + 4 : NULL;
		break;
	case 'f':
		item->type = JSTREAM_BOOL;
		q = is_word(p, end, "false", 5) ? p + 5 : NULL;
		break;
	default:
		item->type = JSTREAM_NUMBER;
		q = p;
		while (q < end && (is_digit(*q) || *q == '-' || *q == '+' || *q == '.' ||
				   *q == 'e' || *q == 'E'))
			q++;
		if (q == p || !numeric_ok(p, (size_t)(q - p)))
			q = NULL;
		break;
	}
	/* a word or number must end where the value ends ("truex") */
	if (q && item->type != JSTREAM_STRING && item->type != JSTREAM_JSON && q < end &&
	    !is_space(*q) && *q != ',' && *q != ']' && *q != '}')
		q = NULL;
	if (q) {
		item->raw = p;
		item->len = (size_t)(q - p);
	}
	return q;
}

void rowenc_json_iter_init(struct rowenc_json_iter *it, const char *text, size_t len)
{
	const char *end = text + len;
	const char *p = skip_space(text, end);

	it->end = end;
	it->bad = true;
	it->p = NULL;
	if (p == end || (*p != '[' && *p != '{'))
		return;
	/* the whole text must be this one value */
	const char *q = nested_end(p, end);
	if (!q || skip_space(q, end) != end)
		return;
	it->close = *p == '[' ? ']' : '}';
	it->end = q - 1; /* the closing bracket */
	it->p = skip_space(p + 1, it->end);
	it->first = true;
	it->bad = false;
}

bool rowenc_json_iter_next(struct rowenc_json_iter *it, struct rowenc_json_item *item)
{
	if (it->bad || it->p == it->end)
		return false;
	const char *p = it->p, *end = it->end;
	if (!it->first) {
		if (*p != ',')
			goto bad;
		p = skip_space(p + 1, end);
	}
	it->first = false;
	item->key = NULL;
	item->keylen = 0;
	if (it->close == '}') {
		if (p == end || *p != '"')
			goto bad;
		const char *k = string_end(p, end);
		if (!k)
			goto bad;
		item->key = p + 1;
		item->keylen = (size_t)(k - p - 2);
		p = skip_space(k, end);
		if (p == end || *p != ':')
			goto bad;
		p = skip_space(p + 1, end);
	}
	p = scan_value(p, end, item);
	if (!p)
		goto bad;
	it->p = skip_space(p, end); /* the next call checks for the comma */
	return true;
bad:
	it->bad = true;
	return false;
}

bool rowenc_json_key_is(const struct rowenc_json_item *item, const char *name)
{
	size_t n = strlen(name);
	return item->key && item->keylen == n && memcmp(item->key, name, n) == 0;
}

static int hex_value(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The 4 hex digits at p (p + 4 <= end), or -1. */
static long hex4(const char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hex_value(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static size_t utf8_put(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Append the decoded content of the JSON string raw (with its quotes),
 * COPY-escaped, and also escaped as an array element when element. NUL
 * and UTF-16 surrogates that do not pair up become U+FFFD, as jstream does.
 * Returns false for a malformed string (what was appended is then to be
 * dropped). */
static bool put_json_string(struct buf *b, const char *raw, size_t len, bool element)
{
	if (len < 2 || raw[0] != '"' || raw[len - 1] != '"')
		return false;
	const char *p = raw + 1, *end = raw + len - 1;
	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		const char *stop = bs ? bs : end;
		if (stop > p) {
			if (memchr(p, '"', (size_t)(stop - p)))
				return false; /* a quote inside: not one string */
			if (element)
				put_element_body(b, p, (size_t)(stop - p));
			else
				rowenc_text(b, p, (size_t)(stop - p));
		}
		if (!bs)
			break;
		p = bs + 1;
		if (p == end)
			return false;
		char o[4];
		size_t n = 1;
		switch (*p++) {
		case '"': o[0] = '"'; break;
		case '\\': o[0] = '\\'; break;
		case '/': o[0] = '/'; break;
		case 'b': o[0] = '\b'; break;
		case 'f': o[0] = '\f'; break;
		case 'n': o[0] = '\n'; break;
		case 'r': o[0] = '\r'; break;
		case 't': o[0] = '\t'; break;
		case 'u': {
			long cp = end - p >= 4 ? hex4(p) : -1;
			if (cp < 0)
				return false;
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' &&
			    p[1] == 'u') {
				long lo = hex4(p + 2);
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
			}
			if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
				cp = 0xfffd;
			n = utf8_put(o, (unsigned long)cp);
			break;
		}
		default:
			return false;
		}
		if (element)
			put_element_body(b, o, n);
		else
			rowenc_text(b, o, n);
	}
	return true;
}

int rowenc_json_string(struct buf *b, const char *raw, size_t len)
{
	size_t mark = b->len;
	if (put_json_string(b, raw, len, false))
		return 0;
	b->len = mark;
	if (b->data)
		b->data[mark] = '\0';
	return emit_null(b, 1);
}

/* One element of a name array from a JSON item: a string or a number as
 * it is, an object's key member. Returns false when the item gives no
 * element (skipped), and sets *bad if it is malformed. */
static bool put_name_element(struct buf *b, const struct rowenc_json_item *item,
			     const char *key, bool first, bool *bad)
{
	struct rowenc_json_item name = *item;
	if (item->type == JSTREAM_JSON && item->raw[0] == '{') {
		struct rowenc_json_iter members;
		struct rowenc_json_item m;
		bool found = false;
		rowenc_json_iter_init(&members, item->raw, item->len);
		while (rowenc_json_iter_next(&members, &m))
			if (rowenc_json_key_is(&m, key)) {
				name = m; /* the last one wins, as in jstream */
				found = true;
			}
		if (members.bad) {
			*bad = true;
			return false;
		}
		if (!found)
			return false;
	}
	if (name.type != JSTREAM_STRING && name.type != JSTREAM_NUMBER) {
		if (name.type != JSTREAM_NULL)
			*bad = true; /* a nested array, a boolean */
		return false;
	}
	size_t mark = b->len;
	if (!first)
		buf_putc(b, ',');
	if (name.type == JSTREAM_NUMBER) {
		put_element(b, name.raw, name.len);
		return true;
	}
	buf_putc(b, '"');
	if (!put_json_string(b, name.raw, name.len, true)) {
		b->len = mark;
		b->data[mark] = '\0';
		*bad = true;
		return false;
	}
	buf_putc(b, '"');
	return true;
}

int rowenc_name_array(struct buf *b, const struct jstream_value *v, const char *key)
{
	switch (v->type) {
	case JSTREAM_ABSENT:
	case JSTREAM_NULL:
		return emit_null(b, 0);
	case JSTREAM_STRING: {
		const char *s;
		size_t len;
		trimmed(v, &s, &len);
		if (len == 0)
			return emit_null(b, 0);
		if (s[0] == '[')
			break; /* JSON text in a string */
		/* one name (a name may hold a comma: no splitting) */
		buf_putc(b, '{');
		put_element(b, s, len);
		buf_putc(b, '}');
		return 0;
	}
	case JSTREAM_JSON:
		break;
	default:
		return emit_null(b, 1);
	}

	struct rowenc_json_iter it;
	struct rowenc_json_item item;
	size_t mark = b->len;
	bool bad = false, first = true;
	rowenc_json_iter_init(&it, v->text, v->len);
	if (it.bad || it.close != ']')
		return emit_null(b, 1);
	buf_putc(b, '{');
	while (rowenc_json_iter_next(&it, &item))
		if (put_name_element(b, &item, key, first, &bad))
			first = false;
	if (it.bad) {
		b->len = mark;
		b->data[mark] = '\0';
		return emit_null(b, 1);
	}
	buf_putc(b, '}');
	return bad ? 1 : 0;
}
