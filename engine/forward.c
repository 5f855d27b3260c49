/* engine/forward.c: the forward pass over a KV-cache state (chunked
 * prefill, decode), also over several sequences at once (their rows
 * stacked through the linear layers), then what is built on it: generation
 * of one or several sequences together (greedy and seeded top-k/top-p
 * sampling), continuation log-likelihood and pooled embeddings. Weights and
 * PE parameters come from model.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model_int.h"

/* ---- state ------------------------------------------------------------- */

int pe_state_create(const pe_model_t *m, int max_ctx, int kv_bf16, pe_state_t **out,
                    pb_err_t *err)
{
    pe_state_t *st = NULL;
    int rc = 0;
    *out = NULL;
    if (max_ctx <= 0)
        max_ctx = m->d.max_pos > 0 ? m->d.max_pos : 4096;
    st = calloc(1, sizeof *st);
    if (!st || !(st->kv = calloc((size_t)m->d.n_layers, sizeof *st->kv))) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    st->cap = max_ctx;
    for (int l = 0; l < m->d.n_layers; l++) {
        if (pk_kv_init(&st->kv[l], m->d.n_kv_heads, m->d.head_dim, max_ctx,
                       kv_bf16 ? PK_BF16 : PK_F32)) {
            rc = pb_err_set(err, PB_ENOMEM, "max_ctx", "out of memory for a KV cache of %d",
                            max_ctx);
            goto out;
        }
        st->n_layers = l + 1;
    }
    *out = st;
    st = NULL;
out:
    pe_state_free(st);
    return rc;
}

void pe_state_reset(pe_state_t *st)
{
    for (int l = 0; l < st->n_layers; l++)
        pk_kv_reset(&st->kv[l]);
    st->len = 0;
}

void pe_state_free(pe_state_t *st)
{
    if (!st)
        return;
    for (int l = 0; l < st->n_layers; l++)
        pk_kv_free(&st->kv[l]);
    free(st->kv);
    free(st);
}

int pe_state_len(const pe_state_t *st) { return st->len; }
int pe_state_capacity(const pe_state_t *st) { return st->cap; }

/* ---- forward ------------------------------------------------------------ */

/* Decode (one token): the layers in lin (up to 3, sharing x) as one
 * bandwidth-bound pass of pk_matvec, outputs at y[i]. 0, or PB_EINVAL when
 * a layer is Conv1D-stored (kio: the caller falls back to linear). */
static int matvec(pe_model_t *m, const pe__lin_t *const *lin, int n, const float *x,
                  float *const *y)
{
    pk_matvec_t mv[3];
    for (int i = 0; i < n; i++) {
        if (lin[i]->kio || lin[i]->in != lin[0]->in)
            return PB_EINVAL;
        mv[i] = (pk_matvec_t){.w = lin[i]->w, .b = lin[i]->b, .rows = lin[i]->out, .y = y[i]};
    }
    return pk_matvec(m->ctx, mv, n, x, lin[0]->in) ? PB_EINVAL : 0;
}

// x: (T, in) row stride in; y: (T, out) row stride ldy
static void linear(pe_model_t *m, const pe__lin_t *l, const float *x, int T, float *y, int ldy)
{
    if (T == 1 && matvec(m, &l, 1, x, &y) == 0)
        return;
    pk_sgemm(m->ctx, 0, !l->kio, T, l->out, l->in, 1.0f, x, l->in, l->w,
             l->kio ? l->out : l->in, 0.0f, y, ldy);
    if (l->b)
        for (int t = 0; t < T; t++)
            pk_add(m->ctx, y + (size_t)t * ldy, l->b, (size_t)l->out);
}

static void norm(pe_model_t *m, float *out, const float *x, const float *w, const float *b,
                 int T)
{
    if (m->layernorm)
        pk_layernorm(m->ctx, out, x, w, b, T, m->d.d_model, m->eps);
    else
        pk_rmsnorm(m->ctx, out, x, w, T, m->d.d_model, m->eps);
}

/* A run of a chunk's rows that belongs to one sequence: rows [row0,
 * row0 + T) extend st. */
typedef struct seg {
    pe_state_t *st;
    int row0, T;
} seg_t;

