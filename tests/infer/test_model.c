/*
 * The forward pass against a plain reference written here: tiny llama and
 * qwen2 models (tests/support/tinymodel.c) computed by the engine and by
 * straightforward double-precision code over weights dequantised by
 * quant.c. The reference models what the engine is specified to do with
 * numbers (infer.h): for quantised weights the input of every product is
 * rounded through the paired 8-bit activation format (quant.c's own
 * quantiser), and K and V are rounded to F16 as the cache stores them.
 * Both quantisers round ties away from zero, so what remains is float
 * summation order, measured as |logit difference| / max |logit| per
 * position. Float weights: at most 1e-4 at every position. Quantised
 * weights: at most 1e-4 at the median position and 5e-2 at the worst,
 * because a value that float rounding moves across a quantisation
 * boundary flips one 8-bit activation by a step (1/127 of its block's
 * largest value), which random weights carry to the logits at up to
 * ~2e-2; a wrong kernel, bias or rotation breaks every position by O(1).
 *
 * Then the engine against itself: KV-cache decode equals recomputing the
 * whole sequence, batched prefill equals token-by-token decode, thread
 * count and wait policy change nothing, greedy and seeded sampling repeat.
 */
#include <math.h>
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
#include "infer/gguf.h"
#include "infer/infer.h"
#include "infer/kernels.h"
#include "infer/quant.h"
#include "testutil.h"
#include "tinymodel.h"

/* ---- the reference ---- */

struct ref_mat {
    float *w; /* (n_out, n_in) */
    enum ggml_type type;
    int n_in, n_out;
};

struct ref_layer {
    float *attn_norm, *ffn_norm, *bq, *bk, *bv;
    struct ref_mat wq, wk, wv, wo, wg, wu, wd;
};

struct ref_model {
    int dim, n_layers, n_heads, n_kv, head_dim, ffn, vocab, neox;
    double eps;
    double inv_freq[512];
    float *embd; /* (vocab, dim) */
    float *out_norm;
    struct ref_mat out;
    struct ref_layer *L;
};

static struct fs_map g_map;
static struct gguf_file g_gguf;

static float *deq(const char *name, int *n_in, int *n_out, enum ggml_type *type)
{
    const struct gguf_tensor *t = gguf_find_tensor(&g_gguf, name);
    if (!t)
        return NULL;
    size_t n = (size_t)t->n_elements;
    float *v = malloc(n * sizeof(float));
    assert_non_null(v);
    assert_int_equal(quant_dequantize_row(t->type, t->data, v, n), 0);
    if (n_in)
        *n_in = (int)t->ne[0];
    if (n_out)
        *n_out = t->n_dims > 1 ? (int)t->ne[1] : 1;
    if (type)
        *type = t->type;
    return v;
}

static void deq_mat(const char *name, struct ref_mat *m)
{
    m->w = deq(name, &m->n_in, &m->n_out, &m->type);
    assert_non_null(m->w);
}

static uint64_t key_u64(const char *arch, const char *k)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, k);
    uint64_t v = 0;
    assert_int_equal(gguf_get_u64(&g_gguf, full, &v), 0);
    return v;
}

