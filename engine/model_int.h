/* engine/model_int.h: the model's private layout, shared by model.c (config,
 * PE spec, weight loading) and forward.c (forward pass, generation,
 * log-likelihood, embeddings). Not for use outside engine/. */
#ifndef PE_MODEL_INT_H
#define PE_MODEL_INT_H

#include "engine/model.h"
#include "kernels/kernels.h"

#define PE__CHUNK 128 /* prefill tokens per pass: bounds the scratch */

/* A parsed PE spec (an override or the research config's "pe"). */
typedef struct pe__pespec {
    pe_pe_kind_t kind;
    int sinusoidal;
    int has_theta, has_scaling;
    double theta;
    int rot_dims;
    pk_rope_scaling_t scaling;
    double factor, beta_fast, beta_slow, attn_factor, truncate;
    int orig_max;
    int num_buckets, max_distance; /* t5 (research config) */
} pe__pespec_t;

int pe__pespec_parse(const json_t *pe, const char *field, pe__pespec_t *out, pb_err_t *err);

/* y(T, out) = x(T, in) W (+ b). kio: W stored (in, out) as GPT-2's Conv1D;
 * otherwise (out, in) as nn.Linear. */
typedef struct pe__lin {
    const float *w, *b;
    int in, out, kio;
} pe__lin_t;

typedef struct pe__layer {
    const float *n1_w, *n1_b, *n2_w, *n2_b;
    pe__lin_t q, k, v, qkv, o; /* qkv (GPT-2) or q, k, v */
    pe__lin_t gate, up, down;  /* SwiGLU; GELU uses up (c_fc) and down */
} pe__layer_t;

/* model.c's config and weight helpers, shared with model_arch.c. */
int pe__cfg_int(const json_t *cfg, const char *key, int def, int lo, int *v, pb_err_t *err);
double pe__cfg_num(const json_t *cfg, const char *key, double def);
int pe__hf_rope_scaling(const json_t *cfg, int max_pos, pe__pespec_t *p, pb_err_t *err);
int pe__weight(pe_model_t *m, const pe_ckpt_t *ck, int optional, const float **out,
               pb_err_t *err, int64_t a, int64_t b, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
int pe__lin(pe_model_t *m, const pe_ckpt_t *ck, pe__lin_t *l, int in, int out, int kio,
            int bias, const char *prefix, pb_err_t *err);
/* The LM head: prefix's ".weight" (d_model -> vocab) when the checkpoint
 * has it, else tied to the token embedding (prefix NULL: always tied). */
int pe__head(pe_model_t *m, const pe_ckpt_t *ck, const char *prefix, pb_err_t *err);

/* model_arch.c: config.json and tensors of GPT-NeoX, BLOOM and BERT.
 * pe__arch_config: PB_EUNSUPPORTED naming "architectures" for any other. */
int pe__arch_config(pe_model_t *m, const char *arch, const json_t *cfg, pb_err_t *err);
int pe__arch_load(pe_model_t *m, const pe_ckpt_t *ck, pb_err_t *err);

struct pe_model {
    pe_dims_t d;
    int layernorm, gelu; /* GPT-2: LayerNorm and GELU(tanh) MLP */
    float eps;
    int window;
    pe__pespec_t pe;
    pk_ctx_t *ctx;
    pk_rope_t rope;
    int rope_ready, rope_seq; /* dynamic NTK: seq_len the table was made for */
    pk_rope_cfg_t rope_cfg;
    float *alibi;             /* (n_heads) */
    const float *t5;          /* (num_buckets, n_heads) */
    const float *tok_emb;     /* (vocab, d) */
    const float *pos_emb;     /* (max_pos, d) learned APE */
    const float *nf_w, *nf_b; /* final norm */
    pe__lin_t head;           /* (vocab, d) */
    pe__layer_t *layers;
    void **owned;             /* f32 copies of bf16/f16 tensors */
    size_t n_owned, cap_owned;
    float *scratch;           /* m->rows rows of every activation */
    /* GPT-NeoX, BLOOM, BERT (model_arch.c) */
    int rows;                 /* tokens per pass: PE__CHUNK; an encoder's whole input */
    int32_t *pos;             /* (rows) positions of the pass */
    int parallel_res;         /* NeoX: x += attn(ln1 x) + mlp(ln2 x) */
    int post_ln;              /* BERT: x = ln1(x + attn x); x = ln2(x + mlp x) */
    int gelu_erf;             /* with gelu: the exact (erf) form */
    const float *emb_ln_w, *emb_ln_b; /* LayerNorm right after the embedding */
    const float *type_emb;    /* (d) BERT token type 0, added to every token */
    pe__lin_t mlm;            /* BERT MLM transform (dense, gelu, LayerNorm) */
    const float *mlm_ln_w, *mlm_ln_b;
};

struct pe_state {
    int n_layers, cap, len;
    pk_kv_t *kv;
};

#endif
