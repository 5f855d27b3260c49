/* Unit tests for worker/: the backend table and baselines, the task runner
 * against the real arithmetic suite (oracle, random floor, determinism,
 * cancel, errors), and the session protocol: an in-process ROUTER plays the
 * coordinator against a real posbench-worker child (binary from
 * $PB_WORKER_BIN; that test is skipped when it is unset). */
#include "tests/unit/unit.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "common/proto.h"
#include "common/util.h"
#include "suites/suite.h"
#include "worker/backend.h"
#include "worker/outbox.h"
#include "worker/runner.h"

/* ---- helpers ---- */


/* A TASK body for the arithmetic suite. */
static json_t *make_task(const char *suite, const char *task, const char *params, int64_t bucket,
                         int64_t lo, int64_t hi, int64_t seed, const char *model)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"suite\": \"%s\", \"task\": \"%s\", \"params\": %s, \"bucket\": %lld,"
             " \"item_lo\": %lld, \"item_hi\": %lld, \"seed\": %lld, \"model\": %s}",
             suite, task, params, (long long)bucket, (long long)lo, (long long)hi,
             (long long)seed, model);
    return pb_test_json(text);
}

/* Run a task and put its items (the payload text) back into the result as
 * "items", parsed by jansson: that also checks the text is valid JSON. */
static int run_task_cancel(const json_t *task, volatile int *cancel, pb_runner_progress_fn fn,
                           void *ctx, json_t **result, pb_err_t *err)
{
    pb_buf_t items;
    pb_buf_init(&items, 0);
    memset(err, 0, sizeof *err);
    int rc = pb_runner_run(task, cancel, fn, ctx, result, &items, err);
    if (rc == 0) {
        json_error_t jerr;
        json_t *arr = json_loadb(items.data, items.len, 0, &jerr);
        if (arr == NULL)
            fail_msg("items text is not JSON: %s", jerr.text);
        json_object_set_new(*result, "items", arr);
    }
    pb_buf_free(&items);
    return rc;
}

static int run_task(const json_t *task, json_t **result, pb_err_t *err)
{
    return run_task_cancel(task, NULL, NULL, NULL, result, err);
}

static double agg(const json_t *result, const char *key)
{
    return json_number_value(json_object_get(json_object_get(result, "aggregate"), key));
}

#define ORACLE "{\"name\": \"oracle\", \"backend\": \"oracle\"}"
#define RANDOM "{\"name\": \"random\", \"backend\": \"random\"}"

/* ---- backends ---- */

static void test_backend_table(void **state)
{
    assert_true(pb_backend_count() >= 2);
    assert_non_null(pb_backend_find("oracle"));
    assert_non_null(pb_backend_find("random"));
    assert_null(pb_backend_find("gpt"));
    assert_null(pb_backend_find(NULL));
    assert_null(pb_backend_at(pb_backend_count()));
    for (size_t i = 0; i < pb_backend_count(); i++)
        assert_ptr_equal(pb_backend_find(pb_backend_at(i)->name), pb_backend_at(i));
}

/* random: same length and alphabet as the reference, spaces kept, and the
 * same answer for the same (seed, prompt). */
static void test_random_shape(void **state)
{
    const pb_backend_ops_t *ops = pb_backend_find("random");
    json_t *model = pb_test_json(RANDOM);
    pb_backend_t *a = NULL, *b = NULL, *c = NULL;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(ops->open(model, 5, &a, &err), 0);
    assert_int_equal(ops->open(model, 5, &b, &err), 0);
    assert_int_equal(ops->open(model, 6, &c, &err), 0);
    ps_item_t items[3] = {
        {.prompt = "1+1=", .reference = "12 345 67", .prompt_hash = 11},
        {.prompt = "spell", .reference = "Hello, World", .prompt_hash = 22},
        {.prompt = "x", .reference = "", .prompt_hash = 33},
    };
    pb_gen_req_t ra[3] = {{0}}, rb[3] = {{0}}, rc[3] = {{0}};
    for (int i = 0; i < 3; i++)
        ra[i].item = rb[i].item = rc[i].item = &items[i];
    assert_int_equal(ops->generate(a, ra, 3, &err), 0);
    assert_int_equal(ops->generate(b, rb, 3, &err), 0);
    assert_int_equal(ops->generate(c, rc, 3, &err), 0);
    int differs = 0;
    for (int i = 0; i < 3; i++) {
        const char *ref = items[i].reference;
        assert_non_null(ra[i].text);
        assert_null(ra[i].error);
        assert_int_equal(strlen(ra[i].text), strlen(ref));
        assert_int_equal(ra[i].tokens, (int64_t)strlen(ref));
        assert_string_equal(ra[i].text, rb[i].text);
        differs |= strcmp(ra[i].text, rc[i].text) != 0;
        for (size_t k = 0; k < strlen(ref); k++) {
            char ch = ra[i].text[k];
            if (isspace((unsigned char)ref[k]))
                assert_int_equal(ch, ref[k]);
            else if (i == 0)
                assert_true(isdigit((unsigned char)ch));
            else
                assert_true(islower((unsigned char)ch));
        }
    }
    assert_true(differs); /* another seed, other answers */
    for (int i = 0; i < 3; i++) {
        free(ra[i].text);
        free(rb[i].text);
        free(rc[i].text);
    }
    ops->close(a);
    ops->close(b);
    ops->close(c);
    json_decref(model);
}

