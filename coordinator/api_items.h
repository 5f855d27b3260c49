/* The item prompt route: GET /api/v1/jobs/{id}/items/{task_id}/{idx}/prompt
 * regenerates a stored item's prompt (items keep only its hash) from its
 * run's suite, task, params, bucket and seed, or from its dataset line,
 * and checks it against the stored hash before returning it. */
#ifndef PB_API_ITEMS_H
#define PB_API_ITEMS_H

#include "coordinator/coord.h"

#define PB_PROMPT_MAX_DEFAULT 4096 /* characters returned when ?max= is absent */
#define PB_PROMPT_MAX_LIMIT 1048576 /* largest ?max= accepted */

/* rest is what follows "jobs/{id}/items/": "{task_id}/{idx}/prompt".
 * 200 {"job_id", "task_id", "idx", "run", "bucket", "suite", "task",
 * "prompt", "reference", "length" (the full prompt's characters),
 * "truncated", "prompt_hash", "unit", "parts"? (multi-part items: each
 * part's prompt, capped alike), "meta"}; 404 for no such item, 409 when the
 * regenerated prompt's hash differs from the stored one (the model's
 * tokenizer sized it, or the generator changed). */
void pb_api_item_prompt(pb_coord_t *c, int64_t job_id, const pb_http_req_t *req,
                        pb_http_resp_t *resp, const char *rest);

#endif
