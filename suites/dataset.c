/* User dataset lines (suites/dataset.h). A generate-mode line is
 * {"prompt", "references" | "reference", "metadata"?, "bucket"?, "id"?}, or
 * for halluc {"parts", "references" one per part, ...}; a retrieval line is
 * {"type": "doc" | "query" | "qrel", ...}, checked by dataset_retrieval.c
 * line by line and as a whole. Every error names the line. */
#include "suites/dataset.h"
#include "suites/dataset_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/rng.h"
#include "common/util.h"

#define REF_TEXT_MAX (64u << 20) /* a joined reference is cut by the line cap anyway */

int ps_dataset_next_line(const char *data, size_t len, size_t *pos, const char **line, size_t *n,
                         size_t *lineno)
{
    while (*pos < len) {
        const char *s = data + *pos;
        const char *nl = memchr(s, '\n', len - *pos);
        size_t k = nl ? (size_t)(nl - s) : len - *pos;
        *pos += k + (nl != NULL);
        ++*lineno;
        size_t m = k;
        if (m && s[m - 1] == '\r')
            m--;
        size_t i = 0;
        while (i < m && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == m)
            continue; /* blank lines are allowed and skipped */
        *line = s;
        *n = m;
        return 1;
    }
    return 0;
}

/* err = "line N: <message>", field "line N"; returns PB_EINVAL. */
static int line_err(pb_err_t *err, size_t lineno, const char *fmt, const char *a)
{
    char field[32], msg[200];
    snprintf(field, sizeof field, "line %zu", lineno);
    snprintf(msg, sizeof msg, fmt, a ? a : "");
    return pb_err_set(err, PB_EINVAL, field, "%s: %s", field, msg);
}

int ps__ds_line_errf(pb_err_t *err, size_t lineno, const char *fmt, ...)
{
    char field[32], msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(field, sizeof field, "line %zu", lineno);
    return pb_err_set(err, PB_EINVAL, field, "%s: %s", field, msg);
}

static int suite_multi_ref(const char *suite)
{
    /* longctx's string_match_all reads one expected value per line; the
     * exact-match suites (arithmetic, table) compare one reference. */
    return strcmp(suite, "longctx") == 0 || strcmp(suite, "halluc") == 0;
}

/* A JSON array of 1..max strings? */
static int str_array(const json_t *a, size_t max)
{
    size_t i;
    const json_t *v;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > max)
        return 0;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v))
            return 0;
    }
    return 1;
}

static int check_generate(const char *suite, const json_t *o, size_t lineno, pb_err_t *err)
{
    static const char *const keys[] = {"prompt", "reference", "references", "metadata",
                                       "bucket", "id", "parts", NULL};
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k))
            i++;
        if (keys[i] == NULL)
            return line_err(err, lineno,
                            "unknown key \"%.40s\" (allowed: prompt, reference(s), metadata, "
                            "bucket, id, parts)",
                            k);
    }
    const json_t *prompt = json_object_get(o, "prompt");
    const json_t *parts = json_object_get(o, "parts");
    const json_t *ref = json_object_get(o, "reference");
    const json_t *refs = json_object_get(o, "references");
    const json_t *meta = json_object_get(o, "metadata");
    const json_t *id = json_object_get(o, "id");
    if (prompt && !json_is_string(prompt))
        return line_err(err, lineno, "\"prompt\" must be a string%s", NULL);
    if (parts && strcmp(suite, "halluc") != 0)
        return line_err(err, lineno, "\"parts\" is for halluc lines only, not %s", suite);
    if (parts && !str_array(parts, PS_MAX_PARTS))
        return line_err(err, lineno, "\"parts\" must be an array of 1 to 8 strings%s", NULL);
    /* halluc scores a caption triplet: the true caption, then an in-video
     * and an out-of-video hallucination, each a yes/no question */
    if (strcmp(suite, "halluc") == 0 && json_array_size(parts) != 3)
        return line_err(err, lineno, "a halluc line needs \"parts\": 3 yes/no questions%s", NULL);
    if (!prompt && !parts)
        return line_err(err, lineno, "\"prompt\" (a string) is required%s", NULL);
    if ((ref != NULL) == (refs != NULL))
        return line_err(err, lineno, "give exactly one of \"reference\" and \"references\"%s",
                        NULL);
    if (ref && !json_is_string(ref))
        return line_err(err, lineno, "\"reference\" must be a string%s", NULL);
    if (refs && !str_array(refs, PS_DATASET_MAX_REFS))
        return line_err(err, lineno, "\"references\" must be an array of 1 to 256 strings%s",
                        NULL);
    size_t nref = refs ? json_array_size(refs) : 1;
    if (parts && nref != json_array_size(parts))
        return line_err(err, lineno, "\"references\" must hold one answer per part%s", NULL);
    if (!parts && nref > 1 && !suite_multi_ref(suite))
        return line_err(err, lineno, "%s scores exactly one reference", suite);
    if (meta && !json_is_object(meta))
        return line_err(err, lineno, "\"metadata\" must be an object%s", NULL);
    if (id && !json_is_string(id) && !json_is_integer(id))
        return line_err(err, lineno, "\"id\" must be a string or an integer%s", NULL);
    return 0;
}

