/* Unit tests for the longctx suite (suites/longctx.c, longctx_niah.c): each task's fixed
 * lines and structure, the needle at its depth, prompt lengths just under
 * the bucket, determinism in any order, the scorers' edge cases, parameter
 * errors naming the field and the effective length. */
#include "tests/unit/test_longctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites/suite.h"
#include "suites/suite_int.h"

static const char *const tasks[] = {"passkey",         "niah_single_1",   "niah_single_2",
                                    "niah_single_3",   "kv_retrieval",    "niah_multikey_1",
                                    "niah_multikey_2", "niah_multikey_3", "niah_multivalue",
                                    "niah_multiquery", "variable_tracking", "common_words",
                                    "frequent_words",  "altered_numeric_qa"};
#define N_TASKS (sizeof tasks / sizeof tasks[0])

static const ps_suite_t *lc(void)
{
    const ps_suite_t *s = ps_suite_find("longctx");
    assert_non_null(s);
    return s;
}

static void open_run(ps_run_t *run, const char *task, const char *params, int64_t bucket)
{
    pb_test_open_run(run, lc(), task, params, bucket, 42);
}

static void gen(const ps_run_t *run, uint64_t idx, ps_item_t *it)
{
    pb_test_gen(run, idx, it);
    assert_int_equal(it->length, (int64_t)strlen(it->prompt));
    assert_int_equal(json_integer_value(json_object_get(it->meta, "length")), it->length);
}

static int depth_of(const ps_item_t *it)
{
    return (int)json_integer_value(json_object_get(it->meta, "depth"));
}

/* Where needle starts within the haystack region [lo, hi) of the prompt, as
 * a fraction. */
static double frac(const char *prompt, const char *needle, size_t lo, size_t hi)
{
    const char *at = strstr(prompt, needle);
    assert_non_null(at);
    assert_null(strstr(at + 1, needle)); /* exactly once */
    return (double)((size_t)(at - prompt) - lo) / (double)(hi - lo);
}

static void test_passkey_structure(void **state)
{
    ps_run_t run;
    ps_item_t it;
    open_run(&run, "passkey", "{\"lengths\": [1024], \"depths\": 5}", 1024);
    for (uint64_t i = 0; i < 10; i++) {
        gen(&run, i, &it);
        assert_int_equal(it.length, 1024); /* sliced in characters: exact */
        assert_int_equal(depth_of(&it), (int)(i % 5) * 25);
        char info[128];
        snprintf(info, sizeof info, "\nThe pass key is %s. Remember it. %s is the pass key.\n",
                 it.reference, it.reference);
        int key = atoi(it.reference);
        assert_true(key >= 1 && key <= 50000);
        const char *intro = "There is an important info hidden inside a lot of irrelevant text. "
                            "Find it and memorize them. I will quiz you about the important "
                            "information there.\nThe grass is green. The sky";
        const char *q = "\nWhat is the pass key? The pass key is";
        if (i % 5 != 0)
            assert_memory_equal(it.prompt, intro, strlen(intro));
        assert_string_equal(it.prompt + it.length - strlen(q), q);
        size_t lo = strlen("There is an important info hidden inside a lot of irrelevant text. "
                           "Find it and memorize them. I will quiz you about the important "
                           "information there.");
        size_t hi = (size_t)it.length - strlen(q) - strlen(info) + 1;
        double f = frac(it.prompt, info, lo, hi);
        assert_true(f > (double)(i % 5) / 4 - 0.01 && f < (double)(i % 5) / 4 + 0.01);
        ps_item_clear(&it);
    }
    ps_run_close(&run);
}

