/* Tokenizer internals shared by engine/tokenizer.c (loading, added tokens,
 * public API), engine/tok_bpe.c (BPE merges, byte-level and SentencePiece),
 * engine/tok_text.c (UTF-8, Unicode classes, pre-tokenizer scanners) and
 * engine/tok_wordpiece.c (WordPiece, character level). */
#ifndef PE_TOK_INT_H
#define PE_TOK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tokenizer.h"

/* Caps on what a tokenizer.json may declare (outside input). */
#define PE_TOK_MAX_VOCAB (4u << 20)
#define PE_TOK_MAX_TOKLEN 4096
#define PE_TOK_MAX_POST 8

/* How normal text is cut into pieces before the model sees them. */
typedef enum {
    PE_PRE_NONE,   /* whole segment is one piece */
    PE_PRE_GPT2,   /* GPT-2's regex, hand-scanned */
    PE_PRE_LLAMA3, /* Llama-3 / Qwen2's regex (digit groups of pre_digits) */
    PE_PRE_META,   /* Metaspace: split before each "▁" */
    PE_PRE_BERT,   /* whitespace and punctuation */
} pe_pre_t;

/* An open-addressing map from a pair of ids to (rank, merged id). */
typedef struct {
    uint64_t *keys; /* (a << 32 | b) + 1; 0 = empty */
    uint32_t *rank;
    int32_t *merged;
    size_t cap; /* power of two */
} pe_merges_t;

struct pe_tok {
    pe_tok_kind_t kind;
    size_t n_vocab;     /* ids are 0 .. n_vocab-1; holes have NULL strings */
    char **str;         /* id -> token bytes (NUL-terminated) */
    uint32_t *len;      /* id -> byte length */
    uint8_t *flags;     /* id -> PE_TF_* */
    int32_t *hash;      /* open addressing, -1 empty */
    size_t hash_cap;    /* power of two */
    pe_merges_t merges; /* BPE only */
    /* Added tokens matched in text, grouped by first byte, longest first. */
    int32_t *added;
    size_t n_added;
    uint32_t added_first[257]; /* added[added_first[b] .. added_first[b+1]) */
    pe_pre_t pre;
    int pre_digits;          /* Llama-3: 3, Qwen2: 1 */
    int add_prefix_space;    /* ByteLevel / Metaspace / Prepend("▁") */
    int ignore_merges;       /* a piece found whole in the vocab is one token */
    int byte_level;          /* ByteLevel pre-tokenizer or decoder seen */
    int lowercase;           /* BertNormalizer */
    int strip_accents;       /* BertNormalizer: drop combining marks */
    int chinese_chars;       /* BertNormalizer: CJK ideographs split apart */
    int32_t unk;             /* -1 none */
    int32_t byte_id[256];    /* byte-level map char / <0xNN> token per byte, -1 */
    char cont_prefix[16];    /* WordPiece "##" */
    int max_word_chars;      /* WordPiece: longer words are [UNK] */
    int32_t pre_ids[PE_TOK_MAX_POST], post_ids[PE_TOK_MAX_POST];
    int n_pre, n_post;
    int32_t bos, eos, pad;
};

enum { PE_TF_ADDED = 1, PE_TF_SPECIAL = 2, PE_TF_BYTE = 4 };

/* Where ids go: appended to ids (grown by doubling) or only counted. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
    int count_only;
} pe_sink_t;

/* Per-call scratch reused across pieces so encoding allocates O(1) times. */
typedef struct {
    char *buf; /* normalized text */
    size_t buf_cap;
    int32_t *sym, *prev, *next; /* BPE symbol list */
    size_t sym_cap;
    uint64_t *heap; /* (rank << 32 | position) */
    size_t heap_n, heap_cap;
} pe_work_t;

int pe_tok__emit(pe_sink_t *s, int32_t id);
int32_t pe_tok__lookup(const pe_tok_t *t, const char *s, size_t n);
int pe_tok__grow(void **p, size_t *cap, size_t need, size_t elem);

/* UTF-8 and Unicode classes (tok_text.c). */
/* Decode one code point at s[0, n), n > 0; *adv bytes used (>= 1). An
 * invalid byte decodes as -1 with *adv = 1. */
int32_t pe_utf8_next(const char *s, size_t n, size_t *adv);
size_t pe_utf8_put(uint32_t cp, char *out);
int pe_uc_letter(int32_t cp);
int pe_uc_number(int32_t cp);
int pe_uc_space(int32_t cp);
int pe_uc_punct(int32_t cp);
int pe_uc_mark(int32_t cp);
int pe_uc_cjk(int32_t cp);
int32_t pe_uc_lower(int32_t cp);
/* Length of the next pre-token of s[0, n) (n > 0) under the GPT-2 or
 * Llama-3 pattern; always >= 1. */
size_t pe_pre_gpt2(const char *s, size_t n);
size_t pe_pre_llama3(const char *s, size_t n, int digits);

/* Models. The piece is already normalized and pre-tokenized. */
int pe_bpe__piece(const pe_tok_t *t, pe_work_t *w, const char *s, size_t n, pe_sink_t *out);
int pe_bpe__merges_add(pe_merges_t *m, int32_t a, int32_t b, uint32_t rank, int32_t merged);
void pe_bpe__merges_free(pe_merges_t *m);
/* GPT-2's bytes_to_unicode: the code point standing for byte b, and back
 * (-1 for a code point that stands for no byte). */
uint32_t pe_bpe__byte_cp(uint8_t b);
int pe_bpe__cp_byte(uint32_t cp);
int pe_wp__word(const pe_tok_t *t, const char *s, size_t n, pe_sink_t *out);
int pe_char__text(const pe_tok_t *t, const char *s, size_t n, pe_sink_t *out);
/* Normalize + pre-tokenize + model on one segment free of added tokens. */
int pe_tok__segment(const pe_tok_t *t, pe_work_t *w, const char *s, size_t n, int first,
                    pe_sink_t *out);

#endif