/* ---- runner ---- */

static void test_runner_oracle(void **state)
{
    json_t *task = make_task("arithmetic", "add", "{\"digits\": [1, 6]}", 3, 10, 50, 7, ORACLE);
    json_t *res = NULL;
    pb_err_t err;
    assert_int_equal(run_task(task, &res, &err), 0);
    assert_non_null(res);
    assert_int_equal((int)agg(res, "n"), 40);
    assert_true(agg(res, "score_sum") == 40.0);
    const ps_suite_t *suite = ps_suite_find("arithmetic");
    assert_int_equal(json_integer_value(json_object_get(res, "version")), suite->version);
    json_t *items = json_object_get(res, "items");
    assert_int_equal(json_array_size(items), 40);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        assert_int_equal(json_integer_value(json_array_get(it, 0)), 10 + (int)i);
        const char *hash = json_string_value(json_array_get(it, 1));
        assert_non_null(hash);
        assert_int_equal(strlen(hash), 16);
        assert_int_equal(strspn(hash, "0123456789abcdef"), 16);
        assert_string_equal(json_string_value(json_array_get(it, 2)),
                            json_string_value(json_array_get(it, 3)));
        assert_true(json_number_value(json_array_get(it, 4)) == 1.0);
        assert_int_equal(json_integer_value(json_array_get(it, 6)),
                         strlen(json_string_value(json_array_get(it, 2))));
        assert_null(json_array_get(it, 8));
        /* meta travels as JSON text, stored by the coordinator as is */
        json_t *meta = json_loads(json_string_value(json_array_get(it, 7)), 0, NULL);
        assert_true(json_is_integer(json_object_get(meta, "da")));
        json_decref(meta);
    }
    json_t *t = json_object_get(res, "timings");
    assert_true(json_is_integer(json_object_get(t, "generate_us")));
    assert_true(json_integer_value(json_object_get(t, "total_us")) >=
                json_integer_value(json_object_get(t, "generate_us")));
    json_decref(res);
    json_decref(task);
}

static void test_runner_random_floor(void **state)
{
    json_t *task = make_task("arithmetic", "add", "{\"digits\": [5, 5]}", 5, 0, 200, 3, RANDOM);
    json_t *r1 = NULL, *r2 = NULL;
    pb_err_t err;
    assert_int_equal(run_task(task, &r1, &err), 0);
    assert_int_equal((int)agg(r1, "n"), 200);
    assert_true(agg(r1, "score_sum") / agg(r1, "n") < 0.05);

    /* Deterministic: the same predictions and prompts on a second run. */
    assert_int_equal(run_task(task, &r2, &err), 0);
    json_t *i1 = json_object_get(r1, "items"), *i2 = json_object_get(r2, "items");
    assert_int_equal(json_array_size(i1), json_array_size(i2));
    for (size_t i = 0; i < json_array_size(i1); i++) {
        json_t *a = json_array_get(i1, i), *b = json_array_get(i2, i);
        assert_true(json_equal(json_array_get(a, 1), json_array_get(b, 1)));
        assert_true(json_equal(json_array_get(a, 2), json_array_get(b, 2)));
        assert_true(json_equal(json_array_get(a, 3), json_array_get(b, 3)));
    }
    assert_true(agg(r1, "score_sum") == agg(r2, "score_sum"));
    json_decref(r1);
    json_decref(r2);
    json_decref(task);

    /* One-digit answers are sometimes right by chance: the floor is not zero. */
    task = make_task("arithmetic", "add", "{\"digits\": [1, 1]}", 1, 0, 400, 3, RANDOM);
    assert_int_equal(run_task(task, &r1, &err), 0);
    assert_true(agg(r1, "score_sum") > 0);
    assert_true(agg(r1, "score_sum") < agg(r1, "n"));
    json_decref(r1);
    json_decref(task);
}

