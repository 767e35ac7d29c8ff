-- 010_distributable_swap: the load and swap SQL in a form Citus can
-- distribute by source (docs/SCALING.md, "Citus"). On plain PostgreSQL the
-- results are those of 002, 003 and 007; what changes:
--
-- * Every statement that commit_rows, append_rows and record_history run
--   on a load table, an old partition or a parent names the source as a
--   constant (source = '...'), and old and new rows are joined on source
--   as well as on the key. With the tables distributed by source and
--   co-located, each such statement concerns one shard.
-- * A key loaded twice is deduplicated without ctid (which identifies a
--   row within one shard only), set-based: the copy of the latest attempt
--   is kept, as before. Each page attempt has an id of its own within a
--   run, so two copies share an attempt (and page) only when one answer
--   repeated the record; of those the copy whose attrs sorts last is kept,
--   and identical copies become one row. The choice no longer depends on
--   the order in which rows were stored, so a repeated record does not
--   change (and show up in record_changes) from one run to the next.
--   append_rows keeps the same copy.
-- * swap_endpoint() swaps one endpoint's rows in and then writes the count
--   to sync_run_endpoints with a plain UPDATE. The commit called
--   commit_rows() inside an UPDATE of sync_run_endpoints, and Citus
--   refuses VOLATILE functions in an UPDATE of a distributed table.
-- * stage_rows() distributes the load table like its parent when Citus
--   lists the parent as hash-distributed in pg_dist_partition. Without
--   Citus that catalog does not exist and stage_rows() does what it did.
--
-- None of this has been run against Citus.

-- This migration replaces four functions as 002, 003 and 007 left them.
-- If a migration before this one has changed any of them since, replacing
-- it here would silently undo that change: stop instead.
DO $$
DECLARE
	f record;
BEGIN
	FOR f IN
		SELECT e.fn, md5(p.prosrc) AS got, e.want
		FROM (VALUES ('stage_rows(regclass,bigint,text,text)', 'f6fdc016e48c3e6a66b0077cf06a3c06'),
			     ('commit_rows(regclass,regclass,text,integer[],text)',
			      '1a49b817921f488bc6a299a5293f7a50'),
			     ('append_rows(regclass,regclass,text,integer[],text)',
			      '31196f32015b8d1047c474444f7933bd'),
			     ('record_history(regclass,regclass,regclass,text,text)',
			      'af021c4472959c27caefd65b1d5bdafd')) AS e(fn, want)
		LEFT JOIN pg_proc p ON p.oid = to_regprocedure(e.fn)
	LOOP
		IF f.got IS DISTINCT FROM f.want THEN
			RAISE EXCEPTION '010_distributable_swap replaces %, but an earlier migration'
					' changed it: carry that change into 010', f.fn;
		END IF;
	END LOOP;
END $$;

