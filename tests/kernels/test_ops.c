/* tests/kernels/test_ops.c: GEMM / GEMV (BLAS and built-in paths) and the
 * ops of kernels/ops.c, each against a double-precision computation written
 * here and each ISA against scalar, on odd sizes and tails, with 1 and 2
 * threads, in place, and on the edge cases (-inf, large logits, bad ids). */
#include "tests/kernels/ktest.h"

#include "kernels/kernels_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CTX 6

/* Every ISA this CPU runs, with 1 and 2 threads; scalar 1-thread first. */
static int make_ctxs(pk_ctx_t **c)
{
	pk_isa_t isas[3];
	int ni = kt_isas(isas), n = 0;
	for (int i = 0; i < ni; i++)
		for (int t = 1; t <= 2; t++)
			c[n++] = kt_ctx(t, isas[i]);
	return n;
}

static void free_ctxs(pk_ctx_t **c, int n)
{
	for (int i = 0; i < n; i++)
		pk_ctx_destroy(c[i]);
}

static const char *ctx_name(pk_ctx_t *c)
{
	static char buf[64];
	snprintf(buf, sizeof buf, "%s/%dt", pk_isa_name(pk_ctx_isa(c)), pk_ctx_threads(c));
	return buf;
}

/* ---- GEMM ------------------------------------------------------------- */
#define PAD 3
#define SENT 12345.0f

typedef void (*gemm_fn)(pk_ctx_t *, int, int, int, int, int, float, const float *,
	int, const float *, int, float, float *, int);

/* C (M, ldc) vs ref (M, N): values within tolerance, padding untouched */
static void check_c(const char *what, const float *ref, const float *C, int M, int N,
	int ldc, float atol, float rtol)
{
	for (int i = 0; i < M; i++) {
		kt_assert_close(what, ref + (size_t)i * N, C + (size_t)i * ldc, (size_t)N, atol, rtol);
		for (int j = N; j < ldc; j++)
			if (C[(size_t)i * ldc + j] != SENT)
				fail_msg("%s: padding at (%d, %d) written", what, i, j);
	}
}

static void gemm_case(pk_ctx_t **ctxs, int nctx, kt_rng_t *rng, int ta, int tb,
	int M, int N, int K, float alpha, float beta)
{
	int lda = (ta ? M : K) + PAD, ldb = (tb ? K : N) + PAD, ldc = N + PAD;
	size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
	float *A = kt_rand(rng, na, -1, 1), *B = kt_rand(rng, nb, -1, 1);
	float *C0 = kt_rand(rng, (size_t)M * ldc, -1, 1), *C = malloc((size_t)M * ldc * sizeof *C);
	float *ref = malloc((size_t)M * N * sizeof *ref), *sref = malloc((size_t)M * N * sizeof *ref);
	assert_non_null(C);
	assert_non_null(ref);
	assert_non_null(sref);
	for (int i = 0; i < M; i++)
		for (int j = 0; j < ldc; j++)
			if (j >= N)
				C0[(size_t)i * ldc + j] = SENT;
			else if (beta == 0.0f) /* must be overwritten, not scaled */
				C0[(size_t)i * ldc + j] = NAN;
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double s = 0;
			for (int p = 0; p < K; p++)
				s += (double)(ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p]) *
					(tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j]);
			double c = beta == 0.0f ? 0.0 : (double)beta * C0[(size_t)i * ldc + j];
			ref[(size_t)i * N + j] = (float)(alpha * s + c);
		}
	float atol = 1e-5f + 2e-7f * K, rtol = 1e-5f;
	char what[160];
	for (int c = 0; c < nctx; c++)
		for (int path = 0; path < 2; path++) {
			gemm_fn f = path ? pk__gemm_fallback : pk_sgemm;
			memcpy(C, C0, (size_t)M * ldc * sizeof *C);
			f(ctxs[c], ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
			snprintf(what, sizeof what, "%s %s ta=%d tb=%d M=%d N=%d K=%d beta=%g",
				path ? "gemm_fallback" : "sgemm", ctx_name(ctxs[c]), ta, tb, M, N, K,
				(double)beta);
			check_c(what, ref, C, M, N, ldc, atol, rtol);
			if (c == 0 && path == 0) /* scalar reference result */
				for (int i = 0; i < M; i++)
					memcpy(sref + (size_t)i * N, C + (size_t)i * ldc, (size_t)N * sizeof *C);
			else
				check_c(what, sref, C, M, N, ldc, atol, rtol);
		}
	free(A), free(B), free(C0), free(C), free(ref), free(sref);
}

