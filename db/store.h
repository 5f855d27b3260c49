/* The store: posbench's SQLite database (WAL, one writer: the coordinator's
 * loop thread). Schema in db/schema.sql, migrations by PRAGMA user_version,
 * prepared statements only. Every mutating call runs inside a SAVEPOINT, so
 * it is atomic alone and composes inside pdb_begin()/pdb_commit() (the
 * coordinator groups many results into one commit, then sends the ACKs).
 * Uses common/ and sqlite3 only. */
#ifndef PDB_STORE_H
#define PDB_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "common/pb.h"
#include "suites/jobspec.h"

typedef struct pdb pdb_t;

/* Task states. */
#define PDB_QUEUED "queued"
#define PDB_LEASED "leased"
#define PDB_DONE "done"
#define PDB_FAILED "failed"
#define PDB_CANCELLED "cancelled"

/* Open (creating if needed) and migrate. On failure *out is NULL and err says
 * why (e.g. "database is newer than this posbench: user_version 7 > 3"). */
int pdb_open(const char *path, pdb_t **out, pb_err_t *err);
void pdb_close(pdb_t *db);
int pdb_begin(pdb_t *db);
int pdb_commit(pdb_t *db);
int pdb_rollback(pdb_t *db);
/* Last SQLite error text, for logs. */
const char *pdb_errmsg(pdb_t *db);

/* ---- jobs ---- */

/* Insert a planned job with its runs and tasks (state queued) in one
 * transaction. idem_key may be NULL; when a job with the same key exists, no
 * job is inserted, *job_id is the existing id and PB_EEXIST is returned.
 * schedule_id is 0 when the job was not fired by a schedule. */
int pdb_job_insert(pdb_t *db, const ps_plan_t *plan, const char *idem_key, int64_t schedule_id,
                   int64_t *job_id);

/* Job object: {"id", "name", "state", "created_at", "started_at", "finished_at",
 * "priority", "seed", "model": {...}, "spec": {...}, "items_total", "items_done",
 * "error", "schedule_id",
 * "tasks": {"queued": n, "leased": n, "done": n, "failed": n, "cancelled": n},
 * "runs": [{"index", "suite", "task", "params", "samples", "version",
 *           "buckets": [{"bucket", "items_total", "items_done",
 *                        "tasks_total", "tasks_done"}]}],
 * "failed_tasks": [{"id", "bucket", "attempt", "error"}]}
 * Timestamps are ISO-8601 strings; times not reached yet, "error" and
 * "schedule_id" are null when unset. failed_tasks lists at most 100.
 * PB_ENOTFOUND when there is no such job. */
int pdb_job_get(pdb_t *db, int64_t job_id, json_t **out);

/* {"jobs": [job objects without "spec", "runs", "failed_tasks"], "next": id|null}
 * newest first; state may be NULL (any); before_id 0 = from the newest.
 * limit <= 0 means 50, and at most 1000 are returned. */
int pdb_jobs_list(pdb_t *db, const char *state, int64_t before_id, int limit, json_t **out);

/* The same page for the jobs a schedule fired (the jobs_schedule index). */
int pdb_jobs_list_schedule(pdb_t *db, int64_t schedule_id, int64_t before_id, int limit,
                           json_t **out);

/* Cancel: queued and leased tasks become cancelled, the job cancelled.
 * *leased gets a new array of {"task_id", "attempt", "worker"} for the tasks
 * that were leased (the caller sends CANCEL). PB_ENOTFOUND for no job,
 * PB_ESTATE when the job is already done/failed/cancelled. */
int pdb_job_cancel(pdb_t *db, int64_t job_id, json_t **leased);

/* Raw results: {"job_id", "state", "runs": [{"index", "suite", "task", "params",
 * "samples", "version", "buckets": [{"bucket", "n", "score_sum"}],
 * "breakdown_rows": [{"key", "value", "bucket", "n", "score_sum"}]}]}.
 * breakdown_rows (only on runs that have any) are the recorded groups per
 * bucket, ordered by key, bucket, value (strcmp order); the caller sums them
 * over buckets and orders the values. The caller also adds accuracy, Wilson
 * intervals and the suite aggregate. */
int pdb_job_results(pdb_t *db, int64_t job_id, json_t **out);

