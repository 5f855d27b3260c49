/* The task runner: TASK body in, RESULT body out. Items come from the suite's
 * deterministic generator, predictions from the backend in batches, scores
 * from the suite's scorer (a measuring suite, kernels, times each item itself
 * instead). Runs on a session runner thread; keeps no state between calls. */
#include "worker/runner.h"

#include "common/items.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/proto.h"
#include "common/rng.h"
#include "common/util.h"
#include "suites/suite.h"
#include "worker/backend.h"
#include "worker/breakdown.h"
#include "worker/rank.h"
#include "common/sha256.h"
#include "common/utf8.h"
#include "common/version.h"
#include "worker/datasets.h"

/* What pb_runner_run reads out of a TASK body; strings borrowed from it. */
typedef struct task_spec {
    const char *suite;
    const char *task;
    const json_t *params;
    int64_t bucket;
    int64_t item_lo, item_hi;
    uint64_t seed;
    const json_t *model;
    const char *backend;
    int64_t batch;
    int64_t max_tokens; /* 0: derived per item from its reference */
    int64_t version;    /* -1: not given */
    /* A dataset run: items are the dataset's lines (worker/datasets.h). */
    const char *dataset, *dataset_url, *dataset_cache;
} task_spec_t;

static int parse_task(const json_t *t, task_spec_t *s, pb_err_t *err)
{
    int64_t seed = 0;
    memset(s, 0, sizeof *s);
    if (!json_is_object(t))
        return pb_err_set(err, PB_EINVAL, "", "task must be a JSON object");
    int rc = pb_json_str(t, "suite", NULL, 1, &s->suite, NULL, err);
    rc = rc ? rc : pb_json_str(t, "task", NULL, 1, &s->task, NULL, err);
    rc = rc ? rc : pb_json_int(t, "bucket", 0, INT64_MIN, INT64_MAX, &s->bucket, NULL, err);
    rc = rc ? rc : pb_json_int(t, "item_lo", 0, 0, INT64_MAX, &s->item_lo, NULL, err);
    rc = rc ? rc : pb_json_int(t, "item_hi", 0, 0, INT64_MAX, &s->item_hi, NULL, err);
    rc = rc ? rc : pb_json_int(t, "seed", 0, INT64_MIN, INT64_MAX, &seed, NULL, err);
    rc = rc ? rc : pb_json_int(t, "version", -1, -1, INT32_MAX, &s->version, NULL, err);
    if (rc)
        return rc;
    s->seed = (uint64_t)seed;
    s->params = json_object_get(t, "params");
    if (s->params && !json_is_null(s->params) && !json_is_object(s->params))
        return pb_err_set(err, PB_EINVAL, "params", "params must be an object");
    s->dataset = json_string_value(json_object_get(t, "dataset"));
    s->dataset_url = json_string_value(json_object_get(t, "dataset_url"));
    s->dataset_cache = json_string_value(json_object_get(t, "dataset_cache"));
    if (json_object_get(t, "bucket") == NULL)
        return pb_err_set(err, PB_EINVAL, "bucket", "bucket is required");
    if (s->item_hi < s->item_lo)
        return pb_err_set(err, PB_EINVAL, "item_hi", "item_hi (%lld) is below item_lo (%lld)",
                          (long long)s->item_hi, (long long)s->item_lo);
    if (s->item_hi - s->item_lo > PB_RUNNER_MAX_ITEMS)
        return pb_err_set(err, PB_EINVAL, "item_hi", "a task holds at most %d items",
                          PB_RUNNER_MAX_ITEMS);
    s->model = json_object_get(t, "model");
    if (!json_is_object(s->model))
        return pb_err_set(err, PB_EINVAL, "model", "model must be an object");
    rc = pb_json_str(s->model, "backend", NULL, 1, &s->backend, "model", err);
    /* A remote model (openai) works on max_concurrency requests at once:
     * a batch of four times that keeps them all busy while a batch's
     * slowest requests finish. The backend checks the value itself. */
    json_int_t conc = json_integer_value(json_object_get(s->model, "max_concurrency"));
    int64_t dflt_batch = conc > PB_RUNNER_BATCH / 4 ? 4 * (int64_t)conc : PB_RUNNER_BATCH;
    if (dflt_batch > PB_RUNNER_BATCH_MAX)
        dflt_batch = PB_RUNNER_BATCH_MAX;
    rc = rc ? rc
            : pb_json_int(s->model, "batch_size", dflt_batch, 1, PB_RUNNER_BATCH_MAX,
                          &s->batch, "model", err);
    rc = rc ? rc : pb_json_int(s->model, "max_tokens", 0, 0, 1 << 20, &s->max_tokens, "model", err);
    return rc;
}

