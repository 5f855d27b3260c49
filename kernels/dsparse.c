/* kernels/dsparse.c: Double Sparsity decode (arXiv 2408.07092): offline
 * channel calibration, the label cache of the r calibrated key channels,
 * and attention that ranks visible keys by q_r . label / sqrt(r), keeps the
 * top k (quickselect, ties to the lower index) and runs exact softmax
 * attention over just those. */
#include "config.h"

#include "kernels/attn_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- calibration --------------------------------------------------------- */
struct ch_score {
	double s;
	int c;
};

/* descending score, ties to the lower channel */
static int ch_cmp(const void *a, const void *b)
{
	const struct ch_score *x = a, *y = b;
	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return x->c - y->c;
}

// q: (T, n_heads, D) stride ldq; k: (T, n_kv_heads, D) stride ldk;
// channels: (n_kv_heads, r)
int pk_ds_calibrate(const float *q, size_t ldq, const float *k, size_t ldk,
	int T, int n_heads, int n_kv_heads, int head_dim, int r, int *channels)
{
	if (T <= 0 || n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads || head_dim <= 0 ||
	    head_dim > PK_MAX_HEAD_DIM || r <= 0 || r > head_dim ||
	    ldq < (size_t)n_heads * head_dim || ldk < (size_t)n_kv_heads * head_dim)
		return PK_EINVAL;
	const int D = head_dim, g = n_heads / n_kv_heads;
	struct ch_score sc[PK_MAX_HEAD_DIM];
	for (int kh = 0; kh < n_kv_heads; kh++) {
		for (int c = 0; c < D; c++) {
			sc[c].s = 0;
			sc[c].c = c;
		}
		for (int t = 0; t < T; t++) {
			const float *kr = k + (size_t)t * ldk + (size_t)kh * D;
			for (int j = 0; j < g; j++) {
				const float *qr = q + (size_t)t * ldq + (size_t)(kh * g + j) * D;
				for (int c = 0; c < D; c++)
					sc[c].s += fabs((double)qr[c] * (double)kr[c]);
			}
		}
		/* the mean over tokens ranks the same as the sum; kept for meaning */
		for (int c = 0; c < D; c++)
			sc[c].s /= T;
		qsort(sc, (size_t)D, sizeof sc[0], ch_cmp);
		for (int c = 0; c < r; c++)
			channels[(size_t)kh * r + c] = sc[c].c;
	}
	return PK_OK;
}

int pk_kv_label_init(pk_kv_t *kv, int r, const int *channels)
{
	if (r < 0 || r > kv->head_dim || (r > 0 && !channels))
		return PK_EINVAL;
	for (size_t i = 0; i < (size_t)kv->n_kv_heads * r; i++)
		if (channels[i] < 0 || channels[i] >= kv->head_dim)
			return PK_EINVAL;
	int *ch = NULL;
	float *lab = NULL;
	if (r > 0) {
		ch = pk__alloc((size_t)kv->n_kv_heads * r, sizeof *ch);
		lab = pk__alloc((size_t)kv->n_kv_heads * kv->cap * r, sizeof *lab);
		if (!ch || !lab) {
			pk__free(ch);
			pk__free(lab);
			return PK_ENOMEM;
		}
		memcpy(ch, channels, (size_t)kv->n_kv_heads * r * sizeof *ch);
	}
	pk__free(kv->label_ch);
	pk__free(kv->label);
	kv->label_r = r;
	kv->label_ch = ch;
	kv->label = lab;
	for (int h = 0; h < kv->n_kv_heads; h++)
		pk__kv_label_fill(kv, h, 0, kv->len[h]);
	return PK_OK;
}

/* ---- vector pieces, one set per ISA ------------------------------------- */
typedef struct {
	/* out[j] = (qr . lab[j]) * rs for n label rows of r */
	void (*scores)(const float *qr, const float *lab, int r, int n, float rs, float *out);
	float (*dot_kv)(const float *q, const void *k, pk_dtype_t dt, int n);
	void (*axpy_kv)(float *y, float a, const void *x, pk_dtype_t dt, int n);
} ds_ops_t;

