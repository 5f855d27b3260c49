/* kernels/ops.c: row-wise and elementwise ops of a transformer layer:
 * softmax, RMSNorm, LayerNorm, GELU (tanh and erf), SiLU, SwiGLU, add,
 * embedding lookup, cross-entropy. Each has a plain scalar reference and
 * AVX2 / AVX-512 paths of the same shape (masked tails, no scalar tail
 * loops); large inputs are split over the context's threads. */
#include "kernels/kernels_int.h"

#include <math.h>
#include <string.h>

/* Below this many floats the pool wake-up costs more than the work. */
#define PAR_MIN 32768
/* Floats per task when threaded. */
#define GRAIN 16384
/* Cross-entropy keeps one partial sum per chunk on the stack; the chunking
 * depends only on the shape, so the mean is the same for any thread count. */
#define MAX_CHUNKS 256

#define GELU_C 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K 0.044715f
#define SQRT1_2 0.7071067811865476f

/* Elementwise: out = f(a, b) over n; b unused by unary ops. */
typedef void (*ew_fn)(float *out, const float *a, const float *b, size_t n);

typedef struct {
	void (*softmax)(float *x, int n);
	void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps);
	void (*layernorm)(float *out, const float *x, const float *w, const float *b,
		int n, float eps);
	double (*lse)(const float *x, int n); /* log sum exp */
	ew_fn gelu_tanh, gelu_erf, silu, swiglu, add;
} ops_vt;

/* ---- scalar reference ------------------------------------------------- */
// x: (n)
static void softmax_scalar(float *x, int n)
{
	float mx = -INFINITY;
	for (int i = 0; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	if (mx == -INFINITY) { /* nothing to normalise: all zeros, not NaN */
		memset(x, 0, (size_t)n * sizeof *x);
		return;
	}
	double s = 0;
	for (int i = 0; i < n; i++) {
		x[i] = expf(x[i] - mx);
		s += x[i];
	}
	float inv = (float)(1.0 / s);
	for (int i = 0; i < n; i++)
		x[i] *= inv;
}

// out, x: (n); w: (n)
static void rmsnorm_scalar(float *out, const float *x, const float *w, int n, float eps)
{
	double ss = 0;
	for (int i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	float r = (float)(1.0 / sqrt(ss / n + eps));
	for (int i = 0; i < n; i++)
		out[i] = x[i] * r * w[i];
}

static void layernorm_scalar(float *out, const float *x, const float *w,
	const float *b, int n, float eps)
{
	double m = 0, v = 0;
	for (int i = 0; i < n; i++)
		m += x[i];
	m /= n;
	for (int i = 0; i < n; i++)
		v += (x[i] - m) * (x[i] - m);
	float mean = (float)m, r = (float)(1.0 / sqrt(v / n + eps));
	for (int i = 0; i < n; i++)
		out[i] = (x[i] - mean) * r * w[i] + (b ? b[i] : 0.0f);
}

static double lse_scalar(const float *x, int n)
{
	float mx = -INFINITY;
	for (int i = 0; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	if (mx == -INFINITY)
		return -INFINITY;
	double s = 0;
	for (int i = 0; i < n; i++)
		s += expf(x[i] - mx);
	return mx + log(s);
}

static void gelu_tanh_scalar(float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float x = a[i];
		out[i] = 0.5f * x * (1.0f + tanhf(GELU_C * (x + GELU_K * x * x * x)));
	}
}

static void gelu_erf_scalar(float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = 0.5f * a[i] * (1.0f + erff(a[i] * SQRT1_2));
}

static void silu_scalar(float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] / (1.0f + expf(-a[i]));
}

static void swiglu_scalar(float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

static void add_scalar(float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] + b[i];
}

static const ops_vt vt_scalar = {
	softmax_scalar, rmsnorm_scalar, layernorm_scalar, lse_scalar,
	gelu_tanh_scalar, gelu_erf_scalar, silu_scalar, swiglu_scalar, add_scalar,
};

#if PK_X86
/* ---- AVX2 ------------------------------------------------------------- */
/* Lanes [0, rem) set. */
PK_AVX2 static inline __m256i tail_avx2(int rem)
{
	static const int32_t tab[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
	return _mm256_loadu_si256((const __m256i *)(tab + 8 - rem));
}

/* max over x[0, n) */
PK_AVX2 static float max_avx2(const float *x, int n)
{
	int nv = n & ~7, rem = n & 7;
	__m256 m = _mm256_set1_ps(-INFINITY);
	for (int i = 0; i < nv; i += 8)
		m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
	if (rem) {
		__m256i t = tail_avx2(rem);
		m = _mm256_max_ps(m, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY),
			_mm256_maskload_ps(x + nv, t), _mm256_castsi256_ps(t)));
	}
	return pk__hmax_avx2(m);
}

