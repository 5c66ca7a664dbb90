#!/usr/bin/env bash
# Proxies side by side on loopback, the same clients for all:
#
#   netsmith proxy 127.0.0.1:P              (SOCKS5 and HTTP CONNECT on one port)
#   microsocks -i 127.0.0.1 -p P             (SOCKS5)
#   danted (a config written here)           (SOCKS5)
#   ncat -l -k --proxy-type http 127.0.0.1 P (HTTP CONNECT)
#   netsmith relay tcp-listen:P 127.0.0.1:T  (a plain relay: what a tunnel costs at best)
#   direct                                   (no proxy at all)
#
#   bench/proxy.sh                 # SIZE=1 GiB, DURATION=5
#   SIZE=$((256<<20)) DURATION=3 bench/proxy.sh
#
# Each measurement has two clients: netsmith's, and a cross-check that is
# not netsmith (a Python client doing the SOCKS5 or CONNECT handshake by
# hand), so that a ratio is the proxies' and not one client's.
#   download  SIZE bytes of zeros from a target that sends them and closes
#             (a Python server writing 1 MiB at a time), read through the
#             proxy to /dev/null: MB/s = SIZE / wall time. Clients: `netsmith
#             connect --recv-only --proxy URL`, and Python recv_into a 1 MiB
#             buffer. A run counts only if exactly SIZE bytes arrived.
#   both ways `netsmith bench stream --proxy URL` against `netsmith serve
#             echo` for DURATION: MB/s each way, every byte checked. A proxy
#             that stalls when both directions are full shows here.
#   connect   connections per second for DURATION, each: the handshake, a
#             qotd answer (`netsmith serve qotd`) read to its end, close.
#             Clients: `netsmith bench connect -c 8 --proxy URL`, and a Python
#             client with 8 threads (which its GIL caps: a floor, not a rate).
# Every process is bounded by `timeout`; the machine is let go quiet
# before each run. The table goes to stdout and bench/results/proxy.txt.

set -euo pipefail
export LC_ALL=C
SIZE=${SIZE:-$((1 << 30))}
DURATION=${DURATION:-5}
TIMEOUT=${TIMEOUT:-120}
QUIET_WAIT=${QUIET_WAIT:-20}
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
N=$ROOT/target/release/netsmith
missing=()
for c in ncat microsocks danted python3; do
  command -v "$c" >/dev/null || case $c in
    danted) missing+=(dante-server) ;;
    python3) missing+=(python3) ;;
    *) missing+=("$c") ;;
  esac
done
install_missing ${missing[@]+"${missing[@]}"}
PYTHON=$(command -v python3)
HZ=$(getconf CLK_TCK)
(cd "$ROOT" && cargo build --release --quiet)
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$BENCH/results"

# The Python clients' one handshake: a socket to 127.0.0.1:TARGET, through
# the proxy on PORT as KIND says (socks5, http) or directly.
cat >"$WORK/via.py" <<'PY'
import socket, struct

def through(kind, port, target):
    s = socket.create_connection(("127.0.0.1", target if kind == "direct" else port))
    if kind == "socks5":
        s.sendall(b"\x05\x01\x00"); assert s.recv(2) == b"\x05\x00"
        s.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + struct.pack("!H", target))
        r = b""
        while len(r) < 10: r += s.recv(10 - len(r))
        assert r[1] == 0
    elif kind == "http":
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % target)
        h = b""
        while not h.endswith(b"\r\n\r\n"): h += s.recv(1)
        assert b" 200 " in h.split(b"\r\n")[0]
    return s
PY

started() { # PORT: wait until something listens on it (ncat's proxy binds every address)
  local i pat
  pat=$(printf ':%04X 00000000:0000 0A ' "$1")
  for ((i = 0; i < 500; i++)); do grep -q "$pat" /proc/net/tcp /proc/net/tcp6 && return 0; sleep 0.01; done
  die "nothing listens on $1: $(tail -n 3 "$WORK/stderr" 2>/dev/null | tr '\n' ' ')"
}

# The targets: SIZE zeros per connection, and qotd.
BULK=$(free_port)
timeout "$((TIMEOUT * 20))" "$PYTHON" - "$BULK" "$SIZE" 2>>"$WORK/stderr" <<'PY' &
import socket, sys, threading
port, size = int(sys.argv[1]), int(sys.argv[2])
zeros = memoryview(bytes(1 << 20))
def serve(c):
    left = size
    while left > 0:
        n = min(left, len(zeros)); c.sendall(zeros[:n]); left -= n
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
started "$BULK"
"$N" serve "qotd=0" "echo=0" --tcp >/dev/null 2>"$WORK/serve.err" &
until [[ $(grep -c "listening on" "$WORK/serve.err") == 2 ]]; do sleep 0.05; done
QOTD=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*qotd.*/\1/p' "$WORK/serve.err" | head -1)
ECHO=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\).*echo.*/\1/p' "$WORK/serve.err" | head -1)

