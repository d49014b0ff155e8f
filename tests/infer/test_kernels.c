/*
 * The kernels against dequantise-then-float reference code (quant.c): for
 * every weight type, every implementation this CPU can run (scalar always,
 * AVX2 where present), on random blocks with random payload bytes and on
 * edge blocks (extreme quants, zero and negative scales, saturating
 * activations). Integer block sums are exact, so the only allowed
 * difference is float rounding: |got - ref| <= 2e-5 * sum|w * a| for the
 * quantised types and 1e-4 * sum|w * a| for the float types (the scalar
 * float loops sum 1024 terms in order).
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
#include "infer/kernels.h"
#include "infer/quant.h"

#define N 1024 /* elements per row: 4 K-quant blocks, 32 small blocks */

static const enum ggml_type all_types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16,
                                           GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0,
                                           GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float frand(void)
{
    return (float)(rnd() & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

/* Offsets of the f16 scale fields inside one block, so random payload bytes
 * get finite scales (a random f16 may be NaN). */
static int scale_offsets(enum ggml_type t, size_t *offs)
{
    switch (t) {
    case GGML_TYPE_Q8_0:
    case GGML_TYPE_Q4_0:
    case GGML_TYPE_Q5_0:
        offs[0] = 0;
        return 1;
    case GGML_TYPE_Q4_K:
        offs[0] = 0;
        offs[1] = 2;
        return 2;
    case GGML_TYPE_Q6_K:
        offs[0] = 208;
        return 1;
    default:
        return 0;
    }
}

enum fill { FILL_RANDOM, FILL_QUANTIZED, FILL_MAX, FILL_MIN, FILL_ZERO_SCALE };

/* One weight row of type t. FILL_RANDOM: random payload bytes with random
 * scales in +-[2^-10, 1]; FILL_QUANTIZED: quant.c's quantiser on random
 * floats; FILL_MAX / FILL_MIN: every payload byte 0xFF / 0x00 (extreme
 * quants: 15, 63, -1 / -8, -32, 0) with the largest test scale, negative
 * for MIN; FILL_ZERO_SCALE: random payload, zero scales. */
static void make_row(enum ggml_type t, enum fill fill, uint8_t *row)
{
    size_t bytes = quant_row_bytes(t, N);
    const struct quant_traits *tr = quant_traits(t);
    float f[N];
    for (int i = 0; i < N; i++)
        f[i] = frand() * (fill == FILL_MAX ? 4.0f : 1.0f);
    if (tr->block_elems == 1 || fill == FILL_QUANTIZED) {
        assert_int_equal(quant_quantize_row(t, f, row, N), 0);
        return;
    }
    for (size_t i = 0; i < bytes; i++)
        row[i] = fill == FILL_MAX ? 0xFF : fill == FILL_MIN ? 0x00 : (uint8_t)rnd();
    size_t offs[2];
    int n_offs = scale_offsets(t, offs);
    for (size_t b = 0; b < N / tr->block_elems; b++) {
        for (int k = 0; k < n_offs; k++) {
            float s = ldexpf(1.0f + frand() * 0.5f, -(int)(rnd() % 11));
            if (rnd() & 1)
                s = -s;
            if (fill == FILL_MAX)
                s = 1.0f;
            if (fill == FILL_MIN)
                s = -1.0f;
            if (fill == FILL_ZERO_SCALE)
                s = 0.0f;
            uint16_t h = quant_f32_to_f16(s);
            memcpy(row + b * tr->block_bytes + offs[k], &h, sizeof(h));
        }
    }
}

enum act_fill { ACT_RANDOM, ACT_WIDE, ACT_EXTREME, ACT_ZEROS, ACT_TIES };

/* Activations: ACT_RANDOM in [-1, 1]; ACT_WIDE spans magnitudes 1e-3..1e3
 * with a few exact zeros; ACT_EXTREME is +-max in every element (quants at
 * +-127, the int16 saturation edge); ACT_ZEROS has zero blocks; ACT_TIES
 * puts 127 first in every 32 so the scale is exactly 1 and the rest on
 * exact halves (k + 0.5), where the rounding rule decides. */
static void make_act(enum act_fill fill, float *x)
{
    for (int i = 0; i < N; i++) {
        switch (fill) {
        case ACT_RANDOM:
            x[i] = frand();
            break;
        case ACT_WIDE:
            x[i] = (i % 37 == 0) ? 0.0f : frand() * powf(10.0f, (float)(rnd() % 7) - 3.0f);
            break;
        case ACT_EXTREME:
            x[i] = (rnd() & 1) ? 3.0f : -3.0f;
            break;
        case ACT_ZEROS:
            x[i] = (i / 256) % 2 ? 0.0f : frand();
            break;
        case ACT_TIES:
            x[i] = i % 32 == 0 ? 127.0f : (float)((int)(rnd() % 200) - 100) + 0.5f;
            break;
        }
    }
}

/* The reference: weights and activations both dequantised by quant.c, the
 * sum in double. *mag gets sum |w * a|, the scale of float rounding. */
static double reference_dot_n(enum ggml_type t, size_t n, const uint8_t *row, const void *act,
                              double *mag)
{
    float w[N], a[N];
    assert_true(n <= N);
    assert_int_equal(quant_dequantize_row(t, row, w, n), 0);
    assert_int_equal(quant_dequantize_row(kern_act_type(t), act, a, n), 0);
    double s = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += (double)w[i] * a[i];
        m += fabs((double)w[i] * a[i]);
    }
    *mag = m;
    return s;
}

static double reference_dot(enum ggml_type t, const uint8_t *row, const void *act, double *mag)
{
    return reference_dot_n(t, N, row, act, mag);
}

static int float_type(enum ggml_type t)
{
    return t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16;
}

static void check_all_types(const char *impl)
{
    static uint8_t row[N * 4];
    static uint8_t act[N * 4];
    float x[N];
    int checked = 0;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        enum ggml_type t = all_types[ti];
        assert_true(kern_supported(t));
        for (int fill = FILL_RANDOM; fill <= FILL_ZERO_SCALE; fill++) {
            for (int af = ACT_RANDOM; af <= ACT_TIES; af++) {
                for (int rep = 0; rep < 3; rep++) {
                    make_row(t, (enum fill)fill, row);
                    make_act((enum act_fill)af, x);
                    kern_quantize_act(t, x, act, N);
                    double mag, ref = reference_dot(t, row, act, &mag);
                    float got = kern_dot(t, N, row, act);
                    double tol = (float_type(t) ? 1e-4 : 2e-5) * mag + 1e-30;
                    if (!(fabs(got - ref) <= tol)) {
                        print_error("%s %s fill %d act %d: got %.9g, reference %.9g (tol %.3g)\n",
                                    impl, quant_traits(t)->name, fill, af, (double)got, ref, tol);
                        fail();
                    }
                    checked++;
                }
            }
        }
    }
    assert_int_equal(checked, (int)N_TYPES * 5 * 5 * 3);
}

