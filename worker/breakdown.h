/* Per-task breakdown of results by item meta (BREAKDOWN.md, worker side): the
 * runner feeds every scored item to an accumulator keyed by (suite breakdown
 * entry, group value), and the RESULT aggregate carries the sorted groups as
 * "groups": [[entry, value, n, score_sum], ...]. */
#ifndef PB_BREAKDOWN_H
#define PB_BREAKDOWN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"

/* Distinct (entry, value) groups one task may produce. The store enforces the
 * same cap with its own constant; more is a suite bug, and the task fails. */
#define PB_MAX_GROUPS 4096
/* Longest entry ("da,db") and value ("3,5") the store accepts, in bytes. */
#define PB_BREAKDOWN_KEY_MAX 128
#define PB_BREAKDOWN_VALUE_MAX 256

typedef struct pb_breakdown_group {
    const char *entry; /* borrowed from the suite's breakdown table */
    char *value;       /* owned */
    uint64_t hash;
    int64_t n;
    double score_sum;
} pb_breakdown_group_t;

/* An accumulator. Zero-initialised (or pb_breakdown_init) it is empty. */
typedef struct pb_breakdown {
    const char *const *entries; /* NULL-terminated, or NULL: no breakdown */
    pb_breakdown_group_t *groups;
    size_t n, cap;
    uint32_t *slots; /* open addressing: group index + 1, 0 = empty */
    size_t n_slots;  /* a power of two, at least twice n */
} pb_breakdown_t;

/* entries is borrowed (a suite's breakdown table) and must outlive b. */
void pb_breakdown_init(pb_breakdown_t *b, const char *const *entries);
void pb_breakdown_free(pb_breakdown_t *b);

/* Build an entry's group value from an item's meta into out[cap]: each key
 * of the entry (split at ','), integer as "%lld", string as is, joined with
 * ','. Returns 0; PB_ENOTFOUND when the item has no such group (meta is not
 * an object, a key is missing, a value is neither integer nor string), which
 * the caller skips; PB_ETOOBIG when the value would not fit in cap or exceed
 * PB_BREAKDOWN_VALUE_MAX bytes, or the entry exceeds PB_BREAKDOWN_KEY_MAX. */
int pb_breakdown_value(const json_t *meta, const char *entry, char *out, size_t cap);

/* Count one item in group (entry, value): n += 1, score_sum += score. entry
 * is borrowed and must outlive b, value is copied. Fails with PB_ETOOBIG
 * ("more than 4096 breakdown groups in one task") when it would be group
 * PB_MAX_GROUPS + 1, or PB_ENOMEM; b is unchanged on failure. */
int pb_breakdown_add(pb_breakdown_t *b, const char *entry, const char *value, double score,
                     pb_err_t *err);

/* Count one item under every entry of b->entries that its meta (may be NULL)
 * has a value for. Errors as pb_breakdown_add and pb_breakdown_value. */
int pb_breakdown_add_item(pb_breakdown_t *b, const json_t *meta, double score, pb_err_t *err);

/* The groups sorted by (entry, value), byte order, as a new array of
 * [entry, value, n, score_sum]; NULL when out of memory. */
json_t *pb_breakdown_json(const pb_breakdown_t *b);

#endif
