/* The retrieval-distillation suite (reference/suites.md 5.5): a generated
 * corpus of coded-word documents with topic structure, one query per item
 * with graded qrels, controlled hard negatives and a sample of easy ones.
 * The worker ranks the corpus with the model (worker/rank.c) and scores the
 * ranking here: nDCG@10, MRR@10, Recall@{1,10,100}, MAP (trec_eval
 * conventions, retrieval_metrics.c) and teacher-student Kendall tau-b.
 * Params live in retrieval_params.c, runs over a user's file in
 * retrieval_data.c. */
#include "suites/retrieval_int.h"
#include "suites/suite_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/rng.h"
#include "common/util.h"

static const ps_task_def_t rt_tasks[] = {
    {"synthetic", "coded-word corpus with topics, graded qrels (2 exact, 1 partial), hard "
                  "negatives (near-duplicates differing in the topic asked about) and easy "
                  "negatives; one item is one query",
     NULL},
};

static const char *const rt_metrics[] = {"ndcg@10", "mrr@10", "recall@1", "recall@10",
                                         "recall@100", "map", "tau_hard", "tau_easy", NULL};
enum { M_NDCG, M_MRR, M_R1, M_R10, M_R100, M_MAP, M_TAU_HARD, M_TAU_EASY, M_N };

void ps_rank_sets_clear(ps_rank_sets_t *s)
{
    free(s->pool);
    free(s->hard);
    free(s->easy);
    memset(s, 0, sizeof *s);
}

/* ---- the corpus ---- */

/* Global word ids: topic words first, then each topic's key pool, then filler. */
static uint32_t key_word(const rt_state_t *s, uint32_t topic, uint32_t j)
{
    return (uint32_t)s->n_topics + topic * RT_P + j;
}

static uint32_t fill_word(const rt_state_t *s, uint32_t f)
{
    return (uint32_t)(s->n_topics * (1 + RT_P)) + f;
}

/* A word's text: its id scrambled by a bijection of [0, RT_CODES) (the
 * multiplier is prime to 2 and 5) with a per-run offset, as three
 * consonant-vowel syllables. out needs 7 bytes. */
static void word_text(const rt_state_t *s, uint32_t id, char *out)
{
    static const char cons[] = "bdfghjklmnprstvz", vow[] = "aeiou";
    uint64_t c = ((uint64_t)id * 314159u + s->code_b) % RT_CODES;
    for (int i = 0; i < 3; i++) {
        unsigned syl = (unsigned)(c % RT_SYL);
        c /= RT_SYL;
        out[2 * i] = cons[syl / 5];
        out[2 * i + 1] = vow[syl % 5];
    }
    out[6] = '\0';
}

static uint32_t zipf_draw(const rt_state_t *s, pb_rng_t *r)
{
    double u = pb_rng_double(r) * s->zipf[RT_F - 1];
    size_t lo = 0, hi = RT_F - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->zipf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (uint32_t)lo;
}

/* A document's words before shuffling. */
typedef struct rt_bag {
    uint32_t w[RT_MAX_WORDS];
    size_t n;
    uint32_t topic;
    uint32_t keys[RT_M];
    uint32_t fill[RT_MAX_WORDS];
    size_t n_fill;
    int topic_tf;
} rt_bag_t;

/* A regular document (also an anchor): topic, RT_M distinct key words of its
 * pool, 20-60 filler words. */
static void draw_doc(const rt_state_t *s, pb_rng_t *r, rt_bag_t *b)
{
    uint32_t pool[RT_P];
    b->topic = (uint32_t)pb_rng_below(r, s->n_topics);
    b->topic_tf = 1 + (int)pb_rng_below(r, 2);
    for (uint32_t j = 0; j < RT_P; j++)
        pool[j] = j;
    for (uint32_t j = 0; j < RT_M; j++) {
        uint32_t k = j + (uint32_t)pb_rng_below(r, RT_P - j), t = pool[j];
        pool[j] = pool[k];
        pool[k] = t;
        b->keys[j] = key_word(s, b->topic, pool[j]);
    }
    b->n_fill = (size_t)pb_rng_range(r, 20, 60);
    for (size_t i = 0; i < b->n_fill; i++)
        b->fill[i] = fill_word(s, zipf_draw(s, r));
}

