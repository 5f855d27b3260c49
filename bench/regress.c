/* Regression-detection benchmark (issue 7): 10,000 synthetic series of 365
 * nightly points; a full pass replays every night through the stage 1 gate
 * (pb_rg_perf_check against the newest 64) and runs stage 2 change points
 * on each series' last 50. Prints seconds per full pass (target < 5 s).
 * Then the same series are loaded into a real store and the coordinator's
 * nightly change-point pass (pb_detect_scan over every series: SQLite reads,
 * detection, regression records) is timed on them. */
#include "common/regress.h"

#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "coordinator/detect.h"
#include "db/store.h"
#include "suites/suite.h"

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

/* Load the series into a fresh store (bulk, through a second connection)
 * and time pb_detect_scan over all of them. */
static int store_pass(const double *x)
{
    char path[] = "/tmp/pb-bench-regress-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    close(fd);
    pb_coord_t c;
    pb_err_t err = {0};
    memset(&c, 0, sizeof c);
    pb_log_set_level(PB_LOG_ERROR); /* one line per regression found otherwise */
    if (pdb_open(path, &c.db, &err) != 0) {
        fprintf(stderr, "bench_regress: %s\n", err.msg);
        return 1;
    }
    double t0 = now();
    for (size_t s = 0; s < SERIES; s++) {
        char params[64];
        int64_t id;
        snprintf(params, sizeof params, "{\"case\":%zu}", s);
        pdb_series_key_t k = {.model = "bench", .suite = "kernels", .task = "attention",
                              .params = params, .metric = "median_us", .bucket = 1024,
                              .kind = PS_KIND_LOWER, .testbed_id = 1};
        if (pdb_series_upsert(c.db, &k, 1.0, &id) != 0)
            return 1;
    }
    sqlite3 *sq = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open(path, &sq) != SQLITE_OK ||
        sqlite3_exec(sq, "PRAGMA busy_timeout = 10000; BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(sq, "INSERT INTO points(series_id, job_id, run_idx, t, value, n) "
                               "VALUES (?1, ?2, 0, ?2, ?3, 1)", -1, &st, NULL) != SQLITE_OK)
        return 1;
    for (size_t s = 0; s < SERIES; s++)
        for (size_t i = 0; i < POINTS; i++) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)s + 1);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)i + 1);
            sqlite3_bind_double(st, 3, x[s * POINTS + i]);
            if (sqlite3_step(st) != SQLITE_DONE)
                return 1;
            sqlite3_reset(st);
        }
    sqlite3_finalize(st);
    if (sqlite3_exec(sq, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return 1;
    sqlite3_close(sq);
    double load = now() - t0;
    t0 = now();
    json_t *sum = NULL;
    if (pb_detect_scan(&c, 1, 0, &sum) != 0)
        return 1;
    double dt = now() - t0;
    printf("regress: store with %d series x %d points loaded in %.1f s\n", SERIES, POINTS, load);
    printf("regress: %.3f s for the coordinator's change-point pass over the store "
           "(%lld change points, %lld regressions recorded)\n",
           dt, (long long)json_integer_value(json_object_get(sum, "change_points")),
           (long long)json_integer_value(json_object_get(sum, "regressions_created")));
    json_decref(sum);
    pdb_close(c.db);
    char aux[64];
    unlink(path);
    snprintf(aux, sizeof aux, "%s-wal", path);
    unlink(aux);
    snprintf(aux, sizeof aux, "%s-shm", path);
    unlink(aux);
    return 0;
}

int main(int argc, char **argv)
{
    int passes = argc > 1 ? atoi(argv[1]) : 1;
    double *x = malloc(sizeof(double) * SERIES * POINTS), best = 1e30;
    size_t flags = 0, cps_total = 0;
    uint64_t seed = 12345;

    if (x == NULL || passes < 1)
        return 1;
    /* A third of the series step by 10% somewhere in the last 50 nights:
     * half of those up (slower: regressions), half down (improvements). */
    for (size_t s = 0; s < SERIES; s++) {
        size_t step = s % 3 == 0 ? POINTS - 10 - s % 30 : POINTS;

        for (size_t i = 0; i < POINTS; i++)
            x[s * POINTS + i] = 100.0 * (1.0 + 0.01 * gauss(&seed)) * (i >= step ? (s % 6 == 0 ? 1.1 : 0.9) : 1.0);
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
    int rc = store_pass(x);
    free(x);
    return rc;
}
