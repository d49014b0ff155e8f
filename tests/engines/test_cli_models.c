/* 'joulebench models' run as a program against the fake server: the table,
 * the JSON, the default engine, and the messages when nothing answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engines/engine.h"
#include "etest.h"
#include "testutil.h"

static const char models_script[] =
    "{\"version\": \"0.5.7\", \"models\": ["
    "{\"name\": \"qwen2.5-coder:7b\", \"size\": 4683087332, \"digest\": "
    "\"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\", \"family\": "
    "\"qwen2\", \"parameter_size\": \"7.6B\", \"quantization\": \"Q4_K_M\"},"
    "{\"name\": \"tiny:latest\", \"size\": 52000000, \"family\": \"llama\"}]}";

struct run {
    int status;
    struct buf out, err;
};

/* Runs the tool with up to 8 arguments after "models". */
static void run_models(struct run *r, const char *a1, const char *a2, const char *a3,
                       const char *a4, const char *a5)
{
    memset(r, 0, sizeof *r);
    char *argv[8] = {JB_TOOL, "models"};
    int n = 2;
    const char *args[] = {a1, a2, a3, a4, a5};
    for (int i = 0; i < 5 && args[i]; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    char *env[] = {"NO_COLOR=1", NULL};
    r->status = tu_run(argv, env, &r->out, &r->err);
}

static void run_free(struct run *r)
{
    buf_free(&r->out);
    buf_free(&r->err);
}

static void test_table(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, models_script, err), 0);
    struct run r;
    run_models(&r, "-e", "ollama", "--url", fakeserver_url(fs), NULL);
    assert_int_equal(r.status, 0);
    const char *out = buf_str(&r.out);
    assert_non_null(strstr(out, "NAME"));
    assert_non_null(strstr(out, "qwen2.5-coder:7b"));
    assert_non_null(strstr(out, "4.7 GB"));
    assert_non_null(strstr(out, "Q4_K_M"));
    assert_non_null(strstr(out, "qwen2"));
    assert_non_null(strstr(out, "7.6B"));
    assert_non_null(strstr(out, "a1b2c3d4e5f6"));
    assert_null(strstr(out, "a1b2c3d4e5f60")); /* 12 characters of digest */
    assert_non_null(strstr(out, "tiny:latest"));
    assert_non_null(strstr(out, "52 MB"));
    run_free(&r);
    /* no -e: Ollama answers at --url, so it is the engine */
    run_models(&r, "--url", fakeserver_url(fs), NULL, NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.out), "qwen2.5-coder:7b"));
    run_free(&r);
    /* the OpenAI view of the same server knows names and sizes only */
    run_models(&r, "-e", "openai", "--url", fakeserver_url(fs), NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.out), "qwen2.5-coder:7b"));
    assert_non_null(strstr(buf_str(&r.out), "4.7 GB"));
    run_free(&r);
    fakeserver_stop(fs);
}

static void test_json(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, models_script, err), 0);
    struct run r;
    run_models(&r, "-e", "ollama", "--url", fakeserver_url(fs), "--json");
    assert_int_equal(r.status, 0);
    json_error_t je;
    json_t *j = json_loads(buf_str(&r.out), 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "engine")), "ollama");
    assert_string_equal(json_string_value(json_object_get(j, "url")), fakeserver_url(fs));
    json_t *models = json_object_get(j, "models");
    assert_int_equal(json_array_size(models), 2);
    json_t *m0 = json_array_get(models, 0);
    assert_string_equal(json_string_value(json_object_get(m0, "name")), "qwen2.5-coder:7b");
    assert_true(json_integer_value(json_object_get(m0, "size_bytes")) == 4683087332LL);
    assert_string_equal(json_string_value(json_object_get(m0, "quantization")), "Q4_K_M");
    assert_string_equal(json_string_value(json_object_get(m0, "family")), "qwen2");
    assert_int_equal(json_string_length(json_object_get(m0, "digest")), 64);
    /* unknown is null, never "" or 0 */
    json_t *m1 = json_array_get(models, 1);
    assert_true(json_is_null(json_object_get(m1, "digest")));
    assert_true(json_is_null(json_object_get(m1, "quantization")));
    assert_true(json_is_null(json_object_get(m1, "context_length")));
    json_decref(j);
    run_free(&r);
    fakeserver_stop(fs);
}

