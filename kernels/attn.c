/* kernels/attn.c: pk_attention's front door: validation, the plain scalar
 * reference (per query row and head, two-pass softmax in double) that the
 * optimized paths are checked against, the T5 per-head bias table they use
 * and the dispatch (Tq == 1: split-KV decode, else tiled prefill). */
#include "config.h"

#include "kernels/attn_int.h"

#include <math.h>
#include <stdlib.h>

/* Largest T5 bias table (floats over all heads) built per call. */
#define T5_TABLE_MAX ((size_t)1 << 24)

static int validate(const pk_attn_cfg_t *c, const float *q, int Tq, size_t ldq,
	const int32_t *qpos, const pk_kv_t *kv, const float *out, size_t ldo)
{
	if (!c || !kv || Tq < 0 || (Tq > 0 && (!q || !qpos || !out)))
		return PK_EINVAL;
	if (c->n_heads <= 0 || c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads != 0)
		return PK_EINVAL;
	if (c->head_dim <= 0 || c->head_dim > PK_MAX_HEAD_DIM)
		return PK_EINVAL;
	size_t row = (size_t)c->n_heads * (size_t)c->head_dim;
	if (ldq < row || ldo < row)
		return PK_EINVAL;
	if (!isfinite(c->scale) || c->window < 0 || c->n_sink_tokens < 0)
		return PK_EINVAL;
	if (kv->n_kv_heads != c->n_kv_heads || kv->head_dim != c->head_dim ||
	    (kv->dtype != PK_F32 && kv->dtype != PK_BF16) || kv->cap < 0 || !kv->len)
		return PK_EINVAL;
	for (int h = 0; h < kv->n_kv_heads; h++)
		if (kv->len[h] < 0 || kv->len[h] > kv->cap)
			return PK_EINVAL;
	if (kv->cap > 0 && (!kv->k || !kv->v || !kv->pos))
		return PK_EINVAL;
	const pk_bias_t *b = &c->bias;
	switch (b->kind) {
	case PK_BIAS_NONE:
		break;
	case PK_BIAS_ALIBI:
		if (!b->alibi_slopes)
			return PK_EINVAL;
		break;
	case PK_BIAS_T5:
		/* pk_t5_bucket says whether the bucketing is well formed */
		if (!b->t5_table || b->t5_num_buckets <= 0 ||
		    pk_t5_bucket(0, b->t5_bidirectional, b->t5_num_buckets,
			    b->t5_max_distance) < 0)
			return PK_EINVAL;
		break;
	default:
		return PK_EINVAL;
	}
	return PK_OK;
}

/* ---- the scalar reference ---------------------------------------------- */
static double kv_elem(const pk_kv_t *kv, const void *base, int hk, int i, int d)
{
	const void *row = pk__kv_row(kv, base, hk, i);
	if (kv->dtype == PK_BF16)
		return pk_bf16_to_f32(((const pk_bf16_t *)row)[d]);
	return ((const float *)row)[d];
}

/* q: (Tq, H, D); out: (Tq, H, D). For each row and head: scores of the
 * visible keys, max (with the sink logit), exp, sum, weighted V. */
static int attention_ref(const pk__attn_t *a)
{
	const pk_attn_cfg_t *c = a->cfg;
	const pk_kv_t *kv = a->kv;
	int D = a->D, cap = kv->cap > 0 ? kv->cap : 1;
	double *s = malloc((size_t)cap * sizeof *s);
	double *acc = malloc((size_t)D * sizeof *acc);
	if (!s || !acc) {
		free(s);
		free(acc);
		return PK_ENOMEM;
	}
	for (int t = 0; t < a->Tq; t++) {
		int32_t qp = a->qpos[t];
		for (int h = 0; h < a->H; h++) {
			int hk = h / a->G;
			int n = kv->len[hk];
			const int32_t *kpos = kv->pos + (size_t)hk * (size_t)kv->cap;
			const float *qr = a->q + (size_t)t * a->ldq + (size_t)h * D;
			float *o = a->out + (size_t)t * a->ldo + (size_t)h * D;
			double m = -INFINITY;
			int any = 0;
			for (int i = 0; i < n; i++) {
				if (!pk__attn_visible(c, qp, kpos[i], i)) {
					s[i] = -INFINITY;
					continue;
				}
				double dot = 0;
				for (int d = 0; d < D; d++)
					dot += (double)qr[d] * kv_elem(kv, kv->k, hk, i, d);
				s[i] = a->scale * dot + pk__attn_bias_ref(c, h, qp, kpos[i]);
				m = s[i] > m ? s[i] : m;
				any = 1;
			}
			if (!any) {
				for (int d = 0; d < D; d++)
					o[d] = 0.0f;
				continue;
			}
			if (c->sink_logits && c->sink_logits[h] > m)
				m = c->sink_logits[h];
			double sum = c->sink_logits ? exp(c->sink_logits[h] - m) : 0.0;
			for (int d = 0; d < D; d++)
				acc[d] = 0;
			for (int i = 0; i < n; i++) {
				if (s[i] == -INFINITY)
					continue;
				double p = exp(s[i] - m);
				sum += p;
				for (int d = 0; d < D; d++)
					acc[d] += p * kv_elem(kv, kv->v, hk, i, d);
			}
			for (int d = 0; d < D; d++)
				o[d] = (float)(acc[d] / sum);
		}
	}
	free(s);
	free(acc);
	return PK_OK;
}

