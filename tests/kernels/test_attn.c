/* tests/kernels/test_attn.c: pk_attention. Every ISA's prefill and decode
 * against the scalar reference on odd shapes (MHA, GQA, MQA, odd groups,
 * D = 36..128, f32 and bf16 caches, every mask and bias, 1 and 2 threads),
 * then properties: a window covering everything is full attention, decode
 * equals prefill's last row, a row that sees nothing is zeros. */
#include "tests/kernels/ktest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	const char *name;
	int H, Hkv, D, Tq, Tk;
	pk_dtype_t dt;
	int causal, window, n_sink;
	int sinks;           /* learned sink logits */
	pk_bias_kind_t bias;
	int t5_bidir;
	int pos_stride;      /* key i at pos_stride * i (1 = dense) */
	int short_head;      /* KV head 1 holds 20 keys fewer */
} acase_t;

/* Everything one case needs, filled from a seed. */
typedef struct {
	pk_attn_cfg_t cfg;
	pk_kv_t kv;
	float *q, *slopes, *t5, *sink;
	int32_t *qpos;
} adata_t;

static void adata_init(adata_t *s, const acase_t *c, uint64_t seed)
{
	kt_rng_t r;
	kt_seed(&r, seed);
	memset(s, 0, sizeof *s);
	int st = c->pos_stride ? c->pos_stride : 1;
	float *k = kt_rand(&r, (size_t)c->Tk * c->Hkv * c->D, -1, 1);
	float *v = kt_rand(&r, (size_t)c->Tk * c->Hkv * c->D, -1, 1);
	int32_t *kpos = malloc((size_t)c->Tk * sizeof *kpos);
	s->qpos = malloc((size_t)c->Tq * sizeof *s->qpos);
	assert_non_null(kpos);
	assert_non_null(s->qpos);
	for (int i = 0; i < c->Tk; i++)
		kpos[i] = st * i;
	/* the queries are the last Tq keys (prefill of a prompt) */
	for (int t = 0; t < c->Tq; t++)
		s->qpos[t] = st * (c->Tk - c->Tq + t);
	s->q = kt_rand(&r, (size_t)c->Tq * c->H * c->D, -1, 1);
	pk_ctx_t *ctx = kt_ctx(1, PK_ISA_SCALAR);
	assert_int_equal(pk_kv_init(&s->kv, c->Hkv, c->D, c->Tk + 3, c->dt), PK_OK);
	assert_int_equal(pk_kv_append(ctx, &s->kv, k, v, c->Tk, (size_t)c->Hkv * c->D, kpos), PK_OK);
	pk_ctx_destroy(ctx);
	if (c->short_head && c->Hkv > 1)
		s->kv.len[1] -= 20;
	free(k);
	free(v);
	free(kpos);

	pk_attn_cfg_t *g = &s->cfg;
	g->n_heads = c->H;
	g->n_kv_heads = c->Hkv;
	g->head_dim = c->D;
	g->causal = c->causal;
	g->window = c->window;
	g->n_sink_tokens = c->n_sink;
	if (c->sinks) {
		s->sink = kt_rand(&r, (size_t)c->H, -1, 3);
		g->sink_logits = s->sink;
	}
	g->bias.kind = c->bias;
	if (c->bias == PK_BIAS_ALIBI) {
		s->slopes = malloc((size_t)c->H * sizeof *s->slopes);
		assert_non_null(s->slopes);
		for (int h = 0; h < c->H; h++)
			s->slopes[h] = powf(2.0f, -8.0f * (float)(h + 1) / (float)c->H);
		g->bias.alibi_slopes = s->slopes;
	} else if (c->bias == PK_BIAS_T5) {
		s->t5 = kt_rand(&r, (size_t)32 * c->H, -2, 2);
		g->bias.t5_table = s->t5;
		g->bias.t5_num_buckets = 32;
		g->bias.t5_max_distance = 128;
		g->bias.t5_bidirectional = c->t5_bidir;
	}
}

