/* tests/kernels/ktest.c: shared helpers of the kernels runner (see ktest.h). */
#include "tests/kernels/ktest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void kt_seed(kt_rng_t *r, uint64_t seed) { r->s = seed * 0x9e3779b97f4a7c15ull + 1; }

uint64_t kt_next(kt_rng_t *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

float kt_uniform(kt_rng_t *r, float lo, float hi)
{
	return lo + (hi - lo) * (float)((kt_next(r) >> 40) * (1.0 / 16777216.0));
}

int kt_int(kt_rng_t *r, int lo, int hi)
{
	return lo + (int)(kt_next(r) % (uint64_t)(hi - lo + 1));
}

void kt_fill(kt_rng_t *r, float *x, size_t n, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		x[i] = kt_uniform(r, lo, hi);
}

float *kt_rand(kt_rng_t *r, size_t n, float lo, float hi)
{
	float *x = malloc((n ? n : 1) * sizeof *x);
	if (!x)
		fail_msg("out of memory for %zu floats", n);
	kt_fill(r, x, n, lo, hi);
	return x;
}

void kt_assert_close(const char *what, const float *ref, const float *got,
	size_t n, float atol, float rtol)
{
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - (double)ref[i]);
		if (!(d <= atol + rtol * fabs((double)ref[i])))
			fail_msg("%s: element %zu: got %.9g, reference %.9g (|diff| %.3g > %.3g + %.3g*|ref|)",
				what, i, (double)got[i], (double)ref[i], d, (double)atol, (double)rtol);
	}
}

double kt_max_abs_diff(const float *ref, const float *got, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - (double)ref[i]);
		if (d > m || d != d)
			m = d;
	}
	return m;
}

int kt_isas(pk_isa_t *out)
{
	int n = 0;
	pk_isa_t best = pk_cpu_isa();
	for (int i = PK_ISA_SCALAR; i <= (int)best; i++)
		out[n++] = (pk_isa_t)i;
	return n;
}

pk_ctx_t *kt_ctx(int nthreads, pk_isa_t isa)
{
	pk_ctx_t *c = NULL;
	int rc = pk_ctx_create(&c, nthreads, isa);
	if (rc != PK_OK)
		fail_msg("pk_ctx_create(%d, %s): %s", nthreads, pk_isa_name(isa), pk_strerror(rc));
	return c;
}