/* ---- T5 table for the optimized paths ---------------------------------- */
/* The bucket is nondecreasing in |rel| and saturates (nb-1) well before
 * 2 * max_distance, so rel can be clamped to +-2*max_distance; within that,
 * only the rel range this call can meet is tabulated. */
static int t5_table(pk__attn_t *a)
{
	const pk_bias_t *b = &a->cfg->bias;
	const pk_kv_t *kv = a->kv;
	int64_t qlo = INT32_MAX, qhi = INT32_MIN, klo = INT32_MAX, khi = INT32_MIN;
	for (int t = 0; t < a->Tq; t++) {
		qlo = a->qpos[t] < qlo ? a->qpos[t] : qlo;
		qhi = a->qpos[t] > qhi ? a->qpos[t] : qhi;
	}
	for (int hk = 0; hk < kv->n_kv_heads; hk++)
		for (int i = 0; i < kv->len[hk]; i++) {
			int32_t p = kv->pos[(size_t)hk * (size_t)kv->cap + (size_t)i];
			klo = p < klo ? p : klo;
			khi = p > khi ? p : khi;
		}
	if (klo > khi)
		klo = khi = 0; /* empty cache: nothing is looked up */
	int64_t L = 2 * (int64_t)b->t5_max_distance + b->t5_num_buckets;
	int64_t lo = klo - qhi, hi = khi - qlo;
	lo = lo < -L ? -L : (lo > L ? L : lo);
	hi = hi > L ? L : (hi < -L ? -L : hi);
	size_t w = (size_t)(hi - lo + 1);
	if (w * (size_t)a->H > T5_TABLE_MAX)
		return PK_EINVAL;
	a->t5 = pk__alloc(w * (size_t)a->H, sizeof(float));
	if (!a->t5)
		return PK_ENOMEM;
	a->t5_lo = (int32_t)lo;
	a->t5_hi = (int32_t)hi;
	for (int64_t r = lo; r <= hi; r++) {
		int bk = pk_t5_bucket((int32_t)r, b->t5_bidirectional, b->t5_num_buckets,
			b->t5_max_distance);
		for (int h = 0; h < a->H; h++)
			a->t5[(size_t)h * w + (size_t)(r - lo)] =
				b->t5_table[(size_t)bk * (size_t)a->H + (size_t)h];
	}
	return PK_OK;
}

int pk_attention(pk_ctx_t *ctx, const pk_attn_cfg_t *cfg, const float *q,
	int Tq, size_t ldq, const int32_t *qpos, const pk_kv_t *kv, float *out,
	size_t ldo)
{
	int rc = validate(cfg, q, Tq, ldq, qpos, kv, out, ldo);
	if (rc != PK_OK || Tq == 0)
		return rc;
	pk__attn_t a = {
		.cfg = cfg, .H = cfg->n_heads, .Hkv = cfg->n_kv_heads,
		.G = cfg->n_heads / cfg->n_kv_heads, .D = cfg->head_dim,
		.scale = cfg->scale != 0.0f ? cfg->scale : 1.0f / sqrtf((float)cfg->head_dim),
		.q = q, .ldq = ldq, .qpos = qpos, .Tq = Tq, .kv = kv, .out = out, .ldo = ldo,
	};
	if (ctx->isa == PK_ISA_SCALAR || !PK_X86)
		return attention_ref(&a);
	if (cfg->bias.kind == PK_BIAS_T5) {
		rc = t5_table(&a);
		if (rc != PK_OK)
			return rc;
	}
	rc = Tq == 1 ? pk__attn_decode(ctx, &a) : pk__attn_prefill(ctx, &a);
	pk__free(a.t5);
	return rc;
}
