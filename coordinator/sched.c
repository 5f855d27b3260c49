/* Run queue: priority levels (sorted, highest first), each a ring of jobs
 * with queued tasks and a round-robin cursor; each job a FIFO of tasks. */
#include "coordinator/sched.h"

#include <stdlib.h>
#include <string.h>

#include "common/pb.h"
#include "common/util.h"

typedef struct sched_task {
    pdb_task_ref_t ref;
    int64_t enqueued_us;
} sched_task_t;

typedef struct sched_job {
    int64_t job_id;
    int priority;
    char device[8];
    char backend[32];
    sched_task_t *q; /* ring buffer */
    size_t head, len, cap;
    struct sched_job *next, *prev; /* ring within the level */
    struct sched_job *hnext;       /* hash chain */
    int in_ring;
} sched_job_t;

typedef struct sched_level {
    int priority;
    sched_job_t *cursor; /* next job to serve; NULL when the ring is empty */
} sched_level_t;

#define SCHED_BUCKETS 1024

struct pb_sched {
    sched_level_t *levels; /* sorted by priority, descending */
    size_t n_levels, cap_levels;
    sched_job_t *buckets[SCHED_BUCKETS];
    size_t depth;
};

int pb_sched_new(pb_sched_t **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : PB_ENOMEM;
}

void pb_sched_free(pb_sched_t *s)
{
    if (s == NULL)
        return;
    for (size_t b = 0; b < SCHED_BUCKETS; b++) {
        sched_job_t *j = s->buckets[b];
        while (j) {
            sched_job_t *n = j->hnext;
            free(j->q);
            free(j);
            j = n;
        }
    }
    free(s->levels);
    free(s);
}

static sched_job_t *job_find(pb_sched_t *s, int64_t id)
{
    for (sched_job_t *j = s->buckets[(uint64_t)id % SCHED_BUCKETS]; j; j = j->hnext)
        if (j->job_id == id)
            return j;
    return NULL;
}

static sched_level_t *level_get(pb_sched_t *s, int priority, int create)
{
    size_t i = 0;
    while (i < s->n_levels && s->levels[i].priority > priority)
        i++;
    if (i < s->n_levels && s->levels[i].priority == priority)
        return &s->levels[i];
    if (!create)
        return NULL;
    if (pb_grow(&s->levels, &s->cap_levels, s->n_levels + 1, sizeof *s->levels, 8))
        return NULL;
    memmove(&s->levels[i + 1], &s->levels[i], (s->n_levels - i) * sizeof *s->levels);
    s->levels[i].priority = priority;
    s->levels[i].cursor = NULL;
    s->n_levels++;
    return &s->levels[i];
}

/* Insert a job into its level's ring just before the cursor, i.e. it is
 * served after every job already waiting: new jobs join the rotation at
 * the back. */
static int ring_insert(pb_sched_t *s, sched_job_t *j)
{
    sched_level_t *lv = level_get(s, j->priority, 1);
    if (lv == NULL)
        return PB_ENOMEM;
    if (lv->cursor == NULL) {
        j->next = j->prev = j;
        lv->cursor = j;
    } else {
        sched_job_t *c = lv->cursor;
        j->next = c;
        j->prev = c->prev;
        c->prev->next = j;
        c->prev = j;
    }
    j->in_ring = 1;
    return 0;
}

static void ring_remove(pb_sched_t *s, sched_job_t *j)
{
    sched_level_t *lv = level_get(s, j->priority, 0);
    if (lv == NULL || !j->in_ring)
        return;
    if (j->next == j) {
        lv->cursor = NULL;
    } else {
        j->prev->next = j->next;
        j->next->prev = j->prev;
        if (lv->cursor == j)
            lv->cursor = j->next;
    }
    j->next = j->prev = NULL;
    j->in_ring = 0;
}

int pb_sched_add(pb_sched_t *s, const pdb_task_ref_t *t, int64_t enqueued_us, int front)
{
    sched_job_t *j = job_find(s, t->job_id);
    if (j == NULL) {
        j = calloc(1, sizeof *j);
        if (j == NULL)
            return PB_ENOMEM;
        j->job_id = t->job_id;
        j->priority = t->priority;
        memcpy(j->device, t->device, sizeof j->device);
        memcpy(j->backend, t->backend, sizeof j->backend);
        size_t b = (uint64_t)t->job_id % SCHED_BUCKETS;
        j->hnext = s->buckets[b];
        s->buckets[b] = j;
    }
    if (j->len == j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 16;
        sched_task_t *nq = malloc(nc * sizeof *nq);
        if (nq == NULL)
            return PB_ENOMEM;
        for (size_t i = 0; i < j->len; i++)
            nq[i] = j->q[(j->head + i) % j->cap];
        free(j->q);
        j->q = nq;
        j->head = 0;
        j->cap = nc;
    }
    sched_task_t st = {.ref = *t, .enqueued_us = enqueued_us};
    if (front) {
        j->head = (j->head + j->cap - 1) % j->cap;
        j->q[j->head] = st;
    } else {
        j->q[(j->head + j->len) % j->cap] = st;
    }
    j->len++;
    s->depth++;
    if (!j->in_ring)
        return ring_insert(s, j);
    return 0;
}

int pb_sched_match(const pb_sched_caps_t *caps, const char *device, const char *backend)
{
    if (strcmp(device, "any") != 0 && strcmp(device, caps->device) != 0)
        return 0;
    for (size_t i = 0; i < caps->n_backends; i++)
        if (strcmp(caps->backends[i], backend) == 0)
            return 1;
    return 0;
}

int pb_sched_pick(pb_sched_t *s, const pb_sched_caps_t *caps, pdb_task_ref_t *out,
                  int64_t *enqueued_us)
{
    for (size_t l = 0; l < s->n_levels; l++) {
        sched_level_t *lv = &s->levels[l];
        sched_job_t *start = lv->cursor;
        if (start == NULL)
            continue;
        sched_job_t *j = start;
        do {
            if (pb_sched_match(caps, j->device, j->backend)) {
                sched_task_t *st = &j->q[j->head];
                *out = st->ref;
                if (enqueued_us)
                    *enqueued_us = st->enqueued_us;
                j->head = (j->head + 1) % j->cap;
                j->len--;
                s->depth--;
                lv->cursor = j->next; /* round-robin: the next job goes next */
                if (j->len == 0)
                    ring_remove(s, j);
                return 1;
            }
            j = j->next;
        } while (j != start);
    }
    return 0;
}

size_t pb_sched_drop_job(pb_sched_t *s, int64_t job_id)
{
    sched_job_t *j = job_find(s, job_id);
    if (j == NULL)
        return 0;
    size_t n = j->len;
    s->depth -= n;
    j->len = 0;
    j->head = 0;
    ring_remove(s, j);
    return n;
}

size_t pb_sched_depth(const pb_sched_t *s) { return s->depth; }
