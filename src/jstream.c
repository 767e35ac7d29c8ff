/* jstream.c - streaming JSON parser for paged list responses (see jstream.h).
 *
 * yajl tokenises the body and calls us once per JSON event. We keep a stack
 * of open containers. Outside the list, each frame carries a node of a small
 * key trie built from list_path and the capture paths, so each event costs
 * one child lookup at most; a frame whose node is NONE ignores everything
 * below it. Inside the list, every event is re-serialised into `rec` (the
 * element's compact JSON) and top-level values of an object element whose
 * key is one of spec->fields are copied, NUL-terminated, into `arena`. Both
 * buffers are reset per record and keep their storage, so a steady stream of
 * records allocates nothing.
 *
 * Frame depths: after the list array is pushed, depth == list_depth. An
 * element starts when a value begins at that depth; its own container is at
 * list_depth + 1, where its keys live; deeper containers are nested values.
 */
#include "jstream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "buf.h"

#define DEFAULT_MAX_DEPTH 64
#define DEFAULT_MAX_RECORD_BYTES ((size_t)16 << 20)
#define NONE UINT32_MAX

/* PostgreSQL's numeric (behind jsonb numbers) rejects numbers with huge
 * exponents or digit counts; such numbers are kept as JSON strings. */
#define PG_NUMBER_MAX_LEN 1000
#define PG_NUMBER_MAX_EXP 1000

/* A node of the path trie. Node 0 is the document root. */
struct path_node {
	const char *key;
	size_t key_len;
	uint32_t first_child;
	uint32_t next_sibling;
	uint32_t capture; /* first capture id ending here, or NONE */
	bool is_list;
};

struct frame {
	uint32_t node;     /* maps outside the list: node whose children are the keys */
	uint32_t val_node; /* node of the value being parsed in this container */
	bool is_array;
	bool nonempty;     /* inside the list: a comma goes before the next item */
};

/* Where a record's value lives in `arena` (or `rec` for JSON elements). */
struct slot {
	enum jstream_type type;
	size_t off;
	size_t len;
};

struct jstream {
	const struct jstream_spec *spec;
	struct jstream_callbacks cb;
	yajl_handle yh;
	size_t max_depth;
	size_t max_record_bytes;

	struct path_node *nodes;
	size_t nnodes;
	uint32_t *capture_next; /* next capture id with the same path */

	size_t nfields;
	size_t *field_len;
	uint32_t *field_alias;  /* first field of the same name */
	uint32_t *field_table;  /* open addressing: field index + 1, 0 = empty */
	size_t field_mask;
	struct slot *slots;
	struct jstream_value *values;

	struct frame *frames;
	size_t frames_cap;
	size_t depth;
	size_t list_depth;   /* 0 when not inside a list */
	long cur_field;      /* field of the current top-level key, -1 if none */
	long open_field;     /* field whose container value is being built */
	size_t open_start;   /* where that container starts in rec */
	struct slot scalar;

	struct buf rec;
	struct buf arena;
	struct buf scratch;
	struct buf error;

	struct jstream_stats stats;
	int err;             /* sticky error code, 0 if none */
	bool err_has_offset; /* append " at byte N" once yajl says where */
	bool seen_content;   /* a non-whitespace byte was fed */
};

/* ---- byte classes ------------------------------------------------------ */

#define R8(x) x, x, x, x, x, x, x, x
#define R16(x) R8(x), R8(x)

/* 0: copy as is; 1: ASCII that JSON must escape; 2: not ASCII (validated). */
static const unsigned char str_class[256] = {
	R16(1), R16(1),
	0, 0, 1, 0, 0, 0, 0, 0, R8(0),  /* 0x20: '"' */
	R16(0), R16(0),
	R8(0), 0, 0, 0, 0, 1, 0, 0, 0,  /* 0x50: '\\' */
	R16(0), R16(0),
	R16(2), R16(2), R16(2), R16(2), R16(2), R16(2), R16(2), R16(2),
};

