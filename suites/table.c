/* The table-understanding suite (reference/suites.md 3.4, after 2D-TPE):
 * generated R x C tables with named rows and columns, serialised as markdown,
 * CSV, HTML or row-/column-major "key: value" lines, and six question kinds
 * (lookup both ways, column and row aggregates, lookup by position, two hops),
 * bucketed by the table's cell count and broken down by the target's row and
 * column so results show where in the table answers go wrong. */
#include "suites/suite.h"
#include "suites/suite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

#define TB_MIN 4
#define TB_VMAX 10000          /* integer cells lie in [0, TB_VMAX) */
#define TB_TEXT_MAX (1u << 20) /* 64 x 64 kv_row is about 160 KiB */
#define TB_CORNER "name"       /* the header above the row names */

/* Table sides a sweep may use: powers of two, so cell counts stay few. */
static const int tb_sizes[] = {4, 8, 16, 32, 64};

enum { TK_CELL, TK_REVERSE, TK_COLAGG, TK_ROWAGG, TK_POS, TK_TWOHOP };
enum { TB_MARKDOWN, TB_CSV, TB_HTML, TB_KV_ROW, TB_KV_COL, TB_ALL_FORMATS };
enum { TB_INT, TB_WORD, TB_MIXED };
enum { TB_SQUARE, TB_ALL };

/* "all" (TB_ALL_FORMATS) is a param value only: item i uses format i mod 5. */
static const char *const tb_format_names[] = {"markdown", "csv", "html", "kv_row", "kv_col",
                                              "all"};
static const char *const tb_cell_names[] = {"int", "word", "mixed"};
static const char *const tb_shape_names[] = {"square", "all"};
static const char *const tb_op_names[] = {"sum", "max", "min", "count_gt"};

static const ps_task_def_t tb_tasks[] = {
    {"cell_lookup", "\"What is the <column> of <row>?\": the cell's exact text", NULL},
    {"reverse_lookup", "\"Which row has <column> equal to <value>?\" (the value is unique in "
                       "its column): the row name", NULL},
    {"column_aggregate", "sum, largest, smallest or count of values > t over one number "
                         "column: the exact integer", NULL},
    {"row_aggregate", "sum, largest, smallest or count of values > t over one row's number "
                      "columns: the exact integer", NULL},
    {"position_probe", "\"What is in row i, column j?\" by 1-based index, headers excluded: "
                       "the cell's exact text", NULL},
    {"two_hop", "\"What is the <B> of the row with the largest <A>?\" (the largest value is "
                "unique): the cell's exact text", NULL},
};

/* Row names are adjective-noun pairs (16 x 16 = 256, enough for 64 rows). */
static const char *const tb_adjs[] = {"red",   "blue",  "green",  "silver", "golden", "quiet",
                                      "swift", "brave", "calm",   "dark",   "bright", "little",
                                      "old",   "hidden", "wild",  "noble"};
static const char *const tb_nouns[] = {"fox",    "owl",    "river",  "mountain", "tiger",
                                       "falcon", "garden", "harbor", "lantern",  "meadow",
                                       "orchid", "castle", "comet",  "willow",   "badger",
                                       "canyon"};
/* Column names: at least PS_TB_MAX distinct attributes, none TB_CORNER. */
static const char *const tb_attrs[] = {
    "age",      "height",  "weight",   "score",   "price",   "rank",    "speed",   "power",
    "length",   "width",   "depth",    "volume",  "mass",    "density", "rating",  "level",
    "stock",    "sales",   "cost",     "profit",  "budget",  "salary",  "bonus",   "tax",
    "area",     "distance", "duration", "capacity", "energy", "strength", "agility", "stamina",
    "charisma", "wisdom",  "luck",     "armor",   "range",   "votes",   "visits",  "clicks",
    "views",    "likes",   "shares",   "orders",  "returns", "losses",  "wins",    "draws",
    "goals",    "points",  "assists",  "errors",  "hits",    "runs",    "steps",   "laps",
    "floors",   "rooms",   "seats",    "doors",   "windows", "pages",   "chapters", "grade",
    "tier",     "zone",    "batch",    "code"};
