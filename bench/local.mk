# bench/: benchmarks that print figures (not pass/fail).
EXTRA_DIST += bench/throughput.py bench/dashboard_load.py
# The kernels benchmark: machine ceilings, then every kernel as a ratio.
noinst_PROGRAMS += bench/bench_kernels
bench_bench_kernels_SOURCES = bench/kernels.c
bench_bench_kernels_CFLAGS = $(AM_CFLAGS) $(BLAS_CFLAGS)
bench_bench_kernels_LDADD = libpbkernels.la
# The suites benchmark: item generation rate per task (issue 4).
noinst_PROGRAMS += bench/bench_suites
bench_bench_suites_SOURCES = bench/suites.c
bench_bench_suites_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
bench_bench_suites_LDADD = libpbworker.la
