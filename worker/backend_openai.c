/* The `openai` backend: a model behind an OpenAI-compatible HTTP server
 * (vLLM, llama.cpp, TGI, Ollama, posbench-serve). Model spec and limits in
 * worker/openai.h; requests go out in parallel through openai_http.c and
 * answers are kept in the worker's response cache (openai_cache.c).
 * A request that fails for good is that item's error and the run goes on;
 * only a server that refused every connection attempt fails the batch. */
#include "worker/backend_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "worker/openai.h"

#define GEN_DEFAULT_TOKENS 256 /* a request without a budget */
#define SNIPPET 200            /* bytes of an error body quoted in item errors */

typedef struct oai {
    pb_oai_spec_t s;
    pb_oai_http_t *h;
    int tok_state; /* 0 unknown, 1 the server tokenizes, -1 it does not */
} oai_t;

/* One endpoint call: request in, a 2xx body or an error out. */
typedef struct call {
    const char *path;
    char *body; /* request JSON, owned */
    char key[PB_SHA256_HEX];
    char *resp; /* a 2xx response body (from the cache or the server), owned */
    size_t resp_len;
    int cached;
    long status;
    char *error; /* owned; set when there is no resp */
    int64_t latency_us;
} call_t;

static void oai_close(pb_backend_t *b)
{
    oai_t *o = (oai_t *)b;
    if (o == NULL)
        return;
    pb_oai_http_free(o->h);
    pb_oai_spec_free(&o->s);
    free(o);
}

static int oai_open(const json_t *model, uint64_t seed, pb_backend_t **out, pb_err_t *err)
{
    (void)seed; /* sampling is the server's; model.extra may carry a seed */
    *out = NULL;
    oai_t *o = calloc(1, sizeof *o);
    if (o == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    int rc = pb_oai_spec_parse(model, &o->s, err);
    if (rc) {
        free(o);
        return rc;
    }
    if (!o->s.tokenize)
        o->tok_state = -1;
    rc = pb_oai_http_new(&o->s, &o->h, err);
    if (rc) {
        oai_close((pb_backend_t *)o);
        return rc;
    }
    *out = (pb_backend_t *)o;
    return 0;
}

/* The API key must not travel in any message: a server may echo headers. */
static void scrub(const oai_t *o, char *msg)
{
    const char *k = o->s.api_key;
    size_t kl = k ? strlen(k) : 0;
    char *p, *from = msg;
    while (kl && (p = strstr(from, k))) {
        size_t r = kl < 3 ? kl : 3;
        memset(p, '*', r);
        memmove(p + r, p + kl, strlen(p + kl) + 1);
        from = p + r;
    }
    for (p = msg; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

static char *dup_scrubbed(const oai_t *o, const char *msg)
{
    char *s = strdup(msg);
    if (s)
        scrub(o, s);
    return s;
}

static void calls_free(call_t *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].body);
        free(c[i].resp);
        free(c[i].error);
    }
    free(c);
}

/* Why a finished request gave no usable body: its transport error, or its
 * HTTP status with the start of the body. */
static char *failure_text(const oai_t *o, const pb_oai_req_t *q, const char *path)
{
    char msg[512];
    if (q->error)
        snprintf(msg, sizeof msg, "%s: %s", path, q->error);
    else
        snprintf(msg, sizeof msg, "HTTP %ld from %s%s: %.*s", q->status, path,
                 q->attempts > 1 ? " after retries" : "", SNIPPET,
                 q->resp.data ? q->resp.data : "");
    return dup_scrubbed(o, msg);
}

/* Fill every call's resp or error: the cache first, the misses from the
 * server. PB_EBACKEND (err set) when some request never got a connection
 * in its whole retry budget; PB_ENOMEM. */