static void test_gemm(void **state)
{
	static const int shapes[][3] = {
		{ 1, 1, 1 }, { 7, 7, 7 }, { 1, 130, 33 }, { 130, 1, 7 }, { 7, 33, 130 },
		{ 130, 7, 33 }, { 33, 130, 1 }, { 33, 33, 33 }, { 130, 130, 130 },
		{ 40, 50, 600 },  /* several K blocks */
		{ 20, 700, 30 },  /* several N tiles */
		{ 250, 40, 20 },  /* several M tiles */
	};
	pk_ctx_t *ctxs[MAX_CTX];
	int nctx = make_ctxs(ctxs);
	kt_rng_t rng;
	kt_seed(&rng, 1);
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int t = 0; t < 4; t++)
			for (int b = 0; b < 2; b++)
				gemm_case(ctxs, nctx, &rng, t & 1, t >> 1, shapes[s][0], shapes[s][1],
					shapes[s][2], b ? 0.75f : -1.5f, b ? 0.5f : 0.0f);
	free_ctxs(ctxs, nctx);
}

/* alpha = 0 or K = 0: C = beta * C without touching A and B (NULL here) */
static void test_gemm_degenerate(void **state)
{
	pk_ctx_t *ctxs[MAX_CTX];
	int nctx = make_ctxs(ctxs);
	float C[6], ref[6] = { 2, 4, 6, 8, 10, 12 };
	for (int c = 0; c < nctx; c++)
		for (int path = 0; path < 2; path++) {
			gemm_fn f = path ? pk__gemm_fallback : pk_sgemm;
			for (int i = 0; i < 6; i++)
				C[i] = (float)(i + 1);
			f(ctxs[c], 0, 0, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 2.0f, C, 3);
			kt_assert_close("gemm K=0", ref, C, 6, 0, 0);
			f(ctxs[c], 0, 0, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 0.0f, C, 3);
			for (int i = 0; i < 6; i++)
				assert_true(C[i] == 0.0f);
		}
	free_ctxs(ctxs, nctx);
}

/* ---- GEMV ------------------------------------------------------------- */
typedef void (*gemv_fn)(pk_ctx_t *, int, int, int, float, const float *, int,
	const float *, float, float *);

static void gemv_case(pk_ctx_t **ctxs, int nctx, kt_rng_t *rng, int trans, int M,
	int N, float alpha, float beta)
{
	int lda = N + 5, nx = trans ? M : N, ny = trans ? N : M;
	float *A = kt_rand(rng, (size_t)M * lda, -1, 1), *x = kt_rand(rng, (size_t)nx, -1, 1);
	float *y0 = kt_rand(rng, (size_t)ny, -1, 1), *y = malloc((size_t)ny * sizeof *y);
	float *ref = malloc((size_t)ny * sizeof *ref), *sref = malloc((size_t)ny * sizeof *ref);
	assert_non_null(y);
	assert_non_null(ref);
	assert_non_null(sref);
	for (int i = 0; beta == 0.0f && i < ny; i++)
		y0[i] = NAN;
	for (int i = 0; i < ny; i++) {
		double s = 0;
		for (int p = 0; p < nx; p++)
			s += (double)(trans ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p]) * x[p];
		ref[i] = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * y0[i]));
	}
	float atol = 1e-5f + 2e-7f * nx, rtol = 1e-5f;
	char what[128];
	for (int c = 0; c < nctx; c++)
		for (int path = 0; path < 2; path++) {
			gemv_fn f = path ? pk__gemv_fallback : pk_sgemv;
			memcpy(y, y0, (size_t)ny * sizeof *y);
			f(ctxs[c], trans, M, N, alpha, A, lda, x, beta, y);
			snprintf(what, sizeof what, "%s %s trans=%d M=%d N=%d beta=%g",
				path ? "gemv_fallback" : "sgemv", ctx_name(ctxs[c]), trans, M, N,
				(double)beta);
			kt_assert_close(what, ref, y, (size_t)ny, atol, rtol);
			if (c == 0 && path == 0)
				memcpy(sref, y, (size_t)ny * sizeof *y);
			else
				kt_assert_close(what, sref, y, (size_t)ny, atol, rtol);
		}
	free(A), free(x), free(y0), free(y), free(ref), free(sref);
}

