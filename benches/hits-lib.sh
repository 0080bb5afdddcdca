# Sourced by benches/cache-hit.sh, warg-hit.sh and pypi-hit.sh: nginx
# serving the reference bytes, and the wrk rounds that compare bulwark with
# it on one URL. Uses THREADS, ROUNDS,
# SECONDS_PER_ROUND, PERF_OUT and PERF_ARGS of the caller.

. "$(dirname "${BASH_SOURCE[0]}")/need.sh"

# need_nginx_wrk <what>:<package>...: nginx, wrk and the others.
need_nginx_wrk() { need nginx:nginx-light wrk:wrk "$@"; }

# run_wrk <url> <conns> <seconds>: prints "req/s non2xx socket_errors requests"
run_wrk() {
    local out rps non2xx sock reqs
    out=$(wrk -t"$THREADS" -c"$2" -d"$3"s --timeout 10s "$1" 2>&1)
    rps=$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\)/\1/p' <<<"$out")
    non2xx=$(sed -n 's/^[[:space:]]*Non-2xx or 3xx responses:[[:space:]]*\([0-9]*\)/\1/p' <<<"$out")
    sock=$(sed -n 's/^[[:space:]]*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\)/\1+\2+\3+\4/p' <<<"$out")
    reqs=$(sed -n 's/^[[:space:]]*\([0-9]*\) requests in .*/\1/p' <<<"$out")
    echo "${rps:-0} ${non2xx:-0} $(( ${sock:-0} )) ${reqs:-0}"
}

max() { echo "if ($1 > $2) $1 else $2" | bc -l; }

# cpu_ticks <pid>: CPU time (user + system, clock ticks) of the process,
# all its threads, and its child processes (nginx's workers) so far.
cpu_ticks() {
    local t=0 p f
    for p in "$1" $(ps -o pid= --ppid "$1"); do
        read -r -a f <"/proc/$p/stat" 2>/dev/null || continue
        t=$((t + f[13] + f[14]))
    done
    echo "$t"
}

# compare <label> <path> <target> <nginx addr> <nginx pid> <bulwark addr>
# <bulwark pid>: ROUNDS rounds alternating nginx and bulwark on <path>;
# prints a row: each side's best req/s and their ratio, then each side's
# CPU time per request over all its rounds (whatever else runs on the
# machine, this is what one request costs the server) and nginx's CPU per
# request divided by bulwark's (1: as cheap as nginx).
compare() {
    local label=$1 p=$2 want=$3 ng=$4 ng_pid=$5 b=$6 b_pid=$7
    local best_n=0 best_b=0 errs=0 cpu_n=0 cpu_b=0 req_n=0 req_b=0 r t0 n b_rps e1 s1 q1 e2 s2 q2 perf_pid
    for r in $(seq 1 "$ROUNDS"); do
        t0=$(cpu_ticks "$ng_pid")
        read -r n e1 s1 q1 <<<"$(run_wrk "http://$ng$p" "$CONNS" "$SECONDS_PER_ROUND")"
        cpu_n=$((cpu_n + $(cpu_ticks "$ng_pid") - t0)); req_n=$((req_n + q1))
        if [ -n "${PERF_OUT:-}" ]; then
            perf record -q -e cpu-clock ${PERF_ARGS:--g} -p "$b_pid" -o "$PERF_OUT.${label%% *}.$r" 2>/dev/null &
            perf_pid=$!
        fi
        t0=$(cpu_ticks "$b_pid")
        read -r b_rps e2 s2 q2 <<<"$(run_wrk "http://$b$p" "$CONNS" "$SECONDS_PER_ROUND")"
        cpu_b=$((cpu_b + $(cpu_ticks "$b_pid") - t0)); req_b=$((req_b + q2))
        if [ -n "${PERF_OUT:-}" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
        best_n=$(max "$best_n" "$n"); best_b=$(max "$best_b" "$b_rps")
        errs=$((errs + e1 + s1 + e2 + s2))
        echo "  round $r $label: nginx $n, bulwark $b_rps req/s" >&2
    done
    local hz us_n us_b
    hz=$(getconf CLK_TCK)
    us_n=$(echo "$cpu_n * 1000000 / $hz / ($req_n + (0 == $req_n))" | bc -l)
    us_b=$(echo "$cpu_b * 1000000 / $hz / ($req_b + (0 == $req_b))" | bc -l)
    printf '%-22s %14.0f %14.0f %8.2f %8s %10.1f %10.1f %8.2f%s\n' "$label" "$best_b" "$best_n" \
        "$(echo "$best_b / $best_n" | bc -l)" ">= $want" "$us_b" "$us_n" \
        "$(echo "$us_n / ($us_b + (0 == $us_b))" | bc -l)" \
        "$( [ "$errs" -gt 0 ] && echo "  ($errs errors)" )"
}

compare_header() {
    printf '%-22s %14s %14s %8s %8s %10s %10s %8s\n' "cache hit" "bulwark req/s" "nginx req/s" \
        "ratio" "target" "bw µs/req" "ng µs/req" "cpu ratio"
}

# start_nginx <tmp> <root> <default type> [types block]: Debian's nginx
# serving <root> as static files (worker_processes auto, sendfile on,
# tcp_nopush on, keepalive_requests 1000000, access log per LOGS) on a free
# loopback port; sets ng_addr and ng_pid and appends the pid to pids.
start_nginx() {
    local tmp=$1 root=$2 default_type=$3 types=${4:-} port access
    # nginx's workers run as an unprivileged user: let them read the files.
    chmod a+rx "$tmp"; chmod -R a+rX "$root"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    if [ "${LOGS:-on}" = on ]; then access="access_log $tmp/nginx-access.log;"; else access="access_log off;"; fi
    cat >"$tmp/nginx.conf" <<NGINX
daemon off;
worker_processes auto;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 8192; }
http {
    $types
    default_type $default_type;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    $access
    client_body_temp_path $tmp/nginx-body;
    proxy_temp_path $tmp/nginx-proxy;
    fastcgi_temp_path $tmp/nginx-fastcgi;
    uwsgi_temp_path $tmp/nginx-uwsgi;
    scgi_temp_path $tmp/nginx-scgi;
    server {
        listen 127.0.0.1:$port;
        root $root;
    }
}
NGINX
    nginx -c "$tmp/nginx.conf" -p "$tmp" 2>>"$tmp/nginx-error.log" &
    ng_pid=$!
    pids+=("$ng_pid")
    ng_addr="127.0.0.1:$port"
    until curl -s -o /dev/null "http://$ng_addr/"; do sleep 0.05; done
}
