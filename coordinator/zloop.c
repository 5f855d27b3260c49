/* prepare/check/idle integration of a ZeroMQ socket into libuv (see zloop.h
 * and reference/infra.md B.5). */
#include "coordinator/zloop.h"

#include <stdlib.h>
#include <zmq.h>

#include "common/pb.h"

struct pb_zloop {
    uv_poll_t poll;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle;
    void *sock;
    int budget;
    pb_zloop_drain_fn fn;
    void *ctx;
    int closing;
};

static int has_input(pb_zloop_t *zl)
{
    int ev = 0;
    size_t sz = sizeof ev;
    if (zmq_getsockopt(zl->sock, ZMQ_EVENTS, &ev, &sz) != 0)
        return 0;
    return (ev & ZMQ_POLLIN) != 0;
}

static void on_poll(uv_poll_t *h, int status, int events) { (void)h, (void)status, (void)events; }
static void on_idle(uv_idle_t *h) { (void)h; }

static void on_prepare(uv_prepare_t *h)
{
    pb_zloop_t *zl = h->data;
    if (has_input(zl))
        uv_idle_start(&zl->idle, on_idle);
    else
        uv_idle_stop(&zl->idle);
}

static void on_check(uv_check_t *h)
{
    pb_zloop_t *zl = h->data;
    if (has_input(zl))
        zl->fn(zl->ctx, zl->sock, zl->budget);
    /* Sends inside fn may have consumed the edge: look again so the next
     * prepare keeps the loop spinning while input remains. */
    if (has_input(zl))
        uv_idle_start(&zl->idle, on_idle);
}

int pb_zloop_start(uv_loop_t *loop, void *sock, int budget, pb_zloop_drain_fn fn, void *ctx,
                   pb_zloop_t **out)
{
    *out = NULL;
    int fd;
    size_t sz = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &sz) != 0)
        return PB_ENET;
    pb_zloop_t *zl = calloc(1, sizeof *zl);
    if (zl == NULL)
        return PB_ENOMEM;
    zl->sock = sock;
    zl->budget = budget;
    zl->fn = fn;
    zl->ctx = ctx;
    if (uv_poll_init_socket(loop, &zl->poll, fd) != 0) {
        free(zl);
        return PB_EIO;
    }
    uv_prepare_init(loop, &zl->prepare);
    uv_check_init(loop, &zl->check);
    uv_idle_init(loop, &zl->idle);
    zl->poll.data = zl->prepare.data = zl->check.data = zl->idle.data = zl;
    uv_poll_start(&zl->poll, UV_READABLE, on_poll);
    uv_prepare_start(&zl->prepare, on_prepare);
    uv_check_start(&zl->check, on_check);
    *out = zl;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    pb_zloop_t *zl = h->data;
    if (++zl->closing == 4)
        free(zl);
}

void pb_zloop_stop(pb_zloop_t *zl)
{
    if (zl == NULL)
        return;
    uv_close((uv_handle_t *)&zl->poll, on_closed);
    uv_close((uv_handle_t *)&zl->prepare, on_closed);
    uv_close((uv_handle_t *)&zl->check, on_closed);
    uv_close((uv_handle_t *)&zl->idle, on_closed);
}
