#!/usr/bin/env bash
# tapgate's load benchmark, run by hand (not part of the test command; see benches/load/README.md).
#
# One run, side by side, against the same local upstream (HAProxy returning a fixed 200 body; not
# nginx, which answers 400 to the two Authorization headers Aperture forwards, see README.md):
#   upstream   the upstream itself, directly
#   nginx      nginx proxy_pass to the upstream (keep-alive pool), as many workers as tapgate has
#              runtime threads
#   tapgate    `tapgate serve` on simnet, with a paid L402 token (Authorization header)
#   hyper-floor     the HTTP stack tapgate's proxy stands on, alone (benches/load/bare_proxy.rs:
#              hyper's server and hyper-util's pooled client on one single-threaded runtime per
#              worker, as tapgate serves), and hyper-floor-mt, the same on one multi-threaded
#              runtime: what the stack costs, apart from what tapgate adds
#   aperture   Aperture (lightninglabs/aperture, built from its Go module by aperture/go.mod),
#              sqlite, backed by the merchant lnd of the real regtest network
#              (integration/regtest/up.sh), with a token bought from bob
# with wrk (fixed duration, connections and threads): requests/s and p50/p99 latency, saturated
# and at a paced load far below saturation (benches/load/paced.lua); 402
# challenges/s against tapgate (unauthenticated requests); and each proxy's resident memory
# (VmRSS) at start, holding 1,000 idle keep-alive connections, and after the load. Prints a table
# and the ratios, and writes them to OUT/results.txt and OUT/results.tsv.
#
# usage: benches/load/run.sh [--duration 10s] [--connections 64] [--threads 2] [--workers N]
#            [--paced-connections 16] [--pace-ms 2] [--rounds 3] [--idle-connections 1000]
#            [--regtest-network FILE] [--without-tapgate]
#            [--without-aperture] [--without-floor] [--with-lax] [--tapgate BIN] [--compare BIN]
#            [--out DIR]
#   --paced-connections N, --pace-ms MS
#                          the paced runs: after the saturated run, every server is measured
#                          again by one wrk thread on N connections, each waiting MS ms after a
#                          response before its next request (benches/load/paced.lua), an offered
#                          load far below saturation; their p50/p99 is the latency a server adds,
#                          not queueing (default 16 connections, 2 ms; --pace-ms 0 skips them)
#   --rounds N             measure every server N times, in turn (upstream, nginx, tapgate, …,
#                          then again), and report the median of each figure and of each
#                          round's ratios: on a shared machine the load drifts between one
#                          server's run and the next (default 3)
#   --workers N            nginx worker_processes, gateway.workers (and TOKIO_WORKER_THREADS) for
#                          tapgate, the floor's workers, and GOMAXPROCS for Aperture (default: nproc)
#   --regtest-network FILE an already running regtest network's network.toml (up.sh DIR): used
#                          instead of starting one in OUT/regtest (and stopping it at the end)
#   --without-tapgate      leave tapgate out (for a tapgate without `serve`)
#   --without-aperture     leave Aperture out (and the regtest network it needs)
#   --without-floor        leave out the hyper-floor rows (and the build of benches/load/bare_proxy.rs)
#   --with-lax             also measure a second tapgate, on the same simnet, run with
#                          --set gateway.strict_settlement=false (a valid preimage is enough, as
#                          in Aperture with strictverify off): row "tapgate-lax"
#   --tapgate BIN          this tapgate binary, not built (default: cargo build --release, then
#                          target/release/tapgate)
#   --compare BIN          also measure another tapgate binary (an earlier build), paid and
#                          strict, on the same simnet, in turn with the others: row "tapgate-b",
#                          and the ratio tapgate / tapgate-b, for an A/B under the same load
#   --out DIR              work directory, emptied first (default target/bench/load)
# Needs root for apt-get only when wrk, nginx or haproxy is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

duration=10s
connections=64
threads=2
workers="$(nproc)"
idle=1000
paced_connections=16
pace_ms=2
rounds=3
regtest_net=""
with_tapgate=1
with_aperture=1
with_lax=0
compare=""
with_floor=1
out="$root/target/bench/load"
tapgate=""

say() { printf 'load: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}
usage() {
    sed -n '/^# usage:/,/^# Needs root/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration="${2:?}"; shift 2 ;;
    --connections) connections="${2:?}"; shift 2 ;;
    --threads) threads="${2:?}"; shift 2 ;;
    --workers) workers="${2:?}"; shift 2 ;;
    --idle-connections) idle="${2:?}"; shift 2 ;;
    --paced-connections) paced_connections="${2:?}"; shift 2 ;;
    --pace-ms) pace_ms="${2:?}"; shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --regtest-network) regtest_net="$(cd "$(dirname "${2:?}")" && pwd)/$(basename "$2")"; shift 2 ;;
    --without-tapgate) with_tapgate=0; shift ;;
    --without-aperture) with_aperture=0; shift ;;
    --with-lax) with_lax=1; shift ;;
    --compare) compare="$(cd "$(dirname "${2:?}")" && pwd)/$(basename "$2")"; shift 2 ;;
    --without-floor) with_floor=0; shift ;;
    --tapgate) tapgate="$(cd "$(dirname "${2:?}")" && pwd)/$(basename "$2")"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    -h | --help) usage ;;
    *) say "unknown argument: $1"; usage ;;
    esac
done

