/* unit_planner.c - paging decisions (planner.h). */
#include "planner.h"
#include "test.h"

static struct page_result page(int n, long records, uint64_t sig)
{
	struct page_result r = {n, records, sig, records == 0, -1, -1, n + 1000};
	return r;
}

/* A pointer to a page result, for page_window_done(). */
#define PAGE(n, records, sig) (&(struct page_result[]){page((n), (records), (sig))}[0])

/* Issue every page the window allows right now. */
static int drain_next(struct page_window *pw, int *out, int max)
{
	int n = 0, p;
	while (n < max && (p = page_window_next(pw)) >= 0)
		out[n++] = p;
	return n;
}

TEST(planner_total_plans_all_pages_and_a_sentinel)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 4, 1000);
	ASSERT_EQ_INT(drain_next(&pw, pages, 64), 1); /* the first page alone */
	ASSERT_EQ_INT(pages[0], 1);
	struct page_result r = page(1, 100, 11);
	r.total_records = 1050;
	r.page_size = 100;
	ASSERT_EQ_INT(page_window_done(&pw, &r), PAGE_KEEP);
	/* 11 pages of data: 2..11 plus the sentinel 12, without a window */
	int n = drain_next(&pw, pages, 64);
	ASSERT_EQ_INT(n, 11);
	ASSERT_EQ_INT(pages[0], 2);
	ASSERT_EQ_INT(pages[10], 12);
	for (int p = 2; p <= 11; p++)
		ASSERT_EQ_INT(page_window_done(&pw, &(struct page_result){p, p == 11 ? 50 : 100,
									  (uint64_t)p, false, 1050, 100, p}),
			      PAGE_KEEP);
	ASSERT(!page_window_finished(&pw));
	ASSERT_EQ_INT(page_window_done(&pw, &(struct page_result){12, 0, 0, true, 1050, 100, 12}),
		      PAGE_DISCARD);
	ASSERT(page_window_finished(&pw));
	ASSERT(!pw.failed);
	ASSERT_EQ_INT(pw.pages_kept, 11);
	ASSERT_EQ_INT(pw.records_kept, 1050);
	ASSERT_EQ_INT(pw.pages_wasted, 0);
	page_window_free(&pw);
}

TEST(planner_wrong_total_goes_on_speculatively)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 3, 1000);
	drain_next(&pw, pages, 64);
	struct page_result r = page(1, 100, 1);
	r.total_records = 150; /* says 2 pages, there are 4 */
	page_window_done(&pw, &r);
	ASSERT_EQ_INT(drain_next(&pw, pages, 64), 2); /* page 2 and sentinel 3 */
	ASSERT_EQ_INT(page_window_done(&pw, &(struct page_result){2, 100, 2, false, 150, -1, 2}), PAGE_KEEP);
	ASSERT_EQ_INT(page_window_done(&pw, &(struct page_result){3, 100, 3, false, 150, -1, 3}), PAGE_KEEP);
	/* the sentinel held records: a window of 3 beyond it */
	ASSERT_EQ_INT(drain_next(&pw, pages, 64), 3);
	ASSERT_EQ_INT(pages[0], 4);
	ASSERT_EQ_INT(pages[2], 6);
	ASSERT_EQ_INT(page_window_done(&pw, &(struct page_result){4, 10, 4, false, -1, -1, 4}), PAGE_KEEP);
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(5, 0, 0)), PAGE_DISCARD);
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(6, 0, 0)), PAGE_DISCARD);
	ASSERT(page_window_finished(&pw));
	ASSERT_EQ_INT(pw.records_kept, 310);
	ASSERT_EQ_INT(pw.pages_wasted, 1); /* page 6: past the end at 5 */
	page_window_free(&pw);
}

TEST(planner_window_without_total_stops_at_first_end)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 4, 1000);
	drain_next(&pw, pages, 64);
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(1, 100, 1)), PAGE_KEEP);
	ASSERT_EQ_INT(drain_next(&pw, pages, 64), 4); /* 2..5 */
	ASSERT_EQ_INT(drain_next(&pw, pages, 64), 0); /* window full */
	/* out of order: 4 ends the list, 5 is past it, 2 and 3 still count */
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(4, 0, 0)), PAGE_DISCARD);
	ASSERT(page_window_past_end(&pw, 5));
	ASSERT(!page_window_past_end(&pw, 3));
	ASSERT_EQ_INT(drain_next(&pw, pages, 64), 0); /* nothing past the end */
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(5, 7, 5)), PAGE_DISCARD);
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(3, 100, 3)), PAGE_KEEP);
	ASSERT(!page_window_finished(&pw));
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(2, 60, 2)), PAGE_KEEP); /* short page mid-list */
	ASSERT(page_window_finished(&pw));
	ASSERT_EQ_INT(pw.records_kept, 260);
	ASSERT_EQ_INT(pw.pages_wasted, 1);
	page_window_free(&pw);
}

