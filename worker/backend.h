/* The backend interface: what a worker calls to get model outputs. Baselines
 * `oracle` (always right: checks the scorer) and `random` (the floor) now;
 * `native` and `openai` plug in through the same table later. */
#ifndef PB_BACKEND_H
#define PB_BACKEND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"
#include "suites/suite.h"

typedef struct pb_backend pb_backend_t;

/* One generation request in a batch. The backend fills text (malloc'd) or
 * error (malloc'd message) for each request. */
typedef struct pb_gen_req {
    const ps_item_t *item; /* prompt in item->prompt; reference for oracle only */
    int max_tokens;
    char *text;
    char *error;
    int64_t tokens;     /* output tokens, 0 if unknown */
    int64_t latency_us;
} pb_gen_req_t;

typedef struct pb_backend_ops {
    const char *name;
    /* Open for a model spec (the job's "model" object). */
    int (*open)(const json_t *model, uint64_t seed, pb_backend_t **out, pb_err_t *err);
    /* Generate for a batch; per-request errors go in reqs[i].error and do not
     * fail the call. A non-zero return means the whole batch failed. */
    int (*generate)(pb_backend_t *b, pb_gen_req_t *reqs, size_t n, pb_err_t *err);
    void (*close)(pb_backend_t *b);

    /* The model's tokenizer (each optional). count_tokens sets *n to the
     * number of tokens of text[0, len); tokenize returns the token ids
     * (*ids malloc'd, *n of them). Either returns PB_EUNSUPPORTED when this
     * model has no tokenizer: suites then size prompts in characters and
     * the results say so. */
    int (*count_tokens)(pb_backend_t *b, const char *text, size_t len, int64_t *n);
    int (*tokenize)(pb_backend_t *b, const char *text, size_t len, int32_t **ids, size_t *n);

    /* Ranking suites (retrieval), each optional. embed: a dual encoder's
     * vectors of texts[0, n) as one n x *dim row-major float matrix
     * (*out malloc'd); score_pairs: a cross encoder's relevance of each of
     * docs[0, n) to the query item (its text in query->prompt; the
     * baselines read its reference) into scores[0, n), higher = more
     * relevant. */
    int (*embed)(pb_backend_t *b, const char *const *texts, size_t n, float **out, size_t *dim,
                 pb_err_t *err);
    int (*score_pairs)(pb_backend_t *b, const ps_item_t *query, const char *const *docs,
                       size_t n, double *scores, pb_err_t *err);
    /* score_pairs for nq queries at once (optional): query i's docs[i][0,
     * n[i]) into scores[i]. A remote model takes them concurrently; any
     * query's failure fails the call. */
    int (*score_pairs_many)(pb_backend_t *b, const ps_item_t *const *queries,
                            const char *const *const *docs, const size_t *n, size_t nq,
                            double *const *scores, pb_err_t *err);

    /* Multiple-choice scoring (optional; NULL for the baselines): for each
     * of conts[0, n), ll[i] = sum of log p(continuation tokens | context)
     * and greedy[i] (greedy may be NULL) = 1 when every continuation token
     * is the model's argmax. Tokenised as lm-evaluation-harness does:
     * the context's trailing whitespace moves to the continuation, the
     * continuation's tokens are what encode(context + cont) holds after
     * encode(context)'s count (so a merge across the boundary stays one
     * token), an empty context is the EOS token, and a context too long
     * for the model loses its head. A continuation adding no token is
     * PB_EINVAL for the whole call. */
    int (*loglik)(pb_backend_t *b, const char *context, const char *const *conts, size_t n,
                  double *ll, int *greedy, pb_err_t *err);

    /* What identifies the model's content (optional): keys added to the
     * result's provenance context (native: "path", "weights_sha256",
     * "config_sha256"), so a series can tell two checkpoints apart. */
    int (*provenance)(pb_backend_t *b, json_t *ctx);

    /* The task's cancel flag (optional): set non-zero when the task is
     * cancelled or times out. A backend that waits on something slow (a
     * remote server) checks it and gives up the call with PB_ECANCELLED. */
    void (*set_cancel)(pb_backend_t *b, volatile int *cancel);
} pb_backend_ops_t;

const pb_backend_ops_t *pb_backend_find(const char *name);
/* Comma-free list of backend names this worker build supports. */
size_t pb_backend_count(void);
const pb_backend_ops_t *pb_backend_at(size_t i);

#endif
