/* Unit tests for the tokenizers (engine/tokenizer.h): hand-written tiny
 * tokenizer.json texts for byte-level BPE (merge order, pre-tokenizer
 * pieces, added tokens), SentencePiece BPE with byte fallback, WordPiece and
 * character level; byte-level round-trips on random Unicode and invalid
 * bytes; a conformance run when PB_TOKENIZER_DIR names a real tokenizer;
 * a seeded fuzz loop over mutated tokenizer.json texts. */
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_int.h"
#include "engine/tokenizer.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* GPT-2's bytes_to_unicode, written out again for the test. */
static uint32_t b2u(int b)
{
    int n = 0;
    for (int i = 0; i < 256; i++) {
        int keep = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174);
        if (i == b)
            return keep ? (uint32_t)i : (uint32_t)(256 + n);
        if (!keep)
            n++;
    }
    return 0;
}

static void put_utf8(char *o, uint32_t cp)
{
    size_t n = pe_utf8_put(cp, o);
    o[n] = '\0';
}

/* Byte-level vocab: id b is the character standing for byte b; then
 * 256 "bc", 257 "ab", 258 "abc", 259 "abab", merges ranked
 * 0 "b c", 1 "a b", 2 "a bc", 3 "ab ab". pre: the pre_tokenizer JSON. */
static char *byte_json(const char *pre, int pairs)
{
    json_t *vocab = json_object();
    char s[8];
    for (int b = 0; b < 256; b++) {
        put_utf8(s, b2u(b));
        json_object_set_new(vocab, s, json_integer(b));
    }
    json_object_set_new(vocab, "bc", json_integer(256));
    json_object_set_new(vocab, "ab", json_integer(257));
    json_object_set_new(vocab, "abc", json_integer(258));
    json_object_set_new(vocab, "abab", json_integer(259));
    json_t *merges = pairs ? pb_test_json("[[\"b\",\"c\"],[\"a\",\"b\"],[\"a\",\"bc\"],[\"ab\",\"ab\"]]")
                           : pb_test_json("[\"b c\",\"a b\",\"a bc\",\"ab ab\"]");
    json_t *root = json_pack(
        "{s:{s:s, s:o, s:o}, s:o, s:{s:s}, s:[{s:i, s:s, s:b}, {s:i, s:s, s:b}]}", "model", "type",
        "BPE", "vocab", vocab, "merges", merges, "pre_tokenizer", pb_test_json(pre), "decoder",
        "type", "ByteLevel", "added_tokens", "id", 260, "content", "<|endoftext|>", "special", 1,
        "id", 261, "content", "<|x|>", "special", 0);
    assert_non_null(root);
    char *text = json_dumps(root, 0);
    json_decref(root);
    return text;
}

static const char *gpt2_pre = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false}";
static const char *llama3_pre =
    "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
    "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| "
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}},"
    "{\"type\":\"ByteLevel\",\"use_regex\":false}]}";

static pe_tok_t *open_text(const char *text)
{
    pe_tok_t *t = NULL;
    pb_err_t err = {{0}, {0}};
    int rc = pe_tok_open_json(text, strlen(text), "test.json", &t, &err);
    if (rc)
        fail_msg("open: %s", err.msg);
    return t;
}

static pe_tok_t *open_byte(const char *pre, int pairs)
{
    char *j = byte_json(pre, pairs);
    pe_tok_t *t = open_text(j);
    free(j);
    return t;
}

/* Encode text and compare with want[0, n). */
static void expect_ids(const pe_tok_t *t, const char *text, int special, const int32_t *want,
                       size_t n)
{
    int32_t *ids = NULL;
    size_t got = 0;
    int64_t cnt = -1;
    assert_int_equal(pe_tok_encode(t, text, strlen(text), special, &ids, &got), 0);
    for (size_t i = 0; i < got && i < n; i++)
        if (ids[i] != want[i])
            fail_msg("\"%s\": id %zu is %d, want %d", text, i, ids[i], want[i]);
    assert_int_equal(got, n);
    if (!special) {
        assert_int_equal(pe_tok_count(t, text, strlen(text), &cnt), 0);
        assert_int_equal(cnt, (int64_t)n);
    }
    free(ids);
}

