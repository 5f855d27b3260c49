/* Unit tests for the retrieval suite: the IR metrics against hand-computed
 * values on rankings with ties (trec_eval conventions), Kendall tau-b with
 * ties, params, deterministic corpus and queries (byte-identical across
 * runs and item order), the bm25/hashbow baselines, and whole tasks through
 * the runner: oracle 1.0, random near the floor, bm25 and hashbow between;
 * a small hand-made dataset whose bm25 metrics are checked by hand. */
#include "tests/unit/unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/sha256.h"
#include "common/util.h"
#include "suites/suite_int.h"
#include "worker/backend.h"
#include "worker/runner.h"

static const ps_suite_t *rsuite(void) { return ps_suite_find("retrieval"); }

#define EPS 1e-9

/* cmocka's float comparison rounds to float: compare doubles here. */
#define assert_double_equal(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

/* ---- metrics ---- */

/* Five retrieved documents, three tied at 2.0, plus a relevant one (grade 2)
 * never retrieved: qrels grades {2, 1, 1, 2}, 4 relevant. */
static void sample_run(ps_ir_doc_t *r)
{
    r[0] = (ps_ir_doc_t){"d1", 3.0, 0};
    r[1] = (ps_ir_doc_t){"d2", 2.0, 2};
    r[2] = (ps_ir_doc_t){"d3", 2.0, 0};
    r[3] = (ps_ir_doc_t){"d4", 2.0, 1};
    r[4] = (ps_ir_doc_t){"d5", 1.0, 1};
}

