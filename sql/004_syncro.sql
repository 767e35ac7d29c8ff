-- 004_syncro: the inventories of Syncro sources: assets, and the customers,
-- contacts and asset types they refer to.
--
-- Each table is partitioned by source and loaded like mosyle_devices: a
-- run fills a fresh table (stage_rows) that replaces the source's partition
-- when the run commits (commit_rows), so readers see one run's rows or the
-- next run's, never a mix. Ids are Syncro's own; the housekeeping columns
-- (attrs, first_seen, last_seen, run_id, page, attempt) are those of
-- mosyle_devices.

CREATE TABLE syncro_assets (
	source        text        NOT NULL,
	asset_id      bigint      NOT NULL, -- id
	name          text,
	asset_type    text,                 -- the type's name (assets carry no type id)
	asset_serial  text,
	customer_id   bigint,
	customer_name text,                 -- the embedded customer's business_name, or
	                                    -- "firstname lastname" when it has none
	contact_id    bigint,
	created_at    timestamptz,
	updated_at    timestamptz,
	properties    jsonb,                -- custom fields as received: keys are
	                                    -- case-sensitive ("Notes" and "notes" differ)
	attrs         jsonb       NOT NULL, -- the full record as received
	first_seen    timestamptz NOT NULL,
	last_seen     timestamptz NOT NULL,
	run_id        bigint      NOT NULL, -- the run that loaded this row
	page          int         NOT NULL, -- the page it came from
	attempt       int         NOT NULL, -- the page attempt that fetched it
	PRIMARY KEY (source, asset_id)
) PARTITION BY LIST (source);
CREATE INDEX syncro_assets_serial ON syncro_assets (source, asset_serial);
CREATE INDEX syncro_assets_customer ON syncro_assets (source, customer_id);

-- Disabled customers included: assets may still belong to them.
CREATE TABLE syncro_customers (
	source        text        NOT NULL,
	customer_id   bigint      NOT NULL, -- id
	business_name text,
	firstname     text,
	lastname      text,
	email         text,
	disabled      boolean,
	created_at    timestamptz,
	updated_at    timestamptz,
	attrs         jsonb       NOT NULL,
	first_seen    timestamptz NOT NULL,
	last_seen     timestamptz NOT NULL,
	run_id        bigint      NOT NULL,
	page          int         NOT NULL,
	attempt       int         NOT NULL,
	PRIMARY KEY (source, customer_id)
) PARTITION BY LIST (source);

CREATE TABLE syncro_contacts (
	source        text        NOT NULL,
	contact_id    bigint      NOT NULL, -- id
	customer_id   bigint,
	name          text,
	email         text,
	attrs         jsonb       NOT NULL,
	first_seen    timestamptz NOT NULL,
	last_seen     timestamptz NOT NULL,
	run_id        bigint      NOT NULL,
	page          int         NOT NULL,
	attempt       int         NOT NULL,
	PRIMARY KEY (source, contact_id)
) PARTITION BY LIST (source);
CREATE INDEX syncro_contacts_customer ON syncro_contacts (source, customer_id);

-- The asset type names of /settings.
CREATE TABLE syncro_asset_types (
	source        text        NOT NULL,
	asset_type_id bigint      NOT NULL, -- id
	name          text,
	attrs         jsonb       NOT NULL,
	first_seen    timestamptz NOT NULL,
	last_seen     timestamptz NOT NULL,
	run_id        bigint      NOT NULL,
	page          int         NOT NULL,
	attempt       int         NOT NULL,
	PRIMARY KEY (source, asset_type_id)
) PARTITION BY LIST (source);

DO $$
BEGIN
	ALTER TABLE syncro_assets ALTER COLUMN attrs SET COMPRESSION lz4,
		ALTER COLUMN properties SET COMPRESSION lz4;
	ALTER TABLE syncro_customers ALTER COLUMN attrs SET COMPRESSION lz4;
	ALTER TABLE syncro_contacts ALTER COLUMN attrs SET COMPRESSION lz4;
	ALTER TABLE syncro_asset_types ALTER COLUMN attrs SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
	NULL; -- server built without lz4: keep the default
END $$;
