-- citus-check.sql: run invsync's load and swap SQL the way a run does, on a
-- Citus cluster, and check the results (docs/SCALING.md, "Citus").
--
-- This script has not been run against Citus. Without Citus it runs the
-- same statements on plain PostgreSQL, skipping the distribution and its
-- checks; invsync's tests run it that way (e2e_sql_citus_check_script).
--
-- On the coordinator, with a role that may create tables in the schema:
--
--   1. A configuration whose [database] section names a schema used for
--      nothing else (schema = invsync_citus_check), and
--          invsync migrate -c FILE
--   2. PGOPTIONS='-c search_path=invsync_citus_check,pg_catalog' \
--          psql -X -q -At -f docs/citus-check.sql
--      with the connection settings invsync uses. The first check that
--      fails stops the script with "citus-check failed: ..."; the last
--      line says "citus-check: passed" and whether Citus distributed the
--      tables.
--   3. DROP SCHEMA invsync_citus_check CASCADE;
--
-- What it does, for two sources ("check_a", "check_b"), two runs each:
-- distributes the data tables by source in one co-location group (with
-- Citus); creates load tables with stage_rows() in transactions of their
-- own, as the loads do (with Citus each must come out distributed with
-- its parent); fills them with rows that repeat keys across attempts and
-- within one page, and with a discarded attempt; swaps them in with
-- swap_endpoint() in one transaction per source, as the commit does, with
-- citus.multi_task_query_log_level = error so that any statement the
-- swap runs on more than one shard fails the check; then checks the rows,
-- first_seen, the history, the run log, the placement of every partition,
-- and that drop_load_tables() removes the table of a run that died.
--
-- Not covered here (see docs/SCALING.md): a real sync with COPY (sync the
-- simulator into the same schema for that), lock_timeout against a lock
-- held on a worker, killing a run mid-load.

\set ON_ERROR_STOP on
-- results are not shown, only a failed check's error and the last line
\o /dev/null
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.check(ok boolean, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF ok IS NOT TRUE THEN
		RAISE EXCEPTION 'citus-check failed: %', what;
	END IF;
END $$;

-- Whether Citus is installed (its catalog of distributed tables exists).
CREATE FUNCTION pg_temp.citus() RETURNS boolean
LANGUAGE sql AS $$ SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL $$;

-- With Citus: the co-location group of a table, NULL if not distributed
-- (and without Citus).
CREATE FUNCTION pg_temp.colocation(t regclass) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	g int;
BEGIN
	IF NOT pg_temp.citus() THEN
		RETURN NULL;
	END IF;
	EXECUTE 'SELECT colocationid FROM pg_catalog.pg_dist_partition'
		' WHERE logicalrelid = $1 AND partmethod = ''h''' INTO g USING t;
	RETURN g;
END $$;

-- A migrated schema (010 or later), nothing loaded yet.
SELECT pg_temp.check(to_regclass('schema_migrations') IS NOT NULL
		     AND (SELECT max(version) FROM schema_migrations) >= 10
		     AND EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'swap_endpoint'
				 AND pronamespace = current_schema()::regnamespace),
		     'search_path does not start with a schema migrated by invsync 010 or later');
SELECT pg_temp.check(NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
				 WHERE p.relnamespace = current_schema()::regnamespace),
		     'the schema already holds data: use a schema of its own');

-- ---- distribution (Citus only) ----------------------------------------------

DO $$
DECLARE
	t text;
BEGIN
	IF NOT pg_temp.citus() THEN
		RETURN;
	END IF;
	EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''source'')'
	USING 'mosyle_devices'::regclass;
	FOREACH t IN ARRAY ARRAY['mosyle_users', 'mosyle_classes', 'mosyle_device_groups',
				 'mosyle_device_group_members', 'mosyle_accounts',
				 'mosyle_custom_attributes', 'mosyle_admin_logs', 'syncro_assets',
				 'syncro_customers', 'syncro_contacts', 'syncro_asset_types',
				 'record_changes', 'removed_records']
	LOOP
		EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''source'','
			' colocate_with => ''mosyle_devices'')' USING t::regclass;
	END LOOP;
END $$;

-- ---- run 1: the first load of each source -----------------------------------