/* Word cells: short (< PS_TB_CELL bytes). */
static const char *const tb_words[] = {
    "apple", "pear",  "plum",  "kiwi",  "lime",  "fig",   "grape", "melon", "mango", "peach",
    "cherry", "lemon", "olive", "bean",  "corn",  "rice",  "wheat", "oat",   "rye",   "salt",
    "sugar", "honey", "milk",  "tea",   "coffee", "bread", "cake",  "pie",   "soup",  "jam"};

/* Parsed, validated params; also the run state. */
typedef struct tb_params {
    int task;           /* TK_* */
    int rlo, rhi;       /* rows range */
    int clo, chi;       /* cols range */
    int cells, format;  /* TB_INT.., TB_MARKDOWN.. */
    int shapes;         /* TB_SQUARE or TB_ALL */
} tb_params_t;

static int tb_kind(const char *task)
{
    for (int i = 0; task && i < (int)PB_ARRAY_LEN(tb_tasks); i++)
        if (strcmp(tb_tasks[i].name, task) == 0)
            return i;
    return -1;
}

static int tb_lookup(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int size_ok(int v, int lo, int hi) { return v >= lo && v <= hi; }

/* Table shapes (rows, cols) the params allow, row-major order; returns the
 * count (out may be NULL). */
static size_t tb_shapes(const tb_params_t *p, int (*out)[2])
{
    size_t n = 0;
    for (size_t i = 0; i < PB_ARRAY_LEN(tb_sizes); i++)
        for (size_t j = 0; j < PB_ARRAY_LEN(tb_sizes); j++) {
            int r = tb_sizes[i], c = tb_sizes[j];
            if (!size_ok(r, p->rlo, p->rhi) || !size_ok(c, p->clo, p->chi) ||
                (p->shapes == TB_SQUARE && r != c))
                continue;
            if (out) {
                out[n][0] = r;
                out[n][1] = c;
            }
            n++;
        }
    return n;
}

/* A string enum param; err names the field. */
static int parse_enum(const json_t *params, const char *key, const char *dflt,
                      const char *const *names, int n, const char *allowed, int *out,
                      pb_err_t *err)
{
    const char *s;
    int rc = pb_json_str(params, key, dflt, 0, &s, "", err);
    if (rc)
        return rc;
    if ((*out = tb_lookup(s, names, n)) < 0)
        return pb_err_set(err, PB_EINVAL, key, "%s must be %s (got \"%s\")", key, allowed, s);
    return 0;
}

/* rows/cols: [lo, hi] within [4, 64] holding at least one of 4, 8, 16, 32, 64. */
static int parse_side(const json_t *params, const char *key, int *lo, int *hi, pb_err_t *err)
{
    int rc = ps__parse_range(params ? json_object_get(params, key) : NULL, key, 4, 32, TB_MIN,
                             PS_TB_MAX, lo, hi, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < PB_ARRAY_LEN(tb_sizes); i++)
        if (size_ok(tb_sizes[i], *lo, *hi))
            return 0;
    return pb_err_set(err, PB_EINVAL, key, "%s must include one of 4, 8, 16, 32, 64", key);
}

/* Validate params (NULL = all defaults) into p. err->field is the param name. */
static int tb_parse(const char *task, const json_t *params, tb_params_t *p, pb_err_t *err)
{
    static const char *const keys[] = {"rows", "cols", "cells", "format", "shapes", NULL};
    int rc;

    memset(p, 0, sizeof *p);
    p->task = tb_kind(task);
    if (p->task < 0)
        return pb_err_set(err, PB_EINVAL, "", "unknown table task \"%s\"", task ? task : "");
    if (params != NULL && !json_is_object(params))
        return pb_err_set(err, PB_EINVAL, "", "params must be an object");
    if ((rc = pb_json_only_keys(params, keys, "", err)))
        return rc;
    if ((rc = parse_side(params, "rows", &p->rlo, &p->rhi, err)) ||
        (rc = parse_side(params, "cols", &p->clo, &p->chi, err)))
        return rc;
    if ((rc = parse_enum(params, "cells", "int", tb_cell_names, 3,
                         "\"int\", \"word\" or \"mixed\"", &p->cells, err)) ||
        (rc = parse_enum(params, "format", "markdown", tb_format_names, 6,
                         "\"markdown\", \"csv\", \"html\", \"kv_row\", \"kv_col\" or \"all\"",
                         &p->format, err)) ||
        (rc = parse_enum(params, "shapes", "square", tb_shape_names, 2,
                         "\"square\" or \"all\"", &p->shapes, err)))
        return rc;
    if (p->cells == TB_WORD &&
        (p->task == TK_COLAGG || p->task == TK_ROWAGG || p->task == TK_TWOHOP))
        return pb_err_set(err, PB_EINVAL, "cells",
                          "task %s needs number cells: cells must be \"int\" or \"mixed\"",
                          tb_tasks[p->task].name);
    if (tb_shapes(p, NULL) == 0)
        return pb_err_set(err, PB_EINVAL, "shapes",
                          "shapes \"square\" needs a size common to rows and cols");
    return 0;
}

static json_t *tb_schema(const char *task)
{
    if (tb_kind(task) < 0)
        return NULL;
    return json_pack(
        "{s:{s:s, s:[i,i], s:s, s:i, s:i}, s:{s:s, s:[i,i], s:s, s:i, s:i},"
        " s:{s:s, s:s, s:[s,s,s], s:s}, s:{s:s, s:s, s:[s,s,s,s,s,s], s:s},"
        " s:{s:s, s:s, s:[s,s], s:s}}",
        "rows", "type", "range", "default", 4, 32, "description",
        "row counts [lo, hi] (or one of 4, 8, 16, 32, 64); the sweep uses the powers of two "
        "inside",
        "min", TB_MIN, "max", PS_TB_MAX,
        "cols", "type", "range", "default", 4, 32, "description",
        "column counts [lo, hi] (or one of 4, 8, 16, 32, 64); as rows", "min", TB_MIN, "max",
        PS_TB_MAX,
        "cells", "type", "enum", "default", "int", "values", "int", "word", "mixed",
        "description",
        "int: integers in [0, 10000); word: short words (lookups and position_probe only); "
        "mixed: each column one or the other, at least one of each",
        "format", "type", "enum", "default", "markdown", "values", "markdown", "csv", "html",
        "kv_row", "kv_col", "all", "description",
        "table serialisation; kv_row and kv_col are \"<row>, <column>: <value>\" lines, "
        "row-major and column-major; all: item i uses the (i mod 5)-th of the five, so one "
        "run compares them (results broken down by format)",
        "shapes", "type", "enum", "default", "square", "values", "square", "all",
        "description",
        "square: rows = cols; all: every (rows, cols) pair, drawn per item among the pairs "
        "of the bucket's cell count");
}

static int tb_normalize(const char *task, const json_t *params, json_t **out, pb_err_t *err)
{
    tb_params_t p;
    *out = NULL;
    int rc = tb_parse(task, params, &p, err);
    if (rc)
        return rc;
    *out = json_pack("{s:[i,i], s:[i,i], s:s, s:s, s:s}", "rows", p.rlo, p.rhi, "cols", p.clo,
                     p.chi, "cells", tb_cell_names[p.cells], "format",
                     tb_format_names[p.format], "shapes", tb_shape_names[p.shapes]);
    return *out ? 0 : pb_err_set(err, PB_ENOMEM, "", "out of memory");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One bucket per distinct cell count rows * cols, ascending. */
static int tb_buckets(const char *task, const json_t *params, int64_t **out, size_t *n)
{
    tb_params_t p;
    int shapes[PB_ARRAY_LEN(tb_sizes) * PB_ARRAY_LEN(tb_sizes)][2];
    *out = NULL;
    *n = 0;
    int rc = tb_parse(task, params, &p, NULL);
    if (rc)
        return rc;
    size_t ns = tb_shapes(&p, shapes), k = 0;
    int64_t *b = malloc(sizeof *b * ns);
    if (b == NULL)
        return PB_ENOMEM;
    for (size_t i = 0; i < ns; i++)
        b[i] = (int64_t)shapes[i][0] * shapes[i][1];
    qsort(b, ns, sizeof *b, cmp_i64);
    for (size_t i = 0; i < ns; i++)
        if (k == 0 || b[k - 1] != b[i])
            b[k++] = b[i];
    *out = b;
    *n = k;
    return 0;
}

/* tb_parse as ps__prepare_parsed calls it. */
static int tb_parse_state(const char *task, const json_t *params, void *out)
{
    return tb_parse(task, params, out, NULL);
}

static int tb_prepare(ps_run_t *run)
{
    return ps__prepare_parsed(run, sizeof(tb_params_t), tb_parse_state);
}

/* ---- rendering ---- */

static int render_table(const ps_tb_table_t *t, int format, pb_buf_t *b)
{
    int rc = 0, R = t->rows, C = t->cols;
    switch (format) {
    case TB_MARKDOWN:
        rc = pb_buf_puts(b, "| " TB_CORNER " |");
        for (int c = 0; c < C && rc == 0; c++)
            rc = pb_buf_printf(b, " %s |", t->col_names[c]);
        rc = rc ? rc : pb_buf_puts(b, "\n| --- |");
        for (int c = 0; c < C && rc == 0; c++)
            rc = pb_buf_puts(b, " --- |");
        rc = rc ? rc : pb_buf_puts(b, "\n");
        for (int r = 0; r < R && rc == 0; r++) {
            rc = pb_buf_printf(b, "| %s |", t->row_names[r]);
            for (int c = 0; c < C && rc == 0; c++)
                rc = pb_buf_printf(b, " %s |", t->cells[r][c]);
            rc = rc ? rc : pb_buf_puts(b, "\n");
        }
        return rc;
    case TB_CSV:
        rc = pb_buf_puts(b, TB_CORNER);
        for (int c = 0; c < C && rc == 0; c++)
            rc = pb_buf_printf(b, ",%s", t->col_names[c]);
        rc = rc ? rc : pb_buf_puts(b, "\n");
        for (int r = 0; r < R && rc == 0; r++) {
            rc = pb_buf_puts(b, t->row_names[r]);
            for (int c = 0; c < C && rc == 0; c++)
                rc = pb_buf_printf(b, ",%s", t->cells[r][c]);
            rc = rc ? rc : pb_buf_puts(b, "\n");
        }
        return rc;
    case TB_HTML:
        rc = pb_buf_puts(b, "<table>\n<tr><th>" TB_CORNER "</th>");
        for (int c = 0; c < C && rc == 0; c++)
            rc = pb_buf_printf(b, "<th>%s</th>", t->col_names[c]);
        rc = rc ? rc : pb_buf_puts(b, "</tr>\n");
        for (int r = 0; r < R && rc == 0; r++) {
            rc = pb_buf_printf(b, "<tr><th>%s</th>", t->row_names[r]);
            for (int c = 0; c < C && rc == 0; c++)
                rc = pb_buf_printf(b, "<td>%s</td>", t->cells[r][c]);
            rc = rc ? rc : pb_buf_puts(b, "</tr>\n");
        }
        return rc ? rc : pb_buf_puts(b, "</table>\n");
    default: {
        /* kv_row and kv_col differ only in traversal order */
        int outer = format == TB_KV_ROW ? R : C, inner = format == TB_KV_ROW ? C : R;
        for (int i = 0; i < outer && rc == 0; i++)
            for (int j = 0; j < inner && rc == 0; j++) {
                int r = format == TB_KV_ROW ? i : j, c = format == TB_KV_ROW ? j : i;
                rc = pb_buf_printf(b, "%s, %s: %s\n", t->row_names[r], t->col_names[c],
                                   t->cells[r][c]);
            }
        return rc;
    }
    }
}

static int cell_int(const ps_tb_table_t *t, int r, int c) { return atoi(t->cells[r][c]); }

/* Aggregate op over the number cells of column c (row < 0) or row r. */
static long agg(const ps_tb_table_t *t, int r, int c, int op, int threshold)
{
    long acc = op == PS_TB_MINV ? TB_VMAX : op == PS_TB_MAXV ? -1 : 0;
    int n = r < 0 ? t->rows : t->cols;
    for (int i = 0; i < n; i++) {
        int rr = r < 0 ? i : r, cc = r < 0 ? c : i;
        if (t->col_word[cc])
            continue;
        long v = cell_int(t, rr, cc);
        if (op == PS_TB_SUM)
            acc += v;
        else if (op == PS_TB_MAXV)
            acc = v > acc ? v : acc;
        else if (op == PS_TB_MINV)
            acc = v < acc ? v : acc;
        else
            acc += v > threshold;
    }
    return acc;
}

/* Row of the unique largest value of number column c, or -1 on a tie. */
static int argmax_row(const ps_tb_table_t *t, int c)
{
    int best = -1, tie = 0;
    for (int r = 0; r < t->rows; r++) {
        int v = cell_int(t, r, c);
        if (best < 0 || v > cell_int(t, best, c)) {
            best = r;
            tie = 0;
        } else if (v == cell_int(t, best, c)) {
            tie = 1;
        }
    }
    return tie ? -1 : best;
}

static int unique_in_col(const ps_tb_table_t *t, int r, int c)
{
    for (int i = 0; i < t->rows; i++)
        if (i != r && strcmp(t->cells[i][c], t->cells[r][c]) == 0)
            return 0;
    return 1;
}

static int has_number_col(const ps_tb_table_t *t)
{
    for (int c = 0; c < t->cols; c++)
        if (!t->col_word[c])
            return 1;
    return 0;
}

/* Question and reference of one item; PB_EINVAL when the query does not fit. */
static int render_question(const ps_tb_table_t *t, int task, const ps_tb_query_t *q,
                           pb_buf_t *pr, pb_buf_t *ref)
{
    static const char *const col_q[] = {"What is the sum of the %s column?",
                                        "What is the largest value in the %s column?",
                                        "What is the smallest value in the %s column?",
                                        "How many values in the %s column are greater than %d?"};
    static const char *const row_q[] = {
        "What is the sum of the numbers in the %s row?",
        "What is the largest number in the %s row?", "What is the smallest number in the %s row?",
        "How many numbers in the %s row are greater than %d?"};
    int row_used = task != TK_COLAGG && task != TK_TWOHOP;
    int col_used = task != TK_ROWAGG;
    if ((row_used && (q->row < 0 || q->row >= t->rows)) ||
        (col_used && (q->col < 0 || q->col >= t->cols)))
        return PB_EINVAL;
    int rc;
    switch (task) {
    case TK_CELL:
        rc = pb_buf_printf(pr, "What is the %s of %s?", t->col_names[q->col],
                           t->row_names[q->row]);
        return rc ? rc : pb_buf_puts(ref, t->cells[q->row][q->col]);
    case TK_REVERSE:
        if (!unique_in_col(t, q->row, q->col))
            return PB_EINVAL;
        rc = pb_buf_printf(pr, "Which row has %s equal to %s? Answer with the row name.",
                           t->col_names[q->col], t->cells[q->row][q->col]);
        return rc ? rc : pb_buf_puts(ref, t->row_names[q->row]);
    case TK_COLAGG:
    case TK_ROWAGG:
        if (q->op < PS_TB_SUM || q->op > PS_TB_COUNT_GT ||
            (task == TK_COLAGG ? t->col_word[q->col] : !has_number_col(t)))
            return PB_EINVAL;
        /* the format strings take the threshold only for count_gt */
        if (task == TK_COLAGG)
            rc = pb_buf_printf(pr, col_q[q->op], t->col_names[q->col], q->threshold);
        else
            rc = pb_buf_printf(pr, row_q[q->op], t->row_names[q->row], q->threshold);
        return rc ? rc
                  : pb_buf_printf(ref, "%ld",
                                  agg(t, task == TK_COLAGG ? -1 : q->row, q->col, q->op,
                                      q->threshold));
    case TK_POS:
        rc = pb_buf_printf(pr,
                           "Counting data rows and columns from 1 (headers excluded), what is "
                           "in row %d, column %d?",
                           q->row + 1, q->col + 1);
        return rc ? rc : pb_buf_puts(ref, t->cells[q->row][q->col]);
    default: { /* TK_TWOHOP */
        int best;
        if (q->col_b < 0 || q->col_b >= t->cols || q->col_b == q->col || t->col_word[q->col] ||
            (best = argmax_row(t, q->col)) < 0)
            return PB_EINVAL;
        rc = pb_buf_printf(pr, "What is the %s of the row with the largest %s?",
                           t->col_names[q->col_b], t->col_names[q->col]);
        return rc ? rc : pb_buf_puts(ref, t->cells[best][q->col_b]);
    }
    }
}

/* "<table>\n<question>\nAnswer:" and the reference, both NUL-terminated. */
static int tb_render_bufs(const ps_tb_table_t *t, int format, int task, const ps_tb_query_t *q,
                          pb_buf_t *pr, pb_buf_t *ref)
{
    if (t->rows < 1 || t->rows > PS_TB_MAX || t->cols < 1 || t->cols > PS_TB_MAX)
        return PB_EINVAL;
    int rc = render_table(t, format, pr);
    rc = rc ? rc : pb_buf_puts(pr, "\n");
    rc = rc ? rc : render_question(t, task, q, pr, ref);
    rc = rc ? rc : pb_buf_puts(pr, "\nAnswer:");
    rc = rc ? rc : pb_buf_cstr(pr);
    return rc ? rc : pb_buf_cstr(ref);
}

int ps__tb_render(const ps_tb_table_t *t, const char *format, const char *task,
                  const ps_tb_query_t *q, char **prompt, char **reference)
{
    pb_buf_t pb, rb;
    int f = tb_lookup(format, tb_format_names, 5), k = tb_kind(task), rc;
    *prompt = *reference = NULL;
    if (t == NULL || q == NULL || f < 0 || k < 0)
        return PB_EINVAL;
    pb_buf_init(&pb, TB_TEXT_MAX);
    pb_buf_init(&rb, TB_TEXT_MAX);
    rc = tb_render_bufs(t, f, k, q, &pb, &rb);
    if (rc) {
        pb_buf_free(&pb);
        pb_buf_free(&rb);
        return rc;
    }
    *prompt = pb.data;
    *reference = rb.data;
    return 0;
}

/* ---- generation ---- */

/* k distinct indices of [0, n) into out, by a partial Fisher-Yates shuffle. */
static void draw_distinct(pb_rng_t *rng, int n, int k, int *out)
{
    int pool[PB_ARRAY_LEN(tb_adjs) * PB_ARRAY_LEN(tb_nouns)];
    for (int i = 0; i < n; i++)
        pool[i] = i;
    for (int i = 0; i < k; i++) {
        int j = i + (int)pb_rng_below(rng, (uint64_t)(n - i));
        int tmp = pool[i];
        pool[i] = pool[j];
        pool[j] = tmp;
        out[i] = pool[i];
    }
}

static void draw_cell(pb_rng_t *rng, int word, char out[PS_TB_CELL])
{
    if (word)
        snprintf(out, PS_TB_CELL, "%s", tb_words[pb_rng_below(rng, PB_ARRAY_LEN(tb_words))]);
    else
        snprintf(out, PS_TB_CELL, "%d", (int)pb_rng_below(rng, TB_VMAX));
}

/* A random column of the wanted kind (word or number), other than skip. */
static int pick_col(pb_rng_t *rng, const ps_tb_table_t *t, int word, int skip)
{
    int cand[PS_TB_MAX], n = 0;
    for (int c = 0; c < t->cols; c++)
        if ((word < 0 || t->col_word[c] == word) && c != skip)
            cand[n++] = c;
    return cand[pb_rng_below(rng, (uint64_t)n)];
}

static void draw_table(pb_rng_t *rng, const tb_params_t *p, int R, int C, ps_tb_table_t *t)
{
    int idx[PB_ARRAY_LEN(tb_adjs) * PB_ARRAY_LEN(tb_nouns)];
    const int na = (int)PB_ARRAY_LEN(tb_nouns);
    t->rows = R;
    t->cols = C;
    draw_distinct(rng, (int)(PB_ARRAY_LEN(tb_adjs) * PB_ARRAY_LEN(tb_nouns)), R, idx);
    for (int r = 0; r < R; r++)
        snprintf(t->row_names[r], PS_TB_NAME, "%s %s", tb_adjs[idx[r] / na],
                 tb_nouns[idx[r] % na]);
    draw_distinct(rng, (int)PB_ARRAY_LEN(tb_attrs), C, idx);
    for (int c = 0; c < C; c++)
        snprintf(t->col_names[c], PS_TB_NAME, "%s", tb_attrs[idx[c]]);
    int words = 0;
    for (int c = 0; c < C; c++) {
        t->col_word[c] = p->cells == TB_WORD ? 1
                         : p->cells == TB_INT ? 0
                                              : (unsigned char)pb_rng_below(rng, 2);
        words += t->col_word[c];
    }
    /* mixed: at least one column of each kind */
    if (p->cells == TB_MIXED && (words == 0 || words == C))
        t->col_word[pb_rng_below(rng, (uint64_t)C)] = words == 0;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            draw_cell(rng, t->col_word[c], t->cells[r][c]);
}

/* Pick what the item asks, adjusting the table where the question needs a
 * unique answer. */
static void draw_query(pb_rng_t *rng, int task, ps_tb_table_t *t, ps_tb_query_t *q)
{
    memset(q, 0, sizeof *q);
    q->row = (int)pb_rng_below(rng, (uint64_t)t->rows);
    q->col = (int)pb_rng_below(rng, (uint64_t)t->cols);
    switch (task) {
    case TK_REVERSE:
        /* the value asked about must name one row */
        for (int r = 0; r < t->rows; r++)
            while (r != q->row && strcmp(t->cells[r][q->col], t->cells[q->row][q->col]) == 0)
                draw_cell(rng, t->col_word[q->col], t->cells[r][q->col]);
        break;
    case TK_COLAGG:
    case TK_ROWAGG:
        q->col = pick_col(rng, t, 0, -1);
        q->op = (int)pb_rng_below(rng, 4);
        q->threshold = (int)pb_rng_below(rng, TB_VMAX);
        break;
    case TK_TWOHOP: {
        q->col = pick_col(rng, t, 0, -1);
        q->col_b = pick_col(rng, t, -1, q->col);
        /* a tied maximum: keep the first, lower the others (the first row
         * holding it is uniform over rows, so the target stays unbiased) */
        int best = 0;
        for (int r = 1; r < t->rows; r++)
            if (cell_int(t, r, q->col) > cell_int(t, best, q->col))
                best = r;
        int m = cell_int(t, best, q->col);
        if (m == 0)
            snprintf(t->cells[best][q->col], PS_TB_CELL, "1");
        for (int r = best + 1; r < t->rows && m > 0; r++)
            if (cell_int(t, r, q->col) == m)
                snprintf(t->cells[r][q->col], PS_TB_CELL, "%u", (unsigned)(m - 1) % TB_VMAX);
        q->row = best;
        break;
    }
    default:
        break;
    }
}

static int tb_generate(const ps_run_t *run, uint64_t idx, ps_item_t *out)
{
    const tb_params_t *p = run->state;
    int shapes[PB_ARRAY_LEN(tb_sizes) * PB_ARRAY_LEN(tb_sizes)][2], match[PB_ARRAY_LEN(shapes)];
    ps_tb_table_t *t = NULL;
    ps_tb_query_t q;
    pb_buf_t prompt, ref;
    pb_rng_t rng;
    size_t nm = 0;
    int rc = 0;

    memset(out, 0, sizeof *out);
    pb_buf_init(&prompt, TB_TEXT_MAX);
    pb_buf_init(&ref, TB_TEXT_MAX);
    if (p == NULL)
        return PB_EINVAL;
    size_t ns = tb_shapes(p, shapes);
    for (size_t i = 0; i < ns; i++)
        if ((int64_t)shapes[i][0] * shapes[i][1] == run->bucket)
            match[nm++] = (int)i;
    if (nm == 0)
        return PB_EINVAL;
    if ((t = calloc(1, sizeof *t)) == NULL)
        return PB_ENOMEM;
    pb_rng_seed(&rng, run->key, idx);
    const int *shape = shapes[match[pb_rng_below(&rng, nm)]];
    draw_table(&rng, p, shape[0], shape[1], t);
    draw_query(&rng, p->task, t, &q);
    int format = p->format == TB_ALL_FORMATS ? (int)(idx % TB_ALL_FORMATS) : p->format;
    if ((rc = tb_render_bufs(t, format, p->task, &q, &prompt, &ref)))
        goto out;
    /* row and col: where the answer is (1-based); an aggregate has one axis */
    out->meta = json_pack("{s:i, s:i, s:s}", "rows", t->rows, "cols", t->cols, "format",
                          tb_format_names[format]);
    if (out->meta == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    int bad = 0;
    if (p->task != TK_COLAGG)
        bad |= json_object_set_new(out->meta, "row", json_integer(q.row + 1));
    if (p->task != TK_ROWAGG)
        bad |= json_object_set_new(out->meta, "col",
                                   json_integer((p->task == TK_TWOHOP ? q.col_b : q.col) + 1));
    if (p->task == TK_TWOHOP)
        bad |= json_object_set_new(out->meta, "hop_col", json_integer(q.col + 1));
    if (p->task == TK_COLAGG || p->task == TK_ROWAGG)
        bad |= json_object_set_new(out->meta, "op", json_string(tb_op_names[q.op]));
    if (bad) {
        rc = PB_ENOMEM;
        goto out;
    }
    ps__item_finish(out, run, idx, -1, &prompt, &ref); /* the bucket counts cells */
out:
    free(t);
    pb_buf_free(&prompt);
    pb_buf_free(&ref);
    if (rc)
        ps_item_clear(out);
    return rc;
}

static int tb_score(const ps_run_t *run, const ps_item_t *item, const char *prediction,
                    double *score, double *metrics)
{
    (void)metrics; /* no per-item metrics */
    *score = ps_exact_match(prediction, item->reference);
    return 0;
}

static json_t *tb_aggregate(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                            size_t n)
{
    double sum = 0, cnt = 0;
    for (size_t i = 0; i < n; i++) {
        sum += stats[i].score_sum;
        cnt += stats[i].n;
    }
    return ps__accuracy_json(sum, cnt);
}

/* Accuracy by the target's row, its column and the table's shape. */
static const char *const tb_breakdown[] = {"row", "col", "rows,cols", "format", NULL};

const ps_suite_t ps__suite_table = {
    .name = "table",
    .description = "Generated tables (4 to 64 rows and columns) in markdown, CSV, HTML and "
                   "row-/column-major key: value lines: lookups, aggregates, positional "
                   "probes and two-hop questions, by table size in cells and broken down by "
                   "the target's row and column",
    .version = 1,
    .bucket_unit = "cells",
    .tasks = tb_tasks,
    .n_tasks = PB_ARRAY_LEN(tb_tasks),
    .breakdown = tb_breakdown,
    .schema = tb_schema,
    .normalize = tb_normalize,
    .buckets = tb_buckets,
    .prepare = tb_prepare,
    .release = ps__release_state,
    .generate = tb_generate,
    .score = tb_score,
    .aggregate = tb_aggregate,
};