static const char hex_digits[] = "0123456789abcdef";

/* ---- small buffer helpers (the hot path) -------------------------------
 * These write into struct buf directly and do not store the terminator;
 * the places that hand a buffer out terminate it (buf_reserve always
 * leaves room for it). */

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
}

static inline void put1(struct buf *b, char c)
{
	room(b, 1);
	b->data[b->len++] = c;
}

static inline void terminate(struct buf *b)
{
	room(b, 0);
	b->data[b->len] = '\0';
}

/* ---- errors ------------------------------------------------------------ */

/* Record the first error and its reason. Returns 0, which callbacks hand
 * back to yajl to stop the parse. */
__attribute__((format(printf, 3, 0)))
static int set_error(struct jstream *js, int code, const char *fmt, va_list ap)
{
	if (js->err)
		return 0;
	buf_reset(&js->error);
	buf_vprintf(&js->error, fmt, ap);
	js->err = code;
	return 0;
}

/* A parse error found in a callback: jstream_feed() adds where it was. */
__attribute__((format(printf, 2, 3)))
static int fail(struct jstream *js, const char *fmt, ...)
{
	va_list ap;
	if (js->err)
		return 0;
	va_start(ap, fmt);
	set_error(js, -EPROTO, fmt, ap);
	va_end(ap);
	js->err_has_offset = true;
	return 0;
}

/* Any other error, reported as is. */
__attribute__((format(printf, 3, 4)))
static int fail_code(struct jstream *js, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_error(js, code, fmt, ap);
	va_end(ap);
	return 0;
}

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length (2..4) of the well-formed UTF-8 sequence at s, -3 for a UTF-16
 * surrogate encoded as 3 bytes (yajl decodes a lone "\udc00" to one),
 * 0 for anything else (overlong forms, code points past U+10FFFF, stray
 * continuation bytes, truncated sequences). */
