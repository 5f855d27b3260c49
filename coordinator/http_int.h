/* Private to the HTTP server (http.c, http_util.c): helpers shared between
 * the connection code and the request/response helpers. */
#ifndef PB_HTTP_INT_H
#define PB_HTTP_INT_H

#include <stddef.h>

/* Percent-decode s[0..n) into out (outlen bytes including the NUL); '+'
 * becomes a space when plus is set. Returns the decoded length, -1 for a bad
 * escape or %00 (it would cut the C string), -2 when out is too small. */
long pb_http__url_decode(const char *s, size_t n, int plus, char *out, size_t outlen);

/* A bound, listening, non-blocking socket on host:port ("" or "localhost":
 * 127.0.0.1) into *fd_out. PB_EINVAL for an unparsable address, PB_ENET
 * (logged) when it cannot listen. */
int pb_http__bind(const char *host, int port, int *fd_out);

#endif
