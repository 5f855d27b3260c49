/* kernels/rope.c: rotary position embedding. pk_rope_init resolves a
 * scaling scheme (none, PI, NTK, dynamic NTK, YaRN, Giraffe truncation) into
 * one inverse frequency per rotated pair plus a magnitude scale; apply and
 * shift rotate (T, H, D) rows in place in either layout. The cos/sin of a
 * position are computed once per row t (or read from the cache table) and
 * shared by all H heads, so the rotation itself streams at memory speed. */
#include "kernels/kernels_int.h"

#include <math.h>
#include <string.h>

void pk_rope_cfg_default(pk_rope_cfg_t *cfg, int head_dim)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->head_dim = head_dim;
	cfg->rot_dims = 0;
	cfg->layout = PK_ROPE_NEOX;
	cfg->base = 10000.0;
	cfg->scaling = PK_ROPE_SCALE_NONE;
	cfg->factor = 1.0;
	cfg->beta_fast = 32.0;
	cfg->beta_slow = 1.0;
	cfg->ext_factor = 1.0;
	cfg->attn_factor = 1.0;
}

/* ---- resolving the frequencies ---------------------------------------- */

/* theta_i = base^(-2i/D), D = rotated dims. */
static double plain_theta(double base, int i, int D)
{
	return pow(base, -(2.0 * i) / D);
}

/* YaRN: the (fractional) pair index whose wavelength makes n_rot turns
 * over the original context L (jquesnelle/yarn find_correction_dim). */
static double yarn_corr_dim(double n_rot, int D, double L, double base)
{
	return D * log(L / (n_rot * 2.0 * M_PI)) / (2.0 * log(base));
}

static int finite_pos(double v) { return isfinite(v) && v > 0; }

static int validate(const pk_rope_cfg_t *c, int rot)
{
	if (c->head_dim <= 0 || c->head_dim % 2 || c->head_dim > PK_MAX_HEAD_DIM)
		return 0;
	if (c->rot_dims < 0 || rot % 2 || rot < 2 || rot > c->head_dim)
		return 0;
	if (c->layout != PK_ROPE_NORM && c->layout != PK_ROPE_NEOX)
		return 0;
	if (!isfinite(c->base) || c->base <= 1.0)
		return 0;
	if (!isfinite(c->factor) || c->factor < 1.0)
		return 0;
	switch (c->scaling) {
	case PK_ROPE_SCALE_NONE:
	case PK_ROPE_SCALE_LINEAR:
		return 1;
	case PK_ROPE_SCALE_NTK:
		return rot > 2; /* exponent D/(D-2) */
	case PK_ROPE_SCALE_DYNAMIC_NTK:
		return rot > 2 && c->orig_max_pos > 0 && c->seq_len >= 0;
	case PK_ROPE_SCALE_YARN:
		return c->orig_max_pos > 0 && finite_pos(c->beta_fast) &&
			finite_pos(c->beta_slow) && isfinite(c->ext_factor) &&
			c->ext_factor >= 0 && finite_pos(c->attn_factor);
	case PK_ROPE_SCALE_TRUNCATE:
		return finite_pos(c->truncate) && isfinite(c->power) && c->power >= 0;
	}
	return 0;
}

