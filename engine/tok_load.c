/* Loading a tokenizer: a Hugging Face tokenizer.json (model BPE, WordPiece
 * or posbench's "Char": {"model": {"type": "Char", "vocab": {"a": 0, ...},
 * "unk_token": "<unk>"}} plus the usual added_tokens / post_processor), or a
 * directory's vocab.txt, vocab.json + merges.txt or vocab_chars.json turned
 * into the same JSON shape first. Everything read is validated; errors are
 * PB_EPARSE naming the file and the field. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_int.h"

#define TOK_MAX_FILE (512u << 20)

void pe_tok_free(pe_tok_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_vocab; i++)
        free(t->str[i]);
    free(t->str);
    free(t->len);
    free(t->flags);
    free(t->hash);
    free(t->added);
    pe_bpe__merges_free(&t->merges);
    free(t);
}

static int set_token(pe_tok_t *t, int64_t id, const char *s, size_t n)
{
    if (id < 0 || (uint64_t)id >= t->n_vocab || n > PE_TOK_MAX_TOKLEN)
        return PB_EPARSE;
    char *c = malloc(n + 1);
    if (!c)
        return PB_ENOMEM;
    memcpy(c, s, n);
    c[n] = '\0';
    free(t->str[id]);
    t->str[id] = c;
    t->len[id] = (uint32_t)n;
    return 0;
}

static int build_hash(pe_tok_t *t)
{
    size_t cap = 16;
    while (cap < 2 * t->n_vocab)
        cap *= 2;
    if ((t->hash = malloc(cap * sizeof *t->hash)) == NULL)
        return PB_ENOMEM;
    memset(t->hash, 0xff, cap * sizeof *t->hash);
    t->hash_cap = cap;
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (!t->str[id] || pe_tok__lookup(t, t->str[id], t->len[id]) >= 0)
            continue; /* the lowest id keeps a duplicated string */
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < t->len[id]; i++)
            h = (h ^ (unsigned char)t->str[id][i]) * 1099511628211ULL;
        size_t k = h & (cap - 1);
        while (t->hash[k] >= 0)
            k = (k + 1) & (cap - 1);
        t->hash[k] = (int32_t)id;
    }
    return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int jtrue(const json_t *o, const char *key) { return json_is_true(json_object_get(o, key)); }

/* Calls fn on a component and, for "Sequence", on each of its parts. */
typedef void (*visit_fn)(pe_tok_t *t, const json_t *c);

static void visit(pe_tok_t *t, const json_t *c, const char *list, visit_fn fn, int depth)
{
    if (!json_is_object(c) || depth > 4)
        return;
    const char *type = jstr(c, "type");
    if (type && strcmp(type, "Sequence") == 0) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(c, list), i, v) visit(t, v, list, fn, depth + 1);
        return;
    }
    fn(t, c);
}

static void see_normalizer(pe_tok_t *t, const json_t *c)
{
    const char *type = jstr(c, "type");
    if (!type)
        return;
    if (strcmp(type, "BertNormalizer") == 0) {
        json_t *lc = json_object_get(c, "lowercase"), *sa = json_object_get(c, "strip_accents");
        t->lowercase = lc ? json_is_true(lc) : 1;
        t->strip_accents = json_is_null(sa) || !sa ? t->lowercase : json_is_true(sa);
        json_t *cc = json_object_get(c, "handle_chinese_chars");
        t->chinese_chars = cc ? json_is_true(cc) : 1;
    } else if (strcmp(type, "Lowercase") == 0) {
        t->lowercase = 1;
    } else if (strcmp(type, "Prepend") == 0) {
        const char *p = jstr(c, "prepend");
        if (p && strcmp(p, "\xe2\x96\x81") == 0)
            t->add_prefix_space = 1;
    }
}