/* The bag's words: topic word tf times, each key key_tf[j] times (NULL: once), filler. */
static void bag_words(rt_bag_t *b, const int *key_tf)
{
    b->n = 0;
    for (int i = 0; i < b->topic_tf; i++)
        b->w[b->n++] = b->topic;
    for (int j = 0; j < RT_M; j++)
        for (int i = 0; i < (key_tf ? key_tf[j] : 1); i++)
            b->w[b->n++] = b->keys[j];
    for (size_t i = 0; i < b->n_fill; i++)
        b->w[b->n++] = b->fill[i];
}

/* Hard negative of anchor a: another topic's word, some key words doubled,
 * up to half of the filler dropped. */
static void draw_hard(const rt_state_t *s, pb_rng_t *r, const rt_bag_t *a, rt_bag_t *h,
                      int *key_tf)
{
    *h = *a;
    h->topic = (a->topic + 1 + (uint32_t)pb_rng_below(r, s->n_topics - 1)) % s->n_topics;
    for (int j = 0; j < RT_M; j++)
        key_tf[j] = 1 + (pb_rng_below(r, 3) == 0);
    size_t drop = (size_t)pb_rng_below(r, a->n_fill / 2 + 1);
    for (size_t i = 0; i < drop; i++) {
        size_t k = (size_t)pb_rng_below(r, h->n_fill);
        h->fill[k] = h->fill[--h->n_fill];
    }
}

/* Shuffle the bag's words and append them to text, space-separated. */
static int render_bag(const rt_state_t *s, pb_rng_t *r, rt_bag_t *b, pb_buf_t *text)
{
    char w[8];
    for (size_t i = b->n; i > 1; i--) {
        size_t k = (size_t)pb_rng_below(r, i);
        uint32_t t = b->w[i - 1];
        b->w[i - 1] = b->w[k];
        b->w[k] = t;
    }
    for (size_t i = 0; i < b->n; i++) {
        word_text(s, b->w[i], w);
        if ((i && pb_buf_append(text, " ", 1)) || pb_buf_append(text, w, 6))
            return PB_ENOMEM;
    }
    return pb_buf_append(text, "", 1); /* the NUL separates documents */
}

static void rt_free_state(rt_state_t *s)
{
    if (s == NULL)
        return;
    free(s->docno);
    free(s->text);
    free(s->docno_block);
    free(s->text_block);
    free(s->topic);
    free(s->keys);
    free(s->cl_doc);
    free(s->anchor_fill);
    free(s->anchor_nfill);
    free(s->by_topic);
    free(s->topic_start);
    if (s->data)
        ps_rdata_free(s->data);
    free(s->data);
    free(s);
}

static void rt_release(ps_run_t *run)
{
    rt_free_state(run->state);
    run->state = NULL;
}

/* Group documents by topic (counting sort) so a query's qrels scan one topic. */
static int index_topics(rt_state_t *s)
{
    s->topic_start = calloc(s->n_topics + 1, sizeof *s->topic_start);
    s->by_topic = malloc(s->n * sizeof *s->by_topic);
    if (s->topic_start == NULL || s->by_topic == NULL)
        return PB_ENOMEM;
    for (size_t d = 0; d < s->n; d++)
        s->topic_start[s->topic[d] + 1]++;
    for (size_t t = 0; t < s->n_topics; t++)
        s->topic_start[t + 1] += s->topic_start[t];
    uint32_t *fill = malloc(s->n_topics * sizeof *fill);
    if (fill == NULL)
        return PB_ENOMEM;
    memcpy(fill, s->topic_start, s->n_topics * sizeof *fill);
    for (size_t d = 0; d < s->n; d++)
        s->by_topic[fill[s->topic[d]]++] = (uint32_t)d;
    free(fill);
    return 0;
}

/* Build the corpus of run->bucket documents from run->key alone. Documents
 * are made in role order (clusters, then regular documents), each from its
 * own generator, and a key-seeded permutation gives them their docnos, so
 * neither position nor docno tells a relevant document. */
