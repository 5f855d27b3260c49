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

int pb_test_common(void);
int pb_test_items(void);
int pb_test_suites(void);
int pb_test_lengthgen(void);
int pb_test_table(void);
int pb_test_longctx(void);
int pb_test_db(void);
int pb_test_http(void);
int pb_test_sched(void);
int pb_test_worker(void);
int pb_test_breakdown(void);

/* Parse JSON text written in a test; fails the test on bad JSON. New reference. */
json_t *pb_test_json(const char *text);

/* A fresh temporary directory for a test (mkdtemp under $TMPDIR); the path
 * is written into out. */
void pb_test_tmpdir(char *out, size_t n);

#endif
