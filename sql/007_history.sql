-- 007_history: what changed between a source's successive runs.
--
-- Each run replaces a source's partition as a whole (commit_rows), so
-- without this nothing says which devices came or went, or when a device
-- was renamed. commit_rows now compares the partition it is about to drop
-- with the one it attaches, in the same transaction, set-based (one join
-- of the two tables on their keys), and writes:
--   record_changes   one row per record that appeared or was removed, and
--                    one per tracked field of a kept record whose value
--                    changed (old and new value, as text);
--   removed_records  the last version of each record that disappeared,
--                    since dropping the old partition loses it.
-- Only the tables listed in history_tables (devices and Syncro assets) are
-- compared: the others (users, classes, group members, ...) are replaced
-- without history, which keeps the cost of a run where it was.
-- A source's first load records nothing: every record would "appear", a
-- million rows saying what the inventory itself says (first_seen).

-- The tables whose changes are recorded; enabled = false turns recording
-- off for one (make bench compares the two).
CREATE TABLE history_tables (
	table_name text    PRIMARY KEY, -- a partitioned table, e.g. mosyle_devices
	enabled    boolean NOT NULL DEFAULT true
);

-- The fields whose changes are recorded, per table. value_sql is an SQL
-- expression over the row, written with the alias r (r.device_name): the
-- value compared and stored, cast to text.
CREATE TABLE history_fields (
	table_name text NOT NULL REFERENCES history_tables ON DELETE CASCADE,
	field      text NOT NULL,
	value_sql  text NOT NULL,
	PRIMARY KEY (table_name, field)
);

INSERT INTO history_tables (table_name) VALUES ('mosyle_devices'), ('syncro_assets');
INSERT INTO history_fields (table_name, field, value_sql) VALUES
	('mosyle_devices', 'device_name',     'r.device_name'),
	('mosyle_devices', 'os_version',      'r.os_version'),
	('mosyle_devices', 'user_id',         'r.user_id'),
	('mosyle_devices', 'asset_tag',       'r.asset_tag'),
	('mosyle_devices', 'tags',            'r.tags'),
	('mosyle_devices', 'enrollment_type', 'r.enrollment_type'),
	-- the day only: the time of every check-in would change every run
	('mosyle_devices', 'last_checkin_day', '(r.last_checkin AT TIME ZONE ''UTC'')::date'),
	('syncro_assets',  'name',            'r.name'),
	('syncro_assets',  'customer_id',     'r.customer_id'),
	('syncro_assets',  'asset_serial',    'r.asset_serial'),
	('syncro_assets',  'asset_type',      'r.asset_type');