static void see_pre(pe_tok_t *t, const json_t *c)
{
    const char *type = jstr(c, "type");
    if (!type)
        return;
    if (strcmp(type, "ByteLevel") == 0) {
        t->byte_level = 1;
        if (jtrue(c, "add_prefix_space"))
            t->add_prefix_space = 1;
        json_t *ur = json_object_get(c, "use_regex");
        if ((!ur || json_is_true(ur)) && t->pre == PE_PRE_NONE)
            t->pre = PE_PRE_GPT2;
    } else if (strcmp(type, "Split") == 0) {
        const char *re = jstr(json_object_get(c, "pattern"), "Regex");
        if (re && strstr(re, "\\p{N}{1,3}")) {
            t->pre = PE_PRE_LLAMA3;
            t->pre_digits = 3;
        } else if (re && strstr(re, "[\\r\\n]")) {
            t->pre = PE_PRE_LLAMA3; /* Qwen2: the same with single digits */
            t->pre_digits = 1;
        } else if (re) {
            t->pre = PE_PRE_GPT2;
        }
    } else if (strcmp(type, "Metaspace") == 0) {
        const char *ps = jstr(c, "prepend_scheme");
        t->pre = PE_PRE_META;
        if (ps)
            t->add_prefix_space = strcmp(ps, "always") == 0 ? 1 : strcmp(ps, "first") == 0 ? 2 : 0;
        else
            t->add_prefix_space = json_object_get(c, "add_prefix_space") ? jtrue(c, "add_prefix_space") : 1;
    } else if (strcmp(type, "BertPreTokenizer") == 0 || strcmp(type, "Whitespace") == 0 ||
               strcmp(type, "WhitespaceSplit") == 0) {
        t->pre = PE_PRE_BERT;
    }
}

static void see_decoder(pe_tok_t *t, const json_t *c)
{
    (void)t;
    const char *type = jstr(c, "type");
    if (type && strcmp(type, "ByteLevel") == 0)
        t->byte_level = 1;
}

/* A post-processor token reference: ["[CLS]", 101] or a template's
 * special_tokens entry. */
static int32_t post_id(pe_tok_t *t, const json_t *v, const json_t *specials)
{
    if (json_is_array(v) && json_is_integer(json_array_get(v, 1)))
        return (int32_t)json_integer_value(json_array_get(v, 1));
    const char *name = json_string_value(v);
    if (!name)
        return -1;
    json_t *ids = json_object_get(json_object_get(specials, name), "ids");
    if (json_is_integer(json_array_get(ids, 0)))
        return (int32_t)json_integer_value(json_array_get(ids, 0));
    return pe_tok__lookup(t, name, strlen(name));
}

static void see_post(pe_tok_t *t, const json_t *c)
{
    const char *type = jstr(c, "type");
    if (!type)
        return;
    if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        int32_t cls = post_id(t, json_object_get(c, "cls"), NULL);
        int32_t sep = post_id(t, json_object_get(c, "sep"), NULL);
        t->n_pre = t->n_post = 0;
        if (cls >= 0)
            t->pre_ids[t->n_pre++] = cls;
        if (sep >= 0)
            t->post_ids[t->n_post++] = sep;
    } else if (strcmp(type, "TemplateProcessing") == 0) {
        const json_t *specials = json_object_get(c, "special_tokens");
        size_t i;
        json_t *piece;
        int after = 0;
        t->n_pre = t->n_post = 0;
        json_array_foreach(json_object_get(c, "single"), i, piece)
        {
            if (json_object_get(piece, "Sequence")) {
                after = 1;
                continue;
            }
            int32_t id = post_id(t, json_object_get(json_object_get(piece, "SpecialToken"), "id"),
                                 specials);
            if (id < 0)
                continue;
            if (!after && t->n_pre < PE_TOK_MAX_POST)
                t->pre_ids[t->n_pre++] = id;
            else if (after && t->n_post < PE_TOK_MAX_POST)
                t->post_ids[t->n_post++] = id;
        }
    }
}

