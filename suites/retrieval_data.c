/* The retrieval suite over a user's dataset (README "User datasets"): the
 * corpus is the file's docs (ps_rdata_t, ascending docno), item idx the
 * file's idx-th query with its qrels, and its pool the judged docs, the
 * file's hard negatives, a deterministic sample of unjudged easy negatives
 * and filler. The run state is built once per run from the file's bytes. */
#include "suites/retrieval_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/util.h"

int ps__rt_prepare_data(rt_state_t *s, const ps_run_t *run)
{
    ps_rdata_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return PB_ENOMEM;
    int rc = ps_rdata_parse(run->data, run->data_len, d, NULL);
    if (rc) {
        free(d);
        return rc;
    }
    s->data = d; /* the state owns it from here, on failure too */
    /* The plan's one bucket is the corpus size (ps_dataset_scan). */
    if (run->bucket != (int64_t)d->n_docs)
        return PB_EINVAL;
    s->n = d->n_docs;
    s->docno = malloc(s->n * sizeof *s->docno);
    s->text = malloc(s->n * sizeof *s->text);
    if (s->docno == NULL || s->text == NULL)
        return PB_ENOMEM;
    memcpy(s->docno, d->docno, s->n * sizeof *s->docno);
    memcpy(s->text, d->doc_text, s->n * sizeof *s->text);
    s->corpus = (ps_corpus_t){
        .n = s->n, .docno = (const char *const *)s->docno, .text = (const char *const *)s->text};
    return 0;
}

int ps__rt_query_data(const rt_state_t *s, uint64_t idx, rt_query_t *q)
{
    const ps_rdata_t *d = s->data;
    memset(q, 0, sizeof *q);
    if (idx >= d->n_queries)
        return PB_EINVAL;
    size_t lo = d->qrel_at[idx], n = d->qrel_at[idx + 1] - lo; /* >= 1: parse checked */
    q->rel = malloc(n * sizeof *q->rel);
    q->grade = malloc(n * sizeof *q->grade);
    if (q->rel == NULL || q->grade == NULL) {
        ps__rt_query_clear(q);
        return PB_ENOMEM;
    }
    memcpy(q->rel, &d->qrel_doc[lo], n * sizeof *q->rel);
    memcpy(q->grade, &d->qrel_grade[lo], n * sizeof *q->grade);
    q->n_rel = n;
    return 0;
}

int ps__rt_rank_sets_data(const rt_state_t *s, const ps_run_t *run, uint64_t idx,
                          ps_rank_sets_t *out)
{
    const ps_rdata_t *d = s->data;
    size_t n = s->n, easy = (size_t)s->p.easy;
    uint8_t *taken = NULL;
    pb_rng_t r;
    int rc = PB_ENOMEM;

    memset(out, 0, sizeof *out);
    if (idx >= d->n_queries)
        return PB_EINVAL;
    size_t j0 = d->qrel_at[idx], nj = d->qrel_at[idx + 1] - j0;
    size_t h0 = d->hard_at[idx], nh = d->hard_at[idx + 1] - h0;
    size_t want = (size_t)s->p.pool;
    if (want < nj + nh + easy)
        want = nj + nh + easy; /* every judged doc and negative fits */
    if (want > n)
        want = n;
    taken = calloc(n / 8 + 1, 1);
    out->pool = malloc(want * sizeof *out->pool);
    out->hard = malloc((nh ? nh : 1) * sizeof *out->hard);
    out->easy = malloc(easy * sizeof *out->easy);
    if (!taken || !out->pool || !out->hard || !out->easy)
        goto out;
    for (size_t i = 0; i < nj; i++)
        ps__rt_take(taken, out->pool, &out->n_pool, d->qrel_doc[j0 + i]);
    for (size_t i = 0; i < nh; i++) {
        out->hard[out->n_hard++] = d->hard_doc[h0 + i];
        ps__rt_take(taken, out->pool, &out->n_pool, d->hard_doc[h0 + i]);
    }
    /* Easy negatives: unjudged docs, not hard ones, drawn from the run's
     * key and the query alone; fewer when the corpus has too few. */
    pb_rng_seed(&r, pb_hash_u64(run->key, 0x65617379ULL), idx);
    for (size_t tries = 0; out->n_easy < easy && tries < 100 * n; tries++) {
        uint32_t doc = (uint32_t)pb_rng_below(&r, n);
        if (taken[doc / 8] & (1u << (doc % 8)))
            continue;
        out->easy[out->n_easy++] = doc;
        ps__rt_take(taken, out->pool, &out->n_pool, doc);
    }
    /* Filler: random documents, then (a pool near the corpus size) the rest in order. */
    for (size_t tries = 0; out->n_pool < want && tries < 4 * want; tries++)
        ps__rt_take(taken, out->pool, &out->n_pool, (uint32_t)pb_rng_below(&r, n));
    for (uint32_t doc = 0; out->n_pool < want && doc < n; doc++)
        ps__rt_take(taken, out->pool, &out->n_pool, doc);
    rc = 0;
out:
    free(taken);
    if (rc)
        ps_rank_sets_clear(out);
    return rc;
}