static void test_sort_ties_by_docno_descending(void **state)
{
    (void)state;
    ps_ir_doc_t r[5];
    sample_run(r);
    ps__ir_sort(r, 5);
    /* trec_eval: score descending, ties by docno descending: d4, d3, d2. */
    const char *want[] = {"d1", "d4", "d3", "d2", "d5"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(r[i].docno, want[i]);
}

static void test_metrics_hand_computed(void **state)
{
    (void)state;
    ps_ir_doc_t r[5];
    const int qrels[] = {2, 1, 1, 2};
    sample_run(r);
    ps__ir_sort(r, 5);
    /* Sorted grades: 0, 1, 0, 2, 1 (ranks 1..5).
     * DCG@10 = 1/log2(3) + 2/log2(5) + 1/log2(6)
     *        = 0.630929753571457 + 0.861353116146786 + 0.386852807234542
     *        = 1.879135676952785
     * IDCG@10 (2, 2, 1, 1) = 2 + 2/log2(3) + 1/log2(4) + 1/log2(5)
     *        = 2 + 1.261859507142915 + 0.5 + 0.430676558073393 = 4.192536065216308
     * nDCG@10 = 0.4482097822707301. */
    assert_double_equal(ps__ir_ndcg(r, 5, qrels, 4, 10), 0.4482097822707301, EPS);
    /* nDCG@3 = (1/log2(3)) / (2 + 2/log2(3) + 1/2) = 0.16771752171325524. */
    assert_double_equal(ps__ir_ndcg(r, 5, qrels, 4, 3), 0.16771752171325524, EPS);
    /* First relevant (d4) at rank 2. */
    assert_double_equal(ps__ir_rr(r, 5, 10), 0.5, EPS);
    assert_double_equal(ps__ir_rr(r, 5, 1), 0.0, EPS);
    /* Recall over all 4 relevant: top 1 none, top 3 d4, top 10 d4, d2, d5. */
    assert_double_equal(ps__ir_recall(r, 5, 4, 1), 0.0, EPS);
    assert_double_equal(ps__ir_recall(r, 5, 4, 3), 0.25, EPS);
    assert_double_equal(ps__ir_recall(r, 5, 4, 10), 0.75, EPS);
    /* AP = (1/2 + 2/4 + 3/5) / 4 = 0.4 (the unretrieved one adds 0). */
    assert_double_equal(ps__ir_ap(r, 5, 4), 0.4, EPS);

    /* Ties broken the other way (d2 first) would give another nDCG: the
     * order matters. With d2, d3, d4 at ranks 2-4: DCG = 2/log2(3) +
     * 1/log2(5) + 1/log2(6) = 2.079... != 1.879... */
    ps_ir_doc_t asc[5] = {r[0], r[3], r[2], r[1], r[4]};
    assert_true(fabs(ps__ir_ndcg(asc, 5, qrels, 4, 10) - 0.4482097822707301) > 0.01);
}

static void test_metrics_edge_cases(void **state)
{
    (void)state;
    ps_ir_doc_t r[2] = {{"d1", 1, 0}, {"d2", 0.5, 0}};
    const int none[] = {0};
    /* No relevant documents: every metric 0, not a division by zero. */
    assert_double_equal(ps__ir_ndcg(r, 2, none, 0, 10), 0, EPS);
    assert_double_equal(ps__ir_recall(r, 2, 0, 10), 0, EPS);
    assert_double_equal(ps__ir_ap(r, 2, 0), 0, EPS);
    /* Perfect ranking of grades 2, 1: nDCG 1, AP 1. */
    ps_ir_doc_t p[3] = {{"a", 3, 2}, {"b", 2, 1}, {"c", 1, 0}};
    const int g[] = {1, 2};
    assert_double_equal(ps__ir_ndcg(p, 3, g, 2, 10), 1.0, EPS);
    assert_double_equal(ps__ir_ap(p, 3, 2), 1.0, EPS);
    /* Negative grades gain nothing and are not relevant. */
    ps_ir_doc_t n[2] = {{"a", 2, -1}, {"b", 1, 1}};
    const int gn[] = {-1, 1};
    assert_double_equal(ps__ir_ndcg(n, 2, gn, 2, 10), (1 / log2(3.0)) / 1.0, EPS);
    assert_double_equal(ps__ir_rr(n, 2, 10), 0.5, EPS);
}

static void test_tau_b_with_ties(void **state)
{
    (void)state;
    /* x = 1 2 2 3 4, y = 1 3 2 2 5. Pairs: (0,1)..(0,4) concordant (4);
     * (1,2) tied in x only; (1,3) discordant; (1,4) concordant; (2,3) tied
     * in y only; (2,4), (3,4) concordant. P = 7, Q = 1, T = 1, U = 1:
     * tau_b = 6 / sqrt(9 * 9) = 2/3. */
    const double x[] = {1, 2, 2, 3, 4}, y[] = {1, 3, 2, 2, 5};
    assert_double_equal(ps__ir_tau_b(x, y, 5), 2.0 / 3.0, EPS);
    /* A pair tied in both is left out: (0,1) here; (0,2), (1,2) concordant. */
    const double a[] = {1, 1, 2}, b[] = {5, 5, 6};
    assert_double_equal(ps__ir_tau_b(a, b, 3), 1.0, EPS);
    /* Reversed order: -1; x = 1 2 3, y = 3 1 2: P = 1, Q = 2: -1/3. */
    const double c[] = {3, 2, 1}, d[] = {3, 1, 2};
    assert_double_equal(ps__ir_tau_b(a + 1, (const double[]){7, 6}, 2), -1.0, EPS);
    assert_double_equal(ps__ir_tau_b((const double[]){1, 2, 3}, d, 3), -1.0 / 3.0, EPS);
    /* Undefined (constant input, or under two items): NAN, as scipy. */
    assert_true(isnan(ps__ir_tau_b(c, (const double[]){4, 4, 4}, 3)));
    assert_true(isnan(ps__ir_tau_b(c, d, 1)));
}

/* ---- params ---- */

static void expect_bad(const char *params, const char *field)
{
    pb_test_param_error(rsuite(), "synthetic", params, field);
}

static void test_params(void **state)
{
    (void)state;
    json_t *n = pb_test_norm(rsuite(), "synthetic", NULL);
    json_t *want = pb_test_json("{\"corpus_sizes\": [1000, 10000], \"hard_negatives\": 5,"
                                " \"easy_negatives\": 16, \"pool\": 200}");
    assert_true(json_equal(n, want));
    json_decref(n);
    json_decref(want);
    n = pb_test_norm(rsuite(), "synthetic", "{\"corpus_sizes\": [5000, 100]}");
    int64_t *b = NULL;
    size_t nb = 0;
    assert_int_equal(rsuite()->buckets("synthetic", n, &b, &nb), 0);
    assert_int_equal(nb, 2);
    assert_int_equal(b[0], 100);
    assert_int_equal(b[1], 5000);
    free(b);
    json_decref(n);
    expect_bad("{\"corpus_sizes\": [50]}", "corpus_sizes");
    expect_bad("{\"corpus_sizes\": [100, 100]}", "corpus_sizes");
    expect_bad("{\"corpus_sizes\": []}", "corpus_sizes");
    expect_bad("{\"hard_negatives\": 1}", "hard_negatives");
    expect_bad("{\"easy_negatives\": 65}", "easy_negatives");
    expect_bad("{\"pool\": 10}", "pool");
    expect_bad("{\"depth\": 10}", "depth");
    assert_null(rsuite()->schema("nope"));
}

/* ---- generation ---- */

static uint64_t corpus_hash(const ps_run_t *run)
{
    const ps_corpus_t *c = rsuite()->corpus(run);
    uint64_t h = PB_HASH_INIT;
    for (size_t i = 0; i < c->n; i++) {
        h = pb_hash_str(h, c->docno[i]);
        h = pb_hash_str(h, c->text[i]);
    }
    return h;
}

static char *item_text(const ps_item_t *it)
{
    char *meta = json_dumps(it->meta, JSON_COMPACT | JSON_SORT_KEYS);
    size_t n = strlen(it->prompt) + strlen(it->reference) + strlen(meta) + 8;
    char *s = malloc(n);
    snprintf(s, n, "%s\n%s\n%s", it->prompt, it->reference, meta);
    free(meta);
    return s;
}

static void test_generation_deterministic(void **state)
{
    (void)state;
    ps_run_t a, b, c;
    enum { N = 12 };
    char *ta[N];
    pb_test_open_run(&a, rsuite(), "synthetic", "{\"corpus_sizes\": [500]}", 500, 42);
    pb_test_open_run(&b, rsuite(), "synthetic", "{\"corpus_sizes\": [500]}", 500, 42);
    pb_test_open_run(&c, rsuite(), "synthetic", "{\"corpus_sizes\": [500]}", 500, 43);
    assert_int_equal(rsuite()->corpus(&a)->n, 500);
    assert_true(corpus_hash(&a) == corpus_hash(&b));
    assert_true(corpus_hash(&a) != corpus_hash(&c));
    for (int i = 0; i < N; i++) {
        ps_item_t it;
        pb_test_gen(&a, (uint64_t)i, &it);
        ta[i] = item_text(&it);
        ps_item_clear(&it);
    }
    /* The other run, items in reverse order: byte-identical. */
    for (int i = N - 1; i >= 0; i--) {
        ps_item_t it;
        pb_test_gen(&b, (uint64_t)i, &it);
        char *t = item_text(&it);
        assert_string_equal(t, ta[i]);
        /* A query's qrels: best grade first, the anchor (grade 2) at least. */
        assert_true(strncmp(it.reference, "d", 1) == 0);
        assert_non_null(strstr(it.reference, " 2"));
        assert_true(json_integer_value(json_object_get(it.meta, "n_rel")) >= 1);
        free(t);
        ps_rank_sets_t s;
        assert_int_equal(rsuite()->rank_sets(&b, &it, &s), 0);
        assert_int_equal(s.n_hard, 5);
        assert_int_equal(s.n_easy, 16);
        assert_int_equal(s.n_pool, 200);
        /* The sets are distinct documents of the pool. */
        for (size_t x = 0; x < s.n_pool; x++)
            for (size_t y = x + 1; y < s.n_pool; y++)
                assert_true(s.pool[x] != s.pool[y]);
        ps_rank_sets_clear(&s);
        ps_item_clear(&it);
    }
    for (int i = 0; i < N; i++)
        free(ta[i]);
    ps_run_close(&a);
    ps_run_close(&b);
    ps_run_close(&c);
}

/* score_ranking on hand-made rankings of a real query: the qrels order is
 * perfect, the reverse is not; the prediction is the top 10 docnos. */
static void test_score_ranking(void **state)
{
    (void)state;
    ps_run_t run;
    ps_item_t it;
    pb_test_open_run(&run, rsuite(), "synthetic", "{\"corpus_sizes\": [500]}", 500, 9);
    pb_test_gen(&run, 3, &it);
    const ps_corpus_t *co = rsuite()->corpus(&run);
    uint32_t docs[64];
    double sc[64], m[PS_MAX_METRICS] = {0}, score = -1;
    size_t n = 0;
    /* Parse the reference ("docno grade" lines) into a ranking by grade. */
    for (const char *p = it.reference; *p && n < 64;) {
        unsigned d;
        int g;
        assert_int_equal(sscanf(p, "d%u %d", &d, &g), 2);
        assert_true(d < co->n);
        docs[n] = d;
        sc[n++] = g;
        p = strchr(p, '\n');
        p = p ? p + 1 : "";
    }
    ps_ranking_t r = {.docs = docs, .scores = sc, .n = n};
    char *pred = NULL;
    assert_int_equal(rsuite()->score_ranking(&run, &it, &r, &pred, &score, m), 0);
    assert_double_equal(score, 1.0, EPS);
    assert_double_equal(m[0], 1.0, EPS); /* ndcg@10 */
    assert_double_equal(m[1], 1.0, EPS); /* mrr@10 */
    assert_double_equal(m[5], 1.0, EPS); /* map */
    assert_int_equal(strncmp(pred, co->docno[docs[0]], 7), 0);
    free(pred);
    /* The listwise scorer reads the same ranking from text. */
    assert_int_equal(rsuite()->score(&run, &it, it.reference, &score, m), 0);
    assert_double_equal(score, 1.0, EPS);
    /* Relevant documents scored lowest, among 20 others: nDCG far below 1. */
    uint32_t d2[84];
    double s2[84];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        d2[k] = docs[i];
        s2[k++] = -1.0 - (double)i;
    }
    for (uint32_t d = 0; k < n + 20 && d < co->n; d++) {
        int judged = 0;
        for (size_t i = 0; i < n; i++)
            judged |= docs[i] == d;
        if (!judged) {
            d2[k] = d;
            s2[k++] = 1.0;
        }
    }
    ps_ranking_t r2 = {.docs = d2, .scores = s2, .n = k};
    assert_int_equal(rsuite()->score_ranking(&run, &it, &r2, &pred, &score, m), 0);
    assert_true(score < 0.5);
    assert_double_equal(m[2], 0.0, EPS); /* recall@1 */
    free(pred);
    /* A document index outside the corpus is refused. */
    uint32_t bad = (uint32_t)co->n;
    ps_ranking_t r3 = {.docs = &bad, .scores = sc, .n = 1};
    assert_int_equal(rsuite()->score_ranking(&run, &it, &r3, &pred, &score, m), PB_EINVAL);
    assert_null(pred);
    ps_item_clear(&it);
    ps_run_close(&run);
}

