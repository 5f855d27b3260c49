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

/* Take the rows of the reserved keys (common/proto.h) out of run's
 * "breakdown_rows" before pb_api_breakdown_render sees them: PB_GROUP_METRIC
 * rows add their score_sum to sums[j * n_metrics + k] and their n to
 * ns[j * n_metrics + k], j being the row's bucket's index in run's
 * "buckets" and k its value's index in metrics (rows of other buckets or
 * names are dropped); *unit is the PB_GROUP_UNIT value
 * when every row agrees, "mixed" when they differ, NULL when there is none.
 * *have_metrics is set when some metric row was taken. 0 or PB_ENOMEM. */
int pb_api_breakdown_reserved(json_t *run, const char *const *metrics, size_t n_metrics,
                              double *sums, double *ns, const char **unit, int *have_metrics);

/* The value order above: < 0, 0 (same string), > 0. */
int pb_api_breakdown_cmp(const char *a, const char *b);

#endif
