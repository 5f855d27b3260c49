/* HTTP/1.1 server on a libuv loop (contract in http.h). One http_conn per TCP
 * connection; http-parser frames requests and is paused after each one so
 * the handler runs and pipelined answers leave in order; a deferred answer
 * (pb_http_defer) holds the connection's input until it is sent. Caps
 * on head (431) and body (413), back-pressure on slow readers, lingering
 * close after errors. Response helpers and static files: http_util.c. */
#include "coordinator/http.h"

#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/pb.h"
#include "common/util.h"
#include "coordinator/http_int.h"

#define HTTP_WQ_HIGH (1u << 20)    /* unsent output that stops reading (slow reader) */
#define HTTP_WQ_LOW (256u << 10)   /* ... and lets it resume */
#define HTTP_LINGER_MS 2000        /* read-and-discard after an error before closing */
#define HTTP_BODY_KEEP (64u << 10) /* body buffer kept between keep-alive requests */

typedef struct http_conn http_conn_t;

/* Owned by the handler's work until pb_http_complete; conn is NULL once the
 * connection closed, so a late completion only frees. */
struct pb_http_deferred {
    http_conn_t *conn;
    int head_only, keep_alive;
    int streaming; /* pb_http_stream_begin sent the head */
};

struct pb_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    pb_http_limits_t limits;
    pb_http_handler_fn fn;
    void *ctx;
    http_conn_t *conns; /* open connections, doubly linked */
    int nconns;
    int handles; /* libuv handles not yet closed: listener + 2 per connection */
    int stopping;
    int port;
};

enum { HDR_NONE, HDR_FIELD, HDR_VALUE };

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    http_parser parser;
    pb_http_server_t *srv;
    http_conn_t *prev, *next;
    int open_handles;
    /* The request being parsed. Headers are stored flat: "name\0value\0"... */
    pb_buf_t url, hdrs, body;
    size_t nhdrs, head_bytes, val_start;
    int hdr_state;
    int err_status; /* set by a parser callback that stops the parser */
    const char *err_msg;
    int keep_alive;
    /* Input left unparsed while the client is not reading our output. */
    char *stash;
    size_t stash_len;
    size_t pending_writes;
    pb_http_deferred_t *deferred; /* the request whose answer is pending */
    int req_head_only, req_keep_alive; /* of the request being dispatched */
    unsigned closing : 1, draining : 1, lingering : 1, reading : 1, paused : 1, eof : 1;
    unsigned in_head : 1; /* between the first byte of a request and its blank line */
};

typedef struct http_write {
    uv_write_t req;
    char *head;
    char *body;
} http_write_t;

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_close(http_conn_t *c);
static void conn_feed(http_conn_t *c, const char *data, size_t len);

/* ---- small helpers ---- */

/* RFC 7231 IMF-fixdate, independent of the locale. */
static void http_date(char out[40])
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday,
             mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void pb_http_resp_init(pb_http_resp_t *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->status = 200;
}

/* ---- request accessors ---- */

/* Walk the flat header list; valid once the head is complete (HDR_NONE). */
static const char *hdr_find(const http_conn_t *c, const char *name, size_t *count)
{
    const char *p = c->hdrs.data, *found = NULL;
    size_t cnt = 0;
    for (size_t i = 0; p && i < c->nhdrs; i++) {
        const char *value = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0) {
            if (found == NULL)
                found = value;
            cnt++;
        }
        p = value + strlen(value) + 1;
    }
    if (count)
        *count = cnt;
    return found;
}

const char *pb_http_req_header(const pb_http_req_t *req, const char *name)
{
    if (req == NULL || req->conn_private == NULL)
        return NULL;
    return hdr_find(req->conn_private, name, NULL);
}

/* ---- parser callbacks: collect one request ---- */

static int cb_fail(http_conn_t *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1;
}

static int head_add(http_conn_t *c, size_t n)
{
    c->head_bytes += n;
    if (c->head_bytes > c->srv->limits.max_header_bytes)
        return cb_fail(c, 431, "request headers too large");
    return 0;
}

/* Close the header being collected so the flat list is walkable. Trailing
 * blanks of a value are dropped (http-parser keeps them). */
