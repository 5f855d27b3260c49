/* Unit tests for the openai backend's pure parts (worker/openai_proto.c):
 * model spec validation naming the field, request bodies, response parsing
 * of good and bad bodies, Retry-After in both forms, the back-off schedule
 * and the cache key; the response cache (worker/openai_cache.c): hits,
 * misses, the off switch and eviction of the oldest past the cap; and the
 * backend against a scripted loopback server: log-likelihood from an echo,
 * a 503 retried after Retry-After, a 400 not retried, /tokenize asked once,
 * pair scores from embeddings. */
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "worker/backend.h"
#include "worker/openai.h"

static int spec_err(const char *text, pb_oai_spec_t *s, pb_err_t *err)
{
    json_t *m = pb_test_json(text);
    memset(err, 0, sizeof *err);
    int rc = pb_oai_spec_parse(m, s, err);
    json_decref(m);
    return rc;
}

static void test_spec(void **state)
{
    (void)state;
    pb_oai_spec_t s;
    pb_err_t err;
    assert_int_equal(spec_err("{\"base_url\": \"http://h:1/v1/\", \"model\": \"m\"}", &s, &err), 0);
    assert_string_equal(s.base, "http://h:1");
    assert_int_equal(s.chat, 0);
    assert_int_equal(s.max_concurrency, PB_OAI_CONCURRENCY);
    assert_int_equal(s.retries, PB_OAI_RETRIES);
    assert_null(s.api_key);
    assert_int_equal(s.cache, 1);
    pb_oai_spec_free(&s);

    setenv("PB_UNIT_OAI_KEY", "sk-unit", 1);
    assert_int_equal(spec_err("{\"base_url\": \"https://h\", \"model\": \"m\", \"mode\": \"chat\","
                              " \"api_key_env\": \"PB_UNIT_OAI_KEY\", \"max_concurrency\": 64,"
                              " \"rerank\": \"score\", \"extra\": {\"stop\": [\"\\n\"]}}",
                              &s, &err), 0);
    assert_int_equal(s.chat, 1);
    assert_string_equal(s.api_key, "sk-unit");
    assert_int_equal(s.rerank, PB_OAI_RERANK_SCORE);
    assert_int_equal(s.max_concurrency, 64);
    pb_oai_spec_free(&s);

    static const struct { const char *text, *field; } bad[] = {
        {"{\"model\": \"m\"}", "model.base_url"},
        {"{\"base_url\": \"ftp://h\", \"model\": \"m\"}", "model.base_url"},
        {"{\"base_url\": \"http://h\"}", "model.model"},
        {"{\"base_url\": \"http://h\", \"model\": \"\"}", "model.model"},
        {"{\"base_url\": \"http://h\", \"model\": \"m\", \"mode\": \"x\"}", "model.mode"},
        {"{\"base_url\": \"http://h\", \"model\": \"m\", \"max_concurrency\": 0}",
         "model.max_concurrency"},
        {"{\"base_url\": \"http://h\", \"model\": \"m\", \"timeout_s\": -1}", "model.timeout_s"},
        {"{\"base_url\": \"http://h\", \"model\": \"m\", \"rerank\": \"x\"}", "model.rerank"},
        {"{\"base_url\": \"http://h\", \"model\": \"m\", \"extra\": 3}", "model.extra"},
        {"{\"base_url\": \"http://h\", \"model\": \"m\", \"api_key_env\": \"PB_UNIT_NOPE\"}",
         "model.api_key_env"},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(bad); i++) {
        assert_int_equal(spec_err(bad[i].text, &s, &err), PB_EINVAL);
        assert_string_equal(err.field, bad[i].field);
        assert_true(err.msg[0] != '\0');
        assert_null(s.base);
    }
    /* the variable is named, its value (were there one) is not */
    assert_non_null(strstr(err.msg, "PB_UNIT_NOPE"));
}

