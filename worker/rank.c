/* The ranking path of the runner (worker/rank.h). Per task: the corpus comes
 * from the suite once; a dual-encoder model (embed) embeds it once, rows in
 * reverse docno order so that pk_similarity_topk's tie rule (lower row
 * first) is trec_eval's (higher docno first), and each round of queries
 * takes its top PB_RANK_DEPTH; a cross-encoder model (score_pairs) scores
 * each query's candidate pool. The teacher always scores the pool. */
#include "worker/rank.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"
#include "kernels/kernels.h"

typedef struct rank_ctx {
    const pb_rank_task_t *t;
    const ps_suite_t *suite;
    const ps_corpus_t *corpus;
    const pb_backend_ops_t *tops; /* the teacher */
    pb_backend_t *tbe;
    pk_ctx_t *pk;
    float *demb; /* dual encoder: (n, dim), row r = document n - 1 - r */
    size_t dim;
} rank_ctx_t;

static int cancelled(volatile int *cancel)
{
    return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED);
}

/* Open the teacher the model spec names (default PB_RANK_TEACHER). */
static int open_teacher(rank_ctx_t *c, pb_err_t *err)
{
    const json_t *spec = json_object_get(c->t->model, "teacher");
    json_t *dflt = NULL;
    const char *name;
    if (spec == NULL || json_is_null(spec))
        spec = dflt = json_pack("{s:s}", "backend", PB_RANK_TEACHER);
    if (spec == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    int rc = json_is_object(spec) ? 0
                                  : pb_err_set(err, PB_EINVAL, "model.teacher",
                                               "model.teacher must be an object");
    rc = rc ? rc : pb_json_str(spec, "backend", NULL, 1, &name, "model.teacher", err);
    if (rc == 0 && (c->tops = pb_backend_find(name)) == NULL)
        rc = pb_err_set(err, PB_EINVAL, "model.teacher.backend",
                        "teacher backend '%s' is not available on this worker", name);
    if (rc == 0 && !c->tops->score_pairs && !c->tops->embed)
        rc = pb_err_set(err, PB_EINVAL, "model.teacher.backend",
                        "teacher backend '%s' can neither score pairs nor embed", name);
    if (rc == 0) {
        rc = c->tops->open(spec, c->t->seed, &c->tbe, err);
        if (rc && err && strncmp(err->field, "model", 5) == 0) {
            /* Its option errors name model.x; they are model.teacher.x here. */
            char f[sizeof err->field];
            snprintf(f, sizeof f, "model.teacher%s", err->field + 5);
            memcpy(err->field, f, sizeof f);
        }
    }
    json_decref(dflt);
    return rc;
}

/* The backend's embeddings of texts[0, n): checked shape, *dim set from the
 * first call and held to after. *out malloc'd. */
static int embed_checked(const pb_backend_ops_t *ops, pb_backend_t *be, const char *const *texts,
                         size_t n, float **out, size_t *dim, pb_err_t *err)
{
    size_t d = 0;
    *out = NULL;
    int rc = ops->embed(be, texts, n, out, &d, err);
    if (rc)
        return rc == PB_ENOMEM ? rc : PB_EBACKEND;
    if (*out == NULL || d == 0 || d > 65536 || (*dim && d != *dim)) {
        free(*out);
        *out = NULL;
        return pb_err_set(err, PB_EBACKEND, "", "backend %s returned embeddings of dimension %zu",
                          ops->name, d);
    }
    *dim = d;
    return 0;
}

static double dot(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Dual encoder: embed the corpus once, in blocks, into c->demb. */
#define EMBED_BLOCK 256
static int embed_corpus(rank_ctx_t *c, pb_err_t *err)
{
    const ps_corpus_t *co = c->corpus;
    size_t n = co->n;
    for (size_t lo = 0; lo < n; lo += EMBED_BLOCK) {
        size_t m = n - lo < EMBED_BLOCK ? n - lo : EMBED_BLOCK;
        float *e = NULL;
        int rc = embed_checked(c->t->ops, c->t->be, co->text + lo, m, &e, &c->dim, err);
        if (rc)
            return rc;
        if (c->demb == NULL) {
            if (n > PB_RANK_MAX_FLOATS / c->dim) {
                free(e);
                return pb_err_set(err, PB_ETOOBIG, "model",
                                  "%zu documents x dimension %zu is too large for one task", n,
                                  c->dim);
            }
            if ((c->demb = malloc(n * c->dim * sizeof *c->demb)) == NULL) {
                free(e);
                return pb_err_set(err, PB_ENOMEM, "", "out of memory");
            }
        }
        for (size_t i = 0; i < m; i++)
            memcpy(&c->demb[(n - 1 - (lo + i)) * c->dim], &e[i * c->dim], c->dim * sizeof *e);
        free(e);
        if (cancelled(c->t->cancel))
            return pb_err_set(err, PB_ECANCELLED, "", "cancelled");
    }
    return 0;
}

/* Scores of the pool docs by a model: score_pairs when it has it, else the
 * dot product of its embeddings of the query and the docs. */
static int pool_scores(const rank_ctx_t *c, const pb_backend_ops_t *ops, pb_backend_t *be,
                       const ps_item_t *it, const ps_rank_sets_t *sets, double *out,
                       pb_err_t *err)
{
    const char **texts = malloc((sets->n_pool + 1) * sizeof *texts);
    float *e = NULL;
    size_t dim = 0;
    int rc;
    if (texts == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < sets->n_pool; i++)
        texts[i + 1] = c->corpus->text[sets->pool[i]];
    if (ops->score_pairs) {
        rc = ops->score_pairs(be, it, texts + 1, sets->n_pool, out, err);
        if (rc && rc != PB_ENOMEM)
            rc = PB_EBACKEND;
    } else {
        texts[0] = it->prompt;
        rc = embed_checked(ops, be, texts, sets->n_pool + 1, &e, &dim, err);
        for (size_t i = 0; rc == 0 && i < sets->n_pool; i++)
            out[i] = dot(e, &e[(i + 1) * dim], dim);
    }
    free(texts);
    free(e);
    return rc;
}

/* The scores in pool_sc of sub's documents (each one of sets->pool). */
static void pick(const ps_rank_sets_t *sets, const double *pool_sc, const uint32_t *sub,
                 size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < sets->n_pool; j++)
            if (sets->pool[j] == sub[i]) {
                out[i] = pool_sc[j];
                break;
            }
}

/* One round: items [lo, lo + nq) generated, ranked, scored and emitted. */
typedef struct round {
    ps_item_t *its;
    ps_rank_sets_t *sets;
    double **tpool;  /* teacher's pool scores, when it scores a round at once */
    float *qemb;     /* dual: (nq, dim) */
    int64_t *top;    /* dual: (nq, k) */
    float *top_sc;   /* the kernel's (unused: rescored in double) */
} round_t;

static int rank_query(rank_ctx_t *c, round_t *r, size_t i, size_t k, int64_t lat_us,
                      pb_err_t *err)
{
    const pb_rank_task_t *t = c->t;
    ps_item_t *it = &r->its[i];
    ps_rank_sets_t *s = &r->sets[i];
    size_t np = s->n_pool, n = c->corpus->n;
    double *tsc = malloc((np + 1) * sizeof *tsc), *ssc = malloc((np + 1) * sizeof *ssc);
    double sh[64], th[64], se[64], te[64], *dsc = NULL, m[PS_MAX_METRICS] = {0}, score = 0;
    uint32_t *docs = NULL;
    char *pred = NULL;
    int rc = PB_ENOMEM;
    int64_t t0 = pb_now_us();
    if (tsc == NULL || ssc == NULL)
        goto oom;
    if (s->n_hard > 64 || s->n_easy > 64) {
        rc = pb_err_set(err, PB_EINVAL, "", "a query has more than 64 hard or easy negatives");
        goto out;
    }
    ps_ranking_t rk = {.n_hard = s->n_hard, .n_easy = s->n_easy};
    if (r->qemb) {
        /* Dual encoder: the kernel's candidates, rescored here in double.
         * The kernel's float sums depend on how many queries share the call
         * (its blocking), so its scores would let the shard size reorder
         * near-ties; one query's double dot products do not. */
        const float *q = &r->qemb[i * c->dim];
        if ((docs = malloc(k * sizeof *docs)) == NULL || (dsc = malloc(k * sizeof *dsc)) == NULL)
            goto oom;
        rk.n = 0;
        for (size_t j = 0; j < k; j++)
            if (r->top[i * k + j] >= 0) {
                size_t row = (size_t)r->top[i * k + j];
                docs[rk.n] = (uint32_t)(n - 1 - row);
                dsc[rk.n++] = dot(q, &c->demb[row * c->dim], c->dim);
            }
        rk.docs = docs;
        rk.scores = dsc;
        for (size_t j = 0; j < np; j++)
            ssc[j] = dot(q, &c->demb[(n - 1 - s->pool[j]) * c->dim], c->dim);
    } else {
        rc = pool_scores(c, t->ops, t->be, it, s, ssc, err);
        if (rc)
            goto out;
        rk.docs = s->pool;
        rk.scores = ssc;
        rk.n = np;
    }
    lat_us += pb_now_us() - t0;
    if (r->tpool)
        memcpy(tsc, r->tpool[i], np * sizeof *tsc);
    else if ((rc = pool_scores(c, c->tops, c->tbe, it, s, tsc, err)) != 0)
        goto out;
    pick(s, ssc, s->hard, s->n_hard, sh);
    pick(s, tsc, s->hard, s->n_hard, th);
    pick(s, ssc, s->easy, s->n_easy, se);
    pick(s, tsc, s->easy, s->n_easy, te);
    rk.student_hard = sh;
    rk.teacher_hard = th;
    rk.student_easy = se;
    rk.teacher_easy = te;
    *t->model_us += pb_now_us() - t0;
    int64_t t1 = pb_now_us();
    rc = c->suite->score_ranking(t->run, it, &rk, &pred, &score, m);
    if (rc) {
        rc = pb_err_set(err, rc, "", "scoring item %llu: %s", (unsigned long long)it->idx,
                        pb_strerror(rc));
        goto out;
    }
    *t->score_us += pb_now_us() - t1;
    rc = t->emit(t->ctx, it, pred, lat_us, score, m, err);
    goto out;
oom:
    rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
out:
    free(tsc);
    free(ssc);
    free(docs);
    free(dsc);
    free(pred);
    return rc;
}

/* The teacher's pool scores for every query of the round in one call
 * (score_pairs_many: a remote teacher takes them concurrently). */
static int teacher_round(const rank_ctx_t *c, round_t *r, size_t nq, pb_err_t *err)
{
    const ps_item_t **qs = calloc(nq, sizeof *qs);
    const char ***docs = calloc(nq, sizeof *docs);
    size_t *n = calloc(nq, sizeof *n);
    int rc = 0;
    r->tpool = calloc(nq, sizeof *r->tpool);
    if (qs == NULL || docs == NULL || n == NULL || r->tpool == NULL)
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
    for (size_t i = 0; rc == 0 && i < nq; i++) {
        const ps_rank_sets_t *s = &r->sets[i];
        qs[i] = &r->its[i];
        n[i] = s->n_pool;
        docs[i] = malloc((s->n_pool ? s->n_pool : 1) * sizeof *docs[i]);
        r->tpool[i] = malloc((s->n_pool ? s->n_pool : 1) * sizeof *r->tpool[i]);
        if (docs[i] == NULL || r->tpool[i] == NULL) {
            rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
            break;
        }
        for (size_t j = 0; j < s->n_pool; j++)
            docs[i][j] = c->corpus->text[s->pool[j]];
    }
    if (rc == 0) {
        int64_t t0 = pb_now_us();
        rc = c->tops->score_pairs_many(c->tbe, qs, (const char *const *const *)docs, n, nq,
                                       r->tpool, err);
        if (rc && rc != PB_ENOMEM)
            rc = PB_EBACKEND;
        *c->t->model_us += pb_now_us() - t0;
    }
    for (size_t i = 0; docs && i < nq; i++)
        free(docs[i]);
    free(docs);
    free(qs);
    free(n);
    return rc;
}

static void round_free_tpool(round_t *r, size_t nq)
{
    for (size_t i = 0; r->tpool && i < nq; i++)
        free(r->tpool[i]);
    free(r->tpool);
    r->tpool = NULL;
}

static int run_round(rank_ctx_t *c, int64_t lo, size_t nq, pb_err_t *err)
{
    const pb_rank_task_t *t = c->t;
    /* Candidates beyond the depth, so rescoring (rank_query) cannot pull a
     * document in from outside the kernel's top k. */
    size_t n = c->corpus->n, k = n < PB_RANK_DEPTH + 32 ? n : PB_RANK_DEPTH + 32, made = 0;
    round_t r = {0};
    int64_t lat = 0;
    int rc = PB_ENOMEM;
    r.its = calloc(nq, sizeof *r.its);
    r.sets = calloc(nq, sizeof *r.sets);
    if (r.its == NULL || r.sets == NULL)
        goto oom;
    for (; made < nq; made++) {
        uint64_t idx = (uint64_t)lo + made;
        rc = c->suite->generate(t->run, idx, &r.its[made]);
        rc = rc ? rc : c->suite->rank_sets(t->run, &r.its[made], &r.sets[made]);
        if (rc) {
            made++;
            rc = pb_err_set(err, rc, "", "generating item %llu: %s", (unsigned long long)idx,
                            pb_strerror(rc));
            goto out;
        }
    }
    if (c->demb) {
        const char **q = malloc(nq * sizeof *q);
        if (q == NULL)
            goto oom;
        for (size_t i = 0; i < nq; i++)
            q[i] = r.its[i].prompt;
        int64_t t0 = pb_now_us();
        size_t dim = c->dim;
        rc = embed_checked(t->ops, t->be, q, nq, &r.qemb, &dim, err);
        free(q);
        if (rc)
            goto out;
        r.top = malloc(nq * k * sizeof *r.top);
        r.top_sc = malloc(nq * k * sizeof *r.top_sc);
        if (r.top == NULL || r.top_sc == NULL)
            goto oom;
        rc = pk_similarity_topk(c->pk, PK_SIM_DOT, r.qemb, (int)nq, c->demb, (int64_t)n,
                                (int)c->dim, (int)k, r.top, r.top_sc);
        if (rc) {
            rc = pb_err_set(err, rc == PK_ENOMEM ? PB_ENOMEM : PB_EINVAL, "",
                            "similarity top-k: %s", pk_strerror(rc));
            goto out;
        }
        lat = (pb_now_us() - t0) / (int64_t)nq; /* the round's query side, per query */
        *t->model_us += pb_now_us() - t0;
    }
    if (c->tops->score_pairs_many && (rc = teacher_round(c, &r, nq, err)) != 0)
        goto out;
    for (size_t i = 0; i < nq; i++) {
        rc = rank_query(c, &r, i, k, lat, err);
        if (rc)
            goto out;
        if (cancelled(t->cancel)) {
            rc = pb_err_set(err, PB_ECANCELLED, "", "cancelled");
            goto out;
        }
    }
    rc = 0;
    goto out;
oom:
    rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
out:
    for (size_t i = 0; i < made; i++) {
        ps_item_clear(&r.its[i]);
        ps_rank_sets_clear(&r.sets[i]);
    }
    round_free_tpool(&r, nq);
    free(r.its);
    free(r.sets);
    free(r.qemb);
    free(r.top);
    free(r.top_sc);
    return rc;
}

int pb_rank_run(const pb_rank_task_t *t, pb_err_t *err)
{
    rank_ctx_t c = {.t = t, .suite = t->run->suite};
    int rc;
    if (!c.suite->corpus || !c.suite->rank_sets || !c.suite->score_ranking ||
        (c.corpus = c.suite->corpus(t->run)) == NULL || c.corpus->n == 0)
        return pb_err_set(err, PB_EINVAL, "suite", "suite %s has no corpus to rank",
                          c.suite->name);
    if (!t->ops->embed && !t->ops->score_pairs)
        return pb_err_set(err, PB_EINVAL, "model.backend",
                          "backend %s can neither embed (dual encoder) nor score pairs (cross "
                          "encoder): suite %s ranks documents",
                          t->ops->name, c.suite->name);
    if ((rc = open_teacher(&c, err)))
        goto out;
    if (t->ops->embed) {
        if (pk_ctx_create(&c.pk, 1, PK_ISA_AUTO) != PK_OK) {
            rc = pb_err_set(err, PB_ENOMEM, "", "cannot create a kernels context");
            goto out;
        }
        int64_t t0 = pb_now_us();
        rc = embed_corpus(&c, err);
        *t->model_us += pb_now_us() - t0;
        if (rc)
            goto out;
    }
    int64_t batch = t->batch > 0 ? t->batch : 32;
    for (int64_t lo = t->item_lo; lo < t->item_hi; lo += batch) {
        if (cancelled(t->cancel)) {
            rc = pb_err_set(err, PB_ECANCELLED, "", "cancelled");
            goto out;
        }
        int64_t m = t->item_hi - lo < batch ? t->item_hi - lo : batch;
        rc = run_round(&c, lo, (size_t)m, err);
        if (rc)
            goto out;
        if (t->progress)
            t->progress(t->progress_ctx, (uint64_t)(lo + m - t->item_lo));
    }
    rc = 0;
out:
    if (c.tbe)
        c.tops->close(c.tbe);
    pk_ctx_destroy(c.pk);
    free(c.demb);
    return rc;
}
