/* kernels/attn_decode.c: split-KV decode (one query row). Work items are
 * (KV head, chunk of keys); each serves every query head of the GQA group
 * so K and V are streamed from memory exactly once, keeps a partial
 * (max, sum, acc) per head, and the partials are merged at the end.
 * Dot products and V accumulation convert bf16 in register. */
#include "config.h"

#include "kernels/attn_int.h"

#include <stdlib.h>
#include <string.h>

#define BKD 64        /* keys per block inside a chunk */
#define MIN_CHUNK 512 /* keys per work item, at least */
/* Software prefetch distance for K, in keys: far enough that a row is in L1
 * when its dot product starts (measured: 16-32 best; V rows need none once
 * P.V reads them front to back). */
#define PD 32

#if PK_X86

typedef struct {
	/* s[g][r] = q[g] . k[r] for nh (1 or 2) heads x 4 keys (rows repeat
	 * for short groups; the caller keeps the real ones) */
	void (*dots)(int nh, const float *const *qr, const void *const *kr, int D, int bf16,
		float s[2][4]);
	/* acc[g][0..D) += sum_j p[g][j] * v[j] for nh (1 or 2) heads */
	void (*pv)(int nh, float *const *acc, const float *const *p, const void *v, int nk, int D,
		int bf16);
	/* x[0..n) = exp(x - m), returns the sum; n a multiple of 16 */
	float (*exp_sum)(float *x, int n, float m);
} dec_ops_t;

/* The kernels are written once per ISA as always-inline templates over the
 * head count NH and the storage type BF, so each specialisation keeps its
 * accumulators in registers and has no branch in the inner loop. */
#define INL static inline __attribute__((always_inline))

static inline float ld1(const void *p, int bf16, int d)
{
	return bf16 ? pk_bf16_to_f32(((const pk_bf16_t *)p)[d]) : ((const float *)p)[d];
}

static inline const void *vrow(const void *v, int bf16, int j, int D)
{
	return bf16 ? (const void *)((const pk_bf16_t *)v + (size_t)j * D) :
		(const void *)((const float *)v + (size_t)j * D);
}

/* The keys [j, nk) left after the four-key sweeps of pv_all_avx2/avx512. */
INL void pv_rest(const int NH, const int BF, float *const *acc, const float *const *p,
	const void *v, int j, int nk, int D)
{
	for (; j < nk; j++) {
		const void *vj = vrow(v, BF, j, D);
		for (int d = 0; d < D; d++)
#pragma GCC unroll 2
			for (int g = 0; g < NH; g++)
				acc[g][d] += p[g][j] * ld1(vj, BF, d);
	}
}

/* ---- AVX2 ------------------------------------------------------------------ */
PK_AVX2 INL __m256 ld8_avx2(const void *p, const int bf16, int d)
{
	return bf16 ? pk__load_bf16_avx2((const pk_bf16_t *)p + d) : _mm256_loadu_ps((const float *)p + d);
}

PK_AVX2 INL void dots_t_avx2(const int NH, const int BF, const float *const *qr,
	const void *const *kr, int D, float s[2][4])
{
	__m256 c[2][4];
	const void *k0 = kr[0], *k1 = kr[1], *k2 = kr[2], *k3 = kr[3];
#pragma GCC unroll 4
	for (int g = 0; g < 2; g++)
#pragma GCC unroll 4
		for (int r = 0; r < 4; r++)
			c[g][r] = _mm256_setzero_ps();
	int d = 0;
	for (; d + 8 <= D; d += 8) {
		__m256 q[2];
#pragma GCC unroll 4
		for (int g = 0; g < NH; g++)
			q[g] = _mm256_loadu_ps(qr[g] + d);
#define DOT_KEY(r) { __m256 x = ld8_avx2(k##r, BF, d); \
		_Pragma("GCC unroll 2") for (int g = 0; g < NH; g++) c[g][r] = _mm256_fmadd_ps(q[g], x, c[g][r]); }
		DOT_KEY(0) DOT_KEY(1) DOT_KEY(2) DOT_KEY(3)
#undef DOT_KEY
	}
#pragma GCC unroll 4
	for (int g = 0; g < NH; g++)
#pragma GCC unroll 4
		for (int r = 0; r < 4; r++) {
			float t = pk__hsum_avx2(c[g][r]);
			for (int e = d; e < D; e++)
				t += qr[g][e] * ld1(kr[r], BF, e);
			s[g][r] = t;
		}
}