/* s + a[i0..n) . b[i0..n), in order: the scalar reference (s = 0, i0 = 0)
 * and the tails of the vector dots. */
static inline float dot_from(float s, const float *a, const float *b, int i0, int n)
{
	for (int i = i0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* The same against a bf16 row. */
static inline float dot_bf16_from(float s, const float *q, const pk_bf16_t *kb, int i0, int n)
{
	for (int i = i0; i < n; i++)
		s += q[i] * pk_bf16_to_f32(kb[i]);
	return s;
}

static float dot_scalar(const float *a, const float *b, int n)
{
	return dot_from(0.0f, a, b, 0, n);
}

static void scores_scalar(const float *qr, const float *lab, int r, int n, float rs, float *out)
{
	for (int j = 0; j < n; j++)
		out[j] = dot_scalar(qr, lab + (size_t)j * r, r) * rs;
}

static float dot_kv_scalar(const float *q, const void *k, pk_dtype_t dt, int n)
{
	if (dt == PK_F32)
		return dot_scalar(q, k, n);
	return dot_bf16_from(0.0f, q, k, 0, n);
}

static void axpy_kv_scalar(float *y, float a, const void *x, pk_dtype_t dt, int n)
{
	for (int i = 0; i < n; i++)
		y[i] += a * (dt == PK_F32 ? ((const float *)x)[i]
		                          : pk_bf16_to_f32(((const pk_bf16_t *)x)[i]));
}

#if PK_X86
/* Shared end of scores_avx2/avx512 for four label rows l: (4, r): h holds
 * the hadd'ed partial dots over channels [0, rv); add channels [rv, r). */
PK_AVX2 static inline void scores_finish4(__m256 h, const float *qr, const float *l,
	int r, int rv, float rs, float *out)
{
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
	float t[4];
	_mm_storeu_ps(t, s4);
	for (int u = 0; u < 4; u++) {
		for (int c = rv; c < r; c++)
			t[u] += qr[c] * l[(size_t)u * r + c];
		out[u] = t[u] * rs;
	}
}

PK_AVX2 static float dot_avx2(const float *a, const float *b, int n)
{
	__m256 acc = _mm256_setzero_ps();
	int i = 0;
	for (; i + 8 <= n; i += 8)
		acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
	return dot_from(pk__hsum_avx2(acc), a, b, i, n);
}

/* Four label rows at a time, reduced together with hadd: a row of r = 8
 * or 16 channels is too short to pay a horizontal sum each. */
PK_AVX2 static void scores_avx2(const float *qr, const float *lab, int r, int n, float rs, float *out)
{
	const int rv = r & ~7;
	int j = 0;
	for (; j + 4 <= n; j += 4) {
		const float *l = lab + (size_t)j * r;
		__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		for (int c = 0; c < rv; c += 8) {
			__m256 q = _mm256_loadu_ps(qr + c);
			a0 = _mm256_fmadd_ps(q, _mm256_loadu_ps(l + c), a0);
			a1 = _mm256_fmadd_ps(q, _mm256_loadu_ps(l + r + c), a1);
			a2 = _mm256_fmadd_ps(q, _mm256_loadu_ps(l + 2 * r + c), a2);
			a3 = _mm256_fmadd_ps(q, _mm256_loadu_ps(l + 3 * r + c), a3);
		}
		__m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
		scores_finish4(h, qr, l, r, rv, rs, out + j);
	}
	for (; j < n; j++)
		out[j] = dot_avx2(qr, lab + (size_t)j * r, r) * rs;
}

PK_AVX2 static float dot_kv_avx2(const float *q, const void *k, pk_dtype_t dt, int n)
{
	if (dt == PK_F32)
		return dot_avx2(q, k, n);
	const pk_bf16_t *kb = k;
	__m256 acc = _mm256_setzero_ps();
	int i = 0;
	for (; i + 8 <= n; i += 8)
		acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), pk__load_bf16_avx2(kb + i), acc);
	return dot_bf16_from(pk__hsum_avx2(acc), q, kb, i, n);
}