/* Fills r->theta and r->mscale from a validated config. */
static void resolve(pk_rope_t *r, const pk_rope_cfg_t *c)
{
	const int D = r->rot_dims, np = D / 2;
	const double s = c->factor;
	double base = c->base;
	r->mscale = 1.0f;
	switch (c->scaling) {
	case PK_ROPE_SCALE_NONE:
		for (int i = 0; i < np; i++)
			r->theta[i] = plain_theta(base, i, D);
		break;
	case PK_ROPE_SCALE_LINEAR:
		for (int i = 0; i < np; i++)
			r->theta[i] = plain_theta(base, i, D) / s;
		break;
	case PK_ROPE_SCALE_DYNAMIC_NTK:
		/* HF DynamicNTKScalingRotaryEmbedding: the base grows only once
		 * the sequence outgrows the original context. */
		if (c->seq_len > c->orig_max_pos)
			base *= pow(s * c->seq_len / c->orig_max_pos - (s - 1.0),
				(double)D / (D - 2));
		for (int i = 0; i < np; i++)
			r->theta[i] = plain_theta(base, i, D);
		break;
	case PK_ROPE_SCALE_NTK:
		base *= pow(s, (double)D / (D - 2));
		for (int i = 0; i < np; i++)
			r->theta[i] = plain_theta(base, i, D);
		break;
	case PK_ROPE_SCALE_YARN: {
		double L = c->orig_max_pos;
		double lo = floor(yarn_corr_dim(c->beta_fast, D, L, base));
		double hi = ceil(yarn_corr_dim(c->beta_slow, D, L, base));
		if (lo < 0)
			lo = 0;
		if (hi > D - 1)
			hi = D - 1;
		if (lo == hi)
			hi += 0.001; /* as the reference: avoid a zero-width ramp */
		for (int i = 0; i < np; i++) {
			double extrap = plain_theta(base, i, D), interp = extrap / s;
			double ramp = (i - lo) / (hi - lo);
			ramp = ramp < 0 ? 0 : (ramp > 1 ? 1 : ramp);
			double mask = (1.0 - ramp) * c->ext_factor;
			/* interp*(1-mask) + extrap*mask, written so that s = 1
			 * gives theta bit for bit */
			r->theta[i] = interp + (extrap - interp) * mask;
		}
		double m = s > 1.0 ? 0.1 * log(s) + 1.0 : 1.0;
		r->mscale = (float)(m * c->attn_factor);
		break;
	}
	case PK_ROPE_SCALE_TRUNCATE: {
		/* abacusai/Long-Context interpolate.py: scale, then the power
		 * basis, then cut on the scaled frequency: >= b kept, [b/8, b)
		 * set to rho = b/16, below b/8 set to 0 (no rotation). */
		double b = 2.0 * M_PI / c->truncate, rho = b / 16.0, a = b / 8.0;
		for (int i = 0; i < np; i++) {
			double f = plain_theta(base, i, D);
			if (s > 1.0)
				f /= s;
			if (c->power > 0)
				f *= pow(1.0 - (double)i / np, c->power);
			r->theta[i] = f < a ? 0.0 : (f < b ? rho : f);
		}
		break;
	}
	}
}

int pk_rope_init(pk_rope_t *r, const pk_rope_cfg_t *cfg, int cache_len)
{
	if (!r)
		return PK_EINVAL;
	memset(r, 0, sizeof *r);
	if (!cfg || cache_len < 0)
		return PK_EINVAL;
	int rot = cfg->rot_dims ? cfg->rot_dims : cfg->head_dim;
	if (!validate(cfg, rot))
		return PK_EINVAL;
	r->head_dim = cfg->head_dim;
	r->rot_dims = rot;
	r->layout = cfg->layout;
	resolve(r, cfg);
	if (cache_len > 0) {
		size_t per = (size_t)rot; /* rot/2 pairs of (cos, sin) */
		float *cs = pk__alloc((size_t)cache_len, per * sizeof(float));
		if (!cs)
			return PK_ENOMEM;
		for (int p = 0; p < cache_len; p++)
			pk__rope_sincos(r, p, 1, cs + (size_t)p * per);
		r->cs = cs;
		r->cache_len = cache_len;
	}
	return PK_OK;
}

void pk_rope_free(pk_rope_t *r)
{
	if (!r)
		return;
	pk__free(r->cs);
	r->cs = NULL;
	r->cache_len = 0;
}

/* ---- cos/sin of one position ------------------------------------------ */

/* cs: (rot/2, 2) = cos, sin of pos*theta_i (times mscale if asked). The
 * angle is formed in double: at positions ~6e4 a float angle would be off
 * by ~4e-3 rad. */
