#!/usr/bin/env bash
# Full TCP scans (ports 1-65535) of one host with five open ports: netsmith
# scan against nmap, RustScan, OpenBSD nc -z and a plain sequential Python
# connect_ex loop, on two hosts this script builds out of network namespaces
# of its own:
#
#   loopback    127.0.0.1 in a fresh namespace (scanner and listeners both
#               in it); closed ports answer at once with a RST
#   firewalled  10.77.0.2 in a target namespace, scanned from a scanner
#               namespace across a veth pair; nftables in the target drops
#               every SYN except to the five ports, so 65,530 ports never
#               answer and the per-attempt timeout decides everything
#
#   bench/scan.sh                  # 3 runs per tool and setup (~3 min)
#   bench/scan.sh -n 5             # 5 runs (or REPS=5)
#   SETUPS=loopback TOOLS="netsmith nmap-rate" bench/scan.sh
#
# One run: the machine idle, then the scanner under /usr/bin/time (user+sys
# CPU, peak RSS) and `timeout`, inside the scanner's namespace; the open
# ports it reports are compared with the five listening ones, and a tool that
# missed or invented one is marked WRONG. Tools run round-robin, one run of
# each per repetition. On the firewalled host, the tools that would take
# from a minute to a day (SLOW_TOOLS: nmap -T5 without --min-rate, nc -z,
# Python) run once, after the rounds, stopped after SLOW_LIMIT seconds and
# reported as "> SLOW_LIMIT s (stopped)" with an estimate of their full time.
#
# Network: traffic goes only to 127.0.0.1 of a namespace made here, and to
# 10.77.0.2 across the veth pair between the two namespaces made here. They
# have no other interface and no route out. Namespaces and every process in
# them are removed on exit. Raw runs go to bench/results/scan.json.

set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers

REPS=${REPS:-3}
SETUPS=${SETUPS:-"loopback firewalled"}
TOOLS=${TOOLS:-"netsmith nmap nmap-rate rustscan nc python"}
SLOW_TOOLS=${SLOW_TOOLS:-"nmap nc python"} # on the firewalled host only
SLOW_LIMIT=${SLOW_LIMIT:-15}
TIMEOUT=${TIMEOUT:-120}
QUIET_WAIT=${QUIET_WAIT:-15}
MAX_OTHER=${MAX_OTHER:-0.5}
ATTEMPTS=${ATTEMPTS:-2}
OPEN_PORTS=${OPEN_PORTS:-"22 80 443 8080 9000"}
RUSTSCAN_BATCH=${RUSTSCAN_BATCH:-} # empty: the hard descriptor limit minus a margin

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
NETSMITH=$ROOT/target/release/netsmith
JSON=$BENCH/results/scan.json

# Names unique to this invocation; a veth name has at most 15 characters.
NS_LO=netsmith-bench-lo-$$
NS_SCAN=netsmith-bench-scan-$$
NS_TARGET=netsmith-bench-target-$$
VETH_SCAN=nsbs$$
VETH_TARGET=nsbt$$
SCAN_ADDR=10.77.0.1
TARGET_ADDR=10.77.0.2

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

# ---------------------------------------------------------------- the tools
# <tool>_cmd HOST sets CMD to the command line that scans every TCP port of
# HOST the way a user would run it, with its default output.

netsmith_cmd() {
    CMD=("$NETSMITH" scan "$1" -p-)
    [[ $1 == 127.* ]] || CMD+=(--authorized)
}

# -T5 alone: nmap's own timing (initial RTT timeout 250 ms, 2 retries).
nmap_cmd() { CMD=(nmap -sT -p- -T5 -n -Pn "$1"); }

# --min-rate 20000: nmap told to go at least that fast.
nmap-rate_cmd() { CMD=(nmap -sT -p- -T5 -n -Pn --min-rate 20000 "$1"); }

