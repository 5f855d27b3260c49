/* The `native` backend: checkpoints run by the engine (engine/model.h) in
 * the worker's process. Model spec {"backend": "native", "path": DIR,
 * "pe"?: override, "max_tokens"?, "temperature"? (0 = greedy), "top_p"?,
 * "top_k"?, "stop"?: [strings], "context"? (KV capacity, 0 = the model's),
 * "pool"?: "mean"|"cls"|"last" (embeddings), "threads"? (the worker's
 * --threads)}. The model comes from the worker's cache (native_cache.h);
 * each backend keeps its own sequence state. Sampling is seeded by the job
 * seed and the prompt, so a prediction does not depend on the batch or the
 * worker it ran on. */
#include "worker/backend_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/rng.h"
#include "common/util.h"
#include "worker/native_cache.h"

#define NATIVE_STOP_MAX 16           /* model.stop strings */
#define NATIVE_DEFAULT_TOKENS 64     /* a request without a budget */
#define NATIVE_CONTEXT_MAX (1 << 20) /* model.context */

typedef struct native {
    pb_native_entry_t *e;
    pe_state_t *st;
    uint64_t key; /* sampling seed base */
    int max_tokens;
    float temperature, top_p;
    int top_k;
    pe_pool_t pool;
    const char *stop[NATIVE_STOP_MAX];
    size_t n_stop, stop_len_max;
    json_t *model; /* a reference: stop strings point into it */
} native_t;

static void native_close(pb_backend_t *b)
{
    native_t *nb = (native_t *)b;
    if (nb == NULL)
        return;
    pe_state_free(nb->st);
    pb_native_release(nb->e);
    json_decref(nb->model);
    free(nb);
}

/* The sampling and pooling options (their shapes were checked at submit by
 * ps_native_model_check; a task sent by hand is checked again here). */
static int parse_opts(native_t *nb, const json_t *m, pb_err_t *err)
{
    int64_t mt, tk;
    double temp, tp;
    const char *pool;
    int rc = pb_json_int(m, "max_tokens", 0, 0, 1 << 20, &mt, "model", err);
    rc = rc ? rc : pb_json_int(m, "top_k", 0, 0, 1 << 20, &tk, "model", err);
    rc = rc ? rc : pb_json_num(m, "temperature", 0, 0, 100, &temp, "model", err);
    rc = rc ? rc : pb_json_num(m, "top_p", 1, 0, 1, &tp, "model", err);
    rc = rc ? rc : pb_json_str(m, "pool", "mean", 0, &pool, "model", err);
    if (rc)
        return rc;
    nb->max_tokens = (int)mt;
    nb->top_k = (int)tk;
    nb->temperature = (float)temp;
    nb->top_p = tp > 0 ? (float)tp : 1.0f;
    if (strcmp(pool, "mean") == 0)
        nb->pool = PE_POOL_MEAN;
    else if (strcmp(pool, "cls") == 0)
        nb->pool = PE_POOL_CLS;
    else if (strcmp(pool, "last") == 0)
        nb->pool = PE_POOL_LAST;
    else
        return pb_err_set(err, PB_EINVAL, "model.pool",
                          "model.pool must be \"mean\", \"cls\" or \"last\"");
    const json_t *stop = json_object_get(m, "stop"), *v;
    size_t i;
    if (stop == NULL || json_is_null(stop))
        return 0;
    if (!json_is_array(stop) || json_array_size(stop) > NATIVE_STOP_MAX)
        return pb_err_set(err, PB_EINVAL, "model.stop",
                          "model.stop must be an array of at most %d strings", NATIVE_STOP_MAX);
    json_array_foreach(stop, i, v) {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return pb_err_set(err, PB_EINVAL, "model.stop",
                              "model.stop[%zu] must be a non-empty string", i);
        nb->stop[nb->n_stop++] = json_string_value(v);
        if (json_string_length(v) > nb->stop_len_max)
            nb->stop_len_max = json_string_length(v);
    }
    return 0;
}

