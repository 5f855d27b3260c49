/* kernels/kv.c: the KV cache: per-head contiguous rows in f32 or bf16,
 * append, PIE-style re-rotation of cached keys by a position delta (one
 * R_delta for every row, vectorised, bf16 re-rounded in register) and
 * StreamingLLM / DuoAttention streaming eviction. The Double Sparsity
 * label cache (dsparse.c) is kept in step on every edit here. */
#include "config.h"

#include "kernels/kernels_int.h"

#include <string.h>

static size_t elsize(pk_dtype_t dt) { return dt == PK_BF16 ? 2 : 4; }

/* Row i of head h of k or v. */
static void *row_ptr(const pk_kv_t *kv, void *base, int h, int i)
{
	size_t off = ((size_t)h * (size_t)kv->cap + (size_t)i) * (size_t)kv->head_dim;
	return (char *)base + off * elsize(kv->dtype);
}

int pk_kv_init(pk_kv_t *kv, int n_kv_heads, int head_dim, int cap, pk_dtype_t dtype)
{
	memset(kv, 0, sizeof *kv);
	if (n_kv_heads <= 0 || head_dim <= 0 || head_dim > PK_MAX_HEAD_DIM || cap <= 0 ||
	    (dtype != PK_F32 && dtype != PK_BF16))
		return PK_EINVAL;
	size_t rows = (size_t)n_kv_heads * (size_t)cap;
	kv->n_kv_heads = n_kv_heads;
	kv->head_dim = head_dim;
	kv->cap = cap;
	kv->dtype = dtype;
	kv->k = pk__alloc(rows * (size_t)head_dim, elsize(dtype));
	kv->v = pk__alloc(rows * (size_t)head_dim, elsize(dtype));
	kv->pos = pk__alloc(rows, sizeof *kv->pos);
	kv->len = pk__alloc((size_t)n_kv_heads, sizeof *kv->len);
	kv->streaming = pk__alloc((size_t)n_kv_heads, 1);
	if (!kv->k || !kv->v || !kv->pos || !kv->len || !kv->streaming) {
		pk_kv_free(kv);
		return PK_ENOMEM;
	}
	memset(kv->len, 0, (size_t)n_kv_heads * sizeof *kv->len);
	memset(kv->streaming, 0, (size_t)n_kv_heads);
	return PK_OK;
}

void pk_kv_free(pk_kv_t *kv)
{
	pk__free(kv->k);
	pk__free(kv->v);
	pk__free(kv->pos);
	pk__free(kv->len);
	pk__free(kv->streaming);
	pk__free(kv->label_ch);
	pk__free(kv->label);
	memset(kv, 0, sizeof *kv);
}

/* Streaming flags and label channels are configuration: they stay. */
void pk_kv_reset(pk_kv_t *kv)
{
	for (int h = 0; h < kv->n_kv_heads; h++)
		kv->len[h] = 0;
}

/* The label cache holds copies of the stored (bf16-rounded) key channels so
 * approximate scores see exactly the keys that exact attention sees. */
void pk__kv_label_fill(pk_kv_t *kv, int h, int from, int to)
{
	int r = kv->label_r;
	if (r <= 0)
		return;
	const int *ch = kv->label_ch + (size_t)h * r;
	for (int i = from; i < to; i++) {
		float *lab = kv->label + ((size_t)h * kv->cap + i) * r;
		if (kv->dtype == PK_BF16) {
			const pk_bf16_t *k = row_ptr(kv, kv->k, h, i);
			for (int c = 0; c < r; c++)
				lab[c] = pk_bf16_to_f32(k[ch[c]]);
		} else {
			const float *k = row_ptr(kv, kv->k, h, i);
			for (int c = 0; c < r; c++)
				lab[c] = k[ch[c]];
		}
	}
}

/* ---- append ------------------------------------------------------------- */
struct append_arg {
	pk_kv_t *kv;
	const float *k, *v;
	int n;
	size_t ld;
	const int32_t *pos;
};

