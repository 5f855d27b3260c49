/* Regression API routes (api_regress.h). A series' change points are
 * computed when asked, by the same deterministic detector the nightly pass
 * runs, so the dashboard marks exactly what the pass would find. */
#include "coordinator/api_regress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/regress.h"
#include "common/util.h"
#include "coordinator/detect.h"
#include "db/store.h"

#define WEBHOOK_URL_MAX 2000

int pb_api_schedule_alerts(const json_t *body, const char **webhook, int *set,
                           const json_t **detect, pb_err_t *err)
{
    const json_t *w = json_object_get(body, "webhook");
    *webhook = NULL;
    *set = w != NULL;
    *detect = json_object_get(body, "detect");
    if (w && !json_is_null(w)) {
        const char *u = json_string_value(w);
        if (u == NULL || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
            strlen(u) > WEBHOOK_URL_MAX || strpbrk(u, " \t\r\n") != NULL)
            return pb_err_set(err, PB_EINVAL, "webhook",
                              "webhook must be an http:// or https:// URL of at most %d "
                              "characters, or null",
                              WEBHOOK_URL_MAX);
        *webhook = u;
    }
    pb_detect_cfg_t d;
    if (*detect && json_is_null(*detect))
        *detect = NULL;
    return pb_detect_cfg_parse(*detect, &d, err);
}

/* ---- series ---- */

/* [{"index", "job_id", "mean_before", "mean_after", "p_value"}] over the
 * detector's window of points (the last PB_RG_MAX_POINTS). */
static json_t *change_points(const json_t *points)
{
    size_t n = json_array_size(points), start = n > PB_RG_MAX_POINTS ? n - PB_RG_MAX_POINTS : 0;
    double x[PB_RG_MAX_POINTS];
    pb_detect_cp_t cps[PB_RG_MAX_POINTS];
    json_t *out = json_array();
    for (size_t i = start; i < n; i++)
        x[i - start] = json_number_value(json_object_get(json_array_get(points, i), "value"));
    size_t ncps = pb_detect_change_points(x, n - start, cps);
    for (size_t i = 0; out && i < ncps; i++)
        json_array_append_new(
            out, json_pack("{s:I, s:O, s:f, s:f, s:f}", "index", (json_int_t)(start + cps[i].k),
                           "job_id", json_object_get(json_array_get(points, start + cps[i].k),
                                                     "job_id"),
                           "mean_before", cps[i].mean_before, "mean_after", cps[i].mean_after,
                           "p_value", cps[i].p_value));
    return out;
}

static void series_list(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    char model[256], suite[64], task[64], metric[64];
    int64_t sched, limit;
    if (pb_api_query_int(req, resp, "schedule", 0, 0, INT64_MAX / 2, &sched) ||
        pb_api_query_int(req, resp, "limit", 500, 1, 10000, &limit) ||
        pb_api_query_str(req, resp, "model", model, sizeof model) ||
        pb_api_query_str(req, resp, "suite", suite, sizeof suite) ||
        pb_api_query_str(req, resp, "task", task, sizeof task) ||
        pb_api_query_str(req, resp, "metric", metric, sizeof metric))
        return;
    pdb_series_filter_t f = {.schedule_id = sched, .model = model, .suite = suite, .task = task,
                             .metric = metric, .limit = (int)limit};
    json_t *out = NULL;
    int rc = pdb_series_list(c->db, &f, &out);
    if (rc)
        pb_api_reply_rc(resp, rc, "series");
    else
        pb_api_reply_json(resp, 200, out);
}

static void series_one(pb_coord_t *c, int64_t id, pb_http_resp_t *resp)
{
    json_t *out = NULL, *regs = NULL;
    int rc = pdb_series_get(c->db, id, &out);
    rc = rc ? rc : pdb_regressions_list(c->db, NULL, 0, id, 1000, &regs);
    if (rc) {
        json_decref(out);
        pb_api_reply_rc(resp, rc, "series");
        return;
    }
    json_object_set_new(out, "change_points", change_points(json_object_get(out, "points")));
    json_object_set(out, "regressions", json_object_get(regs, "regressions"));
    json_decref(regs);
    pb_api_reply_json(resp, 200, out);
}

/* ---- regressions ---- */

static void regressions_list(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    static const char *const states[] = {"", "open", "detected", "acknowledged", "fixed",
                                         "ignored"};
    char state[32];
    int64_t sched, series, limit;
    if (pb_api_query_str(req, resp, "state", state, sizeof state) ||
        pb_api_query_int(req, resp, "schedule", 0, 0, INT64_MAX / 2, &sched) ||
        pb_api_query_int(req, resp, "series", 0, 0, INT64_MAX / 2, &series) ||
        pb_api_query_int(req, resp, "limit", 200, 1, 1000, &limit))
        return;
    int ok = 0;
    for (size_t i = 0; i < PB_ARRAY_LEN(states); i++)
        ok |= strcmp(state, states[i]) == 0;
    if (!ok) {
        pb_http_resp_error(resp, 400,
                           "state must be open, detected, acknowledged, fixed or ignored",
                           "state");
        return;
    }
    json_t *out = NULL;
    int rc = pdb_regressions_list(c->db, state, sched, series, (int)limit, &out);
    if (rc)
        pb_api_reply_rc(resp, rc, "regressions");
    else
        pb_api_reply_json(resp, 200, out);
}

