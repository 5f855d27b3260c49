/* Registry and cluster commands: workers, leaderboard, suites, and the cron
 * schedules (add, list, enable, disable). Each reads one endpoint and prints
 * an aligned table, or the raw JSON when asked. */
#include "cli/cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Options shared by the listing commands: --json / --format, --help. */
static int list_options(const char *cmd, int argc, char **argv, int *json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'j') {
            *json = 1;
        } else if (ch == 'h') {
            pb_cli_usage(cmd, stdout);
            return -1;
        } else {
            return pb_cli_bad_option(cmd);
        }
    }
    if (optind != argc)
        return pb_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* ---- workers ---- */

/* "cpu, 16 cores, native,oracle" from a capabilities object. */
static void caps_summary(const json_t *caps, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    if (!json_is_object(caps)) {
        char *s = pb_cli_fmt_json(caps, 40);
        snprintf(out, n, "%s", s ? s : "-");
        free(s);
        return;
    }
    const char *dev = pb_cli_jstr(caps, "device", NULL);
    int64_t cores = pb_cli_jint(caps, "cores", 0);
    if (dev)
        o += (size_t)snprintf(out + o, n - o, "%s", dev);
    if (cores > 0 && o < n)
        o += (size_t)snprintf(out + o, n - o, "%s%lld cores", o ? ", " : "", (long long)cores);
    size_t i;
    const json_t *b;
    const char *sep = o ? ", " : "";
    json_array_foreach(json_object_get(caps, "backends"), i, b) {
        if (o < n && json_is_string(b)) {
            o += (size_t)snprintf(out + o, n - o, "%s%s", sep, json_string_value(b));
            sep = ",";
        }
    }
    if (o == 0)
        snprintf(out, n, "-");
}

/* Task ids "12,13" (or compact JSON for anything else). */
static char *current_tasks(const json_t *v)
{
    size_t i;
    const json_t *x;
    int ints = json_is_array(v);
    json_array_foreach(v, i, x)
        ints &= json_is_integer(x);
    if (!ints)
        return pb_cli_fmt_json(v, 40);
    if (json_array_size(v) == 0)
        return strdup("-");
    char buf[128];
    size_t o = 0;
    json_array_foreach(v, i, x) {
        if (o < sizeof buf)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%lld", i ? "," : "",
                                  (long long)json_integer_value(x));
    }
    return strdup(buf);
}

int pb_cli_cmd_workers(pb_cli_t *c, int argc, char **argv)
{
    static const char *const hdr[] = {"NAME",      "STATE", "CAPABILITIES", "CONNECTED",
                                      "LAST SEEN", "DONE",  "CURRENT"};
    int json = 0;
    int rc = list_options("workers", argc, argv, &json);
    json_t *r = NULL;
    pb_cli_table_t t;
    if (rc)
        return rc < 0 ? PB_CLI_OK : rc;
    rc = pb_cli_get(c, "/api/v1/workers", &r);
    if (rc)
        return pb_cli_exit_for(rc);
    if (json) {
        pb_cli_print_json(r);
        goto out;
    }
    const json_t *ws = json_object_get(r, "workers");
    if (json_array_size(ws) == 0) {
        printf("no workers\n");
        goto out;
    }
    if (pb_cli_table_init(&t, PB_ARRAY_LEN(hdr), hdr, "lllllrl")) {
        rc = PB_CLI_FAIL;
        goto out;
    }
    size_t i;
    const json_t *w;
    json_array_foreach(ws, i, w) {
        char caps[128], conn[40], seen[40];
        caps_summary(json_object_get(w, "capabilities"), caps, sizeof caps);
        pb_cli_fmt_time(json_object_get(w, "connected_at"), conn);
        pb_cli_fmt_time(json_object_get(w, "last_seen"), seen);
        char *cur = current_tasks(json_object_get(w, "current_tasks"));
        pb_cli_table_add(&t, pb_cli_jstr(w, "name", "?"));
        pb_cli_table_add(&t, pb_cli_jstr(w, "state", "?"));
        pb_cli_table_add(&t, caps);
        pb_cli_table_add(&t, conn);
        pb_cli_table_add(&t, seen);
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(w, "tasks_done", 0));
        pb_cli_table_add(&t, cur);
        free(cur);
    }
    pb_cli_table_print(&t, stdout, 0);
    pb_cli_table_free(&t);
out:
    json_decref(r);
    return rc;
}

