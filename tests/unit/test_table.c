/* Unit tests for the table suite (suites/table.c): exact rendering of a
 * hand-made table in every format, each task's question and reference,
 * generated items checked by an independent CSV solver (unique headers,
 * unique reverse_lookup values, unique two_hop maxima), determinism,
 * parameter errors naming the field, buckets and the aggregate. */
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites/suite.h"
#include "suites/suite_int.h"

static const char *const tasks[] = {"cell_lookup",    "reverse_lookup", "column_aggregate",
                                    "row_aggregate",  "position_probe", "two_hop"};
#define N_TASKS (sizeof tasks / sizeof tasks[0])

static const ps_suite_t *table(void)
{
    const ps_suite_t *s = ps_suite_find("table");
    assert_non_null(s);
    return s;
}

static json_t *norm(const char *task, const char *text)
{
    return pb_test_norm(table(), task, text);
}

static void open_run(ps_run_t *run, const char *task, const char *params, int64_t bucket,
                     uint64_t seed)
{
    pb_test_open_run(run, table(), task, params, bucket, seed);
}

static void gen(const ps_run_t *run, uint64_t idx, ps_item_t *it) { pb_test_gen(run, idx, it); }

static int meta_int(const ps_item_t *it, const char *key)
{
    json_t *v = json_object_get(it->meta, key);
    if (!json_is_integer(v))
        fail_msg("meta has no integer %s", key);
    return (int)json_integer_value(v);
}

/* ---- the hand-made table ---- */

/* 2 x 3: two number columns and one word column. */
static void tiny(ps_tb_table_t *t)
{
    static const char *const cells[2][3] = {{"7", "12", "apple"}, {"3", "12", "pear"}};
    memset(t, 0, sizeof *t);
    t->rows = 2;
    t->cols = 3;
    strcpy(t->row_names[0], "red fox");
    strcpy(t->row_names[1], "blue owl");
    strcpy(t->col_names[0], "age");
    strcpy(t->col_names[1], "score");
    strcpy(t->col_names[2], "fruit");
    t->col_word[2] = 1;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++)
            strcpy(t->cells[r][c], cells[r][c]);
}

static void expect(const char *format, const char *task, ps_tb_query_t q, const char *table_text,
                   const char *question, const char *reference)
{
    ps_tb_table_t t;
    char *prompt, *ref, want[2048];
    tiny(&t);
    assert_int_equal(ps__tb_render(&t, format, task, &q, &prompt, &ref), 0);
    snprintf(want, sizeof want, "%s\n%s\nAnswer:", table_text, question);
    assert_string_equal(prompt, want);
    assert_string_equal(ref, reference);
    free(prompt);
    free(ref);
}

static void expect_reject(const char *format, const char *task, ps_tb_query_t q)
{
    ps_tb_table_t t;
    char *prompt = (char *)&t, *ref = (char *)&t;
    tiny(&t);
    assert_int_equal(ps__tb_render(&t, format, task, &q, &prompt, &ref), PB_EINVAL);
    assert_null(prompt);
    assert_null(ref);
}

#define MD                                                                                     \
    "| name | age | score | fruit |\n| --- | --- | --- | --- |\n"                               \
    "| red fox | 7 | 12 | apple |\n| blue owl | 3 | 12 | pear |\n"

static void test_formats(void **state)
{
    ps_tb_query_t q = {.row = 1, .col = 2};
    const char *question = "Counting data rows and columns from 1 (headers excluded), what is "
                           "in row 2, column 3?";
    expect("markdown", "position_probe", q, MD, question, "pear");
    expect("csv", "position_probe", q,
           "name,age,score,fruit\nred fox,7,12,apple\nblue owl,3,12,pear\n", question, "pear");
    expect("html", "position_probe", q,
           "<table>\n<tr><th>name</th><th>age</th><th>score</th><th>fruit</th></tr>\n"
           "<tr><th>red fox</th><td>7</td><td>12</td><td>apple</td></tr>\n"
           "<tr><th>blue owl</th><td>3</td><td>12</td><td>pear</td></tr>\n</table>\n",
           question, "pear");
    expect("kv_row", "position_probe", q,
           "red fox, age: 7\nred fox, score: 12\nred fox, fruit: apple\n"
           "blue owl, age: 3\nblue owl, score: 12\nblue owl, fruit: pear\n",
           question, "pear");
    expect("kv_col", "position_probe", q,
           "red fox, age: 7\nblue owl, age: 3\nred fox, score: 12\n"
           "blue owl, score: 12\nred fox, fruit: apple\nblue owl, fruit: pear\n",
           question, "pear");
    expect_reject("xml", "position_probe", q);
    expect_reject("csv", "nope", q);
}

