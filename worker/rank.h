/* The runner's ranking path (ranking suites such as retrieval): the run's
 * corpus is ranked once per task by the evaluated model, as a dual encoder
 * (backend embed: top-k by dot product with the kernels) or a cross encoder
 * (backend score_pairs over each query's candidate pool), scored against a
 * teacher, and every query handed back to the runner to record. */
#ifndef PB_RANK_H
#define PB_RANK_H

#include <jansson.h>
#include <stdint.h>

#include "common/pb.h"
#include "suites/suite.h"
#include "worker/backend.h"

/* Record one scored query: prediction is the item's stored text (top 10
 * docnos), latency_us the model's time on it, metrics the suite's. */
typedef int (*pb_rank_emit_fn)(void *ctx, ps_item_t *item, const char *prediction,
                               int64_t latency_us, double score, const double *metrics,
                               pb_err_t *err);

typedef struct pb_rank_task {
    const ps_run_t *run;        /* open, of a suite with the ranking callbacks */
    const pb_backend_ops_t *ops; /* the evaluated model, open */
    pb_backend_t *be;
    const json_t *model;        /* its spec: "teacher" is read from here */
    uint64_t seed;
    int64_t item_lo, item_hi;
    int64_t batch;              /* queries per round (model.batch_size) */
    volatile int *cancel;       /* may be NULL */
    pb_rank_emit_fn emit;
    void *ctx;
    void (*progress)(void *ctx, uint64_t done); /* may be NULL; gets progress_ctx */
    void *progress_ctx;
    int64_t *model_us, *score_us; /* accumulated */
} pb_rank_task_t;

/* The teacher when the model spec names none. */
#define PB_RANK_TEACHER "bm25"
/* Depth of a dual encoder's ranking (trec_eval -M 100). */
#define PB_RANK_DEPTH 100
/* Cap on corpus x embedding floats one task holds (512 MiB). */
#define PB_RANK_MAX_FLOATS ((size_t)1 << 27)

/* Rank items [item_lo, item_hi) of t->run and emit each. The model's
 * optional "teacher" ({"backend": ..., options}; default {"backend":
 * "bm25"}) scores every query's pool, and the suite's tau_hard/tau_easy
 * compare the two models' scores on its hard and easy negatives. A model
 * that can neither embed nor score pairs is PB_EINVAL (field
 * model.backend); a backend failure PB_EBACKEND; cancel PB_ECANCELLED. */
int pb_rank_run(const pb_rank_task_t *t, pb_err_t *err);

#endif