# proxy TOOL PORT: starts it in the background; KIND=socks5|http|direct
proxy() {
  local tool=$1 port=$2
  case $tool in
    netsmith-socks5 | netsmith-http) timeout "$TIMEOUT" "$N" -q proxy "$port" 2>>"$WORK/stderr" & KIND=${tool#netsmith-} ;;
    microsocks) timeout "$TIMEOUT" microsocks -i 127.0.0.1 -p "$port" >/dev/null 2>&1 & KIND=socks5 ;;
    dante)
      printf '%s\n' "logoutput: /dev/null" "internal: 127.0.0.1 port = $port" "external: 127.0.0.1" \
        "clientmethod: none" "socksmethod: none" "user.privileged: root" "user.notprivileged: nobody" \
        "client pass { from: 127.0.0.0/8 to: 127.0.0.0/8 }" "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 }" >"$WORK/danted.conf"
      timeout "$TIMEOUT" danted -f "$WORK/danted.conf" -N 2 >/dev/null 2>&1 & KIND=socks5 ;;
    ncat) timeout "$TIMEOUT" ncat -l -k --proxy-type http 127.0.0.1 "$port" 2>>"$WORK/stderr" & KIND=http ;;
    relay) KIND=direct ;;
    direct) KIND=direct; PID=; return ;;
  esac
  PID=$!
  [[ $tool == relay ]] || started "$port"
}

