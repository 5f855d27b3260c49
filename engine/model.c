/* engine/model.c: a model from a checkpoint: config.json to dimensions, the
 * PE spec (checkpoint's own or a job's override) to kernel parameters, and
 * tensors to weight pointers (f32 in place; bf16/f16 converted once to f32,
 * kept in m->owned). The forward pass is in forward.c.
 *
 * posbench's research config.json: {"architectures":
 * ["PosbenchResearchForCausalLM"], "vocab_size", "hidden_size",
 * "num_hidden_layers", "num_attention_heads", "num_key_value_heads"
 * (default = heads), "intermediate_size", "max_position_embeddings",
 * "rms_norm_eps" (1e-5), "tie_word_embeddings" (false), "pe": a spec as
 * pe_pe_validate accepts (t5 adds "num_buckets" 32, "max_distance" 128)}.
 * Tensors are named as Llama's (RMSNorm, SwiGLU, no biases) plus
 * model.embed_positions.weight (max_pos, d) for "ape" and
 * model.rel_attn_bias.weight (num_buckets, n_heads) for "t5". */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model_int.h"

#define DT_FLOAT ((1u << PE_F32) | (1u << PE_F16) | (1u << PE_BF16))
#define MAX_DIM (1 << 20)

/* ---- PE specs ------------------------------------------------------------ */

static int num_field(const json_t *o, const char *key, const char *field, double lo, double *v,
                     pb_err_t *err)
{
    const json_t *j = json_object_get(o, key);
    if (!j)
        return 0;
    if (!json_is_number(j) || !isfinite(json_number_value(j)) || json_number_value(j) < lo)
        return pb_err_set(err, PB_EINVAL, field, "%s must be a number >= %g", field, lo);
    *v = json_number_value(j);
    return 0;
}

static int int_field(const json_t *o, const char *key, const char *field, int lo, int *v,
                     pb_err_t *err)
{
    const json_t *j = json_object_get(o, key);
    if (!j)
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > MAX_DIM)
        return pb_err_set(err, PB_EINVAL, field, "%s must be an integer in [%d, %d]", field, lo,
                          MAX_DIM);
    *v = (int)json_integer_value(j);
    return 0;
}

/* Every key of o must be in allowed (NULL-terminated). */
static int only_keys(const json_t *o, const char *const *allowed, const char *field,
                     pb_err_t *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(k, allowed[i]);
        if (!ok)
            return pb_err_set(err, PB_EINVAL, field, "%s: unknown key \"%s\"", field, k);
    }
    return 0;
}

static int parse_scaling(const json_t *s, pe__pespec_t *p, pb_err_t *err)
{
    static const char *const keys[] = {"type", "factor", "original_max_position", "beta_fast",
                                       "beta_slow", "attn_factor", "truncate", NULL};
    static const struct { const char *name; pk_rope_scaling_t v; } types[] = {
        {"none", PK_ROPE_SCALE_NONE}, {"linear", PK_ROPE_SCALE_LINEAR},
        {"ntk", PK_ROPE_SCALE_NTK}, {"dynamic", PK_ROPE_SCALE_DYNAMIC_NTK},
        {"yarn", PK_ROPE_SCALE_YARN}, {"truncate", PK_ROPE_SCALE_TRUNCATE}};
    if (!json_is_object(s))
        return pb_err_set(err, PB_EINVAL, "pe.scaling", "pe.scaling must be an object");
    int rc = only_keys(s, keys, "pe.scaling", err);
    if (rc)
        return rc;
    const char *t = json_string_value(json_object_get(s, "type"));
    if (!t)
        return pb_err_set(err, PB_EINVAL, "pe.scaling.type", "pe.scaling.type is required");
    size_t i = 0;
    while (i < PB_ARRAY_LEN(types) && strcmp(types[i].name, t))
        i++;
    if (i == PB_ARRAY_LEN(types))
        return pb_err_set(err, PB_EINVAL, "pe.scaling.type",
                          "pe.scaling.type \"%s\" is not none/linear/ntk/dynamic/yarn/truncate", t);
    p->has_scaling = 1;
    p->scaling = types[i].v;
    if ((rc = num_field(s, "factor", "pe.scaling.factor", 1.0, &p->factor, err)) ||
        (rc = int_field(s, "original_max_position", "pe.scaling.original_max_position", 1,
                        &p->orig_max, err)) ||
        (rc = num_field(s, "beta_fast", "pe.scaling.beta_fast", 1e-9, &p->beta_fast, err)) ||
        (rc = num_field(s, "beta_slow", "pe.scaling.beta_slow", 1e-9, &p->beta_slow, err)) ||
        (rc = num_field(s, "attn_factor", "pe.scaling.attn_factor", 1e-9, &p->attn_factor,
                        err)) ||
        (rc = num_field(s, "truncate", "pe.scaling.truncate", 1e-9, &p->truncate, err)))
        return rc;
    if ((p->scaling == PK_ROPE_SCALE_YARN || p->scaling == PK_ROPE_SCALE_DYNAMIC_NTK) &&
        p->orig_max <= 0)
        return pb_err_set(err, PB_EINVAL, "pe.scaling.original_max_position",
                          "pe.scaling.original_max_position is required for %s", t);
    if (p->scaling == PK_ROPE_SCALE_TRUNCATE && !json_object_get(s, "truncate"))
        return pb_err_set(err, PB_EINVAL, "pe.scaling.truncate",
                          "pe.scaling.truncate is required for truncate");
    return 0;
}

