#!/usr/bin/env bash
# Before and after in the same run: queue_bench, log_bench and node_bench of two
# builds (each a CMake build directory of weir, say one of an older commit in a
# git worktree), alternated old, new, old, new... for ROUNDS rounds, so that the
# machine's drift falls on both sides alike. Prints each run's summary lines.
#   bench/compare_builds.sh OLD_BUILD_DIR NEW_BUILD_DIR [ROUNDS]   (default 3)
set -uo pipefail
old=$(cd "${1:?usage: compare_builds.sh OLD_BUILD_DIR NEW_BUILD_DIR [ROUNDS]}" && pwd)
new=$(cd "${2:?usage: compare_builds.sh OLD_BUILD_DIR NEW_BUILD_DIR [ROUNDS]}" && pwd)
rounds=${3:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/weir-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
for round in $(seq 1 "$rounds"); do
  for side in old new; do
    build=$old
    [ "$side" = new ] && build=$new
    rm -rf "$work"/{q,l,n}
    mkdir -p "$work"/{q,l,n}
    echo "=== round $round $side queue_bench"
    "$build/bench/queue_bench" --dir "$work/q" 2>&1 | grep -E '^(100 B|1 KiB)'
    echo "=== round $round $side log_bench"
    "$build/bench/log_bench" --dir "$work/l" 2>&1 | grep -E 'group commit|recovery without'
    echo "=== round $round $side node_bench"
    "$build/bench/node_bench" --weir "$build/cli/weir" --dir "$work/n" 2>&1 | grep -E '^\| (100 B|1024 B)'
  done
done
