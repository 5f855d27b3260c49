/* The regression API (issue 7): series and their points, regressions and
 * their triage, testbeds, webhook deliveries, and the change-point pass on
 * demand. Routes under /api/v1: series, series/{id}, regressions,
 * regressions/{id}, regressions/scan, testbeds, deliveries. */
#ifndef PB_API_REGRESS_H
#define PB_API_REGRESS_H

#include "coordinator/coord.h"

/* Handle path p (after /api/v1/) when it is one of the routes above;
 * returns 0 when it did not match (nothing was answered). */
int pb_api_regress_route(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp,
                         const char *p);

/* A schedule body's "webhook" (http(s) URL or null: *set says whether the
 * key was there) and "detect" (checked by detect.h's parser). PB_EINVAL
 * naming the field. */
int pb_api_schedule_alerts(const json_t *body, const char **webhook, int *set,
                           const json_t **detect, pb_err_t *err);

#endif
