/* Synthetic models: the metadata and tensors a real qwen2 / llama file
 * has, a vocabulary the tokenizer really uses, sane weights, the same
 * bytes for the same seed, the cached default model, and the command. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/sig.h"
#include "infer/gguf.h"
#include "infer/quant.h"
#include "infer/synth.h"
#include "infer/tokenizer.h"
#include "testutil.h"

struct model {
    struct fs_map map;
    struct gguf_file f;
};

static void write_and_open(const char *path, const struct synth_options *o, struct model *m)
{
    char err[ERR_LEN];
    int rc = synth_write(path, o, err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    rc = gguf_open(path, &m->map, &m->f, err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

static uint64_t get_u(const struct gguf_file *f, const char *key)
{
    uint64_t v = 0;
    if (gguf_get_u64(f, key, &v)) {
        fprintf(stderr, "missing %s\n", key);
        fail();
    }
    return v;
}

static const struct gguf_tensor *tensor(const struct gguf_file *f, const char *name,
                                        enum ggml_type type, uint64_t ne0, uint64_t ne1)
{
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        fprintf(stderr, "missing tensor %s\n", name);
        fail();
    }
    if (t->type != type || t->ne[0] != ne0 || t->ne[1] != ne1) {
        fprintf(stderr, "%s: %s %llu x %llu\n", name, ggml_type_name(t->type),
                (unsigned long long)t->ne[0], (unsigned long long)t->ne[1]);
        fail();
    }
    assert_non_null(t->data);
    return t;
}

/* Mean and standard deviation of a tensor's values, dequantized. */
static void stats(const struct gguf_tensor *t, double *mean, double *sd)
{
    size_t n = (size_t)t->n_elements;
    float *y = malloc(n * sizeof *y);
    assert_non_null(y);
    assert_int_equal(quant_dequantize_row(t->type, t->data, y, n), 0);
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(isfinite(y[i]));
        s += y[i];
        ss += (double)y[i] * y[i];
    }
    *mean = s / (double)n;
    *sd = sqrt(ss / (double)n - *mean * *mean);
    free(y);
}

