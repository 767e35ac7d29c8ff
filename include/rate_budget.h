/* rate_budget.h - a request budget per egress address (a token bucket).
 *
 * Syncro allows a number of requests per minute per client IP address,
 * shared by every tenant behind that address. One rate_budget serves every
 * source that leaves through the same egress. It is sized so that no
 * sliding 60-second window ever holds more than the limit: burst +
 * rate x 60 s <= per_minute x (1 - margin). A 429 blocks the budget for the
 * server's Retry-After (or a default) and slows it down by a tenth, so one
 * refusal does not turn into many. No timers here: callers ask when the
 * next request may go and arm their own timer. Times are milliseconds on
 * any monotonic clock. */
#ifndef INVSYNC_RATE_BUDGET_H
#define INVSYNC_RATE_BUDGET_H

#include <stdint.h>

/* The burst of a Syncro egress's budget: the limit is counted over a
 * sliding minute, so what goes early is simply not sent later. */
#define RATE_BUDGET_SYNCRO_BURST 2

struct rate_budget {
	double per_ms;        /* tokens added per millisecond */
	double burst;         /* most tokens held */
	double tokens;
	uint64_t last_ms;     /* when tokens were last topped up */
	uint64_t blocked_until_ms;
	uint64_t granted;     /* requests let through */
	uint64_t penalties;   /* 429s reported */
};

/* per_minute: the server's limit; margin: share kept in reserve (0.02 is
 * 2%); burst: requests that may go back to back (at least 1). */
void rate_budget_init(struct rate_budget *rb, double per_minute, double margin, double burst,
		      uint64_t now_ms);

/* Take one request's token. Returns 0 when the request may go now (the
 * token is taken), otherwise how many ms to wait before asking again. */
uint64_t rate_budget_take(struct rate_budget *rb, uint64_t now_ms);

/* How many ms until a token is available (0: now), taking nothing. */
uint64_t rate_budget_peek(struct rate_budget *rb, uint64_t now_ms);

/* The server answered 429: block for wait_ms (its Retry-After, or a
 * default) and lower the rate by a tenth. */
void rate_budget_penalty(struct rate_budget *rb, uint64_t wait_ms, uint64_t now_ms);

/* Requests per minute the budget currently allows. */
double rate_budget_per_minute(const struct rate_budget *rb);

#endif