static void expect_decode(const pe_tok_t *t, const int32_t *ids, size_t n, int skip,
                          const char *want)
{
    char *s = NULL;
    size_t len = 0;
    assert_int_equal(pe_tok_decode(t, ids, n, skip, &s, &len), 0);
    assert_int_equal(len, strlen(want));
    assert_string_equal(s, want);
    free(s);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), (sizeof((const int32_t[]){__VA_ARGS__}) / 4)

static void test_bpe_rank_order(void **state)
{
    (void)state;
    for (int pairs = 0; pairs < 2; pairs++) {
        pe_tok_t *t = open_byte(gpt2_pre, pairs);
        assert_int_equal(pe_tok_kind(t), PE_TOK_BPE_BYTE);
        assert_int_equal(pe_tok_vocab_size(t), 262);
        /* "abc": (b,c) rank 0 beats (a,b) rank 1 -> a|bc, then (a,bc) -> abc = 258.
         * Left-to-right greedy would give ab|c = 257, 99. */
        expect_ids(t, "abc", 0, IDS(258));
        /* "abab": both (a,b) rank 1 merge, then (ab,ab) rank 3 -> 259. */
        expect_ids(t, "abab", 0, IDS(259));
        /* "abcab": bc first, then a+bc, then the second a+b: 258, 257. */
        expect_ids(t, "abcab", 0, IDS(258, 257));
        /* " ab": one piece " ab" -> Ġ (id 32 = byte 0x20), then ab = 257. */
        expect_ids(t, " ab", 0, IDS(32, 257));
        /* "cb": no merge applies: 99, 98. */
        expect_ids(t, "cb", 0, IDS(99, 98));
        /* Added tokens are matched in text; specials skipped on decode. */
        expect_ids(t, "ab<|endoftext|>ab<|x|>", 0, IDS(257, 260, 257, 261));
        expect_decode(t, IDS(257, 260, 257, 261), 1, "abab<|x|>");
        expect_decode(t, IDS(257, 260, 257, 261), 0, "ab<|endoftext|>ab<|x|>");
        assert_int_equal(pe_tok_id(t, "abc"), 258);
        assert_int_equal(pe_tok_id(t, "zzz"), -1);
        assert_int_equal(pe_tok_eos(t), 260);
        assert_int_equal(pe_tok_bos(t), -1);
        char *s = NULL;
        size_t len = 0;
        assert_int_equal(pe_tok_decode(t, IDS(5, 262), 0, &s, &len), PB_EINVAL);
        assert_null(s);
        pe_tok_free(t);
    }
}

/* Split s into pieces with the scanner and compare with want (NULL ended). */
static void expect_pieces(int llama3, const char *s, const char *const *want)
{
    size_t n = strlen(s), i = 0, k = 0;
    while (i < n) {
        size_t m = llama3 ? pe_pre_llama3(s + i, n - i, 3) : pe_pre_gpt2(s + i, n - i);
        assert_non_null(want[k]);
        if (m != strlen(want[k]) || memcmp(s + i, want[k], m) != 0)
            fail_msg("piece %zu of \"%s\": got \"%.*s\", want \"%s\"", k, s, (int)m, s + i,
                     want[k]);
        i += m;
        k++;
    }
    assert_null(want[k]);
}

static void test_pretokenizers(void **state)
{
    (void)state;
    const char *text = "Hello world's  123 !!\n\n x12345 \xc3\xa9t\xc3\xa9";
    expect_pieces(0, text,
                  (const char *const[]){"Hello", " world", "'s", " ", " 123", " !!", "\n\n", " x",
                                        "12345", " \xc3\xa9t\xc3\xa9", NULL});
    expect_pieces(1, text,
                  (const char *const[]){"Hello", " world", "'s", " ", " ", "123", " !!\n\n", " x",
                                        "123", "45", " \xc3\xa9t\xc3\xa9", NULL});
    /* Llama-3's contractions ignore case, GPT-2's do not. */
    expect_pieces(1, "I'M", (const char *const[]){"I", "'M", NULL});
    expect_pieces(0, "I'M", (const char *const[]){"I", "'", "M", NULL});
    expect_pieces(0, "a  ", (const char *const[]){"a", "  ", NULL});
}

