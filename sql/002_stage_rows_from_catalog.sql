-- 002_stage_rows_from_catalog: load tables that lock nothing a commit needs,
-- carry the parent's CHECK constraints, and may live in a tablespace.
--
-- stage_rows() of 001 created the load table with LIKE the parent, and LIKE
-- keeps a lock on the parent until the run's transaction ends. A commit
-- detaches the source's old partition, which needs the parent to itself:
-- two sources loading at the same time waited for each other at commit
-- (deadlock), and a run was held up by every other run still loading. The
-- columns are now read from the catalog, which locks nothing.
--
-- ATTACH PARTITION also requires the CHECK constraints of the parent: the
-- load table now gets them, so rows that break one fail the load (with the
-- server's message) instead of every later commit failing.

DROP FUNCTION stage_rows(regclass, bigint, text);

-- Create the table a run of one source loads into, inside the caller's
-- transaction (so it vanishes if the run fails or the process dies), in
-- p_tablespace (NULL: the default one), and return its name for COPY.
-- Rows carry the page attempt that produced them, so rows of an attempt
-- that failed halfway, or of a page past the end, can be dropped at commit.
CREATE FUNCTION stage_rows(p_parent regclass, p_run bigint, p_source text,
			   p_tablespace text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	t text := format('%s_r%s_%s', p_parent::text, p_run, substr(md5(p_source), 1, 12));
	cols text;
	checks text;
	storage text;
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
	RETURN quote_ident(t);
END $$;