# RustScan's fastest honest settings for this machine: a batch as large as
# the hard descriptor limit allows, its default 1.5 s timeout, one try, no
# nmap afterwards (-g), no config file.
rustscan_cmd() {
    CMD=("$RUSTSCAN" -a "$1" -r 1-65535 -b "$RUSTSCAN_BATCH" -t 1500 -g --ulimit "$NOFILE_HARD" --tries 1 --no-config)
}

# -v: without it nc -z says nothing about which ports answered.
nc_cmd() { CMD=(nc.openbsd -z -v -w 1 "$1" 1-65535); }

# The loop every tutorial shows, with a 1 s timeout like nc -w 1. The SIGTERM
# handler only tells how far it got when `timeout` stops it.
PYSCAN='
import signal, socket, sys
host, port = sys.argv[1], 0
def stopped(*_):
    print(f"stopped at port {port}", file=sys.stderr)
    sys.exit(124)
signal.signal(signal.SIGTERM, stopped)
for port in range(1, 65536):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    if s.connect_ex((host, port)) == 0:
        print(port, flush=True)
    s.close()'
python_cmd() { CMD=("$PYTHON" -c "$PYSCAN" "$1"); }

# <tool>_ports OUT ERR: the open ports the tool reported, one per line.
netsmith_ports() { awk '$1 ~ /^[0-9]+\/tcp$/ && $2 == "open" { sub("/tcp", "", $1); print $1 }' "$1"; }
nmap_ports() { netsmith_ports "$@"; }
nmap-rate_ports() { netsmith_ports "$@"; }
rustscan_ports() { grep -o -- '-> \[[0-9,]*\]' "$1" | tr -d '>[] -' | tr ',' '\n'; }
nc_ports() { sed -n 's/^Connection to [^ ]* \([0-9]*\) port .* succeeded!$/\1/p' "$2"; }
python_ports() { grep -E '^[0-9]+$' "$1" || true; }

# <tool>_progress OUT ERR SECONDS, for a run stopped by SLOW_LIMIT: prints
# "ports_done estimated_total_seconds" (ports_done empty when unknown).
nmap_progress() {
    # its own estimate, from --stats-every: "Stats: 0:00:15 elapsed ..." and
    # "About 17.79% done; ETC: 12:36 (0:01:09 remaining)"
    awk '/^Stats: / { split($2, t, ":"); e = t[1] * 3600 + t[2] * 60 + t[3] }
         /About .*% done.*remaining/ { p = $0; sub(/.*About /, "", p); sub(/%.*/, "", p)
             r = $0; sub(/.*\(/, "", r); sub(/ remaining.*/, "", r); split(r, u, ":")
             pct = p; est = e + u[1] * 3600 + u[2] * 60 + u[3] }
         END { if (pct != "") printf "%d %.0f\n", pct * 655.35, est }' "$1"
}
nc_progress() {
    local n
    n=$(grep -c ' port ' "$2" || true)
    echo "$n $(awk -v n="$n" -v s="$3" 'BEGIN { print n ? s * 65535 / n : "nan" }')"
}
nmap-rate_progress() { nmap_progress "$@"; }
netsmith_progress() { echo "- nan"; }
rustscan_progress() { echo "- nan"; }
python_progress() {
    local n
    n=$(sed -n 's/^stopped at port \([0-9]*\)$/\1/p' "$2")
    echo "${n:-} $(awk -v n="${n:-0}" -v s="$3" 'BEGIN { print n ? s * 65535 / n : "nan" }')"
}

version_of() {
    case $1 in
        netsmith) "$NETSMITH" --version ;;
        nmap | nmap-rate) nmap --version | head -n 1 ;;
        rustscan) "$RUSTSCAN" --version ;;
        nc) dpkg-query -W -f='netcat-openbsd ${Version}' netcat-openbsd 2>/dev/null || echo unknown ;;
        python) "$PYTHON" --version ;;
    esac
}

# ---------------------------------------------------------------- set-up