/* Prefix the suite's field name ("digits") with "params." for the FAIL text. */
static int params_error(int rc, pb_err_t *err)
{
    if (err && err->field[0]) {
        char f[sizeof err->field + 8];
        snprintf(f, sizeof f, "params.%s", err->field);
        size_t n = strlen(f);
        if (n >= sizeof err->field)
            n = sizeof err->field - 1;
        memcpy(err->field, f, n);
        err->field[n] = '\0';
    }
    return rc;
}

/* The bucket must be one the suite itself would plan for these params. */
static int check_bucket(const ps_suite_t *suite, const char *task, const json_t *params,
                        int64_t bucket, pb_err_t *err)
{
    int64_t *b = NULL;
    size_t n = 0;
    int rc = suite->buckets(task, params, &b, &n);
    if (rc)
        return pb_err_set(err, rc, "params", "cannot list buckets: %s", pb_strerror(rc));
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (b[i] == bucket)
            found = 1;
    free(b);
    if (!found)
        return pb_err_set(err, PB_EINVAL, "bucket", "bucket %lld is not one of the run's buckets",
                          (long long)bucket);
    return 0;
}

/* Model replies are outside input: each maximal invalid UTF-8 subpart
 * becomes U+FFFD (common/utf8.h: the same bytes an OpenAI-compatible
 * server sends, posbench-serve included) and the result is cut to
 * PB_RUNNER_PRED_MAX bytes on a character boundary, so a reply can neither
 * swell the frame nor break the JSON. Returns the text to send (text
 * itself, or *copy, which the caller frees) and its length; NULL when out
 * of memory. */
static const char *clean_text(const char *text, size_t *len, char **copy)
{
    size_t n = strlen(text);
    *copy = NULL;
    if (pb_utf8_valid_prefix(text, n) != n) {
        pb_buf_t b;
        pb_buf_init(&b, 0);
        if (pb_utf8_clean(text, n, &b) || pb_buf_append(&b, "", 1)) {
            pb_buf_free(&b);
            return NULL;
        }
        *copy = b.data; /* NUL-terminated: its own allocation */
        text = b.data;
        n = b.len - 1;
    }
    if (n > PB_RUNNER_PRED_MAX) {
        n = PB_RUNNER_PRED_MAX;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    *len = n;
    return text;
}

/* The item's meta with its "length" (in the run's unit) filled in when the
 * suite did not set one, so every stored item records it. */
static int meta_with_length(ps_item_t *it)
{
    if (it->meta == NULL && (it->meta = json_object()) == NULL)
        return PB_ENOMEM;
    if (!json_is_object(it->meta) || json_object_get(it->meta, "length"))
        return 0;
    return json_object_set_new(it->meta, "length", json_integer(it->length)) ? PB_ENOMEM : 0;
}

/* Append one scored item to the RESULT items text (common/items.h). */
static int item_write(pb_buf_t *out, ps_item_t *it, const pb_gen_req_t *q, double score)
{
    char hex[17], *pred_copy = NULL, *err_copy = NULL, *meta = NULL;
    int rc = PB_ENOMEM;
    pb_item_rec_t r = {.idx = (int64_t)it->idx, .prompt_hash = hex, .score = score, .has_score = 1,
                       .latency_us = q->latency_us, .tokens = q->tokens};
    pb_hash_hex(it->prompt_hash, hex);
    r.prediction = clean_text(q->error || q->text == NULL ? "" : q->text, &r.prediction_len,
                              &pred_copy);
    r.reference = it->reference ? it->reference : "";
    r.reference_len = strlen(r.reference);
    if (r.prediction == NULL)
        goto out;
    if (q->error && (r.error = clean_text(q->error, &r.error_len, &err_copy)) == NULL)
        goto out;
    if (meta_with_length(it))
        goto out;
    /* meta travels as text: the coordinator stores it without re-encoding. */
    meta = json_dumps(it->meta, JSON_COMPACT);
    if (meta == NULL)
        goto out;
    r.meta = meta;
    r.meta_len = strlen(meta);
    rc = pb_items_add(out, &r);
out:
    free(pred_copy);
    free(err_copy);
    free(meta);
    return rc;
}

static int cancelled(volatile int *cancel)
{
    return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED);
}

