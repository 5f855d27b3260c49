/* The length-generalisation tasks of the arithmetic suite (reference/suites.md
 * 1.2, after Kazemnejad et al. 2023): polynomial evaluation, single- and
 * multi-digit sorting, summation, parity, copy and reverse, bucketed by the
 * input's element count and reported in distribution (<= train_length) and
 * out of distribution. arithmetic.c hands these task names to this file. */
#include "suites/suite.h"
#include "suites/suite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

#define LG_MAX_LEN 200   /* elements per item */
#define LG_MAX_TRAIN 100 /* so the default sweep 1..2*train stays within LG_MAX_LEN */
#define LG_TEXT_MAX 8192 /* worst case: 200 poly terms of 7 bytes, far below */

enum { LG_POLY, LG_SORT_SINGLE, LG_SORT_MULTI, LG_SUM, LG_PARITY, LG_COPY, LG_REVERSE };

/* Per task: the text before the input, the element separator, the allowed
 * range of one input value (poly: of a coefficient) and the default
 * train_length. The order follows the enum. */
static const struct lg_task {
    const char *name;
    const char *lead;
    const char *sep;
    int vmin, vmax;
    int train;
} lg_tasks[] = {
    {"poly", "Evaluate at x=", "", -3, 3, 8},
    {"sort_single", "Sort ascending: ", " ", 0, 9, 8},
    {"sort_multi", "Sort ascending: ", ", ", 10, 9999, 8},
    {"sum", "Sum: ", " ", 1, 9, 8},
    {"parity", "Parity (number of 1s mod 2): ", " ", 0, 1, 20},
    {"copy", "Copy: ", " ", 0, 25, 20},
    {"reverse", "Reverse: ", " ", 0, 25, 20},
};

/* poly: x in [-2, 2], degrees in [0, 3], as in the source generator. */
#define LG_POLY_XMAX 2
#define LG_POLY_DMAX 3

/* Parsed, validated params; also the run state. */
typedef struct lg_params {
    int kind;         /* LG_* */
    int lo, hi;       /* length buckets lo..hi */
    int train;        /* train_length */
    double threshold; /* effective-length threshold, (0, 1] */
} lg_params_t;

static int lg_kind(const char *task)
{
    for (int i = 0; task && i < (int)PB_ARRAY_LEN(lg_tasks); i++)
        if (strcmp(lg_tasks[i].name, task) == 0)
            return i;
    return -1;
}

int ps__lg_is_task(const char *task) { return lg_kind(task) >= 0; }

/* lengths: [lo, hi] or one integer n meaning [n, n]; absent = [1, 2*train]. */
static int parse_lengths(const json_t *v, int train, int *lo, int *hi, pb_err_t *err)
{
    return ps__parse_range(v, "lengths", 1, 2 * (int64_t)train, 1, LG_MAX_LEN, lo, hi, err);
}

/* Validate params (NULL = all defaults) into p. err->field is the param name. */
static int lg_parse(const char *task, const json_t *params, lg_params_t *p, pb_err_t *err)
{
    static const char *const keys[] = {"lengths", "train_length", "threshold", NULL};
    int64_t v;
    int rc;

    memset(p, 0, sizeof *p);
    p->kind = lg_kind(task);
    if (p->kind < 0)
        return pb_err_set(err, PB_EINVAL, "", "unknown arithmetic task \"%s\"",
                          task ? task : "");
    if (params != NULL && !json_is_object(params))
        return pb_err_set(err, PB_EINVAL, "", "params must be an object");
    if ((rc = pb_json_only_keys(params, keys, "", err)))
        return rc;
    /* train_length first: the default sweep depends on it */
    if ((rc = pb_json_int(params, "train_length", lg_tasks[p->kind].train, 1, LG_MAX_TRAIN, &v,
                          "", err)))
        return rc;
    p->train = (int)v;
    if ((rc = parse_lengths(params ? json_object_get(params, "lengths") : NULL, p->train, &p->lo,
                            &p->hi, err)))
        return rc;
    if ((rc = pb_json_num(params, "threshold", 0.9, 0.0, 1.0, &p->threshold, "", err)))
        return rc;
    if (!(p->threshold > 0.0))
        return pb_err_set(err, PB_EINVAL, "threshold", "threshold must be in (0, 1]");
    return 0;
}

