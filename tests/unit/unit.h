/* The unit runner's groups: each module's test file defines one function that
 * runs its cmocka group and returns the number of failures. */
#ifndef PB_UNIT_H
#define PB_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>

#include "suites/suite.h"

int pb_test_common(void);
int pb_test_items(void);
int pb_test_suites(void);
int pb_test_lengthgen(void);
int pb_test_table(void);
int pb_test_longctx(void);
int pb_test_retrieval(void);
int pb_test_halluc(void);
int pb_test_db(void);
int pb_test_http(void);
int pb_test_sched(void);
int pb_test_worker(void);
int pb_test_breakdown(void);
int pb_test_datasets(void);
int pb_test_engine_ckpt(void);
int pb_test_engine_tok(void);
int pb_test_regress(void);
int pb_test_series(void);
int pb_test_openai(void);
int pb_test_kernels_suite(void);
int pb_test_serve(void);

/* Parse JSON text written in a test; fails the test on bad JSON. New reference. */
json_t *pb_test_json(const char *text);

/* A fresh temporary directory for a test (mkdtemp under $TMPDIR); the path
 * is written into out. */
void pb_test_tmpdir(char *out, size_t n);

/* Suite tests: params (JSON text, NULL = defaults) normalised for a task,
 * or a failed test naming the error. New reference. */
json_t *pb_test_norm(const ps_suite_t *suite, const char *task, const char *text);
/* Suite tests: params (JSON text) must be refused for task with PB_EINVAL,
 * no output, a message, and err.field equal to field. */
void pb_test_param_error(const ps_suite_t *suite, const char *task, const char *params,
                         const char *field);
/* Open run for (task, params text, bucket, seed) or fail the test. */
void pb_test_open_run(ps_run_t *run, const ps_suite_t *suite, const char *task,
                      const char *params, int64_t bucket, uint64_t seed);
/* Generate item idx or fail; the item has a prompt, a reference and meta. */
void pb_test_gen(const ps_run_t *run, uint64_t idx, ps_item_t *it);

/* A ps_bucket_stat_t of bucket b: n items scoring sum, no metrics. */
#define PB_TEST_STAT(b, n_, sum) {.bucket = (b), .n = (n_), .score_sum = (sum)}

#endif
