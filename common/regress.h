/* Regression statistics for nightly detection (issue 7, infra.md A.2 stages
 * 1 and 2): proportion tests for pass rates, a Student-t prediction gate for
 * performance figures, and binary-segmentation change points. Pure maths:
 * no I/O, no allocation, no global state, so it is safe from any thread. */
#ifndef PB_REGRESS_H
#define PB_REGRESS_H

#include <stddef.h>

/* Stored with every change point / alert; bump when a decision can change. */
#define PB_RG_VERSION 1
#define PB_RG_MAX_HISTORY 64 /* perf gate: most recent values used */
#define PB_RG_MAX_POINTS 50  /* change points: most recent values used */

/* Regularized incomplete beta I_x(a, b), a, b > 0, 0 <= x <= 1. */
double pb_rg_incbeta(double a, double b, double x);
/* Student t CDF and quantile for df > 0 (df need not be an integer). */
double pb_rg_t_cdf(double t, double df);
double pb_rg_t_ppf(double p, double df);

/* Two-sided test that two proportions k1/n1 (baseline) and k2/n2 (new)
 * differ: pooled two-proportion z-test, or Fisher's exact test (as
 * scipy.stats.fisher_exact, two-sided) when any expected cell count < 5.
 * diff = k1/n1 - k2/n2 with its 95% Newcombe hybrid-score interval (Wilson
 * intervals per proportion, Newcombe 1998 method 10) in [lo, hi]. */
int pb_rg_two_prop(long k1, long n1, long k2, long n2, double *p_value, double *diff,
                   double *lo, double *hi);
/* 1 when pb_rg_two_prop uses Fisher's exact test for these counts. */
int pb_rg_two_prop_exact(long k1, long n1, long k2, long n2);
/* *dropped = 1 when the new rate fell: p < alpha and k1/n1 - k2/n2 >= min_effect. */
int pb_rg_prop_drop(long k1, long n1, long k2, long n2, double alpha, double min_effect,
                    int *dropped, double *p_value);

/* Welch's two-sided p-value for v[a, k) against v[k, b): finite values,
 * at least two a side. */
double pb_rg_welch(const double *v, size_t a, size_t k, size_t b);

typedef struct {
    size_t n;        /* finite history values used (NaN = missing, skipped) */
    double mean, sd; /* of those values */
    double lo, hi;   /* prediction interval for one new value */
    double change;   /* (x - mean) / |mean|; +-inf when mean is 0 and x is not */
    int outside;     /* x outside [lo, hi] */
    int flagged;     /* |change| >= threshold and outside; needs n >= 2 */
    int side;        /* sign of x - mean when flagged, else 0 */
} pb_rg_perf_t;

/* Stage 1 gate for a new value x against history (oldest first; only the
 * last PB_RG_MAX_HISTORY are used). Changes under min_change are ignored;
 * beyond threshold and outside mean +- t_{(1+conf)/2,n-1} s sqrt(1+1/n)
 * they are flagged. The caller maps side to better/worse by direction. */
int pb_rg_perf_check(const double *history, size_t n, double x, double min_change,
                     double threshold, double conf, pb_rg_perf_t *res);

/* Stage 2: change points in the last PB_RG_MAX_POINTS of x (NaN = missing,
 * skipped). Binary segmentation on squared error, each split confirmed by
 * Welch's t-test at alpha, at least min_side (>= 2) finite points a side.
 * cps gets, ascending, the index in x of the first point after each change;
 * *n_cps is the capacity of cps on entry and the count on return
 * (PB_ETOOBIG when it is too small; PB_RG_MAX_POINTS / min_side suffices). */
int pb_rg_changepoints(const double *x, size_t n, size_t min_side, double alpha, size_t *cps,
                       size_t *n_cps);

#endif