/* One chunk of T <= m->rows tokens at positions pos, made of nseg
 * sequences' segments in row order: the linear layers run once over all
 * rows, KV append and attention per segment on its own state. The
 * final-normed hidden states are left in *hidden (T, d_model), inside
 * m->scratch. */
static int chunk(pe_model_t *m, const seg_t *seg, int nseg, const int32_t *ids,
                 const int32_t *pos, int T, float **hidden)
{
    const pe_dims_t *d = &m->d;
    const int D = d->d_model, H = d->n_heads, KVH = d->n_kv_heads, hd = d->head_dim;
    const int qd = H * hd, kvd = KVH * hd, qkvw = qd + 2 * kvd;
    const size_t R = (size_t)m->rows;
    float *x = m->scratch, *h = x + R * D, *qkv = h + R * D;
    float *att = qkv + R * qkvw, *ff = att + R * qd;
    float *ff2 = ff + R * d->d_ff;
    if (pk_embed(m->ctx, x, m->tok_emb, d->vocab, D, ids, T))
        return PB_EINVAL;
    if (m->pe.kind == PE_PE_APE) {
        if (pk_ape_add(m->ctx, x, T, D, (size_t)D, m->pos_emb, d->max_pos, pos))
            return PB_ETOOBIG;
    } else if (m->pe.kind == PE_PE_APE_SIN) {
        pk_ape_sinusoidal(h, pos, T, D, 10000.0);
        pk_add(m->ctx, x, h, (size_t)T * D);
    }
    if (m->type_emb) /* BERT: every token in segment 0 */
        for (int t = 0; t < T; t++)
            pk_add(m->ctx, x + (size_t)t * D, m->type_emb, (size_t)D);
    if (m->emb_ln_w)
        pk_layernorm(m->ctx, x, x, m->emb_ln_w, m->emb_ln_b, T, D, m->eps);
    pk_attn_cfg_t ac = {.n_heads = H, .n_kv_heads = KVH, .head_dim = hd, .causal = d->causal,
                        .window = m->window};
    if (m->pe.kind == PE_PE_ALIBI) {
        ac.bias.kind = PK_BIAS_ALIBI;
        ac.bias.alibi_slopes = m->alibi;
    } else if (m->pe.kind == PE_PE_T5) {
        ac.bias.kind = PK_BIAS_T5;
        ac.bias.t5_table = m->t5;
        ac.bias.t5_num_buckets = m->pe.num_buckets;
        ac.bias.t5_max_distance = m->pe.max_distance;
        ac.bias.t5_bidirectional = !d->causal;
    }
    for (int l = 0; l < d->n_layers; l++) {
        const pe__layer_t *L = &m->layers[l];
        if (m->post_ln) /* BERT attends over the residual stream itself */
            memcpy(h, x, (size_t)T * D * sizeof *h);
        else
            norm(m, h, x, L->n1_w, L->n1_b, T);
        const pe__lin_t *qkv_l[3] = {&L->q, &L->k, &L->v};
        float *qkv_y[3] = {qkv, qkv + qd, qkv + qd + kvd};
        if (L->qkv.w) {
            linear(m, &L->qkv, h, T, qkv, qkvw);
        } else if (T == 1 && matvec(m, qkv_l, 3, h, qkv_y) == 0) {
            /* decode: q, k and v in one pass */
        } else {
            linear(m, &L->q, h, T, qkv, qkvw);
            linear(m, &L->k, h, T, qkv + qd, qkvw);
            linear(m, &L->v, h, T, qkv + qd + kvd, qkvw);
        }
        if (m->pe.kind == PE_PE_ROPE) {
            pk_rope_apply(m->ctx, &m->rope, qkv, T, H, (size_t)qkvw, pos);
            pk_rope_apply(m->ctx, &m->rope, qkv + qd, T, KVH, (size_t)qkvw, pos);
        }
        for (int s = 0; s < nseg; s++) {
            pk_kv_t *kv = &seg[s].st->kv[l];
            const float *q = qkv + (size_t)seg[s].row0 * qkvw;
            const int32_t *sp = pos + seg[s].row0;
            if (pk_kv_append(m->ctx, kv, q + qd, q + qd + kvd, seg[s].T, (size_t)qkvw, sp))
                return PB_ETOOBIG;
            if (pk_attention(m->ctx, &ac, q, seg[s].T, (size_t)qkvw, sp, kv,
                             att + (size_t)seg[s].row0 * qd, (size_t)qd))
                return PB_EINVAL;
        }
        linear(m, &L->o, att, T, h, D);
        if (m->parallel_res) /* NeoX: the MLP reads the block's input, not x + attn */
            norm(m, att, x, L->n2_w, L->n2_b, T);
        pk_add(m->ctx, x, h, (size_t)T * D);
        if (m->parallel_res) {
            memcpy(h, att, (size_t)T * D * sizeof *h);
        } else if (m->post_ln) {
            norm(m, x, x, L->n1_w, L->n1_b, T);
            memcpy(h, x, (size_t)T * D * sizeof *h);
        } else {
            norm(m, h, x, L->n2_w, L->n2_b, T);
        }
        if (m->gelu) {
            linear(m, &L->up, h, T, ff, d->d_ff);
            if (m->gelu_erf)
                pk_gelu_erf(m->ctx, ff, ff, (size_t)T * d->d_ff);
            else
                pk_gelu_tanh(m->ctx, ff, ff, (size_t)T * d->d_ff);
        } else {
            const pe__lin_t *gu_l[2] = {&L->gate, &L->up};
            float *gu_y[2] = {ff, ff2};
            if (T > 1 || matvec(m, gu_l, 2, h, gu_y)) {
                linear(m, &L->gate, h, T, ff, d->d_ff);
                linear(m, &L->up, h, T, ff2, d->d_ff);
            }
            pk_swiglu(m->ctx, ff, ff, ff2, (size_t)T * d->d_ff);
        }
        linear(m, &L->down, ff, T, h, D);
        pk_add(m->ctx, x, h, (size_t)T * D);
        if (m->post_ln)
            norm(m, x, x, L->n2_w, L->n2_b, T);
    }
    if (!m->nf_w) { /* post-LN: the stream is already normed */
        *hidden = x;
        return 0;
    }
    norm(m, h, x, m->nf_w, m->nf_b, T);
    *hidden = h;
    return 0;
}

