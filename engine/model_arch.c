/* engine/model_arch.c: config.json and tensors of the architectures beyond
 * Llama and GPT-2, in Hugging Face names and layouts: GPT-NeoX (partial
 * rotary, parallel residual, fused per-head [q, k, v]), BLOOM (ALiBi,
 * embedding LayerNorm, fused per-head [q, k, v], tied head) and a BERT
 * encoder (learned absolute + token type embeddings, post-LayerNorm,
 * optional MLM head). forward.c runs them through the same pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model_int.h"

/* HF "hidden_act": erf GELU or one of the tanh approximations. */
static int gelu_kind(pe_model_t *m, const json_t *cfg, const char *def, pb_err_t *err)
{
    const char *act = json_string_value(json_object_get(cfg, "hidden_act"));
    if (!act)
        act = def;
    m->gelu = 1;
    if (!strcmp(act, "gelu")) {
        m->gelu_erf = 1;
        return 0;
    }
    if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_fast") ||
        !strcmp(act, "gelu_pytorch_tanh"))
        return 0;
    return pb_err_set(err, PB_EUNSUPPORTED, "hidden_act",
                      "config.json: hidden_act \"%s\" is not supported", act);
}

static int neox_config(pe_model_t *m, const json_t *cfg, pb_err_t *err)
{
    pe_dims_t *d = &m->d;
    int rc;
    if ((rc = pe__cfg_int(cfg, "vocab_size", -1, 1, &d->vocab, err)) ||
        (rc = pe__cfg_int(cfg, "hidden_size", -1, 1, &d->d_model, err)) ||
        (rc = pe__cfg_int(cfg, "num_hidden_layers", -1, 1, &d->n_layers, err)) ||
        (rc = pe__cfg_int(cfg, "num_attention_heads", -1, 1, &d->n_heads, err)) ||
        (rc = pe__cfg_int(cfg, "intermediate_size", 4 * d->d_model, 1, &d->d_ff, err)) ||
        (rc = pe__cfg_int(cfg, "max_position_embeddings", 2048, 1, &d->max_pos, err)) ||
        (rc = gelu_kind(m, cfg, "gelu", err)))
        return rc;
    const json_t *par = json_object_get(cfg, "use_parallel_residual");
    m->parallel_res = !par || json_is_true(par);
    m->eps = (float)pe__cfg_num(cfg, "layer_norm_eps", 1e-5);
    /* HF: rotary_ndims = int(head_size * rotary_pct), NEOX halves of those */
    int hd = d->d_model / d->n_heads;
    int rot = (int)(hd * pe__cfg_num(cfg, "rotary_pct", 0.25));
    if (rot < 2 || rot % 2 || rot > hd)
        return pb_err_set(err, PB_EUNSUPPORTED, "rotary_pct",
                          "config.json: rotary_pct gives %d rotated dims of %d", rot, hd);
    m->pe.kind = PE_PE_ROPE;
    m->pe.rot_dims = rot;
    m->pe.theta = pe__cfg_num(cfg, "rope_theta", pe__cfg_num(cfg, "rotary_emb_base", 10000.0));
    m->pe.factor = 1.0;
    return pe__hf_rope_scaling(cfg, d->max_pos, &m->pe, err);
}

static int bloom_config(pe_model_t *m, const json_t *cfg, pb_err_t *err)
{
    pe_dims_t *d = &m->d;
    int rc;
    /* older BLOOM configs spell these n_embed, num_hidden_layers, num_attention_heads */
    if ((rc = pe__cfg_int(cfg, "n_embed", 0, 1, &d->d_model, err)) ||
        (rc = pe__cfg_int(cfg, "hidden_size", d->d_model ? d->d_model : -1, 1, &d->d_model,
                          err)) ||
        (rc = pe__cfg_int(cfg, "num_hidden_layers", 0, 1, &d->n_layers, err)) ||
        (rc = pe__cfg_int(cfg, "n_layer", d->n_layers ? d->n_layers : -1, 1, &d->n_layers,
                          err)) ||
        (rc = pe__cfg_int(cfg, "num_attention_heads", 0, 1, &d->n_heads, err)) ||
        (rc = pe__cfg_int(cfg, "n_head", d->n_heads ? d->n_heads : -1, 1, &d->n_heads, err)) ||
        (rc = pe__cfg_int(cfg, "vocab_size", -1, 1, &d->vocab, err)))
        return rc;
    if (json_is_true(json_object_get(cfg, "apply_residual_connection_post_layernorm")))
        return pb_err_set(err, PB_EUNSUPPORTED, "apply_residual_connection_post_layernorm",
                          "config.json: apply_residual_connection_post_layernorm is not supported");
    d->d_ff = 4 * d->d_model;
    d->max_pos = 0; /* ALiBi: no position table */
    m->gelu = 1;    /* bloom_gelu_forward is the tanh form */
    m->eps = (float)pe__cfg_num(cfg, "layer_norm_epsilon", 1e-5);
    m->pe.kind = PE_PE_ALIBI;
    return 0;
}

