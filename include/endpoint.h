/* endpoint.h - a paged API endpoint described as data.
 *
 * run.c has one page-fetching path for every endpoint of every source; an
 * endpoint contributes only what differs: how a page is asked for, how
 * its answer is shaped (for the streaming parser), which captured values
 * mean a total, a page size or the end of the list, how a record becomes
 * COPY rows, and which table the rows end in and how they get there. */
#ifndef INVSYNC_ENDPOINT_H
#define INVSYNC_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "jstream.h"

/* Context of one record's rows. */
struct endpoint_row_ctx {
	int attempt;         /* page attempt id: staged with the row */
	int page;
	const char *variant; /* e.g. the OS ("ios") of a per-OS stream, or NULL */
};

/* What one page request is built from. */
struct endpoint_request {
	const struct config_source *src;
	const char *variant; /* OS of a per-OS stream, or NULL */
	int page;
	const char *cursor;  /* incremental endpoints: the cursor_sql value, or NULL */
	long long run_started_s; /* Unix time the run started: every page of an
				  * incremental endpoint asks up to the same end */
};

enum endpoint_paging {
	ENDPOINT_PAGED,  /* numbered pages until an end of list (or a total) */
	ENDPOINT_SINGLE, /* one request answers the whole list */
};

enum endpoint_commit {
	ENDPOINT_REPLACE, /* the run's rows replace the source's rows (partition swap) */
	ENDPOINT_APPEND,  /* the run's rows are added; rows already there are kept */
};

struct endpoint {
	const char *name;        /* "devices": configuration and run-log name */
	const char *path;        /* appended to the source's base URL */
	bool per_os;             /* one stream per configured OS */
	enum endpoint_paging paging;
	int first_page;          /* -1: the source's first_page option */
	/* Build a page request: append the query string (with its '?') to
	 * query, and the JSON body to body (nothing: a GET). */
	void (*request)(struct buf *query, struct buf *body, const struct endpoint_request *req);
	struct jstream_spec spec;
	/* indexes into spec.captures, -1 when the endpoint has none */
	int cap_total;           /* announced record count */
	int cap_page_size;       /* page size actually served */
	int cap_status;          /* inner status ("DEVICES_NOTFOUND", "MISSING_DATA"); "OK"
				  * is no error (/customdeviceattribute sends its list
				  * with one) */
	int cap_info;            /* inner status text */
	int cap_error;           /* an error message ("error" of a Syncro answer) */
	const char *const *end_statuses;    /* inner statuses meaning end of list */
	/* inner statuses meaning "this account has no such list" (NOT_ALLOWED
	 * on /accounts of a school that is not a district): the endpoint
	 * loads nothing and says so in the run log, the source goes on */
	const char *const *absent_statuses;
	/* The table the rows end in (sql/), its key columns (comma-separated,
	 * without source), and the column list of the COPY rows encode_row
	 * writes (the table's other columns take the load table's defaults). */
	const char *table;
	const char *key_columns;
	const char *copy_columns;
	enum endpoint_commit commit;
	/* Incremental endpoints: SQL with $1 = source giving the cursor the
	 * next request starts from (NULL result: from the beginning). */
	const char *cursor_sql;
	/* The permission an API token needs for this endpoint (Syncro names
	 * it in a 401), or NULL. */
	const char *permission;
	/* Identity of a record, for deduplication and page signatures: returns
	 * the key length and points *key at it (in rec, or in scratch), or 0
	 * if the record has no key (it is then skipped and counted). */
	size_t (*record_key)(const struct jstream_record *rec, struct buf *scratch,
			     const char **key);
	/* Append the record's COPY rows (each ending in '\n'; usually one,
	 * several for a record that lists members). Returns the number of
	 * values that could not be converted (stored as NULL). */
	int (*encode_row)(struct buf *out, const struct jstream_record *rec,
			  const char *key, size_t keylen, const struct endpoint_row_ctx *ctx);
};

#endif
