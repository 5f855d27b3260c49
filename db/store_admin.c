/* The store's small tables: workers (upserted on every HELLO/heartbeat),
 * schedules (the nightly-job timer's state) and the stats row behind
 * /metrics. */
#include "db/store_int.h"

#include <stdlib.h>

#include "common/util.h"

/* ---- workers ---- */

int pdb_worker_seen(pdb_t *db, const char *name, const json_t *caps, const char *state)
{
    char *caps_text = NULL;
    int rc;

    if (name == NULL || state == NULL)
        return PB_EINVAL;
    if (caps != NULL) {
        caps_text = json_dumps(caps, JSON_COMPACT | JSON_ENCODE_ANY);
        if (caps_text == NULL)
            return PB_ENOMEM;
    }
    sqlite3_stmt *s = pdb__st(db, PDB_ST_WORKER_UPSERT);
    pdb__bind_text(s, 1, name);
    pdb__bind_text(s, 2, caps_text);
    pdb__bind_text(s, 3, state);
    sqlite3_bind_double(s, 4, pb_wall_time());
    /* One statement is atomic alone and inside pdb_begin: no savepoint. */
    rc = pdb__run(db, s);
    free(caps_text);
    return rc;
}

int pdb_workers_list(pdb_t *db, json_t **out)
{
    int rc = 0, src;
    char t1[32], t2[32];
    json_t *res = NULL, *arr = NULL, *by_name = NULL;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_WORKERS_LIST);

    *out = NULL;
    arr = json_array();
    by_name = json_object();
    if (arr == NULL || by_name == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *cur = json_array(); /* stolen by w; by_name keeps a second reference */
        json_t *w = json_pack("{s:s, s:s, s:o?, s:s?, s:s?, s:I, s:o}", "name",
                              pdb__col_text(s, 0), "state", pdb__col_text(s, 1), "capabilities",
                              pdb__col_json(s, 2), "connected_at", pdb__col_iso(s, 3, t1),
                              "last_seen", pdb__col_iso(s, 4, t2), "tasks_done",
                              (json_int_t)sqlite3_column_int64(s, 5), "current_tasks", cur);
        if (w == NULL || json_array_append_new(arr, w) ||
            json_object_set(by_name, pdb__col_text(s, 0), cur)) {
            rc = PB_ENOMEM;
            goto out;
        }
    }
    sqlite3_reset(s);
    if (src != SQLITE_DONE) {
        rc = pdb__err(db, src);
        goto out;
    }
    /* Current tasks are the live leases, not what the worker last said. */
    s = pdb__st(db, PDB_ST_WORKERS_LEASES);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = pdb__col_text(s, 0);
        json_t *cur = name ? json_object_get(by_name, name) : NULL;
        if (cur && json_array_append_new(cur, json_integer(sqlite3_column_int64(s, 1)))) {
            rc = PB_ENOMEM;
            goto out;
        }
    }
    if (src != SQLITE_DONE) {
        rc = pdb__err(db, src);
        goto out;
    }
    res = json_pack("{s:O}", "workers", arr);
    if (res == NULL)
        rc = PB_ENOMEM;
out:
    sqlite3_reset(s);
    json_decref(arr);
    json_decref(by_name);
    if (rc == 0)
        *out = res;
    return rc;
}

int pdb_workers_reset(pdb_t *db) { return pdb__run(db, pdb__st(db, PDB_ST_WORKERS_RESET)); }

/* ---- schedules ---- */

/* next_fire <= 0 means "not planned" and is stored as NULL. */
static void bind_fire_time(sqlite3_stmt *s, int i, double t)
{
    if (t > 0)
        sqlite3_bind_double(s, i, t);
    else
        sqlite3_bind_null(s, i);
}

int pdb_schedule_insert(pdb_t *db, const char *name, const char *cron, const json_t *tmpl,
                        int enabled, double next_fire, int64_t *id)
{
    int rc;
    char *text = NULL;

    if (id)
        *id = 0;
    if (name == NULL || cron == NULL || tmpl == NULL)
        return PB_EINVAL;
    text = json_dumps(tmpl, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return PB_ENOMEM;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_SCHED_INSERT);
    pdb__bind_text(s, 1, name);
    pdb__bind_text(s, 2, cron);
    pdb__bind_text(s, 3, text);
    sqlite3_bind_int(s, 4, enabled ? 1 : 0);
    sqlite3_bind_double(s, 5, pb_wall_time());
    bind_fire_time(s, 6, next_fire);
    rc = pdb__run(db, s);
    if (rc == 0 && id)
        *id = sqlite3_last_insert_rowid(db->db);
    free(text);
    return rc;
}