static int hdrs_finish(http_conn_t *c)
{
    if (c->hdr_state == HDR_FIELD && pb_buf_append(&c->hdrs, "\0", 2))
        return -1;
    if (c->hdr_state == HDR_VALUE) {
        while (c->hdrs.len > c->val_start &&
               (c->hdrs.data[c->hdrs.len - 1] == ' ' || c->hdrs.data[c->hdrs.len - 1] == '\t'))
            c->hdrs.len--;
        if (pb_buf_append(&c->hdrs, "", 1))
            return -1;
    }
    c->hdr_state = HDR_NONE;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_conn_t *c = p->data;
    pb_buf_reset(&c->url);
    pb_buf_reset(&c->hdrs);
    if (c->body.cap > HTTP_BODY_KEEP)
        pb_buf_free(&c->body);
    pb_buf_reset(&c->body);
    c->nhdrs = c->head_bytes = 0;
    c->hdr_state = HDR_NONE;
    c->err_status = 0;
    c->err_msg = NULL;
    c->in_head = 1;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (head_add(c, len))
        return -1;
    return pb_buf_append(&c->url, at, len) ? cb_fail(c, 503, "out of memory") : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (c->hdr_state != HDR_FIELD) {
        if (hdrs_finish(c))
            return cb_fail(c, 503, "out of memory");
        c->nhdrs++;
        c->hdr_state = HDR_FIELD;
        if (head_add(c, 4)) /* ": " and CRLF */
            return -1;
    }
    if (head_add(c, len))
        return -1;
    return pb_buf_append(&c->hdrs, at, len) ? cb_fail(c, 503, "out of memory") : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    if (c->hdr_state == HDR_FIELD) {
        if (pb_buf_append(&c->hdrs, "", 1))
            return cb_fail(c, 503, "out of memory");
        c->hdr_state = HDR_VALUE;
        c->val_start = c->hdrs.len;
    }
    if (head_add(c, len))
        return -1;
    return pb_buf_append(&c->hdrs, at, len) ? cb_fail(c, 503, "out of memory") : 0;
}

static int conn_write(http_conn_t *c, char *head, size_t head_len, char *body, size_t body_len);

/* The body cap of the request whose head was just parsed (limits.upload_prefix). */
static size_t body_limit(const http_conn_t *c)
{
    const pb_http_limits_t *l = &c->srv->limits;
    size_t n = l->upload_prefix ? strlen(l->upload_prefix) : 0;
    if (n && l->max_upload_bytes && c->url.len >= n &&
        memcmp(c->url.data, l->upload_prefix, n) == 0)
        return l->max_upload_bytes;
    return l->max_body_bytes;
}

static int on_headers_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    size_t ncl = 0, nte = 0;
    c->in_head = 0;
    if (hdrs_finish(c))
        return cb_fail(c, 503, "out of memory");
    /* http-parser 2.9.4 already refuses these; kept so framing never
     * depends on the parser's leniency settings. */
    hdr_find(c, "Content-Length", &ncl);
    hdr_find(c, "Transfer-Encoding", &nte);
    if (ncl > 1)
        return cb_fail(c, 400, "duplicate Content-Length");
    if (ncl && nte)
        return cb_fail(c, 400, "request has both Transfer-Encoding and Content-Length");
    c->body.limit = body_limit(c);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->body.limit)
        return cb_fail(c, 413, "request body too large");
    c->keep_alive = http_should_keep_alive(p);
    /* Clients that wait for "100 Continue" would otherwise stall a second. */
    const char *expect = hdr_find(c, "Expect", NULL);
    if (expect && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1 &&
        ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0)))
        if (conn_write(c, NULL, 0, NULL, 0))
            return cb_fail(c, 503, "cannot write");
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    int rc = pb_buf_append(&c->body, at, len);
    if (rc == PB_ETOOBIG)
        return cb_fail(c, 413, "request body too large");
    return rc ? cb_fail(c, 503, "out of memory") : 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    c->keep_alive = http_should_keep_alive(p);
    /* Hand control back to conn_feed, which dispatches this request before
     * parsing the next pipelined one. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- connection I/O ---- */