/* Everything one run needs while its batches go through. */
typedef struct run_ctx {
    task_spec_t ts;
    const ps_suite_t *suite;
    ps_run_t run;
    const pb_backend_ops_t *ops;
    pb_backend_t *be;
    ps_tokenizer_t tok; /* the backend's, when it has one (run.tok then) */
    ps_item_t *its;
    /* Requests: one per item, or one per part of a multi-part item, whose
     * request items are the views (borrowing the item's texts). Item i's
     * requests are first_req[i] .. first_req[i + 1] - 1. */
    pb_gen_req_t *reqs;
    ps_item_t *views;
    size_t *first_req;
    size_t n;  /* items of the current batch held in its */
    size_t nq; /* requests of the current batch held in reqs */
    size_t n_metrics;
    /* "<entry>@<metric>" for each suite breakdown entry and metric, entry
     * major (common/proto.h): the per-group metric sums' keys. */
    char **metric_keys;
    size_t n_entries;
    double metric_sum[PS_MAX_METRICS];
    pb_buf_t *items; /* the caller's: RESULT items text */
    size_t n_items;
    double score_sum;
    pb_breakdown_t bd; /* per (suite breakdown entry, value) over the task */
    pb_dataset_t *ds;  /* a dataset run's dataset, else NULL */
    int64_t gen_us, score_us;
} run_ctx_t;

static void batch_clear(run_ctx_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        ps_item_clear(&c->its[i]);
    for (size_t i = 0; i < c->nq; i++) {
        free(c->reqs[i].text);
        free(c->reqs[i].error);
        memset(&c->reqs[i], 0, sizeof c->reqs[i]);
    }
    c->n = c->nq = 0;
}

/* Queue item i's requests: the item itself, or a view per part. */
static int queue_item(run_ctx_t *c, size_t i, pb_err_t *err)
{
    ps_item_t *it = &c->its[i];
    size_t parts = it->n_parts ? it->n_parts : 1;
    if (it->n_parts > PS_MAX_PARTS)
        return pb_err_set(err, PB_EINVAL, "", "item %llu has %zu parts, at most %d allowed",
                          (unsigned long long)it->idx, it->n_parts, PS_MAX_PARTS);
    c->first_req[i] = c->nq;
    for (size_t k = 0; k < parts; k++) {
        pb_gen_req_t *q = &c->reqs[c->nq];
        const ps_item_t *view = it;
        if (it->n_parts) {
            ps_item_t *v = &c->views[c->nq];
            *v = (ps_item_t){.idx = it->idx, .bucket = it->bucket, .prompt = it->parts[k],
                             .reference = it->part_refs[k], .meta = it->meta};
            v->prompt_hash = pb_hash_str(PB_HASH_INIT, v->prompt);
            view = v;
        }
        q->item = view;
        /* Without a model-given budget: room for the answer and some slack. */
        q->max_tokens = c->ts.max_tokens > 0
                            ? (int)c->ts.max_tokens
                            : (int)strlen(view->reference ? view->reference : "") + 16;
        c->nq++;
    }
    c->first_req[i + 1] = c->nq;
    return 0;
}

/* A multi-part item's answers as one request: text the JSON array of the
 * parts' answers, error the parts' errors joined by "; " (NULL when none),
 * latency and tokens summed. The caller frees text and error. */
static int merge_parts(const pb_gen_req_t *q, size_t n, pb_gen_req_t *out)
{
    json_t *arr = json_array();
    pb_buf_t errs;
    pb_buf_init(&errs, 0);
    memset(out, 0, sizeof *out);
    for (size_t k = 0; arr && k < n; k++) {
        if (json_array_append_new(arr, json_string(q[k].text && !q[k].error ? q[k].text : "")))
            goto oom;
        out->latency_us += q[k].latency_us;
        out->tokens += q[k].tokens;
        if (q[k].error && ((errs.len && pb_buf_puts(&errs, "; ")) ||
                           pb_buf_printf(&errs, "part %zu: %s", k + 1, q[k].error)))
            goto oom;
    }
    if (arr == NULL || (out->text = json_dumps(arr, JSON_COMPACT)) == NULL)
        goto oom;
    json_decref(arr);
    out->error = errs.data; /* NULL when no part failed */
    return 0;
oom:
    json_decref(arr);
    pb_buf_free(&errs);
    return PB_ENOMEM;
}

