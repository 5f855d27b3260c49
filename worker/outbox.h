/* The worker's outbox: RESULT and FAIL bodies, encoded once, kept until the
 * coordinator ACKs their (task_id, attempt) and resent meanwhile. Pure
 * bookkeeping with a size cap; the session does the sending. */
#ifndef PB_OUTBOX_H
#define PB_OUTBOX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"

typedef struct pb_outmsg {
    json_t *task_id; /* own copy */
    int64_t attempt;
    int type;        /* PB_MSG_RESULT or PB_MSG_FAIL */
    char *body;      /* encoded JSON */
    size_t len;
    char *payload;   /* RESULT items text, or NULL */
    size_t payload_len;
    int64_t sent_ms; /* last send, pb_now_ms() */
} pb_outmsg_t;

typedef struct pb_outbox {
    pb_outmsg_t *msgs;
    size_t n, cap;
    size_t max; /* past it the oldest message is dropped */
} pb_outbox_t;

void pb_outbox_init(pb_outbox_t *o, size_t max);
void pb_outbox_free(pb_outbox_t *o);

/* Whether two (task_id, attempt) pairs name the same task attempt. */
int pb_outbox_same(const json_t *id_a, int64_t att_a, const json_t *id_b, int64_t att_b);

/* Encode body and keep it, with a copy of payload (may be NULL), under
 * (id, attempt). A full outbox drops its
 * oldest message first (*dropped = 1). On success *out points at the kept
 * message (valid until the outbox changes); PB_ENOMEM leaves it unchanged. */
int pb_outbox_put(pb_outbox_t *o, const json_t *id, int64_t attempt, int type,
                  const json_t *body, const char *payload, size_t payload_len,
                  pb_outmsg_t **out, int *dropped);

/* Index of the message for (id, attempt), or -1. */
ptrdiff_t pb_outbox_find(const pb_outbox_t *o, const json_t *id, int64_t attempt);
void pb_outbox_remove(pb_outbox_t *o, size_t i);

#endif