static int build_corpus(rt_state_t *s, uint64_t key)
{
    pb_buf_t text;
    pb_rng_t r;
    rt_bag_t a, h;
    int key_tf[RT_M], rc = PB_ENOMEM;
    size_t *off = NULL;
    uint32_t *perm = NULL;
    size_t n = s->n, per = (size_t)s->p.hard + 1;

    pb_buf_init(&text, 0);
    s->n_topics = n / RT_TOPIC_DOCS < 4 ? 4 : n / RT_TOPIC_DOCS;
    s->n_clusters = n / (4 * per) ? n / (4 * per) : 1; /* a quarter of the corpus at most */
    s->code_b = pb_hash_u64(key, 0x636f646573ULL) % RT_CODES;
    double c = 0;
    for (size_t f = 0; f < RT_F; f++)
        s->zipf[f] = (c += 1.0 / (double)(f + 1));
    s->docno = malloc(n * sizeof *s->docno);
    s->text = malloc(n * sizeof *s->text);
    s->docno_block = malloc(n * 8);
    s->topic = malloc(n * sizeof *s->topic);
    s->keys = malloc(n * RT_M * sizeof *s->keys);
    s->cl_doc = malloc(s->n_clusters * per * sizeof *s->cl_doc);
    s->anchor_fill = malloc(s->n_clusters * RT_MAX_WORDS * sizeof *s->anchor_fill);
    s->anchor_nfill = malloc(s->n_clusters);
    off = malloc(n * sizeof *off);
    perm = malloc(n * sizeof *perm);
    if (!s->docno || !s->text || !s->docno_block || !s->topic || !s->keys || !s->cl_doc ||
        !s->anchor_fill || !s->anchor_nfill || !off || !perm)
        goto out;
    pb_rng_seed(&r, key, UINT64_MAX); /* items use counters 0.., so this one is free */
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t k = (size_t)pb_rng_below(&r, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[k];
        perm[k] = t;
    }
    /* Role slot i becomes document perm[i]; texts are laid out by docno. */
    uint64_t ckey = pb_hash_u64(key, 0x636f72707573ULL);
    for (size_t slot = 0; slot < n; slot++) {
        size_t cl = slot / per;
        int in_cl = cl < s->n_clusters;
        uint32_t d = perm[slot];
        pb_rng_seed(&r, ckey, slot);
        if (in_cl && slot % per > 0) {
            draw_hard(s, &r, &a, &h, key_tf); /* a: this cluster's anchor, made just before */
            bag_words(&h, key_tf);
        } else {
            draw_doc(s, &r, &h);
            if (in_cl) {
                a = h;
                memcpy(&s->anchor_fill[cl * RT_MAX_WORDS], a.fill, a.n_fill * sizeof *a.fill);
                s->anchor_nfill[cl] = (uint8_t)a.n_fill;
            }
            bag_words(&h, NULL);
        }
        if (in_cl)
            s->cl_doc[slot] = d;
        s->topic[d] = h.topic;
        memcpy(&s->keys[(size_t)d * RT_M], h.keys, sizeof h.keys);
        off[d] = text.len; /* filled in slot order; pointers fixed below */
        if ((rc = render_bag(s, &r, &h, &text)))
            goto out;
        rc = PB_ENOMEM;
    }
    /* Texts in docno order, one block. */
    size_t total = text.len;
    s->text_block = malloc(total ? total : 1);
    if (s->text_block == NULL)
        goto out;
    size_t pos = 0;
    for (size_t d = 0; d < n; d++) {
        size_t len = strlen(text.data + off[d]) + 1;
        memcpy(s->text_block + pos, text.data + off[d], len);
        s->text[d] = s->text_block + pos;
        pos += len;
        snprintf(s->docno_block + 8 * d, 8, "d%06u", (unsigned)(d % 1000000)); /* n <= 1e5 */
        s->docno[d] = s->docno_block + 8 * d;
    }
    if ((rc = index_topics(s)))
        goto out;
    s->corpus = (ps_corpus_t){.n = n, .docno = (const char *const *)s->docno,
                              .text = (const char *const *)s->text};
    rc = 0;
out:
    pb_buf_free(&text);
    free(off);
    free(perm);
    return rc;
}

static int rt_prepare(ps_run_t *run)
{
    rt_state_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return PB_ENOMEM;
    int rc = ps__rt_parse(run->task, run->params, &s->p, NULL);
    if (rc == 0 && run->data)
        rc = ps__rt_prepare_data(s, run);
    else if (rc == 0 && (run->bucket < RT_MIN_DOCS || run->bucket > RT_MAX_DOCS))
        rc = PB_EINVAL;
    else if (rc == 0) {
        s->n = (size_t)run->bucket;
        rc = build_corpus(s, run->key);
    }
    if (rc) {
        rt_free_state(s);
        return rc;
    }
    run->state = s;
    return 0;
}

