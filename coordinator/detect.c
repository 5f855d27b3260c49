/* Regression detection (detect.h). Ingestion reads a done job's results the
 * way the API serves them (pb_api_decorate_run), so a point is exactly the
 * number the dashboard shows for that run and bucket. Proportions are
 * compared with the series' previous run (two-proportion or Fisher exact
 * test plus a minimum drop); measurements with the spread of up to 64 past
 * runs (Bencher's t prediction interval plus a percentage threshold); the
 * change-point pass confirms slow or early-missed changes. Everything here
 * runs on the coordinator's loop, in transactions of its own. */
#include "coordinator/detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/regress.h"
#include "common/util.h"
#include "db/store.h"
#include "suites/suite.h"

void pb_detect_cfg_default(pb_detect_cfg_t *d)
{
    d->alpha = 0.01;
    d->min_effect = 0.05;
    d->threshold = 0.05;
    d->min_change = 0.01;
    d->confidence = 0.99;
}

int pb_detect_cfg_parse(const json_t *o, pb_detect_cfg_t *d, pb_err_t *err)
{
    static const char *const keys[] = {"alpha", "min_effect", "threshold", "min_change",
                                       "confidence", NULL};
    pb_detect_cfg_default(d);
    if (o == NULL || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return pb_err_set(err, PB_EINVAL, "detect", "detect must be an object");
    int rc = pb_json_only_keys(o, keys, "detect", err);
    rc = rc ? rc : pb_json_num(o, "alpha", d->alpha, 1e-9, 0.5, &d->alpha, "detect", err);
    rc = rc ? rc
            : pb_json_num(o, "min_effect", d->min_effect, 0, 1, &d->min_effect, "detect", err);
    rc = rc ? rc : pb_json_num(o, "threshold", d->threshold, 0, 100, &d->threshold, "detect", err);
    rc = rc ? rc
            : pb_json_num(o, "min_change", d->min_change, 0, 100, &d->min_change, "detect", err);
    rc = rc ? rc
            : pb_json_num(o, "confidence", d->confidence, 0.5, 0.999999, &d->confidence, "detect",
                          err);
    return rc;
}

/* A schedule's settings and webhook (url[0] = 0: none); defaults when the
 * schedule is gone or its settings no longer parse. */
static void schedule_settings(pb_coord_t *c, int64_t sid, pb_detect_cfg_t *d, char *url,
                              size_t n)
{
    json_t *s = NULL;
    pb_detect_cfg_default(d);
    url[0] = '\0';
    if (sid <= 0 || pdb_schedule_get(c->db, sid, &s) != 0)
        return;
    if (pb_detect_cfg_parse(json_object_get(s, "detect"), d, NULL) != 0)
        pb_detect_cfg_default(d);
    const char *w = json_string_value(json_object_get(s, "webhook"));
    if (w)
        snprintf(url, n, "%s", w);
    json_decref(s);
}

/* {field: [before, after]} for each context field that differs. */
static json_t *context_changes(pb_coord_t *c, int64_t before, int64_t after)
{
    json_t *a = NULL, *b = NULL, *out = json_object();
    if (before == after || pdb_context_get(c->db, before, &a) || pdb_context_get(c->db, after, &b))
        goto done;
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        json_t *old = json_object_get(a, k);
        if (old == NULL || !json_equal(old, v))
            json_object_set_new(out, k, json_pack("[O?, O]", old, v));
    }
    json_object_foreach(a, k, v)
        if (json_object_get(b, k) == NULL)
            json_object_set_new(out, k, json_pack("[O, n]", v));
done:
    json_decref(a);
    json_decref(b);
    return out;
}

/* Queue the webhook delivery for regressions ids (of one job, or of a scan
 * when job_id is 0) of schedule sid. */
static int queue_delivery(pb_coord_t *c, int64_t sid, const char *url, int64_t job_id,
                          const json_t *ids)
{
    json_t *regs = json_array(), *sched = NULL;
    size_t i;
    json_t *v;
    int rc = pdb_schedule_get(c->db, sid, &sched);
    json_array_foreach(ids, i, v)
    {
        json_t *r = NULL;
        if (rc == 0 && (rc = pdb_regression_get(c->db, json_integer_value(v), &r)) == 0)
            json_array_append_new(regs, r);
    }
    if (rc) {
        json_decref(regs);
        json_decref(sched);
        return rc;
    }
    json_t *body = json_pack("{s:s, s:{s:I, s:O?}, s:o?, s:I, s:o}", "event", "regressions",
                             "schedule", "id", (json_int_t)sid, "name",
                             json_object_get(sched, "name"), "job_id",
                             job_id > 0 ? json_integer(job_id) : NULL, "count",
                             (json_int_t)json_array_size(regs), "regressions", regs);
    json_decref(sched);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return PB_ENOMEM;
    rc = pdb_delivery_insert(c->db, sid, job_id, url, text, pb_wall_time(), NULL);
    free(text);
    return rc;
}

