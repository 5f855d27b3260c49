/* kernels/attn_int.h: what attn.c (validation, scalar reference, dispatch),
 * attn_prefill.c (tiled flash prefill) and attn_decode.c (split-KV decode)
 * share: the resolved call, the one visibility rule, the bias formulas and
 * a block classifier derived from the rule for skipping whole tiles. */
#ifndef PK_ATTN_INT_H
#define PK_ATTN_INT_H

#include "kernels/kernels_int.h"

/* One pk_attention call after validation. */
typedef struct {
	const pk_attn_cfg_t *cfg;
	int H, Hkv, G, D;     /* G = H / Hkv query heads per KV head */
	float scale;          /* resolved (never 0) */
	const float *q;       /* (Tq, H, D), row stride ldq */
	size_t ldq;
	const int32_t *qpos;  /* (Tq) */
	int Tq;
	const pk_kv_t *kv;
	float *out;           /* (Tq, H, D), row stride ldo */
	size_t ldo;
	/* T5 only (optimized paths): per head the bias for rel = kpos - qpos
	 * clamped to [t5_lo, t5_hi]; the bucket is constant outside, so the
	 * clamp is exact. t5: (H, t5_hi - t5_lo + 1). */
	float *t5;
	int32_t t5_lo, t5_hi;
} pk__attn_t;

/* THE visibility rule; every path uses it or pk__attn_block below.
 * kidx is the key's index in its head's cache (sinks are indices
 * < n_sink_tokens). Causal: kpos <= qpos. Window w > 0: causal
 * qpos - kpos < w, bidirectional |qpos - kpos| < w; sinks skip the window
 * but not the causal check. */
static inline int pk__attn_visible(const pk_attn_cfg_t *c, int32_t qp, int32_t kp, int kidx)
{
	if (c->causal && kp > qp)
		return 0;
	if (c->window > 0 && kidx >= c->n_sink_tokens) {
		int64_t d = (int64_t)qp - kp;
		if (d < 0)
			d = -d; /* only reached with causal == 0 */
		if (d >= c->window)
			return 0;
	}
	return 1;
}

enum { PK__BLK_NONE = 0, PK__BLK_PART = 1, PK__BLK_ALL = 2 };

/* A block of pairs: queries with positions in [qlo, qhi], keys at indices
 * [k0, k1) with positions in [klo, khi]. PK__BLK_NONE: no pair visible;
 * PK__BLK_ALL: every pair visible; PK__BLK_PART: check pairs one by one.
 * Conservative: it only answers NONE / ALL when pk__attn_visible would
 * for every pair (the extremes of each interval bound the distances). */
static inline int pk__attn_block(const pk_attn_cfg_t *c, int32_t qlo, int32_t qhi,
	int32_t klo, int32_t khi, int k0, int k1)
{
	int64_t dmin = (int64_t)qlo - khi, dmax = (int64_t)qhi - klo; /* qpos - kpos */
	if (c->causal && dmax < 0)
		return PK__BLK_NONE;
	int windowed = c->window > 0 && k1 > c->n_sink_tokens;
	int all_windowed = c->window > 0 && k0 >= c->n_sink_tokens;
	if (all_windowed) {
		/* smallest |qpos - kpos| over the block (causal: smallest >= 0) */
		int64_t near = dmin > 0 ? dmin : (dmax < 0 ? -dmax : 0);
		if (near >= c->window)
			return PK__BLK_NONE;
	}
	if (c->causal && dmin < 0)
		return PK__BLK_PART;
	if (windowed) {
		int64_t far = dmax > -dmin ? dmax : -dmin;
		if (far >= c->window)
			return PK__BLK_PART;
	}
	return PK__BLK_ALL;
}

/* pk__attn_block for keys [k0, k0 + nk) of one head, whose positions are
 * kpos[k0 ..] (any order: the range is scanned). */
static inline int pk__attn_block_keys(const pk_attn_cfg_t *c, int32_t qlo, int32_t qhi,
	const int32_t *kpos, int k0, int nk)
{
	int32_t klo = kpos[k0], khi = kpos[k0];
	for (int j = 1; j < nk; j++) {
		klo = kpos[k0 + j] < klo ? kpos[k0 + j] : klo;
		khi = kpos[k0 + j] > khi ? kpos[k0 + j] : khi;
	}
	return pk__attn_block(c, qlo, qhi, klo, khi, k0, k0 + nk);
}

/* Additive bias of pair (h, qpos, kpos), the reference form (T5 through
 * pk_t5_bucket directly). ALiBi: -slope * (qpos - kpos), and
 * -slope * |qpos - kpos| when bidirectional. */
static inline double pk__attn_bias_ref(const pk_attn_cfg_t *c, int h, int32_t qp, int32_t kp)
{
	const pk_bias_t *b = &c->bias;
	if (b->kind == PK_BIAS_ALIBI) {
		double d = (double)qp - (double)kp;
		if (!c->causal && d < 0)
			d = -d;
		return -(double)b->alibi_slopes[h] * d;
	}
	if (b->kind == PK_BIAS_T5) {
		int bk = pk_t5_bucket(kp - qp, b->t5_bidirectional, b->t5_num_buckets,
			b->t5_max_distance);
		return b->t5_table[(size_t)bk * (size_t)c->n_heads + (size_t)h];
	}
	return 0.0;
}

/* The same bias in the optimized paths' float form (T5 from the table). */
static inline float pk__attn_bias(const pk__attn_t *a, int h, int32_t qp, int32_t kp)
{
	const pk_bias_t *b = &a->cfg->bias;
	if (b->kind == PK_BIAS_ALIBI) {
		int32_t d = qp - kp;
		if (!a->cfg->causal && d < 0)
			d = -d;
		return -b->alibi_slopes[h] * (float)d;
	}
	if (b->kind == PK_BIAS_T5) {
		int32_t rel = kp - qp;
		rel = rel < a->t5_lo ? a->t5_lo : (rel > a->t5_hi ? a->t5_hi : rel);
		return a->t5[(size_t)h * (size_t)(a->t5_hi - a->t5_lo + 1) + (size_t)(rel - a->t5_lo)];
	}
	return 0.0f;
}

/* Key i of KV head hk as a pointer to its first element (f32 or bf16). */
static inline const void *pk__kv_row(const pk_kv_t *kv, const void *base, int hk, int i)
{
	size_t off = ((size_t)hk * (size_t)kv->cap + (size_t)i) * (size_t)kv->head_dim;
	return (const char *)base + off * (kv->dtype == PK_BF16 ? 2 : 4);
}

/* The optimized paths (AVX2 / AVX-512 chosen inside from ctx->isa).
 * Return PK_OK or PK_ENOMEM; out is fully written on success. */
int pk__attn_prefill(pk_ctx_t *ctx, const pk__attn_t *a);
int pk__attn_decode(pk_ctx_t *ctx, const pk__attn_t *a);

#endif
