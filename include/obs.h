/* obs.h - what a run looks like from outside, for progress lines and
 * metrics: a snapshot run.c fills in, and the modules that show it
 * (progress.c) and export it (metrics.c). Plain data, no pointers into
 * run.c's own structures. */
#ifndef INVSYNC_OBS_H
#define INVSYNC_OBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum obs_state {
	OBS_QUEUED,     /* not started yet (waiting for a slot) */
	OBS_RUNNING,
	OBS_COMMITTING,
	OBS_SUCCEEDED,
	OBS_FAILED,
	OBS_SKIPPED,    /* another run holds the source's lock */
};

struct obs_endpoint {
	const char *name;      /* "devices/ios", "users", "assets" */
	long pages_done;
	long pages_planned;    /* -1 while unknown (no total yet) */
	uint64_t records;
	uint64_t bytes;
	long retries;
	long throttled;        /* 429 answers */
	bool finished;
};

struct obs_source {
	const char *name;
	const char *kind;      /* "mosyle", "syncro" */
	enum obs_state state;
	double started_s;      /* Unix time the source started, 0 if not yet */
	double elapsed_s;      /* seconds since it started (or its duration) */
	uint64_t records;      /* received so far */
	uint64_t bytes;
	long pages_done;
	long pages_planned;    /* sum over endpoints; -1 if any is unknown */
	long retries;
	long throttled;
	long loaded;           /* rows current after the commit, -1 before */
	double last_success_s; /* Unix time of the last successful run, 0 if none */
	const char *error;     /* why it failed, or NULL */
	const struct obs_endpoint *endpoints;
	size_t nendpoints;
};

struct obs_run {
	long long run_id;
	double started_s;      /* Unix time */
	double now_s;          /* Unix time of the snapshot */
	const struct obs_source *sources;
	size_t nsources;
};

#endif
