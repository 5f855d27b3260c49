/* tests/kernels/test_dsparse.c: Double Sparsity (calibration, attention_ds
 * against pk_attention and a restricted exact reference, ties) and the
 * label cache kept in step with every KV edit, on every ISA this CPU runs. */
#include "tests/kernels/ktest.h"
#include "tests/kernels/kvtest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Double Sparsity ---------------------------------------------------- */
static void test_ds_calibrate(void **state)
{
	/* T = 2, 4 query heads over 2 KV heads, D = 4 */
	float q[2 * 4 * 4] = {
		/* t0: h0, h1 (kv 0), h2, h3 (kv 1) */
		1, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1,
		/* t1 */
		-1, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0,
	};
	float k[2 * 2 * 4] = {
		1, 5, 1, 0, 1, 1, 1, 1,
		2, 5, 1, 0, 1, 1, 1, -1,
	};
	/* kv 0: c0 = (|1*1| + |1*1| + |-1*2|)/2 = 2, c1 = 0, c2 = (2 + 1)/2 = 1.5, c3 = 0
	 * kv 1: c1 = 3/2, c3 = (1 + 1)/2 = 1, c0 = c2 = 0 (tie: 0 before 2) */
	int ch[2 * 4];
	assert_int_equal(pk_ds_calibrate(q, 16, k, 8, 2, 4, 2, 4, 4, ch), PK_OK);
	int want[8] = { 0, 2, 1, 3, 1, 3, 0, 2 };
	for (int i = 0; i < 8; i++)
		assert_int_equal(ch[i], want[i]);
	assert_int_equal(pk_ds_calibrate(q, 16, k, 8, 2, 4, 2, 4, 2, ch), PK_OK);
	assert_int_equal(ch[0], 0);
	assert_int_equal(ch[1], 2);
	assert_int_equal(ch[2], 1);
	assert_int_equal(ch[3], 3);
	assert_int_equal(pk_ds_calibrate(q, 16, k, 8, 2, 4, 3, 4, 2, ch), PK_EINVAL);
	assert_int_equal(pk_ds_calibrate(q, 16, k, 8, 2, 4, 2, 4, 5, ch), PK_EINVAL);
}

/* All channels and topk >= visible keys: exactly pk_attention. */
static void test_ds_exact(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 8);
	const int Hkv = 2, H = 6, D = 20, n = 45, Tq = 3;
	float slopes[6], t5[32 * 6];
	assert_int_equal(pk_alibi_slopes(slopes, H), PK_OK);
	kt_fill(&rng, t5, 32 * 6, -1, 1);
	float sinks[6] = { 0.5f, -1, 2, 0, 1, -3 };
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++)
		for (int variant = 0; variant < 6; variant++) {
			pk_ctx_t *ctx = kt_ctx(1 + variant % 2, isas[ii]);
			pk_kv_t kv;
			kt_fill_cache(&rng, ctx, &kv, Hkv, D, n, variant % 3 == 2 ? PK_BF16 : PK_F32);
			int ch[2 * 20];
			for (int h = 0; h < Hkv; h++)
				for (int c = 0; c < D; c++)
					ch[h * D + c] = (c * 7 + h) % D; /* a permutation */
			assert_int_equal(pk_kv_label_init(&kv, D, ch), PK_OK);
			pk_attn_cfg_t cfg = { .n_heads = H, .n_kv_heads = Hkv, .head_dim = D, .causal = 1 };
			if (variant == 1) {
				cfg.window = 7;
				cfg.n_sink_tokens = 2;
			} else if (variant == 2) {
				cfg.bias.kind = PK_BIAS_ALIBI;
				cfg.bias.alibi_slopes = slopes;
			} else if (variant == 3) {
				cfg.causal = 0;
				cfg.bias = (pk_bias_t){ .kind = PK_BIAS_T5, .t5_table = t5,
					.t5_num_buckets = 32, .t5_max_distance = 128, .t5_bidirectional = 1 };
			} else if (variant == 4) {
				cfg.sink_logits = sinks;
				cfg.scale = 0.3f;
			} else if (variant == 5) {
				cfg.causal = 0;
				cfg.window = 5;
			}
			float *q = kt_rand(&rng, (size_t)Tq * H * D, -1, 1);
			int32_t qpos[3] = { n - 1, 20, 3 };
			float got[3 * 6 * 20], ref[3 * 6 * 20], exact[3 * 6 * 20];
			assert_int_equal(pk_attention_ds(ctx, &cfg, q, Tq, (size_t)H * D, qpos, &kv, n,
				got, (size_t)H * D), PK_OK);
			kt_ref_attention(&cfg, q, Tq, qpos, &kv, NULL, ref);
			kt_assert_close("ds vs reference", ref, got, (size_t)Tq * H * D, 2e-6f, 2e-5f);
			assert_int_equal(pk_attention(ctx, &cfg, q, Tq, (size_t)H * D, qpos, &kv, exact,
				(size_t)H * D), PK_OK);
			kt_assert_close("ds vs pk_attention", exact, got, (size_t)Tq * H * D, 2e-6f, 2e-5f);
			/* decode alone (Tq = 1) takes pk_attention's split-KV path */
			assert_int_equal(pk_attention(ctx, &cfg, q, 1, (size_t)H * D, qpos, &kv, exact,
				(size_t)H * D), PK_OK);
			kt_assert_close("ds vs decode", exact, got, (size_t)H * D, 2e-6f, 2e-5f);
			pk_kv_free(&kv);
			pk_ctx_destroy(ctx);
			free(q);
		}
}

