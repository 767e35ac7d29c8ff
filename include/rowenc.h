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

/* A text[] column from a JSON array of scalars (["a","b",3]) given as
 * JSTREAM_JSON text. ABSENT/NULL give NULL; returns 1 (and emits NULL) if
 * the text is not such an array. Also accepts a JSTREAM_STRING holding such
 * an array (Mosyle sends some lists as JSON text in a string; "" is NULL).
 * Elements are quoted text, JSON null elements are NULL. rowenc_csv_array
 * passes a JSTREAM_JSON value here. */
int rowenc_json_array(struct buf *b, const struct jstream_value *v);

#endif
