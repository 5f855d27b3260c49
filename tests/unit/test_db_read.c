/* Unit tests for db/, the read side: job listings, items paging, results,
 * stats and the leaderboard, plus the counters behind them (jobs.tasks_*,
 * the buckets table, the stats row): equal to a recount from the tasks after
 * a random sequence of operations, migrated in place from a version 1
 * database, and cheap to read (a timing print, not an assertion, of the job
 * object, the listing and the stats on a 10,000-task job). */
#include "tests/unit/test_db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rng.h"
#include "common/util.h"

/* ---- listings, items, results, stats, leaderboard ---- */

static void test_jobs_list(void **state)
{
    tdb_fx_t *f = *state;
    int64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 2, 2, 3);
    int done;
    assert_int_equal(tdb_run_task(f->db, tdb_first_task(f->db, ids[1]), 1.0, &done), 0);
    assert_int_equal(done, 1);

    json_t *l = NULL;
    assert_int_equal(pdb_jobs_list(f->db, NULL, 0, 2, &l), 0);
    json_t *arr = json_object_get(l, "jobs");
    assert_int_equal(json_array_size(arr), 2);
    assert_int_equal(tdb_jint(json_array_get(arr, 0), "id"), ids[4]);
    assert_null(json_object_get(json_array_get(arr, 0), "runs"));
    assert_non_null(json_object_get(json_array_get(arr, 0), "tasks"));
    int64_t next = tdb_jint(l, "next");
    assert_int_equal(next, ids[3]);
    json_decref(l);
    assert_int_equal(pdb_jobs_list(f->db, NULL, next, 10, &l), 0);
    assert_int_equal(json_array_size(json_object_get(l, "jobs")), 3);
    assert_true(json_is_null(json_object_get(l, "next")));
    json_decref(l);
    assert_int_equal(pdb_jobs_list(f->db, "done", 0, 10, &l), 0);
    arr = json_object_get(l, "jobs");
    assert_int_equal(json_array_size(arr), 1);
    assert_int_equal(tdb_jint(json_array_get(arr, 0), "id"), ids[1]);
    json_decref(l);
}

static void test_items_paging(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 2, 3, 10, 4, 3);
    int64_t tid = tdb_first_task(f->db, id);
    int done = 0;
    for (int64_t t = tid; t < tid + 18; t++)
        assert_int_equal(tdb_run_task(f->db, t, 1.0, &done), 0);
    assert_int_equal(done, 1);

    char cursor[64] = "";
    int64_t seen = 0, last_t = -1, last_i = -1;
    for (int page = 0; page < 100; page++) {
        json_t *out = NULL;
        assert_int_equal(pdb_job_items(f->db, id, -1, -1, cursor[0] ? cursor : NULL, 7, &out), 0);
        assert_int_equal(tdb_jint(out, "total"), 60);
        json_t *arr = json_object_get(out, "items");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *it = json_array_get(arr, i);
            int64_t t = tdb_jint(it, "task_id"), x = tdb_jint(it, "idx");
            assert_true(t > last_t || (t == last_t && x > last_i)); /* strictly increasing */
            last_t = t;
            last_i = x;
            seen++;
        }
        const char *next = tdb_jstr(out, "next");
        if (next)
            snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(out);
        if (!next)
            break;
    }
    assert_int_equal(seen, 60);

    /* Filtered: run 1, bucket 4 only. */
    json_t *out = NULL;
    assert_int_equal(pdb_job_items(f->db, id, 1, 4, NULL, 100, &out), 0);
    json_t *arr = json_object_get(out, "items");
    assert_int_equal(tdb_jint(out, "total"), 10);
    assert_int_equal(json_array_size(arr), 10);
    assert_true(json_is_null(json_object_get(out, "next")));
    json_t *it = json_array_get(arr, 0);
    assert_int_equal(tdb_jint(it, "run"), 1);
    assert_int_equal(tdb_jint(it, "bucket"), 4);
    assert_string_equal(tdb_jstr(it, "prediction"), "42");
    assert_int_equal(tdb_jint(it, "latency_us"), 1500);
    assert_true(json_is_null(json_object_get(it, "meta")));
    assert_true(json_real_value(json_object_get(it, "score")) == 1.0);
    json_decref(out);
    assert_int_equal(pdb_job_items(f->db, id, -1, -1, "nope", 10, &out), PB_EINVAL);
    assert_int_equal(pdb_job_items(f->db, 999, -1, -1, NULL, 10, &out), PB_ENOTFOUND);
}

