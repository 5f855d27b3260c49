/* The long-context retrieval suite (reference/suites.md 2.1-2.5): the
 * passkey test of Mohtashami & Jaggi, RULER's single-needle NIAH tasks (the
 * multi-needle ones and variable tracking are in longctx_niah.c, cwe and
 * fwe in longctx_words.c), AltQA on generated documents (longctx_altqa.c)
 * and the lost-in-the-middle JSON key-value retrieval. A bucket counts
 * tokens under the model's tokenizer, else characters; results break down
 * by needle depth into the length x depth grid. No copyrighted text. */
#include "suites/suite.h"
#include "suites/suite_int.h"
#include "suites/longctx_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"


static const ps_task_def_t lc_tasks[] = {
    {"passkey", "Mohtashami & Jaggi passkey: repeated filler, \"The pass key is K.\" at the "
                "needle depth; scored by the first integer of the answer", NULL},
    {"niah_single_1", "RULER niah_single_1: repeated-filler haystack, one 7-digit magic "
                      "number; scored by string_match_all", NULL},
    {"niah_single_2", "RULER niah_single_2: generated prose haystack, one 7-digit magic "
                      "number; scored by string_match_all", NULL},
    {"niah_single_3", "RULER niah_single_3: generated prose haystack, one magic UUID; scored "
                      "by string_match_all", NULL},
    {"kv_retrieval", "Lost in the Middle: a JSON object of UUID pairs, the gold pair at the "
                     "needle depth; scored by string_match_all", NULL},
    {"niah_multikey_1", "RULER niah_multikey_1: prose haystack, four needles with distinct "
                        "word keys and 7-digit numbers, one asked (at the needle depth)", NULL},
    {"niah_multikey_2", "RULER niah_multikey_2: a haystack of needle lines (word keys, "
                        "7-digit numbers), one asked (at the needle depth)", NULL},
    {"niah_multikey_3", "RULER niah_multikey_3: a haystack of needle lines with UUID keys "
                        "and UUID values, one asked (at the needle depth)", NULL},
    {"niah_multivalue", "RULER niah_multivalue: prose haystack, one key with four 7-digit "
                        "numbers, all asked; string_match_all", NULL},
    {"niah_multiquery", "RULER niah_multiquery: prose haystack, four keys with one 7-digit "
                        "number each, all asked; string_match_all", NULL},
    {"variable_tracking", "RULER vt: a chain VAR A = 12345, VAR B = VAR A, ... (five "
                          "variables) among filler lines, the first at the needle depth; "
                          "string_match_all over the names", NULL},
    {"common_words", "RULER cwe: a numbered word list in which ten words repeat 30 times "
                     "(6 below 4096 units) and the others 3 times (1); the ten asked, "
                     "string_match_all; no needle depth", NULL},
    {"frequent_words", "RULER fwe: coded 6-letter words with Zipf (alpha 2) counts, the most "
                       "frequent replaced by dots; ranks 2-4 asked, string_match_all; no "
                       "needle depth", NULL},
    {"altered_numeric_qa", "AltQA on generated documents: numeric facts about made-up "
                           "places, the asked number altered (years by 1..10, others to "
                           "another of the same digit count) and stated at the needle depth; "
                           "RULER's QA template, string_match_part", NULL},
};

/* The RULER / Landmark filler; passkey uses " ".join([noise] * n). */
#define LC_NOISE "The grass is green. The sky is blue. The sun is yellow. Here we go. There " \
                 "and back again."
static const char *const lc_noise_sent[] = {"The grass is green.", "The sky is blue.",
                                            "The sun is yellow.", "Here we go.",
                                            "There and back again."};

/* Needle keys are "{adj}-{noun}", as RULER's wonderwords pairs. */
static const char *const lc_key_adj[] = {
    "amber",  "brisk",   "curious", "dusty",  "eager",  "fancy",  "gentle", "hollow",
    "icy",    "jolly",   "keen",    "lively", "mellow", "nimble", "odd",    "plain",
    "quick",  "rustic",  "shiny",   "tidy",   "upbeat", "vivid",  "wary",   "zesty"};
