/* What the longctx unit tests share: test_longctx.c (the retrieval tasks,
 * scorers, params) runs the group of test_longctx_tasks.c (common_words,
 * frequent_words, altered_numeric_qa and sizing under a tokenizer) too. */
#ifndef PB_TEST_LONGCTX_H
#define PB_TEST_LONGCTX_H

#include "tests/unit/unit.h"

/* The second longctx group's failures (test_longctx_tasks.c). */
int pb__test_longctx_tasks(void);

#endif