static void test_gemv(void **state)
{
	static const int shapes[][2] = {
		{ 1, 1 }, { 7, 33 }, { 130, 7 }, { 33, 130 }, { 3, 17 },
		{ 300, 3001 }, /* threaded over rows / column slices */
		{ 2000, 45 },
	};
	pk_ctx_t *ctxs[MAX_CTX];
	int nctx = make_ctxs(ctxs);
	kt_rng_t rng;
	kt_seed(&rng, 2);
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int t = 0; t < 2; t++)
			for (int b = 0; b < 2; b++)
				gemv_case(ctxs, nctx, &rng, t, shapes[s][0], shapes[s][1],
					b ? 0.75f : -1.25f, b ? -0.5f : 0.0f);
	free_ctxs(ctxs, nctx);
}

/* ---- row ops ---------------------------------------------------------- */
static const int row_shapes[][2] = {
	{ 1, 1 }, { 3, 7 }, { 5, 17 }, { 2, 33 }, { 4, 1000 },
	{ 40, 1031 }, /* threaded, several rows per task */
	{ 2, 40000 }, /* threaded, a row per task */
};
#define NROW_SHAPES (sizeof row_shapes / sizeof row_shapes[0])

static void softmax_ref(float *ref, const float *x, int rows, int n)
{
	for (int r = 0; r < rows; r++) {
		const float *xr = x + (size_t)r * n;
		double mx = -INFINITY, s = 0;
		for (int i = 0; i < n; i++)
			mx = xr[i] > mx ? xr[i] : mx;
		for (int i = 0; i < n; i++)
			s += exp(xr[i] - mx);
		for (int i = 0; i < n; i++)
			ref[(size_t)r * n + i] = (float)(exp(xr[i] - mx) / s);
	}
}

static void test_softmax(void **state)
{
	pk_ctx_t *ctxs[MAX_CTX];
	int nctx = make_ctxs(ctxs);
	kt_rng_t rng;
	kt_seed(&rng, 3);
	char what[96];
	for (size_t s = 0; s < NROW_SHAPES; s++)
		for (int big = 0; big < 2; big++) {
			int rows = row_shapes[s][0], n = row_shapes[s][1];
			size_t len = (size_t)rows * n;
			/* big: logits of magnitude 1e4 must neither overflow nor vanish */
			float lim = big ? 1e4f : 8.0f;
			float *x = kt_rand(&rng, len, -lim, lim), *y = malloc(len * sizeof *y);
			float *ref = malloc(len * sizeof *ref);
			assert_non_null(y);
			assert_non_null(ref);
			if (n > 3)
				for (int r = 0; r < rows; r++) /* masked entries */
					x[(size_t)r * n + 1] = x[(size_t)r * n + n - 2] = -INFINITY;
			softmax_ref(ref, x, rows, n);
			for (int c = 0; c < nctx; c++) {
				memcpy(y, x, len * sizeof *y);
				pk_softmax(ctxs[c], y, rows, n);
				snprintf(what, sizeof what, "softmax %s %dx%d big=%d", ctx_name(ctxs[c]),
					rows, n, big);
				kt_assert_close(what, ref, y, len, 1e-9f, 2e-5f);
				for (int r = 0; r < rows; r++) {
					double sum = 0;
					for (int i = 0; i < n; i++)
						sum += y[(size_t)r * n + i];
					if (fabs(sum - 1.0) > 1e-4)
						fail_msg("%s: row %d sums to %.9g", what, r, sum);
					if (n > 3 && (y[(size_t)r * n + 1] != 0.0f || y[(size_t)r * n + n - 2] != 0.0f))
						fail_msg("%s: -inf entry not 0", what);
				}
			}
			free(x), free(y), free(ref);
		}
	/* a row of all -inf becomes zeros, its neighbours are unaffected */
	for (int n = 1; n <= 40; n += 13)
		for (int c = 0; c < nctx; c++) {
			float x[3 * 40];
			for (int i = 0; i < 3 * n; i++)
				x[i] = i / n == 1 ? -INFINITY : 0.0f;
			pk_softmax(ctxs[c], x, 3, n);
			for (int i = 0; i < 3 * n; i++) {
				float want = i / n == 1 ? 0.0f : 1.0f / n;
				if (!(fabsf(x[i] - want) <= 1e-6f))
					fail_msg("softmax all -inf %s n=%d: x[%d] = %g, want %g",
						ctx_name(ctxs[c]), n, i, (double)x[i], (double)want);
			}
		}
	free_ctxs(ctxs, nctx);
}

