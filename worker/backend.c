/* The backend registry: one table of every backend this worker build can
 * run. The worker advertises the names in HELLO and the runner looks a
 * task's model.backend up here. */
#include "worker/backend_int.h"

#include <string.h>

static const pb_backend_ops_t *const backends[] = {
    &pb_backend__oracle,
    &pb_backend__random,
    &pb_backend__bm25,
    &pb_backend__hashbow,
    &pb_backend__native,
    &pb_backend__openai,
};

const pb_backend_ops_t *pb_backend_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < PB_ARRAY_LEN(backends); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

size_t pb_backend_count(void) { return PB_ARRAY_LEN(backends); }

const pb_backend_ops_t *pb_backend_at(size_t i)
{
    return i < PB_ARRAY_LEN(backends) ? backends[i] : NULL;
}
