/* tests/kernels/test_pe.c: group "pe": RoPE (every scaling, both layouts,
 * partial rotary), sinusoidal/learned APE, ALiBi slopes and T5 buckets.
 * Published vectors from reference/kernels.md, RoPE's algebraic properties
 * (relative position, factor 1 = plain, shift = re-encode) and every ISA
 * against the scalar reference on odd shapes with 1 and 2 threads. */
#include "tests/kernels/ktest.h"

#include "kernels/kernels_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const pk_rope_layout_t layouts[] = { PK_ROPE_NORM, PK_ROPE_NEOX };

static pk_rope_cfg_t cfg_of(int D, int rot, pk_rope_layout_t layout,
	pk_rope_scaling_t sc, double factor)
{
	pk_rope_cfg_t c;
	pk_rope_cfg_default(&c, D);
	c.rot_dims = rot;
	c.layout = layout;
	c.scaling = sc;
	c.factor = factor;
	c.orig_max_pos = 4096;
	c.seq_len = sc == PK_ROPE_SCALE_DYNAMIC_NTK ? 12000 : 0;
	c.truncate = sc == PK_ROPE_SCALE_TRUNCATE ? 4096 : 0;
	return c;
}

static void init_ok(pk_rope_t *r, const pk_rope_cfg_t *c, int cache_len)
{
	int rc = pk_rope_init(r, c, cache_len);
	if (rc != PK_OK)
		fail_msg("pk_rope_init: %s", pk_strerror(rc));
}

/* One head vector x: (D) rotated to pos. */
static void rope_one(pk_ctx_t *ctx, const pk_rope_t *r, float *x, int32_t pos)
{
	pk_rope_apply(ctx, r, x, 1, 1, (size_t)r->head_dim, &pos);
}

