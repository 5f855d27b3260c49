/* Private to worker/: the backend implementations that backend.c lists in
 * its table. A new backend adds its ops here and one line in the table. */
#ifndef PB_BACKEND_INT_H
#define PB_BACKEND_INT_H

#include "worker/backend.h"

extern const pb_backend_ops_t pb_backend__oracle;
extern const pb_backend_ops_t pb_backend__random;
extern const pb_backend_ops_t pb_backend__bm25;
extern const pb_backend_ops_t pb_backend__hashbow;
extern const pb_backend_ops_t pb_backend__native; /* backend_native.c */
extern const pb_backend_ops_t pb_backend__openai; /* backend_openai.c */

/* The oracle's and random's score_pairs (backend_retrieval.c). grade: each
 * document's qrels grade, found by the hex pb_hash_str of its text in the
 * query's meta "grades" (0 when absent). random: uniform in [0, 1), a hash
 * of (key, query prompt hash, document text). Both return 0. */
int pb_backend__grade_pairs(const ps_item_t *query, const char *const *docs, size_t n,
                            double *scores);
int pb_backend__random_pairs(uint64_t key, const ps_item_t *query, const char *const *docs,
                             size_t n, double *scores);

#endif