/* The forward pass; on_hidden (may be NULL) sees each chunk's final hidden
 * states (the embedding path). */
typedef void (*hidden_fn)(void *arg, const float *h, int T, int first);

/* What every forward checks before touching st: ids, room, the APE
 * table, an encoder's single call, a head for logits. */
static int check(const pe_model_t *m, const pe_state_t *st, const int32_t *ids, size_t n,
                 const float *logits, pb_err_t *err)
{
    const pe_dims_t *d = &m->d;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= d->vocab)
            return pb_err_set(err, PB_EINVAL, "ids", "token id %d at %zu outside [0, %d)",
                              (int)ids[i], i, d->vocab);
    if (n > (size_t)(st->cap - st->len))
        return pb_err_set(err, PB_ETOOBIG, "ids", "%zu tokens after %d exceed the context of %d",
                          n, st->len, st->cap);
    if (m->pe.kind == PE_PE_APE && (size_t)st->len + n > (size_t)d->max_pos)
        return pb_err_set(err, PB_ETOOBIG, "ids",
                          "position %zu is beyond the learned position table (%d)",
                          (size_t)st->len + n - 1, d->max_pos);
    if (!d->causal && (st->len || n > (size_t)m->rows))
        return pb_err_set(err, PB_EINVAL, "ids",
                          "an encoder takes its whole input (<= %d tokens) in one call on an "
                          "empty state", m->rows);
    if (logits && !m->head.w)
        return pb_err_set(err, PB_EUNSUPPORTED, "logits",
                          "this checkpoint has no language-model head (embeddings only)");
    return 0;
}