static void test_niah_structure(void **state)
{
    static const char *const kinds[] = {"number", "number", "uuid"};
    for (int t = 0; t < 3; t++) {
        ps_run_t run;
        ps_item_t it;
        open_run(&run, tasks[1 + t], "{\"lengths\": [4096], \"depths\": 11}", 4096);
        for (uint64_t i = 0; i < 11; i++) {
            gen(&run, i, &it);
            assert_int_equal(depth_of(&it), (int)i * 10);
            assert_true(it.length <= 4096 && it.length >= 4096 - 32);
            char head[256], needle[160], tail[256];
            snprintf(head, sizeof head,
                     "A special magic %s is hidden within the following text. Make sure to "
                     "memorize it. I will quiz you about the %s afterwards.\n",
                     kinds[t], kinds[t]);
            assert_memory_equal(it.prompt, head, strlen(head));
            /* the key is in the question; the needle must carry it and the value */
            const char *q = strstr(it.prompt, "\nWhat is the special magic ");
            assert_non_null(q);
            char key[64];
            assert_int_equal(sscanf(q, "\nWhat is the special magic %*s for %63s", key), 1);
            snprintf(needle, sizeof needle, "One of the special magic %ss for %s is: %s.",
                     kinds[t], key, it.reference);
            snprintf(tail, sizeof tail,
                     "\nWhat is the special magic %s for %s mentioned in the provided text?\n"
                     "The special magic %s for %s mentioned in the provided text is",
                     kinds[t], key, kinds[t], key);
            assert_string_equal(it.prompt + it.length - strlen(tail), tail);
            if (t == 2)
                assert_int_equal(strlen(it.reference), 36);
            else
                assert_true(atoi(it.reference) >= 1000000 && strlen(it.reference) == 7);
            double f = frac(it.prompt, needle, strlen(head),
                            (size_t)it.length - strlen(tail) - strlen(needle));
            /* depth counts sentences; prose sentences vary in length */
            if (f < (double)i / 10 - 0.05 || f > (double)i / 10 + 0.05)
                fail_msg("%s depth %d: needle at %.3f", tasks[1 + t], (int)i * 10, f);
            if (t == 0) /* the repeated filler */
                assert_non_null(strstr(it.prompt, "The sun is yellow. Here we go. There and"));
            else
                assert_null(strstr(it.prompt, "The grass is green."));
            ps_item_clear(&it);
        }
        ps_run_close(&run);
    }
}

/* Every needle "One of the special magic <kind>s for K is: V." in prompt:
 * keys, values and offsets; returns the count. */
static int needles(const char *prompt, const char *kind, char keys[][40], char vals[][40],
                   size_t *at, int max)
{
    char lead[64];
    int n = 0;
    snprintf(lead, sizeof lead, "One of the special magic %ss for ", kind);
    for (const char *p = prompt; (p = strstr(p, lead)) != NULL; p++) {
        assert_true(n < max);
        assert_int_equal(sscanf(p + strlen(lead), "%39s is: %39[0-9a-f-].", keys[n], vals[n]),
                         2);
        char whole[160];
        snprintf(whole, sizeof whole, "%s%s is: %s.", lead, keys[n], vals[n]);
        assert_memory_equal(p, whole, strlen(whole)); /* exact line, period included */
        at[n++] = (size_t)(p - prompt);
    }
    return n;
}

/* The reference's lines into vals; returns the count. */
static int ref_lines(const char *ref, char vals[][40], int max)
{
    int n = 0;
    for (const char *r = ref; *r && n < max; n++) {
        size_t k = strcspn(r, "\n");
        assert_true(k > 0 && k < 40);
        memcpy(vals[n], r, k);
        vals[n][k] = '\0';
        r += k + (r[k] == '\n');
    }
    return n;
}

/* niah_multikey_1, niah_multivalue, niah_multiquery: four needles in prose,
 * RULER's singular or plural template, the first asked needle at the depth. */