static void test_qwen2_tiny(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("synth");
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "tiny.gguf");
    struct synth_options o;
    assert_int_equal(synth_preset("tiny", &o), 0);
    struct model m;
    write_and_open(path, &o, &m);
    const struct gguf_file *f = &m.f;
    struct gguf_str s;
    assert_int_equal(gguf_get_str(f, "general.architecture", &s), 0);
    assert_true(gguf_str_eq(s, "qwen2"));
    assert_int_equal(gguf_get_str(f, "general.name", &s), 0);
    assert_true(s.len > 10 && memcmp(s.ptr, "synthetic ", 10) == 0);
    int b;
    assert_int_equal(gguf_get_bool(f, "general.joulebench.synthetic", &b), 0);
    assert_true(b);
    assert_int_equal(get_u(f, "qwen2.block_count"), 2);
    assert_int_equal(get_u(f, "qwen2.embedding_length"), 256);
    assert_int_equal(get_u(f, "qwen2.feed_forward_length"), 512);
    assert_int_equal(get_u(f, "qwen2.attention.head_count"), 4);
    assert_int_equal(get_u(f, "qwen2.attention.head_count_kv"), 2);
    assert_int_equal(get_u(f, "qwen2.context_length"), 512);
    double d;
    assert_int_equal(gguf_get_f64(f, "qwen2.rope.freq_base", &d), 0);
    assert_true(d == 1000000.0);
    assert_int_equal(gguf_get_f64(f, "qwen2.attention.layer_norm_rms_epsilon", &d), 0);
    assert_true(d > 0 && d < 1e-4);
    assert_int_equal(get_u(f, "general.file_type"), 7);
    /* tensors: real names and shapes, norms and biases in F32, tied output */
    tensor(f, "token_embd.weight", GGML_TYPE_Q8_0, 256, 1024);
    for (int l = 0; l < 2; l++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l);
        tensor(f, n, GGML_TYPE_F32, 256, 1);
        snprintf(n, sizeof n, "blk.%d.attn_q.weight", l);
        tensor(f, n, GGML_TYPE_Q8_0, 256, 256);
        snprintf(n, sizeof n, "blk.%d.attn_k.weight", l);
        tensor(f, n, GGML_TYPE_Q8_0, 256, 128);
        snprintf(n, sizeof n, "blk.%d.attn_v.weight", l);
        tensor(f, n, GGML_TYPE_Q8_0, 256, 128);
        snprintf(n, sizeof n, "blk.%d.attn_q.bias", l);
        tensor(f, n, GGML_TYPE_F32, 256, 1);
        snprintf(n, sizeof n, "blk.%d.attn_k.bias", l);
        tensor(f, n, GGML_TYPE_F32, 128, 1);
        snprintf(n, sizeof n, "blk.%d.attn_v.bias", l);
        tensor(f, n, GGML_TYPE_F32, 128, 1);
        snprintf(n, sizeof n, "blk.%d.attn_output.weight", l);
        tensor(f, n, GGML_TYPE_Q8_0, 256, 256);
        snprintf(n, sizeof n, "blk.%d.ffn_norm.weight", l);
        tensor(f, n, GGML_TYPE_F32, 256, 1);
        snprintf(n, sizeof n, "blk.%d.ffn_gate.weight", l);
        tensor(f, n, GGML_TYPE_Q8_0, 256, 512);
        snprintf(n, sizeof n, "blk.%d.ffn_up.weight", l);
        tensor(f, n, GGML_TYPE_Q8_0, 256, 512);
        snprintf(n, sizeof n, "blk.%d.ffn_down.weight", l);
        tensor(f, n, GGML_TYPE_Q8_0, 512, 256);
    }
    tensor(f, "output_norm.weight", GGML_TYPE_F32, 256, 1);
    assert_null(gguf_find_tensor(f, "output.weight"));
    assert_null(gguf_find_tensor(f, "blk.2.attn_q.weight"));
    uint64_t params = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        params += f->tensors[i].n_elements;
    assert_true(params == synth_param_count(&o));
    assert_true(params > 1000000 && params < 2000000);
    /* weights: zero-mean with the scale the generator promises */
    double mean, sd;
    stats(gguf_find_tensor(f, "blk.0.attn_q.weight"), &mean, &sd);
    assert_true(fabs(mean) < 0.01);
    assert_true(fabs(sd - 1.0 / 16.0) < 0.005); /* 1/sqrt(dim) */
    stats(gguf_find_tensor(f, "blk.1.ffn_norm.weight"), &mean, &sd);
    assert_true(fabs(mean - 1.0) < 0.01 && sd < 0.05);
    stats(gguf_find_tensor(f, "token_embd.weight"), &mean, &sd);
    assert_true(fabs(sd - 2.5 / 16.0) < 0.01); /* logits spread ~2.5 */
    gguf_close(&m.map, &m.f);
    tu_rmtree_free(dir);
}

/* The vocabulary is a working byte-level BPE: ChatML specials, merges
 * that shorten English, exact round trips. */
static void test_vocabulary(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("synth");
    char path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(path, sizeof path, dir, "tiny.gguf");
    struct synth_options o;
    synth_preset("tiny", &o);
    struct model m;
    write_and_open(path, &o, &m);
    struct tokenizer *t;
    assert_int_equal(tokenizer_from_gguf(&m.f, &t, err), 0);
    assert_int_equal(tokenizer_vocab_size(t), 1024);
    assert_string_equal(tokenizer_pre_name(t), "qwen2");
    assert_int_equal(tokenizer_template(t), TOKENIZER_TEMPLATE_CHATML);
    int im_end = tokenizer_find(t, "<|im_end|>", 10);
    assert_true(im_end >= 0);
    assert_int_equal(tokenizer_eos(t), im_end);
    assert_true(tokenizer_is_eog(t, im_end));
    assert_int_equal(tokenizer_add_bos(t), 0);
    const char *text = "The quick brown fox measures the energy of the model, token by token.";
    int *ids;
    size_t n;
    assert_int_equal(tokenizer_encode(t, text, strlen(text), 0, &ids, &n, err), 0);
    printf("%zu bytes -> %zu tokens\n", strlen(text), n);
    assert_true(n < strlen(text) / 2); /* trained merges do work */
    struct buf b = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tokenizer_decode(t, ids[i], &b), 0);
    assert_string_equal(buf_str(&b), text);
    free(ids);
    buf_reset(&b);
    assert_int_equal(tokenizer_chat_format(t, NULL, "Hi", &b), 0);
    assert_int_equal(tokenizer_encode(t, b.data, b.len, 1, &ids, &n, err), 0);
    assert_int_equal(ids[0], tokenizer_find(t, "<|im_start|>", 12));
    free(ids);
    /* every token decodes, and none is empty */
    for (int id = 0; id < 1024; id++) {
        buf_reset(&b);
        assert_int_equal(tokenizer_decode(t, id, &b), 0);
        assert_true(b.len > 0);
    }
    buf_free(&b);
    tokenizer_free(t);
    gguf_close(&m.map, &m.f);
    tu_rmtree_free(dir);
}