static void adata_free(adata_t *s)
{
	pk_kv_free(&s->kv);
	free(s->q);
	free(s->slopes);
	free(s->t5);
	free(s->sink);
	free(s->qpos);
}

static float *run(pk_isa_t isa, int threads, const adata_t *s, const float *q, int Tq,
	const int32_t *qpos)
{
	size_t row = (size_t)s->cfg.n_heads * s->cfg.head_dim;
	float *out = malloc((size_t)Tq * row * sizeof *out);
	assert_non_null(out);
	for (size_t i = 0; i < (size_t)Tq * row; i++)
		out[i] = NAN; /* every element must be written */
	pk_ctx_t *ctx = kt_ctx(threads, isa);
	int rc = pk_attention(ctx, &s->cfg, q, Tq, row, qpos, &s->kv, out, row);
	pk_ctx_destroy(ctx);
	if (rc != PK_OK)
		fail_msg("pk_attention (%s, %d threads): %s", pk_isa_name(isa), threads, pk_strerror(rc));
	return out;
}

/* Each ISA x {1, 2} threads against scalar, for the whole query block and
 * for its last row alone (the decode path). */
static void check_case(const acase_t *c)
{
	adata_t s;
	adata_init(&s, c, 0x5eed + (uint64_t)c->Tq * 131 + (uint64_t)c->D);
	size_t row = (size_t)c->H * c->D;
	const float *qlast = s.q + (size_t)(c->Tq - 1) * row;
	const int32_t *plast = s.qpos + c->Tq - 1;
	float *ref = run(PK_ISA_SCALAR, 1, &s, s.q, c->Tq, s.qpos);
	float *ref1 = run(PK_ISA_SCALAR, 1, &s, qlast, 1, plast);
	/* the reference of the last row alone is the last row of the block */
	kt_assert_close(c->name, ref + (size_t)(c->Tq - 1) * row, ref1, row, 0, 0);
	pk_isa_t isas[3];
	int n = kt_isas(isas);
	for (int i = 1; i < n; i++)
		for (int th = 1; th <= 2; th++) {
			char what[160];
			snprintf(what, sizeof what, "%s prefill %s x%d", c->name, pk_isa_name(isas[i]), th);
			float *got = run(isas[i], th, &s, s.q, c->Tq, s.qpos);
			kt_assert_close(what, ref, got, (size_t)c->Tq * row, 2e-5f, 2e-4f);
			free(got);
			snprintf(what, sizeof what, "%s decode %s x%d", c->name, pk_isa_name(isas[i]), th);
			got = run(isas[i], th, &s, qlast, 1, plast);
			kt_assert_close(what, ref1, got, row, 2e-5f, 2e-4f);
			free(got);
		}
	free(ref);
	free(ref1);
	adata_free(&s);
}

static const acase_t cases[] = {
	/* name              H  Hkv D    Tq   Tk   dt       cau win snk sl  bias           bd st sh */
	{"mha-d64",          4, 4,  64,  37,  101, PK_F32,  1,  0,  0,  0,  PK_BIAS_NONE,  0, 1, 0},
	{"gqa-d80-bf16-alibi", 8, 2, 80, 97,  131, PK_BF16, 1,  0,  0,  0,  PK_BIAS_ALIBI, 0, 1, 1},
	{"mqa-d128-bidir-t5", 6, 1, 128, 13,  200, PK_F32,  0,  0,  0,  0,  PK_BIAS_T5,    1, 3, 0},
	{"gqa-window-sinks", 8, 2,  128, 50,  150, PK_F32,  1,  17, 3,  1,  PK_BIAS_NONE,  0, 1, 1},
	{"g3-d36-bidir-win", 6, 2,  36,  41,  77,  PK_BF16, 0,  9,  2,  0,  PK_BIAS_ALIBI, 0, 1, 0},
	{"gqa-causal-t5",    8, 2,  64,  100, 190, PK_BF16, 1,  0,  0,  1,  PK_BIAS_T5,    0, 2, 0},
	{"mha-dec-long",     4, 4,  80,  3,   1500, PK_BF16, 1, 0,  0,  0,  PK_BIAS_T5,    0, 1, 1},
	{"gqa-dec-window",   8, 2,  128, 2,   1201, PK_F32, 1,  300, 4, 1,  PK_BIAS_ALIBI, 0, 1, 0},
	{"g5-dec-d20",       5, 1,  20,  4,   301, PK_F32,  0,  0,  0,  1,  PK_BIAS_NONE,  0, 1, 0},
	{"mha-d72-tk1",      2, 2,  72,  5,   1,   PK_F32,  1,  0,  0,  1,  PK_BIAS_NONE,  0, 1, 0},
};