static json_t *schedule_row(sqlite3_stmt *s)
{
    char t1[32], t2[32], t3[32];
    json_t *detect = pdb__col_json(s, 10);
    return json_pack("{s:I, s:s, s:s, s:o?, s:b, s:s?, s:s?, s:s?, s:o?, s:s?, s:o}", "id",
                     (json_int_t)sqlite3_column_int64(s, 0), "name", pdb__col_text(s, 1), "cron",
                     pdb__col_text(s, 2), "template", pdb__col_json(s, 3), "enabled",
                     sqlite3_column_int(s, 4), "created_at", pdb__col_iso(s, 5, t1),
                     "last_fired_at", pdb__col_iso(s, 6, t2), "next_fire_at",
                     pdb__col_iso(s, 7, t3), "last_job_id", pdb__col_int(s, 8), "webhook",
                     pdb__col_text(s, 9), "detect", detect ? detect : json_object());
}

static json_t *schedule_row_fn(sqlite3_stmt *s, void *ctx)
{
    (void)ctx;
    return schedule_row(s);
}

int pdb_schedules_list(pdb_t *db, json_t **out)
{
    json_t *arr = NULL;
    int rc = pdb__collect(db, pdb__st(db, PDB_ST_SCHED_LIST), schedule_row_fn, NULL, &arr);
    if (rc)
        return rc;
    *out = json_pack("{s:o}", "schedules", arr);
    return *out ? 0 : PB_ENOMEM;
}

int pdb_schedule_get(pdb_t *db, int64_t id, json_t **out)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_SCHED_GET);
    sqlite3_bind_int64(s, 1, id);
    return pdb__one(db, s, schedule_row_fn, NULL, out);
}

/* Run a single-row UPDATE; PB_ENOTFOUND when it matched nothing. */
static int update_one(pdb_t *db, sqlite3_stmt *s)
{
    int rc = pdb__run(db, s);
    if (rc == 0 && sqlite3_changes(db->db) == 0)
        rc = PB_ENOTFOUND;
    return rc;
}

int pdb_schedule_set_enabled(pdb_t *db, int64_t id, int enabled, double next_fire)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_SCHED_ENABLE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, enabled ? 1 : 0);
    bind_fire_time(s, 3, next_fire);
    return update_one(db, s);
}

static json_t *due_row(sqlite3_stmt *s, void *ctx)
{
    (void)ctx;
    return json_pack("{s:I, s:s, s:s, s:o?, s:f}", "id", (json_int_t)sqlite3_column_int64(s, 0),
                     "name", pdb__col_text(s, 1), "cron", pdb__col_text(s, 2), "template",
                     pdb__col_json(s, 3), "next_fire_at", sqlite3_column_double(s, 4));
}

int pdb_schedules_due(pdb_t *db, double now, json_t **out)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_SCHED_DUE);
    sqlite3_bind_double(s, 1, now);
    return pdb__collect(db, s, due_row, NULL, out);
}

int pdb_schedule_fired(pdb_t *db, int64_t id, double fired_at, int64_t job_id, double next_fire)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_SCHED_FIRED);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_double(s, 2, fired_at);
    if (job_id > 0)
        sqlite3_bind_int64(s, 3, job_id);
    else
        sqlite3_bind_null(s, 3); /* firing failed: no job to point at */
    bind_fire_time(s, 4, next_fire);
    return update_one(db, s);
}

/* ---- metrics ---- */

int pdb_stats(pdb_t *db, json_t **out)
{
    int rc = 0;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_STATS);

    *out = NULL;
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        /* The stats row: job counts by state, then task counts (PDB_TS_*
         * order), then stored items. Done tasks are the recorded results. */
        json_t *tasks = pdb__col_task_counts(s, 5);
        if (tasks)
            *out = json_pack("{s:o, s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:I}", "tasks", tasks,
                             "jobs", "queued", (json_int_t)sqlite3_column_int64(s, 0), "running",
                             (json_int_t)sqlite3_column_int64(s, 1), "done",
                             (json_int_t)sqlite3_column_int64(s, 2), "failed",
                             (json_int_t)sqlite3_column_int64(s, 3), "cancelled",
                             (json_int_t)sqlite3_column_int64(s, 4), "items_total",
                             (json_int_t)sqlite3_column_int64(s, 10), "results_total",
                             (json_int_t)sqlite3_column_int64(s, 5 + PDB_TS_DONE));
        rc = *out ? 0 : PB_ENOMEM;
    } else {
        /* Migration 2 wrote the row; a missing one is a damaged database. */
        rc = src == SQLITE_DONE ? PB_EDB : pdb__err(db, src);
    }
    sqlite3_reset(s);
    return rc;
}
