/* Unit tests for common/: errors, hashing and the counter-based RNG (known
 * values, bounds), the Wilson interval, the capped buffer, host:port parsing,
 * the JSON getters and canonical form, and the PB1 framing over a real
 * ZeroMQ inproc ROUTER/DEALER pair. */
#include "tests/unit/unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/json.h"
#include "common/pb.h"
#include "common/proto.h"
#include "common/rng.h"
#include "common/util.h"
#include "common/utf8.h"


/* ---- errors ---- */

static void test_errors(void **state)
{
    assert_string_equal(pb_strerror(PB_OK), "ok");
    assert_string_equal(pb_strerror(PB_ETOOBIG), "too large");
    assert_string_equal(pb_strerror(PB_ESTALE), "stale or duplicate");
    assert_string_equal(pb_strerror(-999), "unknown error");
    pb_err_t err;
    assert_int_equal(pb_err_set(&err, PB_EINVAL, "runs[0]", "bad %d", 7), PB_EINVAL);
    assert_string_equal(err.msg, "bad 7");
    assert_string_equal(err.field, "runs[0]");
    assert_int_equal(pb_err_set(NULL, PB_EIO, "x", "y"), PB_EIO);
    assert_int_equal(pb_err_set(&err, PB_EIO, NULL, "z"), PB_EIO);
    assert_string_equal(err.field, "");
}

/* ---- hashing and rng ---- */