typedef struct cancel_ctx {
    volatile int *flag;
    uint64_t last;
    int calls;
} cancel_ctx_t;

static void cancel_after_first(void *ctx, uint64_t done)
{
    cancel_ctx_t *c = ctx;
    c->last = done;
    c->calls++;
    *c->flag = 1;
}

static void test_runner_cancel(void **state)
{
    json_t *task = make_task("arithmetic", "add", "{\"digits\": [1, 4]}", 2, 0, 500, 1,
                             "{\"backend\": \"oracle\", \"batch_size\": 16}");
    volatile int flag = 0;
    cancel_ctx_t c = {&flag, 0, 0};
    json_t *res = NULL;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(run_task_cancel(task, &flag, cancel_after_first, &c, &res, &err),
                     PB_ECANCELLED);
    assert_null(res);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.last, 16);

    /* Cancelled before it starts: no item is generated. */
    c.calls = 0;
    assert_int_equal(run_task_cancel(task, &flag, cancel_after_first, &c, &res, &err),
                     PB_ECANCELLED);
    assert_int_equal(c.calls, 0);
    json_decref(task);
}

static void expect_run_error(json_t *task, int code, const char *field, const char *cls)
{
    json_t *res = NULL;
    pb_err_t err;
    int rc = run_task(task, &res, &err);
    if (rc != code)
        fail_msg("want %s, got %s (%s)", pb_strerror(code), pb_strerror(rc), err.msg);
    assert_null(res);
    assert_string_equal(err.field, field);
    assert_true(err.msg[0] != '\0');
    int retryable;
    assert_string_equal(pb_runner_error_class(rc, &retryable), cls);
    assert_int_equal(retryable, strcmp(cls, "bad_task") != 0);
    json_decref(task);
}

static void test_runner_errors(void **state)
{
    expect_run_error(make_task("nope", "add", "{}", 1, 0, 4, 1, ORACLE), PB_ENOTFOUND, "suite",
                     "bad_task");
    expect_run_error(make_task("arithmetic", "div", "{}", 1, 0, 4, 1, ORACLE), PB_ENOTFOUND,
                     "task", "bad_task");
    expect_run_error(make_task("arithmetic", "add", "{\"digits\": \"x\"}", 1, 0, 4, 1, ORACLE),
                     PB_EINVAL, "params.digits", "bad_task");
    expect_run_error(make_task("arithmetic", "add", "{\"digits\": [1, 3]}", 9, 0, 4, 1, ORACLE),
                     PB_EINVAL, "bucket", "bad_task");
    expect_run_error(make_task("arithmetic", "add", "{}", 1, 5, 4, 1, ORACLE), PB_EINVAL,
                     "item_hi", "bad_task");
    expect_run_error(make_task("arithmetic", "add", "{}", 1, 0, 4, 1, "{\"backend\": \"gpt\"}"),
                     PB_EUNSUPPORTED, "model.backend", "backend");
    expect_run_error(make_task("arithmetic", "add", "{}", 1, 0, 4, 1, "\"oracle\""), PB_EINVAL,
                     "model", "bad_task");
    expect_run_error(
        make_task("arithmetic", "add", "{}", 1, 0, 4, 1, "{\"backend\": \"oracle\", \"delay_ms\": -1}"),
        PB_EINVAL, "model.delay_ms", "bad_task");
    json_t *t = make_task("arithmetic", "add", "{}", 1, 0, 4, 1, ORACLE);
    json_object_set_new(t, "version", json_integer(ps_suite_find("arithmetic")->version + 1));
    expect_run_error(t, PB_ESTALE, "version", "internal");
    expect_run_error(pb_test_json("{\"task\": \"add\"}"), PB_EINVAL, "suite", "bad_task");

    /* An empty range is a valid, empty result. */
    json_t *res = NULL;
    pb_err_t err;
    t = make_task("arithmetic", "add", "{}", 1, 4, 4, 1, ORACLE);
    assert_int_equal(run_task(t, &res, &err), 0);
    assert_int_equal((int)agg(res, "n"), 0);
    json_decref(res);
    json_decref(t);
}

