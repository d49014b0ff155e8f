/* The Ollama engine against the fake server: what it sends (bodies as
 * recorded by the server), what it reads (counts, durations, pieces, token
 * times), and every fault the issue lists: a drop mid-stream, HTTP errors
 * with the server's text, a missing model, nothing listening, a server that
 * never answers, an endless line, a malformed line. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <unistd.h>

#include "common/sig.h"
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
    f->e = etest_open("ollama", fakeserver_url(f->fs), timeout_s);
    etest_request(&f->req, "qwen2.5:7b", "What is the capital of France?");
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

static void test_chat_stream(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"" ANSWER "\", \"prompt_tokens\": 12, "
                          "\"load_duration_s\": 0.25}",
                          10);
    assert_int_equal(fx_run(f), 0);
    etest_invariants(&f->res, &f->seen);
    assert_string_equal(buf_str(&f->res.response), ANSWER);
    assert_string_equal(buf_str(&f->seen.text), ANSWER);
    assert_int_equal(f->res.pieces, 6);
    assert_int_equal(f->res.output_tokens, 6);
    assert_false(f->res.output_tokens_estimated);
    assert_int_equal(f->res.prompt_tokens, 12);
    assert_false(f->res.prompt_tokens_estimated);
    assert_false(f->res.prompt_cached);
    assert_true(fabs(f->res.load_s - 0.25) < 1e-9);
    assert_false(isnan(f->res.prompt_eval_s));
    assert_false(isnan(f->res.eval_s));
    assert_true(f->res.total_s >= f->res.load_s);
    assert_string_equal(f->res.done_reason, "stop");
    assert_non_null(f->res.server_json);
    assert_null(json_object_get(f->res.server_json, "message"));
    assert_true(json_is_integer(json_object_get(f->res.server_json, "eval_count")));
    json_t *r = fakeserver_request(f->fs, 0);
    assert_string_equal(json_string_value(json_object_get(r, "path")), "/api/chat");
    assert_string_equal(json_string_value(json_object_get(r, "method")), "POST");
    json_decref(r);
    fx_free(f);
}

/* The body carries every option as Ollama names it; max_tokens is always
 * there as num_predict, and the server honours it. */
static void test_chat_body(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"one two three four five six seven eight nine ten\"}", 10);
    engine_close(f->e);
    struct engine_config cfg = {
        .name = "ollama", .url = fakeserver_url(f->fs), .timeout_s = 10, .keep_alive = "10m"};
    char err[ERR_LEN];
    assert_int_equal(engine_open(&f->e, &cfg, err), 0);
    f->req.system = "Answer briefly.";
    f->req.max_tokens = 7;
    f->req.temperature = 0;
    f->req.has_seed = 1;
    f->req.seed = 42;
    f->req.num_ctx = 2048;
    assert_int_equal(fx_run(f), 0);
    etest_invariants(&f->res, &f->seen);
    assert_int_equal(f->res.output_tokens, 7);
    assert_string_equal(f->res.done_reason, "length");
    json_t *b = fakeserver_last_body(f->fs, "/api/chat");
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "model")), "qwen2.5:7b");
    assert_true(json_is_true(json_object_get(b, "stream")));
    json_t *msgs = json_object_get(b, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
                        "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                        "Answer briefly.");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "role")),
                        "user");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
                        "What is the capital of France?");
    json_t *opt = json_object_get(b, "options");
    assert_int_equal(json_integer_value(json_object_get(opt, "num_predict")), 7);
    assert_int_equal(json_integer_value(json_object_get(opt, "seed")), 42);
    assert_true(json_is_number(json_object_get(opt, "temperature")));
    assert_true(json_number_value(json_object_get(opt, "temperature")) == 0.0);
    assert_int_equal(json_integer_value(json_object_get(opt, "num_ctx")), 2048);
    assert_null(json_object_get(opt, "top_p")); /* NAN: not sent */
    assert_string_equal(json_string_value(json_object_get(b, "keep_alive")), "10m");
    json_decref(b);
    fx_free(f);
}

/* Raw prompts go to /api/generate with "raw": true (chat cannot do raw);
 * with ollama_generate set, plain prompts go there too, with the system. */
