/* tests/kernels/test_kv.c: the KV cache (append, capacity, bf16 storage,
 * re-rotation against RoPE at the new positions, PIE remove + re-rotate,
 * streaming eviction), on every ISA this CPU runs, 1 and 2 threads.
 * Double Sparsity and the label cache are in test_dsparse.c. */
#include "tests/kernels/ktest.h"
#include "tests/kernels/kvtest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float stored(pk_dtype_t dt, float x)
{
	return dt == PK_BF16 ? pk_bf16_to_f32(pk_f32_to_bf16(x)) : x;
}

/* ---- append, capacity, bf16 ------------------------------------------- */
static void test_append_capacity(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 1);
	pk_ctx_t *ctx = kt_ctx(1, PK_ISA_SCALAR);
	const int H = 3, D = 5, cap = 10;
	pk_kv_t kv;
	assert_int_equal(pk_kv_init(&kv, H, D, cap, PK_F32), PK_OK);
	float *k = kt_rand(&rng, (size_t)cap * H * D, -1, 1);
	float *v = kt_rand(&rng, (size_t)cap * H * D, -1, 1);
	int32_t pos[10];
	for (int i = 0; i < cap; i++)
		pos[i] = 100 + i;
	assert_int_equal(pk_kv_append(ctx, &kv, k, v, 0, (size_t)H * D, pos), PK_OK);
	assert_int_equal(pk_kv_append(ctx, &kv, k, v, 4, (size_t)H * D, pos), PK_OK);
	assert_int_equal(pk_kv_append(ctx, &kv, k + 4 * H * D, v + 4 * H * D, 6, (size_t)H * D, pos + 4), PK_OK);
	assert_int_equal(pk_kv_append(ctx, &kv, k, v, 1, (size_t)H * D, pos), PK_ENOSPC);
	for (int h = 0; h < H; h++) {
		assert_int_equal(kv.len[h], cap);
		for (int i = 0; i < cap; i++) {
			assert_int_equal(kv.pos[h * cap + i], 100 + i);
			for (int d = 0; d < D; d++) {
				assert_true(kt_kv_get(&kv, kv.k, h, i, d) == k[(i * H + h) * D + d]);
				assert_true(kt_kv_get(&kv, kv.v, h, i, d) == v[(i * H + h) * D + d]);
			}
		}
	}
	/* a head shortened by eviction does not let another overflow */
	kv.streaming[1] = 1;
	assert_int_equal(pk_kv_evict_streaming(ctx, &kv, 1, 2, NULL), PK_OK);
	assert_int_equal(kv.len[1], 3);
	assert_int_equal(pk_kv_append(ctx, &kv, k, v, 1, (size_t)H * D, pos), PK_ENOSPC);
	assert_int_equal(kv.len[1], 3);
	pk_kv_reset(&kv);
	for (int h = 0; h < H; h++)
		assert_int_equal(kv.len[h], 0);
	/* a wider row stride (k inside a fused qkv row) */
	assert_int_equal(pk_kv_append(ctx, &kv, k, v, 2, (size_t)H * D + 3, pos), PK_OK);
	assert_true(kt_kv_get(&kv, kv.k, 2, 1, 4) == k[(H * D + 3) + 2 * D + 4]);
	assert_int_equal(pk_kv_append(ctx, &kv, k, v, 1, (size_t)H * D - 1, pos), PK_EINVAL);
	assert_int_equal(pk_kv_remove(&kv, 1, 3), PK_ERANGE);
	assert_int_equal(pk_kv_init(&(pk_kv_t){0}, 0, D, cap, PK_F32), PK_EINVAL);
	pk_kv_free(&kv);
	free(k);
	free(v);
	pk_ctx_destroy(ctx);
}

