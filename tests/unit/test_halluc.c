/* Unit tests for the halluc suite (suites/halluc.c, halluc_score.c): the
 * strict yes/no parser's edge cases, triplet scoring for every combination
 * of answers, the aggregate and SAH ratio, the oracle, determinism in any
 * order, prompts within their bucket (characters and tokens), where the
 * three captions' facts are and are not, and parameter errors. */
#include "tests/unit/unit.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites/suite.h"
#include "suites/suite_int.h"

#define SMALL 6000 /* holds 16 segments' facts with some filler */

static const ps_suite_t *hl(void)
{
    const ps_suite_t *s = ps_suite_find("halluc");
    assert_non_null(s);
    return s;
}

static void open_run(ps_run_t *run, const char *params, int64_t bucket)
{
    pb_test_open_run(run, hl(), "sah", params, bucket, 42);
}

static void gen(const ps_run_t *run, uint64_t idx, ps_item_t *it)
{
    pb_test_gen(run, idx, it);
    assert_int_equal(it->n_parts, 3);
    assert_string_equal(it->part_refs[0], "Yes");
    assert_string_equal(it->part_refs[1], "No");
    assert_string_equal(it->part_refs[2], "No");
    assert_string_equal(it->reference, "Yes\nNo\nNo");
    assert_int_equal(it->prompt_hash, pb_hash_str(PB_HASH_INIT, it->prompt));
    assert_int_equal(json_integer_value(json_object_get(it->meta, "length")), it->length);
}

static const char *meta_s(const ps_item_t *it, const char *k)
{
    const char *v = json_string_value(json_object_get(it->meta, k));
    assert_non_null(v);
    return v;
}

static int meta_i(const ps_item_t *it, const char *k)
{
    return (int)json_integer_value(json_object_get(it->meta, k));
}

