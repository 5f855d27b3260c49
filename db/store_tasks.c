/* Tasks in the store, the scheduler's side: listing queued work, leasing,
 * renewing, recording a RESULT exactly once (the guarded UPDATE plus the
 * items and breakdown groups in one savepoint), releasing a lost or failed
 * lease, and startup recovery. These run on the coordinator's hot path: a
 * guarded UPDATE, one SELECT by rowid and counter UPDATEs by primary key per
 * lease or result, items inserted with borrowed text, no re-encoding. Every
 * state change here moves the job's counters (pdb__tally) in the same
 * savepoint. */
#include "db/store_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/items.h"
#include "common/util.h"

static int is_live_job(const char *state)
{
    return state && (strcmp(state, "queued") == 0 || strcmp(state, "running") == 0);
}

int pdb_tasks_queued(pdb_t *db, int64_t job_id, int (*fn)(void *ctx, const pdb_task_ref_t *t),
                     void *ctx)
{
    int rc = 0, src;
    sqlite3_stmt *s = pdb__st(db, job_id ? PDB_ST_TASKS_QUEUED_JOB : PDB_ST_TASKS_QUEUED_ALL);

    if (job_id)
        sqlite3_bind_int64(s, 1, job_id);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        pdb_task_ref_t t;
        const char *device = pdb__col_text(s, 3), *backend = pdb__col_text(s, 4);
        t.task_id = sqlite3_column_int64(s, 0);
        t.job_id = sqlite3_column_int64(s, 1);
        t.priority = sqlite3_column_int(s, 2);
        snprintf(t.device, sizeof t.device, "%s", device ? device : "any");
        snprintf(t.backend, sizeof t.backend, "%s", backend ? backend : "");
        t.items = sqlite3_column_int64(s, 5);
        t.timeout_s = sqlite3_column_int(s, 6);
        rc = fn(ctx, &t);
        if (rc)
            break;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = pdb__err(db, src);
    sqlite3_reset(s);
    return rc;
}

/* ---- lease ---- */

/* The shared part of the TASK body for (job, run), from the cache or built
 * and cached; a borrowed reference. */
static int lease_template(pdb_t *db, int64_t job_id, int64_t run, json_t **out)
{
    pdb_lease_tmpl_t *slot = &db->lease_cache[(uint64_t)(job_id * 31 + run) % PDB_LEASE_CACHE];
    *out = NULL;
    if (slot->body && slot->job_id == job_id && slot->run == run) {
        *out = slot->body;
        return 0;
    }
    sqlite3_stmt *s = pdb__st(db, PDB_ST_LEASE_TEMPLATE);
    sqlite3_bind_int64(s, 1, job_id);
    sqlite3_bind_int64(s, 2, run);
    int src = sqlite3_step(s);
    json_t *body = NULL;
    if (src == SQLITE_ROW)
        body = json_pack("{s:I, s:I, s:s, s:s, s:o?, s:I, s:o?, s:i, s:i}", "job_id",
                         (json_int_t)job_id, "run", (json_int_t)run, "suite", pdb__col_text(s, 0),
                         "task", pdb__col_text(s, 1), "params", pdb__col_json(s, 2), "seed",
                         (json_int_t)sqlite3_column_int64(s, 4), "model", pdb__col_json(s, 6),
                         "timeout_s", sqlite3_column_int(s, 5), "version",
                         sqlite3_column_int(s, 3));
    /* A dataset run's items come from the dataset (worker/datasets.h). */
    if (body && src == SQLITE_ROW && pdb__col_text(s, 7) &&
        json_object_set_new(body, "dataset", json_string(pdb__col_text(s, 7)))) {
        json_decref(body);
        body = NULL;
    }
    sqlite3_reset(s);
    if (src != SQLITE_ROW) /* SQLITE_DONE: the schema's foreign keys make it impossible */
        return src == SQLITE_DONE ? PB_EDB : pdb__err(db, src);
    if (body == NULL)
        return PB_ENOMEM;
    json_decref(slot->body);
    slot->job_id = job_id;
    slot->run = run;
    slot->body = body;
    *out = body;
    return 0;
}

