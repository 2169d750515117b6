#!/usr/bin/env bash
# Network partitions in Linux network namespaces joined by a veth pair, each
# longer than the heartbeat timeouts: first between a node and its producer and
# consumer (every confirmed sequence number must be received; duplicates are
# allowed, loss is not), then between the two nodes of a `weir run` pipeline
# (every word must count exactly once).
# Exits 77 (skipped, with the reason) where the machine does not allow
# network namespaces.
#
#   partition_test.sh WEIR_BIN
set -uo pipefail
weir=$1
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "creating network namespaces needs root"
command -v ip >/dev/null || skip "the ip command (iproute2) is not installed"

tag=wp$$
node_ns=${tag}n
client_ns=${tag}c
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$node_ns" 2>/dev/null
  ip netns del "$client_ns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$node_ns" 2>"$work/err" || skip "cannot create a network namespace: $(cat "$work/err")"
ip netns add "$client_ns" || skip "cannot create a second network namespace"
ip link add "${tag}a" type veth peer name "${tag}b" 2>"$work/err" ||
  skip "cannot create a veth pair: $(cat "$work/err")"
ip link set "${tag}a" netns "$node_ns"
ip link set "${tag}b" netns "$client_ns"
ip -n "$node_ns" addr add 10.231.0.1/24 dev "${tag}a"
ip -n "$client_ns" addr add 10.231.0.2/24 dev "${tag}b"
for ns in "$node_ns" "$client_ns"; do ip -n "$ns" link set lo up; done
ip -n "$node_ns" link set "${tag}a" up
ip -n "$client_ns" link set "${tag}b" up

cat >"$work/node.toml" <<TOML
[node]
heartbeat_interval_ms = 200
heartbeat_timeout_ms = 1000
TOML
address=tcp://10.231.0.1:7400
ip netns exec "$node_ns" "$weir" node --listen "$address" --data "$work/data" --queue q \
  --config "$work/node.toml" 2>"$work/node.err" &
pids+=($!)
for _ in $(seq 200); do
  grep -q "listening" "$work/node.err" && break
  sleep 0.05
done
grep -q "listening" "$work/node.err" || { echo "FAIL: node did not start"; cat "$work/node.err"; exit 1; }

count=12000
ip netns exec "$client_ns" "$weir" produce --connect "$address" --queue q --count $count \
  --rate 2000 --ids-out "$work/produced" --timeout 60 >"$work/produce.out" 2>"$work/produce.err" &
producer=$!
pids+=($producer)
ip netns exec "$client_ns" "$weir" consume --connect "$address" --queue q --count $count \
  --idle-exit 30 --ids-out "$work/consumed" >"$work/consume.out" 2>"$work/consume.err" &
consumer=$!
pids+=($consumer)

sleep 1.5
echo "partition: client link down for 5 s (heartbeat timeouts: node 1 s, clients 3 s)"
ip -n "$client_ns" link set "${tag}b" down
sleep 5
ip -n "$client_ns" link set "${tag}b" up
echo "healed"

wait $producer; produced_status=$?
wait $consumer; consumed_status=$?
echo "produce: $(tail -1 "$work/produce.out") (exit $produced_status)"
echo "consume: $(tail -1 "$work/consume.out") (exit $consumed_status)"
grep -E "lost|connected" "$work/node.err" | head -5

confirmed=$(sort -un "$work/produced" | wc -l)
lost=$(comm -23 <(sort -un "$work/produced") <(sort -un "$work/consumed") | wc -l)
unexpected=$(sort -un "$work/consumed" | awk -v n=$count '$1 < 1 || $1 > n' | wc -l)
duplicated=$(($(wc -l <"$work/consumed") - $(sort -un "$work/consumed" | wc -l)))
echo "checker: confirmed $confirmed, lost $lost, duplicated $duplicated, unexpected $unexpected"
if [ "$produced_status" -ne 0 ] || [ "$consumed_status" -ne 0 ] || [ "$confirmed" -ne $count ] ||
  [ "$lost" -ne 0 ] || [ "$unexpected" -ne 0 ]; then
  echo "FAIL"
  tail -5 "$work/produce.err" "$work/consume.err"
  exit 1
