/* RULER's multi-needle tasks for the longctx suite (reference/suites.md
 * 2.1): niah_multikey_1/2/3, niah_multivalue and niah_multiquery, with
 * RULER's needle, templates (singular with one answer, plural else) and
 * haystacks (prose or needle lines), and variable_tracking, sized in
 * characters like longctx.c. The first asked needle sits at the depth. */
#include "suites/longctx_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb.h"

#define MN_NEEDLES 4 /* RULER's num_needle_k / num_needle_v / num_needle_q */

typedef struct mn_needle {
    char key[40];
    char value[40];
    char text[160];
    size_t at; /* haystack boundary: the needle goes before unit `at` */
} mn_needle_t;

/* A value of the task's type: a 7-digit number or a UUID. */
static void draw_value(pb_rng_t *rng, int uuid, char out[40])
{
    if (uuid)
        ps__lc_uuid4(rng, out);
    else
        snprintf(out, 40, "%lld", (long long)pb_rng_range(rng, 1000000, 9999999));
}

static void draw_key(pb_rng_t *rng, int uuid, char out[40])
{
    if (uuid)
        ps__lc_uuid4(rng, out);
    else
        ps__lc_word_key(rng, out, 40);
}

/* Needle lines with random keys (never `asked`: its needle must be the only
 * one) and values, joined by "\n" into hay within budget; the lines of
 * RULER's "needle" haystack. */
static int needle_lines(pb_rng_t *rng, int uuid, const char *asked, const char *kind,
                        int64_t budget, pb_buf_t *hay, size_t **ends, size_t *n_ends)
{
    char key[40], value[40], line[160];
    size_t cap = 0;
    for (;;) {
        do
            draw_key(rng, uuid, key);
        while (strcmp(key, asked) == 0);
        draw_value(rng, uuid, value);
        int n = snprintf(line, sizeof line, "One of the special magic %ss for %s is: %s.", kind,
                         key, value);
        if ((int64_t)(hay->len + (hay->len > 0) + (size_t)n) > budget)
            return 0;
        int rc = pb_grow(ends, &cap, *n_ends + 1, sizeof **ends, 64);
        if (rc || (hay->len > 0 && (rc = pb_buf_puts(hay, "\n"))) || (rc = pb_buf_puts(hay, line)))
            return rc;
        (*ends)[(*n_ends)++] = hay->len;
    }
}

/* Append data to pr, after sep unless it is the first piece. */
static int emit(pb_buf_t *pr, int *first, const char *sep, const char *data, size_t n)
{
    int rc = *first ? 0 : pb_buf_puts(pr, sep);
    *first = 0;
    return rc ? rc : pb_buf_append(pr, data, n);
}

static int cmp_needle(const void *a, const void *b)
{
    const mn_needle_t *x = a, *y = b;
    return (x->at > y->at) - (x->at < y->at);
}

/* Draw the needles of task into nd (distinct keys where the task has
 * several, distinct values); returns how many. */
static int draw_needles(int task, pb_rng_t *rng, mn_needle_t *nd)
{
    int n = task == TK_MK1 || task == TK_MV || task == TK_MQ ? MN_NEEDLES : 1;
    int uuid = task == TK_MK3;
    for (int i = 0; i < n; i++) {
        int dup;
        do {
            if (task == TK_MV && i > 0)
                memcpy(nd[i].key, nd[0].key, sizeof nd[i].key);
            else
                draw_key(rng, uuid, nd[i].key);
            draw_value(rng, uuid, nd[i].value);
            dup = 0;
            for (int j = 0; j < i; j++)
                dup |= (task != TK_MV && strcmp(nd[i].key, nd[j].key) == 0) ||
                       strcmp(nd[i].value, nd[j].value) == 0;
        } while (dup);
        snprintf(nd[i].text, sizeof nd[i].text, "One of the special magic %ss for %.39s is: %.39s.",
                 uuid ? "uuid" : "number", nd[i].key, nd[i].value);
    }
    return n;
}