static void test_llama_q4k(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("synth");
    char path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(path, sizeof path, dir, "llama.gguf");
    struct synth_options o;
    synth_preset("tiny", &o);
    o.arch = "llama";
    o.type = GGML_TYPE_Q4_K;
    o.ffn_dim = 544; /* rows of 544 are not K-quant rows: Q5_0 */
    o.vocab_size = 2000;
    struct model m;
    write_and_open(path, &o, &m);
    const struct gguf_file *f = &m.f;
    assert_int_equal(get_u(f, "llama.rope.dimension_count"), 64);
    assert_int_equal(get_u(f, "llama.vocab_size"), 2000);
    tensor(f, "token_embd.weight", GGML_TYPE_Q4_K, 256, 2000);
    tensor(f, "output.weight", GGML_TYPE_Q4_K, 256, 2000);
    tensor(f, "blk.1.ffn_up.weight", GGML_TYPE_Q4_K, 256, 544);
    tensor(f, "blk.1.ffn_down.weight", GGML_TYPE_Q5_0, 544, 256);
    assert_null(gguf_find_tensor(f, "blk.0.attn_q.bias"));
    double mean, sd;
    stats(gguf_find_tensor(f, "output.weight"), &mean, &sd);
    assert_true(fabs(sd - 2.5 / 16.0) < 0.02);
    uint64_t params = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        params += f->tensors[i].n_elements;
    assert_true(params == synth_param_count(&o));
    struct tokenizer *t;
    assert_int_equal(tokenizer_from_gguf(f, &t, err), 0);
    assert_string_equal(tokenizer_pre_name(t), "llama-bpe");
    assert_int_equal(tokenizer_template(t), TOKENIZER_TEMPLATE_LLAMA3);
    assert_int_equal(tokenizer_add_bos(t), 1);
    assert_int_equal(tokenizer_bos(t), tokenizer_find(t, "<|begin_of_text|>", 17));
    assert_true(tokenizer_is_eog(t, tokenizer_find(t, "<|eot_id|>", 10)));
    assert_int_equal(tokenizer_vocab_size(t), 2000);
    tokenizer_free(t);
    gguf_close(&m.map, &m.f);
    tu_rmtree_free(dir);
}

/* The Q4_K_M mix, as llama.cpp's quantizer picks it: Q6_K for the output
 * (qwen2: the tied embedding, llama: output.weight) and for attn_v and
 * ffn_down in the layers that get more bits (the first and last eighth, and
 * every third between), Q4_K elsewhere; rows that are no multiple of 256
 * fall back, Q6_K to Q8_0 and Q4_K to Q5_0. */