static int bert_config(pe_model_t *m, const json_t *cfg, pb_err_t *err)
{
    pe_dims_t *d = &m->d;
    int rc;
    if ((rc = pe__cfg_int(cfg, "vocab_size", -1, 1, &d->vocab, err)) ||
        (rc = pe__cfg_int(cfg, "hidden_size", -1, 1, &d->d_model, err)) ||
        (rc = pe__cfg_int(cfg, "num_hidden_layers", -1, 1, &d->n_layers, err)) ||
        (rc = pe__cfg_int(cfg, "num_attention_heads", -1, 1, &d->n_heads, err)) ||
        (rc = pe__cfg_int(cfg, "intermediate_size", -1, 1, &d->d_ff, err)) ||
        (rc = pe__cfg_int(cfg, "max_position_embeddings", 512, 1, &d->max_pos, err)) ||
        (rc = gelu_kind(m, cfg, "gelu", err)))
        return rc;
    const char *pt = json_string_value(json_object_get(cfg, "position_embedding_type"));
    if (pt && strcmp(pt, "absolute"))
        return pb_err_set(err, PB_EUNSUPPORTED, "position_embedding_type",
                          "config.json: position_embedding_type \"%s\" is not supported", pt);
    d->causal = 0;
    m->post_ln = 1;
    m->eps = (float)pe__cfg_num(cfg, "layer_norm_eps", 1e-12);
    m->pe.kind = PE_PE_APE;
    return 0;
}

int pe__arch_config(pe_model_t *m, const char *a, const json_t *cfg, pb_err_t *err)
{
    m->layernorm = 1;
    m->d.n_kv_heads = 0;
    int rc;
    if (!strcmp(a, "GPTNeoXForCausalLM") || !strcmp(a, "GPTNeoXModel")) {
        m->d.arch = PE_ARCH_NEOX;
        rc = neox_config(m, cfg, err);
    } else if (!strcmp(a, "BloomForCausalLM") || !strcmp(a, "BloomModel")) {
        m->d.arch = PE_ARCH_BLOOM;
        rc = bloom_config(m, cfg, err);
    } else if (!strcmp(a, "BertModel") || !strcmp(a, "BertForMaskedLM")) {
        m->d.arch = PE_ARCH_BERT;
        rc = bert_config(m, cfg, err);
    } else {
        return pb_err_set(err, PB_EUNSUPPORTED, "architectures",
                          "config.json: architecture \"%s\" is not supported", a);
    }
    m->d.n_kv_heads = m->d.n_heads;
    return rc;
}

/* ---- weights ------------------------------------------------------------- */

/* A fused query_key_value Linear (3d, d) whose output rows run per head as
 * [q, k, v] (NeoX's view(.., heads, 3 * hd), BLOOM's view(.., heads, 3,
 * hd)), reordered once into the engine's [q all heads | k | v]. */
static int fused_qkv(pe_model_t *m, const pe_ckpt_t *ck, pe__lin_t *l, const char *prefix,
                     pb_err_t *err)
{
    const int D = m->d.d_model, H = m->d.n_heads, hd = m->d.head_dim;
    const float *w, *b;
    int rc;
    if ((rc = pe__weight(m, ck, 0, &w, err, 3 * D, D, "%s.weight", prefix)) ||
        (rc = pe__weight(m, ck, 1, &b, err, 3 * D, 0, "%s.bias", prefix)))
        return rc;
    if (m->n_owned + 2 > m->cap_owned) {
        size_t nc = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, nc * sizeof *p);
        if (!p)
            return pb_err_set(err, PB_ENOMEM, prefix, "out of memory");
        m->owned = p;
        m->cap_owned = nc;
    }
    float *nw = malloc((size_t)3 * D * D * sizeof *nw);
    float *nb = b ? malloc((size_t)3 * D * sizeof *nb) : NULL;
    if (!nw || (b && !nb)) {
        free(nw);
        free(nb);
        return pb_err_set(err, PB_ENOMEM, prefix, "out of memory reordering %s", prefix);
    }
    for (int h = 0; h < H; h++)
        for (int j = 0; j < 3; j++) {
            size_t src = (size_t)(h * 3 + j) * hd, dst = (size_t)j * D + (size_t)h * hd;
            memcpy(nw + dst * D, w + src * D, (size_t)hd * D * sizeof *nw);
            if (nb)
                memcpy(nb + dst, b + src, (size_t)hd * sizeof *nb);
        }
    m->owned[m->n_owned++] = nw;
    if (nb)
        m->owned[m->n_owned++] = nb;
    *l = (pe__lin_t){nw, nb, D, 3 * D, 0};
    return 0;
}