static void test_generate_bodies(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"" ANSWER "\"}", 10);
    f->req.raw = 1;
    f->req.system = "ignored when raw";
    f->req.top_p = 0.9;
    assert_int_equal(fx_run(f), 0);
    assert_string_equal(buf_str(&f->res.response), ANSWER);
    json_t *b = fakeserver_last_body(f->fs, "/api/generate");
    assert_non_null(b);
    assert_true(json_is_true(json_object_get(b, "raw")));
    assert_string_equal(json_string_value(json_object_get(b, "prompt")),
                        "What is the capital of France?");
    assert_null(json_object_get(b, "system"));
    assert_null(json_object_get(b, "messages"));
    assert_true(fabs(json_number_value(json_object_get(json_object_get(b, "options"), "top_p")) -
                     0.9) < 1e-12);
    assert_null(json_object_get(json_object_get(b, "options"), "seed"));
    json_decref(b);
    /* generate's final object carries "context": not kept */
    assert_null(json_object_get(f->res.server_json, "context"));
    engine_result_free(&f->res);
    engine_close(f->e);

    struct engine_config cfg = {.name = "ollama",
                                .url = fakeserver_url(f->fs),
                                .timeout_s = 10,
                                .ollama_generate = 1,
                                .keep_alive = "300"};
    char err[ERR_LEN];
    assert_int_equal(engine_open(&f->e, &cfg, err), 0);
    f->req.raw = 0;
    f->req.system = "Answer briefly.";
    engine_result_init(&f->res);
    assert_int_equal(fx_run(f), 0);
    b = fakeserver_last_body(f->fs, "/api/generate");
    assert_null(json_object_get(b, "raw"));
    assert_string_equal(json_string_value(json_object_get(b, "system")), "Answer briefly.");
    assert_int_equal(json_integer_value(json_object_get(b, "keep_alive")), 300);
    json_decref(b);
    assert_int_equal(fakeserver_request_count(f->fs), 2);
    fx_free(f);
}

/* Ollama reports 0 or 1 prompt tokens when the prompt came from its cache:
 * flagged, and the count kept as the server gave it. */
static void test_cached_prompt(void **state)
{
    (void)state;
    const char *scripts[] = {"{\"prompt_tokens\": 1}", "{\"prompt_tokens\": 0}"};
    for (int i = 0; i < 2; i++) {
        struct fx *f = fx_new(scripts[i], 10);
        assert_int_equal(fx_run(f), 0);
        assert_true(f->res.prompt_cached);
        assert_int_equal(f->res.prompt_tokens, 1 - i);
        assert_false(f->res.output_tokens_estimated);
        fx_free(f);
    }
    struct fx *f = fx_new("{\"prompt_tokens\": 2}", 10);
    assert_int_equal(fx_run(f), 0);
    assert_false(f->res.prompt_cached);
    fx_free(f);
}

/* No counts in the final object: the output count is the pieces seen,
 * labelled estimated; the prompt count stays unknown and the prompt is
 * flagged as possibly cached. */
static void test_usage_missing(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"answer\": \"" ANSWER "\", \"usage\": false}", 10);
    assert_int_equal(fx_run(f), 0);
    etest_invariants(&f->res, &f->seen);
    assert_int_equal(f->res.output_tokens, 6);
    assert_true(f->res.output_tokens_estimated);
    assert_int_equal(f->res.prompt_tokens, -1);
    assert_true(f->res.prompt_cached);
    fx_free(f);
}

/* Reasoning pieces are timed and counted but are not the answer. */
static void test_thinking_pieces(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"thinking\": [\"Hmm\", \", France\"], \"answer\": \"Paris.\"}", 10);
    assert_int_equal(fx_run(f), 0);
    etest_invariants(&f->res, &f->seen);
    assert_int_equal(f->res.pieces, 3);
    assert_string_equal(buf_str(&f->res.response), "Paris.");
    assert_string_equal(buf_str(&f->seen.text), "Hmm, FranceParis.");
    fx_free(f);
}

/* The server dies after 3 pieces (cut chunked body): the error names the
 * URL, and what came is kept. */
