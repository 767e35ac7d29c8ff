/* progress.h - what a sync is doing while it does it, from snapshots of the
 * run (obs.h).
 *
 * On a terminal: one live line per source, redrawn in place (cursor up,
 * clear line) at most every interval_s, never wider than the terminal:
 *   district-a  devices/ios +3  120/250 pages  12000 records  4100/s  0 retries  0 429s  ETA 3 s
 *   acme-msp    committing        21/21 pages   2000 records   540/s  0 retries  2 429s
 * Log lines written meanwhile go above the live lines: progress_clear()
 * takes them off the screen and progress_redraw() puts them back, and
 * progress_attach_log() makes log.c call both around every log line.
 *
 * Elsewhere (a pipe, a file, the journal): every interval_s, one plain line
 * for each source whose figures changed since its last line, none for a
 * source still queued, nothing at all when nothing changed:
 *   progress [district-a] devices/ios +3 120/250 pages, 12000 records (4100/s), 0 retries, 0 429s, ETA 3 s
 *
 * Output depends only on the snapshots passed in: time is the snapshot's
 * now_s (rates and ETAs come from the sources' elapsed_s), so a test can
 * play a run. The display keeps no pointer into a snapshot. Not
 * thread-safe: call everything from the loop thread. */
#ifndef INVSYNC_PROGRESS_H
#define INVSYNC_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "obs.h"

struct progress;

/* A display writing to out (the caller keeps it open until
 * progress_free()). tty: draw live lines with terminal escapes (out must
 * be the terminal; NULL means stderr); otherwise plain lines, and when out
 * is NULL each plain line goes through the log instead, as an info event
 * "progress" of its source (stamped, and in JSON with --log-format json).
 * interval_s: least time between two draws (0: every update). Never NULL. */
struct progress *progress_new(FILE *out, bool tty, double interval_s);

/* Whether f looks like a terminal that understands cursor movement: a tty
 * and TERM neither unset nor "dumb". What main.c passes as tty. */
bool progress_is_terminal(FILE *f);

/* Draw for a terminal columns wide and rows high (0: ask the terminal out
 * is, with TIOCGWINSZ, at every draw; 100 columns when it cannot say).
 * Lines are cut to columns - 1 so that no terminal wraps them; with more
 * sources than rows - 1, the last line sums up the ones left out. */
void progress_set_size(struct progress *p, int columns, int rows);

/* Show snap if interval_s has passed since the last draw (the first update
 * draws at once on a terminal; on a pipe the first lines come interval_s
 * after the run's started_s). Does nothing after progress_finish(). */
void progress_update(struct progress *p, const struct obs_run *snap);

/* The end of the run: on a terminal draw snap now, whatever the interval,
 * and leave those lines on the screen (later output goes below them); on a
 * pipe print nothing. Later updates, clears and redraws do nothing. */
void progress_finish(struct progress *p, const struct obs_run *snap);

/* Take the live lines off the terminal, leaving the cursor where they
 * began, so that a line written next takes their place; and draw them
 * again below it. Both do nothing on a pipe, and redraw nothing unless a
 * clear came first. */
void progress_clear(struct progress *p);
void progress_redraw(struct progress *p);

/* Have every log line clear the live lines before it and redraw them after
 * it (log_set_hooks()). Right when log lines go to the same terminal as
 * the display; progress_free() removes the hooks. */
void progress_attach_log(struct progress *p);

/* Free the display (NULL is fine). Prints nothing. */
void progress_free(struct progress *p);

#endif