/* One NeoX/BLOOM block under prefix ("gpt_neox.layers.3.", "transformer.h.3."):
 * both name their LayerNorms and MLP alike and keep a fused per-head
 * query_key_value in the attention submodule attn. */
static int load_fused_block(pe_model_t *m, const pe_ckpt_t *ck, pe__layer_t *L,
                            const char *prefix, const char *attn, pb_err_t *err)
{
    const int D = m->d.d_model, F = m->d.d_ff;
    char n[160];
    int rc;
#define NM(fmt, ...) (snprintf(n, sizeof n, "%s" fmt, prefix, __VA_ARGS__), n)
    if ((rc = pe__weight(m, ck, 0, &L->n1_w, err, D, 0, "%s",
                         NM("%s", "input_layernorm.weight"))) ||
        (rc = pe__weight(m, ck, 0, &L->n1_b, err, D, 0, "%s", NM("%s", "input_layernorm.bias"))) ||
        (rc = pe__weight(m, ck, 0, &L->n2_w, err, D, 0, "%s",
                         NM("%s", "post_attention_layernorm.weight"))) ||
        (rc = pe__weight(m, ck, 0, &L->n2_b, err, D, 0, "%s",
                         NM("%s", "post_attention_layernorm.bias"))) ||
        (rc = fused_qkv(m, ck, &L->qkv, NM("%s.query_key_value", attn), err)) ||
        (rc = pe__lin(m, ck, &L->o, D, D, 0, -1, NM("%s.dense", attn), err)) ||
        (rc = pe__lin(m, ck, &L->up, D, F, 0, -1, NM("%s", "mlp.dense_h_to_4h"), err)) ||
        (rc = pe__lin(m, ck, &L->down, F, D, 0, -1, NM("%s", "mlp.dense_4h_to_h"), err)))
        return rc;
#undef NM
    return 0;
}

static int load_neox(pe_model_t *m, const pe_ckpt_t *ck, pb_err_t *err)
{
    const pe_dims_t *d = &m->d;
    const int D = d->d_model;
    int rc;
    if ((rc = pe__weight(m, ck, 0, &m->tok_emb, err, d->vocab, D, "gpt_neox.embed_in.weight")) ||
        (rc = pe__weight(m, ck, 0, &m->nf_w, err, D, 0, "gpt_neox.final_layer_norm.weight")) ||
        (rc = pe__weight(m, ck, 0, &m->nf_b, err, D, 0, "gpt_neox.final_layer_norm.bias")))
        return rc;
    for (int i = 0; i < d->n_layers; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "gpt_neox.layers.%d.", i);
        if ((rc = load_fused_block(m, ck, &m->layers[i], prefix, "attention", err)))
            return rc;
    }
    return pe__head(m, ck, "embed_out", err);
}

static int load_bloom(pe_model_t *m, const pe_ckpt_t *ck, pb_err_t *err)
{
    const pe_dims_t *d = &m->d;
    const int D = d->d_model;
    /* BloomForCausalLM saves "transformer."; a bare BloomModel does not */
    const char *p = pe_ckpt_tensor(ck, "transformer.word_embeddings.weight") ? "transformer."
                                                                             : "";
    int rc;
    if ((rc = pe__weight(m, ck, 0, &m->tok_emb, err, d->vocab, D, "%sword_embeddings.weight",
                         p)) ||
        (rc = pe__weight(m, ck, 0, &m->emb_ln_w, err, D, 0,
                         "%sword_embeddings_layernorm.weight", p)) ||
        (rc = pe__weight(m, ck, 0, &m->emb_ln_b, err, D, 0, "%sword_embeddings_layernorm.bias",
                         p)) ||
        (rc = pe__weight(m, ck, 0, &m->nf_w, err, D, 0, "%sln_f.weight", p)) ||
        (rc = pe__weight(m, ck, 0, &m->nf_b, err, D, 0, "%sln_f.bias", p)))
        return rc;
    for (int i = 0; i < d->n_layers; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%sh.%d.", p, i);
        if ((rc = load_fused_block(m, ck, &m->layers[i], prefix, "self_attention", err)))
            return rc;
    }
    return pe__head(m, ck, "lm_head", err);
}

