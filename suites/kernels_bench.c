/* The kernels suite's measurements (suite.h's measure hook, kernels.c):
 * each case (prefill attention, decode attention, RoPE, similarity top-k)
 * is set up from the run's RNG, run warmup + reps times through the public
 * kernels API with only the kernel calls timed, and the last run's output
 * is checked against a plain scalar reference in double computed here from
 * the same inputs (a sample of rows where the full check would dwarf it). */
#include "suites/kernels_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rng.h"
#include "kernels/kernels.h"

#define KN_T5_BUCKETS 32
#define KN_T5_MAX_DISTANCE 128
/* Multiply-adds a check may spend: a few tens of milliseconds. */
#define KN_CHECK_WORK ((int64_t)1 << 24)

/* One case while it is measured. Tensors are row-major with their shapes
 * at each field; everything is owned and freed by kn_free. */
typedef struct kn_case {
    const ps_kn_params_t *p;
    pk_ctx_t *ctx;
    int pe;
    int T, H, Hk, D; /* T: the bucket (tokens); Hk: KV heads */
    int Tq;          /* query rows: T for prefill, 1 for decode */
    float *q0, *q;   /* (Tq, H, D): as drawn, and the copy each run encodes */
    float *k0, *k;   /* (T, Hk, D) */
    float *v;        /* (T, Hk, D) */
    float *out;      /* (Tq, H, D) */
    int32_t *pos;    /* (T): 0 .. T-1 */
    pk_rope_t rope;
    int have_rope;
    pk_kv_t kv;
    int have_kv;
    float slopes[256]; /* (H) ALiBi */
    float *t5;         /* (KN_T5_BUCKETS, H) */
    pk_attn_cfg_t cfg;
    /* similarity: q0 (nq, dim), docs (nd, dim), results (nq, k) */
    int nq, dim, topk;
    int64_t nd;
    float *docs, *score;
    int64_t *idx;
} kn_case_t;

const char *ps__kn_pe_name(int pe)
{
    static const char *const names[PS_KN_N_PE] = {"nope",      "rope",  "rope-pi", "rope-ntk",
                                                  "rope-yarn", "alibi", "t5"};
    return pe >= 0 && pe < PS_KN_N_PE ? names[pe] : NULL;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* 64-byte aligned floats, so the vector paths see what a model gives them. */
static float *kn_floats(size_t n)
{
    void *p = NULL;
    return posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) == 0 ? p : NULL;
}

/* x[0, n) uniform in [-scale, scale): two 24-bit draws per RNG step. */
static void kn_fill(pb_rng_t *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i += 2) {
        uint64_t u = pb_rng_next(r);
        x[i] = ((float)(u >> 40) * (1.0f / 8388608.0f) - 1.0f) * scale;
        if (i + 1 < n)
            x[i + 1] = ((float)(u & 0xffffff) * (1.0f / 8388608.0f) - 1.0f) * scale;
    }
}

static int kn_err(int pk_rc, const char *what, pb_err_t *err)
{
    int rc = pk_rc == PK_ENOMEM ? PB_ENOMEM : pk_rc == PK_ENOTSUP ? PB_EUNSUPPORTED : PB_EINVAL;
    return pb_err_set(err, rc, "", "%s: %s", what, pk_strerror(pk_rc));
}

static void kn_free(kn_case_t *c)
{
    free(c->q0), free(c->q), free(c->k0), free(c->k), free(c->v), free(c->out);
    free(c->pos), free(c->t5), free(c->docs), free(c->score), free(c->idx);
    if (c->have_rope)
        pk_rope_free(&c->rope);
    if (c->have_kv)
        pk_kv_free(&c->kv);
    pk_ctx_destroy(c->ctx);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* NumPy's linear quantile of sorted s[0, n). */
static double quantile(const double *s, size_t n, double q)
{
    double h = q * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return s[lo] + (h - (double)lo) * (s[hi] - s[lo]);
}

void ps__kn_stats(double *us, size_t n, ps_kn_outcome_t *o)
{
    qsort(us, n, sizeof *us, cmp_double);
    o->min_us = us[0];
    o->p25_us = quantile(us, n, 0.25);
    o->median_us = quantile(us, n, 0.5);
    o->p75_us = quantile(us, n, 0.75);
}

void ps__kn_compare(const float *got, const double *want, size_t n, double atol, double rtol,
                    double *max_err)
{
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (atol + rtol * fabs(want[i]));
        if (isnan(e))
            e = INFINITY;
        if (e > *max_err)
            *max_err = e;
    }
}