static const char *const lc_key_noun[] = {
    "anchor", "barrel", "candle", "dragon", "engine", "feather", "glacier", "helmet",
    "island", "jacket", "kettle", "ladder", "magnet", "needle", "oyster",  "pepper",
    "quiver", "ribbon", "saddle", "teapot", "umbrella", "violin", "wagon", "zipper"};

/* The prose generator's vocabulary (niah_single_2/3): plain words, none
 * hyphenated, so a needle key never occurs in the haystack. */
static const char *const pr_adj[] = {"old", "small", "quiet", "busy", "green", "distant",
                                     "narrow", "warm", "famous", "empty", "bright", "patient"};
static const char *const pr_noun[] = {"farmer", "village", "river", "teacher", "market", "bridge",
                                      "garden", "sailor", "library", "road", "baker", "hill",
                                      "window", "letter", "traveler", "orchard"};
static const char *const pr_verb[] = {"visited", "watched", "painted", "crossed", "found",
                                      "repaired", "described", "remembered", "followed",
                                      "admired"};
static const char *const pr_adv[] = {"slowly", "carefully", "often", "early", "again",
                                     "gladly", "quietly", "at last"};
static const char *const pr_time[] = {"morning", "evening", "spring", "winter", "autumn",
                                      "afternoon"};
/* Short sentences that top a prose haystack up to its budget (shortest first). */
static const char *const pr_short[] = {"It rained.", "Time passed.", "Birds sang.",
                                       "All was calm."};

static int lc_kind(const char *task)
{
    for (int i = 0; task && i < (int)PB_ARRAY_LEN(lc_tasks); i++)
        if (strcmp(lc_tasks[i].name, task) == 0)
            return i;
    return -1;
}

/* The shortest bucket: four needles and a question naming up to four keys
 * take up to ~700 chars of fixed text, cwe's 60 list entries ~600 and fwe
 * needs room for ranks 2-4 to stand out. */
static int lc_min_len(int task)
{
    return task == TK_MK1 || task == TK_MV || task == TK_MQ || task == TK_CWE || task == TK_FWE
               ? 2 * LC_MIN_LEN
               : LC_MIN_LEN;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* lengths: a list of integers (or one integer) in [lc_min_len(task), LC_MAX_LEN];
 * sorted and de-duplicated. */
static int parse_lengths(const json_t *v, lc_params_t *p, pb_err_t *err)
{
    static const int64_t dflt[] = {1024, 2048, 4096, 8192, 16384};
    const char *shape = "lengths must be a non-empty list of at most 32 integers (or one integer)";
    size_t n = 0;
    if (v == NULL || json_is_null(v)) {
        for (; n < PB_ARRAY_LEN(dflt); n++)
            p->lengths[n] = dflt[n];
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0 || json_array_size(v) > LC_MAX_LENGTHS)
            return pb_err_set(err, PB_EINVAL, "lengths", "%s", shape);
        for (; n < json_array_size(v); n++)
            if (pb_json_as_int(json_array_get(v, n), &p->lengths[n]))
                return pb_err_set(err, PB_EINVAL, "lengths", "%s", shape);
    } else if (pb_json_as_int(v, &p->lengths[0]) == 0) {
        n = 1;
    } else {
        return pb_err_set(err, PB_EINVAL, "lengths", "%s", shape);
    }
    for (size_t i = 0; i < n; i++)
        if (p->lengths[i] < lc_min_len(p->task) || p->lengths[i] > LC_MAX_LEN)
            return pb_err_set(err, PB_EINVAL, "lengths",
                              "lengths must lie in [%d, %d] length units (tokens under the "
                              "model's tokenizer, else characters) (got %lld)",
                              lc_min_len(p->task), LC_MAX_LEN, (long long)p->lengths[i]);
    qsort(p->lengths, n, sizeof p->lengths[0], cmp_i64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || p->lengths[k - 1] != p->lengths[i])
            p->lengths[k++] = p->lengths[i];
    p->n_lengths = (int)k;
    return 0;
}