/* ---- backends ---- */

static void test_bm25_and_hashbow(void **state)
{
    (void)state;
    const pb_backend_ops_t *bm = pb_backend_find("bm25"), *hb = pb_backend_find("hashbow");
    assert_non_null(bm);
    assert_non_null(hb);
    assert_non_null(bm->score_pairs);
    assert_null(bm->embed);
    assert_non_null(hb->embed);
    pb_backend_t *b = NULL;
    pb_err_t err = {{0}, {0}};
    json_t *spec = pb_test_json("{\"backend\": \"bm25\", \"k1\": 11}");
    assert_int_equal(bm->open(spec, 1, &b, &err), PB_EINVAL);
    assert_string_equal(err.field, "model.k1");
    json_decref(spec);
    spec = pb_test_json("{\"backend\": \"hashbow\", \"dim\": 4}");
    assert_int_equal(hb->open(spec, 1, &b, &err), PB_EINVAL);
    assert_string_equal(err.field, "model.dim");
    json_decref(spec);

    /* bm25: more query words, and rarer ones, score higher; none scores 0. */
    spec = pb_test_json("{\"backend\": \"bm25\"}");
    assert_int_equal(bm->open(spec, 1, &b, &err), 0);
    ps_item_t q = {.prompt = "Apple banana"};
    const char *docs[] = {"apple banana cherry", "apple cherry cherry", "cherry date",
                          "banana date date"};
    double s[4];
    assert_int_equal(bm->score_pairs(b, &q, docs, 4, s, &err), 0);
    assert_true(s[0] > s[1] && s[0] > s[3]);
    assert_double_equal(s[2], 0.0, EPS);
    /* Hand value for doc 0: N = 4, df(apple) = df(banana) = 2, dl = 3,
     * avgdl = 11/4 = 2.75; idf = log(1 + 2.5/2.5) = log 2; tf part =
     * 1.9 / (1 + 0.9 (0.6 + 0.4 * 3/2.75)) = 1.9 / 1.9327272727...;
     * s = 2 log 2 * that = 1.362838... */
    assert_double_equal(s[0], 2 * log(2.0) * 1.9 / (1 + 0.9 * (0.6 + 0.4 * 3 / 2.75)), EPS);
    bm->close(b);
    json_decref(spec);

    spec = pb_test_json("{\"backend\": \"hashbow\", \"dim\": 64}");
    assert_int_equal(hb->open(spec, 1, &b, &err), 0);
    float *e = NULL;
    size_t dim = 0;
    const char *texts[] = {"apple banana", "APPLE, banana!", ""};
    assert_int_equal(hb->embed(b, texts, 3, &e, &dim, &err), 0);
    assert_int_equal(dim, 64);
    double n0 = 0, dot01 = 0, n2 = 0;
    for (size_t k = 0; k < dim; k++) {
        n0 += (double)e[k] * e[k];
        dot01 += (double)e[k] * e[dim + k];
        n2 += fabs(e[2 * dim + k]);
    }
    assert_double_equal(n0, 1.0, 1e-6);
    assert_double_equal(dot01, 1.0, 1e-6); /* case and punctuation do not matter */
    assert_double_equal(n2, 0.0, EPS);
    free(e);
    hb->close(b);
    json_decref(spec);
}

