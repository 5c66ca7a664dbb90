#!/usr/bin/env bash
# Throughput of one TCP connection on loopback: netsmith against OpenBSD nc,
# ncat and socat, each moving the same bytes the same way.
#
#   bench/pipe.sh                 # REPS=3, 1 GiB per run
#   REPS=5 TOOLS="netsmith nc" SIZE=$((256 << 20)) bench/pipe.sh
#
# One measurement: the receiver listens on 127.0.0.1 with stdin from
# /dev/null and its stdout piped into a byte counter; the timer starts, the
# sender reads SIZE bytes on stdin and sends them; the timer stops when both
# the sender and the receiver pipeline have exited. A run counts only if both
# exited 0 and the counter saw exactly SIZE bytes.
#
# The sender's stdin is a file of random bytes in /dev/shm, redirected, so no
# extra process competes for the CPU (this is a 2-core machine) and no tool
# can gain from all-zero data; without room in /dev/shm it falls back to
# `head -c SIZE /dev/zero |`. The counter splices the pipe into /dev/null, so
# it costs almost nothing, while the receiver pays for writing into a pipe as
# it does in `nc -l | tar x`.
#
# Tools run round-robin (one run of each per repetition) so that drift of
# the machine spreads over all of them. Each run waits for an idle machine
# first, and is repeated (ATTEMPTS times at most) if other processes kept
# more than MAX_OTHER CPUs busy during it. Each tool process is bounded by
# `timeout` (TIMEOUT seconds) and timed by /usr/bin/time (user+sys CPU).
# Raw runs go to bench/results/pipe.json. MB is 10^6 bytes.
#
# TLS=1 (what bench/tls.sh sets) measures the same transfer over TLS:
# netsmith's listen --tls / connect --tls, socat's OPENSSL-LISTEN/OPENSSL
# and ncat --ssl (OpenBSD nc has no TLS), each server with one self-signed
# ECDSA P-256 certificate made by openssl at start and each client
# verifying it; raw runs then go to bench/results/tls.json.

set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers

REPS=${REPS:-3}
SIZE=${SIZE:-$((1 << 30))}
TLS=${TLS:-}
if [[ -n $TLS ]]; then
    TOOLS=${TOOLS:-"netsmith ncat socat"}
    NAME=tls
else
    TOOLS=${TOOLS:-"netsmith nc ncat socat"}
    NAME=pipe
fi
TIMEOUT=${TIMEOUT:-120}
QUIET_WAIT=${QUIET_WAIT:-60}
MAX_OTHER=${MAX_OTHER:-0.1}
ATTEMPTS=${ATTEMPTS:-3}

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
NETSMITH=$ROOT/target/release/netsmith
JSON=$BENCH/results/$NAME.json

# ---------------------------------------------------------------- the tools
# <tool>_cmd ROLE PORT sets CMD to the command line that receives
# (ROLE=recv: listen on 127.0.0.1:PORT, write what arrives to stdout) or
# sends (ROLE=send: connect, send stdin, end cleanly at its EOF).