/* Validate params (NULL = all defaults) into p. err->field is the param name. */
static int lc_parse(const char *task, const json_t *params, lc_params_t *p, pb_err_t *err)
{
    static const char *const keys[] = {"lengths", "depths", "threshold", NULL};
    int64_t v;
    int rc;

    memset(p, 0, sizeof *p);
    p->task = lc_kind(task);
    if (p->task < 0)
        return pb_err_set(err, PB_EINVAL, "", "unknown longctx task \"%s\"", task ? task : "");
    if (params != NULL && !json_is_object(params))
        return pb_err_set(err, PB_EINVAL, "", "params must be an object");
    if ((rc = pb_json_only_keys(params, keys, "", err)))
        return rc;
    if ((rc = parse_lengths(params ? json_object_get(params, "lengths") : NULL, p, err)))
        return rc;
    if ((rc = pb_json_int(params, "depths", 11, 2, LC_MAX_DEPTHS, &v, "", err)))
        return rc;
    p->depths = (int)v;
    if ((rc = pb_json_num(params, "threshold", 0.856, 0.0, 1.0, &p->threshold, "", err)))
        return rc;
    if (!(p->threshold > 0.0))
        return pb_err_set(err, PB_EINVAL, "threshold", "threshold must be in (0, 1]");
    return 0;
}

static json_t *lc_schema(const char *task)
{
    int kind = lc_kind(task);
    if (kind < 0)
        return NULL;
    return json_pack(
        "{s:{s:s, s:[i,i,i,i,i], s:s, s:i, s:i}, s:{s:s, s:i, s:s, s:i, s:i},"
        " s:{s:s, s:f, s:s, s:f, s:f}}",
        "lengths", "type", "integer_list", "default", 1024, 2048, 4096, 8192, 16384,
        "description",
        "context length buckets in length units (tokens under the model's tokenizer, else "
        "characters; a list of at most 32, or one integer); each prompt is at most its bucket "
        "and only a sentence, a needle line, a list entry or a JSON record shorter (within 2% "
        "under a tokenizer)",
        "min", lc_min_len(kind), "max", LC_MAX_LEN,
        "depths", "type", "integer", "default", 11, "description",
        "number of needle depths n: depth d of n sits at d/(n-1) of the haystack; item i "
        "uses depth i mod n (common_words and frequent_words have no depth)",
        "min", 2, "max", LC_MAX_DEPTHS,
        "threshold", "type", "number", "default", 0.856, "description",
        "accuracy a bucket needs to count towards the effective length (RULER's 85.6%)", "min",
        0.0, "max", 1.0);
}

static int lc_normalize(const char *task, const json_t *params, json_t **out, pb_err_t *err)
{
    lc_params_t p;
    *out = NULL;
    int rc = lc_parse(task, params, &p, err);
    if (rc)
        return rc;
    json_t *lengths = json_array();
    for (int i = 0; lengths && i < p.n_lengths; i++)
        if (json_array_append_new(lengths, json_integer(p.lengths[i]))) {
            json_decref(lengths);
            lengths = NULL;
        }
    if (lengths)
        *out = json_pack("{s:o, s:i, s:f}", "lengths", lengths, "depths", p.depths,
                         "threshold", p.threshold);
    return *out ? 0 : pb_err_set(err, PB_ENOMEM, "", "out of memory");
}

static int lc_buckets(const char *task, const json_t *params, int64_t **out, size_t *n)
{
    lc_params_t p;
    *out = NULL;
    *n = 0;
    int rc = lc_parse(task, params, &p, NULL);
    if (rc)
        return rc;
    return ps__copy_buckets(p.lengths, (size_t)p.n_lengths, out, n);
}

/* lc_parse as ps__prepare_parsed calls it. */
static int lc_parse_state(const char *task, const json_t *params, void *out)
{
    return lc_parse(task, params, out, NULL);
}

static int lc_prepare(ps_run_t *run)
{
    return ps__prepare_parsed(run, sizeof(lc_params_t), lc_parse_state);
}

/* ---- generation ---- */

static const char *pick(pb_rng_t *rng, const char *const *words, size_t n)
{
    return words[pb_rng_below(rng, n)];
}

