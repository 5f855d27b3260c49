/* safetensors parser (issue 6): one file image -> tensors pointing into it.
 * Layout: u64 little-endian header length, a JSON object header
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
 * then the data section. Every size is checked before use: the image is
 * outside input (and the fuzz loop's target), so no read leaves [data, len). */
#include "engine/checkpoint.h"

#include <stdlib.h>
#include <string.h>

/* A real header is a few MiB at most (names and shapes of ~1k tensors). */
#define PE_ST_HEADER_MAX (100u << 20)

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [PE_F32] = {"F32", 4}, [PE_F16] = {"F16", 2}, [PE_BF16] = {"BF16", 2},
    [PE_I32] = {"I32", 4}, [PE_I64] = {"I64", 8}, [PE_U8] = {"U8", 1},
    [PE_I8] = {"I8", 1},   [PE_F64] = {"F64", 8}, [PE_BOOL] = {"BOOL", 1},
};

size_t pe_dtype_size(pe_dtype_t d)
{
    return (unsigned)d < PB_ARRAY_LEN(dtypes) ? dtypes[d].size : 0;
}

const char *pe_dtype_name(pe_dtype_t d)
{
    return (unsigned)d < PB_ARRAY_LEN(dtypes) ? dtypes[d].name : "?";
}

static int dtype_parse(const char *s, pe_dtype_t *out)
{
    for (size_t i = 0; i < PB_ARRAY_LEN(dtypes); i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (pe_dtype_t)i;
            return 0;
        }
    return -1;
}

void pe_st_free(pe_tensor_t *t, size_t n)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free((char *)t[i].name);
    free(t);
}

/* Byte range of a tensor in the data section, kept beside it while parsing
 * for the overlap check. */
typedef struct {
    uint64_t begin, end;
    size_t idx;
} range_t;

static int range_cmp(const void *a, const void *b)
{
    const range_t *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int tensor_cmp(const void *a, const void *b)
{
    return strcmp(((const pe_tensor_t *)a)->name, ((const pe_tensor_t *)b)->name);
}

/* A JSON integer in [0, max], or -1. */
static int64_t json_uint(const json_t *v, int64_t max)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    return x < 0 || x > max ? -1 : (int64_t)x;
}

/* Fill t from one header entry; dlen is the data section's size. */
static int entry_parse(const char *file, const char *name, const json_t *e, const uint8_t *dsec,
                       uint64_t dlen, pe_tensor_t *t, range_t *r, pb_err_t *err)
{
    if (!json_is_object(e))
        return pb_err_set(err, PB_EPARSE, name, "%s: tensor '%s': entry is not an object", file,
                          name);
    const json_t *jd = json_object_get(e, "dtype");
    const json_t *js = json_object_get(e, "shape");
    const json_t *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd) || dtype_parse(json_string_value(jd), &t->dtype))
        return pb_err_set(err, PB_EPARSE, name, "%s: tensor '%s': unknown dtype %s", file, name,
                          json_is_string(jd) ? json_string_value(jd) : "(missing)");
    if (!json_is_array(js) || json_array_size(js) > PE_MAX_DIMS)
        return pb_err_set(err, PB_EPARSE, name,
                          "%s: tensor '%s': shape is not an array of at most %d dims", file,
                          name, PE_MAX_DIMS);
    size_t esize = pe_dtype_size(t->dtype);
    int64_t numel = 1;
    t->ndim = (int)json_array_size(js);
    for (int d = 0; d < t->ndim; d++) {
        int64_t dim = json_uint(json_array_get(js, (size_t)d), INT64_MAX);
        if (dim < 0)
            return pb_err_set(err, PB_EPARSE, name,
                              "%s: tensor '%s': shape[%d] is not a non-negative integer", file,
                              name, d);
        /* Overflow-checked: numel * esize must also fit, so cap on bytes. */
        if (dim != 0 && numel > (int64_t)(INT64_MAX / esize) / dim)
            return pb_err_set(err, PB_EPARSE, name, "%s: tensor '%s': shape overflows", file,
                              name);
        t->shape[d] = dim;
        numel *= dim;
    }
    t->numel = numel;
    t->nbytes = (size_t)numel * esize;
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return pb_err_set(err, PB_EPARSE, name, "%s: tensor '%s': data_offsets is not [begin, end]",
                          file, name);
    int64_t b = json_uint(json_array_get(jo, 0), INT64_MAX);
    int64_t en = json_uint(json_array_get(jo, 1), INT64_MAX);
    if (b < 0 || en < 0 || b > en || (uint64_t)en > dlen)
        return pb_err_set(err, PB_EPARSE, name,
                          "%s: tensor '%s': data_offsets [%lld, %lld] outside the %llu-byte data "
                          "section",
                          file, name, (long long)b, (long long)en, (unsigned long long)dlen);
    if ((uint64_t)(en - b) != (uint64_t)t->nbytes)
        return pb_err_set(err, PB_EPARSE, name,
                          "%s: tensor '%s': %lld bytes in the file, shape and %s need %zu", file,
                          name, (long long)(en - b), pe_dtype_name(t->dtype), t->nbytes);
    t->data = dsec + b;
    r->begin = (uint64_t)b;
    r->end = (uint64_t)en;
    return 0;
}

