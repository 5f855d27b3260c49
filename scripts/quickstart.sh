#!/usr/bin/env bash
# The main job: installs what is missing, builds, starts a local coordinator
# and two workers, runs the default suites on the built-in baseline models,
# prints the leaderboard and the dashboard URL. On a terminal it keeps the
# cluster up until Ctrl-C; otherwise it stops after printing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
db=${POSBENCH_DB:-./posbench-quickstart.db}
once=--once
[ -t 0 ] && [ -t 1 ] && once=
exec build/posbench up --workers 2 --db "$db" \
  --submit examples/default-job.json --submit examples/default-random.json \
  --submit examples/default-bm25.json --submit examples/default-hashbow.json $once