static int utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c >= 0xc2 && c <= 0xdf) {
		if (n >= 2 && (s[1] & 0xc0) == 0x80)
			return 2;
		return 0;
	}
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0;
		if (c == 0xed && s[1] >= 0xa0)
			return -3;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0;
		if (c == 0xf4 && s[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}

/* SWAR helpers: a word with 0x80 set in each byte of x that is zero / less
 * than n (n <= 128). Bits may also be set above a true hit, never below
 * one, so they only tell whether a word is entirely clean. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t zero_bytes(uint64_t x)
{
	return (x - ONES) & ~x & HIGHS;
}

static inline uint64_t bytes_below(uint64_t x, unsigned n)
{
	return (x - ONES * n) & ~x & HIGHS;
}

/* Index of the first byte at or after i that is not plain ASCII safe to
 * copy into a JSON string (or len). Eight bytes at a time while clean. */
static inline size_t safe_run(const unsigned char *s, size_t i, size_t len)
{
	while (len - i >= 8) {
		uint64_t x;
		memcpy(&x, s + i, 8);
		if ((x & HIGHS) | bytes_below(x, 0x20) |
		    zero_bytes(x ^ (ONES * '"')) | zero_bytes(x ^ (ONES * '\\')))
			break;
		i += 8;
	}
	while (i < len && str_class[s[i]] == 0)
		i++;
	return i;
}

/* Process one decoded string: append it as a quoted JSON string to json and
 * as text to text (either may be NULL; with both NULL it is only checked).
 * NUL and surrogates become U+FFFD. Returns 0, or -1 for invalid UTF-8. */
static int put_string(struct jstream *js, struct buf *json, struct buf *text,
		      const unsigned char *s, size_t len)
{
	size_t i = 0;

	if (json) {
		room(json, len + 2);
		json->data[json->len++] = '"';
	}
	if (text)
		room(text, len + 1);
	for (;;) {
		size_t start = i;
		i = safe_run(s, i, len);
		if (i > start) {
			if (json)
				put(json, s + start, i - start);
			if (text)
				put(text, s + start, i - start);
		}
		if (i >= len)
			break;
		unsigned char c = s[i];
		if (str_class[c] == 1) {
			if (c == 0) {
				if (json)
					put(json, "\xef\xbf\xbd", 3);
				if (text)
					put(text, "\xef\xbf\xbd", 3);
				if (json || text)
					js->stats.nul_replaced++;
			} else {
				if (json) {
					char e[6] = {'\\', 0, '0', '0', 0, 0};
					size_t n = 2;
					switch (c) {
					case '"': e[1] = '"'; break;
					case '\\': e[1] = '\\'; break;
					case '\b': e[1] = 'b'; break;
					case '\f': e[1] = 'f'; break;
					case '\n': e[1] = 'n'; break;
					case '\r': e[1] = 'r'; break;
					case '\t': e[1] = 't'; break;
					default:
						e[1] = 'u';
						e[4] = hex_digits[c >> 4];
						e[5] = hex_digits[c & 15];
						n = 6;
					}
					put(json, e, n);
				}
				if (text)
					put1(text, (char)c);
			}
			i++;
			continue;
		}
		int n = utf8_seq(s + i, len - i);
		if (n == 0)
			return -1;
		if (n < 0) {
			if (json)
				put(json, "\xef\xbf\xbd", 3);
			if (text)
				put(text, "\xef\xbf\xbd", 3);
			i += 3;
		} else {
			if (json)
				put(json, s + i, (size_t)n);
			if (text)
				put(text, s + i, (size_t)n);
			i += (size_t)n;
		}
	}
	if (json)
		put1(json, '"');
	return 0;
}

/* Can PostgreSQL's jsonb/numeric store this JSON number? Anything short
 * without an exponent can; otherwise check the exponent's size. */
static bool pg_number_ok(const char *s, size_t len)
{
	if (len > PG_NUMBER_MAX_LEN)
		return false;
	const char *e = memchr(s, 'e', len);
	if (!e)
		e = memchr(s, 'E', len);
	if (!e)
		return true;
	const char *p = e + 1, *end = s + len;
	if (p < end && (*p == '+' || *p == '-'))
		p++;
	while (p < end && *p == '0')
		p++;
	long exp = 0;
	for (; p < end; p++) {
		exp = exp * 10 + (*p - '0');
		if (exp > PG_NUMBER_MAX_EXP)
			return false;
	}
	return true;
}

/* ---- path trie and field table ------------------------------------------ */

static uint32_t child_lookup(const struct jstream *js, uint32_t node,
			     const unsigned char *key, size_t len)
{
	for (uint32_t c = js->nodes[node].first_child; c != NONE;
	     c = js->nodes[c].next_sibling) {
		const struct path_node *n = &js->nodes[c];
		if (n->key_len == len && memcmp(n->key, key, len) == 0)
			return c;
	}
	return NONE;
}

static uint32_t add_child(struct jstream *js, size_t *cap, uint32_t parent,
			  const char *key, size_t len)
{
	uint32_t c = child_lookup(js, parent, (const unsigned char *)key, len);
	if (c != NONE)
		return c;
	if (js->nnodes == *cap) {
		*cap *= 2;
		js->nodes = xrealloc(js->nodes, *cap * sizeof(*js->nodes));
	}
	c = (uint32_t)js->nnodes++;
	js->nodes[c] = (struct path_node){
		.key = key, .key_len = len, .first_child = NONE,
		.next_sibling = js->nodes[parent].first_child, .capture = NONE,
	};
	js->nodes[parent].first_child = c;
	return c;
}

static void build_paths(struct jstream *js)
{
	const struct jstream_spec *spec = js->spec;
	size_t cap = 16;

	js->nodes = xmalloc(cap * sizeof(*js->nodes));
	js->nodes[0] = (struct path_node){
		.first_child = NONE, .next_sibling = NONE, .capture = NONE,
	};
	js->nnodes = 1;

	if (spec->list_path) {
		uint32_t n = 0;
		for (size_t i = 0; spec->list_path[i]; i++)
			n = add_child(js, &cap, n, spec->list_path[i],
				      strlen(spec->list_path[i]));
		js->nodes[n].is_list = true;
	}

	size_t ncap = 0;
	while (spec->captures && spec->captures[ncap])
		ncap++;
	js->capture_next = xmalloc((ncap ? ncap : 1) * sizeof(uint32_t));
	/* Insert in reverse so each node's chain lists ids in spec order. */
	for (size_t i = ncap; i-- > 0;) {
		const char *p = spec->captures[i];
		uint32_t n = 0;
		for (;;) {
			const char *dot = strchr(p, '.');
			size_t len = dot ? (size_t)(dot - p) : strlen(p);
			n = add_child(js, &cap, n, p, len);
			if (!dot)
				break;
			p = dot + 1;
		}
		js->capture_next[i] = js->nodes[n].capture;
		js->nodes[n].capture = (uint32_t)i;
	}
}

/* Cheap hash of a key from its length and up to 16 of its bytes (the
 * first and last 8): collisions only cost a probe and a memcmp. */
static inline uint32_t key_hash(const unsigned char *s, size_t len)
{
	uint64_t a, b;
	if (len >= 8) {
		memcpy(&a, s, 8);
		memcpy(&b, s + len - 8, 8);
	} else if (len >= 4) {
		uint32_t x, y;
		memcpy(&x, s, 4);
		memcpy(&y, s + len - 4, 4);
		a = x;
		b = y;
	} else {
		a = len ? (uint64_t)s[0] | (uint64_t)s[len / 2] << 8 | (uint64_t)s[len - 1] << 16 : 0;
		b = 0;
	}
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull) ^ len) * 0xff51afd7ed558ccdull;
	return (uint32_t)(h >> 32);
}

