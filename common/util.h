/* Small shared helpers: clocks, ISO-8601 timestamps, the Wilson interval,
 * and a growable byte buffer with a size cap. */
#ifndef PB_UTIL_H
#define PB_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in milliseconds / microseconds. */
int64_t pb_now_ms(void);
int64_t pb_now_us(void);
/* Wall clock, seconds since the epoch (fractional). */
double pb_wall_time(void);
/* "2026-11-25T21:00:00Z" for a wall time in seconds; out needs 32 bytes. */
void pb_iso8601(double t, char out[32]);

/* 95% Wilson score interval for k successes out of n (z = 1.959964).
 * n == 0 gives [0, 1]. */
void pb_wilson(double k, double n, double *lo, double *hi);

/* Growable buffer with a cap. Hitting the cap is PB_ETOOBIG, never a crash. */
typedef struct pb_buf {
    char *data;
    size_t len;
    size_t cap;   /* allocated */
    size_t limit; /* maximum len; 0 = unlimited */
} pb_buf_t;

void pb_buf_init(pb_buf_t *b, size_t limit);
int pb_buf_append(pb_buf_t *b, const void *data, size_t n);
/* pb_buf_append of a NUL-terminated string (without the NUL). */
int pb_buf_puts(pb_buf_t *b, const char *s);
int pb_buf_printf(pb_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ensures data is NUL-terminated (not counted in len). */
int pb_buf_cstr(pb_buf_t *b);
void pb_buf_reset(pb_buf_t *b);
void pb_buf_free(pb_buf_t *b);

/* Grow a malloc'd array so it holds at least need elements of elem bytes:
 * *arr (a pointer to the array pointer) and *cap are updated, doubling from
 * first. Returns 0, or PB_ENOMEM with the array untouched. */
int pb_grow(void *arr, size_t *cap, size_t need, size_t elem, size_t first);

/* Parse "HOST:PORT" (HOST may be empty = 127.0.0.1). Returns 0 or PB_EINVAL. */
int pb_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
