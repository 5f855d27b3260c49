/* Unit tests for the engine's checkpoint loader (issue 6): safetensors
 * images written here round-trip (f32/f16/bf16/i64, scalar and empty
 * shapes), single and sharded checkpoint directories open and answer
 * lookups, every malformed file or directory is PB_EPARSE/PB_ENOTFOUND
 * naming the file and tensor, and a seeded fuzz loop over mutated images
 * never reads outside them (run under ASan). */
#include "tests/unit/unit.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/checkpoint.h"

/* One tensor to write: its header fields and bytes. */
typedef struct {
    const char *name, *dtype;
    int ndim;
    int64_t shape[PE_MAX_DIMS];
    const void *data;
    size_t nbytes;
} spec_t;

typedef struct {
    uint8_t *p;
    size_t len;
} img_t;

/* An image from header text and a data section: length, header, data.
 * Exactly len bytes are allocated so ASan sees any read past the end. */
static img_t img_raw(const char *hdr, const void *data, size_t dlen)
{
    size_t hl = strlen(hdr);
    img_t im = {malloc(8 + hl + dlen), 8 + hl + dlen};
    assert_non_null(im.p);
    for (int i = 0; i < 8; i++)
        im.p[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(im.p + 8, hdr, hl);
    if (dlen)
        memcpy(im.p + 8 + hl, data, dlen);
    return im;
}

/* A well-formed image of specs packed back to back, with __metadata__. */
static img_t img_build(const spec_t *s, size_t n)
{
    json_t *h = json_object();
    size_t off = 0;
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    for (size_t i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < s[i].ndim; d++)
            json_array_append_new(shape, json_integer(s[i].shape[d]));
        json_object_set_new(h, s[i].name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", s[i].dtype, "shape", shape,
                                      "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + s[i].nbytes)));
        off += s[i].nbytes;
    }
    char *text = json_dumps(h, JSON_COMPACT);
    uint8_t *data = malloc(off + 1);
    assert_non_null(text);
    assert_non_null(data);
    off = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].nbytes)
            memcpy(data + off, s[i].data, s[i].nbytes);
        off += s[i].nbytes;
    }
    img_t im = img_raw(text, data, off);
    free(text);
    free(data);
    json_decref(h);
    return im;
}