static void ref_load(const char *path, struct ref_model *r)
{
    char err[ERR_LEN] = "";
    memset(r, 0, sizeof(*r));
    assert_int_equal(fs_map_file(path, &g_map, err), 0);
    assert_int_equal(gguf_parse(g_map.data, g_map.size, &g_gguf, err), 0);
    struct gguf_str a;
    assert_int_equal(gguf_get_str(&g_gguf, "general.architecture", &a), 0);
    const char *arch = gguf_str_eq(a, "qwen2") ? "qwen2" : "llama";
    r->neox = strcmp(arch, "qwen2") == 0;
    r->dim = (int)key_u64(arch, "embedding_length");
    r->n_layers = (int)key_u64(arch, "block_count");
    r->n_heads = (int)key_u64(arch, "attention.head_count");
    r->n_kv = (int)key_u64(arch, "attention.head_count_kv");
    r->ffn = (int)key_u64(arch, "feed_forward_length");
    r->head_dim = r->dim / r->n_heads;
    char k[128];
    double base, eps;
    snprintf(k, sizeof k, "%s.rope.freq_base", arch);
    assert_int_equal(gguf_get_f64(&g_gguf, k, &base), 0);
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", arch);
    assert_int_equal(gguf_get_f64(&g_gguf, k, &eps), 0);
    r->eps = eps;
    float *ff = deq("rope_freqs.weight", NULL, NULL, NULL);
    for (int i = 0; i < r->head_dim / 2; i++)
        r->inv_freq[i] = pow(base, -2.0 * i / r->head_dim) / (ff ? ff[i] : 1.0);
    free(ff);
    int n_in = 0, n_out = 0;
    r->embd = deq("token_embd.weight", &n_in, &n_out, NULL);
    r->vocab = n_out;
    r->out_norm = deq("output_norm.weight", NULL, NULL, NULL);
    if (gguf_find_tensor(&g_gguf, "output.weight"))
        deq_mat("output.weight", &r->out);
    else
        deq_mat("token_embd.weight", &r->out);
    r->L = calloc((size_t)r->n_layers, sizeof(*r->L));
    for (int l = 0; l < r->n_layers; l++) {
        struct ref_layer *L = &r->L[l];
        char nm[96];
#define N(s) (snprintf(nm, sizeof nm, "blk.%d." s, l), nm)
        L->attn_norm = deq(N("attn_norm.weight"), NULL, NULL, NULL);
        L->ffn_norm = deq(N("ffn_norm.weight"), NULL, NULL, NULL);
        L->bq = deq(N("attn_q.bias"), NULL, NULL, NULL);
        L->bk = deq(N("attn_k.bias"), NULL, NULL, NULL);
        L->bv = deq(N("attn_v.bias"), NULL, NULL, NULL);
        deq_mat(N("attn_q.weight"), &L->wq);
        deq_mat(N("attn_k.weight"), &L->wk);
        deq_mat(N("attn_v.weight"), &L->wv);
        deq_mat(N("attn_output.weight"), &L->wo);
        deq_mat(N("ffn_gate.weight"), &L->wg);
        deq_mat(N("ffn_up.weight"), &L->wu);
        deq_mat(N("ffn_down.weight"), &L->wd);
#undef N
    }
}

static void ref_free(struct ref_model *r)
{
    for (int l = 0; l < r->n_layers; l++) {
        struct ref_layer *L = &r->L[l];
        float *p[] = {L->attn_norm, L->ffn_norm, L->bq,   L->bk,   L->bv,   L->wq.w,
                      L->wk.w,      L->wv.w,     L->wo.w, L->wg.w, L->wu.w, L->wd.w};
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
            free(p[i]);
    }
    free(r->L);
    free(r->embd);
    free(r->out_norm);
    free(r->out.w);
    gguf_free(&g_gguf);
    fs_unmap(&g_map);
}

/* The 8-bit activation format a weight type is paired with (infer.h). */
static enum ggml_type paired_act(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_Q8_0:
    case GGML_TYPE_Q4_0:
    case GGML_TYPE_Q5_0:
        return GGML_TYPE_Q8_0;
    case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q6_K:
        return GGML_TYPE_Q8_K;
    default:
        return GGML_TYPE_F32;
    }
}

/* y = W x (+ b) with x first rounded through the paired format. */
static void ref_matvec(const struct ref_mat *m, const float *x, const float *b, float *y)
{
    float *xa = malloc((size_t)m->n_in * sizeof(float));
    assert_non_null(xa);
    enum ggml_type at = paired_act(m->type);
    if (at == GGML_TYPE_F32) {
        memcpy(xa, x, (size_t)m->n_in * sizeof(float));
    } else {
        uint8_t *q = malloc(quant_row_bytes(at, (uint64_t)m->n_in));
        assert_non_null(q);
        assert_int_equal(quant_quantize_row(at, x, q, (size_t)m->n_in), 0);
        assert_int_equal(quant_dequantize_row(at, q, xa, (size_t)m->n_in), 0);
        free(q);
    }
    for (int r = 0; r < m->n_out; r++) {
        double s = b ? b[r] : 0.0;
        for (int i = 0; i < m->n_in; i++)
            s += (double)m->w[(size_t)r * m->n_in + i] * xa[i];
        y[r] = (float)s;
    }
    free(xa);
}

static void ref_rmsnorm(const struct ref_model *r, const float *x, const float *w, float *y)
{
    double ss = 0.0;
    for (int i = 0; i < r->dim; i++)
        ss += (double)x[i] * x[i];
    double sc = 1.0 / sqrt(ss / r->dim + r->eps);
    for (int i = 0; i < r->dim; i++)
        y[i] = (float)(x[i] * sc * w[i]);
}

