/* bench/kernels.c: measures the machine (STREAM-style triad and read
 * bandwidth, cblas_sgemm at 1024^3), then times each kernel and prints it
 * as a ratio of those two ceilings, with the target beside it.
 * Figures, not pass/fail: every number printed was measured in this run. */
#include "config.h"

#include "kernels/kernels.h"
#include "kernels/kernels_int.h" /* pk__gemm_fallback, timed beside BLAS */

#ifdef HAVE_BLAS
#include <cblas.h>
#endif
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
	pk_ctx_t *ctx;
	int reps;
	int quick;
	double triad_gbs, read_gbs, update_gbs, sgemm_gflops;
	double gemm_best; /* max(cblas, built-in): the other compute ceiling */
} bench_t;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, n ? n : 64) != 0) {
		fprintf(stderr, "bench_kernels: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static void fill(float *x, size_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		x[i] = (float)((s >> 40) * (1.0 / 16777216.0)) - 0.5f;
	}
}

static void check(int rc, const char *what)
{
	if (rc != PK_OK) {
		fprintf(stderr, "bench_kernels: %s: %s\n", what, pk_strerror(rc));
		exit(1);
	}
}

static void row(const char *kernel, const char *shape, double sec, double rate,
	const char *unit, double ref, const char *refname, double target)
{
	double pct = ref > 0 ? 100.0 * rate / ref : 0;
	char tgt[32] = "";
	if (target > 0)
		snprintf(tgt, sizeof tgt, ">= %.0f%% %s", target, pct >= target ? "met" : "BELOW");
	printf("%-24s %-30s %10.3f %9.1f %-7s %6.1f%% of %-6s %s\n", kernel, shape,
		sec * 1e3, rate, unit, pct, refname, tgt);
	fflush(stdout);
}

/* A compute row against the faster of the two GEMMs: where OpenBLAS picks
 * old kernels for an unknown CPU, its rate alone flatters every ratio. */
static void vs_best_gemm(const bench_t *B, double gflops)
{
	if (B->gemm_best > B->sgemm_gflops)
		printf("%-24s %-30s %10s %9s %-7s %6.1f%% of best GEMM (built-in)\n", "", "", "", "", "",
			100.0 * gflops / B->gemm_best);
}

/* ---- machine ceilings ---------------------------------------------------- */

/* The ceilings must be measured with the same vector width the kernels
 * use, or a kernel would "beat" the machine: AVX2/AVX-512 loops with
 * independent accumulators, picked by the context's ISA. */
#if PK_X86
PK_AVX512 static void triad_avx512(float *a, const float *b, const float *c, size_t lo, size_t hi)
{
	__m512 s = _mm512_set1_ps(3.0f);
	for (size_t j = lo; j < hi; j += 16)
		_mm512_store_ps(a + j, _mm512_fmadd_ps(s, _mm512_load_ps(c + j), _mm512_load_ps(b + j)));
}

PK_AVX2 static void triad_avx2(float *a, const float *b, const float *c, size_t lo, size_t hi)
{
	__m256 s = _mm256_set1_ps(3.0f);
	for (size_t j = lo; j < hi; j += 8)
		_mm256_store_ps(a + j, _mm256_fmadd_ps(s, _mm256_load_ps(c + j), _mm256_load_ps(b + j)));
}

PK_AVX512 static void update_avx512(float *a, size_t lo, size_t hi)
{
	__m512 s = _mm512_set1_ps(0.999f);
	for (size_t j = lo; j < hi; j += 16)
		_mm512_store_ps(a + j, _mm512_mul_ps(s, _mm512_load_ps(a + j)));
}

PK_AVX2 static void update_avx2(float *a, size_t lo, size_t hi)
{
	__m256 s = _mm256_set1_ps(0.999f);
	for (size_t j = lo; j < hi; j += 8)
		_mm256_store_ps(a + j, _mm256_mul_ps(s, _mm256_load_ps(a + j)));
}

