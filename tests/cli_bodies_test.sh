#!/usr/bin/env bash
# Real message bodies through the command line: `weir produce --body/--lines`
# with keys and headers, read back by `weir consume --print` and `--format
# json`, text and binary (NUL bytes, invalid UTF-8) byte for byte; bad input
# (a malformed --header, contradicting flags, a line over the message limit)
# refused with a clear error, exit 2 and nothing sent.
# Usage: cli_bodies_test.sh WEIR_BINARY
set -uo pipefail
weir=$1
work=$(mktemp -d /tmp/weir-cli-bodies-XXXXXX)
node_pid=
cleanup() {
  [ -n "$node_pid" ] && kill -9 "$node_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=support/cli_test_lib.sh
source "$(dirname "$0")/support/cli_test_lib.sh"

port=$(free_port)
address=tcp://127.0.0.1:$port
"$weir" node --listen "$address" --data "$work/data" --queue q --queue big 2> "$work/node.err" &
node_pid=$!
for _ in $(seq 200); do grep -q listening "$work/node.err" && break; sleep 0.05; done

# --- the issue's own example ---------------------------------------------------
echo hello | "$weir" produce --connect "$address" --queue q --lines > "$work/p1.out" 2> "$work/p1.err"
expect_status 0 $? "produce --lines of hello"
grep -Eq '^confirmed=1 elapsed_s=[0-9.]+ msg_per_s=[0-9]+$' "$work/p1.out" ||
  fail "produce --lines last line: $(cat "$work/p1.out")"
"$weir" consume --connect "$address" --queue q --print --count 1 > "$work/c1.out" 2> "$work/c1.err"
expect_status 0 $? "consume --print --count 1"
[ "$(cat "$work/c1.out")" = hello ] || fail "consume --print wrote '$(cat "$work/c1.out")', not hello"
grep -q '^received=1 unique=1 ' "$work/c1.err" || fail "the report is not on stderr: $(cat "$work/c1.err")"

# --- text lines from a file, with key and headers, in order ------------------------
seq 1 500 | sed 's/^/line number /' > "$work/lines.txt"
"$weir" produce --connect "$address" --queue q --file "$work/lines.txt" --key customer-7 \
  --header source=test --header 'formula=a=b' > "$work/p2.out" 2> "$work/p2.err"
expect_status 0 $? "produce --file"
grep -q '^confirmed=500 ' "$work/p2.out" || fail "produce --file: $(cat "$work/p2.out")"
"$weir" consume --connect "$address" --queue q --print --count 500 > "$work/c2.out" 2> /dev/null
expect_status 0 $? "consume 500 lines"
diff -q "$work/lines.txt" "$work/c2.out" > /dev/null || fail "the 500 lines came back different"

# --- binary bodies through JSON: NUL bytes and bytes that are not UTF-8 -----------
printf 'text body\nnul\000inside\n\377\376 not utf-8\ncaf\303\251\n' > "$work/binary.txt"
"$weir" produce --connect "$address" --queue q --lines --key $'k\001' --header h=v \
  < "$work/binary.txt" > /dev/null 2> "$work/p3.err"
expect_status 0 $? "produce binary lines"
"$weir" produce --connect "$address" --queue q --body $'one\nbody with a newline' --key one \
  > /dev/null 2> "$work/p4.err"
expect_status 0 $? "produce --body"
"$weir" consume --connect "$address" --queue q --format json --count 5 > "$work/c3.json" 2> /dev/null
expect_status 0 $? "consume --format json"
python3 - "$work/binary.txt" "$work/c3.json" <<'EOF' || fail "JSON round trip (above)"
import base64, json, sys
sent = open(sys.argv[1], "rb").read().split(b"\n")[:-1] + [b"one\nbody with a newline"]
got = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8")]
def field(obj, name):
    return obj[name].encode() if name in obj else base64.b64decode(obj[name + "_base64"])
ok = len(got) == len(sent)
for message, body in zip(got, sent):
    if field(message, "body") != body:
        print(f"body {field(message, 'body')!r} != {body!r}"); ok = False
    for key in ("id", "attempt", "publish_time_ns", "publish_time", "headers", "headers_base64"):
        if key not in message: print(f"no {key} in {message}"); ok = False
    if message["attempt"] != 1: print(f"attempt {message['attempt']}"); ok = False
# The binary bodies went as base64, the text ones as text; keys and headers came along.
if "body_base64" not in got[2] or "body" not in got[3] or got[3]["body"] != "café":
    print(f"encodings: {got[2]} {got[3]}"); ok = False
if got[0]["key"] != "k\u0001" or got[0]["headers"] != {"h": "v"} or got[4]["key"] != "one":
    print(f"keys or headers: {got[0]} {got[4]}"); ok = False
ids = [m["id"] for m in got]
if ids != sorted(ids): print(f"ids out of order: {ids}"); ok = False
sys.exit(0 if ok else 1)
EOF

# --- bad input: a clear error, exit 2, nothing sent ---------------------------------
expect_refused() {  # what expected-text produce-args...
  local what=$1 text=$2
  shift 2
  "$weir" produce --connect "$address" --queue q "$@" < /dev/null > "$work/bad.out" 2> "$work/bad.err"
  expect_status 2 $? "$what"
  grep -qF -- "$text" "$work/bad.err" || fail "$what: $(cat "$work/bad.err")"
}
expect_refused "a header without =" 'is not NAME=VALUE' --body x --header novalue
expect_refused "a header without a name" 'is not NAME=VALUE' --body x --header =v
expect_refused "--count with --body" 'does not go with' --body x --count 3
expect_refused "--body with --lines" 'give one' --body x --lines
expect_refused "no message at all" 'give --count N' --key k
expect_refused "a missing --file" 'cannot open --file' --file "$work/absent.txt"
# A line over the one-message limit in a file: refused before any line is sent.
{ echo small; head -c $((64 * 1024 * 1024)) /dev/zero | tr '\0' 'x'; echo; } > "$work/huge.txt"
"$weir" produce --connect "$address" --queue big --file "$work/huge.txt" > /dev/null 2> "$work/huge.err"
expect_status 2 $? "a file with a line over the limit"
grep -q 'huge.txt line 2 is 67108864 bytes, over the .*nothing was sent' "$work/huge.err" ||
  fail "huge line: $(cat "$work/huge.err")"
"$weir" consume --connect "$address" --queue big --print --idle-exit 1 > "$work/big.out" 2> /dev/null
[ ! -s "$work/big.out" ] || fail "a refused file sent $(wc -l < "$work/big.out") message(s)"

# --- acked only once written: a consumer whose output fails leaves the message ---
"$weir" produce --connect "$address" --queue q --body kept > /dev/null 2>&1
"$weir" consume --connect "$address" --queue q --print --count 1 > /dev/full 2> "$work/full.err"
expect_status 1 $? "consume into a full device"
grep -q 'writing standard output failed' "$work/full.err" || fail "full stdout: $(cat "$work/full.err")"
"$weir" consume --connect "$address" --queue q --print --count 1 > "$work/kept.out" 2> /dev/null
[ "$(cat "$work/kept.out")" = kept ] || fail "the unwritten message was lost: '$(cat "$work/kept.out")'"

kill -TERM "$node_pid"
wait "$node_pid"
expect_status 0 $? "node after SIGTERM"
node_pid=
finish "message bodies through produce and consume"
