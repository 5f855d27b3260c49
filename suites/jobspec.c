/* Job-spec validation and expansion (ARCHITECTURE.md section 3): check a
 * submitted job against the suite registry, build the normalised spec with
 * every default filled in, and cut each run into tasks of one bucket and at
 * most shard_size items. Errors name the offending field as a JSON path. */
#include "suites/jobspec.h"
#include "suites/suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/sha256.h"

#define PS_MAX_RUNS 64
#define PS_MAX_NAME 200
#define PS_MAX_SEED ((int64_t)1 << 53) /* exact in a JSON double */

static const char *const backends[] = {"oracle", "random", "bm25", "hashbow", "native",
                                       "openai"};

int ps_backend_known(const char *name)
{
    if (name == NULL)
        return 0;
    for (size_t i = 0; i < PB_ARRAY_LEN(backends); i++)
        if (strcmp(backends[i], name) == 0)
            return 1;
    return 0;
}

void ps_plan_free(ps_plan_t *plan)
{
    if (plan == NULL)
        return;
    for (size_t i = 0; i < plan->n_runs; i++) {
        json_decref(plan->runs[i].params);
        free(plan->runs[i].buckets);
        free(plan->runs[i].dataset);
        free(plan->runs[i].bucket_samples);
    }
    free(plan->runs);
    free(plan->tasks);
    json_decref(plan->spec);
    free(plan);
}

/* Set key in obj, stealing v; PB_ENOMEM when either fails. */
static int put(json_t *obj, const char *key, json_t *v)
{
    return v && json_object_set_new(obj, key, v) == 0 ? 0 : PB_ENOMEM;
}

int ps_native_model_check(const json_t *m, pb_err_t *err)
{
    const char *path;
    int64_t i;
    double d;
    int rc = pb_json_str(m, "path", NULL, 1, &path, "model", err);
    if (rc)
        return rc;
    if (*path == '\0' || strlen(path) > PS_NATIVE_PATH_MAX)
        return pb_err_set(err, PB_EINVAL, "model.path", "model.path must be 1 to %d bytes",
                          PS_NATIVE_PATH_MAX);
    const json_t *pe = json_object_get(m, "pe");
    if (pe && !json_is_null(pe) && !json_is_object(pe))
        return pb_err_set(err, PB_EINVAL, "model.pe", "model.pe must be an object");
    if ((rc = pb_json_int(m, "max_tokens", 0, 0, 1 << 20, &i, "model", err)) ||
        (rc = pb_json_int(m, "top_k", 0, 0, 1 << 20, &i, "model", err)) ||
        (rc = pb_json_int(m, "threads", 0, 0, 4096, &i, "model", err)) ||
        (rc = pb_json_num(m, "temperature", 0, 0, 100, &d, "model", err)) ||
        (rc = pb_json_num(m, "top_p", 1, 0, 1, &d, "model", err)))
        return rc;
    if (json_object_get(m, "top_p") && d <= 0)
        return pb_err_set(err, PB_EINVAL, "model.top_p", "model.top_p must be in (0, 1]");
    const json_t *stop = json_object_get(m, "stop"), *v;
    size_t k;
    if (stop == NULL || json_is_null(stop))
        return 0;
    if (!json_is_array(stop) || json_array_size(stop) > PS_NATIVE_STOP_MAX)
        return pb_err_set(err, PB_EINVAL, "model.stop",
                          "model.stop must be an array of at most %d strings", PS_NATIVE_STOP_MAX);
    json_array_foreach(stop, k, v) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > PS_NATIVE_STOP_LEN)
            return pb_err_set(err, PB_EINVAL, "model.stop",
                              "model.stop[%zu] must be a string of 1 to %d bytes", k,
                              PS_NATIVE_STOP_LEN);
    }
    return 0;
}