int pe__pespec_parse(const json_t *pe, const char *field, pe__pespec_t *p, pb_err_t *err)
{
    static const char *const keys[] = {"type", "theta", "rot_dims", "scaling", "sinusoidal",
                                       "num_buckets", "max_distance", NULL};
    static const char *const kinds[] = {"nope", "ape", "ape", "rope", "alibi", "t5"};
    memset(p, 0, sizeof *p);
    p->factor = 1.0;
    p->beta_fast = 32.0;
    p->beta_slow = 1.0;
    p->attn_factor = 1.0;
    p->num_buckets = 32;
    p->max_distance = 128;
    if (!json_is_object(pe))
        return pb_err_set(err, PB_EINVAL, field, "%s must be an object", field);
    int rc = only_keys(pe, keys, field, err);
    if (rc)
        return rc;
    const char *t = json_string_value(json_object_get(pe, "type"));
    if (!t)
        return pb_err_set(err, PB_EINVAL, "pe.type", "pe.type is required");
    size_t i = 0;
    while (i < PB_ARRAY_LEN(kinds) && strcmp(kinds[i], t))
        i++;
    if (i == PB_ARRAY_LEN(kinds))
        return pb_err_set(err, PB_EINVAL, "pe.type",
                          "pe.type \"%s\" is not nope/ape/rope/alibi/t5", t);
    p->kind = (pe_pe_kind_t)i;
    const json_t *sin = json_object_get(pe, "sinusoidal");
    if (sin && !json_is_boolean(sin))
        return pb_err_set(err, PB_EINVAL, "pe.sinusoidal", "pe.sinusoidal must be a boolean");
    if (json_is_true(sin)) {
        if (p->kind != PE_PE_APE)
            return pb_err_set(err, PB_EINVAL, "pe.sinusoidal", "pe.sinusoidal needs type ape");
        p->kind = PE_PE_APE_SIN;
    }
    int rope = p->kind == PE_PE_ROPE;
    if (!rope && (json_object_get(pe, "theta") || json_object_get(pe, "rot_dims") ||
                  json_object_get(pe, "scaling")))
        return pb_err_set(err, PB_EINVAL, "pe.type",
                          "pe.theta, pe.rot_dims and pe.scaling need type rope, not %s", t);
    if (p->kind != PE_PE_T5 &&
        (json_object_get(pe, "num_buckets") || json_object_get(pe, "max_distance")))
        return pb_err_set(err, PB_EINVAL, "pe.type",
                          "pe.num_buckets and pe.max_distance need type t5, not %s", t);
    p->has_theta = json_object_get(pe, "theta") != NULL;
    p->theta = 10000.0;
    if ((rc = num_field(pe, "theta", "pe.theta", 1.0 + 1e-9, &p->theta, err)) ||
        (rc = int_field(pe, "rot_dims", "pe.rot_dims", 0, &p->rot_dims, err)) ||
        (rc = int_field(pe, "num_buckets", "pe.num_buckets", 1, &p->num_buckets, err)) ||
        (rc = int_field(pe, "max_distance", "pe.max_distance", 1, &p->max_distance, err)))
        return rc;
    if (p->rot_dims % 2)
        return pb_err_set(err, PB_EINVAL, "pe.rot_dims", "pe.rot_dims must be even");
    if (json_object_get(pe, "scaling"))
        return parse_scaling(json_object_get(pe, "scaling"), p, err);
    return 0;
}

