#!/usr/bin/env bash
# Stops what integration/regtest/up.sh DIR started, by the pids it recorded in DIR/pids: SIGINT
# first (lnd and tapd shut down cleanly on it), SIGKILL for anything still running after 30 s.
#
# usage: integration/regtest/down.sh DIR
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
pids="$1/pids"
if [ ! -f "$pids" ]; then
    echo "down.sh: no $pids: nothing started there (or already stopped)"
    exit 0
fi
bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/regtest/bin"
# Running, not a zombie (up.sh's daemons are detached; a dead one may wait to be reaped), and
# still one of our daemons: a pids file left by a crash must not kill whatever reused the pid.
alive() {
    [ -r "/proc/$1/stat" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ] &&
        case "$(readlink "/proc/$1/exe" 2>/dev/null)" in "$bin"/*) true ;; *) false ;; esac
}
# stop NAME... : SIGINT to each, then wait up to 30 s for all, then SIGKILL what is left.
stop() {
    local name pid left
    for name in "$@"; do
        pid="$(awk -v n="$name" '$1 == n { print $2 }' "$pids")"
        [ -n "$pid" ] && alive "$pid" && kill -INT "$pid" 2>/dev/null || true
    done
    for _ in $(seq 1 300); do
        left=0
        for name in "$@"; do
            pid="$(awk -v n="$name" '$1 == n { print $2 }' "$pids")"
            [ -n "$pid" ] && alive "$pid" && left=1
        done
        [ "$left" -eq 0 ] && break
        sleep 0.1
    done
    for name in "$@"; do
        pid="$(awk -v n="$name" '$1 == n { print $2 }' "$pids")"
        [ -n "$pid" ] || continue
        if alive "$pid"; then
            echo "down.sh: $name ($pid) still running after 30 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "down.sh: stopped $name ($pid)"
    done
}
# The nodes first, all at once; btcd last, so that lnd does not spin on a vanished backend.
mapfile -t nodes < <(awk '$1 != "btcd" { print $1 }' "$pids")
[ "${#nodes[@]}" -gt 0 ] && stop "${nodes[@]}"
stop btcd
rm -f "$pids" "$1/network.toml"