/* Small k with r = D: the approximation ranks keys exactly, so the output
 * is exact attention restricted to the true top-k keys. */
static void test_ds_topk(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 9);
	const int Hkv = 1, H = 2, D = 16, n = 200;
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++)
		for (int dt = 0; dt < 2; dt++)
			for (int ki = 0; ki < 3; ki++) {
				const int topk = (int[]){ 1, 9, 64 }[ki];
				pk_ctx_t *ctx = kt_ctx(2, isas[ii]);
				pk_kv_t kv;
				kt_fill_cache(&rng, ctx, &kv, Hkv, D, n, dt ? PK_BF16 : PK_F32);
				int ch[16];
				for (int c = 0; c < D; c++)
					ch[c] = D - 1 - c;
				assert_int_equal(pk_kv_label_init(&kv, D, ch), PK_OK);
				pk_attn_cfg_t cfg = { .n_heads = H, .n_kv_heads = Hkv, .head_dim = D, .causal = 1 };
				float *q = kt_rand(&rng, (size_t)H * D, -1, 1);
				int32_t qp = 150; /* keys 151.. are invisible */
				unsigned char *keep = calloc((size_t)H * n, 1);
				double *s = malloc(n * sizeof *s);
				int ok = 1;
				for (int h = 0; h < H; h++) {
					for (int j = 0; j < n; j++) {
						s[j] = -INFINITY;
						if (j > qp)
							continue;
						s[j] = 0;
						for (int d = 0; d < D; d++)
							s[j] += (double)q[h * D + d] * kt_kv_get(&kv, kv.k, 0, j, d);
					}
					/* pick the top k by selection in double */
					for (int c = 0; c < topk; c++) {
						int best = -1;
						for (int j = 0; j <= qp; j++)
							if (!keep[h * n + j] && (best < 0 || s[j] > s[best]))
								best = j;
						keep[h * n + best] = 1;
					}
					/* a near tie at the cut could go either way in float */
					double kth = INFINITY, next = -INFINITY;
					for (int j = 0; j <= qp; j++) {
						if (keep[h * n + j] && s[j] < kth)
							kth = s[j];
						if (!keep[h * n + j] && s[j] > next)
							next = s[j];
					}
					if (kth - next < 1e-4)
						ok = 0;
				}
				if (ok) {
					float got[2 * 16], ref[2 * 16];
					assert_int_equal(pk_attention_ds(ctx, &cfg, q, 1, (size_t)H * D, &qp, &kv,
						topk, got, (size_t)H * D), PK_OK);
					kt_ref_attention(&cfg, q, 1, &qp, &kv, keep, ref);
					kt_assert_close("ds top-k", ref, got, (size_t)H * D, 2e-6f, 2e-5f);
				}
				free(keep);
				free(s);
				free(q);
				pk_kv_free(&kv);
				pk_ctx_destroy(ctx);
			}
}

/* Equal approximate scores go to the lower index: keys equal on the label
 * channels and different elsewhere; topk 5 must attend over keys 0..4. */
