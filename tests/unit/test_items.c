/* Unit tests for the RESULT items text (common/items.h): what the writer
 * produces is valid JSON that jansson reads back the same, and the scanner
 * reads it (and jansson's own output) exactly, refusing malformed text with
 * a message that names the item. */
#include "tests/unit/unit.h"

#include <string.h>

#include "common/items.h"

typedef struct collected {
    json_t *items; /* what the scanner saw, rebuilt as JSON */
    int stop_at;   /* return 99 at this item (-1 = never) */
} collected_t;

static json_t *str_or_null(const char *s, size_t n)
{
    return s ? json_stringn(s, n) : json_null();
}

static int collect(void *ctx, size_t i, const pb_item_rec_t *r)
{
    collected_t *c = ctx;
    if ((int)i == c->stop_at)
        return 99;
    json_t *a = json_pack("[I, o, o, o, o, o, o, o, o]", (json_int_t)r->idx,
                          str_or_null(r->prompt_hash, r->prompt_hash ? strlen(r->prompt_hash) : 0),
                          str_or_null(r->prediction, r->prediction_len),
                          str_or_null(r->reference, r->reference_len),
                          r->has_score ? json_real(r->score) : json_null(),
                          r->has_latency ? json_integer(r->latency_us) : json_null(),
                          r->has_tokens ? json_integer(r->tokens) : json_null(),
                          str_or_null(r->meta, r->meta_len), str_or_null(r->error, r->error_len));
    json_array_append_new(c->items, a);
    return 0;
}

static void test_round_trip(void **state)
{
    (void)state;
    pb_buf_t b;
    pb_buf_init(&b, 0);
    static const char pred[] = "a\"b\\c\n\t\x01 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 end";
    pb_item_rec_t r1 = {.idx = 7, .prompt_hash = "0123456789abcdef", .prediction = pred,
                        .prediction_len = sizeof pred - 1, .reference = "42", .reference_len = 2,
                        .score = 1.0, .has_score = 1, .latency_us = 12, .tokens = 3,
                        .meta = "{\"da\":1,\"db\":2}", .meta_len = 15};
    pb_item_rec_t r2 = {.idx = 8, .prompt_hash = "ffffffffffffffff", .prediction = "",
                        .prediction_len = 0, .reference = "x", .reference_len = 1, .score = 0.25,
                        .has_score = 1, .latency_us = 0, .tokens = 0, .error = "timeout",
                        .error_len = 7};
    pb_item_rec_t r3 = {.idx = 9, .prompt_hash = "00", .prediction = "z", .prediction_len = 1,
                        .reference = "z", .reference_len = 1, .score = 0.0, .has_score = 1};
    assert_int_equal(pb_items_begin(&b), 0);
    assert_int_equal(pb_items_add(&b, &r1), 0);
    assert_int_equal(pb_items_add(&b, &r2), 0);
    assert_int_equal(pb_items_add(&b, &r3), 0);
    assert_int_equal(pb_items_end(&b), 0);

    /* jansson reads the writer's text as the same values */
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, 0, &jerr);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 3);
    json_t *p = json_array_get(json_array_get(j, 0), 2);
    assert_int_equal(json_string_length(p), sizeof pred - 1);
    assert_memory_equal(json_string_value(p), pred, sizeof pred - 1);
    assert_null(json_array_get(json_array_get(j, 0), 8)); /* no error: not written */
    assert_true(json_is_null(json_array_get(json_array_get(j, 1), 7))); /* meta null before error */
    assert_int_equal(json_array_size(json_array_get(j, 2)), 7);
    assert_true(json_number_value(json_array_get(json_array_get(j, 1), 4)) == 0.25);

    /* the scanner reads the writer's text and jansson's re-encoding alike */
    char *again = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    const char *texts[2] = {b.data, again};
    for (int t = 0; t < 2; t++) {
        collected_t c = {json_array(), -1};
        pb_err_t err = {{0}, {0}};
        assert_int_equal(pb_items_scan(texts[t], strlen(texts[t]), collect, &c, &err), 0);
        assert_int_equal(json_array_size(c.items), 3);
        json_t *a = json_array_get(c.items, 0);
        assert_int_equal(json_integer_value(json_array_get(a, 0)), 7);
        assert_int_equal(json_string_length(json_array_get(a, 2)), sizeof pred - 1);
        assert_memory_equal(json_string_value(json_array_get(a, 2)), pred, sizeof pred - 1);
        assert_string_equal(json_string_value(json_array_get(a, 7)), "{\"da\":1,\"db\":2}");
        assert_true(json_is_null(json_array_get(a, 8)));
        json_t *e = json_array_get(c.items, 1);
        assert_string_equal(json_string_value(json_array_get(e, 8)), "timeout");
        assert_true(json_is_null(json_array_get(e, 7)));
        assert_true(json_real_value(json_array_get(e, 4)) == 0.25);
        json_decref(c.items);
    }
    free(again);
    json_decref(j);
    pb_buf_free(&b);
}

