/* Unit tests for common/regress.c: SciPy known answers for the t, beta,
 * Fisher and z computations, then synthetic nightly series (stable, noisy,
 * step, drift, outlier, missing points) with the decisions they must get. */
#include "tests/unit/unit.h"

#include "common/pb.h"
#include "common/regress.h"

#include <math.h>

#define REL(exp, got, tol) assert_true(fabs((got) - (exp)) <= (tol) * fmax(fabs(exp), 1e-300))

static void test_t_known(void **state)
{
    (void)state;
    /* scipy 1.10.1: stats.t.ppf(p, df) */
    REL(4.604094871415897, pb_rg_t_ppf(0.995, 4), 1e-6);
    REL(2.2281388519649385, pb_rg_t_ppf(0.975, 10), 1e-6);
    REL(2.656145029762259, pb_rg_t_ppf(0.995, 63), 1e-6);
    REL(1.730250928807177, pb_rg_t_ppf(0.9, 2.5), 1e-6);
    REL(-1.8945786050613054, pb_rg_t_ppf(0.05, 7), 1e-6);
    /* SciPy's own ppf is off by ~1e-11 here: for df = 4 the CDF has the closed form
     * 1/2 + u/2 (1 + (1 - u^2)/2), u = t / sqrt(4 + t^2), and our quantile satisfies
     * it to rounding; the inversion round-trips through our CDF just as tightly. */
    {
        double t = pb_rg_t_ppf(0.995, 4), u = t / sqrt(4.0 + t * t);

        REL(0.995, 0.5 + 0.5 * u * (1.0 + 0.5 * (1.0 - u * u)), 1e-14);
        REL(0.975, pb_rg_t_cdf(pb_rg_t_ppf(0.975, 10), 10), 1e-13);
        REL(0.001, pb_rg_t_cdf(pb_rg_t_ppf(0.001, 3.5), 3.5), 1e-11);
    }
    /* stats.t.cdf(t, df) */
    REL(0.966616727594006, pb_rg_t_cdf(2.5, 4), 1e-9);
    REL(0.11138290860342223, pb_rg_t_cdf(-1.3, 10), 1e-9);
    REL(0.5789376153789145, pb_rg_t_cdf(0.2, 63), 1e-9);
    REL(0.9804935120793409, pb_rg_t_cdf(4.0, 2.5), 1e-9);
    REL(0.9999999999771237, pb_rg_t_cdf(10.0, 30), 1e-9);
    /* scipy.special.betainc(a, b, x) */
    REL(0.5247999999999999, pb_rg_incbeta(2.0, 3.0, 0.4), 1e-9);
    REL(0.7951672353008662, pb_rg_incbeta(0.5, 0.5, 0.9), 1e-9);
    REL(0.008322504862464204, pb_rg_incbeta(10.0, 0.5, 0.7), 1e-9);
    assert_true(isnan(pb_rg_t_ppf(1.0, 4)));
    assert_true(isnan(pb_rg_t_cdf(1.0, 0.0)));
    assert_true(pb_rg_t_ppf(0.5, 3) == 0.0);
}

