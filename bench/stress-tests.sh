#!/usr/bin/env bash
# The test suite, again and again, on a loaded machine: finds the tests that fail only
# sometimes. A flaky test is a defect; this is how to catch one in the act.
#
#   bench/stress-tests.sh                  10 runs of `cargo test`, one core kept busy
#   RUNS=3 BUSY=2 bench/stress-tests.sh    3 runs, both cores kept busy
#   FILTER=distributed bench/stress-tests.sh   only the integration tests matching a filter
#
# Each run's output goes to $LOGS/run-N.log (kept); at the end a table names every test that
# failed, with how many of the runs it failed in, and the exit status is 1 if any run failed.
# The busy loops are pinned with taskset (one per core, from core 0) and are killed on every
# way out. Nothing but what the tests start on 127.0.0.1 is contacted.
set -uo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
BUSY=${BUSY:-1}
FILTER=${FILTER:-}
LOGS=${LOGS:-$(mktemp -d /tmp/stress-tests.XXXXXX)}
mkdir -p "$LOGS"

busy_pids=()
test_group=
stop_all() {
  for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null; done
  # The test run is a process group of its own: stopping cargo alone would leave the test
  # binary, and the servers it started, running.
  if [ -n "$test_group" ]; then kill -- "-$test_group" 2>/dev/null; fi
  wait 2>/dev/null
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Built once before the loops start, so that the runs measure the tests, not the compiler.
cargo test --locked --no-run -q 2>"$LOGS/build.log" || {
  echo "build failed: $LOGS/build.log" >&2
  exit 2
}

cores=$(nproc)
for ((i = 0; i < BUSY; i++)); do
  taskset -c $((i % cores)) sh -c 'while :; do :; done' &
  busy_pids+=($!)
done
echo "runs: $RUNS, busy cores: $BUSY, logs: $LOGS" >&2

args=(--locked)
if [ -n "$FILTER" ]; then args+=(--test it -- "$FILTER"); fi

failed_runs=0
for ((run = 1; run <= RUNS; run++)); do
  log="$LOGS/run-$run.log"
  start=$(date +%s)
  setsid cargo test "${args[@]}" >"$log" 2>&1 &
  test_group=$!
  wait "$test_group"
  code=$?
  test_group=
  secs=$(($(date +%s) - start))
  # cargo stops at the first test binary that fails; its "FAILED" lines name the tests.
  failures=$(grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/')
  if [ "$code" -ne 0 ]; then
    failed_runs=$((failed_runs + 1))
    echo "run $run: FAILED in ${secs}s (exit $code): ${failures:-see $log}" >&2
  else
    echo "run $run: ok in ${secs}s" >&2
  fi
done

echo
echo "| test | failed runs (of $RUNS) |"
echo "|---|---|"
cat "$LOGS"/run-*.log | grep -E '^test .* \.\.\. FAILED$' | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' |
  sort | uniq -c | sort -rn | while read -r count name; do echo "| $name | $count |"; done
echo
echo "$((RUNS - failed_runs)) passed, $failed_runs failed"
[ "$failed_runs" -eq 0 ]
