/* stderr logger: "2026-11-25T21:00:00.123Z coordinator INFO message". */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static int log_level = PB_LOG_INFO;
static const char *log_program = "posbench";

void pb_log_set_level(int level) { log_level = level; }

void pb_log_init_env(const char *program)
{
    const char *lvl = getenv("PB_LOG");
    log_program = program;
    if (lvl == NULL)
        return;
    if (strcmp(lvl, "debug") == 0)
        log_level = PB_LOG_DEBUG;
    else if (strcmp(lvl, "info") == 0)
        log_level = PB_LOG_INFO;
    else if (strcmp(lvl, "warn") == 0)
        log_level = PB_LOG_WARN;
    else if (strcmp(lvl, "error") == 0)
        log_level = PB_LOG_ERROR;
}

void pb_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < log_level)
        return;
    struct timeval tv;
    struct tm tm;
    char stamp[32];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03dZ %s %s %s\n", stamp, (int)(tv.tv_usec / 1000), log_program,
            names[level < 0 ? 0 : level > 3 ? 3 : level], line);
}
