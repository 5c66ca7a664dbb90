#!/usr/bin/env bash
# A program as the peer: every client of a listener gets its own /bin/cat,
# netsmith against ncat and socat, each the way its users run it:
#
#   netsmith listen -k --max-conns 200 --exec /bin/cat 127.0.0.1 P
#   ncat -l -k 127.0.0.1 P --exec /bin/cat
#   socat TCP-LISTEN:P,bind=127.0.0.1,fork,reuseaddr EXEC:/bin/cat
#
#   bench/exec.sh                          # REPS=1, DURATION=3, SIZE=1 GiB
#   REPS=3 TOOLS="netsmith ncat" bench/exec.sh
#
# Three measurements per tool and repetition, each with a fresh listener:
#   echo    50 connections (so 50 cats), 64-byte round trips, DURATION s:
#           round trips/s, by `netsmith bench echo -c 50 -s 64` (every
#           reply checked), and cross-checked by a load generator that is
#           not netsmith: a python3 client (2 processes of 25 connections,
#           every reply compared), whose rate is lower (it is the
#           bottleneck) but must rank the tools the same way.
#   conn    a new connection (so a new cat) per request: connect, send
#           "hello", half-close, read the echo to EOF, compare; 10 at once,
#           DURATION s; requests/s, by the python3 client alone (`netsmith
#           bench connect` does not compare the answer, and a tool that
#           closes before its program has answered would count).
#   stream  SIZE random bytes through one connection's cat and back,
#           counted by `netsmith connect -v` ("peer closed after N bytes");
#           MB/s each way, and the run counts only if all SIZE bytes came
#           back within STREAM_TIMEOUT (ncat --exec deadlocks under bulk
#           load: its run is then FAILED, not slow).
# Runs wait for an idle machine (QUIET_WAIT seconds at most); every process
# is bounded by `timeout`. The table (medians) and netsmith's ratios go to
# stdout and to bench/results/exec.txt. MB is 10^6 bytes.
#
# Exit status: 0; 1 if a netsmith run failed (a peer's failure is shown in
# the table, not counted); 2 if the script could not run.

set -euo pipefail
export LC_ALL=C

REPS=${REPS:-1}
DURATION=${DURATION:-3}
SIZE=${SIZE:-$((1 << 30))}
TOOLS=${TOOLS:-"netsmith ncat socat"}
TIMEOUT=${TIMEOUT:-60}
STREAM_TIMEOUT=${STREAM_TIMEOUT:-20}
QUIET_WAIT=${QUIET_WAIT:-5}

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
NETSMITH=$ROOT/target/release/netsmith
RESULTS=$BENCH/results

# server_cmd TOOL PORT sets CMD to a listener on 127.0.0.1:PORT that runs
# /bin/cat for each client.
server_cmd() {
    case $1 in
        netsmith) CMD=("$NETSMITH" -q listen -k --max-conns 200 --exec /bin/cat 127.0.0.1 "$2") ;;
        ncat) CMD=(ncat -l -k 127.0.0.1 "$2" --exec /bin/cat) ;;
        socat) CMD=(socat "TCP-LISTEN:$2,bind=127.0.0.1,fork,reuseaddr,backlog=256" EXEC:/bin/cat) ;;
        *) die "unknown tool $1 (netsmith ncat socat)" ;;
    esac
}

prepare() {
    local missing=() tool
    command -v python3 >/dev/null || missing+=(python3)
    for tool in socat ncat; do
        [[ " $TOOLS " != *" $tool "* ]] || command -v "$tool" >/dev/null || missing+=("$tool")
    done
    install_missing ${missing[@]+"${missing[@]}"}
    PYTHON=$(command -v /usr/bin/python3 || command -v python3) || die "python3 is needed"
    HZ=$(getconf CLK_TCK)
    if command -v cargo >/dev/null; then
        say "building netsmith (release)"
        cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" >&2
    fi
    [[ -x $NETSMITH ]] || die "no $NETSMITH and no cargo to build it"
    make_source
}



# The python3 load generator: `rt PORT SECONDS` (round trips on 50
# connections, 2 processes) or `conn PORT SECONDS` (a connection per
# request, 10 threads); prints the rate, or "nan" if any answer was wrong.
LOAD=$(
    cat <<'EOF'
import multiprocessing, os, selectors, socket, sys, threading, time

mode, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
addr = ("127.0.0.1", port)

def round_trips(conns, seconds, out):
    sel = selectors.DefaultSelector()
    msg = os.urandom(64)
    socks = []
    for _ in range(conns):
        s = socket.create_connection(addr)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, bytearray())
    for s in socks:
        s.sendall(msg)
    done, bad = 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=1):
            buf = key.data
            chunk = key.fileobj.recv(4096)
            if not chunk:
                bad += 1
                sel.unregister(key.fileobj)
                continue
            buf += chunk
            if len(buf) >= 64:
                if bytes(buf[:64]) != msg:
                    bad += 1
                del buf[:64]
                done += 1
                key.fileobj.sendall(msg)
    out.put((done, bad))
    for s in socks:
        s.close()

def connections(seconds, counts, lock):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.create_connection(addr) as s:
            s.sendall(b"hello\n")
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        with lock:
            counts[0 if got == b"hello\n" else 1] += 1

if mode == "rt":
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=round_trips, args=(25, seconds, q)) for _ in range(2)]
    for p in ps: p.start()
    results = [q.get() for _ in ps]
    for p in ps: p.join()
    done, bad = sum(r[0] for r in results), sum(r[1] for r in results)