/* ---- leaderboard ---- */

int pb_cli_print_leaderboard(pb_cli_t *c, const char *suite, const char *task, int json)
{
    static const char *const hdr[] = {"RANK", "SUITE", "TASK", "MODEL",  "BACKEND", "SCORE",
                                      "95% CI", "N",   "EFF.LEN", "JOB", "DATE"};
    char path[512] = "/api/v1/leaderboard";
    json_t *r = NULL;
    pb_cli_table_t t;
    int rc;

    if (pb_cli_query(path, sizeof path, "suite", suite) ||
        pb_cli_query(path, sizeof path, "task", task)) {
        fprintf(stderr, "error: --suite/--task too long\n");
        return PB_CLI_USAGE;
    }
    rc = pb_cli_get(c, path, &r);
    if (rc)
        return pb_cli_exit_for(rc);
    if (json) {
        pb_cli_print_json(r);
        goto out;
    }
    const json_t *es = json_object_get(r, "entries");
    if (json_array_size(es) == 0) {
        printf("no leaderboard entries%s%s\n", suite ? " for suite " : "", suite ? suite : "");
        goto out;
    }
    if (pb_cli_table_init(&t, PB_ARRAY_LEN(hdr), hdr, "rllllrlrrrl")) {
        rc = PB_CLI_FAIL;
        goto out;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(es, i, e) {
        char score[32], ci[48], date[40], model[80];
        pb_cli_fmt_acc(pb_cli_jnum(e, "score"), score);
        pb_cli_fmt_ci(pb_cli_jnum(e, "ci_low"), pb_cli_jnum(e, "ci_high"), ci);
        pb_cli_fmt_time(json_object_get(e, "date"), date);
        pb_cli_clip(pb_cli_jstr(e, "model", "-"), 40, model, sizeof model);
        const json_t *el = json_object_get(e, "effective_length");
        char *eff = json_is_null(el) || el == NULL ? strdup("-") : pb_cli_fmt_json(el, 20);
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(e, "rank", (long long)i + 1));
        pb_cli_table_add(&t, pb_cli_jstr(e, "suite", "-"));
        pb_cli_table_add(&t, pb_cli_jstr(e, "task", "-"));
        pb_cli_table_add(&t, model);
        pb_cli_table_add(&t, pb_cli_jstr(e, "backend", "-"));
        pb_cli_table_add(&t, score);
        pb_cli_table_add(&t, ci);
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(e, "n", 0));
        pb_cli_table_add(&t, eff);
        int64_t job = pb_cli_jint(e, "job_id", 0);
        if (job > 0)
            pb_cli_table_addf(&t, "%lld", (long long)job);
        else
            pb_cli_table_add(&t, "-");
        pb_cli_table_add(&t, date);
        free(eff);
    }
    pb_cli_table_print(&t, stdout, 0);
    pb_cli_table_free(&t);
out:
    json_decref(r);
    return rc;
}

int pb_cli_cmd_leaderboard(pb_cli_t *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"suite", required_argument, NULL, 's'},
        {"task", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *suite = NULL, *task = NULL;
    int json = 0, ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "hs:t:f:", opts, NULL)) != -1) {
        switch (ch) {
        case 's': suite = optarg; break;
        case 't': task = optarg; break;
        case 'f':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0)
                return pb_cli_usage_error("leaderboard", "--format must be table or json");
            json = strcmp(optarg, "json") == 0;
            break;
        case 'h': pb_cli_usage("leaderboard", stdout); return PB_CLI_OK;
        default: return pb_cli_bad_option("leaderboard");
        }
    }
    if (optind != argc)
        return pb_cli_usage_error("leaderboard", "unexpected argument '%s'", argv[optind]);
    return pb_cli_print_leaderboard(c, suite, task, json);
}

/* ---- suites ---- */

/* "integer 1..200", "enum plain|reversed", or the bare type. */
static void param_type(const json_t *p, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "%s", pb_cli_jstr(p, "type", "-"));
    const json_t *vals = json_object_get(p, "values");
    double lo = pb_cli_jnum(p, "min"), hi = pb_cli_jnum(p, "max");
    if (json_is_array(vals)) {
        size_t i;
        const json_t *v;
        json_array_foreach(vals, i, v) {
            if (o < n && json_is_string(v))
                o += (size_t)snprintf(out + o, n - o, "%c%s", i ? '|' : ' ',
                                      json_string_value(v));
        }
    } else if (!isnan(lo) || !isnan(hi)) {
        char a[32] = "", b[32] = "";
        if (!isnan(lo))
            snprintf(a, sizeof a, "%g", lo);
        if (!isnan(hi))
            snprintf(b, sizeof b, "%g", hi);
        if (o < n)
            snprintf(out + o, n - o, " %s..%s", a, b);
    }
}

