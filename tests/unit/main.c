/* One unit-test runner for every module (make check). With arguments, runs
 * only the named groups: run_unit common db. Fails through its exit code. */
#include "tests/unit/unit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(void);
} groups[] = {
    {"common", pb_test_common}, {"items", pb_test_items}, {"suites", pb_test_suites}, {"db", pb_test_db},
    {"http", pb_test_http},     {"sched", pb_test_sched},   {"worker", pb_test_worker},
    {"lengthgen", pb_test_lengthgen},
    {"table", pb_test_table},
    {"longctx", pb_test_longctx},
    {"retrieval", pb_test_retrieval},
    {"halluc", pb_test_halluc},
    {"breakdown", pb_test_breakdown},
    {"datasets", pb_test_datasets},
    {"engine_ckpt", pb_test_engine_ckpt},
    {"engine_tok", pb_test_engine_tok},
    {"regress", pb_test_regress},
    {"series", pb_test_series},
    {"openai", pb_test_openai},
    {"kernels_suite", pb_test_kernels_suite},
    {"serve", pb_test_serve},
};

json_t *pb_test_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (v == NULL)
        fail_msg("bad JSON in test: %s: %s", text, jerr.text);
    return v;
}

void pb_test_tmpdir(char *out, size_t n)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, n, "%s/pbunit-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

json_t *pb_test_norm(const ps_suite_t *suite, const char *task, const char *text)
{
    json_t *in = text ? pb_test_json(text) : NULL;
    json_t *out = NULL;
    pb_err_t err = {{0}, {0}};
    int rc = suite->normalize(task, in, &out, &err);
    json_decref(in);
    if (rc)
        fail_msg("normalize %s %s: %s", task, text ? text : "null", err.msg);
    return out;
}

void pb_test_param_error(const ps_suite_t *suite, const char *task, const char *params,
                         const char *field)
{
    json_t *in = pb_test_json(params);
    json_t *out = (json_t *)&out; /* must become NULL */
    pb_err_t err = {{0}, {0}};
    int rc = suite->normalize(task, in, &out, &err);
    json_decref(in);
    if (rc != PB_EINVAL || strcmp(err.field, field) != 0)
        fail_msg("%s %s %s: rc %d field \"%s\" (want \"%s\") msg %s", suite->name, task, params,
                 rc, err.field, field, err.msg);
    assert_null(out);
    assert_true(err.msg[0] != '\0');
}

void pb_test_open_run(ps_run_t *run, const ps_suite_t *suite, const char *task,
                      const char *params, int64_t bucket, uint64_t seed)
{
    json_t *p = pb_test_norm(suite, task, params);
    assert_int_equal(ps_run_open(run, suite, task, p, bucket, seed), 0);
    json_decref(p);
}

void pb_test_gen(const ps_run_t *run, uint64_t idx, ps_item_t *it)
{
    assert_int_equal(run->suite->generate(run, idx, it), 0);
    assert_non_null(it->prompt);
    assert_non_null(it->reference);
    assert_non_null(it->meta);
}

int main(int argc, char **argv)
{
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        int want = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strcmp(argv[a], groups[i].name) == 0)
                want = 1;
        if (!want)
            continue;
        ran++;
        int f = groups[i].run();
        if (f)
            fprintf(stderr, "unit group %s: %d failed\n", groups[i].name, f);
        failed += f;
    }
    if (ran == 0) {
        fprintf(stderr, "no unit group matched\n");
        return 2;
    }
    return failed ? 1 : 0;
}