/* round(total * d / (n - 1)) in integers: where depth d of n falls. */
int64_t ps__lc_at_depth(int64_t total, int d, int n)
{
    return (2 * total * d + (n - 1)) / (2 * (int64_t)(n - 1));
}

void ps__lc_uuid4(pb_rng_t *rng, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = pb_rng_next(rng), b = pb_rng_next(rng);
    int k = 0;
    for (int i = 0; i < 32; i++) {
        unsigned nib = (unsigned)((i < 16 ? a >> (60 - 4 * i) : b >> (60 - 4 * (i - 16))) & 15);
        if (i == 12)
            nib = 4; /* version 4 */
        else if (i == 16)
            nib = 8 | (nib & 3); /* RFC 4122 variant */
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[k++] = '-';
        out[k++] = hex[nib];
    }
    out[k] = '\0';
}

void ps__lc_word_key(pb_rng_t *rng, char *out, size_t n)
{
    snprintf(out, n, "%s-%s", pick(rng, lc_key_adj, PB_ARRAY_LEN(lc_key_adj)),
             pick(rng, lc_key_noun, PB_ARRAY_LEN(lc_key_noun)));
}

/* One prose sentence (niah_single_2/3) into b, from one of three shapes. */
static int prose_sentence(pb_rng_t *rng, pb_buf_t *b)
{
#define W(list) pick(rng, list, PB_ARRAY_LEN(list))
    switch (pb_rng_below(rng, 3)) {
    case 0:
        return pb_buf_printf(b, "The %s %s %s the %s %s.", W(pr_adj), W(pr_noun), W(pr_verb),
                             W(pr_adj), W(pr_noun));
    case 1:
        return pb_buf_printf(b, "In the %s, a %s %s the %s %s.", W(pr_time), W(pr_noun),
                             W(pr_verb), W(pr_noun), W(pr_adv));
    default:
        return pb_buf_printf(b, "Every %s the %s %s %s and %s the %s.", W(pr_time),
                             W(pr_noun), W(pr_adv), W(pr_verb), W(pr_verb), W(pr_noun));
    }
#undef W
}

/* A haystack of sentences joined by " " into hay, at most budget chars;
 * ends[i] is where sentence i ends. prose: generated prose topped up with
 * short sentences, else the repeated RULER filler. Returns 0 or PB_E*. */
int ps__lc_haystack(pb_rng_t *rng, int prose, int64_t budget, pb_buf_t *hay,
                          size_t **ends, size_t *n_ends)
{
    pb_buf_t s;
    size_t cap = 0;
    int rc = 0, topping = 0;
    pb_buf_init(&s, 256);
    for (size_t i = 0;; i++) {
        pb_buf_reset(&s);
        if (!prose)
            rc = pb_buf_puts(&s, lc_noise_sent[i % PB_ARRAY_LEN(lc_noise_sent)]);
        else if (!topping)
            rc = prose_sentence(rng, &s);
        else
            rc = topping <= (int)PB_ARRAY_LEN(pr_short)
                     ? pb_buf_puts(&s, pr_short[PB_ARRAY_LEN(pr_short) - (size_t)topping])
                     : 0;
        if (rc)
            break;
        if (topping > (int)PB_ARRAY_LEN(pr_short))
            break;
        size_t add = s.len + (hay->len > 0);
        if ((int64_t)(hay->len + add) > budget) {
            /* prose: try shorter sentences, longest first, then stop */
            if (!prose)
                break;
            topping++;
            continue;
        }
        if ((rc = pb_grow(ends, &cap, *n_ends + 1, sizeof **ends, 64)))
            break;
        if ((hay->len > 0 && (rc = pb_buf_puts(hay, " "))) || (rc = pb_buf_append(hay, s.data, s.len)))
            break;
        (*ends)[(*n_ends)++] = hay->len;
    }
    pb_buf_free(&s);
    return rc;
}

/* RULER's singular NIAH template around a haystack with the needle at
 * sentence boundary ps__lc_at_depth(n_sentences, d, n). */