static void build_fields(struct jstream *js)
{
	const char *const *f = js->spec->fields;
	size_t n = 0;
	while (f && f[n])
		n++;
	js->nfields = n;
	size_t size = 8;
	while (size < 2 * n)
		size *= 2;
	js->field_mask = size - 1;
	js->field_table = xcalloc(size, sizeof(uint32_t));
	js->field_len = xcalloc(n ? n : 1, sizeof(size_t));
	js->field_alias = xcalloc(n ? n : 1, sizeof(uint32_t));
	js->slots = xcalloc(n ? n : 1, sizeof(struct slot));
	js->values = xcalloc(n ? n : 1, sizeof(struct jstream_value));
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(f[i]);
		js->field_len[i] = len;
		js->field_alias[i] = (uint32_t)i;
		uint32_t h = key_hash((const unsigned char *)f[i], len) & (uint32_t)js->field_mask;
		for (;; h = (h + 1) & (uint32_t)js->field_mask) {
			uint32_t e = js->field_table[h];
			if (e == 0) {
				js->field_table[h] = (uint32_t)i + 1;
				break;
			}
			if (js->field_len[e - 1] == len && memcmp(f[e - 1], f[i], len) == 0) {
				js->field_alias[i] = e - 1;
				break;
			}
		}
	}
}

static inline long field_lookup(const struct jstream *js, const unsigned char *key, size_t len)
{
	if (!js->nfields)
		return -1;
	uint32_t h = key_hash(key, len) & (uint32_t)js->field_mask;
	for (;; h = (h + 1) & (uint32_t)js->field_mask) {
		uint32_t e = js->field_table[h];
		if (e == 0)
			return -1;
		if (js->field_len[e - 1] == len &&
		    memcmp(js->spec->fields[e - 1], key, len) == 0)
			return (long)e - 1;
	}
}

/* ---- records ----------------------------------------------------------- */

static inline bool in_list(const struct jstream *js)
{
	return js->list_depth && js->depth >= js->list_depth;
}