/* ---- stage 1: ingestion ---- */

typedef struct ingest {
    pb_coord_t *c;
    int64_t job_id, schedule_id;
    double t;
    int history; /* done before detection existed: points, no alerts */
    char model[256];
    pb_detect_cfg_t cfg;
    json_t *created; /* ids of the regressions this job raised */
} ingest_t;

int pb_detect_gate(const pb_detect_cfg_t *cfg, int kind, pdb_point_t *p, const pdb_point_t *hist,
                   size_t nh, pdb_regression_t *r)
{
    if (kind == PS_KIND_PROPORTION && nh > 0) {
        const pdb_point_t *prev = &hist[nh - 1];
        long n1 = lround(prev->n), n2 = lround(p->n);
        long k1 = lround(prev->value * prev->n), k2 = lround(p->value * p->n);
        p->baseline = prev->value;
        if (n1 <= 0 || n2 <= 0)
            return 0;
        int dropped = 0;
        double pv, diff, lo, hi;
        if (pb_rg_prop_drop(k1, n1, k2, n2, cfg->alpha, cfg->min_effect, &dropped, &pv) ||
            pb_rg_two_prop(k1, n1, k2, n2, &pv, &diff, &lo, &hi))
            return 0;
        if (!dropped)
            return 0;
        r->detector = pb_rg_two_prop_exact(k1, n1, k2, n2) ? "fisher" : "two_prop";
        r->job_before = prev->job_id;
        r->value_before = prev->value;
        r->change = p->value - prev->value;
        r->p_value = pv;
        /* The interval of the drop, before minus after. */
        r->ci_lo = lo;
        r->ci_hi = hi;
        return 1;
    }
    if ((kind == PS_KIND_LOWER || kind == PS_KIND_HIGHER) && nh >= 2) {
        double vals[PB_RG_MAX_HISTORY];
        for (size_t i = 0; i < nh; i++)
            vals[i] = hist[i].value;
        pb_rg_perf_t res;
        if (pb_rg_perf_check(vals, nh, p->value, cfg->min_change, cfg->threshold,
                             cfg->confidence, &res) != 0 ||
            res.n < 2)
            return 0;
        p->baseline = res.mean;
        p->limit_lo = res.lo;
        p->limit_hi = res.hi;
        int worse = res.flagged && (kind == PS_KIND_LOWER ? res.side > 0 : res.side < 0);
        if (!worse)
            return 0;
        double se = res.sd * sqrt(1.0 + 1.0 / (double)res.n);
        r->detector = "perf_gate";
        r->job_before = hist[nh - 1].job_id;
        r->value_before = res.mean;
        r->change = res.change;
        r->p_value = se > 0 ? 2.0 * (1.0 - pb_rg_t_cdf(fabs(p->value - res.mean) / se,
                                                      (double)res.n - 1.0))
                            : 0.0;
        r->ci_lo = res.lo;
        r->ci_hi = res.hi;
        return 1;
    }
    return 0;
}

static int ingest_point(ingest_t *g, const pdb_series_key_t *k, pdb_point_t *p)
{
    pb_coord_t *c = g->c;
    int64_t sid = 0;
    int rc = pdb_series_upsert(c->db, k, pb_wall_time(), &sid);
    if (rc)
        return rc;
    p->series_id = sid;
    pdb_point_t hist[PB_RG_MAX_HISTORY];
    size_t nh = 0;
    rc = pdb_series_points(c->db, sid, p->job_id, p->run_idx, PB_RG_MAX_HISTORY, hist, &nh);
    if (rc)
        return rc;
    pdb_regression_t r = {.series_id = sid, .detector_version = PB_RG_VERSION,
                          .job_after = p->job_id, .value_after = p->value, .value_before = NAN,
                          .change = NAN, .p_value = NAN, .ci_lo = NAN, .ci_hi = NAN};
    int worse = pb_detect_gate(&g->cfg, k->kind, p, hist, nh, &r);
    rc = pdb_point_insert(c->db, p);
    if (rc == PB_EEXIST)
        return 0; /* ingested before (a retried pass): nothing new to say */
    if (rc || !worse || g->history)
        return rc;
    json_t *changes = context_changes(c, nh ? hist[nh - 1].context_id : 0, p->context_id);
    r.changes = changes;
    int64_t id = 0;
    int created = 0;
    rc = pdb_regression_upsert(c->db, &r, pb_wall_time(), &id, &created);
    json_decref(changes);
    if (rc == 0 && created) {
        json_array_append_new(g->created, json_integer(id));
        pb_warn("regression %lld: %s/%s bucket %lld %s went %g -> %g (%s, p=%.3g, job %lld)",
                (long long)id, k->suite, k->task, (long long)k->bucket, k->metric,
                r.value_before, r.value_after, r.detector, r.p_value, (long long)g->job_id);
    }
    return rc;
}

