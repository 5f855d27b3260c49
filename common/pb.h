/* posbench common definitions: the one error table (X-macro) every module
 * returns codes from, and pb_strerror(). Functions return 0 on success and a
 * negative PB_E* code on failure. */
#ifndef PB_H
#define PB_H

#include <stddef.h>
#include <stdint.h>

#define PB_ERRORS(X)                                             \
    X(PB_OK, 0, "ok")                                            \
    X(PB_ENOMEM, -1, "out of memory")                            \
    X(PB_EINVAL, -2, "invalid argument")                         \
    X(PB_EIO, -3, "input/output error")                          \
    X(PB_ENOTFOUND, -4, "not found")                             \
    X(PB_EEXIST, -5, "already exists")                           \
    X(PB_ETOOBIG, -6, "too large")                               \
    X(PB_EPARSE, -7, "malformed input")                          \
    X(PB_EDB, -8, "database error")                              \
    X(PB_EPROTO, -9, "protocol error")                           \
    X(PB_ESTATE, -10, "invalid state for this operation")        \
    X(PB_ETIMEOUT, -11, "timed out")                             \
    X(PB_ECANCELLED, -12, "cancelled")                           \
    X(PB_EBACKEND, -13, "backend error")                         \
    X(PB_EUNSUPPORTED, -14, "not supported")                     \
    X(PB_ENET, -15, "network error")                             \
    X(PB_ESTALE, -16, "stale or duplicate")

enum {
#define PB_ERR_ENUM(name, code, text) name = code,
    PB_ERRORS(PB_ERR_ENUM)
#undef PB_ERR_ENUM
};

/* Text for an error code; never NULL. */
const char *pb_strerror(int code);

/* Error detail for functions that validate user input: a message and the
 * offending field (JSON path such as "runs[0].params.digits"), both
 * NUL-terminated and possibly empty. */
typedef struct pb_err {
    char msg[256];
    char field[128];
} pb_err_t;

/* Fill err (if non-NULL) and return code. printf-style message. */
int pb_err_set(pb_err_t *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define PB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PB_PROTOCOL_VERSION "PB1"

#endif