PK_AVX2 static void axpy_kv_avx2(float *y, float a, const void *x, pk_dtype_t dt, int n)
{
	__m256 va = _mm256_set1_ps(a);
	int i = 0;
	if (dt == PK_F32) {
		const float *xf = x;
		for (; i + 8 <= n; i += 8)
			_mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(xf + i),
				_mm256_loadu_ps(y + i)));
	} else {
		const pk_bf16_t *xb = x;
		for (; i + 8 <= n; i += 8)
			_mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, pk__load_bf16_avx2(xb + i),
				_mm256_loadu_ps(y + i)));
	}
	axpy_kv_scalar(y + i, a, (const char *)x + (size_t)i * (dt == PK_F32 ? 4 : 2), dt, n - i);
}

PK_AVX512 static float dot_avx512(const float *a, const float *b, int n)
{
	__m512 acc = _mm512_setzero_ps();
	int i = 0;
	for (; i + 16 <= n; i += 16)
		acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
	return dot_from(_mm512_reduce_add_ps(acc), a, b, i, n);
}

PK_AVX512 static void scores_avx512(const float *qr, const float *lab, int r, int n, float rs, float *out)
{
	const int rv = r & ~15;
	int j = 0;
	for (; j + 4 <= n; j += 4) {
		const float *l = lab + (size_t)j * r;
		__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		for (int c = 0; c < rv; c += 16) {
			__m512 q = _mm512_loadu_ps(qr + c);
			a0 = _mm512_fmadd_ps(q, _mm512_loadu_ps(l + c), a0);
			a1 = _mm512_fmadd_ps(q, _mm512_loadu_ps(l + r + c), a1);
			a2 = _mm512_fmadd_ps(q, _mm512_loadu_ps(l + 2 * r + c), a2);
			a3 = _mm512_fmadd_ps(q, _mm512_loadu_ps(l + 3 * r + c), a3);
		}
#define PK_HALVES(a) _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1))
		__m256 h = _mm256_hadd_ps(_mm256_hadd_ps(PK_HALVES(a0), PK_HALVES(a1)),
			_mm256_hadd_ps(PK_HALVES(a2), PK_HALVES(a3)));
#undef PK_HALVES
		scores_finish4(h, qr, l, r, rv, rs, out + j);
	}
	for (; j < n; j++)
		out[j] = dot_avx512(qr, lab + (size_t)j * r, r) * rs;
}

PK_AVX512 static float dot_kv_avx512(const float *q, const void *k, pk_dtype_t dt, int n)
{
	if (dt == PK_F32)
		return dot_avx512(q, k, n);
	const pk_bf16_t *kb = k;
	__m512 acc = _mm512_setzero_ps();
	int i = 0;
	for (; i + 16 <= n; i += 16)
		acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), pk__load_bf16_avx512(kb + i), acc);
	return dot_bf16_from(_mm512_reduce_add_ps(acc), q, kb, i, n);
}

PK_AVX512 static void axpy_kv_avx512(float *y, float a, const void *x, pk_dtype_t dt, int n)
{
	__m512 va = _mm512_set1_ps(a);
	int i = 0;
	if (dt == PK_F32) {
		const float *xf = x;
		for (; i + 16 <= n; i += 16)
			_mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(xf + i),
				_mm512_loadu_ps(y + i)));
	} else {
		const pk_bf16_t *xb = x;
		for (; i + 16 <= n; i += 16)
			_mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, pk__load_bf16_avx512(xb + i),
				_mm512_loadu_ps(y + i)));
	}
	axpy_kv_scalar(y + i, a, (const char *)x + (size_t)i * (dt == PK_F32 ? 4 : 2), dt, n - i);
}
#endif