static inline struct frame *top(struct jstream *js)
{
	return &js->frames[js->depth - 1];
}

static void begin_record(struct jstream *js)
{
	js->rec.len = 0;
	js->arena.len = 0;
	for (size_t i = 0; i < js->nfields; i++)
		js->slots[i].type = JSTREAM_ABSENT;
	js->cur_field = -1;
	js->open_field = -1;
	js->scalar.type = JSTREAM_ABSENT;
}

/* Inside a container of the record: the comma before an array item. */
static inline void item_comma(struct jstream *js)
{
	struct frame *f = top(js);
	if (f->is_array) {
		if (f->nonempty)
			put1(&js->rec, ',');
		f->nonempty = true;
	}
}

static inline int check_size(struct jstream *js)
{
	if (js->rec.len > js->max_record_bytes)
		return fail(js, "record %llu is larger than %zu bytes",
			    (unsigned long long)js->stats.records + 1,
			    js->max_record_bytes);
	return 1;
}

static void fill_value(const struct jstream *js, struct jstream_value *v,
		       const struct slot *s)
{
	v->type = s->type;
	if (s->type == JSTREAM_ABSENT || s->type == JSTREAM_NULL) {
		v->text = "";
		v->len = 0;
	} else {
		v->text = js->arena.data + s->off;
		v->len = s->len;
	}
}

static int finish_record(struct jstream *js)
{
	struct jstream_record r;

	if (!check_size(js))
		return 0;
	terminate(&js->rec);
	terminate(&js->arena);
	for (size_t i = 0; i < js->nfields; i++)
		fill_value(js, &js->values[i], &js->slots[js->field_alias[i]]);
	r.json = js->rec.data;
	r.json_len = js->rec.len;
	r.fields = js->values;
	r.nfields = js->nfields;
	if (js->scalar.type == JSTREAM_JSON) {
		r.scalar.type = JSTREAM_JSON;
		r.scalar.text = js->rec.data;
		r.scalar.len = js->rec.len;
	} else {
		fill_value(js, &r.scalar, &js->scalar);
	}
	r.index = js->stats.records++;
	if (js->cb.on_record) {
		int rc = js->cb.on_record(js->cb.arg, &r);
		if (rc < 0)
			return fail_code(js, rc, "the record handler stopped at record %llu (error %d)",
				    (unsigned long long)r.index + 1, rc);
	}
	return 1;
}

/* A scalar inside the list: an element of its own, or part of one. */
static int list_scalar(struct jstream *js, enum jstream_type type,
		       const unsigned char *s, size_t len)
{
	bool element = js->depth == js->list_depth;
	bool field = false;
	struct buf *text = NULL;

	if (element) {
		begin_record(js);
		text = &js->arena;
	} else {
		item_comma(js);
		if (js->depth == js->list_depth + 1 && js->cur_field >= 0 &&
		    !top(js)->is_array) {
			field = true;
			text = &js->arena;
		}
	}
	size_t off = js->arena.len;
	if (type == JSTREAM_STRING) {
		if (put_string(js, &js->rec, text, s, len) < 0)
			return fail(js, "invalid UTF-8 in a string");
	} else {
		put(&js->rec, s, len);
		if (text)
			put(text, s, len);
	}
	struct slot sl = {type, off, 0};
	if (text) {
		sl.len = text->len - off;
		put1(text, '\0');
	}
	if (element) {
		js->scalar = sl;
		return finish_record(js);
	}
	if (field)
		js->slots[js->cur_field] = sl;
	return check_size(js);
}

/* ---- yajl callbacks ---------------------------------------------------- */

static inline uint32_t value_node(const struct jstream *js)
{
	return js->depth ? js->frames[js->depth - 1].val_node : 0;
}