static void write_file(const char *dir, const char *name, const void *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_img(const char *dir, const char *name, img_t im)
{
    write_file(dir, name, im.p, im.len);
    free(im.p);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* The sample tensors: every shape kind the engine meets. */
static const float f32v[6] = {1.f, -2.f, 3.5f, 0.f, 1e-3f, 6.f};
static const uint16_t f16v[4] = {0x3c00, 0xc000, 0x0000, 0x7bff};
static const uint16_t bf16v[4] = {0x3f80, 0xbf80, 0x4049, 0x0001};
static const int64_t i64v[1] = {-1234567890123LL};

static size_t sample(spec_t *s)
{
    s[0] = (spec_t){"model.w", "F32", 2, {2, 3}, f32v, sizeof f32v};
    s[1] = (spec_t){"a.h", "F16", 1, {4}, f16v, sizeof f16v};
    s[2] = (spec_t){"b.bf", "BF16", 2, {2, 2}, bf16v, sizeof bf16v};
    s[3] = (spec_t){"step", "I64", 0, {0}, i64v, sizeof i64v};
    s[4] = (spec_t){"empty", "F32", 2, {0, 5}, NULL, 0};
    return 5;
}

static void check_tensor(const pe_tensor_t *t, const spec_t *s)
{
    assert_non_null(t);
    assert_string_equal(t->name, s->name);
    assert_string_equal(pe_dtype_name(t->dtype), s->dtype);
    assert_int_equal(t->ndim, s->ndim);
    int64_t numel = 1;
    for (int d = 0; d < s->ndim; d++) {
        assert_int_equal(t->shape[d], s->shape[d]);
        numel *= s->shape[d];
    }
    assert_int_equal(t->numel, numel);
    assert_int_equal(t->nbytes, s->nbytes);
    assert_int_equal(t->nbytes, (size_t)numel * pe_dtype_size(t->dtype));
    if (s->nbytes)
        assert_memory_equal(t->data, s->data, s->nbytes);
}

static const spec_t *spec_named(const spec_t *s, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0)
            return &s[i];
    fail_msg("no spec %s", name);
    return NULL;
}

static void test_dtypes(void **state)
{
    (void)state;
    assert_int_equal(pe_dtype_size(PE_F32), 4);
    assert_int_equal(pe_dtype_size(PE_BF16), 2);
    assert_int_equal(pe_dtype_size(PE_I64), 8);
    assert_int_equal(pe_dtype_size(PE_BOOL), 1);
    assert_string_equal(pe_dtype_name(PE_BF16), "BF16");
    assert_string_equal(pe_dtype_name(PE_F64), "F64");
}

static void test_roundtrip(void **state)
{
    (void)state;
    spec_t s[8];
    size_t n = sample(s), got = 0;
    img_t im = img_build(s, n);
    pe_tensor_t *t = NULL;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(pe_st_parse(im.p, im.len, "x.safetensors", &t, &got, &err), 0);
    assert_int_equal(got, n); /* __metadata__ is not a tensor */
    for (size_t i = 0; i < got; i++) {
        check_tensor(&t[i], spec_named(s, n, t[i].name));
        assert_true((const uint8_t *)t[i].data >= im.p + 8);
        assert_true((const uint8_t *)t[i].data + t[i].nbytes <= im.p + im.len);
        if (i)
            assert_true(strcmp(t[i - 1].name, t[i].name) < 0);
    }
    /* Zero-copy: the data points into the image itself. */
    const pe_tensor_t *w = NULL;
    for (size_t i = 0; i < got; i++)
        if (strcmp(t[i].name, "model.w") == 0)
            w = &t[i];
    assert_non_null(w);
    assert_true((const uint8_t *)w->data > im.p && (const uint8_t *)w->data < im.p + im.len);
    pe_st_free(t, got);
    free(im.p);

    /* No tensors at all, and a header padded with spaces, are both valid. */
    im = img_raw("{\"__metadata__\":{}}    ", NULL, 0);
    assert_int_equal(pe_st_parse(im.p, im.len, "e", &t, &got, &err), 0);
    assert_int_equal(got, 0);
    pe_st_free(t, got);
    free(im.p);
}

static void test_dir_single(void **state)
{
    (void)state;
    char dir[256];
    spec_t s[8];
    size_t n = sample(s);
    pe_ckpt_t *c = NULL;
    pb_err_t err = {{0}, {0}};
    pb_test_tmpdir(dir, sizeof dir);
    write_text(dir, "config.json", "{\"hidden_size\": 64, \"model_type\": \"llama\"}");
    write_img(dir, "model.safetensors", img_build(s, n));
    assert_int_equal(pe_ckpt_open(dir, &c, &err), 0);
    assert_string_equal(pe_ckpt_dir(c), dir);
    assert_int_equal(json_integer_value(json_object_get(pe_ckpt_config(c), "hidden_size")), 64);
    assert_int_equal(pe_ckpt_count(c), n);
    for (size_t i = 0; i < n; i++) {
        const pe_tensor_t *t = pe_ckpt_at(c, i);
        check_tensor(t, spec_named(s, n, t->name));
        assert_ptr_equal(pe_ckpt_tensor(c, t->name), t);
        if (i)
            assert_true(strcmp(pe_ckpt_at(c, i - 1)->name, t->name) < 0);
    }
    assert_null(pe_ckpt_at(c, n));
    assert_null(pe_ckpt_tensor(c, "nope"));
    assert_null(pe_ckpt_tensor(c, ""));

    const pe_tensor_t *t = NULL;
    int64_t want[2] = {2, -1};
    assert_int_equal(pe_ckpt_expect(c, "model.w", 1u << PE_F32 | 1u << PE_BF16, 2, want, &t, &err),
                     0);
    assert_non_null(t);
    assert_int_equal(pe_ckpt_expect(c, "step", 1u << PE_I64, 0, NULL, &t, &err), 0);
    int64_t bad[2] = {3, 2};
    assert_int_equal(pe_ckpt_expect(c, "model.w", 1u << PE_F32, 2, bad, &t, &err), PB_EPARSE);
    assert_null(t);
    assert_non_null(strstr(err.msg, "model.safetensors"));
    assert_non_null(strstr(err.msg, "'model.w'"));
    assert_non_null(strstr(err.msg, "[2, 3]"));
    assert_non_null(strstr(err.msg, "[3, 2]"));
    assert_int_equal(pe_ckpt_expect(c, "model.w", 1u << PE_F32, 1, bad, &t, &err), PB_EPARSE);
    assert_int_equal(pe_ckpt_expect(c, "b.bf", 1u << PE_F32, 2, want, &t, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "'b.bf'"));
    assert_non_null(strstr(err.msg, "BF16"));
    assert_int_equal(pe_ckpt_expect(c, "lm_head.weight", 1u << PE_F32, 2, want, &t, &err),
                     PB_ENOTFOUND);
    assert_non_null(strstr(err.msg, "'lm_head.weight'"));
    pe_ckpt_close(c);
    rm_dir(dir);
}

/* Two shards and an index; shard names that point at the wrong file. */
static void test_dir_sharded(void **state)
{
    (void)state;
    char dir[256];
    spec_t s[8];
    size_t n = sample(s);
    pe_ckpt_t *c = NULL;
    pb_err_t err = {{0}, {0}};
    const char *s1 = "model-00001-of-00002.safetensors", *s2 = "model-00002-of-00002.safetensors";
    pb_test_tmpdir(dir, sizeof dir);
    write_text(dir, "config.json", "{}");
    write_img(dir, s1, img_build(s, 2));
    write_img(dir, s2, img_build(s + 2, n - 2));
    json_t *wm = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(wm, s[i].name, json_string(i < 2 ? s1 : s2));
    json_t *idx = json_pack("{s:{s:i},s:O}", "metadata", "total_size", 100, "weight_map", wm);
    char *text = json_dumps(idx, 0);
    write_text(dir, "model.safetensors.index.json", text);
    free(text);
    assert_int_equal(pe_ckpt_open(dir, &c, &err), 0);
    assert_int_equal(pe_ckpt_count(c), n);
    for (size_t i = 0; i < n; i++)
        check_tensor(pe_ckpt_tensor(c, s[i].name), &s[i]);
    const pe_tensor_t *t = NULL;
    int64_t bad[1] = {5};
    assert_int_equal(pe_ckpt_expect(c, "a.h", 1u << PE_F16, 1, bad, &t, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, s1)); /* a.h is in shard 1 */
    pe_ckpt_close(c);

    /* The index promises a tensor its shard does not hold. */
    json_object_set_new(wm, "ghost.w", json_string(s2));
    text = json_dumps(idx, 0);
    write_text(dir, "model.safetensors.index.json", text);
    free(text);
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_ENOTFOUND);
    assert_null(c);
    assert_non_null(strstr(err.msg, "'ghost.w'"));
    assert_non_null(strstr(err.msg, s2));

    /* A shard that is not there. */
    json_object_set_new(wm, "ghost.w", json_string("model-00003-of-00003.safetensors"));
    text = json_dumps(idx, 0);
    write_text(dir, "model.safetensors.index.json", text);
    free(text);
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_ENOTFOUND);
    assert_non_null(strstr(err.msg, "model-00003-of-00003.safetensors"));

    /* A shard name that leaves the directory. */
    json_object_set_new(wm, "ghost.w", json_string("../model.safetensors"));
    text = json_dumps(idx, 0);
    write_text(dir, "model.safetensors.index.json", text);
    free(text);
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "'ghost.w'"));

    /* The same tensor in two shards. */
    json_object_del(wm, "ghost.w");
    text = json_dumps(idx, 0);
    write_text(dir, "model.safetensors.index.json", text);
    free(text);
    write_img(dir, s2, img_build(s + 1, n - 1));
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "'a.h'"));
    assert_non_null(strstr(err.msg, s1));
    assert_non_null(strstr(err.msg, s2));

    /* A malformed shard is named. */
    write_file(dir, s2, "\x05\0\0\0\0\0\0\0{oops", 13);
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, s2));

    /* An index without weight_map. */
    write_text(dir, "model.safetensors.index.json", "{\"metadata\": {}}");
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "weight_map"));
    json_decref(idx);
    json_decref(wm);
    rm_dir(dir);
}