/* Where bucket (run, bucket) of the job ran: testbed and context ids. */
static void bucket_prov(const json_t *prov, int64_t run, int64_t bucket, int64_t *tb, int64_t *cx)
{
    size_t i;
    json_t *v;
    *tb = *cx = 0;
    json_array_foreach(prov, i, v)
        if (json_integer_value(json_object_get(v, "run")) == run &&
            json_integer_value(json_object_get(v, "bucket")) == bucket) {
            *tb = json_integer_value(json_object_get(v, "testbed_id"));
            *cx = json_integer_value(json_object_get(v, "context_id"));
            return;
        }
}

/* The points of one bucket: the score, then each defined metric. */
static int ingest_bucket(ingest_t *g, const ps_suite_t *suite, pdb_series_key_t *k, int64_t run,
                         const json_t *b, const json_t *prov)
{
    int64_t cx;
    k->bucket = json_integer_value(json_object_get(b, "bucket"));
    bucket_prov(prov, run, k->bucket, &k->testbed_id, &cx);
    double n = json_number_value(json_object_get(b, "n"));
    if (n <= 0)
        return 0;
    pdb_point_t p = {.job_id = g->job_id, .run_idx = run, .context_id = cx, .t = g->t,
                     .value = json_number_value(json_object_get(b, "score_sum")) / n, .n = n,
                     .baseline = NAN, .limit_lo = NAN, .limit_hi = NAN};
    pb_wilson(p.value * n, n, &p.lower, &p.upper);
    k->metric = "score";
    k->kind = PS_KIND_PROPORTION;
    int rc = ingest_point(g, k, &p);
    const json_t *means = json_object_get(b, "metrics"), *counts = json_object_get(b, "metrics_n");
    size_t nm = ps_suite_n_metrics(suite);
    for (size_t m = 0; rc == 0 && m < nm; m++) {
        const json_t *v = json_object_get(means, suite->metrics[m]);
        double mn = json_number_value(json_object_get(counts, suite->metrics[m]));
        if (!json_is_number(v) || !isfinite(json_number_value(v)) || mn <= 0)
            continue;
        k->metric = suite->metrics[m];
        k->kind = suite->metric_kinds ? suite->metric_kinds[m] : PS_KIND_PROPORTION;
        p.value = json_number_value(v);
        p.n = mn;
        p.baseline = p.limit_lo = p.limit_hi = NAN;
        if (k->kind == PS_KIND_PROPORTION)
            pb_wilson(p.value * mn, mn, &p.lower, &p.upper);
        else
            p.lower = p.upper = NAN;
        rc = ingest_point(g, k, &p);
    }
    return rc;
}

static int ingest_job(pb_coord_t *c, int64_t job_id, int history)
{
    ingest_t g = {.c = c, .job_id = job_id, .history = history, .created = json_array()};
    json_t *res = NULL, *prov = NULL;
    char url[2048];
    int rc = g.created ? 0 : PB_ENOMEM;
    rc = rc ? rc : pdb_job_brief(c->db, job_id, &g.schedule_id, &g.t, g.model, sizeof g.model);
    if (rc)
        goto out;
    schedule_settings(c, g.schedule_id, &g.cfg, url, sizeof url);
    rc = pdb_job_results(c->db, job_id, &res);
    rc = rc ? rc : pdb_job_provenance(c->db, job_id, &prov);
    size_t i, j;
    json_t *run, *b;
    json_array_foreach(json_object_get(res, "runs"), i, run)
    {
        if (rc || (rc = pb_api_decorate_run(run)) != 0)
            break;
        const ps_suite_t *suite = ps_suite_find(json_string_value(json_object_get(run, "suite")));
        char *params = json_dumps(json_object_get(run, "params"), JSON_COMPACT | JSON_SORT_KEYS);
        if (suite == NULL || params == NULL) {
            free(params);
            continue; /* a suite this build no longer has: nothing to compare */
        }
        pdb_series_key_t k = {.schedule_id = g.schedule_id, .model = g.model,
                              .suite = suite->name,
                              .task = json_string_value(json_object_get(run, "task")),
                              .params = params,
                              .unit = json_string_value(json_object_get(run, "unit"))};
        int64_t idx = json_integer_value(json_object_get(run, "index"));
        json_array_foreach(json_object_get(run, "buckets"), j, b)
        {
            if ((rc = ingest_bucket(&g, suite, &k, idx, b, prov)) != 0)
                break;
        }
        free(params);
    }
    rc = rc ? rc : pdb_job_set_ingested(c->db, job_id);
    if (rc == 0 && url[0] && json_array_size(g.created) > 0)
        rc = queue_delivery(c, g.schedule_id, url, job_id, g.created);
out:
    json_decref(res);
    json_decref(prov);
    json_decref(g.created);
    return rc;
}

