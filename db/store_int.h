/* The store's private side: the handle with its prepared statements, and the
 * helpers store.c, store_jobs.c and store_tasks.c share (savepoints, error
 * mapping, column-to-JSON conversions, the task counters). Not for use
 * outside db/. */
#ifndef PDB_STORE_INT_H
#define PDB_STORE_INT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "db/store.h"
#include "db/store_sql.h"

enum {
#define PDB_STMT_ENUM(name, sql) PDB_ST_##name,
    PDB_STMTS(PDB_STMT_ENUM)
#undef PDB_STMT_ENUM
    PDB_N_STMTS
};

/* pdb_task_lease keeps the part of the TASK body that all tasks of a run
 * share (suite, params, model, ...), parsed once: direct-mapped by (job, run). */
#define PDB_LEASE_CACHE 16
#define PDB_PROV_CACHE 8
typedef struct pdb_lease_tmpl {
    int64_t job_id;
    int64_t run;
    json_t *body; /* NULL = empty slot */
} pdb_lease_tmpl_t;

/* Background WAL checkpointer (checkpoint.c). */
typedef struct pdb_ckpt pdb_ckpt_t;
int pdb__ckpt_start(const char *path, pdb_ckpt_t **out);
void pdb__ckpt_stop(pdb_ckpt_t *c);

struct pdb {
    sqlite3 *db;
    pdb_ckpt_t *ckpt; /* NULL: SQLite's own automatic checkpoints */
    sqlite3_stmt *st[PDB_N_STMTS];
    int user_tx;  /* inside pdb_begin .. pdb_commit/pdb_rollback */
    int sp_depth; /* open pdb__sp_begin savepoints */
    pdb_lease_tmpl_t lease_cache[PDB_LEASE_CACHE];
    /* Recent testbed ([0]) and context ([1]) ids by hash, so a result
     * from a known worker and model costs no lookup (store_series.c). */
    struct {
        char hash[65];
        int64_t id;
    } prov_cache[2][PDB_PROV_CACHE];
};

/* Caps on what one listing call returns. */
#define PDB_LIST_DEFAULT 50
#define PDB_LIST_MAX 1000
#define PDB_ITEMS_DEFAULT 100
#define PDB_ITEMS_MAX 10000

/* A prepared statement, ready to bind. Every user resets it when done, so no
 * statement keeps a read snapshot open between calls. */
static inline sqlite3_stmt *pdb__st(pdb_t *db, int id) { return db->st[id]; }

/* Map an SQLite result code to a PB_E code: uniqueness and primary-key
 * violations are PB_EEXIST, everything else PB_EDB (logged). */
int pdb__err(pdb_t *db, int src);
/* Step a statement that returns no rows, then reset it; 0 or pdb__err. */
int pdb__run(pdb_t *db, sqlite3_stmt *s);

/* Open a savepoint (a transaction of its own outside pdb_begin). pdb__sp_end
 * releases it when rc is 0, else rolls it back first; returns rc, or PB_EDB
 * when the release itself failed. */
int pdb__sp_begin(pdb_t *db);
int pdb__sp_end(pdb_t *db, int rc);

/* Column conversions for building JSON; all return NULL for SQL NULL, which
 * json_pack's "o?"/"s?" turn into JSON null. */
json_t *pdb__col_json(sqlite3_stmt *s, int col); /* parsed JSON text, new reference */
json_t *pdb__col_int(sqlite3_stmt *s, int col);  /* integer, new reference */
const char *pdb__col_iso(sqlite3_stmt *s, int col, char buf[32]); /* ISO-8601 in buf */
const char *pdb__col_text(sqlite3_stmt *s, int col); /* valid until the next step/reset */

/* Step s (already bound) to its end, collecting row(s, ctx) for each row
 * into a new array; row returns NULL when out of memory. Resets s. On
 * failure *out is NULL. */
typedef json_t *(*pdb_row_fn)(sqlite3_stmt *s, void *ctx);
int pdb__collect(pdb_t *db, sqlite3_stmt *s, pdb_row_fn row, void *ctx, json_t **out);

/* Step s (already bound) for one row: *out = row(s, ctx), PB_ENOTFOUND
 * when there is none. Resets s. */
int pdb__one(pdb_t *db, sqlite3_stmt *s, pdb_row_fn row, void *ctx, json_t **out);

/* Bind text that stays alive until the statement is reset (SQLITE_STATIC);
 * NULL binds SQL NULL. */
int pdb__bind_text(sqlite3_stmt *s, int i, const char *text);

/* Forget the lease templates. Needed whenever a transaction that may have
 * inserted jobs rolls back: SQLite hands the rolled-back ids out again. */
void pdb__cache_clear(pdb_t *db);

/* Record a result's provenance ({"testbed": {...}, "context": {...}}, either
 * optional) on its task: each object stored once by the hash of its
 * canonical JSON. Called inside the result's savepoint. */
int pdb__task_provenance(pdb_t *db, int64_t task_id, const json_t *prov);

/* Statements prepared per call, for what runs once per job or API call:
 * pdb__run_once steps one that returns no rows and finalizes it. NaN binds
 * SQL NULL and NULL reads back as NaN; an id <= 0 binds NULL. */
int pdb__prep(pdb_t *db, const char *sql, sqlite3_stmt **s);
/* Prepare sql, bind id to ?1, collect its rows with row (pdb__collect),
 * finalize. */
int pdb__list_by_id(pdb_t *db, const char *sql, int64_t id, pdb_row_fn row, json_t **out);
int pdb__run_once(pdb_t *db, sqlite3_stmt *s);
void pdb__bind_real(sqlite3_stmt *s, int i, double v);
void pdb__bind_id(sqlite3_stmt *s, int i, int64_t v);
double pdb__col_real(sqlite3_stmt *s, int col);
json_t *pdb__real_or_null(double v); /* new reference: a real, or null */

/* Task states as indices of the per-job counters (jobs.tasks_queued ..
 * tasks_cancelled, in this order); pdb__ts_name gives the PDB_* string. */
enum { PDB_TS_QUEUED, PDB_TS_LEASED, PDB_TS_DONE, PDB_TS_FAILED, PDB_TS_CANCELLED, PDB_N_TS };
extern const char *const pdb__ts_name[PDB_N_TS];

/* Count k of a job's tasks moving from state `from` to `to` (PDB_TS_*) and
 * add `items` to its items_done: an UPDATE of the jobs row by id and one of
 * the stats row. Every task state change calls it in the same savepoint, so
 * the counters equal the tasks table at every commit. job_id 0 moves the
 * stats row only (for a caller that moved the jobs rows itself). */
int pdb__tally(pdb_t *db, int64_t job_id, int from, int to, int64_t k, int64_t items);

/* {"queued": n, "leased": n, ...} from PDB_N_TS integer columns starting at
 * col, in PDB_TS_* order; new reference, NULL when out of memory. */
json_t *pdb__col_task_counts(sqlite3_stmt *s, int col);

#endif
