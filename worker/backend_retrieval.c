/* Baseline ranking backends, so ranking suites have real numbers without a
 * neural model: `bm25` (a cross encoder: score_pairs) and `hashbow` (a dual
 * encoder: hashed bag-of-words embeddings), plus the pair scores of the
 * `oracle` and `random` baselines. Words are the runs of ASCII letters and
 * digits, lowercased; neither backend generates text. */
#include "worker/backend_int.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/rng.h"
#include "common/util.h"

#define BM25_MAX_TERMS 256 /* distinct query words counted; the rest are ignored */
#define WORD_MAX 64        /* longer words are hashed by their first WORD_MAX bytes */

/* Calls fn(ctx, hash) for each word of text: FNV-1a of its lowercased bytes. */
static void each_word(const char *text, void (*fn)(void *, uint64_t), void *ctx)
{
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        if (!isalnum(*p)) {
            p++;
            continue;
        }
        char w[WORD_MAX];
        size_t n = 0;
        for (; isalnum(*p); p++)
            if (n < WORD_MAX)
                w[n++] = (char)tolower(*p);
        fn(ctx, pb_hash_bytes(PB_HASH_INIT, w, n));
    }
}

/* Neither baseline writes text: every request gets an error, so a
 * generating suite run against them fails item by item, not the worker. */
static int no_generate(pb_backend_t *be, pb_gen_req_t *reqs, size_t n, pb_err_t *err)
{
    (void)be;
    for (size_t i = 0; i < n; i++)
        if ((reqs[i].error = strdup("this backend ranks documents and cannot generate text")) ==
            NULL)
            return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    return 0;
}

/* ---- bm25 ---- */

/* Okapi BM25 with Lucene's idf, log(1 + (N - df + 0.5) / (df + 0.5)), and
 * Anserini's defaults k1 = 0.9, b = 0.4 (model options "k1" in [0, 10], "b"
 * in [0, 1]). A cross encoder sees only the documents of one call, so N,
 * df and the average length are those of the call's documents (the
 * query's candidate pool). */
typedef struct bm25 {
    double k1, b;
} bm25_t;