/* Append a scored item to the results and count it in the sums and groups. */
static int record_item(run_ctx_t *c, ps_item_t *it, const pb_gen_req_t *q, double sc,
                       const double *m, pb_err_t *err)
{
    int rc = item_write(c->items, it, q, sc);
    if (rc)
        return pb_err_set(err, rc, "", "%s while encoding the results",
                          rc == PB_ETOOBIG ? "results too large" : "out of memory");
    rc = pb_breakdown_add_item(&c->bd, it->meta, sc, err);
    for (size_t k = 0; rc == 0 && k < c->n_metrics; k++) {
        if (isnan(m[k]))
            continue; /* undefined for this item: counted nowhere */
        rc = pb_breakdown_add(&c->bd, PB_GROUP_METRIC, c->suite->metrics[k], m[k], err);
        c->metric_sum[k] += m[k];
    }
    for (size_t e = 0; rc == 0 && c->n_metrics && e < c->n_entries; e++) {
        char value[PB_BREAKDOWN_VALUE_MAX + 1];
        int vrc = pb_breakdown_value(it->meta, c->suite->breakdown[e], value, sizeof value);
        if (vrc == PB_ENOTFOUND)
            continue; /* the item is in no group of this entry */
        if (vrc)
            return pb_err_set(err, vrc, "", "breakdown value of item %llu too long",
                              (unsigned long long)it->idx);
        for (size_t k = 0; rc == 0 && k < c->n_metrics; k++)
            if (!isnan(m[k]))
                rc = pb_breakdown_add(&c->bd, c->metric_keys[e * c->n_metrics + k], value, m[k],
                                      err);
    }
    if (rc == 0)
        rc = pb_breakdown_add(&c->bd, PB_GROUP_UNIT, ps_run_unit(&c->run), 0, err);
    if (rc)
        return rc;
    c->n_items++;
    c->score_sum += sc;
    return 0;
}

/* Score item i from its requests and append it to the results. */
static int score_item(run_ctx_t *c, size_t i, pb_err_t *err)
{
    ps_item_t *it = &c->its[i];
    const pb_gen_req_t *q = &c->reqs[c->first_req[i]];
    pb_gen_req_t merged;
    double sc = 0, m[PS_MAX_METRICS] = {0};
    int rc;
    if (it->n_parts) {
        if (merge_parts(q, it->n_parts, &merged))
            return pb_err_set(err, PB_ENOMEM, "", "out of memory");
        q = &merged;
    }
    /* A failed item counts in n with score 0 and zero metrics, in the groups too. */
    if (q->error == NULL) {
        rc = c->suite->score(&c->run, it, q->text ? q->text : "", &sc,
                             c->n_metrics ? m : NULL);
        if (rc) {
            rc = pb_err_set(err, rc, "", "scoring item %llu: %s", (unsigned long long)it->idx,
                            pb_strerror(rc));
            goto out;
        }
    }
    rc = record_item(c, it, q, sc, m, err);
out:
    if (q == &merged) {
        free(merged.text);
        free(merged.error);
    }
    return rc;
}

/* A ranking suite's scored query (worker/rank.h's emit): recorded as any item. */
static int rank_emit(void *ctx, ps_item_t *it, const char *prediction, int64_t latency_us,
                     double score, const double *metrics, pb_err_t *err)
{
    pb_gen_req_t q = {.item = it, .text = (char *)prediction, .latency_us = latency_us};
    return record_item(ctx, it, &q, score, metrics, err);
}

/* Rank the task's queries (worker/rank.c) instead of generating answers. */
static int run_ranking(run_ctx_t *c, volatile int *cancel, pb_runner_progress_fn progress,
                       void *ctx, pb_err_t *err)
{
    pb_rank_task_t t = {.run = &c->run, .ops = c->ops, .be = c->be, .model = c->ts.model,
                        .seed = c->ts.seed, .item_lo = c->ts.item_lo, .item_hi = c->ts.item_hi,
                        .batch = c->ts.batch, .cancel = cancel, .emit = rank_emit, .ctx = c,
                        .progress = progress, .progress_ctx = ctx, .model_us = &c->gen_us,
                        .score_us = &c->score_us};
    return pb_rank_run(&t, err);
}

