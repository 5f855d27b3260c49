/* Cron expressions for schedules: five fields (minute hour day-of-month
 * month day-of-week) with '*', lists, ranges, steps and month/day names,
 * @hourly/@daily/@nightly/@weekly/@monthly, or "@every N[s|m|h]" for a
 * fixed interval (smoke runs, tests). Times are UTC. */
#ifndef PB_CRON_H
#define PB_CRON_H

#include <stdint.h>

#include "common/pb.h"

typedef struct pb_cron {
    uint64_t minute; /* bit i set = minute i allowed */
    uint32_t hour;
    uint32_t dom;    /* bits 1..31 */
    uint16_t month;  /* bits 1..12 */
    uint8_t dow;     /* bits 0..6, Sunday = 0 */
    int dom_star, dow_star;
    int64_t every_s; /* > 0: "@every", the fields above unused */
} pb_cron_t;

/* Parse; on failure err says which field is wrong. */
int pb_cron_parse(const char *expr, pb_cron_t *out, pb_err_t *err);
/* First matching minute strictly after `after` (epoch seconds), or -1 when
 * none within five years (e.g. "0 0 31 2 *"). */
double pb_cron_next(const pb_cron_t *c, double after);

#endif
