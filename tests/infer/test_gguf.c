/* The GGUF reader and writer: a round trip of every value type and tensor
 * type; the committed sample file; every truncation of it; a corpus of
 * hand-built hostile headers; random mutations. Every rejected input must
 * give JB_ERR_FORMAT with a message naming the byte offset, and nothing
 * may crash (this test runs under ASan+UBSan too). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fs.h"
#include "infer/gguf.h"
#include "infer/quant.h"
#include "testutil.h"

/* ---- a byte builder for hand-made files ---- */

struct bb {
    uint8_t *p;
    size_t n, cap;
};

static void bb_put(struct bb *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void bb_u32(struct bb *b, uint32_t v)
{
    bb_put(b, &v, 4);
}

static void bb_u64(struct bb *b, uint64_t v)
{
    bb_put(b, &v, 8);
}

static void bb_str(struct bb *b, const char *s)
{
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}

static void bb_header(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    bb_put(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

static void bb_kv_u32(struct bb *b, const char *key, uint32_t v)
{
    bb_str(b, key);
    bb_u32(b, GGUF_TYPE_UINT32);
    bb_u32(b, v);
}

/* A tensor info with one or two dimensions. */
static void bb_tensor(struct bb *b, const char *name, uint64_t ne0, uint64_t ne1, uint32_t type,
                      uint64_t offset)
{
    bb_str(b, name);
    bb_u32(b, ne1 ? 2 : 1);
    bb_u64(b, ne0);
    if (ne1)
        bb_u64(b, ne1);
    bb_u32(b, type);
    bb_u64(b, offset);
}

static void bb_pad(struct bb *b, size_t align)
{
    while (b->n % align)
        bb_put(b, "", 1);
}

static void bb_zeros(struct bb *b, size_t n)
{
    while (n--)
        bb_put(b, "", 1);
}

/* Parses and expects a format error whose message names an offset and
 * contains want. */
static void expect_reject(const struct bb *b, const char *want)
{
    struct gguf_file f;
    char err[ERR_LEN] = "";
    int rc = gguf_parse(b->p, b->n, &f, err);
    if (getenv("JB_TEST_VERBOSE"))
        printf("  %s\n", err);
    if (rc != JB_ERR_FORMAT || !strstr(err, "offset ") || !strstr(err, want)) {
        fprintf(stderr, "rc %d, message \"%s\", expected \"%s\"\n", rc, err, want);
        fail();
    }
    assert_null(f.kv);
    assert_null(f.arena);
}

/* ---- the sample file ---- */

static const uint64_t nested_inner[3] = {7, 8, 9};

/* Writes a small file with every value type (nested arrays included) and
 * one tensor of every type joulebench computes with. */
static void write_sample(const char *path, uint32_t alignment)
{
    struct gguf_writer *w;
    char err[ERR_LEN];
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    if (alignment != GGUF_DEFAULT_ALIGNMENT)
        gguf_writer_kv_u32(w, "general.alignment", alignment);
    gguf_writer_kv_str(w, "general.architecture", "llama");
    gguf_writer_kv_str(w, "general.name", "sample \xc3\xa9\xe2\x82\xac"); /* UTF-8 */
    gguf_writer_kv_u32(w, "t.u32", 4000000000u);
    gguf_writer_kv_i32(w, "t.i32", -123456);
    gguf_writer_kv_u64(w, "t.u64", 0xfedcba9876543210ull);
    gguf_writer_kv_f32(w, "t.f32", 0.15625f);
    gguf_writer_kv_bool(w, "t.bool", 1);
    struct gguf_value v;
    v.type = GGUF_TYPE_UINT8, v.v.u = 250;
    gguf_writer_kv(w, "t.u8", &v);
    v.type = GGUF_TYPE_INT8, v.v.i = -100;
    gguf_writer_kv(w, "t.i8", &v);
    v.type = GGUF_TYPE_UINT16, v.v.u = 65000;
    gguf_writer_kv(w, "t.u16", &v);
    v.type = GGUF_TYPE_INT16, v.v.i = -32000;
    gguf_writer_kv(w, "t.i16", &v);
    v.type = GGUF_TYPE_INT64, v.v.i = INT64_MIN;
    gguf_writer_kv(w, "t.i64", &v);
    v.type = GGUF_TYPE_FLOAT64, v.v.f = -2.5e300;
    gguf_writer_kv(w, "t.f64", &v);
    const char *strs[] = {"a", "", "\xf0\x9f\x98\x80"};
    gguf_writer_kv_arr_str(w, "t.arr_str", strs, 3);
    int32_t ints[] = {-1, 0, 2147483647};
    gguf_writer_kv_arr_i32(w, "t.arr_i32", ints, 3);
    float fl[] = {1.5f, -0.0f};
    gguf_writer_kv_arr_f32(w, "t.arr_f32", fl, 2);
    /* fixed-size arrays of the other element types */
    static const uint8_t u8s[] = {1, 2, 255};
    static const int16_t i16s[] = {-2, 3};
    static const double f64s[] = {0.25, -8.0};
    static const uint8_t bools[] = {1, 0, 1};
    v.type = GGUF_TYPE_ARRAY;
    v.v.arr.elem = GGUF_TYPE_UINT8, v.v.arr.n = 3, v.v.arr.data = u8s;
    gguf_writer_kv(w, "t.arr_u8", &v);
    v.v.arr.elem = GGUF_TYPE_INT16, v.v.arr.n = 2, v.v.arr.data = (const uint8_t *)i16s;
    gguf_writer_kv(w, "t.arr_i16", &v);
    v.v.arr.elem = GGUF_TYPE_FLOAT64, v.v.arr.n = 2, v.v.arr.data = (const uint8_t *)f64s;
    gguf_writer_kv(w, "t.arr_f64", &v);
    v.v.arr.elem = GGUF_TYPE_BOOL, v.v.arr.n = 3, v.v.arr.data = bools;
    gguf_writer_kv(w, "t.arr_bool", &v);
    v.v.arr.elem = GGUF_TYPE_UINT64, v.v.arr.n = 0, v.v.arr.data = NULL;
    gguf_writer_kv(w, "t.arr_empty", &v);
    /* [[7, 8, 9], [], [["x", "yz"]]] */
    struct gguf_str xs[2] = {{"x", 1}, {"yz", 2}};
    struct gguf_value deepest = {.type = GGUF_TYPE_ARRAY};
    deepest.v.arr.elem = GGUF_TYPE_STRING, deepest.v.arr.n = 2, deepest.v.arr.strs = xs;
    struct gguf_value items[3];
    memset(items, 0, sizeof items);
    items[0].type = GGUF_TYPE_ARRAY, items[0].v.arr.elem = GGUF_TYPE_UINT64;
    items[0].v.arr.n = 3, items[0].v.arr.data = (const uint8_t *)nested_inner;
    items[1].type = GGUF_TYPE_ARRAY, items[1].v.arr.elem = GGUF_TYPE_INT32, items[1].v.arr.n = 0;
    items[2].type = GGUF_TYPE_ARRAY, items[2].v.arr.elem = GGUF_TYPE_ARRAY;
    items[2].v.arr.n = 1, items[2].v.arr.items = &deepest;
    memset(&v, 0, sizeof v);
    v.type = GGUF_TYPE_ARRAY, v.v.arr.elem = GGUF_TYPE_ARRAY, v.v.arr.n = 3, v.v.arr.items = items;
    gguf_writer_kv(w, "t.nested", &v);

    static const enum ggml_type types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16,
                                           GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q8_0,
                                           GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
    char name[64];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        uint64_t ne[2] = {256, 2};
        snprintf(name, sizeof name, "blk.%zu.%s.weight", i, ggml_type_name(types[i]));
        assert_int_equal(gguf_writer_tensor(w, name, types[i], 2, ne), 0);
    }
    uint64_t ne1 = 3;
    gguf_writer_tensor(w, "output_norm.weight", GGML_TYPE_F32, 1, &ne1);
    /* data: a ramp quantized to each type, written in odd-sized chunks */
    float x[512];
    for (int i = 0; i < 512; i++)
        x[i] = sinf((float)i * 0.37f) * (float)(1 + i % 5);
    uint8_t q[2048];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t nb = quant_row_bytes(types[i], 512);
        assert_int_equal(quant_quantize_row(types[i], x, q, 512), 0);
        size_t done = 0;
        while (done < nb) {
            size_t n = nb - done < 77 ? nb - done : 77;
            assert_int_equal(gguf_writer_data(w, q + done, n), 0);
            done += n;
        }
    }
    float norm[3] = {1.0f, 2.0f, 3.0f};
    assert_int_equal(gguf_writer_data(w, norm, sizeof norm), 0);
    int rc = gguf_writer_finish(w, err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

static void load(const char *path, struct buf *b)
{
    char err[ERR_LEN];
    buf_init(b, 0);
    int rc = fs_read_file(path, 0, b, err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

static void check_sample(const struct gguf_file *f, uint64_t alignment)
{
    uint64_t u;
    int64_t i;
    double d;
    int bo;
    struct gguf_str s;
    const struct gguf_value *a;
    assert_int_equal(f->version, 3);
    assert_int_equal(f->alignment, alignment);
    assert_int_equal(f->data_offset % alignment, 0);
    assert_int_equal(gguf_get_str(f, "general.name", &s), 0);
    assert_true(gguf_str_eq(s, "sample \xc3\xa9\xe2\x82\xac"));
    assert_int_equal(gguf_get_u64(f, "t.u32", &u), 0);
    assert_true(u == 4000000000u);
    assert_int_equal(gguf_get_f64(f, "t.i32", &d), 0);
    assert_true(d == -123456.0);
    assert_int_equal(gguf_get_u64(f, "t.i32", &u), JB_ERR_FORMAT); /* negative */
    assert_int_equal(gguf_get_u64(f, "t.u64", &u), 0);
    assert_true(u == 0xfedcba9876543210ull);
    assert_int_equal(gguf_get_f64(f, "t.f32", &d), 0);
    assert_true(d == 0.15625);
    assert_int_equal(gguf_get_bool(f, "t.bool", &bo), 0);
    assert_int_equal(bo, 1);
    assert_int_equal(gguf_get_u64(f, "t.u8", &u), 0);
    assert_int_equal(u, 250);
    assert_int_equal(gguf_find_kv(f, "t.i8")->value.v.i, -100);
    assert_int_equal(gguf_find_kv(f, "t.i8")->value.type, GGUF_TYPE_INT8);
    assert_int_equal(gguf_get_u64(f, "t.u16", &u), 0);
    assert_int_equal(u, 65000);
    assert_int_equal(gguf_find_kv(f, "t.i16")->value.v.i, -32000);
    assert_true(gguf_find_kv(f, "t.i64")->value.v.i == INT64_MIN);
    assert_int_equal(gguf_get_f64(f, "t.f64", &d), 0);
    assert_true(d == -2.5e300);
    assert_int_equal(gguf_get_str(f, "t.u32", &s), JB_ERR_FORMAT);
    assert_int_equal(gguf_get_u64(f, "no.such.key", &u), JB_ERR_NOTFOUND);
    assert_int_equal(gguf_get_bool(f, "t.u8", &bo), JB_ERR_FORMAT);

    assert_int_equal(gguf_get_arr(f, "t.arr_str", &a), 0);
    assert_int_equal(a->v.arr.elem, GGUF_TYPE_STRING);
    assert_int_equal(a->v.arr.n, 3);
    assert_true(gguf_str_eq(a->v.arr.strs[0], "a"));
    assert_true(gguf_str_eq(a->v.arr.strs[1], ""));
    assert_true(gguf_str_eq(a->v.arr.strs[2], "\xf0\x9f\x98\x80"));
    assert_int_equal(gguf_get_arr(f, "t.arr_i32", &a), 0);
    assert_int_equal(gguf_arr_get_int(a, 0, &i), 0);
    assert_int_equal(i, -1);
    assert_int_equal(gguf_arr_get_int(a, 2, &i), 0);
    assert_int_equal(i, 2147483647);
    assert_int_equal(gguf_arr_get_int(a, 3, &i), JB_ERR_USAGE);
    assert_int_equal(gguf_arr_get_f64(a, 0, &d), 0);
    assert_true(d == -1.0);
    assert_int_equal(gguf_get_arr(f, "t.arr_f32", &a), 0);
    assert_int_equal(gguf_arr_get_f64(a, 0, &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(gguf_arr_get_int(a, 0, &i), JB_ERR_FORMAT);
    assert_int_equal(gguf_get_arr(f, "t.arr_u8", &a), 0);
    assert_int_equal(gguf_arr_get_int(a, 2, &i), 0);
    assert_int_equal(i, 255);
    assert_int_equal(gguf_get_arr(f, "t.arr_i16", &a), 0);
    assert_int_equal(gguf_arr_get_int(a, 0, &i), 0);
    assert_int_equal(i, -2);
    assert_int_equal(gguf_get_arr(f, "t.arr_f64", &a), 0);
    assert_int_equal(gguf_arr_get_f64(a, 1, &d), 0);
    assert_true(d == -8.0);
    assert_int_equal(gguf_get_arr(f, "t.arr_bool", &a), 0);
    assert_int_equal(a->v.arr.n, 3);
    assert_int_equal(a->v.arr.data[1], 0);
    assert_int_equal(gguf_get_arr(f, "t.arr_empty", &a), 0);
    assert_int_equal(a->v.arr.n, 0);
    assert_int_equal(a->v.arr.elem, GGUF_TYPE_UINT64);
    assert_int_equal(gguf_get_arr(f, "t.nested", &a), 0);
    assert_int_equal(a->v.arr.elem, GGUF_TYPE_ARRAY);
    assert_int_equal(a->v.arr.n, 3);
    assert_int_equal(gguf_arr_get_int(&a->v.arr.items[0], 1, &i), 0);
    assert_int_equal(i, 8);
    assert_int_equal(a->v.arr.items[1].v.arr.n, 0);
    const struct gguf_value *in = &a->v.arr.items[2];
    assert_int_equal(in->v.arr.elem, GGUF_TYPE_ARRAY);
    assert_int_equal(in->v.arr.n, 1);
    assert_true(gguf_str_eq(in->v.arr.items[0].v.arr.strs[1], "yz"));

    assert_int_equal(f->n_tensors, 9);
    const struct gguf_tensor *t = gguf_find_tensor(f, "blk.6.Q4_K.weight");
    assert_non_null(t);
    assert_int_equal(t->type, GGML_TYPE_Q4_K);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 256);
    assert_int_equal(t->ne[1], 2);
    assert_int_equal(t->n_elements, 512);
    assert_int_equal(t->size_bytes, 288);
    assert_non_null(t->data);
    assert_int_equal(((const uint8_t *)t->data - f->base) % alignment, 0);
    assert_null(gguf_find_tensor(f, "blk.6.Q4_K"));
    /* the data of each tensor dequantizes to what was written */
    float x[512], y[512];
    uint8_t q[2048];
    for (int k = 0; k < 512; k++)
        x[k] = sinf((float)k * 0.37f) * (float)(1 + k % 5);
    for (uint64_t ti = 0; ti < 8; ti++) {
        t = &f->tensors[ti];
        assert_int_equal(quant_quantize_row(t->type, x, q, 512), 0);
        assert_memory_equal(q, t->data, t->size_bytes);
        assert_int_equal(quant_dequantize_row(t->type, t->data, y, 512), 0);
    }
    t = gguf_find_tensor(f, "output_norm.weight");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 1);
    assert_int_equal(t->ne[1], 1);
    float norm[3];
    memcpy(norm, t->data, sizeof norm);
    assert_true(norm[2] == 3.0f);
}

static void test_round_trip(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("gguf");
    char path[FS_PATH_MAX];
    uint32_t aligns[] = {32, 64, 8};
    for (int k = 0; k < 3; k++) {
        fs_path_join(path, sizeof path, dir, "sample.gguf");
        write_sample(path, aligns[k]);
        struct fs_map map;
        struct gguf_file f;
        char err[ERR_LEN];
        int rc = gguf_open(path, &map, &f, err);
        if (rc)
            fprintf(stderr, "%s\n", err);
        assert_int_equal(rc, 0);
        check_sample(&f, aligns[k]);
        gguf_close(&map, &f);
    }
    tu_rmtree_free(dir);
}

/* The committed sample (a fuzzing seed) parses, and the writer still
 * produces it byte for byte. */
static void test_committed_sample(void **state)
{
    (void)state;
    struct buf want;
    load(JB_TEST_DATA "/gguf/sample.gguf", &want);
    struct gguf_file f;
    char err[ERR_LEN];
    assert_int_equal(gguf_parse(want.data, want.len, &f, err), 0);
    check_sample(&f, 32);
    gguf_free(&f);
    char *dir = tu_tmpdir("gguf");
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "sample.gguf");
    write_sample(path, 32);
    struct buf got;
    load(path, &got);
    if (got.len != want.len || memcmp(got.data, want.data, want.len) != 0)
        fprintf(stderr, "the writer's output differs from the committed sample; if the "
                        "quantizers changed on purpose, regenerate it with: test_gguf "
                        "--write-sample tests/data/gguf/sample.gguf\n");
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    buf_free(&got);
    buf_free(&want);
    tu_rmtree_free(dir);
}

/* Every prefix of the sample is rejected with an offset, except those that
 * still hold every tensor's data (only the final padding is cut). */
static void test_truncated(void **state)
{
    (void)state;
    struct buf b;
    load(JB_TEST_DATA "/gguf/sample.gguf", &b);
    struct gguf_file f;
    char err[ERR_LEN];
    assert_int_equal(gguf_parse(b.data, b.len, &f, err), 0);
    uint64_t data_end = 0;
    for (uint64_t i = 0; i < f.n_tensors; i++) {
        uint64_t end = f.data_offset + f.tensors[i].offset + f.tensors[i].size_bytes;
        data_end = end > data_end ? end : data_end;
    }
    gguf_free(&f);
    assert_true(data_end <= b.len);
    for (size_t cut = 0; cut < b.len; cut++) {
        /* a heap copy of exactly cut bytes, so ASan sees any overread */
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, b.data, cut);
        err[0] = '\0';
        int rc = gguf_parse(copy, cut, &f, err);
        if (cut >= data_end) {
            assert_int_equal(rc, 0);
            gguf_free(&f);
        } else {
            if (rc != JB_ERR_FORMAT || !strstr(err, "offset ")) {
                fprintf(stderr, "cut %zu: rc %d: %s\n", cut, rc, err);
                fail();
            }
        }
        free(copy);
    }
    buf_free(&b);
}

static void test_hostile_headers(void **state)
{
    (void)state;
    struct bb b = {0};

    expect_reject(&b, "too short"); /* empty */
    bb_put(&b, "GGML", 4);
    bb_u32(&b, 3);
    bb_zeros(&b, 20);
    expect_reject(&b, "not a GGUF file");
    b.n = 0;
    bb_header(&b, 1, 0, 0);
    bb_zeros(&b, 20);
    expect_reject(&b, "version 1");
    b.n = 0;
    bb_header(&b, 0x03000000u, 0, 0);
    bb_zeros(&b, 20);
    expect_reject(&b, "big-endian");
    b.n = 0;
    bb_header(&b, 4, 0, 0);
    bb_zeros(&b, 20);
    expect_reject(&b, "unknown GGUF version 4");
    b.n = 0;
    bb_header(&b, 3, 0, UINT64_MAX);
    bb_zeros(&b, 20);
    expect_reject(&b, "metadata pairs cannot fit");
    b.n = 0;
    bb_header(&b, 3, 1ull << 62, 0);
    bb_zeros(&b, 20);
    expect_reject(&b, "tensors cannot fit");

    /* string lengths: past the end, past the limit */
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, UINT64_MAX);
    bb_zeros(&b, 20);
    expect_reject(&b, "over the limit");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, 100);
    bb_zeros(&b, 20);
    expect_reject(&b, "runs past the end");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, 0);
    bb_u32(&b, GGUF_TYPE_UINT8);
    bb_put(&b, "\x01", 1);
    bb_zeros(&b, 20);
    expect_reject(&b, "empty key");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, 13);
    bb_zeros(&b, 20);
    expect_reject(&b, "unknown value type 13");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, GGUF_TYPE_BOOL);
    bb_put(&b, "\x02", 1);
    bb_zeros(&b, 20);
    expect_reject(&b, "not 0 or 1");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, GGUF_TYPE_STRING);
    bb_u64(&b, (uint64_t)GGUF_MAX_STRING + 1);
    bb_zeros(&b, 20);
    expect_reject(&b, "over the limit");

    /* arrays: counts the file cannot hold, unknown element type, nesting */
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, GGUF_TYPE_ARRAY);
    bb_u32(&b, GGUF_TYPE_UINT64);
    bb_u64(&b, 1ull << 61);
    bb_u64(&b, 0);
    bb_zeros(&b, 20);
    expect_reject(&b, "cannot fit");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, GGUF_TYPE_ARRAY);
    bb_u32(&b, GGUF_TYPE_STRING);
    bb_u64(&b, 1000000);
    bb_str(&b, "x");
    bb_zeros(&b, 20);
    expect_reject(&b, "cannot fit");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, GGUF_TYPE_ARRAY);
    bb_u32(&b, 77);
    bb_u64(&b, 1);
    bb_zeros(&b, 20);
    expect_reject(&b, "unknown array element type 77");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, GGUF_TYPE_ARRAY);
    for (int d = 0; d < 1000; d++) { /* 1000 levels of one-element arrays */
        bb_u32(&b, GGUF_TYPE_ARRAY);
        bb_u64(&b, 1);
    }
    bb_zeros(&b, 20);
    expect_reject(&b, "nested deeper");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, GGUF_TYPE_ARRAY);
    bb_u32(&b, GGUF_TYPE_STRING);
    bb_u64(&b, 2);
    bb_str(&b, "ok");
    bb_u64(&b, 1ull << 40);
    bb_zeros(&b, 20);
    expect_reject(&b, "element 1");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, GGUF_TYPE_ARRAY);
    bb_u32(&b, GGUF_TYPE_BOOL);
    bb_u64(&b, 2);
    bb_put(&b, "\x01\x07", 2);
    bb_zeros(&b, 20);
    expect_reject(&b, "not 0 or 1");

    /* duplicate keys; alignment that is not a power of two or not a number */
    b.n = 0;
    bb_header(&b, 3, 0, 2);
    bb_kv_u32(&b, "general.x", 1);
    bb_kv_u32(&b, "general.x", 2);
    bb_zeros(&b, 20);
    expect_reject(&b, "appears twice");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_kv_u32(&b, "general.alignment", 48);
    bb_zeros(&b, 20);
    expect_reject(&b, "not a power of two");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_kv_u32(&b, "general.alignment", 0);
    bb_zeros(&b, 20);
    expect_reject(&b, "not a power of two");
    /* the spec asks for a multiple of 8: 1 would leave F32 weights unaligned */
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_kv_u32(&b, "general.alignment", 1);
    bb_zeros(&b, 20);
    expect_reject(&b, "power of two from 8");
    b.n = 0;
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "general.alignment");
    bb_u32(&b, GGUF_TYPE_STRING);
    bb_str(&b, "32");
    bb_zeros(&b, 20);
    expect_reject(&b, "unsigned integer");
    free(b.p);
}

