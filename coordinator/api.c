/* The coordinator's HTTP routes: the v1 JSON API (jobs, results, items,
 * leaderboard, suites, workers; schedules, regressions and datasets through
 * their own files), /healthz, /metrics, and static files from web/. Every error is {"error": ..., "field": ...} with the
 * right status. Handlers run on the loop thread. */
#include "config.h"
#include "coordinator/coord.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "coordinator/api_breakdown.h"
#include "coordinator/api_datasets.h"
#include "coordinator/api_regress.h"
#include "coordinator/api_schedules.h"
#include "coordinator/latest.h"
#include "coordinator/api_items.h"
#include "engine/model.h"
#include "suites/jobspec.h"
#include "suites/suite.h"

#define API_PREFIX "/api/v1/"
#define IDEM_KEY_MAX 200

/* ---- helpers ---- */

void pb_api_reply_json(pb_http_resp_t *resp, int status, json_t *body)
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

void pb_api_reply_rc(pb_http_resp_t *resp, int rc, const char *what)
{
    char msg[256];
    switch (rc) {
    case PB_ENOTFOUND:
        snprintf(msg, sizeof msg, "%s not found", what);
        pb_http_resp_error(resp, 404, msg, NULL);
        break;
    case PB_ESTATE:
        snprintf(msg, sizeof msg, "%s is already finished", what);
        pb_http_resp_error(resp, 409, msg, NULL);
        break;
    case PB_EEXIST:
        snprintf(msg, sizeof msg, "%s already exists", what);
        pb_http_resp_error(resp, 409, msg, "name");
        break;
    default:
        snprintf(msg, sizeof msg, "internal error: %s", pb_strerror(rc));
        pb_http_resp_error(resp, 500, msg, NULL);
    }
}

/* String query parameter: absent -> ""; a malformed or oversized one is
 * a 400 naming it. */
int pb_api_query_str(const pb_http_req_t *req, pb_http_resp_t *resp, const char *name, char *out,
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

/* Parse a positive decimal id; -1 when s is not one. */
int64_t pb_api_parse_id(const char *s, size_t n)
{
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v > 0 ? v : -1;
}

/* Integer query parameter: absent -> dflt; present but bad -> 400. */
int64_t pb_api_path_id(const char *p, const char **rest)
{
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    *rest = slash ? slash + 1 : "";
    return pb_api_parse_id(p, len);
}

int pb_api_query_int(const pb_http_req_t *req, pb_http_resp_t *resp, const char *name,
                     int64_t dflt, int64_t min, int64_t max, int64_t *out)
{
    char buf[64];
    *out = dflt;
    int present = pb_http_query_param(req, name, buf, sizeof buf);
    if (present == 0 || (present > 0 && buf[0] == '\0'))
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (present < 0 || *end != '\0' || errno || v < min || v > max) {
        char msg[160];
        snprintf(msg, sizeof msg, "query parameter %s must be an integer in [%lld, %lld]", name,
                 (long long)min, (long long)max);
        pb_http_resp_error(resp, 400, msg, name);
        return -1;
    }
    *out = v;
    return 0;
}

json_t *pb_api_parse_body(const pb_http_req_t *req, pb_http_resp_t *resp)
{
    json_error_t jerr;
    if (req->body_len == 0) {
        pb_http_resp_error(resp, 400, "request body is empty: expected a JSON object", NULL);
        return NULL;
    }
    json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "malformed JSON at line %d, column %d: %s", jerr.line,
                 jerr.column, jerr.text);
        pb_http_resp_error(resp, 400, msg, NULL);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        pb_http_resp_error(resp, 400, "request body must be a JSON object", NULL);
        return NULL;
    }
    return v;
}

int pb_api_method_is(const pb_http_req_t *req, const char *m)
{
    return strcmp(req->method, m) == 0 || (strcmp(m, "GET") == 0 && strcmp(req->method, "HEAD") == 0);
}

void pb_api_method_not_allowed(pb_http_resp_t *resp, const char *allow)
{
    pb_http_resp_header(resp, "Allow", allow);
    pb_http_resp_error(resp, 405, "method not allowed", NULL);
}

/* ---- results, leaderboard: accuracy, intervals, suite aggregates ---- */

