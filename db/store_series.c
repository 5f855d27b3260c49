/* Provenance and series in the store (issue 7): each result's testbed and
 * context stored once by content hash and pointed at by its task; done jobs
 * become points on series that the detector (coordinator/detect.c) reads.
 * The per-result provenance path uses the prepared statements of
 * store_sql.h; the rest runs once per job or per API call and prepares its
 * statements per call. */
#include "db/store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "common/util.h"
#include "suites/suite.h"

#define PROV_MAX 16384 /* bytes of one testbed or context object */

/* ---- provenance (inside a result's savepoint) ---- */

/* A short human name for a testbed: "CPU model, N threads[, GPU]". */
static void testbed_name(const json_t *tb, char *out, size_t n)
{
    const char *cpu = json_string_value(json_object_get(tb, "cpu_model"));
    const char *gpu = json_string_value(json_object_get(tb, "gpu_model"));
    json_int_t threads = json_integer_value(json_object_get(tb, "threads"));
    snprintf(out, n, "%.120s, %lld threads%s%.80s", cpu && cpu[0] ? cpu : "unknown CPU",
             (long long)threads, gpu && gpu[0] ? ", " : "", gpu ? gpu : "");
}

/* The id of obj in testbeds (which = 0) or contexts (1), inserted when new. */
static int prov_id(pdb_t *db, int which, const json_t *obj, int64_t *id)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return PB_ENOMEM;
    int rc = 0;
    size_t len = strlen(text);
    if (len > PROV_MAX) {
        rc = PB_EPARSE;
        goto out;
    }
    char hash[PB_SHA256_HEX];
    pb_sha256_hex(text, len, hash);
    for (int i = 0; i < PDB_PROV_CACHE; i++)
        if (db->prov_cache[which][i].id && strcmp(db->prov_cache[which][i].hash, hash) == 0) {
            *id = db->prov_cache[which][i].id;
            goto out;
        }
    sqlite3_stmt *s = pdb__st(db, which ? PDB_ST_CONTEXT_FIND : PDB_ST_TESTBED_FIND);
    pdb__bind_text(s, 1, hash);
    int src = sqlite3_step(s);
    *id = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = pdb__err(db, src);
        goto out;
    }
    if (*id == 0) {
        s = pdb__st(db, which ? PDB_ST_CONTEXT_INSERT : PDB_ST_TESTBED_INSERT);
        pdb__bind_text(s, 1, hash);
        char name[256];
        if (which) {
            pdb__bind_text(s, 2, text);
        } else {
            testbed_name(obj, name, sizeof name);
            pdb__bind_text(s, 2, name);
            pdb__bind_text(s, 3, text);
            sqlite3_bind_double(s, 4, pb_wall_time());
        }
        rc = pdb__run(db, s);
        if (rc)
            goto out;
        *id = sqlite3_last_insert_rowid(db->db);
    }
    /* Round-robin slot by the hash's first byte: cheap and good enough. */
    int slot = (int)(strtol((char[3]){hash[0], hash[1], 0}, NULL, 16) % PDB_PROV_CACHE);
    memcpy(db->prov_cache[which][slot].hash, hash, sizeof hash);
    db->prov_cache[which][slot].id = *id;
out:
    free(text);
    return rc;
}

int pdb__task_provenance(pdb_t *db, int64_t task_id, const json_t *prov)
{
    const json_t *tb = json_object_get(prov, "testbed"), *cx = json_object_get(prov, "context");
    if (!json_is_object(prov) || (tb && !json_is_object(tb)) || (cx && !json_is_object(cx)))
        return PB_EPARSE;
    int64_t tb_id = 0, cx_id = 0;
    int rc = tb ? prov_id(db, 0, tb, &tb_id) : 0;
    if (rc == 0 && cx)
        rc = prov_id(db, 1, cx, &cx_id);
    if (rc)
        return rc;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_TASK_SET_PROV);
    sqlite3_bind_int64(s, 1, task_id);
    if (tb_id)
        sqlite3_bind_int64(s, 2, tb_id);
    else
        sqlite3_bind_null(s, 2);
    if (cx_id)
        sqlite3_bind_int64(s, 3, cx_id);
    else
        sqlite3_bind_null(s, 3);
    return pdb__run(db, s);
}

