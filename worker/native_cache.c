/* The per-worker cache of native models (native_cache.h): a few slots under
 * one mutex, each keyed by checkpoint path, thread count and the canonical
 * text of the PE override. A slot being loaded is marked so that a second
 * task naming it waits instead of mapping the checkpoint twice. */
#include "worker/native_cache.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/json.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"

typedef struct slot {
    char *key;         /* NULL: free */
    int loading;       /* a thread is loading this key */
    int refs;          /* backends holding the entry */
    uint64_t last_use; /* tick of the last acquire, for eviction */
    pb_native_entry_t *e;
} slot_t;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cache_cond = PTHREAD_COND_INITIALIZER;
static slot_t slots[PB_NATIVE_CACHE_MAX];
static uint64_t tick;

static void entry_free(pb_native_entry_t *e)
{
    if (e == NULL)
        return;
    pe_model_close(e->model);
    pe_tok_free(e->tok);
    pe_ckpt_close(e->ck);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

static void slot_clear(slot_t *s)
{
    entry_free(s->e);
    free(s->key);
    memset(s, 0, sizeof *s);
}

/* "threads\npath\ncanonical pe" (malloc'd), NULL when out of memory. */
static char *make_key(const char *dir, const json_t *pe, int threads)
{
    char *canon = pe && !json_is_null(pe) ? pb_json_canonical(pe) : NULL;
    pb_buf_t b;
    pb_buf_init(&b, 0);
    int rc = pe && !json_is_null(pe) && canon == NULL ? PB_ENOMEM : 0;
    rc = rc ? rc : pb_buf_printf(&b, "%d\n%s\n%s", threads, dir, canon ? canon : "");
    free(canon);
    if (rc) {
        pb_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Stream file dir/name into h; -1 when it cannot be read. */
static int hash_file(pb_sha256_t *h, const char *dir, const char *name)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return -1;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    static __thread unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        pb_sha256_update(h, buf, n);
    int bad = ferror(f);
    fclose(f);
    return bad ? -1 : 0;
}

/* The entry's content hashes: every *.safetensors file of dir in name
 * order (name, NUL, bytes), and config.json. One pass over the weights,
 * paid once per load; an unreadable file leaves its hash empty. */
static void content_hashes(const char *dir, pb_native_entry_t *e)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 12 && strcmp(de->d_name + len - 12, ".safetensors") == 0 &&
            pb_grow(&names, &cap, n + 1, sizeof *names, 8) == 0 &&
            (names[n] = strdup(de->d_name)) != NULL)
            n++;
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    pb_sha256_t h;
    unsigned char dig[PB_SHA256_LEN];
    int ok = n > 0;
    pb_sha256_init(&h);
    for (size_t i = 0; i < n; i++) {
        pb_sha256_update(&h, names[i], strlen(names[i]) + 1);
        ok = ok && hash_file(&h, dir, names[i]) == 0;
        free(names[i]);
    }
    free(names);
    pb_sha256_final(&h, dig);
    if (ok)
        pb_sha256_to_hex(dig, e->weights_sha256);
    pb_sha256_init(&h);
    if (hash_file(&h, dir, "config.json") == 0) {
        pb_sha256_final(&h, dig);
        pb_sha256_to_hex(dig, e->config_sha256);
    }
}

/* Load checkpoint, tokenizer and model: the slow part, with no lock held. */
static int entry_load(const char *dir, const json_t *pe, int threads, pb_native_entry_t **out,
                      pb_err_t *err)
{
    struct stat st;
    *out = NULL;
    if (stat(dir, &st) != 0)
        return pb_err_set(err, PB_ENOTFOUND, "model.path", "checkpoint directory %s: %s", dir,
                          strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return pb_err_set(err, PB_ENOTFOUND, "model.path",
                          "checkpoint directory %s: not a directory", dir);
    pb_native_entry_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    pthread_mutex_init(&e->lock, NULL);
    int64_t t0 = pb_now_us();
    int rc = pe_ckpt_open(dir, &e->ck, err);
    rc = rc ? rc : pe_tok_open_dir(dir, &e->tok, err);
    rc = rc ? rc : pe_model_open(e->ck, pe && !json_is_null(pe) ? pe : NULL, threads, &e->model,
                                 err);
    if (rc) {
        entry_free(e);
        return rc;
    }
    pe_model_dims(e->model, &e->dims);
    content_hashes(dir, e);
    pb_info("native model %s loaded in %.1f ms (%d layers, d_model %d, vocab %d)", dir,
            (double)(pb_now_us() - t0) / 1e3, e->dims.n_layers, e->dims.d_model, e->dims.vocab);
    *out = e;
    return 0;
}

/* A slot for a new key: a free one, else the least recently used unused
 * one (emptied). NULL when every slot is in use or loading. */
static slot_t *slot_for_new(void)
{
    slot_t *best = NULL;
    for (size_t i = 0; i < PB_ARRAY_LEN(slots); i++) {
        if (slots[i].key == NULL)
            return &slots[i];
        if (!slots[i].loading && slots[i].refs == 0 &&
            (best == NULL || slots[i].last_use < best->last_use))
            best = &slots[i];
    }
    if (best)
        slot_clear(best);
    return best;
}

int pb_native_acquire(const char *dir, const json_t *pe, int threads, pb_native_entry_t **out,
                      pb_err_t *err)
{
    *out = NULL;
    char *key = make_key(dir, pe, threads);
    if (key == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    slot_t *s = NULL;
    pthread_mutex_lock(&cache_lock);
    for (;;) {
        s = NULL;
        for (size_t i = 0; i < PB_ARRAY_LEN(slots) && s == NULL; i++)
            if (slots[i].key && strcmp(slots[i].key, key) == 0)
                s = &slots[i];
        if (s == NULL || !s->loading)
            break;
        pthread_cond_wait(&cache_cond, &cache_lock);
    }
    if (s) {
        s->refs++;
        s->last_use = ++tick;
        *out = s->e;
        pthread_mutex_unlock(&cache_lock);
        free(key);
        return 0;
    }
    s = slot_for_new();
    if (s == NULL) {
        pthread_mutex_unlock(&cache_lock);
        free(key);
        return pb_err_set(err, PB_EBACKEND, "model.path",
                          "this worker already holds %d native models in use",
                          PB_NATIVE_CACHE_MAX);
    }
    s->key = key;
    s->loading = 1;
    pthread_mutex_unlock(&cache_lock);

    pb_native_entry_t *e = NULL;
    int rc = entry_load(dir, pe, threads, &e, err);

    pthread_mutex_lock(&cache_lock);
    if (rc) {
        slot_clear(s); /* frees key */
    } else {
        s->e = e;
        s->loading = 0;
        s->refs = 1;
        s->last_use = ++tick;
        *out = e;
    }
    pthread_cond_broadcast(&cache_cond);
    pthread_mutex_unlock(&cache_lock);
    return rc;
}

void pb_native_release(pb_native_entry_t *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < PB_ARRAY_LEN(slots); i++)
        if (slots[i].e == e && slots[i].refs > 0)
            slots[i].refs--;
    pthread_mutex_unlock(&cache_lock);
}

int pb_native_flush(void)
{
    int kept = 0;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < PB_ARRAY_LEN(slots); i++) {
        if (slots[i].key == NULL)
            continue;
        if (slots[i].refs == 0 && !slots[i].loading)
            slot_clear(&slots[i]);
        else
            kept++;
    }
    pthread_mutex_unlock(&cache_lock);
    return kept;
}