PK_AVX512 static double read_avx512(const float *b, size_t lo, size_t hi)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	for (size_t j = lo; j < hi; j += 64) {
		s0 = _mm512_add_ps(s0, _mm512_load_ps(b + j));
		s1 = _mm512_add_ps(s1, _mm512_load_ps(b + j + 16));
		s2 = _mm512_add_ps(s2, _mm512_load_ps(b + j + 32));
		s3 = _mm512_add_ps(s3, _mm512_load_ps(b + j + 48));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

PK_AVX2 static double read_avx2(const float *b, size_t lo, size_t hi)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	for (size_t j = lo; j < hi; j += 32) {
		s0 = _mm256_add_ps(s0, _mm256_load_ps(b + j));
		s1 = _mm256_add_ps(s1, _mm256_load_ps(b + j + 8));
		s2 = _mm256_add_ps(s2, _mm256_load_ps(b + j + 16));
		s3 = _mm256_add_ps(s3, _mm256_load_ps(b + j + 24));
	}
	return pk__hsum_avx2(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}
#endif

typedef struct {
	float *a, *b, *c;
	size_t n, chunk; /* chunk: a multiple of 64 floats */
	pk_isa_t isa;
	double sum[1024];
} stream_t;

static void triad_task(void *arg, int i, int tid)
{
	stream_t *s = arg;
	size_t lo = (size_t)i * s->chunk, hi = lo + s->chunk > s->n ? s->n : lo + s->chunk;
#if PK_X86
	if (s->isa == PK_ISA_AVX512)
		return triad_avx512(s->a, s->b, s->c, lo, hi);
	if (s->isa == PK_ISA_AVX2)
		return triad_avx2(s->a, s->b, s->c, lo, hi);
#endif
	for (size_t j = lo; j < hi; j++)
		s->a[j] = s->b[j] + 3.0f * s->c[j];
}

/* a = 0.999 a in place: the traffic of RoPE apply and KV re-rotation (each
 * line read and written back, no write-allocate of a fresh line) */
static void update_task(void *arg, int i, int tid)
{
	stream_t *s = arg;
	size_t lo = (size_t)i * s->chunk, hi = lo + s->chunk > s->n ? s->n : lo + s->chunk;
#if PK_X86
	if (s->isa == PK_ISA_AVX512)
		return update_avx512(s->a, lo, hi);
	if (s->isa == PK_ISA_AVX2)
		return update_avx2(s->a, lo, hi);
#endif
	for (size_t j = lo; j < hi; j++)
		s->a[j] *= 0.999f;
}

static void read_task(void *arg, int i, int tid)
{
	stream_t *s = arg;
	size_t lo = (size_t)i * s->chunk, hi = lo + s->chunk > s->n ? s->n : lo + s->chunk;
	double t = 0;
#if PK_X86
	if (s->isa == PK_ISA_AVX512)
		t = read_avx512(s->b, lo, hi);
	else if (s->isa == PK_ISA_AVX2)
		t = read_avx2(s->b, lo, hi);
	else
#endif
	{
		float acc[16] = { 0 };
		for (size_t j = lo; j < hi; j += 16)
			for (int l = 0; l < 16; l++)
				acc[l] += s->b[j + l];
		for (int l = 0; l < 16; l++)
			t += acc[l];
	}
	s->sum[i % 1024] += t;
}

static void measure_machine(bench_t *B)
{
	stream_t s = { 0 };
	s.n = B->quick ? (size_t)8 << 20 : (size_t)64 << 20; /* floats per array */
	s.a = xmalloc(s.n * 4), s.b = xmalloc(s.n * 4), s.c = xmalloc(s.n * 4);
	fill(s.b, s.n, 1), fill(s.c, s.n, 2), memset(s.a, 0, s.n * 4);
	int nthr = pk_ctx_threads(B->ctx);
	s.isa = pk_ctx_isa(B->ctx);
	s.chunk = (s.n + (size_t)nthr * 4 - 1) / ((size_t)nthr * 4);
	s.chunk = (s.chunk + 63) / 64 * 64;
	int nchunks = (int)((s.n + s.chunk - 1) / s.chunk);
	double best = 1e30, bestr = 1e30, bestu = 1e30;
	for (int r = 0; r < 10; r++) {
		double t0 = now_s();
		pk_parallel_for(B->ctx, nchunks, triad_task, &s);
		double t = now_s() - t0;
		if (t < best)
			best = t;
		t0 = now_s();
		pk_parallel_for(B->ctx, nchunks, read_task, &s);
		t = now_s() - t0;
		if (t < bestr)
			bestr = t;
		t0 = now_s();
		pk_parallel_for(B->ctx, nchunks, update_task, &s);
		t = now_s() - t0;
		if (t < bestu)
			bestu = t;
	}
	B->triad_gbs = 3.0 * s.n * 4 / best / 1e9;
	B->read_gbs = 1.0 * s.n * 4 / bestr / 1e9;
	B->update_gbs = 2.0 * s.n * 4 / bestu / 1e9;
	char shape[64];
	snprintf(shape, sizeof shape, "3 x %zu MiB", s.n * 4 >> 20);
	row("stream triad", shape, best, B->triad_gbs, "GB/s", 0, "-", 0);
	row("stream read", shape, bestr, B->read_gbs, "GB/s", 0, "-", 0);
	row("stream update (in place)", shape, bestu, B->update_gbs, "GB/s", 0, "-", 0);
	free(s.a), free(s.b), free(s.c);

	int n = 1024;
	float *A = xmalloc((size_t)n * n * 4), *Bm = xmalloc((size_t)n * n * 4), *C = xmalloc((size_t)n * n * 4);
	fill(A, (size_t)n * n, 3), fill(Bm, (size_t)n * n, 4);
	B->sgemm_gflops = 0;
#ifdef HAVE_BLAS
	/* cblas_sgemm itself, whatever pk_sgemm would choose */
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
	openblas_set_num_threads(pk_ctx_threads(B->ctx));
#endif
	best = 1e30;
	for (int r = -1; r < (B->quick ? 3 : 20); r++) { /* r = -1: warm-up */
		double t0 = now_s();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, Bm, n,
			0.0f, C, n);
		double t = now_s() - t0;
		if (r >= 0 && t < best)
			best = t;
	}
	B->sgemm_gflops = 2.0 * n * n * n / best / 1e9;
	row("sgemm (cblas_sgemm)", "1024^3 NN", best, B->sgemm_gflops, "GFLOP/s", 0, "-", 0);
#endif
	/* The built-in GEMM beside it: OpenBLAS 0.3.21 picks old kernels on
	 * CPUs it does not know, and pk_sgemm then uses this one. */
	best = 1e30;
	for (int r = -1; r < (B->quick ? 3 : 10); r++) {
		double t0 = now_s();
		pk__gemm_fallback(B->ctx, 0, 0, n, n, n, 1.0f, A, n, Bm, n, 0.0f, C, n);
		double t = now_s() - t0;
		if (r >= 0 && t < best)
			best = t;
	}
	double builtin = 2.0 * n * n * n / best / 1e9;
	row("sgemm (built-in)", "1024^3 NN", best, builtin, "GFLOP/s", B->sgemm_gflops, "cblas", 0);
	if (B->sgemm_gflops == 0) /* no BLAS: the built-in GEMM is the ceiling */
		B->sgemm_gflops = builtin;
	B->gemm_best = builtin > B->sgemm_gflops ? builtin : B->sgemm_gflops;
	printf("pk_sgemm uses %s for this context\n", pk__blas_preferred(B->ctx) ? "BLAS" : "the built-in GEMM");
	free(A), free(Bm), free(C);
}

