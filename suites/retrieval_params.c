/* The retrieval suite's params (retrieval_int.h): corpus sizes (one bucket
 * each), hard and easy negatives per query and a cross encoder's pool,
 * their schema with defaults and their normal form. A dataset run ignores
 * corpus_sizes and hard_negatives: the file gives both. */
#include "suites/retrieval_int.h"
#include "suites/suite_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int ps__rt_parse(const char *task, const json_t *params, rt_params_t *p, pb_err_t *err)
{
    static const char *const keys[] = {"corpus_sizes", "hard_negatives", "easy_negatives", "pool",
                                       NULL};
    int64_t v;
    int rc;
    memset(p, 0, sizeof *p);
    if (task == NULL || strcmp(task, "synthetic") != 0)
        return pb_err_set(err, PB_EINVAL, "", "unknown retrieval task \"%s\"", task ? task : "");
    if (params != NULL && !json_is_object(params))
        return pb_err_set(err, PB_EINVAL, "", "params must be an object");
    if ((rc = pb_json_only_keys(params, keys, "", err)))
        return rc;
    const json_t *s = params ? json_object_get(params, "corpus_sizes") : NULL;
    if (s == NULL || json_is_null(s)) {
        p->sizes[0] = 1000;
        p->sizes[1] = 10000;
        p->n_sizes = 2;
    } else {
        if (!json_is_array(s) || json_array_size(s) == 0 || json_array_size(s) > RT_MAX_SIZES)
            return pb_err_set(err, PB_EINVAL, "corpus_sizes",
                              "corpus_sizes must be an array of 1 to %d integers", RT_MAX_SIZES);
        for (size_t i = 0; i < json_array_size(s); i++) {
            if (pb_json_as_int(json_array_get(s, i), &v) || v < RT_MIN_DOCS || v > RT_MAX_DOCS)
                return pb_err_set(err, PB_EINVAL, "corpus_sizes",
                                  "corpus_sizes[%zu] must be an integer in [%d, %d]", i,
                                  RT_MIN_DOCS, RT_MAX_DOCS);
            p->sizes[p->n_sizes++] = v;
        }
        qsort(p->sizes, p->n_sizes, sizeof p->sizes[0], cmp_i64);
        for (size_t i = 1; i < p->n_sizes; i++)
            if (p->sizes[i] == p->sizes[i - 1])
                return pb_err_set(err, PB_EINVAL, "corpus_sizes",
                                  "corpus_sizes lists %lld twice", (long long)p->sizes[i]);
    }
    if ((rc = pb_json_int(params, "hard_negatives", 5, 2, 16, &v, "", err)))
        return rc;
    p->hard = (int)v;
    if ((rc = pb_json_int(params, "easy_negatives", 16, 2, 64, &v, "", err)))
        return rc;
    p->easy = (int)v;
    if ((rc = pb_json_int(params, "pool", 200, 20, 5000, &v, "", err)))
        return rc;
    p->pool = (int)v;
    return 0;
}

json_t *ps__rt_schema(const char *task)
{
    if (task == NULL || strcmp(task, "synthetic") != 0)
        return NULL;
    return json_pack(
        "{s:{s:s, s:[i,i], s:s, s:i, s:i}, s:{s:s, s:i, s:s, s:i, s:i},"
        " s:{s:s, s:i, s:s, s:i, s:i}, s:{s:s, s:i, s:s, s:i, s:i}}",
        "corpus_sizes", "type", "list", "default", 1000, 10000, "description",
        "corpus sizes in documents, one bucket each; every shard of a bucket ranks the same "
        "corpus",
        "min", RT_MIN_DOCS, "max", RT_MAX_DOCS,
        "hard_negatives", "type", "int", "default", 5, "description",
        "near-duplicates of the relevant document per query (tau_hard is over these)", "min", 2,
        "max", 16,
        "easy_negatives", "type", "int", "default", 16, "description",
        "easy negatives sampled per query (tau_easy is over these)", "min", 2, "max", 64,
        "pool", "type", "int", "default", 200, "description",
        "candidates a cross encoder (score_pairs) scores per query: the judged documents, the "
        "hard and easy negatives, then random filler",
        "min", 20, "max", 5000);
}

int ps__rt_normalize(const char *task, const json_t *params, json_t **out, pb_err_t *err)
{
    rt_params_t p;
    *out = NULL;
    int rc = ps__rt_parse(task, params, &p, err);
    if (rc)
        return rc;
    json_t *sizes = json_array();
    for (size_t i = 0; sizes && i < p.n_sizes; i++)
        if (json_array_append_new(sizes, json_integer(p.sizes[i]))) {
            json_decref(sizes);
            sizes = NULL;
        }
    *out = json_pack("{s:o*, s:i, s:i, s:i}", "corpus_sizes", sizes, "hard_negatives", p.hard,
                     "easy_negatives", p.easy, "pool", p.pool);
    return *out ? 0 : pb_err_set(err, PB_ENOMEM, "", "out of memory");
}

int ps__rt_buckets(const char *task, const json_t *params, int64_t **out, size_t *n)
{
    rt_params_t p;
    *out = NULL;
    *n = 0;
    int rc = ps__rt_parse(task, params, &p, NULL);
    if (rc)
        return rc;
    return ps__copy_buckets(p.sizes, p.n_sizes, out, n);
}