/* Activation quantisation: identical to quant.c's quantiser (ties away
 * from zero included), within half a step of the input, quants within
 * [-127, 127], Q8_K block sums right; NaN input still gives quants in
 * range. */
static void check_activations(const char *impl)
{
    float x[N], back[N];
    static uint8_t act[N * 4];
    const enum ggml_type wtypes[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_K};
    for (int k = 0; k < 2; k++) {
        enum ggml_type at = kern_act_type(wtypes[k]);
        size_t be = at == GGML_TYPE_Q8_0 ? 32 : 256;
        for (int af = ACT_RANDOM; af <= ACT_TIES; af++) {
            make_act((enum act_fill)af, x);
            kern_quantize_act(wtypes[k], x, act, N);
            /* the same rule as quant.c's reference quantiser, bit for bit */
            static uint8_t ref[N * 2];
            assert_int_equal(quant_quantize_row(at, x, ref, N), 0);
            assert_memory_equal(act, ref, kern_act_row_bytes(wtypes[k], N));
            assert_int_equal(quant_dequantize_row(at, act, back, N), 0);
            for (size_t b = 0; b < N / be; b++) {
                float amax = 0.0f;
                for (size_t i = 0; i < be; i++)
                    amax = fmaxf(amax, fabsf(x[b * be + i]));
                /* step d = amax / 127 (Q8_0 stores it as f16: 2^-11 relative) */
                float step = amax / 127.0f * (1.0f + 1.0f / 1024.0f);
                for (size_t i = 0; i < be; i++) {
                    float e = fabsf(back[b * be + i] - x[b * be + i]);
                    if (!(e <= 0.5f * step + 1e-3f * step + 1e-30f)) {
                        print_error("%s %s act %d element %zu: %g -> %g\n", impl,
                                    quant_traits(at)->name, af, b * be + i, (double)x[b * be + i],
                                    (double)back[b * be + i]);
                        fail();
                    }
                }
            }
            if (at == GGML_TYPE_Q8_K) {
                const struct quant_block_q8_k *q = (const void *)act;
                for (size_t b = 0; b < N / 256; b++)
                    for (int g = 0; g < 16; g++) {
                        int s = 0;
                        for (int i = 0; i < 16; i++) {
                            assert_true(q[b].qs[g * 16 + i] >= -127);
                            s += q[b].qs[g * 16 + i];
                        }
                        assert_int_equal(q[b].bsums[g], s);
                    }
            } else {
                const struct quant_block_q8_0 *q = (const void *)act;
                for (size_t b = 0; b < N / 32; b++)
                    for (int i = 0; i < 32; i++)
                        assert_true(q[b].qs[i] >= -127);
            }
        }
        /* values so small that the Q8_K scale is subnormal: quantised as
         * zero (1 / d would overflow and send each to +-127), as quant.c
         * does */
        for (int i = 0; i < N; i++)
            x[i] = i % 256 == 0 ? 1e-40f : i % 256 == 1 ? -2.8e-43f : 0.0f;
        kern_quantize_act(wtypes[k], x, act, N);
        {
            static uint8_t ref[N * 2];
            assert_int_equal(quant_quantize_row(at, x, ref, N), 0);
            assert_memory_equal(act, ref, kern_act_row_bytes(wtypes[k], N));
            assert_int_equal(quant_dequantize_row(at, act, back, N), 0);
            for (int i = 0; i < N; i++)
                assert_true(fabsf(back[i]) <= fabsf(x[i]) + 1e-41f);
        }
        make_act(ACT_RANDOM, x);
        for (int i = 0; i < N; i += 7)
            x[i] = NAN;
        kern_quantize_act(wtypes[k], x, act, N);
        const int8_t *qs = (const int8_t *)act;
        for (size_t i = 0; i < kern_act_row_bytes(wtypes[k], N); i++)
            if (at == GGML_TYPE_Q8_0 ? (i % 34 >= 2) : (i % 292 >= 4 && i % 292 < 260))
                assert_true(qs[i] >= -127);
    }
}