-- every load table made, by name (as stage_rows() returns it)
CREATE TEMP TABLE loads (run bigint, source text, parent regclass, t text);

INSERT INTO sync_runs (run_id, source, kind) VALUES
	(900001, 'check_a', 'mosyle'), (900001, 'check_b', 'mosyle');

-- each load table in a transaction of its own, as a load creates it
INSERT INTO loads SELECT 900001, 'check_a', 'mosyle_devices',
	stage_rows('mosyle_devices', 900001, 'check_a');
INSERT INTO loads SELECT 900001, 'check_a', 'mosyle_admin_logs',
	stage_rows('mosyle_admin_logs', 900001, 'check_a');
INSERT INTO loads SELECT 900001, 'check_b', 'mosyle_devices',
	stage_rows('mosyle_devices', 900001, 'check_b');
INSERT INTO loads SELECT 900001, 'check_b', 'mosyle_admin_logs',
	stage_rows('mosyle_admin_logs', 900001, 'check_b');

-- with Citus, each load table is distributed with its parent
SELECT pg_temp.check(NOT pg_temp.citus()
		     OR pg_temp.colocation(t::regclass) = pg_temp.colocation(parent),
		     format('load table %s is not distributed with %s', t, parent))
FROM loads;

-- Devices: A and B in attempt 1 (page 1); B again in attempt 2 (page 2),
-- with a new name; C twice in attempt 2, different; D twice alike in
-- attempt 2; Z in attempt 3, which is discarded. Admin logs: entry 1 in
-- attempts 1 and 2.
DO $$
DECLARE
	l record;
BEGIN
	FOR l IN SELECT * FROM loads WHERE run = 900001 LOOP
		IF l.parent = 'mosyle_devices'::regclass THEN
			EXECUTE format('INSERT INTO %s (attempt, page, device_key, os, device_name, attrs)'
				       ' VALUES (1, 1, ''A'', ''ios'', ''a'', ''{}''),'
				       ' (1, 1, ''B'', ''ios'', ''b'', ''{}''),'
				       ' (2, 2, ''B'', ''ios'', ''b2'', ''{}''),'
				       ' (2, 2, ''C'', ''ios'', ''c'', ''{"n": 2}''),'
				       ' (2, 2, ''C'', ''ios'', ''c'', ''{"n": 1}''),'
				       ' (2, 2, ''D'', ''mac'', ''d'', ''{}''),'
				       ' (2, 2, ''D'', ''mac'', ''d'', ''{}''),'
				       ' (3, 3, ''Z'', ''ios'', ''z'', ''{}'')', l.t);
		ELSE
			EXECUTE format('INSERT INTO %s (attempt, page, log_id, action, attrs)'
				       ' VALUES (1, 1, ''1'', ''first'', ''{}''),'
				       ' (2, 2, ''1'', ''again'', ''{}'')', l.t);
		END IF;
	END LOOP;
END $$;