/* sum of exp(x - mx) over x[0, n); out (may be x or NULL) gets the terms */
PK_AVX2 static float sumexp_avx2(float *out, const float *x, int n, float mx)
{
	int nv = n & ~7, rem = n & 7;
	__m256 vm = _mm256_set1_ps(mx), s0 = _mm256_setzero_ps(), s1 = s0;
	int i = 0;
	for (; i + 16 <= nv; i += 16) {
		__m256 e0 = pk__exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
		__m256 e1 = pk__exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
		if (out) {
			_mm256_storeu_ps(out + i, e0);
			_mm256_storeu_ps(out + i + 8, e1);
		}
		s0 = _mm256_add_ps(s0, e0);
		s1 = _mm256_add_ps(s1, e1);
	}
	for (; i < nv; i += 8) {
		__m256 e = pk__exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
		if (out)
			_mm256_storeu_ps(out + i, e);
		s0 = _mm256_add_ps(s0, e);
	}
	if (rem) {
		__m256i t = tail_avx2(rem);
		__m256 e = pk__exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(x + nv, t), vm));
		e = _mm256_and_ps(e, _mm256_castsi256_ps(t));
		if (out)
			_mm256_maskstore_ps(out + nv, t, e);
		s0 = _mm256_add_ps(s0, e);
	}
	return pk__hsum_avx2(_mm256_add_ps(s0, s1));
}

PK_AVX2 static void softmax_avx2(float *x, int n)
{
	float mx = max_avx2(x, n);
	if (mx == -INFINITY) {
		memset(x, 0, (size_t)n * sizeof *x);
		return;
	}
	__m256 inv = _mm256_set1_ps(1.0f / sumexp_avx2(x, x, n, mx));
	int nv = n & ~7, rem = n & 7;
	for (int i = 0; i < nv; i += 8)
		_mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
	if (rem) {
		__m256i t = tail_avx2(rem);
		_mm256_maskstore_ps(x + nv, t, _mm256_mul_ps(_mm256_maskload_ps(x + nv, t), inv));
	}
}

PK_AVX2 static double lse_avx2(const float *x, int n)
{
	float mx = max_avx2(x, n);
	if (mx == -INFINITY)
		return -INFINITY;
	return mx + log(sumexp_avx2(NULL, x, n, mx));
}

/* sum of (x - m)^2 over x[0, n) (m = 0: sum of squares) */
PK_AVX2 static float sumsq_avx2(const float *x, int n, float m)
{
	int nv = n & ~7, rem = n & 7;
	__m256 vm = _mm256_set1_ps(m), s0 = _mm256_setzero_ps(), s1 = s0;
	int i = 0;
	for (; i + 16 <= nv; i += 16) {
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
		s0 = _mm256_fmadd_ps(d0, d0, s0);
		s1 = _mm256_fmadd_ps(d1, d1, s1);
	}
	for (; i < nv; i += 8) {
		__m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
		s0 = _mm256_fmadd_ps(d, d, s0);
	}
	if (rem) {
		__m256i t = tail_avx2(rem);
		__m256 d = _mm256_sub_ps(_mm256_maskload_ps(x + nv, t), vm);
		d = _mm256_and_ps(d, _mm256_castsi256_ps(t));
		s0 = _mm256_fmadd_ps(d, d, s0);
	}
	return pk__hsum_avx2(_mm256_add_ps(s0, s1));
}

PK_AVX2 static float sum_avx2(const float *x, int n)
{
	int nv = n & ~7, rem = n & 7;
	__m256 s = _mm256_setzero_ps();
	for (int i = 0; i < nv; i += 8)
		s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
	if (rem)
		s = _mm256_add_ps(s, _mm256_maskload_ps(x + nv, tail_avx2(rem)));
	return pk__hsum_avx2(s);
}

