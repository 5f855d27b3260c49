/* Unit tests for suites/: the registry and run keys, the exact-match scorer,
 * the arithmetic suite (determinism, formats, big-number correctness,
 * balanced bins, aggregates, parameter errors) and job-spec planning. */
#include "tests/unit/unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites/jobspec.h"
#include "suites/suite.h"
#include "suites/suite_int.h"

/* ---- helpers ---- */


static json_t *norm_params(const char *task, const char *text)
{
    const ps_suite_t *s = ps_suite_find("arithmetic");
    json_t *in = text ? pb_test_json(text) : NULL;
    json_t *out = NULL;
    pb_err_t err = {{0}, {0}};
    int rc = s->normalize(task, in, &out, &err);
    json_decref(in);
    if (rc)
        fail_msg("normalize %s: %s", text, err.msg);
    return out;
}

/* Open an arithmetic run for task/params text/bucket/seed. */
static void open_run(ps_run_t *run, const char *task, const char *params, int64_t bucket,
                     uint64_t seed)
{
    json_t *p = norm_params(task, params);
    assert_int_equal(ps_run_open(run, ps_suite_find("arithmetic"), task, p, bucket, seed), 0);
    json_decref(p);
}

static void gen(const ps_run_t *run, uint64_t idx, ps_item_t *it)
{
    assert_int_equal(run->suite->generate(run, idx, it), 0);
    assert_non_null(it->prompt);
    assert_non_null(it->reference);
}

static const char *meta_str(const ps_item_t *it, const char *key)
{
    const char *s = json_string_value(json_object_get(it->meta, key));
    assert_non_null(s);
    return s;
}

static int meta_int(const ps_item_t *it, const char *key)
{
    json_t *v = json_object_get(it->meta, key);
    assert_true(json_is_integer(v));
    return (int)json_integer_value(v);
}

/* Decimal string -> __int128 (at most 38 digits). */
static __int128 to_i128(const char *s)
{
    __int128 v = 0;
    for (; *s; s++)
        v = v * 10 + (*s - '0');
    return v;
}

static void i128_str(__int128 v, char *out)
{
    char tmp[64];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v > 0);
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

static uint64_t mod_of(const char *s, uint64_t m)
{
    uint64_t r = 0;
    for (; *s; s++)
        r = (r * 10 + (uint64_t)(*s - '0')) % m;
    return r;
}

/* ---- registry ---- */

static void test_registry(void **state)
{
    const ps_suite_t *s = ps_suite_find("arithmetic");
    assert_non_null(s);
    assert_null(ps_suite_find("nope"));
    assert_null(ps_suite_find(NULL));
    assert_true(ps_suite_count() >= 1);
    assert_ptr_equal(ps_suite_at(0), s);
    assert_null(ps_suite_at(ps_suite_count()));
    assert_string_equal(s->bucket_unit, "digits");
    assert_int_equal(s->version, 1);
    assert_non_null(ps_suite_task(s, "add"));
    assert_non_null(ps_suite_task(s, "mul"));
    assert_null(ps_suite_task(s, "div"));

    json_t *reg = ps_registry_json();
    assert_non_null(reg);
    json_t *a = json_array_get(json_object_get(reg, "suites"), 0);
    assert_string_equal(json_string_value(json_object_get(a, "name")), "arithmetic");
    json_t *t0 = json_array_get(json_object_get(a, "tasks"), 0);
    assert_string_equal(json_string_value(json_object_get(t0, "name")), "add");
    json_t *dflt = json_object_get(json_object_get(json_object_get(t0, "params"), "digits"),
                                   "default");
    json_t *want = pb_test_json("[1, 8]");
    assert_true(json_equal(dflt, want));
    json_decref(want);
    json_t *fmt = json_object_get(json_object_get(t0, "params"), "format");
    assert_string_equal(json_string_value(json_object_get(fmt, "default")), "plain");
    json_decref(reg);
}