# Installs what is missing (as root: apt-get, cargo install), drops peers
# that are still missing, and builds netsmith.
prepare() {
    ((EUID == 0)) || die "needs root (network namespaces, nftables)"
    local missing=() tool kept=()
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v nft >/dev/null || missing+=(nftables)
    [[ -x /usr/bin/python3 ]] || command -v python3 >/dev/null || missing+=(python3)
    [[ " $TOOLS " != *" nmap"* ]] || command -v nmap >/dev/null || missing+=(nmap)
    [[ " $TOOLS " != *" nc "* ]] || command -v nc.openbsd >/dev/null || missing+=(netcat-openbsd)
    install_missing ${missing[@]+"${missing[@]}"}
    [[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (Debian package: time)"
    command -v ip >/dev/null || die "ip is needed (Debian package: iproute2)"
    command -v nft >/dev/null || die "nft is needed (Debian package: nftables)"
    # The system's python starts faster than a version manager's shim.
    PYTHON=$(command -v /usr/bin/python3 || command -v python3) || die "python3 is needed"

    RUSTSCAN=${RUSTSCAN:-$(command -v rustscan || echo "${CARGO_HOME:-$HOME/.cargo}/bin/rustscan")}
    if [[ " $TOOLS " == *" rustscan "* && ! -x $RUSTSCAN ]] && command -v cargo >/dev/null; then
        say "installing rustscan (cargo install rustscan)"
        cargo install --quiet --locked rustscan >&2 || say "cargo install rustscan failed"
        RUSTSCAN=${CARGO_HOME:-$HOME/.cargo}/bin/rustscan
    fi

    declare -A have=([netsmith]=1 [nmap]=$(command -v nmap)
        [nmap-rate]=$(command -v nmap) [rustscan]=$([[ -x $RUSTSCAN ]] && echo "$RUSTSCAN")
        [nc]=$(command -v nc.openbsd) [python]=$PYTHON)
    for tool in $TOOLS; do
        [[ -v "have[$tool]" ]] || die "unknown tool $tool (netsmith nmap nmap-rate rustscan nc python)"
        if [[ -n ${have[$tool]} ]]; then kept+=("$tool"); else say "skipping $tool: not found"; fi
    done
    TOOLS=${kept[*]}
    [[ " $TOOLS " == *" netsmith "* ]] || die "netsmith must be among TOOLS (it is the baseline)"

    NOFILE_HARD=$(ulimit -Hn)
    [[ $NOFILE_HARD == unlimited ]] && NOFILE_HARD=1048576
    if [[ -z $RUSTSCAN_BATCH ]]; then
        # room for RustScan's own descriptors, with a margin: 5 %, at least 100
        local margin=$((NOFILE_HARD / 20 > 100 ? NOFILE_HARD / 20 : 100))
        RUSTSCAN_BATCH=$((NOFILE_HARD - margin > 100 ? NOFILE_HARD - margin : 100))
        ((RUSTSCAN_BATCH <= 65535)) || RUSTSCAN_BATCH=65535
    fi

    if command -v cargo >/dev/null; then
        say "building netsmith (release)"
        cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" >&2
    fi
    [[ -x $NETSMITH ]] || die "no $NETSMITH and no cargo to build it"
}

# Accepts and closes every connection to the given ports of ADDR until
# `timeout` ends it.
LISTENER='
import selectors, socket, sys
sel = selectors.DefaultSelector()
for p in sys.argv[2:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(p)))
    s.listen(1024)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        try:
            key.fileobj.accept()[0].close()
        except OSError:
            pass'

# start_listeners NS ADDR: five ports listening on ADDR in NS, bounded by
# LISTEN_LIMIT; waits (up to 10 s) until all listen.
start_listeners() {
    local ns=$1 addr=$2 i p n
    # shellcheck disable=SC2086 # one argument per port
    ip netns exec "$ns" timeout "$LISTEN_LIMIT" "$PYTHON" -c "$LISTENER" "$addr" $OPEN_PORTS \
        </dev/null >/dev/null 2>"$WORK/listen.$ns.err" &
    disown $! # cleanup ends it, without a "Killed" notice from bash
    for ((i = 0; i < 1000; i++)); do
        n=0
        for p in $OPEN_PORTS; do
            ip netns exec "$ns" ss -Hltn "src $addr:$p" | grep -q . && n=$((n + 1))
        done
        ((n == $(wc -w <<<"$OPEN_PORTS"))) && return 0
        sleep 0.01
    done
    die "listeners in $ns not up after 10 s: $(head -c 300 "$WORK/listen.$ns.err")"
}

# The loopback host: a namespace with lo up and the five listeners.
setup_loopback() {
    ip netns add "$NS_LO"
    echo "$NS_LO" >>"$WORK/namespaces"
    ip -n "$NS_LO" link set lo up
    start_listeners "$NS_LO" 127.0.0.1
}

# The firewalled host: the target namespace across a veth pair from the
# scanner's, nftables in the target dropping every SYN but to the five.
setup_firewalled() {
    local ns ports
    for ns in "$NS_SCAN" "$NS_TARGET"; do
        ip netns add "$ns"
        echo "$ns" >>"$WORK/namespaces"
        ip -n "$ns" link set lo up
    done
    ip link add "$VETH_SCAN" netns "$NS_SCAN" type veth peer name "$VETH_TARGET" netns "$NS_TARGET"
    ip -n "$NS_SCAN" addr add "$SCAN_ADDR/24" dev "$VETH_SCAN"
    ip -n "$NS_TARGET" addr add "$TARGET_ADDR/24" dev "$VETH_TARGET"
    ip -n "$NS_SCAN" link set "$VETH_SCAN" up
    ip -n "$NS_TARGET" link set "$VETH_TARGET" up
    ports=$(tr ' ' ',' <<<"$OPEN_PORTS")
    printf 'table inet fw {\n chain input {\n  type filter hook input priority 0;\n  tcp dport {%s} accept\n  tcp flags syn drop\n }\n}\n' \
        "$ports" | ip netns exec "$NS_TARGET" nft -f -
    start_listeners "$NS_TARGET" "$TARGET_ADDR"
}

# Ends every process in our namespaces (the listeners, a scanner still
# running), then removes the namespaces; the veth pair goes with them.
cleanup() {
    local ns pid
    if [[ -s ${WORK:-/nonexistent}/namespaces ]]; then
        while read -r ns; do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        done <"$WORK/namespaces"
        while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done <"$WORK/namespaces"
    fi
    rm -rf "${WORK:?}"
}

# ---------------------------------------------------------------- one run
# measure SETUP TOOL REP ATTEMPT LIMIT: one scan, stopped after LIMIT
# seconds. Prints one tab-separated line: setup tool rep attempt status
# disturbed seconds user sys maxrss_kb other found verdict ports_done
# estimate error. status: ok, stopped (LIMIT reached on a slow run) or
# failed. Returns 3 if other processes kept more than MAX_OTHER CPUs busy on
# average meanwhile (a disturbed run, worth repeating).
measure() {
    local setup=$1 tool=$2 rep=$3 attempt=$4 limit=$5 ns host run rc=0 t0 t1 b0 b1 secs
    local user=nan sys=nan rss=nan other found verdict=- ndone=- est=- error=- status=ok disturbed=false
    case $setup in
        loopback) ns=$NS_LO host=127.0.0.1 ;;
        firewalled) ns=$NS_SCAN host=$TARGET_ADDR ;;
    esac
    run=$WORK/$setup.$tool.$rep.$attempt
    "${tool}_cmd" "$host"
    # a stopped nmap says how far it got only if asked as it goes
    [[ $limit == "$TIMEOUT" || $tool != nmap* ]] || CMD+=(--stats-every 2s)
    printf '%s\n' "${CMD[*]}" >"$run.cmd"

    wait_quiet
    b0=$(busy_jiffies)
    t0=$EPOCHREALTIME
    # in the background, so that a signal to the script is handled at once
    ip netns exec "$ns" /usr/bin/time -f '%U %S %M' -o "$run.time" \
        timeout -k 5 "$limit" "${CMD[@]}" </dev/null >"$run.out" 2>"$run.err" &
    wait $! || rc=$?
    t1=$EPOCHREALTIME
    b1=$(busy_jiffies)

    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    read -r user sys rss <<<"$(tail -n 1 "$run.time" 2>/dev/null || echo "nan nan nan")"
    [[ $user =~ ^[0-9.]+$ ]] || user=nan sys=nan rss=nan
    found=$("${tool}_ports" "$run.out" "$run.err" | sort -nu | tr '\n' ' ' | sed 's/ $//')
    if ((rc == 124 || rc == 137)); then
        if [[ $limit == "$TIMEOUT" ]]; then
            status=failed error="still running after $TIMEOUT s (timeout)"
        else
            status=stopped
            read -r ndone est <<<"$("${tool}_progress" "$run.out" "$run.err" "$secs")"
            ndone=${ndone:--} est=${est:-nan}
        fi
    elif ((rc != 0)) && ! [[ $tool == nc && $rc == 1 ]]; then
        status=failed error="exited $rc: $(head -c 300 "$run.err" | tr '\n\t' '  ')"
    fi
    if [[ $status == ok ]]; then
        if [[ $found == "$EXPECTED" ]]; then
            verdict=exact
        else
            verdict="WRONG:$(comm -3 <(tr ' ' '\n' <<<"$EXPECTED" | sort) <(tr ' ' '\n' <<<"$found" | sort) |
                awk -F'\t' '$1 != "" { printf " -%s", $1 } $2 != "" { printf " +%s", $2 }')"
        fi
    fi
    # CPU the machine spent during the run on anything but the scanner:
    # kernel threads (softirq work of the scan lands partly there), the
    # listeners, other processes
    other=$(awk -v j=$((b1 - b0)) -v hz="$HZ" -v u="$user" -v s="$sys" \
        'BEGIN { x = j / hz - (u == "nan" ? 0 : u + s); printf "%.2f", x < 0 ? 0 : x }')
    awk -v o="$other" -v s="$secs" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m * s) }' && disturbed=true

    case $status in
        ok) say "  $setup $tool #$rep: $secs s, CPU $user+$sys s, peak $((rss / 1024)) MiB, other $other;" \
            "ports: $found$([[ $verdict == exact ]] || echo " ($verdict)")" ;;
        stopped) say "  $setup $tool: stopped after $secs s (SLOW_LIMIT), $ndone ports done, estimated total $est s" ;;
        failed) say "  $setup $tool #$rep: FAILED: $error" ;;
    esac
    printf '%s\t' "$setup" "$tool" "$rep" "$attempt" "$status" "$disturbed" "$secs" "$user" "$sys" "$rss" \
        "$other" "${found:--}" "$verdict" "$ndone" "$est"
    printf '%s\n' "$error"
    # a wrong answer is kept, not measured again: it is not the machine's fault
    [[ $disturbed == false || $status != ok || $verdict != exact ]] || return 3
}

