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
	common/regress.h common/regress.c \
	common/version.h common/version.c \
	common/utf8.h common/utf8.c
libpbcommon_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(ZMQ_CFLAGS)
libpbcommon_la_LIBADD = $(JANSSON_LIBS) $(ZMQ_LIBS) -lm
# The commit a build comes from, checked on every make and rewritten only
# when it changed, so an unchanged tree rebuilds nothing.
common/gitcommit.h: pb-gitcommit-check
	@:
pb-gitcommit-check:
	@mkdir -p common; c=`git -C $(srcdir) rev-parse --short=12 HEAD 2>/dev/null || echo unknown`; \
	if [ "$$c" != unknown ] && [ -n "`git -C $(srcdir) status --porcelain --untracked-files=no 2>/dev/null | head -n1`" ]; then \
	  c="$$c-dirty"; fi; \
	echo "#define PB_GIT_COMMIT \"$$c\"" > common/gitcommit.h.tmp; \
	if cmp -s common/gitcommit.h.tmp common/gitcommit.h; then rm -f common/gitcommit.h.tmp; \
	else mv common/gitcommit.h.tmp common/gitcommit.h; fi
.PHONY: pb-gitcommit-check
BUILT_SOURCES += common/gitcommit.h
$(libpbcommon_la_OBJECTS): common/gitcommit.h
CLEANFILES += common/gitcommit.h