void pk__rope_sincos(const pk_rope_t *r, double pos, int with_mscale, float *cs)
{
	const int np = r->rot_dims / 2;
	const double m = with_mscale ? (double)r->mscale : 1.0;
	if (r->cs && (with_mscale || r->mscale == 1.0f) && pos >= 0 &&
	    pos < r->cache_len && pos == floor(pos)) {
		memcpy(cs, r->cs + (size_t)pos * r->rot_dims, (size_t)r->rot_dims * sizeof *cs);
		return;
	}
	for (int i = 0; i < np; i++) {
		double sn, cn;
		sincos(pos * r->theta[i], &sn, &cn);
		cs[2 * i] = (float)(cn * m);
		cs[2 * i + 1] = (float)(sn * m);
	}
}

/* ---- the rotation: scalar reference ----------------------------------- */

/* NORM pairs i0..np-1 of one row: row: (rot); cs: (rot/2, 2). Also the
 * tail of the vector paths. */
static inline void rotate_pairs(float *row, const float *cs, int i0, int np)
{
	for (int i = i0; i < np; i++) {
		float c = cs[2 * i], s = cs[2 * i + 1];
		float x0 = row[2 * i], x1 = row[2 * i + 1];
		row[2 * i] = x0 * c - x1 * s;
		row[2 * i + 1] = x0 * s + x1 * c;
	}
}

/* x: (head_dim); cs: (rot/2, 2). Dims >= rot pass through. */
void pk__rope_rotate(const pk_rope_t *r, float *x, const float *cs)
{
	const int np = r->rot_dims / 2;
	if (r->layout == PK_ROPE_NORM) {
		rotate_pairs(x, cs, 0, np);
	} else {
		for (int i = 0; i < np; i++) {
			float c = cs[2 * i], s = cs[2 * i + 1];
			float x0 = x[i], x1 = x[i + np];
			x[i] = x0 * c - x1 * s;
			x[i + np] = x0 * s + x1 * c;
		}
	}
}

static void rotate_rows_scalar(const pk_rope_t *r, float *x, int n, size_t ld,
	const float *cs)
{
	for (int k = 0; k < n; k++)
		pk__rope_rotate(r, x + (size_t)k * ld, cs);
}

#if PK_X86
/* Shared by the AVX2 and AVX-512 rotations: cs (np, 2) -> cv[np], sv[np]. */
static inline void split_cs(const float *cs, int np, float *cv, float *sv)
{
	for (int i = 0; i < np; i++) {
		cv[i] = cs[2 * i];
		sv[i] = cs[2 * i + 1];
	}
}

/* NEOX tail: lo[i], hi[i] for i in i0..np-1 against split cos/sin. */
static inline void rotate_halves(float *lo, float *hi, const float *cv,
	const float *sv, int i0, int np)
{
	for (int i = i0; i < np; i++) {
		float a = lo[i], b = hi[i];
		lo[i] = a * cv[i] - b * sv[i];
		hi[i] = a * sv[i] + b * cv[i];
	}
}

/* NORM: a vector of adjacent pairs (x0 x1 ...) against (c s ...):
 * out = x*c -/+ swap(x)*s, one fmaddsub. NEOX: halves x[i], x[i+h] against
 * separate c[], s[] (de-interleaved once per call, not per row). */
