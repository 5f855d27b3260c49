/* The engine's model (issue 6): a transformer built from a checkpoint's
 * config.json and tensors, run on kernels/ (prefill, KV-cache decode,
 * generation, log-likelihood, embeddings), with the positional encoding
 * replaceable per job. Architectures: Llama family (Llama, Mistral, Qwen2),
 * GPT-2, GPT-NeoX, BLOOM, a BERT encoder and posbench's own "research"
 * decoder (see model.c's header for its config.json). A model is used by
 * one thread at a time; states are per sequence. */
#ifndef PE_MODEL_H
#define PE_MODEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"
#include "engine/checkpoint.h"

typedef struct pe_model pe_model_t;
typedef struct pe_state pe_state_t;

typedef enum {
    PE_ARCH_LLAMA, PE_ARCH_GPT2, PE_ARCH_RESEARCH,
    PE_ARCH_NEOX, PE_ARCH_BLOOM, PE_ARCH_BERT /* model_arch.c; BERT is an encoder */
} pe_arch_t;

/* The positional encoding in effect (after any override). */
typedef enum {
    PE_PE_NOPE,    /* no position information */
    PE_PE_APE,     /* learned absolute table (wpe), added to the embedding */
    PE_PE_APE_SIN, /* sinusoidal absolute table, added to the embedding */
    PE_PE_ROPE,    /* rotary, with the kernels' scalings */
    PE_PE_ALIBI,   /* linear bias per head (Press et al.) */
    PE_PE_T5       /* learned relative buckets, one table shared by layers */
} pe_pe_kind_t;

typedef struct pe_dims {
    pe_arch_t arch;
    pe_pe_kind_t pe;
    int n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab;
    int max_pos;  /* config's max_position_embeddings (0 = none) */
    int causal;   /* 1 for every decoder; 0 for BERT (bidirectional) */
} pe_dims_t;

/* Check a PE override spec without a checkpoint (the coordinator calls this
 * at submit time). Accepted:
 *   {"type": "nope"} | {"type": "alibi"} | {"type": "t5"} |
 *   {"type": "ape"} | {"type": "ape", "sinusoidal": true} |
 *   {"type": "rope", "theta": >0, "rot_dims": even >= 0,
 *    "scaling": {"type": "none"|"linear"|"ntk"|"dynamic"|"yarn"|"truncate",
 *                "factor": >= 1, "original_max_position": > 0 (yarn, dynamic),
 *                "beta_fast", "beta_slow", "attn_factor" (yarn),
 *                "truncate": > 0 (truncate)}}
 * Unknown keys, wrong types and out-of-range values are PB_EINVAL with
 * err->field naming the offending key ("pe.scaling.factor"). */
int pe_pe_validate(const json_t *pe, pb_err_t *err);

/* Build a model over ck (borrowed: must outlive the model; f32 tensors are
 * used in place from the mapping, bf16/f16 ones are converted once to f32
 * at load). pe_override may be NULL (the checkpoint's own PE); an override
 * the checkpoint cannot honour (t5 without a bias table, learned ape without
 * wpe) is PB_EINVAL naming "pe.type". threads: the kernel context's thread
 * count (<= 0: online CPUs). Unknown architecture: PB_EUNSUPPORTED; a missing
 * or mis-shaped tensor: the checkpoint's error naming file and tensor.
 * *out is NULL on failure. */
int pe_model_open(const pe_ckpt_t *ck, const json_t *pe_override, int threads,
                  pe_model_t **out, pb_err_t *err);
void pe_model_close(pe_model_t *m);
void pe_model_dims(const pe_model_t *m, pe_dims_t *out);

/* A sequence's state: one KV cache per layer holding up to max_ctx tokens
 * (<= 0: the model's max_pos, or 4096 when it has none); kv_bf16 stores
 * keys and values as bf16. */
int pe_state_create(const pe_model_t *m, int max_ctx, int kv_bf16, pe_state_t **out,
                    pb_err_t *err);
void pe_state_reset(pe_state_t *st); /* empty, same capacity */
void pe_state_free(pe_state_t *st);
int pe_state_len(const pe_state_t *st);      /* tokens held */
int pe_state_capacity(const pe_state_t *st);

/* Run n tokens after what st holds (positions st_len .. st_len+n-1) and
 * append them to st (an encoder takes its whole input, up to max_pos, in one
 * call on an empty state, else PB_EINVAL; its logits need an MLM head). logits: NULL, or (vocab) for the last token, or
 * (n, vocab) when all_logits. Prefill runs in chunks, so n is bounded only
 * by st's capacity (PB_ETOOBIG beyond it, st unchanged). A bad token id is
 * PB_EINVAL (st unchanged). */
int pe_model_forward(pe_model_t *m, pe_state_t *st, const int32_t *ids, size_t n,
                     float *logits, int all_logits, pb_err_t *err);