static int scalar(struct jstream *js, enum jstream_type type,
		  const unsigned char *s, size_t len)
{
	if (in_list(js))
		return list_scalar(js, type, s, len);

	uint32_t node = value_node(js);
	bool capture = node != NONE && js->nodes[node].capture != NONE;
	struct buf *text = NULL;
	if (capture) {
		buf_reset(&js->scratch);
		text = &js->scratch;
	}
	if (type == JSTREAM_STRING) {
		if (put_string(js, NULL, text, s, len) < 0)
			return fail(js, "invalid UTF-8 in a string");
	} else if (text) {
		put(text, s, len);
	}
	if (capture && js->cb.on_capture) {
		terminate(text);
		struct jstream_value v = {type, text->data, text->len};
		if (type == JSTREAM_NULL) {
			v.text = "";
			v.len = 0;
		}
		for (uint32_t id = js->nodes[node].capture; id != NONE;
		     id = js->capture_next[id])
			js->cb.on_capture(js->cb.arg, id, &v);
	}
	return 1;
}

static int cb_null(void *ctx)
{
	return scalar(ctx, JSTREAM_NULL, (const unsigned char *)"null", 4);
}

static int cb_boolean(void *ctx, int b)
{
	return b ? scalar(ctx, JSTREAM_BOOL, (const unsigned char *)"true", 4)
		 : scalar(ctx, JSTREAM_BOOL, (const unsigned char *)"false", 5);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
	enum jstream_type t = pg_number_ok(s, len) ? JSTREAM_NUMBER : JSTREAM_STRING;
	return scalar(ctx, t, (const unsigned char *)s, len);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
	return scalar(ctx, JSTREAM_STRING, s, len);
}

static int start_container(struct jstream *js, bool is_array)
{
	if (js->depth >= js->max_depth)
		return fail(js, "nesting deeper than %zu levels", js->max_depth);
	if (js->depth == js->frames_cap) {
		js->frames_cap *= 2;
		js->frames = xrealloc(js->frames, js->frames_cap * sizeof(*js->frames));
	}

	struct frame f = {NONE, NONE, is_array, false};
	if (in_list(js)) {
		if (js->depth == js->list_depth) {
			begin_record(js);
		} else {
			item_comma(js);
			if (js->depth == js->list_depth + 1 && js->cur_field >= 0 &&
			    !top(js)->is_array) {
				js->open_field = js->cur_field;
				js->open_start = js->rec.len;
			}
		}
		put1(&js->rec, is_array ? '[' : '{');
		js->frames[js->depth++] = f;
		return check_size(js);
	}

	uint32_t node = value_node(js);
	js->frames[js->depth++] = f;
	if (node == NONE)
		return 1;
	const struct path_node *n = &js->nodes[node];
	struct frame *fr = top(js);
	if (is_array && n->is_list) {
		js->list_depth = js->depth;
		js->stats.list_seen = true;
	} else if (n->first_child != NONE) {
		/* A map searches its keys; an array where a key is expected is
		 * transparent: each element stands at the array's place. */
		if (is_array)
			fr->val_node = node;
		else
			fr->node = node;
	}
	return 1;
}

static int end_container(struct jstream *js)
{
	struct frame f = js->frames[--js->depth];

	if (!js->list_depth)
		return 1;
	if (js->depth + 1 == js->list_depth) {
		js->list_depth = 0; /* the list itself ended */
		return 1;
	}
	if (js->depth < js->list_depth)
		return 1;
	put1(&js->rec, f.is_array ? ']' : '}');
	if (js->depth == js->list_depth) {
		if (f.is_array)
			js->scalar.type = JSTREAM_JSON;
		return finish_record(js);
	}
	if (js->depth == js->list_depth + 1 && js->open_field >= 0) {
		size_t off = js->arena.len, len = js->rec.len - js->open_start;
		put(&js->arena, js->rec.data + js->open_start, len);
		put1(&js->arena, '\0');
		js->slots[js->open_field] = (struct slot){JSTREAM_JSON, off, len};
		js->open_field = -1;
	}
	return check_size(js);
}