/* out = (x - m) * r * w + b (b may be NULL) */
PK_AVX2 static void affine_avx2(float *out, const float *x, float m, float r,
	const float *w, const float *b, int n)
{
	int nv = n & ~7, rem = n & 7;
	__m256 vm = _mm256_set1_ps(m), vr = _mm256_set1_ps(r), z = _mm256_setzero_ps();
	for (int i = 0; i < nv; i += 8) {
		__m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr),
			_mm256_loadu_ps(w + i));
		_mm256_storeu_ps(out + i, _mm256_add_ps(y, b ? _mm256_loadu_ps(b + i) : z));
	}
	if (rem) {
		__m256i t = tail_avx2(rem);
		__m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + nv, t), vm), vr),
			_mm256_maskload_ps(w + nv, t));
		_mm256_maskstore_ps(out + nv, t, _mm256_add_ps(y, b ? _mm256_maskload_ps(b + nv, t) : z));
	}
}

PK_AVX2 static void rmsnorm_avx2(float *out, const float *x, const float *w, int n, float eps)
{
	float r = 1.0f / sqrtf(sumsq_avx2(x, n, 0.0f) / n + eps);
	affine_avx2(out, x, 0.0f, r, w, NULL, n);
}

PK_AVX2 static void layernorm_avx2(float *out, const float *x, const float *w,
	const float *b, int n, float eps)
{
	float m = sum_avx2(x, n) / n;
	float r = 1.0f / sqrtf(sumsq_avx2(x, n, m) / n + eps);
	affine_avx2(out, x, m, r, w, b, n);
}

/* 0.5 x (1 + tanh(u)) = x * sigmoid(2u) = x / (1 + exp(-2u)): no tanh, and
 * no cancellation for negative x. */
PK_AVX2 static inline __m256 gelu_tanh8(__m256 x, __m256 b)
{
	__m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
	__m256 u = _mm256_fmadd_ps(_mm256_set1_ps(GELU_K), x3, x);
	__m256 e = pk__exp_avx2(_mm256_mul_ps(u, _mm256_set1_ps(-2.0f * GELU_C)));
	return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7) in erfc form: q ~
 * erfc(|z|), so 1 + erf(z) = 2 - q for z >= 0 and q for z < 0, which keeps
 * the far negative tail free of cancellation. */
PK_AVX2 static inline __m256 gelu_erf8(__m256 x, __m256 b)
{
	__m256 z = _mm256_mul_ps(x, _mm256_set1_ps(SQRT1_2));
	__m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
	__m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
		_mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), az, _mm256_set1_ps(1.0f)));
	__m256 p = _mm256_set1_ps(1.061405429f);
	p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
	p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
	p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
	p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
	__m256 q = _mm256_mul_ps(_mm256_mul_ps(p, t),
		pk__exp_avx2(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), az), az)));
	__m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
	__m256 onep = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), q), q, neg);
	return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), onep);
}

PK_AVX2 static inline __m256 silu8(__m256 x, __m256 b)
{
	__m256 e = pk__exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x));
	return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

PK_AVX2 static inline __m256 swiglu8(__m256 g, __m256 u) { return _mm256_mul_ps(silu8(g, u), u); }
PK_AVX2 static inline __m256 add8(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }

/* One loop per op; F inlines. Binary ops read b, unary ones pass a. */
#define EW_AVX2(name, F, BINARY)                                                   \
	PK_AVX2 static void name(float *out, const float *a, const float *b, size_t n) \
	{                                                                              \
		size_t nv = n & ~(size_t)7;                                            \
		int rem = (int)(n & 7);                                                \
		for (size_t i = 0; i < nv; i += 8)                                     \
			_mm256_storeu_ps(out + i, F(_mm256_loadu_ps(a + i),            \
				BINARY ? _mm256_loadu_ps(b + i) : _mm256_setzero_ps())); \
		if (rem) {                                                             \
			__m256i t = tail_avx2(rem);                                    \
			_mm256_maskstore_ps(out + nv, t, F(_mm256_maskload_ps(a + nv, t), \
				BINARY ? _mm256_maskload_ps(b + nv, t) : _mm256_setzero_ps())); \
		}                                                                      \
	}

EW_AVX2(gelu_tanh_avx2, gelu_tanh8, 0)
EW_AVX2(gelu_erf_avx2, gelu_erf8, 0)
EW_AVX2(silu_avx2, silu8, 0)
EW_AVX2(swiglu_avx2, swiglu8, 1)
EW_AVX2(add_avx2, add8, 1)

