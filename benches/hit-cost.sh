#!/usr/bin/env bash
# Benchmark (not a test): what one verified cache hit of a small `.mod`
# costs bulwark, counted rather than timed, so that it means the same on a
# busy shared machine as on a quiet one:
#
#   - instructions per request (user space), from valgrind's callgrind:
#     bulwark runs under it, WARMUP hits are served, the counters are
#     zeroed, N more hits are served (ab, keep-alive, CONC connections),
#     and the counters are dumped; the top functions by inclusive cost are
#     printed (callgrind_annotate) when TOP is set;
#   - system calls per request, from strace -c -f over N hits of a normal
#     (not instrumented) run.
#
#   benches/hit-cost.sh                  # N=4000 CONC=16 WARMUP=500
#   BULWARK=/path/to/other/bulwark benches/hit-cost.sh
#   TOP=40 OUT=/tmp/cg benches/hit-cost.sh   # keep the profile, show 40 rows
#
# Settings (environment): N, CONC, WARMUP, LOGS (on: the `info` request
# line to a file, as benches/cache-hit.sh; off: RUST_LOG=warn), BULWARK
# (release binary of $CARGO_TARGET_DIR), OUT (callgrind output file
# prefix; a temporary one by default), TOP (rows of the annotation).
#
# Needs (Debian): valgrind, strace, apache2-utils (ab), curl, golang-go
# and golang-golang-x-mod-dev (the Go fixture upstream); installed with
# apt-get when missing and this runs as root. Talks only to loopback.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-4000}
CONC=${CONC:-16}
WARMUP=${WARMUP:-500}
LOGS=${LOGS:-on}
target=${CARGO_TARGET_DIR:-$here/target}
BULWARK=${BULWARK:-$target/release/bulwark}
[ -x "$BULWARK" ] || { echo "no bulwark binary at $BULWARK (cargo build --release)" >&2; exit 2; }
. "$here/benches/need.sh"
need valgrind:valgrind callgrind_control:valgrind strace:strace ab:apache2-utils curl:curl bc:bc \
    go:golang-go /usr/share/gocode/src/golang.org/x/mod:golang-golang-x-mod-dev

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
mods="$tmp/mods"
d="$mods/example.com/bench/small@v1.0.0"
mkdir -p "$d"
printf 'module example.com/bench/small\n\ngo 1.19\n' >"$d/go.mod"
printf 'package small\n' >"$d/small.go"
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
path=/example.com/bench/small/@v/v1.0.0.mod

# start <wrapper...>: bulwark under the wrapper; sets b_addr, b_pid.
start() {
    local out
    out=$(mktemp "$tmp/bulwark.out.XXXX")
    RUST_LOG=$rust_log "$@" "$BULWARK" serve --config "$tmp/bulwark.toml" >"$out" 2>>"$tmp/bulwark.log" &
    b_pid=$!
    pids+=("$b_pid")
    until grep -q '^listening on ' "$out" 2>/dev/null; do
        kill -0 "$b_pid" 2>/dev/null || { tail "$tmp/bulwark.log" >&2; exit 1; }
        sleep 0.1
    done
    b_addr=$(sed -n 's/^listening on //p' "$out")
}
stop() {
    local child
    child=$(pgrep -P "$b_pid" || true)
    [ -z "$child" ] || kill $child 2>/dev/null || true
    kill "$b_pid" 2>/dev/null || true
    wait "$b_pid" 2>/dev/null || true
}
hits() { # hits <count>: keep-alive GETs of the .mod, all 200
    local out
    out=$(ab -q -k -c "$CONC" -n "$1" "http://$b_addr$path" 2>&1)
    grep -q '^Non-2xx responses' <<<"$out" && { echo "$out" >&2; exit 1; }
    grep -q '^Failed requests:[[:space:]]*0$' <<<"$out" || { echo "$out" >&2; exit 1; }
}

# Fill the cache once (a cold fetch, verified and stored).
start
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://$b_addr$path")
[ "$code" = 200 ] || { echo "warming $path: status $code" >&2; exit 1; }
hits "$WARMUP"
# System calls per hit, uninstrumented: strace attached to every thread
# for the N hits only.
strace -f -c -o "$tmp/strace" -p "$b_pid" 2>/dev/null &
st_pid=$!
sleep 1
hits "$N"
kill -INT "$st_pid"; wait "$st_pid" 2>/dev/null || true
stop
calls=$(awk '$NF == "total" { print $4 }' "$tmp/strace")
# Instructions per hit.
OUT=${OUT:-$tmp/cg}
start valgrind -q --tool=callgrind --callgrind-out-file="$OUT.%p" --dump-instr=no
hits "$WARMUP"
callgrind_control -z "$b_pid" >/dev/null
hits "$N"
callgrind_control -d "$b_pid" >/dev/null
stop
dump=$(ls -t "$OUT".*.* 2>/dev/null | head -n 1 || true)
[ -n "$dump" ] || dump=$(ls -t "$OUT".* | head -n 1)
ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$dump" | head -n 1)
[ -n "$ir" ] || ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$dump" | head -n 1)
printf 'small .mod cache hit, ab -k -c %d, %d hits after %d, logs %s:\n' "$CONC" "$N" "$WARMUP" "$LOGS"
printf '  %10.0f instructions per request (user space, callgrind)\n' "$(echo "$ir / $N" | bc -l)"
printf '  %10.2f system calls per request (strace -c -f)\n' \
    "$(echo "$calls / $N" | bc -l)"
if [ -n "${TOP:-}" ]; then
    { callgrind_annotate --inclusive=yes "$dump" 2>/dev/null || true; } | head -n "$((TOP + 20))" || true
fi
if [ -n "${TOP:-}" ]; then cat "$tmp/strace"; fi