static void test_run_key(void **state)
{
    const ps_suite_t *s = ps_suite_find("arithmetic");
    ps_run_t r1, r2;
    /* the key must not depend on key order in params */
    json_t *p1 = pb_test_json("{\"digits\": [1, 8], \"format\": \"plain\", \"extra_spaces\": 0, "
                       "\"threshold\": 0.9, \"train_digits\": 0}");
    json_t *p2 = pb_test_json("{\"train_digits\": 0, \"threshold\": 0.9, \"extra_spaces\": 0, "
                       "\"format\": \"plain\", \"digits\": [1, 8]}");
    assert_int_equal(ps_run_open(&r1, s, "add", p1, 3, 7), 0);
    assert_int_equal(ps_run_open(&r2, s, "add", p2, 3, 7), 0);
    assert_true(r1.key == r2.key);
    assert_string_equal(r1.task, "add");
    ps_run_close(&r2);
    /* each input of the key changes it */
    assert_int_equal(ps_run_open(&r2, s, "mul", p1, 3, 7), 0);
    assert_true(r1.key != r2.key);
    ps_run_close(&r2);
    assert_int_equal(ps_run_open(&r2, s, "add", p1, 4, 7), 0);
    assert_true(r1.key != r2.key);
    ps_run_close(&r2);
    assert_int_equal(ps_run_open(&r2, s, "add", p1, 3, 8), 0);
    assert_true(r1.key != r2.key);
    ps_run_close(&r2);
    ps_run_close(&r1);

    /* unknown task: an error and a cleared run */
    assert_int_equal(ps_run_open(&r2, s, "div", p1, 3, 7), PB_EINVAL);
    assert_null(r2.params);
    assert_null(r2.suite);
    /* prepare rejects params that were not normalised properly */
    json_t *bad = pb_test_json("{\"digits\": [0, 3]}");
    assert_int_equal(ps_run_open(&r2, s, "add", bad, 3, 7), PB_EINVAL);
    assert_null(r2.state);
    json_decref(bad);
    json_decref(p1);
    json_decref(p2);
}

/* ---- scorer ---- */

static void test_exact_match(void **state)
{
    assert_true(ps_exact_match("579", "579") == 1.0);
    assert_true(ps_exact_match("  579  ", "579") == 1.0);
    assert_true(ps_exact_match("\n\n 579\r\nsome explanation 12", "579") == 1.0);
    assert_true(ps_exact_match("5 7 9", "579") == 1.0);
    assert_true(ps_exact_match("579", "5 7 9") == 1.0);
    assert_true(ps_exact_match("5\t7 9\n", "5 7 9") == 1.0);
    assert_true(ps_exact_match("578", "579") == 0.0);
    assert_true(ps_exact_match("57", "579") == 0.0);
    assert_true(ps_exact_match("5790", "579") == 0.0);
    assert_true(ps_exact_match("57\n9", "579") == 0.0); /* only the first line counts */
    assert_true(ps_exact_match("", "579") == 0.0);
    assert_true(ps_exact_match("   \n  ", "579") == 0.0);
    assert_true(ps_exact_match(NULL, "579") == 0.0);
    assert_true(ps_exact_match("579", NULL) == 0.0);
}

/* ---- arithmetic params ---- */

static void test_normalize_defaults(void **state)
{
    json_t *n = norm_params("add", NULL);
    json_t *want = pb_test_json("{\"digits\": [1, 8], \"format\": \"plain\", \"extra_spaces\": 0, "
                         "\"threshold\": 0.9, \"train_digits\": 0}");
    assert_true(json_equal(n, want));
    json_decref(n);
    json_decref(want);

    n = norm_params("mul", "{\"digits\": 5, \"format\": \"padded\"}");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(n, "digits"), 0)), 5);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(n, "digits"), 1)), 5);
    assert_int_equal(json_integer_value(json_object_get(n, "width")), 5);
    /* normalising a normalised object changes nothing */
    char *text = json_dumps(n, JSON_COMPACT);
    json_t *again = norm_params("mul", text);
    assert_true(json_equal(n, again));
    free(text);
    json_decref(again);
    json_decref(n);

    n = norm_params("add", "{\"digits\": [2.0, 4], \"format\": \"spaced\", "
                           "\"extra_spaces\": 3, \"threshold\": 1, \"train_digits\": 3}");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(n, "digits"), 0)), 2);
    assert_int_equal(json_integer_value(json_object_get(n, "extra_spaces")), 3);
    assert_null(json_object_get(n, "width"));
    json_decref(n);
}

static void expect_param_error(const char *params, const char *field)
{
    pb_test_param_error(ps_suite_find("arithmetic"), "add", params, field);
}

static void test_normalize_errors(void **state)
{
    expect_param_error("{\"digits\": [0, 3]}", "digits");
    expect_param_error("{\"digits\": [5, 3]}", "digits");
    expect_param_error("{\"digits\": [1, 101]}", "digits");
    expect_param_error("{\"digits\": [1, 2, 3]}", "digits");
    expect_param_error("{\"digits\": \"8\"}", "digits");
    expect_param_error("{\"digits\": [1.5, 3]}", "digits");
    expect_param_error("{\"format\": \"hex\"}", "format");
    expect_param_error("{\"format\": 3}", "format");
    expect_param_error("{\"format\": \"padded\", \"width\": 7}", "width");
    expect_param_error("{\"format\": \"padded\", \"width\": 201}", "width");
    expect_param_error("{\"format\": \"plain\", \"width\": 10}", "width");
    expect_param_error("{\"format\": \"spaced\", \"extra_spaces\": 9}", "extra_spaces");
    expect_param_error("{\"format\": \"plain\", \"extra_spaces\": 2}", "extra_spaces");
    expect_param_error("{\"threshold\": 0}", "threshold");
    expect_param_error("{\"threshold\": 1.5}", "threshold");
    expect_param_error("{\"threshold\": \"high\"}", "threshold");
    expect_param_error("{\"train_digits\": -1}", "train_digits");
    expect_param_error("{\"digit\": [1, 3]}", "digit");
    expect_param_error("[1, 3]", "");
}