/* A measuring suite's item (suite.h's measure): timed on this worker, no
 * backend asked; its latency is the measurement's wall time. */
static int measure_item(run_ctx_t *c, ps_item_t *it, pb_err_t *err)
{
    char *pred = NULL;
    double sc = 0, m[PS_MAX_METRICS] = {0};
    int64_t t0 = pb_now_us();
    int rc = c->suite->measure(&c->run, it, &pred, &sc, c->n_metrics ? m : NULL, err);
    pb_gen_req_t q = {.item = it, .text = pred, .latency_us = pb_now_us() - t0};
    c->gen_us += q.latency_us;
    if (rc == 0)
        rc = record_item(c, it, &q, sc, m, err);
    free(pred);
    return rc;
}

/* Generate, predict and score items [lo, lo + n), appending to c->items. */
static int run_batch(run_ctx_t *c, int64_t lo, size_t n, volatile int *cancel, pb_err_t *err)
{
    int rc;
    for (size_t i = 0; i < n; i++) {
        c->n = i + 1; /* so batch_clear frees a partly generated item too */
        if (c->ds && (rc = pb_dataset_item(c->ds, &c->run, (uint64_t)lo + i, &c->its[i], err)))
            return rc;
        if (c->ds == NULL)
            rc = c->suite->generate(&c->run, (uint64_t)lo + i, &c->its[i]);
        if (rc == 0 && c->tok.failed)
            return pb_err_set(err, PB_EBACKEND, "", "the model's tokenizer failed on item %lld: %s",
                              (long long)lo + (long long)i, pb_strerror(c->tok.failed));
        if (rc)
            return pb_err_set(err, rc, "", "generating item %lld: %s", (long long)lo + (long long)i,
                              pb_strerror(rc));
        if (c->suite->measure) {
            if ((rc = measure_item(c, &c->its[i], err)))
                return rc;
            if (cancelled(cancel))
                return pb_err_set(err, PB_ECANCELLED, "", "cancelled");
            continue;
        }
        rc = queue_item(c, i, err);
        if (rc)
            return rc;
    }
    if (c->suite->measure) {
        batch_clear(c);
        return 0;
    }
    int64_t t0 = pb_now_us();
    rc = c->ops->generate(c->be, c->reqs, c->nq, err);
    c->gen_us += pb_now_us() - t0;
    if (rc)
        return rc == PB_ENOMEM ? rc : PB_EBACKEND;
    if (cancelled(cancel))
        return pb_err_set(err, PB_ECANCELLED, "", "cancelled");
    t0 = pb_now_us();
    for (size_t i = 0; i < n; i++) {
        rc = score_item(c, i, err);
        if (rc)
            return rc;
    }
    c->score_us += pb_now_us() - t0;
    batch_clear(c);
    return 0;
}

/* ps_tokenizer_t over the backend's count_tokens. */
static int tok_count(void *ctx, const char *text, size_t len, int64_t *n)
{
    run_ctx_t *c = ctx;
    return c->ops->count_tokens(c->be, text, len, n);
}

/* c->metric_keys for the suite's breakdown entries and metrics. */
static int metric_keys_make(run_ctx_t *c)
{
    const char *const *bd = c->suite->breakdown;
    size_t ne = 0;
    while (c->n_metrics && bd && bd[ne])
        ne++;
    if (ne == 0)
        return 0;
    c->metric_keys = calloc(ne * c->n_metrics, sizeof *c->metric_keys);
    if (c->metric_keys == NULL)
        return PB_ENOMEM;
    c->n_entries = ne;
    for (size_t e = 0; e < ne; e++)
        for (size_t k = 0; k < c->n_metrics; k++) {
            pb_buf_t b;
            pb_buf_init(&b, 0);
            if (pb_buf_printf(&b, "%s%c%s", bd[e], PB_GROUP_METRIC_SEP, c->suite->metrics[k])) {
                pb_buf_free(&b);
                return PB_ENOMEM;
            }
            c->metric_keys[e * c->n_metrics + k] = b.data;
        }
    return 0;
}

static void metric_keys_free(run_ctx_t *c)
{
    for (size_t i = 0; c->metric_keys && i < c->n_entries * c->n_metrics; i++)
        free(c->metric_keys[i]);
    free(c->metric_keys);
}