static void test_bodies(void **state)
{
    (void)state;
    pb_oai_spec_t s;
    pb_err_t err;
    assert_int_equal(spec_err("{\"base_url\": \"http://h\", \"model\": \"m\","
                              " \"extra\": {\"temperature\": 0.5, \"seed\": 3}}", &s, &err), 0);
    char *b = pb_oai_gen_body(&s, "1+2=", 7);
    json_t *v = pb_test_json(b);
    assert_string_equal(json_string_value(json_object_get(v, "prompt")), "1+2=");
    assert_int_equal(json_integer_value(json_object_get(v, "max_tokens")), 7);
    /* extra overrides the defaults */
    assert_true(json_real_value(json_object_get(v, "temperature")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(v, "seed")), 3);
    json_decref(v);
    free(b);
    s.chat = 1;
    b = pb_oai_gen_body(&s, "hi", 4);
    v = pb_test_json(b);
    json_t *msg = json_array_get(json_object_get(v, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "user");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "hi");
    json_decref(v);
    free(b);
    b = pb_oai_loglik_body(&s, "a b");
    v = pb_test_json(b);
    assert_true(json_is_true(json_object_get(v, "echo")));
    assert_int_equal(json_integer_value(json_object_get(v, "logprobs")), 1);
    json_decref(v);
    free(b);
    const char *docs[] = {"d0", "d1"};
    s.rerank = PB_OAI_RERANK_SCORE;
    b = pb_oai_rerank_body(&s, "q", docs, 2);
    v = pb_test_json(b);
    assert_string_equal(json_string_value(json_object_get(v, "text_1")), "q");
    assert_int_equal(json_array_size(json_object_get(v, "text_2")), 2);
    json_decref(v);
    free(b);
    s.rerank = PB_OAI_RERANK_COHERE;
    b = pb_oai_rerank_body(&s, "q", docs, 2);
    v = pb_test_json(b);
    assert_string_equal(json_string_value(json_object_get(v, "query")), "q");
    assert_int_equal(json_array_size(json_object_get(v, "documents")), 2);
    json_decref(v);
    free(b);
    pb_oai_spec_free(&s);
}

#define PARSE_TEXT(chat, body, out, tok, why) \
    pb_oai_parse_text(chat, body, strlen(body), out, tok, why)

static void test_parse_text(void **state)
{
    (void)state;
    char *text = NULL;
    int64_t tok = -1;
    pb_err_t why = {0};
    assert_int_equal(PARSE_TEXT(0, "{\"choices\": [{\"text\": \" 42\"}], \"usage\":"
                                   " {\"completion_tokens\": 2}}", &text, &tok, &why), 0);
    assert_string_equal(text, " 42");
    assert_int_equal(tok, 2);
    free(text);
    text = NULL;
    assert_int_equal(PARSE_TEXT(1, "{\"choices\": [{\"message\": {\"content\": \"hi\"}}]}",
                                &text, &tok, &why), 0);
    assert_string_equal(text, "hi");
    assert_int_equal(tok, 0);
    free(text);
    text = NULL;
    static const struct { int chat; const char *body, *why; } bad[] = {
        {0, "<html>", "not JSON"},
        {0, "{\"choices\": [{\"text\": \"4", "not JSON"},
        {0, "[1, 2]", "not an object"},
        {0, "{\"choices\": []}", "choices[0].text"},
        {0, "{\"choices\": [{\"text\": 4}]}", "choices[0].text"},
        {1, "{\"choices\": [{\"text\": \"4\"}]}", "choices[0].message.content"},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(bad); i++) {
        memset(&why, 0, sizeof why);
        assert_int_equal(PARSE_TEXT(bad[i].chat, bad[i].body, &text, &tok, &why), PB_EPARSE);
        assert_null(text);
        if (strstr(why.msg, bad[i].why) == NULL)
            fail_msg("body %s: reason '%s' lacks '%s'", bad[i].body, why.msg, bad[i].why);
    }
}