/* Items, paged by (task_id, idx) keyset: {"items": [{"task_id", "run", "bucket",
 * "idx", "prompt_hash", "prediction", "reference", "score", "latency_us",
 * "tokens", "meta", "error"}], "next": "TASKID:IDX"|null, "total": n}.
 * run/bucket < 0 means any; after may be NULL. limit <= 0 means 100, and at
 * most 10000 are returned. prediction/reference/prompt_hash/error come back as
 * the worker's strings (a non-string value was stored as its JSON text).
 * PB_EINVAL for a malformed cursor, PB_ENOTFOUND for no job. */
int pdb_job_items(pdb_t *db, int64_t job_id, int run, int64_t bucket, const char *after, int limit,
                  json_t **out);

/* What regenerating item (task_id, idx) of a job needs: {"run", "bucket",
 * "prompt_hash", "suite", "task", "params" (normalised), "version",
 * "dataset" (hash or null), "seed"}. PB_ENOTFOUND when no such item is
 * stored. */
int pdb_item_source(pdb_t *db, int64_t job_id, int64_t task_id, int64_t idx, json_t **out);

/* ---- tasks (the scheduler's side) ---- */

/* What the scheduler keeps in memory for a queued task. */
typedef struct pdb_task_ref {
    int64_t task_id;
    int64_t job_id;
    int priority;
    char device[8];   /* "cpu", "gpu", "any" */
    char backend[32]; /* model backend */
    int64_t items;    /* item_hi - item_lo */
    int timeout_s;    /* the job's task timeout */
} pdb_task_ref_t;

/* Call fn for every queued task of running/queued jobs in id order
 * (job_id = 0: all jobs). Stops early and returns fn's value if non-zero.
 * fn may call other store functions, but not pdb_tasks_queued itself. */
int pdb_tasks_queued(pdb_t *db, int64_t job_id, int (*fn)(void *ctx, const pdb_task_ref_t *t),
                     void *ctx);

/* Lease a queued task to a worker: attempt+1, state leased, lease deadline.
 * *task gets the TASK body: {"task_id", "attempt", "job_id", "run", "suite",
 * "task", "params", "bucket", "item_lo", "item_hi", "seed", "model",
 * "timeout_s", "version"}. The job becomes running if it was queued.
 * PB_ESTATE when the task is no longer queued (cancelled meanwhile).
 * The top-level object is new and the caller's; the values inside it (params,
 * model, strings) are shared with the store's per-run cache: add keys to the
 * body freely, but do not modify the nested values. */
int pdb_task_lease(pdb_t *db, int64_t task_id, const char *worker, double lease_deadline,
                   json_t **task);

/* Extend a lease (heartbeat). PB_ESTALE if not leased at that attempt. */
int pdb_task_renew(pdb_t *db, int64_t task_id, int attempt, double lease_deadline);

/* Limits on a result's breakdown groups (aggregate.groups). */
#define PDB_MAX_GROUPS 4096
#define PDB_GROUP_KEY_MAX 128   /* bytes of a key ("da,db") */
#define PDB_GROUP_VALUE_MAX 256 /* bytes of a value ("3,5") */

/* Record a RESULT exactly once: accepted only by
 * UPDATE tasks SET state='done' ... WHERE id=? AND attempt=? AND state='leased';
 * items (a JSON array as the worker sent it: objects with "idx", "prompt_hash",
 * "prediction", "reference", "score", "latency_us", "tokens", "meta", "error")
 * and the aggregate {"n", "score_sum", "groups"} are stored in the same
 * transaction, the job's items_done grows, and the job becomes done when no
 * task is left. groups (optional) is an array of at most PDB_MAX_GROUPS
 * [key, value, n, score_sum] (strings of at most PDB_GROUP_KEY_MAX and
 * PDB_GROUP_VALUE_MAX bytes, an integer n >= 0, a number), each added to the
 * task's (job, run, bucket, key, value) row.
 * Returns 0 when recorded, PB_ESTALE when stale or duplicate (nothing
 * changed), PB_EPARSE when items or groups are malformed (nothing changed;
 * err says what, field "items[i]" or "aggregate.groups[i]"). *job_done is
 * set to 1 when this result finished the job. aggregate may be NULL: n and
 * score_sum are then taken from the items, and there are no groups. */
int pdb_task_record(pdb_t *db, int64_t task_id, int attempt, const json_t *items,
                    const json_t *aggregate, int *job_done, int64_t *job_id, pb_err_t *err);

/* The same with the items as text (the RESULT payload frame, scanned by
 * common/items.h without building a JSON tree). */
int pdb_task_record_text(pdb_t *db, int64_t task_id, int attempt, const char *items, size_t len,
                         const json_t *aggregate, int *job_done, int64_t *job_id, pb_err_t *err);

