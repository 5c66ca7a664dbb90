#!/usr/bin/env bash
# Servers under load on loopback: netsmith serve against inetd, xinetd,
# socat, ncat, Python (asyncio and threads) and the canonical tokio echo
# server, each driven by the same load generator: `netsmith bench`, and for
# echo, stream and connect also bench/plainload, a second generator that
# shares nothing with netsmith (std blocking sockets, a writer and a reader
# thread per connection), so that no figure depends on who measures.
#
#   bench/serve.sh                # REPS=3, 4 s per run
#   REPS=5 DURATION=5 WORKLOADS="echo udp" PEERS="netsmith tokio" bench/serve.sh
#
# Workloads (WORKLOADS, in this order):
#   echo     bench echo -c 50 -s 64: 50 connections, 64-byte round trips
#   stream   bench stream -P 1: one connection, bulk both ways, echoed bytes
#            checked; iperf3 one-way (the ceiling) and --bidir for scale
#   connect  bench connect -c 10 against a daytime server: connections/s
#   udp      bench udp -c 16 -s 64 -w 1s: 16 clients, one datagram in flight
#            each
#   idle     IDLE_CONNS (10,000) idle echo connections held open; the
#            server's peak RSS (VmHWM) is the result
#   echo-plain, stream-plain, connect-plain
#            the same servers and loads driven by bench/plainload: 50
#            connections of 64-byte round trips; one connection of 1 MiB
#            writes with every echoed byte checked; 10 threads connecting,
#            reading to EOF, closing
#
# One run: a fresh server on a free port of 127.0.0.1 (bounded by
# `timeout`), the machine idle, then the generator (bounded by `timeout`,
# timed by /usr/bin/time) for DURATION seconds; the server's CPU time
# (utime+stime of it and its reaped children, /proc/PID/stat) is read just
# before and just after. Then the server is stopped (SIGTERM, then SIGKILL to
# its process group). Peers run round-robin within each repetition, so drift
# of the machine spreads over all of them. A peer that fails to start, or
# whose run fails (deadlock, no replies, generator error), is recorded as
# failed with the reason, and the rest goes on.
#
# Raw runs (the generator's JSON objects included) go to
# bench/results/serve.json; bench/serve_report.py reads each result and
# writes the tables and the JSON. MB is 10^6 bytes.

set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers

REPS=${REPS:-3}
DURATION=${DURATION:-4}
WORKLOADS=${WORKLOADS:-"echo echo-plain stream stream-plain connect connect-plain udp idle"}
PEERS=${PEERS:-} # empty: every peer of each workload
GEN_THREADS=${GEN_THREADS:-} # empty: the generator's default (one per core)
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_GOAL_MB=${IDLE_GOAL_MB:-64}
TIMEOUT=${TIMEOUT:-$((DURATION + 60))}
QUIET_WAIT=${QUIET_WAIT:-30}
MAX_OTHER=${MAX_OTHER:-0.5}
ATTEMPTS=${ATTEMPTS:-2}

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
NETSMITH=$ROOT/target/release/netsmith
RESULTS=$BENCH/results
TOKIO_ECHO=$RESULTS/target/release/tokio-echo
PLAINLOAD=$RESULTS/target/release/plainload
JSON=$RESULTS/serve.json
INETD=/usr/sbin/inetutils-inetd

# The peers of each workload, in table order; netsmith first (the baseline).
declare -A WORKLOAD_PEERS=(
    [echo]="netsmith inetd xinetd socat ncat asyncio threaded tokio"
    [stream]="netsmith inetd xinetd socat ncat asyncio threaded tokio iperf3 iperf3-bidir"
    [connect]="netsmith inetd xinetd threaded tokio"
    [udp]="netsmith inetd xinetd asyncio tokio"
    [idle]="netsmith tokio"
    [echo-plain]="netsmith inetd xinetd socat ncat asyncio threaded tokio"
    [stream-plain]="netsmith inetd xinetd socat ncat asyncio threaded tokio"
    [connect-plain]="netsmith inetd xinetd threaded tokio"
)

# ---------------------------------------------------------------- the peers
# <peer>_server WORKLOAD PORT DIR sets CMD to the command line of a server
# on 127.0.0.1:PORT for WORKLOAD (echo, stream and idle: TCP echo; connect:
# TCP daytime; udp: UDP echo). DIR is a private directory for config files.