static void test_parse_vectors(void **state)
{
    (void)state;
    pb_err_t why = {0};
    float *m = NULL;
    size_t d = 0;
    const char *emb = "{\"data\": [{\"index\": 1, \"embedding\": [3, 4]},"
                      " {\"index\": 0, \"embedding\": [1, 2.5]}]}";
    assert_int_equal(pb_oai_parse_embed(emb, strlen(emb), 2, &m, &d, &why), 0);
    assert_int_equal(d, 2);
    assert_true(m[0] == 1 && m[1] == 2.5f && m[2] == 3 && m[3] == 4);
    free(m);
    m = NULL;
    const char *dup = "{\"data\": [{\"index\": 0, \"embedding\": [1]},"
                      " {\"index\": 0, \"embedding\": [2]}]}";
    assert_int_equal(pb_oai_parse_embed(dup, strlen(dup), 2, &m, &d, &why), PB_EPARSE);
    assert_non_null(strstr(why.msg, "index"));
    const char *ragged = "{\"data\": [{\"embedding\": [1, 2]}, {\"embedding\": [2]}]}";
    assert_int_equal(pb_oai_parse_embed(ragged, strlen(ragged), 2, &m, &d, &why), PB_EPARSE);
    assert_int_equal(pb_oai_parse_embed(emb, strlen(emb), 3, &m, &d, &why), PB_EPARSE);
    assert_null(m);

    double sc[2] = {0, 0};
    const char *rr = "{\"results\": [{\"index\": 1, \"relevance_score\": 0.9},"
                     " {\"index\": 0, \"relevance_score\": 0.1}]}";
    assert_int_equal(pb_oai_parse_scores(PB_OAI_RERANK_COHERE, rr, strlen(rr), 2, sc, &why), 0);
    assert_true(sc[0] == 0.1 && sc[1] == 0.9);
    const char *vs = "{\"data\": [{\"index\": 0, \"score\": 2}, {\"index\": 1, \"score\": -1}]}";
    assert_int_equal(pb_oai_parse_scores(PB_OAI_RERANK_SCORE, vs, strlen(vs), 2, sc, &why), 0);
    assert_true(sc[0] == 2 && sc[1] == -1);
    assert_int_equal(pb_oai_parse_scores(PB_OAI_RERANK_COHERE, vs, strlen(vs), 2, sc, &why),
                     PB_EPARSE);
    assert_non_null(strstr(why.msg, "results"));

    int32_t *ids = NULL;
    size_t n = 0;
    const char *tk = "{\"tokens\": [5, 9, 1], \"count\": 3}";
    assert_int_equal(pb_oai_parse_tokens(tk, strlen(tk), &ids, &n, &why), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], 9);
    free(ids);
    assert_int_equal(pb_oai_parse_tokens("{\"tokens\": [-1]}", 16, &ids, &n, &why), PB_EPARSE);
}

static void test_parse_loglik(void **state)
{
    (void)state;
    /* "The cat sat": tokens "The", " cat", " sat" and a generated " on";
     * the context is "The cat" (7 characters). */
    const char *body =
        "{\"choices\": [{\"text\": \"The cat sat on\", \"logprobs\": {"
        "\"tokens\": [\"The\", \" cat\", \" sat\", \" on\"],"
        "\"token_logprobs\": [null, -1.5, -0.25, -3],"
        "\"text_offset\": [0, 3, 7, 11],"
        "\"top_logprobs\": [null, {\" cat\": -1.5}, {\" sat\": -0.25, \" mat\": -2}, {}]}}]}";
    double ll = 0;
    int greedy = -1;
    pb_err_t why = {0};
    size_t s7[2] = {7, 7}, s5[2] = {5, 5}, s3[2] = {3, 3}, t11[2] = {11, 11}, t5[2] = {5, 5};
    assert_int_equal(pb_oai_parse_loglik(body, strlen(body), s7, t11, &ll, &greedy, &why), 0);
    assert_true(fabs(ll + 0.25) < 1e-12);
    assert_int_equal(greedy, 1);
    /* the split inside " cat": that token belongs to the continuation too */
    assert_int_equal(pb_oai_parse_loglik(body, strlen(body), s5, t11, &ll, &greedy, &why), 0);
    assert_true(fabs(ll + 1.75) < 1e-12);
    const char *worse = "{\"choices\": [{\"logprobs\": {\"token_logprobs\": [null, -2],"
                        " \"text_offset\": [0, 3], \"top_logprobs\": [null, {\"x\": -1}]}}]}";
    assert_int_equal(pb_oai_parse_loglik(worse, strlen(worse), s3, t5, &ll, &greedy, &why), 0);
    assert_int_equal(greedy, 0);
    /* "é" + "t" + "é": 3 characters, 5 bytes; context "é" (1 char, 2 bytes).
     * Offsets in characters (0, 1, 2, generated at 3) and in bytes (0, 2,
     * 3, generated at 5) give the same sum. */
    const char *chars = "{\"choices\": [{\"logprobs\": {\"token_logprobs\": [null, -1, -2, -4],"
                        " \"text_offset\": [0, 1, 2, 3], \"top_logprobs\": [null, {}, {}, {}]}}]}";
    const char *bytes = "{\"choices\": [{\"logprobs\": {\"token_logprobs\": [null, -1, -2, -4],"
                        " \"text_offset\": [0, 2, 3, 5], \"top_logprobs\": [null, {}, {}, {}]}}]}";
    size_t split[2] = {1, 2}, total[2] = {3, 5};
    assert_int_equal(pb_oai_parse_loglik(chars, strlen(chars), split, total, &ll, NULL, &why), 0);
    assert_true(fabs(ll + 3) < 1e-12);
    assert_int_equal(pb_oai_parse_loglik(bytes, strlen(bytes), split, total, &ll, NULL, &why), 0);
    assert_true(fabs(ll + 3) < 1e-12);
    const char *none = "{\"choices\": [{\"text\": \"x\"}]}";
    assert_int_equal(pb_oai_parse_loglik(none, strlen(none), s3, t5, &ll, &greedy, &why),
                     PB_EUNSUPPORTED);
    assert_non_null(strstr(why.msg, "logprobs"));
}

