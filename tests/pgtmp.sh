#!/bin/sh
# pgtmp.sh - a throwaway PostgreSQL cluster for tests.
#
#   tests/pgtmp.sh start DIR   create and start a cluster in DIR (missing or
#                              empty); print and write DIR/env, export lines
#                              for PGHOST PGPORT PGUSER PGDATABASE
#   tests/pgtmp.sh stop DIR    stop it (if running) and remove DIR
#   tests/pgtmp.sh restart DIR stop it (fast: connections are ended) and start
#                              it again on the same port; wait until it is up
#
# The cluster listens on 127.0.0.1 on a free port and on a socket in
# DIR/sock, trusts every local connection, has superuser "postgres" and a
# database "invsync", and is tuned for speed, not durability. Its log is
# DIR/log. Run as root, the server runs as the "postgres" user. Set
# PG_BINDIR to choose the PostgreSQL binaries (default: the newest
# /usr/lib/postgresql/*/bin), PGTMP_PORT for the first port to try
# (default: a random one from 20000 to 40000; busy ports are skipped).
set -eu

MARKER=.pgtmp-cluster

die() {
	echo "pgtmp: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 start|stop|restart DIR" >&2
	exit 2
}

is_root() {
	[ "$(id -u)" = 0 ]
}

# Run a command as the cluster's owner.
as_owner() {
	if is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

find_bindir() {
	if [ -n "${PG_BINDIR:-}" ]; then
		[ -x "$PG_BINDIR/pg_ctl" ] || die "no pg_ctl in PG_BINDIR=$PG_BINDIR"
		echo "$PG_BINDIR"
		return
	fi
	# shellcheck disable=SC2012 # version-numbered directory names
	newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$newest" ] && [ -x "$newest/pg_ctl" ]; then
		echo "$newest"
		return
	fi
	initdb_path=$(command -v initdb 2>/dev/null) || die "cannot find the PostgreSQL binaries (set PG_BINDIR)"
	dirname "$initdb_path"
}

# A random number from 0 to 65535.
random16() {
	od -An -N2 -tu2 /dev/urandom | tr -d ' \n'
}

# True when something listens on TCP port $1 (when ss is there to tell).
port_busy() {
	command -v ss >/dev/null 2>&1 || return 1
	ss -Hltn 2>/dev/null | awk '{ print $4 }' | grep -q "[:.]$1\$"
}

# Quote $1 for sh: 'it'\''s'.
shquote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# Is the cluster's postmaster alive? (Its pid is the first line of the
# pid file.)
running_pid() {
	pidfile="$1/data/postmaster.pid"
	[ -f "$pidfile" ] || return 1
	pid=$(head -n 1 "$pidfile" 2>/dev/null) || return 1
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

start() {
	dir=$1
	if [ -e "$dir" ]; then
		[ -d "$dir" ] || die "$dir is not a directory"
		if [ -n "$(ls -A "$dir")" ]; then
			die "$dir is not empty; give a new or empty directory"
		fi
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	: >"$dir/$MARKER"
	cd /

	bindir=$(find_bindir)
	# The socket path must fit in sockaddr_un (107 bytes).
	if [ $(( ${#dir} + 22 )) -gt 107 ]; then
		die "$dir is too long a path for a Unix socket; use a shorter one (e.g. mktemp -d)"
	fi

	mkdir "$dir/sock"
	chmod 755 "$dir" "$dir/sock"
	if is_root; then
		id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run the server"
		chown postgres "$dir" "$dir/sock"
		as_owner test -x "$dir" ||
			die "user postgres cannot reach $dir; use a directory under /tmp"
	fi

	as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
		--locale=C -N >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; die "initdb failed"; }
	echo "include = 'pgtmp.conf'" >>"$dir/data/postgresql.conf"

	attempts=0
	port=${PGTMP_PORT:-$(( 20000 + $(random16) % 20001 ))}
	case "$port" in '' | *[!0-9]*) die "PGTMP_PORT must be a port number" ;; esac
	while :; do
		attempts=$((attempts + 1))
		[ "$attempts" -le 25 ] || die "no free port found; see $dir/log"
		if port_busy "$port"; then
			port=$((port + 1))
			continue
		fi
		# shellcheck disable=SC2016 # $1 is for the inner sh
		as_owner sh -c 'cat >"$1"' sh "$dir/data/pgtmp.conf" <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
max_connections = 200
logging_collector = off
EOF
		lines=0
		[ -f "$dir/log" ] && lines=$(wc -l <"$dir/log")
		if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >/dev/null 2>&1; then
			break
		fi
		# Another process took the port between the check and the bind:
		# try the next one. Any other failure is final.
		if tail -n +"$((lines + 1))" "$dir/log" 2>/dev/null |
			grep -q -e 'could not bind' -e 'could not create any TCP/IP sockets' \
				-e 'Address already in use' -e 'could not create lock file'; then
			port=$((port + 1))
			continue
		fi
		tail -n 20 "$dir/log" >&2 2>/dev/null || true
		die "the server did not start; see $dir/log"
	done

	"$bindir/createdb" -h "$dir/sock" -p "$port" -U postgres invsync ||
		die "createdb invsync failed; see $dir/log"

	{
		echo "export PGHOST=$(shquote "$dir/sock")"
		echo "export PGPORT=$port"
		echo "export PGUSER=postgres"
		echo "export PGDATABASE=invsync"
	} >"$dir/env"
	cat "$dir/env"
}

stop() {
	dir=$1
	[ -e "$dir" ] || return 0
	[ -d "$dir" ] || die "$dir is not a directory"
	if [ ! -e "$dir/$MARKER" ]; then
		# Only a directory this script made (or an empty one) is removed.
		[ -z "$(ls -A "$dir")" ] || die "$dir is not a pgtmp cluster; not removing it"
		rmdir "$dir"
		return 0
	fi
	cd /
	if pid=$(running_pid "$dir"); then
		bindir=$(find_bindir)
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
		if pid=$(running_pid "$dir"); then
			kill -KILL "$pid" 2>/dev/null || true
			sleep 1
		fi
	fi
	rm -rf "$dir"
}

restart() {
	dir=$1
	[ -e "$dir/$MARKER" ] || die "$dir is not a pgtmp cluster"
	cd /
	bindir=$(find_bindir)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -m fast -w -t 60 restart >/dev/null 2>&1 ||
		{ tail -n 20 "$dir/log" >&2 2>/dev/null || true; die "the server did not restart; see $dir/log"; }
}

[ $# -eq 2 ] || usage
[ -n "$2" ] || usage
case "$1" in
start) start "$2" ;;
stop) stop "$2" ;;
restart) restart "$2" ;;
*) usage ;;
esac
