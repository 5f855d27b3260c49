/* Unit tests for worker/breakdown.c and the runner's aggregate.groups: group
 * values built from hand-made meta, the accumulator and its 4096-group cap,
 * and real tasks of the arithmetic suite (add has da/db meta, parity has not). */
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "common/util.h"
#include "suites/suite.h"
#include "worker/breakdown.h"
#include "worker/runner.h"

#define ORACLE "{\"backend\": \"oracle\"}"
#define RANDOM "{\"backend\": \"random\"}"

/* ---- group values ---- */

static void check_value(const json_t *meta, const char *entry, int want_rc, const char *want)
{
    char out[PB_BREAKDOWN_VALUE_MAX + 1];
    memset(out, 'x', sizeof out);
    int rc = pb_breakdown_value(meta, entry, out, sizeof out);
    if (rc != want_rc)
        fail_msg("entry %s: want %s, got %s", entry, pb_strerror(want_rc), pb_strerror(rc));
    assert_string_equal(out, want ? want : "");
}

static void test_value(void **state)
{
    json_t *meta = pb_test_json("{\"da\": 3, \"db\": 5, \"s\": \"x y\", \"neg\": -7,"
                                " \"big\": 9007199254740993, \"f\": 1.5, \"arr\": [1],"
                                " \"obj\": {}, \"nul\": null, \"t\": true, \"e\": \"\"}");
    check_value(meta, "da", 0, "3");
    check_value(meta, "da,db", 0, "3,5");
    check_value(meta, "db,da", 0, "5,3");
    check_value(meta, "s", 0, "x y");
    check_value(meta, "da,s,neg", 0, "3,x y,-7");
    check_value(meta, "big", 0, "9007199254740993");
    check_value(meta, "e,da", 0, ",3");
    /* missing keys and other JSON types: no group for this item */
    check_value(meta, "depth", PB_ENOTFOUND, NULL);
    check_value(meta, "da,depth", PB_ENOTFOUND, NULL);
    check_value(meta, "depth,da", PB_ENOTFOUND, NULL);
    const char *other[] = {"f", "arr", "obj", "nul", "t", "da,f", ""};
    for (size_t i = 0; i < PB_ARRAY_LEN(other); i++)
        check_value(meta, other[i], PB_ENOTFOUND, NULL);
    check_value(NULL, "da", PB_ENOTFOUND, NULL);
    json_t *arr = pb_test_json("[3, 5]");
    check_value(arr, "da", PB_ENOTFOUND, NULL);
    json_decref(arr);

    /* Embedded NUL: not a C string, so no group rather than a cut value. */
    json_object_set_new(meta, "nulstr", json_stringn("a\0b", 3));
    check_value(meta, "nulstr", PB_ENOTFOUND, NULL);

    /* Sizes: a value of exactly PB_BREAKDOWN_VALUE_MAX bytes fits, one more
     * does not; nor does an entry longer than PB_BREAKDOWN_KEY_MAX. */
    char big[PB_BREAKDOWN_VALUE_MAX + 2];
    memset(big, 'v', sizeof big);
    big[PB_BREAKDOWN_VALUE_MAX] = '\0';
    json_object_set_new(meta, "full", json_string(big));
    check_value(meta, "full", 0, big);
    check_value(meta, "full,da", PB_ETOOBIG, NULL);
    big[PB_BREAKDOWN_VALUE_MAX] = 'v';
    big[PB_BREAKDOWN_VALUE_MAX + 1] = '\0';
    json_object_set_new(meta, "over", json_string(big));
    check_value(meta, "over", PB_ETOOBIG, NULL);
    char out[4];
    assert_int_equal(pb_breakdown_value(meta, "da,db", out, sizeof out), 0); /* "3,5" */
    assert_int_equal(pb_breakdown_value(meta, "da,neg", out, sizeof out), PB_ETOOBIG);
    char key[PB_BREAKDOWN_KEY_MAX + 2];
    memset(key, 'k', sizeof key);
    key[PB_BREAKDOWN_KEY_MAX + 1] = '\0';
    json_object_set_new(meta, key, json_integer(1));
    check_value(meta, key, PB_ETOOBIG, NULL);
    json_decref(meta);
}

/* ---- accumulator ---- */

static void check_group(const json_t *g, const char *entry, const char *value, int64_t n,
                        double score_sum)
{
    assert_int_equal(json_array_size(g), 4);
    assert_string_equal(json_string_value(json_array_get(g, 0)), entry);
    assert_string_equal(json_string_value(json_array_get(g, 1)), value);
    assert_true(json_is_integer(json_array_get(g, 2)));
    assert_int_equal(json_integer_value(json_array_get(g, 2)), n);
    assert_true(json_number_value(json_array_get(g, 3)) == score_sum);
}

