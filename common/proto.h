/* Worker protocol framing (ARCHITECTURE.md section 4): every message is
 * [routing id (ROUTER side only)]["PB1"][TYPE][JSON body]. Shared by the
 * coordinator's broker and the worker. */
#ifndef PB_PROTO_H
#define PB_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"

#define PB_MSG_TYPES(X) \
    X(HELLO)            \
    X(READY)            \
    X(HEARTBEAT)        \
    X(RESULT)           \
    X(FAIL)             \
    X(TASK)             \
    X(ACK)              \
    X(CANCEL)           \
    X(RESET)

typedef enum {
    PB_MSG_NONE = 0,
#define PB_MSG_ENUM(n) PB_MSG_##n,
    PB_MSG_TYPES(PB_MSG_ENUM)
#undef PB_MSG_ENUM
} pb_msg_type_t;

/* RESULT items: each item is a JSON array
 *   [idx, prompt_hash, prediction, reference, score, latency_us, tokens, meta, error]
 * where meta (optional) is the item metadata as JSON *text* (stored as is)
 * and error (optional) is the backend's per-item error. Workers send the
 * items array as a fourth frame after the JSON body (the payload, written
 * and scanned by common/items.h without building a JSON tree); an "items"
 * array inside the body, of arrays or of objects {"idx": .., ...}, is
 * accepted too.
 *
 * RESULT aggregate: {"n", "score_sum", "groups"?}, groups being
 * [[key, value, n, score_sum], ...]: key a suite breakdown entry (item meta
 * keys, never starting with '@'), or one of the reserved keys below. */
/* value: a name of the suite's per-item metrics; score_sum: its sum. */
#define PB_GROUP_METRIC "@metric"
/* value: the unit the task's lengths were measured in ("tokens" or
 * "chars"); score_sum 0. */
#define PB_GROUP_UNIT "@unit"
/* "<entry>@<metric>": a breakdown entry's groups again, score_sum being the
 * sum of that per-item metric over the group's items (per-group metrics). */
#define PB_GROUP_METRIC_SEP '@'
/* Longest key the store accepts, terminator included. */
#define PB_GROUP_KEY_CAP 129

#define PB_ROUTING_ID_MAX 255
#define PB_FRAME_MAX ((int64_t)64 << 20) /* ZMQ_MAXMSGSIZE on both sides */
#define PB_HEARTBEAT_MS 1000
#define PB_LIVENESS 5 /* missed beats before a peer is dead */

const char *pb_msg_name(int type);
/* Type for a frame's bytes, PB_MSG_NONE when unknown. */
int pb_msg_type(const void *data, size_t n);

typedef struct pb_msg {
    unsigned char rid[PB_ROUTING_ID_MAX]; /* ROUTER side: peer routing id */
    size_t rid_len;
    int type;
    json_t *body; /* owned; NULL when the message had an empty body */
    char *payload; /* owned copy of the optional fourth frame, NUL-terminated */
    size_t payload_len;
} pb_msg_t;

/* Send one message. rid is NULL on the DEALER side. Non-blocking: returns
 * PB_ENET when the message could not be queued (peer gone, HWM). */
int pb_proto_send(void *sock, const void *rid, size_t rid_len, int type, const json_t *body);
/* Same with a pre-encoded JSON body and an optional payload frame
 * (payload NULL = none). */
int pb_proto_send_raw(void *sock, const void *rid, size_t rid_len, int type, const char *body,
                      size_t len, const char *payload, size_t payload_len);

/* Receive one message without blocking. is_router says whether a routing
 * frame comes first; a payload frame may follow the body. Returns 0 with *m filled, PB_ENOTFOUND when nothing is
 * waiting, PB_EPROTO for a malformed message (all its frames are consumed,
 * m->rid is still filled when known so the caller can RESET the peer, and
 * err names the problem). */
int pb_proto_recv(void *sock, int is_router, pb_msg_t *m, pb_err_t *err);
void pb_msg_clear(pb_msg_t *m);

#endif