static void test_multi_prose_structure(void **state)
{
    static const char *const names[] = {"niah_multikey_1", "niah_multivalue",
                                        "niah_multiquery", "variable_tracking", "common_words",
                                    "frequent_words",  "altered_numeric_qa"};
    for (int t = 0; t < 3; t++) {
        ps_run_t run;
        ps_item_t it;
        open_run(&run, names[t], "{\"lengths\": [4096], \"depths\": 11}", 4096);
        for (uint64_t i = 0; i < 11; i++) {
            gen(&run, i, &it);
            assert_int_equal(depth_of(&it), (int)i * 10);
            assert_true(it.length <= 4096 && it.length >= 4096 - 24);
            assert_int_equal(json_integer_value(json_object_get(it.meta, "keys")), 4);
            const char *head = t == 0 ? "A special magic number is hidden within the following "
                                        "text. Make sure to memorize it. I will quiz you about "
                                        "the number afterwards.\n"
                                      : "Some special magic numbers are hidden within the "
                                        "following text. Make sure to memorize it. I will quiz "
                                        "you about the numbers afterwards.\n";
            assert_memory_equal(it.prompt, head, strlen(head));
            char keys[8][40], vals[8][40], refs[8][40], query[256], tail[1024];
            size_t at[8];
            int n = needles(it.prompt, "number", keys, vals, at, 8);
            assert_int_equal(n, 4);
            int nr = ref_lines(it.reference, refs, 8);
            assert_int_equal(nr, t == 0 ? 1 : 4);
            int ref_needle[4] = {-1, -1, -1, -1}; /* the needle of reference line r */
            for (int r = 0; r < nr; r++) {
                ref_needle[r] = -1;
                for (int k = 0; k < n; k++)
                    if (strcmp(vals[k], refs[r]) == 0) {
                        assert_int_equal(ref_needle[r], -1); /* values are distinct */
                        ref_needle[r] = k;
                    }
                assert_true(ref_needle[r] >= 0);
                assert_int_equal(strlen(refs[r]), 7);
            }
            for (int a = 0; a < n; a++)
                for (int b = a + 1; b < n; b++)
                    if (t == 1)
                        assert_string_equal(keys[a], keys[b]); /* one key, four values */
                    else
                        assert_string_not_equal(keys[a], keys[b]);
            if (t == 2)
                snprintf(query, sizeof query, "%s, %s, %s, and %s", keys[ref_needle[0]],
                         keys[ref_needle[1]], keys[ref_needle[2]], keys[ref_needle[3]]);
            else
                snprintf(query, sizeof query, "%s", keys[ref_needle[0]]);
            if (t == 0)
                snprintf(tail, sizeof tail,
                         "\nWhat is the special magic number for %s mentioned in the provided "
                         "text?\nThe special magic number for %s mentioned in the provided "
                         "text is",
                         query, query);
            else
                snprintf(tail, sizeof tail,
                         "\nWhat are all the special magic numbers for %s mentioned in the "
                         "provided text?\nThe special magic numbers for %s mentioned in the "
                         "provided text are",
                         query, query);
            assert_string_equal(it.prompt + it.length - strlen(tail), tail);
            /* the first asked needle sits at the depth (in sentences) */
            size_t lo = strlen(head), hi = (size_t)it.length - strlen(tail);
            double f = (double)(at[ref_needle[0]] - lo) / (double)(hi - lo);
            if (f < (double)i / 10 - 0.07 || f > (double)i / 10 + 0.07)
                fail_msg("%s depth %d: needle at %.3f", names[t], (int)i * 10, f);
            assert_null(strstr(it.prompt, "The grass is green."));
            /* all values needed: three of four scores 0.75 */
            char pred[128];
            snprintf(pred, sizeof pred, "%s %s %s", refs[0], nr > 1 ? refs[1] : "",
                     nr > 2 ? refs[2] : "");
            double sc;
            assert_int_equal(run.suite->score(&run, &it, pred, &sc, NULL), 0);
            assert_true(sc == (t == 0 ? 1.0 : 0.75));
            ps_item_clear(&it);
        }
        ps_run_close(&run);
    }
}

/* niah_multikey_2/3: a haystack of needle lines, exactly one with the asked
 * key, at line round((lines - 1) * d / (n - 1)). */
