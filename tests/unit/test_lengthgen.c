/* Unit tests for the length-generalisation tasks of the arithmetic suite
 * (suites/lengthgen.c): exact prompt formats, determinism, bucket lengths,
 * references checked by an independent solver, scoring, parameter errors,
 * the in/out-of-distribution aggregate and job planning. */
#include "tests/unit/unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites/jobspec.h"
#include "suites/suite.h"
#include "suites/suite_int.h"

static const char *const tasks[] = {"poly",   "sort_single", "sort_multi", "sum",
                                    "parity", "copy",        "reverse"};
#define N_TASKS (sizeof tasks / sizeof tasks[0])

static const ps_suite_t *arith(void)
{
    const ps_suite_t *s = ps_suite_find("arithmetic");
    assert_non_null(s);
    return s;
}

static int train_default(const char *task)
{
    return strcmp(task, "parity") == 0 || strcmp(task, "copy") == 0 ||
                   strcmp(task, "reverse") == 0
               ? 20
               : 8;
}

static json_t *norm(const char *task, const char *text)
{
    return pb_test_norm(arith(), task, text);
}

static void open_run(ps_run_t *run, const char *task, const char *params, int64_t bucket,
                     uint64_t seed)
{
    pb_test_open_run(run, arith(), task, params, bucket, seed);
}

static void gen(const ps_run_t *run, uint64_t idx, ps_item_t *it) { pb_test_gen(run, idx, it); }

/* ---- registry and params ---- */

static void test_registry_lists_tasks(void **state)
{
    json_t *reg = ps_registry_json();
    assert_non_null(reg);
    json_t *a = json_array_get(json_object_get(reg, "suites"), 0);
    assert_string_equal(json_string_value(json_object_get(a, "name")), "arithmetic");
    assert_string_equal(ps_task_unit(arith(), "add"), "digits");
    assert_string_equal(ps_task_unit(arith(), "parity"), "bits");
    assert_string_equal(ps_task_unit(arith(), "poly"), "terms");
    json_t *ts = json_object_get(a, "tasks");
    for (size_t t = 0; t < N_TASKS; t++) {
        assert_non_null(ps_suite_task(arith(), tasks[t]));
        json_t *found = NULL;
        for (size_t i = 0; i < json_array_size(ts); i++) {
            json_t *v = json_array_get(ts, i);
            if (strcmp(json_string_value(json_object_get(v, "name")), tasks[t]) == 0)
                found = v;
        }
        if (found == NULL)
            fail_msg("task %s not in the registry", tasks[t]);
        const char *desc = json_string_value(json_object_get(found, "description"));
        assert_non_null(strstr(desc, "Answer:"));
        /* each task says what its buckets count; add and mul keep the suite's */
        const char *unit = json_string_value(json_object_get(found, "bucket_unit"));
        assert_non_null(unit);
        assert_string_equal(unit, ps_task_unit(arith(), tasks[t]));
        assert_string_not_equal(unit, "digits");
        json_t *params = json_object_get(found, "params");
        int tr = train_default(tasks[t]);
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(params, "train_length"), "default")),
            tr);
        json_t *want = json_pack("[i,i]", 1, 2 * tr);
        assert_true(json_equal(json_object_get(json_object_get(params, "lengths"), "default"), want));
        json_decref(want);
        assert_non_null(json_object_get(params, "threshold"));
        assert_null(json_object_get(params, "digits"));
    }
    /* add and mul keep their place and their schema */
    json_t *t0 = json_array_get(ts, 0);
    assert_string_equal(json_string_value(json_object_get(t0, "name")), "add");
    assert_non_null(json_object_get(json_object_get(t0, "params"), "digits"));
    assert_false(ps__lg_is_task("add"));
    assert_false(ps__lg_is_task(NULL));
    json_decref(reg);
}