static int native_open(const json_t *model, uint64_t seed, pb_backend_t **out, pb_err_t *err)
{
    const char *path;
    int64_t threads, context;
    *out = NULL;
    int rc = pb_json_str(model, "path", NULL, 1, &path, "model", err);
    rc = rc ? rc : pb_json_int(model, "threads", 0, 0, 4096, &threads, "model", err);
    rc = rc ? rc : pb_json_int(model, "context", 0, 0, NATIVE_CONTEXT_MAX, &context, "model", err);
    if (rc)
        return rc;
    const json_t *pe = json_object_get(model, "pe");
    if (pe && !json_is_null(pe) && !json_is_object(pe))
        return pb_err_set(err, PB_EINVAL, "model.pe", "model.pe must be an object");
    native_t *nb = calloc(1, sizeof *nb);
    if (nb == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    nb->model = json_incref((json_t *)model);
    nb->key = pb_hash_u64(pb_hash_str(PB_HASH_INIT, "backend:native"), seed);
    rc = parse_opts(nb, model, err);
    rc = rc ? rc : pb_native_acquire(path, pe, (int)threads, &nb->e, err);
    rc = rc ? rc : pe_state_create(nb->e->model, (int)context, 0, &nb->st, err);
    if (rc) {
        native_close((pb_backend_t *)nb);
        return rc;
    }
    *out = (pb_backend_t *)nb;
    return 0;
}

/* ---- generation with stop strings ---- */

/* First occurrence of needle[0, m) in hay[0, n), or NULL. */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; m && i + m <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i + 1, needle + 1, m - 1) == 0)
            return hay + i;
    return NULL;
}

/* What the engine's on_token callback sees: the text so far (each token
 * decoded alone, enough to spot a stop string) and the stop strings. */
typedef struct gen_watch {
    const native_t *nb;
    pb_buf_t text;
    int failed;
} gen_watch_t;

static int on_token(void *arg, int32_t id)
{
    gen_watch_t *w = arg;
    const native_t *nb = w->nb;
    if (nb->n_stop == 0 || w->failed)
        return w->failed;
    char *piece = NULL;
    size_t len = 0, before = w->text.len;
    if (pe_tok_decode(nb->e->tok, &id, 1, 1, &piece, &len) ||
        pb_buf_append(&w->text, piece, len)) {
        free(piece);
        w->failed = 1;
        return 1;
    }
    free(piece);
    /* Only a match that ends in the new piece is new. */
    size_t from = before >= nb->stop_len_max ? before - nb->stop_len_max + 1 : 0;
    for (size_t k = 0; k < nb->n_stop; k++)
        if (find_bytes(w->text.data + from, w->text.len - from, nb->stop[k], strlen(nb->stop[k])))
            return 1;
    return 0;
}

/* Cut text at the earliest stop string: the answer stops before it. */
static void cut_at_stop(const native_t *nb, char *text, size_t *len)
{
    for (size_t k = 0; k < nb->n_stop; k++) {
        const char *p = find_bytes(text, *len, nb->stop[k], strlen(nb->stop[k]));
        if (p) {
            *len = (size_t)(p - text);
            text[*len] = '\0';
        }
    }
}

/* One request: encode, generate under the model's lock, decode. A problem
 * with this prompt is the request's error, not the batch's. */