static void test_questions(void **state)
{
    expect("markdown", "cell_lookup", (ps_tb_query_t){.row = 0, .col = 2}, MD,
           "What is the fruit of red fox?", "apple");
    expect("markdown", "reverse_lookup", (ps_tb_query_t){.row = 1, .col = 0}, MD,
           "Which row has age equal to 3? Answer with the row name.", "blue owl");
    expect("markdown", "column_aggregate", (ps_tb_query_t){.col = 0, .op = PS_TB_SUM}, MD,
           "What is the sum of the age column?", "10");
    expect("markdown", "column_aggregate", (ps_tb_query_t){.col = 0, .op = PS_TB_MAXV}, MD,
           "What is the largest value in the age column?", "7");
    expect("markdown", "column_aggregate", (ps_tb_query_t){.col = 1, .op = PS_TB_MINV}, MD,
           "What is the smallest value in the score column?", "12");
    expect("markdown", "column_aggregate",
           (ps_tb_query_t){.col = 0, .op = PS_TB_COUNT_GT, .threshold = 5}, MD,
           "How many values in the age column are greater than 5?", "1");
    /* a row aggregate skips the word column */
    expect("markdown", "row_aggregate", (ps_tb_query_t){.row = 1, .op = PS_TB_SUM}, MD,
           "What is the sum of the numbers in the blue owl row?", "15");
    expect("markdown", "row_aggregate", (ps_tb_query_t){.row = 0, .op = PS_TB_MINV}, MD,
           "What is the smallest number in the red fox row?", "7");
    expect("markdown", "row_aggregate",
           (ps_tb_query_t){.row = 0, .op = PS_TB_COUNT_GT, .threshold = 7}, MD,
           "How many numbers in the red fox row are greater than 7?", "1");
    expect("markdown", "two_hop", (ps_tb_query_t){.col = 0, .col_b = 2}, MD,
           "What is the fruit of the row with the largest age?", "apple");
    /* queries without one right answer are refused */
    expect_reject("markdown", "reverse_lookup", (ps_tb_query_t){.row = 0, .col = 1});
    expect_reject("markdown", "two_hop", (ps_tb_query_t){.col = 1, .col_b = 0});
    expect_reject("markdown", "two_hop", (ps_tb_query_t){.col = 2, .col_b = 0});
    expect_reject("markdown", "two_hop", (ps_tb_query_t){.col = 0, .col_b = 0});
    expect_reject("markdown", "column_aggregate", (ps_tb_query_t){.col = 2, .op = PS_TB_SUM});
    expect_reject("markdown", "cell_lookup", (ps_tb_query_t){.row = 2, .col = 0});
    expect_reject("markdown", "cell_lookup", (ps_tb_query_t){.row = 0, .col = 3});
}

/* ---- generated items, solved independently from their CSV text ---- */

typedef struct csv {
    int rows, cols;
    char head[PS_TB_MAX + 1][PS_TB_NAME];         /* "name", then column names */
    char names[PS_TB_MAX][PS_TB_NAME];            /* row names */
    char cells[PS_TB_MAX][PS_TB_MAX][PS_TB_CELL]; /* values */
    char question[512];
} csv_t;

/* Split a line at commas into out (each field < size); returns the count. */
static int split(const char *line, size_t len, char *out, size_t size, int max)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ',')
            continue;
        assert_true(n < max);
        assert_true(i - start < size);
        memcpy(out + (size_t)n * size, line + start, i - start);
        out[(size_t)n * size + (i - start)] = '\0';
        n++;
        start = i + 1;
    }
    return n;
}

