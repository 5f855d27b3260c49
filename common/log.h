/* Logging to stderr with a level and a timestamp; daemons log here, kernels
 * and suites never do. Level from pb_log_set_level() or PB_LOG=debug|info|warn|error. */
#ifndef PB_LOG_H
#define PB_LOG_H

enum { PB_LOG_DEBUG, PB_LOG_INFO, PB_LOG_WARN, PB_LOG_ERROR };

void pb_log_set_level(int level);
/* Reads PB_LOG from the environment; unknown values keep the default (info). */
void pb_log_init_env(const char *program);
void pb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pb_debug(...) pb_log(PB_LOG_DEBUG, __VA_ARGS__)
#define pb_info(...) pb_log(PB_LOG_INFO, __VA_ARGS__)
#define pb_warn(...) pb_log(PB_LOG_WARN, __VA_ARGS__)
#define pb_error(...) pb_log(PB_LOG_ERROR, __VA_ARGS__)

#endif