static void conn_read_stop(http_conn_t *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0; /* 0 makes libuv report UV_ENOBUFS */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_read_start(http_conn_t *c)
{
    if (c->reading || c->closing || c->eof)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

static void on_timer(uv_timer_t *t) { conn_close(t->data); }

static void conn_timer_start(http_conn_t *c, int ms)
{
    if (!c->closing)
        uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
}

static void on_conn_closed(uv_handle_t *h)
{
    http_conn_t *c = h->data;
    pb_http_server_t *srv = c->srv;
    srv->handles--;
    if (--c->open_handles == 0) {
        pb_buf_free(&c->url);
        pb_buf_free(&c->hdrs);
        pb_buf_free(&c->body);
        free(c->stash);
        free(c);
    }
    if (srv->stopping && srv->handles == 0)
        free(srv);
}

/* Close now; pending writes are cancelled (their callbacks free buffers)
 * and the memory goes once both handles report closed. */
static void conn_close(http_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    pb_http_server_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->deferred) {
        c->deferred->conn = NULL;
        c->deferred = NULL;
    }
    c->prev = c->next = NULL;
    srv->nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    http_conn_t *c = req->handle->data;
    if (status < 0)
        conn_close(c);
}

/* After a response that ends the connection: send FIN, then read and discard
 * what the client still sends, so closing does not turn into a reset that
 * could destroy the response before the client reads it. */
static void conn_linger(http_conn_t *c)
{
    if (c->eof) {
        conn_close(c);
        return;
    }
    c->lingering = 1;
    free(c->stash);
    c->stash = NULL;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    conn_timer_start(c, HTTP_LINGER_MS);
    conn_read_start(c);
}

static void conn_resume(http_conn_t *c)
{
    char *s = c->stash;
    size_t n = c->stash_len;
    c->paused = 0;
    c->stash = NULL;
    c->stash_len = 0;
    if (s)
        conn_feed(c, s, n);
    free(s);
    if (!c->paused && !c->draining)
        conn_read_start(c);
}

static void on_write(uv_write_t *req, int status)
{
    http_write_t *w = (http_write_t *)req;
    http_conn_t *c = req->handle->data;
    free(w->head);
    free(w->body);
    free(w);
    if (c->closing)
        return;
    if (status < 0) { /* peer gone mid-response */
        conn_close(c);
        return;
    }
    c->pending_writes--;
    /* A deferred answer (a slow stream) is not an idle connection. */
    if (!c->deferred)
        conn_timer_start(c, c->srv->limits.idle_timeout_ms);
    if (c->paused && !c->deferred &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= HTTP_WQ_LOW)
        conn_resume(c);
    if (!c->closing && c->draining && !c->lingering && c->pending_writes == 0)
        conn_linger(c);
}

/* Queue head + body (both malloc'd, freed after the write; NULL head sends
 * the static 100 Continue line). Returns 0, or -1 with the conn closed. */
static int conn_write(http_conn_t *c, char *head, size_t head_len, char *body, size_t body_len)
{
    http_write_t *w = calloc(1, sizeof *w);
    uv_buf_t bufs[2];
    unsigned nbufs = 0;
    if (w == NULL) {
        free(head);
        free(body);
        conn_close(c);
        return -1;
    }
    w->head = head;
    w->body = body;
    if (head)
        bufs[nbufs++] = uv_buf_init(head, (unsigned)head_len);
    else
        bufs[nbufs++] = uv_buf_init((char *)continue_line, sizeof continue_line - 1);
    if (body && body_len)
        bufs[nbufs++] = uv_buf_init(body, (unsigned)body_len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write) != 0) {
        free(head);
        free(body);
        free(w);
        conn_close(c);
        return -1;
    }
    c->pending_writes++;
    return 0;
}

/* Send resp (takes its body). keep_alive 0 ends the connection after it. */
static void conn_respond(http_conn_t *c, pb_http_resp_t *resp, int head_only, int keep_alive)
{
    char date[40], *head = NULL;
    if (c->closing || c->draining) {
        free(resp->body);
        resp->body = NULL;
        return;
    }
    if (resp->status < 100 || resp->status > 999) {
        pb_warn("http: handler returned status %d", resp->status);
        pb_http_resp_error(resp, 500, "internal error: bad status", NULL);
    }
    if (c->srv->stopping)
        keep_alive = 0;
    if (resp->body == NULL)
        resp->body_len = 0;
    int no_body = resp->status < 200 || resp->status == 204 || resp->status == 304;
    const char *ctype = resp->content_type ? resp->content_type : "application/json";
    const char *reason = http_status_str((enum http_status)resp->status);
    resp->extra_headers[sizeof resp->extra_headers - 1] = '\0';
    http_date(date);
    size_t cap = 200 + strlen(ctype) + strlen(reason) + strlen(resp->extra_headers);
    head = malloc(cap);
    if (head == NULL) {
        free(resp->body);
        resp->body = NULL;
        conn_close(c);
        return;
    }
    int n;
    if (no_body)
        n = snprintf(head, cap, "HTTP/1.1 %d %s\r\nConnection: %s\r\nDate: %s\r\n%s\r\n",
                     resp->status, reason, keep_alive ? "keep-alive" : "close", date,
                     resp->extra_headers);
    else
        n = snprintf(head, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\nDate: %s\r\n%s\r\n",
                     resp->status, reason, ctype, resp->body_len,
                     keep_alive ? "keep-alive" : "close", date, resp->extra_headers);
    char *body = resp->body;
    resp->body = NULL;
    if (no_body || head_only) {
        free(body);
        body = NULL;
    }
    if (!keep_alive)
        c->draining = 1;
    /* The connection ends from on_write once this is out (conn_linger). */
    conn_write(c, head, (size_t)n, body, body ? resp->body_len : 0);
}