static void test_q4_k_m(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("synth");
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "q4km.gguf");
    struct synth_options o;
    synth_preset("tiny", &o);
    o.type = GGML_TYPE_Q4_K;
    o.q4_k_m = 1;
    o.n_layers = 16; /* more bits: 0, 1, 4, 7, 10, 13, 14, 15 */
    o.ffn_dim = 544; /* w_down rows of 544: the fallback types */
    struct model m;
    write_and_open(path, &o, &m);
    const struct gguf_file *f = &m.f;
    assert_int_equal(get_u(f, "general.file_type"), 15);
    assert_string_equal(synth_type_name(&o), "Q4_K_M");
    tensor(f, "token_embd.weight", GGML_TYPE_Q6_K, 256, 1024);
    static const int more[] = {0, 1, 4, 7, 10, 13, 14, 15};
    size_t k = 0;
    for (int l = 0; l < o.n_layers; l++) {
        int more_bits = k < sizeof more / sizeof more[0] && more[k] == l;
        k += (size_t)more_bits;
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        tensor(f, name, more_bits ? GGML_TYPE_Q6_K : GGML_TYPE_Q4_K, 256, 128);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        tensor(f, name, more_bits ? GGML_TYPE_Q8_0 : GGML_TYPE_Q5_0, 544, 256);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        tensor(f, name, GGML_TYPE_Q4_K, 256, 256);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        tensor(f, name, GGML_TYPE_Q4_K, 256, 544);
        snprintf(name, sizeof name, "blk.%d.attn_v.bias", l);
        tensor(f, name, GGML_TYPE_F32, 128, 1);
    }
    gguf_close(&m.map, &m.f);
    /* llama: the output projection gets Q6_K, the embedding stays Q4_K */
    o.arch = "llama";
    o.n_layers = 2;
    write_and_open(path, &o, &m);
    tensor(&m.f, "output.weight", GGML_TYPE_Q6_K, 256, 1024);
    tensor(&m.f, "token_embd.weight", GGML_TYPE_Q4_K, 256, 1024);
    gguf_close(&m.map, &m.f);
    /* without the flag, Q4_K is Q4_K everywhere */
    o.q4_k_m = 0;
    write_and_open(path, &o, &m);
    tensor(&m.f, "output.weight", GGML_TYPE_Q4_K, 256, 1024);
    tensor(&m.f, "blk.0.attn_v.weight", GGML_TYPE_Q4_K, 256, 128);
    assert_int_equal(get_u(&m.f, "general.file_type"), 14);
    gguf_close(&m.map, &m.f);
    tu_rmtree_free(dir);
}

/* Every type writes, and its weights keep their scale. */
static void test_types(void **state)
{
    (void)state;
    static const enum ggml_type types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16,
                                           GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q6_K};
    char *dir = tu_tmpdir("synth");
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "t.gguf");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct synth_options o;
        synth_preset("tiny", &o);
        o.type = types[i];
        o.n_layers = 1;
        o.vocab_size = 300;
        struct model m;
        write_and_open(path, &o, &m);
        const struct gguf_tensor *t = gguf_find_tensor(&m.f, "blk.0.ffn_gate.weight");
        assert_int_equal(t->type, types[i]);
        double mean, sd;
        stats(t, &mean, &sd);
        assert_true(fabs(sd - 1.0 / 16.0) < 0.006);
        gguf_close(&m.map, &m.f);
    }
    tu_rmtree_free(dir);
}