static void test_hash(void **state)
{
    /* published FNV-1a 64 test vectors */
    assert_true(pb_hash_bytes(PB_HASH_INIT, "", 0) == 0xcbf29ce484222325ULL);
    assert_true(pb_hash_bytes(PB_HASH_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(pb_hash_bytes(PB_HASH_INIT, "foobar", 6) == 0x85944171f73967e8ULL);
    /* strings hash with their terminator, so "ab"+"c" differs from "a"+"bc" */
    assert_true(pb_hash_str(PB_HASH_INIT, "a") == pb_hash_bytes(PB_HASH_INIT, "a", 2));
    assert_true(pb_hash_str(pb_hash_str(PB_HASH_INIT, "ab"), "c") !=
                pb_hash_str(pb_hash_str(PB_HASH_INIT, "a"), "bc"));
    /* u64 hashes little-endian bytes on every host */
    unsigned char le[8] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    assert_true(pb_hash_u64(PB_HASH_INIT, 0x0102030405060708ULL) ==
                pb_hash_bytes(PB_HASH_INIT, le, 8));
    char hex[17];
    pb_hash_hex(0x00af63dc4c8601ecULL, hex);
    assert_string_equal(hex, "00af63dc4c8601ec");
}

static void test_rng_known(void **state)
{
    /* splitmix64 from state 0 (the reference implementation's output) */
    uint64_t st = 0;
    assert_true(pb_splitmix64(&st) == 0xe220a8397b1dcdafULL);
    assert_true(pb_splitmix64(&st) == 0x6e789e6aa1b965f4ULL);
    assert_true(pb_splitmix64(&st) == 0x06c45d188009454fULL);
    /* xoshiro256** from state {1, 2, 3, 4} */
    pb_rng_t r = {{1, 2, 3, 4}};
    assert_true(pb_rng_next(&r) == 11520);
    assert_true(pb_rng_next(&r) == 0);
    assert_true(pb_rng_next(&r) == 1509978240);
    /* seeding is pinned: every stored item depends on it (values computed
     * by an independent implementation of the same recipe) */
    pb_rng_seed(&r, 42, 7);
    assert_true(pb_rng_next(&r) == 0xd92503696efc463bULL);
    assert_true(pb_rng_next(&r) == 0xc604c75e66eb1117ULL);
    assert_true(pb_rng_next(&r) == 0xa07ce33cc93cb6b1ULL);
    pb_rng_seed(&r, 0, 0);
    assert_true(pb_rng_next(&r) == 0x37191a3d8644f96cULL);
}

static void test_rng_streams(void **state)
{
    pb_rng_t a, b;
    /* the same (key, counter) gives the same stream; neighbours differ */
    pb_rng_seed(&a, 1234, 5);
    pb_rng_seed(&b, 1234, 5);
    for (int i = 0; i < 100; i++)
        assert_true(pb_rng_next(&a) == pb_rng_next(&b));
    uint64_t first[64];
    for (uint64_t c = 0; c < 64; c++) {
        pb_rng_seed(&a, 1234, c);
        first[c] = pb_rng_next(&a);
        for (uint64_t d = 0; d < c; d++)
            assert_true(first[c] != first[d]);
    }
    pb_rng_seed(&a, 1235, 5);
    pb_rng_seed(&b, 1234, 5);
    assert_true(pb_rng_next(&a) != pb_rng_next(&b));
}

static void test_rng_bounds(void **state)
{
    static const uint64_t ns[] = {1, 2, 3, 7, 10, 1000003, (1ULL << 63) + 1, UINT64_MAX};
    pb_rng_t r;
    pb_rng_seed(&r, 7, 0);
    for (size_t k = 0; k < PB_ARRAY_LEN(ns); k++)
        for (int i = 0; i < 2000; i++)
            assert_true(pb_rng_below(&r, ns[k]) < ns[k]);

    /* roughly uniform over 10 values: each within 10% of n/10 */
    unsigned counts[10] = {0};
    for (int i = 0; i < 100000; i++)
        counts[pb_rng_below(&r, 10)]++;
    for (int v = 0; v < 10; v++)
        assert_true(counts[v] > 9000 && counts[v] < 11000);

    /* range is inclusive at both ends and handles negatives */
    int seen_lo = 0, seen_hi = 0;
    for (int i = 0; i < 5000; i++) {
        int64_t x = pb_rng_range(&r, -3, 3);
        assert_true(x >= -3 && x <= 3);
        seen_lo |= x == -3;
        seen_hi |= x == 3;
    }
    assert_true(seen_lo && seen_hi);
    assert_int_equal(pb_rng_range(&r, 5, 5), 5);
    /* the full int64 range must not overflow */
    (void)pb_rng_range(&r, INT64_MIN, INT64_MAX);
    int64_t big = pb_rng_range(&r, INT64_MIN, INT64_MIN + 1);
    assert_true(big == INT64_MIN || big == INT64_MIN + 1);

    for (int i = 0; i < 10000; i++) {
        double d = pb_rng_double(&r);
        assert_true(d >= 0.0 && d < 1.0);
    }
}

/* ---- util ---- */

static void test_wilson(void **state)
{
    double lo, hi;
    pb_wilson(8, 10, &lo, &hi);
    assert_true(fabs(lo - 0.4902) < 1e-4);
    assert_true(fabs(hi - 0.9433) < 1e-4);
    pb_wilson(0, 0, &lo, &hi);
    assert_true(lo == 0.0 && hi == 1.0);
    pb_wilson(0, 20, &lo, &hi);
    assert_true(lo == 0.0);
    assert_true(fabs(hi - 0.1611) < 1e-4);
    pb_wilson(20, 20, &lo, &hi);
    assert_true(fabs(lo - 0.8389) < 1e-4);
    assert_true(fabs(hi - 1.0) < 1e-12);
    pb_wilson(500, 1000, &lo, &hi);
    assert_true(fabs(lo + hi - 1.0) < 1e-12); /* symmetric around 0.5 */
}

static void test_grow(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0;
    assert_int_equal(pb_grow(&a, &cap, 1, sizeof *a, 4), 0);
    assert_int_equal(cap, 4);
    for (int i = 0; i < 4; i++)
        a[i] = i;
    int *before = a;
    assert_int_equal(pb_grow(&a, &cap, 4, sizeof *a, 4), 0); /* enough room: untouched */
    assert_ptr_equal(a, before);
    assert_int_equal(pb_grow(&a, &cap, 37, sizeof *a, 4), 0);
    assert_int_equal(cap, 64); /* doubled until it fits */
    for (int i = 0; i < 4; i++)
        assert_int_equal(a[i], i); /* contents kept */
    a[36] = 36;
    size_t huge = cap;
    assert_int_equal(pb_grow(&a, &huge, SIZE_MAX / 8, 8, 4), PB_ENOMEM);
    assert_int_equal(huge, 64); /* failure leaves the array as it was */
    assert_int_equal(a[36], 36);
    free(a);
}

static void test_buf(void **state)
{
    pb_buf_t b;
    pb_buf_init(&b, 10);
    assert_int_equal(pb_buf_append(&b, "12345678", 8), 0);
    assert_int_equal(pb_buf_append(&b, "abc", 3), PB_ETOOBIG);
    assert_int_equal(b.len, 8); /* a refused append changes nothing */
    assert_string_equal(b.data, "12345678");
    assert_int_equal(pb_buf_printf(&b, "%d", 123), PB_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_int_equal(pb_buf_printf(&b, "%d", 12), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "1234567812");
    assert_int_equal(pb_buf_append(&b, "x", 1), PB_ETOOBIG);
    assert_int_equal(pb_buf_append(&b, "", 0), 0);
    assert_int_equal(pb_buf_cstr(&b), 0);
    pb_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    pb_buf_free(&b);
    assert_null(b.data);

    /* unlimited grows */
    pb_buf_init(&b, 0);
    assert_int_equal(pb_buf_cstr(&b), 0);
    assert_string_equal(b.data, "");
    for (int i = 0; i < 10000; i++)
        assert_int_equal(pb_buf_printf(&b, "%04d", i), 0);
    assert_int_equal(b.len, 40000);
    assert_memory_equal(b.data + 4 * 9999, "9999", 5);
    pb_buf_free(&b);

    /* an empty append on a fresh buffer is fine */
    pb_buf_init(&b, 4);
    assert_int_equal(pb_buf_append(&b, NULL, 0), 0);
    assert_int_equal(pb_buf_append(&b, "12345", 5), PB_ETOOBIG);
    pb_buf_free(&b);
}

static void test_hostport(void **state)
{
    char host[64];
    int port = -1;
    assert_int_equal(pb_parse_hostport("10.0.0.2:8080", host, sizeof host, &port), 0);
    assert_string_equal(host, "10.0.0.2");
    assert_int_equal(port, 8080);
    assert_int_equal(pb_parse_hostport(":5555", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 5555);
    assert_int_equal(pb_parse_hostport("localhost:0", host, sizeof host, &port), 0);
    assert_int_equal(port, 0);
    assert_int_equal(pb_parse_hostport("localhost:65535", host, sizeof host, &port), 0);
    assert_int_equal(pb_parse_hostport("localhost", host, sizeof host, &port), PB_EINVAL);
    assert_int_equal(pb_parse_hostport("localhost:", host, sizeof host, &port), PB_EINVAL);
    assert_int_equal(pb_parse_hostport("localhost:65536", host, sizeof host, &port), PB_EINVAL);
    assert_int_equal(pb_parse_hostport("localhost:-1", host, sizeof host, &port), PB_EINVAL);
    assert_int_equal(pb_parse_hostport("localhost:+80", host, sizeof host, &port), PB_EINVAL);
    assert_int_equal(pb_parse_hostport("localhost: 80", host, sizeof host, &port), PB_EINVAL);
    assert_int_equal(pb_parse_hostport("localhost:80x", host, sizeof host, &port), PB_EINVAL);
    assert_int_equal(pb_parse_hostport("a-very-long-host-name:80", host, 8, &port), PB_EINVAL);
}

/* ---- json ---- */

static void test_json_getters(void **state)
{
    json_t *o = pb_test_json("{\"i\": 5, \"r\": 6.0, \"f\": 1.5, \"s\": \"x\", \"b\": true, \"n\": null,"
                      " \"big\": 99}");
    pb_err_t err = {{0}, {0}};
    int64_t i = 0;
    assert_int_equal(pb_json_int(o, "i", 0, 0, 10, &i, "p", &err), 0);
    assert_int_equal(i, 5);
    assert_int_equal(pb_json_int(o, "r", 0, 0, 10, &i, "p", &err), 0);
    assert_int_equal(i, 6);
    assert_int_equal(pb_json_int(o, "absent", 42, 0, 10, &i, "p", &err), 0);
    assert_int_equal(i, 42); /* the default is not range-checked */
    assert_int_equal(pb_json_int(o, "n", 3, 0, 10, &i, "p", &err), 0);
    assert_int_equal(i, 3);
    assert_int_equal(pb_json_int(o, "f", 0, 0, 10, &i, "p", &err), PB_EINVAL);
    assert_string_equal(err.field, "p.f");
    assert_int_equal(pb_json_int(o, "s", 0, 0, 10, &i, "", &err), PB_EINVAL);
    assert_string_equal(err.field, "s");
    assert_int_equal(pb_json_int(o, "big", 0, 0, 10, &i, "runs[2]", &err), PB_EINVAL);
    assert_string_equal(err.field, "runs[2].big");
    assert_non_null(strstr(err.msg, "between 0 and 10"));

    double d = 0;
    assert_int_equal(pb_json_num(o, "f", 0, 0, 2, &d, NULL, &err), 0);
    assert_true(d == 1.5);
    assert_int_equal(pb_json_num(o, "i", 0, 0, 10, &d, NULL, &err), 0);
    assert_true(d == 5.0);
    assert_int_equal(pb_json_num(o, "big", 0, 0, 10, &d, NULL, &err), PB_EINVAL);
    assert_string_equal(err.field, "big");
    assert_int_equal(pb_json_num(o, "b", 0, 0, 10, &d, "q", &err), PB_EINVAL);
    assert_string_equal(err.field, "q.b");

    int bv = 0;
    assert_int_equal(pb_json_bool(o, "b", 0, &bv, "", &err), 0);
    assert_int_equal(bv, 1);
    assert_int_equal(pb_json_bool(o, "absent", 1, &bv, "", &err), 0);
    assert_int_equal(bv, 1);
    assert_int_equal(pb_json_bool(o, "i", 0, &bv, "m", &err), PB_EINVAL);
    assert_string_equal(err.field, "m.i");

    const char *s = NULL;
    assert_int_equal(pb_json_str(o, "s", NULL, 1, &s, "", &err), 0);
    assert_string_equal(s, "x");
    assert_int_equal(pb_json_str(o, "absent", "dflt", 0, &s, "", &err), 0);
    assert_string_equal(s, "dflt");
    assert_int_equal(pb_json_str(o, "absent", NULL, 1, &s, "model", &err), PB_EINVAL);
    assert_string_equal(err.field, "model.absent");
    assert_int_equal(pb_json_str(o, "n", NULL, 1, &s, "", &err), PB_EINVAL);
    assert_int_equal(pb_json_str(o, "i", NULL, 0, &s, "", &err), PB_EINVAL);
    assert_string_equal(err.field, "i");
    /* a NULL object reads as empty */
    assert_int_equal(pb_json_int(NULL, "i", 9, 0, 10, &i, "", &err), 0);
    assert_int_equal(i, 9);

    static const char *const ok[] = {"i", "r", "f", "s", "b", "n", "big", NULL};
    static const char *const few[] = {"i", "r", "f", "s", "b", "n", NULL};
    assert_int_equal(pb_json_only_keys(o, ok, "", &err), 0);
    assert_int_equal(pb_json_only_keys(o, few, "requires", &err), PB_EINVAL);
    assert_string_equal(err.field, "requires.big");

    int64_t v;
    json_t *x = json_real(3.5);
    assert_int_equal(pb_json_as_int(x, &v), PB_EINVAL);
    json_decref(x);
    x = json_string("3");
    assert_int_equal(pb_json_as_int(x, &v), PB_EINVAL);
    json_decref(x);
    x = json_real(-4.0);
    assert_int_equal(pb_json_as_int(x, &v), 0);
    assert_int_equal(v, -4);
    json_decref(x);
    json_decref(o);
}

static void test_json_canonical(void **state)
{
    json_t *a = pb_test_json("{\"b\": 1, \"a\": {\"d\": [2, {\"z\": 0, \"y\": 1}], \"c\": 3}}");
    json_t *b = pb_test_json("{\"a\": {\"c\": 3, \"d\": [2, {\"y\": 1, \"z\": 0}]}, \"b\": 1}");
    char *ca = pb_json_canonical(a), *cb = pb_json_canonical(b);
    assert_string_equal(ca, "{\"a\":{\"c\":3,\"d\":[2,{\"y\":1,\"z\":0}]},\"b\":1}");
    assert_string_equal(ca, cb);
    free(ca);
    free(cb);
    json_decref(a);
    json_decref(b);
    json_t *s = json_string("x");
    char *cs = pb_json_canonical(s); /* scalars too */
    assert_string_equal(cs, "\"x\"");
    free(cs);
    json_decref(s);
}

/* ---- protocol over ZeroMQ inproc ---- */

typedef struct zpair {
    void *ctx, *router, *dealer;
} zpair_t;

static int zpair_setup(void **state)
{
    static int n;
    char ep[64];
    zpair_t *z = calloc(1, sizeof *z);
    int linger = 0;
    snprintf(ep, sizeof ep, "inproc://pbtest-%d", n++);
    z->ctx = zmq_ctx_new();
    z->router = zmq_socket(z->ctx, ZMQ_ROUTER);
    z->dealer = zmq_socket(z->ctx, ZMQ_DEALER);
    zmq_setsockopt(z->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(z->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(z->dealer, ZMQ_ROUTING_ID, "w1", 2);
    if (zmq_bind(z->router, ep) || zmq_connect(z->dealer, ep))
        return -1;
    *state = z;
    return 0;
}

static int zpair_teardown(void **state)
{
    zpair_t *z = *state;
    zmq_close(z->dealer);
    zmq_close(z->router);
    zmq_ctx_term(z->ctx);
    free(z);
    return 0;
}

/* pb_proto_recv once something is waiting (inproc delivery is asynchronous). */
static int recv_wait(void *sock, int is_router, pb_msg_t *m, pb_err_t *err)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&it, 1, 2000), 1);
    return pb_proto_recv(sock, is_router, m, err);
}

/* Send raw frames from sock. */
static void send_frames(void *sock, const char *const *frames, int n)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(sock, frames[i], strlen(frames[i]), i + 1 < n ? ZMQ_SNDMORE : 0) >=
                    0);
}

static void expect_ok_hello(zpair_t *z)
{
    pb_msg_t m;
    pb_err_t err = {{0}, {0}};
    json_t *body = pb_test_json("{\"name\": \"w1\"}");
    assert_int_equal(pb_proto_send(z->dealer, NULL, 0, PB_MSG_HELLO, body), 0);
    assert_int_equal(recv_wait(z->router, 1, &m, &err), 0);
    assert_int_equal(m.type, PB_MSG_HELLO);
    assert_true(json_equal(m.body, body));
    pb_msg_clear(&m);
    json_decref(body);
}

static void test_proto_roundtrip(void **state)
{
    zpair_t *z = *state;
    pb_msg_t m;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(pb_proto_recv(z->router, 1, &m, &err), PB_ENOTFOUND);

    json_t *hello = pb_test_json("{\"name\": \"w1\", \"slots\": 2, \"backends\": [\"oracle\"]}");
    assert_int_equal(pb_proto_send(z->dealer, NULL, 0, PB_MSG_HELLO, hello), 0);
    assert_int_equal(recv_wait(z->router, 1, &m, &err), 0);
    assert_int_equal(m.type, PB_MSG_HELLO);
    assert_int_equal(m.rid_len, 2);
    assert_memory_equal(m.rid, "w1", 2);
    assert_true(json_equal(m.body, hello));
    pb_msg_clear(&m);
    assert_null(m.body);

    /* the other way, addressed by routing id */
    json_t *task = pb_test_json("{\"task_id\": 17, \"attempt\": 1, \"suite\": \"arithmetic\"}");
    assert_int_equal(pb_proto_send(z->router, "w1", 2, PB_MSG_TASK, task), 0);
    assert_int_equal(recv_wait(z->dealer, 0, &m, &err), 0);
    assert_int_equal(m.type, PB_MSG_TASK);
    assert_int_equal(m.rid_len, 0);
    assert_true(json_equal(m.body, task));
    pb_msg_clear(&m);

    /* an empty body is allowed and reads as NULL */
    assert_int_equal(pb_proto_send(z->dealer, NULL, 0, PB_MSG_READY, NULL), 0);
    assert_int_equal(recv_wait(z->router, 1, &m, &err), 0);
    assert_int_equal(m.type, PB_MSG_READY);
    assert_null(m.body);
    pb_msg_clear(&m);
    const char *raw = "{\"credit\":3}";
    assert_int_equal(pb_proto_send_raw(z->dealer, NULL, 0, PB_MSG_READY, raw, strlen(raw), NULL, 0), 0);
    assert_int_equal(recv_wait(z->router, 1, &m, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(m.body, "credit")), 3);
    assert_null(m.payload);
    pb_msg_clear(&m);
    /* an optional fourth frame arrives as the payload, NUL-terminated */
    assert_int_equal(pb_proto_send_raw(z->dealer, NULL, 0, PB_MSG_RESULT, raw, strlen(raw),
                                       "[[1]]", 5),
                     0);
    assert_int_equal(recv_wait(z->router, 1, &m, &err), 0);
    assert_int_equal(m.type, PB_MSG_RESULT);
    assert_int_equal(m.payload_len, 5);
    assert_string_equal(m.payload, "[[1]]");
    pb_msg_clear(&m);
    json_decref(hello);
    json_decref(task);

    assert_int_equal(pb_msg_type("RESULT", 6), PB_MSG_RESULT);
    assert_int_equal(pb_msg_type("RESUL", 5), PB_MSG_NONE);
    assert_int_equal(pb_msg_type("RESULTS", 7), PB_MSG_NONE);
    assert_string_equal(pb_msg_name(PB_MSG_RESET), "RESET");
    assert_string_equal(pb_msg_name(0), "NONE");
    assert_string_equal(pb_msg_name(999), "NONE");
}

/* A malformed message from the DEALER: PB_EPROTO naming field, the rid
 * known so the broker can RESET the peer, and the stream still in step. */
static void expect_proto_error(zpair_t *z, const char *const *frames, int n, const char *field)
{
    pb_msg_t m;
    pb_err_t err = {{0}, {0}};
    send_frames(z->dealer, frames, n);
    int rc = recv_wait(z->router, 1, &m, &err);
    if (rc != PB_EPROTO || strcmp(err.field, field) != 0)
        fail_msg("frames[0]=%s n=%d: rc %d field \"%s\" (want \"%s\") %s", frames[0], n, rc,
                 err.field, field, err.msg);
    assert_int_equal(m.rid_len, 2);
    assert_memory_equal(m.rid, "w1", 2);
    assert_int_equal(m.type, PB_MSG_NONE);
    assert_null(m.body);
    assert_true(err.msg[0] != '\0');
    pb_msg_clear(&m);
    expect_ok_hello(z); /* every frame of the bad message was consumed */
}

static void test_proto_errors(void **state)
{
    zpair_t *z = *state;
    static const char *const garbage[] = {"garbage"};
    static const char *const two[] = {"PB1", "HELLO"};
    static const char *const five[] = {"PB1", "HELLO", "{}", "payload", "extra"};
    static const char *const version[] = {"PB2", "HELLO", "{}"};
    static const char *const type[] = {"PB1", "HELLOX", "{}"};
    static const char *const array[] = {"PB1", "HELLO", "[1, 2]"};
    static const char *const number[] = {"PB1", "HELLO", "42"};
    static const char *const broken[] = {"PB1", "HELLO", "{\"name\": "};
    expect_proto_error(z, garbage, 1, "frames");
    expect_proto_error(z, two, 2, "frames");
    expect_proto_error(z, five, 5, "frames");
    expect_proto_error(z, version, 3, "version");
    expect_proto_error(z, type, 3, "type");
    expect_proto_error(z, array, 3, "body");
    expect_proto_error(z, number, 3, "body");
    expect_proto_error(z, broken, 3, "body");

    /* the DEALER side checks the same way (no routing frame) */
    pb_msg_t m;
    pb_err_t err = {{0}, {0}};
    static const char *const bad_down[] = {"w1", "PB1", "NOPE", "{}"};
    send_frames(z->router, bad_down, 4);
    assert_int_equal(recv_wait(z->dealer, 0, &m, &err), PB_EPROTO);
    assert_string_equal(err.field, "type");
    assert_int_equal(m.rid_len, 0);
    pb_msg_clear(&m);
}

/* UTF-8 repair: expectations from Python's bytes.decode("utf-8", "replace"),
 * which replaces each maximal invalid subpart as the WHATWG decoder does. */
static void test_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"ab\xc0\xaf" "cd", "ab\xef\xbf\xbd\xef\xbf\xbd" "cd"},
        {"x\xe2\x82", "x\xef\xbf\xbd"},
        {"\xed\xa0\x80z", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz"},
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xe2\x82\xac ok", "\xe2\x82\xac ok"},
        {"\xf0\x9f\x98", "\xef\xbf\xbd"},
        {"\xff", "\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(cases); i++) {
        pb_buf_t b;
        pb_buf_init(&b, 0);
        size_t n = strlen(cases[i].in);
        assert_int_equal(pb_utf8_clean(cases[i].in, n, &b), 0);
        assert_int_equal(b.len, strlen(cases[i].out));
        assert_memory_equal(b.data, cases[i].out, b.len);
        assert_int_equal(pb_utf8_valid_prefix(b.data, b.len), b.len);
        pb_buf_free(&b);
    }
    assert_int_equal(pb_utf8_valid_prefix("ok\xc3", 3), 2);
    /* A stream holds back an unfinished character, not an invalid byte. */
    assert_int_equal(pb_utf8_ready("ab\xe2\x82", 4), 2);
    assert_int_equal(pb_utf8_ready("ab\xff", 3), 3);
    assert_int_equal(pb_utf8_ready("ab\xe2\x82\xac", 5), 5);
}

int pb_test_common(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_rng_known),
        cmocka_unit_test(test_rng_streams),
        cmocka_unit_test(test_rng_bounds),
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_json_getters),
        cmocka_unit_test(test_json_canonical),
        cmocka_unit_test_setup_teardown(test_proto_roundtrip, zpair_setup, zpair_teardown),
        cmocka_unit_test_setup_teardown(test_proto_errors, zpair_setup, zpair_teardown),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
