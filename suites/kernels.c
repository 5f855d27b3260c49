/* The kernels suite: performance of posbench's own kernels on the worker's
 * testbed, for nightly regression runs. An item is one benchmark case
 * (prefill attention per PE scheme, decode attention, RoPE, similarity
 * top-k at a bucket's size) that the runner measures through suite.h's
 * measure hook instead of asking a model (kernels_bench.c times it); the
 * score says whether the output matched the scalar reference. */
#include "suites/suite.h"
#include "suites/suite_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"
#include "kernels/kernels.h"
#include "suites/kernels_int.h"

static const ps_task_def_t kn_tasks[] = {
    {"attention", "causal prefill attention over a bucket of tokens, the PE scheme's encoding "
                  "(RoPE rotation, ALiBi or T5 bias) included, and the KV cache filled", NULL},
    {"decode", "one-token decode attention over a KV cache of a bucket of tokens", NULL},
    {"rope", "RoPE applied in place to (bucket tokens, heads, head_dim)", NULL},
    {"similarity", "top-k similarity of a few queries over a bucket of document vectors",
     "vectors"},
};

/* Per-item metrics; the kinds tell the regression detector what "worse" is. */
enum { KM_MEDIAN, KM_MIN, KM_P25, KM_P75, KM_SPREAD, KM_GFLOPS, KM_GBPS, KM_N };
static const char *const kn_metrics[] = {"median_us", "min_us", "p25_us", "p75_us",
                                         "spread",    "gflops", "gbps",   NULL};
static const unsigned char kn_metric_kinds[] = {PS_KIND_LOWER, PS_KIND_INFO, PS_KIND_INFO,
                                                PS_KIND_INFO,  PS_KIND_INFO, PS_KIND_HIGHER,
                                                PS_KIND_HIGHER};

static const char *const kn_isa_names[] = {"auto", "scalar", "avx2", "avx512"};
static const char *const kn_sim_names[] = {"dot", "cosine"};
static const char *const kn_dtype_names[] = {"f32", "bf16"};
/* Bucket defaults: a 2-core run of a task takes seconds. */
static const int64_t kn_def_attention[] = {256, 512, 1024, 2048};
static const int64_t kn_def_decode[] = {1024, 4096, 16384};
static const int64_t kn_def_rope[] = {256, 1024, 4096, 16384};
static const int64_t kn_def_similarity[] = {1000, 10000, 100000};

#define KN_MAX_TOKENS 65536
#define KN_MAX_VECTORS 1000000

static int kn_kind(const char *task)
{
    for (int i = 0; task && i < (int)PB_ARRAY_LEN(kn_tasks); i++)
        if (strcmp(kn_tasks[i].name, task) == 0)
            return i;
    return -1;
}

static int is_attn(int task) { return task == PS_KN_ATTENTION || task == PS_KN_DECODE; }

static const char *bucket_key(int task) { return task == PS_KN_SIMILARITY ? "vectors" : "lengths"; }