# Fixed loopback ports; each is checked to be free before anything starts.
port_upstream=18080
port_nginx=18081
port_aperture=18082
port_tapgate=18402
port_tapgate_admin=18403
port_lax=18404
port_lax_admin=18405
port_floor=18406
port_floor_mt=18407
port_b=18408
port_b_admin=18409

# ---------------------------------------------------------------------------------------------
# Prerequisites: wrk, nginx and haproxy (from Debian), python3 and curl; Go for Aperture; tapgate.

PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${missing[*]} (apt-get)"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    else
        die "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]}) or run this as root"
    fi
fi
for c in python3 curl ss; do
    command -v "$c" >/dev/null 2>&1 || die "missing $c"
done
[ "$with_aperture" -eq 0 ] || command -v go >/dev/null 2>&1 ||
    die "no 'go' on PATH: Aperture and the regtest network are built from Go modules (Go 1.26 or newer); or pass --without-aperture"

if [ -n "$tapgate" ]; then
    [ -x "$tapgate" ] || die "--tapgate $tapgate: not an executable"
elif [ "$with_tapgate" -eq 1 ] || [ "$with_aperture" -eq 1 ]; then
    tapgate="$root/target/release/tapgate"
    # Aperture's token is bought with `tapgate node … pay`, so tapgate is built either way.
    say "building tapgate (cargo build --release)"
    (cd "$root" && cargo build --release --quiet --bin tapgate) || die "cargo build --release failed"
fi
if [ "$with_tapgate" -eq 1 ] && ! "$tapgate" serve --help >/dev/null 2>&1; then
    die "$tapgate has no \`serve\` command yet (\`tapgate serve --help\` fails): the gateway is not built, so tapgate cannot be measured. Run with --without-tapgate to measure the others."
fi

[ "$with_tapgate" -eq 1 ] || with_lax=0
[ "$with_tapgate" -eq 1 ] || compare=""
[ -z "$compare" ] || [ -x "$compare" ] || die "--compare $compare: not an executable"
floor=""
if [ "$with_floor" -eq 1 ]; then
    say "building the floor (cargo build --release --example bare_proxy)"
    (cd "$root" && cargo build --release --quiet --example bare_proxy) || die "cargo build --release --example bare_proxy failed"
    floor="$root/target/release/examples/bare_proxy"
fi
for p in $port_upstream $port_nginx $port_aperture $port_tapgate $port_tapgate_admin $port_lax $port_lax_admin $port_floor $port_floor_mt $port_b $port_b_admin; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        die "port $p is in use on 127.0.0.1 (this script uses $port_upstream, $port_nginx, $port_aperture, $port_tapgate, $port_tapgate_admin, $port_lax, $port_lax_admin, $port_floor, $port_floor_mt, $port_b and $port_b_admin)"
    fi
done

# Enough descriptors for the idle connections, inherited by every server started below.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((idle * 2 + 256)) ] ||
    die "the descriptor limit ($(ulimit -n)) is too low for $idle idle connections (through a proxy, twice that)"

rm -rf "$out"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
bin="$root/target/bench/bin"
mkdir -p "$bin"

# ---------------------------------------------------------------------------------------------
# Processes started here, stopped at exit (only these, by pid).

pids=()          # "name pid signal"
regtest_dir=""   # set when this script started the regtest network
cleanup() {
    local rc=$? entry name pid sig
    set +e
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        read -r name pid sig <<<"${pids[$i]}"
        kill -0 "$pid" 2>/dev/null || continue
        kill "-$sig" "$pid" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && { say "$name ($pid) still running after 10 s: SIGKILL"; kill -KILL "$pid"; }
    done
    wait 2>/dev/null
    if [ -n "$regtest_dir" ]; then
        say "stopping the regtest network"
        "$root/integration/regtest/down.sh" "$regtest_dir" >"$out/regtest-down.log" 2>&1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started() { pids+=("$1 $2 ${3:-TERM}"); }
pid_of() {
    local entry name pid sig
    for entry in "${pids[@]}"; do
        read -r name pid sig <<<"$entry"
        [ "$name" = "$1" ] && { echo "$pid"; return; }
    done
    return 1
}
alive() { kill -0 "$(pid_of "$1")" 2>/dev/null || die "$1 exited; see $out/$1.log"; }

# http_code URL [HEADER]: the status code of one GET, 000 when nothing answers.
http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 ${2:+-H "$2"} "$1" || true
}
# wait_code NAME URL CODE SECONDS: until URL answers CODE, or NAME exits.
wait_code() {
    local deadline=$((SECONDS + $4)) code=000
    while [ "$SECONDS" -lt "$deadline" ]; do
        code="$(http_code "$2")"
        [ "$code" = "$3" ] && return 0
        alive "$1"
        sleep 0.1
    done
    die "$1 did not answer $3 on $2 within $4 s (last: $code); see $out/$1.log"
}