static void test_normalize(void **state)
{
    for (size_t t = 0; t < N_TASKS; t++) {
        int tr = train_default(tasks[t]);
        json_t *n = norm(tasks[t], NULL);
        json_t *want = json_pack("{s:[i,i], s:i, s:f}", "lengths", 1, 2 * tr, "train_length", tr,
                                 "threshold", 0.9);
        assert_true(json_equal(n, want));
        json_decref(want);
        /* normalising a normalised object changes nothing */
        char *text = json_dumps(n, JSON_COMPACT);
        json_t *again = norm(tasks[t], text);
        assert_true(json_equal(n, again));
        free(text);
        json_decref(again);
        /* default buckets sweep 1 .. 2*train_length */
        int64_t *b = NULL;
        size_t nb = 0;
        assert_int_equal(arith()->buckets(tasks[t], n, &b, &nb), 0);
        assert_int_equal(nb, 2 * tr);
        for (size_t i = 0; i < nb; i++)
            assert_int_equal(b[i], (int64_t)i + 1);
        free(b);
        json_decref(n);
    }
    /* the default sweep follows train_length; explicit lengths win */
    json_t *n = norm("sum", "{\"train_length\": 5}");
    json_t *want = pb_test_json("{\"lengths\": [1, 10], \"train_length\": 5, \"threshold\": 0.9}");
    assert_true(json_equal(n, want));
    json_decref(want);
    json_decref(n);
    n = norm("copy", "{\"lengths\": 7, \"threshold\": 1}");
    want = pb_test_json("{\"lengths\": [7, 7], \"train_length\": 20, \"threshold\": 1.0}");
    assert_true(json_equal(n, want));
    json_decref(want);
    json_decref(n);
}

static void expect_param_error(const char *task, const char *params, const char *field)
{
    pb_test_param_error(arith(), task, params, field);
}

static void test_param_errors(void **state)
{
    for (size_t t = 0; t < N_TASKS; t++) {
        expect_param_error(tasks[t], "{\"train_length\": 0}", "train_length");
        expect_param_error(tasks[t], "{\"train_length\": 101}", "train_length");
        expect_param_error(tasks[t], "{\"train_length\": \"8\"}", "train_length");
        expect_param_error(tasks[t], "{\"lengths\": [0, 3]}", "lengths");
        expect_param_error(tasks[t], "{\"lengths\": [5, 3]}", "lengths");
        expect_param_error(tasks[t], "{\"lengths\": [1, 201]}", "lengths");
        expect_param_error(tasks[t], "{\"lengths\": [1, 2, 3]}", "lengths");
        expect_param_error(tasks[t], "{\"lengths\": \"8\"}", "lengths");
        expect_param_error(tasks[t], "{\"threshold\": 0}", "threshold");
        expect_param_error(tasks[t], "{\"threshold\": 1.5}", "threshold");
        /* add's params do not apply here */
        expect_param_error(tasks[t], "{\"digits\": [1, 3]}", "digits");
        expect_param_error(tasks[t], "{\"format\": \"plain\"}", "format");
        expect_param_error(tasks[t], "[1]", "");
    }
    /* a train_length of 100 sweeps to 200, the most there is */
    json_t *n = norm("parity", "{\"train_length\": 100}");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(n, "lengths"), 1)), 200);
    json_decref(n);
    /* prepare refuses params that were not normalised properly */
    ps_run_t run;
    json_t *bad = pb_test_json("{\"lengths\": [0, 3]}");
    assert_int_equal(ps_run_open(&run, arith(), "sum", bad, 2, 1), PB_EINVAL);
    assert_null(run.state);
    json_decref(bad);
}

/* ---- rendering ---- */

static void expect_render(const char *task, const int *v, size_t n, const char *prompt,
                          const char *reference)
{
    char *pr = NULL, *rf = NULL;
    int rc = ps__lg_render(task, v, n, &pr, &rf);
    if (rc)
        fail_msg("render %s: rc %d", task, rc);
    assert_string_equal(pr, prompt);
    assert_string_equal(rf, reference);
    free(pr);
    free(rf);
}

static void expect_render_error(const char *task, const int *v, size_t n)
{
    char *pr = (char *)"x", *rf = (char *)"x";
    assert_int_equal(ps__lg_render(task, v, n, &pr, &rf), PB_EINVAL);
    assert_null(pr);
    assert_null(rf);
}

