/* posbench-serve's routes (serve.h), on the loop thread: parse and check a
 * request, answer the cheap ones at once (/v1/models, /tokenize,
 * /detokenize, /health, /metrics) and queue model work for batch.c with
 * the answer deferred. Every error is OpenAI's {"error": {...}} shape. */
#include "serve/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/utf8.h"

#define TOKENIZE_MAX (1 << 20) /* ids per /detokenize request */

const char *const pv_ep_names[PV_EP_N] = {
    "/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize",
    "/detokenize", "/metrics", "/health", "other"};

void pv_resp_error(pb_http_resp_t *resp, int status, const char *msg, const char *param,
                   const char *code)
{
    char *s = pv_error_json(status, msg, param, code);
    free(resp->body);
    resp->body = s;
    resp->body_len = s ? strlen(s) : 0;
    resp->status = status;
    resp->content_type = "application/json";
}

void pv_http_error_body(pb_http_resp_t *resp, int status, const char *msg)
{
    pv_resp_error(resp, status, msg, NULL, NULL);
}

void pv_metrics_count(pv_server_t *srv, pv_ep_t ep, int status)
{
    pv_metrics_t *m = &srv->m;
    for (size_t i = 0; i < m->n_req; i++)
        if (m->req[i].ep == (int)ep && m->req[i].status == status) {
            m->req[i].n++;
            return;
        }
    if (m->n_req < PB_ARRAY_LEN(m->req)) {
        m->req[m->n_req].ep = (int)ep;
        m->req[m->n_req].status = status;
        m->req[m->n_req++].n = 1;
    }
}

static int set_json(pb_http_resp_t *resp, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (s == NULL) {
        pv_resp_error(resp, 503, "out of memory", NULL, NULL);
        return 503;
    }
    free(resp->body);
    resp->body = s;
    resp->body_len = strlen(s);
    resp->status = 200;
    return 200;
}

/* ---- cheap routes ---- */

static json_t *model_json(const pv_server_t *srv)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:i}", "id", srv->name, "object", "model", "created",
                     (json_int_t)srv->started, "owned_by", "posbench", "max_model_len", srv->ctx);
}

