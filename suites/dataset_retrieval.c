/* Retrieval datasets (suites/dataset.h "retrieval datasets"): the line
 * checks of the doc/query/qrel format and the whole-file parse that checks
 * ids across lines and lays out the corpus, the queries in file order and
 * their qrels and hard negatives. The coordinator validates uploads with
 * it, the retrieval suite builds a dataset run's corpus with it. */
#include "suites/dataset.h"
#include "suites/dataset_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

/* A retrieval id: an integer, or a string of 1..PS_RDATA_ID_MAX bytes with
 * no whitespace, control characters, commas or semicolons (predictions and
 * references list ids separated by those). */
static int rid_ok(const json_t *v)
{
    if (json_is_integer(v))
        return 1;
    const char *s = json_string_value(v);
    size_t n = s ? json_string_length(v) : 0;
    if (n == 0 || n > PS_RDATA_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == ',' || c == ';')
            return 0;
    }
    return 1;
}

/* An id checked by rid_ok as text (integers in decimal); out holds
 * PS_RDATA_ID_MAX + 1 bytes. */
static void rid_text(const json_t *v, char *out)
{
    if (json_is_integer(v))
        snprintf(out, PS_RDATA_ID_MAX + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        snprintf(out, PS_RDATA_ID_MAX + 1, "%s", json_string_value(v));
}

#define RID_RULE "a string of 1 to 128 bytes without spaces, commas or semicolons, or an integer"

int ps__ds_check_retrieval(const json_t *o, size_t lineno, pb_err_t *err)
{
    static const char *const doc_keys[] = {"type", "id", "text", NULL};
    static const char *const query_keys[] = {"type", "id", "text", "hard_negatives", NULL};
    static const char *const qrel_keys[] = {"type", "query", "doc", "grade", NULL};
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *const *keys;
    const char *k;
    const json_t *v;
    if (type == NULL)
        return ps__ds_line_errf(err, lineno, "\"type\" must be \"doc\", \"query\" or \"qrel\"");
    if (strcmp(type, "qrel") == 0)
        keys = qrel_keys;
    else if (strcmp(type, "query") == 0)
        keys = query_keys;
    else if (strcmp(type, "doc") == 0)
        keys = doc_keys;
    else
        return ps__ds_line_errf(err, lineno, "unknown type \"%.40s\" (doc, query or qrel)", type);
    json_object_foreach((json_t *)o, k, v)
    {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k))
            i++;
        if (keys[i] == NULL)
            return ps__ds_line_errf(err, lineno, "unknown key \"%.40s\" in a %s line", k, type);
    }
    if (keys == qrel_keys) {
        if (!rid_ok(json_object_get(o, "query")) || !rid_ok(json_object_get(o, "doc")))
            return ps__ds_line_errf(err, lineno, "a qrel needs \"query\" and \"doc\" ids: %s",
                                    RID_RULE);
        v = json_object_get(o, "grade");
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > PS_RDATA_MAX_GRADE)
            return ps__ds_line_errf(err, lineno,
                                    "a qrel needs a \"grade\", an integer from 0 to %s", "100");
        return 0;
    }
    if (!rid_ok(json_object_get(o, "id")))
        return ps__ds_line_errf(err, lineno, "a %s needs an \"id\": %s", type, RID_RULE);
    v = json_object_get(o, "text");
    if (!json_is_string(v) || (keys == query_keys && json_string_length(v) == 0))
        return ps__ds_line_errf(err, lineno, "a %s needs a \"text\" string (not empty for a query)",
                                type);
    v = json_object_get(o, "hard_negatives");
    if (v) {
        size_t i;
        const json_t *h;
        if (!json_is_array(v) || json_array_size(v) > PS_RDATA_MAX_HARD)
            return ps__ds_line_errf(err, lineno,
                                    "\"hard_negatives\" must be an array of at most %s doc "
                                    "ids",
                                    "64");
        json_array_foreach(v, i, h)
        {
            if (!rid_ok(h))
                return ps__ds_line_errf(err, lineno, "hard_negatives[%zu] must be a doc id: %s", i,
                                        RID_RULE);
        }
    }
    return 0;
}

/* A retrieval dataset is one bucket, the corpus size, of its queries. */
int ps__ds_scan_retrieval(const char *data, size_t len, ps_dataset_stats_t *st, pb_err_t *err)
{
    ps_rdata_t d;
    int rc = ps_rdata_parse(data, len, &d, err);
    if (rc)
        return rc;
    st->buckets = malloc(sizeof *st->buckets);
    st->counts = malloc(sizeof *st->counts);
    if (st->buckets == NULL || st->counts == NULL) {
        ps_dataset_stats_free(st);
        ps_rdata_free(&d);
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    }
    st->lines = d.lines;
    st->buckets[0] = (int64_t)d.n_docs;
    st->counts[0] = d.n_queries;
    st->n_buckets = 1;
    ps_rdata_free(&d);
    return 0;
}

