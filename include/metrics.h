/* metrics.h - a run's figures as a Prometheus text file, for
 * node_exporter's textfile collector (or anything that reads the text
 * exposition format).
 *
 * The file holds, with # HELP and # TYPE for each metric:
 *   invsync_build_info{version}                      1
 *   invsync_run_id                                   the sync_runs id
 *   invsync_run_start_timestamp_seconds              Unix time
 *   invsync_metrics_timestamp_seconds                Unix time of the figures
 * per source, labelled {source, kind}:
 *   invsync_source_status{source, kind, state}       1 for the state it is in, 0 for
 *                                                    the others (queued, running,
 *                                                    committing, succeeded, failed,
 *                                                    skipped)
 *   invsync_source_start_timestamp_seconds           0 before it starts
 *   invsync_source_duration_seconds
 *   invsync_source_records, _bytes, _pages
 *   invsync_source_pages_planned                     left out while unknown
 *   invsync_source_retries_total, _throttled_total   (429 answers)
 *   invsync_source_loaded                            left out before the commit
 *   invsync_source_last_success_timestamp_seconds    0 if it never succeeded
 * and per endpoint, labelled {source, endpoint}:
 *   invsync_endpoint_records, _bytes, _pages, _pages_planned, _retries_total,
 *   invsync_endpoint_throttled_total, invsync_endpoint_finished (1 or 0)
 *
 * The figures are the run's own: counters start from 0 each run. */
#ifndef INVSYNC_METRICS_H
#define INVSYNC_METRICS_H

#include "buf.h"
#include "obs.h"
#include "util.h"

/* Append snap to out in the text exposition format (version 0.0.4): each
 * metric's samples together after its HELP and TYPE lines, no time
 * stamps, label values escaped (backslash, double quote, newline) and
 * ill-formed UTF-8 in them replaced by U+FFFD. */
void metrics_format(struct buf *out, const struct obs_run *snap);

/* Write snap to path so that a reader sees the old file or the new one,
 * never part of one: the text goes to a hidden temporary file in the same
 * directory (".NAME.XXXXXX", which the textfile collector ignores), is
 * flushed to disk, made mode 0644, and renamed over path. Returns 0, or a
 * negative errno with a sentence appended to err (naming the file, what
 * failed and why); path is then untouched and the temporary file gone. */
int metrics_write(const char *path, const struct obs_run *snap, struct buf *err) MUSTCHECK;

#endif