static void ref_rope(const struct ref_model *r, float *v, int n_heads, int pos)
{
    int hd = r->head_dim, half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *x = v + h * hd;
        for (int i = 0; i < half; i++) {
            int a = r->neox ? i : 2 * i, b = r->neox ? i + half : 2 * i + 1;
            double th = pos * r->inv_freq[i];
            double x0 = x[a], x1 = x[b];
            x[a] = (float)(x0 * cos(th) - x1 * sin(th));
            x[b] = (float)(x0 * sin(th) + x1 * cos(th));
        }
    }
}

static float f16_round(float x)
{
    return quant_f16_to_f32(quant_f32_to_f16(x));
}

/* Logits after every position of ids: logits[(t, vocab)]. */
static float *ref_forward(const struct ref_model *r, const int *ids, int n)
{
    int dim = r->dim, hd = r->head_dim, qd = r->n_heads * hd, kvd = r->n_kv * hd;
    float *logits = malloc((size_t)n * r->vocab * sizeof(float));
    float *kc = malloc((size_t)r->n_layers * n * kvd * sizeof(float));
    float *vc = malloc((size_t)r->n_layers * n * kvd * sizeof(float));
    float *x = malloc((size_t)dim * sizeof(float)), *xb = malloc((size_t)dim * sizeof(float));
    float *q = malloc((size_t)qd * sizeof(float)), *ao = malloc((size_t)qd * sizeof(float));
    float *hg = malloc((size_t)r->ffn * sizeof(float)),
          *hu = malloc((size_t)r->ffn * sizeof(float));
    float *tmp = malloc((size_t)dim * sizeof(float));
    double *sc = malloc((size_t)n * sizeof(double));
    assert_true(logits && kc && vc && x && xb && q && ao && hg && hu && tmp && sc);
    for (int t = 0; t < n; t++) {
        memcpy(x, r->embd + (size_t)ids[t] * dim, (size_t)dim * sizeof(float));
        for (int l = 0; l < r->n_layers; l++) {
            const struct ref_layer *L = &r->L[l];
            float *kt = kc + ((size_t)l * n + t) * kvd, *vt = vc + ((size_t)l * n + t) * kvd;
            ref_rmsnorm(r, x, L->attn_norm, xb);
            ref_matvec(&L->wq, xb, L->bq, q);
            ref_matvec(&L->wk, xb, L->bk, kt);
            ref_matvec(&L->wv, xb, L->bv, vt);
            ref_rope(r, q, r->n_heads, t);
            ref_rope(r, kt, r->n_kv, t);
            for (int i = 0; i < kvd; i++) {
                kt[i] = f16_round(kt[i]);
                vt[i] = f16_round(vt[i]);
            }
            for (int h = 0; h < r->n_heads; h++) {
                int g = h / (r->n_heads / r->n_kv);
                double mx = -INFINITY, sum = 0.0;
                for (int p = 0; p <= t; p++) {
                    const float *kp = kc + ((size_t)l * n + p) * kvd + g * hd;
                    double d = 0.0;
                    for (int i = 0; i < hd; i++)
                        d += (double)q[h * hd + i] * kp[i];
                    sc[p] = d / sqrt((double)hd);
                    mx = sc[p] > mx ? sc[p] : mx;
                }
                for (int p = 0; p <= t; p++) {
                    sc[p] = exp(sc[p] - mx);
                    sum += sc[p];
                }
                for (int i = 0; i < hd; i++) {
                    double o = 0.0;
                    for (int p = 0; p <= t; p++)
                        o += sc[p] / sum * vc[((size_t)l * n + p) * kvd + g * hd + i];
                    ao[h * hd + i] = (float)o;
                }
            }
            ref_matvec(&L->wo, ao, NULL, tmp);
            for (int i = 0; i < dim; i++)
                x[i] += tmp[i];
            ref_rmsnorm(r, x, L->ffn_norm, xb);
            ref_matvec(&L->wg, xb, NULL, hg);
            ref_matvec(&L->wu, xb, NULL, hu);
            for (int i = 0; i < r->ffn; i++)
                hg[i] = (float)(hg[i] / (1.0 + exp(-(double)hg[i])) * hu[i]);
            ref_matvec(&L->wd, hg, NULL, tmp);
            for (int i = 0; i < dim; i++)
                x[i] += tmp[i];
        }
        ref_rmsnorm(r, x, r->out_norm, xb);
        ref_matvec(&r->out, xb, NULL, logits + (size_t)t * r->vocab);
    }
    free(kc);
    free(vc);
    free(x);
    free(xb);
    free(q);
    free(ao);
    free(hg);
    free(hu);
    free(tmp);
    free(sc);
    return logits;
}

/* ---- helpers ---- */

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = tu_tmpdir("model");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree_free(g_dir);
    char err[ERR_LEN];
    kern_select(KERN_AUTO, err);
    return 0;
}