/* ---- outbox ---- */

static void test_outbox(void **state)
{
    pb_outbox_t o;
    pb_outbox_init(&o, 3);
    pb_outmsg_t *m = NULL;
    int dropped = 1;
    for (int i = 1; i <= 3; i++) {
        json_t *id = json_integer(i), *body = json_pack("{s:i}", "task_id", i);
        assert_int_equal(pb_outbox_put(&o, id, 1, PB_MSG_RESULT, body, "[[1]]", 5, &m, &dropped), 0);
        assert_int_equal(dropped, 0);
        char want[32];
        snprintf(want, sizeof want, "{\"task_id\":%d}", i);
        assert_string_equal(m->body, want);
        assert_int_equal(m->len, strlen(want));
        assert_string_equal(m->payload, "[[1]]"); /* a copy, kept with the body */
        assert_int_equal(m->payload_len, 5);
        json_decref(id);
        json_decref(body);
    }
    json_t *id2 = json_integer(2), *ids = json_string("2");
    assert_int_equal(pb_outbox_find(&o, id2, 1), 1);
    assert_int_equal(pb_outbox_find(&o, id2, 2), -1);  /* another attempt */
    assert_int_equal(pb_outbox_find(&o, ids, 1), -1);  /* "2" is not 2 */

    /* Full: the oldest goes. */
    json_t *id4 = json_integer(4), *b4 = json_pack("{s:s}", "x", "y");
    assert_int_equal(pb_outbox_put(&o, id4, 1, PB_MSG_FAIL, b4, NULL, 0, &m, &dropped), 0);
    assert_null(m->payload);
    assert_int_equal(dropped, 1);
    assert_int_equal(o.n, 3);
    json_t *id1 = json_integer(1);
    assert_int_equal(pb_outbox_find(&o, id1, 1), -1);
    assert_int_equal(pb_outbox_find(&o, id4, 1), 2);
    assert_int_equal(o.msgs[2].type, PB_MSG_FAIL);
    assert_string_equal(o.msgs[2].body, "{\"x\":\"y\"}");

    pb_outbox_remove(&o, 0);
    assert_int_equal(pb_outbox_find(&o, id2, 1), -1);
    assert_int_equal(pb_outbox_find(&o, id4, 1), 1);
    pb_outbox_free(&o);
    assert_int_equal(o.n, 0);
    json_decref(id1);
    json_decref(id2);
    json_decref(ids);
    json_decref(id4);
    json_decref(b4);
}

/* ---- session: a real worker process against an in-process ROUTER ---- */

typedef struct coord {
    void *ctx, *sock;
    unsigned char rid[PB_ROUTING_ID_MAX];
    size_t rid_len;
    int beat; /* send heartbeats to the worker while waiting */
    int64_t next_hb_ms;
    int hellos;
} coord_t;

static void coord_send(coord_t *c, int type, const char *body)
{
    assert_true(c->rid_len > 0);
    assert_int_equal(
        pb_proto_send_raw(c->sock, c->rid, c->rid_len, type, body, body ? strlen(body) : 0, NULL, 0), 0);
}

static int task_is(const json_t *body, int64_t id)
{
    return json_integer_value(json_object_get(body, "task_id")) == id;
}

/* Wait up to ms for a message of type want (about task id when id >= 0),
 * heartbeating the worker meanwhile. Other messages are dropped. Returns 0
 * with *out filled, -1 on timeout. */