PK_AVX2 static void dots_avx2(int nh, const float *const *qr, const void *const *kr, int D,
	int bf16, float s[2][4])
{
	if (nh == 2)
		bf16 ? dots_t_avx2(2, 1, qr, kr, D, s) : dots_t_avx2(2, 0, qr, kr, D, s);
	else
		bf16 ? dots_t_avx2(1, 1, qr, kr, D, s) : dots_t_avx2(1, 0, qr, kr, D, s);
}

/* acc[g] += sum_j p[g][j] v[j], four V rows per sweep over D: the rows are
 * read front to back, as the hardware prefetcher streams them, and acc
 * (one head row, in L1) is loaded and stored once per four keys. */
PK_AVX2 INL void pv_all_avx2(const int NH, const int BF, float *const *acc,
	const float *const *p, const void *v, int nk, int D)
{
	int j = 0;
	for (; j + 4 <= nk; j += 4) {
		const void *v0 = vrow(v, BF, j, D), *v1 = vrow(v, BF, j + 1, D);
		const void *v2 = vrow(v, BF, j + 2, D), *v3 = vrow(v, BF, j + 3, D);
		__m256 w[2][4];
#pragma GCC unroll 2
		for (int g = 0; g < NH; g++)
#pragma GCC unroll 4
			for (int r = 0; r < 4; r++)
				w[g][r] = _mm256_set1_ps(p[g][j + r]);
		int d = 0;
		for (; d + 8 <= D; d += 8) {
			__m256 x0 = ld8_avx2(v0, BF, d), x1 = ld8_avx2(v1, BF, d);
			__m256 x2 = ld8_avx2(v2, BF, d), x3 = ld8_avx2(v3, BF, d);
#pragma GCC unroll 2
			for (int g = 0; g < NH; g++) {
				__m256 c = _mm256_loadu_ps(acc[g] + d);
				c = _mm256_fmadd_ps(w[g][0], x0, c);
				c = _mm256_fmadd_ps(w[g][1], x1, c);
				c = _mm256_fmadd_ps(w[g][2], x2, c);
				c = _mm256_fmadd_ps(w[g][3], x3, c);
				_mm256_storeu_ps(acc[g] + d, c);
			}
		}
		for (; d < D; d++)
#pragma GCC unroll 2
			for (int g = 0; g < NH; g++)
				acc[g][d] += p[g][j] * ld1(v0, BF, d) + p[g][j + 1] * ld1(v1, BF, d) +
					p[g][j + 2] * ld1(v2, BF, d) + p[g][j + 3] * ld1(v3, BF, d);
	}
	pv_rest(NH, BF, acc, p, v, j, nk, D);
}

PK_AVX2 static void pv_avx2(int nh, float *const *acc, const float *const *p, const void *v,
	int nk, int D, int bf16)
{
	if (nh == 2)
		bf16 ? pv_all_avx2(2, 1, acc, p, v, nk, D) : pv_all_avx2(2, 0, acc, p, v, nk, D);
	else
		bf16 ? pv_all_avx2(1, 1, acc, p, v, nk, D) : pv_all_avx2(1, 0, acc, p, v, nk, D);
}

PK_AVX2 static float exp_sum_avx2(float *x, int n, float m)
{
	__m256 mm = _mm256_set1_ps(m), s = _mm256_setzero_ps();
	for (int i = 0; i < n; i += 8) {
		__m256 e = pk__exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), mm));
		_mm256_storeu_ps(x + i, e);
		s = _mm256_add_ps(s, e);
	}
	return pk__hsum_avx2(s);
}

static const dec_ops_t ops_avx2 = { dots_avx2, pv_avx2, exp_sum_avx2 };

/* ---- AVX-512: the same, 16 lanes, masked tails ------------------------------ */
PK_AVX512 INL __m512 ld16_avx512(const void *p, const int bf16, int d, __mmask16 k)
{
	if (bf16) {
		__m256i h = _mm256_maskz_loadu_epi16(k, (const pk_bf16_t *)p + d);
		return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
	}
	return _mm512_maskz_loadu_ps(k, (const float *)p + d);
}

PK_AVX512 INL void dots_t_avx512(const int NH, const int BF, const float *const *qr,
	const void *const *kr, int D, float s[2][4])
{
	__m512 c[2][4];
	const void *k0 = kr[0], *k1 = kr[1], *k2 = kr[2], *k3 = kr[3];
#pragma GCC unroll 4
	for (int g = 0; g < 2; g++)
#pragma GCC unroll 4
		for (int r = 0; r < 4; r++)
			c[g][r] = _mm512_setzero_ps();
	for (int d = 0; d < D; d += 16) {
		__mmask16 k = D - d >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (D - d)) - 1);
		__m512 q[2];