PK_AVX2 static void rotate_rows_avx2(const pk_rope_t *r, float *x, int n,
	size_t ld, const float *cs)
{
	const int rot = r->rot_dims, np = rot / 2;
	if (r->layout == PK_ROPE_NORM) {
		const int vend = rot & ~7;
		for (int k = 0; k < n; k++) {
			float *row = x + (size_t)k * ld;
			for (int j = 0; j < vend; j += 8) {
				__m256 v = _mm256_loadu_ps(row + j);
				__m256 t = _mm256_loadu_ps(cs + j);
				__m256 c = _mm256_moveldup_ps(t), s = _mm256_movehdup_ps(t);
				__m256 sw = _mm256_permute_ps(v, 0xB1);
				_mm256_storeu_ps(row + j,
					_mm256_fmaddsub_ps(v, c, _mm256_mul_ps(sw, s)));
			}
			rotate_pairs(row, cs, vend / 2, np);
		}
		return;
	}
	float cv[PK_MAX_HEAD_DIM / 2], sv[PK_MAX_HEAD_DIM / 2];
	split_cs(cs, np, cv, sv);
	const int vend = np & ~7;
	for (int k = 0; k < n; k++) {
		float *lo = x + (size_t)k * ld, *hi = lo + np;
		for (int i = 0; i < vend; i += 8) {
			__m256 a = _mm256_loadu_ps(lo + i), b = _mm256_loadu_ps(hi + i);
			__m256 c = _mm256_loadu_ps(cv + i), s = _mm256_loadu_ps(sv + i);
			_mm256_storeu_ps(lo + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
			_mm256_storeu_ps(hi + i, _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c)));
		}
		rotate_halves(lo, hi, cv, sv, vend, np);
	}
}

PK_AVX512 static void rotate_rows_avx512(const pk_rope_t *r, float *x, int n,
	size_t ld, const float *cs)
{
	const int rot = r->rot_dims, np = rot / 2;
	if (r->layout == PK_ROPE_NORM) {
		const int vend = rot & ~15;
		for (int k = 0; k < n; k++) {
			float *row = x + (size_t)k * ld;
			for (int j = 0; j < vend; j += 16) {
				__m512 v = _mm512_loadu_ps(row + j);
				__m512 t = _mm512_loadu_ps(cs + j);
				__m512 c = _mm512_moveldup_ps(t), s = _mm512_movehdup_ps(t);
				__m512 sw = _mm512_permute_ps(v, 0xB1);
				_mm512_storeu_ps(row + j,
					_mm512_fmaddsub_ps(v, c, _mm512_mul_ps(sw, s)));
			}
			rotate_pairs(row, cs, vend / 2, np);
		}
		return;
	}
	float cv[PK_MAX_HEAD_DIM / 2], sv[PK_MAX_HEAD_DIM / 2];
	split_cs(cs, np, cv, sv);
	const int vend = np & ~15;
	for (int k = 0; k < n; k++) {
		float *lo = x + (size_t)k * ld, *hi = lo + np;
		for (int i = 0; i < vend; i += 16) {
			__m512 a = _mm512_loadu_ps(lo + i), b = _mm512_loadu_ps(hi + i);
			__m512 c = _mm512_loadu_ps(cv + i), s = _mm512_loadu_ps(sv + i);
			_mm512_storeu_ps(lo + i, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)));
			_mm512_storeu_ps(hi + i, _mm512_fmadd_ps(a, s, _mm512_mul_ps(b, c)));
		}
		rotate_halves(lo, hi, cv, sv, vend, np);
	}
}
#endif

/* ---- cos/sin of one position, vectorized ------------------------------ */
/* Same angle pos*theta_i in double; reduced by q = round(a*2/pi) with a
 * three-part pi/2 (exact q*P1 for |q| < 2^26), then Taylor polynomials in
 * double on |r| <= pi/4 (truncation error < 1e-11, far below the float the
 * result is rounded to). Replaces ~20 ns of libm per pair, which would
 * otherwise cost as much as streaming the row through memory. */
#define RP_P1 1.570796251296997070312
#define RP_P2 7.549789415861596353357e-08
#define RP_P3 5.390302858158118810640e-15
#define RP_BIG 6.0e7 /* |angle| beyond this: libm (q would lose bits) */

static int angle_fits(const pk_rope_t *r, double pos)
{
	double tmax = 0;
	for (int i = 0; i < r->rot_dims / 2; i++)
		tmax = r->theta[i] > tmax ? r->theta[i] : tmax;
	return fabs(pos) * tmax < RP_BIG;
}

