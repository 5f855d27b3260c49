/* kernels/gemm.c: dense GEMM and GEMV (row-major). Through cblas when
 * configure found OpenBLAS, otherwise a packed, cache-blocked fallback with
 * register-blocked AVX2 / AVX-512 micro-kernels threaded over tiles of C.
 * PK_ISA_SCALAR is the plain loop every other path is checked against. */
#include "config.h"

#include "kernels/kernels_int.h"

#include <string.h>
#include <strings.h>

#ifdef HAVE_BLAS
#include <cblas.h>
#endif

static inline int imin(int a, int b) { return a < b ? a : b; }

/* BLAS convention: beta == 0 overwrites without reading, so NaN or garbage
 * in an uninitialised C never leaks into the result. */
static void scale_rows(float *C, int ldc, int m, int n, float beta)
{
	if (beta == 1.0f)
		return;
	for (int i = 0; i < m; i++) {
		float *c = C + (size_t)i * ldc;
		if (beta == 0.0f)
			memset(c, 0, (size_t)n * sizeof *c);
		else
			for (int j = 0; j < n; j++)
				c[j] *= beta;
	}
}

/* ---- scalar reference ------------------------------------------------- */
// A: (M,K) or stored (K,M) when ta; B: (K,N) or stored (N,K) when tb; C: (M,N)
static void sgemm_scalar(int ta, int tb, int M, int N, int K, float alpha,
	const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			float s = 0.0f;
			for (int p = 0; p < K; p++) {
				float a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
				float b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
				s += a * b;
			}
			float *c = &C[(size_t)i * ldc + j];
			*c = alpha * s + (beta == 0.0f ? 0.0f : beta * *c);
		}
}

// A: (M,N); x: (N) or (M) when trans; y: (M) or (N) when trans
static void sgemv_scalar(int trans, int M, int N, float alpha, const float *A,
	int lda, const float *x, float beta, float *y)
{
	int ny = trans ? N : M, nx = trans ? M : N;
	for (int i = 0; i < ny; i++) {
		float s = 0.0f;
		for (int p = 0; p < nx; p++)
			s += (trans ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p]) * x[p];
		y[i] = alpha * s + (beta == 0.0f ? 0.0f : beta * y[i]);
	}
}

/* ---- packed, blocked fallback ----------------------------------------- */
/* BLIS-style: per tile of C (mc x nc) and block of K (kc), op(B) is packed
 * into kc x NR micro-panels (L1) and op(A) into MR x kc panels (L2); the
 * micro-kernel keeps an MR x NR block of C in registers, broadcasting one
 * A value per row against NR/lanes vector loads of B. Panels are zero-padded
 * so the micro-kernel never branches on edges; edge tiles go through a
 * small buffer. */
#define MR_AVX2 6
#define NR_AVX2 16
#define MR_AVX512 14
#define NR_AVX512 32
#define KC 256
#define NC 512

typedef void (*ukr_fn)(int kc, const float *a, const float *b, float alpha,
	float *c, int ldc, int m, int n);

typedef struct {
	pk_ctx_t *ctx;
	int ta, tb, M, N, K;
	float alpha, beta;
	const float *A, *B;
	int lda, ldb;
	float *C;
	int ldc;
	int mr, nr, mc, nc, kc, tm, tiles_n; /* tm: rows per tile */
	ukr_fn ukr;
} gemm_job_t;

/* Adds alpha * acc (m x n valid of MR x NR, row stride nr) into C. */
static void edge_add(const float *acc, int nr, float alpha, float *c, int ldc, int m, int n)
{
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++)
			c[(size_t)i * ldc + j] += alpha * acc[i * nr + j];
}

