/* Unit tests for longctx's aggregation and QA tasks (suites/longctx_words.c,
 * longctx_altqa.c) and for sizing prompts in tokens: cwe's word counts and
 * answer, fwe's Zipf counts, AltQA's altered number at its depth and its
 * scorer, and every task's prompt at most its bucket and close to it
 * under test tokenizers, deterministically, in a bounded number of
 * measurements. */
#include "tests/unit/test_longctx.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites/suite_int.h"
#include "suites/longctx_int.h"

static const char *const all_tasks[] = {
    "passkey",         "niah_single_1",   "niah_single_2",   "niah_single_3",
    "kv_retrieval",    "niah_multikey_1", "niah_multikey_2", "niah_multikey_3",
    "niah_multivalue", "niah_multiquery", "variable_tracking", "common_words",
    "frequent_words",  "altered_numeric_qa"};
#define N_ALL (sizeof all_tasks / sizeof all_tasks[0])
/* A task's granularity in characters: one JSON record, needle line, filler
 * line, three cwe entries or a sentence (as in test_longctx.c). */
static const int64_t grain[N_ALL] = {24, 24, 24, 24, 81, 24, 67, 114, 24, 24, 89, 60, 24, 90};

static const ps_suite_t *lc(void)
{
    const ps_suite_t *s = ps_suite_find("longctx");
    assert_non_null(s);
    return s;
}

/* The shortest bucket of a task (the schema's minimum). */
static int64_t min_len(const char *task)
{
    json_t *sc = lc()->schema(task);
    int64_t m = json_integer_value(json_object_get(json_object_get(sc, "lengths"), "min"));
    json_decref(sc);
    return m;
}

/* Test tokenizers: whitespace-separated words; 3 tokens per 2 bytes (more
 * tokens than characters); or one that fails. calls counts measurements. */
typedef struct ttok {
    int kind; /* 0 words, 1 three halves, 2 fails */
    int64_t calls;
} ttok_t;

static int ttok_count(void *ctx, const char *text, size_t len, int64_t *n)
{
    ttok_t *t = ctx;
    t->calls++;
    *n = 0;
    if (t->kind == 2)
        return PB_EBACKEND;
    if (t->kind == 1) {
        *n = (int64_t)(len * 3 + 1) / 2;
        return 0;
    }
    for (size_t i = 0; i < len;) {
        while (i < len && isspace((unsigned char)text[i]))
            i++;
        if (i < len)
            (*n)++;
        while (i < len && !isspace((unsigned char)text[i]))
            i++;
    }
    return 0;
}

static int64_t words(const char *s)
{
    ttok_t t = {0, 0};
    int64_t n;
    ttok_count(&t, s, strlen(s), &n);
    return n;
}

/* Generate item idx; its length must be meta's and, without a tokenizer,
 * the prompt's characters. */
static void gen(const ps_run_t *run, uint64_t idx, ps_item_t *it)
{
    pb_test_gen(run, idx, it);
    assert_int_equal(json_integer_value(json_object_get(it->meta, "length")), it->length);
    if (run->tok == NULL)
        assert_int_equal(it->length, (int64_t)strlen(it->prompt));
}

static double score(const ps_run_t *run, const ps_item_t *it, const char *pred)
{
    double s = -1;
    assert_int_equal(run->suite->score(run, it, pred, &s, NULL), 0);
    return s;
}

/* Occurrences of each distinct word among n list words. */
typedef struct wcount {
    char w[16];
    int n;
} wcount_t;

static int tally(wcount_t *c, int *nc, int max, const char *w, size_t len)
{
    assert_true(len > 0 && len < 16);
    for (int i = 0; i < *nc; i++)
        if (strlen(c[i].w) == len && memcmp(c[i].w, w, len) == 0)
            return ++c[i].n;
    assert_true(*nc < max);
    memcpy(c[*nc].w, w, len);
    c[*nc].w[len] = '\0';
    c[(*nc)++].n = 1;
    return 1;
}

static int count_of(const wcount_t *c, int nc, const char *w)
{
    for (int i = 0; i < nc; i++)
        if (strcmp(c[i].w, w) == 0)
            return c[i].n;
    return 0;
}