static void test_bf16_roundtrip(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 2);
	const int H = 2, D = 37, n = 50;
	float *k = kt_rand(&rng, (size_t)n * H * D, -100, 100);
	float *v = kt_rand(&rng, (size_t)n * H * D, -1e-3f, 1e-3f);
	k[0] = 1.0f;         /* exact in bf16 */
	k[1] = 1.00390625f;  /* halfway 1 + 2^-8: ties to even -> 1.0 */
	k[2] = 1.01171875f;  /* halfway 1 + 3*2^-8: ties to even -> 1 + 2^-6 */
	int32_t pos[50];
	for (int i = 0; i < n; i++)
		pos[i] = i;
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++)
		for (int th = 1; th <= 2; th++) {
			pk_ctx_t *ctx = kt_ctx(th, isas[ii]);
			pk_kv_t kv;
			assert_int_equal(pk_kv_init(&kv, H, D, n, PK_BF16), PK_OK);
			assert_int_equal(pk_kv_append(ctx, &kv, k, v, n, (size_t)H * D, pos), PK_OK);
			for (int h = 0; h < H; h++)
				for (int i = 0; i < n; i++)
					for (int d = 0; d < D; d++) {
						float x = k[(i * H + h) * D + d], y = kt_kv_get(&kv, kv.k, h, i, d);
						assert_true(fabsf(y - x) <= fabsf(x) * (1.0f / 256));
						assert_true(y == stored(PK_BF16, x));
						float vx = v[(i * H + h) * D + d], vy = kt_kv_get(&kv, kv.v, h, i, d);
						assert_true(fabsf(vy - vx) <= fabsf(vx) * (1.0f / 256));
					}
			assert_true(kt_kv_get(&kv, kv.k, 0, 0, 0) == 1.0f);
			assert_true(kt_kv_get(&kv, kv.k, 0, 0, 1) == 1.0f);
			assert_true(kt_kv_get(&kv, kv.k, 0, 0, 2) == 1.015625f);
			pk_kv_free(&kv);
			pk_ctx_destroy(ctx);
		}
	free(k);
	free(v);
}

/* ---- re-rotation ---------------------------------------------------------- */
/* RoPE configurations the re-rotation must agree with. */
static void rope_cfgs(pk_rope_cfg_t *c, int which, int D)
{
	pk_rope_cfg_default(c, D);
	switch (which) {
	case 0: break; /* NEOX, all dims */
	case 1: c->layout = PK_ROPE_NORM; break;
	case 2: c->rot_dims = D / 2 - (D / 2) % 2; break;           /* partial NEOX */
	case 3: c->layout = PK_ROPE_NORM; c->rot_dims = D - 2; break;
	case 4: /* YaRN: mscale stays out of the shift */
		c->scaling = PK_ROPE_SCALE_YARN;
		c->factor = 4;
		c->orig_max_pos = 64;
		break;
	}
}