/* kern_matmul over several rows and activation rows (the batched path
 * reads each row once for all tokens), and with one activation row
 * (decode), equals kern_dot for each pair bit for bit: a token's result
 * must not depend on how many came with it. Rows of N elements, and rows
 * of an odd number of blocks (the first n elements of the same rows, so
 * the row stride is larger than a row), since some kernels take two or
 * four blocks at a time. */
static void check_matmul(const char *impl)
{
    enum { ROWS = 7, TOK = 5 };
    static uint8_t w[ROWS * N * 4];
    static uint8_t act[TOK * N * 4];
    float x[N];
    float y[TOK * (ROWS + 3)];
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        enum ggml_type t = all_types[ti];
        size_t be = kern_block_elems(t);
        /* N / be is even; 3 blocks are fewer than the 4 that small-block
         * decode takes a step */
        size_t sizes[3] = {N, (N / be - 1) * be, 3 * be};
        size_t wrb = quant_row_bytes(t, N);
        for (int r = 0; r < ROWS; r++)
            make_row(t, FILL_QUANTIZED, w + r * wrb);
        for (int si = 0; si < 3; si++) {
            size_t n = sizes[si], arb = kern_act_row_bytes(t, n);
            assert_true(n / be % 2 == (size_t)(si > 0));
            for (int k = 0; k < TOK; k++) {
                make_act(ACT_RANDOM, x);
                kern_quantize_act(t, x, act + k * arb, n);
            }
            for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
                y[i] = -12345.0f;
            /* rows 2..6 only, ldy wider than the row count */
            kern_matmul(t, n, w, wrb, 2, ROWS, act, arb, TOK, y, ROWS + 3);
            for (int k = 0; k < TOK; k++) {
                for (int r = 0; r < ROWS + 3; r++) {
                    float got = y[k * (ROWS + 3) + r];
                    if (r < 2 || r >= ROWS) {
                        assert_true(got == -12345.0f); /* untouched */
                        continue;
                    }
                    float want = kern_dot(t, n, w + r * wrb, act + k * arb);
                    double mag, ref = reference_dot_n(t, n, w + r * wrb, act + k * arb, &mag);
                    if (!(fabs(want - ref) <= (float_type(t) ? 1e-4 : 2e-5) * mag + 1e-30)) {
                        print_error("%s %s n %zu dot row %d token %d: %.9g, reference %.9g\n", impl,
                                    quant_traits(t)->name, n, r, k, (double)want, ref);
                        fail();
                    }
                    if (memcmp(&got, &want, sizeof want) != 0) {
                        print_error("%s %s n %zu matmul row %d token %d: %.9g vs dot %.9g\n", impl,
                                    quant_traits(t)->name, n, r, k, (double)got, (double)want);
                        fail();
                    }
                }
            }
            /* one activation row (decode) */
            for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
                y[i] = -12345.0f;
            kern_matmul(t, n, w, wrb, 1, ROWS, act + arb, arb, 1, y, 0);
            for (int r = 0; r < ROWS + 3; r++) {
                float want =
                    r >= 1 && r < ROWS ? kern_dot(t, n, w + r * wrb, act + arb) : -12345.0f;
                if (memcmp(&y[r], &want, sizeof want) != 0) {
                    print_error("%s %s n %zu decode matmul row %d: %.9g vs dot %.9g\n", impl,
                                quant_traits(t)->name, n, r, (double)y[r], (double)want);
                    fail();
                }
            }
        }
    }
}