/* ---- retrieval datasets ---- */

/* A qrel or a hard negative before its ids are resolved. */
typedef struct rd_ref {
    char *q, *d; /* owned ids; q NULL for a hard negative (its query is qi) */
    int grade;
    size_t line;
    uint32_t qi, di;
} rd_ref_t;

/* An id with its line, for sorting and duplicate checks. */
typedef struct rd_key {
    const char *id;
    size_t line;
    uint32_t i;
} rd_key_t;

typedef struct rd_tmp {
    rd_ref_t *qrels, *hard;
    size_t n_qrels, n_hard, cap_qrels, cap_hard;
    size_t *doc_line;
    rd_key_t *qkeys; /* queries sorted by id */
    size_t cap_docs, cap_q;
} rd_tmp_t;

void ps_rdata_free(ps_rdata_t *d)
{
    for (size_t i = 0; i < d->n_docs; i++) {
        free(d->docno[i]);
        free(d->doc_text[i]);
    }
    for (size_t i = 0; i < d->n_queries; i++) {
        free(d->qid[i]);
        free(d->q_text[i]);
    }
    free(d->docno);
    free(d->doc_text);
    free(d->qid);
    free(d->q_text);
    free(d->q_line);
    free(d->qrel_at);
    free(d->hard_at);
    free(d->qrel_doc);
    free(d->hard_doc);
    free(d->qrel_grade);
    memset(d, 0, sizeof *d);
}

static void rd_tmp_free(rd_tmp_t *t)
{
    for (size_t i = 0; i < t->n_qrels; i++) {
        free(t->qrels[i].q);
        free(t->qrels[i].d);
    }
    for (size_t i = 0; i < t->n_hard; i++)
        free(t->hard[i].d);
    free(t->qrels);
    free(t->hard);
    free(t->doc_line);
    free(t->qkeys);
}