static double dot(const float *a, const float *b, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/* ---- published vectors ------------------------------------------------ */

static void test_ntk_bases(void **state)
{
	static const double s[] = { 2, 4, 8 };
	static const long want[] = { 20221, 40890, 82685 };
	for (int k = 0; k < 3; k++) {
		pk_rope_cfg_t c = cfg_of(128, 0, PK_ROPE_NEOX, PK_ROPE_SCALE_NTK, s[k]);
		pk_rope_t r;
		init_ok(&r, &c, 0);
		/* theta_1 = base'^(-2/D) */
		double base = pow(r.theta[1], -64.0);
		assert_int_equal(lround(base), want[k]);
		assert_true(fabs(r.theta[0] - 1.0) < 1e-15);
		assert_true(r.mscale == 1.0f);
		pk_rope_free(&r);
	}
}

/* The ramp's ends are visible in theta: pairs <= low keep theta
 * (extrapolation), pairs >= high get theta/s, strictly between in between. */
static void yarn_corr(int L, int *low, int *high)
{
	pk_rope_cfg_t c = cfg_of(128, 0, PK_ROPE_NEOX, PK_ROPE_SCALE_YARN, 16);
	c.orig_max_pos = L;
	pk_rope_t r;
	init_ok(&r, &c, 0);
	*low = -1;
	*high = -1;
	for (int i = 0; i < 64; i++) {
		double ex = pow(10000.0, -2.0 * i / 128), in = ex / 16;
		if (fabs(r.theta[i] - ex) <= 1e-12 * ex)
			*low = i;
		else if (fabs(r.theta[i] - in) <= 1e-12 * in) {
			if (*high < 0)
				*high = i;
		} else {
			assert_true(r.theta[i] < ex && r.theta[i] > in);
			assert_true(*high < 0); /* no blend after the ramp's end */
		}
	}
	pk_rope_free(&r);
}

static void test_yarn_vectors(void **state)
{
	int lo, hi;
	yarn_corr(4096, &lo, &hi);
	assert_int_equal(lo, 20);
	assert_int_equal(hi, 46);
	yarn_corr(2048, &lo, &hi);
	assert_int_equal(lo, 16);
	assert_int_equal(hi, 41);
	static const double s[] = { 2, 4, 8, 16 }, m[] = { 1.0693, 1.1386, 1.2079, 1.2773 };
	for (int k = 0; k < 4; k++) {
		pk_rope_cfg_t c = cfg_of(128, 0, PK_ROPE_NORM, PK_ROPE_SCALE_YARN, s[k]);
		pk_rope_t r;
		init_ok(&r, &c, 0);
		assert_true(fabs(r.mscale - m[k]) < 6e-5);
		c.attn_factor = 0.5;
		pk_rope_free(&r);
		init_ok(&r, &c, 0);
		assert_true(fabs(r.mscale - 0.5 * m[k]) < 6e-5);
		pk_rope_free(&r);
	}
}

static void test_alibi(void **state)
{
	float sl[64];
	assert_int_equal(pk_alibi_slopes(sl, 8), PK_OK);
	for (int k = 0; k < 8; k++)
		assert_true(sl[k] == ldexpf(1.0f, -(k + 1)));
	static const float n12[] = { 0.5f, 0.25f, 0.125f, 0.0625f, 0.03125f, 0.015625f,
		0.0078125f, 0.00390625f, 0.707107f, 0.353553f, 0.176777f, 0.0883883f };
	assert_int_equal(pk_alibi_slopes(sl, 12), PK_OK);
	kt_assert_close("alibi n=12", n12, sl, 12, 0, 2e-6f);
	/* every head count against ggml's m0/m1 form (max_bias 8) */
	for (int n = 1; n <= 64; n++) {
		float ref[64];
		int nl2 = 1 << (int)floor(log2(n));
		double m0 = pow(2.0, -8.0 / nl2), m1 = pow(2.0, -4.0 / nl2);
		for (int h = 0; h < n; h++)
			ref[h] = (float)(h < nl2 ? pow(m0, h + 1) : pow(m1, 2 * (h - nl2) + 1));
		assert_int_equal(pk_alibi_slopes(sl, n), PK_OK);
		kt_assert_close("alibi vs ggml", ref, sl, (size_t)n, 0, 1e-6f);
	}
	assert_int_equal(pk_alibi_slopes(sl, 0), PK_EINVAL);
	assert_int_equal(pk_alibi_slopes(NULL, 4), PK_EINVAL);
}

static void test_t5_buckets(void **state)
{
	static const int32_t brel[] = { -200, -64, -16, -8, -1, 0, 1, 8, 16, 64, 127, 128, 1000 };
	static const int bwant[] = { 15, 14, 10, 8, 1, 0, 17, 24, 26, 30, 31, 31, 31 };
	for (size_t i = 0; i < sizeof brel / sizeof brel[0]; i++)
		if (pk_t5_bucket(brel[i], 1, 32, 128) != bwant[i])
			fail_msg("bidirectional rel %d: got %d, want %d", brel[i],
				pk_t5_bucket(brel[i], 1, 32, 128), bwant[i]);
	static const int32_t crel[] = { -200, -64, -16, -8, -7, -1 };
	static const int cwant[] = { 31, 26, 16, 8, 7, 1 };
	for (size_t i = 0; i < sizeof crel / sizeof crel[0]; i++)
		if (pk_t5_bucket(crel[i], 0, 32, 128) != cwant[i])
			fail_msg("causal rel %d: got %d, want %d", crel[i],
				pk_t5_bucket(crel[i], 0, 32, 128), cwant[i]);
	for (int32_t rel = 0; rel < 300; rel += 7)
		assert_int_equal(pk_t5_bucket(rel, 0, 32, 128), 0);
	/* monotone in |rel| and within range, extremes included */
	int prev = 0;
	for (int32_t n = 0; n < 5000; n++) {
		int b = pk_t5_bucket(-n, 0, 32, 128);
		assert_true(b >= prev && b <= 31);
		prev = b;
	}
	assert_int_equal(pk_t5_bucket(INT32_MIN, 1, 32, 128), 15);
	assert_int_equal(pk_t5_bucket(INT32_MAX, 1, 32, 128), 31);
	assert_int_equal(pk_t5_bucket(5, 1, 2, 128), PK_EINVAL);  /* max_exact 0 */
	assert_int_equal(pk_t5_bucket(5, 0, 32, 16), PK_EINVAL);  /* max_distance <= max_exact */
}

/* ---- RoPE properties -------------------------------------------------- */

/* Every scaling, each with a factor that changes something. */
static pk_rope_cfg_t scaled_cfg(int k, int D, int rot, pk_rope_layout_t lay)
{
	static const struct { pk_rope_scaling_t sc; double f; } t[] = {
		{ PK_ROPE_SCALE_NONE, 1 }, { PK_ROPE_SCALE_LINEAR, 4 },
		{ PK_ROPE_SCALE_NTK, 4 }, { PK_ROPE_SCALE_DYNAMIC_NTK, 4 },
		{ PK_ROPE_SCALE_YARN, 8 }, { PK_ROPE_SCALE_YARN, 3 },
		{ PK_ROPE_SCALE_TRUNCATE, 4 }, { PK_ROPE_SCALE_TRUNCATE, 1 },
	};
	pk_rope_cfg_t c = cfg_of(D, rot, lay, t[k].sc, t[k].f);
	if (k == 5) {
		c.ext_factor = 0.5;
		c.attn_factor = 1.3;
	}
	if (k == 7)
		c.power = 2.0;
	return c;
}
#define N_SCALED 8

static void test_rope_relative(void **state)
{
	kt_rng_t g;
	kt_seed(&g, 11);
	pk_ctx_t *ctx = kt_ctx(1, PK_ISA_SCALAR);
	enum { D = 64 };
	for (int l = 0; l < 2; l++)
		for (int k = 0; k < N_SCALED; k++) {
			pk_rope_cfg_t c = scaled_cfg(k, D, k % 2 ? 48 : 0, layouts[l]);
			pk_rope_t r;
			init_ok(&r, &c, 0);
			for (int trial = 0; trial < 20; trial++) {
				float q[D], kk[D], q1[D], k1[D], q2[D], k2[D];
				kt_fill(&g, q, D, -1, 1);
				kt_fill(&g, kk, D, -1, 1);
				int m = kt_int(&g, 0, 30000), n = kt_int(&g, 0, 30000);
				int s = kt_int(&g, -m < -n ? -m : -n, 30000);
				memcpy(q1, q, sizeof q);
				memcpy(k1, kk, sizeof kk);
				memcpy(q2, q, sizeof q);
				memcpy(k2, kk, sizeof kk);
				rope_one(ctx, &r, q1, m);
				rope_one(ctx, &r, k1, n);
				rope_one(ctx, &r, q2, m + s);
				rope_one(ctx, &r, k2, n + s);
				double a = dot(q1, k1, D), b = dot(q2, k2, D);
				if (!(fabs(a - b) <= 2e-4 + 1e-5 * fabs(a)))
					fail_msg("scaling %d layout %d: m=%d n=%d s=%d: %.9g vs %.9g",
						k, l, m, n, s, a, b);
			}
			pk_rope_free(&r);
		}
	pk_ctx_destroy(ctx);
}

/* Factor 1 changes nothing, bit for bit (dynamic: also while seq_len <= L). */
static void test_rope_factor_one(void **state)
{
	kt_rng_t g;
	kt_seed(&g, 12);
	pk_ctx_t *ctx = kt_ctx(1, PK_ISA_SCALAR);
	enum { T = 9, H = 3, D = 40 };
	static const pk_rope_scaling_t sc[] = { PK_ROPE_SCALE_LINEAR, PK_ROPE_SCALE_NTK,
		PK_ROPE_SCALE_DYNAMIC_NTK, PK_ROPE_SCALE_YARN };
	int32_t pos[T];
	for (int t = 0; t < T; t++)
		pos[t] = kt_int(&g, 0, 60000);
	float *x = kt_rand(&g, T * H * D, -2, 2);
	for (int l = 0; l < 2; l++) {
		pk_rope_cfg_t c0 = cfg_of(D, 0, layouts[l], PK_ROPE_SCALE_NONE, 1);
		pk_rope_t r0;
		init_ok(&r0, &c0, 0);
		float ref[T * H * D], got[T * H * D];
		memcpy(ref, x, sizeof ref);
		pk_rope_apply(ctx, &r0, ref, T, H, H * D, pos);
		for (int k = 0; k < 4; k++) {
			for (int dyn_long = 0; dyn_long < 2; dyn_long++) {
				pk_rope_cfg_t c = cfg_of(D, 0, layouts[l], sc[k], 1);
				c.seq_len = dyn_long ? 4096 : 100; /* both <= L */
				pk_rope_t r;
				init_ok(&r, &c, 0);
				assert_memory_equal(r.theta, r0.theta, sizeof(double) * D / 2);
				assert_true(r.mscale == 1.0f);
				memcpy(got, x, sizeof got);
				pk_rope_apply(ctx, &r, got, T, H, H * D, pos);
				assert_memory_equal(got, ref, sizeof got);
				pk_rope_free(&r);
			}
		}
		pk_rope_free(&r0);
	}
	free(x);
	pk_ctx_destroy(ctx);
}

static void test_rope_dynamic_truncate(void **state)
{
	/* dynamic NTK: base' = base*((s*len/L) - (s-1))^(D/(D-2)) past L */
	pk_rope_cfg_t c = cfg_of(128, 0, PK_ROPE_NEOX, PK_ROPE_SCALE_DYNAMIC_NTK, 2);
	c.seq_len = 8192;
	pk_rope_t r;
	init_ok(&r, &c, 0);
	double want = 10000.0 * pow(2.0 * 8192 / 4096 - 1.0, 128.0 / 126.0);
	assert_true(fabs(pow(r.theta[1], -64.0) - want) < 1e-6 * want);
	pk_rope_free(&r);
	/* Giraffe: kept (>= b), rho = b/16 on [b/8, b), 0 below b/8 */
	for (int k = 6; k < 8; k++) {
		c = scaled_cfg(k, 128, 0, PK_ROPE_NEOX);
		init_ok(&r, &c, 0);
		double b = 2 * M_PI / c.truncate;
		int kept = 0, rho = 0, zero = 0;
		for (int i = 0; i < 64; i++) {
			double f = pow(10000.0, -2.0 * i / 128);
			if (c.factor > 1)
				f /= c.factor;
			if (c.power > 0)
				f *= pow(1.0 - i / 64.0, c.power);
			double want_t = f >= b ? f : (f >= b / 8 ? b / 16 : 0.0);
			assert_true(fabs(r.theta[i] - want_t) <= 1e-15 + 1e-12 * want_t);
			kept += f >= b;
			rho += f < b && f >= b / 8;
			zero += f < b / 8;
		}
		assert_true(kept > 0 && rho > 0 && zero > 0); /* all three cases seen */
		pk_rope_free(&r);
	}
}

/* shift(delta) after apply(pos) == apply(pos + delta); partial rotary
 * leaves the tail alone; the cache gives the same bits as computing. */
static void test_rope_shift_partial_cache(void **state)
{
	kt_rng_t g;
	kt_seed(&g, 13);
	enum { T = 11, H = 3, D = 72, LD = H * D + 5 };
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	float *x = kt_rand(&g, T * LD, -1, 1);
	float *a = malloc(sizeof(float) * T * LD), *b = malloc(sizeof(float) * T * LD);
	int32_t pos[T], pos2[T];
	for (int ii = 0; ii < ni; ii++) {
		pk_ctx_t *ctx = kt_ctx(2, isas[ii]);
		for (int l = 0; l < 2; l++)
			for (int k = 0; k < N_SCALED; k++) {
				int rot = k % 2 ? 44 : 72;
				pk_rope_cfg_t c = scaled_cfg(k, D, rot, layouts[l]);
				pk_rope_t r, rc;
				init_ok(&r, &c, 0);
				init_ok(&rc, &c, 700);
				int32_t delta = kt_int(&g, -500, 500);
				for (int t = 0; t < T; t++) {
					pos[t] = kt_int(&g, 500, 1200); /* some inside the cache */
					pos2[t] = pos[t] + delta;
				}
				memcpy(a, x, sizeof(float) * T * LD);
				memcpy(b, x, sizeof(float) * T * LD);
				pk_rope_apply(ctx, &r, a, T, H, LD, pos);
				pk_rope_shift(ctx, &r, a, T, H, LD, delta);
				pk_rope_apply(ctx, &rc, b, T, H, LD, pos2);
				kt_assert_close("shift vs re-encode", b, a, T * LD, 2e-5f, 2e-5f);
				/* cache vs no cache: identical on the scalar path (both
				 * libm); the vector sincos may differ by an ulp */
				memcpy(a, x, sizeof(float) * T * LD);
				pk_rope_apply(ctx, &r, a, T, H, LD, pos2);
				if (isas[ii] == PK_ISA_SCALAR)
					assert_memory_equal(a, b, sizeof(float) * T * LD);
				else
					kt_assert_close("cache vs computed", b, a, T * LD, 1e-6f, 1e-6f);
				/* the tail dims and the row padding are untouched */
				for (int t = 0; t < T; t++) {
					for (int h = 0; h < H; h++)
						assert_memory_equal(b + t * LD + h * D + rot,
							x + t * LD + h * D + rot, sizeof(float) * (D - rot));
					assert_memory_equal(b + t * LD + H * D, x + t * LD + H * D,
						sizeof(float) * (LD - H * D));
				}
				pk_rope_free(&r);
				pk_rope_free(&rc);
			}
		pk_ctx_destroy(ctx);
	}
	free(x);
	free(a);
	free(b);
}

/* Each ISA and thread count against the scalar reference, odd T and H,
 * tails of every length (pairs not a multiple of 4/8/16). */
static void test_rope_isas(void **state)
{
	kt_rng_t g;
	kt_seed(&g, 14);
	static const int shapes[][2] = { { 6, 6 }, { 72, 44 }, { 128, 128 }, { 80, 32 },
		{ 34, 34 }, { 96, 96 }, { 62, 30 } };
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	pk_ctx_t *ref_ctx = kt_ctx(1, PK_ISA_SCALAR);
	for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
		for (int l = 0; l < 2; l++) {
			int D = shapes[sh][0], rot = shapes[sh][1];
			int T = kt_int(&g, 1, 40) | 1, H = kt_int(&g, 1, 7) | 1;
			size_t ld = (size_t)H * D + (size_t)kt_int(&g, 0, 3);
			size_t n = (size_t)T * ld;
			pk_rope_cfg_t c = scaled_cfg((int)(sh % N_SCALED), D, rot, layouts[l]);
			pk_rope_t r;
			init_ok(&r, &c, 64);
			int32_t *pos = malloc(sizeof(int32_t) * T);
			for (int t = 0; t < T; t++)
				pos[t] = kt_int(&g, -20, 60000) % (t % 3 ? 60000 : 100);
			float *x = kt_rand(&g, n, -3, 3), *ref = malloc(n * 4), *got = malloc(n * 4);
			float *ref2 = malloc(n * 4);
			memcpy(ref, x, n * 4);
			pk_rope_apply(ref_ctx, &r, ref, T, H, ld, pos);
			pk_rope_shift(ref_ctx, &r, ref, T, H, ld, -17);
			/* the scalar path is pk__rope_rotate row by row */
			memcpy(got, x, n * 4);
			for (int t = 0; t < T; t++) {
				float cs[PK_MAX_HEAD_DIM], cs2[PK_MAX_HEAD_DIM];
				pk__rope_sincos(&r, pos[t], 1, cs);
				pk__rope_sincos(&r, -17, 0, cs2);
				for (int h = 0; h < H; h++) {
					pk__rope_rotate(&r, got + t * ld + (size_t)h * D, cs);
					pk__rope_rotate(&r, got + t * ld + (size_t)h * D, cs2);
				}
			}
			assert_memory_equal(got, ref, n * 4);
			for (int ii = 0; ii < ni; ii++)
				for (int th = 1; th <= 2; th++) {
					pk_ctx_t *ctx = kt_ctx(th, isas[ii]);
					memcpy(got, x, n * 4);
					pk_rope_apply(ctx, &r, got, T, H, ld, pos);
					pk_rope_shift(ctx, &r, got, T, H, ld, -17);
					kt_assert_close(pk_isa_name(isas[ii]), ref, got, n, 1e-6f, 1e-5f);
					/* the exported multi-row rotation (kv.c uses it) */
					float cs[PK_MAX_HEAD_DIM];
					pk__rope_sincos(&r, 12345, 1, cs);
					memcpy(got, x, n * 4);
					memcpy(ref2, x, n * 4);
					pk__rope_rotate_rows(isas[ii], &r, got, T, ld, cs);
					for (int t = 0; t < T; t++)
						pk__rope_rotate(&r, ref2 + t * ld, cs);
					kt_assert_close("rotate_rows", ref2, got, n, 1e-6f, 1e-5f);
					pk_ctx_destroy(ctx);
				}
			free(pos);
			free(x);
			free(ref);
			free(ref2);
			free(got);
			pk_rope_free(&r);
		}
	pk_ctx_destroy(ref_ctx);
}

static void test_rope_bad_configs(void **state)
{
	pk_rope_cfg_t c;
	pk_rope_t r;
#define BAD(stmt, cache)                                             \
	do {                                                         \
		c = cfg_of(64, 0, PK_ROPE_NEOX, PK_ROPE_SCALE_NONE, 1); \
		stmt;                                                \
		assert_int_equal(pk_rope_init(&r, &c, cache), PK_EINVAL); \
		assert_null(r.cs);                                   \
	} while (0)
	BAD(c.head_dim = 0, 0);
	BAD(c.head_dim = 63, 0);
	BAD(c.head_dim = PK_MAX_HEAD_DIM + 2, 0);
	BAD(c.rot_dims = 31, 0);
	BAD(c.rot_dims = 66, 0);
	BAD(c.rot_dims = -2, 0);
	BAD(c.layout = (pk_rope_layout_t)7, 0);
	BAD(c.scaling = (pk_rope_scaling_t)99, 0);
	BAD(c.base = 1.0, 0);
	BAD(c.base = NAN, 0);
	BAD(c.factor = 0.5, 0);
	BAD(c.factor = INFINITY, 0);
	BAD((c.scaling = PK_ROPE_SCALE_NTK, c.rot_dims = 2), 0);
	BAD((c.scaling = PK_ROPE_SCALE_DYNAMIC_NTK, c.orig_max_pos = 0), 0);
	BAD((c.scaling = PK_ROPE_SCALE_DYNAMIC_NTK, c.seq_len = -1), 0);
	BAD((c.scaling = PK_ROPE_SCALE_YARN, c.orig_max_pos = 0), 0);
	BAD((c.scaling = PK_ROPE_SCALE_YARN, c.beta_fast = 0), 0);
	BAD((c.scaling = PK_ROPE_SCALE_YARN, c.attn_factor = 0), 0);
	BAD((c.scaling = PK_ROPE_SCALE_YARN, c.ext_factor = -1), 0);
	BAD((c.scaling = PK_ROPE_SCALE_TRUNCATE, c.truncate = 0), 0);
	BAD((c.scaling = PK_ROPE_SCALE_TRUNCATE, c.power = -1), 0);
	BAD((void)0, -1);
#undef BAD
	assert_int_equal(pk_rope_init(&r, NULL, 0), PK_EINVAL);
	assert_int_equal(pk_rope_init(NULL, &c, 0), PK_EINVAL);
	c = cfg_of(64, 0, PK_ROPE_NEOX, PK_ROPE_SCALE_NONE, 1);
	assert_int_equal(pk_rope_init(&r, &c, 0), PK_OK);
	assert_int_equal(r.rot_dims, 64);
	pk_rope_free(&r);
	pk_rope_free(&r); /* twice is harmless */
}

/* ---- APE -------------------------------------------------------------- */

static void test_ape(void **state)
{
	enum { T = 7, DIM = 38, MAXP = 50 };
	int32_t pos[T] = { 0, 1, 5, 49, 17, 3, 30 };
	float tab[MAXP * DIM], ref[T * DIM];
	int32_t all[MAXP];
	for (int p = 0; p < MAXP; p++)
		all[p] = p;
	assert_int_equal(pk_ape_sinusoidal(tab, all, MAXP, DIM, 10000.0), PK_OK);
	/* Annotated-Transformer form: div = exp(2i * -ln(10000)/d) */
	for (int p = 0; p < MAXP; p++)
		for (int i = 0; i < DIM / 2; i++) {
			double dv = exp(2 * i * -log(10000.0) / DIM);
			ref[0] = (float)sin(p * dv);
			ref[1] = (float)cos(p * dv);
			kt_assert_close("ape_sin", ref, tab + p * DIM + 2 * i, 2, 1e-6f, 1e-6f);
		}
	assert_true(tab[0] == 0.0f && tab[1] == 1.0f);
	assert_int_equal(pk_ape_sinusoidal(tab, pos, T, 7, 10000.0), PK_EINVAL);
	assert_int_equal(pk_ape_sinusoidal(tab, pos, -1, DIM, 10000.0), PK_EINVAL);

	kt_rng_t g;
	kt_seed(&g, 15);
	size_t ld = DIM + 3;
	float *x = kt_rand(&g, T * ld, -1, 1), *got = malloc(T * ld * 4), *want = malloc(T * ld * 4);
	memcpy(want, x, T * ld * 4);
	for (int t = 0; t < T; t++)
		for (int d = 0; d < DIM; d++)
			want[t * ld + d] += tab[pos[t] * DIM + d];
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++)
		for (int th = 1; th <= 2; th++) {
			pk_ctx_t *ctx = kt_ctx(th, isas[ii]);
			memcpy(got, x, T * ld * 4);
			assert_int_equal(pk_ape_add(ctx, got, T, DIM, ld, tab, MAXP, pos), PK_OK);
			assert_memory_equal(got, want, T * ld * 4);
			/* a position outside: nothing written */
			memcpy(got, x, T * ld * 4);
			int32_t bad[T];
			memcpy(bad, pos, sizeof bad);
			bad[T - 1] = MAXP;
			assert_int_equal(pk_ape_add(ctx, got, T, DIM, ld, tab, MAXP, bad), PK_ERANGE);
			bad[T - 1] = -1;
			assert_int_equal(pk_ape_add(ctx, got, T, DIM, ld, tab, MAXP, bad), PK_ERANGE);
			assert_memory_equal(got, x, T * ld * 4);
			assert_int_equal(pk_ape_add(ctx, got, T, DIM, DIM - 1, tab, MAXP, pos), PK_EINVAL);
			pk_ctx_destroy(ctx);
		}
	free(x);
	free(got);
	free(want);
}

int pk_test_pe(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ntk_bases),
		cmocka_unit_test(test_yarn_vectors),
		cmocka_unit_test(test_alibi),
		cmocka_unit_test(test_t5_buckets),
		cmocka_unit_test(test_rope_relative),
		cmocka_unit_test(test_rope_factor_one),
		cmocka_unit_test(test_rope_dynamic_truncate),
		cmocka_unit_test(test_rope_shift_partial_cache),
		cmocka_unit_test(test_rope_isas),
		cmocka_unit_test(test_rope_bad_configs),
		cmocka_unit_test(test_ape),
	};
	return cmocka_run_group_tests_name("kernels-pe", tests, NULL, NULL);
}
