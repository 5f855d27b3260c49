/* Jobs in the store: inserting a planned job (model, runs, tasks, bucket
 * rows) under its idempotency key, the job objects the HTTP API returns,
 * cancel, raw results, keyset-paged items and the leaderboard. Every read
 * here costs the rows it returns: progress and sums come from the jobs row's
 * counters and the buckets table, never from grouping tasks or items. */
#include "db/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/rng.h"
#include "common/util.h"

/* ---- insert ---- */

/* The id of the model with this canonical spec, inserting it if new. */
static int model_id_for(pdb_t *db, const json_t *model, const char *spec, int64_t *id)
{
    const char *name = json_string_value(json_object_get(model, "name"));
    const char *backend = json_string_value(json_object_get(model, "backend"));
    char hash[17];
    int rc, src;

    if (name == NULL || backend == NULL)
        return PB_EINVAL;
    pb_hash_hex(pb_hash_str(PB_HASH_INIT, spec), hash);
    sqlite3_stmt *s = pdb__st(db, PDB_ST_MODEL_INSERT);
    pdb__bind_text(s, 1, name);
    pdb__bind_text(s, 2, backend);
    pdb__bind_text(s, 3, spec);
    pdb__bind_text(s, 4, hash);
    rc = pdb__run(db, s);
    if (rc)
        return rc;
    s = pdb__st(db, PDB_ST_MODEL_FIND);
    pdb__bind_text(s, 1, hash);
    src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        /* A 64-bit hash can collide; two different models must not merge. */
        const char *have = pdb__col_text(s, 1);
        rc = have && strcmp(have, spec) == 0 ? 0 : PB_EDB;
    } else {
        rc = pdb__err(db, src);
    }
    sqlite3_reset(s);
    return rc;
}

static int insert_runs_and_tasks(pdb_t *db, const ps_plan_t *plan, int64_t job_id, double now)
{
    int rc = 0;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_RUN_INSERT);
    for (size_t i = 0; i < plan->n_runs && rc == 0; i++) {
        const ps_plan_run_t *r = &plan->runs[i];
        if (r->suite == NULL || r->task == NULL)
            return PB_EINVAL;
        char *params = r->params ? json_dumps(r->params, JSON_COMPACT | JSON_SORT_KEYS |
                                                             JSON_REAL_PRECISION(17))
                                 : strdup("{}");
        if (params == NULL)
            return PB_ENOMEM;
        sqlite3_bind_int64(s, 1, job_id);
        sqlite3_bind_int64(s, 2, (int64_t)i);
        pdb__bind_text(s, 3, r->suite);
        pdb__bind_text(s, 4, r->task);
        sqlite3_bind_text(s, 5, params, -1, free); /* SQLite owns params now */
        sqlite3_bind_int64(s, 6, (int64_t)r->samples);
        sqlite3_bind_int(s, 7, r->version);
        pdb__bind_text(s, 8, r->dataset); /* NULL: a generator run */
        rc = pdb__run(db, s);
    }
    int max_attempts = plan->max_attempts > 0 ? plan->max_attempts : PS_DEFAULT_MAX_ATTEMPTS;
    s = pdb__st(db, PDB_ST_TASK_INSERT);
    for (size_t i = 0; i < plan->n_tasks && rc == 0; i++) {
        const ps_plan_task_t *t = &plan->tasks[i];
        if (t->run >= plan->n_runs || t->item_hi <= t->item_lo || t->item_hi > INT64_MAX)
            return PB_EINVAL;
        sqlite3_bind_int64(s, 1, job_id);
        sqlite3_bind_int64(s, 2, (int64_t)t->run);
        sqlite3_bind_int64(s, 3, t->bucket);
        sqlite3_bind_int64(s, 4, (int64_t)t->item_lo);
        sqlite3_bind_int64(s, 5, (int64_t)t->item_hi);
        sqlite3_bind_int(s, 6, max_attempts);
        sqlite3_bind_double(s, 7, now);
        rc = pdb__run(db, s);
    }
    if (rc == 0) {
        s = pdb__st(db, PDB_ST_BUCKETS_INIT);
        sqlite3_bind_int64(s, 1, job_id);
        rc = pdb__run(db, s);
    }
    return rc;
}

