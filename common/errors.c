/* The error table's text and the pb_err_t helper. */
#include "common/pb.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *pb_strerror(int code)
{
    switch (code) {
#define PB_ERR_CASE(name, c, text) \
    case c:                        \
        return text;
        PB_ERRORS(PB_ERR_CASE)
#undef PB_ERR_CASE
    }
    return "unknown error";
}

int pb_err_set(pb_err_t *err, int code, const char *field, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    return code;
}