static void store_row(pk_dtype_t dt, void *dst, const float *src, int D)
{
	if (dt == PK_BF16) {
		pk_bf16_t *d = dst;
		for (int j = 0; j < D; j++)
			d[j] = pk_f32_to_bf16(src[j]);
	} else {
		memcpy(dst, src, (size_t)D * sizeof *src);
	}
}

// k, v: (n, n_kv_heads, D) row stride ld; one task per head
static void append_task(void *varg, int h, int tid)
{
	struct append_arg *a = varg;
	pk_kv_t *kv = a->kv;
	int D = kv->head_dim, at = kv->len[h];
	for (int t = 0; t < a->n; t++) {
		const float *ks = a->k + (size_t)t * a->ld + (size_t)h * D;
		const float *vs = a->v + (size_t)t * a->ld + (size_t)h * D;
		store_row(kv->dtype, row_ptr(kv, kv->k, h, at + t), ks, D);
		store_row(kv->dtype, row_ptr(kv, kv->v, h, at + t), vs, D);
		kv->pos[(size_t)h * kv->cap + at + t] = a->pos[t];
	}
	pk__kv_label_fill(kv, h, at, at + a->n);
	kv->len[h] = at + a->n;
}

int pk_kv_append(pk_ctx_t *ctx, pk_kv_t *kv, const float *k, const float *v,
	int n, size_t ld, const int32_t *pos)
{
	if (n < 0 || (n > 0 && (!k || !v || !pos)) || ld < (size_t)kv->n_kv_heads * kv->head_dim)
		return PK_EINVAL;
	for (int h = 0; h < kv->n_kv_heads; h++)
		if (n > kv->cap - kv->len[h])
			return PK_ENOSPC;
	if (n == 0)
		return PK_OK;
	struct append_arg a = { kv, k, v, n, ld, pos };
	/* a decode step (n = 1) is not worth waking the pool for */
	if ((size_t)n * kv->head_dim < 4096)
		for (int h = 0; h < kv->n_kv_heads; h++)
			append_task(&a, h, 0);
	else
		pk_parallel_for(ctx, kv->n_kv_heads, append_task, &a);
	return PK_OK;
}

/* ---- re-rotation -------------------------------------------------------- */
/* R_delta is the same for every row, so the coefficients are computed once.
 * The bf16 vector paths read two bf16 as one 32-bit lane (low element,
 * high element) and widen each with a shift or a mask, no shuffles; so the
 * cos/sin are laid out per lane: NORM (a lane is one pair) as c0[i], s0[i]
 * per pair; NEOX (lane m holds elements 2m, 2m+1 of each half) as c0/s0
 * for the even element and c1/s1 for the odd one. */
typedef struct {
	const pk_rope_t *r;
	int rot, layout;
	float cs[PK_MAX_HEAD_DIM];     /* (rot/2, 2) as pk__rope_sincos gives it */
	float c0[PK_MAX_HEAD_DIM / 2], s0[PK_MAX_HEAD_DIM / 2];
	float c1[PK_MAX_HEAD_DIM / 4], s1[PK_MAX_HEAD_DIM / 4];
} rot_coef_t;

static void rot_coef(rot_coef_t *c, const pk_rope_t *r, int32_t delta)
{
	c->r = r;
	c->rot = r->rot_dims;
	c->layout = r->layout;
	pk__rope_sincos(r, delta, 0, c->cs);
	int half = c->rot / 2;
	for (int i = 0; i < half; i++) {
		float co = c->cs[2 * i], si = c->cs[2 * i + 1];
		if (c->layout == PK_ROPE_NORM) {
			c->c0[i] = co;
			c->s0[i] = si;
		} else if (i % 2 == 0) {
			c->c0[i / 2] = co;
			c->s0[i / 2] = si;
		} else {
			c->c1[i / 2] = co;
			c->s1[i / 2] = si;
		}
	}
}

