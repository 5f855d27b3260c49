/* Counter-based randomness and hashing: item i of (suite, task, params,
 * bucket, seed) gets its own generator keyed by a hash of those values, so
 * any item can be regenerated alone, in any order, on any machine. */
#ifndef PB_RNG_H
#define PB_RNG_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a over bytes, continued from h (start with PB_HASH_INIT). */
#define PB_HASH_INIT 0xcbf29ce484222325ULL
uint64_t pb_hash_bytes(uint64_t h, const void *data, size_t n);
uint64_t pb_hash_str(uint64_t h, const char *s); /* includes a terminator byte */
uint64_t pb_hash_u64(uint64_t h, uint64_t v);
/* Lowercase hex of a 64-bit value into out[17]. */
void pb_hash_hex(uint64_t h, char out[17]);

/* splitmix64 step: mixes state and advances it. */
uint64_t pb_splitmix64(uint64_t *state);

/* xoshiro256** generator. */
typedef struct pb_rng {
    uint64_t s[4];
} pb_rng_t;

/* Seed from a key and a counter (the item index). */
void pb_rng_seed(pb_rng_t *r, uint64_t key, uint64_t counter);
uint64_t pb_rng_next(pb_rng_t *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t pb_rng_below(pb_rng_t *r, uint64_t n);
/* Uniform in [lo, hi] inclusive. */
int64_t pb_rng_range(pb_rng_t *r, int64_t lo, int64_t hi);
/* Uniform double in [0, 1). */
double pb_rng_double(pb_rng_t *r);

#endif
