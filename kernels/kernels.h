/* kernels/kernels.h: posbench's numeric core (prefix pk_). GEMM, norms,
 * activations, every positional-encoding scheme, attention, KV-cache ops,
 * Double Sparsity decode and similarity top-k, on the CPU with a scalar
 * reference and AVX2/AVX-512 paths chosen at run time. No I/O, no JSON, no
 * logging: errors are negative PK_E* codes (pk_strerror names them). */
#ifndef PK_KERNELS_H
#define PK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------ */
#define PK_OK 0
#define PK_EINVAL (-1)  /* bad shape, parameter or combination */
#define PK_ENOMEM (-2)  /* allocation failed */
#define PK_ENOSPC (-3)  /* KV cache full */
#define PK_ERANGE (-4)  /* an index (token id, position) out of range */
#define PK_ENOTSUP (-5) /* ISA not supported by this CPU or build */
const char *pk_strerror(int rc);

/* ---- context: ISA and threads ------------------------------------------ */
typedef enum {
	PK_ISA_AUTO = -1, /* the best this CPU supports */
	PK_ISA_SCALAR = 0,
	PK_ISA_AVX2 = 1,  /* AVX2 + FMA */
	PK_ISA_AVX512 = 2 /* AVX-512 F/BW/DQ/VL */
} pk_isa_t;

typedef struct pk_ctx pk_ctx_t;

/* A context holds the ISA every kernel called with it uses, a thread pool
 * of nthreads (1 = run on the caller's thread; <= 0 = online CPUs) and
 * per-thread scratch. Asking for an ISA the CPU lacks is PK_ENOTSUP.
 * *out is NULL on failure. One context must not be used by two threads at
 * once; make one per thread instead. */
int pk_ctx_create(pk_ctx_t **out, int nthreads, pk_isa_t isa);
void pk_ctx_destroy(pk_ctx_t *ctx);
pk_isa_t pk_ctx_isa(const pk_ctx_t *ctx);
int pk_ctx_threads(const pk_ctx_t *ctx);
pk_isa_t pk_cpu_isa(void);                       /* best supported here */
const char *pk_isa_name(pk_isa_t isa);           /* "scalar", "avx2", "avx512" */
int pk_isa_parse(const char *name, pk_isa_t *out); /* also "auto" */
const char *pk_blas_name(void); /* "OpenBLAS 0.3.21 ... Haswell" or "builtin" */

/* Run fn(arg, i, tid) for i in [0, n) on the context's threads; tid is in
 * [0, pk_ctx_threads) and distinct among concurrent calls. Returns when
 * all are done. Work is handed out dynamically, one index at a time. */
typedef void (*pk_task_fn)(void *arg, int i, int tid);
void pk_parallel_for(pk_ctx_t *ctx, int n, pk_task_fn fn, void *arg);

/* ---- bf16 -------------------------------------------------------------- */
typedef uint16_t pk_bf16_t;
typedef enum { PK_F32 = 0, PK_BF16 = 1 } pk_dtype_t;

static inline float pk_bf16_to_f32(pk_bf16_t h)
{
	union { uint32_t u; float f; } v;
	v.u = (uint32_t)h << 16;
	return v.f;
}

/* Round to nearest even; NaN stays NaN. */
static inline pk_bf16_t pk_f32_to_bf16(float f)
{
	union { uint32_t u; float f; } v;
	v.f = f;
	if ((v.u & 0x7fffffffu) > 0x7f800000u)
		return (pk_bf16_t)((v.u >> 16) | 0x40);
	v.u += 0x7fffu + ((v.u >> 16) & 1u);
	return (pk_bf16_t)(v.u >> 16);
}

/* ---- dense linear algebra (gemm.c) ------------------------------------- */
/* Row-major. C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C.
 * trans_a: A is stored (K,M); trans_b: B is stored (N,K). Through
 * cblas_sgemm when configure found a BLAS (and the ISA is not scalar),
 * otherwise a blocked C fallback; PK_ISA_SCALAR is the plain triple loop. */
void pk_sgemm(pk_ctx_t *ctx, int trans_a, int trans_b, int M, int N, int K,
	float alpha, const float *A, int lda, const float *B, int ldb,
	float beta, float *C, int ldc);
/* y(M) = alpha * A(M,N) x(N) + beta * y; trans: y(N) = alpha * A^T x(M) + beta*y. */
void pk_sgemv(pk_ctx_t *ctx, int trans, int M, int N, float alpha,
	const float *A, int lda, const float *x, float beta, float *y);

