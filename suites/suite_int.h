/* Private to suites/: the suite definitions the registry lists, and the
 * helpers more than one suite uses (aggregates, effective length). Nothing
 * outside suites/ and its unit tests includes this header. */
#ifndef PS_SUITE_INT_H
#define PS_SUITE_INT_H

#include "suites/suite.h"
#include "common/util.h"

extern const ps_suite_t ps__suite_arithmetic;
extern const ps_suite_t ps__suite_table;
extern const ps_suite_t ps__suite_longctx;
extern const ps_suite_t ps__suite_halluc;
extern const ps_suite_t ps__suite_retrieval;
extern const ps_suite_t ps__suite_kernels;

/* Largest bucket b such that every bucket <= b has mean score >= threshold;
 * 0 when the smallest bucket fails. A bucket with no scored items counts as
 * failing. stats need not be sorted. */
int64_t ps__effective_length(const ps_bucket_stat_t *stats, size_t n, double threshold);

/* {"accuracy": sum / n, "n": n} (new reference); accuracy is null when n is 0. */
json_t *ps__accuracy_json(double score_sum, double n);

/* The aggregate of a length-bucketed task (new reference, NULL on failure):
 * {"accuracy", "n", "threshold", "effective_length"} and, when train > 0,
 * train_key: train with "in_distribution" (buckets <= train) and
 * "out_of_distribution" accuracy objects as ps__accuracy_json makes them. */
json_t *ps__length_aggregate(const ps_bucket_stat_t *stats, size_t n, double threshold,
                             const char *train_key, int64_t train);

/* Arithmetic rendering alone (tests check formats on hand-made cases): a op b
 * for canonical decimal strings a and b under normalised params, as the
 * prompt and reference the generator would produce; rng draws the spaced
 * format's extra spaces. *prompt and *reference are malloc'd, NULL on
 * failure (PB_EINVAL for bad params or operands). */
int ps__arith_render(const char *task, const json_t *params, const char *a, const char *b,
                     pb_rng_t *rng, char **prompt, char **reference);

/* The length-generalisation tasks of the arithmetic suite (lengthgen.c):
 * arithmetic.c hands every task for which ps__lg_is_task is true to these,
 * which follow the ps_suite_t callbacks of the same names. A prepared run's
 * state is one malloc'd block (free() releases it). */
int ps__lg_is_task(const char *task);
json_t *ps__lg_schema(const char *task);
int ps__lg_normalize(const char *task, const json_t *params, json_t **out, pb_err_t *err);
int ps__lg_buckets(const char *task, const json_t *params, int64_t **out, size_t *n);
int ps__lg_prepare(ps_run_t *run);
int ps__lg_generate(const ps_run_t *run, uint64_t idx, ps_item_t *out);
json_t *ps__lg_aggregate(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                         size_t n);
/* Render one item from its input values (tests check formats on hand-made
 * cases; an item's meta "values" holds the same array): poly takes x then a
 * (coefficient, degree) pair per term, every other task one value per
 * element (copy/reverse: 0..25 for a..z). *prompt and *reference are
 * malloc'd, NULL on failure (PB_EINVAL for an unknown task or a value out of
 * the task's range). */
int ps__lg_render(const char *task, const int *values, size_t n_values, char **prompt,
                  char **reference);

/* A [lo, hi] range param: absent or null gives [def_lo, def_hi], one integer
 * n means [n, n]; it must satisfy min <= lo <= hi <= max. Errors name
 * field. */
int ps__parse_range(const json_t *v, const char *field, int64_t def_lo, int64_t def_hi,
                    int64_t min, int64_t max, int *lo, int *hi, pb_err_t *err);

/* The table suite's rendering alone (table.c), so tests can check formats,
 * questions and references on hand-made tables. Cells are text: integers in
 * [0, 10000) in canonical decimal for number columns, short words else. */
#define PS_TB_MAX 64  /* rows and columns */
#define PS_TB_NAME 32 /* header bytes, terminator included */
#define PS_TB_CELL 8  /* cell bytes, terminator included */
typedef struct ps_tb_table {
    int rows, cols;
    char row_names[PS_TB_MAX][PS_TB_NAME];
    char col_names[PS_TB_MAX][PS_TB_NAME];
    unsigned char col_word[PS_TB_MAX]; /* 1: the column holds words, 0: integers */
    char cells[PS_TB_MAX][PS_TB_MAX][PS_TB_CELL];
} ps_tb_table_t;

/* Aggregate operations of column_aggregate and row_aggregate. */
enum { PS_TB_SUM, PS_TB_MAXV, PS_TB_MINV, PS_TB_COUNT_GT };

/* What one item asks (0-based indices). cell_lookup, reverse_lookup and
 * position_probe: the cell (row, col); column_aggregate: col; row_aggregate:
 * row (over its number columns); two_hop: the row with the largest value of
 * column col, reported in column col_b. */
typedef struct ps_tb_query {
    int row, col, col_b;
    int op;        /* PS_TB_* */
    int threshold; /* PS_TB_COUNT_GT: count values > threshold */
} ps_tb_query_t;