static void kn_defaults(int task, const int64_t **v, size_t *n)
{
    switch (task) {
    case PS_KN_ATTENTION: *v = kn_def_attention, *n = PB_ARRAY_LEN(kn_def_attention); break;
    case PS_KN_DECODE: *v = kn_def_decode, *n = PB_ARRAY_LEN(kn_def_decode); break;
    case PS_KN_ROPE: *v = kn_def_rope, *n = PB_ARRAY_LEN(kn_def_rope); break;
    default: *v = kn_def_similarity, *n = PB_ARRAY_LEN(kn_def_similarity); break;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The bucket list (lengths or vectors): integers in [1, max], sorted and
 * de-duplicated; absent gives the task's defaults. */
static int parse_buckets(const json_t *params, ps_kn_params_t *p, pb_err_t *err)
{
    const char *key = bucket_key(p->task);
    const json_t *v = params ? json_object_get(params, key) : NULL;
    int64_t max = p->task == PS_KN_SIMILARITY ? KN_MAX_VECTORS : KN_MAX_TOKENS;
    size_t n = 0;
    if (v == NULL || json_is_null(v)) {
        const int64_t *d;
        kn_defaults(p->task, &d, &n);
        memcpy(p->buckets, d, sizeof *d * n);
    } else if (json_is_array(v) && json_array_size(v) >= 1 &&
               json_array_size(v) <= PS_KN_MAX_BUCKETS) {
        for (; n < json_array_size(v); n++)
            if (pb_json_as_int(json_array_get(v, n), &p->buckets[n]))
                break;
    } else if (pb_json_as_int(v, &p->buckets[0]) == 0) {
        n = 1;
    }
    if (n == 0 || (json_is_array(v) && n != json_array_size(v)))
        return pb_err_set(err, PB_EINVAL, key,
                          "%s must be a non-empty list of at most %d integers (or one integer)",
                          key, PS_KN_MAX_BUCKETS);
    for (size_t i = 0; i < n; i++)
        if (p->buckets[i] < 1 || p->buckets[i] > max)
            return pb_err_set(err, PB_EINVAL, key, "%s must lie in [1, %lld] (got %lld)", key,
                              (long long)max, (long long)p->buckets[i]);
    qsort(p->buckets, n, sizeof p->buckets[0], cmp_i64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || p->buckets[k - 1] != p->buckets[i])
            p->buckets[k++] = p->buckets[i];
    p->n_buckets = (int)k;
    return 0;
}

static int pe_lookup(const char *s)
{
    if (strcmp(s, "none") == 0)
        return PS_KN_NOPE;
    for (int i = 0; i < PS_KN_N_PE; i++)
        if (strcmp(s, ps__kn_pe_name(i)) == 0)
            return i;
    return -1;
}

/* pe: one scheme or a list of distinct ones ("none" is "nope"). */
static int parse_pe(const json_t *params, ps_kn_params_t *p, pb_err_t *err)
{
    const json_t *v = params ? json_object_get(params, "pe") : NULL;
    const char *what = "pe must be one of nope, rope, rope-pi, rope-ntk, rope-yarn, alibi, t5 "
                       "or a non-empty list of distinct ones";
    if (v == NULL || json_is_null(v)) {
        p->pe[0] = PS_KN_ROPE_PLAIN;
        p->n_pe = 1;
        return 0;
    }
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n == 0 || n > PS_KN_N_PE)
        return pb_err_set(err, PB_EINVAL, "pe", "%s", what);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_is_array(v) ? json_array_get(v, i) : v);
        int pe = s ? pe_lookup(s) : -1;
        for (size_t j = 0; pe >= 0 && j < i; j++)
            if (p->pe[j] == pe)
                pe = -1;
        if (pe < 0)
            return pb_err_set(err, PB_EINVAL, "pe", "%s (got %s)", what, s ? s : "a non-string");
        p->pe[i] = pe;
    }
    p->n_pe = (int)n;
    return 0;
}

/* A string param out of names (n of them); err names the field. */
static int parse_enum(const json_t *params, const char *key, const char *dflt,
                      const char *const *names, int n, int *out, pb_err_t *err)
{
    const char *s;
    int rc = pb_json_str(params, key, dflt, 0, &s, "", err);
    if (rc)
        return rc;
    for (*out = 0; *out < n; (*out)++)
        if (strcmp(s, names[*out]) == 0)
            return 0;
    return pb_err_set(err, PB_EINVAL, key, "%s: unknown value \"%s\"", key, s);
}