/* Encoding at p, cached, re-rotated by delta == encoding at p + delta. */
static void test_rerotate_property(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 3);
	const int H = 3, n = 23;
	const int dims[] = { 64, 40, 6 };
	const int32_t deltas[] = { 5, -7, 3000, -1 };
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int di = 0; di < 3; di++)
		for (int which = 0; which < 5; which++)
			for (int dt = 0; dt < 2; dt++)
				for (int ii = 0; ii < ni; ii++) {
					const int D = dims[di];
					pk_rope_cfg_t rc;
					rope_cfgs(&rc, which, D);
					pk_rope_t r;
					/* a short table: p + delta falls outside it */
					assert_int_equal(pk_rope_init(&r, &rc, 64), PK_OK);
					pk_ctx_t *ctx = kt_ctx(1 + (ii + di) % 2, isas[ii]);
					float *x = kt_rand(&rng, (size_t)n * H * D, -2, 2);
					float *v = kt_rand(&rng, (size_t)n * H * D, -2, 2);
					float *enc = malloc((size_t)n * H * D * sizeof *enc);
					float *want = malloc((size_t)n * H * D * sizeof *want);
					int32_t pos[23], pos2[23];
					int32_t delta = deltas[(which + di + dt) % 4];
					int from = 4, to = 19;
					for (int t = 0; t < n; t++) {
						pos[t] = 10 + 2 * t;
						pos2[t] = pos[t] + (t >= from && t < to ? delta : 0);
					}
					memcpy(enc, x, (size_t)n * H * D * sizeof *x);
					memcpy(want, x, (size_t)n * H * D * sizeof *x);
					pk_rope_apply(ctx, &r, enc, n, H, (size_t)H * D, pos);
					pk_rope_apply(ctx, &r, want, n, H, (size_t)H * D, pos2);
					pk_kv_t kv;
					assert_int_equal(pk_kv_init(&kv, H, D, n + 1, dt ? PK_BF16 : PK_F32), PK_OK);
					int ch[3 * 2] = { 0, D - 1, 1, 2, D - 1, 0 };
					assert_int_equal(pk_kv_label_init(&kv, 2, ch), PK_OK);
					assert_int_equal(pk_kv_append(ctx, &kv, enc, v, n, (size_t)H * D, pos), PK_OK);
					assert_int_equal(pk_kv_rerotate(ctx, &kv, &r, from, to, delta), PK_OK);
					float got[64], ref[64];
					/* bf16: stored once, rotated, re-rounded once */
					float tol = dt ? 2.5f / 128 : 2e-5f;
					for (int h = 0; h < H; h++)
						for (int t = 0; t < n; t++) {
							kt_kv_row(&kv, kv.k, h, t, got);
							for (int d = 0; d < D; d++)
								ref[d] = want[(t * H + h) * D + d];
							kt_assert_close("rerotated key", ref, got, (size_t)D, tol, tol);
							if (t < from || t >= to)
								for (int d = 0; d < D; d++)
									assert_true(got[d] == stored(kv.dtype, enc[(t * H + h) * D + d]));
							assert_int_equal(kv.pos[h * kv.cap + t], pos2[t]);
						}
					kt_check_labels(&kv);
					assert_int_equal(pk_kv_rerotate(ctx, &kv, &r, 3, n + 1, 1), PK_ERANGE);
					pk_kv_free(&kv);
					pk_rope_free(&r);
					pk_ctx_destroy(ctx);
					free(x);
					free(v);
					free(enc);
					free(want);
				}
}

/* The vector paths (and their bf16 rounding in register) against the
 * scalar reference on the same cache, many rows (threads split them). */
static void test_rerotate_isas(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 4);
	const int H = 2, n = 3000;
	const int dims[] = { 128, 42 };
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int di = 0; di < 2; di++)
		for (int which = 0; which < 4; which++)
			for (int dt = 0; dt < 2; dt++) {
				const int D = dims[di];
				pk_rope_cfg_t rc;
				rope_cfgs(&rc, which, D);
				pk_rope_t r;
				assert_int_equal(pk_rope_init(&r, &rc, 0), PK_OK);
				float *x = kt_rand(&rng, (size_t)n * H * D, -3, 3);
				int32_t *pos = malloc(n * sizeof *pos);
				for (int t = 0; t < n; t++)
					pos[t] = t;
				pk_kv_t ref;
				pk_ctx_t *c0 = kt_ctx(1, PK_ISA_SCALAR);
				assert_int_equal(pk_kv_init(&ref, H, D, n, dt ? PK_BF16 : PK_F32), PK_OK);
				assert_int_equal(pk_kv_append(c0, &ref, x, x, n, (size_t)H * D, pos), PK_OK);
				assert_int_equal(pk_kv_rerotate(c0, &ref, &r, 1, n - 1, 1234), PK_OK);
				for (int ii = 1; ii < ni; ii++)
					for (int th = 1; th <= 2; th++) {
						pk_ctx_t *ctx = kt_ctx(th, isas[ii]);
						pk_kv_t kv;
						assert_int_equal(pk_kv_init(&kv, H, D, n, dt ? PK_BF16 : PK_F32), PK_OK);
						assert_int_equal(pk_kv_append(ctx, &kv, x, x, n, (size_t)H * D, pos), PK_OK);
						assert_int_equal(pk_kv_rerotate(ctx, &kv, &r, 1, n - 1, 1234), PK_OK);
						float a[128], b[128];
						/* f32: fma vs mul/add; bf16: at most one ulp (2^-7 rel) apart */
						float tol = dt ? 1.0f / 128 : 1e-5f;
						for (int h = 0; h < H; h++)
							for (int t = 0; t < n; t++) {
								kt_kv_row(&ref, ref.k, h, t, a);
								kt_kv_row(&kv, kv.k, h, t, b);
								kt_assert_close(pk_isa_name(isas[ii]), a, b, (size_t)D, tol, tol);
							}
						pk_kv_free(&kv);
						pk_ctx_destroy(ctx);
					}
				pk_kv_free(&ref);
				pk_ctx_destroy(c0);
				pk_rope_free(&r);
				free(x);
				free(pos);
			}
}

