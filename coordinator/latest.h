/* "The newest checkpoint in a directory" (issue 7): a native model spec
 * with "latest_in": DIR instead of a fixed "path" follows a training run.
 * The coordinator resolves it each time a job is submitted or a schedule
 * fires, and the job's stored spec records the path it resolved to. */
#ifndef PB_LATEST_H
#define PB_LATEST_H

#include <jansson.h>
#include <stddef.h>

#include "common/pb.h"

/* The newest checkpoint under dir: among its subdirectories holding a
 * config.json, the highest trailing step number in the name
 * ("checkpoint-1200" after "checkpoint-900"; a name without one counts
 * below any number), then the newest config.json, then the name.
 * PB_EINVAL (err says why) when there is none. */
int pb_latest_checkpoint(const char *dir, char *out, size_t n, pb_err_t *err);

/* spec with model.latest_in resolved into model.path (new reference;
 * spec itself, incref'd, when it has no latest_in). With check_only, a
 * directory holding no checkpoint yet is accepted and the directory is
 * used as the path, so a schedule can be created before training saves
 * its first checkpoint. Errors name "model.latest_in". */
int pb_latest_resolve(const json_t *spec, int check_only, json_t **out, pb_err_t *err);

#endif