static ds_ops_t ds_ops(pk_isa_t isa)
{
#if PK_X86
	if (isa == PK_ISA_AVX512)
		return (ds_ops_t){ scores_avx512, dot_kv_avx512, axpy_kv_avx512 };
	if (isa == PK_ISA_AVX2)
		return (ds_ops_t){ scores_avx2, dot_kv_avx2, axpy_kv_avx2 };
#endif
	return (ds_ops_t){ scores_scalar, dot_kv_scalar, axpy_kv_scalar };
}

/* ---- top-k selection ------------------------------------------------------ */
/* a ranks before b: higher score, or equal score and lower index. The order
 * is total, so the chosen set does not depend on the pivots. */
static inline int better(const float *s, const int *ix, int a, int b)
{
	return s[a] > s[b] || (s[a] == s[b] && ix[a] < ix[b]);
}

static inline void swap2(float *s, int *ix, int a, int b)
{
	float t = s[a];
	s[a] = s[b];
	s[b] = t;
	int u = ix[a];
	ix[a] = ix[b];
	ix[b] = u;
}

/* Reorder (s, ix)[0, n) so its first k entries are the k best. */
static void quickselect(float *s, int *ix, int n, int k)
{
	int lo = 0, hi = n; /* the boundary k lies in [lo, hi) */
	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2, last = hi - 1;
		/* median of three to last */
		if (better(s, ix, mid, lo))
			swap2(s, ix, mid, lo);
		if (better(s, ix, last, lo))
			swap2(s, ix, last, lo);
		if (better(s, ix, mid, last))
			swap2(s, ix, mid, last);
		int st = lo;
		for (int i = lo; i < last; i++)
			if (better(s, ix, i, last))
				swap2(s, ix, i, st++);
		swap2(s, ix, st, last);
		/* [lo, st) beat the pivot at st; (st, hi) lose to it */
		if (k <= st)
			hi = st;
		else if (k > st + 1)
			lo = st + 1;
		else
			return;
	}
}

static int int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* ---- attention ---------------------------------------------------------- */
/* Visibility and bias are pk_attention's own (attn_int.h), so topk >= the
 * visible keys gives exactly its key set. */
struct ds_arg {
	const pk_attn_cfg_t *cfg;
	const float *q;
	size_t ldq, ldo;
	const int32_t *qpos;
	const pk_kv_t *kv;
	int topk;
	float *out;
	float scale;
	ds_ops_t ops;
	pk_ctx_t *ctx;
};