static void test_seed(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("synth");
    char a[FS_PATH_MAX], b[FS_PATH_MAX], c[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(a, sizeof a, dir, "a.gguf");
    fs_path_join(b, sizeof b, dir, "b.gguf");
    fs_path_join(c, sizeof c, dir, "c.gguf");
    struct synth_options o;
    synth_preset("tiny", &o);
    o.n_layers = 1;
    assert_int_equal(synth_write(a, &o, err), 0);
    assert_int_equal(synth_write(b, &o, err), 0);
    o.seed = 43;
    assert_int_equal(synth_write(c, &o, err), 0);
    struct buf x = {0}, y = {0}, z = {0};
    assert_int_equal(fs_read_file(a, 0, &x, err), 0);
    assert_int_equal(fs_read_file(b, 0, &y, err), 0);
    assert_int_equal(fs_read_file(c, 0, &z, err), 0);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    assert_int_equal(x.len, z.len);
    assert_true(memcmp(x.data, z.data, x.len) != 0);
    buf_free(&x);
    buf_free(&y);
    buf_free(&z);
    tu_rmtree_free(dir);
}

static void test_bad_options(void **state)
{
    (void)state;
    char err[ERR_LEN];
    struct synth_options o;
    assert_int_equal(synth_preset("huge", &o), JB_ERR_USAGE);
    synth_preset("tiny", &o);
    o.n_heads = 3; /* 256 / 3 */
    assert_int_equal(synth_write("/nonexistent/x.gguf", &o, err), JB_ERR_USAGE);
    assert_non_null(strstr(err, "heads"));
    synth_preset("tiny", &o);
    o.n_kv_heads = 3;
    assert_int_equal(synth_write("/nonexistent/x.gguf", &o, err), JB_ERR_USAGE);
    synth_preset("tiny", &o);
    o.arch = "gpt-j";
    assert_int_equal(synth_write("/nonexistent/x.gguf", &o, err), JB_ERR_USAGE);
    synth_preset("tiny", &o);
    o.vocab_size = 100;
    assert_int_equal(synth_write("/nonexistent/x.gguf", &o, err), JB_ERR_USAGE);
    synth_preset("tiny", &o);
    o.ffn_dim = 100; /* not a multiple of 32 for Q8_0 */
    assert_int_equal(synth_write("/nonexistent/x.gguf", &o, err), JB_ERR_USAGE);
    synth_preset("tiny", &o);
    assert_int_not_equal(synth_write("/nonexistent/x.gguf", &o, err), 0);
    assert_non_null(strstr(err, "/nonexistent/x.gguf"));
    /* the 0.5b preset has the shape of Qwen2.5-0.5B */
    synth_preset("0.5b", &o);
    uint64_t p = synth_param_count(&o);
    assert_true(p > 493000000 && p < 495000000);
    synth_options_default(&o);
    p = synth_param_count(&o);
    assert_true(p > 20000000 && p < 40000000);
}

static void test_default_model(void **state)
{
    (void)state;
    char *cache = tu_tmpdir("cache");
    char *old = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", cache, 1);
    char path[FS_PATH_MAX], path2[FS_PATH_MAX], err[ERR_LEN];
    int rc = synth_default_model(path, sizeof path, err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_true(strncmp(path, cache, strlen(cache)) == 0);
    assert_non_null(strstr(path, "/joulebench/"));
    struct stat st1, st2;
    assert_int_equal(stat(path, &st1), 0);
    /* the second call finds the file and does not write it again */
    assert_int_equal(synth_default_model(path2, sizeof path2, err), 0);
    assert_string_equal(path, path2);
    assert_int_equal(stat(path2, &st2), 0);
    assert_true(st1.st_ino == st2.st_ino && st1.st_mtime == st2.st_mtime);
    struct fs_map map;
    struct gguf_file f;
    assert_int_equal(gguf_open(path, &map, &f, err), 0);
    int synthetic = 0;
    assert_int_equal(gguf_get_bool(&f, "general.joulebench.synthetic", &synthetic), 0);
    assert_true(synthetic);
    gguf_close(&map, &f);
    if (old)
        setenv("XDG_CACHE_HOME", old, 1);
    else
        unsetenv("XDG_CACHE_HOME");
    free(old);
    tu_rmtree_free(cache);
}

static void test_command(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("synth");
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "cli.gguf");
    struct buf out = {0}, err = {0};
    char *argv[] = {JB_TOOL,    "synth", "--preset", "tiny", "--arch", "llama", "--type", "q6_k",
                    "--layers", "1",     "--seed",   "7",    "-o",     path,    NULL};
    int rc = tu_run(argv, NULL, &out, &err);
    if (rc)
        fprintf(stderr, "%s", buf_str(&err));
    assert_int_equal(rc, 0);
    assert_non_null(strstr(buf_str(&out), "synthetic model"));
    struct fs_map map;
    struct gguf_file f;
    char e[ERR_LEN];
    assert_int_equal(gguf_open(path, &map, &f, e), 0);
    assert_int_equal(get_u(&f, "llama.block_count"), 1);
    assert_int_equal(get_u(&f, "general.joulebench.seed"), 7);
    assert_int_equal(gguf_find_tensor(&f, "blk.0.attn_q.weight")->type, GGML_TYPE_Q6_K);
    gguf_close(&map, &f);
    buf_free(&out);
    buf_free(&err);
    /* --type Q4_K_M: the mix, named so in the file and the message */
    char *mix[] = {JB_TOOL, "synth", "--preset", "tiny", "--type", "Q4_K_M", "-o", path, NULL};
    rc = tu_run(mix, NULL, &out, &err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(buf_str(&out), "Q4_K_M"));
    assert_int_equal(gguf_open(path, &map, &f, e), 0);
    assert_int_equal(get_u(&f, "general.file_type"), 15);
    assert_int_equal(gguf_find_tensor(&f, "token_embd.weight")->type, GGML_TYPE_Q6_K);
    assert_int_equal(gguf_find_tensor(&f, "blk.1.attn_v.weight")->type, GGML_TYPE_Q6_K);
    assert_int_equal(gguf_find_tensor(&f, "blk.1.attn_q.weight")->type, GGML_TYPE_Q4_K);
    gguf_close(&map, &f);
    buf_free(&out);
    buf_free(&err);
    char *bad[][6] = {
        {JB_TOOL, "synth", "--type", "Q3_K", NULL},
        {JB_TOOL, "synth", "--preset", "7b", NULL},
        {JB_TOOL, "synth", "--layers", "zero", NULL},
        {JB_TOOL, "synth", "--dim", "100", "--heads", NULL},
        {JB_TOOL, "synth", "--frobnicate", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tu_run(bad[i], NULL, &out, &err), 2);
        assert_true(err.len > 0);
        buf_free(&out);
        buf_free(&err);
    }
    /* a shape the architecture cannot have is bad input too */
    char *shape[] = {JB_TOOL, "synth", "--preset", "tiny", "--heads", "3", "-o", path, NULL};
    assert_int_equal(tu_run(shape, NULL, &out, &err), 2);
    assert_non_null(strstr(buf_str(&err), "heads"));
    buf_free(&out);
    buf_free(&err);

    /* -o and the shape are checked before a byte is written, with exit 2
     * and the option named: an empty name, a folder, a missing folder, a
     * symbolic link (the model would replace the link), a range the
     * command line took but the architecture does not, a model larger
     * than the disk */
    char missing[FS_PATH_MAX], link[FS_PATH_MAX], fresh[FS_PATH_MAX];
    fs_path_join(missing, sizeof missing, dir, "no/such/folder/m.gguf");
    fs_path_join(link, sizeof link, dir, "link.gguf");
    fs_path_join(fresh, sizeof fresh, dir, "fresh.gguf");
    tu_symlink(dir, "link.gguf", "cli.gguf");
    struct {
        const char *o, *opt, *needle;
        const char *extra[12];
    } cases[] = {
        {"", "-o", "-o needs a file name", {NULL}},
        {dir, "-o", "is a folder", {NULL}},
        {missing, "-o", "does not exist", {NULL}},
        {link, "-o", "not a regular file", {NULL}},
        {fresh, "--layers", "--layers must be 1 to 256, not 300", {"--layers", "300", NULL}},
        {fresh, "--ctx", "--ctx must be 16 to 1048576, not 5", {"--ctx", "5", NULL}},
        {fresh,
         "size",
         "GB free",
         {"--layers", "256", "--dim", "65536", "--ffn", "262144", "--vocab", "1000000", "--type",
          "F32", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *args[24] = {JB_TOOL, "synth", "--preset", "tiny", "-o", (char *)cases[i].o};
        int n = 6;
        for (int k = 0; cases[i].extra[k]; k++)
            args[n++] = (char *)cases[i].extra[k];
        args[n] = NULL;
        assert_int_equal(tu_run(args, NULL, &out, &err), 2);
        if (!strstr(buf_str(&err), cases[i].needle))
            fail_msg("%s: %s", cases[i].opt, buf_str(&err));
        buf_free(&out);
        buf_free(&err);
    }
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* left as it was */
    assert_false(fs_exists(fresh));
    /* the command line takes what the architecture does */
    char *big_ctx[] = {JB_TOOL, "synth", "--preset", "tiny", "--ctx", "1048576", "-o", fresh, NULL};
    assert_int_equal(tu_run(big_ctx, NULL, &out, &err), 0);
    buf_free(&out);
    buf_free(&err);
    tu_rmtree_free(dir);
}

/* Ctrl-C while a model is written: JB_ERR_INTERRUPTED, and neither the
 * model nor its temporary file is left in the folder. */
static void test_interrupted(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("synth");
    char path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(path, sizeof path, dir, "stopped.gguf");
    struct synth_options o;
    synth_preset("tiny", &o);
    sig_stop = 1;
    int rc = synth_write(path, &o, err);
    sig_reset();
    assert_int_equal(rc, JB_ERR_INTERRUPTED);
    assert_non_null(strstr(err, "was not written"));
    assert_int_equal(tu_dir_entries(dir), 0);
    tu_rmtree_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen2_tiny),  cmocka_unit_test(test_vocabulary),
        cmocka_unit_test(test_llama_q4k),   cmocka_unit_test(test_q4_k_m),
        cmocka_unit_test(test_types),       cmocka_unit_test(test_seed),
        cmocka_unit_test(test_bad_options), cmocka_unit_test(test_default_model),
        cmocka_unit_test(test_command),     cmocka_unit_test(test_interrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
