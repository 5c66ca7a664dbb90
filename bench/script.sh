#!/usr/bin/env bash
# A scripted dialogue, side by side: STEPS sendline/expect pairs with a line
# echo server (`netsmith serve echo`), each tool the way its users write it:
#
#   netsmith script FILE      sendline "line N" / expect "line N\n"
#   pwntools                  r.sendline(b"line N"); r.recvuntil(b"line N\n")
#   expect (Tcl)              spawn nc ...; send "line N\r"; expect "line N"
#
#   bench/script.sh                 # STEPS=1000, REPS=5
#   STEPS=200 REPS=3 bench/script.sh
#
# Each run is the whole command, start-up included, timed by the shell; the
# table gives the median of REPS runs per tool, alternated, and the start-up
# alone: the same tool with a one-step dialogue (connect, one round trip).
# pwntools is installed from PyPI into a virtualenv under $PWN_VENV (default
# /tmp/netsmith-bench-pwn) for this benchmark only; expect comes from
# Debian's `expect` package, and reaches the server through OpenBSD nc (it
# talks to programs, not sockets), its pty raw and without echo
# (`stty_init`) so that it matches the server's answer, not its own echo. Every run checks that each answer came back.
#
# The table and ratios go to stdout and bench/results/script.txt.

set -euo pipefail
export LC_ALL=C
STEPS=${STEPS:-1000}
REPS=${REPS:-5}
QUIET_WAIT=${QUIET_WAIT:-20}
PWN_VENV=${PWN_VENV:-/tmp/netsmith-bench-pwn}
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
N=$ROOT/target/release/netsmith
PYTHON=$(command -v python3) || die "python3 is needed"
HZ=$(getconf CLK_TCK)
missing=()
command -v expect >/dev/null || missing+=(expect)
command -v nc.openbsd >/dev/null || missing+=(netcat-openbsd)
install_missing ${missing[@]+"${missing[@]}"}
if [[ ! -x $PWN_VENV/bin/python ]]; then
  say "installing pwntools into $PWN_VENV (for this benchmark only)"
  "$PYTHON" -m venv "$PWN_VENV" && "$PWN_VENV/bin/pip" install -q pwntools >&2 ||
    say "pwntools could not be installed; its row stays empty"
fi
(cd "$ROOT" && cargo build --release --quiet)
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$BENCH/results"

"$N" serve echo=0 --tcp 2>"$WORK/serve.err" >/dev/null &
until grep -q "listening on" "$WORK/serve.err"; do sleep 0.05; done
PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/serve.err" | head -1)

# The three programs for a dialogue of STEPS steps (and of 1, for start-up).
for n in "$STEPS" 1; do
  {
    echo "connect 127.0.0.1 $PORT"
    for ((i = 0; i < n; i++)); do printf 'sendline "line %d"\nexpect "line %d\\n"\n' "$i" "$i"; done
  } >"$WORK/dialogue-$n.ns"
  cat >"$WORK/dialogue-$n.py" <<PY
import os
os.environ["PWNLIB_NOTERM"] = "1"
from pwn import remote, context
context.log_level = "error"
r = remote("127.0.0.1", $PORT)
for i in range($n):
    r.sendline(b"line %d" % i)
    got = r.recvuntil(b"line %d\n" % i, timeout=5)
    assert got.endswith(b"line %d\n" % i), got
r.close()
PY
  cat >"$WORK/dialogue-$n.exp" <<EXP
set timeout 5
log_user 0
set stty_init "raw -echo"
spawn -noecho nc.openbsd 127.0.0.1 $PORT
for {set i 0} {\$i < $n} {incr i} {
  send "line \$i\n"
  expect {
    -ex "line \$i\n" {}
    timeout { puts stderr "timeout at \$i"; exit 1 }
    eof { puts stderr "eof at \$i"; exit 1 }
  }
}
EXP
done

# run TOOL N: seconds for one run of the N-step dialogue, or "-" if it failed.
run() {
  local tool=$1 n=$2 t0 t1 ok=0
  t0=$EPOCHREALTIME
  case $tool in
    netsmith) timeout 60 "$N" script "$WORK/dialogue-$n.ns" >/dev/null 2>>"$WORK/err" && ok=1 ;;
    pwntools) [[ -x $PWN_VENV/bin/python ]] && timeout 60 "$PWN_VENV/bin/python" "$WORK/dialogue-$n.py" 2>>"$WORK/err" && ok=1 ;;
    expect) timeout 60 expect "$WORK/dialogue-$n.exp" 2>>"$WORK/err" && ok=1 ;;
  esac
  t1=$EPOCHREALTIME
  if ((ok)); then awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }'; else printf -- '-'; fi
}

TOOLS=${TOOLS:-"netsmith pwntools expect"}
for ((r = 1; r <= REPS; r++)); do
  wait_quiet
  for t in $TOOLS; do
    echo "$t $(run "$t" "$STEPS") $(run "$t" 1)" | tee -a "$WORK/runs" >&2
  done
done
"$PYTHON" - "$WORK/runs" "$STEPS" "$REPS" <<'PY' | tee "$WORK/table"
import statistics, sys, time
path, steps, reps = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = {}
for line in open(path):
    tool, full, one = line.split()
    runs.setdefault(tool, []).append((full, one))
def med(tool, i):
    got = [float(r[i]) for r in runs[tool] if r[i] != "-"]
    return statistics.median(got) if got and len(got) == len(runs[tool]) else None
print(f"script.sh: {steps}-step sendline/expect dialogue with a line echo server, "
      f"medians of {reps} runs ({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})")
print(f"{'tool':<10}{'dialogue s':>12}{'steps/s':>10}{'1 step s':>10}")
for tool in runs:
    full, one = med(tool, 0), med(tool, 1)
    show = lambda v, f: "-" if v is None else f(v)
    print(f"{tool:<10}{show(full, lambda v: f'{v:.3f}'):>12}{show(full, lambda v: f'{steps / v:.0f}'):>10}"
          f"{show(one, lambda v: f'{v * 1000:.1f} ms'):>10}")
ours = med("netsmith", 0) if "netsmith" in runs else None
for tool in runs:
    if tool != "netsmith" and ours and med(tool, 0):
        print(f"netsmith is {med(tool, 0) / ours:.1f} times as fast as {tool} "
              f"(start-up: {med(tool, 1) / med('netsmith', 1):.1f} times)")
PY
cp "$WORK/table" "$BENCH/results/script.txt"