static int forward(pe_model_t *m, pe_state_t *st, const int32_t *ids, size_t n, float *logits,
                   int all_logits, hidden_fn on_hidden, void *arg, pb_err_t *err)
{
    const pe_dims_t *d = &m->d;
    int rc0;
    if (n == 0)
        return 0;
    if ((rc0 = check(m, st, ids, n, logits, err)))
        return rc0;
    if (m->rope_ready && m->rope_cfg.scaling == PK_ROPE_SCALE_DYNAMIC_NTK &&
        m->rope_seq != st->len + (int)n) {
        /* HF's dynamic NTK: the base follows the longest position seen */
        pk_rope_free(&m->rope);
        m->rope_ready = 0;
        m->rope_cfg.seq_len = st->len + (int)n;
        if (pk_rope_init(&m->rope, &m->rope_cfg, 0))
            return pb_err_set(err, PB_EINVAL, "pe.scaling", "dynamic rope re-init failed");
        m->rope_ready = 1;
        m->rope_seq = st->len + (int)n;
    }
    int32_t *pos = m->pos;
    for (size_t off = 0; off < n; off += (size_t)m->rows) {
        int T = n - off < (size_t)m->rows ? (int)(n - off) : m->rows;
        for (int i = 0; i < T; i++)
            pos[i] = st->len + i;
        float *h;
        seg_t one = {st, 0, T};
        int rc = chunk(m, &one, 1, ids + off, pos, T, &h);
        if (rc)
            return pb_err_set(err, rc, "ids", "forward pass failed at token %zu: %s", off,
                              pb_strerror(rc));
        st->len += T;
        if (on_hidden)
            on_hidden(arg, h, T, off == 0);
        if (!logits)
            continue;
        if (m->mlm.w) { /* BERT's MLM transform; h is the stream x, so h + rows*d is free */
            float *t = m->scratch + (size_t)m->rows * d->d_model;
            linear(m, &m->mlm, h, T, t, d->d_model);
            if (m->gelu_erf)
                pk_gelu_erf(m->ctx, t, t, (size_t)T * d->d_model);
            else
                pk_gelu_tanh(m->ctx, t, t, (size_t)T * d->d_model);
            pk_layernorm(m->ctx, t, t, m->mlm_ln_w, m->mlm_ln_b, T, d->d_model, m->eps);
            h = t;
        }
        if (all_logits)
            linear(m, &m->head, h, T, logits + off * (size_t)d->vocab, d->vocab);
        else if (off + (size_t)T == n)
            linear(m, &m->head, h + (size_t)(T - 1) * d->d_model, 1, logits, d->vocab);
    }
    return 0;
}

int pe_model_forward(pe_model_t *m, pe_state_t *st, const int32_t *ids, size_t n,
                     float *logits, int all_logits, pb_err_t *err)
{
    return forward(m, st, ids, n, logits, all_logits, NULL, NULL, err);
}

int pe_model_forward_batch(pe_model_t *m, pe_state_t *const *st, const int32_t *const *ids,
                           const size_t *n, size_t nseq, float *logits, pb_err_t *err)
{
    const size_t D = (size_t)m->d.d_model, V = (size_t)m->d.vocab, R = (size_t)m->rows;
    int32_t *rid = NULL;
    seg_t *seg = NULL;
    float *last = NULL;
    int rc = 0;
    for (size_t i = 0; i < nseq; i++) {
        if (n[i] == 0)
            return pb_err_set(err, PB_EINVAL, "ids", "sequence %zu has no tokens", i);
        for (size_t j = 0; j < i; j++)
            if (st[j] == st[i])
                return pb_err_set(err, PB_EINVAL, "st", "sequences %zu and %zu share a state",
                                  j, i);
        if ((rc = check(m, st[i], ids[i], n[i], logits, err)))
            return rc;
    }
    if (nseq == 0)
        return 0;
    /* one sequence, an encoder, or dynamic NTK (whose rope table follows
     * each sequence's own length): the single-sequence pass per sequence */
    if (nseq == 1 || !m->d.causal ||
        (m->rope_ready && m->rope_cfg.scaling == PK_ROPE_SCALE_DYNAMIC_NTK)) {
        for (size_t i = 0; i < nseq && rc == 0; i++)
            rc = forward(m, st[i], ids[i], n[i], logits ? logits + i * V : NULL, 0, NULL, NULL,
                         err);
        return rc;
    }
    size_t maxseg = nseq < R ? nseq : R;
    rid = malloc(R * sizeof *rid);
    seg = calloc(maxseg, sizeof *seg);
    last = malloc(maxseg * D * sizeof *last);
    if (!rid || !seg || !last) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    /* fill chunks of up to R rows with the sequences in order; a sequence
     * longer than what is left of a chunk goes on in the next one */
    size_t i = 0, off = 0;
    while (i < nseq) {
        int T = 0, nseg = 0;
        size_t first = i; /* sequences whose last token falls in this chunk start here */
        while (i < nseq && (size_t)T < R) {
            size_t take = n[i] - off < R - (size_t)T ? n[i] - off : R - (size_t)T;
            seg[nseg] = (seg_t){st[i], T, (int)take};
            memcpy(rid + T, ids[i] + off, take * sizeof *rid);
            for (size_t t = 0; t < take; t++)
                m->pos[T + (int)t] = st[i]->len + (int32_t)t;
            T += (int)take;
            nseg++;
            off += take;
            if (off == n[i]) {
                i++;
                off = 0;
            }
        }
        float *h;
        if ((rc = chunk(m, seg, nseg, rid, m->pos, T, &h))) {
            rc = pb_err_set(err, rc, "ids", "batched forward pass failed: %s", pb_strerror(rc));
            goto out;
        }
        for (int s = 0; s < nseg; s++)
            seg[s].st->len += seg[s].T;
        /* the head once over the last rows of the sequences that ended */
        size_t ended = i - first;
        if (!logits || ended == 0)
            continue;
        for (size_t e = 0; e < ended; e++)
            memcpy(last + e * D, h + (size_t)(seg[e].row0 + seg[e].T - 1) * D, D * sizeof *h);
        linear(m, &m->head, last, (int)ended, logits + first * V, (int)V);
    }
out:
    free(rid);
    free(seg);
    free(last);
    return rc;
}