/* ---- whole tasks through the runner ---- */

/* Mean score (nDCG@10) and the mean of metric `name` of a 24-query task
 * over the queries it is defined for (NAN when none). */
static double run_model(const char *model, const char *metric, double *mean_metric)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"suite\": \"retrieval\", \"task\": \"synthetic\", \"params\": {\"corpus_sizes\":"
             " [1000]}, \"bucket\": 1000, \"item_lo\": 0, \"item_hi\": 24, \"seed\": 5,"
             " \"model\": %s}",
             model);
    json_t *task = pb_test_json(text), *res = NULL;
    pb_buf_t items;
    pb_err_t err = {{0}, {0}};
    pb_buf_init(&items, 0);
    int rc = pb_runner_run(task, NULL, NULL, NULL, &res, &items, &err);
    if (rc)
        fail_msg("%s: %s (%s)", model, err.msg, err.field);
    json_t *agg = json_object_get(res, "aggregate");
    double n = json_number_value(json_object_get(agg, "n"));
    assert_true(n == 24);
    double mean = json_number_value(json_object_get(agg, "score_sum")) / n;
    *mean_metric = NAN;
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(agg, "groups"), i, g)
    {
        if (strcmp(json_string_value(json_array_get(g, 0)), "@metric") == 0 &&
            strcmp(json_string_value(json_array_get(g, 1)), metric) == 0)
            *mean_metric = json_number_value(json_array_get(g, 3)) /
                           (double)json_integer_value(json_array_get(g, 2));
    }
    /* Every item's prediction is ten docnos. */
    json_error_t jerr;
    json_t *arr = json_loadb(items.data, items.len, 0, &jerr);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 24);
    json_decref(arr);
    json_decref(res);
    json_decref(task);
    pb_buf_free(&items);
    return mean;
}

