/* Private to the retrieval suite: what retrieval.c (generated corpus,
 * queries, scoring) shares with retrieval_params.c (params, schema,
 * buckets) and retrieval_data.c (runs over a user's dataset): the corpus
 * shape, the parsed params, the run state and one query's judgements. */
#ifndef PS_RETRIEVAL_INT_H
#define PS_RETRIEVAL_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"
#include "suites/dataset.h"
#include "suites/suite.h"

/* Corpus shape. A document is about one topic: its topic word (tf 1-2),
 * RT_M distinct key words from that topic's pool of RT_P, and 20-60 filler
 * words drawn by Zipf's law from RT_F. A query asks about a topic through
 * RT_K key words of one "anchor" document plus two of its filler words
 * (so easy negatives share some words with it and their order is not all
 * ties). Grades: same topic and all RT_K key words 2, same topic and
 * RT_K - 1 of them 1, anything else 0. A hard negative is a near-duplicate
 * of the anchor whose topic word (the fact the query asks about) is another
 * topic's, with some key words doubled and some filler dropped: it matches
 * every key word, so lexical models rank it above partial matches. */
#define RT_K 3
#define RT_M 5
#define RT_P 24
#define RT_F 2000
#define RT_TOPIC_DOCS 50   /* documents per topic, on average */
#define RT_MAX_WORDS 80    /* topic 2 + keys 2 * RT_M + filler 60, rounded up */
#define RT_DEPTH 100       /* the ranking is cut here, as trec_eval -M 100 */
#define RT_SYL 80          /* syllables: 16 consonants x 5 vowels */
#define RT_CODES (RT_SYL * RT_SYL * RT_SYL)
#define RT_MIN_DOCS 100
#define RT_MAX_DOCS 100000
#define RT_MAX_SIZES 8

typedef struct rt_params {
    int64_t sizes[RT_MAX_SIZES];
    size_t n_sizes;
    int hard, easy, pool;
} rt_params_t;

/* One query, rebuilt from (run, idx) whenever it is needed. */
typedef struct rt_query {
    uint32_t topic, cluster;
    uint32_t words[RT_K + 3];
    size_t n_words;
    uint32_t keys[RT_K];
    uint32_t *rel; /* judged docs, ascending (malloc'd): grade > 0, or any for a dataset */
    int *grade;
    size_t n_rel;
} rt_query_t;

/* The run state: parsed params and the corpus. Cluster c's anchor is doc
 * cl_doc[c * (hard + 1)], its hard negatives the next `hard` entries. A
 * dataset run (data set) has only p, n and the corpus, all from data. */
typedef struct rt_state {
    rt_params_t p;
    size_t n, n_topics, n_clusters;
    uint64_t code_b; /* the run's word code offset */
    char **docno, **text;
    char *docno_block, *text_block;
    uint32_t *topic;     /* n */
    uint32_t *keys;      /* n x RT_M global word ids */
    uint32_t *cl_doc;    /* n_clusters x (hard + 1) */
    uint32_t *anchor_fill; /* n_clusters x RT_MAX_WORDS filler words of anchors */
    uint8_t *anchor_nfill;
    uint32_t *by_topic, *topic_start; /* docs grouped by topic */
    double zipf[RT_F];   /* cumulative */
    ps_corpus_t corpus;
    ps_rdata_t *data; /* a dataset run's parsed file, else NULL */
} rt_state_t;

/* Params (retrieval_params.c): parse checks task and params into *p. */
int ps__rt_parse(const char *task, const json_t *params, rt_params_t *p, pb_err_t *err);
json_t *ps__rt_schema(const char *task);
int ps__rt_normalize(const char *task, const json_t *params, json_t **out, pb_err_t *err);
int ps__rt_buckets(const char *task, const json_t *params, int64_t **out, size_t *n);

/* Dataset runs (retrieval_data.c). prepare_data parses run->data into s
 * (p already set); query_data gives query idx's judgements; rank_sets_data
 * the pool (judged docs, the file's hard negatives, a sample of unjudged
 * easy negatives, then filler). */
int ps__rt_prepare_data(rt_state_t *s, const ps_run_t *run);
int ps__rt_query_data(const rt_state_t *s, uint64_t idx, rt_query_t *q);
int ps__rt_rank_sets_data(const rt_state_t *s, const ps_run_t *run, uint64_t idx,
                          ps_rank_sets_t *out);

/* Shared by both: free a query's arrays; add d to a set unless taken (a
 * bitmap over the corpus). */
void ps__rt_query_clear(rt_query_t *q);
void ps__rt_take(uint8_t *taken, uint32_t *arr, size_t *n, uint32_t d);

#endif
