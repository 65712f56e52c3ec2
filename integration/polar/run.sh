#!/usr/bin/env bash
# The end-to-end payment scenario, driven through tapgate's operator CLI (`tapgate node …`),
# against either
#   - a Polar network (see integration/polar/README.md):
#       TAPGATE_POLAR_NETWORK_DIR=~/.polar/networks/1 \
#       TAPGATE_POLAR_ASSET_ID=<hex> TAPGATE_POLAR_EDGE_PUBKEY=<hex> \
#       bash integration/polar/run.sh
#   - or a simnet this script starts itself (what CI runs):
#       bash integration/polar/run.sh --simnet
#   - or any network with a network.toml, such as the real regtest network that
#     integration/regtest/up.sh DIR starts (CI runs this too):
#       bash integration/polar/run.sh --network DIR/network.toml
# The same commands, the same assertions; it prints "N passed, N failed" and exits non-zero on
# any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

TAPGATE="${TAPGATE_POLAR_BIN:-}"
if [ -z "$TAPGATE" ]; then
    cargo build --quiet --bin tapgate
    TAPGATE=target/debug/tapgate
fi

pass=0
fail=0
ok() { pass=$((pass + 1)); printf '  ok    %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf '  FAIL  %s\n' "$1"; }

simnet_pid=""
cleanup() {
    if [ -n "$simnet_pid" ]; then
        kill "$simnet_pid" 2>/dev/null || true
        wait "$simnet_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

if [ "${1:-}" = "--simnet" ]; then
    dir="$(mktemp -d)/simnet"
    # Quotes live as long as the mock oracle's on Polar and regtest (3,600 s), so the script's
    # 300 s asset invoices are valid here too: simnet's default follows tapd's sample oracle,
    # whose 60 s quotes for invoices above 100,000 units cannot back them.
    "$TAPGATE" simnet --dir "$dir" --quote-lifetime-secs 3600 >"$dir.json" 2>"$dir.log" &
    simnet_pid=$!
    for _ in $(seq 1 100); do [ -s "$dir/network.toml" ] && break; sleep 0.05; done
    [ -s "$dir/network.toml" ] || { echo "simnet did not start:"; cat "$dir.log"; exit 1; }
    node() { "$TAPGATE" node --network "$dir/network.toml" "$@"; }
    echo "against simnet ($dir)"
elif [ "${1:-}" = "--network" ]; then
    file="${2:?usage: $0 --network DIR/network.toml}"
    [ -s "$file" ] || { echo "no network file at $file: start one with integration/regtest/up.sh DIR"; exit 2; }
    node() { "$TAPGATE" node --network "$file" "$@"; }
    echo "against the network in $file"
else
    : "${TAPGATE_POLAR_NETWORK_DIR:?set it to your Polar network folder, e.g. ~/.polar/networks/1}"
    : "${TAPGATE_POLAR_ASSET_ID:?set it to the USD asset id minted on the merchant/alice nodes}"
    : "${TAPGATE_POLAR_EDGE_PUBKEY:?set it to the identity pubkey of the edge node}"
    node() {
        "$TAPGATE" --config "${TAPGATE_POLAR_CONFIG:-config/polar.toml}" \
            --set "network.asset_id=$TAPGATE_POLAR_ASSET_ID" \
            --set "network.edge_pubkey=$TAPGATE_POLAR_EDGE_PUBKEY" node "$@"
    }
    echo "against Polar ($TAPGATE_POLAR_NETWORK_DIR)"
fi

# field FILE EXPR: evaluates a Python expression over the JSON in FILE (as `j`).
field() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
# preimage_matches FILE: sha256(payment.preimage) == payment.payment_hash
preimage_matches() {
    python3 -c "import json,sys,hashlib; p=json.load(open(sys.argv[1]))['payment']; \
print(hashlib.sha256(bytes.fromhex(p['preimage'])).hexdigest()==p['payment_hash'])" "$1"
}
tmp="$(mktemp -d)"

for n in alice bob edge merchant; do
    if node --node "$n" info >"$tmp/info.json" 2>"$tmp/err"; then
        ok "$n answers over TLS with its macaroon ($(field "$tmp/info.json" "j['lnd']['version']"))"
    else
        bad "$n info: $(cat "$tmp/err")"
    fi
done

units() { node --node "$1" balance >"$tmp/bal.json" && field "$tmp/bal.json" "j['asset']['units']"; }
sats() { node --node "$1" balance >"$tmp/bal.json" && field "$tmp/bal.json" "j['sats']['local_msat']"; }
# units_reach NODE N: the node's units once they reach N, or the last reading after 10 s. A real
# payer learns the preimage before the channel's commitments are updated, so the payee's
# balance can lag its payment by a moment.
units_reach() {
    local u
    for _ in $(seq 1 40); do
        u=$(units "$1")
        [ "$u" -ge "$2" ] && break
        sleep 0.25
    done
    echo "$u"
}
m0=$(units merchant)
a0=$(units alice)

# 1. The merchant issues a $1.00 stablecoin invoice; alice pays it in the stablecoin.
node --node merchant invoice --usd 1.00 --expiry 300 >"$tmp/inv1.json"
inv1=$(field "$tmp/inv1.json" "j['invoice']['invoice']['payment_request']")
if node --node alice pay "$inv1" --asset default --max-usd 1.10 >"$tmp/pay1.json" 2>"$tmp/err"; then
    [ "$(preimage_matches "$tmp/pay1.json")" = True ] && ok "alice paid \$1.00 in the stablecoin; preimage matches" \
        || bad "alice's preimage does not match the payment hash"
else
    bad "alice pay: $(cat "$tmp/err")"
fi
# The edge forwards the floor of the invoice's msat in units (tapd v0.8.1 rfq/order.go): all
# 1,000,000 at 1 unit = 1 msat, one unit fewer at a rate that does not divide evenly (simnet's).
floor_ok() { [ "$1" -eq 1000000 ] || [ "$1" -eq 999999 ]; }
m1=$(units_reach merchant $((m0 + 999999)))
floor_ok $((m1 - m0)) && ok "merchant received $((m1 - m0)) units (\$1.00, floored)" || bad "merchant units moved by $((m1 - m0))"
a1=$(units alice)
[ "$a1" -lt "$a0" ] && ok "alice spent $((a0 - a1)) units" || bad "alice's balance did not move"

# 2. Another $1.00 invoice; bob pays it in sats.
b0=$(sats bob)
node --node merchant invoice --usd 1.00 --expiry 300 >"$tmp/inv2.json"
inv2=$(field "$tmp/inv2.json" "j['invoice']['invoice']['payment_request']")
if node --node bob pay "$inv2" >"$tmp/pay2.json" 2>"$tmp/err"; then
    [ "$(preimage_matches "$tmp/pay2.json")" = True ] && ok "bob paid the asset invoice in sats; preimage matches" \
        || bad "bob's preimage does not match"
else
    bad "bob pay: $(cat "$tmp/err")"
fi
m2=$(units_reach merchant $((m1 + 999999)))
b1=$(sats bob)
[ "$b1" -lt "$b0" ] && ok "bob's sats went down by $((b0 - b1)) msat" || bad "bob's sats did not move"
floor_ok $((m2 - m1)) && ok "merchant received $((m2 - m1)) more units (floored)" || bad "merchant units moved by $((m2 - m1))"

# 3. A plain sats invoice paid with the stablecoin.
node --node merchant invoice --msat 500000 >"$tmp/inv3.json"
inv3=$(field "$tmp/inv3.json" "j['invoice']['payment_request']")
node --node alice pay "$inv3" --asset default >"$tmp/pay3.json" 2>"$tmp/err" \
    && ok "alice paid a 500 sat invoice with the stablecoin" || bad "alice pay sats invoice: $(cat "$tmp/err")"

# 4. Refusals that must happen before any money moves.
if node --node merchant invoice --usd 0.01 >/dev/null 2>"$tmp/err"; then
    bad "a \$0.01 asset invoice was created"
else
    grep -q "smallest amount an asset HTLC can carry" "$tmp/err" && ok "\$0.01 asset invoice refused: below the minimum transportable" \
        || bad "wrong refusal: $(cat "$tmp/err")"
fi
node --node merchant invoice --usd 1.00 >"$tmp/inv4.json"
inv4=$(field "$tmp/inv4.json" "j['invoice']['invoice']['payment_request']")
if node --node alice pay "$inv4" --asset default --max-usd 0.50 >/dev/null 2>"$tmp/err"; then
    bad "paid over --max-usd"
else
    grep -q "more than --max-usd" "$tmp/err" && ok "payment over --max-usd refused, nothing paid" || bad "wrong refusal: $(cat "$tmp/err")"
fi

echo "polar: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
