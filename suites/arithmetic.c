/* The arithmetic suite (reference/suites.md part 1): a+b and a*b on operands
 * of up to 100 digits, in plain, reversed (LSD first), zero-padded and
 * spaced formats, with operand lengths balanced inside each digit bucket.
 * Numbers are decimal digit strings throughout, and generation uses integers
 * only, so an item is byte-identical on every machine. The length-
 * generalisation tasks live in lengthgen.c; the callbacks below hand them on. */
#include "suites/suite.h"
#include "suites/suite_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

#define AR_MAX_DIGITS 100
#define AR_MAX_WIDTH 200
#define AR_MAX_EXTRA 8
#define AR_TEXT_MAX 8192 /* far above the worst case (spaced, 100 digits, 8 extra) */

enum { AR_PLAIN, AR_REVERSED, AR_PADDED, AR_SPACED };
static const char *const ar_format_names[] = {"plain", "reversed", "padded", "spaced"};

/* Parsed, validated params; also the run state. */
typedef struct ar_params {
    int lo, hi;       /* digit buckets lo..hi */
    int format;       /* AR_* */
    int width;        /* operand width when padded (>= hi) */
    int extra_spaces; /* spaced: up to this many extra spaces after a digit */
    double threshold; /* effective-length threshold, (0, 1] */
    int train_digits; /* > 0: report in- and out-of-distribution accuracy */
    char op;          /* '+' or '*', from the task */
} ar_params_t;

static const ps_task_def_t ar_tasks[] = {
    {"add", "a + b: exact match of the sum, bucketed by the longer operand's digit count", NULL},
    {"mul", "a * b: exact match of the product, bucketed by the longer operand's digit count",
     NULL},
    /* Length generalisation (lengthgen.c); the bucket is the input's length.
     * Every prompt is "<lead><input>\nAnswer:". */
    {"poly", "polynomial evaluation, bucket = number of terms; prompt \"Evaluate at x=-2: "
             "3*x^2-1*x^0+2*x^3\\nAnswer:\" (x in [-2, 2], coefficients in [-3, 3], degrees "
             "in [0, 3]), reference the exact integer value (\"-5\")", "terms"},
    {"sort_single", "single-digit sorting, bucket = list length; prompt \"Sort ascending: "
                    "3 1 4 1\\nAnswer:\" (digits 0-9), reference \"1 1 3 4\"", "elements"},
    {"sort_multi", "multi-digit sorting, bucket = list length; prompt \"Sort ascending: "
                   "314, 15, 9265\\nAnswer:\" (integers 10-9999), reference \"15, 314, 9265\"",
     "elements"},
    {"sum", "summation, bucket = list length; prompt \"Sum: 3 1 4\\nAnswer:\" (digits 1-9), "
            "reference the full sum, not mod 10 (\"8\")", "elements"},
    {"parity", "parity of a bit string, bucket = number of bits; prompt \"Parity (number of 1s "
               "mod 2): 1 0 1 1\\nAnswer:\", reference \"1\" (odd number of 1s) or \"0\"", "bits"},
    {"copy", "copy a sequence, bucket = length; prompt \"Copy: c a b\\nAnswer:\" (letters "
             "a-z), reference \"c a b\"", "elements"},
    {"reverse", "reverse a sequence, bucket = length; prompt \"Reverse: c a b\\nAnswer:\" "
                "(letters a-z), reference \"b a c\"", "elements"},
};

/* digits: [lo, hi] or one integer d meaning [d, d]. */
static int parse_digits(const json_t *v, int *lo, int *hi, pb_err_t *err)
{
    return ps__parse_range(v, "digits", 1, 8, 1, AR_MAX_DIGITS, lo, hi, err);
}

