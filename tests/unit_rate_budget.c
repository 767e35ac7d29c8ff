/* unit_rate_budget.c - the per-egress request budget (rate_budget.h). */
#include "rate_budget.h"
#include "test.h"

/* Simulate a greedy client for `ms` milliseconds: it sends whenever the
 * budget allows. Returns the largest number of requests seen in any
 * sliding window of window_ms, and the total in *total. */
static int greedy(struct rate_budget *rb, uint64_t start, uint64_t ms, uint64_t window_ms,
		  int *total)
{
	static uint64_t sent[20000];
	int n = 0, worst = 0;
	uint64_t now = start;
	while (now < start + ms && n < 20000) {
		uint64_t wait = rate_budget_take(rb, now);
		if (wait) {
			now += wait;
			continue;
		}
		sent[n++] = now;
	}
	for (int i = 0, j = 0; i < n; i++) {
		while (sent[i] - sent[j] >= window_ms)
			j++;
		if (i - j + 1 > worst)
			worst = i - j + 1;
	}
	*total = n;
	return worst;
}

TEST(rate_budget_never_exceeds_limit_in_any_minute)
{
	struct rate_budget rb;
	int total;
	rate_budget_init(&rb, 180, 0.0, 3, 1000);
	int worst = greedy(&rb, 1000, 10 * 60000, 60000, &total);
	ASSERT(worst <= 180);
	/* and uses the budget: at least 97% of 180 a minute over 10 minutes */
	ASSERT(total >= 1746);
}

TEST(rate_budget_margin_keeps_room)
{
	struct rate_budget rb;
	int total;
	rate_budget_init(&rb, 1800, 0.05, 10, 0);
	int worst = greedy(&rb, 0, 5 * 60000, 60000, &total);
	ASSERT(worst <= 1710);
	ASSERT(total >= 5 * 1700);
}

TEST(rate_budget_penalty_blocks_and_slows)
{
	struct rate_budget rb;
	rate_budget_init(&rb, 600, 0.0, 1, 0);
	ASSERT_EQ_INT(rate_budget_take(&rb, 0), 0);
	rate_budget_penalty(&rb, 60000, 10);
	ASSERT_EQ_INT(rb.penalties, 1);
	/* blocked for the whole wait */
	ASSERT_EQ_INT(rate_budget_take(&rb, 20), 60000 - 10);
	ASSERT(rate_budget_take(&rb, 60009) > 0);
	/* slower by a tenth afterwards */
	double before = (600.0 - 1) * 1.0;
	ASSERT(rate_budget_per_minute(&rb) < before * 0.91);
	ASSERT(rate_budget_per_minute(&rb) > before * 0.89);
	/* and usable again once the wait is over and a token has refilled */
	uint64_t t = 60010;
	uint64_t wait = rate_budget_take(&rb, t);
	ASSERT(wait > 0 && wait < 200);
	ASSERT_EQ_INT(rate_budget_take(&rb, t + wait), 0);
}

TEST(rate_budget_wait_is_exact_enough_not_to_spin)
{
	struct rate_budget rb;
	rate_budget_init(&rb, 60, 0.0, 1, 0);
	ASSERT_EQ_INT(rate_budget_take(&rb, 0), 0);
	uint64_t wait = rate_budget_take(&rb, 0);
	/* 59 tokens a minute after the burst of 1: about 1017 ms */
	ASSERT(wait >= 1000 && wait <= 1100);
	ASSERT_EQ_INT(rate_budget_take(&rb, wait), 0);
}

TEST(rate_budget_peek_takes_nothing)
{
	struct rate_budget rb;
	rate_budget_init(&rb, 60, 0, 1, 0); /* one a second */
	ASSERT_EQ_INT(rate_budget_peek(&rb, 0), 0);
	ASSERT_EQ_INT(rate_budget_peek(&rb, 0), 0); /* peeking twice leaves the token */
	ASSERT_EQ_INT(rate_budget_take(&rb, 0), 0);
	uint64_t wait = rate_budget_peek(&rb, 0);
	ASSERT(wait > 0);
	ASSERT_EQ_INT(rate_budget_take(&rb, 0), wait); /* the same wait, nothing taken */
	ASSERT_EQ_INT(rate_budget_peek(&rb, wait), 0);
	ASSERT_EQ_INT(rb.granted, 1);
}
