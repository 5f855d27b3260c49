/* The store's core: opening the database (pragmas, migrations by
 * PRAGMA user_version, preparing every statement once), transactions and
 * savepoints, and the helpers the other store files share. Jobs live in
 * store_jobs.c, tasks in store_tasks.c, workers/schedules/stats in
 * store_admin.c. */
#include "db/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "db/schema_sql.h"

/* Migration k (1-based) takes user_version k-1 to k. Append new steps at the
 * end; never edit one that has shipped. */
static const char *const migrations[] = {
    pdb_schema_sql,      /* 1: the initial schema */
    pdb_migration_2_sql, /* 2: per-job and per-bucket counters, the stats row */
    pdb_migration_3_sql, /* 3: per-group score sums (results breakdown) */
    pdb_migration_4_sql, /* 4: user datasets, runs.dataset */
    pdb_migration_5_sql, /* 5: provenance, series, regressions, webhook deliveries */
};
#define PDB_VERSION ((int)PB_ARRAY_LEN(migrations))

static const char *const stmt_sql[PDB_N_STMTS] = {
#define PDB_STMT_SQL(name, sql) [PDB_ST_##name] = sql,
    PDB_STMTS(PDB_STMT_SQL)
#undef PDB_STMT_SQL
};

int pdb__err(pdb_t *db, int src)
{
    if (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY)
        return PB_EEXIST;
    if (src == SQLITE_NOMEM)
        return PB_ENOMEM;
    pb_warn("store: %s (%d)", sqlite3_errmsg(db->db), src);
    return PB_EDB;
}

int pdb__run(pdb_t *db, sqlite3_stmt *s)
{
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    return src == SQLITE_DONE ? 0 : pdb__err(db, src);
}

int pdb__sp_begin(pdb_t *db)
{
    int rc = pdb__run(db, pdb__st(db, PDB_ST_SP_BEGIN));
    if (rc == 0)
        db->sp_depth++;
    return rc;
}

int pdb__sp_end(pdb_t *db, int rc)
{
    sqlite3_stmt *s;
    if (rc != 0) {
        /* Fails only when SQLite already rolled back the whole transaction
         * (I/O error, out of memory); then there is nothing left to undo. */
        s = pdb__st(db, PDB_ST_SP_ROLLBACK);
        sqlite3_step(s);
        sqlite3_reset(s);
    }
    s = pdb__st(db, PDB_ST_SP_RELEASE);
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    db->sp_depth--;
    if (src == SQLITE_DONE)
        return rc;
    if (rc == 0)
        rc = pdb__err(db, src);
    /* Releasing the outermost savepoint is a COMMIT; when that fails, the
     * transaction it started must not stay open behind the caller's back. */
    if (db->sp_depth == 0 && !db->user_tx && !sqlite3_get_autocommit(db->db)) {
        s = pdb__st(db, PDB_ST_ROLLBACK);
        sqlite3_step(s);
        sqlite3_reset(s);
        pdb__cache_clear(db);
    }
    return rc;
}

void pdb__cache_clear(pdb_t *db)
{
    for (int i = 0; i < PDB_LEASE_CACHE; i++) {
        json_decref(db->lease_cache[i].body);
        db->lease_cache[i].body = NULL;
    }
    memset(db->prov_cache, 0, sizeof db->prov_cache);
}

