/* The coordinator's user-dataset routes (README "User datasets"): upload
 * checked JSONL stored by content hash, list, record, raw content for the
 * workers; and the glue that lets job plans and TASK bodies name datasets. */
#ifndef PB_API_DATASETS_H
#define PB_API_DATASETS_H

#include <jansson.h>

#include "coordinator/coord.h"
#include "suites/jobspec.h"

#define PB_API_DATASETS "datasets" /* the route under /api/v1/ */
#define PB_DATASET_NAME_MAX 200

/* /api/v1/datasets[/{hash}[/content]]; rest is what follows "datasets". */
void pb_api_datasets(pb_coord_t *c, const pb_http_req_t *req, pb_http_resp_t *resp,
                     const char *rest);

/* ps_dataset_resolve_fn over the store; ctx is the pb_coord_t. */
int pb_api_dataset_resolve(void *ctx, const char *hash, ps_dataset_ref_t *out);

/* A TASK body that names a dataset gets "dataset_url", the URL of its
 * content, which the worker fetches (unless it was given --http). Returns 0
 * or PB_ENOMEM. */
int pb_api_dataset_task(pb_coord_t *c, json_t *task);

#endif