static void write_model(const struct tm_options *o, char *path, size_t size)
{
    char err[ERR_LEN] = "";
    static int n;
    snprintf(path, size, "%s/m%d.gguf", g_dir, n++);
    if (tm_write(path, o, err)) {
        print_error("tm_write: %s\n", err);
        fail();
    }
}

static struct infer_model *load(const char *path, int threads, enum infer_wait wait)
{
    char err[ERR_LEN] = "";
    struct infer_options opt = {.threads = threads, .wait = wait};
    struct infer_model *m = NULL;
    if (infer_model_load(&m, path, &opt, err)) {
        print_error("infer_model_load: %s\n", err);
        fail();
    }
    return m;
}

static void make_ids(int *ids, int n, int vocab, uint64_t seed)
{
    uint64_t s = seed * 2654435761u + 7;
    for (int i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ids[i] = (int)(s % (uint64_t)vocab);
    }
}

static double max_abs(const float *x, int n)
{
    double m = 0.0;
    for (int i = 0; i < n; i++)
        m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* Largest difference relative to the reference's largest logit. */
static double rel_diff(const float *got, const float *want, int n)
{
    double d = 0.0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= d)) /* NaN counts as infinitely wrong */
            d = e == e ? e : INFINITY;
    }
    return d / (max_abs(want, n) + 1e-30);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Engine (token by token, so every position's logits are seen) against
 * the reference: the median and worst per-position difference within
 * their tolerances (see the top of the file). */
static void check_against_reference(const struct tm_options *o, double tol_median, double tol_max)
{
    char path[512], err[ERR_LEN] = "";
    write_model(o, path, sizeof path);
    struct ref_model r;
    ref_load(path, &r);
    enum { N_TOK = 12 };
    int ids[N_TOK];
    make_ids(ids, N_TOK, r.vocab, o->seed);
    float *want = ref_forward(&r, ids, N_TOK);

    struct infer_model *m = load(path, 2, INFER_WAIT_SPIN);
    const struct infer_model_info *in = infer_model_info(m);
    assert_int_equal(in->vocab_size, r.vocab);
    assert_int_equal(in->n_layers, r.n_layers);
    struct infer_session *s;
    assert_int_equal(infer_session_new(m, 64, &s, err), 0);
    double d[N_TOK];
    for (int t = 0; t < N_TOK; t++) {
        const float *logits;
        assert_int_equal(infer_decode(s, ids[t], &logits, err), 0);
        d[t] = rel_diff(logits, want + (size_t)t * r.vocab, r.vocab);
    }
    qsort(d, N_TOK, sizeof d[0], cmp_double);
    double median = d[N_TOK / 2], worst = d[N_TOK - 1];
    print_message("    %s %s (%s kernels): logit difference / max |logit|: median %.1e, worst "
                  "%.1e\n",
                  o->arch, ggml_type_name(o->type), kern_name(), median, worst);
    assert_true(median <= tol_median);
    assert_true(worst <= tol_max);
    infer_session_free(s);
    infer_model_free(m);
    free(want);
    ref_free(&r);
}

#define TOL_FLOAT 1e-4, 1e-4
#define TOL_QUANT 1e-4, 5e-2

/* ---- reference agreement ---- */

static void test_reference_f32(void **state)
{
    (void)state;
    struct tm_options o;
    tm_defaults(&o, "llama", GGML_TYPE_F32);
    check_against_reference(&o, TOL_FLOAT);
    tm_defaults(&o, "qwen2", GGML_TYPE_F32);
    check_against_reference(&o, TOL_FLOAT);
}

static void test_reference_float_types(void **state)
{
    (void)state;
    struct tm_options o;
    tm_defaults(&o, "llama", GGML_TYPE_F16);
    check_against_reference(&o, TOL_FLOAT);
    tm_defaults(&o, "qwen2", GGML_TYPE_BF16);
    check_against_reference(&o, TOL_FLOAT);
}

static void test_reference_quantised(void **state)
{
    (void)state;
    const enum ggml_type types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q4_K,
                                    GGML_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct tm_options o;
        tm_defaults(&o, i % 2 ? "llama" : "qwen2", types[i]);
        o.seed = 10 + i;
        check_against_reference(&o, TOL_QUANT);
    }
}

/* Mixed types as real Q4_K_M files have them: Q6_K embeddings, Q8_0
 * output, and both architectures on the scalar kernels too. */