static int cb_start_map(void *ctx)
{
	return start_container(ctx, false);
}

static int cb_start_array(void *ctx)
{
	return start_container(ctx, true);
}

static int cb_end(void *ctx)
{
	return end_container(ctx);
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct jstream *js = ctx;
	struct frame *f = top(js);

	if (in_list(js)) {
		if (f->nonempty)
			put1(&js->rec, ',');
		f->nonempty = true;
		uint64_t nuls = js->stats.nul_replaced;
		if (put_string(js, &js->rec, NULL, key, len) < 0)
			return fail(js, "invalid UTF-8 in a key");
		put1(&js->rec, ':');
		if (js->depth == js->list_depth + 1) {
			if (nuls != js->stats.nul_replaced) {
				/* Match the key as it is stored, NUL replaced
				 * (and don't count those NULs twice). */
				uint64_t counted = js->stats.nul_replaced;
				buf_reset(&js->scratch);
				(void)put_string(js, NULL, &js->scratch, key, len);
				js->stats.nul_replaced = counted;
				key = (const unsigned char *)js->scratch.data;
				len = js->scratch.len;
			}
			js->cur_field = field_lookup(js, key, len);
		}
		return check_size(js);
	}
	if (put_string(js, NULL, NULL, key, len) < 0)
		return fail(js, "invalid UTF-8 in a key");
	f->val_node = f->node == NONE ? NONE : child_lookup(js, f->node, key, len);
	return 1;
}

static const yajl_callbacks callbacks = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_boolean,
	.yajl_number = cb_number,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start_map,
	.yajl_map_key = cb_map_key,
	.yajl_end_map = cb_end,
	.yajl_start_array = cb_start_array,
	.yajl_end_array = cb_end,
};

/* ---- public API -------------------------------------------------------- */

static int open_parser(struct jstream *js)
{
	js->yh = yajl_alloc(&callbacks, NULL, js);
	if (!js->yh)
		return -ENOMEM;
	yajl_config(js->yh, yajl_allow_multiple_values, 0);
	yajl_config(js->yh, yajl_dont_validate_strings, 0);
	return 0;
}

int jstream_new(struct jstream **out, const struct jstream_spec *spec,
		const struct jstream_callbacks *cb)
{
	*out = NULL;
	if (!spec || !cb)
		return -EINVAL;
	struct jstream *js = xcalloc(1, sizeof(*js));
	js->spec = spec;
	js->cb = *cb;
	js->max_depth = spec->max_depth ? spec->max_depth : DEFAULT_MAX_DEPTH;
	js->max_record_bytes = spec->max_record_bytes ? spec->max_record_bytes
						      : DEFAULT_MAX_RECORD_BYTES;
	js->frames_cap = js->max_depth < 16 ? js->max_depth : 16;
	js->frames = xmalloc(js->frames_cap * sizeof(*js->frames));
	build_paths(js);
	build_fields(js);
	js->cur_field = js->open_field = -1;
	if (open_parser(js) < 0) {
		jstream_free(js);
		return -ENOMEM;
	}
	*out = js;
	return 0;
}

/* Turn a stopped or failed yajl_parse into our error. The offset is where
 * yajl stopped: the offending byte, or the end (lexical errors) or start
 * (grammar errors) of the offending token; when that token began in an
 * earlier chunk, yajl may place it up to a token's length off. */
