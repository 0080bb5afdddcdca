#!/usr/bin/env bash
# Benchmark (not a test): the Go air gap at scale. MODULES module versions
# in the Go fixture (tests/gofixture/sumdbfixture: a real checksum database
# and GOPROXY); an outside bulwark `sync`s them from a list, syncs again
# (all "already there"), `export`s; an offline inside `import`s and
# re-imports. Prints wall time and peak RSS (GNU time) of each step.
#
#   benches/airgap-go.sh                   # 1000 modules, release bulwark
#   MODULES=200 BULWARK=target/debug/bulwark benches/airgap-go.sh
#
# Needs: go (golang-go), golang.org/x/mod in /usr/share/gocode
# (golang-golang-x-mod-dev), /usr/bin/time, a built bulwark. Loopback only.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
MODULES=${MODULES:-1000}
target=${CARGO_TARGET_DIR:-$here/target}
BULWARK=${BULWARK:-$target/release/bulwark}
[ -x "$BULWARK" ] || { echo "no bulwark binary at $BULWARK (cargo build --release)" >&2; exit 2; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

. "$here/benches/gofixture.sh"
build_go_fixture

# Modules example.com/bench/mNNNN v1.0.0, ~27 KiB of random text each.
mods="$tmp/mods"
for i in $(seq -w 1 "$MODULES"); do
    d="$mods/example.com/bench/m$i@v1.0.0"
    mkdir -p "$d"
    printf 'module example.com/bench/m%s\n\ngo 1.19\n' "$i" >"$d/go.mod"
    { printf 'package m%s\n\n' "$i"; head -c 20000 /dev/urandom | base64 | sed 's|^|// |'; } >"$d/m.go"
    echo "gomod example.com/bench/m$i v1.0.0" >>"$tmp/list.txt"
done

start_go_fixture "$mods"

config() { # $1: side, $2: url, $3: extra [server] line
    cat >"$tmp/$1.toml" <<EOF
[server]
listen = "127.0.0.1:0"
data_dir = "$tmp/$1-data"
$3

[[upstream]]
name = "fixture"
protocol = "gomod"
url = "$2"
namespaces = ["*"]
sumdb = { name = "$name", url = "$2/sumdb/$name", key = "$vkey" }
EOF
}
config outside "http://$fx_addr" ""
config inside "http://127.0.0.1:9" "offline = true"

step() { # $1: label, rest: bulwark arguments
    local label=$1; shift
    /usr/bin/time -f "$label: %e s wall, peak RSS %M KiB" -o "$tmp/time" "$BULWARK" "$@" >"$tmp/out" 2>/dev/null || true
    printf '%s  (%s)\n' "$(cat "$tmp/time")" "$(head -1 "$tmp/out")"
}
echo "modules: $MODULES"
step "sync" sync --config "$tmp/outside.toml" --progress none "$tmp/list.txt"
step "sync again" sync --config "$tmp/outside.toml" --progress none "$tmp/list.txt"
step "export" export --config "$tmp/outside.toml" --out "$tmp/bundle.tar"
echo "bundle: $(stat -c %s "$tmp/bundle.tar") bytes"
step "import" import --config "$tmp/inside.toml" --progress none "$tmp/bundle.tar"
step "re-import" import --config "$tmp/inside.toml" --progress none "$tmp/bundle.tar"
