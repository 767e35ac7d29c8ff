/* fuzz_jstream.c - libFuzzer target for jstream and rowenc.
 *
 * Each input is parsed twice: whole, then in chunks whose sizes come from a
 * hash of the input by a parser that was reset in the middle of another
 * document. Both runs must report the same records, captures, stats and
 * error (the error's byte offset may differ slightly, see error_reason). The hash also picks the list path and, for some inputs, tight
 * depth and record size limits. For every
 * record it checks what PostgreSQL will rely on: the record JSON has no NUL,
 * is strictly valid UTF-8, parses as JSON (yajl_tree_parse) and is already
 * compact (parsing it again gives the same text); each field is encoded
 * with every rowenc function and the output never holds a NUL or a raw
 * tab/newline/CR, and rowenc_text decodes back to the value.
 *
 * Build: make -f tests/fuzz/Makefile.fuzz; run: make -f tests/fuzz/Makefile.fuzz run
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "buf.h"
#include "jstream.h"
#include "rowenc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",      \
				__FILE__, __LINE__, #cond);                   \
			abort();                                              \
		}                                                             \
	} while (0)

static const char *const mosyle_list[] = {"response", "devices", NULL};
static const char *const syncro_list[] = {"assets", NULL};
static const char *const users_list[] = {"response", "users", NULL};
static const char *const root_list[] = {NULL};
static const char *const *const lists[] = {mosyle_list, syncro_list, users_list, root_list};

static const char *const fields[] = {
	"deviceudid", "serial_number", "tags", "battery", "date_info", "OSUpdateSettings",
	"userid", "id", "name", "properties", "updated_at", "status", "a", "b", "",
	"ActiveManagedUsers", "total_disk", NULL,
};
static const char *const captures[] = {
	"status", "response.rows", "response.page_size", "response.page", "response.status",
	"response.info", "meta.total_pages", "meta.total_entries", "assets.id", "a", NULL,
};

/* Strict UTF-8, as PostgreSQL checks it (no surrogates, no overlongs). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static bool json_valid(const char *text)
{
	char err[128];
	yajl_val v = yajl_tree_parse(text, err, sizeof(err));
	if (!v)
		return false;
	yajl_tree_free(v);
	return true;
}

/* Undo COPY text escaping. */
static void copy_unescape(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\' || i + 1 == n) {
			buf_putc(out, s[i]);
			continue;
		}
		char c = s[++i];
		buf_putc(out, c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c);
	}
}

/* A text[] literal as rowenc writes it (after COPY unescaping): {} or
 * {e,e,...} with e either NULL or a double-quoted element. */