static int coord_wait(coord_t *c, int want, int64_t id, int ms, pb_msg_t *out)
{
    int64_t end = pb_now_ms() + ms;
    while (pb_now_ms() < end) {
        if (c->beat && c->rid_len && pb_now_ms() >= c->next_hb_ms) {
            coord_send(c, PB_MSG_HEARTBEAT, "{}");
            c->next_hb_ms = pb_now_ms() + 100;
        }
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 20) <= 0)
            continue;
        pb_msg_t m;
        pb_err_t err;
        if (pb_proto_recv(c->sock, 1, &m, &err) != 0)
            continue;
        if (m.type == PB_MSG_HELLO) {
            memcpy(c->rid, m.rid, m.rid_len);
            c->rid_len = m.rid_len;
            c->hellos++;
        }
        if (m.type == want && (id < 0 || task_is(m.body, id))) {
            *out = m;
            return 0;
        }
        pb_msg_clear(&m);
    }
    return -1;
}

static void coord_expect(coord_t *c, int want, int64_t id, int ms, pb_msg_t *out)
{
    if (coord_wait(c, want, id, ms, out) != 0)
        fail_msg("no %s (task %lld) within %d ms", pb_msg_name(want), (long long)id, ms);
}

static void coord_expect_none(coord_t *c, int type, int64_t id, int ms)
{
    pb_msg_t m;
    if (coord_wait(c, type, id, ms, &m) == 0) {
        pb_msg_clear(&m);
        fail_msg("unexpected %s for task %lld", pb_msg_name(type), (long long)id);
    }
}

static int credit_of(const pb_msg_t *m)
{
    return (int)json_integer_value(json_object_get(m->body, "credit"));
}

/* The child and the ROUTER, for the teardown, which cleans up when an
 * assertion ended the test early. */
static pid_t session_pid;
static coord_t session_coord;

static int session_teardown(void **state)
{
    if (session_pid > 0) {
        kill(session_pid, SIGKILL);
        waitpid(session_pid, NULL, 0);
        session_pid = 0;
    }
    if (session_coord.sock)
        zmq_close(session_coord.sock);
    if (session_coord.ctx)
        zmq_ctx_term(session_coord.ctx);
    memset(&session_coord, 0, sizeof session_coord);
    return 0;
}

