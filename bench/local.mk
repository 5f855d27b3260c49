# bench/: benchmarks that print figures (not pass/fail).
EXTRA_DIST += bench/throughput.py bench/dashboard_load.py bench/make_engine_ckpt.py
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
# The engine benchmark: prefill/decode vs sgemm and bandwidth (issue 6).
noinst_PROGRAMS += bench/bench_engine
bench_bench_engine_SOURCES = bench/engine.c
bench_bench_engine_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
bench_bench_engine_LDADD = libpbengine.la $(JANSSON_LIBS)
# The regression-detection benchmark: stage 1 + stage 2 over a year (issue 7).
noinst_PROGRAMS += bench/bench_regress
bench_bench_regress_SOURCES = bench/regress.c
bench_bench_regress_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(SQLITE_CFLAGS) $(UV_CFLAGS) \
	$(ZMQ_CFLAGS)
bench_bench_regress_LDADD = libpbcoord.la $(SQLITE_LIBS) -lm
# The openai backend benchmark: requests/s and CPU per request (issue 8),
# against an instant-answer HTTP server written for it; openai.py the same
# through a real coordinator and worker.
EXTRA_DIST += bench/openai.py
# posbench-serve's batching: requests/s and tokens/s, --max-batch 8 vs 1 (issue 8).
EXTRA_DIST += bench/serve_batch.py
noinst_PROGRAMS += bench/bench_openai bench/bench_instant_server
bench_bench_openai_SOURCES = bench/openai.c
bench_bench_openai_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
bench_bench_openai_LDADD = libpbworker.la $(CURL_LIBS)
bench_bench_instant_server_SOURCES = bench/instant_server.c
bench_bench_instant_server_LDADD = -lpthread