/* ---- attention ------------------------------------------------------------ */
enum { H = 32, D = 128 };

/* Fill a cache with T keys (positions 0..T-1) by appending one random chunk
 * over and over: only bandwidth matters, not the values. */
static void fill_kv(bench_t *B, pk_kv_t *kv, int T)
{
	int chunk = 512;
	size_t ld = (size_t)kv->n_kv_heads * D;
	float *k = xmalloc((size_t)chunk * ld * 4), *v = xmalloc((size_t)chunk * ld * 4);
	int32_t *pos = xmalloc((size_t)chunk * 4);
	fill(k, (size_t)chunk * ld, 5), fill(v, (size_t)chunk * ld, 6);
	for (int t = 0; t < T; t += chunk) {
		int n = T - t < chunk ? T - t : chunk;
		for (int i = 0; i < n; i++)
			pos[i] = t + i;
		check(pk_kv_append(B->ctx, kv, k, v, n, ld, pos), "kv append");
	}
	free(k), free(v), free(pos);
}

static double time_attention(bench_t *B, const pk_attn_cfg_t *cfg, const float *q, int Tq,
	const int32_t *qpos, const pk_kv_t *kv, float *out, int reps)
{
	size_t ld = (size_t)cfg->n_heads * D;
	check(pk_attention(B->ctx, cfg, q, Tq, ld, qpos, kv, out, ld), "attention warm-up");
	double best = 1e30;
	for (int r = 0; r < reps; r++) {
		double t0 = now_s();
		check(pk_attention(B->ctx, cfg, q, Tq, ld, qpos, kv, out, ld), "attention");
		double t = now_s() - t0;
		if (t < best)
			best = t;
	}
	return best;
}

