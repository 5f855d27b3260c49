/* Regression statistics (see regress.h). The t distribution comes from the
 * regularized incomplete beta, evaluated with the Lentz continued fraction
 * as Numerical Recipes (2nd ed., 6.4) describes; quantiles invert the CDF
 * by safeguarded Newton steps inside a bisection bracket. */
#include "common/regress.h"

#include "common/pb.h"

#include <math.h>

#define RG_EPS 1e-16
#define RG_TINY 1e-300
#define RG_MAXIT 500
#define RG_Z95 1.959963984540054 /* norm.ppf(0.975) */
#define RG_FISHER_REL 1e-7       /* scipy's tolerance when comparing table probabilities */

/* Continued fraction for I_x(a, b); converges fast for x < (a+1)/(a+b+2). */
static double betacf(double a, double b, double x)
{
    double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0, d = 1.0 - qab * x / qap, h;

    if (fabs(d) < RG_TINY)
        d = RG_TINY;
    d = 1.0 / d;
    h = d;
    for (int m = 1; m <= RG_MAXIT; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2)), del;

        d = 1.0 + aa * d;
        if (fabs(d) < RG_TINY)
            d = RG_TINY;
        c = 1.0 + aa / c;
        if (fabs(c) < RG_TINY)
            c = RG_TINY;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < RG_TINY)
            d = RG_TINY;
        c = 1.0 + aa / c;
        if (fabs(c) < RG_TINY)
            c = RG_TINY;
        d = 1.0 / d;
        del = d * c;
        h *= del;
        if (fabs(del - 1.0) < RG_EPS)
            break;
    }
    return h;
}

double pb_rg_incbeta(double a, double b, double x)
{
    double bt;

    if (!(a > 0.0) || !(b > 0.0) || isnan(x))
        return NAN;
    if (x <= 0.0)
        return 0.0;
    if (x >= 1.0)
        return 1.0;
    bt = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1.0) / (a + b + 2.0))
        return bt * betacf(a, b, x) / a;
    return 1.0 - bt * betacf(b, a, 1.0 - x) / b;
}

/* P(|T| > |t|), computed directly so small p-values keep their digits. */
static double t_two_tail(double t, double df)
{
    if (isinf(t))
        return 0.0;
    return pb_rg_incbeta(0.5 * df, 0.5, df / (df + t * t));
}

double pb_rg_t_cdf(double t, double df)
{
    double tail;

    if (!(df > 0.0) || isnan(t))
        return NAN;
    tail = 0.5 * t_two_tail(t, df);
    return t > 0.0 ? 1.0 - tail : tail;
}

/* Starting point for the Halley steps: a normal quantile (Abramowitz and
 * Stegun 26.2.23, |error| < 4.5e-4) taken to t by the Cornish-Fisher terms. */
static double t_seed(double q, double df)
{
    double r = sqrt(-2.0 * log(1.0 - q)), z, z3, z5;

    z = r - (2.515517 + r * (0.802853 + r * 0.010328)) /
                (1.0 + r * (1.432788 + r * (0.189269 + r * 0.001308)));
    z3 = z * z * z;
    z5 = z3 * z * z;
    return z + (z3 + z) / (4.0 * df) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df);
}

double pb_rg_t_ppf(double p, double df)
{
    double q, lo = 0.0, hi = INFINITY, t, lc;

    if (!(df > 0.0) || !(p > 0.0) || !(p < 1.0))
        return NAN;
    if (p == 0.5)
        return 0.0;
    q = p > 0.5 ? p : 1.0 - p; /* solve in the upper half, mirror at the end */
    t = t_seed(q, df);
    if (!(t > 0.0) || !isfinite(t))
        t = 1.0;
    lc = lgamma(0.5 * (df + 1.0)) - lgamma(0.5 * df) - 0.5 * log(df * M_PI);
    for (int it = 0; it < 300; it++) {
        double f = pb_rg_t_cdf(t, df) - q, d1, step, next;

        if (f == 0.0)
            break;
        if (f < 0.0)
            lo = t;
        else
            hi = t;
        /* Halley: the pdf's log-derivative is -(df+1) t / (df+t^2), so the
         * step costs one CDF and one exp; convergence is cubic. */
        d1 = exp(lc - 0.5 * (df + 1.0) * log1p(t * t / df));
        step = f / d1;
        step /= 1.0 + 0.5 * step * (df + 1.0) * t / (df + t * t);
        next = t - step;
        if (!(next > lo && next < hi)) { /* left the bracket: widen or bisect */
            next = isinf(hi) ? 2.0 * t + 1.0 : 0.5 * (lo + hi);
        } else if (fabs(step) <= 1e-6 * fabs(t)) {
            t = next; /* the error after this step is ~|step|^3: done */
            break;
        }
        t = next;
    }
    return p > 0.5 ? t : -t;
}

static double lchoose(long n, long k) { return lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0); }