static void test_reference_mixed_and_scalar(void **state)
{
    (void)state;
    char err[ERR_LEN] = "";
    struct tm_options o;
    tm_defaults(&o, "llama", GGML_TYPE_Q4_K);
    o.embd_type = GGML_TYPE_Q6_K;
    o.output_type = GGML_TYPE_Q8_0;
    o.odd_tensor = "blk.1.ffn_down.weight";
    o.odd_type = GGML_TYPE_Q6_K;
    check_against_reference(&o, TOL_QUANT);
    assert_int_equal(kern_select(KERN_SCALAR, err), 0);
    check_against_reference(&o, TOL_QUANT);
    tm_defaults(&o, "qwen2", GGML_TYPE_F32);
    check_against_reference(&o, TOL_FLOAT);
    assert_int_equal(kern_select(KERN_AUTO, err), 0);
}

/* ---- the engine against itself ---- */

static void prefill_logits(struct infer_model *m, const int *ids, int n, float *out)
{
    char err[ERR_LEN] = "";
    struct infer_session *s;
    assert_int_equal(infer_session_new(m, 128, &s, err), 0);
    const float *lg;
    assert_int_equal(infer_prefill(s, ids, (size_t)n, &lg, err), 0);
    assert_int_equal(infer_session_pos(s), n);
    memcpy(out, lg, (size_t)infer_model_info(m)->vocab_size * sizeof(float));
    infer_session_free(s);
}

/* Prefill of n tokens in batches (n > batch) vs one token at a time, vs a
 * prefill of a prefix then decode: all the same logits. */
static void test_cache_and_batches(void **state)
{
    (void)state;
    char path[512], err[ERR_LEN] = "";
    const char *arches[] = {"llama", "qwen2"};
    for (int a = 0; a < 2; a++) {
        struct tm_options o;
        tm_defaults(&o, arches[a], GGML_TYPE_Q8_0);
        write_model(&o, path, sizeof path);
        struct infer_model *m = load(path, 2, INFER_WAIT_SPIN);
        int vocab = infer_model_info(m)->vocab_size;
        int batch = infer_model_info(m)->prefill_batch;
        int n = batch + 9;
        int *ids = malloc((size_t)n * sizeof(int));
        float *full = malloc((size_t)vocab * sizeof(float));
        assert_true(ids && full);
        make_ids(ids, n, vocab, 99 + (uint64_t)a);
        prefill_logits(m, ids, n, full);

        struct infer_session *s;
        assert_int_equal(infer_session_new(m, 128, &s, err), 0);
        const float *lg = NULL;
        for (int t = 0; t < n; t++)
            assert_int_equal(infer_decode(s, ids[t], &lg, err), 0);
        double d1 = rel_diff(lg, full, vocab);
        infer_session_reset(s);
        assert_int_equal(infer_session_pos(s), 0);
        assert_int_equal(infer_prefill(s, ids, 5, &lg, err), 0);
        for (int t = 5; t < n; t++)
            assert_int_equal(infer_decode(s, ids[t], &lg, err), 0);
        double d2 = rel_diff(lg, full, vocab);
        print_message("    %s: batched prefill vs decode %.2e, prefix+decode %.2e\n", arches[a], d1,
                      d2);
        assert_true(d1 <= 1e-6);
        assert_true(d2 <= 1e-6);
        infer_session_free(s);
        free(ids);
        free(full);
        infer_model_free(m);
    }
}

/* Each output row is computed whole by one thread, so neither the thread
 * count nor the wait policy may change a single bit. */
static void test_threads_identical(void **state)
{
    (void)state;
    char path[512];
    struct tm_options o;
    tm_defaults(&o, "qwen2", GGML_TYPE_Q4_K);
    write_model(&o, path, sizeof path);
    int ids[20];
    float *a = NULL, *b = NULL;
    const int threads[] = {1, 3, 2};
    const enum infer_wait waits[] = {INFER_WAIT_SPIN, INFER_WAIT_SPIN, INFER_WAIT_SLEEP};
    for (int i = 0; i < 3; i++) {
        struct infer_model *m = load(path, threads[i], waits[i]);
        const struct infer_model_info *in = infer_model_info(m);
        assert_int_equal(in->threads, threads[i]);
        assert_int_equal(in->wait, waits[i]);
        int vocab = in->vocab_size;
        if (!a) {
            a = malloc((size_t)vocab * sizeof(float));
            b = malloc((size_t)vocab * sizeof(float));
            make_ids(ids, 20, vocab, 5);
        }
        prefill_logits(m, ids, 20, i == 0 ? a : b);
        if (i > 0)
            assert_memory_equal(a, b, (size_t)vocab * sizeof(float));
        infer_model_free(m);
    }
    free(a);
    free(b);
}