static void test_needle_lines_structure(void **state)
{
    for (int t = 0; t < 2; t++) {
        const char *kind = t ? "uuid" : "number";
        ps_run_t run;
        ps_item_t it;
        open_run(&run, t ? "niah_multikey_3" : "niah_multikey_2",
                 "{\"lengths\": [4096], \"depths\": 5}", 4096);
        for (uint64_t i = 0; i < 5; i++) {
            gen(&run, i, &it);
            char head[256], tail[512], key[40];
            snprintf(head, sizeof head,
                     "A special magic %s is hidden within the following text. Make sure to "
                     "memorize it. I will quiz you about the %s afterwards.\n",
                     kind, kind);
            assert_memory_equal(it.prompt, head, strlen(head));
            const char *q = strstr(it.prompt, "\nWhat is the special magic ");
            assert_non_null(q);
            assert_int_equal(sscanf(q, "\nWhat is the special magic %*s for %39s", key), 1);
            snprintf(tail, sizeof tail,
                     "\nWhat is the special magic %s for %s mentioned in the provided text?\n"
                     "The special magic %s for %s mentioned in the provided text is",
                     kind, key, kind, key);
            assert_string_equal(it.prompt + it.length - strlen(tail), tail);
            /* the context is needle lines only */
            int lines = (int)json_integer_value(json_object_get(it.meta, "keys"));
            assert_true(lines > 20);
            static char keys[256][40], vals[256][40];
            size_t at[256];
            assert_int_equal(needles(it.prompt, kind, keys, vals, at, 256), lines);
            int asked = -1;
            for (int k = 0; k < lines; k++) {
                size_t end = at[k] + strlen(keys[k]) + strlen(vals[k]) + strlen(kind) + 37;
                assert_true(it.prompt[end] == '\n'); /* one needle a line */
                if (k + 1 < lines)
                    assert_int_equal(at[k + 1], end + 1);
                assert_int_equal(strlen(vals[k]), t ? 36 : 7);
                if (t)
                    assert_int_equal(strlen(keys[k]), 36);
                else
                    assert_non_null(strchr(keys[k], '-'));
                if (strcmp(keys[k], key) == 0) {
                    assert_int_equal(asked, -1); /* the asked key is unique */
                    asked = k;
                }
            }
            assert_int_equal(at[0], strlen(head));
            assert_int_equal(asked, (2 * (lines - 1) * (int)i + 4) / 8);
            assert_string_equal(vals[asked], it.reference);
            assert_true(it.length <= 4096 && it.length > 4096 - (t ? 114 : 67));
            ps_item_clear(&it);
        }
        ps_run_close(&run);
    }
}

/* variable_tracking: RULER's template, the five-variable chain in order
 * among filler lines, its first statement after round(lines * d / (n - 1))
 * filler lines, the names as the reference. */
static void test_vt_structure(void **state)
{
    static const char noise[] = "The grass is green. The sky is blue. The sun is yellow. Here we "
                                "go. There and back again.";
    ps_run_t run;
    ps_item_t it;
    open_run(&run, "variable_tracking", "{\"lengths\": [2048], \"depths\": 5}", 2048);
    for (uint64_t i = 0; i < 10; i++) {
        gen(&run, i, &it);
        assert_int_equal(depth_of(&it), (int)(i % 5) * 25);
        const char *head = "Memorize and track the chain(s) of variable assignment hidden in "
                           "the following text.\n\n";
        assert_memory_equal(it.prompt, head, strlen(head));
        char names[8][40], tail[512];
        assert_int_equal(ref_lines(it.reference, names, 8), 5);
        int value = -1;
        const char *q = strstr(it.prompt, "\nQuestion: ");
        assert_non_null(q);
        assert_int_equal(sscanf(q, "\nQuestion: Find all variables that are assigned the value "
                                   "%d",
                                &value),
                         1);
        assert_true(value >= 10000 && value <= 99999);
        snprintf(tail, sizeof tail,
                 "\nQuestion: Find all variables that are assigned the value %d in the text "
                 "above. Answer: According to the chain(s) of variable assignment in the text "
                 "above, 5 variables are assgined the value %d, they are: ",
                 value, value);
        assert_string_equal(q, tail);
        for (int a = 0; a < 5; a++) {
            assert_int_equal(strlen(names[a]), 5);
            for (int c = 0; c < 5; c++)
                assert_true(names[a][c] >= 'A' && names[a][c] <= 'Z');
            for (int b = 0; b < a; b++)
                assert_string_not_equal(names[a], names[b]);
        }
        /* walk the context line by line */
        const char *l = it.prompt + strlen(head);
        int fill = 0, before = -1, k = 0;
        while (l < q) {
            size_t n = strcspn(l, "\n");
            char want[128] = "";
            if (k < 5) {
                if (k == 0)
                    snprintf(want, sizeof want, "VAR %s = %d", names[0], value);
                else
                    snprintf(want, sizeof want, "VAR %s = VAR %s", names[k], names[k - 1]);
            }
            if (n == strlen(noise) && memcmp(l, noise, n) == 0) {
                fill++;
            } else {
                assert_true(k < 5);
                assert_int_equal(n, strlen(want));
                assert_memory_equal(l, want, n);
                if (k++ == 0)
                    before = fill;
            }
            l += n + (l[n] == '\n');
        }
        assert_int_equal(k, 5);
        assert_int_equal(before, (2 * fill * (int)(i % 5) + 4) / 8);
        assert_true(it.length <= 2048 && it.length > 2048 - 89);
        double sc;
        char pred[256];
        snprintf(pred, sizeof pred, "%s, %s, %s and %s", names[0], names[1], names[2], names[3]);
        assert_int_equal(run.suite->score(&run, &it, pred, &sc, NULL), 0);
        assert_true(sc == 0.8);
        ps_item_clear(&it);
    }
    ps_run_close(&run);
}

