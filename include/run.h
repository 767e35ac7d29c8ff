/* run.h - one `invsync sync`: every configured source fetched in parallel
 * on one libuv loop, each loaded into PostgreSQL and committed atomically
 * on its own.
 *
 * A source's rows stream into a staging table inside one transaction on
 * the source's own connection; when every page of every endpoint has been
 * read, the source's current rows are replaced and its sync_runs row
 * marked succeeded in that same transaction. A source that fails leaves
 * its previous inventory untouched and its sync_runs row marked failed
 * with the reason. */
#ifndef INVSYNC_RUN_H
#define INVSYNC_RUN_H

#include <stdio.h>

#include "buf.h"
#include "config.h"
#include "util.h"

struct progress;

struct run_options {
	FILE *report;      /* where the end-of-run report goes; NULL: none */
	/* Only these sources (NULL-terminated names, all known to the
	 * configuration); NULL: every source. */
	const char *const *only;
	/* Worker mode: sources are claimed from invsync.source_queue for the
	 * schedule (with a lease of lease_s seconds, renewed while loading),
	 * so that several processes share them and each source is loaded
	 * once per schedule. */
	bool worker;
	const char *schedule;
	int lease_s;
	/* Progress display, updated about every second (the caller owns it);
	 * NULL: none. */
	struct progress *progress;
	/* Prometheus text file rewritten every metrics_interval_s seconds and
	 * at the end; NULL: none. */
	const char *metrics_file;
	int metrics_interval_s;
};

/* Run the sync. Returns 0 when every source it ran succeeded, 1 when some
 * source failed, -1 when the run could not start (database unreachable,
 * schema migration failed): err then says why. */
int run_sync(const struct config *cfg, const struct run_options *opt, struct buf *err) MUSTCHECK;

#endif
