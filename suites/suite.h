/* The suite interface (ARCHITECTURE.md section 8): every benchmark suite is a
 * ps_suite_t with a name, tasks, a parameter schema with defaults, length
 * buckets, a deterministic generator, a scorer and an aggregate. Suites use
 * common/ and kernels/ only: no I/O, no sockets, no database. */
#ifndef PS_SUITE_H
#define PS_SUITE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"
#include "common/rng.h"

/* One generated sample. Everything is owned by the item; ps_item_clear frees. */
typedef struct ps_item {
    uint64_t idx;         /* index within its (run, bucket): 0 .. samples-1 */
    int64_t bucket;       /* bucket value: digit count, context length, ... */
    char *prompt;         /* what the model sees */
    char *reference;      /* the canonical gold answer (what `oracle` answers) */
    json_t *meta;         /* item metadata, e.g. {"da": 3, "db": 5}; may be NULL */
    int64_t length;       /* actual prompt length in the run's unit */
    uint64_t prompt_hash; /* pb_hash_str of the prompt */
    /* A multi-part item (n_parts > 0; halluc's caption triplets): each part
     * is a prompt of its own that the backend answers alone, part_refs[k]
     * its gold answer. The scorer then gets the answers as a JSON array of
     * strings, one per part, in order. prompt and reference hold the parts
     * joined by "\n" for the record; length is the longest part's. */
    size_t n_parts;
    char **parts;
    char **part_refs;
} ps_item_t;

#define PS_MAX_PARTS 8   /* parts of one item */
#define PS_MAX_METRICS 16 /* per-item metrics of one suite */

void ps_item_clear(ps_item_t *item);

typedef struct ps_suite ps_suite_t;

/* A model's tokenizer as a run sees it (the backend's, when it has one):
 * count sets *n to the number of tokens of text[0, len) and returns 0 or a
 * PB_E* code. Suites that size prompts by a length target measure with
 * ps_run_length, so a bucket of 4096 means 4096 tokens under a tokenizer
 * and 4096 characters without one. */
typedef struct ps_tokenizer {
    void *ctx;
    int (*count)(void *ctx, const char *text, size_t len, int64_t *n);
    int failed; /* the first error count returned (ps_run_length sets it) */
} ps_tokenizer_t;

/* A prepared run: one suite task with normalised params, one bucket, one seed.
 * key = hash(suite, task, canonical params, bucket, seed); item i is generated
 * from pb_rng_seed(key, i). */
typedef struct ps_run {
    const ps_suite_t *suite;
    const char *task;     /* points into the suite's task table */
    json_t *params;       /* owned reference: normalised params */
    int64_t bucket;
    uint64_t seed;
    uint64_t key;
    void *state;          /* suite-private parsed params (suite->prepare) */
    ps_tokenizer_t *tok;  /* NULL: lengths are characters (bytes) */
    /* A dataset run of a suite that reads the whole file (retrieval builds
     * its corpus from it): the file's bytes, borrowed for the run's life
     * (ps_run_open_data); NULL otherwise. */
    const char *data;
    size_t data_len;
} ps_run_t;

/* The length of text[0, len) in the run's unit: tokens under run->tok,
 * else bytes. When the tokenizer fails the text counts as its bytes and
 * tok->failed keeps the error, which the runner turns into the item's
 * generation error: generators need no error path of their own. */
int64_t ps_run_length(const ps_run_t *run, const char *text, size_t len);
/* "tokens" or "chars": the unit ps_run_length measures in. */
const char *ps_run_unit(const ps_run_t *run);

/* Per-bucket statistics handed to aggregate. */
typedef struct ps_bucket_stat {
    int64_t bucket;
    double n;         /* items scored */
    double score_sum; /* sum of item scores (exact match: number correct) */
    /* Sums of the suite's per-item metrics over the same items, in the
     * order of suite->metrics, and how many items each metric was defined
     * for (a metric's mean is metric_sum[k] / metric_n[k]); both NULL when
     * the suite has none or none were recorded. */
    const double *metric_sum;
    const double *metric_n;
} ps_bucket_stat_t;

