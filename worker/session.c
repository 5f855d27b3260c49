/* posbench-worker's session with the coordinator. The main thread owns the
 * DEALER socket and runs one zmq_poll loop (socket + a wake-up pipe, timeout
 * at most one heartbeat); runner threads only run pb_runner_run and hand the
 * outcome back under the mutex, then write a byte to the pipe. Protocol
 * rules and credit semantics: session.h and ARCHITECTURE.md section 4. */
#include "worker/session.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/json.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "worker/backend.h"
#include "worker/outbox.h"
#include "worker/runner.h"
#include "worker/testbed.h"

#define RECV_BUDGET 1000       /* messages taken per poll wake-up */
#define JOIN_WAIT_MS 3000      /* how long shutdown waits for runner threads */
#define TIMEOUT_S_MAX 2592000  /* 30 days: anything above is a malformed task */

enum { SLOT_FREE, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE };

typedef struct slot {
    pb_session_t *s;
    pthread_t thread;
    int started;
    pthread_cond_t cond;
    /* Guarded by s->mu. */
    int state;
    int rc;
    json_t *result;
    pb_buf_t items; /* the result's items text (capped below one frame) */
    pb_err_t err;
    /* Written by the main thread before the slot is QUEUED; the runner only
     * reads it. */
    json_t *task;
    /* Main thread only. */
    json_t *task_id;       /* own copy, so heartbeats never touch task */
    int64_t attempt;
    int busy;              /* assigned and not yet collected */
    int dropped;           /* CANCEL received: send nothing for it */
    int timed_out;
    int64_t deadline_ms;   /* 0 = no timeout */
    /* Shared, accessed with __atomic builtins. */
    volatile int cancel;
    uint64_t done;
} slot_t;

struct pb_session {
    pb_session_cfg_t cfg; /* strings point at the copies below */
    char *endpoint, *name, *device;
    char *cache_dir, *http_url; /* copies of cfg's; NULL when not given */
    json_t *testbed;            /* worker/testbed.h: in HELLO and every RESULT */
    void *zctx;
    void *sock;
    int pipe_r, pipe_w;
    pthread_mutex_t mu;
    int quit; /* guarded by mu */
    slot_t *slots;
    int n_conds; /* slot condition variables initialised */
    json_t *pending[PB_SESSION_PENDING_MAX]; /* TASK bodies waiting for a slot */
    size_t n_pending;
    pb_outbox_t out;      /* RESULT/FAIL until ACK */
    int freed;            /* credit owed to the coordinator since the last READY */
    int64_t last_recv_ms; /* any message from the coordinator */
    int64_t next_hb_ms;
    int64_t reconnect_ms; /* when sock is NULL: when to open a new one */
    int64_t backoff_ms;
    int heard;            /* the current socket has received something */
};

/* ---- runner threads ---- */

static void on_progress(void *ctx, uint64_t done)
{
    slot_t *sl = ctx;
    __atomic_store_n(&sl->done, done, __ATOMIC_RELAXED);
}