static void parse_csv(const char *prompt, csv_t *t)
{
    char fields[PS_TB_MAX + 1][PS_TB_NAME];
    memset(t, 0, sizeof *t);
    const char *p = prompt;
    int line = 0;
    for (;;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (nl == p) { /* the blank line before the question */
            p++;
            break;
        }
        int n = split(p, (size_t)(nl - p), &fields[0][0], PS_TB_NAME, PS_TB_MAX + 1);
        if (line == 0) {
            t->cols = n - 1;
            memcpy(t->head, fields, sizeof fields);
        } else {
            assert_int_equal(n, t->cols + 1);
            strcpy(t->names[line - 1], fields[0]);
            for (int c = 0; c < t->cols; c++) {
                assert_true(strlen(fields[c + 1]) < PS_TB_CELL);
                strcpy(t->cells[line - 1][c], fields[c + 1]);
            }
        }
        line++;
        p = nl + 1;
    }
    t->rows = line - 1;
    const char *end = strstr(p, "\nAnswer:");
    assert_non_null(end);
    assert_string_equal(end, "\nAnswer:");
    assert_true((size_t)(end - p) < sizeof t->question);
    memcpy(t->question, p, (size_t)(end - p));
}

static int col_of(const csv_t *t, const char *name)
{
    for (int c = 0; c < t->cols; c++)
        if (strcmp(t->head[c + 1], name) == 0)
            return c;
    fail_msg("no column %s", name);
    return -1;
}

