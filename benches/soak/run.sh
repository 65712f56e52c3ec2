#!/usr/bin/env bash
# tapgate's soak (run by hand, like the load benchmark; not part of the test command): two
# `tapgate serve` replicas sharing one PostgreSQL, on simnet, under mixed traffic for a fixed
# time, then the books checked.
#
#   PostgreSQL   .ci/postgres start OUT/pg (a throwaway server; its database emptied first)
#   simnet       tapgate simnet --dir OUT/simnet
#   upstream     HAProxy answering every request with a fixed 200 (as benches/load/run.sh)
#   replicas     a and b: tapgate serve, one configuration but for ports and gateway.replica,
#                selling `time` ($0.01 a token, sats) and `echo` ($0.001 a call from a prepaid
#                $5.00, stablecoin)
#   traffic      wrk processes (benches/soak/soak.lua), each paced, every one against both
#                replicas (a load balancer's spread): new challenges (unauthenticated GETs),
#                paid calls with one sats token bought from bob, and prepaid debits of
#                --prepaid-tokens tokens bought from alice, each token on its own wrk pair so
#                its count is its own
#   revocations  every --revoke-every seconds: a fresh token bought from bob, checked on both
#                replicas, revoked with `tapgate token revoke` (on the shared store), and the
#                time until both refuse it measured
#   RSS          each replica's VmRSS every 10 s
#
# At the end it prints and writes to OUT/results.txt: throughput and p50/p99 of each kind of
# request, RSS over time (first, median, last, and the slope of a line through the samples),
# the revocations' times, and the books: for every prepaid token, what the database's balance
# says was spent against the calls wrk saw answered 200, and in total against what the replicas
# counted as debited (tapgate_prepaid_debits_usd_micro_total, summed over both). The books must
# balance exactly: the script exits 1 if the database and the replicas' counts disagree.
#
# usage: benches/soak/run.sh [--duration 600] [--prepaid-tokens 4] [--revoke-every 30]
#            [--paid-connections 8] [--tapgate BIN] [--out DIR]
# Needs root for apt-get only when wrk, haproxy or PostgreSQL is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

duration=600
tokens=4
revoke_every=30
paid_connections=8
tapgate=""
out="$root/target/bench/soak"

say() { printf 'soak: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --prepaid-tokens) tokens="$2"; shift 2 ;;
    --revoke-every) revoke_every="$2"; shift 2 ;;
    --paid-connections) paid_connections="$2"; shift 2 ;;
    --tapgate) tapgate="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
case "$duration$tokens$revoke_every$paid_connections" in
*[!0-9]*) die "--duration, --prepaid-tokens, --revoke-every and --paid-connections take whole numbers" ;;
esac
[ "$tokens" -ge 1 ] || die "--prepaid-tokens must be at least 1"

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        die "cannot install ${missing[*]}"
fi
psql_bin="$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | tail -n 1 || true)"

if [ -z "$tapgate" ]; then
    say "building tapgate (cargo build --release)"
    (cd "$root" && cargo build --release --quiet) || die "cargo build --release failed"
    tapgate="$root/target/release/tapgate"
fi
[ -x "$tapgate" ] || die "$tapgate is not an executable"
T="$(cd "$(dirname "$tapgate")" && pwd)/$(basename "$tapgate")"

rm -rf "$out"
mkdir -p "$out"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$root/.ci/postgres" stop "$out/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- PostgreSQL, simnet, the upstream ------------------------------------------------------
say "PostgreSQL: .ci/postgres start $out/pg"
url="$("$root/.ci/postgres" start "$out/pg")"
[ -n "$psql_bin" ] || die "no psql (PostgreSQL's client) found"
"$psql_bin" "$url" -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null

say "simnet: $T simnet --dir $out/simnet"
"$T" simnet --dir "$out/simnet" >"$out/simnet.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -f "$out/simnet/network.toml" ] && break; sleep 0.1; done
[ -f "$out/simnet/network.toml" ] || die "simnet wrote no network.toml; see $out/simnet.log"
net="$out/simnet/network.toml"

