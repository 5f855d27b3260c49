# common/: errors, logging, RNG and hashing, buffers, JSON helpers, protocol framing.
noinst_LTLIBRARIES += libpbcommon.la
libpbcommon_la_SOURCES = \
	common/pb.h common/errors.c \
	common/log.h common/log.c \
	common/rng.h common/rng.c \
	common/util.h common/util.c \
	common/json.h common/json.c \
	common/items.h common/items.c \
	common/proto.h common/proto.c \
	common/sha256.h common/sha256.c \
	common/regress.h common/regress.c
libpbcommon_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(ZMQ_CFLAGS)
libpbcommon_la_LIBADD = $(JANSSON_LIBS) $(ZMQ_LIBS) -lm