static void norm_ref(float *ref, const float *x, const float *w, const float *b,
	int rows, int n, float eps, int layer)
{
	for (int r = 0; r < rows; r++) {
		const float *xr = x + (size_t)r * n;
		double m = 0, v = 0;
		if (layer) {
			for (int i = 0; i < n; i++)
				m += xr[i];
			m /= n;
		}
		for (int i = 0; i < n; i++)
			v += (xr[i] - m) * (xr[i] - m);
		double rs = 1.0 / sqrt(v / n + eps);
		for (int i = 0; i < n; i++)
			ref[(size_t)r * n + i] = (float)((xr[i] - m) * rs * w[i] + (b ? b[i] : 0.0));
	}
}

/* RMSNorm and LayerNorm (with and without bias), out-of-place and in place */
static void test_norms(void **state)
{
	pk_ctx_t *ctxs[MAX_CTX];
	int nctx = make_ctxs(ctxs);
	kt_rng_t rng;
	kt_seed(&rng, 4);
	char what[96];
	const float eps = 1e-5f;
	for (size_t s = 0; s < NROW_SHAPES; s++) {
		int rows = row_shapes[s][0], n = row_shapes[s][1];
		size_t len = (size_t)rows * n;
		/* an offset mean checks LayerNorm centres before squaring */
		float *x = kt_rand(&rng, len, -2, 4), *w = kt_rand(&rng, (size_t)n, 0.5f, 1.5f);
		float *b = kt_rand(&rng, (size_t)n, -1, 1);
		float *y = malloc(len * sizeof *y), *ref = malloc(len * sizeof *ref);
		assert_non_null(y);
		assert_non_null(ref);
		for (int kind = 0; kind < 3; kind++) { /* rms, layer, layer+bias */
			norm_ref(ref, x, w, kind == 2 ? b : NULL, rows, n, eps, kind > 0);
			for (int c = 0; c < nctx; c++)
				for (int inplace = 0; inplace < 2; inplace++) {
					float *out = y;
					memcpy(y, x, len * sizeof *y);
					const float *in = inplace ? y : x;
					if (kind == 0)
						pk_rmsnorm(ctxs[c], out, in, w, rows, n, eps);
					else
						pk_layernorm(ctxs[c], out, in, w, kind == 2 ? b : NULL, rows, n, eps);
					snprintf(what, sizeof what, "%s %s %dx%d inplace=%d",
						kind ? (kind == 2 ? "layernorm+b" : "layernorm") : "rmsnorm",
						ctx_name(ctxs[c]), rows, n, inplace);
					kt_assert_close(what, ref, y, len, 2e-5f, 2e-5f);
				}
		}
		free(x), free(w), free(b), free(y), free(ref);
	}
	free_ctxs(ctxs, nctx);
}

/* ---- elementwise ------------------------------------------------------ */
enum { OP_GELU_TANH, OP_GELU_ERF, OP_SILU, OP_SWIGLU, OP_ADD, NOPS };
static const char *op_names[NOPS] = { "gelu_tanh", "gelu_erf", "silu", "swiglu", "add" };

static double ew_ref(int op, double a, double b)
{
	switch (op) {
	case OP_GELU_TANH:
		return 0.5 * a * (1.0 + tanh(sqrt(2.0 / M_PI) * (a + 0.044715 * a * a * a)));
	case OP_GELU_ERF: return 0.5 * a * (1.0 + erf(a / sqrt(2.0)));
	case OP_SILU: return a / (1.0 + exp(-a));
	case OP_SWIGLU: return a / (1.0 + exp(-a)) * b;
	default: return a + b;
	}
}

/* alias: 0 = out separate, 1 = out == a, 2 = out == b (binary ops) */
static void ew_call(pk_ctx_t *c, int op, float *out, const float *a, const float *b, size_t n)
{
	switch (op) {
	case OP_GELU_TANH: pk_gelu_tanh(c, out, a, n); break;
	case OP_GELU_ERF: pk_gelu_erf(c, out, a, n); break;
	case OP_SILU: pk_silu(c, out, a, n); break;
	case OP_SWIGLU: pk_swiglu(c, out, a, b, n); break;
	default: /* y += x: y is both out and a */
		memcpy(out, a, n * sizeof *out);
		pk_add(c, out, b, n);
		break;
	}
}