/* Index j of n evenly spread over [0, total): the first is 0 (where the
 * corrupt seam writes), the last total - 1. */
static int64_t kn_spread(int64_t j, int64_t n, int64_t total)
{
    return n <= 1 ? 0 : j * (total - 1) / (n - 1);
}

/* How many of total rows, each costing row_work, a check looks at. */
static int64_t kn_rows(int64_t total, int64_t row_work, int64_t at_least)
{
    int64_t n = KN_CHECK_WORK / (row_work > 0 ? row_work : 1);
    n = n < at_least ? at_least : n;
    return n < total ? n : total;
}

/* Warm up, then time reps runs of body, each after an untimed reset. */
static int kn_time(kn_case_t *c, void (*reset)(kn_case_t *), int (*body)(kn_case_t *),
                   ps_kn_outcome_t *o, pb_err_t *err)
{
    for (int r = -c->p->warmup; r < c->p->reps; r++) {
        if (reset)
            reset(c);
        double t0 = now_us();
        int rc = body(c);
        double t = now_us() - t0;
        if (rc)
            return kn_err(rc, "kernel", err);
        if (r >= 0)
            o->times_us[r] = t;
    }
    o->reps = c->p->reps;
    ps__kn_stats(o->times_us, (size_t)o->reps, o);
    return 0;
}

/* ---- the scalar references ---- */

/* y (D) = x (D) rotated to position pos as the resolved encoding r says. */
static void rope_ref(const pk_rope_t *r, const float *x, int32_t pos, int D, double *y)
{
    int np = r->rot_dims / 2;
    for (int d = 0; d < D; d++)
        y[d] = x[d];
    for (int i = 0; i < np; i++) {
        double c = cos(pos * r->theta[i]) * r->mscale, s = sin(pos * r->theta[i]) * r->mscale;
        int a = r->layout == PK_ROPE_NORM ? 2 * i : i;
        int b = r->layout == PK_ROPE_NORM ? 2 * i + 1 : i + np;
        y[a] = x[a] * c - x[b] * s;
        y[b] = x[a] * s + x[b] * c;
    }
}

static double kn_round(const kn_case_t *c, double x)
{
    return c->p->bf16 ? pk_bf16_to_f32(pk_f32_to_bf16((float)x)) : x;
}

static double bias_ref(const kn_case_t *c, int h, int32_t qp, int32_t kp)
{
    if (c->pe == PS_KN_ALIBI)
        return -(double)c->slopes[h] * (double)(qp - kp);
    if (c->pe == PS_KN_T5) {
        int b = pk_t5_bucket(kp - qp, 0, KN_T5_BUCKETS, KN_T5_MAX_DISTANCE);
        return c->t5[(size_t)b * (size_t)c->H + (size_t)h];
    }
    return 0;
}

/* Keys as the cache holds them: k0 encoded at their positions and rounded
 * to the cache's type; *out (T, Hk, D) is malloc'd. */
static int ref_keys(const kn_case_t *c, float **out)
{
    size_t n = (size_t)c->T * (size_t)c->Hk * (size_t)c->D;
    double y[PK_MAX_HEAD_DIM];
    float *k = kn_floats(n);
    if ((*out = k) == NULL)
        return PB_ENOMEM;
    for (size_t row = 0; row < (size_t)c->T * (size_t)c->Hk; row++) {
        const float *x = c->k0 + row * (size_t)c->D;
        for (int d = 0; d < c->D; d++)
            y[d] = x[d];
        if (c->have_rope)
            rope_ref(&c->rope, x, (int32_t)(row / (size_t)c->Hk), c->D, y);
        for (int d = 0; d < c->D; d++)
            k[row * (size_t)c->D + (size_t)d] = (float)kn_round(c, (float)y[d]);
    }
    return 0;
}

/* want (H, D): causal attention of query row q (H, D) at position qp over
 * keys 0 .. qp of rk, two-pass softmax in double; s is scratch (T). */