static void test_retry_after_and_backoff(void **state)
{
    (void)state;
    int64_t ms = -1;
    assert_int_equal(pb_oai_retry_after_ms("3", 0, &ms), 0);
    assert_int_equal(ms, 3000);
    assert_int_equal(pb_oai_retry_after_ms(" 0 \r\n", 0, &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(pb_oai_retry_after_ms("99999", 0, &ms), 0);
    assert_int_equal(ms, PB_OAI_RETRY_AFTER_MAX_MS);
    /* Sun, 06 Nov 1994 08:49:37 GMT is 784111777 */
    assert_int_equal(pb_oai_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111770, &ms), 0);
    assert_int_equal(ms, 7000);
    assert_int_equal(pb_oai_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111800, &ms), 0);
    assert_int_equal(ms, 0); /* a date in the past: now */
    assert_int_equal(pb_oai_retry_after_ms("soon", 0, &ms), PB_EPARSE);
    assert_int_equal(pb_oai_retry_after_ms("", 0, &ms), PB_EPARSE);
    assert_int_equal(pb_oai_retry_after_ms("-1", 0, &ms), PB_EPARSE);

    /* doubling from the base, capped, jitter in [0.5, 1) of the step */
    for (int a = 1; a <= 12; a++) {
        int64_t step = (int64_t)500 << (a - 1);
        if (step > PB_OAI_BACKOFF_MAX_MS)
            step = PB_OAI_BACKOFF_MAX_MS;
        assert_int_equal(pb_oai_backoff_ms(500, a, 0), step / 2);
        int64_t lo = step, hi = 0;
        for (uint64_t r = 1; r < 200; r++) {
            int64_t d = pb_oai_backoff_ms(500, a, r * 0x9E3779B97F4A7C15ULL);
            assert_true(d >= step / 2 && d < step);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* the jitter spreads over most of the range */
        assert_true(lo < step * 6 / 10 && hi > step * 9 / 10);
    }
}

static void test_cache_key(void **state)
{
    (void)state;
    char a[PB_SHA256_HEX], b[PB_SHA256_HEX];
    pb_oai_cache_key("http://h/v1/completions", "m", "{}", 2, a);
    assert_true(pb_sha256_is_hex(a));
    pb_oai_cache_key("http://h/v1/completions", "m", "{}", 2, b);
    assert_string_equal(a, b);
    pb_oai_cache_key("http://h/v1/completions", "m2", "{}", 2, b);
    assert_string_not_equal(a, b);
    pb_oai_cache_key("http://h/v1/chat/completions", "m", "{}", 2, b);
    assert_string_not_equal(a, b);
    pb_oai_cache_key("http://h/v1/completions", "m", "{ }", 3, b);
    assert_string_not_equal(a, b);
    /* the separators keep (url, model) pairs apart */
    pb_oai_cache_key("http://h/v1/completions\nm", "", "{}", 2, b);
    assert_string_not_equal(a, b);
}

static void test_cache(void **state)
{
    (void)state;
    char dir[512], path[600], key[16];
    pb_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sub/responses.sqlite", dir);
    char *body = NULL;
    size_t len = 0;
    /* off: nothing is found, nothing is stored */
    assert_int_equal(pb_oai_cache_configure(NULL, 0), 0);
    const char *k1 = "k1", *b1 = "{\"a\": 1}";
    size_t l1 = strlen(b1);
    pb_oai_cache_put(&k1, &b1, &l1, 1);
    assert_int_equal(pb_oai_cache_get("k1", &body, &len), PB_ENOTFOUND);

    /* 10 KiB cap, 1 KiB bodies: the oldest go first */
    assert_int_equal(pb_oai_cache_configure(path, 10 << 10), 0);
    assert_int_equal(pb_oai_cache_get("k1", &body, &len), PB_ENOTFOUND);
    char big[1024];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "b%d", i);
        const char *k = key, *b = big;
        size_t l = sizeof big;
        big[0] = (char)('A' + i);
        pb_oai_cache_put(&k, &b, &l, 1);
    }
    assert_int_equal(pb_oai_cache_get("b29", &body, &len), 0);
    assert_int_equal(len, sizeof big);
    assert_int_equal(body[0], 'A' + 29);
    free(body);
    assert_int_equal(pb_oai_cache_get("b0", &body, &len), PB_ENOTFOUND);
    int kept = 0;
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "b%d", i);
        if (pb_oai_cache_get(key, &body, &len) == 0) {
            kept++;
            free(body);
        }
    }
    assert_true(kept >= 5 && kept <= 10);
    /* a reopened file keeps its answers */
    assert_int_equal(pb_oai_cache_configure(path, 10 << 10), 0);
    assert_int_equal(pb_oai_cache_get("b29", &body, &len), 0);
    free(body);
    pb_oai_cache_close();
}

