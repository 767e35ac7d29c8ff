#!/bin/sh
# make bench: invsync against the simulator at scale, on a throwaway
# PostgreSQL, with the figures the targets are judged by. Printed and
# written to bench/results.txt.
#
#   BENCH_DEVICES   devices per OS (default 250000: 4 x 2,500 pages of 100)
#   BENCH_LATENCY   simulated latency per page in ms (default 100)
#   BENCH_CONC      concurrent page transfers (default 64)
#   BENCH_USERS, BENCH_CLASSES, BENCH_GROUPS
#                   the full district's users (default 1000000), classes
#                   (50000) and device groups in all (5000, a quarter per OS)
#   BENCH_ASSETS    Syncro assets (default 100000)
#   BENCH_SYNCRO_RATE  the simulated Syncro limit and invsync's budget, per
#                   minute (default 1800)
#
# Runs, in order:
#   1. first load of 4 x BENCH_DEVICES devices at BENCH_LATENCY ms a page
#   2. the same again (a nightly reload: carries first_seen, swaps)
#   2b. history: two more reloads with 1% of the devices changed (name and
#      OS version, --rename-every 100), the first with history off, the
#      second with it on; the swap transaction of each is timed from the
#      run log, and the difference is the cost of recording the changes
#   3. a quarter of the devices (peak RSS must not grow with page count)
#   4. zero latency (CPU split between invsync and PostgreSQL)
#   5. psql \copy of the same rows into a table of the same shape: the
#      COPY ceiling the end-to-end time is compared with
#   6. a full district: the devices plus users, classes, groups and their
#      members, accounts, custom attributes and admin logs; per-endpoint
#      figures
#   7. one Syncro tenant of BENCH_ASSETS assets at the simulated limit:
#      budget utilisation (requests per minute achieved / budget), 429s
#   8. a Mosyle district and two Syncro tenants in one run
#   9. many tenants in one process: BENCH_TENANTS Syncro tenants (default
#      300) and BENCH_DISTRICTS Mosyle districts (default 20), small ones,
#      within [database] connections = 32: time, peak RSS, outcomes
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
DEV=${BENCH_DEVICES:-250000}
LAT=${BENCH_LATENCY:-100}
CONC=${BENCH_CONC:-64}
out=${BENCH_OUT:-$top/bench/results.txt}
tmp=$(mktemp -d /tmp/invsync-bench.XXXXXX)
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
pm_pid=$(head -n 1 "$tmp/pg/data/postmaster.pid")
clk=$(getconf CLK_TCK)

# CPU seconds of PostgreSQL so far: the postmaster and its reaped backends.
pg_cpu() {
	awk -v clk="$clk" '{ print ($14 + $15 + $16 + $17) / clk }' "/proc/$pm_pid/stat"
}

launch_sim() { # args...
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
	rm -f "$tmp/port"
	"$top/$BUILD/invsync-sim" --port-file "$tmp/port" "$@" >"$tmp/sim.log" 2>&1 &
	sim_pid=$!
	while [ ! -s "$tmp/port" ]; do sleep 0.05; done
	port=$(cat "$tmp/port")
}

# start_sim args...: the simulator, and a config loading the devices of
# one Mosyle source (ENDPOINTS: other endpoints)
start_sim() {
	launch_sim "$@"
	cat >"$tmp/invsync.ini" <<INI
[database]
schema = $schema
[fetch]
concurrency = $CONC
per_host = $CONC
window = 16
[mosyle bench]
base_url = http://127.0.0.1:$port/v2
access_token = sim-access-token
email = admin@district.example
password = sim-password
endpoints = ${ENDPOINTS:-devices}
INI
	chmod 600 "$tmp/invsync.ini"
}

# syncro_section NAME KEY: a Syncro source on the running simulator
syncro_section() {
	cat <<INI
[syncro $1]
base_url = http://127.0.0.1:$port/api/v1
api_key = $2
INI
}