/* Validate params (NULL = all defaults) into p. err->field is the param name. */
static int ar_parse(const char *task, const json_t *params, ar_params_t *p, pb_err_t *err)
{
    static const char *const keys[] = {"digits",    "format",       "width", "extra_spaces",
                                       "threshold", "train_digits", NULL};
    int64_t v;
    const char *fmt;
    int rc;

    memset(p, 0, sizeof *p);
    if (task && strcmp(task, "add") == 0)
        p->op = '+';
    else if (task && strcmp(task, "mul") == 0)
        p->op = '*';
    else
        return pb_err_set(err, PB_EINVAL, "", "unknown arithmetic task \"%s\"",
                          task ? task : "");
    if (params != NULL && !json_is_object(params))
        return pb_err_set(err, PB_EINVAL, "", "params must be an object");
    if ((rc = pb_json_only_keys(params, keys, "", err)))
        return rc;
    if ((rc = parse_digits(params ? json_object_get(params, "digits") : NULL, &p->lo, &p->hi,
                           err)))
        return rc;

    if ((rc = pb_json_str(params, "format", "plain", 0, &fmt, "", err)))
        return rc;
    p->format = -1;
    for (int i = 0; i < (int)PB_ARRAY_LEN(ar_format_names); i++)
        if (strcmp(fmt, ar_format_names[i]) == 0)
            p->format = i;
    if (p->format < 0)
        return pb_err_set(err, PB_EINVAL, "format",
                          "format must be \"plain\", \"reversed\", \"padded\" or \"spaced\" "
                          "(got \"%s\")",
                          fmt);

    /* width and extra_spaces only mean something for one format; naming them
     * with another is a mistake worth reporting rather than ignoring. */
    const json_t *w = params ? json_object_get(params, "width") : NULL;
    if (w && !json_is_null(w) && p->format != AR_PADDED)
        return pb_err_set(err, PB_EINVAL, "width", "width applies only to format \"padded\"");
    if ((rc = pb_json_int(params, "width", p->hi, p->hi, AR_MAX_WIDTH, &v, "", err)))
        return rc;
    p->width = (int)v;
    if ((rc = pb_json_int(params, "extra_spaces", 0, 0, AR_MAX_EXTRA, &v, "", err)))
        return rc;
    p->extra_spaces = (int)v;
    if (p->extra_spaces > 0 && p->format != AR_SPACED)
        return pb_err_set(err, PB_EINVAL, "extra_spaces",
                          "extra_spaces applies only to format \"spaced\"");

    if ((rc = pb_json_num(params, "threshold", 0.9, 0.0, 1.0, &p->threshold, "", err)))
        return rc;
    if (!(p->threshold > 0.0))
        return pb_err_set(err, PB_EINVAL, "threshold", "threshold must be in (0, 1]");
    if ((rc = pb_json_int(params, "train_digits", 0, 0, AR_MAX_DIGITS, &v, "", err)))
        return rc;
    p->train_digits = (int)v;
    return 0;
}

static json_t *ar_schema(const char *task)
{
    if (ps_suite_task(&ps__suite_arithmetic, task) == NULL)
        return NULL;
    if (ps__lg_is_task(task))
        return ps__lg_schema(task);
    return json_pack(
        "{s:{s:s, s:[i,i], s:s, s:i, s:i},"
        " s:{s:s, s:s, s:[s,s,s,s], s:s},"
        " s:{s:s, s:n, s:s, s:i, s:i},"
        " s:{s:s, s:i, s:s, s:i, s:i},"
        " s:{s:s, s:f, s:s, s:f, s:f},"
        " s:{s:s, s:i, s:s, s:i, s:i}}",
        "digits", "type", "range", "default", 1, 8, "description",
        "operand digit counts [lo, hi] (or one integer); one bucket per digit count, "
        "the longer operand's",
        "min", 1, "max", AR_MAX_DIGITS,
        "format", "type", "enum", "default", "plain", "values", "plain", "reversed", "padded",
        "spaced", "description",
        "plain 12+34=; reversed: every number least-significant digit first; padded: "
        "zero-padded to width; spaced: digits separated by spaces",
        "width", "type", "integer", "default", "description",
        "padded only: operand width (default: the upper digit bound); the answer is padded "
        "to width+1 (add) or 2*width (mul)",
        "min", 1, "max", AR_MAX_WIDTH,
        "extra_spaces", "type", "integer", "default", 0, "description",
        "spaced only: after each operand digit insert 0..extra_spaces further spaces, "
        "uniformly at random",
        "min", 0, "max", AR_MAX_EXTRA,
        "threshold", "type", "number", "default", 0.9, "description",
        "accuracy a bucket needs to count towards the effective length (exclusive minimum 0)",
        "min", 0.0, "max", 1.0,
        "train_digits", "type", "integer", "default", 0, "description",
        "when > 0, also report accuracy for buckets <= train_digits (in distribution) and "
        "above (out of distribution)",
        "min", 0, "max", AR_MAX_DIGITS);
}