static int run_calls(oai_t *o, call_t *c, size_t n, pb_err_t *err)
{
    char url[PB_OAI_URL_MAX];
    pb_oai_req_t *q = calloc(n ? n : 1, sizeof *q);
    size_t *miss = calloc(n ? n : 1, sizeof *miss), nm = 0;
    int rc = 0;
    if (q == NULL || miss == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (c[i].body == NULL) {
            rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
            goto out;
        }
        if (o->s.cache) {
            snprintf(url, sizeof url, "%s%s", o->s.base, c[i].path);
            pb_oai_cache_key(url, o->s.model, c[i].body, strlen(c[i].body), c[i].key);
            int g = pb_oai_cache_get(c[i].key, &c[i].resp, &c[i].resp_len);
            if (g == 0) {
                c[i].cached = 1;
                c[i].status = 200;
                continue;
            }
            if (g == PB_ENOMEM) {
                rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
                goto out;
            }
        }
        q[nm].path = c[i].path;
        q[nm].body = c[i].body;
        miss[nm++] = i;
    }
    if (nm && (rc = pb_oai_http_run(o->h, q, nm)) != 0) {
        rc = rc == PB_ECANCELLED ? pb_err_set(err, rc, "", "cancelled")
                                 : pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    for (size_t k = 0; k < nm; k++) {
        call_t *ci = &c[miss[k]];
        ci->status = q[k].status;
        ci->latency_us = q[k].latency_us;
        if (q[k].unreachable && rc == 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "the model server is unreachable (%s)",
                     q[k].error ? q[k].error : "no connection");
            scrub(o, msg);
            rc = pb_err_set(err, PB_EBACKEND, "model.base_url", "%s", msg);
        }
        if (q[k].error == NULL && q[k].status >= 200 && q[k].status < 300) {
            ci->resp = q[k].resp.data;
            ci->resp_len = q[k].resp.len;
            q[k].resp.data = NULL;
        } else if ((ci->error = failure_text(o, &q[k], ci->path)) == NULL && rc == 0) {
            rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        }
    }
out:
    for (size_t k = 0; q && k < nm; k++) {
        pb_buf_free(&q[k].resp);
        free(q[k].error);
    }
    free(q);
    free(miss);
    return rc;
}

/* Keep the server's answers that parsed (ok[i]) in the cache. */
static void store_calls(const oai_t *o, const call_t *c, size_t n, const unsigned char *ok)
{
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    const char **bodies = calloc(n ? n : 1, sizeof *bodies);
    size_t *lens = calloc(n ? n : 1, sizeof *lens), m = 0;
    for (size_t i = 0; o->s.cache && keys && bodies && lens && i < n; i++)
        if (ok[i] && !c[i].cached && c[i].resp) {
            keys[m] = c[i].key;
            bodies[m] = c[i].resp;
            lens[m++] = c[i].resp_len;
        }
    pb_oai_cache_put(keys, bodies, lens, m);
    free(keys);
    free(bodies);
    free(lens);
}

/* ---- generation ---- */

static int oai_generate(pb_backend_t *b, pb_gen_req_t *reqs, size_t n, pb_err_t *err)
{
    oai_t *o = (oai_t *)b;
    const char *path = o->s.chat ? "/v1/chat/completions" : "/v1/completions";
    call_t *c = calloc(n ? n : 1, sizeof *c);
    unsigned char *ok = calloc(n ? n : 1, 1);
    int rc = 0;
    if (c == NULL || ok == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *prompt = reqs[i].item && reqs[i].item->prompt ? reqs[i].item->prompt : "";
        c[i].path = path;
        c[i].body = pb_oai_gen_body(&o->s, prompt,
                                    reqs[i].max_tokens > 0 ? reqs[i].max_tokens
                                                           : GEN_DEFAULT_TOKENS);
    }
    if ((rc = run_calls(o, c, n, err)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        pb_gen_req_t *q = &reqs[i];
        pb_err_t why = {0};
        char msg[512];
        q->latency_us = c[i].latency_us;
        if (c[i].error) {
            q->error = c[i].error;
            c[i].error = NULL;
            continue;
        }
        int prc = pb_oai_parse_text(o->s.chat, c[i].resp, c[i].resp_len, &q->text, &q->tokens,
                                    &why);
        if (prc == PB_ENOMEM) {
            rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
            goto out;
        }
        if (prc) {
            snprintf(msg, sizeof msg, "bad response from %s: %s", path, why.msg);
            if ((q->error = dup_scrubbed(o, msg)) == NULL) {
                rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
                goto out;
            }
            continue;
        }
        ok[i] = 1;
    }
    store_calls(o, c, n, ok);
out:
    calls_free(c, n);
    free(ok);
    return rc;
}

/* A whole-call failure for the ops without per-item errors: the first
 * call's error (or what did not parse) as PB_EBACKEND. */
static int call_failed(const oai_t *o, const call_t *ci, const char *why, pb_err_t *err)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ci->error ? ci->error : why);
    scrub(o, msg);
    return pb_err_set(err, PB_EBACKEND, "", "%s", msg);
}

