-- 009_reporting_columns_indexes: what the reporting views compare is
-- computed once per record at load time, and their indexes are built after
-- the run has committed, no longer inside the swap transaction.
--
-- Columns. The views of 008 normalised every serial number with a regular
-- expression, and read each device's attrs (its whole JSON record) to find
-- its shared cart and whether Mosyle flags an OS update: at a million
-- devices that made four views take seconds. invsync now writes these as
-- columns while it encodes each row (in C, no extra pass), and the views
-- read the columns:
--   mosyle_devices.serial_key, syncro_assets.serial_key  (serial_key())
--   mosyle_devices.os_update_pending                     (mosyle_needs_os_update())
--   mosyle_devices.shared_cart                           (device_cart())
-- The SQL functions stay, as the reference the columns are tested against
-- and for rows loaded before this migration (filled in below).
--
-- Indexes. An index on a partitioned parent must exist on a partition
-- before it is attached, so commit_rows() built every reporting index on
-- the new load table inside the swap: at a million devices they kept the
-- new inventory from becoming visible for seconds. The parents now carry
-- only the indexes a load needs (the primary key and 001's serial index),
-- and the reporting indexes are listed in partition_indexes: once a run has
-- committed, invsync builds them on the partitions it attached
-- (index_partitions). The planner uses a partition's own indexes as it
-- used the inherited ones. Until they are built (seconds after the commit)
-- a view reads the table instead: slower, same answer.

-- A serial key: ASCII whitespace removed, ASCII letters upper-cased, other
-- characters as they are; NULL when nothing is left. Exactly what invsync
-- computes at load time (rowenc_serial_key()), whatever the locale.
CREATE OR REPLACE FUNCTION serial_key(p_serial text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT nullif(translate(regexp_replace(p_serial, '[ \t\n\v\f\r]', '', 'g'),
				'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'), '')
$$;

ALTER TABLE mosyle_devices
	ADD COLUMN serial_key text,
	ADD COLUMN os_update_pending boolean NOT NULL DEFAULT false,
	ADD COLUMN shared_cart text;
ALTER TABLE syncro_assets ADD COLUMN serial_key text;

-- rows loaded before: the same values, from the functions
UPDATE mosyle_devices
SET serial_key = serial_key(serial_number), os_update_pending = mosyle_needs_os_update(attrs),
    shared_cart = device_cart(attrs, tags);
UPDATE syncro_assets SET serial_key = serial_key(asset_serial);

-- The indexes every partition of table_name gets, as
-- CREATE INDEX <partition>_<name> ON <partition> <definition>.
CREATE TABLE partition_indexes (
	table_name text NOT NULL,
	name       text NOT NULL CHECK (name ~ '^[a-z0-9_]+$'),
	definition text NOT NULL,
	PRIMARY KEY (table_name, name)
);

INSERT INTO partition_indexes (table_name, name, definition) VALUES
-- reconciliation: serial keys in order, and what the views show
('mosyle_devices', 'serial_key',
 '(serial_key) INCLUDE (source, device_key, user_id) WHERE serial_key IS NOT NULL'),
('syncro_assets', 'serial_key',
 '(serial_key) INCLUDE (source, asset_id, contact_id) WHERE serial_key IS NOT NULL'),
-- inventory_by_model, the versions per model, and the devices behind
('mosyle_devices', 'inventory',
 '(source, os, model, os_version, model_name) INCLUDE (device_key, serial_number)'),
('syncro_assets', 'type', '(source, asset_type)'),
('mosyle_devices', 'last_checkin',
 '(last_checkin) INCLUDE (source, device_key, serial_number, os, model)'),
('mosyle_devices', 'no_user',
 $$(source) INCLUDE (device_key, serial_number, os, model, last_checkin)
	WHERE coalesce(user_id, '') = ''$$),
-- users_with_several_devices reads this one alone, names included: a name
-- too long for an index entry (a third of a page) fails this index only
('mosyle_devices', 'user',
 $$(source, user_id) INCLUDE (serial_number, user_name, user_email)
	WHERE coalesce(user_id, '') <> ''$$),
-- the devices Mosyle flags for an OS update, the shared carts
('mosyle_devices', 'os_update', '(source) WHERE os_update_pending'),
('mosyle_devices', 'cart',
 '(source, shared_cart) INCLUDE (last_checkin) WHERE shared_cart IS NOT NULL');

-- Build the indexes partition_indexes lists on the current partitions of
-- p_source (NULL: of every source) that lack them. Each is named after its
-- partition, so a partition that is replaced takes its indexes with it.
-- An index that cannot be built (a value too long for an index entry) is
-- skipped and the others are built: returns how many were built, and the
-- failures ('name: reason', one a line) or NULL.
CREATE FUNCTION index_partitions(p_source text, OUT built int, OUT failed text)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	iname text;
BEGIN
	built := 0;
	FOR r IN
		SELECT p.name, p.definition, h.inhrelid::regclass AS part, c.relname,
		       c.relnamespace
		FROM partition_indexes p
		JOIN pg_inherits h ON h.inhparent = to_regclass(p.table_name)
		JOIN pg_class c ON c.oid = h.inhrelid
		WHERE p_source IS NULL
		   OR h.inhrelid = current_partition(to_regclass(p.table_name), p_source)
		ORDER BY p.table_name, p.name, c.relname
	LOOP
		iname := left(r.relname, 62 - length(r.name)) || '_' || r.name;
		CONTINUE WHEN EXISTS (SELECT 1 FROM pg_class i
				      WHERE i.relname = iname AND i.relnamespace = r.relnamespace);
		BEGIN
			EXECUTE format('CREATE INDEX %I ON %s %s', iname, r.part, r.definition);
			built := built + 1;
		EXCEPTION WHEN OTHERS THEN
			failed := concat_ws(E'\n', failed, iname || ': ' || SQLERRM);
		END;
	END LOOP;
END $$;

DROP INDEX mosyle_devices_serial_key, syncro_assets_serial_key, mosyle_devices_inventory,
	syncro_assets_type, mosyle_devices_last_checkin, mosyle_devices_no_user,
	mosyle_devices_user;
SELECT index_partitions(NULL);

-- ---- The views, over the new columns ---------------------------------------
-- Same names, columns and answers as in 008.

-- The heavier views are functions, as the reconciliation views of 008: a
-- view cannot carry settings, and these read a million rows, where JIT
-- compilation costs more than it saves and hash tables need more than the
-- default work_mem (the settings hold for the function only).
CREATE FUNCTION devices_needing_os_update()
RETURNS TABLE (source text, device_key text, serial_number text, device_name text, os text,
	       model text, os_version text, newest_version text, flagged_by_mosyle boolean)
LANGUAGE sql STABLE SET jit = off AS $$
	WITH b AS MATERIALIZED (SELECT * FROM os_versions_behind)
	SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model, d.os_version,
	       b.newest_version, true
	FROM mosyle_devices d
	LEFT JOIN b ON b.source = d.source AND b.os = d.os AND b.model = d.model
		AND b.os_version = d.os_version
	WHERE d.os_update_pending
	UNION ALL
	SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model, d.os_version,
	       b.newest_version, false
	FROM b
	JOIN mosyle_devices d ON d.source = b.source AND d.os = b.os AND d.model = b.model
		AND d.os_version = b.os_version
	WHERE NOT d.os_update_pending
$$;
CREATE OR REPLACE VIEW devices_needing_os_update AS SELECT * FROM devices_needing_os_update();

-- Users with more than one device: one ordered pass over the user index
-- (which carries the names), counting each user's devices with a window,
-- so that only the users with several are aggregated. The name is the
-- first of the user's devices' in order, the e-mail address that device's.
CREATE FUNCTION users_with_several_devices()
RETURNS TABLE (source text, user_id text, user_name text, user_email text, devices bigint,
	       serial_numbers text[])
LANGUAGE sql STABLE SET jit = off AS $$
	SELECT d.source, d.user_id, min(d.user_name),
	       (array_agg(d.user_email ORDER BY d.user_name, d.user_email))[1],
	       count(*), array_agg(d.serial_number ORDER BY d.serial_number)
	FROM (SELECT m.source, m.user_id, m.user_name, m.user_email, m.serial_number,
		     count(*) OVER (PARTITION BY m.source, m.user_id) AS n
	      FROM mosyle_devices m
	      WHERE coalesce(m.user_id, '') <> '') d
	WHERE d.n > 1
	GROUP BY d.source, d.user_id
$$;
CREATE OR REPLACE VIEW users_with_several_devices AS SELECT * FROM users_with_several_devices();

CREATE OR REPLACE VIEW shared_cart_devices AS
SELECT d.source, d.shared_cart AS cart, d.device_key, d.serial_number, d.device_name, d.os,
       d.model, d.last_checkin
FROM mosyle_devices d
WHERE d.shared_cart IS NOT NULL;

CREATE OR REPLACE VIEW shared_carts AS
SELECT d.source, d.shared_cart AS cart, count(*) AS devices, max(d.last_checkin) AS last_checkin
FROM mosyle_devices d
WHERE d.shared_cart IS NOT NULL
GROUP BY 1, 2;

CREATE OR REPLACE FUNCTION mosyle_devices_not_in_syncro()
RETURNS TABLE (source text, device_key text, serial_number text, device_name text, os text,
	       model text, user_name text, last_checkin timestamptz)
LANGUAGE sql STABLE SET work_mem = '64MB' SET jit = off AS $$
	SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model,
	       d.user_name, d.last_checkin
	FROM mosyle_devices d
	WHERE d.serial_key IS NOT NULL
	  AND NOT EXISTS (SELECT 1 FROM syncro_assets a WHERE a.serial_key = d.serial_key)
$$;

CREATE OR REPLACE FUNCTION syncro_assets_not_in_mosyle()
RETURNS TABLE (source text, asset_id bigint, asset_serial text, name text, asset_type text,
	       customer_name text)
LANGUAGE sql STABLE SET work_mem = '64MB' SET jit = off AS $$
	SELECT a.source, a.asset_id, a.asset_serial, a.name, a.asset_type, a.customer_name
	FROM syncro_assets a
	WHERE a.serial_key IS NOT NULL
	  AND NOT EXISTS (SELECT 1 FROM mosyle_devices d WHERE d.serial_key = a.serial_key)
$$;

CREATE OR REPLACE FUNCTION serial_mismatches()
RETURNS TABLE (serial_key text, mosyle_source text, device_key text, mosyle_name text,
	       mosyle_user text, mosyle_user_email text, syncro_source text, asset_id bigint,
	       syncro_name text, syncro_contact text, syncro_contact_email text,
	       name_differs boolean, user_differs boolean)
LANGUAGE sql STABLE SET work_mem = '64MB' SET jit = off AS $$
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
