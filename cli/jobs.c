/* Job commands: submit (with --wait progress on stderr), status (the job list
 * or one job's per-run, per-bucket progress) and cancel. pb_cli_wait_job is
 * shared with `posbench up --submit`. */
#include "cli/cli.h"

#include "common/util.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 500
#define BAR_WIDTH 30
#define MAX_IDEM_KEY 255

static int is_final(const char *state)
{
    return strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "cancelled") == 0;
}

/* Idempotency keys go into a header: printable ASCII only, bounded. */
static int idem_key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > MAX_IDEM_KEY)
        return 0;
    for (; *k; k++)
        if ((unsigned char)*k < 0x20 || (unsigned char)*k > 0x7e)
            return 0;
    return 1;
}

int pb_cli_submit_spec(pb_cli_t *c, const json_t *spec, const char *idem_key, int64_t *id)
{
    json_t *r = NULL;
    long status = 0;
    int rc = pb_cli_call(c, "POST", "/api/v1/jobs", spec, idem_key, &status, &r);
    *id = 0;
    if (rc)
        return pb_cli_exit_for(rc);
    *id = pb_cli_jint(r, "id", 0);
    int existing = json_is_true(json_object_get(r, "existing"));
    json_decref(r);
    if (*id <= 0) {
        fprintf(stderr, "error: coordinator replied %ld without a job id\n", status);
        return PB_CLI_FAIL;
    }
    if (existing)
        fprintf(stderr, "note: idempotency key already used: job %lld\n", (long long)*id);
    return PB_CLI_OK;
}

/* ---- waiting with progress ---- */

typedef struct progress {
    int tty;
    int drawn;         /* a bar is on screen without its newline */
    char state[16];    /* last state printed */
    int pct;           /* last percentage printed, -1 before the first */
    int64_t done;      /* last items_done printed */
    int64_t printed_ms;
} progress_t;

static void draw_bar(progress_t *p, int64_t id, int64_t done, int64_t total, const char *state)
{
    char bar[BAR_WIDTH + 1];
    int fill = total > 0 ? (int)((double)BAR_WIDTH * (double)done / (double)total) : 0;
    if (fill > BAR_WIDTH)
        fill = BAR_WIDTH;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
    bar[BAR_WIDTH] = '\0';
    char prog[64];
    pb_cli_fmt_progress(done, total, prog);
    fprintf(stderr, "\rjob %lld [%s] %s  %s\033[K", (long long)id, bar, prog, state);
    fflush(stderr);
    p->drawn = 1;
}

static void end_bar(progress_t *p)
{
    if (p->drawn)
        fputc('\n', stderr);
    p->drawn = 0;
}

static void show_progress(progress_t *p, int64_t id, const json_t *job)
{
    const char *state = pb_cli_jstr(job, "state", "?");
    int64_t done = pb_cli_jint(job, "items_done", 0);
    int64_t total = pb_cli_jint(job, "items_total", 0);
    int pct = total > 0 ? (int)(100.0 * (double)done / (double)total) : 0;
    int64_t now = pb_now_ms();

    if (p->tty) {
        draw_bar(p, id, done, total, state);
    } else {
        int changed = strcmp(state, p->state) != 0;
        int big_step = p->pct < 0 || abs(pct - p->pct) >= 10;
        int a_second = now - p->printed_ms >= 1000 && done != p->done;
        if (!changed && !big_step && !a_second)
            return;
        char prog[64];
        pb_cli_fmt_progress(done, total, prog);
        fprintf(stderr, "job %lld: %s %s\n", (long long)id, state, prog);
    }
    snprintf(p->state, sizeof p->state, "%s", state);
    p->pct = pct;
    p->done = done;
    p->printed_ms = now;
}

/* The failed tasks of a job as a table on f. */
static void print_failed_tasks(const json_t *job, FILE *f)
{
    const json_t *ft = json_object_get(job, "failed_tasks");
    if (!json_is_array(ft) || json_array_size(ft) == 0)
        return;
    static const char *const hdr[] = {"TASK", "BUCKET", "ATTEMPT", "ERROR"};
    pb_cli_table_t t;
    if (pb_cli_table_init(&t, 4, hdr, "rrrl"))
        return;
    size_t i;
    const json_t *x;
    json_array_foreach(ft, i, x) {
        char err[256];
        pb_cli_clip(pb_cli_jstr(x, "error", "-"), 120, err, sizeof err);
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(x, "id", 0));
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(x, "bucket", 0));
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(x, "attempt", 0));
        pb_cli_table_add(&t, err);
    }
    fputs("failed tasks:\n", f);
    pb_cli_table_print(&t, f, 2);
    pb_cli_table_free(&t);
}

