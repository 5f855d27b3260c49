/* kernels/attn_prefill.c: flash-style tiled prefill. A task is (KV head,
 * block of BQ query rows) and serves every query head of the GQA group, so
 * each key/value block is read (and bf16-converted) once per task. Per key
 * block: S^T = K Q^T by a 6 x NR register-blocked micro-kernel (keys are
 * broadcast straight from the cache, Q^T is packed once per task), mask and
 * bias on the tile, online softmax vectorised across queries, O += P V. */
#include "config.h"

#include "kernels/attn_int.h"

#include <string.h>

#define BQ 96 /* query rows per task: a multiple of 6, 16 and 32 */
#define BK 48 /* keys per block */
#define MR 6  /* micro-kernel rows */

#if PK_X86

/* One ISA's micro-kernels; NR is the panel width (two vectors). */
typedef struct {
	int nr;
	/* st[r][0..nr) = scale * kr[r] . Q^T panel, r < m; qt: (D, nr) */
	void (*s_tile)(int m, int D, const float *const *kr, const float *qt,
		float scale, float *st, size_t ldst);
	/* Online-softmax step over the tile st: (nk, nqs) for one head: adds
	 * the bias, updates m/l, turns st into P and writes alpha (the factor
	 * the old O is scaled by). */
	void (*softmax)(const pk__attn_t *a, int h, float *st, size_t ldst, int nk, int nqs,
		const int32_t *qp, const int32_t *kp, float *m, float *l, float *alpha);
	/* o[ir[r]][0..nr) = alpha * o + sum_j P[j][ir[r]] * v[j][0..nr), r < m */
	void (*pv_tile)(int m, int nk, const float *pt, size_t ldp, const int *ir,
		const float *v, size_t ldv, float *o, size_t ldo, const float *alpha);
	/* dst[0..n) = src as f32, n a multiple of 8 */
	void (*bf16_to_f32)(float *dst, const pk_bf16_t *src, size_t n);
} isa_ops_t;

/* Bias setup shared by softmax_avx2/avx512: head h's ALiBi slope (0 for
 * other biases) and its T5 table row (NULL for other biases). */
static inline float alibi_slope(const pk__attn_t *a, int h)
{
	return a->cfg->bias.kind == PK_BIAS_ALIBI ? a->cfg->bias.alibi_slopes[h] : 0.0f;
}

static inline const float *t5_row(const pk__attn_t *a, int h)
{
	return a->cfg->bias.kind == PK_BIAS_T5 ?
		a->t5 + (size_t)h * (size_t)(a->t5_hi - a->t5_lo + 1) : NULL;
}

/* ---- AVX2: NR = 16 -------------------------------------------------------- */
/* The accumulators are named variables, not an array: an array indexed by
 * the run-time row count would be kept in memory. */
#define ACC_DECL(T, z) T c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, \
	c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z
#define ACC_ROWS(F) F(0, c00, c01) F(1, c10, c11) F(2, c20, c21) F(3, c30, c31) \
	F(4, c40, c41) F(5, c50, c51)

PK_AVX2 static void s_tile_avx2(int m, int D, const float *const *kr, const float *qt,
	float scale, float *st, size_t ldst)
{
	ACC_DECL(__m256, _mm256_setzero_ps());
	const float *k0 = kr[0], *k1 = kr[1], *k2 = kr[2], *k3 = kr[3], *k4 = kr[4], *k5 = kr[5];
	for (int d = 0; d < D; d++) {
		__m256 b0 = _mm256_load_ps(qt + (size_t)d * 16);
		__m256 b1 = _mm256_load_ps(qt + (size_t)d * 16 + 8);
		__m256 x;
#define S_ROW(r, a0, a1) x = _mm256_broadcast_ss(k##r + d); \
		a0 = _mm256_fmadd_ps(x, b0, a0); a1 = _mm256_fmadd_ps(x, b1, a1);
		ACC_ROWS(S_ROW)
#undef S_ROW
	}
	__m256 sc = _mm256_set1_ps(scale);
#define S_STORE(r, a0, a1) if (r < m) { \
		_mm256_storeu_ps(st + r * ldst, _mm256_mul_ps(a0, sc)); \
		_mm256_storeu_ps(st + r * ldst + 8, _mm256_mul_ps(a1, sc)); }
	ACC_ROWS(S_STORE)
