/* Private to worker/: the `openai` backend's parts. openai_proto.c holds the
 * pure pieces (model spec, request bodies, response parsing, Retry-After,
 * back-off, cache key), openai_http.c the curl-multi request engine,
 * openai_cache.c the worker's SQLite response cache, and backend_openai.c
 * the backend ops over them. */
#ifndef PB_OPENAI_H
#define PB_OPENAI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"
#include "common/sha256.h"
#include "common/util.h"

#include "suites/jobspec.h"

#define PB_OAI_CONCURRENCY 16          /* default max_concurrency */
#define PB_OAI_CONCURRENCY_MAX PS_OAI_CONCURRENCY_MAX
#define PB_OAI_TIMEOUT_S 60.0          /* default per-attempt timeout */
#define PB_OAI_RETRIES 4               /* default retries after the first attempt */
#define PB_OAI_BACKOFF_MS 500          /* first back-off; doubles per retry */
#define PB_OAI_BACKOFF_MAX_MS 30000
#define PB_OAI_RETRY_AFTER_MAX_MS 120000 /* a longer Retry-After is cut to this */
#define PB_OAI_RESPONSE_MB 8           /* default cap on one response body */
#define PB_OAI_URL_MAX (PS_OAI_URL_MAX + 64) /* base_url and an endpoint path */
#define PB_OAI_EMBED_CHUNK 32          /* texts per /v1/embeddings request */

enum { PB_OAI_RERANK_NONE, PB_OAI_RERANK_COHERE, PB_OAI_RERANK_SCORE };

/* A validated model spec. Strings are owned; api_key is the value of the
 * environment variable api_key_env names and must never reach a log, an
 * error message or the store. */
typedef struct pb_oai_spec {
    char *base;      /* the server root, no trailing '/' nor "/v1" */
    char *model;
    int chat;        /* mode "chat": /v1/chat/completions */
    char *api_key;   /* NULL without api_key_env */
    int max_concurrency;
    double timeout_s;
    int retries;
    int backoff_ms;
    size_t response_max; /* bytes */
    int rerank;          /* PB_OAI_RERANK_* */
    int cache;           /* model.cache (default true) */
    int tokenize;        /* model.tokenize (default true): try /tokenize */
    double temperature;
    json_t *extra;       /* merged into generation request bodies; may be NULL */
} pb_oai_spec_t;

/* Validate model and fill s (zeroed first). Errors are PB_EINVAL naming the
 * field (model.base_url, ...); a missing key variable names api_key_env and
 * the variable, never a value. On failure s holds nothing to free. */
int pb_oai_spec_parse(const json_t *model, pb_oai_spec_t *s, pb_err_t *err);
void pb_oai_spec_free(pb_oai_spec_t *s);

/* Request bodies (malloc'd JSON text, NULL when out of memory). */
char *pb_oai_gen_body(const pb_oai_spec_t *s, const char *prompt, int max_tokens);
char *pb_oai_loglik_body(const pb_oai_spec_t *s, const char *text);
char *pb_oai_embed_body(const pb_oai_spec_t *s, const char *const *texts, size_t n);
char *pb_oai_rerank_body(const pb_oai_spec_t *s, const char *query, const char *const *docs,
                         size_t n);
char *pb_oai_tokenize_body(const pb_oai_spec_t *s, const char *text, size_t len);

/* Response parsers over a body of len bytes. Each returns 0, PB_EPARSE with
 * why (a short reason naming what was wrong: "not JSON", "no
 * choices[0].text") or PB_ENOMEM. Out-parameters are set only on success. */
int pb_oai_parse_text(int chat, const char *body, size_t len, char **text, int64_t *tokens,
                      pb_err_t *why);
/* n vectors of one dimension, by their "index" (0..n-1 each once). */
int pb_oai_parse_embed(const char *body, size_t len, size_t n, float **out, size_t *dim,
                       pb_err_t *why);
/* n scores by "index": results[].relevance_score (rerank) or
 * data[].score (score). */
int pb_oai_parse_scores(int rerank, const char *body, size_t len, size_t n, double *scores,
                        pb_err_t *why);