static void test_drop_mid_stream(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"tokens\": 10, \"drop_after\": 3}", 10);
    assert_int_equal(fx_run(f), JB_ERR_NET);
    etest_invariants(&f->res, &f->seen);
    assert_int_equal(f->res.status, JB_ERR_NET);
    assert_non_null(strstr(f->res.error, "closed the connection in the middle"));
    assert_non_null(strstr(f->res.error, fakeserver_url(f->fs)));
    assert_string_equal(buf_str(&f->res.response), " t0 t1 t2");
    assert_int_equal(f->res.pieces, 3);
    assert_int_equal(f->res.output_tokens, 3);
    assert_true(f->res.output_tokens_estimated);
    assert_false(isnan(f->res.t_first_s));
    fx_free(f);
}

/* A body that ends properly but without the final object is cut too. */
static void test_drop_clean_end(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"tokens\": 10, \"drop_after\": 4, \"drop_clean\": true}", 10);
    assert_int_equal(fx_run(f), JB_ERR_NET);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "ended before Ollama's final object"));
    assert_int_equal(f->res.pieces, 4);
    assert_true(f->res.output_tokens_estimated);
    fx_free(f);
}

static void test_http_error_text(void **state)
{
    (void)state;
    struct fx *f =
        fx_new("{\"status\": 500, \"error\": \"llama runner process has terminated\"}", 10);
    assert_int_equal(fx_run(f), JB_ERR_NET);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "HTTP 500"));
    assert_non_null(strstr(f->res.error, "llama runner process has terminated"));
    assert_non_null(strstr(f->res.error, fakeserver_url(f->fs)));
    assert_int_equal(f->res.pieces, 0);
    fx_free(f);
}

static void test_model_not_found(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"models\": [{\"name\": \"qwen2.5:7b\"}]}", 10);
    f->req.model = "llama3.2";
    assert_int_equal(fx_run(f), JB_ERR_NOTFOUND);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "HTTP 404"));
    assert_non_null(strstr(f->res.error, "ollama pull llama3.2"));
    /* the listed model works; "qwen2.5:7b" must not be found as "qwen2.5" */
    engine_result_free(&f->res);
    engine_result_init(&f->res);
    f->req.model = "qwen2.5:7b";
    assert_int_equal(fx_run(f), 0);
    fx_free(f);
}

static void test_connection_refused(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fakeserver_unused_port());
    struct engine *e = etest_open("ollama", url, 5);
    struct engine_request req;
    etest_request(&req, "m", "hi");
    struct engine_result res;
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), JB_ERR_NET);
    etest_invariants(&res, NULL);
    assert_non_null(strstr(res.error, "connection refused"));
    assert_non_null(strstr(res.error, "is Ollama running? start it with 'ollama serve'"));
    assert_non_null(strstr(res.error, url));
    engine_result_free(&res);
    char err[ERR_LEN];
    struct engine_model_info *list;
    size_t n;
    assert_int_equal(e->ops->list_models(e, &list, &n, err), JB_ERR_NET);
    assert_non_null(strstr(err, "ollama serve"));
    engine_close(e);
}

/* The server reads the request and then says nothing: the request ends
 * after timeout_s (not before), with a message that names the option. */
static void test_never_answers(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"never_answer\": true}", 0.3);
    double t0 = jb_clock_s();
    assert_int_equal(fx_run(f), JB_ERR_TIMEOUT);
    double took = jb_clock_s() - t0;
    etest_invariants(&f->res, &f->seen);
    assert_true(took >= 0.3);
    assert_non_null(strstr(f->res.error, "no answer within 0.3 s"));
    assert_non_null(strstr(f->res.error, "--timeout"));
    assert_int_equal(f->res.pieces, 0);
    fx_free(f);
}

static void *raise_stop_later(void *arg)
{
    (void)arg;
    usleep(200 * 1000);
    sig_stop = 1; /* what the SIGINT handler does */
    return NULL;
}

/* SIGINT while the server is silent: the request ends interrupted, not
 * by its 30 s timeout (the wait loop polls the flag). */
static void test_stop_flag(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"never_answer\": true}", 30);
    pthread_t th;
    pthread_create(&th, NULL, raise_stop_later, NULL);
    int rc = fx_run(f);
    pthread_join(th, NULL);
    sig_reset();
    assert_int_equal(rc, JB_ERR_INTERRUPTED); /* not JB_ERR_TIMEOUT */
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "stopped by a signal"));
    fx_free(f);
}