/* Random text: ASCII, Latin, CJK, emoji, combining marks, whitespace and
 * invalid bytes. */
static size_t random_text(char *o, size_t max)
{
    static const uint32_t pool[][2] = {{0x20, 0x7E}, {0xA0, 0x17F},     {0x4E00, 0x9FFF},
                                       {0x300, 0x36F}, {0x1F600, 0x1F64F}, {0x9, 0xD},
                                       {0x3040, 0x30FF}, {0x400, 0x4FF}};
    size_t k = 0;
    while (k + 8 < max) {
        uint64_t r = rnd();
        if (r % 13 == 0) {
            o[k++] = (char)(0x80 + (r >> 8) % 0x80); /* invalid / stray byte */
            continue;
        }
        const uint32_t *p = pool[(r >> 4) % 8];
        k += pe_utf8_put(p[0] + (uint32_t)((r >> 16) % (p[1] - p[0] + 1)), o + k);
        if (r % 7 == 0)
            o[k++] = ' ';
    }
    return k;
}

static void roundtrip(const pe_tok_t *t, const char *text, size_t n)
{
    int32_t *ids = NULL;
    size_t m = 0, len = 0;
    int64_t cnt = 0;
    char *back = NULL;
    assert_int_equal(pe_tok_encode(t, text, n, 0, &ids, &m), 0);
    assert_int_equal(pe_tok_count(t, text, n, &cnt), 0);
    assert_int_equal(cnt, (int64_t)m);
    assert_int_equal(pe_tok_decode(t, ids, m, 0, &back, &len), 0);
    assert_int_equal(len, n);
    assert_memory_equal(back, text, n);
    free(ids);
    free(back);
}

static void test_byte_roundtrip(void **state)
{
    (void)state;
    const char *pres[] = {gpt2_pre, llama3_pre};
    char buf[600];
    rng_state = 0x9E3779B97F4A7C15ULL;
    for (int p = 0; p < 2; p++) {
        pe_tok_t *t = open_byte(pres[p], 0);
        for (int i = 0; i < 200; i++) {
            size_t n = random_text(buf, 16 + rnd() % (sizeof buf - 16));
            roundtrip(t, buf, n);
        }
        roundtrip(t, "abcab abab\r\n\t ", 14);
        pe_tok_free(t);
    }
}

/* SentencePiece (Llama-2 shape): <unk> 0, <s> 1, </s> 2, <0xNN> 3 + NN,
 * then 259 "▁", 260 "h", 261 "i", 262 "▁h", 263 "▁hi", merges
 * "▁ h" (rank 0), "▁h i" (rank 1). */
static char *sp_json(void)
{
    json_t *vocab = json_pack("{s:i, s:i, s:i}", "<unk>", 0, "<s>", 1, "</s>", 2);
    char s[16];
    for (int b = 0; b < 256; b++) {
        snprintf(s, sizeof s, "<0x%02X>", b);
        json_object_set_new(vocab, s, json_integer(3 + b));
    }
    json_object_set_new(vocab, "\xe2\x96\x81", json_integer(259));
    json_object_set_new(vocab, "h", json_integer(260));
    json_object_set_new(vocab, "i", json_integer(261));
    json_object_set_new(vocab, "\xe2\x96\x81h", json_integer(262));
    json_object_set_new(vocab, "\xe2\x96\x81hi", json_integer(263));
    json_t *root = json_pack(
        "{s:{s:s, s:o, s:[s,s], s:b, s:s}, s:{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]},"
        " s:o, s:[{s:i, s:s, s:b}, {s:i, s:s, s:b}, {s:i, s:s, s:b}]}",
        "model", "type", "BPE", "vocab", vocab, "merges", "\xe2\x96\x81 h", "\xe2\x96\x81h i",
        "byte_fallback", 1, "unk_token", "<unk>", "normalizer", "type", "Sequence", "normalizers",
        "type", "Prepend", "prepend", "\xe2\x96\x81", "type", "Replace", "pattern", "String", " ",
        "content", "\xe2\x96\x81", "post_processor",
        pb_test_json("{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":"
                     "\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                     "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}}"),
        "added_tokens", "id", 0, "content", "<unk>", "special", 1, "id", 1, "content", "<s>",
        "special", 1, "id", 2, "content", "</s>", "special", 1);
    assert_non_null(root);
    char *text = json_dumps(root, 0);
    json_decref(root);
    return text;
}