static void add_accuracy(json_t *o, double n, double sum)
{
    double lo, hi;
    pb_wilson(sum, n, &lo, &hi);
    json_object_set_new(o, "accuracy", n > 0 ? json_real(sum / n) : json_null());
    json_object_set_new(o, "ci_low", json_real(lo));
    json_object_set_new(o, "ci_high", json_real(hi));
}

/* {name: sum / n} for each of the suite's metrics, n counting the items the
 * metric was defined for (null when none); NULL when out of memory. */
static json_t *metric_means(const ps_suite_t *suite, size_t nm, const double *sum,
                            const double *n)
{
    json_t *o = json_object();
    for (size_t k = 0; o && k < nm; k++)
        if (json_object_set_new(o, suite->metrics[k],
                                n[k] > 0 ? json_real(sum[k] / n[k]) : json_null())) {
            json_decref(o);
            return NULL;
        }
    return o;
}

/* {name: n} for each of the suite's metrics: how many items defined it. */
static json_t *metric_counts(const ps_suite_t *suite, size_t nm, const double *n)
{
    json_t *o = json_object();
    for (size_t k = 0; o && k < nm; k++)
        if (json_object_set_new(o, suite->metrics[k], json_real(n[k]))) {
            json_decref(o);
            return NULL;
        }
    return o;
}

/* Decorate a run object whose "buckets" hold {"bucket","n","score_sum"}:
 * per-bucket accuracy and interval, run totals, unit, the means of the
 * suite's per-item metrics (per bucket and per run) and the suite's
 * aggregate. The reserved breakdown rows (metric sums, length unit) are
 * taken out here; the rest are left for pb_api_breakdown_render. */
int pb_api_decorate_run(json_t *run)
{
    const ps_suite_t *suite = ps_suite_find(json_string_value(json_object_get(run, "suite")));
    const char *task = json_string_value(json_object_get(run, "task"));
    json_t *buckets = json_object_get(run, "buckets");
    size_t nb = json_array_size(buckets), nm = ps_suite_n_metrics(suite), i;
    ps_bucket_stat_t *stats = calloc(nb ? nb : 1, sizeof *stats);
    /* Per bucket (row nb: the run's) metric sums and counts. */
    double *msum = calloc((nb + 1) * (nm ? nm : 1), sizeof *msum);
    double *mn = calloc((nb + 1) * (nm ? nm : 1), sizeof *mn);
    double n = 0, sum = 0;
    const char *unit = NULL;
    int have_metrics = 0, rc = PB_ENOMEM;
    json_t *b;

    if (stats == NULL || msum == NULL || mn == NULL ||
        pb_api_breakdown_reserved(run, suite ? suite->metrics : NULL, nm, msum, mn, &unit,
                                  &have_metrics))
        goto out;
    json_array_foreach(buckets, i, b)
    {
        double bn = json_number_value(json_object_get(b, "n"));
        double bs = json_number_value(json_object_get(b, "score_sum"));
        add_accuracy(b, bn, bs);
        n += bn;
        sum += bs;
        stats[i].bucket = json_integer_value(json_object_get(b, "bucket"));
        stats[i].n = bn;
        stats[i].score_sum = bs;
        if (have_metrics) {
            stats[i].metric_sum = &msum[i * nm];
            stats[i].metric_n = &mn[i * nm];
            for (size_t k = 0; k < nm; k++) {
                msum[nb * nm + k] += msum[i * nm + k];
                mn[nb * nm + k] += mn[i * nm + k];
            }
            if (json_object_set_new(b, "metrics",
                                    metric_means(suite, nm, &msum[i * nm], &mn[i * nm])) ||
                json_object_set_new(b, "metrics_n", metric_counts(suite, nm, &mn[i * nm])))
                goto out;
        }
    }
    json_object_set_new(run, "n", json_real(n));
    json_object_set_new(run, "score_sum", json_real(sum));
    add_accuracy(run, n, sum);
    if (have_metrics &&
        json_object_set_new(run, "metrics", metric_means(suite, nm, &msum[nb * nm], &mn[nb * nm])))
        goto out;
    if (suite) {
        /* A length-sized task ("chars") counts tokens under a tokenizer. */
        const char *u = ps_task_unit(suite, task);
        if (unit && u && strcmp(u, "chars") == 0)
            u = unit;
        json_object_set_new(run, "unit", json_string(u));
        if (unit)
            json_object_set_new(run, "length_unit", json_string(unit));
        if (suite->aggregate && task)
            json_object_set_new(run, "aggregate",
                                suite->aggregate(task, json_object_get(run, "params"), stats, nb));
    }
    rc = 0;
out:
    free(stats);
    free(msum);
    free(mn);
    return rc;
}

