/* Encoding and decoding of the PB1 frames over a ZeroMQ socket. */
#include "common/proto.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

static const char *const msg_names[] = {
    "NONE",
#define PB_MSG_NAME(n) #n,
    PB_MSG_TYPES(PB_MSG_NAME)
#undef PB_MSG_NAME
};

const char *pb_msg_name(int type)
{
    if (type <= 0 || (size_t)type >= PB_ARRAY_LEN(msg_names))
        return "NONE";
    return msg_names[type];
}

int pb_msg_type(const void *data, size_t n)
{
    for (size_t i = 1; i < PB_ARRAY_LEN(msg_names); i++)
        if (strlen(msg_names[i]) == n && memcmp(msg_names[i], data, n) == 0)
            return (int)i;
    return PB_MSG_NONE;
}

int pb_proto_send_raw(void *sock, const void *rid, size_t rid_len, int type, const char *body,
                      size_t len, const char *payload, size_t payload_len)
{
    const char *name = pb_msg_name(type);
    if (rid && zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return PB_ENET;
    if (zmq_send(sock, PB_PROTOCOL_VERSION, 3, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return PB_ENET;
    if (zmq_send(sock, name, strlen(name), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return PB_ENET;
    if (zmq_send(sock, body ? body : "", body ? len : 0, payload ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT) < 0)
        return PB_ENET;
    if (payload && zmq_send(sock, payload, payload_len, ZMQ_DONTWAIT) < 0)
        return PB_ENET;
    return 0;
}

int pb_proto_send(void *sock, const void *rid, size_t rid_len, int type, const json_t *body)
{
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL)
            return PB_ENOMEM;
    }
    int rc = pb_proto_send_raw(sock, rid, rid_len, type, text, text ? strlen(text) : 0, NULL, 0);
    free(text);
    return rc;
}

void pb_msg_clear(pb_msg_t *m)
{
    json_decref(m->body);
    free(m->payload);
    memset(m, 0, sizeof *m);
}

/* Drain the remaining frames of a multipart message. */
static void drain(void *sock)
{
    int more = 1;
    size_t sz = sizeof more;
    zmq_msg_t f;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f);
            return;
        }
        zmq_msg_close(&f);
        sz = sizeof more;
    }
}

int pb_proto_recv(void *sock, int is_router, pb_msg_t *m, pb_err_t *err)
{
    memset(m, 0, sizeof *m);
    zmq_msg_t f[5];
    int nf = 0, rc = 0;
    int want = is_router ? 4 : 3;
    for (; nf < want; nf++) {
        zmq_msg_init(&f[nf]);
        if (zmq_msg_recv(&f[nf], sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f[nf]);
            if (nf == 0 && errno == EAGAIN)
                return PB_ENOTFOUND;
            rc = pb_err_set(err, PB_EPROTO, "frames", "message ended after %d frames, want %d", nf,
                            want);
            goto out;
        }
        if (is_router && nf == 0) {
            /* keep the peer's id even if the rest is malformed: the caller
             * answers a bad message with RESET */
            size_t n = zmq_msg_size(&f[0]);
            if (n > PB_ROUTING_ID_MAX)
                n = PB_ROUTING_ID_MAX;
            memcpy(m->rid, zmq_msg_data(&f[0]), n);
            m->rid_len = n;
        }
        if (nf + 1 < want && !zmq_msg_more(&f[nf])) {
            nf++;
            rc = pb_err_set(err, PB_EPROTO, "frames", "message has %d frames, want %d", nf, want);
            goto out;
        }
    }
    if (zmq_msg_more(&f[nf - 1])) { /* the optional payload frame */
        zmq_msg_init(&f[nf]);
        if (zmq_msg_recv(&f[nf], sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f[nf]);
            rc = pb_err_set(err, PB_EPROTO, "frames", "message ended inside its payload");
            goto out;
        }
        nf++;
    }
    int base = is_router ? 1 : 0;
    if (zmq_msg_more(&f[nf - 1])) {
        drain(sock); /* extra trailing frames are a protocol error */
        rc = pb_err_set(err, PB_EPROTO, "frames", "message has more than %d frames", want + 1);
        goto out;
    }
    if (zmq_msg_size(&f[base]) != 3 || memcmp(zmq_msg_data(&f[base]), PB_PROTOCOL_VERSION, 3)) {
        rc = pb_err_set(err, PB_EPROTO, "version", "unknown protocol version (want %s)",
                        PB_PROTOCOL_VERSION);
        goto out;
    }
    m->type = pb_msg_type(zmq_msg_data(&f[base + 1]), zmq_msg_size(&f[base + 1]));
    if (m->type == PB_MSG_NONE) {
        rc = pb_err_set(err, PB_EPROTO, "type", "unknown message type");
        goto out;
    }
    size_t blen = zmq_msg_size(&f[base + 2]);
    if (blen > 0) {
        json_error_t jerr;
        m->body = json_loadb(zmq_msg_data(&f[base + 2]), blen, 0, &jerr);
        if (m->body == NULL || !json_is_object(m->body)) {
            rc = pb_err_set(err, PB_EPROTO, "body", "%s body is not a JSON object: %s",
                            pb_msg_name(m->type), m->body ? "wrong type" : jerr.text);
            json_decref(m->body);
            m->body = NULL;
            goto out;
        }
    }
    if (nf == want + 1) {
        size_t plen = zmq_msg_size(&f[want]);
        m->payload = malloc(plen + 1);
        if (m->payload == NULL) {
            rc = pb_err_set(err, PB_ENOMEM, "payload", "out of memory for a %zu-byte payload", plen);
            goto out;
        }
        memcpy(m->payload, zmq_msg_data(&f[want]), plen);
        m->payload[plen] = '\0';
        m->payload_len = plen;
    }
out:
    for (int i = 0; i < nf; i++)
        zmq_msg_close(&f[i]);
    if (rc) {
        json_decref(m->body);
        m->body = NULL;
        free(m->payload);
        m->payload = NULL;
        m->type = PB_MSG_NONE;
    }
    return rc;
}