static int ar_normalize(const char *task, const json_t *params, json_t **out, pb_err_t *err)
{
    ar_params_t p;
    if (ps__lg_is_task(task))
        return ps__lg_normalize(task, params, out, err);
    *out = NULL;
    int rc = ar_parse(task, params, &p, err);
    if (rc)
        return rc;
    json_t *o = json_pack("{s:[i,i], s:s, s:i, s:f, s:i}", "digits", p.lo, p.hi, "format",
                          ar_format_names[p.format], "extra_spaces", p.extra_spaces,
                          "threshold", p.threshold, "train_digits", p.train_digits);
    if (o == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    /* width only for padded, so normalising twice gives the same object */
    if (p.format == AR_PADDED && json_object_set_new(o, "width", json_integer(p.width))) {
        json_decref(o);
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    }
    *out = o;
    return 0;
}

static int ar_buckets(const char *task, const json_t *params, int64_t **out, size_t *n)
{
    ar_params_t p;
    if (ps__lg_is_task(task))
        return ps__lg_buckets(task, params, out, n);
    *out = NULL;
    *n = 0;
    int rc = ar_parse(task, params, &p, NULL);
    if (rc)
        return rc;
    return ps__range_buckets(p.lo, p.hi, out, n);
}

/* ar_parse as ps__prepare_parsed calls it. */
static int ar_parse_state(const char *task, const json_t *params, void *out)
{
    return ar_parse(task, params, out, NULL);
}

static int ar_prepare(ps_run_t *run)
{
    if (ps__lg_is_task(run->task))
        return ps__lg_prepare(run);
    return ps__prepare_parsed(run, sizeof(ar_params_t), ar_parse_state);
}

/* Operand lengths for item idx of bucket d: idx cycles over the 2(d-lo)+1
 * bins (d,d), (d,lo), (lo,d), (d,lo+1), (lo+1,d), ..., (d,d-1), (d-1,d), so
 * every bin gets the same share and the longer operand always has d digits. */
static void ar_bin(int lo, int d, uint64_t idx, int *da, int *db)
{
    uint64_t nbins = 2 * (uint64_t)(d - lo) + 1;
    uint64_t j = idx % nbins;
    if (j == 0) {
        *da = *db = d;
        return;
    }
    int k = lo + (int)((j - 1) / 2);
    if (j % 2 == 1) {
        *da = d;
        *db = k;
    } else {
        *da = k;
        *db = d;
    }
}

/* Uniform k-digit number into out (k+1 bytes): [10^(k-1), 10^k), or [0, 10)
 * when k is 1. */
static void ar_operand(pb_rng_t *r, int k, char *out)
{
    for (int i = 0; i < k; i++)
        out[i] = (char)('0' + (i == 0 && k > 1 ? 1 + pb_rng_below(r, 9) : pb_rng_below(r, 10)));
    out[k] = '\0';
}

static void reverse(char *s, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        char t = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = t;
    }
}

/* Schoolbook sum of two canonical decimal strings; out holds
 * max(len)+2 bytes. */
static void dec_add(const char *a, const char *b, char *out)
{
    size_t la = strlen(a), lb = strlen(b), n = 0;
    int carry = 0;
    while (la > 0 || lb > 0 || carry) {
        int s = carry;
        if (la > 0)
            s += a[--la] - '0';
        if (lb > 0)
            s += b[--lb] - '0';
        out[n++] = (char)('0' + s % 10);
        carry = s / 10;
    }
    out[n] = '\0';
    reverse(out, n);
}