/* Packed copies (Q5_0 under avx2): the model copies its Q5_0 matrices
 * into the kernels' packed layout at load, unless JOULEBENCH_PACK=0. The
 * packed model gives the logits of the rows read in place to within the
 * summation order, which can move one Q8_0 activation by a step (a broken
 * packed product is off by tenths), and still the same bits for any thread
 * count (claims are whole groups of eight rows). Under kernels without the
 * layout nothing is packed. */
static void test_packed_copies(void **state)
{
    (void)state;
    char path[512];
    struct tm_options o;
    tm_defaults(&o, "qwen2", GGML_TYPE_Q5_0);
    /* tied embeddings; rows in whole groups of 8, so the table is packed
     * as the output matrix and the embeddings come from the copy */
    o.embd_rows = (tm_vocab_size() + 7) / 8 * 8;
    /* an F16 w_down in layer 0: its FFN claims would be any size, and
     * gate and up must still be read from their copies alone */
    o.odd_tensor = "blk.0.ffn_down.weight";
    o.odd_type = GGML_TYPE_F16;
    write_model(&o, path, sizeof path);
    int ids[20];
    float *in_place = NULL, *packed = NULL, *packed3 = NULL;
    int vocab = 0;
    for (int i = 0; i < 3; i++) {
        if (i == 0)
            setenv("JOULEBENCH_PACK", "0", 1);
        else
            unsetenv("JOULEBENCH_PACK");
        struct infer_model *m = load(path, i == 2 ? 3 : 2, INFER_WAIT_SPIN);
        const struct infer_model_info *in = infer_model_info(m);
        if (i == 0) {
            assert_true(in->packed_bytes == 0);
            vocab = in->vocab_size;
            in_place = malloc((size_t)vocab * sizeof(float));
            packed = malloc((size_t)vocab * sizeof(float));
            packed3 = malloc((size_t)vocab * sizeof(float));
            assert_true(in_place && packed && packed3);
            make_ids(ids, 20, vocab, 11);
        } else {
            /* every Q5_0 layer matrix and the (tied) output matrix: all but
             * the F16 w_down, the norms and one embedding row (three
             * quarters of the bytes) */
            int has = strcmp(kern_name(), "avx2") == 0;
            assert_int_equal(in->packed_bytes > 0, has);
            if (has)
                assert_true(in->packed_bytes >= in->decode_bytes * 6 / 10);
        }
        prefill_logits(m, ids, 20, i == 0 ? in_place : i == 1 ? packed : packed3);
        infer_model_free(m);
    }
    double d = rel_diff(packed, in_place, vocab);
    print_message("    packed against in place (%s kernels): %.2e\n", kern_name(), d);
    assert_true(d <= 1e-2);
    assert_memory_equal(packed, packed3, (size_t)vocab * sizeof(float));
    free(in_place);
    free(packed);
    free(packed3);
}

static void generate(struct infer_model *m, double temp, double top_p, uint64_t seed, int *out,
                     int n)
{
    char err[ERR_LEN] = "";
    struct infer_session *s;
    assert_int_equal(infer_session_new(m, 64, &s, err), 0);
    struct sampler smp;
    sampler_init(&smp, temp, top_p, seed);
    int prompt[3] = {10, 20, 30};
    const float *lg;
    assert_int_equal(infer_prefill(s, prompt, 3, &lg, err), 0);
    int vocab = infer_model_info(m)->vocab_size;
    for (int i = 0; i < n; i++) {
        out[i] = sampler_sample(&smp, lg, vocab);
        assert_true(out[i] >= 0 && out[i] < vocab);
        assert_int_equal(infer_decode(s, out[i], &lg, err), 0);
    }
    infer_session_free(s);
}

static void test_generation_repeats(void **state)
{
    (void)state;
    char path[512];
    struct tm_options o;
    tm_defaults(&o, "llama", GGML_TYPE_Q6_K);
    write_model(&o, path, sizeof path);
    struct infer_model *m = load(path, 2, INFER_WAIT_SPIN);
    int g1[16], g2[16], s1[16], s2[16], s3[16];
    generate(m, 0.0, 1.0, 1, g1, 16);
    generate(m, 0.0, 1.0, 2, g2, 16); /* greedy ignores the seed */
    assert_memory_equal(g1, g2, sizeof g1);
    generate(m, 1.5, 0.95, 42, s1, 16);
    generate(m, 1.5, 0.95, 42, s2, 16);
    assert_memory_equal(s1, s2, sizeof s1);
    generate(m, 1.5, 0.95, 43, s3, 16);
    /* hot sampling over a random model: another seed takes another path */
    assert_memory_not_equal(s1, s3, sizeof s1);
    infer_model_free(m);
}