static int report_final(int64_t id, const json_t *job)
{
    const char *state = pb_cli_jstr(job, "state", "?");
    if (strcmp(state, "done") == 0) {
        fprintf(stderr, "job %lld done: %lld items\n", (long long)id,
                (long long)pb_cli_jint(job, "items_done", 0));
        return PB_CLI_OK;
    }
    const char *err = pb_cli_jstr(job, "error", NULL);
    fprintf(stderr, "error: job %lld %s%s%s\n", (long long)id, state, err ? ": " : "",
            err ? err : "");
    print_failed_tasks(job, stderr);
    return PB_CLI_FAIL;
}

static int plain_sleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return 0;
}

int pb_cli_wait_job(pb_cli_t *c, int64_t id, pb_cli_sleep_fn sleep, void *arg)
{
    char path[64];
    progress_t p = {.tty = isatty(STDERR_FILENO), .pct = -1, .done = -1};
    snprintf(path, sizeof path, "/api/v1/jobs/%lld", (long long)id);
    for (;;) {
        json_t *job = NULL;
        int rc = pb_cli_get(c, path, &job);
        if (rc) {
            end_bar(&p);
            return pb_cli_exit_for(rc);
        }
        show_progress(&p, id, job);
        if (is_final(pb_cli_jstr(job, "state", "?"))) {
            end_bar(&p);
            int status = report_final(id, job);
            json_decref(job);
            return status;
        }
        json_decref(job);
        rc = sleep ? sleep(arg, POLL_MS) : plain_sleep(POLL_MS);
        if (rc) {
            end_bar(&p);
            return rc;
        }
    }
}

/* ---- submit ---- */

int pb_cli_cmd_submit(pb_cli_t *c, int argc, char **argv)
{
    enum { O_KEY = 256, O_WAIT, O_NAME, O_SEED, O_PRIO };
    static const struct option opts[] = {
        {"idempotency-key", required_argument, NULL, O_KEY},
        {"wait", no_argument, NULL, O_WAIT},
        {"name", required_argument, NULL, O_NAME},
        {"seed", required_argument, NULL, O_SEED},
        {"priority", required_argument, NULL, O_PRIO},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *name = NULL, *seed_s = NULL, *prio_s = NULL;
    int wait = 0, ch, rc;
    int64_t seed = 0, prio = 0, id = 0;
    json_t *spec = NULL;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_KEY: key = optarg; break;
        case O_WAIT: wait = 1; break;
        case O_NAME: name = optarg; break;
        case O_SEED: seed_s = optarg; break;
        case O_PRIO: prio_s = optarg; break;
        case 'h': pb_cli_usage("submit", stdout); return PB_CLI_OK;
        default: return pb_cli_bad_option("submit");
        }
    }
    if (optind + 1 != argc)
        return pb_cli_usage_error("submit", "expected one FILE (or - for stdin)");
    if (key && !idem_key_ok(key))
        return pb_cli_usage_error("submit", "--idempotency-key must be 1-%d printable "
                                  "ASCII characters", MAX_IDEM_KEY);
    if (seed_s && pb_cli_parse_int(seed_s, 0, INT64_MAX, &seed))
        return pb_cli_usage_error("submit", "--seed must be a non-negative integer");
    if (prio_s && pb_cli_parse_int(prio_s, INT32_MIN, INT32_MAX, &prio))
        return pb_cli_usage_error("submit", "--priority must be an integer");

    rc = pb_cli_read_spec(argv[optind], &spec);
    if (rc)
        goto out;
    if ((name && json_object_set_new(spec, "name", json_string(name))) ||
        (seed_s && json_object_set_new(spec, "seed", json_integer(seed))) ||
        (prio_s && json_object_set_new(spec, "priority", json_integer(prio)))) {
        fprintf(stderr, "error: cannot apply overrides (is --name valid UTF-8?)\n");
        rc = PB_CLI_USAGE;
        goto out;
    }
    rc = pb_cli_submit_spec(c, spec, key, &id);
    if (rc)
        goto out;
    printf("%lld\n", (long long)id);
    fflush(stdout);
    if (wait)
        rc = pb_cli_wait_job(c, id, NULL, NULL);
