/* `joulebench gguf-info`: text and JSON output for the committed sample,
 * by path and by Ollama model name, and the exit statuses for a damaged
 * file, a missing one and bad usage. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/fs.h"
#include "infer/gguf.h"
#include "testutil.h"

#define SAMPLE JB_TEST_DATA "/gguf/sample.gguf"

static int run(char **argv, char **env, struct buf *out, struct buf *err)
{
    buf_init(out, 0);
    buf_init(err, 0);
    return tu_run(argv, env, out, err);
}

static void test_text(void **state)
{
    (void)state;
    struct buf out, err;
    char *argv[] = {JB_TOOL, "gguf-info", SAMPLE, NULL};
    assert_int_equal(run(argv, NULL, &out, &err), 0);
    const char *s = buf_str(&out);
    assert_non_null(strstr(s, "GGUF version 3, alignment 32"));
    assert_non_null(strstr(s, "metadata (22 keys)"));
    assert_non_null(strstr(s, "\"sample \xc3\xa9\xe2\x82\xac\""));
    assert_non_null(strstr(s, "[[7, 8, 9], [], [[\"x\", \"yz\"]]]"));
    assert_non_null(strstr(s, "-2.5e+300"));
    assert_non_null(strstr(s, "tensors (9)"));
    /* name, type, shape, bytes, offset of one row */
    const char *row = strstr(s, "blk.6.Q4_K.weight");
    assert_non_null(row);
    char line[200];
    sscanf(row, "%199[^\n]", line);
    char name[64], type[16], x[4];
    unsigned long long ne0, ne1, bytes, offset;
    assert_int_equal(sscanf(line, "%63s %15s %llu %3s %llu %llu %llu", name, type, &ne0, x, &ne1,
                            &bytes, &offset),
                     7);
    assert_string_equal(type, "Q4_K");
    assert_true(ne0 == 256 && ne1 == 2 && bytes == 288 && offset == 5280);
    assert_non_null(strstr(s, "9 tensors, 6000 bytes"));
    assert_non_null(strstr(s, "4099 parameters"));
    assert_non_null(strstr(s, "Q6_K x 1"));
    buf_free(&out);
    buf_free(&err);
}

/* A long array is abbreviated to its first items and its count. */
static void test_long_array(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("info");
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "vocab.gguf");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    /* header, one pair: "tokenizer.ggml.tokens" = 1000 strings "t0".."t999" */
    uint32_t u32;
    uint64_t u64;
    fwrite("GGUF", 1, 4, f);
    u32 = 3, fwrite(&u32, 4, 1, f);
    u64 = 0, fwrite(&u64, 8, 1, f);
    u64 = 1, fwrite(&u64, 8, 1, f);
    const char *key = "tokenizer.ggml.tokens";
    u64 = strlen(key), fwrite(&u64, 8, 1, f);
    fwrite(key, 1, strlen(key), f);
    u32 = 9, fwrite(&u32, 4, 1, f);
    u32 = 8, fwrite(&u32, 4, 1, f);
    u64 = 1000, fwrite(&u64, 8, 1, f);
    for (int i = 0; i < 1000; i++) {
        char t[16];
        int n = snprintf(t, sizeof t, "t%d", i);
        u64 = (uint64_t)n, fwrite(&u64, 8, 1, f);
        fwrite(t, 1, (size_t)n, f);
    }
    fclose(f);
    struct buf out, err;
    char *argv[] = {JB_TOOL, "gguf-info", path, NULL};
    assert_int_equal(run(argv, NULL, &out, &err), 0);
    assert_non_null(strstr(buf_str(&out),
                           "[\"t0\", \"t1\", \"t2\", \"t3\", \"t4\", \"t5\", \"t6\", "
                           "\"t7\", ...] (1000 items)"));
    assert_null(strstr(buf_str(&out), "\"t8\""));
    buf_free(&out);
    buf_free(&err);
    char *argv2[] = {JB_TOOL, "gguf-info", "--json", path, NULL};
    assert_int_equal(run(argv2, NULL, &out, &err), 0);
    json_error_t je;
    json_t *root = json_loads(buf_str(&out), 0, &je);
    assert_non_null(root);
    json_t *tok = json_object_get(json_object_get(root, "metadata"), "tokenizer.ggml.tokens");
    assert_string_equal(json_string_value(json_object_get(tok, "array_of")), "string");
    assert_int_equal(json_integer_value(json_object_get(tok, "count")), 1000);
    assert_int_equal(json_array_size(json_object_get(tok, "first")), 8);
    json_decref(root);
    buf_free(&out);
    buf_free(&err);
    tu_rmtree_free(dir);
}

