#!/usr/bin/env bash
# Builds the real daemons of tapgate's regtest network from their published Go modules,
# pinned in integration/regtest/go.mod (the one place their versions are named):
#   tapd-integrated  lnd and tapd in one process, tapd's aux components wired into lnd
#                    (taproot-assets cmd/tapd-integrated, since v0.8.0); asset channels need it
#   tapcli, lncli    tapd's and lnd's CLIs, for an operator poking at the nodes
#   btcd, btcctl     the regtest chain (taproot is active from the first blocks)
# into target/regtest/bin. A build is reused while go.mod, go.sum, the Go version and the tags
# are unchanged (a stamp file records them). Prints how long it took.
#
# usage: integration/regtest/build.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/regtest/bin"
stamp="$bin/.stamp"

# The tags tapd requires of lnd's sub-servers (routerrpc has no tag of its own).
# `monitoring` is left out: no Prometheus exporter is wanted here.
tags="signrpc walletrpc chainrpc invoicesrpc peersrpc"

say() { printf 'regtest-build: %s\n' "$*"; }

command -v go >/dev/null 2>&1 || {
    say "no 'go' on PATH: install Go 1.25.10 or newer (the go line of integration/regtest/go.mod), then run this again"
    exit 1
}

want="$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -d' ' -f1) $(go env GOVERSION) $tags"
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    [ -x "$bin/tapd-integrated" ] && [ -x "$bin/btcd" ] && [ -x "$bin/btcctl" ] && [ -x "$bin/tapcli" ] && [ -x "$bin/lncli" ]; then
    say "up to date in target/regtest/bin ($(go env GOVERSION), go.mod unchanged)"
    exit 0
fi

mkdir -p "$bin"
rm -f "$stamp"
start=$SECONDS
cd "$here"
say "downloading modules (go mod download; cached in $(go env GOMODCACHE))"
go mod download
for pkg in \
    github.com/lightninglabs/taproot-assets/cmd/tapd-integrated \
    github.com/lightninglabs/taproot-assets/cmd/tapcli \
    github.com/lightningnetwork/lnd/cmd/lncli \
    github.com/btcsuite/btcd \
    github.com/btcsuite/btcd/cmd/btcctl; do
    name="${pkg##*/}"
    t0=$SECONDS
    say "building $name"
    CGO_ENABLED=0 go build -trimpath -tags="$tags" -o "$bin/$name" "$pkg"
    say "built $name in $((SECONDS - t0)) s"
done
printf '%s\n' "$want" >"$stamp"
say "done in $((SECONDS - start)) s: $(cd "$bin" && ls | tr '\n' ' ')"
