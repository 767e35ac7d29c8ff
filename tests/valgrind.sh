#!/bin/sh
# make valgrind: end-to-end syncs and checks (succeeding and failing), and a
# report of what they loaded (text and the HTML page), under
# valgrind --leak-check=full against the simulator and a throwaway
# PostgreSQL.
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
# A district with every endpoint (a session token that expires after 25
# requests, so one is renewed mid-run), and Syncro tenants behind a limit
# low enough to earn 429s.
"$top/$BUILD/invsync-sim" --port-file "$tmp/port" --ios 1500 --mac 300 --tvos 20 --visionos 0 \
	--rows absent --users 1500 --classes 120 --groups 6 --adminlogs 600 --token-max-requests 25 \
	--syncro-assets 1200 --syncro-honour-per-page --syncro-rate 120 --syncro-window-ms 1000 \
	--syncro-retry-after 1 --syncro-api-key good-key --syncro-expired-key old-key \
	>"$tmp/sim.log" 2>&1 &
sim_pid=$!
while [ ! -s "$tmp/port" ]; do sleep 0.05; done
port=$(cat "$tmp/port")
write_config() { # mosyle-password syncro-key
	cat >"$tmp/invsync.ini" <<INI
[fetch]
concurrency = 8
syncro_requests_per_minute = 3000
[mosyle vg]
base_url = http://127.0.0.1:$port/v2
access_token = sim-access-token
email = admin@district.example
password = $1
[syncro vg-msp]
base_url = http://127.0.0.1:$port/api/v1
api_key = $2
INI
	chmod 600 "$tmp/invsync.ini"
}
status=0
for case in "sync sim-password good-key 0" "sync wrong-password old-key 1" \
	    "check sim-password good-key 0" "check wrong-password old-key 1" \
	    "report sim-password good-key 0"; do
	set -- $case
	write_config "$2" "$3"
	# the simulated Syncro limit counts over 1 s: let the sync's requests
	# leave the window before a check asks /me
	[ "$1" = check ] && sleep 2
	extra=
	[ "$1" = report ] && extra="--html $tmp/report.html"
	# shellcheck disable=SC2086 # word splitting wanted
	valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--quiet "$top/$BUILD/invsync" "$1" -c "$tmp/invsync.ini" $extra >"$tmp/out" 2>"$tmp/err" \
		|| rc=$?
	rc=${rc:-0}
	if [ "$rc" != "$4" ]; then
		echo "valgrind run ($case): exit $rc, expected $4"
		cat "$tmp/out" "$tmp/err"
		status=1
	elif [ "$1 $4" = "sync 0" ] && ! { grep -q "session token renewed" "$tmp/err" &&
					    grep -q "rate limited (HTTP 429" "$tmp/err"; }; then
		echo "valgrind run ($case): no token renewal or no 429 to exercise"
		cat "$tmp/err"
		status=1
	elif [ "$1" = report ] && ! { grep -q "^Last run of each source" "$tmp/out" &&
				      grep -q "<svg class=\"chart versions\"" "$tmp/report.html"; }; then
		echo "valgrind run ($case): no report, or no page"
		cat "$tmp/out" "$tmp/err"
		status=1
	else
		echo "valgrind run ($case): clean (exit $rc)"
	fi
	unset rc
done
exit $status