static int generate_one(native_t *nb, pb_gen_req_t *q)
{
    pb_native_entry_t *e = nb->e;
    int32_t *ids = NULL, *gen = NULL;
    size_t n = 0, n_gen = 0, len = 0;
    char *text = NULL;
    gen_watch_t w = {.nb = nb};
    pb_err_t err = {0};
    int64_t t0 = pb_now_us();
    pb_buf_init(&w.text, 0);
    const char *prompt = q->item->prompt ? q->item->prompt : "";
    int rc = pe_tok_encode(e->tok, prompt, strlen(prompt), 1, &ids, &n);
    if (rc) {
        pb_err_set(&err, rc, "", "cannot tokenize the prompt: %s", pb_strerror(rc));
        goto out;
    }
    int cap = pe_state_capacity(nb->st);
    if (n == 0 || n >= (size_t)cap) {
        rc = pb_err_set(&err, PB_ETOOBIG, "", "the prompt is %zu tokens; the context holds %d",
                        n, cap);
        goto out;
    }
    int32_t eos = pe_tok_eos(e->tok);
    pe_gen_params_t p = {
        .max_tokens = nb->max_tokens > 0   ? nb->max_tokens
                      : q->max_tokens > 0 ? q->max_tokens
                                          : NATIVE_DEFAULT_TOKENS,
        .temperature = nb->temperature,
        .top_p = nb->top_p,
        .top_k = nb->top_k,
        .seed = pb_hash_u64(nb->key, q->item->prompt_hash),
        .stop_ids = eos >= 0 ? &eos : NULL,
        .n_stop = eos >= 0 ? 1 : 0,
        .on_token = on_token,
        .arg = &w,
    };
    pthread_mutex_lock(&e->lock);
    rc = pe_generate(e->model, nb->st, ids, n, &p, &gen, &n_gen, NULL, &err);
    pthread_mutex_unlock(&e->lock);
    if (rc == 0 && w.failed)
        rc = pb_err_set(&err, PB_ENOMEM, "", "out of memory");
    if (rc == 0 && (rc = pe_tok_decode(e->tok, gen, n_gen, 1, &text, &len)))
        pb_err_set(&err, rc, "", "cannot decode the output: %s", pb_strerror(rc));
    if (rc)
        goto out;
    cut_at_stop(nb, text, &len);
    q->text = text;
    text = NULL;
    q->tokens = (int64_t)n_gen;
out:
    if (rc) {
        q->error = strdup(err.msg[0] ? err.msg : pb_strerror(rc));
        if (q->error == NULL)
            rc = PB_ENOMEM;
    }
    q->latency_us = pb_now_us() - t0;
    free(ids);
    free(gen);
    free(text);
    pb_buf_free(&w.text);
    return rc == PB_ENOMEM ? rc : 0;
}

static int native_generate(pb_backend_t *b, pb_gen_req_t *reqs, size_t n, pb_err_t *err)
{
    native_t *nb = (native_t *)b;
    for (size_t i = 0; i < n; i++)
        if (generate_one(nb, &reqs[i]))
            return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    return 0;
}

/* ---- tokenizer and embeddings ---- */

static int native_count_tokens(pb_backend_t *b, const char *text, size_t len, int64_t *n)
{
    return pe_tok_count(((native_t *)b)->e->tok, text, len, n);
}

static int native_tokenize(pb_backend_t *b, const char *text, size_t len, int32_t **ids,
                           size_t *n)
{
    return pe_tok_encode(((native_t *)b)->e->tok, text, len, 0, ids, n);
}

static int native_embed(pb_backend_t *b, const char *const *texts, size_t n, float **out,
                        size_t *dim, pb_err_t *err)
{
    native_t *nb = (native_t *)b;
    pb_native_entry_t *e = nb->e;
    size_t d = (size_t)e->dims.d_model;
    int32_t *ids = NULL;
    size_t nt = 0;
    int rc = 0;
    *out = NULL;
    *dim = d;
    float *m = calloc(n ? n * d : 1, sizeof *m);
    if (m == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    int cap = pe_state_capacity(nb->st);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if ((rc = pe_tok_encode(e->tok, texts[i], strlen(texts[i]), 1, &ids, &nt))) {
            pb_err_set(err, rc, "", "cannot tokenize text %zu: %s", i, pb_strerror(rc));
            break;
        }
        /* A text longer than the context is embedded by its head. */
        size_t use = nt < (size_t)cap ? nt : (size_t)cap;
        if (use == 0) {
            free(ids);
            ids = NULL;
            continue; /* an empty text: the zero vector */
        }
        pthread_mutex_lock(&e->lock);
        rc = pe_embed(e->model, nb->st, ids, use, nb->pool, m + i * d, err);
        pthread_mutex_unlock(&e->lock);
        free(ids);
        ids = NULL;
    }
    if (rc) {
        free(m);
        return rc == PB_ENOMEM || rc == PB_EINVAL ? rc : PB_EBACKEND;
    }
    *out = m;
    return 0;
}

/* ---- log-likelihood of continuations ---- */

/* ids of ctx_len bytes of text followed by cont (add_special as generate
 * encodes a prompt); *ids malloc'd. */