/* ---- Ranking suites (retrieval) ----
 * A ranking suite's items are queries over a corpus that belongs to the run,
 * not to the item: prepare builds it from run->key alone, so every shard of
 * a (run, bucket) ranks the same documents. The worker ranks the corpus with
 * the model (worker/rank.c) and calls score_ranking instead of score. */
typedef struct ps_corpus {
    size_t n;
    /* Unique document ids. trec_eval breaks score ties by docno, descending
     * (strcmp reversed), and so do the ranking suites. */
    const char *const *docno;
    const char *const *text;
} ps_corpus_t;

/* Documents of one query that the worker scores besides its ranking, as
 * corpus indices (malloc'd; ps_rank_sets_clear frees). pool: a cross
 * encoder's candidates (every judged document, the hard and easy negatives,
 * then filler); hard, easy: the negatives teacher-student agreement is
 * measured on, each a subset of pool. */
typedef struct ps_rank_sets {
    uint32_t *pool, *hard, *easy;
    size_t n_pool, n_hard, n_easy;
} ps_rank_sets_t;

void ps_rank_sets_clear(ps_rank_sets_t *s);

/* A model's scores for one query, handed to score_ranking. docs/scores: the
 * retrieved documents (any order: the scorer sorts as trec_eval does and
 * cuts at its depth). student_* and teacher_*: the two models' scores of the
 * query's sets.hard and sets.easy, in that order; NULL (and the agreement
 * metrics 0) when there is no teacher. */
typedef struct ps_ranking {
    const uint32_t *docs;
    const double *scores;
    size_t n;
    const double *student_hard, *teacher_hard; /* n_hard each */
    const double *student_easy, *teacher_easy; /* n_easy each */
    size_t n_hard, n_easy;
} ps_ranking_t;

typedef struct ps_task_def {
    const char *name;
    const char *description;
    const char *bucket_unit; /* what this task's buckets count; NULL: the suite's */
} ps_task_def_t;

/* Metric kinds (suite->metric_kinds). A proportion is a mean of per-item
 * values in [0, 1], higher is better, tested run against run with a
 * two-proportion test; LOWER and HIGHER are measurements (timings,
 * throughputs) tested against the spread of their history; INFO is
 * recorded and plotted, never alerted on. */
enum { PS_KIND_PROPORTION = 0, PS_KIND_LOWER = 1, PS_KIND_HIGHER = 2, PS_KIND_INFO = 3 };

struct ps_suite {
    const char *name;
    const char *description;
    int version;              /* generator version, recorded with every result */
    const char *bucket_unit;  /* "digits", "tokens", "chars", "cells", ... */
    const ps_task_def_t *tasks;
    size_t n_tasks;
    /* Item meta keys the results are also grouped by, within each bucket:
     * an entry is one key ("depth") or several joined by commas ("da,db");
     * the group's value is the items' values of those keys (integers or
     * strings) joined the same way ("3,5"). NULL-terminated, or NULL for
     * none. An item that lacks a key is left out of that entry's groups. */
    const char *const *breakdown;
    /* Names of per-item metrics the scorer reports besides the score
     * (halluc's in_acc/out_acc, retrieval's ndcg@10, ...), summed per bucket
     * like the score and handed to aggregate as metric_sum. NULL-terminated,
     * at most PS_MAX_METRICS, or NULL for none. */
    const char *const *metrics;
    /* How the regression detector compares each of metrics over a series
     * (PS_KIND_*, parallel to metrics), or NULL when all are proportions.
     * The score itself is always a proportion. */
    const unsigned char *metric_kinds;
    /* Items per bucket when a run gives no "samples" (0: 20). */
    int default_samples;