static void test_cwe_structure(void **state)
{
    static const char head[] = "Below is a numbered list of words. In these words, some appear "
                               "more often than others. Memorize the ones that appear most "
                               "often.\n";
    static const char tail[] = "\nQuestion: What are the 10 most common words in the above "
                               "list? Answer: The top 10 words that appear most often in the "
                               "list are:";
    static const int64_t buckets[] = {2048, 8192};
    static wcount_t c[4096];
    for (int b = 0; b < 2; b++) {
        ps_run_t run;
        ps_item_t it;
        int cr = b ? 30 : 6, ur = b ? 3 : 1;
        pb_test_open_run(&run, lc(), "common_words", "{\"lengths\": [2048, 8192]}", buckets[b],
                         42);
        for (uint64_t i = 0; i < 3; i++) {
            gen(&run, i, &it);
            assert_null(json_object_get(it.meta, "depth"));
            assert_memory_equal(it.prompt, head, strlen(head));
            size_t end = strlen(it.prompt) - strlen(tail);
            assert_string_equal(it.prompt + end, tail);
            /* "1. w1 2. w2 ...": numbered in order, words tallied */
            int nc = 0, k = 0;
            for (const char *p = it.prompt + strlen(head); p < it.prompt + end; k++) {
                char *after;
                assert_int_equal(strtol(p, &after, 10), k + 1);
                assert_memory_equal(after, ". ", 2);
                size_t wl = strcspn(after + 2, " \n");
                tally(c, &nc, 4096, after + 2, wl);
                p = after + 2 + wl + (after[2 + wl] == ' ');
            }
            /* exactly the reference's ten words repeat cr times, the rest ur */
            int common = 0, lines = 0;
            for (int w = 0; w < nc; w++) {
                assert_true(c[w].n == cr || c[w].n == ur);
                common += c[w].n == cr;
            }
            assert_int_equal(common, 10);
            assert_int_equal(k, 10 * cr + (nc - 10) * ur);
            assert_true(nc > 20); /* uncommon words fill the bucket */
            for (const char *r = it.reference; *r; lines++) {
                char w[16];
                size_t n = strcspn(r, "\n");
                assert_true(n < sizeof w);
                memcpy(w, r, n);
                w[n] = '\0';
                assert_int_equal(count_of(c, nc, w), cr);
                r += n + (r[n] == '\n');
            }
            assert_int_equal(lines, 10);
            assert_true(it.length <= buckets[b] && it.length > buckets[b] - 3 * 18);
            assert_true(score(&run, &it, it.reference) == 1.0);
            ps_item_clear(&it);
        }
        ps_run_close(&run);
    }
}

static void test_cwe_vocab(void **state)
{
    size_t n = 0;
    for (; ps__lc_cwe_word(n); n++) {
        const char *w = ps__lc_cwe_word(n);
        for (const char *p = w; *p; p++)
            assert_true(*p >= 'a' && *p <= 'z');
        for (size_t j = 0; j < n; j++)
            assert_string_not_equal(w, ps__lc_cwe_word(j));
        /* no built-in word has the generated words' shape */
        int shaped = strlen(w) == 8;
        for (int i = 0; shaped && i < 8; i++)
            shaped = strchr(i % 2 ? "aeiou" : "bdfgklmnprstvz", w[i]) != NULL;
        assert_false(shaped);
    }
    assert_true(n >= 300);
    char a[9], b[9];
    ps__lc_gen_word(0, a);
    assert_string_equal(a, "babababa");
    ps__lc_gen_word(PS_LC_GEN_WORDS - 1, b);
    assert_string_equal(b, "zuzuzuzu");
    for (uint32_t code = 1; code < 5000; code++) { /* one-to-one on a sample */
        ps__lc_gen_word(code, b);
        assert_string_not_equal(a, b);
        ps__lc_gen_word(code * 4801u % PS_LC_GEN_WORDS, a);
        ps__lc_gen_word(code * 4801u % PS_LC_GEN_WORDS + 1, b);
        assert_string_not_equal(a, b);
        ps__lc_gen_word(0, a);
    }
}

