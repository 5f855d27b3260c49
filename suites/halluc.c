/* The hallucination suite (reference/suites.md 4.1, 4.2): a text analogue of
 * ELV-Halluc. A document of E segments carries typed facts; for one segment
 * the model judges a true caption, a misattributed one (a fact of another
 * segment) and an absent one, each alone, and InAcc, OutAcc and the SAH
 * ratio follow eval.py. Scoring and the aggregate are in halluc_score.c. */
#include "suites/suite.h"
#include "suites/suite_int.h"
#include "suites/longctx_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

#define HL_MIN_SEGS 2
#define HL_MAX_SEGS 16
#define HL_MAX_LEN (1 << 20) /* largest bucket, in length units */
#define HL_MAX_LENGTHS 32
/* Filler chars at most: a bucket of HL_MAX_LEN tokens at up to 8 chars per
 * token (as longctx). A part is that plus the facts and the question. */
#define HL_FILL_MAX ((int64_t)8 * HL_MAX_LEN)
#define HL_PART_MAX ((size_t)HL_FILL_MAX + 65536)
#define HL_SENT 160      /* a fact sentence or caption, terminator included */
#define HL_FIT_ROUNDS 6  /* filler rescales per item (each measures three prompts) */
#define HL_N_ASPECTS 4

static const ps_task_def_t hl_tasks[] = {
    {"sah", "Semantic aggregation hallucination: a document of E segments with typed facts; "
            "per item three yes/no questions about one segment (true caption, a fact "
            "misattributed from another segment, an absent fact); InAcc, OutAcc, SAH ratio",
     NULL},
};

/* Vocabularies: every word of a list occurs in no other list, in no template
 * and not in longctx's prose filler, and each item draws a component at
 * most once, so a fact is unique in its document and an absent fact shares
 * no component with it. */
static const char *const hl_material[] = {
    "copper", "velvet", "marble", "bamboo",  "crystal", "leather", "granite",
    "porcelain", "walnut", "ivory", "pewter", "linen",  "bronze",  "cedar",
    "wicker", "enamel", "chrome", "slate",  "canvas",  "mahogany"};
static const char *const hl_thing[] = {
    "lantern", "compass", "teapot",  "saxophone", "chessboard", "hourglass", "typewriter",
    "telescope", "trumpet", "kettle", "birdcage", "candelabra", "accordion", "globe",
    "mirror", "sundial", "gramophone", "abacus", "anvil", "harp"};
static const char *const hl_role[] = {
    "dentist", "juggler", "plumber", "astronaut", "referee", "violinist", "carpenter",
    "surgeon", "chemist", "jockey", "goalkeeper", "architect", "florist", "locksmith",
    "pharmacist", "sculptor", "mechanic", "lifeguard", "tailor", "cashier"};
static const char *const hl_act[] = {
    "juggled torches",    "launched kites",      "stacked crates",    "counted coins",
    "folded maps",        "planted tulips",      "tuned pianos",      "sorted envelopes",
    "carved pumpkins",    "knitted scarves",     "washed trucks",     "hung banners",
    "unloaded barrels",   "sharpened pencils",   "inflated balloons", "rang bells",
    "fed pigeons",        "swept chimneys",      "mended nets",       "shelled peanuts"};
static const char *const hl_structure[] = {
    "ferry",   "lighthouse", "tram",    "carousel", "stadium",   "fountain",  "scarecrow",
    "tractor", "balcony",    "gazebo",  "airship",  "submarine", "caravan",   "pagoda",
    "monument", "kiosk",     "trolley", "canoe",    "helicopter", "observatory"};
static const char *const hl_quality[] = {
    "crimson", "striped", "rusty",    "turquoise", "checkered", "dented",  "glittering",
    "spotted", "lopsided", "scorched", "frosted",  "muddy",     "violet",  "tilted",
    "charred", "enormous", "cracked",  "golden",   "purple",    "speckled"};
