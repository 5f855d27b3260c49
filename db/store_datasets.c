/* User datasets in the store: the content as a file named by its SHA-256
 * in a directory next to the database (written to a temporary file,
 * fsync'd and renamed, so a file is whole or absent), and a datasets row
 * that records it. Uploads are rare, so statements are prepared per call. */
#include "db/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"

#define DS_COLS "hash, name, suite, bytes, lines, buckets, created_at"

int pdb_datasets_dir(pdb_t *db, char *out, size_t n)
{
    const char *path = sqlite3_db_filename(db->db, "main");
    if (path == NULL || path[0] == '\0')
        return PB_EUNSUPPORTED; /* an in-memory database has no "next to" */
    if ((size_t)snprintf(out, n, "%s-datasets", path) >= n)
        return PB_ETOOBIG;
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return PB_EIO;
    return 0;
}

int pdb_dataset_path(pdb_t *db, const char *hash, char *out, size_t n)
{
    if (!pb_sha256_is_hex(hash))
        return PB_EINVAL;
    int rc = pdb_datasets_dir(db, out, n);
    if (rc)
        return rc;
    size_t len = strlen(out);
    if ((size_t)snprintf(out + len, n - len, "/%s.jsonl", hash) >= n - len)
        return PB_ETOOBIG;
    return 0;
}

/* One datasets row as its API object; NULL when out of memory. */
static json_t *ds_row(sqlite3_stmt *s, void *ctx)
{
    char t[32];
    (void)ctx;
    json_t *pairs = pdb__col_json(s, 5), *buckets = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(pairs, i, p)
    {
        json_t *b = json_pack("{s:O, s:O}", "bucket", json_array_get(p, 0), "lines",
                              json_array_get(p, 1));
        if (b == NULL || json_array_append_new(buckets, b))
            goto oom;
    }
    json_decref(pairs);
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:s?}", "hash", pdb__col_text(s, 0),
                     "name", pdb__col_text(s, 1), "suite", pdb__col_text(s, 2), "bytes",
                     (json_int_t)sqlite3_column_int64(s, 3), "lines",
                     (json_int_t)sqlite3_column_int64(s, 4), "buckets", buckets,
                     "created_at", pdb__col_iso(s, 6, t));
oom:
    json_decref(pairs);
    json_decref(buckets);
    return NULL;
}

/* Run a one-parameter (or none) query and collect its rows. */
static int ds_query(pdb_t *db, const char *sql, const char *arg, json_t **out)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    int src = sqlite3_prepare_v2(db->db, sql, -1, &s, NULL);
    if (src != SQLITE_OK)
        return pdb__err(db, src);
    if (arg)
        pdb__bind_text(s, 1, arg);
    int rc = pdb__collect(db, s, ds_row, NULL, out);
    sqlite3_finalize(s);
    return rc;
}

int pdb_dataset_get(pdb_t *db, const char *hash, json_t **out)
{
    json_t *rows = NULL;
    *out = NULL;
    int rc = ds_query(db, "SELECT " DS_COLS " FROM datasets WHERE hash = ?1", hash, &rows);
    if (rc == 0 && json_array_size(rows) == 0)
        rc = PB_ENOTFOUND;
    if (rc == 0)
        *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return rc;
}

int pdb_datasets_list(pdb_t *db, json_t **out)
{
    json_t *rows = NULL;
    *out = NULL;
    int rc = ds_query(db, "SELECT " DS_COLS " FROM datasets ORDER BY created_at DESC, hash "
                          "LIMIT 1000", NULL, &rows);
    if (rc == 0 && (*out = json_pack("{s:o}", "datasets", rows)) == NULL)
        rc = PB_ENOMEM;
    return rc;
}

/* Write data to path through a temporary file in the same directory:
 * write, fsync, rename, fsync the directory. On failure nothing is left.
 * mkstemp names the temporary file, so concurrent writers never share one. */