/* The TASK body for a task just leased: a shallow copy of its run's template
 * plus the task's own fields. Starts the job if it was queued. */
static int lease_body(pdb_t *db, int64_t task_id, double now, json_t **task)
{
    int rc = 0, start = 0;
    int64_t row[6]; /* job_id, run_idx, bucket, item_lo, item_hi, attempt */
    json_t *tmpl = NULL, *body = NULL;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_TASK_LEASE_ROW);

    sqlite3_bind_int64(s, 1, task_id);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const char *jstate = pdb__col_text(s, 6);
        for (int i = 0; i < 6; i++)
            row[i] = sqlite3_column_int64(s, i);
        if (!is_live_job(jstate))
            rc = PB_ESTATE; /* the job ended while this task sat in the queue */
        start = jstate && strcmp(jstate, "queued") == 0;
    } else {
        rc = pdb__err(db, src);
    }
    sqlite3_reset(s);
    if (rc == 0)
        rc = pdb__tally(db, row[0], PDB_TS_QUEUED, PDB_TS_LEASED, 1, 0);
    if (rc == 0)
        rc = lease_template(db, row[0], row[1], &tmpl);
    if (rc)
        return rc;
    body = json_copy(tmpl);
    if (body == NULL || json_object_set_new(body, "task_id", json_integer(task_id)) ||
        json_object_set_new(body, "attempt", json_integer(row[5])) ||
        json_object_set_new(body, "bucket", json_integer(row[2])) ||
        json_object_set_new(body, "item_lo", json_integer(row[3])) ||
        json_object_set_new(body, "item_hi", json_integer(row[4]))) {
        json_decref(body);
        return PB_ENOMEM;
    }
    if (start) {
        s = pdb__st(db, PDB_ST_JOB_START);
        sqlite3_bind_int64(s, 1, row[0]);
        sqlite3_bind_double(s, 2, now);
        rc = pdb__run(db, s);
    }
    if (rc)
        json_decref(body);
    else
        *task = body;
    return rc;
}

int pdb_task_lease(pdb_t *db, int64_t task_id, const char *worker, double lease_deadline,
                   json_t **task)
{
    int rc;
    double now = pb_wall_time();

    *task = NULL;
    rc = pdb__sp_begin(db);
    if (rc)
        return rc;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_TASK_LEASE);
    sqlite3_bind_int64(s, 1, task_id);
    pdb__bind_text(s, 2, worker);
    sqlite3_bind_double(s, 3, lease_deadline);
    sqlite3_bind_double(s, 4, now);
    rc = pdb__run(db, s);
    if (rc == 0 && sqlite3_changes(db->db) != 1)
        rc = PB_ESTATE;
    if (rc == 0)
        rc = lease_body(db, task_id, now, task);
    rc = pdb__sp_end(db, rc);
    if (rc) {
        json_decref(*task);
        *task = NULL;
    }
    return rc;
}

int pdb_task_renew(pdb_t *db, int64_t task_id, int attempt, double lease_deadline)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_TASK_RENEW);
    sqlite3_bind_int64(s, 1, task_id);
    sqlite3_bind_int(s, 2, attempt);
    sqlite3_bind_double(s, 3, lease_deadline);
    int rc = pdb__run(db, s);
    if (rc == 0 && sqlite3_changes(db->db) != 1)
        rc = PB_ESTALE;
    return rc;
}

/* ---- record ---- */

/* The task row TASK_RECORD returned. */
typedef struct record_task {
    int64_t task_id, job_id, run_idx, bucket, lo, hi;
} record_task_t;

/* Item fields by position (the compact array form, see common/proto.h) or
 * by name (the object form). */
