#!/usr/bin/env bash
# `weir node --metrics`, `weir stats` and `weir tree` through their contract:
# GET /metrics answers Prometheus text whose counters match what `weir produce`
# sent, other paths are 404, `stats` and `tree` answer over the node's own
# ZeroMQ port, a metrics port in use stops the node with exit 2, and a node
# that does not answer makes `stats` exit 1.
# Usage: cli_metrics_test.sh WEIR_BINARY
set -uo pipefail
weir=$1
work=$(mktemp -d /tmp/weir-cli-metrics-XXXXXX)
node_pid=
blocker_pid=
cleanup() {
  [ -n "$node_pid" ] && kill -9 "$node_pid" 2>/dev/null
  [ -n "$blocker_pid" ] && kill -9 "$blocker_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=support/cli_test_lib.sh
source "$(dirname "$0")/support/cli_test_lib.sh"

port=$(free_port)
metrics_port=$(free_port)
address=tcp://127.0.0.1:$port
"$weir" node --listen "$address" --data "$work/data" --queue q --metrics "127.0.0.1:$metrics_port" \
  2> "$work/node.err" &
node_pid=$!
for _ in $(seq 200); do grep -q "metrics on" "$work/node.err" && break; sleep 0.05; done
grep -q "metrics on http://127.0.0.1:$metrics_port/metrics" "$work/node.err" ||
  fail "node did not log its metrics address: $(cat "$work/node.err")"

"$weir" produce --connect "$address" --queue q --count 25 --timeout 20 > "$work/produce.out" 2>/dev/null
expect_status 0 $? "produce 25"

http_get "$metrics_port" /metrics | tr -d '\r' > "$work/metrics.http"
head -1 "$work/metrics.http" | grep -q '^HTTP/1.1 200' || fail "GET /metrics: $(head -1 "$work/metrics.http")"
grep -qi '^content-type: text/plain; version=0.0.4' "$work/metrics.http" ||
  fail "GET /metrics content type: $(head -5 "$work/metrics.http")"
for line in 'weir_queue_published_total{queue="q"} 25' 'weir_queue_confirmed_total{queue="q"} 25' \
    'weir_queue_ready_messages{queue="q"} 25' 'weir_queue_up{queue="q.dlq"} 1' \
    'weir_actor_restarts_total{actor="q",supervisor="node tcp://127.0.0.1:'"$port"'"} 0' \
    '# TYPE weir_fsync_seconds histogram' '# TYPE weir_queue_published_total counter'; do
  grep -qxF "$line" "$work/metrics.http" || fail "GET /metrics lacks the line: $line"
done
grep -Eq '^weir_fsync_seconds_count\{queue="q"\} [1-9][0-9]*$' "$work/metrics.http" ||
  fail "no fsync observed: $(grep fsync_seconds_count "$work/metrics.http")"

http_get "$metrics_port" /nothing-here | tr -d '\r' | head -1 | grep -q '^HTTP/1.1 404' ||
  fail "GET /nothing-here is not 404"

"$weir" stats --connect "$address" > "$work/stats.out" 2> "$work/stats.err"
expect_status 0 $? "stats"
grep -qxF 'weir_queue_published_total{queue="q"} 25' "$work/stats.out" ||
  fail "stats lacks published 25: $(head -20 "$work/stats.out")"
grep -qxF '# TYPE weir_node_peers gauge' "$work/stats.out" || fail "stats lacks weir_node_peers"

"$weir" tree --connect "$address" > "$work/tree.out" 2> "$work/tree.err"
expect_status 0 $? "tree"
grep -qx "node tcp://127.0.0.1:$port state=running restarts=0" "$work/tree.out" ||
  fail "tree root: $(cat "$work/tree.out")"
grep -qx '  q state=running restarts=0' "$work/tree.out" || fail "tree lacks q: $(cat "$work/tree.out")"
grep -qx '  q.dlq state=running restarts=0' "$work/tree.out" || fail "tree lacks q.dlq: $(cat "$work/tree.out")"

# A second node on the same metrics port does not start.
"$weir" node --listen "tcp://127.0.0.1:$(free_port)" --data "$work/data2" --queue q \
  --metrics "127.0.0.1:$metrics_port" 2> "$work/clash.err"
expect_status 2 $? "node with a metrics port in use"
grep -q "metrics 127.0.0.1:$metrics_port: in_use: .*Address already in use" "$work/clash.err" ||
  fail "metrics port clash message: $(cat "$work/clash.err")"

kill -TERM "$node_pid"
wait "$node_pid"
expect_status 0 $? "node after SIGTERM"
node_pid=

# Nothing answers on a port where no node runs (a listener that never speaks).
silent_port=$(free_port)
python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5); time.sleep(30)' "$silent_port" &
blocker_pid=$!
sleep 0.3
start_ns=$(date +%s%N)
"$weir" stats --connect "tcp://127.0.0.1:$silent_port" --timeout 1 > /dev/null 2> "$work/silent.err"
expect_status 1 $? "stats against a silent port"
grep -q "no answer from a node at tcp://127.0.0.1:$silent_port within 1 s" "$work/silent.err" ||
  fail "silent node message: $(cat "$work/silent.err")"
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
[ "$elapsed_ms" -lt 5000 ] || fail "stats --timeout 1 took $elapsed_ms ms"
kill -9 "$blocker_pid"
wait "$blocker_pid" 2>/dev/null
blocker_pid=

"$weir" stats --help > "$work/help.out"
expect_status 0 $? "stats --help"
grep -q -- "--timeout" "$work/help.out" || fail "stats --help lacks --timeout"
"$weir" node --help | grep -q -- "--metrics" || fail "node --help lacks --metrics"

finish "weir node --metrics, stats and tree"