-- As in 002; then, under Citus, the load table is distributed like its
-- parent while it is empty (after its defaults are set): the COPY goes to
-- the source's shard, and ATTACH PARTITION finds it co-located with the
-- parent. The catalog is read and the function called through EXECUTE, so
-- that nothing here refers to Citus unless Citus is there.
CREATE OR REPLACE FUNCTION stage_rows(p_parent regclass, p_run bigint, p_source text,
				      p_tablespace text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	t text := format('%s_r%s_%s', p_parent::text, p_run, substr(md5(p_source), 1, 12));
	cols text;
	checks text;
	storage text;
	distributed boolean := false;
BEGIN
	-- what LIKE ... INCLUDING DEFAULTS INCLUDING COMPRESSION INCLUDING
	-- STORAGE copied: type, collation, NOT NULL, default, compression
	SELECT string_agg(format('%I %s%s%s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
				 CASE WHEN a.attcollation <> ty.typcollation
				      THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END,
				 CASE a.attcompression WHEN 'l' THEN ' COMPRESSION lz4'
						       WHEN 'p' THEN ' COMPRESSION pglz' ELSE '' END,
				 CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
				 coalesce(' DEFAULT ' || pg_get_expr(d.adbin, 0), '')),
			  ', ' ORDER BY a.attnum),
	       string_agg(format('ALTER %I SET STORAGE %s', a.attname,
				 CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
						   WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END),
			  ', ' ORDER BY a.attnum) FILTER (WHERE a.attstorage <> ty.typstorage)
	INTO cols, storage
	FROM pg_attribute a
	JOIN pg_type ty ON ty.oid = a.atttypid
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	LEFT JOIN pg_collation co ON co.oid = a.attcollation
	LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
	WHERE a.attrelid = p_parent AND a.attnum > 0 AND NOT a.attisdropped;

	SELECT string_agg(format(', CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)), ''
			  ORDER BY c.conname)
	INTO checks
	FROM pg_constraint c
	WHERE c.conrelid = p_parent AND c.contype = 'c';

	EXECUTE format('CREATE TABLE %I (%s%s, CHECK (source = %L))%s', t, cols,
		       coalesce(checks, ''), p_source,
		       CASE WHEN p_tablespace IS NOT NULL
			    THEN format(' TABLESPACE %I', p_tablespace) ELSE '' END);
	IF storage IS NOT NULL THEN
		EXECUTE format('ALTER TABLE %I %s', t, storage);
	END IF;
	EXECUTE format('ALTER TABLE %I ALTER source SET DEFAULT %L, ALTER run_id SET DEFAULT %s,'
		       ' ALTER first_seen SET DEFAULT now(), ALTER last_seen SET DEFAULT now()',
		       t, p_source, p_run);

	IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
		EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition'
			' WHERE logicalrelid = $1 AND partmethod = ''h'')'
		INTO distributed USING p_parent;
	END IF;
	IF distributed THEN
		EXECUTE 'SELECT pg_catalog.create_distributed_table($1, $2, colocate_with => $3)'
		USING quote_ident(t)::regclass, 'source', p_parent::text;
	END IF;
	RETURN quote_ident(t);
END $$;

-- As in 007, each statement on a data table limited to p_source.
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
		EXECUTE format('DELETE FROM %s WHERE source = %L AND attempt = ANY ($1)', p_new,
			       p_source) USING p_discard;
	END IF;
	IF old IS NOT NULL THEN
		-- only the main heap is rewritten: the jsonb stays where it is
		EXECUTE format('UPDATE %1$s n SET first_seen = o.first_seen FROM %2$s o'
			       ' WHERE n.source = %3$L AND o.source = %3$L AND o.source = n.source'
			       ' AND %4$s AND o.first_seen < n.first_seen', p_new, old, p_source, same);
	END IF;
	BEGIN
		PERFORM index_like_parent(p_parent, p_new);
	EXCEPTION WHEN unique_violation THEN
		-- a record seen twice (it moved between pages while they were
		-- read, or one answer repeated it): every copy of such a key is
		-- taken out and one put back, the latest attempt's (see above)
		EXECUTE format('WITH d AS (DELETE FROM %1$s n WHERE n.source = %3$L AND (%2$s) IN'
			       ' (SELECT %2$s FROM %1$s WHERE source = %3$L GROUP BY %2$s'
			       '  HAVING count(*) > 1) RETURNING n.*)'
			       ' INSERT INTO %1$s SELECT DISTINCT ON (source, %2$s) * FROM d'
			       ' ORDER BY source, %2$s, attempt DESC, page DESC, attrs DESC',
			       p_new, keys, p_source);
		PERFORM index_like_parent(p_parent, p_new);
	END;
	EXECUTE format('SELECT count(*) FROM %s WHERE source = %L', p_new, p_source) INTO n;
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

-- As in 003, each statement limited to p_source, and of a key loaded twice
-- the copy commit_rows would keep: the rows to add are deduplicated before
-- the insert rather than by the order in which the insert meets them.
CREATE OR REPLACE FUNCTION append_rows(p_parent regclass, p_new regclass, p_source text,
				       p_discard int[], p_key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	keys text;
	cols text;
	n bigint;
BEGIN
	IF current_partition(p_parent, p_source) IS NULL THEN
		RETURN commit_rows(p_parent, p_new, p_source, p_discard, p_key);
	END IF;
	SELECT string_agg(quote_ident(k), ', ' ORDER BY i) INTO keys
	FROM unnest(key_column_list(p_key)) WITH ORDINALITY AS c(k, i);
	SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
	FROM pg_attribute a
	WHERE a.attrelid = p_parent AND a.attnum > 0 AND NOT a.attisdropped;

	IF cardinality(p_discard) > 0 THEN
		EXECUTE format('DELETE FROM %s WHERE source = %L AND attempt = ANY ($1)', p_new,
			       p_source) USING p_discard;
	END IF;
	EXECUTE format('INSERT INTO %1$s (%2$s) SELECT DISTINCT ON (source, %4$s) %2$s FROM %3$s'
		       ' WHERE source = %5$L'
		       ' ORDER BY source, %4$s, attempt DESC, page DESC, attrs DESC'
		       ' ON CONFLICT (source, %4$s) DO NOTHING', p_parent, cols, p_new, keys, p_source);
	GET DIAGNOSTICS n = ROW_COUNT;
	EXECUTE format('DROP TABLE %s', p_new);
	RETURN n;
END $$;

-- As in 007, both tables read through p_source and joined on source too.
CREATE OR REPLACE FUNCTION record_history(p_parent regclass, p_old regclass, p_new regclass,
					  p_source text, p_key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	tname text;
	run bigint;
	same text;   -- o.source = n.source AND o.k1 = n.k1 AND ...
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

	SELECT 'o.source = n.source AND '
	       || string_agg(format('o.%1$I = n.%1$I', k), ' AND ' ORDER BY i),
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
	-- reach the unpivot. Each side is read through p_source in a subquery
	-- (a condition on the source in WHERE would drop the rows the full
	-- join leaves without a partner).
	EXECUTE format(
		'WITH w AS (INSERT INTO record_changes (source, table_name, record_key, run_id, changed_at,'
		' change, field, old_value, new_value)'
		' SELECT %1$L, %2$L, coalesce(j.okey, j.nkey), %3$s, now(), c.change, c.field,'
		' c.old_value, c.new_value'
		' FROM (SELECT CASE WHEN o.source IS NOT NULL THEN %4$s END AS okey,'
		'       CASE WHEN n.source IS NOT NULL THEN %5$s END AS nkey, %6$s'
		'       FROM (SELECT * FROM %7$s WHERE source = %1$L) o'
		'       FULL JOIN (SELECT * FROM %8$s WHERE source = %1$L) n ON %9$s'
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
			' FROM %5$s o WHERE o.source = %1$L'
			' AND NOT EXISTS (SELECT 1 FROM %6$s n WHERE n.source = %1$L AND %7$s)',
			p_source, tname, okey, run, p_old, p_new, same);
	END IF;
	RETURN n;
END $$;

-- Swap one endpoint's loaded rows in (commit_rows, or append_rows when
-- p_append), then record how many rows that left current (or added) in
-- its sync_run_endpoints row, in the caller's transaction. The count is
-- computed first and written by a plain UPDATE: no function that changes
-- data runs inside the UPDATE. Fails if the run has no such endpoint row.
-- Returns the count.
CREATE FUNCTION swap_endpoint(p_run bigint, p_source text, p_endpoint text, p_parent regclass,
			      p_new regclass, p_discard int[], p_key text, p_append boolean)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	IF p_append THEN
		n := append_rows(p_parent, p_new, p_source, p_discard, p_key);
	ELSE
		n := commit_rows(p_parent, p_new, p_source, p_discard, p_key);
	END IF;
	UPDATE sync_run_endpoints SET loaded = n
	WHERE run_id = p_run AND source = p_source AND endpoint = p_endpoint;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'run % of source % has no endpoint %', p_run, quote_literal(p_source),
			quote_literal(p_endpoint);
	END IF;
	RETURN n;
END $$;