static int key_cmp(const void *a, const void *b)
{
    const rd_key_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int key_find(const void *k, const void *e)
{
    return strcmp(k, ((const rd_key_t *)e)->id);
}

static int docno_find(const void *k, const void *e)
{
    return strcmp(k, *(char *const *)e);
}

/* Corpus index of doc id, or -1. */
static int64_t rd_doc(const ps_rdata_t *d, const char *id)
{
    char *const *p = bsearch(id, d->docno, d->n_docs, sizeof *d->docno, docno_find);
    return p ? p - d->docno : -1;
}

static int ref_cmp(const void *a, const void *b)
{
    const rd_ref_t *x = a, *y = b;
    if (x->qi != y->qi)
        return x->qi < y->qi ? -1 : 1;
    if (x->di != y->di)
        return x->di < y->di ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* Take one checked line into d (docs and queries) or t (qrels, hard negatives). */
static int rd_take(ps_rdata_t *d, rd_tmp_t *t, const json_t *o, size_t lineno, pb_err_t *err)
{
    char id[PS_RDATA_ID_MAX + 1], id2[PS_RDATA_ID_MAX + 1];
    const char *type = json_string_value(json_object_get(o, "type"));
    if (strcmp(type, "qrel") == 0) {
        if (pb_grow(&t->qrels, &t->cap_qrels, t->n_qrels + 1, sizeof *t->qrels, 256))
            return PB_ENOMEM;
        rid_text(json_object_get(o, "query"), id);
        rid_text(json_object_get(o, "doc"), id2);
        rd_ref_t *r = &t->qrels[t->n_qrels++];
        *r = (rd_ref_t){.q = strdup(id),
                        .d = strdup(id2),
                        .line = lineno,
                        .grade = (int)json_integer_value(json_object_get(o, "grade"))};
        return r->q && r->d ? 0 : PB_ENOMEM;
    }
    rid_text(json_object_get(o, "id"), id);
    char *text = strdup(json_string_value(json_object_get(o, "text")));
    char *ids = strdup(id);
    int rc = PB_ENOMEM;
    if (text == NULL || ids == NULL)
        goto out;
    if (strcmp(type, "doc") == 0) {
        if (d->n_docs >= PS_RDATA_MAX_DOCS) {
            rc = ps__ds_line_errf(err, lineno, "more than %s docs", "1000000");
            goto out;
        }
        size_t c = t->cap_docs, c2 = t->cap_docs;
        if (pb_grow(&d->docno, &c, d->n_docs + 1, sizeof *d->docno, 256) ||
            pb_grow(&d->doc_text, &c2, d->n_docs + 1, sizeof *d->doc_text, 256) ||
            pb_grow(&t->doc_line, &t->cap_docs, d->n_docs + 1, sizeof *t->doc_line, 256))
            goto out;
        d->docno[d->n_docs] = ids;
        d->doc_text[d->n_docs] = text;
        t->doc_line[d->n_docs++] = lineno;
        return 0;
    }
    if (d->n_queries >= PS_RDATA_MAX_QUERIES) {
        rc = ps__ds_line_errf(err, lineno, "more than %s queries", "100000");
        goto out;
    }
    /* the three arrays grow alike: same start, same need */
    size_t c0 = t->cap_q, c1 = t->cap_q;
    if (pb_grow(&d->qid, &c0, d->n_queries + 1, sizeof *d->qid, 64) ||
        pb_grow(&d->q_text, &c1, d->n_queries + 1, sizeof *d->q_text, 64) ||
        pb_grow(&d->q_line, &t->cap_q, d->n_queries + 1, sizeof *d->q_line, 64))
        goto out;
    size_t i;
    const json_t *h;
    json_array_foreach(json_object_get(o, "hard_negatives"), i, h)
    {
        if (pb_grow(&t->hard, &t->cap_hard, t->n_hard + 1, sizeof *t->hard, 64))
            goto out;
        rid_text(h, id2);
        t->hard[t->n_hard] =
            (rd_ref_t){.d = strdup(id2), .qi = (uint32_t)d->n_queries, .line = lineno};
        if (t->hard[t->n_hard++].d == NULL)
            goto out;
    }
    d->qid[d->n_queries] = ids;
    d->q_text[d->n_queries] = text;
    d->q_line[d->n_queries++] = lineno;
    return 0;
out:
    free(text);
    free(ids);
    return rc == PB_ENOMEM ? pb_err_set(err, rc, "", "out of memory") : rc;
}

/* Sort the corpus by docno; a repeated doc id is an error. */
static int rd_sort_docs(ps_rdata_t *d, rd_tmp_t *t, pb_err_t *err)
{
    size_t n = d->n_docs;
    rd_key_t *k = malloc((n ? n : 1) * sizeof *k);
    char **no = malloc((n ? n : 1) * sizeof *no), **tx = malloc((n ? n : 1) * sizeof *tx);
    int rc = 0;
    if (k == NULL || no == NULL || tx == NULL) {
        rc = pb_err_set(err, PB_ENOMEM, "", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        k[i] = (rd_key_t){d->docno[i], t->doc_line[i], (uint32_t)i};
    qsort(k, n, sizeof *k, key_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(k[i].id, k[i - 1].id) == 0) {
            rc = ps__ds_line_errf(err, k[i].line, "duplicate doc id \"%s\" (also line %zu)",
                                  k[i].id, k[i - 1].line);
            goto out;
        }
    for (size_t i = 0; i < n; i++) {
        no[i] = d->docno[k[i].i];
        tx[i] = d->doc_text[k[i].i];
    }
    free(d->docno);
    free(d->doc_text);
    d->docno = no;
    d->doc_text = tx;
    no = tx = NULL;
out:
    free(k);
    free(no);
    free(tx);
    return rc;
}

/* Queries sorted by id into t->qkeys; a repeated query id is an error. */
static int rd_sort_queries(const ps_rdata_t *d, rd_tmp_t *t, pb_err_t *err)
{
    size_t n = d->n_queries;
    if ((t->qkeys = malloc((n ? n : 1) * sizeof *t->qkeys)) == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < n; i++)
        t->qkeys[i] = (rd_key_t){d->qid[i], d->q_line[i], (uint32_t)i};
    qsort(t->qkeys, n, sizeof *t->qkeys, key_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(t->qkeys[i].id, t->qkeys[i - 1].id) == 0)
            return ps__ds_line_errf(err, t->qkeys[i].line,
                                    "duplicate query id \"%s\" (also line %zu)", t->qkeys[i].id,
                                    t->qkeys[i - 1].line);
    return 0;
}

/* Resolve the qrels' ids and lay them out per query (d->qrel_*). */
static int rd_qrels(ps_rdata_t *d, rd_tmp_t *t, pb_err_t *err)
{
    size_t nq = d->n_queries, n = t->n_qrels;
    for (size_t i = 0; i < n; i++) {
        rd_ref_t *r = &t->qrels[i];
        const rd_key_t *q = bsearch(r->q, t->qkeys, nq, sizeof *t->qkeys, key_find);
        int64_t doc = rd_doc(d, r->d);
        if (q == NULL)
            return ps__ds_line_errf(err, r->line, "qrel names unknown query \"%s\"", r->q);
        if (doc < 0)
            return ps__ds_line_errf(err, r->line, "qrel names unknown doc \"%s\"", r->d);
        r->qi = q->i;
        r->di = (uint32_t)doc;
    }
    qsort(t->qrels, n, sizeof *t->qrels, ref_cmp);
    for (size_t i = 1; i < n; i++)
        if (t->qrels[i].qi == t->qrels[i - 1].qi && t->qrels[i].di == t->qrels[i - 1].di)
            return ps__ds_line_errf(
                err, t->qrels[i].line,
                "duplicate qrel for query \"%s\" and doc \"%s\" (also line %zu)", t->qrels[i].q,
                t->qrels[i].d, t->qrels[i - 1].line);
    d->qrel_at = calloc(nq + 1, sizeof *d->qrel_at);
    d->qrel_doc = malloc((n ? n : 1) * sizeof *d->qrel_doc);
    d->qrel_grade = malloc((n ? n : 1) * sizeof *d->qrel_grade);
    if (d->qrel_at == NULL || d->qrel_doc == NULL || d->qrel_grade == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        d->qrel_at[t->qrels[i].qi + 1]++;
        d->qrel_doc[i] = t->qrels[i].di;
        d->qrel_grade[i] = t->qrels[i].grade;
    }
    for (size_t q = 0; q < nq; q++)
        d->qrel_at[q + 1] += d->qrel_at[q];
    return 0;
}

/* Grade of corpus doc di for query q; -1 when unjudged. */
static int rd_grade(const ps_rdata_t *d, size_t q, uint32_t di)
{
    for (size_t i = d->qrel_at[q]; i < d->qrel_at[q + 1]; i++)
        if (d->qrel_doc[i] == di)
            return d->qrel_grade[i];
    return -1;
}

/* Resolve the hard negatives (d->hard_*) and check every query has a relevant doc. */
static int rd_hard(ps_rdata_t *d, rd_tmp_t *t, pb_err_t *err)
{
    size_t nq = d->n_queries, n = t->n_hard;
    d->hard_at = calloc(nq + 1, sizeof *d->hard_at);
    d->hard_doc = malloc((n ? n : 1) * sizeof *d->hard_doc);
    if (d->hard_at == NULL || d->hard_doc == NULL)
        return pb_err_set(err, PB_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        rd_ref_t *r = &t->hard[i];
        int64_t doc = rd_doc(d, r->d);
        if (doc < 0)
            return ps__ds_line_errf(err, r->line, "hard negative \"%s\" is not a doc id", r->d);
        int g = rd_grade(d, r->qi, (uint32_t)doc);
        if (g >= 1)
            return ps__ds_line_errf(err, r->line,
                                    "hard negative \"%s\" is judged relevant (grade %d)", r->d, g);
        for (size_t j = i; j-- > 0 && t->hard[j].qi == r->qi;)
            if (t->hard[j].di == (uint32_t)doc)
                return ps__ds_line_errf(err, r->line, "hard negative \"%s\" is listed twice", r->d);
        r->di = (uint32_t)doc;
        d->hard_doc[i] = r->di; /* in query order already: queries come in file order */
        d->hard_at[r->qi + 1]++;
    }
    for (size_t q = 0; q < nq; q++)
        d->hard_at[q + 1] += d->hard_at[q];
    for (size_t q = 0; q < nq; q++) {
        int rel = 0;
        for (size_t i = d->qrel_at[q]; i < d->qrel_at[q + 1]; i++)
            rel |= d->qrel_grade[i] >= 1;
        if (!rel)
            return ps__ds_line_errf(err, d->q_line[q], "query \"%s\" has no qrel with grade >= 1",
                                    d->qid[q]);
    }
    return 0;
}

int ps_rdata_parse(const char *data, size_t len, ps_rdata_t *out, pb_err_t *err)
{
    size_t pos = 0, lineno = 0, n;
    const char *line;
    rd_tmp_t t;
    int rc = 0;
    memset(out, 0, sizeof *out);
    memset(&t, 0, sizeof t);
    while (ps_dataset_next_line(data, len, &pos, &line, &n, &lineno)) {
        json_t *o = NULL;
        int64_t bucket;
        rc = ps__ds_parse_line(PS_DATASET_RETRIEVAL, line, n, lineno, &o, &bucket, err);
        rc = rc ? rc : rd_take(out, &t, o, lineno, err);
        json_decref(o);
        if (rc)
            goto out;
        out->lines++;
    }
    if (out->n_queries == 0) {
        rc = pb_err_set(err, PB_EINVAL, "body", "a retrieval dataset needs at least one query");
        goto out;
    }
    if ((rc = rd_sort_docs(out, &t, err)) || (rc = rd_sort_queries(out, &t, err)) ||
        (rc = rd_qrels(out, &t, err)) || (rc = rd_hard(out, &t, err)))
        goto out;
out:
    rd_tmp_free(&t);
    if (rc)
        ps_rdata_free(out);
    return rc;
}
