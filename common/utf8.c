/* UTF-8 validation and repair (utf8.h). */
#include "common/utf8.h"

#include "common/pb.h"

/* Continuation bytes a lead byte needs and the range of the first one; 0
 * for a byte that cannot start a sequence. */
static int utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        return 1;
    if (c == 0xE0)
        *lo = 0xA0;
    if (c == 0xED)
        *hi = 0x9F;
    if (c >= 0xE0 && c <= 0xEF)
        return 2;
    if (c == 0xF0)
        *lo = 0x90;
    if (c == 0xF4)
        *hi = 0x8F;
    if (c >= 0xF0 && c <= 0xF4)
        return 3;
    return 0;
}

size_t pb_utf8_span(const unsigned char *s, size_t n, int *complete)
{
    unsigned char lo, hi;
    *complete = 1;
    if (s[0] < 0x80)
        return 1;
    int need = utf8_lead(s[0], &lo, &hi);
    size_t j = 1;
    *complete = 0;
    if (need == 0)
        return 1;
    for (int k = 0; k < need && j < n; k++, j++) {
        if (s[j] < (k ? 0x80 : lo) || s[j] > (k ? 0xBF : hi))
            return j;
    }
    *complete = j == (size_t)need + 1;
    return j;
}

size_t pb_utf8_valid_prefix(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        int complete;
        size_t span = pb_utf8_span(u + i, n - i, &complete);
        if (!complete)
            return i;
        i += span;
    }
    return n;
}

size_t pb_utf8_ready(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        size_t i = n - back;
        if ((u[i] & 0xC0) == 0x80)
            continue; /* a continuation byte: look further back */
        int complete;
        size_t span = pb_utf8_span(u + i, n - i, &complete);
        /* an unfinished but so far valid character waits for its bytes */
        return !complete && span == n - i && u[i] >= 0xC2 && u[i] <= 0xF4 ? i : n;
    }
    return n;
}

int pb_utf8_clean(const char *s, size_t n, pb_buf_t *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* valid bytes not yet copied start at run */
    while (i < n) {
        int complete;
        size_t span = pb_utf8_span(u + i, n - i, &complete);
        if (complete) {
            i += span;
            continue;
        }
        int rc = pb_buf_append(out, s + run, i - run);
        rc = rc ? rc : pb_buf_append(out, "\xEF\xBF\xBD", 3);
        if (rc)
            return rc;
        i += span;
        run = i;
    }
    return pb_buf_append(out, s + run, n - run);
}