    /* Parameter schema with defaults for a task, as JSON:
     * {"param": {"type": "...", "default": ..., "description": "...", ...}}.
     * New reference. */
    json_t *(*schema)(const char *task);
    /* Validate params (may be NULL = all defaults) for a task and return a
     * new normalised object with every default filled in. On failure *out is
     * NULL and err names the field relative to params ("digits"). */
    int (*normalize)(const char *task, const json_t *params, json_t **out, pb_err_t *err);
    /* Bucket values for normalised params, ascending; *out is malloc'd. */
    int (*buckets)(const char *task, const json_t *params, int64_t **out, size_t *n);
    /* Parse run->params into run->state (optional; NULL = nothing to do). */
    int (*prepare)(ps_run_t *run);
    void (*release)(ps_run_t *run);
    /* Generate item idx of run. Deterministic in (run->key, idx). */
    int (*generate)(const ps_run_t *run, uint64_t idx, ps_item_t *out);
    /* Score a prediction for item: *score in [0, 1] (1 = correct), and
     * metrics[k] for each of suite->metrics (the caller zeroes them; NULL
     * when the suite has none). A metric that is undefined for this item
     * (Kendall tau over fewer than two distinct scores) is NAN: it is left
     * out of that metric's sums and counts, not averaged in as a zero. */
    int (*score)(const ps_run_t *run, const ps_item_t *item, const char *prediction,
                 double *score, double *metrics);
    /* Ranking suites only (all three set, or all NULL): the run's corpus
     * (borrowed from run->state); the sets of item (an item generate made)
     * into *out; and the item's score (and metrics) from a ranking, with
     * *prediction the text stored as the item's prediction (malloc'd, NULL
     * on failure). */
    const ps_corpus_t *(*corpus)(const ps_run_t *run);
    int (*rank_sets)(const ps_run_t *run, const ps_item_t *item, ps_rank_sets_t *out);
    int (*score_ranking)(const ps_run_t *run, const ps_item_t *item, const ps_ranking_t *r,
                         char **prediction, double *score, double *metrics);
    /* Measuring suites only (kernels): time code on the worker instead of
     * asking a model. The runner generates each item, then calls measure in
     * place of the backend and score: *score in [0, 1] (1 = the output
     * checked out), metrics[k] as score's (NAN where undefined), and
     * *prediction the text stored as the item's prediction (malloc'd, NULL
     * on failure). The model spec of such a job only labels the series. On
     * failure returns a PB_E* code with err set. NULL for every other suite. */
    int (*measure)(const ps_run_t *run, const ps_item_t *item, char **prediction, double *score,
                   double *metrics, pb_err_t *err);
    /* Run-level aggregate over all buckets (new reference), e.g.
     * {"accuracy": .., "effective_length": .., "threshold": ..}. */
    json_t *(*aggregate)(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                         size_t n);
};

/* Registry. */
const ps_suite_t *ps_suite_find(const char *name);
const ps_task_def_t *ps_suite_task(const ps_suite_t *suite, const char *task);
/* The unit a task's buckets count (the task's own, else the suite's). */
const char *ps_task_unit(const ps_suite_t *suite, const char *task);
size_t ps_suite_count(void);
const ps_suite_t *ps_suite_at(size_t i);
/* The whole registry as served by GET /api/v1/suites (new reference):
 * {"suites": [{"name", "description", "version", "bucket_unit",
 *              "tasks": [{"name", "description", "bucket_unit", "params": schema}]}]} */
json_t *ps_registry_json(void);

/* Open a run: validates nothing (params must already be normalised), computes
 * the key and calls prepare. On failure run is cleared. */
int ps_run_open(ps_run_t *run, const ps_suite_t *suite, const char *task, json_t *params,
                int64_t bucket, uint64_t seed);
/* ps_run_open with a dataset's bytes in run->data before prepare. */
int ps_run_open_data(ps_run_t *run, const ps_suite_t *suite, const char *task, json_t *params,
                     int64_t bucket, uint64_t seed, const char *data, size_t data_len);
void ps_run_close(ps_run_t *run);

/* Number of names in suite->metrics. */
size_t ps_suite_n_metrics(const ps_suite_t *suite);

/* Shared scorer: exact match after whitespace normalisation (trim, take the
 * first line, drop interior whitespace). Returns 1.0 or 0.0. */
double ps_exact_match(const char *prediction, const char *reference);

#endif
