# tests/: one unit runner (cmocka) over every module, then the integration
# tests (real processes on loopback, pytest with /usr/bin/python3).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/run_unit
tests_unit_run_unit_SOURCES = \
	tests/unit/main.c tests/unit/unit.h \
	tests/unit/test_common.c \
	tests/unit/test_items.c \
	tests/unit/test_suites.c \
	tests/unit/test_db.c tests/unit/test_db_read.c tests/unit/test_db.h \
	tests/unit/test_http.c \
	tests/unit/test_sched.c \
	tests/unit/test_worker.c
tests_unit_run_unit_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(UV_CFLAGS) $(ZMQ_CFLAGS) \
	$(JANSSON_CFLAGS) $(SQLITE_CFLAGS) $(CURL_CFLAGS)
tests_unit_run_unit_LDADD = libpbcoord.la libpbworker.la libpbhttp.la libpbdb.la \
	libpbsuites.la libpbcommon.la $(CMOCKA_LIBS) $(UV_LIBS) $(ZMQ_LIBS) $(SQLITE_LIBS) \
	$(CURL_LIBS)
TESTS += tests/unit/run_unit
endif
TESTS += tests/integration/run.sh
AM_TESTS_ENVIRONMENT = PB_WORKER_BIN='$(abs_top_builddir)/posbench-worker'; export PB_WORKER_BIN;
