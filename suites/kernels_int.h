/* Private to the kernels suite: what kernels.c (tasks, params, items,
 * scores) shares with kernels_bench.c (each case set up from the run's RNG,
 * timed over repetitions and checked against a scalar reference), and what
 * the unit tests reach: the parsed params, the timing statistics and one
 * case's measurement with a seam that corrupts the output on purpose. */
#ifndef PS_KERNELS_INT_H
#define PS_KERNELS_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"

enum { PS_KN_ATTENTION, PS_KN_DECODE, PS_KN_ROPE, PS_KN_SIMILARITY };
/* Positional encodings an attention case applies (names: ps__kn_pe_name). */
enum { PS_KN_NOPE, PS_KN_ROPE_PLAIN, PS_KN_ROPE_PI, PS_KN_ROPE_NTK, PS_KN_ROPE_YARN,
       PS_KN_ALIBI, PS_KN_T5, PS_KN_N_PE };

#define PS_KN_MAX_BUCKETS 16
#define PS_KN_MAX_REPS 1000
#define PS_KN_MAX_WARMUP 100
/* Largest tensor one case allocates, in floats (q, k, v, docs each): 1 GiB
 * would fit, but a nightly case that needs it has outgrown this suite. */
#define PS_KN_MAX_FLOATS ((int64_t)1 << 25)

/* Parsed, validated params; also the run state. */
typedef struct ps_kn_params {
    int task;                               /* PS_KN_ATTENTION.. */
    int64_t buckets[PS_KN_MAX_BUCKETS];     /* ascending, distinct */
    int n_buckets;
    int reps, warmup, threads;              /* threads 0: the kernels' default */
    int isa;                                /* pk_isa_t */
    int heads, kv_heads, head_dim, bf16;    /* attention, decode; rope: heads, head_dim */
    int pe[PS_KN_N_PE], n_pe;               /* attention, decode: item i uses pe[i % n_pe] */
    int cached;                             /* rope: a cos/sin table of the bucket's positions */
    int queries, dim, topk, cosine;         /* similarity */
} ps_kn_params_t;

const char *ps__kn_pe_name(int pe);

/* One case's measurement. times_us: the reps timed runs, sorted; the
 * quantiles interpolate linearly between order statistics (NumPy's
 * default). ok: the last timed run's output checked against the scalar
 * reference; max_err: the largest |got - want| / (atol + rtol |want|) over
 * the checked outputs (ok iff <= 1). flops or bytes: the work of one run
 * (the other 0). threads, isa: what the kernels' context used. */
typedef struct ps_kn_outcome {
    double times_us[PS_KN_MAX_REPS];
    int reps;
    double min_us, p25_us, median_us, p75_us;
    int ok;
    double max_err;
    double flops, bytes;
    size_t checked;  /* outputs compared */
    int threads;
    const char *isa; /* static */
} ps_kn_outcome_t;

/* Sort us[0, n) and fill o's quantiles from it; n >= 1. */
void ps__kn_stats(double *us, size_t n, ps_kn_outcome_t *o);

/* The largest |got[i] - want[i]| / (atol + rtol |want[i]|) over n values,
 * folded into *max_err (a NaN in got counts as infinitely far). */
void ps__kn_compare(const float *got, const double *want, size_t n, double atol, double rtol,
                    double *max_err);

/* Measure one case: bucket under p with encoding pe (attention, decode),
 * inputs drawn from pb_rng_seed(key, idx). corrupt != 0 perturbs one output
 * of the last timed run before the check (the tests' wrong kernel). 0, or
 * PB_ENOMEM, PB_EUNSUPPORTED (an ISA this CPU lacks) or PB_EINVAL with err
 * set; o is filled on success. */
int ps__kn_measure_case(const ps_kn_params_t *p, int64_t bucket, int pe, uint64_t key,
                        uint64_t idx, int corrupt, ps_kn_outcome_t *o, pb_err_t *err);

#endif
