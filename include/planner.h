/* planner.h - which pages of one paged endpoint to fetch, and which to keep.
 *
 * A page_window decides the paging of one (source, endpoint) stream. It
 * starts with the first page alone. If that page announces a usable total
 * (a record count and the page size actually served), every remaining page
 * is planned at once, plus one "sentinel" page just past the announced end
 * that confirms it (if the sentinel still holds records, the total was
 * wrong and the window goes on speculatively). Without a total, a window
 * of speculative pages stays in flight until the first end-of-list page.
 *
 * Rules kept here:
 *   - the end is the lowest page that answered end-of-list; pages past it
 *     are discarded whatever they hold, and need not be fetched;
 *   - a page identical to the first page (same record keys) means the
 *     server ignores the page parameter: paging stops there, with a
 *     warning, and fails if the first page announced more records than one
 *     page holds; page 1 repeating page 0 is allowed (servers that count
 *     from 1 answer page 0 with page 1) and is discarded;
 *   - a short page is not an end: only an end-of-list marker is;
 *   - the page cap bounds how far the window may go.
 * No I/O here: the caller fetches, retries and reports. */
#ifndef INVSYNC_PLANNER_H
#define INVSYNC_PLANNER_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

enum page_verdict {
	PAGE_KEEP = 0,   /* the page's records belong to the inventory */
	PAGE_DISCARD,    /* past the end, or a repeat: drop its records */
};

struct page_result {
	int page;
	long records;       /* records on the page */
	uint64_t signature; /* hash of the page's record keys in order; 0 if none */
	bool end_marker;    /* empty list or *_NOTFOUND */
	long total_records; /* announced total, -1 if none */
	long page_size;     /* page size the server says it used, -1 if none */
	int attempt;        /* the caller's id of the attempt that fetched it */
};

struct page_window {
	int first_page;
	int window;
	int max_pages;
	int next_page;        /* next page number to hand out */
	int end_page;         /* lowest page known past the end; INT32_MAX if unknown */
	int planned_end;      /* pages below this are planned at once; 0 if none */
	bool first_done;      /* the first page has answered */
	bool total_known;
	bool beyond_plan;     /* the sentinel held records: speculate past it */
	long total_records;   /* announced total, -1 if none */
	uint64_t first_signature;
	long first_records;
	int in_flight;
	bool single;          /* the first answer holds the whole list */
	bool failed;          /* paging cannot complete; reason in error */
	/* lowest page given up on while the end was unknown: fatal only if
	 * the end turns out to lie beyond it */
	int pending_fail_page;
	struct buf pending_reason;
	/* figures */
	long pages_done;      /* pages answered */
	long pages_kept;
	long pages_wasted;    /* answered past the end, or repeats */
	long retries;
	long records_kept;
	struct buf warning;   /* non-fatal findings, for the run log */
	struct buf error;
	/* kept[i]: attempt whose records were kept for page first_page + i,
	 * and how many; an end found later below a kept page discards it */
	struct kept_page {
		int attempt;
		long records;
	} *kept;
	int nkept_slots;
};

void page_window_init(struct page_window *pw, int first_page, int window, int max_pages);
void page_window_free(struct page_window *pw);

/* For endpoints that do not page: the first page is the whole list, kept
 * unless it is empty, and nothing follows it. */
void page_window_set_single(struct page_window *pw);

/* The next page to request now, or -1 if none should start now (waiting
 * for the first page, window full, end reached, or failed). The page
 * counts as in flight until page_window_done() or page_window_abandon(). */
int page_window_next(struct page_window *pw);

/* A page answered (completely parsed). Returns what to do with its
 * records. */
enum page_verdict page_window_done(struct page_window *pw, const struct page_result *res);

/* The page will be fetched again (it stays in flight). */
void page_window_retry(struct page_window *pw, int page);

/* The page could not be fetched. Returns true if that does not matter
 * (the page is past the end) or cannot be known to matter yet (the end is
 * unknown: decided once it is); false when the window fails with reason. */
bool page_window_give_up(struct page_window *pw, int page, const char *reason);

/* A page in flight was cancelled because it is past the end. */
void page_window_abandon(struct page_window *pw, int page);

/* True when a page in flight is known to be useless now. */
bool page_window_past_end(const struct page_window *pw, int page);

/* True when paging is over (successfully or not) and nothing is in flight. */
bool page_window_finished(struct page_window *pw);

/* Once finished: call fn for every attempt that was kept for a page the
 * end later showed to be past it (a page answered end-of-list below it),
 * moving it from kept to wasted. */
void page_window_late_discards(struct page_window *pw, void (*fn)(void *arg, int attempt),
			       void *arg);

#endif