enum { IT_IDX, IT_HASH, IT_PRED, IT_REF, IT_SCORE, IT_LAT, IT_TOKENS, IT_META, IT_ERROR };
static const char *const item_keys[] = {"idx",        "prompt_hash", "prediction",
                                        "reference",  "score",       "latency_us",
                                        "tokens",     "meta",        "error"};

static const json_t *item_field(const json_t *it, int pos)
{
    if (json_is_array(it))
        return json_array_get(it, (size_t)pos);
    return json_object_get(it, item_keys[pos]);
}

/* PB_EPARSE naming items[i]; formatted only on this error path. */
static int item_error(pb_err_t *err, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int item_error(pb_err_t *err, size_t i, const char *fmt, ...)
{
    char field[48], msg[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(field, sizeof field, "items[%zu]", i);
    return pb_err_set(err, PB_EPARSE, field, "%s", msg);
}

/* Inserting one task's items, whichever form they came in: each item's idx
 * must lie in [lo, hi) and come once, and there must be hi - lo of them,
 * which makes the items exactly the task's range. */
typedef struct item_ins {
    pdb_t *db;
    sqlite3_stmt *s;
    const record_task_t *t;
    unsigned char small[1024], *seen;
    size_t count;
    double score_sum;
    pb_err_t *err;
} item_ins_t;

static int ins_begin(item_ins_t *x, pdb_t *db, const record_task_t *t, pb_err_t *err)
{
    uint64_t want = (uint64_t)(t->hi - t->lo);
    x->db = db;
    x->s = pdb__st(db, PDB_ST_ITEM_INSERT);
    x->t = t;
    x->count = 0;
    x->score_sum = 0;
    x->err = err;
    x->seen = x->small;
    if (want > sizeof x->small * 8) {
        x->seen = calloc((size_t)(want + 7) / 8, 1);
        if (x->seen == NULL)
            return PB_ENOMEM;
    } else {
        memset(x->small, 0, sizeof x->small);
    }
    sqlite3_bind_int64(x->s, 1, t->job_id);
    sqlite3_bind_int64(x->s, 2, t->task_id);
    sqlite3_bind_int64(x->s, 4, t->run_idx);
    sqlite3_bind_int64(x->s, 5, t->bucket);
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *s, int col, const char *v, size_t n)
{
    if (v == NULL)
        sqlite3_bind_null(s, col);
    else
        sqlite3_bind_text(s, col, v, (int)n, SQLITE_STATIC);
}

/* pb_items_fn: validate and insert one item. */
static int ins_one(void *ctx, size_t i, const pb_item_rec_t *r)
{
    item_ins_t *x = ctx;
    const record_task_t *t = x->t;
    sqlite3_stmt *s = x->s;
    if (x->count >= (size_t)(t->hi - t->lo))
        return item_error(x->err, i, "more items than task %" PRId64 " covers (%" PRId64 ")",
                          t->task_id, t->hi - t->lo);
    if (r->idx < t->lo || r->idx >= t->hi)
        return item_error(x->err, i, "idx %" PRId64 " outside the task's range %" PRId64 "..%" PRId64,
                          r->idx, t->lo, t->hi - 1);
    uint64_t bit = (uint64_t)(r->idx - t->lo);
    if (x->seen[bit / 8] & (1u << (bit % 8)))
        return item_error(x->err, i, "duplicate idx %" PRId64, r->idx);
    x->seen[bit / 8] |= (unsigned char)(1u << (bit % 8));
    sqlite3_bind_int64(s, 3, r->idx);
    bind_text_or_null(s, 6, r->prompt_hash, r->prompt_hash ? strlen(r->prompt_hash) : 0);
    bind_text_or_null(s, 7, r->prediction, r->prediction_len);
    bind_text_or_null(s, 8, r->reference, r->reference_len);
    if (r->has_score) {
        sqlite3_bind_double(s, 9, r->score);
        x->score_sum += r->score;
    } else {
        sqlite3_bind_null(s, 9);
    }
    if (r->has_latency)
        sqlite3_bind_int64(s, 10, r->latency_us);
    else
        sqlite3_bind_null(s, 10);
    if (r->has_tokens)
        sqlite3_bind_int64(s, 11, r->tokens);
    else
        sqlite3_bind_null(s, 11);
    bind_text_or_null(s, 12, r->meta, r->meta_len);
    bind_text_or_null(s, 13, r->error, r->error_len);
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    if (src != SQLITE_DONE)
        return pdb__err(x->db, src);
    x->count++;
    return 0;
}

static int ins_end(item_ins_t *x, int rc)
{
    if (rc == 0 && x->count != (size_t)(x->t->hi - x->t->lo))
        rc = pb_err_set(x->err, PB_EPARSE, "items",
                        "%zu items for task %" PRId64 ", which covers %" PRId64 " (idx %" PRId64
                        "..%" PRId64 ")",
                        x->count, x->t->task_id, x->t->hi - x->t->lo, x->t->lo, x->t->hi - 1);
    /* Drop the borrowed text pointers before the caller's memory goes away. */
    sqlite3_clear_bindings(x->s);
    if (x->seen != x->small)
        free(x->seen);
    return rc;
}

/* A text field of a JSON item: a string as is, null/absent as NULL, any
 * other value as its JSON text (in *owned, freed by the caller). */
static int json_text_field(const json_t *v, const char **out, size_t *len, char **owned)
{
    *out = NULL;
    *len = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        *out = json_string_value(v);
        *len = json_string_length(v);
        return 0;
    }
    *owned = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (*owned == NULL)
        return PB_ENOMEM;
    *out = *owned;
    *len = strlen(*owned);
    return 0;
}

static int json_num_field(const json_t *v, double *d, int64_t *i, int *has)
{
    *has = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return PB_EPARSE;
    *d = json_number_value(v);
    *i = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)*d;
    *has = 1;
    return 0;
}

