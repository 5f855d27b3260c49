/* tests/engine/pe_forward: run a checkpoint on token ids and print the
 * result as JSON, for the NumPy comparisons in test_engine_forward.py.
 *   pe_forward DIR --ids 1,2,3 [--mode logits|decode|generate|loglik|embed]
 *              [--n N] [--pe JSON] [--kv-bf16] [--threads N] [--validate]
 *              [--temperature T --top-p P --top-k K --seed S]
 * logits: all logits of one prefill; decode: the same one token at a time;
 * generate: N tokens (greedy unless --temperature); loglik: the last N ids as continuation. */
#include <jansson.h>
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
