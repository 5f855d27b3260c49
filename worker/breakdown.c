/* Per-task breakdown accumulator: (entry, value) -> (n, score_sum) in a small
 * open-addressing hash table, capped at PB_MAX_GROUPS groups, emitted sorted
 * so that the same task always gives the same RESULT. Used by the runner. */
#include "worker/breakdown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/util.h"

void pb_breakdown_init(pb_breakdown_t *b, const char *const *entries)
{
    memset(b, 0, sizeof *b);
    b->entries = entries;
}

void pb_breakdown_free(pb_breakdown_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->groups[i].value);
    free(b->groups);
    free(b->slots);
    pb_breakdown_init(b, b->entries);
}

/* Append one key's value of meta to out[*len]; see pb_breakdown_value. */
static int value_part(const json_t *meta, const char *key, int first, char *out, size_t cap,
                      size_t *len)
{
    const json_t *v = json_object_get(meta, key);
    char num[32];
    const char *text;
    size_t n;
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        text = num;
        n = strlen(num);
    } else if (json_is_string(v)) {
        text = json_string_value(v);
        n = json_string_length(v);
        if (strlen(text) != n) /* an embedded NUL cannot travel as a C string */
            return PB_ENOTFOUND;
    } else {
        return PB_ENOTFOUND; /* missing, or a float, array, object, bool, null */
    }
    size_t sep = !first; /* an empty first part still takes its comma */
    if (*len + sep + n > PB_BREAKDOWN_VALUE_MAX || *len + sep + n >= cap)
        return PB_ETOOBIG;
    if (sep)
        out[(*len)++] = ',';
    memcpy(out + *len, text, n);
    *len += n;
    out[*len] = '\0';
    return 0;
}

int pb_breakdown_value(const json_t *meta, const char *entry, char *out, size_t cap)
{
    char key[PB_BREAKDOWN_KEY_MAX + 1];
    size_t len = 0;
    int first = 1;
    if (cap == 0)
        return PB_ETOOBIG;
    out[0] = '\0';
    if (strlen(entry) > PB_BREAKDOWN_KEY_MAX)
        return PB_ETOOBIG;
    if (!json_is_object(meta))
        return PB_ENOTFOUND;
    const char *p = entry;
    for (;;) {
        size_t k = strcspn(p, ",");
        memcpy(key, p, k);
        key[k] = '\0';
        int rc = value_part(meta, key, first, out, cap, &len);
        if (rc) {
            out[0] = '\0';
            return rc;
        }
        if (p[k] == '\0')
            return 0;
        p += k + 1;
        first = 0;
    }
}

static uint64_t group_hash(const char *entry, const char *value)
{
    return pb_hash_str(pb_hash_str(PB_HASH_INIT, entry), value);
}

/* Slot of (entry, value) with hash h: the one holding it, or the empty one
 * where it would go. n_slots is a power of two and never full. */
static size_t slot_find(const pb_breakdown_t *b, const char *entry, const char *value, uint64_t h)
{
    size_t mask = b->n_slots - 1, i = (size_t)h & mask;
    while (b->slots[i]) {
        const pb_breakdown_group_t *g = &b->groups[b->slots[i] - 1];
        if (g->hash == h && strcmp(g->entry, entry) == 0 && strcmp(g->value, value) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

/* Double the slot table (rehashing every group); b is unchanged on failure. */
static int slots_grow(pb_breakdown_t *b)
{
    size_t n_slots = b->n_slots ? b->n_slots * 2 : 64;
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (slots == NULL)
        return PB_ENOMEM;
    free(b->slots);
    b->slots = slots;
    b->n_slots = n_slots;
    for (size_t g = 0; g < b->n; g++) {
        size_t i = (size_t)b->groups[g].hash & (n_slots - 1);
        while (slots[i])
            i = (i + 1) & (n_slots - 1);
        slots[i] = (uint32_t)(g + 1);
    }
    return 0;
}

int pb_breakdown_add(pb_breakdown_t *b, const char *entry, const char *value, double score,
                     pb_err_t *err)
{
    uint64_t h = group_hash(entry, value);
    if (b->n_slots == 0 && slots_grow(b))
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    size_t i = slot_find(b, entry, value, h);
    if (b->slots[i] == 0) {
        if (b->n >= PB_MAX_GROUPS)
            return pb_err_set(err, PB_ETOOBIG, "", "more than %d breakdown groups in one task",
                              PB_MAX_GROUPS);
        /* Keep the table at most half full so probes stay short. */
        if ((b->n + 1) * 2 > b->n_slots) {
            if (slots_grow(b))
                return pb_err_set(err, PB_ENOMEM, "", "out of memory");
            i = slot_find(b, entry, value, h);
        }
        char *copy = strdup(value);
        if (copy == NULL || pb_grow(&b->groups, &b->cap, b->n + 1, sizeof *b->groups, 16)) {
            free(copy);
            return pb_err_set(err, PB_ENOMEM, "", "out of memory");
        }
        b->groups[b->n] = (pb_breakdown_group_t){.entry = entry, .value = copy, .hash = h};
        b->slots[i] = (uint32_t)(++b->n);
    }
    pb_breakdown_group_t *g = &b->groups[b->slots[i] - 1];
    g->n++;
    g->score_sum += score;
    return 0;
}

int pb_breakdown_add_item(pb_breakdown_t *b, const json_t *meta, double score, pb_err_t *err)
{
    char value[PB_BREAKDOWN_VALUE_MAX + 1];
    if (b->entries == NULL || meta == NULL)
        return 0;
    for (const char *const *e = b->entries; *e; e++) {
        int rc = pb_breakdown_value(meta, *e, value, sizeof value);
        if (rc == PB_ENOTFOUND)
            continue;
        if (rc == PB_ETOOBIG)
            /* The store would refuse the whole result: say which entry now. */
            return pb_err_set(err, rc, "", "breakdown '%.*s': entry over %d or value over %d bytes",
                              PB_BREAKDOWN_KEY_MAX, *e, PB_BREAKDOWN_KEY_MAX,
                              PB_BREAKDOWN_VALUE_MAX);
        rc = pb_breakdown_add(b, *e, value, score, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int group_cmp(const void *pa, const void *pb)
{
    const pb_breakdown_group_t *a = *(const pb_breakdown_group_t *const *)pa;
    const pb_breakdown_group_t *b = *(const pb_breakdown_group_t *const *)pb;
    int c = strcmp(a->entry, b->entry);
    return c ? c : strcmp(a->value, b->value);
}

json_t *pb_breakdown_json(const pb_breakdown_t *b)
{
    const pb_breakdown_group_t **order = NULL;
    int ok = 0;
    json_t *arr = json_array();
    if (arr == NULL)
        goto out;
    order = malloc((b->n ? b->n : 1) * sizeof *order);
    if (order == NULL)
        goto out;
    for (size_t i = 0; i < b->n; i++)
        order[i] = &b->groups[i];
    qsort(order, b->n, sizeof *order, group_cmp);
    for (size_t i = 0; i < b->n; i++) {
        json_t *g = json_pack("[s, s, I, f]", order[i]->entry, order[i]->value,
                              (json_int_t)order[i]->n, order[i]->score_sum);
        if (g == NULL || json_array_append_new(arr, g))
            goto out;
    }
    ok = 1;
out:
    free(order);
    if (!ok) {
        json_decref(arr);
        arr = NULL;
    }
    return arr;
}
