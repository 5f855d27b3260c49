/* tests/engine/pe_forward: run a checkpoint on token ids and print the
 * result as JSON, for the NumPy comparisons in test_engine_forward.py.
 *   pe_forward DIR --ids 1,2,3 [--mode logits|decode|generate|loglik|embed]
 *              [--n N] [--pe JSON] [--kv-bf16] [--threads N] [--validate]
 *              [--temperature T --top-p P --top-k K --seed S]
 * logits: all logits of one prefill; decode: the same one token at a time;
 * generate: N tokens (greedy unless --temperature); loglik: the last N ids as continuation.
 * batch (--ids "1,2;3,4,5"): pe_model_forward_batch over the sequences, then
 * N batched decode steps, against pe_model_forward per sequence;
 * batch-generate: pe_generate_batch against pe_generate per sequence. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/checkpoint.h"
#include "engine/model.h"

static void print_rows(const float *x, size_t rows, size_t n)
{
    printf("[");
    for (size_t r = 0; r < rows; r++) {
        printf("%s[", r ? "," : "");
        for (size_t i = 0; i < n; i++)
            printf("%s%.9g", i ? "," : "", x[r * n + i]);
        printf("]");
    }
    printf("]");
}

#define NSEQ_MAX 16

/* "1,2;3,4,5" into seqs of ids (each < 4096 ids); the count, 0 on error. */
static size_t parse_seqs(const char *s, int32_t (*ids)[4096], size_t *n)
{
    size_t k = 0;
    n[0] = 0;
    while (*s && k < NSEQ_MAX) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || n[k] >= 4096)
            return 0;
        ids[k][n[k]++] = (int32_t)v;
        s = end;
        if (*s == ';' && ++k < NSEQ_MAX)
            n[k] = 0;
        if (*s == ',' || *s == ';')
            s++;
    }
    return k < NSEQ_MAX ? k + 1 : 0;
}

/* Batched against per-sequence runs of the same sequences; prints
 * {"max_rel", "lens", "want_lens"} (logits: prefill then steps decodes). */
static int run_batch(pe_model_t *m, const char *spec, int steps, int gen_mode,
                     const pe_gen_params_t *gp, pb_err_t *err)
{
    static int32_t ids[NSEQ_MAX][4096];
    size_t n[NSEQ_MAX], k = parse_seqs(spec, ids, n);
    pe_state_t *a[NSEQ_MAX] = {0}, *b[NSEQ_MAX] = {0};
    const int32_t *ip[NSEQ_MAX];
    float *la = NULL, *lb = NULL;
    pe_gen_seq_t gs[NSEQ_MAX];
    pe_dims_t d;
    int rc = 0;
    double max_rel = 0;
    pe_model_dims(m, &d);
    if (k == 0)
        return 2;
    la = malloc(k * (size_t)d.vocab * sizeof *la);
    lb = malloc(k * (size_t)d.vocab * sizeof *lb);
    for (size_t i = 0; i < k && rc == 0; i++) {
        ip[i] = ids[i];
        rc = pe_state_create(m, 0, 0, &a[i], err);
        rc = rc ? rc : pe_state_create(m, 0, 0, &b[i], err);
    }
    if (rc || !la || !lb)
        goto out;
    if (gen_mode) {
        int same = 1;
        for (size_t i = 0; i < k; i++)
            gs[i] = (pe_gen_seq_t){.st = a[i], .prompt = ids[i], .n = n[i], .p = gp};
        if ((rc = pe_generate_batch(m, gs, k, err)))
            goto out;
        printf("{\"ids\":[");
        for (size_t i = 0; i < k; i++) {
            int32_t *one = NULL;
            size_t n_one = 0;
            pe_stop_t why;
            if ((rc = pe_generate(m, b[i], ids[i], n[i], gp, &one, &n_one, &why, err)))
                goto out;
            same &= n_one == gs[i].n_out && why == gs[i].why &&
                    (n_one == 0 || !memcmp(one, gs[i].out, n_one * sizeof *one));
            printf("%s[", i ? "," : "");
            for (size_t j = 0; j < gs[i].n_out; j++)
                printf("%s%d", j ? "," : "", (int)gs[i].out[j]);
            printf("]");
            free(one);
            free(gs[i].out);
        }
        printf("],\"same\":%s}\n", same ? "true" : "false");
        goto out;
    }
    for (int s = 0; s <= steps && rc == 0; s++) {
        if ((rc = pe_model_forward_batch(m, a, ip, n, k, la, err)))
            goto out;
        for (size_t i = 0; i < k && rc == 0; i++)
            rc = pe_model_forward(m, b[i], ip[i], n[i], lb + i * (size_t)d.vocab, 0, err);
        for (size_t i = 0; i < k; i++) {
            const float *x = la + i * (size_t)d.vocab, *y = lb + i * (size_t)d.vocab;
            double scale = 1e-30, diff = 0;
            for (int j = 0; j < d.vocab; j++) {
                scale = fabs(y[j]) > scale ? fabs(y[j]) : scale;
                diff = fabs(x[j] - y[j]) > diff ? fabs(x[j] - y[j]) : diff;
            }
            max_rel = diff / scale > max_rel ? diff / scale : max_rel;
            ip[i] = &ids[i][(size_t)s % n[i]]; /* the next step: one token each */
            n[i] = 1;
        }
    }
    printf("{\"max_rel\":%.9g,\"lens\":[", max_rel);
    for (size_t i = 0; i < k; i++)
        printf("%s%d", i ? "," : "", pe_state_len(a[i]));
    printf("],\"want_lens\":[");
    for (size_t i = 0; i < k; i++)
        printf("%s%d", i ? "," : "", pe_state_len(b[i]));
    printf("]}\n");
out:
    for (size_t i = 0; i < k; i++) {
        pe_state_free(a[i]);
        pe_state_free(b[i]);
    }
    free(la);
    free(lb);
    return rc;
}