netsmith_server() {
    case $1 in
        echo | stream | idle) CMD=("$NETSMITH" serve "echo=$2" --tcp) ;;
        connect) CMD=("$NETSMITH" serve "daytime=$2" --tcp) ;;
        # all load comes from 127.0.0.1: no per-source rate limit
        udp) CMD=("$NETSMITH" serve "echo=$2" --udp --udp-rate 0) ;;
    esac
}

# inetutils-inetd's internal services. Its configuration names services,
# not ports, so it runs in a private mount namespace where /etc/services is
# ours, naming PORT. Without -d it daemonizes (its own session); with -d it
# would write a debug line per connection and per datagram, a cost no
# deployed inetd pays. --rate lifts its limit of invocations per minute.
inetd_server() {
    local svc=echo line
    case $1 in
        echo | stream) line="127.0.0.1:echo stream tcp nowait root internal" ;;
        connect) svc=daytime line="127.0.0.1:daytime stream tcp nowait root internal" ;;
        udp) line="127.0.0.1:echo dgram udp wait root internal" ;;
    esac
    printf '%s\t%s/tcp\n%s\t%s/udp\n' "$svc" "$2" "$svc" "$2" >"$3/services"
    printf '%s\n' "$line" >"$3/inetd.conf"
    # shellcheck disable=SC2016 # expanded by that sh
    CMD=(env TZ=UTC unshare -m sh -c 'mount --bind "$1" /etc/services && exec "$2" --rate=100000000 --pidfile="$3" "$4"'
        sh "$3/services" "$INETD" "$3/inetd.pid" "$3/inetd.conf")
}

# xinetd's internal services: it takes `port =` (for an UNLISTED service)
# and -dontfork keeps it in the foreground. cps and instances lifted:
# its defaults (50 connections/s, then 10 s off) would stop any benchmark.
xinetd_server() {
    local id=echo-stream type=stream proto=tcp wait=no name=echo
    case $1 in
        connect) id=daytime-stream name=daytime ;;
        udp) id=echo-dgram type=dgram proto=udp wait=yes ;;
    esac
    cat >"$3/xinetd.conf" <<EOF
defaults
{
	instances = UNLIMITED
	per_source = UNLIMITED
	cps = 1000000 1
}
service $name
{
	type = INTERNAL UNLISTED
	id = $id
	socket_type = $type
	protocol = $proto
	wait = $wait
	user = root
	bind = 127.0.0.1
	port = $2
	flags = REUSE
}
EOF
    CMD=(env TZ=UTC "$XINETD" -dontfork -stayalive -f "$3/xinetd.conf" -pidfile "$3/xinetd.pid" -filelog "$3/xinetd.log")
}

# A process per connection, echoing through a pipe to itself.
socat_server() { CMD=(socat "TCP-LISTEN:$2,fork,reuseaddr,bind=127.0.0.1" PIPE); }

# A cat per connection (ncat's own docs' echo server).
ncat_server() { CMD=(ncat -l 127.0.0.1 "$2" -k --exec /bin/cat); }

asyncio_server() {
    case $1 in
        udp) CMD=("$PYTHON" "$BENCH/servers/asyncio_echo.py" "$2" --udp) ;;
        *) CMD=("$PYTHON" "$BENCH/servers/asyncio_echo.py" "$2") ;;
    esac
}

threaded_server() {
    case $1 in
        connect) CMD=("$PYTHON" "$BENCH/servers/threaded_echo.py" "$2" --daytime) ;;
        *) CMD=("$PYTHON" "$BENCH/servers/threaded_echo.py" "$2") ;;
    esac
}

tokio_server() {
    case $1 in
        connect) CMD=("$TOKIO_ECHO" "$2" --daytime) ;;
        udp) CMD=("$TOKIO_ECHO" "$2" --udp) ;;
        *) CMD=("$TOKIO_ECHO" "$2") ;;
    esac
}

# iperf3's server for one test; its client is the generator (gen_cmd).
iperf3_server() { CMD=(iperf3 -s -B 127.0.0.1 -p "$2"); }
iperf3-bidir_server() { iperf3_server "$@"; }

