/* Baseline backends. `oracle` answers every item's reference, so a run must
 * score 1.0 (a check on the scorer); `random` answers a deterministic random
 * string shaped like the reference (the floor). Neither reads the prompt.
 * Model option "delay_ms" (0-60000) adds a simulated latency per item, which
 * the tests use to make tasks slow enough to cancel or time out. */
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
} baseline_t;

static int baseline_open(const json_t *model, uint64_t seed, int random, pb_backend_t **out,
                         pb_err_t *err)
{
    *out = NULL;
    int64_t delay_ms;
    int rc = pb_json_int(model, "delay_ms", 0, 0, 60000, &delay_ms, "model", err);
    if (rc)
        return rc;
    baseline_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    b->random = random;
    /* Distinct from the suites' item keys, which also start from the seed. */
    b->key = pb_hash_u64(pb_hash_str(PB_HASH_INIT, "backend:random"), seed);
    b->delay_us = delay_ms * 1000;
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

/* Same length as the reference; whitespace kept in place so the answer
 * survives exact-match normalisation; digits when the reference is digits
 * and spaces only, else lowercase letters. Seeded by (seed, prompt hash) so
 * the same item gets the same answer on any worker. */
static char *random_answer(uint64_t key, const ps_item_t *item)
{
    const char *ref = item->reference;
    size_t n = strlen(ref);
    int digits = 1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)ref[i]) && !isspace((unsigned char)ref[i]))
            digits = 0;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    pb_rng_t r;
    pb_rng_seed(&r, key, item->prompt_hash);
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
        q->text = b->random ? random_answer(b->key, q->item) : strdup(q->item->reference);
        if (q->text == NULL)
            return pb_err_set(err, PB_ENOMEM, "", "out of memory");
        q->tokens = (int64_t)strlen(q->text);
        q->latency_us = pb_now_us() - t0;
    }
    return 0;
}

static void baseline_close(pb_backend_t *be) { free(be); }

const pb_backend_ops_t pb_backend__oracle = {
    .name = "oracle",
    .open = oracle_open,
    .generate = baseline_generate,
    .close = baseline_close,
};

const pb_backend_ops_t pb_backend__random = {
    .name = "random",
    .open = random_open,
    .generate = baseline_generate,
    .close = baseline_close,
};
