#!/usr/bin/env bash
# Benchmark (not a test): the PyPI air gap at scale. PACKAGES projects of
# one wheel each (tests/support/mkwheel.py) in the real pypiserver
# (tests/support/run_pypiserver.py); an outside bulwark `sync`s them from
# a list, syncs again (all "already there"), `export`s; an offline inside
# `import`s and re-imports. Prints wall time and peak RSS (GNU time) of
# each step.
#
#   benches/airgap-pypi.sh                   # 500 projects, release bulwark
#   PACKAGES=200 BULWARK=target/debug/bulwark benches/airgap-pypi.sh
#
# Needs: the Python environment of .ci/setup (pypiserver) in
# ~/.cache/bulwark-tools/py (or $BULWARK_PY_DIR), /usr/bin/time, a built
# bulwark. Loopback only.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PACKAGES=${PACKAGES:-500}
target=${CARGO_TARGET_DIR:-$here/target}
BULWARK=${BULWARK:-$target/release/bulwark}
PY=${BULWARK_PY_DIR:-$HOME/.cache/bulwark-tools/py}/bin/python
[ -x "$BULWARK" ] || { echo "no bulwark binary at $BULWARK (cargo build --release)" >&2; exit 2; }
[ -x "$PY" ] || { echo "no Python environment at $PY (run .ci/setup)" >&2; exit 2; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/packages"
for i in $(seq -w 1 "$PACKAGES"); do
    "$PY" "$here/tests/support/mkwheel.py" "$tmp/packages" "p$i" 1.0
    echo "pypi p$i 1.0" >>"$tmp/list.txt"
done

# pypiserver on port 0; it ends when its standard input closes.
mkfifo "$tmp/in"
"$PY" "$here/tests/support/run_pypiserver.py" "$tmp/packages" <"$tmp/in" >"$tmp/py.out" 2>/dev/null &
pids+=($!)
exec 3>"$tmp/in"
for _ in $(seq 1 200); do
    grep -q "listening on" "$tmp/py.out" 2>/dev/null && break
    sleep 0.05
done
addr=$(sed -n 's/^listening on //p' "$tmp/py.out")
[ -n "$addr" ] || { echo "pypiserver did not start" >&2; exit 1; }

config() { # $1: side, $2: url, $3: extra [server] line
    cat >"$tmp/$1.toml" <<CONF
[server]
listen = "127.0.0.1:0"
data_dir = "$tmp/$1-data"
$3

[[upstream]]
name = "py"
protocol = "pypi"
url = "$2"
namespaces = []
default = true
attestations = "off"
CONF
}
config outside "http://$addr/simple" ""
config inside "http://127.0.0.1:9/simple" "offline = true"

step() { # $1: label, rest: bulwark arguments
    local label=$1; shift
    /usr/bin/time -f "$label: %e s wall, peak RSS %M KiB" -o "$tmp/time" "$BULWARK" "$@" >"$tmp/out" 2>/dev/null || true
    printf '%s  (%s)\n' "$(cat "$tmp/time")" "$(head -1 "$tmp/out")"
}
echo "projects: $PACKAGES"
step "sync" sync --config "$tmp/outside.toml" --progress none "$tmp/list.txt"
step "sync again" sync --config "$tmp/outside.toml" --progress none "$tmp/list.txt"
step "export" export --config "$tmp/outside.toml" --out "$tmp/bundle.tar"
echo "bundle: $(stat -c %s "$tmp/bundle.tar") bytes"
exec 3>&-
step "import" import --config "$tmp/inside.toml" --progress none "$tmp/bundle.tar"
step "re-import" import --config "$tmp/inside.toml" --progress none "$tmp/bundle.tar"
