/* posbench CLI internals: the HTTP client over libcurl (client.c), table and
 * value formatting (output.c), the job commands (jobs.c), result listings
 * (results.c), the registry/schedule commands (commands.c), regressions
 * (regressions.c) and the local cluster launcher (up.c). Private to the posbench program. */
#ifndef PB_CLI_H
#define PB_CLI_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "common/pb.h"

/* Process exit statuses; every command returns one of these. */
enum {
    PB_CLI_OK = 0,     /* success */
    PB_CLI_FAIL = 1,   /* the API refused, or the job failed / was cancelled */
    PB_CLI_USAGE = 2,  /* bad arguments or unreadable spec */
    PB_CLI_NOCONN = 3, /* cannot connect to the coordinator */
};

#define PB_CLI_DEFAULT_URL "http://127.0.0.1:8080"
#define PB_CLI_MAX_RESPONSE (64u << 20) /* bytes of one HTTP response body */
#define PB_CLI_MAX_SPEC (16u << 20)     /* bytes of a job spec file */

/* One connection context; a single curl handle is reused across requests. */
typedef struct pb_cli {
    char url[512]; /* base URL, no trailing slash */
    CURL *curl;
    int quiet;       /* set: failed requests print nothing (health probes) */
    long timeout_ms; /* whole-request limit; 0 = 60 s */
    /* Set: the next POST sends these bytes (borrowed) as raw_type instead
     * of a JSON body (dataset uploads). */
    const char *raw_body;
    size_t raw_len;
    const char *raw_type;
} pb_cli_t;

/* ---- client.c ---- */

/* Set up c for base url. PB_EINVAL for an over-long URL, PB_ENOMEM. */
int pb_cli_init(pb_cli_t *c, const char *url);
void pb_cli_close(pb_cli_t *c);

/* One request. method "GET" or "POST"; body (may be NULL) is sent as JSON;
 * idem_key (may be NULL) becomes the Idempotency-Key header. On a 2xx reply
 * *out owns the parsed body and 0 is returned; *status (may be NULL) gets the
 * HTTP status whenever one arrived. Failures are printed to stderr unless
 * c->quiet, *out is NULL, and the code says what happened: PB_ENET (could not
 * connect), PB_ETIMEOUT, PB_ETOOBIG (reply over the cap), PB_EPARSE (not JSON),
 * PB_ENOTFOUND (404), PB_ESTATE (409), PB_EPROTO (other API error), PB_EIO. */
int pb_cli_call(pb_cli_t *c, const char *method, const char *path, const json_t *body,
                const char *idem_key, long *status, json_t **out);
int pb_cli_get(pb_cli_t *c, const char *path, json_t **out);

/* Append "?key=value" or "&key=value" (value URL-encoded) to a NUL-terminated
 * path held in a buffer of size n. Skips a NULL value. PB_ETOOBIG if full. */
int pb_cli_query(char *path, size_t n, const char *key, const char *value);

/* Exit status for a client error code (PB_ENET -> 3, others -> 1). */
int pb_cli_exit_for(int rc);

/* ---- output.c ---- */

/* An aligned plain-text table, filled cell by cell, row-major. */
typedef struct pb_cli_table {
    size_t ncols;
    const char *align; /* one 'l' or 'r' per column */
    char **cells;
    size_t ncells, cap;
} pb_cli_table_t;

/* headers: ncols strings. align: ncols chars of 'l'/'r'. */
int pb_cli_table_init(pb_cli_table_t *t, size_t ncols, const char *const *headers,
                      const char *align);
