/* Result listings: `results` (per run and per bucket: n, accuracy, 95% CI,
 * and the run aggregate such as the effective length) as a table, JSON or
 * CSV, and `items` (scored items, paged by the API's cursor). */
#include "cli/cli.h"
#include "suites/suite.h" /* PS_MAX_METRICS */

#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ITEMS_PAGE_DEFAULT 50
#define ITEMS_PAGE_MAX 10000
#define ITEMS_MAX_PAGES 1000000 /* guards against a server that never ends */

enum { FMT_TABLE, FMT_JSON, FMT_CSV, FMT_JSONL };

static int parse_format(const char *s, int allow_csv, int allow_jsonl, int *out)
{
    if (strcmp(s, "table") == 0)
        *out = FMT_TABLE;
    else if (strcmp(s, "json") == 0)
        *out = FMT_JSON;
    else if (allow_csv && strcmp(s, "csv") == 0)
        *out = FMT_CSV;
    else if (allow_jsonl && strcmp(s, "jsonl") == 0)
        *out = FMT_JSONL;
    else
        return PB_EINVAL;
    return 0;
}

/* ---- results ---- */

/* "effective length 12 (threshold 0.9), key value, ..." from the aggregate. */
static void print_aggregate(const json_t *agg)
{
    if (!json_is_object(agg) || json_object_size(agg) == 0)
        return;
    const json_t *el = json_object_get(agg, "effective_length");
    const json_t *th = json_object_get(agg, "threshold");
    char *v = pb_cli_fmt_json(el, 40);
    printf("  effective length: %s", v ? v : "-");
    free(v);
    if (th) {
        v = pb_cli_fmt_json(th, 40);
        printf(" (threshold %s)", v ? v : "-");
        free(v);
    }
    printf("\n");
    const char *key;
    const json_t *x;
    json_object_foreach((json_t *)agg, key, x) {
        /* Skip what the run line already shows. */
        static const char *const shown[] = {"effective_length", "threshold", "accuracy", "n",
                                            "score_sum", "ci_low", "ci_high"};
        int skip = 0;
        for (size_t k = 0; k < PB_ARRAY_LEN(shown); k++)
            skip |= strcmp(key, shown[k]) == 0;
        if (skip)
            continue;
        v = pb_cli_fmt_json(x, 200);
        printf("  %s: %s\n", key, v ? v : "-");
        free(v);
    }
}

static void print_run_table(const json_t *run)
{
    char acc[32], ci[48];
    char unit[32];
    snprintf(unit, sizeof unit, "%s", pb_cli_jstr(run, "unit", "bucket"));
    for (char *u = unit; *u; u++)
        *u = (char)toupper((unsigned char)*u);
    pb_cli_fmt_acc(pb_cli_jnum(run, "accuracy"), acc);
    pb_cli_fmt_ci(pb_cli_jnum(run, "ci_low"), pb_cli_jnum(run, "ci_high"), ci);
    char *params = pb_cli_fmt_json(json_object_get(run, "params"), 200);
    printf("run %lld: %s/%s  version %lld  params %s\n", (long long)pb_cli_jint(run, "index", 0),
           pb_cli_jstr(run, "suite", "?"), pb_cli_jstr(run, "task", "?"),
           (long long)pb_cli_jint(run, "version", 0), params ? params : "-");
    free(params);
    printf("  n %lld  accuracy %s  95%% CI %s\n", (long long)pb_cli_jint(run, "n", 0), acc, ci);
    /* Per-item metric means (halluc, retrieval): a line, and a column each. */
    const json_t *metrics = json_object_get(run, "metrics"), *mv;
    const char *hdr[4 + PS_MAX_METRICS] = {unit, "N", "ACCURACY", "95% CI"}, *mk;
    char align[5 + PS_MAX_METRICS] = "rrrl";
    size_t nm = 0;
    if (json_object_size(metrics)) {
        printf("  metrics:");
        json_object_foreach((json_t *)metrics, mk, mv) {
            if (nm == PS_MAX_METRICS)
                break;
            if (json_is_number(mv))
                printf("  %s %.4f", mk, json_number_value(mv));
            else
                printf("  %s -", mk);
            hdr[4 + nm] = mk;
            align[4 + nm++] = 'r';
        }
        printf("\n");
    }
    print_aggregate(json_object_get(run, "aggregate"));

    pb_cli_table_t t;
    if (pb_cli_table_init(&t, 4 + nm, hdr, align))
        return;
    size_t i;
    const json_t *b;
    json_array_foreach(json_object_get(run, "buckets"), i, b) {
        pb_cli_fmt_acc(pb_cli_jnum(b, "accuracy"), acc);
        pb_cli_fmt_ci(pb_cli_jnum(b, "ci_low"), pb_cli_jnum(b, "ci_high"), ci);
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(b, "bucket", 0));
        pb_cli_table_addf(&t, "%lld", (long long)pb_cli_jint(b, "n", 0));
        pb_cli_table_add(&t, acc);
        pb_cli_table_add(&t, ci);
        for (size_t k = 0; k < nm; k++) {
            const json_t *v = json_object_get(json_object_get(b, "metrics"), hdr[4 + k]);
            if (json_is_number(v))
                pb_cli_table_addf(&t, "%.4f", json_number_value(v));
            else
                pb_cli_table_add(&t, "-");
        }
    }
    pb_cli_table_print(&t, stdout, 2);
    pb_cli_table_free(&t);
}

