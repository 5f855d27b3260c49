/* kernels/kernels_int.h: what the kernel files share and callers never see:
 * the ISA target attributes, the context layout, per-thread scratch, the
 * tolerance-free vector helpers (exp, bf16 loads) for each ISA. */
#ifndef PK_KERNELS_INT_H
#define PK_KERNELS_INT_H

#include "kernels/kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Optimized paths are compiled per function with target attributes, so one
 * binary carries all of them and pk_ctx picks one at run time. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PK_X86 1
#include <immintrin.h>
#define PK_AVX2 __attribute__((target("avx2,fma")))
#define PK_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#else
#define PK_X86 0
#endif

/* Largest per-thread scratch a kernel may reserve (256 MiB). */
#define PK_SCRATCH_MAX ((size_t)256 << 20)

struct pk_pool;

struct pk_ctx {
	int nthreads;
	pk_isa_t isa;
	struct pk_pool *pool; /* NULL when nthreads == 1 */
	void **scratch;       /* (nthreads) 64-byte aligned blocks */
	size_t scratch_size;  /* bytes each */
	int use_blas;         /* pk_sgemm/pk_sgemv go to BLAS (pk__blas_choose) */
};

/* Make every thread's scratch at least bytes (aligned to 64). Call before
 * pk_parallel_for; tasks then take pk__scratch(ctx, tid). PK_ENOMEM or
 * PK_EINVAL (over PK_SCRATCH_MAX) on failure. */
int pk__scratch_reserve(pk_ctx_t *ctx, size_t bytes);
static inline void *pk__scratch(pk_ctx_t *ctx, int tid) { return ctx->scratch[tid]; }

/* 64-byte aligned allocation; free with pk__free. NULL on failure or a
 * size that overflows. */
void *pk__alloc(size_t nmemb, size_t size);
void pk__free(void *p);

/* Split [0, n) into chunks of about `grain`, at least 1, so pk_parallel_for
 * has work for every thread. */
static inline int pk__nchunks(size_t n, size_t grain)
{
	size_t c = grain ? (n + grain - 1) / grain : 1;
	return c < 1 ? 1 : (c > 1u << 20 ? 1 << 20 : (int)c);
}

/* ---- vector exp: max rel error ~2e-7 on [-87, 88]; x < -87.3 -> 0 ------- */
static inline float pk__expf(float x) { return expf(x); }

#if PK_X86
/* Cephes-style: exp(x) = 2^n * p(r), r = x - n ln2, degree-6 polynomial. */
PK_AVX2 static inline __m256 pk__exp_avx2(__m256 x)
{
	const __m256 hi = _mm256_set1_ps(88.3762626647949f);
	const __m256 lo = _mm256_set1_ps(-87.3365447505531f);
	__m256 xc = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
	__m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
		_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500E-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n),
		_mm256_set1_epi32(127)), 23);
	__m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
	/* below the clamp: exactly 0 (so -inf scores vanish) */
	return _mm256_and_ps(y, _mm256_cmp_ps(x, lo, _CMP_GE_OQ));
}

PK_AVX512 static inline __m512 pk__exp_avx512(__m512 x)
{
	const __m512 hi = _mm512_set1_ps(88.3762626647949f);
	const __m512 lo = _mm512_set1_ps(-87.3365447505531f);
	__m512 xc = _mm512_max_ps(_mm512_min_ps(x, hi), lo);
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
		_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500E-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	__m512 y = _mm512_scalef_ps(p, n);
	__mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
	return _mm512_maskz_mov_ps(keep, y);
}

/* 8 / 16 bf16 -> f32 */
PK_AVX2 static inline __m256 pk__load_bf16_avx2(const pk_bf16_t *p)
{
	__m128i h = _mm_loadu_si128((const __m128i *)p);
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

PK_AVX512 static inline __m512 pk__load_bf16_avx512(const pk_bf16_t *p)
{
	__m256i h = _mm256_loadu_si256((const __m256i *)p);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

PK_AVX2 static inline float pk__hsum_avx2(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

PK_AVX2 static inline float pk__hmax_avx2(__m256 v)
{
	__m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_max_ps(s, _mm_movehl_ps(s, s));
	s = _mm_max_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}
#endif

/* ---- rope internals (rope.c; kv.c re-rotates cached keys with them) ---- */
/* cs: (rot_dims/2, 2) = cos, sin of pos*theta_i, times mscale when
 * with_mscale (from the cache table when pos is an integer inside it). */
void pk__rope_sincos(const pk_rope_t *r, double pos, int with_mscale, float *cs);
/* x: (head_dim), one head row rotated in place by cs, layout-aware; dims
 * >= rot_dims untouched. The plain scalar reference. */
void pk__rope_rotate(const pk_rope_t *r, float *x, const float *cs);
/* n rows of head_dim at stride ld (floats), all rotated by the same cs, on
 * the given ISA (scalar = pk__rope_rotate per row). */
void pk__rope_rotate_rows(pk_isa_t isa, const pk_rope_t *r, float *x, int n,
	size_t ld, const float *cs);

/* ---- gemm.c: the built-in GEMM / GEMV that pk_sgemm / pk_sgemv use when
 * configure found no BLAS, exported so tests check it where a BLAS exists.
 * Same contract as the public calls, for every ISA (scalar: the plain
 * loops). Not reentrant from inside a pk_parallel_for task of the same ctx. */
/* Whether pk_sgemm/pk_sgemv should use BLAS for contexts of this ISA (see
 * gemm.c); decided once, when the context is made. */
int pk__blas_choose(pk_isa_t isa);
static inline int pk__blas_preferred(const pk_ctx_t *ctx) { return ctx->use_blas; }
void pk__gemm_fallback(pk_ctx_t *ctx, int trans_a, int trans_b, int M, int N, int K,
	float alpha, const float *A, int lda, const float *B, int ldb,
	float beta, float *C, int ldc);
void pk__gemv_fallback(pk_ctx_t *ctx, int trans, int M, int N, float alpha,
	const float *A, int lda, const float *x, float beta, float *y);

/* ---- KV label cache (kv.c; dsparse.c sets it up) ----------------------- */
/* Refill the Double Sparsity labels of rows [from, to) of head h from the
 * stored keys; nothing when kv->label_r is 0. */
void pk__kv_label_fill(pk_kv_t *kv, int h, int from, int to);

#endif
