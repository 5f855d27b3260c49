# suites/: the registry, job specs and the suites.
noinst_LTLIBRARIES += libpbsuites.la
libpbsuites_la_SOURCES = \
	suites/suite.h suites/suite_int.h suites/registry.c \
	suites/jobspec.h suites/jobspec.c \
	suites/arithmetic.c \
	suites/lengthgen.c \
	suites/table.c \
	suites/longctx.c suites/longctx_int.h suites/longctx_niah.c
libpbsuites_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
libpbsuites_la_LIBADD = libpbcommon.la
