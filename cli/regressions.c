/* `posbench regressions`: the regressions the coordinator's detectors raised
 * (GET /api/v1/regressions) as a table or JSON, exiting 1 while any is still
 * unacknowledged so CI can gate on it; and their triage (ack, fix, ignore,
 * reopen) through POST /api/v1/regressions/ID. */
#include "cli/cli.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NOTE 4096 /* bytes of a triage note */

/* Triage verbs and the state each sets. */
static const struct {
    const char *verb, *alias, *state;
} verbs[] = {
    {"ack", "acknowledge", "acknowledged"},
    {"fix", "fixed", "fixed"},
    {"ignore", "ignored", "ignored"},
    {"reopen", "detected", "detected"},
};

static const char *const list_states[] = {"open",  "detected", "acknowledged",
                                          "fixed", "ignored",  "all"};

static int known_state(const char *s)
{
    for (size_t i = 0; i < PB_ARRAY_LEN(list_states); i++)
        if (strcmp(s, list_states[i]) == 0)
            return 1;
    return 0;
}

/* A value as its series measures it: proportions with 3 decimals, others
 * with 4 significant digits. */
static void fmt_value(double v, int proportion, char out[32])
{
    if (isnan(v))
        snprintf(out, 32, "-");
    else if (proportion)
        snprintf(out, 32, "%.3f", v);
    else
        snprintf(out, 32, "%.4g", v);
}

/* Proportions change by a difference (percentage points), the rest
 * relative to the value before. */
static void fmt_change(double v, int proportion, char out[32])
{
    if (isnan(v))
        snprintf(out, 32, "-");
    else
        snprintf(out, 32, "%+.1f%s", 100.0 * v, proportion ? "pp" : "%");
}

static void fmt_p(double p, char out[32])
{
    if (isnan(p))
        snprintf(out, 32, "-");
    else if (p < 1e-4)
        snprintf(out, 32, "%.1e", p);
    else
        snprintf(out, 32, "%.4f", p);
}

/* One row: ID STATE SCHEDULE SERIES BEFORE->AFTER CHANGE P. */
static int add_row(pb_cli_table_t *t, const json_t *r)
{
    const json_t *s = json_object_get(r, "series");
    int prop = strcmp(pb_cli_jstr(s, "kind", ""), "proportion") == 0;
    char before[32], after[32], change[32], p[32], bucket[32];
    int64_t sid = pb_cli_jint(r, "schedule_id", 0);
    const json_t *b = json_object_get(s, "bucket");

    fmt_value(pb_cli_jnum(r, "value_before"), prop, before);
    fmt_value(pb_cli_jnum(r, "value_after"), prop, after);
    fmt_change(pb_cli_jnum(r, "change"), prop, change);
    fmt_p(pb_cli_jnum(r, "p_value"), p);
    if (json_is_integer(b))
        snprintf(bucket, sizeof bucket, "%lld", (long long)json_integer_value(b));
    else
        snprintf(bucket, sizeof bucket, "-");
    int rc = pb_cli_table_addf(t, "%lld", (long long)pb_cli_jint(r, "id", 0));
    rc = rc ? rc : pb_cli_table_add(t, pb_cli_jstr(r, "state", "-"));
    if (rc == 0 && pb_cli_jstr(r, "schedule", NULL))
        rc = pb_cli_table_add(t, pb_cli_jstr(r, "schedule", NULL));
    else if (rc == 0 && sid > 0)
        rc = pb_cli_table_addf(t, "#%lld", (long long)sid);
    else if (rc == 0)
        rc = pb_cli_table_add(t, "-");
    rc = rc ? rc
            : pb_cli_table_addf(t, "%.60s/%.60s/%s/%.40s", pb_cli_jstr(s, "suite", "?"),
                                pb_cli_jstr(s, "task", "?"), bucket,
                                pb_cli_jstr(s, "metric", "?"));
    rc = rc ? rc : pb_cli_table_addf(t, "%s -> %s", before, after);
    rc = rc ? rc : pb_cli_table_add(t, change);
    return rc ? rc : pb_cli_table_add(t, p);
}

