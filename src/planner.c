/* planner.c - paging decisions for one endpoint stream (see planner.h). */
#include "planner.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

#define NO_END INT32_MAX

void page_window_init(struct page_window *pw, int first_page, int window, int max_pages)
{
	*pw = (struct page_window){0};
	pw->first_page = first_page;
	pw->window = window > 0 ? window : 1;
	pw->max_pages = max_pages > 0 ? max_pages : 1;
	pw->next_page = first_page;
	pw->end_page = NO_END;
	pw->total_records = -1;
	pw->pending_fail_page = NO_END;
	buf_init(&pw->pending_reason);
	buf_init(&pw->warning);
	buf_init(&pw->error);
}

void page_window_free(struct page_window *pw)
{
	free(pw->kept);
	pw->kept = NULL;
	buf_free(&pw->pending_reason);
	buf_free(&pw->warning);
	buf_free(&pw->error);
}

void page_window_set_single(struct page_window *pw)
{
	pw->single = true;
}

static void add_warning(struct page_window *pw, const char *msg)
{
	if (pw->warning.len)
		buf_puts(&pw->warning, "; ");
	buf_puts(&pw->warning, msg);
}

static void settle_pending(struct page_window *pw);

static void set_failed(struct page_window *pw, const char *msg)
{
	if (pw->failed)
		return;
	pw->failed = true;
	buf_reset(&pw->error);
	buf_puts(&pw->error, msg);
}

int page_window_next(struct page_window *pw)
{
	settle_pending(pw);
	if (pw->failed || pw->next_page >= pw->end_page)
		return -1;
	if (!pw->first_done) {
		/* only the first page until we know whether a total exists */
		if (pw->next_page != pw->first_page)
			return -1;
	} else if (pw->next_page >= pw->planned_end) {
		/* past the plan: wait for the sentinel, then a window */
		if (pw->total_known && !pw->beyond_plan)
			return -1;
		if (pw->in_flight >= pw->window)
			return -1;
	}
	if (pw->next_page - pw->first_page >= pw->max_pages) {
		if (pw->in_flight == 0) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "page cap reached: %d pages read without an end-of-list page "
				 "(raise max_pages if the inventory is really that large)",
				 pw->max_pages);
			set_failed(pw, msg);
		}
		return -1;
	}
	pw->in_flight++;
	return pw->next_page++;
}

/* The first page answered: plan from its total, if it has a usable one. */
static void plan_from_total(struct page_window *pw, const struct page_result *res)
{
	long size = res->page_size > 0 ? res->page_size : res->records;
	if (res->total_records < 0 || size <= 0)
		return;
	pw->total_known = true;
	pw->total_records = res->total_records;
	long pages = (res->total_records + size - 1) / size;
	if (pages < 1)
		pages = 1;
	if (pages > pw->max_pages)
		pages = pw->max_pages;
	/* pages below planned_end go out without a window; planned_end itself
	 * is the sentinel that should answer end-of-list */
	pw->planned_end = pw->first_page + (int)pages + 1;
}

enum page_verdict page_window_done(struct page_window *pw, const struct page_result *res)
{
	int page = res->page;
	if (pw->in_flight > 0)
		pw->in_flight--;
	pw->pages_done++;
	bool is_first = page == pw->first_page;