# --recv-only, like nc -d and ncat --recv-only: the receiver never reads its
# stdin, so all three pay for one direction only.
# With TLS the client pins the certificate (the form openssl prints).
netsmith_cmd() {
    case $1/$TLS in
        recv/) CMD=("$NETSMITH" listen --recv-only 127.0.0.1 "$2") ;;
        send/) CMD=("$NETSMITH" connect 127.0.0.1 "$2") ;;
        recv/*) CMD=("$NETSMITH" listen --tls --cert "$CERT" --key "$KEY" --recv-only 127.0.0.1 "$2") ;;
        send/*) CMD=("$NETSMITH" connect --pin "$PIN" "tls://127.0.0.1:$2") ;;
    esac
}

# -d: never read stdin; -N: shutdown(SHUT_WR) at stdin EOF, so the
# listener sees EOF and exits.
nc_cmd() {
    case $1 in
        recv) CMD=(nc.openbsd -d -l 127.0.0.1 "$2") ;;
        send) CMD=(nc.openbsd -N 127.0.0.1 "$2") ;;
    esac
}

# One direction each: the sender closes at stdin EOF, the receiver exits at
# the connection's EOF.
ncat_cmd() {
    case $1/$TLS in
        recv/) CMD=(ncat --recv-only -l 127.0.0.1 "$2") ;;
        send/) CMD=(ncat --send-only 127.0.0.1 "$2") ;;
        recv/*) CMD=(ncat --ssl --ssl-cert "$CERT" --ssl-key "$KEY" --recv-only -l 127.0.0.1 "$2") ;;
        send/*) CMD=(ncat --ssl --ssl-verify --ssl-trustfile "$CERT" --send-only 127.0.0.1 "$2") ;;
    esac
}

# -u: one direction, left to right. socat's default 8 KiB buffer is kept:
# this compares the tools as people run them.
socat_cmd() {
    case $1/$TLS in
        recv/) CMD=(socat -u "TCP-LISTEN:$2,bind=127.0.0.1,reuseaddr" STDOUT) ;;
        send/) CMD=(socat -u STDIN "TCP:127.0.0.1:$2") ;;
        recv/*) CMD=(socat -u "OPENSSL-LISTEN:$2,bind=127.0.0.1,reuseaddr,cert=$CERT,key=$KEY,verify=0" STDOUT) ;;
        send/*) CMD=(socat -u STDIN "OPENSSL:127.0.0.1:$2,cafile=$CERT") ;;
    esac
}

# With TLS: one self-signed certificate for 127.0.0.1, and its pin.
make_certificate() {
    CERT=$WORK/cert.pem KEY=$WORK/key.pem
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$KEY" -out "$CERT" 2>/dev/null || die "openssl cannot make a certificate"
    PIN=sha256:$(openssl x509 -in "$CERT" -noout -fingerprint -sha256 | cut -d= -f2)
}

# Debian package and command that provide each peer.
declare -A PACKAGE=([nc]=netcat-openbsd [ncat]=ncat [socat]=socat)
declare -A BINARY=([nc]=nc.openbsd [ncat]=ncat [socat]=socat)

# ---------------------------------------------------------------- set-up

# Installs what is missing (as root, with apt-get), drops peers that are
# still missing, and builds netsmith.
prepare() {
    local missing=() tool
    [[ -x /usr/bin/time ]] || missing+=(time)
    [[ -z $TLS ]] || command -v openssl >/dev/null || missing+=(openssl)
    command -v python3 >/dev/null || missing+=(python3)
    for tool in $TOOLS; do
        [[ $tool == netsmith ]] || command -v "${BINARY[$tool]:?unknown tool $tool}" >/dev/null ||
            missing+=("${PACKAGE[$tool]}")
    done
    install_missing ${missing[@]+"${missing[@]}"}
    [[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (Debian package: time)"
    # The system's python starts faster than a version manager's shim.
    PYTHON=$(command -v /usr/bin/python3 || command -v python3) || die "python3 is needed"
    local kept=()
    for tool in $TOOLS; do
        if [[ $tool == netsmith ]] || command -v "${BINARY[$tool]}" >/dev/null; then
            kept+=("$tool")
        else
            say "skipping $tool: ${BINARY[$tool]} not found"
        fi
    done
    TOOLS=${kept[*]}
    [[ " $TOOLS " == *" netsmith "* ]] || die "netsmith must be among TOOLS (it is the baseline)"
    if command -v cargo >/dev/null; then
        say "building netsmith (release)"
        cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" >&2
    fi
    [[ -x $NETSMITH ]] || die "no $NETSMITH and no cargo to build it"
}

# The bytes every sender sends: a random file in /dev/shm when it fits.
make_source() {
    SOURCE=
    local avail
    avail=$(df --output=avail -B1 /dev/shm 2>/dev/null | tail -1) || avail=0
    if ((avail > SIZE + (256 << 20))); then
        SOURCE=$WORK_SHM/source
        say "writing $SIZE random bytes to $SOURCE"
        head -c "$SIZE" /dev/urandom >"$SOURCE"
        SOURCE_DESC="random file in /dev/shm, stdin redirected"
    else
        SOURCE_DESC="head -c $SIZE /dev/zero | sender"
    fi
}

cleanup() {
    rm -rf "$WORK"
    [[ -z ${WORK_SHM:-} ]] || rm -rf "$WORK_SHM"
}

# ---------------------------------------------------------------- helpers
# wait_ready PORT FILE: waits (up to 10 s) until something listens on
# 127.0.0.1:PORT and FILE exists. It reads /proc/net/tcp rather than
# connecting: a probe would be the listener's one client.
wait_ready() {
    local needle i
    needle=$(printf ' 0100007F:%04X 00000000:0000 0A ' "$1")
    for ((i = 0; i < 1000; i++)); do
        [[ -e $2 ]] && grep -q "$needle" /proc/net/tcp && return 0
        sleep 0.01
    done
    return 1
}

# The byte counter: reads stdin to its end and prints how many bytes it
# had; creates the file argv[1] once it is about to read.
COUNTER='
import os, sys
null, n = os.open("/dev/null", os.O_WRONLY), 0
open(sys.argv[1], "w").close()
try:
    while k := os.splice(0, null, 1 << 20):  # no copy to user space
        n += k
except (AttributeError, OSError):  # no splice: read the rest
    while b := sys.stdin.buffer.read1(1 << 20):
        n += len(b)
print(n)'

# timed FILE CMD...: runs CMD bounded by TIMEOUT; "user sys" CPU seconds of
# CMD (all its threads) go to FILE.
timed() {
    local file=$1
    shift
    /usr/bin/time -f '%U %S' -o "$file" timeout "$TIMEOUT" "$@"
}

cpu_of() { tail -n 1 "$1" 2>/dev/null || echo "nan nan"; }

# ---------------------------------------------------------------- one run
# measure TOOL REP ATTEMPT: one transfer. Prints its result as one line of
# tab-separated fields: tool rep attempt ok disturbed bytes seconds mbps
# send_user send_sys recv_user recv_sys other_cpu error. Returns 3 if other
# processes kept more than MAX_OTHER CPUs busy on average meanwhile (a
# disturbed run, worth repeating; a quiet machine shows about 0.02).
measure() {
    local tool=$1 rep=$2 attempt=$3 run port recv send rpid t0 t1 b0 b1 bytes secs mbps su ss ru rs other
    local send_rc=0 recv_rc=0 error=- ok=true disturbed=false
    run=$WORK/$tool.$rep.$attempt
    port=$(free_port)
    "${tool}_cmd" recv "$port"
    recv=("${CMD[@]}")
    "${tool}_cmd" send "$port"
    send=("${CMD[@]}")

    { timed "$run.recv.cpu" "${recv[@]}" </dev/null 2>"$run.recv.err" |
        timed "$run.count.cpu" "$PYTHON" -c "$COUNTER" "$run.ready" >"$run.bytes"; } &
    rpid=$!
    wait_ready "$port" "$run.ready" || error="receiver not listening on port $port after 10 s"

    wait_quiet
    b0=$(busy_jiffies)
    t0=$EPOCHREALTIME
    if [[ $error == - ]]; then
        if [[ -n $SOURCE ]]; then
            timed "$run.send.cpu" "${send[@]}" <"$SOURCE" >/dev/null 2>"$run.send.err" || send_rc=$?
        else
            head -c "$SIZE" /dev/zero | timed "$run.send.cpu" "${send[@]}" >/dev/null 2>"$run.send.err" || send_rc=$?
        fi
    fi
    wait "$rpid" || recv_rc=$?
    t1=$EPOCHREALTIME
    b1=$(busy_jiffies)

    bytes=$(cat "$run.bytes" 2>/dev/null || echo 0)
    if [[ $error != - ]]; then
        :
    elif ((send_rc != 0)); then
        error="sender exited $send_rc: $(head -c 200 "$run.send.err" | tr '\n\t' '  ')"
    elif ((recv_rc != 0)); then
        error="receiver exited $recv_rc: $(head -c 200 "$run.recv.err" | tr '\n\t' '  ')"
    elif [[ $bytes != "$SIZE" ]]; then
        error="received $bytes of $SIZE bytes"
    fi
    [[ $error == - ]] || ok=false
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
    mbps=$(awk -v n="$SIZE" -v s="$secs" 'BEGIN { printf "%.1f", n / s / 1e6 }')
    read -r su ss <<<"$(cpu_of "$run.send.cpu")"
    read -r ru rs <<<"$(cpu_of "$run.recv.cpu")"
    # CPU the machine spent during the run on anything but the two tools
    # and the counter: kernel threads, other processes
    other=$(awk -v j=$((b1 - b0)) -v hz="$HZ" -v c="$su $ss $ru $rs $(cpu_of "$run.count.cpu")" \
        'BEGIN { split(c, t, " "); x = j / hz; for (i in t) x -= t[i]; printf "%.2f", x < 0 ? 0 : x }')
    awk -v o="$other" -v s="$secs" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m * s) }' && disturbed=true

    if [[ $ok == false ]]; then
        say "  $tool #$rep: FAILED: $error"
    else
        say "  $tool #$rep: $mbps MB/s ($secs s; CPU s: send $su+$ss, recv $ru+$rs, other $other)"
    fi
    printf '%s\t' "$tool" "$rep" "$attempt" "$ok" "$disturbed" "$bytes" "$secs" "$mbps" "$su" "$ss" "$ru" "$rs" "$other"
    printf '%s\n' "$error"
    [[ $disturbed == false ]] || return 3
}

# measure_tool TOOL REP: measures, again while disturbed by other processes
# (ATTEMPTS times at most), and appends the last result to $RUNS.
measure_tool() {
    local attempt line
    for ((attempt = 1; ; attempt++)); do
        line=$(measure "$1" "$2" "$attempt") && break
        ((attempt < ATTEMPTS)) || break
        say "  (other processes kept more than $MAX_OTHER CPUs busy during that run: again)"
    done
    printf '%s\n' "$line" >>"$RUNS"
}

# ---------------------------------------------------------------- report
# Per tool over its good runs: median, min, max MB/s, and the median CPU
# seconds per GiB of sender and receiver. Prints "tool n median min max
# send_cpu recv_cpu" for each tool in TOOLS order.
summarize() {
    local tool
    for tool in $TOOLS; do
        awk -F'\t' -v t="$tool" -v size="$SIZE" '
            function median(a, n,    i, j, x) {   # sorts a[1..n]
                for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
                return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            }
            $1 == t && $4 == "true" { n++; m[n] = $8; s[n] = ($9 + $10) * 1073741824 / size; r[n] = ($11 + $12) * 1073741824 / size }
            END {
                if (!n) { print t, 0, "nan", "nan", "nan", "nan", "nan"; exit }
                med = median(m, n); lo = m[1]; hi = m[n]
                printf "%s %d %.1f %.1f %.1f %.3f %.3f\n", t, n, med, lo, hi, median(s, n), median(r, n)
            }' "$RUNS"
    done
}

print_tables() {
    local base
    base=$(awk '$1 == "netsmith" { print $3 }' <<<"$SUMMARY")
    echo
    printf '%-10s %-15s %-14s %s\n' tool "MB/s (median)" min-max "vs netsmith"
    while read -r tool n med lo hi _ _; do
        if ((n == 0)); then
            printf '%-10s %-15s %-14s %s\n' "$tool" FAILED - -
        else
            printf '%-10s %-15.0f %-14s %s\n' "$tool" "$med" "$(printf '%.0f-%.0f' "$lo" "$hi")" \
                "$(awk -v a="$med" -v b="$base" 'BEGIN { print (b ~ /^[0-9.]+$/ && b > 0 ? sprintf("%.2f", a / b) : "-") }')"
        fi
    done <<<"$SUMMARY"
    echo
    printf '%-10s %-18s %-20s %s\n' tool "sender CPU s/GiB" "receiver CPU s/GiB" total
    while read -r tool n _ _ _ scpu rcpu; do
        ((n == 0)) || printf '%-10s %-18s %-20s %.3f\n' "$tool" "$scpu" "$rcpu" "$(awk -v a="$scpu" -v b="$rcpu" 'BEGIN { print a + b }')"
    done <<<"$SUMMARY"
    echo
    echo "MB = 10^6 bytes; vs netsmith = tool MB/s / netsmith MB/s; CPU = user+sys, median."
    echo "On loopback the kernel's TCP receive work is charged to whichever side"
    echo "runs it, so the sender/receiver split of CPU is rough; the total is not."
    echo "$SIZE bytes per run, $REPS runs per tool; raw runs: ${JSON#"$ROOT"/}"
}

json_string() { "$PYTHON" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }

version_of() {
    case $1 in
        netsmith) "$NETSMITH" --version ;;
        nc) dpkg-query -W -f='netcat-openbsd ${Version}' netcat-openbsd 2>/dev/null || echo unknown ;;
        ncat) ncat --version 2>&1 | head -n 1 ;;
        socat) socat -V | sed -n 's/^socat version \([^ ]*\).*/socat \1/p' ;;
    esac
}