/* A lease was lost (worker dead, lease expired) or the worker sent FAIL.
 * If retryable and attempt < max_attempts: back to queued (*requeued = 1).
 * Otherwise the task fails with error and its job fails (remaining queued
 * tasks of the job become cancelled). PB_ESTALE if not leased at that attempt. */
int pdb_task_release(pdb_t *db, int64_t task_id, int attempt, const char *error, int retryable,
                     int *requeued);

/* Leased tasks whose lease ended before `now`: array of {"task_id", "attempt",
 * "worker"} (new reference). */
int pdb_tasks_expired(pdb_t *db, double now, json_t **out);

/* Startup recovery: every leased task back to queued (attempt kept; the next
 * lease increments it, so a late result from the old lease is dropped).
 * *n gets how many. */
int pdb_recover(pdb_t *db, int *n);

/* ---- workers ---- */

/* Upsert by name: capabilities JSON, state ("idle", "busy", "gone"),
 * last_seen now. */
int pdb_worker_seen(pdb_t *db, const char *name, const json_t *caps, const char *state);
/* {"workers": [{"name", "state", "capabilities", "connected_at", "last_seen",
 * "tasks_done", "current_tasks": [ids]}]}; current tasks come from leases. */
int pdb_workers_list(pdb_t *db, json_t **out);
/* Mark every worker gone (coordinator start). */
int pdb_workers_reset(pdb_t *db);

/* ---- leaderboard ---- */

/* Per (suite, task, model name) the latest done run:
 * {"entries": [{"suite", "task", "model", "backend", "job_id", "run", "date",
 *   "n", "score_sum", "params", "buckets": [{"bucket","n","score_sum"}],
 *   "breakdown_rows"?: the run's reserved rows (per-item metric sums and the
 *   length unit, common/proto.h) as pdb_job_results gives them}]}
 * suite may be NULL (all). The caller ranks and adds intervals. */
int pdb_leaderboard(pdb_t *db, const char *suite, json_t **out);

/* ---- schedules ---- */

/* Insert: name, cron expression, job template (a job spec), enabled, next
 * fire time (computed by the caller). PB_EEXIST for a duplicate name. */
int pdb_schedule_insert(pdb_t *db, const char *name, const char *cron, const json_t *tmpl,
                        int enabled, double next_fire, int64_t *id);
/* {"schedules": [{"id", "name", "cron", "template", "enabled", "created_at",
 * "last_fired_at", "next_fire_at", "last_job_id"}]} */
int pdb_schedules_list(pdb_t *db, json_t **out);
int pdb_schedule_get(pdb_t *db, int64_t id, json_t **out);
int pdb_schedule_set_enabled(pdb_t *db, int64_t id, int enabled, double next_fire);
/* Enabled schedules with next_fire_at <= now: array of {"id", "name", "cron",
 * "template", "next_fire_at" (epoch seconds)}. */
int pdb_schedules_due(pdb_t *db, double now, json_t **out);
/* After firing: record last fired time, job id, next fire time. */
int pdb_schedule_fired(pdb_t *db, int64_t id, double fired_at, int64_t job_id, double next_fire);

/* ---- datasets (db/store_datasets.c) ---- */

/* What pdb_dataset_put records of a checked upload (all borrowed). */
typedef struct pdb_dataset_meta {
    const char *hash;  /* SHA-256 of the content, 64 lowercase hex digits */
    const char *name;
    const char *suite; /* the suite (or "retrieval") its lines were checked for */
    uint64_t lines;
    const int64_t *buckets; /* ascending */
    const uint64_t *counts; /* lines per bucket */
    size_t n_buckets;
} pdb_dataset_meta_t;

/* The directory dataset files live in: "<db path>-datasets", created when
 * missing. PB_EUNSUPPORTED for an in-memory database. */
int pdb_datasets_dir(pdb_t *db, char *out, size_t n);
/* The file of a dataset: "<dir>/<hash>.jsonl" (whether or not it exists). */
int pdb_dataset_path(pdb_t *db, const char *hash, char *out, size_t n);
/* Store data[0, len) as dataset m->hash: the file first (temporary file,
 * fsync, rename), then the row; when the row cannot be inserted the file is
 * removed again. The same hash stored before is not written again:
 * *created = 0 and *out is the existing record. *out is the record:
 * {"hash", "name", "suite", "bytes", "lines", "buckets": [{"bucket",
 * "lines"}], "created_at"}. */
