# kernels/: the numeric core (libpbkernels.la): libc, libm, BLAS, threads only.
noinst_LTLIBRARIES += libpbkernels.la
libpbkernels_la_SOURCES = kernels/kernels.h kernels/kernels_int.h kernels/ctx.c \
	kernels/gemm.c kernels/matvec.c kernels/ops.c \
	kernels/rope.c kernels/pe.c \
	kernels/attn.c kernels/attn_prefill.c kernels/attn_decode.c kernels/attn_int.h \
	kernels/kv.c kernels/dsparse.c kernels/sim.c
libpbkernels_la_CFLAGS = $(AM_CFLAGS) $(BLAS_CFLAGS)
libpbkernels_la_LIBADD = $(BLAS_LIBS) -lm