# measure_tool SETUP TOOL REP LIMIT: measures, again while disturbed by
# other processes (ATTEMPTS times at most), and appends the last result to
# $RUNS.
measure_tool() {
    local attempt line
    for ((attempt = 1; ; attempt++)); do
        line=$(measure "$1" "$2" "$3" "$attempt" "$4") && break
        ((attempt < ATTEMPTS)) || break
        say "  (other processes kept more than $MAX_OTHER CPUs busy during that run: again)"
    done
    printf '%s\n' "$line" >>"$RUNS"
}

is_slow() { [[ $1 == firewalled && " $SLOW_TOOLS " == *" $2 "* ]]; }

# ---------------------------------------------------------------- report
# Reads $RUNS and $WORK/tools.tsv; prints the tables and writes $JSON.
REPORT=$(
    cat <<'EOF'
import json, os, statistics, sys

from report_common import duration, num

runs_file, tools_file, out = sys.argv[1:4]
env = os.environ
FIELDS = ("setup tool rep attempt status disturbed seconds user sys maxrss_kb other_cpu found verdict"
          " ports_done estimate_s error").split()


runs = []
for line in open(runs_file):
    r = dict(zip(FIELDS, line.rstrip("\n").split("\t")))
    r["rep"], r["attempt"] = int(r["rep"]), int(r["attempt"])
    for k in ("seconds", "user", "sys", "maxrss_kb", "other_cpu", "estimate_s"):
        r[k] = num(r[k])
    r["ports_done"] = int(r["ports_done"]) if r["ports_done"].isdigit() else None
    r["disturbed"] = r["disturbed"] == "true"
    r["found"] = [] if r["found"] == "-" else [int(p) for p in r["found"].split()]
    r["cpu"] = None if r["user"] is None else round(r["user"] + r["sys"], 2)
    if r["maxrss_kb"] is not None:
        r["maxrss_kb"] = int(r["maxrss_kb"])
    r["peak_mb"] = None if r["maxrss_kb"] is None else round(r["maxrss_kb"] * 1024 / 1e6, 1)
    for k in ("verdict", "error"):
        r[k] = None if r[k] == "-" else r[k]
    runs.append(r)

tools = {}
for line in open(tools_file):
    t, version, lo, fw = line.rstrip("\n").split("\t")
    tools[t] = {"version": version, "loopback": lo, "firewalled": fw}
    if t == "python":
        tools[t]["PYSCAN"] = env["PYSCAN"].strip("\n")
setups, order = env["SETUPS"].split(), env["TOOLS"].split()
expected = [int(p) for p in env["EXPECTED"].split()]
limit = float(env["SLOW_LIMIT"])


summary, lines = [], []
for setup in setups:
    rows = {}
    for t in order:
        rs = [r for r in runs if r["setup"] == setup and r["tool"] == t]
        if not rs:
            continue
        good = [r for r in rs if r["status"] == "ok"]
        row = {"setup": setup, "tool": t, "runs": len(rs), "finished": len(good)}
        if good:
            w = sorted(r["seconds"] for r in good)
            c = [r["cpu"] for r in good if r["cpu"] is not None]
            m = [r["peak_mb"] for r in good if r["peak_mb"] is not None]
            wrong = [r for r in good if r["verdict"] != "exact"]
            row.update(wall_median=round(statistics.median(w), 3), wall_min=w[0], wall_max=w[-1],
                       cpu_median=round(statistics.median(c), 2) if c else None,
                       peak_mb_median=round(statistics.median(m), 1) if m else None,
                       exact=not wrong, wrong_runs=len(wrong),
                       wrong=list(dict.fromkeys(r["verdict"][len("WRONG:"):].strip() for r in wrong)))
        stopped = [r for r in rs if r["status"] == "stopped"]
        if stopped and not good:
            s = stopped[0]
            row.update(stopped_after=round(s["seconds"], 1), ports_done=s["ports_done"],
                       estimate_s=s["estimate_s"], cpu_until_stopped=s["cpu"])
        failed = [r for r in rs if r["status"] == "failed"]
        if failed:
            row.update(failed=len(failed), error=failed[0]["error"])
        rows[t] = row
        summary.append(row)

    base = rows.get("netsmith", {})

    def ratio(row, k):
        a, b = row.get(k), base.get(k)
        return f"{a / b:.2f}" if a is not None and b else "-"

    n = len(expected)
    if setup == "loopback":
        lines.append(f"loopback: ports 1-65535 of 127.0.0.1 in a fresh namespace, {n} listening ({env['EXPECTED']})")
    else:
        lines.append(f"firewalled: ports 1-65535 of {env['TARGET_ADDR']} across a veth pair; its firewall drops"
                     f" every SYN but to the {n} listening")
    lines.append(f"{'tool':<10} {'wall s':>8} {'min-max':>11} {'vs netsmith':>11} {'CPU s':>7} {'vs netsmith':>11}"
                 f" {'peak MB':>8} {'vs netsmith':>11}  ports")
    for t, row in rows.items():
        if row["finished"]:
            if row["exact"]:
                ports = "exact"
            else:
                ports = f"WRONG in {row['wrong_runs']} of {row['finished']}: " + "; ".join(row["wrong"])
            if row.get("failed"):
                ports += f" ({row['failed']} failed: {row['error']})"
            cpu = "-" if row["cpu_median"] is None else f"{row['cpu_median']:.2f}"
            mem = "-" if row["peak_mb_median"] is None else f"{row['peak_mb_median']:.1f}"
            spread = f"{row['wall_min']:.2f}-{row['wall_max']:.2f}"
            lines.append(f"{t:<10} {row['wall_median']:>8.2f} {spread:>11} {ratio(row, 'wall_median'):>11}"
                         f" {cpu:>7} {ratio(row, 'cpu_median'):>11} {mem:>8} {ratio(row, 'peak_mb_median'):>11}  {ports}")
        elif "stopped_after" in row:
            d = row["ports_done"]
            if d is None:
                how = "progress unknown"
            elif t.startswith("nmap"):
                how = f"{d / 655.35:.0f} % done"
            else:
                how = f"at port {d:,} ({d / 655.35:.2f} %)"
            src = "nmap's own ETC" if t.startswith("nmap") else "extrapolated"
            vs = f">{limit / base['wall_median']:.0f}" if base.get("wall_median") else "-"
            lines.append(f"{t:<10} {'>' + format(limit, '.0f'):>8} {'(stopped)':>11} {vs:>11} {'-':>7} {'-':>11}"
                         f" {'-':>8} {'-':>11}  {how}; whole scan ~{duration(row['estimate_s'])} ({src})")
        else:
            lines.append(f"{t:<10} {'FAILED':>8}  {row.get('error')}")

    peers = [r for t, r in rows.items() if t != "netsmith" and r["finished"]]
    if base.get("finished") and peers:
        yes = lambda b: "yes" if b else "NO"
        fast = min(peers, key=lambda r: r["wall_median"])
        q = base["wall_median"] / fast["wall_median"]
        cpus = [r for r in peers if r["cpu_median"] is not None]
        low = min(cpus, key=lambda r: r["cpu_median"]) if cpus else None
        less_cpu = bool(low) and base["cpu_median"] is not None and base["cpu_median"] < low["cpu_median"]
        small = base["peak_mb_median"] is not None and base["peak_mb_median"] < 30
        goal = [f"exact {yes(base['exact'])}",
                f"wall {q:.2f} of the fastest peer's ({fast['tool']}{'' if fast['exact'] else ', WRONG'}; goal <= 0.5) {yes(q <= 0.5)}"]
        if low:
            goal.append(f"less CPU than any peer (least: {low['tool']} {low['cpu_median']:.2f} s) {yes(less_cpu)}")
        goal.append(f"peak under 30 MB {yes(small)}")
        lines.append("goals for netsmith: " + "; ".join(goal))
        base["goals"] = {"exact": base["exact"], "fastest_peer": fast["tool"], "wall_vs_fastest_peer": round(q, 3),
                         "less_cpu_than_any_peer": less_cpu, "peak_under_30mb": small}
    lines.append("")

lines.append(f"wall: median of {env['REPS']} runs with min-max; a stopped tool ran once, for SLOW_LIMIT={limit:.0f} s")
lines.append("CPU = user+sys of the scanner (median); peak = its max RSS (median); MB = 10^6 bytes")
lines.append("vs netsmith = tool / netsmith; raw runs: " + os.path.relpath(out, env["ROOT"]))
print("\n".join(lines))

doc = {"benchmark": "scan", "date": env["DATE"],
       "machine": {"kernel": env["KERNEL"], "cpus": int(env["CPUS"]), "cpu": env["CPU_MODEL"],
                   "nofile_hard": int(env["NOFILE_HARD"])},
       "reps": int(env["REPS"]), "slow_limit_s": limit, "slow_tools": env["SLOW_TOOLS"].split(),
       "open_ports": expected, "targets": {"loopback": "127.0.0.1", "firewalled": env["TARGET_ADDR"]},
       "mb": 1000000, "max_other_cpus": float(env["MAX_OTHER"]), "attempts": int(env["ATTEMPTS"]),
       "tools": tools, "summary": summary, "runs": runs}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
EOF
)

