#!/bin/sh
# Install the Debian packages invsync needs to build, test, demo and
# benchmark, if any is missing. Quiet and quick when all are there.
# Extra packages (for one target only) may be named as arguments.
set -eu
PKGS="build-essential pkg-config libuv1-dev libcurl4-openssl-dev libpq-dev libyajl-dev
libinih-dev libmicrohttpd-dev postgresql postgresql-client curl ca-certificates openssl procps time $*"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # word splitting wanted
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