int pdb_job_insert(pdb_t *db, const ps_plan_t *plan, const char *idem_key, int64_t schedule_id,
                   int64_t *job_id)
{
    int rc;
    int64_t model_id = 0, id = 0;
    char *model_text = NULL, *spec_text = NULL;
    double now = pb_wall_time();

    *job_id = 0;
    if (plan == NULL || plan->spec == NULL || !json_is_object(plan->model) ||
        plan->n_runs == 0 || plan->n_tasks == 0)
        return PB_EINVAL;
    model_text = pb_json_canonical(plan->model);
    spec_text = pb_json_canonical(plan->spec);
    if (model_text == NULL || spec_text == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    rc = pdb__sp_begin(db);
    if (rc)
        goto out;
    if (idem_key != NULL) {
        sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_BY_IDEM);
        pdb__bind_text(s, 1, idem_key);
        int src = sqlite3_step(s);
        if (src == SQLITE_ROW) {
            id = sqlite3_column_int64(s, 0);
            rc = PB_EEXIST;
        } else if (src != SQLITE_DONE) {
            rc = pdb__err(db, src);
        }
        sqlite3_reset(s);
    }
    if (rc == 0)
        rc = model_id_for(db, plan->model, model_text, &model_id);
    if (rc == 0) {
        sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_INSERT);
        pdb__bind_text(s, 1, plan->name ? plan->name : "");
        sqlite3_bind_int64(s, 2, model_id);
        pdb__bind_text(s, 3, spec_text);
        sqlite3_bind_int64(s, 4, (int64_t)plan->seed); /* bit pattern kept for seeds >= 2^63 */
        sqlite3_bind_int(s, 5, plan->priority);
        pdb__bind_text(s, 6, plan->device ? plan->device : "any");
        sqlite3_bind_int(s, 7,
                         plan->max_attempts > 0 ? plan->max_attempts : PS_DEFAULT_MAX_ATTEMPTS);
        sqlite3_bind_int(s, 8, plan->timeout_s > 0 ? plan->timeout_s : PS_DEFAULT_TIMEOUT_S);
        pdb__bind_text(s, 9, idem_key);
        if (schedule_id > 0)
            sqlite3_bind_int64(s, 10, schedule_id);
        else
            sqlite3_bind_null(s, 10);
        sqlite3_bind_int64(s, 11, (int64_t)plan->items_total);
        sqlite3_bind_double(s, 12, now);
        sqlite3_bind_int64(s, 13, (int64_t)plan->n_tasks); /* every task starts queued */
        rc = pdb__run(db, s);
        id = rc == 0 ? sqlite3_last_insert_rowid(db->db) : 0;
    }
    if (rc == 0)
        rc = insert_runs_and_tasks(db, plan, id, now);
    rc = pdb__sp_end(db, rc);
    if (rc == 0 || rc == PB_EEXIST)
        *job_id = id;
out:
    free(model_text);
    free(spec_text);
    return rc;
}

/* ---- job objects ---- */

/* A job object from a row of PDB_JOB_COLS, task counts included. */
static int job_object(sqlite3_stmt *s, json_t **out)
{
    char t1[32], t2[32], t3[32];
    json_t *counts = pdb__col_task_counts(s, PDB_JOB_COL_TASKS);
    int64_t id = sqlite3_column_int64(s, 0);

    if (counts == NULL) {
        *out = NULL;
        return PB_ENOMEM;
    }
    /* json_pack steals counts, even when it fails. */
    *out = json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:s?, s:i, s:I, s:o?, s:I, s:I, s:s?, s:o?, s:o}",
                     "id", (json_int_t)id, "name", pdb__col_text(s, 1), "state",
                     pdb__col_text(s, 2), "created_at", pdb__col_iso(s, 3, t1), "started_at",
                     pdb__col_iso(s, 4, t2), "finished_at", pdb__col_iso(s, 5, t3), "priority",
                     sqlite3_column_int(s, 6), "seed", (json_int_t)sqlite3_column_int64(s, 7),
                     "model", pdb__col_json(s, 8), "items_total",
                     (json_int_t)sqlite3_column_int64(s, 9), "items_done",
                     (json_int_t)sqlite3_column_int64(s, 10), "error", pdb__col_text(s, 11),
                     "schedule_id", pdb__col_int(s, 12), "tasks", counts);
    return *out ? 0 : PB_ENOMEM;
}