static const ops_vt vt_avx2 = {
	softmax_avx2, rmsnorm_avx2, layernorm_avx2, lse_avx2,
	gelu_tanh_avx2, gelu_erf_avx2, silu_avx2, swiglu_avx2, add_avx2,
};

/* ---- AVX-512: the AVX2 code with 16 lanes and mask registers ---------- */
PK_AVX512 static inline __mmask16 tail_avx512(int rem) { return (__mmask16)((1u << rem) - 1); }

PK_AVX512 static float max_avx512(const float *x, int n)
{
	int nv = n & ~15, rem = n & 15;
	__m512 m = _mm512_set1_ps(-INFINITY);
	for (int i = 0; i < nv; i += 16)
		m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
	if (rem)
		m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY),
			tail_avx512(rem), x + nv));
	return _mm512_reduce_max_ps(m);
}

PK_AVX512 static float sumexp_avx512(float *out, const float *x, int n, float mx)
{
	int nv = n & ~15, rem = n & 15;
	__m512 vm = _mm512_set1_ps(mx), s0 = _mm512_setzero_ps(), s1 = s0;
	int i = 0;
	for (; i + 32 <= nv; i += 32) {
		__m512 e0 = pk__exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
		__m512 e1 = pk__exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm));
		if (out) {
			_mm512_storeu_ps(out + i, e0);
			_mm512_storeu_ps(out + i + 16, e1);
		}
		s0 = _mm512_add_ps(s0, e0);
		s1 = _mm512_add_ps(s1, e1);
	}
	for (; i < nv; i += 16) {
		__m512 e = pk__exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
		if (out)
			_mm512_storeu_ps(out + i, e);
		s0 = _mm512_add_ps(s0, e);
	}
	if (rem) {
		__mmask16 t = tail_avx512(rem);
		__m512 e = pk__exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, x + nv), vm));
		e = _mm512_maskz_mov_ps(t, e);
		if (out)
			_mm512_mask_storeu_ps(out + nv, t, e);
		s0 = _mm512_add_ps(s0, e);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

PK_AVX512 static void softmax_avx512(float *x, int n)
{
	float mx = max_avx512(x, n);
	if (mx == -INFINITY) {
		memset(x, 0, (size_t)n * sizeof *x);
		return;
	}
	__m512 inv = _mm512_set1_ps(1.0f / sumexp_avx512(x, x, n, mx));
	int nv = n & ~15, rem = n & 15;
	for (int i = 0; i < nv; i += 16)
		_mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
	if (rem) {
		__mmask16 t = tail_avx512(rem);
		_mm512_mask_storeu_ps(x + nv, t, _mm512_mul_ps(_mm512_maskz_loadu_ps(t, x + nv), inv));
	}
}

PK_AVX512 static double lse_avx512(const float *x, int n)
{
	float mx = max_avx512(x, n);
	if (mx == -INFINITY)
		return -INFINITY;
	return mx + log(sumexp_avx512(NULL, x, n, mx));
}

PK_AVX512 static float sumsq_avx512(const float *x, int n, float m)
{
	int nv = n & ~15, rem = n & 15;
	__m512 vm = _mm512_set1_ps(m), s0 = _mm512_setzero_ps(), s1 = s0;
	int i = 0;
	for (; i + 32 <= nv; i += 32) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
	}
	for (; i < nv; i += 16) {
		__m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
		s0 = _mm512_fmadd_ps(d, d, s0);
	}
	if (rem) {
		__mmask16 t = tail_avx512(rem);
		__m512 d = _mm512_maskz_sub_ps(t, _mm512_maskz_loadu_ps(t, x + nv), vm);
		s0 = _mm512_fmadd_ps(d, d, s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

PK_AVX512 static float sum_avx512(const float *x, int n)
{
	int nv = n & ~15, rem = n & 15;
	__m512 s = _mm512_setzero_ps();
	for (int i = 0; i < nv; i += 16)
		s = _mm512_add_ps(s, _mm512_loadu_ps(x + i));
	if (rem)
		s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail_avx512(rem), x + nv));
	return _mm512_reduce_add_ps(s);
}

