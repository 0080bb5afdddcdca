#!/usr/bin/env bash
# Benchmark (not a test): npm through bulwark against npm straight at the
# registry it mirrors (the real verdaccio), in one run, on loopback.
#
#   benches/npm-install.sh
#
# - packument: wrk on the abbreviated packument (what `npm install` asks
#   for) of a package with VERSIONS versions: bulwark (a cache hit: the
#   checked packument written anew per request, tarball URLs rewritten)
#   against verdaccio answering the same request itself; each side's best
#   of ROUNDS rounds of SECONDS_PER_ROUND seconds, alternating.
# - install: `npm install` of a package with DEPS dependencies, each time
#   in a new project with a new npm cache: straight at verdaccio, then
#   through bulwark (its store warm after the first round), alternating,
#   ROUNDS rounds; each side's best wall time.
#
# Settings (environment): VERSIONS (30), DEPS (10), ROUNDS (3),
# SECONDS_PER_ROUND (5), CONNS (16), THREADS (2), BULWARK (release binary
# of $CARGO_TARGET_DIR), BULWARK_VERDACCIO_DIR (~/.cache/bulwark-tools/
# verdaccio, made by .ci/setup).
# Needs: node and npm, wrk, python3.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
VERSIONS="${VERSIONS:-30}"; DEPS="${DEPS:-10}"; ROUNDS="${ROUNDS:-3}"
SECONDS_PER_ROUND="${SECONDS_PER_ROUND:-5}"; CONNS="${CONNS:-16}"; THREADS="${THREADS:-2}"
BULWARK="${BULWARK:-${CARGO_TARGET_DIR:-$here/target}/release/bulwark}"
VD="${BULWARK_VERDACCIO_DIR:-$HOME/.cache/bulwark-tools/verdaccio}"
[ -x "$BULWARK" ] || { echo "no bulwark at $BULWARK (cargo build --release)" >&2; exit 1; }
[ -d "$VD/node_modules/verdaccio" ] || { echo "no verdaccio in $VD (run .ci/setup)" >&2; exit 1; }

tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

wait_line() { # file -> the address after "listening on "
  for _ in $(seq 1 200); do
    a="$(sed -n 's/^listening on //p' "$1" | head -1)"
    [ -n "$a" ] && { echo "$a"; return; }
    sleep 0.1
  done
  echo "no 'listening on' in $1" >&2; cat "$1" >&2; exit 1
}

# verdaccio, its storage in $tmp, anyone may publish.
cat > "$tmp/verdaccio.yaml" <<YAML
storage: $tmp/storage
auth: { htpasswd: { file: $tmp/htpasswd, max_users: -1 } }
uplinks: {}
packages: { '**': { access: \$all, publish: \$anonymous } }
log: { type: stdout, format: pretty, level: error }
YAML
mkfifo "$tmp/vin"
NODE_PATH="$VD/node_modules" node "$here/tests/support/run_verdaccio.js" "$tmp/verdaccio.yaml" \
  < "$tmp/vin" > "$tmp/verdaccio.out" 2>&1 &
pids+=($!)
exec 3> "$tmp/vin"
V="$(wait_line "$tmp/verdaccio.out")"

npmrc="$tmp/npmrc"
echo "//$V/:_authToken=bench" > "$npmrc"
export npm_config_userconfig="$npmrc" npm_config_update_notifier=false \
  npm_config_audit=false npm_config_fund=false HOME="$tmp/home"
mkdir -p "$HOME"
publish() { # name version deps-json
  local d="$tmp/pkg/$1-$2"; mkdir -p "$d"
  printf '{"name":"%s","version":"%s","main":"index.js","dependencies":%s}\n' "$1" "$2" "$3" > "$d/package.json"
  echo "module.exports = '$1@$2';" > "$d/index.js"
  (cd "$d" && npm publish --registry "http://$V/" --cache "$tmp/pub-cache" --silent >/dev/null)
}
echo "publishing $VERSIONS versions of bench-pkg and bench-app with $DEPS dependencies to verdaccio at $V"
for i in $(seq 0 $((VERSIONS - 1))); do publish bench-pkg "1.0.$i" '{}'; done
deps=""
for i in $(seq 0 $((DEPS - 1))); do
  publish "bench-dep-$i" 1.0.0 '{}'
  deps="$deps${deps:+,}\"bench-dep-$i\":\"^1.0.0\""
done
publish bench-app 1.0.0 "{$deps}"

cat > "$tmp/bulwark.toml" <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$tmp/data"

[[upstream]]
name = "verdaccio"
protocol = "npm"
url = "http://$V/"
namespaces = ["*"]
signatures = "off"
attestations = "off"
TOML
RUST_LOG=warn "$BULWARK" serve --config "$tmp/bulwark.toml" > "$tmp/bulwark.out" 2> "$tmp/bulwark.err" &
pids+=($!)
B="$(wait_line "$tmp/bulwark.out")"

accept='Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
rps() { wrk -t"$THREADS" -c"$CONNS" -d"${SECONDS_PER_ROUND}s" -H "$accept" "$1" | awk '/Requests\/sec/ {print $2}'; }
best() { python3 -c 'import sys; print(max(float(x) for x in sys.argv[1:]))' "$@"; }
curl -fsS -H "$accept" "http://$B/npm/bench-pkg" > /dev/null
v=(); b=()
for r in $(seq 1 "$ROUNDS"); do
  v+=("$(rps "http://$V/bench-pkg")"); b+=("$(rps "http://$B/npm/bench-pkg")")
done
vb="$(best "${v[@]}")"; bb="$(best "${b[@]}")"
echo "packument ($VERSIONS versions, abbreviated), req/s best of $ROUNDS: verdaccio $vb, bulwark $bb, ratio $(python3 -c "print(round($bb/$vb, 2))")"

install() { # registry -> wall seconds of a fresh install
  local d; d="$(mktemp -d "$tmp/proj.XXXX")"
  echo '{"name":"p","version":"1.0.0"}' > "$d/package.json"
  local t0 t1; t0="$(date +%s.%N)"
  (cd "$d" && npm install bench-app --registry "$1" --cache "$d/.cache" --silent >/dev/null)
  t1="$(date +%s.%N)"
  [ -f "$d/node_modules/bench-dep-0/index.js" ] || { echo "install through $1 failed" >&2; exit 1; }
  python3 -c "print(round($t1 - $t0, 3))"
}
v=(); b=()
for r in $(seq 1 "$ROUNDS"); do
  v+=("$(install "http://$V/")"); b+=("$(install "http://$B/npm/")")
done
low() { python3 -c 'import sys; print(min(float(x) for x in sys.argv[1:]))' "$@"; }
vi="$(low "${v[@]}")"; bi="$(low "${b[@]}")"
echo "npm install (1 + $DEPS packages, fresh npm cache), seconds best of $ROUNDS: verdaccio $vi, bulwark $bi (rounds: verdaccio ${v[*]}; bulwark ${b[*]}), ratio $(python3 -c "print(round($bi/$vi, 2))")"
