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

-- The current device inventory of every Mosyle source: one partition per
-- source. A run loads into a fresh table that replaces the source's
-- partition when the run commits, so readers see the previous inventory
-- or the new one, never a mix, and the load writes every row once.
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
	page           int         NOT NULL, -- the page it came from
	attempt        int         NOT NULL, -- the page attempt that fetched it
	PRIMARY KEY (source, device_key)
) PARTITION BY LIST (source);
CREATE INDEX mosyle_devices_serial ON mosyle_devices (source, serial_number);

DO $$
BEGIN
	ALTER TABLE mosyle_devices ALTER COLUMN attrs SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
	NULL; -- server built without lz4: keep the default
END $$;

-- The partition currently holding a source's rows of a partitioned table.
CREATE FUNCTION current_partition(p_parent regclass, p_source text) RETURNS regclass
LANGUAGE sql STABLE AS $$
	SELECT c.oid::regclass
	FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = p_parent
	  AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%L)', p_source)
$$;

-- Create the table a run of one source loads into, inside the caller's
-- transaction (so it vanishes if the run fails or the process dies), and
-- return its name for COPY. Rows carry the page attempt that produced
-- them, so rows of an attempt that failed halfway, or of a page past the
-- end, can be dropped at commit.
CREATE FUNCTION stage_rows(p_parent regclass, p_run bigint, p_source text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	t text := format('%s_r%s_%s', p_parent::text, p_run, substr(md5(p_source), 1, 12));
BEGIN
	EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING COMPRESSION'
		       ' INCLUDING STORAGE, CHECK (source = %L))', t, p_parent, p_source);
	EXECUTE format('ALTER TABLE %I ALTER source SET DEFAULT %L, ALTER run_id SET DEFAULT %s,'
		       ' ALTER first_seen SET DEFAULT now(), ALTER last_seen SET DEFAULT now()',
		       t, p_source, p_run);
	RETURN quote_ident(t);
END $$;

-- Build on p_table the indexes p_parent asks of its partitions, so that
-- attaching p_table finds them ready.
CREATE FUNCTION index_like_parent(p_parent regclass, p_table regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	def text;
BEGIN
	FOR def IN SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = p_parent
	LOOP
		EXECUTE regexp_replace(def, '^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+',
				       'CREATE \1INDEX ON ' || p_table::text);
	END LOOP;
END $$;

-- Make the loaded table the source's partition, in the caller's
-- transaction: drop rows of discarded attempts, keep one row per key (the
-- latest attempt's), carry first_seen over from the previous inventory,
-- index, and swap partitions. Returns the number of rows now current.
CREATE FUNCTION commit_rows(p_parent regclass, p_new regclass, p_source text,
			    p_discard int[], p_key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	old regclass := current_partition(p_parent, p_source);
	n bigint;
BEGIN
	IF cardinality(p_discard) > 0 THEN
		EXECUTE format('DELETE FROM %s WHERE attempt = ANY ($1)', p_new) USING p_discard;
	END IF;
	IF old IS NOT NULL THEN
		-- only the main heap is rewritten: the jsonb stays where it is
		EXECUTE format('UPDATE %1$s n SET first_seen = o.first_seen FROM %2$s o'
			       ' WHERE o.%3$I = n.%3$I AND o.first_seen < n.first_seen',
			       p_new, old, p_key);
	END IF;
	BEGIN
		PERFORM index_like_parent(p_parent, p_new);
	EXCEPTION WHEN unique_violation THEN
		-- a record seen twice (it moved between pages while they were
		-- read): keep the latest attempt's copy
		EXECUTE format('DELETE FROM %1$s WHERE ctid IN (SELECT ctid FROM (SELECT ctid,'
			       ' row_number() OVER (PARTITION BY %2$I ORDER BY attempt DESC) AS rn'
			       ' FROM %1$s) d WHERE rn > 1)', p_new, p_key);
		PERFORM index_like_parent(p_parent, p_new);
	END;
	EXECUTE format('SELECT count(*) FROM %s', p_new) INTO n;
	IF old IS NOT NULL THEN
		EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', p_parent, old);
		EXECUTE format('DROP TABLE %s', old);
	END IF;
	EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%L)', p_parent, p_new,
		       p_source);
	RETURN n;
END $$;