static bool array_literal_ok(const char *s, size_t n, size_t *count)
{
	size_t i = 0;
	*count = 0;
	if (n < 2 || s[0] != '{' || s[n - 1] != '}')
		return false;
	if (n == 2)
		return true;
	i = 1;
	for (;;) {
		if (n - i >= 4 && memcmp(s + i, "NULL", 4) == 0) {
			i += 4;
		} else {
			if (s[i] != '"')
				return false;
			for (i++; i < n - 1 && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			if (i >= n - 1)
				return false;
			i++;
		}
		(*count)++;
		if (i == n - 1)
			return true;
		if (s[i] != ',')
			return false;
		i++;
	}
}

/* The COPY text of one column must not break the row. */
static void check_column(const struct buf *b, size_t start)
{
	const char *s = b->data + start;
	size_t n = b->len - start;
	CHECK(memchr(s, '\0', n) == NULL);
	CHECK(memchr(s, '\t', n) == NULL);
	CHECK(memchr(s, '\n', n) == NULL);
	CHECK(memchr(s, '\r', n) == NULL);
	CHECK(utf8_valid((const unsigned char *)s, n));
}

static void check_array_column(const struct buf *b, size_t start)
{
	struct buf plain = BUF_INIT;
	size_t count;
	check_column(b, start);
	if (b->len - start == 2 && memcmp(b->data + start, "\\N", 2) == 0)
		return;
	copy_unescape(&plain, b->data + start, b->len - start);
	CHECK(array_literal_ok(buf_str(&plain), plain.len, &count));
	buf_free(&plain);
}

static void check_value(const struct jstream_value *v)
{
	CHECK(v->text != NULL);
	CHECK(strlen(v->text) == v->len);
	CHECK(utf8_valid((const unsigned char *)v->text, v->len));
	switch (v->type) {
	case JSTREAM_ABSENT:
	case JSTREAM_NULL:
		CHECK(v->len == 0);
		break;
	case JSTREAM_BOOL:
		CHECK(strcmp(v->text, "true") == 0 || strcmp(v->text, "false") == 0);
		break;
	case JSTREAM_NUMBER:
	case JSTREAM_JSON:
		CHECK(json_valid(v->text));
		break;
	case JSTREAM_STRING:
		break;
	}

	/* Every encoder, each into its own column. */
	struct buf b = BUF_INIT, back = BUF_INIT;
	size_t start = 0;
	rowenc_text(&b, v->text, v->len);
	check_column(&b, start);
	copy_unescape(&back, b.data ? b.data : "", b.len);
	CHECK(back.len == v->len && memcmp(buf_str(&back), v->text, v->len) == 0);

#define COLUMN(call)                    \
	do {                            \
		rowenc_sep(&b);         \
		start = b.len;          \
		call;                   \
		check_column(&b, start); \
	} while (0)
	COLUMN(rowenc_value(&b, v, 0));
	COLUMN(rowenc_value(&b, v, 1));
	COLUMN((void)rowenc_bool(&b, v));
	COLUMN((void)rowenc_numeric(&b, v));
	COLUMN((void)rowenc_int(&b, v));
	COLUMN((void)rowenc_unix_time(&b, v));
	COLUMN((void)rowenc_iso_time(&b, v));
	rowenc_sep(&b);
	start = b.len;
	rowenc_csv_array(&b, v);
	check_array_column(&b, start);
	rowenc_sep(&b);
	start = b.len;
	(void)rowenc_json_array(&b, v);
	check_array_column(&b, start);
	rowenc_end(&b);
	CHECK(memchr(b.data, '\0', b.len) == NULL);
	buf_free(&b);
	buf_free(&back);
}

struct run {
	const struct jstream_spec *spec;
	struct buf log;
	size_t max_record_bytes;
};

static int recompact_record(void *arg, const struct jstream_record *rec)
{
	struct buf *out = arg;
	buf_append(out, rec->json, rec->json_len);
	return 0;
}

/* Parsing compact JSON again must give the same text. */
static void check_compact(const char *json, size_t len)
{
	static const struct jstream_spec spec = {.list_path = root_list};
	struct buf again = BUF_INIT;
	struct jstream_callbacks cb = {recompact_record, NULL, &again};
	struct jstream *js;
	CHECK(jstream_new(&js, &spec, &cb) == 0);
	CHECK(jstream_feed(js, "[", 1) == 0);
	CHECK(jstream_feed(js, json, len) == 0);
	CHECK(jstream_feed(js, "]", 1) == 0);
	CHECK(jstream_finish(js) == 0);
	CHECK(again.len == len && memcmp(again.data, json, len) == 0);
	CHECK(jstream_stats(js)->nul_replaced == 0);
	jstream_free(js);
	buf_free(&again);
}

static int on_record(void *arg, const struct jstream_record *rec)
{
	struct run *run = arg;
	CHECK(rec->json_len > 0);
	CHECK(strlen(rec->json) == rec->json_len);
	CHECK(rec->json_len <= run->max_record_bytes);
	CHECK(utf8_valid((const unsigned char *)rec->json, rec->json_len));
	CHECK(json_valid(rec->json));
	check_compact(rec->json, rec->json_len);

	buf_printf(&run->log, "R%llu %s\n", (unsigned long long)rec->index, rec->json);
	bool is_object = rec->json[0] == '{';
	CHECK(is_object == (rec->scalar.type == JSTREAM_ABSENT));
	for (size_t i = 0; i < rec->nfields; i++) {
		const struct jstream_value *v = &rec->fields[i];
		if (!is_object)
			CHECK(v->type == JSTREAM_ABSENT);
		check_value(v);
		buf_printf(&run->log, " %zu=%d:%s\n", i, (int)v->type, v->text);
	}
	if (!is_object) {
		check_value(&rec->scalar);
		buf_printf(&run->log, " s=%d:%s\n", (int)rec->scalar.type, rec->scalar.text);
	}
	/* Stop on a record whose id says so, to exercise the abort path. */
	if (rec->nfields > 7 && rec->fields[7].len == 4 && memcmp(rec->fields[7].text, "stop", 4) == 0)
		return -1234;
	return 0;
}

static void on_capture(void *arg, size_t id, const struct jstream_value *v)
{
	struct run *run = arg;
	CHECK(id < sizeof(captures) / sizeof(captures[0]) - 1);
	CHECK(v->type != JSTREAM_ABSENT && v->type != JSTREAM_JSON);
	check_value(v);
	buf_printf(&run->log, "C%zu=%d:%s\n", id, (int)v->type, v->text);
}

/* The error text with the number after "at byte " cut out: when the token
 * yajl rejects spans two chunks, yajl places the error a few bytes
 * differently, so only the reason has to match across chunkings. */
static void error_reason(struct buf *out, const char *err, size_t body_size)
{
	const char *at = strstr(err, "at byte ");
	buf_reset(out);
	if (!at) {
		buf_puts(out, err);
		return;
	}
	buf_append(out, err, (size_t)(at - err) + 8);
	char *end;
	unsigned long long off = strtoull(at + 8, &end, 10);
	CHECK(end != at + 8);
	CHECK(off <= body_size);
	buf_puts(out, end);
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Feed the input whole (seed 0) or in chunks drawn from seed. */
static int feed(struct jstream *js, const uint8_t *data, size_t size, uint64_t seed)
{
	int rc = 0;
	for (size_t off = 0; off < size && rc == 0;) {
		size_t n = size - off;
		if (seed) {
			uint64_t r = next_rand(&seed);
			size_t want = (r & 7) == 0 ? (size_t)(r >> 8) % 512 : (size_t)(r >> 8) % 9 + 1;
			if (want && want < n)
				n = want;
		}
		rc = jstream_feed(js, (const char *)data + off, n);
		off += n;
	}
	return rc ? rc : jstream_finish(js);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ull;
	h |= 1;

	struct jstream_spec spec = {
		.list_path = lists[h % 4],
		.fields = fields,
		.captures = captures,
		.max_depth = (h >> 8) % 4 == 0 ? 6 : 0,
		.max_record_bytes = (h >> 12) % 4 == 0 ? 300 : 0,
	};
	struct run first = {&spec, BUF_INIT, spec.max_record_bytes ? 300 : (size_t)16 << 20};
	struct run second = first;
	second.log = (struct buf)BUF_INIT;

	struct jstream_callbacks cb = {on_record, on_capture, &first};
	struct jstream *js;
	CHECK(jstream_new(&js, &spec, &cb) == 0);

	int rc1 = feed(js, data, size, 0);
	struct buf err1 = BUF_INIT;
	buf_puts(&err1, jstream_error(js));
	struct jstream_stats st1 = *jstream_stats(js);
	CHECK((rc1 == 0) == (err1.len == 0));
	CHECK(rc1 == 0 || rc1 == -1234 || rc1 == -EPROTO);
	CHECK(rc1 != 0 || st1.bytes == size);

	/* Same parser, reset, chunked: the callbacks log into `second`. */
	jstream_free(js);
	cb.arg = &second;
	CHECK(jstream_new(&js, &spec, &cb) == 0);
	/* Leave state behind (with the root list, record "1" is reported). */
	CHECK(jstream_feed(js, "[1,{\"a\":[", 9) == 0);
	jstream_reset(js);
	buf_reset(&second.log);
	int rc2 = feed(js, data, size, h);
	const struct jstream_stats *st2 = jstream_stats(js);

	CHECK(rc1 == rc2);
	struct buf reason1 = BUF_INIT, reason2 = BUF_INIT;
	error_reason(&reason1, buf_str(&err1), size);
	error_reason(&reason2, jstream_error(js), size);
	CHECK(strcmp(buf_str(&reason1), buf_str(&reason2)) == 0);
	buf_free(&reason1);
	buf_free(&reason2);
	CHECK(first.log.len == second.log.len &&
	      memcmp(buf_str(&first.log), buf_str(&second.log), first.log.len) == 0);
	CHECK(st1.records == st2->records);
	CHECK(st1.nul_replaced == st2->nul_replaced);
	CHECK(st1.list_seen == st2->list_seen);

	jstream_free(js);
	buf_free(&err1);
	buf_free(&first.log);
	buf_free(&second.log);
	return 0;
}