static void test_kv_structure(void **state)
{
    ps_run_t run;
    ps_item_t it;
    open_run(&run, "kv_retrieval", "{\"lengths\": [2048], \"depths\": 3}", 2048);
    for (uint64_t i = 0; i < 3; i++) {
        gen(&run, i, &it);
        const char *head = "Extract the value corresponding to the specified key in the JSON "
                           "object below.\n\nJSON data:\n{\"";
        assert_memory_equal(it.prompt, head, strlen(head));
        int n = (int)json_integer_value(json_object_get(it.meta, "keys"));
        assert_true(n > 10);
        /* records are "<k>": "<v>" joined by ",\n " */
        int seps = 0;
        for (const char *p = it.prompt; (p = strstr(p, "\",\n \"")); p++)
            seps++;
        assert_int_equal(seps, n - 1);
        char gold[64], line[128];
        const char *kq = strstr(it.prompt, "}\n\nKey: \"");
        assert_non_null(kq);
        assert_int_equal(sscanf(kq, "}\n\nKey: \"%36s", gold), 1);
        snprintf(line, sizeof line, "\"%s\": \"%s\"", gold, it.reference);
        const char *at = strstr(it.prompt, line);
        assert_non_null(at);
        int index = (int)((at - it.prompt - (int)strlen(head) + 1) / 81);
        assert_int_equal(index, (int)((2 * (n - 1) * (int)i + 2) / 4)); /* round((n-1) i/2) */
        assert_string_equal(kq + 9 + 36, "\"\nCorresponding value:");
        assert_true(it.length <= 2048 && it.length > 2048 - 81);
        ps_item_clear(&it);
    }
    ps_run_close(&run);
}

static void test_lengths_and_depth_cycle(void **state)
{
    static const int64_t buckets[] = {512, 1024, 2048, 4096, 8192, 16384};
    /* how far under the bucket a prompt may fall: kv one 81-char record;
     * needle lines one line (67 chars with word keys, 114 with UUIDs);
     * variable tracking one 89-char filler line; cwe three list entries;
     * altered_numeric_qa one fact sentence; text one short sentence */
    static const int64_t slack[N_TASKS] = {24, 24, 24, 24, 81, 24, 67, 114, 24, 24, 89, 60, 24, 90};
    for (size_t t = 0; t < N_TASKS; t++)
        for (size_t b = 0; b < 6; b++) {
            ps_run_t run;
            ps_item_t it;
            /* four needles, cwe and fwe need at least 1024 chars */
            int four = t == 5 || t == 8 || t == 9 || t == 11 || t == 12;
            int depthless = t == 11 || t == 12;
            if (four && buckets[b] < 1024)
                continue;
            open_run(&run, tasks[t],
                     four ? "{\"lengths\": [16384, 1024, 2048, 4096, 8192]}"
                          : "{\"lengths\": [512, 16384, 1024, 2048, 4096, 8192]}",
                     buckets[b]);
            int seen[101] = {0};
            for (uint64_t i = 0; i < 22; i++) {
                gen(&run, i, &it);
                if (it.length > buckets[b] || it.length <= buckets[b] - slack[t])
                    fail_msg("%s bucket %lld: length %lld", tasks[t], (long long)buckets[b],
                             (long long)it.length);
                if (buckets[b] >= (slack[t] > 81 ? 4096 : 2048))
                    assert_true(it.length >= buckets[b] * 96 / 100);
                if (depthless)
                    assert_null(json_object_get(it.meta, "depth"));
                else
                    seen[depth_of(&it)]++;
                assert_true(ps_exact_match(it.reference, it.reference) == 1.0);
                double s;
                assert_int_equal(run.suite->score(&run, &it, it.reference, &s, NULL), 0);
                assert_true(s == 1.0);
                ps_item_clear(&it);
            }
            for (int d = 0; d <= 100; d += 10)
                assert_int_equal(seen[d], depthless ? 0 : 2);
            ps_run_close(&run);
        }
}