static const char *const hl_event[] = {
    "ballot",  "parade",    "festival",   "tournament", "concert",    "auction",  "museum",
    "ceremony", "exhibition", "marathon", "regatta",    "lottery",    "carnival", "rehearsal",
    "conference", "expedition", "workshop", "pageant",  "census",     "referendum"};
static const char *const hl_claim[] = {
    "starts on Tuesday",        "ends at midnight",         "was postponed twice",
    "needs more volunteers",    "raised nine thousand dollars", "moves to Lisbon",
    "sold out quickly",         "lost its sponsor",         "doubled in size",
    "welcomes dogs",            "returns next July",        "broke a record",
    "costs twelve euros",       "hired a director",         "begins after sunset",
    "requires tickets",         "was cancelled abruptly",   "attracted four hundred guests",
    "obeys strict rules",       "will be televised"};
/* Segment topics (headers); E of them per document, distinct. */
static const char *const hl_topic[] = {
    "Harbor News",   "Weather Desk",  "City Hall",    "Sports Corner", "Science Hour",
    "Arts Review",   "Traffic Watch", "Health Notes", "Travel Diary",  "Food Column",
    "Tech Update",   "Music Scene",   "School Board", "Police Log",    "Business Brief",
    "Film Club",     "Nature Walk",   "Opinion Page"};

/* 16 segments and an absent fact draw 17 of a list; draws index 32 at most. */
#define HL_LIST_OK(l) (PB_ARRAY_LEN(l) > HL_MAX_SEGS && PB_ARRAY_LEN(l) <= 32)
_Static_assert(HL_LIST_OK(hl_material) && HL_LIST_OK(hl_thing) && HL_LIST_OK(hl_role) &&
                   HL_LIST_OK(hl_act) && HL_LIST_OK(hl_structure) && HL_LIST_OK(hl_quality) &&
                   HL_LIST_OK(hl_event) && HL_LIST_OK(hl_claim) && HL_LIST_OK(hl_topic),
               "a vocabulary list must hold 17 to 32 entries");

/* An aspect: a fact is (a, b) from two lists, said in the document by doc
 * and in a caption by cap (both "%s ... %s"); fact is the phrase both
 * contain verbatim. Order = ELV-Halluc's four aspects. */
typedef struct hl_aspect {
    const char *name;
    const char *const *a, *const *b;
    size_t na, nb;
    const char *doc, *cap, *fact;
} hl_aspect_t;

static const hl_aspect_t hl_aspects[HL_N_ASPECTS] = {
    {"object", hl_material, hl_thing, PB_ARRAY_LEN(hl_material), PB_ARRAY_LEN(hl_thing),
     "The %s %s was on display.", "The %s %s is on display.", "%s %s"},
    {"action", hl_role, hl_act, PB_ARRAY_LEN(hl_role), PB_ARRAY_LEN(hl_act),
     "Later, the %s %s.", "The %s %s.", "%s %s"},
    {"attribute", hl_structure, hl_quality, PB_ARRAY_LEN(hl_structure), PB_ARRAY_LEN(hl_quality),
     "Everyone saw that the %s was %s.", "The %s was %s.", "%s was %s"},
    {"statement", hl_event, hl_claim, PB_ARRAY_LEN(hl_event), PB_ARRAY_LEN(hl_claim),
     "A spokesperson announced: \"The %s %s.\"", "A spokesperson announced that the %s %s.",
     "%s %s"},
};

static const char hl_head_fmt[] = "The following document has %d segments.\n\n";
static const char hl_tail_fmt[] = "\n\nIs the following caption about segment %d totally "
                                  "correct? Reply with 'Yes' or 'No' only.\nCaption: %s";
static const char *const hl_refs[3] = {"Yes", "No", "No"};

/* ---- params ---- */

/* Parsed, validated params; also the run state. distances: 0 entries =
 * the other segment is uniform among the rest. */