static int first_of(const pe_tok_t *t, const char *const *names)
{
    for (; *names; names++) {
        int32_t id = pe_tok__lookup(t, *names, strlen(*names));
        if (id >= 0)
            return id;
    }
    return -1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define FAIL(code, field, ...)                                                                     \
    do {                                                                                           \
        rc = pb_err_set(err, code, field, __VA_ARGS__);                                            \
        goto out;                                                                                  \
    } while (0)

/* The largest id named by the vocab and added_tokens, or a parse error. */
static int max_id(const json_t *vocab, const json_t *added, int64_t *out)
{
    const char *k;
    json_t *v;
    size_t i;
    int64_t m = -1;
    json_object_foreach((json_t *)vocab, k, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= PE_TOK_MAX_VOCAB)
            return PB_EPARSE;
        if (json_integer_value(v) > m)
            m = json_integer_value(v);
    }
    json_array_foreach((json_t *)added, i, v)
    {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= PE_TOK_MAX_VOCAB || !json_is_string(json_object_get(v, "content")))
            return PB_EPARSE;
        if (json_integer_value(id) > m)
            m = json_integer_value(id);
    }
    *out = m;
    return 0;
}

static int load_merges(pe_tok_t *t, const json_t *merges, const char *name, pb_err_t *err)
{
    char buf[2 * PE_TOK_MAX_TOKLEN + 2];
    size_t i;
    json_t *m;
    int rc = 0;
    json_array_foreach((json_t *)merges, i, m)
    {
        const char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (json_is_string(m)) {
            a = json_string_value(m);
            const char *sp = strchr(a, ' ');
            if (sp) {
                na = (size_t)(sp - a);
                b = sp + 1;
                nb = strlen(b);
            }
        } else if (json_is_array(m) && json_array_size(m) == 2) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            na = a ? json_string_length(json_array_get(m, 0)) : 0;
            nb = b ? json_string_length(json_array_get(m, 1)) : 0;
        }
        if (!a || !b || na > PE_TOK_MAX_TOKLEN || nb > PE_TOK_MAX_TOKLEN || i >= UINT32_MAX / 4)
            FAIL(PB_EPARSE, "model.merges", "%s: model.merges[%zu] is not a pair of tokens", name,
                 i);
        memcpy(buf, a, na);
        memcpy(buf + na, b, nb);
        int32_t ia = pe_tok__lookup(t, a, na), ib = pe_tok__lookup(t, b, nb);
        int32_t im = pe_tok__lookup(t, buf, na + nb);
        if (ia < 0 || ib < 0 || im < 0)
            FAIL(PB_EPARSE, "model.merges", "%s: model.merges[%zu] names a token not in the vocab",
                 name, i);
        if ((rc = pe_bpe__merges_add(&t->merges, ia, ib, (uint32_t)i, im)) != 0)
            goto out;
    }
out:
    return rc;
}

static int build_added(pe_tok_t *t)
{
    uint64_t *keys = NULL;
    size_t n = 0;
    for (size_t id = 0; id < t->n_vocab; id++)
        n += (t->flags[id] & PE_TF_ADDED) && t->len[id] > 0;
    if (n > 0 && ((keys = malloc(n * sizeof *keys)) == NULL ||
                  (t->added = malloc(n * sizeof *t->added)) == NULL)) {
        free(keys);
        return PB_ENOMEM;
    }
    n = 0;
    for (size_t id = 0; id < t->n_vocab; id++)
        if ((t->flags[id] & PE_TF_ADDED) && t->len[id] > 0)
            keys[n++] = (uint64_t)(unsigned char)t->str[id][0] << 56 |
                        (uint64_t)(0xFFFFu - t->len[id]) << 32 | id; /* longest first */
    if (n > 0)
        qsort(keys, n, sizeof *keys, cmp_u64);
    memset(t->added_first, 0, sizeof t->added_first);
    for (size_t i = 0; i < n; i++) {
        t->added[i] = (int32_t)(uint32_t)keys[i];
        t->added_first[(keys[i] >> 56) + 1]++;
    }
    for (int b = 0; b < 256; b++)
        t->added_first[b + 1] += t->added_first[b];
    t->n_added = n;
    free(keys);
    return 0;
}

static void byte_map(pe_tok_t *t)
{
    char buf[8];
    for (int b = 0; b < 256; b++) {
        size_t n;
        if (t->kind == PE_TOK_BPE_BYTE)
            n = pe_utf8_put(pe_bpe__byte_cp((uint8_t)b), buf);
        else
            n = (size_t)snprintf(buf, sizeof buf, "<0x%02X>", b);
        t->byte_id[b] = pe_tok__lookup(t, buf, n);
        if (t->kind == PE_TOK_BPE_SP && t->byte_id[b] >= 0)
            t->flags[t->byte_id[b]] |= PE_TF_BYTE;
    }
}