/* ---- helpers for statements prepared per call (store_int.h) ---- */

int pdb__prep(pdb_t *db, const char *sql, sqlite3_stmt **s)
{
    int src = sqlite3_prepare_v2(db->db, sql, -1, s, NULL);
    return src == SQLITE_OK ? 0 : pdb__err(db, src);
}

int pdb__list_by_id(pdb_t *db, const char *sql, int64_t id, pdb_row_fn row, json_t **out)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    int rc = pdb__prep(db, sql, &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    rc = pdb__collect(db, s, row, NULL, out);
    sqlite3_finalize(s);
    return rc;
}

int pdb__run_once(pdb_t *db, sqlite3_stmt *s)
{
    int src = sqlite3_step(s);
    int rc = src == SQLITE_DONE ? 0 : pdb__err(db, src);
    sqlite3_finalize(s);
    return rc;
}

void pdb__bind_real(sqlite3_stmt *s, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

double pdb__col_real(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL ? NAN : sqlite3_column_double(s, col);
}

json_t *pdb__real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

void pdb__bind_id(sqlite3_stmt *s, int i, int64_t v)
{
    if (v > 0)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

const char *pdb_kind_name(int kind)
{
    switch (kind) {
    case PS_KIND_LOWER:
        return "lower";
    case PS_KIND_HIGHER:
        return "higher";
    case PS_KIND_INFO:
        return "info";
    default:
        return "proportion";
    }
}

/* ---- series and points ---- */

int pdb_series_upsert(pdb_t *db, const pdb_series_key_t *k, double now, int64_t *id)
{
    char keytext[2048], hash[PB_SHA256_HEX];
    /* Unit-separator joins: no field can forge another's boundary. */
    int len = snprintf(keytext, sizeof keytext, "%lld\x1f%s\x1f%s\x1f%s\x1f%s\x1f%lld\x1f%s\x1f%lld",
                       (long long)k->schedule_id, k->schedule_id ? "" : k->model, k->suite, k->task,
                       k->params, (long long)k->bucket, k->metric, (long long)k->testbed_id);
    if (len < 0 || (size_t)len >= sizeof keytext)
        return PB_ETOOBIG;
    pb_sha256_hex(keytext, (size_t)len, hash);
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db,
                  "INSERT INTO series(key_hash, schedule_id, model, suite, task, params, bucket, "
                  "metric, kind, unit, testbed_id, updated_at) VALUES "
                  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT(key_hash) "
                  "DO UPDATE SET updated_at = excluded.updated_at, model = excluded.model, "
                  "unit = coalesce(excluded.unit, unit) RETURNING id",
                  &s);
    if (rc)
        return rc;
    pdb__bind_text(s, 1, hash);
    pdb__bind_id(s, 2, k->schedule_id);
    pdb__bind_text(s, 3, k->model);
    pdb__bind_text(s, 4, k->suite);
    pdb__bind_text(s, 5, k->task);
    pdb__bind_text(s, 6, k->params);
    sqlite3_bind_int64(s, 7, k->bucket);
    pdb__bind_text(s, 8, k->metric);
    sqlite3_bind_int(s, 9, k->kind);
    pdb__bind_text(s, 10, k->unit);
    sqlite3_bind_int64(s, 11, k->testbed_id);
    sqlite3_bind_double(s, 12, now);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    else
        rc = pdb__err(db, src);
    sqlite3_finalize(s);
    return rc;
}

int pdb_point_insert(pdb_t *db, const pdb_point_t *p)
{
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db,
                  "INSERT INTO points(series_id, job_id, run_idx, t, value, n, lower, upper, "
                  "baseline, limit_lo, limit_hi, context_id) VALUES "
                  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                  &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, p->series_id);
    sqlite3_bind_int64(s, 2, p->job_id);
    sqlite3_bind_int64(s, 3, p->run_idx);
    sqlite3_bind_double(s, 4, p->t);
    sqlite3_bind_double(s, 5, p->value);
    sqlite3_bind_double(s, 6, p->n);
    pdb__bind_real(s, 7, p->lower);
    pdb__bind_real(s, 8, p->upper);
    pdb__bind_real(s, 9, p->baseline);
    pdb__bind_real(s, 10, p->limit_lo);
    pdb__bind_real(s, 11, p->limit_hi);
    pdb__bind_id(s, 12, p->context_id);
    return pdb__run_once(db, s);
}

