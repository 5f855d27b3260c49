/* kernels/sim.c: similarity top-k of queries x documents (dot or cosine)
 * for retrieval scoring. Documents stream through in blocks: each block's
 * (queries x docs) score tile comes from pk_sgemm, then every query's
 * min-heap of its k best is updated, threaded over queries. Memory stays
 * (nq x k) heaps plus one bounded score tile. */
#include "config.h"

#include "kernels/kernels_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Score tile budget: 4 MiB keeps a block's scores in the last-level cache
 * between the GEMM writing them and the heap scan reading them. */
#define TILE_FLOATS ((size_t)1 << 20)
#define MAX_QBLOCK 1024

typedef struct {
	float s;
	int64_t i;
} ent_t;

struct pk_topk {
	pk_sim_t sim;
	int nq, dim, k;
	float *q;       /* (nq, dim); unit rows (or zero) for cosine */
	ent_t *heap;    /* (nq, k): root = the worst kept */
	int64_t seen;   /* documents fed so far (every query sees all) */
	int qb, db;     /* query and document block */
	float *tile;    /* (qb, db) */
	float *dinv;    /* (db) 1/|doc| for cosine, 0 for a zero doc */
	ent_t *sorted;  /* (k) result's sorting room, so result cannot fail */
};

/* a is worse than b: lower score, or equal score and higher index */
static inline int worse(float as, int64_t ai, float bs, int64_t bi)
{
	return as < bs || (as == bs && ai > bi);
}