static void route_metrics(pv_server_t *srv, pb_http_resp_t *resp)
{
    pb_buf_t b;
    size_t queued, running;
    uint64_t hist[8], batches, jobs, gcalls, gseqs, gmax, greq;
    pb_buf_init(&b, 0);
    pthread_mutex_lock(&srv->mx);
    queued = srv->queued;
    running = srv->running;
    memcpy(hist, srv->m.batch_hist, sizeof hist);
    batches = srv->m.batches;
    jobs = srv->m.batched_jobs;
    gcalls = srv->m.gen_calls;
    gseqs = srv->m.gen_seqs;
    gmax = srv->m.gen_seq_max;
    greq = srv->m.gen_req_max;
    pthread_mutex_unlock(&srv->mx);
    int rc = pb_buf_puts(&b, "# HELP posbench_serve_requests_total Requests answered, by endpoint "
                             "and status.\n# TYPE posbench_serve_requests_total counter\n");
    for (size_t i = 0; rc == 0 && i < srv->m.n_req; i++)
        rc = pb_buf_printf(&b, "posbench_serve_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                           pv_ep_names[srv->m.req[i].ep], srv->m.req[i].status,
                           (unsigned long long)srv->m.req[i].n);
    rc = rc ? rc : pb_buf_printf(&b,
        "# TYPE posbench_serve_prompt_tokens_total counter\nposbench_serve_prompt_tokens_total %llu\n"
        "# TYPE posbench_serve_generation_tokens_total counter\n"
        "posbench_serve_generation_tokens_total %llu\n"
        "# TYPE posbench_serve_queue_depth gauge\nposbench_serve_queue_depth %zu\n"
        "# TYPE posbench_serve_running gauge\nposbench_serve_running %zu\n"
        "# HELP posbench_serve_batch_size Requests taken by one model-thread pass.\n"
        "# TYPE posbench_serve_batch_size histogram\n",
        (unsigned long long)srv->m.prompt_tokens, (unsigned long long)srv->m.completion_tokens,
        queued, running);
    uint64_t cum = 0;
    for (int k = 0; rc == 0 && k < 7; k++) {
        cum += hist[k];
        rc = pb_buf_printf(&b, "posbench_serve_batch_size_bucket{le=\"%d\"} %llu\n", 1 << k,
                           (unsigned long long)cum);
    }
    rc = rc ? rc : pb_buf_printf(&b,
        "posbench_serve_batch_size_bucket{le=\"+Inf\"} %llu\nposbench_serve_batch_size_sum %llu\n"
        "posbench_serve_batch_size_count %llu\n"
        "# HELP posbench_serve_generate_steps_total Engine steps (one batched pass: the next "
        "token of every running sequence, the prompts of the new ones).\n"
        "# TYPE posbench_serve_generate_steps_total counter\n"
        "posbench_serve_generate_steps_total %llu\n"
        "# TYPE posbench_serve_generate_step_sequences_total counter\n"
        "posbench_serve_generate_step_sequences_total %llu\n"
        "# HELP posbench_serve_generate_step_sequences_max Most sequences in one step.\n"
        "# TYPE posbench_serve_generate_step_sequences_max gauge\n"
        "posbench_serve_generate_step_sequences_max %llu\n"
        "# HELP posbench_serve_generate_step_requests_max Most requests in one step.\n"
        "# TYPE posbench_serve_generate_step_requests_max gauge\n"
        "posbench_serve_generate_step_requests_max %llu\n",
        (unsigned long long)batches, (unsigned long long)jobs, (unsigned long long)batches,
        (unsigned long long)gcalls, (unsigned long long)gseqs, (unsigned long long)gmax,
        (unsigned long long)greq);
    if (rc) {
        pb_buf_free(&b);
        pv_resp_error(resp, 503, "out of memory", NULL, NULL);
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4";
    resp->body = b.data;
    resp->body_len = b.len;
}

/* A body that must be a JSON object naming this model (or none). */
static json_t *parse_body(pv_server_t *srv, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    json_error_t je;
    char msg[400];
    json_t *body = json_loadb(req->body, req->body_len, 0, &je);
    if (body == NULL) {
        snprintf(msg, sizeof msg, "invalid JSON body: %s (line %d, column %d)", je.text, je.line,
                 je.column);
        pv_resp_error(resp, 400, msg, NULL, "invalid_json");
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        pv_resp_error(resp, 400, "the request body must be a JSON object", NULL, "invalid_json");
        return NULL;
    }
    const json_t *model = json_object_get(body, "model");
    if (model && !json_is_null(model) && !json_is_string(model)) {
        json_decref(body);
        pv_resp_error(resp, 400, "model must be a string", "model", NULL);
        return NULL;
    }
    if (model && json_is_string(model) && strcmp(json_string_value(model), srv->name) != 0) {
        snprintf(msg, sizeof msg, "The model `%.200s` does not exist; this server has `%.60s`.",
                 json_string_value(model), srv->name);
        json_decref(body);
        pv_resp_error(resp, 404, msg, "model", "model_not_found");
        return NULL;
    }
    return body;
}

/* Token ids out of a JSON array of integers (malloc'd). */
static int ids_of(const json_t *a, size_t max, int32_t **ids, size_t *n)
{
    const json_t *v;
    size_t i;
    *ids = NULL;
    *n = 0;
    if (!json_is_array(a) || json_array_size(a) > max)
        return PB_EINVAL;
    if ((*ids = malloc((json_array_size(a) + 1) * sizeof **ids)) == NULL)
        return PB_ENOMEM;
    json_array_foreach(a, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > INT32_MAX) {
            free(*ids);
            *ids = NULL;
            return PB_EINVAL;
        }
        (*ids)[i] = (int32_t)json_integer_value(v);
    }
    *n = json_array_size(a);
    return 0;
}

