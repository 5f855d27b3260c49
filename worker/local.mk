# worker/: posbench-worker (broker session, task runner, backends).
noinst_LTLIBRARIES += libpbworker.la
libpbworker_la_SOURCES = \
	worker/backend.h worker/backend_int.h worker/backend.c worker/backend_baseline.c \
	worker/runner.h worker/runner.c worker/outbox.h worker/outbox.c \
	worker/breakdown.h worker/breakdown.c worker/testbed.h worker/testbed.c \
	worker/rank.h worker/rank.c worker/backend_retrieval.c \
	worker/datasets.h worker/datasets.c \
	worker/native_cache.h worker/native_cache.c worker/backend_native.c \
	worker/openai.h worker/openai_proto.c worker/openai_http.c worker/openai_cache.c \
	worker/backend_openai.c
libpbworker_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(ZMQ_CFLAGS) $(CURL_CFLAGS) $(SQLITE_CFLAGS)
libpbworker_la_LIBADD = libpbsuites.la libpbengine.la libpbkernels.la libpbcommon.la $(ZMQ_LIBS) $(CURL_LIBS) \
	$(SQLITE_LIBS)

bin_PROGRAMS += posbench-worker
posbench_worker_SOURCES = worker/main.c worker/session.h worker/session.c
posbench_worker_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(ZMQ_CFLAGS) $(CURL_CFLAGS)
posbench_worker_LDADD = libpbworker.la