static void test_ds_ties(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 10);
	const int D = 8, n = 30, topk = 5;
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++) {
		pk_ctx_t *ctx = kt_ctx(1, isas[ii]);
		pk_kv_t kv;
		kt_fill_cache(&rng, ctx, &kv, 1, D, n, PK_F32);
		float *k = kv.k;
		for (int j = 0; j < n; j++)
			k[j * D + 2] = k[j * D + 5] = 0.5f;
		int ch[2] = { 5, 2 };
		assert_int_equal(pk_kv_label_init(&kv, 2, ch), PK_OK);
		kt_check_labels(&kv);
		pk_attn_cfg_t cfg = { .n_heads = 1, .n_kv_heads = 1, .head_dim = D, .causal = 1 };
		float *q = kt_rand(&rng, D, -1, 1);
		int32_t qp = n;
		unsigned char keep[30] = { 1, 1, 1, 1, 1 };
		float got[8], ref[8];
		assert_int_equal(pk_attention_ds(ctx, &cfg, q, 1, D, &qp, &kv, topk, got, D), PK_OK);
		kt_ref_attention(&cfg, q, 1, &qp, &kv, keep, ref);
		kt_assert_close("ds ties", ref, got, D, 2e-6f, 2e-5f);
		/* no label cache: refused */
		assert_int_equal(pk_kv_label_init(&kv, 0, NULL), PK_OK);
		assert_int_equal(pk_attention_ds(ctx, &cfg, q, 1, D, &qp, &kv, topk, got, D), PK_EINVAL);
		/* a query that sees nothing gets zeros */
		assert_int_equal(pk_kv_label_init(&kv, 2, ch), PK_OK);
		qp = -1;
		assert_int_equal(pk_attention_ds(ctx, &cfg, q, 1, D, &qp, &kv, topk, got, D), PK_OK);
		for (int d = 0; d < D; d++)
			assert_true(got[d] == 0.0f);
		pk_kv_free(&kv);
		pk_ctx_destroy(ctx);
		free(q);
	}
}

/* Labels follow every edit: append, remove, rerotate, evict, re-init. */
static void test_label_consistency(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 11);
	const int H = 3, D = 12, n = 25;
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++)
		for (int dt = 0; dt < 2; dt++) {
			pk_ctx_t *ctx = kt_ctx(2, isas[ii]);
			pk_rope_cfg_t rc;
			pk_rope_cfg_default(&rc, D);
			pk_rope_t r;
			assert_int_equal(pk_rope_init(&r, &rc, 0), PK_OK);
			pk_kv_t kv;
			kt_fill_cache(&rng, ctx, &kv, H, D, 40, dt ? PK_BF16 : PK_F32);
			pk_kv_reset(&kv);
			float *k = kt_rand(&rng, (size_t)n * H * D, -1, 1);
			int32_t pos[25];
			for (int t = 0; t < n; t++)
				pos[t] = t;
			assert_int_equal(pk_kv_append(ctx, &kv, k, k, 10, (size_t)H * D, pos), PK_OK);
			int ch[9] = { 11, 0, 5, 1, 2, 3, 7, 7, 4 };
			assert_int_equal(pk_kv_label_init(&kv, 3, ch), PK_OK);
			kt_check_labels(&kv);
			assert_int_equal(pk_kv_append(ctx, &kv, k + 10 * H * D, k, 15, (size_t)H * D, pos + 10), PK_OK);
			kt_check_labels(&kv);
			assert_int_equal(pk_kv_rerotate(ctx, &kv, &r, 2, 20, 17), PK_OK);
			kt_check_labels(&kv);
			assert_int_equal(pk_kv_remove(&kv, 0, 4), PK_OK);
			kt_check_labels(&kv);
			kv.streaming[1] = 1;
			assert_int_equal(pk_kv_evict_streaming(ctx, &kv, 2, 6, &r), PK_OK);
			kt_check_labels(&kv);
			int ch2[3] = { 9, 10, 8 };
			assert_int_equal(pk_kv_label_init(&kv, 1, ch2), PK_OK);
			kt_check_labels(&kv);
			int bad[3] = { 0, 12, 1 };
			assert_int_equal(pk_kv_label_init(&kv, 1, bad), PK_EINVAL);
			assert_int_equal(kv.label_ch[1], 10); /* the old labels stay */
			pk_kv_free(&kv);
			pk_rope_free(&r);
			pk_ctx_destroy(ctx);
			free(k);
		}
}

int pk_test_ds(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ds_calibrate),
		cmocka_unit_test(test_ds_exact),
		cmocka_unit_test(test_ds_topk),
		cmocka_unit_test(test_ds_ties),
		cmocka_unit_test(test_label_consistency),
	};
	return cmocka_run_group_tests_name("kernels-ds", tests, NULL, NULL);
}