/* Tensors must not share bytes; empty ones occupy none and never collide. */
static int overlap_check(const char *file, const pe_tensor_t *t, range_t *r, size_t n,
                         pb_err_t *err)
{
    qsort(r, n, sizeof *r, range_cmp);
    uint64_t end = 0;
    size_t last = 0;
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].begin == r[i].end)
            continue;
        if (seen && r[i].begin < end)
            return pb_err_set(err, PB_EPARSE, t[r[i].idx].name,
                              "%s: tensor '%s' overlaps tensor '%s' in the data section", file,
                              t[r[i].idx].name, t[last].name);
        if (r[i].end > end) {
            end = r[i].end;
            last = r[i].idx;
        }
        seen = 1;
    }
    return 0;
}

int pe_st_parse(const void *data, size_t len, const char *file, pe_tensor_t **out, size_t *n,
                pb_err_t *err)
{
    const uint8_t *p = data;
    json_t *hdr = NULL;
    pe_tensor_t *t = NULL;
    range_t *r = NULL;
    size_t nt = 0;
    int rc = 0;
    *out = NULL;
    *n = 0;
    if (file == NULL)
        file = "(safetensors)";
    if (len < 8) {
        rc = pb_err_set(err, PB_EPARSE, "", "%s: truncated: %zu bytes, no header length", file,
                        len);
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    if (hlen > len - 8 || hlen > PE_ST_HEADER_MAX) {
        rc = pb_err_set(err, PB_EPARSE, "",
                        "%s: header length %llu past the end of the %zu-byte file (or over the "
                        "%u-byte cap)",
                        file, (unsigned long long)hlen, len, PE_ST_HEADER_MAX);
        goto out;
    }
    json_error_t jerr;
    hdr = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (hdr == NULL) {
        /* jansson's text names a duplicate key, i.e. the repeated tensor. */
        rc = pb_err_set(err, PB_EPARSE, "", "%s: header is not valid JSON: %s (at byte %d)",
                        file, jerr.text, jerr.position);
        goto out;
    }
    if (!json_is_object(hdr)) {
        rc = pb_err_set(err, PB_EPARSE, "", "%s: header is not a JSON object", file);
        goto out;
    }
    const json_t *meta = json_object_get(hdr, "__metadata__");
    if (meta != NULL && !json_is_object(meta)) {
        rc = pb_err_set(err, PB_EPARSE, "__metadata__", "%s: __metadata__ is not an object", file);
        goto out;
    }
    size_t cap = json_object_size(hdr) - (meta != NULL);
    /* calloc(0) may return NULL: allocate at least one slot. */
    t = calloc(cap ? cap : 1, sizeof *t);
    r = calloc(cap ? cap : 1, sizeof *r);
    if (t == NULL || r == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "%s: out of memory for %zu tensors", file, cap);
        goto out;
    }
    const uint8_t *dsec = p + 8 + hlen;
    uint64_t dlen = len - 8 - hlen;
    const char *key;
    json_t *val;
    json_object_foreach(hdr, key, val)
    {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        if (*key == '\0') {
            rc = pb_err_set(err, PB_EPARSE, "", "%s: tensor with an empty name", file);
            goto out;
        }
        t[nt].name = strdup(key);
        if (t[nt].name == NULL) {
            rc = pb_err_set(err, PB_ENOMEM, key, "%s: out of memory", file);
            goto out;
        }
        nt++;
        rc = entry_parse(file, key, val, dsec, dlen, &t[nt - 1], &r[nt - 1], err);
        if (rc)
            goto out;
        r[nt - 1].idx = nt - 1;
    }
    rc = overlap_check(file, t, r, nt, err);
    if (rc)
        goto out;
    /* Names are unique (the JSON loader rejects duplicate keys); sorted so
     * the checkpoint can merge shards and search. */
    qsort(t, nt, sizeof *t, tensor_cmp);
    *out = t;
    *n = nt;
    t = NULL;
out:
    pe_st_free(t, nt);
    free(r);
    json_decref(hdr);
    return rc;
}
