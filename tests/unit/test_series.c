/* Unit tests for issue 7's store and helpers: provenance recorded with a
 * result (deduplicated, malformed refused), series keys, point history
 * order, regression upserts and triage, webhook delivery bookkeeping and
 * back-off, and the newest-checkpoint choice of "latest_in". */
#include "tests/unit/test_db.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "common/regress.h"
#include "coordinator/detect.h"
#include "coordinator/latest.h"
#include "coordinator/webhook.h"
#include "suites/suite.h"

/* Lease the first queued task and record it with provenance prov_json. */
static int record_next(pdb_t *db, const char *prov_json)
{
    int attempt, done = 0;
    int64_t lo, hi, job = 0, id = tdb_first_task(db, 0);
    tdb_lease(db, id, "w1", &attempt, &lo, &hi);
    json_t *items = tdb_items_for(lo, hi, 1.0);
    json_error_t je;
    json_t *agg = json_pack("{s:I, s:f, s:o}", "n", (json_int_t)(hi - lo), "score_sum",
                            (double)(hi - lo), "provenance",
                            json_loads(prov_json, JSON_DECODE_ANY, &je));
    int rc = pdb_task_record(db, id, attempt, items, agg, &done, &job, NULL);
    json_decref(items);
    json_decref(agg);
    if (rc) /* give the lease back so the next call finds the task queued */
        assert_int_equal(pdb_task_release(db, id, attempt, "test", 1, &done), 0);
    return rc;
}

static void test_provenance_recorded_once(void **state)
{
    tdb_fx_t *f = *state;
    tdb_insert(f->db, "m1", "arithmetic", 1, 1, 12, 4, 3);
    const char *prov = "{\"testbed\": {\"cpu_model\": \"X\", \"threads\": 2}, "
                       "\"context\": {\"git_commit\": \"abc\", \"seed\": 1}}";
    /* Malformed provenance is refused whole: nothing is recorded. */
    assert_int_equal(record_next(f->db, "{\"testbed\": 5}"), PB_EPARSE);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM tasks WHERE state = 'done'"), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM items"), 0);
    assert_int_equal(record_next(f->db, prov), 0);
    assert_int_equal(record_next(f->db, prov), 0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM testbeds"), 1);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM contexts"), 1);
    assert_int_equal(tdb_raw(f->path, "SELECT count(DISTINCT testbed_id) FROM tasks "
                                      "WHERE testbed_id IS NOT NULL"),
                     1);
    /* A different commit is a new context on the same testbed. */
    assert_int_equal(record_next(f->db,
                                 "{\"testbed\": {\"cpu_model\": \"X\", \"threads\": 2}, "
                                 "\"context\": {\"git_commit\": \"def\", \"seed\": 1}}"),
                     0);
    assert_int_equal(tdb_raw(f->path, "SELECT count(*) FROM contexts"), 2);
    json_t *prov_rows = NULL;
    assert_int_equal(pdb_job_provenance(f->db, 1, &prov_rows), 0);
    json_t *row = json_array_get(prov_rows, 0);
    assert_true(tdb_jint(row, "testbed_id") > 0);
    assert_int_equal(tdb_jint(row, "context_id"), 2); /* the last recorded */
    json_decref(prov_rows);
    json_t *tb = NULL;
    assert_int_equal(pdb_testbeds_list(f->db, &tb), 0);
    assert_string_equal(tdb_jstr(json_array_get(json_object_get(tb, "testbeds"), 0), "name"),
                        "X, 2 threads");
    json_decref(tb);
}

static pdb_series_key_t key(int64_t testbed)
{
    return (pdb_series_key_t){.schedule_id = 0, .model = "m", .suite = "arithmetic",
                              .task = "add", .params = "{}", .metric = "score", .bucket = 3,
                              .kind = PS_KIND_PROPORTION, .testbed_id = testbed};
}

static pdb_point_t point(int64_t sid, int64_t job, double v)
{
    return (pdb_point_t){.series_id = sid, .job_id = job, .t = 1000.0 + (double)job, .value = v,
                         .n = 100, .lower = NAN, .upper = NAN, .baseline = NAN,
                         .limit_lo = NAN, .limit_hi = NAN};
}