static int render_niah(const lc_params_t *p, int64_t bucket, int d, pb_rng_t *rng,
                       pb_buf_t *pr, pb_buf_t *ref)
{
    const char *kind = p->task == TK_NIAH3 ? "uuid" : "number";
    char key[64], value[40], needle[160];
    pb_buf_t hay, head, tail;
    size_t *ends = NULL, n_ends = 0;
    int rc;

    ps__lc_word_key(rng, key, sizeof key);
    if (p->task == TK_NIAH3)
        ps__lc_uuid4(rng, value);
    else
        snprintf(value, sizeof value, "%lld", (long long)pb_rng_range(rng, 1000000, 9999999));
    snprintf(needle, sizeof needle, "One of the special magic %ss for %s is: %s.", kind, key,
             value);
    pb_buf_init(&hay, LC_TEXT_MAX);
    pb_buf_init(&head, 1024);
    pb_buf_init(&tail, 1024);
    rc = pb_buf_printf(&head,
                       "A special magic %s is hidden within the following text. Make sure to "
                       "memorize it. I will quiz you about the %s afterwards.\n",
                       kind, kind);
    rc = rc ? rc
            : pb_buf_printf(&tail,
                            "\nWhat is the special magic %s for %s mentioned in the provided "
                            "text?\nThe special magic %s for %s mentioned in the provided text is",
                            kind, key, kind, key);
    int64_t budget = bucket - (int64_t)(head.len + tail.len + strlen(needle) + 1);
    if (rc == 0 && budget < 0)
        rc = PB_EINVAL;
    rc = rc ? rc : ps__lc_haystack(rng, p->task != TK_NIAH1, budget, &hay, &ends, &n_ends);
    if (rc)
        goto out;
    size_t k = (size_t)ps__lc_at_depth((int64_t)n_ends, d, p->depths);
    size_t cut = k == 0 ? 0 : ends[k - 1]; /* needle goes after sentence k-1 */
    rc = pb_buf_append(pr, head.data, head.len);
    rc = rc ? rc : pb_buf_append(pr, hay.data, cut);
    if (rc == 0 && k > 0)
        rc = pb_buf_puts(pr, " ");
    rc = rc ? rc : pb_buf_puts(pr, needle);
    if (rc == 0 && k < n_ends)
        rc = pb_buf_printf(pr, " %.*s", (int)(hay.len - cut - (k > 0)),
                           hay.data + cut + (k > 0));
    rc = rc ? rc : pb_buf_append(pr, tail.data, tail.len);
    rc = rc ? rc : pb_buf_puts(ref, value);
out:
    free(ends);
    pb_buf_free(&hay);
    pb_buf_free(&head);
    pb_buf_free(&tail);
    return rc;
}

/* The Landmark passkey prompt: garbage sliced in characters, so the prompt
 * is exactly bucket chars long. */
static int render_passkey(const lc_params_t *p, int64_t bucket, int d, pb_rng_t *rng,
                          pb_buf_t *pr, pb_buf_t *ref)
{
    static const char intro[] = "There is an important info hidden inside a lot of irrelevant "
                                "text. Find it and memorize them. I will quiz you about the "
                                "important information there.";
    static const char question[] = "What is the pass key? The pass key is";
    static const char noise[] = LC_NOISE " ";
    const size_t period = sizeof noise - 1;
    char info[128];
    int key = (int)pb_rng_range(rng, 1, 50000);
    snprintf(info, sizeof info, "The pass key is %d. Remember it. %d is the pass key.", key, key);
    int64_t garbage = bucket - (int64_t)(strlen(intro) + strlen(info) + strlen(question) + 4);
    if (garbage < 0)
        return PB_EINVAL;
    int64_t pre = ps__lc_at_depth(garbage, d, p->depths), parts[2] = {pre, garbage - pre};
    int rc = pb_buf_puts(pr, intro);
    for (int part = 0; part < 2 && rc == 0; part++) {
        rc = pb_buf_puts(pr, "\n");
        for (int64_t i = 0; i < parts[part] && rc == 0; i += (int64_t)period) {
            int64_t n = parts[part] - i < (int64_t)period ? parts[part] - i : (int64_t)period;
            rc = pb_buf_append(pr, noise, (size_t)n);
        }
        rc = rc ? rc : pb_buf_printf(pr, "\n%s", part == 0 ? info : question);
    }
    return rc ? rc : pb_buf_printf(ref, "%d", key);
}