static int late[8];
static int nlate;
static void late_cb(void *arg, int attempt)
{
	(void)arg;
	late[nlate++] = attempt;
}

TEST(planner_end_found_below_kept_page_discards_it_late)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 4, 1000);
	drain_next(&pw, pages, 64);
	page_window_done(&pw, PAGE(1, 100, 1));
	drain_next(&pw, pages, 64); /* 2..5 */
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(3, 100, 3)), PAGE_KEEP);
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(2, 0, 0)), PAGE_DISCARD); /* end at 2 */
	page_window_done(&pw, PAGE(4, 0, 0));
	page_window_done(&pw, PAGE(5, 0, 0));
	ASSERT(page_window_finished(&pw));
	nlate = 0;
	page_window_late_discards(&pw, late_cb, NULL);
	ASSERT_EQ_INT(nlate, 1);
	ASSERT_EQ_INT(late[0], 1003); /* page 3's attempt */
	ASSERT_EQ_INT(pw.records_kept, 100);
	page_window_free(&pw);
}

TEST(planner_repeated_page_stops_with_warning)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 2, 1000);
	drain_next(&pw, pages, 64);
	page_window_done(&pw, PAGE(1, 100, 77));
	drain_next(&pw, pages, 64); /* 2, 3 */
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(2, 100, 77)), PAGE_DISCARD);
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(3, 100, 77)), PAGE_DISCARD);
	ASSERT(page_window_finished(&pw));
	ASSERT(!pw.failed);
	ASSERT_CONTAINS(pw.warning.data, "ignores the page parameter");
	ASSERT_EQ_INT(pw.records_kept, 100);
	page_window_free(&pw);
}

TEST(planner_repeated_page_with_larger_total_fails)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 2, 1000);
	drain_next(&pw, pages, 64);
	struct page_result r = page(1, 100, 77);
	r.total_records = 1000;
	page_window_done(&pw, &r);
	int n = drain_next(&pw, pages, 64);
	ASSERT_EQ_INT(n, 10);
	for (int i = 0; i < n; i++)
		page_window_done(&pw, PAGE(pages[i], 100, 77));
	ASSERT(page_window_finished(&pw));
	ASSERT(pw.failed);
	ASSERT_CONTAINS(pw.error.data, "announced 1000 records");
	page_window_free(&pw);
}

TEST(planner_page_zero_alias_of_page_one_is_not_a_repeat)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 0, 2, 1000);
	drain_next(&pw, pages, 64);
	ASSERT_EQ_INT(pages[0], 0);
	page_window_done(&pw, PAGE(0, 100, 5)); /* a 1-based server's page 1 */
	drain_next(&pw, pages, 64);            /* 1, 2 */
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(1, 100, 5)), PAGE_DISCARD);
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(2, 40, 6)), PAGE_KEEP);
	drain_next(&pw, pages, 64);
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(3, 0, 0)), PAGE_DISCARD);
	drain_next(&pw, pages, 64);
	page_window_done(&pw, PAGE(4, 0, 0));
	ASSERT(page_window_finished(&pw));
	ASSERT(!pw.failed);
	ASSERT_EQ_INT(pw.warning.len, 0);
	ASSERT_EQ_INT(pw.records_kept, 140);
	page_window_free(&pw);
}

/* With a total, asked from page 0, a 1-based server's pages are one
 * further than planned: a list of one page must not wait forever on the
 * repeat it answers for the sentinel. */
TEST(planner_page_zero_alias_with_total_moves_the_sentinel)
{
	struct page_window pw;
	int pages[64];
	for (int npages = 1; npages <= 3; npages++) {
		page_window_init(&pw, 0, 4, 1000);
		drain_next(&pw, pages, 64);
		long first = npages == 1 ? 40 : 50;
		struct page_result r = page(0, first, 5);
		r.total_records = 50L * npages - 10;
		ASSERT_EQ_INT(page_window_done(&pw, &r), PAGE_KEEP);
		/* pages 1..npages: the plan's last one is its sentinel */
		ASSERT_EQ_INT(drain_next(&pw, pages, 64), npages);
		ASSERT_EQ_INT(page_window_done(&pw, PAGE(1, first, 5)), PAGE_DISCARD);
		for (int p = 2; p <= npages; p++)
			ASSERT_EQ_INT(page_window_done(&pw, PAGE(p, p == npages ? 40 : 50, (uint64_t)p)),
				      PAGE_KEEP);
		/* the real sentinel goes out, alone */
		ASSERT(!page_window_finished(&pw));
		ASSERT_EQ_INT(drain_next(&pw, pages, 64), 1);
		ASSERT_EQ_INT(pages[0], npages + 1);
		ASSERT_EQ_INT(page_window_done(&pw, PAGE(npages + 1, 0, 0)), PAGE_DISCARD);
		ASSERT(page_window_finished(&pw));
		ASSERT(!pw.failed);
		ASSERT_EQ_INT(pw.warning.len, 0);
		ASSERT_EQ_INT(pw.records_kept, 50L * npages - 10);
		ASSERT_EQ_INT(pw.pages_wasted, 1);
		page_window_free(&pw);
	}
}