#if PK_X86
PK_AVX2 static void sincos_avx2(const pk_rope_t *r, double pos, double m, float *cs)
{
	const int np = r->rot_dims / 2;
	const __m256d vp = _mm256_set1_pd(pos), vm = _mm256_set1_pd(m);
	int i = 0;
	for (; i + 4 <= np; i += 4) {
		__m256d a = _mm256_mul_pd(vp, _mm256_loadu_pd(r->theta + i));
		__m256d q = _mm256_round_pd(_mm256_mul_pd(a, _mm256_set1_pd(2.0 / M_PI)),
			_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
		__m256d x = _mm256_fnmadd_pd(q, _mm256_set1_pd(RP_P1), a);
		x = _mm256_fnmadd_pd(q, _mm256_set1_pd(RP_P2), x);
		x = _mm256_fnmadd_pd(q, _mm256_set1_pd(RP_P3), x);
		__m256d x2 = _mm256_mul_pd(x, x);
		__m256d ps = _mm256_set1_pd(-1.0 / 39916800);
		ps = _mm256_fmadd_pd(ps, x2, _mm256_set1_pd(1.0 / 362880));
		ps = _mm256_fmadd_pd(ps, x2, _mm256_set1_pd(-1.0 / 5040));
		ps = _mm256_fmadd_pd(ps, x2, _mm256_set1_pd(1.0 / 120));
		ps = _mm256_fmadd_pd(ps, x2, _mm256_set1_pd(-1.0 / 6));
		__m256d sn = _mm256_fmadd_pd(_mm256_mul_pd(ps, x2), x, x);
		__m256d pc = _mm256_set1_pd(1.0 / 479001600);
		pc = _mm256_fmadd_pd(pc, x2, _mm256_set1_pd(-1.0 / 3628800));
		pc = _mm256_fmadd_pd(pc, x2, _mm256_set1_pd(1.0 / 40320));
		pc = _mm256_fmadd_pd(pc, x2, _mm256_set1_pd(-1.0 / 720));
		pc = _mm256_fmadd_pd(pc, x2, _mm256_set1_pd(1.0 / 24));
		pc = _mm256_fmadd_pd(pc, x2, _mm256_set1_pd(-0.5));
		__m256d cn = _mm256_fmadd_pd(pc, x2, _mm256_set1_pd(1.0));
		/* quadrant k = q mod 4: odd swaps sin/cos; sin negated for k in
		 * {2,3}, cos for k in {1,2} */
		__m256i k = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(q));
		__m256d swap = _mm256_castsi256_pd(_mm256_cmpeq_epi64(
			_mm256_and_si256(k, _mm256_set1_epi64x(1)), _mm256_set1_epi64x(1)));
		__m256d sgn_s = _mm256_castsi256_pd(_mm256_slli_epi64(
			_mm256_and_si256(k, _mm256_set1_epi64x(2)), 62));
		__m256d sgn_c = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_and_si256(
			_mm256_add_epi64(k, _mm256_set1_epi64x(1)), _mm256_set1_epi64x(2)), 62));
		__m256d so = _mm256_xor_pd(_mm256_blendv_pd(sn, cn, swap), sgn_s);
		__m256d co = _mm256_xor_pd(_mm256_blendv_pd(cn, sn, swap), sgn_c);
		__m128 sf = _mm256_cvtpd_ps(_mm256_mul_pd(so, vm));
		__m128 cf = _mm256_cvtpd_ps(_mm256_mul_pd(co, vm));
		_mm_storeu_ps(cs + 2 * i, _mm_unpacklo_ps(cf, sf));
		_mm_storeu_ps(cs + 2 * i + 4, _mm_unpackhi_ps(cf, sf));
	}
	for (; i < np; i++) {
		double s, c;
		sincos(pos * r->theta[i], &s, &c);
		cs[2 * i] = (float)(c * m);
		cs[2 * i + 1] = (float)(s * m);
	}
}