/* The job's runs, each with per-bucket rows: progress counts for the job
 * object, or {"bucket", "n", "score_sum"} for results. */
static int runs_with_buckets(pdb_t *db, int64_t job_id, int results, json_t **out)
{
    int rc = 0, src;
    json_t *runs = json_array();
    sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_RUNS);

    *out = NULL;
    if (runs == NULL)
        return PB_ENOMEM;
    sqlite3_bind_int64(s, 1, job_id);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *r = json_pack("{s:I, s:s, s:s, s:o?, s:I, s:i, s:[]}", "index",
                              (json_int_t)sqlite3_column_int64(s, 0), "suite", pdb__col_text(s, 1),
                              "task", pdb__col_text(s, 2), "params", pdb__col_json(s, 3),
                              "samples", (json_int_t)sqlite3_column_int64(s, 4), "version",
                              sqlite3_column_int(s, 5), "buckets");
        if (json_array_append_new(runs, r)) {
            rc = PB_ENOMEM;
            goto out;
        }
    }
    sqlite3_reset(s);
    if (src != SQLITE_DONE) {
        rc = pdb__err(db, src);
        goto out;
    }
    s = pdb__st(db, PDB_ST_JOB_BUCKETS);
    sqlite3_bind_int64(s, 1, job_id);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        /* Runs are inserted with idx 0..n-1, so idx is the array index. */
        json_t *r = json_array_get(runs, (size_t)sqlite3_column_int64(s, 0));
        json_t *b;
        if (r == NULL)
            continue;
        json_int_t bucket = sqlite3_column_int64(s, 1);
        if (results)
            b = json_pack("{s:I, s:I, s:f}", "bucket", bucket, "n",
                          (json_int_t)sqlite3_column_int64(s, 6), "score_sum",
                          sqlite3_column_double(s, 7));
        else
            b = json_pack("{s:I, s:I, s:I, s:I, s:I}", "bucket", bucket, "items_total",
                          (json_int_t)sqlite3_column_int64(s, 4), "items_done",
                          (json_int_t)sqlite3_column_int64(s, 5), "tasks_total",
                          (json_int_t)sqlite3_column_int64(s, 2), "tasks_done",
                          (json_int_t)sqlite3_column_int64(s, 3));
        if (json_array_append_new(json_object_get(r, "buckets"), b)) {
            rc = PB_ENOMEM;
            goto out;
        }
    }
    if (src != SQLITE_DONE)
        rc = pdb__err(db, src);
out:
    sqlite3_reset(s);
    if (rc)
        json_decref(runs);
    else
        *out = runs;
    return rc;
}

static json_t *failed_task_row(sqlite3_stmt *s, void *ctx)
{
    (void)ctx;
    return json_pack("{s:I, s:I, s:i, s:s?}", "id", (json_int_t)sqlite3_column_int64(s, 0),
                     "bucket", (json_int_t)sqlite3_column_int64(s, 1), "attempt",
                     sqlite3_column_int(s, 2), "error", pdb__col_text(s, 3));
}

static int failed_tasks(pdb_t *db, int64_t job_id, json_t **out)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_FAILED_TASKS);
    sqlite3_bind_int64(s, 1, job_id);
    return pdb__collect(db, s, failed_task_row, NULL, out);
}

int pdb_job_get(pdb_t *db, int64_t job_id, json_t **out)
{
    int rc, src;
    json_t *job = NULL, *spec = NULL, *runs = NULL, *failed = NULL;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_GET);

    *out = NULL;
    sqlite3_bind_int64(s, 1, job_id);
    src = sqlite3_step(s);
    if (src != SQLITE_ROW) {
        sqlite3_reset(s);
        return src == SQLITE_DONE ? PB_ENOTFOUND : pdb__err(db, src);
    }
    rc = job_object(s, &job);
    spec = pdb__col_json(s, PDB_JOB_COL_TASKS + PDB_N_TS);
    sqlite3_reset(s);
    if (rc == 0)
        rc = runs_with_buckets(db, job_id, 0, &runs);
    if (rc == 0)
        rc = failed_tasks(db, job_id, &failed);
    if (rc == 0) {
        /* json_pack steals spec, runs and failed, even when it fails. */
        json_t *more = json_pack("{s:o?, s:o, s:o}", "spec", spec, "runs", runs, "failed_tasks",
                                 failed);
        spec = runs = failed = NULL;
        if (more == NULL || json_object_update(job, more))
            rc = PB_ENOMEM;
        json_decref(more);
    }
    json_decref(spec);
    json_decref(runs);
    json_decref(failed);
    if (rc)
        json_decref(job);
    else
        *out = job;
    return rc;
}

