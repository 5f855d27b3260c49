/* posbench: the command-line client of the coordinator's HTTP API, and the
 * launcher of a local cluster (`posbench up`). This file holds the global
 * options, the command table with every usage text, and dispatch. */
#include "cli/cli.h"

#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(pb_cli_t *c, int argc, char **argv);
    const char *summary;
    const char *usage; /* lines after "usage: posbench " */
} command_t;

static const command_t commands[] = {
    {"submit", pb_cli_cmd_submit, "submit a job spec (JSON file or - for stdin)",
     "submit FILE|- [--idempotency-key K] [--wait] [--name N] [--seed S] [--priority P]\n"
     "  Prints the job id. --name/--seed/--priority override the spec's fields.\n"
     "  --wait polls until the job is final: exit 0 when done, 1 when failed\n"
     "  or cancelled. A repeated --idempotency-key returns the earlier job.\n"},
    {"status", pb_cli_cmd_status, "list recent jobs, or show one job's progress",
     "status [ID] [--state S] [--limit N] [--before ID] [--json]\n"
     "  Without ID: recent jobs (filtered by --state, paged by --before).\n"
     "  With ID: the job with per-run, per-bucket progress and failed tasks.\n"},
    {"results", pb_cli_cmd_results, "per-run and per-bucket accuracy with 95% CI",
     "results ID [--format table|json|csv]\n"},
    {"items", pb_cli_cmd_items, "list scored items of a job",
     "items ID [--run R] [--bucket B] [--limit N] [--all] [--format table|json|jsonl]\n"
     "  --limit is the page size (default 50); --all follows every page.\n"},
    {"cancel", pb_cli_cmd_cancel, "cancel a queued or running job", "cancel ID\n"},
    {"workers", pb_cli_cmd_workers, "list connected workers", "workers [--json]\n"},
    {"leaderboard", pb_cli_cmd_leaderboard, "best scores per suite, task and model",
     "leaderboard [--suite S] [--task T] [--format table|json]\n"},
    {"suites", pb_cli_cmd_suites, "list suites, tasks and their parameters",
     "suites [--json]\n"},
    {"schedule", pb_cli_cmd_schedule, "add, list, enable or disable cron schedules",
     "schedule add --name N --cron 'EXPR' [--disabled] FILE|-\n"
     "       posbench schedule list [--json]\n"
     "       posbench schedule enable ID\n"
     "       posbench schedule disable ID\n"},
    {"regressions", pb_cli_cmd_regressions, "list regressions (exit 1 while any is unacknowledged)",
     "regressions [--state S] [--schedule ID] [--limit N] [--json]\n"
     "       posbench regressions ack|fix|ignore|reopen ID [--note TEXT] [--json]\n"
     "  Lists the regressions the detectors raised: --state open (detected or\n"
     "  acknowledged; the default), detected, acknowledged, fixed, ignored or all.\n"
     "  Exits 1 while any regression (of --schedule, when given) is detected and\n"
     "  not yet acknowledged, so CI can gate on it. ack, fix and ignore set a\n"
     "  regression's state; reopen sets it back to detected.\n"},
    {"dataset", pb_cli_cmd_dataset, "upload or list user datasets (JSONL)",
     "dataset upload FILE --suite S [--name N] [--json]\n"
     "       posbench dataset list [--json]\n"
     "  upload prints the dataset's hash, which a job run names as \"dataset\";\n"
     "  a bad line is reported by its number and nothing is stored.\n"},
    {"export", pb_cli_cmd_export, "write a static snapshot of the leaderboard and model pages",
     "export --out DIR [--url URL] [--web DIR] [--chartjs FILE]\n"
     "  Writes the dashboard's files, Chart.js (vendor/chart.js), static.js and\n"
     "  the JSON the leaderboard and model pages read (data/leaderboard.json,\n"
     "  data/suites.json, data/jobs/ID/results.json per leaderboard job) into DIR,\n"
     "  for any static file host. --web: the dashboard files (default: the ones\n"
     "  the coordinator serves); --chartjs: default configure's. Progress on stderr.\n"},
    {"up", pb_cli_cmd_up, "run a coordinator and workers in the foreground",
     "up [--workers N] [--listen HOST:PORT] [--broker tcp://HOST:PORT] [--db PATH]\n"
     "          [--slots N] [--web DIR] [--submit FILE]... [--once]\n"
     "  Starts posbench-coordinator and N posbench-worker processes (default 1,\n"
     "  1 slot each), waits for /healthz and prints the dashboard URL. --submit\n"
     "  (repeatable, up to 16) runs those jobs and prints the leaderboard; --once\n"
     "  then stops and exits with the jobs' status. Otherwise runs until Ctrl-C /\n"
     "  SIGTERM. Exits 1 if a process dies unexpectedly. Ignores --url.\n"},
};

