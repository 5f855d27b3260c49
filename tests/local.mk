# tests/: one unit runner (cmocka) over every module, then the integration
# tests (real processes on loopback, pytest with /usr/bin/python3).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/run_unit
tests_unit_run_unit_SOURCES = \
	tests/unit/main.c tests/unit/unit.h \
	tests/unit/test_common.c \
	tests/unit/test_items.c \
	tests/unit/test_suites.c \
	tests/unit/test_lengthgen.c \
	tests/unit/test_table.c \
	tests/unit/test_longctx.c tests/unit/test_longctx.h tests/unit/test_longctx_tasks.c \
	tests/unit/test_retrieval.c \
	tests/unit/test_halluc.c \
	tests/unit/test_db.c tests/unit/test_db_read.c tests/unit/test_db.h \
	tests/unit/test_db_breakdown.c \
	tests/unit/test_http.c \
	tests/unit/test_sched.c \
	tests/unit/test_worker.c \
	tests/unit/test_breakdown.c \
	tests/unit/test_datasets.c \
	tests/unit/test_engine_ckpt.c \
	tests/unit/test_engine_tok.c \
	tests/unit/test_regress.c tests/unit/test_series.c \
	tests/unit/test_kernels_suite.c \
	tests/unit/test_openai.c \
	tests/unit/test_serve.c
tests_unit_run_unit_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(UV_CFLAGS) $(ZMQ_CFLAGS) \
	$(JANSSON_CFLAGS) $(SQLITE_CFLAGS) $(CURL_CFLAGS)
tests_unit_run_unit_LDADD = libpbserve.la libpbcoord.la libpbworker.la libpbhttp.la libpbdb.la \
	libpbsuites.la libpbengine.la libpbkernels.la libpbcommon.la $(CMOCKA_LIBS) $(UV_LIBS) $(ZMQ_LIBS) $(SQLITE_LIBS) \
	$(CURL_LIBS)
TESTS += tests/unit/run_unit
# The kernels layer's own runner and the NumPy golden checks.
check_PROGRAMS += tests/kernels/run_kernels
tests_kernels_run_kernels_SOURCES = tests/kernels/main.c tests/kernels/ktest.h \
	tests/kernels/ktest.c tests/kernels/test_ops.c tests/kernels/test_pe.c \
	tests/kernels/test_attn.c tests/kernels/test_kv.c tests/kernels/kvtest.c \
	tests/kernels/kvtest.h tests/kernels/test_dsparse.c tests/kernels/test_sim.c \
	tests/kernels/test_matvec.c
tests_kernels_run_kernels_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_kernels_run_kernels_LDADD = libpbkernels.la $(CMOCKA_LIBS)
TESTS += tests/kernels/run_kernels
endif
check_PROGRAMS += tests/golden/pk_golden
tests_golden_pk_golden_SOURCES = tests/golden/pk_golden.c tests/golden/golden.h \
	tests/golden/golden_pe.c tests/golden/golden_attn.c
tests_golden_pk_golden_LDADD = libpbkernels.la
TESTS += tests/golden/run.sh
TESTS += tests/integration/run.sh
AM_TESTS_ENVIRONMENT = PB_WORKER_BIN='$(abs_top_builddir)/posbench-worker'; export PB_WORKER_BIN;
EXTRA_DIST += tests/integration/regressdata.py tests/integration/test_web_regressions.py \
	tests/integration/test_cli_regressions.py
EXTRA_DIST += tests/integration/test_kernels_suite.py
EXTRA_DIST += tests/integration/test_openai.py tests/integration/fault_server.py
EXTRA_DIST += tests/integration/test_serve.py
# The browser tests keep screenshots in the build tree for people to look
# at; "make clean" (and so distcheck's distclean) removes them.
clean-local: clean-test-screenshots
clean-test-screenshots:
	-rm -rf test-screenshots
.PHONY: clean-test-screenshots
