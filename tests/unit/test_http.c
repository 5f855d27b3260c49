/* Unit tests for the HTTP server (coordinator/http.c, http_util.c): a real
 * server on 127.0.0.1:0 whose libuv loop runs in a thread, driven by plain
 * POSIX sockets, plus direct tests of the request/response helpers. */
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/pb.h"
#include "coordinator/http.h"

#define BIG_BODY (1u << 20)
#define MID_BODY (4096u << 10)
#define TEST_MAX_BODY (64u << 10)

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t stop;
    pb_http_server_t *srv;
    pthread_t thread;
    int port;
    int leftover_fd; /* a client still connected when the server stops */
    char root[512];
    char outside[512];
} fixture_t;

/* ---- the handler under test (runs on the loop thread) ---- */

static void fill_body(pb_http_resp_t *resp, size_t n, const char *prefix)
{
    char *b = malloc(n);
    if (b == NULL) { /* no cmocka asserts off the test thread */
        pb_http_resp_error(resp, 503, "out of memory", NULL);
        return;
    }
    memset(b, 'x', n);
    memcpy(b, prefix, strlen(prefix));
    pb_http_resp_set(resp, 200, "text/plain", b, n);
    free(b);
}

static void test_handler(void *ctx, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    fixture_t *fx = ctx;
    const char *p = req->path;
    if (strcmp(p, "/hello") == 0) {
        pb_http_resp_set(resp, 200, "text/plain", "hello", 5);
    } else if (strcmp(p, "/echo") == 0) {
        pb_http_resp_set(resp, 200, "text/plain", req->body, req->body_len);
        pb_http_resp_header(resp, "X-Method", req->method);
    } else if (strncmp(p, "/path/", 6) == 0) {
        pb_http_resp_set(resp, 200, "text/plain", p, strlen(p));
    } else if (strcmp(p, "/query") == 0) {
        char v[64], out[160];
        int rc = pb_http_query_param(req, "name", v, sizeof v);
        int n = snprintf(out, sizeof out, "%d:%s", rc, v);
        pb_http_resp_set(resp, 200, "text/plain", out, (size_t)n);
    } else if (strcmp(p, "/nocontent") == 0) {
        pb_http_resp_set(resp, 204, NULL, "dropped", 7);
    } else if (strcmp(p, "/hdr") == 0) {
        const char *v = pb_http_req_header(req, "x-test");
        v = v ? v : "(none)";
        pb_http_resp_set(resp, 200, "text/plain", v, strlen(v));
    } else if (strcmp(p, "/mid") == 0) {
        /* Over what loopback socket buffers take (about 3.5 MB here), by less
         * than the server's back-pressure mark: unsent output stays queued. */
        fill_body(resp, MID_BODY, "");
    } else if (strcmp(p, "/big") == 0) {
        fill_body(resp, BIG_BODY, req->query); /* names the request: ordering */
    } else if (strncmp(p, "/static/", 8) == 0) {
        pb_http_serve_file(resp, fx->root, p + 7);
    } else {
        pb_http_resp_error(resp, 404, "no route", NULL);
    }
}

/* ---- server fixture: loop in a thread, stopped through an async ---- */

