/* HTTP helpers that do not touch a connection (contract in http.h): response
 * bodies and headers, JSON errors, static files confined to a web root,
 * query-string decoding, and the listening socket. The server itself lives
 * in http.c. */
#include "coordinator/http.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/pb.h"
#include "coordinator/http_int.h"

#define HTTP_FILE_MAX (64u << 20) /* static files are small; refuse anything huge */

/* ---- percent-decoding ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

long pb_http__url_decode(const char *s, size_t n, int plus, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus && ch == '+') {
            ch = ' ';
        }
        if (o + 1 >= outlen)
            return -2;
        out[o++] = ch;
    }
    if (outlen == 0)
        return -2;
    out[o] = '\0';
    return (long)o;
}

/* ---- responses ---- */

int pb_http_resp_set(pb_http_resp_t *resp, int status, const char *content_type, const char *body,
                     size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return PB_ENOMEM;
    if (len)
        memcpy(copy, body, len);
    copy[len] = '\0';
    free(resp->body);
    resp->body = copy;
    resp->body_len = len;
    resp->status = status;
    if (content_type)
        resp->content_type = content_type;
    return 0;
}

void pb_http_resp_header(pb_http_resp_t *resp, const char *name, const char *value)
{
    /* CR/LF in either part would let a value forge headers or a response. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n") || !*name) {
        pb_warn("http: refusing header with CR/LF: %s", name);
        return;
    }
    size_t used = strnlen(resp->extra_headers, sizeof resp->extra_headers);
    size_t room = sizeof resp->extra_headers - used;
    int n = snprintf(resp->extra_headers + used, room, "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= room) {
        resp->extra_headers[used] = '\0';
        pb_warn("http: no room for header %s", name);
    }
}

void pb_http_resp_error(pb_http_resp_t *resp, int status, const char *msg, const char *field)
{
    if (msg == NULL)
        msg = http_status_str((enum http_status)status);
    /* An empty field (pb_err_t with no field) reads as null. */
    json_t *o = json_pack("{s:s, s:s?}", "error", msg, "field", field && *field ? field : NULL);
    char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (text == NULL || pb_http_resp_set(resp, status, "application/json", text, strlen(text))) {
        free(resp->body);
        resp->body = NULL;
        resp->body_len = 0;
        resp->status = status;
        resp->content_type = "application/json";
    }
    free(text);
}

/* ---- static files ---- */

static const char *content_type_for(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".woff2", "font/woff2"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    if (dot && strchr(dot, '/') == NULL)
        for (size_t i = 0; i < PB_ARRAY_LEN(types); i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static int has_dotdot_segment(const char *path)
{
    for (const char *p = path; *p;) {
        const char *end = strchrnul(p, '/');
        if (end - p == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int file_error(pb_http_resp_t *resp, int status, const char *msg)
{
    pb_http_resp_error(resp, status, msg, NULL);
    return status;
}

/* Read one regular file (already vetted by the caller) into resp. */
static int send_file(pb_http_resp_t *resp, const char *file, const char *ctype,
                     const char *cache_control)
{
    char *data = NULL;
    int fd = -1, status;
    struct stat st;

    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        status = file_error(resp, errno == EACCES ? 403 : 404,
                            errno == EACCES ? "forbidden" : "not found");
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        status = file_error(resp, 404, "not found");
        goto out;
    }
    if ((uint64_t)st.st_size > HTTP_FILE_MAX) {
        status = file_error(resp, 500, "file too large to serve");
        goto out;
    }
    size_t size = (size_t)st.st_size, got = 0;
    data = malloc(size + 1);
    if (data == NULL) {
        status = file_error(resp, 503, "out of memory");
        goto out;
    }
    while (got < size) { /* a file that shrinks underneath is served as read */
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            status = file_error(resp, 500, "cannot read file");
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    data[got] = '\0';
    free(resp->body);
    resp->body = data;
    resp->body_len = got;
    data = NULL;
    resp->status = status = 200;
    resp->content_type = ctype;
    if (cache_control)
        pb_http_resp_header(resp, "Cache-Control", cache_control);
out:
    free(data);
    if (fd >= 0)
        close(fd);
    return status;
}

int pb_http_serve_file(pb_http_resp_t *resp, const char *root, const char *path)
{
    char rroot[PATH_MAX], want[PATH_MAX], rfile[PATH_MAX];

    if (path == NULL || *path == '\0')
        path = "/";
    if (path[0] != '/')
        return file_error(resp, 404, "not found");
    if (has_dotdot_segment(path))
        return file_error(resp, 403, "forbidden: path leaves the web root");
    if (realpath(root, rroot) == NULL) {
        pb_warn("http: web root %s: %s", root, strerror(errno));
        return file_error(resp, 404, "not found");
    }
    const char *index = path[strlen(path) - 1] == '/' ? "index.html" : "";
    int n = snprintf(want, sizeof want, "%s%s%s", rroot, path, index);
    if (n < 0 || (size_t)n >= sizeof want)
        return file_error(resp, 404, "not found");
    if (realpath(want, rfile) == NULL)
        return errno == EACCES ? file_error(resp, 403, "forbidden")
                               : file_error(resp, 404, "not found");
    /* Symlinks may point anywhere: the resolved file must still be under root. */
    size_t rl = strlen(rroot);
    if (strncmp(rfile, rroot, rl) != 0 || (rl > 1 && rfile[rl] != '/'))
        return file_error(resp, 403, "forbidden: path leaves the web root");

    return send_file(resp, rfile, content_type_for(want), "no-cache");
}

int pb_http_serve_one(pb_http_resp_t *resp, const char *file, const char *cache_control)
{
    if (file == NULL || *file == '\0')
        return file_error(resp, 404, "not found");
    return send_file(resp, file, content_type_for(file), cache_control);
}

/* ---- query strings ---- */

int pb_http_query_param(const pb_http_req_t *req, const char *name, char *out, size_t outlen)
{
    const char *q = req && req->query ? req->query : "";
    size_t nlen = strlen(name);
    if (out && outlen)
        out[0] = '\0';
    while (*q) {
        size_t seg = strcspn(q, "&");
        const char *eq = memchr(q, '=', seg);
        size_t klen = eq ? (size_t)(eq - q) : seg;
        char key[256];
        long kl = pb_http__url_decode(q, klen, 1, key, sizeof key);
        if (kl >= 0 && (size_t)kl == nlen && memcmp(key, name, nlen) == 0) {
            if (out == NULL)
                return 1;
            long vl =
                pb_http__url_decode(eq ? eq + 1 : "", eq ? seg - klen - 1 : 0, 1, out, outlen);
            if (vl < 0) {
                if (outlen)
                    out[0] = '\0';
                return vl == -2 ? PB_ETOOBIG : PB_EINVAL;
            }
            return 1;
        }
        q += seg;
        if (*q == '&')
            q++;
    }
    return 0;
}

/* ---- listening socket ---- */

int pb_http__bind(const char *host, int port, int *fd_out)
{
    struct sockaddr_storage ss;
    int fd = -1, one = 1, rc;
    if (host == NULL || *host == '\0' || strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        pb_error("http: cannot parse listen address %s", host);
        return PB_EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        rc = PB_ENET;
        goto fail;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len =
        ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        rc = PB_ENET;
        goto fail;
    }
    *fd_out = fd;
    return 0;
fail:
    pb_error("http: cannot listen on %s:%d: %s", host, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}