int ps_openai_model_check(const json_t *m, pb_err_t *err)
{
    const char *url, *model, *mode, *key_env, *rerank;
    int64_t i;
    double d;
    int b;
    int rc = pb_json_str(m, "base_url", NULL, 1, &url, "model", err);
    rc = rc ? rc : pb_json_str(m, "model", NULL, 1, &model, "model", err);
    rc = rc ? rc : pb_json_str(m, "mode", "completion", 0, &mode, "model", err);
    rc = rc ? rc : pb_json_str(m, "api_key_env", NULL, 0, &key_env, "model", err);
    rc = rc ? rc : pb_json_str(m, "rerank", NULL, 0, &rerank, "model", err);
    rc = rc ? rc : pb_json_int(m, "max_concurrency", 1, 1, PS_OAI_CONCURRENCY_MAX, &i, "model", err);
    rc = rc ? rc : pb_json_num(m, "timeout_s", 1, 0.05, 3600, &d, "model", err);
    rc = rc ? rc : pb_json_int(m, "retries", 0, 0, 20, &i, "model", err);
    rc = rc ? rc : pb_json_int(m, "backoff_ms", 1, 1, 60000, &i, "model", err);
    rc = rc ? rc : pb_json_int(m, "max_response_mb", 1, 1, 256, &i, "model", err);
    rc = rc ? rc : pb_json_num(m, "temperature", 0, 0, 100, &d, "model", err);
    rc = rc ? rc : pb_json_bool(m, "cache", 1, &b, "model", err);
    rc = rc ? rc : pb_json_bool(m, "tokenize", 1, &b, "model", err);
    if (rc)
        return rc;
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strlen(url) > PS_OAI_URL_MAX)
        return pb_err_set(err, PB_EINVAL, "model.base_url",
                          "model.base_url must be an http:// or https:// URL of at most %d bytes",
                          PS_OAI_URL_MAX);
    if (*model == '\0' || strlen(model) > 512)
        return pb_err_set(err, PB_EINVAL, "model.model", "model.model must be 1 to 512 bytes");
    if (strcmp(mode, "completion") != 0 && strcmp(mode, "chat") != 0)
        return pb_err_set(err, PB_EINVAL, "model.mode",
                          "model.mode must be \"completion\" or \"chat\"");
    if (rerank && strcmp(rerank, "rerank") != 0 && strcmp(rerank, "score") != 0)
        return pb_err_set(err, PB_EINVAL, "model.rerank",
                          "model.rerank must be \"rerank\" (/v1/rerank) or \"score\" (/score)");
    if (key_env && (*key_env == '\0' || strlen(key_env) > 128))
        return pb_err_set(err, PB_EINVAL, "model.api_key_env",
                          "model.api_key_env must be 1 to 128 bytes");
    const json_t *extra = json_object_get(m, "extra");
    if (extra && !json_is_null(extra) && !json_is_object(extra))
        return pb_err_set(err, PB_EINVAL, "model.extra", "model.extra must be an object");
    return 0;
}

/* "model": {"name", "backend", ...}; other keys are the backend's business
 * and are kept as given. *out is a new copy. */
static int check_model(const json_t *spec, json_t **out, pb_err_t *err)
{
    const json_t *m = json_object_get(spec, "model");
    const char *s;
    int rc;
    *out = NULL;
    if (m == NULL || json_is_null(m))
        return pb_err_set(err, PB_EINVAL, "model", "model is required");
    if (!json_is_object(m))
        return pb_err_set(err, PB_EINVAL, "model", "model must be an object");
    if ((rc = pb_json_str(m, "name", NULL, 1, &s, "model", err)))
        return rc;
    if (*s == '\0' || strlen(s) > PS_MAX_NAME)
        return pb_err_set(err, PB_EINVAL, "model.name", "model.name must be 1 to %d bytes",
                          PS_MAX_NAME);
    if ((rc = pb_json_str(m, "backend", NULL, 1, &s, "model", err)))
        return rc;
    if (!ps_backend_known(s))
        return pb_err_set(err, PB_EINVAL, "model.backend", "unknown backend \"%.64s\"", s);
    if (strcmp(s, "native") == 0 && (rc = ps_native_model_check(m, err)))
        return rc;
    if (strcmp(s, "openai") == 0 && (rc = ps_openai_model_check(m, err)))
        return rc;
    *out = json_deep_copy(m);
    return *out ? 0 : PB_ENOMEM;
}

/* "requires": {"device": "cpu"|"gpu"|"any", "memory_mb": n}; *out is new. */
static int check_requires(const json_t *spec, json_t **out, pb_err_t *err)
{
    static const char *const keys[] = {"device", "memory_mb", NULL};
    const json_t *r = json_object_get(spec, "requires");
    const char *dev;
    int64_t mem;
    int rc;
    *out = NULL;
    if (r != NULL && !json_is_null(r) && !json_is_object(r))
        return pb_err_set(err, PB_EINVAL, "requires", "requires must be an object");
    if ((rc = pb_json_only_keys(r, keys, "requires", err)))
        return rc;
    if ((rc = pb_json_str(r, "device", "any", 0, &dev, "requires", err)))
        return rc;
    if (strcmp(dev, "cpu") && strcmp(dev, "gpu") && strcmp(dev, "any"))
        return pb_err_set(err, PB_EINVAL, "requires.device",
                          "requires.device must be \"cpu\", \"gpu\" or \"any\"");
    if ((rc = pb_json_int(r, "memory_mb", -1, 0, (int64_t)1 << 40, &mem, "requires", err)))
        return rc;
    json_t *o = json_pack("{s:s}", "device", dev);
    if (o == NULL || (mem >= 0 && put(o, "memory_mb", json_integer(mem)))) {
        json_decref(o);
        return PB_ENOMEM;
    }
    *out = o;
    return 0;
}