static void test_render(void **state)
{
    /* poly: x, then (coefficient, degree) per term */
    static const int poly[] = {-2, 3, 2, -1, 0, 2, 3};
    expect_render("poly", poly, 7, "Evaluate at x=-2: 3*x^2-1*x^0+2*x^3\nAnswer:", "-5");
    static const int poly1[] = {2, 0, 3};
    expect_render("poly", poly1, 3, "Evaluate at x=2: 0*x^3\nAnswer:", "0");
    static const int poly2[] = {2, -3, 3, 3, 1, 0, 0};
    expect_render("poly", poly2, 7, "Evaluate at x=2: -3*x^3+3*x^1+0*x^0\nAnswer:", "-18");
    static const int poly3[] = {1, 2, 0, 3, 3};
    expect_render("poly", poly3, 5, "Evaluate at x=1: 2*x^0+3*x^3\nAnswer:", "5");

    static const int digits[] = {3, 1, 4, 1, 5, 0};
    expect_render("sort_single", digits, 6, "Sort ascending: 3 1 4 1 5 0\nAnswer:",
                  "0 1 1 3 4 5");
    static const int multi[] = {314, 15, 9265, 15};
    expect_render("sort_multi", multi, 4, "Sort ascending: 314, 15, 9265, 15\nAnswer:",
                  "15, 15, 314, 9265");
    static const int ones[] = {3, 1, 4, 9, 9};
    expect_render("sum", ones, 5, "Sum: 3 1 4 9 9\nAnswer:", "26");
    expect_render("sum", ones, 1, "Sum: 3\nAnswer:", "3");
    static const int bits[] = {1, 0, 1, 1};
    expect_render("parity", bits, 4, "Parity (number of 1s mod 2): 1 0 1 1\nAnswer:", "1");
    expect_render("parity", bits, 3, "Parity (number of 1s mod 2): 1 0 1\nAnswer:", "0");
    static const int letters[] = {2, 0, 1, 25};
    expect_render("copy", letters, 4, "Copy: c a b z\nAnswer:", "c a b z");
    expect_render("reverse", letters, 4, "Reverse: c a b z\nAnswer:", "z b a c");
    expect_render("reverse", letters, 1, "Reverse: c\nAnswer:", "c");

    /* values outside the task's range, wrong shapes, unknown tasks */
    static const int bad_x[] = {3, 1, 1};
    expect_render_error("poly", bad_x, 3);
    static const int bad_c[] = {1, 4, 1};
    expect_render_error("poly", bad_c, 3);
    static const int bad_d[] = {1, 1, 4};
    expect_render_error("poly", bad_d, 3);
    expect_render_error("poly", poly, 6); /* a term without its degree */
    expect_render_error("poly", poly, 1); /* no terms */
    static const int ten[] = {10};
    expect_render_error("sort_single", ten, 1);
    static const int nine[] = {9};
    expect_render_error("sort_multi", nine, 1);
    static const int zero[] = {0};
    expect_render_error("sum", zero, 1);
    static const int two[] = {2};
    expect_render_error("parity", two, 1);
    static const int z1[] = {26};
    expect_render_error("copy", z1, 1);
    static const int neg[] = {-1};
    expect_render_error("reverse", neg, 1);
    expect_render_error("copy", letters, 0);
    expect_render_error("add", letters, 2);
    expect_render_error(NULL, letters, 2);
}

/* ---- generation ---- */

static void same_item(const ps_item_t *a, const ps_item_t *b)
{
    assert_string_equal(a->prompt, b->prompt);
    assert_string_equal(a->reference, b->reference);
    assert_true(json_equal(a->meta, b->meta));
    assert_int_equal(a->length, b->length);
    assert_true(a->prompt_hash == b->prompt_hash);
    assert_int_equal(a->idx, b->idx);
    assert_int_equal(a->bucket, b->bucket);
}

