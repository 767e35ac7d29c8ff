#!/bin/sh
# make soak: sync the same simulated district again and again while the
# simulator fails a few percent of its pages (503s, connections reset or cut
# short, malformed JSON), on a throwaway PostgreSQL, and check after every
# run that
#   - a run that succeeded loaded exactly the simulator's inventory: the
#     count per OS, every device once, every row from this run, status
#     succeeded with loaded equal to the total;
#   - a run that failed (exit status 1, status failed, a reason) left the
#     previous inventory exactly as it was (same run_id, same count);
#   - invsync never crashed, hung, nor left a run 'running', and the
#     simulator is still up;
#   - invsync's peak RSS does not grow: the last successful run may not
#     exceed the first by more than 20%.
# Runs use retries = 6, so nearly all succeed; every 10th run uses
# retries = 0, so that one of its pages most likely fails and the check of
# a failed run is exercised too. One line per run, a summary, and a
# non-zero exit status on any violation.
#
#   SOAK_SECONDS   how long to keep starting runs (default 180)
#   SOAK_RUNS      at most this many runs (default 1000)
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_MAX=${SOAK_SECONDS:-180}
RUNS_MAX=${SOAK_RUNS:-1000}
FAIL_EVERY=10
RUN_TIMEOUT=120
IOS=3000
MAC=1500
TVOS=200
VISIONOS=50
TOTAL=$((IOS + MAC + TVOS + VISIONOS))
FAULTS="--fault-rate 3:503 --fault-rate 1:reset --fault-rate 1:truncate --fault-rate 1:malformed"
S=soak

case "$SECONDS_MAX$RUNS_MAX" in *[!0-9]*) echo "soak: SOAK_SECONDS and SOAK_RUNS are whole numbers" >&2; exit 2 ;; esac
for tool in psql curl timeout; do
	command -v "$tool" >/dev/null 2>&1 || { echo "soak: $tool is needed" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "soak: /usr/bin/time (package time) is needed" >&2; exit 2; }