static int parse_int(const json_t *params, const char *key, int64_t dflt, int64_t min,
                     int64_t max, int *out, pb_err_t *err)
{
    int64_t v;
    int rc = pb_json_int(params, key, dflt, min, max, &v, "", err);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

/* The keys each task takes. */
static const char *const kn_keys[][12] = {
    {"lengths", "pe", "heads", "kv_heads", "head_dim", "dtype", "reps", "warmup", "threads",
     "isa", NULL},
    {"lengths", "pe", "heads", "kv_heads", "head_dim", "dtype", "reps", "warmup", "threads",
     "isa", NULL},
    {"lengths", "heads", "head_dim", "cached", "reps", "warmup", "threads", "isa", NULL},
    {"vectors", "queries", "dim", "k", "sim", "reps", "warmup", "threads", "isa", NULL},
};

/* The shape params of a task; err->field is the param name. */
static int parse_shape(const json_t *params, ps_kn_params_t *p, pb_err_t *err)
{
    int rc;
    if (p->task == PS_KN_SIMILARITY) {
        if ((rc = parse_int(params, "queries", 16, 1, 4096, &p->queries, err)) ||
            (rc = parse_int(params, "dim", 128, 1, 4096, &p->dim, err)) ||
            (rc = parse_int(params, "k", 10, 1, 1000, &p->topk, err)) ||
            (rc = parse_enum(params, "sim", "dot", kn_sim_names, 2, &p->cosine, err)))
            return rc;
        if (p->buckets[p->n_buckets - 1] * p->dim > PS_KN_MAX_FLOATS)
            return pb_err_set(err, PB_EINVAL, "vectors",
                              "vectors x dim must stay within %lld floats",
                              (long long)PS_KN_MAX_FLOATS);
        return 0;
    }
    if ((rc = parse_int(params, "heads", 8, 1, 256, &p->heads, err)) ||
        (rc = parse_int(params, "head_dim", 64, 2, 256, &p->head_dim, err)))
        return rc;
    if (p->head_dim % 2)
        return pb_err_set(err, PB_EINVAL, "head_dim", "head_dim must be even (RoPE pairs)");
    p->kv_heads = p->heads;
    if (p->task == PS_KN_ROPE)
        rc = pb_json_bool(params, "cached", 0, &p->cached, "", err);
    else if ((rc = parse_int(params, "kv_heads", 0, 0, p->heads, &p->kv_heads, err)) == 0 &&
             (rc = parse_enum(params, "dtype", "f32", kn_dtype_names, 2, &p->bf16, err)) == 0 &&
             (rc = parse_pe(params, p, err)) == 0) {
        p->kv_heads = p->kv_heads ? p->kv_heads : p->heads;
        if (p->heads % p->kv_heads)
            return pb_err_set(err, PB_EINVAL, "kv_heads", "kv_heads must divide heads (%d)",
                              p->heads);
    }
    if (rc)
        return rc;
    if (p->buckets[p->n_buckets - 1] * p->heads * p->head_dim > PS_KN_MAX_FLOATS)
        return pb_err_set(err, PB_EINVAL, "lengths",
                          "lengths x heads x head_dim must stay within %lld floats",
                          (long long)PS_KN_MAX_FLOATS);
    return 0;
}

/* Validate params (NULL = all defaults) into p. err->field is the param name. */
static int kn_parse(const char *task, const json_t *params, ps_kn_params_t *p, pb_err_t *err)
{
    int rc;
    memset(p, 0, sizeof *p);
    p->task = kn_kind(task);
    if (p->task < 0)
        return pb_err_set(err, PB_EINVAL, "", "unknown kernels task \"%s\"", task ? task : "");
    if (params != NULL && !json_is_object(params))
        return pb_err_set(err, PB_EINVAL, "", "params must be an object");
    if ((rc = pb_json_only_keys(params, kn_keys[p->task], "", err)) ||
        (rc = parse_buckets(params, p, err)) ||
        (rc = parse_int(params, "reps", 7, 3, PS_KN_MAX_REPS, &p->reps, err)) ||
        (rc = parse_int(params, "warmup", 1, 0, PS_KN_MAX_WARMUP, &p->warmup, err)) ||
        (rc = parse_int(params, "threads", 0, 0, 256, &p->threads, err)) ||
        (rc = parse_enum(params, "isa", "auto", kn_isa_names, 4, &p->isa, err)))
        return rc;
    p->isa -= 1; /* "auto" is PK_ISA_AUTO (-1), then scalar, avx2, avx512 */
    return parse_shape(params, p, err);
}

/* schema[name] = {"type", "default", "description"} and min/max when max > min. */
static int add_param(json_t *schema, const char *name, const char *type, json_t *dflt,
                     const char *desc, int64_t min, int64_t max)
{
    json_t *v = json_pack("{s:s, s:o, s:s}", "type", type, "default", dflt, "description", desc);
    int bad = v == NULL;
    if (!bad && max > min)
        bad = json_object_set_new(v, "min", json_integer(min)) ||
              json_object_set_new(v, "max", json_integer(max));
    if (bad) {
        json_decref(v);
        return 1;
    }
    return json_object_set_new(schema, name, v) != 0;
}

/* schema[name]["values"] = names[0, n): what an enum param accepts. */
static int add_values(json_t *schema, const char *name, const char *const *names, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(names[i]))) {
            json_decref(a);
            a = NULL;
        }
    return a == NULL || json_object_set_new(json_object_get(schema, name), "values", a);
}