/* ---- matrix-vector products for decode (matvec.c) ---------------------- */
/* y (rows) = W x + b for a row-major W (rows, cols); b may be NULL. */
typedef struct {
	const float *w, *b;
	int rows;
	float *y;
} pk_matvec_t;
/* The n (1..8) products share x (cols) and run as one pass over all their
 * rows, split across the context's threads, each weight read once; never
 * through BLAS (its per-call thread wake-up costs more than a decode
 * matvec). y must not alias x. PK_EINVAL on a bad count or shape. */
int pk_matvec(pk_ctx_t *ctx, const pk_matvec_t *mv, int n, const float *x, int cols);

/* ---- elementwise, norms, losses (ops.c) -------------------------------- */
/* x: (rows, n), row stride n. Numerically safe (max subtracted); -INFINITY
 * entries get 0 and a row of all -INFINITY becomes all zeros (never NaN). */
void pk_softmax(pk_ctx_t *ctx, float *x, int rows, int n);
/* out, x: (rows, n); w: (n). out may equal x. */
void pk_rmsnorm(pk_ctx_t *ctx, float *out, const float *x, const float *w,
	int rows, int n, float eps);
/* w, b: (n); b may be NULL. */
void pk_layernorm(pk_ctx_t *ctx, float *out, const float *x, const float *w,
	const float *b, int rows, int n, float eps);
void pk_gelu_tanh(pk_ctx_t *ctx, float *out, const float *x, size_t n);
void pk_gelu_erf(pk_ctx_t *ctx, float *out, const float *x, size_t n);
void pk_silu(pk_ctx_t *ctx, float *out, const float *x, size_t n);
/* out = silu(gate) * up; out may alias either. */
void pk_swiglu(pk_ctx_t *ctx, float *out, const float *gate, const float *up, size_t n);
/* y += x */
void pk_add(pk_ctx_t *ctx, float *y, const float *x, size_t n);
/* out: (n, dim) = table[ids[i]]; table: (vocab, dim). PK_ERANGE on a bad id
 * (out untouched from that row on). */
int pk_embed(pk_ctx_t *ctx, float *out, const float *table, int vocab, int dim,
	const int32_t *ids, int n);
/* logits: (rows, vocab); losses (rows, may be NULL) = -log softmax[target];
 * *mean = mean over rows (double accumulation; mean may be NULL). PK_ERANGE
 * on a bad target (checked first: nothing written). */
int pk_cross_entropy(pk_ctx_t *ctx, const float *logits, int rows, int vocab,
	const int32_t *targets, float *losses, double *mean);

/* ---- positional encodings (rope.c, pe.c) ------------------------------- */
#define PK_MAX_HEAD_DIM 512

typedef enum {
	PK_ROPE_NORM = 0, /* adjacent pairs (x[2i], x[2i+1]): GPT-J, ggml NORMAL */
	PK_ROPE_NEOX = 1  /* split halves (x[i], x[i+rot/2]): GPT-NeoX, HF Llama */
} pk_rope_layout_t;

typedef enum {
	PK_ROPE_SCALE_NONE = 0,
	PK_ROPE_SCALE_LINEAR,      /* position interpolation: theta / factor */
	PK_ROPE_SCALE_NTK,         /* base * factor^(D/(D-2)) */
	PK_ROPE_SCALE_DYNAMIC_NTK, /* NTK with the factor from seq_len (HF dynamic) */
	PK_ROPE_SCALE_YARN,        /* NTK-by-parts ramp + mscale */
	PK_ROPE_SCALE_TRUNCATE     /* Giraffe truncated basis (abacusai code) */
} pk_rope_scaling_t;

typedef struct {
	int head_dim;            /* D */
	int rot_dims;            /* rotated dims, even, <= head_dim; 0 = head_dim */
	pk_rope_layout_t layout;
	double base;             /* 10000 */
	pk_rope_scaling_t scaling;
	double factor;           /* s >= 1 (linear, ntk, dynamic, yarn, truncate) */
	int orig_max_pos;        /* L: yarn, dynamic ntk */
	int seq_len;             /* dynamic ntk: current length (<= L: no change) */
	double beta_fast, beta_slow; /* yarn: 32, 1 */
	double ext_factor;       /* yarn extrapolation mix: 1 */
	double attn_factor;      /* yarn: multiplies mscale, 1 */
	double truncate;         /* giraffe: wavelength cut b = 2pi/truncate (> 0) */
	double power;            /* giraffe power basis exponent, 0 = off */
} pk_rope_cfg_t;

/* Plain RoPE, NEOX layout, base 10000, all dims rotated, defaults above. */
void pk_rope_cfg_default(pk_rope_cfg_t *cfg, int head_dim);

