/* Worker-side user datasets (worker/datasets.h): one process-wide list of
 * open datasets under a mutex, and one "loading" entry per hash being
 * fetched or indexed, so concurrent tasks of one dataset share a single
 * download and index while other datasets load in parallel. A file is
 * mapped read-only; the index is its lines sorted by (bucket, position). */
#include "worker/datasets.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"
#include "suites/dataset.h"

typedef struct ds_line {
    int64_t bucket;
    size_t off, len, lineno;
} ds_line_t;

struct pb_dataset {
    char hash[PB_SHA256_HEX];
    char *map;
    size_t size;
    ds_line_t *lines; /* sorted by bucket, file order within a bucket */
    size_t n_lines;
    int refs;
    uint64_t last_used;
    pb_dataset_t *next;
};

/* A hash one thread is loading (cache or download, then index) without
 * ds_mu held; the other tasks of that hash wait on ds_cv for its outcome.
 * Freed by whoever drops the last reference (loader or last waiter). */
typedef struct ds_loading {
    char hash[PB_SHA256_HEX];
    int done, rc, refs;
    pb_err_t err; /* the loader's error, handed to its waiters */
    struct ds_loading *next;
} ds_loading_t;

static pthread_mutex_t ds_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ds_cv = PTHREAD_COND_INITIALIZER;
static pb_dataset_t *ds_open_list; /* guarded by ds_mu, as are the three below */
static ds_loading_t *ds_loading_list;
static uint64_t ds_clock, ds_fetches;

void pb_datasets_default_cache(char *out, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/')
        snprintf(out, n, "%s/posbench/datasets", xdg);
    else
        snprintf(out, n, "/tmp/posbench-cache-%ld", (long)getuid());
}

uint64_t pb_datasets_fetches(void)
{
    pthread_mutex_lock(&ds_mu);
    uint64_t n = ds_fetches;
    pthread_mutex_unlock(&ds_mu);
    return n;
}

/* mkdir -p for the cache directory. */
static int make_dirs(const char *dir)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return PB_ETOOBIG;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                return PB_EIO;
            *s = '/';
        }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? PB_EIO : 0;
}

static void ds_free(pb_dataset_t *ds)
{
    if (ds == NULL)
        return;
    if (ds->map && ds->size)
        munmap(ds->map, ds->size);
    free(ds->lines);
    free(ds);
}

/* ---- download ---- */

typedef struct fetch {
    FILE *f;
    pb_sha256_t sha;
    uint64_t bytes;
    int too_big;
} fetch_t;

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    fetch_t *ft = arg;
    size_t n = size * nmemb;
    if (ft->bytes + n > PB_DATASET_MAX_BYTES) {
        ft->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (fwrite(data, 1, n, ft->f) != n)
        return 0;
    pb_sha256_update(&ft->sha, data, n);
    ft->bytes += n;
    return n;
}

