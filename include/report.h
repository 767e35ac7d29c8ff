/* report.h - `invsync report`: what the database holds, read in one
 * consistent snapshot, for a person (text, an HTML page) or a program
 * (JSON, CSV).
 *
 * Sections: a summary; the inventory per source and OS (Syncro: per asset
 * type) and per OS version; the last run of each source; the changes the
 * latest successful run of each source recorded; the reconciliation of
 * serial numbers between Mosyle and Syncro (counts, and the first rows of
 * each list); Mosyle devices needing attention (stale, OS update, no
 * user); the last 30 runs of each source. Everything comes from the
 * reporting views and the run log; nothing from the configuration but
 * source names reaches the output. */
#ifndef INVSYNC_REPORT_H
#define INVSYNC_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "buf.h"
#include "config.h"
#include "util.h"

enum report_format {
	REPORT_FORMAT_TEXT = 0,
	REPORT_FORMAT_JSON,
	REPORT_FORMAT_CSV,
};

struct report_options {
	enum report_format format;
	FILE *out;                  /* where the format is written (stdout) */
	const char *html_path;      /* also write the HTML page to this file; NULL: none */
	const char *const *sources; /* only these sources (NULL-terminated); NULL: every one */
	int top;                    /* rows shown of each reconciliation list, and changed
				     * fields per source */
};

/* report_run()'s answer to a --source no one knows (exit status 2). */
#define REPORT_EUSAGE (-2)

/* "text", "json" or "csv" into *out; false for anything else. */
bool report_format_parse(const char *name, enum report_format *out);

/* Connect with cfg's conninfo and read every section in one REPEATABLE
 * READ READ ONLY transaction over cfg's schema; then write the report to
 * opt->out in opt->format and, with html_path, the HTML page to that file
 * (replaced atomically, mode 0644). Creates and changes nothing in the
 * database; writes nothing to opt->out unless every section was read.
 * Returns 0; -1 with a reason in err when the database cannot be read (no
 * connection, no such schema, a schema without the reporting views, a
 * failed query) or the page cannot be written; REPORT_EUSAGE with a
 * reason when a source of opt->sources is neither in cfg nor in the run
 * log. err never holds a secret. */
int report_run(const struct config *cfg, const struct report_options *opt,
	       struct buf *err) MUSTCHECK;

#endif
