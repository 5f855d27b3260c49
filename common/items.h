/* RESULT items as streaming JSON text: a worker appends items to a buffer
 * without building a JSON tree, and the coordinator scans them straight
 * into the store. The text is an ordinary JSON array of arrays
 *   [[idx, "prompt_hash", "prediction", "reference", score, latency_us,
 *     tokens, "meta as JSON text"|null, "error"|null], ...]
 * (see common/proto.h); trees of thousands of small objects were the
 * largest cost on both sides of the protocol. */
#ifndef PB_ITEMS_H
#define PB_ITEMS_H

#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"
#include "common/util.h"

/* One item. Strings point into scratch memory valid during the callback;
 * a NULL string means JSON null or absent. */
typedef struct pb_item_rec {
    int64_t idx;
    const char *prompt_hash;
    const char *prediction;
    size_t prediction_len;
    const char *reference;
    size_t reference_len;
    double score;
    int has_score;
    int64_t latency_us, tokens;
    int has_latency, has_tokens;
    const char *meta; /* JSON text */
    size_t meta_len;
    const char *error;
    size_t error_len;
} pb_item_rec_t;

/* Append one item to b (the caller writes the enclosing '[' ']' and commas
 * through pb_items_begin/pb_items_end). */
int pb_items_begin(pb_buf_t *b);
int pb_items_add(pb_buf_t *b, const pb_item_rec_t *it);
int pb_items_end(pb_buf_t *b);

/* Scan items text, calling fn for each item in order; fn's non-zero return
 * stops the scan and is returned. Malformed text is PB_EPARSE with err
 * naming the item and the problem. */
typedef int (*pb_items_fn)(void *ctx, size_t i, const pb_item_rec_t *it);
int pb_items_scan(const char *text, size_t len, pb_items_fn fn, void *ctx, pb_err_t *err);

/* Append s as a JSON string literal (with quotes and escapes). */
int pb_json_quote(pb_buf_t *b, const char *s, size_t n);

#endif
