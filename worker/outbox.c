/* The worker's outbox of unacknowledged RESULT/FAIL messages (outbox.h). */
#include "worker/outbox.h"

#include <stdlib.h>
#include <string.h>

void pb_outbox_init(pb_outbox_t *o, size_t max)
{
    memset(o, 0, sizeof *o);
    o->max = max > 0 ? max : 1;
}

void pb_outbox_free(pb_outbox_t *o)
{
    while (o->n > 0)
        pb_outbox_remove(o, o->n - 1);
    free(o->msgs);
    memset(o, 0, sizeof *o);
}

int pb_outbox_same(const json_t *id_a, int64_t att_a, const json_t *id_b, int64_t att_b)
{
    return att_a == att_b && id_a && id_b && json_equal((json_t *)id_a, (json_t *)id_b);
}

int pb_outbox_put(pb_outbox_t *o, const json_t *id, int64_t attempt, int type,
                  const json_t *body, const char *payload, size_t payload_len,
                  pb_outmsg_t **out, int *dropped)
{
    *dropped = 0;
    char *text = json_dumps(body, JSON_COMPACT);
    json_t *own_id = json_deep_copy(id);
    char *pl = payload ? malloc(payload_len + 1) : NULL;
    if (text == NULL || own_id == NULL || (payload && pl == NULL))
        goto fail;
    if (pl) {
        memcpy(pl, payload, payload_len);
        pl[payload_len] = '\0';
    }
    if (o->n == o->cap && o->n < o->max) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        if (cap > o->max)
            cap = o->max;
        pb_outmsg_t *m = realloc(o->msgs, cap * sizeof *m);
        if (m == NULL)
            goto fail;
        o->msgs = m;
        o->cap = cap;
    }
    if (o->n == o->max) {
        pb_outbox_remove(o, 0);
        *dropped = 1;
    }
    pb_outmsg_t *m = &o->msgs[o->n++];
    m->task_id = own_id;
    m->attempt = attempt;
    m->type = type;
    m->body = text;
    m->len = strlen(text);
    m->payload = pl;
    m->payload_len = pl ? payload_len : 0;
    m->sent_ms = 0;
    *out = m;
    return 0;
fail:
    free(text);
    free(pl);
    json_decref(own_id);
    return PB_ENOMEM;
}

ptrdiff_t pb_outbox_find(const pb_outbox_t *o, const json_t *id, int64_t attempt)
{
    for (size_t i = 0; i < o->n; i++)
        if (pb_outbox_same(o->msgs[i].task_id, o->msgs[i].attempt, id, attempt))
            return (ptrdiff_t)i;
    return -1;
}

void pb_outbox_remove(pb_outbox_t *o, size_t i)
{
    if (i >= o->n)
        return;
    json_decref(o->msgs[i].task_id);
    free(o->msgs[i].body);
    free(o->msgs[i].payload);
    memmove(&o->msgs[i], &o->msgs[i + 1], (o->n - i - 1) * sizeof o->msgs[0]);
    o->n--;
}