#pragma GCC unroll 4
		for (int g = 0; g < NH; g++)
			q[g] = _mm512_maskz_loadu_ps(k, qr[g] + d);
#define DOT_KEY(r) { __m512 x = ld16_avx512(k##r, BF, d, k); \
		_Pragma("GCC unroll 2") for (int g = 0; g < NH; g++) c[g][r] = _mm512_fmadd_ps(q[g], x, c[g][r]); }
		DOT_KEY(0) DOT_KEY(1) DOT_KEY(2) DOT_KEY(3)
#undef DOT_KEY
	}
#pragma GCC unroll 4
	for (int g = 0; g < NH; g++)
#pragma GCC unroll 4
		for (int r = 0; r < 4; r++)
			s[g][r] = _mm512_reduce_add_ps(c[g][r]);
}

PK_AVX512 static void dots_avx512(int nh, const float *const *qr, const void *const *kr, int D,
	int bf16, float s[2][4])
{
	if (nh == 2)
		bf16 ? dots_t_avx512(2, 1, qr, kr, D, s) : dots_t_avx512(2, 0, qr, kr, D, s);
	else
		bf16 ? dots_t_avx512(1, 1, qr, kr, D, s) : dots_t_avx512(1, 0, qr, kr, D, s);
}

/* as pv_all_avx2; the tail of D is a masked vector */
PK_AVX512 INL void pv_all_avx512(const int NH, const int BF, float *const *acc,
	const float *const *p, const void *v, int nk, int D)
{
	int j = 0;
	for (; j + 4 <= nk; j += 4) {
		const void *v0 = vrow(v, BF, j, D), *v1 = vrow(v, BF, j + 1, D);
		const void *v2 = vrow(v, BF, j + 2, D), *v3 = vrow(v, BF, j + 3, D);
		__m512 w[2][4];
#pragma GCC unroll 2
		for (int g = 0; g < NH; g++)
#pragma GCC unroll 4
			for (int r = 0; r < 4; r++)
				w[g][r] = _mm512_set1_ps(p[g][j + r]);
		for (int d = 0; d < D; d += 16) {
			__mmask16 k = D - d >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (D - d)) - 1);
			__m512 x0 = ld16_avx512(v0, BF, d, k), x1 = ld16_avx512(v1, BF, d, k);
			__m512 x2 = ld16_avx512(v2, BF, d, k), x3 = ld16_avx512(v3, BF, d, k);
#pragma GCC unroll 2
			for (int g = 0; g < NH; g++) {
				__m512 c = _mm512_maskz_loadu_ps(k, acc[g] + d);
				c = _mm512_fmadd_ps(w[g][0], x0, c);
				c = _mm512_fmadd_ps(w[g][1], x1, c);
				c = _mm512_fmadd_ps(w[g][2], x2, c);
				c = _mm512_fmadd_ps(w[g][3], x3, c);
				_mm512_mask_storeu_ps(acc[g] + d, k, c);
			}
		}
	}
	pv_rest(NH, BF, acc, p, v, j, nk, D);
}

PK_AVX512 static void pv_avx512(int nh, float *const *acc, const float *const *p, const void *v,
	int nk, int D, int bf16)
{
	if (nh == 2)
		bf16 ? pv_all_avx512(2, 1, acc, p, v, nk, D) : pv_all_avx512(2, 0, acc, p, v, nk, D);
	else
		bf16 ? pv_all_avx512(1, 1, acc, p, v, nk, D) : pv_all_avx512(1, 0, acc, p, v, nk, D);
}

PK_AVX512 static float exp_sum_avx512(float *x, int n, float m)
{
	__m512 mm = _mm512_set1_ps(m), s = _mm512_setzero_ps();
	for (int i = 0; i < n; i += 16) {
		__m512 e = pk__exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), mm));
		_mm512_storeu_ps(x + i, e);
		s = _mm512_add_ps(s, e);
	}
	return _mm512_reduce_add_ps(s);
}

static const dec_ops_t ops_avx512 = { dots_avx512, pv_avx512, exp_sum_avx512 };

/* ---- the driver -------------------------------------------------------------- */
typedef struct {
	pk_ctx_t *ctx;
	const pk__attn_t *a;
	const dec_ops_t *ops;
	int nchunks, chunk;
	size_t ps;   /* floats per partial: acc (D rounded to 16), m, l */
	float *part; /* (Hkv * nchunks, G, ps) */
} decode_t;

