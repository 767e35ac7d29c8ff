/* rowenc.h - PostgreSQL COPY text-format encoding of column values.
 *
 * Each function appends one column value to b, already escaped for COPY
 * text format (backslash, tab, newline, carriage return escaped; "\N" for
 * NULL). Callers separate columns with rowenc_sep() and end a row with
 * rowenc_end(). Conversions that cannot parse their input emit NULL and
 * return 1 so callers can count them; otherwise they return 0. None of them
 * emits a NUL byte.
 *
 * Tolerances: numeric/int/unix_time/bool ignore surrounding whitespace;
 * bool words are case-insensitive; int takes "12.000" as 12; values
 * PostgreSQL would reject (out of bigint range, exponent beyond +-1000,
 * impossible dates such as 2023-02-29) are NULL and return 1, so one bad
 * value never fails a whole COPY. */
#ifndef INVSYNC_ROWENC_H
#define INVSYNC_ROWENC_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "jstream.h"

static inline void rowenc_sep(struct buf *b) { buf_putc(b, '\t'); }
static inline void rowenc_end(struct buf *b) { buf_putc(b, '\n'); }
static inline void rowenc_null(struct buf *b) { buf_append(b, "\\N", 2); }

/* Raw text, escaped. */
void rowenc_text(struct buf *b, const char *s, size_t len);

/* A value as text: NULL for ABSENT/NULL; strings, numbers, booleans as
 * their text; JSON values as their JSON text. Empty strings stay empty
 * unless empty_is_null. */
void rowenc_value(struct buf *b, const struct jstream_value *v, int empty_is_null);

/* A serial number as reconciliation compares it: the value's text with
 * ASCII whitespace (space, \t, \n, \v, \f, \r) removed and ASCII letters
 * upper-cased (" c02 xy1" and "C02XY1" give the same key); other bytes
 * are kept as they are. NULL for ABSENT, NULL, and text that is empty
 * once the whitespace is gone. Matches serial_key() in the SQL. */
void rowenc_serial_key(struct buf *b, const struct jstream_value *v);

/* A boolean column from "1"/"0"/"true"/"false"/"yes"/"no" strings, numbers
 * 1/0 or JSON booleans: emits t or f. NULL (returns 0) for ABSENT/NULL/"".
 * Anything else: NULL, returns 1. */
int rowenc_bool(struct buf *b, const struct jstream_value *v);

/* A numeric column from a number or a numeric string ("256.0000000000",
 * " 42 "): emits the trimmed number. NULL for ABSENT/NULL/"" (returns 0);
 * non-numeric text, NaN, Infinity: NULL, returns 1. */
int rowenc_numeric(struct buf *b, const struct jstream_value *v);

/* A bigint column, same rules as rowenc_numeric but integers only. */
int rowenc_int(struct buf *b, const struct jstream_value *v);

/* A timestamptz column from Unix seconds given as number or string
 * ("1710264696"). Emits "YYYY-MM-DD HH:MM:SS+00". 0, "", ABSENT, NULL give
 * NULL (returns 0); anything else unparseable gives NULL, returns 1. */
int rowenc_unix_time(struct buf *b, const struct jstream_value *v);

/* A timestamptz column from an ISO-8601 string ("2024-03-12T17:31:36.123Z",
 * "2024-03-12T10:31:36-07:00"): emitted as given after checking its shape.
 * Same NULL rules. */
int rowenc_iso_time(struct buf *b, const struct jstream_value *v);

/* A text[] column from a comma-separated string ("cart-3, grade-5,,x"):
 * elements trimmed of spaces, empty ones dropped, each quoted as an array
 * element. ABSENT/NULL give NULL; "" gives {}. */
void rowenc_csv_array(struct buf *b, const struct jstream_value *v);

/* The next element of a comma-separated list, as rowenc_csv_array takes
 * it (trimmed of spaces, empty ones skipped): start with *s at the text,
 * end at its end; true with *el and *len set, false when none is left. */
bool rowenc_csv_next(const char **s, const char *end, const char **el, size_t *len);

/* A text[] column from a JSON array of scalars (["a","b",3]) given as
 * JSTREAM_JSON text. ABSENT/NULL give NULL; returns 1 (and emits NULL) if
 * the text is not such an array. Also accepts a JSTREAM_STRING holding such
 * an array (Mosyle sends some lists as JSON text in a string; "" is NULL).
 * Elements are quoted text, JSON null elements are NULL. rowenc_csv_array
 * passes a JSTREAM_JSON value here. */
int rowenc_json_array(struct buf *b, const struct jstream_value *v);

/* A text[] column of names from a JSON array (JSTREAM_JSON, or JSON text
 * in a JSTREAM_STRING) whose elements are strings, numbers, or objects
 * holding the name as member key ([{"name":"Lincoln Elementary"}] and
 * ["Lincoln Elementary"] both give {"Lincoln Elementary"}). Null elements
 * and objects without key are left out. ABSENT/NULL/"" give NULL; any other
 * string is one name. Returns 1 if the value is not such an array (NULL
 * emitted) or some element could not be read (left out), else 0. */
int rowenc_name_array(struct buf *b, const struct jstream_value *v, const char *key);

/* ---- walking JSON text ---------------------------------------------------
 * A record field that is an array or an object is handed over as compact
 * JSON text (JSTREAM_JSON). rowenc_json_iter walks its elements (or
 * members) in place, without allocating: each is a slice of the text,
 * valid as long as the text is.
 *
 *	struct rowenc_json_iter it;
 *	struct rowenc_json_item item;
 *	rowenc_json_iter_init(&it, v->text, v->len);
 *	while (rowenc_json_iter_next(&it, &item))
 *		if (item.type == JSTREAM_STRING)
 *			bad += rowenc_json_string(out, item.raw, item.len);
 *	if (it.bad)
 *		... the text was not a well-formed array or object
 */
struct rowenc_json_iter {
	const char *p;   /* the next element */
	const char *end; /* the closing bracket */
	char close;      /* ']' for an array, '}' for an object */
	bool first;
	bool bad;        /* malformed text: iteration stopped */
};

struct rowenc_json_item {
	/* JSTREAM_STRING, _NUMBER, _BOOL, _NULL, or _JSON for an object or
	 * an array */
	enum jstream_type type;
	const char *raw; /* the value as written: a string with its quotes */
	size_t len;
	const char *key; /* objects: the member's key as written, without
			  * quotes (escapes are not decoded); arrays: NULL */
	size_t keylen;
};

/* Start walking text, which must hold one JSON array or object (with
 * optional surrounding whitespace); otherwise it->bad is set at once. */
void rowenc_json_iter_init(struct rowenc_json_iter *it, const char *text, size_t len);

/* The next element: true with *item filled in; false at the end, or when
 * the text turns out malformed (it->bad is then set). Each element is
 * checked when reached, so the elements before a defect are handed out. */
bool rowenc_json_iter_next(struct rowenc_json_iter *it, struct rowenc_json_item *item);

/* True when item is an object member whose key is name. */
bool rowenc_json_key_is(const struct rowenc_json_item *item, const char *name);

/* A text column from a JSON string as written (raw with its quotes, e.g. a
 * rowenc_json_item's raw): escapes decoded, then COPY-escaped; "\u0000"
 * and unpaired UTF-16 surrogates become U+FFFD, as in jstream. A malformed
 * string gives NULL and returns 1; otherwise returns 0. */
int rowenc_json_string(struct buf *b, const char *raw, size_t len);

#endif
