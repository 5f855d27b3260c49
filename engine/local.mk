# engine/: the native transformer engine (libpbengine.la) on kernels/:
# checkpoints, tokenizers, forward pass, generation (issue 6).
noinst_LTLIBRARIES += libpbengine.la
libpbengine_la_SOURCES = engine/checkpoint.h engine/tokenizer.h \
	engine/tok_int.h engine/tokenizer.c engine/tok_load.c engine/tok_bpe.c \
	engine/tok_text.c engine/tok_wordpiece.c
libpbengine_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(BLAS_CFLAGS)
libpbengine_la_LIBADD = libpbkernels.la libpbcommon.la $(JANSSON_LIBS) -lm
libpbengine_la_SOURCES += engine/safetensors.c engine/checkpoint.c
libpbengine_la_SOURCES += engine/model.h engine/model_int.h engine/model.c engine/forward.c
libpbengine_la_SOURCES += engine/model_arch.c
# The forward-pass driver the NumPy comparison tests run (tests/engine/).
noinst_PROGRAMS += tests/engine/pe_forward
tests_engine_pe_forward_SOURCES = tests/engine/pe_forward.c
tests_engine_pe_forward_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_engine_pe_forward_LDADD = libpbengine.la $(JANSSON_LIBS)
# The tokenizer driver of the conformance test against a published vocabulary.
noinst_PROGRAMS += tests/engine/pe_tokenize
tests_engine_pe_tokenize_SOURCES = tests/engine/pe_tokenize.c
tests_engine_pe_tokenize_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_engine_pe_tokenize_LDADD = libpbengine.la $(JANSSON_LIBS)
# The worker backend's loglik op on a checkpoint (test_native_loglik.py).
noinst_PROGRAMS += tests/engine/pb_loglik
tests_engine_pb_loglik_SOURCES = tests/engine/pb_loglik.c
tests_engine_pb_loglik_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_engine_pb_loglik_LDADD = libpbworker.la $(JANSSON_LIBS)
EXTRA_DIST += tests/engine/make_ckpt.py tests/engine/ref_forward.py \
	tests/integration/test_engine_forward.py \
	tests/integration/test_tokenizer_conformance.py tests/engine/tok_expected.js \
	tests/integration/test_native_loglik.py
