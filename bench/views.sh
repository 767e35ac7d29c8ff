#!/bin/sh
# make bench-views: the reporting views (sql/008_reporting_views.sql) at
# scale. On a throwaway PostgreSQL (or, with BENCH_VIEWS_REUSE=1, the one
# the PG* variables point at, e.g. from bench/bench.sh), creates a schema
# with `invsync migrate`, loads BENCH_VIEW_DEVICES Mosyle devices and as
# many Syncro assets through stage_rows() and commit_rows() (the path a run
# takes, so the indexes are those a run builds), and prints the EXPLAIN
# ANALYZE execution time of each view.
#
#   BENCH_VIEW_DEVICES  devices (default 1000000)
#   BENCH_VIEW_SOURCES  Mosyle sources the devices are split among, as an
#                       MSP's districts are (default 1; the assets stay in
#                       one Syncro source)
#   BENCH_VIEW_SCHEMA   schema (default invsync_views_bench)
#
# The data: 4 OS, 10 models each, 4 versions per model of which the newest
# is on 70% of the devices, and Mosyle flags two thirds of the others; 90%
# of devices have a user, one in nine of those users two devices; 5% in a
# shared cart; 95% checked in within 20 days, 4% 30 to 400 days ago, 1%
# never; attributes of about 2.9 kB per device, 2.5 kB per asset and
# 0.55 kB per contact (the size of the simulator's records, from the APIs'
# real fields). 90% of the serials are in
# Syncro too (a fifth of those in lower case or with spaces), plus 10%
# Syncro-only; their contacts are the Mosyle users, 1% with another name,
# and 1% of the assets are named differently.
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
N=${BENCH_VIEW_DEVICES:-1000000}
K=${BENCH_VIEW_SOURCES:-1}
SCHEMA=${BENCH_VIEW_SCHEMA:-invsync_views_bench}
tmp=$(mktemp -d /tmp/invsync-bench-views.XXXXXX)
chmod 755 "$tmp"
own_pg=
cleanup() {
	[ -n "$own_pg" ] && sh "$top/tests/pgtmp.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${BENCH_VIEWS_REUSE:-0}" != 1 ]; then
	own_pg=1
	sh "$top/tests/pgtmp.sh" start "$tmp/pg" >/dev/null
	. "$tmp/pg/env"
	export PGHOST PGPORT PGUSER PGDATABASE
fi

printf '[database]\nschema = %s\n' "$SCHEMA" > "$tmp/views.ini"
chmod 600 "$tmp/views.ini"
"$top/$BUILD/invsync" migrate -c "$tmp/views.ini" >/dev/null

psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# The devices of Mosyle source k (of K) are those from (k-1)N/K + 1 to
# kN/K, each source loaded as a run loads it; a single source is "bench".
mosyle_sql() {
	k=1
	while [ "$k" -le "$K" ]; do
		from=$(( (k - 1) * N / K + 1 ))
		to=$(( k * N / K ))
		if [ "$K" = 1 ]; then src=bench; else src=bench-$k; fi
		cat <<EOF
BEGIN;
SELECT stage_rows('mosyle_devices', 1, '$src') AS t \gset
INSERT INTO :t (device_key, udid, serial_number, os, device_name, model, model_name, os_version,
		tags, user_id, user_name, user_email, last_checkin, attrs, page, attempt,
		serial_key, os_update_pending, shared_cart)
-- the last three as invsync computes them while loading
SELECT x.*, serial_key(x.serial_number), mosyle_needs_os_update(x.attrs), device_cart(x.attrs, x.tags)
FROM (SELECT 'U' || i, 'U' || i, s.serial, o.os, 'Device ' || i, o.os || '-model-' || m,
       'Model ' || m, v.version,
       CASE WHEN i % 20 = 1 THEN ARRAY['grade-9'] END,
       u.user_id, 'User ' || u.user_id, u.user_id || '@school.example',
       CASE WHEN i % 100 = 7 THEN NULL
	    WHEN i % 100 BETWEEN 11 AND 14 THEN now() - (30 + i % 370) * interval '1 day'
	    ELSE now() - (i % 20) * interval '1 day' END,
       jsonb_build_object('needosupdate', v.flagged,
			  'AvailableOSUpdates', CASE WHEN v.flagged
						     THEN '[{"Version":"' || (m + 14) || '.4"}]' END,
			  'SharedCartName', CASE WHEN i % 20 = 3 THEN 'Cart ' || i % 300 END,
			  'serial_number', s.serial)
	|| (SELECT jsonb_object_agg('k' || k, md5((i * 31 + k)::text)) FROM generate_series(1, 64) k),
       1 + i / 100, 1
FROM generate_series($from, $to) i
CROSS JOIN LATERAL (SELECT (ARRAY['ios', 'mac', 'tvos', 'visionos'])[1 + i % 4] AS os) o
CROSS JOIN LATERAL (SELECT (i / 4) % 10 AS m) mm(m)
CROSS JOIN LATERAL (SELECT CASE WHEN i / 40 % 10 < 7 THEN (m + 14) || '.4'
				ELSE (m + 14) || '.' || (i / 40 % 10 - 7) END AS version,
			   i / 40 % 10 >= 7 AND i % 3 <> 0 AS flagged) v
CROSS JOIN LATERAL (SELECT 'S' || lpad(to_hex(i), 10, '0') AS serial) s
CROSS JOIN LATERAL (SELECT CASE WHEN i % 20 NOT IN (0, 3)
				THEN 'u' || CASE WHEN i % 10 = 5 THEN i - 1 ELSE i END END
			   AS user_id) u) x(device_key, udid, serial_number, os, device_name, model, model_name,
			    os_version, tags, user_id, user_name, user_email, last_checkin, attrs,
			    page, attempt);
SELECT commit_rows('mosyle_devices', :'t', '$src', '{}', 'device_key');
COMMIT;

SELECT * FROM index_partitions('$src');
EOF
		k=$((k + 1))
	done
}

start=$(date +%s)
{ printf "SET search_path = %s, pg_catalog;\nSET maintenance_work_mem = '512MB';\n" "$SCHEMA"
  mosyle_sql
  cat <<EOF
BEGIN;
SELECT stage_rows('syncro_assets', 2, 'bench') AS t \gset
INSERT INTO :t (asset_id, name, asset_type, asset_serial, customer_id, customer_name,
		contact_id, properties, attrs, page, attempt, serial_key)
SELECT x.*, serial_key(x.asset_serial)
FROM (SELECT i, CASE WHEN i % 100 = 5 THEN 'Renamed ' || i ELSE 'Device ' || i END,
       (ARRAY['iPad', 'Mac', 'Apple TV', 'Vision'])[1 + i % 4],
       CASE WHEN i > $N * 9 / 10 THEN 'X' || lpad(to_hex(i), 10, '0')
	    WHEN i % 10 = 1 THEN lower('S' || lpad(to_hex(i), 10, '0'))
	    WHEN i % 10 = 2 THEN ' S' || lpad(to_hex(i), 10, '0') || ' '
	    ELSE 'S' || lpad(to_hex(i), 10, '0') END,
       i % 1000, 'Customer ' || i % 1000,
       CASE WHEN i % 20 NOT IN (0, 3) THEN CASE WHEN i % 10 = 5 THEN i - 1 ELSE i END END,
       '{}'::jsonb,
       (SELECT jsonb_object_agg('k' || k, md5((i * 17 + k)::text)) FROM generate_series(1, 56) k),
       1 + i / 25, 1
FROM generate_series(1, $N) i) x(asset_id, name, asset_type, asset_serial, customer_id,
				customer_name, contact_id, properties, attrs, page, attempt);
SELECT commit_rows('syncro_assets', :'t', 'bench', '{}', 'asset_id');
COMMIT;

-- the contacts are the Mosyle users, but for one in a hundred
BEGIN;
SELECT stage_rows('syncro_contacts', 2, 'bench') AS t \gset
INSERT INTO :t (contact_id, customer_id, name, email, attrs, page, attempt)
SELECT i, i % 1000, CASE WHEN i % 100 = 6 THEN 'Someone Else' ELSE 'User u' || i END,
       CASE WHEN i % 100 = 6 THEN 'else@msp.example' ELSE 'u' || i || '@school.example' END,
       (SELECT jsonb_object_agg('k' || k, md5((i * 13 + k)::text)) FROM generate_series(1, 12) k),
       1 + i / 25, 1
FROM generate_series(1, $N) i WHERE i % 20 NOT IN (0, 3) AND i % 10 <> 5;
SELECT commit_rows('syncro_contacts', :'t', 'bench', '{}', 'contact_id');
COMMIT;

INSERT INTO sync_runs (run_id, source, kind, started_at, finished_at, status, records, loaded)
SELECT r, 'bench-' || s, 'mosyle', now() - r * interval '1 day',
       now() - r * interval '1 day' + (300 + r % 60) * interval '1 second',
       CASE WHEN r % 7 = 0 THEN 'failed' ELSE 'succeeded' END, 1000000,
       CASE WHEN r % 7 <> 0 THEN 1000000 - r END
FROM generate_series(1, 365) r, generate_series(1, 20) s;
-- after the commits, as a run does
SELECT * FROM index_partitions('bench');
VACUUM ANALYZE;
EOF
} | psql
echo "loaded $N devices ($K Mosyle source(s)) and $N assets in $(( $(date +%s) - start )) s"