#if PK_X86
// a: (kc, MR) packed; b: (kc, NR) packed; c: (m <= MR, n <= NR) row stride ldc
PK_AVX2 static void ukr_avx2(int kc, const float *a, const float *b, float alpha,
	float *c, int ldc, int m, int n)
{
	__m256 acc[MR_AVX2][2];
#pragma GCC unroll 16
	for (int i = 0; i < MR_AVX2; i++)
		acc[i][0] = acc[i][1] = _mm256_setzero_ps();
	for (int p = 0; p < kc; p++, a += MR_AVX2, b += NR_AVX2) {
		__m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 16
		for (int i = 0; i < MR_AVX2; i++) {
			__m256 ai = _mm256_broadcast_ss(a + i);
			acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
			acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
		}
	}
	__m256 va = _mm256_set1_ps(alpha);
	if (m == MR_AVX2 && n == NR_AVX2) {
#pragma GCC unroll 16
		for (int i = 0; i < MR_AVX2; i++) {
			float *ci = c + (size_t)i * ldc;
			_mm256_storeu_ps(ci, _mm256_fmadd_ps(va, acc[i][0], _mm256_loadu_ps(ci)));
			_mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(va, acc[i][1], _mm256_loadu_ps(ci + 8)));
		}
		return;
	}
	float buf[MR_AVX2 * NR_AVX2];
#pragma GCC unroll 16
	for (int i = 0; i < MR_AVX2; i++) {
		_mm256_storeu_ps(buf + i * NR_AVX2, acc[i][0]);
		_mm256_storeu_ps(buf + i * NR_AVX2 + 8, acc[i][1]);
	}
	edge_add(buf, NR_AVX2, alpha, c, ldc, m, n);
}

PK_AVX512 static void ukr_avx512(int kc, const float *a, const float *b, float alpha,
	float *c, int ldc, int m, int n)
{
	__m512 acc[MR_AVX512][2];
#pragma GCC unroll 16
	for (int i = 0; i < MR_AVX512; i++)
		acc[i][0] = acc[i][1] = _mm512_setzero_ps();
	for (int p = 0; p < kc; p++, a += MR_AVX512, b += NR_AVX512) {
		__m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 16
		for (int i = 0; i < MR_AVX512; i++) {
			__m512 ai = _mm512_set1_ps(a[i]);
			acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
			acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
		}
	}
	__m512 va = _mm512_set1_ps(alpha);
	if (m == MR_AVX512 && n == NR_AVX512) {
#pragma GCC unroll 16
		for (int i = 0; i < MR_AVX512; i++) {
			float *ci = c + (size_t)i * ldc;
			_mm512_storeu_ps(ci, _mm512_fmadd_ps(va, acc[i][0], _mm512_loadu_ps(ci)));
			_mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(va, acc[i][1], _mm512_loadu_ps(ci + 16)));
		}
		return;
	}
	float buf[MR_AVX512 * NR_AVX512];
#pragma GCC unroll 16
	for (int i = 0; i < MR_AVX512; i++) {
		_mm512_storeu_ps(buf + i * NR_AVX512, acc[i][0]);
		_mm512_storeu_ps(buf + i * NR_AVX512 + 16, acc[i][1]);
	}
	edge_add(buf, NR_AVX512, alpha, c, ldc, m, n);
}
#endif

/* op(A) rows [i0, i0+mc), K [p0, p0+kc) -> panels of mr rows: (mc/mr, kc, mr) */
static void pack_a(const gemm_job_t *g, int i0, int mc, int p0, int kc, float *dst)
{
	int mr = g->mr;
	for (int ir = 0; ir < mc; ir += mr) {
		int m = imin(mr, mc - ir);
		float *d = dst + (size_t)ir * kc;
		if (!g->ta) {
			for (int i = 0; i < m; i++) {
				const float *s = g->A + (size_t)(i0 + ir + i) * g->lda + p0;
				for (int p = 0; p < kc; p++)
					d[(size_t)p * mr + i] = s[p];
			}
		} else {
			for (int p = 0; p < kc; p++) {
				const float *s = g->A + (size_t)(p0 + p) * g->lda + i0 + ir;
				for (int i = 0; i < m; i++)
					d[(size_t)p * mr + i] = s[i];
			}
		}
		for (int p = 0; m < mr && p < kc; p++)
			for (int i = m; i < mr; i++)
				d[(size_t)p * mr + i] = 0.0f;
	}
}