static void test_fwe_structure(void **state)
{
    static const char head[] = "Read the following coded text and track the frequency of each "
                               "coded word. Find the three most frequently appeared coded "
                               "words. ";
    static const char tail[] = "\nQuestion: Do not provide any explanation. Please ignore the "
                               "dots '....'. What are the three most frequently appeared words "
                               "in the above coded text? Answer: According to the coded text "
                               "above, the three most frequently appeared words are:";
    static wcount_t c[512];
    ps_run_t run;
    ps_item_t it;
    pb_test_open_run(&run, lc(), "frequent_words", "{\"lengths\": [4096]}", 4096, 42);
    for (uint64_t i = 0; i < 3; i++) {
        gen(&run, i, &it);
        assert_null(json_object_get(it.meta, "depth"));
        assert_memory_equal(it.prompt, head, strlen(head));
        size_t end = strlen(it.prompt) - strlen(tail);
        assert_string_equal(it.prompt + end, tail);
        int nc = 0, total = 0;
        for (const char *p = it.prompt + strlen(head); p < it.prompt + end; total++) {
            size_t wl = strcspn(p, " \n");
            tally(c, &nc, 512, p, wl);
            if (strncmp(p, "...", wl) != 0) /* six lowercase letters */
                for (size_t k = 0; k < wl; k++)
                    assert_true(wl == 6 && islower((unsigned char)p[k]));
            p += wl + (p[wl] == ' ');
        }
        /* the dots are rank 1 (6/pi^2 of the words), the answer ranks 2-4 */
        int dots = count_of(c, nc, "..."), ans[3], lines = 0;
        assert_true(dots > total / 2 && dots < total * 2 / 3);
        for (const char *r = it.reference; *r; lines++) {
            char w[16];
            size_t n = strcspn(r, "\n");
            assert_int_equal(n, 6);
            memcpy(w, r, n);
            w[n] = '\0';
            ans[lines] = count_of(c, nc, w);
            r += n + (r[n] == '\n');
        }
        assert_int_equal(lines, 3);
        assert_true(ans[0] >= ans[1] && ans[1] >= ans[2]);
        /* Zipf alpha 2: rank 2 has a quarter of rank 1's count */
        assert_true(ans[0] >= dots / 4 - 1 && ans[0] <= dots / 4 + 1);
        int above = 0; /* only the three answers reach the third's count */
        for (int w = 0; w < nc; w++)
            above += strcmp(c[w].w, "...") != 0 && c[w].n >= ans[2];
        assert_int_equal(above, 3);
        assert_true(it.length <= 4096 && it.length > 4096 - 32);
        assert_true(score(&run, &it, it.reference) == 1.0);
        ps_item_clear(&it);
    }
    ps_run_close(&run);
}

/* The first integer at or after p, as text. */
static void int_at(const char *p, char out[32])
{
    while (*p && !isdigit((unsigned char)*p))
        p++;
    size_t n = strspn(p, "0123456789");
    assert_true(n > 0 && n < 32);
    memcpy(out, p, n);
    out[n] = '\0';
}

static int occurrences(const char *hay, const char *s)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, s)) != NULL; p++)
        n++;
    return n;
}