download() { # TOOL CLIENT: prints MB/s or "-"
  local tool=$1 client=$2 port target got t0 t1
  port=$(free_port)
  target=$BULK
  if [[ $tool == relay ]]; then
    timeout "$TIMEOUT" "$N" -q relay "tcp-listen:127.0.0.1:$port" "127.0.0.1:$BULK" 2>>"$WORK/stderr" &
    PID=$!; started "$port"; target=$port; KIND=direct
  else
    proxy "$tool" "$port"
  fi
  wait_quiet
  t0=$EPOCHREALTIME
  case $client/$KIND in
    netsmith/direct) got=$(timeout "$TIMEOUT" "$N" -v connect --recv-only 127.0.0.1 "$target" 2>&1 >/dev/null | sed -n 's/.*after \([0-9]*\) bytes.*/\1/p') ;;
    netsmith/*) got=$(timeout "$TIMEOUT" "$N" -v connect --recv-only --proxy "$KIND://127.0.0.1:$port" 127.0.0.1 "$target" 2>&1 >/dev/null | sed -n 's/.*after \([0-9]*\) bytes.*/\1/p') ;;
    python/*) got=$(timeout "$TIMEOUT" "$PYTHON" - "$KIND" "$port" "$target" "$WORK" <<'PY'
import sys
sys.path.insert(0, sys.argv[4])
from via import through
kind, port, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = through(kind, port, target)
buf, n = bytearray(1 << 20), 0
while True:
    k = s.recv_into(buf)
    if not k: break
    n += k
print(n)
PY
) || true ;;
  esac
  t1=$EPOCHREALTIME
  [[ -z ${PID:-} ]] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }
  if [[ ${got:-0} == "$SIZE" ]]; then
    awk -v s="$SIZE" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / (b - a) / 1e6 }'
  else
    printf -- '-'
    say "  $tool/$client: got ${got:-nothing} of $SIZE bytes"
  fi
}

# gen TOOL WORKLOAD TARGET: runs `netsmith bench WORKLOAD` through TOOL's
# proxy (or straight to the relay) for DURATION; prints its JSON result.
gen() {
  local tool=$1 workload=$2 target=$3 port via=() out
  port=$(free_port)
  if [[ $tool == relay ]]; then
    timeout "$TIMEOUT" "$N" -q relay "tcp-listen:127.0.0.1:$port" "127.0.0.1:$target" 2>>"$WORK/stderr" &
    PID=$!; started "$port"; target=$port
  else
    proxy "$tool" "$port"
    [[ $KIND == direct ]] || via=(--proxy "$KIND://127.0.0.1:$port")
  fi
  wait_quiet
  case $workload in
    stream) out=$(timeout "$((DURATION + 30))" "$N" bench stream -d "${DURATION}s" -w 5s --json "${via[@]}" "127.0.0.1:$target" 2>>"$WORK/stderr") || true ;;
    connect) out=$(timeout "$((DURATION + 30))" "$N" bench connect -c 8 -d "${DURATION}s" --json "${via[@]}" "127.0.0.1:$target" 2>>"$WORK/stderr") || true ;;
  esac
  [[ -z ${PID:-} ]] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }
  printf '%s' "$out"
}

both_ways() { # TOOL: MB/s each way (the smaller of the two), or "-" if any byte was lost
  gen "$1" stream "$ECHO" | "$PYTHON" -c '
import json, sys
try: r = json.load(sys.stdin)
except Exception: print("-"); sys.exit()
print("-" if r["errors"] or not r["bytes_received"] else round(min(r["mb_per_s_sent"], r["mb_per_s_received"])))'
}

bench_connects() { # TOOL: connections per second, or "-" on any error
  gen "$1" connect "$QOTD" | "$PYTHON" -c '
import json, sys
try: r = json.load(sys.stdin)
except Exception: print("-"); sys.exit()
print("-" if r["errors"] else round(r["latency"]["count"] / r["duration_s"]))'
}

connects() { # TOOL: connections per second
  local tool=$1 port
  port=$(free_port)
  proxy "$tool" "$port"
  wait_quiet
  timeout "$((DURATION + 30))" "$PYTHON" - "$KIND" "$port" "$QOTD" "$DURATION" "$WORK" <<'PY'
import sys, threading, time
sys.path.insert(0, sys.argv[5])
from via import through
kind, port, qotd, dur = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
end = time.monotonic() + dur
counts = [0] * 8
def one():
    s = through(kind, port, qotd)
    data = b""
    while True:
        d = s.recv(4096)
        if not d: break
        data += d
    s.close()
    assert data
failed = []
def work(i):
    try:
        while time.monotonic() < end:
            one(); counts[i] += 1
    except Exception as e:
        failed.append(e)
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print("-" if failed else round(sum(counts) / dur))
PY
  [[ -z ${PID:-} ]] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }
}

# A run that did not bring exactly SIZE bytes, or no answer at all, is "-".
TOOLS=${TOOLS:-"netsmith-socks5 microsocks dante netsmith-http ncat relay direct"}
REPS=${REPS:-3}
read -ra tools <<<"$TOOLS"
say "proxy.sh: $REPS rounds, each tool in turn in each round; the table gives medians"
for ((round = 1; round <= REPS; round++)); do
  # Each round starts one tool later, so that no tool always runs right
  # after the same one (a proxy that was just stopped can still cost the
  # next run: dante's processes, freed memory).
  for ((i = 0; i < ${#tools[@]}; i++)); do
    t=${tools[(i + round - 1) % ${#tools[@]}]}
    a=$(download "$t" netsmith); b=$(download "$t" python)
    w=$(both_ways "$t")
    c=$(bench_connects "$t")
    if [[ $t == relay ]]; then d=-; else d=$(connects "$t"); fi
    echo "$round $t $a $b $w $c $d" | tee -a "$WORK/rounds" >&2
  done
done
"$PYTHON" - "$WORK/rounds" "$SIZE" "$DURATION" "$REPS" <<'PY' | tee "$WORK/table"
import statistics, sys, time
path, size, duration, reps = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
cols = ["down MB/s", "down py", "2-way MB/s", "conn/s", "conn/s py"]
runs = {}
for line in open(path):
    _, tool, *vals = line.split()
    runs.setdefault(tool, []).append(vals)
def cell(tool, i):
    got = [float(v[i]) for v in runs.get(tool, []) if v[i] != "-"]
    if not got or len(got) < len(runs[tool]):
        return None  # a failed round makes the cell fail: no median of the lucky ones
    return statistics.median(got)
def spread(tool, i):
    got = [float(v[i]) for v in runs.get(tool, []) if v[i] != "-"]
    return (min(got), max(got)) if got else None
print(f"proxy.sh: SIZE={size} bytes downloaded; echo both ways and connect+qotd for {duration}s; "
      f"medians of {reps} rounds ({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})")
print(f"{'proxy':<16}" + "".join(f"{c:>12}" for c in cols))
for tool in runs:
    print(f"{tool:<16}" + "".join(f"{'-' if cell(tool, i) is None else round(cell(tool, i)):>12}"
                                  for i in range(len(cols))))
def ratio(a, b, i):
    x, y = cell(a, i), cell(b, i)
    if not x or not y:
        return "-"
    lo, hi = spread(a, i), spread(b, i)
    return f"{x / y:.2f} ({lo[0] / hi[1]:.2f}-{lo[1] / hi[0]:.2f})"
print("ratios of medians (range: worst to best round pairing)")
for name, a, b in [
    ("netsmith SOCKS5 / microsocks", "netsmith-socks5", "microsocks"),
    ("netsmith SOCKS5 / dante", "netsmith-socks5", "dante"),
    ("netsmith SOCKS5 / no proxy", "netsmith-socks5", "direct"),
    ("netsmith HTTP CONNECT / ncat", "netsmith-http", "ncat"),
    ("netsmith HTTP CONNECT / relay", "netsmith-http", "relay"),
]:
    if a in runs and b in runs:
        print(f"{name}:")
        print("   " + ", ".join(f"{c} {ratio(a, b, i)}" for i, c in enumerate(cols)))
PY
cp "$WORK/table" "$BENCH/results/proxy.txt"