/* ---- arithmetic generation ---- */

static void test_determinism(void **state)
{
    ps_run_t run, fresh;
    ps_item_t seq[20], alone;
    open_run(&run, "mul", "{\"digits\": [1, 12]}", 9, 1234);
    for (int i = 0; i < 20; i++)
        gen(&run, (uint64_t)i, &seq[i]);
    /* item 7 regenerated alone, by a run opened separately */
    open_run(&fresh, "mul", "{\"digits\": [1, 12]}", 9, 1234);
    gen(&fresh, 7, &alone);
    assert_string_equal(alone.prompt, seq[7].prompt);
    assert_string_equal(alone.reference, seq[7].reference);
    assert_true(json_equal(alone.meta, seq[7].meta));
    assert_int_equal(alone.length, seq[7].length);
    assert_true(alone.prompt_hash == seq[7].prompt_hash);
    assert_int_equal(alone.idx, 7);
    assert_int_equal(alone.bucket, 9);
    assert_int_equal(alone.length, (int64_t)strlen(alone.prompt));
    assert_true(alone.prompt_hash == pb_hash_str(PB_HASH_INIT, alone.prompt));
    /* items within a run differ from each other */
    int distinct = 0;
    for (int i = 1; i < 20; i++)
        distinct += strcmp(seq[i].prompt, seq[0].prompt) != 0;
    assert_int_equal(distinct, 19);
    ps_item_clear(&alone);
    ps_run_close(&fresh);

    /* another seed gives other items */
    open_run(&fresh, "mul", "{\"digits\": [1, 12]}", 9, 1235);
    int same = 0;
    for (int i = 0; i < 20; i++) {
        gen(&fresh, (uint64_t)i, &alone);
        same += strcmp(alone.prompt, seq[i].prompt) == 0;
        ps_item_clear(&alone);
    }
    assert_int_equal(same, 0);
    ps_run_close(&fresh);
    for (int i = 0; i < 20; i++)
        ps_item_clear(&seq[i]);
    assert_null(seq[0].prompt); /* cleared */
    ps_run_close(&run);
}

/* A golden item: a change here changes every stored result, so it must be
 * deliberate (and bump the suite version). */
static void test_golden(void **state)
{
    ps_run_t run;
    ps_item_t it;
    open_run(&run, "add", NULL, 3, 42);
    gen(&run, 0, &it);
    /* check the arithmetic from the operands, then pin the text */
    char sum[32];
    i128_str(to_i128(meta_str(&it, "a")) + to_i128(meta_str(&it, "b")), sum);
    assert_string_equal(it.reference, sum);
    char want[64];
    snprintf(want, sizeof want, "%s+%s=", meta_str(&it, "a"), meta_str(&it, "b"));
    assert_string_equal(it.prompt, want);
    assert_true(run.key == 0x9f0377dd32870c9eULL);
    assert_string_equal(it.prompt, "784+375=");
    assert_string_equal(it.reference, "1159");
    ps_item_clear(&it);
    ps_run_close(&run);
}

static void expect_render(const char *task, const char *params, const char *a, const char *b,
                          const char *prompt, const char *reference)
{
    json_t *p = norm_params(task, params);
    char *pr = NULL, *rf = NULL;
    pb_rng_t rng;
    pb_rng_seed(&rng, 1, 2);
    assert_int_equal(ps__arith_render(task, p, a, b, &rng, &pr, &rf), 0);
    assert_string_equal(pr, prompt);
    assert_string_equal(rf, reference);
    free(pr);
    free(rf);
    json_decref(p);
}