static void test_elementwise(void **state)
{
	static const size_t sizes[] = { 1, 7, 15, 16, 17, 33, 1000, 70001 };
	pk_ctx_t *ctxs[MAX_CTX];
	int nctx = make_ctxs(ctxs);
	kt_rng_t rng;
	kt_seed(&rng, 5);
	char what[96];
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		size_t n = sizes[s];
		float *a = kt_rand(&rng, n, -8, 8), *b = kt_rand(&rng, n, -3, 3);
		float *y = malloc(n * sizeof *y), *ref = malloc(n * sizeof *ref);
		float *tmp = malloc(n * sizeof *tmp);
		assert_non_null(y);
		assert_non_null(ref);
		assert_non_null(tmp);
		/* saturating inputs: the exp clamp must give 0 / x, never NaN */
		static const float special[] = { 0.0f, -0.0f, 1e4f, -1e4f, 90.0f, -90.0f, 1e-20f };
		for (size_t i = 0; i < sizeof special / sizeof special[0] && i < n; i++)
			a[(i * 37) % n] = special[i];
		for (int op = 0; op < NOPS; op++) {
			for (size_t i = 0; i < n; i++)
				ref[i] = (float)ew_ref(op, a[i], b[i]);
			float atol = op == OP_GELU_ERF ? 2e-6f : 1e-6f;
			int naliases = op == OP_SWIGLU ? 3 : 2;
			for (int c = 0; c < nctx; c++)
				for (int alias = 0; alias < naliases; alias++) {
					if (op == OP_ADD && alias) {
						/* y += y doubles y */
						memcpy(y, a, n * sizeof *y);
						pk_add(ctxs[c], y, y, n);
						for (size_t i = 0; i < n; i++)
							tmp[i] = 2.0f * a[i];
						snprintf(what, sizeof what, "add y+=y %s n=%zu", ctx_name(ctxs[c]), n);
						kt_assert_close(what, tmp, y, n, 0, 0);
						continue;
					}
					const float *in_a = a, *in_b = b;
					if (alias == 1) {
						memcpy(y, a, n * sizeof *y);
						in_a = y;
					} else if (alias == 2) {
						memcpy(y, b, n * sizeof *y);
						in_b = y;
					}
					ew_call(ctxs[c], op, y, in_a, in_b, n);
					snprintf(what, sizeof what, "%s %s n=%zu alias=%d", op_names[op],
						ctx_name(ctxs[c]), n, alias);
					kt_assert_close(what, ref, y, n, atol, 1e-5f);
				}
		}
		free(a), free(b), free(y), free(ref), free(tmp);
	}
	free_ctxs(ctxs, nctx);
}

/* ---- embedding, cross-entropy ------------------------------------------ */
static void test_embed(void **state)
{
	pk_ctx_t *ctxs[MAX_CTX];
	int nctx = make_ctxs(ctxs);
	kt_rng_t rng;
	kt_seed(&rng, 6);
	const int vocab = 50, dims[] = { 1, 7, 33, 3000 };
	for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
		int dim = dims[d], n = 37;
		float *table = kt_rand(&rng, (size_t)vocab * dim, -1, 1);
		float *out = malloc((size_t)n * dim * sizeof *out);
		int32_t ids[37];
		assert_non_null(out);
		for (int i = 0; i < n; i++)
			ids[i] = kt_int(&rng, 0, vocab - 1);
		ids[0] = 0, ids[1] = vocab - 1;
		for (int c = 0; c < nctx; c++) {
			memset(out, 0, (size_t)n * dim * sizeof *out);
			assert_int_equal(pk_embed(ctxs[c], out, table, vocab, dim, ids, n), PK_OK);
			for (int i = 0; i < n; i++)
				kt_assert_close("embed", table + (size_t)ids[i] * dim,
					out + (size_t)i * dim, (size_t)dim, 0, 0);
			/* a bad id: rows before it written, it and later ones untouched */
			for (int bad = 0; bad < 2; bad++) {
				int32_t b[37];
				memcpy(b, ids, sizeof b);
				b[20] = bad ? vocab : -1;
				for (size_t i = 0; i < (size_t)n * dim; i++)
					out[i] = SENT;
				assert_int_equal(pk_embed(ctxs[c], out, table, vocab, dim, b, n), PK_ERANGE);
				for (int i = 0; i < n; i++)
					for (int j = 0; j < dim; j++) {
						float got = out[(size_t)i * dim + j];
						float want = i < 20 ? table[(size_t)b[i] * dim + j] : SENT;
						if (got != want)
							fail_msg("embed bad id: out[%d][%d] = %g, want %g", i, j,
								(double)got, (double)want);
					}
			}
		}
		free(table), free(out);
	}
	free_ctxs(ctxs, nctx);
}

