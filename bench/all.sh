#!/usr/bin/env bash
# Every comparison of README in one run: bench/pipe.sh, bench/serve.sh and
# bench/scan.sh in turn, then one table of all their figures
# (bench/all_report.py), and bench/results/all.json with the three JSON
# files and a summary array. About 9 minutes on the 2-core VM, plus about
# 3 the first time (builds, cargo install rustscan, apt-get).
#
#   sudo bench/all.sh                        # REPS=3, DURATION=3, SIZE=1 GiB
#   REPS=5 DURATION=4 bench/all.sh           # longer (about 17 min)
#   python3 bench/all_report.py              # the table again, from the results
#
# Settings: REPS (3, every script), DURATION (3 s per serve.sh run), SIZE
# (bytes per pipe.sh run, 1 GiB). Any other setting in the environment
# reaches every script that reads it; TOOLS, TIMEOUT, QUIET_WAIT, MAX_OTHER
# and ATTEMPTS are read by more than one, with different meanings or
# defaults, so set those on a script run alone.
#
# Each script installs its own missing peers as root (apt-get, and cargo
# install for RustScan) and builds netsmith; serve.sh builds the tokio echo
# server in bench/tokio-echo. Each script's own tables go to
# bench/results/<script>.txt, its progress to stderr. A script that fails
# leaves the others to run; the table then marks its results as old.
# Exit status: 0, 1 if a run of some script failed (ncat's deadlock is one),
# 2 if a script could not run at all.

set -uo pipefail
export LC_ALL=C

export REPS=${REPS:-3}
export DURATION=${DURATION:-3}
export SIZE=${SIZE:-$((1 << 30))}

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
RESULTS=$BENCH/results

say() { printf '%s\n' "$*" >&2; }
die() { say "${0##*/}: $*"; exit 2; }

# 125 -> "2 min 5 s"
minutes() { awk -v s="$1" 'BEGIN { s = int(s + 0.5); if (s >= 60) printf "%d min %d s", s / 60, s % 60; else printf "%d s", s }'; }

main() {
    ((EUID == 0)) || die "needs root: scan.sh's namespaces, inetd's and xinetd's services, and installing peers"
    [[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be at least 1"
    mkdir -p "$RESULTS"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT

    local t0=$EPOCHREALTIME t1 name rc worst=0 elapsed='' stale='' secs
    local -A took=()
    for name in pipe serve scan; do
        say ""
        case $name in
            pipe) say "== bench/pipe.sh (REPS=$REPS, SIZE=$SIZE)" ;;
            serve) say "== bench/serve.sh (REPS=$REPS, DURATION=$DURATION)" ;;
            scan) say "== bench/scan.sh (REPS=$REPS)" ;;
        esac
        touch "$WORK/mark"
        t1=$EPOCHREALTIME
        rc=0
        bash "$BENCH/$name.sh" >"$RESULTS/$name.txt" || rc=$?
        secs=$(awk -v a="$t1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
        elapsed+="$name=$secs " took[$name]=$secs
        # Ctrl-C: scan.sh and serve.sh exit 130, pipe.sh dies of SIGINT
        ((rc == 130)) && { say "interrupted"; exit 130; }
        if [[ ! $RESULTS/$name.json -nt $WORK/mark ]]; then
            say "bench/$name.sh exited $rc and wrote no results: the table shows the old ones, if any"
            stale+="$name "
            worst=2
        elif ((rc != 0)); then
            say "bench/$name.sh exited $rc: some runs failed (the table says which)"
            ((worst >= 1)) || worst=1
        fi
        say "bench/$name.sh: $(minutes "$secs")"
    done
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    elapsed+="total=$secs"

    # the scripts have installed python3 if it was missing
    local python
    python=$(command -v /usr/bin/python3 || command -v python3) || die "python3 is needed"
    echo
    ALL_ELAPSED=$elapsed ALL_STALE=$stale "$python" "$BENCH/all_report.py" "$RESULTS" || worst=2
    echo "each script's own tables: ${RESULTS#"$ROOT"/}/{pipe,serve,scan}.txt"
    echo
    echo "elapsed: $(minutes "$secs") (pipe.sh $(minutes "${took[pipe]}"), serve.sh $(minutes "${took[serve]}")," \
        "scan.sh $(minutes "${took[scan]}"))"
    return "$worst"
}

main "$@"