static void sift_down(ent_t *h, int n, int i)
{
	ent_t x = h[i];
	for (;;) {
		int c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && worse(h[c + 1].s, h[c + 1].i, h[c].s, h[c].i))
			c++;
		if (!worse(h[c].s, h[c].i, x.s, x.i))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

static void push(ent_t *h, int *n, float s, int64_t idx)
{
	int i = (*n)++;
	while (i > 0) {
		int p = (i - 1) / 2;
		if (!worse(s, idx, h[p].s, h[p].i))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i].s = s;
	h[i].i = idx;
}

/* One candidate; the caller's cheap filter may pass ties, settled here. */
static inline void offer(ent_t *h, int *n, int k, float s, int64_t idx)
{
	if (*n < k) {
		push(h, n, s, idx);
	} else if (worse(h[0].s, h[0].i, s, idx)) {
		h[0].s = s;
		h[0].i = idx;
		sift_down(h, k, 0);
	}
}

int pk_topk_create(pk_topk_t **out, pk_sim_t sim, const float *q, int nq, int dim, int k)
{
	*out = NULL;
	if ((sim != PK_SIM_DOT && sim != PK_SIM_COSINE) || !q || nq <= 0 || dim <= 0 || k <= 0)
		return PK_EINVAL;
	pk_topk_t *t = calloc(1, sizeof *t);
	if (!t)
		return PK_ENOMEM;
	t->sim = sim;
	t->nq = nq;
	t->dim = dim;
	t->k = k;
	t->qb = nq < MAX_QBLOCK ? nq : MAX_QBLOCK;
	size_t db = TILE_FLOATS / (size_t)t->qb;
	t->db = (int)(db > 65536 ? 65536 : db);
	t->q = pk__alloc((size_t)nq * dim, sizeof *t->q);
	t->heap = pk__alloc((size_t)nq * k, sizeof *t->heap);
	t->sorted = pk__alloc((size_t)k, sizeof *t->sorted);
	if (!t->q || !t->heap || !t->sorted) {
		pk_topk_destroy(t);
		return PK_ENOMEM;
	}
	memcpy(t->q, q, (size_t)nq * dim * sizeof *q);
	if (sim == PK_SIM_COSINE)
		for (int i = 0; i < nq; i++) {
			float *r = t->q + (size_t)i * dim;
			double ss = 0;
			for (int j = 0; j < dim; j++)
				ss += (double)r[j] * r[j];
			float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
			for (int j = 0; j < dim; j++)
				r[j] *= inv;
		}
	*out = t;
	return PK_OK;
}

void pk_topk_destroy(pk_topk_t *t)
{
	if (!t)
		return;
	pk__free(t->q);
	pk__free(t->heap);
	pk__free(t->tile);
	pk__free(t->dinv);
	pk__free(t->sorted);
	free(t);
}

/* ---- the scan of one tile row ------------------------------------------ */
struct scan_arg {
	pk_topk_t *t;
	pk_isa_t isa;
	int q0, mb, nb, nchunks, n0; /* n0: heap fill before this block */
	int64_t base;                /* index of the block's first doc */
	const float *dinv;           /* NULL for dot */
};

// row: (nb) raw scores of one query; h: its heap with n entries
static int scan_scalar(ent_t *h, int n, int k, const float *row, const float *dinv,
	int nb, int64_t base)
{
	for (int j = 0; j < nb; j++)
		offer(h, &n, k, dinv ? row[j] * dinv[j] : row[j], base + j);
	return n;
}

#if PK_X86
/* Once the heap is full only a score >= its minimum can enter, and after
 * the first blocks that is rare: test 8 / 16 at a time against it. */
PK_AVX2 static int scan_avx2(ent_t *h, int n, int k, const float *row, const float *dinv,
	int nb, int64_t base)
{
	int j = 0;
	for (; j < nb && n < k; j++)
		offer(h, &n, k, dinv ? row[j] * dinv[j] : row[j], base + j);
	for (; j + 8 <= nb; j += 8) {
		__m256 s = _mm256_loadu_ps(row + j);
		if (dinv)
			s = _mm256_mul_ps(s, _mm256_loadu_ps(dinv + j));
		unsigned m = (unsigned)_mm256_movemask_ps(
			_mm256_cmp_ps(s, _mm256_set1_ps(h[0].s), _CMP_GE_OQ));
		while (m) {
			int b = __builtin_ctz(m);
			m &= m - 1;
			offer(h, &n, k, dinv ? row[j + b] * dinv[j + b] : row[j + b], base + j + b);
		}
	}
	return scan_scalar(h, n, k, row + j, dinv ? dinv + j : NULL, nb - j, base + j);
}

PK_AVX512 static int scan_avx512(ent_t *h, int n, int k, const float *row, const float *dinv,
	int nb, int64_t base)
{
	int j = 0;
	for (; j < nb && n < k; j++)
		offer(h, &n, k, dinv ? row[j] * dinv[j] : row[j], base + j);
	for (; j + 16 <= nb; j += 16) {
		__m512 s = _mm512_loadu_ps(row + j);
		if (dinv)
			s = _mm512_mul_ps(s, _mm512_loadu_ps(dinv + j));
		unsigned m = _mm512_cmp_ps_mask(s, _mm512_set1_ps(h[0].s), _CMP_GE_OQ);
		while (m) {
			int b = __builtin_ctz(m);
			m &= m - 1;
			offer(h, &n, k, dinv ? row[j + b] * dinv[j + b] : row[j + b], base + j + b);
		}
	}
	return scan_scalar(h, n, k, row + j, dinv ? dinv + j : NULL, nb - j, base + j);
}
#endif

static void scan_task(void *varg, int c, int tid)
{
	struct scan_arg *a = varg;
	pk_topk_t *t = a->t;
	int lo = (int)((int64_t)a->mb * c / a->nchunks), hi = (int)((int64_t)a->mb * (c + 1) / a->nchunks);
	for (int r = lo; r < hi; r++) {
		ent_t *h = t->heap + (size_t)(a->q0 + r) * t->k;
		const float *row = t->tile + (size_t)r * a->nb;
#if PK_X86
		if (a->isa == PK_ISA_AVX512) {
			scan_avx512(h, a->n0, t->k, row, a->dinv, a->nb, a->base);
			continue;
		}
		if (a->isa == PK_ISA_AVX2) {
			scan_avx2(h, a->n0, t->k, row, a->dinv, a->nb, a->base);
			continue;
		}
#endif
		scan_scalar(h, a->n0, t->k, row, a->dinv, a->nb, a->base);
	}
}

/* 1/|d| per document row; a zero row scores 0 against everything. */
static void doc_inv_norms(float *inv, const float *docs, int nb, int dim)
{
	for (int j = 0; j < nb; j++) {
		const float *d = docs + (size_t)j * dim;
		double ss = 0;
		for (int c = 0; c < dim; c++)
			ss += (double)d[c] * d[c];
		inv[j] = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
	}
}

// docs: (nd, dim), indices base .. base+nd-1
int pk_topk_feed(pk_ctx_t *ctx, pk_topk_t *t, const float *docs, int nd, int64_t base)
{
	if (nd < 0 || (nd > 0 && !docs))
		return PK_EINVAL;
	if (nd == 0)
		return PK_OK;
	if (!t->tile) {
		t->tile = pk__alloc((size_t)t->qb * t->db, sizeof *t->tile);
		t->dinv = pk__alloc((size_t)t->db, sizeof *t->dinv);
		if (!t->tile || !t->dinv) {
			pk__free(t->tile);
			pk__free(t->dinv);
			t->tile = t->dinv = NULL;
			return PK_ENOMEM;
		}
	}
	int nth = pk_ctx_threads(ctx);
	for (int d0 = 0; d0 < nd; d0 += t->db) {
		int nb = nd - d0 < t->db ? nd - d0 : t->db;
		const float *blk = docs + (size_t)d0 * t->dim;
		if (t->sim == PK_SIM_COSINE)
			doc_inv_norms(t->dinv, blk, nb, t->dim);
		int n0 = t->seen < t->k ? (int)t->seen : t->k;
		for (int q0 = 0; q0 < t->nq; q0 += t->qb) {
			int mb = t->nq - q0 < t->qb ? t->nq - q0 : t->qb;
			// tile: (mb, nb) = Q[q0:q0+mb] (mb, dim) x blk^T (dim, nb)
			pk_sgemm(ctx, 0, 1, mb, nb, t->dim, 1.0f, t->q + (size_t)q0 * t->dim, t->dim,
				blk, t->dim, 0.0f, t->tile, nb);
			int nch = mb < 4 * nth ? mb : 4 * nth;
			struct scan_arg a = { t, pk_ctx_isa(ctx), q0, mb, nb, nch, n0, base + d0,
				t->sim == PK_SIM_COSINE ? t->dinv : NULL };
			pk_parallel_for(ctx, nch, scan_task, &a);
		}
		t->seen += nb;
	}
	return PK_OK;
}

static int ent_best_first(const void *a, const void *b)
{
	const ent_t *x = a, *y = b;
	if (worse(x->s, x->i, y->s, y->i))
		return 1;
	if (worse(y->s, y->i, x->s, x->i))
		return -1;
	return 0;
}

void pk_topk_result(const pk_topk_t *t, int64_t *idx, float *score)
{
	int n = t->seen < t->k ? (int)t->seen : t->k;
	ent_t *tmp = t->sorted;
	for (int q = 0; q < t->nq; q++) {
		int64_t *oi = idx + (size_t)q * t->k;
		float *os = score + (size_t)q * t->k;
		memcpy(tmp, t->heap + (size_t)q * t->k, (size_t)n * sizeof *tmp);
		qsort(tmp, (size_t)n, sizeof *tmp, ent_best_first);
		for (int j = 0; j < n; j++) {
			oi[j] = tmp[j].i;
			os[j] = tmp[j].s;
		}
		for (int j = n; j < t->k; j++) {
			oi[j] = -1;
			os[j] = -INFINITY;
		}
	}
}

int pk_similarity_topk(pk_ctx_t *ctx, pk_sim_t sim, const float *q, int nq,
	const float *docs, int64_t nd, int dim, int k, int64_t *idx, float *score)
{
	if (nd < 0)
		return PK_EINVAL;
	pk_topk_t *t = NULL;
	int rc = pk_topk_create(&t, sim, q, nq, dim, k);
	if (rc != PK_OK)
		return rc;
	const int64_t step = (int64_t)1 << 28;
	for (int64_t d0 = 0; d0 < nd && rc == PK_OK; d0 += step) {
		int64_t nb = nd - d0 < step ? nd - d0 : step;
		rc = pk_topk_feed(ctx, t, docs + (size_t)d0 * dim, (int)nb, d0);
	}
	if (rc == PK_OK)
		pk_topk_result(t, idx, score);
	pk_topk_destroy(t);
	return rc;
}