write_json() {
    mkdir -p "$(dirname "$JSON")"
    local tool sep=
    {
        printf '{\n  "benchmark": "%s",\n' "$NAME"
        printf '  "date": %s,\n' "$(json_string "$(date -u +%FT%TZ)")"
        printf '  "machine": {"kernel": %s, "cpus": %d, "cpu": %s},\n' \
            "$(json_string "$(uname -r)")" "$(nproc)" \
            "$(json_string "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)")"
        printf '  "bytes": %d, "reps": %d, "source": %s, "sink": "receiver stdout | byte counter (splice to /dev/null)",\n' \
            "$SIZE" "$REPS" "$(json_string "$SOURCE_DESC")"
        printf '  "mb": 1000000, "max_other_cpus": %s, "attempts": %d,\n  "tools": {\n' "$MAX_OTHER" "$ATTEMPTS"
        for tool in $TOOLS; do
            "${tool}_cmd" recv PORT
            local recv_line=${CMD[*]}
            "${tool}_cmd" send PORT
            printf '%s    "%s": {"version": %s, "recv": %s, "send": %s}' "$sep" "$tool" \
                "$(json_string "$(version_of "$tool")")" "$(json_string "$recv_line")" "$(json_string "${CMD[*]}")"
            sep=$',\n'
        done
        printf '\n  },\n  "summary": [\n'
        sep=
        while read -r tool n med lo hi scpu rcpu; do
            printf '%s    {"tool": "%s", "good_runs": %d, "mbps_median": %s, "mbps_min": %s, "mbps_max": %s, "send_cpu_s_per_gib": %s, "recv_cpu_s_per_gib": %s}' \
                "$sep" "$tool" "$n" "$(num "$med")" "$(num "$lo")" "$(num "$hi")" "$(num "$scpu")" "$(num "$rcpu")"
            sep=$',\n'
        done <<<"$SUMMARY"
        printf '\n  ],\n  "runs": [\n'
        sep=
        while IFS=$'\t' read -r tool rep attempt ok disturbed bytes secs mbps su ss ru rs other error; do
            printf '%s    {"tool": "%s", "rep": %d, "attempt": %d, "ok": %s, "disturbed": %s, "bytes": %d, "seconds": %s, "mbps": %s, "send_user": %s, "send_sys": %s, "recv_user": %s, "recv_sys": %s, "other_cpu": %s, "error": %s}' \
                "$sep" "$tool" "$rep" "$attempt" "$ok" "$disturbed" "$bytes" "$secs" "$mbps" \
                "$(num "$su")" "$(num "$ss")" "$(num "$ru")" "$(num "$rs")" "$other" \
                "$(if [[ $error == - ]]; then echo null; else json_string "$error"; fi)"
            sep=$',\n'
        done <"$RUNS"
        printf '\n  ]\n}\n'
    } >"$JSON"
}

num() { [[ $1 =~ ^-?[0-9.]+$ ]] && echo "$1" || echo null; }

# ---------------------------------------------------------------- main
main() {
    ((REPS >= 1)) || die "REPS must be at least 1"
    WORK=$(mktemp -d)
    WORK_SHM=
    [[ -d /dev/shm ]] && WORK_SHM=$(mktemp -d -p /dev/shm netsmith-bench.XXXXXX)
    trap cleanup EXIT
    HZ=$(getconf CLK_TCK)
    RUNS=$WORK/runs.tsv
    : >"$RUNS"

    prepare
    [[ -z $TLS ]] || make_certificate
    make_source
    say "tools: $TOOLS; $REPS runs each, $SIZE bytes per run; source: $SOURCE_DESC"
    local rep tool
    for ((rep = 1; rep <= REPS; rep++)); do
        say "round $rep/$REPS"
        for tool in $TOOLS; do
            measure_tool "$tool" "$rep"
        done
    done

    SUMMARY=$(summarize)
    write_json
    print_tables
    # exit 1 if any run failed
    ! awk -F'\t' '$4 == "false" { bad = 1 } END { exit !bad }' "$RUNS"
}

main "$@"