# gen_cmd WORKLOAD PEER PORT sets CMD to the load generator's command line.
gen_cmd() {
    local target=127.0.0.1:$3 common=(-d "${DURATION}s" --json --allow-errors)
    [[ -z $GEN_THREADS ]] || common+=(--threads "$GEN_THREADS")
    case $1 in
        echo-plain) CMD=("$PLAINLOAD" echo "$target" -c 50 -s 64 -d "$DURATION") && return ;;
        stream-plain) CMD=("$PLAINLOAD" stream "$target" -d "$DURATION") && return ;;
        connect-plain) CMD=("$PLAINLOAD" connect "$target" -c 10 -d "$DURATION") && return ;;
    esac
    case $2 in
        iperf3) CMD=(iperf3 -c 127.0.0.1 -p "$3" -t "$DURATION" -J) ;;
        iperf3-bidir) CMD=(iperf3 -c 127.0.0.1 -p "$3" -t "$DURATION" -J --bidir) ;;
        *) case $1 in
            echo) CMD=("$NETSMITH" bench echo "$target" -c 50 -s 64 "${common[@]}") ;;
            stream) CMD=("$NETSMITH" bench stream "$target" -P 1 "${common[@]}") ;;
            connect) CMD=("$NETSMITH" bench connect "$target" -c 10 "${common[@]}") ;;
            # -w 1s: a lost datagram stalls its client for -w, and one still
            # unanswered when the run ends is not counted: with the default
            # 5 s, losses would hide as a low rate with no errors
            udp) CMD=("$NETSMITH" bench udp "$target" -c 16 -s 64 -w 1s "${common[@]}") ;;
        esac ;;
    esac
}

# Which protocol the server of WORKLOAD listens on.
proto_of() { if [[ $1 == udp ]]; then echo udp; else echo tcp; fi; }

# ---------------------------------------------------------------- set-up

declare -A SKIP=() # peer -> why it cannot run here

# xinetd conflicts with inetutils-inetd in Debian (installing one removes
# the other), so it is never installed: as root, its package is downloaded
# with apt-get and unpacked under bench/results/xinetd.
find_xinetd() {
    XINETD=$(command -v xinetd || true)
    [[ -z $XINETD ]] || return 0
    local dir=$RESULTS/xinetd
    XINETD=$dir/root/usr/sbin/xinetd
    if [[ ! -x $XINETD ]] && ((EUID == 0)) && command -v apt-get >/dev/null; then
        say "unpacking xinetd under ${dir#"$ROOT"/} (not installed: it would remove inetutils-inetd)"
        mkdir -p "$dir"
        (cd "$dir" && rm -f xinetd_*.deb && apt-get download xinetd >&2 2>/dev/null &&
            dpkg-deb -x xinetd_*.deb root) || true
    fi
    if [[ ! -x $XINETD ]]; then
        SKIP[xinetd]="xinetd not available (as root the script unpacks its Debian package)"
    elif ldd "$XINETD" | grep -q 'not found'; then
        SKIP[xinetd]="xinetd's libraries missing: $(ldd "$XINETD" | awk '/not found/ { printf "%s ", $1 }')"
    fi
}