/* Insert items given as a JSON array (of arrays or objects). */
static int insert_json_items(item_ins_t *x, const json_t *items)
{
    size_t i;
    const json_t *it;
    int rc = 0;
    json_array_foreach(items, i, it)
    {
        pb_item_rec_t r;
        char *owned[5] = {NULL, NULL, NULL, NULL, NULL};
        const char *hash;
        size_t hash_len;
        double d;
        memset(&r, 0, sizeof r);
        if (!json_is_object(it) && !json_is_array(it)) {
            rc = item_error(x->err, i, "not an object or array");
            break;
        }
        const json_t *idx = item_field(it, IT_IDX);
        if (!json_is_integer(idx)) {
            rc = item_error(x->err, i, "idx missing or not an integer");
            break;
        }
        r.idx = (int64_t)json_integer_value(idx);
        int64_t ignored;
        if (json_num_field(item_field(it, IT_SCORE), &r.score, &ignored, &r.has_score)) {
            rc = item_error(x->err, i, "score is not a number");
            break;
        }
        if (json_num_field(item_field(it, IT_LAT), &d, &r.latency_us, &r.has_latency) ||
            json_num_field(item_field(it, IT_TOKENS), &d, &r.tokens, &r.has_tokens)) {
            rc = item_error(x->err, i, "latency_us or tokens is not a number");
            break;
        }
        if (json_text_field(item_field(it, IT_HASH), &hash, &hash_len, &owned[0]) ||
            json_text_field(item_field(it, IT_PRED), &r.prediction, &r.prediction_len, &owned[1]) ||
            json_text_field(item_field(it, IT_REF), &r.reference, &r.reference_len, &owned[2]) ||
            json_text_field(item_field(it, IT_META), &r.meta, &r.meta_len, &owned[3]) ||
            json_text_field(item_field(it, IT_ERROR), &r.error, &r.error_len, &owned[4]))
            rc = PB_ENOMEM;
        r.prompt_hash = hash;
        if (rc == 0)
            rc = ins_one(x, i, &r);
        /* Bound SQLITE_STATIC: the next item rebinds every column and
         * ins_end clears them, so nothing reads these after the free. */
        for (int k = 0; k < 5; k++)
            free(owned[k]);
        if (rc)
            break;
    }
    return rc;
}

