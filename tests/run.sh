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
export INVSYNC_BIN INVSYNC_SIM INVSYNC_TEST_TMP
set +e
"$here/$BUILD/tests/run-tests" "$@"
rc=$?
set -e
exit $rc