static void test_running(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, models_script, err), 0);
    struct engine *e = etest_open("ollama", fakeserver_url(fs), 10);
    struct engine_result res;
    engine_result_init(&res);
    assert_int_equal(e->ops->load(e, "tiny:latest", &res), 0);
    engine_result_free(&res);
    engine_close(e);
    struct run r;
    run_models(&r, "-e", "ollama", "--url", fakeserver_url(fs), "--running");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.out), "tiny:latest"));
    assert_non_null(strstr(buf_str(&r.out), "IN GPU"));
    assert_null(strstr(buf_str(&r.out), "qwen2.5-coder"));
    run_free(&r);
    run_models(&r, "-e", "openai", "--url", fakeserver_url(fs), "--running");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(buf_str(&r.err), "--running"));
    run_free(&r);
    fakeserver_stop(fs);
}

static void test_empty(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, "{\"models\": []}", err), 0);
    struct run r;
    run_models(&r, "-e", "ollama", "--url", fakeserver_url(fs), NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(buf_str(&r.out), "");
    assert_non_null(strstr(buf_str(&r.err), "ollama pull"));
    run_free(&r);
    fakeserver_stop(fs);
}

static void test_nothing_answers(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fakeserver_unused_port());
    struct run r;
    run_models(&r, "-e", "ollama", "--url", url, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(buf_str(&r.err), "connection refused"));
    assert_non_null(strstr(buf_str(&r.err), "ollama serve"));
    assert_non_null(strstr(buf_str(&r.err), url));
    assert_string_equal(buf_str(&r.out), "");
    run_free(&r);
    run_models(&r, "--url", url, NULL, NULL, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(buf_str(&r.err), "no Ollama server answers"));
    assert_non_null(strstr(buf_str(&r.err), "-e openai"));
    run_free(&r);
    run_models(&r, "-e", "openai", "--url", url, NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(buf_str(&r.err), "is the server running at"));
    run_free(&r);
}

static void test_bad_usage(void **state)
{
    (void)state;
    struct run r;
    run_models(&r, "--frobnicate", NULL, NULL, NULL, NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(buf_str(&r.err), "--frobnicate"));
    run_free(&r);
    run_models(&r, "-e", "nosuch", NULL, NULL, NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(buf_str(&r.err), "unknown engine 'nosuch'"));
    run_free(&r);
    run_models(&r, "--timeout", "soon", NULL, NULL, NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(buf_str(&r.err), "--timeout"));
    run_free(&r);
    run_models(&r, "--url", NULL, NULL, NULL, NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(buf_str(&r.err), "needs a value"));
    run_free(&r);
    run_models(&r, "--help", NULL, NULL, NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.out), "usage: joulebench models"));
    run_free(&r);
}

/* The built-in engine lists Ollama's store. An empty store is not an
 * error, but the message names the store it looked in and how to run the
 * built-in engine anyway (a .gguf file); the help names the engine too. */
static void test_builtin_empty_store(void **state)
{
    (void)state;
    char *store = tu_tmpdir("store");
    char env_store[4200];
    snprintf(env_store, sizeof env_store, "OLLAMA_MODELS=%s", store);
    char *argv[] = {JB_TOOL, "models", "-e", "builtin", NULL};
    char *env[] = {"NO_COLOR=1", env_store, NULL};
    struct run r;
    memset(&r, 0, sizeof r);
    r.status = tu_run(argv, env, &r.out, &r.err);
    assert_int_equal(r.status, 0);
    assert_string_equal(buf_str(&r.out), "");
    if (!strstr(buf_str(&r.err), store) || !strstr(buf_str(&r.err), ".gguf") ||
        strstr(buf_str(&r.err), " at -"))
        fail_msg("the message does not name the store and the fix:\n%s", buf_str(&r.err));
    run_free(&r);
    run_models(&r, "--help", NULL, NULL, NULL, NULL);
    assert_non_null(strstr(buf_str(&r.out), "builtin"));
    run_free(&r);
    run_models(&r, "-e", "nosuch", NULL, NULL, NULL);
    assert_non_null(strstr(buf_str(&r.err), "builtin"));
    run_free(&r);
    tu_rmtree_free(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_running),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_nothing_answers),
        cmocka_unit_test(test_bad_usage),
        cmocka_unit_test(test_builtin_empty_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