# Installs what is missing (as root, with apt-get), notes the peers that
# still cannot run, and builds netsmith and tokio-echo.
prepare() {
    local missing=() cmd pkg
    [[ -x /usr/bin/time ]] || missing+=(time)
    [[ -x /usr/bin/python3 ]] || command -v python3 >/dev/null || missing+=(python3)
    command -v ss >/dev/null || missing+=(iproute2)
    [[ -x $INETD ]] || missing+=(inetutils-inetd)
    for cmd in socat ncat iperf3; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    install_missing ${missing[@]+"${missing[@]}"}
    [[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (Debian package: time)"
    command -v ss >/dev/null || die "ss is needed (Debian package: iproute2)"
    # The system's python: no version manager's shim in the way.
    PYTHON=$(command -v /usr/bin/python3 || command -v python3) || die "python3 is needed"
    for pkg in socat ncat iperf3; do
        command -v "$pkg" >/dev/null || SKIP[$pkg]="$pkg not found"
    done
    [[ -z ${SKIP[iperf3]:-} ]] || SKIP[iperf3-bidir]=${SKIP[iperf3]}
    if [[ ! -x $INETD ]]; then
        SKIP[inetd]="$INETD not found (Debian package: inetutils-inetd)"
    elif ((EUID != 0)) || ! command -v unshare >/dev/null; then
        SKIP[inetd]="needs root and unshare (a private /etc/services in a mount namespace)"
    fi
    find_xinetd
    ((EUID == 0)) || SKIP[xinetd]="needs root (its services run as user root)"
    command -v cargo >/dev/null || die "cargo is needed to build netsmith and bench/tokio-echo"
    say "building netsmith, bench/tokio-echo and bench/plainload (release)"
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" >&2
    cargo build --release --quiet --manifest-path "$BENCH/tokio-echo/Cargo.toml" \
        --target-dir "$RESULTS/target" >&2
    cargo build --release --quiet --manifest-path "$BENCH/plainload/Cargo.toml" \
        --target-dir "$RESULTS/target" >&2
    [[ -x $PLAINLOAD ]] || die "bench/plainload did not build"
    [[ -x $NETSMITH ]] || die "no $NETSMITH"
    [[ -x $TOKIO_ECHO ]] || SKIP[tokio]="tokio-echo did not build"
}

# Stops every server process group still alive (on any exit).
cleanup() {
    local g
    if [[ -s ${WORK:-/nonexistent}/live ]]; then
        while read -r g; do kill -KILL -- "-$g" 2>/dev/null || true; done <"$WORK/live"
    fi
    rm -rf "${WORK:?}"
}

# ---------------------------------------------------------------- helpers
# The process that holds the socket on 127.0.0.1:PORT.
pid_on() {
    ss -Hlnp -"${1:0:1}" "sport = :$2" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# CPU seconds of PID and its reaped children so far (utime stime cutime
# cstime), in jiffies.
proc_jiffies() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    # fields after "pid (comm) ": state is $1, utime $12 ... cstime $15
    awk '{ print $12 + $13 + $14 + $15 }' <<<"${stat##*) }"
}

one_line() { head -c "${2:-300}" "$1" 2>/dev/null | tr '\n\t' '  ' | sed 's/  */ /g; s/ $//'; }

# start_server WORKLOAD PEER PORT RUN: starts the server, waits until it
# listens, and sets SPID (its background job), SERVER_PID and SERVER_PGID.
# Returns 1 (with ERROR set) if it does not come up within 10 s.
start_server() {
    local workload=$1 peer=$2 port=$3 run=$4 proto i
    proto=$(proto_of "$workload")
    mkdir -p "$run.d"
    # a -plain workload runs the same server as the workload it names
    "${peer}_server" "${workload%-plain}" "$port" "$run.d"
    printf '%s\n' "${CMD[*]}" >"$run.srv.cmd"
    # timeout puts itself and the server in a process group of their own.
    timeout -k 5 "$TIMEOUT" "${CMD[@]}" </dev/null >"$run.srv.out" 2>"$run.srv.err" &
    SPID=$!
    echo "$SPID" >>"$WORK/live"
    SERVER_PID='' SERVER_PGID=''
    for ((i = 0; i < 1000; i++)); do
        if listening "$proto" "$port"; then
            SERVER_PID=$(pid_on "$proto" "$port")
            [[ -n $SERVER_PID ]] && break
        fi
        # inetd daemonizes: its job ends at once; any other job that ended
        # has failed.
        if [[ $peer != inetd ]] && ! kill -0 "$SPID" 2>/dev/null; then
            break
        fi
        sleep 0.01
    done
    if [[ -z $SERVER_PID ]]; then
        ERROR="server not listening on $proto port $port: $(one_line "$run.srv.err")"
        stop_server
        return 1
    fi
    # fields after "pid (comm) ": state, ppid, pgrp
    SERVER_PGID=$(sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $3 }')
    [[ $SERVER_PGID == "$SPID" ]] || echo "$SERVER_PGID" >>"$WORK/live"
}

# Is PID running (not gone, not a zombie nobody reaps)?
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ ${stat##*) } != Z* ]]
}

# Stops the server: SIGTERM (netsmith then prints its totals), up to 6 s
# for it to end, then SIGKILL to whatever is left of its process group
# (socat's, ncat's and inetd's children).
stop_server() {
    local i g
    if [[ -n ${SERVER_PID:-} ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for ((i = 0; i < 600; i++)); do
            alive "$SERVER_PID" || break
            sleep 0.01
        done
    fi
    # timeout ends with its server: give it a moment, so that only
    # leftovers get the SIGKILL
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.01
    done
    for g in "$SPID" ${SERVER_PGID:+"$SERVER_PGID"}; do
        [[ $g == "$MY_PGID" ]] || kill -KILL -- "-$g" 2>/dev/null || true
        sed -i "/^$g\$/d" "$WORK/live"
    done
    wait "$SPID" 2>/dev/null || true
    SERVER_PID='' SERVER_PGID=''
}

# ---------------------------------------------------------------- one run
# measure WORKLOAD PEER REP ATTEMPT: one run. Prints one tab-separated line:
# workload peer rep attempt ok disturbed value requests sent_mbps recv_mbps
# p50_ms p99_ms errors srv_cpu gen_user gen_sys other_cpu seconds raw error.
# Returns 3 if other processes kept more than MAX_OTHER CPUs busy on average
# meanwhile (a disturbed run, worth repeating).
measure() {
    local workload=$1 peer=$2 rep=$3 attempt=$4 run port rc=0 t0 t1 b0 b1 s0 s1 secs
    local ok value req sent recv p50 p99 errors error srv gu gs other disturbed=false
    run=$WORK/$workload.$peer.$rep.$attempt
    port=$(free_port)
    ERROR=-
    if ! start_server "$workload" "$peer" "$port" "$run"; then
        say "  $workload $peer #$rep: FAILED: $ERROR"
        printf '%s\t' "$workload" "$peer" "$rep" "$attempt" false false 0 0 0 0 nan nan - nan nan nan nan 0 "$run.json"
        printf '%s\n' "$ERROR"
        return 0
    fi
    gen_cmd "$workload" "$peer" "$port"
    printf '%s\n' "${CMD[*]}" >"$run.gen.cmd"
    wait_quiet
    b0=$(busy_jiffies)
    s0=$(proc_jiffies "$SERVER_PID")
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S' -o "$run.gen.cpu" timeout -k 5 "$TIMEOUT" "${CMD[@]}" \
        </dev/null >"$run.json" 2>"$run.gen.err" || rc=$?
    t1=$EPOCHREALTIME
    # forked servers (inetd, xinetd, socat, ncat): let the children of the
    # last connections end and be reaped, so their CPU is counted
    sleep 0.2
    s1=$(proc_jiffies "$SERVER_PID")
    b1=$(busy_jiffies)
    alive "$SERVER_PID" || ERROR="server died during the run: $(one_line "$run.srv.err")"
    stop_server

    IFS=$'\t' read -r ok value req sent recv p50 p99 errors error < <(
        "$PYTHON" "$BENCH/serve_report.py" parse "$workload" "$peer" "$run.json" "$rc" "$(one_line "$run.gen.err")")
    if [[ $ERROR != - ]]; then
        ok=false error=$ERROR
    elif ((rc == 124 || rc == 137)); then
        ok=false error="generator still running after $TIMEOUT s (timeout): $error"
    fi
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    srv=$(awk -v j=$((s1 - s0)) -v hz="$HZ" 'BEGIN { printf "%.2f", j / hz }')
    read -r gu gs <<<"$(tail -n 1 "$run.gen.cpu" 2>/dev/null || echo "nan nan")"
    [[ $gu =~ ^[0-9.]+$ ]] || gu=nan gs=nan
    # CPU the machine spent on anything but the server and the generator:
    # kernel threads (softirq work on loopback lands partly there), other
    # processes, and children of forking servers not reaped yet
    other=$(awk -v j=$((b1 - b0)) -v hz="$HZ" -v s="$srv" -v u="$gu" -v y="$gs" \
        'BEGIN { x = j / hz - s - u - y; printf "%.2f", x < 0 ? 0 : x }')
    awk -v o="$other" -v s="$secs" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m * s) }' && disturbed=true

    if [[ $ok == false ]]; then
        say "  $workload $peer #$rep: FAILED: $error"
    else
        say "  $workload $peer #$rep: $value $(unit_of "$workload")$([[ $errors == - ]] || echo " (errors $errors)")" \
            "(CPU s: server $srv, generator $gu+$gs, other $other)"
    fi
    printf '%s\t' "$workload" "$peer" "$rep" "$attempt" "$ok" "$disturbed" "$value" "$req" "$sent" "$recv" \
        "$p50" "$p99" "$errors" "$srv" "$gu" "$gs" "$other" "$secs" "$run.json"
    printf '%s\n' "$error"
    [[ $disturbed == false || $ok == false ]] || return 3
}

unit_of() {
    case ${1%-plain} in
        echo | udp) echo "req/s" ;;
        stream) echo "MB/s each way" ;;
        connect) echo "conn/s" ;;
    esac
}

