/* Checkpoint directories (issue 6): config.json, then model.safetensors or
 * the shards that model.safetensors.index.json's weight_map names. Each
 * shard is mapped read-only and parsed by pe_st_parse; one name-sorted index
 * over all shards serves lookups by binary search. Tensor bytes are never
 * copied: they live in the mappings until pe_ckpt_close. */
#include "engine/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PE_CKPT_JSON_MAX (64u << 20) /* config.json, the shard index */
#define PE_CKPT_SHARDS_MAX 4096

typedef struct {
    char *file; /* name inside the directory, for errors */
    void *map;
    size_t len;
    pe_tensor_t *t;
    size_t n;
} shard_t;

typedef struct {
    const pe_tensor_t *t;
    size_t shard;
} entry_t;

struct pe_ckpt {
    char *dir;
    json_t *config;
    shard_t *shards;
    size_t nshards;
    entry_t *idx; /* sorted by tensor name */
    size_t n;
};

static int path_join(char *out, const char *dir, const char *file, pb_err_t *err)
{
    int k = snprintf(out, PATH_MAX, "%s/%s", dir, file);
    if (k < 0 || k >= PATH_MAX)
        return pb_err_set(err, PB_EINVAL, file, "%s/%s: path too long", dir, file);
    return 0;
}

/* A JSON object from dir/file, capped in size; new reference in *out. */
static int json_file(const char *dir, const char *file, json_t **out, pb_err_t *err)
{
    char path[PATH_MAX];
    struct stat st;
    int rc = path_join(path, dir, file, err);
    *out = NULL;
    if (rc)
        return rc;
    if (stat(path, &st) != 0)
        return pb_err_set(err, errno == ENOENT ? PB_ENOTFOUND : PB_EIO, file, "%s: %s", path,
                          strerror(errno));
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > PE_CKPT_JSON_MAX)
        return pb_err_set(err, PB_EPARSE, file, "%s: not a regular file of at most %u bytes",
                          path, PE_CKPT_JSON_MAX);
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return pb_err_set(err, PB_EPARSE, file, "%s: not a JSON object: %s", path,
                          j ? "another JSON type" : jerr.text);
    }
    *out = j;
    return 0;
}

/* Map dir/s->file read-only and parse it. The fd is closed at once: the
 * mapping keeps the file alive. */
static int shard_load(const char *dir, shard_t *s, pb_err_t *err)
{
    char path[PATH_MAX];
    struct stat st;
    int fd = -1;
    int rc = path_join(path, dir, s->file, err);
    if (rc)
        goto out;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = pb_err_set(err, errno == ENOENT ? PB_ENOTFOUND : PB_EIO, s->file,
                        "%s: shard %s: %s", dir, s->file, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = pb_err_set(err, PB_EPARSE, s->file, "%s: shard %s is not a regular file", dir,
                        s->file);
        goto out;
    }
    /* mmap of 0 bytes fails; an empty file still reaches the parser's
     * "truncated" error. */
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = pb_err_set(err, PB_EIO, s->file, "%s: mmap: %s", path, strerror(errno));
            goto out;
        }
        s->map = m;
        s->len = (size_t)st.st_size;
    }
    rc = pe_st_parse(s->map, s->len, s->file, &s->t, &s->n, err);
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->t->name, ((const entry_t *)b)->t->name);
}

static const entry_t *find(const pe_ckpt_t *c, const char *name)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(c->idx[mid].t->name, name);
        if (d == 0)
            return &c->idx[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A shard name from the index must stay inside the directory. */
static int shard_name_ok(const char *s)
{
    return *s && strlen(s) < 256 && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

/* Fill c->shards from the index's weight_map (distinct files, sorted). */
static int shards_from_index(pe_ckpt_t *c, const json_t *wm, pb_err_t *err)
{
    const char *f = "model.safetensors.index.json";
    const char **names = NULL;
    size_t nn = 0;
    int rc = 0;
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        rc = pb_err_set(err, PB_EPARSE, "weight_map", "%s/%s: weight_map is not a non-empty object",
                        c->dir, f);
        goto out;
    }
    names = malloc(json_object_size(wm) * sizeof *names);
    if (names == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "weight_map", "%s/%s: out of memory", c->dir, f);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v)
    {
        if (!json_is_string(v) || !shard_name_ok(json_string_value(v))) {
            rc = pb_err_set(err, PB_EPARSE, key,
                            "%s/%s: weight_map: tensor '%s': not a file name in the directory",
                            c->dir, f, key);
            goto out;
        }
        names[nn++] = json_string_value(v);
    }
    qsort(names, nn, sizeof *names, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < nn; i++)
        if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
            names[u++] = names[i];
    if (u > PE_CKPT_SHARDS_MAX) {
        rc = pb_err_set(err, PB_EPARSE, "weight_map", "%s/%s: %zu shards, over the cap of %d",
                        c->dir, f, u, PE_CKPT_SHARDS_MAX);
        goto out;
    }
    c->shards = calloc(u, sizeof *c->shards);
    if (c->shards == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "weight_map", "%s/%s: out of memory", c->dir, f);
        goto out;
    }
    for (size_t i = 0; i < u; i++) {
        c->shards[i].file = strdup(names[i]);
        if (c->shards[i].file == NULL) {
            rc = pb_err_set(err, PB_ENOMEM, "weight_map", "%s/%s: out of memory", c->dir, f);
            goto out;
        }
        c->nshards++;
    }
out:
    free(names);
    return rc;
}

/* Every tensor of every shard in one sorted index; a name in two shards is
 * malformed. */