static void bench_decode(bench_t *B)
{
	int maxT = B->quick ? 8192 : 65536;
	for (int dt = 0; dt < 2; dt++) {
		pk_dtype_t dtype = dt ? PK_BF16 : PK_F32;
		pk_kv_t kv;
		check(pk_kv_init(&kv, H, D, maxT, dtype), "kv init");
		float *q = xmalloc((size_t)H * D * 4), *out = xmalloc((size_t)H * D * 4);
		fill(q, (size_t)H * D, 7);
		pk_attn_cfg_t cfg = { .n_heads = H, .n_kv_heads = H, .head_dim = D, .causal = 1 };
		for (int T = 4096; T <= maxT; T *= 2) {
			pk_kv_reset(&kv);
			fill_kv(B, &kv, T);
			int32_t qpos = T - 1;
			double t = time_attention(B, &cfg, q, 1, &qpos, &kv, out, B->reps * 3);
			double bytes = 2.0 * T * H * D * (dtype == PK_BF16 ? 2 : 4);
			char shape[64];
			snprintf(shape, sizeof shape, "T=%d H=%d D=%d %s", T, H, D, dt ? "bf16" : "f32");
			row("decode attention", shape, t, bytes / t / 1e9, "GB/s", B->read_gbs, "read", 70);
		}
		pk_kv_free(&kv);
		free(q), free(out);
	}
}

typedef struct {
	const char *name;
	int rope;         /* 0 none, else a scaling + 1 */
	pk_bias_kind_t bias;
	int ape;
} scheme_t;

static void bench_prefill(bench_t *B)
{
	int T = B->quick ? 512 : 2048;
	size_t ld = (size_t)H * D;
	float *q0 = xmalloc((size_t)T * ld * 4), *k0 = xmalloc((size_t)T * ld * 4);
	float *v = xmalloc((size_t)T * ld * 4), *q = xmalloc((size_t)T * ld * 4);
	float *k = xmalloc((size_t)T * ld * 4), *out = xmalloc((size_t)T * ld * 4);
	int32_t *pos = xmalloc((size_t)T * 4);
	fill(q0, (size_t)T * ld, 8), fill(k0, (size_t)T * ld, 9), fill(v, (size_t)T * ld, 10);
	for (int i = 0; i < T; i++)
		pos[i] = i;
	/* APE is added to the residual stream (T, d_model = H*D) */
	float *ape = xmalloc((size_t)T * ld * 4);
	check(pk_ape_sinusoidal(ape, pos, T, (int)ld, 10000.0), "ape table");
	float slopes[H];
	check(pk_alibi_slopes(slopes, H), "alibi slopes");
	float t5[32 * H];
	fill(t5, 32 * H, 11);

	static const scheme_t schemes[] = {
		{ "nope", 0, PK_BIAS_NONE, 0 },
		{ "ape-sinusoidal", 0, PK_BIAS_NONE, 1 },
		{ "rope", PK_ROPE_SCALE_NONE + 1, PK_BIAS_NONE, 0 },
		{ "rope-pi x4", PK_ROPE_SCALE_LINEAR + 1, PK_BIAS_NONE, 0 },
		{ "rope-ntk x4", PK_ROPE_SCALE_NTK + 1, PK_BIAS_NONE, 0 },
		{ "rope-yarn x4", PK_ROPE_SCALE_YARN + 1, PK_BIAS_NONE, 0 },
		{ "rope-giraffe", PK_ROPE_SCALE_TRUNCATE + 1, PK_BIAS_NONE, 0 },
		{ "alibi", 0, PK_BIAS_ALIBI, 0 },
		{ "t5-bias", 0, PK_BIAS_T5, 0 },
	};
	double nope = 0;
	double flops = 4.0 * D * H * ((double)T * (T + 1) / 2);
	for (size_t si = 0; si < sizeof schemes / sizeof schemes[0]; si++) {
		const scheme_t *sc = &schemes[si];
		pk_rope_t rope;
		if (sc->rope) {
			pk_rope_cfg_t rc;
			pk_rope_cfg_default(&rc, D);
			rc.scaling = (pk_rope_scaling_t)(sc->rope - 1);
			rc.factor = rc.scaling == PK_ROPE_SCALE_NONE ? 1 : 4;
			rc.orig_max_pos = 512;
			rc.truncate = 4096;
			check(pk_rope_init(&rope, &rc, T), "rope init");
		}
		pk_attn_cfg_t cfg = { .n_heads = H, .n_kv_heads = H, .head_dim = D, .causal = 1 };
		cfg.bias.kind = sc->bias;
		cfg.bias.alibi_slopes = slopes;
		cfg.bias.t5_table = t5;
		cfg.bias.t5_num_buckets = 32;
		cfg.bias.t5_max_distance = 128;
		pk_kv_t kv;
		check(pk_kv_init(&kv, H, D, T, PK_F32), "kv init");
		double best = 1e30;
		for (int r = -1; r < B->reps; r++) { /* r = -1: warm-up, not timed */
			memcpy(q, q0, (size_t)T * ld * 4);
			memcpy(k, k0, (size_t)T * ld * 4);
			pk_kv_reset(&kv);
			double t0 = now_s();
			if (sc->ape) { /* the encoding's cost: add PE to the stream */
				check(pk_ape_add(B->ctx, q, T, (int)ld, ld, ape, T, pos), "ape add");
			}
			if (sc->rope) {
				pk_rope_apply(B->ctx, &rope, q, T, H, ld, pos);
				pk_rope_apply(B->ctx, &rope, k, T, H, ld, pos);
			}
			check(pk_kv_append(B->ctx, &kv, k, v, T, ld, pos), "kv append");
			check(pk_attention(B->ctx, &cfg, q, T, ld, pos, &kv, out, ld), "prefill");
			double t = now_s() - t0;
			if (r >= 0 && t < best)
				best = t;
		}
		if (si == 0)
			nope = best;
		char shape[64];
		snprintf(shape, sizeof shape, "T=%d causal %s", T, sc->name);
		row("prefill attention", shape, best, flops / best / 1e9, "GFLOP/s", B->sgemm_gflops, "cblas", 50);
		vs_best_gemm(B, flops / best / 1e9);
		printf("%-24s %-30s %10s %9.3f x NoPE\n", "  overhead vs NoPE", sc->name, "", best / nope);
		pk_kv_free(&kv);
		if (sc->rope)
			pk_rope_free(&rope);
	}
	free(q0), free(k0), free(v), free(q), free(k), free(out), free(pos), free(ape);
}