/* "<table in format>\n<question>\nAnswer:" and the exact reference, both
 * malloc'd (NULL on failure). PB_EINVAL for an unknown task or format, an
 * index out of range, an aggregate over a word column, a reverse_lookup
 * value that is not unique in its column or a two_hop maximum that is not
 * unique. */
int ps__tb_render(const ps_tb_table_t *t, const char *format, const char *task,
                  const ps_tb_query_t *q, char **prompt, char **reference);

/* The longctx scorers (longctx.c). string_match_all (RULER): the reference
 * holds one value per line (surrounding whitespace dropped, empty lines
 * skipped); the score is the fraction of values that occur in the
 * prediction as ASCII-case-insensitive substrings, 0 with no values.
 * first_int_match (passkey): 1 when the first run of digits in the
 * prediction equals the all-digits reference as an integer, else 0. */
double ps__lc_string_match_all(const char *prediction, const char *reference);
double ps__lc_first_int_match(const char *prediction, const char *reference);
/* string_match_part (RULER's QA): 1 when any one value of the reference
 * (lines as for string_match_all) occurs in the prediction, else 0. */
double ps__lc_string_match_part(const char *prediction, const char *reference);

/* The retrieval suite's IR metrics (retrieval_metrics.c), as trec_eval
 * computes them. A ranked document: its docno, score and qrels grade (0 for
 * a document not in the qrels). ps__ir_sort orders a run as trec_eval does:
 * score descending, ties by docno descending (strcmp reversed). The others
 * take a sorted run. Relevant means grade >= 1; gain is the grade itself
 * (linear), discount log2(rank + 1); IDCG comes from all the query's qrels
 * grades (rel_grades, any order), recall and AP divide by every relevant
 * document in the qrels (n_rel). Empty or all-zero qrels give 0. */
typedef struct ps_ir_doc {
    const char *docno;
    double score;
    int grade;
} ps_ir_doc_t;

void ps__ir_sort(ps_ir_doc_t *docs, size_t n);
double ps__ir_ndcg(const ps_ir_doc_t *run, size_t n, const int *rel_grades, size_t n_grades,
                   size_t k);
/* 1/rank of the first relevant document within the top k, else 0. */
double ps__ir_rr(const ps_ir_doc_t *run, size_t n, size_t k);
double ps__ir_recall(const ps_ir_doc_t *run, size_t n, size_t n_rel, size_t k);
double ps__ir_ap(const ps_ir_doc_t *run, size_t n, size_t n_rel);
/* Kendall tau-b of x and y (n each) as scipy.stats.kendalltau computes it;
 * pairs tied in both are left out. NAN when undefined (n < 2, or x or y
 * constant), as scipy: such a query is left out of the metric's mean
 * (suite.h, score). */
double ps__ir_tau_b(const double *x, const double *y, size_t n);

/* The halluc suite's scoring (halluc_score.c). ps__hl_parse_answer reads a
 * yes/no reply strictly (the accepted forms are listed at its definition):
 * PS_HL_YES, PS_HL_NO or PS_HL_UNPARSEABLE, which counts as wrong.
 * ps__hl_score scores a caption triplet (three parts, the answers a JSON
 * array of three strings): metrics in_acc, out_acc and *score their mean.
 * ps__hl_aggregate: pair_accuracy, in_acc, out_acc, sah_ratio, n overall
 * and per bucket. */
enum { PS_HL_NO = 0, PS_HL_YES = 1, PS_HL_UNPARSEABLE = 2 };
int ps__hl_parse_answer(const char *reply);
int ps__hl_score(const ps_run_t *run, const ps_item_t *item, const char *prediction,
                 double *score, double *metrics);
json_t *ps__hl_aggregate(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                         size_t n);

/* Complete a generated item: index, bucket, length (the prompt's chars when
 * length < 0), prompt hash, and the prompt and reference text taken over
 * from the buffers (left empty, so freeing them is a no-op). */
void ps__item_finish(ps_item_t *out, const ps_run_t *run, uint64_t idx, int64_t length,
                     pb_buf_t *prompt, pb_buf_t *ref);

/* *out = lo, lo+1, .., hi (malloc'd), *n their count; PB_ENOMEM. */
int ps__range_buckets(int lo, int hi, int64_t **out, size_t *n);

/* The release callback of suites whose run state is one malloc'd block. */
void ps__release_state(ps_run_t *run);

/* The prepare of such suites: run->state becomes a malloc'd block of size
 * bytes that parse(run->task, run->params, block) fills; on failure nothing
 * is left behind and parse's code is returned. */
int ps__prepare_parsed(ps_run_t *run, size_t size,
                       int (*parse)(const char *task, const json_t *params, void *out));

/* *out = a malloc'd copy of v[0, n) (buckets already parsed into a list),
 * *n_out = n; PB_ENOMEM. */
int ps__copy_buckets(const int64_t *v, size_t n, int64_t **out, size_t *n_out);

#endif
