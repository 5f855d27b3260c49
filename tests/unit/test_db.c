/* Unit tests for db/, the write side: the store on real SQLite files in a
 * temporary directory, opening, inserting, leasing, recording, releasing,
 * cancelling, recovery. Also the fixture and helpers test_db_read.c shares
 * (tests/unit/test_db.h). Ends with a timing print (not an assertion) of
 * recording throughput. */
#include "tests/unit/test_db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

/* ---- fixtures ---- */

int tdb_fx_setup(void **state)
{
    tdb_fx_t *f = calloc(1, sizeof *f);
    pb_err_t err = {.msg = ""};
    pb_test_tmpdir(f->dir, sizeof f->dir);
    snprintf(f->path, sizeof f->path, "%s/pb.db", f->dir);
    if (pdb_open(f->path, &f->db, &err) != 0) {
        fprintf(stderr, "pdb_open: %s\n", err.msg);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int tdb_fx_teardown(void **state)
{
    tdb_fx_t *f = *state;
    char p[400];
    pdb_close(f->db);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A plan of n_runs runs x n_buckets buckets (2, 4, 6, ...) x shards. */
ps_plan_t *tdb_plan_new(const char *model, const char *suite, int n_runs, int n_buckets,
                        uint64_t samples, uint64_t shard, int max_attempts)
{
    static const char *const tasks[] = {"add", "mul", "sub", "div"};
    ps_plan_t *p = calloc(1, sizeof *p);
    p->spec = json_pack("{s:s, s:{s:s, s:s}, s:i}", "name", "job-a", "model", "name", model,
                        "backend", "oracle", "seed", 7);
    p->name = json_string_value(json_object_get(p->spec, "name"));
    p->model = json_object_get(p->spec, "model");
    p->seed = 7;
    p->priority = 3;
    p->device = "cpu";
    p->max_attempts = max_attempts;
    p->timeout_s = 60;
    p->shard_size = shard;
    p->n_runs = (size_t)n_runs;
    p->runs = calloc(p->n_runs, sizeof *p->runs);
    uint64_t per = (samples + shard - 1) / shard;
    p->tasks = calloc(p->n_runs * (size_t)n_buckets * per, sizeof *p->tasks);
    for (int r = 0; r < n_runs; r++) {
        ps_plan_run_t *run = &p->runs[r];
        run->suite = suite;
        run->task = tasks[r % 4];
        run->params = json_pack("{s:i}", "run", r);
        run->samples = samples;
        run->version = 1;
        run->n_buckets = (size_t)n_buckets;
        run->buckets = calloc((size_t)n_buckets, sizeof *run->buckets);
        for (int b = 0; b < n_buckets; b++) {
            run->buckets[b] = 2 * (b + 1);
            for (uint64_t lo = 0; lo < samples; lo += shard) {
                ps_plan_task_t *t = &p->tasks[p->n_tasks++];
                t->run = (size_t)r;
                t->bucket = run->buckets[b];
                t->item_lo = lo;
                t->item_hi = lo + shard < samples ? lo + shard : samples;
            }
            p->items_total += samples;
        }
    }
    return p;
}

void tdb_plan_free(ps_plan_t *p)
{
    for (size_t r = 0; r < p->n_runs; r++) {
        json_decref(p->runs[r].params);
        free(p->runs[r].buckets);
    }
    free(p->runs);
    free(p->tasks);
    json_decref(p->spec);
    free(p);
}

/* Insert a plan; returns the job id. */
int64_t tdb_insert(pdb_t *db, const char *model, const char *suite, int n_runs, int n_buckets,
                   uint64_t samples, uint64_t shard, int max_attempts)
{
    ps_plan_t *p = tdb_plan_new(model, suite, n_runs, n_buckets, samples, shard, max_attempts);
    int64_t id = 0;
    assert_int_equal(pdb_job_insert(db, p, NULL, 0, &id), 0);
    assert_true(id > 0);
    tdb_plan_free(p);
    return id;
}

/* The first task id of a job (tasks of one job have consecutive ids). */
int tdb_first_task_cb(void *ctx, const pdb_task_ref_t *t)
{
    *(int64_t *)ctx = t->task_id;
    return 1;
}

int64_t tdb_first_task(pdb_t *db, int64_t job_id)
{
    int64_t id = 0;
    assert_int_equal(pdb_tasks_queued(db, job_id, tdb_first_task_cb, &id), 1);
    return id;
}

/* Lease a task; its attempt and item range out. */
void tdb_lease(pdb_t *db, int64_t task_id, const char *worker, int *attempt, int64_t *lo,
               int64_t *hi)
{
    json_t *t = NULL;
    assert_int_equal(pdb_task_lease(db, task_id, worker, pb_wall_time() + 60, &t), 0);
    assert_non_null(t);
    *attempt = (int)json_integer_value(json_object_get(t, "attempt"));
    *lo = json_integer_value(json_object_get(t, "item_lo"));
    *hi = json_integer_value(json_object_get(t, "item_hi"));
    json_decref(t);
}

json_t *tdb_items_for(int64_t lo, int64_t hi, double score)
{
    json_t *a = json_array();
    for (int64_t i = lo; i < hi; i++)
        json_array_append_new(
            a, json_pack("{s:I, s:s, s:s, s:s, s:f, s:i, s:i, s:n}", "idx", (json_int_t)i,
                         "prompt_hash", "00ff00ff00ff00ff", "prediction", "42", "reference",
                         "42", "score", score, "latency_us", 1500, "tokens", 3, "error"));
    return a;
}

/* Lease and record a task with every item scored `score`. */
int tdb_run_task(pdb_t *db, int64_t task_id, double score, int *job_done)
{
    int attempt;
    int64_t lo, hi, job = 0;
    tdb_lease(db, task_id, "w1", &attempt, &lo, &hi);
    json_t *items = tdb_items_for(lo, hi, score);
    json_t *agg = json_pack("{s:I, s:f}", "n", (json_int_t)(hi - lo), "score_sum", score * (double)(hi - lo));
    int rc = pdb_task_record(db, task_id, attempt, items, agg, job_done, &job, NULL);
    json_decref(items);
    json_decref(agg);
    return rc;
}

int64_t tdb_raw(const char *path, const char *sql)
{
    sqlite3 *sq = NULL;
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    assert_int_equal(sqlite3_open_v2(path, &sq, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(sq, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(sq);
    return n;
}

json_t *tdb_job(pdb_t *db, int64_t id)
{
    json_t *j = NULL;
    assert_int_equal(pdb_job_get(db, id, &j), 0);
    return j;
}

const char *tdb_jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

int64_t tdb_jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* ---- opening ---- */

static void test_open_migrate_reopen(void **state)
{
    tdb_fx_t *f = *state;
    assert_int_equal(tdb_raw(f->path, "PRAGMA user_version"), 5);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"),
                     17);
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 4, 4, 3);
    pdb_close(f->db);
    pb_err_t err;
    assert_int_equal(pdb_open(f->path, &f->db, &err), 0);
    json_t *j = tdb_job(f->db, id);
    assert_string_equal(tdb_jstr(j, "state"), "queued");
    json_decref(j);
    char wal[400];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(access(wal, F_OK), 0); /* journal_mode = WAL */
    assert_int_equal(tdb_raw(f->path, "PRAGMA user_version"), 5);
    /* Nesting misuse is refused, not silently accepted. */
    assert_int_equal(pdb_commit(f->db), PB_ESTATE);
    assert_int_equal(pdb_begin(f->db), 0);
    assert_int_equal(pdb_begin(f->db), PB_ESTATE);
    assert_int_equal(pdb_commit(f->db), 0);
}

static void test_newer_version_refused(void **state)
{
    char dir[256], path[320];
    sqlite3 *sq = NULL;
    pdb_t *db = (pdb_t *)1;
    pb_err_t err = {.msg = ""};
    pb_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/new.db", dir);
    assert_int_equal(sqlite3_open(path, &sq), SQLITE_OK);
    assert_int_equal(sqlite3_exec(sq, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(sq);
    assert_int_equal(pdb_open(path, &db, &err), PB_EDB);
    assert_null(db);
    assert_non_null(strstr(err.msg, "newer"));
    assert_non_null(strstr(err.msg, "7 > 5"));
    assert_int_equal(tdb_raw(path, "PRAGMA user_version"), 7); /* left untouched */
    unlink(path);
    rmdir(dir);
}

/* ---- jobs ---- */

static void test_job_insert_idempotency(void **state)
{
    tdb_fx_t *f = *state;
    ps_plan_t *p = tdb_plan_new("m1", "arithmetic", 2, 2, 10, 4, 3);
    int64_t a = 0, b = 0, c = 0, d = 0;
    assert_int_equal(pdb_job_insert(f->db, p, "key-1", 0, &a), 0);
    assert_int_equal(pdb_job_insert(f->db, p, "key-1", 0, &b), PB_EEXIST);
    assert_int_equal(b, a);
    assert_int_equal(pdb_job_insert(f->db, p, "key-2", 0, &c), 0);
    assert_int_equal(pdb_job_insert(f->db, p, NULL, 0, &d), 0);
    assert_true(c > a && d > c);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM jobs"), 3);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM models"), 1); /* shared */
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM tasks"), 3 * 12);
    /* A schedule id must name a schedule (foreign key). */
    assert_int_equal(pdb_job_insert(f->db, p, NULL, 999, &d), PB_EDB);
    assert_int_equal(d, 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM jobs"), 3);
    tdb_plan_free(p);

    json_t *j = tdb_job(f->db, a);
    assert_string_equal(tdb_jstr(j, "name"), "job-a");
    assert_string_equal(tdb_jstr(j, "state"), "queued");
    assert_int_equal(tdb_jint(j, "items_total"), 40);
    assert_int_equal(tdb_jint(j, "items_done"), 0);
    assert_int_equal(tdb_jint(j, "seed"), 7);
    assert_int_equal(tdb_jint(j, "priority"), 3);
    assert_true(json_is_null(json_object_get(j, "started_at")));
    assert_true(json_is_null(json_object_get(j, "schedule_id")));
    const char *created = tdb_jstr(j, "created_at");
    assert_non_null(created);
    assert_int_equal(strlen(created), 20);
    assert_int_equal(created[19], 'Z');
    assert_string_equal(tdb_jstr(json_object_get(j, "model"), "name"), "m1");
    assert_int_equal(tdb_jint(json_object_get(j, "spec"), "seed"), 7);
    assert_int_equal(tdb_jint(json_object_get(j, "tasks"), "queued"), 12);
    assert_int_equal(tdb_jint(json_object_get(j, "tasks"), "done"), 0);
    json_t *runs = json_object_get(j, "runs");
    assert_int_equal(json_array_size(runs), 2);
    json_t *r1 = json_array_get(runs, 1);
    assert_string_equal(tdb_jstr(r1, "task"), "mul");
    assert_int_equal(tdb_jint(json_object_get(r1, "params"), "run"), 1);
    json_t *bk = json_object_get(r1, "buckets");
    assert_int_equal(json_array_size(bk), 2);
    assert_int_equal(tdb_jint(json_array_get(bk, 1), "bucket"), 4);
    assert_int_equal(tdb_jint(json_array_get(bk, 1), "items_total"), 10);
    assert_int_equal(tdb_jint(json_array_get(bk, 1), "tasks_total"), 3);
    assert_int_equal(tdb_jint(json_array_get(bk, 1), "tasks_done"), 0);
    assert_int_equal(json_array_size(json_object_get(j, "failed_tasks")), 0);
    json_decref(j);
    assert_int_equal(pdb_job_get(f->db, 12345, &j), PB_ENOTFOUND);
    assert_null(j);
}

/* ---- tasks ---- */

static int collect_cb(void *ctx, const pdb_task_ref_t *t)
{
    json_array_append_new(ctx, json_pack("{s:I, s:I, s:i, s:s, s:s, s:I, s:i}", "id",
                                         (json_int_t)t->task_id, "job", (json_int_t)t->job_id,
                                         "prio", t->priority, "device", t->device, "backend",
                                         t->backend, "items", (json_int_t)t->items, "timeout",
                                         t->timeout_s));
    return 0;
}

static void test_lease_record_duplicate(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 2, 8, 4, 3);
    json_t *q = json_array();
    assert_int_equal(pdb_tasks_queued(f->db, 0, collect_cb, q), 0);
    assert_int_equal(json_array_size(q), 4);
    json_t *q0 = json_array_get(q, 0);
    assert_int_equal(tdb_jint(q0, "job"), id);
    assert_int_equal(tdb_jint(q0, "prio"), 3);
    assert_string_equal(tdb_jstr(q0, "device"), "cpu");
    assert_string_equal(tdb_jstr(q0, "backend"), "oracle");
    assert_int_equal(tdb_jint(q0, "items"), 4);
    assert_int_equal(tdb_jint(q0, "timeout"), 60);
    assert_true(tdb_jint(json_array_get(q, 1), "id") > tdb_jint(q0, "id"));
    int64_t tid = tdb_jint(q0, "id");
    json_decref(q);

    assert_int_equal(pdb_worker_seen(f->db, "w1", NULL, "busy"), 0);
    json_t *t = NULL;
    assert_int_equal(pdb_task_lease(f->db, tid, "w1", pb_wall_time() + 30, &t), 0);
    assert_int_equal(tdb_jint(t, "task_id"), tid);
    assert_int_equal(tdb_jint(t, "attempt"), 1);
    assert_int_equal(tdb_jint(t, "job_id"), id);
    assert_int_equal(tdb_jint(t, "run"), 0);
    assert_string_equal(tdb_jstr(t, "suite"), "arithmetic");
    assert_string_equal(tdb_jstr(t, "task"), "add");
    assert_int_equal(tdb_jint(json_object_get(t, "params"), "run"), 0);
    assert_int_equal(tdb_jint(t, "bucket"), 2);
    assert_int_equal(tdb_jint(t, "item_lo"), 0);
    assert_int_equal(tdb_jint(t, "item_hi"), 4);
    assert_int_equal(tdb_jint(t, "seed"), 7);
    assert_string_equal(tdb_jstr(json_object_get(t, "model"), "backend"), "oracle");
    assert_int_equal(tdb_jint(t, "timeout_s"), 60);
    assert_int_equal(tdb_jint(t, "version"), 1);
    json_decref(t);
    /* Leased once: a second lease is refused; the job is running. */
    assert_int_equal(pdb_task_lease(f->db, tid, "w2", pb_wall_time() + 30, &t), PB_ESTATE);
    assert_null(t);
    json_t *j = tdb_job(f->db, id);
    assert_string_equal(tdb_jstr(j, "state"), "running");
    assert_non_null(tdb_jstr(j, "started_at"));
    json_decref(j);
    q = json_array();
    assert_int_equal(pdb_tasks_queued(f->db, id, collect_cb, q), 0);
    assert_int_equal(json_array_size(q), 3);
    json_decref(q);

    assert_int_equal(pdb_task_renew(f->db, tid, 1, pb_wall_time() + 90), 0);
    assert_int_equal(pdb_task_renew(f->db, tid, 2, pb_wall_time() + 90), PB_ESTALE);
    json_t *items = tdb_items_for(0, 4, 1.0);
    json_t *agg = json_pack("{s:i, s:f}", "n", 4, "score_sum", 4.0);
    int done = -1;
    int64_t jid = 0;
    assert_int_equal(pdb_task_record(f->db, tid, 1, items, agg, &done, &jid, NULL), 0);
    assert_int_equal(done, 0);
    assert_int_equal(jid, id);
    assert_int_equal(pdb_task_record(f->db, tid, 1, items, agg, &done, &jid, NULL), PB_ESTALE);
    assert_int_equal(jid, 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 4);
    assert_int_equal(tdb_raw(f->path, "SELECT items_done FROM jobs"), 4);
    assert_int_equal(tdb_raw(f->path, "SELECT tasks_done FROM workers WHERE name = 'w1'"), 1);
    assert_int_equal(pdb_task_renew(f->db, tid, 1, pb_wall_time() + 90), PB_ESTALE);
    json_decref(items);
    json_decref(agg);
}

static void test_stale_attempt(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 4, 4, 3);
    int64_t tid = tdb_first_task(f->db, id), lo, hi;
    int attempt, rq = -1, done;
    tdb_lease(f->db, tid, "w1", &attempt, &lo, &hi);
    assert_int_equal(attempt, 1);
    assert_int_equal(pdb_task_release(f->db, tid, 1, "worker died", 1, &rq), 0);
    assert_int_equal(rq, 1);
    assert_int_equal(pdb_task_release(f->db, tid, 1, "worker died", 1, &rq), PB_ESTALE);
    tdb_lease(f->db, tid, "w2", &attempt, &lo, &hi);
    assert_int_equal(attempt, 2);
    json_t *items = tdb_items_for(lo, hi, 0.0);
    assert_int_equal(pdb_task_record(f->db, tid, 1, items, NULL, &done, NULL, NULL), PB_ESTALE);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 0);
    assert_int_equal(pdb_task_record(f->db, tid, 2, items, NULL, &done, NULL, NULL), 0);
    assert_int_equal(done, 1);
    /* Without an aggregate, n and score_sum come from the items. */
    assert_int_equal(tdb_raw(f->path, "SELECT n FROM tasks"), 4);
    json_decref(items);
}

static void expect_parse(tdb_fx_t *f, int64_t tid, int attempt, json_t *items, json_t *agg)
{
    pb_err_t err = {.msg = ""};
    int done = -1;
    assert_int_equal(pdb_task_record(f->db, tid, attempt, items, agg, &done, NULL, &err),
                     PB_EPARSE);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(done, 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT items_done FROM jobs"), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM tasks WHERE state = 'leased'"), 1);
    json_decref(items);
    json_decref(agg);
}

static void test_malformed_items(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 8, 4, 3);
    int64_t tid = tdb_first_task(f->db, id), lo, hi;
    int attempt, done;
    tdb_lease(f->db, tid, "w1", &attempt, &lo, &hi);

    expect_parse(f, tid, attempt, json_object(), NULL);
    json_t *a = tdb_items_for(lo, hi - 1, 1.0); /* one short */
    expect_parse(f, tid, attempt, a, NULL);
    a = tdb_items_for(lo, hi, 1.0); /* last idx out of range */
    json_object_set_new(json_array_get(a, 3), "idx", json_integer(hi));
    expect_parse(f, tid, attempt, a, NULL);
    a = tdb_items_for(lo, hi, 1.0); /* duplicate at the end: earlier rows were inserted */
    json_object_set_new(json_array_get(a, 3), "idx", json_integer(lo));
    pb_err_t err;
    assert_int_equal(pdb_task_record(f->db, tid, attempt, a, NULL, &done, NULL, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_string_equal(err.field, "items[3]");
    expect_parse(f, tid, attempt, a, NULL);
    a = tdb_items_for(lo, hi, 1.0);
    json_array_set_new(a, 2, json_integer(5));
    expect_parse(f, tid, attempt, a, NULL);
    a = tdb_items_for(lo, hi, 1.0);
    json_object_set_new(json_array_get(a, 1), "idx", json_string("1"));
    expect_parse(f, tid, attempt, a, NULL);
    a = tdb_items_for(lo, hi, 1.0);
    json_object_set_new(json_array_get(a, 2), "score", json_string("high"));
    expect_parse(f, tid, attempt, a, NULL);
    expect_parse(f, tid, attempt, tdb_items_for(lo, hi, 1.0), json_pack("{s:s}", "n", "four"));

    /* Inside a batch a rejected result undoes only itself. */
    int64_t t2 = tid + 1, lo2, hi2;
    int a2;
    tdb_lease(f->db, t2, "w1", &a2, &lo2, &hi2);
    assert_int_equal(pdb_begin(f->db), 0);
    a = tdb_items_for(lo2, hi2, 0.5);
    assert_int_equal(pdb_task_record(f->db, t2, a2, a, NULL, &done, NULL, NULL), 0);
    json_decref(a);
    a = tdb_items_for(lo, hi, 1.0);
    json_object_set_new(json_array_get(a, 3), "idx", json_integer(lo));
    assert_int_equal(pdb_task_record(f->db, tid, attempt, a, NULL, &done, NULL, NULL), PB_EPARSE);
    json_decref(a);
    a = tdb_items_for(lo, hi, 1.0);
    assert_int_equal(pdb_task_record(f->db, tid, attempt, a, NULL, &done, NULL, NULL), 0);
    assert_int_equal(done, 1);
    json_decref(a);
    assert_int_equal(pdb_commit(f->db), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 8);
    assert_int_equal(tdb_raw(f->path, "SELECT items_done FROM jobs"), 8);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items WHERE meta IS NOT NULL"), 0);
}

static void test_release_until_failed(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 12, 4, 2);
    int64_t tid = tdb_first_task(f->db, id), lo, hi;
    int attempt, rq = -1;
    tdb_lease(f->db, tid + 1, "w2", &attempt, &lo, &hi); /* a sibling still running */
    tdb_lease(f->db, tid, "w1", &attempt, &lo, &hi);
    assert_int_equal(pdb_task_release(f->db, tid, attempt, "oom", 1, &rq), 0);
    assert_int_equal(rq, 1);
    tdb_lease(f->db, tid, "w1", &attempt, &lo, &hi);
    assert_int_equal(attempt, 2);
    assert_int_equal(pdb_task_release(f->db, tid, attempt, "boom", 1, &rq), 0);
    assert_int_equal(rq, 0);
    json_t *j = tdb_job(f->db, id);
    assert_string_equal(tdb_jstr(j, "state"), "failed");
    char want[64];
    snprintf(want, sizeof want, "task %lld failed after 2 attempts: boom", (long long)tid);
    assert_string_equal(tdb_jstr(j, "error"), want);
    assert_non_null(tdb_jstr(j, "finished_at"));
    json_t *counts = json_object_get(j, "tasks");
    assert_int_equal(tdb_jint(counts, "failed"), 1);
    assert_int_equal(tdb_jint(counts, "cancelled"), 1);
    assert_int_equal(tdb_jint(counts, "leased"), 1);
    json_t *ft = json_object_get(j, "failed_tasks");
    assert_int_equal(json_array_size(ft), 1);
    assert_int_equal(tdb_jint(json_array_get(ft, 0), "id"), tid);
    assert_string_equal(tdb_jstr(json_array_get(ft, 0), "error"), "boom");
    json_decref(j);
    /* The sibling's lease ends: its job is over, so it is not queued again. */
    assert_int_equal(pdb_task_release(f->db, tid + 1, 1, "lost", 1, &rq), 0);
    assert_int_equal(rq, 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM tasks WHERE state = 'cancelled'"), 2);
    /* Not retryable: fails at once. */
    int64_t id2 = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 4, 4, 3);
    int64_t t2 = tdb_first_task(f->db, id2);
    tdb_lease(f->db, t2, "w1", &attempt, &lo, &hi);
    assert_int_equal(pdb_task_release(f->db, t2, attempt, "bad model", 0, &rq), 0);
    assert_int_equal(rq, 0);
    j = tdb_job(f->db, id2);
    assert_string_equal(tdb_jstr(j, "state"), "failed");
    json_decref(j);
}

static void test_cancel(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 16, 4, 3);
    int64_t tid = tdb_first_task(f->db, id), lo, hi;
    int a1, a2, done;
    tdb_lease(f->db, tid, "w1", &a1, &lo, &hi);
    tdb_lease(f->db, tid + 1, "w2", &a2, &lo, &hi);
    json_t *leased = NULL;
    assert_int_equal(pdb_job_cancel(f->db, id, &leased), 0);
    assert_int_equal(json_array_size(leased), 2);
    assert_int_equal(tdb_jint(json_array_get(leased, 0), "task_id"), tid);
    assert_int_equal(tdb_jint(json_array_get(leased, 0), "attempt"), 1);
    assert_string_equal(tdb_jstr(json_array_get(leased, 1), "worker"), "w2");
    json_decref(leased);
    json_t *j = tdb_job(f->db, id);
    assert_string_equal(tdb_jstr(j, "state"), "cancelled");
    assert_int_equal(tdb_jint(json_object_get(j, "tasks"), "cancelled"), 4);
    json_decref(j);
    json_t *items = tdb_items_for(lo, hi, 1.0);
    assert_int_equal(pdb_task_record(f->db, tid + 1, a2, items, NULL, &done, NULL, NULL),
                     PB_ESTALE);
    json_decref(items);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 0);
    assert_int_equal(pdb_job_cancel(f->db, id, &leased), PB_ESTATE);
    assert_null(leased);
    assert_int_equal(pdb_job_cancel(f->db, 999, &leased), PB_ENOTFOUND);
    int64_t none = 0;
    assert_int_equal(pdb_tasks_queued(f->db, id, tdb_first_task_cb, &none), 0);
    assert_int_equal(none, 0);
}

