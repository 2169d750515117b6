#!/usr/bin/env bash
# `weir inspect` against real logs: clean, damaged, missing, and --json.
# Usage: cli_inspect_test.sh WEIR_BINARY CHECKPOINT_DEMO_BINARY
set -uo pipefail
weir=$1
demo=$2
work=$(mktemp -d /tmp/weir-cli-test-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_status() {  # expected actual what
  [ "$1" = "$2" ] || fail "$3: exit status $2, expected $1"
}

"$demo" "$work" > "$work/demo.out" || fail "demo exited non-zero: $(cat "$work/demo.out")"
log="$work/orders"

# Recovery already cut the demo's torn tail, so the log is clean now.
"$weir" inspect "$log" > "$work/clean.out"
expect_status 0 $? "inspect of a clean log"
grep -q '^status: ok$' "$work/clean.out" || fail "clean log not reported ok"
grep -q '^segments: [0-9]' "$work/clean.out" || fail "no segment count"
grep -q 'ready=[0-9]* unacked=[0-9]* dead_letter=[0-9]*' "$work/clean.out" || fail "no ready/unacked/dead-letter counts"
grep -q '^snapshot: sequence' "$work/clean.out" || fail "no snapshot line"

"$weir" inspect --json "$log" > "$work/clean.json"
expect_status 0 $? "inspect --json of a clean log"
grep -q '"ok":true' "$work/clean.json" || fail "--json does not say ok"
grep -q '"messages":{"next_id":' "$work/clean.json" || fail "--json has no message counts"

# Damage one byte in the middle of the first segment.
segment=$(ls "$log"/segment-*.wlog | head -n 1)
before=$(stat -c %s "$segment")
offset=$((before / 2))
printf '\xff\xff\xff\xff' | dd of="$segment" bs=1 seek="$offset" conv=notrunc status=none
"$weir" inspect "$log" > "$work/damaged.out"
expect_status 1 $? "inspect of a damaged log"
grep -q "^corruption: $segment offset [0-9]*: [0-9]* bytes skipped" "$work/damaged.out" \
  || fail "corruption not reported with file and offset: $(cat "$work/damaged.out")"
grep -q '^status: damaged$' "$work/damaged.out" || fail "damaged log not reported damaged"
[ "$(stat -c %s "$segment")" = "$before" ] || fail "inspect modified the segment"
"$weir" inspect --json "$log" > "$work/damaged.json"
expect_status 1 $? "inspect --json of a damaged log"
grep -q '"ok":false,' "$work/damaged.json" || fail "--json does not say damaged"
grep -q "\"corruptions\":\[{\"file\":\"$segment\",\"offset\":" "$work/damaged.json" \
  || fail "--json corruption lacks file and offset"

# A directory that is not there.
"$weir" inspect "$work/missing" > "$work/missing.out" 2> "$work/missing.err"
expect_status 2 $? "inspect of a missing directory"
grep -q "$work/missing" "$work/missing.err" || fail "missing directory not named in the error"

# Help for the command and its exit-status contract.
"$weir" inspect --help | grep -q 'Exit status' || fail "inspect --help lacks the exit status"
"$weir" --help | grep -q 'inspect' || fail "weir --help does not list inspect"

if [ "$failures" -ne 0 ]; then
  echo "$failures failed"
  exit 1
fi
echo "cli_inspect_test: all checks passed"