static void test_cross_entropy(void **state)
{
	pk_ctx_t *ctxs[MAX_CTX];
	int nctx = make_ctxs(ctxs);
	kt_rng_t rng;
	kt_seed(&rng, 7);
	char what[96];
	for (size_t s = 0; s < NROW_SHAPES; s++)
		for (int big = 0; big < 2; big++) {
			int rows = row_shapes[s][0], vocab = row_shapes[s][1];
			size_t len = (size_t)rows * vocab;
			float lim = big ? 1e4f : 10.0f;
			float *x = kt_rand(&rng, len, -lim, lim);
			float *ref = malloc((size_t)rows * sizeof *ref), *loss = malloc((size_t)rows * sizeof *loss);
			int32_t *tg = malloc((size_t)rows * sizeof *tg);
			assert_non_null(ref);
			assert_non_null(loss);
			assert_non_null(tg);
			double mref = 0;
			for (int r = 0; r < rows; r++) {
				const float *xr = x + (size_t)r * vocab;
				tg[r] = kt_int(&rng, 0, vocab - 1);
				if (vocab > 3)
					x[(size_t)r * vocab + (tg[r] + 1) % vocab] = -INFINITY;
				double mx = -INFINITY, sum = 0;
				for (int i = 0; i < vocab; i++)
					mx = xr[i] > mx ? xr[i] : mx;
				for (int i = 0; i < vocab; i++)
					sum += exp(xr[i] - mx);
				ref[r] = (float)(mx + log(sum) - xr[tg[r]]);
				mref += mx + log(sum) - xr[tg[r]];
			}
			mref /= rows;
			double m1 = 0;
			for (int c = 0; c < nctx; c++) {
				double mean = -1;
				assert_int_equal(pk_cross_entropy(ctxs[c], x, rows, vocab, tg, loss, &mean), PK_OK);
				snprintf(what, sizeof what, "cross_entropy %s %dx%d big=%d",
					ctx_name(ctxs[c]), rows, vocab, big);
				/* losses of logits around 1e4 are differences of large numbers */
				kt_assert_close(what, ref, loss, (size_t)rows, big ? 2e-3f : 2e-5f, 1e-5f);
				if (!(fabs(mean - mref) <= (big ? 2e-3 : 2e-5) + 1e-5 * fabs(mref)))
					fail_msg("%s: mean %.9g, reference %.9g", what, mean, mref);
				/* chunking depends on the shape only: threads give the same mean */
				if (c % 2 == 0)
					m1 = mean;
				else if (mean != m1)
					fail_msg("%s: mean %.17g differs from 1 thread's %.17g", what, mean, m1);
				double m2 = -1;
				assert_int_equal(pk_cross_entropy(ctxs[c], x, rows, vocab, tg, NULL, &m2), PK_OK);
				assert_true(m2 == mean);
			}
			/* bad target: PK_ERANGE, nothing written */
			for (int c = 0; c < nctx; c++)
				for (int bad = 0; bad < 2; bad++) {
					int32_t keep = tg[rows - 1];
					tg[rows - 1] = bad ? vocab : -1;
					for (int r = 0; r < rows; r++)
						loss[r] = SENT;
					double mean = SENT;
					assert_int_equal(pk_cross_entropy(ctxs[c], x, rows, vocab, tg, loss, &mean),
						PK_ERANGE);
					assert_true(mean == SENT);
					for (int r = 0; r < rows; r++)
						assert_true(loss[r] == SENT);
					tg[rows - 1] = keep;
				}
			free(x), free(ref), free(loss), free(tg);
		}
	free_ctxs(ctxs, nctx);
}

int pk_test_ops(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gemm),
		cmocka_unit_test(test_gemm_degenerate),
		cmocka_unit_test(test_gemv),
		cmocka_unit_test(test_softmax),
		cmocka_unit_test(test_norms),
		cmocka_unit_test(test_elementwise),
		cmocka_unit_test(test_embed),
		cmocka_unit_test(test_cross_entropy),
	};
	return cmocka_run_group_tests_name("kernels-ops", tests, NULL, NULL);
}
