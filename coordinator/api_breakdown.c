/* Rendering a run's breakdown for GET /api/v1/jobs/{id}/results: the store
 * keeps one row per (key, value, bucket); here the rows of each key are
 * summed over buckets into groups and laid out as a bucket x value grid,
 * both in the numeric order of the values ("2,10" after "2,9"). */
#include "coordinator/api_breakdown.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb.h"
#include "common/proto.h"
#include "common/util.h"

typedef struct bd_row {
    const char *value; /* borrowed from the rows array */
    int64_t bucket;
    int64_t n;
    double sum;
} bd_row_t;

/* An optional '-' and at least one digit, nothing else. */
static int is_int(const char *p, size_t n)
{
    size_t i = n > 0 && p[0] == '-';
    if (i == n)
        return 0;
    for (; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

/* Two integer texts by value, of any length (no overflow). */
static int int_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    int na = a[0] == '-', nb = b[0] == '-', mag;
    a += na, la -= (size_t)na, b += nb, lb -= (size_t)nb;
    while (la > 1 && a[0] == '0')
        a++, la--;
    while (lb > 1 && b[0] == '0')
        b++, lb--;
    if (la != lb)
        mag = la < lb ? -1 : 1;
    else
        mag = memcmp(a, b, la);
    if (mag == 0 && a[0] == '0')
        return 0; /* -0 and 0 */
    if (na != nb)
        return na ? -1 : 1;
    return na ? -mag : mag;
}

static int part_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    if (is_int(a, la) && is_int(b, lb))
        return int_cmp(a, la, b, lb);
    int r = memcmp(a, b, la < lb ? la : lb);
    if (r == 0 && la != lb)
        r = la < lb ? -1 : 1;
    return r;
}

int pb_api_breakdown_cmp(const char *a, const char *b)
{
    const char *pa = a, *pb = b;
    for (;;) {
        size_t la = strcspn(pa, ","), lb = strcspn(pb, ",");
        int r = part_cmp(pa, la, pb, lb);
        if (r)
            return r < 0 ? -1 : 1;
        if (pa[la] == '\0' || pb[lb] == '\0') {
            if (pa[la] != pb[lb])
                return pa[la] == '\0' ? -1 : 1; /* fewer parts first */
            break;
        }
        pa += la + 1;
        pb += lb + 1;
    }
    /* Equal as numbers ("03" and "3"): still a total order of strings. */
    int r = strcmp(a, b);
    return r < 0 ? -1 : r > 0;
}

static int by_value(const void *x, const void *y)
{
    const bd_row_t *a = x, *b = y;
    int r = pb_api_breakdown_cmp(a->value, b->value);
    if (r == 0 && a->bucket != b->bucket)
        r = a->bucket < b->bucket ? -1 : 1;
    return r;
}

static int by_bucket(const void *x, const void *y)
{
    const bd_row_t *a = x, *b = y;
    if (a->bucket != b->bucket)
        return a->bucket < b->bucket ? -1 : 1;
    return pb_api_breakdown_cmp(a->value, b->value);
}

static json_t *accuracy(int64_t n, double sum)
{
    return n > 0 ? json_real(sum / (double)n) : json_null();
}

