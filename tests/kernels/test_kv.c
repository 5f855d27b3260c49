/* tests/kernels/test_kv.c: the KV cache (append, capacity, bf16 storage,
 * re-rotation against RoPE at the new positions, PIE remove + re-rotate,
 * streaming eviction, the label cache) and Double Sparsity (calibration,
 * attention_ds against pk_attention and a restricted exact reference),
 * on every ISA this CPU runs, 1 and 2 threads. */
#include "tests/kernels/ktest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Element d of key/value row i of head h as f32. */
static float kv_get(const pk_kv_t *kv, const void *base, int h, int i, int d)
{
	size_t off = ((size_t)h * kv->cap + i) * kv->head_dim + d;
	return kv->dtype == PK_BF16 ? pk_bf16_to_f32(((const pk_bf16_t *)base)[off])
	                            : ((const float *)base)[off];
}

/* Row i of head h into out (D). */
static void kv_row(const pk_kv_t *kv, const void *base, int h, int i, float *out)
{
	for (int d = 0; d < kv->head_dim; d++)
		out[d] = kv_get(kv, base, h, i, d);
}

static float stored(pk_dtype_t dt, float x)
{
	return dt == PK_BF16 ? pk_bf16_to_f32(pk_f32_to_bf16(x)) : x;
}

/* Every label row equals the stored key's calibrated channels. */
static void check_labels(const pk_kv_t *kv)
{
	for (int h = 0; h < kv->n_kv_heads; h++)
		for (int i = 0; i < kv->len[h]; i++)
			for (int c = 0; c < kv->label_r; c++) {
				float want = kv_get(kv, kv->k, h, i, kv->label_ch[h * kv->label_r + c]);
				float got = kv->label[((size_t)h * kv->cap + i) * kv->label_r + c];
				if (got != want)
					fail_msg("label head %d row %d ch %d: %g, key has %g", h, i, c,
						(double)got, (double)want);
			}
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
				assert_true(kv_get(&kv, kv.k, h, i, d) == k[(i * H + h) * D + d]);
				assert_true(kv_get(&kv, kv.v, h, i, d) == v[(i * H + h) * D + d]);
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
	assert_true(kv_get(&kv, kv.k, 2, 1, 4) == k[(H * D + 3) + 2 * D + 4]);
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
						float x = k[(i * H + h) * D + d], y = kv_get(&kv, kv.k, h, i, d);
						assert_true(fabsf(y - x) <= fabsf(x) * (1.0f / 256));
						assert_true(y == stored(PK_BF16, x));
						float vx = v[(i * H + h) * D + d], vy = kv_get(&kv, kv.v, h, i, d);
						assert_true(fabsf(vy - vx) <= fabsf(vx) * (1.0f / 256));
					}
			assert_true(kv_get(&kv, kv.k, 0, 0, 0) == 1.0f);
			assert_true(kv_get(&kv, kv.k, 0, 0, 1) == 1.0f);
			assert_true(kv_get(&kv, kv.k, 0, 0, 2) == 1.015625f);
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
							kv_row(&kv, kv.k, h, t, got);
							for (int d = 0; d < D; d++)
								ref[d] = want[(t * H + h) * D + d];
							kt_assert_close("rerotated key", ref, got, (size_t)D, tol, tol);
							if (t < from || t >= to)
								for (int d = 0; d < D; d++)
									assert_true(got[d] == stored(kv.dtype, enc[(t * H + h) * D + d]));
							assert_int_equal(kv.pos[h * kv.cap + t], pos2[t]);
						}
					check_labels(&kv);
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
								kv_row(&ref, ref.k, h, t, a);
								kv_row(&kv, kv.k, h, t, b);
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
				kv_row(&kv, kv.k, 0, t, row);
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
			check_labels(&kv);
			assert_int_equal(pk_kv_rerotate(ctx, &kv, &r, a, n2, -(b - a)), PK_OK);
			float tol = dt ? 2.5f / 128 : 2e-5f;
			for (int h = 0; h < H; h++) {
				assert_int_equal(kv.len[h], n2);
				for (int t = 0; t < n2; t++) {
					float got[24], ref[24];
					kv_row(&kv, kv.k, h, t, got);
					memcpy(ref, ed + ((size_t)t * H + h) * D, sizeof ref);
					kt_assert_close("PIE key", ref, got, D, tol, tol);
					kv_row(&kv, kv.v, h, t, got);
					for (int d = 0; d < D; d++)
						assert_true(got[d] == stored(kv.dtype, edv[(t * H + h) * D + d]));
					assert_int_equal(kv.pos[h * kv.cap + t], t);
				}
			}
			check_labels(&kv);
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
					kv_row(&kv, kv.k, h, i, got);
					kt_assert_close("kept key", ref, got, D, 2e-5f, 2e-5f);
					kv_row(&kv, kv.v, h, i, got);
					for (int d = 0; d < D; d++)
						assert_true(got[d] == v[(t * H + h) * D + d]);
				}
			}
			check_labels(&kv);
			pk_kv_free(&kv);
			pk_rope_free(&r);
			pk_ctx_destroy(ctx);
			free(x);
			free(v);
			free(enc);
		}
}

