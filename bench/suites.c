/* bench/suites.c: item generation rate of every suite task at its largest
 * default bucket (items/s, MB/s of prompt text, microseconds per thousand
 * length units, and the run's one-off preparation, e.g. retrieval's corpus),
 * then every length-sized task (bucket unit "chars": longctx, halluc) at a
 * 128k-token bucket under the baselines' word tokenizer, where the target
 * is well under 1 ms per thousand tokens. Figures, not pass/fail: everything printed is measured
 * in this run. */
#include "config.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "suites/suite.h"
#include "worker/backend.h"

typedef struct bench_opts {
    double seconds;      /* time per task */
    const char *suite;   /* only this suite (NULL: all) */
    const char *task;    /* only this task */
    int64_t long_tokens; /* the token bucket of the long-context pass; 0: skip */
} bench_opts_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A ps_tokenizer_t over a backend's count_tokens. */
typedef struct bench_tok {
    const pb_backend_ops_t *ops;
    pb_backend_t *be;
} bench_tok_t;

static int tok_count(void *ctx, const char *text, size_t len, int64_t *n)
{
    bench_tok_t *t = ctx;
    return t->ops->count_tokens(t->be, text, len, n);
}

/* Generate items of one (task, params, bucket) for about opts->seconds (at
 * least 3 items) and print one row. Returns 0, or 1 on a generator error. */
static int bench_one(const ps_suite_t *s, const char *task, json_t *params, int64_t bucket,
                     ps_tokenizer_t *tok, const bench_opts_t *o)
{
    ps_run_t run;
    double t_open = now_s();
    int rc = ps_run_open(&run, s, task, params, bucket, 1234);
    t_open = now_s() - t_open;
    if (rc) {
        fprintf(stderr, "bench_suites: %s/%s: cannot open the run: %s\n", s->name, task,
                pb_strerror(rc));
        return 1;
    }
    run.tok = tok;
    uint64_t n = 0;
    double bytes = 0, units = 0, t0 = now_s(), t = t0;
    while (n < 3 || t - t0 < o->seconds) {
        ps_item_t it;
        memset(&it, 0, sizeof it);
        rc = s->generate(&run, n, &it);
        if (rc == 0 && tok && tok->failed)
            rc = tok->failed;
        if (rc) {
            fprintf(stderr, "bench_suites: %s/%s: item %llu: %s\n", s->name, task,
                    (unsigned long long)n, pb_strerror(rc));
            ps_run_close(&run);
            return 1;
        }
        for (size_t k = 0; k < it.n_parts; k++)
            bytes += (double)strlen(it.parts[k]);
        if (it.n_parts == 0)
            bytes += (double)strlen(it.prompt);
        units += (double)it.length;
        ps_item_clear(&it);
        n++;
        t = now_s();
    }
    double el = t - t0;
    char b[48];
    const char *unit = ps_task_unit(s, task);
    /* A length-sized task's bucket counts the run's length unit. */
    snprintf(b, sizeof b, "%lld %s", (long long)bucket,
             strcmp(unit, "chars") == 0 ? ps_run_unit(&run) : unit);
    printf("%-10s %-18s %-14s %10.1f %8.2f %10.1f %-6s %9.1f %9.2f\n", s->name, task, b,
           (double)n / el, bytes / el / 1e6, units / (double)n, ps_run_unit(&run),
           el / (double)n * 1e6 / (units / (double)n / 1000.0), t_open * 1e3);
    ps_run_close(&run);
    return 0;
}

static void header(const char *title)
{
    /* length: the prompt's, in the run's unit; us/1k: generation time per
     * thousand of those units; prep_ms: opening the run (parsing params,
     * building a corpus), paid once per task. */
    printf("\n%s\n%-10s %-18s %-14s %10s %8s %10s %-6s %9s %9s\n", title, "suite", "task",
           "bucket", "items/s", "MB/s", "length", "unit", "us/1k", "prep_ms");
}

static int selected(const bench_opts_t *o, const ps_suite_t *s, const char *task)
{
    return (o->suite == NULL || strcmp(o->suite, s->name) == 0) &&
           (o->task == NULL || strcmp(o->task, task) == 0);
}