/* bf16 rows: the reference widens a row, rotates it with the rope
 * module's own one-row rotation and rounds the rotated dims back once. */
static void rot_bf16_scalar(const rot_coef_t *c, pk_bf16_t *base, int D, int n)
{
	float tmp[PK_MAX_HEAD_DIM];
	for (int i = 0; i < n; i++) {
		pk_bf16_t *x = base + (size_t)i * D;
		for (int j = 0; j < D; j++)
			tmp[j] = pk_bf16_to_f32(x[j]);
		pk__rope_rotate(c->r, tmp, c->cs);
		for (int j = 0; j < c->rot; j++)
			x[j] = pk_f32_to_bf16(tmp[j]);
	}
}

#if PK_X86
/* Pairs past the last full vector, through the reference. */
static void rot_bf16_tail(const rot_coef_t *c, pk_bf16_t *x, int from)
{
	int half = c->rot / 2, norm = c->layout == PK_ROPE_NORM;
	for (int i = norm ? from / 2 : from; i < half; i++) {
		int ia = norm ? 2 * i : i, ib = norm ? 2 * i + 1 : i + half;
		float a = pk_bf16_to_f32(x[ia]), b = pk_bf16_to_f32(x[ib]);
		float co = c->cs[2 * i], si = c->cs[2 * i + 1];
		x[ia] = pk_f32_to_bf16(a * co - b * si);
		x[ib] = pk_f32_to_bf16(a * si + b * co);
	}
}

/* Rounding as pk_f32_to_bf16 (nearest even), leaving the bf16 in the top
 * 16 bits of each lane; pack puts lo's bf16 in the low half of the lane and
 * hi's in the high half (the memory order of a pair). No NaN case is
 * needed here: every input is a widened bf16 (low 16 bits zero) and x86
 * arithmetic returns a NaN operand's payload or the default NaN, so a NaN
 * result has a zero low half and rounding cannot carry into the exponent. */
PK_AVX2 static inline __m256i bf16_top_avx2(__m256 y)
{
	__m256i u = _mm256_castps_si256(y);
	__m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
	return _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
}

PK_AVX2 static inline __m256i bf16_pack_avx2(__m256 lo, __m256 hi)
{
	return _mm256_or_si256(_mm256_and_si256(bf16_top_avx2(hi), _mm256_set1_epi32((int)0xffff0000u)),
		_mm256_srli_epi32(bf16_top_avx2(lo), 16));
}

PK_AVX2 static inline __m256 bf16_lo_avx2(__m256i l) { return _mm256_castsi256_ps(_mm256_slli_epi32(l, 16)); }
PK_AVX2 static inline __m256 bf16_hi_avx2(__m256i l)
{
	return _mm256_castsi256_ps(_mm256_and_si256(l, _mm256_set1_epi32((int)0xffff0000u)));
}

PK_AVX512 static inline __m512i bf16_top_avx512(__m512 y)
{
	__m512i u = _mm512_castps_si512(y);
	__m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
	return _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
}

PK_AVX512 static inline __m512i bf16_pack_avx512(__m512 lo, __m512 hi)
{
	return _mm512_or_si512(_mm512_and_si512(bf16_top_avx512(hi), _mm512_set1_epi32((int)0xffff0000u)),
		_mm512_srli_epi32(bf16_top_avx512(lo), 16));
}

PK_AVX512 static inline __m512 bf16_lo_avx512(__m512i l) { return _mm512_castsi512_ps(_mm512_slli_epi32(l, 16)); }
PK_AVX512 static inline __m512 bf16_hi_avx512(__m512i l)
{
	return _mm512_castsi512_ps(_mm512_and_si512(l, _mm512_set1_epi32((int)0xffff0000u)));
}

/* NORM: lane i is pair i: a' = a c - b s, b' = a s + b c. NEOX: lanes of the
 * two halves, even and odd elements with their own c/s (needs rot/2 even;
 * otherwise the row goes through the tail). */