#define POINT_COLS \
    "series_id, job_id, run_idx, t, value, n, lower, upper, baseline, limit_lo, limit_hi, context_id"

static void point_read(sqlite3_stmt *s, pdb_point_t *p)
{
    p->series_id = sqlite3_column_int64(s, 0);
    p->job_id = sqlite3_column_int64(s, 1);
    p->run_idx = sqlite3_column_int64(s, 2);
    p->t = sqlite3_column_double(s, 3);
    p->value = sqlite3_column_double(s, 4);
    p->n = sqlite3_column_double(s, 5);
    p->lower = pdb__col_real(s, 6);
    p->upper = pdb__col_real(s, 7);
    p->baseline = pdb__col_real(s, 8);
    p->limit_lo = pdb__col_real(s, 9);
    p->limit_hi = pdb__col_real(s, 10);
    p->context_id = sqlite3_column_int64(s, 11);
}

int pdb_series_points(pdb_t *db, int64_t series_id, int64_t before_job, int64_t before_run,
                      size_t max, pdb_point_t *out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    *n = 0;
    /* Newest first under the limit, then reversed into oldest first. */
    int rc = pdb__prep(db,
                  "SELECT " POINT_COLS " FROM points WHERE series_id = ?1 AND (?2 <= 0 OR "
                  "job_id < ?2 OR (job_id = ?2 AND run_idx < ?3)) "
                  "ORDER BY job_id DESC, run_idx DESC LIMIT ?4",
                  &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, series_id);
    sqlite3_bind_int64(s, 2, before_job);
    sqlite3_bind_int64(s, 3, before_run);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)max);
    int src;
    while (*n < max && (src = sqlite3_step(s)) == SQLITE_ROW)
        point_read(s, &out[(*n)++]);
    if (*n < max && src != SQLITE_DONE)
        rc = pdb__err(db, src);
    sqlite3_finalize(s);
    for (size_t i = 0; rc == 0 && i < *n / 2; i++) {
        pdb_point_t t = out[i];
        out[i] = out[*n - 1 - i];
        out[*n - 1 - i] = t;
    }
    return rc;
}

/* ---- ingestion bookkeeping ---- */

int pdb_jobs_to_ingest(pdb_t *db, size_t max, int64_t *ids, int *history, size_t *n)
{
    sqlite3_stmt *s = NULL;
    *n = 0;
    int rc = pdb__prep(db,
                  "SELECT id, ingested FROM jobs WHERE state = 'done' AND ingested <> 1 "
                  "ORDER BY id LIMIT ?1",
                  &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)max);
    int src;
    while (*n < max && (src = sqlite3_step(s)) == SQLITE_ROW) {
        ids[*n] = sqlite3_column_int64(s, 0);
        history[*n] = sqlite3_column_int(s, 1) < 0;
        (*n)++;
    }
    if (*n < max && src != SQLITE_DONE)
        rc = pdb__err(db, src);
    sqlite3_finalize(s);
    return rc;
}

int pdb_job_set_ingested(pdb_t *db, int64_t job_id)
{
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db, "UPDATE jobs SET ingested = 1 WHERE id = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, job_id);
    return pdb__run_once(db, s);
}