static int regressions_list(pb_cli_t *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, 's'}, {"schedule", required_argument, NULL, 'S'},
        {"limit", required_argument, NULL, 'l'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    static const char *const hdr[] = {"ID",     "STATE",          "SCHEDULE", "SERIES",
                                      "BEFORE -> AFTER", "CHANGE", "P"};
    const char *state = "open", *schedule = NULL, *limit = NULL;
    int json = 0, ch, rc = PB_CLI_OK;
    int64_t v;
    json_t *r = NULL;
    char path[256] = "/api/v1/regressions";
    pb_cli_table_t t;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 's': state = optarg; break;
        case 'S': schedule = optarg; break;
        case 'l': limit = optarg; break;
        case 'j': json = 1; break;
        case 'h': pb_cli_usage("regressions", stdout); return PB_CLI_OK;
        default: return pb_cli_bad_option("regressions");
        }
    }
    if (optind != argc)
        return pb_cli_usage_error("regressions", "unexpected argument '%s'", argv[optind]);
    if (!known_state(state))
        return pb_cli_usage_error("regressions", "--state must be open, detected, "
                                                 "acknowledged, fixed, ignored or all");
    if (strcmp(state, "all") == 0)
        state = NULL; /* no filter: the API lists every state */
    if (schedule && pb_cli_parse_id(schedule, &v))
        return pb_cli_usage_error("regressions", "--schedule expects a schedule ID");
    if (limit && pb_cli_parse_int(limit, 1, 100000, &v))
        return pb_cli_usage_error("regressions", "--limit expects a number from 1 to 100000");
    if (pb_cli_query(path, sizeof path, "state", state) ||
        pb_cli_query(path, sizeof path, "schedule", schedule) ||
        pb_cli_query(path, sizeof path, "limit", limit))
        return pb_cli_usage_error("regressions", "arguments too long");

    rc = pb_cli_get(c, path, &r);
    if (rc)
        return pb_cli_exit_for(rc);
    /* The gate: the API's count of unacknowledged ones (for --schedule when
     * given), or any listed one still detected. */
    const json_t *list = json_object_get(r, "regressions");
    int64_t unack = pb_cli_jint(r, "unacknowledged", 0);
    size_t i;
    const json_t *x;
    json_array_foreach(list, i, x) {
        if (unack == 0 && strcmp(pb_cli_jstr(x, "state", ""), "detected") == 0)
            unack = 1;
    }
    if (json) {
        pb_cli_print_json(r);
    } else if (json_array_size(list) == 0) {
        printf("no %s%sregressions\n", state ? state : "", state ? " " : "");
    } else {
        if (pb_cli_table_init(&t, PB_ARRAY_LEN(hdr), hdr, "rlllrrr")) {
            rc = PB_CLI_FAIL;
            goto out;
        }
        json_array_foreach(list, i, x) {
            if (add_row(&t, x)) {
                pb_cli_table_free(&t);
                rc = PB_CLI_FAIL;
                goto out;
            }
        }
        pb_cli_table_print(&t, stdout, 0);
        pb_cli_table_free(&t);
    }
    if (!json && unack > 0)
        fprintf(stderr, "%lld unacknowledged regression%s (posbench regressions ack ID)\n",
                (long long)unack, unack == 1 ? "" : "s");
    rc = unack > 0 ? PB_CLI_FAIL : PB_CLI_OK;
out:
    json_decref(r);
    return rc;
}

static int regressions_triage(pb_cli_t *c, const char *state, int argc, char **argv)
{
    static const struct option opts[] = {
        {"note", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *note = NULL;
    int json = 0, ch, rc;
    int64_t id;
    char path[96];
    json_t *body = NULL, *r = NULL;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': note = optarg; break;
        case 'j': json = 1; break;
        case 'h': pb_cli_usage("regressions", stdout); return PB_CLI_OK;
        default: return pb_cli_bad_option("regressions");
        }
    }
    if (optind + 1 != argc || pb_cli_parse_id(argv[optind], &id))
        return pb_cli_usage_error("regressions", "expects one regression ID");
    if (note && strlen(note) > MAX_NOTE)
        return pb_cli_usage_error("regressions", "--note is longer than %d bytes", MAX_NOTE);
    body = note ? json_pack("{s:s, s:s}", "state", state, "note", note)
                : json_pack("{s:s}", "state", state);
    if (body == NULL) {
        fprintf(stderr, "error: --note must be valid UTF-8\n");
        return PB_CLI_USAGE;
    }
    snprintf(path, sizeof path, "/api/v1/regressions/%lld", (long long)id);
    rc = pb_cli_call(c, "POST", path, body, NULL, NULL, &r);
    if (rc) {
        rc = pb_cli_exit_for(rc);
        goto out;
    }
    if (json)
        pb_cli_print_json(r);
    else
        printf("regression %lld: %s\n", (long long)id, pb_cli_jstr(r, "state", state));
out:
    json_decref(r);
    json_decref(body);
    return rc;
}

int pb_cli_cmd_regressions(pb_cli_t *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (sub == NULL || sub[0] == '-')
        return regressions_list(c, argc, argv);
    if (strcmp(sub, "help") == 0) {
        pb_cli_usage("regressions", stdout);
        return PB_CLI_OK;
    }
    /* getopt names "posbench regressions SUB" in its messages. */
    char prog[64];
    snprintf(prog, sizeof prog, "posbench regressions %.20s", sub);
    if (strcmp(sub, "list") == 0) {
        argv[1] = prog;
        return regressions_list(c, argc - 1, argv + 1);
    }
    for (size_t i = 0; i < PB_ARRAY_LEN(verbs); i++) {
        if (strcmp(sub, verbs[i].verb) == 0 || strcmp(sub, verbs[i].alias) == 0) {
            argv[1] = prog;
            return regressions_triage(c, verbs[i].state, argc - 1, argv + 1);
        }
    }
    return pb_cli_usage_error("regressions", "unknown subcommand '%s'", sub);
}