json_t *pdb__col_json(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    const char *text = (const char *)sqlite3_column_text(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (text == NULL)
        return NULL;
    json_t *v = json_loadb(text, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    /* Written by this store, so it parses; if not, show the raw text. */
    return v ? v : json_stringn(text, (size_t)n);
}

json_t *pdb__col_int(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    return json_integer((json_int_t)sqlite3_column_int64(s, col));
}

const char *pdb__col_iso(sqlite3_stmt *s, int col, char buf[32])
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    pb_iso8601(sqlite3_column_double(s, col), buf);
    return buf;
}

const char *pdb__col_text(sqlite3_stmt *s, int col)
{
    return (const char *)sqlite3_column_text(s, col);
}

int pdb__bind_text(sqlite3_stmt *s, int i, const char *text)
{
    if (text == NULL)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
}

const char *const pdb__ts_name[PDB_N_TS] = {PDB_QUEUED, PDB_LEASED, PDB_DONE, PDB_FAILED,
                                            PDB_CANCELLED};

int pdb__tally(pdb_t *db, int64_t job_id, int from, int to, int64_t k, int64_t items)
{
    static const int stmts[2] = {PDB_ST_JOB_TALLY, PDB_ST_STATS_TALLY};
    int64_t delta[PDB_N_TS] = {0};
    int rc = 0;

    if (k == 0 && items == 0)
        return 0;
    delta[from] -= k;
    delta[to] += k;
    /* The jobs row by id, then the stats row (id 1) by the same deltas. */
    for (int j = job_id > 0 ? 0 : 1; j < 2 && rc == 0; j++) {
        sqlite3_stmt *s = pdb__st(db, stmts[j]);
        sqlite3_bind_int64(s, 1, j == 0 ? job_id : 1);
        for (int i = 0; i < PDB_N_TS; i++)
            sqlite3_bind_int64(s, 2 + i, delta[i]);
        sqlite3_bind_int64(s, 2 + PDB_N_TS, items);
        rc = pdb__run(db, s);
    }
    return rc;
}

json_t *pdb__col_task_counts(sqlite3_stmt *s, int col)
{
    json_t *counts = json_object();
    for (int i = 0; counts && i < PDB_N_TS; i++) {
        if (json_object_set_new(counts, pdb__ts_name[i],
                                json_integer((json_int_t)sqlite3_column_int64(s, col + i)))) {
            json_decref(counts);
            counts = NULL;
        }
    }
    return counts;
}

/* ---- opening and migrating ---- */

static int read_user_version(sqlite3 *sq, int *version)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(sq, "PRAGMA user_version", -1, &s, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        *version = sqlite3_column_int(s, 0);
        src = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return src;
}

/* Refuse a database written by a newer posbench before touching it. */
static int check_version(sqlite3 *sq, pb_err_t *err)
{
    int version = 0;
    if (read_user_version(sq, &version) != SQLITE_OK)
        return pb_err_set(err, PB_EDB, "", "cannot read user_version: %s", sqlite3_errmsg(sq));
    if (version > PDB_VERSION)
        return pb_err_set(err, PB_EDB, "",
                          "database is newer than this posbench: user_version %d > %d", version,
                          PDB_VERSION);
    return 0;
}

/* Run the migrations past user_version, each in its own transaction with its
 * user_version bump, so a crash leaves a whole version. The version is read
 * again under the write lock: another process may have migrated meanwhile. */
static int migrate(sqlite3 *sq, pb_err_t *err)
{
    int first = -1; /* the version found: a new database is not "migrated" */
    for (;;) {
        int version = 0, src;
        char bump[64], *msg = NULL;
        src = sqlite3_exec(sq, "BEGIN IMMEDIATE", NULL, NULL, &msg);
        if (src == SQLITE_OK)
            src = read_user_version(sq, &version);
        if (src == SQLITE_OK && version >= PDB_VERSION) {
            sqlite3_exec(sq, "COMMIT", NULL, NULL, NULL);
            return check_version(sq, err);
        }
        if (first < 0)
            first = version;
        /* The version is a constant of this program, not data. */
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", version + 1);
        if (src == SQLITE_OK)
            src = sqlite3_exec(sq, migrations[version], NULL, NULL, &msg);
        if (src == SQLITE_OK)
            src = sqlite3_exec(sq, bump, NULL, NULL, &msg);
        if (src == SQLITE_OK)
            src = sqlite3_exec(sq, "COMMIT", NULL, NULL, &msg);
        if (src != SQLITE_OK) {
            pb_err_set(err, PB_EDB, "", "migration to version %d failed: %s", version + 1,
                       msg ? msg : sqlite3_errmsg(sq));
            sqlite3_free(msg);
            if (!sqlite3_get_autocommit(sq))
                sqlite3_exec(sq, "ROLLBACK", NULL, NULL, NULL);
            return PB_EDB;
        }
        if (first > 0)
            pb_info("store: migrated database to version %d", version + 1);
    }
}

static int set_pragmas(sqlite3 *sq, pb_err_t *err)
{
    /* WAL lets HTTP readers run beside the one writer; NORMAL syncs at
     * checkpoints only, which in WAL mode loses no committed transaction on an
     * application crash. A memory temp store keeps savepoint journals off disk. */
    static const char *const pragmas[] = {
        "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",  "PRAGMA temp_store = MEMORY",
        "PRAGMA cache_size = -32768",
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(pragmas); i++) {
        char *msg = NULL;
        if (sqlite3_exec(sq, pragmas[i], NULL, NULL, &msg) != SQLITE_OK) {
            pb_err_set(err, PB_EDB, "", "%s: %s", pragmas[i], msg ? msg : sqlite3_errmsg(sq));
            sqlite3_free(msg);
            return PB_EDB;
        }
    }
    return 0;
}

int pdb_open(const char *path, pdb_t **out, pb_err_t *err)
{
    int rc = 0;
    pdb_t *db = NULL;

    *out = NULL;
    if (path == NULL || *path == '\0')
        return pb_err_set(err, PB_EINVAL, "db", "no database path");
    db = calloc(1, sizeof *db);
    if (db == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db->db, flags, NULL) != SQLITE_OK) {
        rc = pb_err_set(err, PB_EDB, "db", "cannot open %s: %s", path,
                        db->db ? sqlite3_errmsg(db->db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(db->db, 1);
    sqlite3_busy_timeout(db->db, 5000);
    rc = check_version(db->db, err);
    if (rc == 0)
        rc = set_pragmas(db->db, err);
    if (rc)
        goto out;
    rc = migrate(db->db, err);
    if (rc)
        goto out;
    /* Checkpoints move to a thread of their own; where that cannot start,
     * SQLite keeps checkpointing inside commits as usual. */
    if (pdb__ckpt_start(path, &db->ckpt) == 0)
        sqlite3_wal_autocheckpoint(db->db, 0);
    for (int i = 0; i < PDB_N_STMTS; i++) {
        if (sqlite3_prepare_v3(db->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->st[i],
                               NULL) != SQLITE_OK) {
            rc = pb_err_set(err, PB_EDB, "", "cannot prepare statement %d: %s", i,
                            sqlite3_errmsg(db->db));
            goto out;
        }
    }
    *out = db;
    db = NULL;
out:
    pdb_close(db);
    return rc;
}

void pdb_close(pdb_t *db)
{
    if (db == NULL)
        return;
    pdb__ckpt_stop(db->ckpt);
    pdb__cache_clear(db);
    for (int i = 0; i < PDB_N_STMTS; i++)
        sqlite3_finalize(db->st[i]);
    /* An open transaction is rolled back here: nothing half-written survives. */
    sqlite3_close(db->db);
    free(db);
}

int pdb_begin(pdb_t *db)
{
    if (!sqlite3_get_autocommit(db->db))
        return PB_ESTATE;
    int rc = pdb__run(db, pdb__st(db, PDB_ST_BEGIN));
    db->user_tx = rc == 0;
    return rc;
}

/* A failed COMMIT (busy, I/O) keeps the transaction open: the caller may
 * retry pdb_commit or call pdb_rollback. */
int pdb_commit(pdb_t *db)
{
    if (!db->user_tx)
        return PB_ESTATE;
    int rc = pdb__run(db, pdb__st(db, PDB_ST_COMMIT));
    db->user_tx = !sqlite3_get_autocommit(db->db);
    if (rc)
        pdb__cache_clear(db); /* SQLite may have rolled the transaction back */
    return rc;
}

int pdb_rollback(pdb_t *db)
{
    if (!db->user_tx)
        return PB_ESTATE;
    int rc = pdb__run(db, pdb__st(db, PDB_ST_ROLLBACK));
    db->user_tx = !sqlite3_get_autocommit(db->db);
    pdb__cache_clear(db);
    return rc;
}

const char *pdb_errmsg(pdb_t *db) { return db ? sqlite3_errmsg(db->db) : "no database"; }

int pdb__one(pdb_t *db, sqlite3_stmt *s, pdb_row_fn row, void *ctx, json_t **out)
{
    int rc = 0, src = sqlite3_step(s);
    *out = NULL;
    if (src == SQLITE_ROW) {
        *out = row(s, ctx);
        rc = *out ? 0 : PB_ENOMEM;
    } else {
        rc = src == SQLITE_DONE ? PB_ENOTFOUND : pdb__err(db, src);
    }
    sqlite3_reset(s);
    return rc;
}

int pdb__collect(pdb_t *db, sqlite3_stmt *s, pdb_row_fn row, void *ctx, json_t **out)
{
    int rc = 0, src;
    json_t *arr = json_array();
    *out = NULL;
    if (arr == NULL) {
        sqlite3_reset(s);
        return PB_ENOMEM;
    }
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (json_array_append_new(arr, row(s, ctx))) {
            rc = PB_ENOMEM;
            break;
        }
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = pdb__err(db, src);
    sqlite3_reset(s);
    if (rc)
        json_decref(arr);
    else
        *out = arr;
    return rc;
}