int pe_pe_validate(const json_t *pe, pb_err_t *err)
{
    pe__pespec_t p;
    return pe__pespec_parse(pe, "pe", &p, err);
}

/* ---- config.json ----------------------------------------------------------- */

/* An integer config key; def < 0 means required. */
int pe__cfg_int(const json_t *cfg, const char *key, int def, int lo, int *v, pb_err_t *err)
{
    const json_t *j = json_object_get(cfg, key);
    if (!j || json_is_null(j)) {
        if (def < 0)
            return pb_err_set(err, PB_EPARSE, key, "config.json: %s is required", key);
        *v = def;
        return 0;
    }
    if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > MAX_DIM)
        return pb_err_set(err, PB_EPARSE, key, "config.json: %s must be an integer in [%d, %d]",
                          key, lo, MAX_DIM);
    *v = (int)json_integer_value(j);
    return 0;
}

double pe__cfg_num(const json_t *cfg, const char *key, double def)
{
    const json_t *j = json_object_get(cfg, key);
    return json_is_number(j) && json_number_value(j) > 0 ? json_number_value(j) : def;
}

/* HF rope_scaling {"type"|"rope_type": linear|dynamic|yarn, "factor",
 * "original_max_position_embeddings"} into p. */
int pe__hf_rope_scaling(const json_t *cfg, int max_pos, pe__pespec_t *p, pb_err_t *err)
{
    const json_t *s = json_object_get(cfg, "rope_scaling");
    if (!s || json_is_null(s))
        return 0;
    const char *t = json_string_value(json_object_get(s, "rope_type"));
    if (!t)
        t = json_string_value(json_object_get(s, "type"));
    if (!t || !strcmp(t, "default"))
        return 0;
    p->has_scaling = 1;
    p->factor = pe__cfg_num(s, "factor", 1.0);
    p->orig_max = (int)pe__cfg_num(s, "original_max_position_embeddings", max_pos);
    p->beta_fast = pe__cfg_num(s, "beta_fast", 32.0);
    p->beta_slow = pe__cfg_num(s, "beta_slow", 1.0);
    if (!strcmp(t, "linear"))
        p->scaling = PK_ROPE_SCALE_LINEAR;
    else if (!strcmp(t, "dynamic"))
        p->scaling = PK_ROPE_SCALE_DYNAMIC_NTK;
    else if (!strcmp(t, "yarn"))
        p->scaling = PK_ROPE_SCALE_YARN;
    else
        return pb_err_set(err, PB_EUNSUPPORTED, "rope_scaling",
                          "config.json: rope_scaling type \"%s\" is not supported", t);
    if (p->factor < 1.0 || p->orig_max <= 0)
        return pb_err_set(err, PB_EPARSE, "rope_scaling", "config.json: bad rope_scaling");
    return 0;
}

