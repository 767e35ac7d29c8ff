-- 005_run_log_throttling: rate-limit refusals and session renewals in the run log.

-- 429 answers (Syncro's rate limit) and session token renewals (Mosyle).
ALTER TABLE sync_runs
	ADD COLUMN throttled      bigint NOT NULL DEFAULT 0,
	ADD COLUMN token_renewals int    NOT NULL DEFAULT 0;
ALTER TABLE sync_run_endpoints
	ADD COLUMN throttled bigint NOT NULL DEFAULT 0;
