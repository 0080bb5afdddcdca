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

. "$here/benches/airgap-lib.sh"
bench_tmp
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

upstream() { # $1: url
    printf 'name = "fixture"\nprotocol = "gomod"\nurl = "%s"\nnamespaces = ["*"]\n' "$1"
    printf 'sumdb = { name = "%s", url = "%s/sumdb/%s", key = "%s" }\n' "$name" "$1" "$name" "$vkey"
}
upstream "http://$fx_addr" | airgap_config outside ""
upstream "http://127.0.0.1:9" | airgap_config inside "offline = true"
echo "modules: $MODULES"
airgap_steps
