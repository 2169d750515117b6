#!/usr/bin/env bash
# A real full disk under `weir node`: its data directory on a small tmpfs that
# fills while a producer and a consumer run. The node must keep serving, log
# the failed publish and count it in weir_queue_storage_errors_total; the
# producer's publishes stay unconfirmed meanwhile. Once the disk grows
# (remount), the producer's resends are stored and every message reaches the
# consumer: nothing confirmed is lost, nothing unexpected arrives.
# Exits 77 (skipped, with the reason) where a tmpfs cannot be mounted.
# Usage: cli_full_disk_test.sh WEIR_BINARY
set -uo pipefail
weir=$1
work=$(mktemp -d /tmp/weir-cli-full-disk-XXXXXX)
disk="$work/disk"
node_pid= producer_pid= consumer_pid=
cleanup() {
  for pid in $node_pid $producer_pid $consumer_pid; do kill -9 "$pid" 2>/dev/null; done
  wait 2>/dev/null
  mountpoint -q "$disk" && umount "$disk"
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=support/cli_test_lib.sh
source "$(dirname "$0")/support/cli_test_lib.sh"
skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "mounting a tmpfs needs root"
mkdir -p "$disk"
mount -t tmpfs -o size=2M tmpfs "$disk" 2>"$work/mount.err" ||
  skip "cannot mount a tmpfs: $(cat "$work/mount.err")"

count=6000  # of 1000 B: about three times what the 2 MiB disk holds
port=$(free_port)
address="tcp://127.0.0.1:$port"
"$weir" node --listen "$address" --data "$disk/data" --queue q 2>"$work/node.err" &
node_pid=$!
for _ in $(seq 200); do grep -q listening "$work/node.err" && break; sleep 0.05; done

"$weir" consume --connect "$address" --queue q --count "$count" --idle-exit 60 \
  --ids-out "$work/received.ids" >"$work/consume.out" 2>"$work/consume.err" &
consumer_pid=$!
"$weir" produce --connect "$address" --queue q --count "$count" --size 1000 --window 1000 \
  --batch 100 --ids-out "$work/confirmed.ids" --timeout 90 >"$work/produce.out" \
  2>"$work/produce.err" &
producer_pid=$!

full=0
for _ in $(seq 1 300); do
  grep -q 'publish failed' "$work/node.err" && { full=1; break; }
  sleep 0.05
done
[ "$full" = 1 ] || fail "the node logged no failed publish on a full disk: $(tail -3 "$work/node.err")"
kill -0 "$node_pid" 2>/dev/null || fail "the node died when its disk filled: $(tail -5 "$work/node.err")"
grep -q 'No space left on device\|no space\|no_space' "$work/node.err" ||
  fail "the node's error does not say the disk is full: $(grep 'publish failed' "$work/node.err" | head -1)"
"$weir" stats --connect "$address" >"$work/stats.out" 2>&1
errors=$(sed -n 's/^weir_queue_storage_errors_total{queue="q"} //p' "$work/stats.out")
[ "${errors:-0}" -ge 1 ] 2>/dev/null || fail "storage errors not counted: '${errors:-}'"
sleep 1  # the producer keeps resending into the full disk meanwhile
confirmed_while_full=$(wc -l <"$work/confirmed.ids")
[ "$confirmed_while_full" -lt "$count" ] ||
  fail "all $count messages were confirmed on a disk that holds a third of them"
kill -0 "$producer_pid" 2>/dev/null || fail "the producer gave up while the disk was full"

mount -o remount,size=64M "$disk" || fail "cannot grow the tmpfs"
wait "$producer_pid"
expect_status 0 $? "produce after the disk grew"
producer_pid=
tail -1 "$work/produce.out" | grep -Eq "^confirmed=$count " ||
  fail "producer: $(tail -1 "$work/produce.out")"
wait "$consumer_pid"
expect_status 0 $? "consume after the disk grew"
consumer_pid=
tail -1 "$work/consume.out" | grep -Eq "^received=[0-9]+ unique=$count " ||
  fail "consumer: $(tail -1 "$work/consume.out")"

# Every confirmed number arrived; nothing arrived that was never published.
sort -n -u "$work/confirmed.ids" >"$work/confirmed.sorted"
sort -n -u "$work/received.ids" >"$work/received.sorted"
lost=$(comm -23 "$work/confirmed.sorted" "$work/received.sorted" | wc -l)
unexpected=$(awk -v n="$count" '$1 < 1 || $1 > n' "$work/received.sorted" | wc -l)
[ "$lost" = 0 ] || fail "$lost confirmed messages never arrived"
[ "$unexpected" = 0 ] || fail "$unexpected unexpected numbers arrived"
[ "$(wc -l <"$work/confirmed.sorted")" = "$count" ] || fail "not every number was confirmed"

kill -0 "$node_pid" 2>/dev/null || fail "the node is gone after the disk grew"
kill -TERM "$node_pid"
wait "$node_pid"
expect_status 0 $? "node after SIGTERM"
node_pid=
echo "full disk: $confirmed_while_full of $count confirmed while full, $errors storage errors counted"
finish "a full disk under weir node loses nothing and the node serves on"
