/* Baseline backends. `oracle` answers every item's reference, so a run must
 * score 1.0 (a check on the scorer); `random` answers a deterministic random
 * string shaped like the reference (the floor). Neither reads the prompt.
 * Model option "delay_ms" (0-60000) adds a simulated latency per item, which
 * the tests use to make tasks slow enough to cancel or time out. Option
 * "tokenizer": "words" gives the model a tokenizer (a word-level
 * pre-tokenizer: each run of letters and digits is a token, each other
 * non-space byte one too), so suites size prompts in tokens; without it
 * they size in characters. Option "error_rate" (0-1, oracle only) makes the
 * oracle answer like `random` on that fraction of items, chosen by prompt
 * hash: a deliberately worse model for regression tests. */
#include "worker/backend_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/rng.h"
#include "common/util.h"

typedef struct baseline {
    int random;       /* 0 = oracle, 1 = random */
    uint64_t key;     /* random: keyed by the job seed */
    int64_t delay_us; /* simulated latency per item */
    int words;        /* has the "words" tokenizer */
    double error_rate; /* oracle: fraction of items answered wrong */
} baseline_t;

static int baseline_open(const json_t *model, uint64_t seed, int random, pb_backend_t **out,
                         pb_err_t *err)
{
    *out = NULL;
    int64_t delay_ms;
    const char *tok = NULL;
    int rc = pb_json_int(model, "delay_ms", 0, 0, 60000, &delay_ms, "model", err);
    rc = rc ? rc : pb_json_str(model, "tokenizer", NULL, 0, &tok, "model", err);
    double error_rate = 0;
    rc = rc ? rc : pb_json_num(model, "error_rate", 0, 0, 1, &error_rate, "model", err);
    if (rc)
        return rc;
    if (tok && strcmp(tok, "words") != 0)
        return pb_err_set(err, PB_EINVAL, "model.tokenizer",
                          "unknown tokenizer '%s' (the baselines know \"words\")", tok);
    baseline_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    b->random = random;
    /* Distinct from the suites' item keys, which also start from the seed. */
    b->key = pb_hash_u64(pb_hash_str(PB_HASH_INIT, "backend:random"), seed);
    b->delay_us = delay_ms * 1000;
    b->words = tok != NULL;
    b->error_rate = error_rate;
    *out = (pb_backend_t *)b;
    return 0;
}

static int oracle_open(const json_t *model, uint64_t seed, pb_backend_t **out, pb_err_t *err)
{
    return baseline_open(model, seed, 0, out, err);
}

static int random_open(const json_t *model, uint64_t seed, pb_backend_t **out, pb_err_t *err)
{
    return baseline_open(model, seed, 1, out, err);
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One of the item's meta "choices" (strings) when it has them (yes/no
 * questions: the floor is a coin, not a random string); otherwise the same
 * length as the reference, whitespace kept in place so the answer survives
 * exact-match normalisation, digits when the reference is digits and spaces
 * only, else lowercase letters. Seeded by (seed, prompt hash) so the same
 * item gets the same answer on any worker. */
static char *random_answer(uint64_t key, const ps_item_t *item)
{
    pb_rng_t r;
    pb_rng_seed(&r, key, item->prompt_hash);
    const json_t *choices = json_object_get(item->meta, "choices");
    if (json_array_size(choices) > 0) {
        const char *c = json_string_value(
            json_array_get(choices, pb_rng_below(&r, json_array_size(choices))));
        return strdup(c ? c : "");
    }
    const char *ref = item->reference;
    size_t n = strlen(ref);
    int digits = 1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)ref[i]) && !isspace((unsigned char)ref[i]))
            digits = 0;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (isspace((unsigned char)ref[i]))
            s[i] = ref[i];
        else if (digits)
            s[i] = (char)('0' + pb_rng_below(&r, 10));
        else
            s[i] = (char)('a' + pb_rng_below(&r, 26));
    }
    s[n] = '\0';
    return s;
}

/* The oracle's deliberate mistakes: the same items on every worker. */
static int wrong_here(const baseline_t *b, const ps_item_t *item)
{
    if (b->error_rate <= 0)
        return 0;
    uint64_t h = pb_hash_u64(pb_hash_str(PB_HASH_INIT, "backend:oracle-error"), item->prompt_hash);
    return (double)(h >> 11) * 0x1.0p-53 < b->error_rate;
}