/* Crash mid-batch: a child process records inside pdb_begin and exits
 * without committing. Only the committed lease survives. */
static void test_crash_recovery(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 8, 4, 3);
    int64_t tid = tdb_first_task(f->db, id), lo, hi;
    int attempt, done, st = 0;
    pdb_close(f->db);
    f->db = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pdb_t *db = NULL;
        json_t *t = NULL;
        if (pdb_open(f->path, &db, NULL) || pdb_task_lease(db, tid, "w1", 1e12, &t) ||
            pdb_task_lease(db, tid + 1, "w1", 1e12, &t) || pdb_begin(db))
            _exit(2);
        json_t *items = tdb_items_for(0, 4, 1.0);
        if (pdb_task_record(db, tid, 1, items, NULL, &done, NULL, NULL))
            _exit(3);
        _exit(0); /* no commit, no close */
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pb_err_t err;
    assert_int_equal(pdb_open(f->path, &f->db, &err), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM tasks WHERE state = 'leased'"), 2);
    int n = -1;
    assert_int_equal(pdb_recover(f->db, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM tasks WHERE state = 'queued'"), 2);
    tdb_lease(f->db, tid, "w9", &attempt, &lo, &hi);
    assert_int_equal(attempt, 2);
    json_t *items = tdb_items_for(lo, hi, 1.0);
    assert_int_equal(pdb_task_record(f->db, tid, 1, items, NULL, &done, NULL, NULL), PB_ESTALE);
    assert_int_equal(pdb_task_record(f->db, tid, 2, items, NULL, &done, NULL, NULL), 0);
    json_decref(items);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 4);
}

static void test_expired(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 8, 4, 3);
    int64_t tid = tdb_first_task(f->db, id);
    json_t *t = NULL, *e = NULL;
    assert_int_equal(pdb_task_lease(f->db, tid, "w1", 100.0, &t), 0);
    json_decref(t);
    assert_int_equal(pdb_task_lease(f->db, tid + 1, "w1", 300.0, &t), 0);
    json_decref(t);
    assert_int_equal(pdb_tasks_expired(f->db, 200.0, &e), 0);
    assert_int_equal(json_array_size(e), 1);
    assert_int_equal(tdb_jint(json_array_get(e, 0), "task_id"), tid);
    assert_string_equal(tdb_jstr(json_array_get(e, 0), "worker"), "w1");
    json_decref(e);
    assert_int_equal(pdb_task_renew(f->db, tid, 1, 400.0), 0);
    assert_int_equal(pdb_tasks_expired(f->db, 200.0, &e), 0);
    assert_int_equal(json_array_size(e), 0);
    json_decref(e);
}