/* Resolvers of the datasets runs name (ps_plan_build_ds). */
typedef struct ds_resolver {
    ps_dataset_resolve_fn fn;
    void *ctx;
} ds_resolver_t;

/* runs[i].dataset: look the hash up and take the dataset's buckets, with
 * samples (when given) capping each bucket's lines. */
static int check_dataset(const json_t *run, const char *prefix, const ps_suite_t *suite,
                         const ds_resolver_t *res, ps_plan_run_t *pr, pb_err_t *err)
{
    char field[64];
    ps_dataset_ref_t ref;
    int64_t cap = 0;
    const char *hash = json_string_value(json_object_get(run, "dataset"));
    snprintf(field, sizeof field, "%s.dataset", prefix);
    if (hash == NULL || !pb_sha256_is_hex(hash))
        return pb_err_set(err, PB_EINVAL, field,
                          "%s must be a dataset hash (64 lowercase hex digits)", field);
    if (res == NULL || res->fn == NULL)
        return pb_err_set(err, PB_EUNSUPPORTED, field, "%s: datasets are not available here",
                          field);
    memset(&ref, 0, sizeof ref);
    int rc = res->fn(res->ctx, hash, &ref);
    if (rc == PB_ENOTFOUND)
        return pb_err_set(err, PB_EINVAL, field, "unknown dataset %.16s...", hash);
    if (rc)
        return pb_err_set(err, rc, field, "%s: cannot look the dataset up", field);
    pr->buckets = ref.buckets; /* the plan owns them from here on */
    pr->n_buckets = ref.n_buckets;
    pr->bucket_samples = ref.counts;
    if (strcmp(ref.suite, suite->name) != 0)
        return pb_err_set(err, PB_EINVAL, field, "dataset %.16s... is a %s dataset, not %s",
                          hash, ref.suite, suite->name);
    if ((pr->dataset = strdup(hash)) == NULL)
        return PB_ENOMEM;
    if ((rc = pb_json_int(run, "samples", 0, 1, PS_MAX_SAMPLES, &cap, prefix, err)))
        return rc;
    pr->samples = 0;
    for (size_t b = 0; b < pr->n_buckets; b++) {
        if (cap > 0 && pr->bucket_samples[b] > (uint64_t)cap)
            pr->bucket_samples[b] = (uint64_t)cap;
        if (pr->bucket_samples[b] > pr->samples)
            pr->samples = pr->bucket_samples[b];
    }
    return 0;
}

