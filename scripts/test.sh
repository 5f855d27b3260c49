#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# (unit + integration) in a normal build and again under the address and
# undefined-behaviour sanitizers. Fails through its exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)

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
echo "==> all tests passed in $(( $(date +%s) - start )) s"
