#!/usr/bin/env bash
# A network partition between a node and its producer and consumer, in Linux
# network namespaces joined by a veth pair: the client side's link goes down
# for longer than the heartbeat timeouts, then comes back. Every confirmed
# sequence number must be received; duplicates are allowed, loss is not.
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
echo "PASS"