/* Schoolbook product of two canonical decimal strings of at most
 * AR_MAX_DIGITS digits; out holds len(a)+len(b)+1 bytes. */
static void dec_mul(const char *a, const char *b, char *out)
{
    int acc[2 * AR_MAX_DIGITS] = {0}; /* LSD first; at most 100*81 + carries */
    size_t la = strlen(a), lb = strlen(b);
    for (size_t i = 0; i < la; i++)
        for (size_t j = 0; j < lb; j++)
            acc[i + j] += (a[la - 1 - i] - '0') * (b[lb - 1 - j] - '0');
    size_t n = la + lb;
    for (size_t i = 0; i + 1 < n; i++) {
        acc[i + 1] += acc[i] / 10;
        acc[i] %= 10;
    }
    while (n > 1 && acc[n - 1] == 0)
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('0' + acc[n - 1 - i]);
    out[n] = '\0';
}

/* Append num rendered in format p->format. pad: zero-pad to this width
 * (padded format). For prompt operands in spaced format, rng draws the extra
 * spaces and every digit is followed by its spaces; without rng the digits
 * are joined by single spaces (the reference). */
static int put_number(pb_buf_t *b, const char *num, const ar_params_t *p, int pad, pb_rng_t *rng)
{
    char tmp[2 * AR_MAX_WIDTH + 2];
    size_t n = strlen(num);
    int rc = 0;
    switch (p->format) {
    case AR_REVERSED:
        memcpy(tmp, num, n + 1);
        reverse(tmp, n);
        return pb_buf_append(b, tmp, n);
    case AR_PADDED:
        for (size_t i = n; i < (size_t)pad && rc == 0; i++)
            rc = pb_buf_append(b, "0", 1);
        return rc ? rc : pb_buf_append(b, num, n);
    case AR_SPACED:
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = pb_buf_append(b, num + i, 1);
            if (rc == 0 && rng) {
                int k = 1 + (p->extra_spaces ? (int)pb_rng_below(rng, p->extra_spaces + 1) : 0);
                rc = pb_buf_append(b, "         ", (size_t)k);
            } else if (rc == 0 && i + 1 < n) {
                rc = pb_buf_append(b, " ", 1);
            }
        }
        return rc;
    default:
        return pb_buf_append(b, num, n);
    }
}

/* "A+B=" in the run's format. */
static int put_prompt(pb_buf_t *b, const char *a, const char *bb, const ar_params_t *p,
                      pb_rng_t *rng)
{
    char op[3] = {p->op, ' ', '\0'};
    int spaced = p->format == AR_SPACED;
    int rc = put_number(b, a, p, p->width, rng);
    if (rc == 0)
        rc = pb_buf_append(b, op, spaced ? 2 : 1);
    if (rc == 0)
        rc = put_number(b, bb, p, p->width, rng);
    if (rc == 0)
        rc = pb_buf_append(b, "=", 1);
    return rc;
}

/* The answer to a op b, and the prompt and reference in p's format, into
 * prompt and ref (both NUL-terminated on success). */
static int ar_render(const ar_params_t *p, const char *a, const char *b, pb_rng_t *rng,
                     pb_buf_t *prompt, pb_buf_t *ref)
{
    char c[2 * AR_MAX_DIGITS + 2];
    if (p->op == '+')
        dec_add(a, b, c);
    else
        dec_mul(a, b, c);
    int rc = put_prompt(prompt, a, b, p, rng);
    if (rc == 0)
        rc = put_number(ref, c, p, p->op == '+' ? p->width + 1 : 2 * p->width, NULL);
    if (rc == 0)
        rc = pb_buf_cstr(prompt);
    if (rc == 0)
        rc = pb_buf_cstr(ref);
    return rc;
}