	if (is_first) {
		pw->first_done = true;
		if (!res->end_marker && res->records > 0) {
			pw->first_signature = res->signature;
			pw->first_records = res->records;
			plan_from_total(pw, res);
		}
	}
	if (page >= pw->end_page) {
		pw->pages_wasted++;
		return PAGE_DISCARD;
	}
	if (pw->single && is_first && !res->end_marker && res->records > 0)
		pw->end_page = page + 1; /* nothing follows; the page is kept below */
	if (res->end_marker || res->records == 0) {
		/* the lowest end-of-list page is the end; an end page counts as
		 * fetched, not wasted, when it is the true end */
		pw->end_page = page;
		return PAGE_DISCARD;
	}
	if (!is_first && pw->first_signature && res->signature == pw->first_signature &&
	    res->records == pw->first_records) {
		if (pw->first_page == 0 && page == 1) {
			/* a server counting from 1 answers page 0 with page 1,
			 * so its last page and the sentinel are one further
			 * than planned: without this, a list of one page
			 * would wait forever for the end its sentinel (this
			 * page) never showed */
			if (pw->total_known)
				pw->planned_end++;
			pw->pages_wasted++;
			return PAGE_DISCARD;
		}
		struct buf msg = BUF_INIT;
		buf_printf(&msg, "the server ignores the page parameter: page %d repeats page %d; "
				 "paging stopped there", page, pw->first_page);
		if (pw->end_page > page)
			pw->end_page = page;
		pw->pages_wasted++;
		if (pw->total_known && pw->total_records > pw->first_records) {
			buf_printf(&msg, ", but the first page announced %ld records and only %ld are "
					 "reachable", pw->total_records, pw->first_records);
			set_failed(pw, msg.data);
		} else if (!pw->warning.len) {
			add_warning(pw, msg.data);
		}
		buf_free(&msg);
		return PAGE_DISCARD;
	}
	int slot = page - pw->first_page;
	if (slot >= pw->nkept_slots) {
		int n = pw->nkept_slots ? pw->nkept_slots : 64;
		while (n <= slot)
			n *= 2;
		pw->kept = xrealloc(pw->kept, (size_t)n * sizeof(*pw->kept));
		for (int i = pw->nkept_slots; i < n; i++)
			pw->kept[i] = (struct kept_page){-1, 0};
		pw->nkept_slots = n;
	}
	pw->kept[slot] = (struct kept_page){res->attempt, res->records};
	if (pw->total_known && page == pw->planned_end - 1)
		pw->beyond_plan = true; /* the announced total was too small */
	pw->pages_kept++;
	pw->records_kept += res->records;
	return PAGE_KEEP;
}

void page_window_retry(struct page_window *pw, int page)
{
	(void)page;
	pw->retries++;
}

bool page_window_give_up(struct page_window *pw, int page, const char *reason)
{
	if (pw->in_flight > 0)
		pw->in_flight--;
	if (page >= pw->end_page) {
		pw->pages_wasted++;
		return true;
	}
	if (pw->end_page == NO_END && page != pw->first_page) {
		/* a speculative page may turn out to be past the end */
		if (page < pw->pending_fail_page) {
			pw->pending_fail_page = page;
			buf_reset(&pw->pending_reason);
			buf_puts(&pw->pending_reason, reason);
		}
		return true;
	}
	set_failed(pw, reason);
	return false;
}

/* Settle a deferred page failure once the end is known, or once nothing
 * more can tell. */
static void settle_pending(struct page_window *pw)
{
	if (pw->pending_fail_page == NO_END || pw->failed)
		return;
	if (pw->pending_fail_page >= pw->end_page) {
		pw->pages_wasted++;
		pw->pending_fail_page = NO_END;
		return;
	}
	if (pw->end_page != NO_END || pw->in_flight == 0)
		set_failed(pw, buf_str(&pw->pending_reason));
}

void page_window_abandon(struct page_window *pw, int page)
{
	(void)page;
	if (pw->in_flight > 0)
		pw->in_flight--;
	pw->pages_wasted++;
}

bool page_window_past_end(const struct page_window *pw, int page)
{
	return page >= pw->end_page;
}

bool page_window_finished(struct page_window *pw)
{
	if (pw->in_flight > 0)
		return false;
	settle_pending(pw);
	if (pw->failed)
		return true;
	return pw->first_done && pw->next_page >= pw->end_page;
}

void page_window_late_discards(struct page_window *pw, void (*fn)(void *arg, int attempt),
			       void *arg)
{
	int from = pw->end_page == NO_END ? pw->nkept_slots : pw->end_page - pw->first_page;
	for (int i = from < 0 ? 0 : from; i < pw->nkept_slots; i++) {
		if (pw->kept[i].attempt < 0)
			continue;
		fn(arg, pw->kept[i].attempt);
		pw->pages_kept--;
		pw->pages_wasted++;
		pw->records_kept -= pw->kept[i].records;
		pw->kept[i].attempt = -1;
	}
}
