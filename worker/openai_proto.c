/* The `openai` backend's pure pieces (worker/openai.h): the model spec,
 * request bodies for each endpoint, response parsing that names what a bad
 * body lacks, Retry-After, the back-off schedule and the cache key. No I/O
 * here, so the unit tests cover all of it. */
#include "worker/openai.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/json.h"
#include "suites/jobspec.h"

/* ---- the model spec ---- */

void pb_oai_spec_free(pb_oai_spec_t *s)
{
    free(s->base);
    free(s->model);
    if (s->api_key) {
        memset(s->api_key, 0, strlen(s->api_key));
        free(s->api_key);
    }
    json_decref(s->extra);
    memset(s, 0, sizeof *s);
}

/* base_url (checked by ps_openai_model_check) without a trailing '/' and
 * without "/v1" (the endpoints carry their own prefix). */
static int parse_base(const char *url, char **out, pb_err_t *err)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= 3 && memcmp(url + n - 3, "/v1", 3) == 0)
        n -= 3;
    *out = strndup(url, n);
    return *out ? 0 : pb_err_set(err, PB_ENOMEM, "", "out of memory");
}

int pb_oai_spec_parse(const json_t *m, pb_oai_spec_t *s, pb_err_t *err)
{
    const char *url, *model, *mode, *key_env, *rerank;
    int64_t conc, retries, backoff, resp_mb;
    double timeout, temp;
    memset(s, 0, sizeof *s);
    /* Shapes and ranges as the coordinator checked them at submit. */
    int rc = ps_openai_model_check(m, err);
    rc = rc ? rc : pb_json_str(m, "base_url", NULL, 1, &url, "model", err);
    rc = rc ? rc : pb_json_str(m, "model", NULL, 1, &model, "model", err);
    rc = rc ? rc : pb_json_str(m, "mode", "completion", 0, &mode, "model", err);
    rc = rc ? rc : pb_json_str(m, "api_key_env", NULL, 0, &key_env, "model", err);
    rc = rc ? rc : pb_json_str(m, "rerank", NULL, 0, &rerank, "model", err);
    rc = rc ? rc : pb_json_int(m, "max_concurrency", PB_OAI_CONCURRENCY, 1,
                               PB_OAI_CONCURRENCY_MAX, &conc, "model", err);
    rc = rc ? rc : pb_json_num(m, "timeout_s", PB_OAI_TIMEOUT_S, 0.05, 3600, &timeout, "model",
                               err);
    rc = rc ? rc : pb_json_int(m, "retries", PB_OAI_RETRIES, 0, 20, &retries, "model", err);
    rc = rc ? rc : pb_json_int(m, "backoff_ms", PB_OAI_BACKOFF_MS, 1, 60000, &backoff, "model",
                               err);
    rc = rc ? rc : pb_json_int(m, "max_response_mb", PB_OAI_RESPONSE_MB, 1, 256, &resp_mb, "model",
                               err);
    rc = rc ? rc : pb_json_num(m, "temperature", 0, 0, 100, &temp, "model", err);
    rc = rc ? rc : pb_json_bool(m, "cache", 1, &s->cache, "model", err);
    rc = rc ? rc : pb_json_bool(m, "tokenize", 1, &s->tokenize, "model", err);
    if (rc)
        return rc;
    const json_t *extra = json_object_get(m, "extra");
    const char *key = NULL;
    if (key_env) {
        key = getenv(key_env);
        if (key == NULL || *key == '\0')
            return pb_err_set(err, PB_EINVAL, "model.api_key_env",
                              "model.api_key_env: environment variable %s is not set on this "
                              "worker", key_env);
        for (const char *p = key; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return pb_err_set(err, PB_EINVAL, "model.api_key_env",
                                  "model.api_key_env: environment variable %s holds a control "
                                  "character", key_env);
    }
    s->chat = strcmp(mode, "chat") == 0;
    s->rerank = rerank == NULL                 ? PB_OAI_RERANK_NONE
                : strcmp(rerank, "rerank") == 0 ? PB_OAI_RERANK_COHERE
                                               : PB_OAI_RERANK_SCORE;
    s->max_concurrency = (int)conc;
    s->timeout_s = timeout;
    s->retries = (int)retries;
    s->backoff_ms = (int)backoff;
    s->response_max = (size_t)resp_mb << 20;
    s->temperature = temp;
    rc = parse_base(url, &s->base, err);
    if (rc == 0 && ((s->model = strdup(model)) == NULL || (key && !(s->api_key = strdup(key)))))
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
    if (rc == 0 && json_is_object(extra) && !(s->extra = json_deep_copy(extra)))
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
    if (rc)
        pb_oai_spec_free(s);
    return rc;
}

/* ---- request bodies ---- */

static char *dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

char *pb_oai_gen_body(const pb_oai_spec_t *s, const char *prompt, int max_tokens)
{
    json_t *o;
    if (s->chat)
        o = json_pack("{s:s, s:[{s:s, s:s}], s:i, s:f}", "model", s->model, "messages", "role",
                      "user", "content", prompt, "max_tokens", max_tokens, "temperature",
                      s->temperature);
    else
        o = json_pack("{s:s, s:s, s:i, s:f}", "model", s->model, "prompt", prompt, "max_tokens",
                      max_tokens, "temperature", s->temperature);
    /* extra (stop, top_p, seed, ...) is the user's: it may override ours. */
    if (o && s->extra && json_object_update(o, s->extra)) {
        json_decref(o);
        return NULL;
    }
    return dump(o);
}

char *pb_oai_loglik_body(const pb_oai_spec_t *s, const char *text)
{
    /* max_tokens 1: some servers refuse 0; the extra token is ignored. */
    return dump(json_pack("{s:s, s:s, s:i, s:f, s:b, s:i}", "model", s->model, "prompt", text,
                          "max_tokens", 1, "temperature", 0.0, "echo", 1, "logprobs", 1));
}

char *pb_oai_embed_body(const pb_oai_spec_t *s, const char *const *texts, size_t n)
{
    json_t *in = json_array();
    for (size_t i = 0; in && i < n; i++)
        if (json_array_append_new(in, json_string(texts[i]))) {
            json_decref(in);
            return NULL;
        }
    return in ? dump(json_pack("{s:s, s:o}", "model", s->model, "input", in)) : NULL;
}

char *pb_oai_rerank_body(const pb_oai_spec_t *s, const char *query, const char *const *docs,
                         size_t n)
{
    json_t *d = json_array();
    for (size_t i = 0; d && i < n; i++)
        if (json_array_append_new(d, json_string(docs[i]))) {
            json_decref(d);
            return NULL;
        }
    if (d == NULL)
        return NULL;
    if (s->rerank == PB_OAI_RERANK_SCORE)
        return dump(json_pack("{s:s, s:s, s:o}", "model", s->model, "text_1", query, "text_2", d));
    return dump(json_pack("{s:s, s:s, s:o, s:I}", "model", s->model, "query", query, "documents",
                          d, "top_n", (json_int_t)n));
}

char *pb_oai_tokenize_body(const pb_oai_spec_t *s, const char *text, size_t len)
{
    return dump(json_pack("{s:s, s:s%, s:b}", "model", s->model, "prompt", text, len,
                          "add_special_tokens", 0));
}

/* ---- response parsing ---- */

static json_t *load(const char *body, size_t len, pb_err_t *why)
{
    json_error_t e;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (v == NULL)
        pb_err_set(why, PB_EPARSE, "", "response is not JSON (%s at byte %d)", e.text, e.position);
    else if (!json_is_object(v)) {
        json_decref(v);
        v = NULL;
        pb_err_set(why, PB_EPARSE, "", "response is JSON but not an object");
    }
    return v;
}

int pb_oai_parse_text(int chat, const char *body, size_t len, char **text, int64_t *tokens,
                      pb_err_t *why)
{
    json_t *v = load(body, len, why);
    if (v == NULL)
        return PB_EPARSE;
    const json_t *c0 = json_array_get(json_object_get(v, "choices"), 0);
    const json_t *t = chat ? json_object_get(json_object_get(c0, "message"), "content")
                           : json_object_get(c0, "text");
    int rc = 0;
    if (!json_is_string(t))
        rc = pb_err_set(why, PB_EPARSE, "", "response has no %s",
                        chat ? "choices[0].message.content string" : "choices[0].text string");
    else if ((*text = strndup(json_string_value(t), json_string_length(t))) == NULL)
        rc = PB_ENOMEM;
    else {
        json_int_t ct = json_integer_value(
            json_object_get(json_object_get(v, "usage"), "completion_tokens"));
        *tokens = ct > 0 ? (int64_t)ct : 0;
    }
    json_decref(v);
    return rc;
}

/* The index of entry i of an array of results: its "index" field, which
 * must be new and below n. seen[n] tracks which came. */
static int entry_index(const json_t *e, size_t i, size_t n, unsigned char *seen, size_t *idx,
                       const char *what, pb_err_t *why)
{
    const json_t *ix = json_object_get(e, "index");
    json_int_t k = ix ? json_integer_value(ix) : (json_int_t)i;
    if ((ix && !json_is_integer(ix)) || k < 0 || (size_t)k >= n || seen[k])
        return pb_err_set(why, PB_EPARSE, "", "%s[%zu].index is missing, repeated or out of range",
                          what, i);
    seen[k] = 1;
    *idx = (size_t)k;
    return 0;
}

int pb_oai_parse_embed(const char *body, size_t len, size_t n, float **out, size_t *dim,
                       pb_err_t *why)
{
    json_t *v = load(body, len, why);
    float *m = NULL;
    unsigned char *seen = calloc(n ? n : 1, 1);
    size_t d = 0, i, idx;
    const json_t *e;
    int rc = v ? 0 : PB_EPARSE;
    const json_t *data = json_object_get(v, "data");
    if (rc == 0 && seen == NULL)
        rc = PB_ENOMEM;
    if (rc == 0 && (!json_is_array(data) || json_array_size(data) != n))
        rc = pb_err_set(why, PB_EPARSE, "", "response has no data array of %zu embeddings", n);
    json_array_foreach(data, i, e) {
        if (rc)
            break;
        const json_t *vec = json_object_get(e, "embedding"), *x;
        size_t j;
        if ((rc = entry_index(e, i, n, seen, &idx, "data", why)))
            break;
        if (!json_is_array(vec) || json_array_size(vec) == 0 ||
            (d && json_array_size(vec) != d) || json_array_size(vec) > 65536) {
            rc = pb_err_set(why, PB_EPARSE, "", "data[%zu].embedding is not an array of %s numbers",
                            i, d ? "the same count of" : "1 to 65536");
            break;
        }
        if (d == 0) {
            d = json_array_size(vec);
            if ((m = malloc(n * d * sizeof *m)) == NULL) {
                rc = PB_ENOMEM;
                break;
            }
        }
        json_array_foreach(vec, j, x) {
            if (!json_is_number(x)) {
                rc = pb_err_set(why, PB_EPARSE, "", "data[%zu].embedding[%zu] is not a number", i,
                                j);
                break;
            }
            m[idx * d + j] = (float)json_number_value(x);
        }
    }
    if (rc == 0 && n == 0)
        rc = pb_err_set(why, PB_EPARSE, "", "no texts to embed");
    if (rc == 0) {
        *out = m;
        *dim = d;
        m = NULL;
    }
    free(m);
    free(seen);
    json_decref(v);
    return rc;
}

int pb_oai_parse_scores(int rerank, const char *body, size_t len, size_t n, double *scores,
                        pb_err_t *why)
{
    const char *arr = rerank == PB_OAI_RERANK_SCORE ? "data" : "results";
    const char *key = rerank == PB_OAI_RERANK_SCORE ? "score" : "relevance_score";
    json_t *v = load(body, len, why);
    unsigned char *seen = calloc(n ? n : 1, 1);
    const json_t *a = json_object_get(v, arr), *e;
    size_t i, idx;
    int rc = v ? 0 : PB_EPARSE;
    if (rc == 0 && seen == NULL)
        rc = PB_ENOMEM;
    if (rc == 0 && (!json_is_array(a) || json_array_size(a) != n))
        rc = pb_err_set(why, PB_EPARSE, "", "response has no %s array of %zu scores", arr, n);
    json_array_foreach(a, i, e) {
        if (rc || (rc = entry_index(e, i, n, seen, &idx, arr, why)))
            break;
        const json_t *s = json_object_get(e, key);
        if (!json_is_number(s) || !isfinite(json_number_value(s))) {
            rc = pb_err_set(why, PB_EPARSE, "", "%s[%zu].%s is not a number", arr, i, key);
            break;
        }
        scores[idx] = json_number_value(s);
    }
    free(seen);
    json_decref(v);
    return rc;
}

int pb_oai_parse_loglik(const char *body, size_t len, const size_t split_in[2],
                        const size_t total_in[2], double *ll, int *greedy, pb_err_t *why)
{
    json_t *v = load(body, len, why);
    if (v == NULL)
        return PB_EPARSE;
    const json_t *c0 = json_array_get(json_object_get(v, "choices"), 0);
    const json_t *lp = json_object_get(c0, "logprobs");
    const json_t *tlp = json_object_get(lp, "token_logprobs");
    const json_t *off = json_object_get(lp, "text_offset");
    const json_t *top = json_object_get(lp, "top_logprobs");
    size_t nt = json_array_size(tlp);
    int rc = 0, all_greedy = 1, used = 0;
    double sum = 0;
    if (!json_is_array(tlp) || !json_is_array(off) || json_array_size(off) != nt || nt == 0) {
        rc = pb_err_set(why, PB_EUNSUPPORTED, "",
                        "no choices[0].logprobs.token_logprobs and text_offset in the echo");
        goto out;
    }
    int bytes = 0;
    for (size_t i = 0; i < nt && total_in[1] != total_in[0]; i++)
        if (json_integer_value(json_array_get(off, i)) == (json_int_t)total_in[1])
            bytes = 1;
    size_t split = split_in[bytes], total = total_in[bytes];
    for (size_t i = 0; i < nt; i++) {
        json_int_t o = json_integer_value(json_array_get(off, i));
        json_int_t next = i + 1 < nt ? json_integer_value(json_array_get(off, i + 1))
                                     : (json_int_t)total;
        /* Prompt tokens ending past the split are the continuation's (one
         * merged across the boundary included); the generated one is not. */
        if (o >= (json_int_t)total || next <= (json_int_t)split)
            continue;
        const json_t *x = json_array_get(tlp, i);
        if (!json_is_number(x)) {
            rc = pb_err_set(why, PB_EUNSUPPORTED, "", "token_logprobs[%zu] is not a number", i);
            goto out;
        }
        sum += json_number_value(x);
        used++;
        /* Greedy: no alternative in top_logprobs beats the token's own. */
        const json_t *alts = json_array_get(top, i), *a;
        const char *k;
        json_object_foreach((json_t *)alts, k, a)
            if (json_is_number(a) && json_number_value(a) > json_number_value(x) + 1e-6)
                all_greedy = 0;
        if (!json_is_object(alts))
            all_greedy = 0;
    }
    if (used == 0) {
        rc = pb_err_set(why, PB_EUNSUPPORTED, "", "the echo has no token of the continuation");
        goto out;
    }
    *ll = sum;
    if (greedy)
        *greedy = all_greedy;
out:
    json_decref(v);
    return rc;
}

int pb_oai_parse_tokens(const char *body, size_t len, int32_t **ids, size_t *n, pb_err_t *why)
{
    json_t *v = load(body, len, why);
    if (v == NULL)
        return PB_EPARSE;
    const json_t *t = json_object_get(v, "tokens"), *x;
    size_t i, nt = json_array_size(t);
    int32_t *out = malloc((nt ? nt : 1) * sizeof *out);
    int rc = out ? 0 : PB_ENOMEM;
    if (rc == 0 && !json_is_array(t))
        rc = pb_err_set(why, PB_EPARSE, "", "response has no tokens array");
    json_array_foreach(t, i, x) {
        if (rc)
            break;
        if (!json_is_integer(x) || json_integer_value(x) < 0 ||
            json_integer_value(x) > INT32_MAX) {
            rc = pb_err_set(why, PB_EPARSE, "", "tokens[%zu] is not a token id", i);
            break;
        }
        out[i] = (int32_t)json_integer_value(x);
    }
    if (rc == 0) {
        *ids = out;
        *n = nt;
        out = NULL;
    }
    free(out);
    json_decref(v);
    return rc;
}

/* ---- retries and the cache key ---- */

int pb_oai_retry_after_ms(const char *value, int64_t now_s, int64_t *ms)
{
    char buf[128];
    size_t n = strlen(value);
    while (n && isspace((unsigned char)value[n - 1]))
        n--;
    while (n && isspace((unsigned char)*value)) {
        value++;
        n--;
    }
    if (n == 0 || n >= sizeof buf)
        return PB_EPARSE;
    memcpy(buf, value, n);
    buf[n] = '\0';
    int64_t d;
    if (isdigit((unsigned char)buf[0])) {
        char *end;
        double secs = strtod(buf, &end);
        if (*end != '\0' || !(secs >= 0))
            return PB_EPARSE;
        d = secs * 1000 > PB_OAI_RETRY_AFTER_MAX_MS ? PB_OAI_RETRY_AFTER_MAX_MS
                                                    : (int64_t)(secs * 1000);
    } else {
        time_t t = curl_getdate(buf, NULL);
        if (t == -1)
            return PB_EPARSE;
        d = ((int64_t)t - now_s) * 1000;
    }
    *ms = d < 0 ? 0 : d > PB_OAI_RETRY_AFTER_MAX_MS ? PB_OAI_RETRY_AFTER_MAX_MS : d;
    return 0;
}

int64_t pb_oai_backoff_ms(int base_ms, int attempt, uint64_t r)
{
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < PB_OAI_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > PB_OAI_BACKOFF_MAX_MS)
        d = PB_OAI_BACKOFF_MAX_MS;
    /* Jitter in [d/2, d): requests that failed together spread out. */
    int64_t half = d / 2, span = d - half;
    int64_t j = half + (int64_t)((r >> 16) % (uint64_t)span);
    return j > 0 ? j : 1;
}

void pb_oai_cache_key(const char *url, const char *model, const char *body, size_t len,
                      char out[PB_SHA256_HEX])
{
    pb_sha256_t s;
    unsigned char d[PB_SHA256_LEN];
    pb_sha256_init(&s);
    pb_sha256_update(&s, url, strlen(url));
    pb_sha256_update(&s, "\n", 1);
    pb_sha256_update(&s, model, strlen(model));
    pb_sha256_update(&s, "\n", 1);
    pb_sha256_update(&s, body, len);
    pb_sha256_final(&s, d);
    pb_sha256_to_hex(d, out);
}
