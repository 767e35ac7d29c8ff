#!/bin/sh
# make demo: a throwaway PostgreSQL under .demo/, the simulator serving a
# demo district and two MSP tenants, one full sync, a second sync of the
# district with changes, and invsync report on what was loaded (on the
# terminal, and as .demo/report.html).
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
# start_sim IOS MAC [ARGS...]: the simulator, serving IOS iPads and MAC Macs
start_sim() {
	ios=$1 mac=$2
	shift 2
	rm -f "$demo/sim.port"
	"$top/$BUILD/invsync-sim" --port-file "$demo/sim.port" --ios "$ios" --mac "$mac" --tvos 400 \
		--visionos 60 --users 20000 --classes 600 --groups 30 --adminlogs 3000 \
		--syncro-assets 2000 --syncro-honour-per-page --syncro-rate 600 \
		--syncro-api-key demo-msp-key-1 --syncro-api-key demo-msp-key-2 \
		--latency-ms 40 --jitter-ms 40 "$@" >"$demo/sim.log" 2>&1 &
	sim_pid=$!
	i=0
	while [ ! -s "$demo/sim.port" ]; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "simulator did not start:"; cat "$demo/sim.log"; exit 1; }
		sleep 0.05
	done
}
start_sim 20000 8000
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

# the next night: what changed shows in the report
echo
echo "== the next night: 150 new iPads, 40 Macs gone, every 400th device renamed and updated"
echo "== invsync sync -q -c .demo/invsync.ini --source demo-district"
kill "$sim_pid"
wait "$sim_pid" 2>/dev/null || true
start_sim 20150 7960 --port "$port" --rename-every 400
"$top/$BUILD/invsync" sync -q -c "$demo/invsync.ini" --source demo-district

echo
echo "== invsync report -c .demo/invsync.ini --html .demo/report.html"
"$top/$BUILD/invsync" report -c "$demo/invsync.ini" --html "$demo/report.html"
echo
echo "The same report as a web page, with charts: $demo/report.html"
if [ "${DEMO_KEEP:-0}" = 1 ]; then
	echo
	echo "PostgreSQL keeps running: . $pgdir/env && psql"
	echo "stop it with: sh tests/pgtmp.sh stop $pgdir"
fi