/* A NaN key stays NaN through a bf16 re-rotation on every ISA (the vector
 * paths round without a NaN case; kv.c says why that is safe). */
static void test_rerotate_bf16_nan(void **state)
{
	enum { D = 64, n = 40 };
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	float x[n * D];
	int32_t pos[n];
	for (int i = 0; i < n * D; i++)
		x[i] = (float)(i % 7) - 3.0f;
	for (int t = 0; t < n; t++) {
		pos[t] = t;
		x[t * D + t % (D / 2)] = NAN;
	}
	for (int layout = 0; layout < 2; layout++)
		for (int ii = 0; ii < ni; ii++) {
			pk_rope_cfg_t rc;
			pk_rope_cfg_default(&rc, D);
			rc.layout = layout ? PK_ROPE_NEOX : PK_ROPE_NORM;
			pk_rope_t r;
			pk_kv_t kv;
			pk_ctx_t *ctx = kt_ctx(1, isas[ii]);
			assert_int_equal(pk_rope_init(&r, &rc, 0), PK_OK);
			assert_int_equal(pk_kv_init(&kv, 1, D, n, PK_BF16), PK_OK);
			assert_int_equal(pk_kv_append(ctx, &kv, x, x, n, D, pos), PK_OK);
			assert_int_equal(pk_kv_rerotate(ctx, &kv, &r, 0, n, 77), PK_OK);
			for (int t = 0; t < n; t++) {
				float row[D];
				kt_kv_row(&kv, kv.k, 0, t, row);
				int i = t % (D / 2), partner = layout ? i + D / 2 : (i ^ 1);
				if (!isnan(row[i]) || !isnan(row[partner]))
					fail_msg("%s layout %d row %d: %g %g, want NaN", pk_isa_name(isas[ii]),
						layout, t, (double)row[i], (double)row[partner]);
			}
			pk_kv_free(&kv);
			pk_rope_free(&r);
			pk_ctx_destroy(ctx);
		}
}

/* PIE edit: drop tokens [a, b), re-rotate the suffix by -(b - a): the cache
 * equals encoding the edited sequence directly. */