/* Aggregate {"n", "score_sum"}: *have = 0 when absent (computed from items). */
static int parse_aggregate(const json_t *agg, int *have, int64_t *n, double *score_sum,
                           pb_err_t *err)
{
    *have = 0;
    if (agg == NULL || json_is_null(agg))
        return 0;
    const json_t *jn = json_object_get(agg, "n"), *js = json_object_get(agg, "score_sum");
    if (!json_is_object(agg) || !json_is_integer(jn) || json_integer_value(jn) < 0 ||
        !json_is_number(js))
        return pb_err_set(err, PB_EPARSE, "aggregate",
                          "aggregate needs an integer n >= 0 and a number score_sum");
    *have = 1;
    *n = json_integer_value(jn);
    *score_sum = json_number_value(js);
    return 0;
}

#define STR_(x) #x
#define STR(x) STR_(x)

/* A group key or value: a string of at most max bytes, without NUL (the
 * results are rendered from C strings). */
static int group_text(const json_t *t, size_t max)
{
    return json_is_string(t) && json_string_length(t) <= max &&
           strlen(json_string_value(t)) == json_string_length(t);
}

/* aggregate.groups, checked whole before the savepoint opens: a malformed
 * entry refuses the result with nothing written. *groups is NULL when there
 * are none (absent, null or []). */
static int parse_groups(const json_t *agg, const json_t **groups, pb_err_t *err)
{
    char field[48];
    size_t i;
    const json_t *g = json_object_get(agg, "groups"), *e;

    *groups = NULL;
    if (g == NULL || json_is_null(g))
        return 0;
    if (!json_is_array(g))
        return pb_err_set(err, PB_EPARSE, "aggregate.groups",
                          "groups must be an array of [key, value, n, score_sum]");
    if (json_array_size(g) > PDB_MAX_GROUPS)
        return pb_err_set(err, PB_EPARSE, "aggregate.groups", "%zu groups, at most %d allowed",
                          json_array_size(g), PDB_MAX_GROUPS);
    json_array_foreach(g, i, e)
    {
        const json_t *k = json_array_get(e, 0), *v = json_array_get(e, 1);
        const json_t *n = json_array_get(e, 2), *sum = json_array_get(e, 3);
        const char *why = NULL;
        if (!json_is_array(e) || json_array_size(e) != 4)
            why = "not a [key, value, n, score_sum] array";
        else if (!group_text(k, PDB_GROUP_KEY_MAX))
            why = "key is not a string of at most " STR(PDB_GROUP_KEY_MAX) " bytes";
        else if (!group_text(v, PDB_GROUP_VALUE_MAX))
            why = "value is not a string of at most " STR(PDB_GROUP_VALUE_MAX) " bytes";
        else if (!json_is_integer(n) || json_integer_value(n) < 0)
            why = "n is not an integer >= 0";
        else if (!json_is_number(sum))
            why = "score_sum is not a number";
        if (why) {
            snprintf(field, sizeof field, "aggregate.groups[%zu]", i);
            return pb_err_set(err, PB_EPARSE, field, "%s", why);
        }
    }
    *groups = json_array_size(g) ? g : NULL;
    return 0;
}