static void test_determinism(void **state)
{
    for (size_t t = 0; t < N_TASKS; t++) {
        ps_run_t run, again;
        ps_item_t fwd[12], it;
        int64_t bucket = train_default(tasks[t]) + 3;
        open_run(&run, tasks[t], NULL, bucket, 4242);
        for (uint64_t i = 0; i < 12; i++)
            gen(&run, i, &fwd[i]);
        /* the same items from a run opened separately, generated backwards */
        open_run(&again, tasks[t], NULL, bucket, 4242);
        for (int i = 11; i >= 0; i--) {
            gen(&again, (uint64_t)i, &it);
            same_item(&it, &fwd[i]);
            assert_int_equal(it.length, (int64_t)strlen(it.prompt));
            assert_true(it.prompt_hash == pb_hash_str(PB_HASH_INIT, it.prompt));
            ps_item_clear(&it);
        }
        ps_run_close(&again);
        /* items differ within a run, and another seed gives other items */
        int distinct = 0, same = 0;
        for (int i = 1; i < 12; i++)
            distinct += strcmp(fwd[i].prompt, fwd[0].prompt) != 0;
        assert_true(distinct >= 10);
        open_run(&again, tasks[t], NULL, bucket, 4243);
        for (uint64_t i = 0; i < 12; i++) {
            gen(&again, i, &it);
            same += strcmp(it.prompt, fwd[i].prompt) == 0;
            ps_item_clear(&it);
        }
        assert_true(same <= 1);
        ps_run_close(&again);
        for (int i = 0; i < 12; i++)
            ps_item_clear(&fwd[i]);
        ps_run_close(&run);
    }
}

/* The input text of a prompt: between the first ": " and "\nAnswer:". */
static char *input_of(const char *prompt)
{
    const char *s = strstr(prompt, ": ");
    assert_non_null(s);
    s += 2;
    size_t n = strlen(s);
    assert_true(n >= 8 && strcmp(s + n - 8, "\nAnswer:") == 0);
    char *in = strndup(s, n - 8);
    assert_non_null(in);
    assert_null(strchr(in, '\n'));
    return in;
}

/* Count elements of an input text split by sep; every element must be a
 * run of digits (digits=1) or one lowercase letter. */
static int count_elements(const char *in, const char *sep, int digits)
{
    int n = 0;
    size_t ls = strlen(sep);
    for (const char *p = in;; n++) {
        const char *e = strstr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        assert_true(len >= 1);
        for (size_t i = 0; i < len; i++) {
            if (digits)
                assert_true(p[i] >= '0' && p[i] <= '9');
            else
                assert_true(len == 1 && p[i] >= 'a' && p[i] <= 'z');
        }
        if (e == NULL)
            return n + 1;
        p = e + ls;
    }
}

