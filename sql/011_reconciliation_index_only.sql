-- 011_reconciliation_index_only: serial_mismatches from the indexes alone.
--
-- serial_mismatches joins every serial both systems know (900,000 pairs in
-- a district of a million devices) and each pair's Syncro contact. Read
-- from the tables, that is two hash joins over the rows' heaps: over a
-- second at that scale. Here the serial key indexes carry the names and
-- users the comparison needs, and a contacts index their names and e-mail
-- addresses, so that the pairs come from a merge join of two index-only
-- scans, already in serial order, and the contacts from a hash built
-- from an index: about 0.6 s on two cores.
--
-- Names in an index entry: an entry must fit in a third of a page (2.7 kB).
-- A device whose name and user together are longer fails that index only
-- (index_partitions() logs it and builds the others); the view then reads
-- the tables, as before: slower, same answer.

UPDATE partition_indexes
SET definition = '(serial_key) INCLUDE (source, device_key, user_id, device_name, user_name,'
		 ' user_email) WHERE serial_key IS NOT NULL'
WHERE table_name = 'mosyle_devices' AND name = 'serial_key';
UPDATE partition_indexes
SET definition = '(serial_key) INCLUDE (source, asset_id, contact_id, name)'
		 ' WHERE serial_key IS NOT NULL'
WHERE table_name = 'syncro_assets' AND name = 'serial_key';
INSERT INTO partition_indexes (table_name, name, definition) VALUES
('syncro_contacts', 'names', '(source, contact_id) INCLUDE (name, email)');

-- The partitions of today get the new definitions: their serial key
-- indexes go, and index_partitions() builds them again.
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT i.oid::regclass AS idx
		FROM partition_indexes p
		JOIN pg_inherits h ON h.inhparent = to_regclass(p.table_name)
		JOIN pg_class c ON c.oid = h.inhrelid
		JOIN pg_class i ON i.relnamespace = c.relnamespace
			       AND i.relname = left(c.relname, 62 - length(p.name)) || '_' || p.name
		WHERE p.name = 'serial_key'
	LOOP
		EXECUTE format('DROP INDEX %s', r.idx);
	END LOOP;
END $$;
SELECT index_partitions(NULL);

-- The tables a run of p_source has just put in place: its current
-- partition of every partitioned table, for the VACUUM (ANALYZE) invsync
-- runs after the commit (a comma-separated list, names quoted as needed;
-- NULL if none). A new partition has no statistics and no visibility map
-- until then, and after a reload half its row versions are dead (the
-- first_seen carry-over): the planner guesses, and index-only scans read
-- the table, until autovacuum comes by.
CREATE FUNCTION source_partitions(p_source text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY c.relname)
	FROM pg_partitioned_table pt
	JOIN pg_class p ON p.oid = pt.partrelid
	JOIN pg_inherits h ON h.inhparent = p.oid
	JOIN pg_class c ON c.oid = h.inhrelid
	WHERE p.relnamespace = current_schema()::regnamespace
	  AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%L)', p_source)
$$;

-- Same columns and answer as in 009. The planner, which cannot tell how
-- few pairs disagree, would rather hash the tables than merge the indexes,
-- and would not spread the merge over workers: told otherwise here, for
-- this function only. A partition whose index is missing is still read
-- (enable_seqscan = off only makes that the last resort).
CREATE OR REPLACE FUNCTION serial_mismatches()
RETURNS TABLE (serial_key text, mosyle_source text, device_key text, mosyle_name text,
	       mosyle_user text, mosyle_user_email text, syncro_source text, asset_id bigint,
	       syncro_name text, syncro_contact text, syncro_contact_email text,
	       name_differs boolean, user_differs boolean)
LANGUAGE sql STABLE
SET work_mem = '64MB' SET jit = off SET enable_seqscan = off SET parallel_tuple_cost = 0.01 AS $$
	SELECT d.serial_key, d.source, d.device_key, d.device_name, d.user_name, d.user_email,
	       a.source, a.asset_id, a.name, c.name, c.email,
	       x.name_differs, x.user_differs
	FROM mosyle_devices d
	JOIN syncro_assets a ON a.serial_key = d.serial_key
	LEFT JOIN syncro_contacts c ON c.source = a.source AND c.contact_id = a.contact_id
	-- equal as they are first: most pairs agree, and need no lower()
	CROSS JOIN LATERAL (SELECT
		d.device_name IS DISTINCT FROM a.name
		AND lower(btrim(d.device_name)) IS DISTINCT FROM lower(btrim(a.name)) AS name_differs,
		NOT (coalesce(d.user_email = c.email, false)
		     OR coalesce(lower(btrim(d.user_email)) = lower(btrim(c.email)), false)
		     OR coalesce(lower(btrim(d.user_name)) = lower(btrim(c.name)), false)
		     OR (coalesce(d.user_id, '') = '' AND c.contact_id IS NULL))
			AS user_differs) x
	WHERE x.name_differs OR x.user_differs
$$;