static void test_isas_vs_scalar(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_case(&cases[i]);
}

/* A window longer than the whole cache (with or without sinks) changes
 * nothing. */
static void test_window_covering_all(void **state)
{
	(void)state;
	acase_t c = {"win", 8, 2, 64, 33, 150, PK_F32, 1, 0, 0, 0, PK_BIAS_ALIBI, 0, 1, 0};
	pk_isa_t isas[3];
	int n = kt_isas(isas);
	for (int causal = 0; causal <= 1; causal++) {
		c.causal = causal;
		adata_t s;
		adata_init(&s, &c, 77);
		for (int i = 0; i < n; i++) {
			s.cfg.window = 0;
			s.cfg.n_sink_tokens = 0;
			float *full = run(isas[i], 2, &s, s.q, c.Tq, s.qpos);
			s.cfg.window = c.Tk + 1;
			s.cfg.n_sink_tokens = 4;
			float *win = run(isas[i], 2, &s, s.q, c.Tq, s.qpos);
			kt_assert_close("window covering all", full, win, (size_t)c.Tq * c.H * c.D, 0, 0);
			/* a window one short of the span does change the first key's weight */
			s.cfg.window = c.Tk - 1;
			s.cfg.n_sink_tokens = 0;
			float *cut = run(isas[i], 1, &s, s.q, c.Tq, s.qpos);
			size_t last = (size_t)(c.Tq - 1) * c.H * c.D;
			assert_true(kt_max_abs_diff(full + last, cut + last, (size_t)c.H * c.D) > 1e-6);
			free(full);
			free(win);
			free(cut);
		}
		adata_free(&s);
	}
}

/* Rows that see no key (causal: every key after the query; window without
 * sinks: every key too far) are zeros, with or without sink logits; the
 * other rows are unaffected. */
static void test_masked_rows_zero(void **state)
{
	(void)state;
	acase_t c = {"masked", 4, 2, 64, 7, 120, PK_BF16, 1, 0, 0, 1, PK_BIAS_NONE, 0, 1, 0};
	adata_t s;
	adata_init(&s, &c, 99);
	/* keys sit at 0..119: query 0 before them all, query 6 far after */
	int32_t qpos[7] = { -5, 3, 60, 119, 50, 10, 1000 };
	size_t row = (size_t)c.H * c.D;
	s.cfg.window = 40;
	pk_isa_t isas[3];
	int n = kt_isas(isas);
	for (int i = 0; i < n; i++)
		for (int t = 0; t < 7; t++) {
			const int32_t *qp = &qpos[t];
			float *o1 = run(isas[i], 2, &s, s.q + t * row, 1, qp);
			int none = t == 0 || t == 6;
			for (size_t e = 0; e < row; e++)
				if (none)
					assert_true(o1[e] == 0.0f);
			free(o1);
		}
	float *ref = run(PK_ISA_SCALAR, 1, &s, s.q, 7, qpos);
	for (int i = 0; i < n; i++) {
		float *got = run(isas[i], 2, &s, s.q, 7, qpos);
		for (size_t e = 0; e < row; e++) {
			assert_true(got[e] == 0.0f);
			assert_true(got[6 * row + e] == 0.0f);
		}
		kt_assert_close("masked rows", ref, got, 7 * row, 2e-5f, 2e-4f);
		free(got);
	}
	free(ref);
	adata_free(&s);
}

/* Sinks keep the first keys visible when the window has passed them: the
 * result is attention over the sinks alone. */
