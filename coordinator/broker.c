/* The ZeroMQ broker: a ROUTER socket on the coordinator's loop. Registers
 * workers (HELLO), hands them tasks within their free slots, records
 * RESULTs exactly once (grouped into one commit per drain, ACKed after the
 * commit), requeues on FAIL, dead workers and expired leases, and answers
 * unknown or garbled peers with RESET. */
#include "coordinator/coord.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "common/util.h"
#include "coordinator/api_datasets.h"

static int hb_ms(const pb_coord_t *c) { return c->cfg.heartbeat_ms > 0 ? c->cfg.heartbeat_ms : PB_HEARTBEAT_MS; }

/* ---- peers ---- */

static pb_peer_t *peer_by_rid(pb_coord_t *c, const unsigned char *rid, size_t len)
{
    for (pb_peer_t *p = c->peers; p; p = p->next)
        if (p->rid_len == len && memcmp(p->rid, rid, len) == 0)
            return p;
    return NULL;
}

static pb_peer_t *peer_by_name(pb_coord_t *c, const char *name)
{
    for (pb_peer_t *p = c->peers; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static void peer_free(pb_peer_t *p)
{
    for (size_t i = 0; i < p->n_backends; i++)
        free(p->backends[i]);
    free(p->leases);
    free(p);
}

static void peer_unlink(pb_coord_t *c, pb_peer_t *p)
{
    pb_peer_t **pp = &c->peers;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    c->n_peers--;
}

static int lease_add(pb_peer_t *p, const pdb_task_ref_t *ref, int attempt)
{
    if (pb_grow(&p->leases, &p->cap_leases, p->n_leases + 1, sizeof *p->leases, 4))
        return PB_ENOMEM;
    p->leases[p->n_leases].ref = *ref;
    p->leases[p->n_leases].attempt = attempt;
    p->n_leases++;
    return 0;
}

/* Remove the lease (task, attempt) from p; copies it out when found. */
static int lease_take(pb_peer_t *p, int64_t task_id, int attempt, pb_lease_t *out)
{
    for (size_t i = 0; i < p->n_leases; i++) {
        if (p->leases[i].ref.task_id == task_id && (attempt < 0 || p->leases[i].attempt == attempt)) {
            if (out)
                *out = p->leases[i];
            p->leases[i] = p->leases[--p->n_leases];
            return 1;
        }
    }
    return 0;
}

static pb_peer_t *peer_by_lease(pb_coord_t *c, int64_t task_id, int attempt)
{
    for (pb_peer_t *p = c->peers; p; p = p->next)
        for (size_t i = 0; i < p->n_leases; i++)
            if (p->leases[i].ref.task_id == task_id && p->leases[i].attempt == attempt)
                return p;
    return NULL;
}

static void send_to(pb_coord_t *c, pb_peer_t *p, int type, const json_t *body)
{
    if (pb_proto_send(c->router, p->rid, p->rid_len, type, body) == 0)
        p->last_sent_ms = pb_now_ms();
}

static void send_rid(pb_coord_t *c, const unsigned char *rid, size_t len, int type, const json_t *body)
{
    pb_proto_send(c->router, rid, len, type, body);
}

/* ---- transactions and ACKs ---- */

static int txn_open(pb_coord_t *c)
{
    if (c->in_txn)
        return 0;
    int rc = pdb_begin(c->db);
    if (rc == 0)
        c->in_txn = 1;
    return rc;
}

static pb_out_t *out_push(pb_coord_t *c, const unsigned char *rid, size_t len, int type,
                          int64_t task_id, int attempt)
{
    if (pb_grow(&c->out, &c->cap_out, c->n_out + 1, sizeof *c->out, 64))
        return NULL;
    pb_out_t *o = &c->out[c->n_out++];
    memcpy(o->rid, rid, len);
    o->rid_len = len;
    o->type = type;
    o->task_id = task_id;
    o->attempt = attempt;
    o->task = NULL;
    return o;
}

/* An ACK goes out after the commit; if it cannot be queued the worker
 * resends the result and the duplicate is ACKed then. */
static void ack_queue(pb_coord_t *c, const unsigned char *rid, size_t len, int64_t task_id, int attempt)
{
    out_push(c, rid, len, PB_MSG_ACK, task_id, attempt);
}

static void sched_requeue(pb_coord_t *c, const pdb_task_ref_t *ref);
static void dispatch_in_txn(pb_coord_t *c);

/* Commit what this drain wrote, then (only then) send the ACKs and TASKs:
 * a crash can neither lose an ACKed result nor leave a worker running a
 * task the store still calls queued. If the commit fails, nothing is sent:
 * workers resend their results, and the tasks go back to the queue. */
static void txn_close(pb_coord_t *c)
{
    int failed = 0;
    if (c->in_txn) {
        c->in_txn = 0;
        if (pdb_commit(c->db) != 0) {
            pb_error("commit failed: %s; results will be resent by workers", pdb_errmsg(c->db));
            pdb_rollback(c->db);
            failed = 1;
        }
    }
    for (size_t i = 0; i < c->n_out; i++) {
        pb_out_t *o = &c->out[i];
        if (failed) {
            if (o->type == PB_MSG_TASK) {
                pb_peer_t *p = peer_by_rid(c, o->rid, o->rid_len);
                if (p && lease_take(p, o->task_id, o->attempt, NULL))
                    p->credit++;
                sched_requeue(c, &o->ref);
            }
        } else if (o->type == PB_MSG_TASK) {
            pb_peer_t *p = peer_by_rid(c, o->rid, o->rid_len);
            if (p)
                send_to(c, p, PB_MSG_TASK, o->task);
        } else {
            json_t *body = json_pack("{sIsi}", "task_id", (json_int_t)o->task_id, "attempt",
                                     o->attempt);
            send_rid(c, o->rid, o->rid_len, o->type, body);
            json_decref(body);
        }
        json_decref(o->task);
    }
    c->n_out = 0;
}

/* Put a released task back in the run queue, or drop its job's queue when
 * the job failed. */
static void sched_requeue(pb_coord_t *c, const pdb_task_ref_t *ref)
{
    pb_sched_add(c->sched, ref, pb_now_us(), 1);
    c->dispatch_wanted = 1;
}

static void after_release(pb_coord_t *c, const pdb_task_ref_t *ref, int requeued)
{
    if (requeued)
        sched_requeue(c, ref);
    else
        pb_sched_drop_job(c->sched, ref->job_id);
    c->dispatch_wanted = 1;
}

static void release_lease(pb_coord_t *c, const pb_lease_t *l, const char *why, int retryable)
{
    int requeued = 0;
    if (txn_open(c) != 0)
        return;
    int rc = pdb_task_release(c->db, l->ref.task_id, l->attempt, why, retryable, &requeued);
    if (rc == 0) {
        pb_info("task %lld attempt %d released (%s): %s", (long long)l->ref.task_id, l->attempt,
                why, requeued ? "requeued" : "failed");
        after_release(c, &l->ref, requeued);
    }
}

static int requeue_one(void *ctx, const pdb_task_ref_t *t);

/* Release a lease this process holds no record of (the store still fences
 * it by attempt); a requeued task is found in the store and queued. */
static void release_unknown(pb_coord_t *c, int64_t task_id, int attempt, const char *why,
                            int retryable)
{
    int requeued = 0;
    if (txn_open(c) != 0)
        return;
    if (pdb_task_release(c->db, task_id, attempt, why, retryable, &requeued) != 0)
        return;
    struct {
        pb_coord_t *c;
        int64_t task_id;
    } want = {c, task_id};
    if (requeued)
        pdb_tasks_queued(c->db, 0, requeue_one, &want);
    c->dispatch_wanted = 1;
}

/* ---- message handlers ---- */

static const char *jstr(const json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : dflt;
}

static int64_t jint(const json_t *o, const char *k, int64_t dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static void on_hello(pb_coord_t *c, pb_msg_t *m)
{
    const json_t *b = m->body;
    const char *name = jstr(b, "name", NULL);
    const char *proto = jstr(b, "protocol", PB_PROTOCOL_VERSION);
    json_t *caps = json_object_get(b, "capabilities");
    if (name == NULL || !*name || strlen(name) >= sizeof((pb_peer_t *)0)->name ||
        strcmp(proto, PB_PROTOCOL_VERSION) != 0 || !json_is_object(caps)) {
        c->protocol_errors++;
        pb_warn("HELLO without a usable name, protocol or capabilities: RESET");
        send_rid(c, m->rid, m->rid_len, PB_MSG_RESET, NULL);
        return;
    }
    pb_peer_t *p = peer_by_rid(c, m->rid, m->rid_len);
    pb_peer_t *old = peer_by_name(c, name);
    if (p == NULL) {
        p = calloc(1, sizeof *p);
        if (p == NULL)
            return;
        memcpy(p->rid, m->rid, m->rid_len);
        p->rid_len = m->rid_len;
        p->next = c->peers;
        c->peers = p;
        c->n_peers++;
    }
    /* A worker that reconnected on a new socket keeps its leases: its tasks
     * are still running and their results will be resent. */
    if (old && old != p) {
        for (size_t i = 0; i < old->n_leases; i++)
            lease_add(p, &old->leases[i].ref, old->leases[i].attempt);
        peer_unlink(c, old);
        peer_free(old);
    }
    p->last_seen_ms = pb_now_ms();
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->device, sizeof p->device, "%s", jstr(caps, "device", "cpu"));
    for (size_t i = 0; i < p->n_backends; i++)
        free(p->backends[i]);
    p->n_backends = 0;
    json_t *bk = json_object_get(caps, "backends");
    size_t i;
    json_t *v;
    json_array_foreach(bk, i, v)
    {
        if (json_is_string(v) && p->n_backends < PB_COORD_MAX_BACKENDS)
            p->backends[p->n_backends++] = strdup(json_string_value(v));
    }
    p->slots = (int)jint(caps, "slots", 0);
    p->credit = 0; /* the READY that follows says how many tasks it can take */
    if (txn_open(c) == 0)
        pdb_worker_seen(c->db, p->name, caps, "idle");
    pb_info("worker %s connected (%s, %d slots)", p->name, p->device, p->slots);
    c->dispatch_wanted = 1;
}

/* Credit is additive: each READY grants that many more tasks; HELLO starts
 * a peer at zero. A cancelled task keeps its slot until the worker has
 * stopped it and says READY, so a worker is never sent more than it has room for. */
static void on_ready(pb_coord_t *c, pb_peer_t *p, pb_msg_t *m)
{
    int64_t credit = jint(m->body, "credit", 1);
    if (credit <= 0 || credit > PB_MAX_CREDIT || p->credit + credit > PB_MAX_CREDIT) {
        c->protocol_errors++;
        pb_warn("READY from %s with credit %lld: ignored", p->name, (long long)credit);
        return;
    }
    p->credit += (int)credit;
    c->dispatch_wanted = 1;
}

/* The (task_id, attempt) a RESULT or FAIL speaks of; 0 when both are there. */
static int msg_task(pb_coord_t *c, const pb_peer_t *p, const pb_msg_t *m, int64_t *task_id,
                    int *attempt)
{
    *task_id = jint(m->body, "task_id", -1);
    *attempt = (int)jint(m->body, "attempt", -1);
    if (*task_id >= 0 && *attempt >= 0)
        return 0;
    c->protocol_errors++;
    pb_warn("%s from %s without task_id/attempt: dropped", pb_msg_name(m->type), p->name);
    return -1;
}

static void on_result(pb_coord_t *c, pb_peer_t *p, pb_msg_t *m)
{
    int64_t task_id;
    int attempt;
    if (msg_task(c, p, m, &task_id, &attempt))
        return;
    pb_lease_t lease;
    if (!lease_take(p, task_id, attempt, &lease)) {
        /* Not this peer's lease (a late result after a restart or a requeue,
         * or a peer reporting on someone else's task): acknowledged so the
         * worker forgets it, and dropped. */
        c->results_stale++;
        pb_debug("result for task %lld attempt %d from %s, which holds no such lease: dropped",
                 (long long)task_id, attempt, p->name);
        ack_queue(c, m->rid, m->rid_len, task_id, attempt);
        return;
    }
    if (txn_open(c) != 0) {
        lease_add(p, &lease.ref, lease.attempt);
        return;
    }
    int job_done = 0;
    int64_t job_id = 0;
    pb_err_t err = {0};
    json_t *items = json_object_get(m->body, "items");
    json_t *agg = json_object_get(m->body, "aggregate");
    int rc = m->payload ? pdb_task_record_text(c->db, task_id, attempt, m->payload, m->payload_len,
                                               agg, &job_done, &job_id, &err)
                        : pdb_task_record(c->db, task_id, attempt, items, agg, &job_done, &job_id,
                                          &err);
    if (rc == 0) {
        c->results_total++;
        c->items_recorded += (uint64_t)(lease.ref.items > 0 ? lease.ref.items : 0);
        if (job_done)
            pb_info("job %lld done", (long long)job_id);
    } else if (rc == PB_ESTALE) {
        c->results_stale++;
        pb_debug("stale result for task %lld attempt %d from %s dropped", (long long)task_id,
                 attempt, p->name);
    } else if (rc == PB_EPARSE) {
        c->protocol_errors++;
        pb_warn("malformed result for task %lld from %s: %s", (long long)task_id, p->name, err.msg);
        char why[300];
        snprintf(why, sizeof why, "malformed result: %s", err.msg);
        release_lease(c, &lease, why, 1);
    } else {
        pb_error("recording task %lld failed: %s (%s)", (long long)task_id, pb_strerror(rc),
                 pdb_errmsg(c->db));
        lease_add(p, &lease.ref, lease.attempt); /* keep it: the worker resends */
        return;                                  /* no ACK */
    }
    ack_queue(c, m->rid, m->rid_len, task_id, attempt);
    c->dispatch_wanted = 1;
}

static void on_fail(pb_coord_t *c, pb_peer_t *p, pb_msg_t *m)
{
    int64_t task_id;
    int attempt;
    if (msg_task(c, p, m, &task_id, &attempt))
        return;
    const char *msg = jstr(m->body, "message", "worker reported a failure");
    const char *cls = jstr(m->body, "error_class", "internal");
    int retryable = json_is_true(json_object_get(m->body, "retryable"));
    char why[600];
    snprintf(why, sizeof why, "%s: %s (worker %s)", cls, msg, p->name);
    pb_lease_t lease;
    if (lease_take(p, task_id, attempt, &lease))
        release_lease(c, &lease, why, retryable);
    else /* not this peer's lease: nothing to release */
        c->results_stale++;
    ack_queue(c, m->rid, m->rid_len, task_id, attempt);
}

static void handle(pb_coord_t *c, pb_msg_t *m)
{
    if (m->type == PB_MSG_HELLO) {
        on_hello(c, m);
        return;
    }
    pb_peer_t *p = peer_by_rid(c, m->rid, m->rid_len);
    if (p == NULL) {
        /* Unknown peer (e.g. we restarted): ask it to introduce itself. */
        send_rid(c, m->rid, m->rid_len, PB_MSG_RESET, NULL);
        return;
    }
    p->last_seen_ms = pb_now_ms();
    switch (m->type) {
    case PB_MSG_READY:
        on_ready(c, p, m);
        break;
    case PB_MSG_HEARTBEAT:
        break;
    case PB_MSG_RESULT:
        on_result(c, p, m);
        break;
    case PB_MSG_FAIL:
        on_fail(c, p, m);
        break;
    default:
        c->protocol_errors++;
        pb_warn("unexpected %s from worker %s: RESET", pb_msg_name(m->type), p->name);
        send_to(c, p, PB_MSG_RESET, NULL);
    }
}

static int drain(void *ctx, void *sock, int budget)
{
    pb_coord_t *c = ctx;
    int n = 0;
    for (; n < budget; n++) {
        pb_msg_t m;
        pb_err_t err = {0};
        int rc = pb_proto_recv(sock, 1, &m, &err);
        if (rc == PB_ENOTFOUND)
            break;
        if (rc == PB_EPROTO) {
            c->protocol_errors++;
            if (c->protocol_errors < 100 || c->protocol_errors % 1000 == 0)
                pb_warn("protocol error from a peer (%s: %s): RESET", err.field, err.msg);
            if (m.rid_len > 0)
                send_rid(c, m.rid, m.rid_len, PB_MSG_RESET, NULL);
            pb_msg_clear(&m);
            continue;
        }
        if (m.body == NULL && (m.type == PB_MSG_HELLO || m.type == PB_MSG_RESULT || m.type == PB_MSG_FAIL)) {
            c->protocol_errors++;
            send_rid(c, m.rid, m.rid_len, PB_MSG_RESET, NULL);
            pb_msg_clear(&m);
            continue;
        }
        handle(c, &m);
        pb_msg_clear(&m);
    }
    /* One commit per drain covers the results, the releases and the new
     * leases; then the ACKs and TASKs go out. */
    if (c->dispatch_wanted && pb_sched_depth(c->sched) > 0 && txn_open(c) == 0) {
        c->dispatch_wanted = 0;
        dispatch_in_txn(c);
    }
    txn_close(c);
    return n;
}

/* ---- dispatch ---- */

/* Queue latency histogram: four buckets per doubling of microseconds, so a
 * percentile is known to within 19%. */
static int lat_bucket(int64_t us)
{
    int b = us <= 1 ? 0 : (int)(4.0 * log2((double)us));
    return b >= PB_LAT_BUCKETS ? PB_LAT_BUCKETS - 1 : b;
}

static void lat_record(pb_coord_t *c, int64_t us) { c->lat_hist[lat_bucket(us)]++; }

double pb_broker_latency_pct(const pb_coord_t *c, double pct)
{
    uint64_t total = 0;
    for (int b = 0; b < PB_LAT_BUCKETS; b++)
        total += c->lat_hist[b];
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)(pct / 100.0 * (double)total + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    int b = 0;
    for (; b < PB_LAT_BUCKETS - 1; b++) {
        seen += c->lat_hist[b];
        if (seen >= want)
            break;
    }
    return exp2((b + 1) / 4.0); /* the bucket's upper bound */
}

/* Lease queued tasks to peers with credit, one task per peer per round so
 * work spreads across workers. The leases are written in the current
 * transaction and the TASKs leave with its commit (txn_close). */
static void dispatch_in_txn(pb_coord_t *c)
{
    double now = pb_wall_time();
    int64_t now_us = pb_now_us();
    int progress = 1;
    while (progress && pb_sched_depth(c->sched) > 0) {
        progress = 0;
        for (pb_peer_t *p = c->peers; p; p = p->next) {
            if (p->credit <= 0)
                continue;
            pb_sched_caps_t caps = {p->device, (const char *const *)p->backends, p->n_backends};
            pdb_task_ref_t ref;
            int64_t enq = 0;
            if (!pb_sched_pick(c->sched, &caps, &ref, &enq))
                continue;
            progress = 1;
            double deadline = now + (ref.timeout_s > 0 ? ref.timeout_s : 600) + PB_LEASE_GRACE_S;
            json_t *task = NULL;
            int rc = pdb_task_lease(c->db, ref.task_id, p->name, deadline, &task);
            if (rc != 0) { /* PB_ESTATE: cancelled meanwhile */
                if (rc != PB_ESTATE)
                    pb_error("leasing task %lld failed: %s", (long long)ref.task_id, pb_strerror(rc));
                continue;
            }
            int attempt = (int)jint(task, "attempt", 0);
            json_object_set_new(task, "lease_ms", json_integer((json_int_t)(deadline - now) * 1000));
            pb_api_dataset_task(c, task); /* out of memory: the worker reports it */
            pb_out_t *o = out_push(c, p->rid, p->rid_len, PB_MSG_TASK, ref.task_id, attempt);
            if (o == NULL) {
                json_decref(task); /* the lease expires and the task is retried */
                continue;
            }
            o->task = task;
            o->ref = ref;
            lease_add(p, &ref, attempt);
            p->credit--;
            lat_record(c, now_us - enq);
            c->tasks_dispatched++;
        }
    }
}

void pb_broker_dispatch(pb_coord_t *c)
{
    c->dispatch_wanted = 0;
    if (pb_sched_depth(c->sched) == 0 || c->peers == NULL)
        return;
    int began = !c->in_txn;
    if (txn_open(c) != 0)
        return;
    dispatch_in_txn(c);
    if (began)
        txn_close(c);
}

/* ---- loading, cancel, tick ---- */

static int load_one(void *ctx, const pdb_task_ref_t *t)
{
    pb_coord_t *c = ctx;
    return pb_sched_add(c->sched, t, pb_now_us(), 0);
}

static int requeue_one(void *ctx, const pdb_task_ref_t *t)
{
    struct {
        pb_coord_t *c;
        int64_t task_id;
    } *want = ctx;
    if (t->task_id == want->task_id)
        return pb_sched_add(want->c->sched, t, pb_now_us(), 1) ? -1 : 1;
    return 0;
}

int pb_broker_load_queue(pb_coord_t *c, int64_t job_id)
{
    int rc = pdb_tasks_queued(c->db, job_id, load_one, c);
    c->dispatch_wanted = 1;
    return rc;
}

void pb_broker_cancel_task(pb_coord_t *c, int64_t task_id, int attempt)
{
    pb_peer_t *p = peer_by_lease(c, task_id, attempt);
    if (p == NULL)
        return;
    lease_take(p, task_id, attempt, NULL);
    json_t *body = json_pack("{sIsi}", "task_id", (json_int_t)task_id, "attempt", attempt);
    send_to(c, p, PB_MSG_CANCEL, body);
    json_decref(body);
    c->dispatch_wanted = 1;
}

static void peer_dead(pb_coord_t *c, pb_peer_t *p)
{
    char why[256];
    snprintf(why, sizeof why, "worker %s lost (no message for %d ms)", p->name,
             PB_LIVENESS * hb_ms(c));
    pb_warn("%s; %zu task(s) go back to the queue", why, p->n_leases);
    for (size_t i = 0; i < p->n_leases; i++)
        release_lease(c, &p->leases[i], why, 1);
    if (txn_open(c) == 0)
        pdb_worker_seen(c->db, p->name, NULL, "gone");
    peer_unlink(c, p);
    peer_free(p);
}

void pb_broker_tick(pb_coord_t *c)
{
    int64_t now = pb_now_ms();
    int hb = hb_ms(c);
    pb_peer_t *p = c->peers;
    while (p) {
        pb_peer_t *next = p->next;
        if (now - p->last_seen_ms > (int64_t)PB_LIVENESS * hb) {
            peer_dead(c, p);
            p = next;
            continue;
        }
        if (now - p->last_sent_ms >= hb)
            send_to(c, p, PB_MSG_HEARTBEAT, NULL);
        if (txn_open(c) == 0) /* the workers list shows state and last_seen */
            pdb_worker_seen(c->db, p->name, NULL, p->n_leases ? "busy" : "idle");
        p = next;
    }
    json_t *expired = NULL;
    if (pdb_tasks_expired(c->db, pb_wall_time(), &expired) == 0) {
        size_t i;
        json_t *e;
        json_array_foreach(expired, i, e)
        {
            int64_t tid = jint(e, "task_id", -1);
            int att = (int)jint(e, "attempt", -1);
            pb_peer_t *holder = peer_by_lease(c, tid, att);
            pb_lease_t lease;
            if (holder && lease_take(holder, tid, att, &lease)) {
                json_t *body = json_pack("{sIsi}", "task_id", (json_int_t)tid, "attempt", att);
                send_to(c, holder, PB_MSG_CANCEL, body);
                json_decref(body);
                release_lease(c, &lease, "lease expired (task ran past its timeout)", 1);
            } else {
                release_unknown(c, tid, att, "lease expired", 1);
            }
        }
        json_decref(expired);
    }
    if (pb_sched_depth(c->sched) > 0 && txn_open(c) == 0)
        dispatch_in_txn(c);
    txn_close(c);
}

/* ---- start/stop ---- */

int pb_broker_start(pb_coord_t *c)
{
    c->zctx = zmq_ctx_new();
    if (c->zctx == NULL)
        return PB_ENET;
    c->router = zmq_socket(c->zctx, ZMQ_ROUTER);
    if (c->router == NULL)
        return PB_ENET;
    int one = 1, zero = 0, hwm = 100000;
    int64_t maxmsg = PB_FRAME_MAX;
    zmq_setsockopt(c->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(c->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_bind(c->router, c->cfg.broker) != 0) {
        pb_error("cannot bind the broker to %s: %s", c->cfg.broker, zmq_strerror(errno));
        return PB_ENET;
    }
    return pb_zloop_start(c->loop, c->router, 512, drain, c, &c->zloop);
}

void pb_broker_stop(pb_coord_t *c)
{
    pb_zloop_stop(c->zloop);
    c->zloop = NULL;
    while (c->peers) {
        pb_peer_t *p = c->peers;
        c->peers = p->next;
        peer_free(p);
    }
    for (size_t i = 0; i < c->n_out; i++)
        json_decref(c->out[i].task);
    free(c->out);
    c->out = NULL;
    c->n_out = 0;
    if (c->router)
        zmq_close(c->router);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    c->router = c->zctx = NULL;
}
