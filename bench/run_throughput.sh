#!/bin/sh
# End-to-end throughput benchmark (prints figures, not pass/fail):
#   bench/run_throughput.sh [BUILDDIR] [throughput.py options]
# BUILDDIR holds posbench-coordinator and posbench-worker (default: .).
here=$(cd "$(dirname "$0")" && pwd)
builddir=.
case "$1" in
    ""|-*) ;;
    *) builddir=$1; shift ;;
esac
PYTHONDONTWRITEBYTECODE=1 exec /usr/bin/python3 "$here/throughput.py" --builddir "$builddir" "$@"