PK_AVX512 static void affine_avx512(float *out, const float *x, float m, float r,
	const float *w, const float *b, int n)
{
	int nv = n & ~15, rem = n & 15;
	__m512 vm = _mm512_set1_ps(m), vr = _mm512_set1_ps(r), z = _mm512_setzero_ps();
	for (int i = 0; i < nv; i += 16) {
		__m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), vr),
			_mm512_loadu_ps(w + i));
		_mm512_storeu_ps(out + i, _mm512_add_ps(y, b ? _mm512_loadu_ps(b + i) : z));
	}
	if (rem) {
		__mmask16 t = tail_avx512(rem);
		__m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, x + nv), vm), vr),
			_mm512_maskz_loadu_ps(t, w + nv));
		_mm512_mask_storeu_ps(out + nv, t, _mm512_add_ps(y, b ? _mm512_maskz_loadu_ps(t, b + nv) : z));
	}
}

PK_AVX512 static void rmsnorm_avx512(float *out, const float *x, const float *w, int n, float eps)
{
	float r = 1.0f / sqrtf(sumsq_avx512(x, n, 0.0f) / n + eps);
	affine_avx512(out, x, 0.0f, r, w, NULL, n);
}

PK_AVX512 static void layernorm_avx512(float *out, const float *x, const float *w,
	const float *b, int n, float eps)
{
	float m = sum_avx512(x, n) / n;
	float r = 1.0f / sqrtf(sumsq_avx512(x, n, m) / n + eps);
	affine_avx512(out, x, m, r, w, b, n);
}

PK_AVX512 static inline __m512 gelu_tanh16(__m512 x, __m512 b)
{
	__m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
	__m512 u = _mm512_fmadd_ps(_mm512_set1_ps(GELU_K), x3, x);
	__m512 e = pk__exp_avx512(_mm512_mul_ps(u, _mm512_set1_ps(-2.0f * GELU_C)));
	return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

PK_AVX512 static inline __m512 gelu_erf16(__m512 x, __m512 b)
{
	__m512 z = _mm512_mul_ps(x, _mm512_set1_ps(SQRT1_2));
	__m512 az = _mm512_abs_ps(z);
	__m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
		_mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), az, _mm512_set1_ps(1.0f)));
	__m512 p = _mm512_set1_ps(1.061405429f);
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
	__m512 q = _mm512_mul_ps(_mm512_mul_ps(p, t),
		pk__exp_avx512(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), az), az)));
	__mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
	__m512 onep = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.0f), q), q);
	return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), onep);
}

PK_AVX512 static inline __m512 silu16(__m512 x, __m512 b)
{
	__m512 e = pk__exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), x));
	return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

PK_AVX512 static inline __m512 swiglu16(__m512 g, __m512 u) { return _mm512_mul_ps(silu16(g, u), u); }
PK_AVX512 static inline __m512 add16(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }

#define EW_AVX512(name, F, BINARY)                                                   \
	PK_AVX512 static void name(float *out, const float *a, const float *b, size_t n) \
	{                                                                                \
		size_t nv = n & ~(size_t)15;                                             \
		int rem = (int)(n & 15);                                                 \
		for (size_t i = 0; i < nv; i += 16)                                      \
			_mm512_storeu_ps(out + i, F(_mm512_loadu_ps(a + i),              \
				BINARY ? _mm512_loadu_ps(b + i) : _mm512_setzero_ps())); \
		if (rem) {                                                               \
			__mmask16 t = tail_avx512(rem);                                  \
			_mm512_mask_storeu_ps(out + nv, t, F(_mm512_maskz_loadu_ps(t, a + nv), \
				BINARY ? _mm512_maskz_loadu_ps(t, b + nv) : _mm512_setzero_ps())); \
		}                                                                        \
	}

EW_AVX512(gelu_tanh_avx512, gelu_tanh16, 0)
EW_AVX512(gelu_erf_avx512, gelu_erf16, 0)
EW_AVX512(silu_avx512, silu16, 0)
EW_AVX512(swiglu_avx512, swiglu16, 1)
EW_AVX512(add_avx512, add16, 1)

static const ops_vt vt_avx512 = {
	softmax_avx512, rmsnorm_avx512, layernorm_avx512, lse_avx512,
	gelu_tanh_avx512, gelu_erf_avx512, silu_avx512, swiglu_avx512, add_avx512,
};
#endif

