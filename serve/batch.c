/* posbench-serve's model thread (serve.h): requests queue under one mutex;
 * each turn the thread takes the requests whose prompts fit beside the
 * sequences already running (up to --max-batch sequences), tokenizes them,
 * and runs one engine step over every running sequence (gen.c: continuous
 * batching, so requests join and leave between tokens); embeddings run one
 * request at a time. Answers and stream chunks go back to the libuv loop
 * through a uv_async_t; only the loop thread touches connections. */
#include "serve/serve.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* ---- posting to the loop ---- */

/* Under srv->mx: put job on the ready list once. */
static void ready_locked(pv_server_t *srv, pv_job_t *job)
{
    if (job->in_ready)
        return;
    job->in_ready = 1;
    job->ready_next = srv->ready;
    srv->ready = job;
}

int pv__post(pv_job_t *job, const char *data, size_t len)
{
    pv_server_t *srv = job->srv;
    pthread_mutex_lock(&srv->mx);
    int rc = job->cancelled ? PB_ECANCELLED : pb_buf_append(&job->out, data, len);
    if (rc == 0)
        ready_locked(srv, job);
    job->posted = 1;
    pthread_mutex_unlock(&srv->mx);
    uv_async_send(&srv->wake);
    return rc;
}

int pv__cancelled(pv_job_t *job)
{
    pthread_mutex_lock(&job->srv->mx);
    int c = job->cancelled || job->srv->stop;
    pthread_mutex_unlock(&job->srv->mx);
    return c;
}

/* The job's final answer (takes answer, may be NULL for a stream that has
 * sent its last bytes); the model thread must not touch job afterwards. */
static void finish_locked(pv_server_t *srv, pv_job_t *job, int status, char *answer)
{
    job->status = status;
    job->answer = answer;
    job->done = 1;
    ready_locked(srv, job);
}

void pv__finish(pv_job_t *job, int status, char *answer)
{
    pv_server_t *srv = job->srv;
    pthread_mutex_lock(&srv->mx);
    finish_locked(srv, job, status, answer);
    pthread_mutex_unlock(&srv->mx);
    uv_async_send(&srv->wake);
}

void pv__fail(pv_job_t *job, int status, const char *msg, const char *param)
{
    pv__finish(job, status, pv_error_json(status, msg, param, NULL));
}

/* ---- the model thread ---- */

static void batch_hist(pv_metrics_t *m, size_t k)
{
    size_t b = 0;
    while (b < 7 && k > ((size_t)1 << b))
        b++;
    m->batch_hist[b]++;
    m->batches++;
    m->batched_jobs += k;
}

static void *model_main(void *arg)
{
    pv_server_t *srv = arg;
    pv_job_t *batch[256];
    for (;;) {
        size_t k = 0, load = pv__gen_load(srv), seqs = load;
        pthread_mutex_lock(&srv->mx);
        while (!srv->stop && srv->head == NULL && load == 0)
            pthread_cond_wait(&srv->cv, &srv->mx);
        if (srv->stop && load == 0) { /* running ones stop at their next token */
            while (srv->head) {
                pv_job_t *j = srv->head;
                srv->head = j->next;
                finish_locked(srv, j, 503,
                              pv_error_json(503, "the server is shutting down", NULL, NULL));
            }
            srv->tail = NULL;
            srv->queued = 0;
            srv->thread_done = 1;
            pthread_mutex_unlock(&srv->mx);
            uv_async_send(&srv->wake);
            return NULL;
        }
        /* new requests while their prompts fit in --max-batch sequences
         * beside those running (always one when idle) */
        while (!srv->stop && srv->head && k < PB_ARRAY_LEN(batch) &&
               (seqs == 0 || seqs + srv->head->n_prompts <= (size_t)srv->max_batch)) {
            seqs += srv->head->n_prompts ? srv->head->n_prompts : 1;
            batch[k++] = srv->head;
            srv->head = srv->head->next;
        }
        if (srv->head == NULL)
            srv->tail = NULL;
        srv->queued -= k;
        srv->running += k;
        if (k)
            batch_hist(&srv->m, k);
        pthread_mutex_unlock(&srv->mx);

        /* tokenize the new requests first: a bad one fails alone */
        for (size_t i = 0; i < k; i++) {
            if (pv__prepare(batch[i]) != 0)
                continue;
            if (batch[i]->kind == PV_JOB_EMBED)
                pv__run_embed(batch[i]);
            else
                pv__gen_start(batch[i]);
        }
        pv__gen_step(srv);
        size_t runs = pv__gen_runs(srv);
        pthread_mutex_lock(&srv->mx);
        srv->running = runs;
        pthread_mutex_unlock(&srv->mx);
    }
}