up_port="$(free_port)"
cat >"$out/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend upstream
    bind 127.0.0.1:$up_port
    http-request return status 200 content-type application/json string '{"ok":true}'
EOF
haproxy -db -f "$out/haproxy.cfg" >"$out/upstream.log" 2>&1 &
pids+=($!)

# ---- the replicas --------------------------------------------------------------------------
declare -A port admin pid_of
for r in a b; do
    port[$r]="$(free_port)"
    admin[$r]="$(free_port)"
    mkdir -p "$out/$r"
    cat >"$out/$r/tapgate.toml" <<EOF
# Written by benches/soak/run.sh.
data_dir = "$out/$r/data"
[store]
url = "$url"
[log]
filter = "warn"
[network]
file = "$net"
[gateway]
listen = "127.0.0.1:${port[$r]}"
admin_listen = "127.0.0.1:${admin[$r]}"
replica = "$r"
[[services]]
name = "time"
paths = ["/v1/time"]
upstream = "http://127.0.0.1:$up_port"
price_usd = "0.01"
settlement = "sats"
methods = ["GET"]
[[services]]
name = "echo"
paths = ["/v1/echo"]
upstream = "http://127.0.0.1:$up_port"
price_usd = "0.001"
settlement = { asset = "default" }
methods = ["POST"]
small_price = "prepaid"
prepaid_usd = "5.00"
EOF
    say "replica $r: $T serve --config $out/$r/tapgate.toml (127.0.0.1:${port[$r]}, admin ${admin[$r]})"
    (cd "$out/$r" && exec "$T" serve --config "$out/$r/tapgate.toml") >"$out/$r.log" 2>&1 &
    pid_of[$r]=$!
    pids+=($!)
