#!/usr/bin/env bash
# Does sniff keep up with loopback traffic? netsmith sniff and tcpdump
# capture the same load side by side, in one run:
#
#   sudo bench/sniff.sh                 # 5 s of `bench echo -c 50 -s 64`
#   DURATION=10 CONNS=100 sudo bench/sniff.sh
#
# Everything runs in a fresh network namespace (`unshare -n`, lo up), so
# the captures see only the load: `netsmith serve echo` on 127.0.0.1 and
# `netsmith bench echo` against it. Four captures run at once on lo, each
# seeing every packet:
#
#   netsmith-w     netsmith sniff -i lo -w /dev/null     (no decoding)
#   tcpdump-w      tcpdump -i lo -w /dev/null
#   netsmith-print netsmith sniff -i lo >/dev/null       (decode, print)
#   tcpdump-print  tcpdump -n -i lo >/dev/null
#
# When the load ends each capture gets SIGINT and reports its counts;
# the script prints packets captured, packets/s over the load, kernel
# drops, and CPU seconds (utime+stime from /proc/PID/stat), with ratios to
# tcpdump. They share two cores with the load, so the figures are noisy;
# what matters is whether drops appear and what each packet costs.
# Results go to bench/results/sniff.txt.

set -euo pipefail
export LC_ALL=C

DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
PYTHON=${PYTHON:-python3}
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

((EUID == 0)) || die "needs root (capture and unshare)"
missing=()
command -v tcpdump >/dev/null || missing+=(tcpdump)
command -v unshare >/dev/null || missing+=(util-linux)
install_missing "${missing[@]}"
(cd "$ROOT" && cargo build --release --quiet)
N="$ROOT/target/release/netsmith"
mkdir -p "$BENCH/results"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# shellcheck disable=SC2016 # expanded inside the namespace's shell
unshare -n bash -c '
set -euo pipefail
N=$1; D=$2; DURATION=$3; CONNS=$4
ip link set lo up
cpu() { awk "{ print \$14 + \$15 }" "/proc/$1/stat"; }
"$N" serve echo=0 --tcp 2>"$D/serve.err" & SERVE=$!
until grep -q "listening on" "$D/serve.err"; do sleep 0.05; done
ADDR=$(sed -n "s/^listening on \([^ ]*\).*/\1/p" "$D/serve.err" | head -1)
"$N" sniff -i lo -w /dev/null 2>"$D/netsmith-w.err" & echo $! >"$D/netsmith-w.pid"
tcpdump -i lo -w /dev/null 2>"$D/tcpdump-w.err" & echo $! >"$D/tcpdump-w.pid"
"$N" sniff -i lo >/dev/null 2>"$D/netsmith-print.err" & echo $! >"$D/netsmith-print.pid"
tcpdump -n -i lo >/dev/null 2>"$D/tcpdump-print.err" & echo $! >"$D/tcpdump-print.pid"
for f in netsmith-w netsmith-print; do until grep -q "capturing on" "$D/$f.err"; do sleep 0.05; done; done
for f in tcpdump-w tcpdump-print; do until grep -q "listening on" "$D/$f.err"; do sleep 0.05; done; done
start=$EPOCHREALTIME
timeout $((DURATION + 30)) "$N" bench echo "$ADDR" -c "$CONNS" -s 64 -d "${DURATION}s" >"$D/bench.txt"
end=$EPOCHREALTIME
echo "$start $end" >"$D/window"
sleep 1
for f in netsmith-w tcpdump-w netsmith-print tcpdump-print; do
  pid=$(cat "$D/$f.pid"); cpu "$pid" >"$D/$f.cpu"; kill -INT "$pid"
done
wait_all() { for f in netsmith-w tcpdump-w netsmith-print tcpdump-print; do wait "$(cat "$D/$f.pid")" || true; done; }
wait_all
kill "$SERVE"; wait "$SERVE" || true
' bash "$N" "$OUT" "$DURATION" "$CONNS"

read -r start end <"$OUT/window"
HZ=$(getconf CLK_TCK)
{
  echo "sniff.sh: bench echo -c $CONNS -s 64 for ${DURATION}s on lo, four captures at once ($(date -u +%FT%TZ))"
  grep -E "requests" "$OUT/bench.txt" | sed 's/^ */load: /'
  printf '%-15s %10s %10s %8s %8s %14s\n' capture packets pkts/s dropped cpu_s "us cpu/pkt"
  for f in netsmith-w tcpdump-w netsmith-print tcpdump-print; do
    err="$OUT/$f.err"
    if [[ $f == netsmith* ]]; then
      pkts=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$err")
      drops=$(sed -n 's/.* \([0-9]*\) dropped by kernel.*/\1/p' "$err")
    else
      pkts=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$err")
      drops=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$err")
    fi
    awk -v f="$f" -v p="${pkts:-0}" -v d="${drops:-0}" -v c="$(cat "$OUT/$f.cpu")" -v hz="$HZ" \
      -v s="$start" -v e="$end" 'BEGIN {
        cpu = c / hz
        printf "%-15s %10d %10.0f %8d %8.2f %14.2f\n", f, p, p / (e - s), d, cpu, p ? cpu * 1e6 / p : 0
      }'
  done
} | tee "$OUT/table"
awk 'NR > 3 { p[$1] = $2; c[$1] = $6 }
  END {
    printf "ratios to tcpdump: -w packets %.2f, cpu/pkt %.2f; printing packets %.2f, cpu/pkt %.2f\n",
      p["netsmith-w"] / p["tcpdump-w"], c["netsmith-w"] / c["tcpdump-w"],
      p["netsmith-print"] / p["tcpdump-print"], c["netsmith-print"] / c["tcpdump-print"]
  }' "$OUT/table" | tee -a "$OUT/table"
cp "$OUT/table" "$BENCH/results/sniff.txt"