static int is_number(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Headers unique; the reference recomputed from the table and the meta. */
static void check_item(const char *task, const ps_item_t *it)
{
    csv_t *t = malloc(sizeof *t);
    char a[PS_TB_NAME], b[PS_TB_NAME], want[64];
    assert_non_null(t);
    parse_csv(it->prompt, t);
    assert_int_equal(t->rows, meta_int(it, "rows"));
    assert_int_equal(t->cols, meta_int(it, "cols"));
    assert_int_equal(it->bucket, t->rows * t->cols);
    assert_string_equal(t->head[0], "name");
    for (int i = 0; i < t->rows; i++)
        for (int j = i + 1; j < t->rows; j++)
            assert_string_not_equal(t->names[i], t->names[j]);
    for (int i = 0; i <= t->cols; i++)
        for (int j = i + 1; j <= t->cols; j++)
            assert_string_not_equal(t->head[i], t->head[j]);
    for (int r = 0; r < t->rows; r++) {
        assert_non_null(strchr(t->names[r], ' ')); /* adjective noun */
        for (int c = 0; c < t->cols; c++)
            if (is_number(t->cells[r][c]))
                assert_true(atoi(t->cells[r][c]) < 10000);
    }
    if (strcmp(task, "cell_lookup") == 0 || strcmp(task, "position_probe") == 0) {
        int r = meta_int(it, "row") - 1, c = meta_int(it, "col") - 1;
        assert_string_equal(it->reference, t->cells[r][c]);
        if (task[0] == 'c') {
            snprintf(want, sizeof want, "What is the %s of %s?", t->head[c + 1], t->names[r]);
            assert_string_equal(t->question, want);
        }
    } else if (strcmp(task, "reverse_lookup") == 0) {
        char v[PS_TB_CELL];
        assert_int_equal(sscanf(t->question, "Which row has %31s equal to %7[^?]?", a, v), 2);
        int c = col_of(t, a), hits = 0;
        assert_int_equal(c + 1, meta_int(it, "col"));
        for (int r = 0; r < t->rows; r++)
            if (strcmp(t->cells[r][c], v) == 0) {
                hits++;
                assert_string_equal(it->reference, t->names[r]);
                assert_int_equal(r + 1, meta_int(it, "row"));
            }
        assert_int_equal(hits, 1);
    } else if (strcmp(task, "two_hop") == 0) {
        const char *fmt = "What is the %31s of the row with the largest %31[^?]?";
        assert_int_equal(sscanf(t->question, fmt, b, a), 2);
        int ca = col_of(t, a), cb = col_of(t, b), best = 0, ties = 0;
        for (int r = 1; r < t->rows; r++)
            if (atoi(t->cells[r][ca]) > atoi(t->cells[best][ca]))
                best = r;
        for (int r = 0; r < t->rows; r++)
            ties += atoi(t->cells[r][ca]) == atoi(t->cells[best][ca]);
        assert_int_equal(ties, 1);
        assert_string_equal(it->reference, t->cells[best][cb]);
        assert_int_equal(best + 1, meta_int(it, "row"));
        assert_int_equal(cb + 1, meta_int(it, "col"));
        assert_int_equal(ca + 1, meta_int(it, "hop_col"));
    } else { /* aggregates */
        int col = strcmp(task, "column_aggregate") == 0;
        const char *op = json_string_value(json_object_get(it->meta, "op"));
        assert_non_null(op);
        assert_null(json_object_get(it->meta, col ? "row" : "col"));
        int idx = meta_int(it, col ? "col" : "row") - 1, thr = -1;
        const char *gt = strstr(t->question, "greater than ");
        if (gt)
            thr = atoi(gt + 13);
        assert_int_equal(gt != NULL, strcmp(op, "count_gt") == 0);
        long acc = strcmp(op, "min") == 0 ? 100000 : strcmp(op, "max") == 0 ? -1 : 0;
        int n = col ? t->rows : t->cols;
        for (int i = 0; i < n; i++) {
            const char *cell = col ? t->cells[i][idx] : t->cells[idx][i];
            if (!is_number(cell))
                continue;
            long v = atol(cell);
            if (strcmp(op, "sum") == 0)
                acc += v;
            else if (strcmp(op, "max") == 0)
                acc = v > acc ? v : acc;
            else if (strcmp(op, "min") == 0)
                acc = v < acc ? v : acc;
            else
                acc += v > thr;
        }
        snprintf(want, sizeof want, "%ld", acc);
        assert_string_equal(it->reference, want);
        assert_non_null(strstr(t->question, col ? t->head[idx + 1] : t->names[idx]));
    }
    free(t);
}

static void test_generated_items(void **state)
{
    static const char *const params[] = {
        "{\"format\": \"csv\"}",
        "{\"format\": \"csv\", \"cells\": \"mixed\", \"rows\": 64, \"cols\": 64}",
        "{\"format\": \"csv\", \"cells\": \"mixed\", \"rows\": [4, 8], \"cols\": [16, 32], "
        "\"shapes\": \"all\"}",
    };
    for (size_t t = 0; t < N_TASKS; t++)
        for (size_t p = 0; p < PB_ARRAY_LEN(params); p++) {
            int64_t *b;
            size_t nb;
            json_t *np = norm(tasks[t], params[p]);
            assert_int_equal(table()->buckets(tasks[t], np, &b, &nb), 0);
            json_decref(np);
            for (size_t k = 0; k < nb; k++) {
                ps_run_t run;
                open_run(&run, tasks[t], params[p], b[k], 7);
                for (uint64_t i = 0; i < (b[k] >= 1024 ? 4 : 16); i++) {
                    ps_item_t it;
                    gen(&run, i, &it);
                    check_item(tasks[t], &it);
                    /* length: the prompt's characters, the bucket its cells */
                    assert_int_equal(it.length, (int64_t)strlen(it.prompt));
                    assert_string_equal(json_string_value(json_object_get(it.meta, "format")),
                                        "csv");
                    ps_item_clear(&it);
                }
                ps_run_close(&run);
            }
            free(b);
        }
}

/* Word cells come from the word list; position_probe reaches every corner. */
static void test_word_cells(void **state)
{
    ps_run_t run;
    int seen_rows[PS_TB_MAX + 1] = {0}, words = 0;
    open_run(&run, "position_probe", "{\"cells\": \"word\", \"rows\": 4, \"cols\": 4}", 16, 3);
    for (uint64_t i = 0; i < 200; i++) {
        ps_item_t it;
        gen(&run, i, &it);
        seen_rows[meta_int(&it, "row")]++;
        words += !is_number(it.reference);
        assert_non_null(strstr(it.prompt, "| --- |")); /* markdown by default */
        ps_item_clear(&it);
    }
    ps_run_close(&run);
    assert_int_equal(words, 200);
    for (int r = 1; r <= 4; r++)
        assert_true(seen_rows[r] > 20);
}

static void same_item(const ps_item_t *a, const ps_item_t *b)
{
    assert_string_equal(a->prompt, b->prompt);
    assert_string_equal(a->reference, b->reference);
    assert_true(json_equal(a->meta, b->meta));
    assert_int_equal(a->length, b->length);
    assert_true(a->prompt_hash == b->prompt_hash);
}

static void test_determinism(void **state)
{
    static const char *const formats[] = {"markdown", "csv", "html", "kv_row", "kv_col"};
    for (size_t t = 0; t < N_TASKS; t++) {
        char params[128];
        snprintf(params, sizeof params, "{\"format\": \"%s\", \"cells\": \"mixed\"}",
                 formats[t % PB_ARRAY_LEN(formats)]);
        ps_run_t run, again, other;
        ps_item_t fwd[10], it;
        open_run(&run, tasks[t], params, 64, 4242);
        for (uint64_t i = 0; i < 10; i++)
            gen(&run, i, &fwd[i]);
        open_run(&again, tasks[t], params, 64, 4242);
        for (int i = 9; i >= 0; i--) {
            gen(&again, (uint64_t)i, &it);
            same_item(&it, &fwd[i]);
            ps_item_clear(&it);
        }
        /* another seed gives other tables */
        open_run(&other, tasks[t], params, 64, 4243);
        gen(&other, 0, &it);
        assert_string_not_equal(it.prompt, fwd[0].prompt);
        ps_item_clear(&it);
        for (int i = 0; i < 10; i++)
            ps_item_clear(&fwd[i]);
        ps_run_close(&run);
        ps_run_close(&again);
        ps_run_close(&other);
    }
}

/* format "all": item i is rendered exactly as a run of format (i mod 5)
 * would render it, and says so in its meta. */
static void test_all_formats(void **state)
{
    static const char *const formats[] = {"markdown", "csv", "html", "kv_row", "kv_col"};
    ps_run_t all;
    open_run(&all, "cell_lookup", "{\"format\": \"all\"}", 64, 77);
    for (uint64_t i = 0; i < 10; i++) {
        const char *f = formats[i % 5];
        char params[64];
        snprintf(params, sizeof params, "{\"format\": \"%s\"}", f);
        ps_run_t one;
        ps_item_t a, b;
        open_run(&one, "cell_lookup", params, 64, 77);
        gen(&all, i, &a);
        gen(&one, i, &b);
        /* the run keys differ (other params), so compare the shape, not the text */
        assert_string_equal(json_string_value(json_object_get(a.meta, "format")), f);
        assert_int_equal(strstr(a.prompt, "<table") != NULL, strstr(b.prompt, "<table") != NULL);
        assert_int_equal(strchr(a.prompt, '|') != NULL, strchr(b.prompt, '|') != NULL);
        ps_item_clear(&a);
        ps_item_clear(&b);
        ps_run_close(&one);
    }
    ps_run_close(&all);
}

static void expect_param_error(const char *task, const char *params, const char *field)
{
    pb_test_param_error(table(), task, params, field);
}

static void test_params(void **state)
{
    json_t *n = norm("cell_lookup", NULL);
    json_t *want = pb_test_json("{\"rows\": [4, 32], \"cols\": [4, 32], \"cells\": \"int\","
                                " \"format\": \"markdown\", \"shapes\": \"square\"}");
    assert_true(json_equal(n, want));
    json_t *again = NULL;
    pb_err_t err;
    assert_int_equal(table()->normalize("cell_lookup", n, &again, &err), 0);
    assert_true(json_equal(again, n));
    json_decref(again);
    json_decref(want);
    json_decref(n);

    expect_param_error("cell_lookup", "{\"rows\": 3}", "rows");
    expect_param_error("cell_lookup", "{\"rows\": [4, 65]}", "rows");
    expect_param_error("cell_lookup", "{\"rows\": [5, 7]}", "rows");
    expect_param_error("cell_lookup", "{\"cols\": \"big\"}", "cols");
    expect_param_error("cell_lookup", "{\"format\": \"xml\"}", "format");
    expect_param_error("cell_lookup", "{\"cells\": \"float\"}", "cells");
    expect_param_error("cell_lookup", "{\"shapes\": \"round\"}", "shapes");
    expect_param_error("cell_lookup", "{\"rows\": 4, \"cols\": 8}", "shapes");
    expect_param_error("column_aggregate", "{\"cells\": \"word\"}", "cells");
    expect_param_error("row_aggregate", "{\"cells\": \"word\"}", "cells");
    expect_param_error("two_hop", "{\"cells\": \"word\"}", "cells");
    expect_param_error("cell_lookup", "{\"colour\": 1}", "colour");

    json_t *schema = table()->schema("two_hop");
    assert_non_null(schema);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(schema, "format"), "default")),
        "markdown");
    json_decref(schema);
    assert_null(table()->schema("nope"));
}

