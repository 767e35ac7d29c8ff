/* rate_budget.c - token bucket per egress (see rate_budget.h). */
#include "rate_budget.h"

void rate_budget_init(struct rate_budget *rb, double per_minute, double margin, double burst,
		      uint64_t now_ms)
{
	if (burst < 1)
		burst = 1;
	if (margin < 0)
		margin = 0;
	double allowed = per_minute * (1.0 - margin);
	/* what the burst takes from a minute's window, the rate gives back */
	double rate = (allowed - burst) / 60000.0;
	if (rate <= 0)
		rate = allowed / 60000.0 / 2;
	*rb = (struct rate_budget){
		.per_ms = rate,
		.burst = burst,
		.tokens = burst,
		.last_ms = now_ms,
	};
}

static void refill(struct rate_budget *rb, uint64_t now_ms)
{
	if (now_ms <= rb->last_ms)
		return;
	rb->tokens += (double)(now_ms - rb->last_ms) * rb->per_ms;
	if (rb->tokens > rb->burst)
		rb->tokens = rb->burst;
	rb->last_ms = now_ms;
}

uint64_t rate_budget_take(struct rate_budget *rb, uint64_t now_ms)
{
	if (now_ms < rb->blocked_until_ms)
		return rb->blocked_until_ms - now_ms;
	refill(rb, now_ms);
	if (rb->tokens >= 1.0) {
		rb->tokens -= 1.0;
		rb->granted++;
		return 0;
	}
	uint64_t wait = (uint64_t)((1.0 - rb->tokens) / rb->per_ms) + 1;
	return wait;
}

uint64_t rate_budget_peek(struct rate_budget *rb, uint64_t now_ms)
{
	if (now_ms < rb->blocked_until_ms)
		return rb->blocked_until_ms - now_ms;
	refill(rb, now_ms);
	if (rb->tokens >= 1.0)
		return 0;
	return (uint64_t)((1.0 - rb->tokens) / rb->per_ms) + 1;
}

void rate_budget_penalty(struct rate_budget *rb, uint64_t wait_ms, uint64_t now_ms)
{
	rb->penalties++;
	refill(rb, now_ms);
	if (now_ms + wait_ms > rb->blocked_until_ms)
		rb->blocked_until_ms = now_ms + wait_ms;
	rb->per_ms *= 0.9;
	/* the window the server counts restarts after the wait: no burst */
	rb->tokens = 0;
	rb->last_ms = rb->blocked_until_ms;
}

double rate_budget_per_minute(const struct rate_budget *rb)
{
	return rb->per_ms * 60000.0;
}