/* A header with one metadata pair and the given tensor infos, padded, then
 * data_bytes of data. */
static void tensors_file(struct bb *b, int n_tensors)
{
    b->n = 0;
    bb_header(b, 3, (uint64_t)n_tensors, 1);
    bb_kv_u32(b, "general.alignment", 32);
}

static void finish_file(struct bb *b, size_t data_bytes)
{
    bb_pad(b, 32);
    for (size_t i = 0; i < data_bytes; i++)
        bb_put(b, "\x55", 1);
}

static void test_hostile_tensors(void **state)
{
    (void)state;
    struct bb b = {0};
    struct gguf_file f;
    char err[ERR_LEN];

    /* a valid two-tensor file first: the cases below change one thing */
    tensors_file(&b, 2);
    bb_tensor(&b, "a", 32, 2, GGML_TYPE_Q8_0, 0); /* 68 bytes */
    bb_tensor(&b, "b", 8, 0, GGML_TYPE_F32, 96);  /* 32 bytes */
    finish_file(&b, 128);
    assert_int_equal(gguf_parse(b.p, b.n, &f, err), 0);
    assert_int_equal(f.tensors[0].size_bytes, 68);
    assert_int_equal(f.tensors[1].size_bytes, 32);
    gguf_free(&f);

    tensors_file(&b, 2);
    bb_tensor(&b, "a", 32, 2, GGML_TYPE_Q8_0, 0);
    bb_tensor(&b, "b", 8, 0, GGML_TYPE_F32, 64); /* starts inside a */
    finish_file(&b, 128);
    expect_reject(&b, "overlaps tensor 'a'");

    tensors_file(&b, 2);
    bb_tensor(&b, "a", 32, 2, GGML_TYPE_Q8_0, 0);
    bb_tensor(&b, "b", 8, 0, GGML_TYPE_F32, 40); /* not a multiple of 32 */
    finish_file(&b, 128);
    expect_reject(&b, "not a multiple of the alignment");

    tensors_file(&b, 2);
    bb_tensor(&b, "a", 32, 2, GGML_TYPE_Q8_0, 0);
    bb_tensor(&b, "b", 8, 0, GGML_TYPE_F32, 96);
    finish_file(&b, 127); /* one byte short */
    expect_reject(&b, "run past the end of the file");

    tensors_file(&b, 1);
    bb_tensor(&b, "a", 8, 0, GGML_TYPE_F32, UINT64_MAX - 31); /* offset wraps */
    finish_file(&b, 64);
    expect_reject(&b, "run past the end of the file");

    tensors_file(&b, 1);
    bb_tensor(&b, "a", 1ull << 32, 1ull << 32, GGML_TYPE_F32, 0);
    finish_file(&b, 64);
    expect_reject(&b, "overflows");

    tensors_file(&b, 1);
    bb_tensor(&b, "a", 1ull << 60, 1, GGML_TYPE_F32, 0); /* fits in memory terms only */
    finish_file(&b, 64);
    expect_reject(&b, "run past the end");

    tensors_file(&b, 1);
    bb_tensor(&b, "a", 1ull << 63, 0, GGML_TYPE_F32, 0);
    finish_file(&b, 64);
    expect_reject(&b, "past 2^63");

    tensors_file(&b, 1);
    bb_tensor(&b, "a", 33, 0, GGML_TYPE_Q8_0, 0);
    finish_file(&b, 64);
    expect_reject(&b, "not a multiple of Q8_0's block");

    tensors_file(&b, 1);
    bb_tensor(&b, "a", 32, 0, 99, 0);
    finish_file(&b, 64);
    expect_reject(&b, "unknown tensor type 99");

    tensors_file(&b, 2);
    bb_tensor(&b, "a", 8, 0, GGML_TYPE_F32, 0);
    bb_tensor(&b, "a", 8, 0, GGML_TYPE_F32, 32);
    finish_file(&b, 64);
    expect_reject(&b, "came before");

    tensors_file(&b, 1);
    bb_str(&b, "a");
    bb_u32(&b, 5);
    finish_file(&b, 64);
    expect_reject(&b, "n_dims is 5");

    tensors_file(&b, 1);
    bb_str(&b, "a");
    bb_u32(&b, 0);
    finish_file(&b, 64);
    expect_reject(&b, "n_dims is 0");

    tensors_file(&b, 1);
    bb_u64(&b, GGUF_MAX_NAME + 1);
    finish_file(&b, 600);
    expect_reject(&b, "over the limit");

    /* a type whose size joulebench knows but cannot compute with parses
     * with its data bounded; one it does not know parses without data */
    tensors_file(&b, 2);
    bb_tensor(&b, "k5", 256, 0, GGML_TYPE_Q5_K, 0); /* 176 bytes */
    bb_tensor(&b, "iq", 256, 0, 16 /* IQ2_XXS */, 192);
    finish_file(&b, 192);
    assert_int_equal(gguf_parse(b.p, b.n, &f, err), 0);
    assert_int_equal(f.tensors[0].size_bytes, 176);
    assert_non_null(f.tensors[0].data);
    assert_int_equal(f.tensors[1].size_bytes, 0);
    assert_null(f.tensors[1].data);
    assert_string_equal(ggml_type_name(f.tensors[1].type), "IQ2_XXS");
    gguf_free(&f);
    free(b.p);
}

