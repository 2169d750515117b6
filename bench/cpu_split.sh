#!/usr/bin/env bash
# CPU seconds of each process in one flat-out node / consume / produce run on
# loopback, with the rates. Steadier than node_bench's rates on a noisy VM, so
# it is the figure to compare two builds by (run them alternately).
#
# usage: [CREDIT=C] bench/cpu_split.sh WEIR [COUNT] [SIZE]    (defaults: 2000000 messages, 100 B)
# The settings are node_bench's: consume --credit 32768, produce --window 20000 --batch 500.
set -euo pipefail
weir=${1:?usage: bench/cpu_split.sh WEIR [COUNT] [SIZE]}
count=${2:-2000000}
size=${3:-100}
dir=$(mktemp -d "${TMPDIR:-/tmp}/cpu_split.XXXXXX")
port=$((20000 + RANDOM % 40000))
node=
cleanup() {
  if [ -n "$node" ]; then kill "$node" 2>/dev/null || true; wait "$node" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$weir" node --listen "tcp://127.0.0.1:$port" --data "$dir/data" --queue q 2>"$dir/node.err" &
node=$!
sleep 0.5
kill -0 "$node" 2>/dev/null || { cat "$dir/node.err" >&2; exit 1; }

TIMEFORMAT='%U %S'
{ time "$weir" consume --connect "tcp://127.0.0.1:$port" --queue q --count "$count" \
    --credit "${CREDIT:-32768}" --idle-exit 30 >"$dir/consume.out" 2>/dev/null; } 2>"$dir/consume.cpu" &
consumer=$!
{ time "$weir" produce --connect "tcp://127.0.0.1:$port" --queue q --count "$count" \
    --size "$size" --window 20000 --batch 500 --timeout 120 >"$dir/produce.out" 2>/dev/null; } \
  2>"$dir/produce.cpu"
wait "$consumer"

# utime and stime are fields 14 and 15 of /proc/PID/stat; the name field has no spaces.
node_rss_mib=$(awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$node/status")
read -r -a stat <"/proc/$node/stat"
ticks=$(getconf CLK_TCK)
node_cpu=$(awk -v u="${stat[13]}" -v s="${stat[14]}" -v t="$ticks" 'BEGIN { printf "%.2f", (u + s) / t }')
consume_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$dir/consume.cpu")
produce_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$dir/produce.cpu")

echo "produce: $(tail -n 1 "$dir/produce.out")"
echo "consume: $(grep first_to_last "$dir/consume.out" || true)"
echo "consume: $(tail -n 1 "$dir/consume.out")"
awk -v n="$node_cpu" -v c="$consume_cpu" -v p="$produce_cpu" -v m="$count" 'BEGIN {
  total = n + c + p
  printf "cpu_s node=%.2f consume=%.2f produce=%.2f total=%.2f us_per_msg=%.2f\n",
         n, c, p, total, 1e6 * total / m
}'
echo "node_peak_rss_mib=$node_rss_mib"