static void bench_rope(bench_t *B)
{
	int T = B->quick ? 1024 : 8192;
	size_t ld = (size_t)H * D;
	float *x = xmalloc((size_t)T * ld * 4);
	int32_t *pos = xmalloc((size_t)T * 4);
	fill(x, (size_t)T * ld, 12);
	for (int i = 0; i < T; i++)
		pos[i] = i;
	for (int cache = 0; cache < 2; cache++) {
		pk_rope_cfg_t rc;
		pk_rope_cfg_default(&rc, D);
		pk_rope_t rope;
		check(pk_rope_init(&rope, &rc, cache ? T : 0), "rope init");
		pk_rope_apply(B->ctx, &rope, x, T, H, ld, pos);
		double best = 1e30;
		for (int r = 0; r < B->reps * 3; r++) {
			double t0 = now_s();
			pk_rope_apply(B->ctx, &rope, x, T, H, ld, pos);
			double t = now_s() - t0;
			if (t < best)
				best = t;
		}
		char shape[64];
		snprintf(shape, sizeof shape, "T=%d H=%d D=%d%s", T, H, D, cache ? " cached" : "");
		row("rope apply", shape, best, 2.0 * T * ld * 4 / best / 1e9, "GB/s", B->update_gbs, "update", 60);
		pk_rope_free(&rope);
	}
	free(x), free(pos);

	int Tk = B->quick ? 4096 : 16384;
	for (int dt = 0; dt < 2; dt++) {
		pk_dtype_t dtype = dt ? PK_BF16 : PK_F32;
		pk_kv_t kv;
		check(pk_kv_init(&kv, H, D, Tk, dtype), "kv init");
		fill_kv(B, &kv, Tk);
		pk_rope_cfg_t rc;
		pk_rope_cfg_default(&rc, D);
		pk_rope_t rope;
		check(pk_rope_init(&rope, &rc, 0), "rope init");
		double best = 1e30;
		for (int r = 0; r < B->reps * 3; r++) {
			double t0 = now_s();
			check(pk_kv_rerotate(B->ctx, &kv, &rope, 0, Tk, (r & 1) ? -3 : 3), "rerotate");
			double t = now_s() - t0;
			if (t < best)
				best = t;
		}
		char shape[64];
		snprintf(shape, sizeof shape, "T=%d H=%d D=%d %s", Tk, H, D, dt ? "bf16" : "f32");
		double bytes = 2.0 * Tk * H * D * (dt ? 2 : 4); /* keys read + written */
		row("kv re-rotate", shape, best, bytes / best / 1e9, "GB/s", B->update_gbs, "update", 60);
		pk_rope_free(&rope);
		pk_kv_free(&kv);
	}
}