static const ps_corpus_t *rt_corpus(const ps_run_t *run)
{
    const rt_state_t *s = run->state;
    return s ? &s->corpus : NULL;
}

/* ---- queries ---- */

void ps__rt_query_clear(rt_query_t *q)
{
    free(q->rel);
    free(q->grade);
    memset(q, 0, sizeof *q);
}

/* Query idx of the run: a cluster's anchor, RT_K of its key words, its topic
 * word and two of its filler words; qrels from the topic's documents. */
static int query_synth(const rt_state_t *s, uint64_t key, uint64_t idx, rt_query_t *q)
{
    pb_rng_t r;
    uint32_t pick[RT_M];
    size_t per = (size_t)s->p.hard + 1;
    memset(q, 0, sizeof *q);
    pb_rng_seed(&r, key, idx);
    q->cluster = (uint32_t)pb_rng_below(&r, s->n_clusters);
    uint32_t anchor = s->cl_doc[q->cluster * per];
    const uint32_t *fill = &s->anchor_fill[q->cluster * RT_MAX_WORDS];
    size_t nf = s->anchor_nfill[q->cluster];
    q->topic = s->topic[anchor];
    for (uint32_t j = 0; j < RT_M; j++)
        pick[j] = j;
    q->words[q->n_words++] = q->topic;
    for (uint32_t j = 0; j < RT_K; j++) {
        uint32_t k = j + (uint32_t)pb_rng_below(&r, RT_M - j), t = pick[j];
        pick[j] = pick[k];
        pick[k] = t;
        q->keys[j] = s->keys[(size_t)anchor * RT_M + pick[j]];
        q->words[q->n_words++] = q->keys[j];
    }
    size_t f1 = (size_t)pb_rng_below(&r, nf), f2 = (f1 + 1 + pb_rng_below(&r, nf - 1)) % nf;
    q->words[q->n_words++] = fill[f1];
    q->words[q->n_words++] = fill[f2];
    for (size_t i = q->n_words; i > 1; i--) {
        size_t k = (size_t)pb_rng_below(&r, i);
        uint32_t t = q->words[i - 1];
        q->words[i - 1] = q->words[k];
        q->words[k] = t;
    }
    size_t lo = s->topic_start[q->topic], hi = s->topic_start[q->topic + 1];
    q->rel = malloc((hi - lo) * sizeof *q->rel);
    q->grade = malloc((hi - lo) * sizeof *q->grade);
    if (q->rel == NULL || q->grade == NULL) {
        ps__rt_query_clear(q);
        return PB_ENOMEM;
    }
    for (size_t i = lo; i < hi; i++) {
        uint32_t d = s->by_topic[i];
        int hit = 0;
        for (int j = 0; j < RT_K; j++)
            for (int m = 0; m < RT_M; m++)
                hit += s->keys[(size_t)d * RT_M + m] == q->keys[j];
        if (hit >= RT_K - 1) {
            q->rel[q->n_rel] = d; /* ascending: by_topic keeps document order */
            q->grade[q->n_rel++] = hit == RT_K ? 2 : 1;
        }
    }
    return 0;
}