/* Element count of a generated prompt, read from its text alone. */
static int prompt_length(const char *task, const char *prompt)
{
    char *in = input_of(prompt);
    int n = 0;
    if (strcmp(task, "poly") == 0) {
        for (const char *p = in; (p = strstr(p, "*x^")) != NULL; p += 3)
            n++;
    } else if (strcmp(task, "sort_multi") == 0) {
        n = count_elements(in, ", ", 1);
    } else {
        int letters = strcmp(task, "copy") == 0 || strcmp(task, "reverse") == 0;
        n = count_elements(in, " ", !letters);
        if (!letters)
            assert_int_equal(strlen(in), 2 * (size_t)n - 1); /* single digits */
    }
    free(in);
    return n;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The answer to an item computed here from its meta values, written the
 * way the task description says. */
static void solve(const char *task, const int *v, size_t nv, char *out, size_t cap)
{
    int tmp[512];
    long long acc = 0;
    size_t k = 0;
    out[0] = '\0';
    if (strcmp(task, "poly") == 0) {
        for (size_t i = 1; i < nv; i += 2)
            acc += (long long)v[i] * (long long)llround(pow(v[0], v[i + 1]));
        snprintf(out, cap, "%lld", acc);
        return;
    }
    if (strcmp(task, "sum") == 0 || strcmp(task, "parity") == 0) {
        for (size_t i = 0; i < nv; i++)
            acc += v[i];
        snprintf(out, cap, "%lld", strcmp(task, "sum") == 0 ? acc : acc & 1);
        return;
    }
    memcpy(tmp, v, nv * sizeof *v);
    if (strncmp(task, "sort", 4) == 0)
        qsort(tmp, nv, sizeof *tmp, cmp_int);
    for (size_t i = 0; i < nv; i++) {
        int x = strcmp(task, "reverse") == 0 ? tmp[nv - 1 - i] : tmp[i];
        const char *sep = i == 0 ? "" : strcmp(task, "sort_multi") == 0 ? ", " : " ";
        if (strcmp(task, "copy") == 0 || strcmp(task, "reverse") == 0)
            k += (size_t)snprintf(out + k, cap - k, "%s%c", sep, 'a' + x);
        else
            k += (size_t)snprintf(out + k, cap - k, "%s%d", sep, x);
    }
}

/* Every task at short, train-length and out-of-distribution buckets: the
 * prompt holds exactly `bucket` elements, the reference is the answer the
 * test computes itself, and the meta values re-render the same item. */
static void test_bucket_lengths_and_answers(void **state)
{
    for (size_t t = 0; t < N_TASKS; t++) {
        int tr = train_default(tasks[t]);
        const int64_t buckets[] = {1, 2, tr, tr + 1, 2 * tr};
        for (size_t b = 0; b < PB_ARRAY_LEN(buckets); b++) {
            ps_run_t run;
            open_run(&run, tasks[t], NULL, buckets[b], 17);
            for (uint64_t i = 0; i < 25; i++) {
                ps_item_t it;
                gen(&run, i, &it);
                assert_int_equal(it.bucket, buckets[b]);
                assert_int_equal(prompt_length(tasks[t], it.prompt), buckets[b]);
                assert_int_equal(json_integer_value(json_object_get(it.meta, "n")), buckets[b]);
                json_t *vals = json_object_get(it.meta, "values");
                size_t nv = json_array_size(vals);
                assert_int_equal(nv, strcmp(tasks[t], "poly") == 0 ? 2 * (size_t)buckets[b] + 1
                                                                   : (size_t)buckets[b]);
                int v[512];
                for (size_t k = 0; k < nv; k++)
                    v[k] = (int)json_integer_value(json_array_get(vals, k));
                char want[4096];
                solve(tasks[t], v, nv, want, sizeof want);
                assert_string_equal(it.reference, want);
                char *pr, *rf;
                assert_int_equal(ps__lg_render(tasks[t], v, nv, &pr, &rf), 0);
                assert_string_equal(pr, it.prompt);
                assert_string_equal(rf, it.reference);
                free(pr);
                free(rf);
                ps_item_clear(&it);
            }
            ps_run_close(&run);
        }
        /* a bucket outside the params is refused */
        ps_run_t run;
        ps_item_t it;
        open_run(&run, tasks[t], "{\"lengths\": [2, 4]}", 5, 1);
        assert_int_equal(run.suite->generate(&run, 0, &it), PB_EINVAL);
        assert_null(it.prompt);
        ps_run_close(&run);
    }
}

/* Values cover their whole range: x and degrees in poly, digits, bits,
 * letters, and multi-digit numbers of 2 to 4 digits. */
static void test_value_ranges(void **state)
{
    static const struct {
        const char *task;
        int lo, hi, stride; /* stride 2: poly coefficients; x checked apart */
    } cases[] = {{"poly", -3, 3, 2},  {"sort_single", 0, 9, 1}, {"sum", 1, 9, 1},
                 {"parity", 0, 1, 1}, {"copy", 0, 25, 1},       {"reverse", 0, 25, 1}};
    for (size_t c = 0; c < PB_ARRAY_LEN(cases); c++) {
        int seen[64] = {0}, xs[5] = {0};
        ps_run_t run;
        open_run(&run, cases[c].task, NULL, 8, 3);
        for (uint64_t i = 0; i < 60; i++) {
            ps_item_t it;
            gen(&run, i, &it);
            json_t *vals = json_object_get(it.meta, "values");
            size_t start = cases[c].stride == 2 ? 1 : 0;
            if (start)
                xs[json_integer_value(json_array_get(vals, 0)) + 2]++;
            for (size_t k = start; k < json_array_size(vals); k += (size_t)cases[c].stride) {
                int x = (int)json_integer_value(json_array_get(vals, k));
                assert_true(x >= cases[c].lo && x <= cases[c].hi);
                seen[x - cases[c].lo]++;
            }
            ps_item_clear(&it);
        }
        for (int x = 0; x <= cases[c].hi - cases[c].lo; x++)
            assert_true(seen[x] > 0);
        for (int x = 0; cases[c].stride == 2 && x < 5; x++)
            assert_true(xs[x] > 0);
        ps_run_close(&run);
    }
    int lens[6] = {0};
    ps_run_t run;
    open_run(&run, "sort_multi", NULL, 16, 3);
    for (uint64_t i = 0; i < 20; i++) {
        ps_item_t it;
        gen(&run, i, &it);
        json_t *vals = json_object_get(it.meta, "values");
        for (size_t k = 0; k < json_array_size(vals); k++) {
            json_int_t x = json_integer_value(json_array_get(vals, k));
            assert_true(x >= 10 && x <= 9999);
            lens[snprintf(NULL, 0, "%lld", (long long)x)]++;
        }
        ps_item_clear(&it);
    }
    assert_true(lens[2] > 0 && lens[3] > 0 && lens[4] > 0);
    ps_run_close(&run);
}

/* ---- scoring and aggregate ---- */

static void test_scoring(void **state)
{
    for (size_t t = 0; t < N_TASKS; t++) {
        ps_run_t run;
        open_run(&run, tasks[t], NULL, 6, 8);
        for (uint64_t i = 0; i < 10; i++) {
            ps_item_t it;
            char buf[1024];
            double s = -1;
            gen(&run, i, &it);
            /* the oracle's answer, and it with whitespace around */
            assert_int_equal(run.suite->score(&run, &it, it.reference, &s, NULL), 0);
            assert_true(s == 1.0);
            snprintf(buf, sizeof buf, "  %s \nbecause", it.reference);
            assert_int_equal(run.suite->score(&run, &it, buf, &s, NULL), 0);
            assert_true(s == 1.0);
            /* the last element changed */
            snprintf(buf, sizeof buf, "%s", it.reference);
            char *last = buf + strlen(buf) - 1;
            if (*last >= 'a' && *last <= 'z')
                *last = *last == 'z' ? 'a' : (char)(*last + 1);
            else
                *last = *last == '9' ? '0' : (char)(*last + 1);
            assert_int_equal(run.suite->score(&run, &it, buf, &s, NULL), 0);
            assert_true(s == 0.0);
            /* no answer is wrong */
            assert_int_equal(run.suite->score(&run, &it, "", &s, NULL), 0);
            assert_true(s == 0.0);
            assert_int_equal(run.suite->score(&run, &it, NULL, &s, NULL), 0);
            assert_true(s == 0.0);
            ps_item_clear(&it);
        }
        ps_run_close(&run);
    }
    /* separators count: a multi-digit list regrouped is wrong */
    assert_true(ps_exact_match("15, 314, 9265", "15, 314, 9265") == 1.0);
    assert_true(ps_exact_match("153, 14, 9265", "15, 314, 9265") == 0.0);
    assert_true(ps_exact_match("1 1 3 4", "1 1 3 4") == 1.0);
}

static json_t *agg(const char *task, const char *params, const ps_bucket_stat_t *st, size_t n)
{
    json_t *p = norm(task, params);
    json_t *a = arith()->aggregate(task, p, st, n);
    json_decref(p);
    assert_non_null(a);
    return a;
}

static double acc_of(const json_t *a, const char *key)
{
    return json_real_value(json_object_get(json_object_get(a, key), "accuracy"));
}

static json_int_t n_of(const json_t *a, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(a, key), "n"));
}

