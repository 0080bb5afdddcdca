#!/usr/bin/env bash
# Benchmark (not a test): the npm air gap at scale. PACKAGES packages of
# one version each, published to the real verdaccio
# (tests/support/run_verdaccio.js) with the registry's publish request
# (what `npm publish` sends); an outside bulwark `sync`s them from a list,
# syncs again (all "already there"), `export`s; an offline inside
# `import`s and re-imports. Prints wall time and peak RSS (GNU time) of
# each step.
#
#   benches/airgap-npm.sh                    # 500 packages, release bulwark
#   PACKAGES=200 BULWARK=target/debug/bulwark benches/airgap-npm.sh
#
# Needs: node, verdaccio from .ci/setup in ~/.cache/bulwark-tools/verdaccio
# (or $BULWARK_VERDACCIO_DIR), python3, /usr/bin/time, a built bulwark.
# Loopback only.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PACKAGES=${PACKAGES:-500}
target=${CARGO_TARGET_DIR:-$here/target}
BULWARK=${BULWARK:-$target/release/bulwark}
VERDACCIO=${BULWARK_VERDACCIO_DIR:-$HOME/.cache/bulwark-tools/verdaccio}
[ -x "$BULWARK" ] || { echo "no bulwark binary at $BULWARK (cargo build --release)" >&2; exit 2; }
[ -d "$VERDACCIO/node_modules/verdaccio" ] || { echo "no verdaccio in $VERDACCIO (run .ci/setup)" >&2; exit 2; }

. "$here/benches/airgap-lib.sh"
bench_tmp

cat >"$tmp/verdaccio.yaml" <<CONF
storage: $tmp/storage
auth:
  htpasswd:
    file: $tmp/htpasswd
    max_users: -1
uplinks: {}
packages:
  '**':
    access: \$all
    publish: \$anonymous
log: { type: stdout, format: pretty, level: error }
CONF
export NODE_PATH="$VERDACCIO/node_modules"
start_upstream node "$here/tests/support/run_verdaccio.js" "$tmp/verdaccio.yaml"
addr=$upstream_addr

# Publish pNNNN@1.0.0 (~20 KiB of random text each) as `npm publish` does:
# PUT /<name> with the version's manifest and the tarball attached.
python3 - "$addr" "$PACKAGES" "$tmp" <<'PY'
import base64, hashlib, io, json, os, sys, tarfile, urllib.request
addr, n, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
width = len(str(n))
with open(f"{tmp}/list.txt", "w") as listing:
    for i in range(1, n + 1):
        name = f"p{i:0{width}d}"
        manifest = {"name": name, "version": "1.0.0", "main": "index.js", "license": "MIT"}
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for path, data in [("package/package.json", json.dumps(manifest).encode()),
                               ("package/index.js", base64.b64encode(os.urandom(15000)))]:
                info = tarfile.TarInfo(path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        tgz = buf.getvalue()
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
        file = f"{name}-1.0.0.tgz"
        version = dict(manifest, dist={"integrity": integrity, "shasum": hashlib.sha1(tgz).hexdigest(),
                                       "tarball": f"http://{addr}/{name}/-/{file}"})
        body = {"_id": name, "name": name, "dist-tags": {"latest": "1.0.0"},
                "versions": {"1.0.0": version},
                "_attachments": {file: {"content_type": "application/octet-stream",
                                        "data": base64.b64encode(tgz).decode(), "length": len(tgz)}}}
        req = urllib.request.Request(f"http://{addr}/{name}", data=json.dumps(body).encode(), method="PUT",
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req).read()
        listing.write(f"npm {name} 1.0.0\n")
PY

upstream() { # $1: url
    printf 'name = "reg"\nprotocol = "npm"\nurl = "%s"\nnamespaces = ["*"]\n' "$1"
    printf 'signatures = "off"\nattestations = "off"\n'
}
upstream "http://$addr/" | airgap_config outside ""
upstream "http://127.0.0.1:9/" | airgap_config inside "offline = true"
echo "packages: $PACKAGES"
airgap_steps
