/* The OpenAI-compatible engine against the fake server: the body sent
 * (stream, stream_options.include_usage, max_tokens always), usage read
 * from the last chunk or estimated when missing, llama.cpp's timings, SSE
 * cut anywhere on the wire, and the faults. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etest.h"
#include "joulebench/joulebench.h"

#define ANSWER "Paris is the capital of France."

struct fx {
    struct fakeserver *fs;
    struct engine *e;
    struct engine_request req;
    struct engine_result res;
    struct seen seen;
};

static struct fx *fx_new(const char *script, double timeout_s)
{
    struct fx *f = calloc(1, sizeof *f);
    char err[ERR_LEN];
    if (fakeserver_start(&f->fs, script, err)) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    f->e = etest_open("openai", fakeserver_url(f->fs), timeout_s);
    etest_request(&f->req, "qwen2.5-7b-instruct", "What is the capital of France?");
    engine_result_init(&f->res);
    return f;
}

static int fx_run(struct fx *f)
{
    return f->e->ops->generate(f->e, &f->req, seen_token, &f->seen, &f->res);
}

static void fx_free(struct fx *f)
{
    engine_result_free(&f->res);
    buf_free(&f->seen.text);
    engine_close(f->e);
    fakeserver_stop(f->fs);
    free(f);
}

static int setup(void **state)
{
    (void)state;
    unsetenv("OPENAI_API_KEY");
    return 0;
}

/* The fake server starts with a chunk holding the role and "" content (as
 * OpenAI does): it is not a piece and not the first token. */
static void test_chat_stream_with_usage(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"" ANSWER "\", \"prompt_tokens\": 21, "
                          "\"output_tokens\": 7, \"ttft_s\": 0.05}",
                          10);
    assert_int_equal(fx_run(f), 0);
    etest_invariants(&f->res, &f->seen);
    assert_string_equal(buf_str(&f->res.response), ANSWER);
    assert_int_equal(f->res.pieces, 6);
    assert_int_equal(f->res.prompt_tokens, 21);
    assert_int_equal(f->res.output_tokens, 7); /* the server's count wins */
    assert_false(f->res.output_tokens_estimated);
    assert_false(f->res.prompt_cached);
    assert_string_equal(f->res.done_reason, "stop");
    assert_true(f->res.t_first_s - f->res.t_sent_s >= 0.05);
    assert_true(isnan(f->res.prompt_eval_s)); /* no timings: not reported */
    assert_true(json_is_object(json_object_get(f->res.server_json, "usage")));
    json_t *r = fakeserver_request(f->fs, 0);
    assert_string_equal(json_string_value(json_object_get(r, "path")), "/v1/chat/completions");
    assert_null(json_object_get(json_object_get(r, "headers"), "authorization"));
    json_decref(r);
    fx_free(f);
}

static void test_request_body(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"one two three four five six seven\"}", 10);
    f->req.system = "Be terse.";
    f->req.max_tokens = 5;
    f->req.temperature = 0;
    f->req.has_seed = 1;
    f->req.seed = 7;
    f->req.num_ctx = 4096; /* not an OpenAI field: not sent */
    assert_int_equal(fx_run(f), 0);
    assert_int_equal(f->res.output_tokens, 5);
    assert_string_equal(f->res.done_reason, "length");
    json_t *b = fakeserver_last_body(f->fs, "/v1/chat/completions");
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "model")), "qwen2.5-7b-instruct");
    assert_true(json_is_true(json_object_get(b, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage")));
    assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 5);
    assert_true(json_is_number(json_object_get(b, "temperature")));
    assert_true(json_number_value(json_object_get(b, "temperature")) == 0.0);
    assert_int_equal(json_integer_value(json_object_get(b, "seed")), 7);
    assert_null(json_object_get(b, "top_p"));
    assert_null(json_object_get(b, "num_ctx"));
    json_t *msgs = json_object_get(b, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                        "Be terse.");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "role")),
                        "user");
    json_decref(b);
    fx_free(f);
}

/* max_tokens goes out even when the caller leaves everything else alone. */
static void test_max_tokens_always_sent(void **state)
{
    (void)state;
    struct fx *f = fx_new("{}", 10);
    assert_int_equal(fx_run(f), 0);
    json_t *b = fakeserver_last_body(f->fs, "/v1/chat/completions");
    assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 64);
    assert_null(json_object_get(b, "temperature"));
    assert_null(json_object_get(b, "seed"));
    json_decref(b);
    fx_free(f);
}

static void test_usage_missing(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"" ANSWER "\", \"usage\": false}", 10);
    assert_int_equal(fx_run(f), 0);
    etest_invariants(&f->res, &f->seen);
    assert_int_equal(f->res.output_tokens, 6);
    assert_true(f->res.output_tokens_estimated);
    assert_int_equal(f->res.prompt_tokens, -1);
    fx_free(f);
}