static void test_tasks_oracle_random_baselines(void **state)
{
    (void)state;
    double tau_o, tau_r, tau_b, tau_h, mrr_o, mrr_h;
    double oracle = run_model("{\"backend\": \"oracle\"}", "mrr@10", &mrr_o);
    double rnd = run_model("{\"backend\": \"random\"}", "tau_hard", &tau_r);
    double bm25 = run_model("{\"backend\": \"bm25\"}", "tau_hard", &tau_b);
    double hb = run_model("{\"backend\": \"hashbow\"}", "tau_hard", &tau_h);
    double hb_mrr = run_model("{\"backend\": \"hashbow\", \"teacher\": {\"backend\": \"oracle\"}}",
                              "mrr@10", &mrr_h);
    (void)run_model("{\"backend\": \"oracle\"}", "tau_hard", &tau_o);
    print_message("retrieval nDCG@10: oracle %.3f random %.3f bm25 %.3f hashbow %.3f; "
                  "tau_hard random %.3f bm25 %.3f hashbow %.3f\n",
                  oracle, rnd, bm25, hb, tau_r, tau_b, tau_h);
    assert_double_equal(oracle, 1.0, EPS);
    assert_double_equal(mrr_o, 1.0, EPS);
    assert_true(rnd < 0.15);
    assert_true(bm25 > rnd + 0.1 && bm25 < oracle - 0.01);
    assert_true(hb > rnd + 0.1 && hb < oracle - 0.01);
    assert_double_equal(hb_mrr, hb, EPS); /* the teacher does not change the ranking */
    /* bm25 against itself as teacher agrees perfectly; random does not. */
    assert_double_equal(tau_b, 1.0, EPS);
    assert_true(fabs(tau_r) < 0.5);
    assert_true(tau_h < 1.0);
    /* The oracle ties every negative: tau-b undefined for every query, so
     * the task records no tau_hard at all (no mean, not a zero). */
    assert_true(isnan(tau_o));
}

