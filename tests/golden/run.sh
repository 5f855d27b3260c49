#!/bin/sh
# Golden tests (automake TESTS entry): NumPy computes the formulas
# independently and pytest compares them with what pk_golden (the C kernels)
# returns, for every ISA this CPU runs. Exits with pytest's status, except
# that "no tests collected" (5) counts as a failure.
srcdir=${srcdir:-$(dirname "$0")/../..}
PK_GOLDEN_BIN=${PK_GOLDEN_BIN:-$(pwd)/tests/golden/pk_golden}
export PK_GOLDEN_BIN
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
/usr/bin/python3 -m pytest -q -p no:cacheprovider "$srcdir/tests/golden" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "run.sh: pytest collected no tests" >&2
    rc=1
fi
exit "$rc"