static void expect_buckets(const char *params, const int64_t *want, size_t n_want)
{
    int64_t *b;
    size_t n;
    json_t *p = norm("cell_lookup", params);
    assert_int_equal(table()->buckets("cell_lookup", p, &b, &n), 0);
    json_decref(p);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b[i], want[i]);
    free(b);
}

static void test_buckets(void **state)
{
    static const int64_t dflt[] = {16, 64, 256, 1024};
    static const int64_t all[] = {16, 32, 64, 128};
    static const int64_t one[] = {4096};
    expect_buckets(NULL, dflt, 4);
    expect_buckets("{\"rows\": [4, 8], \"cols\": [4, 16], \"shapes\": \"all\"}", all, 4);
    expect_buckets("{\"rows\": 64, \"cols\": 64}", one, 1);
    assert_string_equal(ps_task_unit(table(), "two_hop"), "cells");

    /* shapes "all": bucket 64 holds 4x16 and 8x8 tables */
    ps_run_t run;
    int seen44 = 0, seen88 = 0;
    open_run(&run, "cell_lookup", "{\"rows\": [4, 8], \"cols\": [4, 16], \"shapes\": \"all\"}",
             64, 1);
    for (uint64_t i = 0; i < 40; i++) {
        ps_item_t it;
        gen(&run, i, &it);
        int r = meta_int(&it, "rows"), c = meta_int(&it, "cols");
        assert_int_equal(r * c, 64);
        seen44 += r == 4;
        seen88 += r == 8;
        ps_item_clear(&it);
    }
    ps_run_close(&run);
    assert_true(seen44 > 0 && seen88 > 0);
    /* a bucket the params do not produce */
    ps_item_t it;
    open_run(&run, "cell_lookup", NULL, 32, 1);
    assert_int_equal(table()->generate(&run, 0, &it), PB_EINVAL);
    ps_run_close(&run);
}