/* A page of jobs from s (one of the JOB_LIST statements, ?3 bound by the
 * caller when it has one). */
static int jobs_page(pdb_t *db, sqlite3_stmt *s, int64_t before_id, int limit, json_t **out);

int pdb_jobs_list(pdb_t *db, const char *state, int64_t before_id, int limit, json_t **out)
{
    sqlite3_stmt *s = pdb__st(db, state ? PDB_ST_JOB_LIST_STATE : PDB_ST_JOB_LIST_ALL);
    if (state)
        pdb__bind_text(s, 3, state);
    return jobs_page(db, s, before_id, limit, out);
}

int pdb_jobs_list_schedule(pdb_t *db, int64_t schedule_id, int64_t before_id, int limit,
                           json_t **out)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_LIST_SCHED);
    sqlite3_bind_int64(s, 3, schedule_id);
    return jobs_page(db, s, before_id, limit, out);
}

static int jobs_page(pdb_t *db, sqlite3_stmt *s, int64_t before_id, int limit, json_t **out)
{
    int rc = 0, src, n = 0;
    int64_t last = 0;
    json_t *arr = json_array();

    *out = NULL;
    if (arr == NULL) {
        sqlite3_reset(s);
        return PB_ENOMEM;
    }
    if (limit <= 0)
        limit = PDB_LIST_DEFAULT;
    if (limit > PDB_LIST_MAX)
        limit = PDB_LIST_MAX;
    sqlite3_bind_int64(s, 1, before_id > 0 ? before_id : INT64_MAX);
    sqlite3_bind_int(s, 2, limit + 1); /* one more row says whether a next page exists */
    while ((src = sqlite3_step(s)) == SQLITE_ROW && n < limit) {
        json_t *job = NULL;
        rc = job_object(s, &job);
        if (rc == 0 && json_array_append_new(arr, job))
            rc = PB_ENOMEM;
        if (rc)
            goto out;
        last = sqlite3_column_int64(s, 0);
        n++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = pdb__err(db, src);
        goto out;
    }
    *out = json_pack("{s:O, s:o?}", "jobs", arr, "next",
                     src == SQLITE_ROW ? json_integer(last) : NULL);
    if (*out == NULL)
        rc = PB_ENOMEM;
out:
    sqlite3_reset(s);
    json_decref(arr);
    return rc;
}

/* The job's state into buf; PB_ENOTFOUND when there is no such job. */
static int job_state(pdb_t *db, int64_t job_id, char buf[16])
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_STATE);
    sqlite3_bind_int64(s, 1, job_id);
    int src = sqlite3_step(s);
    int rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? PB_ENOTFOUND : pdb__err(db, src);
    if (rc == 0)
        snprintf(buf, 16, "%s", pdb__col_text(s, 0) ? pdb__col_text(s, 0) : "");
    sqlite3_reset(s);
    return rc;
}