static void test_aggregate(void **state)
{
    /* poly at train_length 8, buckets 1..16, 10 items each: 10/10 up to 8,
     * then 8, 5, 2, 0, ... correct */
    ps_bucket_stat_t st[16];
    for (int i = 0; i < 16; i++) {
        st[i].bucket = i + 1;
        st[i].n = 10;
        st[i].score_sum = i < 8 ? 10 : i == 8 ? 8 : i == 9 ? 5 : i == 10 ? 2 : 0;
    }
    json_t *a = agg("poly", NULL, st, 16);
    assert_int_equal(json_integer_value(json_object_get(a, "train_length")), 8);
    assert_true(acc_of(a, "in_distribution") == 1.0);
    assert_int_equal(n_of(a, "in_distribution"), 80);
    assert_true(fabs(acc_of(a, "out_of_distribution") - 15.0 / 80) < 1e-12);
    assert_int_equal(n_of(a, "out_of_distribution"), 80);
    assert_true(fabs(json_real_value(json_object_get(a, "accuracy")) - 95.0 / 160) < 1e-12);
    assert_int_equal(json_integer_value(json_object_get(a, "n")), 160);
    assert_int_equal(json_integer_value(json_object_get(a, "effective_length")), 8);
    assert_true(json_real_value(json_object_get(a, "threshold")) == 0.9);
    json_decref(a);

    /* a lower threshold moves the effective length; a train_length of 9
     * moves bucket 9 (8/10) into the in-distribution split */
    a = agg("poly", "{\"threshold\": 0.5, \"train_length\": 9}", st, 16);
    assert_int_equal(json_integer_value(json_object_get(a, "effective_length")), 10);
    assert_true(fabs(acc_of(a, "in_distribution") - 88.0 / 90) < 1e-12);
    assert_true(fabs(acc_of(a, "out_of_distribution") - 7.0 / 70) < 1e-12);
    assert_int_equal(n_of(a, "out_of_distribution"), 70);
    json_decref(a);

    /* parity's default train_length is 20: every bucket here is in distribution */
    a = agg("parity", NULL, st, 16);
    assert_int_equal(json_integer_value(json_object_get(a, "train_length")), 20);
    assert_int_equal(n_of(a, "in_distribution"), 160);
    assert_true(json_is_null(json_object_get(json_object_get(a, "out_of_distribution"),
                                             "accuracy")));
    assert_int_equal(n_of(a, "out_of_distribution"), 0);
    json_decref(a);

    /* nothing scored */
    a = agg("copy", NULL, NULL, 0);
    assert_true(json_is_null(json_object_get(a, "accuracy")));
    assert_int_equal(json_integer_value(json_object_get(a, "effective_length")), 0);
    json_decref(a);
}