static void test_two_prop_known(void **state)
{
    double p, d, lo, hi;
    int drop;

    (void)state;
    /* z p-value, pooled: 2*stats.norm.sf(abs(z)), z = (p1-p2)/sqrt(pp*(1-pp)*(1/n1+1/n2)) */
    assert_int_equal(0, pb_rg_two_prop_exact(90, 100, 80, 100));
    assert_int_equal(0, pb_rg_two_prop(90, 100, 80, 100, &p, &d, &lo, &hi));
    REL(0.047670380656161464, p, 1e-9);
    REL(0.1, d, 1e-12);
    /* Newcombe hybrid score: Wilson bounds with z = stats.norm.ppf(0.975), combined
     * d - sqrt((p1-l1)**2 + (u2-p2)**2), d + sqrt((u1-p1)**2 + (p2-l2)**2) */
    REL(0.00014902511855754974, lo, 1e-9);
    REL(0.1994738700780695, hi, 1e-9);
    assert_int_equal(0, pb_rg_two_prop(450, 500, 430, 500, &p, &d, &lo, &hi));
    REL(0.051625033394238316, p, 1e-9);
    assert_int_equal(0, pb_rg_two_prop(60, 100, 55, 100, &p, &d, &lo, &hi));
    REL(0.4744863711713396, p, 1e-9);
    /* Expected cells < 5: stats.fisher_exact(table)[1], alternative two-sided */
    assert_int_equal(1, pb_rg_two_prop_exact(3, 10, 9, 10));
    assert_int_equal(0, pb_rg_two_prop(3, 10, 9, 10, &p, &d, &lo, &hi));
    REL(0.019766611097880443, p, 1e-9); /* [[3, 7], [9, 1]] */
    REL(-0.8090179735354881, lo, 1e-9);
    REL(-0.17052272393450302, hi, 1e-9);
    assert_int_equal(0, pb_rg_two_prop(8, 10, 1, 6, &p, &d, &lo, &hi));
    REL(0.034965034965034975, p, 1e-9); /* [[8, 2], [1, 5]] */
    assert_int_equal(0, pb_rg_two_prop(20, 20, 15, 20, &p, &d, &lo, &hi));
    REL(0.047124047124047136, p, 1e-9); /* [[20, 0], [15, 5]] */
    assert_int_equal(0, pb_rg_two_prop(1, 10, 0, 10, &p, &d, &lo, &hi));
    REL(1.0, p, 1e-12); /* [[1, 9], [0, 10]] */

    assert_int_equal(0, pb_rg_prop_drop(90, 100, 80, 100, 0.05, 0.05, &drop, &p));
    assert_int_equal(1, drop);
    assert_int_equal(0, pb_rg_prop_drop(90, 100, 80, 100, 0.05, 0.15, &drop, &p));
    assert_int_equal(0, drop); /* significant but smaller than the minimum effect */
    assert_int_equal(0, pb_rg_prop_drop(450, 500, 430, 500, 0.05, 0.01, &drop, &p));
    assert_int_equal(0, drop); /* p = 0.0516 */
    assert_int_equal(0, pb_rg_prop_drop(80, 100, 90, 100, 0.05, 0.0, &drop, &p));
    assert_int_equal(0, drop); /* an improvement is not a drop */
    assert_int_equal(PB_EINVAL, pb_rg_two_prop(11, 10, 1, 10, &p, &d, &lo, &hi));
    assert_int_equal(PB_EINVAL, pb_rg_two_prop(0, 0, 1, 10, &p, &d, &lo, &hi));
    assert_int_equal(PB_EINVAL, pb_rg_prop_drop(1, 10, 1, 10, 0.0, 0.0, &drop, &p));
}

