/* altered_numeric_qa for the longctx suite (reference/suites.md 2.5, 2.6):
 * AltQA's idea on a generated gazetteer. Sentences state numeric facts
 * (years, counts, sizes) about made-up places; the asked fact's number is
 * altered as AltQA does (a year moves by 1..10 either way, any other
 * number becomes another of the same digit count) in both sentences that
 * state it, which sit at the needle depth. The prompt is RULER's QA
 * template; string_match_part scores it. */
#include "suites/longctx_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb.h"

/* A fact: its sentence (%s the place, then %s the year and %s the count),
 * the question asking either number, and the count's digit range. */
typedef struct aq_fact {
    const char *sentence;
    const char *ask_year;
    const char *ask_count;
    int min_digits, max_digits;
} aq_fact_t;

static const aq_fact_t aq_facts[] = {
    {"The town of %s was founded in %s and today has %s inhabitants.",
     "In what year was the town of %s founded?", "How many inhabitants does the town of %s have?",
     3, 6},
    {"The %s Bridge, completed in %s, is %s meters long.",
     "In what year was the %s Bridge completed?", "How many meters long is the %s Bridge?", 2, 4},
    {"The library of %s opened in %s and holds %s books.",
     "In what year did the library of %s open?", "How many books does the library of %s hold?",
     4, 6},
    {"The %s Company was established in %s and employs %s workers.",
     "In what year was the %s Company established?",
     "How many workers does the %s Company employ?", 2, 5},
    {"Mount %s was first climbed in %s and rises %s meters above the sea.",
     "In what year was Mount %s first climbed?",
     "How many meters above the sea does Mount %s rise?", 3, 4},
    {"The %s Observatory, built in %s, has recorded %s comets.",
     "In what year was the %s Observatory built?",
     "How many comets has the %s Observatory recorded?", 2, 3},
    {"The harbor of %s was dredged in %s and shelters %s boats.",
     "In what year was the harbor of %s dredged?",
     "How many boats does the harbor of %s shelter?", 2, 4},
};

#define AQ_NAME 24

/* A made-up place name: two or three consonant-vowel syllables and a final
 * consonant, capitalised ("Tavorin"). */
static void aq_name(pb_rng_t *rng, char out[AQ_NAME])
{
    static const char cons[] = "bdfgklmnprstvz", vow[] = "aeiou", end[] = "lnrs";
    int syl = 2 + (int)pb_rng_below(rng, 2), k = 0;
    for (int s = 0; s < syl; s++) {
        out[k++] = cons[pb_rng_below(rng, sizeof cons - 1)];
        out[k++] = vow[pb_rng_below(rng, sizeof vow - 1)];
    }
    out[k++] = end[pb_rng_below(rng, sizeof end - 1)];
    out[k] = '\0';
    out[0] = (char)(out[0] - 'a' + 'A');
}

/* A number of digits in [lo, hi] digits, uniform among them. */
static int64_t aq_number(pb_rng_t *rng, int digits)
{
    int64_t lo = 1;
    for (int i = 1; i < digits; i++)
        lo *= 10;
    return pb_rng_range(rng, lo, lo * 10 - 1);
}

/* One distractor sentence into s: a random fact about a place other than
 * avoid whose numbers contain neither banned[0] nor banned[1]. */
static int aq_distractor(pb_rng_t *rng, const char *avoid, char banned[2][24], pb_buf_t *s)
{
    const aq_fact_t *f = &aq_facts[pb_rng_below(rng, PB_ARRAY_LEN(aq_facts))];
    char name[AQ_NAME], year[24], count[24];
    do
        aq_name(rng, name);
    while (strcmp(name, avoid) == 0);
    for (;;) {
        snprintf(year, sizeof year, "%lld", (long long)pb_rng_range(rng, 1200, 2000));
        snprintf(count, sizeof count, "%lld",
                 (long long)aq_number(rng, (int)pb_rng_range(rng, f->min_digits, f->max_digits)));
        int clash = 0;
        for (int i = 0; i < 2; i++)
            clash |= strstr(year, banned[i]) != NULL || strstr(count, banned[i]) != NULL;
        if (!clash)
            break;
    }
    return pb_buf_printf(s, f->sentence, name, year, count);
}

/* n with a comma between groups of three digits ("38,410"). */
static void aq_commas(const char *n, char out[32])
{
    size_t len = strlen(n), k = 0;
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = n[i];
    }
    out[k] = '\0';
}

