/* GET /api/v1/jobs/{id}/items/{task_id}/{idx}/prompt: the items table keeps
 * a prompt's hash, not its text (a 16k-token prompt per item would dwarf the
 * store), and prompts are deterministic, so the text is regenerated here on
 * demand and proven to be the one the model saw by its hash. */
#include "config.h"
#include "coordinator/api_items.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/rng.h"
#include "suites/dataset.h"
#include "suites/suite.h"

/* The dataset line item idx of bucket comes from: the idx-th line with
 * that bucket in file order, as the worker indexes it (worker/datasets.c).
 * The scan is linear in the file; it runs only when a user opens a prompt. */
static int dataset_item(pdb_t *db, const char *hash, const ps_run_t *run, uint64_t idx,
                        ps_item_t *item, pb_err_t *err)
{
    char path[4096];
    struct stat st;
    const char *map = MAP_FAILED, *line;
    size_t pos = 0, lineno = 0, n, seen = 0;
    int rc = pdb_dataset_path(db, hash, path, sizeof path);
    int fd = rc ? -1 : open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
        rc = pb_err_set(err, PB_ENOTFOUND, "dataset", "the run's dataset file is missing");
        goto out;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = pb_err_set(err, PB_EIO, "dataset", "cannot map the dataset: %s", strerror(errno));
        goto out;
    }
    rc = pb_err_set(err, PB_ENOTFOUND, "idx", "the dataset has no such line");
    while (ps_dataset_next_line(map, (size_t)st.st_size, &pos, &line, &n, &lineno)) {
        int64_t b = 0;
        pb_err_t lerr = {0};
        if (ps_dataset_check_line(run->suite->name, line, n, lineno, &b, &lerr) || b != run->bucket)
            continue;
        if (seen++ == idx) {
            rc = ps_dataset_item(run, line, n, lineno, idx, item, err);
            break;
        }
    }
out:
    if (map != MAP_FAILED)
        munmap((void *)map, (size_t)st.st_size);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* s capped at max bytes: its head and tail around an ellipsis, cut on
 * UTF-8 character boundaries; new reference. */
static json_t *capped(const char *s, size_t max, int *truncated)
{
    size_t len = strlen(s);
    *truncated = len > max;
    if (len <= max)
        return json_string(s);
    size_t head = max / 2, tail = len - (max - head);
    while (head > 0 && ((unsigned char)s[head] & 0xC0) == 0x80)
        head--;
    while (tail < len && ((unsigned char)s[tail] & 0xC0) == 0x80)
        tail++;
    char mid[96];
    int m = snprintf(mid, sizeof mid, "\n\xE2\x80\xA6 [%zu characters left out] \xE2\x80\xA6\n",
                     tail - head);
    char *buf = malloc(head + (size_t)m + (len - tail) + 1);
    if (buf == NULL)
        return NULL;
    memcpy(buf, s, head);
    memcpy(buf + head, mid, (size_t)m);
    memcpy(buf + head + m, s + tail, len - tail + 1);
    json_t *v = json_string(buf);
    free(buf);
    return v;
}

/* "{task_id}/{idx}/prompt" -> numbers; -1 when malformed. */
static int parse_rest(const char *rest, int64_t *task_id, int64_t *idx)
{
    char *end;
    errno = 0;
    long long t = strtoll(rest, &end, 10);
    if (errno || end == rest || *end != '/' || t <= 0 || rest[0] == '-' || rest[0] == '+')
        return -1;
    const char *p = end + 1;
    long long i = strtoll(p, &end, 10);
    if (errno || end == p || i < 0 || *p == '-' || *p == '+' || strcmp(end, "/prompt") != 0)
        return -1;
    *task_id = t;
    *idx = i;
    return 0;
}