/* echo + logprobs: the sum of token_logprobs of the prompt tokens that end
 * past the split, and greedy when each is its top_logprobs' best. split and
 * total (the prompt's length) are given in characters ([0], what OpenAI and
 * vLLM count text_offset in) and in bytes ([1]); bytes are used when a
 * text_offset equals the byte length and that differs from the character
 * length (a server counting bytes). PB_EUNSUPPORTED when the body has no
 * usable logprobs. */
int pb_oai_parse_loglik(const char *body, size_t len, const size_t split[2],
                        const size_t total[2], double *ll, int *greedy, pb_err_t *why);
/* /tokenize: the "tokens" array (*ids malloc'd, *n of them). */
int pb_oai_parse_tokens(const char *body, size_t len, int32_t **ids, size_t *n, pb_err_t *why);

/* Retry-After (delta-seconds or an HTTP-date) as a delay from now_s (the
 * wall clock, seconds), clamped to [0, PB_OAI_RETRY_AFTER_MAX_MS]. */
int pb_oai_retry_after_ms(const char *value, int64_t now_s, int64_t *ms);
/* Back-off before retry number attempt (1 = the first retry): base * 2^(attempt-1)
 * capped at PB_OAI_BACKOFF_MAX_MS, then a point of [step/2, step) that r
 * picks (jitter). */
int64_t pb_oai_backoff_ms(int base_ms, int attempt, uint64_t r);
/* Cache key: hex sha256 of url, '\n', model, '\n', body. */
void pb_oai_cache_key(const char *url, const char *model, const char *body, size_t len,
                      char out[PB_SHA256_HEX]);

/* ---- the request engine (openai_http.c) ---- */

typedef struct pb_oai_http pb_oai_http_t;

/* One request. The caller sets path and body; the engine fills the rest. */
typedef struct pb_oai_req {
    const char *path;  /* "/v1/completions" */
    const char *body;  /* JSON text, borrowed */
    long status;       /* the last response's HTTP status; 0 when none came */
    pb_buf_t resp;     /* its body (NUL-terminated); the caller frees it */
    char *error;       /* malloc'd when no usable response came: why */
    int attempts;
    int unreachable;   /* every attempt failed to connect */
    int64_t latency_us;
    /* engine state */
    int state, connect_fails, too_big;
    int64_t due_us, t0_us, retry_after_ms;
    void *easy;
} pb_oai_req_t;

int pb_oai_http_new(const pb_oai_spec_t *s, pb_oai_http_t **out, pb_err_t *err);
/* Run reqs[0, n) with up to max_concurrency in flight, retrying as the
 * spec says: connect errors, timeouts, dropped connections, 429 (after its
 * Retry-After when given) and 5xx; never other 4xx. Returns 0 once every
 * request is done (each with a status or an error), PB_ECANCELLED when the
 * cancel flag was raised, or PB_ENOMEM. */
int pb_oai_http_run(pb_oai_http_t *h, pb_oai_req_t *reqs, size_t n);
/* A flag that stops pb_oai_http_run within about 100 ms with PB_ECANCELLED
 * (requests in flight are dropped); NULL: none. */
void pb_oai_http_set_cancel(pb_oai_http_t *h, volatile int *cancel);
void pb_oai_http_free(pb_oai_http_t *h);
/* Total attempts made by h (for tests and the bench). */
uint64_t pb_oai_http_attempts(const pb_oai_http_t *h);

/* ---- the response cache (openai_cache.c) ---- */

/* Use path (created on first use) capped at max_bytes of bodies, the oldest
 * evicted first; path NULL turns the cache off. Call before any runner
 * thread starts. */
int pb_oai_cache_configure(const char *path, int64_t max_bytes);
/* The default path: $XDG_CACHE_HOME/posbench/responses.sqlite, else
 * /tmp/posbench-cache-<uid>/responses.sqlite. */
void pb_oai_cache_default_path(char *out, size_t n);
/* *body malloc'd (NUL-terminated). PB_ENOTFOUND on a miss or with the cache
 * off; a broken cache file is a miss (logged once), never a failure. */
int pb_oai_cache_get(const char *key, char **body, size_t *len);
/* Store n bodies in one transaction; failures are logged and ignored. */
void pb_oai_cache_put(const char *const *keys, const char *const *bodies, const size_t *lens,
                      size_t n);
void pb_oai_cache_close(void);

#endif