PK_AVX512 static void sincos_avx512(const pk_rope_t *r, double pos, double m, float *cs)
{
	const int np = r->rot_dims / 2;
	const __m512d vp = _mm512_set1_pd(pos), vm = _mm512_set1_pd(m);
	int i = 0;
	for (; i + 8 <= np; i += 8) {
		__m512d a = _mm512_mul_pd(vp, _mm512_loadu_pd(r->theta + i));
		__m512d q = _mm512_roundscale_pd(_mm512_mul_pd(a, _mm512_set1_pd(2.0 / M_PI)),
			_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
		__m512d x = _mm512_fnmadd_pd(q, _mm512_set1_pd(RP_P1), a);
		x = _mm512_fnmadd_pd(q, _mm512_set1_pd(RP_P2), x);
		x = _mm512_fnmadd_pd(q, _mm512_set1_pd(RP_P3), x);
		__m512d x2 = _mm512_mul_pd(x, x);
		__m512d ps = _mm512_set1_pd(-1.0 / 39916800);
		ps = _mm512_fmadd_pd(ps, x2, _mm512_set1_pd(1.0 / 362880));
		ps = _mm512_fmadd_pd(ps, x2, _mm512_set1_pd(-1.0 / 5040));
		ps = _mm512_fmadd_pd(ps, x2, _mm512_set1_pd(1.0 / 120));
		ps = _mm512_fmadd_pd(ps, x2, _mm512_set1_pd(-1.0 / 6));
		__m512d sn = _mm512_fmadd_pd(_mm512_mul_pd(ps, x2), x, x);
		__m512d pc = _mm512_set1_pd(1.0 / 479001600);
		pc = _mm512_fmadd_pd(pc, x2, _mm512_set1_pd(-1.0 / 3628800));
		pc = _mm512_fmadd_pd(pc, x2, _mm512_set1_pd(1.0 / 40320));
		pc = _mm512_fmadd_pd(pc, x2, _mm512_set1_pd(-1.0 / 720));
		pc = _mm512_fmadd_pd(pc, x2, _mm512_set1_pd(1.0 / 24));
		pc = _mm512_fmadd_pd(pc, x2, _mm512_set1_pd(-0.5));
		__m512d cn = _mm512_fmadd_pd(pc, x2, _mm512_set1_pd(1.0));
		__m512i k = _mm512_cvtepi32_epi64(_mm512_cvtpd_epi32(q));
		__mmask8 swap = _mm512_test_epi64_mask(k, _mm512_set1_epi64(1));
		__m512d sgn_s = _mm512_castsi512_pd(_mm512_slli_epi64(
			_mm512_and_si512(k, _mm512_set1_epi64(2)), 62));
		__m512d sgn_c = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_and_si512(
			_mm512_add_epi64(k, _mm512_set1_epi64(1)), _mm512_set1_epi64(2)), 62));
		__m512d so = _mm512_xor_pd(_mm512_mask_blend_pd(swap, sn, cn), sgn_s);
		__m512d co = _mm512_xor_pd(_mm512_mask_blend_pd(swap, cn, sn), sgn_c);
		__m256 sf = _mm512_cvtpd_ps(_mm512_mul_pd(so, vm));
		__m256 cf = _mm512_cvtpd_ps(_mm512_mul_pd(co, vm));
		__m256 lo = _mm256_unpacklo_ps(cf, sf), hi = _mm256_unpackhi_ps(cf, sf);
		_mm256_storeu_ps(cs + 2 * i, _mm256_permute2f128_ps(lo, hi, 0x20));
		_mm256_storeu_ps(cs + 2 * i + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
	}
	for (; i < np; i++) {
		double s, c;
		sincos(pos * r->theta[i], &s, &c);
		cs[2 * i] = (float)(c * m);
		cs[2 * i + 1] = (float)(s * m);
	}
}
#endif