/* ---- attention references ---------------------------------------------- */
/* The plain form, in double, over the keys keep[] marks (NULL: all
 * visible), with pk_attention's visibility and bias rules written out. */
static void ref_attention(const pk_attn_cfg_t *c, const float *q, int Tq,
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
					dot += (double)qr[d] * kv_get(kv, kv->k, kh, j, d);
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
					acc[d] += p * kv_get(kv, kv->v, kh, j, d);
			}
			for (int d = 0; d < D; d++)
				o[d] = any ? (float)(acc[d] / sum) : 0.0f;
		}
	free(s);
}

/* A filled cache for the attention tests: keys at positions 0..n-1. */
static void fill_cache(kt_rng_t *rng, pk_ctx_t *ctx, pk_kv_t *kv, int Hkv, int D, int n,
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
		fill_cache(&rng, ctx, &full, Hkv, D, n, PK_F32);
		fill_cache(&r2, ctx, &ev, Hkv, D, n, PK_F32);
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
		ref_attention(&cfg, q, 1, &qp, &full, NULL, c);
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
			fill_cache(&rng, ctx, &kv, Hkv, D, n, variant % 3 == 2 ? PK_BF16 : PK_F32);
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
			ref_attention(&cfg, q, Tq, qpos, &kv, NULL, ref);
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
				fill_cache(&rng, ctx, &kv, Hkv, D, n, dt ? PK_BF16 : PK_F32);
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
							s[j] += (double)q[h * D + d] * kv_get(&kv, kv.k, 0, j, d);
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
					ref_attention(&cfg, q, 1, &qp, &kv, keep, ref);
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
		fill_cache(&rng, ctx, &kv, 1, D, n, PK_F32);
		float *k = kv.k;
		for (int j = 0; j < n; j++)
			k[j * D + 2] = k[j * D + 5] = 0.5f;
		int ch[2] = { 5, 2 };
		assert_int_equal(pk_kv_label_init(&kv, 2, ch), PK_OK);
		check_labels(&kv);
		pk_attn_cfg_t cfg = { .n_heads = 1, .n_kv_heads = 1, .head_dim = D, .causal = 1 };
		float *q = kt_rand(&rng, D, -1, 1);
		int32_t qp = n;
		unsigned char keep[30] = { 1, 1, 1, 1, 1 };
		float got[8], ref[8];
		assert_int_equal(pk_attention_ds(ctx, &cfg, q, 1, D, &qp, &kv, topk, got, D), PK_OK);
		ref_attention(&cfg, q, 1, &qp, &kv, keep, ref);
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
			fill_cache(&rng, ctx, &kv, H, D, 40, dt ? PK_BF16 : PK_F32);
			pk_kv_reset(&kv);
			float *k = kt_rand(&rng, (size_t)n * H * D, -1, 1);
			int32_t pos[25];
			for (int t = 0; t < n; t++)
				pos[t] = t;
			assert_int_equal(pk_kv_append(ctx, &kv, k, k, 10, (size_t)H * D, pos), PK_OK);
			int ch[9] = { 11, 0, 5, 1, 2, 3, 7, 7, 4 };
			assert_int_equal(pk_kv_label_init(&kv, 3, ch), PK_OK);
			check_labels(&kv);
			assert_int_equal(pk_kv_append(ctx, &kv, k + 10 * H * D, k, 15, (size_t)H * D, pos + 10), PK_OK);
			check_labels(&kv);
			assert_int_equal(pk_kv_rerotate(ctx, &kv, &r, 2, 20, 17), PK_OK);
			check_labels(&kv);
			assert_int_equal(pk_kv_remove(&kv, 0, 4), PK_OK);
			check_labels(&kv);
			kv.streaming[1] = 1;
			assert_int_equal(pk_kv_evict_streaming(ctx, &kv, 2, 6, &r), PK_OK);
			check_labels(&kv);
			int ch2[3] = { 9, 10, 8 };
			assert_int_equal(pk_kv_label_init(&kv, 1, ch2), PK_OK);
			check_labels(&kv);
			int bad[3] = { 0, 12, 1 };
			assert_int_equal(pk_kv_label_init(&kv, 1, bad), PK_EINVAL);
			assert_int_equal(kv.label_ch[1], 10); /* the old labels stay */
			pk_kv_free(&kv);
			pk_rope_free(&r);
			pk_ctx_destroy(ctx);
			free(k);
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
		cmocka_unit_test(test_ds_calibrate),
		cmocka_unit_test(test_ds_exact),
		cmocka_unit_test(test_ds_topk),
		cmocka_unit_test(test_ds_ties),
		cmocka_unit_test(test_label_consistency),
	};
	return cmocka_run_group_tests_name("kernels-kv", tests, NULL, NULL);
}