static void route_tokenize(pv_server_t *srv, const json_t *body, pb_http_resp_t *resp)
{
    const char *prompt;
    int add = 1;
    int32_t *ids = NULL;
    size_t n = 0;
    pb_err_t err = {{0}, {0}};
    if (pb_json_str(body, "prompt", NULL, 1, &prompt, "", &err) ||
        pb_json_bool(body, "add_special_tokens", 1, &add, "", &err)) {
        pv_resp_error(resp, 400, err.msg, err.field, NULL);
        return;
    }
    size_t len = json_string_length(json_object_get(body, "prompt"));
    int rc = pe_tok_encode(srv->tok, prompt, len, add, &ids, &n);
    if (rc) {
        pv_resp_error(resp, rc == PB_ENOMEM ? 503 : 400, pb_strerror(rc), "prompt", NULL);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    free(ids);
    set_json(resp, a ? json_pack("{s:o, s:I, s:i}", "tokens", a, "count", (json_int_t)n,
                                 "max_model_len", srv->ctx)
                     : NULL);
}

static void route_detokenize(pv_server_t *srv, const json_t *body, pb_http_resp_t *resp)
{
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *text = NULL;
    pb_buf_t clean;
    int rc = ids_of(json_object_get(body, "tokens"), TOKENIZE_MAX, &ids, &n);
    if (rc == PB_EINVAL) {
        pv_resp_error(resp, 400, "tokens must be an array of token ids", "tokens", NULL);
        return;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (ids[i] >= srv->dims.vocab && ids[i] >= (int32_t)pe_tok_vocab_size(srv->tok))
            rc = PB_EINVAL;
    rc = rc ? rc : n ? pe_tok_decode(srv->tok, ids, n, 0, &text, &len) : 0;
    pb_buf_init(&clean, 0);
    rc = rc ? rc : pb_utf8_clean(text ? text : "", len, &clean);
    rc = rc ? rc : pb_buf_cstr(&clean);
    free(ids);
    free(text);
    if (rc)
        pv_resp_error(resp, rc == PB_ENOMEM ? 503 : 400,
                      rc == PB_EINVAL ? "a token id is outside the vocabulary" : pb_strerror(rc),
                      "tokens", NULL);
    else
        set_json(resp, json_pack("{s:s#}", "prompt", clean.data, clean.len));
    pb_buf_free(&clean);
}

/* ---- model routes ---- */

/* The prompts of "prompt" / "input": a string, an array of strings, an
 * array of ids, or an array of id arrays. */
static int parse_prompts(pv_job_t *job, const json_t *v, const char *key, char *msg, size_t msglen)
{
    size_t n = 1, i;
    const json_t *e;
    if (v == NULL || json_is_null(v)) {
        snprintf(msg, msglen, "%s is required", key);
        return PB_EINVAL;
    }
    int ids_flat = json_is_array(v) && json_array_size(v) > 0 &&
                   json_is_integer(json_array_get(v, 0));
    if (json_is_array(v) && !ids_flat)
        n = json_array_size(v);
    if (n == 0 || n > PV_PROMPTS_MAX) {
        snprintf(msg, msglen, "%s must hold 1 to %d prompts", key, PV_PROMPTS_MAX);
        return PB_EINVAL;
    }
    if ((job->prompts = calloc(n, sizeof *job->prompts)) == NULL)
        return PB_ENOMEM;
    job->n_prompts = n;
    for (i = 0; i < n; i++) {
        e = json_is_array(v) && !ids_flat ? json_array_get(v, i) : v;
        pv_prompt_t *pr = &job->prompts[i];
        if (json_is_string(e)) {
            pr->text = json_string_value(e);
            pr->len = json_string_length(e);
            continue;
        }
        int rc = ids_of(e, (size_t)PV_MAX_TOKENS_CAP, &pr->ids, &pr->n_ids);
        if (rc == PB_EINVAL)
            snprintf(msg, msglen, "%s must be a string, an array of strings, an array of token "
                     "ids or an array of such arrays", key);
        if (rc)
            return rc;
    }
    return 0;
}

static void route_model_work(pv_server_t *srv, pv_ep_t ep, json_t *body,
                             const pb_http_req_t *req, pb_http_resp_t *resp)
{
    pb_err_t err = {{0}, {0}};
    char msg[300] = "";
    static uint64_t counter;
    pv_job_t *job = calloc(1, sizeof *job);
    if (job == NULL) {
        json_decref(body);
        pv_resp_error(resp, 503, "out of memory", NULL, NULL);
        return;
    }
    job->srv = srv;
    job->ep = ep;
    job->body = body;
    job->created = (int64_t)time(NULL);
    pb_buf_init(&job->out, 0);
    job->kind = ep == PV_EP_CHAT ? PV_JOB_CHAT : ep == PV_EP_EMBEDDINGS ? PV_JOB_EMBED
                                                                         : PV_JOB_COMPLETE;
    snprintf(job->id, sizeof job->id, "%s-%llx%06llx",
             job->kind == PV_JOB_CHAT ? "chatcmpl" : job->kind == PV_JOB_EMBED ? "embd" : "cmpl",
             (unsigned long long)job->created, (unsigned long long)(++counter & 0xffffff));
    int rc = 0;
    const char *param = NULL;
    if (job->kind == PV_JOB_EMBED) {
        const char *fmt;
        rc = pb_json_str(body, "encoding_format", "float", 0, &fmt, "", &err);
        if (rc == 0 && strcmp(fmt, "float") != 0)
            rc = pb_err_set(&err, PB_EINVAL, "encoding_format",
                            "encoding_format \"%s\" is not supported (only \"float\")", fmt);
        if (rc == 0 && (rc = parse_prompts(job, json_object_get(body, "input"), "input", msg,
                                           sizeof msg)))
            param = "input";
    } else if (job->kind == PV_JOB_CHAT) {
        pb_buf_t t;
        pb_buf_init(&t, 0);
        rc = pv_params_parse(body, 1, &job->p, &err);
        rc = rc ? rc : pv_chat_render(srv->chat, json_object_get(body, "messages"), &t, &err);
        rc = rc ? rc : pb_buf_cstr(&t);
        if (rc == 0 && (job->prompts = calloc(1, sizeof *job->prompts)) == NULL)
            rc = PB_ENOMEM;
        if (rc == 0) {
            job->chat_text = t.data;
            job->n_prompts = 1;
            job->prompts[0].text = t.data;
            job->prompts[0].len = t.len;
        } else {
            pb_buf_free(&t);
        }
    } else {
        rc = pv_params_parse(body, 0, &job->p, &err);
        if (rc == 0 && (rc = parse_prompts(job, json_object_get(body, "prompt"), "prompt", msg,
                                           sizeof msg)))
            param = "prompt";
    }
    if (rc == 0) {
        rc = pv_batch_submit(srv, job, req);
        if (rc == 0)
            return; /* batch.c answers */
        pv_resp_error(resp, 503, rc == PB_EBACKEND ? "the request queue is full"
                                 : rc == PB_ESTATE ? "the server is shutting down"
                                                   : "out of memory", NULL, NULL);
    } else if (rc == PB_ENOMEM) {
        pv_resp_error(resp, 503, "out of memory", NULL, NULL);
    } else {
        pv_resp_error(resp, 400, msg[0] ? msg : err.msg, param ? param : err.field, NULL);
    }
    pv_job_free(job);
}

/* ---- dispatch ---- */

static pv_ep_t route_of(const char *path)
{
    for (int i = 0; i < PV_EP_OTHER; i++)
        if (strcmp(path, pv_ep_names[i]) == 0)
            return (pv_ep_t)i;
    if (strncmp(path, "/v1/models/", 11) == 0)
        return PV_EP_MODELS;
    return PV_EP_OTHER;
}

void pv_api_handle(void *ctx, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    pv_server_t *srv = ctx;
    pv_ep_t ep = route_of(req->path);
    int get = ep == PV_EP_MODELS || ep == PV_EP_METRICS || ep == PV_EP_HEALTH;
    char msg[160];
    if (ep == PV_EP_OTHER) {
        snprintf(msg, sizeof msg, "no route %s %.100s", req->method, req->path);
        pv_resp_error(resp, 404, msg, NULL, "unknown_url");
    } else if (strcmp(req->method, get ? "GET" : "POST") != 0) {
        snprintf(msg, sizeof msg, "%s takes %s, not %s", pv_ep_names[ep], get ? "GET" : "POST",
                 req->method);
        pv_resp_error(resp, 405, msg, NULL, "method_not_allowed");
        pb_http_resp_header(resp, "Allow", get ? "GET, HEAD" : "POST");
    } else if (ep == PV_EP_HEALTH) {
        set_json(resp, json_pack("{s:s}", "status", "ok"));
    } else if (ep == PV_EP_METRICS) {
        route_metrics(srv, resp);
    } else if (ep == PV_EP_MODELS && strcmp(req->path, "/v1/models") == 0) {
        set_json(resp, json_pack("{s:s, s:[o]}", "object", "list", "data", model_json(srv)));
    } else if (ep == PV_EP_MODELS) {
        if (strcmp(req->path + 11, srv->name) == 0) {
            set_json(resp, model_json(srv));
        } else {
            snprintf(msg, sizeof msg, "The model `%.100s` does not exist.", req->path + 11);
            pv_resp_error(resp, 404, msg, "model", "model_not_found");
        }
    } else {
        json_t *body = parse_body(srv, req, resp);
        if (body && ep == PV_EP_TOKENIZE)
            route_tokenize(srv, body, resp);
        else if (body && ep == PV_EP_DETOKENIZE)
            route_detokenize(srv, body, resp);
        else if (body) {
            route_model_work(srv, ep, body, req, resp); /* takes body */
            if (resp->body == NULL) /* deferred: counted when answered */
                return;
            pv_metrics_count(srv, ep, resp->status);
            return;
        }
        json_decref(body);
    }
    pv_metrics_count(srv, ep, resp->status);
}