static int write_whole(const char *dir, const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX + 64];
    int fd = -1, rc = PB_EIO;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.upload-XXXXXX", dir) >= sizeof tmp)
        return PB_ETOOBIG;
    fd = mkstemp(tmp);
    if (fd < 0) {
        pb_warn("store: cannot create a file in %s: %s", dir, strerror(errno));
        return PB_EIO;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself survives a crash */
        close(dfd);
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc) {
        pb_warn("store: cannot write dataset %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    return rc;
}

int pdb_dataset_file_write(const char *dir, const char *hash, const char *data, size_t len,
                           int *had_file)
{
    char path[PATH_MAX];
    struct stat st;
    *had_file = 0;
    if (!pb_sha256_is_hex(hash))
        return PB_EINVAL;
    if ((size_t)snprintf(path, sizeof path, "%s/%s.jsonl", dir, hash) >= sizeof path)
        return PB_ETOOBIG;
    /* A file without a row is left from a crash between rename and insert:
     * its name is its content's hash, but write it again all the same. */
    *had_file = stat(path, &st) == 0;
    return write_whole(dir, path, data, len);
}

/* [[bucket, lines], ...] as text; NULL when out of memory. */
static char *buckets_text(const int64_t *buckets, const uint64_t *counts, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_pack("[I, I]", (json_int_t)buckets[i],
                                               (json_int_t)counts[i]))) {
            json_decref(a);
            return NULL;
        }
    char *t = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return t;
}

int pdb_dataset_record(pdb_t *db, const pdb_dataset_meta_t *m, size_t len, int had_file,
                       int *created, json_t **out)
{
    char path[PATH_MAX];
    char *btext = NULL;
    sqlite3_stmt *s = NULL;
    int rc;

    *out = NULL;
    *created = 0;
    if (!pb_sha256_is_hex(m->hash))
        return PB_EINVAL;
    rc = pdb_dataset_get(db, m->hash, out);
    if (rc != PB_ENOTFOUND)
        return rc; /* 0: the same content is already stored */
    btext = buckets_text(m->buckets, m->counts, m->n_buckets);
    if (btext == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    int src = sqlite3_prepare_v2(db->db, "INSERT INTO datasets(" DS_COLS ") "
                                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &s, NULL);
    if (src != SQLITE_OK) {
        rc = pdb__err(db, src);
        goto out;
    }
    pdb__bind_text(s, 1, m->hash);
    pdb__bind_text(s, 2, m->name);
    pdb__bind_text(s, 3, m->suite);
    sqlite3_bind_int64(s, 4, (int64_t)len);
    sqlite3_bind_int64(s, 5, (int64_t)m->lines);
    pdb__bind_text(s, 6, btext);
    sqlite3_bind_double(s, 7, pb_wall_time());
    rc = pdb__run(db, s);
    if (rc == 0)
        rc = pdb_dataset_get(db, m->hash, out);
    if (rc == 0)
        *created = 1;
out:
    sqlite3_finalize(s);
    free(btext);
    if (rc && rc != PB_EEXIST && !had_file &&
        pdb_dataset_path(db, m->hash, path, sizeof path) == 0)
        unlink(path); /* no row, no file: nothing half-stored */
    return rc;
}

int pdb_dataset_put(pdb_t *db, const pdb_dataset_meta_t *m, const char *data, size_t len,
                    int *created, json_t **out)
{
    char dir[PATH_MAX];
    int rc, had_file = 0;

    *out = NULL;
    *created = 0;
    if (!pb_sha256_is_hex(m->hash))
        return PB_EINVAL;
    rc = pdb_dataset_get(db, m->hash, out);
    if (rc != PB_ENOTFOUND)
        return rc; /* 0: the same content is already stored */
    if ((rc = pdb_datasets_dir(db, dir, sizeof dir)) ||
        (rc = pdb_dataset_file_write(dir, m->hash, data, len, &had_file)))
        return rc;
    return pdb_dataset_record(db, m, len, had_file, created, out);
}

int pdb_dataset_ref(pdb_t *db, const char *hash, char *suite, size_t suite_len,
                    int64_t **buckets, uint64_t **counts, size_t *n)
{
    json_t *d = NULL;
    *buckets = NULL;
    *counts = NULL;
    *n = 0;
    int rc = pdb_dataset_get(db, hash, &d);
    if (rc)
        return rc;
    json_t *arr = json_object_get(d, "buckets");
    size_t k = json_array_size(arr);
    int64_t *b = calloc(k ? k : 1, sizeof *b);
    uint64_t *c = calloc(k ? k : 1, sizeof *c);
    if (b == NULL || c == NULL) {
        free(b);
        free(c);
        json_decref(d);
        return PB_ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        json_t *e = json_array_get(arr, i);
        b[i] = json_integer_value(json_object_get(e, "bucket"));
        c[i] = (uint64_t)json_integer_value(json_object_get(e, "lines"));
    }
    snprintf(suite, suite_len, "%s", json_string_value(json_object_get(d, "suite")));
    json_decref(d);
    *buckets = b;
    *counts = c;
    *n = k;
    return 0;
}