#define VT_VARS 5 /* one chain of RULER's num_hops = 4 */
#define VT_NOISE "The grass is green. The sky is blue. The sun is yellow. Here we go. There " \
                 "and back again."

/* variable_tracking: RULER's template; the chain's statements are lines
 * among lines of the repeated filler, the first (VAR X0 = value) before
 * filler line at_depth(lines, d, n), the other hops at sorted random
 * boundaries after it, so the chain reads in order. */
static int render_vt(const lc_params_t *p, int64_t bucket, int d, pb_rng_t *rng, pb_buf_t *pr,
                     pb_buf_t *ref)
{
    char names[VT_VARS][6], stmt[VT_VARS][32];
    size_t at[VT_VARS];
    int value = (int)pb_rng_range(rng, 10000, 99999), rc = 0;
    for (int i = 0; i < VT_VARS; i++) {
        int dup;
        do {
            for (int c = 0; c < 5; c++)
                names[i][c] = (char)('A' + pb_rng_below(rng, 26));
            names[i][5] = '\0';
            dup = 0;
            for (int j = 0; j < i; j++)
                dup |= strcmp(names[i], names[j]) == 0;
        } while (dup);
        if (i == 0)
            snprintf(stmt[i], sizeof stmt[i], "VAR %.5s = %d", names[i], value);
        else
            snprintf(stmt[i], sizeof stmt[i], "VAR %.5s = VAR %.5s", names[i], names[i - 1]);
    }
    char head[] = "Memorize and track the chain(s) of variable assignment hidden in the "
                  "following text.\n\n";
    char tail[320];
    snprintf(tail, sizeof tail,
             "\nQuestion: Find all variables that are assigned the value %d in the text "
             "above. Answer: According to the chain(s) of variable assignment in the text "
             "above, %d variables are assgined the value %d, they are: ",
             value, VT_VARS, value);
    /* lines joined by "\n": every filler line costs its length + 1 */
    int64_t room = bucket - (int64_t)(strlen(head) + strlen(tail)) - (VT_VARS - 1);
    for (int i = 0; i < VT_VARS; i++)
        room -= (int64_t)strlen(stmt[i]);
    if (room < 0)
        return PB_EINVAL;
    size_t lines = (size_t)(room / (int64_t)(sizeof VT_NOISE));
    at[0] = (size_t)ps__lc_at_depth((int64_t)lines, d, p->depths);
    for (int i = 1; i < VT_VARS; i++) {
        size_t j = (size_t)i, a = at[0] + (size_t)pb_rng_below(rng, lines - at[0] + 1);
        for (; j > 1 && at[j - 1] > a; j--) /* insertion sort keeps at[1..] sorted */
            at[j] = at[j - 1];
        at[j] = a;
    }
    int first = 1, k = 0;
    rc = pb_buf_puts(pr, head);
    for (size_t u = 0; u <= lines && rc == 0; u++) {
        for (; k < VT_VARS && at[k] == u && rc == 0; k++)
            rc = emit(pr, &first, "\n", stmt[k], strlen(stmt[k]));
        if (u < lines && rc == 0)
            rc = emit(pr, &first, "\n", VT_NOISE, sizeof VT_NOISE - 1);
    }
    rc = rc ? rc : pb_buf_puts(pr, tail);
    for (int i = 0; i < VT_VARS && rc == 0; i++)
        rc = pb_buf_printf(ref, "%s%s", i ? "\n" : "", names[i]);
    return rc;
}