static void test_accumulate(void **state)
{
    static const char *const entries[] = {"da,db", "da", "tag", NULL};
    pb_breakdown_t b;
    pb_err_t err = {{0}, {0}};
    pb_breakdown_init(&b, entries);
    json_t *empty = pb_breakdown_json(&b);
    assert_int_equal(json_array_size(empty), 0);
    json_decref(empty);

    const char *metas[] = {
        "{\"da\": 3, \"db\": 5, \"tag\": \"b\"}", "{\"da\": 10, \"db\": 2}",
        "{\"da\": 3, \"db\": 5, \"tag\": \"a\"}", "{\"da\": 2, \"db\": \"x\", \"tag\": 1.5}",
        "{\"db\": 5, \"tag\": \"b\"}",
    };
    const double scores[] = {1, 0.5, 0, 1, 0.25};
    for (size_t i = 0; i < PB_ARRAY_LEN(metas); i++) {
        json_t *m = pb_test_json(metas[i]);
        assert_int_equal(pb_breakdown_add_item(&b, m, scores[i], &err), 0);
        json_decref(m);
    }
    assert_int_equal(pb_breakdown_add_item(&b, NULL, 1, &err), 0); /* no meta: nothing */
    json_t *g = pb_breakdown_json(&b);
    /* sorted by entry, then value, byte order ("10" before "2") */
    assert_int_equal(json_array_size(g), 8);
    check_group(json_array_get(g, 0), "da", "10", 1, 0.5);
    check_group(json_array_get(g, 1), "da", "2", 1, 1);
    check_group(json_array_get(g, 2), "da", "3", 2, 1);
    check_group(json_array_get(g, 3), "da,db", "10,2", 1, 0.5);
    check_group(json_array_get(g, 4), "da,db", "2,x", 1, 1);
    check_group(json_array_get(g, 5), "da,db", "3,5", 2, 1);
    check_group(json_array_get(g, 6), "tag", "a", 1, 0);
    check_group(json_array_get(g, 7), "tag", "b", 2, 1.25);
    json_decref(g);
    pb_breakdown_free(&b);
    assert_int_equal(b.n, 0);

    /* No breakdown in the suite: never a group. */
    pb_breakdown_init(&b, NULL);
    json_t *m = pb_test_json("{\"da\": 1}");
    assert_int_equal(pb_breakdown_add_item(&b, m, 1, &err), 0);
    assert_int_equal(b.n, 0);
    json_decref(m);
    pb_breakdown_free(&b);
}

/* The cap: group 4097 fails the task with a clear message, and nothing of
 * the earlier groups is lost or changed by the refused one. */
static void test_cap(void **state)
{
    pb_breakdown_t b;
    pb_err_t err = {{0}, {0}};
    char v[32];
    pb_breakdown_init(&b, NULL);
    for (int i = 0; i < PB_MAX_GROUPS; i++) {
        snprintf(v, sizeof v, "%d", i);
        assert_int_equal(pb_breakdown_add(&b, "k", v, 1, &err), 0);
    }
    assert_int_equal(b.n, PB_MAX_GROUPS);
    assert_int_equal(pb_breakdown_add(&b, "k", "new", 1, &err), PB_ETOOBIG);
    assert_string_equal(err.msg, "more than 4096 breakdown groups in one task");
    assert_int_equal(pb_breakdown_add(&b, "other", "0", 1, &err), PB_ETOOBIG);
    assert_int_equal(b.n, PB_MAX_GROUPS);
    /* an existing group still counts */
    assert_int_equal(pb_breakdown_add(&b, "k", "17", 0.5, &err), 0);
    json_t *g = pb_breakdown_json(&b);
    assert_int_equal(json_array_size(g), PB_MAX_GROUPS);
    int64_t total = 0;
    for (size_t i = 0; i < json_array_size(g); i++) {
        json_t *e = json_array_get(g, i);
        total += json_integer_value(json_array_get(e, 2));
        if (strcmp(json_string_value(json_array_get(e, 1)), "17") == 0)
            check_group(e, "k", "17", 2, 1.5);
        if (i > 0)
            assert_true(strcmp(json_string_value(json_array_get(json_array_get(g, i - 1), 1)),
                               json_string_value(json_array_get(e, 1))) < 0);
    }
    assert_int_equal(total, PB_MAX_GROUPS + 1);
    json_decref(g);
    pb_breakdown_free(&b);
}