/* Packed copies (Q5_0 and Q4_K, rows interleaved eight at a time):
 * kern_pack's layout read back by kern_matmul_packed under every
 * implementation. Where the implementation has the layout (avx2), each
 * result is within the reference's rounding of the row's dot product, and
 * a token's result is the same bits alone (decode) as in a batch
 * (prefill); elsewhere the rows are unpacked for dot, so the results are
 * dot's bit for bit. Rows 8..15 of 24 (the second group), rows of every
 * fill, three lengths: N, an odd block count, one block. */
static void check_packed(const char *impl)
{
    enum { ROWS = 24, TOK = 5 };
    static uint8_t w[ROWS * N * 2], wp[ROWS * N * 2], act[TOK * N * 2];
    static float y[TOK * ROWS], y1[ROWS];
    float x[N];
    const enum ggml_type types[2] = {GGML_TYPE_Q5_0, GGML_TYPE_Q4_K};
    assert_int_equal(kern_pack_bytes(GGML_TYPE_Q8_0, N, ROWS), 0);
    for (int ti = 0; ti < 2; ti++) {
        enum ggml_type t = types[ti];
        size_t be = kern_block_elems(t), wrb = quant_row_bytes(t, N);
        int has = kern_pack_bytes(t, N, ROWS) > 0;
        assert_int_equal(has, strcmp(impl, "avx2") == 0);
        assert_int_equal(kern_pack_bytes(t, N, ROWS - 1), 0); /* not whole groups */
        for (int r = 0; r < ROWS; r++)
            make_row(t, (enum fill)(r % 4), w + r * wrb); /* random, quantised, max, min */
        size_t sizes[3] = {N, N - be, be};
        for (int si = 0; si < 3; si++) {
            size_t n = sizes[si], arb = kern_act_row_bytes(t, n);
            size_t rows_bytes = ROWS * quant_row_bytes(t, n), pb = kern_pack_bytes(t, n, ROWS);
            /* the rows' own size; Q4_K's scales as bytes add 32 a block of 8 rows */
            if (has)
                assert_int_equal(pb,
                                 rows_bytes + (t == GGML_TYPE_Q4_K ? ROWS / 8 * n / be * 32 : 0));
            kern_pack(t, n, w, wrb, ROWS, wp);
            for (int k = 0; k < TOK; k++) {
                make_act(k == 1 ? ACT_EXTREME : ACT_RANDOM, x);
                if (k == 2) /* all +127: with the max rows, the int16 sums' worst case */
                    for (int i = 0; i < N; i++)
                        x[i] = 3.0f;
                kern_quantize_act(t, x, act + k * arb, n);
            }
            for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
                y[i] = -12345.0f;
            kern_matmul_packed(t, n, wp, 8, 16, act, arb, TOK, y, ROWS);
            for (int k = 0; k < TOK; k++) {
                for (int r = 0; r < ROWS; r++) {
                    float got = y[k * ROWS + r];
                    if (r < 8 || r >= 16) {
                        assert_true(got == -12345.0f); /* untouched */
                        continue;
                    }
                    float want = kern_dot(t, n, w + r * wrb, act + k * arb);
                    double mag, ref = reference_dot_n(t, n, w + r * wrb, act + k * arb, &mag);
                    if (has ? !(fabs(got - ref) <= 2e-5 * mag + 1e-30)
                            : memcmp(&got, &want, sizeof want) != 0) {
                        print_error("%s packed %s n %zu row %d token %d: %.9g, dot %.9g, "
                                    "reference %.9g\n",
                                    impl, quant_traits(t)->name, n, r, k, (double)got, (double)want,
                                    ref);
                        fail();
                    }
                }
                /* the same token alone */
                for (int r = 0; r < ROWS; r++)
                    y1[r] = -12345.0f;
                kern_matmul_packed(t, n, wp, 8, 16, act + k * arb, arb, 1, y1, 0);
                if (memcmp(y1 + 8, y + k * ROWS + 8, 8 * sizeof(float)) != 0) {
                    print_error("%s packed %s n %zu token %d: decode differs from prefill\n", impl,
                                quant_traits(t)->name, n, k);
                    fail();
                }
                assert_true(y1[7] == -12345.0f && y1[16] == -12345.0f);
            }
        }
        /* rows longer than the packed kernels take: kern_pack_bytes says
         * no, and a copy made anyway is read row by row, dot's bits */
        enum { LONG_BLOCKS_Q5 = 1056, LONG_BLOCKS_Q4K = 264 };
        size_t ln = (t == GGML_TYPE_Q4_K ? LONG_BLOCKS_Q4K : LONG_BLOCKS_Q5) * be;
        size_t lrb = quant_row_bytes(t, ln), larb = kern_act_row_bytes(t, ln);
        assert_int_equal(kern_pack_bytes(t, ln, 8), 0);
        static uint8_t lw[8 * 300 * 1024], lwp[8 * 310 * 1024], la[300 * 1024];
        static float lx[LONG_BLOCKS_Q4K * 256], ly[8];
        assert_true(8 * lrb <= sizeof lw && ln <= sizeof lx / sizeof lx[0] && larb <= sizeof la);
        for (size_t i = 0; i < ln; i++)
            lx[i] = frand();
        for (int r = 0; r < 8; r++)
            assert_int_equal(quant_quantize_row(t, lx, lw + r * lrb, ln), 0);
        for (size_t i = 0; i < ln; i++)
            lx[i] = frand();
        kern_quantize_act(t, lx, la, ln);
        kern_pack(t, ln, lw, lrb, 8, lwp);
        kern_matmul_packed(t, ln, lwp, 0, 8, la, larb, 1, ly, 0);
        for (int r = 0; r < 8; r++) {
            float want = kern_dot(t, ln, lw + r * lrb, la);
            assert_memory_equal(&ly[r], &want, sizeof want);
        }
    }
}