static int bm25_open(const json_t *model, uint64_t seed, pb_backend_t **out, pb_err_t *err)
{
    double k1, b;
    (void)seed;
    *out = NULL;
    int rc = pb_json_num(model, "k1", 0.9, 0, 10, &k1, "model", err);
    rc = rc ? rc : pb_json_num(model, "b", 0.4, 0, 1, &b, "model", err);
    if (rc)
        return rc;
    bm25_t *m = malloc(sizeof *m);
    if (m == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    m->k1 = k1;
    m->b = b;
    *out = (pb_backend_t *)m;
    return 0;
}

typedef struct terms {
    uint64_t h[BM25_MAX_TERMS];
    size_t n;
    int *tf;   /* the current document's counts, n of them */
    size_t len; /* its length in words */
} terms_t;

static void add_term(void *ctx, uint64_t h)
{
    terms_t *t = ctx;
    for (size_t i = 0; i < t->n; i++)
        if (t->h[i] == h)
            return;
    if (t->n < BM25_MAX_TERMS)
        t->h[t->n++] = h;
}

static void count_term(void *ctx, uint64_t h)
{
    terms_t *t = ctx;
    t->len++;
    for (size_t i = 0; i < t->n; i++)
        if (t->h[i] == h) {
            t->tf[i]++;
            return;
        }
}

static int bm25_score_pairs(pb_backend_t *be, const ps_item_t *query, const char *const *docs,
                            size_t n, double *scores, pb_err_t *err)
{
    const bm25_t *m = (const bm25_t *)be;
    terms_t t = {.n = 0};
    each_word(query->prompt ? query->prompt : "", add_term, &t);
    size_t nt = t.n ? t.n : 1;
    int *tf = calloc(n * nt + 1, sizeof *tf);
    double *len = malloc((n + 1) * sizeof *len), *df = calloc(nt, sizeof *df), avg = 0;
    int rc = 0;
    if (tf == NULL || len == NULL || df == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    for (size_t d = 0; d < n; d++) {
        t.tf = &tf[d * nt];
        t.len = 0;
        each_word(docs[d], count_term, &t);
        len[d] = (double)t.len;
        avg += len[d];
        for (size_t i = 0; i < t.n; i++)
            df[i] += t.tf[i] > 0;
    }
    avg = n ? avg / (double)n : 0;
    for (size_t d = 0; d < n; d++) {
        double s = 0, norm = m->k1 * (1 - m->b + (avg > 0 ? m->b * len[d] / avg : 0));
        for (size_t i = 0; i < t.n; i++) {
            double f = tf[d * nt + i];
            if (f > 0)
                s += log(1 + ((double)n - df[i] + 0.5) / (df[i] + 0.5)) * f * (m->k1 + 1) /
                     (f + norm);
        }
        scores[d] = s;
    }
out:
    free(tf);
    free(len);
    free(df);
    return rc;
}

static void free_close(pb_backend_t *be) { free(be); }

const pb_backend_ops_t pb_backend__bm25 = {
    .name = "bm25",
    .open = bm25_open,
    .generate = no_generate,
    .close = free_close,
    .score_pairs = bm25_score_pairs,
};

/* ---- hashbow ---- */

/* Each word counts in dimension hash % dim ("dim" in [8, 65536], default
 * 256), and the count vector is L2-normalised, so the dot product of two
 * embeddings is the cosine of their word counts up to hash collisions. An
 * empty text embeds as zeros. */
typedef struct hashbow {
    size_t dim;
} hashbow_t;

static int hashbow_open(const json_t *model, uint64_t seed, pb_backend_t **out, pb_err_t *err)
{
    int64_t dim;
    (void)seed;
    *out = NULL;
    int rc = pb_json_int(model, "dim", 256, 8, 65536, &dim, "model", err);
    if (rc)
        return rc;
    hashbow_t *h = malloc(sizeof *h);
    if (h == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    h->dim = (size_t)dim;
    *out = (pb_backend_t *)h;
    return 0;
}

typedef struct bow {
    float *v;
    size_t dim;
} bow_t;

static void bow_add(void *ctx, uint64_t h)
{
    bow_t *b = ctx;
    b->v[h % b->dim] += 1.0f;
}

static int hashbow_embed(pb_backend_t *be, const char *const *texts, size_t n, float **out,
                         size_t *dim, pb_err_t *err)
{
    size_t d = ((hashbow_t *)be)->dim;
    *out = NULL;
    *dim = 0;
    float *e = calloc(n * d + 1, sizeof *e);
    if (e == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        bow_t b = {&e[i * d], d};
        double ss = 0;
        each_word(texts[i] ? texts[i] : "", bow_add, &b);
        for (size_t k = 0; k < d; k++)
            ss += (double)b.v[k] * b.v[k];
        if (ss > 0)
            for (size_t k = 0; k < d; k++)
                b.v[k] = (float)(b.v[k] / sqrt(ss));
    }
    *out = e;
    *dim = d;
    return 0;
}

const pb_backend_ops_t pb_backend__hashbow = {
    .name = "hashbow",
    .open = hashbow_open,
    .generate = no_generate,
    .close = free_close,
    .embed = hashbow_embed,
};

/* ---- oracle and random pair scores ---- */

int pb_backend__grade_pairs(const ps_item_t *query, const char *const *docs, size_t n,
                            double *scores)
{
    const json_t *grades = json_object_get(query->meta, "grades");
    char hex[17];
    for (size_t i = 0; i < n; i++) {
        pb_hash_hex(pb_hash_str(PB_HASH_INIT, docs[i]), hex);
        const json_t *g = json_object_get(grades, hex);
        scores[i] = json_is_integer(g) ? (double)json_integer_value(g) : 0.0;
    }
    return 0;
}

int pb_backend__random_pairs(uint64_t key, const ps_item_t *query, const char *const *docs,
                             size_t n, double *scores)
{
    uint64_t q = pb_hash_u64(key, query->prompt_hash);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = pb_hash_u64(q, pb_hash_str(PB_HASH_INIT, docs[i]));
        h ^= h >> 29; /* FNV's low bits mix poorly; fold the high ones in */
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 32;
        scores[i] = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    }
    return 0;
}