int pdb_job_cancel(pdb_t *db, int64_t job_id, json_t **leased)
{
    int rc, src;
    char state[16];
    json_t *arr = json_array();

    *leased = NULL;
    if (arr == NULL)
        return PB_ENOMEM;
    rc = pdb__sp_begin(db);
    if (rc)
        goto out;
    rc = job_state(db, job_id, state);
    if (rc == 0 && strcmp(state, "queued") != 0 && strcmp(state, "running") != 0)
        rc = PB_ESTATE;
    if (rc == 0) {
        sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_LEASED_TASKS);
        sqlite3_bind_int64(s, 1, job_id);
        while ((src = sqlite3_step(s)) == SQLITE_ROW) {
            json_t *t = json_pack("{s:I, s:i, s:s?}", "task_id",
                                  (json_int_t)sqlite3_column_int64(s, 0), "attempt",
                                  sqlite3_column_int(s, 1), "worker", pdb__col_text(s, 2));
            if (json_array_append_new(arr, t)) {
                rc = PB_ENOMEM;
                break;
            }
        }
        if (rc == 0 && src != SQLITE_DONE)
            rc = pdb__err(db, src);
        sqlite3_reset(s);
    }
    if (rc == 0) {
        sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_CANCEL_TASKS);
        sqlite3_bind_int64(s, 1, job_id);
        rc = pdb__run(db, s);
    }
    if (rc == 0) {
        /* The leases were just listed inside this savepoint; the rest of
         * what the UPDATE changed was queued. */
        int64_t n_leased = (int64_t)json_array_size(arr);
        int64_t n_queued = sqlite3_changes64(db->db) - n_leased;
        rc = pdb__tally(db, job_id, PDB_TS_LEASED, PDB_TS_CANCELLED, n_leased, 0);
        if (rc == 0)
            rc = pdb__tally(db, job_id, PDB_TS_QUEUED, PDB_TS_CANCELLED, n_queued, 0);
    }
    if (rc == 0) {
        sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_FINISH);
        sqlite3_bind_int64(s, 1, job_id);
        pdb__bind_text(s, 2, PDB_CANCELLED);
        sqlite3_bind_double(s, 3, pb_wall_time());
        sqlite3_bind_null(s, 4);
        rc = pdb__run(db, s);
    }
    rc = pdb__sp_end(db, rc);
out:
    if (rc == 0)
        *leased = arr;
    else
        json_decref(arr);
    return rc;
}

/* Breakdown rows as "breakdown_rows" on the runs that have any: every row
 * of the job (run < 0; runs indexed by run_idx), or only the reserved rows
 * of one run (runs then holds that run alone). */
static int breakdown_rows(pdb_t *db, int64_t job_id, int64_t run, json_t *runs)
{
    int rc = 0, src;
    sqlite3_stmt *s = pdb__st(db, run < 0 ? PDB_ST_JOB_BREAKDOWNS : PDB_ST_RUN_RESERVED);

    sqlite3_bind_int64(s, 1, job_id);
    if (run >= 0)
        sqlite3_bind_int64(s, 2, run);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *r = json_array_get(runs, run < 0 ? (size_t)sqlite3_column_int64(s, 0) : 0);
        if (r == NULL)
            continue;
        json_t *rows = json_object_get(r, "breakdown_rows");
        if (rows == NULL && json_object_set_new(r, "breakdown_rows", rows = json_array())) {
            rc = PB_ENOMEM;
            break;
        }
        json_t *row = json_pack("{s:s, s:s, s:I, s:I, s:f}", "key", pdb__col_text(s, 1),
                                "value", pdb__col_text(s, 2), "bucket",
                                (json_int_t)sqlite3_column_int64(s, 3), "n",
                                (json_int_t)sqlite3_column_int64(s, 4), "score_sum",
                                sqlite3_column_double(s, 5));
        if (json_array_append_new(rows, row)) {
            rc = PB_ENOMEM;
            break;
        }
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = pdb__err(db, src);
    sqlite3_reset(s);
    return rc;
}

int pdb_job_results(pdb_t *db, int64_t job_id, json_t **out)
{
    char state[16];
    json_t *runs = NULL;

    *out = NULL;
    int rc = job_state(db, job_id, state);
    if (rc == 0)
        rc = runs_with_buckets(db, job_id, 1, &runs);
    if (rc == 0)
        rc = breakdown_rows(db, job_id, -1, runs);
    if (rc) {
        json_decref(runs);
        return rc;
    }
    *out = json_pack("{s:I, s:s, s:o}", "job_id", (json_int_t)job_id, "state", state, "runs",
                     runs);
    return *out ? 0 : PB_ENOMEM;
}

/* ---- items ---- */

/* "TASKID:IDX" -> numbers; PB_EINVAL for anything else. */
static int parse_cursor(const char *after, int64_t *task_id, int64_t *idx)
{
    char *end;
    errno = 0;
    long long t = strtoll(after, &end, 10);
    if (errno || end == after || *end != ':' || t < 0)
        return PB_EINVAL;
    const char *p = end + 1;
    long long i = strtoll(p, &end, 10);
    if (errno || end == p || *end != '\0' || i < -1)
        return PB_EINVAL;
    *task_id = t;
    *idx = i;
    return 0;
}