static void test_remove_rerotate_pie(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 5);
	const int H = 2, D = 24, n = 30, a = 7, b = 12, n2 = n - (b - a);
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++)
		for (int dt = 0; dt < 2; dt++) {
			pk_ctx_t *ctx = kt_ctx(2, isas[ii]);
			pk_rope_cfg_t rc;
			rope_cfgs(&rc, ii % 2, D);
			pk_rope_t r;
			assert_int_equal(pk_rope_init(&r, &rc, 128), PK_OK);
			float *x = kt_rand(&rng, (size_t)n * H * D, -1, 1);
			float *v = kt_rand(&rng, (size_t)n * H * D, -1, 1);
			float *enc = malloc((size_t)n * H * D * sizeof *enc);
			float *ed = malloc((size_t)n2 * H * D * sizeof *ed);
			float *edv = malloc((size_t)n2 * H * D * sizeof *edv);
			int32_t pos[30];
			for (int t = 0; t < n; t++)
				pos[t] = t;
			memcpy(enc, x, (size_t)n * H * D * sizeof *x);
			pk_rope_apply(ctx, &r, enc, n, H, (size_t)H * D, pos);
			/* the edited sequence, encoded at 0..n2-1 */
			for (int t = 0, u = 0; t < n; t++) {
				if (t >= a && t < b)
					continue;
				memcpy(ed + (size_t)u * H * D, x + (size_t)t * H * D, (size_t)H * D * sizeof *x);
				memcpy(edv + (size_t)u * H * D, v + (size_t)t * H * D, (size_t)H * D * sizeof *x);
				u++;
			}
			pk_rope_apply(ctx, &r, ed, n2, H, (size_t)H * D, pos);
			pk_kv_t kv;
			assert_int_equal(pk_kv_init(&kv, H, D, n, dt ? PK_BF16 : PK_F32), PK_OK);
			int ch[4] = { 3, 5, 23, 0 };
			assert_int_equal(pk_kv_label_init(&kv, 2, ch), PK_OK);
			assert_int_equal(pk_kv_append(ctx, &kv, enc, v, n, (size_t)H * D, pos), PK_OK);
			assert_int_equal(pk_kv_remove(&kv, a, b), PK_OK);
			kt_check_labels(&kv);
			assert_int_equal(pk_kv_rerotate(ctx, &kv, &r, a, n2, -(b - a)), PK_OK);
			float tol = dt ? 2.5f / 128 : 2e-5f;
			for (int h = 0; h < H; h++) {
				assert_int_equal(kv.len[h], n2);
				for (int t = 0; t < n2; t++) {
					float got[24], ref[24];
					kt_kv_row(&kv, kv.k, h, t, got);
					memcpy(ref, ed + ((size_t)t * H + h) * D, sizeof ref);
					kt_assert_close("PIE key", ref, got, D, tol, tol);
					kt_kv_row(&kv, kv.v, h, t, got);
					for (int d = 0; d < D; d++)
						assert_true(got[d] == stored(kv.dtype, edv[(t * H + h) * D + d]));
					assert_int_equal(kv.pos[h * kv.cap + t], t);
				}
			}
			kt_check_labels(&kv);
			pk_kv_free(&kv);
			pk_rope_free(&r);
			pk_ctx_destroy(ctx);
			free(x);
			free(v);
			free(enc);
			free(ed);
			free(edv);
		}
}

/* ---- streaming eviction ------------------------------------------------ */
static void test_evict_streaming(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 6);
	const int H = 4, D = 16, n = 20, S = 3, R = 5;
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++)
		for (int mode = 0; mode < 3; mode++) {
			/* mode 0: no reindex; 1: reindex; 2: reindex, no sinks */
			const int sink = mode == 2 ? 0 : S;
			pk_ctx_t *ctx = kt_ctx(1 + mode % 2, isas[ii]);
			pk_rope_cfg_t rc;
			pk_rope_cfg_default(&rc, D);
			pk_rope_t r;
			assert_int_equal(pk_rope_init(&r, &rc, 64), PK_OK);
			float *x = kt_rand(&rng, (size_t)n * H * D, -1, 1);
			float *v = kt_rand(&rng, (size_t)n * H * D, -1, 1);
			float *enc = malloc((size_t)n * H * D * sizeof *enc);
			int32_t pos[20];
			for (int t = 0; t < n; t++)
				pos[t] = 50 + t;
			memcpy(enc, x, (size_t)n * H * D * sizeof *x);
			pk_rope_apply(ctx, &r, enc, n, H, (size_t)H * D, pos);
			pk_kv_t kv;
			assert_int_equal(pk_kv_init(&kv, H, D, n, PK_F32), PK_OK);
			int ch[8] = { 0, 1, 2, 3, 4, 5, 15, 14 };
			assert_int_equal(pk_kv_label_init(&kv, 2, ch), PK_OK);
			kv.streaming[0] = kv.streaming[2] = 1;
			assert_int_equal(pk_kv_append(ctx, &kv, enc, v, n, (size_t)H * D, pos), PK_OK);
			/* a window covering everything changes nothing */
			assert_int_equal(pk_kv_evict_streaming(ctx, &kv, sink, n, mode ? &r : NULL), PK_OK);
			for (int h = 0; h < H; h++)
				assert_int_equal(kv.len[h], n);
			assert_int_equal(pk_kv_evict_streaming(ctx, &kv, sink, R, mode ? &r : NULL), PK_OK);
			for (int h = 0; h < H; h++) {
				int str = kv.streaming[h];
				assert_int_equal(kv.len[h], str ? sink + R : n);
				for (int i = 0; i < kv.len[h]; i++) {
					int t = !str || i < sink ? i : n - R + (i - sink);
					int32_t want_pos = pos[t];
					if (str && mode && i >= sink)
						want_pos = (sink ? pos[sink - 1] + 1 : pos[0]) + (i - sink);
					assert_int_equal(kv.pos[h * kv.cap + i], want_pos);
					float got[16], ref[16];
					memcpy(ref, x + ((size_t)t * H + h) * D, sizeof ref);
					pk_rope_apply(ctx, &r, ref, 1, 1, D, &want_pos);
					kt_kv_row(&kv, kv.k, h, i, got);
					kt_assert_close("kept key", ref, got, D, 2e-5f, 2e-5f);
					kt_kv_row(&kv, kv.v, h, i, got);
					for (int d = 0; d < D; d++)
						assert_true(got[d] == v[(t * H + h) * D + d]);
				}
			}
			kt_check_labels(&kv);
			pk_kv_free(&kv);
			pk_rope_free(&r);
			pk_ctx_destroy(ctx);
			free(x);
			free(v);
			free(enc);
		}
}

