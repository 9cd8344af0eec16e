#!/bin/sh
# autogen.sh — install what the build and the tests need (Debian, as root),
# then generate ./configure. Safe to run again.
set -e
cd "$(dirname "$0")"

PACKAGES="build-essential autoconf automake libtool pkg-config \
libczmq-dev libzmq3-dev libsqlite3-dev liblmdb-dev libmicrohttpd-dev \
nettle-dev libjansson-dev libgnutls28-dev curl wrk openssl sqlite3 iproute2"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
            || missing="$missing $p"
    done
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "autogen.sh: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $missing
    else
        echo "autogen.sh: missing packages:$missing" >&2
        echo "autogen.sh: run as root, or: sudo apt-get install$missing" >&2
        exit 1
    fi
fi
mkdir -p m4 build-aux
autoreconf -fi