/* Validate runs[i] into pr and its normalised object *out. */
static int check_run(const json_t *run, size_t i, const ds_resolver_t *res, ps_plan_run_t *pr,
                     json_t **out, pb_err_t *err)
{
    static const char *const keys[] = {"suite", "task", "params", "samples", "dataset", NULL};
    char prefix[32], field[64];
    const char *name, *task;
    int64_t samples;
    int rc;

    *out = NULL;
    snprintf(prefix, sizeof prefix, "runs[%zu]", i);
    if (!json_is_object(run))
        return pb_err_set(err, PB_EINVAL, prefix, "%s must be an object", prefix);
    if ((rc = pb_json_only_keys(run, keys, prefix, err)))
        return rc;
    if ((rc = pb_json_str(run, "suite", NULL, 1, &name, prefix, err)))
        return rc;
    snprintf(field, sizeof field, "%s.suite", prefix);
    const ps_suite_t *suite = ps_suite_find(name);
    if (suite == NULL)
        return pb_err_set(err, PB_EINVAL, field, "unknown suite \"%.64s\"", name);
    if ((rc = pb_json_str(run, "task", suite->tasks[0].name, 0, &task, prefix, err)))
        return rc;
    const ps_task_def_t *def = ps_suite_task(suite, task);
    if (def == NULL) {
        snprintf(field, sizeof field, "%s.task", prefix);
        return pb_err_set(err, PB_EINVAL, field, "unknown task \"%.64s\" for suite \"%s\"", task,
                          suite->name);
    }
    if ((rc = pb_json_int(run, "samples", suite->default_samples > 0 ? suite->default_samples : 20,
                          1, PS_MAX_SAMPLES, &samples, prefix, err)))
        return rc;
    const json_t *ds = json_object_get(run, "dataset");
    if (ds && json_is_null(ds))
        ds = NULL;

    const json_t *params = json_object_get(run, "params");
    if (params != NULL && json_is_null(params))
        params = NULL;
    snprintf(field, sizeof field, "%s.params", prefix);
    if (params != NULL && !json_is_object(params))
        return pb_err_set(err, PB_EINVAL, field, "%s must be an object", field);
    pb_err_t perr = {{0}, {0}};
    rc = suite->normalize(def->name, params, &pr->params, &perr);
    if (rc) {
        /* re-root the suite's field name under runs[i].params */
        char full[sizeof field + sizeof perr.field + 1];
        if (perr.field[0])
            snprintf(full, sizeof full, "%s.%s", field, perr.field);
        else
            snprintf(full, sizeof full, "%s", field);
        return pb_err_set(err, rc, full, "%s: %s", full, perr.msg);
    }
    if (ds) {
        if ((rc = check_dataset(run, prefix, suite, res, pr, err)))
            return rc;
        samples = (int64_t)pr->samples;
    } else {
        rc = suite->buckets(def->name, pr->params, &pr->buckets, &pr->n_buckets);
        if (rc == 0 && pr->n_buckets == 0)
            rc = PB_EINVAL;
        if (rc)
            return pb_err_set(err, rc, field, "%s gives no length buckets", field);
        pr->samples = (uint64_t)samples;
    }
    pr->suite = suite->name;
    pr->task = def->name;
    pr->version = suite->version;

    json_t *o = json_pack("{s:s, s:s, s:O, s:I}", "suite", suite->name, "task", def->name,
                          "params", pr->params, "samples", (json_int_t)samples);
    if (o == NULL || (pr->dataset && put(o, "dataset", json_string(pr->dataset)))) {
        json_decref(o);
        return PB_ENOMEM;
    }
    *out = o;
    return 0;
}

/* Items of run pr's bucket b: samples, or the dataset's lines there. */
static uint64_t run_samples(const ps_plan_run_t *pr, size_t b)
{
    return pr->bucket_samples ? pr->bucket_samples[b] : pr->samples;
}

/* Fill plan->tasks: per run, per bucket, shards [lo, hi) of shard_size. */
static int expand(ps_plan_t *plan, pb_err_t *err)
{
    uint64_t total = 0, items = 0;
    for (size_t r = 0; r < plan->n_runs; r++) {
        const ps_plan_run_t *pr = &plan->runs[r];
        for (size_t b = 0; b < pr->n_buckets; b++) {
            uint64_t n = run_samples(pr, b);
            total += (n + plan->shard_size - 1) / plan->shard_size;
            items += n;
        }
        if (total > PS_MAX_TASKS) /* checked per run: the sum cannot overflow */
            return pb_err_set(err, PB_EINVAL, "runs",
                              "job expands to more than %d tasks; raise shard_size or lower "
                              "samples",
                              PS_MAX_TASKS);
    }
    plan->tasks = calloc(total, sizeof *plan->tasks);
    if (plan->tasks == NULL)
        return PB_ENOMEM;
    size_t t = 0;
    for (size_t r = 0; r < plan->n_runs; r++) {
        const ps_plan_run_t *pr = &plan->runs[r];
        for (size_t b = 0; b < pr->n_buckets; b++) {
            uint64_t n = run_samples(pr, b);
            for (uint64_t lo = 0; lo < n; lo += plan->shard_size) {
                ps_plan_task_t *task = &plan->tasks[t++];
                task->run = r;
                task->bucket = pr->buckets[b];
                task->item_lo = lo;
                task->item_hi = lo + plan->shard_size < n ? lo + plan->shard_size : n;
            }
        }
    }
    plan->n_tasks = t;
    plan->items_total = items;
    return 0;
}

int ps_plan_build(const json_t *spec, ps_plan_t **out, pb_err_t *err)
{
    return ps_plan_build_ds(spec, NULL, NULL, out, err);
}