fi
grep -q "lost" "$work/node.err" || { echo "FAIL: the node never noticed the partition"; exit 1; }
echo "PASS: node and clients"

# --- a partition between the two nodes of one pipeline ------------------------
# Node a (the source and the split stage) runs in the client namespace, node b
# (the words queue and the counting stage) in the node's. Their link goes down
# for 5 s mid-run, longer than the 3 s heartbeat timeout, so the session ends
# and a reconnects and resends. Every word must still count exactly once.
awk 'BEGIN { for (i = 1; i <= 300000; i++) print "w" (i % 37) " x" (i % 11) " y" (i % 5) }' \
  >"$work/many.txt"
tr ' ' '\n' <"$work/many.txt" | sort | uniq -c | awk '{ print $1 "\t" $2 }' |
  sort -t "$(printf '\t')" -k1,1nr -k2,2 >"$work/many.expected"
words=$(awk -F '\t' '{ n += $1 } END { print n }' "$work/many.expected")
# The bundled two-node word count, its nodes at the namespaces' addresses.
sed -e "s|tcp://127.0.0.1:7101|tcp://10.231.0.2:7401|; s|tcp://127.0.0.1:7102|tcp://10.231.0.1:7402|; s|data/weirs.txt|$work/many.txt|" \
  "$(dirname "$0")/../examples/topologies/wordcount-two-nodes.toml" >"$work/two.toml"
metrics_port=7403
b_metric() {  # NAME -> its value for the words queue on b, empty when b does not answer
  ip netns exec "$node_ns" bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" >&3
    timeout 5 cat <&3' _ "$metrics_port" 2>/dev/null | tr -d '\r' |
    awk -v name="$1{queue=\"words\"}" '$1 == name { print $2 }'
}
ip netns exec "$node_ns" "$weir" run "$work/two.toml" --node b --data "$work/b" \
  --metrics "127.0.0.1:$metrics_port" --top 1000 >"$work/b.out" 2>"$work/b.err" &
b_pid=$!
pids+=($b_pid)
ip netns exec "$client_ns" "$weir" run "$work/two.toml" --node a --data "$work/a" --timeout 90 \
  >"$work/a.out" 2>"$work/a.err" &
a_pid=$!
pids+=($a_pid)
acked=
for _ in $(seq 400); do
  acked=$(b_metric weir_queue_acked_total)
  [ -n "$acked" ] && [ "$acked" -ge 30000 ] && break
  sleep 0.05
done
[ -n "$acked" ] && [ "$acked" -ge 30000 ] && [ "$acked" -lt "$words" ] ||
  { echo "FAIL: the partition would not fall mid-run: b acked '$acked' of $words words"; exit 1; }
echo "partition: the link between nodes a and b down for 5 s ($acked of $words words counted)"
ip -n "$client_ns" link set "${tag}b" down
sleep 5
ip -n "$client_ns" link set "${tag}b" up
echo "healed"
wait "$a_pid"
a_status=$?
[ "$a_status" -eq 0 ] || { echo "FAIL: node a exited $a_status"; tail -5 "$work/a.err"; exit 1; }
for _ in $(seq 600); do
  [ "$(b_metric weir_queue_ready_messages)" = 0 ] &&
    [ "$(b_metric weir_queue_unacked_messages)" = 0 ] && break
  sleep 0.05
done
kill -TERM "$b_pid"
wait "$b_pid"
b_status=$?
[ "$b_status" -eq 0 ] || { echo "FAIL: node b exited $b_status after SIGTERM"; exit 1; }
grep -h -E "lost|connected" "$work/a.err" "$work/b.err" | head -6
grep -q "lost" "$work/a.err" "$work/b.err" ||
  { echo "FAIL: neither node noticed the partition"; exit 1; }
sed -n '3,$p' "$work/b.out" | diff "$work/many.expected" - >"$work/two.diff" ||
  { echo "FAIL: counts after the partition differ: $(head -5 "$work/two.diff")"; exit 1; }
echo "PASS: the two nodes of a pipeline"
