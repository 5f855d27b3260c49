/* The `openai` backend's request engine: one curl multi handle per backend
 * drives up to max_concurrency POSTs from the calling thread, over
 * keep-alive connections the multi handle keeps between batches. Failed
 * attempts are retried after an exponential back-off with jitter (or the
 * server's Retry-After), and every response body is capped. */
#include "worker/openai.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "common/rng.h"

enum { REQ_WAIT, REQ_RUN, REQ_DONE };

struct pb_oai_http {
    CURLM *multi;
    CURL **idle;       /* easy handles not in use, reused for their settings */
    size_t n_idle, n_easy;
    struct curl_slist *headers;
    const pb_oai_spec_t *spec;
    pb_rng_t rng;      /* jitter */
    uint64_t attempts;
    volatile int *cancel; /* the task's flag, or NULL */
    char url[PB_OAI_URL_MAX];
};

void pb_oai_http_set_cancel(pb_oai_http_t *h, volatile int *cancel) { h->cancel = cancel; }

/* Per-request data the callbacks see. */
typedef struct easy_ctx {
    pb_oai_req_t *req;
    size_t cap;
    char errbuf[CURL_ERROR_SIZE];
} easy_ctx_t;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    easy_ctx_t *c = arg;
    size_t n = size * nmemb;
    if (c->req->resp.len + n > c->cap) {
        c->req->too_big = 1;
        return 0; /* CURLE_WRITE_ERROR: the transfer stops here */
    }
    return pb_buf_append(&c->req->resp, p, n) ? 0 : n;
}

/* Keeps Retry-After; a new response (status line) forgets the last one's. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    easy_ctx_t *c = arg;
    size_t n = size * nmemb;
    char v[128];
    if (n > 5 && strncmp(p, "HTTP/", 5) == 0)
        c->req->retry_after_ms = -1;
    if (n > 12 && n < 12 + sizeof v && strncasecmp(p, "retry-after:", 12) == 0) {
        memcpy(v, p + 12, n - 12);
        v[n - 12] = '\0';
        int64_t ms;
        if (pb_oai_retry_after_ms(v, (int64_t)time(NULL), &ms) == 0)
            c->req->retry_after_ms = ms;
    }
    return n;
}

static CURL *easy_new(pb_oai_http_t *h)
{
    CURL *e = curl_easy_init();
    easy_ctx_t *c = calloc(1, sizeof *c);
    long timeout_ms = (long)(h->spec->timeout_s * 1000);
    if (e == NULL || c == NULL) {
        curl_easy_cleanup(e);
        free(c);
        return NULL;
    }
    c->cap = h->spec->response_max;
    int bad = curl_easy_setopt(e, CURLOPT_PRIVATE, c) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, c) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, c) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L)
           != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK;
    if (bad) {
        curl_easy_cleanup(e);
        free(c);
        return NULL;
    }
    return e;
}

static void easy_free(CURL *e)
{
    easy_ctx_t *c = NULL;
    if (e == NULL)
        return;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
    curl_easy_cleanup(e);
    free(c);
}

int pb_oai_http_new(const pb_oai_spec_t *s, pb_oai_http_t **out, pb_err_t *err)
{
    pb_oai_http_t *h = calloc(1, sizeof *h);
    char auth[1024];
    *out = NULL;
    if (h == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    h->spec = s;
    pb_rng_seed(&h->rng, (uint64_t)pb_now_us(), (uint64_t)(uintptr_t)h);
    h->idle = calloc((size_t)s->max_concurrency, sizeof *h->idle);
    h->multi = curl_multi_init();
    /* "Expect:" off: curl would wait for a 100 Continue before big bodies. */
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
    if (l)
        h->headers = l;
    if (l && (l = curl_slist_append(h->headers, "Expect:")))
        h->headers = l;
    if (l && s->api_key) {
        if (strlen(s->api_key) + 32 > sizeof auth) {
            pb_oai_http_free(h);
            return pb_err_set(err, PB_EINVAL, "model.api_key_env",
                              "model.api_key_env: the API key is too long");
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->api_key);
        if ((l = curl_slist_append(h->headers, auth)))
            h->headers = l;
        memset(auth, 0, sizeof auth);
    }
    if (h->idle == NULL || h->multi == NULL || l == NULL) {
        pb_oai_http_free(h);
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    }
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)s->max_concurrency);
    *out = h;
    return 0;
}

void pb_oai_http_free(pb_oai_http_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n_idle; i++)
        easy_free(h->idle[i]);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    curl_slist_free_all(h->headers);
    free(h->idle);
    free(h);
}

uint64_t pb_oai_http_attempts(const pb_oai_http_t *h) { return h->attempts; }

/* Start one attempt of q on an idle (or new) easy handle. */
static int start(pb_oai_http_t *h, pb_oai_req_t *q)
{
    CURL *e = h->n_idle ? h->idle[--h->n_idle] : easy_new(h);
    easy_ctx_t *c = NULL;
    if (e == NULL)
        return PB_ENOMEM;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
    c->req = q;
    c->errbuf[0] = '\0';
    pb_buf_reset(&q->resp);
    q->too_big = 0;
    q->retry_after_ms = -1;
    snprintf(h->url, sizeof h->url, "%s%s", h->spec->base, q->path);
    if (curl_easy_setopt(e, CURLOPT_URL, h->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(q->body)) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body) != CURLE_OK ||
        curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        h->idle[h->n_idle++] = e;
        return PB_ENOMEM;
    }
    q->easy = e;
    q->state = REQ_RUN;
    q->attempts++;
    h->attempts++;
    return 0;
}