/* Lost in the Middle's prompt: as many UUID pairs as fit, the gold pair at
 * index ps__lc_at_depth(n_keys - 1, d, n). */
static int render_kv(const lc_params_t *p, int64_t bucket, int d, pb_rng_t *rng, pb_buf_t *pr,
                     pb_buf_t *ref, int *n_keys)
{
    static const char head[] = "Extract the value corresponding to the specified key in the "
                               "JSON object below.\n\nJSON data:\n{";
    static const char tail_fmt[] = "}\n\nKey: \"\"\nCorresponding value:";
    /* a record is "<uuid>": "<uuid>", records are joined by ",\n " */
    const int64_t tail = (int64_t)strlen(tail_fmt) + 36, record = 38 + 2 + 38, sep = 3;
    int64_t room = bucket - (int64_t)strlen(head) - tail;
    if (room < record)
        return PB_EINVAL;
    int64_t n = 1 + (room - record) / (record + sep);
    int64_t gold = ps__lc_at_depth(n - 1, d, p->depths);
    char k[37], v[37], gk[37] = "";
    int rc = pb_buf_puts(pr, head);
    for (int64_t i = 0; i < n && rc == 0; i++) {
        ps__lc_uuid4(rng, k);
        ps__lc_uuid4(rng, v);
        rc = pb_buf_printf(pr, "%s\"%s\": \"%s\"", i ? ",\n " : "", k, v);
        if (i == gold) {
            memcpy(gk, k, sizeof gk);
            rc = rc ? rc : pb_buf_puts(ref, v);
        }
    }
    *n_keys = (int)n;
    return rc ? rc : pb_buf_printf(pr, "}\n\nKey: \"%s\"\nCorresponding value:", gk);
}

/* What a render reports besides the prompt and reference. */
typedef struct lc_info {
    int n_keys;
    char original[24]; /* altered_numeric_qa: the number before alteration */
} lc_info_t;

/* Item idx of run rendered within chars characters into pr and ref (both
 * emptied first), from a fresh generator so that every attempt at a budget
 * draws the same values. */
static int lc_render(const ps_run_t *run, uint64_t idx, int64_t chars, pb_buf_t *pr,
                     pb_buf_t *ref, lc_info_t *info)
{
    const lc_params_t *p = run->state;
    /* depth cycles with the index: every bucket covers every depth evenly */
    int d = (int)(idx % (uint64_t)p->depths);
    pb_rng_t rng;
    pb_buf_reset(pr);
    pb_buf_reset(ref);
    memset(info, 0, sizeof *info);
    pb_rng_seed(&rng, run->key, idx);
    switch (p->task) {
    case TK_PASSKEY:
        return render_passkey(p, chars, d, &rng, pr, ref);
    case TK_KV:
        return render_kv(p, chars, d, &rng, pr, ref, &info->n_keys);
    case TK_CWE:
        return ps__lc_render_cwe(run->bucket, chars, &rng, pr, ref);
    case TK_FWE:
        return ps__lc_render_fwe(run->bucket, chars, &rng, pr, ref);
    case TK_AQA:
        return ps__lc_render_altqa(p, chars, d, &rng, pr, ref, info->original);
    default:
        if (p->task >= TK_MK1)
            return ps__lc_render_multi(p, chars, d, &rng, pr, ref, &info->n_keys);
        return render_niah(p, chars, d, &rng, pr, ref);
    }
}

#define LC_FIT_TRIES 12 /* renders per item under a tokenizer, at most */

/* Render item idx with its length in the run's unit at most the bucket
 * and, under a tokenizer, within 2% of it where the task's granularity
 * allows; *units gets that length. Without a tokenizer the budget is the
 * bucket in characters. With one, the character budget starts at the
 * bucket and is rescaled by the measured characters per token (a secant
 * step, falling back to bisection between the largest budget known to fit
 * and the smallest known not to), one measurement per render. */