void pb_api_item_prompt(pb_coord_t *c, int64_t job_id, const pb_http_req_t *req,
                        pb_http_resp_t *resp, const char *rest)
{
    int64_t task_id, idx;
    char buf[32], hex[17];
    long max = PB_PROMPT_MAX_DEFAULT;
    json_t *src = NULL, *params = NULL, *out = NULL, *parts = NULL;
    ps_item_t item = {0};
    ps_run_t run = {0};
    int run_open = 0, trunc = 0;
    pb_err_t err = {0};

    if (parse_rest(rest, &task_id, &idx)) {
        pb_http_resp_error(resp, 404, "no such item resource: expected items/TASK_ID/IDX/prompt",
                           NULL);
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        pb_http_resp_header(resp, "Allow", "GET");
        pb_http_resp_error(resp, 405, "method not allowed", NULL);
        return;
    }
    int present = pb_http_query_param(req, "max", buf, sizeof buf);
    if (present > 0 && buf[0]) {
        char *end;
        errno = 0;
        max = strtol(buf, &end, 10);
        if (*end || errno || max < 16 || max > PB_PROMPT_MAX_LIMIT)
            present = -1;
    }
    if (present < 0) {
        pb_http_resp_error(resp, 400, "query parameter max must be an integer in [16, 1048576]",
                           "max");
        return;
    }
    int rc = pdb_item_source(c->db, job_id, task_id, idx, &src);
    if (rc) {
        pb_api_reply_rc(resp, rc, "item");
        return;
    }
    const char *suite_name = json_string_value(json_object_get(src, "suite"));
    const char *task = json_string_value(json_object_get(src, "task"));
    const char *dataset = json_string_value(json_object_get(src, "dataset"));
    const char *stored = json_string_value(json_object_get(src, "prompt_hash"));
    int64_t bucket = json_integer_value(json_object_get(src, "bucket"));
    uint64_t seed = (uint64_t)json_integer_value(json_object_get(src, "seed"));
    const ps_suite_t *suite = ps_suite_find(suite_name);
    int status = 500;

    if (suite == NULL || ps_suite_task(suite, task) == NULL) {
        pb_err_set(&err, PB_ENOTFOUND, "suite", "this coordinator has no suite task %s/%s",
                   suite_name ? suite_name : "?", task ? task : "?");
        status = 409;
        goto out;
    }
    if (json_integer_value(json_object_get(src, "version")) != suite->version) {
        pb_err_set(&err, PB_ESTATE, "version", "the run used %s generator version %lld, this "
                   "coordinator has %d", suite->name,
                   (long long)json_integer_value(json_object_get(src, "version")), suite->version);
        status = 409;
        goto out;
    }
    if (dataset && suite->corpus) {
        pb_err_set(&err, PB_EUNSUPPORTED, "dataset",
                   "prompts of ranking runs over a dataset are not regenerated here");
        status = 501;
        goto out;
    }
    /* The worker normalises the stored params again; so does this. */
    rc = suite->normalize(task, json_object_get(src, "params"), &params, &err);
    if (rc == 0)
        rc = ps_run_open(&run, suite, task, params, bucket, seed);
    if (rc) {
        if (!err.msg[0])
            pb_err_set(&err, rc, "params", "cannot open the run: %s", pb_strerror(rc));
        goto out;
    }
    run_open = 1;
    rc = dataset ? dataset_item(c->db, dataset, &run, (uint64_t)idx, &item, &err)
                 : suite->generate(&run, (uint64_t)idx, &item);
    if (rc) {
        if (!err.msg[0])
            pb_err_set(&err, rc, "idx", "generating item %lld failed: %s", (long long)idx,
                       pb_strerror(rc));
        status = rc == PB_ENOTFOUND ? 404 : 500;
        goto out;
    }
    pb_hash_hex(item.prompt_hash, hex);
    if (stored == NULL || strcmp(stored, hex) != 0) {
        pb_err_set(&err, PB_ESTATE, "prompt_hash",
                   "the regenerated prompt's hash %s differs from the stored %s: the model's "
                   "tokenizer sized this prompt, or the generator changed", hex,
                   stored ? stored : "(none)");
        status = 409;
        goto out;
    }
    if (item.n_parts) {
        parts = json_array();
        for (size_t k = 0; parts && k < item.n_parts; k++) {
            int t;
            json_t *p = json_pack("{s:o?, s:s?}", "prompt", capped(item.parts[k], (size_t)max, &t),
                                  "reference", item.part_refs[k]);
            if (json_array_append_new(parts, p)) {
                json_decref(parts);
                parts = NULL;
            }
        }
    }
    /* capped() sets trunc: called before json_pack reads it */
    json_t *prompt = capped(item.prompt ? item.prompt : "", (size_t)max, &trunc);
    out = json_pack("{s:I, s:I, s:I, s:O, s:I, s:s, s:s, s:o?, s:s?, s:I, s:I, s:b, s:s, s:s, "
                    "s:O?, s:o?}",
                    "job_id", (json_int_t)job_id, "task_id", (json_int_t)task_id, "idx",
                    (json_int_t)idx, "run", json_object_get(src, "run"), "bucket",
                    (json_int_t)bucket, "suite", suite->name, "task", task, "prompt",
                    prompt, "reference",
                    item.reference, "length",
                    (json_int_t)strlen(item.prompt ? item.prompt : ""), "length_unit_value",
                    (json_int_t)item.length, "truncated", trunc, "prompt_hash", hex, "unit",
                    ps_run_unit(&run), "meta", item.meta, "parts", parts);
    parts = NULL;
    if (out == NULL)
        pb_err_set(&err, PB_ENOMEM, "", "out of memory");
out:
    if (out)
        pb_api_reply_json(resp, 200, out);
    else
        pb_http_resp_error(resp, status, err.msg, err.field[0] ? err.field : NULL);
    if (run_open)
        ps_run_close(&run);
    ps_item_clear(&item);
    json_decref(params);
    json_decref(src);
}