static int parse_config(pe_model_t *m, const json_t *cfg, pb_err_t *err)
{
    const json_t *archs = json_object_get(cfg, "architectures");
    const char *a = json_string_value(json_array_get(archs, 0));
    if (!a)
        return pb_err_set(err, PB_EPARSE, "architectures", "config.json: no architectures");
    pe_dims_t *d = &m->d;
    int rc;
    d->causal = 1;
    if (!strcmp(a, "GPT2LMHeadModel") || !strcmp(a, "GPT2Model")) {
        d->arch = PE_ARCH_GPT2;
        m->layernorm = m->gelu = 1;
        if ((rc = pe__cfg_int(cfg, "vocab_size", -1, 1, &d->vocab, err)) ||
            (rc = pe__cfg_int(cfg, "n_embd", -1, 1, &d->d_model, err)) ||
            (rc = pe__cfg_int(cfg, "n_layer", -1, 1, &d->n_layers, err)) ||
            (rc = pe__cfg_int(cfg, "n_head", -1, 1, &d->n_heads, err)) ||
            (rc = pe__cfg_int(cfg, "n_positions", 1024, 1, &d->max_pos, err)) ||
            (rc = pe__cfg_int(cfg, "n_inner", 4 * d->d_model, 1, &d->d_ff, err)))
            return rc;
        d->n_kv_heads = d->n_heads;
        m->eps = (float)pe__cfg_num(cfg, "layer_norm_epsilon", 1e-5);
        m->pe.kind = PE_PE_APE;
    } else if (!strcmp(a, "LlamaForCausalLM") || !strcmp(a, "MistralForCausalLM") ||
               !strcmp(a, "Qwen2ForCausalLM") || !strcmp(a, "PosbenchResearchForCausalLM")) {
        d->arch = strcmp(a, "PosbenchResearchForCausalLM") ? PE_ARCH_LLAMA : PE_ARCH_RESEARCH;
        if ((rc = pe__cfg_int(cfg, "vocab_size", -1, 1, &d->vocab, err)) ||
            (rc = pe__cfg_int(cfg, "hidden_size", -1, 1, &d->d_model, err)) ||
            (rc = pe__cfg_int(cfg, "num_hidden_layers", -1, 1, &d->n_layers, err)) ||
            (rc = pe__cfg_int(cfg, "num_attention_heads", -1, 1, &d->n_heads, err)) ||
            (rc = pe__cfg_int(cfg, "num_key_value_heads", d->n_heads, 1, &d->n_kv_heads, err)) ||
            (rc = pe__cfg_int(cfg, "intermediate_size", -1, 1, &d->d_ff, err)) ||
            (rc = pe__cfg_int(cfg, "max_position_embeddings", 0, 0, &d->max_pos, err)))
            return rc;
        m->eps = (float)pe__cfg_num(cfg, "rms_norm_eps", d->arch == PE_ARCH_RESEARCH ? 1e-5 : 1e-6);
        if (!strcmp(a, "MistralForCausalLM"))
            pe__cfg_int(cfg, "sliding_window", 0, 0, &m->window, NULL);
        if (d->arch == PE_ARCH_RESEARCH) {
            const json_t *pe = json_object_get(cfg, "pe");
            pb_err_t e2 = {{0}, {0}};
            if ((rc = pe__pespec_parse(pe, "pe", &m->pe, &e2)))
                return pb_err_set(err, PB_EPARSE, e2.field, "config.json: %s", e2.msg);
        } else {
            m->pe.kind = PE_PE_ROPE;
            m->pe.theta = pe__cfg_num(cfg, "rope_theta", 10000.0);
            m->pe.factor = 1.0;
            if ((rc = pe__hf_rope_scaling(cfg, d->max_pos, &m->pe, err)))
                return rc;
        }
    } else if ((rc = pe__arch_config(m, a, cfg, err))) {
        return rc;
    }
    if (d->n_heads % d->n_kv_heads || d->d_model % d->n_heads)
        return pb_err_set(err, PB_EPARSE, "num_key_value_heads",
                          "config.json: heads do not divide (%d heads, %d kv, d %d)", d->n_heads,
                          d->n_kv_heads, d->d_model);
    if ((rc = pe__cfg_int(cfg, "head_dim", d->d_model / d->n_heads, 2, &d->head_dim, err)))
        return rc;
    if (d->head_dim > PK_MAX_HEAD_DIM)
        return pb_err_set(err, PB_EUNSUPPORTED, "head_dim", "config.json: head_dim %d > %d",
                          d->head_dim, PK_MAX_HEAD_DIM);
    return 0;
}

/* Merge a job's override into the checkpoint's spec: a rope override keeps
 * the checkpoint's theta and scaling unless it names its own. */
static void apply_override(pe__pespec_t *cur, const pe__pespec_t *ov)
{
    pe__pespec_t base = *cur;
    *cur = *ov;
    if (ov->kind == PE_PE_ROPE && base.kind == PE_PE_ROPE) {
        if (!ov->has_theta)
            cur->theta = base.theta;
        if (!ov->has_scaling) {
            cur->has_scaling = base.has_scaling;
            cur->scaling = base.scaling;
            cur->factor = base.factor;
            cur->orig_max = base.orig_max;
            cur->beta_fast = base.beta_fast;
            cur->beta_slow = base.beta_slow;
            cur->attn_factor = base.attn_factor;
            cur->truncate = base.truncate;
        }
        if (!ov->rot_dims)
            cur->rot_dims = base.rot_dims;
    }
    cur->num_buckets = base.num_buckets;
    cur->max_distance = base.max_distance;
}

/* ---- weights ------------------------------------------------------------------- */