static const command_t *find(const char *name)
{
    for (size_t i = 0; i < PB_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void pb_cli_usage(const char *cmd, FILE *f)
{
    const command_t *c = cmd ? find(cmd) : NULL;
    if (c) {
        fprintf(f, "usage: posbench [--url URL] %s", c->usage);
        return;
    }
    fputs("usage: posbench [--url URL] COMMAND [ARGS]\n"
          "       posbench help COMMAND | posbench COMMAND --help\n\n"
          "Client of a posbench coordinator (URL from --url, else $POSBENCH_URL,\n"
          "else " PB_CLI_DEFAULT_URL ").\n\ncommands:\n",
          f);
    for (size_t i = 0; i < PB_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fputs("\nexit status: 0 ok, 1 API error, failed job or unacknowledged regressions,\n"
          "             2 usage error, 3 cannot connect to the coordinator\n",
          f);
}

int pb_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "posbench%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (cmd)
        pb_cli_usage(cmd, stderr);
    else
        fputs("run 'posbench --help' for the commands\n", stderr);
    return PB_CLI_USAGE;
}

int pb_cli_bad_option(const char *cmd)
{
    /* getopt has already named the option (argv[0] is "posbench CMD"). */
    pb_cli_usage(cmd, stderr);
    return PB_CLI_USAGE;
}

/* "--url X" or "--url=X"; advances *i past the value. NULL if not --url. */
static const char *url_option(int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strncmp(a, "--url=", 6) == 0)
        return a + 6;
    if (strcmp(a, "--url") == 0 && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

int main(int argc, char **argv)
{
    int rc;
    const char *url = getenv("POSBENCH_URL");
    int i = 1;
    pb_cli_t cli;

    memset(&cli, 0, sizeof cli);
    if (url == NULL || *url == '\0')
        url = PB_CLI_DEFAULT_URL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *u = url_option(argc, argv, &i);
        if (u) {
            url = u;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            pb_cli_usage(NULL, stdout);
            return PB_CLI_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("posbench %s\n", PACKAGE_VERSION);
            return PB_CLI_OK;
        } else {
            return pb_cli_usage_error(NULL, "unknown option %s", a);
        }
    }
    if (i == argc)
        return pb_cli_usage_error(NULL, "missing command");

    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 < argc && find(argv[i + 1]) == NULL)
            return pb_cli_usage_error(NULL, "unknown command '%s'", argv[i + 1]);
        pb_cli_usage(i + 1 < argc ? argv[i + 1] : NULL, stdout);
        return PB_CLI_OK;
    }
    const command_t *cmd = find(name);
    if (cmd == NULL)
        return pb_cli_usage_error(NULL, "unknown command '%s'", name);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "error: cannot initialise libcurl\n");
        return PB_CLI_FAIL;
    }
    if (pb_cli_init(&cli, url) != 0) {
        fprintf(stderr, "error: bad coordinator URL '%s'\n", url);
        rc = PB_CLI_USAGE;
        goto out;
    }
    /* getopt prefixes its messages with argv[0]. */
    char prog[64];
    snprintf(prog, sizeof prog, "posbench %s", cmd->name);
    argv[i] = prog;
    rc = cmd->run(&cli, argc - i, argv + i);
out:
    pb_cli_close(&cli);
    curl_global_cleanup();
    return rc;
}