static void test_job_done_and_results(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 12, 4, 3);
    int64_t tid = tdb_first_task(f->db, id);
    int done = -1;
    assert_int_equal(tdb_run_task(f->db, tid, 1.0, &done), 0);
    assert_int_equal(done, 0);
    assert_int_equal(tdb_run_task(f->db, tid + 1, 0.0, &done), 0);
    assert_int_equal(done, 0);
    json_t *j = tdb_job(f->db, id);
    assert_string_equal(tdb_jstr(j, "state"), "running");
    json_t *b = json_array_get(json_object_get(json_array_get(json_object_get(j, "runs"), 0),
                                               "buckets"), 0);
    assert_int_equal(tdb_jint(b, "items_done"), 8);
    assert_int_equal(tdb_jint(b, "tasks_done"), 2);
    json_decref(j);
    assert_int_equal(tdb_run_task(f->db, tid + 2, 1.0, &done), 0);
    assert_int_equal(done, 1);
    j = tdb_job(f->db, id);
    assert_string_equal(tdb_jstr(j, "state"), "done");
    assert_non_null(tdb_jstr(j, "finished_at"));
    assert_int_equal(tdb_jint(j, "items_done"), 12);
    json_decref(j);
    json_t *r = NULL;
    assert_int_equal(pdb_job_results(f->db, id, &r), 0);
    assert_string_equal(tdb_jstr(r, "state"), "done");
    b = json_array_get(json_object_get(json_array_get(json_object_get(r, "runs"), 0), "buckets"),
                       0);
    assert_int_equal(tdb_jint(b, "n"), 12);
    assert_true(json_real_value(json_object_get(b, "score_sum")) == 8.0);
    json_decref(r);
    assert_int_equal(pdb_job_results(f->db, 77, &r), PB_ENOTFOUND);
}

static void test_stats(void **state)
{
    tdb_fx_t *f = *state;
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, 1, 12, 4, 3);
    tdb_insert(f->db, "m1", "arithmetic", 1, 1, 4, 4, 3);
    int64_t tid = tdb_first_task(f->db, id), lo, hi;
    int done, attempt;
    assert_int_equal(tdb_run_task(f->db, tid, 1.0, &done), 0);
    tdb_lease(f->db, tid + 1, "w1", &attempt, &lo, &hi);
    json_t *s = NULL;
    assert_int_equal(pdb_stats(f->db, &s), 0);
    json_t *t = json_object_get(s, "tasks"), *j = json_object_get(s, "jobs");
    assert_int_equal(tdb_jint(t, "queued"), 2);
    assert_int_equal(tdb_jint(t, "leased"), 1);
    assert_int_equal(tdb_jint(t, "done"), 1);
    assert_int_equal(tdb_jint(t, "failed"), 0);
    assert_int_equal(tdb_jint(j, "running"), 1);
    assert_int_equal(tdb_jint(j, "queued"), 1);
    assert_int_equal(tdb_jint(j, "done"), 0);
    assert_int_equal(tdb_jint(s, "items_total"), 4);
    assert_int_equal(tdb_jint(s, "results_total"), 1);
    json_decref(s);
}

static void finish_job(pdb_t *db, int64_t id, int n_tasks, double score)
{
    int64_t tid = tdb_first_task(db, id);
    int done = 0;
    for (int i = 0; i < n_tasks; i++)
        assert_int_equal(tdb_run_task(db, tid + i, score, &done), 0);
    assert_int_equal(done, 1);
}

static void test_leaderboard(void **state)
{
    tdb_fx_t *f = *state;
    int64_t j1 = tdb_insert(f->db, "alpha", "arithmetic", 1, 2, 4, 4, 3);
    int64_t j2 = tdb_insert(f->db, "alpha", "arithmetic", 1, 2, 4, 4, 3);
    int64_t j3 = tdb_insert(f->db, "alpha", "arithmetic", 1, 2, 4, 4, 3); /* never finishes */
    int64_t j4 = tdb_insert(f->db, "beta", "arithmetic", 1, 2, 4, 4, 3);
    int64_t j5 = tdb_insert(f->db, "beta", "longctx", 1, 1, 4, 4, 3);
    finish_job(f->db, j1, 2, 0.25);
    finish_job(f->db, j2, 2, 0.75);
    finish_job(f->db, j4, 2, 1.0);
    finish_job(f->db, j5, 1, 0.5);
    int done;
    assert_int_equal(tdb_run_task(f->db, tdb_first_task(f->db, j3), 0.0, &done), 0);

    json_t *lb = NULL;
    assert_int_equal(pdb_leaderboard(f->db, "arithmetic", &lb), 0);
    json_t *e = json_object_get(lb, "entries");
    assert_int_equal(json_array_size(e), 2);
    json_t *a = json_array_get(e, 0), *b = json_array_get(e, 1);
    assert_string_equal(tdb_jstr(a, "model"), "alpha");
    assert_int_equal(tdb_jint(a, "job_id"), j2);
    assert_int_equal(tdb_jint(a, "n"), 8);
    assert_true(json_real_value(json_object_get(a, "score_sum")) == 6.0);
    assert_int_equal(json_array_size(json_object_get(a, "buckets")), 2);
    assert_int_equal(tdb_jint(json_array_get(json_object_get(a, "buckets"), 1), "bucket"), 4);
    assert_string_equal(tdb_jstr(a, "backend"), "oracle");
    assert_non_null(tdb_jstr(a, "date"));
    assert_string_equal(tdb_jstr(b, "model"), "beta");
    assert_int_equal(tdb_jint(b, "job_id"), j4);
    json_decref(lb);
    assert_int_equal(pdb_leaderboard(f->db, NULL, &lb), 0);
    assert_int_equal(json_array_size(json_object_get(lb, "entries")), 3);
    json_decref(lb);
    assert_int_equal(pdb_leaderboard(f->db, "nope", &lb), 0);
    assert_int_equal(json_array_size(json_object_get(lb, "entries")), 0);
    json_decref(lb);
}