static void test_formats(void **state)
{
    expect_render("add", NULL, "123", "456", "123+456=", "579");
    expect_render("add", NULL, "95", "7", "95+7=", "102");
    expect_render("mul", NULL, "12", "34", "12*34=", "408");
    expect_render("mul", NULL, "0", "987", "0*987=", "0");
    expect_render("add", "{\"format\": \"reversed\"}", "123", "456", "321+654=", "975");
    expect_render("add", "{\"format\": \"reversed\"}", "95", "7", "59+7=", "201");
    expect_render("mul", "{\"format\": \"reversed\"}", "12", "34", "21*43=", "804");
    expect_render("add", "{\"digits\": [1, 3], \"format\": \"padded\", \"width\": 4}", "95", "7",
                  "0095+0007=", "00102");
    expect_render("add", "{\"digits\": [1, 3], \"format\": \"padded\"}", "95", "7", "095+007=",
                  "0102");
    expect_render("mul", "{\"digits\": [1, 3], \"format\": \"padded\"}", "12", "34", "012*034=",
                  "000408");
    expect_render("add", "{\"format\": \"spaced\"}", "123", "456", "1 2 3 + 4 5 6 =", "5 7 9");
    expect_render("add", "{\"format\": \"spaced\"}", "95", "7", "9 5 + 7 =", "1 0 2");
    expect_render("mul", "{\"format\": \"spaced\"}", "12", "34", "1 2 * 3 4 =", "4 0 8");

    /* spaced with extra spaces: each operand digit is followed by 1..1+K
     * spaces, and over many draws every count appears */
    json_t *p = norm_params("add", "{\"format\": \"spaced\", \"extra_spaces\": 2}");
    int seen[4] = {0};
    for (uint64_t i = 0; i < 50; i++) {
        pb_rng_t rng;
        char *pr, *rf;
        pb_rng_seed(&rng, 99, i);
        assert_int_equal(ps__arith_render("add", p, "123", "456", &rng, &pr, &rf), 0);
        assert_string_equal(rf, "5 7 9");
        char squeezed[64];
        size_t n = 0;
        for (const char *c = pr; *c; c++) {
            if (*c != ' ')
                squeezed[n++] = *c;
            if (*c >= '0' && *c <= '9') {
                size_t k = strspn(c + 1, " ");
                assert_true(k >= 1 && k <= 3);
                seen[k]++;
            }
        }
        squeezed[n] = '\0';
        assert_string_equal(squeezed, "123+456=");
        assert_non_null(strstr(pr, "+ 4")); /* one space after the operator */
        free(pr);
        free(rf);
    }
    assert_true(seen[1] > 0 && seen[2] > 0 && seen[3] > 0);
    json_decref(p);

    /* operands must be canonical decimal strings */
    char *pr = (char *)"x", *rf = (char *)"x";
    assert_int_equal(ps__arith_render("add", NULL, "012", "3", NULL, &pr, &rf), PB_EINVAL);
    assert_null(pr);
    assert_null(rf);
    assert_int_equal(ps__arith_render("add", NULL, "1a", "3", NULL, &pr, &rf), PB_EINVAL);
}

/* The scorer on an item: the reference and whitespace variants of it are
 * right, a changed last digit and no answer are wrong. */
static void check_scoring(const ps_run_t *run, const ps_item_t *it)
{
    char buf[512];
    double s = -1;
    assert_int_equal(run->suite->score(run, it, it->reference, &s, NULL), 0);
    assert_true(s == 1.0);
    snprintf(buf, sizeof buf, "  %s \n because", it->reference);
    assert_int_equal(run->suite->score(run, it, buf, &s, NULL), 0);
    assert_true(s == 1.0);
    snprintf(buf, sizeof buf, "%s", it->reference);
    char *last = buf + strlen(buf) - 1;
    *last = *last == '9' ? '0' : (char)(*last + 1);
    assert_int_equal(run->suite->score(run, it, buf, &s, NULL), 0);
    assert_true(s == 0.0);
    assert_int_equal(run->suite->score(run, it, NULL, &s, NULL), 0);
    assert_true(s == 0.0);
}

/* Generated items in every format agree with their operands and score. */
static void test_generated_items(void **state)
{
    static const char *const params[] = {
        "{\"digits\": [1, 6]}", "{\"digits\": [1, 6], \"format\": \"reversed\"}",
        "{\"digits\": [1, 6], \"format\": \"padded\", \"width\": 8}",
        "{\"digits\": [1, 6], \"format\": \"spaced\", \"extra_spaces\": 3}"};
    static const char *const tasks[] = {"add", "mul"};
    for (size_t t = 0; t < 2; t++)
        for (size_t f = 0; f < 4; f++)
            for (int d = 1; d <= 6; d++) {
                ps_run_t run;
                open_run(&run, tasks[t], params[f], d, 5);
                for (uint64_t i = 0; i < 6; i++) {
                    ps_item_t it;
                    char *pr, *rf;
                    pb_rng_t rng;
                    gen(&run, i, &it);
                    /* same operands, same rng position after them: same text */
                    pb_rng_seed(&rng, run.key, i);
                    for (int k = 0; k < meta_int(&it, "da") + meta_int(&it, "db"); k++)
                        (void)pb_rng_below(&rng, 10);
                    assert_int_equal(ps__arith_render(tasks[t], run.params, meta_str(&it, "a"),
                                                      meta_str(&it, "b"), &rng, &pr, &rf),
                                     0);
                    assert_string_equal(rf, it.reference);
                    assert_string_equal(pr, it.prompt);
                    if (f == 2) {
                        assert_int_equal(strlen(it.prompt), 8 + 1 + 8 + 1);
                        assert_int_equal(strlen(it.reference), t == 0 ? 9 : 16);
                    }
                    check_scoring(&run, &it);
                    free(pr);
                    free(rf);
                    ps_item_clear(&it);
                }
                ps_run_close(&run);
            }
}