/* ---- the runner's aggregate.groups ---- */

static json_t *run(const char *task, const char *params, int64_t bucket, int64_t n,
                   const char *model, json_t **items)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"suite\": \"arithmetic\", \"task\": \"%s\", \"params\": %s, \"bucket\": %lld,"
             " \"item_lo\": 0, \"item_hi\": %lld, \"seed\": 9, \"model\": %s}",
             task, params, (long long)bucket, (long long)n, model);
    json_t *t = pb_test_json(text), *res = NULL;
    pb_buf_t buf;
    pb_err_t err = {{0}, {0}};
    pb_buf_init(&buf, 0);
    int rc = pb_runner_run(t, NULL, NULL, NULL, &res, &buf, &err);
    if (rc)
        fail_msg("run %s: %s (%s)", task, pb_strerror(rc), err.msg);
    *items = json_loadb(buf.data, buf.len, 0, NULL);
    assert_non_null(*items);
    pb_buf_free(&buf);
    json_decref(t);
    return res;
}

/* The one reserved "@unit" group: every item, under the length unit. */
static void check_unit(const json_t *res, const char *unit)
{
    const json_t *agg = json_object_get(res, "aggregate");
    const json_t *groups = json_object_get(agg, "groups");
    size_t found = 0;
    for (size_t i = 0; i < json_array_size(groups); i++) {
        const json_t *g = json_array_get(groups, i);
        if (strcmp(json_string_value(json_array_get(g, 0)), PB_GROUP_UNIT) != 0)
            continue;
        found++;
        assert_string_equal(json_string_value(json_array_get(g, 1)), unit);
        assert_int_equal(json_integer_value(json_array_get(g, 2)),
                         json_integer_value(json_object_get(agg, "n")));
    }
    assert_int_equal(found, json_integer_value(json_object_get(agg, "n")) > 0);
}

/* Groups must be what the items themselves say: recount from their meta. */
static void check_groups(const json_t *res, const json_t *items)
{
    const json_t *agg = json_object_get(res, "aggregate");
    const json_t *groups = json_object_get(agg, "groups");
    int64_t n_sum = 0;
    double s_sum = 0;
    check_unit(res, "chars");
    assert_true(json_array_size(groups) > 2);
    for (size_t i = 0; i < json_array_size(groups); i++) {
        const json_t *g = json_array_get(groups, i);
        const char *value = json_string_value(json_array_get(g, 1));
        if (json_string_value(json_array_get(g, 0))[0] == '@')
            continue; /* reserved: checked above */
        assert_string_equal(json_string_value(json_array_get(g, 0)), "da,db");
        int da, db, used = 0;
        assert_int_equal(sscanf(value, "%d,%d%n", &da, &db, &used), 2);
        assert_int_equal(used, strlen(value));
        const json_t *prev = json_array_get(groups, i - 1);
        if (i > 0 && json_string_value(json_array_get(prev, 0))[0] != '@')
            assert_true(strcmp(json_string_value(json_array_get(prev, 1)), value) < 0);
        int64_t n = 0;
        double s = 0;
        for (size_t k = 0; k < json_array_size(items); k++) {
            const json_t *it = json_array_get(items, k);
            json_t *meta = json_loads(json_string_value(json_array_get(it, 7)), 0, NULL);
            if (json_integer_value(json_object_get(meta, "da")) == da &&
                json_integer_value(json_object_get(meta, "db")) == db) {
                n++;
                s += json_number_value(json_array_get(it, 4));
            }
            json_decref(meta);
        }
        assert_int_equal(json_integer_value(json_array_get(g, 2)), n);
        assert_true(json_number_value(json_array_get(g, 3)) == s);
        n_sum += n;
        s_sum += s;
    }
    assert_int_equal(n_sum, json_integer_value(json_object_get(agg, "n")));
    assert_true(s_sum == json_number_value(json_object_get(agg, "score_sum")));
}