/* op(B) K [p0, p0+kc), columns [j0, j0+nc) -> panels of nr columns: (nc/nr, kc, nr) */
static void pack_b(const gemm_job_t *g, int j0, int nc, int p0, int kc, float *dst)
{
	int nr = g->nr;
	for (int jr = 0; jr < nc; jr += nr) {
		int n = imin(nr, nc - jr);
		float *d = dst + (size_t)jr * kc;
		if (!g->tb) {
			for (int p = 0; p < kc; p++) {
				const float *s = g->B + (size_t)(p0 + p) * g->ldb + j0 + jr;
				memcpy(d + (size_t)p * nr, s, (size_t)n * sizeof *s);
				for (int j = n; j < nr; j++)
					d[(size_t)p * nr + j] = 0.0f;
			}
		} else {
			for (int j = 0; j < n; j++) {
				const float *s = g->B + (size_t)(j0 + jr + j) * g->ldb + p0;
				for (int p = 0; p < kc; p++)
					d[(size_t)p * nr + j] = s[p];
			}
			for (int p = 0; n < nr && p < kc; p++)
				for (int j = n; j < nr; j++)
					d[(size_t)p * nr + j] = 0.0f;
		}
	}
}

/* One tm x nc tile of C: beta once, then per K block op(B) is packed once
 * and reused by every mc-row block of the tile. */
static void gemm_tile(void *arg, int t, int tid)
{
	const gemm_job_t *g = arg;
	int i0 = (t / g->tiles_n) * g->tm, j0 = (t % g->tiles_n) * g->nc;
	int tm = imin(g->tm, g->M - i0), nc = imin(g->nc, g->N - j0);
	float *bp = pk__scratch(g->ctx, tid);             /* kc x nc */
	float *ap = bp + (size_t)g->kc * g->nc;           /* mc x kc */
	float *C = g->C + (size_t)i0 * g->ldc + j0;
	scale_rows(C, g->ldc, tm, nc, g->beta);
	for (int p0 = 0; p0 < g->K; p0 += g->kc) {
		int kb = imin(g->kc, g->K - p0);
		pack_b(g, j0, nc, p0, kb, bp);
		for (int ic = 0; ic < tm; ic += g->mc) {
			int mc = imin(g->mc, tm - ic);
			float *Cb = C + (size_t)ic * g->ldc;
			pack_a(g, i0 + ic, mc, p0, kb, ap);
			for (int jr = 0; jr < nc; jr += g->nr)
				for (int ir = 0; ir < mc; ir += g->mr)
					g->ukr(kb, ap + (size_t)ir * kb, bp + (size_t)jr * kb, g->alpha,
						Cb + (size_t)ir * g->ldc + jr, g->ldc,
						imin(g->mr, mc - ir), imin(g->nr, nc - jr));
		}
	}
}

