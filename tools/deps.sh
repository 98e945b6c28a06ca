#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# deps.sh [build|run|test|bench] - install the Debian 12 packages that are
# missing for what you are about to do.  Needs root (or sudo) only when
# something is missing.
set -eu

build="gcc make pkg-config libevent-dev libssl-dev libpq-dev libhiredis-dev
	librdkafka-dev libjansson-dev libconfig-dev"
run="$build postgresql redis-server curl netcat-openbsd openssl"
test="$run libcmocka-dev python3 python3-pytest python3-psycopg python3-redis
	python3-confluent-kafka python3-yaml kcat prometheus man-db groff-base
	valgrind clang dpkg-dev util-linux procps systemd passwd"
bench="$test wrk nginx-light"

case "${1:-test}" in
build) want=$build ;;
run) want=$run ;;
test) want=$test ;;
bench) want=$bench ;;
*) echo "usage: $0 [build|run|test|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	st=$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "deps: need root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packaged services must not start on install (containers, CI): we start
# our own instances on private ports and directories.
if [ ! -e /usr/sbin/policy-rc.d ] && [ -z "$sudo" ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