# rss_kb PID...: the summed VmRSS of the processes, in KiB.
rss_kb() {
    local p sum=0 v
    for p in "$@"; do
        v="$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)"
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
# The pids to measure for a server: nginx's master and its workers; the one process otherwise.
server_pids() {
    local pid
    pid="$(pid_of "$1")"
    echo "$pid"
    [ "$1" != nginx ] || cat "/proc/$pid/task/$pid/children" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# The upstream: HAProxy answering every request itself with a fixed 200 body (`http-request
# return`), as many threads as the proxies have workers. nginx would be the obvious choice, but
# Aperture forwards a paid request with two Authorization headers (LSAT … and L402 …, its
# l402.SetHeader) and nginx refuses a duplicate Authorization with 400, so every paid Aperture
# call would fail; HAProxy passes headers through unparsed.

body='{"ok":true,"service":"bench","note":"a fixed 200 body from the upstream"}'
mkdir -p "$out/upstream"
cat >"$out/upstream/haproxy.cfg" <<EOF
# Written by benches/load/run.sh.
global
    nbthread $workers
    maxconn $((idle * 2 + 1024))
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend upstream
    bind 127.0.0.1:$port_upstream
    http-request return status 200 content-type application/json string '$body'
EOF

start_upstream() {
    haproxy -c -f "$out/upstream/haproxy.cfg" >"$out/upstream.log" 2>&1 || die "haproxy -c failed: $(cat "$out/upstream.log")"
    haproxy -db -f "$out/upstream/haproxy.cfg" >>"$out/upstream.log" 2>&1 &
    started upstream $!
}

# ---------------------------------------------------------------------------------------------
# nginx: the proxy under comparison, in its own prefix directory.

nginx_conf() { # DIR SERVER_BLOCK_AND_HTTP_EXTRAS
    local dir="$1" user="" temps="" m
    mkdir -p "$dir/tmp"
    [ "$(id -u)" -eq 0 ] && user="user root;"
    # Temp paths inside DIR (Debian compiles in /var/lib/nginx), for the modules this nginx has.
    for m in client_body proxy fastcgi uwsgi scgi; do
        if [ "$m" = client_body ] || ! nginx -V 2>&1 | grep -q -- "--without-http_${m}_module"; then
            temps+="    ${m}_temp_path $dir/tmp/$m;"$'\n'
        fi
    done
    cat >"$dir/nginx.conf" <<EOF
# Written by benches/load/run.sh.
$user
daemon off;
worker_processes $workers;
worker_rlimit_nofile $((idle * 4 + 1024));
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((idle * 2 + 1024)); }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
$temps
$2
}
EOF
}

start_nginx() { # NAME
    nginx -p "$out/$1" -c "$out/$1/nginx.conf" -t >"$out/$1.log" 2>&1 || die "nginx -t failed for $1: $(cat "$out/$1.log")"
    nginx -p "$out/$1" -c "$out/$1/nginx.conf" >>"$out/$1.log" 2>&1 &
    started "$1" $! QUIT
}

nginx_conf "$out/nginx" "    upstream bench_upstream {
        server 127.0.0.1:$port_upstream;
        keepalive 256;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$port_nginx;
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"

# ---------------------------------------------------------------------------------------------
# wrk, and the idle-connection holder.

declare -A rps p50 p99 total non2xx errs cpu rss_start rss_idle rss_load idle_open idle_status
declare -A rps_r p50_r p99_r total_r non2xx_r errs_r cpu_r load_r

# parse_wrk FILE: "rps p50_ms p99_ms requests non2xx socket_errors"
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /s$/) return v * 1000
            if (v ~ /m$/) return v * 60000
            if (v ~ /h$/) return v * 3600000
            return v + 0
        }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        /Requests\/sec:/ { rps = $2 }
        / requests in / { total = $1 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { gsub(",", ""); errors = $4 + $6 + $8 + $10 }
        END { printf "%s %.3f %.3f %d %d %d\n", rps, p50, p99, total, non2xx, errors }
    ' "$1"
}

# cpu_ticks PID...: user + system CPU time of the processes so far, in clock ticks.
cpu_ticks() {
    local p sum=0 v
    for p in "$@"; do
        v="$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true)"
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
hz="$(getconf CLK_TCK)"

# bench KEY URL HEADER ROUND SERVER [paced]: the measured wrk run (after a 2 s warm-up in the
# first round), and the CPU time SERVER's processes used during it, per request. With "paced",
# one wrk thread on $paced_connections connections, each pausing $pace_ms ms between requests.
bench() {
    local key="$1" url="$2" hdr="$3" r="$4" server="$5" mode="${6:-}" args c0 c1 f="$out/wrk-$1-r$4.txt" what
    if [ "$mode" = paced ]; then
        args=(-t1 -c"$paced_connections" --timeout 10s -s "$here/paced.lua")
        what="$duration, $paced_connections connections paced at $pace_ms ms, 1 thread"
    else
        args=(-t"$threads" -c"$connections" --timeout 10s)
        what="$duration, $connections connections, $threads threads"
    fi
    [ -n "$hdr" ] && args+=(-H "$hdr")
    say "wrk: $key, round $r: $url ($what)"
    if [ "$r" -eq 1 ] && [ "$mode" != paced ]; then
        wrk "${args[@]}" -d2s "$url" >"$out/wrk-$key-warmup.txt" 2>&1 || die "wrk failed: $(cat "$out/wrk-$key-warmup.txt")"
    fi
    # shellcheck disable=SC2046
    c0="$(cpu_ticks $(server_pids "$server"))"
    load_r[$key/$r]="$(cut -d' ' -f1 /proc/loadavg)"
    WRK_PACE_MS="$pace_ms" wrk "${args[@]}" -d"$duration" --latency "$url" >"$f" 2>&1 || die "wrk failed: $(cat "$f")"
    # shellcheck disable=SC2046
    c1="$(cpu_ticks $(server_pids "$server"))"
    read -r "rps_r[$key/$r]" "p50_r[$key/$r]" "p99_r[$key/$r]" "total_r[$key/$r]" "non2xx_r[$key/$r]" "errs_r[$key/$r]" < <(parse_wrk "$f")
    cpu_r[$key/$r]="$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="${total_r[$key/$r]}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print 0 }')"
    say "  ${rps_r[$key/$r]} req/s, p50 ${p50_r[$key/$r]} ms, p99 ${p99_r[$key/$r]} ms, ${total_r[$key/$r]} requests, ${non2xx_r[$key/$r]} non-2xx, ${errs_r[$key/$r]} socket errors; $server CPU ${cpu_r[$key/$r]} us/request (load ${load_r[$key/$r]} at the start)"
}

