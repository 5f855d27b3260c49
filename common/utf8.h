/* UTF-8 for text that comes from outside (model replies, server bodies):
 * strict validation (no overlongs, surrogates or code points past
 * U+10FFFF) and repair that replaces each maximal invalid subpart with
 * U+FFFD, as the WHATWG decoder and OpenAI-compatible servers do, so a
 * reply stored by the native backend and one relayed by posbench-serve are
 * the same bytes. */
#ifndef PB_UTF8_H
#define PB_UTF8_H

#include <stddef.h>

#include "common/util.h"

/* Length of the sequence starting at s[0, n) (1 for ASCII or a byte that
 * cannot start one): how far it is valid; *complete says whether that is
 * a whole character. n >= 1. */
size_t pb_utf8_span(const unsigned char *s, size_t n, int *complete);
/* Length of the longest valid prefix of s[0, n). */
size_t pb_utf8_valid_prefix(const char *s, size_t n);
/* How much of s[0, n) can be emitted now: all of it, except an unfinished
 * but so far valid last character (a stream waits for its bytes). */
size_t pb_utf8_ready(const char *s, size_t n);
/* Append s[0, n) to out with every maximal invalid subpart replaced by
 * U+FFFD. 0 or PB_ENOMEM. */
int pb_utf8_clean(const char *s, size_t n, pb_buf_t *out);

#endif
