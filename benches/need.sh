# Sourced by the benchmark scripts: what they need from Debian.

# need <what>:<package>...: installs with apt-get (as root) the Debian
# package of each missing command or path (`cmd:package`, `/path:package`),
# then fails naming anything still missing.
have() { case $1 in /*) [ -e "$1" ] ;; *) command -v "$1" >/dev/null ;; esac; }
need() {
    local missing=() want what
    for want in "$@"; do
        what=${want%%:*}
        have "$what" || missing+=("${want#*:}")
    done
    if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]}..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 || true
    fi
    for want in "$@"; do
        what=${want%%:*}
        have "$what" || { echo "needs $what (Debian: ${want#*:})" >&2; exit 2; }
    done
}
