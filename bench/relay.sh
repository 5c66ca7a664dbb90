#!/usr/bin/env bash
# A relay between a client and an echo server on loopback: netsmith relay
# (with splice, and with --no-splice: the plain copy loop) against socat and
# ncat, each the way its users run it as a forwarder:
#
#   netsmith relay tcp-listen:127.0.0.1:P 127.0.0.1:Q
#   socat TCP-LISTEN:P,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:Q
#   ncat -l -k 127.0.0.1 P --sh-exec "ncat 127.0.0.1 Q"
#
#   bench/relay.sh                       # REPS=1, SIZE=1 GiB, DURATION=5
#   REPS=3 TOOLS="netsmith socat" bench/relay.sh
#
# The echo server behind every relay is `netsmith serve echo` on port Q.
# Two measurements per tool and repetition, each with a fresh relay:
#   stream  `netsmith connect` sends SIZE random bytes (a file in /dev/shm,
#           or /dev/zero without room there) through the relay to the echo
#           server and reads them back to /dev/null; MB/s each way = SIZE /
#           wall time, and the run counts only if the client counted exactly
#           SIZE bytes back.
#   echo    `netsmith bench echo -c 50 -s 64`: 50 connections, 64-byte
#           round trips, every reply checked, for DURATION seconds; req/s.
# Runs wait for an idle machine first (QUIET_WAIT seconds at most); tools
# run round-robin within a repetition. Every process is bounded by
# `timeout` (TIMEOUT seconds). The table (medians over the repetitions,
# and netsmith's ratios to the others) goes to stdout and to
# bench/results/relay.txt. MB is 10^6 bytes.
#
# Exit status: 0; 1 if a run failed; 2 if the script could not run.

set -euo pipefail
export LC_ALL=C

REPS=${REPS:-1}
SIZE=${SIZE:-$((1 << 30))}
DURATION=${DURATION:-5}
TOOLS=${TOOLS:-"netsmith netsmith-copy socat ncat"}
TIMEOUT=${TIMEOUT:-180}
# A stream run that takes longer has stalled (ncat --sh-exec deadlocks once
# enough is in flight): 1 GiB at 20 MB/s.
STREAM_TIMEOUT=${STREAM_TIMEOUT:-50}
QUIET_WAIT=${QUIET_WAIT:-30}

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
NETSMITH=$ROOT/target/release/netsmith
RESULTS=$BENCH/results

# relay_cmd TOOL PORT TARGET_PORT sets CMD to a relay from 127.0.0.1:PORT to
# 127.0.0.1:TARGET_PORT.
relay_cmd() {
    case $1 in
        netsmith) CMD=("$NETSMITH" -q relay "tcp-listen:127.0.0.1:$2" "127.0.0.1:$3") ;;
        netsmith-copy) CMD=("$NETSMITH" -q relay --no-splice "tcp-listen:127.0.0.1:$2" "127.0.0.1:$3") ;;
        socat) CMD=(socat "TCP-LISTEN:$2,bind=127.0.0.1,fork,reuseaddr" "TCP:127.0.0.1:$3") ;;
        ncat) CMD=(ncat -l -k 127.0.0.1 "$2" --sh-exec "ncat 127.0.0.1 $3") ;;
        *) die "unknown tool $1 (netsmith netsmith-copy socat ncat)" ;;
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



