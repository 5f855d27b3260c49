# bench/: benchmarks that print figures (not pass/fail).
EXTRA_DIST += bench/throughput.py