static int index_build(pe_ckpt_t *c, pb_err_t *err)
{
    size_t total = 0;
    for (size_t i = 0; i < c->nshards; i++)
        total += c->shards[i].n;
    c->idx = calloc(total ? total : 1, sizeof *c->idx);
    if (c->idx == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "%s: out of memory for %zu tensors", c->dir, total);
    for (size_t i = 0; i < c->nshards; i++)
        for (size_t j = 0; j < c->shards[i].n; j++)
            c->idx[c->n++] = (entry_t){&c->shards[i].t[j], i};
    qsort(c->idx, c->n, sizeof *c->idx, cmp_entry);
    for (size_t i = 1; i < c->n; i++)
        if (strcmp(c->idx[i - 1].t->name, c->idx[i].t->name) == 0)
            return pb_err_set(err, PB_EPARSE, c->idx[i].t->name,
                              "%s: tensor '%s' is in both %s and %s", c->dir, c->idx[i].t->name,
                              c->shards[c->idx[i - 1].shard].file,
                              c->shards[c->idx[i].shard].file);
    return 0;
}

/* The index's promise, checked: each tensor it names is in its shard. */
static int weight_map_check(const pe_ckpt_t *c, const json_t *wm, pb_err_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v)
    {
        const entry_t *e = find(c, key);
        const char *want = json_string_value(v);
        if (e == NULL || strcmp(c->shards[e->shard].file, want) != 0)
            return pb_err_set(err, PB_ENOTFOUND, key,
                              "%s/%s: tensor '%s' is not there (the index names that shard)",
                              c->dir, want, key);
    }
    return 0;
}

int pe_ckpt_open(const char *dir, pe_ckpt_t **out, pb_err_t *err)
{
    pe_ckpt_t *c = NULL;
    json_t *index = NULL;
    char path[PATH_MAX];
    struct stat st;
    int rc = 0;
    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c != NULL)
        c->dir = strdup(dir);
    if (c == NULL || c->dir == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "%s: out of memory", dir);
        goto out;
    }
    rc = json_file(dir, "config.json", &c->config, err);
    if (rc)
        goto out;
    rc = path_join(path, dir, "model.safetensors.index.json", err);
    if (rc)
        goto out;
    if (stat(path, &st) == 0) {
        rc = json_file(dir, "model.safetensors.index.json", &index, err);
        if (rc == 0)
            rc = shards_from_index(c, json_object_get(index, "weight_map"), err);
    } else {
        c->shards = calloc(1, sizeof *c->shards);
        if (c->shards != NULL) {
            c->nshards = 1;
            c->shards[0].file = strdup("model.safetensors");
        }
        if (c->shards == NULL || c->shards[0].file == NULL)
            rc = pb_err_set(err, PB_ENOMEM, "", "%s: out of memory", dir);
    }
    if (rc)
        goto out;
    for (size_t i = 0; i < c->nshards && rc == 0; i++)
        rc = shard_load(dir, &c->shards[i], err);
    if (rc == 0)
        rc = index_build(c, err);
    if (rc == 0 && index != NULL)
        rc = weight_map_check(c, json_object_get(index, "weight_map"), err);
    if (rc)
        goto out;
    *out = c;
    c = NULL;
out:
    json_decref(index);
    pe_ckpt_close(c);
    return rc;
}

void pe_ckpt_close(pe_ckpt_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nshards; i++) {
        shard_t *s = &c->shards[i];
        pe_st_free(s->t, s->n);
        if (s->map != NULL)
            munmap(s->map, s->len);
        free(s->file);
    }
    free(c->shards);
    free(c->idx);
    json_decref(c->config);
    free(c->dir);
    free(c);
}

const json_t *pe_ckpt_config(const pe_ckpt_t *c)
{
    return c->config;
}

const char *pe_ckpt_dir(const pe_ckpt_t *c)
{
    return c->dir;
}

const pe_tensor_t *pe_ckpt_tensor(const pe_ckpt_t *c, const char *name)
{
    const entry_t *e = find(c, name);
    return e ? e->t : NULL;
}

size_t pe_ckpt_count(const pe_ckpt_t *c)
{
    return c->n;
}

const pe_tensor_t *pe_ckpt_at(const pe_ckpt_t *c, size_t i)
{
    return i < c->n ? c->idx[i].t : NULL;
}

/* "[4, *]": a shape for messages; -1 (any) prints as '*'. */
static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++) {
        if (shape[d] < 0)
            k += (size_t)snprintf(buf + k, n - k, "%s*", d ? ", " : "");
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    }
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

int pe_ckpt_expect(const pe_ckpt_t *c, const char *name, unsigned dtypes, int ndim,
                   const int64_t *shape, const pe_tensor_t **out, pb_err_t *err)
{
    if (out != NULL)
        *out = NULL;
    const entry_t *e = find(c, name);
    if (e == NULL)
        return pb_err_set(err, PB_ENOTFOUND, name, "%s: tensor '%s' not found in the checkpoint",
                          c->dir, name);
    const pe_tensor_t *t = e->t;
    const char *file = c->shards[e->shard].file;
    if (!(dtypes & (1u << t->dtype)))
        return pb_err_set(err, PB_EPARSE, name, "%s/%s: tensor '%s': dtype %s not accepted",
                          c->dir, file, name, pe_dtype_name(t->dtype));
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = shape[d] < 0 || shape[d] == t->shape[d];
    if (!ok) {
        char have[96], want[96];
        shape_str(have, sizeof have, t->ndim, t->shape);
        shape_str(want, sizeof want, ndim, shape);
        return pb_err_set(err, PB_EPARSE, name, "%s/%s: tensor '%s': shape %s, want %s", c->dir,
                          file, name, have, want);
    }
    if (out != NULL)
        *out = t;
    return 0;
}