/* Look up suite, task, params, bucket and backend, and open run and backend. */
static int run_setup(run_ctx_t *c, const json_t *task, json_t **params, int *run_open,
                     pb_err_t *err)
{
    task_spec_t *ts = &c->ts;
    int rc = parse_task(task, ts, err);
    if (rc)
        return rc;
    c->suite = ps_suite_find(ts->suite);
    if (c->suite == NULL)
        return pb_err_set(err, PB_ENOTFOUND, "suite", "unknown suite '%s'", ts->suite);
    if (ps_suite_task(c->suite, ts->task) == NULL)
        return pb_err_set(err, PB_ENOTFOUND, "task", "suite %s has no task '%s'", c->suite->name,
                          ts->task);
    if (ts->version >= 0 && ts->version != c->suite->version)
        /* Another worker build may have the generator the coordinator wants. */
        return pb_err_set(err, PB_ESTALE, "version",
                          "suite %s is version %d here, the task wants %lld", c->suite->name,
                          c->suite->version, (long long)ts->version);
    rc = c->suite->normalize(ts->task, json_is_null(ts->params) ? NULL : ts->params, params, err);
    if (rc)
        return params_error(rc, err);
    /* A dataset's buckets are its own; fetched once, cached after. */
    rc = ts->dataset ? pb_dataset_open(ts->dataset_cache, ts->dataset_url, ts->dataset, &c->ds, err)
                     : check_bucket(c->suite, ts->task, *params, ts->bucket, err);
    if (rc)
        return rc;
    const char *data = NULL;
    size_t data_len = 0;
    if (c->ds && c->suite->corpus)
        pb_dataset_bytes(c->ds, &data, &data_len); /* the suite reads the whole file */
    rc = ps_run_open_data(&c->run, c->suite, ts->task, *params, ts->bucket, ts->seed, data,
                          data_len);
    if (rc)
        return pb_err_set(err, rc, "params", "cannot open the run: %s", pb_strerror(rc));
    *run_open = 1;
    pb_breakdown_init(&c->bd, c->suite->breakdown);
    c->ops = pb_backend_find(ts->backend);
    if (c->ops == NULL)
        return pb_err_set(err, PB_EUNSUPPORTED, "model.backend",
                          "backend '%s' is not available on this worker", ts->backend);
    rc = c->ops->open(ts->model, ts->seed, &c->be, err);
    if (rc)
        /* Bad options are the task's fault; a missing model or a server that
         * is down may be fine on another worker. */
        return rc == PB_EINVAL || rc == PB_ENOMEM ? rc : PB_EBACKEND;
    /* A model with a tokenizer sizes prompts in tokens; the probe tells
     * whether this model has one. */
    int64_t probe;
    if (c->ops->count_tokens && c->ops->count_tokens(c->be, "", 0, &probe) == 0) {
        c->tok = (ps_tokenizer_t){.ctx = c, .count = tok_count};
        c->run.tok = &c->tok;
    }
    c->n_metrics = ps_suite_n_metrics(c->suite);
    if (c->n_metrics > PS_MAX_METRICS)
        return pb_err_set(err, PB_EINVAL, "suite", "suite %s has more than %d metrics",
                          c->suite->name, PS_MAX_METRICS);
    rc = metric_keys_make(c);
    if (rc)
        return pb_err_set(err, rc, "", "out of memory");
    size_t nreq = (size_t)ts->batch * PS_MAX_PARTS;
    c->its = calloc((size_t)ts->batch, sizeof *c->its);
    c->reqs = calloc(nreq, sizeof *c->reqs);
    c->views = calloc(nreq, sizeof *c->views);
    c->first_req = calloc((size_t)ts->batch + 1, sizeof *c->first_req);
    if (c->its == NULL || c->reqs == NULL || c->views == NULL || c->first_req == NULL ||
        pb_items_begin(c->items))
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    return 0;
}

/* aggregate.provenance.context: what besides the hardware the result was
 * produced with (the session adds the testbed). */
