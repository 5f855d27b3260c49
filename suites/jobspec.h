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
 * spec is not modified. */
int ps_plan_build(const json_t *spec, ps_plan_t **out, pb_err_t *err);
void ps_plan_free(ps_plan_t *plan);

/* Backends a job may name (the worker implements them). */
int ps_backend_known(const char *name);

#endif
