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
/* R_delta is the same for every row, so the coefficients are computed once
 * and laid out per lane: NORM (adjacent pairs) as cc[d], ss[d] with the
 * sign of the partner folded in; NEOX (halves) as cos[i], sin[i]. */
typedef struct {
	const pk_rope_t *r;
	int rot, layout;
	float cs[PK_MAX_HEAD_DIM];  /* (rot/2, 2) as pk__rope_sincos gives it */
	float cc[PK_MAX_HEAD_DIM];  /* NORM: (rot) / NEOX: cos (rot/2) */
	float ss[PK_MAX_HEAD_DIM];  /* NORM: (rot) signed / NEOX: sin (rot/2) */
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
			c->cc[2 * i] = co;
			c->cc[2 * i + 1] = co;
			c->ss[2 * i] = -si;
			c->ss[2 * i + 1] = si;
		} else {
			c->cc[i] = co;
			c->ss[i] = si;
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

/* f32 -> bf16, round to nearest even, NaN kept quiet (as pk_f32_to_bf16). */
PK_AVX2 static inline void store_bf16_avx2(pk_bf16_t *p, __m256 x)
{
	__m256i u = _mm256_castps_si256(x);
	__m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
	__m256i r = _mm256_srli_epi32(_mm256_add_epi32(u,
		_mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
	__m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
	__m256i isnan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
	r = _mm256_blendv_epi8(r, nan, isnan);
	__m128i h = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
	_mm_storeu_si128((__m128i *)p, h);
}

PK_AVX512 static inline void store_bf16_avx512(pk_bf16_t *p, __m512 x)
{
	__m512i u = _mm512_castps_si512(x);
	__m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
	__m512i r = _mm512_srli_epi32(_mm512_add_epi32(u,
		_mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
	__m512i nan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
	__mmask16 isnan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
	r = _mm512_mask_mov_epi32(r, isnan, nan);
	_mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(r));
}

/* NORM: x' = x*cc + swap(x)*ss, swap exchanging each adjacent pair (the
 * partner's sign is in ss); NEOX: a' = a c - b s, b' = a s + b c over the
 * two halves. Widened, rotated and rounded back in register. */
PK_AVX2 static void rot_bf16_avx2(const rot_coef_t *c, pk_bf16_t *base, int D, int n)
{
	int rot = c->rot, half = rot / 2;
	for (int r = 0; r < n; r++) {
		pk_bf16_t *x = base + (size_t)r * D;
		int j = 0;
		if (c->layout == PK_ROPE_NORM) {
			for (; j + 8 <= rot; j += 8) {
				__m256 a = pk__load_bf16_avx2(x + j);
				__m256 sw = _mm256_permute_ps(a, 0xB1);
				store_bf16_avx2(x + j, _mm256_fmadd_ps(a, _mm256_loadu_ps(c->cc + j),
					_mm256_mul_ps(sw, _mm256_loadu_ps(c->ss + j))));
			}
		} else {
			for (; j + 8 <= half; j += 8) {
				__m256 a = pk__load_bf16_avx2(x + j), b = pk__load_bf16_avx2(x + half + j);
				__m256 co = _mm256_loadu_ps(c->cc + j), si = _mm256_loadu_ps(c->ss + j);
				store_bf16_avx2(x + j, _mm256_fmsub_ps(a, co, _mm256_mul_ps(b, si)));
				store_bf16_avx2(x + half + j, _mm256_fmadd_ps(a, si, _mm256_mul_ps(b, co)));
			}
		}
		rot_bf16_tail(c, x, j);
	}
}

PK_AVX512 static void rot_bf16_avx512(const rot_coef_t *c, pk_bf16_t *base, int D, int n)
{
	int rot = c->rot, half = rot / 2;
	for (int r = 0; r < n; r++) {
		pk_bf16_t *x = base + (size_t)r * D;
		int j = 0;
		if (c->layout == PK_ROPE_NORM) {
			for (; j + 16 <= rot; j += 16) {
				__m512 a = pk__load_bf16_avx512(x + j);
				__m512 sw = _mm512_permute_ps(a, 0xB1);
				store_bf16_avx512(x + j, _mm512_fmadd_ps(a, _mm512_loadu_ps(c->cc + j),
					_mm512_mul_ps(sw, _mm512_loadu_ps(c->ss + j))));
			}
		} else {
			for (; j + 16 <= half; j += 16) {
				__m512 a = pk__load_bf16_avx512(x + j), b = pk__load_bf16_avx512(x + half + j);
				__m512 co = _mm512_loadu_ps(c->cc + j), si = _mm512_loadu_ps(c->ss + j);
				store_bf16_avx512(x + j, _mm512_fmsub_ps(a, co, _mm512_mul_ps(b, si)));
				store_bf16_avx512(x + half + j, _mm512_fmadd_ps(a, si, _mm512_mul_ps(b, co)));
			}
		}
		rot_bf16_tail(c, x, j);
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