static void test_altqa_structure(void **state)
{
    static const char head[] = "Answer the question based on the given documents. Only give me "
                               "the answer and do not output any other words.\n\nThe following "
                               "are given documents.\n\n";
    static const char instr[] = "\n\nAnswer the question based on the given documents. Only "
                                "give me the answer and do not output any other words.\n\n"
                                "Question: ";
    ps_run_t run;
    ps_item_t it;
    int years = 0, counts = 0;
    pb_test_open_run(&run, lc(), "altered_numeric_qa", "{\"lengths\": [4096], \"depths\": 5}",
                     4096, 42);
    for (uint64_t i = 0; i < 30; i++) {
        gen(&run, i, &it);
        assert_int_equal(json_integer_value(json_object_get(it.meta, "depth")), (int)(i % 5) * 25);
        assert_memory_equal(it.prompt, head, strlen(head));
        const char *q = strstr(it.prompt, instr);
        assert_non_null(q);
        assert_non_null(strstr(q, "?"));
        assert_string_equal(it.prompt + strlen(it.prompt) - 8, " Answer:");
        char ans[32], orig[32];
        int_at(it.reference, ans);
        snprintf(orig, sizeof orig, "%s", json_string_value(json_object_get(it.meta, "original")));
        /* the altered number is stated twice, the true one nowhere */
        assert_int_equal(occurrences(it.prompt, ans), 2);
        assert_null(strstr(it.prompt, orig));
        assert_string_not_equal(ans, orig);
        if (strstr(q, "In what year")) {
            long dy = atol(ans) - atol(orig);
            assert_true(dy != 0 && dy >= -10 && dy <= 10);
            assert_string_equal(it.reference, ans);
            years++;
        } else {
            assert_int_equal(strlen(ans), strlen(orig));
            assert_true(ans[0] != '0');
            if (strlen(ans) >= 4) /* plus the comma-grouped form */
                assert_non_null(strchr(it.reference, ','));
            counts++;
        }
        /* the restatement names the place of the question */
        char again[96];
        snprintf(again, sizeof again, " give the figure %s again.", ans);
        const char *re = strstr(it.prompt, again);
        assert_non_null(re);
        /* the fact sits at the depth, by sentences of similar lengths */
        const char *body = it.prompt + strlen(head);
        double f = (double)(strstr(it.prompt, ans) - body) / (double)(q - body);
        double want = (double)(i % 5) / 4;
        if (f < want - 0.08 || f > want + 0.08)
            fail_msg("altqa item %d: fact at %.3f, want %.2f", (int)i, f, want);
        assert_true(it.length <= 4096 && it.length > 4096 - 90);
        /* string_match_part: any one form, case and surrounding text free */
        char pred[96];
        assert_true(score(&run, &it, it.reference) == 1.0);
        snprintf(pred, sizeof pred, "It is %s.", ans);
        assert_true(score(&run, &it, pred) == 1.0);
        assert_true(score(&run, &it, orig) == 0.0);
        ps_item_clear(&it);
    }
    assert_true(years > 5 && counts > 5);
    ps_run_close(&run);
}

static void test_string_match_part(void **state)
{
    assert_true(ps__lc_string_match_part("It was 38410.", "38410\n38,410") == 1.0);
    assert_true(ps__lc_string_match_part("It was 38,410.", "38410\n38,410") == 1.0);
    assert_true(ps__lc_string_match_part("It was 38 410.", "38410\n38,410") == 0.0);
    assert_true(ps__lc_string_match_part("PARIS", " paris \n\nlyon\n") == 1.0);
    assert_true(ps__lc_string_match_part("lyon and paris", "paris\nlyon") == 1.0);
    assert_true(ps__lc_string_match_part("", "1747") == 0.0);
    assert_true(ps__lc_string_match_part("1747", "") == 0.0);
    assert_true(ps__lc_string_match_part("1747", "\n \n") == 0.0);
    assert_true(ps__lc_string_match_part(NULL, "1747") == 0.0);
    assert_true(ps__lc_string_match_part("1747", NULL) == 0.0);
    assert_true(ps__lc_string_match_part("174", "1747") == 0.0);
    /* where match_all gives partial credit, match_part gives all */
    assert_true(ps__lc_string_match_all("one 111", "111\n222") == 0.5);
    assert_true(ps__lc_string_match_part("one 111", "111\n222") == 1.0);
}

/* Task t under tokenizer kind at bucket: each item's length is the
 * tokenizer's count of its prompt, at most the bucket and within 2% of it
 * or one grain (20 words at least), the same in any order, with few
 * measurements. */