static void attn_ref_row(const kn_case_t *c, const float *q, int32_t qp, const float *rk,
                         double *s, double *want)
{
    int G = c->H / c->Hk, D = c->D;
    double qr[PK_MAX_HEAD_DIM];
    for (int h = 0; h < c->H; h++) {
        const float *qh = q + (size_t)h * (size_t)D;
        for (int d = 0; d < D; d++)
            qr[d] = qh[d];
        if (c->have_rope)
            rope_ref(&c->rope, qh, qp, D, qr);
        double m = -INFINITY, sum = 0;
        for (int32_t i = 0; i <= qp; i++) {
            const float *kr = rk + ((size_t)i * (size_t)c->Hk + (size_t)(h / G)) * (size_t)D;
            double dot = 0;
            for (int d = 0; d < D; d++)
                dot += qr[d] * kr[d];
            s[i] = dot / sqrt((double)D) + bias_ref(c, h, qp, i);
            m = s[i] > m ? s[i] : m;
        }
        double *o = want + (size_t)h * (size_t)D;
        for (int d = 0; d < D; d++)
            o[d] = 0;
        for (int32_t i = 0; i <= qp; i++) {
            double p = exp(s[i] - m);
            const float *vr = c->v + ((size_t)i * (size_t)c->Hk + (size_t)(h / G)) * (size_t)D;
            sum += p;
            for (int d = 0; d < D; d++)
                o[d] += p * kn_round(c, vr[d]);
        }
        for (int d = 0; d < D; d++)
            o[d] /= sum;
    }
}

/* Check sampled query rows of an attention case (prefill: rows spread over
 * 0 .. T-1; decode: its one row at T-1). */
static int attn_check(kn_case_t *c, ps_kn_outcome_t *o)
{
    double atol = c->p->bf16 ? 2e-3 : 1e-4, rtol = c->p->bf16 ? 2e-2 : 1e-3;
    size_t row = (size_t)c->H * (size_t)c->D;
    float *rk = NULL;
    double *s = malloc(sizeof *s * (size_t)c->T), *want = malloc(sizeof *want * row);
    int rc = PB_ENOMEM;
    if (s == NULL || want == NULL || (rc = ref_keys(c, &rk)))
        goto out;
    int64_t n = kn_rows(c->Tq, (int64_t)c->T * (int64_t)row, 4);
    for (int64_t j = 0; j < n; j++) {
        int64_t t = kn_spread(j, n, c->Tq);
        int32_t qp = c->Tq == 1 ? c->T - 1 : (int32_t)t;
        attn_ref_row(c, c->q0 + (size_t)t * row, qp, rk, s, want);
        ps__kn_compare(c->out + (size_t)t * row, want, row, atol, rtol, &o->max_err);
        o->checked += row;
    }
out:
    free(s);
    free(want);
    free(rk);
    return rc;
}

/* ---- attention: prefill (Tq = T) and decode (Tq = 1 at position T-1) ---- */

static void attn_reset(kn_case_t *c)
{
    memcpy(c->q, c->q0, sizeof *c->q * (size_t)c->Tq * (size_t)c->H * (size_t)c->D);
    if (c->Tq > 1) {
        memcpy(c->k, c->k0, sizeof *c->k * (size_t)c->T * (size_t)c->Hk * (size_t)c->D);
        pk_kv_reset(&c->kv);
    }
}

/* Prefill: encode q and k, fill the cache, attend; the encoding's cost is
 * part of what a PE scheme costs. */
static int prefill_body(kn_case_t *c)
{
    size_t ldq = (size_t)c->H * (size_t)c->D, ldk = (size_t)c->Hk * (size_t)c->D;
    if (c->have_rope) {
        pk_rope_apply(c->ctx, &c->rope, c->q, c->T, c->H, ldq, c->pos);
        pk_rope_apply(c->ctx, &c->rope, c->k, c->T, c->Hk, ldk, c->pos);
    }
    int rc = pk_kv_append(c->ctx, &c->kv, c->k, c->v, c->T, ldk, c->pos);
    return rc ? rc : pk_attention(c->ctx, &c->cfg, c->q, c->T, ldq, c->pos, &c->kv, c->out, ldq);
}

/* Decode: encode this step's query, attend over the filled cache. */
static int decode_body(kn_case_t *c)
{
    size_t ldq = (size_t)c->H * (size_t)c->D;
    int32_t qp = c->T - 1;
    if (c->have_rope)
        pk_rope_apply(c->ctx, &c->rope, c->q, 1, c->H, ldq, &qp);
    return pk_attention(c->ctx, &c->cfg, c->q, 1, ldq, &qp, &c->kv, c->out, ldq);
}

