/* Regressions, webhook deliveries and schedule edits in the store (issue 7).
 * A regression is keyed by (series, first run after the change), so stage 1
 * and the nightly change-point pass finding the same step share one record;
 * a delivery is a webhook POST kept until it succeeds or runs out of
 * attempts, so an alert is never lost silently. */
#include "db/store_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ---- schedules ---- */

int pdb_schedule_update(pdb_t *db, int64_t id, const char *cron, double next_fire,
                        const json_t *tmpl, int set_webhook, const char *webhook,
                        const json_t *detect)
{
    char *tmpl_text = tmpl ? json_dumps(tmpl, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *detect_text = detect ? json_dumps(detect, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    int rc = 0;
    if ((tmpl && tmpl_text == NULL) || (detect && detect_text == NULL)) {
        rc = PB_ENOMEM;
        goto out;
    }
    sqlite3_stmt *s = pdb__st(db, PDB_ST_SCHED_UPDATE);
    sqlite3_bind_int64(s, 1, id);
    pdb__bind_text(s, 2, cron);
    pdb__bind_text(s, 3, tmpl_text);
    sqlite3_bind_int(s, 4, set_webhook ? 1 : 0);
    pdb__bind_text(s, 5, webhook);
    pdb__bind_text(s, 6, detect_text);
    pdb__bind_real(s, 7, next_fire > 0 ? next_fire : NAN);
    rc = pdb__run(db, s);
    if (rc == 0 && sqlite3_changes(db->db) == 0)
        rc = PB_ENOTFOUND;
out:
    free(tmpl_text);
    free(detect_text);
    return rc;
}

/* ---- regressions ---- */

int pdb_regression_upsert(pdb_t *db, const pdb_regression_t *r, double now, int64_t *id,
                          int *created)
{
    char *changes = r->changes ? json_dumps(r->changes, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (r->changes && changes == NULL)
        return PB_ENOMEM;
    sqlite3_stmt *s = NULL;
    /* created_at = updated_at only on insert: the RETURNING row tells. */
    int rc = pdb__prep(db,
                       "INSERT INTO regressions(series_id, detector, detector_version, "
                       "job_before, job_after, value_before, value_after, change, p_value, "
                       "ci_lo, ci_hi, changes, created_at, updated_at) VALUES "
                       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13) "
                       "ON CONFLICT(series_id, job_after) DO UPDATE SET "
                       "detector = excluded.detector, detector_version = excluded.detector_version, "
                       "job_before = coalesce(excluded.job_before, job_before), "
                       "value_before = excluded.value_before, value_after = excluded.value_after, "
                       "change = excluded.change, p_value = excluded.p_value, "
                       "ci_lo = excluded.ci_lo, ci_hi = excluded.ci_hi, "
                       "changes = coalesce(excluded.changes, changes), "
                       "updated_at = excluded.updated_at "
                       "RETURNING id, created_at = updated_at",
                       &s);
    if (rc)
        goto out;
    sqlite3_bind_int64(s, 1, r->series_id);
    pdb__bind_text(s, 2, r->detector);
    sqlite3_bind_int(s, 3, r->detector_version);
    pdb__bind_id(s, 4, r->job_before);
    sqlite3_bind_int64(s, 5, r->job_after);
    pdb__bind_real(s, 6, r->value_before);
    pdb__bind_real(s, 7, r->value_after);
    pdb__bind_real(s, 8, r->change);
    pdb__bind_real(s, 9, r->p_value);
    pdb__bind_real(s, 10, r->ci_lo);
    pdb__bind_real(s, 11, r->ci_hi);
    pdb__bind_text(s, 12, changes);
    sqlite3_bind_double(s, 13, now);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        /* An update in the same second as the insert would read as
         * "created"; callers upsert a given record once per pass. */
        *created = sqlite3_column_int(s, 1);
    } else {
        rc = pdb__err(db, src);
    }
    sqlite3_finalize(s);
out:
    free(changes);
    return rc;
}

#define REG_COLS                                                                                 \
    "r.id, r.state, s.schedule_id, sc.name, r.series_id, s.model, s.suite, s.task, s.params, "  \
    "s.bucket, s.metric, s.kind, s.testbed_id, tb.name, r.detector, r.detector_version, "        \
    "r.job_before, r.job_after, r.value_before, r.value_after, r.change, r.p_value, r.ci_lo, "   \
    "r.ci_hi, r.changes, r.note, r.created_at, r.updated_at, s.unit"
#define REG_FROM                                                                                 \
    " FROM regressions r JOIN series s ON s.id = r.series_id "                                   \
    "LEFT JOIN schedules sc ON sc.id = s.schedule_id LEFT JOIN testbeds tb ON tb.id = s.testbed_id "

static json_t *reg_row(sqlite3_stmt *s, void *ctx)
{
    char t1[32], t2[32];
    (void)ctx;
    double lo = pdb__col_real(s, 22), hi = pdb__col_real(s, 23);
    json_t *ci = isfinite(lo) && isfinite(hi) ? json_pack("[f, f]", lo, hi) : json_null();
    json_t *series = json_pack(
        "{s:s, s:s, s:s, s:o?, s:I, s:s, s:s, s:s?, s:{s:I, s:s?}}", "model", pdb__col_text(s, 5),
        "suite", pdb__col_text(s, 6), "task", pdb__col_text(s, 7), "params", pdb__col_json(s, 8),
        "bucket", (json_int_t)sqlite3_column_int64(s, 9), "metric", pdb__col_text(s, 10), "kind",
        pdb_kind_name(sqlite3_column_int(s, 11)), "unit", pdb__col_text(s, 28), "testbed", "id",
        (json_int_t)sqlite3_column_int64(s, 12), "name",
        sqlite3_column_int64(s, 12) ? pdb__col_text(s, 13) : "several testbeds");
    json_t *changes = pdb__col_json(s, 24);
    return json_pack("{s:I, s:s, s:o?, s:s?, s:I, s:o, s:s, s:i, s:o?, s:I, s:o, s:o, s:o, s:o, "
                     "s:o, s:o, s:s?, s:s?, s:s?}",
                     "id", (json_int_t)sqlite3_column_int64(s, 0), "state", pdb__col_text(s, 1),
                     "schedule_id", pdb__col_int(s, 2), "schedule", pdb__col_text(s, 3),
                     "series_id", (json_int_t)sqlite3_column_int64(s, 4), "series", series,
                     "detector", pdb__col_text(s, 14), "detector_version",
                     sqlite3_column_int(s, 15), "job_before", pdb__col_int(s, 16), "job_after",
                     (json_int_t)sqlite3_column_int64(s, 17), "value_before",
                     pdb__real_or_null(pdb__col_real(s, 18)), "value_after",
                     pdb__real_or_null(pdb__col_real(s, 19)), "change",
                     pdb__real_or_null(pdb__col_real(s, 20)), "p_value",
                     pdb__real_or_null(pdb__col_real(s, 21)), "ci", ci, "changes",
                     changes ? changes : json_object(), "note", pdb__col_text(s, 25),
                     "created_at", pdb__col_iso(s, 26, t1), "updated_at", pdb__col_iso(s, 27, t2));
}

/* "open" is detected or acknowledged; NULL or "" any state. */
#define STATE_MATCH                                                                              \
    "(?1 IS NULL OR r.state = ?1 OR (?1 = 'open' AND (r.state = 'detected' OR "                 \
    "r.state = 'acknowledged')))"

int pdb_regressions_list(pdb_t *db, const char *state, int64_t schedule_id, int64_t series_id,
                         int limit, json_t **out)
{
    sqlite3_stmt *s = NULL;
    json_t *arr = NULL;
    *out = NULL;
    if (limit <= 0)
        limit = PDB_LIST_DEFAULT * 4;
    if (limit > PDB_LIST_MAX)
        limit = PDB_LIST_MAX;
    int rc = pdb__prep(db,
                       "SELECT " REG_COLS REG_FROM "WHERE " STATE_MATCH
                       " AND (?2 = 0 OR s.schedule_id = ?2) AND (?3 = 0 OR r.series_id = ?3) "
                       "ORDER BY r.id DESC LIMIT ?4",
                       &s);
    if (rc)
        return rc;
    pdb__bind_text(s, 1, state && state[0] ? state : NULL);
    sqlite3_bind_int64(s, 2, schedule_id);
    sqlite3_bind_int64(s, 3, series_id);
    sqlite3_bind_int(s, 4, limit);
    rc = pdb__collect(db, s, reg_row, NULL, &arr);
    sqlite3_finalize(s);
    if (rc)
        return rc;
    /* Unacknowledged counts every match, not just this page. */
    rc = pdb__prep(db,
                   "SELECT count(*) FROM regressions r JOIN series s ON s.id = r.series_id "
                   "WHERE r.state = 'detected' AND (?1 = 0 OR s.schedule_id = ?1) AND "
                   "(?2 = 0 OR r.series_id = ?2)",
                   &s);
    int64_t unacked = 0;
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, schedule_id);
        sqlite3_bind_int64(s, 2, series_id);
        int src = sqlite3_step(s);
        if (src == SQLITE_ROW)
            unacked = sqlite3_column_int64(s, 0);
        else
            rc = pdb__err(db, src);
        sqlite3_finalize(s);
    }
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o, s:I}", "regressions", arr, "unacknowledged", (json_int_t)unacked);
    return *out ? 0 : PB_ENOMEM;
}

