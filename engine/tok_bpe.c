/* BPE on one pre-token: initial symbols (bytes through GPT-2's
 * bytes_to_unicode map, or UTF-8 characters with <0xNN> byte fallback for
 * SentencePiece-style vocabularies), then merges applied lowest rank first,
 * leftmost among equals, as Hugging Face does, with a heap over a linked list
 * of symbols so long pieces stay O(n log n). Scratch lives in pe_work_t. */
#include <stdlib.h>

#include "engine/tok_int.h"

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static int merges_grow(pe_merges_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint64_t *keys = calloc(cap, sizeof *keys);
    uint32_t *rank = malloc(cap * sizeof *rank);
    int32_t *merged = malloc(cap * sizeof *merged);
    if (!keys || !rank || !merged) {
        free(keys);
        free(rank);
        free(merged);
        return PB_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t h = mix(m->keys[i]) & (cap - 1);
        while (keys[h])
            h = (h + 1) & (cap - 1);
        keys[h] = m->keys[i];
        rank[h] = m->rank[i];
        merged[h] = m->merged[i];
    }
    free(m->keys);
    free(m->rank);
    free(m->merged);
    m->keys = keys;
    m->rank = rank;
    m->merged = merged;
    m->cap = cap;
    return 0;
}

int pe_bpe__merges_add(pe_merges_t *m, int32_t a, int32_t b, uint32_t rank, int32_t merged)
{
    /* Ranks count every merge line, so rank + 1 bounds the entries and the
     * load stays under 1/2. */
    if (m->cap == 0 || (size_t)rank * 2 + 2 >= m->cap) {
        int rc = merges_grow(m);
        if (rc)
            return rc;
    }
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t h = mix(key) & (m->cap - 1);
    while (m->keys[h]) {
        if (m->keys[h] == key)
            return 0; /* a repeated merge keeps its first (lowest) rank */
        h = (h + 1) & (m->cap - 1);
    }
    m->keys[h] = key;
    m->rank[h] = rank;
    m->merged[h] = merged;
    return 0;
}

void pe_bpe__merges_free(pe_merges_t *m)
{
    free(m->keys);
    free(m->rank);
    free(m->merged);
    m->keys = NULL;
    m->cap = 0;
}

/* Rank of pair (a, b), UINT32_MAX when it does not merge. */
static uint32_t pair_rank(const pe_merges_t *m, int32_t a, int32_t b, int32_t *merged)
{
    if (m->cap == 0)
        return UINT32_MAX;
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t h = mix(key) & (m->cap - 1);
    while (m->keys[h]) {
        if (m->keys[h] == key) {
            *merged = m->merged[h];
            return m->rank[h];
        }
        h = (h + 1) & (m->cap - 1);
    }
    return UINT32_MAX;
}

uint32_t pe_bpe__byte_cp(uint8_t b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
        return b;
    /* The others take 256, 257, ... in byte order. */
    uint32_t k = 0;
    for (unsigned i = 0; i < b; i++)
        if (!((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE))
            k++;
    return 256 + k;
}

int pe_bpe__cp_byte(uint32_t cp)
{
    static int16_t inv[324];
    static int ready;
    if (!ready) { /* idempotent, so a benign race between threads */
        for (int i = 0; i < 324; i++)
            inv[i] = -1;
        for (int b = 0; b < 256; b++)
            inv[pe_bpe__byte_cp((uint8_t)b)] = (int16_t)b;
        ready = 1;
    }
    return cp < 324 ? inv[cp] : -1;
}

static void heap_push(pe_work_t *w, uint64_t v)
{
    size_t i = w->heap_n++;
    while (i > 0 && w->heap[(i - 1) / 2] > v) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = v;
}

static uint64_t heap_pop(pe_work_t *w)
{
    uint64_t top = w->heap[0], v = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && w->heap[c + 1] < w->heap[c])
            c++;
        if (w->heap[c] >= v)
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0)
        w->heap[i] = v;
    return top;
}