static float half_to_f32(uint16_t h)
{
    int e = (h >> 10) & 0x1f, f = h & 0x3ff;
    float v = e == 0 ? ldexpf((float)f, -24)
                     : e == 31 ? (f ? NAN : INFINITY) : ldexpf((float)(f | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

/* The tensor name (printf format) as f32 with shape (a) or (a, b); b = 0
 * means 1-D. optional: NULL without error when absent. */
int pe__weight(pe_model_t *m, const pe_ckpt_t *ck, int optional, const float **out,
                  pb_err_t *err, int64_t a, int64_t b, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    *out = NULL;
    if (optional && !pe_ckpt_tensor(ck, name))
        return 0;
    const pe_tensor_t *t;
    int64_t shape[2] = {a, b};
    int rc = pe_ckpt_expect(ck, name, DT_FLOAT, b ? 2 : 1, shape, &t, err);
    if (rc)
        return rc;
    if (t->dtype == PE_F32 && ((uintptr_t)t->data & 3u) == 0) {
        *out = t->data;
        return 0;
    }
    if (m->n_owned == m->cap_owned) {
        size_t nc = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, nc * sizeof *p);
        if (!p)
            return pb_err_set(err, PB_ENOMEM, name, "out of memory");
        m->owned = p;
        m->cap_owned = nc;
    }
    float *f = malloc((size_t)t->numel * sizeof *f);
    if (!f)
        return pb_err_set(err, PB_ENOMEM, name, "out of memory converting %s", name);
    const uint8_t *src = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        uint16_t h;
        if (t->dtype == PE_F32) {
            memcpy(&f[i], src + 4 * i, 4);
            continue;
        }
        memcpy(&h, src + 2 * i, 2);
        f[i] = t->dtype == PE_BF16 ? pk_bf16_to_f32(h) : half_to_f32(h);
    }
    m->owned[m->n_owned++] = f;
    *out = f;
    return 0;
}

int pe__lin(pe_model_t *m, const pe_ckpt_t *ck, pe__lin_t *l, int in, int out, int kio,
               int bias, const char *prefix, pb_err_t *err)
{
    l->in = in;
    l->out = out;
    l->kio = kio;
    int rc = pe__weight(m, ck, 0, &l->w, err, kio ? in : out, kio ? out : in, "%s.weight",
                        prefix);
    if (!rc && bias)
        rc = pe__weight(m, ck, bias < 0, &l->b, err, out, 0, "%s.bias", prefix);
    return rc;
}

int pe__head(pe_model_t *m, const pe_ckpt_t *ck, const char *prefix, pb_err_t *err)
{
    char name[128];
    snprintf(name, sizeof name, "%s.weight", prefix ? prefix : "");
    if (prefix && pe_ckpt_tensor(ck, name))
        return pe__lin(m, ck, &m->head, m->d.d_model, m->d.vocab, 0, 0, prefix, err);
    m->head = (pe__lin_t){m->tok_emb, NULL, m->d.d_model, m->d.vocab, 0};
    return 0;
}

static int load_gpt2(pe_model_t *m, const pe_ckpt_t *ck, pb_err_t *err)
{
    const pe_dims_t *d = &m->d;
    const char *p = pe_ckpt_tensor(ck, "transformer.wte.weight") ? "transformer." : "";
    int D = d->d_model, rc;
    if ((rc = pe__weight(m, ck, 0, &m->tok_emb, err, d->vocab, D, "%swte.weight", p)) ||
        (rc = pe__weight(m, ck, 0, &m->pos_emb, err, d->max_pos, D, "%swpe.weight", p)) ||
        (rc = pe__weight(m, ck, 0, &m->nf_w, err, D, 0, "%sln_f.weight", p)) ||
        (rc = pe__weight(m, ck, 0, &m->nf_b, err, D, 0, "%sln_f.bias", p)))
        return rc;
    for (int i = 0; i < d->n_layers; i++) {
        pe__layer_t *L = &m->layers[i];
        char pre[128];
        snprintf(pre, sizeof pre, "%sh.%d.", p, i);
        char n[192];
#define GP(s) (snprintf(n, sizeof n, "%s%s", pre, s), n)
        if ((rc = pe__weight(m, ck, 0, &L->n1_w, err, D, 0, "%sln_1.weight", pre)) ||
            (rc = pe__weight(m, ck, 0, &L->n1_b, err, D, 0, "%sln_1.bias", pre)) ||
            (rc = pe__weight(m, ck, 0, &L->n2_w, err, D, 0, "%sln_2.weight", pre)) ||
            (rc = pe__weight(m, ck, 0, &L->n2_b, err, D, 0, "%sln_2.bias", pre)) ||
            (rc = pe__lin(m, ck, &L->qkv, D, 3 * D, 1, 1, GP("attn.c_attn"), err)) ||
            (rc = pe__lin(m, ck, &L->o, D, D, 1, 1, GP("attn.c_proj"), err)) ||
            (rc = pe__lin(m, ck, &L->up, D, d->d_ff, 1, 1, GP("mlp.c_fc"), err)) ||
            (rc = pe__lin(m, ck, &L->down, d->d_ff, D, 1, 1, GP("mlp.c_proj"), err)))
            return rc;
#undef GP
    }
    return pe__head(m, ck, NULL, err);
}

static int load_llama(pe_model_t *m, const pe_ckpt_t *ck, pb_err_t *err)
{
    const pe_dims_t *d = &m->d;
    int D = d->d_model, qd = d->n_heads * d->head_dim, kvd = d->n_kv_heads * d->head_dim, rc;
    if ((rc = pe__weight(m, ck, 0, &m->tok_emb, err, d->vocab, D, "model.embed_tokens.weight")) ||
        (rc = pe__weight(m, ck, 0, &m->nf_w, err, D, 0, "model.norm.weight")))
        return rc;
    if (d->arch == PE_ARCH_RESEARCH) {
        if (d->max_pos > 0 && (rc = pe__weight(m, ck, 1, &m->pos_emb, err, d->max_pos, D,
                                           "model.embed_positions.weight")))
            return rc;
        if ((rc = pe__weight(m, ck, 1, &m->t5, err, m->pe.num_buckets, d->n_heads,
                         "model.rel_attn_bias.weight")))
            return rc;
    }
    for (int i = 0; i < d->n_layers; i++) {
        pe__layer_t *L = &m->layers[i];
        char n[128];
#define LP(s) (snprintf(n, sizeof n, "model.layers.%d.%s", i, s), n)
        if ((rc = pe__weight(m, ck, 0, &L->n1_w, err, D, 0,
                             "model.layers.%d.input_layernorm.weight", i)) ||
            (rc = pe__weight(m, ck, 0, &L->n2_w, err, D, 0,
                         "model.layers.%d.post_attention_layernorm.weight", i)) ||
            (rc = pe__lin(m, ck, &L->q, D, qd, 0, -1, LP("self_attn.q_proj"), err)) ||
            (rc = pe__lin(m, ck, &L->k, D, kvd, 0, -1, LP("self_attn.k_proj"), err)) ||
            (rc = pe__lin(m, ck, &L->v, D, kvd, 0, -1, LP("self_attn.v_proj"), err)) ||
            (rc = pe__lin(m, ck, &L->o, qd, D, 0, -1, LP("self_attn.o_proj"), err)) ||
            (rc = pe__lin(m, ck, &L->gate, D, d->d_ff, 0, 0, LP("mlp.gate_proj"), err)) ||
            (rc = pe__lin(m, ck, &L->up, D, d->d_ff, 0, 0, LP("mlp.up_proj"), err)) ||
            (rc = pe__lin(m, ck, &L->down, d->d_ff, D, 0, 0, LP("mlp.down_proj"), err)))
            return rc;
#undef LP
    }
    return pe__head(m, ck, "lm_head", err);
}

/* Kernel-side PE parameters once the spec is final. */
static int setup_pe(pe_model_t *m, pb_err_t *err)
{
    pe__pespec_t *p = &m->pe;
    if (p->kind == PE_PE_APE && !m->pos_emb)
        return pb_err_set(err, PB_EINVAL, "pe.type",
                          "pe.type ape needs a learned position table this checkpoint lacks");
    if (p->kind == PE_PE_T5 && !m->t5)
        return pb_err_set(err, PB_EINVAL, "pe.type",
                          "pe.type t5 needs a relative bias table this checkpoint lacks");
    if (p->kind == PE_PE_APE_SIN && m->d.d_model % 2)
        return pb_err_set(err, PB_EINVAL, "pe.sinusoidal", "sinusoidal ape needs an even width");
    if (p->kind == PE_PE_ALIBI) {
        m->alibi = malloc((size_t)m->d.n_heads * sizeof *m->alibi);
        if (!m->alibi)
            return pb_err_set(err, PB_ENOMEM, "pe", "out of memory");
        if (pk_alibi_slopes(m->alibi, m->d.n_heads))
            return pb_err_set(err, PB_EINVAL, "pe.type", "alibi slopes failed");
    }
    if (p->kind != PE_PE_ROPE)
        return 0;
    if (p->rot_dims > m->d.head_dim)
        return pb_err_set(err, PB_EINVAL, "pe.rot_dims", "pe.rot_dims %d > head_dim %d",
                          p->rot_dims, m->d.head_dim);
    pk_rope_cfg_t *c = &m->rope_cfg;
    pk_rope_cfg_default(c, m->d.head_dim);
    c->rot_dims = p->rot_dims;
    c->base = p->theta;
    c->scaling = p->has_scaling ? p->scaling : PK_ROPE_SCALE_NONE;
    c->factor = p->factor;
    c->orig_max_pos = p->orig_max;
    c->beta_fast = p->beta_fast;
    c->beta_slow = p->beta_slow;
    c->attn_factor = p->attn_factor;
    c->truncate = p->truncate;
    c->seq_len = 0;
    int cache = m->d.max_pos > 0 && m->d.max_pos <= 32768 ? m->d.max_pos : 0;
    if (c->scaling == PK_ROPE_SCALE_DYNAMIC_NTK)
        cache = 0; /* re-made as the sequence grows */
    if (pk_rope_init(&m->rope, c, cache))
        return pb_err_set(err, PB_EINVAL, "pe.scaling",
                          "the kernels reject this rope configuration (head_dim %d)",
                          m->d.head_dim);
    m->rope_ready = 1;
    return 0;
}

int pe_model_open(const pe_ckpt_t *ck, const json_t *pe_override, int threads,
                  pe_model_t **out, pb_err_t *err)
{
    pe_model_t *m = NULL;
    int rc;
    *out = NULL;
    pe__pespec_t ov;
    if (pe_override && (rc = pe__pespec_parse(pe_override, "pe", &ov, err)))
        goto out;
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    if ((rc = parse_config(m, pe_ckpt_config(ck), err)))
        goto out;
    m->layers = calloc((size_t)m->d.n_layers, sizeof *m->layers);
    if (!m->layers) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    if (m->d.arch == PE_ARCH_NEOX || m->d.arch == PE_ARCH_BLOOM || m->d.arch == PE_ARCH_BERT)
        rc = pe__arch_load(m, ck, err);
    else
        rc = m->d.arch == PE_ARCH_GPT2 ? load_gpt2(m, ck, err) : load_llama(m, ck, err);
    if (rc)
        goto out;
    if (pe_override)
        apply_override(&m->pe, &ov);
    if ((rc = setup_pe(m, err)))
        goto out;
    m->d.pe = m->pe.kind;
    const pe_dims_t *d = &m->d;
    size_t qkvw = (size_t)(d->n_heads + 2 * d->n_kv_heads) * d->head_dim;
    size_t ff = (size_t)2 * d->d_ff;
    size_t per_row = 2 * (size_t)d->d_model + qkvw + (size_t)d->n_heads * d->head_dim + ff;
    /* an encoder sees its whole input in one pass */
    m->rows = d->causal ? PE__CHUNK : (d->max_pos > 0 ? d->max_pos : PE__CHUNK);
    m->scratch = malloc(per_row * (size_t)m->rows * sizeof(float));
    m->pos = malloc((size_t)m->rows * sizeof *m->pos);
    if (!m->scratch || !m->pos) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory for activations");
        goto out;
    }
    if (pk_ctx_create(&m->ctx, threads, PK_ISA_AUTO)) {
        rc = pb_err_set(err, PB_ENOMEM, "threads", "kernel context creation failed");
        goto out;
    }
    *out = m;
    m = NULL;
    rc = 0;
out:
    pe_model_close(m);
    return rc;
}

void pe_model_close(pe_model_t *m)
{
    if (!m)
        return;
    if (m->rope_ready)
        pk_rope_free(&m->rope);
    pk_ctx_destroy(m->ctx);
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->alibi);
    free(m->scratch);
    free(m->pos);
    free(m);
}

void pe_model_dims(const pe_model_t *m, pe_dims_t *out)
{
    *out = m->d;
}
