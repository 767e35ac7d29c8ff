/* jstream.h - streaming JSON parser for paged list responses.
 *
 * A jstream is fed the bytes of one HTTP response body as they arrive, in
 * chunks of any size and at any boundary. It finds the array of records at
 * spec->list_path and calls on_record once per element, as soon as that
 * element is complete; it never holds more than the record being built. It
 * also reports scalars found outside records at the spec's capture paths
 * (totals, page sizes, inner status markers).
 *
 * Path matching: a path is a list of object keys. Where the document has an
 * array where a key is expected (Mosyle answers "response": {...} on some
 * endpoints and "response": [{...}] on others), every element of that array
 * is searched as if it stood there. Keys are matched case-sensitively.
 *
 * Every string is checked as UTF-8 (invalid UTF-8 is a parse error). A NUL
 * character (JSON "\u0000") cannot be stored by PostgreSQL, so it is replaced
 * by U+FFFD in values, keys and record JSON, and counted in stats.
 *
 * The check is PostgreSQL's: overlong forms and code points past U+10FFFF
 * are errors too, while UTF-16 surrogates (a lone "\udc00" escape) become
 * U+FFFD (not counted). A number PostgreSQL's numeric cannot hold (over 1000
 * characters, or an exponent beyond +-1000) is kept as a JSON string and
 * reported as JSTREAM_STRING. Error messages give a 1-based byte offset in
 * the body ("malformed JSON at byte 12345: ..."); for a token split across
 * two fed chunks yajl may place it a few bytes off.
 *
 * Callbacks run inside jstream_feed()/jstream_finish() and must not call
 * jstream_feed, jstream_finish, jstream_reset or jstream_free on the same
 * parser. Steady-state parsing allocates nothing per record.
 */
#ifndef INVSYNC_JSTREAM_H
#define INVSYNC_JSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum jstream_type {
	JSTREAM_ABSENT = 0, /* key not present in the record */
	JSTREAM_NULL,
	JSTREAM_STRING,     /* text: the decoded string (UTF-8, NUL replaced) */
	JSTREAM_NUMBER,     /* text: the number exactly as written */
	JSTREAM_BOOL,       /* text: "true" or "false" */
	JSTREAM_JSON,       /* object or array; text: compact JSON */
};

struct jstream_value {
	enum jstream_type type;
	const char *text; /* NUL-terminated; "" for ABSENT and NULL */
	size_t len;
};

/* One complete list element. Valid only during the on_record call. */
struct jstream_record {
	const char *json;  /* the element as compact, valid JSON text */
	size_t json_len;
	/* fields[i] is the value of spec->fields[i] at the top level of the
	 * element (last occurrence wins for duplicate keys); ABSENT when the
	 * key is missing or the element is not an object. */
	const struct jstream_value *fields;
	size_t nfields;
	/* For elements that are not objects (a list of UDIDs): the element
	 * itself; ABSENT for objects. */
	struct jstream_value scalar;
	uint64_t index; /* 0-based position in the list */
};

struct jstream_spec {
	const char *const *list_path; /* NULL-terminated keys, e.g. {"response","devices",NULL} */
	const char *const *fields;    /* NULL-terminated record keys to extract, may be NULL */
	/* NULL-terminated dotted paths of scalars outside the records, e.g.
	 * "status", "response.rows", "response.status", "meta.total_pages".
	 * Objects/arrays found at a capture path are not reported. */
	const char *const *captures;
	size_t max_depth;        /* nesting limit; 0 means 64 */
	size_t max_record_bytes; /* limit on one record's JSON; 0 means 16 MiB */
};

struct jstream_callbacks {
	/* Return 0 to go on; a negative value stops the parse, and
	 * jstream_feed()/jstream_finish() then return that value. */
	int (*on_record)(void *arg, const struct jstream_record *rec);
	/* capture_id indexes spec->captures. May fire several times for one
	 * path (once per array element found there). v is valid only during
	 * the call. */
	void (*on_capture)(void *arg, size_t capture_id, const struct jstream_value *v);
	void *arg;
};

struct jstream_stats {
	uint64_t records;      /* on_record calls */
	uint64_t nul_replaced; /* NUL characters replaced by U+FFFD */
	uint64_t bytes;        /* bytes fed */
	bool list_seen;        /* an array was found at list_path */
};

struct jstream;

/* Create a parser. spec and cb are copied by pointer/value: spec and the
 * strings it points to must outlive the parser. Returns 0 or -ENOMEM/-EINVAL. */
int jstream_new(struct jstream **out, const struct jstream_spec *spec,
		const struct jstream_callbacks *cb) MUSTCHECK;

/* Feed the next chunk. Returns 0, a negative value returned by on_record,
 * or -EPROTO for malformed JSON, too deep nesting, an over-long record or
 * invalid UTF-8 (jstream_error() says which, and where). After an error the
 * parser must be reset before reuse. */
int jstream_feed(struct jstream *js, const char *data, size_t len) MUSTCHECK;

/* Signal the end of the body. Returns 0 if the document was complete and
 * valid, -EPROTO otherwise (empty body, truncated document...). */
int jstream_finish(struct jstream *js) MUSTCHECK;

/* A human-readable reason for the last error ("" when none). */
const char *jstream_error(const struct jstream *js);

const struct jstream_stats *jstream_stats(const struct jstream *js);

/* Forget all state (including stats) to parse a new body. */
void jstream_reset(struct jstream *js);

void jstream_free(struct jstream *js);

#endif
