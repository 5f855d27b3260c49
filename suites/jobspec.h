/* Job specs: validate a submitted job against the suite registry, fill in
 * defaults, and expand it into tasks (one suite run x one bucket x one shard
 * of at most shard_size items). Used by the coordinator at submit time and by
 * schedules; pure computation, no I/O. */
#ifndef PS_JOBSPEC_H
#define PS_JOBSPEC_H

#include <jansson.h>
#include <stdint.h>

#include "common/pb.h"

#define PS_DEFAULT_SHARD_SIZE 64
#define PS_DEFAULT_MAX_ATTEMPTS 3
#define PS_DEFAULT_TIMEOUT_S 600
#define PS_MAX_SAMPLES 1000000
/* A job is inserted in one transaction on the coordinator's loop: 100,000
 * tasks take well under a second, so heartbeats keep flowing. */
#define PS_MAX_TASKS 100000

typedef struct ps_plan_task {
    size_t run;        /* index into runs */
    int64_t bucket;
    uint64_t item_lo;  /* first item index (within the run's bucket) */
    uint64_t item_hi;  /* one past the last */
} ps_plan_task_t;

typedef struct ps_plan_run {
    const char *suite;  /* registry-owned */
    const char *task;   /* registry-owned */
    json_t *params;     /* owned: normalised params */
    uint64_t samples;   /* items per bucket */
    int version;        /* generator version of the suite */
    int64_t *buckets;   /* owned */
    size_t n_buckets;
    char *dataset;      /* owned: the dataset's hash, or NULL for a generator run */
    uint64_t *bucket_samples; /* owned, per bucket (dataset runs); NULL: samples each */
} ps_plan_run_t;

typedef struct ps_plan {
    json_t *spec;       /* owned: the normalised spec, every default filled in */
    const char *name;   /* points into spec */
    json_t *model;      /* borrowed from spec: {"name", "backend", ...} */
    uint64_t seed;
    int priority;       /* higher runs first */
    const char *device; /* "cpu", "gpu" or "any" (points into spec) */
    int max_attempts;
    int timeout_s;
    uint64_t shard_size;
    ps_plan_run_t *runs;
    size_t n_runs;
    ps_plan_task_t *tasks;
    size_t n_tasks;
    uint64_t items_total;
} ps_plan_t;

/* Validate spec and build the plan. On failure *out is NULL and err names the
 * field as a JSON path ("runs[1].params.digits", "model.backend", "seed").
 * spec is not modified. A run naming a dataset is refused here (no store to
 * look it up in): see ps_plan_build_ds. */
int ps_plan_build(const json_t *spec, ps_plan_t **out, pb_err_t *err);

/* What the plan needs of a dataset a run names ("dataset": "<sha256>"):
 * the suite it was checked for and its line counts per bucket, ascending.
 * The resolver mallocs buckets and counts; the plan takes them. */
typedef struct ps_dataset_ref {
    char suite[64];
    int64_t *buckets;
    uint64_t *counts;
    size_t n_buckets;
} ps_dataset_ref_t;
/* 0, PB_ENOTFOUND for an unknown hash, or another PB_E* code. */
typedef int (*ps_dataset_resolve_fn)(void *ctx, const char *hash, ps_dataset_ref_t *out);

/* ps_plan_build where runs may name a dataset instead of generator params:
 * its buckets are the dataset's, samples (optional) caps the lines taken
 * per bucket and defaults to all of them; params still go to the suite's
 * normalize (the scorer reads them). */
int ps_plan_build_ds(const json_t *spec, ps_dataset_resolve_fn resolve, void *ctx,
                     ps_plan_t **out, pb_err_t *err);
void ps_plan_free(ps_plan_t *plan);

/* Backends a job may name (the worker implements them). */
int ps_backend_known(const char *name);

/* The native backend's model options (worker/backend_native.c reads them):
 * "path" (required checkpoint directory), "pe" (an object: the engine's PE
 * override, checked by the coordinator with the engine), "max_tokens",
 * "temperature" (0 = greedy), "top_p" (0, 1], "top_k" (0 = off), "threads",
 * "stop" (an array of strings). Only shapes and ranges: nothing is opened. */
#define PS_NATIVE_PATH_MAX 4096
#define PS_NATIVE_STOP_MAX 16
#define PS_NATIVE_STOP_LEN 256
int ps_native_model_check(const json_t *model, pb_err_t *err);

/* The openai backend's model options (worker/backend_openai.c reads them):
 * "base_url" (required, http(s)), "model" (required), "mode" ("completion"
 * or "chat"), "rerank" ("rerank" or "score"), "api_key_env" (the name of a
 * variable in the worker's environment), "max_concurrency", "timeout_s",
 * "retries", "backoff_ms", "max_response_mb", "temperature", "cache",
 * "tokenize", "extra" (an object). Only shapes and ranges: the key
 * variable is looked up on the worker. */
#define PS_OAI_URL_MAX 960
#define PS_OAI_CONCURRENCY_MAX 1024
int ps_openai_model_check(const json_t *model, pb_err_t *err);

#endif
