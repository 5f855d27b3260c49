/* tests/engine/pe_tokenize: encode texts with a tokenizer directory and
 * print the ids, for the conformance test against a published vocabulary
 * (tests/integration/test_tokenizer_conformance.py).
 *   pe_tokenize DIR [--special] < texts.json     (a JSON array of strings)
 * prints {"ids": [[...], ...], "roundtrip": [true|false, ...]}: the ids of
 * each text (add_special with --special) and whether decoding gives it back. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer.h"

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int special = 0, rc = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--special"))
            special = 1;
        else
            dir = argv[i];
    }
    if (dir == NULL) {
        fprintf(stderr, "usage: pe_tokenize DIR [--special] < texts.json\n");
        return 2;
    }
    pe_tok_t *t = NULL;
    pb_err_t err = {{0}, {0}};
    json_error_t jerr;
    json_t *texts = json_loadf(stdin, JSON_DECODE_ANY, &jerr), *out = json_array(),
           *trips = json_array();
    if (texts == NULL || !json_is_array(texts)) {
        fprintf(stderr, "stdin: a JSON array of strings expected (%s)\n", jerr.text);
        goto out;
    }
    if (pe_tok_open_dir(dir, &t, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(texts, i, v) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v), n = 0, blen = 0;
        int32_t *ids = NULL;
        char *back = NULL;
        if (s == NULL || pe_tok_encode(t, s, len, special, &ids, &n) ||
            pe_tok_decode(t, ids, n, 0, &back, &blen)) {
            fprintf(stderr, "text %zu: cannot encode or decode\n", i);
            free(ids);
            goto out;
        }
        json_t *row = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(row, json_integer(ids[k]));
        json_array_append_new(out, row);
        json_array_append_new(trips, json_boolean(blen == len && memcmp(back, s, len) == 0));
        free(ids);
        free(back);
    }
    json_t *res = json_pack("{s:O,s:O}", "ids", out, "roundtrip", trips);
    char *dump = json_dumps(res, JSON_COMPACT);
    printf("%s\n", dump);
    free(dump);
    json_decref(res);
    rc = 0;
out:
    pe_tok_free(t);
    json_decref(texts);
    json_decref(out);
    json_decref(trips);
    return rc;
}