static int add_context(const run_ctx_t *c, json_t *result, pb_err_t *err)
{
    const task_spec_t *ts = &c->ts;
    char spec_hash[PB_SHA256_HEX] = "";
    char *spec = json_dumps(ts->model, JSON_COMPACT | JSON_SORT_KEYS);
    if (spec)
        pb_sha256_hex(spec, strlen(spec), spec_hash);
    free(spec);
    json_t *cx = json_pack("{s:O?, s:s, s:O?, s:I, s:i, s:s, s:s, s:s?}", "model",
                           json_object_get(ts->model, "name"), "backend", ts->backend, "pe",
                           json_object_get(ts->model, "pe"), "seed", (json_int_t)ts->seed,
                           "generator_version", c->suite->version, "posbench_version",
                           pb_version(), "git_commit", pb_git_commit(), "dataset", ts->dataset);
    /* Any change to the model spec (an option, a server URL) shows too. */
    if (cx && spec_hash[0])
        json_object_set_new(cx, "spec_sha256", json_string(spec_hash));
    if (cx && c->ops && c->be && c->ops->provenance && c->ops->provenance(c->be, cx)) {
        json_decref(cx);
        cx = NULL;
    }
    if (cx == NULL || json_object_set_new(json_object_get(result, "aggregate"), "provenance",
                                          json_pack("{s:o}", "context", cx)))
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    return 0;
}

/* aggregate.groups, only when some item fell in a group (BREAKDOWN.md). */
static int add_groups(const pb_breakdown_t *bd, json_t *result, pb_err_t *err)
{
    if (bd->n == 0)
        return 0;
    json_t *groups = pb_breakdown_json(bd);
    if (groups == NULL ||
        json_object_set_new(json_object_get(result, "aggregate"), "groups", groups))
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    return 0;
}

int pb_runner_run(const json_t *task, volatile int *cancel, pb_runner_progress_fn progress,
                  void *ctx, json_t **result, pb_buf_t *items, pb_err_t *err)
{
    int64_t t_start = pb_now_us();
    run_ctx_t c;
    json_t *params = NULL;
    int run_open = 0;

    memset(&c, 0, sizeof c);
    *result = NULL;
    pb_buf_reset(items);
    c.items = items;
    int rc = run_setup(&c, task, &params, &run_open, err);
    if (rc)
        goto out;
    if (c.be && c.ops->set_cancel)
        c.ops->set_cancel(c.be, cancel);
    if (c.suite->corpus && (rc = run_ranking(&c, cancel, progress, ctx, err)))
        goto out; /* a ranking suite's items were all recorded there */
    for (int64_t lo = c.ts.item_lo; !c.suite->corpus && lo < c.ts.item_hi; lo += c.ts.batch) {
        if (cancelled(cancel)) {
            rc = pb_err_set(err, PB_ECANCELLED, "", "cancelled");
            goto out;
        }
        int64_t left = c.ts.item_hi - lo;
        rc = run_batch(&c, lo, (size_t)(left < c.ts.batch ? left : c.ts.batch), cancel, err);
        if (rc)
            goto out;
        if (progress)
            progress(ctx, (uint64_t)c.n_items);
    }
    rc = pb_items_end(items);
    if (rc) {
        pb_err_set(err, rc, "", "out of memory");
        goto out;
    }
    *result = json_pack("{s:{s:I, s:f}, s:{s:I, s:I, s:I}, s:i}",
                        "aggregate", "n", (json_int_t)c.n_items, "score_sum",
                        c.score_sum, "timings", "generate_us", (json_int_t)c.gen_us, "score_us",
                        (json_int_t)c.score_us, "total_us", (json_int_t)(pb_now_us() - t_start),
                        "version", c.suite->version);
    if (*result == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    rc = add_groups(&c.bd, *result, err);
    rc = rc ? rc : add_context(&c, *result, err);
    if (rc) {
        json_decref(*result);
        *result = NULL;
    }
out:
    if (c.its && c.reqs && c.views)
        batch_clear(&c);
    free(c.its);
    free(c.reqs);
    free(c.views);
    free(c.first_req);
    if (c.be)
        c.ops->close(c.be);
    if (run_open)
        ps_run_close(&c.run);
    pb_breakdown_free(&c.bd); /* before the keys it borrows */
    metric_keys_free(&c);
    pb_dataset_release(c.ds);
    json_decref(params);
    return rc;
}

const char *pb_runner_error_class(int rc, int *retryable)
{
    switch (rc) {
    case PB_EINVAL:
    case PB_ENOTFOUND:
    case PB_EPARSE:
    case PB_ETOOBIG:
        *retryable = 0;
        return "bad_task";
    case PB_EBACKEND:
    case PB_EUNSUPPORTED:
    case PB_ETIMEOUT:
        *retryable = 1;
        return "backend";
    default:
        *retryable = 1;
        return "internal";
    }
}
