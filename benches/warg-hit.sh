#!/usr/bin/env bash
# Benchmark (not a test): a verified Warg content GET through bulwark
# against nginx serving the very same bytes as a static file, in one run,
# on loopback.
#
#   benches/warg-hit.sh
#
# Settings (environment): ROUNDS (3), SECONDS_PER_ROUND (5), CONNS (32),
# THREADS (2), SIZE (10485760: the content's size in bytes), LOGS (on),
# BULWARK (release binary of $CARGO_TARGET_DIR), BULWARK_WARG_BIN_DIR
# (where warg-server and warg are; default ~/.cache/bulwark-tools/bin).
#
# What it does:
#   1. starts the real warg-server 0.10 (memory storage, a fresh operator
#      key made with openssl, namespace `bench`) and publishes a SIZE-byte
#      WebAssembly component as bench:big@1.0.0 with the real `warg` CLI
#      (this waits for the server's next checkpoint, up to about 5 s);
#   2. starts bulwark with that registry as its Warg upstream (operator key
#      pinned) and downloads the package through it with a second `warg`
#      client: bulwark verifies the checkpoint, the package log and its
#      inclusion, then fetches the content, checks its digest and stores
#      it. The bytes the client got must be the published ones;
#   3. GETs the content URL bulwark hands clients
#      (/content/<upstream>/sha256-<hex>: the content GET of a Warg
#      download) once more; those bytes, checked to be the stored blob and
#      the published file, are what nginx serves at the same path;
#   4. wrk with THREADS threads and CONNS connections on that URL, rounds
#      alternating nginx, bulwark, nginx, bulwark, ...; each side's best of
#      ROUNDS rounds of SECONDS_PER_ROUND seconds, and each side's CPU time
#      per request over its rounds (benches/hits-lib.sh). Each bulwark GET is the
#      full hit path: the quarantine gate, the artifact index of the
#      upstream's epoch, the freshness check, the stored blob.
#
# Both servers log every request when LOGS=on (bulwark's `info` request
# line to a file, nginx's access_log to a file); LOGS=off turns both off.
# nginx: worker_processes auto, sendfile on, tcp_nopush on,
# keepalive_requests 1000000, as in benches/cache-hit.sh. bulwark: release
# build, default configuration except max_connections_per_peer = 4096.
#
# Needs (Debian): nginx (nginx-light), wrk, curl, bc, python3, openssl,
# and warg-server and warg 0.10 (`bash .ci/setup` installs them under
# ~/.cache/bulwark-tools), and a built bulwark (cargo build --release).
# nginx and wrk are installed with apt-get when missing and this runs as
# root. Talks only to loopback.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
SIZE=${SIZE:-10485760}
LOGS=${LOGS:-on}
target=${CARGO_TARGET_DIR:-$here/target}
BULWARK=${BULWARK:-$target/release/bulwark}
WARG_BIN=${BULWARK_WARG_BIN_DIR:-$HOME/.cache/bulwark-tools/bin}
[ -x "$BULWARK" ] || { echo "no bulwark binary at $BULWARK (cargo build --release)" >&2; exit 2; }
for b in warg-server warg; do
    [ -x "$WARG_BIN/$b" ] || { echo "no $b in $WARG_BIN (bash .ci/setup, or set BULWARK_WARG_BIN_DIR)" >&2; exit 2; }
done
. "$here/benches/hits-lib.sh"
need_nginx_wrk curl:curl bc:bc python3:python3 openssl:openssl sha256sum:coreutils

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    chmod -R u+w "$tmp" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# wait_line <file> <pid> <prefix>: the rest of the first line of <file>
# holding <prefix> (ANSI codes may precede it), once it is there.
wait_line() {
    local v
    until v=$(sed -n "s/.*$3//p" "$1" 2>/dev/null | head -n1) && [ -n "$v" ]; do
        kill -0 "$2" 2>/dev/null || { echo "process $2 ended; its output:" >&2; cat "$1" >&2; exit 1; }
        sleep 0.05
    done
    echo "$v"
}

# The operator key: ECDSA P-256. warg-server reads
# `ecdsa-p256:<base64 of the 32-byte scalar>`; bulwark pins
# `ecdsa-p256:<base64 of the compressed point>`.
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/operator.pem" 2>/dev/null
scalar=$(openssl ec -in "$tmp/operator.pem" -outform DER 2>/dev/null | tail -c +8 | head -c 32 | base64 -w0)
point=$(openssl ec -in "$tmp/operator.pem" -pubout -conv_form compressed -outform DER 2>/dev/null | tail -c 33 | base64 -w0)
printf 'ecdsa-p256:%s' "$scalar" >"$tmp/operator.key"

echo "starting warg-server..." >&2
mkdir -p "$tmp/warg-content"
env -u WARG_OPERATOR_KEY -u WARG_NAMESPACE -u WARG_CONTENT_BASE_URL -u WARG_AUTHORIZED_KEYS_FILE \
    NO_COLOR=1 "$WARG_BIN/warg-server" --listen 127.0.0.1:0 --content-dir "$tmp/warg-content" \
    --data-store memory --operator-key-file "$tmp/operator.key" --namespace bench \
    </dev/null >"$tmp/warg-server.out" 2>"$tmp/warg-server.err" &
