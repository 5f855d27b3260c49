/* Schedule routes under /api/v1: schedules, schedules/{id} (GET, PATCH),
 * schedules/{id}/enable|disable; and firing due schedules from the tick
 * (pb_api_fire_schedules, declared in coord.h). */
#ifndef PB_API_SCHEDULES_H
#define PB_API_SCHEDULES_H

#include "coordinator/coord.h"

/* Handle path p (after /api/v1/) when it is a schedule route; 0 when it
 * did not match (nothing was answered). */
int pb_api_schedules_route(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp,
                           const char *p);

#endif