/* Add a recorded result's groups to its (job, run, bucket) rows. */
static int add_groups(pdb_t *db, const record_task_t *t, const json_t *groups)
{
    int rc = 0;
    size_t i;
    const json_t *e;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_BREAKDOWN_ADD);

    sqlite3_bind_int64(s, 1, t->job_id);
    sqlite3_bind_int64(s, 2, t->run_idx);
    sqlite3_bind_int64(s, 3, t->bucket);
    json_array_foreach(groups, i, e)
    {
        const json_t *k = json_array_get(e, 0), *v = json_array_get(e, 1);
        sqlite3_bind_text(s, 4, json_string_value(k), (int)json_string_length(k), SQLITE_STATIC);
        sqlite3_bind_text(s, 5, json_string_value(v), (int)json_string_length(v), SQLITE_STATIC);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)json_integer_value(json_array_get(e, 2)));
        sqlite3_bind_double(s, 7, json_number_value(json_array_get(e, 3)));
        rc = pdb__run(db, s);
        if (rc)
            break;
    }
    sqlite3_clear_bindings(s); /* the borrowed key and value texts */
    return rc;
}

/* After a result with n scored items summing to score_sum: bump the job's,
 * the bucket's and the worker's counters, and end the job when no task is
 * open. */
static int after_record(pdb_t *db, const record_task_t *t, int64_t n, double score_sum,
                        double now, int *job_done)
{
    int rc = pdb__tally(db, t->job_id, PDB_TS_LEASED, PDB_TS_DONE, 1, t->hi - t->lo);
    if (rc)
        return rc;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_BUCKET_ADD_DONE);
    sqlite3_bind_int64(s, 1, t->job_id);
    sqlite3_bind_int64(s, 2, t->run_idx);
    sqlite3_bind_int64(s, 3, t->bucket);
    sqlite3_bind_int64(s, 4, t->hi - t->lo);
    sqlite3_bind_int64(s, 5, n);
    sqlite3_bind_double(s, 6, score_sum);
    rc = pdb__run(db, s);
    if (rc)
        return rc;
    s = pdb__st(db, PDB_ST_WORKER_ADD_DONE);
    sqlite3_bind_int64(s, 1, t->task_id);
    rc = pdb__run(db, s);
    if (rc)
        return rc;
    s = pdb__st(db, PDB_ST_JOB_OPEN_TASKS);
    sqlite3_bind_int64(s, 1, t->job_id);
    int src = sqlite3_step(s);
    int64_t open = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 1;
    sqlite3_reset(s);
    if (src != SQLITE_ROW)
        return pdb__err(db, src);
    if (open)
        return 0;
    /* Guarded by state: a job that failed meanwhile stays failed. */
    s = pdb__st(db, PDB_ST_JOB_FINISH);
    sqlite3_bind_int64(s, 1, t->job_id);
    pdb__bind_text(s, 2, PDB_DONE);
    sqlite3_bind_double(s, 3, now);
    sqlite3_bind_null(s, 4);
    rc = pdb__run(db, s);
    if (rc == 0)
        *job_done = sqlite3_changes(db->db) == 1;
    return rc;
}

/* Record a result whose items are a JSON array (items) or items text
 * (text, len: common/items.h). */