static json_t *item_row(sqlite3_stmt *s)
{
    json_t *score = sqlite3_column_type(s, 7) == SQLITE_NULL
                        ? NULL
                        : json_real(sqlite3_column_double(s, 7));
    return json_pack("{s:I, s:I, s:I, s:I, s:s?, s:s?, s:s?, s:o?, s:o?, s:o?, s:o?, s:s?}",
                     "task_id", (json_int_t)sqlite3_column_int64(s, 0), "run",
                     (json_int_t)sqlite3_column_int64(s, 1), "bucket",
                     (json_int_t)sqlite3_column_int64(s, 2), "idx",
                     (json_int_t)sqlite3_column_int64(s, 3), "prompt_hash", pdb__col_text(s, 4),
                     "prediction", pdb__col_text(s, 5), "reference", pdb__col_text(s, 6),
                     "score", score, "latency_us", pdb__col_int(s, 8), "tokens",
                     pdb__col_int(s, 9), "meta", pdb__col_json(s, 10), "error",
                     pdb__col_text(s, 11));
}

int pdb_job_items(pdb_t *db, int64_t job_id, int run, int64_t bucket, const char *after, int limit,
                  json_t **out)
{
    int rc = 0, src, n = 0;
    int64_t after_task = 0, after_idx = -1, lo = 0, hi = -1, total = 0, last_t = 0, last_i = 0;
    char state[16], next[48];
    json_t *arr = NULL;

    *out = NULL;
    if (after && *after && parse_cursor(after, &after_task, &after_idx))
        return PB_EINVAL;
    if (limit <= 0)
        limit = PDB_ITEMS_DEFAULT;
    if (limit > PDB_ITEMS_MAX)
        limit = PDB_ITEMS_MAX;
    rc = job_state(db, job_id, state);
    if (rc)
        return rc;

    /* The done tasks that match bound the scan of the items primary key, so
     * a filtered page never walks the job's other runs and buckets. */
    sqlite3_stmt *s = pdb__st(db, PDB_ST_ITEMS_SPAN);
    sqlite3_bind_int64(s, 1, job_id);
    sqlite3_bind_int(s, 2, run);
    if (bucket >= 0)
        sqlite3_bind_int64(s, 3, bucket);
    else
        sqlite3_bind_null(s, 3);
    src = sqlite3_step(s);
    if (src == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        lo = sqlite3_column_int64(s, 0);
        hi = sqlite3_column_int64(s, 1);
        total = sqlite3_column_int64(s, 2);
    }
    sqlite3_reset(s);
    if (src != SQLITE_ROW)
        return pdb__err(db, src);
    if (after_task > lo) {
        lo = after_task;
    } else if (after_task < lo) {
        after_idx = -1; /* the cursor's task is before every match */
    }

    arr = json_array();
    if (arr == NULL)
        return PB_ENOMEM;
    s = pdb__st(db, PDB_ST_ITEMS_PAGE);
    sqlite3_bind_int64(s, 1, job_id);
    sqlite3_bind_int64(s, 2, lo);
    sqlite3_bind_int64(s, 3, hi);
    sqlite3_bind_int64(s, 4, after_idx);
    sqlite3_bind_int(s, 5, run);
    if (bucket >= 0)
        sqlite3_bind_int64(s, 6, bucket);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_int(s, 7, limit + 1);
    while ((src = sqlite3_step(s)) == SQLITE_ROW && n < limit) {
        if (json_array_append_new(arr, item_row(s))) {
            rc = PB_ENOMEM;
            goto out;
        }
        last_t = sqlite3_column_int64(s, 0);
        last_i = sqlite3_column_int64(s, 3);
        n++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = pdb__err(db, src);
        goto out;
    }
    snprintf(next, sizeof next, "%" PRId64 ":%" PRId64, last_t, last_i);
    *out = json_pack("{s:O, s:s?, s:I}", "items", arr, "next",
                     src == SQLITE_ROW ? next : NULL, "total", (json_int_t)total);
    if (*out == NULL)
        rc = PB_ENOMEM;
out:
    sqlite3_reset(s);
    json_decref(arr);
    return rc;
}