static void test_series_points_history(void **state)
{
    tdb_fx_t *f = *state;
    int64_t a, b, a2;
    pdb_series_key_t k = key(0); /* 0: the run's tasks ran on several testbeds */
    assert_int_equal(pdb_series_upsert(f->db, &k, 1.0, &a), 0);
    assert_int_equal(pdb_series_upsert(f->db, &k, 2.0, &a2), 0);
    assert_int_equal(a, a2);
    k = key(2); /* another testbed: another series */
    assert_int_equal(pdb_series_upsert(f->db, &k, 1.0, &b), 0);
    assert_int_not_equal(a, b);
    for (int64_t j = 1; j <= 10; j++) {
        pdb_point_t p = point(a, j, 1.0 - (double)j / 100);
        assert_int_equal(pdb_point_insert(f->db, &p), 0);
    }
    pdb_point_t dup = point(a, 4, 0.5);
    assert_int_equal(pdb_point_insert(f->db, &dup), PB_EEXIST);
    pdb_point_t h[8];
    size_t n = 0;
    /* The last 3 before job 7, oldest first. */
    assert_int_equal(pdb_series_points(f->db, a, 7, 0, 3, h, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(h[0].job_id, 4);
    assert_int_equal(h[2].job_id, 6);
    assert_true(isnan(h[0].lower) && fabs(h[2].value - 0.94) < 1e-12);
    assert_int_equal(pdb_series_points(f->db, a, 0, 0, 8, h, &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(h[7].job_id, 10);
    json_t *list = NULL;
    pdb_series_filter_t flt = {.model = "m", .metric = "score"};
    assert_int_equal(pdb_series_list(f->db, &flt, &list), 0);
    json_t *s0 = json_array_get(json_object_get(list, "series"), 0);
    assert_int_equal(json_array_size(json_object_get(list, "series")), 2);
    assert_int_equal(tdb_jint(s0, "points"), 10);
    assert_string_equal(tdb_jstr(s0, "kind"), "proportion");
    assert_string_equal(tdb_jstr(json_object_get(s0, "testbed"), "name"), "several testbeds");
    json_decref(list);
    json_t *unscanned = NULL;
    assert_int_equal(pdb_series_unscanned(f->db, 0, 0, &unscanned), 0);
    assert_int_equal(json_array_size(unscanned), 2);
    json_decref(unscanned);
    assert_int_equal(pdb_series_scanned(f->db, a, 3.0), 0);
    assert_int_equal(pdb_series_unscanned(f->db, 0, 0, &unscanned), 0);
    assert_int_equal(json_array_size(unscanned), 1);
    json_decref(unscanned);
}

static void test_regressions_and_deliveries(void **state)
{
    tdb_fx_t *f = *state;
    int64_t sid, id, id2;
    int created;
    pdb_series_key_t k = key(1);
    assert_int_equal(pdb_series_upsert(f->db, &k, 1.0, &sid), 0);
    pdb_regression_t r = {.series_id = sid, .detector = "two_prop", .detector_version = 1,
                          .job_before = 3, .job_after = 4, .value_before = 1.0,
                          .value_after = 0.7, .change = -0.3, .p_value = 1e-9, .ci_lo = 0.2,
                          .ci_hi = 0.4};
    assert_int_equal(pdb_regression_upsert(f->db, &r, 10.0, &id, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(pdb_regression_set_state(f->db, id, "acknowledged", "seen", 11.0), 0);
    assert_int_equal(pdb_regression_set_state(f->db, id, "bogus", NULL, 11.0), PB_EINVAL);
    assert_int_equal(pdb_regression_set_state(f->db, id + 9, "fixed", NULL, 11.0), PB_ENOTFOUND);
    /* The same change found again (the nightly pass): one record, state kept. */
    r.detector = "changepoint";
    r.ci_lo = r.ci_hi = NAN;
    assert_int_equal(pdb_regression_upsert(f->db, &r, 12.0, &id2, &created), 0);
    assert_int_equal(id2, id);
    assert_int_equal(created, 0);
    json_t *g = NULL;
    assert_int_equal(pdb_regression_get(f->db, id, &g), 0);
    assert_string_equal(tdb_jstr(g, "state"), "acknowledged");
    assert_string_equal(tdb_jstr(g, "note"), "seen");
    assert_string_equal(tdb_jstr(g, "detector"), "changepoint");
    assert_true(json_is_null(json_object_get(g, "ci")));
    json_decref(g);
    r.job_after = 9;
    assert_int_equal(pdb_regression_upsert(f->db, &r, 13.0, &id2, &created), 0);
    assert_int_equal(created, 1);
    json_t *l = NULL;
    assert_int_equal(pdb_regressions_list(f->db, "open", 0, 0, 0, &l), 0);
    assert_int_equal(json_array_size(json_object_get(l, "regressions")), 2);
    assert_int_equal(tdb_jint(l, "unacknowledged"), 1);
    json_decref(l);
    assert_int_equal(pdb_regressions_list(f->db, "detected", 0, sid, 0, &l), 0);
    assert_int_equal(json_array_size(json_object_get(l, "regressions")), 1);
    json_decref(l);

    /* Deliveries: due when next_at passes, retried, then delivered. */
    int64_t d;
    assert_int_equal(pdb_delivery_insert(f->db, 1, 4, "http://x/", "{}", 100.0, &d), 0);
    json_t *due = NULL;
    assert_int_equal(pdb_deliveries_due(f->db, 99.0, 4, &due), 0);
    assert_int_equal(json_array_size(due), 0);
    json_decref(due);
    assert_int_equal(pdb_deliveries_due(f->db, 100.0, 4, &due), 0);
    assert_int_equal(json_array_size(due), 1);
    json_decref(due);
    assert_int_equal(pdb_delivery_attempted(f->db, d, "pending", 500, "HTTP 500", 105.0, 100.0), 0);
    assert_int_equal(pdb_deliveries_due(f->db, 104.0, 4, &due), 0);
    assert_int_equal(json_array_size(due), 0);
    json_decref(due);
    assert_int_equal(pdb_delivery_attempted(f->db, d, "delivered", 200, NULL, 106.0, 106.0), 0);
    assert_int_equal(pdb_deliveries_due(f->db, 1e12, 4, &due), 0);
    assert_int_equal(json_array_size(due), 0);
    json_decref(due);
    assert_int_equal(pdb_deliveries_list(f->db, 1, 0, &l), 0);
    json_t *d0 = json_array_get(json_object_get(l, "deliveries"), 0);
    assert_string_equal(tdb_jstr(d0, "state"), "delivered");
    assert_int_equal(tdb_jint(d0, "attempts"), 2);
    assert_int_equal(tdb_jint(d0, "last_status"), 200);
    assert_true(json_is_null(json_object_get(d0, "last_error")));
    json_decref(l);
}

/* Stage 1 on synthetic histories: proportions against the previous run,
 * measurements against the spread of up to 64 runs, by direction. */
static void test_gate(void **state)
{
    (void)state;
    pb_detect_cfg_t cfg;
    pb_detect_cfg_default(&cfg);
    pdb_point_t hist[20];
    pdb_regression_t r;
    for (int i = 0; i < 20; i++) /* timings around 100 us, +-1% */
        hist[i] = point(1, i + 1, 100.0 * (1.0 + 0.01 * ((i * 7) % 5 - 2) / 2.0));

    pdb_point_t p = point(1, 30, 125.0); /* 25% slower */
    memset(&r, 0, sizeof r);
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_LOWER, &p, hist, 20, &r), 1);
    assert_string_equal(r.detector, "perf_gate");
    assert_int_equal(r.job_before, 20);
    assert_true(fabs(r.change - 0.25) < 0.01 && r.p_value < 1e-6);
    assert_true(p.limit_lo < 100.0 && p.limit_hi > 100.0 && p.limit_hi < 105.0);
    p = point(1, 30, 75.0); /* faster: an improvement for a timing */
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_LOWER, &p, hist, 20, &r), 0);
    assert_true(!isnan(p.baseline));
    p = point(1, 30, 75.0); /* but a 25% loss of throughput */
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_HIGHER, &p, hist, 20, &r), 1);
    p = point(1, 30, 103.0); /* outside the band, under the 5% threshold */
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_LOWER, &p, hist, 20, &r), 0);
    p = point(1, 30, 500.0);
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_INFO, &p, hist, 20, &r), 0);
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_LOWER, &p, hist, 1, &r), 0); /* no spread */

    /* Proportions: 0.96 of 200 after 1.0 of 200 is significant but under
     * the 5-point minimum effect; 0.80 is a regression. */
    pdb_point_t prev = point(1, 5, 1.0), q = point(1, 6, 0.96);
    prev.n = q.n = 200;
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_PROPORTION, &q, &prev, 1, &r), 0);
    assert_true(q.baseline == 1.0);
    q.value = 0.80;
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_PROPORTION, &q, &prev, 1, &r), 1);
    assert_int_equal(r.job_before, 5);
    assert_true(fabs(r.change + 0.2) < 1e-12 && r.p_value < 1e-9 && r.ci_lo > 0.1);
    assert_string_equal(r.detector, "two_prop");
    /* Small n: Fisher's exact test, and 3 of 6 after 6 of 6 is not enough. */
    prev.n = q.n = 6;
    q.value = 0.5;
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_PROPORTION, &q, &prev, 1, &r), 0);
    q.value = 1.0; /* no drop, no alert; an improvement never alerts */
    prev.value = 0.5;
    assert_int_equal(pb_detect_gate(&cfg, PS_KIND_PROPORTION, &q, &prev, 1, &r), 0);
    /* The change-point helper: a step of 10% after 10 quiet points. */
    double x[20];
    pb_detect_cp_t cps[PB_RG_MAX_POINTS];
    for (int i = 0; i < 20; i++)
        x[i] = (i < 10 ? 100.0 : 110.0) + ((i * 3) % 4) * 0.1;
    assert_int_equal(pb_detect_change_points(x, 20, cps), 1);
    assert_int_equal(cps[0].k, 10);
    assert_true(fabs(cps[0].mean_after - cps[0].mean_before - 10.0) < 0.1);
    assert_true(cps[0].p_value < 1e-6);
}

