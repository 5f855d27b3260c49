# coordinator/: posbench-coordinator (HTTP API, static files, ZeroMQ broker,
# scheduler, schedules). The library part is linked by the tests too.
noinst_LTLIBRARIES += libpbhttp.la libpbcoord.la
libpbhttp_la_SOURCES = coordinator/http.h coordinator/http_int.h coordinator/http.c \
	coordinator/http_util.c
libpbhttp_la_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JANSSON_CFLAGS)
libpbhttp_la_LIBADD = libpbcommon.la $(UV_LIBS) $(HTTP_PARSER_LIBS)

libpbcoord_la_SOURCES = \
	coordinator/coord.h \
	coordinator/broker.c \
	coordinator/sched.h coordinator/sched.c \
	coordinator/api.c \
	coordinator/api_breakdown.h coordinator/api_breakdown.c \
	coordinator/api_datasets.h coordinator/api_datasets.c \
	coordinator/api_items.h coordinator/api_items.c \
	coordinator/cron.h coordinator/cron.c \
	coordinator/detect.h coordinator/detect.c \
	coordinator/webhook.h coordinator/webhook.c \
	coordinator/api_regress.h coordinator/api_regress.c \
	coordinator/latest.h coordinator/latest.c \
	coordinator/api_schedules.h coordinator/api_schedules.c \
	coordinator/zloop.h coordinator/zloop.c
libpbcoord_la_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(ZMQ_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
libpbcoord_la_LIBADD = libpbhttp.la libpbdb.la libpbsuites.la libpbengine.la libpbcommon.la $(UV_LIBS) $(ZMQ_LIBS) \
	$(CURL_LIBS)

bin_PROGRAMS += posbench-coordinator
posbench_coordinator_SOURCES = coordinator/main.c
posbench_coordinator_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(ZMQ_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
posbench_coordinator_LDADD = libpbcoord.la