/* ---- generation ----------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

typedef struct { float p; int id; } cand_t;

static int cand_cmp(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

/* Sample from logits after temperature, top-k and top-p; cand: (n). */
static int sample(const float *logits, int n, const pe_gen_params_t *p, uint64_t *rng,
                  cand_t *cand)
{
    float mx = logits[argmax(logits, n)];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        cand[i].id = i;
        cand[i].p = expf((logits[i] - mx) / p->temperature);
    }
    qsort(cand, (size_t)n, sizeof *cand, cand_cmp);
    int k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    for (int i = 0; i < k; i++)
        sum += cand[i].p;
    if (p->top_p > 0 && p->top_p < 1) {
        double acc = 0;
        int keep = 0;
        while (keep < k && acc < p->top_p * sum)
            acc += cand[keep++].p;
        k = keep > 0 ? keep : 1;
        sum = acc > 0 ? acc : cand[0].p;
    }
    double r = (double)(splitmix(rng) >> 11) / 9007199254740992.0 * sum;
    for (int i = 0; i < k; i++) {
        r -= cand[i].p;
        if (r < 0)
            return cand[i].id;
    }
    return cand[k - 1].id;
}

/* One sequence's choice after its logits: the token, then whether it ends
 * the sequence (pe_generate's order of checks). 1: it goes on. */
static int gen_step(const pe_model_t *m, pe_gen_seq_t *g, const float *logits, uint64_t *rng,
                    cand_t *cand, int32_t *id)
{
    const pe_gen_params_t *p = g->p;
    const int V = m->d.vocab;
    *id = p->temperature > 0 ? sample(logits, V, p, rng, cand) : argmax(logits, V);
    g->out[g->n_out++] = *id;
    for (size_t i = 0; i < p->n_stop; i++)
        if (p->stop_ids[i] == *id) {
            g->why = PE_STOP_ID;
            return 0;
        }
    if (p->on_token && p->on_token(p->arg, *id)) {
        g->why = PE_STOP_CALLBACK;
        return 0;
    }
    if (g->n_out == (size_t)p->max_tokens)
        return 0;
    const pe_state_t *st = g->st;
    if (st->len >= st->cap || (m->pe.kind == PE_PE_APE && st->len >= m->d.max_pos)) {
        g->why = PE_STOP_CONTEXT;
        return 0;
    }
    return 1;
}

/* A running sequence: its RNG, the token it feeds next (once started). */
typedef struct slot {
    pe_gen_seq_t *g;
    uint64_t rng;
    int32_t next;
    int started;
} slot_t;

struct pe_gen_batch {
    pe_model_t *m;
    slot_t *slot;
    size_t n, cap;
    pe_state_t **st;     /* (cap) the step's arguments to pe_model_forward_batch */
    const int32_t **ids;
    size_t *len;
    float *logits;       /* (cap, vocab) */
    cand_t *cand;        /* (vocab) once a sampled sequence joins */
};