/* ---- job planning ---- */

static void test_plan(void **state)
{
    json_t *spec = pb_test_json(
        "{\"model\": {\"name\": \"o\", \"backend\": \"oracle\"}, \"runs\": ["
        "{\"suite\": \"arithmetic\", \"task\": \"parity\", \"samples\": 4},"
        "{\"suite\": \"arithmetic\", \"task\": \"sort_multi\","
        " \"params\": {\"train_length\": 3}, \"samples\": 2}], \"shard_size\": 4}");
    ps_plan_t *plan = NULL;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(ps_plan_build(spec, &plan, &err), 0);
    assert_int_equal(plan->n_runs, 2);
    assert_int_equal(plan->runs[0].n_buckets, 40);
    assert_int_equal(plan->runs[1].n_buckets, 6);
    assert_int_equal(plan->items_total, 40 * 4 + 6 * 2);
    json_t *want = pb_test_json("{\"lengths\": [1, 6], \"train_length\": 3, \"threshold\": 0.9}");
    assert_true(json_equal(plan->runs[1].params, want));
    json_decref(want);
    /* a planned run opens and generates an item of its bucket */
    ps_run_t run;
    ps_item_t it;
    const ps_plan_task_t *t = &plan->tasks[plan->n_tasks - 1];
    assert_int_equal(ps_run_open(&run, arith(), plan->runs[t->run].task, plan->runs[t->run].params,
                                 t->bucket, plan->seed),
                     0);
    gen(&run, t->item_lo, &it);
    assert_int_equal(prompt_length("sort_multi", it.prompt), 6);
    ps_item_clear(&it);
    ps_run_close(&run);
    ps_plan_free(plan);
    json_decref(spec);

    /* a bad param is reported with its path */
    spec = pb_test_json("{\"model\": {\"name\": \"o\", \"backend\": \"oracle\"}, \"runs\": ["
                        "{\"suite\": \"arithmetic\", \"task\": \"copy\","
                        " \"params\": {\"train_length\": 0}}]}");
    plan = (ps_plan_t *)&plan;
    assert_int_equal(ps_plan_build(spec, &plan, &err), PB_EINVAL);
    assert_string_equal(err.field, "runs[0].params.train_length");
    assert_null(plan);
    json_decref(spec);
}

int pb_test_lengthgen(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_lists_tasks),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_param_errors),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_bucket_lengths_and_answers),
        cmocka_unit_test(test_value_ranges),
        cmocka_unit_test(test_scoring),
        cmocka_unit_test(test_aggregate),
        cmocka_unit_test(test_plan),
    };
    return cmocka_run_group_tests_name("lengthgen", tests, NULL, NULL);
}
