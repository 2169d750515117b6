#!/usr/bin/env bash
# Chaos on loopback: one node, one producer, two consumers; for ROUNDS rounds,
# at a random moment, SIGKILL the node (and restart it on the same data) or one
# consumer (and start a new one). Then the producer must have every message
# confirmed, and every confirmed sequence number must have reached a consumer
# or the dead-letter queue (a message in flight at max_deliveries consumer
# kills is dead-lettered, as it should be): lost=0 and unexpected=0;
# duplicates are allowed (at-least-once) and counted.
# The suite runs a short one (ctest chaos_short: 6 rounds, 60000 messages).
#
# usage: tests/chaos.sh WEIR [ROUNDS] [COUNT] [RATE]
#        (defaults: 20 rounds, 300000 messages at 30000 msg/s: about 10 s of producing)
# KEEP=1 keeps the working folder (id files, logs). Consumer 1 is slow
# (`weir consume --delay-ms`, SLOW_MS=1 by default; 0 turns it off): it holds
# many unacked deliveries, so that killing it sends them to the other.
# Prints one line per round and a last line:
#   chaos: rounds=R confirmed=C received=N dead_lettered=X lost=L duplicated=D unexpected=U
# Exit 0 when lost and unexpected are 0 and all COUNT were confirmed, 1 otherwise.
set -uo pipefail
weir=$(realpath "${1:?usage: tests/chaos.sh WEIR [ROUNDS] [COUNT] [RATE]}")
rounds=${2:-20}
count=${3:-300000}
rate=${4:-30000}
work=$(mktemp -d "${TMPDIR:-/tmp}/weir-chaos.XXXXXX")
port=$((20000 + RANDOM % 40000))
address="tcp://127.0.0.1:$port"
node= producer= consumers=()
cleanup() {
  for pid in $node $producer "${consumers[@]}"; do kill -9 "$pid" 2>/dev/null; done
  wait 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

start_node() {
  "$weir" node --listen "$address" --data "$work/data" --queue q 2>>"$work/node.err" &
  node=$!
  for _ in $(seq 1 500); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.01
  done
  echo "chaos: the node did not listen: $(tail -3 "$work/node.err")" >&2
  exit 1
}

consumer_serial=0
start_consumer() {  # $1: slot
  consumer_serial=$((consumer_serial + 1))
  local slow=()
  [ "$1" = 1 ] && [ "${SLOW_MS:-1}" != 0 ] && slow=(--delay-ms "${SLOW_MS:-1}")
  "$weir" consume --connect "$address" --queue q --credit 2000 "${slow[@]}" \
    --ids-out "$work/consumed.$consumer_serial.ids" >"$work/consume.$consumer_serial.out" \
    2>"$work/consume.$consumer_serial.err" &
  consumers[$1]=$!
}

start_node
"$weir" produce --connect "$address" --queue q --count "$count" --window 5000 --batch 200 \
  --rate "$rate" --ids-out "$work/produced.ids" --timeout 600 >"$work/produce.out" 2>"$work/produce.err" &
producer=$!
start_consumer 0
start_consumer 1

done_rounds=0
for round in $(seq 1 "$rounds"); do
  sleep "0.$((2 + RANDOM % 8))"
  # The first two rounds kill one of each, so that a short run has both.
  action=$((round == 1 ? 0 : round == 2 ? 1 : RANDOM % 3))
  case $action in
    0)
      kill -9 "$node"; wait "$node" 2>/dev/null
      start_node
      echo "round $round: node killed and restarted ($(wc -l <"$work/produced.ids") confirmed)"
      ;;
    *)
      slot=$((RANDOM % 2))
      kill -9 "${consumers[$slot]}"; wait "${consumers[$slot]}" 2>/dev/null
      start_consumer "$slot"
      echo "round $round: consumer $slot killed and replaced"
      ;;
  esac
  done_rounds=$round
  kill -0 "$producer" 2>/dev/null || break  # all confirmed already
done

wait "$producer"
produce_status=$?

# The checker: the confirmed ids against those received or dead-lettered.
sort -n -u "$work/produced.ids" >"$work/confirmed.sorted"
check() {
  "$weir" dlq list --connect "$address" --queue q >"$work/dlq.out" 2>"$work/dlq.err" ||
    echo "chaos: dlq list failed: $(tail -1 "$work/dlq.err")" >&2
  sed -n 's/.*seq=\([0-9]*\) .*/\1/p' "$work/dlq.out" | sort -n -u >"$work/dead.sorted"
  cat "$work"/consumed.*.ids | sort -n >"$work/received.sorted"
  uniq "$work/received.sorted" >"$work/received.unique"
  lost=$(sort -n -u "$work/received.unique" "$work/dead.sorted" |
    comm -23 "$work/confirmed.sorted" - | wc -l)
}
# The consumers run until the rest is drained (ids are flushed before each
# ack, so killing them then loses nothing), or DRAIN_S (default 60) passes.
check
for _ in $(seq 1 $((${DRAIN_S:-60} * 2))); do
  [ "$lost" = 0 ] && break
  sleep 0.5
  check
done
for pid in "${consumers[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
consumers=()
check
kill "$node"; wait "$node" 2>/dev/null
received=$(wc -l <"$work/received.sorted")
confirmed=$(wc -l <"$work/confirmed.sorted")
unique_received=$(wc -l <"$work/received.unique")
dead=$(wc -l <"$work/dead.sorted")
unexpected=$(awk -v n="$count" '$1 < 1 || $1 > n' "$work/received.unique" | wc -l)
duplicated=$((received - unique_received))
echo "produce: $(tail -n 1 "$work/produce.out") (exit $produce_status)"
echo "chaos: rounds=$done_rounds confirmed=$confirmed received=$received dead_lettered=$dead" \
  "lost=$lost duplicated=$duplicated unexpected=$unexpected"
[ "$produce_status" = 0 ] && [ "$confirmed" = "$count" ] && [ "$lost" = 0 ] &&
  [ "$unexpected" = 0 ]
