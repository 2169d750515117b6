#!/usr/bin/env bash
# Finds flaky tests before they cost a landing. Builds the release suite and the
# sanitizer suite, then runs both ROUNDS times, the two at once (each with
# ctest -j2 as CI runs it, so the machine is busier than in CI), and lists every
# test that failed, or took more than half of its time limit, in any round.
#
#   scripts/find_flaky.sh [ROUNDS]        default 3
#   FLAKY_SUITES="build" scripts/find_flaky.sh 5   only the release suite
#   FLAKY_ALL=1 scripts/find_flaky.sh 1            also show every test's time
#
# Exits 0 when nothing was listed, 1 otherwise. Each round's ctest logs and
# JUnit files stay in build-flaky/ for a look at what failed.
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
suites=(${FLAKY_SUITES:-build build-asan-clang})
out=build-flaky
rm -rf "$out"
mkdir -p "$out"

for suite in "${suites[@]}"; do
  case "$suite" in
    build) make build >"$out/make-build.log" 2>&1 || { tail -20 "$out/make-build.log"; exit 2; } ;;
    build-asan-clang) make build-sanitizers >"$out/make-build-sanitizers.log" 2>&1 ||
      { tail -20 "$out/make-build-sanitizers.log"; exit 2; } ;;
    *) echo "find_flaky: unknown suite $suite (build or build-asan-clang)" >&2; exit 2 ;;
  esac
  (cd "$suite" && ctest --show-only=json-v1) >"$out/$suite.tests.json"
done

for round in $(seq 1 "$rounds"); do
  start=$SECONDS
  for suite in "${suites[@]}"; do
    (cd "$suite" && ctest -j2 --output-junit "$PWD/../$out/$suite-$round.xml" \
      >"../$out/$suite-$round.log" 2>&1) &
  done
  wait
  echo "find_flaky: round $round of $rounds took $((SECONDS - start)) s"
done

FLAKY_ALL=${FLAKY_ALL:-0} python3 - "$out" "$rounds" "${suites[@]}" <<'EOF'
import json, os, sys, xml.etree.ElementTree as xml
out, rounds, suites = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
show_all = os.environ["FLAKY_ALL"] == "1"
# ctest's own limit for a test without a TIMEOUT property.
ctest_default_timeout = 1500.0
listed = 0
print(f"{'suite':<11} {'test':<28} {'failed':>6} {'max s':>7} {'limit s':>7}  why")
for suite in suites:
    limits = {}
    for test in json.load(open(f"{out}/{suite}.tests.json"))["tests"]:
        props = {p["name"]: p["value"] for p in test.get("properties", [])}
        limits[test["name"]] = float(props.get("TIMEOUT", ctest_default_timeout))
    seen = {}
    for r in range(1, rounds + 1):
        try:
            cases = xml.parse(f"{out}/{suite}-{r}.xml").getroot().iter("testcase")
        except (OSError, xml.ParseError) as e:
            print(f"{suite:<11} {'(round ' + str(r) + ')':<28} ctest wrote no results: {e}")
            listed += 1
            continue
        for case in cases:
            name = case.get("name")
            failed, slowest = seen.get(name, (0, 0.0))
            status = case.get("status")
            seen[name] = (failed + (status == "fail"), max(slowest, float(case.get("time", 0))))
    for name, (failed, slowest) in sorted(seen.items()):
        limit = limits.get(name, ctest_default_timeout)
        why = []
        if failed:
            why.append(f"failed in {failed} of {rounds} rounds")
        if slowest > limit / 2:
            why.append(f"took {slowest / limit:.0%} of its limit")
        if why:
            listed += 1
        if why or show_all:
            print(f"{suite:<11} {name:<28} {failed:>6} {slowest:>7.1f} {limit:>7.0f}  {'; '.join(why)}")
print(f"find_flaky: {listed} test(s) listed over {rounds} round(s) of {', '.join(suites)}"
      f" (logs in {out}/)")
sys.exit(1 if listed else 0)
EOF