/* llama.cpp's timings: kept whole in server_json, prompt_ms/predicted_ms
 * mapped to seconds; prompt_n of 0 or 1 means the prompt came from cache. */
static void test_llamacpp_timings(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"" ANSWER "\", \"timings\": true, \"ttft_s\": 0.05, "
                          "\"tokens_per_s\": 200, \"cache_n\": 3}",
                          10);
    assert_int_equal(fx_run(f), 0);
    json_t *t = json_object_get(f->res.server_json, "timings");
    assert_true(json_is_object(t));
    assert_int_equal(json_integer_value(json_object_get(t, "cache_n")), 3);
    assert_true(fabs(f->res.prompt_eval_s -
                     json_number_value(json_object_get(t, "prompt_ms")) / 1000.0) < 1e-12);
    assert_true(fabs(f->res.eval_s -
                     json_number_value(json_object_get(t, "predicted_ms")) / 1000.0) < 1e-12);
    assert_true(f->res.prompt_eval_s >= 0.05);
    assert_false(f->res.prompt_cached);
    fx_free(f);

    f = fx_new("{\"timings\": true, \"prompt_tokens\": 1}", 10);
    assert_int_equal(fx_run(f), 0);
    assert_true(f->res.prompt_cached);
    fx_free(f);
    /* timings without the usage chunk still arrive (on the finish chunk) */
    f = fx_new("{\"timings\": true, \"usage\": false}", 10);
    assert_int_equal(fx_run(f), 0);
    assert_true(json_is_object(json_object_get(f->res.server_json, "timings")));
    assert_true(f->res.output_tokens_estimated);
    fx_free(f);
}

static void test_raw_completions(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"" ANSWER "\"}", 10);
    f->req.raw = 1;
    assert_int_equal(fx_run(f), 0);
    etest_invariants(&f->res, &f->seen);
    assert_string_equal(buf_str(&f->res.response), ANSWER);
    json_t *b = fakeserver_last_body(f->fs, "/v1/completions");
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "prompt")),
                        "What is the capital of France?");
    assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 64);
    assert_true(
        json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage")));
    json_decref(b);
    fx_free(f);
}

static void test_reasoning_pieces(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"thinking\": [\"Hmm\"], \"answer\": \"Paris.\"}", 10);
    assert_int_equal(fx_run(f), 0);
    assert_int_equal(f->res.pieces, 2);
    assert_string_equal(buf_str(&f->res.response), "Paris.");
    fx_free(f);
}

/* SSE with CRLF, written one byte at a time: every line end and UTF-8
 * sequence is cut on the wire. */
static void test_split_writes_crlf(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"h\xc3\xa9llo \xe2\x82\xac\", \"write_bytes\": 1, "
                          "\"crlf\": true}",
                          10);
    assert_int_equal(fx_run(f), 0);
    etest_invariants(&f->res, &f->seen);
    assert_string_equal(buf_str(&f->res.response), "h\xc3\xa9llo \xe2\x82\xac");
    assert_false(f->res.output_tokens_estimated);
    fx_free(f);
}

static void test_drop_mid_stream(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"tokens\": 10, \"drop_after\": 3}", 10);
    assert_int_equal(fx_run(f), JB_ERR_NET);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "closed the connection in the middle"));
    assert_string_equal(buf_str(&f->res.response), " t0 t1 t2");
    assert_int_equal(f->res.output_tokens, 3);
    assert_true(f->res.output_tokens_estimated);
    fx_free(f);

    f = fx_new("{\"tokens\": 10, \"drop_after\": 3, \"drop_clean\": true}", 10);
    assert_int_equal(fx_run(f), JB_ERR_NET);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "ended before 'data: [DONE]'"));
    assert_int_equal(f->res.pieces, 3);
    fx_free(f);
}

static void test_http_error_text(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"status\": 503, \"error\": \"Loading model\"}", 10);
    assert_int_equal(fx_run(f), JB_ERR_NET);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "HTTP 503"));
    assert_non_null(strstr(f->res.error, "Loading model"));
    fx_free(f);
}

static void test_model_not_found(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"models\": [{\"name\": \"other\"}]}", 10);
    assert_int_equal(fx_run(f), JB_ERR_NOTFOUND);
    assert_non_null(strstr(f->res.error, "does not exist"));
    assert_non_null(strstr(f->res.error, "joulebench models -e openai"));
    fx_free(f);
}

static void test_connection_refused(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fakeserver_unused_port());
    struct engine *e = etest_open("openai", url, 5);
    struct engine_request req;
    etest_request(&req, "m", "hi");
    struct engine_result res;
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), JB_ERR_NET);
    assert_non_null(strstr(res.error, "connection refused"));
    char want[128];
    snprintf(want, sizeof want, "is the server running at %s?", url);
    assert_non_null(strstr(res.error, want));
    engine_result_free(&res);
    engine_close(e);
}