int pdb_job_brief(pdb_t *db, int64_t job_id, int64_t *schedule_id, double *finished_at,
                  char *name, size_t n)
{
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db,
                       "SELECT j.schedule_id, coalesce(j.finished_at, j.created_at), m.name "
                       "FROM jobs j JOIN models m ON m.id = j.model_id WHERE j.id = ?1",
                       &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, job_id);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        *schedule_id = sqlite3_column_int64(s, 0);
        *finished_at = sqlite3_column_double(s, 1);
        snprintf(name, n, "%s", pdb__col_text(s, 2) ? pdb__col_text(s, 2) : "");
    } else {
        rc = src == SQLITE_DONE ? PB_ENOTFOUND : pdb__err(db, src);
    }
    sqlite3_finalize(s);
    return rc;
}

static json_t *prov_row(sqlite3_stmt *s, void *ctx)
{
    (void)ctx;
    int64_t lo = sqlite3_column_int64(s, 2), hi = sqlite3_column_int64(s, 3);
    return json_pack("{s:I, s:I, s:I, s:I}", "run", (json_int_t)sqlite3_column_int64(s, 0),
                     "bucket", (json_int_t)sqlite3_column_int64(s, 1), "testbed_id",
                     (json_int_t)(lo == hi && sqlite3_column_int64(s, 5) == 0 ? lo : 0),
                     "context_id", (json_int_t)sqlite3_column_int64(s, 4));
}

int pdb_job_provenance(pdb_t *db, int64_t job_id, json_t **out)
{
    return pdb__list_by_id(db,
                           "SELECT run_idx, bucket, coalesce(min(testbed_id), 0), "
                           "coalesce(max(testbed_id), 0), coalesce(max(context_id), 0), "
                           "sum(testbed_id IS NULL) FROM tasks WHERE job_id = ?1 AND "
                           "state = 'done' GROUP BY run_idx, bucket ORDER BY run_idx, bucket",
                           job_id, prov_row, out);
}

static json_t *run_prov_row(sqlite3_stmt *s, void *ctx)
{
    (void)ctx;
    json_t *tb = sqlite3_column_type(s, 1) == SQLITE_NULL
                     ? json_null()
                     : json_pack("{s:I, s:s?, s:o?}", "id", (json_int_t)sqlite3_column_int64(s, 1),
                                 "name", pdb__col_text(s, 2), "info", pdb__col_json(s, 3));
    json_t *cx = pdb__col_json(s, 4);
    return json_pack("{s:I, s:o, s:o}", "run", (json_int_t)sqlite3_column_int64(s, 0), "testbed",
                     tb ? tb : json_null(), "context", cx ? cx : json_null());
}

int pdb_run_provenance(pdb_t *db, int64_t job_id, json_t **out)
{
    return pdb__list_by_id(db,
                           "SELECT p.run_idx, p.testbed_id, tb.name, tb.info, c.info FROM "
                           "(SELECT DISTINCT run_idx, testbed_id, context_id FROM tasks "
                           "WHERE job_id = ?1 AND state = 'done') p "
                           "LEFT JOIN testbeds tb ON tb.id = p.testbed_id "
                           "LEFT JOIN contexts c ON c.id = p.context_id "
                           "ORDER BY p.run_idx, p.testbed_id, p.context_id",
                           job_id, run_prov_row, out);
}

int pdb_context_get(pdb_t *db, int64_t id, json_t **out)
{
    *out = NULL;
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db, "SELECT info FROM contexts WHERE id = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    if (sqlite3_step(s) == SQLITE_ROW)
        *out = pdb__col_json(s, 0);
    sqlite3_finalize(s);
    if (*out == NULL)
        *out = json_object();
    return *out ? 0 : PB_ENOMEM;
}

static json_t *id_row(sqlite3_stmt *s, void *ctx)
{
    (void)ctx;
    return json_integer(sqlite3_column_int64(s, 0));
}

int pdb_series_unscanned(pdb_t *db, int all, int limit, json_t **out)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    int rc = pdb__prep(db,
                  "SELECT id FROM series WHERE ?1 OR scanned_at IS NULL OR "
                  "scanned_at < updated_at ORDER BY id LIMIT ?2",
                  &s);
    if (rc)
        return rc;
    sqlite3_bind_int(s, 1, all ? 1 : 0);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : -1);
    rc = pdb__collect(db, s, id_row, NULL, out);
    sqlite3_finalize(s);
    return rc;
}