TEST(planner_page_cap_fails_instead_of_truncating)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 2, 5);
	drain_next(&pw, pages, 64);
	page_window_done(&pw, PAGE(1, 10, 1));
	for (int round = 0; round < 10 && !page_window_finished(&pw); round++) {
		int n = drain_next(&pw, pages, 64);
		for (int i = 0; i < n; i++)
			page_window_done(&pw, PAGE(pages[i], 10, (uint64_t)pages[i]));
	}
	ASSERT(page_window_finished(&pw));
	ASSERT(pw.failed);
	ASSERT_CONTAINS(pw.error.data, "page cap reached");
	page_window_free(&pw);
}

TEST(planner_failed_page_past_end_does_not_matter)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 3, 100);
	drain_next(&pw, pages, 64);
	page_window_done(&pw, PAGE(1, 10, 1));
	drain_next(&pw, pages, 64); /* 2, 3, 4 */
	page_window_done(&pw, PAGE(2, 0, 0));
	ASSERT(page_window_give_up(&pw, 4, "HTTP 500"));
	ASSERT(!pw.failed);
	ASSERT_EQ_INT(pw.pages_wasted, 1);
	page_window_done(&pw, PAGE(3, 0, 0));
	ASSERT(page_window_finished(&pw));
	ASSERT(!pw.failed);
	page_window_free(&pw);
}

TEST(planner_failed_page_before_end_fails_window)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 3, 100);
	drain_next(&pw, pages, 64);
	page_window_done(&pw, PAGE(1, 10, 1));
	drain_next(&pw, pages, 64); /* 2, 3, 4 */
	/* the end is not known yet: page 2 might be past it */
	ASSERT(page_window_give_up(&pw, 2, "HTTP 500 after 5 attempts"));
	ASSERT(!pw.failed);
	page_window_done(&pw, PAGE(3, 10, 3));
	page_window_done(&pw, PAGE(4, 0, 0)); /* end at 4: page 2 was needed */
	ASSERT(page_window_finished(&pw));
	ASSERT(pw.failed);
	ASSERT_CONTAINS(pw.error.data, "HTTP 500");
	page_window_free(&pw);
}

TEST(planner_failed_first_page_fails_at_once)
{
	struct page_window pw;
	page_window_init(&pw, 1, 3, 100);
	ASSERT_EQ_INT(page_window_next(&pw), 1);
	ASSERT(!page_window_give_up(&pw, 1, "HTTP 500"));
	ASSERT(pw.failed);
	ASSERT_EQ_INT(page_window_next(&pw), -1);
	ASSERT(page_window_finished(&pw));
	page_window_free(&pw);
}

TEST(planner_failed_speculative_page_past_later_end_is_wasted)
{
	struct page_window pw;
	int pages[64];
	page_window_init(&pw, 1, 4, 100);
	drain_next(&pw, pages, 64);
	page_window_done(&pw, PAGE(1, 10, 1));
	drain_next(&pw, pages, 64); /* 2..5 */
	/* page 5 gives up before anyone knows the list ends at 3 */
	ASSERT(page_window_give_up(&pw, 5, "HTTP 500"));
	ASSERT(!pw.failed);
	page_window_done(&pw, PAGE(2, 10, 2));
	page_window_done(&pw, PAGE(3, 0, 0));
	page_window_done(&pw, PAGE(4, 0, 0));
	ASSERT(page_window_finished(&pw));
	ASSERT(!pw.failed);
	ASSERT_EQ_INT(pw.records_kept, 20);
	page_window_free(&pw);
}

TEST(planner_single_page_endpoint_keeps_its_one_answer)
{
	struct page_window pw;
	int pages[8];
	page_window_init(&pw, 1, 16, 1000);
	page_window_set_single(&pw);
	ASSERT_EQ_INT(drain_next(&pw, pages, 8), 1);
	ASSERT(!page_window_finished(&pw));
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(1, 7, 5)), PAGE_KEEP);
	ASSERT_EQ_INT(drain_next(&pw, pages, 8), 0); /* nothing follows */
	ASSERT(page_window_finished(&pw));
	ASSERT(!pw.failed);
	ASSERT_EQ_INT(pw.records_kept, 7);
	ASSERT_EQ_INT(pw.pages_wasted, 0);
	page_window_free(&pw);

	/* an empty answer is an empty list, not an error */
	page_window_init(&pw, 1, 16, 1000);
	page_window_set_single(&pw);
	ASSERT_EQ_INT(drain_next(&pw, pages, 8), 1);
	ASSERT_EQ_INT(page_window_done(&pw, PAGE(1, 0, 0)), PAGE_DISCARD);
	ASSERT_EQ_INT(drain_next(&pw, pages, 8), 0);
	ASSERT(page_window_finished(&pw));
	ASSERT(!pw.failed);
	page_window_free(&pw);
}