static void test_faults_in_stream(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"tokens\": 5, \"malformed_after\": 2}", 10);
    assert_int_equal(fx_run(f), JB_ERR_FORMAT);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "not JSON"));
    assert_string_equal(buf_str(&f->res.response), " t0 t1");
    fx_free(f);

    f = fx_new("{\"tokens\": 5, \"endless_after\": 1}", 10);
    assert_int_equal(fx_run(f), JB_ERR_FORMAT);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "longer than"));
    assert_string_equal(buf_str(&f->res.response), " t0");
    fx_free(f);

    f = fx_new("{\"tokens\": 5, \"error_after\": 4, \"error\": \"context overflow\"}", 10);
    assert_int_equal(fx_run(f), JB_ERR_NET);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "context overflow"));
    assert_int_equal(f->res.pieces, 4);
    fx_free(f);

    f = fx_new("{\"never_answer\": true}", 0.25);
    double t0 = jb_clock_s();
    assert_int_equal(fx_run(f), JB_ERR_TIMEOUT);
    assert_true(jb_clock_s() - t0 >= 0.25);
    etest_invariants(&f->res, &f->seen);
    fx_free(f);
}

/* Base URLs as people paste them ("/v1/" at the end) and the API key. */
static void test_url_and_key(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, "{}", err), 0);
    char url[128];
    snprintf(url, sizeof url, "%s/v1/", fakeserver_url(fs));
    struct engine_config cfg = {
        .name = "openai", .url = url, .timeout_s = 10, .api_key = "sk-test"};
    struct engine *e;
    assert_int_equal(engine_open(&e, &cfg, err), 0);
    struct engine_request req;
    etest_request(&req, "m", "hi");
    struct engine_result res;
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), 0);
    json_t *r = fakeserver_request(fs, 0);
    assert_string_equal(json_string_value(json_object_get(r, "path")), "/v1/chat/completions");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "headers"), "authorization")),
        "Bearer sk-test");
    json_decref(r);
    engine_result_free(&res);
    engine_close(e);
    /* $OPENAI_API_KEY when the config has none */
    setenv("OPENAI_API_KEY", "sk-env", 1);
    cfg.api_key = NULL;
    assert_int_equal(engine_open(&e, &cfg, err), 0);
    unsetenv("OPENAI_API_KEY");
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), 0);
    r = fakeserver_request(fs, 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "headers"), "authorization")),
        "Bearer sk-env");
    json_decref(r);
    engine_result_free(&res);
    engine_close(e);
    fakeserver_stop(fs);
}

static void test_listings(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"models\": [{\"name\": \"qwen2.5-7b-instruct\", \"size\": 4400000000},"
                          " {\"name\": \"llama-3.2-3b\"}]}",
                          10);
    struct engine *e = f->e;
    char err[ERR_LEN];
    struct engine_model_info *list;
    size_t n;
    assert_int_equal(e->ops->list_models(e, &list, &n, err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "qwen2.5-7b-instruct");
    assert_true(list[0].size_bytes == 4400000000LL);
    assert_string_equal(list[1].name, "llama-3.2-3b");
    assert_true(list[1].size_bytes == -1);
    assert_string_equal(list[1].digest, "");
    free(list);
    struct engine_model_info mi;
    assert_int_equal(e->ops->model_info(e, "llama-3.2-3b", &mi, err), 0);
    assert_string_equal(mi.name, "llama-3.2-3b");
    assert_int_equal(e->ops->model_info(e, "gpt-9", &mi, err), JB_ERR_NOTFOUND);
    assert_non_null(strstr(err, "qwen2.5-7b-instruct, llama-3.2-3b"));
    char version[32];
    assert_int_equal(e->ops->version(e, version, sizeof version, err), 0);
    assert_string_equal(version, ""); /* no standard endpoint: unknown */
    assert_null(e->ops->load);
    assert_null(e->ops->list_running);
    fx_free(f);
    /* an Ollama-only server has no /v1/models */
    f = fx_new("{\"flavour\": \"ollama\"}", 10);
    assert_int_equal(f->e->ops->list_models(f->e, &list, &n, err), JB_ERR_NOTFOUND);
    assert_non_null(strstr(err, "OpenAI-compatible"));
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_stream_with_usage),
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_max_tokens_always_sent),
        cmocka_unit_test(test_usage_missing),
        cmocka_unit_test(test_llamacpp_timings),
        cmocka_unit_test(test_raw_completions),
        cmocka_unit_test(test_reasoning_pieces),
        cmocka_unit_test(test_split_writes_crlf),
        cmocka_unit_test(test_drop_mid_stream),
        cmocka_unit_test(test_http_error_text),
        cmocka_unit_test(test_model_not_found),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_faults_in_stream),
        cmocka_unit_test(test_url_and_key),
        cmocka_unit_test(test_listings),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