static json_t *int_list(const int64_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *kn_schema(const char *task)
{
    int k = kn_kind(task), bad = 0;
    json_t *s = k < 0 ? NULL : json_object();
    if (s == NULL)
        return NULL;
    const int64_t *d;
    size_t nd;
    kn_defaults(k, &d, &nd);
    bad |= add_param(s, bucket_key(k), "integer_list", int_list(d, nd),
                     k == PS_KN_SIMILARITY ? "document counts, one bucket each (at most 16)"
                                           : "sequence lengths in tokens, one bucket each (at "
                                             "most 16)",
                     1, k == PS_KN_SIMILARITY ? KN_MAX_VECTORS : KN_MAX_TOKENS);
    bad |= add_param(s, "reps", "integer", json_integer(7),
                     "timed repetitions per item: medians and quartiles are over these", 3,
                     PS_KN_MAX_REPS);
    bad |= add_param(s, "warmup", "integer", json_integer(1), "untimed runs before the timed ones",
                     0, PS_KN_MAX_WARMUP);
    bad |= add_param(s, "threads", "integer", json_integer(0),
                     "kernel threads; 0: the worker's online CPUs", 0, 256);
    bad |= add_param(s, "isa", "enum", json_pack("s", "auto"),
                     "auto, scalar, avx2 or avx512: the kernels' code path (one the CPU lacks "
                     "fails the task there)", 0, 0);
    bad |= add_values(s, "isa", kn_isa_names, 4);
    if (k == PS_KN_SIMILARITY) {
        bad |= add_param(s, "queries", "integer", json_integer(16), "queries per case", 1, 4096);
        bad |= add_param(s, "dim", "integer", json_integer(128), "vector dimension", 1, 4096);
        bad |= add_param(s, "k", "integer", json_integer(10), "results kept per query", 1, 1000);
        bad |= add_param(s, "sim", "enum", json_pack("s", "dot"), "dot or cosine", 0, 0);
        bad |= add_values(s, "sim", kn_sim_names, 2);
        return bad ? (json_decref(s), NULL) : s;
    }
    bad |= add_param(s, "heads", "integer", json_integer(8), "query heads", 1, 256);
    bad |= add_param(s, "head_dim", "integer", json_integer(64), "head dimension (even)", 2, 256);
    if (k == PS_KN_ROPE) {
        bad |= add_param(s, "cached", "boolean", json_false(),
                         "rotate from a cos/sin table of the bucket's positions instead of "
                         "computing them per call", 0, 0);
    } else {
        bad |= add_param(s, "kv_heads", "integer", json_integer(0),
                         "KV heads (grouped-query attention); 0: heads", 0, 256);
        bad |= add_param(s, "dtype", "enum", json_pack("s", "f32"),
                         "KV cache type: f32 or bf16", 0, 0);
        bad |= add_values(s, "dtype", kn_dtype_names, 2);
        bad |= add_param(s, "pe", "string_list", json_pack("s", "rope"),
                         "PE scheme, or a list of them that items cycle through (item i uses "
                         "the (i mod n)-th, recorded in its meta; a series per scheme wants a "
                         "run per scheme): nope (none), rope, rope-pi, rope-ntk, rope-yarn (x4, "
                         "trained length 512), alibi, t5",
                         0, 0);
        const char *pes[PS_KN_N_PE];
        for (int i = 0; i < PS_KN_N_PE; i++)
            pes[i] = ps__kn_pe_name(i);
        bad |= add_values(s, "pe", pes, PS_KN_N_PE);
    }
    return bad ? (json_decref(s), NULL) : s;
}

static int kn_normalize(const char *task, const json_t *params, json_t **out, pb_err_t *err)
{
    ps_kn_params_t p;
    *out = NULL;
    int rc = kn_parse(task, params, &p, err);
    if (rc)
        return rc;
    json_t *o = json_pack("{s:o, s:i, s:i, s:i, s:s}", bucket_key(p.task),
                          int_list(p.buckets, (size_t)p.n_buckets), "reps", p.reps, "warmup",
                          p.warmup, "threads", p.threads, "isa", kn_isa_names[p.isa + 1]);
    int bad = o == NULL;
    if (!bad && p.task == PS_KN_SIMILARITY) {
        bad |= json_object_set_new(o, "queries", json_integer(p.queries));
        bad |= json_object_set_new(o, "dim", json_integer(p.dim));
        bad |= json_object_set_new(o, "k", json_integer(p.topk));
        bad |= json_object_set_new(o, "sim", json_string(kn_sim_names[p.cosine]));
    } else if (!bad) {
        bad |= json_object_set_new(o, "heads", json_integer(p.heads));
        bad |= json_object_set_new(o, "head_dim", json_integer(p.head_dim));
    }
    if (!bad && p.task == PS_KN_ROPE)
        bad |= json_object_set_new(o, "cached", json_boolean(p.cached));
    if (!bad && is_attn(p.task)) {
        json_t *pe = json_array();
        for (int i = 0; pe && i < p.n_pe; i++)
            json_array_append_new(pe, json_string(ps__kn_pe_name(p.pe[i])));
        bad |= json_object_set_new(o, "pe", pe);
        bad |= json_object_set_new(o, "kv_heads", json_integer(p.kv_heads));
        bad |= json_object_set_new(o, "dtype", json_string(kn_dtype_names[p.bf16]));
    }
    if (bad) {
        json_decref(o);
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    }
    *out = o;
    return 0;
}

static int kn_buckets(const char *task, const json_t *params, int64_t **out, size_t *n)
{
    ps_kn_params_t p;
    *out = NULL;
    *n = 0;
    int rc = kn_parse(task, params, &p, NULL);
    return rc ? rc : ps__copy_buckets(p.buckets, (size_t)p.n_buckets, out, n);
}

/* kn_parse as ps__prepare_parsed calls it. */
static int kn_parse_state(const char *task, const json_t *params, void *out)
{
    return kn_parse(task, params, out, NULL);
}

static int kn_prepare(ps_run_t *run)
{
    return ps__prepare_parsed(run, sizeof(ps_kn_params_t), kn_parse_state);
}

static int kn_item_pe(const ps_kn_params_t *p, uint64_t idx)
{
    return p->n_pe ? p->pe[idx % (uint64_t)p->n_pe] : PS_KN_NOPE;
}

/* An item is a case: the prompt names it, meta records its shape and how
 * it is timed; the inputs come from the RNG when it is measured. */
static int kn_generate(const ps_run_t *run, uint64_t idx, ps_item_t *out)
{
    const ps_kn_params_t *p = run->state;
    pb_buf_t prompt, ref;
    int rc = PB_ENOMEM;
    memset(out, 0, sizeof *out);
    pb_buf_init(&prompt, 4096);
    pb_buf_init(&ref, 64);
    if (p == NULL)
        return PB_EINVAL;
    const char *isa = kn_isa_names[p->isa + 1];
    if (p->task == PS_KN_SIMILARITY) {
        out->meta = json_pack("{s:I, s:i, s:i, s:i, s:s}", "vectors", (json_int_t)run->bucket,
                              "queries", p->queries, "dim", p->dim, "k", p->topk, "sim",
                              kn_sim_names[p->cosine]);
        rc = pb_buf_printf(&prompt, "similarity %s vectors=%lld queries=%d dim=%d k=%d",
                           kn_sim_names[p->cosine], (long long)run->bucket, p->queries, p->dim, p->topk);
    } else {
        out->meta = json_pack("{s:I, s:i, s:i}", "tokens", (json_int_t)run->bucket, "heads",
                              p->heads, "head_dim", p->head_dim);
        rc = pb_buf_printf(&prompt, "%s tokens=%lld heads=%d head_dim=%d", run->task,
                           (long long)run->bucket, p->heads, p->head_dim);
    }
    int bad = rc || out->meta == NULL;
    if (!bad && is_attn(p->task)) {
        const char *pe = ps__kn_pe_name(kn_item_pe(p, idx)), *dt = kn_dtype_names[p->bf16];
        bad |= json_object_set_new(out->meta, "pe", json_string(pe));
        bad |= json_object_set_new(out->meta, "kv_heads", json_integer(p->kv_heads));
        bad |= json_object_set_new(out->meta, "dtype", json_string(dt));
        bad |= pb_buf_printf(&prompt, " kv_heads=%d dtype=%s pe=%s", p->kv_heads, dt, pe);
    }
    if (!bad && p->task == PS_KN_ROPE) {
        bad |= json_object_set_new(out->meta, "cached", json_boolean(p->cached));
        bad |= pb_buf_printf(&prompt, " cached=%d", p->cached);
    }
    if (!bad) {
        bad |= json_object_set_new(out->meta, "reps", json_integer(p->reps));
        bad |= json_object_set_new(out->meta, "warmup", json_integer(p->warmup));
        bad |= json_object_set_new(out->meta, "threads", json_integer(p->threads));
        bad |= json_object_set_new(out->meta, "isa", json_string(isa));
        bad |= pb_buf_printf(&prompt, " reps=%d warmup=%d threads=%d isa=%s", p->reps,
                             p->warmup, p->threads, isa);
        /* the gold answer: the output matches the scalar reference */
        bad |= pb_buf_puts(&ref, "ok");
    }
    rc = bad ? PB_ENOMEM : 0;
    if (rc == 0)
        ps__item_finish(out, run, idx, run->bucket, &prompt, &ref);
    pb_buf_free(&prompt);
    pb_buf_free(&ref);
    if (rc)
        ps_item_clear(out);
    return rc;
}

/* A number of the prediction, or null where it is not finite. */
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void outcome_metrics(const ps_kn_outcome_t *o, double *m)
{
    m[KM_MEDIAN] = o->median_us;
    m[KM_MIN] = o->min_us;
    m[KM_P25] = o->p25_us;
    m[KM_P75] = o->p75_us;
    m[KM_SPREAD] = o->median_us > 0 ? (o->p75_us - o->p25_us) / o->median_us : NAN;
    /* work per microsecond x 1e-3 = per second x 1e-9 */
    m[KM_GFLOPS] = o->flops > 0 && o->median_us > 0 ? o->flops / o->median_us * 1e-3 : NAN;
    m[KM_GBPS] = o->bytes > 0 && o->median_us > 0 ? o->bytes / o->median_us * 1e-3 : NAN;
}

static int kn_measure(const ps_run_t *run, const ps_item_t *item, char **prediction,
                      double *score, double *metrics, pb_err_t *err)
{
    const ps_kn_params_t *p = run->state;
    double m[KM_N];
    json_t *j = NULL;
    *prediction = NULL;
    /* 8 KiB of timings: off the runner thread's stack */
    ps_kn_outcome_t *o = malloc(sizeof *o);
    int rc = o ? 0 : pb_err_set(err, PB_ENOMEM, "", "out of memory");
    if (rc == 0 && p == NULL)
        rc = pb_err_set(err, PB_EINVAL, "", "kernels run not prepared");
    if (rc == 0)
        rc = ps__kn_measure_case(p, run->bucket, kn_item_pe(p, item->idx), run->key, item->idx,
                                 0, o, err);
    if (rc)
        goto out;
    outcome_metrics(o, m);
    j = json_object();
    int bad = j == NULL || json_object_set_new(j, "ok", json_boolean(o->ok));
    for (int k = 0; !bad && k < KM_N; k++)
        bad |= json_object_set_new(j, kn_metrics[k], num(m[k]));
    if (!bad)
        bad |= json_object_set_new(j, "max_err", num(o->max_err)) ||
               json_object_set_new(j, "checked", json_integer((json_int_t)o->checked)) ||
               json_object_set_new(j, "threads", json_integer(o->threads)) ||
               json_object_set_new(j, "isa", json_string(o->isa));
    if (bad || (*prediction = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6))) == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    *score = o->ok ? 1.0 : 0.0;
    if (metrics)
        memcpy(metrics, m, sizeof m);
out:
    json_decref(j);
    free(o);
    return rc;
}

