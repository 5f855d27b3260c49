/* Scoring of the hallucination suite (halluc.c): the strict yes/no parser,
 * the caption-triplet scorer (ELV-Halluc eval.py's InAcc and OutAcc per
 * triplet, reference/suites.md 4.1) and the aggregate with the SAH ratio. */
#include "suites/suite.h"
#include "suites/suite_int.h"

#include <ctype.h>
#include <string.h>

#include "common/json.h"

/* Characters that may wrap the answer word: the prompt quotes 'Yes' and
 * 'No', and markdown-minded models bold them. */
static int is_wrap(int c) { return c == '\'' || c == '"' || c == '`' || c == '*'; }

/* A word goes on through letters, digits and hyphens ("no-one", "yes2"). */
static int is_word(int c) { return isalnum(c) || c == '-'; }

/* Whether the whole word w (lowercase) occurs in s, ASCII-case-insensitive. */
static int has_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = s; *p; p++) {
        if (p > s && is_word((unsigned char)p[-1]))
            continue;
        size_t i = 0;
        while (i < n && tolower((unsigned char)p[i]) == w[i])
            i++;
        if (i == n && !is_word((unsigned char)p[n]))
            return 1;
    }
    return 0;
}

/* Accepted: after leading whitespace and any of ' " ` *, the first word is
 * "yes" or "no" in any case, ending the reply or followed by a character
 * that is not a letter, digit or hyphen (punctuation, a quote, a space and
 * an explanation), and the other answer word does not occur anywhere in the
 * reply as a whole word. So "Yes", " no.", "'No'", "**Yes**", "YES!",
 * "No, it is from segment 2." are answers; "", "know", "nope?", "Noo",
 * "no-one", "Answer: Yes", "yes and no", "No... well, yes" are not. ELV-Halluc
 * takes any "yes" substring (so "know" is a no): this parser is deliberately
 * stricter, and an unparseable reply counts as wrong. */
int ps__hl_parse_answer(const char *reply)
{
    if (reply == NULL)
        return PS_HL_UNPARSEABLE;
    const char *p = reply;
    while (isspace((unsigned char)*p) || is_wrap((unsigned char)*p))
        p++;
    static const char *const words[2] = {"no", "yes"}; /* index = PS_HL_NO, PS_HL_YES */
    for (int v = 0; v < 2; v++) {
        size_t n = strlen(words[v]), i = 0;
        while (i < n && tolower((unsigned char)p[i]) == words[v][i])
            i++;
        if (i == n && !is_word((unsigned char)p[n]))
            return has_word(p + n, words[1 - v]) ? PS_HL_UNPARSEABLE : v;
    }
    return PS_HL_UNPARSEABLE;
}

int ps__hl_score(const ps_run_t *run, const ps_item_t *item, const char *prediction,
                 double *score, double *metrics)
{
    (void)run;
    int ok[3] = {0, 0, 0};
    *score = 0;
    if (item->n_parts != 3 || item->part_refs == NULL)
        return PB_EINVAL;
    /* A reply that is not an array of three strings gets every part wrong. */
    json_t *arr = json_loads(prediction ? prediction : "", 0, NULL);
    const char *got[3] = {NULL, NULL, NULL};
    for (size_t k = 0; k < 3 && json_array_size(arr) == 3; k++)
        got[k] = json_string_value(json_array_get(arr, k));
    for (size_t k = 0; k < 3 && got[0] && got[1] && got[2]; k++) {
        int want = ps__hl_parse_answer(item->part_refs[k]);
        ok[k] = want != PS_HL_UNPARSEABLE && ps__hl_parse_answer(got[k]) == want;
    }
    json_decref(arr);
    /* eval.py: a pair counts only when the true caption is judged right too */
    double in_acc = ok[0] && ok[1], out_acc = ok[0] && ok[2];
    *score = (in_acc + out_acc) / 2;
    if (metrics) {
        metrics[0] = in_acc;
        metrics[1] = out_acc;
    }
    return 0;
}

/* {"pair_accuracy", "in_acc", "out_acc", "sah_ratio", "n"} over n items
 * with score sum s and metric sums m (NULL: unknown, so null). SAH ratio =
 * (OutAcc - InAcc) / (1 - InAcc) x 100, null when InAcc is 1 or nothing
 * was scored. NULL when out of memory. */
static json_t *hl_means(double n, double s, const double *m)
{
    json_t *in = json_null(), *out = json_null(), *sah = json_null();
    if (n > 0 && m) {
        double ia = m[0] / n, oa = m[1] / n;
        in = json_real(ia);
        out = json_real(oa);
        if (ia < 1.0)
            sah = json_real((oa - ia) / (1.0 - ia) * 100.0);
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:I}", "pair_accuracy",
                     n > 0 ? json_real(s / n) : json_null(), "in_acc", in, "out_acc", out,
                     "sah_ratio", sah, "n", (json_int_t)n);
}

json_t *ps__hl_aggregate(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                         size_t n)
{
    (void)task;
    (void)params;
    double tn = 0, ts = 0, tm[2] = {0, 0};
    int have_m = 1;
    json_t *agg, *buckets = json_array();
    for (size_t i = 0; buckets && i < n; i++) {
        const double *m = stats[i].metric_sum;
        tn += stats[i].n;
        ts += stats[i].score_sum;
        if (m) {
            tm[0] += m[0];
            tm[1] += m[1];
        } else if (stats[i].n > 0) {
            have_m = 0; /* a bucket without its sums makes the totals unknown */
        }
        json_t *b = hl_means(stats[i].n, stats[i].score_sum, m);
        if (b && json_object_set_new(b, "bucket", json_integer(stats[i].bucket))) {
            json_decref(b);
            b = NULL;
        }
        /* the _new calls take the reference even when they fail */
        if (b == NULL || json_array_append_new(buckets, b))
            goto fail;
    }
    if (buckets == NULL || (agg = hl_means(tn, ts, have_m ? tm : NULL)) == NULL)
        goto fail;
    if (json_object_set_new(agg, "buckets", buckets)) {
        json_decref(agg);
        return NULL;
    }
    return agg;
fail:
    json_decref(buckets);
    return NULL;
}