write_tools() {
    local tool lo fw
    for tool in $TOOLS; do
        "${tool}_cmd" 127.0.0.1
        lo=${CMD[*]}
        "${tool}_cmd" "$TARGET_ADDR"
        fw=${CMD[*]}
        [[ $tool != python ]] || lo="python3 -c PYSCAN 127.0.0.1" fw="python3 -c PYSCAN $TARGET_ADDR"
        printf '%s\t%s\t%s\t%s\n' "$tool" "$(version_of "$tool" 2>/dev/null | head -n 1 || echo unknown)" "$lo" "$fw"
    done >"$WORK/tools.tsv"
}

# ---------------------------------------------------------------- main
main() {
    while getopts 'n:h' opt; do
        case $opt in
            n) REPS=$OPTARG ;;
            h) usage 0 ;;
            *) usage 2 ;;
        esac
    done
    [[ $REPS =~ ^[1-9][0-9]*$ ]] || die "the number of runs (-n, REPS) must be at least 1"
    [[ $SLOW_LIMIT =~ ^[1-9][0-9]*$ ]] || die "SLOW_LIMIT must be whole seconds, at least 1"
    local setup tool rep
    for setup in $SETUPS; do
        [[ $setup == loopback || $setup == firewalled ]] || die "unknown setup $setup (loopback firewalled)"
    done
    WORK=$(mktemp -d)
    : >"$WORK/namespaces"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    HZ=$(getconf CLK_TCK)
    RUNS=$WORK/runs.tsv
    : >"$RUNS"
    EXPECTED=$(tr ' ' '\n' <<<"$OPEN_PORTS" | sort -n | tr '\n' ' ' | sed 's/ $//')
    prepare
    # a bound for the listeners: every run at its longest, and then some
    LISTEN_LIMIT=$(((REPS * ATTEMPTS * 6 + 6) * (TIMEOUT + QUIET_WAIT + 10) + 300))

    say "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
        "ulimit -Hn $NOFILE_HARD, Linux $(uname -r)"
    say "tools: $TOOLS; setups: $SETUPS; $REPS runs each; RustScan batch $RUSTSCAN_BATCH"
    for setup in $SETUPS; do "setup_$setup"; done
    write_tools

    for ((rep = 1; rep <= REPS; rep++)); do
        say "round $rep/$REPS"
        for setup in $SETUPS; do
            for tool in $TOOLS; do
                is_slow "$setup" "$tool" || measure_tool "$setup" "$tool" "$rep" "$TIMEOUT"
            done
        done
    done
    if [[ " $SETUPS " == *" firewalled "* ]]; then
        for tool in $TOOLS; do
            if is_slow firewalled "$tool"; then
                say "firewalled $tool: once, stopped if still running after SLOW_LIMIT=$SLOW_LIMIT s"
                measure_tool firewalled "$tool" 1 "$SLOW_LIMIT"
            fi
        done
    fi

    mkdir -p "$(dirname "$JSON")"
    echo
    echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
        "ulimit -Hn $NOFILE_HARD, Linux $(uname -r)"
    while IFS=$'\t' read -r tool version _ _; do echo "  $tool: $version"; done <"$WORK/tools.tsv"
    echo
    SETUPS=$SETUPS TOOLS=$TOOLS EXPECTED=$EXPECTED SLOW_LIMIT=$SLOW_LIMIT SLOW_TOOLS=$SLOW_TOOLS \
        REPS=$REPS TARGET_ADDR=$TARGET_ADDR ROOT=$ROOT DATE=$(date -u +%FT%TZ) KERNEL=$(uname -r) \
        CPUS=$(nproc) CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) \
        NOFILE_HARD=$NOFILE_HARD MAX_OTHER=$MAX_OTHER ATTEMPTS=$ATTEMPTS PYSCAN=$PYSCAN \
        PYTHONPATH="$BENCH" "$PYTHON" -c "$REPORT" "$RUNS" "$WORK/tools.tsv" "$JSON"
    # exit 1 if any run failed
    ! awk -F'\t' '$5 == "failed" { bad = 1 } END { exit !bad }' "$RUNS"
}

main "$@"
