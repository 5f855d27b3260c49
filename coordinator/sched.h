/* The in-memory run queue: queued tasks by priority (higher first), then
 * fair round-robin between jobs of equal priority, so a 10,000-task job
 * cannot starve a 10-task job submitted after it. A task goes only to a
 * worker whose capabilities match its device and backend. The store stays
 * the source of truth; this is rebuilt from it at start. */
#ifndef PB_SCHED_H
#define PB_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "db/store.h"

typedef struct pb_sched pb_sched_t;

/* What a worker offers. */
typedef struct pb_sched_caps {
    const char *device;          /* "cpu" or "gpu" */
    const char *const *backends; /* names */
    size_t n_backends;
} pb_sched_caps_t;

int pb_sched_new(pb_sched_t **out);
void pb_sched_free(pb_sched_t *s);

/* Queue a task (copied). enqueued_us stamps when it became queued, for the
 * queue-latency figures. front = 1 puts it at the head of its job (retries). */
int pb_sched_add(pb_sched_t *s, const pdb_task_ref_t *t, int64_t enqueued_us, int front);

/* Take the next task for a worker with these capabilities. Returns 1 and
 * fills *out (and *enqueued_us) when one matched, 0 when none did. */
int pb_sched_pick(pb_sched_t *s, const pb_sched_caps_t *caps, pdb_task_ref_t *out,
                  int64_t *enqueued_us);

/* Drop every queued task of a job (cancelled or failed). Returns how many. */
size_t pb_sched_drop_job(pb_sched_t *s, int64_t job_id);

size_t pb_sched_depth(const pb_sched_t *s);

/* Whether caps can run a task with this device/backend requirement. */
int pb_sched_match(const pb_sched_caps_t *caps, const char *device, const char *backend);

#endif
