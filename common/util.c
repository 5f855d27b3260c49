/* Clocks, timestamps, the Wilson interval and the capped buffer. */
#include "common/util.h"
#include "common/pb.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int64_t pb_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pb_now_ms(void) { return pb_now_us() / 1000; }

double pb_wall_time(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

void pb_iso8601(double t, char out[32])
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void pb_wilson(double k, double n, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    const double z = 1.959963984540054;
    double p = k / n > 1.0 ? 1.0 : k / n < 0.0 ? 0.0 : k / n, z2 = z * z;
    double denom = 1.0 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / denom;
    double half = z * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom;
    *lo = centre - half < 0.0 ? 0.0 : centre - half;
    *hi = centre + half > 1.0 ? 1.0 : centre + half;
}

void pb_buf_init(pb_buf_t *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

static int buf_reserve(pb_buf_t *b, size_t need)
{
    if ((b->limit && need > b->limit) || need >= SIZE_MAX / 2)
        return PB_ETOOBIG;
    if (need + 1 <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need + 1)
        ncap *= 2;
    char *p = realloc(b->data, ncap);
    if (p == NULL)
        return PB_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int pb_buf_append(pb_buf_t *b, const void *data, size_t n)
{
    int rc = buf_reserve(b, b->len + n);
    if (rc)
        return rc;
    if (n > 0) /* data may be NULL for an empty append */
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int pb_buf_puts(pb_buf_t *b, const char *s) { return pb_buf_append(b, s, strlen(s)); }

int pb_buf_printf(pb_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PB_EINVAL;
    int rc = buf_reserve(b, b->len + (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int pb_buf_cstr(pb_buf_t *b)
{
    int rc = buf_reserve(b, b->len);
    if (rc == 0)
        b->data[b->len] = '\0'; /* a fresh buffer has no terminator yet */
    return rc;
}

void pb_buf_reset(pb_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void pb_buf_free(pb_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int pb_grow(void *arr, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    if (need > SIZE_MAX / 2 / elem)
        return PB_ENOMEM; /* doubling or sizing would overflow */
    size_t nc = *cap ? *cap : first;
    while (nc < need)
        nc *= 2;
    void **slot = arr;
    void *p = realloc(*slot, nc * elem);
    if (p == NULL)
        return PB_ENOMEM;
    *slot = p;
    *cap = nc;
    return 0;
}

int pb_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return PB_EINVAL;
    size_t hl = (size_t)(colon - s);
    if (hl >= hostlen)
        return PB_EINVAL;
    /* digits only: strtol alone would take " 80", "+80" and "-0" */
    const char *d = colon + 1;
    if (*d == '\0' || strspn(d, "0123456789") != strlen(d) || strlen(d) > 5)
        return PB_EINVAL;
    long p = strtol(d, NULL, 10);
    if (p > 65535)
        return PB_EINVAL;
    if (hl == 0)
        snprintf(host, hostlen, "127.0.0.1");
    else {
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    *port = (int)p;
    return 0;
}