static void bench_similarity(bench_t *B)
{
	int nq = 1000, dim = 384, k = 10;
	int64_t nd = B->quick ? 10000 : 100000;
	float *q = xmalloc((size_t)nq * dim * 4), *docs = xmalloc((size_t)nd * dim * 4);
	fill(q, (size_t)nq * dim, 13), fill(docs, (size_t)nd * dim, 14);
	int64_t *idx = xmalloc((size_t)nq * k * 8);
	float *score = xmalloc((size_t)nq * k * 4);
	for (int sim = 0; sim < 2; sim++) {
		double best = 1e30;
		for (int r = 0; r < B->reps; r++) {
			double t0 = now_s();
			check(pk_similarity_topk(B->ctx, (pk_sim_t)sim, q, nq, docs, nd, dim, k, idx, score),
				"similarity");
			double t = now_s() - t0;
			if (t < best)
				best = t;
		}
		char shape[64];
		snprintf(shape, sizeof shape, "%dx%lldx%d top%d %s", nq, (long long)nd, dim, k,
			sim ? "cosine" : "dot");
		row("similarity top-k", shape, best, 2.0 * nq * nd * dim / best / 1e9, "GFLOP/s",
			B->sgemm_gflops, "cblas", 50);
		vs_best_gemm(B, 2.0 * nq * nd * dim / best / 1e9);
	}
	free(q), free(docs), free(idx), free(score);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_kernels [--threads N] [--isa auto|scalar|avx2|avx512] [--reps N]\n"
		"                     [--quick] [--only machine,decode,prefill,rope,sim]\n"
		"Measures memory bandwidth and the sgemm rate, then each kernel against them.\n"
		"--quick uses small shapes (a smoke run, not the issue's figures).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "threads", required_argument, NULL, 't' }, { "isa", required_argument, NULL, 'i' },
		{ "reps", required_argument, NULL, 'r' },    { "quick", no_argument, NULL, 'q' },
		{ "only", required_argument, NULL, 'o' },    { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int threads = 0, c;
	pk_isa_t isa = PK_ISA_AUTO;
	const char *only = NULL;
	bench_t B = { .reps = 3 };
	while ((c = getopt_long(argc, argv, "t:i:r:qo:h", opts, NULL)) != -1) {
		switch (c) {
		case 't': threads = atoi(optarg); break;
		case 'i':
			if (pk_isa_parse(optarg, &isa) != PK_OK) {
				fprintf(stderr, "bench_kernels: --isa %s: expected auto, scalar, avx2 or avx512\n", optarg);
				return 2;
			}
			break;
		case 'r': B.reps = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
		case 'q': B.quick = 1; break;
		case 'o': only = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	int rc = pk_ctx_create(&B.ctx, threads, isa);
	if (rc != PK_OK) {
		fprintf(stderr, "bench_kernels: context (%s): %s\n", pk_isa_name(isa), pk_strerror(rc));
		return 1;
	}
	printf("posbench kernel benchmark: isa %s (cpu best %s), %d threads, BLAS %s%s\n",
		pk_isa_name(pk_ctx_isa(B.ctx)), pk_isa_name(pk_cpu_isa()), pk_ctx_threads(B.ctx),
		pk_blas_name(), B.quick ? ", QUICK shapes" : "");
	printf("%-24s %-30s %10s %9s %-7s %s\n", "kernel", "shape", "best ms", "rate", "unit", "ratio");
	measure_machine(&B); /* every ratio below needs these */
	struct { const char *name; void (*fn)(bench_t *); } parts[] = {
		{ "decode", bench_decode }, { "prefill", bench_prefill },
		{ "rope", bench_rope }, { "sim", bench_similarity },
	};
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		if (!only || strstr(only, parts[i].name))
			parts[i].fn(&B);
	pk_ctx_destroy(B.ctx);
	return 0;
}