/* Values JSON has no words for (NaN, infinities) stay in place as
 * strings, and a key with a line break cannot forge a line of the text
 * listing. */
static void test_odd_values(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("info");
    char path[FS_PATH_MAX], errs[256];
    fs_path_join(path, sizeof path, dir, "odd.gguf");
    struct gguf_writer *w;
    assert_int_equal(gguf_writer_open(&w, path, errs), 0);
    gguf_writer_kv_f32(w, "t.nan", NAN);
    const float arr[4] = {1.0f, NAN, INFINITY, 2.0f};
    gguf_writer_kv_arr_f32(w, "t.arr", arr, 4);
    gguf_writer_kv_str(w, "x\n  general.name", "FAKE");
    assert_int_equal(gguf_writer_finish(w, errs), 0);

    struct buf out, err;
    char *argv[] = {JB_TOOL, "gguf-info", "--json", path, NULL};
    assert_int_equal(run(argv, NULL, &out, &err), 0);
    json_error_t je;
    json_t *root = json_loads(buf_str(&out), 0, &je);
    assert_non_null(root);
    json_t *meta = json_object_get(root, "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "t.nan")), "NaN");
    json_t *a = json_object_get(meta, "t.arr");
    assert_int_equal(json_array_size(a), 4);
    assert_true(json_real_value(json_array_get(a, 0)) == 1.0);
    assert_string_equal(json_string_value(json_array_get(a, 1)), "NaN");
    assert_string_equal(json_string_value(json_array_get(a, 2)), "Infinity");
    assert_true(json_real_value(json_array_get(a, 3)) == 2.0);
    json_decref(root);
    buf_free(&out);
    buf_free(&err);

    char *argv2[] = {JB_TOOL, "gguf-info", path, NULL};
    assert_int_equal(run(argv2, NULL, &out, &err), 0);
    assert_null(strstr(buf_str(&out), "\n  general.name"));
    assert_non_null(strstr(buf_str(&out), "\"x\\n  general.name\""));
    buf_free(&out);
    buf_free(&err);
    tu_rmtree_free(dir);
}

static void test_json(void **state)
{
    (void)state;
    struct buf out, err;
    char *argv[] = {JB_TOOL, "gguf-info", "--json", SAMPLE, NULL};
    assert_int_equal(run(argv, NULL, &out, &err), 0);
    json_error_t je;
    json_t *root = json_loads(buf_str(&out), 0, &je);
    if (!root)
        fprintf(stderr, "line %d: %s\n", je.line, je.text);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "version")), 3);
    assert_int_equal(json_integer_value(json_object_get(root, "n_tensors")), 9);
    assert_int_equal(json_integer_value(json_object_get(root, "n_params")), 4099);
    assert_int_equal(json_integer_value(json_object_get(root, "tensor_bytes")), 6000);
    json_t *meta = json_object_get(root, "metadata");
    assert_int_equal(json_integer_value(json_object_get(meta, "t.i32")), -123456);
    assert_true(json_is_true(json_object_get(meta, "t.bool")));
    assert_int_equal(json_array_size(json_object_get(meta, "t.arr_str")), 3);
    json_t *nested = json_object_get(meta, "t.nested");
    assert_int_equal(json_array_size(nested), 3);
    assert_string_equal(
        json_string_value(json_array_get(json_array_get(json_array_get(nested, 2), 0), 1)), "yz");
    json_t *t = json_array_get(json_object_get(root, "tensors"), 7);
    assert_string_equal(json_string_value(json_object_get(t, "name")), "blk.7.Q6_K.weight");
    assert_string_equal(json_string_value(json_object_get(t, "type")), "Q6_K");
    assert_int_equal(json_integer_value(json_object_get(t, "bytes")), 420);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(t, "shape"), 0)), 256);
    json_decref(root);
    buf_free(&out);
    buf_free(&err);
}