/* pk__rope_sincos on an ISA (the scalar path is the reference itself). */
static void sincos_isa(pk_isa_t isa, const pk_rope_t *r, double pos, int with_mscale,
	float *cs)
{
#if PK_X86
	int cached = r->cs && (with_mscale || r->mscale == 1.0f) && pos >= 0 &&
		pos < r->cache_len && pos == floor(pos);
	if (!cached && isa != PK_ISA_SCALAR && angle_fits(r, pos)) {
		double m = with_mscale ? (double)r->mscale : 1.0;
		if (isa == PK_ISA_AVX512)
			sincos_avx512(r, pos, m, cs);
		else
			sincos_avx2(r, pos, m, cs);
		return;
	}
#endif
	pk__rope_sincos(r, pos, with_mscale, cs);
}

void pk__rope_rotate_rows(pk_isa_t isa, const pk_rope_t *r, float *x, int n,
	size_t ld, const float *cs)
{
#if PK_X86
	if (isa == PK_ISA_AVX512) {
		rotate_rows_avx512(r, x, n, ld, cs);
		return;
	}
	if (isa == PK_ISA_AVX2) {
		rotate_rows_avx2(r, x, n, ld, cs);
		return;
	}
#endif
	rotate_rows_scalar(r, x, n, ld, cs);
}

/* ---- apply / shift ---------------------------------------------------- */

typedef struct {
	const pk_rope_t *r;
	pk_isa_t isa;
	float *x;
	int T, H, rows_per_task;
	size_t ld;
	const int32_t *pos; /* apply: (T) */
	int shift;          /* shift: every row by delta, no mscale */
	int32_t delta;
} rope_job_t;

/* One task: rows [t0, t1) of x: (T, H, head_dim). */
static void rope_task(void *arg, int task, int tid)
{
	const rope_job_t *j = arg;
	const pk_rope_t *r = j->r;
	int t0 = task * j->rows_per_task;
	int t1 = t0 + j->rows_per_task < j->T ? t0 + j->rows_per_task : j->T;
	float buf[PK_MAX_HEAD_DIM];
	if (j->shift) /* one angle for every row */
		sincos_isa(j->isa, r, j->delta, 0, buf);
	for (int t = t0; t < t1; t++) {
		const float *cs = buf;
		if (!j->shift) {
			int32_t p = j->pos[t];
			if (r->cs && p >= 0 && p < r->cache_len)
				cs = r->cs + (size_t)p * r->rot_dims;
			else
				sincos_isa(j->isa, r, p, 1, buf);
		}
		pk__rope_rotate_rows(j->isa, r, j->x + (size_t)t * j->ld, j->H,
			(size_t)r->head_dim, cs);
	}
}

static void rope_run(pk_ctx_t *ctx, rope_job_t *j)
{
	if (j->T <= 0 || j->H <= 0)
		return;
	/* ~64 KiB of x per task: big enough to hide the task hand-out, small
	 * enough to balance two threads on short inputs */
	size_t row = (size_t)j->H * j->r->head_dim * sizeof(float);
	size_t rows = row >= 65536 ? 1 : 65536 / row;
	j->rows_per_task = rows > (size_t)j->T ? j->T : (int)rows;
	int n = (j->T + j->rows_per_task - 1) / j->rows_per_task;
	pk_parallel_for(ctx, n, rope_task, j);
}

void pk_rope_apply(pk_ctx_t *ctx, const pk_rope_t *r, float *x, int T, int H,
	size_t ld, const int32_t *pos)
{
	rope_job_t j = { r, ctx->isa, x, T, H, 0, ld, pos, 0, 0 };
	rope_run(ctx, &j);
}

void pk_rope_shift(pk_ctx_t *ctx, const pk_rope_t *r, float *x, int T, int H,
	size_t ld, int32_t delta)
{
	rope_job_t j = { r, ctx->isa, x, T, H, 0, ld, NULL, 1, delta };
	rope_run(ctx, &j);
}