int pdb_item_source(pdb_t *db, int64_t job_id, int64_t task_id, int64_t idx, json_t **out)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_ITEM_SOURCE);
    *out = NULL;
    sqlite3_bind_int64(s, 1, job_id);
    sqlite3_bind_int64(s, 2, task_id);
    sqlite3_bind_int64(s, 3, idx);
    int src = sqlite3_step(s);
    int rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? PB_ENOTFOUND : pdb__err(db, src);
    if (rc == 0) {
        /* seed as the job object gives it: the stored 64-bit pattern */
        *out = json_pack("{s:I, s:I, s:s?, s:s, s:s, s:o?, s:i, s:s?, s:I}", "run",
                         (json_int_t)sqlite3_column_int64(s, 0), "bucket",
                         (json_int_t)sqlite3_column_int64(s, 1), "prompt_hash",
                         pdb__col_text(s, 2), "suite", pdb__col_text(s, 3), "task",
                         pdb__col_text(s, 4), "params", pdb__col_json(s, 5), "version",
                         sqlite3_column_int(s, 6), "dataset", pdb__col_text(s, 7), "seed",
                         (json_int_t)sqlite3_column_int64(s, 8));
        rc = *out ? 0 : PB_ENOMEM;
    }
    sqlite3_reset(s);
    return rc;
}

/* ---- leaderboard ---- */

struct bucket_sums {
    int64_t n;
    double score_sum;
};

/* A leaderboard bucket {"bucket", "n", "score_sum"}, summed into ctx. */
static json_t *bucket_row(sqlite3_stmt *s, void *ctx)
{
    struct bucket_sums *sums = ctx;
    int64_t bn = sqlite3_column_int64(s, 1);
    double bs = sqlite3_column_double(s, 2);
    sums->n += bn;
    sums->score_sum += bs;
    return json_pack("{s:I, s:I, s:f}", "bucket", (json_int_t)sqlite3_column_int64(s, 0), "n",
                     (json_int_t)bn, "score_sum", bs);
}

/* Per-bucket sums of one run, and their totals. */
static int run_buckets(pdb_t *db, int64_t job_id, int64_t run, json_t **out, int64_t *n,
                       double *score_sum)
{
    struct bucket_sums sums = {0, 0};
    sqlite3_stmt *s = pdb__st(db, PDB_ST_RUN_BUCKETS);
    sqlite3_bind_int64(s, 1, job_id);
    sqlite3_bind_int64(s, 2, run);
    int rc = pdb__collect(db, s, bucket_row, &sums, out);
    *n = rc ? 0 : sums.n;
    *score_sum = rc ? 0 : sums.score_sum;
    return rc;
}

int pdb_leaderboard(pdb_t *db, const char *suite, json_t **out)
{
    int rc = 0, src;
    char date[32];
    json_t *arr = json_array();
    sqlite3_stmt *s = pdb__st(db, PDB_ST_LB_RUNS);

    *out = NULL;
    if (arr == NULL)
        return PB_ENOMEM;
    pdb__bind_text(s, 1, suite);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *buckets = NULL;
        int64_t n, job_id = sqlite3_column_int64(s, 4), run = sqlite3_column_int64(s, 5);
        double sum;
        rc = run_buckets(db, job_id, run, &buckets, &n, &sum);
        if (rc)
            goto out;
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s?, s:I, s:f, s:o?, s:o}",
                              "suite", pdb__col_text(s, 0), "task", pdb__col_text(s, 1), "model",
                              pdb__col_text(s, 2), "backend", pdb__col_text(s, 3), "job_id",
                              (json_int_t)job_id, "run", (json_int_t)run, "date",
                              pdb__col_iso(s, 6, date), "n", (json_int_t)n, "score_sum", sum,
                              "params", pdb__col_json(s, 7), "buckets", buckets);
        if (json_array_append_new(arr, e)) {
            rc = PB_ENOMEM;
            goto out;
        }
        /* its metric sums and unit, as the results have them */
        json_t *one = json_pack("[O]", e);
        rc = one ? breakdown_rows(db, job_id, run, one) : PB_ENOMEM;
        json_decref(one);
        if (rc)
            goto out;
    }
    if (src != SQLITE_DONE) {
        rc = pdb__err(db, src);
        goto out;
    }
    *out = json_pack("{s:O}", "entries", arr);
    if (*out == NULL)
        rc = PB_ENOMEM;
out:
    sqlite3_reset(s);
    json_decref(arr);
    return rc;
}