PK_AVX2 static void rot_bf16_avx2(const rot_coef_t *c, pk_bf16_t *base, int D, int n)
{
	const int half = c->rot / 2, norm = c->layout == PK_ROPE_NORM;
	const int lanes = norm ? half : (half % 2 ? 0 : half / 2);
	for (int r = 0; r < n; r++) {
		pk_bf16_t *x = base + (size_t)r * D;
		int m = 0;
		for (; m + 8 <= lanes; m += 8) {
			__m256 c0 = _mm256_loadu_ps(c->c0 + m), s0 = _mm256_loadu_ps(c->s0 + m);
			__m256i L = _mm256_loadu_si256((const __m256i *)(x + 2 * m));
			__m256 a = bf16_lo_avx2(L), b = bf16_hi_avx2(L);
			if (norm) {
				_mm256_storeu_si256((__m256i *)(x + 2 * m), bf16_pack_avx2(
					_mm256_fmsub_ps(a, c0, _mm256_mul_ps(b, s0)),
					_mm256_fmadd_ps(a, s0, _mm256_mul_ps(b, c0))));
				continue;
			}
			__m256 c1 = _mm256_loadu_ps(c->c1 + m), s1 = _mm256_loadu_ps(c->s1 + m);
			__m256i H = _mm256_loadu_si256((const __m256i *)(x + half + 2 * m));
			__m256 e = bf16_lo_avx2(H), f = bf16_hi_avx2(H); /* partners of a, b */
			_mm256_storeu_si256((__m256i *)(x + 2 * m), bf16_pack_avx2(
				_mm256_fmsub_ps(a, c0, _mm256_mul_ps(e, s0)),
				_mm256_fmsub_ps(b, c1, _mm256_mul_ps(f, s1))));
			_mm256_storeu_si256((__m256i *)(x + half + 2 * m), bf16_pack_avx2(
				_mm256_fmadd_ps(a, s0, _mm256_mul_ps(e, c0)),
				_mm256_fmadd_ps(b, s1, _mm256_mul_ps(f, c1))));
		}
		rot_bf16_tail(c, x, 2 * m);
	}
}

PK_AVX512 static void rot_bf16_avx512(const rot_coef_t *c, pk_bf16_t *base, int D, int n)
{
	const int half = c->rot / 2, norm = c->layout == PK_ROPE_NORM;
	const int lanes = norm ? half : (half % 2 ? 0 : half / 2);
	for (int r = 0; r < n; r++) {
		pk_bf16_t *x = base + (size_t)r * D;
		int m = 0;
		for (; m + 16 <= lanes; m += 16) {
			__m512 c0 = _mm512_loadu_ps(c->c0 + m), s0 = _mm512_loadu_ps(c->s0 + m);
			__m512i L = _mm512_loadu_si512(x + 2 * m);
			__m512 a = bf16_lo_avx512(L), b = bf16_hi_avx512(L);
			if (norm) {
				_mm512_storeu_si512(x + 2 * m, bf16_pack_avx512(
					_mm512_fmsub_ps(a, c0, _mm512_mul_ps(b, s0)),
					_mm512_fmadd_ps(a, s0, _mm512_mul_ps(b, c0))));
				continue;
			}
			__m512 c1 = _mm512_loadu_ps(c->c1 + m), s1 = _mm512_loadu_ps(c->s1 + m);
			__m512i H = _mm512_loadu_si512(x + half + 2 * m);
			__m512 e = bf16_lo_avx512(H), f = bf16_hi_avx512(H);
			_mm512_storeu_si512(x + 2 * m, bf16_pack_avx512(
				_mm512_fmsub_ps(a, c0, _mm512_mul_ps(e, s0)),
				_mm512_fmsub_ps(b, c1, _mm512_mul_ps(f, s1))));
			_mm512_storeu_si512(x + half + 2 * m, bf16_pack_avx512(
				_mm512_fmadd_ps(a, s0, _mm512_mul_ps(e, c0)),
				_mm512_fmadd_ps(b, s1, _mm512_mul_ps(f, c1))));
		}
		rot_bf16_tail(c, x, 2 * m);
	}
}
#endif

