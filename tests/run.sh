#!/bin/sh
# Run every test: start a throwaway PostgreSQL cluster, run the test binary
# (unit and end-to-end tests), stop the cluster whatever happens.
# Usage: BUILD=build sh tests/run.sh [test-name-filter...]
set -eu
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/invsync-test.XXXXXX)
chmod 755 "$tmp"
cleanup() {
	sh "$here/tests/pgtmp.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
	# a test that mounts a small filesystem unmounts it itself; if it was
	# killed first, do it here
	[ -r /proc/mounts ] && awk -v d="$tmp/" 'index($2, d) == 1 { print $2 }' /proc/mounts |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
sh "$here/tests/pgtmp.sh" start "$tmp/pg" >/dev/null
. "$tmp/pg/env"
export PGHOST PGPORT PGUSER PGDATABASE
INVSYNC_BIN="$here/$BUILD/invsync"
INVSYNC_SIM="$here/$BUILD/invsync-sim"
INVSYNC_TEST_TMP="$tmp"
# tests that restart the server: sh "$INVSYNC_PGTMP" restart "$INVSYNC_TEST_TMP/pg"
INVSYNC_PGTMP="$here/tests/pgtmp.sh"
export INVSYNC_BIN INVSYNC_SIM INVSYNC_TEST_TMP INVSYNC_PGTMP
# tests over HTTPS make their CA with it (e2e_test_ca)
INVSYNC_GEN_CA="$here/tests/gen-test-ca.sh"
export INVSYNC_GEN_CA
# tests that read files of the source tree (contrib/)
INVSYNC_SRCDIR="$here"
export INVSYNC_SRCDIR
set +e
"$here/$BUILD/tests/run-tests" "$@"
rc=$?
set -e
exit $rc