static void check_f16(const char *impl)
{
    float x[N], y[N], y2[N];
    uint16_t h[N];
    make_act(ACT_WIDE, x);
    x[3] = 70000.0f; /* overflows to inf in f16 */
    x[5] = 1e-6f;    /* subnormal in f16 */
    kern_f32_to_f16(x, h, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(h[i], quant_f32_to_f16(x[i]));
    x[3] = 1.0f;
    kern_f32_to_f16(x, h, N);
    make_act(ACT_RANDOM, y);
    memcpy(y2, y, sizeof(y));
    kern_axpy_f16(N - 3, 0.75f, h, y); /* odd length: vector body and tail */
    for (int i = 0; i < N; i++) {
        float want = i < N - 3 ? y2[i] + 0.75f * quant_f16_to_f32(h[i]) : y2[i];
        if (!(fabsf(y[i] - want) <= 1e-6f * (fabsf(want) + 1.0f))) {
            print_error("%s axpy_f16 element %d: %g vs %g\n", impl, i, (double)y[i], (double)want);
            fail();
        }
    }
}

/* Attention over the F16 cache: kern_dot_f16_rows and kern_sum_f16_rows
 * against sums in double, for head sizes with and without a vector tail,
 * row counts around the kernels' groups of eight, and a row stride wider
 * than the row; nothing past the outputs is written. */
static void check_f16_rows(const char *impl)
{
    enum { MAXN = 131, MAXR = 37, STRIDE = MAXN + 5 };
    static const size_t ns[] = {3, 8, 64, 72, 128, 131};
    static const size_t rows[] = {1, 7, 8, 9, 17, 37};
    static uint16_t kv[MAXR * STRIDE];
    float q[MAXN], w[MAXR], out[MAXN + 1];
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        kv[i] = quant_f32_to_f16(frand());
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            size_t n = ns[ni], nr = rows[ri];
            for (size_t i = 0; i < n; i++)
                q[i] = frand();
            for (size_t p = 0; p < nr; p++)
                w[p] = frand();
            out[nr] = -12345.0f;
            kern_dot_f16_rows(n, kv, STRIDE, nr, q, out);
            assert_true(out[nr] == -12345.0f);
            for (size_t p = 0; p < nr; p++) {
                double want = 0.0, mag = 0.0;
                for (size_t i = 0; i < n; i++) {
                    double t = (double)quant_f16_to_f32(kv[p * STRIDE + i]) * q[i];
                    want += t;
                    mag += fabs(t);
                }
                if (!(fabs(out[p] - want) <= 1e-6 * mag + 1e-7)) {
                    print_error("%s dot_f16_rows n %zu rows %zu row %zu: %g vs %g\n", impl, n, nr,
                                p, (double)out[p], want);
                    fail();
                }
            }
            out[n] = -12345.0f;
            kern_sum_f16_rows(n, kv, STRIDE, nr, w, out);
            assert_true(out[n] == -12345.0f);
            for (size_t i = 0; i < n; i++) {
                double want = 0.0, mag = 0.0;
                for (size_t p = 0; p < nr; p++) {
                    double t = (double)w[p] * quant_f16_to_f32(kv[p * STRIDE + i]);
                    want += t;
                    mag += fabs(t);
                }
                if (!(fabs(out[i] - want) <= 1e-6 * mag + 1e-7)) {
                    print_error("%s sum_f16_rows n %zu rows %zu column %zu: %g vs %g\n", impl, n,
                                nr, i, (double)out[i], want);
                    fail();
                }
            }
        }
}