/* Every task at the largest bucket of its default params, in characters. */
static int bench_defaults(const bench_opts_t *o)
{
    int bad = 0;
    header("generation at the largest default bucket (no tokenizer: lengths in characters)");
    for (size_t i = 0; i < ps_suite_count(); i++) {
        const ps_suite_t *s = ps_suite_at(i);
        for (size_t t = 0; t < s->n_tasks; t++) {
            const char *task = s->tasks[t].name;
            json_t *params = NULL;
            int64_t *b = NULL;
            size_t nb = 0;
            pb_err_t err = {0};
            if (!selected(o, s, task))
                continue;
            if (s->normalize(task, NULL, &params, &err) || s->buckets(task, params, &b, &nb) ||
                nb == 0) {
                fprintf(stderr, "bench_suites: %s/%s: no default buckets: %s\n", s->name, task,
                        err.msg);
                bad = 1;
            } else {
                bad |= bench_one(s, task, params, b[nb - 1], NULL, o);
            }
            free(b);
            json_decref(params);
        }
    }
    return bad;
}

/* Every length-sized task at one bucket of o->long_tokens tokens, measured
 * by the oracle backend's "words" tokenizer (the same one jobs get). */
static int bench_long(const bench_opts_t *o)
{
    const pb_backend_ops_t *ops = pb_backend_find("oracle");
    pb_err_t err = {0};
    bench_tok_t bt = {.ops = ops};
    json_t *model = json_pack("{s:s, s:s}", "backend", "oracle", "tokenizer", "words");
    int bad = 0;
    if (ops == NULL || ops->count_tokens == NULL || model == NULL ||
        ops->open(model, 1, &bt.be, &err)) {
        fprintf(stderr, "bench_suites: no word tokenizer: %s\n", err.msg);
        json_decref(model);
        return 1;
    }
    ps_tokenizer_t tok = {.ctx = &bt, .count = tok_count};
    char title[96];
    snprintf(title, sizeof title, "length-sized tasks at %lld tokens (\"words\" tokenizer)",
             (long long)o->long_tokens);
    header(title);
    for (size_t i = 0; i < ps_suite_count(); i++) {
        const ps_suite_t *s = ps_suite_at(i);
        for (size_t t = 0; t < s->n_tasks; t++) {
            const char *task = s->tasks[t].name;
            if (!selected(o, s, task) || strcmp(ps_task_unit(s, task), "chars") != 0)
                continue;
            json_t *in = json_pack("{s:I}", "lengths", (json_int_t)o->long_tokens), *params = NULL;
            if (in == NULL || s->normalize(task, in, &params, &err)) {
                fprintf(stderr, "bench_suites: %s/%s: %s\n", s->name, task, err.msg);
                bad = 1;
            } else {
                tok.failed = 0;
                bad |= bench_one(s, task, params, o->long_tokens, &tok, o);
            }
            json_decref(in);
            json_decref(params);
        }
    }
    ops->close(bt.be);
    json_decref(model);
    return bad;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_suites [--seconds S] [--suite NAME] [--task NAME] [--long-tokens N]\n"
            "  Times item generation of every suite task at its largest default bucket,\n"
            "  then every length-sized task (longctx, halluc) at N tokens (default 131072;\n"
            "  0 skips).\n"
            "  --seconds S   time spent per task (default 0.5)\n"
            "  --quick       0.1 s per task and 32768 tokens for the long pass\n");
}

int main(int argc, char **argv)
{
    bench_opts_t o = {.seconds = 0.5, .long_tokens = 131072};
    static const struct option opts[] = {
        {"seconds", required_argument, NULL, 's'}, {"suite", required_argument, NULL, 'S'},
        {"task", required_argument, NULL, 't'},    {"long-tokens", required_argument, NULL, 'l'},
        {"quick", no_argument, NULL, 'q'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            o.seconds = atof(optarg);
            break;
        case 'S':
            o.suite = optarg;
            break;
        case 't':
            o.task = optarg;
            break;
        case 'l':
            o.long_tokens = atoll(optarg);
            break;
        case 'q':
            o.seconds = 0.1;
            o.long_tokens = 32768;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o.seconds < 0 || o.long_tokens < 0) {
        usage(stderr);
        return 2;
    }
    int bad = bench_defaults(&o);
    if (o.long_tokens > 0)
        bad |= bench_long(&o);
    return bad;
}