/* The line's bucket: an integer in [0, 2^53], default 0. */
static int line_bucket(const json_t *o, size_t lineno, int64_t *bucket, pb_err_t *err)
{
    const json_t *b = json_object_get(o, "bucket");
    *bucket = 0;
    if (b == NULL)
        return 0;
    if (pb_json_as_int(b, bucket) || *bucket < 0 || *bucket > ((int64_t)1 << 53))
        return line_err(err, lineno, "\"bucket\" must be an integer from 0 to 2^53%s", NULL);
    return 0;
}

/* Parse and check one line; *out is the object (new reference). */
int ps__ds_parse_line(const char *suite, const char *line, size_t n, size_t lineno,
                      json_t **out, int64_t *bucket, pb_err_t *err)
{
    json_error_t jerr;
    int rc;
    *out = NULL;
    if (n > PS_DATASET_LINE_MAX)
        return line_err(err, lineno, "line longer than %s bytes", "4 MiB");
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (o == NULL)
        return line_err(err, lineno, "malformed JSON: %.120s", jerr.text);
    if (!json_is_object(o))
        rc = line_err(err, lineno, "a line must be a JSON object%s", NULL);
    else if (strcmp(suite, PS_DATASET_RETRIEVAL) == 0)
        rc = ps__ds_check_retrieval(o, lineno, err);
    else
        rc = check_generate(suite, o, lineno, err);
    if (rc == 0)
        rc = line_bucket(o, lineno, bucket, err);
    if (rc)
        json_decref(o);
    else
        *out = o;
    return rc;
}

int ps_dataset_check_line(const char *suite, const char *line, size_t n, size_t lineno,
                          int64_t *bucket, pb_err_t *err)
{
    json_t *o = NULL;
    int rc = ps__ds_parse_line(suite, line, n, lineno, &o, bucket, err);
    json_decref(o);
    return rc;
}

void ps_dataset_stats_free(ps_dataset_stats_t *st)
{
    free(st->buckets);
    free(st->counts);
    memset(st, 0, sizeof *st);
}

/* Count one line in bucket b, keeping buckets ascending. */
static int stats_add(ps_dataset_stats_t *st, size_t *cap, int64_t b)
{
    size_t lo = 0, hi = st->n_buckets;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (st->buckets[mid] < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < st->n_buckets && st->buckets[lo] == b) {
        st->counts[lo]++;
        return 0;
    }
    if (st->n_buckets >= PS_DATASET_MAX_BUCKETS)
        return PB_ETOOBIG;
    size_t c = *cap;
    if (pb_grow(&st->buckets, &c, st->n_buckets + 1, sizeof *st->buckets, 16))
        return PB_ENOMEM;
    if (pb_grow(&st->counts, cap, st->n_buckets + 1, sizeof *st->counts, 16))
        return PB_ENOMEM;
    memmove(st->buckets + lo + 1, st->buckets + lo, (st->n_buckets - lo) * sizeof *st->buckets);
    memmove(st->counts + lo + 1, st->counts + lo, (st->n_buckets - lo) * sizeof *st->counts);
    st->buckets[lo] = b;
    st->counts[lo] = 1;
    st->n_buckets++;
    return 0;
}

int ps_dataset_scan(const char *suite, const char *data, size_t len, ps_dataset_stats_t *st,
                    pb_err_t *err)
{
    size_t pos = 0, lineno = 0, n, cap = 0;
    const char *line;
    int rc = 0;
    memset(st, 0, sizeof *st);
    if (strcmp(suite, PS_DATASET_RETRIEVAL) == 0)
        return ps__ds_scan_retrieval(data, len, st, err);
    while (ps_dataset_next_line(data, len, &pos, &line, &n, &lineno)) {
        int64_t b;
        if ((rc = ps_dataset_check_line(suite, line, n, lineno, &b, err)))
            goto out;
        rc = stats_add(st, &cap, b);
        if (rc == PB_ETOOBIG) {
            rc = line_err(err, lineno, "more than 4096 distinct buckets%s", NULL);
            goto out;
        }
        if (rc) {
            pb_err_set(err, rc, "", "out of memory");
            goto out;
        }
        st->lines++;
    }
    if (st->lines == 0)
        rc = pb_err_set(err, PB_EINVAL, "body", "the dataset has no lines");
out:
    if (rc)
        ps_dataset_stats_free(st);
    return rc;
}

