/* Ollama store lookup against a fixture store tree shaped like
 * ~/.ollama/models: manifests/<host>/<ns>/<model>/<tag> and blobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fs.h"
#include "infer/store.h"
#include "testutil.h"

#define HEX_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define HEX_C "1111111111111111111111111111111111111111111111111111111111111111"

/* A manifest as Ollama writes it: config, then the model, template and
 * params layers. */
static const char manifest_a[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
    "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
    "\"digest\":\"sha256:" HEX_C "\",\"size\":487},"
    "\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
    "\"digest\":\"sha256:" HEX_A "\",\"size\":4683073184},"
    "{\"mediaType\":\"application/vnd.ollama.image.template\","
    "\"digest\":\"sha256:" HEX_C "\",\"size\":1482}]}";

static int setup(void **state)
{
    char *dir = tu_tmpdir("store");
    tu_write(dir, "manifests/registry.ollama.ai/library/qwen2.5-coder/7b", manifest_a);
    tu_write(dir, "manifests/registry.ollama.ai/library/qwen2.5-coder/latest", manifest_a);
    tu_write(dir, "manifests/registry.ollama.ai/someone/tiny-model/q8", manifest_a);
    tu_write(dir, "manifests/localhost:5000/team/m/v1", manifest_a);
    tu_write(dir, "blobs/sha256-" HEX_A, "GGUF\x03\x00\x00\x00 rest of the weights");
    /* broken manifests */
    tu_write(dir, "manifests/registry.ollama.ai/library/broken/latest",
             "{\"schemaVersion\": 2,\n  \"layers\": [\n    {\"mediaType\": }\n  ]\n}");
    tu_write(dir, "manifests/registry.ollama.ai/library/nomodel/latest",
             "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.template\","
             "\"digest\":\"sha256:" HEX_C "\"}]}");
    tu_write(dir, "manifests/registry.ollama.ai/library/baddigest/latest",
             "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
             "\"digest\":\"sha256:../../etc/passwd\"}]}");
    tu_write(dir, "manifests/registry.ollama.ai/library/noblob/latest",
             "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
             "\"digest\":\"sha256:" HEX_B "\"}]}");
    tu_write(dir, "manifests/registry.ollama.ai/library/notgguf/latest",
             "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
             "\"digest\":\"sha256:" HEX_C "\"}]}");
    tu_write(dir, "blobs/sha256-" HEX_C, "{\"template\": \"...\"}");
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    tu_rmtree_free(*state);
    return 0;
}

static void expect_blob(const char *dir, const char *name)
{
    char path[FS_PATH_MAX], digest[80], err[ERR_LEN], want[FS_PATH_MAX];
    int rc = store_resolve(dir, name, path, sizeof path, digest, sizeof digest, err);
    if (rc)
        fprintf(stderr, "%s: %s\n", name, err);
    assert_int_equal(rc, 0);
    snprintf(want, sizeof want, "%s/blobs/sha256-" HEX_A, dir);
    assert_string_equal(path, want);
    assert_string_equal(digest, "sha256:" HEX_A);
}

static void test_names(void **state)
{
    const char *dir = *state;
    expect_blob(dir, "qwen2.5-coder:7b");
    expect_blob(dir, "qwen2.5-coder"); /* tag latest */
    expect_blob(dir, "library/qwen2.5-coder:7b");
    expect_blob(dir, "registry.ollama.ai/library/qwen2.5-coder:7b");
    expect_blob(dir, "someone/tiny-model:q8");
    expect_blob(dir, "localhost:5000/team/m:v1"); /* a host with a port */
    /* Ollama's names are case-insensitive, whatever case is on disk */
    expect_blob(dir, "Qwen2.5-Coder:7B");
    expect_blob(dir, "SomeOne/Tiny-Model:Q8");
    expect_blob(dir, "Registry.Ollama.AI/library/qwen2.5-coder");
    tu_write(dir, "manifests/registry.ollama.ai/library/MixedCase/Big", manifest_a);
    expect_blob(dir, "mixedcase:big");
    expect_blob(dir, "MixedCase:Big");
    char path[FS_PATH_MAX];
    char err[ERR_LEN];
    /* digest may be NULL */
    assert_int_equal(store_resolve(dir, "qwen2.5-coder:7b", path, sizeof path, NULL, 0, err), 0);
}

/* Listing gives every manifest as the name store_resolve() takes, sorted,
 * and each listed name resolves (or fails as the manifest deserves). */
static void test_list(void **state)
{
    const char *dir = *state;
    char **names;
    size_t n;
    char err[ERR_LEN];
    assert_int_equal(store_list(dir, &names, &n, err), 0);
    const char *want[] = {"baddigest:latest", "broken:latest",        "localhost:5000/team/m:v1",
                          "noblob:latest",    "nomodel:latest",       "notgguf:latest",
                          "qwen2.5-coder:7b", "qwen2.5-coder:latest", "someone/tiny-model:q8"};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(names[i], want[i]);
        free(names[i]);
    }
    free(names);
    expect_blob(dir, "localhost:5000/team/m:v1");
    /* a store that does not exist is empty */
    char missing[FS_PATH_MAX];
    snprintf(missing, sizeof missing, "%s/nothing-here", dir);
    assert_int_equal(store_list(missing, &names, &n, err), 0);
    assert_int_equal(n, 0);
    assert_null(names);
}

