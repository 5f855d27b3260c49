/* User datasets over HTTP: POST /api/v1/datasets?suite=S&name=N stores a
 * JSONL body once every line checks (suites/dataset.h) under its SHA-256;
 * GET lists them, GET /{hash} is one record, GET /{hash}/content the bytes
 * workers fetch. Runs on the loop thread, like every handler. */
#include "coordinator/api_datasets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sha256.h"
#include "suites/dataset.h"
#include "suites/suite.h"

static void reply(pb_http_resp_t *resp, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        pb_http_resp_error(resp, 500, "out of memory", NULL);
        return;
    }
    pb_http_resp_set(resp, status, "application/json", text, strlen(text));
    free(text);
}

static void reply_err(pb_http_resp_t *resp, int rc, const char *what)
{
    char msg[160];
    if (rc == PB_ENOTFOUND) {
        snprintf(msg, sizeof msg, "%s not found", what);
        pb_http_resp_error(resp, 404, msg, NULL);
        return;
    }
    snprintf(msg, sizeof msg, "internal error: %s", pb_strerror(rc));
    pb_http_resp_error(resp, 500, msg, NULL);
}

/* A query parameter into out; -1 (with the 400 sent) when malformed. */
static int query(const pb_http_req_t *req, pb_http_resp_t *resp, const char *name, char *out,
                 size_t n)
{
    out[0] = '\0';
    if (pb_http_query_param(req, name, out, n) >= 0)
        return 0;
    char msg[128];
    snprintf(msg, sizeof msg, "query parameter %s is malformed or too long", name);
    pb_http_resp_error(resp, 400, msg, name);
    return -1;
}

static void upload(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    char suite[64], name[PB_DATASET_NAME_MAX + 1], hash[PB_SHA256_HEX];
    ps_dataset_stats_t st;
    pb_err_t err = {{0}, {0}};
    json_t *rec = NULL;
    int created = 0;

    if (query(req, resp, "suite", suite, sizeof suite) || query(req, resp, "name", name, sizeof name))
        return;
    if (suite[0] == '\0')
        return pb_http_resp_error(resp, 400,
                                  "query parameter suite is required: the suite whose format "
                                  "the lines follow (or retrieval)",
                                  "suite");
    if (ps_suite_find(suite) == NULL && strcmp(suite, PS_DATASET_RETRIEVAL) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown suite \"%s\"", suite);
        return pb_http_resp_error(resp, 400, msg, "suite");
    }
    if (req->body_len == 0)
        return pb_http_resp_error(resp, 400, "request body is empty: expected JSONL", "body");
    if (ps_dataset_scan(suite, req->body, req->body_len, &st, &err)) {
        /* the first bad line, and nothing stored */
        return pb_http_resp_error(resp, 400, err.msg, err.field[0] ? err.field : NULL);
    }
    pb_sha256_hex(req->body, req->body_len, hash);
    pdb_dataset_meta_t m = {.hash = hash, .name = name[0] ? name : "dataset", .suite = suite,
                            .lines = st.lines, .buckets = st.buckets, .counts = st.counts,
                            .n_buckets = st.n_buckets};
    int rc = pdb_dataset_put(c->db, &m, req->body, req->body_len, &created, &rec);
    ps_dataset_stats_free(&st);
    if (rc)
        return reply_err(resp, rc, "dataset");
    if (created)
        pb_info("dataset %.16s stored: %s, %zu bytes, %llu lines", hash, suite, req->body_len,
                (unsigned long long)m.lines);
    reply(resp, created ? 201 : 200, rec);
}

/* The stored bytes, read into a buffer the server sends and frees. */
static void content(pb_coord_t *c, const char *hash, pb_http_resp_t *resp)
{
    char path[PATH_MAX];
    json_t *rec = NULL;
    struct stat st;
    char *buf = NULL;
    int fd = -1;
    int rc = pdb_dataset_get(c->db, hash, &rec);
    json_decref(rec);
    if (rc)
        return reply_err(resp, rc, "dataset");
    if ((rc = pdb_dataset_path(c->db, hash, path, sizeof path)))
        return reply_err(resp, rc, "dataset");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || (buf = malloc((size_t)st.st_size + 1)) == NULL)
        goto fail;
    for (size_t off = 0; off < (size_t)st.st_size;) {
        ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto fail;
        off += (size_t)r;
    }
    close(fd);
    resp->status = 200;
    resp->content_type = "application/x-ndjson";
    resp->body = buf; /* the server owns it now */
    resp->body_len = (size_t)st.st_size;
    return;
fail:
    pb_warn("dataset %.16s: cannot read %s: %s", hash, path, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(buf);
    pb_http_resp_error(resp, 500, "the dataset's file cannot be read", NULL);
}

static int method(const pb_http_req_t *req, const char *m)
{
    return strcmp(req->method, m) == 0 ||
           (strcmp(m, "GET") == 0 && strcmp(req->method, "HEAD") == 0);
}

static void not_allowed(pb_http_resp_t *resp, const char *allow)
{
    pb_http_resp_header(resp, "Allow", allow);
    pb_http_resp_error(resp, 405, "method not allowed", NULL);
}

void pb_api_datasets(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp,
                     const char *rest)
{
    char hash[PB_SHA256_HEX];
    if (rest[0] == '\0') {
        if (method(req, "POST"))
            return upload(c, req, resp);
        if (!method(req, "GET"))
            return not_allowed(resp, "GET, POST");
        json_t *out = NULL;
        int rc = pdb_datasets_list(c->db, &out);
        return rc ? reply_err(resp, rc, "datasets") : reply(resp, 200, out);
    }
    if (rest[0] != '/' || strlen(rest + 1) < 64)
        return pb_http_resp_error(resp, 404, "no such API endpoint", NULL);
    memcpy(hash, rest + 1, 64);
    hash[64] = '\0';
    const char *tail = rest + 65;
    if (!pb_sha256_is_hex(hash) || (tail[0] && strcmp(tail, "/content") != 0))
        return pb_http_resp_error(resp, 404, "no such dataset (a dataset is named by its "
                                             "SHA-256: 64 lowercase hex digits)", NULL);
    if (!method(req, "GET"))
        return not_allowed(resp, "GET");
    if (tail[0])
        return content(c, hash, resp);
    json_t *rec = NULL;
    int rc = pdb_dataset_get(c->db, hash, &rec);
    return rc ? reply_err(resp, rc, "dataset") : reply(resp, 200, rec);
}

int pb_api_dataset_resolve(void *ctx, const char *hash, ps_dataset_ref_t *out)
{
    pb_coord_t *c = ctx;
    return pdb_dataset_ref(c->db, hash, out->suite, sizeof out->suite, &out->buckets,
                           &out->counts, &out->n_buckets);
}

int pb_api_dataset_task(pb_coord_t *c, json_t *task)
{
    const char *hash = json_string_value(json_object_get(task, "dataset"));
    char url[512];
    if (hash == NULL || c->http == NULL)
        return 0;
    /* A wildcard listen address says nothing about how workers reach us:
     * loopback is the guess, and a worker's --http overrides it. */
    const char *host = c->cfg.listen_host;
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        host = "127.0.0.1";
    snprintf(url, sizeof url,
             strchr(host, ':') ? "http://[%s]:%d/api/v1/datasets/%s/content"
                               : "http://%s:%d/api/v1/datasets/%s/content",
             host, pb_http_port(c->http), hash);
    return json_object_set_new(task, "dataset_url", json_string(url)) ? PB_ENOMEM : 0;
}
