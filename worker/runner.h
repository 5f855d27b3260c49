/* The task runner: turns one TASK body into one RESULT body by generating
 * the task's items with its suite, asking the backend for predictions in
 * batches and scoring them. No sockets and no threads of its own, so the
 * worker's session runs it on a runner thread and the tests call it directly. */
#ifndef PB_RUNNER_H
#define PB_RUNNER_H

#include <jansson.h>
#include <stdint.h>

#include "common/pb.h"
#include "common/util.h"

#define PB_RUNNER_BATCH 32           /* default items per backend call */
#define PB_RUNNER_BATCH_MAX 1024     /* cap on model.batch_size */
#define PB_RUNNER_MAX_ITEMS 100000   /* cap on item_hi - item_lo */
#define PB_RUNNER_PRED_MAX 4096      /* predictions are stored cut to this many bytes */

typedef void (*pb_runner_progress_fn)(void *ctx, uint64_t done);

/* Run a task. task is the TASK body: "suite", "task", "params", "bucket",
 * "item_lo", "item_hi", "seed", "model" {"backend", ..., "batch_size"?,
 * "max_tokens"?} and optional "version" (the suite generator version the
 * coordinator expects; a mismatch is PB_ESTALE). Other keys are ignored.
 *
 * On success *result is a new object holding the RESULT body without
 * "task_id"/"attempt" (the session adds them): {"aggregate": {"n",
 * "score_sum", "groups"?}, "timings": {"generate_us", "score_us", "total_us"},
 * "version"}, and items (reset first) holds the items text that travels as
 * RESULT's payload frame (common/items.h). Items that the backend failed
 * carry an error, prediction "" and score 0, and count in n.
 * "groups" (worker/breakdown.h) is there when the suite has a breakdown and
 * some item matched: [[entry, value, n, score_sum], ...] sorted by (entry,
 * value); more than PB_MAX_GROUPS groups fails the task with PB_ETOOBIG.
 *
 * cancel (may be NULL) is read between batches and after each backend call;
 * once non-zero the run stops with PB_ECANCELLED. progress (may be NULL) is
 * called with the number of items scored after each batch.
 * On failure *result is NULL, err says what, and the code says how to report
 * it (pb_runner_error_class). */
int pb_runner_run(const json_t *task, volatile int *cancel, pb_runner_progress_fn progress,
                  void *ctx, json_t **result, pb_buf_t *items, pb_err_t *err);

/* FAIL classification of a pb_runner_run error: "bad_task" (the task itself
 * is wrong: not retryable), "backend" (model or backend trouble, including a
 * backend this worker lacks: retryable elsewhere) or "internal" (retryable). */
const char *pb_runner_error_class(int rc, int *retryable);

#endif