json_t *ps__lg_schema(const char *task)
{
    int k = lg_kind(task);
    if (k < 0)
        return NULL;
    int train = lg_tasks[k].train;
    return json_pack("{s:{s:s, s:[i,i], s:s, s:i, s:i},"
                     " s:{s:s, s:i, s:s, s:i, s:i},"
                     " s:{s:s, s:f, s:s, s:f, s:f}}",
                     "lengths", "type", "range", "default", 1, 2 * train, "description",
                     "input lengths [lo, hi] (or one integer); one bucket per length "
                     "(default: 1 to 2*train_length)",
                     "min", 1, "max", LG_MAX_LEN,
                     "train_length", "type", "integer", "default", train, "description",
                     "buckets <= train_length are reported as in distribution, longer ones "
                     "as out of distribution",
                     "min", 1, "max", LG_MAX_TRAIN,
                     "threshold", "type", "number", "default", 0.9, "description",
                     "accuracy a bucket needs to count towards the effective length "
                     "(exclusive minimum 0)",
                     "min", 0.0, "max", 1.0);
}

int ps__lg_normalize(const char *task, const json_t *params, json_t **out, pb_err_t *err)
{
    lg_params_t p;
    *out = NULL;
    int rc = lg_parse(task, params, &p, err);
    if (rc)
        return rc;
    *out = json_pack("{s:[i,i], s:i, s:f}", "lengths", p.lo, p.hi, "train_length", p.train,
                     "threshold", p.threshold);
    return *out ? 0 : pb_err_set(err, PB_ENOMEM, "", "out of memory");
}

int ps__lg_buckets(const char *task, const json_t *params, int64_t **out, size_t *n)
{
    lg_params_t p;
    *out = NULL;
    *n = 0;
    int rc = lg_parse(task, params, &p, NULL);
    if (rc)
        return rc;
    return ps__range_buckets(p.lo, p.hi, out, n);
}

/* The state is one malloc'd struct, freed by ps__release_state. */
/* lg_parse as ps__prepare_parsed calls it. */
static int lg_parse_state(const char *task, const json_t *params, void *out)
{
    return lg_parse(task, params, out, NULL);
}

int ps__lg_prepare(ps_run_t *run)
{
    return ps__prepare_parsed(run, sizeof(lg_params_t), lg_parse_state);
}

/* Input values of one item: poly is x then (coefficient, degree) per term,
 * every other task one value per element. 0 when all are in range. */
static int check_values(int kind, const int *v, size_t nv)
{
    const struct lg_task *t = &lg_tasks[kind];
    if (kind == LG_POLY) {
        if (nv < 3 || nv % 2 == 0 || v[0] < -LG_POLY_XMAX || v[0] > LG_POLY_XMAX)
            return PB_EINVAL;
        for (size_t i = 1; i < nv; i += 2)
            if (v[i] < t->vmin || v[i] > t->vmax || v[i + 1] < 0 || v[i + 1] > LG_POLY_DMAX)
                return PB_EINVAL;
        return (nv - 1) / 2 <= LG_MAX_LEN ? 0 : PB_EINVAL;
    }
    if (nv < 1 || nv > LG_MAX_LEN)
        return PB_EINVAL;
    for (size_t i = 0; i < nv; i++)
        if (v[i] < t->vmin || v[i] > t->vmax)
            return PB_EINVAL;
    return 0;
}

/* Append one element: letters for copy and reverse, decimal otherwise. */
static int put_value(pb_buf_t *b, int kind, int v)
{
    if (kind == LG_COPY || kind == LG_REVERSE) {
        char c = (char)('a' + v);
        return pb_buf_append(b, &c, 1);
    }
    return pb_buf_printf(b, "%d", v);
}

/* Append v[0..n) joined by the task's separator. */
static int put_list(pb_buf_t *b, int kind, const int *v, size_t n)
{
    const char *sep = lg_tasks[kind].sep;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            rc = pb_buf_puts(b, sep);
        if (rc == 0)
            rc = put_value(b, kind, v[i]);
    }
    return rc;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The answer to the task on v[0..nv), into ref. */
static int put_answer(pb_buf_t *ref, int kind, const int *v, size_t nv)
{
    int tmp[LG_MAX_LEN];
    long long acc = 0;
    switch (kind) {
    case LG_POLY:
        for (size_t i = 1; i < nv; i += 2) {
            long long xp = 1;
            for (int d = 0; d < v[i + 1]; d++)
                xp *= v[0];
            acc += v[i] * xp;
        }
        return pb_buf_printf(ref, "%lld", acc);
    case LG_SORT_SINGLE:
    case LG_SORT_MULTI:
        memcpy(tmp, v, nv * sizeof *v);
        qsort(tmp, nv, sizeof *tmp, cmp_int);
        return put_list(ref, kind, tmp, nv);
    case LG_SUM:
    case LG_PARITY:
        for (size_t i = 0; i < nv; i++)
            acc += v[i];
        return pb_buf_printf(ref, "%lld", kind == LG_PARITY ? acc % 2 : acc);
    case LG_REVERSE:
        for (size_t i = 0; i < nv; i++)
            tmp[i] = v[nv - 1 - i];
        return put_list(ref, kind, tmp, nv);
    default: /* LG_COPY */
        return put_list(ref, kind, v, nv);
    }
}