static int encode_pair(const pe_tok_t *tok, const char *ctx, size_t ctx_len, const char *cont,
                       int32_t **ids, size_t *n)
{
    size_t cl = strlen(cont);
    char *s = malloc(ctx_len + cl + 1);
    if (s == NULL)
        return PB_ENOMEM;
    memcpy(s, ctx, ctx_len);
    memcpy(s + ctx_len, cont, cl + 1);
    int rc = pe_tok_encode(tok, s, ctx_len + cl, 1, ids, n);
    free(s);
    return rc;
}

static int native_loglik(pb_backend_t *b, const char *context, const char *const *conts,
                         size_t n, double *ll, int *greedy, pb_err_t *err)
{
    native_t *nb = (native_t *)b;
    pb_native_entry_t *e = nb->e;
    int32_t *ctx = NULL, *whole = NULL, eos = pe_tok_eos(e->tok);
    size_t n_ctx = 0, n_whole = 0, cap = (size_t)pe_state_capacity(nb->st);
    /* Trailing whitespace belongs to the continuation (" Paris", not "Paris"). */
    size_t ctx_len = strlen(context), ws = ctx_len;
    while (ws > 0 && strchr(" \t\n\r\v\f", context[ws - 1]))
        ws--;
    char *cont = NULL;
    int rc = encode_pair(e->tok, context, ws, "", &ctx, &n_ctx);
    if (rc)
        return pb_err_set(err, rc, "", "cannot tokenize the context: %s", pb_strerror(rc));
    for (size_t i = 0; i < n; i++) {
        size_t cl = strlen(conts[i]);
        free(cont);
        free(whole);
        whole = NULL;
        if ((cont = malloc(ctx_len - ws + cl + 1)) == NULL) {
            rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
            break;
        }
        memcpy(cont, context + ws, ctx_len - ws);
        memcpy(cont + ctx_len - ws, conts[i], cl + 1);
        if ((rc = encode_pair(e->tok, context, ws, cont, &whole, &n_whole))) {
            pb_err_set(err, rc, "", "cannot tokenize continuation %zu: %s", i, pb_strerror(rc));
            break;
        }
        const int32_t *cids = whole + (n_whole < n_ctx ? n_whole : n_ctx), *c = ctx;
        size_t n_cont = n_whole > n_ctx ? n_whole - n_ctx : 0, nc = n_ctx;
        if (nc == 0 && eos >= 0) {
            c = &eos;
            nc = 1;
        }
        if (n_cont == 0 || nc == 0 || n_cont >= cap) {
            rc = pb_err_set(err, PB_EINVAL, "",
                            n_cont == 0 ? "continuation %zu adds no token to the context"
                            : nc == 0   ? "continuation %zu: an empty context and no EOS token"
                                        : "continuation %zu does not fit the context",
                            i);
            break;
        }
        if (nc + n_cont > cap) { /* the context loses its head */
            c += nc + n_cont - cap;
            nc = cap - n_cont;
        }
        pthread_mutex_lock(&e->lock);
        rc = pe_loglik(e->model, nb->st, c, nc, cids, n_cont, &ll[i], greedy ? &greedy[i] : NULL,
                       err);
        pthread_mutex_unlock(&e->lock);
        if (rc)
            break;
    }
    free(cont);
    free(whole);
    free(ctx);
    return rc;
}

static int native_provenance(pb_backend_t *b, json_t *ctx)
{
    native_t *nb = (native_t *)b;
    const pb_native_entry_t *e = nb->e;
    json_t *path = json_object_get(nb->model, "path");
    return json_object_set(ctx, "path", path ? path : json_null()) ||
                   json_object_set_new(ctx, "weights_sha256",
                                       e->weights_sha256[0] ? json_string(e->weights_sha256)
                                                            : json_null()) ||
                   json_object_set_new(ctx, "config_sha256",
                                       e->config_sha256[0] ? json_string(e->config_sha256)
                                                           : json_null())
               ? PB_ENOMEM
               : 0;
}

const pb_backend_ops_t pb_backend__native = {
    .name = "native",
    .open = native_open,
    .generate = native_generate,
    .close = native_close,
    .count_tokens = native_count_tokens,
    .tokenize = native_tokenize,
    .embed = native_embed,
    .score_pairs = NULL,
    .loglik = native_loglik,
    .provenance = native_provenance,
};