/* ---- embeddings and pair scores ---- */

static int oai_embed(pb_backend_t *b, const char *const *texts, size_t n, float **out,
                     size_t *dim, pb_err_t *err)
{
    oai_t *o = (oai_t *)b;
    size_t nc = (n + PB_OAI_EMBED_CHUNK - 1) / PB_OAI_EMBED_CHUNK, d = 0;
    call_t *c = calloc(nc ? nc : 1, sizeof *c);
    unsigned char *ok = calloc(nc ? nc : 1, 1);
    float *m = NULL;
    int rc = 0;
    *out = NULL;
    if (c == NULL || ok == NULL || n == 0) {
        rc = pb_err_set(err, n ? PB_ENOMEM : PB_EINVAL, "", n ? "out of memory" : "no texts");
        goto out;
    }
    for (size_t k = 0; k < nc; k++) {
        size_t lo = k * PB_OAI_EMBED_CHUNK;
        c[k].path = "/v1/embeddings";
        c[k].body = pb_oai_embed_body(&o->s, texts + lo,
                                      n - lo < PB_OAI_EMBED_CHUNK ? n - lo : PB_OAI_EMBED_CHUNK);
    }
    if ((rc = run_calls(o, c, nc, err)))
        goto out;
    for (size_t k = 0; k < nc; k++) {
        size_t lo = k * PB_OAI_EMBED_CHUNK, cn = n - lo < PB_OAI_EMBED_CHUNK ? n - lo
                                                                             : PB_OAI_EMBED_CHUNK;
        float *e = NULL;
        size_t cd = 0;
        pb_err_t why = {0};
        if (c[k].error) {
            rc = call_failed(o, &c[k], "", err);
            goto out;
        }
        rc = pb_oai_parse_embed(c[k].resp, c[k].resp_len, cn, &e, &cd, &why);
        if (rc == 0 && d && cd != d) {
            free(e);
            rc = pb_err_set(&why, PB_EPARSE, "", "embeddings of dimension %zu and %zu", d, cd);
        }
        if (rc) {
            char msg[400];
            snprintf(msg, sizeof msg, "bad response from /v1/embeddings: %s", why.msg);
            rc = rc == PB_ENOMEM ? pb_err_set(err, rc, "", "out of memory")
                                 : call_failed(o, &c[k], msg, err);
            goto out;
        }
        if (m == NULL && (m = malloc(n * cd * sizeof *m)) == NULL) {
            free(e);
            rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
            goto out;
        }
        d = cd;
        memcpy(m + lo * d, e, cn * d * sizeof *m);
        free(e);
        ok[k] = 1;
    }
    store_calls(o, c, nc, ok);
    *out = m;
    *dim = d;
    m = NULL;
out:
    free(m);
    calls_free(c, nc);
    free(ok);
    return rc;
}