/* POST/PATCH {"state", "note"}: triage one regression. */
static void regression_triage(pb_coord_t *c, int64_t id, const pb_http_req_t *req,
                              pb_http_resp_t *resp)
{
    static const char *const keys[] = {"state", "note", NULL};
    json_t *body = pb_api_parse_body(req, resp);
    if (body == NULL)
        return;
    pb_err_t err = {0};
    const char *state = NULL, *note = NULL;
    int rc = pb_json_only_keys(body, keys, "", &err);
    rc = rc ? rc : pb_json_str(body, "state", NULL, 1, &state, "", &err);
    rc = rc ? rc : pb_json_str(body, "note", NULL, 0, &note, "", &err);
    if (rc == 0 && note && strlen(note) > 2000)
        rc = pb_err_set(&err, PB_EINVAL, "note", "note must be at most 2000 characters");
    if (rc) {
        pb_http_resp_error(resp, 400, err.msg, err.field[0] ? err.field : NULL);
        json_decref(body);
        return;
    }
    rc = pdb_regression_set_state(c->db, id, state, note, pb_wall_time());
    json_decref(body);
    if (rc == PB_EINVAL) {
        pb_http_resp_error(resp, 400,
                           "state must be detected, acknowledged, fixed or ignored", "state");
        return;
    }
    json_t *out = NULL;
    rc = rc ? rc : pdb_regression_get(c->db, id, &out);
    if (rc)
        pb_api_reply_rc(resp, rc, "regression");
    else
        pb_api_reply_json(resp, 200, out);
}

static void regression_scan(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    int all = 0;
    if (req->body_len > 0) {
        json_t *body = pb_api_parse_body(req, resp);
        pb_err_t err = {0};
        static const char *const keys[] = {"all", NULL};
        if (body == NULL)
            return;
        if (pb_json_only_keys(body, keys, "", &err) ||
            pb_json_bool(body, "all", 0, &all, "", &err)) {
            pb_http_resp_error(resp, 400, err.msg, err.field[0] ? err.field : NULL);
            json_decref(body);
            return;
        }
        json_decref(body);
    }
    json_t *summary = NULL;
    int rc = pb_detect_scan(c, all, 0, &summary);
    if (rc)
        pb_api_reply_rc(resp, rc, "change-point pass");
    else
        pb_api_reply_json(resp, 200, summary);
}

int pb_api_regress_route(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp,
                         const char *p)
{
    const char *rest;
    int64_t id;
    json_t *out = NULL;
    int rc;
    if (strcmp(p, "series") == 0) {
        if (!pb_api_method_is(req, "GET"))
            pb_api_method_not_allowed(resp, "GET");
        else
            series_list(c, req, resp);
    } else if (strncmp(p, "series/", 7) == 0) {
        if ((id = pb_api_path_id(p + 7, &rest)) < 0 || rest[0])
            pb_http_resp_error(resp, 404, "series id must be a positive integer", "id");
        else if (!pb_api_method_is(req, "GET"))
            pb_api_method_not_allowed(resp, "GET");
        else
            series_one(c, id, resp);
    } else if (strcmp(p, "regressions") == 0) {
        if (!pb_api_method_is(req, "GET"))
            pb_api_method_not_allowed(resp, "GET");
        else
            regressions_list(c, req, resp);
    } else if (strcmp(p, "regressions/scan") == 0) {
        if (!pb_api_method_is(req, "POST"))
            pb_api_method_not_allowed(resp, "POST");
        else
            regression_scan(c, req, resp);
    } else if (strncmp(p, "regressions/", 12) == 0) {
        if ((id = pb_api_path_id(p + 12, &rest)) < 0 || rest[0]) {
            pb_http_resp_error(resp, 404, "regression id must be a positive integer", "id");
        } else if (pb_api_method_is(req, "GET")) {
            rc = pdb_regression_get(c->db, id, &out);
            if (rc)
                pb_api_reply_rc(resp, rc, "regression");
            else
                pb_api_reply_json(resp, 200, out);
        } else if (pb_api_method_is(req, "POST") || pb_api_method_is(req, "PATCH")) {
            regression_triage(c, id, req, resp);
        } else {
            pb_api_method_not_allowed(resp, "GET, POST, PATCH");
        }
    } else if (strcmp(p, "testbeds") == 0) {
        if (!pb_api_method_is(req, "GET"))
            return pb_api_method_not_allowed(resp, "GET"), 1;
        rc = pdb_testbeds_list(c->db, &out);
        if (rc)
            pb_api_reply_rc(resp, rc, "testbeds");
        else
            pb_api_reply_json(resp, 200, out);
    } else if (strcmp(p, "deliveries") == 0) {
        int64_t sched, limit;
        if (!pb_api_method_is(req, "GET"))
            return pb_api_method_not_allowed(resp, "GET"), 1;
        if (pb_api_query_int(req, resp, "schedule", 0, 0, INT64_MAX / 2, &sched) ||
            pb_api_query_int(req, resp, "limit", 200, 1, 1000, &limit))
            return 1;
        rc = pdb_deliveries_list(c->db, sched, (int)limit, &out);
        if (rc)
            pb_api_reply_rc(resp, rc, "deliveries");
        else
            pb_api_reply_json(resp, 200, out);
    } else {
        return 0;
    }
    return 1;
}
