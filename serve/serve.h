/* posbench-serve's private header (prefix pv_): an OpenAI-compatible HTTP
 * server over the native engine. main.c loads the model and runs the libuv
 * loop, api.c parses requests on the loop thread, batch.c queues them for
 * one model thread and posts answers back through a uv_async_t, gen.c does
 * the model work (generation, scoring, embeddings), proto.c
 * holds the pure parts (request parameters, chat templates, SSE framing;
 * UTF-8 repair is common/utf8.h) that the unit tests call directly. */
#ifndef PV_SERVE_H
#define PV_SERVE_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/pb.h"
#include "common/util.h"
#include "coordinator/http.h"
#include "engine/checkpoint.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

#define PV_STOP_MAX 16       /* stop strings per request */
#define PV_STOP_LEN 256      /* bytes per stop string */
#define PV_PROMPTS_MAX 256   /* prompts (or embedding inputs) per request */
#define PV_TOP_MAX 20        /* logprobs / top_logprobs */
#define PV_MAX_TOKENS_CAP (1 << 20)

/* ---- proto.c: pure request handling ---- */

/* Sampling and output options of a completions or chat request. Strings are
 * borrowed from the request body. */
typedef struct pv_params {
    int max_tokens;      /* -1: not given (the route's default applies) */
    float temperature, top_p;
    int top_k;
    uint64_t seed;
    const char *stop[PV_STOP_MAX];
    size_t n_stop, stop_len_max;
    int echo;            /* completions only */
    int logprobs;        /* -1: none; else how many top alternatives (0..PV_TOP_MAX) */
    int stream, include_usage;
} pv_params_t;

/* Read the options of a completions (chat = 0) or chat (chat = 1) body.
 * Unsupported values (n > 1, best_of > 1, logprobs with stream) and wrong
 * types are PB_EINVAL with err->field the parameter's name. */
int pv_params_parse(const json_t *body, int chat, pv_params_t *p, pb_err_t *err);

/* Chat templates: the checkpoint's tokenizer_config.json chat_template is
 * recognised as ChatML (<|im_start|>) or Llama-3 (<|start_header_id|>);
 * anything else (or none) gets the plain "role: content\n" form ending in
 * "assistant:". No Jinja is evaluated. */
typedef enum { PV_CHAT_PLAIN, PV_CHAT_CHATML, PV_CHAT_LLAMA3 } pv_chat_t;

pv_chat_t pv_chat_detect(const char *chat_template);
const char *pv_chat_name(pv_chat_t kind);
/* The end-of-turn token text a template closes messages with ("" plain). */
const char *pv_chat_eot(pv_chat_t kind);
/* Render messages ([{role, content}], content a string or an array of
 * {"type": "text", "text"} parts) into out, ending with the assistant's
 * turn opened. PB_EINVAL naming "messages[i].role" and the like. */
int pv_chat_render(pv_chat_t kind, const json_t *messages, pb_buf_t *out, pb_err_t *err);

/* A token's text for logprobs: the text if valid UTF-8, else "bytes:\xNN..". */
int pv_token_str(const char *s, size_t n, pb_buf_t *out);

/* Append one server-sent event "data: <compact json>\n\n" to out. */
int pv_sse_event(pb_buf_t *out, const json_t *data);
/* The terminating event. */
#define PV_SSE_DONE "data: [DONE]\n\n"

/* First occurrence of needle[0, m) in hay[0, n), or NULL. */
const char *pv_find(const char *hay, size_t n, const char *needle, size_t m);

/* OpenAI's error body {"error": {"message", "type", "param", "code"}} with
 * the type following the status (400 invalid_request_error, 404
 * NotFoundError...). param and code may be NULL. Malloc'd, NULL on OOM. */
char *pv_error_json(int status, const char *msg, const char *param, const char *code);

/* ---- the server ---- */

typedef enum {
    PV_EP_MODELS, PV_EP_COMPLETIONS, PV_EP_CHAT, PV_EP_EMBEDDINGS, PV_EP_TOKENIZE,
    PV_EP_DETOKENIZE, PV_EP_METRICS, PV_EP_HEALTH, PV_EP_OTHER, PV_EP_N
} pv_ep_t;

extern const char *const pv_ep_names[PV_EP_N];

typedef enum { PV_JOB_COMPLETE, PV_JOB_CHAT, PV_JOB_EMBED } pv_kind_t;

/* One prompt (or embedding input): text, or token ids given by the client
 * (ids is filled from the text on the model thread otherwise). */
typedef struct pv_prompt {
    const char *text; /* borrowed from the body (or chat_text); NULL when ids */
    size_t len;
    int32_t *ids;     /* malloc'd */
    size_t n_ids;
} pv_prompt_t;

typedef struct pv_server pv_server_t;
typedef struct pv_gen pv_gen_t; /* gen.c: the requests being generated */

/* A queued request. api.c fills the request part and hands it to batch.c;
 * the model thread owns it until it sets done; the loop thread frees it
 * after sending the answer. out, done and cancelled are under srv->mx. */