/* The KV-group forms give each head exactly what the single-head forms
 * give it (the engine's results must not depend on how heads are grouped
 * onto threads): group sizes 1 to 9 (past one register block of eight),
 * head sizes with and without a tail and one past the grouped path's
 * limit, strides wider than the rows. */
static void check_f16_rows_heads(const char *impl)
{
    enum { MAXN = 300, MAXR = 37, STRIDE = MAXN + 3, MAXG = 9, OSTR = MAXR + 4 };
    static const size_t ns[] = {3, 64, 72, 131, 300};
    static const size_t rows[] = {1, 7, 8, 9, 37};
    static uint16_t kv[MAXR * STRIDE];
    static float q[MAXG * MAXN], w[MAXG * OSTR], got[MAXG * MAXN], want[MAXN];
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        kv[i] = quant_f32_to_f16(frand());
    for (size_t i = 0; i < MAXG * MAXN; i++)
        q[i] = frand();
    for (size_t i = 0; i < MAXG * OSTR; i++)
        w[i] = frand();
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
            for (size_t g = 1; g <= MAXG; g++) {
                size_t n = ns[ni], nr = rows[ri];
                kern_dot_f16_rows_heads(n, kv, STRIDE, nr, q, g, got, OSTR);
                for (size_t h = 0; h < g; h++) {
                    kern_dot_f16_rows(n, kv, STRIDE, nr, q + h * n, want);
                    if (memcmp(got + h * OSTR, want, nr * sizeof(float)) != 0) {
                        print_error("%s dot_f16_rows_heads n %zu rows %zu g %zu head %zu differs\n",
                                    impl, n, nr, g, h);
                        fail();
                    }
                }
                kern_sum_f16_rows_heads(n, kv, STRIDE, nr, w, OSTR, g, got);
                for (size_t h = 0; h < g; h++) {
                    kern_sum_f16_rows(n, kv, STRIDE, nr, w + h * OSTR, want);
                    if (memcmp(got + h * n, want, n * sizeof(float)) != 0) {
                        print_error("%s sum_f16_rows_heads n %zu rows %zu g %zu head %zu differs\n",
                                    impl, n, nr, g, h);
                        fail();
                    }
                }
            }
}