static void test_parser(void **state)
{
    static const struct {
        const char *reply;
        int want;
    } cases[] = {
        {"Yes", PS_HL_YES},          {"No", PS_HL_NO},
        {"yes", PS_HL_YES},          {"NO", PS_HL_NO},
        {"  Yes.\n", PS_HL_YES},     {"No!", PS_HL_NO},
        {"'No'", PS_HL_NO},          {"\"Yes\"", PS_HL_YES},
        {"**Yes**", PS_HL_YES},      {"`no`", PS_HL_NO},
        {"No, the fact is from segment 2.", PS_HL_NO},
        {"Yes - the caption matches.", PS_HL_YES},
        {"No\n\nExplanation: absent.", PS_HL_NO},
        {"", PS_HL_UNPARSEABLE},     {"   \n", PS_HL_UNPARSEABLE},
        {"know", PS_HL_UNPARSEABLE}, {"I know", PS_HL_UNPARSEABLE},
        {"nope?", PS_HL_UNPARSEABLE}, {"Noo", PS_HL_UNPARSEABLE},
        {"yess", PS_HL_UNPARSEABLE}, {"no-one knows", PS_HL_UNPARSEABLE},
        {"yes2", PS_HL_UNPARSEABLE}, {"Answer: Yes", PS_HL_UNPARSEABLE},
        {"yes and no", PS_HL_UNPARSEABLE}, {"No... well, YES", PS_HL_UNPARSEABLE},
        {"Yes\nNo", PS_HL_UNPARSEABLE}, {"Maybe", PS_HL_UNPARSEABLE},
        {"Yes, not nobody", PS_HL_YES}, /* "nobody" is not the word "no" */
        {"No, yesterday's segment", PS_HL_NO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (ps__hl_parse_answer(cases[i].reply) != cases[i].want)
            fail_msg("reply \"%s\": got %d, want %d", cases[i].reply,
                     ps__hl_parse_answer(cases[i].reply), cases[i].want);
    assert_int_equal(ps__hl_parse_answer(NULL), PS_HL_UNPARSEABLE);
}

/* Every answer triple over {Yes, No, know}: in_acc needs the true caption's
 * Yes and the misattributed one's No, out_acc the true Yes and the absent
 * No; an unparseable answer is wrong. */
static void test_score_triplets(void **state)
{
    static const char *const ans[3] = {"Yes", "No.", "know"};
    ps_run_t run;
    ps_item_t it;
    open_run(&run, "{\"lengths\": [6000], \"segments\": [4]}", SMALL);
    gen(&run, 0, &it);
    for (int a = 0; a < 27; a++) {
        int i0 = a % 3, i1 = a / 3 % 3, i2 = a / 9;
        char pred[128];
        snprintf(pred, sizeof pred, "[\"%s\", \"%s\", \"%s\"]", ans[i0], ans[i1], ans[i2]);
        double sc = -1, m[2] = {0, 0};
        assert_int_equal(hl()->score(&run, &it, pred, &sc, m), 0);
        double in = i0 == 0 && i1 == 1, out = i0 == 0 && i2 == 1;
        if (m[0] != in || m[1] != out || sc != (in + out) / 2)
            fail_msg("%s: in %g out %g score %g", pred, m[0], m[1], sc);
    }
    /* not an array of three strings: every part wrong */
    static const char *const bad[] = {"", "Yes", "[\"Yes\", \"No\"]", "[\"Yes\",\"No\",\"No\",\"No\"]",
                                      "[\"Yes\", 1, \"No\"]", "{\"a\": 1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double sc = -1, m[2] = {-1, -1};
        assert_int_equal(hl()->score(&run, &it, bad[i], &sc, m), 0);
        assert_true(sc == 0 && m[0] == 0 && m[1] == 0);
    }
    double sc = -1;
    assert_int_equal(hl()->score(&run, &it, "[\"yes\", \"no\", \"No\"]", &sc, NULL), 0);
    assert_true(sc == 1.0);
    ps_item_clear(&it);
    ps_run_close(&run);
}

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_aggregate(void **state)
{
    const double m1[2] = {2, 3}, m2[2] = {4, 4};
    ps_bucket_stat_t st[2] = {{.bucket = 8192, .n = 4, .score_sum = 2.5, .metric_sum = m1},
                              {.bucket = 16384, .n = 4, .score_sum = 4, .metric_sum = m2}};
    json_t *agg = hl()->aggregate("sah", NULL, st, 2);
    assert_non_null(agg);
    /* overall: InAcc 6/8, OutAcc 7/8, SAH (7/8 - 6/8) / (1 - 6/8) x 100 = 50 */
    assert_true(fabs(num(agg, "in_acc") - 0.75) < 1e-12);
    assert_true(fabs(num(agg, "out_acc") - 0.875) < 1e-12);
    assert_true(fabs(num(agg, "sah_ratio") - 50.0) < 1e-9);
    assert_true(fabs(num(agg, "pair_accuracy") - 6.5 / 8) < 1e-12);
    assert_int_equal(json_integer_value(json_object_get(agg, "n")), 8);
    json_t *b = json_object_get(agg, "buckets");
    assert_int_equal(json_array_size(b), 2);
    json_t *b0 = json_array_get(b, 0), *b1 = json_array_get(b, 1);
    assert_int_equal(json_integer_value(json_object_get(b0, "bucket")), 8192);
    /* bucket 1: InAcc 0.5, OutAcc 0.75: SAH 50; bucket 2: InAcc 1: null */
    assert_true(fabs(num(b0, "sah_ratio") - 50.0) < 1e-9);
    assert_true(num(b1, "in_acc") == 1.0);
    assert_true(json_is_null(json_object_get(b1, "sah_ratio")));
    json_decref(agg);

    /* OutAcc below InAcc gives a negative ratio */
    const double m3[2] = {2, 1};
    ps_bucket_stat_t neg = {.bucket = 1, .n = 4, .score_sum = 1.5, .metric_sum = m3};
    agg = hl()->aggregate("sah", NULL, &neg, 1);
    assert_true(fabs(num(agg, "sah_ratio") - (0.25 - 0.5) / 0.5 * 100) < 1e-9);
    json_decref(agg);

    /* nothing scored, or no metric sums: nulls */
    ps_bucket_stat_t empty = {.bucket = 8192};
    agg = hl()->aggregate("sah", NULL, &empty, 1);
    assert_true(json_is_null(json_object_get(agg, "in_acc")));
    assert_true(json_is_null(json_object_get(agg, "sah_ratio")));
    assert_true(json_is_null(json_object_get(agg, "pair_accuracy")));
    json_decref(agg);
    ps_bucket_stat_t nom = {.bucket = 8192, .n = 2, .score_sum = 1};
    agg = hl()->aggregate("sah", NULL, &nom, 1);
    assert_true(json_is_null(json_object_get(agg, "out_acc")));
    assert_true(num(agg, "pair_accuracy") == 0.5);
    json_decref(agg);
}

/* The oracle's answers (the part references) score 1 on every item. */
static void test_oracle(void **state)
{
    ps_run_t run;
    ps_item_t it;
    open_run(&run, "{\"lengths\": [6000]}", SMALL);
    for (uint64_t i = 0; i < 24; i++) {
        gen(&run, i, &it);
        char pred[64];
        snprintf(pred, sizeof pred, "[\"%s\", \"%s\", \"%s\"]", it.part_refs[0], it.part_refs[1],
                 it.part_refs[2]);
        double sc = 0, m[2] = {0, 0};
        assert_int_equal(hl()->score(&run, &it, pred, &sc, m), 0);
        assert_true(sc == 1.0 && m[0] == 1.0 && m[1] == 1.0);
        ps_item_clear(&it);
    }
    ps_run_close(&run);
}

/* The same items, byte for byte, in any order and from a fresh run. */
static void test_deterministic(void **state)
{
    enum { N = 16 };
    ps_run_t a, b;
    ps_item_t x[N], y;
    open_run(&a, "{\"lengths\": [6000, 9000]}", 9000);
    open_run(&b, "{\"lengths\": [6000, 9000]}", 9000);
    for (uint64_t i = 0; i < N; i++)
        gen(&a, i, &x[i]);
    for (uint64_t i = N; i-- > 0;) {
        gen(&b, i, &y);
        assert_string_equal(x[i].prompt, y.prompt);
        for (int k = 0; k < 3; k++)
            assert_string_equal(x[i].parts[k], y.parts[k]);
        assert_int_equal(x[i].prompt_hash, y.prompt_hash);
        assert_int_equal(x[i].length, y.length);
        char *m1 = json_dumps(x[i].meta, JSON_SORT_KEYS), *m2 = json_dumps(y.meta, JSON_SORT_KEYS);
        assert_string_equal(m1, m2);
        free(m1);
        free(m2);
        ps_item_clear(&y);
    }
    for (uint64_t i = 0; i < N; i++)
        ps_item_clear(&x[i]);
    ps_run_close(&a);
    ps_run_close(&b);
}

/* Document of a part: from the start to the question. */
static size_t doc_end(const char *part)
{
    const char *q = strstr(part, "\n\nIs the following caption about segment ");
    assert_non_null(q);
    return (size_t)(q - part);
}

/* The span of segment s's text (its header on) within the document. */
static void segment_span(const char *doc, size_t end, int s, size_t *lo, size_t *hi)
{
    char h[32];
    snprintf(h, sizeof h, "\nSegment %d: ", s);
    const char *a = strstr(doc, h);
    assert_non_null(a);
    assert_true((size_t)(a - doc) < end);
    const char *b = strstr(a + 1, "\nSegment ");
    *lo = (size_t)(a - doc);
    *hi = b && (size_t)(b - doc) < end ? (size_t)(b - doc) : end;
}

/* Occurrences of w in s[lo, hi) as a whole word (not inside a longer word). */
static int count_word(const char *s, size_t lo, size_t hi, const char *w)
{
    size_t n = strlen(w);
    int c = 0;
    for (size_t i = lo; i + n <= hi; i++)
        if (strncmp(s + i, w, n) == 0 && (i == 0 || !isalnum((unsigned char)s[i - 1])) &&
            !isalnum((unsigned char)s[i + n]))
            c++;
    return c;
}

/* Each word of at least 4 letters of phrase occurs nowhere in s[lo, hi). */
static void assert_words_absent(const char *s, size_t lo, size_t hi, const char *phrase)
{
    char buf[160];
    snprintf(buf, sizeof buf, "%s", phrase);
    for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "))
        if (strlen(w) >= 4 && strcmp(w, "was") != 0 && count_word(s, lo, hi, w) != 0)
            fail_msg("word \"%s\" of \"%s\" is in the text", w, phrase);
}

/* Where the facts are: the true one in segment e once, the misattributed
 * one in segment e' and nowhere else, the absent one (and each of its
 * words) nowhere; the captions end the parts and agree with the meta. */
static void test_fact_placement(void **state)
{
    ps_run_t run;
    ps_item_t it;
    open_run(&run, "{\"lengths\": [6000, 20000]}", 20000);
    for (uint64_t i = 0; i < 96; i++) {
        gen(&run, i, &it);
        int E = meta_i(&it, "segments"), e = meta_i(&it, "segment"), src = meta_i(&it, "source");
        static const int segs[] = {2, 4, 8, 16};
        static const char *const asp[] = {"object", "action", "attribute", "statement"};
        assert_int_equal(E, segs[i % 4]);
        assert_string_equal(meta_s(&it, "aspect"), asp[i / 4 % 4]);
        assert_true(e >= 1 && e <= E && src >= 1 && src <= E && src != e);
        assert_int_equal(meta_i(&it, "distance"), abs(e - src));
        const json_t *ch = json_object_get(it.meta, "choices");
        assert_int_equal(json_array_size(ch), 2);
        assert_string_equal(json_string_value(json_array_get(ch, 0)), "Yes");
        const char *gt = meta_s(&it, "gt"), *mis = meta_s(&it, "misattributed"),
                   *abs_ = meta_s(&it, "absent");
        const char *doc = it.parts[0];
        size_t end = doc_end(doc), lo, hi, slo, shi;
        char head[64];
        snprintf(head, sizeof head, "The following document has %d segments.\n\n", E);
        assert_memory_equal(doc, head, strlen(head));
        for (int k = 1; k < 3; k++) /* one document for the three captions */
            assert_true(doc_end(it.parts[k]) == end && memcmp(doc, it.parts[k], end) == 0);
        segment_span(doc, end, e, &lo, &hi);
        segment_span(doc, end, src, &slo, &shi);
        if (E < 16) {
            char h[32];
            snprintf(h, sizeof h, "\nSegment %d: ", E + 1);
            assert_null(strstr(doc, h));
        }
        assert_int_equal(count_word(doc, 0, end, gt), 1);
        assert_int_equal(count_word(doc, lo, hi, gt), 1);
        assert_int_equal(count_word(doc, 0, end, mis), 1);
        assert_int_equal(count_word(doc, slo, shi, mis), 1);
        assert_int_equal(count_word(doc, lo, hi, mis), 0);
        assert_int_equal(count_word(doc, 0, end, abs_), 0);
        assert_words_absent(doc, 0, end, abs_);
        assert_words_absent(doc, lo, hi, mis);
        /* the question names segment e and ends with the caption */
        const char *facts[3] = {gt, mis, abs_};
        for (int k = 0; k < 3; k++) {
            char q[160];
            snprintf(q, sizeof q,
                     "\n\nIs the following caption about segment %d totally correct? Reply "
                     "with 'Yes' or 'No' only.\nCaption: ", e);
            assert_memory_equal(it.parts[k] + end, q, strlen(q));
            const char *cap = it.parts[k] + end + strlen(q);
            assert_non_null(strstr(cap, facts[k]));
            assert_null(strchr(cap, '\n'));
        }
        ps_item_clear(&it);
    }
    ps_run_close(&run);
}

/* Every part within its bucket and close to it, in characters. */
static void test_lengths_chars(void **state)
{
    static const int64_t buckets[] = {6000, 8192, 32768};
    for (size_t b = 0; b < 3; b++) {
        ps_run_t run;
        ps_item_t it;
        open_run(&run, "{\"lengths\": [6000, 8192, 32768]}", buckets[b]);
        for (uint64_t i = 0; i < 12; i++) {
            gen(&run, i, &it);
            int64_t longest = 0;
            for (int k = 0; k < 3; k++) {
                int64_t n = (int64_t)strlen(it.parts[k]);
                assert_true(n <= buckets[b]);
                longest = n > longest ? n : longest;
            }
            assert_int_equal(it.length, longest);
            if (longest < buckets[b] - buckets[b] / 25)
                fail_msg("bucket %lld item %llu: only %lld chars", (long long)buckets[b],
                         (unsigned long long)i, (long long)longest);
            ps_item_clear(&it);
        }
        ps_run_close(&run);
    }
}

/* A test tokenizer: whitespace-separated words. */
static int count_words(void *ctx, const char *text, size_t len, int64_t *n)
{
    int64_t c = 0;
    (*(int *)ctx)++;
    for (size_t i = 0; i < len; i++)
        c += !isspace((unsigned char)text[i]) && (i == 0 || isspace((unsigned char)text[i - 1]));
    *n = c;
    return 0;
}

/* Under a tokenizer the bucket counts tokens: each part within it and
 * close to it, with a bounded number of measurements. */
static void test_lengths_tokens(void **state)
{
    static const int64_t buckets[] = {1400, 4096, 16384};
    for (size_t b = 0; b < 3; b++) {
        int calls = 0;
        ps_tokenizer_t tok = {.ctx = &calls, .count = count_words};
        ps_run_t run;
        ps_item_t it;
        open_run(&run, "{\"lengths\": [6000], \"segments\": [2, 4, 8]}", buckets[b]);
        run.tok = &tok;
        assert_string_equal(ps_run_unit(&run), "tokens");
        for (uint64_t i = 0; i < 9; i++) {
            calls = 0;
            gen(&run, i, &it);
            int64_t longest = 0;
            for (int k = 0; k < 3; k++) {
                int64_t n;
                count_words(&calls, it.parts[k], strlen(it.parts[k]), &n);
                assert_true(n <= buckets[b]);
                longest = n > longest ? n : longest;
            }
            assert_int_equal(it.length, longest);
            if (longest < buckets[b] - buckets[b] / 20)
                fail_msg("bucket %lld item %llu: only %lld tokens", (long long)buckets[b],
                         (unsigned long long)i, (long long)longest);
            assert_true(calls <= 3 * 8 + 3);
            assert_int_equal(tok.failed, 0);
            ps_item_clear(&it);
        }
        ps_run_close(&run);
    }
}

/* distances: |e - e'| cycles through those below E; null: spread. */
static void test_distances(void **state)
{
    ps_run_t run;
    ps_item_t it;
    open_run(&run, "{\"lengths\": [6000], \"segments\": [2, 8], \"aspects\": [\"action\"], "
                   "\"distances\": [3, 1]}", SMALL);
    for (uint64_t i = 0; i < 16; i++) {
        gen(&run, i, &it);
        int E = meta_i(&it, "segments"), d = meta_i(&it, "distance");
        assert_string_equal(meta_s(&it, "aspect"), "action");
        assert_int_equal(E, i % 2 ? 8 : 2);
        assert_int_equal(d, E == 2 ? 1 : (i / 2) % 2 ? 3 : 1);
        assert_int_equal(abs(meta_i(&it, "segment") - meta_i(&it, "source")), d);
        ps_item_clear(&it);
    }
    ps_run_close(&run);
    int seen[16] = {0};
    open_run(&run, "{\"lengths\": [6000], \"segments\": [16]}", SMALL);
    for (uint64_t i = 0; i < 200; i++) {
        gen(&run, i, &it);
        seen[meta_i(&it, "distance")]++;
        ps_item_clear(&it);
    }
    ps_run_close(&run);
    for (int d = 1; d <= 10; d++)
        assert_true(seen[d] > 0);
    assert_true(seen[1] > seen[10]); /* 30 ordered pairs at distance 1, 12 at 10 */
}

static void expect_err(const char *params, const char *field)
{
    pb_test_param_error(hl(), "sah", params, field);
}

static void test_params(void **state)
{
    json_t *p = pb_test_norm(hl(), "sah", NULL);
    char *s = json_dumps(p, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"aspects\":[\"object\",\"action\",\"attribute\",\"statement\"],"
                           "\"distances\":null,\"lengths\":[8192,16384,32768],"
                           "\"segments\":[2,4,8,16]}");
    free(s);
    json_decref(p);
    p = pb_test_norm(hl(), "sah", "{\"lengths\": 3000, \"segments\": [4, 2, 4], "
                                  "\"aspects\": \"statement\", \"distances\": [1]}");
    s = json_dumps(p, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"aspects\":[\"statement\"],\"distances\":[1],\"lengths\":[3000],"
                           "\"segments\":[2,4]}");
    free(s);
    json_decref(p);
    expect_err("{\"segments\": [1, 4]}", "segments");
    expect_err("{\"segments\": [17]}", "segments");
    expect_err("{\"segments\": []}", "segments");
    expect_err("{\"segments\": \"four\"}", "segments");
    expect_err("{\"lengths\": [3700]}", "lengths"); /* 16 segments do not fit */
    json_decref(pb_test_norm(hl(), "sah", "{\"lengths\": [4096]}")); /* they do */
    expect_err("{\"lengths\": [100], \"segments\": [2]}", "lengths");
    expect_err("{\"lengths\": [2000000]}", "lengths");
    expect_err("{\"aspects\": [\"color\"]}", "aspects");
    expect_err("{\"aspects\": []}", "aspects");
    expect_err("{\"distances\": [2]}", "distances"); /* E = 2 has only distance 1 */
    expect_err("{\"distances\": [0]}", "distances");
    expect_err("{\"depths\": 3}", "depths");
    json_t *sc = hl()->schema("sah");
    assert_non_null(sc);
    assert_int_equal(json_integer_value(json_array_get(
                         json_object_get(json_object_get(sc, "segments"), "default"), 3)),
                     16);
    json_decref(sc);
    assert_null(hl()->schema("nope"));
    int64_t *b = NULL;
    size_t nb = 0;
    p = pb_test_norm(hl(), "sah", "{\"lengths\": [9000, 7000]}");
    assert_int_equal(hl()->buckets("sah", p, &b, &nb), 0);
    assert_int_equal(nb, 2);
    assert_true(b[0] == 7000 && b[1] == 9000);
    free(b);
    json_decref(p);
    assert_int_equal(ps_suite_n_metrics(hl()), 2);
    assert_string_equal(hl()->metrics[0], "in_acc");
    assert_string_equal(hl()->metrics[1], "out_acc");
}

int pb_test_halluc(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser),         cmocka_unit_test(test_score_triplets),
        cmocka_unit_test(test_aggregate),      cmocka_unit_test(test_oracle),
        cmocka_unit_test(test_deterministic),  cmocka_unit_test(test_fact_placement),
        cmocka_unit_test(test_lengths_chars),  cmocka_unit_test(test_lengths_tokens),
        cmocka_unit_test(test_distances),      cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests_name("halluc", tests, NULL, NULL);
}