/* Keys [c0, c1) of KV head hk for the G heads of its group; the partial of
 * head g goes to part[(item*G + g) * ps]: acc, then m, l. */
static void decode_task(void *arg, int item, int tid)
{
	const decode_t *p = arg;
	const pk__attn_t *a = p->a;
	const pk_attn_cfg_t *cfg = a->cfg;
	const pk_kv_t *kv = p->a->kv;
	const dec_ops_t *ops = p->ops;
	const int G = a->G, D = a->D, bf16 = kv->dtype == PK_BF16;
	const int hk = item / p->nchunks, n = kv->len[hk];
	const int c0 = (item % p->nchunks) * p->chunk;
	const int c1 = c0 + p->chunk < n ? c0 + p->chunk : n;
	const int32_t qp = a->qpos[0];
	const int32_t *kpos = kv->pos + (size_t)hk * (size_t)kv->cap;
	float *sc = pk__scratch(p->ctx, tid); /* (G, BKD) scores, then weights */
	const size_t row_bytes = (size_t)D * (bf16 ? 2 : 4);
	float *part = p->part + (size_t)item * G * p->ps;

	for (int g = 0; g < G; g++) {
		float *acc = part + (size_t)g * p->ps;
		memset(acc, 0, (size_t)D * sizeof *acc);
		acc[p->ps - 2] = -INFINITY;
		acc[p->ps - 1] = 0.0f;
	}
	for (int j0 = c0; j0 < c1; j0 += BKD) {
		int nk = c1 - j0 < BKD ? c1 - j0 : BKD;
		int cls = pk__attn_block_keys(cfg, qp, qp, kpos, j0, nk);
		if (cls == PK__BLK_NONE)
			continue;
		/* raw dots, two heads x four keys at a time (short groups repeat) */
		for (int g0 = 0; g0 < G; g0 += 2) {
			int nh = g0 + 1 < G ? 2 : 1, g1 = g0 + nh - 1;
			const float *qr[2] = {
				a->q + (size_t)(hk * G + g0) * D, a->q + (size_t)(hk * G + g1) * D };
			for (int j = 0; j < nk; j += 4) {
				const void *kr[4];
				float s[2][4];
				if (g0 == 0) { /* keys PD rows ahead (within the chunk), and
				                  this block's values for the P.V pass */
					int a = j0 + j + PD, b = a + 4 < c1 ? a + 4 : c1;
					for (int r = a; r < b; r++) {
						const char *kp = pk__kv_row(kv, kv->k, hk, r);
						for (size_t o = 0; o < row_bytes; o += 64)
							_mm_prefetch(kp + o, _MM_HINT_T0);
					}
					for (int r = j0 + j; r < j0 + j + 4 && r < c1; r++) {
						const char *vp = pk__kv_row(kv, kv->v, hk, r);
						for (size_t o = 0; o < row_bytes; o += 64)
							_mm_prefetch(vp + o, _MM_HINT_T0);
					}
				}
				for (int r = 0; r < 4; r++)
					kr[r] = pk__kv_row(kv, kv->k, hk, j0 + (j + r < nk ? j + r : nk - 1));
				ops->dots(nh, qr, kr, D, bf16, s);
				for (int r = 0; r < 4 && j + r < nk; r++) {
					sc[g0 * BKD + j + r] = s[0][r];
					sc[g1 * BKD + j + r] = s[nh - 1][r];
				}
			}
		}
		/* scale, bias, mask; then the online-softmax step per head */
		for (int g = 0; g < G; g++) {
			int h = hk * G + g;
			float *s = sc + g * BKD, *acc = part + (size_t)g * p->ps;
			float bm = -INFINITY;
			if (cls == PK__BLK_ALL && cfg->bias.kind == PK_BIAS_NONE) {
				/* the common case, a loop the compiler vectorises */
				for (int j = 0; j < nk; j++) {
					s[j] *= a->scale;
					bm = s[j] > bm ? s[j] : bm;
				}
				for (int j = nk; j < BKD; j++)
					s[j] = -INFINITY;
			} else for (int j = 0; j < BKD; j++) {
				if (j >= nk || (cls == PK__BLK_PART &&
						!pk__attn_visible(cfg, qp, kpos[j0 + j], j0 + j))) {
					s[j] = -INFINITY;
					continue;
				}
				s[j] = a->scale * s[j] + pk__attn_bias(a, h, qp, kpos[j0 + j]);
				bm = s[j] > bm ? s[j] : bm;
			}
			float mo = acc[p->ps - 2];
			if (bm <= mo) {
				bm = mo;
			} else if (mo > -INFINITY) {
				float f = expf(mo - bm);
				for (int d = 0; d < D; d++)
					acc[d] *= f;
				acc[p->ps - 1] *= f;
			}
			if (bm == -INFINITY) { /* nothing visible yet: weights 0 */
				memset(s, 0, BKD * sizeof *s);
				continue;
			}
			acc[p->ps - 2] = bm;
			acc[p->ps - 1] += ops->exp_sum(s, BKD, bm);
		}
		const void *v = pk__kv_row(kv, kv->v, hk, j0);
		for (int g0 = 0; g0 < G; g0 += 2) {
			int nh = g0 + 1 < G ? 2 : 1, g1 = g0 + nh - 1;
			float *accs[2] = { part + (size_t)g0 * p->ps, part + (size_t)g1 * p->ps };
			const float *ps[2] = { sc + g0 * BKD, sc + g1 * BKD };
			ops->pv(nh, accs, ps, v, nk, D, bf16);
		}
	}
}

