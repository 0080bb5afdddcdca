#!/usr/bin/env bash
# Benchmark (not a test): `go mod download` of a set of modules through
# bulwark, cold (empty data dir) and warm (everything verified and stored),
# against the Go fixture upstream (tests/gofixture/sumdbfixture: a real
# checksum database and GOPROXY) directly, in one run; prints the times and
# the ratios. Every go run starts with an empty module cache.
#
#   benches/gomod-load.sh            # 40 modules, 3 rounds, release bulwark
#   MODULES=100 ROUNDS=5 benches/gomod-load.sh
#   BULWARK=target/debug/bulwark benches/gomod-load.sh
#   FSYNCS=1 benches/gomod-load.sh   # also count bulwark's fsync/fdatasync
#                                    # calls and the wall time they blocked
#                                    # (strace -f -c -w), per module
#
# Needs: go (golang-go), golang.org/x/mod in /usr/share/gocode
# (golang-golang-x-mod-dev), bc, a built bulwark (cargo build --release);
# strace for FSYNCS=1. Missing Debian packages are installed with apt-get.
# Talks only to loopback.
set -euo pipefail

. "$(dirname "$0")/need.sh"
need go:golang-go bc:bc /usr/share/gocode/src/golang.org/x/mod:golang-golang-x-mod-dev
[ -z "${FSYNCS:-}" ] || need strace:strace

here=$(cd "$(dirname "$0")/.." && pwd)
MODULES=${MODULES:-40}
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-20}
target=${CARGO_TARGET_DIR:-$here/target}
BULWARK=${BULWARK:-$target/release/bulwark}
[ -x "$BULWARK" ] || { echo "no bulwark binary at $BULWARK (cargo build --release)" >&2; exit 2; }

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

# Modules example.com/bench/mNNN v1.0.0, each FILES files of ~4 KiB.
mods="$tmp/mods"
list=()
for i in $(seq -w 1 "$MODULES"); do
    d="$mods/example.com/bench/m$i@v1.0.0"
    mkdir -p "$d"
    printf 'module example.com/bench/m%s\n\ngo 1.19\n' "$i" >"$d/go.mod"
    for f in $(seq 1 "$FILES"); do
        { printf 'package m%s\n\n' "$i"; head -c 3000 /dev/urandom | base64 | sed 's|^|// |'; } >"$d/f$f.go"
    done
    list+=("example.com/bench/m$i@v1.0.0")
done

# The fixture exits when its standard input closes: hold a fifo open.
start_go_fixture "$mods"

start_bulwark() { # $1: data dir; sets b_addr, b_pid
    cat >"$tmp/bulwark.toml" <<EOF
[server]
listen = "127.0.0.1:0"
data_dir = "$1"
log_format = "human"

[[upstream]]
name = "fixture"
protocol = "gomod"
url = "http://$fx_addr"
namespaces = ["*"]
sumdb = { name = "$name", url = "http://$fx_addr/sumdb/$name", key = "$vkey" }
EOF
    # A new output file per start: the redirection of a background job
    # happens after it forked, so an old file could still be read.
    local out="$1.out"
    local wrap=()
    if [ -n "${FSYNCS:-}" ]; then
        # -w: wall time blocked in the calls, not CPU time.
        wrap=(strace --seccomp-bpf -f -c -w -e trace=fsync,fdatasync -o "$1.strace")
    fi
    RUST_LOG=error "${wrap[@]}" "$BULWARK" serve --config "$tmp/bulwark.toml" >"$out" 2>"$tmp/b.err" &
    b_pid=$!
    pids+=("$b_pid")
    until grep -q '^listening on ' "$out" 2>/dev/null; do
        kill -0 "$b_pid" 2>/dev/null || { cat "$tmp/b.err" >&2; exit 1; }
        sleep 0.05
    done
    b_addr=$(sed -n 's/^listening on //p' "$out")
}

stop_bulwark() {
    # Under strace, bulwark is strace's child: stop it first.
    local child
    child=$(pgrep -P "$b_pid" || true)
    [ -z "$child" ] || kill $child 2>/dev/null || true
    kill "$b_pid" 2>/dev/null || true; wait "$b_pid" 2>/dev/null || true
}

# go mod download of every module through $1 with an empty cache; prints seconds.
download() {
    local home
    home=$(mktemp -d "$tmp/home.XXXX")
    mkdir -p "$home/work"
    local t0 t1
    t0=$(date +%s.%N)
    (cd "$home/work" && env -i PATH="$PATH" HOME="$home" GOPATH="$home/gopath" \
        GOMODCACHE="$home/gopath/pkg/mod" GOCACHE="$home/gocache" GOENV=off GOWORK=off \
        GO111MODULE=on GOFLAGS=-modcacherw GOPROXY="$1" GOSUMDB="$vkey" GOTOOLCHAIN=local \
        go mod download "${list[@]}") >/dev/null 2>"$home/err" || {
        echo "go mod download via $1 failed:" >&2; cat "$home/err" >&2; kill -TERM $$; }
    t1=$(date +%s.%N)
    local got
    got=$(find "$home/gopath/pkg/mod/cache/download" -name '*.zip' | wc -l)
    if [ "$got" -ne "$MODULES" ]; then
        echo "via $1: $got zips downloaded, want $MODULES" >&2; kill -TERM $$
    fi
    chmod -R u+w "$home"; rm -rf "$home"
    echo "$t1 - $t0" | bc -l
}

mean() { local s=0 n=0; for x in "$@"; do s=$(echo "$s + $x" | bc -l); n=$((n + 1)); done; echo "$s / $n" | bc -l; }

direct=(); cold=(); warm=()
for r in $(seq 1 "$ROUNDS"); do
    direct+=("$(download "http://$fx_addr")")
    start_bulwark "$tmp/data$r"
    cold+=("$(download "http://$b_addr")")
    warm+=("$(download "http://$b_addr")")
    stop_bulwark
done

d=$(mean "${direct[@]}"); c=$(mean "${cold[@]}"); w=$(mean "${warm[@]}")
printf 'go mod download of %d modules (%d files each), mean of %d rounds, empty go cache each run\n' \
    "$MODULES" "$FILES" "$ROUNDS"
printf '  fixture directly      %8.3f s\n' "$d"
printf '  through bulwark cold  %8.3f s   ratio %.2f\n' "$c" "$(echo "$c / $d" | bc -l)"
printf '  through bulwark warm  %8.3f s   ratio %.2f\n' "$w" "$(echo "$w / $d" | bc -l)"
if [ -n "${FSYNCS:-}" ]; then
    # strace -c lines: % time, seconds, usecs/call, calls, [errors,] syscall.
    n=$(cat "$tmp"/data*.strace | awk '$NF == "fsync" || $NF == "fdatasync" { s += $4 } END { print s + 0 }')
    secs=$(cat "$tmp"/data*.strace | awk '$NF == "fsync" || $NF == "fdatasync" { s += $2 } END { print s + 0 }')
    printf '  bulwark fsync+fdatasync, cold and warm run: %.1f calls, %.2f ms blocked, per module\n' \
        "$(echo "$n / ($MODULES * $ROUNDS)" | bc -l)" "$(echo "1000 * $secs / ($MODULES * $ROUNDS)" | bc -l)"
fi
