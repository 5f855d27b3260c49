/* IR metrics of the retrieval suite, with trec_eval's conventions so numbers
 * compare with pytrec_eval/ir-measures (reference/suites.md 5.3, 5.4): its
 * ordering of a run, nDCG with linear gain and an ideal ranking from the
 * qrels, reciprocal rank, recall and AP over all relevant documents, and
 * scipy's Kendall tau-b for teacher-student agreement. */
#include "suites/suite_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* trec_eval's comp_sim_docno: score descending, then docno descending. */
static int cmp_run(const void *a, const void *b)
{
    const ps_ir_doc_t *x = a, *y = b;
    if (x->score > y->score)
        return -1;
    if (x->score < y->score)
        return 1;
    return strcmp(y->docno, x->docno);
}

void ps__ir_sort(ps_ir_doc_t *docs, size_t n)
{
    if (n > 1)
        qsort(docs, n, sizeof *docs, cmp_run);
}

static int cmp_grade_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (y > x) - (y < x);
}

/* Gain of a grade: the grade itself; zero and negative grades gain nothing. */
static double gain(int grade) { return grade > 0 ? (double)grade : 0.0; }

double ps__ir_ndcg(const ps_ir_doc_t *run, size_t n, const int *rel_grades, size_t n_grades,
                   size_t k)
{
    double dcg = 0, idcg = 0;
    for (size_t i = 0; i < n && i < k; i++)
        dcg += gain(run[i].grade) / log2((double)i + 2.0);
    /* The ideal ranking: every judged document, best grade first. */
    int *g = malloc((n_grades ? n_grades : 1) * sizeof *g);
    if (g == NULL)
        return 0; /* callers keep n_grades small; a failed malloc reads as 0 */
    if (n_grades)
        memcpy(g, rel_grades, n_grades * sizeof *g);
    qsort(g, n_grades, sizeof *g, cmp_grade_desc);
    for (size_t i = 0; i < n_grades && i < k; i++)
        idcg += gain(g[i]) / log2((double)i + 2.0);
    free(g);
    return idcg > 0 ? dcg / idcg : 0.0;
}

double ps__ir_rr(const ps_ir_doc_t *run, size_t n, size_t k)
{
    for (size_t i = 0; i < n && i < k; i++)
        if (run[i].grade >= 1)
            return 1.0 / (double)(i + 1);
    return 0.0;
}

double ps__ir_recall(const ps_ir_doc_t *run, size_t n, size_t n_rel, size_t k)
{
    size_t hit = 0;
    for (size_t i = 0; i < n && i < k; i++)
        hit += run[i].grade >= 1;
    return n_rel ? (double)hit / (double)n_rel : 0.0;
}

double ps__ir_ap(const ps_ir_doc_t *run, size_t n, size_t n_rel)
{
    double sum = 0;
    size_t hit = 0;
    for (size_t i = 0; i < n; i++)
        if (run[i].grade >= 1) {
            hit++;
            sum += (double)hit / (double)(i + 1);
        }
    return n_rel ? sum / (double)n_rel : 0.0;
}

/* O(n^2) over pairs: the sets it measures hold tens of documents. */
double ps__ir_tau_b(const double *x, const double *y, size_t n)
{
    double p = 0, q = 0, tx = 0, ty = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            double dx = x[i] - x[j], dy = y[i] - y[j];
            if (dx == 0 && dy == 0)
                continue; /* tied in both: left out */
            if (dx == 0)
                tx++;
            else if (dy == 0)
                ty++;
            else if ((dx > 0) == (dy > 0))
                p++;
            else
                q++;
        }
    double den = sqrt((p + q + tx) * (p + q + ty));
    return den > 0 ? (p - q) / den : NAN;
}