void pk__gemm_fallback(pk_ctx_t *ctx, int trans_a, int trans_b, int M, int N, int K,
	float alpha, const float *A, int lda, const float *B, int ldb,
	float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (K <= 0 || alpha == 0.0f) {
		scale_rows(C, ldc, M, N, beta);
		return;
	}
	gemm_job_t g = {
		.ctx = ctx, .ta = trans_a, .tb = trans_b, .M = M, .N = N, .K = K,
		.alpha = alpha, .beta = beta, .A = A, .B = B, .lda = lda, .ldb = ldb,
		.C = C, .ldc = ldc, .kc = KC, .nc = NC,
	};
#if PK_X86
	if (ctx->isa == PK_ISA_AVX512) {
		g.mr = MR_AVX512, g.nr = NR_AVX512, g.ukr = ukr_avx512;
	} else if (ctx->isa == PK_ISA_AVX2) {
		g.mr = MR_AVX2, g.nr = NR_AVX2, g.ukr = ukr_avx2;
	}
#endif
	if (!g.ukr) {
		sgemm_scalar(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	g.mc = g.mr * (g.mr > 8 ? 8 : 16); /* A block ~100 KiB: stays in L2 */
	/* Tiles of C: all N (in nc slices) by as many rows as keep every thread
	 * busy (about 4 tiles each); taller tiles amortise packing B. */
	int want = ctx->nthreads > 1 ? 4 * ctx->nthreads : 1;
	if (ctx->nthreads > 1 && (M + g.mc - 1) / g.mc * ((N + g.nc - 1) / g.nc) < want) {
		/* too few row blocks: narrow the tiles along N instead */
		int tn = (want + (M + g.mc - 1) / g.mc - 1) / ((M + g.mc - 1) / g.mc);
		int w = (N + tn - 1) / tn;
		w = (w + g.nr - 1) / g.nr * g.nr;
		g.nc = imin(g.nc, w < g.nr ? g.nr : w);
	}
	g.tiles_n = (N + g.nc - 1) / g.nc;
	int tiles_m = (want + g.tiles_n - 1) / g.tiles_n;
	g.tm = (M + tiles_m - 1) / tiles_m;
	g.tm = (g.tm + g.mc - 1) / g.mc * g.mc;
	tiles_m = (M + g.tm - 1) / g.tm;
	size_t bytes = ((size_t)g.kc * g.nc + (size_t)g.mc * g.kc) * sizeof(float);
	if (pk__scratch_reserve(ctx, bytes) != PK_OK) {
		/* out of memory: still give the right answer, slowly */
		sgemm_scalar(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	pk_parallel_for(ctx, tiles_m * g.tiles_n, gemm_tile, &g);
}

/* ---- GEMV fallback ---------------------------------------------------- */
/* Bandwidth-bound: stream A once. No-trans does 4 dot products at a time
 * (x loads shared); trans walks rows as axpy into a column slice of y that
 * stays in L1. Threaded over row / column chunks. */
typedef struct {
	int trans, M, N, lda, chunk;
	float alpha, beta;
	const float *A, *x;
	float *y;
	pk_isa_t isa;
} gemv_job_t;

#define GEMV_COLS 512 /* trans: y slice per task */

#if PK_X86
/* The scalar pieces shared by the AVX2 and AVX-512 GEMVs. */
// a[0..4): rows i..i+m of A; rows past m repeat row i (their sums are dropped)
static inline void gemv_n_rows(const gemv_job_t *g, int i, int m, const float **a)
{
	for (int k = 0; k < 4; k++)
		a[k] = g->A + (size_t)(i + (k < m ? k : 0)) * g->lda;
}

// s[k]: the dot of row a[k] over [0, nv); adds columns [nv, N) and stores y[i + k]
static inline void gemv_n_finish(const gemv_job_t *g, int i, int m, const float *const *a,
	int nv, float *s)
{
	for (int k = 0; k < m; k++) {
		for (int p = nv; p < g->N; p++)
			s[k] += a[k][p] * g->x[p];
		float *y = g->y + i + k;
		*y = g->alpha * s[k] + (g->beta == 0.0f ? 0.0f : g->beta * *y);
	}
}

// y[c0, c1) = beta * y (0 when beta is 0, so NaNs in y do not survive)
static inline void gemv_t_beta(const gemv_job_t *g, int c0, int c1)
{
	for (int j = c0; j < c1; j++)
		g->y[j] = g->beta == 0.0f ? 0.0f : g->beta * g->y[j];
}

// y[j] += a[j] * xi for j in [j0, w): the tail of one row's axpy
static inline void axpy_tail(float *y, const float *a, float xi, int j0, int w)
{
	for (int j = j0; j < w; j++)
		y[j] += a[j] * xi;
}

// rows [r0, r1) of y = alpha * A x + beta y
PK_AVX2 static void gemv_n_avx2(const gemv_job_t *g, int r0, int r1)
{
	int N = g->N, nv = N & ~7;
	int i = r0;
	for (; i < r1; i += 4) {
		int m = imin(4, r1 - i);
		const float *a[4];
		gemv_n_rows(g, i, m, a);
		__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		for (int p = 0; p < nv; p += 8) {
			__m256 xv = _mm256_loadu_ps(g->x + p);
			s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a[0] + p), xv, s0);
			s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a[1] + p), xv, s1);
			s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a[2] + p), xv, s2);
			s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a[3] + p), xv, s3);
		}
		float s[4] = { pk__hsum_avx2(s0), pk__hsum_avx2(s1), pk__hsum_avx2(s2),
			pk__hsum_avx2(s3) };
		gemv_n_finish(g, i, m, a, nv, s);
	}
}