static void *loop_thread(void *arg)
{
    fixture_t *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_stop(uv_async_t *a)
{
    fixture_t *fx = a->data;
    pb_http_stop(fx->srv);
    uv_close((uv_handle_t *)a, NULL);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void make_web_root(fixture_t *fx)
{
    char base[400], path[1024], target[1024];
    pb_test_tmpdir(base, sizeof base);
    snprintf(fx->root, sizeof fx->root, "%s/web", base);
    snprintf(fx->outside, sizeof fx->outside, "%s/outside", base);
    assert_int_equal(mkdir(fx->root, 0755), 0);
    assert_int_equal(mkdir(fx->outside, 0755), 0);
    snprintf(path, sizeof path, "%s/sub", fx->root);
    assert_int_equal(mkdir(path, 0755), 0);
    write_file(fx->root, "index.html", "<h1>posbench</h1>");
    write_file(fx->root, "app.js", "let x = 1;");
    write_file(fx->root, "sub/data.json", "{\"a\": 1}");
    write_file(fx->outside, "secret.txt", "SECRET");
    snprintf(target, sizeof target, "%s/secret.txt", fx->outside);
    snprintf(path, sizeof path, "%s/escape.txt", fx->root);
    assert_int_equal(symlink(target, path), 0);
    snprintf(target, sizeof target, "%s/app.js", fx->root);
    snprintf(path, sizeof path, "%s/inlink.js", fx->root);
    assert_int_equal(symlink(target, path), 0);
}

static int fixture_start(void **state, const pb_http_limits_t *limits)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->leftover_fd = -1;
    make_web_root(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(uv_async_init(&fx->loop, &fx->stop, on_stop), 0);
    fx->stop.data = fx;
    assert_int_equal(pb_http_start(&fx->loop, "127.0.0.1", 0, limits, test_handler, fx, &fx->srv),
                     0);
    fx->port = pb_http_port(fx->srv);
    assert_true(fx->port > 0);
    assert_int_equal(pthread_create(&fx->thread, NULL, loop_thread, fx), 0);
    *state = fx;
    return 0;
}

static int setup_default(void **state)
{
    pb_http_limits_t lim = {.max_body_bytes = TEST_MAX_BODY};
    return fixture_start(state, &lim);
}

static int setup_tight(void **state)
{
    pb_http_limits_t lim = {.idle_timeout_ms = 300, .max_connections = 2};
    return fixture_start(state, &lim);
}

static void rm_tree(const char *base)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", base);
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    uv_async_send(&fx->stop);
    pthread_join(fx->thread, NULL);
    /* Every handle the server opened must be closed once the loop ends. */
    int rc = uv_loop_close(&fx->loop);
    if (fx->leftover_fd >= 0)
        close(fx->leftover_fd);
    char *slash = strrchr(fx->root, '/');
    *slash = '\0';
    rm_tree(fx->root);
    free(fx);
    assert_int_equal(rc, 0);
    return 0;
}

/* ---- a tiny blocking client ---- */

typedef struct cli {
    int fd;
    char *buf;
    size_t len, cap;
} cli_t;

typedef struct cli_resp {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
} cli_resp_t;

/* Connect with a 5 s receive timeout; rcvbuf > 0 shrinks the receive window. */
static void cli_open_rcvbuf(cli_t *c, int port, int rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 5};
    memset(c, 0, sizeof *c);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (rcvbuf > 0)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
}

static void cli_open(cli_t *c, int port) { cli_open_rcvbuf(c, port, 0); }

static void cli_close(cli_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

static void cli_send(cli_t *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void cli_sends(cli_t *c, const char *s) { cli_send(c, s, strlen(s)); }

/* Read more bytes; 0 on EOF, reset or timeout. */
static int cli_fill(cli_t *c)
{
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
    if (r <= 0)
        return 0;
    c->len += (size_t)r;
    c->buf[c->len] = '\0';
    return 1;
}

static const char *resp_header(const cli_resp_t *r, const char *name, char *out, size_t n)
{
    const char *p = r->head;
    size_t nl = strlen(name);
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r");
            snprintf(out, n, "%.*s", (int)vl, v);
            return out;
        }
    }
    return NULL;
}

/* One response; 0 when it arrived whole, -1 otherwise. head_only: a HEAD
 * answer, whose Content-Length describes a body that is not sent. */