/* The resolved encoding: one inverse frequency per rotated pair and the
 * magnitude scale applied to cos and sin (YaRN; 1 otherwise). A table of
 * cos/sin for positions [0, cache_len) is kept when pk_rope_init was given
 * cache_len > 0; positions outside it are computed on the fly. */
typedef struct {
	int head_dim, rot_dims;
	pk_rope_layout_t layout;
	double theta[PK_MAX_HEAD_DIM / 2]; /* per pair i < rot_dims/2 */
	float mscale;
	int cache_len;
	float *cs; /* (cache_len, rot_dims/2, 2): cos*mscale, sin*mscale */
} pk_rope_t;

/* PK_EINVAL names no field; callers validate their own spec first. */
int pk_rope_init(pk_rope_t *r, const pk_rope_cfg_t *cfg, int cache_len);
void pk_rope_free(pk_rope_t *r);
/* x: (T, H, head_dim), row t at x + t*ld; pos: (T). Rotates in place. */
void pk_rope_apply(pk_ctx_t *ctx, const pk_rope_t *r, float *x, int T, int H,
	size_t ld, const int32_t *pos);
/* Rotate by delta positions, no mscale: R_delta x (PIE-style shift). */
void pk_rope_shift(pk_ctx_t *ctx, const pk_rope_t *r, float *x, int T, int H,
	size_t ld, int32_t delta);

/* out: (T, dim): PE(p, 2i) = sin(p / base^(2i/dim)), PE(p, 2i+1) = cos(...).
 * dim even. */
int pk_ape_sinusoidal(float *out, const int32_t *pos, int T, int dim, double base);
/* x: (T, dim) row stride ld; x[t] += table[pos[t]]; table: (max_pos, dim)
 * (a learned wpe or a sinusoidal table). PK_ERANGE on a position outside. */
int pk_ape_add(pk_ctx_t *ctx, float *x, int T, int dim, size_t ld,
	const float *table, int max_pos, const int32_t *pos);

/* ALiBi slopes for any head count (Press et al., incl. non-power-of-two). */
int pk_alibi_slopes(float *slopes, int n_heads);
/* T5 relative-position bucket; rel = key_pos - query_pos. */
int pk_t5_bucket(int32_t rel, int bidirectional, int num_buckets, int max_distance);

/* ---- KV cache (kv.c) --------------------------------------------------- */
/* Per KV head, rows are contiguous: k, v: (n_kv_heads, cap, head_dim) in
 * dtype; pos: (n_kv_heads, cap) each key's position; len: (n_kv_heads)
 * keys held per head (heads differ after streaming eviction). */
typedef struct {
	int n_kv_heads, head_dim, cap;
	pk_dtype_t dtype;
	void *k, *v;
	int32_t *pos;
	int *len;
	uint8_t *streaming; /* (n_kv_heads): 1 = evicted to sinks + recent */
	/* Double Sparsity label cache: the r calibrated channels of each key,
	 * contiguous, f32: (n_kv_heads, cap, label_r). label_r = 0: none. */
	int label_r;
	int *label_ch;  /* (n_kv_heads, label_r) */
	float *label;
} pk_kv_t;

int pk_kv_init(pk_kv_t *kv, int n_kv_heads, int head_dim, int cap, pk_dtype_t dtype);
void pk_kv_free(pk_kv_t *kv);
void pk_kv_reset(pk_kv_t *kv); /* all heads empty */
/* k, v: (n, n_kv_heads, head_dim), row stride ld; pos: (n). Appends to
 * every head (and the label cache). PK_ENOSPC when a head would overflow
 * (nothing appended). */
int pk_kv_append(pk_ctx_t *ctx, pk_kv_t *kv, const float *k, const float *v,
	int n, size_t ld, const int32_t *pos);
/* Keys at indices [from, to) of every head rotated by delta (R_delta, one
 * pass, bf16 re-rounded once) and their positions moved by delta: equal to
 * re-encoding at the new positions (PIE edit). PK_ERANGE when to passes
 * some head's length (nothing changed). */
int pk_kv_rerotate(pk_ctx_t *ctx, pk_kv_t *kv, const pk_rope_t *r, int from,
	int to, int32_t delta);
/* Drop indices [from, to) of every head, moving later rows down (keys keep
 * their positions; rerotate them for an edit). PK_ERANGE as above. */
