# suites/: the registry, job specs and the suites.
noinst_LTLIBRARIES += libpbsuites.la
libpbsuites_la_SOURCES = \
	suites/suite.h suites/suite_int.h suites/registry.c \
	suites/jobspec.h suites/jobspec.c \
	suites/dataset.h suites/dataset.c suites/dataset_int.h suites/dataset_retrieval.c \
	suites/arithmetic.c \
	suites/lengthgen.c \
	suites/table.c \
	suites/longctx.c suites/longctx_int.h suites/longctx_niah.c \
	suites/longctx_words.c suites/longctx_altqa.c \
	suites/retrieval.c suites/retrieval_metrics.c suites/retrieval_int.h \
	suites/retrieval_params.c suites/retrieval_data.c \
	suites/halluc.c suites/halluc_score.c \
	suites/kernels.c suites/kernels_bench.c suites/kernels_int.h
libpbsuites_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
libpbsuites_la_LIBADD = libpbkernels.la libpbcommon.la