/* One CSV row: numbers as plain text, missing ones empty. */
static void csv_row(const json_t *run, const char *bucket, const json_t *x)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%lld", (long long)pb_cli_jint(run, "index", 0));
    pb_cli_csv(stdout, buf, ',');
    pb_cli_csv(stdout, pb_cli_jstr(run, "suite", ""), ',');
    pb_cli_csv(stdout, pb_cli_jstr(run, "task", ""), ',');
    pb_cli_csv(stdout, bucket, ',');
    snprintf(buf, sizeof buf, "%lld", (long long)pb_cli_jint(x, "n", 0));
    pb_cli_csv(stdout, buf, ',');
    static const char *const nums[] = {"score_sum", "accuracy", "ci_low", "ci_high"};
    for (size_t k = 0; k < PB_ARRAY_LEN(nums); k++) {
        double v = pb_cli_jnum(x, nums[k]);
        buf[0] = '\0';
        if (!isnan(v))
            snprintf(buf, sizeof buf, "%.6g", v);
        pb_cli_csv(stdout, buf, k + 1 < PB_ARRAY_LEN(nums) ? ',' : '\n');
    }
}

static void print_results_csv(const json_t *r)
{
    size_t i, k;
    const json_t *run, *b;
    printf("run,suite,task,bucket,n,score_sum,accuracy,ci_low,ci_high\n");
    json_array_foreach(json_object_get(r, "runs"), i, run) {
        json_array_foreach(json_object_get(run, "buckets"), k, b) {
            char bucket[32];
            snprintf(bucket, sizeof bucket, "%lld", (long long)pb_cli_jint(b, "bucket", 0));
            csv_row(run, bucket, b);
        }
        csv_row(run, "all", run);
    }
}

int pb_cli_cmd_results(pb_cli_t *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int fmt = FMT_TABLE, ch;
    int64_t id;
    char path[64];
    json_t *r = NULL;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "hf:", opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            if (parse_format(optarg, 1, 0, &fmt))
                return pb_cli_usage_error("results", "--format must be table, json or csv");
            break;
        case 'h': pb_cli_usage("results", stdout); return PB_CLI_OK;
        default: return pb_cli_bad_option("results");
        }
    }
    if (optind + 1 != argc || pb_cli_parse_id(argv[optind], &id))
        return pb_cli_usage_error("results", "expected one job ID");
    snprintf(path, sizeof path, "/api/v1/jobs/%lld/results", (long long)id);
    int rc = pb_cli_get(c, path, &r);
    if (rc)
        return pb_cli_exit_for(rc);

    const char *state = pb_cli_jstr(r, "state", "?");
    if (strcmp(state, "done") != 0)
        fprintf(stderr, "note: job %lld is %s; results may be partial\n", (long long)id, state);
    if (fmt == FMT_JSON) {
        pb_cli_print_json(r);
    } else if (fmt == FMT_CSV) {
        print_results_csv(r);
    } else {
        size_t i;
        const json_t *run;
        printf("job %lld (%s)\n", (long long)id, state);
        json_array_foreach(json_object_get(r, "runs"), i, run) {
            printf("\n");
            print_run_table(run);
        }
    }
    json_decref(r);
    return PB_CLI_OK;
}