done
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }
for r in a b; do
    for _ in $(seq 1 300); do [ "$(code "http://127.0.0.1:${port[$r]}/v1/time")" = 402 ] && break; sleep 0.1; done
    [ "$(code "http://127.0.0.1:${port[$r]}/v1/time")" = 402 ] || die "replica $r does not answer 402; see $out/$r.log"
done

# ---- tokens --------------------------------------------------------------------------------
# buy PAYER METHOD URL: prints "MACAROON PREIMAGE" for a token bought at URL.
buy() {
    local payer="$1" method="$2" url="$3" hdr mac inv paid
    hdr="$(curl -s -D - -o /dev/null -X "$method" --max-time 30 "$url")"
    read -r mac inv < <(python3 -c '
import re, sys
m = re.search(r"(?im)^www-authenticate:\s*L402\s+macaroon=\"([^\"]+)\",\s*invoice=\"([^\"]+)\"", sys.stdin.read())
print(m.group(1), m.group(2)) if m else sys.exit("no L402 challenge")' <<<"$hdr") || die "no challenge from $url"
    if [ "$payer" = alice ]; then
        paid="$(cd "$out" && "$T" node --network "$net" --node alice pay "$inv" --asset default --max-usd 6.00 2>>"$out/pay.err")" ||
            die "alice could not pay: $(tail -n 3 "$out/pay.err")"
    else
        paid="$(cd "$out" && "$T" node --network "$net" --node bob pay "$inv" 2>>"$out/pay.err")" ||
            die "bob could not pay: $(tail -n 3 "$out/pay.err")"
    fi
    printf '%s %s\n' "$mac" "$(python3 -c 'import json, sys; print(json.load(sys.stdin)["payment"]["preimage"])' <<<"$paid")"
}
token_id() { # MACAROON
    "$T" token inspect "$1" | python3 -c '
import json, sys
def find(v):
    if isinstance(v, dict):
        if "token_id" in v: return v["token_id"]
        for x in v.values():
            r = find(x)
            if r: return r
print(find(json.load(sys.stdin)) or "")'
}

say "buying the paid token (bob, sats) and $tokens prepaid tokens (alice, \$5.00 of the stablecoin each)"
read -r mac pre < <(buy bob GET "http://127.0.0.1:${port[a]}/v1/time")
paid_auth="L402 $mac:$pre"
[ "$(code -H "Authorization: $paid_auth" "http://127.0.0.1:${port[b]}/v1/time")" = 200 ] || die "the paid token is refused by b"
declare -a pp_auth pp_id
for i in $(seq 1 "$tokens"); do
    read -r mac pre < <(buy alice POST "http://127.0.0.1:${port[a]}/v1/echo")
    pp_auth[$i]="L402 $mac:$pre"
    pp_id[$i]="$(token_id "$mac")"
done

# ---- traffic -------------------------------------------------------------------------------
say "traffic for ${duration}s: challenges, paid calls, prepaid debits, on both replicas; revocations every ${revoke_every}s"
mkdir -p "$out/wrk"
run_wrk() { # NAME REPLICA CONNECTIONS PACE_MS METHOD PATH [AUTH]
    local name="$1" r="$2" c="$3" pace="$4" method="$5" path="$6" auth="${7:-}"
    WRK_METHOD="$method" WRK_AUTH="$auth" WRK_PACE_MS="$pace" \
        wrk -t1 -c"$c" -d"${duration}s" --timeout 10s --latency -s "$here/soak.lua" \
        "http://127.0.0.1:${port[$r]}$path" >"$out/wrk/$name-$r.txt" 2>&1 &
    wrk_pids+=($!)
}
wrk_pids=()
for r in a b; do
    run_wrk challenges "$r" 2 50 GET /v1/time
    run_wrk paid "$r" "$paid_connections" 2 GET /v1/time "$paid_auth"
    for i in $(seq 1 "$tokens"); do
        run_wrk "prepaid$i" "$r" 1 400 POST /v1/echo "${pp_auth[$i]}"
    done
done

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
(
    t=0
    while [ "$t" -le "$duration" ]; do
        printf '%s\t%s\t%s\n' "$t" "$(rss_kb "${pid_of[a]}")" "$(rss_kb "${pid_of[b]}")"
        sleep 10
        t=$((t + 10))
    done
) >"$out/rss.tsv" &
pids+=($!)

: >"$out/revocations.tsv"
(
    n=0
    while [ $(((n + 1) * revoke_every)) -lt "$duration" ]; do
        sleep "$revoke_every"
        n=$((n + 1))
        read -r mac pre < <(buy bob GET "http://127.0.0.1:${port[a]}/v1/time")
        auth="L402 $mac:$pre"
        before="$(code -H "Authorization: $auth" "http://127.0.0.1:${port[b]}/v1/time")"
        (cd "$out" && "$T" token revoke --config "$out/a/tapgate.toml" "$(token_id "$mac")" >/dev/null 2>>"$out/revoke.err")
        start=$(date +%s%N)
        refused=""
        while [ $(($(date +%s%N) - start)) -lt 5000000000 ]; do
            ca="$(code -H "Authorization: $auth" "http://127.0.0.1:${port[a]}/v1/time")"
            cb="$(code -H "Authorization: $auth" "http://127.0.0.1:${port[b]}/v1/time")"
            if [ "$ca" = 401 ] && [ "$cb" = 401 ]; then
                refused=$((($(date +%s%N) - start) / 1000000))
                break
            fi
            sleep 0.02
        done
        printf '%s\t%s\t%s\n' "$n" "$before" "${refused:-not within 5000}" >>"$out/revocations.tsv"
    done
) &
revoker=$!
pids+=("$revoker")

for p in "${wrk_pids[@]}"; do wait "$p" || true; done
wait "$revoker" 2>/dev/null || true
sleep 2

# ---- the books -----------------------------------------------------------------------------
metric_sum() { # NAME LABELS: summed over both replicas
    local s=0 v r
    for r in a b; do
        v="$(curl -s --max-time 10 "http://127.0.0.1:${admin[$r]}/metrics" | awk -v n="$1" -v l="$2" '
            index($0, n "{") == 1 && index($0, l "}") > 0 { print $2 }' | head -n 1)"
        s=$((s + ${v:-0}))
    done
    echo "$s"
}
db_micro() { # TOKEN_ID_HEX
    "$psql_bin" "$url" -Atc "SELECT micro_usd FROM balances WHERE token_id = decode('$1', 'hex')"
}
wrk_field() { # FILE: "requests non2xx rps p50 p99"
    python3 - "$1" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
def ms(x):
    v, u = re.match(r"([\d.]+)(us|ms|s)", x).groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
req = int(re.search(r"(\d+) requests in", t).group(1))
non = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
print(req, int(non.group(1)) if non else 0, rps, p50, p99)
EOF
}

{
    echo "tapgate soak: $(date -u +%Y-%m-%dT%H:%MZ), ${duration}s, two replicas on one PostgreSQL, simnet; $("$T" --version)"
    echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    printf '%-12s %10s %10s %10s %10s %10s\n' kind requests non-2xx "req/s" "p50 ms" "p99 ms"
    for kind in challenges paid $(seq -f 'prepaid%g' 1 "$tokens"); do
        read -r ra na sa pa qa < <(wrk_field "$out/wrk/$kind-a.txt")
        read -r rb nb sb pb qb < <(wrk_field "$out/wrk/$kind-b.txt")
        printf '%-12s %10s %10s %10.1f %10.2f %10.2f\n' "$kind" $((ra + rb)) $((na + nb)) \
            "$(python3 -c "print($sa + $sb)")" "$(python3 -c "print(max($pa, $pb))")" "$(python3 -c "print(max($qa, $qb))")"
    done
    echo "(p50/p99: the larger of the two replicas'; non-2xx: challenges are all 402 by design)"
    echo
    echo "RSS (MiB), every 10 s:"
    python3 - "$out/rss.tsv" <<'EOF'
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
for col, name in ((1, "a"), (2, "b")):
    xs = [r[0] for r in rows if r[col] > 0]
    ys = [r[col] / 1024 for r in rows if r[col] > 0]
    if len(ys) < 2:
        print(f"  {name}: too few samples"); continue
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    mid = sorted(ys)[len(ys) // 2]
    print(f"  {name}: first {ys[0]:.1f}, median {mid:.1f}, last {ys[-1]:.1f}, max {max(ys):.1f}; slope {slope * 60:+.3f} MiB/min over the last {xs[-1]} s")
EOF
    echo
    echo "revocations (n, status before revoking, ms until both replicas refused):"
    sed 's/^/  /' "$out/revocations.tsv"
    echo
    echo "the books (prepaid \$5.00 at \$0.001 a call):"
    total_spent=0
    for i in $(seq 1 "$tokens"); do
        left="$(db_micro "${pp_id[$i]}")"
        spent=$((5000000 - ${left:-0}))
        read -r ra na _ < <(wrk_field "$out/wrk/prepaid$i-a.txt")
        read -r rb nb _ < <(wrk_field "$out/wrk/prepaid$i-b.txt")
        ok=$((ra - na + rb - nb))
        total_spent=$((total_spent + spent))
        echo "  token $i: database says \$$(python3 -c "print(f'{$spent / 1e6:.3f}')") spent ($((spent / 1000)) calls); wrk saw $ok answered 200 (calls cut off in flight at the end are debited but not counted: at most 2)"
    done
    counted="$(metric_sum tapgate_prepaid_debits_usd_micro_total 'service="echo"')"
    echo "  all tokens: database $total_spent micro-USD spent; the replicas counted $counted micro-USD debited"
    if [ "$total_spent" = "$counted" ]; then
        echo "  BALANCED"
    else
        echo "  NOT BALANCED"
    fi
} | tee "$out/results.txt"
grep -q '^  BALANCED$' "$out/results.txt" || exit 1
