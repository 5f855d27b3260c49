/* ZeroMQ socket on a libuv loop. ZMQ_FD is edge-triggered and "readable"
 * does not mean "message waiting", so: a uv_poll on ZMQ_FD only wakes the
 * loop; a uv_prepare starts a uv_idle when ZMQ_EVENTS says POLLIN (so the
 * loop does not block with messages pending); a uv_check drains up to a
 * budget of messages per iteration and calls the owner's callback. */
#ifndef PB_ZLOOP_H
#define PB_ZLOOP_H

#include <uv.h>

typedef struct pb_zloop pb_zloop_t;

/* Called once per loop iteration that found messages: the owner receives
 * with ZMQ_DONTWAIT until it gets nothing or has taken `budget` messages,
 * and returns how many it took. */
typedef int (*pb_zloop_drain_fn)(void *ctx, void *sock, int budget);

int pb_zloop_start(uv_loop_t *loop, void *sock, int budget, pb_zloop_drain_fn fn, void *ctx,
                   pb_zloop_t **out);
/* Close the handles; freed after libuv closes them. The socket is not closed. */
void pb_zloop_stop(pb_zloop_t *zl);

#endif
