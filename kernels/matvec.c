/* kernels/matvec.c: the matrix-vector products of single-token decode.
 * Several row-major weights that share one input vector are streamed in a
 * single parallel pass over their rows (q/k/v together, gate/up together),
 * with AVX2 / AVX-512 dot kernels four rows at a time; never through BLAS,
 * whose per-call thread wake-up and spinning cost more than a token's matvec. */
#include "kernels/kernels_int.h"

#define MV_MAX 8            /* products per call */
#define MV_TASK_FLOATS 16384 /* weight floats per task (64 KiB): balance vs handouts */

typedef struct {
	const pk_matvec_t *mv;
	int n, cols, chunk;
	int first[MV_MAX + 1]; /* first task of each product; first[n] = all */
	const float *x;
	pk_isa_t isa;
} mv_job_t;

// y[r0, r1) = w[r0, r1) x (+ b): the plain loop every other path matches
static void mv_rows_scalar(const pk_matvec_t *m, const float *x, int cols, int r0, int r1)
{
	for (int i = r0; i < r1; i++) {
		const float *w = m->w + (size_t)i * cols;
		float s = 0.0f;
		for (int p = 0; p < cols; p++)
			s += w[p] * x[p];
		m->y[i] = m->b ? s + m->b[i] : s;
	}
}

// stores s[k] (+ the columns [nv, cols) and the bias) into y[i + k], k < m
static inline void mv_finish(const pk_matvec_t *mv, const float *x, int cols, int i, int m,
	int nv, float *s)
{
	for (int k = 0; k < m; k++) {
		const float *w = mv->w + (size_t)(i + k) * cols;
		for (int p = nv; p < cols; p++)
			s[k] += w[p] * x[p];
		mv->y[i + k] = mv->b ? s[k] + mv->b[i + k] : s[k];
	}
}

#if PK_X86
// w[k]: rows i..i+m; rows past m repeat row i (their sums are dropped)
static inline void mv_rows4(const pk_matvec_t *mv, int cols, int i, int m, const float **w)
{
	for (int k = 0; k < 4; k++)
		w[k] = mv->w + (size_t)(i + (k < m ? k : 0)) * cols;
}

PK_AVX2 static void mv_rows_avx2(const pk_matvec_t *mv, const float *x, int cols, int r0,
	int r1)
{
	int nv = cols & ~7;
	for (int i = r0; i < r1; i += 4) {
		int m = r1 - i < 4 ? r1 - i : 4;
		const float *w[4];
		mv_rows4(mv, cols, i, m, w);
		__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		for (int p = 0; p < nv; p += 8) {
			__m256 xv = _mm256_loadu_ps(x + p);
			s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w[0] + p), xv, s0);
			s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w[1] + p), xv, s1);
			s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w[2] + p), xv, s2);
			s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w[3] + p), xv, s3);
		}
		float s[4] = { pk__hsum_avx2(s0), pk__hsum_avx2(s1), pk__hsum_avx2(s2),
			pk__hsum_avx2(s3) };
		mv_finish(mv, x, cols, i, m, nv, s);
	}
}

PK_AVX512 static void mv_rows_avx512(const pk_matvec_t *mv, const float *x, int cols, int r0,
	int r1)
{
	int nv = cols & ~15;
	for (int i = r0; i < r1; i += 4) {
		int m = r1 - i < 4 ? r1 - i : 4;
		const float *w[4];
		mv_rows4(mv, cols, i, m, w);
		__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		for (int p = 0; p < nv; p += 16) {
			__m512 xv = _mm512_loadu_ps(x + p);
			s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w[0] + p), xv, s0);
			s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w[1] + p), xv, s1);
			s2 = _mm512_fmadd_ps(_mm512_loadu_ps(w[2] + p), xv, s2);
			s3 = _mm512_fmadd_ps(_mm512_loadu_ps(w[3] + p), xv, s3);
		}
		float s[4] = { _mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1),
			_mm512_reduce_add_ps(s2), _mm512_reduce_add_ps(s3) };
		mv_finish(mv, x, cols, i, m, nv, s);
	}
}
#endif

static void mv_rows(const mv_job_t *j, const pk_matvec_t *m, int r0, int r1)
{
#if PK_X86
	if (j->isa == PK_ISA_AVX512) {
		mv_rows_avx512(m, j->x, j->cols, r0, r1);
		return;
	}
	if (j->isa == PK_ISA_AVX2) {
		mv_rows_avx2(m, j->x, j->cols, r0, r1);
		return;
	}
#endif
	mv_rows_scalar(m, j->x, j->cols, r0, r1);
}

static void mv_task(void *arg, int t, int tid)
{
	const mv_job_t *j = arg;
	int k = 0;
	(void)tid;
	while (t >= j->first[k + 1])
		k++;
	const pk_matvec_t *m = &j->mv[k];
	int r0 = (t - j->first[k]) * j->chunk;
	int r1 = r0 + j->chunk < m->rows ? r0 + j->chunk : m->rows;
	mv_rows(j, m, r0, r1);
}

int pk_matvec(pk_ctx_t *ctx, const pk_matvec_t *mv, int n, const float *x, int cols)
{
	if (n < 1 || n > MV_MAX || cols < 1 || !x)
		return PK_EINVAL;
	for (int k = 0; k < n; k++)
		if (mv[k].rows < 0 || (mv[k].rows > 0 && (!mv[k].w || !mv[k].y)))
			return PK_EINVAL;
	mv_job_t j = { .mv = mv, .n = n, .cols = cols, .x = x, .isa = ctx->isa };
	/* a multiple of 4 rows (the kernels' block), about MV_TASK_FLOATS each */
	j.chunk = (MV_TASK_FLOATS / cols + 3) & ~3;
	if (j.chunk < 4)
		j.chunk = 4;
	size_t total = 0;
	j.first[0] = 0;
	for (int k = 0; k < n; k++) {
		j.first[k + 1] = j.first[k] + (mv[k].rows + j.chunk - 1) / j.chunk;
		total += (size_t)mv[k].rows * cols;
	}
	if (j.first[n] == 0)
		return PK_OK;
	if (ctx->nthreads == 1 || total < MV_TASK_FLOATS) {
		/* too little to be worth waking the pool */
		for (int k = 0; k < n; k++)
			mv_rows(&j, &mv[k], 0, mv[k].rows);
		return PK_OK;
	}
	pk_parallel_for(ctx, j.first[n], mv_task, &j);
	return PK_OK;
}