static void test_determinism(void **state)
{
    for (size_t t = 0; t < N_TASKS; t++) {
        ps_run_t run;
        ps_item_t a[6], b;
        open_run(&run, tasks[t], NULL, 2048);
        for (int i = 0; i < 6; i++)
            gen(&run, (uint64_t)i, &a[i]);
        for (int i = 5; i >= 0; i--) {
            gen(&run, (uint64_t)i, &b);
            assert_string_equal(a[i].prompt, b.prompt);
            assert_string_equal(a[i].reference, b.reference);
            assert_true(a[i].prompt_hash == b.prompt_hash);
            ps_item_clear(&b);
        }
        assert_string_not_equal(a[0].reference, a[1].reference);
        for (int i = 0; i < 6; i++)
            ps_item_clear(&a[i]);
        ps_run_close(&run);
    }
}

static void test_scorers(void **state)
{
    assert_true(ps__lc_string_match_all("The number is 1234567.", "1234567") == 1.0);
    assert_true(ps__lc_string_match_all("ABCDEF-12", "abcdef-12") == 1.0);
    assert_true(ps__lc_string_match_all("abcdef-12", "ABCDEF-12") == 1.0);
    assert_true(ps__lc_string_match_all("123456", "1234567") == 0.0);
    assert_true(ps__lc_string_match_all("", "1234567") == 0.0);
    assert_true(ps__lc_string_match_all("anything", "") == 0.0);
    assert_true(ps__lc_string_match_all("one 111 two", "111\n222") == 0.5);
    assert_true(ps__lc_string_match_all("222 and 111", " 111 \n\n222\n") == 1.0);
    assert_true(ps__lc_string_match_all(NULL, "1") == 0.0);
    assert_true(ps__lc_first_int_match("The passkey is 12345.", "12345") == 1.0);
    assert_true(ps__lc_first_int_match("123456", "12345") == 0.0);
    assert_true(ps__lc_first_int_match(" 012345 and 9", "12345") == 1.0);
    assert_true(ps__lc_first_int_match("7 then 12345", "12345") == 0.0);
    assert_true(ps__lc_first_int_match("no digits", "12345") == 0.0);
    assert_true(ps__lc_first_int_match("99999999999999999999999", "12345") == 0.0);
    assert_true(ps__lc_first_int_match("12345", "12a") == 0.0);
    /* the suite routes passkey to first-int, the others to string_match_all */
    ps_run_t run;
    ps_item_t it;
    double s;
    open_run(&run, "passkey", NULL, 1024);
    gen(&run, 0, &it);
    char pred[64];
    snprintf(pred, sizeof pred, "%s0", it.reference);
    assert_int_equal(run.suite->score(&run, &it, pred, &s, NULL), 0);
    assert_true(s == 0.0);
    ps_item_clear(&it);
    ps_run_close(&run);
    open_run(&run, "niah_single_3", NULL, 1024);
    gen(&run, 0, &it);
    snprintf(pred, sizeof pred, "It is %s!", it.reference);
    for (char *p = pred; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
    assert_int_equal(run.suite->score(&run, &it, pred, &s, NULL), 0);
    assert_true(s == 1.0);
    ps_item_clear(&it);
    ps_run_close(&run);
}

static void expect_err(const char *task, const char *params, const char *field)
{
    pb_test_param_error(lc(), task, params, field);
}

static void test_params(void **state)
{
    expect_err("passkey", "{\"lengths\": [100]}", "lengths");
    expect_err("passkey", "{\"lengths\": [2048, 2000000]}", "lengths");
    expect_err("passkey", "{\"lengths\": []}", "lengths");
    expect_err("passkey", "{\"lengths\": \"big\"}", "lengths");
    expect_err("passkey", "{\"depths\": 1}", "depths");
    expect_err("passkey", "{\"depths\": 41}", "depths");
    expect_err("kv_retrieval", "{\"threshold\": 0}", "threshold");
    expect_err("kv_retrieval", "{\"threshold\": 1.5}", "threshold");
    expect_err("kv_retrieval", "{\"keys\": 4}", "keys");
    expect_err("niah_multiquery", "{\"lengths\": [512, 2048]}", "lengths");
    expect_err("niah_multivalue", "{\"lengths\": 1023}", "lengths");
    expect_err("niah_multikey_1", "{\"lengths\": [600]}", "lengths");
    expect_err("common_words", "{\"lengths\": [1000]}", "lengths");
    expect_err("frequent_words", "{\"lengths\": [512]}", "lengths");
    expect_err("altered_numeric_qa", "{\"lengths\": [511]}", "lengths");
    /* the error says what a length counts */
    {
        json_t *bad = pb_test_json("{\"lengths\": [100]}"), *none = NULL;
        pb_err_t e = {{0}, {0}};
        assert_int_equal(lc()->normalize("passkey", bad, &none, &e), PB_EINVAL);
        assert_non_null(strstr(e.msg, "length units (tokens under the model's tokenizer, else "
                                      "characters)"));
        json_decref(bad);
    }

    json_t *in = pb_test_json("{\"lengths\": [4096, 1024, 4096]}"), *out = NULL;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(lc()->normalize("niah_single_1", in, &out, &err), 0);
    char *s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(6));
    assert_string_equal(s, "{\"depths\":11,\"lengths\":[1024,4096],\"threshold\":0.856}");
    free(s);
    int64_t *b;
    size_t n;
    assert_int_equal(lc()->buckets("niah_single_1", out, &b, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(b[0], 1024);
    assert_int_equal(b[1], 4096);
    free(b);
    json_decref(in);
    json_decref(out);
    assert_int_equal(lc()->normalize("passkey", NULL, &out, &err), 0);
    assert_int_equal(lc()->buckets("passkey", out, &b, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(b[4], 16384);
    free(b);
    json_decref(out);
    assert_string_equal(ps_task_unit(lc(), "kv_retrieval"), "chars");
    assert_string_equal(ps_task_unit(lc(), "niah_multiquery"), "chars");
    /* the schema's minimum follows the task */
    json_t *sc = lc()->schema("niah_multiquery");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sc, "lengths"), "min")),
                     1024);
    json_decref(sc);
    sc = lc()->schema("niah_multikey_3");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sc, "lengths"), "min")),
                     512);
    json_decref(sc);
    sc = lc()->schema("common_words");
    json_t *len = json_object_get(sc, "lengths");
    assert_int_equal(json_integer_value(json_object_get(len, "min")), 1024);
    assert_non_null(strstr(json_string_value(json_object_get(len, "description")),
                           "tokens under the model's tokenizer, else characters"));
    json_decref(sc);
    sc = lc()->schema("altered_numeric_qa");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sc, "lengths"), "min")),
                     512);
    json_decref(sc);
    assert_non_null(lc()->breakdown);
    assert_string_equal(lc()->breakdown[0], "depth");
}