static void test_sinks_only(void **state)
{
	(void)state;
	acase_t c = {"sinks", 4, 2, 64, 1, 200, PK_F32, 1, 8, 3, 0, PK_BIAS_NONE, 0, 1, 0};
	adata_t s;
	adata_init(&s, &c, 5);
	int32_t qp = 1000; /* the window sees nothing, sinks (keys 0..2) remain */
	size_t row = (size_t)c.H * c.D;
	pk_isa_t isas[3];
	int n = kt_isas(isas);
	for (int i = 0; i < n; i++) {
		s.cfg.window = 8;
		s.cfg.n_sink_tokens = 3;
		float *got = run(isas[i], 2, &s, s.q, 1, &qp);
		s.cfg.window = 0;
		s.cfg.n_sink_tokens = 0;
		s.kv.len[0] = s.kv.len[1] = 3;
		float *ref = run(PK_ISA_SCALAR, 1, &s, s.q, 1, &qp);
		s.kv.len[0] = s.kv.len[1] = c.Tk;
		assert_true(fabsf(ref[0]) > 0); /* the sinks are seen */
		kt_assert_close("sinks only", ref, got, row, 2e-5f, 2e-4f);
		free(got);
		free(ref);
	}
	adata_free(&s);
}

static void test_invalid(void **state)
{
	(void)state;
	acase_t c = {"inv", 4, 2, 32, 2, 10, PK_F32, 1, 0, 0, 0, PK_BIAS_NONE, 0, 1, 0};
	adata_t s;
	adata_init(&s, &c, 1);
	pk_ctx_t *ctx = kt_ctx(1, pk_cpu_isa());
	float out[2 * 4 * 32];
	size_t row = 4 * 32;
	pk_attn_cfg_t good = s.cfg;
	assert_int_equal(pk_attention(ctx, &s.cfg, s.q, 2, row, s.qpos, &s.kv, out, row), PK_OK);
	assert_int_equal(pk_attention(ctx, &s.cfg, s.q, 2, row - 1, s.qpos, &s.kv, out, row), PK_EINVAL);
	s.cfg.n_heads = 3;
	assert_int_equal(pk_attention(ctx, &s.cfg, s.q, 2, row, s.qpos, &s.kv, out, row), PK_EINVAL);
	s.cfg = good;
	s.cfg.head_dim = 16; /* cache says 32 */
	assert_int_equal(pk_attention(ctx, &s.cfg, s.q, 2, row, s.qpos, &s.kv, out, row), PK_EINVAL);
	s.cfg = good;
	s.cfg.bias.kind = PK_BIAS_ALIBI; /* no slopes */
	assert_int_equal(pk_attention(ctx, &s.cfg, s.q, 2, row, s.qpos, &s.kv, out, row), PK_EINVAL);
	s.cfg = good;
	float t5[8 * 4];
	s.cfg.bias.kind = PK_BIAS_T5;
	s.cfg.bias.t5_table = t5;
	s.cfg.bias.t5_num_buckets = 8;
	s.cfg.bias.t5_max_distance = 2; /* not above max_exact = 4 */
	assert_int_equal(pk_attention(ctx, &s.cfg, s.q, 2, row, s.qpos, &s.kv, out, row), PK_EINVAL);
	s.cfg = good;
	s.cfg.window = -1;
	assert_int_equal(pk_attention(ctx, &s.cfg, s.q, 2, row, s.qpos, &s.kv, out, row), PK_EINVAL);
	s.cfg = good;
	assert_int_equal(pk_attention(ctx, &s.cfg, s.q, 0, row, s.qpos, &s.kv, out, row), PK_OK);
	pk_ctx_destroy(ctx);
	adata_free(&s);
}

int pk_test_attn(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_isas_vs_scalar),
		cmocka_unit_test(test_window_covering_all),
		cmocka_unit_test(test_masked_rows_zero),
		cmocka_unit_test(test_sinks_only),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests_name("kernels-attn", tests, NULL, NULL);
}
