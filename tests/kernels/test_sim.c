/* tests/kernels/test_sim.c: similarity top-k (dot and cosine) against a
 * brute-force scalar top-k in double: odd sizes, fewer docs than k,
 * several blocks of docs and queries, streaming feeds equal to one call,
 * ties to the lower index, zero vectors under cosine; every ISA this CPU
 * runs, 1 and 2 threads. */
#include "tests/kernels/ktest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Scores in double: dot, or cosine with a zero vector scoring 0. */
static double ref_score(pk_sim_t sim, const float *q, const float *d, int dim)
{
	double dot = 0, qq = 0, dd = 0;
	for (int c = 0; c < dim; c++) {
		dot += (double)q[c] * d[c];
		qq += (double)q[c] * q[c];
		dd += (double)d[c] * d[c];
	}
	if (sim == PK_SIM_DOT)
		return dot;
	return qq > 0 && dd > 0 ? dot / sqrt(qq * dd) : 0.0;
}

/* Brute force: for each query, k picks of the best (score desc, index asc). */
static void ref_topk(pk_sim_t sim, const float *q, int nq, const float *docs, int nd,
	int dim, int k, int64_t *idx, double *score)
{
	double *s = malloc((size_t)(nd ? nd : 1) * sizeof *s);
	unsigned char *taken = malloc((size_t)(nd ? nd : 1));
	for (int i = 0; i < nq; i++) {
		for (int j = 0; j < nd; j++) {
			s[j] = ref_score(sim, q + (size_t)i * dim, docs + (size_t)j * dim, dim);
			taken[j] = 0;
		}
		for (int c = 0; c < k; c++) {
			int best = -1;
			for (int j = 0; j < nd; j++)
				if (!taken[j] && (best < 0 || s[j] > s[best]))
					best = j;
			idx[(size_t)i * k + c] = best;
			score[(size_t)i * k + c] = best < 0 ? -INFINITY : s[best];
			if (best >= 0)
				taken[best] = 1;
		}
	}
	free(s);
	free(taken);
}

/* exact: the data make float scores exact (small integers, dot), so the
 * indices must match one for one, ties included. Otherwise each returned
 * document must truly score what the reference's pick at that rank does. */
static void check(pk_sim_t sim, const float *q, int nq, const float *docs, int nd, int dim,
	int k, const int64_t *idx, const float *score, int exact, const char *what)
{
	int64_t *ri = malloc((size_t)nq * k * sizeof *ri);
	double *rs = malloc((size_t)nq * k * sizeof *rs);
	ref_topk(sim, q, nq, docs, nd, dim, k, ri, rs);
	double tol = sim == PK_SIM_COSINE ? 1e-5 : 1e-5 * dim;
	for (int i = 0; i < nq; i++)
		for (int c = 0; c < k; c++) {
			size_t at = (size_t)i * k + c;
			if (ri[at] < 0) {
				if (idx[at] != -1 || score[at] != -INFINITY)
					fail_msg("%s: q %d rank %d: want empty, got %lld %g", what, i, c,
						(long long)idx[at], (double)score[at]);
				continue;
			}
			if (exact && (idx[at] != ri[at] || score[at] != (float)rs[at]))
				fail_msg("%s: q %d rank %d: got doc %lld (%g), want %lld (%g)", what, i, c,
					(long long)idx[at], (double)score[at], (long long)ri[at], rs[at]);
			if (idx[at] < 0 || idx[at] >= nd)
				fail_msg("%s: q %d rank %d: doc %lld out of range", what, i, c, (long long)idx[at]);
			double truth = ref_score(sim, q + (size_t)i * dim, docs + (size_t)idx[at] * dim, dim);
			if (fabs(truth - rs[at]) > tol || fabs(score[at] - truth) > tol)
				fail_msg("%s: q %d rank %d: doc %lld scores %g (reported %g), rank wants %g",
					what, i, c, (long long)idx[at], truth, (double)score[at], rs[at]);
			for (int e = 0; e < c; e++)
				if (idx[(size_t)i * k + e] == idx[at])
					fail_msg("%s: q %d: doc %lld twice", what, i, (long long)idx[at]);
		}
	free(ri);
	free(rs);
}

static float *rand_ints(kt_rng_t *r, size_t n, int lo, int hi)
{
	float *x = malloc((n ? n : 1) * sizeof *x);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)kt_int(r, lo, hi);
	return x;
}

