/* Cron parsing and next-fire computation, minute by minute with day skips. */
#include "coordinator/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int parse_value(const char *s, size_t n, int lo, int hi, const char *const *names,
                       int names_base, int *out)
{
    if (n == 0)
        return -1;
    if (names && n == 3 && isalpha((unsigned char)s[0])) {
        int count = names == dow_names ? 7 : 12;
        for (int i = 0; i <= hi - names_base && i < count; i++)
            if (strncasecmp(s, names[i], 3) == 0) {
                *out = i + names_base;
                return 0;
            }
        return -1;
    }
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]) || v > 1000)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* One field: comma list of '*', N, N-M, with optional /STEP. */
static int parse_field(const char *f, int lo, int hi, const char *const *names, int names_base,
                       uint64_t *bits, int *star)
{
    *bits = 0;
    *star = strcmp(f, "*") == 0;
    const char *p = f;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *slash = memchr(p, '/', len);
        size_t rlen = slash ? (size_t)(slash - p) : len;
        int a, b, step = 1;
        if (slash) {
            if (parse_value(slash + 1, len - rlen - 1, 1, hi, NULL, 0, &step))
                return -1;
        }
        if (rlen == 1 && p[0] == '*') {
            a = lo;
            b = hi;
        } else {
            const char *dash = memchr(p, '-', rlen);
            if (dash) {
                if (parse_value(p, (size_t)(dash - p), lo, hi, names, names_base, &a) ||
                    parse_value(dash + 1, rlen - (size_t)(dash - p) - 1, lo, hi, names,
                                names_base, &b) ||
                    a > b)
                    return -1;
            } else {
                if (parse_value(p, rlen, lo, hi, names, names_base, &a))
                    return -1;
                b = slash ? hi : a;
            }
        }
        for (int v = a; v <= b; v += step)
            *bits |= (uint64_t)1 << v;
        p += len;
        if (*p == ',') {
            p++;
            if (*p == '\0')
                return -1;
        }
    }
    return *bits ? 0 : -1;
}

int pb_cron_parse(const char *expr, pb_cron_t *out, pb_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (expr == NULL)
        return pb_err_set(err, PB_EINVAL, "cron", "cron expression is required");
    const char *e = expr;
    if (strncmp(e, "@every ", 7) == 0) {
        char *end;
        long long n = strtoll(e + 7, &end, 10);
        int64_t mult = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 0;
        if (end == e + 7 || n <= 0 || n > 366LL * 24 * 3600 || mult == 0 || end[1] != '\0')
            return pb_err_set(err, PB_EINVAL, "cron",
                              "bad interval in \"%s\": want @every N followed by s, m or h", expr);
        out->every_s = (int64_t)n * mult;
        return 0;
    }
    if (strcmp(e, "@hourly") == 0)
        e = "0 * * * *";
    else if (strcmp(e, "@daily") == 0 || strcmp(e, "@midnight") == 0)
        e = "0 0 * * *";
    else if (strcmp(e, "@nightly") == 0)
        e = "0 2 * * *";
    else if (strcmp(e, "@weekly") == 0)
        e = "0 0 * * 0";
    else if (strcmp(e, "@monthly") == 0)
        e = "0 0 1 * *";
    char buf[256];
    if (strlen(e) >= sizeof buf)
        return pb_err_set(err, PB_EINVAL, "cron", "cron expression too long");
    snprintf(buf, sizeof buf, "%s", e);
    char *fields[6];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == 6)
            break;
        fields[n++] = t;
    }
    if (n != 5)
        return pb_err_set(err, PB_EINVAL, "cron",
                          "cron expression needs 5 fields (minute hour day month weekday), got %d",
                          n);
    static const char *const names[] = {"minute", "hour", "day-of-month", "month", "day-of-week"};
    uint64_t bits[5];
    int star[5];
    const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
    for (int i = 0; i < 5; i++) {
        const char *const *nm = i == 3 ? month_names : i == 4 ? dow_names : NULL;
        if (parse_field(fields[i], lo[i], hi[i], nm, i == 3 ? 1 : 0, &bits[i], &star[i]))
            return pb_err_set(err, PB_EINVAL, "cron", "bad %s field \"%s\" in cron expression",
                              names[i], fields[i]);
    }
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 = Sunday too */
    out->dom_star = star[2];
    out->dow_star = star[4];
    return 0;
}

static int day_matches(const pb_cron_t *c, const struct tm *tm)
{
    int dom_ok = (c->dom >> tm->tm_mday) & 1;
    int dow_ok = (c->dow >> tm->tm_wday) & 1;
    /* Classic cron: when both fields are restricted, either may match. */
    if (!c->dom_star && !c->dow_star)
        return dom_ok || dow_ok;
    return dom_ok && dow_ok;
}

double pb_cron_next(const pb_cron_t *c, double after)
{
    if (c->every_s > 0)
        return after + (double)c->every_s;
    time_t t = (time_t)after;
    t = t - (t % 60) + 60; /* next whole minute strictly after */
    time_t limit = t + (time_t)5 * 366 * 86400;
    while (t < limit) {
        struct tm tm;
        gmtime_r(&t, &tm);
        if (!((c->month >> (tm.tm_mon + 1)) & 1) || !day_matches(c, &tm)) {
            t += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60); /* next midnight */
            continue;
        }
        if (!((c->hour >> tm.tm_hour) & 1)) {
            t += 3600 - tm.tm_min * 60;
            continue;
        }
        if (!((c->minute >> tm.tm_min) & 1)) {
            t += 60;
            continue;
        }
        return (double)t;
    }
    return -1;
}