static void test_scan_nulls_and_empty(void **state)
{
    (void)state;
    collected_t c = {json_array(), -1};
    pb_err_t err = {{0}, {0}};
    const char *t = " [ [ 1 , null , \"p\" , \"r\" , null , null , null ] ] ";
    assert_int_equal(pb_items_scan(t, strlen(t), collect, &c, &err), 0);
    json_t *a = json_array_get(c.items, 0);
    assert_true(json_is_null(json_array_get(a, 1)));
    assert_true(json_is_null(json_array_get(a, 4)));
    json_decref(c.items);
    c.items = json_array();
    assert_int_equal(pb_items_scan("[]", 2, collect, &c, &err), 0);
    assert_int_equal(json_array_size(c.items), 0);
    /* the callback's verdict stops the scan and is returned */
    c.stop_at = 0;
    assert_int_equal(pb_items_scan(t, strlen(t), collect, &c, &err), 99);
    json_decref(c.items);
}

static void test_scan_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"", "not an array"},
        {"{}", "not an array"},
        {"[1]", "not an array"},
        {"[[1,\"h\",\"p\"]]", "too few"},
        {"[[1.5,\"h\",\"p\",\"r\",1,0,0]]", "idx"},
        {"[[1,2,\"p\",\"r\",1,0,0]]", "string"},
        {"[[1,\"h\",\"p\",\"r\",\"x\",0,0]]", "number"},
        {"[[1,\"h\",\"p\",\"r\",1,0,0,null,null,null]]", "too many"},
        {"[[1,\"h\",\"p\\q\",\"r\",1,0,0]]", "escape"},
        {"[[1,\"h\",\"p\\ud800\",\"r\",1,0,0]]", "surrogate"},
        {"[[1,\"h\",\"p\\u12\",\"r\",1,0,0]]", "\\u"},
        {"[[1,\"h\",\"p", "unterminated"},
        {"[[1,\"h\",\"p\nq\",\"r\",1,0,0]]", "control"},
        {"[[1,\"h\",\"p\",\"r\",1,0,0]", "after an item"},
        {"[[1,\"h\",\"p\",\"r\",1,0,0]] x", "trailing"},
        {"[[1,\"h\",\"p\",\"r\",1e999,0,0]]", "malformed number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        collected_t c = {json_array(), -1};
        pb_err_t err = {{0}, {0}};
        int rc = pb_items_scan(bad[i].text, strlen(bad[i].text), collect, &c, &err);
        if (rc != PB_EPARSE || strstr(err.msg, bad[i].why) == NULL)
            fail_msg("%s: rc %d, message \"%s\", want \"%s\"", bad[i].text, rc, err.msg, bad[i].why);
        json_decref(c.items);
    }
    /* the message names the item */
    pb_err_t err = {{0}, {0}};
    collected_t c = {json_array(), -1};
    const char *t = "[[1,\"h\",\"p\",\"r\",1,0,0],[2,\"h\"]]";
    assert_int_equal(pb_items_scan(t, strlen(t), collect, &c, &err), PB_EPARSE);
    assert_non_null(strstr(err.msg, "items[1]"));
    json_decref(c.items);
}

static void test_quote_cap(void **state)
{
    (void)state;
    pb_buf_t b;
    pb_buf_init(&b, 16);
    assert_int_equal(pb_json_quote(&b, "0123456789", 10), 0);
    assert_string_equal(b.data, "\"0123456789\"");
    assert_int_equal(pb_json_quote(&b, "abc", 3), PB_ETOOBIG);
    pb_buf_free(&b);
}

int pb_test_items(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_scan_nulls_and_empty),
        cmocka_unit_test(test_scan_rejects),
        cmocka_unit_test(test_quote_cap),
    };
    return cmocka_run_group_tests_name("items", tests, NULL, NULL);
}