static void test_task_errors(void **state)
{
    (void)state;
    const char *bad[][2] = {
        {"{\"backend\": \"bm25\", \"teacher\": {\"backend\": \"nope\"}}", "model.teacher.backend"},
        {"{\"backend\": \"bm25\", \"teacher\": 3}", "model.teacher"},
        {"{\"backend\": \"bm25\", \"teacher\": {\"backend\": \"bm25\", \"b\": 2}}",
         "model.teacher.b"},
        {"{\"backend\": \"hashbow\", \"dim\": 100000}", "model.dim"},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(bad); i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"suite\": \"retrieval\", \"task\": \"synthetic\","
                 " \"params\": {\"corpus_sizes\": [100]}, \"bucket\": 100, \"item_lo\": 0, \"item_hi\": 2, \"seed\": 5,"
                 " \"model\": %s}",
                 bad[i][0]);
        json_t *task = pb_test_json(text), *res = NULL;
        pb_buf_t items;
        pb_err_t err = {{0}, {0}};
        pb_buf_init(&items, 0);
        assert_int_equal(pb_runner_run(task, NULL, NULL, NULL, &res, &items, &err), PB_EINVAL);
        assert_string_equal(err.field, bad[i][1]);
        assert_null(res);
        pb_buf_free(&items);
        json_decref(task);
    }
}

/* ---- a user's dataset ---- */

/* Seven docs, two queries. bm25 ranks q1 "zebra stripes": d3 (both words),
 * d6 (zebra), then the rest at 0; q2 "red": d1 and d5 tie (same length,
 * same tf) and trec_eval's rule puts d5 first, so the one relevant doc d1
 * is second: nDCG@10 = (1 / log2 3) / 1, RR = 1/2, AP = 1/2, R@1 = 0. */
static const char RDATA[] =
    "{\"type\": \"qrel\", \"query\": \"q1\", \"doc\": \"d3\", \"grade\": 2}\n"
    "{\"type\": \"qrel\", \"query\": \"q1\", \"doc\": \"d4\", \"grade\": 0}\n"
    "{\"type\": \"qrel\", \"query\": 2, \"doc\": \"d1\", \"grade\": 1}\n"
    "{\"type\": \"doc\", \"id\": \"d1\", \"text\": \"red apple fruit\"}\n"
    "{\"type\": \"doc\", \"id\": \"d2\", \"text\": \"green apple pie\"}\n"
    "{\"type\": \"doc\", \"id\": \"d3\", \"text\": \"zebra stripes animal\"}\n"
    "{\"type\": \"doc\", \"id\": \"d4\", \"text\": \"blue sky\"}\n"
    "\n"
    "{\"type\": \"doc\", \"id\": \"d5\", \"text\": \"red car fast\"}\n"
    "{\"type\": \"doc\", \"id\": \"d6\", \"text\": \"zebra crossing road\"}\n"
    "{\"type\": \"doc\", \"id\": \"d7\", \"text\": \"ocean wave\"}\n"
    "{\"type\": \"query\", \"id\": \"q1\", \"text\": \"zebra stripes\","
    " \"hard_negatives\": [\"d6\", \"d4\"]}\n"
    "{\"type\": \"query\", \"id\": 2, \"text\": \"red\", \"hard_negatives\": [\"d5\"]}\n";

/* RDATA as a cached dataset in a fresh directory; hash gets its SHA-256. */
static void rdata_cache(char *dir, size_t n, char *hash)
{
    char path[1024];
    pb_test_tmpdir(dir, n);
    pb_sha256_hex(RDATA, strlen(RDATA), hash);
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, hash);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(RDATA, 1, strlen(RDATA), f), strlen(RDATA));
    fclose(f);
}