static void test_perf_known(void **state)
{
    double h[] = {10, 10.2, 9.8, 10.1, 9.9};
    double hn[] = {NAN, 10, 10.2, NAN, 9.8, 10.1, 9.9, NAN};
    double big[70];
    pb_rg_perf_t r;

    (void)state;
    assert_int_equal(0, pb_rg_perf_check(h, 5, 11.0, 0.01, 0.05, 0.99, &r));
    /* statistics.mean(h) + stats.t.ppf(0.995, 4) * statistics.stdev(h) * math.sqrt(1 + 1/5) */
    REL(10.79745262401596, r.hi, 1e-9);
    REL(10.0, r.mean, 1e-12);
    REL(0.1, r.change, 1e-9);
    assert_int_equal(5, r.n);
    assert_int_equal(1, r.flagged);
    assert_int_equal(1, r.side);
    assert_int_equal(0, pb_rg_perf_check(h, 5, 10.6, 0.01, 0.05, 0.99, &r));
    assert_int_equal(0, r.flagged); /* +6% but inside the interval */
    assert_int_equal(0, pb_rg_perf_check(h, 5, 9.0, 0.01, 0.05, 0.99, &r));
    assert_int_equal(-1, r.side);
    assert_int_equal(0, pb_rg_perf_check(h, 5, 10.9, 0.01, 0.20, 0.99, &r));
    assert_int_equal(1, r.outside);
    assert_int_equal(0, r.flagged); /* outside, but under the threshold */
    /* Missing points are skipped, not counted. */
    assert_int_equal(0, pb_rg_perf_check(hn, 8, 11.0, 0.01, 0.05, 0.99, &r));
    assert_int_equal(5, r.n);
    REL(10.79745262401596, r.hi, 1e-9);
    /* Only the newest 64 count: 6 wild old values are ignored. */
    for (int i = 0; i < 70; i++)
        big[i] = i < 6 ? 1000.0 : 100.0 + (i % 2 ? 0.5 : -0.5);
    assert_int_equal(0, pb_rg_perf_check(big, 70, 100.0, 0.01, 0.05, 0.99, &r));
    assert_int_equal(64, r.n);
    REL(100.0, r.mean, 1e-12);
    /* Too little history: nothing flagged. */
    assert_int_equal(0, pb_rg_perf_check(h, 1, 20.0, 0.01, 0.05, 0.99, &r));
    assert_int_equal(0, r.flagged);
    assert_int_equal(0, pb_rg_perf_check(NULL, 0, 20.0, 0.01, 0.05, 0.99, &r));
    assert_int_equal(0, r.flagged);
    assert_int_equal(PB_EINVAL, pb_rg_perf_check(h, 5, NAN, 0.01, 0.05, 0.99, &r));
    assert_int_equal(PB_EINVAL, pb_rg_perf_check(h, 5, 1.0, 0.01, 0.05, 1.0, &r));
}

