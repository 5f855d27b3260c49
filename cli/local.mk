# cli/: the posbench command-line client and the `posbench up` launcher.
bin_PROGRAMS += posbench
posbench_SOURCES = cli/cli.h cli/main.c cli/client.c cli/output.c cli/jobs.c \
	cli/results.c cli/commands.c cli/up.c cli/datasets.c cli/export.c \
	cli/regressions.c
posbench_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) -DPB_BINDIR='"$(bindir)"'
posbench_LDADD = libpbcommon.la $(CURL_LIBS) $(JANSSON_LIBS)
