/* The suite registry: the static table of suites, run keys (so any item can
 * be regenerated alone), the shared exact-match scorer and the aggregate
 * helpers every suite uses. Adding a suite is one line in `suites` below. */
#include "suites/suite.h"
#include "suites/suite_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

static const ps_suite_t *const suites[] = {
    &ps__suite_arithmetic,
    &ps__suite_table,
    &ps__suite_longctx,
    &ps__suite_retrieval,
    &ps__suite_halluc,
    &ps__suite_kernels,
};

const ps_suite_t *ps_suite_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < PB_ARRAY_LEN(suites); i++)
        if (strcmp(suites[i]->name, name) == 0)
            return suites[i];
    return NULL;
}

const ps_task_def_t *ps_suite_task(const ps_suite_t *suite, const char *task)
{
    if (suite == NULL || task == NULL)
        return NULL;
    for (size_t i = 0; i < suite->n_tasks; i++)
        if (strcmp(suite->tasks[i].name, task) == 0)
            return &suite->tasks[i];
    return NULL;
}

const char *ps_task_unit(const ps_suite_t *suite, const char *task)
{
    const ps_task_def_t *t = ps_suite_task(suite, task);
    return t && t->bucket_unit ? t->bucket_unit : (suite ? suite->bucket_unit : NULL);
}

size_t ps_suite_count(void) { return PB_ARRAY_LEN(suites); }

const ps_suite_t *ps_suite_at(size_t i)
{
    return i < PB_ARRAY_LEN(suites) ? suites[i] : NULL;
}

/* One suite as the registry serves it; NULL on failure. */
static json_t *suite_json(const ps_suite_t *s)
{
    json_t *tasks = json_array();
    if (tasks == NULL)
        return NULL;
    for (size_t t = 0; t < s->n_tasks; t++) {
        json_t *schema = s->schema(s->tasks[t].name);
        json_t *task = json_pack("{s:s, s:s, s:s, s:o*}", "name", s->tasks[t].name,
                                 "description", s->tasks[t].description, "bucket_unit",
                                 ps_task_unit(s, s->tasks[t].name), "params", schema);
        if (task == NULL || schema == NULL || json_array_append_new(tasks, task)) {
            json_decref(tasks);
            return NULL;
        }
    }
    json_t *metrics = json_array();
    for (size_t k = 0; metrics && k < ps_suite_n_metrics(s); k++)
        if (json_array_append_new(metrics, json_string(s->metrics[k]))) {
            json_decref(metrics);
            metrics = NULL;
        }
    return json_pack("{s:s, s:s, s:i, s:s, s:o, s:o*}", "name", s->name, "description",
                     s->description, "version", s->version, "bucket_unit", s->bucket_unit,
                     "tasks", tasks, "metrics", metrics);
}

json_t *ps_registry_json(void)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < PB_ARRAY_LEN(suites); i++) {
        json_t *s = suite_json(suites[i]);
        if (s == NULL || json_array_append_new(arr, s)) {
            json_decref(arr);
            return NULL;
        }
    }
    return json_pack("{s:o}", "suites", arr);
}

int ps_run_open(ps_run_t *run, const ps_suite_t *suite, const char *task, json_t *params,
                int64_t bucket, uint64_t seed)
{
    return ps_run_open_data(run, suite, task, params, bucket, seed, NULL, 0);
}

int ps_run_open_data(ps_run_t *run, const ps_suite_t *suite, const char *task, json_t *params,
                     int64_t bucket, uint64_t seed, const char *data, size_t data_len)
{
    memset(run, 0, sizeof *run);
    const ps_task_def_t *def = ps_suite_task(suite, task);
    if (def == NULL || params == NULL)
        return PB_EINVAL;
    /* Canonical params make the key independent of key order and spacing. */
    char *canon = pb_json_canonical(params);
    if (canon == NULL)
        return PB_ENOMEM;
    uint64_t h = pb_hash_str(PB_HASH_INIT, suite->name);
    h = pb_hash_str(h, def->name);
    h = pb_hash_str(h, canon);
    h = pb_hash_u64(h, (uint64_t)bucket);
    h = pb_hash_u64(h, seed);
    free(canon);

    run->suite = suite;
    run->task = def->name;
    run->params = json_incref(params);
    run->bucket = bucket;
    run->seed = seed;
    run->key = h;
    run->data = data;
    run->data_len = data_len;
    if (suite->prepare) {
        int rc = suite->prepare(run);
        if (rc) {
            /* prepare leaves no state behind on failure */
            json_decref(run->params);
            memset(run, 0, sizeof *run);
            return rc;
        }
    }
    return 0;
}