-- One row per change a run saw. record_key is the record's key columns as
-- text (several joined with '/', in key order: 'ios/12' for a group).
-- field, old_value and new_value are NULL for 'appeared' and 'removed'.
CREATE TABLE record_changes (
	source     text        NOT NULL,
	table_name text        NOT NULL,
	record_key text        NOT NULL,
	run_id     bigint      NOT NULL, -- the run that saw the change
	changed_at timestamptz NOT NULL, -- when that run committed (its transaction's start)
	change     text        NOT NULL CHECK (change IN ('appeared', 'removed', 'changed')),
	field      text,
	old_value  text,
	new_value  text
);
CREATE INDEX record_changes_source_at ON record_changes (source, changed_at);
CREATE INDEX record_changes_at ON record_changes (changed_at);
CREATE INDEX record_changes_record ON record_changes (source, table_name, record_key);

-- The last version of each record that disappeared from a source, kept
-- when the run that noticed dropped the partition holding it. A record
-- that comes back is current again (and 'appeared' in record_changes);
-- its row here stays, as a record of that earlier removal.
CREATE TABLE removed_records (
	source     text        NOT NULL,
	table_name text        NOT NULL,
	record_key text        NOT NULL,
	removed_at timestamptz NOT NULL,
	run_id     bigint      NOT NULL, -- the run that no longer saw it
	row_data   jsonb       NOT NULL  -- the row as it last was (attrs included)
);
CREATE INDEX removed_records_record ON removed_records (source, table_name, record_key);
CREATE INDEX removed_records_at ON removed_records (removed_at);

-- Record in record_changes and removed_records what differs between p_old
-- (the partition about to be dropped) and p_new (deduplicated, indexed),
-- for table p_parent of p_source, if history_tables lists it. p_key lists
-- the key columns, as commit_rows takes them; the run is the default of
-- p_new's run_id column (stage_rows sets it). Returns the number of
-- record_changes rows written.
CREATE FUNCTION record_history(p_parent regclass, p_old regclass, p_new regclass,
			       p_source text, p_key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	tname text;
	run bigint;
	same text;   -- o.k1 = n.k1 AND ...
	okey text;   -- the key of o as text
	nkey text;
	odiff text;  -- ROW(old values) for a quick "anything changed" test
	ndiff text;
	n bigint;
	removed bigint;
BEGIN
	SELECT c.relname INTO tname FROM pg_class c WHERE c.oid = p_parent;
	IF NOT EXISTS (SELECT 1 FROM history_tables WHERE table_name = tname AND enabled) THEN
		RETURN 0;
	END IF;
	SELECT pg_get_expr(d.adbin, d.adrelid)::bigint INTO run
	FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
	WHERE d.adrelid = p_new AND a.attname = 'run_id';
	IF run IS NULL THEN
		RAISE EXCEPTION '% has no run_id default: not a load table', p_new;
	END IF;

	SELECT string_agg(format('o.%1$I = n.%1$I', k), ' AND ' ORDER BY i),
	       'concat_ws(''/'', ' || string_agg(format('o.%I', k), ', ' ORDER BY i) || ')',
	       'concat_ws(''/'', ' || string_agg(format('n.%I', k), ', ' ORDER BY i) || ')'
	INTO same, okey, nkey
	FROM unnest(key_column_list(p_key)) WITH ORDINALITY AS c(k, i);

	-- \mr\. : the alias r, not the end of a longer name
	SELECT string_agg(format('(%s)', regexp_replace(f.value_sql, '\mr\.', 'o.', 'g')), ', '
			  ORDER BY f.field),
	       string_agg(format('(%s)', regexp_replace(f.value_sql, '\mr\.', 'n.', 'g')), ', '
			  ORDER BY f.field)
	INTO odiff, ndiff
	FROM history_fields f WHERE f.table_name = tname;

	-- One pass over both tables: the full join yields every record once,
	-- and only those that appeared, went or differ in some tracked field
	-- reach the unpivot.
	EXECUTE format(
		'WITH w AS (INSERT INTO record_changes (source, table_name, record_key, run_id, changed_at,'
		' change, field, old_value, new_value)'
		' SELECT %1$L, %2$L, coalesce(j.okey, j.nkey), %3$s, now(), c.change, c.field,'
		' c.old_value, c.new_value'
		' FROM (SELECT CASE WHEN o.source IS NOT NULL THEN %4$s END AS okey,'
		'       CASE WHEN n.source IS NOT NULL THEN %5$s END AS nkey, %6$s'
		'       FROM %7$s o FULL JOIN %8$s n ON %9$s'
		'       WHERE o.source IS NULL OR n.source IS NULL%10$s) j'
		' CROSS JOIN LATERAL ('
		'  SELECT ''appeared'', NULL::text, NULL::text, NULL::text WHERE j.okey IS NULL'
		'  UNION ALL SELECT ''removed'', NULL, NULL, NULL WHERE j.nkey IS NULL'
		'  UNION ALL SELECT ''changed'', v.field, v.old_value, v.new_value'
		'  FROM (VALUES %11$s) v(field, old_value, new_value)'
		'  WHERE j.okey IS NOT NULL AND j.nkey IS NOT NULL'
		'    AND v.old_value IS DISTINCT FROM v.new_value'
		' ) c(change, field, old_value, new_value)'
		' RETURNING change)'
		' SELECT count(*), count(*) FILTER (WHERE change = ''removed'') FROM w',
		p_source, tname, run, okey, nkey,
		-- the tracked values, renamed so the lateral part can read them
		coalesce((SELECT string_agg(format('(%s)::text AS o_%s, (%s)::text AS n_%s',
						   regexp_replace(f.value_sql, '\mr\.', 'o.', 'g'), i,
						   regexp_replace(f.value_sql, '\mr\.', 'n.', 'g'), i),
					    ', ' ORDER BY i)
			  FROM (SELECT value_sql, row_number() OVER (ORDER BY field) AS i
				FROM history_fields WHERE table_name = tname) f), 'NULL AS none'),
		p_old, p_new, same,
		CASE WHEN odiff IS NULL THEN ''
		     ELSE format(' OR ROW(%s) IS DISTINCT FROM ROW(%s)', odiff, ndiff) END,
		coalesce((SELECT string_agg(format('(%L, j.o_%s, j.n_%s)', field, i, i), ', '
					    ORDER BY i)
			  FROM (SELECT field, row_number() OVER (ORDER BY field) AS i
				FROM history_fields WHERE table_name = tname) f),
			 '(NULL::text, NULL::text, NULL::text)')) INTO n, removed;

	IF removed > 0 THEN
		EXECUTE format(
			'INSERT INTO removed_records (source, table_name, record_key, removed_at,'
			' run_id, row_data)'
			' SELECT %1$L, %2$L, %3$s, now(), %4$s, to_jsonb(o)'
			' FROM %5$s o WHERE NOT EXISTS (SELECT 1 FROM %6$s n WHERE %7$s)',
			p_source, tname, okey, run, p_old, p_new, same);
	END IF;
	RETURN n;
END $$;

-- As in 003, and the history recorded just before the old partition goes.
CREATE OR REPLACE FUNCTION commit_rows(p_parent regclass, p_new regclass, p_source text,
				       p_discard int[], p_key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	old regclass := current_partition(p_parent, p_source);
	keys text;  -- the key columns, quoted, comma-separated
	same text;  -- o.k1 = n.k1 AND o.k2 = n.k2 ...
	n bigint;
BEGIN
	SELECT string_agg(quote_ident(k), ', ' ORDER BY i),
	       string_agg(format('o.%1$I = n.%1$I', k), ' AND ' ORDER BY i)
	INTO keys, same
	FROM unnest(key_column_list(p_key)) WITH ORDINALITY AS c(k, i);

	IF cardinality(p_discard) > 0 THEN
		EXECUTE format('DELETE FROM %s WHERE attempt = ANY ($1)', p_new) USING p_discard;
	END IF;
	IF old IS NOT NULL THEN
		-- only the main heap is rewritten: the jsonb stays where it is
		EXECUTE format('UPDATE %s n SET first_seen = o.first_seen FROM %s o'
			       ' WHERE %s AND o.first_seen < n.first_seen', p_new, old, same);
	END IF;
	BEGIN
		PERFORM index_like_parent(p_parent, p_new);
	EXCEPTION WHEN unique_violation THEN
		-- a record seen twice (it moved between pages while they were
		-- read): keep the latest attempt's copy
		EXECUTE format('DELETE FROM %1$s WHERE ctid IN (SELECT ctid FROM (SELECT ctid,'
			       ' row_number() OVER (PARTITION BY %2$s ORDER BY attempt DESC) AS rn'
			       ' FROM %1$s) d WHERE rn > 1)', p_new, keys);
		PERFORM index_like_parent(p_parent, p_new);
	END;
	EXECUTE format('SELECT count(*) FROM %s', p_new) INTO n;
	IF old IS NOT NULL THEN
		-- one key per row on both sides now
		PERFORM record_history(p_parent, old, p_new, p_source, p_key);
		EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', p_parent, old);
		EXECUTE format('DROP TABLE %s', old);
	END IF;
	EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%L)', p_parent, p_new,
		       p_source);
	RETURN n;
END $$;