/* A stream that stalls after 2 pieces times out too, keeping them. */
static void test_stall_mid_stream(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"pieces\": [\"a\", \"b\", \"c\"], \"tokens_per_s\": 0.1}", 1.0);
    f->req.max_tokens = 3;
    assert_int_equal(fx_run(f), JB_ERR_TIMEOUT);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "in the middle of its answer"));
    assert_string_equal(buf_str(&f->res.response), "a");
    fx_free(f);
}

static void test_endless_line(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"tokens\": 5, \"endless_after\": 2}", 10);
    assert_int_equal(fx_run(f), JB_ERR_FORMAT);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "longer than"));
    assert_non_null(strstr(f->res.error, "line 3"));
    assert_string_equal(buf_str(&f->res.response), " t0 t1");
    assert_true(f->res.output_tokens_estimated);
    fx_free(f);
}

static void test_malformed_line(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"tokens\": 5, \"malformed_after\": 2}", 10);
    assert_int_equal(fx_run(f), JB_ERR_FORMAT);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "not JSON"));
    assert_non_null(strstr(f->res.error, "stream line 3"));
    assert_non_null(strstr(f->res.error, fakeserver_url(f->fs)));
    assert_string_equal(buf_str(&f->res.response), " t0 t1");
    fx_free(f);
}

static void test_error_in_stream(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"tokens\": 5, \"error_after\": 2, \"error\": \"CUDA error: out of "
                          "memory\"}",
                          10);
    assert_int_equal(fx_run(f), JB_ERR_NET);
    etest_invariants(&f->res, &f->seen);
    assert_non_null(strstr(f->res.error, "CUDA error: out of memory"));
    assert_int_equal(f->res.pieces, 2);
    fx_free(f);
}

/* The server waits 0.3 s before the first piece (after sending its
 * headers, so the headers must not count as the first token): the TTFT is
 * at least that, and the pieces after it are spaced by the pacing. */
static void test_ttft(void **state)
{
    (void)state;
    const char *scripts[] = {
        "{\"answer\": \"" ANSWER "\", \"ttft_s\": 0.3, \"tokens_per_s\": 40}",
        "{\"answer\": \"" ANSWER "\", \"ttft_s\": 0.3, \"tokens_per_s\": 40, "
        "\"headers_late\": true}",
    };
    for (int i = 0; i < 2; i++) {
        struct fx *f = fx_new(scripts[i], 10);
        assert_int_equal(fx_run(f), 0);
        etest_invariants(&f->res, &f->seen);
        assert_true(f->res.t_first_s - f->res.t_sent_s >= 0.3);
        /* 6 pieces at 40/s: the last leaves the server 5 gaps of 25 ms after
         * the first, which leaves at least ttft after the request came */
        assert_true(f->res.t_last_s - f->res.t_sent_s >= 0.3 + 5 * 0.025);
        json_t *r = fakeserver_request(f->fs, 0);
        /* the server got the request before the first piece arrived */
        assert_true(json_real_value(json_object_get(r, "t_s")) <= f->res.t_first_s);
        json_decref(r);
        fx_free(f);
    }
}

/* The body written one byte (or 7 bytes) per send(): lines and UTF-8
 * sequences are cut on the wire, the answer comes out whole. */
static void test_split_writes(void **state)
{
    (void)state;
    const char *scripts[] = {
        "{\"answer\": \"h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80\", "
        "\"write_bytes\": 1}",
        "{\"answer\": \"h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80\", "
        "\"write_bytes\": 7}",
    };
    for (int i = 0; i < 2; i++) {
        struct fx *f = fx_new(scripts[i], 10);
        assert_int_equal(fx_run(f), 0);
        etest_invariants(&f->res, &f->seen);
        assert_string_equal(buf_str(&f->res.response),
                            "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80");
        assert_int_equal(f->res.pieces, 4);
        fx_free(f);
    }
}

/* on_token asks to stop after 2 pieces: the request ends interrupted with
 * those 2 pieces. */
static void test_cancel_from_callback(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"tokens\": 50, \"tokens_per_s\": 100}", 10);
    f->seen.stop_after = 2;
    assert_int_equal(fx_run(f), JB_ERR_INTERRUPTED);
    etest_invariants(&f->res, &f->seen);
    assert_int_equal(f->res.pieces, 2);
    assert_string_equal(buf_str(&f->res.response), " t0 t1");
    assert_non_null(strstr(f->res.error, "stopped"));
    fx_free(f);
}