/* Small sizes against __int128, large ones by digit counts and residues. */
static void test_big_numbers(void **state)
{
    static const char *tasks[] = {"add", "mul"};
    for (int t = 0; t < 2; t++) {
        int is_add = t == 0;
        ps_run_t run;
        open_run(&run, tasks[t], "{\"digits\": [1, 18]}", 18, 77);
        for (uint64_t i = 0; i < 200; i++) {
            ps_item_t it;
            gen(&run, i, &it);
            __int128 a = to_i128(meta_str(&it, "a")), b = to_i128(meta_str(&it, "b"));
            char want[64];
            i128_str(is_add ? a + b : a * b, want);
            assert_string_equal(it.reference, want);
            ps_item_clear(&it);
        }
        ps_run_close(&run);

        static const uint64_t mods[] = {9, 1000000000ULL, 1000000007ULL, 998244353ULL};
        open_run(&run, tasks[t], "{\"digits\": [25, 100]}", 100, 3);
        for (uint64_t i = 0; i < 60; i++) {
            ps_item_t it;
            gen(&run, i, &it);
            const char *as = meta_str(&it, "a"), *bs = meta_str(&it, "b"), *c = it.reference;
            size_t la = strlen(as), lb = strlen(bs), lc = strlen(c);
            assert_int_equal((int)la, meta_int(&it, "da"));
            assert_int_equal((int)lb, meta_int(&it, "db"));
            assert_true(c[0] != '0');
            if (is_add)
                assert_true(lc == (la > lb ? la : lb) || lc == (la > lb ? la : lb) + 1);
            else
                assert_true(lc == la + lb || lc == la + lb - 1);
            for (size_t m = 0; m < 4; m++) {
                uint64_t ra = mod_of(as, mods[m]), rb = mod_of(bs, mods[m]);
                uint64_t want = is_add ? (ra + rb) % mods[m]
                                       : (uint64_t)((unsigned __int128)ra * rb % mods[m]);
                assert_true(mod_of(c, mods[m]) == want);
            }
            ps_item_clear(&it);
        }
        ps_run_close(&run);
    }
    /* carries through every digit */
    expect_render("add", "{\"digits\": [1, 100]}",
                  "99999999999999999999999999999999999999999999999999"
                  "99999999999999999999999999999999999999999999999999",
                  "1",
                  "99999999999999999999999999999999999999999999999999"
                  "99999999999999999999999999999999999999999999999999+1=",
                  "1"
                  "00000000000000000000000000000000000000000000000000"
                  "00000000000000000000000000000000000000000000000000");
    expect_render("mul", NULL, "99999999", "99999999", "99999999*99999999=", "9999999800000001");
}

static void test_balanced_bins(void **state)
{
    ps_run_t run;
    int counts[7][7] = {{0}};
    open_run(&run, "add", "{\"digits\": [3, 6]}", 6, 9);
    for (uint64_t i = 0; i < 70; i++) {
        ps_item_t it;
        gen(&run, i, &it);
        int da = meta_int(&it, "da"), db = meta_int(&it, "db");
        assert_int_equal((int)strlen(meta_str(&it, "a")), da);
        assert_int_equal((int)strlen(meta_str(&it, "b")), db);
        assert_true(da >= 3 && db >= 3);
        assert_int_equal(da > db ? da : db, 6);
        counts[da][db]++;
        ps_item_clear(&it);
    }
    /* 2*(6-3)+1 = 7 bins, 10 items each */
    int bins = 0;
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 7; b++)
            if (counts[a][b]) {
                assert_int_equal(counts[a][b], 10);
                bins++;
            }
    assert_int_equal(bins, 7);
    ps_run_close(&run);

    /* the lowest bucket has the single bin (lo, lo); 1-digit operands may be 0 */
    open_run(&run, "add", "{\"digits\": [1, 6]}", 1, 9);
    int zero = 0;
    for (uint64_t i = 0; i < 200; i++) {
        ps_item_t it;
        gen(&run, i, &it);
        assert_int_equal(meta_int(&it, "da"), 1);
        assert_int_equal(meta_int(&it, "db"), 1);
        zero += strcmp(meta_str(&it, "a"), "0") == 0;
        ps_item_clear(&it);
    }
    assert_true(zero > 0);
    /* a bucket outside the params is refused */
    ps_item_t it;
    ps_run_close(&run);
    open_run(&run, "add", "{\"digits\": [1, 6]}", 7, 9);
    assert_int_equal(run.suite->generate(&run, 0, &it), PB_EINVAL);
    assert_null(it.prompt);
    ps_run_close(&run);
}

