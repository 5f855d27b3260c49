/* posbench dataset upload|list: user datasets (README "User datasets").
 * upload sends the file's bytes as they are (the coordinator hashes and
 * checks them) and prints the hash a job's run names. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_UPLOAD ((size_t)4 << 30) /* the coordinator's --max-dataset decides; this is a guard */
#define UPLOAD_TIMEOUT_MS 600000L

/* The whole file into *out (malloc'd); an exit status. */
static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s\n", path);
        return PB_CLI_USAGE;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            char *t = ncap <= MAX_UPLOAD ? realloc(buf, ncap) : NULL;
            if (t == NULL) {
                fprintf(stderr, "error: %s is too large to upload\n", path);
                free(buf);
                fclose(f);
                return PB_CLI_FAIL;
            }
            buf = t;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "error: cannot read %s\n", path);
        free(buf);
        return PB_CLI_FAIL;
    }
    *out = buf;
    *len = n;
    return PB_CLI_OK;
}

static int upload(pb_cli_t *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"suite", required_argument, NULL, 's'}, {"name", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *suite = NULL, *name = NULL;
    char path[1024] = "/api/v1/datasets", *data = NULL;
    size_t len = 0;
    int json = 0, ch;
    json_t *r = NULL;
    long status = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 's')
            suite = optarg;
        else if (ch == 'n')
            name = optarg;
        else if (ch == 'j')
            json = 1;
        else if (ch == 'h') {
            pb_cli_usage("dataset", stdout);
            return PB_CLI_OK;
        } else
            return pb_cli_bad_option("dataset");
    }
    if (optind + 1 != argc)
        return pb_cli_usage_error("dataset", "upload takes one FILE");
    if (suite == NULL)
        return pb_cli_usage_error("dataset", "--suite is required (the suite whose format the "
                                             "lines follow, or retrieval)");
    if (pb_cli_query(path, sizeof path, "suite", suite) ||
        pb_cli_query(path, sizeof path, "name", name))
        return pb_cli_usage_error("dataset", "--suite or --name is too long");
    int rc = read_file(argv[optind], &data, &len);
    if (rc)
        return rc;
    c->raw_body = data;
    c->raw_len = len;
    c->raw_type = "application/x-ndjson";
    c->timeout_ms = UPLOAD_TIMEOUT_MS;
    rc = pb_cli_call(c, "POST", path, NULL, NULL, &status, &r);
    c->raw_body = NULL;
    free(data);
    if (rc)
        return pb_cli_exit_for(rc);
    if (json)
        pb_cli_print_json(r);
    else
        printf("%s\n", pb_cli_jstr(r, "hash", ""));
    fprintf(stderr, "%s: %lld lines, %lld bytes (%s)\n", pb_cli_jstr(r, "name", ""),
            (long long)pb_cli_jint(r, "lines", 0), (long long)pb_cli_jint(r, "bytes", 0),
            status == 201 ? "stored" : "already stored");
    json_decref(r);
    return PB_CLI_OK;
}

static int list(pb_cli_t *c, int argc, char **argv)
{
    int json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 1 + json)
        return pb_cli_usage_error("dataset", "unexpected argument '%s'", argv[1 + json]);
    json_t *r = NULL;
    pb_cli_table_t t;
    static const char *const heads[] = {"HASH", "NAME", "SUITE", "LINES", "BUCKETS", "CREATED"};
    int rc = pb_cli_get(c, "/api/v1/datasets", &r);
    if (rc)
        return pb_cli_exit_for(rc);
    if (json) {
        pb_cli_print_json(r);
        json_decref(r);
        return PB_CLI_OK;
    }
    if (pb_cli_table_init(&t, PB_ARRAY_LEN(heads), heads, "lllrrl")) {
        json_decref(r);
        return PB_CLI_FAIL;
    }
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(r, "datasets"), i, d)
    {
        pb_cli_table_add(&t, pb_cli_jstr(d, "hash", ""));
        pb_cli_table_add(&t, pb_cli_jstr(d, "name", ""));
        pb_cli_table_add(&t, pb_cli_jstr(d, "suite", ""));
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(d, "lines", 0));
        pb_cli_table_addf(&t, "%zu", json_array_size(json_object_get(d, "buckets")));
        pb_cli_table_add(&t, pb_cli_jstr(d, "created_at", ""));
    }
    pb_cli_table_print(&t, stdout, 0);
    pb_cli_table_free(&t);
    json_decref(r);
    return PB_CLI_OK;
}

int pb_cli_cmd_dataset(pb_cli_t *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "upload") == 0)
        return upload(c, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "list") == 0)
        return list(c, argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        pb_cli_usage("dataset", stdout);
        return PB_CLI_OK;
    }
    return pb_cli_usage_error("dataset", "expected upload or list");
}