int pb_detect_ingest(pb_coord_t *c, size_t max)
{
    int64_t ids[64];
    int history[64];
    size_t n = 0, done = 0;
    if (max > 64)
        max = 64;
    if (pdb_jobs_to_ingest(c->db, max, ids, history, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (pdb_begin(c->db) != 0)
            break;
        int rc = ingest_job(c, ids[i], history[i]);
        if (rc == 0)
            rc = pdb_commit(c->db);
        if (rc) {
            pdb_rollback(c->db);
            pb_error("job %lld: recording its series failed (%s); will retry",
                     (long long)ids[i], pb_strerror(rc));
            break; /* oldest first: later jobs wait so history stays in order */
        }
        done++;
    }
    return (int)done;
}

/* ---- stage 2: change points ---- */

/* Means of x over [a, b). */
static double mean_of(const double *x, size_t a, size_t b)
{
    double s = 0;
    for (size_t i = a; i < b; i++)
        s += x[i];
    return b > a ? s / (double)(b - a) : NAN;
}

size_t pb_detect_change_points(const double *x, size_t n, pb_detect_cp_t *out)
{
    size_t cps[PB_RG_MAX_POINTS], ncps = PB_RG_MAX_POINTS;
    if (n > PB_RG_MAX_POINTS ||
        pb_rg_changepoints(x, n, PB_DETECT_CP_MIN_SIDE, PB_DETECT_CP_ALPHA, cps, &ncps) != 0)
        return 0;
    for (size_t i = 0; i < ncps; i++) {
        pb_detect_cp_t *c = &out[i];
        c->k = cps[i];
        c->a = i ? cps[i - 1] : 0;
        c->b = i + 1 < ncps ? cps[i + 1] : n;
        c->mean_before = mean_of(x, c->a, c->k);
        c->mean_after = mean_of(x, c->k, c->b);
        c->p_value = pb_rg_welch(x, c->a, c->k, c->b);
    }
    return ncps;
}

/* Is the step from mb to ma a regression worth a record for this kind? */
static int step_worse(int kind, const pb_detect_cfg_t *d, double mb, double ma)
{
    if (kind == PS_KIND_PROPORTION)
        return mb - ma > 0 && mb - ma >= d->min_effect;
    if (mb == 0)
        return 0;
    double rel = (ma - mb) / fabs(mb);
    return kind == PS_KIND_LOWER ? rel >= d->threshold : -rel >= d->threshold;
}

/* Does the series already have a regression within MIN_SIDE points of k? */
static int already_known(const json_t *regs, const pdb_point_t *pts, size_t n, size_t k)
{
    size_t lo = k >= PB_DETECT_CP_MIN_SIDE ? k - PB_DETECT_CP_MIN_SIDE + 1 : 0;
    size_t hi = k + PB_DETECT_CP_MIN_SIDE < n ? k + PB_DETECT_CP_MIN_SIDE : n;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(regs, "regressions"), i, r)
    {
        json_int_t ja = json_integer_value(json_object_get(r, "job_after"));
        for (size_t j = lo; j < hi; j++)
            if (pts[j].job_id == ja)
                return 1;
    }
    return 0;
}