static void test_score_and_aggregate(void **state)
{
    ps_run_t run;
    ps_item_t it;
    double s = -1;
    open_run(&run, "reverse_lookup", NULL, 16, 5);
    gen(&run, 0, &it);
    assert_int_equal(table()->score(&run, &it, it.reference, &s, NULL), 0);
    assert_true(s == 1.0);
    char pred[128];
    snprintf(pred, sizeof pred, "  %s\nbecause", it.reference);
    assert_int_equal(table()->score(&run, &it, pred, &s, NULL), 0);
    assert_true(s == 1.0);
    assert_int_equal(table()->score(&run, &it, "nobody", &s, NULL), 0);
    assert_true(s == 0.0);
    ps_item_clear(&it);
    ps_run_close(&run);

    const char *const *bd = table()->breakdown;
    assert_string_equal(bd[0], "row");
    assert_string_equal(bd[1], "col");
    assert_string_equal(bd[2], "rows,cols");
    assert_string_equal(bd[3], "format");
    assert_null(bd[4]);

    ps_bucket_stat_t st[] = {PB_TEST_STAT(16, 10, 10), PB_TEST_STAT(64, 10, 5)};
    json_t *agg = table()->aggregate("cell_lookup", NULL, st, 2);
    assert_non_null(agg);
    assert_true(json_real_value(json_object_get(agg, "accuracy")) == 0.75);
    assert_int_equal(json_integer_value(json_object_get(agg, "n")), 20);
    json_decref(agg);
}

int pb_test_table(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_questions),
        cmocka_unit_test(test_generated_items),
        cmocka_unit_test(test_word_cells),
        cmocka_unit_test(test_determinism), cmocka_unit_test(test_all_formats),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_score_and_aggregate),
    };
    return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}