void ps_run_close(ps_run_t *run)
{
    if (run == NULL)
        return;
    if (run->suite && run->suite->release)
        run->suite->release(run);
    json_decref(run->params);
    memset(run, 0, sizeof *run);
}

void ps_item_clear(ps_item_t *item)
{
    if (item == NULL)
        return;
    free(item->prompt);
    free(item->reference);
    json_decref(item->meta);
    for (size_t k = 0; k < item->n_parts; k++) {
        if (item->parts)
            free(item->parts[k]);
        if (item->part_refs)
            free(item->part_refs[k]);
    }
    free(item->parts);
    free(item->part_refs);
    memset(item, 0, sizeof *item);
}

int64_t ps_run_length(const ps_run_t *run, const char *text, size_t len)
{
    ps_tokenizer_t *t = run ? run->tok : NULL;
    if (t == NULL || t->count == NULL)
        return (int64_t)len;
    int64_t n = 0;
    int rc = t->count(t->ctx, text, len, &n);
    if (rc == 0 && n >= 0)
        return n;
    if (t->failed == 0)
        t->failed = rc ? rc : PB_EBACKEND;
    return (int64_t)len;
}

const char *ps_run_unit(const ps_run_t *run)
{
    return run && run->tok && run->tok->count ? "tokens" : "chars";
}

size_t ps_suite_n_metrics(const ps_suite_t *suite)
{
    size_t n = 0;
    while (suite && suite->metrics && suite->metrics[n])
        n++;
    return n;
}

/* Next character of the normalised text at *p, or '\0' at its end: leading
 * whitespace (newlines included) is skipped, the first line ends the text,
 * and whitespace inside that line is dropped. *started tracks whether the
 * first non-space character has been seen. */
static char norm_next(const char **p, int *started)
{
    for (;;) {
        unsigned char c = (unsigned char)**p;
        if (c == '\0')
            return '\0';
        if (c == '\n' && *started)
            return '\0';
        (*p)++;
        if (isspace(c))
            continue;
        *started = 1;
        return (char)c;
    }
}

double ps_exact_match(const char *prediction, const char *reference)
{
    if (prediction == NULL || reference == NULL)
        return 0.0;
    int sp = 0, sr = 0;
    for (;;) {
        char a = norm_next(&prediction, &sp);
        char b = norm_next(&reference, &sr);
        if (a != b)
            return 0.0;
        if (a == '\0')
            return 1.0;
    }
}

static double stat_mean(const ps_bucket_stat_t *s) { return s->score_sum / s->n; }

int64_t ps__effective_length(const ps_bucket_stat_t *stats, size_t n, double threshold)
{
    /* The smallest failing bucket bounds the answer; everything below it
     * passes by construction, so the answer is the largest bucket below it. */
    int have_fail = 0;
    int64_t fail_min = 0;
    for (size_t i = 0; i < n; i++) {
        int fails = !(stats[i].n > 0) || stat_mean(&stats[i]) < threshold;
        if (fails && (!have_fail || stats[i].bucket < fail_min)) {
            fail_min = stats[i].bucket;
            have_fail = 1;
        }
    }
    int64_t best = 0;
    for (size_t i = 0; i < n; i++)
        if ((!have_fail || stats[i].bucket < fail_min) && stats[i].bucket > best)
            best = stats[i].bucket;
    return best;
}

json_t *ps__accuracy_json(double score_sum, double n)
{
    json_t *acc = n > 0 ? json_real(score_sum / n) : json_null();
    return json_pack("{s:o, s:I}", "accuracy", acc, "n", (json_int_t)n);
}