static int connect_error(CURLcode r, CURL *e)
{
    curl_off_t ct = 0;
    if (r == CURLE_COULDNT_CONNECT || r == CURLE_COULDNT_RESOLVE_HOST ||
        r == CURLE_COULDNT_RESOLVE_PROXY)
        return 1;
    /* A timeout before the connection was made is a connect failure too. */
    return r == CURLE_OPERATION_TIMEDOUT &&
           curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &ct) == CURLE_OK && ct == 0;
}

static int transient(CURLcode r)
{
    return r == CURLE_OPERATION_TIMEDOUT || r == CURLE_GOT_NOTHING || r == CURLE_SEND_ERROR ||
           r == CURLE_RECV_ERROR || r == CURLE_PARTIAL_FILE || r == CURLE_HTTP2 ||
           r == CURLE_HTTP2_STREAM;
}

/* An attempt ended: done, or waiting for its retry. */
static int finish(pb_oai_http_t *h, pb_oai_req_t *q, CURL *e, CURLcode r)
{
    easy_ctx_t *c = NULL;
    char msg[CURL_ERROR_SIZE + 64];
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
    curl_multi_remove_handle(h->multi, e);
    h->idle[h->n_idle++] = e;
    q->easy = NULL;
    int retry = 0;
    if (r == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        q->status = status;
        retry = status == 429 || status >= 500;
    } else {
        int conn = connect_error(r, e);
        q->connect_fails += conn;
        q->status = 0;
        retry = !q->too_big && (conn || transient(r));
    }
    if (retry && q->attempts <= h->spec->retries) {
        int64_t d = status == 429 || status == 503 ? q->retry_after_ms : -1;
        if (d < 0)
            d = pb_oai_backoff_ms(h->spec->backoff_ms, q->attempts, pb_rng_next(&h->rng));
        q->due_us = pb_now_us() + d * 1000;
        q->state = REQ_WAIT;
        return 0;
    }
    q->state = REQ_DONE;
    q->latency_us = pb_now_us() - q->t0_us;
    q->unreachable = q->connect_fails == q->attempts;
    free(q->error);
    q->error = NULL;
    if (r == CURLE_OK)
        return pb_buf_cstr(&q->resp);
    if (q->too_big)
        snprintf(msg, sizeof msg, "response larger than %zu bytes", c->cap);
    else
        snprintf(msg, sizeof msg, "%s after %d attempt%s: %s", curl_easy_strerror(r), q->attempts,
                 q->attempts == 1 ? "" : "s", c->errbuf[0] ? c->errbuf : "no detail");
    q->error = strdup(msg);
    return q->error ? 0 : PB_ENOMEM;
}

int pb_oai_http_run(pb_oai_http_t *h, pb_oai_req_t *reqs, size_t n)
{
    size_t done = 0, running = 0, next = 0;
    int64_t now = pb_now_us();
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        pb_oai_req_t *q = &reqs[i];
        q->state = REQ_WAIT;
        q->due_us = 0;
        q->t0_us = now;
        q->status = 0;
        q->attempts = q->connect_fails = 0;
        pb_buf_init(&q->resp, 0);
    }
    while (done < n && rc == 0) {
        if (h->cancel && *h->cancel) {
            rc = PB_ECANCELLED;
            break;
        }
        /* New requests in order first, then retries that are due. */
        now = pb_now_us();
        int64_t wake = -1;
        for (; next < n && running < (size_t)h->spec->max_concurrency; next++) {
            reqs[next].t0_us = now;
            if ((rc = start(h, &reqs[next])))
                break;
            running++;
        }
        for (size_t i = 0; rc == 0 && i < next; i++) {
            pb_oai_req_t *q = &reqs[i];
            if (q->state != REQ_WAIT)
                continue;
            if (q->due_us <= now && running < (size_t)h->spec->max_concurrency) {
                if ((rc = start(h, q)))
                    break;
                running++;
            } else if (wake < 0 || q->due_us < wake) {
                wake = q->due_us;
            }
        }
        int still = 0;
        if (rc || curl_multi_perform(h->multi, &still) != CURLM_OK) {
            rc = rc ? rc : PB_ENOMEM;
            break;
        }
        CURLMsg *m;
        int left;
        while (rc == 0 && (m = curl_multi_info_read(h->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            easy_ctx_t *c = NULL;
            CURLcode r = m->data.result;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
            running--;
            rc = finish(h, c->req, e, r);
            if (rc == 0 && c->req->state == REQ_DONE)
                done++;
        }
        if (done == n || rc)
            break;
        int timeout = h->cancel ? 100 : 1000; /* how soon a cancel is seen */
        if (next < n && running < (size_t)h->spec->max_concurrency)
            continue; /* a slot came free: start the next request now */
        if (wake >= 0) {
            int64_t ms = (wake - pb_now_us() + 999) / 1000;
            timeout = ms < 0 ? 0 : ms < timeout ? (int)ms : timeout;
        }
        if (curl_multi_poll(h->multi, NULL, 0, timeout, NULL) != CURLM_OK)
            rc = PB_ENOMEM;
    }
    /* On failure, detach what is still running so the handles are reusable. */
    for (size_t i = 0; i < n; i++)
        if (reqs[i].state == REQ_RUN && reqs[i].easy) {
            curl_multi_remove_handle(h->multi, reqs[i].easy);
            h->idle[h->n_idle++] = reqs[i].easy;
            reqs[i].easy = NULL;
        }
    return rc;
}