/* Random byte changes to the sample: parse must never crash, and any
 * rejection names an offset. */
static void test_mutations(void **state)
{
    (void)state;
    struct buf b;
    load(JB_TEST_DATA "/gguf/sample.gguf", &b);
    uint64_t rng = 12345;
    int rejected = 0;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t *copy = malloc(b.len);
        assert_non_null(copy);
        memcpy(copy, b.data, b.len);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t at = (size_t)(rng % b.len);
            /* mostly the header, where the structure is */
            if (iter % 3)
                at %= 900;
            copy[at] = (uint8_t)(rng >> 32) ^ (iter % 2 ? 0xff : (uint8_t)(1u << (rng % 8)));
        }
        struct gguf_file f;
        char err[ERR_LEN] = "";
        int rc = gguf_parse(copy, b.len, &f, err);
        if (rc) {
            rejected++;
            if (!strstr(err, "offset ")) {
                fprintf(stderr, "iteration %d: rc %d: %s\n", iter, rc, err);
                fail();
            }
        } else {
            /* whatever was accepted is internally consistent */
            for (uint64_t i = 0; i < f.n_tensors; i++) {
                const struct gguf_tensor *t = &f.tensors[i];
                if (t->data)
                    assert_true((const uint8_t *)t->data + t->size_bytes <= copy + b.len);
            }
            gguf_free(&f);
        }
        free(copy);
    }
    printf("mutations rejected: %d of 3000\n", rejected);
    assert_true(rejected > 100);
    buf_free(&b);
}