static int cli_read(cli_t *c, cli_resp_t *r, int head_only)
{
    char cl[32];
    char *end;
    memset(r, 0, sizeof *r);
    while (c->buf == NULL || (end = strstr(c->buf, "\r\n\r\n")) == NULL)
        if (!cli_fill(c))
            return -1;
    size_t hlen = (size_t)(end - c->buf) + 4;
    if (hlen >= sizeof r->head || sscanf(c->buf, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = '\0';
    size_t blen = 0;
    if (!head_only && resp_header(r, "Content-Length", cl, sizeof cl))
        blen = strtoul(cl, NULL, 10);
    while (c->len < hlen + blen)
        if (!cli_fill(c))
            return -1;
    r->body = malloc(blen + 1);
    assert_non_null(r->body);
    memcpy(r->body, c->buf + hlen, blen);
    r->body[blen] = '\0';
    r->body_len = blen;
    memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
    c->len -= hlen + blen;
    c->buf[c->len] = '\0';
    return 0;
}

/* 1 when the server closed the connection (EOF or reset) within 5 s. */
static int cli_closed(cli_t *c)
{
    char tmp[4096];
    for (;;) {
        ssize_t r = recv(c->fd, tmp, sizeof tmp, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 1;
        if (r < 0)
            return 0; /* timeout */
    }
}

static void request_ok(cli_t *c, const char *req, int status, const char *body)
{
    cli_resp_t r;
    cli_sends(c, req);
    assert_int_equal(cli_read(c, &r, 0), 0);
    assert_int_equal(r.status, status);
    if (body)
        assert_string_equal(r.body, body);
    free(r.body);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---- tests over sockets ---- */

static void test_keepalive(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_resp_t r;
    char v[128];
    cli_open(&c, fx->port);
    for (int i = 0; i < 2; i++) {
        cli_sends(&c, GET("/hello"));
        assert_int_equal(cli_read(&c, &r, 0), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello");
        assert_non_null(resp_header(&r, "Connection", v, sizeof v));
        assert_string_equal(v, "keep-alive");
        assert_non_null(resp_header(&r, "Content-Type", v, sizeof v));
        assert_string_equal(v, "text/plain");
        assert_non_null(resp_header(&r, "Date", v, sizeof v));
        assert_non_null(strstr(v, " GMT"));
        free(r.body);
    }
    /* Left open: stopping the server must close it without leaks. */
    fx->leftover_fd = c.fd;
    c.fd = -1;
    cli_close(&c);
}

static void test_pipelining(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_resp_t r;
    cli_open(&c, fx->port);
    cli_sends(&c,
              GET("/path/one") "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" GET(
                  "/path/three"));
    const char *want[] = {"/path/one", "abc", "/path/three"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cli_read(&c, &r, 0), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, want[i]);
        free(r.body);
    }
    cli_close(&c);
}

static void test_post_echo(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_resp_t r;
    char head[128], v[64];
    size_t n = 40000;
    char *body = malloc(n);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    cli_open(&c, fx->port);
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
    cli_sends(&c, head);
    cli_send(&c, body, n);
    assert_int_equal(cli_read(&c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, body, n);
    assert_non_null(resp_header(&r, "X-Method", v, sizeof v));
    assert_string_equal(v, "POST");
    free(r.body);
    /* Chunked bodies arrive de-chunked. */
    request_ok(&c,
               "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
               200, "hello world");
    /* Clients that wait for "100 Continue" get it before sending the body. */
    cli_sends(
        &c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_int_equal(cli_read(&c, &r, 0), 0);
    assert_int_equal(r.status, 100);
    free(r.body);
    request_ok(&c, "ping", 200, "ping");
    free(body);
    cli_close(&c);
}

static void test_byte_by_byte(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_resp_t r;
    const char *req = "GET /hdr HTTP/1.1\r\nHost: t\r\nX-Empty:\r\nX-Test:  split value  \r\n\r\n";
    cli_open(&c, fx->port);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (size_t i = 0; req[i]; i++) {
        cli_send(&c, req + i, 1);
        if (i % 8 == 0)
            usleep(1000); /* let the server see fragments */
    }
    assert_int_equal(cli_read(&c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "split value");
    free(r.body);
    request_ok(&c, GET("/hdr"), 200, "(none)");
    cli_close(&c);
}

static void expect_error_then_close(int port, const char *req, size_t len, int status,
                                    const char *body_has)
{
    cli_t c;
    cli_resp_t r;
    char v[64];
    cli_open(&c, port);
    cli_send(&c, req, len);
    assert_int_equal(cli_read(&c, &r, 0), 0);
    assert_int_equal(r.status, status);
    assert_non_null(resp_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    assert_non_null(resp_header(&r, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    if (strstr(r.body, body_has) == NULL)
        fail_msg("body %s lacks %s", r.body, body_has);
    assert_non_null(strstr(r.body, "\"field\": null"));
    free(r.body);
    assert_true(cli_closed(&c));
    cli_close(&c);
}

static void test_body_too_large(void **state)
{
    fixture_t *fx = *state;
    const char *req = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n";
    /* Answered from the head alone: the body is never sent. */
    expect_error_then_close(fx->port, req, strlen(req), 413,
                            "{\"error\": \"request body too large\", \"field\": null}");

    /* A chunked body has no declared size: the cap applies as it arrives. */
    char *big = malloc(24 * 4200 + 256);
    assert_non_null(big);
    size_t total = (size_t)sprintf(big, "POST /echo HTTP/1.1\r\nHost: t\r\n"
                                        "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 24; i++) { /* 24 x 4 KiB > 64 KiB cap */
        total += (size_t)sprintf(big + total, "1000\r\n");
        memset(big + total, 'z', 4096);
        total += 4096 + (size_t)sprintf(big + total + 4096, "\r\n");
    }
    total += (size_t)sprintf(big + total, "0\r\n\r\n");
    expect_error_then_close(fx->port, big, total, 413, "request body too large");
    free(big);
}

static void test_headers_too_large(void **state)
{
    fixture_t *fx = *state;
    size_t n = 20000;
    char *req = malloc(n + 128);
    assert_non_null(req);
    int h = sprintf(req, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + h, 'a', n);
    strcpy(req + h + n, "\r\n\r\n");
    expect_error_then_close(fx->port, req, strlen(req), 431, "request headers too large");
    free(req);
}

static void test_framing_errors(void **state)
{
    fixture_t *fx = *state;
    const char *te_cl = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    expect_error_then_close(fx->port, te_cl, strlen(te_cl), 400,
                            "both Transfer-Encoding and Content-Length");
    const char *dup = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                      "Content-Length: 3\r\n\r\nabc";
    expect_error_then_close(fx->port, dup, strlen(dup), 400, "duplicate Content-Length");
    const char garbage[] = "\x01\x02\x03 not http\r\n\r\n";
    expect_error_then_close(fx->port, garbage, sizeof garbage - 1, 400, "malformed request: ");
}

static void test_path_decoding(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_open(&c, fx->port);
    request_ok(&c, GET("/path/a%20b%2Fc+d"), 200, "/path/a b/c+d");
    /* A bad path is the request's fault, not the framing's: the connection lives on. */
    request_ok(&c, GET("/path/%00"), 400, NULL);
    request_ok(&c, GET("/path/%zz"), 400, NULL);
    request_ok(&c, GET("/path/%4"), 400, NULL);
    request_ok(&c, GET("/query?x=1&name=J%C3%B6rg+Smith"), 200, "1:J\xc3\xb6rg Smith");
    request_ok(&c, GET("/query?x=1"), 200, "0:");
    request_ok(&c, GET("/nothing"), 404, "{\"error\": \"no route\", \"field\": null}");
    cli_close(&c);
}

static void test_head(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_resp_t r;
    char v[32];
    cli_open(&c, fx->port);
    cli_sends(&c, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(&c, &r, 1), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(resp_header(&r, "Content-Length", v, sizeof v));
    assert_string_equal(v, "5");
    free(r.body);
    /* Had the body been sent, this response would not parse. */
    request_ok(&c, GET("/hello"), 200, "hello");
    /* 204 carries neither body nor Content-Length. */
    cli_sends(&c, GET("/nocontent"));
    assert_int_equal(cli_read(&c, &r, 0), 0);
    assert_int_equal(r.status, 204);
    assert_null(resp_header(&r, "Content-Length", v, sizeof v));
    free(r.body);
    request_ok(&c, GET("/hello"), 200, "hello");
    cli_close(&c);
}

static void test_half_close(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_resp_t r;
    /* A client that shuts its sending side still gets its answer, though
     * most of it is still unwritten when the server sees the EOF. */
    cli_open_rcvbuf(&c, fx->port, 16384); /* keep most of it in the server */
    cli_sends(&c, GET("/mid"));
    assert_int_equal(shutdown(c.fd, SHUT_WR), 0);
    usleep(200 * 1000);
    assert_int_equal(cli_read(&c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, MID_BODY);
    assert_int_equal(r.body[MID_BODY - 1], 'x');
    free(r.body);
    assert_true(cli_closed(&c));
    cli_close(&c);
}

static void test_connection_close(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_resp_t r;
    char v[32];
    const char *cases[] = {"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                           "GET /hello HTTP/1.0\r\n\r\n"};
    for (int i = 0; i < 2; i++) {
        cli_open(&c, fx->port);
        cli_sends(&c, cases[i]);
        assert_int_equal(cli_read(&c, &r, 0), 0);
        assert_string_equal(r.body, "hello");
        assert_non_null(resp_header(&r, "Connection", v, sizeof v));
        assert_string_equal(v, "close");
        free(r.body);
        assert_true(cli_closed(&c));
        cli_close(&c);
    }
    /* HTTP/1.0 with keep-alive asked for keeps the connection. */
    cli_open(&c, fx->port);
    for (int i = 0; i < 2; i++) {
        cli_sends(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_int_equal(cli_read(&c, &r, 0), 0);
        assert_non_null(resp_header(&r, "Connection", v, sizeof v));
        assert_string_equal(v, "keep-alive");
        free(r.body);
    }
    cli_close(&c);
}

static void test_static_files(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_resp_t r;
    char v[64];
    cli_open(&c, fx->port);
    cli_sends(&c, GET("/static/"));
    assert_int_equal(cli_read(&c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "<h1>posbench</h1>");
    assert_non_null(resp_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/html; charset=utf-8");
    assert_non_null(resp_header(&r, "Cache-Control", v, sizeof v));
    assert_string_equal(v, "no-cache");
    free(r.body);
    request_ok(&c, GET("/static/app.js"), 200, "let x = 1;");
    request_ok(&c, GET("/static/inlink.js"), 200, "let x = 1;");
    request_ok(&c, GET("/static/missing.js"), 404, NULL);
    request_ok(&c, GET("/static/../outside/secret.txt"), 403, NULL);
    request_ok(&c, GET("/static/%2e%2e/outside/secret.txt"), 403, NULL);
    request_ok(&c, GET("/static/escape.txt"), 403, NULL);
    cli_close(&c);
}

static void test_client_vanishes(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    /* Gone before the 1 MiB answer is out, and gone with answers queued. */
    cli_open(&c, fx->port);
    cli_sends(&c, GET("/big?seq=0"));
    cli_close(&c);
    cli_open(&c, fx->port);
    for (int i = 0; i < 8; i++)
        cli_sends(&c, GET("/big?seq=1"));
    char tmp[1000];
    assert_true(recv(c.fd, tmp, sizeof tmp, 0) > 0);
    cli_close(&c);
    cli_open(&c, fx->port);
    request_ok(&c, GET("/hello"), 200, "hello");
    cli_close(&c);
}

static void test_slow_reader(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    cli_resp_t r;
    char req[128], want[32];
    enum { N = 16 };
    cli_open(&c, fx->port);
    /* 16 MiB of answers to a client that does not read yet: the server has
     * to stop parsing, then resume in order once the client drains. */
    for (int i = 0; i < N; i++) {
        snprintf(req, sizeof req, GET("/big?seq=%02d"), i);
        cli_sends(&c, req);
    }
    usleep(300 * 1000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(cli_read(&c, &r, 0), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, BIG_BODY);
        snprintf(want, sizeof want, "seq=%02dxx", i);
        assert_memory_equal(r.body, want, strlen(want));
        free(r.body);
    }
    cli_close(&c);
}

static void test_idle_timeout(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    struct timespec t0, t1;
    cli_open(&c, fx->port);
    request_ok(&c, GET("/hello"), 200, "hello");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(cli_closed(&c));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms > 200 && ms < 3000);
    cli_close(&c);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void test_slow_head(void **state)
{
    fixture_t *fx = *state;
    cli_t c;
    char tmp[256];
    cli_open(&c, fx->port);
    double t0 = now_ms(), closed_at = -1;
    cli_sends(&c, "GET /hello HTTP/1.1\r\n");
    /* One header line every 50 ms for up to 2 s: activity, but no request. */
    while (now_ms() - t0 < 2000 && closed_at < 0) {
        struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) == 1 && recv(c.fd, tmp, sizeof tmp, 0) <= 0)
            closed_at = now_ms() - t0;
        else if (send(c.fd, "X-A: b\r\n", 8, MSG_NOSIGNAL) < 0)
            closed_at = now_ms() - t0;
    }
    if (closed_at < 0 || closed_at > 1500)
        fail_msg("trickled head kept the connection for %.0f ms", closed_at);
    cli_close(&c);
}

static void test_max_connections(void **state)
{
    fixture_t *fx = *state;
    cli_t a, b, extra;
    cli_open(&a, fx->port);
    cli_open(&b, fx->port);
    request_ok(&a, GET("/hello"), 200, "hello");
    request_ok(&b, GET("/hello"), 200, "hello");
    cli_open(&extra, fx->port); /* the kernel accepts; the server closes it */
    assert_true(cli_closed(&extra));
    cli_close(&extra);
    cli_close(&a);
    /* Room again once a connection has gone (closing is asynchronous). */
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) {
        cli_resp_t r;
        cli_open(&extra, fx->port);
        cli_sends(&extra, GET("/hello"));
        ok = cli_read(&extra, &r, 0) == 0 && r.status == 200;
        free(r.body);
        cli_close(&extra);
        if (!ok)
            usleep(20 * 1000);
    }
    assert_true(ok);
    cli_close(&b);
}

static void test_start_errors(void **state)
{
    fixture_t *fx = *state;
    uv_loop_t loop;
    pb_http_server_t *srv = (pb_http_server_t *)&loop; /* must come back NULL */
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(pb_http_start(&loop, "127.0.0.1", fx->port, NULL, test_handler, fx, &srv),
                     PB_ENET);
    assert_null(srv);
    srv = (pb_http_server_t *)&loop;
    assert_int_equal(pb_http_start(&loop, "not an address", 0, NULL, test_handler, fx, &srv),
                     PB_EINVAL);
    assert_null(srv);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- direct tests of the helpers ---- */

static void test_query_param(void **state)
{
    (void)state;
    char out[16];
    pb_http_req_t req = {.query = "a=1&name=J%C3%B6rg+S&empty=&flag&bad=%zz&nul=%00&na%6De2=x"
                                  "&long=0123456789abcdef&a=2"};
    assert_int_equal(pb_http_query_param(&req, "a", out, sizeof out), 1);
    assert_string_equal(out, "1"); /* the first occurrence wins */
    assert_int_equal(pb_http_query_param(&req, "name", out, sizeof out), 1);
    assert_string_equal(out, "J\xc3\xb6rg S");
    assert_int_equal(pb_http_query_param(&req, "empty", out, sizeof out), 1);
    assert_string_equal(out, "");
    strcpy(out, "junk");
    assert_int_equal(pb_http_query_param(&req, "flag", out, sizeof out), 1);
    assert_string_equal(out, "");
    assert_int_equal(pb_http_query_param(&req, "name2", out, sizeof out), 1);
    assert_string_equal(out, "x");
    assert_int_equal(pb_http_query_param(&req, "bad", out, sizeof out), PB_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(pb_http_query_param(&req, "nul", out, sizeof out), PB_EINVAL);
    assert_int_equal(pb_http_query_param(&req, "long", out, sizeof out), PB_ETOOBIG);
    assert_string_equal(out, "");
    strcpy(out, "junk");
    assert_int_equal(pb_http_query_param(&req, "nam", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(pb_http_query_param(&req, "flag", NULL, 0), 1);
    pb_http_req_t none = {.query = ""};
    assert_int_equal(pb_http_query_param(&none, "a", out, sizeof out), 0);
}

static void test_resp_helpers(void **state)
{
    (void)state;
    pb_http_resp_t resp;
    memset(&resp, 0, sizeof resp);
    pb_http_resp_error(&resp, 400, "bad \"x\"", "runs[0].seed");
    assert_int_equal(resp.status, 400);
    assert_string_equal(resp.content_type, "application/json");
    assert_string_equal(resp.body, "{\"error\": \"bad \\\"x\\\"\", \"field\": \"runs[0].seed\"}");
    assert_int_equal(resp.body_len, strlen(resp.body));
    pb_http_resp_error(&resp, 404, "gone", "");
    assert_string_equal(resp.body, "{\"error\": \"gone\", \"field\": null}");
    assert_int_equal(pb_http_resp_set(&resp, 201, NULL, "ok", 2), 0);
    assert_int_equal(resp.status, 201);
    assert_string_equal(resp.body, "ok");
    pb_http_resp_header(&resp, "Location", "/api/v1/jobs/7");
    pb_http_resp_header(&resp, "X-Evil", "a\r\nSet-Cookie: x=1");
    assert_string_equal(resp.extra_headers, "Location: /api/v1/jobs/7\r\n");
    free(resp.body);
}

static void test_serve_file_direct(void **state)
{
    fixture_t *fx = *state;
    pb_http_resp_t resp;
    struct {
        const char *path;
        int status;
        const char *ctype;
    } cases[] = {
        {"/", 200, "text/html; charset=utf-8"},
        {"/sub/data.json", 200, "application/json"},
        {"/app.js", 200, "text/javascript; charset=utf-8"},
        {"/../outside/secret.txt", 403, NULL},
        {"/sub/../app.js", 403, NULL},
        {"/escape.txt", 403, NULL},
        {"/nope.css", 404, NULL},
        {"/sub/", 404, NULL},
        {"/sub", 404, NULL},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(cases); i++) {
        memset(&resp, 0, sizeof resp);
        int st = pb_http_serve_file(&resp, fx->root, cases[i].path);
        if (st != cases[i].status || resp.status != cases[i].status)
            fail_msg("%s: got %d/%d, want %d", cases[i].path, st, resp.status, cases[i].status);
        if (cases[i].ctype)
            assert_string_equal(resp.content_type, cases[i].ctype);
        else
            assert_null(strstr(resp.body, "SECRET"));
        free(resp.body);
    }
    /* The root itself may be reached through a symlink. */
    char link[600];
    snprintf(link, sizeof link, "%s/rootlink", fx->outside);
    assert_int_equal(symlink(fx->root, link), 0);
    memset(&resp, 0, sizeof resp);
    assert_int_equal(pb_http_serve_file(&resp, link, "/app.js"), 200);
    assert_string_equal(resp.body, "let x = 1;");
    free(resp.body);
}

int pb_test_http(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_param),
        cmocka_unit_test(test_resp_helpers),
        cmocka_unit_test_setup_teardown(test_serve_file_direct, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_post_echo, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_byte_by_byte, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_headers_too_large, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_framing_errors, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_path_decoding, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_static_files, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_client_vanishes, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_slow_reader, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_half_close, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup_tight, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup_tight, teardown),
        cmocka_unit_test_setup_teardown(test_slow_head, setup_tight, teardown),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
