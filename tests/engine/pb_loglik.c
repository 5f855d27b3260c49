/* tests/engine/pb_loglik: score continuations through the `native` worker
 * backend's loglik op (worker/backend.h), for test_native_loglik.py.
 *   pb_loglik DIR CONTEXT CONT... prints {"ll": [...], "greedy": [...]}
 * or {"error": msg, "code": rc} (exit 1). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "worker/backend.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: pb_loglik DIR CONTEXT CONT...\n");
        return 2;
    }
    const pb_backend_ops_t *ops = pb_backend_find("native");
    size_t n = (size_t)argc - 3;
    double *ll = calloc(n, sizeof *ll);
    int *greedy = calloc(n, sizeof *greedy), rc = 1;
    pb_backend_t *b = NULL;
    pb_err_t err = {{0}, {0}};
    json_t *model = json_pack("{s:s,s:s,s:i}", "backend", "native", "path", argv[1], "threads", 1);
    if (ops == NULL || ops->loglik == NULL || ll == NULL || greedy == NULL || model == NULL)
        goto out;
    if ((rc = ops->open(model, 1, &b, &err)) == 0)
        rc = ops->loglik(b, argv[2], (const char *const *)argv + 3, n, ll, greedy, &err);
    json_t *res = rc ? json_pack("{s:s,s:i}", "error", err.msg, "code", rc)
                     : json_pack("{s:[],s:[]}", "ll", "greedy");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_array_append_new(json_object_get(res, "ll"), json_real(ll[i]));
        json_array_append_new(json_object_get(res, "greedy"), json_boolean(greedy[i]));
    }
    char *s = json_dumps(res, JSON_REAL_PRECISION(17));
    printf("%s\n", s);
    free(s);
    json_decref(res);
out:
    if (b)
        ops->close(b);
    json_decref(model);
    free(ll);
    free(greedy);
    return rc ? 1 : 0;
}