static void test_runner_groups(void **state)
{
    json_t *items = NULL, *items2 = NULL;
    json_t *res = run("add", "{\"digits\": [1, 4]}", 3, 150, ORACLE, &items);
    check_groups(res, items);
    const json_t *groups = json_object_get(json_object_get(res, "aggregate"), "groups");
    for (size_t i = 0; i < json_array_size(groups); i++) { /* oracle: every item right */
        const json_t *g = json_array_get(groups, i);
        if (json_string_value(json_array_get(g, 0))[0] != '@')
            assert_true(json_number_value(json_array_get(g, 3)) ==
                    (double)json_integer_value(json_array_get(g, 2)));
    }
    json_decref(items);

    /* random: partial scores, still the same sums; and a rerun is identical. */
    json_t *r1 = run("add", "{\"digits\": [1, 2]}", 2, 400, RANDOM, &items);
    json_t *r2 = run("add", "{\"digits\": [1, 2]}", 2, 400, RANDOM, &items2);
    check_groups(r1, items);
    double s = json_number_value(json_object_get(json_object_get(r1, "aggregate"), "score_sum"));
    assert_true(s > 0 && s < 400); /* seed 9: a few right by chance */
    assert_true(json_equal(json_object_get(json_object_get(r1, "aggregate"), "groups"),
                           json_object_get(json_object_get(r2, "aggregate"), "groups")));
    json_decref(items);
    json_decref(items2);
    json_decref(r1);
    json_decref(r2);
    json_decref(res);
}

/* parity items carry {"n", "values"}: no da/db, so no suite groups, only
 * the reserved "@unit" one. */
static void test_runner_no_groups(void **state)
{
    const ps_suite_t *suite = ps_suite_find("arithmetic");
    json_t *params = NULL;
    int64_t *b = NULL;
    size_t nb = 0;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(suite->normalize("parity", NULL, &params, &err), 0);
    assert_int_equal(suite->buckets("parity", params, &b, &nb), 0);
    assert_true(nb > 0);
    json_t *items = NULL;
    json_t *res = run("parity", "{}", b[0], 30, ORACLE, &items);
    const json_t *agg = json_object_get(res, "aggregate");
    assert_int_equal(json_integer_value(json_object_get(agg, "n")), 30);
    assert_int_equal(json_array_size(json_object_get(agg, "groups")), 1);
    check_unit(res, "chars");
    free(b);
    json_decref(params);
    json_decref(items);
    json_decref(res);

    /* An empty task: nothing matched, no groups at all. */
    res = run("add", "{}", 1, 0, ORACLE, &items);
    assert_null(json_object_get(json_object_get(res, "aggregate"), "groups"));
    json_decref(items);
    json_decref(res);
}

/* Under a model with a tokenizer the unit is tokens and every item's meta
 * "length" is its prompt's token count; without one, its characters. */
static void test_runner_length_unit(void **state)
{
    json_t *items = NULL;
    json_t *res = run("add", "{\"digits\": 3}", 3, 20,
                      "{\"backend\": \"oracle\", \"tokenizer\": \"words\"}", &items);
    check_unit(res, "tokens");
    for (size_t k = 0; k < json_array_size(items); k++) {
        json_t *meta = json_loads(json_string_value(json_array_get(json_array_get(items, k), 7)),
                                  0, NULL);
        /* "123 + 456 =" style prompts: at least a token per operand, fewer than chars */
        int64_t len = json_integer_value(json_object_get(meta, "length"));
        assert_true(len >= 3 && len < 12);
        json_decref(meta);
    }
    json_decref(items);
    json_decref(res);
    res = run("add", "{\"digits\": 3}", 3, 5, ORACLE, &items);
    check_unit(res, "chars");
    json_t *meta = json_loads(json_string_value(json_array_get(json_array_get(items, 0), 7)), 0,
                              NULL);
    assert_true(json_integer_value(json_object_get(meta, "length")) >= 7);
    json_decref(meta);
    json_decref(items);
    json_decref(res);

    /* An unknown tokenizer is the task's fault, named. */
    json_t *t = pb_test_json("{\"suite\": \"arithmetic\", \"task\": \"add\", \"bucket\": 1, "
                             "\"item_lo\": 0, \"item_hi\": 2, \"seed\": 1, \"model\": "
                             "{\"backend\": \"oracle\", \"tokenizer\": \"bpe\"}}");
    pb_buf_t buf;
    pb_err_t err = {{0}, {0}};
    pb_buf_init(&buf, 0);
    assert_int_equal(pb_runner_run(t, NULL, NULL, NULL, &res, &buf, &err), PB_EINVAL);
    assert_string_equal(err.field, "model.tokenizer");
    pb_buf_free(&buf);
    json_decref(t);
}

int pb_test_breakdown(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value),         cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_cap),           cmocka_unit_test(test_runner_groups),
        cmocka_unit_test(test_runner_no_groups), cmocka_unit_test(test_runner_length_unit),
    };
    return cmocka_run_group_tests_name("breakdown", tests, NULL, NULL);
}
