/* HTTP/1.1 server on a libuv loop, parsing with Debian's http-parser:
 * keep-alive, header and body caps (431/413), strict framing (no request
 * with both Transfer-Encoding and Content-Length). Handlers run on the loop
 * thread and answer synchronously, or defer the answer (pb_http_defer) while
 * slow work runs elsewhere. Shared by the coordinator (and later
 * posbench-serve); knows nothing about posbench's API. */
#ifndef PB_HTTP_H
#define PB_HTTP_H

#include <stddef.h>
#include <uv.h>

typedef struct pb_http_server pb_http_server_t;
struct pb_http_resp;

typedef struct pb_http_limits {
    size_t max_header_bytes; /* all header lines together; default 16 KiB -> 431 */
    size_t max_body_bytes;   /* default 8 MiB -> 413 */
    int idle_timeout_ms;     /* keep-alive idle close; default 30000 */
    int max_connections;     /* default 1024; beyond it new connections are closed */
    /* Requests whose URL starts with upload_prefix (NULL: none) have
     * max_upload_bytes as their body cap instead (when non-zero): large
     * uploads without raising the cap of every other route. */
    const char *upload_prefix;
    size_t max_upload_bytes;
    /* Body of the errors the server answers itself (400 malformed, 413,
     * 431); NULL: pb_http_resp_error's shape. posbench-serve speaks
     * OpenAI's error shape there too. */
    void (*error_body)(struct pb_http_resp *resp, int status, const char *msg);
} pb_http_limits_t;

typedef struct pb_http_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* percent-decoded path, no query */
    const char *query;  /* raw query string without '?', "" if none */
    const char *body;   /* NUL-terminated (body_len excludes the NUL); "" if none */
    size_t body_len;
    void *conn_private; /* for pb_http_req_header */
} pb_http_req_t;

/* Case-insensitive header lookup; NULL when absent. */
const char *pb_http_req_header(const pb_http_req_t *req, const char *name);
/* Query parameter (percent-decoded) into out; returns 1 if present, 0 if not. */
int pb_http_query_param(const pb_http_req_t *req, const char *name, char *out, size_t outlen);

typedef struct pb_http_resp {
    int status;               /* default 200 */
    const char *content_type; /* default "application/json" (static string) */
    char *body;               /* malloc'd, owned by the server after the handler */
    size_t body_len;
    char extra_headers[512];  /* "Name: value\r\n" lines, may be empty */
} pb_http_resp_t;

/* Set a response body (copied). Returns 0 or PB_ENOMEM. */
int pb_http_resp_set(pb_http_resp_t *resp, int status, const char *content_type,
                     const char *body, size_t len);
/* Add an extra header line. */
void pb_http_resp_header(pb_http_resp_t *resp, const char *name, const char *value);
/* JSON error body {"error": msg, "field": field|null}. */
void pb_http_resp_error(pb_http_resp_t *resp, int status, const char *msg, const char *field);

/* Serve a file under root for a request path ("/" -> index.html). Refuses
 * paths that leave root ("..", symlinks out of root) with 403/404, sets the
 * content type by extension. Returns the status it set. */
int pb_http_serve_file(pb_http_resp_t *resp, const char *root, const char *path);
/* Serve one configured file (not a request path: the caller vouches for it),
 * typed by its extension, with Cache-Control cache_control (NULL: none).
 * 404 when file is empty or absent. Returns the status it set. */
int pb_http_serve_one(pb_http_resp_t *resp, const char *file, const char *cache_control);

/* Take the request body out of the connection: the caller owns the returned
 * buffer (NUL-terminated, *len bytes; free it) and req->body must no longer
 * be read. NULL when out of memory. Loop thread, inside the handler. */
char *pb_http_req_take_body(const pb_http_req_t *req, size_t *len);

/* Deferred answers. A handler that starts slow work (uv_queue_work) calls
 * pb_http_defer before it returns; whatever it left in resp is then
 * dropped, the connection reads no further request, and the answer is sent
 * by pb_http_complete, later, on the loop thread. The connection may close
 * meanwhile (client gone, server stopped): pb_http_complete then only frees.
 * Take the body first if the work needs it: the connection's buffers are
 * freed when it closes. NULL when out of memory (answer synchronously). */
typedef struct pb_http_deferred pb_http_deferred_t;
pb_http_deferred_t *pb_http_defer(const pb_http_req_t *req);
/* Send resp (its body is taken, as from a handler; initialise resp with
 * pb_http_resp_init) for a deferred request and free d. Loop thread only,
 * never inside the handler that deferred. */
void pb_http_complete(pb_http_deferred_t *d, pb_http_resp_t *resp);
/* An empty 200 response. */
void pb_http_resp_init(pb_http_resp_t *resp);

/* Streamed answers for a deferred request (server-sent events): begin sends
 * the head (status, content_type, extra "Name: value\r\n" lines or NULL)
 * with Transfer-Encoding: chunked, each send one chunk (data copied), end
 * the last chunk, then frees d as pb_http_complete does. begin and send
 * return 0, or -1 when the connection is gone (stop producing; end then
 * only frees; end without begin closes the connection). Loop thread only,
 * never inside the handler that deferred. */
int pb_http_stream_begin(pb_http_deferred_t *d, int status, const char *content_type,
                         const char *extra_headers);
int pb_http_stream_send(pb_http_deferred_t *d, const char *data, size_t len);
void pb_http_stream_end(pb_http_deferred_t *d);

typedef void (*pb_http_handler_fn)(void *ctx, const pb_http_req_t *req, pb_http_resp_t *resp);

/* Listen on host:port (port 0 = ephemeral; pb_http_port tells which). NULL
 * limits = defaults. On failure *out is NULL and the return is negative. */
int pb_http_start(uv_loop_t *loop, const char *host, int port, const pb_http_limits_t *limits,
                  pb_http_handler_fn fn, void *ctx, pb_http_server_t **out);
int pb_http_port(const pb_http_server_t *srv);
/* Close the listener and all connections; the server is freed once libuv
 * has closed every handle (run the loop afterwards). */
void pb_http_stop(pb_http_server_t *srv);

#endif
