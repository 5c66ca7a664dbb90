# Helpers shared by the benchmark scripts (sourced, not run). The caller
# sets PYTHON (a python3), HZ (getconf CLK_TCK) and QUIET_WAIT (seconds).
# shellcheck shell=bash

say() { printf '%s\n' "$*" >&2; }
die() { say "${0##*/}: $*"; exit 2; }

# Installs the Debian packages named, when there are any: as root with
# apt-get, else says what is missing (the caller checks what it needs).
install_missing() {
    (($#)) || return 0
    if ((EUID == 0)) && command -v apt-get >/dev/null; then
        say "installing $*"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
    else
        say "missing $* (run as root to install them)"
    fi
}

# A port free for both TCP and UDP on 127.0.0.1 (inetd's services file and
# the UDP peers use one number for both).
free_port() {
    "$PYTHON" -c '
import socket
for _ in range(100):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        u.close(); t.close()'
}

# CPU time the whole machine has spent busy so far, in jiffies (USER_HZ):
# user nice system irq softirq steal.
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# Waits (up to QUIET_WAIT seconds) until the machine is idle: less than a
# tenth of a CPU busy over half a second. Other work on a 2-core machine
# moves the results more than any difference between the tools.
wait_quiet() {
    local deadline=$((SECONDS + QUIET_WAIT)) b0 b1
    while :; do
        b0=$(busy_jiffies)
        sleep 0.5
        b1=$(busy_jiffies)
        ((b1 - b0 <= HZ / 20)) && return 0
        if ((SECONDS >= deadline)); then
            say "  machine still busy ($((b1 - b0)) jiffies in 0.5 s); measuring anyway"
            return 0
        fi
    done
}

# listening PROTO PORT: is a socket listening (tcp) or bound (udp) on
# 127.0.0.1:PORT? Reads /proc/net rather than connecting: a probe would be
# one more client.
listening() {
    local state=0A
    [[ $1 == udp ]] && state=07
    grep -q "$(printf ' 0100007F:%04X 00000000:0000 %s ' "$2" "$state")" "/proc/net/$1"
}

# start CMD... PORT: runs the command in the background (its own process
# group, through timeout: BOUND seconds, TIMEOUT unless set) and waits
# until it listens on PORT; its pid is in LAST. The caller sets WORK.
start() {
    local port=${*: -1} i
    timeout -k 5 "${BOUND:-$TIMEOUT}" "${@:1:$#-1}" </dev/null >/dev/null 2>>"$WORK/stderr" &
    LAST=$!
    for ((i = 0; i < 1000; i++)); do
        listening tcp "$port" && return 0
        kill -0 "$LAST" 2>/dev/null || break
        sleep 0.01
    done
    die "$1 did not listen on port $port: $(tail -n 3 "$WORK/stderr" | tr '\n' ' ')"
}

# stop PID: ends the process group of a job started by `start` (a
# listener and every child it started).
stop() {
    kill -TERM -- "-$1" 2>/dev/null || true
    sleep 0.2
    kill -KILL -- "-$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# make_source: SOURCE is SIZE random bytes in $SHM/source when /dev/shm has
# room, else /dev/zero. The caller sets SIZE and SHM.
make_source() {
    SOURCE=/dev/zero
    local avail
    avail=$(df --output=avail -B1 /dev/shm 2>/dev/null | tail -1) || avail=0
    if ((avail > SIZE + (256 << 20))); then
        SOURCE=$SHM/source
        head -c "$SIZE" /dev/urandom >"$SOURCE"
    fi
}