static void test_brute_force(void **state)
{
	(void)state;
	kt_rng_t rng;
	kt_seed(&rng, 21);
	const int nqs[] = { 1, 7 }, nds[] = { 1, 3, 64, 1001 }, dims[] = { 1, 5, 384 }, ks[] = { 1, 5, 10 };
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	char what[96];
	for (int ii = 0; ii < ni; ii++)
		for (int th = 1; th <= 2; th++) {
			pk_ctx_t *ctx = kt_ctx(th, isas[ii]);
			for (int a = 0; a < 2; a++)
				for (int b = 0; b < 4; b++)
					for (int c = 0; c < 3; c++)
						for (int sim = 0; sim < 2; sim++) {
							int nq = nqs[a], nd = nds[b], dim = dims[c], k = ks[(a + b + c) % 3];
							/* integers: dot scores exact and full of ties */
							int ints = (b + c + th) % 2;
							float *q = ints ? rand_ints(&rng, (size_t)nq * dim, -2, 2)
							                : kt_rand(&rng, (size_t)nq * dim, -1, 1);
							float *d = ints ? rand_ints(&rng, (size_t)nd * dim, -2, 2)
							                : kt_rand(&rng, (size_t)nd * dim, -1, 1);
							int64_t idx[7 * 10];
							float score[7 * 10];
							assert_int_equal(pk_similarity_topk(ctx, (pk_sim_t)sim, q, nq, d, nd, dim,
								k, idx, score), PK_OK);
							snprintf(what, sizeof what, "%s/%dt %s nq=%d nd=%d dim=%d k=%d",
								pk_isa_name(isas[ii]), th, sim ? "cos" : "dot", nq, nd, dim, k);
							check((pk_sim_t)sim, q, nq, d, nd, dim, k, idx, score,
								ints && sim == PK_SIM_DOT, what);
							free(q);
							free(d);
						}
			pk_ctx_destroy(ctx);
		}
}

/* Several document blocks (nd past one block) and query blocks (nq past
 * 1024), on the fast path only (the scalar GEMM would be slow). */
static void test_blocks(void **state)
{
	(void)state;
	kt_rng_t rng;
	kt_seed(&rng, 22);
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	struct { int nq, nd, dim, k; } cases[] = { { 600, 5000, 5, 7 }, { 1100, 40, 3, 4 }, { 1, 70000, 2, 3 } };
	for (int ii = 0; ii < ni; ii++)
		for (int ci = 0; ci < 3; ci++) {
			if (isas[ii] == PK_ISA_SCALAR && ci == 0)
				continue;
			pk_ctx_t *ctx = kt_ctx(2, isas[ii]);
			int nq = cases[ci].nq, nd = cases[ci].nd, dim = cases[ci].dim, k = cases[ci].k;
			float *q = rand_ints(&rng, (size_t)nq * dim, -3, 3);
			float *d = rand_ints(&rng, (size_t)nd * dim, -3, 3);
			int64_t *idx = malloc((size_t)nq * k * sizeof *idx);
			float *score = malloc((size_t)nq * k * sizeof *score);
			assert_int_equal(pk_similarity_topk(ctx, PK_SIM_DOT, q, nq, d, nd, dim, k, idx, score), PK_OK);
			check(PK_SIM_DOT, q, nq, d, nd, dim, k, idx, score, 1, "blocks");
			free(q);
			free(d);
			free(idx);
			free(score);
			pk_ctx_destroy(ctx);
		}
}

/* Feeding in pieces (an empty one too) equals one call. */
static void test_streaming(void **state)
{
	(void)state;
	kt_rng_t rng;
	kt_seed(&rng, 23);
	const int nq = 7, nd = 2500, dim = 33, k = 9;
	float *q = rand_ints(&rng, (size_t)nq * dim, -2, 2);
	float *d = rand_ints(&rng, (size_t)nd * dim, -2, 2);
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++)
		for (int sim = 0; sim < 2; sim++) {
			pk_ctx_t *ctx = kt_ctx(1 + ii % 2, isas[ii]);
			int64_t i1[7 * 9], i2[7 * 9];
			float s1[7 * 9], s2[7 * 9];
			assert_int_equal(pk_similarity_topk(ctx, (pk_sim_t)sim, q, nq, d, nd, dim, k, i1, s1), PK_OK);
			pk_topk_t *t = NULL;
			assert_int_equal(pk_topk_create(&t, (pk_sim_t)sim, q, nq, dim, k), PK_OK);
			const int cuts[] = { 0, 3, 3, 700, 701, 2000, 2500 };
			for (int c = 0; c + 1 < 7; c++)
				assert_int_equal(pk_topk_feed(ctx, t, d + (size_t)cuts[c] * dim,
					cuts[c + 1] - cuts[c], cuts[c]), PK_OK);
			pk_topk_result(t, i2, s2);
			pk_topk_destroy(t);
			/* dot on integers is exact whatever the blocking; cosine
			 * may differ in the last bit, so it is held to the reference */
			for (int i = 0; i < nq * k && sim == PK_SIM_DOT; i++) {
				assert_int_equal(i1[i], i2[i]);
				assert_true(s1[i] == s2[i]);
			}
			check((pk_sim_t)sim, q, nq, d, nd, dim, k, i1, s1, sim == PK_SIM_DOT, "one call");
			check((pk_sim_t)sim, q, nq, d, nd, dim, k, i2, s2, sim == PK_SIM_DOT, "streamed");
			pk_ctx_destroy(ctx);
		}
	free(q);
	free(d);
}