#undef S_STORE
}

PK_AVX2 static void pv_tile_avx2(int m, int nk, const float *pt, size_t ldp, const int *ir,
	const float *v, size_t ldv, float *o, size_t ldo, const float *alpha)
{
	const int i0 = ir[0], i1 = ir[1], i2 = ir[2], i3 = ir[3], i4 = ir[4], i5 = ir[5];
	ACC_DECL(__m256, _mm256_setzero_ps());
#define PV_LOAD(r, a0, a1) { __m256 al = _mm256_broadcast_ss(alpha + i##r); \
		a0 = _mm256_mul_ps(al, _mm256_loadu_ps(o + i##r * ldo)); \
		a1 = _mm256_mul_ps(al, _mm256_loadu_ps(o + i##r * ldo + 8)); }
	ACC_ROWS(PV_LOAD)
#undef PV_LOAD
	for (int j = 0; j < nk; j++) {
		const float *vj = v + (size_t)j * ldv, *pj = pt + (size_t)j * ldp;
		__m256 b0 = _mm256_loadu_ps(vj), b1 = _mm256_loadu_ps(vj + 8);
		__m256 x;
#define PV_ROW(r, a0, a1) x = _mm256_broadcast_ss(pj + i##r); \
		a0 = _mm256_fmadd_ps(x, b0, a0); a1 = _mm256_fmadd_ps(x, b1, a1);
		ACC_ROWS(PV_ROW)
#undef PV_ROW
	}
#define PV_STORE(r, a0, a1) if (r < m) { \
		_mm256_storeu_ps(o + i##r * ldo, a0); _mm256_storeu_ps(o + i##r * ldo + 8, a1); }
	ACC_ROWS(PV_STORE)
#undef PV_STORE
}

/* st: (nk, nqs), 8 queries per vector; qp: (nqs); kp: (nk). */
PK_AVX2 static void softmax_avx2(const pk__attn_t *a, int h, float *st, size_t ldst, int nk,
	int nqs, const int32_t *qp, const int32_t *kp, float *m, float *l, float *alpha)
{
	const int kind = a->cfg->bias.kind, bidir = !a->cfg->causal;
	__m256 slope = _mm256_set1_ps(alibi_slope(a, h));
	const float *tb = t5_row(a, h);
	__m256i lo = _mm256_set1_epi32(a->t5_lo), hi = _mm256_set1_epi32(a->t5_hi);
	const __m256 ninf = _mm256_set1_ps(-INFINITY);
	for (int c = 0; c < nqs; c += 8) {
		__m256i q = _mm256_loadu_si256((const __m256i *)(qp + c));
		__m256 mold = _mm256_loadu_ps(m + c), mx = mold;
		for (int j = 0; j < nk; j++) {
			float *s = st + (size_t)j * ldst + c;
			__m256 x = _mm256_loadu_ps(s);
			if (kind == PK_BIAS_ALIBI) {
				__m256i d = _mm256_sub_epi32(q, _mm256_set1_epi32(kp[j]));
				if (bidir)
					d = _mm256_abs_epi32(d);
				x = _mm256_fnmadd_ps(slope, _mm256_cvtepi32_ps(d), x);
				_mm256_storeu_ps(s, x);
			} else if (kind == PK_BIAS_T5) {
				__m256i r = _mm256_sub_epi32(_mm256_set1_epi32(kp[j]), q);
				r = _mm256_sub_epi32(_mm256_min_epi32(_mm256_max_epi32(r, lo), hi), lo);
				x = _mm256_add_ps(x, _mm256_i32gather_ps(tb, r, 4));
				_mm256_storeu_ps(s, x);
			}
			mx = _mm256_max_ps(mx, x);
		}
		/* rows that have seen no key keep m = -inf: exp against 0 gives 0 */
		__m256 off = _mm256_blendv_ps(mx, _mm256_setzero_ps(), _mm256_cmp_ps(mx, ninf, _CMP_EQ_OQ));
		__m256 sum = _mm256_setzero_ps();
		for (int j = 0; j < nk; j++) {
			float *s = st + (size_t)j * ldst + c;
			__m256 p = pk__exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s), off));
			_mm256_storeu_ps(s, p);
			sum = _mm256_add_ps(sum, p);
		}
		__m256 al = pk__exp_avx2(_mm256_sub_ps(mold, off));
		_mm256_storeu_ps(alpha + c, al);
		_mm256_storeu_ps(l + c, _mm256_fmadd_ps(_mm256_loadu_ps(l + c), al, sum));
		_mm256_storeu_ps(m + c, mx);
	}
}

PK_AVX2 static void bf16_to_f32_avx2(float *dst, const pk_bf16_t *src, size_t n)
{
	for (size_t i = 0; i < n; i += 8)
		_mm256_storeu_ps(dst + i, pk__load_bf16_avx2(src + i));
}

static const isa_ops_t ops_avx2 = { 16, s_tile_avx2, softmax_avx2, pv_tile_avx2,
	bf16_to_f32_avx2 };

/* ---- AVX-512: NR = 32, the same structure --------------------------------- */
PK_AVX512 static void s_tile_avx512(int m, int D, const float *const *kr, const float *qt,
	float scale, float *st, size_t ldst)
{
	ACC_DECL(__m512, _mm512_setzero_ps());
	const float *k0 = kr[0], *k1 = kr[1], *k2 = kr[2], *k3 = kr[3], *k4 = kr[4], *k5 = kr[5];
	for (int d = 0; d < D; d++) {
		__m512 b0 = _mm512_load_ps(qt + (size_t)d * 32);
		__m512 b1 = _mm512_load_ps(qt + (size_t)d * 32 + 16);
		__m512 x;
#define S_ROW(r, a0, a1) x = _mm512_set1_ps(k##r[d]); \
		a0 = _mm512_fmadd_ps(x, b0, a0); a1 = _mm512_fmadd_ps(x, b1, a1);
		ACC_ROWS(S_ROW)
#undef S_ROW
	}
	__m512 sc = _mm512_set1_ps(scale);
#define S_STORE(r, a0, a1) if (r < m) { \
		_mm512_storeu_ps(st + r * ldst, _mm512_mul_ps(a0, sc)); \
		_mm512_storeu_ps(st + r * ldst + 16, _mm512_mul_ps(a1, sc)); }
	ACC_ROWS(S_STORE)
#undef S_STORE
}

PK_AVX512 static void pv_tile_avx512(int m, int nk, const float *pt, size_t ldp, const int *ir,
	const float *v, size_t ldv, float *o, size_t ldo, const float *alpha)
{
	const int i0 = ir[0], i1 = ir[1], i2 = ir[2], i3 = ir[3], i4 = ir[4], i5 = ir[5];
	ACC_DECL(__m512, _mm512_setzero_ps());
#define PV_LOAD(r, a0, a1) { __m512 al = _mm512_set1_ps(alpha[i##r]); \
		a0 = _mm512_mul_ps(al, _mm512_loadu_ps(o + i##r * ldo)); \
		a1 = _mm512_mul_ps(al, _mm512_loadu_ps(o + i##r * ldo + 16)); }
	ACC_ROWS(PV_LOAD)
#undef PV_LOAD
	for (int j = 0; j < nk; j++) {
		const float *vj = v + (size_t)j * ldv, *pj = pt + (size_t)j * ldp;
		__m512 b0 = _mm512_loadu_ps(vj), b1 = _mm512_loadu_ps(vj + 16);
		__m512 x;
#define PV_ROW(r, a0, a1) x = _mm512_set1_ps(pj[i##r]); \
		a0 = _mm512_fmadd_ps(x, b0, a0); a1 = _mm512_fmadd_ps(x, b1, a1);
		ACC_ROWS(PV_ROW)
#undef PV_ROW
	}
#define PV_STORE(r, a0, a1) if (r < m) { \
		_mm512_storeu_ps(o + i##r * ldo, a0); _mm512_storeu_ps(o + i##r * ldo + 16, a1); }
	ACC_ROWS(PV_STORE)
#undef PV_STORE
}

PK_AVX512 static void softmax_avx512(const pk__attn_t *a, int h, float *st, size_t ldst, int nk,
	int nqs, const int32_t *qp, const int32_t *kp, float *m, float *l, float *alpha)
{
	const int kind = a->cfg->bias.kind, bidir = !a->cfg->causal;
	__m512 slope = _mm512_set1_ps(alibi_slope(a, h));
	const float *tb = t5_row(a, h);
	__m512i lo = _mm512_set1_epi32(a->t5_lo), hi = _mm512_set1_epi32(a->t5_hi);
	const __m512 ninf = _mm512_set1_ps(-INFINITY);
	for (int c = 0; c < nqs; c += 16) {
		__m512i q = _mm512_loadu_si512(qp + c);
		__m512 mold = _mm512_loadu_ps(m + c), mx = mold;
		for (int j = 0; j < nk; j++) {
			float *s = st + (size_t)j * ldst + c;
			__m512 x = _mm512_loadu_ps(s);
			if (kind == PK_BIAS_ALIBI) {
				__m512i d = _mm512_sub_epi32(q, _mm512_set1_epi32(kp[j]));
				if (bidir)
					d = _mm512_abs_epi32(d);
				x = _mm512_fnmadd_ps(slope, _mm512_cvtepi32_ps(d), x);
				_mm512_storeu_ps(s, x);
			} else if (kind == PK_BIAS_T5) {
				__m512i r = _mm512_sub_epi32(_mm512_set1_epi32(kp[j]), q);
				r = _mm512_sub_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo), hi), lo);
				x = _mm512_add_ps(x, _mm512_i32gather_ps(r, tb, 4));
				_mm512_storeu_ps(s, x);
			}
			mx = _mm512_max_ps(mx, x);
		}
		__m512 off = _mm512_mask_mov_ps(mx, _mm512_cmp_ps_mask(mx, ninf, _CMP_EQ_OQ),
			_mm512_setzero_ps());
		__m512 sum = _mm512_setzero_ps();
		for (int j = 0; j < nk; j++) {
			float *s = st + (size_t)j * ldst + c;
			__m512 p = pk__exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(s), off));
			_mm512_storeu_ps(s, p);
			sum = _mm512_add_ps(sum, p);
		}
		__m512 al = pk__exp_avx512(_mm512_sub_ps(mold, off));
		_mm512_storeu_ps(alpha + c, al);
		_mm512_storeu_ps(l + c, _mm512_fmadd_ps(_mm512_loadu_ps(l + c), al, sum));
		_mm512_storeu_ps(m + c, mx);
	}
}

PK_AVX512 static void bf16_to_f32_avx512(float *dst, const pk_bf16_t *src, size_t n)
{
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(dst + i, pk__load_bf16_avx512(src + i));
	if (i < n)
		bf16_to_f32_avx2(dst + i, src + i, n - i);
}

static const isa_ops_t ops_avx512 = { 32, s_tile_avx512, softmax_avx512, pv_tile_avx512,
	bf16_to_f32_avx512 };

/* ---- the driver (ISA-neutral) ----------------------------------------------- */
typedef struct {
	pk_ctx_t *ctx;
	const pk__attn_t *a;
	const isa_ops_t *ops;
	int nqb;         /* query blocks */
	int Dp;          /* D rounded up to nr */
	int pack_v;      /* V goes through vb (bf16, or D not a multiple of nr) */
	size_t per_head; /* floats of per-head state in scratch */
} prefill_t;

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* Per-thread scratch, in floats: S^T (BK, BQ), K rows (BK, D), V rows
 * (BK, Dp), query positions (BQ), then per head Q^T (D, BQ) in panels,
 * O (BQ, Dp) and m, l, alpha (BQ). Every piece starts 64-byte aligned. */
static size_t scratch_floats(const prefill_t *p)
{
	return (size_t)BK * BQ + round_up((size_t)BK * (size_t)p->a->D, 16) +
		(size_t)BK * (size_t)p->Dp + BQ + (size_t)p->a->G * p->per_head;
}

/* dst: (n) f32 from n elements of dtype dt; the vector part by the ISA */
static void to_f32(const isa_ops_t *ops, float *dst, const void *src, int n, pk_dtype_t dt)
{
	if (dt == PK_F32) {
		memcpy(dst, src, (size_t)n * sizeof *dst);
		return;
	}
	const pk_bf16_t *s = src;
	int n8 = n & ~7;
	ops->bf16_to_f32(dst, s, (size_t)n8);
	for (int i = n8; i < n; i++)
		dst[i] = pk_bf16_to_f32(s[i]);
}

/* One (KV head hk, query block): rows [t0, t0+nq) of the G heads of the
 * group, all keys of the head in blocks of BK. */
static void prefill_task(void *arg, int idx, int tid)
{
	const prefill_t *p = arg;
	const pk__attn_t *a = p->a;
	const pk_attn_cfg_t *cfg = a->cfg;
	const pk_kv_t *kv = a->kv;
	const isa_ops_t *ops = p->ops;
	const int nr = ops->nr, D = a->D, Dp = p->Dp, G = a->G;
	/* one head's blocks run back to back so its K/V stay in cache; within
	 * it the last query blocks (the most keys when causal) go first */
	const int hk = idx / p->nqb, qb = p->nqb - 1 - idx % p->nqb;
	const int t0 = qb * BQ, nq = a->Tq - t0 < BQ ? a->Tq - t0 : BQ;
	const int nqs = (int)round_up((size_t)nq, (size_t)nr);

	float *w = pk__scratch(p->ctx, tid);
	float *st = w;                                  /* (nk, nqs) */
	float *kb = st + BK * BQ;                       /* (BK, D) */
	float *vb = kb + round_up((size_t)BK * D, 16);  /* (BK, Dp) */
	int32_t *qpb = (int32_t *)(vb + (size_t)BK * Dp); /* (nqs) */
	float *hs = (float *)(qpb + BQ);

	/* padding rows repeat the last real one so they stay finite */
	int32_t qlo = a->qpos[t0], qhi = a->qpos[t0];
	for (int i = 0; i < nqs; i++) {
		int32_t qp = a->qpos[t0 + (i < nq ? i : nq - 1)];
		qpb[i] = qp;
		qlo = qp < qlo ? qp : qlo;
		qhi = qp > qhi ? qp : qhi;
	}
	for (int g = 0; g < G; g++) {
		int h = hk * G + g;
		float *qt = hs + (size_t)g * p->per_head;      /* (nqs/nr) panels of (D, nr) */
		float *o = qt + (size_t)BQ * D, *m = o + (size_t)BQ * Dp, *l = m + BQ;
		for (int pp = 0; pp < nqs / nr; pp++)
			for (int c = 0; c < nr; c++) {
				int row = pp * nr + c;
				const float *qr = a->q + (size_t)(t0 + row) * a->ldq + (size_t)h * D;
				float *dst = qt + (size_t)pp * D * nr + c;
				for (int d = 0; d < D; d++)
					dst[(size_t)d * nr] = row < nq ? qr[d] : 0.0f;
			}
		memset(o, 0, (size_t)nqs * Dp * sizeof *o);
		for (int i = 0; i < nqs; i++) {
			m[i] = -INFINITY;
			l[i] = 0.0f;
		}
	}

	const int n = kv->len[hk];
	const int32_t *kpos = kv->pos + (size_t)hk * (size_t)kv->cap;
	for (int k0 = 0; k0 < n; k0 += BK) {
		int nk = n - k0 < BK ? n - k0 : BK;
		int cls = pk__attn_block_keys(cfg, qlo, qhi, kpos, k0, nk);
		if (cls == PK__BLK_NONE)
			continue;
		const float *kr0 = pk__kv_row(kv, kv->k, hk, k0);
		if (kv->dtype == PK_BF16) {
			to_f32(ops, kb, pk__kv_row(kv, kv->k, hk, k0), nk * D, kv->dtype);
			kr0 = kb;
		}
		const float *vr0 = pk__kv_row(kv, kv->v, hk, k0);
		size_t ldv = (size_t)D;
		if (p->pack_v) {
			for (int j = 0; j < nk; j++) {
				to_f32(ops, vb + (size_t)j * Dp, pk__kv_row(kv, kv->v, hk, k0 + j), D,
					kv->dtype);
				memset(vb + (size_t)j * Dp + D, 0, (size_t)(Dp - D) * sizeof *vb);
			}
			vr0 = vb;
			ldv = (size_t)Dp;
		}
		for (int g = 0; g < G; g++) {
			int h = hk * G + g;
			float *qt = hs + (size_t)g * p->per_head;
			float *o = qt + (size_t)BQ * D, *m = o + (size_t)BQ * Dp, *l = m + BQ;
			float *al = l + BQ;
			/* S^T = scale * K Q^T, MR keys at a time; a short last group
			 * repeats its last key and stores only the real rows */
			for (int j0 = 0; j0 < nk; j0 += MR) {
				int mr = nk - j0 < MR ? nk - j0 : MR;
				const float *kr[MR];
				for (int r = 0; r < MR; r++)
					kr[r] = kr0 + (size_t)(j0 + (r < mr ? r : mr - 1)) * D;
				for (int pp = 0; pp < nqs / nr; pp++)
					ops->s_tile(mr, D, kr, qt + (size_t)pp * D * nr, a->scale,
						st + (size_t)j0 * nqs + (size_t)pp * nr, (size_t)nqs);
			}
			if (cls == PK__BLK_PART)
				for (int j = 0; j < nk; j++)
					for (int i = 0; i < nqs; i++)
						if (!pk__attn_visible(cfg, qpb[i], kpos[k0 + j], k0 + j))
							st[(size_t)j * nqs + i] = -INFINITY;
			ops->softmax(a, h, st, (size_t)nqs, nk, nqs, qpb, kpos + k0, m, l, al);
			for (int i0 = 0; i0 < nq; i0 += MR) {
				int mr = nq - i0 < MR ? nq - i0 : MR, ir[MR];
				for (int r = 0; r < MR; r++)
					ir[r] = i0 + (r < mr ? r : mr - 1);
				for (int c = 0; c < Dp; c += nr)
					ops->pv_tile(mr, nk, st, (size_t)nqs, ir, vr0 + c, ldv, o + c,
						(size_t)Dp, al);
			}
		}
	}

	for (int g = 0; g < G; g++) {
		int h = hk * G + g;
		float *qt = hs + (size_t)g * p->per_head;
		float *o = qt + (size_t)BQ * D, *m = o + (size_t)BQ * Dp, *l = m + BQ;
		for (int i = 0; i < nq; i++) {
			float *dst = a->out + (size_t)(t0 + i) * a->ldo + (size_t)h * D;
			float f = 0.0f; /* no visible key: zeros */
			if (l[i] > 0.0f) {
				f = 1.0f / l[i];
				if (cfg->sink_logits) {
					float s = cfg->sink_logits[h], mm = m[i] > s ? m[i] : s;
					float e = expf(m[i] - mm);
					f = e / (l[i] * e + expf(s - mm));
				}
			}
			for (int d = 0; d < D; d++)
				dst[d] = o[(size_t)i * Dp + d] * f;
		}
	}
}

int pk__attn_prefill(pk_ctx_t *ctx, const pk__attn_t *a)
{
	prefill_t p = { .ctx = ctx, .a = a };
	p.ops = ctx->isa == PK_ISA_AVX512 ? &ops_avx512 : &ops_avx2;
	p.nqb = (a->Tq + BQ - 1) / BQ;
	p.Dp = (int)round_up((size_t)a->D, (size_t)p.ops->nr);
	p.pack_v = a->kv->dtype == PK_BF16 || p.Dp != a->D;
	p.per_head = (size_t)BQ * a->D + (size_t)BQ * p.Dp + 3 * BQ;
	int rc = pk__scratch_reserve(ctx, scratch_floats(&p) * sizeof(float));
	if (rc != PK_OK)
		return rc;
	pk_parallel_for(ctx, a->Hkv * p.nqb, prefill_task, &p);
	return PK_OK;
}

#else

int pk__attn_prefill(pk_ctx_t *ctx, const pk__attn_t *a) { return PK_ENOTSUP; }

#endif