int pe_gen_batch_create(pe_model_t *m, pe_gen_batch_t **out, pb_err_t *err)
{
    if (!(*out = calloc(1, sizeof **out)))
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    (*out)->m = m;
    return 0;
}

void pe_gen_batch_free(pe_gen_batch_t *b)
{
    if (!b)
        return;
    free(b->slot);
    free(b->st);
    free(b->ids);
    free(b->len);
    free(b->logits);
    free(b->cand);
    free(b);
}

size_t pe_gen_batch_running(const pe_gen_batch_t *b) { return b->n; }

/* Room for one more sequence. */
static int batch_grow(pe_gen_batch_t *b)
{
    if (b->n < b->cap)
        return 0;
    size_t cap = b->cap ? 2 * b->cap : 8, V = (size_t)b->m->d.vocab;
    void *p;
    if (!(p = realloc(b->slot, cap * sizeof *b->slot)))
        return PB_ENOMEM;
    b->slot = p;
    if (!(p = realloc(b->st, cap * sizeof *b->st)))
        return PB_ENOMEM;
    b->st = p;
    if (!(p = realloc(b->ids, cap * sizeof *b->ids)))
        return PB_ENOMEM;
    b->ids = p;
    if (!(p = realloc(b->len, cap * sizeof *b->len)))
        return PB_ENOMEM;
    b->len = p;
    if (!(p = realloc(b->logits, cap * V * sizeof *b->logits)))
        return PB_ENOMEM;
    b->logits = p;
    b->cap = cap;
    return 0;
}

int pe_gen_batch_add(pe_gen_batch_t *b, pe_gen_seq_t *g, pb_err_t *err)
{
    const pe_gen_params_t *p = g->p;
    g->out = NULL;
    g->n_out = 0;
    g->why = PE_STOP_MAX_TOKENS;
    g->done = 0;
    if (g->n == 0)
        return pb_err_set(err, PB_EINVAL, "ids", "generation needs a prompt");
    if (batch_grow(b) ||
        (p->temperature > 0 && !b->cand &&
         !(b->cand = malloc((size_t)b->m->d.vocab * sizeof *b->cand))) ||
        !(g->out = malloc((size_t)(p->max_tokens > 0 ? p->max_tokens : 1) * sizeof *g->out)))
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    pe_state_reset(g->st);
    b->slot[b->n++] = (slot_t){.g = g, .rng = p->seed};
    return 0;
}

int pe_gen_batch_step(pe_gen_batch_t *b, pb_err_t *err)
{
    const size_t V = (size_t)b->m->d.vocab;
    if (b->n == 0)
        return 0;
    for (size_t k = 0; k < b->n; k++) {
        slot_t *s = &b->slot[k];
        b->st[k] = s->g->st;
        b->ids[k] = s->started ? &s->next : s->g->prompt;
        b->len[k] = s->started ? 1 : s->g->n;
    }
    int rc = pe_model_forward_batch(b->m, b->st, b->ids, b->len, b->n, b->logits, err);
    if (rc) { /* the states may hold part of the pass: every sequence ends */
        for (size_t k = 0; k < b->n; k++)
            b->slot[k].g->done = 1;
        b->n = 0;
        return rc;
    }
    size_t keep = 0;
    for (size_t k = 0; k < b->n; k++) {
        slot_t s = b->slot[k];
        s.started = 1;
        if (s.g->p->max_tokens > 0 &&
            gen_step(b->m, s.g, b->logits + k * V, &s.rng, b->cand, &s.next))
            b->slot[keep++] = s;
        else
            s.g->done = 1;
    }
    b->n = keep;
    return 0;
}

int pe_generate_batch(pe_model_t *m, pe_gen_seq_t *seq, size_t nseq, pb_err_t *err)
{
    pe_gen_batch_t *b = NULL;
    int rc = 0;
    for (size_t i = 0; i < nseq; i++)
        seq[i].out = NULL;
    rc = pe_gen_batch_create(m, &b, err);
    for (size_t i = 0; rc == 0 && i < nseq; i++)
        rc = pe_gen_batch_add(b, &seq[i], err);
    while (rc == 0 && pe_gen_batch_running(b) > 0)
        rc = pe_gen_batch_step(b, err);
    for (size_t i = 0; i < nseq; i++)
        if (rc || seq[i].n_out == 0) {
            free(seq[i].out);
            seq[i].out = NULL;
            seq[i].n_out = 0;
        }
    pe_gen_batch_free(b);
    return rc;
}