static const ops_vt *vt(const pk_ctx_t *ctx)
{
#if PK_X86
	if (ctx->isa == PK_ISA_AVX512)
		return &vt_avx512;
	if (ctx->isa == PK_ISA_AVX2)
		return &vt_avx2;
#endif
	return &vt_scalar;
}

/* ---- splitting work over threads -------------------------------------- */
/* Chunks run in the pool only when the whole job is big enough. */
static void run(pk_ctx_t *ctx, size_t work, int nchunks, pk_task_fn fn, void *arg)
{
	if (work < PAR_MIN || ctx->nthreads == 1) {
		for (int i = 0; i < nchunks; i++)
			fn(arg, i, 0);
		return;
	}
	pk_parallel_for(ctx, nchunks, fn, arg);
}

typedef struct {
	ew_fn fn;
	float *out;
	const float *a, *b;
	size_t n;
} ew_job_t;

static void ew_task(void *arg, int c, int tid)
{
	const ew_job_t *j = arg;
	size_t lo = (size_t)c * GRAIN, len = j->n - lo < GRAIN ? j->n - lo : GRAIN;
	j->fn(j->out + lo, j->a + lo, j->b ? j->b + lo : NULL, len);
}

static void ew_run(pk_ctx_t *ctx, ew_fn fn, float *out, const float *a,
	const float *b, size_t n)
{
	ew_job_t j = { fn, out, a, b, n };
	if (n == 0)
		return;
	run(ctx, n, pk__nchunks(n, GRAIN), ew_task, &j);
}

/* Rows go to tasks in runs of rpc (about GRAIN floats). */
typedef struct {
	const ops_vt *vt;
	float *out;
	const float *x, *w, *b;
	int rows, n, rpc;
	float eps;
	const int32_t *targets;
	float *losses;
	double part[MAX_CHUNKS];
} row_job_t;

static int row_chunks(row_job_t *j, int rows, int n)
{
	j->rows = rows, j->n = n;
	j->rpc = n >= GRAIN ? 1 : GRAIN / n;
	if ((rows + j->rpc - 1) / j->rpc > MAX_CHUNKS)
		j->rpc = (rows + MAX_CHUNKS - 1) / MAX_CHUNKS;
	return (rows + j->rpc - 1) / j->rpc;
}

#define ROW_RANGE(j, c, r0, r1) \
	int r0 = (c) * (j)->rpc, r1 = r0 + (j)->rpc < (j)->rows ? r0 + (j)->rpc : (j)->rows

static void softmax_task(void *arg, int c, int tid)
{
	const row_job_t *j = arg;
	ROW_RANGE(j, c, r0, r1);
	for (int r = r0; r < r1; r++)
		j->vt->softmax(j->out + (size_t)r * j->n, j->n);
}

static void rmsnorm_task(void *arg, int c, int tid)
{
	const row_job_t *j = arg;
	ROW_RANGE(j, c, r0, r1);
	for (int r = r0; r < r1; r++)
		j->vt->rmsnorm(j->out + (size_t)r * j->n, j->x + (size_t)r * j->n, j->w,
			j->n, j->eps);
}

static void layernorm_task(void *arg, int c, int tid)
{
	const row_job_t *j = arg;
	ROW_RANGE(j, c, r0, r1);
	for (int r = r0; r < r1; r++)
		j->vt->layernorm(j->out + (size_t)r * j->n, j->x + (size_t)r * j->n, j->w,
			j->b, j->n, j->eps);
}

/* loss = logsumexp(row) - row[target]; a row of all -inf has no
 * distribution to score: loss +inf. */
static void ce_task(void *arg, int c, int tid)
{
	row_job_t *j = arg;
	ROW_RANGE(j, c, r0, r1);
	double s = 0;
	for (int r = r0; r < r1; r++) {
		const float *x = j->x + (size_t)r * j->n;
		double lse = j->vt->lse(x, j->n);
		double loss = lse == -INFINITY ? INFINITY : lse - x[j->targets[r]];
		if (j->losses)
			j->losses[r] = (float)loss;
		s += loss;
	}
	j->part[c] = s;
}

/* ---- public ----------------------------------------------------------- */
// x: (rows, n)
void pk_softmax(pk_ctx_t *ctx, float *x, int rows, int n)
{
	if (rows <= 0 || n <= 0)
		return;
	row_job_t j = { .vt = vt(ctx), .out = x };
	int nc = row_chunks(&j, rows, n);
	run(ctx, (size_t)rows * n, nc, softmax_task, &j);
}