/* kern_softmax against softmax in double: lengths around the vector width,
 * scores far below the maximum (which underflow to 0 in float), nothing
 * past n written, and a NaN score makes NaN as expf does. */
static void check_softmax(const char *impl)
{
    static const size_t ns[] = {1, 3, 8, 13, 64, 100, 1031};
    static float x[1040];
    static double ref[1040];
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        size_t n = ns[ni];
        for (size_t i = 0; i < n; i++)
            x[i] = 40.0f * frand() - (i % 7 == 3 ? 900.0f : 0.0f);
        x[n] = -12345.0f;
        const float scale = 0.125f;
        double max = -INFINITY, sum = 0.0;
        for (size_t i = 0; i < n; i++)
            max = fmax(max, (double)(x[i] * scale));
        for (size_t i = 0; i < n; i++)
            sum += ref[i] = exp((double)(x[i] * scale) - max);
        kern_softmax(x, n, scale);
        assert_true(x[n] == -12345.0f);
        double got_sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            double want = ref[i] / sum;
            got_sum += x[i];
            if (!(fabs(x[i] - want) <= 2e-6 * want + 1e-30)) {
                print_error("%s softmax n %zu element %zu: %g vs %g\n", impl, n, i, (double)x[i],
                            want);
                fail();
            }
        }
        assert_true(fabs(got_sum - 1.0) < 1e-5);
    }
    x[0] = 1.0f, x[1] = NAN, x[2] = 2.0f;
    kern_softmax(x, 3, 1.0f);
    assert_true(isnan(x[1]));
}

/* kern_swiglu against silu(g) * u in double, over both signs, large
 * magnitudes (where e^-x alone would overflow) and a tail. */
static void check_swiglu(const char *impl)
{
    enum { LEN = 37 };
    float g[LEN + 1], u[LEN], g0[LEN];
    for (int i = 0; i < LEN; i++) {
        g0[i] = g[i] = 12.0f * frand() * (i % 5 == 2 ? 20.0f : 1.0f);
        u[i] = frand();
    }
    g[LEN] = -12345.0f;
    kern_swiglu(g, u, LEN);
    assert_true(g[LEN] == -12345.0f);
    for (int i = 0; i < LEN; i++) {
        double x = g0[i], want = x / (1.0 + exp(-x)) * u[i];
        if (!(fabs(g[i] - want) <= 1e-6 * fabs(want) + 1e-30)) {
            print_error("%s swiglu element %d (x = %g): %g vs %g\n", impl, i, x, (double)g[i],
                        want);
            fail();
        }
    }
}