static void test_dir_missing(void **state)
{
    (void)state;
    char dir[256];
    pe_ckpt_t *c = NULL;
    pb_err_t err = {{0}, {0}};
    pb_test_tmpdir(dir, sizeof dir);
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_ENOTFOUND);
    assert_non_null(strstr(err.msg, "config.json"));
    write_text(dir, "config.json", "{\"a\": ");
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "config.json"));
    write_text(dir, "config.json", "[1]");
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_EPARSE);
    write_text(dir, "config.json", "{}");
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_ENOTFOUND);
    assert_non_null(strstr(err.msg, "model.safetensors"));
    write_text(dir, "model.safetensors", "");
    assert_int_equal(pe_ckpt_open(dir, &c, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "model.safetensors"));
    assert_non_null(strstr(err.msg, "truncated"));
    assert_null(c);
    rm_dir(dir);
}

/* Malformed images: each one PB_EPARSE naming the file and what (and which
 * tensor) is wrong. */
static void test_malformed(void **state)
{
    (void)state;
    static const uint8_t d16[16] = {0};
    static const struct {
        const char *hdr;
        size_t dlen;
        const char *want1, *want2;
    } cases[] = {
        {"{not json", 16, "not valid JSON", NULL},
        {"[]", 16, "not a JSON object", NULL},
        {"{\"w\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 16, "'w'", "F8"},
        {"{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 16, "'w'", "dtype"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 16, "'w'", "shape[0]"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 16, "'w'", "shape[0]"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,4]}}",
         16, "'w'", "overflows"},
        {"{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 16,
         "'w'", "dims"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 16, "'w'", "shape"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,100]}}", 16, "'w'", "outside"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16, "'w'", "outside"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 16, "'w'", "outside"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 16, "'w'", "data_offsets"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 16, "'w'", "data_offsets"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, "'w'", "need 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         16, "'b' overlaps tensor 'a'", NULL},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         16, "duplicate", "\"a\""},
        {"{\"w\":[1,2]}", 16, "'w'", "not an object"},
        {"{\"__metadata__\":[1]}", 16, "__metadata__", NULL},
        {"{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "empty name", NULL},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(cases); i++) {
        img_t im = img_raw(cases[i].hdr, d16, cases[i].dlen);
        pe_tensor_t *t = (pe_tensor_t *)1;
        size_t n = 99;
        pb_err_t err = {{0}, {0}};
        int rc = pe_st_parse(im.p, im.len, "bad.safetensors", &t, &n, &err);
        if (rc != PB_EPARSE || !strstr(err.msg, "bad.safetensors") ||
            !strstr(err.msg, cases[i].want1) ||
            (cases[i].want2 && !strstr(err.msg, cases[i].want2)))
            fail_msg("case %zu (%s): rc %d, msg %s", i, cases[i].hdr, rc, err.msg);
        assert_null(t);
        assert_int_equal(n, 0);
        free(im.p);
    }

    /* Truncated images and header lengths that lie. */
    spec_t s[8];
    img_t im = img_build(s, sample(s));
    pe_tensor_t *t = NULL;
    size_t n = 0;
    pb_err_t err = {{0}, {0}};
    assert_int_equal(pe_st_parse(im.p, 5, "bad.safetensors", &t, &n, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_int_equal(pe_st_parse(im.p, im.len - 1, "bad.safetensors", &t, &n, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "outside"));
    assert_int_equal(pe_st_parse(im.p, 20, "bad.safetensors", &t, &n, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "past the end"));
    im.p[0] = (uint8_t)(im.len - 7);
    im.p[1] = (uint8_t)((im.len - 7) >> 8);
    assert_int_equal(pe_st_parse(im.p, im.len, "bad.safetensors", &t, &n, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "past the end"));
    memset(im.p, 0xff, 8);
    assert_int_equal(pe_st_parse(im.p, im.len, "bad.safetensors", &t, &n, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "past the end"));
    free(im.p);
}

/* xorshift64*: the fuzz loop's seeded stream. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void set_hlen(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* One mutation of base into a fresh buffer of exactly *len bytes. */
static uint8_t *mutate(const img_t *base, size_t hl, uint64_t *rs, size_t *len)
{
    static const char jchars[] = "{}[]\":,-0123456789eE. \\tnu";
    size_t n = base->len;
    uint8_t *p = malloc(n + 32);
    assert_non_null(p);
    memcpy(p, base->p, n);
    int rounds = 1 + (rnd(rs) % 4 == 0);
    for (int r = 0; r < rounds; r++) {
        switch (rnd(rs) % 6) {
        case 0: /* byte flips anywhere */
            for (int k = (int)(rnd(rs) % 4); k >= 0 && n > 0; k--)
                p[rnd(rs) % n] ^= (uint8_t)(1u << (rnd(rs) % 8));
            break;
        case 1: /* truncation */
            n = rnd(rs) % (n + 1);
            break;
        case 2: /* header length: near the truth, or anything */
            set_hlen(p, rnd(rs) % 2 ? hl + (rnd(rs) % 64) - 32 : rnd(rs));
            break;
        case 3: /* a JSON character replaced */
            if (n > 8 && hl > 0)
                p[8 + rnd(rs) % (hl < n - 8 ? hl : n - 8)] = (uint8_t)jchars[rnd(rs) % 27];
            break;
        case 4: { /* a digit turned into a huge or negative number, length kept */
            size_t at = 8 + rnd(rs) % (hl ? hl : 1);
            static const char *nums[] = {"-1", "9999999999999999999999", "1e9", "0", "4294967296"};
            const char *s = nums[rnd(rs) % 5];
            size_t sl = strlen(s);
            if (at < n && p[at] >= '0' && p[at] <= '9' && at + sl <= n)
                memcpy(p + at, s, sl);
            else if (at < n)
                p[at] = (uint8_t)('0' + rnd(rs) % 10);
            break;
        }
        default: { /* a byte deleted inside the header, length fixed up */
            size_t at = 8 + rnd(rs) % (hl ? hl : 1);
            if (at < n) {
                memmove(p + at, p + at + 1, n - at - 1);
                n--;
                set_hlen(p, hl - 1);
            }
            break;
        }
        }
    }
    /* Exactly n bytes, so ASan flags a read one past the end. */
    uint8_t *q = malloc(n ? n : 1);
    assert_non_null(q);
    memcpy(q, p, n);
    free(p);
    *len = n;
    return q;
}

static void test_fuzz(void **state)
{
    (void)state;
    spec_t s[8];
    img_t base = img_build(s, sample(s));
    size_t hl = (size_t)base.p[0] | (size_t)base.p[1] << 8;
    uint64_t rs = 0x9e3779b97f4a7c15ULL;
    int ok = 0, bad = 0;
    for (int it = 0; it < 4000; it++) {
        size_t len = 0, n = 0;
        uint8_t *p = mutate(&base, hl, &rs, &len);
        pe_tensor_t *t = NULL;
        pb_err_t err = {{0}, {0}};
        int rc = pe_st_parse(p, len, "fuzz.safetensors", &t, &n, &err);
        if (rc == 0) {
            volatile uint8_t sum = 0;
            for (size_t i = 0; i < n; i++) {
                const uint8_t *d = t[i].data;
                assert_true(t[i].nbytes == 0 || (d >= p + 8 && d + t[i].nbytes <= p + len));
                for (size_t b = 0; b < t[i].nbytes; b++)
                    sum ^= d[b];
            }
            (void)sum;
            ok++;
        } else {
            if (rc != PB_EPARSE || err.msg[0] == '\0' || t != NULL || n != 0)
                fail_msg("iteration %d: rc %d msg '%s'", it, rc, err.msg);
            bad++;
        }
        pe_st_free(t, n);
        free(p);
    }
    /* Both paths exercised: mutations are neither all fatal nor all harmless. */
    assert_true(ok > 50);
    assert_true(bad > 1000);
    free(base.p);
}

int pb_test_engine_ckpt(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtypes),      cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_dir_single),  cmocka_unit_test(test_dir_sharded),
        cmocka_unit_test(test_dir_missing), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests_name("engine_ckpt", tests, NULL, NULL);
}