int ps_plan_build_ds(const json_t *spec, ps_dataset_resolve_fn resolve, void *ctx,
                     ps_plan_t **out, pb_err_t *err)
{
    ds_resolver_t res = {resolve, ctx};
    static const char *const keys[] = {"name",         "model",     "runs",       "seed",
                                       "priority",     "requires",  "max_attempts",
                                       "timeout_s",    "shard_size", "tags", NULL};
    ps_plan_t *plan = NULL;
    json_t *norm = NULL, *model = NULL, *req = NULL, *runs = NULL;
    const char *name;
    int64_t seed, prio, attempts, timeout, shard;
    int rc;

    *out = NULL;
    if (!json_is_object(spec)) {
        rc = pb_err_set(err, PB_EINVAL, "", "job spec must be a JSON object");
        goto out;
    }
    if ((rc = pb_json_only_keys(spec, keys, "", err)))
        goto out;
    if ((rc = pb_json_str(spec, "name", "job", 0, &name, "", err)))
        goto out;
    if (*name == '\0' || strlen(name) > PS_MAX_NAME) {
        rc = pb_err_set(err, PB_EINVAL, "name", "name must be 1 to %d bytes", PS_MAX_NAME);
        goto out;
    }
    if ((rc = check_model(spec, &model, err)))
        goto out;
    if ((rc = pb_json_int(spec, "seed", 0, 0, PS_MAX_SEED, &seed, "", err)) ||
        (rc = pb_json_int(spec, "priority", 0, -100, 100, &prio, "", err)) ||
        (rc = pb_json_int(spec, "max_attempts", PS_DEFAULT_MAX_ATTEMPTS, 1, 20, &attempts, "",
                          err)) ||
        (rc = pb_json_int(spec, "timeout_s", PS_DEFAULT_TIMEOUT_S, 1, 86400, &timeout, "",
                          err)) ||
        (rc = pb_json_int(spec, "shard_size", PS_DEFAULT_SHARD_SIZE, 1, 100000, &shard, "",
                          err)))
        goto out;
    if ((rc = check_requires(spec, &req, err)))
        goto out;
    const json_t *tags = json_object_get(spec, "tags");
    if (tags && !json_is_null(tags) && !json_is_object(tags) && !json_is_array(tags)) {
        rc = pb_err_set(err, PB_EINVAL, "tags", "tags must be an object or an array");
        goto out;
    }

    const json_t *in_runs = json_object_get(spec, "runs");
    if (in_runs == NULL || json_is_null(in_runs)) {
        rc = pb_err_set(err, PB_EINVAL, "runs", "runs is required");
        goto out;
    }
    if (!json_is_array(in_runs) || json_array_size(in_runs) == 0 ||
        json_array_size(in_runs) > PS_MAX_RUNS) {
        rc = pb_err_set(err, PB_EINVAL, "runs", "runs must be an array of 1 to %d runs",
                        PS_MAX_RUNS);
        goto out;
    }

    plan = calloc(1, sizeof *plan);
    runs = json_array();
    if (plan == NULL || runs == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    plan->runs = calloc(json_array_size(in_runs), sizeof *plan->runs);
    if (plan->runs == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < json_array_size(in_runs); i++) {
        json_t *nrun;
        plan->n_runs = i + 1; /* so ps_plan_free releases a half-built run */
        if ((rc = check_run(json_array_get(in_runs, i), i, &res, &plan->runs[i], &nrun, err)))
            goto out;
        if (json_array_append_new(runs, nrun)) {
            rc = PB_ENOMEM;
            goto out;
        }
    }
    plan->shard_size = (uint64_t)shard;
    if ((rc = expand(plan, err)))
        goto out;

    norm = json_pack("{s:s, s:O, s:O, s:I, s:i, s:O, s:i, s:i, s:I}", "name", name, "model",
                     model, "runs", runs, "seed", (json_int_t)seed, "priority", (int)prio,
                     "requires", req, "max_attempts", (int)attempts, "timeout_s", (int)timeout,
                     "shard_size", (json_int_t)shard);
    if (norm == NULL ||
        (tags && !json_is_null(tags) && put(norm, "tags", json_deep_copy(tags)))) {
        rc = PB_ENOMEM;
        goto out;
    }
    plan->spec = norm;
    norm = NULL;
    plan->name = json_string_value(json_object_get(plan->spec, "name"));
    plan->model = json_object_get(plan->spec, "model");
    plan->device = json_string_value(json_object_get(json_object_get(plan->spec, "requires"),
                                                     "device"));
    plan->seed = (uint64_t)seed;
    plan->priority = (int)prio;
    plan->max_attempts = (int)attempts;
    plan->timeout_s = (int)timeout;
    *out = plan;
    plan = NULL;
out:
    if (rc == PB_ENOMEM && err)
        pb_err_set(err, rc, "", "out of memory");
    json_decref(norm);
    json_decref(model);
    json_decref(req);
    json_decref(runs);
    ps_plan_free(plan);
    return rc;
}