# run NAME: one sync, figures into shell variables NAME_*
run() {
	name=$1
	cpu0=$(pg_cpu)
	# shellcheck disable=SC2086 # RUN_ARGS: several words
	/usr/bin/time -f "%e %M %U %S" -o "$tmp/time" "$top/$BUILD/invsync" sync -c "$tmp/invsync.ini" ${RUN_ARGS:-} \
		>"$tmp/$name.out" 2>"$tmp/$name.err" || { echo "invsync failed:"; cat "$tmp/$name.err"; exit 1; }
	parse=$(sed -n 's/.*parsing and row encoding \([0-9.]*\) s.*/\1/p' "$tmp/$name.out")
	sleep 1 # let the postmaster reap the run's backends
	cpu1=$(pg_cpu)
	read -r wall rss ucpu scpu <"$tmp/time"
	pages=$(psql -XAtc "SELECT pages FROM $schema.sync_runs ORDER BY run_id DESC LIMIT 1")
	devices=$(psql -XAtc "SELECT loaded FROM $schema.sync_runs ORDER BY run_id DESC LIMIT 1")
	eval "${name}_wall=$wall ${name}_rss=$rss ${name}_cpu=$(echo "$ucpu $scpu" | awk '{print $1 + $2}')"
	eval "${name}_pgcpu=$(echo "$cpu0 $cpu1" | awk '{printf "%.1f", $2 - $1}')"
	eval "${name}_pages=$pages ${name}_devices=$devices ${name}_parse=$parse"
	# the inventory is visible from the commit on; its new tables are
	# vacuumed and analyzed, and the reporting indexes built, after it
	# (sql/009, sql/011)
	visible=$(psql -XAtc "SELECT round(extract(epoch FROM finished_at - started_at), 1)
		FROM $schema.sync_runs ORDER BY run_id DESC LIMIT 1")
	indexed=$(sed -n 's/.*reporting indexes built: [0-9]* in \([0-9.]*\) s.*/\1/p' "$tmp/$name.err" | tail -n 1)
	vacuumed=$(sed -n 's/.*new tables vacuumed and analyzed in \([0-9.]*\) s.*/\1/p' "$tmp/$name.err" | tail -n 1)
	eval "${name}_visible=$visible ${name}_indexed=${indexed:-0} ${name}_vacuumed=${vacuumed:-0}"
}

# swap_secs NAME: seconds between the JSON log lines "...; committing"
# and "committed: ..." of run NAME (the final transaction)
swap_secs() {
	sed -n 's/^{"time":"[0-9-]*T\([0-9:.]*\)Z".*\(; committing"\|"committed: [0-9]* rows current"\).*/\1/p' \
		"$tmp/$1.err" | awk -F: '{ t[NR] = $1 * 3600 + $2 * 60 + $3 }
		END { d = t[2] - t[1]; if (d < 0) d += 86400; printf "%.2f", d }'
}

ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "n/a" }'; }
sim_stat() { curl -s "http://127.0.0.1:$port/_sim/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

schema=bench
echo "bench: $((DEV * 4)) devices, ${LAT} ms a page, concurrency $CONC"
start_sim --devices "$DEV" --latency-ms "$LAT"
run load
run reload
# 2b. history: 1% changed, history off then on (the second run changes
# the same devices back, so both swaps carry the same work)
start_sim --devices "$DEV" --latency-ms 0 --rename-every 100
psql -Xq -c "UPDATE bench.history_tables SET enabled = false"
RUN_ARGS="--log-format json" run hist_off
start_sim --devices "$DEV" --latency-ms 0
psql -Xq -c "UPDATE bench.history_tables SET enabled = true"
RUN_ARGS="--log-format json" run hist_on
hist_off_swap=$(swap_secs hist_off)
hist_on_swap=$(swap_secs hist_on)
hist_rows=$(psql -XAtc "SELECT count(*) FROM bench.record_changes WHERE run_id = (SELECT max(run_id) FROM bench.sync_runs)")
hist_cost=$(echo "$hist_on_swap $hist_off_swap" | awk '{ printf "%.2f", $1 - $2 }')
start_sim --devices "$DEV" --latency-ms "$LAT"
start_sim --devices $((DEV / 4)) --latency-ms "$LAT"
schema=bench_small
sed -i "s/^schema = .*/schema = bench_small/" "$tmp/invsync.ini"
run small
schema=bench_fast
start_sim --devices "$DEV" --latency-ms 0
run fast

# the COPY ceiling: the same rows, as invsync sent them, into a fresh
# table of the same shape, by psql \copy
cols="attempt, page, device_key, udid, serial_number, os, device_name, model, model_name,
os_version, asset_tag, tags, user_id, user_name, user_email, user_type, is_supervised,
total_disk, available_disk, battery, enrollment_type, last_checkin, attrs"
cols=$(echo "$cols" | tr '\n' ' ')
psql -Xq -c "\\copy (SELECT $cols FROM bench.mosyle_devices) TO '$tmp/rows.copy'"
psql -Xq -c "CREATE TABLE public.copy_ceiling (LIKE bench.mosyle_devices INCLUDING DEFAULTS INCLUDING COMPRESSION INCLUDING STORAGE)" \
	-c "ALTER TABLE public.copy_ceiling ALTER source SET DEFAULT 'bench', ALTER run_id SET DEFAULT 0, ALTER first_seen SET DEFAULT now(), ALTER last_seen SET DEFAULT now()"
t0=$(date +%s.%N)
psql -Xq -c "\\copy public.copy_ceiling ($cols) FROM '$tmp/rows.copy'"
t1=$(date +%s.%N)
ceiling=$(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}')
copy_mb=$(du -m "$tmp/rows.copy" | cut -f1)
rm -f "$tmp/rows.copy"

# 6. the full district
USERS=${BENCH_USERS:-1000000}
CLASSES=${BENCH_CLASSES:-50000}
GROUPS=${BENCH_GROUPS:-5000}
schema=bench_district
ENDPOINTS="devices, users, classes, device_groups, device_group_members, accounts, custom_attributes, admin_logs" \
	start_sim --devices "$DEV" --users "$USERS" --classes "$CLASSES" --groups $((GROUPS / 4)) \
	--adminlogs 20000 --latency-ms "$LAT"
sed -i "s/^schema = .*/schema = $schema/" "$tmp/invsync.ini"
run district
district_table=$(psql -XAt -F ' ' -c "SELECT endpoint, pages, records, loaded FROM $schema.sync_run_endpoints ORDER BY endpoint")
district_secs=$(awk '/^  [a-z_]+(\/[a-z]+)? / && $1 != "error:" && $1 != "warnings:" { print $1, $NF }' "$tmp/district.out")

# 7. one Syncro tenant at the simulated limit
ASSETS=${BENCH_ASSETS:-100000}
SRATE=${BENCH_SYNCRO_RATE:-1800}
schema=bench_syncro
launch_sim --syncro-assets "$ASSETS" --syncro-honour-per-page --syncro-rate "$SRATE" \
	--syncro-api-key bench-key-1 --syncro-api-key bench-key-2 --latency-ms "$LAT"
{
	printf '[database]\nschema = %s\n[fetch]\nconcurrency = %s\nsyncro_requests_per_minute = %s\n' \
		"$schema" "$CONC" "$SRATE"
	syncro_section msp bench-key-1
} >"$tmp/invsync.ini"
run syncro
syncro_budget=$(grep "^Syncro budget" "$tmp/syncro.out")
syncro_util=$(echo "$syncro_budget" | sed -n 's/.*utilisation \([0-9.]*\).*/\1/p')
syncro_429=$(sim_stat syncro_429)
syncro_requests=$(sim_stat syncro_requests)

# 8. a Mosyle district and two Syncro tenants in one run
schema=bench_mixed
launch_sim --devices $((DEV / 4)) --users $((DEV / 4)) --classes 5000 --groups 100 \
	--syncro-assets $((ASSETS / 2)) --syncro-honour-per-page --syncro-rate "$SRATE" \
	--syncro-api-key bench-key-1 --syncro-api-key bench-key-2 --latency-ms "$LAT"
{
	printf '[database]\nschema = %s\n[fetch]\nconcurrency = %s\nper_host = %s\nsyncro_requests_per_minute = %s\n' \
		"$schema" "$CONC" "$CONC" "$SRATE"
	printf '[mosyle district]\nbase_url = http://127.0.0.1:%s/v2\naccess_token = sim-access-token\n' "$port"
	printf 'email = admin@district.example\npassword = sim-password\n'
	syncro_section tenant-a bench-key-1
	syncro_section tenant-b bench-key-2
} >"$tmp/invsync.ini"
run mixed
mixed_sources=$(awk '/^(district|tenant-a|tenant-b) / { print $1, $2, $3, $NF " s" }' "$tmp/mixed.out")
mixed_budget=$(grep "^Syncro budget" "$tmp/mixed.out")
mixed_429=$(sim_stat syncro_429)

# 9. many tenants
TENANTS=${BENCH_TENANTS:-300}
DISTRICTS=${BENCH_DISTRICTS:-20}
schema=bench_many
launch_sim --ios 2000 --mac 500 --tvos 20 --visionos 0 --users 2000 --classes 60 --groups 5 \
	--syncro-assets 300 --syncro-honour-per-page --syncro-customers 20 --latency-ms "$LAT"
{
	printf '[database]\nschema = %s\nconnections = 32\n[fetch]\nconcurrency = %s\nper_host = %s\n' \
		"$schema" "$CONC" "$CONC"
	printf 'syncro_requests_per_minute = 100000\n'
	i=0
	while [ $i -lt "$DISTRICTS" ]; do
		printf '[mosyle district-%03d]\nbase_url = http://127.0.0.1:%s/v2\n' "$i" "$port"
		printf 'access_token = sim-access-token\nemail = admin@district.example\npassword = sim-password\n'
		i=$((i + 1))
	done
	i=0
	while [ $i -lt "$TENANTS" ]; do
		syncro_section "tenant-$(printf %03d $i)" sim-syncro-key
		i=$((i + 1))
	done
} >"$tmp/invsync.ini"
run many
many_ok=$(psql -XAtc "SELECT count(*) FROM $schema.sync_runs WHERE status = 'succeeded'")
many_rows=$(psql -XAtc "SELECT sum(loaded) FROM $schema.sync_runs WHERE status = 'succeeded'")

ideal=$(echo "$load_pages $LAT $CONC" | awk '{printf "%.1f", $1 * $2 / 1000 / $3}')
bound=$(echo "$ideal $ceiling" | awk '{print ($1 > $2) ? $1 : $2}')

{
	echo "invsync bench, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
	echo "devices: $((DEV * 4)) (4 OS), page size 100, latency ${LAT} ms, concurrency $CONC"
	echo "PostgreSQL: throwaway cluster, fsync=off, synchronous_commit=off, shared_buffers=256MB"
	echo
	printf "%-28s %10s %10s %10s %10s %10s %10s\n" run wall_s pages/s devices/s rss_MiB cpu_s pg_cpu_s
	for n in load reload small fast; do
		eval "w=\$${n}_wall p=\$${n}_pages d=\$${n}_devices r=\$${n}_rss c=\$${n}_cpu g=\$${n}_pgcpu"
		printf "%-28s %10s %10s %10s %10s %10s %10s\n" "$n" "$w" \
			"$(echo "$p $w" | awk '{printf "%.0f", $1 / $2}')" \
			"$(echo "$d $w" | awk '{printf "%.0f", $1 / $2}')" \
			"$(echo "$r" | awk '{printf "%.1f", $1 / 1024}')" "$c" "$g"
	done
	echo
	echo "latency-bound ideal (pages x latency / concurrency): ${ideal} s"
	printf '%s\n' "COPY ceiling (psql \\copy of the same ${copy_mb} MB of rows): ${ceiling} s"
	echo "bound = max(ideal, ceiling): ${bound} s"
	echo "first load / bound:  $(ratio "$load_wall" "$bound")   (target <= 1.25)"
	echo "reload / bound:      $(ratio "$reload_wall" "$bound")"
	echo "  of which, after the commit, vacuum and analyze: first load ${load_vacuumed} s," \
		"reload ${reload_vacuumed} s; the reporting indexes: first load ${load_indexed} s," \
		"reload ${reload_indexed} s"
	echo "  inventory visible (run start to commit): first load ${load_visible} s" \
		"= $(ratio "$load_visible" "$bound") x bound, reload ${reload_visible} s" \
		"= $(ratio "$reload_visible" "$bound") x bound"
	echo "first load / ideal:  $(ratio "$load_wall" "$ideal")"
	echo "first load / COPY ceiling: $(ratio "$load_wall" "$ceiling")"
	echo "history, $((DEV * 4)) devices, 1% changed (2 fields each, $hist_rows record_changes rows):"
	echo "  swap transaction without history ${hist_off_swap} s, with ${hist_on_swap} s:" \
		"recording the changes costs ${hist_cost} s"
	echo "  = $(echo "$hist_cost $load_wall" | awk '{printf "%.1f%%", 100 * $1 / $2}') of the first load" \
		"(${load_wall} s; target < 25%), $(echo "$hist_cost $hist_on_wall" | awk '{printf "%.1f%%", 100 * $1 / $2}')" \
		"of that zero-latency reload (${hist_on_wall} s)"
	echo "peak RSS: $(echo "$load_rss" | awk '{printf "%.1f", $1/1024}') MiB at $((DEV * 4)) devices," \
		"$(echo "$small_rss" | awk '{printf "%.1f", $1/1024}') MiB at $DEV devices (target < 64 MiB, flat)"
	echo "zero latency: CPU invsync ${fast_cpu} s (parsing and row encoding ${fast_parse} s)," \
		"PostgreSQL ${fast_pgcpu} s"
	echo "parsing and row encoding / all CPU: $(echo "$fast_parse $fast_cpu $fast_pgcpu" | awk '{printf "%.1f%%", 100 * $1 / ($2 + $3)}')" \
		"(target < 20%); all invsync CPU / all CPU: $(echo "$fast_cpu $fast_pgcpu" | awk '{printf "%.1f%%", 100 * $1 / ($1 + $2)}')"
	echo
	echo "full district: $((DEV * 4)) devices, $USERS users, $CLASSES classes, $GROUPS groups," \
		"20000 admin log entries: ${district_wall} s, peak RSS" \
		"$(echo "$district_rss" | awk '{printf "%.1f", $1/1024}') MiB, $district_devices rows"
	echo "  (a district run against the devices-only first load: $(ratio "$district_wall" "$load_wall"))"
	printf "  %-28s %8s %10s %10s %8s\n" endpoint pages records loaded seconds
	echo "$district_table" | while read -r ep pages records loaded; do
		secs=$(echo "$district_secs" | awk -v e="$ep" '$1 == e { print $2 }')
		printf "  %-28s %8s %10s %10s %8s\n" "$ep" "$pages" "$records" "$loaded" "$secs"
	done
	echo
	echo "Syncro: $ASSETS assets at a simulated limit of $SRATE/min, budget $SRATE/min (2% margin):" \
		"${syncro_wall} s, $syncro_requests requests, $syncro_429 refused (429)"
	echo "  $syncro_budget"
	echo "  budget utilisation: $syncro_util (target >= 0.95 with zero 429s)"
	echo
	echo "mixed run (Mosyle district of $DEV devices and $((DEV / 4)) users, two Syncro tenants of" \
		"$((ASSETS / 2)) assets sharing one budget): ${mixed_wall} s, $mixed_429 refused (429)"
	echo "$mixed_sources" | sed 's/^/  /'
	echo "  $mixed_budget"
	echo
	echo "many tenants: $DISTRICTS Mosyle districts (2,520 devices, 2,000 users each) and $TENANTS" \
		"Syncro tenants (300 assets each) in one process, connections = 32:"
	echo "  ${many_wall} s, $many_ok of $((DISTRICTS + TENANTS)) sources succeeded, $many_rows rows," \
		"peak RSS $(echo "$many_rss" | awk '{printf "%.1f", $1/1024}') MiB"
} | tee "$out"
echo "written to $out"