int pdb_dataset_put(pdb_t *db, const pdb_dataset_meta_t *m, const char *data, size_t len,
                    int *created, json_t **out);
/* pdb_dataset_put in two halves, so the slow one runs off the loop thread.
 * pdb_dataset_file_write needs no pdb_t (dir from pdb_datasets_dir) and is
 * thread-safe: "<dir>/<hash>.jsonl" through a temporary file, fsync, rename;
 * *had_file tells whether that file existed before. On failure nothing new
 * is left. pdb_dataset_record then inserts the row (or finds the same hash
 * stored before: *created = 0) for the len bytes written; when that fails
 * and !had_file the file is removed again. */
int pdb_dataset_file_write(const char *dir, const char *hash, const char *data, size_t len,
                           int *had_file);
int pdb_dataset_record(pdb_t *db, const pdb_dataset_meta_t *m, size_t len, int had_file,
                       int *created, json_t **out);
/* The record of one dataset; PB_ENOTFOUND when there is none. */
int pdb_dataset_get(pdb_t *db, const char *hash, json_t **out);
/* {"datasets": [records]}, newest first, at most 1000. */
int pdb_datasets_list(pdb_t *db, json_t **out);
/* What a job plan needs (suites/jobspec.h ps_dataset_ref_t): the suite
 * into suite[suite_len], and malloc'd bucket values and line counts. */
int pdb_dataset_ref(pdb_t *db, const char *hash, char *suite, size_t suite_len,
                    int64_t **buckets, uint64_t **counts, size_t *n);

/* ---- metrics ---- */

/* {"tasks": {"queued": n, "leased": n, "done": n, "failed": n, "cancelled": n},
 *  "jobs": {state: n}, "items_total": n, "results_total": n}
 * items_total counts stored items (sum of jobs' items_done, no scan of items);
 * results_total counts recorded results (done tasks). */
int pdb_stats(pdb_t *db, json_t **out);

/* ---- schedules: editing, alerts (issue 7) ---- */

/* Change a schedule: each of cron (with its next fire time), tmpl, detect
 * that is non-NULL replaces the stored one; webhook replaces the stored URL
 * (NULL clears it) when set_webhook. PB_ENOTFOUND for no schedule. */
int pdb_schedule_update(pdb_t *db, int64_t id, const char *cron, double next_fire,
                        const json_t *tmpl, int set_webhook, const char *webhook,
                        const json_t *detect);

/* ---- series and points (store_series.c) ---- */

/* What identifies a series. schedule_id 0: keyed by the model name. params
 * is the run's canonical params JSON; testbed_id 0 means "several". */
typedef struct pdb_series_key {
    int64_t schedule_id;
    const char *model, *suite, *task, *params, *metric, *unit;
    int64_t bucket;
    int kind; /* PS_KIND_* */
    int64_t testbed_id;
} pdb_series_key_t;

/* The series' id, created when new; its updated_at becomes now. */
int pdb_series_upsert(pdb_t *db, const pdb_series_key_t *k, double now, int64_t *id);

/* One value of a series. NaN stores SQL NULL (and reads back as NaN). */
typedef struct pdb_point {
    int64_t series_id, job_id, run_idx, context_id;
    double t, value, n, lower, upper, baseline, limit_lo, limit_hi;
} pdb_point_t;

/* PB_EEXIST when the series already has this (job, run). */
int pdb_point_insert(pdb_t *db, const pdb_point_t *p);
/* The last (at most) max points of a series, oldest first, ordered by
 * (job_id, run_idx); only those before (before_job, before_run) when
 * before_job > 0. */
int pdb_series_points(pdb_t *db, int64_t series_id, int64_t before_job, int64_t before_run,
                      size_t max, pdb_point_t *out, size_t *n);

/* Done jobs not yet turned into points, oldest first: ids[i], and
 * history[i] = 1 for jobs done before detection existed (points only). */
int pdb_jobs_to_ingest(pdb_t *db, size_t max, int64_t *ids, int *history, size_t *n);
int pdb_job_set_ingested(pdb_t *db, int64_t job_id);
/* A job's schedule (0: none), finish time and model name (into name[n]). */
int pdb_job_brief(pdb_t *db, int64_t job_id, int64_t *schedule_id, double *finished_at,
                  char *name, size_t n);
/* Where a job's tasks ran: [{"run", "bucket", "testbed_id" (0 when several
 * or unknown), "context_id" (the last recorded, or 0)}]. */
