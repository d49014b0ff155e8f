/* Tensor formats: block sizes, fp16/bf16 rounding (exhaustively), known
 * bytes decoded to known floats for hand-built blocks of every type, and
 * quantize -> dequantize round trips within each type's error bound. */
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
#include "infer/quant.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rng_uniform(void) /* (0, 1) */
{
    return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static float rng_gauss(void)
{
    double u = rng_uniform(), v = rng_uniform();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_traits(void **state)
{
    (void)state;
    static const struct {
        enum ggml_type t;
        size_t elems, bytes;
    } want[] = {
        {GGML_TYPE_F32, 1, 4},      {GGML_TYPE_F16, 1, 2},      {GGML_TYPE_BF16, 1, 2},
        {GGML_TYPE_Q4_0, 32, 18},   {GGML_TYPE_Q5_0, 32, 22},   {GGML_TYPE_Q8_0, 32, 34},
        {GGML_TYPE_Q4_K, 256, 144}, {GGML_TYPE_Q6_K, 256, 210}, {GGML_TYPE_Q8_K, 256, 292},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct quant_traits *tr = quant_traits(want[i].t);
        assert_non_null(tr);
        assert_int_equal(tr->type, want[i].t);
        assert_int_equal(tr->block_elems, want[i].elems);
        assert_int_equal(tr->block_bytes, want[i].bytes);
    }
    assert_null(quant_traits(GGML_TYPE_Q4_1));
    assert_null(quant_traits(GGML_TYPE_Q5_K));
    assert_null(quant_traits((enum ggml_type)99));
    size_t e = 0, b = 0;
    assert_int_equal(quant_block_size(GGML_TYPE_Q5_K, &e, &b), 0);
    assert_int_equal(e, 256);
    assert_int_equal(b, 176);
    assert_int_equal(quant_block_size(GGML_TYPE_Q3_K, &e, &b), 0);
    assert_int_equal(b, 110);
    assert_int_not_equal(quant_block_size((enum ggml_type)99, &e, &b), 0);
    assert_int_equal(quant_row_bytes(GGML_TYPE_Q8_0, 64), 68);
    assert_int_equal(quant_row_bytes(GGML_TYPE_Q4_K, 4864), 19 * 144);
    assert_int_equal(quant_row_bytes(GGML_TYPE_F16, 3), 6);
    assert_int_equal(quant_row_bytes(GGML_TYPE_Q8_0, 33), 0);
    assert_int_equal(quant_row_bytes((enum ggml_type)99, 32), 0);
    assert_int_equal(quant_row_bytes(GGML_TYPE_F32, UINT64_MAX / 2), 0); /* overflows */
}

static void test_f16_known(void **state)
{
    (void)state;
    assert_true(quant_f16_to_f32(0x3c00) == 1.0f);
    assert_true(quant_f16_to_f32(0xc000) == -2.0f);
    assert_true(quant_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(quant_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(quant_f16_to_f32(0x03ff) == 1023.0f * 0x1p-24f);
    assert_true(quant_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(quant_f16_to_f32(0x3555) == 0x1.554p-2f);
    assert_true(isinf(quant_f16_to_f32(0x7c00)) && quant_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(quant_f16_to_f32(0xfc00)) && quant_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(quant_f16_to_f32(0x7e00)));
    assert_true(isnan(quant_f16_to_f32(0x7c01)));                /* signalling payload stays NaN */
    assert_true(fbits(quant_f16_to_f32(0x8000)) == 0x80000000u); /* -0 */

    assert_int_equal(quant_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(quant_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(quant_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(quant_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(quant_f32_to_f16(65520.0f), 0x7c00); /* tie to even: infinity */
    assert_int_equal(quant_f32_to_f16(1e9f), 0x7c00);
    assert_int_equal(quant_f32_to_f16(-1e9f), 0xfc00);
    assert_int_equal(quant_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(quant_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(quant_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(quant_f32_to_f16(0x1p-25f), 0x0000); /* tie to even: zero */
    assert_int_equal(quant_f32_to_f16(0x1.000002p-25f), 0x0001);
    assert_int_equal(quant_f32_to_f16(0x1.8p-24f), 0x0002); /* 1.5 units: tie to even */
    assert_int_equal(quant_f32_to_f16(0x1.4p-23f), 0x0002); /* 2.5 units: tie to even */
    assert_int_equal(quant_f32_to_f16(1e-30f), 0x0000);
    assert_int_equal(quant_f32_to_f16(-1e-30f), 0x8000);
    assert_int_equal(quant_f32_to_f16(bitsf(1)), 0x0000);            /* binary32 subnormal */
    assert_int_equal(quant_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);     /* tie: even */
    assert_int_equal(quant_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie: even */
    assert_int_equal(quant_f32_to_f16(0x1.ffep-15f), 0x0400); /* rounds up into the normals */
    uint16_t n = quant_f32_to_f16(NAN);
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    assert_true(quant_f32_to_f16(-NAN) & 0x8000);
}

/* Every half converts to float and back unchanged, and every point halfway
 * between two neighbouring halves rounds to the even one (just below and
 * above it: to the nearer one). */
static void test_f16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = quant_f16_to_f32((uint16_t)h);
        uint16_t back = quant_f32_to_f16(f);
        if (isnan(f)) {
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0);
            assert_int_equal(back & 0x8000, h & 0x8000);
        } else {
            assert_int_equal(back, h);
        }
    }
    for (uint32_t h = 0; h < 0x7bff; h++) { /* positive finite pairs (h, h+1) */
        double a = quant_f16_to_f32((uint16_t)h), b = quant_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)((a + b) / 2); /* exact in binary32 */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        assert_int_equal(quant_f32_to_f16(mid), even);
        assert_int_equal(quant_f32_to_f16(-mid), even | 0x8000);
        assert_int_equal(quant_f32_to_f16(nextafterf(mid, 0.0f)), h);
        assert_int_equal(quant_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
    }
}

static void test_bf16(void **state)
{
    (void)state;
    assert_true(quant_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(quant_bf16_to_f32(0xc040) == -3.0f);
    assert_true(quant_bf16_to_f32(0x0001) == bitsf(0x00010000u)); /* subnormal */
    assert_true(isinf(quant_bf16_to_f32(0x7f80)));
    assert_true(isnan(quant_bf16_to_f32(0x7fc0)));
    assert_int_equal(quant_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(quant_f32_to_bf16(bitsf(0x3f808000u)), 0x3f80); /* tie: even */
    assert_int_equal(quant_f32_to_bf16(bitsf(0x3f818000u)), 0x3f82); /* tie: even */
    assert_int_equal(quant_f32_to_bf16(bitsf(0x3f808001u)), 0x3f81);
    assert_int_equal(quant_f32_to_bf16(bitsf(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds up */
    assert_int_equal(quant_f32_to_bf16(-INFINITY), 0xff80);
    uint16_t n = quant_f32_to_bf16(bitsf(0x7f800001u)); /* NaN with a low payload */
    assert_true((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = quant_bf16_to_f32((uint16_t)h);
        if (isnan(f))
            assert_true(isnan(quant_bf16_to_f32(quant_f32_to_bf16(f))));
        else
            assert_int_equal(quant_f32_to_bf16(f), h);
    }
}

/* ---- known bytes ---- */

static void test_known_q8_0(void **state)
{
    (void)state;
    uint8_t blk[34];
    blk[0] = 0x00, blk[1] = 0x38; /* d = 0.5 */
    for (int i = 0; i < 32; i++)
        blk[2 + i] = (uint8_t)(int8_t)(i * 8 - 128); /* -128, -120, ..., 120 */
    float y[32];
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q8_0, blk, y, 32), 0);
    assert_true(y[0] == -64.0f);
    assert_true(y[16] == 0.0f);
    assert_true(y[31] == 60.0f);
    for (int i = 0; i < 32; i++)
        assert_true(y[i] == 0.5f * (float)(i * 8 - 128));
}

static void test_known_q4_0(void **state)
{
    (void)state;
    uint8_t blk[18] = {0x00, 0xc0}; /* d = -2 */
    for (int j = 0; j < 16; j++)
        blk[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q4_0, blk, y, 32), 0);
    /* low nibbles are elements 0..15, high nibbles 16..31 */
    assert_true(y[0] == 16.0f);   /* -2 * (0 - 8) */
    assert_true(y[15] == -14.0f); /* -2 * (15 - 8) */
    assert_true(y[16] == -14.0f); /* high nibble of byte 0 is 15 */
    assert_true(y[31] == 16.0f);
    assert_true(y[8] == 0.0f);
}

static void test_known_q5_0(void **state)
{
    (void)state;
    uint8_t blk[22] = {0x00, 0x3c}; /* d = 1 */
    /* qh: bit 0 (element 0), bit 5 (element 5), bit 16 (element 16) and
     * bit 31 (element 31) set */
    blk[2] = 0x21, blk[3] = 0x00, blk[4] = 0x01, blk[5] = 0x80;
    for (int j = 0; j < 16; j++)
        blk[6 + j] = (uint8_t)(3 | 12 << 4);
    float y[32];
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q5_0, blk, y, 32), 0);
    assert_true(y[0] == 3.0f);   /* (3 | 16) - 16 */
    assert_true(y[1] == -13.0f); /* 3 - 16 */
    assert_true(y[5] == 3.0f);
    assert_true(y[16] == 12.0f); /* (12 | 16) - 16 */
    assert_true(y[17] == -4.0f);
    assert_true(y[31] == 12.0f);
    assert_true(y[30] == -4.0f);
}

static void test_known_q4_k(void **state)
{
    (void)state;
    /* Sub-block scales {1,2,3,4,17,33,63,0} and mins {0,1,2,3,40,20,63,5},
     * packed by hand into the 12 bytes as quant.h describes. */
    static const int sc[8] = {1, 2, 3, 4, 17, 33, 63, 0};
    static const int mn[8] = {0, 1, 2, 3, 40, 20, 63, 5};
    static const uint8_t scales[12] = {65, 130, 195, 4, 128, 65, 194, 3, 129, 65, 255, 80};
    uint8_t blk[144];
    blk[0] = 0x00, blk[1] = 0x3c; /* d = 1 */
    blk[2] = 0x00, blk[3] = 0x38; /* dmin = 0.5 */
    memcpy(blk + 4, scales, 12);
    for (int i = 0; i < 128; i++)
        blk[16 + i] = (uint8_t)(i * 37 + 11);
    float y[256];
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q4_K, blk, y, 256), 0);
    for (int e = 0; e < 256; e++) {
        int s = e / 32, c = e / 64, l = e % 32;
        uint8_t byte = blk[16 + 32 * c + l];
        int nib = (s & 1) ? byte >> 4 : byte & 15;
        float want = 1.0f * (float)sc[s] * (float)nib - 0.5f * (float)mn[s];
        assert_true(y[e] == want);
    }
    /* spot values: element 0 is sub-block 0, low nibble of 11 */
    assert_true(y[0] == 11.0f);
    /* element 32 is sub-block 1, high nibble of byte 0 (0) minus 0.5 */
    assert_true(y[32] == -0.5f);
    /* element 224 is sub-block 7 (scale 0): only the min remains */
    assert_true(y[224] == -2.5f);
}

static void test_known_q6_k(void **state)
{
    (void)state;
    uint8_t blk[210];
    memset(blk, 0, sizeof blk);
    for (int i = 0; i < 128; i++)
        blk[i] = (uint8_t)(i * 29 + 5); /* ql */
    for (int i = 0; i < 64; i++)
        blk[128 + i] = (uint8_t)(i * 53 + 7); /* qh */
    for (int s = 0; s < 16; s++)
        blk[192 + s] = (uint8_t)(int8_t)(s % 2 ? -(s + 1) : s + 1); /* negative scales too */
    blk[208] = 0x00, blk[209] = 0xb8;                               /* d = -0.5 */
    float y[256];
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q6_K, blk, y, 256), 0);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, r = e % 128, l = r % 32, k = r / 32; /* k: which of the four */
        uint8_t ql = blk[64 * h + l + (k & 1) * 32];
        int lo = (k < 2) ? ql & 15 : ql >> 4;
        int hi = (blk[128 + 32 * h + l] >> (2 * k)) & 3;
        int q = (lo | hi << 4) - 32;
        float want = -0.5f * (float)(int8_t)blk[192 + e / 16] * (float)q;
        assert_true(y[e] == want);
    }
    /* element 0: ql[0] = 5 (low), qh[0] = 7 -> bits 0-1 = 3: q = 53 - 32 = 21,
     * scale 1, d -0.5 */
    assert_true(y[0] == -10.5f);
}

static void test_known_q8_k(void **state)
{
    (void)state;
    struct quant_block_q8_k b;
    memset(&b, 0, sizeof b);
    b.d = 0.25f;
    for (int i = 0; i < 256; i++)
        b.qs[i] = (int8_t)(i - 128);
    float y[256];
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q8_K, &b, y, 256), 0);
    assert_true(y[0] == -32.0f);
    assert_true(y[255] == 31.75f);
    /* the quantizer fills bsums with the group sums */
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)(i % 7) - 3.0f;
    assert_int_equal(quant_quantize_row(GGML_TYPE_Q8_K, x, &b, 256), 0);
    for (int k = 0; k < 16; k++) {
        int sum = 0;
        for (int i = 0; i < 16; i++)
            sum += b.qs[16 * k + i];
        assert_int_equal(b.bsums[k], sum);
    }
}

static void test_known_float_rows(void **state)
{
    (void)state;
    uint8_t f16[4] = {0x00, 0x3c, 0x00, 0xc2};  /* 1, -3 */
    uint8_t bf16[4] = {0x80, 0x3f, 0x40, 0xc0}; /* 1, -3 */
    float y[2];
    assert_int_equal(quant_dequantize_row(GGML_TYPE_F16, f16, y, 2), 0);
    assert_true(y[0] == 1.0f && y[1] == -3.0f);
    assert_int_equal(quant_dequantize_row(GGML_TYPE_BF16, bf16, y, 2), 0);
    assert_true(y[0] == 1.0f && y[1] == -3.0f);
    uint8_t out[4];
    float x[2] = {1.0f, -3.0f};
    assert_int_equal(quant_quantize_row(GGML_TYPE_F16, x, out, 2), 0);
    assert_memory_equal(out, f16, 4);
    assert_int_equal(quant_quantize_row(GGML_TYPE_BF16, x, out, 2), 0);
    assert_memory_equal(out, bf16, 4);
}

/* ---- round trips ---- */

struct bound {
    enum ggml_type t;
    double rel_rmse; /* RMS error over RMS of the data, Gaussian input */
};

/* Expected error for Gaussian data, from each format's step size: Q8_0 /
 * Q8_K about amax/127 (amax ~2.5-3 sigma) -> RMS step/sqrt(12) ~ 0.007;
 * Q4_0 amax/8 -> ~0.09; Q5_0 amax/16 -> ~0.045; Q4_K (max-min)/15 over 32
 * -> ~0.08 plus 6-bit scales; Q6_K amax/32 over 16 -> ~0.018; F16 2^-11
 * relative; BF16 2^-8 relative. Bounds leave about 40 % margin. */
static const struct bound bounds[] = {
    {GGML_TYPE_F32, 0.0},    {GGML_TYPE_F16, 0.0005}, {GGML_TYPE_BF16, 0.004},
    {GGML_TYPE_Q8_0, 0.010}, {GGML_TYPE_Q8_K, 0.010}, {GGML_TYPE_Q4_0, 0.13},
    {GGML_TYPE_Q5_0, 0.065}, {GGML_TYPE_Q4_K, 0.11},  {GGML_TYPE_Q6_K, 0.026},
};

static void test_round_trip(void **state)
{
    (void)state;
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 4);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(q);
    for (size_t bi = 0; bi < sizeof bounds / sizeof bounds[0]; bi++) {
        enum ggml_type t = bounds[bi].t;
        for (int i = 0; i < N; i++)
            x[i] = rng_gauss() * ((i / 256) % 3 == 0 ? 0.01f : 1.0f); /* mixed scales */
        assert_int_equal(quant_quantize_row(t, x, q, N), 0);
        assert_int_equal(quant_dequantize_row(t, q, y, N), 0);
        double se = 0, sx = 0;
        for (int i = 0; i < N; i += 256) {
            double bse = 0, bsx = 0;
            for (int j = i; j < i + 256; j++) {
                assert_true(isfinite(y[j]));
                bse += ((double)y[j] - x[j]) * ((double)y[j] - x[j]);
                bsx += (double)x[j] * x[j];
            }
            /* a bound per 256 elements, so small-scale blocks count too */
            if (sqrt(bse / bsx) > bounds[bi].rel_rmse * 1.5 + 1e-12) {
                fprintf(stderr, "%s: block at %d: relative RMS error %g\n", quant_traits(t)->name,
                        i, sqrt(bse / bsx));
                fail();
            }
            se += bse;
            sx += bsx;
        }
        double rel = sqrt(se / sx);
        printf("%-5s relative RMS error %.5f (bound %.5f)\n", quant_traits(t)->name, rel,
               bounds[bi].rel_rmse);
        assert_true(rel <= bounds[bi].rel_rmse + 1e-12);
        /* requantizing what came out changes little for every format */
        uint8_t *q2 = malloc(N * 4);
        float *y2 = malloc(N * sizeof *y2);
        assert_non_null(q2);
        assert_non_null(y2);
        assert_int_equal(quant_quantize_row(t, y, q2, N), 0);
        assert_int_equal(quant_dequantize_row(t, q2, y2, N), 0);
        double se2 = 0;
        for (int i = 0; i < N; i++)
            se2 += ((double)y2[i] - y[i]) * ((double)y2[i] - y[i]);
        assert_true(sqrt(se2 / sx) <= bounds[bi].rel_rmse + 1e-12);
        free(q2);
        free(y2);
    }
    free(x);
    free(y);
    free(q);
}

/* Per-element bounds for the block-absmax formats: no element is further
 * from its input than half a step (Q8_0) or one step (Q4_0, Q5_0: the
 * side opposite the largest magnitude has one level less). */
static void test_element_bounds(void **state)
{
    (void)state;
    float x[32], y[32];
    uint8_t q[64];
    for (int rep = 0; rep < 200; rep++) {
        for (int i = 0; i < 32; i++)
            x[i] = rng_gauss() * (float)(rep + 1);
        float amax = 0;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        assert_int_equal(quant_quantize_row(GGML_TYPE_Q8_0, x, q, 32), 0);
        assert_int_equal(quant_dequantize_row(GGML_TYPE_Q8_0, q, y, 32), 0);
        float d = quant_f16_to_f32((uint16_t)(q[0] | q[1] << 8));
        for (int i = 0; i < 32; i++)
            assert_true(fabsf(y[i] - x[i]) <= 0.5f * fabsf(d) * 1.0001f + amax * 0.002f);
        assert_int_equal(quant_quantize_row(GGML_TYPE_Q4_0, x, q, 32), 0);
        assert_int_equal(quant_dequantize_row(GGML_TYPE_Q4_0, q, y, 32), 0);
        d = quant_f16_to_f32((uint16_t)(q[0] | q[1] << 8));
        for (int i = 0; i < 32; i++)
            assert_true(fabsf(y[i] - x[i]) <= fabsf(d) * 1.0001f + amax * 0.002f);
        assert_int_equal(quant_quantize_row(GGML_TYPE_Q5_0, x, q, 32), 0);
        assert_int_equal(quant_dequantize_row(GGML_TYPE_Q5_0, q, y, 32), 0);
        d = quant_f16_to_f32((uint16_t)(q[0] | q[1] << 8));
        for (int i = 0; i < 32; i++)
            assert_true(fabsf(y[i] - x[i]) <= fabsf(d) * 1.0001f + amax * 0.002f);
    }
}

/* Data that is exactly a level of the format comes back exactly. */
static void test_exact_levels(void **state)
{
    (void)state;
    float x[256], y[256];
    uint8_t q[300];
    for (int i = 0; i < 32; i++)
        x[i] = 0.25f * (float)((i * 11) % 255 - 127);
    x[3] = -127 * 0.25f;
    assert_int_equal(quant_quantize_row(GGML_TYPE_Q8_0, x, q, 32), 0);
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q8_0, q, y, 32), 0);
    assert_memory_equal(x, y, 32 * sizeof(float));

    for (int i = 0; i < 32; i++)
        x[i] = 0.5f * (float)((i * 5) % 16 - 8); /* levels -8..7, largest |x| is -8 */
    assert_int_equal(quant_quantize_row(GGML_TYPE_Q4_0, x, q, 32), 0);
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q4_0, q, y, 32), 0);
    assert_memory_equal(x, y, 32 * sizeof(float));

    for (int i = 0; i < 32; i++)
        x[i] = 0.125f * (float)((i * 7) % 32 - 16);
    assert_int_equal(quant_quantize_row(GGML_TYPE_Q5_0, x, q, 32), 0);
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q5_0, q, y, 32), 0);
    assert_memory_equal(x, y, 32 * sizeof(float));

    /* Q6_K: every 16-group reaches -32 steps of the same power-of-two step */
    for (int i = 0; i < 256; i++)
        x[i] = (i % 16 == 0) ? -32.0f : (float)((i * 13) % 64 - 32);
    assert_int_equal(quant_quantize_row(GGML_TYPE_Q6_K, x, q, 256), 0);
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q6_K, q, y, 256), 0);
    assert_memory_equal(x, y, 256 * sizeof(float));
}