static json_t *agg(const char *params, const ps_bucket_stat_t *st, size_t n)
{
    json_t *p = norm_params("add", params);
    json_t *a = ps_suite_find("arithmetic")->aggregate("add", p, st, n);
    json_decref(p);
    assert_non_null(a);
    return a;
}

static void test_aggregate(void **state)
{
    /* accuracies 1.0, 0.95, 0.92, 0.5, 0.95 over 20 items each */
    ps_bucket_stat_t st[5] = {
        PB_TEST_STAT(1, 20, 20), PB_TEST_STAT(2, 20, 19), PB_TEST_STAT(3, 25, 23),
        PB_TEST_STAT(4, 20, 10), PB_TEST_STAT(5, 20, 19),
    };
    json_t *a = agg(NULL, st, 5);
    assert_int_equal(json_integer_value(json_object_get(a, "effective_length")), 3);
    assert_int_equal(json_integer_value(json_object_get(a, "n")), 105);
    assert_true(fabs(json_real_value(json_object_get(a, "accuracy")) - 91.0 / 105) < 1e-12);
    assert_true(json_real_value(json_object_get(a, "threshold")) == 0.9);
    assert_null(json_object_get(a, "in_distribution"));
    json_decref(a);

    /* order of stats does not matter */
    ps_bucket_stat_t rev[5];
    for (int i = 0; i < 5; i++)
        rev[i] = st[4 - i];
    a = agg(NULL, rev, 5);
    assert_int_equal(json_integer_value(json_object_get(a, "effective_length")), 3);
    json_decref(a);

    /* a lower threshold lets every bucket pass; first bucket failing gives 0 */
    a = agg("{\"threshold\": 0.5}", st, 5);
    assert_int_equal(json_integer_value(json_object_get(a, "effective_length")), 5);
    json_decref(a);
    st[0].score_sum = 10;
    a = agg(NULL, st, 5);
    assert_int_equal(json_integer_value(json_object_get(a, "effective_length")), 0);
    json_decref(a);
    st[0].score_sum = 20;
    /* a bucket with no scored items stops the scan */
    st[2].n = 0;
    st[2].score_sum = 0;
    a = agg(NULL, st, 5);
    assert_int_equal(json_integer_value(json_object_get(a, "effective_length")), 2);
    json_decref(a);
    st[2].n = 25;
    st[2].score_sum = 23;

    /* in- and out-of-distribution split at train_digits */
    a = agg("{\"train_digits\": 2}", st, 5);
    json_t *in = json_object_get(a, "in_distribution");
    json_t *out = json_object_get(a, "out_of_distribution");
    assert_true(fabs(json_real_value(json_object_get(in, "accuracy")) - 39.0 / 40) < 1e-12);
    assert_int_equal(json_integer_value(json_object_get(in, "n")), 40);
    assert_true(fabs(json_real_value(json_object_get(out, "accuracy")) - 52.0 / 65) < 1e-12);
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 65);
    json_decref(a);

    /* nothing scored */
    a = agg("{\"train_digits\": 9}", NULL, 0);
    assert_true(json_is_null(json_object_get(a, "accuracy")));
    assert_int_equal(json_integer_value(json_object_get(a, "effective_length")), 0);
    assert_true(json_is_null(
        json_object_get(json_object_get(a, "out_of_distribution"), "accuracy")));
    json_decref(a);
}

/* ---- job specs ---- */