static void test_model_name(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("info");
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char manifest[512], blob[FS_PATH_MAX];
    snprintf(manifest, sizeof manifest,
             "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
             "\"digest\":\"sha256:%s\"}]}",
             hex);
    tu_write(dir, "manifests/registry.ollama.ai/library/sample/1b", manifest);
    snprintf(blob, sizeof blob, "%s/blobs", dir);
    tu_write(dir, "blobs/.keep", "");
    char target[FS_PATH_MAX];
    snprintf(target, sizeof target, "%s/sha256-%s", blob, hex);
    struct buf sample;
    buf_init(&sample, 0);
    char err_text[512];
    assert_int_equal(fs_read_file(SAMPLE, 0, &sample, err_text), 0);
    assert_int_equal(fs_write_atomic(target, sample.data, sample.len, err_text), 0);
    buf_free(&sample);
    char env_var[FS_PATH_MAX + 16];
    snprintf(env_var, sizeof env_var, "OLLAMA_MODELS=%s", dir);
    char *env[] = {env_var, NULL};
    struct buf out, err;
    char *argv[] = {JB_TOOL, "gguf-info", "sample:1b", NULL};
    assert_int_equal(run(argv, env, &out, &err), 0);
    assert_non_null(strstr(buf_str(&out), "(model sample:1b)"));
    assert_non_null(strstr(buf_str(&out), "blk.6.Q4_K.weight"));
    buf_free(&out);
    buf_free(&err);
    char *argv2[] = {JB_TOOL, "gguf-info", "sample:2b", NULL};
    assert_int_equal(run(argv2, env, &out, &err), 2);
    assert_non_null(strstr(buf_str(&err), "ollama pull sample:2b"));
    buf_free(&out);
    buf_free(&err);
    tu_rmtree_free(dir);
}

static void test_failures(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("info");
    /* a damaged file: exit 2, the message names the file and the offset */
    struct buf sample;
    buf_init(&sample, 0);
    char e[512];
    assert_int_equal(fs_read_file(SAMPLE, 0, &sample, e), 0);
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "cut.gguf");
    assert_int_equal(fs_write_atomic(path, sample.data, 700, e), 0);
    buf_free(&sample);
    struct buf out, err;
    char *argv[] = {JB_TOOL, "gguf-info", path, NULL};
    assert_int_equal(run(argv, NULL, &out, &err), 2);
    assert_non_null(strstr(buf_str(&err), "cut.gguf: offset "));
    assert_int_equal(out.len, 0);
    buf_free(&out);
    buf_free(&err);
    fs_path_join(path, sizeof path, dir, "missing.gguf");
    char *argv2[] = {JB_TOOL, "gguf-info", path, NULL};
    assert_int_equal(run(argv2, NULL, &out, &err), 2); /* bad input: the file is not there */
    assert_non_null(strstr(buf_str(&err), "missing.gguf"));
    buf_free(&out);
    buf_free(&err);
    char *argv3[] = {JB_TOOL, "gguf-info", NULL};
    assert_int_equal(run(argv3, NULL, &out, &err), 2);
    buf_free(&out);
    buf_free(&err);
    char *argv4[] = {JB_TOOL, "gguf-info", "--bogus", SAMPLE, NULL};
    assert_int_equal(run(argv4, NULL, &out, &err), 2);
    assert_non_null(strstr(buf_str(&err), "--bogus"));
    buf_free(&out);
    buf_free(&err);
    char *argv5[] = {JB_TOOL, "gguf-info", "--help", NULL};
    assert_int_equal(run(argv5, NULL, &out, &err), 0);
    assert_non_null(strstr(buf_str(&out), "usage: joulebench gguf-info"));
    buf_free(&out);
    buf_free(&err);
    tu_rmtree_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),       cmocka_unit_test(test_long_array),
        cmocka_unit_test(test_json),       cmocka_unit_test(test_odd_values),
        cmocka_unit_test(test_model_name), cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