static int load(const json_t *root, const char *name, pe_tok_t **out, pb_err_t *err)
{
    static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "[CLS]", "<bos>", NULL};
    static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "[SEP]",
                                            "<eos>", NULL};
    static const char *const pad_names[] = {"<pad>", "[PAD]", "<|pad|>", NULL};
    pe_tok_t *t = NULL;
    int rc = 0;
    int64_t m;
    const json_t *model = json_object_get(root, "model");
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *added = json_object_get(root, "added_tokens");
    const char *type = jstr(model, "type");
    *out = NULL;
    if (!json_is_object(model))
        FAIL(PB_EPARSE, "model", "%s: no model object", name);
    if (!type)
        type = json_object_get(model, "merges") ? "BPE" : "?";
    if (!json_is_object(vocab))
        FAIL(PB_EPARSE, "model.vocab", "%s: model.vocab is not an object (type %s)", name, type);
    if (added && !json_is_array(added))
        FAIL(PB_EPARSE, "added_tokens", "%s: added_tokens is not an array", name);
    if (max_id(vocab, added, &m))
        FAIL(PB_EPARSE, "model.vocab", "%s: a token id is not an integer in [0, %u)", name,
             PE_TOK_MAX_VOCAB);
    if ((t = calloc(1, sizeof *t)) == NULL)
        FAIL(PB_ENOMEM, "", "%s: out of memory", name);
    if (strcmp(type, "BPE") == 0)
        t->kind = PE_TOK_BPE_SP; /* byte level decided below */
    else if (strcmp(type, "WordPiece") == 0)
        t->kind = PE_TOK_WORDPIECE;
    else if (strcmp(type, "Char") == 0)
        t->kind = PE_TOK_CHAR;
    else
        FAIL(PB_EPARSE, "model.type", "%s: model.type \"%s\" is not supported", name, type);
    t->n_vocab = (size_t)(m + 1);
    t->str = calloc(t->n_vocab + 1, sizeof *t->str);
    t->len = calloc(t->n_vocab + 1, sizeof *t->len);
    t->flags = calloc(t->n_vocab + 1, 1);
    if (!t->str || !t->len || !t->flags)
        FAIL(PB_ENOMEM, "", "%s: out of memory", name);
    const char *k;
    json_t *v;
    size_t i;
    json_object_foreach((json_t *)vocab, k, v)
    {
        int64_t id = json_integer_value(v);
        if (t->str[id])
            FAIL(PB_EPARSE, "model.vocab", "%s: id %lld is given twice in model.vocab", name,
                 (long long)id);
        if ((rc = set_token(t, id, k, strlen(k))) != 0)
            FAIL(rc, "model.vocab", "%s: token of id %lld is too long", name, (long long)id);
    }
    json_array_foreach((json_t *)added, i, v)
    {
        int64_t id = json_integer_value(json_object_get(v, "id"));
        json_t *c = json_object_get(v, "content");
        if ((rc = set_token(t, id, json_string_value(c), json_string_length(c))) != 0)
            FAIL(rc, "added_tokens", "%s: added_tokens[%zu] is too long", name, i);
        t->flags[id] |= PE_TF_ADDED | (jtrue(v, "special") ? PE_TF_SPECIAL : 0);
    }
    if ((rc = build_hash(t)) != 0)
        FAIL(rc, "", "%s: out of memory", name);
    const char *unk = jstr(model, "unk_token");
    t->unk = unk ? pe_tok__lookup(t, unk, strlen(unk)) : -1;
    visit(t, json_object_get(root, "normalizer"), "normalizers", see_normalizer, 0);
    visit(t, json_object_get(root, "pre_tokenizer"), "pretokenizers", see_pre, 0);
    visit(t, json_object_get(root, "decoder"), "decoders", see_decoder, 0);
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    if (t->kind == PE_TOK_BPE_SP && t->byte_level)
        t->kind = PE_TOK_BPE_BYTE;
    if (t->kind == PE_TOK_BPE_SP && t->pre != PE_PRE_META)
        t->pre = PE_PRE_NONE;
    if (t->kind == PE_TOK_BPE_BYTE || (t->kind == PE_TOK_BPE_SP && jtrue(model, "byte_fallback")))
        byte_map(t);
    t->ignore_merges = jtrue(model, "ignore_merges");
    if (t->kind == PE_TOK_WORDPIECE) {
        const char *p = jstr(model, "continuing_subword_prefix");
        json_t *mx = json_object_get(model, "max_input_chars_per_word");
        snprintf(t->cont_prefix, sizeof t->cont_prefix, "%s", p ? p : "##");
        t->max_word_chars = json_is_integer(mx) ? (int)json_integer_value(mx) : 100;
        if (t->max_word_chars < 1 || t->max_word_chars > 1024)
            t->max_word_chars = json_is_integer(mx) && json_integer_value(mx) > 1024 ? 1024 : 100;
        t->pre = PE_PRE_BERT;
    }
    json_t *merges = json_object_get(model, "merges");
    if (json_is_array(merges) && (t->kind == PE_TOK_BPE_BYTE || t->kind == PE_TOK_BPE_SP))
        if ((rc = load_merges(t, merges, name, err)) != 0)
            goto out;
    visit(t, json_object_get(root, "post_processor"), "processors", see_post, 0);
    for (int j = 0; j < t->n_pre + t->n_post; j++) {
        int32_t id = j < t->n_pre ? t->pre_ids[j] : t->post_ids[j - t->n_pre];
        if (id < 0 || (size_t)id >= t->n_vocab || !t->str[id])
            FAIL(PB_EPARSE, "post_processor", "%s: post_processor names id %d not in the vocab",
                 name, (int)id);
    }
    t->bos = t->n_pre > 0 ? t->pre_ids[0] : first_of(t, bos_names);
    t->eos = t->n_post > 0 ? t->post_ids[t->n_post - 1] : first_of(t, eos_names);
    t->pad = first_of(t, pad_names);
    if ((rc = build_added(t)) != 0)
        FAIL(rc, "", "%s: out of memory", name);
    *out = t;
    t = NULL;