// columns [c0, c1) of y = alpha * A^T x + beta y
PK_AVX2 static void gemv_t_avx2(const gemv_job_t *g, int c0, int c1)
{
	float *y = g->y;
	int w = c1 - c0, wv = w & ~7;
	gemv_t_beta(g, c0, c1);
	for (int i = 0; i < g->M; i++) {
		const float *a = g->A + (size_t)i * g->lda + c0;
		float xi = g->alpha * g->x[i];
		__m256 xv = _mm256_set1_ps(xi);
		for (int j = 0; j < wv; j += 8)
			_mm256_storeu_ps(y + c0 + j, _mm256_fmadd_ps(_mm256_loadu_ps(a + j), xv,
				_mm256_loadu_ps(y + c0 + j)));
		axpy_tail(y + c0, a, xi, wv, w);
	}
}

PK_AVX512 static void gemv_n_avx512(const gemv_job_t *g, int r0, int r1)
{
	int N = g->N, nv = N & ~15;
	int i = r0;
	for (; i < r1; i += 4) {
		int m = imin(4, r1 - i);
		const float *a[4];
		gemv_n_rows(g, i, m, a);
		__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		for (int p = 0; p < nv; p += 16) {
			__m512 xv = _mm512_loadu_ps(g->x + p);
			s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a[0] + p), xv, s0);
			s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a[1] + p), xv, s1);
			s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a[2] + p), xv, s2);
			s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a[3] + p), xv, s3);
		}
		float s[4] = { _mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1),
			_mm512_reduce_add_ps(s2), _mm512_reduce_add_ps(s3) };
		gemv_n_finish(g, i, m, a, nv, s);
	}
}

PK_AVX512 static void gemv_t_avx512(const gemv_job_t *g, int c0, int c1)
{
	float *y = g->y;
	int w = c1 - c0, wv = w & ~15;
	gemv_t_beta(g, c0, c1);
	for (int i = 0; i < g->M; i++) {
		const float *a = g->A + (size_t)i * g->lda + c0;
		float xi = g->alpha * g->x[i];
		__m512 xv = _mm512_set1_ps(xi);
		for (int j = 0; j < wv; j += 16)
			_mm512_storeu_ps(y + c0 + j, _mm512_fmadd_ps(_mm512_loadu_ps(a + j), xv,
				_mm512_loadu_ps(y + c0 + j)));
		axpy_tail(y + c0, a, xi, wv, w);
	}
}
#endif

static void gemv_task(void *arg, int t, int tid)
{
	const gemv_job_t *g = arg;
	int len = g->trans ? g->N : g->M;
	int lo = t * g->chunk, hi = imin(len, lo + g->chunk);
#if PK_X86
	if (g->isa == PK_ISA_AVX512) {
		(g->trans ? gemv_t_avx512 : gemv_n_avx512)(g, lo, hi);
		return;
	}
	if (g->isa == PK_ISA_AVX2) {
		(g->trans ? gemv_t_avx2 : gemv_n_avx2)(g, lo, hi);
		return;
	}
#endif
	/* scalar ISA never gets here (pk__gemv_fallback runs the reference) */
	(void)lo, (void)hi;
}

void pk__gemv_fallback(pk_ctx_t *ctx, int trans, int M, int N, float alpha,
	const float *A, int lda, const float *x, float beta, float *y)
{
	if (M <= 0 || N <= 0) {
		int ny = trans ? N : M;
		for (int i = 0; i < ny; i++)
			y[i] = beta == 0.0f ? 0.0f : beta * y[i];
		return;
	}
	if (ctx->isa == PK_ISA_SCALAR || !PK_X86) {
		sgemv_scalar(trans, M, N, alpha, A, lda, x, beta, y);
		return;
	}
	gemv_job_t g = { .trans = trans, .M = M, .N = N, .lda = lda, .alpha = alpha,
		.beta = beta, .A = A, .x = x, .y = y, .isa = ctx->isa };
	int len = trans ? N : M;
	/* about 64K elements of A per task; small problems stay on one thread */
	if (trans)
		g.chunk = GEMV_COLS;
	else
		g.chunk = (65536 / N + 3) & ~3;
	if (g.chunk < 4)
		g.chunk = 4;
	if ((size_t)M * N < 65536)
		g.chunk = len;
	pk_parallel_for(ctx, (len + g.chunk - 1) / g.chunk, gemv_task, &g);
}