/* GET url into path through path.partial; kept only when its SHA-256 is hash. */
static int fetch(const char *url, const char *hash, const char *path, pb_err_t *err)
{
    char tmp[PATH_MAX + 128], got[PB_SHA256_HEX];
    unsigned char d[PB_SHA256_LEN];
    fetch_t ft = {0};
    long status = 0;
    int rc = 0;
    CURL *h = NULL;

    snprintf(tmp, sizeof tmp, "%s.%ld.partial", path, (long)getpid());
    ft.f = fopen(tmp, "wb");
    if (ft.f == NULL)
        return pb_err_set(err, PB_EIO, "dataset", "cannot write %s: %s", tmp, strerror(errno));
    pb_sha256_init(&ft.sha);
    h = curl_easy_init();
    if (h == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ft);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* runner threads */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer fails after 60 s */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (ft.too_big)
        rc = pb_err_set(err, PB_EIO, "dataset", "dataset %.16s is larger than %llu bytes", hash,
                        (unsigned long long)PB_DATASET_MAX_BYTES);
    else if (cc != CURLE_OK)
        rc = pb_err_set(err, PB_ENET, "dataset", "fetching dataset %.16s from %.200s: %s", hash,
                        url, curl_easy_strerror(cc));
    else if (status != 200)
        rc = pb_err_set(err, status == 404 ? PB_ENOTFOUND : PB_ENET, "dataset",
                        "fetching dataset %.16s: HTTP %ld from %.200s", hash, status, url);
    if (rc)
        goto out;
    pb_sha256_final(&ft.sha, d);
    pb_sha256_to_hex(d, got);
    if (strcmp(got, hash) != 0) {
        rc = pb_err_set(err, PB_EIO, "dataset",
                        "dataset %.16s: hash mismatch: the download from %.200s hashes to %.16s",
                        hash, url, got);
        goto out;
    }
    if (fflush(ft.f) != 0 || fsync(fileno(ft.f)) != 0) {
        rc = pb_err_set(err, PB_EIO, "dataset", "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fclose(ft.f);
    ft.f = NULL;
    if (rename(tmp, path) != 0)
        rc = pb_err_set(err, PB_EIO, "dataset", "cannot store %s: %s", path, strerror(errno));
    else
        pb_info("dataset %.16s fetched from %s (%llu bytes)", hash, url,
                (unsigned long long)ft.bytes);
out:
    if (h)
        curl_easy_cleanup(h);
    if (ft.f)
        fclose(ft.f);
    if (rc)
        unlink(tmp); /* a wrong or partial download is never kept */
    return rc;
}

/* ---- map and index ---- */

static int line_cmp(const void *a, const void *b)
{
    const ds_line_t *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* The "bucket" of a line the coordinator checked (0 when absent). */
static int64_t line_bucket(const char *line, size_t n)
{
    int64_t b = 0;
    json_t *o = json_loadb(line, n, 0, NULL);
    const json_t *v = json_object_get(o, "bucket");
    if (v == NULL || pb_json_as_int(v, &b))
        b = 0;
    json_decref(o);
    return b;
}

/* Map path, check its hash (1 in *stale when it differs) and index it. */
static int load(const char *path, const char *hash, pb_dataset_t **out, int *stale, pb_err_t *err)
{
    char got[PB_SHA256_HEX];
    struct stat st;
    size_t cap = 0, pos = 0, lineno = 0, n;
    const char *line;
    int rc = 0;
    pb_dataset_t *ds = calloc(1, sizeof *ds);
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *out = NULL;
    *stale = 0;
    if (ds == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
        rc = PB_ENOTFOUND; /* not cached (an empty file never is a dataset) */
        goto out;
    }
    ds->size = (size_t)st.st_size;
    ds->map = mmap(NULL, ds->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (ds->map == MAP_FAILED) {
        ds->map = NULL;
        rc = pb_err_set(err, PB_EIO, "dataset", "cannot map %s: %s", path, strerror(errno));
        goto out;
    }
    pb_sha256_hex(ds->map, ds->size, got);
    if (strcmp(got, hash) != 0) {
        *stale = 1;
        rc = PB_EIO;
        goto out;
    }
    while (ps_dataset_next_line(ds->map, ds->size, &pos, &line, &n, &lineno)) {
        if (pb_grow(&ds->lines, &cap, ds->n_lines + 1, sizeof *ds->lines, 1024)) {
            rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
            goto out;
        }
        ds->lines[ds->n_lines++] = (ds_line_t){.bucket = line_bucket(line, n),
                                               .off = (size_t)(line - ds->map), .len = n,
                                               .lineno = lineno};
    }
    qsort(ds->lines, ds->n_lines, sizeof *ds->lines, line_cmp);
    snprintf(ds->hash, sizeof ds->hash, "%s", hash);
    *out = ds;
    ds = NULL;
out:
    if (fd >= 0)
        close(fd);
    ds_free(ds);
    return rc;
}

/* Drop unreferenced datasets beyond PB_DATASETS_KEPT, least recently used
 * first. Called with ds_mu held. */
static void trim(void)
{
    for (;;) {
        size_t idle = 0;
        pb_dataset_t **oldest = NULL;
        for (pb_dataset_t **p = &ds_open_list; *p; p = &(*p)->next)
            if ((*p)->refs == 0) {
                idle++;
                if (oldest == NULL || (*p)->last_used < (*oldest)->last_used)
                    oldest = p;
            }
        if (idle <= PB_DATASETS_KEPT)
            return;
        pb_dataset_t *d = *oldest;
        *oldest = d->next;
        ds_free(d);
    }
}

/* Cache, else download, then map and index: the slow part, run without
 * ds_mu (only the fetch counter takes it). */
static int ds_load(const char *dir, const char *url, const char *hash, pb_dataset_t **out,
                   pb_err_t *err)
{
    char path[PATH_MAX + 80];
    int rc, stale = 0;

    *out = NULL;
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, hash);
    if ((rc = make_dirs(dir)))
        return pb_err_set(err, rc, "dataset", "cannot create the cache directory %s", dir);
    rc = load(path, hash, out, &stale, err);
    if (rc != PB_ENOTFOUND && !stale)
        return rc;
    if (stale)
        pb_warn("dataset %.16s: cached copy %s is damaged; fetching it again", hash, path);
    if (url == NULL || url[0] == '\0')
        return pb_err_set(err, PB_EINVAL, "dataset_url",
                          "dataset %.16s is not cached and the task gives no dataset_url", hash);
    if ((rc = fetch(url, hash, path, err)))
        return rc;
    pthread_mutex_lock(&ds_mu);
    ds_fetches++;
    pthread_mutex_unlock(&ds_mu);
    rc = load(path, hash, out, &stale, err);
    if (stale)
        rc = pb_err_set(err, PB_EIO, "dataset", "dataset %.16s changed on disk", hash);
    return rc;
}

static void loading_unref(ds_loading_t *l)
{
    if (--l->refs == 0)
        free(l);
}

int pb_dataset_open(const char *cache_dir, const char *url, const char *hash, pb_dataset_t **out,
                    pb_err_t *err)
{
    char dir[PATH_MAX];
    pb_dataset_t *ds = NULL;
    ds_loading_t *l = NULL, **pp;
    int rc;

    *out = NULL;
    if (hash == NULL || !pb_sha256_is_hex(hash))
        return pb_err_set(err, PB_EINVAL, "dataset", "dataset must be a SHA-256 hash");
    if (cache_dir == NULL || cache_dir[0] == '\0')
        pb_datasets_default_cache(dir, sizeof dir);
    else
        snprintf(dir, sizeof dir, "%s", cache_dir);
    pthread_mutex_lock(&ds_mu);
    for (;;) {
        for (ds = ds_open_list; ds; ds = ds->next)
            if (strcmp(ds->hash, hash) == 0)
                break;
        if (ds) {
            rc = 0;
            goto out;
        }
        for (l = ds_loading_list; l; l = l->next)
            if (strcmp(l->hash, hash) == 0)
                break;
        if (l == NULL)
            break;
        /* Another task loads it: wait for that one, then look again (its
         * failure is ours too, rather than a download per waiting task). */
        l->refs++;
        while (!l->done)
            pthread_cond_wait(&ds_cv, &ds_mu);
        rc = l->rc;
        if (rc && err)
            *err = l->err;
        loading_unref(l);
        if (rc)
            goto out;
    }
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    snprintf(l->hash, sizeof l->hash, "%s", hash);
    l->refs = 1;
    l->next = ds_loading_list;
    ds_loading_list = l;
    pthread_mutex_unlock(&ds_mu);

    rc = ds_load(dir, url, hash, &ds, &l->err);

    pthread_mutex_lock(&ds_mu);
    for (pp = &ds_loading_list; *pp != l; pp = &(*pp)->next)
        ;
    *pp = l->next;
    l->done = 1;
    l->rc = rc;
    if (rc && err)
        *err = l->err;
    if (rc == 0) {
        ds->next = ds_open_list;
        ds_open_list = ds;
    }
    pthread_cond_broadcast(&ds_cv);
    loading_unref(l);
out:
    if (rc == 0) {
        ds->refs++;
        ds->last_used = ++ds_clock;
        *out = ds;
    }
    pthread_mutex_unlock(&ds_mu);
    return rc;
}

void pb_dataset_release(pb_dataset_t *ds)
{
    if (ds == NULL)
        return;
    pthread_mutex_lock(&ds_mu);
    ds->refs--;
    trim();
    pthread_mutex_unlock(&ds_mu);
}

/* [*lo, *hi) of the lines with this bucket. */
static void bucket_range(const pb_dataset_t *ds, int64_t bucket, size_t *lo, size_t *hi)
{
    size_t a = 0, b = ds->n_lines;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (ds->lines[m].bucket < bucket)
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    b = ds->n_lines;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (ds->lines[m].bucket <= bucket)
            a = m + 1;
        else
            b = m;
    }
    *hi = a;
}

uint64_t pb_dataset_count(const pb_dataset_t *ds, int64_t bucket)
{
    size_t lo, hi;
    bucket_range(ds, bucket, &lo, &hi);
    return hi - lo;
}

void pb_dataset_bytes(const pb_dataset_t *ds, const char **data, size_t *len)
{
    *data = ds->map;
    *len = ds->size;
}

int pb_dataset_item(const pb_dataset_t *ds, const ps_run_t *run, uint64_t idx, ps_item_t *out,
                    pb_err_t *err)
{
    size_t lo, hi;
    memset(out, 0, sizeof *out);
    bucket_range(ds, run->bucket, &lo, &hi);
    if (idx >= hi - lo)
        return pb_err_set(err, PB_EINVAL, "item_hi",
                          "dataset %.16s has %zu lines in bucket %lld, item %llu asked for",
                          ds->hash, hi - lo, (long long)run->bucket, (unsigned long long)idx);
    const ds_line_t *l = &ds->lines[lo + idx];
    return ps_dataset_item(run, ds->map + l->off, l->len, l->lineno, idx, out, err);
}