/* The encoding's tables: RoPE resolved with a cos/sin cache over the
 * bucket, ALiBi slopes, or a T5 bias table drawn from the RNG. */
static int pe_setup(kn_case_t *c, pb_rng_t *rng, pb_err_t *err)
{
    int rc = 0;
    if (c->pe >= PS_KN_ROPE_PLAIN && c->pe <= PS_KN_ROPE_YARN) {
        pk_rope_cfg_t rc_cfg;
        pk_rope_cfg_default(&rc_cfg, c->D);
        rc_cfg.scaling = c->pe == PS_KN_ROPE_PI    ? PK_ROPE_SCALE_LINEAR
                         : c->pe == PS_KN_ROPE_NTK ? PK_ROPE_SCALE_NTK
                         : c->pe == PS_KN_ROPE_YARN ? PK_ROPE_SCALE_YARN
                                                     : PK_ROPE_SCALE_NONE;
        rc_cfg.factor = c->pe == PS_KN_ROPE_PLAIN ? 1 : 4;
        rc_cfg.orig_max_pos = 512;
        if ((rc = pk_rope_init(&c->rope, &rc_cfg, c->T)))
            return kn_err(rc, "rope init", err);
        c->have_rope = 1;
    } else if (c->pe == PS_KN_ALIBI) {
        if ((rc = pk_alibi_slopes(c->slopes, c->H)))
            return kn_err(rc, "alibi slopes", err);
        c->cfg.bias = (pk_bias_t){.kind = PK_BIAS_ALIBI, .alibi_slopes = c->slopes};
    } else if (c->pe == PS_KN_T5) {
        if ((c->t5 = kn_floats((size_t)KN_T5_BUCKETS * (size_t)c->H)) == NULL)
            return pb_err_set(err, PB_ENOMEM, "", "out of memory");
        kn_fill(rng, c->t5, (size_t)KN_T5_BUCKETS * (size_t)c->H, 1.0f);
        c->cfg.bias = (pk_bias_t){.kind = PK_BIAS_T5, .t5_table = c->t5,
                                  .t5_num_buckets = KN_T5_BUCKETS,
                                  .t5_max_distance = KN_T5_MAX_DISTANCE};
    }
    return 0;
}

static int attn_case(kn_case_t *c, pb_rng_t *rng, int corrupt, ps_kn_outcome_t *o, pb_err_t *err)
{
    const ps_kn_params_t *p = c->p;
    int decode = p->task == PS_KN_DECODE, rc;
    c->H = p->heads, c->Hk = p->kv_heads, c->D = p->head_dim;
    c->Tq = decode ? 1 : c->T;
    size_t nq = (size_t)c->Tq * (size_t)c->H * (size_t)c->D;
    size_t nk = (size_t)c->T * (size_t)c->Hk * (size_t)c->D;
    c->q0 = kn_floats(nq), c->q = kn_floats(nq), c->out = kn_floats(nq);
    c->k0 = kn_floats(nk), c->k = kn_floats(nk), c->v = kn_floats(nk);
    c->pos = malloc(sizeof *c->pos * (size_t)c->T);
    if (!c->q0 || !c->q || !c->out || !c->k0 || !c->k || !c->v || !c->pos)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    /* q at twice the scale of k: softmax rows that are not flat, so a
     * wrong mask or bias shows in the output */
    kn_fill(rng, c->q0, nq, 2.0f);
    kn_fill(rng, c->k0, nk, 1.0f);
    kn_fill(rng, c->v, nk, 1.0f);
    for (int t = 0; t < c->T; t++)
        c->pos[t] = t;
    c->cfg = (pk_attn_cfg_t){.n_heads = c->H, .n_kv_heads = c->Hk, .head_dim = c->D, .causal = 1};
    if ((rc = pe_setup(c, rng, err)))
        return rc;
    if ((rc = pk_kv_init(&c->kv, c->Hk, c->D, c->T, p->bf16 ? PK_BF16 : PK_F32)))
        return kn_err(rc, "kv init", err);
    c->have_kv = 1;
    if (decode) { /* the cache holds T encoded keys before any timing */
        memcpy(c->k, c->k0, sizeof *c->k * nk);
        size_t ldk = (size_t)c->Hk * (size_t)c->D;
        if (c->have_rope)
            pk_rope_apply(c->ctx, &c->rope, c->k, c->T, c->Hk, ldk, c->pos);
        if ((rc = pk_kv_append(c->ctx, &c->kv, c->k, c->v, c->T, ldk, c->pos)))
            return kn_err(rc, "kv append", err);
        o->bytes = 2.0 * (double)nk * (p->bf16 ? 2 : 4);
    } else {
        o->flops = 4.0 * c->D * c->H * ((double)c->T * (c->T + 1) / 2);
    }
    if ((rc = kn_time(c, attn_reset, decode ? decode_body : prefill_body, o, err)))
        return rc;
    if (corrupt)
        c->out[0] += 1.0f;
    return attn_check(c, o) ? pb_err_set(err, PB_ENOMEM, "", "out of memory") : 0;
}

