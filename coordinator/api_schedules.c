/* Schedule routes (api_schedules.h): create, list, read, edit (PATCH),
 * enable and disable, and the tick's firing of due schedules. A job
 * template is checked the way a submission is, except that a latest_in
 * directory may not hold a checkpoint yet. */
#include "coordinator/api_schedules.h"

#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "coordinator/api_datasets.h"
#include "coordinator/api_regress.h"
#include "coordinator/cron.h"
#include "coordinator/latest.h"
#include "suites/jobspec.h"

/* A job template as a schedule stores it: checked the way a submission
 * is, with a latest_in directory allowed to hold no checkpoint yet; errors
 * name the field under "job". */
static int check_template(pb_coord_t *c, const json_t *tmpl, pb_err_t *err)
{
    ps_plan_t *plan = NULL;
    json_t *resolved = NULL;
    int rc;
    if (!json_is_object(tmpl))
        return pb_err_set(err, PB_EINVAL, "job",
                          "job (the job template) is required and must be an object");
    rc = pb_latest_resolve(tmpl, 1, &resolved, err);
    rc = rc ? rc : ps_plan_build_ds(resolved, pb_api_dataset_resolve, c, &plan, err);
    rc = rc ? rc : pb_api_check_native_pe(plan->model, err);
    ps_plan_free(plan);
    json_decref(resolved);
    if (rc) {
        char f[sizeof err->field];
        snprintf(f, sizeof f, "%s", err->field);
        snprintf(err->field, sizeof err->field, "job%s%.120s", f[0] ? "." : "", f);
    }
    return rc;
}

static void api_schedule_create(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp)
{
    static const char *const keys[] = {"name", "cron", "job", "enabled", "webhook", "detect", NULL};
    json_t *body = pb_api_parse_body(req, resp);
    if (body == NULL)
        return;
    pb_err_t err = {0};
    const char *name = NULL, *cron = NULL;
    int enabled = 1;
    pb_cron_t cr;
    const char *webhook;
    const json_t *detect;
    int set_webhook;
    json_t *tmpl = json_object_get(body, "job");
    if (pb_json_only_keys(body, keys, "", &err) || pb_json_str(body, "name", NULL, 1, &name, "", &err) ||
        pb_json_str(body, "cron", NULL, 1, &cron, "", &err) ||
        pb_json_bool(body, "enabled", 1, &enabled, "", &err) || pb_cron_parse(cron, &cr, &err) ||
        pb_api_schedule_alerts(body, &webhook, &set_webhook, &detect, &err))
        goto bad;
    if (strlen(name) == 0 || strlen(name) > 128) {
        pb_err_set(&err, PB_EINVAL, "name", "name must be 1 to 128 characters");
        goto bad;
    }
    if (check_template(c, tmpl, &err))
        goto bad;
    int64_t id = 0;
    double next = pb_cron_next(&cr, pb_wall_time());
    int rc = pdb_begin(c->db);
    rc = rc ? rc : pdb_schedule_insert(c->db, name, cron, tmpl, enabled, next, &id);
    if (rc == 0 && (set_webhook || detect))
        rc = pdb_schedule_update(c->db, id, NULL, 0, NULL, set_webhook, webhook, detect);
    rc = rc ? rc : pdb_commit(c->db);
    if (rc)
        pdb_rollback(c->db);
    json_decref(body);
    if (rc) {
        pb_api_reply_rc(resp, rc, "a schedule with this name");
        return;
    }
    json_t *s = NULL;
    pdb_schedule_get(c->db, id, &s);
    pb_api_reply_json(resp, 201, json_pack("{sIso}", "id", (json_int_t)id, "schedule",
                                           s ? s : json_null()));
    return;
bad:
    json_decref(body);
    pb_http_resp_error(resp, 400, err.msg, err.field[0] ? err.field : NULL);
}

/* PATCH /schedules/{id}: any of job, cron, webhook, detect. */
static void api_schedule_patch(pb_coord_t *c, int64_t id, const pb_http_req_t *req,
                               pb_http_resp_t *resp)
{
    static const char *const keys[] = {"cron", "job", "webhook", "detect", NULL};
    json_t *body = pb_api_parse_body(req, resp), *s = NULL;
    if (body == NULL)
        return;
    pb_err_t err = {0};
    const char *cron = NULL, *webhook;
    const json_t *detect, *tmpl = json_object_get(body, "job");
    int set_webhook;
    pb_cron_t cr;
    double next = 0;
    if (pb_json_only_keys(body, keys, "", &err) ||
        pb_json_str(body, "cron", NULL, 0, &cron, "", &err) ||
        (cron && pb_cron_parse(cron, &cr, &err)) ||
        pb_api_schedule_alerts(body, &webhook, &set_webhook, &detect, &err) ||
        (tmpl && check_template(c, tmpl, &err))) {
        json_decref(body);
        pb_http_resp_error(resp, 400, err.msg, err.field[0] ? err.field : NULL);
        return;
    }
    if (cron)
        next = pb_cron_next(&cr, pb_wall_time());
    int rc = pdb_schedule_update(c->db, id, cron, next, tmpl, set_webhook, webhook, detect);
    json_decref(body);
    rc = rc ? rc : pdb_schedule_get(c->db, id, &s);
    if (rc)
        pb_api_reply_rc(resp, rc, "schedule");
    else
        pb_api_reply_json(resp, 200, s);
}