/* Run RDATA's queries [lo, hi) on model; per-metric sums into sums (by
 * rt_metrics order) and the items' JSON into *items_out (new reference). */
static void run_rdata(const char *model, int lo, int hi, double *sums, json_t **items_out)
{
    static const char *const names[] = {"ndcg@10", "mrr@10", "recall@1", "recall@10",
                                        "recall@100", "map", "tau_hard", "tau_easy"};
    char dir[512], hash[PB_SHA256_HEX], text[2048];
    rdata_cache(dir, sizeof dir, hash);
    snprintf(text, sizeof text,
             "{\"suite\": \"retrieval\", \"task\": \"synthetic\", \"bucket\": 7, \"item_lo\": %d,"
             " \"item_hi\": %d, \"seed\": 3, \"dataset\": \"%s\", \"dataset_cache\": \"%s\","
             " \"model\": %s}",
             lo, hi, hash, dir, model);
    json_t *task = pb_test_json(text), *res = NULL;
    pb_buf_t items;
    pb_err_t err = {{0}, {0}};
    pb_buf_init(&items, 0);
    if (pb_runner_run(task, NULL, NULL, NULL, &res, &items, &err))
        fail_msg("%s: %s (%s)", model, err.msg, err.field);
    json_t *agg = json_object_get(res, "aggregate");
    assert_int_equal(json_number_value(json_object_get(agg, "n")), hi - lo);
    size_t i;
    json_t *g;
    for (size_t k = 0; k < PB_ARRAY_LEN(names); k++)
        sums[k] = NAN;
    json_array_foreach(json_object_get(agg, "groups"), i, g)
    {
        for (size_t k = 0; k < PB_ARRAY_LEN(names); k++)
            if (strcmp(json_string_value(json_array_get(g, 0)), "@metric") == 0 &&
                strcmp(json_string_value(json_array_get(g, 1)), names[k]) == 0)
                sums[k] = json_number_value(json_array_get(g, 3));
    }
    *items_out = json_loadb(items.data, items.len, 0, NULL);
    assert_non_null(*items_out);
    json_decref(res);
    json_decref(task);
    pb_buf_free(&items);
}

static void test_dataset_bm25_hand_checked(void **state)
{
    (void)state;
    double m[8], o[8], again[8];
    json_t *items, *oitems, *items2, *tail;
    run_rdata("{\"backend\": \"bm25\"}", 0, 2, m, &items);
    double l3 = 1.0 / log2(3.0);
    assert_double_equal(m[0], 1.0 + l3, 1e-9); /* nDCG@10: q1 1, q2 1/log2(3) */
    assert_double_equal(m[1], 1.5, 1e-9);      /* RR */
    assert_double_equal(m[2], 1.0, 1e-9);      /* R@1: q1 only */
    assert_double_equal(m[3], 2.0, 1e-9);      /* R@10 */
    assert_double_equal(m[5], 1.5, 1e-9);      /* AP */
    /* bm25 is its own teacher: q1's hard negatives d6 > d4 agree (1); q2 has
     * one hard negative, no pair (0). */
    assert_double_equal(m[6], 1.0, 1e-9);
    assert_int_equal(json_array_size(items), 2);
    const json_t *q1 = json_array_get(items, 0), *q2 = json_array_get(items, 1);
    /* items: [idx, hash, prediction, reference, score, latency, tokens, meta, error] */
    assert_string_equal(json_string_value(json_array_get(q1, 2)), "d3 d6 d7 d5 d4 d2 d1");
    assert_string_equal(json_string_value(json_array_get(q2, 2)), "d5 d1 d7 d6 d4 d3 d2");
    assert_string_equal(json_string_value(json_array_get(q1, 3)), "d3 2");
    assert_string_equal(json_string_value(json_array_get(q2, 3)), "d1 1");
    json_t *meta = pb_test_json(json_string_value(json_array_get(q2, 7)));
    assert_string_equal(json_string_value(json_object_get(meta, "id")), "2");
    assert_int_equal(json_integer_value(json_object_get(meta, "line")), 13);
    json_decref(meta);
    /* the oracle reads grades from the items' meta: perfect */
    run_rdata("{\"backend\": \"oracle\"}", 0, 2, o, &oitems);
    assert_double_equal(o[0], 2.0, 1e-9);
    assert_double_equal(o[1], 2.0, 1e-9);
    assert_double_equal(o[5], 2.0, 1e-9);
    /* deterministic, and one query alone is the same query */
    run_rdata("{\"backend\": \"bm25\"}", 0, 2, again, &items2);
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < 8; k++)
            if (k != 5) /* the latency */
                assert_true(json_equal(json_array_get(json_array_get(items, i), k),
                                       json_array_get(json_array_get(items2, i), k)));
    run_rdata("{\"backend\": \"bm25\"}", 1, 2, again, &tail);
    for (size_t k = 0; k < 8; k++)
        if (k != 5)
            assert_true(json_equal(json_array_get(json_array_get(tail, 0), k),
                                   json_array_get(q2, k)));
    json_decref(items);
    json_decref(oitems);
    json_decref(items2);
    json_decref(tail);
}