else:
    counts, lock = [0, 0], threading.Lock()
    ts = [threading.Thread(target=connections, args=(seconds, counts, lock)) for _ in range(10)]
    for t in ts: t.start()
    for t in ts: t.join()
    done, bad = counts
print("nan" if bad else round(done / seconds))
EOF
)

# measure TOOL: appends "tool bench_rt python_rt python_conn stream_mbps".
measure() {
    local tool=$1 port srv rt prt pconn mbps got t0 t1
    port=$(free_port)
    server_cmd "$tool" "$port"
    start "${CMD[@]}" "$port"
    srv=$LAST
    wait_quiet
    rt=$(timeout -k 5 "$TIMEOUT" "$NETSMITH" bench echo "127.0.0.1:$port" -c 50 -s 64 \
        -d "${DURATION}s" --json --allow-errors 2>>"$WORK/stderr" |
        "$PYTHON" -c 'import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
print(round(r["requests_per_s"]) if sum(r["errors"].values()) == 0 else "nan")') || rt=nan
    stop "$srv"

    port=$(free_port)
    server_cmd "$tool" "$port"
    start "${CMD[@]}" "$port"
    srv=$LAST
    wait_quiet
    prt=$(timeout -k 5 "$TIMEOUT" "$PYTHON" -c "$LOAD" rt "$port" "$DURATION" 2>>"$WORK/stderr") || prt=nan
    stop "$srv"

    port=$(free_port)
    server_cmd "$tool" "$port"
    start "${CMD[@]}" "$port"
    srv=$LAST
    wait_quiet
    pconn=$(timeout -k 5 "$TIMEOUT" "$PYTHON" -c "$LOAD" conn "$port" "$DURATION" 2>>"$WORK/stderr") || pconn=nan
    stop "$srv"

    port=$(free_port)
    server_cmd "$tool" "$port"
    start "${CMD[@]}" "$port"
    srv=$LAST
    wait_quiet
    t0=$EPOCHREALTIME
    timeout -k 5 "$STREAM_TIMEOUT" "$NETSMITH" -v connect 127.0.0.1 "$port" <"$SOURCE" \
        >/dev/null 2>"$WORK/client" || true
    t1=$EPOCHREALTIME
    stop "$srv"
    got=$(sed -n 's/.*peer closed after \([0-9]*\) bytes.*/\1/p' "$WORK/client" | tail -n 1)
    got=${got:-0}
    if ((got == SIZE)); then
        mbps=$(awk -v s="$SIZE" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / (b - a) / 1e6 }')
    else
        mbps=nan
        say "  $tool stream: FAILED ($got of $SIZE bytes came back within ${STREAM_TIMEOUT}s)"
    fi
    for v in "$rt" "$prt" "$pconn" "$mbps"; do
        [[ $tool != netsmith || $v != nan ]] || FAILED=1
    done
    say "  $tool: $rt round trips/s (python: $prt), $pconn connections/s, $mbps MB/s each way"
    printf '%s %s %s %s %s\n' "$tool" "$rt" "$prt" "$pconn" "$mbps" >>"$WORK/runs"
}

report() {
    "$PYTHON" - "$WORK/runs" "$SIZE" "$DURATION" "$REPS" "$TOOLS" <<'EOF'
import statistics, sys
runs, size, duration, reps, tools = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split()
cols = ("round trips/s", "python rt/s", "python conn/s", "MB/s each way")
by = {}
for line in open(runs):
    tool, *values = line.split()
    lists = by.setdefault(tool, [[] for _ in cols])
    for l, v in zip(lists, values):
        if v != "nan": l.append(float(v))
med = lambda v: statistics.median(v) if v else float("nan")
print(f"a /bin/cat per client, on loopback; {reps} run(s) each, {duration} s per rate")
print(f"round trips: 50 connections, 64 bytes (netsmith bench echo; python3 cross-check);")
print(f"conn: a new connection and cat per request, 10 at once (python3); stream: {size / 2**30:g} GiB through one cat and back")
print(f"{'tool':<10}" + "".join(f"{c:>16}" for c in cols))
for t in tools:
    lists = by.get(t, [[] for _ in cols])
    print(f"{t:<10}" + "".join(f"{med(l):>16.0f}" for l in lists))
base = by.get("netsmith")
if base:
    for other in tools:
        if other == "netsmith" or other not in by: continue
        ratios = [med(b) / med(o) if o else float("nan") for b, o in zip(base, by[other])]
        print(f"netsmith / {other}: " + ", ".join(f"{c} {r:.2f}x" for c, r in zip(cols, ratios)))
EOF
}

main() {
    [[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, at least 1"
    ((REPS >= 1)) || die "REPS must be at least 1"
    WORK=$(mktemp -d)
    SHM=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
    trap 'rm -rf "$WORK" "$SHM"' EXIT
    trap 'exit 130' INT TERM
    : >"$WORK/runs"
    FAILED=0
    prepare
    say "tools: $TOOLS; $REPS run(s); $(nproc) CPUs"
    local rep tool
    for ((rep = 1; rep <= REPS; rep++)); do
        say "round $rep/$REPS"
        for tool in $TOOLS; do
            [[ $tool == netsmith ]] || command -v "$tool" >/dev/null || { say "  skipping $tool: not installed"; continue; }
            measure "$tool"
        done
    done
    mkdir -p "$RESULTS"
    report | tee "$RESULTS/exec.txt"
    return "$FAILED"
}

main "$@"