# measure_peer WORKLOAD PEER REP: measures, again while disturbed by other
# processes (ATTEMPTS times at most), and appends the last result to $RUNS.
measure_peer() {
    local attempt line
    for ((attempt = 1; ; attempt++)); do
        line=$(measure "$1" "$2" "$3" "$attempt") && break
        ((attempt < ATTEMPTS)) || break
        say "  (other processes kept more than $MAX_OTHER CPUs busy during that run: again)"
    done
    printf '%s\n' "$line" >>"$RUNS"
}

# Opens N echo connections to 127.0.0.1:PORT, one after another, each
# proven served by a 1-byte round trip; holds them all; proves each is still
# served; reads the server's memory at each step (PID's /proc status).
# Prints: rss_before_kb rss_held_kb hwm_kb open_seconds.
HOLDER='
import resource, socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < n + 64:
    sys.exit(f"descriptor limit {hard} is below {n} connections")
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def mem(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
rss0, socks, t0 = mem("VmRSS"), [], time.monotonic()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"x")
    if s.recv(1) != b"x":
        sys.exit(f"connection {i}: no echo")
    socks.append(s)
opened = time.monotonic() - t0
time.sleep(1)
rss = mem("VmRSS")
for i, s in enumerate(socks):
    s.sendall(b"y")
    if s.recv(1) != b"y":
        sys.exit(f"connection {i}: no echo after holding")
