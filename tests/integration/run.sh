#!/bin/sh
# Integration tests (automake TESTS entry, run from the build dir with
# $srcdir set): real coordinator and worker processes on loopback, driven by
# pytest with the system python. Exits with pytest's status, except that
# "no tests collected" (5) counts as a failure.
srcdir=${srcdir:-$(dirname "$0")/../..}
PB_BUILDDIR=${PB_BUILDDIR:-$(pwd)}
export PB_BUILDDIR
# The source tree may be read-only (distcheck): no caches, no bytecode.
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$srcdir/tests/integration" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "run.sh: pytest collected no tests" >&2
    rc=1
fi
exit "$rc"