/* Re-scoring a stored prediction reads back what measure wrote. */
static int kn_score(const ps_run_t *run, const ps_item_t *item, const char *prediction,
                    double *score, double *metrics)
{
    (void)run, (void)item;
    json_t *j = json_loads(prediction ? prediction : "", 0, NULL);
    *score = json_is_true(json_object_get(j, "ok")) ? 1.0 : 0.0;
    for (int k = 0; metrics && k < KM_N; k++) {
        json_t *v = json_object_get(j, kn_metrics[k]);
        metrics[k] = json_is_number(v) ? json_number_value(v) : NAN;
    }
    json_decref(j);
    return 0;
}

/* accuracy (outputs that checked out), n, and median_us_total: the sum over
 * buckets of each bucket's mean median, one number for "the whole task". */
static json_t *kn_aggregate(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                            size_t n)
{
    (void)task, (void)params;
    double sum = 0, cnt = 0, total = 0;
    int have = 0;
    for (size_t i = 0; i < n; i++) {
        sum += stats[i].score_sum;
        cnt += stats[i].n;
        if (stats[i].metric_sum && stats[i].metric_n && stats[i].metric_n[KM_MEDIAN] > 0) {
            total += stats[i].metric_sum[KM_MEDIAN] / stats[i].metric_n[KM_MEDIAN];
            have = 1;
        }
    }
    json_t *agg = ps__accuracy_json(sum, cnt);
    if (agg && json_object_set_new(agg, "median_us_total", have ? json_real(total) : json_null())) {
        json_decref(agg);
        return NULL;
    }
    return agg;
}