print(rss0, rss, mem("VmHWM"), round(opened, 2))
'

# measure_idle PEER REP: the idle-connections run; appends to $IDLE_RUNS:
# peer rep ok conns rss_before_kb rss_held_kb hwm_kb open_s srv_cpu error.
measure_idle() {
    local peer=$1 rep=$2 run port out rss0 rss hwm opened s0 s1 srv ok=true
    run=$WORK/idle.$peer.$rep
    port=$(free_port)
    ERROR=-
    # the server may hold as many descriptors as the hard limit allows
    ulimit -n "$(ulimit -Hn)"
    if start_server idle "$peer" "$port" "$run"; then
        wait_quiet
        s0=$(proc_jiffies "$SERVER_PID")
        out=$(timeout -k 5 "$TIMEOUT" "$PYTHON" -c "$HOLDER" "$port" "$IDLE_CONNS" "$SERVER_PID" 2>"$run.hold.err") ||
            ERROR="holder failed: $(one_line "$run.hold.err")"
        s1=$(proc_jiffies "$SERVER_PID")
        stop_server
    fi
    ulimit -n "$NOFILE_SOFT"
    read -r rss0 rss hwm opened <<<"${out:-nan nan nan nan}"
    srv=$(awk -v j=$((${s1:-0} - ${s0:-0})) -v hz="$HZ" 'BEGIN { printf "%.2f", j / hz }')
    if [[ $ERROR != - ]]; then
        ok=false
        say "  idle $peer #$rep: FAILED: $ERROR"
    else
        say "  idle $peer #$rep: $IDLE_CONNS connections opened in $opened s; server RSS $((rss0 / 1024)) MiB before," \
            "$((rss / 1024)) MiB held, peak (VmHWM) $((hwm / 1024)) MiB"
    fi
    printf '%s\t' "$peer" "$rep" "$ok" "$IDLE_CONNS" "$rss0" "$rss" "$hwm" "$opened" "$srv" >>"$IDLE_RUNS"
    printf '%s\n' "$ERROR" >>"$IDLE_RUNS"
}

