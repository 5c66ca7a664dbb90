#!/usr/bin/env bash
# The Python package (python/) beside what the tutorials' readers use:
#
#   scan      every TCP port of 127.0.0.1, in a network namespace of its own
#             with three listeners: netsmith.scan, the tutorials' connect_ex
#             loop, and python-nmap (nmap -sT underneath; installed from PyPI
#             for this benchmark only). Seconds, and whether exactly the
#             three listeners were found.
#   trips     ROUNDS send_line/recv_line round trips with `netsmith serve
#             echo`: netsmith.connect's Tube, a plain socket with makefile()
#             (readline), and pwntools' remote (PyPI, for this benchmark only).
#
#   bench/python.sh                 # REPS=3, ROUNDS=10000
#
# Medians of REPS runs, each tool in turn; the table goes to stdout and
# bench/results/python.txt. Needs root (the namespace) and `pip install
# ./python` done (it is done here if `import netsmith` fails).

set -euo pipefail
export LC_ALL=C
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-10000}
QUIET_WAIT=${QUIET_WAIT:-20}
PWN_VENV=${PWN_VENV:-/tmp/netsmith-bench-pwn}
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
PYTHON=$(command -v python3) || die "python3 is needed"
HZ=$(getconf CLK_TCK)
N=$ROOT/target/release/netsmith
command -v nmap >/dev/null || install_missing nmap
(cd "$ROOT" && cargo build --release --quiet)
"$PYTHON" -c 'import netsmith' 2>/dev/null || "$PYTHON" -m pip install -q "$ROOT/python" >&2
"$PYTHON" -c 'import nmap' 2>/dev/null || "$PYTHON" -m pip install -q python-nmap >&2
if [[ ! -x $PWN_VENV/bin/python ]]; then
  "$PYTHON" -m venv "$PWN_VENV" && "$PWN_VENV/bin/pip" install -q pwntools >&2 ||
    say "pwntools could not be installed; its row stays empty"
fi
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$BENCH/results"

# One scan in a fresh namespace: three listeners, then TOOL scans 1-65535;
# prints "SECONDS EXACT" (EXACT: 1 if exactly the listeners were found).
cat >"$WORK/scan.py" <<'PY'
import socket, sys, time
tool = sys.argv[1]
ls = []
for _ in range(3):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); ls.append(s)
want = sorted(s.getsockname()[1] for s in ls)
t0 = time.perf_counter()
if tool == "netsmith":
    import netsmith
    found = [r.port for r in netsmith.scan("127.0.0.1", ports="-") if r.state == "open"]
elif tool == "connect_ex":
    found = []
    for port in range(1, 65536):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if c.connect_ex(("127.0.0.1", port)) == 0:
            found.append(port)
        c.close()
elif tool == "python-nmap":
    import nmap
    scan = nmap.PortScanner().scan("127.0.0.1", "1-65535", arguments="-sT -T5 -n -Pn")
    tcp = scan["scan"].get("127.0.0.1", {}).get("tcp", {})
    found = [p for p, v in tcp.items() if v["state"] == "open"]
elapsed = time.perf_counter() - t0
print(f"{elapsed:.3f} {int(sorted(found) == want)}")
PY
scan() { unshare -n sh -c 'ip link set lo up && exec "$0" "$1" "$2"' "$PYTHON" "$WORK/scan.py" "$1" 2>>"$WORK/err" || echo "- 0"; }

"$N" serve echo=0 --tcp 2>"$WORK/serve.err" >/dev/null &
until grep -q "listening on" "$WORK/serve.err"; do sleep 0.05; done
PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/serve.err" | head -1)
cat >"$WORK/trips.py" <<PY
import os, socket, sys, time
tool, n = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
if tool == "netsmith":
    import netsmith
    with netsmith.connect("127.0.0.1", $PORT, timeout=5) as t:
        for i in range(n):
            t.send_line(b"%d" % i)
            assert t.recv_line() == b"%d\n" % i
elif tool == "socket":
    s = socket.create_connection(("127.0.0.1", $PORT))
    f = s.makefile("rwb", buffering=0)
    r = s.makefile("rb")
    for i in range(n):
        s.sendall(b"%d\n" % i)
        assert r.readline() == b"%d\n" % i
elif tool == "pwntools":
    os.environ["PWNLIB_NOTERM"] = "1"
    from pwn import remote, context
    context.log_level = "error"
    t = remote("127.0.0.1", $PORT)
    for i in range(n):
        t.sendline(b"%d" % i)
        assert t.recvline() == b"%d\n" % i
print(f"{time.perf_counter() - t0:.3f}")
PY
trips() {
  case $1 in
    pwntools) [[ -x $PWN_VENV/bin/python ]] && "$PWN_VENV/bin/python" "$WORK/trips.py" pwntools "$ROUNDS" 2>>"$WORK/err" || echo - ;;
    *) "$PYTHON" "$WORK/trips.py" "$1" "$ROUNDS" 2>>"$WORK/err" || echo - ;;
  esac
}

for ((r = 1; r <= REPS; r++)); do
  for t in netsmith connect_ex python-nmap; do
    wait_quiet
    echo "scan $t $(scan "$t")" | tee -a "$WORK/runs" >&2
  done
  for t in netsmith socket pwntools; do
    wait_quiet
    echo "trips $t $(trips "$t")" | tee -a "$WORK/runs" >&2
  done
done
"$PYTHON" - "$WORK/runs" "$REPS" "$ROUNDS" <<'PY' | tee "$WORK/table"
import statistics, sys, time
path, reps, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = {}
for line in open(path):
    kind, tool, secs, *exact = line.split()
    runs.setdefault((kind, tool), []).append((secs, exact[0] if exact else "1"))
def med(key):
    got = [float(s) for s, _ in runs[key] if s != "-"]
    return statistics.median(got) if got and len(got) == len(runs[key]) else None
print(f"python.sh: medians of {reps} runs ({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})")
print("scan of 127.0.0.1, ports 1-65535 (in a namespace with 3 listeners):")
for (kind, tool), v in runs.items():
    if kind == "scan":
        m = med((kind, tool))
        exact = sum(int(e) for _, e in v)
        print(f"  {tool:<12} {'-' if m is None else f'{m:.2f} s':>9}   exact {exact}/{len(v)}")
print(f"{rounds} send_line/recv_line round trips with netsmith serve echo:")
for (kind, tool), v in runs.items():
    if kind == "trips":
        m = med((kind, tool))
        print(f"  {tool:<12} {'-' if m is None else f'{m:.3f} s':>9}   {'' if m is None else f'{rounds / m:,.0f}/s'}")
ours = med(("scan", "netsmith"))
for tool in ("connect_ex", "python-nmap"):
    if ours and runs.get(("scan", tool)) and med(("scan", tool)):
        print(f"netsmith.scan is {med(('scan', tool)) / ours:.1f} times as fast as {tool}")
ours = med(("trips", "netsmith"))
for tool in ("socket", "pwntools"):
    if ours and runs.get(("trips", tool)) and med(("trips", tool)):
        print(f"netsmith's Tube is {med(('trips', tool)) / ours:.2f} times as fast as {tool}")
PY
cp "$WORK/table" "$BENCH/results/python.txt"
