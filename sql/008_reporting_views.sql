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
CREATE FUNCTION device_cart(p_attrs jsonb, p_tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(nullif(btrim(p_attrs->>'SharedCartName'), ''),
			(SELECT t FROM unnest(p_tags) WITH ORDINALITY AS u(t, i)
			 WHERE t ILIKE 'cart%' ORDER BY i LIMIT 1))
$$;

-- Whether Mosyle itself says a device has an OS update waiting.
CREATE FUNCTION mosyle_needs_os_update(p_attrs jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT lower(coalesce(p_attrs->>'needosupdate', '')) IN ('true', '1', 'yes')
	    OR coalesce(btrim(p_attrs->>'AvailableOSUpdates'), '') NOT IN ('', '[]', 'null')
$$;

-- ---- Indexes ---------------------------------------------------------------

CREATE INDEX mosyle_devices_serial_key ON mosyle_devices
	((upper(regexp_replace(serial_number, '\s', '', 'g')))) INCLUDE (serial_number);
CREATE INDEX syncro_assets_serial_key ON syncro_assets
	((upper(regexp_replace(asset_serial, '\s', '', 'g')))) INCLUDE (asset_serial);
-- inventory_by_model and the newest versions per model, from the index alone
CREATE INDEX mosyle_devices_inventory ON mosyle_devices (source, os, model, os_version, model_name);
CREATE INDEX syncro_assets_type ON syncro_assets (source, asset_type);
CREATE INDEX mosyle_devices_last_checkin ON mosyle_devices (last_checkin);
CREATE INDEX mosyle_devices_no_user ON mosyle_devices (source)
	WHERE coalesce(user_id, '') = '';
CREATE INDEX mosyle_devices_user ON mosyle_devices (source, user_id)
	INCLUDE (user_name, user_email, serial_number) WHERE coalesce(user_id, '') <> '';
CREATE INDEX mosyle_devices_cart ON mosyle_devices (source, device_cart(attrs, tags))
	WHERE device_cart(attrs, tags) IS NOT NULL;
CREATE INDEX mosyle_devices_os_update ON mosyle_devices (source)
	WHERE mosyle_needs_os_update(attrs);

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
	      WHERE os_version IS NOT NULL) d
), newest AS (
	SELECT DISTINCT ON (source, os, model) source, os, model, os_version, k
	FROM v WHERE k IS NOT NULL
	ORDER BY source, os, model, k DESC
)
SELECT v.source, v.os, v.model, v.os_version, n.os_version AS newest_version
FROM v JOIN newest n ON n.source = v.source AND n.os = v.os
		       AND n.model IS NOT DISTINCT FROM v.model
WHERE v.k < n.k;

-- Mosyle devices with an OS update to install: those Mosyle flags
-- (needosupdate, or AvailableOSUpdates not empty; flagged_by_mosyle true),
-- and those running an older version than the newest seen on the same
-- source, OS and model (flagged_by_mosyle false).
CREATE VIEW devices_needing_os_update AS
SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model, d.os_version,
       b.newest_version, true AS flagged_by_mosyle
FROM mosyle_devices d
LEFT JOIN os_versions_behind b ON b.source = d.source AND b.os = d.os
	AND b.model IS NOT DISTINCT FROM d.model AND b.os_version = d.os_version
WHERE mosyle_needs_os_update(d.attrs)
UNION ALL
SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model, d.os_version,
       b.newest_version, false
FROM mosyle_devices d
JOIN os_versions_behind b ON b.source = d.source AND b.os = d.os
	AND b.model IS NOT DISTINCT FROM d.model AND b.os_version = d.os_version
WHERE NOT mosyle_needs_os_update(d.attrs);

-- ---- Users and carts -------------------------------------------------------

-- Mosyle devices no user is assigned to (cart devices included: cart says
-- which).
CREATE VIEW devices_without_user AS
SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model,
       d.last_checkin, device_cart(d.attrs, d.tags) AS cart
FROM mosyle_devices d
WHERE coalesce(d.user_id, '') = '';

-- Users with more than one Mosyle device of the same source.
CREATE VIEW users_with_several_devices AS
SELECT source, user_id, min(user_name) AS user_name, min(user_email) AS user_email,
       count(*) AS devices, array_agg(serial_number ORDER BY serial_number) AS serial_numbers
FROM mosyle_devices
WHERE coalesce(user_id, '') <> ''
GROUP BY source, user_id
HAVING count(*) > 1;

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

-- Mosyle devices whose serial no Syncro asset has.
CREATE VIEW mosyle_devices_not_in_syncro AS
SELECT d.source, d.device_key, d.serial_number, d.device_name, d.os, d.model,
       d.user_name, d.last_checkin
FROM mosyle_devices d
WHERE upper(regexp_replace(d.serial_number, '\s', '', 'g')) <> ''
  AND NOT EXISTS (SELECT 1 FROM syncro_assets a
		  WHERE upper(regexp_replace(a.asset_serial, '\s', '', 'g'))
		      = upper(regexp_replace(d.serial_number, '\s', '', 'g')));

-- Syncro assets whose serial no Mosyle device has.
CREATE VIEW syncro_assets_not_in_mosyle AS
SELECT a.source, a.asset_id, a.asset_serial, a.name, a.asset_type, a.customer_name
FROM syncro_assets a
WHERE upper(regexp_replace(a.asset_serial, '\s', '', 'g')) <> ''
  AND NOT EXISTS (SELECT 1 FROM mosyle_devices d
		  WHERE upper(regexp_replace(d.serial_number, '\s', '', 'g'))
		      = upper(regexp_replace(a.asset_serial, '\s', '', 'g')));

-- Devices both systems know whose names or users disagree.
CREATE VIEW serial_mismatches AS
SELECT upper(regexp_replace(d.serial_number, '\s', '', 'g')) AS serial_key,
       d.source AS mosyle_source, d.device_key, d.device_name AS mosyle_name,
       d.user_name AS mosyle_user, d.user_email AS mosyle_user_email,
       a.source AS syncro_source, a.asset_id, a.name AS syncro_name,
       c.name AS syncro_contact, c.email AS syncro_contact_email,
       name_differs, user_differs
FROM mosyle_devices d
JOIN syncro_assets a ON upper(regexp_replace(a.asset_serial, '\s', '', 'g'))
		      = upper(regexp_replace(d.serial_number, '\s', '', 'g'))
LEFT JOIN syncro_contacts c ON c.source = a.source AND c.contact_id = a.contact_id
CROSS JOIN LATERAL (SELECT
	lower(btrim(d.device_name)) IS DISTINCT FROM lower(btrim(a.name)) AS name_differs,
	NOT (coalesce(lower(btrim(d.user_email)) = lower(btrim(c.email)), false)
	     OR coalesce(lower(btrim(d.user_name)) = lower(btrim(c.name)), false)
	     OR (coalesce(d.user_id, '') = '' AND c.contact_id IS NULL)) AS user_differs) x
WHERE upper(regexp_replace(d.serial_number, '\s', '', 'g')) <> ''
  AND (name_differs OR user_differs);

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
