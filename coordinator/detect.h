/* Regression detection (issue 7, reference/infra.md A.2): done jobs become
 * points on series, each point passes the stage-1 gate against its series'
 * history as it is ingested, and a change-point pass (stage 2) runs nightly
 * over the series that got new points. What either finds is a regression
 * record, and a schedule with a webhook gets one delivery per job or pass
 * that raised any. */
#ifndef PB_DETECT_H
#define PB_DETECT_H

#include <jansson.h>

#include "common/pb.h"
#include "coordinator/coord.h"
#include "db/store.h"

/* A schedule's "detect" settings. */
typedef struct pb_detect_cfg {
    double alpha;      /* proportions: test level (two-sided) */
    double min_effect; /* proportions: smallest drop worth an alert (absolute) */
    double threshold;  /* measurements: smallest relative change worth an alert */
    double min_change; /* measurements: changes under this are noise */
    double confidence; /* measurements: prediction-interval level */
} pb_detect_cfg_t;

#define PB_DETECT_CP_ALPHA 0.001 /* change points: Welch level per split */
#define PB_DETECT_CP_MIN_SIDE 6  /* change points: points a side */

/* A change point of a series window: the first point after the step at
 * index k, the segments either side [a, k) and [k, b) with their means,
 * and Welch's p for them. */
typedef struct pb_detect_cp {
    size_t a, k, b;
    double mean_before, mean_after, p_value;
} pb_detect_cp_t;

/* Change points of x[0, n) (n <= PB_RG_MAX_POINTS, finite values) as the
 * nightly pass finds them; out holds PB_RG_MAX_POINTS. Returns the count. */
size_t pb_detect_change_points(const double *x, size_t n, pb_detect_cp_t *out);

void pb_detect_cfg_default(pb_detect_cfg_t *d);
/* o may be NULL (defaults). PB_EINVAL naming "detect.<key>" on a bad value
 * or unknown key. */
int pb_detect_cfg_parse(const json_t *o, pb_detect_cfg_t *d, pb_err_t *err);

/* Stage 1 for one new point p of a series of kind (PS_KIND_*) against its
 * history hist[0, nh) (oldest first): sets p's baseline (and, for
 * measurements, the prediction band limit_lo..limit_hi); returns 1 and
 * fills r's detector, job_before, value_before, change, p_value and
 * interval when p is worse, else 0. */
int pb_detect_gate(const pb_detect_cfg_t *cfg, int kind, pdb_point_t *p, const pdb_point_t *hist,
                   size_t nh, pdb_regression_t *r);

/* Ingest up to max done jobs (oldest first), each in its own transaction:
 * points, stage-1 regressions, webhook deliveries. Returns how many jobs
 * were ingested; a job that fails to ingest is logged and retried later. */
int pb_detect_ingest(pb_coord_t *c, size_t max);

/* Stage 2 over the series with points newer than their last scan (every
 * series when all), at most limit of them (0: no limit; the nightly timer
 * goes a slice per tick so the loop never stalls). *summary (may be NULL)
 * gets {"series_scanned", "change_points", "regressions_created"}. */
int pb_detect_scan(pb_coord_t *c, int all, int limit, json_t **summary);

#endif