int pdb_job_provenance(pdb_t *db, int64_t job_id, json_t **out);
/* What a job's results were produced on and with: distinct [{"run",
 * "testbed": {"id", "name", "info"} or null, "context": {...} or null}]
 * over its done tasks, by run. */
int pdb_run_provenance(pdb_t *db, int64_t job_id, json_t **out);
/* A stored context's JSON ({} when id is 0 or unknown). */
int pdb_context_get(pdb_t *db, int64_t id, json_t **out);

/* Series with points newer than their last change-point scan (all when
 * all): array of at most limit ids (0: no limit), oldest series first. */
int pdb_series_unscanned(pdb_t *db, int all, int limit, json_t **out);
int pdb_series_scanned(pdb_t *db, int64_t id, double now);
/* A series' kind (PS_KIND_*) and schedule (0: none). */
int pdb_series_info(pdb_t *db, int64_t id, int *kind, int64_t *schedule_id);

typedef struct pdb_series_filter {
    int64_t schedule_id; /* 0: any */
    const char *model, *suite, *task, *metric; /* NULL or "": any */
    int limit;
} pdb_series_filter_t;
/* {"series": [{"id", "schedule_id", "schedule", "model", "suite", "task",
 * "params", "bucket", "metric", "kind", "unit", "testbed": {"id", "name"},
 * "points", "last_value", "last_at", "open_regressions"}]} */
int pdb_series_list(pdb_t *db, const pdb_series_filter_t *f, json_t **out);
/* {"series": {...as listed}, "points": [{"job_id", "run", "t", "value", "n",
 * "lower", "upper", "baseline", "limit_lo", "limit_hi", "context"}]} */
int pdb_series_get(pdb_t *db, int64_t id, json_t **out);
/* {"testbeds": [{"id", "name", "info", "first_seen"}]} */
int pdb_testbeds_list(pdb_t *db, json_t **out);
/* Metric kind names as the API shows them ("proportion", "lower", ...). */
const char *pdb_kind_name(int kind);

/* ---- regressions and webhook deliveries (store_regress.c) ---- */

typedef struct pdb_regression {
    int64_t series_id;
    const char *detector; /* "two_prop", "fisher", "perf_gate", "changepoint" */
    int detector_version;
    int64_t job_before, job_after;
    double value_before, value_after, change, p_value, ci_lo, ci_hi; /* NaN: null */
    const json_t *changes; /* {field: [before, after]} or NULL */
} pdb_regression_t;

/* Insert, or when the series already has a regression at job_after,
 * refresh its statistics and keep its state: *created tells which. */
int pdb_regression_upsert(pdb_t *db, const pdb_regression_t *r, double now, int64_t *id,
                          int *created);
/* {"regressions": [R], "unacknowledged": n}; state NULL (any), a state, or
 * "open" (detected or acknowledged); schedule_id/series_id 0: any. R is
 * {"id", "state", "schedule_id", "schedule", "series_id", "series": {...},
 * "detector", "detector_version", "job_before", "job_after", "value_before",
 * "value_after", "change", "p_value", "ci", "changes", "note", "created_at",
 * "updated_at"}. */
int pdb_regressions_list(pdb_t *db, const char *state, int64_t schedule_id, int64_t series_id,
                         int limit, json_t **out);
int pdb_regression_get(pdb_t *db, int64_t id, json_t **out);
/* PB_EINVAL for an unknown state, PB_ENOTFOUND for no regression. note
 * NULL keeps the stored one. */
int pdb_regression_set_state(pdb_t *db, int64_t id, const char *state, const char *note,
                             double now);

int pdb_delivery_insert(pdb_t *db, int64_t schedule_id, int64_t job_id, const char *url,
                        const char *body, double now, int64_t *id);
/* Pending deliveries due at now: [{"id", "url", "body", "attempts"}]. */
int pdb_deliveries_due(pdb_t *db, double now, int limit, json_t **out);
/* After an attempt: delivered (state "delivered"), or failed for good
 * ("failed"), or to retry at next_at ("pending"); status is the HTTP
 * status (0: none) and error what went wrong (NULL when delivered). */
int pdb_delivery_attempted(pdb_t *db, int64_t id, const char *state, int status,
                           const char *error, double next_at, double now);
/* {"deliveries": [{"id", "schedule_id", "job_id", "url", "state", "attempts",
 * "last_status", "last_error", "created_at", "delivered_at"}]}, newest first. */
int pdb_deliveries_list(pdb_t *db, int64_t schedule_id, int limit, json_t **out);

#endif
