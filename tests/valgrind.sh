#!/bin/sh
# make valgrind: one end-to-end sync (and one failing sync) under valgrind
# --leak-check=full against the simulator and a throwaway PostgreSQL.
# Fails if valgrind reports any error or definitely/indirectly lost memory.
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/invsync-vg.XXXXXX)
chmod 755 "$tmp"
sim_pid=
cleanup() {
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
	sh "$top/tests/pgtmp.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
sh "$top/tests/pgtmp.sh" start "$tmp/pg" >/dev/null
. "$tmp/pg/env"
export PGHOST PGPORT PGUSER PGDATABASE
"$top/$BUILD/invsync-sim" --port-file "$tmp/port" --ios 1500 --mac 300 --tvos 20 --visionos 0 \
	--rows absent >"$tmp/sim.log" 2>&1 &
sim_pid=$!
while [ ! -s "$tmp/port" ]; do sleep 0.05; done
port=$(cat "$tmp/port")
write_config() {
	cat >"$tmp/invsync.ini" <<INI
[fetch]
concurrency = 8
[mosyle vg]
base_url = http://127.0.0.1:$port/v2
access_token = sim-access-token
email = admin@district.example
password = $1
INI
	chmod 600 "$tmp/invsync.ini"
}
status=0
for case in sim-password wrong-password; do
	write_config "$case"
	valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--quiet "$top/$BUILD/invsync" sync -c "$tmp/invsync.ini" >"$tmp/out" 2>"$tmp/err" || rc=$?
	rc=${rc:-0}
	want=0
	[ "$case" = wrong-password ] && want=1
	if [ "$rc" != "$want" ]; then
		echo "valgrind run ($case): exit $rc, expected $want"
		cat "$tmp/err"
		status=1
	else
		echo "valgrind run ($case): clean (exit $rc)"
	fi
	unset rc
done
exit $status