static void test_plan_expand(void **state)
{
    json_t *spec = pb_test_json("{\"model\": {\"name\": \"oracle\", \"backend\": \"oracle\", "
                         "\"extra\": {\"k\": 1}},"
                         " \"runs\": [{\"suite\": \"arithmetic\", \"params\": {\"digits\": [1, 8]},"
                         " \"samples\": 40}], \"shard_size\": 16, \"tags\": [\"nightly\"]}");
    json_t *copy = json_deep_copy(spec);
    ps_plan_t *plan = NULL;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(ps_plan_build(spec, &plan, &err), 0);
    assert_true(json_equal(spec, copy)); /* input untouched */
    assert_int_equal(plan->n_runs, 1);
    assert_int_equal(plan->runs[0].n_buckets, 8);
    assert_int_equal(plan->n_tasks, 24);
    assert_int_equal(plan->items_total, 320);
    assert_string_equal(plan->runs[0].task, "add");
    assert_string_equal(plan->runs[0].suite, "arithmetic");
    assert_int_equal(plan->runs[0].version, 1);
    assert_int_equal(plan->runs[0].samples, 40);
    /* per bucket three shards [0,16) [16,32) [32,40), buckets ascending */
    for (size_t i = 0; i < plan->n_tasks; i++) {
        const ps_plan_task_t *t = &plan->tasks[i];
        assert_int_equal(t->run, 0);
        assert_int_equal(t->bucket, 1 + (int64_t)i / 3);
        assert_int_equal(t->item_lo, 16 * (i % 3));
        assert_int_equal(t->item_hi, i % 3 == 2 ? 40 : 16 * (i % 3) + 16);
    }

    /* defaults filled in */
    assert_string_equal(plan->name, "job");
    assert_string_equal(plan->device, "any");
    assert_int_equal(plan->seed, 0);
    assert_int_equal(plan->priority, 0);
    assert_int_equal(plan->max_attempts, PS_DEFAULT_MAX_ATTEMPTS);
    assert_int_equal(plan->timeout_s, PS_DEFAULT_TIMEOUT_S);
    assert_int_equal(plan->shard_size, 16);
    json_t *want = pb_test_json(
        "{\"name\": \"job\", \"model\": {\"name\": \"oracle\", \"backend\": \"oracle\","
        " \"extra\": {\"k\": 1}}, \"runs\": [{\"suite\": \"arithmetic\", \"task\": \"add\","
        " \"params\": {\"digits\": [1, 8], \"format\": \"plain\", \"extra_spaces\": 0,"
        " \"threshold\": 0.9, \"train_digits\": 0}, \"samples\": 40}], \"seed\": 0,"
        " \"priority\": 0, \"requires\": {\"device\": \"any\"}, \"max_attempts\": 3,"
        " \"timeout_s\": 600, \"shard_size\": 16, \"tags\": [\"nightly\"]}");
    assert_true(json_equal(plan->spec, want));
    assert_ptr_equal(plan->model, json_object_get(plan->spec, "model"));
    json_decref(want);

    /* the normalised spec plans to the same thing */
    ps_plan_t *again = NULL;
    assert_int_equal(ps_plan_build(plan->spec, &again, &err), 0);
    assert_true(json_equal(again->spec, plan->spec));
    assert_int_equal(again->n_tasks, 24);
    ps_plan_free(again);

    /* a planned run opens and generates */
    ps_run_t run;
    ps_item_t it;
    assert_int_equal(ps_run_open(&run, ps_suite_find(plan->runs[0].suite), plan->runs[0].task,
                                 plan->runs[0].params, plan->tasks[5].bucket, plan->seed),
                     0);
    gen(&run, plan->tasks[5].item_lo, &it);
    assert_int_equal(it.bucket, 2);
    ps_item_clear(&it);
    ps_run_close(&run);
    ps_plan_free(plan);
    json_decref(spec);
    json_decref(copy);

    /* two runs, explicit values, samples not a multiple of the shard */
    spec = pb_test_json("{\"name\": \"two\", \"model\": {\"name\": \"r\", \"backend\": \"random\"},"
                 " \"runs\": [{\"suite\": \"arithmetic\", \"task\": \"mul\","
                 " \"params\": {\"digits\": 3}, \"samples\": 5},"
                 " {\"suite\": \"arithmetic\", \"params\": {\"digits\": [2, 3]}}],"
                 " \"seed\": 9007199254740992, \"priority\": -5,"
                 " \"requires\": {\"device\": \"gpu\", \"memory_mb\": 2048},"
                 " \"max_attempts\": 1, \"timeout_s\": 30, \"shard_size\": 64}");
    assert_int_equal(ps_plan_build(spec, &plan, &err), 0);
    assert_int_equal(plan->n_tasks, 1 + 2);
    assert_int_equal(plan->items_total, 5 + 2 * 20);
    assert_int_equal(plan->tasks[0].item_hi, 5);
    assert_int_equal(plan->tasks[1].run, 1);
    assert_int_equal(plan->tasks[2].item_hi, 20);
    assert_true(plan->seed == 9007199254740992ULL);
    assert_int_equal(plan->priority, -5);
    assert_string_equal(plan->device, "gpu");
    assert_string_equal(plan->name, "two");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(plan->spec, "requires"),
                                                        "memory_mb")),
                     2048);
    ps_plan_free(plan);
    json_decref(spec);
    ps_plan_free(NULL);
}

static void expect_plan_error(const char *text, const char *field, const char *msg_part)
{
    json_t *spec = pb_test_json(text);
    ps_plan_t *plan = (ps_plan_t *)&plan;
    pb_err_t err = {{0}, {0}};
    int rc = ps_plan_build(spec, &plan, &err);
    json_decref(spec);
    if (rc != PB_EINVAL || strcmp(err.field, field) != 0 ||
        (msg_part && strstr(err.msg, msg_part) == NULL))
        fail_msg("%s\n  rc %d field \"%s\" (want \"%s\") msg: %s", text, rc, err.field, field,
                 err.msg);
    assert_null(plan);
}

#define MODEL "\"model\": {\"name\": \"m\", \"backend\": \"oracle\"}"
#define RUN "{\"suite\": \"arithmetic\"}"