static int baseline_generate(pb_backend_t *be, pb_gen_req_t *reqs, size_t n, pb_err_t *err)
{
    baseline_t *b = (baseline_t *)be;
    for (size_t i = 0; i < n; i++) {
        pb_gen_req_t *q = &reqs[i];
        int64_t t0 = pb_now_us();
        if (q->item == NULL || q->item->reference == NULL) {
            q->error = strdup("item has no reference");
            if (q->error == NULL)
                return pb_err_set(err, PB_ENOMEM, "", "out of memory");
            continue;
        }
        if (b->delay_us > 0)
            sleep_us(b->delay_us);
        q->text = b->random || wrong_here(b, q->item) ? random_answer(b->key, q->item)
                                                      : strdup(q->item->reference);
        if (q->text == NULL)
            return pb_err_set(err, PB_ENOMEM, "", "out of memory");
        q->tokens = (int64_t)strlen(q->text);
        q->latency_us = pb_now_us() - t0;
    }
    return 0;
}

static void baseline_close(pb_backend_t *be) { free(be); }

/* Ranking suites: the oracle scores a document by its qrels grade, random
 * by a seeded hash (backend_retrieval.c). */
static int baseline_score_pairs(pb_backend_t *be, const ps_item_t *query,
                                const char *const *docs, size_t n, double *scores, pb_err_t *err)
{
    baseline_t *b = (baseline_t *)be;
    (void)err;
    return b->random ? pb_backend__random_pairs(b->key, query, docs, n, scores)
                     : pb_backend__grade_pairs(query, docs, n, scores);
}

/* The "words" tokenizer: calls fn(ctx, start, len) for each token of text. */
static void words_split(const char *text, size_t len, void (*fn)(void *, const char *, size_t),
                        void *ctx)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        if (isspace(c)) {
            i++;
            continue;
        }
        size_t j = i + 1;
        if (isalnum(c) || c >= 0x80)
            while (j < len && (isalnum((unsigned char)text[j]) || (unsigned char)text[j] >= 0x80))
                j++;
        fn(ctx, text + i, j - i);
        i = j;
    }
}

static void count_one(void *ctx, const char *tok, size_t n)
{
    (void)tok;
    (void)n;
    (*(int64_t *)ctx)++;
}

static int baseline_count_tokens(pb_backend_t *be, const char *text, size_t len, int64_t *n)
{
    *n = 0;
    if (!((baseline_t *)be)->words)
        return PB_EUNSUPPORTED;
    words_split(text, len, count_one, n);
    return 0;
}

typedef struct id_list {
    int32_t *ids;
    size_t n, cap;
    int oom;
} id_list_t;

/* A token's id: its hash, folded to a non-negative int32. */
static void id_one(void *ctx, const char *tok, size_t n)
{
    id_list_t *l = ctx;
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int32_t *p = realloc(l->ids, cap * sizeof *p);
        if (p == NULL) {
            l->oom = 1;
            return;
        }
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n++] = (int32_t)(pb_hash_bytes(PB_HASH_INIT, tok, n) & 0x7fffffff);
}

static int baseline_tokenize(pb_backend_t *be, const char *text, size_t len, int32_t **ids,
                             size_t *n)
{
    id_list_t l = {0};
    *ids = NULL;
    *n = 0;
    if (!((baseline_t *)be)->words)
        return PB_EUNSUPPORTED;
    words_split(text, len, id_one, &l);
    if (l.oom) {
        free(l.ids);
        return PB_ENOMEM;
    }
    *ids = l.ids;
    *n = l.n;
    return 0;
}

const pb_backend_ops_t pb_backend__oracle = {
    .name = "oracle",
    .open = oracle_open,
    .generate = baseline_generate,
    .close = baseline_close,
    .count_tokens = baseline_count_tokens,
    .tokenize = baseline_tokenize,
    .score_pairs = baseline_score_pairs,
};

const pb_backend_ops_t pb_backend__random = {
    .name = "random",
    .open = random_open,
    .generate = baseline_generate,
    .close = baseline_close,
    .count_tokens = baseline_count_tokens,
    .tokenize = baseline_tokenize,
    .score_pairs = baseline_score_pairs,
};