static pe_tok_t *open_sp(void)
{
    char *text = sp_json();
    pe_tok_t *t = open_text(text);
    free(text);
    return t;
}

static void test_sentencepiece(void **state)
{
    (void)state;
    pe_tok_t *t = open_sp();
    assert_int_equal(pe_tok_kind(t), PE_TOK_BPE_SP);
    assert_int_equal(pe_tok_bos(t), 1);
    assert_int_equal(pe_tok_eos(t), 2);
    /* "hi" -> "▁hi": ▁+h (rank 0) then ▁h+i (rank 1) = 263; BOS first. */
    expect_ids(t, "hi", 1, IDS(1, 263));
    /* "hi 😀": ▁hi, then ▁ + h -> ▁h, then 😀 (F0 9F 98 80) by byte fallback. */
    expect_ids(t, "hi h\xf0\x9f\x98\x80", 0, IDS(263, 262, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80));
    expect_decode(t, IDS(1, 263, 262, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80), 1, "hi h\xf0\x9f\x98\x80");
    /* An invalid byte goes through byte fallback too and comes back. */
    expect_ids(t, "i\xff", 0, IDS(259, 261, 3 + 0xFF));
    expect_decode(t, IDS(259, 261, 3 + 0xFF), 0, "i\xff");
    rng_state = 42;
    char buf[300];
    for (int i = 0; i < 100; i++) {
        size_t n = random_text(buf, sizeof buf);
        if (n > 0 && buf[0] == ' ')
            buf[0] = 'h'; /* the decoder strips one leading space */
        roundtrip(t, buf, n);
    }
    pe_tok_free(t);
}

static const char *wp_json =
    "{\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":"
    "\"##\",\"max_input_chars_per_word\":100,\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,"
    "\"[SEP]\":3,\"hello\":4,\"world\":5,\"##s\":6,\",\":7,\"!\":8,\"un\":9,\"##aff\":10,"
    "\"##able\":11,\"cafe\":12,\"\xe4\xb8\xad\":13}},"
    "\"normalizer\":{\"type\":\"BertNormalizer\",\"lowercase\":true,\"strip_accents\":null,"
    "\"handle_chinese_chars\":true,\"clean_text\":true},"
    "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
    "\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",3],\"cls\":[\"[CLS]\",2]},"
    "\"added_tokens\":[{\"id\":0,\"content\":\"[PAD]\",\"special\":true},"
    "{\"id\":1,\"content\":\"[UNK]\",\"special\":true},{\"id\":2,\"content\":\"[CLS]\",\"special\":"
    "true},{\"id\":3,\"content\":\"[SEP]\",\"special\":true}]}";