static void *runner_main(void *arg)
{
    slot_t *sl = arg;
    pb_session_t *s = sl->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (sl->state != SLOT_QUEUED && !s->quit)
            pthread_cond_wait(&sl->cond, &s->mu);
        if (s->quit)
            break;
        sl->state = SLOT_RUNNING;
        const json_t *task = sl->task;
        pthread_mutex_unlock(&s->mu);

        json_t *result = NULL;
        pb_err_t err = {{0}, {0}};
        int rc = pb_runner_run(task, &sl->cancel, on_progress, sl, &result, &sl->items, &err);

        pthread_mutex_lock(&s->mu);
        sl->rc = rc;
        sl->result = result;
        sl->err = err;
        sl->state = SLOT_DONE;
        /* A full pipe already holds a wake-up; the main loop scans every slot. */
        ssize_t w = write(s->pipe_w, "x", 1);
        (void)w;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- helpers ---- */

static void id_text(const json_t *id, char out[64])
{
    if (json_is_integer(id))
        snprintf(out, 64, "%lld", (long long)json_integer_value(id));
    else if (json_is_string(id))
        snprintf(out, 64, "%s", json_string_value(id));
    else
        snprintf(out, 64, "?");
}

static const char *str_or(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "?";
}

static int send_msg(pb_session_t *s, int type, const json_t *body)
{
    if (s->sock == NULL)
        return PB_ENET;
    int rc = pb_proto_send(s->sock, NULL, 0, type, body);
    if (rc)
        pb_debug("cannot queue %s: %s", pb_msg_name(type), pb_strerror(rc));
    return rc;
}

static void send_ready(pb_session_t *s, int credit)
{
    json_t *b = json_pack("{s:i}", "credit", credit);
    if (b && send_msg(s, PB_MSG_READY, b) == 0)
        s->freed = 0;
    json_decref(b);
}

static size_t free_slots(const pb_session_t *s)
{
    size_t n = 0;
    for (int i = 0; i < s->cfg.slots; i++)
        n += !s->slots[i].busy;
    return n;
}

/* ---- outbox: RESULT/FAIL kept until ACK ---- */

static void outbox_send(pb_session_t *s, pb_outmsg_t *o)
{
    o->sent_ms = pb_now_ms();
    if (s->sock)
        pb_proto_send_raw(s->sock, NULL, 0, o->type, o->body, o->len, o->payload,
                          o->payload_len);
}

/* Keep body until ACK and send it now. Takes nothing from the caller. */
/* Keep a RESULT/FAIL until ACKed and send it. PB_ETOOBIG (nothing kept)
 * when the encoded body would not fit in one frame. */
static int outbox_put(pb_session_t *s, const json_t *id, int64_t attempt, int type,
                      const json_t *body, const pb_buf_t *payload)
{
    char idt[64];
    pb_outmsg_t *o;
    int dropped;
    id_text(id, idt);
    if (pb_outbox_put(&s->out, id, attempt, type, body, payload ? payload->data : NULL,
                      payload ? payload->len : 0, &o, &dropped) != 0) {
        pb_error("task %s: cannot keep %s (out of memory)", idt, pb_msg_name(type));
        return PB_ENOMEM;
    }
    if ((int64_t)o->len > PB_FRAME_MAX - 1024 || (int64_t)o->payload_len > PB_FRAME_MAX - 1024) {
        pb_outbox_remove(&s->out, (size_t)(o - s->out.msgs));
        return PB_ETOOBIG;
    }
    if (dropped)
        /* Unacked for so long that the coordinator requeued that task. */
        pb_warn("outbox full (%d unacked results): dropped the oldest", PB_SESSION_OUTBOX_MAX);
    outbox_send(s, o);
    return 0;
}

static void put_fail(pb_session_t *s, const json_t *id, int64_t attempt, const char *cls,
                     int retryable, const char *message)
{
    json_t *b = json_pack("{s:O, s:I, s:s, s:b, s:s}", "task_id", id, "attempt",
                          (json_int_t)attempt, "error_class", cls, "retryable", retryable,
                          "message", message);
    if (b)
        outbox_put(s, id, attempt, PB_MSG_FAIL, b, NULL);
    json_decref(b);
}

static slot_t *find_slot(pb_session_t *s, const json_t *id, int64_t attempt)
{
    for (int i = 0; i < s->cfg.slots; i++)
        if (s->slots[i].busy && pb_outbox_same(s->slots[i].task_id, s->slots[i].attempt, id, attempt))
            return &s->slots[i];
    return NULL;
}

/* Task identity of a TASK/ACK/CANCEL body; PB_EPROTO when malformed. */
static int task_ref(const json_t *body, const json_t **id, int64_t *attempt)
{
    *id = json_object_get(body, "task_id");
    if (!json_is_integer(*id) && !json_is_string(*id))
        return PB_EPROTO;
    return pb_json_int(body, "attempt", -1, 0, INT32_MAX, attempt, NULL, NULL) || *attempt < 0
               ? PB_EPROTO
               : 0;
}

static void start_pending(pb_session_t *s);

/* ---- finished tasks ---- */

static void finish_task(pb_session_t *s, slot_t *sl, int rc, json_t *result, const pb_err_t *err)
{
    char idt[64];
    id_text(sl->task_id, idt);
    if (sl->dropped) {
        pb_info("task %s attempt %lld cancelled by the coordinator", idt, (long long)sl->attempt);
        return;
    }
    if (rc == 0) {
        json_object_set(result, "task_id", (json_t *)sl->task_id);
        json_object_set_new(result, "attempt", json_integer(sl->attempt));
        json_t *prov = json_object_get(json_object_get(result, "aggregate"), "provenance");
        if (prov && s->testbed)
            json_object_set(prov, "testbed", s->testbed);
        if (outbox_put(s, sl->task_id, sl->attempt, PB_MSG_RESULT, result, &sl->items) ==
            PB_ETOOBIG) {
            put_fail(s, sl->task_id, sl->attempt, "bad_task", 0,
                     "result exceeds the protocol frame limit: use a smaller shard_size");
            return;
        }
        const json_t *agg = json_object_get(result, "aggregate");
        pb_debug("task %s attempt %lld done: %lld items, score_sum %g", idt, (long long)sl->attempt,
                 (long long)json_integer_value(json_object_get(agg, "n")),
                 json_number_value(json_object_get(agg, "score_sum")));
        return;
    }
    if (sl->timed_out) {
        char msg[128];
        snprintf(msg, sizeof msg, "task timed out on the worker after %lld s",
                 (long long)json_integer_value(json_object_get(sl->task, "timeout_s")));
        pb_warn("task %s attempt %lld: %s", idt, (long long)sl->attempt, msg);
        put_fail(s, sl->task_id, sl->attempt, "backend", 1, msg);
        return;
    }
    if (rc == PB_ECANCELLED)
        return; /* shutting down: the lease will requeue it */
    int retryable;
    const char *cls = pb_runner_error_class(rc, &retryable);
    const char *msg = err->msg[0] ? err->msg : pb_strerror(rc);
    pb_warn("task %s attempt %lld failed (%s%s): %s", idt, (long long)sl->attempt, cls,
            retryable ? ", retryable" : "", msg);
    put_fail(s, sl->task_id, sl->attempt, cls, retryable, msg);
}

/* Collect every finished slot, report it, and return the freed credit. */
static void collect_done(pb_session_t *s)
{
    char buf[64];
    while (read(s->pipe_r, buf, sizeof buf) > 0)
        ;
    for (int i = 0; i < s->cfg.slots; i++) {
        slot_t *sl = &s->slots[i];
        pthread_mutex_lock(&s->mu);
        int done = sl->state == SLOT_DONE;
        int rc = sl->rc;
        json_t *result = sl->result;
        pb_err_t err = sl->err;
        sl->result = NULL;
        pthread_mutex_unlock(&s->mu);
        if (!done)
            continue;
        finish_task(s, sl, rc, result, &err);
        json_decref(result);
        pthread_mutex_lock(&s->mu);
        sl->state = SLOT_FREE;
        json_decref(sl->task);
        sl->task = NULL;
        pthread_mutex_unlock(&s->mu);
        json_decref(sl->task_id);
        sl->task_id = NULL;
        sl->busy = 0;
        s->freed++;
    }
    start_pending(s);
    if (s->freed > 0)
        send_ready(s, s->freed);
}

/* ---- messages from the coordinator ---- */

static void send_hello(pb_session_t *s)
{
    json_t *backends = json_array();
    for (size_t i = 0; backends && i < pb_backend_count(); i++)
        json_array_append_new(backends, json_string(pb_backend_at(i)->name));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    int64_t mem_mb = pages > 0 && psize > 0 ? (int64_t)pages * psize / (1 << 20) : 0;
    json_t *b = json_pack("{s:s, s:s, s:{s:s, s:i, s:I, s:o*, s:i, s:s, s:i}}", "name",
                          s->cfg.name, "protocol", PB_PROTOCOL_VERSION, "capabilities", "device",
                          s->cfg.device, "cores", (int)(cores > 0 ? cores : 1), "memory_mb",
                          (json_int_t)mem_mb, "backends", backends, "slots", s->cfg.slots,
                          "kernels", "scalar", "threads", s->cfg.threads);
    if (b && s->testbed)
        json_object_set(json_object_get(b, "capabilities"), "testbed", s->testbed);
    if (b == NULL) {
        pb_error("cannot build HELLO (out of memory)");
        return;
    }
    send_msg(s, PB_MSG_HELLO, b);
    json_decref(b);
    /* The coordinator starts a new peer at zero credit. */
    send_ready(s, (int)free_slots(s));
    for (size_t i = 0; i < s->out.n; i++)
        outbox_send(s, &s->out.msgs[i]);
    pb_debug("HELLO sent (%zu results to resend)", s->out.n);
}

/* A dataset run's TASK gets this worker's cache directory and, with
 * --http, the dataset's URL on that server instead of the coordinator's
 * guess (worker/datasets.h). Out of memory leaves the body as it was. */
static void dataset_options(pb_session_t *s, json_t *body)
{
    const char *hash = json_string_value(json_object_get(body, "dataset"));
    char url[1024];
    if (hash == NULL)
        return;
    if (s->cfg.cache_dir)
        json_object_set_new(body, "dataset_cache", json_string(s->cfg.cache_dir));
    if (s->cfg.http_url) {
        size_t n = strlen(s->cfg.http_url);
        while (n && s->cfg.http_url[n - 1] == '/')
            n--;
        snprintf(url, sizeof url, "%.*s/api/v1/datasets/%.64s/content", (int)(n < 900 ? n : 900),
                 s->cfg.http_url, hash);
        json_object_set_new(body, "dataset_url", json_string(url));
    }
}

/* Hand a TASK body to a free slot's runner thread. */
static void start_task(pb_session_t *s, slot_t *sl, json_t *body, const json_t *id,
                       int64_t attempt)
{
    char idt[64];
    int64_t timeout_s = 0;
    id_text(id, idt);
    json_t *own_id = json_deep_copy(id);
    if (own_id == NULL) {
        put_fail(s, id, attempt, "internal", 1, "out of memory");
        return;
    }
    pb_json_int(body, "timeout_s", 0, 0, TIMEOUT_S_MAX, &timeout_s, NULL, NULL);
    json_t *model = json_object_get(body, "model");
    if (s->cfg.threads > 0 && json_is_object(model) && !json_object_get(model, "threads"))
        json_object_set_new(model, "threads", json_integer(s->cfg.threads));
    dataset_options(s, body);
    pb_debug("task %s attempt %lld: %s/%s bucket %lld items [%lld, %lld)", idt,
            (long long)attempt, str_or(json_object_get(body, "suite")),
            str_or(json_object_get(body, "task")),
            (long long)json_integer_value(json_object_get(body, "bucket")),
            (long long)json_integer_value(json_object_get(body, "item_lo")),
            (long long)json_integer_value(json_object_get(body, "item_hi")));
    sl->busy = 1;
    sl->task_id = own_id;
    sl->attempt = attempt;
    sl->dropped = 0;
    sl->timed_out = 0;
    sl->deadline_ms = timeout_s > 0 ? pb_now_ms() + timeout_s * 1000 : 0;
    __atomic_store_n(&sl->cancel, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&sl->done, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&s->mu);
    sl->task = json_incref(body);
    sl->state = SLOT_QUEUED;
    pthread_cond_signal(&sl->cond);
    pthread_mutex_unlock(&s->mu);
}

static slot_t *free_slot(pb_session_t *s)
{
    for (int i = 0; i < s->cfg.slots; i++)
        if (!s->slots[i].busy)
            return &s->slots[i];
    return NULL;
}

static ptrdiff_t pending_find(const pb_session_t *s, const json_t *id, int64_t attempt)
{
    for (size_t i = 0; i < s->n_pending; i++) {
        const json_t *pid;
        int64_t patt;
        if (task_ref(s->pending[i], &pid, &patt) == 0 && pb_outbox_same(pid, patt, id, attempt))
            return (ptrdiff_t)i;
    }
    return -1;
}

static void pending_remove(pb_session_t *s, size_t i)
{
    json_decref(s->pending[i]);
    memmove(&s->pending[i], &s->pending[i + 1], (s->n_pending - i - 1) * sizeof s->pending[0]);
    s->n_pending--;
}

/* Start waiting tasks in the slots that are free now. */
static void start_pending(pb_session_t *s)
{
    for (;;) {
        slot_t *sl = free_slot(s);
        if (s->n_pending == 0 || sl == NULL)
            break;
        json_t *body = json_incref(s->pending[0]);
        const json_t *id;
        int64_t attempt;
        pending_remove(s, 0);
        if (task_ref(body, &id, &attempt) == 0)
            start_task(s, sl, body, id, attempt);
        json_decref(body);
    }
}

static void on_task(pb_session_t *s, json_t *body)
{
    const json_t *id;
    int64_t attempt;
    char idt[64];
    if (task_ref(body, &id, &attempt)) {
        pb_warn("TASK without a valid task_id/attempt: ignored, credit returned");
        s->freed++;
        send_ready(s, s->freed);
        return;
    }
    id_text(id, idt);
    if (find_slot(s, id, attempt) || pending_find(s, id, attempt) >= 0) {
        pb_warn("task %s attempt %lld is already here: duplicate ignored", idt,
                (long long)attempt);
        s->freed++;
        send_ready(s, s->freed);
        return;
    }
    ptrdiff_t o = pb_outbox_find(&s->out, id, attempt);
    if (o >= 0) {
        outbox_send(s, &s->out.msgs[o]);
        s->freed++;
        send_ready(s, s->freed);
        return;
    }
    slot_t *sl = free_slot(s);
    if (sl) {
        start_task(s, sl, body, id, attempt);
        return;
    }
    /* More tasks than free slots: the coordinator counted a slot free that
     * is still winding down a cancelled task. Wait for it rather than fail
     * an attempt; heartbeats keep the lease alive meanwhile. */
    if (s->n_pending < PB_SESSION_PENDING_MAX) {
        pb_debug("task %s attempt %lld waits for a free slot", idt, (long long)attempt);
        s->pending[s->n_pending++] = json_incref(body);
        return;
    }
    put_fail(s, id, attempt, "internal", 1, "no free slot on this worker");
}

static void on_cancel(pb_session_t *s, const json_t *body)
{
    const json_t *id;
    int64_t attempt;
    if (task_ref(body, &id, &attempt)) {
        pb_warn("CANCEL without a valid task_id/attempt: ignored");
        return;
    }
    ptrdiff_t p = pending_find(s, id, attempt);
    if (p >= 0) {
        pending_remove(s, (size_t)p); /* never started: its credit is free again */
        s->freed++;
        send_ready(s, s->freed);
    }
    slot_t *sl = find_slot(s, id, attempt);
    if (sl && !sl->dropped) {
        sl->dropped = 1;
        __atomic_store_n(&sl->cancel, 1, __ATOMIC_RELAXED);
    }
    /* Finished before the CANCEL arrived: the coordinator no longer wants it. */
    ptrdiff_t o = pb_outbox_find(&s->out, id, attempt);
    if (o >= 0)
        pb_outbox_remove(&s->out, (size_t)o);
}

static void on_message(pb_session_t *s, pb_msg_t *m)
{
    const json_t *id;
    int64_t attempt;
    switch (m->type) {
    case PB_MSG_TASK:
        if (m->body)
            on_task(s, m->body);
        else
            pb_warn("TASK without a body: ignored");
        break;
    case PB_MSG_ACK:
        if (m->body && task_ref(m->body, &id, &attempt) == 0) {
            ptrdiff_t o = pb_outbox_find(&s->out, id, attempt);
            if (o >= 0)
                pb_outbox_remove(&s->out, (size_t)o);
        }
        break;
    case PB_MSG_CANCEL:
        if (m->body)
            on_cancel(s, m->body);
        break;
    case PB_MSG_HEARTBEAT:
        break;
    case PB_MSG_RESET:
        pb_info("coordinator asked for a new HELLO");
        send_hello(s);
        break;
    default:
        pb_warn("unexpected %s from the coordinator: ignored", pb_msg_name(m->type));
        break;
    }
}

static void drain_socket(pb_session_t *s)
{
    for (int i = 0; i < RECV_BUDGET && s->sock; i++) {
        pb_msg_t m;
        pb_err_t err = {{0}, {0}};
        int rc = pb_proto_recv(s->sock, 0, &m, &err);
        if (rc == PB_ENOTFOUND)
            break;
        s->last_recv_ms = pb_now_ms(); /* any message counts as a heartbeat */
        if (!s->heard) {
            s->heard = 1;
            s->backoff_ms = PB_SESSION_BACKOFF_MIN_MS;
        }
        if (rc)
            pb_warn("malformed message from the coordinator: %s", err.msg);
        else
            on_message(s, &m);
        pb_msg_clear(&m);
    }
}

/* ---- socket lifecycle and timers ---- */

static int sock_open(pb_session_t *s)
{
    int linger = 0;
    int64_t maxmsg = PB_FRAME_MAX;
    void *so = zmq_socket(s->zctx, ZMQ_DEALER);
    if (so == NULL) {
        pb_error("zmq_socket: %s", zmq_strerror(errno));
        return PB_ENET;
    }
    zmq_setsockopt(so, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(so, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_connect(so, s->cfg.endpoint) != 0) {
        pb_error("cannot connect to %s: %s", s->cfg.endpoint, zmq_strerror(errno));
        zmq_close(so);
        return PB_EINVAL;
    }
    s->sock = so;
    s->heard = 0;
    s->last_recv_ms = pb_now_ms(); /* one liveness window to answer */
    s->next_hb_ms = s->last_recv_ms + s->cfg.heartbeat_ms;
    send_hello(s);
    return 0;
}

static void send_heartbeat(pb_session_t *s)
{
    json_t *tasks = json_array();
    for (int i = 0; tasks && i < s->cfg.slots; i++) {
        slot_t *sl = &s->slots[i];
        if (!sl->busy || sl->dropped)
            continue;
        json_array_append_new(tasks, json_pack("{s:O, s:I, s:I}", "task_id", sl->task_id,
                                               "attempt", (json_int_t)sl->attempt, "done",
                                               (json_int_t)__atomic_load_n(&sl->done,
                                                                           __ATOMIC_RELAXED)));
    }
    for (size_t i = 0; tasks && i < s->n_pending; i++) {
        const json_t *id;
        int64_t attempt;
        if (task_ref(s->pending[i], &id, &attempt) == 0)
            json_array_append_new(tasks, json_pack("{s:O, s:I, s:i}", "task_id", id, "attempt",
                                                   (json_int_t)attempt, "done", 0));
    }
    json_t *b = json_pack("{s:o*}", "tasks", tasks);
    if (b)
        send_msg(s, PB_MSG_HEARTBEAT, b);
    json_decref(b);
}

static void timers(pb_session_t *s)
{
    int64_t now = pb_now_ms();
    int hb = s->cfg.heartbeat_ms;
    if (s->sock && now - s->last_recv_ms > (int64_t)PB_LIVENESS * hb) {
        pb_warn("coordinator silent for %lld ms: reconnecting in %lld ms",
                (long long)(now - s->last_recv_ms), (long long)s->backoff_ms);
        zmq_close(s->sock);
        s->sock = NULL;
        s->reconnect_ms = now + s->backoff_ms;
        s->backoff_ms *= 2;
        if (s->backoff_ms > PB_SESSION_BACKOFF_MAX_MS)
            s->backoff_ms = PB_SESSION_BACKOFF_MAX_MS;
    }
    if (s->sock == NULL && now >= s->reconnect_ms && sock_open(s) != 0)
        s->reconnect_ms = now + s->backoff_ms;
    if (s->sock && now >= s->next_hb_ms) {
        send_heartbeat(s);
        s->next_hb_ms = now + hb;
    }
    for (size_t i = 0; s->sock && i < s->out.n; i++)
        if (now - s->out.msgs[i].sent_ms >= s->cfg.resend_ms)
            outbox_send(s, &s->out.msgs[i]);
    for (int i = 0; i < s->cfg.slots; i++) {
        slot_t *sl = &s->slots[i];
        if (sl->busy && sl->deadline_ms && !sl->timed_out && now > sl->deadline_ms) {
            sl->timed_out = 1;
            __atomic_store_n(&sl->cancel, 1, __ATOMIC_RELAXED);
        }
    }
}

int pb_session_run(pb_session_t *s, volatile sig_atomic_t *stop)
{
    int rc = sock_open(s);
    if (rc)
        return rc;
    pb_info("worker %s: %d slot(s), connecting to %s", s->cfg.name, s->cfg.slots,
            s->cfg.endpoint);
    while (!*stop) {
        int64_t now = pb_now_ms();
        int64_t wake = s->sock ? s->next_hb_ms : s->reconnect_ms;
        long timeout = (long)(wake - now);
        if (timeout > s->cfg.heartbeat_ms)
            timeout = s->cfg.heartbeat_ms;
        if (timeout < 0)
            timeout = 0;
        zmq_pollitem_t items[2] = {{NULL, s->pipe_r, ZMQ_POLLIN, 0}, {s->sock, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, s->sock ? 2 : 1, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            pb_error("zmq_poll: %s", zmq_strerror(errno));
            rc = PB_ENET;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            collect_done(s);
        if (s->sock && (items[1].revents & ZMQ_POLLIN))
            drain_socket(s);
        timers(s);
    }
    if (s->sock) {
        zmq_close(s->sock);
        s->sock = NULL;
    }
    return rc;
}

/* ---- construction ---- */

int pb_session_new(const pb_session_cfg_t *cfg, pb_session_t **out)
{
    int rc = PB_ENOMEM;
    sigset_t block, old;
    *out = NULL;
    if (cfg->slots < 1 || cfg->slots > PB_SESSION_SLOTS_MAX || cfg->heartbeat_ms < 1 ||
        cfg->resend_ms < 1 || !cfg->endpoint || !cfg->name || !cfg->device)
        return PB_EINVAL;
    pb_session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return PB_ENOMEM;
    s->pipe_r = s->pipe_w = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->cfg = *cfg;
    s->endpoint = strdup(cfg->endpoint);
    s->name = strdup(cfg->name);
    s->testbed = pb_testbed(cfg->threads);
    s->device = strdup(cfg->device);
    s->slots = calloc((size_t)cfg->slots, sizeof *s->slots);
    if (!s->endpoint || !s->name || !s->device || !s->slots)
        goto out;
    s->cfg.endpoint = s->endpoint;
    s->cfg.name = s->name;
    s->cfg.device = s->device;
    s->cache_dir = cfg->cache_dir ? strdup(cfg->cache_dir) : NULL;
    s->http_url = cfg->http_url ? strdup(cfg->http_url) : NULL;
    if ((cfg->cache_dir && !s->cache_dir) || (cfg->http_url && !s->http_url))
        goto out;
    s->cfg.cache_dir = s->cache_dir;
    s->cfg.http_url = s->http_url;
    for (; s->n_conds < cfg->slots; s->n_conds++) {
        pthread_cond_init(&s->slots[s->n_conds].cond, NULL);
        pb_buf_init(&s->slots[s->n_conds].items, (size_t)(PB_FRAME_MAX - (1 << 20)));
    }
    s->backoff_ms = PB_SESSION_BACKOFF_MIN_MS;
    pb_outbox_init(&s->out, PB_SESSION_OUTBOX_MAX);
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        rc = PB_EIO;
        goto out;
    }
    s->pipe_r = fds[0];
    s->pipe_w = fds[1];
    s->zctx = zmq_ctx_new();
    if (s->zctx == NULL) {
        rc = PB_ENET;
        goto out;
    }
    /* Runner threads inherit a mask without SIGINT/SIGTERM, so a signal
     * always interrupts the main thread's zmq_poll. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = 0;
    for (int i = 0; i < cfg->slots && rc == 0; i++) {
        slot_t *sl = &s->slots[i];
        sl->s = s;
        if (pthread_create(&sl->thread, NULL, runner_main, sl) != 0)
            rc = PB_ENOMEM;
        else
            sl->started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
out:
    if (rc) {
        pb_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void pb_session_free(pb_session_t *s)
{
    if (s == NULL)
        return;
    int joined = 1;
    if (s->slots) {
        pthread_mutex_lock(&s->mu);
        s->quit = 1;
        for (int i = 0; i < s->cfg.slots; i++) {
            __atomic_store_n(&s->slots[i].cancel, 1, __ATOMIC_RELAXED);
            if (s->slots[i].started)
                pthread_cond_signal(&s->slots[i].cond);
        }
        pthread_mutex_unlock(&s->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += JOIN_WAIT_MS / 1000;
        for (int i = 0; i < s->cfg.slots; i++) {
            if (!s->slots[i].started)
                continue;
            if (pthread_timedjoin_np(s->slots[i].thread, NULL, &until) != 0) {
                joined = 0;
                pthread_detach(s->slots[i].thread);
            }
        }
    }
    if (s->sock)
        zmq_close(s->sock);
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    pb_outbox_free(&s->out);
    while (s->n_pending > 0)
        pending_remove(s, s->n_pending - 1);
    if (!joined) {
        /* A backend call is still in flight on a runner thread that reads
         * its slot; the process is exiting, so leave that memory be. */
        pb_warn("runner threads still busy at shutdown: not waiting for them");
        return;
    }
    for (int i = 0; i < s->n_conds; i++) {
        json_decref(s->slots[i].task);
        json_decref(s->slots[i].task_id);
        json_decref(s->slots[i].result);
        pthread_cond_destroy(&s->slots[i].cond);
        pb_buf_free(&s->slots[i].items);
    }
    if (s->pipe_r >= 0)
        close(s->pipe_r);
    if (s->pipe_w >= 0)
        close(s->pipe_w);
    pthread_mutex_destroy(&s->mu);
    free(s->slots);
    free(s->endpoint);
    free(s->name);
    json_decref(s->testbed);
    free(s->device);
    free(s->cache_dir);
    free(s->http_url);
    free(s);
}