int pdb_series_scanned(pdb_t *db, int64_t id, double now)
{
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db, "UPDATE series SET scanned_at = ?2 WHERE id = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_double(s, 2, now);
    return pdb__run_once(db, s);
}

int pdb_series_info(pdb_t *db, int64_t id, int *kind, int64_t *schedule_id)
{
    sqlite3_stmt *s = NULL;
    int rc = pdb__prep(db, "SELECT kind, coalesce(schedule_id, 0) FROM series WHERE id = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        *kind = sqlite3_column_int(s, 0);
        *schedule_id = sqlite3_column_int64(s, 1);
    } else {
        rc = src == SQLITE_DONE ? PB_ENOTFOUND : pdb__err(db, src);
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---- reading series for the API ---- */

#define SERIES_COLS                                                                              \
    "s.id, s.schedule_id, sc.name, s.model, s.suite, s.task, s.params, s.bucket, s.metric, "    \
    "s.kind, s.unit, s.testbed_id, tb.name, "                                                    \
    "(SELECT count(*) FROM points p WHERE p.series_id = s.id), "                                 \
    "(SELECT value FROM points p WHERE p.series_id = s.id ORDER BY job_id DESC, run_idx DESC "   \
    "LIMIT 1), s.updated_at, "                                                                   \
    "(SELECT count(*) FROM regressions r WHERE r.series_id = s.id AND "                          \
    "(r.state = 'detected' OR r.state = 'acknowledged'))"
#define SERIES_FROM                                                                              \
    " FROM series s LEFT JOIN schedules sc ON sc.id = s.schedule_id "                            \
    "LEFT JOIN testbeds tb ON tb.id = s.testbed_id "

static json_t *series_row(sqlite3_stmt *s, void *ctx)
{
    char t[32];
    (void)ctx;
    json_t *testbed = json_pack("{s:I, s:s?}", "id", (json_int_t)sqlite3_column_int64(s, 11),
                                "name", sqlite3_column_int64(s, 11) ? pdb__col_text(s, 12)
                                                                    : "several testbeds");
    return json_pack("{s:I, s:o?, s:s?, s:s, s:s, s:s, s:o?, s:I, s:s, s:s, s:s?, s:o?, s:I, "
                     "s:o?, s:s?, s:I}",
                     "id", (json_int_t)sqlite3_column_int64(s, 0), "schedule_id",
                     pdb__col_int(s, 1), "schedule", pdb__col_text(s, 2), "model",
                     pdb__col_text(s, 3), "suite", pdb__col_text(s, 4), "task",
                     pdb__col_text(s, 5), "params", pdb__col_json(s, 6), "bucket",
                     (json_int_t)sqlite3_column_int64(s, 7), "metric", pdb__col_text(s, 8),
                     "kind", pdb_kind_name(sqlite3_column_int(s, 9)), "unit",
                     pdb__col_text(s, 10), "testbed", testbed, "points",
                     (json_int_t)sqlite3_column_int64(s, 13), "last_value",
                     sqlite3_column_type(s, 14) == SQLITE_NULL ? NULL
                                                               : json_real(sqlite3_column_double(s, 14)),
                     "last_at", pdb__col_iso(s, 15, t), "open_regressions",
                     (json_int_t)sqlite3_column_int64(s, 16));
}

int pdb_series_list(pdb_t *db, const pdb_series_filter_t *f, json_t **out)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    int limit = f->limit <= 0 ? PDB_LIST_DEFAULT * 10 : f->limit;
    if (limit > PDB_LIST_MAX * 10)
        limit = PDB_LIST_MAX * 10;
    int rc = pdb__prep(db,
                  "SELECT " SERIES_COLS SERIES_FROM
                  "WHERE (?1 = 0 OR s.schedule_id = ?1) AND (?2 IS NULL OR s.model = ?2) AND "
                  "(?3 IS NULL OR s.suite = ?3) AND (?4 IS NULL OR s.task = ?4) AND "
                  "(?5 IS NULL OR s.metric = ?5) ORDER BY s.id LIMIT ?6",
                  &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, f->schedule_id);
    pdb__bind_text(s, 2, f->model && f->model[0] ? f->model : NULL);
    pdb__bind_text(s, 3, f->suite && f->suite[0] ? f->suite : NULL);
    pdb__bind_text(s, 4, f->task && f->task[0] ? f->task : NULL);
    pdb__bind_text(s, 5, f->metric && f->metric[0] ? f->metric : NULL);
    sqlite3_bind_int(s, 6, limit);
    json_t *arr = NULL;
    rc = pdb__collect(db, s, series_row, NULL, &arr);
    sqlite3_finalize(s);
    if (rc)
        return rc;
    *out = json_pack("{s:o}", "series", arr);
    return *out ? 0 : PB_ENOMEM;
}

static json_t *point_row(sqlite3_stmt *s, void *ctx)
{
    char t[32];
    (void)ctx;
    pdb_point_t p;
    point_read(s, &p);
    json_t *cx = pdb__col_json(s, 12);
    return json_pack("{s:I, s:I, s:s?, s:f, s:f, s:o, s:o, s:o, s:o, s:o, s:o}", "job_id",
                     (json_int_t)p.job_id, "run", (json_int_t)p.run_idx, "t",
                     pdb__col_iso(s, 3, t), "value", p.value, "n", p.n, "lower",
                     pdb__real_or_null(p.lower), "upper", pdb__real_or_null(p.upper), "baseline",
                     pdb__real_or_null(p.baseline), "limit_lo", pdb__real_or_null(p.limit_lo), "limit_hi",
                     pdb__real_or_null(p.limit_hi), "context", cx ? cx : json_object());
}

int pdb_series_get(pdb_t *db, int64_t id, json_t **out)
{
    sqlite3_stmt *s = NULL;
    json_t *series = NULL, *points = NULL;
    *out = NULL;
    int rc = pdb__prep(db, "SELECT " SERIES_COLS SERIES_FROM "WHERE s.id = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    rc = pdb__one(db, s, series_row, NULL, &series);
    sqlite3_finalize(s);
    if (rc)
        return rc;
    rc = pdb__list_by_id(db,
                         "SELECT p.series_id, p.job_id, p.run_idx, p.t, p.value, p.n, p.lower, "
                         "p.upper, p.baseline, p.limit_lo, p.limit_hi, p.context_id, c.info "
                         "FROM points p LEFT JOIN contexts c ON c.id = p.context_id "
                         "WHERE p.series_id = ?1 ORDER BY p.job_id, p.run_idx",
                         id, point_row, &points);
    if (rc == 0) {
        *out = json_pack("{s:o, s:o}", "series", series, "points", points);
        return *out ? 0 : PB_ENOMEM;
    }
    json_decref(series);
    return rc;
}

static json_t *testbed_row(sqlite3_stmt *s, void *ctx)
{
    char t[32];
    (void)ctx;
    return json_pack("{s:I, s:s, s:o?, s:s?}", "id", (json_int_t)sqlite3_column_int64(s, 0),
                     "name", pdb__col_text(s, 1), "info", pdb__col_json(s, 2), "first_seen",
                     pdb__col_iso(s, 3, t));
}

int pdb_testbeds_list(pdb_t *db, json_t **out)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    int rc = pdb__prep(db, "SELECT id, name, info, first_seen FROM testbeds ORDER BY id", &s);
    if (rc)
        return rc;
    json_t *arr = NULL;
    rc = pdb__collect(db, s, testbed_row, NULL, &arr);
    sqlite3_finalize(s);
    if (rc)
        return rc;
    *out = json_pack("{s:o}", "testbeds", arr);
    return *out ? 0 : PB_ENOMEM;
}
