#!/usr/bin/env bash
# `weir node`, `produce`, `consume` and `dlq` through their contract: output
# lines, exit statuses, dead letters listed and replayed, config errors naming
# file, line and key, an unknown queue refused by name, SIGTERM exiting 0.
# Usage: cli_node_test.sh WEIR_BINARY
set -uo pipefail
weir=$1
work=$(mktemp -d /tmp/weir-cli-node-XXXXXX)
node_pid=
cleanup() {
  [ -n "$node_pid" ] && kill -9 "$node_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=support/cli_test_lib.sh
source "$(dirname "$0")/support/cli_test_lib.sh"

# Config errors stop the node before it serves anything, naming file, line and key.
expect_config_error() {  # name toml expected-error
  printf '%b' "$2" > "$work/$1.toml"
  "$weir" node --listen tcp://127.0.0.1:1 --data "$work/data" --config "$work/$1.toml" 2> "$work/$1.err"
  expect_status 2 $? "node with config $1"
  grep -qF "$1.toml:$3" "$work/$1.err" || fail "$1 config error: $(cat "$work/$1.err")"
}
expect_config_error typo '[node]\nheartbeat_interval_ms = 100\n\n[queue.orders]\nsnyc = "always"\n' \
  "5: key 'queue.orders.snyc': unknown key"
expect_config_error type '[queue.orders]\nmax_deliveries = "five"\n' \
  "2: key 'queue.orders.max_deliveries': expected an integer"
expect_config_error sessions '[node]\nsessions_max = 0\n\n[queue.orders]\n' \
  "2: key 'node.sessions_max': expected at least 1"
expect_config_error segment '[queue.orders]\nsegment_bytes_max = 1000\n' \
  "2: key 'queue.orders.segment_bytes_max': expected at least 4096"
expect_config_error spares '[queue.orders]\nspare_segments_max = 65\n' \
  "2: key 'queue.orders.spare_segments_max': expected an integer from 0 to 64"
expect_config_error restarts '[node]\nrestarts_max = 3\nrestart_period_ms = 0\n\n[queue.orders]\n' \
  "3: key 'node.restart_period_ms': expected a positive number of milliseconds"
"$weir" node --listen tcp://127.0.0.1:1 --data "$work/data" 2> "$work/none.err"
expect_status 2 $? "node without queues"

port=$(free_port)
address=tcp://127.0.0.1:$port
printf '[node]\nrestarts_max = 3\nrestart_period_ms = 5000\n\n[queue.jobs]\nmax_deliveries = 2\nack_timeout_ms = 5000\nretry_backoff_initial_ms = 10\nretry_backoff_max_ms = 20\nsegment_bytes_max = 65536\n' > "$work/node.toml"
"$weir" node --listen "$address" --data "$work/data" --config "$work/node.toml" 2> "$work/node.err" &
node_pid=$!
for _ in $(seq 200); do grep -q listening "$work/node.err" && break; sleep 0.05; done
grep -q "queue jobs: durable, sync always" "$work/node.err" || fail "node did not log its queue settings"
grep -q "queue jobs: .*, segments of 65536 B, snapshot every 268435456 B" "$work/node.err" ||
  fail "node did not log its queue's log settings: $(grep 'queue jobs' "$work/node.err")"

"$weir" produce --connect "$address" --queue nope --count 1 --timeout 10 > "$work/nope.out" 2> "$work/nope.err"
expect_status 2 $? "produce to an unknown queue"
grep -q "has no queue named 'nope'" "$work/nope.err" || fail "unknown queue not named: $(cat "$work/nope.err")"

"$weir" produce --connect "$address" --queue jobs --count 30 --size 64 --ids-out "$work/sent" > "$work/produce.out" 2>/dev/null
expect_status 0 $? "produce 30"
tail -1 "$work/produce.out" | grep -Eq '^confirmed=30 elapsed_s=[0-9.]+ msg_per_s=[0-9]+$' ||
  fail "produce last line: $(tail -1 "$work/produce.out")"
[ "$(wc -l < "$work/sent")" = 30 ] || fail "ids-out has $(wc -l < "$work/sent") lines, expected 30"

# Every delivery fails: after two deliveries each message is a dead letter.
"$weir" consume --connect "$address" --queue jobs --fail-every 1 --idle-exit 1 > "$work/fail.out" 2>/dev/null
expect_status 0 $? "consume that fails every delivery"
tail -1 "$work/fail.out" | grep -Eq '^received=0 unique=0 elapsed_s=[0-9.]+ msg_per_s=[0-9]+$' ||
  fail "failing consume last line: $(tail -1 "$work/fail.out")"

"$weir" dlq list --connect "$address" --queue jobs > "$work/list.out" 2>/dev/null
expect_status 0 $? "dlq list"
tail -1 "$work/list.out" | grep -q '^dead_letters=30$' || fail "dlq list: $(tail -1 "$work/list.out")"
grep -q 'seq=7 bytes=64 .*x-attempts="2".*x-last-error="failed on purpose (--fail-every 1)"' "$work/list.out" ||
  fail "dead letter line lacks seq, attempts or last error: $(head -3 "$work/list.out")"

"$weir" dlq replay --connect "$address" --queue jobs > "$work/replay.out" 2>/dev/null
expect_status 0 $? "dlq replay"
grep -q '^replayed=30$' "$work/replay.out" || fail "dlq replay: $(cat "$work/replay.out")"

"$weir" consume --connect "$address" --queue jobs --count 30 --idle-exit 10 --ids-out "$work/got" > "$work/consume.out" 2>/dev/null
expect_status 0 $? "consume after replay"
tail -1 "$work/consume.out" | grep -Eq '^received=30 unique=30 ' || fail "consume: $(tail -1 "$work/consume.out")"
grep -Eq '^first_to_last_delivery_s=[0-9.]+ delivery_msg_per_s=[0-9]+$' "$work/consume.out" ||
  fail "consume prints no delivery rate: $(cat "$work/consume.out")"
[ "$(sort -n "$work/got" | tr '\n' ' ')" = "$(seq 30 | tr '\n' ' ')" ] || fail "received ids differ from 1..30"

"$weir" dlq list --connect "$address" --queue jobs > "$work/empty.out" 2>/dev/null
grep -q '^dead_letters=0$' "$work/empty.out" || fail "dead letters left after replay: $(tail -1 "$work/empty.out")"

# --delay-ms: a slow consumer; ten deliveries at 100 ms each take a second at least.
"$weir" produce --connect "$address" --queue jobs --count 10 > /dev/null 2>&1
"$weir" consume --connect "$address" --queue jobs --count 10 --idle-exit 10 --delay-ms 100 > "$work/slow.out" 2>/dev/null
expect_status 0 $? "consume --delay-ms"
slow_s=$(tail -1 "$work/slow.out" | sed -n 's/^received=10 unique=10 elapsed_s=\([0-9.]*\) .*/\1/p')
awk -v s="${slow_s:-0}" 'BEGIN { exit !(s >= 0.9) }' ||
  fail "--delay-ms 100 did not slow ten deliveries to a second: $(tail -1 "$work/slow.out")"

# --warm-up: deliveries of its first SECONDS get a line of their own. One
# delivery held at a time, 50 ms each, all published at once: the first 0.3 s
# take the first few, whose wait was shorter than the rest's.
"$weir" consume --connect "$address" --queue jobs --count 20 --idle-exit 10 --credit 1 \
  --delay-ms 50 --warm-up 0.3 > "$work/warm.out" 2>/dev/null &
warm_consumer=$!
sleep 0.3
"$weir" produce --connect "$address" --queue jobs --count 20 > /dev/null 2>&1
wait "$warm_consumer"
expect_status 0 $? "consume --warm-up"
warm_line=$(grep '^warm_up_latency_ms ' "$work/warm.out")
steady_line=$(grep '^latency_ms ' "$work/warm.out")
warm_count=$(sed -n 's/.* count=\([0-9]*\)$/\1/p' <<< "$warm_line")
warm_p50=$(sed -n 's/.* p50=\([0-9.]*\) .*/\1/p' <<< "$warm_line")
steady_p50=$(sed -n 's/.* p50=\([0-9.]*\) .*/\1/p' <<< "$steady_line")
[ -n "$steady_line" ] && [ -n "$warm_count" ] && [ "$warm_count" -ge 1 ] && [ "$warm_count" -le 19 ] &&
  awk -v w="$warm_p50" -v s="$steady_p50" 'BEGIN { exit !(w < s) }' ||
  fail "--warm-up 0.3 did not split the latencies: $(cat "$work/warm.out")"
grep -Eq '^all_latency_ms p50=[0-9.]+ p99=[0-9.]+ max=[0-9.]+ count=20$' "$work/warm.out" ||
  fail "--warm-up: no all_latency_ms line over all 20: $(cat "$work/warm.out")"
grep -q '^warm_up_latency_ms \|^all_latency_ms ' "$work/slow.out" &&
  fail "a warm-up line without --warm-up"

# Progress bars draw only on a terminal: piped, --progress leaves no trace;
# under a pseudo-terminal (script) the bar is drawn on stderr.
"$weir" produce --connect "$address" --queue jobs --count 10 --progress > "$work/quiet.out" 2> "$work/quiet.err"
expect_status 0 $? "produce --progress piped"
grep -q $'\r' "$work/quiet.err" "$work/quiet.out" && fail "a progress bar was drawn into a pipe"
if command -v script > /dev/null; then
  script -qec "\"$weir\" produce --connect $address --queue jobs --count 10 --progress" /dev/null > "$work/tty.out" 2>&1
  grep -q 'confirmed \[#*' "$work/tty.out" || fail "no progress bar on a terminal: $(cat -v "$work/tty.out" | head -3)"
fi
"$weir" consume --connect "$address" --queue jobs --count 20 --idle-exit 10 > /dev/null 2>&1

# --count takes exactly N: what the consumer held beyond it stays in the queue
# for the next one (nothing acked that was not written to --ids-out).
"$weir" produce --connect "$address" --queue jobs --count 1000 > /dev/null 2>&1
"$weir" consume --connect "$address" --queue jobs --count 400 --ids-out "$work/first" > "$work/first.out" 2>/dev/null
tail -1 "$work/first.out" | grep -Eq '^received=400 unique=400 ' || fail "consume --count 400: $(tail -1 "$work/first.out")"
"$weir" consume --connect "$address" --queue jobs --count 600 --idle-exit 10 --ids-out "$work/second" > "$work/second.out" 2>/dev/null
expect_status 0 $? "consume of the other 600"
[ "$(sort -n "$work/first" "$work/second" | uniq | wc -l)" = 1000 ] ||
  fail "two consumers of 400 and 600 saw $(sort -n "$work/first" "$work/second" | uniq | wc -l) distinct of 1000"

# segment_bytes_max = 65536: the 1000 messages and their deliveries and acks
# filled more than one segment.
segments=$(find "$work/data/jobs" -name 'segment-*.wlog' | wc -l)
[ "$segments" -ge 2 ] || fail "segment_bytes_max 65536 left $segments segment file(s)"

kill -TERM "$node_pid"
wait "$node_pid"
expect_status 0 $? "node after SIGTERM"
node_pid=
grep -q "stopped cleanly" "$work/node.err" || fail "node did not log a clean stop"

"$weir" produce --help > "$work/help.out"
expect_status 0 $? "produce --help"
grep -q -- "--ids-out" "$work/help.out" || fail "produce --help lacks --ids-out"

finish "weir node, produce, consume and dlq"