tmp=$(mktemp -d /tmp/invsync-soak.XXXXXX)
chmod 755 "$tmp"
sim_pid=
cleanup() {
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
	sh "$top/tests/pgtmp.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sh "$top/tests/pgtmp.sh" start "$tmp/pg" >/dev/null
. "$tmp/pg/env"
export PGHOST PGPORT PGUSER PGDATABASE

# shellcheck disable=SC2086 # $FAULTS is several arguments
"$top/$BUILD/invsync-sim" --port-file "$tmp/port" --ios $IOS --mac $MAC --tvos $TVOS \
	--visionos $VISIONOS --seed 7 --jitter-ms 10 $FAULTS >"$tmp/sim.log" 2>&1 &
sim_pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
	i=$((i + 1))
	[ $i -lt 200 ] || { echo "soak: the simulator did not start:" >&2; cat "$tmp/sim.log" >&2; exit 1; }
	sleep 0.05
done
port=$(cat "$tmp/port")

write_config() { # file retries
	cat >"$1" <<INI
[database]
schema = $S

[fetch]
concurrency = 16
window = 4
retries = $2
retry_delay_ms = 10
timeout = 10

[mosyle district]
base_url = http://127.0.0.1:$port/v2
access_token = sim-access-token
email = admin@district.example
password = sim-password
INI
	chmod 600 "$1"
}
write_config "$tmp/steady.ini" 6
write_config "$tmp/fragile.ini" 0

q() {
	psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"
}

violations=0
violation() { # run message; printed after the run's line
	echo "  VIOLATION in run $1: $2" >>"$tmp/violations"
	violations=$((violations + 1))
}
report_violations() {
	if [ -s "$tmp/violations" ]; then
		cat "$tmp/violations"
		rm -f "$tmp/violations"
	fi
}

prev_run=0      # run_id the current inventory comes from (0: none yet)
prev_count=0
runs=0
succeeded=0
failed=0
first_rss=
last_rss=
max_rss=0
retries_total=0
start=$(date +%s)

while [ $runs -lt "$RUNS_MAX" ] && [ $(($(date +%s) - start)) -lt "$SECONDS_MAX" ]; do
	runs=$((runs + 1))
	cfg=$tmp/steady.ini
	kind=steady
	if [ $((runs % FAIL_EVERY)) -eq 0 ]; then
		cfg=$tmp/fragile.ini
		kind=fragile
	fi
	t0=$(date +%s%3N)
	set +e
	timeout -s KILL "$RUN_TIMEOUT" /usr/bin/time -f %M -o "$tmp/rss" \
		"$top/$BUILD/invsync" sync -c "$cfg" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	set -e
	ms=$(($(date +%s%3N) - t0))
	rss=$(tail -n 1 "$tmp/rss" 2>/dev/null || true)
	case "$rss" in '' | *[!0-9]*) rss=0 ;; esac

	line=$(q "SELECT run_id, status, coalesce(loaded, -1), retries,
		 (SELECT count(*) FROM $S.mosyle_devices WHERE os = 'ios'),
		 (SELECT count(*) FROM $S.mosyle_devices WHERE os = 'mac'),
		 (SELECT count(*) FROM $S.mosyle_devices WHERE os = 'tvos'),
		 (SELECT count(*) FROM $S.mosyle_devices WHERE os = 'visionos'),
		 (SELECT count(*) FROM $S.mosyle_devices),
		 (SELECT count(DISTINCT device_key) FROM $S.mosyle_devices),
		 (SELECT coalesce(min(run_id), 0) FROM $S.mosyle_devices),
		 (SELECT coalesce(max(run_id), 0) FROM $S.mosyle_devices),
		 (SELECT count(*) FROM $S.sync_runs),
		 (SELECT count(*) FROM $S.sync_runs WHERE status = 'running'),
		 error IS NOT NULL AND error <> ''
		 FROM $S.sync_runs ORDER BY run_id DESC LIMIT 1" 2>"$tmp/psql.err" | tr '|' ' ') || line=
	if [ -z "$line" ]; then
		echo "run $runs: exit $rc, no run recorded: $(head -c 300 "$tmp/psql.err")"
		violation $runs "nothing in sync_runs"
		report_violations
		sed 's/^/    /' "$tmp/err" | tail -n 20
		break
	fi
	# shellcheck disable=SC2086 # split the row into fields
	set -- $line
	run_id=$1 status=$2 loaded=$3 retries=$4 ios=$5 mac=$6 tvos=$7 vision=$8
	count=$9
	shift 9
	distinct=$1 min_run=$2 max_run=$3 nruns=$4 running=$5 has_error=$6

	case "$rc:$status" in
	0:succeeded)
		succeeded=$((succeeded + 1))
		[ "$ios $mac $tvos $vision" = "$IOS $MAC $TVOS $VISIONOS" ] ||
			violation $runs "devices per OS $ios/$mac/$tvos/$vision, want $IOS/$MAC/$TVOS/$VISIONOS"
		{ [ "$count" = $TOTAL ] && [ "$distinct" = $TOTAL ]; } ||
			violation $runs "$count rows, $distinct distinct devices, want $TOTAL of each"
		[ "$loaded" = $TOTAL ] || violation $runs "loaded = $loaded, want $TOTAL"
		{ [ "$min_run" = "$run_id" ] && [ "$max_run" = "$run_id" ]; } ||
			violation $runs "rows from runs $min_run..$max_run, want all from run $run_id"
		prev_run=$run_id
		prev_count=$count
		[ -n "$first_rss" ] || first_rss=$rss
		last_rss=$rss
		;;
	1:failed)
		failed=$((failed + 1))
		[ "$has_error" = t ] || violation $runs "failed without a reason in sync_runs"
		[ "$count" = "$prev_count" ] ||
			violation $runs "the failed run changed the inventory: $count rows, had $prev_count"
		if [ "$prev_run" = 0 ]; then
			[ "$min_run" = 0 ] || violation $runs "rows appeared without a successful run"
		else
			{ [ "$min_run" = "$prev_run" ] && [ "$max_run" = "$prev_run" ]; } ||
				violation $runs "rows from runs $min_run..$max_run, want all from run $prev_run"
		fi
		[ "$kind" = fragile ] || echo "  note: run $runs failed although it had 6 retries"
		;;
	*)
		violation $runs "exit status $rc with run status $status"
		;;
	esac
	[ "$nruns" = "$runs" ] || violation $runs "$nruns rows in sync_runs after $runs runs"
	[ "$running" = 0 ] || violation $runs "$running runs left 'running'"
	if grep -q -e 'Sanitizer' -e 'runtime error' "$tmp/err"; then
		violation $runs "sanitizer report"
	fi
	kill -0 "$sim_pid" 2>/dev/null || violation $runs "the simulator died"
	[ "$retries" -ge 0 ] 2>/dev/null && retries_total=$((retries_total + retries))
	[ "$rss" -gt "$max_rss" ] && max_rss=$rss

	why=
	if [ "$status" = failed ]; then
		why=$(q "SELECT ' (' || left(error, 70) || ')' FROM $S.sync_runs WHERE run_id = $run_id" ||
			true)
	fi
	printf 'run %d: %-7s %-9s exit %d  %5d current  %3d retries  rss %6d KB  %5d ms%s\n' \
		"$runs" "$kind" "$status" "$rc" "$count" "$retries" "$rss" "$ms" "$why"
	report_violations
	if [ $violations -gt 0 ]; then
		echo "  stderr of the run:"
		sed 's/^/    /' "$tmp/err" | tail -n 20
		break
	fi
done

faults=$(curl -sS "http://127.0.0.1:$port/_sim/stats" | sed -n 's/.*"faults":\([0-9]*\).*/\1/p')
requests=$(curl -sS "http://127.0.0.1:$port/_sim/stats" | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')
kill "$sim_pid" 2>/dev/null || true
sim_rc=0
wait "$sim_pid" 2>/dev/null || sim_rc=$?
sim_pid=
[ "$sim_rc" = 0 ] || violation end "the simulator exited $sim_rc: $(tail -n 5 "$tmp/sim.log")"

[ $succeeded -gt 0 ] || violation end "no run succeeded"
growth=0
if [ -n "$first_rss" ] && [ "$first_rss" -gt 0 ]; then
	growth=$(((last_rss - first_rss) * 100 / first_rss))
	[ $((last_rss * 100)) -le $((first_rss * 120)) ] ||
		violation end "peak RSS grew from $first_rss KB (first run) to $last_rss KB (last run)"
fi

echo "soak: $runs runs in $(($(date +%s) - start)) s: $succeeded succeeded, $failed failed" \
	"(runs with retries = 0: $((runs / FAIL_EVERY)))"
echo "soak: simulator served ${requests:-?} requests, ${faults:-?} of them faulty;" \
	"invsync retried $retries_total pages"
echo "soak: peak RSS first $first_rss KB, last $last_rss KB ($growth%), max $max_rss KB"
report_violations
if [ $violations -gt 0 ]; then
	echo "soak: FAILED ($violations violations)"
	exit 1
fi
echo "soak: OK"
