#!/usr/bin/env bash
# Benchmark (not a test): verified cache hits through bulwark against nginx
# serving the very same bytes as static files, in one run, on loopback.
#
#   benches/cache-hit.sh            # hits: req/s of bulwark vs nginx, ratios
#   benches/cache-hit.sh conns      # 1,000 connections for 60 s on cache hits:
#                                   # non-2xx, socket errors, bulwark's peak RSS
#   benches/cache-hit.sh big        # a ~500 MiB module zip fetched by 50 curl
#                                   # clients at once: bulwark's peak RSS
#   benches/cache-hit.sh warg       # a real Warg 10 MiB content GET:
#                                   # benches/warg-hit.sh (warg-server, a
#                                   # published package, a verified
#                                   # download through bulwark)
#   benches/cache-hit.sh all        # the four, in this order
#
# Settings (environment): ROUNDS (3), SECONDS_PER_ROUND (5), CONNS (32),
# THREADS (2), BIG_CONNS (1000), BIG_SECONDS (60), BIG_PATH (the .mod),
# CLIENTS (50), LOGS (on), BULWARK (release binary of $CARGO_TARGET_DIR),
# CASES (the hits measured: "zip mod 10m"), PERF_OUT (when set, a
# `perf record -e cpu-clock` profile of bulwark during each of its rounds
# is written to $PERF_OUT.<case>.<round>; PERF_ARGS, default -g, are
# perf's call-graph flags, e.g. "--call-graph dwarf,16384").
#
# hits: wrk with THREADS threads and CONNS connections, rounds alternating
# nginx, bulwark, nginx, bulwark, ...; each side's best of ROUNDS rounds of
# SECONDS_PER_ROUND seconds, and each side's CPU time per request over its
# rounds (benches/hits-lib.sh: the req/s ratio moves with whatever else
# runs on the machine, the CPU per request much less), for three cache
# hits:
#   - a 1 MiB module .zip (a module of one 1 MiB file of random bytes),
#   - that module's small .mod (43 bytes),
#   - a 10 MiB module .zip (the Warg 10 MiB content GET is `warg` mode).
#
# Both servers log every request when LOGS=on (the default configuration
# of each: bulwark's `info` request line to a file, nginx's access_log to a
# file); LOGS=off turns both off (RUST_LOG=warn, access_log off).
# nginx: Debian's build, worker_processes auto, sendfile on, tcp_nopush on,
# keepalive_requests 1000000 (wrk keeps its connections; nginx's default of
# 1000 would make it reconnect, bulwark has no such cap), daemon off.
# bulwark: release build, default configuration except
# max_connections_per_peer = 4096 (every wrk connection comes from
# 127.0.0.1; the default cap of 256 per address would refuse most of them).
#
# The bytes nginx serves are the bytes bulwark answered (fetched through it
# once, which also warms its cache); the script checks they are the files in
# bulwark's blob store.
#
# Needs (Debian): nginx (nginx-light), wrk, curl, bc, python3 (a free port
# for nginx), golang-go and golang-golang-x-mod-dev (the Go fixture
# upstream, tests/gofixture/sumdbfixture), and a built bulwark
# (cargo build --release); `warg` mode also what benches/warg-hit.sh
# needs. nginx and wrk are installed with apt-get when missing and this
# runs as root; nothing else is installed. Talks only to loopback.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-hits}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
BIG_CONNS=${BIG_CONNS:-1000}
BIG_SECONDS=${BIG_SECONDS:-60}
CLIENTS=${CLIENTS:-50}
LOGS=${LOGS:-on}
target=${CARGO_TARGET_DIR:-$here/target}
BULWARK=${BULWARK:-$target/release/bulwark}
case "$MODE" in hits|conns|big|warg|all) ;; *) echo "usage: $0 [hits|conns|big|warg|all]" >&2; exit 2;; esac
[ -x "$BULWARK" ] || { echo "no bulwark binary at $BULWARK (cargo build --release)" >&2; exit 2; }
if [ "$MODE" = warg ]; then exec "$here/benches/warg-hit.sh"; fi
. "$here/benches/hits-lib.sh"
need_nginx_wrk curl:curl bc:bc python3:python3 go:golang-go

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    chmod -R u+w "$tmp" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

. "$here/benches/gofixture.sh"
build_go_fixture

# module <name> <files> <bytes per file>: example.com/bench/<name>@v1.0.0
# made of random (incompressible) files.
mods="$tmp/mods"
module() {
    local d="$mods/example.com/bench/$1@v1.0.0"
    mkdir -p "$d"
    printf 'module example.com/bench/%s\n\ngo 1.19\n' "$1" >"$d/go.mod"
    for f in $(seq 1 "$2"); do head -c "$3" /dev/urandom >"$d/data$f.bin"; done
}
module zip1m 1 1048000
module zip10m 1 10484000
if [ "$MODE" = big ] || [ "$MODE" = all ]; then
    # 20 files of 26,000,000 bytes: 520,000,000 bytes (495.9 MiB), just
    # under Go's 500 MiB limit on a module zip.
    module huge 20 26000000
fi

start_go_fixture "$mods"

data="$tmp/data"
cat >"$tmp/bulwark.toml" <<EOF
[server]
listen = "127.0.0.1:0"
data_dir = "$data"
log_format = "human"
max_connections_per_peer = 4096

[[upstream]]
name = "fixture"
protocol = "gomod"
url = "http://$fx_addr"
namespaces = ["*"]
sumdb = { name = "$name", url = "http://$fx_addr/sumdb/$name", key = "$vkey" }
EOF
if [ "$LOGS" = on ]; then rust_log=info; else rust_log=warn; fi