static int load_bert(pe_model_t *m, const pe_ckpt_t *ck, pb_err_t *err)
{
    const pe_dims_t *d = &m->d;
    const int D = d->d_model;
    const char *p = pe_ckpt_tensor(ck, "bert.embeddings.word_embeddings.weight") ? "bert." : "";
    const pe_tensor_t *tt = NULL;
    char n[160];
    int rc;
    snprintf(n, sizeof n, "%sembeddings.token_type_embeddings.weight", p);
    /* (type_vocab_size, d): only row 0 is used (one segment) */
    if (!(tt = pe_ckpt_tensor(ck, n)) || tt->ndim != 2)
        return pb_err_set(err, PB_EPARSE, n, "%s: missing or not 2-D", n);
    int types = (int)(tt->shape[0] > 0 && tt->shape[0] < 1024 ? tt->shape[0] : 1);
    const float *type_tab;
    if ((rc = pe__weight(m, ck, 0, &m->tok_emb, err, d->vocab, D,
                         "%sembeddings.word_embeddings.weight", p)) ||
        (rc = pe__weight(m, ck, 0, &m->pos_emb, err, d->max_pos, D,
                         "%sembeddings.position_embeddings.weight", p)) ||
        (rc = pe__weight(m, ck, 0, &type_tab, err, types, D, "%s", n)) ||
        (rc = pe__weight(m, ck, 0, &m->emb_ln_w, err, D, 0, "%sembeddings.LayerNorm.weight",
                         p)) ||
        (rc = pe__weight(m, ck, 0, &m->emb_ln_b, err, D, 0, "%sembeddings.LayerNorm.bias", p)))
        return rc;
    m->type_emb = type_tab;
    for (int i = 0; i < d->n_layers; i++) {
        pe__layer_t *L = &m->layers[i];
#define EP(s) (snprintf(n, sizeof n, "%sencoder.layer.%d.%s", p, i, s), n)
        if ((rc = pe__lin(m, ck, &L->q, D, D, 0, 1, EP("attention.self.query"), err)) ||
            (rc = pe__lin(m, ck, &L->k, D, D, 0, 1, EP("attention.self.key"), err)) ||
            (rc = pe__lin(m, ck, &L->v, D, D, 0, 1, EP("attention.self.value"), err)) ||
            (rc = pe__lin(m, ck, &L->o, D, D, 0, 1, EP("attention.output.dense"), err)) ||
            (rc = pe__weight(m, ck, 0, &L->n1_w, err, D, 0, "%s",
                             EP("attention.output.LayerNorm.weight"))) ||
            (rc = pe__weight(m, ck, 0, &L->n1_b, err, D, 0, "%s",
                             EP("attention.output.LayerNorm.bias"))) ||
            (rc = pe__lin(m, ck, &L->up, D, d->d_ff, 0, 1, EP("intermediate.dense"), err)) ||
            (rc = pe__lin(m, ck, &L->down, d->d_ff, D, 0, 1, EP("output.dense"), err)) ||
            (rc = pe__weight(m, ck, 0, &L->n2_w, err, D, 0, "%s", EP("output.LayerNorm.weight"))) ||
            (rc = pe__weight(m, ck, 0, &L->n2_b, err, D, 0, "%s", EP("output.LayerNorm.bias"))))
            return rc;
#undef EP
    }
    /* BertForMaskedLM: dense + gelu + LayerNorm, then the tied decoder + bias */
    if (!pe_ckpt_tensor(ck, "cls.predictions.transform.dense.weight"))
        return 0; /* a bare encoder: embeddings only, no logits */
    if ((rc = pe__lin(m, ck, &m->mlm, D, D, 0, 1, "cls.predictions.transform.dense", err)) ||
        (rc = pe__weight(m, ck, 0, &m->mlm_ln_w, err, D, 0,
                         "cls.predictions.transform.LayerNorm.weight")) ||
        (rc = pe__weight(m, ck, 0, &m->mlm_ln_b, err, D, 0,
                         "cls.predictions.transform.LayerNorm.bias")))
        return rc;
    if ((rc = pe__head(m, ck, NULL, err)))
        return rc;
    return pe__weight(m, ck, 0, &m->head.b, err, d->vocab, 0, "cls.predictions.bias");
}

int pe__arch_load(pe_model_t *m, const pe_ckpt_t *ck, pb_err_t *err)
{
    const pe_dims_t *d = &m->d;
    /* the fused q/k/v reorder and the parallel residual's scratch reuse
     * assume heads * head_dim == d */
    if (d->n_heads * d->head_dim != d->d_model)
        return pb_err_set(err, PB_EPARSE, "head_dim",
                          "config.json: %d heads of %d do not make hidden size %d", d->n_heads,
                          d->head_dim, d->d_model);
    if (d->arch == PE_ARCH_NEOX)
        return load_neox(m, ck, err);
    if (d->arch == PE_ARCH_BLOOM)
        return load_bloom(m, ck, err);
    return load_bert(m, ck, err);
}
