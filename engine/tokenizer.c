/* Tokenizer public API: encoding (added tokens matched in the text, then
 * normalizer, pre-tokenizer and model per segment), counting through the
 * same path without keeping ids, decoding (byte-level map, "▁" and <0xNN>,
 * "##" joins) and the small lookups. Loading lives in engine/tok_load.c. */
#include <stdlib.h>
#include <string.h>

#include "engine/tok_int.h"

int pe_tok__grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return PB_ENOMEM;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q)
        return PB_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

int pe_tok__emit(pe_sink_t *s, int32_t id)
{
    if (!s->count_only) {
        int rc = pe_tok__grow((void **)&s->ids, &s->cap, s->n + 1, sizeof(int32_t));
        if (rc)
            return rc;
        s->ids[s->n] = id;
    }
    s->n++;
    return 0;
}

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

int32_t pe_tok__lookup(const pe_tok_t *t, const char *s, size_t n)
{
    if (t->hash_cap == 0)
        return -1;
    size_t h = fnv(s, n) & (t->hash_cap - 1);
    for (int32_t id; (id = t->hash[h]) >= 0; h = (h + 1) & (t->hash_cap - 1))
        if (t->len[id] == n && memcmp(t->str[id], s, n) == 0)
            return id;
    return -1;
}

/* BERT's normalizer into w->buf: control characters dropped, whitespace to
 * ' ', CJK ideographs spaced apart, optional lower-casing and accent
 * stripping (combining marks dropped: an approximation of NFD + Mn removal
 * for text already decomposed or written with precomposed Latin-1). */
static size_t bert_normalize(const pe_tok_t *t, const char *s, size_t n, char *o)
{
    size_t k = 0, adv;
    for (size_t i = 0; i < n; i += adv) {
        int32_t cp = pe_utf8_next(s + i, n - i, &adv);
        if (cp < 0 || cp == 0 || cp == 0xFFFD ||
            ((cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) && !pe_uc_space(cp)))
            continue;
        if (pe_uc_space(cp))
            cp = ' ';
        if (t->strip_accents && pe_uc_mark(cp))
            continue;
        if (t->lowercase)
            cp = pe_uc_lower(cp);
        int cjk = t->chinese_chars && pe_uc_cjk(cp);
        if (cjk)
            o[k++] = ' ';
        k += pe_utf8_put((uint32_t)cp, o + k);
        if (cjk)
            o[k++] = ' ';
    }
    return k;
}

static int bert_pieces(const pe_tok_t *t, const char *s, size_t n, pe_sink_t *out)
{
    size_t i = 0, start = 0, adv;
    int rc = 0;
    while (i <= n && rc == 0) {
        int32_t cp = i < n ? pe_utf8_next(s + i, n - i, &adv) : ' ';
        if (i == n)
            adv = 1;
        int sp = cp == ' ', pu = pe_uc_punct(cp);
        if (sp || pu) {
            if (i > start)
                rc = pe_wp__word(t, s + start, i - start, out);
            if (rc == 0 && pu)
                rc = pe_wp__word(t, s + i, adv, out);
            start = i + adv;
        }
        i += adv;
    }
    return rc;
}

int pe_tok__segment(const pe_tok_t *t, pe_work_t *w, const char *s, size_t n, int first,
                    pe_sink_t *out)
{
    int rc;
    if (n == 0)
        return 0;
    if (t->kind == PE_TOK_CHAR)
        return pe_char__text(t, s, n, out);
    if (n > (SIZE_MAX - 16) / 3)
        return PB_ETOOBIG;
    if ((rc = pe_tok__grow((void **)&w->buf, &w->buf_cap, 3 * n + 16, 1)) != 0)
        return rc;
    char *o = w->buf;
    size_t k = 0;
    int prefix = t->add_prefix_space == 1 || (t->add_prefix_space == 2 && first);
    if (t->kind == PE_TOK_WORDPIECE) {
        k = bert_normalize(t, s, n, o);
        return bert_pieces(t, o, k, out);
    }
    if (t->kind == PE_TOK_BPE_BYTE) {
        if (prefix && !pe_uc_space((unsigned char)s[0]))
            o[k++] = ' ';
        memcpy(o + k, s, n);
        k += n;
    } else { /* SentencePiece: spaces are "▁" */
        if (prefix)
            k += pe_utf8_put(0x2581, o + k);
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ')
                k += pe_utf8_put(0x2581, o + k);
            else
                o[k++] = s[i];
        }
    }
    for (size_t i = 0, m; i < k && rc == 0; i += m) {
        switch (t->pre) {
        case PE_PRE_GPT2:
            m = pe_pre_gpt2(o + i, k - i);
            break;
        case PE_PRE_LLAMA3:
            m = pe_pre_llama3(o + i, k - i, t->pre_digits);
            break;
        case PE_PRE_META: /* up to the next "▁" that follows something else */
            m = 0;
            while (i + m + 3 <= k && memcmp(o + i + m, "\xe2\x96\x81", 3) == 0)
                m += 3;
            while (i + m < k && !(i + m + 3 <= k && memcmp(o + i + m, "\xe2\x96\x81", 3) == 0))
                m++;
            break;
        default:
            m = k - i;
        }
        rc = pe_bpe__piece(t, w, o + i, m, out);
    }
    return rc;
}

/* Cut text at added tokens (longest first at each position) and run the
 * rest through the model; the post-processor's ids wrap the result. */