// one (query t, head h) per task; scratch: sc (cap), ix (cap), acc (D), qr (r)
static void ds_task(void *varg, int i, int tid)
{
	struct ds_arg *a = varg;
	const pk_attn_cfg_t *cfg = a->cfg;
	const pk_kv_t *kv = a->kv;
	const int H = cfg->n_heads, D = kv->head_dim, r = kv->label_r;
	const int t = i / H, h = i % H, kh = h / (H / kv->n_kv_heads);
	const float *q = a->q + (size_t)t * a->ldq + (size_t)h * D;
	float *o = a->out + (size_t)t * a->ldo + (size_t)h * D;
	const int32_t qp = a->qpos[t], *kp = kv->pos + (size_t)kh * kv->cap;
	const int len = kv->len[kh];

	char *scr = pk__scratch(a->ctx, tid);
	float *sc = (float *)scr;
	int *ix = (int *)(scr + (size_t)kv->cap * sizeof(float));
	float *acc = (float *)(scr + (size_t)kv->cap * (sizeof(float) + sizeof(int)));
	float *qr = acc + D;

	/* approximate scores over the visible keys, from the label cache */
	const int *ch = kv->label_ch + (size_t)kh * r;
	for (int c = 0; c < r; c++)
		qr[c] = q[ch[c]];
	const float rs = 1.0f / sqrtf((float)r);
	const float *lab = kv->label + (size_t)kh * kv->cap * r;
	/* score every key, then keep the visible ones (compacting in place) */
	a->ops.scores(qr, lab, r, len, rs, sc);
	int n = 0;
	for (int j = 0; j < len; j++)
		if (pk__attn_visible(cfg, qp, kp[j], j)) {
			sc[n] = sc[j];
			ix[n++] = j;
		}
	if (n > a->topk) {
		quickselect(sc, ix, n, a->topk);
		n = a->topk;
		qsort(ix, (size_t)n, sizeof *ix, int_cmp); /* keys in cache order */
	}

	/* exact softmax over the chosen keys */
	float m = cfg->sink_logits ? cfg->sink_logits[h] : -INFINITY;
	for (int c = 0; c < n; c++) {
		int j = ix[c];
		sc[c] = a->ops.dot_kv(q, pk__kv_row(kv, kv->k, kh, j), kv->dtype, D) * a->scale +
			(float)pk__attn_bias_ref(cfg, h, qp, kp[j]);
		if (sc[c] > m)
			m = sc[c];
	}
	memset(acc, 0, (size_t)D * sizeof *acc);
	if (n == 0) {
		memcpy(o, acc, (size_t)D * sizeof *o);
		return;
	}
	double sum = cfg->sink_logits ? exp((double)cfg->sink_logits[h] - m) : 0.0;
	for (int c = 0; c < n; c++) {
		float p = expf(sc[c] - m);
		sum += p;
		a->ops.axpy_kv(acc, p, pk__kv_row(kv, kv->v, kh, ix[c]), kv->dtype, D);
	}
	float inv = (float)(1.0 / sum);
	for (int d = 0; d < D; d++)
		o[d] = acc[d] * inv;
}

int pk_attention_ds(pk_ctx_t *ctx, const pk_attn_cfg_t *cfg, const float *q,
	int Tq, size_t ldq, const int32_t *qpos, const pk_kv_t *kv, int topk,
	float *out, size_t ldo)
{
	if (!cfg || !kv || cfg->n_heads <= 0 || cfg->n_kv_heads != kv->n_kv_heads ||
	    cfg->n_heads % cfg->n_kv_heads || cfg->head_dim != kv->head_dim || Tq < 0 ||
	    (Tq > 0 && (!q || !qpos || !out)) || !isfinite(cfg->scale) || cfg->window < 0 ||
	    cfg->n_sink_tokens < 0 || topk <= 0 || kv->label_r <= 0 ||
	    ldq < (size_t)cfg->n_heads * cfg->head_dim || ldo < (size_t)cfg->n_heads * cfg->head_dim ||
	    (cfg->bias.kind == PK_BIAS_ALIBI && !cfg->bias.alibi_slopes) ||
	    (cfg->bias.kind == PK_BIAS_T5 && (!cfg->bias.t5_table ||
		pk_t5_bucket(0, cfg->bias.t5_bidirectional, cfg->bias.t5_num_buckets,
			cfg->bias.t5_max_distance) < 0)) ||
	    (unsigned)cfg->bias.kind > PK_BIAS_T5)
		return PK_EINVAL;
	if (Tq == 0)
		return PK_OK;
	size_t need = (size_t)kv->cap * (sizeof(float) + sizeof(int)) +
		(size_t)(kv->head_dim + kv->label_r) * sizeof(float);
	int rc = pk__scratch_reserve(ctx, need);
	if (rc != PK_OK)
		return rc;
	struct ds_arg a = { cfg, q, ldq, ldo, qpos, kv, topk, out,
		cfg->scale != 0 ? cfg->scale : 1.0f / sqrtf((float)cfg->head_dim),
		ds_ops(ctx->isa), ctx };
	pk_parallel_for(ctx, Tq * cfg->n_heads, ds_task, &a);
	return PK_OK;
}
