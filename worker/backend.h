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
} pb_backend_ops_t;

const pb_backend_ops_t *pb_backend_find(const char *name);
/* Comma-free list of backend names this worker build supports. */
size_t pb_backend_count(void);
const pb_backend_ops_t *pb_backend_at(size_t i);

#endif