/* A file whose keys collide under a fixed hash: the index still spreads
 * them (a fixed FNV-1a seed let such a file of a few megabytes take
 * minutes to parse), and every key is found. */
static void test_colliding_keys(void **state)
{
    (void)state;
    static char keys[TU_N_COLLIDE][40];
    tu_colliding_keys(keys);
    char *dir = tu_tmpdir("gguf");
    char path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(path, sizeof path, dir, "collide.gguf");
    struct gguf_writer *w;
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    for (int i = 0; i < TU_N_COLLIDE; i++)
        gguf_writer_kv_u32(w, keys[i], (uint32_t)i);
    assert_int_equal(gguf_writer_finish(w, err), 0);
    struct fs_map map;
    struct gguf_file f;
    assert_int_equal(gguf_open(path, &map, &f, err), 0);
    assert_int_equal(f.n_kv, TU_N_COLLIDE);
    assert_true(gguf_index_longest_probe(&f) < 64);
    for (int i = 0; i < TU_N_COLLIDE; i += 97) {
        uint64_t v;
        assert_int_equal(gguf_get_u64(&f, keys[i], &v), 0);
        assert_int_equal(v, (uint64_t)i);
    }
    gguf_close(&map, &f);
    tu_rmtree_free(dir);
}

static void test_writer_errors(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("gguf");
    char path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(path, sizeof path, dir, "w.gguf");
    struct gguf_writer *w;
    uint64_t ne[1] = {32};

    /* missing data: finish fails, nothing is left behind */
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    gguf_writer_tensor(w, "a", GGML_TYPE_F32, 1, ne);
    gguf_writer_data(w, "abcd", 4);
    assert_int_equal(gguf_writer_finish(w, err), JB_ERR_STATE);
    assert_non_null(strstr(err, "missing 124 bytes"));
    assert_false(fs_exists(path));

    /* too much data, a duplicate key, metadata after the data began */
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    gguf_writer_tensor(w, "a", GGML_TYPE_F32, 1, ne);
    uint8_t data[200] = {0};
    assert_int_equal(gguf_writer_data(w, data, 200), JB_ERR_USAGE);
    assert_int_equal(gguf_writer_kv_u32(w, "x", 1), JB_ERR_USAGE); /* sticky */
    assert_int_not_equal(gguf_writer_finish(w, err), 0);
    assert_non_null(strstr(err, "past the last declared tensor"));

    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    gguf_writer_kv_u32(w, "x", 1);
    assert_int_equal(gguf_writer_kv_str(w, "x", "again"), JB_ERR_USAGE);
    assert_int_not_equal(gguf_writer_finish(w, err), 0);
    assert_non_null(strstr(err, "written twice"));

    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    gguf_writer_tensor(w, "a", GGML_TYPE_F32, 1, ne);
    gguf_writer_data(w, data, 64);
    assert_int_equal(gguf_writer_kv_u32(w, "late", 1), JB_ERR_STATE);
    gguf_writer_abort(w);
    assert_false(fs_exists(path));

    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    uint64_t bad[1] = {33};
    assert_int_equal(gguf_writer_tensor(w, "q", GGML_TYPE_Q8_0, 1, bad), JB_ERR_USAGE);
    gguf_writer_abort(w);

    /* a tensor whose byte size overflows (its element count does not) is
     * refused, as the reader would refuse the file */
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    uint64_t huge[1] = {(uint64_t)1 << 62};
    assert_int_equal(gguf_writer_tensor(w, "big", GGML_TYPE_F32, 1, huge), JB_ERR_USAGE);
    assert_int_not_equal(gguf_writer_finish(w, err), 0);
    assert_non_null(strstr(err, "overflows"));

    /* general.alignment in any type but uint32 would disagree with the
     * padding the writer uses: refused */
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    assert_int_equal(gguf_writer_kv_u64(w, "general.alignment", 16), JB_ERR_USAGE);
    gguf_writer_abort(w);
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    assert_int_equal(gguf_writer_kv_i32(w, "general.alignment", 16), JB_ERR_USAGE);
    gguf_writer_abort(w);

    /* no temporary file is left behind by any of the failures */
    assert_int_equal(tu_dir_entries(dir), 0);

    /* a metadata-only file is valid */
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    gguf_writer_kv_str(w, "general.architecture", "none");
    assert_int_equal(gguf_writer_finish(w, err), 0);
    struct fs_map map;
    struct gguf_file f;
    assert_int_equal(gguf_open(path, &map, &f, err), 0);
    assert_int_equal(f.n_tensors, 0);
    assert_int_equal(f.n_kv, 1);
    gguf_close(&map, &f);

    /* open errors name the path */
    fs_path_join(path, sizeof path, dir, "missing.gguf");
    assert_int_equal(gguf_open(path, &map, &f, err), JB_ERR_NOTFOUND);
    assert_non_null(strstr(err, "missing.gguf"));
    tu_write(dir, "bad.gguf", "GGUF\x01");
    fs_path_join(path, sizeof path, dir, "bad.gguf");
    assert_int_equal(gguf_open(path, &map, &f, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "bad.gguf: offset 4: version"));
    tu_rmtree_free(dir);
}

int main(int argc, char **argv)
{
    /* `test_gguf --write-sample PATH` regenerates the committed sample */
    if (argc == 3 && strcmp(argv[1], "--write-sample") == 0) {
        write_sample(argv[2], 32);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_committed_sample),
        cmocka_unit_test(test_truncated),       cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_hostile_tensors), cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_writer_errors),   cmocka_unit_test(test_colliding_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