/* Copy a JSON string's value; NULL when out of memory. */
static char *dup_str(const json_t *s)
{
    return strdup(json_string_value(s));
}

/* The references joined by "\n" into a new string. */
static char *join_refs(const json_t *ref, const json_t *refs)
{
    if (ref)
        return dup_str(ref);
    pb_buf_t b;
    size_t i;
    const json_t *v;
    pb_buf_init(&b, REF_TEXT_MAX);
    json_array_foreach(refs, i, v)
    {
        if ((i && pb_buf_puts(&b, "\n")) || pb_buf_puts(&b, json_string_value(v))) {
            pb_buf_free(&b);
            return NULL;
        }
    }
    if (pb_buf_cstr(&b)) {
        pb_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* out->parts/part_refs from a checked "parts" line; prompt is the parts
 * joined by "\n" when the line has none. */
static int build_parts(const json_t *o, ps_item_t *out)
{
    const json_t *parts = json_object_get(o, "parts");
    const json_t *refs = json_object_get(o, "references");
    const json_t *ref = json_object_get(o, "reference");
    size_t np = json_array_size(parts);
    out->parts = calloc(np, sizeof *out->parts);
    out->part_refs = calloc(np, sizeof *out->part_refs);
    if (out->parts == NULL || out->part_refs == NULL)
        return PB_ENOMEM;
    out->n_parts = np;
    for (size_t k = 0; k < np; k++) {
        out->parts[k] = dup_str(json_array_get(parts, k));
        out->part_refs[k] = dup_str(refs ? json_array_get(refs, k) : ref);
        if (out->parts[k] == NULL || out->part_refs[k] == NULL)
            return PB_ENOMEM;
    }
    if (out->prompt == NULL && (out->prompt = join_refs(NULL, parts)) == NULL)
        return PB_ENOMEM;
    return 0;
}

int ps_dataset_item(const ps_run_t *run, const char *line, size_t n, size_t lineno, uint64_t idx,
                    ps_item_t *out, pb_err_t *err)
{
    json_t *o = NULL;
    int64_t bucket;
    int rc;
    memset(out, 0, sizeof *out);
    if (strcmp(run->suite->name, PS_DATASET_RETRIEVAL) == 0)
        /* corpus + queries + qrels are not one item per line: the retrieval
         * suite reads the whole file (ps_run_open_data) and makes the items */
        return pb_err_set(err, PB_EUNSUPPORTED, "dataset",
                          "retrieval items come from the suite, not from single lines");
    rc = ps__ds_parse_line(run->suite->name, line, n, lineno, &o, &bucket, err);
    if (rc)
        return rc;
    rc = PB_ENOMEM;
    const json_t *prompt = json_object_get(o, "prompt");
    const json_t *meta = json_object_get(o, "metadata");
    const json_t *id = json_object_get(o, "id");
    out->idx = idx;
    out->bucket = bucket;
    if (prompt && (out->prompt = dup_str(prompt)) == NULL)
        goto out;
    out->reference = join_refs(json_object_get(o, "reference"), json_object_get(o, "references"));
    if (out->reference == NULL)
        goto out;
    if (json_object_get(o, "parts") && build_parts(o, out))
        goto out;
    out->meta = meta ? json_deep_copy(meta) : json_object();
    if (out->meta == NULL ||
        json_object_set_new(out->meta, "line", json_integer((json_int_t)lineno)) ||
        (id && json_object_set(out->meta, "id", (json_t *)id)))
        goto out;
    out->length = 0;
    for (size_t k = 0; k < (out->n_parts ? out->n_parts : 1); k++) {
        const char *t = out->n_parts ? out->parts[k] : out->prompt;
        int64_t l = ps_run_length(run, t, strlen(t));
        if (l > out->length)
            out->length = l;
    }
    out->prompt_hash = pb_hash_str(PB_HASH_INIT, out->prompt);
    rc = 0;
out:
    json_decref(o);
    if (rc) {
        pb_err_set(err, rc, "", "out of memory");
        ps_item_clear(out);
    }
    return rc;
}