/* Each run's "provenance": the testbeds and contexts its tasks ran with. */
static int add_provenance(json_t *run, const json_t *prov)
{
    json_t *list = json_array();
    size_t i;
    json_t *p;
    json_int_t idx = json_integer_value(json_object_get(run, "index"));
    json_array_foreach(prov, i, p)
        if (json_integer_value(json_object_get(p, "run")) == idx &&
            json_array_append_new(list, json_pack("{s:O, s:O}", "testbed",
                                                  json_object_get(p, "testbed"), "context",
                                                  json_object_get(p, "context"))))
            break;
    return list ? json_object_set_new(run, "provenance", list) : -1;
}

static void api_results(pb_coord_t *c, int64_t id, pb_http_resp_t *resp)
{
    json_t *out = NULL, *prov = NULL;
    int rc = pdb_job_results(c->db, id, &out);
    rc = rc ? rc : pdb_run_provenance(c->db, id, &prov);
    if (rc) {
        json_decref(out);
        pb_api_reply_rc(resp, rc, "job");
        return;
    }
    size_t i;
    json_t *run;
    json_array_foreach(json_object_get(out, "runs"), i, run)
    {
        if (pb_api_decorate_run(run) || pb_api_breakdown_render(run) ||
            add_provenance(run, prov)) {
            json_decref(prov);
            json_decref(out);
            pb_http_resp_error(resp, 500, "out of memory", NULL);
            return;
        }
    }
    json_decref(prov);
    pb_api_reply_json(resp, 200, out);
}

static int entry_cmp(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int r = strcmp(json_string_value(json_object_get(x, "suite")),
                   json_string_value(json_object_get(y, "suite")));
    if (r == 0)
        r = strcmp(json_string_value(json_object_get(x, "task")),
                   json_string_value(json_object_get(y, "task")));
    if (r)
        return r;
    double sx = json_number_value(json_object_get(x, "score"));
    double sy = json_number_value(json_object_get(y, "score"));
    if (sx != sy)
        return sx < sy ? 1 : -1;
    return strcmp(json_string_value(json_object_get(x, "model")),
                  json_string_value(json_object_get(y, "model")));
}

static void api_leaderboard(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    char suite[64], task[64];
    if (pb_api_query_str(req, resp, "suite", suite, sizeof suite) ||
        pb_api_query_str(req, resp, "task", task, sizeof task))
        return;
    if (suite[0] && ps_suite_find(suite) == NULL) {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown suite \"%s\"", suite);
        pb_http_resp_error(resp, 400, msg, "suite");
        return;
    }
    json_t *raw = NULL;
    int rc = pdb_leaderboard(c->db, suite[0] ? suite : NULL, &raw);
    if (rc) {
        pb_api_reply_rc(resp, rc, "leaderboard");
        return;
    }
    json_t *entries = json_object_get(raw, "entries");
    size_t n = json_array_size(entries), k = 0;
    json_t **v = calloc(n ? n : 1, sizeof *v);
    if (v == NULL) {
        json_decref(raw);
        pb_http_resp_error(resp, 500, "out of memory", NULL);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        if (task[0] && strcmp(task, json_string_value(json_object_get(e, "task"))) != 0)
            continue;
        if (pb_api_decorate_run(e)) {
            free(v);
            json_decref(raw);
            pb_http_resp_error(resp, 500, "out of memory", NULL);
            return;
        }
        json_object_set(e, "score", json_object_get(e, "accuracy"));
        json_t *agg = json_object_get(e, "aggregate");
        json_t *eff = json_object_get(agg, "effective_length");
        json_object_set(e, "effective_length", eff ? eff : json_null());
        v[k++] = e;
    }
    qsort(v, k, sizeof *v, entry_cmp);
    json_t *ranked = json_array();
    int rank = 0;
    for (size_t j = 0; j < k; j++) {
        if (j == 0 || strcmp(json_string_value(json_object_get(v[j], "suite")),
                             json_string_value(json_object_get(v[j - 1], "suite"))) ||
            strcmp(json_string_value(json_object_get(v[j], "task")),
                   json_string_value(json_object_get(v[j - 1], "task"))))
            rank = 0;
        json_object_set_new(v[j], "rank", json_integer(++rank));
        json_array_append(ranked, v[j]);
    }
    free(v);
    json_decref(raw);
    pb_api_reply_json(resp, 200, json_pack("{so}", "entries", ranked));
}