# median V...: the middle value (the mean of the two middle ones for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# summarize KEY: the median over the rounds of each figure; sums of the counts.
summarize() {
    local k="$1" r a=() b=() c=() d=() n=0 x=0 e=0
    for ((r = 1; r <= rounds; r++)); do
        [ -n "${rps_r[$k/$r]:-}" ] || continue
        a+=("${rps_r[$k/$r]}"); b+=("${p50_r[$k/$r]}"); c+=("${p99_r[$k/$r]}"); d+=("${cpu_r[$k/$r]}")
        n=$((n + total_r[$k/$r])); x=$((x + non2xx_r[$k/$r])); e=$((e + errs_r[$k/$r]))
    done
    rps[$k]="$(median "${a[@]}")"; p50[$k]="$(median "${b[@]}")"; p99[$k]="$(median "${c[@]}")"
    cpu[$k]="$(median "${d[@]}")"; total[$k]=$n; non2xx[$k]=$x; errs[$k]=$e
}

# round_ratio A B: the median over the rounds of A's req/s over B's in the same round.
round_ratio() {
    local r v=()
    for ((r = 1; r <= rounds; r++)); do
        v+=("$(awk -v a="${rps_r[$1/$r]}" -v b="${rps_r[$2/$r]}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print 0 }')")
    done
    median "${v[@]}" | awk '{ printf "%.2f", $1 }'
}
# round_diff A B [p50]: the median over the rounds of A's p99 (or p50) minus B's in the same
# round, ms.
round_diff() {
    local r v=() a b
    for ((r = 1; r <= rounds; r++)); do
        if [ "${3:-}" = p50 ]; then a="${p50_r[$1/$r]}" b="${p50_r[$2/$r]}"; else a="${p99_r[$1/$r]}" b="${p99_r[$2/$r]}"; fi
        v+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a - b }')")
    done
    median "${v[@]}" | awk '{ printf "%+.2f", $1 }'
}

# hold_idle NAME PORT [HEADER_VALUE]: VmRSS of NAME while $idle keep-alive connections, each
# after one request, stay open and idle.
hold_idle() {
    local name="$1" port="$2" auth="${3:-}" hpid line="" t
    say "holding $idle idle keep-alive connections to $name"
    python3 "$here/hold.py" 127.0.0.1 "$port" "$idle" ${auth:+"$auth"} >"$out/hold-$name.out" 2>"$out/hold-$name.err" &
    hpid=$!
    started "hold-$name" "$hpid"
    for t in $(seq 1 1200); do
        line="$(head -n 1 "$out/hold-$name.out")"
        [ -n "$line" ] && break
        kill -0 "$hpid" 2>/dev/null || die "hold.py against $name failed: $(cat "$out/hold-$name.err")"
        sleep 0.1
    done
    [ -n "$line" ] || die "hold.py against $name was not ready within 120 s"
    sleep 2
    # shellcheck disable=SC2046
    rss_idle[$name]="$(rss_kb $(server_pids "$name"))"
    idle_open[$name]="$(ss -Htn state established "( sport = :$port )" | wc -l)"
    idle_status[$name]="${line#ready }"
    kill "$hpid" 2>/dev/null
    wait "$hpid" 2>/dev/null || true
    say "  $name: VmRSS $((rss_idle[$name] / 1024)) MiB with ${idle_open[$name]} connections open (responses: ${idle_status[$name]})"
    sleep 1
}

# ---------------------------------------------------------------------------------------------
# L402 tokens: the challenge, payment by bob with `tapgate node … pay`, the Authorization header.

# challenge URL: prints "MACAROON INVOICE" from the 402's WWW-Authenticate: L402 header.
challenge() {
    curl -s -D - -o /dev/null --max-time 30 "$1" | python3 -c '
import re, sys
h = sys.stdin.read()
m = re.search(r"(?im)^www-authenticate:\s*L402\s+macaroon=\"([^\"]+)\",\s*invoice=\"([^\"]+)\"", h)
if not m:
    sys.exit("no WWW-Authenticate: L402 challenge in the response:\n" + h[:2000])
print(m.group(1), m.group(2))'
}

# buy_token NAME URL NETWORK_TOML: prints the Authorization header value, checked to get a 200.
buy_token() {
    local name="$1" url="$2" net="$3" mac inv paid pre code
    read -r mac inv < <(challenge "$url") || die "$name: no L402 challenge from $url"
    say "$name: paying its invoice from bob (tapgate node --network $net --node bob pay …)"
    # From $out, so that no config/tapgate.toml in the caller's directory is read.
    paid="$(cd "$out" && "$tapgate" node --network "$net" --node bob pay "$inv" 2>"$out/pay-$name.err")" ||
        die "$name: bob could not pay the invoice: $(cat "$out/pay-$name.err")"
    printf '%s\n' "$paid" >"$out/pay-$name.json"
    pre="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["payment"]["preimage"])' <<<"$paid")"
    code="$(http_code "$url" "Authorization: L402 $mac:$pre")"
    [ "$code" = 200 ] || die "$name: the paid token gets $code, not 200"
    echo "L402 $mac:$pre"
}