/* ---- the counters against a recount ---- */

/* Rows whose counters differ from a recount over tasks and items. */
static const char *const recount_sql[] = {
    /* jobs: task counts by state, and stored items */
    "SELECT count(*) FROM jobs j WHERE "
    "tasks_queued <> (SELECT count(*) FROM tasks t WHERE t.job_id = j.id AND state = 'queued') "
    "OR tasks_leased <> (SELECT count(*) FROM tasks t WHERE t.job_id = j.id AND state = 'leased') "
    "OR tasks_done <> (SELECT count(*) FROM tasks t WHERE t.job_id = j.id AND state = 'done') "
    "OR tasks_failed <> (SELECT count(*) FROM tasks t WHERE t.job_id = j.id AND state = 'failed') "
    "OR tasks_cancelled <> (SELECT count(*) FROM tasks t "
    "                       WHERE t.job_id = j.id AND state = 'cancelled') "
    "OR items_done <> (SELECT count(*) FROM items i WHERE i.job_id = j.id)",
    /* buckets: one row per (job, run, bucket) of tasks, each equal to its group */
    "SELECT abs((SELECT count(*) FROM buckets) - count(*)) + "
    "  sum(b.job_id IS NULL OR b.tasks_total <> g.tt OR b.tasks_done <> g.td "
    "      OR b.items_total <> g.it OR b.n <> g.nn OR abs(b.score_sum - g.ss) > 1e-9 "
    "      OR b.task_lo <> g.lo OR b.task_hi <> g.hi OR b.items_done <> "
    "        (SELECT count(*) FROM items i WHERE i.job_id = g.job_id "
    "         AND i.run_idx = g.run_idx AND i.bucket = g.bucket)) "
    "FROM (SELECT job_id, run_idx, bucket, count(*) AS tt, sum(state = 'done') AS td, "
    "      sum(item_hi - item_lo) AS it, min(id) AS lo, max(id) AS hi, "
    "      sum(CASE WHEN state = 'done' THEN n ELSE 0 END) AS nn, "
    "      total(CASE WHEN state = 'done' THEN score_sum END) AS ss "
    "      FROM tasks GROUP BY job_id, run_idx, bucket) AS g "
    "LEFT JOIN buckets b USING (job_id, run_idx, bucket)",
    /* the stats row: job and task counts by state, stored items */
    "SELECT abs((SELECT count(*) FROM stats) - 1) + "
    "(jobs_queued <> (SELECT count(*) FROM jobs WHERE state = 'queued')) + "
    "(jobs_running <> (SELECT count(*) FROM jobs WHERE state = 'running')) + "
    "(jobs_done <> (SELECT count(*) FROM jobs WHERE state = 'done')) + "
    "(jobs_failed <> (SELECT count(*) FROM jobs WHERE state = 'failed')) + "
    "(jobs_cancelled <> (SELECT count(*) FROM jobs WHERE state = 'cancelled')) + "
    "(tasks_queued <> (SELECT count(*) FROM tasks WHERE state = 'queued')) + "
    "(tasks_leased <> (SELECT count(*) FROM tasks WHERE state = 'leased')) + "
    "(tasks_done <> (SELECT count(*) FROM tasks WHERE state = 'done')) + "
    "(tasks_failed <> (SELECT count(*) FROM tasks WHERE state = 'failed')) + "
    "(tasks_cancelled <> (SELECT count(*) FROM tasks WHERE state = 'cancelled')) + "
    "(items_done <> (SELECT count(*) FROM items)) FROM stats WHERE id = 1",
};