/* Several sequences in one pass: sequence i's n[i] >= 1 tokens ids[i] run
 * after what st[i] holds and are appended to it (the states distinct).
 * Rows of all sequences are stacked so each linear layer and the head run
 * once over them all; positions, KV append and attention are each
 * sequence's own, so the results equal pe_model_forward per sequence up to
 * float rounding. logits: NULL, or (nseq, vocab), each sequence's last
 * token. Every sequence is checked first (as pe_model_forward; nothing is
 * run when one fails). Encoders and dynamic NTK run sequence by sequence.
 * Decode steps of several sequences (one token each) are this call too. */
int pe_model_forward_batch(pe_model_t *m, pe_state_t *const *st, const int32_t *const *ids,
                           const size_t *n, size_t nseq, float *logits, pb_err_t *err);

/* Generation. temperature <= 0: greedy (argmax, ties to the lower id);
 * otherwise seeded sampling after top_k (0 = off) then top_p (>= 1 = off).
 * Stops after max_tokens, on a stop id (kept in the output), when on_token
 * returns nonzero (the caller's stop strings), or when st is full. */
typedef struct pe_gen_params {
    int max_tokens;
    float temperature, top_p;
    int top_k;
    uint64_t seed;
    const int32_t *stop_ids;
    size_t n_stop;
    int (*on_token)(void *arg, int32_t id); /* may be NULL */
    void *arg;
} pe_gen_params_t;

typedef enum { PE_STOP_MAX_TOKENS, PE_STOP_ID, PE_STOP_CALLBACK, PE_STOP_CONTEXT } pe_stop_t;

/* Prefill prompt[0, n >= 1) into st (reset first) and generate. *out is malloc'd
 * (*n_out ids, NULL when none); *why says what stopped it (may be NULL). */
int pe_generate(pe_model_t *m, pe_state_t *st, const int32_t *prompt, size_t n,
                const pe_gen_params_t *p, int32_t **out, size_t *n_out, pe_stop_t *why,
                pb_err_t *err);

/* Generation of several sequences together. A batch holds running
 * sequences; each step is one pe_model_forward_batch call over the next
 * token of every started sequence and the whole prompt of every sequence
 * added since the last step, then picks each one's token (its own params:
 * stops, max_tokens, seed, on_token, called in batch order). A sequence
 * that stops gets done = 1 and leaves the batch; new ones may be added
 * between steps (continuous batching). Each sequence's tokens are what
 * pe_generate gives it alone, up to float rounding in the stacked GEMMs. */
typedef struct pe_gen_seq {
    pe_state_t *st;              /* reset when added; distinct per sequence */
    const int32_t *prompt;       /* borrowed until done */
    size_t n;                    /* >= 1 */
    const pe_gen_params_t *p;
    int32_t *out;                /* out: malloc'd by add, n_out ids; the caller frees it */
    size_t n_out;
    pe_stop_t why;               /* out, once done */
    int done;                    /* out: 1 once it has left the batch */
} pe_gen_seq_t;

typedef struct pe_gen_batch pe_gen_batch_t;

int pe_gen_batch_create(pe_model_t *m, pe_gen_batch_t **out, pb_err_t *err);
void pe_gen_batch_free(pe_gen_batch_t *b); /* the sequences stay the caller's */
/* g (borrowed until done) joins at the next step. */
int pe_gen_batch_add(pe_gen_batch_t *b, pe_gen_seq_t *g, pb_err_t *err);
/* One step over the batch (0 with nothing running). An error ends every
 * running sequence (done = 1, its state unusable); the batch stays usable. */
int pe_gen_batch_step(pe_gen_batch_t *b, pb_err_t *err);
size_t pe_gen_batch_running(const pe_gen_batch_t *b);

/* All of seq[0, nseq) through one batch until every one is done (out NULL
 * when none, and for every sequence on an error). */
int pe_generate_batch(pe_model_t *m, pe_gen_seq_t *seq, size_t nseq, pb_err_t *err);

/* Sum of log p(cont[i] | ctx, cont[<i]) in *ll; *greedy (may be NULL) = 1
 * when every cont token is the argmax. st is reset and used as scratch.
 * n_ctx >= 1, n_cont >= 1. */
int pe_loglik(pe_model_t *m, pe_state_t *st, const int32_t *ctx, size_t n_ctx,
              const int32_t *cont, size_t n_cont, double *ll, int *greedy, pb_err_t *err);

/* Pool the final hidden states (after the final norm) of ids[0, n) into
 * out (d_model floats). st is reset and used as scratch. */
typedef enum { PE_POOL_MEAN, PE_POOL_CLS, PE_POOL_LAST } pe_pool_t;
int pe_embed(pe_model_t *m, pe_state_t *st, const int32_t *ids, size_t n, pe_pool_t pool,
             float *out, pb_err_t *err);

#endif