static void push_pair(const pe_tok_t *t, pe_work_t *w, int32_t i)
{
    int32_t j = i >= 0 ? w->next[i] : -1, m;
    if (j < 0)
        return;
    uint32_t r = pair_rank(&t->merges, w->sym[i], w->sym[j], &m);
    if (r != UINT32_MAX)
        heap_push(w, (uint64_t)r << 32 | (uint32_t)i);
}

/* Initial symbols of s into w->sym; *n_out symbols. */
static int initial(const pe_tok_t *t, pe_work_t *w, const char *s, size_t n, size_t *n_out)
{
    size_t k = 0, i = 0, adv;
    while (i < n) {
        if (t->kind == PE_TOK_BPE_BYTE) {
            int32_t id = t->byte_id[(uint8_t)s[i]];
            w->sym[k++] = id >= 0 ? id : t->unk;
            i++;
        } else {
            pe_utf8_next(s + i, n - i, &adv);
            int32_t id = pe_tok__lookup(t, s + i, adv);
            if (id >= 0) {
                w->sym[k++] = id;
            } else {
                for (size_t j = 0; j < adv; j++) {
                    int32_t b = t->byte_id[(uint8_t)s[i + j]];
                    if (b < 0 && t->unk < 0)
                        return PB_EINVAL; /* neither a byte token nor [UNK] */
                    if (b >= 0)
                        w->sym[k++] = b;
                    else if (j == 0 || w->sym[k - 1] != t->unk)
                        w->sym[k++] = t->unk;
                }
            }
            i += adv;
        }
        if (k > 0 && w->sym[k - 1] < 0)
            return PB_EINVAL;
    }
    *n_out = k;
    return 0;
}

int pe_bpe__piece(const pe_tok_t *t, pe_work_t *w, const char *s, size_t n, pe_sink_t *out)
{
    int rc;
    if (n == 0)
        return 0;
    if (t->ignore_merges) {
        int32_t id = pe_tok__lookup(t, s, n);
        if (id >= 0)
            return pe_tok__emit(out, id);
    }
    /* Byte fallback may give up to 4 symbols per character: n is a bound. */
    size_t cap = w->sym_cap;
    if ((rc = pe_tok__grow((void **)&w->sym, &cap, n, sizeof(int32_t))) != 0)
        return rc;
    cap = w->sym_cap;
    if ((rc = pe_tok__grow((void **)&w->prev, &cap, n, sizeof(int32_t))) != 0)
        return rc;
    cap = w->sym_cap;
    if ((rc = pe_tok__grow((void **)&w->next, &cap, n, sizeof(int32_t))) != 0)
        return rc;
    w->sym_cap = cap;
    if ((rc = pe_tok__grow((void **)&w->heap, &w->heap_cap, 3 * n, sizeof(uint64_t))) != 0)
        return rc;
    size_t k;
    if ((rc = initial(t, w, s, n, &k)) != 0)
        return rc;
    if (k > INT32_MAX)
        return PB_ETOOBIG;
    for (size_t i = 0; i < k; i++) {
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < k ? (int32_t)i + 1 : -1;
    }
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < k; i++)
        push_pair(t, w, (int32_t)i);
    while (w->heap_n > 0) {
        uint64_t top = heap_pop(w);
        int32_t i = (int32_t)(uint32_t)top, j = w->next[i], m;
        /* Entries go stale when a neighbour merged first: recheck. */
        if (w->sym[i] < 0 || j < 0 ||
            pair_rank(&t->merges, w->sym[i], w->sym[j], &m) != (uint32_t)(top >> 32))
            continue;
        w->sym[i] = m;
        w->sym[j] = -1;
        w->next[i] = w->next[j];
        if (w->next[j] >= 0)
            w->prev[w->next[j]] = i;
        push_pair(t, w, w->prev[i]);
        push_pair(t, w, i);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        if ((rc = pe_tok__emit(out, w->sym[i])) != 0)
            return rc;
    return 0;
}