/* n rows of D at base, all by the same R_delta. f32 rows go through the
 * rope module's row rotation (the same code pk_rope_shift runs). */
static void rot_rows(pk_isa_t isa, const rot_coef_t *c, void *base, pk_dtype_t dt, int D, int n)
{
	if (dt == PK_F32) {
		pk__rope_rotate_rows(isa, c->r, base, n, (size_t)D, c->cs);
		return;
	}
#if PK_X86
	if (isa == PK_ISA_AVX512) {
		rot_bf16_avx512(c, base, D, n);
		return;
	}
	if (isa == PK_ISA_AVX2) {
		rot_bf16_avx2(c, base, D, n);
		return;
	}
#endif
	rot_bf16_scalar(c, base, D, n);
}

/* Rows [from[h], to[h]) of each listed head, cut into chunks of about
 * 64 KiB so both threads stream. */
#define ROT_CHUNK_BYTES (64 << 10)

struct rot_arg {
	pk_kv_t *kv;
	pk_isa_t isa;
	const rot_coef_t *c;
	int32_t delta;
	const int *heads; /* (nh) */
	const int *from, *to; /* (n_kv_heads) */
	int nh, rows_per_chunk, chunks_per_head;
};

static void rot_task(void *varg, int i, int tid)
{
	struct rot_arg *a = varg;
	pk_kv_t *kv = a->kv;
	int h = a->heads[i / a->chunks_per_head];
	int lo = a->from[h] + (i % a->chunks_per_head) * a->rows_per_chunk;
	int hi = lo + a->rows_per_chunk < a->to[h] ? lo + a->rows_per_chunk : a->to[h];
	if (lo >= hi)
		return;
	rot_rows(a->isa, a->c, row_ptr(kv, kv->k, h, lo), kv->dtype, kv->head_dim, hi - lo);
	int32_t *p = kv->pos + (size_t)h * kv->cap;
	for (int j = lo; j < hi; j++)
		p[j] += a->delta;
	pk__kv_label_fill(kv, h, lo, hi);
}

/* Rotate rows [from[h], to[h]) of heads[0..nh) by delta. */
static void rerotate_heads(pk_ctx_t *ctx, pk_kv_t *kv, const pk_rope_t *r,
	const int *heads, int nh, const int *from, const int *to, int32_t delta)
{
	rot_coef_t c;
	rot_coef(&c, r, delta);
	int maxrows = 0;
	for (int i = 0; i < nh; i++)
		if (to[heads[i]] - from[heads[i]] > maxrows)
			maxrows = to[heads[i]] - from[heads[i]];
	if (maxrows <= 0)
		return;
	int rpc = ROT_CHUNK_BYTES / (kv->head_dim * (int)elsize(kv->dtype));
	if (rpc < 1)
		rpc = 1;
	struct rot_arg a = { kv, ctx->isa, &c, delta, heads, from, to, nh, rpc,
		(maxrows + rpc - 1) / rpc };
	pk_parallel_for(ctx, nh * a.chunks_per_head, rot_task, &a);
}

int pk_kv_rerotate(pk_ctx_t *ctx, pk_kv_t *kv, const pk_rope_t *r, int from,
	int to, int32_t delta)
{
	int H = kv->n_kv_heads;
	if (!r || r->head_dim != kv->head_dim || from < 0 || to < from)
		return PK_EINVAL;
	for (int h = 0; h < H; h++)
		if (to > kv->len[h])
			return PK_ERANGE;
	if (delta == 0 || to == from)
		return PK_OK;
	int *buf = pk__alloc((size_t)H * 3, sizeof *buf);
	if (!buf)
		return PK_ENOMEM;
	int *heads = buf, *fr = buf + H, *tt = buf + 2 * H;
	for (int h = 0; h < H; h++) {
		heads[h] = h;
		fr[h] = from;
		tt[h] = to;
	}
	rerotate_heads(ctx, kv, r, heads, H, fr, tt, delta);
	pk__free(buf);
	return PK_OK;
}