static void test_aggregate(void **state)
{
    ps_bucket_stat_t st[] = {
        PB_TEST_STAT(4096, 10, 9), PB_TEST_STAT(1024, 10, 10), PB_TEST_STAT(2048, 10, 8.6),
        PB_TEST_STAT(8192, 10, 9.9)};
    json_t *p = pb_test_json("{\"lengths\": [1024, 2048, 4096, 8192], \"depths\": 11, "
                             "\"threshold\": 0.856}");
    json_t *agg = lc()->aggregate("passkey", p, st, 4);
    assert_non_null(agg);
    assert_int_equal(json_integer_value(json_object_get(agg, "effective_length")), 8192);
    st[0].score_sum = 8.5; /* 4096 fails: effective length stops at 2048 */
    json_decref(agg);
    agg = lc()->aggregate("passkey", p, st, 4);
    assert_int_equal(json_integer_value(json_object_get(agg, "effective_length")), 2048);
    assert_true(json_real_value(json_object_get(agg, "accuracy")) > 0.92);
    assert_true(json_real_value(json_object_get(agg, "threshold")) == 0.856);
    json_decref(agg);
    json_decref(p);
}

int pb_test_longctx(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passkey_structure), cmocka_unit_test(test_niah_structure),
        cmocka_unit_test(test_kv_structure),      cmocka_unit_test(test_multi_prose_structure),
        cmocka_unit_test(test_needle_lines_structure), cmocka_unit_test(test_vt_structure),
        cmocka_unit_test(test_lengths_and_depth_cycle),
        cmocka_unit_test(test_determinism),       cmocka_unit_test(test_scorers),
        cmocka_unit_test(test_params),            cmocka_unit_test(test_aggregate),
    };
    return cmocka_run_group_tests_name("longctx", tests, NULL, NULL) + pb__test_longctx_tasks();
}
