/* endpoint.h - a paged API endpoint described as data.
 *
 * run.c has one page-fetching path for every endpoint of every source; an
 * endpoint contributes only what differs: how its answer is shaped (for
 * the streaming parser), which captured values mean a total, a page size or
 * the end of the list, how a record becomes a COPY row, and the SQL that
 * stages and commits its rows. */
#ifndef INVSYNC_ENDPOINT_H
#define INVSYNC_ENDPOINT_H

#include <stddef.h>

#include "buf.h"
#include "jstream.h"

/* Context of one record's row. */
struct endpoint_row_ctx {
	int attempt;         /* page attempt id: staged with the row */
	int page;
	const char *variant; /* e.g. the OS ("ios") of a per-OS stream */
};

struct endpoint {
	const char *name;        /* "devices" */
	const char *path;        /* appended to the source's base URL */
	struct jstream_spec spec;
	/* indexes into spec.captures, -1 when the endpoint has none */
	int cap_total;           /* announced record count */
	int cap_page_size;       /* page size actually served */
	int cap_status;          /* inner status ("DEVICES_NOTFOUND", "MISSING_DATA") */
	int cap_info;            /* inner status text */
	const char *const *end_statuses; /* inner statuses meaning end of list */
	/* The partitioned table the rows end in (sql/), its key column, and
	 * the column list of the COPY rows encode_row writes (the table's
	 * other columns take the defaults of the run's load table). */
	const char *table;
	const char *key_column;
	const char *copy_columns;
	/* Identity of a record, for deduplication and page signatures: returns
	 * the key length and points *key at it (in rec, or in scratch), or 0
	 * if the record has no key (it is then skipped and counted). */
	size_t (*record_key)(const struct jstream_record *rec, struct buf *scratch,
			     const char **key);
	/* Append one COPY row (ending in '\n') for rec. Returns the number of
	 * values that could not be converted (stored as NULL). */
	int (*encode_row)(struct buf *out, const struct jstream_record *rec,
			  const char *key, size_t keylen, const struct endpoint_row_ctx *ctx);
};

#endif