// out, x: (rows, n); w: (n)
void pk_rmsnorm(pk_ctx_t *ctx, float *out, const float *x, const float *w,
	int rows, int n, float eps)
{
	if (rows <= 0 || n <= 0)
		return;
	row_job_t j = { .vt = vt(ctx), .out = out, .x = x, .w = w, .eps = eps };
	int nc = row_chunks(&j, rows, n);
	run(ctx, (size_t)rows * n, nc, rmsnorm_task, &j);
}

// out, x: (rows, n); w, b: (n)
void pk_layernorm(pk_ctx_t *ctx, float *out, const float *x, const float *w,
	const float *b, int rows, int n, float eps)
{
	if (rows <= 0 || n <= 0)
		return;
	row_job_t j = { .vt = vt(ctx), .out = out, .x = x, .w = w, .b = b, .eps = eps };
	int nc = row_chunks(&j, rows, n);
	run(ctx, (size_t)rows * n, nc, layernorm_task, &j);
}

void pk_gelu_tanh(pk_ctx_t *ctx, float *out, const float *x, size_t n)
{
	ew_run(ctx, vt(ctx)->gelu_tanh, out, x, NULL, n);
}

void pk_gelu_erf(pk_ctx_t *ctx, float *out, const float *x, size_t n)
{
	ew_run(ctx, vt(ctx)->gelu_erf, out, x, NULL, n);
}

void pk_silu(pk_ctx_t *ctx, float *out, const float *x, size_t n)
{
	ew_run(ctx, vt(ctx)->silu, out, x, NULL, n);
}

void pk_swiglu(pk_ctx_t *ctx, float *out, const float *gate, const float *up, size_t n)
{
	ew_run(ctx, vt(ctx)->swiglu, out, gate, up, n);
}

void pk_add(pk_ctx_t *ctx, float *y, const float *x, size_t n)
{
	ew_run(ctx, vt(ctx)->add, y, y, x, n);
}

typedef struct {
	float *out;
	const float *table;
	const int32_t *ids;
	int dim, n, rpc;
} embed_job_t;

static void embed_task(void *arg, int c, int tid)
{
	const embed_job_t *j = arg;
	int r0 = c * j->rpc, r1 = r0 + j->rpc < j->n ? r0 + j->rpc : j->n;
	for (int r = r0; r < r1; r++)
		memcpy(j->out + (size_t)r * j->dim, j->table + (size_t)j->ids[r] * j->dim,
			(size_t)j->dim * sizeof(float));
}

// out: (n, dim); table: (vocab, dim); ids: (n)
int pk_embed(pk_ctx_t *ctx, float *out, const float *table, int vocab, int dim,
	const int32_t *ids, int n)
{
	if (vocab < 0 || dim < 0 || n < 0)
		return PK_EINVAL;
	int good = 0;
	while (good < n && ids[good] >= 0 && ids[good] < vocab)
		good++;
	if (good > 0 && dim > 0) {
		embed_job_t j = { out, table, ids, dim, good, dim >= GRAIN ? 1 : GRAIN / dim };
		run(ctx, (size_t)good * dim, (good + j.rpc - 1) / j.rpc, embed_task, &j);
	}
	return good < n ? PK_ERANGE : PK_OK;
}

// logits: (rows, vocab); targets, losses: (rows)
int pk_cross_entropy(pk_ctx_t *ctx, const float *logits, int rows, int vocab,
	const int32_t *targets, float *losses, double *mean)
{
	if (rows < 0 || vocab <= 0)
		return PK_EINVAL;
	for (int r = 0; r < rows; r++)
		if (targets[r] < 0 || targets[r] >= vocab)
			return PK_ERANGE;
	if (rows == 0) {
		if (mean)
			*mean = 0.0;
		return PK_OK;
	}
	row_job_t j = { .vt = vt(ctx), .x = logits, .targets = targets, .losses = losses };
	int nc = row_chunks(&j, rows, vocab);
	run(ctx, (size_t)rows * vocab, nc, ce_task, &j);
	double s = 0;
	for (int c = 0; c < nc; c++)
		s += j.part[c];
	if (mean)
		*mean = s / rows;
	return PK_OK;
}