static int has_model(struct engine *e, const char *name, int64_t *vram)
{
    struct engine_model_info *list;
    size_t n;
    char err[ERR_LEN];
    assert_int_equal(e->ops->list_running(e, &list, &n, err), 0);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0) {
            found = 1;
            if (vram)
                *vram = list[i].vram_bytes;
        }
    free(list);
    return found;
}

/* load: an empty prompt loads the model, and its load_duration is kept;
 * unload: keep_alive 0. /api/ps shows the difference. */
static void test_load_unload(void **state)
{
    (void)state;
    struct fx *f = fx_new("{\"models\": [{\"name\": \"qwen2.5:7b\", \"size\": 5000, "
                          "\"vram_bytes\": 4000}], \"load_duration_s\": 1.5}",
                          10);
    struct engine *e = f->e;
    assert_false(has_model(e, "qwen2.5:7b", NULL));
    assert_int_equal(e->ops->load(e, "qwen2.5:7b", &f->res), 0);
    assert_true(fabs(f->res.load_s - 1.5) < 1e-9);
    assert_string_equal(f->res.done_reason, "load");
    assert_false(f->res.prompt_cached);
    assert_int_equal(f->res.pieces, 0);
    assert_true(f->res.t_sent_s <= f->res.t_end_s);
    json_t *b = fakeserver_last_body(f->fs, "/api/generate");
    assert_null(json_object_get(b, "prompt"));
    json_decref(b);
    int64_t vram = 0;
    assert_true(has_model(e, "qwen2.5:7b", &vram));
    assert_int_equal(vram, 4000);
    char err[ERR_LEN];
    assert_int_equal(e->ops->unload(e, "qwen2.5:7b", err), 0);
    b = fakeserver_last_body(f->fs, "/api/generate");
    assert_int_equal(json_integer_value(json_object_get(b, "keep_alive")), 0);
    json_decref(b);
    assert_false(has_model(e, "qwen2.5:7b", NULL));
    /* a load that reports no duration leaves load_s unknown, not 0 */
    fakeserver_set_script(f->fs, "{}", err);
    engine_result_free(&f->res);
    engine_result_init(&f->res);
    assert_int_equal(e->ops->load(e, "qwen2.5:7b", &f->res), 0);
    assert_true(isnan(f->res.load_s));
    /* loading a missing model says how to get it */
    fakeserver_set_script(f->fs, "{\"models\": [{\"name\": \"a:1b\"}]}", err);
    engine_result_free(&f->res);
    engine_result_init(&f->res);
    assert_int_equal(e->ops->load(e, "b:1b", &f->res), JB_ERR_NOTFOUND);
    assert_non_null(strstr(f->res.error, "ollama pull b:1b"));
    fx_free(f);
}

static void test_listings(void **state)
{
    (void)state;
    struct fx *f =
        fx_new("{\"version\": \"0.5.7\", \"models\": ["
               "{\"name\": \"qwen2.5-coder:7b\", \"size\": 4683087332, \"digest\": "
               "\"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\", \"family\": "
               "\"qwen2\", \"parameter_size\": \"7.6B\", \"quantization\": \"Q4_K_M\", "
               "\"context_length\": 32768},"
               "{\"name\": \"llama3.2:latest\", \"size\": 2019393189, \"family\": \"llama\", "
               "\"parameter_size\": \"3.2B\", \"quantization\": \"Q4_K_M\"}]}",
               10);
    struct engine *e = f->e;
    char err[ERR_LEN];
    struct engine_model_info *list;
    size_t n;
    assert_int_equal(e->ops->list_models(e, &list, &n, err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "qwen2.5-coder:7b");
    assert_true(list[0].size_bytes == 4683087332LL);
    assert_string_equal(list[0].quantization, "Q4_K_M");
    assert_string_equal(list[0].family, "qwen2");
    assert_string_equal(list[0].parameter_size, "7.6B");
    assert_string_equal(list[0].digest,
                        "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90");
    assert_string_equal(list[1].name, "llama3.2:latest");
    free(list);

    struct engine_model_info mi;
    assert_int_equal(e->ops->model_info(e, "qwen2.5-coder:7b", &mi, err), 0);
    assert_string_equal(mi.family, "qwen2");
    assert_string_equal(mi.quantization, "Q4_K_M");
    assert_int_equal(mi.context_length, 32768);
    assert_true(mi.size_bytes == 4683087332LL);
    assert_true(mi.digest[0] == 'a');
    /* "llama3.2" is "llama3.2:latest" */
    assert_int_equal(e->ops->model_info(e, "llama3.2", &mi, err), 0);
    assert_true(mi.size_bytes == 2019393189LL);
    assert_int_equal(mi.context_length, 4096);
    assert_int_equal(e->ops->model_info(e, "mistral", &mi, err), JB_ERR_NOTFOUND);
    assert_non_null(strstr(err, "ollama pull mistral"));

    char version[32];
    assert_int_equal(e->ops->version(e, version, sizeof version, err), 0);
    assert_string_equal(version, "0.5.7");
    fx_free(f);
}

/* The default-engine probe: an Ollama server answers; an OpenAI-only
 * server, and a port where nothing listens, do not. */
static void test_ollama_answers(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, "{}", err), 0);
    assert_true(engine_ollama_answers(fakeserver_url(fs), 2));
    fakeserver_set_script(fs, "{\"flavour\": \"openai\"}", err);
    assert_false(engine_ollama_answers(fakeserver_url(fs), 2));
    fakeserver_set_script(fs, "{\"never_answer\": true}", err);
    double t0 = jb_clock_s();
    assert_false(engine_ollama_answers(fakeserver_url(fs), 0.2));
    assert_true(jb_clock_s() - t0 >= 0.2);
    fakeserver_stop(fs);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", fakeserver_unused_port());
    assert_false(engine_ollama_answers(url, 2));
}

