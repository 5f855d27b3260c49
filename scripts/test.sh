#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# (unit + integration) in a normal build and again under the address and
# undefined-behaviour sanitizers. Fails through its exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)

# Counts from one build's logs: cmocka's "[  PASSED  ] N test(s)" and
# "[  FAILED  ] N test(s)", pytest's "N passed" / "N failed".
count() {
  local dir=$1
  set +o pipefail # a grep that matches nothing is a zero, not an error
  local cm="$dir/tests/unit/run_unit.log $dir/tests/kernels/run_kernels.log"
  local py="$dir/tests/golden/run.sh.log $dir/tests/integration/run.sh.log"
  # shellcheck disable=SC2086 # the lists split on purpose
  passed=$(( $(cat $cm 2>/dev/null | grep -o '\[  PASSED  \] [0-9]*' | awk '{s+=$4} END {print s+0}') +
             $(cat $py 2>/dev/null | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}') ))
  # shellcheck disable=SC2086
  failed=$(( $(cat $cm 2>/dev/null | grep -o '\[  FAILED  \] [0-9]* test' | awk '{s+=$4} END {print s+0}') +
             $(cat $py 2>/dev/null | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}') ))
  echo "$dir: $passed passed, $failed failed"
  set -o pipefail
}

scripts/setup.sh --test-deps
echo "==> make check (build)"
if ! make -C build -s check VERBOSE=1; then
  echo "FAILED: make check (build)"; exit 1
fi

scripts/setup.sh --test-deps --sanitizers
echo "==> make check (build-asan: address + undefined sanitizers)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if ! make -C build-asan -s check VERBOSE=1; then
  echo "FAILED: make check (build-asan)"; exit 1
fi
count build
count build-asan
echo "==> all tests passed in $(( $(date +%s) - start )) s"
echo "$(( $(count build | awk '{print $2}') + $(count build-asan | awk '{print $2}') )) passed, 0 failed"
