/* Unit tests for the results breakdown (BREAKDOWN.md, store side): groups a
 * RESULT carries in aggregate.groups summed into the breakdowns table per
 * (job, run, bucket, key, value), only for results actually recorded;
 * malformed groups refusing the whole result; the migration from version 2;
 * and the API's rendering (coordinator/api_breakdown.c) of the rows. */
#include "tests/unit/test_db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "coordinator/api_breakdown.h"

/* Lease a task and record it with every item scored 1 and the given groups
 * (JSON text); returns pdb_task_record's code, err filled. */
static int record_groups(pdb_t *db, int64_t task_id, const char *groups, pb_err_t *err)
{
    int attempt, done = 0;
    int64_t lo, hi, job = 0;
    tdb_lease(db, task_id, "w1", &attempt, &lo, &hi);
    json_t *items = tdb_items_for(lo, hi, 1.0);
    json_t *agg = json_pack("{s:I, s:f}", "n", (json_int_t)(hi - lo), "score_sum",
                            (double)(hi - lo));
    json_object_set_new(agg, "groups", pb_test_json(groups));
    int rc = pdb_task_record(db, task_id, attempt, items, agg, &done, &job, err);
    json_decref(items);
    json_decref(agg);
    return rc;
}

/* n and score_sum of one breakdowns row, read on a second connection; n is
 * -1 when there is no such row. */
static void bd_row(const char *path, int64_t job, int64_t bucket, const char *key,
                   const char *value, int64_t *n, double *sum)
{
    sqlite3 *sq = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &sq, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(sq,
                                        "SELECT n, score_sum FROM breakdowns WHERE job_id = ?1 "
                                        "AND run_idx = 0 AND bucket = ?2 AND key = ?3 "
                                        "AND value = ?4",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(s, 1, job);
    sqlite3_bind_int64(s, 2, bucket);
    sqlite3_bind_text(s, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, value, -1, SQLITE_STATIC);
    *n = -1;
    *sum = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        *n = sqlite3_column_int64(s, 0);
        *sum = sqlite3_column_double(s, 1);
    }
    sqlite3_finalize(s);
    sqlite3_close(sq);
}

static void assert_row(const char *path, int64_t job, int64_t bucket, const char *key,
                       const char *value, int64_t want_n, double want_sum)
{
    int64_t n;
    double sum;
    bd_row(path, job, bucket, key, value, &n, &sum);
    if (n != want_n || sum != want_sum)
        fail_msg("row (%lld, %s, %s): n %lld sum %g, want %lld %g", (long long)bucket, key, value,
                 (long long)n, sum, (long long)want_n, want_sum);
}

/* One run, buckets 2 and 4, two 2-item tasks each: task ids t..t+3 are
 * (bucket 2, [0,2)), (2, [2,4)), (4, [0,2)), (4, [2,4)). */
static int64_t insert_job(pdb_t *db, int64_t *first_task)
{
    int64_t id = tdb_insert(db, "m1", "arithmetic", 1, 2, 4, 2, 3);
    *first_task = tdb_first_task(db, id);
    return id;
}