out:
    json_decref(spec);
    return rc;
}

/* ---- status ---- */

static void print_job_list(const json_t *r)
{
    static const char *const hdr[] = {"ID", "NAME", "STATE", "PROGRESS", "CREATED"};
    pb_cli_table_t t;
    const json_t *jobs = json_object_get(r, "jobs");
    if (pb_cli_table_init(&t, 5, hdr, "rllrl"))
        return;
    size_t i;
    const json_t *j;
    json_array_foreach(jobs, i, j) {
        char prog[64], created[40], name[80];
        pb_cli_fmt_progress(pb_cli_jint(j, "items_done", 0), pb_cli_jint(j, "items_total", 0),
                            prog);
        pb_cli_fmt_time(json_object_get(j, "created_at"), created);
        pb_cli_clip(pb_cli_jstr(j, "name", "-"), 40, name, sizeof name);
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(j, "id", 0));
        pb_cli_table_add(&t, name);
        pb_cli_table_add(&t, pb_cli_jstr(j, "state", "?"));
        pb_cli_table_add(&t, prog);
        pb_cli_table_add(&t, created);
    }
    if (json_array_size(jobs) == 0)
        printf("no jobs\n");
    else
        pb_cli_table_print(&t, stdout, 0);
    pb_cli_table_free(&t);
    int64_t next = pb_cli_jint(r, "next", 0);
    if (next > 0)
        fprintf(stderr, "more jobs: add --before %lld\n", (long long)next);
}

/* "queued 3, leased 2, done 10, ..." in the API's order, then any others. */
static void print_task_counts(const json_t *tasks)
{
    static const char *const order[] = {"queued", "leased", "done", "failed", "cancelled"};
    const char *sep = "";
    printf("  tasks:     ");
    for (size_t k = 0; k < PB_ARRAY_LEN(order); k++) {
        printf("%s%s %lld", sep, order[k], (long long)pb_cli_jint(tasks, order[k], 0));
        sep = ", ";
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)tasks, key, v) {
        int known = 0;
        for (size_t k = 0; k < PB_ARRAY_LEN(order); k++)
            known |= strcmp(order[k], key) == 0;
        if (!known)
            printf(", %s %lld", key, (long long)pb_cli_jint(tasks, key, 0));
    }
    printf("\n");
}

static void print_run(const json_t *run)
{
    char *params = pb_cli_fmt_json(json_object_get(run, "params"), 200);
    printf("\nrun %lld: %s/%s  samples %lld  version %lld  params %s\n",
           (long long)pb_cli_jint(run, "index", 0), pb_cli_jstr(run, "suite", "?"),
           pb_cli_jstr(run, "task", "?"), (long long)pb_cli_jint(run, "samples", 0),
           (long long)pb_cli_jint(run, "version", 0), params ? params : "-");
    free(params);

    static const char *const hdr[] = {"BUCKET", "ITEMS", "TASKS"};
    pb_cli_table_t t;
    if (pb_cli_table_init(&t, 3, hdr, "rrr"))
        return;
    size_t i;
    const json_t *b;
    json_array_foreach(json_object_get(run, "buckets"), i, b) {
        char items[64];
        pb_cli_fmt_progress(pb_cli_jint(b, "items_done", 0), pb_cli_jint(b, "items_total", 0),
                            items);
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(b, "bucket", 0));
        pb_cli_table_add(&t, items);
        pb_cli_table_addf(&t, "%lld/%lld", (long long)pb_cli_jint(b, "tasks_done", 0),
                          (long long)pb_cli_jint(b, "tasks_total", 0));
    }
    pb_cli_table_print(&t, stdout, 2);
    pb_cli_table_free(&t);
}