# measure TOOL: one stream run and one echo run, each through a fresh
# relay; appends "tool stream_mbps echo_rps" to $WORK/runs.
measure() {
    local tool=$1 port t0 t1 got mbps rps
    port=$(free_port)
    relay_cmd "$tool" "$port" "$ECHO_PORT"
    start "${CMD[@]}" "$port"
    local relay=$LAST
    wait_quiet
    t0=$EPOCHREALTIME
    # What came back is counted by the client itself (-v: "peer closed
    # after N bytes"), not by a pipe into wc, whose copying would take CPU
    # from the relay under test.
    timeout -k 5 "$STREAM_TIMEOUT" "$NETSMITH" -v connect 127.0.0.1 "$port" <"$SOURCE" \
        >/dev/null 2>"$WORK/client" || true
    got=$(sed -n 's/.*peer closed after \([0-9]*\) bytes.*/\1/p' "$WORK/client" | tail -n 1)
    got=${got:-0}
    t1=$EPOCHREALTIME
    stop "$relay"
    if ((got == SIZE)); then
        mbps=$(awk -v s="$SIZE" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / (b - a) / 1e6 }')
    else
        mbps=nan
        FAILED=1
        say "  $tool stream: FAILED ($got of $SIZE bytes came back)"
    fi

    port=$(free_port)
    relay_cmd "$tool" "$port" "$ECHO_PORT"
    start "${CMD[@]}" "$port"
    relay=$LAST
    wait_quiet
    rps=$(timeout -k 5 "$TIMEOUT" "$NETSMITH" bench echo "127.0.0.1:$port" -c 50 -s 64 \
        -d "${DURATION}s" --json --allow-errors 2>>"$WORK/stderr" |
        "$PYTHON" -c 'import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
errors = sum(r["errors"].values())
print(round(r["requests_per_s"]) if errors == 0 else "nan")') || rps=nan
    stop "$relay"
    [[ $rps != nan ]] || { FAILED=1; say "  $tool echo: FAILED (errors or no result)"; }
    say "  $tool: $mbps MB/s each way, $rps round trips/s"
    printf '%s %s %s\n' "$tool" "$mbps" "$rps" >>"$WORK/runs"
}

report() {
    "$PYTHON" - "$WORK/runs" "$SIZE" "$DURATION" "$REPS" "$TOOLS" <<'EOF'
import statistics, sys
runs, size, duration, reps, tools = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split()
by = {}
for line in open(runs):
    tool, mbps, rps = line.split()
    by.setdefault(tool, ([], []))
    if mbps != "nan": by[tool][0].append(float(mbps))
    if rps != "nan": by[tool][1].append(float(rps))
med = lambda v: statistics.median(v) if v else float("nan")
print(f"relay TCP to TCP on loopback, netsmith serve echo behind it; {reps} run(s) each")
print(f"stream: {size / 2**30:g} GiB through the relay and back; echo: 50 connections, 64-byte round trips, {duration} s")
print(f"{'tool':<15}{'MB/s each way':>15}{'round trips/s':>15}")
for t in tools:
    s, e = by.get(t, ([], []))
    print(f"{t:<15}{med(s):>15.0f}{med(e):>15.0f}")
base = by.get("netsmith")
if base:
    for other, goal_s, goal_e in (("socat", 1.5, 1.0), ("ncat", None, None), ("netsmith-copy", None, None)):
        if other not in by: continue
        rs = med(base[0]) / med(by[other][0]) if by[other][0] else float("nan")
        re = med(base[1]) / med(by[other][1]) if by[other][1] else float("nan")
        g = f" (goals: >= {goal_s} and >= {goal_e})" if goal_s else ""
        print(f"netsmith / {other}: throughput {rs:.2f}x, round trips {re:.2f}x{g}")
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
    ECHO_PORT=$(free_port)
    # The echo server outlives every run (each bounded by TIMEOUT).
    local tools=($TOOLS)
    BOUND=$((TIMEOUT * (2 * ${#tools[@]} * REPS + 1))) \
        start "$NETSMITH" -q serve "echo=$ECHO_PORT" --tcp "$ECHO_PORT"
    local echo_server=$LAST rep tool
    say "tools: $TOOLS; $REPS run(s); $(nproc) CPUs"
    for ((rep = 1; rep <= REPS; rep++)); do
        say "round $rep/$REPS"
        for tool in $TOOLS; do
            [[ $tool == netsmith* ]] || command -v "$tool" >/dev/null || { say "  skipping $tool: not installed"; continue; }
            measure "$tool"
        done
    done
    stop "$echo_server"
    mkdir -p "$RESULTS"
    report | tee "$RESULTS/relay.txt"
    return "$FAILED"
}

main "$@"
