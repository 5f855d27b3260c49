/* SHA-256 (FIPS 180-4), written here: user datasets are stored and fetched
 * by the hash of their content, so the coordinator (on upload) and the
 * worker (after a download) must agree on it byte for byte. */
#ifndef PB_SHA256_H
#define PB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define PB_SHA256_LEN 32
#define PB_SHA256_HEX 65 /* 64 lowercase hex digits and the NUL */

typedef struct pb_sha256 {
    uint32_t h[8];
    uint64_t bytes;        /* message length so far */
    unsigned char blk[64]; /* partial block */
    size_t n;              /* bytes held in blk */
} pb_sha256_t;

void pb_sha256_init(pb_sha256_t *s);
void pb_sha256_update(pb_sha256_t *s, const void *data, size_t len);
/* Finish and write the digest; s must be initialised again before reuse. */
void pb_sha256_final(pb_sha256_t *s, unsigned char out[PB_SHA256_LEN]);
/* One call: the lowercase hex digest of data[0, len). */
void pb_sha256_hex(const void *data, size_t len, char out[PB_SHA256_HEX]);
/* Digest bytes to lowercase hex. */
void pb_sha256_to_hex(const unsigned char d[PB_SHA256_LEN], char out[PB_SHA256_HEX]);
/* 1 when s is exactly 64 lowercase hex digits. */
int pb_sha256_is_hex(const char *s);

#endif