static void test_bad_requests(void **state)
{
    (void)state;
    struct fx *f = fx_new("{}", 10);
    f->req.max_tokens = 0;
    assert_int_equal(fx_run(f), JB_ERR_USAGE);
    assert_non_null(strstr(f->res.error, "max_tokens"));
    assert_int_equal(fakeserver_request_count(f->fs), 0);
    fx_free(f);
    struct engine_config cfg = {.name = "ollama", .url = "notaurl://x", .timeout_s = 1};
    struct engine *e;
    char err[ERR_LEN];
    assert_int_equal(engine_open(&e, &cfg, err), 0);
    struct engine_request req;
    etest_request(&req, "m", "hi");
    struct engine_result res;
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), JB_ERR_USAGE);
    assert_non_null(strstr(res.error, "bad URL"));
    engine_result_free(&res);
    engine_close(e);
    /* a scheme libcurl speaks but a model server does not (ftp://) is a
     * bad URL too, not a connection attempt that times out */
    cfg.url = "ftp://127.0.0.1:1";
    assert_int_equal(engine_open(&e, &cfg, err), 0);
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), JB_ERR_USAGE);
    assert_non_null(strstr(res.error, "bad URL"));
    engine_result_free(&res);
    engine_close(e);
    cfg.name = "nosuch";
    assert_int_equal(engine_open(&e, &cfg, err), JB_ERR_USAGE);
    assert_non_null(strstr(err, "unknown engine 'nosuch'"));
    assert_true(engine_available("ollama"));
    assert_true(engine_available("openai"));
    assert_false(engine_available("nosuch"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_stream),        cmocka_unit_test(test_chat_body),
        cmocka_unit_test(test_generate_bodies),    cmocka_unit_test(test_cached_prompt),
        cmocka_unit_test(test_usage_missing),      cmocka_unit_test(test_thinking_pieces),
        cmocka_unit_test(test_drop_mid_stream),    cmocka_unit_test(test_drop_clean_end),
        cmocka_unit_test(test_http_error_text),    cmocka_unit_test(test_model_not_found),
        cmocka_unit_test(test_connection_refused), cmocka_unit_test(test_never_answers),
        cmocka_unit_test(test_stall_mid_stream),   cmocka_unit_test(test_stop_flag),
        cmocka_unit_test(test_endless_line),       cmocka_unit_test(test_malformed_line),
        cmocka_unit_test(test_error_in_stream),    cmocka_unit_test(test_ttft),
        cmocka_unit_test(test_split_writes),       cmocka_unit_test(test_cancel_from_callback),
        cmocka_unit_test(test_load_unload),        cmocka_unit_test(test_listings),
        cmocka_unit_test(test_ollama_answers),     cmocka_unit_test(test_bad_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