/* Evicting to sinks + a recent window equals attending over the full cache
 * with that window; a window covering everything equals full attention. */
static void test_evict_attention(void **state)
{
	kt_rng_t rng;
	kt_seed(&rng, 7);
	const int Hkv = 2, H = 4, D = 32, n = 40, S = 4, R = 9;
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++) {
		pk_ctx_t *ctx = kt_ctx(2, isas[ii]);
		pk_kv_t full, ev;
		kt_rng_t r2 = rng;
		kt_fill_cache(&rng, ctx, &full, Hkv, D, n, PK_F32);
		kt_fill_cache(&r2, ctx, &ev, Hkv, D, n, PK_F32);
		float *q = kt_rand(&rng, (size_t)H * D, -1, 1);
		int32_t qp = n - 1;
		pk_attn_cfg_t cfg = { .n_heads = H, .n_kv_heads = Hkv, .head_dim = D, .causal = 1,
			.window = R, .n_sink_tokens = S };
		float a[4 * 32], b[4 * 32], c[4 * 32];
		assert_int_equal(pk_attention(ctx, &cfg, q, 1, (size_t)H * D, &qp, &full, a, (size_t)H * D), PK_OK);
		ev.streaming[0] = ev.streaming[1] = 1;
		assert_int_equal(pk_kv_evict_streaming(ctx, &ev, S, R, NULL), PK_OK);
		pk_attn_cfg_t plain = cfg;
		plain.window = 0;
		assert_int_equal(pk_attention(ctx, &plain, q, 1, (size_t)H * D, &qp, &ev, b, (size_t)H * D), PK_OK);
		kt_assert_close("evicted vs windowed", a, b, (size_t)H * D, 1e-5f, 1e-4f);
		kt_ref_attention(&cfg, q, 1, &qp, &full, NULL, c);
		kt_assert_close("windowed vs reference", c, a, (size_t)H * D, 1e-5f, 1e-4f);
		/* window over everything: the same as no window at all */
		cfg.window = n;
		assert_int_equal(pk_attention(ctx, &cfg, q, 1, (size_t)H * D, &qp, &full, a, (size_t)H * D), PK_OK);
		assert_int_equal(pk_attention(ctx, &plain, q, 1, (size_t)H * D, &qp, &full, b, (size_t)H * D), PK_OK);
		kt_assert_close("covering window", b, a, (size_t)H * D, 1e-6f, 1e-5f);
		pk_kv_free(&full);
		pk_kv_free(&ev);
		pk_ctx_destroy(ctx);
		free(q);
	}
}

int pk_test_kv(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_capacity),
		cmocka_unit_test(test_bf16_roundtrip),
		cmocka_unit_test(test_rerotate_property),
		cmocka_unit_test(test_rerotate_isas),
		cmocka_unit_test(test_rerotate_bf16_nan),
		cmocka_unit_test(test_remove_rerotate_pie),
		cmocka_unit_test(test_evict_streaming),
		cmocka_unit_test(test_evict_attention),
	};
	return cmocka_run_group_tests_name("kernels-kv", tests, NULL, NULL);
}