/* ---- jobs ---- */

/* A native model's PE override must be one the engine can build (the
 * suites layer checks only its shape): the engine's own check, its field
 * put under "model.". */
int pb_api_check_native_pe(const json_t *model, pb_err_t *err)
{
    const json_t *pe = json_object_get(model, "pe");
    if (strcmp(json_string_value(json_object_get(model, "backend")) ?: "", "native") != 0 ||
        pe == NULL || json_is_null(pe))
        return 0;
    pb_err_t e = {{0}, {0}};
    int rc = pe_pe_validate(pe, &e);
    if (rc == 0)
        return 0;
    char f[sizeof e.field];
    snprintf(f, sizeof f, "model.%.100s", e.field[0] ? e.field : "pe");
    return pb_err_set(err, rc, f, "%s", e.msg[0] ? e.msg : "invalid model.pe");
}

int pb_api_submit(pb_coord_t *c, const json_t *spec, const char *idem_key, int64_t schedule_id,
                  int64_t *job_id, int *existing, pb_err_t *err)
{
    ps_plan_t *plan = NULL;
    json_t *resolved = NULL;
    *existing = 0;
    int rc = pb_latest_resolve(spec, 0, &resolved, err);
    rc = rc ? rc : ps_plan_build_ds(resolved, pb_api_dataset_resolve, c, &plan, err);
    json_decref(resolved);
    if (rc == 0 && (rc = pb_api_check_native_pe(plan->model, err)))
        ps_plan_free(plan);
    if (rc)
        return rc;
    rc = pdb_job_insert(c->db, plan, idem_key, schedule_id, job_id);
    ps_plan_free(plan);
    if (rc == PB_EEXIST) {
        *existing = 1;
        return 0;
    }
    if (rc) {
        pb_err_set(err, rc, "", "storing the job failed: %s", pdb_errmsg(c->db));
        return rc;
    }
    pb_info("job %lld queued (%s)", (long long)*job_id,
            json_string_value(json_object_get(spec, "name")) ?: "job");
    pb_broker_load_queue(c, *job_id);
    pb_broker_dispatch(c);
    return 0;
}

static void api_submit(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    const char *key = pb_http_req_header(req, "Idempotency-Key");
    if (key && (strlen(key) == 0 || strlen(key) > IDEM_KEY_MAX)) {
        pb_http_resp_error(resp, 400, "Idempotency-Key must be 1 to 200 characters",
                           "Idempotency-Key");
        return;
    }
    json_t *spec = pb_api_parse_body(req, resp);
    if (spec == NULL)
        return;
    int64_t id = 0;
    int existing = 0;
    pb_err_t err = {0};
    int rc = pb_api_submit(c, spec, key, 0, &id, &existing, &err);
    json_decref(spec);
    if (rc == PB_EINVAL || rc == PB_ETOOBIG) {
        pb_http_resp_error(resp, 400, err.msg, err.field[0] ? err.field : NULL);
        return;
    }
    if (rc) {
        pb_http_resp_error(resp, 500, err.msg[0] ? err.msg : pb_strerror(rc), NULL);
        return;
    }
    if (existing) {
        pb_api_reply_json(resp, 200, json_pack("{sIsb}", "id", (json_int_t)id, "existing", 1));
        return;
    }
    json_t *job = NULL;
    pdb_job_get(c->db, id, &job);
    char loc[64];
    snprintf(loc, sizeof loc, "/api/v1/jobs/%lld", (long long)id);
    pb_http_resp_header(resp, "Location", loc);
    pb_api_reply_json(resp, 201,
                      json_pack("{sIso}", "id", (json_int_t)id, "job", job ? job : json_null()));
}