/* ---- RoPE: rotate (T, H, D) in place at positions 0 .. T-1 ---- */

static void rope_reset(kn_case_t *c)
{
    memcpy(c->q, c->q0, sizeof *c->q * (size_t)c->T * (size_t)c->H * (size_t)c->D);
}

static int rope_body(kn_case_t *c)
{
    pk_rope_apply(c->ctx, &c->rope, c->q, c->T, c->H, (size_t)c->H * (size_t)c->D, c->pos);
    return 0;
}

static int rope_case(kn_case_t *c, pb_rng_t *rng, int corrupt, ps_kn_outcome_t *o, pb_err_t *err)
{
    c->H = c->p->heads, c->D = c->p->head_dim;
    size_t row = (size_t)c->H * (size_t)c->D, n = (size_t)c->T * row;
    double want[PK_MAX_HEAD_DIM];
    c->q0 = kn_floats(n), c->q = kn_floats(n);
    c->pos = malloc(sizeof *c->pos * (size_t)c->T);
    if (!c->q0 || !c->q || !c->pos)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    kn_fill(rng, c->q0, n, 1.0f);
    for (int t = 0; t < c->T; t++)
        c->pos[t] = t;
    pk_rope_cfg_t cfg;
    pk_rope_cfg_default(&cfg, c->D);
    int rc = pk_rope_init(&c->rope, &cfg, c->p->cached ? c->T : 0);
    if (rc)
        return kn_err(rc, "rope init", err);
    c->have_rope = 1;
    o->bytes = 2.0 * (double)n * sizeof(float); /* read and written back */
    if ((rc = kn_time(c, rope_reset, rope_body, o, err)))
        return rc;
    if (corrupt)
        c->q[0] += 1.0f;
    int64_t nr = kn_rows(c->T, (int64_t)row * 8, 4);
    for (int64_t j = 0; j < nr; j++) {
        int64_t t = kn_spread(j, nr, c->T);
        for (int h = 0; h < c->H; h++) {
            size_t at = (size_t)t * row + (size_t)h * (size_t)c->D;
            rope_ref(&c->rope, c->q0 + at, (int32_t)t, c->D, want);
            ps__kn_compare(c->q + at, want, (size_t)c->D, 1e-5, 1e-4, &o->max_err);
        }
        o->checked += row;
    }
    return 0;
}

/* ---- similarity: top-k of nq queries over nd documents ---- */

static int sim_body(kn_case_t *c)
{
    return pk_similarity_topk(c->ctx, c->p->cosine ? PK_SIM_COSINE : PK_SIM_DOT, c->q0, c->nq,
                              c->docs, c->nd, c->dim, c->topk, c->idx, c->score);
}

/* Score of query q against document j in double, as the kernel defines it. */
static double sim_ref(const kn_case_t *c, const float *q, int64_t j)
{
    const float *d = c->docs + (size_t)j * (size_t)c->dim;
    double dot = 0, qq = 0, dd = 0;
    for (int i = 0; i < c->dim; i++) {
        dot += (double)q[i] * d[i];
        qq += (double)q[i] * q[i];
        dd += (double)d[i] * d[i];
    }
    if (!c->p->cosine)
        return dot;
    return qq > 0 && dd > 0 ? dot / sqrt(qq * dd) : 0;
}

/* One query's check: the k scores returned equal the k best reference
 * scores rank by rank, and each returned index scores what was returned
 * (ties between near-equal documents may go either way). top: scratch (k). */
