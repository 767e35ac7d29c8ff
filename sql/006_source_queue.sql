-- 006_source_queue: the work queue several invsync workers share.
--
-- `invsync sync --worker` puts every source of its configuration in the
-- queue of a schedule (one row per source and schedule, e.g. per night),
-- then claims rows one at a time with FOR UPDATE SKIP LOCKED and a lease it
-- renews while loading. A row whose lease ran out (its worker died) may be
-- claimed again. A succeeded load marks its row done in the same
-- transaction that swaps the source's data in, so a source is loaded once
-- per schedule even if its worker dies right after committing.
CREATE TABLE source_queue (
	schedule    text        NOT NULL,
	source      text        NOT NULL,
	kind        text        NOT NULL,
	state       text        NOT NULL DEFAULT 'pending'
	            CHECK (state IN ('pending', 'claimed', 'done', 'failed')),
	worker      text,                   -- host:pid:run of the claimant
	claimed_at  timestamptz,
	lease_until timestamptz,            -- claimable again after this
	attempts    int         NOT NULL DEFAULT 0,
	run_id      bigint,                 -- the run that claimed (or loaded) it
	finished_at timestamptz,
	PRIMARY KEY (schedule, source)
);
CREATE INDEX source_queue_open ON source_queue (schedule) WHERE state IN ('pending', 'claimed');
