/* tests/kernels/ktest.h: the kernels runner's shared helpers: seeded random
 * fills, the atol + rtol*|ref| comparison every optimized path is held to,
 * and the list of ISAs this CPU can run (each is checked against scalar). */
#ifndef PK_KTEST_H
#define PK_KTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kernels/kernels.h"

int pk_test_ops(void);
int pk_test_pe(void);
int pk_test_attn(void);
int pk_test_kv(void);
int pk_test_ds(void);
int pk_test_sim(void);
int pk_test_matvec(void);

/* Deterministic generator for test data (splitmix64). */
typedef struct { uint64_t s; } kt_rng_t;
void kt_seed(kt_rng_t *r, uint64_t seed);
uint64_t kt_next(kt_rng_t *r);
float kt_uniform(kt_rng_t *r, float lo, float hi);
int kt_int(kt_rng_t *r, int lo, int hi); /* inclusive */
void kt_fill(kt_rng_t *r, float *x, size_t n, float lo, float hi);
/* malloc'd and filled; fails the test on allocation failure */
float *kt_rand(kt_rng_t *r, size_t n, float lo, float hi);

/* Fails the test (naming what, the index and both values) unless
 * |got - ref| <= atol + rtol*|ref| everywhere; NaN never matches. */
void kt_assert_close(const char *what, const float *ref, const float *got,
	size_t n, float atol, float rtol);
/* largest |got - ref| */
double kt_max_abs_diff(const float *ref, const float *got, size_t n);

/* The ISAs this CPU runs, scalar first; returns how many (1..3). */
int kt_isas(pk_isa_t *out);
/* A context or a failed test. */
pk_ctx_t *kt_ctx(int nthreads, pk_isa_t isa);

#endif