static int oai_score_pairs(pb_backend_t *b, const ps_item_t *query, const char *const *docs,
                           size_t n, double *scores, pb_err_t *err)
{
    oai_t *o = (oai_t *)b;
    const char *qtext = query->prompt ? query->prompt : "";
    if (o->s.rerank == PB_OAI_RERANK_NONE) {
        /* No rerank endpoint named: the dot product of the embeddings. */
        const char **texts = malloc((n + 1) * sizeof *texts);
        float *e = NULL;
        size_t d = 0;
        if (texts == NULL)
            return pb_err_set(err, PB_ENOMEM, "", "out of memory");
        texts[0] = qtext;
        memcpy(texts + 1, docs, n * sizeof *docs);
        int rc = oai_embed(b, texts, n + 1, &e, &d, err);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            double s = 0;
            for (size_t j = 0; j < d; j++)
                s += (double)e[j] * e[(i + 1) * d + j];
            scores[i] = s;
        }
        free(texts);
        free(e);
        return rc;
    }
    call_t c = {.path = o->s.rerank == PB_OAI_RERANK_SCORE ? "/score" : "/v1/rerank",
                .body = pb_oai_rerank_body(&o->s, qtext, docs, n)};
    unsigned char ok = 0;
    pb_err_t why = {0};
    int rc = run_calls(o, &c, 1, err);
    if (rc == 0 && c.error)
        rc = call_failed(o, &c, "", err);
    if (rc == 0 && (rc = pb_oai_parse_scores(o->s.rerank, c.resp, c.resp_len, n, scores, &why))) {
        char msg[400];
        snprintf(msg, sizeof msg, "bad response from %s: %s", c.path, why.msg);
        rc = rc == PB_ENOMEM ? pb_err_set(err, rc, "", "out of memory")
                             : call_failed(o, &c, msg, err);
    }
    ok = rc == 0;
    if (ok)
        store_calls(o, &c, 1, &ok);
    free(c.body);
    free(c.resp);
    free(c.error);
    return rc;
}

/* Rerank or /score requests for nq queries, in flight together. */
static int oai_score_pairs_many(pb_backend_t *b, const ps_item_t *const *queries,
                                const char *const *const *docs, const size_t *n, size_t nq,
                                double *const *scores, pb_err_t *err)
{
    oai_t *o = (oai_t *)b;
    int rc = 0;
    if (o->s.rerank == PB_OAI_RERANK_NONE) { /* embeddings: already concurrent inside */
        for (size_t i = 0; rc == 0 && i < nq; i++)
            rc = oai_score_pairs(b, queries[i], docs[i], n[i], scores[i], err);
        return rc;
    }
    call_t *c = calloc(nq ? nq : 1, sizeof *c);
    unsigned char *ok = calloc(nq ? nq : 1, 1);
    if (c == NULL || ok == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nq; i++) {
        c[i].path = o->s.rerank == PB_OAI_RERANK_SCORE ? "/score" : "/v1/rerank";
        c[i].body = pb_oai_rerank_body(&o->s, queries[i]->prompt ? queries[i]->prompt : "",
                                       docs[i], n[i]);
    }
    rc = run_calls(o, c, nq, err);
    for (size_t i = 0; rc == 0 && i < nq; i++) {
        pb_err_t why = {0};
        if (c[i].error) {
            rc = call_failed(o, &c[i], "", err);
        } else if ((rc = pb_oai_parse_scores(o->s.rerank, c[i].resp, c[i].resp_len, n[i],
                                             scores[i], &why)) != 0) {
            char msg[400];
            snprintf(msg, sizeof msg, "bad response from %s: %s", c[i].path, why.msg);
            rc = rc == PB_ENOMEM ? pb_err_set(err, rc, "", "out of memory")
                                 : call_failed(o, &c[i], msg, err);
        }
        ok[i] = rc == 0;
    }
    store_calls(o, c, nq, ok);
out:
    calls_free(c, nq);
    free(ok);
    return rc;
}

/* ---- tokens and log-likelihood ---- */