# start_tapgate NAME PORT ADMIN_PORT [SERVE_ARGS...]: `tapgate serve` on simnet selling the
# upstream as one service, $0.01 a token in sats, its state in OUT/NAME.
start_tapgate() {
    local name="$1" port="$2" admin="$3" exe="$tapgate"
    shift 3
    [ "$name" != tapgate-b ] || exe="$compare"
    mkdir -p "$out/$name"
    cat >"$out/$name/tapgate.toml" <<EOF
# Written by benches/load/run.sh.
data_dir = "$out/$name/data"

[store]
backend = "sqlite"

[log]
filter = "warn"

[network]
file = "$out/simnet/network.toml"

[gateway]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin"

[[services]]
name = "bench"
paths = ["/*"]
upstream = "http://127.0.0.1:$port_upstream"
price_usd = "0.01"
settlement = "sats"
EOF
    say "starting $name (TOKIO_WORKER_THREADS=$workers $exe serve --config $out/$name/tapgate.toml --set gateway.workers=$workers $*)"
    # From $out, so that no config/tapgate.toml in the caller's directory is read.
    (cd "$out" && TOKIO_WORKER_THREADS="$workers" exec "$exe" serve --config "$out/$name/tapgate.toml" --set "gateway.workers=$workers" "$@") \
        >"$out/$name.log" 2>&1 &
    started "$name" $! INT
    wait_code "$name" "http://127.0.0.1:$port/" 402 30
}

# check_paid NAME PORT AUTH: a paid request gets the upstream's body and a tapgate-receipt.
check_paid() {
    local h
    h="$(curl -s -D - -o "$out/paid-$1.body" --max-time 10 -H "Authorization: $3" "http://127.0.0.1:$2/")"
    [ "$(cat "$out/paid-$1.body")" = "$body" ] || die "$1 does not return the upstream's body for a paid request"
    grep -qi '^tapgate-receipt:' <<<"$h" || die "$1's paid response has no tapgate-receipt header: $h"
}

# ---------------------------------------------------------------------------------------------
# Set-up: everything starts (and every token is bought) before the first measurement.