/* ---- errors ---- */

static void expect_load_error(const struct tm_options *o, int code, const char *needle)
{
    char path[512], err[ERR_LEN] = "";
    write_model(o, path, sizeof path);
    struct infer_model *m = NULL;
    struct infer_options opt = {.threads = 1};
    int rc = infer_model_load(&m, path, &opt, err);
    if (rc != code || !strstr(err, needle) || !strstr(err, path)) {
        print_error("got %d '%s', expected %d and '%s'\n", rc, err, code, needle);
        fail();
    }
    assert_null(m);
}

static void expect_load_ok(const struct tm_options *o)
{
    char path[512], err[ERR_LEN] = "";
    write_model(o, path, sizeof path);
    struct infer_model *m = NULL;
    struct infer_options opt = {.threads = 1};
    if (infer_model_load(&m, path, &opt, err))
        fail_msg("%s", err);
    infer_model_free(m);
}

static void test_load_errors(void **state)
{
    (void)state;
    struct tm_options o;
    tm_defaults(&o, "gemma", GGML_TYPE_F32);
    expect_load_error(&o, JB_ERR_UNSUPPORTED, "architecture 'gemma'");
    tm_defaults(&o, "llama", GGML_TYPE_Q8_0);
    o.skip_tensor = "blk.1.ffn_up.weight";
    expect_load_error(&o, JB_ERR_FORMAT, "'blk.1.ffn_up.weight' is missing");
    tm_defaults(&o, "qwen2", GGML_TYPE_Q4_K);
    o.odd_tensor = "blk.0.attn_k.weight";
    o.odd_type = GGML_TYPE_Q5_K;
    expect_load_error(&o, JB_ERR_UNSUPPORTED, "'blk.0.attn_k.weight'");
    /* a vocabulary the embedding table cannot hold: the file is wrong, not
     * a later prompt */
    tm_defaults(&o, "qwen2", GGML_TYPE_F32);
    o.embd_rows = tm_vocab_size() - 3;
    expect_load_error(&o, JB_ERR_FORMAT, "only");
    /* fewer tokens than rows (padded tables) load */
    tm_defaults(&o, "llama", GGML_TYPE_F32);
    o.embd_rows = tm_vocab_size() + 5;
    expect_load_ok(&o);
    /* a number of the wrong type is an error, not the default quietly */
    tm_defaults(&o, "qwen2", GGML_TYPE_F32);
    o.freq_base_str = 1;
    expect_load_error(&o, JB_ERR_FORMAT, "rope.freq_base' is not a number");
    /* values of another width than the keys */
    tm_defaults(&o, "llama", GGML_TYPE_F32);
    o.value_length = 32;
    expect_load_error(&o, JB_ERR_UNSUPPORTED, "value_length 32");
    tm_defaults(&o, "llama", GGML_TYPE_F32);
    o.value_length = (uint32_t)(o.dim / o.n_heads);
    expect_load_ok(&o);

    char err[ERR_LEN] = "";
    struct infer_model *m = NULL;
    assert_int_equal(infer_model_load(&m, "/nonexistent/x.gguf", NULL, err), JB_ERR_NOTFOUND);
}

static void test_session_errors(void **state)
{
    (void)state;
    char path[512], err[ERR_LEN] = "";
    struct tm_options o;
    tm_defaults(&o, "qwen2", GGML_TYPE_Q8_0);
    write_model(&o, path, sizeof path);
    struct infer_model *m = load(path, 1, INFER_WAIT_SLEEP);
    const struct infer_model_info *in = infer_model_info(m);
    assert_string_equal(in->arch, "qwen2");
    assert_string_equal(in->weight_type, "Q8_0");
    assert_string_equal(in->kv_type, "F16");
    assert_true(in->decode_bytes > 0 && in->decode_bytes <= in->weight_bytes + 4096);
    struct infer_session *s;
    assert_int_equal(infer_session_new(m, 8, &s, err), 0);
    assert_int_equal(infer_session_ctx(s), 8);
    int ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float *lg;
    assert_int_equal(infer_prefill(s, ids, 9, &lg, err), JB_ERR_USAGE);
    assert_non_null(strstr(err, "context"));
    assert_int_equal(infer_session_pos(s), 0);
    assert_int_equal(infer_prefill(s, ids, 0, &lg, err), JB_ERR_USAGE);
    int bad[2] = {1, in->vocab_size};
    assert_int_equal(infer_prefill(s, bad, 2, &lg, err), JB_ERR_USAGE);
    assert_non_null(strstr(err, "vocabulary"));
    assert_int_equal(infer_session_pos(s), 0);
    assert_int_equal(infer_prefill(s, ids, 8, &lg, err), 0);
    assert_int_equal(infer_decode(s, 3, &lg, err), JB_ERR_USAGE);
    infer_session_free(s);
    infer_model_free(m);
}