/* Every recount on one connection, which sees only what was committed. */
static void assert_counters_true(const char *path, int step)
{
    sqlite3 *sq = NULL;
    assert_int_equal(sqlite3_open_v2(path, &sq, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < sizeof recount_sql / sizeof recount_sql[0]; i++) {
        sqlite3_stmt *s = NULL;
        int64_t wrong = -1;
        assert_int_equal(sqlite3_prepare_v2(sq, recount_sql[i], -1, &s, NULL), SQLITE_OK);
        if (sqlite3_step(s) == SQLITE_ROW)
            wrong = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        if (wrong != 0) {
            sqlite3_close(sq);
            fail_msg("step %d: %lld wrong rows by recount %zu", step, (long long)wrong, i);
        }
    }
    sqlite3_close(sq);
}

/* The JSON the API sees agrees with a recount too. */
static void assert_json_true(tdb_fx_t *f)
{
    static const char *const states[] = {"queued", "leased", "done", "failed", "cancelled"};
    char sql[160];
    json_t *st = NULL;
    assert_int_equal(pdb_stats(f->db, &st), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks WHERE state = '%s'", states[i]);
        assert_int_equal(tdb_jint(json_object_get(st, "tasks"), states[i]), tdb_raw(f->path, sql));
    }
    assert_int_equal(tdb_jint(st, "results_total"),
                     tdb_raw(f->path, "SELECT count(*) FROM tasks WHERE state = 'done'"));
    assert_int_equal(tdb_jint(st, "items_total"), tdb_raw(f->path, "SELECT count(*) FROM items"));
    json_decref(st);
    int64_t n_jobs = tdb_raw(f->path, "SELECT max(id) FROM jobs");
    for (int64_t id = 1; id <= n_jobs; id++) {
        json_t *j = tdb_job(f->db, id), *runs = json_object_get(j, "runs");
        for (int i = 0; i < 5; i++) {
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM tasks WHERE job_id = %lld AND state = '%s'",
                     (long long)id, states[i]);
            assert_int_equal(tdb_jint(json_object_get(j, "tasks"), states[i]),
                             tdb_raw(f->path, sql));
        }
        int64_t items = 0;
        for (size_t r = 0; r < json_array_size(runs); r++) {
            json_t *bk = json_object_get(json_array_get(runs, r), "buckets");
            for (size_t b = 0; b < json_array_size(bk); b++)
                items += tdb_jint(json_array_get(bk, b), "items_done");
        }
        assert_int_equal(items, tdb_jint(j, "items_done"));
        json_decref(j);
    }
}

/* What the random walk knows of a task from its last lease. */
typedef struct walk_task {
    int attempt; /* 0: never leased */
    int64_t lo, hi;
} walk_task_t;

typedef struct walk {
    tdb_fx_t *f;
    pb_rng_t rng;
    walk_task_t *tasks; /* by task id */
    int64_t n_tasks;    /* highest task id */
    int64_t n_jobs;
    int outcome[8];     /* how often each interesting outcome happened */
} walk_t;

enum { W_LEASED, W_RECORDED, W_STALE, W_PARSE, W_REQUEUED, W_FAILED, W_CANCELLED, W_RECOVERED };

static void walk_insert(walk_t *w)
{
    int n_buckets = 1 + (int)pb_rng_below(&w->rng, 3);
    w->n_jobs = tdb_insert(w->f->db, "m1", "arithmetic", 1 + (int)pb_rng_below(&w->rng, 2),
                           n_buckets, 6, 2, 1 + (int)pb_rng_below(&w->rng, 3));
    w->n_tasks = tdb_raw(w->f->path, "SELECT max(id) FROM tasks");
    w->tasks = realloc(w->tasks, (size_t)(w->n_tasks + 1) * sizeof *w->tasks);
    assert_non_null(w->tasks);
    for (int64_t t = tdb_raw(w->f->path, "SELECT min(id) FROM tasks WHERE job_id = "
                                         "(SELECT max(id) FROM jobs)");
         t <= w->n_tasks; t++)
        w->tasks[t].attempt = 0;
}