static void sim_check_query(const kn_case_t *c, int64_t qi, double *top, ps_kn_outcome_t *o)
{
    const float *q = c->q0 + (size_t)qi * (size_t)c->dim;
    const float *got = c->score + (size_t)qi * (size_t)c->topk;
    const int64_t *ix = c->idx + (size_t)qi * (size_t)c->topk;
    double atol = c->p->cosine ? 1e-5 : 1e-5 * c->dim, rtol = 1e-4;
    int n = 0;
    for (int64_t j = 0; j < c->nd; j++) { /* insertion into the sorted best k */
        double s = sim_ref(c, q, j);
        if (n == c->topk && s <= top[n - 1])
            continue;
        int at = n < c->topk ? n++ : n - 1;
        for (; at > 0 && top[at - 1] < s; at--)
            top[at] = top[at - 1];
        top[at] = s;
    }
    ps__kn_compare(got, top, (size_t)c->topk, atol, rtol, &o->max_err);
    for (int r = 0; r < c->topk; r++) {
        if (ix[r] < 0 || ix[r] >= c->nd) {
            o->max_err = INFINITY;
            return;
        }
        top[r] = sim_ref(c, q, ix[r]);
    }
    ps__kn_compare(got, top, (size_t)c->topk, atol, rtol, &o->max_err);
    o->checked += (size_t)c->topk;
}

static int sim_case(kn_case_t *c, pb_rng_t *rng, int corrupt, ps_kn_outcome_t *o, pb_err_t *err)
{
    const ps_kn_params_t *p = c->p;
    c->nq = p->queries, c->dim = p->dim, c->nd = c->T;
    c->topk = p->topk < c->nd ? p->topk : (int)c->nd;
    size_t nr = (size_t)c->nq * (size_t)c->topk;
    c->q0 = kn_floats((size_t)c->nq * (size_t)c->dim);
    c->docs = kn_floats((size_t)c->nd * (size_t)c->dim);
    c->score = kn_floats(nr);
    c->idx = malloc(sizeof *c->idx * nr);
    double *top = malloc(sizeof *top * (size_t)c->topk);
    int rc;
    if (!c->q0 || !c->docs || !c->score || !c->idx || !top) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    kn_fill(rng, c->q0, (size_t)c->nq * (size_t)c->dim, 1.0f);
    kn_fill(rng, c->docs, (size_t)c->nd * (size_t)c->dim, 1.0f);
    o->flops = 2.0 * c->nq * (double)c->nd * c->dim;
    if ((rc = kn_time(c, NULL, sim_body, o, err)))
        goto out;
    if (corrupt)
        c->score[0] += 1.0f;
    int64_t n = kn_rows(c->nq, c->nd * c->dim, 2);
    for (int64_t j = 0; j < n; j++)
        sim_check_query(c, kn_spread(j, n, c->nq), top, o);
out:
    free(top);
    return rc;
}

int ps__kn_measure_case(const ps_kn_params_t *p, int64_t bucket, int pe, uint64_t key,
                        uint64_t idx, int corrupt, ps_kn_outcome_t *o, pb_err_t *err)
{
    kn_case_t c;
    pb_rng_t rng;
    memset(&c, 0, sizeof c);
    memset(o, 0, sizeof *o);
    if (bucket < 1 || bucket > INT32_MAX || p->reps < 1 || p->reps > PS_KN_MAX_REPS ||
        p->heads > (int)PB_ARRAY_LEN(c.slopes) || p->head_dim > PK_MAX_HEAD_DIM)
        return pb_err_set(err, PB_EINVAL, "", "case out of range");
    c.p = p;
    c.pe = pe;
    c.T = (int)bucket;
    int rc = pk_ctx_create(&c.ctx, p->threads, (pk_isa_t)p->isa);
    if (rc)
        return kn_err(rc, "kernels context", err);
    o->threads = pk_ctx_threads(c.ctx);
    o->isa = pk_isa_name(pk_ctx_isa(c.ctx));
    pb_rng_seed(&rng, key, idx);
    switch (p->task) {
    case PS_KN_ATTENTION:
    case PS_KN_DECODE:
        rc = attn_case(&c, &rng, corrupt, o, err);
        break;
    case PS_KN_ROPE:
        rc = rope_case(&c, &rng, corrupt, o, err);
        break;
    case PS_KN_SIMILARITY:
        rc = sim_case(&c, &rng, corrupt, o, err);
        break;
    default:
        rc = pb_err_set(err, PB_EINVAL, "", "unknown kernels task");
    }
    o->ok = rc == 0 && o->checked > 0 && o->max_err <= 1.0;
    kn_free(&c);
    return rc;
}