/* Ties go to the lower index; nd < k leaves -1 / -inf; zero vectors score
 * 0 under cosine. */
static void test_ties_and_zeros(void **state)
{
	(void)state;
	pk_isa_t isas[3];
	int ni = kt_isas(isas);
	for (int ii = 0; ii < ni; ii++) {
		pk_ctx_t *ctx = kt_ctx(2, isas[ii]);
		const int dim = 4;
		float q[2 * 4] = { 1, 2, 3, 4, 0, 0, 0, 0 };
		float d[40 * 4];
		for (int j = 0; j < 40; j++)
			for (int c = 0; c < dim; c++)
				d[j * dim + c] = 1.0f; /* all identical */
		int64_t idx[2 * 6];
		float sc[2 * 6];
		assert_int_equal(pk_similarity_topk(ctx, PK_SIM_DOT, q, 2, d, 40, dim, 6, idx, sc), PK_OK);
		for (int i = 0; i < 2; i++)
			for (int c = 0; c < 6; c++) {
				assert_int_equal(idx[i * 6 + c], c);
				assert_true(sc[i * 6 + c] == (i ? 0.0f : 10.0f));
			}
		/* cosine: doc 5 zero (scores 0), doc 7 parallel to q0 (scores 1) */
		memset(d + 5 * dim, 0, dim * sizeof *d);
		for (int c = 0; c < dim; c++)
			d[7 * dim + c] = 2.0f * q[c];
		d[9 * dim] = -1; /* doc 9: (-1, 1, 1, 1) */
		assert_int_equal(pk_similarity_topk(ctx, PK_SIM_COSINE, q, 2, d, 40, dim, 6, idx, sc), PK_OK);
		assert_int_equal(idx[0], 7);
		assert_true(fabsf(sc[0] - 1.0f) < 1e-6f);
		for (int c = 1; c < 6; c++) {
			assert_int_equal(idx[c], c - 1 + (c - 1 >= 5)); /* 0..4, 6: doc 5 is zero */
			assert_true(fabsf(sc[c] - 10.0f / sqrtf(30.0f * 4.0f)) < 1e-6f);
		}
		for (int c = 0; c < 6; c++) { /* the zero query: all 0, lowest indices */
			assert_int_equal(idx[6 + c], c);
			assert_true(sc[6 + c] == 0.0f);
		}
		/* fewer documents than k */
		assert_int_equal(pk_similarity_topk(ctx, PK_SIM_COSINE, q, 2, d, 3, dim, 6, idx, sc), PK_OK);
		for (int c = 3; c < 6; c++) {
			assert_int_equal(idx[c], -1);
			assert_true(isinf(sc[c]) && sc[c] < 0);
		}
		assert_int_equal(pk_similarity_topk(ctx, PK_SIM_DOT, q, 2, d, 0, dim, 2, idx, sc), PK_OK);
		assert_int_equal(idx[0], -1);
		assert_int_equal(pk_similarity_topk(ctx, PK_SIM_DOT, q, 2, d, 3, dim, 0, idx, sc), PK_EINVAL);
		assert_int_equal(pk_similarity_topk(ctx, PK_SIM_DOT, q, 0, d, 3, dim, 1, idx, sc), PK_EINVAL);
		assert_int_equal(pk_similarity_topk(ctx, (pk_sim_t)7, q, 1, d, 3, dim, 1, idx, sc), PK_EINVAL);
		pk_ctx_destroy(ctx);
	}
}

int pk_test_sim(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_brute_force),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_ties_and_zeros),
	};
	return cmocka_run_group_tests_name("kernels-sim", tests, NULL, NULL);
}