static void run_impl(enum kern_impl_id id, const char *name)
{
    char err[ERR_LEN] = "";
    if (!kern_available(id)) {
        print_message("[  SKIPPED ] %s kernels: this CPU or build cannot run them\n", name);
        skip();
    }
    assert_int_equal(kern_select(id, err), 0);
    assert_string_equal(kern_name(), name);
    check_all_types(name);
    check_activations(name);
    check_matmul(name);
    check_packed(name);
    check_f16(name);
    check_f16_rows(name);
    check_f16_rows_heads(name);
    check_softmax(name);
    check_swiglu(name);
}

static void test_scalar(void **state)
{
    (void)state;
    run_impl(KERN_SCALAR, "scalar");
}

static void test_avx2(void **state)
{
    (void)state;
    run_impl(KERN_AVX2, "avx2");
}

static void test_neon(void **state)
{
    (void)state;
    run_impl(KERN_NEON, "neon");
}

/* The vector quantisers follow the scalar rule exactly (same scale, same
 * rounding with ties away from zero, NaN ignored by the maximum and made
 * 127), so activations are bit-identical across implementations and a
 * model's outputs differ only by summation order. */
static void test_activations_identical(void **state)
{
    (void)state;
    char err[ERR_LEN] = "";
    enum kern_impl_id other = kern_available(KERN_AVX2) ? KERN_AVX2 : KERN_NEON;
    if (!kern_available(other)) {
        print_message("[  SKIPPED ] no vector kernels on this CPU to compare with scalar\n");
        skip();
    }
    static uint8_t a1[N * 2], a2[N * 2];
    float x[N];
    const enum ggml_type wtypes[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_K};
    for (int k = 0; k < 2; k++)
        for (int af = ACT_RANDOM; af <= ACT_TIES + 1; af++) {
            make_act(af <= ACT_TIES ? (enum act_fill)af : ACT_RANDOM, x);
            if (af > ACT_TIES) /* and once with NaN in every block */
                for (int i = 0; i < N; i += 7)
                    x[i] = NAN;
            assert_int_equal(kern_select(KERN_SCALAR, err), 0);
            kern_quantize_act(wtypes[k], x, a1, N);
            assert_int_equal(kern_select(other, err), 0);
            kern_quantize_act(wtypes[k], x, a2, N);
            assert_memory_equal(a1, a2, kern_act_row_bytes(wtypes[k], N));
        }
}

static void test_select(void **state)
{
    (void)state;
    char err[ERR_LEN] = "";
    assert_false(kern_supported(GGML_TYPE_Q5_K));
    assert_int_equal(kern_act_type(GGML_TYPE_Q3_K), GGML_TYPE_COUNT);
    assert_int_equal(kern_act_type(GGML_TYPE_Q5_0), GGML_TYPE_Q8_0);
    assert_int_equal(kern_act_type(GGML_TYPE_Q6_K), GGML_TYPE_Q8_K);
    assert_int_equal(kern_act_type(GGML_TYPE_BF16), GGML_TYPE_F32);
    assert_int_equal(kern_act_row_bytes(GGML_TYPE_Q4_K, 512), 2 * 292);
    assert_int_equal(kern_block_elems(GGML_TYPE_Q4_0), 32);
    setenv("JOULEBENCH_KERNELS", "fancy", 1);
    assert_int_equal(kern_select(KERN_AUTO, err), JB_ERR_USAGE);
    assert_non_null(strstr(err, "JOULEBENCH_KERNELS=fancy"));
    setenv("JOULEBENCH_KERNELS", "scalar", 1);
    assert_int_equal(kern_select(KERN_AUTO, err), 0);
    assert_string_equal(kern_name(), "scalar");
    unsetenv("JOULEBENCH_KERNELS");
    assert_int_equal(kern_select(KERN_AUTO, err), 0);
#if defined(__x86_64__)
    if (kern_available(KERN_AVX2))
        assert_string_equal(kern_name(), "avx2");
    assert_false(kern_available(KERN_NEON));
    assert_int_equal(kern_select(KERN_NEON, err), JB_ERR_UNSUPPORTED);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar), cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_neon),   cmocka_unit_test(test_activations_identical),
        cmocka_unit_test(test_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