pids+=($!)
ws_addr=$(wait_line "$tmp/warg-server.out" "$!" "listening on ")
ws_addr=${ws_addr%%[[:space:]]*}

# warg_client <home> <args...>: the warg CLI with its own HOME.
warg_client() {
    local home=$1
    shift
    mkdir -p "$home/work"
    (cd "$home/work" && env -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u http_proxy -u https_proxy -u all_proxy \
        HOME="$home" XDG_CONFIG_HOME="$home/config" XDG_CACHE_HOME="$home/cache" XDG_DATA_HOME="$home/data" \
        NO_PROXY=127.0.0.1,localhost RUST_LOG=warn "$WARG_BIN/warg" "$@" </dev/null)
}

# A valid WebAssembly component of SIZE bytes: the preamble and one custom
# section of random bytes.
python3 - "$SIZE" "$tmp/big.wasm" <<'EOF'
import os, sys
size, out = int(sys.argv[1]), sys.argv[2]
pre, name = b"\0asm\x0d\x00\x01\x00", b"bulwark-bench"
section = size - len(pre) - 1 - 5
filler = section - 1 - len(name)
assert filler >= 0, "SIZE too small"
length = bytes(((section >> (7 * i)) & 0x7F) | (0x80 if i < 4 else 0) for i in range(5))
with open(out, "wb") as f:
    f.write(pre + b"\x00" + length + bytes([len(name)]) + name + os.urandom(filler))
EOF
digest=$(sha256sum "$tmp/big.wasm" | cut -d' ' -f1)

echo "publishing bench:big@1.0.0 ($SIZE bytes) to warg-server..." >&2
publisher="$tmp/publisher"
warg_client "$publisher" config --registry "http://$ws_addr" --keyring-backend flat-file >/dev/null
warg_client "$publisher" key new >/dev/null
warg_client "$publisher" publish release --name bench:big --version 1.0.0 "$tmp/big.wasm" >/dev/null

data="$tmp/data"
cat >"$tmp/bulwark.toml" <<EOF
[server]
listen = "127.0.0.1:0"
data_dir = "$data"
log_format = "human"
max_connections_per_peer = 4096

[[upstream]]
name = "bench-up"
protocol = "warg"
url = "http://$ws_addr"
operator_key = "ecdsa-p256:$point"
namespaces = ["bench"]
default = true
EOF
if [ "$LOGS" = on ]; then rust_log=info; else rust_log=warn; fi
RUST_LOG=$rust_log "$BULWARK" serve --config "$tmp/bulwark.toml" >"$tmp/bulwark.out" 2>>"$tmp/bulwark.log" &
b_pid=$!
pids+=("$b_pid")
b_addr=$(wait_line "$tmp/bulwark.out" "$b_pid" "listening on ")

echo "downloading bench:big through bulwark (verifies and stores it)..." >&2
client="$tmp/client"
warg_client "$client" config --registry "http://$b_addr" --keyring-backend flat-file >/dev/null
warg_client "$client" download bench:big -o "$tmp/downloaded.wasm" >/dev/null
cmp -s "$tmp/downloaded.wasm" "$tmp/big.wasm" || { echo "the download through bulwark is not the published content" >&2; exit 1; }

# The content GET a Warg download makes, as bulwark hands it out.
p="/content/bench-up/sha256-$digest"
root="$tmp/www"
mkdir -p "$root$(dirname "$p")"
code=$(curl -sS -o "$root$p" -w '%{http_code}' "http://$b_addr$p")
[ "$code" = 200 ] || { echo "GET $p: status $code" >&2; cat "$root$p" >&2; exit 1; }
blob="$data/blobs/sha256/${digest:0:2}/$digest"
cmp -s "$root$p" "$tmp/big.wasm" || { echo "$p: not the published content" >&2; exit 1; }
cmp -s "$root$p" "$blob" || { echo "$p: not the stored blob $blob" >&2; exit 1; }
printf '  %s  %d bytes  blob %s...\n' "$p" "$(stat -c %s "$root$p")" "${digest:0:16}" >&2

start_nginx "$tmp" "$root" application/wasm
cmp -s <(curl -s "http://$ng_addr$p") "$root$p" || { echo "nginx serves other bytes for $p" >&2; exit 1; }


printf '\nWarg content GET: wrk -t%d -c%d, best of %d rounds of %d s, alternating nginx/bulwark, logs %s\n' \
    "$THREADS" "$CONNS" "$ROUNDS" "$SECONDS_PER_ROUND" "$LOGS"
compare_header
compare "Warg $((SIZE / 1048576)) MiB content" "$p" 0.9 "$ng_addr" "$ng_pid" "$b_addr" "$b_pid"
