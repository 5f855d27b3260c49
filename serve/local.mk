# serve/: posbench-serve, an OpenAI-compatible HTTP server over the native
# engine on the coordinator's HTTP layer. The library part is linked by the
# unit tests too.
noinst_LTLIBRARIES += libpbserve.la
libpbserve_la_SOURCES = serve/serve.h serve/proto.c serve/api.c serve/batch.c serve/gen.c
libpbserve_la_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JANSSON_CFLAGS)
libpbserve_la_LIBADD = libpbhttp.la libpbengine.la libpbcommon.la $(UV_LIBS) $(JANSSON_LIBS) -lm

bin_PROGRAMS += posbench-serve
posbench_serve_SOURCES = serve/main.c
posbench_serve_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JANSSON_CFLAGS)
posbench_serve_LDADD = libpbserve.la