/* Two-sided Fisher p over tables with the margins of [[k1, n1-k1], [k2, n2-k2]]:
 * the sum of those no more probable than the observed one. */
static double fisher_two_sided(long k1, long n1, long k2, long n2)
{
    long K = k1 + k2, amin = K - n2 > 0 ? K - n2 : 0, amax = K < n1 ? K : n1;
    double base = lchoose(n1 + n2, K), lobs = lchoose(n1, k1) + lchoose(n2, k2) - base;
    double limit = lobs + log1p(RG_FISHER_REL), sum = 0.0;

    for (long a = amin; a <= amax; a++) {
        double lp = lchoose(n1, a) + lchoose(n2, K - a) - base;

        if (lp <= limit)
            sum += exp(lp);
    }
    return sum < 1.0 ? sum : 1.0;
}

static int counts_ok(long k1, long n1, long k2, long n2)
{
    return n1 > 0 && n2 > 0 && k1 >= 0 && k2 >= 0 && k1 <= n1 && k2 <= n2;
}

int pb_rg_two_prop_exact(long k1, long n1, long k2, long n2)
{
    double N = (double)n1 + (double)n2, K = (double)k1 + (double)k2;
    double rows[2] = {(double)n1, (double)n2}, cols[2] = {K, N - K};

    if (!counts_ok(k1, n1, k2, n2))
        return 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            if (rows[i] * cols[j] / N < 5.0)
                return 1;
    return 0;
}

static void wilson(long k, long n, double *lo, double *hi)
{
    double p = (double)k / n, z2 = RG_Z95 * RG_Z95, den = 1.0 + z2 / n;
    double mid = (p + z2 / (2.0 * n)) / den;
    double half = RG_Z95 * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * (double)n)) / den;

    *lo = mid - half;
    *hi = mid + half;
}

int pb_rg_two_prop(long k1, long n1, long k2, long n2, double *p_value, double *diff,
                   double *lo, double *hi)
{
    double p1, p2, l1, u1, l2, u2;

    if (!counts_ok(k1, n1, k2, n2) || !p_value || !diff || !lo || !hi)
        return PB_EINVAL;
    p1 = (double)k1 / n1;
    p2 = (double)k2 / n2;
    if (pb_rg_two_prop_exact(k1, n1, k2, n2)) {
        *p_value = fisher_two_sided(k1, n1, k2, n2);
    } else {
        double pool = ((double)k1 + k2) / ((double)n1 + n2);
        double se = sqrt(pool * (1.0 - pool) * (1.0 / n1 + 1.0 / n2));

        *p_value = se > 0.0 ? erfc(fabs(p1 - p2) / se / M_SQRT2) : 1.0;
    }
    wilson(k1, n1, &l1, &u1);
    wilson(k2, n2, &l2, &u2);
    *diff = p1 - p2;
    *lo = *diff - sqrt((p1 - l1) * (p1 - l1) + (u2 - p2) * (u2 - p2));
    *hi = *diff + sqrt((u1 - p1) * (u1 - p1) + (p2 - l2) * (p2 - l2));
    return 0;
}

int pb_rg_prop_drop(long k1, long n1, long k2, long n2, double alpha, double min_effect,
                    int *dropped, double *p_value)
{
    double p, diff, lo, hi;
    int rc;

    if (!dropped || !p_value || !(alpha > 0.0 && alpha < 1.0) || isnan(min_effect))
        return PB_EINVAL;
    rc = pb_rg_two_prop(k1, n1, k2, n2, &p, &diff, &lo, &hi);
    if (rc != 0)
        return rc;
    *p_value = p;
    *dropped = p < alpha && diff >= min_effect;
    return 0;
}

int pb_rg_perf_check(const double *history, size_t n, double x, double min_change,
                     double threshold, double conf, pb_rg_perf_t *res)
{
    double sum = 0.0, ss = 0.0, mean, half;
    size_t used = 0;

    if (!res || (n > 0 && !history) || !isfinite(x) || !(conf > 0.0 && conf < 1.0) ||
        !(min_change >= 0.0) || !(threshold >= 0.0))
        return PB_EINVAL;
    *res = (pb_rg_perf_t){.mean = NAN, .sd = NAN, .lo = NAN, .hi = NAN};
    /* The newest finite values; missing points (NaN) do not count. */
    for (size_t i = n; i > 0 && used < PB_RG_MAX_HISTORY; i--)
        if (isfinite(history[i - 1])) {
            sum += history[i - 1];
            used++;
        }
    res->n = used;
    if (used == 0)
        return 0;
    mean = sum / used;
    for (size_t i = n, seen = 0; i > 0 && seen < used; i--)
        if (isfinite(history[i - 1])) {
            ss += (history[i - 1] - mean) * (history[i - 1] - mean);
            seen++;
        }
    res->mean = mean;
    res->sd = used > 1 ? sqrt(ss / (used - 1)) : 0.0;
    if (mean != 0.0)
        res->change = (x - mean) / fabs(mean);
    else
        res->change = x == 0.0 ? 0.0 : copysign(INFINITY, x);
    if (used < 2) /* no spread to judge against */
        return 0;
    half = pb_rg_t_ppf(0.5 * (1.0 + conf), (double)(used - 1)) * res->sd * sqrt(1.0 + 1.0 / used);
    res->lo = mean - half;
    res->hi = mean + half;
    res->outside = x < res->lo || x > res->hi;
    res->flagged = res->outside && fabs(res->change) >= min_change && fabs(res->change) >= threshold;
    res->side = res->flagged ? (x > mean ? 1 : -1) : 0;
    return 0;
}

