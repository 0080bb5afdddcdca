# Sourced by the Go benchmark scripts: the Go fixture upstream
# (tests/gofixture/sumdbfixture: a GOPROXY and a checksum database built
# from Go's own golang.org/x/mod code). Uses the caller's `here`, `tmp` and
# `pids`.

# build_go_fixture: compiles it to $tmp/sumdbfixture.
build_go_fixture() {
    echo "building the Go fixture..." >&2
    (cd "$here" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOENV=off CGO_ENABLED=0 \
        GOCACHE="$tmp/gobuildcache" go build -o "$tmp/sumdbfixture" ./tests/gofixture/sumdbfixture)
}

# start_go_fixture <modules dir>: serves the modules under <modules dir>
# (example.com/x@v1.0.0/...); sets fx_addr, vkey (its checksum database's
# verifier key) and name (the database's name); it runs until the script
# exits (its standard input is a fifo held open on fd 3).
start_go_fixture() {
    start_fixture_process '^ready$' "$tmp/sumdbfixture" -modules "$1" -key "$tmp/sumdb.key"
    fx_addr=$(sed -n "s/^addr //p" "$tmp/fx.out")
    vkey=$(sed -n 's/^vkey //p' "$tmp/fx.out")
    name=$(sed -n 's/^name //p' "$tmp/fx.out")
}

# start_fixture_process <ready pattern> <command...>: runs the command with
# its standard input a fifo held open on fd 3 (it runs until the script
# exits or closes fd 3), its output in $tmp/fx.out and $tmp/fx.err, and
# waits for a line matching the pattern.
start_fixture_process() {
    local ready=$1; shift
    mkfifo "$tmp/fx.in"
    exec 3<>"$tmp/fx.in"
    "$@" <"$tmp/fx.in" >"$tmp/fx.out" 2>"$tmp/fx.err" &
    pids+=($!)
    until grep -q "$ready" "$tmp/fx.out" 2>/dev/null; do
        kill -0 "${pids[-1]}" 2>/dev/null || { echo "$1 did not start:"; cat "$tmp/fx.out" "$tmp/fx.err"; exit 1; } >&2
        sleep 0.05
    done
}
