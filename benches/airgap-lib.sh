# Sourced by benches/airgap-{go,pypi,npm}.sh: the temporary directory, an
# upstream started on port 0, the two configurations and the measured
# steps (sync, sync again, export, import, re-import). Uses the caller's
# `here` and `BULWARK`.

. "$here/benches/gofixture.sh"

# bench_tmp: a temporary directory $tmp and a list $pids of the processes
# started, both cleaned up when the script exits.
bench_tmp() {
    tmp=$(mktemp -d)
    pids=()
    trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
}

# start_upstream <command...>: runs the command, which prints `listening on
# ADDR` once bound and ends when its standard input closes (held open on
# fd 3 until airgap_steps imports); sets upstream_addr.
start_upstream() {
    start_fixture_process '^listening on' "$@"
    upstream_addr=$(sed -n 's/^listening on //p' "$tmp/fx.out" | head -1)
}

# airgap_config <side> <extra [server] line>: writes $tmp/<side>.toml with
# its data in $tmp/<side>-data and the [[upstream]] table read from
# standard input.
airgap_config() {
    { printf '[server]\nlisten = "127.0.0.1:0"\ndata_dir = "%s"\n%s\n\n[[upstream]]\n' "$tmp/$1-data" "$2"; cat; } >"$tmp/$1.toml"
}

# step <label> <bulwark arguments...>: runs bulwark, prints its wall time,
# peak RSS and first line of output.
step() {
    local label=$1; shift
    /usr/bin/time -f "$label: %e s wall, peak RSS %M KiB" -o "$tmp/time" "$BULWARK" "$@" >"$tmp/out" 2>/dev/null || true
    printf '%s  (%s)\n' "$(cat "$tmp/time")" "$(head -1 "$tmp/out")"
}

# airgap_steps: sync $tmp/list.txt twice through $tmp/outside.toml, export,
# stop the upstream, then import into $tmp/inside.toml twice.
airgap_steps() {
    step "sync" sync --config "$tmp/outside.toml" --progress none "$tmp/list.txt"
    step "sync again" sync --config "$tmp/outside.toml" --progress none "$tmp/list.txt"
    step "export" export --config "$tmp/outside.toml" --out "$tmp/bundle.tar"
    echo "bundle: $(stat -c %s "$tmp/bundle.tar") bytes"
    exec 3>&-
    step "import" import --config "$tmp/inside.toml" --progress none "$tmp/bundle.tar"
    step "re-import" import --config "$tmp/inside.toml" --progress none "$tmp/bundle.tar"
}