/* ---- workers, schedules ---- */

static void test_workers(void **state)
{
    tdb_fx_t *f = *state;
    json_t *caps = json_pack("{s:s, s:i}", "device", "cpu", "cores", 4);
    assert_int_equal(pdb_worker_seen(f->db, "wb", caps, "idle"), 0);
    assert_int_equal(pdb_worker_seen(f->db, "wa", NULL, "idle"), 0);
    assert_int_equal(pdb_worker_seen(f->db, "wb", NULL, "busy"), 0); /* caps kept */
    json_decref(caps);
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 8, 4, 3);
    int64_t tid = tdb_first_task(f->db, id), lo, hi;
    int attempt;
    tdb_lease(f->db, tid, "wb", &attempt, &lo, &hi);
    json_t *out = NULL;
    assert_int_equal(pdb_workers_list(f->db, &out), 0);
    json_t *arr = json_object_get(out, "workers");
    assert_int_equal(json_array_size(arr), 2);
    json_t *wa = json_array_get(arr, 0), *wb = json_array_get(arr, 1);
    assert_string_equal(tdb_jstr(wa, "name"), "wa");
    assert_int_equal(json_array_size(json_object_get(wa, "current_tasks")), 0);
    assert_string_equal(tdb_jstr(wb, "state"), "busy");
    assert_int_equal(tdb_jint(json_object_get(wb, "capabilities"), "cores"), 4);
    assert_int_equal(json_array_size(json_object_get(wb, "current_tasks")), 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(wb, "current_tasks"), 0)),
                     tid);
    assert_non_null(tdb_jstr(wb, "last_seen"));
    json_decref(out);
    assert_int_equal(pdb_workers_reset(f->db), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM workers WHERE state = 'gone'"), 2);
}