say "out: $out; wrk: $duration, $connections connections, $threads threads; $workers workers per proxy; $idle idle connections"
start_upstream
wait_code upstream "http://127.0.0.1:$port_upstream/" 200 10
start_nginx nginx
wait_code nginx "http://127.0.0.1:$port_nginx/" 200 10
[ "$(curl -s "http://127.0.0.1:$port_nginx/")" = "$body" ] || die "nginx does not return the upstream's body"

if [ "$with_tapgate" -eq 1 ]; then
    say "starting simnet (tapgate simnet --dir $out/simnet)"
    "$tapgate" simnet --dir "$out/simnet" >"$out/simnet.log" 2>&1 &
    started simnet $! INT
    for _ in $(seq 1 300); do
        [ -f "$out/simnet/network.toml" ] && break
        alive simnet
        sleep 0.1
    done
    [ -f "$out/simnet/network.toml" ] || die "simnet wrote no network.toml within 30 s; see $out/simnet.log"
    start_tapgate tapgate "$port_tapgate" "$port_tapgate_admin"
    tapgate_auth="$(buy_token tapgate "http://127.0.0.1:$port_tapgate/" "$out/simnet/network.toml")"
    check_paid tapgate "$port_tapgate" "$tapgate_auth"
    if [ "$with_lax" -eq 1 ]; then
        start_tapgate tapgate-lax "$port_lax" "$port_lax_admin" --set gateway.strict_settlement=false
        lax_auth="$(buy_token tapgate-lax "http://127.0.0.1:$port_lax/" "$out/simnet/network.toml")"
        check_paid tapgate-lax "$port_lax" "$lax_auth"
    fi
    if [ -n "$compare" ]; then
        start_tapgate tapgate-b "$port_b" "$port_b_admin"
        b_auth="$(buy_token tapgate-b "http://127.0.0.1:$port_b/" "$out/simnet/network.toml")"
        check_paid tapgate-b "$port_b" "$b_auth"
    fi
fi

if [ "$with_floor" -eq 1 ]; then
    say "starting the floor (bare_proxy, $workers workers; and --multi-thread)"
    TAPGATE_WORKERS="$workers" "$floor" "127.0.0.1:$port_floor" "127.0.0.1:$port_upstream" >"$out/hyper-floor.log" 2>&1 &
    started hyper-floor $!
    TOKIO_WORKER_THREADS="$workers" "$floor" "127.0.0.1:$port_floor_mt" "127.0.0.1:$port_upstream" --multi-thread >"$out/hyper-floor-mt.log" 2>&1 &
    started hyper-floor-mt $!
    wait_code hyper-floor "http://127.0.0.1:$port_floor/" 200 10
    wait_code hyper-floor-mt "http://127.0.0.1:$port_floor_mt/" 200 10
    [ "$(curl -s "http://127.0.0.1:$port_floor/")" = "$body" ] || die "the floor does not return the upstream's body"
fi

if [ "$with_aperture" -eq 1 ]; then
    if [ -z "$regtest_net" ]; then
        regtest_dir="$out/regtest"
        say "starting the real regtest network (integration/regtest/up.sh $regtest_dir; builds the daemons on first use)"
        # Once more after a failure: under load, opening the edge-merchant asset channel can
        # fail with tapd's "unable to distribute coins: no inputs provided" (the funding request
        # overtaking the asset funding message).
        if ! "$root/integration/regtest/up.sh" "$regtest_dir" >"$out/regtest-up.log" 2>&1; then
            say "up.sh failed ($(grep '^netup:' "$out/regtest-up.log" | head -n 1)); stopping it and trying once more"
            "$root/integration/regtest/down.sh" "$regtest_dir" >>"$out/regtest-down.log" 2>&1 || true
            mv "$regtest_dir" "$out/regtest-failed"
            "$root/integration/regtest/up.sh" "$regtest_dir" >"$out/regtest-up.log" 2>&1 ||
                die "integration/regtest/up.sh failed twice: $(tail -n 30 "$out/regtest-up.log")"
        fi
        regtest_net="$regtest_dir/network.toml"
    fi
    [ -f "$regtest_net" ] || die "no regtest network file $regtest_net"
    # The merchant's lnd: gRPC address, TLS certificate, and the directory of invoice.macaroon.
    read -r lnd_host lnd_tls lnd_macdir < <(python3 - "$regtest_net" <<'EOF'
import os, sys, tomllib
net = tomllib.load(open(sys.argv[1], "rb"))
m = next(n for n in net["nodes"] if n["name"] == "merchant")
print(m["lnd_endpoint"].removeprefix("https://"), m["tls_cert_path"],
      os.path.dirname(m["lnd_invoice_macaroon_path"]))
EOF
    )
    [ -f "$lnd_macdir/invoice.macaroon" ] || die "Aperture reads invoice.macaroon from its macdir, and $lnd_macdir has none"

    say "building Aperture (benches/load/aperture/go.mod: $(awk '$1 == "github.com/lightninglabs/aperture" { print $2 }' "$here/aperture/go.mod"))"
    (cd "$here/aperture" && CGO_ENABLED=0 go build -trimpath -o "$bin/aperture" github.com/lightninglabs/aperture/cmd/aperture) \
        >"$out/aperture-build.log" 2>&1 || die "building Aperture failed: $(tail -n 30 "$out/aperture-build.log")"
    mkdir -p "$out/aperture"
    cat >"$out/aperture/aperture.yaml" <<EOF
# Written by benches/load/run.sh.
listenaddr: "127.0.0.1:$port_aperture"
# Plain HTTP, like nginx and tapgate here.
insecure: true
basedir: "$out/aperture"
# No per-request log lines (nginx runs with access_log off, tapgate with log filter warn).
debuglevel: "warn"
# The database file is given on the command line (--sqlite.dbfile): in v0.5.0 the YAML key
# sample-conf.yaml shows for it (sqlite: dbfile:) is not read (the key is the field's name,
# databasefilename), and the default, ~/.aperture/aperture.db, fails to open ("out of memory
# (14)") when ~/.aperture does not exist.
# Set on purpose: without it v0.5.0 uses etcd (localhost:2379), its built-in default.
dbbackend: "sqlite"
authenticator:
  network: "regtest"
  lndhost: "$lnd_host"
  tlspath: "$lnd_tls"
  macdir: "$lnd_macdir"
services:
  - name: "bench"
    hostregexp: '.*'
    pathregexp: '^/.*$'
    address: "127.0.0.1:$port_upstream"
    protocol: http
    # tapgate's price, \$0.01, at the regtest network's oracle price (USD 100,000 per BTC).
    price: 10
EOF
    say "starting Aperture (GOMAXPROCS=$workers aperture --configfile=$out/aperture/aperture.yaml)"
    GOMAXPROCS="$workers" "$bin/aperture" --configfile="$out/aperture/aperture.yaml" --basedir="$out/aperture" \
        --sqlite.dbfile="$out/aperture/aperture.db" >"$out/aperture.log" 2>&1 &
    started aperture $! INT
    wait_code aperture "http://127.0.0.1:$port_aperture/" 402 60
    aperture_auth="$(buy_token aperture "http://127.0.0.1:$port_aperture/" "$regtest_net")"
    [ "$(curl -s -H "Authorization: $aperture_auth" "http://127.0.0.1:$port_aperture/")" = "$body" ] ||
        die "Aperture does not return the upstream's body for a paid request"
fi

# ---------------------------------------------------------------------------------------------
# Measurements.

servers=(upstream nginx)
[ "$with_floor" -eq 1 ] && servers+=(hyper-floor hyper-floor-mt)
[ "$with_tapgate" -eq 1 ] && servers+=(tapgate)
[ "$with_lax" -eq 1 ] && servers+=(tapgate-lax)
[ -n "$compare" ] && servers+=(tapgate-b)
[ "$with_aperture" -eq 1 ] && servers+=(aperture)
declare -A port_of=([upstream]=$port_upstream [nginx]=$port_nginx [tapgate]=$port_tapgate [tapgate-lax]=$port_lax [tapgate-b]=$port_b
    [aperture]=$port_aperture [hyper-floor]=$port_floor [hyper-floor-mt]=$port_floor_mt)
declare -A auth_of=([upstream]="" [nginx]="" [tapgate]="${tapgate_auth:-}" [tapgate-lax]="${lax_auth:-}" [tapgate-b]="${b_auth:-}"
    [aperture]="${aperture_auth:-}" [hyper-floor]="" [hyper-floor-mt]="")

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
say "load average before measuring: $load_before on $(nproc) CPUs"
for s in "${servers[@]}"; do
    # shellcheck disable=SC2046
    rss_start[$s]="$(rss_kb $(server_pids "$s"))"
    hold_idle "$s" "${port_of[$s]}" "${auth_of[$s]}"
done
for ((round = 1; round <= rounds; round++)); do
    for s in "${servers[@]}"; do
        bench "$s" "http://127.0.0.1:${port_of[$s]}/" "${auth_of[$s]:+Authorization: ${auth_of[$s]}}" "$round" "$s"
        if [ "$pace_ms" != 0 ]; then
            bench "$s@paced" "http://127.0.0.1:${port_of[$s]}/" "${auth_of[$s]:+Authorization: ${auth_of[$s]}}" "$round" "$s" paced
        fi
    done
done
for s in "${servers[@]}"; do
    # shellcheck disable=SC2046
    rss_load[$s]="$(rss_kb $(server_pids "$s"))"
    summarize "$s"
    [ "$pace_ms" = 0 ] || summarize "$s@paced"
done
# Once, last: every challenge mints a token and an invoice, which the others need not pay for.
if [ "$with_tapgate" -eq 1 ]; then
    bench challenges "http://127.0.0.1:$port_tapgate/" "" 1 tapgate
    summarize challenges
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------
# Report.

declare -A label=([upstream]="upstream direct (HAProxy)" [nginx]="nginx proxy_pass" [tapgate]="tapgate (paid)"
    [tapgate-lax]="tapgate (paid), non-strict" [tapgate-b]="tapgate --compare (paid)" [aperture]="Aperture (paid)" [challenges]="tapgate 402 challenges"
    [hyper-floor]="hyper floor (per worker)" [hyper-floor-mt]="hyper floor (multi-thread)")
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
{
    echo "tapgate load benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs ($(uname -r)); load average $load_before before the runs, $load_after after"
    echo "wrk $duration, $connections connections, $threads threads, after a 2 s warm-up; $rounds rounds (each server in turn), medians; $workers workers per proxy;"
    echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'); upstream HAProxy $(haproxy -v | head -n 1 | cut -d' ' -f3); $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
    [ "$with_aperture" -eq 1 ] && echo "Aperture $(awk '$1 == "github.com/lightninglabs/aperture" { print $2 }' "$here/aperture/go.mod") on the regtest merchant's lnd ($regtest_net)"
    [ "$with_tapgate" -eq 1 ] && echo "tapgate $("$tapgate" --version | cut -d' ' -f2) ($(cd "$root" && git rev-parse --short HEAD)) on simnet"
    echo
    printf '%-26s %10s %9s %9s %10s %9s %8s %7s %10s %14s %10s\n' "" "req/s" "p50 ms" "p99 ms" "CPU us/req" "requests" "non-2xx" "errors" "RSS start" "RSS $idle idle" "RSS load"
    for k in "${servers[@]}" challenges; do
        [ -n "${rps[$k]:-}" ] || continue
        printf '%-26s %10s %9s %9s %10s %9s %8s %7s %10s %14s %10s\n' "${label[$k]}" "${rps[$k]}" "${p50[$k]}" "${p99[$k]}" "${cpu[$k]}" \
            "${total[$k]}" "${non2xx[$k]}" "${errs[$k]}" \
            "${rss_start[$k]:+$(mib "${rss_start[$k]}") MiB}" "${rss_idle[$k]:+$(mib "${rss_idle[$k]}") MiB}" "${rss_load[$k]:+$(mib "${rss_load[$k]}") MiB}"
    done
    echo "(req/s, p50, p99, CPU: medians over the rounds (challenges: one run); requests: the rounds' sum. CPU: user + system time of"
    echo " the server alone (nginx: master and workers; not the upstream's, nor wrk's) per request. RSS: VmRSS; the idle column with"
    echo " ${idle} keep-alive connections held open after one request each)"
    if [ "$pace_ms" != 0 ]; then
        echo
        echo "paced: one wrk thread, $paced_connections connections, each pausing $pace_ms ms after a response (benches/load/paced.lua), $duration:"
        printf '%-26s %10s %9s %9s %10s %9s %8s\n' "" "req/s" "p50 ms" "p99 ms" "CPU us/req" "requests" "non-2xx"
        for k in "${servers[@]}"; do
            [ -n "${rps[$k@paced]:-}" ] || continue
            printf '%-26s %10s %9s %9s %10s %9s %8s\n' "${label[$k]}" "${rps[$k@paced]}" "${p50[$k@paced]}" "${p99[$k@paced]}" \
                "${cpu[$k@paced]}" "${total[$k@paced]}" "${non2xx[$k@paced]}"
        done
    fi
    if [ "$rounds" -gt 1 ]; then
        echo
        echo "req/s per round (load average at the start of each run in $out/results.rounds):"
        for k in "${servers[@]}"; do
            printf '  %-26s' "${label[$k]}"
            for ((r = 1; r <= rounds; r++)); do printf ' %10s' "${rps_r[$k/$r]}"; done
            echo
        done
    fi
    echo
    echo "ratios (the median of each round's ratio, so that both sides of one ratio were measured a few seconds apart):"
    echo "  nginx / upstream throughput:     $(round_ratio nginx upstream)"
    if [ "$with_tapgate" -eq 1 ]; then
        echo "  tapgate / nginx throughput:      $(round_ratio tapgate nginx)"
        echo "  tapgate p99 added vs nginx:      $(round_diff tapgate nginx) ms"
        echo "  tapgate p99 added vs upstream:   $(round_diff tapgate upstream) ms"
        if [ "$pace_ms" != 0 ]; then
            echo "  paced: tapgate p99 added vs nginx:    $(round_diff tapgate@paced nginx@paced) ms (p50: $(round_diff tapgate@paced nginx@paced p50) ms)"
            echo "  paced: tapgate p99 added vs upstream: $(round_diff tapgate@paced upstream@paced) ms"
            echo "  paced: nginx p99 added vs upstream:   $(round_diff nginx@paced upstream@paced) ms"
        fi
        echo "  tapgate / nginx CPU per request: $(ratio "${cpu[tapgate]}" "${cpu[nginx]}")"
        echo "  challenges/s (402) on simnet:    ${rps[challenges]} ($(ratio "${non2xx[challenges]}" "${total[challenges]}") of responses non-2xx)"
    fi
    if [ "$with_floor" -eq 1 ]; then
        echo "  hyper floor / nginx throughput:  $(round_ratio hyper-floor nginx) (multi-thread runtime: $(round_ratio hyper-floor-mt nginx))"
        echo "  hyper floor / nginx CPU per req: $(ratio "${cpu[hyper-floor]}" "${cpu[nginx]}") (multi-thread runtime: $(ratio "${cpu[hyper-floor-mt]}" "${cpu[nginx]}"))"
        [ "$with_tapgate" -eq 1 ] && echo "  tapgate / hyper floor:           $(round_ratio tapgate hyper-floor)"
    fi
    if [ -n "$compare" ]; then
        echo "  tapgate / tapgate --compare:     $(round_ratio tapgate tapgate-b) (--compare $compare)"
        echo "  tapgate --compare / nginx:       $(round_ratio tapgate-b nginx)"
        echo "  tapgate --compare p99 added:     $(round_diff tapgate-b nginx) ms vs nginx"
        [ "$pace_ms" = 0 ] || echo "  paced: tapgate --compare p99 added: $(round_diff tapgate-b@paced nginx@paced) ms vs nginx"
    fi
    if [ "$with_lax" -eq 1 ]; then
        echo "  tapgate non-strict / nginx:      $(round_ratio tapgate-lax nginx)"
        echo "  tapgate non-strict p99 added:    $(round_diff tapgate-lax nginx) ms vs nginx"
        echo "  tapgate non-strict / strict:     $(round_ratio tapgate-lax tapgate)"
    fi
    if [ "$with_aperture" -eq 1 ]; then
        echo "  Aperture / nginx throughput:     $(round_ratio aperture nginx)"
        echo "  Aperture p99 added vs nginx:     $(round_diff aperture nginx) ms"
        [ "$pace_ms" = 0 ] || echo "  paced: Aperture p99 added vs nginx:   $(round_diff aperture@paced nginx@paced) ms"
    fi
    if [ "$with_tapgate" -eq 1 ] && [ "$with_aperture" -eq 1 ]; then
        echo "  tapgate / Aperture throughput:   $(round_ratio tapgate aperture)"
        if [ "$with_lax" -eq 1 ]; then
            echo "  tapgate non-strict / Aperture:   $(round_ratio tapgate-lax aperture) (both accept a valid preimage without an invoice lookup)"
        fi
    fi
    [ "$with_tapgate" -eq 1 ] || echo "  (tapgate left out: --without-tapgate)"
    [ "$with_aperture" -eq 1 ] || echo "  (Aperture left out: --without-aperture)"
    for k in "${servers[@]}"; do
        [ "${idle_status[$k]:-}" = "$idle 200=$idle" ] ||
            echo "WARNING: ${label[$k]}: the idle connections' one request each got ${idle_status[$k]:-nothing}, not all 200: its idle RSS is not that of paid connections"
        [ "${non2xx[$k]:-0}" -eq 0 ] || echo "WARNING: ${label[$k]}: ${non2xx[$k]} responses were not 2xx: its figures are not of successful proxied calls"
    done
} | tee "$out/results.txt"
{
    printf 'name\treq_per_s\tp50_ms\tp99_ms\tcpu_us_per_req\trequests\tnon2xx\tsocket_errors\trss_start_kib\trss_idle_kib\trss_load_kib\n'
    for k in "${servers[@]}" "${servers[@]/%/@paced}" challenges; do
        [ -n "${rps[$k]:-}" ] || continue
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "${rps[$k]}" "${p50[$k]}" "${p99[$k]}" "${cpu[$k]}" "${total[$k]}" \
            "${non2xx[$k]}" "${errs[$k]}" "${rss_start[$k]:-}" "${rss_idle[$k]:-}" "${rss_load[$k]:-}"
    done
} >"$out/results.tsv"
{
    printf 'name\tround\treq_per_s\tp50_ms\tp99_ms\tcpu_us_per_req\trequests\tload1\n'
    for k in "${servers[@]}" "${servers[@]/%/@paced}" challenges; do
        for ((r = 1; r <= rounds; r++)); do
            [ -n "${rps_r[$k/$r]:-}" ] || continue
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$r" "${rps_r[$k/$r]}" "${p50_r[$k/$r]}" "${p99_r[$k/$r]}" "${cpu_r[$k/$r]}" \
                "${total_r[$k/$r]}" "${load_r[$k/$r]}"
        done
    done
} >"$out/results.rounds"
say "results in $out/results.txt, results.tsv (medians) and results.rounds (each run); wrk outputs in $out/wrk-*.txt"