/* Deterministic Gaussian noise: LCG plus Box-Muller. */
static double gauss(uint64_t *s)
{
    double u1, u2;

    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    u1 = ((*s >> 11) + 1.0) / 9007199254740993.0;
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    u2 = (*s >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static void fill(double *x, size_t n, double level, double noise, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = level * (1.0 + noise * gauss(&seed));
}

static size_t cps_of(const double *x, size_t n, size_t *cps)
{
    size_t k = 8;

    assert_int_equal(0, pb_rg_changepoints(x, n, 6, 0.001, cps, &k));
    return k;
}

static void test_series(void **state)
{
    double x[365];
    size_t cps[8], flags = 0, total = 0;
    pb_rg_perf_t r;

    (void)state;
    /* Stable: nothing, however the gate is asked. */
    for (int i = 0; i < 50; i++)
        x[i] = 100.0;
    assert_int_equal(0, cps_of(x, 50, cps));
    assert_int_equal(0, pb_rg_perf_check(x, 50, 100.0, 0.01, 0.05, 0.99, &r));
    assert_int_equal(0, r.flagged);
    assert_int_equal(0, pb_rg_perf_check(x, 50, 90.0, 0.01, 0.05, 0.99, &r));
    assert_int_equal(-1, r.side);

    /* Noisy but stable (1% sd): no gate flags over a year, no change points. */
    for (uint64_t seed = 1; seed <= 20; seed++) {
        fill(x, 365, 100.0, 0.01, seed);
        for (size_t d = 10; d < 365; d++) {
            assert_int_equal(0, pb_rg_perf_check(x, d, x[d], 0.01, 0.05, 0.99, &r));
            flags += (size_t)r.flagged;
        }
        total += cps_of(x + 315, 50, cps);
    }
    assert_int_equal(0, flags); /* out of 7,100 checks */
    /* The split tested is the best of ~38, so Welch's p is optimistic: pure noise
     * gets a change point in ~1.6% of windows at alpha 0.001 (21 of 1,280 measured). */
    assert_true(total <= 1);

    /* Step down 10% after 40 points: the gate and the detector both catch it. */
    fill(x, 50, 100.0, 0.01, 42);
    for (int i = 40; i < 50; i++)
        x[i] *= 0.9;
    assert_int_equal(0, pb_rg_perf_check(x, 40, x[40], 0.01, 0.05, 0.99, &r));
    assert_int_equal(1, r.flagged);
    assert_int_equal(-1, r.side);
    assert_int_equal(1, cps_of(x, 50, cps));
    assert_int_equal(40, cps[0]);

    /* The same step with missing points: the index is still the caller's. */
    x[3] = x[41] = x[45] = NAN;
    assert_int_equal(1, cps_of(x, 50, cps));
    assert_int_equal(40, cps[0]);
    assert_int_equal(0, pb_rg_perf_check(x, 40, x[40], 0.01, 0.05, 0.99, &r));
    assert_int_equal(1, r.flagged);

    /* Slow drift, -0.1% a point: too slow for the gate, found by stage 2. */
    fill(x, 50, 100.0, 0.003, 7);
    for (int i = 0; i < 50; i++)
        x[i] *= 1.0 - 0.001 * i;
    assert_int_equal(0, pb_rg_perf_check(x, 49, x[49], 0.01, 0.05, 0.99, &r));
    assert_int_equal(0, r.flagged);
    assert_true(cps_of(x, 50, cps) >= 1);

    /* One outlier (+30%) amid noise: no change point, anywhere it falls,
     * and the next ordinary value is not flagged either. */
    for (int at = 0; at < 50; at += 7) {
        fill(x, 51, 100.0, 0.01, 99);
        x[at] = 130.0;
        assert_int_equal(0, cps_of(x, 50, cps));
        assert_int_equal(0, pb_rg_perf_check(x, 50, x[50], 0.01, 0.05, 0.99, &r));
        assert_int_equal(0, r.flagged);
    }
    x[49] = 130.0;
    assert_int_equal(0, cps_of(x, 50, cps));
}

static void test_changepoint_edges(void **state)
{
    double x[60];
    size_t cps[8], k;

    (void)state;
    /* Two steps, far enough apart: both found, ascending. */
    fill(x, 60, 100.0, 0.005, 3);
    for (int i = 20; i < 60; i++)
        x[i] *= i < 40 ? 1.2 : 0.9;
    k = 8;
    assert_int_equal(0, pb_rg_changepoints(x, 60, 6, 0.001, cps, &k));
    assert_int_equal(2, k); /* the first 10 points are outside the last 50 */
    assert_int_equal(20, cps[0]);
    assert_int_equal(40, cps[1]);
    k = 1;
    assert_int_equal(PB_ETOOBIG, pb_rg_changepoints(x, 60, 6, 0.001, cps, &k));
    k = 8;
    assert_int_equal(PB_EINVAL, pb_rg_changepoints(x, 60, 1, 0.001, cps, &k));
    assert_int_equal(PB_EINVAL, pb_rg_changepoints(x, 60, 6, 1.5, cps, &k));
    k = 8; /* too short to split */
    assert_int_equal(0, pb_rg_changepoints(x + 15, 11, 6, 0.001, cps, &k));
    assert_int_equal(0, k);
    /* A step right at the minimum side length. */
    for (int i = 0; i < 30; i++)
        x[i] = i < 24 ? 50.0 + (i % 3) * 0.1 : 60.0 + (i % 3) * 0.1;
    k = 8;
    assert_int_equal(0, pb_rg_changepoints(x, 30, 6, 0.001, cps, &k));
    assert_int_equal(1, k);
    assert_int_equal(24, cps[0]);
    assert_int_equal(1, PB_RG_VERSION);
}

int pb_test_regress(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_t_known),   cmocka_unit_test(test_two_prop_known),
        cmocka_unit_test(test_perf_known), cmocka_unit_test(test_series),
        cmocka_unit_test(test_changepoint_edges),
    };
    return cmocka_run_group_tests_name("regress", tests, NULL, NULL);
}