/* "<lead><input>\nAnswer:" and the reference, both NUL-terminated. */
static int lg_render(int kind, const int *v, size_t nv, pb_buf_t *prompt, pb_buf_t *ref)
{
    int rc = check_values(kind, v, nv);
    if (rc == 0)
        rc = pb_buf_puts(prompt, lg_tasks[kind].lead);
    if (rc == 0 && kind == LG_POLY) {
        /* "x=-2: 3*x^2-1*x^0+2*x^3": every term shows its sign, coefficient
         * and degree, so the text has exactly one reading */
        rc = pb_buf_printf(prompt, "%d: ", v[0]);
        for (size_t i = 1; i < nv && rc == 0; i += 2)
            rc = pb_buf_printf(prompt, i == 1 ? "%d*x^%d" : "%+d*x^%d", v[i], v[i + 1]);
    } else if (rc == 0) {
        rc = put_list(prompt, kind, v, nv);
    }
    if (rc == 0)
        rc = pb_buf_append(prompt, "\nAnswer:", 8);
    if (rc == 0)
        rc = put_answer(ref, kind, v, nv);
    if (rc == 0)
        rc = pb_buf_cstr(prompt);
    if (rc == 0)
        rc = pb_buf_cstr(ref);
    return rc;
}

int ps__lg_render(const char *task, const int *values, size_t n_values, char **prompt,
                  char **reference)
{
    pb_buf_t pb, rb;
    int kind = lg_kind(task), rc;
    *prompt = *reference = NULL;
    if (kind < 0 || values == NULL)
        return PB_EINVAL;
    pb_buf_init(&pb, LG_TEXT_MAX);
    pb_buf_init(&rb, LG_TEXT_MAX);
    rc = lg_render(kind, values, n_values, &pb, &rb);
    if (rc) {
        pb_buf_free(&pb);
        pb_buf_free(&rb);
        return rc;
    }
    *prompt = pb.data;
    *reference = rb.data;
    return 0;
}

/* Draw the n-element input of one item into v; returns the value count. */
static size_t draw_values(pb_rng_t *r, int kind, int n, int *v)
{
    const struct lg_task *t = &lg_tasks[kind];
    size_t k = 0;
    if (kind == LG_POLY) {
        v[k++] = (int)pb_rng_range(r, -LG_POLY_XMAX, LG_POLY_XMAX);
        for (int i = 0; i < n; i++) {
            v[k++] = (int)pb_rng_range(r, t->vmin, t->vmax);
            v[k++] = (int)pb_rng_range(r, 0, LG_POLY_DMAX);
        }
        return k;
    }
    for (int i = 0; i < n; i++)
        v[k++] = (int)pb_rng_range(r, t->vmin, t->vmax);
    return k;
}

int ps__lg_generate(const ps_run_t *run, uint64_t idx, ps_item_t *out)
{
    const lg_params_t *p = run->state;
    int v[2 * LG_MAX_LEN + 1];
    json_t *vals = NULL;
    pb_buf_t prompt, ref;
    pb_rng_t rng;
    int rc;

    memset(out, 0, sizeof *out);
    if (p == NULL || run->bucket < p->lo || run->bucket > p->hi)
        return PB_EINVAL;
    pb_buf_init(&prompt, LG_TEXT_MAX);
    pb_buf_init(&ref, LG_TEXT_MAX);
    pb_rng_seed(&rng, run->key, idx);
    size_t nv = draw_values(&rng, p->kind, (int)run->bucket, v);
    if ((rc = lg_render(p->kind, v, nv, &prompt, &ref)))
        goto out;
    vals = json_array();
    for (size_t i = 0; vals && i < nv; i++)
        if (json_array_append_new(vals, json_integer(v[i]))) {
            json_decref(vals);
            vals = NULL;
        }
    /* "values" is exactly what ps__lg_render takes, so an item can be re-rendered */
    out->meta = vals ? json_pack("{s:i, s:o}", "n", (int)run->bucket, "values", vals) : NULL;
    if (out->meta == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    ps__item_finish(out, run, idx, -1, &prompt, &ref);
out:
    pb_buf_free(&prompt);
    pb_buf_free(&ref);
    if (rc)
        ps_item_clear(out);
    return rc;
}

json_t *ps__lg_aggregate(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                         size_t n)
{
    lg_params_t p;
    if (lg_parse(task, params, &p, NULL))
        return NULL;
    return ps__length_aggregate(stats, n, p.threshold, "train_length", p.train);
}
