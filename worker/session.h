/* The worker's broker session (ARCHITECTURE.md section 4): one DEALER socket
 * to the coordinator, driven from the main thread only; HELLO/READY credit,
 * heartbeats both ways, reconnect with back-off, and a pool of runner
 * threads that hand finished tasks back through a pipe the main loop polls.
 *
 * Credit is additive: READY after HELLO carries the free slots, and each
 * later READY carries the slots freed since the previous one. RESULT and FAIL
 * are kept until ACK and resent every resend_ms and right after HELLO. */
#ifndef PB_SESSION_H
#define PB_SESSION_H

#include <signal.h>

#include "common/pb.h"

#define PB_SESSION_SLOTS_MAX 1024
#define PB_SESSION_OUTBOX_MAX 1024 /* unacked results kept; oldest dropped past it */
#define PB_SESSION_PENDING_MAX 64  /* tasks beyond the free slots, waiting for one */
#define PB_SESSION_BACKOFF_MIN_MS 1000
#define PB_SESSION_BACKOFF_MAX_MS 32000
#define PB_SESSION_RESEND_MS 5000

typedef struct pb_session_cfg {
    const char *endpoint; /* "tcp://HOST:PORT" */
    const char *name;     /* worker name sent in HELLO */
    const char *device;   /* "cpu" or "gpu" */
    int slots;            /* runner threads = tasks at once, 1..PB_SESSION_SLOTS_MAX */
    int threads;          /* compute threads per task for backends; 0 = backend default */
    int heartbeat_ms;     /* heartbeat interval; the peer is dead after PB_LIVENESS of them */
    int resend_ms;        /* resend interval for unacked RESULT/FAIL */
    const char *cache_dir; /* dataset cache; NULL: worker/datasets.h's default */
    const char *http_url;  /* coordinator's HTTP base URL for datasets; NULL: the TASK's */
} pb_session_cfg_t;

typedef struct pb_session pb_session_t;

/* Create the session and start its runner threads (with SIGINT/SIGTERM
 * blocked, so signals reach the main thread). Strings in cfg are copied.
 * Nothing is connected until pb_session_run. */
int pb_session_new(const pb_session_cfg_t *cfg, pb_session_t **out);

/* Connect and serve until *stop becomes non-zero (a signal handler sets it;
 * the poll wakes with EINTR). Returns 0 on a requested stop, or a negative
 * code when ZeroMQ itself fails. */
int pb_session_run(pb_session_t *s, volatile sig_atomic_t *stop);

/* Cancel running tasks, stop the runner threads and free everything.
 * Unacked results are dropped (the coordinator's leases requeue them). */
void pb_session_free(pb_session_t *s);

#endif
