-- 001_init: run log and Mosyle devices.
-- Applied by invsync itself (schema.c) inside the configured schema
-- (search_path points at it), once, in a transaction.

CREATE SEQUENCE run_id_seq;

-- One row per source per run. status moves running -> succeeded|failed;
-- the succeeded update is made in the same transaction that replaces the
-- source's data, so a succeeded row always describes what is current.
CREATE TABLE sync_runs (
	run_id       bigint      NOT NULL,
	source       text        NOT NULL,
	kind         text        NOT NULL,
	started_at   timestamptz NOT NULL DEFAULT now(),
	finished_at  timestamptz,
	status       text        NOT NULL DEFAULT 'running'
	             CHECK (status IN ('running', 'succeeded', 'failed')),
	pages        bigint      NOT NULL DEFAULT 0, -- pages fetched (with records or end markers)
	pages_wasted bigint      NOT NULL DEFAULT 0, -- speculative pages past the end, or repeats
	records      bigint      NOT NULL DEFAULT 0, -- records received, duplicates included
	loaded       bigint,                         -- distinct records now current
	bytes        bigint      NOT NULL DEFAULT 0, -- response body bytes
	retries      bigint      NOT NULL DEFAULT 0,
	nul_replaced bigint      NOT NULL DEFAULT 0, -- NUL characters replaced by U+FFFD
	error        text,                           -- why the run failed, for a person
	warnings     text,
	PRIMARY KEY (run_id, source)
);
CREATE INDEX sync_runs_source_started ON sync_runs (source, started_at DESC);

-- Per endpoint figures of a run ("devices/ios", "devices/mac", ...).
CREATE TABLE sync_run_endpoints (
	run_id       bigint NOT NULL,
	source       text   NOT NULL,
	endpoint     text   NOT NULL,
	pages        bigint NOT NULL DEFAULT 0,
	pages_wasted bigint NOT NULL DEFAULT 0,
	records      bigint NOT NULL DEFAULT 0,
	bytes        bigint NOT NULL DEFAULT 0,
	retries      bigint NOT NULL DEFAULT 0,
	total_hint   bigint,      -- the total the API announced, if any
	PRIMARY KEY (run_id, source, endpoint),
	FOREIGN KEY (run_id, source) REFERENCES sync_runs (run_id, source) ON DELETE CASCADE
);

-- The current device inventory of every Mosyle source.
CREATE TABLE mosyle_devices (
	source         text        NOT NULL,
	device_key     text        NOT NULL, -- deviceudid, or 'serial:' || serial_number without one
	udid           text,
	serial_number  text,
	os             text        NOT NULL, -- ios, mac, tvos, visionos
	device_name    text,
	model          text,                 -- device_model, e.g. iPad7,11
	model_name     text,                 -- device_model_name, e.g. iPad (7th generation)
	os_version     text,
	asset_tag      text,
	tags           text[],
	user_id        text,
	user_name      text,
	user_email     text,
	user_type      text,
	is_supervised  boolean,
	total_disk     numeric,
	available_disk numeric,
	battery        numeric,
	enrollment_type text,
	last_checkin   timestamptz,          -- date_last_beat
	attrs          jsonb       NOT NULL, -- the full record as received
	first_seen     timestamptz NOT NULL,
	last_seen      timestamptz NOT NULL,
	run_id         bigint      NOT NULL, -- the run that loaded this row
	PRIMARY KEY (source, device_key)
);
CREATE INDEX mosyle_devices_serial ON mosyle_devices (source, serial_number);

DO $$
BEGIN
	ALTER TABLE mosyle_devices ALTER COLUMN attrs SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
	NULL; -- server built without lz4: keep the default
END $$;

-- Staging for one run of one source: a temporary table on the loading
-- connection, gone with its transaction (or the connection, if the process
-- dies). Every row carries the page attempt that produced it so the rows
-- of an attempt that failed halfway, or of a page past the end, can be
-- left out at commit.
CREATE FUNCTION stage_mosyle_devices() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	CREATE TEMP TABLE stage_mosyle_devices (
		attempt        int  NOT NULL,
		page           int  NOT NULL,
		device_key     text NOT NULL,
		udid           text,
		serial_number  text,
		os             text NOT NULL,
		device_name    text,
		model          text,
		model_name     text,
		os_version     text,
		asset_tag      text,
		tags           text[],
		user_id        text,
		user_name      text,
		user_email     text,
		user_type      text,
		is_supervised  boolean,
		total_disk     numeric,
		available_disk numeric,
		battery        numeric,
		enrollment_type text,
		last_checkin   timestamptz,
		attrs          jsonb NOT NULL
	) ON COMMIT DROP;
END $$;

-- Replace the source's devices with the staged ones, in the caller's
-- transaction. Rows of the attempts in p_discard are left out; a device
-- seen twice (it moved between pages while they were read) is kept once.
-- Returns the number of devices now current.
CREATE FUNCTION commit_mosyle_devices(p_run bigint, p_source text, p_discard int[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	CREATE TEMP TABLE prev_mosyle_devices ON COMMIT DROP AS
		SELECT device_key, first_seen FROM mosyle_devices WHERE source = p_source;
	ANALYZE prev_mosyle_devices;
	DELETE FROM mosyle_devices WHERE source = p_source;
	INSERT INTO mosyle_devices
	SELECT p_source, s.device_key, s.udid, s.serial_number, s.os, s.device_name, s.model,
	       s.model_name, s.os_version, s.asset_tag, s.tags, s.user_id, s.user_name,
	       s.user_email, s.user_type, s.is_supervised, s.total_disk, s.available_disk,
	       s.battery, s.enrollment_type, s.last_checkin, s.attrs,
	       coalesce(p.first_seen, now()), now(), p_run
	FROM stage_mosyle_devices s
	LEFT JOIN prev_mosyle_devices p USING (device_key)
	WHERE s.attempt <> ALL (p_discard)
	ON CONFLICT (source, device_key) DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;