/* Scan one series; created regression ids go in created. */
static int scan_series(pb_coord_t *c, int64_t sid, int *n_cps, json_t *created, int64_t *sched)
{
    json_t *regs = NULL;
    pdb_point_t pts[PB_RG_MAX_POINTS];
    double x[PB_RG_MAX_POINTS];
    pb_detect_cp_t cps[PB_RG_MAX_POINTS];
    size_t n = 0;
    int kind = PS_KIND_INFO;
    int rc = pdb_series_info(c->db, sid, &kind, sched);
    if (rc)
        goto out;
    if (kind == PS_KIND_INFO)
        goto done;
    if ((rc = pdb_series_points(c->db, sid, 0, 0, PB_RG_MAX_POINTS, pts, &n)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        x[i] = pts[i].value;
    size_t ncps = pb_detect_change_points(x, n, cps);
    *n_cps += (int)ncps;
    if (ncps == 0)
        goto done; /* most series on most nights: no settings or records to read */
    pb_detect_cfg_t cfg;
    char url[8];
    schedule_settings(c, *sched, &cfg, url, sizeof url);
    for (size_t i = 0; i < ncps; i++) {
        size_t k = cps[i].k;
        double mb = cps[i].mean_before, ma = cps[i].mean_after;
        if (!step_worse(kind, &cfg, mb, ma))
            continue;
        /* The series' records, read once, only when a step is worth one. */
        if (regs == NULL && (rc = pdb_regressions_list(c->db, NULL, 0, sid, 1000, &regs)) != 0)
            goto out;
        if (already_known(regs, pts, n, k))
            continue;
        json_t *changes = context_changes(c, pts[k - 1].context_id, pts[k].context_id);
        pdb_regression_t r = {.series_id = sid, .detector = "changepoint",
                              .detector_version = PB_RG_VERSION, .job_before = pts[k - 1].job_id,
                              .job_after = pts[k].job_id, .value_before = mb, .value_after = ma,
                              .change = kind == PS_KIND_PROPORTION ? ma - mb
                                                                   : (ma - mb) / fabs(mb),
                              .p_value = cps[i].p_value, .ci_lo = NAN, .ci_hi = NAN,
                              .changes = changes};
        int64_t id = 0;
        int made = 0;
        rc = pdb_regression_upsert(c->db, &r, pb_wall_time(), &id, &made);
        json_decref(changes);
        if (rc)
            goto out;
        if (made) {
            json_array_append_new(created, json_integer(id));
            pb_warn("regression %lld: change point in series %lld at job %lld (%g -> %g)",
                    (long long)id, (long long)sid, (long long)r.job_after, mb, ma);
        }
    }
done:
    rc = pdb_series_scanned(c->db, sid, pb_wall_time());
out:
    json_decref(regs);
    return rc;
}

int pb_detect_scan(pb_coord_t *c, int all, int limit, json_t **summary)
{
    json_t *ids = NULL, *by_sched = json_object();
    int rc = by_sched ? pdb_series_unscanned(c->db, all, limit, &ids) : PB_ENOMEM;
    int n_cps = 0, created_total = 0;
    size_t i;
    json_t *v;
    if (rc)
        goto out;
    rc = pdb_begin(c->db);
    if (rc)
        goto out;
    json_array_foreach(ids, i, v)
    {
        json_t *created = json_array();
        int64_t sched = 0;
        rc = created ? scan_series(c, json_integer_value(v), &n_cps, created, &sched) : PB_ENOMEM;
        if (rc == 0 && json_array_size(created) > 0) {
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)sched);
            json_t *list = json_object_get(by_sched, key);
            if (list == NULL)
                json_object_set_new(by_sched, key, list = json_array());
            json_array_extend(list, created);
            created_total += (int)json_array_size(created);
        }
        json_decref(created);
        if (rc)
            break;
    }
    const char *key;
    json_object_foreach(by_sched, key, v)
    {
        pb_detect_cfg_t cfg;
        char url[2048];
        int64_t sid = strtoll(key, NULL, 10);
        schedule_settings(c, sid, &cfg, url, sizeof url);
        if (rc == 0 && sid > 0 && url[0])
            rc = queue_delivery(c, sid, url, 0, v);
    }
    rc = rc ? rc : pdb_commit(c->db);
    if (rc)
        pdb_rollback(c->db);
    else if (json_array_size(ids) > 0)
        pb_info("change-point pass: %zu series, %d change points, %d new regressions",
                json_array_size(ids), n_cps, created_total);
out:
    if (summary)
        *summary = rc ? NULL
                      : json_pack("{s:I, s:i, s:i}", "series_scanned",
                                  (json_int_t)json_array_size(ids), "change_points", n_cps,
                                  "regressions_created", created_total);
    json_decref(ids);
    json_decref(by_sched);
    return rc;
}