static void test_schedules(void **state)
{
    tdb_fx_t *f = *state;
    json_t *tmpl = json_pack("{s:s}", "name", "nightly");
    int64_t a = 0, b = 0, c = 0;
    assert_int_equal(pdb_schedule_insert(f->db, "nightly", "0 2 * * *", tmpl, 1, 1000.0, &a), 0);
    assert_int_equal(pdb_schedule_insert(f->db, "weekly", "0 3 * * 0", tmpl, 1, 5000.0, &b), 0);
    assert_int_equal(pdb_schedule_insert(f->db, "nightly", "* * * * *", tmpl, 1, 1.0, &c),
                     PB_EEXIST);
    assert_int_equal(c, 0);
    json_decref(tmpl);
    json_t *due = NULL;
    assert_int_equal(pdb_schedules_due(f->db, 2000.0, &due), 0);
    assert_int_equal(json_array_size(due), 1);
    assert_int_equal(tdb_jint(json_array_get(due, 0), "id"), a);
    assert_string_equal(tdb_jstr(json_object_get(json_array_get(due, 0), "template"), "name"),
                        "nightly");
    json_decref(due);
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 4, 4, 3);
    assert_int_equal(pdb_schedule_fired(f->db, a, 2000.0, id, 90000.0), 0);
    assert_int_equal(pdb_schedules_due(f->db, 6000.0, &due), 0);
    assert_int_equal(json_array_size(due), 1);
    assert_int_equal(tdb_jint(json_array_get(due, 0), "id"), b);
    json_decref(due);
    assert_int_equal(pdb_schedule_set_enabled(f->db, b, 0, 0), 0);
    assert_int_equal(pdb_schedules_due(f->db, 1e9, &due), 0);
    assert_int_equal(json_array_size(due), 1); /* nightly only */
    json_decref(due);
    assert_int_equal(pdb_schedule_set_enabled(f->db, 99, 1, 1.0), PB_ENOTFOUND);
    json_t *s = NULL;
    assert_int_equal(pdb_schedule_get(f->db, a, &s), 0);
    assert_int_equal(tdb_jint(s, "last_job_id"), id);
    assert_string_equal(tdb_jstr(s, "last_fired_at"), "1970-01-01T00:33:20Z");
    assert_true(json_is_true(json_object_get(s, "enabled")));
    json_decref(s);
    assert_int_equal(pdb_schedule_get(f->db, 99, &s), PB_ENOTFOUND);
    assert_int_equal(pdb_schedules_list(f->db, &s), 0);
    json_t *arr = json_object_get(s, "schedules");
    assert_int_equal(json_array_size(arr), 2);
    assert_true(json_is_false(json_object_get(json_array_get(arr, 1), "enabled")));
    assert_true(json_is_null(json_object_get(json_array_get(arr, 1), "next_fire_at")));
    json_decref(s);
}