static void check_fit(int kind, size_t t, int64_t bucket, uint64_t n_items)
{
    const char *task = all_tasks[t];
    ttok_t tk = {kind, 0};
    ps_tokenizer_t tok = {&tk, ttok_count, 0};
    ps_run_t run;
    ps_item_t it[4], again;
    char params[64];
    assert_true(n_items <= 4);
    snprintf(params, sizeof params, "{\"lengths\": [%lld], \"depths\": 3}", (long long)bucket);
    pb_test_open_run(&run, lc(), task, params, bucket, 42);
    run.tok = &tok;
    assert_string_equal(ps_run_unit(&run), "tokens");
    int64_t slack = kind ? grain[t] * 3 / 2 + 1 : 20;
    if (slack < bucket / 50)
        slack = bucket / 50;
    for (uint64_t i = 0; i < n_items; i++) {
        gen(&run, i, &it[i]);
        int64_t n = kind ? ((int64_t)strlen(it[i].prompt) * 3 + 1) / 2 : words(it[i].prompt);
        assert_int_equal(it[i].length, n);
        if (n > bucket || n < bucket - slack)
            fail_msg("%s tokenizer %d bucket %lld item %d: %lld tokens", task, kind,
                     (long long)bucket, (int)i, (long long)n);
        assert_true(score(&run, &it[i], it[i].reference) == 1.0);
    }
    /* a render per measurement, a few per item */
    if (tk.calls > 12 * (int64_t)n_items || (bucket >= 4096 && tk.calls > 5 * (int64_t)n_items))
        fail_msg("%s bucket %lld: %lld measurements for %d items", task, (long long)bucket,
                 (long long)tk.calls, (int)n_items);
    assert_int_equal(tok.failed, 0);
    for (uint64_t i = n_items; i-- > 0;) {
        gen(&run, i, &again);
        assert_string_equal(again.prompt, it[i].prompt);
        assert_string_equal(again.reference, it[i].reference);
        ps_item_clear(&again);
        ps_item_clear(&it[i]);
    }
    ps_run_close(&run);
}

static void test_tokens_fit(void **state)
{
    static const int64_t buckets[] = {512, 1024, 4096, 32768};
    for (size_t t = 0; t < N_ALL; t++)
        for (size_t b = 0; b < 4; b++)
            if (buckets[b] >= min_len(all_tasks[t]))
                check_fit(0, t, buckets[b], buckets[b] > 4096 ? 2 : 4);
    /* more tokens than characters */
    for (size_t t = 0; t < N_ALL; t++)
        check_fit(1, t, 2048, 2);
}

static void test_tokens_differ_from_chars(void **state)
{
    /* the same bucket in tokens holds several times the characters */
    ttok_t tk = {0, 0};
    ps_tokenizer_t tok = {&tk, ttok_count, 0};
    ps_run_t run;
    ps_item_t a, b;
    pb_test_open_run(&run, lc(), "niah_single_2", "{\"lengths\": [2048]}", 2048, 42);
    gen(&run, 0, &a);
    assert_string_equal(ps_run_unit(&run), "chars");
    run.tok = &tok;
    gen(&run, 0, &b);
    assert_true(strlen(b.prompt) > 3 * strlen(a.prompt));
    assert_true(a.length == (int64_t)strlen(a.prompt) && b.length <= 2048);
    ps_item_clear(&a);
    ps_item_clear(&b);
    /* a failing tokenizer is recorded for the runner, not hidden */
    tk.kind = 2;
    tok.failed = 0;
    if (run.suite->generate(&run, 1, &a) == 0)
        ps_item_clear(&a);
    assert_int_equal(tok.failed, PB_EBACKEND);
    ps_run_close(&run);
}

static void test_new_tasks_determinism(void **state)
{
    for (size_t t = N_ALL - 3; t < N_ALL; t++) {
        ps_run_t run;
        ps_item_t a[4], b;
        pb_test_open_run(&run, lc(), all_tasks[t], NULL, 4096, 7);
        for (int i = 0; i < 4; i++)
            gen(&run, (uint64_t)i, &a[i]);
        for (int i = 3; i >= 0; i--) {
            gen(&run, (uint64_t)i, &b);
            assert_string_equal(a[i].prompt, b.prompt);
            assert_string_equal(a[i].reference, b.reference);
            assert_true(a[i].prompt_hash == b.prompt_hash);
            ps_item_clear(&b);
        }
        assert_string_not_equal(a[0].prompt, a[1].prompt);
        assert_string_not_equal(a[0].reference, a[1].reference);
        for (int i = 0; i < 4; i++)
            ps_item_clear(&a[i]);
        ps_run_close(&run);
    }
}

int pb__test_longctx_tasks(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cwe_structure),     cmocka_unit_test(test_cwe_vocab),
        cmocka_unit_test(test_fwe_structure),     cmocka_unit_test(test_altqa_structure),
        cmocka_unit_test(test_string_match_part), cmocka_unit_test(test_tokens_fit),
        cmocka_unit_test(test_tokens_differ_from_chars),
        cmocka_unit_test(test_new_tasks_determinism),
    };
    return cmocka_run_group_tests_name("longctx_tasks", tests, NULL, NULL);
}