static int fail(int rc, const pb_err_t *e)
{
    json_t *j = json_pack("{s:s,s:s,s:i}", "error", e->msg, "field", e->field, "code", rc);
    char *s = json_dumps(j, 0);
    printf("%s\n", s);
    free(s);
    json_decref(j);
    return 1;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *mode = "logits", *ids_s = "", *pe_s = NULL;
    int n = 1, kv_bf16 = 0, threads = 1, validate = 0, top_k = 0;
    float temp = 0, top_p = 1;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ids") && i + 1 < argc)
            ids_s = argv[++i];
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
            mode = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pe") && i + 1 < argc)
            pe_s = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--temperature") && i + 1 < argc)
            temp = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--top-p") && i + 1 < argc)
            top_p = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--top-k") && i + 1 < argc)
            top_k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--kv-bf16"))
            kv_bf16 = 1;
        else if (!strcmp(argv[i], "--validate"))
            validate = 1;
        else
            dir = argv[i];
    }
    pb_err_t err = {{0}, {0}};
    json_t *pe = NULL;
    pe_ckpt_t *ck = NULL;
    pe_model_t *m = NULL;
    pe_state_t *st = NULL;
    float *buf = NULL;
    int32_t ids[4096], *gen = NULL;
    size_t nids = 0, ngen = 0;
    int rc = 0;
    for (const char *p = ids_s; *p && nids < 4096;) {
        char *end;
        ids[nids++] = (int32_t)strtol(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p)
            break;
    }
    if (pe_s && !(pe = json_loads(pe_s, 0, NULL))) {
        fprintf(stderr, "bad --pe JSON\n");
        return 2;
    }
    if (validate) {
        rc = pe_pe_validate(pe, &err);
        if (!rc)
            printf("{\"ok\":true}\n");
        goto out;
    }
    if (!dir) {
        fprintf(stderr, "usage: pe_forward DIR --ids 1,2,3 [--mode M]\n");
        return 2;
    }
    if ((rc = pe_ckpt_open(dir, &ck, &err)) ||
        (rc = pe_model_open(ck, pe, threads, &m, &err)) ||
        (rc = pe_state_create(m, 0, kv_bf16, &st, &err)))
        goto out;
    pe_dims_t d;
    pe_model_dims(m, &d);
    buf = malloc((nids + 1) * (size_t)(d.vocab > d.d_model ? d.vocab : d.d_model) * sizeof *buf);
    if (!buf)
        return 2;
    if (!strcmp(mode, "logits") || !strcmp(mode, "decode")) {
        int one = !strcmp(mode, "decode");
        for (size_t i = 0; i < nids && !rc; i += one ? 1 : nids)
            rc = pe_model_forward(m, st, ids + i, one ? 1 : nids, buf + i * (size_t)d.vocab, 1,
                                  &err);
        if (rc)
            goto out;
        printf("{\"logits\":");
        print_rows(buf, nids, (size_t)d.vocab);
        printf(",\"len\":%d}\n", pe_state_len(st));
    } else if (!strcmp(mode, "generate")) {
        pe_gen_params_t gp = {.max_tokens = n, .temperature = temp, .top_p = top_p,
                              .top_k = top_k, .seed = seed};
        pe_stop_t why;
        if ((rc = pe_generate(m, st, ids, nids, &gp, &gen, &ngen, &why, &err)))
            goto out;
        printf("{\"ids\":[");
        for (size_t i = 0; i < ngen; i++)
            printf("%s%d", i ? "," : "", (int)gen[i]);
        printf("],\"stop\":%d}\n", (int)why);
    } else if (!strcmp(mode, "batch") || !strcmp(mode, "batch-generate")) {
        pe_gen_params_t gp = {.max_tokens = n, .temperature = temp, .top_p = top_p,
                              .top_k = top_k, .seed = seed};
        rc = run_batch(m, ids_s, n, !strcmp(mode, "batch-generate"), &gp, &err);
    } else if (!strcmp(mode, "loglik")) {
        double ll;
        int greedy;
        if (n < 1 || (size_t)n >= nids)
            return 2;
        if ((rc = pe_loglik(m, st, ids, nids - (size_t)n, ids + nids - n, (size_t)n, &ll,
                            &greedy, &err)))
            goto out;
        printf("{\"ll\":%.12g,\"greedy\":%s}\n", ll, greedy ? "true" : "false");
    } else if (!strcmp(mode, "embed")) {
        if ((rc = pe_embed(m, st, ids, nids, (pe_pool_t)n, buf, &err)))
            goto out;
        printf("{\"embedding\":");
        print_rows(buf, 1, (size_t)d.d_model);
        printf("}\n");
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        rc = 2;
    }
out:
    if (rc && rc != 2)
        fail(rc, &err);
    free(gen);
    free(buf);
    pe_state_free(st);
    pe_model_close(m);
    pe_ckpt_close(ck);
    json_decref(pe);
    return rc ? 1 : 0;
}