/* One task: its description, then a table of parameters from the schema
 * {"name": {"type", "default", "description", "min", "max", "values"}}. */
static int print_task(const json_t *task)
{
    static const char *const hdr[] = {"PARAM", "TYPE", "DEFAULT", "DESCRIPTION"};
    pb_cli_table_t t;
    printf("\n  %s: %s\n", pb_cli_jstr(task, "name", "?"), pb_cli_jstr(task, "description", ""));
    const json_t *params = json_object_get(task, "params");
    if (json_object_size(params) == 0)
        return PB_CLI_OK;
    if (pb_cli_table_init(&t, PB_ARRAY_LEN(hdr), hdr, "llll"))
        return PB_CLI_FAIL;
    const char *name;
    const json_t *p;
    json_object_foreach((json_t *)params, name, p) {
        char type[160], desc[256];
        const json_t *dflt = json_is_object(p) ? json_object_get(p, "default") : p;
        char *dtext = json_is_null(dflt) || dflt == NULL ? strdup("-") : pb_cli_fmt_json(dflt, 30);
        param_type(p, type, sizeof type);
        pb_cli_clip(pb_cli_jstr(p, "description", ""), 70, desc, sizeof desc);
        pb_cli_table_add(&t, name);
        pb_cli_table_add(&t, type);
        pb_cli_table_add(&t, dtext);
        pb_cli_table_add(&t, desc);
        free(dtext);
    }
    pb_cli_table_print(&t, stdout, 4);
    pb_cli_table_free(&t);
    return PB_CLI_OK;
}

int pb_cli_cmd_suites(pb_cli_t *c, int argc, char **argv)
{
    int json = 0;
    int rc = list_options("suites", argc, argv, &json);
    json_t *r = NULL;
    if (rc)
        return rc < 0 ? PB_CLI_OK : rc;
    rc = pb_cli_get(c, "/api/v1/suites", &r);
    if (rc)
        return pb_cli_exit_for(rc);
    if (json) {
        pb_cli_print_json(r);
        goto out;
    }
    size_t i, k;
    const json_t *s, *task;
    json_array_foreach(json_object_get(r, "suites"), i, s) {
        printf("%s%s  v%lld  buckets: %s\n", i ? "\n" : "", pb_cli_jstr(s, "name", "?"),
               (long long)pb_cli_jint(s, "version", 0), pb_cli_jstr(s, "bucket_unit", "-"));
        const char *desc = pb_cli_jstr(s, "description", NULL);
        if (desc)
            printf("  %s\n", desc);
        json_array_foreach(json_object_get(s, "tasks"), k, task) {
            rc = print_task(task);
            if (rc)
                goto out;
        }
    }
out:
    json_decref(r);
    return rc;
}

/* ---- schedules ---- */

static int schedule_add(pb_cli_t *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"cron", required_argument, NULL, 'c'},
        {"disabled", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *cron = NULL;
    int enabled = 1, ch, rc;
    json_t *spec = NULL, *body = NULL, *r = NULL;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': name = optarg; break;
        case 'c': cron = optarg; break;
        case 'd': enabled = 0; break;
        case 'h': pb_cli_usage("schedule", stdout); return PB_CLI_OK;
        default: return pb_cli_bad_option("schedule");
        }
    }
    if (name == NULL || cron == NULL)
        return pb_cli_usage_error("schedule", "add needs --name and --cron");
    if (optind + 1 != argc)
        return pb_cli_usage_error("schedule", "add expects one FILE (or - for stdin)");
    rc = pb_cli_read_spec(argv[optind], &spec);
    if (rc)
        goto out;
    body = json_pack("{s:s, s:s, s:O, s:b}", "name", name, "cron", cron, "job", spec,
                     "enabled", enabled);
    if (body == NULL) {
        fprintf(stderr, "error: --name and --cron must be valid UTF-8\n");
        rc = PB_CLI_USAGE;
        goto out;
    }
    rc = pb_cli_call(c, "POST", "/api/v1/schedules", body, NULL, NULL, &r);
    if (rc) {
        rc = pb_cli_exit_for(rc);
        goto out;
    }
    printf("%lld\n", (long long)pb_cli_jint(r, "id", 0));
