#!/usr/bin/env bash
# Starts tapgate's real regtest network in DIR: btcd and four tapd-integrated nodes (alice, bob,
# edge, merchant, with simnet's names and roles), all on 127.0.0.1, and writes DIR/network.toml
# in the format `tapgate simnet` writes, so every `tapgate node --network DIR/network.toml`
# command runs unchanged against it. Builds the daemons first if needed (build.sh).
#
# usage: integration/regtest/up.sh DIR
# env:   TAPGATE_REGTEST_LOGS  where the daemons' logs go (default DIR/logs)
#        TAPGATE_REGTEST_USD_PER_BTC  the mock oracle's price (default 100000)
# Stop it with integration/regtest/down.sh DIR.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR   (the network's directory; DIR/network.toml is written when it is ready)" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/regtest/bin"
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
logs="${TAPGATE_REGTEST_LOGS:-$dir/logs}"

"$here/build.sh"
# netup is tapgate's own orchestration code (netup/main.go), built against the same modules.
(cd "$here" && go build -o "$bin/netup" ./netup)

start=$SECONDS
if ! "$bin/netup" --dir "$dir" --bin "$bin" --logs "$logs" \
    --usd-per-btc "${TAPGATE_REGTEST_USD_PER_BTC:-100000}"; then
    echo "up.sh: the network did not come up; the last lines of each log:" >&2
    for f in "$logs"/*.log; do
        [ -f "$f" ] || continue
        echo "---- $f" >&2
        tail -n 15 "$f" >&2
    done
    exit 1
fi
echo "up.sh: ready in $((SECONDS - start)) s: $dir/network.toml (stop with integration/regtest/down.sh $dir)"