static void print_job(const json_t *job)
{
    char t[40], prog[64];
    const json_t *model = json_object_get(job, "model");
    printf("job %lld: %s\n", (long long)pb_cli_jint(job, "id", 0),
           pb_cli_jstr(job, "name", "-"));
    printf("  state:     %s\n", pb_cli_jstr(job, "state", "?"));
    printf("  model:     %s (%s)\n", pb_cli_jstr(model, "name", "-"),
           pb_cli_jstr(model, "backend", "-"));
    printf("  priority:  %lld\n", (long long)pb_cli_jint(job, "priority", 0));
    printf("  seed:      %lld\n", (long long)pb_cli_jint(job, "seed", 0));
    pb_cli_fmt_time(json_object_get(job, "created_at"), t);
    printf("  created:   %s\n", t);
    pb_cli_fmt_time(json_object_get(job, "started_at"), t);
    printf("  started:   %s\n", t);
    pb_cli_fmt_time(json_object_get(job, "finished_at"), t);
    printf("  finished:  %s\n", t);
    pb_cli_fmt_progress(pb_cli_jint(job, "items_done", 0), pb_cli_jint(job, "items_total", 0),
                        prog);
    printf("  items:     %s\n", prog);
    print_task_counts(json_object_get(job, "tasks"));
    const char *err = pb_cli_jstr(job, "error", NULL);
    if (err)
        printf("  error:     %s\n", err);
    size_t i;
    const json_t *run;
    json_array_foreach(json_object_get(job, "runs"), i, run)
        print_run(run);
    if (json_array_size(json_object_get(job, "failed_tasks")) > 0) {
        printf("\n");
        print_failed_tasks(job, stdout);
    }
}

int pb_cli_cmd_status(pb_cli_t *c, int argc, char **argv)
{
    enum { O_JSON = 256, O_STATE, O_LIMIT, O_BEFORE };
    static const struct option opts[] = {
        {"json", no_argument, NULL, O_JSON},
        {"state", required_argument, NULL, O_STATE},
        {"limit", required_argument, NULL, O_LIMIT},
        {"before", required_argument, NULL, O_BEFORE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *state = NULL, *limit = NULL, *before = NULL;
    int json = 0, ch, rc;
    int64_t id = 0, x;
    char path[512];
    json_t *r = NULL;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_JSON: json = 1; break;
        case O_STATE: state = optarg; break;
        case O_LIMIT: limit = optarg; break;
        case O_BEFORE: before = optarg; break;
        case 'h': pb_cli_usage("status", stdout); return PB_CLI_OK;
        default: return pb_cli_bad_option("status");
        }
    }
    if (argc - optind > 1)
        return pb_cli_usage_error("status", "expected at most one job ID");
    if (optind < argc && pb_cli_parse_id(argv[optind], &id))
        return pb_cli_usage_error("status", "job ID must be a positive integer");
    if (limit && pb_cli_parse_int(limit, 1, 10000, &x))
        return pb_cli_usage_error("status", "--limit must be between 1 and 10000");
    if (before && pb_cli_parse_id(before, &x))
        return pb_cli_usage_error("status", "--before must be a job ID");

    if (id > 0) {
        snprintf(path, sizeof path, "/api/v1/jobs/%lld", (long long)id);
    } else {
        snprintf(path, sizeof path, "/api/v1/jobs");
        if (pb_cli_query(path, sizeof path, "state", state) ||
            pb_cli_query(path, sizeof path, "limit", limit ? limit : "20") ||
            pb_cli_query(path, sizeof path, "before", before))
            return pb_cli_usage_error("status", "arguments too long");
    }
    rc = pb_cli_get(c, path, &r);
    if (rc)
        return pb_cli_exit_for(rc);
    if (json)
        pb_cli_print_json(r);
    else if (id > 0)
        print_job(r);
    else
        print_job_list(r);
    json_decref(r);
    return PB_CLI_OK;
}

/* ---- cancel ---- */

int pb_cli_cmd_cancel(pb_cli_t *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    int64_t id;
    char path[64];
    json_t *r = NULL;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'h') {
            pb_cli_usage("cancel", stdout);
            return PB_CLI_OK;
        }
        return pb_cli_bad_option("cancel");
    }
    if (optind + 1 != argc || pb_cli_parse_id(argv[optind], &id))
        return pb_cli_usage_error("cancel", "expected one job ID");
    snprintf(path, sizeof path, "/api/v1/jobs/%lld/cancel", (long long)id);
    int rc = pb_cli_call(c, "POST", path, NULL, NULL, NULL, &r);
    if (rc)
        return pb_cli_exit_for(rc);
    printf("job %lld %s (%lld tasks cancelled)\n", (long long)id,
           pb_cli_jstr(r, "state", "cancelled"), (long long)pb_cli_jint(r, "cancelled_tasks", 0));
    json_decref(r);
    return PB_CLI_OK;
}