static const char *const kn_breakdown[] = {"pe", NULL};

const ps_suite_t ps__suite_kernels = {
    .name = "kernels",
    .description =
        "Performance of posbench's kernels on the worker: prefill attention per PE scheme, "
        "decode attention, RoPE and similarity top-k, one case per item timed over reps runs "
        "after warm-up (median, min, quartiles, spread, GFLOP/s or GB/s). The score is 1 when "
        "the output matches a scalar reference on the same inputs. Inputs are deterministic "
        "in (run, item); timings are not, and depend on the worker's testbed. Submit with any "
        "model spec (e.g. {\"name\": \"kernels-cpu\", \"backend\": \"oracle\"}): no model is "
        "asked, its name only labels the series; one case per bucket by default",
    .version = 1,
    .bucket_unit = "tokens",
    .tasks = kn_tasks,
    .n_tasks = PB_ARRAY_LEN(kn_tasks),
    .breakdown = kn_breakdown,
    .default_samples = 1, /* one case per bucket; repetitions are params.reps */
    .metrics = kn_metrics,
    .metric_kinds = kn_metric_kinds,
    .schema = kn_schema,
    .normalize = kn_normalize,
    .buckets = kn_buckets,
    .prepare = kn_prepare,
    .release = ps__release_state,
    .generate = kn_generate,
    .score = kn_score,
    .measure = kn_measure,
    .aggregate = kn_aggregate,
};