int pk_kv_remove(pk_kv_t *kv, int from, int to);
/* Streaming heads (streaming[h] = 1) keep their first n_sink and last
 * n_recent keys. If reindex is not NULL the kept recent keys are re-rotated
 * so positions run on from the sinks without a gap (StreamingLLM's
 * in-cache positions; with n_sink = 0 they start at the head's first
 * position). Full heads are untouched. */
int pk_kv_evict_streaming(pk_ctx_t *ctx, pk_kv_t *kv, int n_sink, int n_recent,
	const pk_rope_t *reindex);

/* ---- attention (attn.c) ------------------------------------------------ */
typedef enum { PK_BIAS_NONE = 0, PK_BIAS_ALIBI, PK_BIAS_T5 } pk_bias_kind_t;

typedef struct {
	pk_bias_kind_t kind;
	const float *alibi_slopes; /* (n_heads): score -= slope * (qpos - kpos) */
	const float *t5_table;     /* (num_buckets, n_heads), HF Embedding layout */
	int t5_num_buckets, t5_max_distance, t5_bidirectional;
} pk_bias_t;

typedef struct {
	int n_heads, n_kv_heads, head_dim; /* n_heads % n_kv_heads == 0 (GQA) */
	float scale;       /* 0 = 1/sqrt(head_dim) */
	int causal;        /* key visible iff kpos <= qpos */
	int window;        /* > 0: also qpos - kpos < window ... */
	int n_sink_tokens; /* ... except the first n keys of the cache (sinks) */
	const float *sink_logits; /* (n_heads) learned sink logit in the
	                             denominator (gpt-oss style), or NULL */
	pk_bias_t bias;
} pk_attn_cfg_t;

/* q: (Tq, n_heads, head_dim) row stride ldq, already position-encoded;
 * qpos: (Tq); out: (Tq, n_heads, head_dim) row stride ldo. Attends over
 * the cache (append this step's keys first). Online softmax, never a
 * Tq x Tk matrix; Tq = 1 takes the split-KV decode path. A query row that
 * sees no key gets zeros. PK_EINVAL on a shape mismatch. */
int pk_attention(pk_ctx_t *ctx, const pk_attn_cfg_t *cfg, const float *q,
	int Tq, size_t ldq, const int32_t *qpos, const pk_kv_t *kv, float *out,
	size_t ldo);

/* ---- Double Sparsity (dsparse.c) --------------------------------------- */
/* Offline calibration: per KV head, channels ranked by mean |q . k| (each
 * token against itself, the group's query heads summed); the top r are
 * written to channels: (n_kv_heads, r). q: (T, n_heads, D) stride ldq,
 * k: (T, n_kv_heads, D) stride ldk. */
int pk_ds_calibrate(const float *q, size_t ldq, const float *k, size_t ldk,
	int T, int n_heads, int n_kv_heads, int head_dim, int r, int *channels);
/* Set up (or replace) the label cache with these channels and fill it for
 * the keys already held. */
int pk_kv_label_init(pk_kv_t *kv, int r, const int *channels);
/* Decode (Tq queries, typically 1): approximate scores q_r . label / sqrt(r)
 * over the visible keys, keep the top topk, exact attention over those.
 * Needs the label cache. topk >= visible keys = exact attention. */
int pk_attention_ds(pk_ctx_t *ctx, const pk_attn_cfg_t *cfg, const float *q,
	int Tq, size_t ldq, const int32_t *qpos, const pk_kv_t *kv, int topk,
	float *out, size_t ldo);

/* ---- similarity + top-k (sim.c) ---------------------------------------- */
typedef enum { PK_SIM_DOT = 0, PK_SIM_COSINE = 1 } pk_sim_t;

/* Streaming top-k of queries x documents: feed document blocks in order,
 * memory stays (nq x k) plus one block of scores per thread. */
typedef struct pk_topk pk_topk_t;
int pk_topk_create(pk_topk_t **out, pk_sim_t sim, const float *q, int nq,
	int dim, int k);
/* docs: (nd, dim); their indices are base .. base+nd-1. */
int pk_topk_feed(pk_ctx_t *ctx, pk_topk_t *t, const float *docs, int nd, int64_t base);
/* idx, score: (nq, k) best first, ties to the lower index; fewer than k
 * documents seen: the rest are idx -1, score -INFINITY. */
void pk_topk_result(const pk_topk_t *t, int64_t *idx, float *score);
void pk_topk_destroy(pk_topk_t *t);
/* One call over all documents (create, feed in blocks, result). */
int pk_similarity_topk(pk_ctx_t *ctx, pk_sim_t sim, const float *q, int nq,
	const float *docs, int64_t nd, int dim, int k, int64_t *idx, float *score);

#ifdef __cplusplus
}
#endif
#endif