/* out: (1, H, D): per head, partials rescaled to the common max and summed. */
static void merge(const decode_t *p)
{
	const pk__attn_t *a = p->a;
	const int G = a->G, D = a->D;
	for (int h = 0; h < a->H; h++) {
		int hk = h / G, g = h % G;
		float *o = a->out + (size_t)h * D;
		float M = -INFINITY;
		for (int c = 0; c < p->nchunks; c++) {
			const float *pc = p->part + ((size_t)(hk * p->nchunks + c) * G + g) * p->ps;
			M = pc[p->ps - 2] > M ? pc[p->ps - 2] : M;
		}
		if (M == -INFINITY) { /* no visible key */
			memset(o, 0, (size_t)D * sizeof *o);
			continue;
		}
		float L = 0.0f;
		for (int d = 0; d < D; d++)
			o[d] = 0.0f;
		for (int c = 0; c < p->nchunks; c++) {
			const float *pc = p->part + ((size_t)(hk * p->nchunks + c) * G + g) * p->ps;
			if (pc[p->ps - 2] == -INFINITY)
				continue;
			float f = expf(pc[p->ps - 2] - M);
			L += pc[p->ps - 1] * f;
			for (int d = 0; d < D; d++)
				o[d] += pc[d] * f;
		}
		float f = 1.0f / L;
		if (a->cfg->sink_logits) {
			float s = a->cfg->sink_logits[h], mm = M > s ? M : s, e = expf(M - mm);
			f = e / (L * e + expf(s - mm));
		}
		for (int d = 0; d < D; d++)
			o[d] *= f;
	}
}

int pk__attn_decode(pk_ctx_t *ctx, const pk__attn_t *a)
{
	decode_t p = { .ctx = ctx, .a = a };
	p.ops = ctx->isa == PK_ISA_AVX512 ? &ops_avx512 : &ops_avx2;
	int maxlen = 0;
	for (int h = 0; h < a->Hkv; h++)
		maxlen = a->kv->len[h] > maxlen ? a->kv->len[h] : maxlen;
	/* enough items for every thread (4 each) but chunks long enough that
	 * the merge and per-item setup stay small */
	int want = (4 * ctx->nthreads + a->Hkv - 1) / a->Hkv;
	int most = (maxlen + MIN_CHUNK - 1) / MIN_CHUNK;
	p.nchunks = want < most ? want : most;
	if (p.nchunks < 1)
		p.nchunks = 1;
	p.chunk = (maxlen + p.nchunks - 1) / p.nchunks;
	p.chunk = (p.chunk + BKD - 1) / BKD * BKD;
	if (p.chunk < BKD)
		p.chunk = BKD;
	p.ps = ((size_t)a->D + 15) / 16 * 16 + 16;
	size_t items = (size_t)a->Hkv * (size_t)p.nchunks;
	p.part = pk__alloc(items * (size_t)a->G * p.ps, sizeof(float));
	if (!p.part)
		return PK_ENOMEM;
	int rc = pk__scratch_reserve(ctx, (size_t)a->G * BKD * sizeof(float));
	if (rc == PK_OK) {
		pk_parallel_for(ctx, (int)items, decode_task, &p);
		merge(&p);
	}
	pk__free(p.part);
	return rc;
}

#else

int pk__attn_decode(pk_ctx_t *ctx, const pk__attn_t *a) { return PK_ENOTSUP; }

#endif