/* Add one cell (NULL prints "-"). Control characters are escaped. */
int pb_cli_table_add(pb_cli_table_t *t, const char *cell);
int pb_cli_table_addf(pb_cli_table_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print with columns two spaces apart; indent spaces before each line. */
void pb_cli_table_print(const pb_cli_table_t *t, FILE *f, int indent);
void pb_cli_table_free(pb_cli_table_t *t);

/* Typed reads of obj[key] that tolerate absence and wrong types. */
const char *pb_cli_jstr(const json_t *obj, const char *key, const char *dflt);
int64_t pb_cli_jint(const json_t *obj, const char *key, int64_t dflt);
/* NaN when absent or not a number. */
double pb_cli_jnum(const json_t *obj, const char *key);

/* Formatting: accuracy with 3 decimals ("-" for NaN), a CI as "[lo, hi]",
 * a timestamp (ISO string or epoch number) and "done/total pct%". */
void pb_cli_fmt_acc(double v, char out[32]);
void pb_cli_fmt_ci(double lo, double hi, char out[48]);
void pb_cli_fmt_time(const json_t *v, char out[40]);
void pb_cli_fmt_progress(int64_t done, int64_t total, char out[64]);
/* Any JSON value as compact text for people (reals to 6 digits), clipped to
 * max code points with "..."; malloc'd, NULL on failure. */
char *pb_cli_fmt_json(const json_t *v, size_t max);
/* Clip s to max code points with "..." into out (size n), escaping controls. */
void pb_cli_clip(const char *s, size_t max, char *out, size_t n);

/* Write one CSV field (quoted when needed) followed by sep. */
void pb_cli_csv(FILE *f, const char *s, char sep);
/* Pretty-print a JSON value to stdout with a newline. */
void pb_cli_print_json(const json_t *v);

/* Parse a positive integer id / an integer in [min, max]. PB_EINVAL if not. */
int pb_cli_parse_id(const char *s, int64_t *out);
int pb_cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Read a job spec from path ("-" = stdin) as a JSON object, capped at
 * PB_CLI_MAX_SPEC. Prints the reason and returns PB_CLI_USAGE on failure
 * (*out NULL), PB_CLI_OK with *out owned on success. */
int pb_cli_read_spec(const char *path, json_t **out);

/* ---- main.c ---- */

/* Print usage of command cmd (or the overview for NULL) to f. */
void pb_cli_usage(const char *cmd, FILE *f);
/* Print "posbench CMD: message" and the command usage to stderr; returns
 * PB_CLI_USAGE. */
int pb_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* After getopt reported a bad option: usage to stderr, PB_CLI_USAGE. */
int pb_cli_bad_option(const char *cmd);

/* ---- jobs.c ---- */

/* Sleep hook for the progress loop: waits up to ms milliseconds and returns
 * 0 to go on, or an exit status to stop waiting with. */
typedef int (*pb_cli_sleep_fn)(void *arg, int ms);

/* POST spec; prints nothing on stdout. *id gets the job id. Returns an exit
 * status (PB_CLI_OK on success). */
int pb_cli_submit_spec(pb_cli_t *c, const json_t *spec, const char *idem_key, int64_t *id);
/* Poll job id every 0.5 s with progress on stderr until it is final. Returns
 * PB_CLI_OK when done, PB_CLI_FAIL when failed/cancelled (error and failed
 * tasks printed), or the client's/sleep hook's status. sleep may be NULL. */
int pb_cli_wait_job(pb_cli_t *c, int64_t id, pb_cli_sleep_fn sleep, void *arg);

int pb_cli_cmd_submit(pb_cli_t *c, int argc, char **argv);
int pb_cli_cmd_status(pb_cli_t *c, int argc, char **argv);
int pb_cli_cmd_cancel(pb_cli_t *c, int argc, char **argv);

/* ---- results.c ---- */

int pb_cli_cmd_results(pb_cli_t *c, int argc, char **argv);
int pb_cli_cmd_items(pb_cli_t *c, int argc, char **argv);

/* ---- commands.c ---- */

/* Print the leaderboard (suite/task may be NULL) as a table or JSON; returns
 * an exit status. */
int pb_cli_print_leaderboard(pb_cli_t *c, const char *suite, const char *task, int json);

int pb_cli_cmd_workers(pb_cli_t *c, int argc, char **argv);
int pb_cli_cmd_leaderboard(pb_cli_t *c, int argc, char **argv);
int pb_cli_cmd_suites(pb_cli_t *c, int argc, char **argv);
int pb_cli_cmd_schedule(pb_cli_t *c, int argc, char **argv);

/* ---- datasets.c ---- */

int pb_cli_cmd_dataset(pb_cli_t *c, int argc, char **argv);

/* ---- export.c ---- */

int pb_cli_cmd_export(pb_cli_t *c, int argc, char **argv);

/* ---- regressions.c ---- */

/* List regressions (exit 1 while any is unacknowledged) or triage one. */
int pb_cli_cmd_regressions(pb_cli_t *c, int argc, char **argv);

/* ---- up.c ---- */

int pb_cli_cmd_up(pb_cli_t *c, int argc, char **argv);

#endif