int ps__lc_render_altqa(const lc_params_t *p, int64_t chars, int d, pb_rng_t *rng, pb_buf_t *pr,
                        pb_buf_t *ref, char original[24])
{
    static const char head[] = "Answer the question based on the given documents. Only give me "
                               "the answer and do not output any other words.\n\nThe following "
                               "are given documents.\n\n";
    static const char instr[] = "\n\nAnswer the question based on the given documents. Only "
                                "give me the answer and do not output any other words.\n\n"
                                "Question: ";
    const aq_fact_t *f = &aq_facts[pb_rng_below(rng, PB_ARRAY_LEN(aq_facts))];
    int ask_year = (int)pb_rng_below(rng, 2) == 0;
    char name[AQ_NAME], year[24], count[24], banned[2][24], question[160], grouped[32];
    pb_buf_t fact, s, hay;
    size_t *ends = NULL, n_ends = 0, cap = 0;
    int rc;

    /* the true numbers, then the asked one altered */
    aq_name(rng, name);
    int64_t y0 = pb_rng_range(rng, 1200, 2000);
    int digits = (int)pb_rng_range(rng, f->min_digits, f->max_digits);
    int64_t c0 = aq_number(rng, digits), y1 = y0, c1 = c0;
    if (ask_year) {
        int64_t shift = pb_rng_range(rng, 1, 10);
        y1 = pb_rng_below(rng, 2) ? y0 + shift : y0 - shift;
    } else {
        while (c1 == c0)
            c1 = aq_number(rng, digits);
    }
    snprintf(original, 24, "%lld", (long long)(ask_year ? y0 : c0));
    snprintf(year, sizeof year, "%lld", (long long)y1);
    snprintf(count, sizeof count, "%lld", (long long)c1);
    snprintf(banned[0], sizeof banned[0], "%s", original);
    snprintf(banned[1], sizeof banned[1], "%s", ask_year ? year : count);
    /* the number not asked must not carry the asked one, old or new */
    char *other = ask_year ? count : year;
    while (strstr(other, banned[0]) || strstr(other, banned[1]))
        snprintf(other, 24, "%lld",
                 (long long)(ask_year ? aq_number(rng, digits) : pb_rng_range(rng, 1200, 2000)));
    snprintf(question, sizeof question, ask_year ? f->ask_year : f->ask_count, name);

    pb_buf_init(&fact, 512);
    pb_buf_init(&s, 512);
    pb_buf_init(&hay, LC_TEXT_MAX);
    rc = pb_buf_printf(&fact, f->sentence, name, year, count);
    rc = rc ? rc
            : pb_buf_printf(&fact, " Records of %s give the figure %s again.", name,
                            banned[1]);
    int64_t room = chars - (int64_t)(sizeof head - 1 + sizeof instr - 1 + strlen(question) +
                                     strlen(" Answer:") + fact.len + 1);
    if (rc == 0 && room < 0)
        rc = PB_EINVAL;
    /* distractor sentences joined by " " while they fit; ends[i] is where
     * sentence i ends in the haystack pr gets after the head */
    while (rc == 0) {
        pb_buf_reset(&s);
        if ((rc = aq_distractor(rng, name, banned, &s)))
            break;
        if ((int64_t)(hay.len + (hay.len > 0) + s.len) > room)
            break;
        if ((rc = pb_grow(&ends, &cap, n_ends + 1, sizeof *ends, 64)))
            break;
        if (hay.len > 0)
            rc = pb_buf_puts(&hay, " ");
        rc = rc ? rc : pb_buf_append(&hay, s.data, s.len);
        if (rc == 0)
            ends[n_ends++] = hay.len;
    }
    if (rc)
        goto out;
    size_t k = (size_t)ps__lc_at_depth((int64_t)n_ends, d, p->depths);
    size_t cut = k == 0 ? 0 : ends[k - 1]; /* the fact goes after sentence k-1 */
    rc = pb_buf_puts(pr, head);
    rc = rc ? rc : pb_buf_append(pr, hay.data, cut);
    if (rc == 0 && k > 0)
        rc = pb_buf_puts(pr, " ");
    rc = rc ? rc : pb_buf_append(pr, fact.data, fact.len);
    if (rc == 0 && k < n_ends)
        rc = pb_buf_printf(pr, " %.*s", (int)(hay.len - cut - (k > 0)), hay.data + cut + (k > 0));
    rc = rc ? rc : pb_buf_printf(pr, "%s%s Answer:", instr, question);
    rc = rc ? rc : pb_buf_puts(ref, banned[1]);
    aq_commas(banned[1], grouped);
    if (rc == 0 && !ask_year && strcmp(grouped, banned[1]) != 0)
        rc = pb_buf_printf(ref, "\n%s", grouped);
out:
    free(ends);
    pb_buf_free(&hay);
    pb_buf_free(&fact);
    pb_buf_free(&s);
    return rc;
}