typedef struct hl_params {
    int n_lengths, n_segs, n_aspects, n_dists;
    int64_t lengths[HL_MAX_LENGTHS]; /* ascending, distinct */
    int segs[HL_MAX_SEGS];           /* ascending, distinct */
    int aspects[HL_N_ASPECTS];       /* indices into hl_aspects, ascending */
    int dists[HL_MAX_SEGS];          /* ascending, distinct */
} hl_params_t;

/* The total length of the k longest words of w[0, n) (k <= n). */
static size_t top_len(const char *const *w, size_t n, int k)
{
    size_t used[32] = {0}, sum = 0; /* lists have at most 32 words */
    for (int j = 0; j < k; j++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (!used[i] && (best == n || strlen(w[i]) > strlen(w[best])))
                best = i;
        used[best] = 1;
        sum += strlen(w[best]);
    }
    return sum;
}

/* The longest prompt of E segments without filler: a segment draws each
 * list's words without replacement, so the E longest bound the sum. A
 * bucket below it cannot hold the facts (in characters; tokens are fewer). */
static int64_t hl_min_len(int E)
{
    size_t n = (size_t)E * strlen("Segment 16: \n\n\n") +
               top_len(hl_topic, PB_ARRAY_LEN(hl_topic), E), cap = 0;
    for (int a = 0; a < HL_N_ASPECTS; a++) {
        const hl_aspect_t *x = &hl_aspects[a];
        n += (size_t)E * (strlen(x->doc) + 1) /* + the joining space */ +
             top_len(x->a, x->na, E) + top_len(x->b, x->nb, E);
        size_t c = strlen(x->cap) + top_len(x->a, x->na, 1) + top_len(x->b, x->nb, 1);
        cap = c > cap ? c : cap;
    }
    return (int64_t)(strlen(hl_head_fmt) + strlen(hl_tail_fmt) + cap + 8 + n);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A list of at most max_n integers (or one integer) in [lo, hi] into out,
 * sorted and distinct; absent or null gives dflt. Errors name field. */
static int parse_ints(const json_t *v, const char *field, const int64_t *dflt, size_t n_dflt,
                      size_t max_n, int64_t lo, int64_t hi, int64_t *out, int *n_out,
                      pb_err_t *err)
{
    size_t n = 0;
    if (v == NULL || json_is_null(v)) {
        for (; n < n_dflt; n++)
            out[n] = dflt[n];
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0 || json_array_size(v) > max_n)
            goto shape;
        for (; n < json_array_size(v); n++)
            if (pb_json_as_int(json_array_get(v, n), &out[n]))
                goto shape;
    } else if (pb_json_as_int(v, &out[0]) == 0) {
        n = 1;
    } else {
        goto shape;
    }
    for (size_t i = 0; i < n; i++)
        if (out[i] < lo || out[i] > hi)
            return pb_err_set(err, PB_EINVAL, field, "%s must lie in [%lld, %lld] (got %lld)",
                              field, (long long)lo, (long long)hi, (long long)out[i]);
    qsort(out, n, sizeof *out, cmp_i64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || out[k - 1] != out[i])
            out[k++] = out[i];
    *n_out = (int)k;
    return 0;
shape:
    return pb_err_set(err, PB_EINVAL, field,
                      "%s must be a non-empty list of at most %zu integers (or one integer)",
                      field, max_n);
}

/* aspects: a non-empty list of aspect names (or one name). */
static int parse_aspects(const json_t *v, hl_params_t *p, pb_err_t *err)
{
    int want[HL_N_ASPECTS] = {0};
    if (v == NULL || json_is_null(v)) {
        for (int a = 0; a < HL_N_ASPECTS; a++)
            want[a] = 1;
    } else {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        if (n == 0 || !(json_is_array(v) || json_is_string(v)))
            goto bad;
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_is_array(v) ? json_array_get(v, i) : v);
            int a = 0;
            while (s && a < HL_N_ASPECTS && strcmp(hl_aspects[a].name, s) != 0)
                a++;
            if (s == NULL || a == HL_N_ASPECTS)
                goto bad;
            want[a] = 1;
        }
    }
    p->n_aspects = 0;
    for (int a = 0; a < HL_N_ASPECTS; a++)
        if (want[a])
            p->aspects[p->n_aspects++] = a;
    return 0;