/* ---- items ---- */

typedef struct items_out {
    int fmt;
    size_t count;
    pb_cli_table_t table;
} items_out_t;

static void item_row(items_out_t *o, const json_t *it)
{
    char pred[160], ref[160], err[160], score[32];
    const json_t *sv = json_object_get(it, "score");
    char *refjson = NULL;
    const char *reftext = pb_cli_jstr(it, "reference", NULL);
    if (reftext == NULL) {
        refjson = pb_cli_fmt_json(json_object_get(it, "reference"), 40);
        reftext = refjson ? refjson : "-";
    }
    pb_cli_clip(pb_cli_jstr(it, "prediction", "-"), 40, pred, sizeof pred);
    pb_cli_clip(reftext, 40, ref, sizeof ref);
    pb_cli_clip(pb_cli_jstr(it, "error", ""), 40, err, sizeof err);
    if (json_is_number(sv))
        snprintf(score, sizeof score, "%.3g", json_number_value(sv));
    else
        snprintf(score, sizeof score, "-");

    pb_cli_table_t *t = &o->table;
    pb_cli_table_addf(t, "%lld", (long long)pb_cli_jint(it, "task_id", 0));
    pb_cli_table_addf(t, "%lld", (long long)pb_cli_jint(it, "run", 0));
    pb_cli_table_addf(t, "%lld", (long long)pb_cli_jint(it, "bucket", 0));
    pb_cli_table_addf(t, "%lld", (long long)pb_cli_jint(it, "idx", 0));
    pb_cli_table_add(t, score);
    pb_cli_table_addf(t, "%.1f", (double)pb_cli_jint(it, "latency_us", 0) / 1000.0);
    pb_cli_table_add(t, pred);
    pb_cli_table_add(t, ref);
    pb_cli_table_add(t, err);
    free(refjson);
}

/* Emit one page; JSON forms stream, the table collects rows. */
static void items_page(items_out_t *o, const json_t *items)
{
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it) {
        if (o->fmt == FMT_JSONL) {
            json_dumpf(it, stdout, JSON_COMPACT);
            fputc('\n', stdout);
        } else if (o->fmt == FMT_JSON) {
            fputs(o->count ? ",\n    " : "\n    ", stdout);
            json_dumpf(it, stdout, JSON_COMPACT);
        } else {
            item_row(o, it);
        }
        o->count++;
    }
}

