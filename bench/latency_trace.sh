#!/usr/bin/env bash
# Where messages wait between publish and delivery: builds weir with
# -DWEIR_LATENCY_TRACE=ON in build-trace/, runs node, consume and produce on
# loopback at a fixed rate (node_bench's latency run), and prints the time
# spent between each pair of hand-overs, for all batches and for those later
# than LATE_MS (default 5), and when in the run the late ones were. KEEP=1
# keeps the run's folder (trace files, node log) and prints its path.
#
# usage: [LATE_MS=5] [KEEP=1] bench/latency_trace.sh [SIZE] [RATE] [COUNT]
#        (defaults: 100 B, 650000 msg/s, 2000000 messages)
set -euo pipefail
size=${1:-100}
rate=${2:-650000}
count=${3:-2000000}
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-trace"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEIR_LATENCY_TRACE=ON \
  -DWEIR_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target weir latency_trace_report >/dev/null
weir="$build/cli/weir"

dir=$(mktemp -d "${TMPDIR:-/tmp}/latency_trace.XXXXXX")
port=$((20000 + RANDOM % 40000))
node=
cleanup() {
  if [ -n "$node" ]; then kill "$node" 2>/dev/null || true; wait "$node" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

WEIR_LATENCY_TRACE_FILE="$dir/node.trace" "$weir" node --listen "tcp://127.0.0.1:$port" \
  --data "$dir/data" --queue q 2>"$dir/node.err" &
node=$!
sleep 0.5
kill -0 "$node" 2>/dev/null || { cat "$dir/node.err" >&2; exit 1; }
WEIR_LATENCY_TRACE_FILE="$dir/consume.trace" "$weir" consume --connect "tcp://127.0.0.1:$port" \
  --queue q --count "$count" --credit 32768 --idle-exit 30 >"$dir/consume.out" 2>/dev/null &
consumer=$!
# The producer starts once the consumer is subscribed: what it publishes before
# then waits for a consumer, not for weir.
for _ in $(seq 200); do
  "$weir" stats --connect "tcp://127.0.0.1:$port" 2>/dev/null |
    grep -q '^weir_queue_consumers{queue="q"} 1$' && break
  sleep 0.05
done
WEIR_LATENCY_TRACE_FILE="$dir/produce.trace" "$weir" produce --connect "tcp://127.0.0.1:$port" \
  --queue q --count "$count" --size "$size" --window 20000 --batch 500 --rate "$rate" \
  --timeout 120 >"$dir/produce.out" 2>/dev/null
wait "$consumer"
kill "$node"
wait "$node" || true
node=
echo "size=$size rate=$rate count=$count"
grep latency "$dir/consume.out" || true
"$build/bench/latency_trace_report" --late-ms "${LATE_MS:-5}" \
  "$dir/produce.trace" "$dir/node.trace" "$dir/consume.trace"