static void test_plan_errors(void **state)
{
    static const struct {
        const char *spec, *field, *msg;
    } cases[] = {
        {"[]", "", NULL},
        {"{" MODEL ", \"runs\": [{\"suite\": \"nope\"}]}", "runs[0].suite",
         "unknown suite \"nope\""},
        {"{" MODEL ", \"runs\": [{\"task\": \"add\"}]}", "runs[0].suite", NULL},
        {"{" MODEL ", \"runs\": [{\"suite\": \"arithmetic\", \"task\": \"div\"}]}", "runs[0].task",
         "unknown task \"div\""},
        {"{" MODEL ", \"runs\": [" RUN ", {\"suite\": \"arithmetic\","
         " \"params\": {\"digits\": [0, 3]}}]}",
         "runs[1].params.digits", "digits"},
        {"{" MODEL ", \"runs\": [{\"suite\": \"arithmetic\", \"params\": {\"colour\": 1}}]}",
         "runs[0].params.colour", NULL},
        {"{" MODEL ", \"runs\": [{\"suite\": \"arithmetic\", \"params\": [1]}]}", "runs[0].params",
         NULL},
        {"{" MODEL ", \"runs\": [{\"suite\": \"arithmetic\", \"samples\": 0}]}", "runs[0].samples",
         NULL},
        {"{" MODEL ", \"runs\": [{\"suite\": \"arithmetic\", \"samples\": 1000001}]}",
         "runs[0].samples", NULL},
        {"{" MODEL ", \"runs\": [{\"suite\": \"arithmetic\", \"sample\": 3}]}", "runs[0].sample",
         NULL},
        {"{" MODEL ", \"runs\": [3]}", "runs[0]", NULL},
        {"{" MODEL ", \"runs\": []}", "runs", NULL},
        {"{" MODEL ", \"runs\": {}}", "runs", NULL},
        {"{" MODEL "}", "runs", NULL},
        {"{\"runs\": [" RUN "]}", "model", NULL},
        {"{\"model\": \"m\", \"runs\": [" RUN "]}", "model", NULL},
        {"{\"model\": {\"backend\": \"oracle\"}, \"runs\": [" RUN "]}", "model.name", NULL},
        {"{\"model\": {\"name\": \"m\"}, \"runs\": [" RUN "]}", "model.backend", NULL},
        {"{\"model\": {\"name\": \"m\", \"backend\": \"gpt\"}, \"runs\": [" RUN "]}",
         "model.backend", "unknown backend \"gpt\""},
        {"{" MODEL ", \"runs\": [" RUN "], \"bogus\": 1}", "bogus", "bogus"},
        {"{" MODEL ", \"runs\": [" RUN "], \"seed\": -1}", "seed", NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"seed\": 9007199254740993}", "seed", NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"priority\": 101}", "priority", NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"max_attempts\": 0}", "max_attempts", NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"timeout_s\": 86401}", "timeout_s", NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"shard_size\": 0}", "shard_size", NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"name\": 5}", "name", NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"requires\": {\"device\": \"tpu\"}}", "requires.device",
         NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"requires\": {\"cores\": 4}}", "requires.cores", NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"requires\": \"gpu\"}", "requires", NULL},
        {"{" MODEL ", \"runs\": [" RUN "], \"tags\": \"x\"}", "tags", NULL},
        /* 2 buckets x 1e6 shards of one item is over PS_MAX_TASKS */
        {"{" MODEL ", \"runs\": [{\"suite\": \"arithmetic\", \"samples\": 1000000,"
         " \"params\": {\"digits\": [1, 2]}}], \"shard_size\": 1}",
         "runs", NULL},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(cases); i++)
        expect_plan_error(cases[i].spec, cases[i].field, cases[i].msg);

    /* 65 runs is one too many */
    char big[4096] = "{" MODEL ", \"runs\": [";
    for (int i = 0; i < 65; i++)
        strcat(big, i ? ", " RUN : RUN);
    strcat(big, "]}");
    expect_plan_error(big, "runs", NULL);

    assert_true(ps_backend_known("oracle"));
    assert_true(ps_backend_known("random"));
    assert_false(ps_backend_known("gpt"));
    assert_false(ps_backend_known(NULL));
}

int pb_test_suites(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),          cmocka_unit_test(test_run_key),
        cmocka_unit_test(test_exact_match),       cmocka_unit_test(test_normalize_defaults),
        cmocka_unit_test(test_normalize_errors),  cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_golden),            cmocka_unit_test(test_formats),
        cmocka_unit_test(test_generated_items),   cmocka_unit_test(test_big_numbers),
        cmocka_unit_test(test_balanced_bins),     cmocka_unit_test(test_aggregate),
        cmocka_unit_test(test_plan_expand),       cmocka_unit_test(test_plan_errors),
    };
    return cmocka_run_group_tests_name("suites", tests, NULL, NULL);
}