/* The rendered object of one key from its rows (sorted in place). */
static json_t *render_key(bd_row_t *rows, size_t n_rows)
{
    json_t *groups = json_array(), *grid = json_array();
    json_t *out = json_pack("{s:o, s:o}", "groups", groups, "grid", grid);
    if (out == NULL)
        return NULL;
    qsort(rows, n_rows, sizeof *rows, by_bucket);
    for (size_t i = 0; i < n_rows; i++) {
        const bd_row_t *r = &rows[i];
        if (json_array_append_new(grid, json_pack("{s:I, s:s, s:I, s:o}", "bucket",
                                                  (json_int_t)r->bucket, "value", r->value, "n",
                                                  (json_int_t)r->n, "accuracy",
                                                  accuracy(r->n, r->sum))))
            goto fail;
    }
    /* In value order the rows of one value are adjacent: sum them. */
    qsort(rows, n_rows, sizeof *rows, by_value);
    for (size_t i = 0, j; i < n_rows; i = j) {
        int64_t n = 0;
        double sum = 0, lo, hi;
        for (j = i; j < n_rows && strcmp(rows[j].value, rows[i].value) == 0; j++) {
            n += rows[j].n;
            sum += rows[j].sum;
        }
        pb_wilson(sum, (double)n, &lo, &hi);
        /* A metric's group (microseconds, say) is a mean, not a rate: no
         * binomial interval. */
        json_t *ci = sum < 0 || sum > (double)n ? json_null() : json_pack("[f, f]", lo, hi);
        if (json_array_append_new(groups,
                                  json_pack("{s:s, s:I, s:f, s:o, s:o}", "value", rows[i].value,
                                            "n", (json_int_t)n, "score_sum", sum, "accuracy",
                                            accuracy(n, sum), "ci", ci)))
            goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* The entry of list (groups or grid) with the same "value" (and "bucket",
 * when bucket is set) as e, or NULL. */
static json_t *same_cell(const json_t *list, const json_t *e, int bucket)
{
    size_t i;
    json_t *x;
    const char *v = json_string_value(json_object_get(e, "value"));
    json_array_foreach(list, i, x)
    {
        if (v && strcmp(json_string_value(json_object_get(x, "value")), v) == 0 &&
            (!bucket || json_integer_value(json_object_get(x, "bucket")) ==
                            json_integer_value(json_object_get(e, "bucket"))))
            return x;
    }
    return NULL;
}

/* Fold each "<entry>@<metric>" key (a metric's sums per group, common/
 * proto.h) into its entry: every group and grid cell of the entry gains
 * "metrics": {metric: mean}, and the "<entry>@<metric>" key goes. */
static int fold_metrics(json_t *bd)
{
    const char *key;
    json_t *m;
    void *tmp;
    json_object_foreach_safe(bd, tmp, key, m)
    {
        const char *at = strchr(key, PB_GROUP_METRIC_SEP);
        if (at == NULL)
            continue;
        char entry[PB_GROUP_KEY_CAP];
        size_t len = (size_t)(at - key);
        if (len < sizeof entry) {
            memcpy(entry, key, len);
            entry[len] = '\0';
            json_t *base = json_object_get(bd, entry);
            static const char *const lists[] = {"groups", "grid"};
            for (size_t l = 0; base && l < 2; l++) {
                size_t i;
                json_t *e;
                json_array_foreach(json_object_get(m, lists[l]), i, e)
                {
                    json_t *cell = same_cell(json_object_get(base, lists[l]), e, l == 1);
                    if (cell == NULL)
                        continue;
                    json_t *mo = json_object_get(cell, "metrics");
                    if (mo == NULL && json_object_set_new(cell, "metrics", mo = json_object()))
                        return PB_ENOMEM;
                    json_t *acc = json_object_get(e, "accuracy");
                    if (json_object_set(mo, at + 1, acc ? acc : json_null()))
                        return PB_ENOMEM;
                }
            }
        }
        json_object_del(bd, key);
    }
    return 0;
}

int pb_api_breakdown_render(json_t *run)
{
    int rc = 0;
    json_t *rows = json_object_get(run, "breakdown_rows"), *bd = NULL;
    bd_row_t *tmp = NULL;
    size_t n_rows = json_array_size(rows);

    if (rows == NULL)
        return 0;
    json_incref(rows);
    json_object_del(run, "breakdown_rows");
    bd = json_object();
    tmp = malloc((n_rows ? n_rows : 1) * sizeof *tmp);
    if (bd == NULL || tmp == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    /* The store orders rows by key: each key is one stretch. */
    for (size_t i = 0, j; i < n_rows; i = j) {
        const char *key = json_string_value(json_object_get(json_array_get(rows, i), "key"));
        size_t k = 0;
        for (j = i; j < n_rows; j++) {
            const json_t *r = json_array_get(rows, j);
            const char *rk = json_string_value(json_object_get(r, "key"));
            if (key == NULL || rk == NULL || strcmp(rk, key) != 0)
                break;
            const char *value = json_string_value(json_object_get(r, "value"));
            tmp[k++] = (bd_row_t){.value = value ? value : "",
                                  .bucket = json_integer_value(json_object_get(r, "bucket")),
                                  .n = json_integer_value(json_object_get(r, "n")),
                                  .sum = json_number_value(json_object_get(r, "score_sum"))};
        }
        if (j == i) { /* a row without a key: the store never writes one */
            j = i + 1;
            continue;
        }
        if (json_object_set_new(bd, key, render_key(tmp, k))) {
            rc = PB_ENOMEM;
            goto out;
        }
    }
    rc = fold_metrics(bd);
    if (rc == 0 && json_object_size(bd) && json_object_set(run, "breakdown", bd))
        rc = PB_ENOMEM;
out:
    free(tmp);
    json_decref(bd);
    json_decref(rows);
    return rc;
}

/* run["buckets"] index of bucket b, or -1. */
static long bucket_index(const json_t *buckets, int64_t b)
{
    size_t i;
    const json_t *e;
    json_array_foreach(buckets, i, e)
    {
        if (json_integer_value(json_object_get(e, "bucket")) == b)
            return (long)i;
    }
    return -1;
}

int pb_api_breakdown_reserved(json_t *run, const char *const *metrics, size_t n_metrics,
                              double *sums, double *ns, const char **unit, int *have_metrics)
{
    json_t *rows = json_object_get(run, "breakdown_rows"), *row;
    const json_t *buckets = json_object_get(run, "buckets");
    size_t i;

    *unit = NULL;
    *have_metrics = 0;
    if (rows == NULL)
        return 0;
    json_t *keep = json_array();
    if (keep == NULL)
        return PB_ENOMEM;
    json_array_foreach(rows, i, row)
    {
        const char *key = json_string_value(json_object_get(row, "key"));
        const char *value = json_string_value(json_object_get(row, "value"));
        if (key == NULL || value == NULL)
            continue;
        if (strcmp(key, PB_GROUP_UNIT) == 0) {
            const char *u = strcmp(value, "tokens") == 0 ? "tokens"
                            : strcmp(value, "chars") == 0 ? "chars" : "mixed";
            *unit = *unit == NULL || strcmp(*unit, u) == 0 ? u : "mixed";
        } else if (strcmp(key, PB_GROUP_METRIC) == 0) {
            long j = bucket_index(buckets, json_integer_value(json_object_get(row, "bucket")));
            for (size_t k = 0; j >= 0 && k < n_metrics; k++)
                if (strcmp(metrics[k], value) == 0) {
                    sums[(size_t)j * n_metrics + k] +=
                        json_number_value(json_object_get(row, "score_sum"));
                    ns[(size_t)j * n_metrics + k] += json_number_value(json_object_get(row, "n"));
                    *have_metrics = 1;
                }
        } else if (json_array_append(keep, row)) {
            json_decref(keep);
            return PB_ENOMEM;
        }
    }
    if (json_array_size(keep) == 0) {
        json_decref(keep);
        json_object_del(run, "breakdown_rows");
        return 0;
    }
    return json_object_set_new(run, "breakdown_rows", keep) ? PB_ENOMEM : 0;
}
