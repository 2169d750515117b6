#!/usr/bin/env bash
# examples/wordcount survives SIGKILL at random points: killed several times
# mid-run and started again with the same arguments, it prints exactly the
# counts of an uninterrupted run (and those agree with awk's count).
# Usage: wordcount_kill_test.sh WORDCOUNT_BINARY [TRIALS] [LINES]
set -uo pipefail
wordcount=$1
trials=${2:-6}
lines=${3:-300000}
work=$(mktemp -d /tmp/weir-wordcount-XXXXXX)
trap 'rm -rf "$work"' EXIT

# A deterministic input: LINES lines of words from a fixed vocabulary.
awk -v lines="$lines" 'BEGIN { srand(11)
  split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega", w, " ")
  for (i = 0; i < lines; i++) { line = ""; n = 1 + int(rand() * 12)
    for (j = 0; j < n; j++) line = line w[1 + int(rand() * 24)] " "
    print line } }' > "$work/input.txt"
awk '{ for (i = 1; i <= NF; i++) c[$i]++ } END { for (k in c) print k "\t" c[k] }' \
  "$work/input.txt" | LC_ALL=C sort > "$work/awk.txt"

"$wordcount" "$work/input.txt" "$work/clean" > "$work/expected.txt" || { echo "FAIL: clean run"; exit 1; }
if ! diff -q "$work/awk.txt" "$work/expected.txt" > /dev/null; then
  echo "FAIL: an uninterrupted run disagrees with awk"; diff "$work/awk.txt" "$work/expected.txt" | head; exit 1
fi

failures=0
kills=0
for trial in $(seq 1 "$trials"); do
  data="$work/killed-$trial"
  for attempt in 1 2 3; do
    "$wordcount" "$work/input.txt" "$data" > /dev/null 2>&1 &
    pid=$!
    # A random moment in the first ~0.6 s (an uninterrupted run takes about 1 s here).
    sleep "0.$(printf '%02d' $((RANDOM % 60 + 1)))"
    if kill -9 "$pid" 2> /dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2> /dev/null
  done
  if ! "$wordcount" "$work/input.txt" "$data" > "$work/out-$trial.txt" 2> "$work/err-$trial.txt"; then
    echo "FAIL: trial $trial: the run after the kills failed: $(tail -3 "$work/err-$trial.txt")"
    failures=$((failures + 1))
  elif ! diff -q "$work/expected.txt" "$work/out-$trial.txt" > /dev/null; then
    echo "FAIL: trial $trial: counts differ after SIGKILL"
    diff "$work/expected.txt" "$work/out-$trial.txt" | head -5
    failures=$((failures + 1))
  fi
done
echo "wordcount_kill_test: $trials trials, $kills processes killed with SIGKILL, $failures failed"
[ "$failures" -eq 0 ]