static void conn_error(http_conn_t *c, int status, const char *msg)
{
    pb_http_resp_t resp;
    pb_http_resp_init(&resp);
    if (c->srv->limits.error_body)
        c->srv->limits.error_body(&resp, status, msg);
    else
        pb_http_resp_error(&resp, status, msg, NULL);
    conn_respond(c, &resp, 0, 0);
}

static void conn_parse_error(http_conn_t *c, enum http_errno e)
{
    char msg[160];
    size_t ncl = 0, nte = 0;
    if (c->err_status) {
        conn_error(c, c->err_status, c->err_msg);
        return;
    }
    if (e == HPE_HEADER_OVERFLOW) {
        conn_error(c, 431, "request headers too large");
        return;
    }
    if (e == HPE_UNEXPECTED_CONTENT_LENGTH && hdrs_finish(c) == 0) {
        hdr_find(c, "Content-Length", &ncl);
        hdr_find(c, "Transfer-Encoding", &nte);
        if (ncl && nte) {
            conn_error(c, 400, "request has both Transfer-Encoding and Content-Length");
            return;
        }
        if (ncl > 1) {
            conn_error(c, 400, "duplicate Content-Length");
            return;
        }
    }
    snprintf(msg, sizeof msg, "malformed request: %s", http_errno_description(e));
    conn_error(c, 400, msg);
}

