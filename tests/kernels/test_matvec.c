/* tests/kernels/test_matvec.c: pk_matvec (decode's fused matrix-vector
 * products) on every ISA and thread count against a double-precision
 * reference: odd row and column counts, several products per call (task
 * chunks crossing product boundaries), biases, guards past each output. */
#include "tests/kernels/ktest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 4
#define GUARD_VAL 12345.0f

// y[i] = sum_p w[i][p] x[p] (+ b[i]), in double
static void ref_matvec(const pk_matvec_t *m, const float *x, int cols, float *y)
{
	for (int i = 0; i < m->rows; i++) {
		double s = m->b ? m->b[i] : 0.0;
		for (int p = 0; p < cols; p++)
			s += (double)m->w[(size_t)i * cols + p] * x[p];
		y[i] = (float)s;
	}
}

/* One call of n products with these rows over cols, on each context. */
static void check(pk_ctx_t *const *ctxs, int nctx, kt_rng_t *rng, const int *rows, int n,
	int cols, int bias)
{
	pk_matvec_t mv[3];
	float *ref[3], *w[3], *b[3], *y[3];
	float *x = kt_rand(rng, (size_t)cols, -1, 1);
	char what[128];
	for (int k = 0; k < n; k++) {
		w[k] = kt_rand(rng, (size_t)rows[k] * cols + 1, -1, 1);
		b[k] = bias ? kt_rand(rng, (size_t)rows[k] + 1, -1, 1) : NULL;
		y[k] = malloc(((size_t)rows[k] + GUARD) * sizeof *y[k]);
		ref[k] = malloc(((size_t)rows[k] + 1) * sizeof *ref[k]);
		assert_non_null(y[k]);
		assert_non_null(ref[k]);
		mv[k] = (pk_matvec_t){ .w = w[k], .b = b[k], .rows = rows[k], .y = y[k] };
		ref_matvec(&mv[k], x, cols, ref[k]);
	}
	/* float sums of cols terms of |.| <= 1: error grows about with sqrt(cols) */
	float atol = 1e-6f * (float)cols + 1e-6f;
	for (int c = 0; c < nctx; c++) {
		for (int k = 0; k < n; k++)
			for (int i = 0; i < rows[k] + GUARD; i++)
				y[k][i] = i < rows[k] ? NAN : GUARD_VAL;
		assert_int_equal(pk_matvec(ctxs[c], mv, n, x, cols), PK_OK);
		for (int k = 0; k < n; k++) {
			snprintf(what, sizeof what, "matvec %s/%d product %d of %d, %dx%d%s",
				pk_isa_name(pk_ctx_isa(ctxs[c])), pk_ctx_threads(ctxs[c]), k, n,
				rows[k], cols, bias ? " +b" : "");
			kt_assert_close(what, ref[k], y[k], (size_t)rows[k], atol, 1e-5f);
			for (int i = rows[k]; i < rows[k] + GUARD; i++)
				if (y[k][i] != GUARD_VAL)
					fail_msg("%s: wrote past the output at %d", what, i);
		}
	}
	for (int k = 0; k < n; k++) {
		free(w[k]);
		free(b[k]);
		free(y[k]);
		free(ref[k]);
	}
	free(x);
}

static void test_matvec_shapes(void **state)
{
	static const int cols[] = { 1, 7, 8, 9, 31, 768, 2049 };
	static const int rows[][3] = {
		{ 1, 0, 0 }, { 3, 4, 5 }, { 17, 2, 33 }, { 768, 256, 256 }, { 2048, 2048, 0 },
		{ 4099, 0, 0 },
	};
	static const int nprod[] = { 1, 3, 3, 3, 2, 1 };
	pk_isa_t isas[3];
	int ni = kt_isas(isas), nctx = 0;
	pk_ctx_t *ctxs[6];
	for (int i = 0; i < ni; i++) {
		ctxs[nctx++] = kt_ctx(1, isas[i]);
		ctxs[nctx++] = kt_ctx(2, isas[i]);
	}
	kt_rng_t rng;
	kt_seed(&rng, 11);
	for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
		for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
			/* keep the largest products to the decode-sized columns */
			if ((size_t)rows[r][0] * cols[c] > ((size_t)4 << 20))
				continue;
			check(ctxs, nctx, &rng, rows[r], nprod[r], cols[c], (int)(r + c) % 2);
		}
	for (int i = 0; i < nctx; i++)
		pk_ctx_destroy(ctxs[i]);
	(void)state;
}

static void test_matvec_invalid(void **state)
{
	pk_ctx_t *ctx = kt_ctx(1, PK_ISA_SCALAR);
	float w[4] = { 1, 2, 3, 4 }, x[2] = { 1, 1 }, y[2] = { 0, 0 };
	pk_matvec_t mv[9];
	for (int i = 0; i < 9; i++)
		mv[i] = (pk_matvec_t){ .w = w, .rows = 2, .y = y };
	assert_int_equal(pk_matvec(ctx, mv, 0, x, 2), PK_EINVAL);
	assert_int_equal(pk_matvec(ctx, mv, 9, x, 2), PK_EINVAL);
	assert_int_equal(pk_matvec(ctx, mv, 1, x, 0), PK_EINVAL);
	mv[0].rows = -1;
	assert_int_equal(pk_matvec(ctx, mv, 1, x, 2), PK_EINVAL);
	mv[0].rows = 2;
	mv[0].y = NULL;
	assert_int_equal(pk_matvec(ctx, mv, 1, x, 2), PK_EINVAL);
	mv[0].y = y;
	assert_int_equal(pk_matvec(ctx, mv, 1, x, 2), PK_OK);
	assert_true(y[0] == 3.0f && y[1] == 7.0f);
	pk_ctx_destroy(ctx);
	(void)state;
}

int pk_test_matvec(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matvec_shapes),
		cmocka_unit_test(test_matvec_invalid),
	};
	return cmocka_run_group_tests_name("kernels-matvec", tests, NULL, NULL);
}