/* ---- sampler ---- */

static void test_sampler(void **state)
{
    (void)state;
    struct sampler s;
    float lg[8] = {0.5f, 2.0f, -1.0f, 2.0f, NAN, 1.9f, -INFINITY, 0.0f};
    sampler_init(&s, 0.0, 1.0, 7);
    assert_int_equal(sampler_sample(&s, lg, 8), 1); /* lowest id among ties */
    /* top-p so small only the top token survives */
    sampler_init(&s, 1.0, 0.01, 7);
    float one[4] = {0.0f, 5.0f, 1.0f, 0.0f};
    for (int i = 0; i < 50; i++)
        assert_int_equal(sampler_sample(&s, one, 4), 1);
    /* temperature sampling follows softmax: with p = (0.1, 0.2, 0.3, 0.4),
     * 40000 draws land within 2 % of each probability */
    float l4[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    int count[4] = {0};
    sampler_init(&s, 1.0, 1.0, 123);
    for (int i = 0; i < 40000; i++)
        count[sampler_sample(&s, l4, 4)]++;
    for (int k = 0; k < 4; k++)
        assert_true(fabs(count[k] / 40000.0 - 0.1 * (k + 1)) < 0.02);
    /* top-p 0.5 keeps 0.4 and 0.3 only (0.4 alone is not past 0.5) */
    memset(count, 0, sizeof count);
    sampler_init(&s, 1.0, 0.5, 9);
    for (int i = 0; i < 7000; i++)
        count[sampler_sample(&s, l4, 4)]++;
    assert_int_equal(count[0] + count[1], 0);
    assert_true(fabs(count[3] / 7000.0 - 0.4 / 0.7) < 0.03);
    /* NaN never drawn */
    sampler_init(&s, 2.0, 1.0, 5);
    for (int i = 0; i < 1000; i++) {
        int id = sampler_sample(&s, lg, 8);
        assert_true(id != 4 && id != 6);
    }
    /* top-p 0 keeps the most likely token alone (not: no limit) */
    sampler_init(&s, 1.0, 0.0, 11);
    for (int i = 0; i < 200; i++)
        assert_int_equal(sampler_sample(&s, l4, 4), 3);
    /* the nucleus ends at the token that reaches top-p: of four equal
     * weights (ties in id order), two reach exactly 0.5 */
    float l4e[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memset(count, 0, sizeof count);
    sampler_init(&s, 1.0, 0.5, 13);
    for (int i = 0; i < 2000; i++)
        count[sampler_sample(&s, l4e, 4)]++;
    assert_int_equal(count[2] + count[3], 0);
    assert_true(count[0] > 800 && count[1] > 800);
    /* a temperature whose inverse overflows is greedy, not a NaN draw */
    float l5[5] = {1.0f, 5.0f, 2.0f, 0.0f, -1.0f};
    sampler_init(&s, 1e-310, 1.0, 3);
    for (int i = 0; i < 50; i++)
        assert_int_equal(sampler_sample(&s, l5, 5), 1);
    /* infinite temperature: uniform over the finite logits, -inf never */
    float l3[3] = {1.0f, 2.0f, -INFINITY};
    memset(count, 0, sizeof count);
    sampler_init(&s, INFINITY, 1.0, 17);
    for (int i = 0; i < 4000; i++)
        count[sampler_sample(&s, l3, 3)]++;
    assert_int_equal(count[2], 0);
    assert_true(fabs(count[0] / 4000.0 - 0.5) < 0.05);
    /* greedy never picks NaN while a real logit exists */
    float lnan[3] = {NAN, -INFINITY, -INFINITY};
    sampler_init(&s, 0.0, 1.0, 1);
    assert_int_equal(sampler_sample(&s, lnan, 3), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_f32),
        cmocka_unit_test(test_reference_float_types),
        cmocka_unit_test(test_reference_quantised),
        cmocka_unit_test(test_reference_mixed_and_scalar),
        cmocka_unit_test(test_cache_and_batches),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_packed_copies),
        cmocka_unit_test(test_generation_repeats),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_session_errors),
        cmocka_unit_test(test_sampler),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