static void test_edges(void **state)
{
    (void)state;
    static const enum ggml_type types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0,
                                           GGML_TYPE_Q4_K, GGML_TYPE_Q6_K, GGML_TYPE_Q8_K,
                                           GGML_TYPE_F16,  GGML_TYPE_BF16};
    float x[256], y[256];
    uint8_t q[600];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        enum ggml_type t = types[ti];
        /* all zeros: zeros out, no NaN from a zero scale */
        memset(x, 0, sizeof x);
        assert_int_equal(quant_quantize_row(t, x, q, 256), 0);
        assert_int_equal(quant_dequantize_row(t, q, y, 256), 0);
        for (int i = 0; i < 256; i++)
            assert_true(y[i] == 0.0f);
        /* one huge value among zeros (beyond fp16's range for F16, beyond
         * the largest scale for the block types): finite or, for F16, inf
         * of the right sign — never NaN */
        x[17] = -1e30f;
        assert_int_equal(quant_quantize_row(t, x, q, 256), 0);
        assert_int_equal(quant_dequantize_row(t, q, y, 256), 0);
        for (int i = 0; i < 256; i++)
            assert_false(isnan(y[i]));
        assert_true(y[17] < 0.0f);
        if (t != GGML_TYPE_F16 && t != GGML_TYPE_BF16)
            for (int i = 0; i < 256; i++)
                assert_true(isfinite(y[i]));
        /* NaN and inf in the input read as 0 for the block types */
        if (t != GGML_TYPE_F16 && t != GGML_TYPE_BF16) {
            for (int i = 0; i < 256; i++)
                x[i] = (float)(i % 5) - 2.0f;
            x[3] = NAN;
            x[4] = INFINITY;
            assert_int_equal(quant_quantize_row(t, x, q, 256), 0);
            assert_int_equal(quant_dequantize_row(t, q, y, 256), 0);
            for (int i = 0; i < 256; i++)
                assert_true(isfinite(y[i]));
            assert_true(fabsf(y[3]) < 0.5f);
        }
        /* the largest magnitude the block scale can hold survives */
        for (int i = 0; i < 256; i++)
            x[i] = (i % 2 ? 1.0f : -1.0f) * 60000.0f;
        assert_int_equal(quant_quantize_row(t, x, q, 256), 0);
        assert_int_equal(quant_dequantize_row(t, q, y, 256), 0);
        for (int i = 0; i < 256; i++)
            assert_true(fabsf(y[i] - x[i]) <= 60000.0f * 0.13f);
    }
    /* rows that are not whole blocks, and types without a converter */
    assert_int_equal(quant_quantize_row(GGML_TYPE_Q8_0, x, q, 31), JB_ERR_USAGE);
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q4_K, q, y, 128), JB_ERR_USAGE);
    assert_int_equal(quant_dequantize_row(GGML_TYPE_Q5_K, q, y, 256), JB_ERR_UNSUPPORTED);
    assert_int_equal(quant_quantize_row((enum ggml_type)99, x, q, 32), JB_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traits),
        cmocka_unit_test(test_f16_known),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_known_q8_0),
        cmocka_unit_test(test_known_q4_0),
        cmocka_unit_test(test_known_q5_0),
        cmocka_unit_test(test_known_q4_k),
        cmocka_unit_test(test_known_q6_k),
        cmocka_unit_test(test_known_q8_k),
        cmocka_unit_test(test_known_float_rows),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_element_bounds),
        cmocka_unit_test(test_exact_levels),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
