/* User datasets over HTTP: POST /api/v1/datasets?suite=S&name=N stores a
 * JSONL body once every line checks (suites/dataset.h) under its SHA-256;
 * GET lists them, GET /{hash} is one record, GET /{hash}/content the bytes
 * workers fetch. The checks, the hash and the file of an upload run on
 * libuv's thread pool (a 256 MiB body takes seconds, longer than workers
 * wait for a heartbeat); the row goes in on the loop thread afterwards. */
#include "coordinator/api_datasets.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sha256.h"
#include "db/store.h"
#include "suites/dataset.h"
#include "suites/suite.h"

/* One upload between its handler and its answer. The body is owned here:
 * the connection may close before the work ends. */
typedef struct upload_job {
    uv_work_t work;
    pb_coord_t *c;
    pb_http_deferred_t *reply; /* NULL: nobody waits for the answer */
    char *body;
    size_t len;
    char suite[64], name[PB_DATASET_NAME_MAX + 1], hash[PB_SHA256_HEX], dir[PATH_MAX];
    ps_dataset_stats_t st;
    pb_err_t err;
    int scan_rc, write_rc, had_file;
} upload_job_t;

/* Thread pool: nothing here touches the coordinator or the store's handle. */
static void upload_work(uv_work_t *w)
{
    upload_job_t *j = w->data;
    j->scan_rc = ps_dataset_scan(j->suite, j->body, j->len, &j->st, &j->err);
    if (j->scan_rc)
        return; /* the first bad line, and nothing stored */
    pb_sha256_hex(j->body, j->len, j->hash);
    j->write_rc = pdb_dataset_file_write(j->dir, j->hash, j->body, j->len, &j->had_file);
}

/* Loop thread: record the row and answer, then free the job. */
static void upload_done(uv_work_t *w, int status)
{
    upload_job_t *j = w->data;
    pb_http_resp_t resp;
    json_t *rec = NULL;
    int created = 0, rc;

    pb_http_resp_init(&resp);
    if (status != 0) {
        pb_http_resp_error(&resp, 503, "the upload was cancelled (shutting down)", NULL);
    } else if (j->scan_rc) {
        pb_http_resp_error(&resp, 400, j->err.msg, j->err.field[0] ? j->err.field : NULL);
    } else if (j->write_rc) {
        pb_api_reply_rc(&resp, j->write_rc, "dataset");
    } else {
        pdb_dataset_meta_t m = {.hash = j->hash, .name = j->name[0] ? j->name : "dataset",
                                .suite = j->suite, .lines = j->st.lines,
                                .buckets = j->st.buckets, .counts = j->st.counts,
                                .n_buckets = j->st.n_buckets};
        rc = pdb_dataset_record(j->c->db, &m, j->len, j->had_file, &created, &rec);
        if (rc)
            pb_api_reply_rc(&resp, rc, "dataset");
        else
            pb_api_reply_json(&resp, created ? 201 : 200, rec);
        if (created)
            pb_info("dataset %.16s stored: %s, %zu bytes, %llu lines", j->hash, j->suite, j->len,
                    (unsigned long long)m.lines);
    }
    if (j->reply)
        pb_http_complete(j->reply, &resp);
    else
        free(resp.body);
    ps_dataset_stats_free(&j->st);
    free(j->body);
    free(j);
}

static void upload(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    char suite[64], name[PB_DATASET_NAME_MAX + 1];
    upload_job_t *j = NULL;
    int rc;

    if (pb_api_query_str(req, resp, "suite", suite, sizeof suite) ||
        pb_api_query_str(req, resp, "name", name, sizeof name))
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
    if ((j = calloc(1, sizeof *j)) == NULL)
        return pb_http_resp_error(resp, 503, "out of memory", NULL);
    if ((rc = pdb_datasets_dir(c->db, j->dir, sizeof j->dir))) {
        free(j);
        return pb_api_reply_rc(resp, rc, "dataset");
    }
    j->c = c;
    j->work.data = j;
    snprintf(j->suite, sizeof j->suite, "%s", suite);
    snprintf(j->name, sizeof j->name, "%s", name);
    if ((j->body = pb_http_req_take_body(req, &j->len)) == NULL) {
        free(j);
        return pb_http_resp_error(resp, 503, "out of memory", NULL);
    }
    /* Queued first: upload_done cannot run before this handler returns (it
     * runs on this thread), so j->reply is set in time. */
    if ((rc = uv_queue_work(c->loop, &j->work, upload_work, upload_done)) != 0) {
        free(j->body);
        free(j);
        return pb_http_resp_error(resp, 503, "cannot start the upload", NULL);
    }
    j->reply = pb_http_defer(req);
    if (j->reply == NULL) /* the work still runs and stores; its answer is dropped */
        pb_http_resp_error(resp, 503, "out of memory", NULL);
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
        return pb_api_reply_rc(resp, rc, "dataset");
    if ((rc = pdb_dataset_path(c->db, hash, path, sizeof path)))
        return pb_api_reply_rc(resp, rc, "dataset");
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
        return rc ? pb_api_reply_rc(resp, rc, "datasets") : pb_api_reply_json(resp, 200, out);
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
    return rc ? pb_api_reply_rc(resp, rc, "dataset") : pb_api_reply_json(resp, 200, rec);
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