int pb_cli_cmd_items(pb_cli_t *c, int argc, char **argv)
{
    enum { O_RUN = 256, O_BUCKET, O_LIMIT, O_ALL };
    static const struct option opts[] = {
        {"run", required_argument, NULL, O_RUN},
        {"bucket", required_argument, NULL, O_BUCKET},
        {"limit", required_argument, NULL, O_LIMIT},
        {"all", no_argument, NULL, O_ALL},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const hdr[] = {"TASK", "RUN", "BUCKET", "IDX", "SCORE",
                                      "MS", "PREDICTION", "REFERENCE", "ERROR"};
    const char *run = NULL, *bucket = NULL;
    int all = 0, ch, rc = PB_CLI_OK;
    int64_t id, x, limit = ITEMS_PAGE_DEFAULT, total = -1;
    char *cursor = NULL;
    json_t *r = NULL;
    items_out_t o = {.fmt = FMT_TABLE};

    optind = 0;
    while ((ch = getopt_long(argc, argv, "hf:", opts, NULL)) != -1) {
        switch (ch) {
        case O_RUN: run = optarg; break;
        case O_BUCKET: bucket = optarg; break;
        case O_ALL: all = 1; break;
        case O_LIMIT:
            if (pb_cli_parse_int(optarg, 1, ITEMS_PAGE_MAX, &limit))
                return pb_cli_usage_error("items", "--limit must be 1..%d", ITEMS_PAGE_MAX);
            break;
        case 'f':
            if (parse_format(optarg, 0, 1, &o.fmt))
                return pb_cli_usage_error("items", "--format must be table, json or jsonl");
            break;
        case 'h': pb_cli_usage("items", stdout); return PB_CLI_OK;
        default: return pb_cli_bad_option("items");
        }
    }
    if (optind + 1 != argc || pb_cli_parse_id(argv[optind], &id))
        return pb_cli_usage_error("items", "expected one job ID");
    if (run && pb_cli_parse_int(run, 0, INT32_MAX, &x))
        return pb_cli_usage_error("items", "--run must be a run index (0, 1, ...)");
    if (bucket && pb_cli_parse_int(bucket, INT64_MIN, INT64_MAX, &x))
        return pb_cli_usage_error("items", "--bucket must be an integer");
    if (pb_cli_table_init(&o.table, PB_ARRAY_LEN(hdr), hdr, "rrrrrrlll"))
        return PB_CLI_FAIL;

    if (o.fmt == FMT_JSON)
        fputs("{\n  \"items\": [", stdout);
    for (long pages = 0; pages < ITEMS_MAX_PAGES; pages++) {
        char path[1024], lim[32];
        snprintf(path, sizeof path, "/api/v1/jobs/%lld/items", (long long)id);
        snprintf(lim, sizeof lim, "%lld", (long long)limit);
        if (pb_cli_query(path, sizeof path, "run", run) ||
            pb_cli_query(path, sizeof path, "bucket", bucket) ||
            pb_cli_query(path, sizeof path, "after", cursor) ||
            pb_cli_query(path, sizeof path, "limit", lim)) {
            fprintf(stderr, "error: item cursor too long\n");
            rc = PB_CLI_FAIL;
            goto out;
        }
        int err = pb_cli_get(c, path, &r);
        if (err) {
            rc = pb_cli_exit_for(err);
            goto out;
        }
        total = pb_cli_jint(r, "total", total);
        items_page(&o, json_object_get(r, "items"));
        const json_t *next = json_object_get(r, "next");
        char *nc = NULL;
        if (json_is_string(next))
            nc = strdup(json_string_value(next));
        else if (json_is_integer(next) && asprintf(&nc, "%lld",
                                                   (long long)json_integer_value(next)) < 0)
            nc = NULL;
        int same = nc && cursor && strcmp(nc, cursor) == 0;
        free(cursor);
        cursor = nc;
        json_decref(r);
        r = NULL;
        if (same) {
            fprintf(stderr, "error: the coordinator repeated item cursor %s\n", cursor);
            rc = PB_CLI_FAIL;
            goto out;
        }
        if (!all || cursor == NULL)
            break;
    }
out:
    if (o.fmt == FMT_JSON) {
        printf("%s],\n  \"total\": %lld", o.count ? "\n  " : "", (long long)total);
        if (!all && cursor) {
            printf(",\n  \"next\": ");
            json_t *s = json_string(cursor);
            json_dumpf(s, stdout, JSON_ENCODE_ANY);
            json_decref(s);
        }
        printf("\n}\n");
    } else if (o.fmt == FMT_TABLE && rc == PB_CLI_OK) {
        if (o.count)
            pb_cli_table_print(&o.table, stdout, 0);
        else
            printf("no items\n");
    }
    if (rc == PB_CLI_OK && o.fmt == FMT_TABLE && cursor)
        fprintf(stderr, "showing %zu of %lld items; --all for every page\n", o.count,
                (long long)total);
    pb_cli_table_free(&o.table);
    json_decref(r);
    free(cursor);
    return rc;
}
