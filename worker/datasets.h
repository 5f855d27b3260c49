/* User datasets on the worker: fetched once by hash from the coordinator
 * (libcurl) into a cache directory, checked against their SHA-256, mapped,
 * and indexed by bucket so item idx of bucket b is the idx-th line with
 * that bucket. Open datasets are shared by the runner threads. */
#ifndef PB_DATASETS_H
#define PB_DATASETS_H

#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"
#include "suites/suite.h"

#define PB_DATASET_MAX_BYTES ((uint64_t)4 << 30) /* a download larger than this fails */
#define PB_DATASETS_KEPT 4 /* datasets kept open after their last task */

typedef struct pb_dataset pb_dataset_t;

/* The default cache directory: $XDG_CACHE_HOME/posbench/datasets, else
 * /tmp/posbench-cache-<uid>. */
void pb_datasets_default_cache(char *out, size_t n);

/* The dataset named hash: already open in this process, in cache_dir
 * (NULL: the default) and matching its hash, or else fetched from url into
 * cache_dir first. A download whose SHA-256 differs is an error and is not
 * kept. On failure *out is NULL and err says why (PB_ENET: the coordinator
 * could not be reached, PB_EIO: the bytes are wrong or cannot be stored,
 * PB_EINVAL: no url to fetch from). Release the handle with
 * pb_dataset_release. Thread-safe. */
int pb_dataset_open(const char *cache_dir, const char *url, const char *hash, pb_dataset_t **out,
                    pb_err_t *err);
void pb_dataset_release(pb_dataset_t *ds);

/* Lines of the dataset with this bucket. */
uint64_t pb_dataset_count(const pb_dataset_t *ds, int64_t bucket);

/* The whole file, mapped read-only while the handle is held: a ranking
 * suite builds its corpus from it (ps_run_open_data). */
void pb_dataset_bytes(const pb_dataset_t *ds, const char **data, size_t *len);

/* Item idx of run (run->bucket's idx-th line) through ps_dataset_item.
 * PB_EINVAL when the bucket has no such line. */
int pb_dataset_item(const pb_dataset_t *ds, const ps_run_t *run, uint64_t idx, ps_item_t *out,
                    pb_err_t *err);

/* How many downloads this process made (tests, logs). */
uint64_t pb_datasets_fetches(void);

#endif
