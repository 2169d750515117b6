#!/usr/bin/env bash
# `weir run` and `weir graph` over the bundled topologies and over broken ones:
# counts checked against a count made by the shell, a rerun and an interrupted
# run giving the same counts, --print-config round-tripping, DOT that Graphviz
# parses, and each configuration error naming file, line and key, exiting 2 and
# leaving no data directory behind.
# Usage: cli_run_test.sh WEIR_BINARY TOPOLOGIES_DIR
set -uo pipefail
weir=$(realpath "$1")
topologies=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/weir-cli-run-XXXXXX)
run_pid=
cleanup() {
  [ -n "$run_pid" ] && kill -9 "$run_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=support/cli_test_lib.sh
source "$(dirname "$0")/support/cli_test_lib.sh"
export WEIR_NO_PROGRESS=1
cd "$work" || exit 1

# The shell's own word count: runs of letters and digits, lower-cased.
shell_counts() {  # FILE -> "count<TAB>word" lines, largest first, then by word
  tr -cs 'A-Za-z0-9' '\n' < "$1" | tr 'A-Z' 'a-z' | grep -v '^$' | sort | uniq -c |
    awk '{ print $1 "\t" $2 }' | sort -t "$(printf '\t')" -k1,1nr -k2,2
}

# --- the bundled word count ---------------------------------------------------
"$weir" run "$topologies/wordcount.toml" --top 1000 > wc1.out 2> wc1.err
expect_status 0 $? "wordcount run"
grep -q "^run wordcount done in .* s; data in $work/weir-data$" wc1.out ||
  fail "wordcount does not say where its data lives: $(head -1 wc1.out)"
shell_counts "$topologies/data/weirs.txt" > wc.expected
sed -n '3,$p' wc1.out > wc1.counts
diff wc.expected wc1.counts > wc1.diff || fail "wordcount counts differ from the shell's: $(head -5 wc1.diff)"
grep -q "^top $(wc -l < wc.expected) of $(wc -l < wc.expected) keys counted by stage count:$" wc1.out ||
  fail "wordcount summary line: $(sed -n 2p wc1.out)"
grep -q '^\[queue.words\]$' wc1.err && grep -q '^credit = 2048$' wc1.err ||
  fail "the effective configuration is not printed at start"

# Run again over the same data: nothing is applied twice.
"$weir" run "$topologies/wordcount.toml" --top 1000 > wc2.out 2> wc2.err
expect_status 0 $? "wordcount rerun"
sed -n '3,$p' wc2.out | diff wc.expected - > /dev/null || fail "a rerun changed the counts"

# --- interrupted and run again: the same counts as an uninterrupted run -------
mkdir big
# About a second of work in a release build: long enough that the interrupt,
# sent once the run has said where its data is, lands mid-run.
for i in $(seq 1 180); do cat "$topologies/data/weirs.txt"; done > big/text.txt
seq 1 60000 | sed 's/^/line /' >> big/text.txt
sed -e "s|data/weirs.txt|$work/big/text.txt|" "$topologies/wordcount.toml" > big/wordcount.toml
shell_counts big/text.txt | head -20 > big.expected
"$weir" run big/wordcount.toml --data big-data --top 20 > big1.out 2> big1.err &
run_pid=$!
for _ in $(seq 1 1000); do
  grep -q "data in" big1.err 2>/dev/null && break
  sleep 0.01
done
kill -INT "$run_pid"
wait "$run_pid"
status=$?
run_pid=
echo "interrupted run: exit status $status"
if [ "$status" = 130 ]; then
  grep -q "SIGINT: stopping; run again to resume" big1.err || fail "interrupt message: $(tail -2 big1.err)"
else
  # Finished before the interrupt arrived: still a valid run.
  expect_status 0 "$status" "interrupted run"
fi
"$weir" run big/wordcount.toml --data big-data --top 20 > big2.out 2> big2.err
expect_status 0 $? "run after the interrupt"
sed -n '3,$p' big2.out | diff big.expected - > big.diff || fail "counts after an interrupt: $(head -5 big.diff)"

# --- SIGKILL at a random moment, then run again: still the counts of one run ---
"$weir" run big/wordcount.toml --data killed-data --top 20 > /dev/null 2>&1 &
run_pid=$!
sleep 0.3
kill -9 "$run_pid" 2>/dev/null
wait "$run_pid" 2>/dev/null
run_pid=
"$weir" run big/wordcount.toml --data killed-data --top 20 > killed.out 2> killed.err
expect_status 0 $? "run after SIGKILL"
sed -n '3,$p' killed.out | diff big.expected - > killed.diff || fail "counts after SIGKILL: $(head -5 killed.diff)"

# --- a torn tail in a queue's log: recovery cuts it, says so, and the run goes on
segment=$(ls big-data/words.queue/segment-*.wlog | tail -1)
printf 'torn garbage' >> "$segment"
"$weir" run big/wordcount.toml --data big-data --top 20 > torn.out 2> torn.err
expect_status 0 $? "run over a torn tail"
grep -q "queue words: recovery cut 12 bytes at offset" torn.err || fail "the torn tail is not reported: $(grep -i recover torn.err)"
sed -n '3,$p' torn.out | diff big.expected - > /dev/null || fail "counts after a torn tail differ"

# --- a stage that cannot start: the run fails at once instead of waiting -----
cp -r big-data broken-data
printf 'not a checkpoint' > broken-data/count.checkpoint
start=$(date +%s)
"$weir" run big/wordcount.toml --data broken-data --timeout 60 > broken.out 2> broken.err
expect_status 1 $? "run with an unreadable stage checkpoint"
[ $(( $(date +%s) - start )) -lt 30 ] || fail "a run whose supervisor gave up waited for its timeout"
grep -q "pipeline stopped: its supervisor ended" broken.err || fail "supervisor end not reported: $(tail -3 broken.err)"

# --- the bundled error counter: regex filter, key by regex, file and stdout sinks, windows
mkdir errors && (cd errors && "$weir" run "$topologies/errors.toml" > out 2> err)
expect_status 0 $? "errors run"
printf 'window\tdb=1 payments=3\nwindow\tdb=1 payments=3\n' > errors.windows
grep '^window' errors/out | diff errors.windows - > /dev/null || fail "errors windows: $(cat errors/out)"
grep -q "^6	payments$" errors/out && grep -q "^2	db$" errors/out || fail "errors counts: $(cat errors/out)"
[ "$(wc -l < errors/errors-by-component.tsv)" = 8 ] && tail -1 errors/errors-by-component.tsv | grep -q "^payments	6$" ||
  fail "file sink: $(cat errors/errors-by-component.tsv)"

# --- a sink that always fails: its lines end in the dead-letter queue, reported at the end
printf 'a\nb\nc\n' > three.txt
cat > poison.toml <<'TOML'
[source]
path = "three.txt"
output = "lines"
[queue.lines]
max_deliveries = 2
dead_letter_queue = "lines.dlq"
retry_backoff_initial_ms = 10
retry_backoff_max_ms = 20
[[stage]]
name = "write"
input = "lines"
operators = [{ type = "file", path = "/etc/passwd/cannot-be-a-file" }]
TOML
"$weir" run poison.toml --data poison-data --timeout 60 > poison.out 2> poison.err
expect_status 0 $? "run whose sink always fails"
grep -q "^dead letters: 3 in lines.dlq (weir inspect $work/poison-data/lines.dlq.queue)$" poison.out ||
  fail "dead letters not reported: $(cat poison.out)"
"$weir" inspect "$work/poison-data/lines.dlq.queue" > poison.inspect 2>&1 || fail "inspect of the dead-letter queue: $(cat poison.inspect)"

# --- two nodes: a reads and splits, b holds the words queue and counts -------
port_a=$(free_port)
port_b=$(free_port)
metrics_b=$(free_port)
sed -e "s|tcp://127.0.0.1:7101|tcp://127.0.0.1:$port_a|; s|tcp://127.0.0.1:7102|tcp://127.0.0.1:$port_b|; s|data/weirs.txt|$topologies/data/weirs.txt|" \
  "$topologies/wordcount-two-nodes.toml" > two.toml
"$weir" run two.toml --node b --data two-b --metrics "127.0.0.1:$metrics_b" --top 1000 > two-b.out 2> two-b.err &
run_pid=$!
"$weir" run two.toml --node a --data two-a --timeout 60 > two-a.out 2> two-a.err
expect_status 0 $? "node a of a two-node run"
words=$(awk -F '\t' '{ n += $1 } END { print n }' wc.expected)
acked=0
for _ in $(seq 1 200); do
  acked=$(http_get "$metrics_b" /metrics 2>/dev/null | tr -d '\r' |
    awk '$1 == "weir_queue_acked_total{queue=\"words\"}" { print $2 }')
  [ "$acked" = "$words" ] && break
  sleep 0.1
done
[ "$acked" = "$words" ] || fail "node b acked $acked of $words words"
kill -TERM "$run_pid"
wait "$run_pid"
expect_status 0 $? "node b after SIGTERM"
run_pid=
grep -q "^run wordcount stopped on node b; data in $work/two-b$" two-b.out || fail "node b end line: $(head -1 two-b.out)"
sed -n '3,$p' two-b.out | diff wc.expected - > two.diff || fail "two-node counts differ: $(head -5 two.diff)"

# --- two nodes, one SIGKILLed mid-run and restarted on its data: counts stay exact --
# 600,000 words, so that the nodes are still at work when one is killed.
awk 'BEGIN { for (i = 1; i <= 200000; i++) print "w" (i % 37) " x" (i % 11) " y" (i % 5) }' > many.txt
shell_counts many.txt > many.expected
many_words=$(awk -F '\t' '{ n += $1 } END { print n }' many.expected)
words_metric() {  # NAME -> its value for the words queue on b, empty when b does not answer
  http_get "$metrics_b" /metrics 2>/dev/null | tr -d '\r' |
    awk -v name="$1{queue=\"words\"}" '$1 == name { print $2 }'
}
start_b() {  # TAG RUN: node b of TAG's run (run_pid), its output in TAG-b-RUN.out
  "$weir" run "$1.toml" --node b --data "$1-b" --metrics "127.0.0.1:$metrics_b" --top 1000 \
    > "$1-b-$2.out" 2> "$1-b-$2.err" &
  run_pid=$!
}
start_two_nodes() {  # TAG: the two-node word count over many.txt; b is run_pid, a is a_pid
  port_a=$(free_port)
  port_b=$(free_port)
  metrics_b=$(free_port)
  sed -e "s|tcp://127.0.0.1:7101|tcp://127.0.0.1:$port_a|; s|tcp://127.0.0.1:7102|tcp://127.0.0.1:$port_b|; s|data/weirs.txt|$work/many.txt|" \
    "$topologies/wordcount-two-nodes.toml" > "$1.toml"
  start_b "$1" 1
  "$weir" run "$1.toml" --node a --data "$1-a" --timeout 90 > "$1-a-1.out" 2> "$1-a-1.err" &
  a_pid=$!
}
kill_mid_run() {  # PID WHICH: SIGKILLs PID once b has counted 50,000 words
  acked=0
  for _ in $(seq 1 400); do
    acked=$(words_metric weir_queue_acked_total)
    [ -n "$acked" ] && [ "$acked" -ge 50000 ] && break
    sleep 0.05
  done
  kill -9 "$1"
  wait "$1" 2>/dev/null
  [ -n "$acked" ] && [ "$acked" -ge 50000 ] && [ "$acked" -lt "$many_words" ] ||
    fail "node $2 was not killed mid-run: $acked of $many_words words acked"
}
stop_b_and_compare() {  # B_OUT WHAT: once b holds nothing, stops it and checks its counts
  # Node a is done once everything it read is stored on b; b is done when it holds nothing.
  for _ in $(seq 1 600); do
    [ "$(words_metric weir_queue_ready_messages)" = 0 ] && [ "$(words_metric weir_queue_unacked_messages)" = 0 ] && break
    sleep 0.05
  done
  kill -TERM "$run_pid"
  wait "$run_pid"
  expect_status 0 $? "node b after SIGTERM ($2)"
  run_pid=
  sed -n '3,$p' "$1" | diff many.expected - > "$1.diff" ||
    fail "counts after $2 differ (each word must count once): $(head -5 "$1.diff")"
}

start_two_nodes killed-b
kill_mid_run "$run_pid" b
start_b killed-b 2
wait "$a_pid"
expect_status 0 $? "node a while node b was killed and restarted"
stop_b_and_compare killed-b-b-2.out "node b was killed and restarted"

# Node a holds the source's queue and the split stage: its restart recovers the
# lines queue, and the split stage resends its unconfirmed outputs to b.
start_two_nodes killed-a
kill_mid_run "$a_pid" a
"$weir" run killed-a.toml --node a --data killed-a-a --timeout 90 > killed-a-a-2.out 2> killed-a-a-2.err
expect_status 0 $? "node a restarted on its data after SIGKILL"
grep -q "queue lines: recovered" killed-a-a-2.err || fail "restarted node a did not recover its lines queue"
stop_b_and_compare killed-a-b-1.out "node a was killed and restarted"

# --- --print-config: the effective configuration is itself a valid topology -----
"$weir" run "$topologies/errors.toml" --print-config --data pc-data > printed.toml
expect_status 0 $? "--print-config"
[ -e pc-data ] && fail "--print-config created the data directory"
grep -q '^data_dir = "'"$work"'/pc-data"$' printed.toml || fail "--print-config data_dir: $(grep data_dir printed.toml)"
grep -q '^ack_timeout_ms = 60000$' printed.toml || fail "--print-config leaves out defaults"
"$weir" graph printed.toml > printed.dot
expect_status 0 $? "graph of the printed configuration"

# --- weir graph: DOT that Graphviz parses --------------------------------------
for topology in wordcount errors wordcount-two-nodes; do
  "$weir" graph "$topologies/$topology.toml" > "$topology.dot"
  expect_status 0 $? "graph $topology"
  if command -v dot > /dev/null; then
    dot -Tsvg "$topology.dot" > "$topology.svg" 2> "$topology.dot.err" || fail "dot cannot parse $topology.dot: $(cat "$topology.dot.err")"
  else
    fail "Graphviz (dot) is not installed: scripts/setup.sh installs it"
  fi
done
grep -q '"words" -> "words.dlq" \[style=dashed' wordcount.dot || fail "the dead-letter queue is not drawn: $(cat wordcount.dot)"

# --- configuration errors: file, line, key, hint; exit 2; nothing started ------
config_error() {  # name expected-pattern toml-text
  printf '%s\n' "$3" > "bad-$1.toml"
  "$weir" run "bad-$1.toml" --data "data-$1" > /dev/null 2> "bad-$1.err"
  expect_status 2 $? "config error $1"
  grep -q -- "$2" "bad-$1.err" || fail "config error $1: expected /$2/, got: $(cat "bad-$1.err")"
  [ -e "data-$1" ] && fail "config error $1 created the data directory"
}
valid_head='[source]
path = "in.txt"
output = "lines"
[queue.lines]'
: > in.txt
config_error unknown_key "bad-unknown_key.toml:6: key 'queue.words.snyc': unknown key (did you mean 'sync'?" \
"$valid_head
[queue.words]
snyc = \"always\"
[[stage]]
name = \"a\"
input = \"lines\"
output = \"words\"
operators = [{ type = \"split_words\" }]
[[stage]]
name = \"b\"
input = \"words\"
operators = [{ type = \"count_by_key\" }]"
config_error wrong_type "bad-wrong_type.toml:5: key 'queue.lines.credit': expected an integer" \
"[source]
path = \"in.txt\"
output = \"lines\"
[queue.lines]
credit = \"lots\""
config_error undeclared "bad-undeclared.toml:8: key 'stage 'a'.output': queue 'words' is referenced but not declared (hint: add a \[queue.words\] table)" \
"$valid_head
[[stage]]
name = \"a\"
input = \"lines\"
output = \"words\"
operators = [{ type = \"split_words\" }]"
config_error cycle "form a cycle" \
"$valid_head
[queue.x]
[queue.y]
[[stage]]
name = \"a\"
input = \"lines\"
operators = [{ type = \"split_words\" }]
[[stage]]
name = \"b\"
input = \"x\"
output = \"y\"
operators = [{ type = \"split_words\" }]
[[stage]]
name = \"c\"
input = \"y\"
output = \"x\"
operators = [{ type = \"split_words\" }]"
config_error fan_out "already read by stage 'a' (a queue has one reading stage; fan-out is not supported)" \
"$valid_head
[[stage]]
name = \"a\"
input = \"lines\"
operators = [{ type = \"split_words\" }]
[[stage]]
name = \"b\"
input = \"lines\"
operators = [{ type = \"split_words\" }]"
config_error unknown_operator "key 'stage 'a'.operators\[0\].type': unknown key (did you mean 'split_words'?" \
"$valid_head
[[stage]]
name = \"a\"
input = \"lines\"
operators = [{ type = \"split_word\" }]"
config_error bad_regex "bad-bad_regex.toml:9: key 'stage 'a' operator 'a'.pattern': not a regular expression" \
"$valid_head
[[stage]]
name = \"a\"
input = \"lines\"
operators = [
  { type = \"filter_regex\", pattern = \"(unclosed\" },
]"
config_error syntax "bad-syntax.toml:2:" "[source]
path = "
config_error no_source "no \[source\] table" "[queue.lines]"
printf '%s\n' "$valid_head" '[[stage]]' 'name = "a"' 'input = "lines"' 'operators = [{ type = "count_by_key" }]' > ok.toml
"$weir" run ok.toml --data /etc/passwd/data > /dev/null 2> unwritable.err
expect_status 2 $? "unwritable data directory"
grep -q "data directory /etc/passwd/data cannot be created" unwritable.err || fail "unwritable data dir: $(cat unwritable.err)"
"$weir" run ok.toml --node a > /dev/null 2> node.err
expect_status 2 $? "--node without nodes"
# A metrics port in use: refused before the run starts (no data directory).
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)' > busy.port &
busy_pid=$!
for _ in $(seq 1 50); do [ -s busy.port ] && break; sleep 0.1; done
"$weir" run ok.toml --data busy-data --metrics "127.0.0.1:$(cat busy.port)" > /dev/null 2> busy.err
expect_status 2 $? "metrics port in use"
grep -q "metrics 127.0.0.1:$(cat busy.port)" busy.err || fail "metrics port in use: $(cat busy.err)"
[ -e busy-data/ok.checkpoint ] && fail "a run started although its metrics port was in use"
kill "$busy_pid" 2>/dev/null

finish "weir run and weir graph"