out:
    json_decref(r);
    json_decref(body);
    json_decref(spec);
    return rc;
}

static int schedule_list(pb_cli_t *c, int argc, char **argv)
{
    static const char *const hdr[] = {"ID",        "NAME",       "CRON",    "ENABLED",
                                      "NEXT FIRE", "LAST FIRED", "LAST JOB"};
    int json = 0;
    int rc = list_options("schedule", argc, argv, &json);
    json_t *r = NULL;
    pb_cli_table_t t;
    if (rc)
        return rc < 0 ? PB_CLI_OK : rc;
    rc = pb_cli_get(c, "/api/v1/schedules", &r);
    if (rc)
        return pb_cli_exit_for(rc);
    if (json) {
        pb_cli_print_json(r);
        goto out;
    }
    const json_t *ss = json_object_get(r, "schedules");
    if (json_array_size(ss) == 0) {
        printf("no schedules\n");
        goto out;
    }
    if (pb_cli_table_init(&t, PB_ARRAY_LEN(hdr), hdr, "rllllll")) {
        rc = PB_CLI_FAIL;
        goto out;
    }
    size_t i;
    const json_t *s;
    json_array_foreach(ss, i, s) {
        char next[40], last[40];
        int64_t job = pb_cli_jint(s, "last_job_id", 0);
        pb_cli_fmt_time(json_object_get(s, "next_fire_at"), next);
        pb_cli_fmt_time(json_object_get(s, "last_fired_at"), last);
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(s, "id", 0));
        pb_cli_table_add(&t, pb_cli_jstr(s, "name", "-"));
        pb_cli_table_add(&t, pb_cli_jstr(s, "cron", "-"));
        pb_cli_table_add(&t, json_is_true(json_object_get(s, "enabled")) ? "yes" : "no");
        pb_cli_table_add(&t, next);
        pb_cli_table_add(&t, last);
        if (job > 0)
            pb_cli_table_addf(&t, "%lld", (long long)job);
        else
            pb_cli_table_add(&t, "-");
    }
    pb_cli_table_print(&t, stdout, 0);
    pb_cli_table_free(&t);
out:
    json_decref(r);
    return rc;
}

static int schedule_toggle(pb_cli_t *c, const char *verb, int argc, char **argv)
{
    int64_t id;
    char path[96], next[40];
    json_t *r = NULL;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        pb_cli_usage("schedule", stdout);
        return PB_CLI_OK;
    }
    if (argc != 2 || pb_cli_parse_id(argv[1], &id))
        return pb_cli_usage_error("schedule", "%s expects one schedule ID", verb);
    snprintf(path, sizeof path, "/api/v1/schedules/%lld/%s", (long long)id, verb);
    int rc = pb_cli_call(c, "POST", path, NULL, NULL, NULL, &r);
    if (rc)
        return pb_cli_exit_for(rc);
    /* Accept the schedule object bare or wrapped as {"schedule": {...}}. */
    const json_t *s = json_object_get(r, "schedule") ? json_object_get(r, "schedule") : r;
    pb_cli_fmt_time(json_object_get(s, "next_fire_at"), next);
    if (strcmp(verb, "enable") == 0)
        printf("schedule %lld enabled (next fire: %s)\n", (long long)id, next);
    else
        printf("schedule %lld disabled\n", (long long)id);
    json_decref(r);
    return PB_CLI_OK;
}

int pb_cli_cmd_schedule(pb_cli_t *c, int argc, char **argv)
{
    if (argc < 2)
        return pb_cli_usage_error("schedule", "missing subcommand (add, list, enable, disable)");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        pb_cli_usage("schedule", stdout);
        return PB_CLI_OK;
    }
    /* getopt names "posbench schedule SUB" in its messages. */
    char prog[64];
    snprintf(prog, sizeof prog, "posbench schedule %s", sub);
    argv[1] = prog;
    if (strcmp(sub, "add") == 0)
        return schedule_add(c, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return schedule_list(c, argc - 1, argv + 1);
    if (strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0)
        return schedule_toggle(c, sub, argc - 1, argv + 1);
    return pb_cli_usage_error("schedule", "unknown subcommand '%s'", sub);
}
