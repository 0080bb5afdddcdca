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

. "$here/benches/airgap-lib.sh"
bench_tmp

mkdir -p "$tmp/packages"
for i in $(seq -w 1 "$PACKAGES"); do
    "$PY" "$here/tests/support/mkwheel.py" "$tmp/packages" "p$i" 1.0
    echo "pypi p$i 1.0" >>"$tmp/list.txt"
done

# pypiserver on port 0; it ends when its standard input closes.
start_upstream "$PY" "$here/tests/support/run_pypiserver.py" "$tmp/packages"

upstream() { # $1: url
    printf 'name = "py"\nprotocol = "pypi"\nurl = "%s"\nnamespaces = []\ndefault = true\n' "$1"
    printf 'attestations = "off"\n'
}
upstream "http://$upstream_addr/simple" | airgap_config outside ""
upstream "http://127.0.0.1:9/simple" | airgap_config inside "offline = true"
echo "projects: $PACKAGES"
airgap_steps