/* Build the request view of a parsed message and answer it. */
static void conn_dispatch(http_conn_t *c)
{
    pb_http_server_t *srv = c->srv;
    pb_http_resp_t resp;
    struct http_parser_url u;
    char *scratch = NULL;
    const char *url = c->url.data ? c->url.data : "";
    size_t ulen = c->url.len;
    int is_head = c->parser.method == HTTP_HEAD;
    int keep_alive = c->keep_alive && !c->parser.upgrade; /* no protocol switch here */

    pb_http_resp_init(&resp);
    scratch = malloc(2 * ulen + 4);
    if (scratch == NULL) {
        pb_http_resp_error(&resp, 503, "out of memory", NULL);
        goto send;
    }
    http_parser_url_init(&u);
    if (ulen > UINT16_MAX ||
        http_parser_parse_url(url, ulen, c->parser.method == HTTP_CONNECT, &u) != 0) {
        pb_http_resp_error(&resp, 400, "invalid request URL", NULL);
        goto send;
    }
    char *path = scratch, *query = scratch + ulen + 2;
    strcpy(path, "/");
    if (u.field_set & (1u << UF_PATH)) {
        const char *p = url + u.field_data[UF_PATH].off;
        size_t plen = u.field_data[UF_PATH].len;
        if (pb_http__url_decode(p, plen, 0, path, ulen + 2) < 0 || path[0] != '/') {
            pb_http_resp_error(&resp, 400, "invalid percent-encoding in the request path", NULL);
            goto send;
        }
    }
    query[0] = '\0';
    if (u.field_set & (1u << UF_QUERY)) {
        memcpy(query, url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
        query[u.field_data[UF_QUERY].len] = '\0';
    }
    pb_http_req_t req = {
        /* HEAD is served by the GET route; the body is dropped on the way out. */
        .method = is_head ? "GET" : http_method_str((enum http_method)c->parser.method),
        .path = path,
        .query = query,
        .body = c->body.data ? c->body.data : "",
        .body_len = c->body.len,
        .conn_private = c,
    };
    c->req_head_only = is_head;
    c->req_keep_alive = keep_alive;
    srv->fn(srv->ctx, &req, &resp);
    if (c->deferred) { /* pb_http_complete answers; the idle timer waits too */
        free(resp.body);
        uv_timer_stop(&c->timer);
        free(scratch);
        return;
    }
send:
    conn_respond(c, &resp, is_head, keep_alive);
    free(scratch);
}

/* Parse input, answering each complete request in order. Stops when the
 * connection ends, or stashes the rest while the client is not reading. */
static void conn_feed(http_conn_t *c, const char *data, size_t len)
{
    while (len > 0 && !c->closing && !c->draining) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            conn_parse_error(c, e);
            return;
        }
        data += n;
        len -= n;
        if (e != HPE_PAUSED)
            continue;
        http_parser_pause(&c->parser, 0);
        conn_dispatch(c);
        if (c->closing || c->draining)
            return;
        if (c->deferred || uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > HTTP_WQ_HIGH) {
            c->paused = 1;
            conn_read_stop(c);
            if (len > 0) {
                c->stash = malloc(len);
                if (c->stash == NULL) {
                    conn_close(c);
                    return;
                }
                memcpy(c->stash, data, len);
                c->stash_len = len;
            }
            return;
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    http_conn_t *c = s->data;
    if (nread > 0 && !c->closing && !c->draining && !c->lingering) {
        /* A head must arrive within one idle period: trickling it byte by
         * byte (slowloris) does not keep the connection. */
        if (!c->in_head)
            conn_timer_start(c, c->srv->limits.idle_timeout_ms);
        conn_feed(c, buf->base, (size_t)nread);
    } else if (nread < 0 && !c->closing) {
        /* EOF: a half-closed client may still be owed answers. */
        conn_read_stop(c);
        c->eof = 1;
        if (nread != UV_EOF || c->lingering || c->pending_writes == 0)
            conn_close(c);
        else
            c->draining = 1;
    }
    free(buf->base);
}

/* ---- deferred answers ---- */

char *pb_http_req_take_body(const pb_http_req_t *req, size_t *len)
{
    http_conn_t *c = req ? req->conn_private : NULL;
    char *body;
    *len = 0;
    if (c == NULL)
        return NULL;
    body = c->body.data ? c->body.data : calloc(1, 1);
    if (body == NULL)
        return NULL;
    *len = c->body.len;
    size_t limit = c->body.limit;
    pb_buf_init(&c->body, limit);
    return body;
}

pb_http_deferred_t *pb_http_defer(const pb_http_req_t *req)
{
    http_conn_t *c = req ? req->conn_private : NULL;
    if (c == NULL || c->deferred || c->closing)
        return NULL;
    pb_http_deferred_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->conn = c;
    d->head_only = c->req_head_only;
    d->keep_alive = c->req_keep_alive;
    c->deferred = d;
    return d;
}

void pb_http_complete(pb_http_deferred_t *d, pb_http_resp_t *resp)
{
    http_conn_t *c = d ? d->conn : NULL;
    if (c == NULL) { /* the connection is gone: nobody to answer */
        free(resp->body);
        resp->body = NULL;
        free(d);
        return;
    }
    c->deferred = NULL;
    conn_respond(c, resp, d->head_only, d->keep_alive);
    free(d);
    /* Input that arrived behind the deferred request is parsed now, unless
     * the client is slow to read this answer (on_write resumes then). */
    if (!c->closing && !c->draining && c->paused &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= HTTP_WQ_LOW)
        conn_resume(c);
}

int pb_http_stream_begin(pb_http_deferred_t *d, int status, const char *content_type,
                         const char *extra_headers)
{
    http_conn_t *c = d ? d->conn : NULL;
    char date[40];
    if (c == NULL || c->closing || c->draining || d->streaming)
        return -1;
    if (c->srv->stopping)
        d->keep_alive = 0;
    const char *reason = http_status_str((enum http_status)status);
    const char *ctype = content_type ? content_type : "text/event-stream";
    const char *extra = extra_headers ? extra_headers : "";
    size_t cap = 200 + strlen(ctype) + strlen(reason) + strlen(extra);
    char *head = malloc(cap);
    if (head == NULL) {
        conn_close(c);
        return -1;
    }
    http_date(date);
    int n = snprintf(head, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                     "Connection: %s\r\nDate: %s\r\n%s\r\n",
                     status, reason, ctype, d->keep_alive ? "keep-alive" : "close", date, extra);
    d->streaming = 1;
    return conn_write(c, head, (size_t)n, NULL, 0);
}

int pb_http_stream_send(pb_http_deferred_t *d, const char *data, size_t len)
{
    http_conn_t *c = d ? d->conn : NULL;
    if (c == NULL || c->closing || !d->streaming)
        return -1;
    if (len == 0) /* an empty chunk would end the body */
        return 0;
    char *head = malloc(24), *body = malloc(len + 2);
    if (head == NULL || body == NULL) {
        free(head);
        free(body);
        conn_close(c);
        return -1;
    }
    int n = snprintf(head, 24, "%zx\r\n", len);
    memcpy(body, data, len);
    memcpy(body + len, "\r\n", 2);
    return conn_write(c, head, (size_t)n, body, len + 2);
}

void pb_http_stream_end(pb_http_deferred_t *d)
{
    http_conn_t *c = d ? d->conn : NULL;
    if (c == NULL || c->closing || !d->streaming) {
        if (c && !c->closing) /* never begun: nothing framed the answer */
            conn_close(c);
        free(d);
        return;
    }
    char *tail = strdup("0\r\n\r\n");
    c->deferred = NULL;
    if (!d->keep_alive)
        c->draining = 1;
    int keep = d->keep_alive;
    free(d);
    if (tail == NULL) {
        conn_close(c);
        return;
    }
    if (conn_write(c, tail, 5, NULL, 0) != 0 || !keep)
        return;
    if (!c->closing && !c->draining && c->paused &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= HTTP_WQ_LOW)
        conn_resume(c);
}

/* ---- server ---- */

static void on_listener_closed(uv_handle_t *h)
{
    pb_http_server_t *srv = h->data;
    if (--srv->handles == 0)
        free(srv);
}

static void on_connection(uv_stream_t *ls, int status)
{
    pb_http_server_t *srv = ls->data;
    if (status < 0) {
        pb_warn("http: accept: %s", uv_strerror(status));
        return;
    }
    http_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) /* libuv retries the accept once a later call takes it */
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    srv->handles += 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    pb_buf_init(&c->url, 0); /* url and headers are bounded by head_add */
    pb_buf_init(&c->hdrs, 0);
    pb_buf_init(&c->body, srv->limits.max_body_bytes);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0 || srv->stopping ||
        srv->nconns > srv->limits.max_connections) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_timer_start(c, srv->limits.idle_timeout_ms);
    conn_read_start(c);
}