int pdb_regression_get(pdb_t *db, int64_t id, json_t **out)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    int rc = pdb__prep(db, "SELECT " REG_COLS REG_FROM "WHERE r.id = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    rc = pdb__one(db, s, reg_row, NULL, out);
    sqlite3_finalize(s);
    return rc;
}

int pdb_regression_set_state(pdb_t *db, int64_t id, const char *state, const char *note,
                             double now)
{
    static const char *const states[] = {"detected", "acknowledged", "fixed", "ignored"};
    int ok = 0;
    for (size_t i = 0; state && i < PB_ARRAY_LEN(states); i++)
        ok |= strcmp(state, states[i]) == 0;
    if (!ok)
        return PB_EINVAL;
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db,
                       "UPDATE regressions SET state = ?2, note = coalesce(?3, note), "
                       "updated_at = ?4 WHERE id = ?1",
                       &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    pdb__bind_text(s, 2, state);
    pdb__bind_text(s, 3, note);
    sqlite3_bind_double(s, 4, now);
    int src = sqlite3_step(s);
    rc = src == SQLITE_DONE ? (sqlite3_changes(db->db) ? 0 : PB_ENOTFOUND) : pdb__err(db, src);
    sqlite3_finalize(s);
    return rc;
}

/* ---- webhook deliveries ---- */