/* Query idx: generated, or a dataset's. */
static int rt_query(const rt_state_t *s, uint64_t key, uint64_t idx, rt_query_t *q)
{
    return s->data ? ps__rt_query_data(s, idx, q) : query_synth(s, key, idx, q);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* d's grade for q (0 when unjudged); q->rel is ascending. */
static int query_grade(const rt_query_t *q, uint32_t d)
{
    const uint32_t *p = bsearch(&d, q->rel, q->n_rel, sizeof d, cmp_u32);
    return p ? q->grade[p - q->rel] : 0;
}

/* The prompt is the query's words; the reference its qrels, "docno grade"
 * lines, best grade first then by docno. meta "grades" maps the hex
 * pb_hash_str of each judged document's text to its grade, which is how
 * the oracle backend knows relevance from texts alone. */
static int rt_generate(const ps_run_t *run, uint64_t idx, ps_item_t *out)
{
    const rt_state_t *s = run->state;
    rt_query_t q;
    pb_buf_t prompt, ref;
    json_t *grades = NULL;
    char w[8], hex[17];
    int rc;

    memset(out, 0, sizeof *out);
    if (s == NULL)
        return PB_EINVAL;
    if ((rc = rt_query(s, run->key, idx, &q)))
        return rc;
    pb_buf_init(&prompt, 0);
    pb_buf_init(&ref, 0);
    rc = PB_ENOMEM;
    if (s->data && pb_buf_puts(&prompt, s->data->q_text[idx]))
        goto out;
    for (size_t i = 0; i < q.n_words; i++) {
        word_text(s, q.words[i], w);
        if ((i && pb_buf_puts(&prompt, " ")) || pb_buf_puts(&prompt, w))
            goto out;
    }
    if ((grades = json_object()) == NULL)
        goto out;
    int top = 0, n_rel = 0;
    for (size_t i = 0; i < q.n_rel; i++) {
        top = q.grade[i] > top ? q.grade[i] : top;
        n_rel += q.grade[i] >= 1;
    }
    for (int g = top; g >= 1; g--)
        for (size_t i = 0; i < q.n_rel; i++) {
            if (q.grade[i] != g)
                continue;
            pb_hash_hex(pb_hash_str(PB_HASH_INIT, s->text[q.rel[i]]), hex);
            if (pb_buf_printf(&ref, "%s%s %d", ref.len ? "\n" : "", s->docno[q.rel[i]], g))
                goto out;
            /* equal texts: the oracle gives them the better grade */
            if (json_object_get(grades, hex) == NULL &&
                json_object_set_new(grades, hex, json_integer(g)))
                goto out;
        }
    if (pb_buf_cstr(&prompt) || pb_buf_cstr(&ref))
        goto out;
    if (s->data)
        out->meta = json_pack("{s:i, s:s, s:I, s:O}", "n_rel", n_rel, "id", s->data->qid[idx],
                              "line", (json_int_t)s->data->q_line[idx], "grades", grades);
    else
        out->meta = json_pack("{s:i, s:i, s:O}", "n_rel", n_rel, "cluster", (int)q.cluster,
                              "grades", grades);
    if (out->meta == NULL)
        goto out;
    ps__item_finish(out, run, idx, -1, &prompt, &ref);
    rc = 0;
out:
    json_decref(grades);
    pb_buf_free(&prompt);
    pb_buf_free(&ref);
    ps__rt_query_clear(&q);
    if (rc)
        ps_item_clear(out);
    return rc;
}

void ps__rt_take(uint8_t *taken, uint32_t *arr, size_t *n, uint32_t d)
{
    if (taken[d / 8] & (1u << (d % 8)))
        return;
    taken[d / 8] |= (uint8_t)(1u << (d % 8));
    arr[(*n)++] = d;
}

static int rt_rank_sets(const ps_run_t *run, const ps_item_t *item, ps_rank_sets_t *out)
{
    const rt_state_t *s = run->state;
    size_t per = (size_t)s->p.hard + 1, n = s->n;
    uint8_t *taken = NULL;
    rt_query_t q;
    pb_rng_t r;
    int rc;

    memset(out, 0, sizeof *out);
    if (s->data)
        return ps__rt_rank_sets_data(s, run, item->idx, out);
    if ((rc = rt_query(s, run->key, item->idx, &q)))
        return rc;
    size_t want = (size_t)s->p.pool;
    if (want < q.n_rel + per + (size_t)s->p.easy)
        want = q.n_rel + per + (size_t)s->p.easy; /* every judged doc and negative fits */
    if (want > n)
        want = n;
    rc = PB_ENOMEM;
    taken = calloc(n / 8 + 1, 1);
    out->pool = malloc(want * sizeof *out->pool);
    out->hard = malloc((size_t)s->p.hard * sizeof *out->hard);
    out->easy = malloc((size_t)s->p.easy * sizeof *out->easy);
    if (!taken || !out->pool || !out->hard || !out->easy)
        goto out;
    for (size_t i = 0; i < q.n_rel; i++)
        ps__rt_take(taken, out->pool, &out->n_pool, q.rel[i]);
    const uint32_t *cl = &s->cl_doc[q.cluster * per];
    ps__rt_take(taken, out->pool, &out->n_pool, cl[0]); /* the anchor, judged already */
    for (size_t h = 1; h < per; h++) {
        out->hard[out->n_hard++] = cl[h];
        ps__rt_take(taken, out->pool, &out->n_pool, cl[h]);
    }
    /* Easy negatives: other topics' documents, outside the cluster. Their
     * own stream, so the query's draws stay as generate made them. */
    pb_rng_seed(&r, pb_hash_u64(run->key, 0x65617379ULL), item->idx);
    for (size_t tries = 0; out->n_easy < (size_t)s->p.easy && tries < 100 * n; tries++) {
        uint32_t d = (uint32_t)pb_rng_below(&r, n);
        if (s->topic[d] == q.topic || (taken[d / 8] & (1u << (d % 8))))
            continue;
        out->easy[out->n_easy++] = d;
        ps__rt_take(taken, out->pool, &out->n_pool, d);
    }
    /* Filler: random documents, then (a pool near the corpus size) the rest in order. */
    for (size_t tries = 0; out->n_pool < want && tries < 4 * want; tries++)
        ps__rt_take(taken, out->pool, &out->n_pool, (uint32_t)pb_rng_below(&r, n));
    for (uint32_t d = 0; out->n_pool < want && d < n; d++)
        ps__rt_take(taken, out->pool, &out->n_pool, d);
    rc = 0;
out:
    free(taken);
    ps__rt_query_clear(&q);
    if (rc)
        ps_rank_sets_clear(out);
    return rc;
}

/* Metrics of docs[0, n) (corpus indices with scores, any order) for query
 * q; *prediction: the top 10 docnos, space-separated (malloc'd). */
static int score_docs(const rt_state_t *s, const rt_query_t *q, const uint32_t *docs,
                      const double *scores, size_t n, char **prediction, double *m)
{
    ps_ir_doc_t *run = malloc((n ? n : 1) * sizeof *run);
    pb_buf_t pred;
    size_t n_rel = 0;
    int rc = PB_ENOMEM;
    pb_buf_init(&pred, 0);
    *prediction = NULL;
    if (run == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (docs[i] >= s->n) {
            rc = PB_EINVAL;
            goto out;
        }
        run[i] = (ps_ir_doc_t){s->docno[docs[i]], scores[i], query_grade(q, docs[i])};
    }
    ps__ir_sort(run, n);
    if (n > RT_DEPTH)
        n = RT_DEPTH;
    for (size_t i = 0; i < q->n_rel; i++)
        n_rel += q->grade[i] >= 1;
    m[M_NDCG] = ps__ir_ndcg(run, n, q->grade, q->n_rel, 10);
    m[M_MRR] = ps__ir_rr(run, n, 10);
    m[M_R1] = ps__ir_recall(run, n, n_rel, 1);
    m[M_R10] = ps__ir_recall(run, n, n_rel, 10);
    m[M_R100] = ps__ir_recall(run, n, n_rel, 100);
    m[M_MAP] = ps__ir_ap(run, n, n_rel);
    for (size_t i = 0; i < n && i < 10; i++)
        if ((i && pb_buf_puts(&pred, " ")) || pb_buf_puts(&pred, run[i].docno))
            goto out;
    if (pb_buf_cstr(&pred))
        goto out;
    *prediction = pred.data;
    pred.data = NULL;
    rc = 0;
out:
    free(run);
    pb_buf_free(&pred);
    return rc;
}

static int rt_score_ranking(const ps_run_t *run, const ps_item_t *item, const ps_ranking_t *r,
                            char **prediction, double *score, double *metrics)
{
    const rt_state_t *s = run->state;
    double m[M_N] = {0};
    rt_query_t q;
    *prediction = NULL;
    int rc = rt_query(s, run->key, item->idx, &q);
    if (rc)
        return rc;
    rc = score_docs(s, &q, r->docs, r->scores, r->n, prediction, m);
    ps__rt_query_clear(&q);
    if (rc)
        return rc;
    /* Without a teacher there is no agreement to measure: undefined. */
    m[M_TAU_HARD] = m[M_TAU_EASY] = NAN;
    if (r->teacher_hard && r->student_hard)
        m[M_TAU_HARD] = ps__ir_tau_b(r->student_hard, r->teacher_hard, r->n_hard);
    if (r->teacher_easy && r->student_easy)
        m[M_TAU_EASY] = ps__ir_tau_b(r->student_easy, r->teacher_easy, r->n_easy);
    *score = m[M_NDCG];
    if (metrics)
        memcpy(metrics, m, sizeof m);
    return 0;
}

static int docno_cmp(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

/* The corpus index of docno word[0, len), or s->n when there is none. Both
 * corpora are in ascending docno order. */
static size_t doc_index(const rt_state_t *s, const char *word, size_t len)
{
    char id[PS_RDATA_ID_MAX + 1];
    if (len == 0 || len > PS_RDATA_ID_MAX)
        return s->n;
    memcpy(id, word, len);
    id[len] = '\0';
    char **p = bsearch(id, s->docno, s->n, sizeof *s->docno, docno_cmp);
    return p ? (size_t)(p - s->docno) : s->n;
}

/* A listwise answer (a generating model naming documents): the docnos in
 * the prediction, in order, are the ranking; other words are skipped and
 * agreement metrics are 0. The worker ranks with embed or score_pairs, so
 * this serves models that can only generate. */
static int rt_score(const ps_run_t *run, const ps_item_t *item, const char *prediction,
                    double *score, double *metrics)
{
    const rt_state_t *s = run->state;
    uint32_t docs[RT_DEPTH];
    double sc[RT_DEPTH], m[M_N] = {0};
    uint8_t *seen = calloc(s->n / 8 + 1, 1);
    char *pred = NULL;
    size_t n = 0;
    rt_query_t q;
    if (seen == NULL)
        return PB_ENOMEM;
    for (const char *p = prediction; *p && n < RT_DEPTH;) {
        size_t len = strcspn(p, " \t\r\n,;");
        size_t d = doc_index(s, p, len);
        if (d < s->n && !(seen[d / 8] & (1u << (d % 8)))) {
            seen[d / 8] |= (uint8_t)(1u << (d % 8));
            docs[n] = (uint32_t)d;
            sc[n] = -(double)n;
            n++;
        }
        p += len;
        p += strspn(p, " \t\r\n,;");
    }
    free(seen);
    int rc = rt_query(s, run->key, item->idx, &q);
    if (rc)
        return rc;
    rc = score_docs(s, &q, docs, sc, n, &pred, m);
    ps__rt_query_clear(&q);
    free(pred);
    if (rc)
        return rc;
    *score = m[M_NDCG];
    if (metrics)
        memcpy(metrics, m, sizeof m);
    return 0;
}

/* {"n", and each metric's mean over every bucket} (null means without items). */
static json_t *rt_aggregate(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                            size_t n)
{
    double cnt = 0, sum[M_N] = {0}, defined[M_N] = {0};
    (void)task;
    (void)params;
    for (size_t i = 0; i < n; i++) {
        cnt += stats[i].n;
        for (int k = 0; stats[i].metric_sum && stats[i].metric_n && k < M_N; k++) {
            sum[k] += stats[i].metric_sum[k];
            defined[k] += stats[i].metric_n[k];
        }
    }
    /* A mean over the queries the metric is defined for (undefined taus
     * are left out); null when there are none. */
    json_t *o = json_pack("{s:f}", "n", cnt);
    for (int k = 0; o && k < M_N; k++)
        if (json_object_set_new(o, rt_metrics[k],
                                defined[k] > 0 ? json_real(sum[k] / defined[k]) : json_null())) {
            json_decref(o);
            o = NULL;
        }
    return o;
}

const ps_suite_t ps__suite_retrieval = {
    .name = "retrieval",
    .description = "Retrieval distillation over a generated corpus with graded qrels: the "
                   "model ranks as a dual encoder (embed) or a cross encoder (score_pairs); "
                   "nDCG@10, MRR@10, Recall@1/10/100 and MAP as trec_eval computes them, and "
                   "Kendall tau-b with a teacher (default bm25) on hard and on easy negatives",
    .version = 1,
    .bucket_unit = "docs",
    .tasks = rt_tasks,
    .n_tasks = PB_ARRAY_LEN(rt_tasks),
    .metrics = rt_metrics,
    .schema = ps__rt_schema,
    .normalize = ps__rt_normalize,
    .buckets = ps__rt_buckets,
    .prepare = rt_prepare,
    .release = rt_release,
    .generate = rt_generate,
    .score = rt_score,
    .corpus = rt_corpus,
    .rank_sets = rt_rank_sets,
    .score_ranking = rt_score_ranking,
    .aggregate = rt_aggregate,
};