/* ---- the backend against a scripted loopback server ---- */

/* Answers each request with the next of its replies (the last one again
 * once they run out), one connection at a time, and counts requests. */
typedef struct tsrv {
    int fd, port, hits;
    const char *const *replies;
    size_t n;
    pthread_t th;
} tsrv_t;

static void *tsrv_main(void *arg)
{
    tsrv_t *t = arg;
    int c;
    while ((c = accept(t->fd, NULL, NULL)) >= 0) {
        char buf[65536];
        size_t len = 0;
        ssize_t k;
        while ((k = read(c, buf + len, sizeof buf - 1 - len)) > 0) {
            len += (size_t)k;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "content-length:");
            size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
            if (end == NULL || len < (size_t)(end + 4 - buf) + body)
                continue;
            const char *r = t->replies[(size_t)t->hits < t->n ? (size_t)t->hits : t->n - 1];
            __atomic_add_fetch(&t->hits, 1, __ATOMIC_SEQ_CST);
            char out[8192];
            int n = snprintf(out, sizeof out, "%s", r);
            if (write(c, out, (size_t)n) != n)
                break;
            len = 0;
        }
        close(c);
    }
    return NULL;
}

static void tsrv_start(tsrv_t *t, const char *const *replies, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    memset(t, 0, sizeof *t);
    t->replies = replies;
    t->n = n;
    t->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(t->fd >= 0);
    assert_int_equal(bind(t->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(t->fd, 8), 0);
    assert_int_equal(getsockname(t->fd, (struct sockaddr *)&a, &al), 0);
    t->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&t->th, NULL, tsrv_main, t), 0);
}

static void tsrv_stop(tsrv_t *t)
{
    shutdown(t->fd, SHUT_RDWR); /* wakes accept */
    pthread_join(t->th, NULL);
    close(t->fd);
}

static pb_backend_t *open_at(const tsrv_t *t, const char *more)
{
    char text[512];
    pb_backend_t *b = NULL;
    pb_err_t err = {{0}, {0}};
    snprintf(text, sizeof text,
             "{\"base_url\": \"http://127.0.0.1:%d\", \"model\": \"m\", \"backoff_ms\": 1,"
             " \"max_concurrency\": 1, \"timeout_s\": 5%s}", t->port, more);
    json_t *m = pb_test_json(text);
    if (pb_backend_find("openai")->open(m, 1, &b, &err))
        fail_msg("open: %s", err.msg);
    json_decref(m);
    return b;
}

#define OK_HDR "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "

static void test_backend_loglik_and_retries(void **state)
{
    (void)state;
    const pb_backend_ops_t *ops = pb_backend_find("openai");
    char echo[1024];
    const char *lp = "{\"choices\": [{\"text\": \"The cat sat on\", \"logprobs\": {"
                     "\"tokens\": [\"The\", \" cat\", \" sat\", \" on\"],"
                     "\"token_logprobs\": [null, -1.5, -0.25, -3],"
                     "\"text_offset\": [0, 3, 7, 11],"
                     "\"top_logprobs\": [null, {\" cat\": -1.5}, {\" sat\": -0.25}, {}]}}]}";
    snprintf(echo, sizeof echo, OK_HDR "%zu\r\n\r\n%s", strlen(lp), lp);
    /* a 503 with Retry-After: 0 first: retried, then the echo */
    const char *replies[] = {
        "HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 2\r\n\r\n{}", echo};
    tsrv_t t;
    tsrv_start(&t, replies, 2);
    pb_backend_t *b = open_at(&t, "");
    const char *conts[] = {" sat"};
    double ll = 0;
    int greedy = 0;
    pb_err_t err = {{0}, {0}};
    /* context "The cat", continuation " sat": the echo's token at 7..11 */
    assert_int_equal(ops->loglik(b, "The cat", conts, 1, &ll, &greedy, &err), 0);
    assert_true(fabs(ll + 0.25) < 1e-12);
    assert_int_equal(greedy, 1);
    assert_int_equal(t.hits, 2);
    ops->close(b);
    tsrv_stop(&t);

    /* a server without echo + logprobs: 400, not retried, a clear error */
    const char *refuse[] = {"HTTP/1.1 400 Bad Request\r\nContent-Length: 23\r\n\r\n"
                            "{\"error\": \"no logprobs\"}"};
    tsrv_start(&t, refuse, 1);
    b = open_at(&t, "");
    assert_int_equal(ops->loglik(b, "The cat", conts, 1, &ll, &greedy, &err), PB_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "not supported by this server"));
    assert_int_equal(t.hits, 1);
    ops->close(b);
    tsrv_stop(&t);
}

static void test_backend_tokenize_once_and_embed(void **state)
{
    (void)state;
    const pb_backend_ops_t *ops = pb_backend_find("openai");
    const char *replies[] = {"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"};
    tsrv_t t;
    tsrv_start(&t, replies, 1);
    pb_backend_t *b = open_at(&t, "");
    int64_t n = 0;
    /* asked once, then remembered */
    assert_int_equal(ops->count_tokens(b, "a b", 3, &n), PB_EUNSUPPORTED);
    assert_int_equal(ops->count_tokens(b, "a b c", 5, &n), PB_EUNSUPPORTED);
    assert_int_equal(t.hits, 1);
    ops->close(b);
    tsrv_stop(&t);

    char emb[512];
    const char *body = "{\"data\": [{\"index\": 0, \"embedding\": [1, 0]},"
                       " {\"index\": 1, \"embedding\": [0.5, 0.5]},"
                       " {\"index\": 2, \"embedding\": [0, 1]}]}";
    snprintf(emb, sizeof emb, OK_HDR "%zu\r\n\r\n%s", strlen(body), body);
    const char *er[] = {emb};
    tsrv_start(&t, er, 1);
    b = open_at(&t, "");
    /* no rerank endpoint: pair scores are embedding dot products */
    ps_item_t q = {.prompt = "query"};
    const char *docs[] = {"d1", "d2"};
    double sc[2];
    pb_err_t err = {{0}, {0}};
    assert_int_equal(ops->score_pairs(b, &q, docs, 2, sc, &err), 0);
    assert_true(fabs(sc[0] - 0.5) < 1e-9 && fabs(sc[1]) < 1e-9);
    ops->close(b);
    tsrv_stop(&t);
}

int pb_test_openai(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec),        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_parse_text),  cmocka_unit_test(test_parse_vectors),
        cmocka_unit_test(test_parse_loglik), cmocka_unit_test(test_retry_after_and_backoff),
        cmocka_unit_test(test_cache_key),   cmocka_unit_test(test_cache),
        cmocka_unit_test(test_backend_loglik_and_retries),
        cmocka_unit_test(test_backend_tokenize_once_and_embed),
    };
    return cmocka_run_group_tests_name("openai", tests, NULL, NULL);
}