static int oai_tokenize(pb_backend_t *b, const char *text, size_t len, int32_t **ids, size_t *n)
{
    oai_t *o = (oai_t *)b;
    if (o->tok_state < 0)
        return PB_EUNSUPPORTED;
    call_t c = {.path = "/tokenize", .body = pb_oai_tokenize_body(&o->s, text, len)};
    pb_err_t err = {0}, why = {0};
    unsigned char ok = 0;
    int rc = run_calls(o, &c, 1, &err);
    if (rc == 0 && c.error && c.status >= 400 && c.status < 500 && c.status != 429)
        rc = PB_EUNSUPPORTED; /* no such endpoint (404, 405, ...): asked once */
    else if (rc == 0 && c.error)
        rc = PB_EBACKEND;
    if (rc == 0 && (rc = pb_oai_parse_tokens(c.resp, c.resp_len, ids, n, &why)) == PB_EPARSE)
        rc = PB_EUNSUPPORTED;
    if (rc == PB_EUNSUPPORTED && o->tok_state == 0)
        o->tok_state = -1;
    if (rc == 0) {
        o->tok_state = 1;
        ok = 1;
        store_calls(o, &c, 1, &ok);
    }
    free(c.body);
    free(c.resp);
    free(c.error);
    return rc;
}

static int oai_count_tokens(pb_backend_t *b, const char *text, size_t len, int64_t *n)
{
    int32_t *ids = NULL;
    size_t k = 0;
    int rc = oai_tokenize(b, text, len, &ids, &k);
    free(ids);
    if (rc == 0)
        *n = (int64_t)k;
    return rc;
}

/* Characters (code points) of s[0, n): what text_offset counts. */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static int oai_loglik(pb_backend_t *b, const char *context, const char *const *conts, size_t n,
                      double *ll, int *greedy, pb_err_t *err)
{
    oai_t *o = (oai_t *)b;
    size_t cl = strlen(context), ws = cl;
    call_t *c = calloc(n ? n : 1, sizeof *c);
    unsigned char *ok = calloc(n ? n : 1, 1);
    int rc = 0;
    /* The context's trailing whitespace belongs to the continuation. */
    while (ws > 0 && strchr(" \t\n\r\v\f", context[ws - 1]))
        ws--;
    size_t split[2] = {utf8_chars(context, ws), ws};
    if (c == NULL || ok == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t tl = strlen(conts[i]);
        char *t = malloc(cl + tl + 1);
        if (t) {
            memcpy(t, context, cl);
            memcpy(t + cl, conts[i], tl + 1);
            c[i].body = pb_oai_loglik_body(&o->s, t);
        }
        c[i].path = "/v1/completions";
        free(t);
    }
    if ((rc = run_calls(o, c, n, err)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        pb_err_t why = {0};
        size_t total[2] = {split[0] + utf8_chars(context + ws, cl - ws) +
                               utf8_chars(conts[i], strlen(conts[i])),
                           cl + strlen(conts[i])};
        if (c[i].error && c[i].status >= 400 && c[i].status < 500 && c[i].status != 429)
            rc = PB_EUNSUPPORTED;
        else if (c[i].error)
            rc = call_failed(o, &c[i], "", err);
        else
            rc = pb_oai_parse_loglik(c[i].resp, c[i].resp_len, split, total, &ll[i],
                                     greedy ? &greedy[i] : NULL, &why);
        if (rc == PB_EUNSUPPORTED || rc == PB_EPARSE) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", c[i].error ? c[i].error : why.msg);
            scrub(o, msg);
            rc = pb_err_set(err, PB_EUNSUPPORTED, "model",
                            "log-likelihood (echo + logprobs on /v1/completions) is not supported "
                            "by this server: %s", msg);
        }
        if (rc)
            goto out;
        ok[i] = 1;
    }
    store_calls(o, c, n, ok);
out:
    calls_free(c, n);
    free(ok);
    return rc;
}

static void oai_set_cancel(pb_backend_t *b, volatile int *cancel)
{
    pb_oai_http_set_cancel(((oai_t *)b)->h, cancel);
}

const pb_backend_ops_t pb_backend__openai = {
    .name = "openai",
    .open = oai_open,
    .generate = oai_generate,
    .close = oai_close,
    .count_tokens = oai_count_tokens,
    .tokenize = oai_tokenize,
    .embed = oai_embed,
    .score_pairs = oai_score_pairs,
    .score_pairs_many = oai_score_pairs_many,
    .loglik = oai_loglik,
    .set_cancel = oai_set_cancel,
};
