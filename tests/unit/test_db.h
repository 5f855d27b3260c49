/* What the db unit tests share (defined in test_db.c, used by test_db_read.c
 * too): a store on a fresh SQLite file per test, hand-built plans (no suites/
 * code), lease/record shortcuts that assert success, and raw reads through a
 * second SQLite connection, which sees only what was committed. */
#ifndef PB_TEST_DB_H
#define PB_TEST_DB_H

#include "tests/unit/unit.h"

#include "db/store.h"

/* SQL that takes a version-5 store back to version 4's tables (migration
 * 5's additions dropped), for tests that fake an older database. */
#define TDB_UNDO_V5                                                                              \
    "DROP TABLE deliveries; DROP TABLE regressions; DROP TABLE points; DROP TABLE series; "     \
    "DROP TABLE contexts; DROP TABLE testbeds; DROP INDEX jobs_ingest; "                        \
    "ALTER TABLE jobs DROP COLUMN ingested; ALTER TABLE tasks DROP COLUMN testbed_id; "         \
    "ALTER TABLE tasks DROP COLUMN context_id; ALTER TABLE schedules DROP COLUMN webhook; "     \
    "ALTER TABLE schedules DROP COLUMN detect; "

typedef struct tdb_fx {
    char dir[256];
    char path[320];
    pdb_t *db;
} tdb_fx_t;

/* cmocka setup/teardown: *state is a tdb_fx_t with an open store. */
int tdb_fx_setup(void **state);
int tdb_fx_teardown(void **state);

/* A plan of n_runs runs x n_buckets buckets (2, 4, 6, ...) x shards of
 * `shard` items over `samples`; tdb_plan_free releases it. */
ps_plan_t *tdb_plan_new(const char *model, const char *suite, int n_runs, int n_buckets,
                        uint64_t samples, uint64_t shard, int max_attempts);
void tdb_plan_free(ps_plan_t *p);
/* Insert such a plan; returns the job id. */
int64_t tdb_insert(pdb_t *db, const char *model, const char *suite, int n_runs, int n_buckets,
                   uint64_t samples, uint64_t shard, int max_attempts);

/* The first queued task id of a job (a job's tasks have consecutive ids). */
int tdb_first_task_cb(void *ctx, const pdb_task_ref_t *t);
int64_t tdb_first_task(pdb_t *db, int64_t job_id);
/* Lease a task (asserting success); its attempt and item range out. */
void tdb_lease(pdb_t *db, int64_t task_id, const char *worker, int *attempt, int64_t *lo,
               int64_t *hi);
/* Items lo..hi-1 as objects, each scored `score`; new reference. */
json_t *tdb_items_for(int64_t lo, int64_t hi, double score);
/* Lease and record a task with every item scored `score`. */
int tdb_run_task(pdb_t *db, int64_t task_id, double score, int *job_done);

/* The first column of the first row of sql, read on a new connection. */
int64_t tdb_raw(const char *path, const char *sql);
/* pdb_job_get, asserting success; new reference. */
json_t *tdb_job(pdb_t *db, int64_t id);
const char *tdb_jstr(const json_t *o, const char *key);
int64_t tdb_jint(const json_t *o, const char *key);

/* The read side's group (test_db_read.c) and the breakdown groups'
 * (test_db_breakdown.c), run by pb_test_db. */
int pb_test_db_read(void);
int pb_test_db_breakdown(void);

#endif
