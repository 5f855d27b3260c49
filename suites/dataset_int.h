/* Private to the user-dataset code: what dataset.c (generate-mode lines,
 * scan, items) shares with dataset_retrieval.c (the doc/query/qrel format):
 * one line's parse and check, and line-numbered errors. */
#ifndef PS_DATASET_INT_H
#define PS_DATASET_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"
#include "suites/dataset.h"

/* err = "line N: <message>", field "line N"; returns PB_EINVAL. */
int ps__ds_line_errf(pb_err_t *err, size_t lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parse and check one line of a suite's dataset; *out the object (new
 * reference), *bucket its bucket (0 when none). */
int ps__ds_parse_line(const char *suite, const char *line, size_t n, size_t lineno, json_t **out,
                      int64_t *bucket, pb_err_t *err);
/* The per-line check of a retrieval line (doc, query or qrel). */
int ps__ds_check_retrieval(const json_t *o, size_t lineno, pb_err_t *err);
/* ps_dataset_scan of a retrieval dataset: the whole file parsed; one
 * bucket, the corpus size, counting the queries. */
int ps__ds_scan_retrieval(const char *data, size_t len, ps_dataset_stats_t *st, pb_err_t *err);

#endif