static int record(pdb_t *db, int64_t task_id, int attempt, const json_t *items, const char *text,
                  size_t len, const json_t *aggregate, int *job_done, int64_t *job_id,
                  pb_err_t *err)
{
    int rc, have_agg, done = 0;
    int64_t n = 0;
    const json_t *groups = NULL;
    double score_sum = 0, now = pb_wall_time();
    record_task_t t = {.task_id = task_id};
    item_ins_t ins;

    if (job_done)
        *job_done = 0;
    if (job_id)
        *job_id = 0;
    if (text == NULL && !json_is_array(items))
        return pb_err_set(err, PB_EPARSE, "items", "items must be an array");
    rc = parse_aggregate(aggregate, &have_agg, &n, &score_sum, err);
    if (rc == 0 && have_agg)
        rc = parse_groups(aggregate, &groups, err);
    if (rc)
        return rc;
    rc = pdb__sp_begin(db);
    if (rc)
        return rc;

    /* The exactly-once gate. A stale or duplicate result matches no row. */
    sqlite3_stmt *s = pdb__st(db, PDB_ST_TASK_RECORD);
    sqlite3_bind_int64(s, 1, task_id);
    sqlite3_bind_int(s, 2, attempt);
    sqlite3_bind_int64(s, 3, have_agg ? n : 0);
    sqlite3_bind_double(s, 4, score_sum);
    sqlite3_bind_double(s, 5, now);
    rc = pdb__run(db, s);
    if (rc == 0 && sqlite3_changes(db->db) != 1)
        rc = PB_ESTALE;
    if (rc)
        goto out;
    s = pdb__st(db, PDB_ST_TASK_ROW);
    sqlite3_bind_int64(s, 1, task_id);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        t.job_id = sqlite3_column_int64(s, 0);
        t.run_idx = sqlite3_column_int64(s, 1);
        t.bucket = sqlite3_column_int64(s, 2);
        t.lo = sqlite3_column_int64(s, 3);
        t.hi = sqlite3_column_int64(s, 4);
    }
    sqlite3_reset(s);
    if (src != SQLITE_ROW) {
        rc = pdb__err(db, src);
        goto out;
    }
    rc = ins_begin(&ins, db, &t, err);
    if (rc)
        goto out;
    if (text)
        rc = pb_items_scan(text, len, ins_one, &ins, err);
    else
        rc = insert_json_items(&ins, items);
    rc = ins_end(&ins, rc);
    if (rc == 0 && !have_agg) {
        n = (int64_t)ins.count;
        score_sum = ins.score_sum;
        s = pdb__st(db, PDB_ST_TASK_SET_AGG);
        sqlite3_bind_int64(s, 1, task_id);
        sqlite3_bind_int64(s, 2, n);
        sqlite3_bind_double(s, 3, score_sum);
        rc = pdb__run(db, s);
    }
    if (rc == 0)
        rc = after_record(db, &t, n, score_sum, now, &done);
    if (rc == 0 && groups)
        rc = add_groups(db, &t, groups);
    if (rc == 0 && have_agg && json_object_get(aggregate, "provenance"))
        rc = pdb__task_provenance(db, task_id, json_object_get(aggregate, "provenance"));
out:
    rc = pdb__sp_end(db, rc);
    if (rc == 0) {
        if (job_done)
            *job_done = done;
        if (job_id)
            *job_id = t.job_id;
    }
    return rc;
}

int pdb_task_record(pdb_t *db, int64_t task_id, int attempt, const json_t *items,
                    const json_t *aggregate, int *job_done, int64_t *job_id, pb_err_t *err)
{
    return record(db, task_id, attempt, items, NULL, 0, aggregate, job_done, job_id, err);
}

int pdb_task_record_text(pdb_t *db, int64_t task_id, int attempt, const char *items, size_t len,
                         const json_t *aggregate, int *job_done, int64_t *job_id, pb_err_t *err)
{
    if (items == NULL)
        return pb_err_set(err, PB_EPARSE, "items", "items text is missing");
    return record(db, task_id, attempt, NULL, items, len, aggregate, job_done, job_id, err);
}

/* ---- release, expiry, recovery ---- */

/* A leased task of job_id leaves its lease for state (PDB_TS_*). */
static int unlease(pdb_t *db, int64_t task_id, int64_t job_id, int state, const char *error)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_TASK_UNLEASE);
    sqlite3_bind_int64(s, 1, task_id);
    pdb__bind_text(s, 2, pdb__ts_name[state]);
    pdb__bind_text(s, 3, error);
    int rc = pdb__run(db, s);
    if (rc == 0)
        rc = pdb__tally(db, job_id, PDB_TS_LEASED, state, 1, 0);
    return rc;
}

/* The task ran out of attempts: it fails, its job fails with its error, and
 * the job's queued tasks are cancelled (leased ones finish or expire). */
