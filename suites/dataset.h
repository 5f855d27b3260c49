/* User datasets (README "User datasets"): the JSONL line formats a suite run
 * can read instead of its generator, checked line by line, and one line
 * turned into a ps_item_t. Pure computation on bytes in memory: the
 * coordinator validates uploads with it, the worker builds items with it. */
#ifndef PS_DATASET_H
#define PS_DATASET_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"
#include "suites/suite.h"

#define PS_DATASET_LINE_MAX (4u << 20) /* bytes of one line */
#define PS_DATASET_MAX_BUCKETS 4096    /* distinct bucket values in one dataset */
#define PS_DATASET_MAX_REFS 256        /* references of one line */
#define PS_DATASET_RETRIEVAL "retrieval"

/* Next non-blank line of data[0, len) from *pos: *line and *n its bytes (no
 * newline, no trailing '\r'), *lineno its 1-based physical line number.
 * Returns 1 for a line, 0 at the end. *pos and *lineno start at 0. */
int ps_dataset_next_line(const char *data, size_t len, size_t *pos, const char **line, size_t *n,
                         size_t *lineno);

/* Check one line for a suite's dataset (suite is a registry name, or
 * "retrieval" for the corpus/queries/qrels format) and give its bucket
 * (0 when the line has none). On failure err's message says what and its
 * field is "line N". */
int ps_dataset_check_line(const char *suite, const char *line, size_t n, size_t lineno,
                          int64_t *bucket, pb_err_t *err);

/* Per-bucket line counts of a whole file, ascending by bucket. */
typedef struct ps_dataset_stats {
    size_t lines;     /* non-blank lines */
    int64_t *buckets; /* owned */
    uint64_t *counts; /* owned, lines per bucket */
    size_t n_buckets;
} ps_dataset_stats_t;

/* Check every line of data[0, len) (first bad line wins, err as above) and
 * count lines per bucket. An empty file is an error. On failure st is
 * empty. */
int ps_dataset_scan(const char *suite, const char *data, size_t len, ps_dataset_stats_t *st,
                    pb_err_t *err);
void ps_dataset_stats_free(ps_dataset_stats_t *st);

/* Item idx of run from a checked line: prompt, reference (the references
 * joined by "\n"), meta (the line's "metadata" plus "line", and "id" when
 * given), length in the run's unit; a "parts" line becomes a multi-part
 * item. On failure *out is cleared. */
int ps_dataset_item(const ps_run_t *run, const char *line, size_t n, size_t lineno, uint64_t idx,
                    ps_item_t *out, pb_err_t *err);

/* ---- retrieval datasets ----
 * One file holds the corpus, the queries and the qrels (README "User
 * datasets"): {"type": "doc", "id", "text"}, {"type": "query", "id",
 * "text", "hard_negatives"?: [doc ids]}, {"type": "qrel", "query", "doc",
 * "grade"}. It is one bucket, the corpus size, whose items are the queries
 * in file order. */
#define PS_RDATA_ID_MAX 128          /* bytes of one id */
#define PS_RDATA_MAX_DOCS 1000000
#define PS_RDATA_MAX_QUERIES 100000
#define PS_RDATA_MAX_HARD 64         /* hard negatives of one query */
#define PS_RDATA_MAX_GRADE 100

/* A parsed retrieval dataset; every string and array is owned. The corpus
 * is sorted by docno (strcmp ascending), so corpus order is trec_eval's
 * tie order reversed, as for the generated corpus. */
typedef struct ps_rdata {
    size_t n_docs, n_queries, lines;
    char **docno, **doc_text;  /* n_docs */
    char **qid, **q_text;      /* n_queries, file order */
    size_t *q_line;            /* each query's line number */
    /* Query q's qrels are [qrel_at[q], qrel_at[q + 1]): corpus indices
     * ascending and their grades (0 = judged non-relevant); its hard
     * negatives [hard_at[q], hard_at[q + 1]) in the file's order. */
    size_t *qrel_at, *hard_at;
    uint32_t *qrel_doc, *hard_doc;
    int *qrel_grade;
} ps_rdata_t;

/* Parse and check a whole retrieval dataset: each line (first bad line
 * wins), then across lines: duplicate doc, query or qrel ids, qrels naming
 * unknown ids, hard negatives unknown or judged relevant, queries without a
 * relevant (grade >= 1) qrel. Errors as ps_dataset_check_line's ("line N");
 * out is empty on failure. */
int ps_rdata_parse(const char *data, size_t len, ps_rdata_t *out, pb_err_t *err);
void ps_rdata_free(ps_rdata_t *d);

#endif
