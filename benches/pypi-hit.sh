#!/usr/bin/env bash
# Benchmark (not a test): a verified PyPI wheel served from bulwark's
# store against nginx serving the very same bytes as a static file, in one
# run, on loopback.
#
#   benches/pypi-hit.sh
#
# Settings (environment): ROUNDS (3), SECONDS_PER_ROUND (5), CONNS (32),
# THREADS (2), SIZE (1048576: the wheel's payload in bytes), LOGS (on),
# BULWARK (release binary of $CARGO_TARGET_DIR), BULWARK_PY_DIR (the
# Python environment with pypiserver that `bash .ci/setup` makes; default
# ~/.cache/bulwark-tools/py).
#
# What it does: writes a wheel with SIZE random bytes, serves it with the
# real pypiserver (tests/support/run_pypiserver.py), starts bulwark with
# that index as its `pypi` upstream (attestations = "off": the index's
# sha256; the hit path is the same lookup, gate and stored blob under every
# policy, plus one index lookup for the provenance under the others),
# fetches the wheel once through bulwark (checked, stored, indexed; the
# bytes must be the wheel and the stored blob), then compares wrk on
# /pypi/files/bench/<wheel> with nginx serving those bytes at the same path
# (benches/hits-lib.sh: rounds alternating nginx and bulwark, each side's
# best req/s, each side's CPU time per request).
#
# Needs (Debian): nginx (nginx-light), wrk (both installed with apt-get when
# missing and this runs as root), curl, bc, python3, sha256sum; the Python
# environment of .ci/setup; a built bulwark (cargo build --release). Talks
# only to loopback.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
SIZE=${SIZE:-1048576}
LOGS=${LOGS:-on}
target=${CARGO_TARGET_DIR:-$here/target}
BULWARK=${BULWARK:-$target/release/bulwark}
PY=${BULWARK_PY_DIR:-$HOME/.cache/bulwark-tools/py}
[ -x "$BULWARK" ] || { echo "no bulwark binary at $BULWARK (cargo build --release)" >&2; exit 2; }
[ -x "$PY/bin/python" ] || { echo "no Python environment at $PY (bash .ci/setup)" >&2; exit 2; }
. "$here/benches/hits-lib.sh"
need_nginx_wrk curl:curl bc:bc python3:python3 sha256sum:coreutils

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

wheel=bench-1.0-py3-none-any.whl
mkdir -p "$tmp/packages"
"$PY/bin/python" - "$tmp/packages/$wheel" "$SIZE" <<'PY'
import os, sys, zipfile
path, size = sys.argv[1], int(sys.argv[2])
with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
    z.writestr("bench/__init__.py", "")
    z.writestr("bench/data.bin", os.urandom(size))
    z.writestr("bench-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: bench\nVersion: 1.0\n")
    z.writestr("bench-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("bench-1.0.dist-info/RECORD", "")
PY

mkfifo "$tmp/py.in"
exec 4<>"$tmp/py.in"
"$PY/bin/python" "$here/tests/support/run_pypiserver.py" "$tmp/packages" <"$tmp/py.in" >"$tmp/py.out" 2>"$tmp/py.err" &
pids+=($!)
until grep -q '^listening on ' "$tmp/py.out" 2>/dev/null; do sleep 0.05; done
py_addr=$(sed -n 's/^listening on //p' "$tmp/py.out")

data="$tmp/data"
cat >"$tmp/bulwark.toml" <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$data"
max_connections_per_peer = 4096

[[upstream]]
name = "bench-py"
protocol = "pypi"
url = "http://$py_addr/simple"
namespaces = []
default = true
attestations = "off"
TOML
if [ "$LOGS" = on ]; then rust_log=info; else rust_log=warn; fi
RUST_LOG=$rust_log "$BULWARK" serve --config "$tmp/bulwark.toml" >"$tmp/bulwark.out" 2>>"$tmp/bulwark.log" &
b_pid=$!
pids+=("$b_pid")
until grep -q '^listening on ' "$tmp/bulwark.out" 2>/dev/null; do
    kill -0 "$b_pid" 2>/dev/null || { tail "$tmp/bulwark.log" >&2; exit 1; }
    sleep 0.05
done
b_addr=$(sed -n 's/^listening on //p' "$tmp/bulwark.out")

p="/pypi/files/bench/$wheel"
root="$tmp/www"
mkdir -p "$root$(dirname "$p")"
code=$(curl -sS -o "$root$p" -w '%{http_code}' "http://$b_addr$p")
[ "$code" = 200 ] || { echo "GET $p: status $code" >&2; cat "$root$p" >&2; exit 1; }
sum=$(sha256sum "$root$p" | cut -d' ' -f1)
cmp -s "$root$p" "$tmp/packages/$wheel" || { echo "$p: not the wheel" >&2; exit 1; }
cmp -s "$root$p" "$data/blobs/sha256/${sum:0:2}/$sum" || { echo "$p: not the stored blob" >&2; exit 1; }
printf '  %s  %d bytes  blob %s...\n' "$p" "$(stat -c %s "$root$p")" "${sum:0:16}" >&2

start_nginx "$tmp" "$root" application/octet-stream
cmp -s <(curl -s "http://$ng_addr$p") "$root$p" || { echo "nginx serves other bytes for $p" >&2; exit 1; }

printf '\nPyPI wheel: wrk -t%d -c%d, best of %d rounds of %d s, alternating nginx/bulwark, logs %s\n' \
    "$THREADS" "$CONNS" "$ROUNDS" "$SECONDS_PER_ROUND" "$LOGS"
compare_header
compare "$((SIZE / 1024)) KiB wheel" "$p" 0.9 "$ng_addr" "$ng_pid" "$b_addr" "$b_pid"