/* ---- a batch is atomic; timing ---- */

static void test_batch_rollback(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 4, 4, 3);
    int64_t tid = tdb_first_task(f->db, id);
    int done;
    assert_int_equal(pdb_begin(f->db), 0);
    assert_int_equal(tdb_run_task(f->db, tid, 1.0, &done), 0);
    assert_int_equal(done, 1);
    assert_int_equal(pdb_rollback(f->db), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT attempt FROM tasks"), 0);
    json_t *j = tdb_job(f->db, id);
    assert_string_equal(tdb_jstr(j, "state"), "queued");
    json_decref(j);

    /* A rolled-back job's id is handed out again: the lease must describe
     * the new tdb_job, not a cached copy of the old one. */
    assert_int_equal(pdb_begin(f->db), 0);
    int64_t gone = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 4, 4, 3);
    json_t *t = NULL;
    assert_int_equal(pdb_task_lease(f->db, tdb_first_task(f->db, gone), "w1", 1e12, &t), 0);
    assert_string_equal(tdb_jstr(t, "suite"), "arithmetic");
    json_decref(t);
    assert_int_equal(pdb_rollback(f->db), 0);
    int64_t again = tdb_insert(f->db, "m2", "longctx", 1, 1, 4, 4, 3);
    assert_int_equal(again, gone);
    assert_int_equal(pdb_task_lease(f->db, tdb_first_task(f->db, again), "w1", 1e12, &t), 0);
    assert_string_equal(tdb_jstr(t, "suite"), "longctx");
    assert_string_equal(tdb_jstr(json_object_get(t, "model"), "name"), "m2");
    json_decref(t);
}