static void expect_error(const char *dir, const char *name, int code, const char *want1,
                         const char *want2)
{
    char path[FS_PATH_MAX] = "", err[ERR_LEN] = "";
    int rc = store_resolve(dir, name, path, sizeof path, NULL, 0, err);
    if (getenv("JB_TEST_VERBOSE"))
        printf("  %s\n", err);
    if (rc != code || !strstr(err, want1) || (want2 && !strstr(err, want2))) {
        fprintf(stderr, "%s: rc %d: %s\n", name, rc, err);
        fail();
    }
}

static void test_errors(void **state)
{
    const char *dir = *state;
    expect_error(dir, "qwen2.5-coder:14b", JB_ERR_NOTFOUND, "ollama pull qwen2.5-coder:14b",
                 "manifests/registry.ollama.ai/library/qwen2.5-coder/14b");
    expect_error(dir, "llama3.2", JB_ERR_NOTFOUND, "not in the Ollama store", "ollama pull");
    /* malformed JSON: the manifest's path, line and column */
    expect_error(dir, "broken", JB_ERR_FORMAT, "library/broken/latest: line 3, column", NULL);
    expect_error(dir, "nomodel", JB_ERR_FORMAT, "application/vnd.ollama.image.model",
                 "nomodel/latest");
    expect_error(dir, "baddigest", JB_ERR_FORMAT, "64 hex digits", NULL);
    expect_error(dir, "noblob", JB_ERR_NOTFOUND, "missing from the store", "ollama pull noblob");
    expect_error(dir, "notgguf", JB_ERR_FORMAT, "not a GGUF file", HEX_C);
    /* names that could leave the store are refused, not looked up */
    static const char *const bad[] = {"../x",     "a/../../b", "a//b", "",    "m:",       "a/b/c/d",
                                      "x/..:tag", "m:../t",    "/m",   "m y", "a:b/c/d/e"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(dir, bad[i], JB_ERR_USAGE, "not a model name", NULL);
    expect_error("/nonexistent/joulebench-store", "qwen2.5-coder:7b", JB_ERR_NOTFOUND,
                 "no Ollama store at /nonexistent/joulebench-store", "ollama pull");
}

static void test_env(void **state)
{
    const char *dir = *state;
    char path[FS_PATH_MAX], err[ERR_LEN];
    setenv("OLLAMA_MODELS", dir, 1);
    assert_int_equal(store_resolve(NULL, "qwen2.5-coder:7b", path, sizeof path, NULL, 0, err), 0);
    assert_true(strncmp(path, dir, strlen(dir)) == 0);
    /* without OLLAMA_MODELS: $HOME/.ollama/models */
    unsetenv("OLLAMA_MODELS");
    char *home = tu_tmpdir("home");
    char store[FS_PATH_MAX];
    fs_path_join(store, sizeof store, home, ".ollama/models");
    tu_write(store, "manifests/registry.ollama.ai/library/qwen2.5-coder/7b", manifest_a);
    tu_write(store, "blobs/sha256-" HEX_A, "GGUF");
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", home, 1);
    int rc = store_resolve(NULL, "qwen2.5-coder:7b", path, sizeof path, NULL, 0, err);
    if (old_home)
        setenv("HOME", old_home, 1);
    else
        unsetenv("HOME");
    free(old_home);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(path, "/.ollama/models/blobs/sha256-" HEX_A));
    tu_rmtree_free(home);
}

static void test_manifest_pure(void **state)
{
    (void)state;
    char digest[80], err[ERR_LEN];
    assert_int_equal(
        store_manifest_model_digest(manifest_a, strlen(manifest_a), digest, sizeof digest, err), 0);
    assert_string_equal(digest, "sha256:" HEX_A);
    assert_int_equal(store_manifest_model_digest("[]", 2, digest, sizeof digest, err),
                     JB_ERR_FORMAT);
    assert_non_null(strstr(err, "layers"));
    assert_int_equal(store_manifest_model_digest("{\"layers\": [1, \"x\", null]}", 27, digest,
                                                 sizeof digest, err),
                     JB_ERR_FORMAT);
    assert_int_equal(store_manifest_model_digest("", 0, digest, sizeof digest, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "line 1"));
    /* upper-case hex is not what Ollama writes */
    const char *upper = "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
                        "\"digest\":\"sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef"
                        "0123456789abcdef\"}]}";
    assert_int_equal(store_manifest_model_digest(upper, strlen(upper), digest, sizeof digest, err),
                     JB_ERR_FORMAT);
}

static void test_is_path(void **state)
{
    (void)state;
    assert_true(store_is_path("/models/x.bin"));
    assert_true(store_is_path("./x"));
    assert_true(store_is_path("../x"));
    assert_true(store_is_path("~/models/x"));
    assert_true(store_is_path("model.gguf"));
    assert_true(store_is_path("dir/Model.GGUF"));
    assert_true(store_is_path(JB_TEST_DATA "/gguf/sample.gguf"));
    assert_false(store_is_path("qwen2.5-coder:7b"));
    assert_false(store_is_path("user/model:tag"));
    assert_false(store_is_path("registry.ollama.ai/library/qwen2.5"));
    assert_false(store_is_path(""));
    assert_false(store_is_path(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test(test_manifest_pure),
        cmocka_unit_test(test_is_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