# One view a line: its name and the SELECT to explain.
cat > "$tmp/views" <<'EOF'
inventory_by_model	SELECT * FROM inventory_by_model
stale_devices_30d	SELECT * FROM stale_devices_30d
stale_devices(90)	SELECT * FROM stale_devices(90)
os_versions_behind	SELECT * FROM os_versions_behind
devices_needing_os_update	SELECT * FROM devices_needing_os_update
devices_without_user	SELECT * FROM devices_without_user
users_with_several_devices	SELECT * FROM users_with_several_devices
shared_cart_devices	SELECT * FROM shared_cart_devices
shared_carts	SELECT * FROM shared_carts
mosyle_devices_not_in_syncro	SELECT * FROM mosyle_devices_not_in_syncro
syncro_assets_not_in_mosyle	SELECT * FROM syncro_assets_not_in_mosyle
serial_mismatches	SELECT * FROM serial_mismatches
run_trend	SELECT * FROM run_trend
last_runs	SELECT * FROM last_runs
EOF

printf '%-30s %10s %12s\n' view rows 'exec ms'
while IFS='	' read -r name query; do
	# run twice: the second, with the pages cached, is reported
	psql -At -c "SET search_path = $SCHEMA, pg_catalog" \
		-c "EXPLAIN (ANALYZE, TIMING OFF) $query" >/dev/null
	psql -At -c "SET search_path = $SCHEMA, pg_catalog" \
		-c "EXPLAIN (ANALYZE, TIMING OFF) $query" > "$tmp/plan"
	rows=$(sed -n '1s/.*actual rows=\([0-9]*\).*/\1/p' "$tmp/plan")
	ms=$(sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p' "$tmp/plan")
	printf '%-30s %10s %12s\n' "$name" "$rows" "$ms"
	if [ -n "${BENCH_VIEWS_PLANS:-}" ]; then
		sed 's/^/    /' "$tmp/plan"
	fi
done < "$tmp/views"

# What the reporting indexes cost each run: index_partitions() builds them
# on the new partitions after the commit. Rebuilt one at a time here, with
# their sizes (with several Mosyle sources, the first source's).
printf '\n%-42s %10s %12s\n' index size 'build ms'
psql -At -F ' ' -c "SET search_path = $SCHEMA, pg_catalog" -c "
	SELECT p.table_name || '.' || p.name, quote_ident(left(t.relname, 62 - length(p.name)) || '_' || p.name)
	FROM partition_indexes p
	JOIN pg_class t ON t.oid = coalesce(current_partition(p.table_name::regclass, 'bench'),
					   current_partition(p.table_name::regclass, 'bench-1'))
	ORDER BY 1" | while read -r name idx; do
	ms=$(psql -At -c "SET search_path = $SCHEMA, pg_catalog" -c '\timing on' \
		-c "REINDEX INDEX $idx" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
	size=$(psql -At -c "SELECT pg_size_pretty(pg_relation_size('$SCHEMA.$idx'))")
	printf '%-42s %10s %12s\n' "$name" "$size" "$ms"
done