/* ---- public entry points ---------------------------------------------- */
#ifdef HAVE_BLAS
/* OpenBLAS keeps one global thread count: set it to this context's so the
 * thread count stays a parameter. Contexts used concurrently from several
 * threads with different counts race on it (results stay correct). */
static void blas_threads(const pk_ctx_t *ctx)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
	if (openblas_get_num_threads() != ctx->nthreads) /* not on every call */
		openblas_set_num_threads(ctx->nthreads);
#else
	(void)ctx;
#endif
}
#endif

/* Debian's OpenBLAS 0.3.21 gives CPUs it does not know pre-AVX-512
 * kernels (Haswell on Zen 5, Prescott on a Xeon under gVisor: 30 GFLOP/s
 * there against 151 for the built-in AVX-512 GEMM, 2 threads). An AVX-512
 * context therefore uses BLAS only when BLAS picked AVX-512 kernels itself;
 * OPENBLAS_CORETYPE is left to the user. */
int pk__blas_choose(pk_isa_t isa)
{
#ifdef HAVE_BLAS
	if (isa == PK_ISA_SCALAR)
		return 0;
	if (isa != PK_ISA_AVX512)
		return 1;
#ifdef HAVE_OPENBLAS_GET_CORENAME
	static const char *const avx512_cores[] = { "skylakex", "cooperlake", "sapphirerapids" };
	const char *core = openblas_get_corename();
	for (size_t i = 0; core && i < sizeof avx512_cores / sizeof avx512_cores[0]; i++)
		if (strcasecmp(core, avx512_cores[i]) == 0)
			return 1;
	return 0;
#else
	return 1;
#endif
#else
	(void)isa;
	return 0;
#endif
}

void pk_sgemm(pk_ctx_t *ctx, int trans_a, int trans_b, int M, int N, int K,
	float alpha, const float *A, int lda, const float *B, int ldb,
	float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (ctx->isa == PK_ISA_SCALAR) {
		sgemm_scalar(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
#ifdef HAVE_BLAS
	if (pk__blas_preferred(ctx)) {
		if (K <= 0 || alpha == 0.0f) {
			scale_rows(C, ldc, M, N, beta);
			return;
		}
		blas_threads(ctx);
		cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
			trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
			beta, C, ldc);
		return;
	}
#endif
	pk__gemm_fallback(ctx, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void pk_sgemv(pk_ctx_t *ctx, int trans, int M, int N, float alpha,
	const float *A, int lda, const float *x, float beta, float *y)
{
	if (ctx->isa == PK_ISA_SCALAR) {
		sgemv_scalar(trans, M, N, alpha, A, lda, x, beta, y);
		return;
	}
#ifdef HAVE_BLAS
	if (!pk__blas_preferred(ctx)) {
		pk__gemv_fallback(ctx, trans, M, N, alpha, A, lda, x, beta, y);
		return;
	}
	int ny = trans ? N : M;
	if (M <= 0 || N <= 0 || alpha == 0.0f) {
		for (int i = 0; i < ny; i++)
			y[i] = beta == 0.0f ? 0.0f : beta * y[i];
		return;
	}
	if (beta == 0.0f) /* some OpenBLAS scal kernels keep NaN * 0 */
		memset(y, 0, (size_t)ny * sizeof *y);
	blas_threads(ctx);
	cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, M, N, alpha,
		A, lda, x, 1, beta, y, 1);
#else
	pk__gemv_fallback(ctx, trans, M, N, alpha, A, lda, x, beta, y);
#endif
}
