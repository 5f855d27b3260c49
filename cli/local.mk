# cli/: the posbench command-line client.
bin_PROGRAMS += posbench
posbench_SOURCES = cli/main.c cli/cli.h cli/client.c cli/commands.c cli/up.c
posbench_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) -DPB_BINDIR='"$(bindir)"'
posbench_LDADD = libpbcommon.la $(CURL_LIBS)