bad:
    return pb_err_set(err, PB_EINVAL, "aspects",
                      "aspects must be a non-empty list of \"object\", \"action\", "
                      "\"attribute\", \"statement\"");
}

/* Validate params (NULL = all defaults) into p. err->field is the param name. */
static int hl_parse(const char *task, const json_t *params, hl_params_t *p, pb_err_t *err)
{
    static const char *const keys[] = {"lengths", "segments", "aspects", "distances", NULL};
    static const int64_t dlen[] = {8192, 16384, 32768}, dseg[] = {2, 4, 8, 16};
    int64_t v[HL_MAX_LENGTHS];
    int rc, n;

    memset(p, 0, sizeof *p);
    if (task == NULL || strcmp(task, hl_tasks[0].name) != 0)
        return pb_err_set(err, PB_EINVAL, "", "unknown halluc task \"%s\"", task ? task : "");
    if (params != NULL && !json_is_object(params))
        return pb_err_set(err, PB_EINVAL, "", "params must be an object");
    if ((rc = pb_json_only_keys(params, keys, "", err)))
        return rc;
#define GET(k) (params ? json_object_get(params, k) : NULL)
    if ((rc = parse_ints(GET("segments"), "segments", dseg, PB_ARRAY_LEN(dseg), HL_MAX_SEGS,
                         HL_MIN_SEGS, HL_MAX_SEGS, v, &n, err)))
        return rc;
    p->n_segs = n;
    for (int i = 0; i < n; i++)
        p->segs[i] = (int)v[i];
    int64_t need = hl_min_len(p->segs[p->n_segs - 1]);
    if ((rc = parse_ints(GET("lengths"), "lengths", dlen, PB_ARRAY_LEN(dlen), HL_MAX_LENGTHS,
                         hl_min_len(HL_MIN_SEGS), HL_MAX_LEN, p->lengths, &p->n_lengths, err)))
        return rc;
    if (p->lengths[0] < need)
        return pb_err_set(err, PB_EINVAL, "lengths",
                          "lengths must be at least %lld for %d segments (got %lld)",
                          (long long)need, p->segs[p->n_segs - 1], (long long)p->lengths[0]);
    if ((rc = parse_aspects(GET("aspects"), p, err)))
        return rc;
    const json_t *d = GET("distances");
    if (d != NULL && !json_is_null(d)) {
        if ((rc = parse_ints(d, "distances", NULL, 0, HL_MAX_SEGS - 1, 1, HL_MAX_SEGS - 1, v, &n,
                             err)))
            return rc;
        p->n_dists = n;
        for (int i = 0; i < n; i++)
            p->dists[i] = (int)v[i];
        if (p->dists[0] >= p->segs[0])
            return pb_err_set(err, PB_EINVAL, "distances",
                              "distances need one below the smallest segment count %d "
                              "(got smallest %d)", p->segs[0], p->dists[0]);
    }
#undef GET
    return 0;
}