int pb_http_start(uv_loop_t *loop, const char *host, int port, const pb_http_limits_t *limits,
                  pb_http_handler_fn fn, void *ctx, pb_http_server_t **out)
{
    pb_http_server_t *srv = NULL;
    struct sockaddr_storage ss;
    int namelen = sizeof ss, fd = -1, rc;
    struct sigaction sa;

    *out = NULL;
    if (loop == NULL || fn == NULL || port < 0 || port > 65535)
        return PB_EINVAL;
    /* libuv writes with write(2): a client that vanishes mid-response would
     * otherwise kill the daemon with SIGPIPE. Leave any handler in place. */
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return PB_ENOMEM;
    srv->loop = loop;
    srv->fn = fn;
    srv->ctx = ctx;
    srv->limits.max_header_bytes = 16u << 10;
    srv->limits.max_body_bytes = 8u << 20;
    srv->limits.idle_timeout_ms = 30000;
    srv->limits.max_connections = 1024;
    if (limits) { /* zero fields keep the defaults */
        if (limits->max_header_bytes)
            srv->limits.max_header_bytes = limits->max_header_bytes;
        if (limits->max_body_bytes)
            srv->limits.max_body_bytes = limits->max_body_bytes;
        if (limits->idle_timeout_ms > 0)
            srv->limits.idle_timeout_ms = limits->idle_timeout_ms;
        if (limits->max_connections > 0)
            srv->limits.max_connections = limits->max_connections;
        srv->limits.upload_prefix = limits->upload_prefix;
        srv->limits.max_upload_bytes = limits->max_upload_bytes;
        srv->limits.error_body = limits->error_body;
    }
    rc = pb_http__bind(host, port, &fd);
    if (rc) {
        free(srv);
        return rc;
    }
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    srv->handles = 1;
    rc = uv_tcp_open(&srv->listener, fd);
    if (rc == 0)
        fd = -1; /* the handle owns it now */
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, SOMAXCONN, on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &namelen);
    if (rc != 0) {
        /* The handle exists now: it is freed by the close callback when the
         * caller runs the loop. */
        pb_error("http: listen: %s", uv_strerror(rc));
        if (fd >= 0)
            close(fd);
        srv->stopping = 1;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
        return PB_ENET;
    }
    srv->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *out = srv;
    return 0;
}

int pb_http_port(const pb_http_server_t *srv) { return srv ? srv->port : -1; }

void pb_http_stop(pb_http_server_t *srv)
{
    if (srv == NULL || srv->stopping)
        return;
    srv->stopping = 1;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    while (srv->conns)
        conn_close(srv->conns);
}