out:
    pe_tok_free(t);
    return rc;
}

int pe_tok_open_json(const char *text, size_t len, const char *name, pe_tok_t **out,
                     pb_err_t *err)
{
    json_error_t jerr;
    *out = NULL;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root)
        return pb_err_set(err, PB_EPARSE, "", "%s: line %d: %s", name, jerr.line, jerr.text);
    int rc = load(root, name, out, err);
    json_decref(root);
    return rc;
}

/* Whole file into a NUL-terminated buffer; PB_ENOTFOUND when absent. */
static int slurp(const char *dir, const char *file, char **buf, size_t *len)
{
    char path[4096];
    int rc = 0;
    char *b = NULL;
    FILE *f = NULL;
    *buf = NULL;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return PB_EINVAL;
    if ((f = fopen(path, "rb")) == NULL)
        return PB_ENOTFOUND;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n < 0 || (unsigned long)n > TOK_MAX_FILE) {
        rc = n < 0 ? PB_EIO : PB_ETOOBIG;
        goto out;
    }
    rewind(f);
    if ((b = malloc((size_t)n + 1)) == NULL) {
        rc = PB_ENOMEM;
        goto out;
    }
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        rc = PB_EIO;
        goto out;
    }
    b[n] = '\0';
    *buf = b;
    *len = (size_t)n;
    b = NULL;
out:
    free(b);
    fclose(f);
    return rc;
}

/* vocab.txt (BERT): one token per line, id = line number. */
static json_t *from_vocab_txt(char *text)
{
    json_t *vocab = json_object();
    int64_t id = 0;
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL, id++) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\r')
            line[n - 1] = '\0';
        if (!json_object_get(vocab, line))
            json_object_set_new(vocab, line, json_integer(id));
    }
    json_t *post = json_object_get(vocab, "[CLS]") && json_object_get(vocab, "[SEP]")
                       ? json_pack("{s:s, s:[s,O], s:[s,O]}", "type", "BertProcessing", "cls",
                                   "[CLS]", json_object_get(vocab, "[CLS]"), "sep", "[SEP]",
                                   json_object_get(vocab, "[SEP]"))
                       : json_null();
    return json_pack("{s:{s:s, s:o, s:s}, s:{s:s, s:b}, s:{s:s}, s:o}", "model", "type",
                     "WordPiece", "vocab", vocab, "unk_token", "[UNK]", "normalizer", "type",
                     "BertNormalizer", "lowercase", 1, "pre_tokenizer", "type",
                     "BertPreTokenizer", "post_processor", post);
}