int pv_batch_start(pv_server_t *srv)
{
    if (pv__gen_open(srv) != 0 || pthread_create(&srv->thread, NULL, model_main, srv) != 0) {
        pv__gen_close(srv);
        return PB_ENOMEM;
    }
    srv->thread_started = 1;
    return 0;
}

int pv_batch_submit(pv_server_t *srv, pv_job_t *job, const pb_http_req_t *req)
{
    pthread_mutex_lock(&srv->mx);
    int rc = srv->stop ? PB_ESTATE : srv->queued >= (size_t)srv->max_queue ? PB_EBACKEND : 0;
    if (rc == 0 && (job->d = pb_http_defer(req)) == NULL)
        rc = PB_ENOMEM;
    if (rc == 0) {
        job->next = NULL;
        if (srv->tail)
            srv->tail->next = job;
        else
            srv->head = job;
        srv->tail = job;
        srv->queued++;
        pthread_cond_signal(&srv->cv);
    }
    pthread_mutex_unlock(&srv->mx);
    return rc;
}

void pv_batch_stop(pv_server_t *srv)
{
    pthread_mutex_lock(&srv->mx);
    srv->stop = 1;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mx);
    if (!srv->thread_started) /* nothing will wake the loop to close it */
        uv_close((uv_handle_t *)&srv->wake, NULL);
}

void pv_batch_join(pv_server_t *srv)
{
    if (srv->thread_started)
        pthread_join(srv->thread, NULL);
    srv->thread_started = 0;
    pv__gen_close(srv);
}

void pv_job_free(pv_job_t *job)
{
    if (job == NULL)
        return;
    for (size_t i = 0; i < job->n_prompts; i++) {
        free(job->prompts[i].ids);
    }
    free(job->prompts);
    free(job->chat_text);
    free(job->answer);
    pb_buf_free(&job->out);
    json_decref(job->body);
    free(job);
}

/* ---- the loop side ---- */

static void send_ready(pv_server_t *srv, pv_job_t *job, pb_buf_t *data, int done)
{
    if (data->len && !job->began) {
        job->began = 1;
        if (pb_http_stream_begin(job->d, 200, "text/event-stream",
                                 "Cache-Control: no-cache\r\n") != 0)
            job->lost = 1;
    }
    if (data->len && !job->lost && pb_http_stream_send(job->d, data->data, data->len) != 0)
        job->lost = 1;
    if (job->lost && !done) { /* the client left: stop generating for it */
        pthread_mutex_lock(&srv->mx);
        job->cancelled = 1;
        pthread_mutex_unlock(&srv->mx);
    }
    if (!done)
        return;
    srv->m.prompt_tokens += (uint64_t)job->prompt_tokens;
    srv->m.completion_tokens += (uint64_t)job->completion_tokens;
    if (job->began) {
        pb_http_stream_end(job->d);
        pv_metrics_count(srv, job->ep, 200);
    } else {
        pb_http_resp_t resp;
        pb_http_resp_init(&resp);
        int st = job->answer ? job->status : 500;
        if (job->answer) {
            resp.status = st;
            resp.body = job->answer;
            resp.body_len = strlen(job->answer);
            job->answer = NULL;
        } else {
            pv_resp_error(&resp, 500, "out of memory", NULL, NULL);
        }
        pb_http_complete(job->d, &resp);
        pv_metrics_count(srv, job->ep, st);
    }
    job->d = NULL;
    pv_job_free(job);
}

void pv__on_wake(uv_async_t *a)
{
    pv_server_t *srv = a->data;
    pthread_mutex_lock(&srv->mx);
    pv_job_t *list = srv->ready;
    srv->ready = NULL;
    int thread_done = srv->thread_done;
    pthread_mutex_unlock(&srv->mx);
    while (list) {
        pv_job_t *job = list;
        list = job->ready_next;
        pb_buf_t data;
        pthread_mutex_lock(&srv->mx);
        job->in_ready = 0;
        data = job->out;
        pb_buf_init(&job->out, 0);
        int done = job->done;
        pthread_mutex_unlock(&srv->mx);
        send_ready(srv, job, &data, done);
        pb_buf_free(&data);
    }
    if (thread_done && !uv_is_closing((uv_handle_t *)a))
        uv_close((uv_handle_t *)a, NULL);
}
