/* The worker's cache of loaded native models: a checkpoint, its tokenizer
 * and the model built over it are loaded once per worker and shared by every
 * task naming the same (path, PE override, threads). Runner threads share
 * entries: the tokenizer is read-only, the model is used under the entry's
 * lock (the engine runs one sequence at a time on a model). */
#ifndef PB_NATIVE_CACHE_H
#define PB_NATIVE_CACHE_H

#include <jansson.h>
#include <pthread.h>

#include "common/pb.h"
#include "engine/checkpoint.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

/* Models kept loaded at once; an unused one is dropped for a new key. */
#define PB_NATIVE_CACHE_MAX 4

typedef struct pb_native_entry {
    pe_ckpt_t *ck;
    pe_tok_t *tok;
    pe_model_t *model;
    pe_dims_t dims;
    pthread_mutex_t lock; /* held around every use of model */
    /* Content hashes (hex SHA-256): the safetensors files in name order,
     * and config.json; computed once when the entry loads. */
    char weights_sha256[65], config_sha256[65];
} pb_native_entry_t;

/* The entry for (dir, pe (may be NULL), threads), loading it on a miss.
 * Loading happens outside the cache lock, so a slow load blocks no other
 * model; two threads missing the same key load it once (the second waits).
 * Errors are the loaders' (PB_ENOTFOUND, PB_EPARSE naming file and tensor,
 * PB_EUNSUPPORTED for an unknown architecture, PB_EINVAL for a PE override
 * the checkpoint cannot honour), or PB_EBACKEND when the cache is full of
 * models in use. Release each acquired entry exactly once. */
int pb_native_acquire(const char *dir, const json_t *pe, int threads, pb_native_entry_t **out,
                      pb_err_t *err);
void pb_native_release(pb_native_entry_t *e);

/* Drop every unused entry (tests, shutdown). Returns how many stay loaded. */
int pb_native_flush(void);

#endif