static void test_webhook_backoff(void **state)
{
    (void)state;
    assert_true(fabs(pb_webhook_backoff(5, 1, 0.5) - 5.0) < 1e-9);
    assert_true(fabs(pb_webhook_backoff(5, 3, 0.5) - 20.0) < 1e-9);
    assert_true(fabs(pb_webhook_backoff(5, 30, 0.5) - PB_WEBHOOK_BACKOFF_MAX) < 1e-9);
    assert_true(pb_webhook_backoff(5, 2, 0.0) >= 8.0 - 1e-9);
    assert_true(pb_webhook_backoff(5, 2, 0.999) < 12.0);
}

static void mk_ckpt(const char *dir, const char *name, int with_config)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(mkdir(p, 0755), 0);
    if (with_config) {
        snprintf(p, sizeof p, "%s/%s/config.json", dir, name);
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        fputs("{}", fp);
        fclose(fp);
    }
}

static void test_latest_checkpoint(void **state)
{
    (void)state;
    char dir[256], out[1024], cmd[600];
    pb_err_t err = {.msg = ""};
    pb_test_tmpdir(dir, sizeof dir);
    assert_int_equal(pb_latest_checkpoint(dir, out, sizeof out, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "no checkpoint"));
    mk_ckpt(dir, "final", 1);
    mk_ckpt(dir, "step-99", 1);
    mk_ckpt(dir, "step-100", 1);
    mk_ckpt(dir, "step-5000", 0); /* no config.json: not a checkpoint yet */
    assert_int_equal(pb_latest_checkpoint(dir, out, sizeof out, &err), 0);
    char want[600];
    snprintf(want, sizeof want, "%s/step-100", dir);
    assert_string_equal(out, want);

    json_t *spec = json_pack("{s:{s:s, s:s, s:s}}", "model", "name", "m", "backend", "native",
                             "latest_in", dir), *res = NULL;
    assert_int_equal(pb_latest_resolve(spec, 0, &res, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(res, "model"), "path")),
                        want);
    assert_null(json_object_get(json_object_get(spec, "model"), "path")); /* a copy */
    json_decref(res);
    json_object_set_new(json_object_get(spec, "model"), "path", json_string("/x"));
    assert_int_equal(pb_latest_resolve(spec, 0, &res, &err), PB_EINVAL);
    assert_string_equal(err.field, "model.latest_in");
    json_decref(spec);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int pb_test_series(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tdb_fx_setup, tdb_fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_provenance_recorded_once),
        T(test_series_points_history),
        T(test_regressions_and_deliveries),
        cmocka_unit_test(test_gate),
        cmocka_unit_test(test_webhook_backoff),
        cmocka_unit_test(test_latest_checkpoint),
    };
#undef T
    return cmocka_run_group_tests_name("series", tests, NULL, NULL);
}
