-- 003_district: the rest of a Mosyle district (users, classes, device
-- groups and their members, accounts, custom attributes, admin logs), and
-- what loading several endpoints of one source in parallel needs.
--
-- A source's endpoints now load in parallel, each on its own connection:
-- a load table is created and filled there and committed on its own, and
-- one final transaction swaps every endpoint's rows in (commit_rows) or
-- adds them (append_rows). A load table therefore outlives a process that
-- dies before that transaction: drop_load_tables() removes such leftovers.
-- Endpoints are keyed on several columns (a device group is identified by
-- its OS and its id), so commit_rows takes a list of key columns. And a
-- committed partition no longer carries a second copy of its primary key
-- index (see index_like_parent).

-- Per endpoint: rows current (replace) or added (append) once the run
-- committed, NULL otherwise; note says why an endpoint loaded nothing
-- ('not a district account').
ALTER TABLE sync_run_endpoints ADD COLUMN loaded bigint, ADD COLUMN note text;

-- The columns of a comma-separated key list ('os, group_id,udid'), in
-- order. An empty element is an error: a key list comes from invsync's
-- endpoint descriptions, never from a user.
CREATE FUNCTION key_column_list(p_key text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	cols text[] := regexp_split_to_array(btrim(p_key), '\s*,\s*');
BEGIN
	IF p_key IS NULL OR '' = ANY (cols) THEN
		RAISE EXCEPTION 'bad key column list: %', coalesce(quote_literal(p_key), 'NULL');
	END IF;
	RETURN cols;
END $$;

-- Build on p_table the indexes p_parent asks of its partitions, so that
-- attaching p_table finds them ready. An index that backs a constraint
-- (the primary key) is built as that constraint: ATTACH PARTITION takes
-- only a constraint for a constraint, and built as a plain unique index
-- it was left unused while ATTACH built the key's index a second time.
-- Constraints come first, so a duplicate key fails before other work.
CREATE OR REPLACE FUNCTION index_like_parent(p_parent regclass, p_table regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	def text;
	con text;
BEGIN
	FOR def, con IN
		SELECT pg_get_indexdef(i.indexrelid), pg_get_constraintdef(c.oid)
		FROM pg_index i
		LEFT JOIN pg_constraint c ON c.conrelid = p_parent AND c.conindid = i.indexrelid
					  AND c.contype IN ('p', 'u')
		WHERE i.indrelid = p_parent
		ORDER BY c.oid IS NULL, i.indexrelid
	LOOP
		IF con IS NOT NULL THEN
			EXECUTE format('ALTER TABLE %s ADD %s', p_table, con);
		ELSE
			EXECUTE regexp_replace(def, '^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+',
					       'CREATE \1INDEX ON ' || p_table::text);
		END IF;
	END LOOP;
END $$;

DROP FUNCTION commit_rows(regclass, regclass, text, int[], text);

-- Make the loaded table the source's partition, in the caller's
-- transaction: drop rows of discarded attempts, keep one row per key (the
-- latest attempt's), carry first_seen over from the previous inventory,
-- index, and swap partitions. p_key lists the key columns without source
-- ('device_key', 'os,group_id,udid'). Returns the number of rows now
-- current.
CREATE FUNCTION commit_rows(p_parent regclass, p_new regclass, p_source text,
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
		EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', p_parent, old);
		EXECUTE format('DROP TABLE %s', old);
	END IF;
	EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%L)', p_parent, p_new,
		       p_source);
	RETURN n;
END $$;

-- Add the loaded rows to the source's rows, in the caller's transaction:
-- drop rows of discarded attempts, insert the others whose key the source
-- does not have yet (of a key loaded twice, the latest attempt's copy),
-- and drop the load table. The source's first load becomes its partition
-- instead, as in commit_rows. Returns the number of rows added.
CREATE FUNCTION append_rows(p_parent regclass, p_new regclass, p_source text,
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
		EXECUTE format('DELETE FROM %s WHERE attempt = ANY ($1)', p_new) USING p_discard;
	END IF;
	-- rows are inserted in this order, and a later row with the key of
	-- an earlier one is skipped
	EXECUTE format('INSERT INTO %1$s (%2$s) SELECT %2$s FROM %3$s ORDER BY attempt DESC'
		       ' ON CONFLICT (source, %4$s) DO NOTHING', p_parent, cols, p_new, keys);
	GET DIAGNOSTICS n = ROW_COUNT;
	EXECUTE format('DROP TABLE %s', p_new);
	RETURN n;
END $$;

-- Drop the load tables of p_source that runs other than p_keep_run left
-- behind: stage_rows() names them <parent>_r<run>_<12 hex digits of
-- md5(source)>, in the schema of the session (the first of search_path),
-- and commits them before the run's final transaction, so a process that
-- dies in between leaves them. A load table that was committed is the
-- source's partition under that same name: those are kept. The caller
-- must hold the source's lock (no other run of the source is loading).
-- Returns how many tables were dropped.
CREATE FUNCTION drop_load_tables(p_source text, p_keep_run bigint) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	t regclass;
	n int := 0;
BEGIN
	FOR t IN
		SELECT c.oid::regclass
		FROM pg_class c
		CROSS JOIN LATERAL regexp_match(c.relname, '^(.+)_r([0-9]+)_'
						|| substr(md5(p_source), 1, 12) || '$') AS m(parts)
		WHERE c.relnamespace = (SELECT oid FROM pg_namespace
					WHERE nspname = current_schema())
		  AND c.relkind = 'r' AND NOT c.relispartition
		  AND m.parts[2]::numeric <> p_keep_run
		  -- named after a table of this schema: not some other table
		  AND EXISTS (SELECT 1 FROM pg_class p
			      WHERE p.relnamespace = c.relnamespace AND p.relkind IN ('p', 'r')
				AND p.relname = m.parts[1])
	LOOP
		EXECUTE format('DROP TABLE %s', t);
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;

-- ---- Mosyle district tables --------------------------------------------
-- Like mosyle_devices: one partition per source, replaced as a whole when
-- a run commits (mosyle_admin_logs is appended to instead); attrs holds
-- the record as received; run_id, page and attempt tell which run, page
-- and page attempt loaded the row.

-- /listusers
CREATE TABLE mosyle_users (
	source           text        NOT NULL,
	user_id          text        NOT NULL, -- id, unique across the district
	name             text,
	email            text,
	type             text,                 -- STUDENT, TEACHER, STAFF, ADMIN, LOCATION_LEADER
	managed_apple_id text,                 -- managedappleid
	locations        text[],               -- location names
	grades           text[],
	serial_number    text,
	account          text,
	assigned_devices text[],               -- UDIDs
	attrs            jsonb       NOT NULL,
	first_seen       timestamptz NOT NULL,
	last_seen        timestamptz NOT NULL,
	run_id           bigint      NOT NULL,
	page             int         NOT NULL,
	attempt          int         NOT NULL,
	PRIMARY KEY (source, user_id)
) PARTITION BY LIST (source);
CREATE INDEX mosyle_users_email ON mosyle_users (email);

-- /listclasses. Classes of a user, using the indexes:
--   WHERE students @> ARRAY['u000123'] (or coordinators, or teacher =)
CREATE TABLE mosyle_classes (
	source       text        NOT NULL,
	class_id     text        NOT NULL, -- id (idclass when a class has no id)
	idclass      text,
	name         text,                 -- class_name (name in some answers)
	course_name  text,
	location     text,
	teacher      text,                 -- a user_id
	students     text[],               -- user_ids
	coordinators text[],               -- user_ids
	attrs        jsonb       NOT NULL,
	first_seen   timestamptz NOT NULL,
	last_seen    timestamptz NOT NULL,
	run_id       bigint      NOT NULL,
	page         int         NOT NULL,
	attempt      int         NOT NULL,
	PRIMARY KEY (source, class_id)
) PARTITION BY LIST (source);
CREATE INDEX mosyle_classes_students ON mosyle_classes USING gin (students);
CREATE INDEX mosyle_classes_coordinators ON mosyle_classes USING gin (coordinators);
CREATE INDEX mosyle_classes_teacher ON mosyle_classes (teacher);

-- Who is in which class, one row per class and member.
CREATE VIEW mosyle_class_members AS
SELECT c.source, c.class_id, m.user_id, m.role
FROM mosyle_classes c
CROSS JOIN LATERAL (
	SELECT c.teacher, 'teacher'
	UNION ALL
	SELECT s, 'student' FROM unnest(c.students) AS s
	UNION ALL
	SELECT s, 'coordinator' FROM unnest(c.coordinators) AS s
) AS m (user_id, role)
WHERE m.user_id IS NOT NULL;

-- /listdevicegroups: group ids are unique per OS only.
CREATE TABLE mosyle_device_groups (
	source        text        NOT NULL,
	os            text        NOT NULL, -- ios, mac, tvos, visionos
	group_id      text        NOT NULL,
	name          text,
	type          text,                 -- static, ...
	devices_count bigint,
	attrs         jsonb       NOT NULL,
	first_seen    timestamptz NOT NULL,
	last_seen     timestamptz NOT NULL,
	run_id        bigint      NOT NULL,
	page          int         NOT NULL,
	attempt       int         NOT NULL,
	PRIMARY KEY (source, os, group_id)
) PARTITION BY LIST (source);

-- /listdevicegroupsdevices: one row per group and member device.
CREATE TABLE mosyle_device_group_members (
	source     text        NOT NULL,
	os         text        NOT NULL,
	group_id   text        NOT NULL,
	udid       text        NOT NULL,
	group_name text,
	attrs      jsonb       NOT NULL, -- the member as received (its UDID, a JSON string)
	first_seen timestamptz NOT NULL,
	last_seen  timestamptz NOT NULL,
	run_id     bigint      NOT NULL,
	page       int         NOT NULL,
	attempt    int         NOT NULL,
	PRIMARY KEY (source, os, group_id, udid)
) PARTITION BY LIST (source);
CREATE INDEX mosyle_device_group_members_udid ON mosyle_device_group_members (udid);

-- /accounts: the schools of a district account (no rows for a school
-- account: sync_run_endpoints.note says so).
CREATE TABLE mosyle_accounts (
	source      text        NOT NULL,
	account_id  text        NOT NULL,
	name        text,
	school_code text,
	attrs       jsonb       NOT NULL,
	first_seen  timestamptz NOT NULL,
	last_seen   timestamptz NOT NULL,
	run_id      bigint      NOT NULL,
	page        int         NOT NULL,
	attempt     int         NOT NULL,
	PRIMARY KEY (source, account_id)
) PARTITION BY LIST (source);

-- /customdeviceattribute (list_custom_device_attributes), per OS.
CREATE TABLE mosyle_custom_attributes (
	source       text        NOT NULL,
	os           text        NOT NULL,
	attribute_id text        NOT NULL,
	name         text,
	type         text,
	attrs        jsonb       NOT NULL,
	first_seen   timestamptz NOT NULL,
	last_seen    timestamptz NOT NULL,
	run_id       bigint      NOT NULL,
	page         int         NOT NULL,
	attempt      int         NOT NULL,
	PRIMARY KEY (source, os, attribute_id)
) PARTITION BY LIST (source);

-- /adminlogs: kept, not replaced. A run asks for the entries since the
-- newest one loaded (that second included) and adds those it lacks
-- (append_rows); first_seen = last_seen = when the entry was loaded.
CREATE TABLE mosyle_admin_logs (
	source     text        NOT NULL,
	log_id     text        NOT NULL, -- id ('hash:' || a hash of the entry without one)
	logged_at  timestamptz,          -- date
	admin      text,
	action     text,
	target     text,                 -- a UDID or a user id
	attrs      jsonb       NOT NULL,
	first_seen timestamptz NOT NULL,
	last_seen  timestamptz NOT NULL,
	run_id     bigint      NOT NULL,
	page       int         NOT NULL,
	attempt    int         NOT NULL,
	PRIMARY KEY (source, log_id)
) PARTITION BY LIST (source);
CREATE INDEX mosyle_admin_logs_logged_at ON mosyle_admin_logs (source, logged_at);

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['mosyle_users', 'mosyle_classes', 'mosyle_device_groups',
				 'mosyle_device_group_members', 'mosyle_accounts',
				 'mosyle_custom_attributes', 'mosyle_admin_logs']
	LOOP
		EXECUTE format('ALTER TABLE %I ALTER COLUMN attrs SET COMPRESSION lz4', t);
	END LOOP;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
	NULL; -- server built without lz4: keep the default
END $$;
