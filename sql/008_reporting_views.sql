-- 008_reporting_views: reports over the inventories and the run log, and
-- the indexes that keep them fast at a million devices.
--
-- Indexes created on the partitioned parents reach every partition, and
-- commit_rows() builds them on each new load table (index_like_parent), so
-- they hold after every run. Serial numbers are compared as serial keys:
-- upper case, whitespace removed, written out in full below so that the
-- planner matches the view's expression with the index's.

-- A serial number as the reconciliation compares it ('c02 xy1 ' and
-- 'C02XY1' are the same device). For ad hoc queries; the views and indexes
-- spell out the same expression.
CREATE FUNCTION serial_key(p_serial text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT nullif(upper(regexp_replace(p_serial, '\s', '', 'g')), '')
$$;

-- An OS version as numbers for ordering ('17.10.1' > '17.9'); NULL when it
-- does not start with a number.
CREATE FUNCTION os_version_key(p_version text) RETURNS numeric[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT string_to_array(substring(p_version FROM '^[0-9]+(?:\.[0-9]+)*'), '.')::numeric[]
$$;

-- The shared cart a Mosyle device belongs to: Mosyle's SharedCartName, or
-- else its first tag that starts with "cart" (any case); NULL for neither.
-- PL/pgSQL, so that it is never inlined: the planner then matches a
-- query's device_cart(attrs, tags) with the index on it.
CREATE FUNCTION device_cart(p_attrs jsonb, p_tags text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	t text := nullif(btrim(p_attrs->>'SharedCartName'), '');
BEGIN
	IF t IS NULL AND p_tags IS NOT NULL THEN
		FOREACH t IN ARRAY p_tags LOOP
			IF t ILIKE 'cart%' THEN
				RETURN t;
			END IF;
		END LOOP;
		RETURN NULL;
	END IF;
	RETURN t;
END $$;

-- Whether Mosyle itself says a device has an OS update waiting.
CREATE FUNCTION mosyle_needs_os_update(p_attrs jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT lower(coalesce(p_attrs->>'needosupdate', '')) IN ('true', '1', 'yes')
	    OR coalesce(btrim(p_attrs->>'AvailableOSUpdates'), '') NOT IN ('', '[]', 'null')
$$;

-- ---- Indexes ---------------------------------------------------------------

-- Most of these carry columns their view needs (INCLUDE), so that the
-- view reads the index alone (an index-only scan) rather than the table,
-- whose rows are large (attrs). Index-only scans need the table's
-- visibility map: after a load, VACUUM (or autovacuum) sets it. Only
-- identifiers are carried, never free text (names, e-mail addresses): an
-- index entry must fit in a third of a page, and a device name of a
-- megabyte would fail the load.

-- reconciliation: serial keys in order, and what the views show
CREATE INDEX mosyle_devices_serial_key ON mosyle_devices
	((upper(regexp_replace(serial_number, '\s', '', 'g'))))
	INCLUDE (serial_number, source, device_key, os, model, user_id, last_checkin);
CREATE INDEX syncro_assets_serial_key ON syncro_assets
	((upper(regexp_replace(asset_serial, '\s', '', 'g'))))
	INCLUDE (asset_serial, source, asset_id, asset_type, contact_id);
-- inventory_by_model, the versions per model, and the devices behind
CREATE INDEX mosyle_devices_inventory ON mosyle_devices (source, os, model, os_version, model_name)
	INCLUDE (device_key, serial_number);
CREATE INDEX syncro_assets_type ON syncro_assets (source, asset_type);
CREATE INDEX mosyle_devices_last_checkin ON mosyle_devices (last_checkin)
	INCLUDE (source, device_key, serial_number, os, model);
CREATE INDEX mosyle_devices_no_user ON mosyle_devices (source)
	INCLUDE (device_key, serial_number, os, model, last_checkin)
	WHERE coalesce(user_id, '') = '';
CREATE INDEX mosyle_devices_user ON mosyle_devices (source, user_id)
	INCLUDE (serial_number) WHERE coalesce(user_id, '') <> '';
-- No index on device_cart(attrs, tags) or mosyle_needs_os_update(attrs):
-- both read attrs, and building them at every commit decompressed every
-- device's JSON again (most of a minute per run at a million devices); the
-- cart and OS-update views read the table instead.

-- ---- Inventory -------------------------------------------------------------

-- Devices per source, OS, OS version and model. Syncro assets carry no OS
-- or model of their own: they are counted per asset type (in os).
CREATE VIEW inventory_by_model AS
SELECT 'mosyle'::text AS kind, source, os, os_version, model, model_name, count(*) AS devices
FROM mosyle_devices
GROUP BY source, os, model, os_version, model_name
UNION ALL
SELECT 'syncro', source, asset_type, NULL, NULL, NULL, count(*)
FROM syncro_assets
GROUP BY source, asset_type;

-- ---- Check-ins and OS updates ----------------------------------------------

-- Mosyle devices whose last check-in is more than p_days days ago, or that
-- never checked in (last_checkin and days_since_checkin NULL).
CREATE FUNCTION stale_devices(p_days int)
RETURNS TABLE (source text, device_key text, serial_number text, device_name text, os text,
	       model text, user_name text, last_checkin timestamptz, days_since_checkin int)
LANGUAGE sql STABLE AS $$
	SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model,
	       d.user_name, d.last_checkin,
	       extract(day FROM now() - d.last_checkin)::int
	FROM mosyle_devices d
	WHERE d.last_checkin < now() - make_interval(days => p_days)
	UNION ALL
	SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model,
	       d.user_name, NULL, NULL
	FROM mosyle_devices d
	WHERE d.last_checkin IS NULL
$$;

CREATE VIEW stale_devices_30d AS SELECT * FROM stale_devices(30);

-- The newest OS version seen per source, OS and model, and each version
-- behind it (computed over the distinct versions, not over every device).
CREATE VIEW os_versions_behind AS
WITH v AS (
	SELECT source, os, model, os_version, os_version_key(os_version) AS k
	FROM (SELECT DISTINCT source, os, model, os_version FROM mosyle_devices
	      WHERE os_version IS NOT NULL AND model IS NOT NULL) d
), newest AS (
	SELECT DISTINCT ON (source, os, model) source, os, model, os_version, k
	FROM v WHERE k IS NOT NULL
	ORDER BY source, os, model, k DESC
)
SELECT v.source, v.os, v.model, v.os_version, n.os_version AS newest_version
FROM v JOIN newest n ON n.source = v.source AND n.os = v.os AND n.model = v.model
WHERE v.k < n.k;

-- Mosyle devices with an OS update to install: those Mosyle flags
-- (needosupdate, or AvailableOSUpdates not empty; flagged_by_mosyle true),
-- and those running an older version than the newest seen on the same
-- source, OS and model (flagged_by_mosyle false). Both halves read indexes
-- only: the flagged devices' partial index, and the inventory index for
-- the versions behind (computed once).
CREATE VIEW devices_needing_os_update AS
WITH b AS MATERIALIZED (SELECT * FROM os_versions_behind)
SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model, d.os_version,
       b.newest_version, true AS flagged_by_mosyle
FROM mosyle_devices d
LEFT JOIN b ON b.source = d.source AND b.os = d.os AND b.model = d.model
	AND b.os_version = d.os_version
WHERE mosyle_needs_os_update(d.attrs)
UNION ALL
SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model, d.os_version,
       b.newest_version, false
FROM b
JOIN mosyle_devices d ON d.source = b.source AND d.os = b.os AND d.model = b.model
	AND d.os_version = b.os_version
WHERE NOT EXISTS (SELECT 1 FROM mosyle_devices f
		  WHERE f.source = d.source AND f.device_key = d.device_key
		    AND mosyle_needs_os_update(f.attrs));

-- ---- Users and carts -------------------------------------------------------

-- Mosyle devices no user is assigned to (cart devices included: see
-- shared_cart_devices).
CREATE VIEW devices_without_user AS
SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model,
       d.last_checkin
FROM mosyle_devices d
WHERE coalesce(d.user_id, '') = '';

-- Users with more than one Mosyle device of the same source.
-- The devices are counted from an index; the name and e-mail address are
-- those of one of the user's devices.
CREATE VIEW users_with_several_devices AS
SELECT g.source, g.user_id, u.user_name, u.user_email, g.devices, g.serial_numbers
FROM (SELECT source, user_id, count(*) AS devices,
	     array_agg(serial_number ORDER BY serial_number) AS serial_numbers
      FROM mosyle_devices
      WHERE coalesce(user_id, '') <> ''
      GROUP BY source, user_id
      HAVING count(*) > 1) g
CROSS JOIN LATERAL (SELECT d.user_name, d.user_email FROM mosyle_devices d
		    WHERE d.source = g.source AND d.user_id = g.user_id
		      AND coalesce(d.user_id, '') <> ''
		    ORDER BY d.user_name LIMIT 1) u;

-- Mosyle devices in a shared cart (see device_cart()).
CREATE VIEW shared_cart_devices AS
SELECT d.source, device_cart(d.attrs, d.tags) AS cart, d.device_key, d.serial_number,
       d.device_name, d.os, d.model, d.last_checkin
FROM mosyle_devices d
WHERE device_cart(d.attrs, d.tags) IS NOT NULL;

-- Shared carts per source: how many devices, when one last checked in.
CREATE VIEW shared_carts AS
SELECT d.source, device_cart(d.attrs, d.tags) AS cart, count(*) AS devices,
       max(d.last_checkin) AS last_checkin
FROM mosyle_devices d
WHERE device_cart(d.attrs, d.tags) IS NOT NULL
GROUP BY 1, 2;

-- ---- Reconciliation by serial number ---------------------------------------
-- Serials are matched across all sources of each system. Records without a
-- serial (NULL, empty or only whitespace) cannot be matched and are left
-- out. The Syncro side of a "user" is the asset's contact
-- (syncro_contacts, by contact_id); it agrees with the Mosyle user when
-- the e-mail addresses or the names are equal, ignoring case and outer
-- whitespace. Names compare the same way.

--
-- Over a million serials the fast plan is a merge join of the two serial
-- key indexes, read in order and alone (index-only). The planner costs it
-- far above a hash join that recomputes every key from the table, so the
-- views call functions that rule out hash joins and nested loops (and JIT,
-- which costs more than it saves here). A condition on such a view is
-- applied to the function's rows, after the join.

-- Mosyle devices whose serial no Syncro asset has.
CREATE FUNCTION mosyle_devices_not_in_syncro()
RETURNS TABLE (source text, device_key text, serial_number text, device_name text, os text,
	       model text, user_name text, last_checkin timestamptz)
LANGUAGE sql STABLE
SET enable_hashjoin = off SET enable_nestloop = off SET jit = off AS $$
	SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model,
	       d.user_name, d.last_checkin
	FROM mosyle_devices d
	WHERE upper(regexp_replace(d.serial_number, '\s', '', 'g')) <> ''
	  AND NOT EXISTS (SELECT 1 FROM syncro_assets a
			  WHERE upper(regexp_replace(a.asset_serial, '\s', '', 'g'))
			      = upper(regexp_replace(d.serial_number, '\s', '', 'g')))
$$;
CREATE VIEW mosyle_devices_not_in_syncro AS SELECT * FROM mosyle_devices_not_in_syncro();

-- Syncro assets whose serial no Mosyle device has.
CREATE FUNCTION syncro_assets_not_in_mosyle()
RETURNS TABLE (source text, asset_id bigint, asset_serial text, name text, asset_type text,
	       customer_name text)
LANGUAGE sql STABLE
SET enable_hashjoin = off SET enable_nestloop = off SET jit = off AS $$
	SELECT a.source, a.asset_id, a.asset_serial, a.name, a.asset_type, a.customer_name
	FROM syncro_assets a
	WHERE upper(regexp_replace(a.asset_serial, '\s', '', 'g')) <> ''
	  AND NOT EXISTS (SELECT 1 FROM mosyle_devices d
			  WHERE upper(regexp_replace(d.serial_number, '\s', '', 'g'))
			      = upper(regexp_replace(a.asset_serial, '\s', '', 'g')))
$$;
CREATE VIEW syncro_assets_not_in_mosyle AS SELECT * FROM syncro_assets_not_in_mosyle();

-- Devices both systems know whose names or users disagree. Nested loops
-- only are ruled out: the contacts join hashes.
CREATE FUNCTION serial_mismatches()
RETURNS TABLE (serial_key text, mosyle_source text, device_key text, mosyle_name text,
	       mosyle_user text, mosyle_user_email text, syncro_source text, asset_id bigint,
	       syncro_name text, syncro_contact text, syncro_contact_email text,
	       name_differs boolean, user_differs boolean)
LANGUAGE sql STABLE SET enable_nestloop = off SET jit = off AS $$
	SELECT upper(regexp_replace(d.serial_number, '\s', '', 'g')),
	       d.source, d.device_key, d.device_name, d.user_name, d.user_email,
	       a.source, a.asset_id, a.name, c.name, c.email,
	       x.name_differs, x.user_differs
	FROM mosyle_devices d
	JOIN syncro_assets a ON upper(regexp_replace(a.asset_serial, '\s', '', 'g'))
			      = upper(regexp_replace(d.serial_number, '\s', '', 'g'))
	LEFT JOIN syncro_contacts c ON c.source = a.source AND c.contact_id = a.contact_id
	CROSS JOIN LATERAL (SELECT
		lower(btrim(d.device_name)) IS DISTINCT FROM lower(btrim(a.name)) AS name_differs,
		NOT (coalesce(lower(btrim(d.user_email)) = lower(btrim(c.email)), false)
		     OR coalesce(lower(btrim(d.user_name)) = lower(btrim(c.name)), false)
		     OR (coalesce(d.user_id, '') = '' AND c.contact_id IS NULL))
			AS user_differs) x
	WHERE upper(regexp_replace(d.serial_number, '\s', '', 'g')) <> ''
	  AND (x.name_differs OR x.user_differs)
$$;
CREATE VIEW serial_mismatches AS SELECT * FROM serial_mismatches();

-- ---- Run log ---------------------------------------------------------------

-- The last 30 runs of each source, newest first (runs_ago 1), with their
-- duration and the change of loaded rows from the run before (NULL when
-- either run failed).
CREATE VIEW run_trend AS
SELECT *
FROM (SELECT r.source, r.kind, r.run_id,
	     row_number() OVER (PARTITION BY r.source ORDER BY r.started_at DESC, r.run_id DESC)
		     AS runs_ago,
	     r.started_at, r.finished_at, r.status, r.finished_at - r.started_at AS duration,
	     r.records, r.loaded,
	     r.loaded - lag(r.loaded) OVER (PARTITION BY r.source
					    ORDER BY r.started_at, r.run_id) AS loaded_change,
	     r.retries, r.throttled, r.error
      FROM sync_runs r) t
WHERE runs_ago <= 30;

-- The last run of each source, when it last succeeded, and how its last
-- 30 runs went: how many failed, their average and longest duration.
CREATE VIEW last_runs AS
SELECT t.source, t.kind, t.run_id, t.started_at, t.finished_at, t.status, t.duration,
       t.records, t.loaded, t.error,
       (SELECT max(s.finished_at) FROM sync_runs s
	WHERE s.source = t.source AND s.status = 'succeeded') AS last_succeeded_at,
       a.runs AS recent_runs, a.failures AS recent_failures,
       a.avg_duration AS recent_avg_duration, a.max_duration AS recent_max_duration
FROM run_trend t
JOIN (SELECT source, count(*) AS runs, count(*) FILTER (WHERE status = 'failed') AS failures,
	     avg(duration) AS avg_duration, max(duration) AS max_duration
      FROM run_trend GROUP BY source) a ON a.source = t.source
WHERE t.runs_ago = 1;