-- The swap of one source, as invsync commits it (src/run.c, source_swap):
-- one transaction, the endpoint rows, swap_endpoint() per table in a fixed
-- order, the run's row. Any statement on more than one shard fails it.
CREATE FUNCTION pg_temp.swap(p_run bigint, p_source text, p_discard int[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO sync_run_endpoints (run_id, source, endpoint)
	VALUES (p_run, p_source, 'devices/ios'), (p_run, p_source, 'devices/mac'),
	       (p_run, p_source, 'admin_logs');
	PERFORM swap_endpoint(p_run, p_source, 'devices/ios', 'mosyle_devices',
			      (SELECT t FROM loads WHERE run = p_run AND source = p_source
			       AND parent = 'mosyle_devices'::regclass)::regclass,
			      p_discard, 'device_key', false);
	-- per OS, as the commit counts them
	UPDATE sync_run_endpoints e SET loaded = coalesce(c.n, 0)
	FROM sync_run_endpoints e2
	LEFT JOIN (SELECT os, count(*) AS n FROM mosyle_devices WHERE source = p_source
		   GROUP BY os) c ON e2.endpoint = 'devices/' || c.os
	WHERE e.run_id = p_run AND e.source = p_source AND e.endpoint LIKE 'devices/%'
	  AND e2.run_id = e.run_id AND e2.source = e.source AND e2.endpoint = e.endpoint;
	PERFORM swap_endpoint(p_run, p_source, 'admin_logs', 'mosyle_admin_logs',
			      (SELECT t FROM loads WHERE run = p_run AND source = p_source
			       AND parent = 'mosyle_admin_logs'::regclass)::regclass,
			      '{}', 'log_id', true);
	UPDATE sync_runs SET status = 'succeeded', finished_at = clock_timestamp(),
	       loaded = (SELECT coalesce(sum(loaded), 0) FROM sync_run_endpoints
			 WHERE run_id = p_run AND source = p_source)
	WHERE run_id = p_run AND source = p_source;
END $$;

BEGIN;
SET LOCAL lock_timeout = '10s';
SET LOCAL citus.multi_task_query_log_level = error;
SELECT pg_temp.swap(900001, 'check_a', '{3}');
COMMIT;
BEGIN;
SET LOCAL lock_timeout = '10s';
SET LOCAL citus.multi_task_query_log_level = error;
SELECT pg_temp.swap(900001, 'check_b', '{3}');
COMMIT;

SELECT pg_temp.check(string_agg(format('%s %s %s %s %s', source, device_key, device_name,
				       attempt, coalesce(attrs->>'n', '-')), ', '
			    ORDER BY source, device_key)
		     = 'check_a A a 1 -, check_a B b2 2 -, check_a C c 2 2, check_a D d 2 -, '
		       'check_b A a 1 -, check_b B b2 2 -, check_b C c 2 2, check_b D d 2 -',
		     'run 1: the devices are not one row per key, the latest attempt''s')
FROM mosyle_devices;
SELECT pg_temp.check(string_agg(source || ' ' || log_id || ' ' || action, ', '
			    ORDER BY source, log_id) = 'check_a 1 again, check_b 1 again',
		     'run 1: the admin logs are not the latest attempt''s')
FROM mosyle_admin_logs;
SELECT pg_temp.check(string_agg(format('%s %s %s', source, endpoint, loaded), ', '
			    ORDER BY source, endpoint)
		     = 'check_a admin_logs 1, check_a devices/ios 3, check_a devices/mac 1, '
		       'check_b admin_logs 1, check_b devices/ios 3, check_b devices/mac 1',
		     'run 1: sync_run_endpoints.loaded')
FROM sync_run_endpoints WHERE run_id = 900001;
SELECT pg_temp.check(count(*) = 2 AND bool_and(status = 'succeeded' AND loaded = 5),
		     'run 1: sync_runs')
FROM sync_runs WHERE run_id = 900001;
SELECT pg_temp.check(count(*) = 0, 'run 1: a first load records no history')
FROM record_changes;

-- ---- run 2 of check_a: replaced, with history -------------------------------

INSERT INTO sync_runs (run_id, source, kind) VALUES (900002, 'check_a', 'mosyle');
INSERT INTO loads SELECT 900002, 'check_a', 'mosyle_devices',
	stage_rows('mosyle_devices', 900002, 'check_a');
INSERT INTO loads SELECT 900002, 'check_a', 'mosyle_admin_logs',
	stage_rows('mosyle_admin_logs', 900002, 'check_a');

-- A renamed, B gone, C and D kept, E new; admin log 1 again and 2 new
DO $$
BEGIN
	EXECUTE format('INSERT INTO %s (attempt, page, device_key, os, device_name, attrs)'
		       ' VALUES (1, 1, ''A'', ''ios'', ''a renamed'', ''{}''),'
		       ' (1, 1, ''C'', ''ios'', ''c'', ''{"n": 2}''),'
		       ' (1, 1, ''D'', ''mac'', ''d'', ''{}''),'
		       ' (2, 2, ''E'', ''ios'', ''e'', ''{}''),'
		       ' (2, 2, ''E'', ''ios'', ''e'', ''{}'')',
		       (SELECT t FROM loads WHERE run = 900002 AND parent = 'mosyle_devices'::regclass));
	EXECUTE format('INSERT INTO %s (attempt, page, log_id, action, attrs)'
		       ' VALUES (1, 1, ''1'', ''changed'', ''{}''), (1, 1, ''2'', ''second'', ''{}'')',
		       (SELECT t FROM loads WHERE run = 900002
			AND parent = 'mosyle_admin_logs'::regclass));
END $$;

BEGIN;
SET LOCAL lock_timeout = '10s';
SET LOCAL citus.multi_task_query_log_level = error;
SELECT pg_temp.swap(900002, 'check_a', '{}');
COMMIT;

SELECT pg_temp.check(string_agg(format('%s %s %s', device_key, device_name,
				       CASE WHEN first_seen < last_seen THEN 'kept' ELSE 'new' END),
				', ' ORDER BY device_key)
		     = 'A a renamed kept, C c kept, D d kept, E e new',
		     'run 2: the devices, or first_seen carried over')
FROM mosyle_devices WHERE source = 'check_a';
SELECT pg_temp.check(string_agg(format('%s %s %s', change, record_key, coalesce(field, '-')), ', '
				ORDER BY change, record_key, field)
		     = 'appeared E -, changed A device_name, removed B -',
		     'run 2: record_changes')
FROM record_changes WHERE run_id = 900002 AND source = 'check_a';
SELECT pg_temp.check(count(*) = 1 AND bool_and(row_data->>'device_name' = 'b2'),
		     'run 2: removed_records')
FROM removed_records WHERE source = 'check_a' AND record_key = 'B';
SELECT pg_temp.check(string_agg(log_id || ' ' || action, ', ' ORDER BY log_id)
		     = '1 again, 2 second',
		     'run 2: the admin logs (entry 1 kept as it was, entry 2 added)')
FROM mosyle_admin_logs WHERE source = 'check_a';
SELECT pg_temp.check(string_agg(format('%s %s', endpoint, loaded), ', ' ORDER BY endpoint)
		     = 'admin_logs 1, devices/ios 3, devices/mac 1',
		     'run 2: sync_run_endpoints.loaded')
FROM sync_run_endpoints WHERE run_id = 900002;
SELECT pg_temp.check(count(*) = 4, 'run 2: check_b was touched')
FROM mosyle_devices WHERE source = 'check_b' AND run_id = 900001;

-- every partition is the load table of the run that committed it, and
-- with Citus distributed in the parent's co-location group
SELECT pg_temp.check(string_agg(format('%s %s', p.relname, r.run), ', '
				ORDER BY p.relname, r.source)
		     = 'mosyle_admin_logs 900001, mosyle_admin_logs 900001, '
		       'mosyle_devices 900002, mosyle_devices 900001',
		     'the partitions are not the committed load tables')
FROM pg_inherits i
JOIN pg_class p ON p.oid = i.inhparent
JOIN loads r ON r.t = i.inhrelid::regclass::text
WHERE p.relnamespace = current_schema()::regnamespace;
SELECT pg_temp.check(NOT pg_temp.citus()
		     OR pg_temp.colocation(c.oid) = pg_temp.colocation('mosyle_devices'),
		     format('partition %s is not in the co-location group', c.oid::regclass))
FROM pg_inherits i
JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_class c ON c.oid = i.inhrelid
WHERE p.relnamespace = current_schema()::regnamespace AND c.relkind = 'r';
-- the old partition and the appended load table are gone
SELECT pg_temp.check(to_regclass(t) IS NULL, format('%s was not dropped', t))
FROM loads
WHERE (run = 900001 AND source = 'check_a' AND parent = 'mosyle_devices'::regclass)
   OR (run = 900002 AND parent = 'mosyle_admin_logs'::regclass);

-- ---- a run that died: its load table is dropped by the next -----------------

INSERT INTO loads SELECT 900003, 'check_a', 'mosyle_users',
	stage_rows('mosyle_users', 900003, 'check_a');
SELECT pg_temp.check(drop_load_tables('check_a', 900004) = 1, 'drop_load_tables() dropped nothing');
SELECT pg_temp.check(to_regclass('mosyle_users_r900003_' || substr(md5('check_a'), 1, 12)) IS NULL,
		     'the dead run''s load table is still there');

\o
SELECT 'citus-check: passed'
       || CASE WHEN pg_temp.citus() THEN ', the tables distributed by Citus'
	       ELSE ' without Citus (nothing distributed)' END AS result;
