/* tests/kernels/kvtest.c: helpers the KV-cache and Double Sparsity tests
 * share: reading cache rows back as f32, checking the label cache, a plain
 * double-precision attention reference and a filled cache. */
#include "tests/kernels/ktest.h"
#include "tests/kernels/kvtest.h"

#include <math.h>
#include <stdlib.h>

/* Element d of key/value row i of head h as f32. */
float kt_kv_get(const pk_kv_t *kv, const void *base, int h, int i, int d)
{
	size_t off = ((size_t)h * kv->cap + i) * kv->head_dim + d;
	return kv->dtype == PK_BF16 ? pk_bf16_to_f32(((const pk_bf16_t *)base)[off])
	                            : ((const float *)base)[off];
}

/* Row i of head h into out (D). */
void kt_kv_row(const pk_kv_t *kv, const void *base, int h, int i, float *out)
{
	for (int d = 0; d < kv->head_dim; d++)
		out[d] = kt_kv_get(kv, base, h, i, d);
}

/* Every label row equals the stored key's calibrated channels. */
void kt_check_labels(const pk_kv_t *kv)
{
	for (int h = 0; h < kv->n_kv_heads; h++)
		for (int i = 0; i < kv->len[h]; i++)
			for (int c = 0; c < kv->label_r; c++) {
				float want = kt_kv_get(kv, kv->k, h, i, kv->label_ch[h * kv->label_r + c]);
				float got = kv->label[((size_t)h * kv->cap + i) * kv->label_r + c];
				if (got != want)
					fail_msg("label head %d row %d ch %d: %g, key has %g", h, i, c,
						(double)got, (double)want);
			}
}

/* ---- attention references ---------------------------------------------- */
/* The plain form, in double, over the keys keep[] marks (NULL: all
 * visible), with pk_attention's visibility and bias rules written out. */
void kt_ref_attention(const pk_attn_cfg_t *c, const float *q, int Tq,
	const int32_t *qpos, const pk_kv_t *kv, const unsigned char *keep, float *out)
{
	const int H = c->n_heads, D = c->head_dim, G = H / c->n_kv_heads;
	const double scale = c->scale != 0 ? c->scale : 1.0 / sqrt(D);
	double *s = malloc((size_t)kv->cap * sizeof *s);
	for (int t = 0; t < Tq; t++)
		for (int h = 0; h < H; h++) {
			const int kh = h / G, len = kv->len[kh];
			const float *qr = q + ((size_t)t * H + h) * D;
			const int32_t qp = qpos[t];
			double m = c->sink_logits ? c->sink_logits[h] : -INFINITY;
			int any = 0;
			for (int j = 0; j < len; j++) {
				int32_t kp = kv->pos[kh * kv->cap + j];
				int64_t dist = (int64_t)qp - kp;
				int vis = !(c->causal && kp > qp) &&
					!(c->window > 0 && j >= c->n_sink_tokens &&
					  (c->causal ? dist : llabs(dist)) >= c->window);
				if (keep && !keep[(size_t)(t * H + h) * kv->cap + j])
					vis = 0;
				if (!vis) {
					s[j] = NAN;
					continue;
				}
				double dot = 0;
				for (int d = 0; d < D; d++)
					dot += (double)qr[d] * kt_kv_get(kv, kv->k, kh, j, d);
				double bias = 0;
				if (c->bias.kind == PK_BIAS_ALIBI)
					bias = -(double)c->bias.alibi_slopes[h] *
						(double)(c->causal ? dist : llabs(dist));
				else if (c->bias.kind == PK_BIAS_T5)
					bias = c->bias.t5_table[pk_t5_bucket(kp - qp, c->bias.t5_bidirectional,
						c->bias.t5_num_buckets, c->bias.t5_max_distance) * H + h];
				s[j] = scale * dot + bias;
				if (s[j] > m)
					m = s[j];
				any = 1;
			}
			float *o = out + ((size_t)t * H + h) * D;
			double sum = c->sink_logits ? exp(c->sink_logits[h] - m) : 0, acc[64] = { 0 };
			for (int j = 0; j < len && any; j++) {
				if (isnan(s[j]))
					continue;
				double p = exp(s[j] - m);
				sum += p;
				for (int d = 0; d < D; d++)
					acc[d] += p * kt_kv_get(kv, kv->v, kh, j, d);
			}
			for (int d = 0; d < D; d++)
				o[d] = any ? (float)(acc[d] / sum) : 0.0f;
		}
	free(s);
}

/* A filled cache for the attention tests: keys at positions 0..n-1. */
void kt_fill_cache(kt_rng_t *rng, pk_ctx_t *ctx, pk_kv_t *kv, int Hkv, int D, int n,
	pk_dtype_t dt)
{
	assert_int_equal(pk_kv_init(kv, Hkv, D, n, dt), PK_OK);
	float *k = kt_rand(rng, (size_t)n * Hkv * D, -1, 1);
	float *v = kt_rand(rng, (size_t)n * Hkv * D, -1, 1);
	int32_t *pos = malloc((size_t)n * sizeof *pos);
	for (int t = 0; t < n; t++)
		pos[t] = t;
	assert_int_equal(pk_kv_append(ctx, kv, k, v, n, (size_t)Hkv * D, pos), PK_OK);
	free(k);
	free(v);
	free(pos);
}
