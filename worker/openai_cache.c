/* The worker's response cache for the `openai` backend: one SQLite file
 * keyed by the hex sha256 of (URL, model, request body), shared by every
 * runner thread of the process (and by workers sharing the file, through
 * WAL and a busy timeout), so a retried task or a re-run job does not pay
 * the server twice. Opened on first use; past its size cap the oldest
 * entries go first. The cache is an optimisation: a broken file is logged
 * and treated as empty, never a task failure. */
#include "worker/openai.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"

#define CACHE_EVICT_ROWS 256 /* rows dropped per eviction step */

/* Process-wide, as the file is: set before runner threads start, then
 * guarded by mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *cache_path;
static int64_t cache_max, cache_bytes;
static sqlite3 *db;
static sqlite3_stmt *st_get, *st_put;
static int broken; /* opening failed once: stay off */

void pb_oai_cache_default_path(char *out, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/')
        snprintf(out, n, "%s/posbench/responses.sqlite", xdg);
    else
        snprintf(out, n, "/tmp/posbench-cache-%ld/responses.sqlite", (long)getuid());
}

static void close_locked(void)
{
    sqlite3_finalize(st_get);
    sqlite3_finalize(st_put);
    sqlite3_close(db);
    st_get = st_put = NULL;
    db = NULL;
}

void pb_oai_cache_close(void)
{
    pthread_mutex_lock(&mu);
    close_locked();
    free(cache_path);
    cache_path = NULL;
    broken = 0;
    pthread_mutex_unlock(&mu);
}

int pb_oai_cache_configure(const char *path, int64_t max_bytes)
{
    pb_oai_cache_close();
    if (path == NULL)
        return 0;
    if ((cache_path = strdup(path)) == NULL)
        return PB_ENOMEM;
    cache_max = max_bytes > 0 ? max_bytes : INT64_MAX;
    return 0;
}

/* mkdir -p of path's directory. */
static void make_parent(const char *path)
{
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (slash == NULL || slash == d)
        return;
    *slash = '\0';
    for (char *p = d + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(d, 0700);
            *p = '/';
        }
    mkdir(d, 0700);
}

/* Open the file on first use; 0 when the cache is usable. */
static int open_locked(void)
{
    static const char schema[] =
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        "CREATE TABLE IF NOT EXISTS responses(key TEXT PRIMARY KEY, body BLOB NOT NULL,"
        " size INTEGER NOT NULL);";
    sqlite3_stmt *sum = NULL;
    if (db)
        return 0;
    if (cache_path == NULL || broken)
        return PB_ENOTFOUND;
    make_parent(cache_path);
    int rc = sqlite3_open_v2(cache_path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(db, 5000);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "SELECT body FROM responses WHERE key = ?", -1, &st_get, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO responses(key, body, size) "
                                    "VALUES (?, ?, ?)", -1, &st_put, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "SELECT total(size) FROM responses", -1, &sum, NULL);
    if (rc == SQLITE_OK && sqlite3_step(sum) == SQLITE_ROW)
        cache_bytes = (int64_t)sqlite3_column_double(sum, 0);
    sqlite3_finalize(sum);
    if (rc != SQLITE_OK) {
        pb_warn("response cache %s unusable (%s): running without it", cache_path,
                db ? sqlite3_errmsg(db) : "out of memory");
        close_locked();
        broken = 1;
        return PB_EDB;
    }
    return 0;
}

int pb_oai_cache_get(const char *key, char **body, size_t *len)
{
    int rc = PB_ENOTFOUND;
    *body = NULL;
    pthread_mutex_lock(&mu);
    if (open_locked() == 0) {
        sqlite3_bind_text(st_get, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st_get) == SQLITE_ROW) {
            size_t n = (size_t)sqlite3_column_bytes(st_get, 0);
            const void *b = sqlite3_column_blob(st_get, 0);
            char *c = malloc(n + 1);
            if (c == NULL) {
                rc = PB_ENOMEM;
            } else {
                if (n)
                    memcpy(c, b, n);
                c[n] = '\0';
                *body = c;
                *len = n;
                rc = 0;
            }
        }
        sqlite3_reset(st_get);
        sqlite3_clear_bindings(st_get);
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

/* Drop the oldest rows (lowest rowid: INSERT OR REPLACE renews it) until
 * the bodies fit 90% of the cap, so eviction is not paid on every put. */
static void evict_locked(void)
{
    sqlite3_stmt *del = NULL, *sum = NULL;
    if (sqlite3_prepare_v2(db, "DELETE FROM responses WHERE rowid IN (SELECT rowid FROM "
                               "responses ORDER BY rowid LIMIT ?)", -1, &del, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT total(size) FROM responses", -1, &sum, NULL) != SQLITE_OK)
        goto out;
    while (cache_bytes > cache_max / 10 * 9) {
        sqlite3_bind_int(del, 1, CACHE_EVICT_ROWS);
        int r = sqlite3_step(del);
        sqlite3_reset(del);
        if (r != SQLITE_DONE || sqlite3_step(sum) != SQLITE_ROW)
            break;
        int64_t before = cache_bytes;
        cache_bytes = (int64_t)sqlite3_column_double(sum, 0);
        sqlite3_reset(sum);
        if (cache_bytes >= before)
            break; /* nothing left to drop */
    }
out:
    sqlite3_finalize(del);
    sqlite3_finalize(sum);
}

void pb_oai_cache_put(const char *const *keys, const char *const *bodies, const size_t *lens,
                      size_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&mu);
    if (open_locked() != 0)
        goto out;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        pb_warn("response cache: %s", sqlite3_errmsg(db));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((int64_t)lens[i] > cache_max)
            continue; /* would evict everything and still not fit */
        sqlite3_bind_text(st_put, 1, keys[i], -1, SQLITE_STATIC);
        sqlite3_bind_blob(st_put, 2, bodies[i], (int)lens[i], SQLITE_STATIC);
        sqlite3_bind_int64(st_put, 3, (sqlite3_int64)lens[i]);
        if (sqlite3_step(st_put) == SQLITE_DONE)
            cache_bytes += (int64_t)lens[i];
        sqlite3_reset(st_put);
        sqlite3_clear_bindings(st_put);
    }
    if (cache_bytes > cache_max)
        evict_locked();
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        pb_warn("response cache: %s", sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
out:
    pthread_mutex_unlock(&mu);
}