static pid_t spawn_worker(const char *bin, const char *endpoint)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Never outlive the test process, and never hold its stdout open. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *f = freopen("/dev/null", "w", stdout);
        if (getenv("PB_TEST_VERBOSE") == NULL)
            f = freopen("/dev/null", "w", stderr);
        (void)f;
        execl(bin, bin, "--connect", endpoint, "--slots", "2", "--name", "unit-worker",
              "--heartbeat-ms", "100", "--resend-ms", "300", "--log-level", "debug", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* SIGTERM must end the worker promptly with status 0. */
static void stop_worker(pid_t pid)
{
    kill(pid, SIGTERM);
    int status = 0;
    int64_t end = pb_now_ms() + 5000;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && pb_now_ms() < end)
        usleep(20000);
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    session_pid = 0;
    if (r == 0)
        fail_msg("worker did not exit within 5 s of SIGTERM");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#define TASK_FMT                                                                               \
    "{\"task_id\": %d, \"attempt\": 1, \"lease_ms\": 60000, \"job_id\": 1, \"run\": 0,"        \
    " \"suite\": \"%s\", \"task\": \"add\", \"params\": {\"digits\": [1, 3]}, \"bucket\": 2,"  \
    " \"item_lo\": 0, \"item_hi\": %d, \"seed\": 9, \"model\": %s, \"timeout_s\": 60}"

static void send_task(coord_t *c, int id, const char *suite, int items, const char *model)
{
    char body[1024];
    snprintf(body, sizeof body, TASK_FMT, id, suite, items, model);
    coord_send(c, PB_MSG_TASK, body);
}

static void check_hello(const pb_msg_t *m)
{
    assert_string_equal(json_string_value(json_object_get(m->body, "name")), "unit-worker");
    assert_string_equal(json_string_value(json_object_get(m->body, "protocol")), "PB1");
    json_t *caps = json_object_get(m->body, "capabilities");
    assert_string_equal(json_string_value(json_object_get(caps, "device")), "cpu");
    assert_int_equal(json_integer_value(json_object_get(caps, "slots")), 2);
    assert_true(json_integer_value(json_object_get(caps, "cores")) >= 1);
    json_t *be = json_object_get(caps, "backends");
    int oracle = 0, random = 0;
    for (size_t i = 0; i < json_array_size(be); i++) {
        oracle |= strcmp(json_string_value(json_array_get(be, i)), "oracle") == 0;
        random |= strcmp(json_string_value(json_array_get(be, i)), "random") == 0;
    }
    assert_true(oracle && random);
}


static void test_session_protocol(void **state)
{
    const char *bin = getenv("PB_WORKER_BIN");
    if (bin == NULL || *bin == '\0') {
        print_message("[  SKIP    ] session test: set PB_WORKER_BIN to the posbench-worker "
                      "binary to run it\n");
        skip();
    }
    coord_t *c = &session_coord;
    memset(c, 0, sizeof *c);
    c->beat = 1;
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(c->sock, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t elen = sizeof endpoint;
    assert_int_equal(zmq_getsockopt(c->sock, ZMQ_LAST_ENDPOINT, endpoint, &elen), 0);
    pid_t pid = spawn_worker(bin, endpoint);
    session_pid = pid;
    pb_msg_t m;

    /* HELLO, then READY with every slot free. */
    coord_expect(c, PB_MSG_HELLO, -1, 5000, &m);
    check_hello(&m);
    pb_msg_clear(&m);
    coord_expect(c, PB_MSG_READY, -1, 2000, &m);
    assert_int_equal(credit_of(&m), 2);
    pb_msg_clear(&m);

    /* TASK -> RESULT, then one credit back. */
    send_task(c, 11, "arithmetic", 20, ORACLE);
    coord_expect(c, PB_MSG_RESULT, 11, 5000, &m);
    assert_int_equal(json_integer_value(json_object_get(m.body, "attempt")), 1);
    json_t *a = json_object_get(m.body, "aggregate");
    assert_int_equal(json_integer_value(json_object_get(a, "n")), 20);
    assert_true(json_number_value(json_object_get(a, "score_sum")) == 20.0);
    assert_non_null(m.payload); /* items travel in the payload frame */
    json_t *items = json_loadb(m.payload, m.payload_len, 0, NULL);
    assert_int_equal(json_array_size(items), 20);
    json_decref(items);
    assert_true(json_is_integer(json_object_get(m.body, "version")));
    pb_msg_clear(&m);
    coord_expect(c, PB_MSG_READY, -1, 2000, &m);
    assert_int_equal(credit_of(&m), 1);
    pb_msg_clear(&m);

    /* Unacked results come back; after ACK they stop. */
    coord_expect(c, PB_MSG_RESULT, 11, 2000, &m);
    pb_msg_clear(&m);
    coord_send(c, PB_MSG_ACK, "{\"task_id\": 11, \"attempt\": 1}");
    coord_expect_none(c, PB_MSG_RESULT, 11, 1000);

    /* Heartbeats report running tasks; CANCEL stops one silently and frees its slot. */
    send_task(c, 12, "arithmetic", 400, "{\"backend\": \"oracle\", \"delay_ms\": 10, \"batch_size\": 8}");
    int seen = 0;
    int64_t end = pb_now_ms() + 3000;
    while (!seen && pb_now_ms() < end) {
        coord_expect(c, PB_MSG_HEARTBEAT, -1, 1000, &m);
        json_t *tasks = json_object_get(m.body, "tasks");
        for (size_t i = 0; i < json_array_size(tasks); i++)
            if (task_is(json_array_get(tasks, i), 12) &&
                json_integer_value(json_object_get(json_array_get(tasks, i), "done")) > 0)
                seen = 1;
        pb_msg_clear(&m);
    }
    assert_true(seen);
    coord_send(c, PB_MSG_CANCEL, "{\"task_id\": 12, \"attempt\": 1}");
    coord_expect(c, PB_MSG_READY, -1, 2000, &m);
    assert_int_equal(credit_of(&m), 1);
    pb_msg_clear(&m);
    coord_expect_none(c, PB_MSG_RESULT, 12, 600);
    coord_expect_none(c, PB_MSG_FAIL, 12, 100);

    /* A task that cannot run: FAIL bad_task, not retryable. */
    send_task(c, 13, "nope", 4, ORACLE);
    coord_expect(c, PB_MSG_FAIL, 13, 3000, &m);
    assert_string_equal(json_string_value(json_object_get(m.body, "error_class")), "bad_task");
    assert_true(json_is_false(json_object_get(m.body, "retryable")));
    assert_non_null(json_string_value(json_object_get(m.body, "message")));
    pb_msg_clear(&m);
    coord_send(c, PB_MSG_ACK, "{\"task_id\": 13, \"attempt\": 1}");

    /* RESET: HELLO again, and READY with the free slots. */
    coord_send(c, PB_MSG_RESET, "{}");
    coord_expect(c, PB_MSG_HELLO, -1, 2000, &m);
    pb_msg_clear(&m);
    coord_expect(c, PB_MSG_READY, -1, 2000, &m);
    assert_int_equal(credit_of(&m), 2);
    pb_msg_clear(&m);

    /* Coordinator silent: the worker reconnects on a new socket (new routing
     * id), says HELLO and resends the result it still holds. */
    send_task(c, 14, "arithmetic", 5, ORACLE);
    coord_expect(c, PB_MSG_RESULT, 14, 3000, &m);
    pb_msg_clear(&m);
    unsigned char old_rid[PB_ROUTING_ID_MAX];
    size_t old_len = c->rid_len;
    memcpy(old_rid, c->rid, old_len);
    c->beat = 0;
    int hellos = c->hellos;
    coord_expect(c, PB_MSG_HELLO, -1, 4000, &m);
    pb_msg_clear(&m);
    assert_int_equal(c->hellos, hellos + 1);
    assert_false(c->rid_len == old_len && memcmp(c->rid, old_rid, old_len) == 0);
    c->beat = 1;
    coord_expect(c, PB_MSG_RESULT, 14, 2000, &m);
    pb_msg_clear(&m);
    coord_send(c, PB_MSG_ACK, "{\"task_id\": 14, \"attempt\": 1}");
    coord_expect_none(c, PB_MSG_RESULT, 14, 800);

    /* The worker enforces timeout_s: a FAIL the coordinator may retry. */
    coord_send(c, PB_MSG_TASK,
               "{\"task_id\": 15, \"attempt\": 2, \"suite\": \"arithmetic\", \"task\": \"add\","
               " \"params\": {}, \"bucket\": 1, \"item_lo\": 0, \"item_hi\": 400, \"seed\": 1,"
               " \"model\": {\"backend\": \"oracle\", \"delay_ms\": 10, \"batch_size\": 4},"
               " \"timeout_s\": 1}");
    coord_expect(c, PB_MSG_FAIL, 15, 3000, &m);
    assert_int_equal(json_integer_value(json_object_get(m.body, "attempt")), 2);
    assert_string_equal(json_string_value(json_object_get(m.body, "error_class")), "backend");
    assert_true(json_is_true(json_object_get(m.body, "retryable")));
    pb_msg_clear(&m);
    coord_send(c, PB_MSG_ACK, "{\"task_id\": 15, \"attempt\": 2}");

    /* More tasks than slots (the coordinator thought a slot was free): the
     * extra one waits for a slot instead of failing an attempt. */
    const char *slow = "{\"backend\": \"oracle\", \"delay_ms\": 20, \"batch_size\": 4}";
    for (int id = 21; id <= 23; id++)
        send_task(c, id, "arithmetic", 8, slow);
    for (int id = 21; id <= 23; id++) {
        coord_expect(c, PB_MSG_RESULT, id, 3000, &m);
        pb_msg_clear(&m);
        char ack[64];
        snprintf(ack, sizeof ack, "{\"task_id\": %d, \"attempt\": 1}", id);
        coord_send(c, PB_MSG_ACK, ack);
    }
    coord_expect_none(c, PB_MSG_FAIL, -1, 300);

    /* SIGTERM with a task running: the worker exits at once, sending nothing. */
    send_task(c, 16, "arithmetic", 400, "{\"backend\": \"oracle\", \"delay_ms\": 10}");
    coord_expect_none(c, PB_MSG_RESULT, 16, 200);
    stop_worker(pid);
    coord_expect_none(c, PB_MSG_RESULT, 16, 200);
}

int pb_test_worker(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_table),       cmocka_unit_test(test_random_shape),
        cmocka_unit_test(test_runner_oracle),       cmocka_unit_test(test_runner_random_floor),
        cmocka_unit_test(test_runner_cancel),       cmocka_unit_test(test_runner_errors),
        cmocka_unit_test(test_outbox),
        cmocka_unit_test_teardown(test_session_protocol, session_teardown),
    };
    return cmocka_run_group_tests_name("worker", tests, NULL, NULL);
}