int ps__lc_render_multi(const lc_params_t *p, int64_t bucket, int d, pb_rng_t *rng,
                        pb_buf_t *pr, pb_buf_t *ref, int *n_keys)
{
    if (p->task == TK_VT) {
        *n_keys = VT_VARS;
        return render_vt(p, bucket, d, rng, pr, ref);
    }
    mn_needle_t nd[MN_NEEDLES];
    const int lines = p->task == TK_MK2 || p->task == TK_MK3;
    const char *kind = p->task == TK_MK3 ? "uuid" : "number", *sep = lines ? "\n" : " ";
    int n = draw_needles(p->task, rng, nd);
    int n_ans = p->task == TK_MV || p->task == TK_MQ ? MN_NEEDLES : 1;
    char query[4 * 48 + 16] = "";
    pb_buf_t hay, head, tail;
    size_t *ends = NULL, n_ends = 0;
    int rc;

    /* multiquery asks "k1, k2, k3, and k4"; every other task one key */
    for (int i = 0; i < (p->task == TK_MQ ? MN_NEEDLES : 1); i++)
        snprintf(query + strlen(query), sizeof query - strlen(query), "%s%s%.39s",
                 i == 0 ? "" : ", ", i == MN_NEEDLES - 1 ? "and " : "", nd[i].key);
    pb_buf_init(&hay, LC_TEXT_MAX);
    pb_buf_init(&head, 1024);
    pb_buf_init(&tail, 1024);
    if (n_ans == 1)
        rc = pb_buf_printf(&head,
                           "A special magic %s is hidden within the following text. Make sure "
                           "to memorize it. I will quiz you about the %s afterwards.\n",
                           kind, kind);
    else
        rc = pb_buf_printf(&head,
                           "Some special magic %ss are hidden within the following text. Make "
                           "sure to memorize it. I will quiz you about the %ss afterwards.\n",
                           kind, kind);
    if (rc == 0 && n_ans == 1)
        rc = pb_buf_printf(&tail,
                           "\nWhat is the special magic %s for %s mentioned in the provided "
                           "text?\nThe special magic %s for %s mentioned in the provided text is",
                           kind, query, kind, query);
    else if (rc == 0)
        rc = pb_buf_printf(&tail,
                           "\nWhat are all the special magic %ss for %s mentioned in the "
                           "provided text?\nThe special magic %ss for %s mentioned in the "
                           "provided text are",
                           kind, query, kind, query);
    int64_t budget = bucket - (int64_t)(head.len + tail.len);
    for (int i = 0; i < n; i++)
        budget -= (int64_t)strlen(nd[i].text) + 1;
    if (rc == 0 && budget < 0)
        rc = PB_EINVAL;
    if (rc == 0 && lines)
        rc = needle_lines(rng, p->task == TK_MK3, nd[0].key, kind, budget, &hay, &ends, &n_ends);
    else if (rc == 0)
        rc = ps__lc_haystack(rng, 1, budget, &hay, &ends, &n_ends);
    if (rc)
        goto out;
    /* the asked (first) needle at the depth, the others anywhere */
    nd[0].at = (size_t)ps__lc_at_depth((int64_t)n_ends, d, p->depths);
    for (int i = 1; i < n; i++)
        nd[i].at = (size_t)pb_rng_below(rng, n_ends + 1);
    for (int i = 0; i < n_ans; i++)
        rc = rc ? rc : pb_buf_printf(ref, "%s%s", i ? "\n" : "", nd[i].value);
    qsort(nd + 1, (size_t)n - 1, sizeof nd[0], cmp_needle);
    rc = rc ? rc : pb_buf_append(pr, head.data, head.len);
    int first = 1, j = 0, done0 = 0;
    for (size_t u = 0; u <= n_ends && rc == 0; u++) {
        /* needles before unit u: the asked one first, then the others */
        for (;;) {
            const mn_needle_t *x = NULL;
            if (!done0 && nd[0].at == u)
                x = &nd[0], done0 = 1;
            else if (j + 1 < n && nd[j + 1].at == u)
                x = &nd[++j];
            if (x == NULL || rc)
                break;
            rc = emit(pr, &first, sep, x->text, strlen(x->text));
        }
        if (u < n_ends && rc == 0) {
            size_t a = u == 0 ? 0 : ends[u - 1] + 1;
            rc = emit(pr, &first, sep, hay.data + a, ends[u] - a);
        }
    }
    rc = rc ? rc : pb_buf_append(pr, tail.data, tail.len);
    *n_keys = lines ? (int)n_ends + 1 : n;
out:
    free(ends);
    pb_buf_free(&hay);
    pb_buf_free(&head);
    pb_buf_free(&tail);
    return rc;
}