static int parse_failed(struct jstream *js, yajl_status st, uint64_t base)
{
	uint64_t at = base + yajl_get_bytes_consumed(js->yh);

	if (st == yajl_status_client_canceled && js->err) {
		if (js->err_has_offset)
			buf_printf(&js->error, " (at byte %llu)", (unsigned long long)at);
		js->err_has_offset = false;
		return js->err;
	}
	unsigned char *msg = yajl_get_error(js->yh, 0, NULL, 0);
	const char *m = msg ? (const char *)msg : "unknown error";
	/* yajl says "lexical error: invalid string in json text.\n". */
	const char *colon = strstr(m, "error: ");
	if (colon)
		m = colon + 7;
	size_t len = strlen(m);
	while (len && (m[len - 1] == '\n' || m[len - 1] == '\r' || m[len - 1] == '.' ||
		       m[len - 1] == ' '))
		len--;
	buf_reset(&js->error);
	buf_printf(&js->error, "malformed JSON at byte %llu: %.*s",
		   (unsigned long long)at, (int)len, m);
	if (msg)
		yajl_free_error(js->yh, msg);
	js->err = -EPROTO;
	return js->err;
}

int jstream_feed(struct jstream *js, const char *data, size_t len)
{
	if (js->err)
		return js->err;
	if (!js->yh) {
		fail_code(js, -ENOMEM, "out of memory");
		return js->err;
	}
	if (!len)
		return 0;
	if (!js->seen_content) {
		for (size_t i = 0; i < len; i++) {
			char c = data[i];
			if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
				js->seen_content = true;
				break;
			}
		}
	}
	uint64_t base = js->stats.bytes;
	js->stats.bytes += len;
	yajl_status st = yajl_parse(js->yh, (const unsigned char *)data, len);
	if (st == yajl_status_ok)
		return 0;
	return parse_failed(js, st, base);
}

int jstream_finish(struct jstream *js)
{
	if (js->err)
		return js->err;
	if (!js->yh) {
		fail_code(js, -ENOMEM, "out of memory");
		return js->err;
	}
	if (!js->seen_content) {
		fail_code(js, -EPROTO, "empty body");
		return js->err;
	}
	yajl_status st = yajl_complete_parse(js->yh);
	if (st == yajl_status_ok)
		return 0;
	if (st == yajl_status_client_canceled && js->err) {
		if (js->err_has_offset)
			buf_printf(&js->error, " (at byte %llu)",
				   (unsigned long long)js->stats.bytes);
		js->err_has_offset = false;
		return js->err;
	}
	/* Every byte was accepted by yajl_parse, so the only thing wrong is
	 * that the document stopped. */
	buf_reset(&js->error);
	buf_printf(&js->error, "response ended early (truncated JSON at byte %llu)",
		   (unsigned long long)js->stats.bytes);
	js->err = -EPROTO;
	return js->err;
}

const char *jstream_error(const struct jstream *js)
{
	return buf_str(&js->error);
}

const struct jstream_stats *jstream_stats(const struct jstream *js)
{
	return &js->stats;
}

/* Buffers that grew past this for one huge record are freed on reset. */
#define KEEP_BUF_BYTES ((size_t)1 << 20)

static void reset_buf(struct buf *b)
{
	if (b->cap > KEEP_BUF_BYTES)
		buf_free(b);
	else
		buf_reset(b);
}

void jstream_reset(struct jstream *js)
{
	if (js->yh)
		yajl_free(js->yh);
	js->yh = NULL;
	(void)open_parser(js); /* on failure feed/finish report -ENOMEM */
	js->depth = 0;
	js->list_depth = 0;
	js->cur_field = js->open_field = -1;
	js->scalar.type = JSTREAM_ABSENT;
	reset_buf(&js->rec);
	reset_buf(&js->arena);
	reset_buf(&js->scratch);
	buf_reset(&js->error);
	memset(&js->stats, 0, sizeof(js->stats));
	js->err = 0;
	js->err_has_offset = false;
	js->seen_content = false;
}

void jstream_free(struct jstream *js)
{
	if (!js)
		return;
	if (js->yh)
		yajl_free(js->yh);
	free(js->nodes);
	free(js->capture_next);
	free(js->field_table);
	free(js->field_len);
	free(js->field_alias);
	free(js->slots);
	free(js->values);
	free(js->frames);
	buf_free(&js->rec);
	buf_free(&js->arena);
	buf_free(&js->scratch);
	buf_free(&js->error);
	free(js);
}