static void api_jobs_list(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    static const char *const states[] = {"queued", "running", "done", "failed", "cancelled", NULL};
    char state[32];
    int64_t limit, before, schedule;
    if (pb_api_query_str(req, resp, "state", state, sizeof state) ||
        pb_api_query_int(req, resp, "schedule", 0, 1, INT64_MAX / 2, &schedule))
        return;
    if (schedule && state[0]) {
        pb_http_resp_error(resp, 400, "state and schedule cannot be combined", "schedule");
        return;
    }
    if (state[0]) {
        int ok = 0;
        for (const char *const *s = states; *s; s++)
            ok |= strcmp(*s, state) == 0;
        if (!ok) {
            pb_http_resp_error(resp, 400,
                               "state must be one of queued, running, done, failed, cancelled",
                               "state");
            return;
        }
    }
    if (pb_api_query_int(req, resp, "limit", 50, 1, 1000, &limit) ||
        pb_api_query_int(req, resp, "before", 0, 0, INT64_MAX / 2, &before))
        return;
    json_t *out = NULL;
    int rc = schedule ? pdb_jobs_list_schedule(c->db, schedule, before, (int)limit, &out)
                      : pdb_jobs_list(c->db, state[0] ? state : NULL, before, (int)limit, &out);
    if (rc)
        pb_api_reply_rc(resp, rc, "jobs");
    else
        pb_api_reply_json(resp, 200, out);
}

static void api_cancel(pb_coord_t *c, int64_t id, pb_http_resp_t *resp)
{
    json_t *leased = NULL;
    int rc = pdb_job_cancel(c->db, id, &leased);
    if (rc) {
        pb_api_reply_rc(resp, rc, "job");
        return;
    }
    size_t dropped = pb_sched_drop_job(c->sched, id);
    size_t i;
    json_t *t;
    json_array_foreach(leased, i, t)
    {
        pb_broker_cancel_task(c, json_integer_value(json_object_get(t, "task_id")),
                              (int)json_integer_value(json_object_get(t, "attempt")));
    }
    size_t n = dropped + json_array_size(leased);
    json_decref(leased);
    pb_info("job %lld cancelled (%zu tasks)", (long long)id, n);
    pb_broker_dispatch(c);
    pb_api_reply_json(resp, 200, json_pack("{sIsssI}", "id", (json_int_t)id, "state", "cancelled",
                                    "cancelled_tasks", (json_int_t)n));
}

static void api_items(pb_coord_t *c, int64_t id, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    int64_t run, bucket, limit;
    char after[64];
    if (pb_api_query_str(req, resp, "after", after, sizeof after) ||
        pb_api_query_int(req, resp, "run", -1, -1, 1000000, &run) ||
        pb_api_query_int(req, resp, "bucket", -1, -1, INT64_MAX / 2, &bucket) ||
        pb_api_query_int(req, resp, "limit", 100, 1, 1000, &limit))
        return;
    if (after[0]) {
        long long a, b;
        char tail;
        if (sscanf(after, "%lld:%lld%c", &a, &b, &tail) != 2) {
            pb_http_resp_error(resp, 400, "after must be a cursor TASK:IDX from \"next\"", "after");
            return;
        }
    }
    json_t *out = NULL;
    int rc = pdb_job_items(c->db, id, (int)run, bucket, after[0] ? after : NULL, (int)limit, &out);
    if (rc)
        pb_api_reply_rc(resp, rc, "job");
    else
        pb_api_reply_json(resp, 200, out);
}

static void api_job(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp, const char *rest)
{
    const char *sub;
    int64_t id = pb_api_path_id(rest, &sub);
    if (id < 0) {
        pb_http_resp_error(resp, 404, "job id must be a positive integer", "id");
        return;
    }
    if (*sub == '\0') {
        if (!pb_api_method_is(req, "GET"))
            return pb_api_method_not_allowed(resp, "GET");
        json_t *job = NULL;
        int rc = pdb_job_get(c->db, id, &job);
        if (rc)
            pb_api_reply_rc(resp, rc, "job");
        else
            pb_api_reply_json(resp, 200, job);
    } else if (strcmp(sub, "cancel") == 0) {
        if (!pb_api_method_is(req, "POST"))
            return pb_api_method_not_allowed(resp, "POST");
        api_cancel(c, id, resp);
    } else if (strcmp(sub, "results") == 0) {
        if (!pb_api_method_is(req, "GET"))
            return pb_api_method_not_allowed(resp, "GET");
        api_results(c, id, resp);
    } else if (strcmp(sub, "items") == 0) {
        if (!pb_api_method_is(req, "GET"))
            return pb_api_method_not_allowed(resp, "GET");
        api_items(c, id, req, resp);
    } else if (strncmp(sub, "items/", 6) == 0) {
        pb_api_item_prompt(c, id, req, resp, sub + 6);
    } else {
        pb_http_resp_error(resp, 404, "no such job resource", NULL);
    }
}