start_bulwark() { # sets b_addr, b_pid
    local out
    out=$(mktemp "$tmp/bulwark.out.XXXX")
    RUST_LOG=$rust_log "$BULWARK" serve --config "$tmp/bulwark.toml" >"$out" 2>>"$tmp/bulwark.log" &
    b_pid=$!
    pids+=("$b_pid")
    until grep -q '^listening on ' "$out" 2>/dev/null; do
        kill -0 "$b_pid" 2>/dev/null || { tail "$tmp/bulwark.log" >&2; exit 1; }
        sleep 0.05
    done
    b_addr=$(sed -n 's/^listening on //p' "$out")
}
stop_bulwark() { kill "$b_pid"; wait "$b_pid" 2>/dev/null || true; }
peak_rss_kib() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

start_bulwark

# Warm the cache: one GET per file through bulwark; what it answered is
# what nginx serves.
root="$tmp/www"
paths=(/example.com/bench/zip1m/@v/v1.0.0.zip /example.com/bench/zip1m/@v/v1.0.0.mod
       /example.com/bench/zip10m/@v/v1.0.0.zip)
if [ "$MODE" = big ] || [ "$MODE" = all ]; then paths+=(/example.com/bench/huge/@v/v1.0.0.zip); fi
for p in "${paths[@]}"; do
    mkdir -p "$root$(dirname "$p")"
    code=$(curl -sS -o "$root$p" -w '%{http_code}' "http://$b_addr$p")
    [ "$code" = 200 ] || { echo "warming $p: status $code" >&2; cat "$root$p" >&2; exit 1; }
    sum=$(sha256sum "$root$p" | cut -d' ' -f1)
    blob="$data/blobs/sha256/${sum:0:2}/$sum"
    cmp -s "$blob" "$root$p" || { echo "$p: not the stored blob $blob" >&2; exit 1; }
    printf '  %-45s %10d bytes  blob %s\n' "$p" "$(stat -c %s "$root$p")" "${sum:0:16}..." >&2
done

start_nginx "$tmp" "$root" application/octet-stream 'types { application/zip zip; text/plain mod; }'
for p in "${paths[@]}"; do
    cmp -s <(curl -s "http://$ng_addr$p") "$root$p" || { echo "nginx serves other bytes for $p" >&2; exit 1; }
done


if [ "$MODE" = hits ] || [ "$MODE" = all ]; then
    printf '\ncache hits: wrk -t%d -c%d, best of %d rounds of %d s, alternating nginx/bulwark, logs %s\n' \
        "$THREADS" "$CONNS" "$ROUNDS" "$SECONDS_PER_ROUND" "$LOGS"
    compare_header
    for spec in "1 MiB module .zip|/example.com/bench/zip1m/@v/v1.0.0.zip|0.9" \
                "small .mod|/example.com/bench/zip1m/@v/v1.0.0.mod|0.8" \
                "10 MiB module .zip|/example.com/bench/zip10m/@v/v1.0.0.zip|0.9"; do
        IFS='|' read -r label p want <<<"$spec"
        case " ${CASES:-zip mod 10m} " in *" $(case $label in "1 MiB"*) echo zip;; small*) echo mod;; *) echo 10m;; esac) "*) ;; *) continue;; esac
        compare "$label" "$p" "$want" "$ng_addr" "$ng_pid" "$b_addr" "$b_pid"
    done
fi

if [ "$MODE" = conns ] || [ "$MODE" = all ]; then
    stop_bulwark
    start_bulwark
    p=${BIG_PATH:-/example.com/bench/zip1m/@v/v1.0.0.mod}
    read -r rps non2xx sock _ <<<"$(run_wrk "http://$b_addr$p" "$BIG_CONNS" "$BIG_SECONDS")"
    rss=$(peak_rss_kib "$b_pid")
    printf '\n%d connections for %d s on %s (wrk -t%d): %.0f req/s, non-2xx %d, socket errors %d, bulwark peak RSS %d MiB (target: 0 errors, <= 256 MiB)\n' \
        "$BIG_CONNS" "$BIG_SECONDS" "$p" "$THREADS" "$rps" "$non2xx" "$sock" $((rss / 1024))
fi

if [ "$MODE" = big ] || [ "$MODE" = all ]; then
    stop_bulwark
    start_bulwark
    p=/example.com/bench/huge/@v/v1.0.0.zip
    size=$(stat -c %s "$root$p")
    t0=$(date +%s.%N)
    curls=()
    for c in $(seq 1 "$CLIENTS"); do
        curl -s -o /dev/null -w '%{http_code} %{size_download}\n' "http://$b_addr$p" >"$tmp/big.$c" &
        curls+=($!)
    done
    for c in "${curls[@]}"; do wait "$c" || true; done
    t1=$(date +%s.%N)
    bad=0
    for c in $(seq 1 "$CLIENTS"); do [ "$(cat "$tmp/big.$c")" = "200 $size" ] || bad=$((bad + 1)); done
    rss=$(peak_rss_kib "$b_pid")
    printf '\n%d clients at once fetching a %d-byte zip: %d incomplete, %.1f s, bulwark peak RSS %d MiB (target <= 256 MiB)\n' \
        "$CLIENTS" "$size" "$bad" "$(echo "$t1 - $t0" | bc -l)" $((rss / 1024))
fi
stop_bulwark
if [ "$MODE" = all ]; then "$here/benches/warg-hit.sh"; fi
