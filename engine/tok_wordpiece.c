/* WordPiece (BERT): greedy longest match first within a pre-tokenized word,
 * continuations looked up with the "##" prefix, the whole word [UNK] when any
 * part fails or it is longer than max_input_chars_per_word. Character level
 * (posbench's "Char" model): one vocab entry per UTF-8 character, unknown
 * characters and invalid bytes are the unk token. */
#include <string.h>

#include "engine/tok_int.h"

#define WP_MAX_WORD 1024 /* max_input_chars_per_word is capped to this at load */

static int unk_or_fail(const pe_tok_t *t, pe_sink_t *out)
{
    return t->unk >= 0 ? pe_tok__emit(out, t->unk) : PB_EINVAL;
}

int pe_wp__word(const pe_tok_t *t, const char *s, size_t n, pe_sink_t *out)
{
    int32_t ids[WP_MAX_WORD];
    char buf[PE_TOK_MAX_TOKLEN + 16];
    size_t n_ids = 0, chars = 0, adv, plen = strlen(t->cont_prefix);
    for (size_t i = 0; i < n; i += adv, chars++)
        pe_utf8_next(s + i, n - i, &adv);
    if (chars > (size_t)t->max_word_chars)
        return unk_or_fail(t, out);
    size_t start = 0;
    while (start < n) {
        int32_t found = -1;
        size_t end = n;
        while (end > start) {
            size_t len = end - start, pre = start > 0 ? plen : 0;
            if (len <= PE_TOK_MAX_TOKLEN) {
                memcpy(buf, t->cont_prefix, pre);
                memcpy(buf + pre, s + start, len);
                found = pe_tok__lookup(t, buf, pre + len);
                if (found >= 0)
                    break;
            }
            /* Step back one whole character. */
            do
                end--;
            while (end > start && ((unsigned char)s[end] & 0xC0) == 0x80);
        }
        if (found < 0)
            return unk_or_fail(t, out);
        ids[n_ids++] = found; /* at most one id per character */
        start = end;
    }
    for (size_t i = 0; i < n_ids; i++) {
        int rc = pe_tok__emit(out, ids[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int pe_char__text(const pe_tok_t *t, const char *s, size_t n, pe_sink_t *out)
{
    size_t adv;
    for (size_t i = 0; i < n; i += adv) {
        int32_t cp = pe_utf8_next(s + i, n - i, &adv);
        int32_t id = cp >= 0 ? pe_tok__lookup(t, s + i, adv) : -1;
        int rc = id >= 0 ? pe_tok__emit(out, id) : unk_or_fail(t, out);
        if (rc)
            return rc;
    }
    return 0;
}