static void test_groups_summed(void **state)
{
    tdb_fx_t *f = *state;
    pb_err_t err = {.msg = ""};
    int64_t t, job = insert_job(f->db, &t);

    /* Two tasks of bucket 2 add into the same rows. */
    assert_int_equal(record_groups(f->db, t, "[[\"da,db\", \"1,2\", 1, 1.0],"
                                             " [\"da,db\", \"2,10\", 1, 0.0]]", &err), 0);
    assert_int_equal(record_groups(f->db, t + 1, "[[\"da,db\", \"1,2\", 2, 1.5]]", &err), 0);
    /* Bucket 4 keeps rows of its own; a second key lives beside the first. */
    assert_int_equal(record_groups(f->db, t + 2, "[[\"da,db\", \"1,2\", 1, 1.0],"
                                                 " [\"da,db\", \"2,9\", 1, 1.0],"
                                                 " [\"depth\", \"3\", 2, 2.0]]", &err), 0);
    /* No groups at all (absent / empty) is fine. */
    assert_int_equal(record_groups(f->db, t + 3, "[]", &err), 0);

    assert_row(f->path, job, 2, "da,db", "1,2", 3, 2.5);
    assert_row(f->path, job, 2, "da,db", "2,10", 1, 0.0);
    assert_row(f->path, job, 4, "da,db", "1,2", 1, 1.0);
    assert_row(f->path, job, 4, "da,db", "2,9", 1, 1.0);
    assert_row(f->path, job, 4, "depth", "3", 2, 2.0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM breakdowns"), 5);

    /* The raw rows in the results, by key, bucket, value. */
    json_t *res = NULL;
    assert_int_equal(pdb_job_results(f->db, job, &res), 0);
    json_t *run = json_array_get(json_object_get(res, "runs"), 0);
    json_t *rows = json_object_get(run, "breakdown_rows");
    assert_int_equal(json_array_size(rows), 5);
    json_t *r0 = json_array_get(rows, 0), *r4 = json_array_get(rows, 4);
    assert_string_equal(tdb_jstr(r0, "key"), "da,db");
    assert_string_equal(tdb_jstr(r0, "value"), "1,2");
    assert_int_equal(tdb_jint(r0, "bucket"), 2);
    assert_int_equal(tdb_jint(r0, "n"), 3);
    assert_string_equal(tdb_jstr(r4, "key"), "depth");

    /* Rendered: groups summed over buckets in numeric value order. */
    assert_int_equal(pb_api_breakdown_render(run), 0);
    assert_null(json_object_get(run, "breakdown_rows"));
    json_t *dadb = json_object_get(json_object_get(run, "breakdown"), "da,db");
    json_t *groups = json_object_get(dadb, "groups"), *grid = json_object_get(dadb, "grid");
    assert_int_equal(json_array_size(groups), 3);
    static const char *const want_values[] = {"1,2", "2,9", "2,10"};
    static const int64_t want_n[] = {4, 1, 1};
    static const double want_acc[] = {0.875, 1.0, 0.0};
    for (size_t i = 0; i < 3; i++) {
        json_t *g = json_array_get(groups, i), *ci = json_object_get(g, "ci");
        double lo, hi;
        assert_string_equal(tdb_jstr(g, "value"), want_values[i]);
        assert_int_equal(tdb_jint(g, "n"), want_n[i]);
        assert_true(json_number_value(json_object_get(g, "accuracy")) == want_acc[i]);
        pb_wilson(want_acc[i] * (double)want_n[i], (double)want_n[i], &lo, &hi);
        assert_int_equal(json_array_size(ci), 2);
        assert_true(json_number_value(json_array_get(ci, 0)) == lo);
        assert_true(json_number_value(json_array_get(ci, 1)) == hi);
    }
    /* Grid: by bucket, then value. */
    assert_int_equal(json_array_size(grid), 4);
    static const int64_t grid_bucket[] = {2, 2, 4, 4};
    static const char *const grid_value[] = {"1,2", "2,10", "1,2", "2,9"};
    for (size_t i = 0; i < 4; i++) {
        json_t *g = json_array_get(grid, i);
        assert_int_equal(tdb_jint(g, "bucket"), grid_bucket[i]);
        assert_string_equal(tdb_jstr(g, "value"), grid_value[i]);
    }
    assert_true(json_number_value(json_object_get(json_array_get(grid, 0), "accuracy")) ==
                2.5 / 3);
    json_t *depth = json_object_get(json_object_get(run, "breakdown"), "depth");
    assert_int_equal(json_array_size(json_object_get(depth, "groups")), 1);
    json_decref(res);

    /* Deleting the job takes its rows along (ON DELETE CASCADE). */
    sqlite3 *sq = NULL;
    assert_int_equal(sqlite3_open(f->path, &sq), SQLITE_OK);
    sqlite3_busy_timeout(sq, 5000);
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA foreign_keys = ON; DELETE FROM jobs WHERE id = %lld",
             (long long)job);
    assert_int_equal(sqlite3_exec(sq, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(sq);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM breakdowns"), 0);
}

/* A duplicate or stale RESULT adds nothing; the current lease's does. */
static void test_groups_stale(void **state)
{
    tdb_fx_t *f = *state;
    pb_err_t err = {.msg = ""};
    int64_t t, job = insert_job(f->db, &t);
    const char *g = "[[\"da,db\", \"1,1\", 2, 2.0]]";
    json_t *gj = pb_test_json(g);
    json_t *agg = json_pack("{s:i, s:f, s:O}", "n", 2, "score_sum", 2.0, "groups", gj);
    json_t *items = tdb_items_for(0, 2, 1.0);
    int done = 0, requeued = 0, attempt;
    int64_t lo, hi;

    assert_int_equal(record_groups(f->db, t, g, &err), 0);
    /* The same result again (attempt 1): a duplicate. */
    assert_int_equal(pdb_task_record(f->db, t, 1, items, agg, &done, NULL, &err), PB_ESTALE);
    assert_row(f->path, job, 2, "da,db", "1,1", 2, 2.0);

    /* A lease lost and given out again: the old attempt's result is stale. */
    tdb_lease(f->db, t + 2, "w1", &attempt, &lo, &hi);
    assert_int_equal(pdb_task_release(f->db, t + 2, attempt, "lost", 1, &requeued), 0);
    assert_int_equal(requeued, 1);
    int old = attempt;
    tdb_lease(f->db, t + 2, "w2", &attempt, &lo, &hi);
    assert_int_equal(attempt, old + 1);
    assert_int_equal(pdb_task_record(f->db, t + 2, old, items, agg, &done, NULL, &err),
                     PB_ESTALE);
    assert_row(f->path, job, 4, "da,db", "1,1", -1, 0);
    assert_int_equal(pdb_task_record(f->db, t + 2, attempt, items, agg, &done, NULL, &err), 0);
    assert_row(f->path, job, 4, "da,db", "1,1", 2, 2.0);
    /* ... and only once. */
    assert_int_equal(pdb_task_record(f->db, t + 2, attempt, items, agg, &done, NULL, &err),
                     PB_ESTALE);
    assert_row(f->path, job, 4, "da,db", "1,1", 2, 2.0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM breakdowns"), 2);
    json_decref(items);
    json_decref(agg);
    json_decref(gj);
}

/* Malformed groups refuse the whole result: no items, no rows, the task
 * still leased, err naming the entry. */
static void test_groups_malformed(void **state)
{
    tdb_fx_t *f = *state;
    char key129[160], val257[300], bad[400];
    memset(key129, 'k', 129);
    key129[129] = '\0';
    memset(val257, 'v', 257);
    val257[257] = '\0';
    static const char ok[] = "[\"da,db\", \"1,1\", 1, 1.0]";
    struct {
        const char *groups; /* the second entry, after a good one; NULL = whole */
        const char *whole;
        const char *field;
    } cases[] = {
        {NULL, "\"da,db\"", "aggregate.groups"},
        {NULL, "{\"da,db\": 1}", "aggregate.groups"},
        {"[\"da,db\", \"1,1\", 1]", NULL, "aggregate.groups[1]"},
        {"[\"da,db\", \"1,1\", 1, 1.0, 2]", NULL, "aggregate.groups[1]"},
        {"[\"da,db\", \"1,1\", -1, 0.0]", NULL, "aggregate.groups[1]"},
        {"[\"da,db\", \"1,1\", 1.5, 0.0]", NULL, "aggregate.groups[1]"},
        {"[\"da,db\", \"1,1\", 1, \"1\"]", NULL, "aggregate.groups[1]"},
        {"[\"da,db\", 11, 1, 1.0]", NULL, "aggregate.groups[1]"},
        {"[null, \"1,1\", 1, 1.0]", NULL, "aggregate.groups[1]"},
        {"{\"key\": \"da,db\"}", NULL, "aggregate.groups[1]"},
        {"[\"a\\u0000b\", \"1,1\", 1, 1.0]", NULL, "aggregate.groups[1]"},
        {key129, NULL, "aggregate.groups[1]"},
        {val257, NULL, "aggregate.groups[1]"},
    };
    int64_t t, job = insert_job(f->db, &t);
    int attempt, done = 0;
    int64_t lo, hi;
    tdb_lease(f->db, t, "w1", &attempt, &lo, &hi);
    json_t *items = tdb_items_for(lo, hi, 1.0);

    for (size_t i = 0; i < PB_ARRAY_LEN(cases); i++) {
        pb_err_t err = {.msg = ""};
        if (cases[i].whole)
            snprintf(bad, sizeof bad, "%s", cases[i].whole);
        else if (cases[i].groups == key129)
            snprintf(bad, sizeof bad, "[%s, [\"%s\", \"1\", 1, 1.0]]", ok, key129);
        else if (cases[i].groups == val257)
            snprintf(bad, sizeof bad, "[%s, [\"k\", \"%s\", 1, 1.0]]", ok, val257);
        else
            snprintf(bad, sizeof bad, "[%s, %s]", ok, cases[i].groups);
        json_t *agg = json_pack("{s:i, s:f}", "n", 2, "score_sum", 2.0);
        json_t *g = json_loads(bad, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
        if (g == NULL)
            fail_msg("case %zu: bad test JSON %s", i, bad);
        json_object_set_new(agg, "groups", g);
        int rc = pdb_task_record(f->db, t, attempt, items, agg, &done, NULL, &err);
        json_decref(agg);
        if (rc != PB_EPARSE || strcmp(err.field, cases[i].field) != 0)
            fail_msg("case %zu: rc %d field \"%s\" (%s), want PB_EPARSE \"%s\"", i, rc, err.field,
                     err.msg, cases[i].field);
    }
    /* More than PDB_MAX_GROUPS entries; exactly that many pass below. */
    json_t *many = json_array();
    char value[16];
    for (int i = 0; i <= PDB_MAX_GROUPS; i++) {
        snprintf(value, sizeof value, "%d", i);
        json_array_append_new(many, json_pack("[s, s, i, f]", "n", value, 0, 0.0));
    }
    json_t *agg = json_pack("{s:i, s:f, s:O}", "n", 2, "score_sum", 2.0, "groups", many);
    pb_err_t err = {.msg = ""};
    assert_int_equal(pdb_task_record(f->db, t, attempt, items, agg, &done, NULL, &err),
                     PB_EPARSE);
    assert_string_equal(err.field, "aggregate.groups");
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM breakdowns"), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM tasks WHERE state = 'leased'"), 1);

    /* At the limits (4096 groups, a 128-byte key, a 256-byte value) the
     * result is recorded, with the items. */
    json_array_remove(many, PDB_MAX_GROUPS);
    key129[128] = '\0';
    val257[256] = '\0';
    json_array_set_new(many, 0, json_pack("[s, s, i, f]", key129, val257, 2, 2.0));
    assert_int_equal(pdb_task_record(f->db, t, attempt, items, agg, &done, NULL, &err), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 2);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM breakdowns"), PDB_MAX_GROUPS);
    assert_row(f->path, job, 2, key129, val257, 2, 2.0);
    json_decref(agg);
    json_decref(many);
    json_decref(items);
}

/* A version 2 file (this store's file with migrations 3 and 4 undone: they
 * only add the breakdowns and datasets tables and runs.dataset) opens,
 * migrates to the current version and records groups. */
static void test_migrate_v2(void **state)
{
    tdb_fx_t *f = *state;
    pb_err_t err = {.msg = ""};
    int64_t t, job = insert_job(f->db, &t);
    int done = 0;
    assert_int_equal(tdb_run_task(f->db, t, 1.0, &done), 0);
    pdb_close(f->db);
    f->db = NULL;

    sqlite3 *sq = NULL;
    assert_int_equal(sqlite3_open(f->path, &sq), SQLITE_OK);
    assert_int_equal(sqlite3_exec(sq, "DROP TABLE breakdowns; DROP TABLE datasets; "
                                  "ALTER TABLE runs DROP COLUMN dataset; " TDB_UNDO_V5
                                  "PRAGMA user_version = 2",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(sq);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM sqlite_master "
                                      "WHERE name = 'breakdowns'"),
                     0);

    assert_int_equal(pdb_open(f->path, &f->db, &err), 0);
    assert_int_equal(tdb_raw(f->path, "PRAGMA user_version"), 5);
    /* What version 2 recorded is still there, without breakdown rows. */
    json_t *res = NULL;
    assert_int_equal(pdb_job_results(f->db, job, &res), 0);
    json_t *run = json_array_get(json_object_get(res, "runs"), 0);
    assert_int_equal(tdb_jint(json_array_get(json_object_get(run, "buckets"), 0), "n"), 2);
    assert_null(json_object_get(run, "breakdown_rows"));
    assert_int_equal(pb_api_breakdown_render(run), 0);
    assert_null(json_object_get(run, "breakdown")); /* no rows, no key */
    json_decref(res);
    assert_int_equal(record_groups(f->db, t + 1, "[[\"da,db\", \"1,1\", 2, 1.0]]", &err), 0);
    assert_row(f->path, job, 2, "da,db", "1,1", 2, 1.0);
}

/* The value order: part by part, integer parts as integers. */
static void test_value_order(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        int want;
    } pairs[] = {
        {"1,2", "1,10", -1},   {"2,9", "2,10", -1},  {"10", "9", 1},
        {"-10", "-2", -1},     {"-1", "1", -1},      {"-0", "0", -1}, /* equal numbers: strcmp */
        {"03", "3", -1},       {"3", "3", 0},        {"3", "3,1", -1},
        {"a", "b", -1},        {"10", "a", -1},      {"x,2", "x,10", -1},
        {"99999999999999999999", "100000000000000000000", -1},
        {"", "0", -1},         {"1,", "1,0", -1},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(pairs); i++) {
        int r = pb_api_breakdown_cmp(pairs[i].a, pairs[i].b);
        int back = pb_api_breakdown_cmp(pairs[i].b, pairs[i].a);
        if (r != pairs[i].want || back != -pairs[i].want)
            fail_msg("cmp(\"%s\", \"%s\") = %d / %d, want %d", pairs[i].a, pairs[i].b, r, back,
                     pairs[i].want);
    }
}

int pb_test_db_breakdown(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, tdb_fx_setup, tdb_fx_teardown)
        T(test_groups_summed),
        T(test_groups_stale),
        T(test_groups_malformed),
        T(test_migrate_v2),
        cmocka_unit_test(test_value_order),
#undef T
    };
    return cmocka_run_group_tests_name("db_breakdown", tests, NULL, NULL);
}