static void test_wordpiece(void **state)
{
    (void)state;
    pe_tok_t *t = open_text(wp_json);
    assert_int_equal(pe_tok_kind(t), PE_TOK_WORDPIECE);
    assert_int_equal(pe_tok_bos(t), 2);
    assert_int_equal(pe_tok_eos(t), 3);
    assert_int_equal(pe_tok_pad(t), 0);
    /* Lower-cased, punctuation split off, ## continuations, unknown word
     * [UNK] as a whole, CJK split apart, accent (combining U+0301) dropped. */
    expect_ids(t, "Hello, WORLDS! unaffable xyz\t\xe4\xb8\xad\xe4\xb8\xad cafe\xcc\x81", 1,
               IDS(2, 4, 7, 5, 6, 8, 9, 10, 11, 1, 13, 13, 12, 3));
    expect_decode(t, IDS(2, 4, 7, 5, 6, 8, 9, 10, 11, 1, 3), 1, "hello , worlds ! unaffable");
    expect_ids(t, "[CLS]hello", 0, IDS(2, 4));
    pe_tok_free(t);
}

static void test_char(void **state)
{
    (void)state;
    pe_tok_t *t = open_text(
        "{\"model\":{\"type\":\"Char\",\"unk_token\":\"?\",\"vocab\":{\"?\":0,\"0\":1,\"1\":2,"
        "\"2\":3,\"+\":4,\"=\":5,\"\xc3\xa9\":6}},\"added_tokens\":[{\"id\":7,\"content\":"
        "\"<eos>\",\"special\":true}]}");
    assert_int_equal(pe_tok_kind(t), PE_TOK_CHAR);
    assert_int_equal(pe_tok_eos(t), 7);
    expect_ids(t, "12+0=12<eos>", 0, IDS(2, 3, 4, 1, 5, 2, 3, 7));
    expect_ids(t, "1a\xc3\xa9\xff", 0, IDS(2, 0, 6, 0));
    expect_decode(t, IDS(2, 3, 4, 1, 5, 2, 3, 7), 1, "12+0=12");
    pe_tok_free(t);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_open_dir(void **state)
{
    (void)state;
    char d1[256], d2[256], d3[256];
    pe_tok_t *t = NULL;
    pb_err_t err = {{0}, {0}};
    pb_test_tmpdir(d1, sizeof d1);
    assert_int_equal(pe_tok_open_dir(d1, &t, &err), PB_ENOTFOUND);
    write_file(d1, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##s\n");
    assert_int_equal(pe_tok_open_dir(d1, &t, &err), 0);
    assert_int_equal(pe_tok_kind(t), PE_TOK_WORDPIECE);
    expect_ids(t, "HELLOs x", 1, IDS(2, 4, 5, 1, 3));
    pe_tok_free(t);
    pb_test_tmpdir(d2, sizeof d2);
    write_file(d2, "vocab.json", "{\"a\":0,\"b\":1,\"\xc4\xa0\":2,\"ab\":3,\"\xc4\xa0" "ab\":4}");
    write_file(d2, "merges.txt", "#version: 0.2\na b\n\xc4\xa0 ab\n");
    assert_int_equal(pe_tok_open_dir(d2, &t, &err), 0);
    assert_int_equal(pe_tok_kind(t), PE_TOK_BPE_BYTE);
    expect_ids(t, "ab ab", 0, IDS(3, 4));
    pe_tok_free(t);
    pb_test_tmpdir(d3, sizeof d3);
    write_file(d3, "vocab_chars.json", "{\"vocab\":{\"x\":0,\"y\":1},\"unk_token\":\"x\"}");
    assert_int_equal(pe_tok_open_dir(d3, &t, &err), 0);
    assert_int_equal(pe_tok_kind(t), PE_TOK_CHAR);
    expect_ids(t, "yzy", 0, IDS(1, 0, 1));
    pe_tok_free(t);
    write_file(d3, "tokenizer.json", "{\"model\":{\"type\":\"Unigram\",\"vocab\":{}}}");
    assert_int_equal(pe_tok_open_dir(d3, &t, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "Unigram"));
    assert_null(t);
}

static void test_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{",
        "[]",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":[]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999}}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0}}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a q\"]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"aa\"]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"added_tokens\":[{\"id\":\"x\"}]}",
        "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}},\"post_processor\":{\"type\":"
        "\"BertProcessing\",\"cls\":[\"[CLS]\",7],\"sep\":[\"[SEP]\",8]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pe_tok_t *t = NULL;
        pb_err_t err = {{0}, {0}};
        int rc = pe_tok_open_json(bad[i], strlen(bad[i]), "bad.json", &t, &err);
        if (rc != PB_EPARSE)
            fail_msg("case %zu: rc %d", i, rc);
        assert_null(t);
        assert_non_null(strstr(err.msg, "bad.json"));
    }
}

/* A real published tokenizer when PB_TOKENIZER_DIR names one. */
static void test_conformance(void **state)
{
    (void)state;
    const char *dir = getenv("PB_TOKENIZER_DIR");
    if (!dir || !*dir)
        skip();
    pe_tok_t *t = NULL;
    pb_err_t err = {{0}, {0}};
    if (pe_tok_open_dir(dir, &t, &err))
        fail_msg("%s", err.msg);
    const char *text = "Hello world! The quick brown fox jumps over the lazy dog, 12345 times.";
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(pe_tok_encode(t, text, strlen(text), 0, &ids, &n), 0);
    assert_true(n > 5 && n < strlen(text));
    char *back = NULL;
    size_t len = 0;
    assert_int_equal(pe_tok_decode(t, ids, n, 1, &back, &len), 0);
    if (pe_tok_kind(t) != PE_TOK_WORDPIECE)
        assert_string_equal(back, text);
    const char *want = getenv("PB_TOKENIZER_IDS"); /* optional: "15496,995,..." */
    if (want) {
        char list[4096] = "";
        size_t k = 0;
        for (size_t i = 0; i < n && k + 16 < sizeof list; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, i ? ",%d" : "%d", ids[i]);
        assert_string_equal(list, want);
    }
    free(ids);
    free(back);
    pe_tok_free(t);
}

/* Mutated tokenizer.json texts and random input never crash. */
static void test_fuzz(void **state)
{
    (void)state;
    char *bases[3] = {byte_json(llama3_pre, 1), sp_json(), strdup(wp_json)};
    rng_state = 12345;
    char input[256];
    int opened = 0;
    for (int it = 0; it < 600; it++) {
        const char *base = bases[it % 3];
        size_t n = strlen(base);
        char *m = malloc(n + 64);
        memcpy(m, base, n);
        int edits = 1 + (int)(rnd() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = rnd() % n;
            switch (rnd() % 4) {
            case 0:
                m[at] = (char)rnd();
                break;
            case 1:
                m[at] = "{}[]\",:0-9 "[rnd() % 11];
                break;
            case 2:
                n = at + 1; /* truncate */
                break;
            default:
                memmove(m + at, m + at + 1, n - at - 1);
                n--;
            }
            if (n == 0)
                n = 1;
        }
        pe_tok_t *t = NULL;
        pb_err_t err = {{0}, {0}};
        if (pe_tok_open_json(m, n, "fuzz.json", &t, &err) == 0) {
            opened++;
            for (size_t i = 0; i < sizeof input; i++)
                input[i] = (char)rnd();
            int32_t *ids = NULL;
            size_t k = 0;
            if (pe_tok_encode(t, input, sizeof input, 1, &ids, &k) == 0) {
                char *s = NULL;
                size_t len = 0;
                assert_int_equal(pe_tok_decode(t, ids, k, 0, &s, &len), 0);
                free(s);
            }
            free(ids);
            pe_tok_free(t);
        } else {
            assert_null(t);
        }
        free(m);
    }
    assert_true(opened > 20); /* some mutants still load and get encoded */
    for (int i = 0; i < 3; i++)
        free(bases[i]);
}

int pb_test_engine_tok(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bpe_rank_order), cmocka_unit_test(test_pretokenizers),
        cmocka_unit_test(test_byte_roundtrip), cmocka_unit_test(test_sentencepiece),
        cmocka_unit_test(test_wordpiece),      cmocka_unit_test(test_char),
        cmocka_unit_test(test_open_dir),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_conformance),    cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests_name("engine_tok", tests, NULL, NULL);
}
