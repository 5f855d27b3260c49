/* Unit tests for posbench-serve's pure parts (serve/proto.c): request
 * options, chat templates, UTF-8 clean-up and hold-back for streams, SSE
 * framing and OpenAI's error body. The server itself is tested end to end
 * by tests/integration/test_serve.py. */
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "serve/serve.h"

static json_t *js(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_params_defaults_and_values(void **state)
{
    (void)state;
    pv_params_t p;
    pb_err_t err = {{0}, {0}};
    json_t *b = js("{}");
    assert_int_equal(pv_params_parse(b, 0, &p, &err), 0);
    assert_int_equal(p.max_tokens, -1);
    assert_true(p.temperature == 1.0f && p.top_p == 1.0f);
    assert_int_equal(p.logprobs, -1);
    assert_int_equal(p.n_stop, 0);
    json_decref(b);
    b = js("{\"max_tokens\": 7, \"temperature\": 0, \"top_k\": 5, \"seed\": 42, \"echo\": true,"
           " \"logprobs\": 3, \"stop\": [\"\\n\", \"END\"], \"n\": 1, \"user\": \"x\"}");
    assert_int_equal(pv_params_parse(b, 0, &p, &err), 0);
    assert_int_equal(p.max_tokens, 7);
    assert_true(p.temperature == 0.0f);
    assert_int_equal(p.top_k, 5);
    assert_int_equal((int)p.seed, 42);
    assert_true(p.echo);
    assert_int_equal(p.logprobs, 3);
    assert_int_equal(p.n_stop, 2);
    assert_string_equal(p.stop[1], "END");
    assert_int_equal(p.stop_len_max, 3);
    json_decref(b);
    /* a single stop string; chat's logprobs form; max_completion_tokens */
    b = js("{\"stop\": \"###\", \"logprobs\": true, \"top_logprobs\": 2,"
           " \"max_completion_tokens\": 9, \"stream\": false}");
    assert_int_equal(pv_params_parse(b, 1, &p, &err), 0);
    assert_int_equal(p.n_stop, 1);
    assert_int_equal(p.logprobs, 2);
    assert_int_equal(p.max_tokens, 9);
    json_decref(b);
}

static void test_params_errors(void **state)
{
    (void)state;
    static const struct { const char *body; int chat; const char *field; } cases[] = {
        {"{\"n\": 2}", 0, "n"},
        {"{\"best_of\": 3}", 0, "best_of"},
        {"{\"max_tokens\": -1}", 0, "max_tokens"},
        {"{\"temperature\": \"hot\"}", 0, "temperature"},
        {"{\"top_p\": 1.5}", 0, "top_p"},
        {"{\"stop\": [\"a\", 3]}", 0, "stop"},
        {"{\"stop\": [\"\"]}", 0, "stop"},
        {"{\"stop\": 5}", 0, "stop"},
        {"{\"logprobs\": 21}", 0, "logprobs"},
        {"{\"stream\": true, \"logprobs\": 1}", 0, "logprobs"},
        {"{\"top_logprobs\": 2}", 1, "top_logprobs"},
        {"{\"stream_options\": 1}", 0, "stream_options"},
        {"{\"stream\": \"yes\"}", 0, "stream"},
    };
    for (size_t i = 0; i < PB_ARRAY_LEN(cases); i++) {
        pv_params_t p;
        pb_err_t err = {{0}, {0}};
        json_t *b = js(cases[i].body);
        assert_int_equal(pv_params_parse(b, cases[i].chat, &p, &err), PB_EINVAL);
        assert_string_equal(err.field, cases[i].field);
        json_decref(b);
    }
}

static void render(pv_chat_t kind, const char *msgs, const char *want)
{
    pb_buf_t b;
    pb_err_t err = {{0}, {0}};
    json_t *m = js(msgs);
    pb_buf_init(&b, 0);
    assert_int_equal(pv_chat_render(kind, m, &b, &err), 0);
    assert_int_equal(pb_buf_cstr(&b), 0);
    assert_string_equal(b.data, want);
    pb_buf_free(&b);
    json_decref(m);
}

static void test_chat_templates(void **state)
{
    (void)state;
    const char *msgs = "[{\"role\": \"system\", \"content\": \"S\"},"
                       " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"},"
                       " {\"type\": \"text\", \"text\": \"b\"}]}]";
    render(PV_CHAT_PLAIN, msgs, "system: S\nuser: ab\nassistant:");
    render(PV_CHAT_CHATML, msgs,
           "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nab<|im_end|>\n"
           "<|im_start|>assistant\n");
    render(PV_CHAT_LLAMA3, msgs,
           "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nab<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    assert_int_equal(pv_chat_detect(NULL), PV_CHAT_PLAIN);
    assert_int_equal(pv_chat_detect("{% for m in messages %}<|im_start|>{{m.role}}...<|im_end|>"),
                     PV_CHAT_CHATML);
    assert_int_equal(pv_chat_detect("<|start_header_id|>{{ role }}<|end_header_id|>..<|eot_id|>"),
                     PV_CHAT_LLAMA3);
    assert_int_equal(pv_chat_detect("[INST] {{ content }} [/INST]"), PV_CHAT_PLAIN);
    static const char *const bad[] = {
        "[]", "{}", "[{\"role\": \"wizard\", \"content\": \"x\"}]", "[{\"content\": \"x\"}]",
        "[{\"role\": \"user\", \"content\": 5}]",
        "[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]"};
    for (size_t i = 0; i < PB_ARRAY_LEN(bad); i++) {
        pb_buf_t b;
        pb_err_t err = {{0}, {0}};
        json_t *m = js(bad[i]);
        pb_buf_init(&b, 0);
        assert_int_equal(pv_chat_render(PV_CHAT_PLAIN, m, &b, &err), PB_EINVAL);
        assert_string_equal(err.field, "messages");
        pb_buf_free(&b);
        json_decref(m);
    }
}

static void clean_eq(const char *in, size_t n, const char *want)
{
    pb_buf_t b;
    pb_buf_init(&b, 0);
    assert_int_equal(pb_utf8_clean(in, n, &b), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data ? b.data : "", want, b.len);
    pb_buf_free(&b);
}

static void test_utf8(void **state)
{
    (void)state;
    /* the maximal-subpart rule, as Python's bytes.decode("utf-8", "replace") */
    clean_eq("abc", 3, "abc");
    clean_eq("\xC3\xA9x", 3, "\xC3\xA9x");
    clean_eq("\xB1\xD9g", 3, "\xEF\xBF\xBD\xEF\xBF\xBDg");
    clean_eq("\xE2\x82", 2, "\xEF\xBF\xBD");                 /* one truncated sequence */
    clean_eq("\xE0\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD");     /* overlong: two */
    clean_eq("\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* surrogate */
    clean_eq("\xF0\x9F\x98\x80!", 5, "\xF0\x9F\x98\x80!");
    clean_eq("\xF4\x90\x80\x80", 4,
             "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* beyond U+10FFFF */
    /* hold back only what may still become a character */
    assert_int_equal(pb_utf8_ready("ab\xE2\x82", 4), 2);
    assert_int_equal(pb_utf8_ready("ab\xC3", 3), 2);
    assert_int_equal(pb_utf8_ready("ab\xC3\xA9", 4), 4);
    assert_int_equal(pb_utf8_ready("ab\x80", 3), 3);
    assert_int_equal(pb_utf8_ready("ab\xE0\x80", 4), 4); /* already ill-formed */
    assert_int_equal(pb_utf8_ready("", 0), 0);
    pb_buf_t b;
    pb_buf_init(&b, 0);
    assert_int_equal(pv_token_str("\x94", 1, &b), 0);
    assert_int_equal(pb_buf_cstr(&b), 0);
    assert_string_equal(b.data, "bytes:\\x94");
    pb_buf_reset(&b);
    assert_int_equal(pv_token_str(" Paris", 6, &b), 0);
    assert_int_equal(pb_buf_cstr(&b), 0);
    assert_string_equal(b.data, " Paris");
    pb_buf_free(&b);
}

static void test_sse_and_errors(void **state)
{
    (void)state;
    pb_buf_t b;
    pb_buf_init(&b, 0);
    json_t *o = js("{\"text\": \"a\\nb\", \"n\": 1}");
    assert_int_equal(pv_sse_event(&b, o), 0);
    assert_int_equal(pb_buf_cstr(&b), 0);
    /* one line per event: the newline stays escaped inside the JSON */
    assert_string_equal(b.data, "data: {\"text\":\"a\\nb\",\"n\":1}\n\n");
    json_decref(o);
    pb_buf_free(&b);
    assert_string_equal(PV_SSE_DONE, "data: [DONE]\n\n");

    char *e = pv_error_json(404, "no such model", "model", "model_not_found");
    assert_non_null(e);
    json_t *j = js(e);
    const json_t *err = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "no such model");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "NotFoundError");
    assert_string_equal(json_string_value(json_object_get(err, "param")), "model");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "model_not_found");
    json_decref(j);
    free(e);
    e = pv_error_json(400, "bad", NULL, NULL);
    j = js(e);
    err = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "invalid_request_error");
    assert_true(json_is_null(json_object_get(err, "param")));
    assert_true(json_is_null(json_object_get(err, "code")));
    json_decref(j);
    free(e);
    assert_non_null(pv_find("hello world", 11, "o w", 3));
    assert_null(pv_find("hello", 5, "lo!", 3));
}

int pb_test_serve(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_defaults_and_values),
        cmocka_unit_test(test_params_errors),
        cmocka_unit_test(test_chat_templates),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_sse_and_errors),
    };
    return cmocka_run_group_tests_name("serve", tests, NULL, NULL);
}
