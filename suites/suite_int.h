/* Private to suites/: the suite definitions the registry lists, and the
 * helpers more than one suite uses (aggregates, effective length). Nothing
 * outside suites/ and its unit tests includes this header. */
#ifndef PS_SUITE_INT_H
#define PS_SUITE_INT_H

#include "suites/suite.h"

extern const ps_suite_t ps__suite_arithmetic;

/* Largest bucket b such that every bucket <= b has mean score >= threshold;
 * 0 when the smallest bucket fails. A bucket with no scored items counts as
 * failing. stats need not be sorted. */
int64_t ps__effective_length(const ps_bucket_stat_t *stats, size_t n, double threshold);

/* {"accuracy": sum / n, "n": n} (new reference); accuracy is null when n is 0. */
json_t *ps__accuracy_json(double score_sum, double n);

/* Arithmetic rendering alone (tests check formats on hand-made cases): a op b
 * for canonical decimal strings a and b under normalised params, as the
 * prompt and reference the generator would produce; rng draws the spaced
 * format's extra spaces. *prompt and *reference are malloc'd, NULL on
 * failure (PB_EINVAL for bad params or operands). */
int ps__arith_render(const char *task, const json_t *params, const char *a, const char *b,
                     pb_rng_t *rng, char **prompt, char **reference);

#endif