int pe_generate(pe_model_t *m, pe_state_t *st, const int32_t *prompt, size_t n,
                const pe_gen_params_t *p, int32_t **out, size_t *n_out, pe_stop_t *why,
                pb_err_t *err)
{
    pe_gen_seq_t g = {.st = st, .prompt = prompt, .n = n, .p = p};
    int rc = pe_generate_batch(m, &g, 1, err);
    *out = g.out;
    *n_out = g.n_out;
    if (why && rc == 0)
        *why = g.why;
    return rc;
}

/* ---- log-likelihood and embeddings --------------------------------------- */

int pe_loglik(pe_model_t *m, pe_state_t *st, const int32_t *ctx, size_t n_ctx,
              const int32_t *cont, size_t n_cont, double *ll, int *greedy, pb_err_t *err)
{
    const int V = m->d.vocab;
    float *logits = NULL;
    int32_t *all = NULL;
    int rc;
    if (n_ctx < 1 || n_cont < 1)
        return pb_err_set(err, PB_EINVAL, "ids", "loglik needs a context and a continuation");
    size_t n = n_ctx + n_cont - 1; /* the last token is only predicted */
    all = malloc(n * sizeof *all);
    logits = malloc(n_cont * (size_t)V * sizeof *logits);
    if (!all || !logits) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    memcpy(all, ctx, n_ctx * sizeof *all);
    memcpy(all + n_ctx, cont, (n_cont - 1) * sizeof *all);
    pe_state_reset(st);
    if ((rc = pe_model_forward(m, st, all, n_ctx - 1, NULL, 0, err)) ||
        (rc = pe_model_forward(m, st, all + n_ctx - 1, n_cont, logits, 1, err)))
        goto out;
    double s = 0;
    int g = 1;
    for (size_t i = 0; i < n_cont; i++) {
        const float *lg = logits + i * (size_t)V;
        if (cont[i] < 0 || cont[i] >= V) {
            rc = pb_err_set(err, PB_EINVAL, "cont", "token id %d outside the vocabulary",
                            (int)cont[i]);
            goto out;
        }
        float mx = lg[argmax(lg, V)];
        double z = 0;
        for (int j = 0; j < V; j++)
            z += exp((double)lg[j] - mx);
        s += (double)lg[cont[i]] - mx - log(z);
        g &= argmax(lg, V) == cont[i];
    }
    *ll = s;
    if (greedy)
        *greedy = g;
    rc = 0;
out:
    free(all);
    free(logits);
    return rc;
}

typedef struct { float *out; int d; pe_pool_t pool; size_t seen; } pool_acc_t;

static void pool_hidden(void *arg, const float *h, int T, int first)
{
    pool_acc_t *a = arg;
    if (a->pool == PE_POOL_CLS) {
        if (first)
            memcpy(a->out, h, (size_t)a->d * sizeof *h);
    } else if (a->pool == PE_POOL_LAST) {
        memcpy(a->out, h + (size_t)(T - 1) * a->d, (size_t)a->d * sizeof *h);
    } else {
        for (int t = 0; t < T; t++)
            for (int j = 0; j < a->d; j++)
                a->out[j] += h[(size_t)t * a->d + j];
    }
    a->seen += (size_t)T;
}

int pe_embed(pe_model_t *m, pe_state_t *st, const int32_t *ids, size_t n, pe_pool_t pool,
             float *out, pb_err_t *err)
{
    if (n < 1)
        return pb_err_set(err, PB_EINVAL, "ids", "embed needs at least one token");
    pool_acc_t a = {out, m->d.d_model, pool, 0};
    memset(out, 0, (size_t)a.d * sizeof *out);
    pe_state_reset(st);
    int rc = forward(m, st, ids, n, NULL, 0, pool_hidden, &a, err);
    if (rc)
        return rc;
    if (pool == PE_POOL_MEAN)
        for (int j = 0; j < a.d; j++)
            out[j] /= (float)n;
    return 0;
}
