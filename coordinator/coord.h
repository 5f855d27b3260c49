/* posbench-coordinator's context and its internal interfaces: the broker
 * (ZeroMQ ROUTER, workers, leases, results), the API routes, and the
 * periodic tick (heartbeats, lease expiry, schedules). One libuv loop runs
 * everything; the store is written only from this thread. */
#ifndef PB_COORD_H
#define PB_COORD_H

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "common/proto.h"
#include "coordinator/http.h"
#include "coordinator/sched.h"
#include "coordinator/zloop.h"
#include "db/store.h"

#define PB_COORD_MAX_BACKENDS 16
#define PB_LEASE_GRACE_S 30
#define PB_MAX_CREDIT 4096

/* A task leased to a peer. */
typedef struct pb_lease {
    pdb_task_ref_t ref;
    int attempt;
} pb_lease_t;

/* A message that may leave only after the current transaction commits: an
 * ACK for a recorded result, or a TASK whose lease is being written. */
typedef struct pb_out {
    unsigned char rid[PB_ROUTING_ID_MAX];
    size_t rid_len;
    int type;          /* PB_MSG_ACK or PB_MSG_TASK */
    int64_t task_id;
    int attempt;
    json_t *task;      /* TASK body (owned) */
    pdb_task_ref_t ref; /* TASK: to put it back if the commit fails */
} pb_out_t;

/* A connected worker. */
typedef struct pb_peer {
    unsigned char rid[PB_ROUTING_ID_MAX];
    size_t rid_len;
    char name[128];
    char device[8];
    char *backends[PB_COORD_MAX_BACKENDS];
    size_t n_backends;
    int slots;  /* as announced in HELLO (informational) */
    int credit; /* tasks it may still be sent */
    int64_t last_seen_ms;
    int64_t last_sent_ms;
    pb_lease_t *leases;
    size_t n_leases, cap_leases;
    struct pb_peer *next;
} pb_peer_t;

typedef struct pb_coord_config {
    char listen_host[256];
    int listen_port;
    char broker[512];
    char db_path[PATH_MAX];
    char web_root[PATH_MAX];
    char chartjs[PATH_MAX]; /* served at /vendor/chart.js; empty: 404 */
    int heartbeat_ms;
    pb_http_limits_t http_limits;
    char scan_cron[128];     /* when the change-point pass runs; "" never */
    int webhook_attempts;    /* tries per delivery before it is marked failed */
    double webhook_backoff_s; /* first retry delay; doubles, capped at 300 s */
} pb_coord_config_t;

/* Queue-latency histogram (queued -> dispatched), quarter-octave buckets of µs. */
#define PB_LAT_BUCKETS 160

typedef struct pb_coord {
    pb_coord_config_t cfg;
    uv_loop_t *loop;
    pdb_t *db;
    void *zctx;
    void *router;
    pb_zloop_t *zloop;
    pb_http_server_t *http;
    pb_sched_t *sched;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    pb_peer_t *peers;
    size_t n_peers;
    pb_out_t *out; /* sent by the next commit */
    size_t n_out, cap_out;
    int in_txn;
    int dispatch_wanted;
    /* metrics */
    double started_at;
    uint64_t results_total, items_recorded, results_stale, protocol_errors, tasks_dispatched;
    uint64_t lat_hist[PB_LAT_BUCKETS];
    double rate_window_start;
    uint64_t rate_window_results;
    double results_per_s;
    /* regression detection and alerts (detect.c, webhook.c) */
    int webhooks_inflight;
    uint64_t webhooks_delivered, webhooks_failed_attempts;
    double next_scan_at; /* next change-point pass; <= 0: none planned */
    int scan_running;    /* the nightly pass goes on, a slice per tick */
} pb_coord_t;

/* Broker (broker.c). */
int pb_broker_start(pb_coord_t *c);
void pb_broker_stop(pb_coord_t *c);
/* Try to hand queued tasks to workers with free slots. */
void pb_broker_dispatch(pb_coord_t *c);
/* Periodic: heartbeats, dead peers, expired leases. */
void pb_broker_tick(pb_coord_t *c);
/* Tell the worker holding a leased task to stop it and forget the lease. */
void pb_broker_cancel_task(pb_coord_t *c, int64_t task_id, int attempt);
/* Load every queued task from the store into the scheduler. */
int pb_broker_load_queue(pb_coord_t *c, int64_t job_id);
/* Queue-latency percentile in µs from the histogram (upper bucket bound). */
double pb_broker_latency_pct(const pb_coord_t *c, double pct);

/* API (api.c): the HTTP handler for /api/v1, /healthz, /metrics and web/. */
void pb_api_handle(void *ctx, const pb_http_req_t *req, pb_http_resp_t *resp);
/* Submit a job spec (used by the API and by schedules). On success *job_id
 * is set and *existing says whether an idempotency key matched. */
int pb_api_submit(pb_coord_t *c, const json_t *spec, const char *idem_key, int64_t schedule_id,
                  int64_t *job_id, int *existing, pb_err_t *err);
/* A native model's PE override checked by the engine (the suites layer
 * checks only its shape); the field is named under "model.". */
int pb_api_check_native_pe(const json_t *model, pb_err_t *err);
/* Fire due schedules (called from the tick). */
void pb_api_fire_schedules(pb_coord_t *c);
/* Decorate a run of pdb_job_results: per-bucket accuracy and intervals,
 * metric means ("metrics") and counts ("metrics_n"), totals, unit and the
 * suite aggregate. PB_ENOMEM on failure. */
int pb_api_decorate_run(json_t *run);
/* Reply helpers the API's files share: body as JSON with status (body is
 * consumed; NULL is a 500); a PB_E* code as its status (404 "<what> not
 * found", 409, else 500); a string query parameter into out (absent: ""),
 * -1 with a 400 naming it when malformed or longer than n - 1. */
void pb_api_reply_json(pb_http_resp_t *resp, int status, json_t *body);
void pb_api_reply_rc(pb_http_resp_t *resp, int rc, const char *what);
int pb_api_query_str(const pb_http_req_t *req, pb_http_resp_t *resp, const char *name, char *out,
                     size_t n);
/* An integer query parameter (absent: dflt) in [min, max], else -1 with a
 * 400 naming it; a positive decimal id of n chars, else -1; the body as a
 * JSON object, else NULL with a 400 saying why; whether the method is m
 * (GET also matches HEAD); a 405 with its Allow header. */
int pb_api_query_int(const pb_http_req_t *req, pb_http_resp_t *resp, const char *name,
                     int64_t dflt, int64_t min, int64_t max, int64_t *out);
int64_t pb_api_parse_id(const char *s, size_t n);
/* The id at the start of path p ("{id}" or "{id}/rest"), -1 when there is
 * none; *rest is what follows the slash ("" when none). */
int64_t pb_api_path_id(const char *p, const char **rest);
json_t *pb_api_parse_body(const pb_http_req_t *req, pb_http_resp_t *resp);
int pb_api_method_is(const pb_http_req_t *req, const char *m);
void pb_api_method_not_allowed(pb_http_resp_t *resp, const char *allow);

#endif