static int fail_task(pdb_t *db, int64_t task_id, int64_t job_id, int attempt, const char *error)
{
    char msg[512];
    int rc = unlease(db, task_id, job_id, PDB_TS_FAILED, error);
    if (rc)
        return rc;
    snprintf(msg, sizeof msg, "task %" PRId64 " failed after %d attempt%s: %s", task_id, attempt,
             attempt == 1 ? "" : "s", error ? error : "unknown error");
    sqlite3_stmt *s = pdb__st(db, PDB_ST_JOB_FINISH);
    sqlite3_bind_int64(s, 1, job_id);
    pdb__bind_text(s, 2, PDB_FAILED);
    sqlite3_bind_double(s, 3, pb_wall_time());
    pdb__bind_text(s, 4, msg);
    rc = pdb__run(db, s);
    if (rc)
        return rc;
    s = pdb__st(db, PDB_ST_JOB_CANCEL_QUEUED);
    sqlite3_bind_int64(s, 1, job_id);
    rc = pdb__run(db, s);
    if (rc == 0)
        rc = pdb__tally(db, job_id, PDB_TS_QUEUED, PDB_TS_CANCELLED, sqlite3_changes64(db->db), 0);
    return rc;
}

int pdb_task_release(pdb_t *db, int64_t task_id, int attempt, const char *error, int retryable,
                     int *requeued)
{
    int rc, again = 0, max_attempts = 0;
    int64_t job_id = 0;
    char jstate[16] = "";

    if (requeued)
        *requeued = 0;
    rc = pdb__sp_begin(db);
    if (rc)
        return rc;
    sqlite3_stmt *s = pdb__st(db, PDB_ST_TASK_RELEASE_INFO);
    sqlite3_bind_int64(s, 1, task_id);
    sqlite3_bind_int(s, 2, attempt);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        job_id = sqlite3_column_int64(s, 0);
        max_attempts = sqlite3_column_int(s, 1);
        snprintf(jstate, sizeof jstate, "%s", pdb__col_text(s, 2) ? pdb__col_text(s, 2) : "");
    }
    sqlite3_reset(s);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? PB_ESTALE : pdb__err(db, src);
        goto out;
    }
    if (!is_live_job(jstate)) {
        /* Its job already failed or was cancelled: nothing will run it again. */
        rc = unlease(db, task_id, job_id, PDB_TS_CANCELLED, error);
    } else if (retryable && attempt < max_attempts) {
        rc = unlease(db, task_id, job_id, PDB_TS_QUEUED, error);
        again = rc == 0;
    } else {
        rc = fail_task(db, task_id, job_id, attempt, error);
    }
out:
    rc = pdb__sp_end(db, rc);
    if (rc == 0 && requeued)
        *requeued = again;
    return rc;
}

static json_t *expired_row(sqlite3_stmt *s, void *ctx)
{
    (void)ctx;
    return json_pack("{s:I, s:i, s:s?}", "task_id", (json_int_t)sqlite3_column_int64(s, 0),
                     "attempt", sqlite3_column_int(s, 1), "worker", pdb__col_text(s, 2));
}

int pdb_tasks_expired(pdb_t *db, double now, json_t **out)
{
    sqlite3_stmt *s = pdb__st(db, PDB_ST_TASKS_EXPIRED);
    sqlite3_bind_double(s, 1, now);
    return pdb__collect(db, s, expired_row, NULL, out);
}

int pdb_recover(pdb_t *db, int *n)
{
    int changed = 0;

    if (n)
        *n = 0;
    int rc = pdb__sp_begin(db);
    if (rc)
        return rc;
    rc = pdb__run(db, pdb__st(db, PDB_ST_JOBS_RECOVER));
    if (rc == 0)
        rc = pdb__run(db, pdb__st(db, PDB_ST_TASKS_RECOVER));
    if (rc == 0) {
        changed = sqlite3_changes(db->db);
        rc = pdb__tally(db, 0, PDB_TS_LEASED, PDB_TS_QUEUED, changed, 0);
    }
    rc = pdb__sp_end(db, rc);
    if (rc == 0 && n)
        *n = changed;
    return rc;
}