static int lc_fit(const ps_run_t *run, uint64_t idx, pb_buf_t *pr, pb_buf_t *ref,
                  lc_info_t *info, int64_t *units)
{
    const int64_t bucket = run->bucket, goal = bucket - bucket / 50;
    int64_t chars = bucket, lo = 0, hi = LC_CHAR_MAX + 1, best = -1, best_units = -1;
    int rc = 0, last_best = 0;

    if (run->tok == NULL || run->tok->count == NULL) {
        rc = lc_render(run, idx, bucket, pr, ref, info);
        *units = (int64_t)pr->len;
        return rc;
    }
    for (int t = 0; t < LC_FIT_TRIES && hi - lo > 1; t++) {
        int64_t n = -1, next;
        rc = lc_render(run, idx, chars, pr, ref, info);
        if (rc == PB_EINVAL) {
            lo = chars; /* the fixed text does not fit: more room */
            next = chars * 2;
            last_best = 0;
        } else if (rc) {
            return rc;
        } else {
            n = ps_run_length(run, pr->data, pr->len);
            if (n <= bucket) {
                lo = chars;
                if (n > best_units)
                    best = chars, best_units = n;
            } else {
                hi = chars;
            }
            last_best = best == chars;
            if (n <= bucket && n >= goal)
                break;
            /* aim at the middle of [goal, bucket] */
            next = n > 0 ? (int64_t)((double)chars * (double)(bucket - bucket / 100) / (double)n)
                         : chars * 2;
        }
        if (next <= lo || next >= hi)
            next = lo + (hi - lo) / 2;
        chars = next;
    }
    if (best < 0)
        return PB_EINVAL; /* the template alone exceeds the bucket */
    if (!last_best && (rc = lc_render(run, idx, best, pr, ref, info)))
        return rc;
    *units = best_units;
    return 0;
}

static int lc_generate(const ps_run_t *run, uint64_t idx, ps_item_t *out)
{
    const lc_params_t *p = run->state;
    pb_buf_t prompt, ref;
    lc_info_t info;
    int64_t units = 0;
    int rc;

    memset(out, 0, sizeof *out);
    if (p == NULL || run->bucket < lc_min_len(p->task) || run->bucket > LC_MAX_LEN)
        return PB_EINVAL;
    pb_buf_init(&prompt, LC_TEXT_MAX);
    pb_buf_init(&ref, LC_REF_MAX);
    rc = lc_fit(run, idx, &prompt, &ref, &info, &units);
    rc = rc ? rc : pb_buf_cstr(&prompt);
    rc = rc ? rc : pb_buf_cstr(&ref);
    if (rc)
        goto out;
    /* cwe and fwe have no needle, so no depth */
    int d = (int)(idx % (uint64_t)p->depths);
    if (p->task == TK_CWE || p->task == TK_FWE)
        out->meta = json_pack("{s:I}", "length", (json_int_t)units);
    else
        out->meta = json_pack("{s:I, s:I}", "depth",
                              (json_int_t)ps__lc_at_depth(100, d, p->depths), "length",
                              (json_int_t)units);
    if (out->meta == NULL ||
        ((p->task == TK_KV || (p->task >= TK_MK1 && p->task <= TK_VT)) &&
         json_object_set_new(out->meta, "keys", json_integer(info.n_keys))) ||
        (p->task == TK_AQA &&
         json_object_set_new(out->meta, "original", json_string(info.original)))) {
        rc = PB_ENOMEM;
        goto out;
    }
    ps__item_finish(out, run, idx, units, &prompt, &ref);
out:
    pb_buf_free(&prompt);
    pb_buf_free(&ref);
    if (rc)
        ps_item_clear(out);
    return rc;
}

/* ---- scoring ---- */

/* Case-insensitive (ASCII) substring test of needle[0, n) in hay. */
static int contains_ci(const char *hay, const char *needle, size_t n)
{
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* RULER's reference values (one per line, surrounding whitespace dropped,
 * empty lines skipped): *refs gets their count, *hits how many occur in
 * prediction. */