/* ---- health and metrics ---- */

static void api_metrics(pb_coord_t *c, pb_http_resp_t *resp)
{
    json_t *st = NULL;
    if (pdb_stats(c->db, &st) != 0) {
        pb_http_resp_error(resp, 500, "database error", NULL);
        return;
    }
    pb_buf_t b;
    pb_buf_init(&b, 0);
    pb_buf_printf(&b, "# HELP posbench_queue_depth Tasks waiting in the run queue.\n"
                      "# TYPE posbench_queue_depth gauge\nposbench_queue_depth %zu\n",
                  pb_sched_depth(c->sched));
    pb_buf_printf(&b, "# HELP posbench_tasks Tasks by state.\n# TYPE posbench_tasks gauge\n");
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(st, "tasks"), key, v)
        pb_buf_printf(&b, "posbench_tasks{state=\"%s\"} %lld\n", key, (long long)json_integer_value(v));
    pb_buf_printf(&b, "# HELP posbench_jobs Jobs by state.\n# TYPE posbench_jobs gauge\n");
    json_object_foreach(json_object_get(st, "jobs"), key, v)
        pb_buf_printf(&b, "posbench_jobs{state=\"%s\"} %lld\n", key, (long long)json_integer_value(v));
    pb_buf_printf(&b,
                  "# HELP posbench_workers Connected workers.\n# TYPE posbench_workers gauge\n"
                  "posbench_workers %zu\n"
                  "# HELP posbench_results_total Task results recorded since start.\n"
                  "# TYPE posbench_results_total counter\nposbench_results_total %llu\n"
                  "# HELP posbench_items_recorded_total Items recorded since start.\n"
                  "# TYPE posbench_items_recorded_total counter\nposbench_items_recorded_total %llu\n"
                  "# HELP posbench_results_stale_total Stale or duplicate results dropped.\n"
                  "# TYPE posbench_results_stale_total counter\nposbench_results_stale_total %llu\n"
                  "# HELP posbench_protocol_errors_total Malformed or unexpected worker messages.\n"
                  "# TYPE posbench_protocol_errors_total counter\nposbench_protocol_errors_total %llu\n"
                  "# HELP posbench_tasks_dispatched_total Tasks handed to workers since start.\n"
                  "# TYPE posbench_tasks_dispatched_total counter\nposbench_tasks_dispatched_total %llu\n"
                  "# HELP posbench_results_per_second Results recorded per second (last window).\n"
                  "# TYPE posbench_results_per_second gauge\nposbench_results_per_second %.2f\n"
                  "# HELP posbench_queue_latency_seconds Time from queued to dispatched.\n"
                  "# TYPE posbench_queue_latency_seconds summary\n"
                  "posbench_queue_latency_seconds{quantile=\"0.5\"} %.6f\n"
                  "posbench_queue_latency_seconds{quantile=\"0.99\"} %.6f\n"
                  "posbench_queue_latency_seconds_count %llu\n"
                  "# HELP posbench_uptime_seconds Seconds since the coordinator started.\n"
                  "# TYPE posbench_uptime_seconds gauge\nposbench_uptime_seconds %.0f\n",
                  c->n_peers, (unsigned long long)c->results_total,
                  (unsigned long long)c->items_recorded, (unsigned long long)c->results_stale,
                  (unsigned long long)c->protocol_errors, (unsigned long long)c->tasks_dispatched,
                  c->results_per_s, pb_broker_latency_pct(c, 50) / 1e6,
                  pb_broker_latency_pct(c, 99) / 1e6, (unsigned long long)c->tasks_dispatched,
                  pb_wall_time() - c->started_at);
    json_t *regs = NULL;
    if (pdb_regressions_list(c->db, "detected", 0, 0, 1, &regs) == 0)
        pb_buf_printf(&b,
                      "# HELP posbench_regressions_unacknowledged Regressions in state detected.\n"
                      "# TYPE posbench_regressions_unacknowledged gauge\n"
                      "posbench_regressions_unacknowledged %lld\n",
                      (long long)json_integer_value(json_object_get(regs, "unacknowledged")));
    json_decref(regs);
    pb_buf_printf(&b,
                  "# HELP posbench_webhook_deliveries_total Webhook POSTs by outcome.\n"
                  "# TYPE posbench_webhook_deliveries_total counter\n"
                  "posbench_webhook_deliveries_total{outcome=\"delivered\"} %llu\n"
                  "posbench_webhook_deliveries_total{outcome=\"failed\"} %llu\n",
                  (unsigned long long)c->webhooks_delivered,
                  (unsigned long long)c->webhooks_failed_attempts);
    json_decref(st);
    pb_http_resp_set(resp, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
    pb_buf_free(&b);
}