# ---------------------------------------------------------------- report
version_of() {
    case $1 in
        netsmith) "$NETSMITH" --version ;;
        inetd) "$INETD" --version 2>&1 | head -n 1 ;;
        xinetd) echo "xinetd $("$XINETD" -version 2>&1 | awk '{ print $1; exit }')" ;;
        socat) socat -V | sed -n 's/^socat version \([^ ]*\).*/socat \1/p' ;;
        ncat) ncat --version 2>&1 | head -n 1 ;;
        asyncio | threaded) "$PYTHON" --version ;;
        tokio) awk '/^name = "tokio"$/ { getline; print "tokio " $3 }' "$BENCH/tokio-echo/Cargo.lock" | tr -d '"' ;;
        iperf3*) iperf3 --version | head -n 1 ;;
    esac
}

# Writes the per-peer facts the report needs: peer, version, skip reason.
write_peers() {
    local peer
    for peer in netsmith inetd xinetd socat ncat asyncio threaded tokio iperf3 iperf3-bidir; do
        printf '%s\t%s\t%s\n' "$peer" "$(version_of "$peer" 2>/dev/null || echo unknown)" "${SKIP[$peer]:--}"
    done >"$WORK/peers.tsv"
}

# ---------------------------------------------------------------- main
main() {
    ((REPS >= 1)) || die "REPS must be at least 1"
    [[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, at least 1"
    WORK=$(mktemp -d)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    HZ=$(getconf CLK_TCK)
    MY_PGID=$(ps -o pgid= $$ | tr -d ' ')
    NOFILE_SOFT=$(ulimit -n)
    RUNS=$WORK/runs.tsv IDLE_RUNS=$WORK/idle.tsv
    : >"$RUNS"
    : >"$WORK/live"
    prepare
    write_peers

    # the peers of each workload, filtered by PEERS, in a JSON object
    local w p rep order='{' sep='' list
    declare -A RUN_PEERS=()
    for w in $WORKLOADS; do
        [[ -n ${WORKLOAD_PEERS[$w]:-} ]] || die "unknown workload $w (echo stream connect udp idle, echo-plain stream-plain connect-plain)"
        list=
        for p in ${WORKLOAD_PEERS[$w]}; do
            [[ -z $PEERS || " $PEERS " == *" $p "* || ($p == iperf3-bidir && " $PEERS " == *" iperf3 "*) ]] &&
                list+="$p "
        done
        RUN_PEERS[$w]=$list
        order+="$sep\"$w\": [$(for p in $list; do printf '"%s",' "$p"; done | sed 's/,$//')]"
        sep=", "
    done
    order+="}"

    say "workloads: $WORKLOADS; $REPS runs each, ${DURATION} s per run; $(nproc) CPUs"
    for p in "${!SKIP[@]}"; do say "  skipping $p: ${SKIP[$p]}"; done
    for ((rep = 1; rep <= REPS; rep++)); do
        say "round $rep/$REPS"
        for w in $WORKLOADS; do
            for p in ${RUN_PEERS[$w]}; do
                [[ -z ${SKIP[$p]:-} ]] || continue
                if [[ $w == idle ]]; then
                    measure_idle "$p" "$rep"
                else
                    measure_peer "$w" "$p" "$rep"
                fi
            done
        done
    done

    mkdir -p "$RESULTS"
    ORDER=$order DATE=$(date -u +%FT%TZ) CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) \
        REPS=$REPS DURATION=$DURATION IDLE_GOAL_MB=$IDLE_GOAL_MB IDLE_CONNS=$IDLE_CONNS GEN_THREADS=$GEN_THREADS \
        MAX_OTHER=$MAX_OTHER ATTEMPTS=$ATTEMPTS ROOT=$ROOT \
        "$PYTHON" "$BENCH/serve_report.py" report "$WORK" "$JSON"
    # exit 1 if any run failed
    ! awk -F'\t' '$5 == "false" { bad = 1 } END { exit !bad }' "$RUNS" || return 1
    ! awk -F'\t' '$3 == "false" { bad = 1 } END { exit !bad }' "$IDLE_RUNS" 2>/dev/null
}

main "$@"