static void match_refs(const char *prediction, const char *reference, size_t *refs, size_t *hits)
{
    *refs = *hits = 0;
    for (const char *r = reference; *r;) {
        size_t n = strcspn(r, "\n");
        /* surrounding whitespace is not part of a value */
        size_t a = 0, b = n;
        while (a < b && isspace((unsigned char)r[a]))
            a++;
        while (b > a && isspace((unsigned char)r[b - 1]))
            b--;
        if (b > a) {
            (*refs)++;
            *hits += (size_t)contains_ci(prediction, r + a, b - a);
        }
        r += n + (r[n] == '\n');
    }
}

double ps__lc_string_match_all(const char *prediction, const char *reference)
{
    size_t refs, hits;
    if (prediction == NULL || reference == NULL)
        return 0.0;
    match_refs(prediction, reference, &refs, &hits);
    return refs ? (double)hits / (double)refs : 0.0;
}

double ps__lc_string_match_part(const char *prediction, const char *reference)
{
    size_t refs, hits;
    if (prediction == NULL || reference == NULL)
        return 0.0;
    match_refs(prediction, reference, &refs, &hits);
    return hits > 0 ? 1.0 : 0.0;
}

/* Skip leading zeros of the digit run at s[0, n); returns the new start. */
static const char *strip_zeros(const char *s, size_t *n)
{
    while (*n > 1 && *s == '0') {
        s++;
        (*n)--;
    }
    return s;
}

double ps__lc_first_int_match(const char *prediction, const char *reference)
{
    if (prediction == NULL || reference == NULL)
        return 0.0;
    const char *p = prediction;
    while (*p && !isdigit((unsigned char)*p))
        p++;
    size_t pn = strspn(p, "0123456789"), rn = strspn(reference, "0123456789");
    if (pn == 0 || rn == 0 || reference[rn] != '\0')
        return 0.0;
    /* integer equality on digit strings: no overflow, leading zeros ignored */
    p = strip_zeros(p, &pn);
    reference = strip_zeros(reference, &rn);
    return pn == rn && memcmp(p, reference, pn) == 0 ? 1.0 : 0.0;
}

static int lc_score(const ps_run_t *run, const ps_item_t *item, const char *prediction,
                    double *score, double *metrics)
{
    (void)metrics; /* no per-item metrics */
    const lc_params_t *p = run->state;
    if (p != NULL && p->task == TK_PASSKEY)
        *score = ps__lc_first_int_match(prediction, item->reference);
    else if (p != NULL && p->task == TK_AQA)
        *score = ps__lc_string_match_part(prediction, item->reference);
    else
        *score = ps__lc_string_match_all(prediction, item->reference);
    return 0;
}

static json_t *lc_aggregate(const char *task, const json_t *params, const ps_bucket_stat_t *stats,
                            size_t n)
{
    lc_params_t p;
    if (lc_parse(task, params, &p, NULL))
        return NULL;
    return ps__length_aggregate(stats, n, p.threshold, NULL, 0);
}

/* Accuracy by needle depth (percent); with buckets, the length x depth grid. */
static const char *const lc_breakdown[] = {"depth", NULL};

const ps_suite_t ps__suite_longctx = {
    .name = "longctx",
    .description = "Long-context retrieval: passkey, RULER niah_single_1/2/3, "
                   "niah_multikey_1/2/3, niah_multivalue, niah_multiquery, variable_tracking, "
                   "common_words and frequent_words, AltQA-style altered_numeric_qa and "
                   "lost-in-the-middle JSON key-value retrieval, by context length (tokens "
                   "under the model's tokenizer, else characters) and broken down by needle "
                   "depth",
    .version = 1,
    .bucket_unit = "chars",
    .tasks = lc_tasks,
    .n_tasks = PB_ARRAY_LEN(lc_tasks),
    .breakdown = lc_breakdown,
    .schema = lc_schema,
    .normalize = lc_normalize,
    .buckets = lc_buckets,
    .prepare = lc_prepare,
    .release = ps__release_state,
    .generate = lc_generate,
    .score = lc_score,
    .aggregate = lc_aggregate,
};
