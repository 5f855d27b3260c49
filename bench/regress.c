/* Regression-detection benchmark (issue 7): 10,000 synthetic series of 365
 * nightly points; a full pass replays every night through the stage 1 gate
 * (pb_rg_perf_check against the newest 64) and runs stage 2 change points
 * on each series' last 50. Prints seconds per full pass (target < 5 s). */
#include "common/regress.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SERIES 10000
#define POINTS 365

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double gauss(uint64_t *s)
{
    double u1, u2;

    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    u1 = ((*s >> 11) + 1.0) / 9007199254740993.0;
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    u2 = (*s >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

int main(int argc, char **argv)
{
    int passes = argc > 1 ? atoi(argv[1]) : 1;
    double *x = malloc(sizeof(double) * SERIES * POINTS), best = 1e30;
    size_t flags = 0, cps_total = 0;
    uint64_t seed = 12345;

    if (x == NULL || passes < 1)
        return 1;
    /* A third of the series step down 10% somewhere in the last 50 nights. */
    for (size_t s = 0; s < SERIES; s++) {
        size_t step = s % 3 == 0 ? POINTS - 10 - s % 30 : POINTS;

        for (size_t i = 0; i < POINTS; i++)
            x[s * POINTS + i] = 100.0 * (1.0 + 0.01 * gauss(&seed)) * (i >= step ? 0.9 : 1.0);
    }
    for (int p = 0; p < passes; p++) {
        double t0 = now(), dt;

        flags = cps_total = 0;
        for (size_t s = 0; s < SERIES; s++) {
            const double *v = x + s * POINTS;
            size_t cps[16], k = 16;
            pb_rg_perf_t r;

            for (size_t d = 2; d < POINTS; d++) {
                size_t from = d > PB_RG_MAX_HISTORY ? d - PB_RG_MAX_HISTORY : 0;

                if (pb_rg_perf_check(v + from, d - from, v[d], 0.01, 0.05, 0.99, &r) != 0)
                    return 1;
                flags += (size_t)r.flagged;
            }
            if (pb_rg_changepoints(v, POINTS, 6, 0.001, cps, &k) != 0)
                return 1;
            cps_total += k;
        }
        dt = now() - t0;
        best = dt < best ? dt : best;
    }
    printf("regress: %d series x %d points, %zu gate flags, %zu change points\n", SERIES, POINTS,
           flags, cps_total);
    printf("regress: %.3f s per full pass (best of %d; target < 5 s)\n", best, passes);
    free(x);
    return 0;
}