static int ar_generate(const ps_run_t *run, uint64_t idx, ps_item_t *out)
{
    const ar_params_t *p = run->state;
    char a[AR_MAX_DIGITS + 1], b[AR_MAX_DIGITS + 1];
    pb_buf_t prompt, ref;
    pb_rng_t rng;
    int da, db, rc;

    if (ps__lg_is_task(run->task))
        return ps__lg_generate(run, idx, out);
    memset(out, 0, sizeof *out);
    if (p == NULL || run->bucket < p->lo || run->bucket > p->hi)
        return PB_EINVAL;
    pb_buf_init(&prompt, AR_TEXT_MAX);
    pb_buf_init(&ref, AR_TEXT_MAX);
    ar_bin(p->lo, (int)run->bucket, idx, &da, &db);
    pb_rng_seed(&rng, run->key, idx);
    ar_operand(&rng, da, a);
    ar_operand(&rng, db, b);
    if ((rc = ar_render(p, a, b, &rng, &prompt, &ref)))
        goto out;
    out->meta = json_pack("{s:i, s:i, s:s, s:s}", "da", da, "db", db, "a", a, "b", b);
    if (out->meta == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    ps__item_finish(out, run, idx, -1, &prompt, &ref);
out:
    pb_buf_free(&prompt);
    pb_buf_free(&ref);
    if (rc)
        ps_item_clear(out);
    return rc;
}

/* A canonical decimal string (no leading zeros) of 1..max digits? */
static int is_canonical(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || (n > 1 && s[0] == '0'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int ps__arith_render(const char *task, const json_t *params, const char *a, const char *b,
                     pb_rng_t *rng, char **prompt, char **reference)
{
    ar_params_t p;
    pb_buf_t pb, rb;
    *prompt = *reference = NULL;
    int rc = ar_parse(task, params, &p, NULL);
    if (rc)
        return rc;
    size_t max = (size_t)(p.format == AR_PADDED ? p.width : AR_MAX_DIGITS);
    if (max > AR_MAX_DIGITS)
        max = AR_MAX_DIGITS;
    if (!is_canonical(a, max) || !is_canonical(b, max))
        return PB_EINVAL;
    pb_buf_init(&pb, AR_TEXT_MAX);
    pb_buf_init(&rb, AR_TEXT_MAX);
    rc = ar_render(&p, a, b, rng, &pb, &rb);
    if (rc) {
        pb_buf_free(&pb);
        pb_buf_free(&rb);
        return rc;
    }
    *prompt = pb.data;
    *reference = rb.data;
    return 0;
}

static int ar_score(const ps_run_t *run, const ps_item_t *item, const char *prediction,
                    double *score, double *metrics)
{
    (void)metrics; /* no per-item metrics */
    *score = ps_exact_match(prediction, item->reference);
    return 0;
}

static json_t *ar_aggregate(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                            size_t n)
{
    ar_params_t p;
    if (ps__lg_is_task(task))
        return ps__lg_aggregate(task, params, stats, n);
    if (ar_parse(task, params, &p, NULL))
        return NULL;
    return ps__length_aggregate(stats, n, p.threshold, "train_digits", p.train_digits);
}

/* add and mul: accuracy by operand-length pair (the da x db heatmap). */
static const char *const ar_breakdown[] = {"da,db", NULL};

const ps_suite_t ps__suite_arithmetic = {
    .name = "arithmetic",
    .description = "Multi-digit addition and multiplication (up to 100 digits) in plain, "
                   "reversed, zero-padded and spaced formats, exact match by digit count; and "
                   "the length-generalisation tasks of Kazemnejad et al. 2023 (poly, sort, "
                   "sum, parity, copy, reverse), by input length",
    .version = 1,
    .bucket_unit = "digits",
    .tasks = ar_tasks,
    .breakdown = ar_breakdown,
    .n_tasks = PB_ARRAY_LEN(ar_tasks),
    .schema = ar_schema,
    .normalize = ar_normalize,
    .buckets = ar_buckets,
    .prepare = ar_prepare,
    .release = ps__release_state,
    .generate = ar_generate,
    .score = ar_score,
    .aggregate = ar_aggregate,
};
