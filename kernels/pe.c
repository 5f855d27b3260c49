/* kernels/pe.c: the positional encodings that are not rotations: the
 * sinusoidal absolute table (Vaswani et al.), adding an absolute table
 * (learned wpe or sinusoidal) to activations, ALiBi slopes (Press et al.,
 * any head count) and T5 relative-position buckets (HF's formula, float32
 * rounding included). RoPE is in rope.c. */
#include "kernels/kernels_int.h"

#include <math.h>

/* ---- sinusoidal APE ---------------------------------------------------- */

int pk_ape_sinusoidal(float *out, const int32_t *pos, int T, int dim, double base)
{
	if (T < 0 || dim <= 0 || dim % 2 || !isfinite(base) || base <= 0)
		return PK_EINVAL;
	if (T > 0 && (!out || !pos))
		return PK_EINVAL;
	// out: (T, dim); angles in double so large positions stay accurate
	for (int t = 0; t < T; t++) {
		float *row = out + (size_t)t * dim;
		for (int i = 0; i < dim / 2; i++) {
			double a = pos[t] / pow(base, (2.0 * i) / dim);
			row[2 * i] = (float)sin(a);
			row[2 * i + 1] = (float)cos(a);
		}
	}
	return PK_OK;
}

/* ---- adding an absolute table ------------------------------------------ */

typedef struct {
	pk_isa_t isa;
	float *x;
	int dim;
	size_t ld;
	const float *table;
	const int32_t *pos;
	int rows_per_task, T;
} ape_job_t;

// y, x: (n)
static void add_row_scalar(float *y, const float *x, int n)
{
	for (int i = 0; i < n; i++)
		y[i] += x[i];
}

#if PK_X86
PK_AVX2 static void add_row_avx2(float *y, const float *x, int n)
{
	int i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i),
			_mm256_loadu_ps(x + i)));
	for (; i < n; i++)
		y[i] += x[i];
}

PK_AVX512 static void add_row_avx512(float *y, const float *x, int n)
{
	int i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i),
			_mm512_loadu_ps(x + i)));
	for (; i < n; i++)
		y[i] += x[i];
}
#endif

static void ape_task(void *arg, int task, int tid)
{
	const ape_job_t *j = arg;
	int t0 = task * j->rows_per_task;
	int t1 = t0 + j->rows_per_task < j->T ? t0 + j->rows_per_task : j->T;
	for (int t = t0; t < t1; t++) {
		float *y = j->x + (size_t)t * j->ld;
		const float *src = j->table + (size_t)j->pos[t] * j->dim;
#if PK_X86
		if (j->isa == PK_ISA_AVX512) {
			add_row_avx512(y, src, j->dim);
			continue;
		}
		if (j->isa == PK_ISA_AVX2) {
			add_row_avx2(y, src, j->dim);
			continue;
		}
#endif
		add_row_scalar(y, src, j->dim);
	}
}

int pk_ape_add(pk_ctx_t *ctx, float *x, int T, int dim, size_t ld,
	const float *table, int max_pos, const int32_t *pos)
{
	if (T < 0 || dim <= 0 || ld < (size_t)dim || max_pos < 0)
		return PK_EINVAL;
	if (T == 0)
		return PK_OK;
	if (!x || !table || !pos)
		return PK_EINVAL;
	/* check every position first, so a bad one leaves x untouched */
	for (int t = 0; t < T; t++)
		if (pos[t] < 0 || pos[t] >= max_pos)
			return PK_ERANGE;
	size_t rows = 16384 / (size_t)dim;
	ape_job_t j = { ctx->isa, x, dim, ld, table, pos, 0, T };
	j.rows_per_task = rows < 1 ? 1 : (rows > (size_t)T ? T : (int)rows);
	pk_parallel_for(ctx, (T + j.rows_per_task - 1) / j.rows_per_task, ape_task, &j);
	return PK_OK;
}

/* ---- ALiBi ------------------------------------------------------------- */

/* Press et al. get_slopes_power_of_2: start = 2^(-2^-(log2 n - 3)) = 2^(-8/n),
 * slope_k = start * start^k. */
static double alibi_pow2(int n, int k)
{
	double start = pow(2.0, -pow(2.0, -(log2((double)n) - 3.0)));
	return start * pow(start, k);
}

int pk_alibi_slopes(float *slopes, int n_heads)
{
	if (n_heads <= 0 || !slopes)
		return PK_EINVAL;
	int c = 1; /* the largest power of two <= n_heads */
	while (c <= n_heads / 2)
		c *= 2;
	for (int k = 0; k < c; k++)
		slopes[k] = (float)alibi_pow2(c, k);
	/* not a power of two: the rest are every other slope of 2c heads */
	for (int k = 0; k < n_heads - c; k++)
		slopes[c + k] = (float)alibi_pow2(2 * c, 2 * k);
	return PK_OK;
}

/* ---- T5 buckets -------------------------------------------------------- */

/* HF T5Attention._relative_position_bucket. The log branch is evaluated the
 * way torch does it in float32 (the Python double log(max_distance /
 * max_exact) rounded to float), so bucket edges match HF exactly. */
int pk_t5_bucket(int32_t rel, int bidirectional, int num_buckets, int max_distance)
{
	int nb = num_buckets, ret = 0;
	int64_t n;
	if (bidirectional) {
		nb /= 2;
		ret = rel > 0 ? nb : 0;
		n = rel < 0 ? -(int64_t)rel : rel;
	} else {
		n = rel < 0 ? -(int64_t)rel : 0;
	}
	int max_exact = nb / 2;
	if (max_exact < 1 || max_distance <= max_exact)
		return PK_EINVAL;
	if (n < max_exact)
		return ret + (int)n;
	float ratio = (float)n / (float)max_exact;
	float denom = (float)log((double)max_distance / max_exact);
	float v = logf(ratio) / denom * (float)(nb - max_exact);
	int64_t big = max_exact + (int64_t)v; /* .to(torch.long): truncation */
	if (big > nb - 1)
		big = nb - 1;
	return ret + (int)big;
}