static int64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* 2,000 tasks x 40 items recorded in one transaction, as the coordinator
 * batches results. Prints rates; the assertions are about correctness. */
static void test_record_throughput(void **state)
{
    tdb_fx_t *f = *state;
    enum { TASKS = 2000, ITEMS = 40 };
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, TASKS * ITEMS, ITEMS, 3);
    int64_t tid = tdb_first_task(f->db, id);
    json_t **items = calloc(TASKS, sizeof *items);
    for (int i = 0; i < TASKS; i++)
        items[i] = tdb_items_for((int64_t)i * ITEMS, (int64_t)(i + 1) * ITEMS, 1.0);
    json_t *agg = json_pack("{s:i, s:f}", "n", ITEMS, "score_sum", (double)ITEMS);

    int64_t t0 = pb_now_us(), c0 = cpu_us();
    assert_int_equal(pdb_begin(f->db), 0);
    for (int i = 0; i < TASKS; i++) {
        json_t *t = NULL;
        assert_int_equal(pdb_task_lease(f->db, tid + i, "w1", 1e12, &t), 0);
        json_decref(t);
    }
    assert_int_equal(pdb_commit(f->db), 0);
    int64_t t1 = pb_now_us(), c1 = cpu_us();
    int done = 0;
    assert_int_equal(pdb_begin(f->db), 0);
    for (int i = 0; i < TASKS; i++)
        assert_int_equal(
            pdb_task_record(f->db, tid + i, 1, items[i], agg, &done, NULL, NULL), 0);
    assert_int_equal(pdb_commit(f->db), 0);
    int64_t t2 = pb_now_us(), c2 = cpu_us();
    assert_int_equal(done, 1);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), TASKS * ITEMS);
    /* CPU time too: on a shared machine wall time includes other processes. */
    double rec_s = (double)(t2 - t1) / 1e6, rec_cpu = (double)(c2 - c1) / 1e6;
    printf("[ db timing ] record %d tasks x %d items in one commit: %.3f s wall, %.3f s cpu: "
           "%.0f items/s, %.0f tasks/s (cpu: %.0f items/s); lease %.1f us/task wall, %.1f cpu\n",
           TASKS, ITEMS, rec_s, rec_cpu, TASKS * ITEMS / rec_s, TASKS / rec_s,
           TASKS * ITEMS / rec_cpu, (double)(t1 - t0) / TASKS, (double)(c1 - c0) / TASKS);
    for (int i = 0; i < TASKS; i++)
        json_decref(items[i]);
    free(items);
    json_decref(agg);
}

int pb_test_db(void)
{
    int failed = pb_test_db_read() + pb_test_db_breakdown();
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, tdb_fx_setup, tdb_fx_teardown)
        T(test_open_migrate_reopen),
        cmocka_unit_test(test_newer_version_refused),
        T(test_job_insert_idempotency),
        T(test_lease_record_duplicate),
        T(test_stale_attempt),
        T(test_malformed_items),
        T(test_release_until_failed),
        T(test_cancel),
        T(test_crash_recovery),
        T(test_expired),
        T(test_workers),
        T(test_schedules),
        T(test_batch_rollback),
        T(test_record_throughput),
#undef T
    };
    return failed + cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