static int encode(const pe_tok_t *t, const char *text, size_t len, int add_special,
                  pe_sink_t *out)
{
    pe_work_t w = {0};
    int rc = 0, first = 1;
    if (add_special)
        for (int i = 0; i < t->n_pre && rc == 0; i++)
            rc = pe_tok__emit(out, t->pre_ids[i]);
    size_t seg = 0, i = 0;
    while (i < len && rc == 0) {
        unsigned char b = (unsigned char)text[i];
        int32_t hit = -1;
        for (uint32_t a = t->added_first[b]; a < t->added_first[b + 1]; a++) {
            int32_t id = t->added[a];
            if (t->len[id] <= len - i && memcmp(text + i, t->str[id], t->len[id]) == 0) {
                hit = id;
                break;
            }
        }
        if (hit < 0) {
            i++;
            continue;
        }
        rc = pe_tok__segment(t, &w, text + seg, i - seg, first, out);
        first = 0;
        if (rc == 0)
            rc = pe_tok__emit(out, hit);
        i += t->len[hit];
        seg = i;
    }
    if (rc == 0)
        rc = pe_tok__segment(t, &w, text + seg, len - seg, first, out);
    if (add_special)
        for (int k = 0; k < t->n_post && rc == 0; k++)
            rc = pe_tok__emit(out, t->post_ids[k]);
    free(w.buf);
    free(w.sym);
    free(w.prev);
    free(w.next);
    free(w.heap);
    return rc;
}

int pe_tok_encode(const pe_tok_t *t, const char *text, size_t len, int add_special,
                  int32_t **ids, size_t *n)
{
    pe_sink_t s = {0};
    *ids = NULL;
    *n = 0;
    if (!t || (!text && len))
        return PB_EINVAL;
    int rc = encode(t, text, len, add_special, &s);
    if (rc == 0 && s.ids == NULL)
        s.ids = malloc(sizeof(int32_t)); /* a valid pointer even for no ids */
    if (rc == 0 && s.ids == NULL)
        rc = PB_ENOMEM;
    if (rc) {
        free(s.ids);
        return rc;
    }
    *ids = s.ids;
    *n = s.n;
    return 0;
}

int pe_tok_count(const pe_tok_t *t, const char *text, size_t len, int64_t *n)
{
    pe_sink_t s = {.count_only = 1};
    *n = 0;
    if (!t || (!text && len))
        return PB_EINVAL;
    int rc = encode(t, text, len, 0, &s);
    if (rc == 0)
        *n = (int64_t)s.n;
    return rc;
}

/* One token's text into o (room for len + 1 bytes); bytes written. */
static size_t decode_one(const pe_tok_t *t, int32_t id, int first, char *o)
{
    const char *s = t->str[id];
    size_t n = t->len[id], k = 0, adv;
    if (t->flags[id] & PE_TF_ADDED) {
        memcpy(o, s, n);
        return n;
    }
    switch (t->kind) {
    case PE_TOK_BPE_BYTE:
        for (size_t i = 0; i < n; i += adv) {
            int32_t cp = pe_utf8_next(s + i, n - i, &adv);
            int b = cp >= 0 ? pe_bpe__cp_byte((uint32_t)cp) : -1;
            if (b >= 0)
                o[k++] = (char)b;
            else {
                memcpy(o + k, s + i, adv);
                k += adv;
            }
        }
        return k;
    case PE_TOK_BPE_SP:
        if (t->flags[id] & PE_TF_BYTE) {
            for (int b = 0; b < 256; b++)
                if (t->byte_id[b] == id) {
                    o[0] = (char)b;
                    return 1;
                }
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                o[k++] = ' ';
                i += 3;
            } else
                o[k++] = s[i++];
        }
        return k;
    case PE_TOK_WORDPIECE: {
        size_t p = strlen(t->cont_prefix);
        if (p > 0 && n >= p && memcmp(s, t->cont_prefix, p) == 0) {
            memcpy(o, s + p, n - p);
            return n - p;
        }
        if (!first)
            o[k++] = ' ';
        memcpy(o + k, s, n);
        return k + n;
    }
    default:
        memcpy(o, s, n);
        return n;
    }
}

int pe_tok_decode(const pe_tok_t *t, const int32_t *ids, size_t n, int skip_special, char **text,
                  size_t *len)
{
    size_t cap = 1, k = 0;
    char *o = NULL;
    *text = NULL;
    *len = 0;
    if (!t || (!ids && n))
        return PB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_vocab || !t->str[ids[i]])
            return PB_EINVAL;
        cap += t->len[ids[i]] + 1; /* no decoding grows a token by more than a space */
    }
    if ((o = malloc(cap)) == NULL)
        return PB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (skip_special && (t->flags[ids[i]] & PE_TF_SPECIAL))
            continue;
        k += decode_one(t, ids[i], k == 0, o + k);
    }
    /* SentencePiece's decoder strips the space the normalizer prepended. */
    if (t->kind == PE_TOK_BPE_SP && t->add_prefix_space && k > 0 && o[0] == ' ') {
        memmove(o, o + 1, k - 1);
        k--;
    }
    o[k] = '\0';
    *text = o;
    *len = k;
    return 0;
}

pe_tok_kind_t pe_tok_kind(const pe_tok_t *t) { return t->kind; }
size_t pe_tok_vocab_size(const pe_tok_t *t) { return t->n_vocab; }
int32_t pe_tok_bos(const pe_tok_t *t) { return t->bos; }
int32_t pe_tok_eos(const pe_tok_t *t) { return t->eos; }
int32_t pe_tok_pad(const pe_tok_t *t) { return t->pad; }
int32_t pe_tok_id(const pe_tok_t *t, const char *token)
{
    return token ? pe_tok__lookup(t, token, strlen(token)) : -1;
}