static json_t *int_array(const int64_t *v64, const int *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(v64 ? v64[i] : v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *hl_schema(const char *task)
{
    if (task == NULL || strcmp(task, hl_tasks[0].name) != 0)
        return NULL;
    char len_desc[400];
    snprintf(len_desc, sizeof len_desc,
             "document-length buckets in the run's unit (tokens under a tokenizer, else "
             "characters); a list of at most %d, or one integer; every caption's prompt is at "
             "most its bucket, filler fills the rest; the smallest must hold the largest "
             "segment count's facts (%lld for 16 segments)",
             HL_MAX_LENGTHS, (long long)hl_min_len(HL_MAX_SEGS));
    return json_pack(
        "{s:{s:s, s:[i,i,i], s:s, s:I, s:i},"
        " s:{s:s, s:[i,i,i,i], s:s, s:i, s:i},"
        " s:{s:s, s:[s,s,s,s], s:s},"
        " s:{s:s, s:n, s:s, s:i, s:i}}",
        "lengths", "type", "integer_list", "default", 8192, 16384, 32768, "description",
        len_desc, "min", (json_int_t)hl_min_len(HL_MIN_SEGS), "max", HL_MAX_LEN,
        "segments", "type", "integer_list", "default", 2, 4, 8, 16, "description",
        "segment counts E swept: item i has E = segments[i mod n] (sorted), so every bucket "
        "covers every E evenly",
        "min", HL_MIN_SEGS, "max", HL_MAX_SEGS,
        "aspects", "type", "string_list", "default", "object", "action", "attribute",
        "statement", "description",
        "fact types asked about, cycled after the segment count (every document holds all "
        "four)",
        "distances", "type", "integer_list", "default", "description",
        "null: the misattributed fact comes from a uniformly random other segment; a list: "
        "|e - e'| cycles through the distances below E (the smallest must be below the "
        "smallest segment count)",
        "min", 1, "max", HL_MAX_SEGS - 1);
}

static int hl_normalize(const char *task, const json_t *params, json_t **out, pb_err_t *err)
{
    hl_params_t p;
    *out = NULL;
    int rc = hl_parse(task, params, &p, err);
    if (rc)
        return rc;
    json_t *asp = json_array();
    for (int i = 0; asp && i < p.n_aspects; i++)
        if (json_array_append_new(asp, json_string(hl_aspects[p.aspects[i]].name))) {
            json_decref(asp);
            asp = NULL;
        }
    json_t *len = int_array(p.lengths, NULL, p.n_lengths), *seg = int_array(NULL, p.segs, p.n_segs);
    json_t *dist = p.n_dists ? int_array(NULL, p.dists, p.n_dists) : json_null();
    if (asp && len && seg && dist)
        *out = json_pack("{s:O, s:O, s:O, s:O}", "lengths", len, "segments", seg, "aspects", asp,
                         "distances", dist);
    json_decref(asp);
    json_decref(len);
    json_decref(seg);
    json_decref(dist);
    return *out ? 0 : pb_err_set(err, PB_ENOMEM, "", "out of memory");
}

static int hl_buckets(const char *task, const json_t *params, int64_t **out, size_t *n)
{
    hl_params_t p;
    *out = NULL;
    *n = 0;
    int rc = hl_parse(task, params, &p, NULL);
    if (rc)
        return rc;
    return ps__copy_buckets(p.lengths, (size_t)p.n_lengths, out, n);
}

/* hl_parse as ps__prepare_parsed calls it. */
static int hl_parse_state(const char *task, const json_t *params, void *out)
{
    return hl_parse(task, params, out, NULL);
}

static int hl_prepare(ps_run_t *run)
{
    return ps__prepare_parsed(run, sizeof(hl_params_t), hl_parse_state);
}

/* ---- generation ---- */

/* One item's choices before any filler: the segments' fact sentences, the
 * three captions and their fact phrases (gt, misattributed, absent). */
typedef struct hl_item {
    int E, e, src, aspect;
    int topic[HL_MAX_SEGS];
    char sent[HL_MAX_SEGS][HL_N_ASPECTS][HL_SENT];
    char cap[3][HL_SENT];
    char fact[3][HL_SENT];
} hl_item_t;

/* k distinct values of [0, n) into out, uniformly (partial Fisher-Yates). */
static void draw_distinct(pb_rng_t *rng, int n, int k, int *out)
{
    int idx[32];
    for (int i = 0; i < n; i++)
        idx[i] = i;
    for (int i = 0; i < k; i++) {
        int j = i + (int)pb_rng_below(rng, (uint64_t)(n - i));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        out[i] = idx[i];
    }
}

/* The target segment e, the source e' of the misattributed fact and their
 * distance for item idx: E, aspect and distance cycle with the index so
 * every bucket covers them evenly. */
static void hl_pick(const hl_params_t *p, uint64_t idx, pb_rng_t *rng, hl_item_t *x)
{
    uint64_t ns = (uint64_t)p->n_segs, na = (uint64_t)p->n_aspects;
    x->E = p->segs[idx % ns];
    x->aspect = p->aspects[(idx / ns) % na];
    if (p->n_dists == 0) {
        x->e = 1 + (int)pb_rng_below(rng, (uint64_t)x->E);
        x->src = 1 + (int)pb_rng_below(rng, (uint64_t)x->E - 1);
        x->src += x->src >= x->e;
        return;
    }
    int nv = 0;
    while (nv < p->n_dists && p->dists[nv] < x->E)
        nv++; /* >= 1: the smallest distance is below the smallest E */
    int d = p->dists[(idx / (ns * na)) % (uint64_t)nv];
    /* uniform over the 2 (E - d) ordered pairs at distance d */
    int k = (int)pb_rng_below(rng, 2 * (uint64_t)(x->E - d));
    int lo = 1 + k % (x->E - d);
    x->e = k < x->E - d ? lo : lo + d;
    x->src = k < x->E - d ? lo + d : lo;
}

static void hl_choose(const hl_params_t *p, uint64_t idx, pb_rng_t *rng, hl_item_t *x)
{
    int ia[HL_MAX_SEGS + 1], ib[HL_MAX_SEGS + 1];
    memset(x, 0, sizeof *x);
    hl_pick(p, idx, rng, x);
    draw_distinct(rng, (int)PB_ARRAY_LEN(hl_topic), x->E, x->topic);
    for (int a = 0; a < HL_N_ASPECTS; a++) {
        const hl_aspect_t *as = &hl_aspects[a];
        /* E facts for the segments, one more (index E) for the absent caption */
        draw_distinct(rng, (int)as->na, x->E + 1, ia);
        draw_distinct(rng, (int)as->nb, x->E + 1, ib);
        for (int s = 0; s < x->E; s++)
            snprintf(x->sent[s][a], HL_SENT, as->doc, as->a[ia[s]], as->b[ib[s]]);
        if (a != x->aspect)
            continue;
        const int which[3] = {x->e - 1, x->src - 1, x->E};
        for (int k = 0; k < 3; k++) {
            snprintf(x->cap[k], HL_SENT, as->cap, as->a[ia[which[k]]], as->b[ib[which[k]]]);
            snprintf(x->fact[k], HL_SENT, as->fact, as->a[ia[which[k]]], as->b[ib[which[k]]]);
        }
    }
}

/* Segment s (0-based) into doc: its header, then its four fact sentences
 * in random order at random sentence boundaries of budget chars of filler. */
static int hl_segment(const hl_item_t *x, int s, int64_t budget, pb_rng_t *rng, pb_buf_t *doc)
{
    pb_buf_t hay;
    size_t *ends = NULL, n_ends = 0;
    int order[HL_N_ASPECTS], slot[HL_N_ASPECTS], first = 1;
    pb_buf_init(&hay, HL_PART_MAX);
    int rc = pb_buf_printf(doc, "%sSegment %d: %s\n", s ? "\n\n" : "", s + 1,
                           hl_topic[x->topic[s]]);
    if (rc == 0 && budget > 1)
        rc = ps__lc_haystack(rng, 1, budget - 1, &hay, &ends, &n_ends);
    if (rc)
        goto out;
    draw_distinct(rng, HL_N_ASPECTS, HL_N_ASPECTS, order);
    for (int k = 0; k < HL_N_ASPECTS; k++)
        slot[k] = (int)pb_rng_below(rng, n_ends + 1);
    for (int k = 1; k < HL_N_ASPECTS; k++) /* slots ascending; facts keep order's order */
        for (int j = k; j > 0 && slot[j - 1] > slot[j]; j--) {
            int t = slot[j];
            slot[j] = slot[j - 1];
            slot[j - 1] = t;
        }
    for (size_t i = 0, k = 0; rc == 0 && i <= n_ends; i++) {
        for (; rc == 0 && k < HL_N_ASPECTS && slot[k] == (int)i; k++, first = 0)
            rc = pb_buf_printf(doc, "%s%s", first ? "" : " ", x->sent[s][order[k]]);
        if (rc == 0 && i < n_ends) {
            size_t from = i ? ends[i - 1] + 1 : 0;
            rc = pb_buf_printf(doc, "%s%.*s", first ? "" : " ", (int)(ends[i] - from),
                               hay.data + from);
            first = 0;
        }
    }
out:
    free(ends);
    pb_buf_free(&hay);
    return rc;
}

/* The three prompts with filler chars of filler spread over the segments,
 * each segment's drawn from a copy of rng (so a rebuild is the same text);
 * *len is the longest in the run's unit. */
static int hl_build(const ps_run_t *run, const hl_item_t *x, int64_t filler, const pb_rng_t *rng,
                    pb_buf_t parts[3], int64_t *len)
{
    pb_rng_t r = *rng;
    int rc = 0;
    *len = 0;
    for (int k = 0; k < 3; k++)
        pb_buf_reset(&parts[k]);
    rc = pb_buf_printf(&parts[0], hl_head_fmt, x->E);
    for (int s = 0; rc == 0 && s < x->E; s++)
        rc = hl_segment(x, s, filler / x->E + (s < filler % x->E), &r, &parts[0]);
    for (int k = 1; rc == 0 && k < 3; k++)
        rc = pb_buf_append(&parts[k], parts[0].data, parts[0].len);
    for (int k = 0; rc == 0 && k < 3; k++) {
        rc = pb_buf_printf(&parts[k], hl_tail_fmt, x->e, x->cap[k]);
        rc = rc ? rc : pb_buf_cstr(&parts[k]);
        int64_t n = rc ? 0 : ps_run_length(run, parts[k].data, parts[k].len);
        if (n > *len)
            *len = n;
    }
    return rc;
}

/* Fill the three prompts up to the bucket: measure the bare facts, then
 * rescale the filler by the measured filler length a bounded number of
 * times, keeping the largest filler that fits. In characters the first
 * round already fits; a tokenizer needs a few. */
static int hl_fit(const ps_run_t *run, const hl_item_t *x, const pb_rng_t *rng,
                  pb_buf_t parts[3], int64_t *len)
{
    int64_t bucket = run->bucket, close = bucket - bucket / 32, bare, t, best = 0, best_t, built;
    int rc = hl_build(run, x, 0, rng, parts, &bare);
    if (rc == 0 && bare > bucket)
        rc = PB_EINVAL;
    if (rc)
        return rc;
    t = best_t = bare;
    built = 0;
    int64_t f = bucket - bare < HL_FILL_MAX ? bucket - bare : HL_FILL_MAX;
    for (int round = 0; round < HL_FIT_ROUNDS && f > 0; round++) {
        if ((rc = hl_build(run, x, f, rng, parts, &t)))
            return rc;
        built = f;
        if (t <= bucket && t > best_t) {
            best = f;
            best_t = t;
        }
        if ((t <= bucket && t >= close) || t <= bare)
            break;
        /* the filler's length is about proportional to its chars: aim just
         * below the bucket */
        int64_t next = (int64_t)((double)f * (double)(bucket - bare) / (double)(t - bare) *
                                 (t > bucket ? 0.995 : 1.0));
        f = next != f ? next : t > bucket ? f - 1 : f + 1;
        f = f < HL_FILL_MAX ? f : HL_FILL_MAX;
        if (f == built)
            break; /* capped: nothing new to try */
    }
    if (built != best)
        rc = hl_build(run, x, best, rng, parts, &t);
    *len = t;
    return rc;
}

static int hl_generate(const ps_run_t *run, uint64_t idx, ps_item_t *out)
{
    const hl_params_t *p = run->state;
    hl_item_t *x = NULL;
    pb_buf_t parts[3], joined, ref;
    pb_rng_t rng;
    int64_t len = 0;
    int rc = PB_ENOMEM;

    memset(out, 0, sizeof *out);
    if (p == NULL || run->bucket < hl_min_len(HL_MIN_SEGS) || run->bucket > HL_MAX_LEN)
        return PB_EINVAL;
    for (int k = 0; k < 3; k++)
        pb_buf_init(&parts[k], HL_PART_MAX);
    pb_buf_init(&joined, 3 * HL_PART_MAX + 2);
    pb_buf_init(&ref, 64);
    if ((x = malloc(sizeof *x)) == NULL)
        goto out;
    pb_rng_seed(&rng, run->key, idx);
    hl_choose(p, idx, &rng, x);
    if ((rc = hl_fit(run, x, &rng, parts, &len)))
        goto out;
    for (int k = 0; rc == 0 && k < 3; k++) {
        rc = pb_buf_printf(&joined, "%s%s", k ? "\n" : "", parts[k].data);
        rc = rc ? rc : pb_buf_printf(&ref, "%s%s", k ? "\n" : "", hl_refs[k]);
    }
    rc = rc ? rc : pb_buf_cstr(&joined);
    rc = rc ? rc : pb_buf_cstr(&ref);
    if (rc)
        goto out;
    rc = PB_ENOMEM;
    out->parts = calloc(3, sizeof *out->parts);
    out->part_refs = calloc(3, sizeof *out->part_refs);
    if (out->parts == NULL || out->part_refs == NULL)
        goto out;
    out->n_parts = 3;
    for (int k = 0; k < 3; k++) {
        out->parts[k] = parts[k].data; /* now owned by the item */
        parts[k].data = NULL;
        if ((out->part_refs[k] = strdup(hl_refs[k])) == NULL)
            goto out;
    }
    out->meta = json_pack("{s:i, s:i, s:s, s:i, s:i, s:s, s:s, s:s, s:[s,s], s:I}", "segments",
                          x->E, "distance", abs(x->e - x->src), "aspect",
                          hl_aspects[x->aspect].name, "segment", x->e, "source", x->src, "gt",
                          x->fact[0], "misattributed", x->fact[1], "absent", x->fact[2],
                          "choices", "Yes", "No", "length", (json_int_t)len);
    if (out->meta == NULL)
        goto out;
    ps__item_finish(out, run, idx, len, &joined, &ref);
    rc = 0;
out:
    free(x);
    for (int k = 0; k < 3; k++)
        pb_buf_free(&parts[k]);
    pb_buf_free(&joined);
    pb_buf_free(&ref);
    if (rc)
        ps_item_clear(out);
    return rc;
}

/* Pair accuracy by segment count, by |e - e'| and by aspect. */
static const char *const hl_breakdown[] = {"segments", "distance", "aspect", NULL};
static const char *const hl_metrics[] = {"in_acc", "out_acc", NULL};

const ps_suite_t ps__suite_halluc = {
    .name = "halluc",
    .description = "Hallucination: a text analogue of ELV-Halluc's semantic aggregation "
                   "hallucination; caption triplets (true, misattributed from another "
                   "segment, absent) about one segment of a multi-segment document, by "
                   "document length and broken down by segment count, distance and aspect",
    .version = 1,
    .bucket_unit = "chars",
    .tasks = hl_tasks,
    .n_tasks = PB_ARRAY_LEN(hl_tasks),
    .breakdown = hl_breakdown,
    .metrics = hl_metrics,
    .schema = hl_schema,
    .normalize = hl_normalize,
    .buckets = hl_buckets,
    .prepare = hl_prepare,
    .release = ps__release_state,
    .generate = hl_generate,
    .score = ps__hl_score,
    .aggregate = ps__hl_aggregate,
};