json_t *ps__length_aggregate(const ps_bucket_stat_t *stats, size_t n, double threshold,
                             const char *train_key, int64_t train)
{
    double sum = 0, cnt = 0, in_sum = 0, in_n = 0, out_sum = 0, out_n = 0;
    for (size_t i = 0; i < n; i++) {
        sum += stats[i].score_sum;
        cnt += stats[i].n;
        if (stats[i].bucket <= train) {
            in_sum += stats[i].score_sum;
            in_n += stats[i].n;
        } else {
            out_sum += stats[i].score_sum;
            out_n += stats[i].n;
        }
    }
    json_t *agg = ps__accuracy_json(sum, cnt);
    if (agg == NULL)
        return NULL;
    int bad = json_object_set_new(agg, "threshold", json_real(threshold));
    bad |= json_object_set_new(agg, "effective_length",
                               json_integer(ps__effective_length(stats, n, threshold)));
    if (train > 0) {
        bad |= json_object_set_new(agg, train_key, json_integer(train));
        bad |= json_object_set_new(agg, "in_distribution", ps__accuracy_json(in_sum, in_n));
        bad |= json_object_set_new(agg, "out_of_distribution", ps__accuracy_json(out_sum, out_n));
    }
    if (bad) {
        json_decref(agg);
        return NULL;
    }
    return agg;
}

int ps__parse_range(const json_t *v, const char *field, int64_t def_lo, int64_t def_hi,
                    int64_t min, int64_t max, int *lo, int *hi, pb_err_t *err)
{
    int64_t a = def_lo, b = def_hi;
    if (v != NULL && !json_is_null(v)) {
        if (json_is_array(v)) {
            if (json_array_size(v) != 2 || pb_json_as_int(json_array_get(v, 0), &a) ||
                pb_json_as_int(json_array_get(v, 1), &b))
                return pb_err_set(err, PB_EINVAL, field,
                                  "%s must be [lo, hi] (two integers) or one integer", field);
        } else if (pb_json_as_int(v, &a) == 0) {
            b = a;
        } else {
            return pb_err_set(err, PB_EINVAL, field,
                              "%s must be [lo, hi] (two integers) or one integer", field);
        }
    }
    if (a < min || b > max || a > b)
        return pb_err_set(err, PB_EINVAL, field,
                          "%s must satisfy %lld <= lo <= hi <= %lld (got [%lld, %lld])", field,
                          (long long)min, (long long)max, (long long)a, (long long)b);
    *lo = (int)a;
    *hi = (int)b;
    return 0;
}

void ps__item_finish(ps_item_t *out, const ps_run_t *run, uint64_t idx, int64_t length,
                     pb_buf_t *prompt, pb_buf_t *ref)
{
    out->idx = idx;
    out->bucket = run->bucket;
    out->length = length >= 0 ? length : ps_run_length(run, prompt->data, prompt->len);
    out->prompt_hash = pb_hash_str(PB_HASH_INIT, prompt->data);
    out->prompt = prompt->data;
    out->reference = ref->data;
    prompt->data = ref->data = NULL; /* now owned by the item */
}

int ps__prepare_parsed(ps_run_t *run, size_t size,
                       int (*parse)(const char *task, const json_t *params, void *out))
{
    void *p = malloc(size);
    if (p == NULL)
        return PB_ENOMEM;
    int rc = parse(run->task, run->params, p);
    if (rc) {
        free(p);
        return rc;
    }
    run->state = p;
    return 0;
}

int ps__copy_buckets(const int64_t *v, size_t n, int64_t **out, size_t *n_out)
{
    *n_out = 0;
    if ((*out = malloc(sizeof **out * (n ? n : 1))) == NULL)
        return PB_ENOMEM;
    memcpy(*out, v, sizeof **out * n);
    *n_out = n;
    return 0;
}

int ps__range_buckets(int lo, int hi, int64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int64_t *b = malloc(sizeof *b * (size_t)(hi - lo + 1));
    if (b == NULL)
        return PB_ENOMEM;
    for (int d = lo; d <= hi; d++)
        b[d - lo] = d;
    *out = b;
    *n = (size_t)(hi - lo + 1);
    return 0;
}

void ps__release_state(ps_run_t *run)
{
    free(run->state);
    run->state = NULL;
}