/* ---- remove and streaming eviction ------------------------------------ */
/* Move rows [src, src+n) of head h to dst (dst < src), labels included. */
static void move_rows(pk_kv_t *kv, int h, int dst, int src, int n)
{
	if (n <= 0 || dst == src)
		return;
	size_t rb = (size_t)kv->head_dim * elsize(kv->dtype);
	memmove(row_ptr(kv, kv->k, h, dst), row_ptr(kv, kv->k, h, src), (size_t)n * rb);
	memmove(row_ptr(kv, kv->v, h, dst), row_ptr(kv, kv->v, h, src), (size_t)n * rb);
	int32_t *p = kv->pos + (size_t)h * kv->cap;
	memmove(p + dst, p + src, (size_t)n * sizeof *p);
	if (kv->label_r > 0) {
		float *l = kv->label + (size_t)h * kv->cap * kv->label_r;
		memmove(l + (size_t)dst * kv->label_r, l + (size_t)src * kv->label_r,
			(size_t)n * kv->label_r * sizeof *l);
	}
}

int pk_kv_remove(pk_kv_t *kv, int from, int to)
{
	if (from < 0 || to < from)
		return PK_EINVAL;
	for (int h = 0; h < kv->n_kv_heads; h++)
		if (to > kv->len[h])
			return PK_ERANGE;
	for (int h = 0; h < kv->n_kv_heads; h++) {
		move_rows(kv, h, from, to, kv->len[h] - to);
		kv->len[h] -= to - from;
	}
	return PK_OK;
}

/* The first kept recent key moves to just after the last sink (or, with no
 * sinks, to where the head's first key was), and the rest follow it. */
int pk_kv_evict_streaming(pk_ctx_t *ctx, pk_kv_t *kv, int n_sink, int n_recent,
	const pk_rope_t *reindex)
{
	int H = kv->n_kv_heads;
	if (n_sink < 0 || n_recent < 0 || (reindex && reindex->head_dim != kv->head_dim))
		return PK_EINVAL;
	int *buf = pk__alloc((size_t)H * 4, sizeof *buf);
	if (!buf)
		return PK_ENOMEM;
	int *heads = buf, *fr = buf + H, *tt = buf + 2 * H, *dl = buf + 3 * H;
	int nh = 0;
	for (int h = 0; h < H; h++) {
		fr[h] = tt[h] = dl[h] = 0;
		int len = kv->len[h];
		if (!kv->streaming[h] || len == 0)
			continue;
		int32_t *p = kv->pos + (size_t)h * kv->cap;
		int32_t start = p[0];
		if (len > n_sink + n_recent) {
			move_rows(kv, h, n_sink, len - n_recent, n_recent);
			kv->len[h] = len = n_sink + n_recent;
		}
		if (reindex && len > n_sink) {
			int32_t want = n_sink > 0 ? p[n_sink - 1] + 1 : start;
			dl[h] = want - p[n_sink];
			fr[h] = n_sink;
			tt[h] = len;
			if (dl[h] != 0)
				heads[nh++] = h;
		}
	}
	/* heads differ in their gap; group equal deltas into one pass each */
	int done = 0;
	while (done < nh) {
		int32_t d = dl[heads[done]];
		int *grp = heads + done, ng = 0;
		for (int i = done; i < nh; i++)
			if (dl[heads[i]] == d) {
				int t = heads[done + ng];
				heads[done + ng] = heads[i];
				heads[i] = t;
				ng++;
			}
		rerotate_heads(ctx, kv, reindex, grp, ng, fr, tt, d);
		done += ng;
	}
	pk__free(buf);
	return PK_OK;
}