static void test_dataset_rank_sets(void **state)
{
    (void)state;
    ps_run_t run;
    ps_item_t it;
    ps_rank_sets_t sets;
    json_t *params = pb_test_norm(rsuite(), "synthetic", "{\"easy_negatives\": 3}");
    /* the bucket is the corpus size */
    assert_int_equal(ps_run_open_data(&run, rsuite(), "synthetic", params, 8, 3, RDATA,
                                      strlen(RDATA)),
                     PB_EINVAL);
    assert_int_equal(ps_run_open_data(&run, rsuite(), "synthetic", params, 7, 3, RDATA,
                                      strlen(RDATA)),
                     0);
    const ps_corpus_t *c = rsuite()->corpus(&run);
    assert_int_equal(c->n, 7);
    assert_string_equal(c->docno[2], "d3");
    assert_string_equal(c->text[2], "zebra stripes animal");
    pb_test_gen(&run, 0, &it);
    assert_string_equal(it.prompt, "zebra stripes");
    assert_int_equal(rsuite()->rank_sets(&run, &it, &sets), 0);
    /* judged d3, d4; hard d6, d4; three easy ones from d1 d2 d5 d7; pool all 7 */
    assert_int_equal(sets.n_hard, 2);
    assert_int_equal(sets.hard[0], 5);
    assert_int_equal(sets.hard[1], 3);
    assert_int_equal(sets.n_easy, 3);
    for (size_t i = 0; i < sets.n_easy; i++)
        assert_true(sets.easy[i] == 0 || sets.easy[i] == 1 || sets.easy[i] == 4 ||
                    sets.easy[i] == 6);
    assert_int_equal(sets.n_pool, 7);
    assert_int_equal(sets.pool[0], 2);
    assert_int_equal(sets.pool[1], 3);
    ps_rank_sets_t again;
    assert_int_equal(rsuite()->rank_sets(&run, &it, &again), 0);
    assert_memory_equal(sets.easy, again.easy, sets.n_easy * sizeof *sets.easy);
    ps_rank_sets_clear(&again);
    ps_rank_sets_clear(&sets);
    /* a listwise answer names the user's ids */
    double score = 0, m[PS_MAX_METRICS] = {0};
    assert_int_equal(rsuite()->score(&run, &it, "d6, d3 nope", &score, m), 0);
    assert_double_equal(score, 2.0 / log2(3.0) / 2.0, 1e-9);
    ps_item_clear(&it);
    ps_item_t bad;
    assert_int_equal(rsuite()->generate(&run, 2, &bad), PB_EINVAL);
    ps_run_close(&run);
    json_decref(params);
}

int pb_test_retrieval(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sort_ties_by_docno_descending),
        cmocka_unit_test(test_metrics_hand_computed),
        cmocka_unit_test(test_metrics_edge_cases),
        cmocka_unit_test(test_tau_b_with_ties),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_generation_deterministic),
        cmocka_unit_test(test_score_ranking),
        cmocka_unit_test(test_bm25_and_hashbow),
        cmocka_unit_test(test_tasks_oracle_random_baselines),
        cmocka_unit_test(test_task_errors),
        cmocka_unit_test(test_dataset_bm25_hand_checked),
        cmocka_unit_test(test_dataset_rank_sets),
    };
    return cmocka_run_group_tests_name("retrieval", tests, NULL, NULL);
}