/* vocab.json + merges.txt (GPT-2): byte-level BPE. <|endoftext|>, when in
 * the vocab, is a special token as in GPT-2's published tokenizer.json and
 * transformers' GPT2Tokenizer: written in a text it encodes to its one id
 * (OpenAI's original encoder would spell it out in pieces). */
static json_t *from_gpt2(json_t *vocab, char *merges_txt)
{
    json_t *eot = json_object_get(vocab, "<|endoftext|>");
    json_t *added = json_is_integer(eot)
                        ? json_pack("[{s:O, s:s, s:b}]", "id", eot, "content", "<|endoftext|>",
                                    "special", 1)
                        : json_array();
    json_t *merges = json_array();
    for (char *line = merges_txt, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n > 0 && strncmp(line, "#version", 8) != 0)
            json_array_append_new(merges, json_string(line));
    }
    return json_pack("{s:{s:s, s:o, s:o}, s:{s:s, s:b}, s:{s:s}, s:o}", "model", "type", "BPE",
                     "vocab", vocab, "merges", merges, "pre_tokenizer", "type", "ByteLevel",
                     "add_prefix_space", 0, "decoder", "type", "ByteLevel", "added_tokens",
                     added);
}

int pe_tok_open_dir(const char *dir, pe_tok_t **out, pb_err_t *err)
{
    char *a = NULL, *b = NULL;
    size_t na, nb;
    json_t *root = NULL, *vocab = NULL;
    json_error_t jerr;
    int rc;
    *out = NULL;
    if ((rc = slurp(dir, "tokenizer.json", &a, &na)) == 0) {
        rc = pe_tok_open_json(a, na, "tokenizer.json", out, err);
        goto out;
    }
    if (rc == PB_ENOTFOUND && (rc = slurp(dir, "vocab.txt", &a, &na)) == 0) {
        root = from_vocab_txt(a);
    } else if (rc == PB_ENOTFOUND && (rc = slurp(dir, "vocab.json", &a, &na)) == 0) {
        if ((rc = slurp(dir, "merges.txt", &b, &nb)) != 0)
            FAIL(PB_EPARSE, "merges.txt", "%s: vocab.json without merges.txt", dir);
        if ((vocab = json_loadb(a, na, 0, &jerr)) == NULL)
            FAIL(PB_EPARSE, "vocab.json", "vocab.json: line %d: %s", jerr.line, jerr.text);
        root = from_gpt2(vocab, b);
        vocab = NULL;
    } else if (rc == PB_ENOTFOUND && (rc = slurp(dir, "vocab_chars.json", &a, &na)) == 0) {
        /* Either the mapping itself or {"vocab": {...}, "unk_token": ...}. */
        if ((vocab = json_loadb(a, na, 0, &jerr)) == NULL)
            FAIL(PB_EPARSE, "vocab_chars.json", "vocab_chars.json: line %d: %s", jerr.line,
                 jerr.text);
        json_t *model = json_object_get(vocab, "vocab") ? json_deep_copy(vocab)
                                                        : json_pack("{s:O}", "vocab", vocab);
        if (model)
            json_object_set_new(model, "type", json_string("Char"));
        root = model ? json_pack("{s:o}", "model", model) : NULL;
    }
    if (rc == PB_ENOTFOUND)
        FAIL(PB_ENOTFOUND, "", "%s: no tokenizer.json, vocab.txt, vocab.json or vocab_chars.json",
             dir);
    if (rc)
        FAIL(rc, "", "%s: cannot read the tokenizer: %s", dir, pb_strerror(rc));
    if (!root)
        FAIL(PB_ENOMEM, "", "%s: out of memory", dir);
    rc = load(root, dir, out, err);
out:
    json_decref(root);
    json_decref(vocab);
    free(a);
    free(b);
    return rc;
}