static void api_schedule(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp,
                         const char *rest)
{
    const char *sub;
    int64_t id = pb_api_path_id(rest, &sub);
    if (id < 0) {
        pb_http_resp_error(resp, 404, "schedule id must be a positive integer", "id");
        return;
    }
    json_t *s = NULL;
    int rc = pdb_schedule_get(c->db, id, &s);
    if (rc) {
        pb_api_reply_rc(resp, rc, "schedule");
        return;
    }
    if (*sub == '\0') {
        if (pb_api_method_is(req, "PATCH")) {
            json_decref(s);
            return api_schedule_patch(c, id, req, resp);
        }
        if (!pb_api_method_is(req, "GET")) {
            json_decref(s);
            return pb_api_method_not_allowed(resp, "GET, PATCH");
        }
        pb_api_reply_json(resp, 200, s);
        return;
    }
    int enable = strcmp(sub, "enable") == 0;
    if (!enable && strcmp(sub, "disable") != 0) {
        json_decref(s);
        pb_http_resp_error(resp, 404, "no such schedule resource", NULL);
        return;
    }
    if (!pb_api_method_is(req, "POST")) {
        json_decref(s);
        return pb_api_method_not_allowed(resp, "POST");
    }
    pb_cron_t cr;
    double next = -1;
    if (pb_cron_parse(json_string_value(json_object_get(s, "cron")), &cr, NULL) == 0)
        next = pb_cron_next(&cr, pb_wall_time());
    json_decref(s);
    s = NULL;
    rc = pdb_schedule_set_enabled(c->db, id, enable, next);
    if (rc == 0)
        rc = pdb_schedule_get(c->db, id, &s);
    if (rc)
        pb_api_reply_rc(resp, rc, "schedule");
    else
        pb_api_reply_json(resp, 200, s);
}

void pb_api_fire_schedules(pb_coord_t *c)
{
    double now = pb_wall_time();
    json_t *due = NULL;
    if (pdb_schedules_due(c->db, now, &due) != 0)
        return;
    size_t i;
    json_t *s;
    json_array_foreach(due, i, s)
    {
        int64_t sid = json_integer_value(json_object_get(s, "id"));
        pb_cron_t cr;
        double next = -1;
        if (pb_cron_parse(json_string_value(json_object_get(s, "cron")), &cr, NULL) == 0)
            next = pb_cron_next(&cr, now);
        /* Keyed by the firing's due time: a crash between the submit and
         * pdb_schedule_fired cannot fire the same slot twice. */
        char key[96];
        double due_at = json_number_value(json_object_get(s, "next_fire_at"));
        snprintf(key, sizeof key, "schedule:%lld:%.3f", (long long)sid, due_at > 0 ? due_at : now);
        int64_t job_id = 0;
        int existing = 0;
        pb_err_t err = {0};
        int rc = pb_api_submit(c, json_object_get(s, "template"), key, sid, &job_id, &existing, &err);
        if (rc)
            pb_error("schedule %lld (%s) could not submit its job: %s", (long long)sid,
                     json_string_value(json_object_get(s, "name")), err.msg);
        else
            pb_info("schedule %lld fired job %lld", (long long)sid, (long long)job_id);
        pdb_schedule_fired(c->db, sid, now, rc ? 0 : job_id, next);
    }
    json_decref(due);
}

int pb_api_schedules_route(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp,
                           const char *p)
{
    if (strcmp(p, "schedules") == 0) {
        if (pb_api_method_is(req, "GET")) {
            json_t *out = NULL;
            int rc = pdb_schedules_list(c->db, &out);
            if (rc)
                pb_api_reply_rc(resp, rc, "schedules");
            else
                pb_api_reply_json(resp, 200, out);
        } else if (pb_api_method_is(req, "POST")) {
            api_schedule_create(c, req, resp);
        } else {
            pb_api_method_not_allowed(resp, "GET, POST");
        }
        return 1;
    }
    if (strncmp(p, "schedules/", 10) == 0) {
        api_schedule(c, req, resp, p + 10);
        return 1;
    }
    return 0;
}