/* ---- router ---- */

static void api_route(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp, const char *p)
{
    if (pb_api_regress_route(c, req, resp, p) || pb_api_schedules_route(c, req, resp, p))
        return;
    if (strcmp(p, "jobs") == 0) {
        if (pb_api_method_is(req, "GET"))
            api_jobs_list(c, req, resp);
        else if (pb_api_method_is(req, "POST"))
            api_submit(c, req, resp);
        else
            pb_api_method_not_allowed(resp, "GET, POST");
    } else if (strncmp(p, "jobs/", 5) == 0) {
        api_job(c, req, resp, p + 5);
    } else if (strcmp(p, "leaderboard") == 0) {
        if (!pb_api_method_is(req, "GET"))
            return pb_api_method_not_allowed(resp, "GET");
        api_leaderboard(c, req, resp);
    } else if (strcmp(p, "suites") == 0) {
        if (!pb_api_method_is(req, "GET"))
            return pb_api_method_not_allowed(resp, "GET");
        pb_api_reply_json(resp, 200, ps_registry_json());
    } else if (strcmp(p, "workers") == 0) {
        if (!pb_api_method_is(req, "GET"))
            return pb_api_method_not_allowed(resp, "GET");
        json_t *out = NULL;
        int rc = pdb_workers_list(c->db, &out);
        if (rc)
            pb_api_reply_rc(resp, rc, "workers");
        else
            pb_api_reply_json(resp, 200, out);
    } else if (strncmp(p, PB_API_DATASETS, strlen(PB_API_DATASETS)) == 0 &&
               (p[strlen(PB_API_DATASETS)] == '\0' || p[strlen(PB_API_DATASETS)] == '/')) {
        pb_api_datasets(c, req, resp, p + strlen(PB_API_DATASETS));
    } else {
        pb_http_resp_error(resp, 404, "no such API endpoint", NULL);
    }
}

void pb_api_handle(void *ctx, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    pb_coord_t *c = ctx;
    const char *path = req->path;
    if (strncmp(path, API_PREFIX, strlen(API_PREFIX)) == 0) {
        api_route(c, req, resp, path + strlen(API_PREFIX));
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        pb_api_reply_json(resp, 200,
                   json_pack("{sssssIsIsf}", "status", "ok", "version", PACKAGE_VERSION, "workers",
                             (json_int_t)c->n_peers, "queue_depth",
                             (json_int_t)pb_sched_depth(c->sched), "uptime_s",
                             pb_wall_time() - c->started_at));
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        api_metrics(c, resp);
        return;
    }
    if (strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0) {
        pb_http_resp_error(resp, 404, "no such API endpoint (the API lives under /api/v1/)", NULL);
        return;
    }
    if (!pb_api_method_is(req, "GET"))
        return pb_api_method_not_allowed(resp, "GET, HEAD");
    if (strcmp(path, "/vendor/chart.js") == 0) {
        /* Debian's libjs-chart.js, outside the web root; versioned by the
         * package, so browsers may keep it for an hour. */
        if (pb_http_serve_one(resp, c->cfg.chartjs, "public, max-age=3600") == 404)
            pb_http_resp_error(resp, 404,
                               "Chart.js is not installed on the coordinator "
                               "(install libjs-chart.js or pass --chartjs FILE)",
                               NULL);
        return;
    }
    if (pb_http_serve_file(resp, c->cfg.web_root, path) == 404 && strcmp(path, "/static.js") == 0) {
        /* The pages load static.js, which only a `posbench export` snapshot
         * has; live, answer the "not a snapshot" script instead of a 404. */
        static const char live[] = "window.PB_STATIC = false; /* live coordinator */\n";
        pb_http_resp_set(resp, 200, "text/javascript; charset=utf-8", live, sizeof live - 1);
        pb_http_resp_header(resp, "Cache-Control", "no-cache");
    }
}