int pdb_delivery_insert(pdb_t *db, int64_t schedule_id, int64_t job_id, const char *url,
                        const char *body, double now, int64_t *id)
{
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db,
                       "INSERT INTO deliveries(schedule_id, job_id, url, body, next_at, "
                       "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                       &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, schedule_id);
    pdb__bind_id(s, 2, job_id);
    pdb__bind_text(s, 3, url);
    pdb__bind_text(s, 4, body);
    sqlite3_bind_double(s, 5, now);
    rc = pdb__run_once(db, s);
    if (rc == 0 && id)
        *id = sqlite3_last_insert_rowid(db->db);
    return rc;
}

static json_t *due_delivery_row(sqlite3_stmt *s, void *ctx)
{
    (void)ctx;
    return json_pack("{s:I, s:s, s:s, s:i}", "id", (json_int_t)sqlite3_column_int64(s, 0), "url",
                     pdb__col_text(s, 1), "body", pdb__col_text(s, 2), "attempts",
                     sqlite3_column_int(s, 3));
}

int pdb_deliveries_due(pdb_t *db, double now, int limit, json_t **out)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    int rc = pdb__prep(db,
                       "SELECT id, url, body, attempts FROM deliveries WHERE state = 'pending' "
                       "AND next_at <= ?1 ORDER BY next_at, id LIMIT ?2",
                       &s);
    if (rc)
        return rc;
    sqlite3_bind_double(s, 1, now);
    sqlite3_bind_int(s, 2, limit);
    rc = pdb__collect(db, s, due_delivery_row, NULL, out);
    sqlite3_finalize(s);
    return rc;
}

int pdb_delivery_attempted(pdb_t *db, int64_t id, const char *state, int status,
                           const char *error, double next_at, double now)
{
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db,
                       "UPDATE deliveries SET state = ?2, attempts = attempts + 1, "
                       "last_status = ?3, last_error = ?4, next_at = ?5, "
                       "delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 END WHERE id = ?1",
                       &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    pdb__bind_text(s, 2, state);
    pdb__bind_id(s, 3, status);
    pdb__bind_text(s, 4, error);
    sqlite3_bind_double(s, 5, next_at);
    sqlite3_bind_double(s, 6, now);
    return pdb__run_once(db, s);
}

static json_t *delivery_row(sqlite3_stmt *s, void *ctx)
{
    char t1[32], t2[32];
    (void)ctx;
    return json_pack("{s:I, s:I, s:o?, s:s, s:s, s:i, s:o?, s:s?, s:s?, s:s?}", "id",
                     (json_int_t)sqlite3_column_int64(s, 0), "schedule_id",
                     (json_int_t)sqlite3_column_int64(s, 1), "job_id", pdb__col_int(s, 2), "url",
                     pdb__col_text(s, 3), "state", pdb__col_text(s, 4), "attempts",
                     sqlite3_column_int(s, 5), "last_status", pdb__col_int(s, 6), "last_error",
                     pdb__col_text(s, 7), "created_at", pdb__col_iso(s, 8, t1), "delivered_at",
                     pdb__col_iso(s, 9, t2));
}

int pdb_deliveries_list(pdb_t *db, int64_t schedule_id, int limit, json_t **out)
{
    sqlite3_stmt *s = NULL;
    json_t *arr = NULL;
    *out = NULL;
    if (limit <= 0 || limit > PDB_LIST_MAX)
        limit = PDB_LIST_DEFAULT * 4;
    int rc = pdb__prep(db,
                       "SELECT id, schedule_id, job_id, url, state, attempts, last_status, "
                       "last_error, created_at, delivered_at FROM deliveries "
                       "WHERE ?1 = 0 OR schedule_id = ?1 ORDER BY id DESC LIMIT ?2",
                       &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, schedule_id);
    sqlite3_bind_int(s, 2, limit);
    rc = pdb__collect(db, s, delivery_row, NULL, &arr);
    sqlite3_finalize(s);
    if (rc)
        return rc;
    *out = json_pack("{s:o}", "deliveries", arr);
    return *out ? 0 : PB_ENOMEM;
}