typedef struct pv_job {
    struct pv_job *next, *ready_next;
    pv_server_t *srv;
    pv_kind_t kind;
    pv_ep_t ep;
    json_t *body;          /* the request; params and prompts borrow from it */
    pv_params_t p;
    pv_prompt_t *prompts;
    size_t n_prompts;
    char *chat_text;       /* the rendered chat prompt (chat jobs) */
    char id[48];
    int64_t created;
    pb_http_deferred_t *d;
    int in_ready, done, cancelled; /* under srv->mx */
    int began, lost;               /* loop thread: stream head sent, client gone */
    int posted;                    /* model thread: stream bytes were posted */
    pb_buf_t out;          /* stream bytes not yet sent */
    int status;            /* final answer (not streams) */
    char *answer;
    int64_t prompt_tokens, completion_tokens;
} pv_job_t;

typedef struct pv_metrics {
    struct { int ep, status; uint64_t n; } req[64];
    size_t n_req;
    uint64_t prompt_tokens, completion_tokens;
    uint64_t batch_hist[8]; /* <=1, <=2, <=4, ... <=64, more (model thread, under mx) */
    uint64_t batches, batched_jobs;
    uint64_t gen_calls, gen_seqs, gen_seq_max; /* engine steps, sequences in them */
    uint64_t gen_req_max;                      /* most requests in one step */
} pv_metrics_t;

struct pv_server {
    uv_loop_t *loop;
    pb_http_server_t *http;
    uv_async_t wake;
    /* the model, read-only after load except under the model thread */
    const char *name;
    pe_ckpt_t *ck;
    pe_tok_t *tok;
    pe_model_t *model;
    pe_dims_t dims;
    int ctx;               /* context per sequence */
    pe_pool_t pool;
    pv_chat_t chat;
    int32_t chat_eot;      /* end-of-turn id, -1 none */
    int chat_bos;          /* the template writes BOS itself */
    int max_batch, max_queue;
    int64_t started;
    /* model thread and queues */
    pthread_t thread;
    int thread_started, thread_done, stop;
    pthread_mutex_t mx;
    pthread_cond_t cv;
    pv_job_t *head, *tail, *ready;
    size_t queued, running;
    pv_gen_t *gen;         /* the model thread's */
    pv_metrics_t m;
};

/* api.c */
void pv_api_handle(void *ctx, const pb_http_req_t *req, pb_http_resp_t *resp);
/* OpenAI-shaped error into resp (the http layer's error_body hook too). */
void pv_resp_error(pb_http_resp_t *resp, int status, const char *msg, const char *param,
                   const char *code);
void pv_http_error_body(pb_http_resp_t *resp, int status, const char *msg);
void pv_metrics_count(pv_server_t *srv, pv_ep_t ep, int status);

/* batch.c */
int pv_batch_start(pv_server_t *srv);
/* Queue a job and defer req's answer to it (loop thread, in the handler).
 * PB_EBACKEND when the queue is full, PB_ESTATE when the server stops,
 * PB_ENOMEM: the caller answers 503 and still owns the job. */
int pv_batch_submit(pv_server_t *srv, pv_job_t *job, const pb_http_req_t *req);
/* Ask the model thread to finish; the loop ends once it has. */
void pv_batch_stop(pv_server_t *srv);
void pv_batch_join(pv_server_t *srv);
void pv_job_free(pv_job_t *job);
/* The loop's uv_async_t callback: sends what the model thread posted. */
void pv__on_wake(uv_async_t *a);

/* Model thread side (batch.c): stream bytes for the loop (PB_ECANCELLED
 * once the client is gone), cancellation, the final answer (answer taken;
 * the job must not be touched afterwards), an error answer. */
int pv__post(pv_job_t *job, const char *data, size_t len);
int pv__cancelled(pv_job_t *job);
void pv__finish(pv_job_t *job, int status, char *answer);
void pv__fail(pv_job_t *job, int status, const char *msg, const char *param);

/* gen.c (model thread): tokenize a job's prompts (nonzero: the job was
 * answered with an error), then run it. Completions and chats run by
 * continuous batching: pv__gen_start queues a job's prompts as sequences;
 * each pv__gen_step admits waiting ones (oldest first) while fewer than
 * --max-batch are running, runs one engine step over them all (the new
 * ones' prompts prefilled in the same pass as the others' next token) and
 * answers the jobs whose sequences have all ended. Each answer equals the
 * one it gets alone. pv__gen_load: sequences running or waiting;
 * pv__gen_runs: jobs in flight. */
int pv__prepare(pv_job_t *job);
int pv__gen_open(pv_server_t *srv);
void pv__gen_close(pv_server_t *srv);
void pv__gen_start(pv_job_t *job);
void pv__gen_step(pv_server_t *srv);
size_t pv__gen_load(const pv_server_t *srv);
size_t pv__gen_runs(const pv_server_t *srv);
void pv__run_embed(pv_job_t *job);

#endif
