/* bench/engine.c: the native engine against the machine (issue 6). Measures
 * the sgemm rate and read bandwidth on the same threads, then on a checkpoint
 * (a ~100M-parameter random-weight Llama from the test tooling) times
 * prefill (tokens/s and GFLOP/s vs sgemm), decode (tokens/s vs the bound of
 * weights + KV bytes read per token over the bandwidth) and reports peak RSS
 * vs weights + KV cache. Figures, not pass/fail. */
#include "config.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine/checkpoint.h"
#include "engine/model.h"
#include "kernels/kernels.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *falloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) {
        fprintf(stderr, "bench_engine: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- machine: sgemm rate and read bandwidth on the engine's threads ---- */

/* C(M,N) = A(M,K) B(N,K)^T, as a linear layer multiplies: best of 8. */
static double sgemm_gflops(pk_ctx_t *ctx, int M, int N, int K)
{
    float *a = falloc((size_t)M * K), *b = falloc((size_t)N * K), *c = falloc((size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++)
        a[i] = (float)(i % 7) * 0.25f;
    for (size_t i = 0; i < (size_t)N * K; i++)
        b[i] = (float)(i % 5) * 0.25f;
    double best = 1e30;
    for (int r = 0; r < 8; r++) {
        double t0 = now_s();
        pk_sgemm(ctx, 0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * M * N * K / best / 1e9;
}

typedef struct {
    const float *x;
    size_t chunk, n;
    double sums[64];
} read_arg_t;

/* Eight independent accumulators so the adds do not serialise. */
static void read_task(void *arg, int i, int tid)
{
    read_arg_t *r = arg;
    size_t lo = (size_t)i * r->chunk, hi = lo + r->chunk < r->n ? lo + r->chunk : r->n;
    float acc[8] = {0};
    for (size_t j = lo; j + 8 <= hi; j += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += r->x[j + k];
    r->sums[tid & 63] += acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
}

static double read_gbs(pk_ctx_t *ctx, size_t bytes)
{
    size_t n = bytes / sizeof(float);
    float *x = falloc(n);
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0f;
    read_arg_t r = {.x = x, .chunk = 1 << 18, .n = n};
    int parts = (int)((n + r.chunk - 1) / r.chunk);
    double best = 1e30;
    for (int k = 0; k < 5; k++) {
        double t0 = now_s();
        pk_parallel_for(ctx, parts, read_task, &r);
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    free(x);
    return (double)n * sizeof(float) / best / 1e9;
}

/* ---- the model ---- */

typedef struct {
    double params, matmul_params; /* matmul: every 2-D weight but the embedding table */
    double head_params;           /* the output head's share of matmul_params */
    double weight_bytes;          /* as held for compute: f32 */
} census_t;

static void census(const pe_ckpt_t *ck, census_t *c)
{
    int tied = pe_ckpt_tensor(ck, "lm_head.weight") == NULL;
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < pe_ckpt_count(ck); i++) {
        const pe_tensor_t *t = pe_ckpt_at(ck, i);
        c->params += (double)t->numel;
        int embed = strstr(t->name, "embed_tokens") || strstr(t->name, "wte");
        if (t->ndim == 2 && (!embed || tied))
            c->matmul_params += (double)t->numel;
        if (t->ndim == 2 && (strstr(t->name, "lm_head") || (embed && tied)))
            c->head_params += (double)t->numel;
    }
    c->weight_bytes = c->params * 4.0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_engine --ckpt DIR [--threads N] [--prompt N] [--decode N]\n"
               "Times prefill and decode of the checkpoint's model against the sgemm rate\n"
               "and the read bandwidth measured on the same threads (defaults: 2 threads,\n"
               "a 512-token prompt, 64 decoded tokens).\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ckpt", required_argument, NULL, 'c'},   {"threads", required_argument, NULL, 't'},
        {"prompt", required_argument, NULL, 'p'}, {"decode", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    int threads = 2, n_prompt = 512, n_decode = 64, c;
    while ((c = getopt_long(argc, argv, "c:t:p:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': dir = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'p': n_prompt = atoi(optarg); break;
        case 'd': n_decode = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (dir == NULL || threads < 1 || n_prompt < 1 || n_decode < 1) {
        usage(stderr);
        return 2;
    }
    pb_err_t err = {{0}, {0}};
    pe_ckpt_t *ck = NULL;
    pe_model_t *m = NULL;
    pe_state_t *st = NULL;
    int rc = pe_ckpt_open(dir, &ck, &err);
    rc = rc ? rc : pe_model_open(ck, NULL, threads, &m, &err);
    pe_dims_t d;
    if (rc == 0)
        pe_model_dims(m, &d);
    int cap = n_prompt + n_decode;
    rc = rc ? rc : pe_state_create(m, cap, 0, &st, &err);
    if (rc) {
        fprintf(stderr, "bench_engine: %s: %s\n", dir, err.msg[0] ? err.msg : pb_strerror(rc));
        return 1;
    }
    census_t cs;
    census(ck, &cs);
    double kv_tok = 2.0 * d.n_layers * d.n_kv_heads * d.head_dim * 4.0; /* bytes per position */
    printf("model: %d layers, d_model %d, %d heads (%d kv), d_ff %d, vocab %d: %.1fM params, "
           "%.0f MB f32\n", d.n_layers, d.d_model, d.n_heads, d.n_kv_heads, d.d_ff, d.vocab,
           cs.params / 1e6, cs.weight_bytes / 1e6);

    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    float *logits = falloc((size_t)d.vocab);
    for (int i = 0; i < cap; i++)
        ids[i] = (int32_t)((i * 7919u + 13) % (unsigned)d.vocab);

    /* Prefill: best of three from an empty state. */
    double best = 1e30;
    for (int r = 0; r < 3 && rc == 0; r++) {
        pe_state_reset(st);
        double t0 = now_s();
        rc = pe_model_forward(m, st, ids, (size_t)n_prompt, logits, 0, &err);
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    /* Decode after the prompt: one token at a time, each reading every
     * weight and the KV cache so far. */
    double t0 = now_s(), kv_read = 0;
    for (int i = 0; i < n_decode && rc == 0; i++) {
        kv_read += kv_tok * (n_prompt + i + 1);
        rc = pe_model_forward(m, st, ids + n_prompt + i, 1, logits, 0, &err);
    }
    double dt = now_s() - t0;
    /* Peak RSS now, before the machine probes allocate their buffers. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss = (double)ru.ru_maxrss * 1024.0, need = cs.weight_bytes + kv_tok * cap;
    if (rc) {
        fprintf(stderr, "bench_engine: %s\n", err.msg[0] ? err.msg : pb_strerror(rc));
        goto out;
    }

    pk_ctx_t *ctx = NULL;
    if (pk_ctx_create(&ctx, threads, PK_ISA_AUTO) != PK_OK) {
        fprintf(stderr, "bench_engine: cannot create a kernel context\n");
        rc = 1;
        goto out;
    }
    /* The ceiling: the better of a square GEMM and the model's MLP shape. */
    double sq = sgemm_gflops(ctx, 1024, 1024, 1024);
    double mlp = sgemm_gflops(ctx, n_prompt, d.d_ff, d.d_model);
    double gflops = sq > mlp ? sq : mlp, gbs = read_gbs(ctx, (size_t)512 << 20);
    pk_ctx_destroy(ctx);
    printf("machine (%d threads): sgemm %.1f GFLOP/s at 1024^3, %.1f at %dx%dx%d; read "
           "bandwidth %.2f GB/s\n", threads, sq, mlp, n_prompt, d.d_ff, d.d_model, gbs);

    /* Attention: QK^T and PV over a causal prompt, 2 flops per MAC. */
    double att = 2.0 * 2.0 * d.n_layers * d.n_heads * d.head_dim * (double)n_prompt *
                 (n_prompt + 1) / 2.0;
    /* Every layer's weights for each prompt token, the head for the last. */
    double pf_flops = 2.0 * (cs.matmul_params - cs.head_params) * n_prompt +
                      2.0 * cs.head_params + att;
    double pf_gflops = pf_flops / best / 1e9;
    printf("prefill %d tokens: %.1f ms, %.0f tokens/s, %.1f GFLOP/s = %.0f%% of sgemm "
           "(target 50%%)\n", n_prompt, best * 1e3, n_prompt / best, pf_gflops,
           100.0 * pf_gflops / gflops);
    double bytes = cs.matmul_params * 4.0 * n_decode + kv_read;
    double bound = n_decode / (bytes / (gbs * 1e9)); /* tokens/s at full bandwidth */
    printf("decode %d tokens after %d: %.2f ms/token, %.1f tokens/s; bandwidth bound "
           "%.1f tokens/s (%.0f MB read per token) = %.0f%% (target 60%%)\n", n_decode,
           n_prompt, dt / n_decode * 1e3, n_decode / dt, bound, bytes / n_decode / 1e6,
           100.0 * (n_decode / dt) / bound);
    printf("peak RSS %.0f MB (measured before the machine probes); weights + KV cache %.0f MB: "
           "ratio %.3f (target <= 1.10)\n", rss / 1e6, need / 1e6, rss / need);
out:
    free(ids);
    free(logits);
    pe_state_free(st);
    pe_model_close(m);
    pe_ckpt_close(ck);
    return rc ? 1 : 0;
}
