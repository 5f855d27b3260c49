/* The results' breakdown of a run by item meta (BREAKDOWN.md): the store's
 * per-bucket group rows turned into per-key groups (summed over buckets, with
 * accuracy and a Wilson interval) and a bucket x value grid. Used by api.c. */
#ifndef PB_API_BREAKDOWN_H
#define PB_API_BREAKDOWN_H

#include <jansson.h>

/* Replace run's "breakdown_rows" (pdb_job_results) with
 *   "breakdown": {key: {"groups": [{"value", "n", "score_sum", "accuracy",
 *                                    "ci": [lo, hi]}],
 *                       "grid": [{"bucket", "value", "n", "accuracy"}]}}
 * groups in value order, grid by bucket then value; values compare part by
 * part (split at ","), integer parts as integers, others with strcmp.
 * accuracy is null where n is 0. A run without rows is left as it is.
 * 0, or PB_ENOMEM (the rows are gone, no "breakdown" is set). */
int pb_api_breakdown_render(json_t *run);

/* The value order above: < 0, 0 (same string), > 0. */
int pb_api_breakdown_cmp(const char *a, const char *b);

#endif
