#!/bin/sh
# make demo: a throwaway PostgreSQL under .demo/, the simulator serving a
# demo district and two MSP tenants, one full sync, and a short report of
# what was loaded.
# DEMO_KEEP=1 leaves PostgreSQL running afterwards for exploring.
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
demo="$top/.demo"
pgdir="$demo/pg"

# PostgreSQL runs as the postgres user when we are root: it must be able to
# reach .demo; if the checkout is in a private home, use a temporary dir.
mkdir -p "$demo"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$demo" 2>/dev/null; then
	pgdir=$(mktemp -d /tmp/invsync-demo-pg.XXXXXX)
	rmdir "$pgdir"
	echo "note: PostgreSQL cannot reach $demo; using $pgdir instead"
fi
sh "$top/tests/pgtmp.sh" stop "$pgdir" >/dev/null 2>&1 || true

sim_pid=
cleanup() {
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
	if [ "${DEMO_KEEP:-0}" != 1 ]; then
		sh "$top/tests/pgtmp.sh" stop "$pgdir" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting a throwaway PostgreSQL"
sh "$top/tests/pgtmp.sh" start "$pgdir" >/dev/null
. "$pgdir/env"

echo "== starting the simulator: a district of 20000 iPads, 8000 Macs, 400 Apple TVs, 60 Vision Pros,"
echo "   20000 users, 600 classes; two Syncro tenants of 2000 assets behind one 600/min limit"
rm -f "$demo/sim.port"
"$top/$BUILD/invsync-sim" --port-file "$demo/sim.port" --ios 20000 --mac 8000 --tvos 400 \
	--visionos 60 --users 20000 --classes 600 --groups 30 --adminlogs 3000 \
	--syncro-assets 2000 --syncro-honour-per-page --syncro-rate 600 \
	--syncro-api-key demo-msp-key-1 --syncro-api-key demo-msp-key-2 \
	--latency-ms 40 --jitter-ms 40 >"$demo/sim.log" 2>&1 &
sim_pid=$!
i=0
while [ ! -s "$demo/sim.port" ]; do
	i=$((i + 1))
	[ $i -lt 200 ] || { echo "simulator did not start:"; cat "$demo/sim.log"; exit 1; }
	sleep 0.05
done
port=$(cat "$demo/sim.port")

cat >"$demo/invsync.ini" <<INI
; written by make demo
[database]
conninfo = host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE

[fetch]
concurrency = 32
; the simulated Syncro limit (the real one is 180)
syncro_requests_per_minute = 600

[mosyle demo-district]
base_url = http://127.0.0.1:$port/v2
access_token = sim-access-token
email = admin@district.example
password = sim-password

[syncro demo-msp-north]
base_url = http://127.0.0.1:$port/api/v1
api_key = demo-msp-key-1

[syncro demo-msp-south]
base_url = http://127.0.0.1:$port/api/v1
api_key = demo-msp-key-2
INI
chmod 600 "$demo/invsync.ini"

echo "== invsync sync -c .demo/invsync.ini"
"$top/$BUILD/invsync" sync -c "$demo/invsync.ini"

echo
echo "== what was loaded"
psql -X -q -P footer=off <<'SQL'
\pset border 1
SELECT os, count(*) AS devices, count(user_id) AS with_user,
       count(*) FILTER (WHERE is_supervised) AS supervised,
       max(last_checkin)::date AS latest_checkin
FROM invsync.mosyle_devices GROUP BY os ORDER BY devices DESC;
SELECT os, os_version, count(*) AS devices
FROM invsync.mosyle_devices GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 6;
SELECT type, count(*) AS users, count(*) FILTER (WHERE cardinality(assigned_devices) > 0) AS with_devices
FROM invsync.mosyle_users GROUP BY type ORDER BY users DESC;
SELECT role, count(*) AS memberships, count(DISTINCT user_id) AS users
FROM invsync.mosyle_class_members GROUP BY role ORDER BY 2 DESC;
SELECT source, asset_type, count(*) AS assets,
       count(*) FILTER (WHERE properties ? 'kabuto_information') AS agent_managed
FROM invsync.syncro_assets GROUP BY 1, 2 ORDER BY 1, 3 DESC;
SELECT source, kind, status, pages, pages_wasted AS wasted, retries, throttled AS "429s",
       loaded, pg_size_pretty(bytes) AS received, finished_at - started_at AS took
FROM invsync.sync_runs ORDER BY run_id, source;
SQL
if [ "${DEMO_KEEP:-0}" = 1 ]; then
	echo
	echo "PostgreSQL keeps running: . $pgdir/env && psql"
	echo "stop it with: sh tests/pgtmp.sh stop $pgdir"
fi
