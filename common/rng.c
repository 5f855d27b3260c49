/* FNV-1a hashing, splitmix64 seeding and xoshiro256** (Blackman & Vigna),
 * written from the published algorithms. */
#include "common/rng.h"

#include <string.h>

uint64_t pb_hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t pb_hash_str(uint64_t h, const char *s)
{
    return pb_hash_bytes(h, s, strlen(s) + 1);
}

uint64_t pb_hash_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i)); /* fixed byte order on any host */
    return pb_hash_bytes(h, b, 8);
}

void pb_hash_hex(uint64_t h, char out[17])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[h & 15];
        h >>= 4;
    }
    out[16] = '\0';
}

uint64_t pb_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void pb_rng_seed(pb_rng_t *r, uint64_t key, uint64_t counter)
{
    uint64_t st = key ^ (counter * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
    st = pb_splitmix64(&st) ^ key;
    for (int i = 0; i < 4; i++)
        r->s[i] = pb_splitmix64(&st);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t pb_rng_next(pb_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t pb_rng_below(pb_rng_t *r, uint64_t n)
{
    /* Rejection sampling: discard the top partial range. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t x;
    do {
        x = pb_rng_next(r);
    } while (x >= limit);
    return x % n;
}

int64_t pb_rng_range(pb_rng_t *r, int64_t lo, int64_t hi)
{
    /* unsigned arithmetic: hi - lo overflows int64 for wide ranges, and the
     * full range has 2^64 values (span wraps to 0) */
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
    uint64_t x = span ? pb_rng_below(r, span) : pb_rng_next(r);
    return (int64_t)((uint64_t)lo + x);
}

double pb_rng_double(pb_rng_t *r)
{
    return (double)(pb_rng_next(r) >> 11) * 0x1.0p-53;
}