typedef struct {
    const double *v;  /* finite values, centred */
    const size_t *at; /* their index in the caller's array */
    const double *s1, *s2; /* prefix sums of v and v^2 */
    size_t min_side, cap, count;
    double alpha;
    size_t *cps;
    int rc;
} rg_seg_t;

static double seg_sse(const rg_seg_t *g, size_t a, size_t b)
{
    double s = g->s1[b] - g->s1[a], sse = g->s2[b] - g->s2[a] - s * s / (double)(b - a);

    return sse > 0.0 ? sse : 0.0;
}

static void seg_moments(const double *v, size_t a, size_t b, double *mean, double *var)
{
    double m = 0.0, ss = 0.0;

    for (size_t i = a; i < b; i++)
        m += v[i];
    m /= (double)(b - a);
    for (size_t i = a; i < b; i++)
        ss += (v[i] - m) * (v[i] - m);
    *mean = m;
    *var = ss / (double)(b - a - 1);
}

double pb_rg_welch(const double *v, size_t a, size_t k, size_t b)
{
    double m1, v1, m2, v2, n1 = (double)(k - a), n2 = (double)(b - k), e1, e2, t, df;

    seg_moments(v, a, k, &m1, &v1);
    seg_moments(v, k, b, &m2, &v2);
    e1 = v1 / n1;
    e2 = v2 / n2;
    if (e1 + e2 <= 0.0) /* both sides constant */
        return m1 == m2 ? 1.0 : 0.0;
    t = (m1 - m2) / sqrt(e1 + e2);
    df = (e1 + e2) * (e1 + e2) / (e1 * e1 / (n1 - 1.0) + e2 * e2 / (n2 - 1.0));
    return t_two_tail(t, df);
}

/* Split [a, b) where the squared error falls most, keep it if Welch agrees,
 * and recurse; left part first so the output comes out ascending. */
static void segment(rg_seg_t *g, size_t a, size_t b)
{
    double whole, best_gain = 0.0;
    size_t best = 0;

    if (g->rc != 0 || b - a < 2 * g->min_side)
        return;
    whole = seg_sse(g, a, b);
    for (size_t k = a + g->min_side; k + g->min_side <= b; k++) {
        double gain = whole - seg_sse(g, a, k) - seg_sse(g, k, b);

        if (gain > best_gain * (1.0 + 1e-12) + 1e-300) { /* first of near-ties wins */
            best_gain = gain;
            best = k;
        }
    }
    if (best == 0 || !(pb_rg_welch(g->v, a, best, b) < g->alpha))
        return;
    segment(g, a, best);
    if (g->rc != 0)
        return;
    if (g->count == g->cap) {
        g->rc = PB_ETOOBIG;
        return;
    }
    g->cps[g->count++] = g->at[best];
    segment(g, best, b);
}

int pb_rg_changepoints(const double *x, size_t n, size_t min_side, double alpha, size_t *cps,
                       size_t *n_cps)
{
    double v[PB_RG_MAX_POINTS], s1[PB_RG_MAX_POINTS + 1], s2[PB_RG_MAX_POINTS + 1], mean = 0.0;
    size_t at[PB_RG_MAX_POINTS], m = 0, start = n > PB_RG_MAX_POINTS ? n - PB_RG_MAX_POINTS : 0;
    rg_seg_t g;

    if ((n > 0 && !x) || !n_cps || (*n_cps > 0 && !cps) || min_side < 2 ||
        !(alpha > 0.0 && alpha < 1.0))
        return PB_EINVAL;
    for (size_t i = start; i < n; i++)
        if (isfinite(x[i])) {
            v[m] = x[i];
            at[m++] = i;
            mean += x[i];
        }
    /* Centring keeps the prefix-sum SSE from cancelling on large values. */
    mean = m ? mean / (double)m : 0.0;
    s1[0] = s2[0] = 0.0;
    for (size_t i = 0; i < m; i++) {
        v[i] -= mean;
        s1[i + 1] = s1[i] + v[i];
        s2[i + 1] = s2[i] + v[i] * v[i];
    }
    g = (rg_seg_t){.v = v, .at = at, .s1 = s1, .s2 = s2, .min_side = min_side,
                   .cap = *n_cps, .alpha = alpha, .cps = cps};
    segment(&g, 0, m);
    *n_cps = g.count;
    return g.rc;
}