/* Items lo..hi-1 as items text (common/items.h), every score 0.5. */
static char *items_text(int64_t lo, int64_t hi)
{
    size_t cap = 64 + (size_t)(hi - lo) * 64, len = 0;
    char *s = malloc(cap);
    len += (size_t)snprintf(s, cap, "[");
    for (int64_t i = lo; i < hi; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s[%lld,null,\"p\",\"r\",0.5,10,2,null,null]",
                                i > lo ? "," : "", (long long)i);
    snprintf(s + len, cap - len, "]");
    return s;
}

static void walk_record(walk_t *w, int64_t tid)
{
    walk_task_t *t = &w->tasks[tid];
    int attempt = t->attempt - (pb_rng_below(&w->rng, 6) == 0), done = 0, rc;
    int form = (int)pb_rng_below(&w->rng, 4);
    pb_err_t err;
    if (t->attempt == 0)
        return; /* the range is unknown until a lease tells it */
    if (form == 2) {
        char *text = items_text(t->lo, t->hi);
        rc = pdb_task_record_text(w->f->db, tid, attempt, text, strlen(text), NULL, &done, NULL,
                                  &err);
        free(text);
    } else {
        /* Form 0 says one item went unscored (n is the worker's word, not
         * the item count); form 3 leaves the last item out: malformed. */
        json_t *items = tdb_items_for(t->lo, form == 3 ? t->hi - 1 : t->hi, 0.25);
        json_t *agg = form == 0 ? json_pack("{s:I, s:f}", "n", (json_int_t)(t->hi - t->lo - 1),
                                            "score_sum", 0.25 * (double)(t->hi - t->lo - 1))
                                : NULL;
        rc = pdb_task_record(w->f->db, tid, attempt, items, agg, &done, NULL, &err);
        json_decref(items);
        json_decref(agg);
    }
    assert_true(rc == 0 || rc == PB_ESTALE || rc == PB_EPARSE);
    assert_true(form != 3 || rc != 0);
    w->outcome[rc == 0 ? W_RECORDED : rc == PB_ESTALE ? W_STALE : W_PARSE]++;
}

/* One random operation; batches of them when top is set. */
static void walk_step(walk_t *w, int top)
{
    pdb_t *db = w->f->db;
    int64_t tid = 1 + (int64_t)pb_rng_below(&w->rng, (uint64_t)w->n_tasks);
    walk_task_t *t = &w->tasks[tid];
    uint64_t op = pb_rng_below(&w->rng, 100);
    int rc, flag = 0;

    if (op < 35) {
        json_t *body = NULL;
        rc = pdb_task_lease(db, tid, "w1", pb_wall_time() + 60, &body);
        assert_true(rc == 0 || rc == PB_ESTATE);
        if (rc == 0) {
            t->attempt = (int)tdb_jint(body, "attempt");
            t->lo = tdb_jint(body, "item_lo");
            t->hi = tdb_jint(body, "item_hi");
            w->outcome[W_LEASED]++;
        }
        json_decref(body);
    } else if (op < 65) {
        walk_record(w, tid);
    } else if (op < 80) {
        int retryable = pb_rng_below(&w->rng, 3) != 0;
        rc = pdb_task_release(db, tid, t->attempt, "lost", retryable, &flag);
        assert_true(rc == 0 || rc == PB_ESTALE);
        if (rc == 0)
            w->outcome[flag ? W_REQUEUED : W_FAILED]++;
    } else if (op < 85) {
        rc = pdb_task_renew(db, tid, t->attempt, pb_wall_time() + 90);
        assert_true(rc == 0 || rc == PB_ESTALE);
    } else if (op < 89) {
        json_t *exp = NULL;
        assert_int_equal(pdb_tasks_expired(db, 1e18, &exp), 0); /* every lease */
        json_t *e = json_array_get(exp, pb_rng_below(&w->rng, json_array_size(exp) + 1));
        if (e)
            assert_int_equal(pdb_task_release(db, tdb_jint(e, "task_id"),
                                              (int)tdb_jint(e, "attempt"), "expired", 1, &flag),
                             0);
        json_decref(exp);
    } else if (op < 92) {
        json_t *leased = NULL;
        rc = pdb_job_cancel(db, 1 + (int64_t)pb_rng_below(&w->rng, (uint64_t)w->n_jobs), &leased);
        assert_true(rc == 0 || rc == PB_ESTATE);
        if (rc == 0)
            w->outcome[W_CANCELLED]++;
        json_decref(leased);
    } else if (op < 94) {
        int n = -1;
        assert_int_equal(pdb_recover(db, &n), 0);
        w->outcome[W_RECOVERED] += n > 0;
    } else if (op < 96 && top && w->n_jobs < 8) {
        walk_insert(w);
    } else if (top) {
        /* A batch as the coordinator runs them, committed or rolled back. */
        int k = 1 + (int)pb_rng_below(&w->rng, 5), commit = pb_rng_below(&w->rng, 2) != 0;
        assert_int_equal(pdb_begin(db), 0);
        for (int i = 0; i < k; i++)
            walk_step(w, 0);
        assert_int_equal(commit ? pdb_commit(db) : pdb_rollback(db), 0);
    }
}

static void test_counters_random_walk(void **state)
{
    tdb_fx_t *f = *state;
    walk_t w = {.f = f};
    pb_rng_seed(&w.rng, 20240601, 0);
    for (int i = 0; i < 3; i++)
        walk_insert(&w);
    assert_counters_true(f->path, 0);
    for (int step = 1; step <= 400; step++) {
        walk_step(&w, 1);
        assert_counters_true(f->path, step);
    }
    assert_json_true(f);
    /* The walk went through every kind of transition, not just leases. */
    for (int i = 0; i < 8; i++)
        if (w.outcome[i] == 0)
            fail_msg("outcome %d never happened", i);
    free(w.tasks);
}

/* ---- migration from version 1 ---- */

/* The version 1 schema as it shipped (db/schema.sql, comments left out). */
static const char v1_schema[] =
    "CREATE TABLE models (id INTEGER PRIMARY KEY, name TEXT NOT NULL, backend TEXT NOT NULL,"
    "  spec TEXT NOT NULL, spec_hash TEXT NOT NULL);"
    "CREATE UNIQUE INDEX models_spec_hash ON models(spec_hash);"
    "CREATE INDEX models_name ON models(name);"
    "CREATE TABLE schedules (id INTEGER PRIMARY KEY, name TEXT NOT NULL, cron TEXT NOT NULL,"
    "  template TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    "  created_at REAL NOT NULL, last_fired_at REAL, next_fire_at REAL,"
    "  last_job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL);"
    "CREATE UNIQUE INDEX schedules_name ON schedules(name);"
    "CREATE INDEX schedules_due ON schedules(enabled, next_fire_at);"
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    "  model_id INTEGER NOT NULL REFERENCES models(id), spec TEXT NOT NULL,"
    "  seed INTEGER NOT NULL, priority INTEGER NOT NULL DEFAULT 0,"
    "  device TEXT NOT NULL DEFAULT 'any', max_attempts INTEGER NOT NULL,"
    "  timeout_s INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'queued'"
    "  CHECK (state = 'queued' OR state = 'running' OR state = 'done'"
    "         OR state = 'failed' OR state = 'cancelled'),"
    "  idempotency_key TEXT, schedule_id INTEGER REFERENCES schedules(id) ON DELETE SET NULL,"
    "  items_total INTEGER NOT NULL DEFAULT 0, items_done INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT, created_at REAL NOT NULL, started_at REAL, finished_at REAL);"
    "CREATE INDEX jobs_state ON jobs(state);"
    "CREATE UNIQUE INDEX jobs_idempotency ON jobs(idempotency_key);"
    "CREATE INDEX jobs_schedule ON jobs(schedule_id);"
    "CREATE TABLE runs (job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL, suite TEXT NOT NULL, task TEXT NOT NULL, params TEXT NOT NULL,"
    "  samples INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (job_id, idx))"
    "  WITHOUT ROWID;"
    "CREATE INDEX runs_suite_task ON runs(suite, task);"
    "CREATE TABLE tasks (id INTEGER PRIMARY KEY,"
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  run_idx INTEGER NOT NULL, bucket INTEGER NOT NULL, item_lo INTEGER NOT NULL,"
    "  item_hi INTEGER NOT NULL CHECK (item_hi > item_lo),"
    "  state TEXT NOT NULL DEFAULT 'queued'"
    "  CHECK (state = 'queued' OR state = 'leased' OR state = 'done'"
    "         OR state = 'failed' OR state = 'cancelled'),"
    "  attempt INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, worker TEXT,"
    "  lease_deadline REAL, error TEXT, n INTEGER NOT NULL DEFAULT 0,"
    "  score_sum REAL NOT NULL DEFAULT 0, created_at REAL NOT NULL, leased_at REAL,"
    "  done_at REAL, FOREIGN KEY (job_id, run_idx) REFERENCES runs(job_id, idx));"
    "CREATE INDEX tasks_state_job ON tasks(state, job_id);"
    "CREATE INDEX tasks_job ON tasks(job_id, run_idx, bucket);"
    "CREATE TABLE items (job_id INTEGER NOT NULL, task_id INTEGER NOT NULL,"
    "  idx INTEGER NOT NULL, run_idx INTEGER NOT NULL, bucket INTEGER NOT NULL,"
    "  prompt_hash TEXT, prediction TEXT, reference TEXT, score REAL, latency_us INTEGER,"
    "  tokens INTEGER, meta TEXT, error TEXT, PRIMARY KEY (job_id, task_id, idx))"
    "  WITHOUT ROWID;"
    "CREATE TABLE workers (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    "  capabilities TEXT NOT NULL DEFAULT '{}', state TEXT NOT NULL,"
    "  connected_at REAL NOT NULL, last_seen REAL NOT NULL,"
    "  tasks_done INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX workers_name ON workers(name);"
    "PRAGMA user_version = 1;";

/* Four jobs as version 1 left them: job 1 running (2 runs x buckets 2 and 4,
 * tasks in every live state), 2 done, 3 failed, 4 queued. */
static const char v1_data[] =
    "INSERT INTO models VALUES (1, 'm1', 'oracle', '{\"backend\":\"oracle\",\"name\":\"m1\"}',"
    "  'h1');"
    "INSERT INTO jobs(id, name, model_id, spec, seed, max_attempts, timeout_s, state,"
    "  items_total, items_done, created_at, started_at, finished_at) VALUES"
    "  (1, 'a', 1, '{}', 7, 3, 60, 'running', 16, 6, 1000, 1001, NULL),"
    "  (2, 'b', 1, '{}', 7, 3, 60, 'done', 4, 4, 1000, 1001, 1002),"
    "  (3, 'c', 1, '{}', 7, 3, 60, 'failed', 8, 0, 1000, 1001, 1002),"
    "  (4, 'd', 1, '{}', 7, 3, 60, 'queued', 4, 0, 1000, NULL, NULL);"
    "INSERT INTO runs VALUES (1, 0, 'arithmetic', 'add', '{}', 4, 1),"
    "  (1, 1, 'arithmetic', 'mul', '{}', 4, 1), (2, 0, 'arithmetic', 'add', '{}', 4, 1),"
    "  (3, 0, 'arithmetic', 'add', '{}', 4, 1), (4, 0, 'arithmetic', 'add', '{}', 4, 1);"
    "INSERT INTO tasks(id, job_id, run_idx, bucket, item_lo, item_hi, state, attempt,"
    "  max_attempts, worker, n, score_sum, created_at, error) VALUES"
    "  (1, 1, 0, 2, 0, 2, 'done', 1, 3, 'w1', 2, 1.5, 1000, NULL),"
    "  (2, 1, 0, 2, 2, 4, 'leased', 1, 3, 'w1', 0, 0, 1000, NULL),"
    "  (3, 1, 0, 4, 0, 2, 'done', 1, 3, 'w1', 2, 2.0, 1000, NULL),"
    "  (4, 1, 0, 4, 2, 4, 'queued', 0, 3, NULL, 0, 0, 1000, NULL),"
    "  (5, 1, 1, 2, 0, 2, 'done', 2, 3, 'w1', 2, 0.5, 1000, NULL),"
    "  (6, 1, 1, 2, 2, 4, 'queued', 0, 3, NULL, 0, 0, 1000, NULL),"
    "  (7, 1, 1, 4, 0, 4, 'queued', 0, 3, NULL, 0, 0, 1000, NULL),"
    "  (8, 2, 0, 2, 0, 4, 'done', 1, 3, 'w1', 4, 4.0, 1000, NULL),"
    "  (9, 3, 0, 2, 0, 4, 'failed', 3, 3, 'w1', 0, 0, 1000, 'boom'),"
    "  (10, 3, 0, 2, 4, 8, 'cancelled', 0, 3, NULL, 0, 0, 1000, NULL),"
    "  (11, 4, 0, 2, 0, 4, 'queued', 0, 3, NULL, 0, 0, 1000, NULL);"
    "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 3)"
    "INSERT INTO items(job_id, task_id, idx, run_idx, bucket, score)"
    "  SELECT t.job_id, t.id, k.i, t.run_idx, t.bucket, 1.0 FROM tasks t JOIN k"
    "  ON k.i >= t.item_lo AND k.i < t.item_hi WHERE t.state = 'done';"
    "INSERT INTO workers(name, state, connected_at, last_seen) VALUES ('w1', 'gone', 1, 1);";

static json_t *bucket_of(json_t *j, size_t run, size_t b)
{
    return json_array_get(json_object_get(json_array_get(json_object_get(j, "runs"), run),
                                          "buckets"),
                          b);
}

static void test_migrate_v1(void **state)
{
    char dir[256], path[320];
    sqlite3 *sq = NULL;
    pdb_t *db = NULL;
    pb_err_t err = {.msg = ""};
    tdb_fx_t fx;
    (void)state;

    pb_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/v1.db", dir);
    assert_int_equal(sqlite3_open(path, &sq), SQLITE_OK);
    assert_int_equal(sqlite3_exec(sq, v1_schema, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(sq, v1_data, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(sq);
    assert_int_equal(tdb_raw(path, "SELECT count(*) FROM items"), 10);

    assert_int_equal(pdb_open(path, &db, &err), 0);
    assert_int_equal(tdb_raw(path, "PRAGMA user_version"), 5);
    assert_counters_true(path, 0);
    json_t *j = tdb_job(db, 1), *t = json_object_get(j, "tasks");
    assert_int_equal(tdb_jint(t, "queued"), 3);
    assert_int_equal(tdb_jint(t, "leased"), 1);
    assert_int_equal(tdb_jint(t, "done"), 3);
    json_t *b = bucket_of(j, 0, 0);
    assert_int_equal(tdb_jint(b, "bucket"), 2);
    assert_int_equal(tdb_jint(b, "tasks_total"), 2);
    assert_int_equal(tdb_jint(b, "tasks_done"), 1);
    assert_int_equal(tdb_jint(b, "items_total"), 4);
    assert_int_equal(tdb_jint(b, "items_done"), 2);
    b = bucket_of(j, 1, 1);
    assert_int_equal(tdb_jint(b, "bucket"), 4);
    assert_int_equal(tdb_jint(b, "items_total"), 4);
    assert_int_equal(tdb_jint(b, "tasks_done"), 0);
    json_decref(j);
    assert_int_equal(pdb_job_results(db, 1, &j), 0);
    b = bucket_of(j, 1, 0);
    assert_int_equal(tdb_jint(b, "n"), 2);
    assert_true(json_real_value(json_object_get(b, "score_sum")) == 0.5);
    json_decref(j);
    assert_int_equal(pdb_stats(db, &j), 0);
    assert_int_equal(tdb_jint(json_object_get(j, "jobs"), "running"), 1);
    assert_int_equal(tdb_jint(json_object_get(j, "jobs"), "failed"), 1);
    assert_int_equal(tdb_jint(json_object_get(j, "tasks"), "queued"), 4);
    assert_int_equal(tdb_jint(json_object_get(j, "tasks"), "cancelled"), 1);
    assert_int_equal(tdb_jint(j, "items_total"), 10);
    assert_int_equal(tdb_jint(j, "results_total"), 4);
    json_decref(j);
    assert_int_equal(pdb_leaderboard(db, NULL, &j), 0);
    json_t *e = json_array_get(json_object_get(j, "entries"), 0);
    assert_int_equal(tdb_jint(e, "job_id"), 2);
    assert_int_equal(tdb_jint(e, "n"), 4);
    json_decref(j);
    assert_int_equal(pdb_job_items(db, 1, 0, 4, NULL, 10, &j), 0);
    assert_int_equal(tdb_jint(j, "total"), 2);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 2);
    json_decref(j);

    /* The migrated store goes on as a new one: recovery, then job 1 to done. */
    int n = 0, done = 0;
    assert_int_equal(pdb_recover(db, &n), 0);
    assert_int_equal(n, 1);
    assert_counters_true(path, 1);
    static const int64_t open_tasks[] = {2, 4, 6, 7};
    for (int i = 0; i < 4; i++)
        assert_int_equal(tdb_run_task(db, open_tasks[i], 1.0, &done), 0);
    assert_int_equal(done, 1);
    assert_counters_true(path, 2);
    fx.db = db;
    snprintf(fx.path, sizeof fx.path, "%s", path);
    assert_json_true(&fx);
    pdb_close(db);

    /* Opening again migrates nothing. */
    assert_int_equal(pdb_open(path, &db, &err), 0);
    assert_int_equal(tdb_raw(path, "PRAGMA user_version"), 5);
    assert_counters_true(path, 3);
    pdb_close(db);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(fx.path, sizeof fx.path, "%s%s", path, suffix[i]);
        unlink(fx.path);
    }
    rmdir(dir);
}

/* ---- read cost ---- */

/* Microseconds per call of a read, averaged over reps calls. */
static double time_read(pdb_t *db, int which, int64_t job_id, int reps)
{
    int64_t t0 = pb_now_us();
    for (int i = 0; i < reps; i++) {
        json_t *out = NULL;
        int rc = which == 0   ? pdb_job_get(db, job_id, &out)
                 : which == 1 ? pdb_jobs_list(db, NULL, 0, 50, &out)
                 : which == 2 ? pdb_stats(db, &out)
                              : pdb_job_results(db, job_id, &out);
        assert_int_equal(rc, 0);
        json_decref(out);
    }
    return (double)(pb_now_us() - t0) / reps;
}

/* A 10,000-task job (10 buckets x 1,000 one-item tasks), half of it done:
 * the reads the dashboard polls must not grow with the tasks. */
static void test_read_cost(void **state)
{
    tdb_fx_t *f = *state;
    enum { BUCKETS = 10, PER = 1000 };
    int64_t id = tdb_insert(f->db, "m1", "arithmetic", 1, BUCKETS, PER, 1, 3);
    int64_t tid = tdb_first_task(f->db, id);
    int done = 0;
    assert_int_equal(pdb_begin(f->db), 0);
    for (int64_t t = tid; t < tid + BUCKETS * PER; t += 2)
        assert_int_equal(tdb_run_task(f->db, t, 1.0, &done), 0);
    assert_int_equal(pdb_commit(f->db), 0);

    json_t *j = tdb_job(f->db, id);
    assert_int_equal(tdb_jint(json_object_get(j, "tasks"), "done"), BUCKETS * PER / 2);
    assert_int_equal(tdb_jint(json_object_get(j, "tasks"), "queued"), BUCKETS * PER / 2);
    assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(j, "runs"), 0),
                                                     "buckets")),
                     BUCKETS);
    assert_int_equal(tdb_jint(bucket_of(j, 0, BUCKETS - 1), "tasks_done"), PER / 2);
    json_decref(j);
    assert_counters_true(f->path, 0);

    static const char *const names[] = {"pdb_job_get", "pdb_jobs_list", "pdb_stats",
                                        "pdb_job_results"};
    printf("[ db timing ] reads on a %d-task job:", BUCKETS * PER);
    for (int k = 0; k < 4; k++)
        printf(" %s %.1f us%s", names[k], time_read(f->db, k, id, 200), k < 3 ? "," : "\n");
}

int pb_test_db_read(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, tdb_fx_setup, tdb_fx_teardown)
        T(test_jobs_list),
        T(test_items_paging),
        T(test_job_done_and_results),
        T(test_stats),
        T(test_leaderboard),
        T(test_counters_random_walk),
        cmocka_unit_test(test_migrate_v1),
        T(test_read_cost),
#undef T
    };
    return cmocka_run_group_tests_name("db_read", tests, NULL, NULL);
}
