/*
 * kernels_avx2.c — x86-64 kernels with AVX2, FMA and F16C. Every function
 * carries the target attribute instead of the file being built with -mavx2,
 * so the rest of the binary runs on any x86-64 and this table is offered
 * only when __builtin_cpu_supports() finds the three extensions.
 *
 * Integer block products use vpmaddubsw (unsigned byte x signed byte, pairs
 * summed to int16) then vpmaddwd (int16 pairs to int32). The unsigned
 * operand is the weight nibble (0..15, 0..63) or |w| with the sign moved
 * onto the activation; activations stay within [-127, 127], so no int16
 * pair sum can saturate (at most 2 * 128 * 127).
 */
#include "infer/kernels_impl.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <math.h>
#include <immintrin.h>
#include <string.h>
/* Decode streams each weight row once from memory; asking for the block
 * 2 KiB ahead keeps more reads in flight than the hardware prefetcher
 * alone (Q8_0 decode about +10 % on the 2-core test machine; 512 and 1024
 * bytes did less). Prefill tiles reuse rows from cache and skip it. */
#define PF_DIST 2048

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* Loops that must be unrolled, since each pass uses other constants (a
 * shift count, a shuffle control): left rolled, the compiler builds them
 * at run time. */
#if defined(__clang__)
#define UNROLL_ALL _Pragma("clang loop unroll(full)")
#else
#define UNROLL_ALL _Pragma("GCC unroll 32")
#endif

AVX2 static inline float f16_to_f32(uint16_t h)
{
    return _cvtsh_ss(h);
}

AVX2 static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline float hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 16 bytes of packed nibbles -> 32 bytes: low nibbles first (elements
 * 0..15), then high nibbles (16..31). */
AVX2 static inline __m256i unpack_nibbles_q4_0(const uint8_t *qs)
{
    __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    v = _mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, 0xFF where the bit is set (byte i for bit i). */
AVX2 static inline __m256i bits_to_bytes(uint32_t bits)
{
    __m256i v = _mm256_set1_epi32((int)bits);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                           0x0101010101010101LL, 0x0000000000000000LL);
    v = _mm256_shuffle_epi8(v, shuf);
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7FBFDFEFF7FBFDFELL));
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1LL));
}

/* ---- activations ---- */

/* 8 floats -> 8 int32: x * id rounded to nearest with ties away from zero
 * (as roundf: truncate after adding the largest float below 0.5 with x's
 * sign), clamped to [-127, 127] (which also gives NaN a defined value). */
AVX2 static inline __m256i quant8(const float *x, __m256 id)
{
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), id);
    __m256 half =
        _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(0.49999997f));
    v = _mm256_round_ps(_mm256_add_ps(v, half), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    /* min/max return their second operand when one is NaN: v goes first */
    v = _mm256_max_ps(_mm256_min_ps(v, _mm256_set1_ps(127.0f)), _mm256_set1_ps(-127.0f));
    return _mm256_cvtps_epi32(v);
}

/* 32 floats -> 32 int8 in element order. */
AVX2 static inline __m256i quant32(const float *x, __m256 id)
{
    /* packs work per 128-bit lane; the permute restores element order */
    __m256i p01 = _mm256_packs_epi32(quant8(x, id), quant8(x + 8, id));
    __m256i p23 = _mm256_packs_epi32(quant8(x + 16, id), quant8(x + 24, id));
    __m256i p = _mm256_packs_epi16(p01, p23);
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Largest |x| of 32 floats; NaN is ignored as fmaxf does (vmaxps returns
 * its second operand, the running maximum, when the first is NaN). */
AVX2 static inline float amax32(const float *x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 32; i += 8)
        m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), m);
    return hmax_ps(m);
}

/* Same rule as the scalar quantiser (kernels.c). */
AVX2 static void avx2_quantize_q8_0(const float *x, void *dst, size_t n)
{
    struct quant_block_q8_0 *y = dst;
    for (size_t b = 0; b < n / QK8_0; b++, x += QK8_0) {
        float amax = amax32(x);
        y[b].d = _cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT);
        float d = f16_to_f32(y[b].d);
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        _mm256_storeu_si256((__m256i *)y[b].qs, quant32(x, _mm256_set1_ps(id)));
    }
}

AVX2 static void avx2_quantize_q8_k(const float *x, void *dst, size_t n)
{
    struct quant_block_q8_k *y = dst;
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float amax = 0.0f;
        for (int i = 0; i < QK_K; i += 32) {
            float m = amax32(x + i);
            amax = m > amax ? m : amax;
        }
        float d = amax / 127.0f;
        float id = quant_q8_k_inverse(d);
        y[b].d = d;
        __m256 vid = _mm256_set1_ps(id);
        for (int i = 0; i < QK_K; i += 32) {
            __m256i q = quant32(x + i, vid);
            _mm256_storeu_si256((__m256i *)(y[b].qs + i), q);
            /* sums of each 16: bytes to int16 pairs, then 8 pairs to one */
            __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
            __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
            __m128i lo = _mm256_castsi256_si128(s32), hi = _mm256_extracti128_si256(s32, 1);
            lo = _mm_hadd_epi32(lo, hi); /* [a01 a23 b01 b23] */
            lo = _mm_hadd_epi32(lo, lo); /* [a b a b] */
            y[b].bsums[i / 16] = (int16_t)_mm_cvtsi128_si32(lo);
            y[b].bsums[i / 16 + 1] = (int16_t)_mm_extract_epi32(lo, 1);
        }
    }
}

AVX2 static void avx2_f32_to_f16(const float *x, uint16_t *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

AVX2 static void avx2_axpy_f16(size_t n, float a, const uint16_t *x, float *y)
{
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, vx, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++)
        y[i] += a * f16_to_f32(x[i]);
}

/* ---- float weights ---- */

AVX2 static inline __m256 load_bf16(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

AVX2 static inline __m256 load_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

AVX2 static float avx2_dot_f32(size_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

AVX2 static float avx2_dot_f16(size_t n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_f16(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(load_f16(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_f16(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_f16(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(load_f16(x + i), _mm256_loadu_ps(y + i), s0);
    float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        s += f16_to_f32(x[i]) * y[i];
    return s;
}

AVX2 static float avx2_dot_bf16(size_t n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(load_bf16(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(load_bf16(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(load_bf16(x + i), _mm256_loadu_ps(y + i), s0);
    float s = hsum_ps(_mm256_add_ps(s0, s1));
    for (; i < n; i++) {
        uint32_t u = (uint32_t)x[i] << 16;
        float f;
        memcpy(&f, &u, sizeof(f));
        s += f * y[i];
    }
    return s;
}

/* ---- attention over the F16 KV cache ---- */

/* out[p] = dot(k row p, q) for n_rows rows, eight rows at a time: eight
 * independent accumulators keep the FMA pipes busy where one row's chain
 * of dependent FMAs would wait on their latency, and three rounds of
 * horizontal adds finish eight sums together instead of one reduction
 * per row. */
AVX2 static void avx2_dot_f16_rows(size_t n, const uint16_t *k, size_t stride, size_t n_rows,
                                   const float *q, float *out)
{
    size_t n8 = n / 8 * 8, p = 0;
    for (; p + 8 <= n_rows; p += 8) {
        __m256 a[8];
        for (int r = 0; r < 8; r++)
            a[r] = _mm256_setzero_ps();
        for (size_t i = 0; i < n8; i += 8) {
            __m256 qv = _mm256_loadu_ps(q + i);
            for (int r = 0; r < 8; r++)
                a[r] = _mm256_fmadd_ps(load_f16(k + (p + (size_t)r) * stride + i), qv, a[r]);
        }
        /* [s0 s1 s2 s3 | s0 s1 s2 s3] halves, then the halves added */
        __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
        __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
        __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20),
                                 _mm256_permute2f128_ps(t0, t1, 0x31));
        _mm256_storeu_ps(out + p, s);
        for (size_t i = n8; i < n; i++)
            for (int r = 0; r < 8; r++)
                out[p + (size_t)r] += f16_to_f32(k[(p + (size_t)r) * stride + i]) * q[i];
    }
    for (; p < n_rows; p++)
        out[p] = avx2_dot_f16(n, k + p * stride, q);
}

/* out = sum over rows p of w[p] * (v row p), 64 columns at a time held in
 * eight registers across all the rows: axpy per row stored the whole sum
 * and loaded it back for the next row, a chain through memory. Each
 * column still adds its rows in order with one FMA each, as axpy did. */
AVX2 static void avx2_sum_f16_rows(size_t n, const uint16_t *v, size_t stride, size_t n_rows,
                                   const float *w, float *out)
{
    size_t c = 0;
    for (; c + 64 <= n; c += 64) {
        __m256 a[8];
        for (int i = 0; i < 8; i++)
            a[i] = _mm256_setzero_ps();
        for (size_t p = 0; p < n_rows; p++) {
            __m256 wp = _mm256_broadcast_ss(w + p);
            const uint16_t *row = v + p * stride + c;
            for (int i = 0; i < 8; i++)
                a[i] = _mm256_fmadd_ps(wp, load_f16(row + 8 * i), a[i]);
        }
        for (int i = 0; i < 8; i++)
            _mm256_storeu_ps(out + c + 8 * (size_t)i, a[i]);
    }
    for (; c + 8 <= n; c += 8) {
        __m256 a = _mm256_setzero_ps();
        for (size_t p = 0; p < n_rows; p++)
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + p), load_f16(v + p * stride + c), a);
        _mm256_storeu_ps(out + c, a);
    }
    for (; c < n; c++) {
        float a = 0.0f;
        for (size_t p = 0; p < n_rows; p++)
            a += w[p] * f16_to_f32(v[p * stride + c]);
        out[c] = a;
    }
}

/* avx2_sum_f16_rows for G (<= 8, a constant after inlining) heads: each
 * eight columns of a cache row are converted once and added into every
 * head's sum, in row order, one FMA each as there, so each head gets the
 * same bits. */
AVX2 static inline __attribute__((always_inline)) void
sum_rows_heads(size_t n, const uint16_t *v, size_t stride, size_t n_rows, const float *w,
               size_t w_stride, int G, float *out)
{
    size_t c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256 a[8];
        for (int h = 0; h < G; h++)
            a[h] = _mm256_setzero_ps();
        for (size_t p = 0; p < n_rows; p++) {
            __m256 vv = load_f16(v + p * stride + c);
            for (int h = 0; h < G; h++)
                a[h] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + (size_t)h * w_stride + p), vv, a[h]);
        }
        for (int h = 0; h < G; h++)
            _mm256_storeu_ps(out + (size_t)h * n + c, a[h]);
    }
    for (; c < n; c++)
        for (int h = 0; h < G; h++) {
            float a = 0.0f;
            for (size_t p = 0; p < n_rows; p++)
                a += w[(size_t)h * w_stride + p] * f16_to_f32(v[p * stride + c]);
            out[(size_t)h * n + c] = a;
        }
}

AVX2 static void avx2_sum_f16_rows_heads(size_t n, const uint16_t *v, size_t stride, size_t n_rows,
                                         const float *w, size_t w_stride, size_t g, float *out)
{
    for (size_t h0 = 0; h0 < g; h0 += 8) {
        const float *wh = w + h0 * w_stride;
        float *oh = out + h0 * n;
/* one case per group size, so the accumulators are registers */
#define SUM_HEADS(G)                                                                               \
    case G:                                                                                        \
        sum_rows_heads(n, v, stride, n_rows, wh, w_stride, G, oh);                                 \
        break;
        switch (g - h0 < 8 ? g - h0 : 8) {
            SUM_HEADS(1)
            SUM_HEADS(2)
            SUM_HEADS(3)
            SUM_HEADS(4)
            SUM_HEADS(5)
            SUM_HEADS(6)
            SUM_HEADS(7)
            SUM_HEADS(8)
        }
#undef SUM_HEADS
    }
}

/* e^x for x <= 0 (softmax's x - max), within 3 ulp (2.2e-7 relative,
 * checked against exp in double over [-87, 0]) down to -87, where it is
 * near the smallest normal float; below that it stays there instead of
 * going to 0, which a sum led by e^0 = 1 cannot see. x = k ln 2 + r with
 * |r| <= ln 2 / 2 (ln 2 in two parts, so k ln 2 is exact), e^r by its
 * Taylor series to r^6 / 720, times 2^k built in the exponent bits. */
AVX2 static inline __m256 exp_neg_ps(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x); /* x second: NaN stays NaN */
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* Softmax of scale * x in three passes, eight values at a time; the tail
 * goes through the same vector code, with masked loads and stores and the
 * lanes past n kept out of the maximum (-inf) and the sum (zeroed). */
AVX2 static void avx2_softmax(float *x, size_t n, float scale)
{
    const __m256 vs = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
    size_t n8 = n / 8 * 8, rest = n - n8;
    __m256i tail_mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 vmax = ninf;
    for (size_t i = 0; i < n8; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        _mm256_storeu_ps(x + i, v);
        vmax = _mm256_max_ps(v, vmax);
    }
    if (rest) {
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + n8, tail_mask), vs);
        v = _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(tail_mask));
        _mm256_maskstore_ps(x + n8, tail_mask, v);
        vmax = _mm256_max_ps(v, vmax);
    }
    __m256 m = _mm256_set1_ps(hmax_ps(vmax));
    __m256 vsum = _mm256_setzero_ps();
    for (size_t i = 0; i < n8; i += 8) {
        __m256 e = exp_neg_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    if (rest) {
        __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + n8, tail_mask),
                                    _mm256_castsi256_ps(tail_mask));
        __m256 e = _mm256_and_ps(exp_neg_ps(_mm256_sub_ps(v, m)), _mm256_castsi256_ps(tail_mask));
        _mm256_maskstore_ps(x + n8, tail_mask, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    __m256 inv = _mm256_set1_ps(1.0f / hsum_ps(vsum));
    for (size_t i = 0; i < n8; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    if (rest)
        _mm256_maskstore_ps(x + n8, tail_mask,
                            _mm256_mul_ps(_mm256_maskload_ps(x + n8, tail_mask), inv));
}

/* silu(g) * u with silu(x) = x * sigmoid(x), sigmoid from t = e^-|x| (never
 * overflows): 1 / (1 + t) for x >= 0, t / (1 + t) below; the tail as
 * scalar code. */
AVX2 static void avx2_swiglu(float *g, const float *u, size_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 t = exp_neg_ps(_mm256_or_ps(x, sign)); /* e^-|x| */
        __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, t));
        __m256 sig = _mm256_blendv_ps(r, _mm256_mul_ps(t, r), x); /* x's sign picks */
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(x, sig), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* ---- 32-element blocks with Q8_0 activations ---- */

/* The 32-element block types against T activation rows at once (T <= 4
 * after inlining): each weight block is loaded and unpacked to signed bytes
 * once, with its scale converted once, and used for every token. */
enum small_kind { SK_Q8_0, SK_Q4_0, SK_Q5_0 };

AVX2 static inline __attribute__((always_inline)) void small_tokens(enum small_kind kind, size_t n,
                                                                    const void *w, const void *a,
                                                                    size_t a_stride, int T,
                                                                    float *y, size_t ldy)
{
    const uint8_t *wb = w;
    size_t bsz = kind == SK_Q8_0   ? sizeof(struct quant_block_q8_0)
                 : kind == SK_Q4_0 ? sizeof(struct quant_block_q4_0)
                                   : sizeof(struct quant_block_q5_0);
    __m256 acc[4];
    for (int t = 0; t < T; t++)
        acc[t] = _mm256_setzero_ps();
    for (size_t b = 0; b < n / QK8_0; b++) {
        const uint8_t *blk = wb + b * bsz;
        if (T == 1)
            _mm_prefetch((const char *)(blk + PF_DIST), _MM_HINT_T0);
        uint16_t dh;
        memcpy(&dh, blk, 2);
        __m256i q;
        if (kind == SK_Q8_0) {
            q = _mm256_loadu_si256((const __m256i *)(blk + 2));
        } else if (kind == SK_Q4_0) {
            q = _mm256_sub_epi8(unpack_nibbles_q4_0(blk + 2), _mm256_set1_epi8(8));
        } else {
            uint32_t qh;
            memcpy(&qh, blk + 2, 4);
            q = _mm256_sub_epi8(unpack_nibbles_q4_0(blk + 6),
                                _mm256_andnot_si256(bits_to_bytes(qh), _mm256_set1_epi8(16)));
        }
        __m256i aq = _mm256_sign_epi8(q, q);
        float d = f16_to_f32(dh);
        for (int t = 0; t < T; t++) {
            const struct quant_block_q8_0 *yb =
                (const struct quant_block_q8_0 *)((const uint8_t *)a + (size_t)t * a_stride) + b;
            __m256i sy = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)yb->qs), q);
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, sy), _mm256_set1_epi16(1));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * f16_to_f32(yb->d)), _mm256_cvtepi32_ps(p),
                                     acc[t]);
        }
    }
    for (int t = 0; t < T; t++)
        y[(size_t)t * ldy] = hsum_ps(acc[t]);
}

/* Decode for the 32-element types: one weight row against the single
 * activation row. What depends only on the activation is made once for all
 * rows by the caller (small_decode), one 32-byte-aligned record a block:
 * the quants (so their loads never cross a cache line), the block scale
 * broadcast to 8 lanes, and for Q4_0 and Q5_0 the offset term (8 int32
 * lanes of off * sum of 4 activations, off = 8 or 16). The 4- and 5-bit
 * weights then go into vpmaddubsw unsigned, as stored, and the offset is
 * taken off the int32 sums, instead of the two sign operations per block
 * that signed weights need. The int32 lanes are exactly small_tokens()'s
 * (the same 4 products each), the scale is the same float product in
 * every lane, and the blocks are added in the same order, so the result
 * equals dot's bit for bit. */
struct small_act {
    __m256i y;  /* the 32 activation quants */
    __m256i ob; /* Q4_0 and Q5_0: the offset term */
    __m256 dy;  /* the activation block's scale in every lane */
};

AVX2 static inline __attribute__((always_inline)) __m256
small_step(enum small_kind kind, const uint8_t *blk, const struct small_act *a, __m256 acc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i p;
    if (kind == SK_Q8_0) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 2));
        p = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a->y, q)), ones);
    } else {
        __m256i u;
        if (kind == SK_Q4_0) {
            u = unpack_nibbles_q4_0(blk + 2);
        } else {
            uint32_t qh;
            memcpy(&qh, blk + 2, 4);
            u = _mm256_or_si256(unpack_nibbles_q4_0(blk + 6),
                                _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(16)));
        }
        p = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u, a->y), ones), a->ob);
    }
    /* the weight's f16 scale broadcast straight from memory and converted
     * in all 8 lanes: one instruction fewer than converting one lane and
     * broadcasting the product */
    uint16_t dh;
    memcpy(&dh, blk, 2);
    __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16((short)dh)), a->dy);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}

/* Four blocks a step, written out. With 4- and 5-bit weights decode is
 * bound by how many instructions the core issues a cycle (on a machine
 * whose two vCPUs share one core, by both threads' together). A block
 * took 25 instructions, 5 of them moving four pointers and the loop test;
 * with one record array and four blocks a step it takes about 19, the
 * scale's broadcast included. Each step asks for the 72 to 136 bytes it
 * will read PF_DIST ahead, one prefetch per 64 bytes. */
AVX2 static inline __attribute__((always_inline)) float
small_row(enum small_kind kind, size_t n, const uint8_t *w, const struct small_act *a)
{
    size_t bsz = kind == SK_Q8_0   ? sizeof(struct quant_block_q8_0)
                 : kind == SK_Q4_0 ? sizeof(struct quant_block_q4_0)
                                   : sizeof(struct quant_block_q5_0);
    size_t nb = n / QK8_0, b = 0;
    const uint8_t *blk = w;
    __m256 acc = _mm256_setzero_ps();
    for (; b + 4 <= nb; b += 4, blk += 4 * bsz) {
        _mm_prefetch((const char *)(blk + PF_DIST), _MM_HINT_T0);
        _mm_prefetch((const char *)(blk + PF_DIST + 64), _MM_HINT_T0);
        if (4 * bsz > 128)
            _mm_prefetch((const char *)(blk + PF_DIST + 128), _MM_HINT_T0);
        acc = small_step(kind, blk, a + b, acc);
        acc = small_step(kind, blk + bsz, a + b + 1, acc);
        acc = small_step(kind, blk + 2 * bsz, a + b + 2, acc);
        acc = small_step(kind, blk + 3 * bsz, a + b + 3, acc);
    }
    for (; b < nb; b++, blk += bsz) {
        _mm_prefetch((const char *)(blk + PF_DIST), _MM_HINT_T0);
        acc = small_step(kind, blk, a + b, acc);
    }
    return hsum_ps(acc);
}

#define TILE_MAX_BLOCKS 1024 /* rows up to 32768 elements take the tile path */

/* A function of its own, so its 96 KiB of records and the prefill path's
 * scales do not share one stack frame. */
AVX2 static __attribute__((noinline)) void small_decode(enum small_kind kind, size_t n,
                                                        const uint8_t *w, size_t w_stride,
                                                        size_t n_rows,
                                                        const struct quant_block_q8_0 *a0, float *y)
{
    size_t nb = n / QK8_0;
    struct small_act act[TILE_MAX_BLOCKS]; /* 32-byte aligned, as __m256i is */
    __m256i off = _mm256_set1_epi8(kind == SK_Q4_0 ? 8 : 16);
    for (size_t b = 0; b < nb; b++) {
        act[b].y = _mm256_loadu_si256((const __m256i *)a0[b].qs);
        act[b].dy = _mm256_set1_ps(f16_to_f32(a0[b].d));
        if (kind != SK_Q8_0)
            act[b].ob =
                _mm256_madd_epi16(_mm256_maddubs_epi16(off, act[b].y), _mm256_set1_epi16(1));
    }
    for (size_t r = 0; r < n_rows; r++)
        y[r] = small_row(kind, n, w + r * w_stride, act);
}

/* Prefill tiles for the 32-element types: R rows (1 or 2) x T tokens (up
 * to 4), with the tokens' block scales converted to float once per tile
 * (dyf, T x nb) instead of once per row. Each (row, token) result is the
 * same sequence of operations as small_tokens() performs for it alone, so
 * prefill and decode give the same bits. */
AVX2 static inline __attribute__((always_inline)) void
small_tile(enum small_kind kind, size_t n, const uint8_t *w, size_t w_stride, int R,
           const uint8_t *a, size_t a_stride, int T, const float *dyf, float *y, size_t ldy)
{
    size_t nb = n / QK8_0;
    size_t bsz = kind == SK_Q8_0   ? sizeof(struct quant_block_q8_0)
                 : kind == SK_Q4_0 ? sizeof(struct quant_block_q4_0)
                                   : sizeof(struct quant_block_q5_0);
    __m256 acc[2][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        __m256i q[2], aq[2];
        __m256 dx[2];
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + (size_t)r * w_stride + b * bsz;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            if (kind == SK_Q8_0) {
                q[r] = _mm256_loadu_si256((const __m256i *)(blk + 2));
            } else if (kind == SK_Q4_0) {
                q[r] = _mm256_sub_epi8(unpack_nibbles_q4_0(blk + 2), _mm256_set1_epi8(8));
            } else {
                uint32_t qh;
                memcpy(&qh, blk + 2, 4);
                q[r] =
                    _mm256_sub_epi8(unpack_nibbles_q4_0(blk + 6),
                                    _mm256_andnot_si256(bits_to_bytes(qh), _mm256_set1_epi8(16)));
            }
            aq[r] = _mm256_sign_epi8(q[r], q[r]);
            dx[r] = _mm256_set1_ps(f16_to_f32(dh));
        }
        for (int t = 0; t < T; t++) {
            const struct quant_block_q8_0 *yb =
                (const struct quant_block_q8_0 *)(a + (size_t)t * a_stride) + b;
            __m256i yv = _mm256_loadu_si256((const __m256i *)yb->qs);
            __m256 dy = _mm256_broadcast_ss(dyf + (size_t)t * nb + b);
            for (int r = 0; r < R; r++) {
                __m256i p = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(aq[r], _mm256_sign_epi8(yv, q[r])), _mm256_set1_epi16(1));
                acc[r][t] =
                    _mm256_fmadd_ps(_mm256_mul_ps(dx[r], dy), _mm256_cvtepi32_ps(p), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + (size_t)r] = hsum_ps(acc[r][t]);
}

AVX2 static inline __attribute__((always_inline)) void
small_matmul(enum small_kind kind, size_t n, const void *w, size_t w_stride, size_t n_rows,
             const void *a, size_t a_stride, size_t n_act, float *y, size_t ldy)
{
    size_t nb = n / QK8_0;
    const uint8_t *wb = w, *ab = a;
    if (n_act == 1 && nb <= TILE_MAX_BLOCKS) {
        small_decode(kind, n, wb, w_stride, n_rows, a, y);
        return;
    }
    float dyf[4 * TILE_MAX_BLOCKS];
    for (size_t k = 0; k < n_act; k += 4) {
        int T = n_act - k >= 4 ? 4 : (int)(n_act - k);
        const uint8_t *ak = ab + k * a_stride;
        float *yk = y + k * ldy;
        if (nb > TILE_MAX_BLOCKS) {
            for (size_t r = 0; r < n_rows; r++)
                for (int t = 0; t < T; t++)
                    small_tokens(kind, n, wb + r * w_stride, ak + (size_t)t * a_stride, 0, 1,
                                 yk + (size_t)t * ldy + r, 0);
            continue;
        }
        for (int t = 0; t < T; t++)
            for (size_t b = 0; b < nb; b++) {
                const struct quant_block_q8_0 *yb =
                    (const struct quant_block_q8_0 *)(ak + (size_t)t * a_stride) + b;
                dyf[(size_t)t * nb + b] = f16_to_f32(yb->d);
            }
        size_t r = 0;
        if (T == 4) {
            for (; r + 2 <= n_rows; r += 2)
                small_tile(kind, n, wb + r * w_stride, w_stride, 2, ak, a_stride, 4, dyf, yk + r,
                           ldy);
            for (; r < n_rows; r++)
                small_tile(kind, n, wb + r * w_stride, w_stride, 1, ak, a_stride, 4, dyf, yk + r,
                           ldy);
        } else {
            for (; r < n_rows; r++)
                for (int t = 0; t < T; t++)
                    small_tile(kind, n, wb + r * w_stride, w_stride, 1, ak + (size_t)t * a_stride,
                               a_stride, 1, dyf + (size_t)t * nb, yk + (size_t)t * ldy + r, ldy);
        }
    }
}

#define SMALL_MATMUL(fn, kind)                                                                     \
    AVX2 static void fn(size_t n, const void *w, size_t w_stride, size_t n_rows, const void *a,    \
                        size_t a_stride, size_t n_act, float *y, size_t ldy)                       \
    {                                                                                              \
        small_matmul(kind, n, w, w_stride, n_rows, a, a_stride, n_act, y, ldy);                    \
    }
SMALL_MATMUL(avx2_matmul_q8_0, SK_Q8_0)
SMALL_MATMUL(avx2_matmul_q4_0, SK_Q4_0)
SMALL_MATMUL(avx2_matmul_q5_0, SK_Q5_0)

/* Single rows use the same code with T = 1, so a token's result does not
 * depend on whether it came alone (decode) or in a batch (prefill): same
 * operations, same order, same bits. */
#define SMALL_DOT(fn, kind)                                                                        \
    AVX2 static float fn(size_t n, const void *w, const void *a)                                   \
    {                                                                                              \
        float y;                                                                                   \
        small_tokens(kind, n, w, a, 0, 1, &y, 0);                                                  \
        return y;                                                                                  \
    }
SMALL_DOT(avx2_dot_q8_0, SK_Q8_0)
SMALL_DOT(avx2_dot_q4_0, SK_Q4_0)
SMALL_DOT(avx2_dot_q5_0, SK_Q5_0)

/* ---- Q5_0 packed eight rows at a time (the layout: kernels_impl.h) ---- */

/* The fifth bits of vector k (0..7) of a packed block, at bit 4: hbits
 * holds them at bit k. Word shifts carry bits into the next byte, but bit
 * 4 of each byte still comes from bit k of that byte, and the mask drops
 * the rest. */
AVX2 static inline __attribute__((always_inline)) __m256i x8_hbits(__m256i hb, int k)
{
    __m256i v = k < 4 ? _mm256_slli_epi16(hb, 4 - k) : k > 4 ? _mm256_srli_epi16(hb, k - 4) : hb;
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* One packed block of 8 rows against T tokens (T <= 4, a constant after
 * inlining). Vector k holds elements 4k..4k+3 of every row, so one 32-bit
 * broadcast of the token's activations serves all 8 rows, and the vectors
 * are unpacked once for all tokens. A row's 32 products go to int16 in two
 * halves of four vpmaddubsw each (at most 4 x 2 x 31 x 127 = 31496), then
 * to int32; 16 times the activations' sum comes off (the weights went in
 * unsigned, 0..31), and one FMA a token adds the block, a lane per row.
 * About 74 instructions for the 176 bytes in decode, against 8 x 19 for
 * the rows one at a time. A token's operations do not depend on T, so
 * decode and prefill give the same bits. */
AVX2 static inline __attribute__((always_inline)) void x8_block(const uint8_t *xb,
                                                                const uint8_t *const *ya,
                                                                const float *dy, const int32_t *ob,
                                                                int T, __m256 *acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256i hb = _mm256_loadu_si256((const __m256i *)(xb + 16));
    __m256i p[4];
    for (int t = 0; t < T; t++)
        p[t] = _mm256_setzero_si256();
    UNROLL_ALL for (int h = 0; h < 2; h++)
    {
        __m256i s16[4];
        for (int t = 0; t < T; t++)
            s16[t] = _mm256_setzero_si256();
        UNROLL_ALL for (int c = 2 * h; c < 2 * h + 2; c++)
        {
            __m256i q = _mm256_loadu_si256((const __m256i *)(xb + 48 + 32 * c));
            __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), x8_hbits(hb, c));
            __m256i hi =
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), x8_hbits(hb, c + 4));
            for (int t = 0; t < T; t++) {
                int32_t y0, y1;
                memcpy(&y0, ya[t] + 4 * c, 4);
                memcpy(&y1, ya[t] + 16 + 4 * c, 4);
                s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(lo, _mm256_set1_epi32(y0)));
                s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(hi, _mm256_set1_epi32(y1)));
            }
        }
        for (int t = 0; t < T; t++)
            p[t] = _mm256_add_epi32(p[t], _mm256_madd_epi16(s16[t], ones));
    }
    __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
    for (int t = 0; t < T; t++)
        acc[t] = _mm256_fmadd_ps(
            _mm256_mul_ps(d, _mm256_set1_ps(dy[t])),
            _mm256_cvtepi32_ps(_mm256_sub_epi32(p[t], _mm256_set1_epi32(ob[t]))), acc[t]);
}

/* n_groups groups of 8 rows against T tokens; dyf and obs hold each
 * token's block scales and offsets (T x nb). Decode asks for the 176 bytes
 * of a block PF_DIST ahead. */
AVX2 static inline __attribute__((always_inline)) void
x8_groups(size_t nb, const uint8_t *g0, size_t n_groups, const uint8_t *a, size_t a_stride, int T,
          const float *dyf, const int32_t *obs, float *y, size_t ldy)
{
    for (size_t g = 0; g < n_groups; g++) {
        const uint8_t *gp = g0 + g * nb * KERN_Q5_0_X8_BLOCK;
        __m256 acc[4];
        for (int t = 0; t < T; t++)
            acc[t] = _mm256_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *xb = gp + b * KERN_Q5_0_X8_BLOCK;
            if (T == 1) {
                _mm_prefetch((const char *)xb + PF_DIST, _MM_HINT_T0);
                _mm_prefetch((const char *)xb + PF_DIST + 64, _MM_HINT_T0);
                _mm_prefetch((const char *)xb + PF_DIST + 128, _MM_HINT_T0);
            }
            const uint8_t *ya[4];
            float dy[4];
            int32_t ob[4];
            for (int t = 0; t < T; t++) {
                ya[t] =
                    (const uint8_t *)((const struct quant_block_q8_0 *)(a + (size_t)t * a_stride) +
                                      b)
                        ->qs;
                dy[t] = dyf[(size_t)t * nb + b];
                ob[t] = obs[(size_t)t * nb + b];
            }
            x8_block(xb, ya, dy, ob, T, acc);
        }
        for (int t = 0; t < T; t++)
            _mm256_storeu_ps(y + (size_t)t * ldy + g * KERN_PACK_ROWS, acc[t]);
    }
}

AVX2 static void avx2_matmul_packed_q5_0(size_t n, const void *wp, size_t n_groups, const void *a,
                                         size_t a_stride, size_t n_act, float *y, size_t ldy)
{
    size_t nb = n / QK8_0;
    float dyf[4 * KERN_PACK_MAX_BLOCKS];
    int32_t obs[4 * KERN_PACK_MAX_BLOCKS];
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (size_t k = 0; k < n_act; k += 4) {
        int T = n_act - k >= 4 ? 4 : (int)(n_act - k);
        const uint8_t *ak = (const uint8_t *)a + k * a_stride;
        for (int t = 0; t < T; t++)
            for (size_t b = 0; b < nb; b++) {
                const struct quant_block_q8_0 *yb =
                    (const struct quant_block_q8_0 *)(ak + (size_t)t * a_stride) + b;
                __m256i s = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(ones8, _mm256_loadu_si256((const __m256i *)yb->qs)),
                    ones16);
                __m128i s4 =
                    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
                obs[(size_t)t * nb + b] = 16 * _mm_cvtsi128_si32(s4);
                dyf[(size_t)t * nb + b] = f16_to_f32(yb->d);
            }
        float *yk = y + k * ldy;
        if (T == 4)
            x8_groups(nb, wp, n_groups, ak, a_stride, 4, dyf, obs, yk, ldy);
        else if (T == 3)
            x8_groups(nb, wp, n_groups, ak, a_stride, 3, dyf, obs, yk, ldy);
        else if (T == 2)
            x8_groups(nb, wp, n_groups, ak, a_stride, 2, dyf, obs, yk, ldy);
        else
            x8_groups(nb, wp, n_groups, ak, a_stride, 1, dyf, obs, yk, ldy);
    }
}

/* ---- K-quants with Q8_K activations ---- */

/* A Q4_K block's 8 six-bit scales (bytes 0-7) and 8 mins (bytes 8-15),
 * the same 16 bytes in both 128-bit lanes, unpacked from the block's first
 * 16 bytes (d, dmin, the 12 packed bytes s) with a few vector operations
 * instead of a dependent scalar chain. s[0-3] hold scales 0-3 (low 6 bits)
 * and the top 2 bits of scales 4-7; s[4-7] the same for the mins; s[8-11]
 * the low 4 bits of scales 4-7 (low nibbles) and mins 4-7 (high nibbles).
 * Every value is below 64, so a byte shuffle with 0x80 in the odd bytes
 * widens any of them to int16. */
AVX2 static inline __m256i q4k_scales(const struct quant_block_q4_k *x)
{
    __m128i v = _mm_loadu_si128((const __m128i *)x);
    /* low bits: s0-3, s8-11 (scales) then s4-7, s8-11 >> 4 (mins) */
    __m128i lo = _mm_shuffle_epi8(
        v, _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
    lo = _mm_blend_epi32(lo, _mm_srli_epi16(lo, 4), 0x8);
    lo = _mm_and_si128(
        lo, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
    /* bits 4-5 of scales 4-7 and mins 4-7: the top 2 bits of s0-3, s4-7 */
    __m128i hi = _mm_shuffle_epi8(
        v, _mm_setr_epi8(-128, -128, -128, -128, 4, 5, 6, 7, -128, -128, -128, -128, 8, 9, 10, 11));
    hi = _mm_and_si128(_mm_srli_epi16(hi, 2), _mm_set1_epi8(0x30));
    return _mm256_broadcastsi128_si256(_mm_or_si128(lo, hi));
}

/* The scales of two adjacent Q4_K blocks at once, block b in the low
 * 128-bit lane and block b + 1 in the high one, by the same steps as
 * q4k_scales: per lane they are the same instructions, so two blocks cost
 * one unpack and two lane broadcasts instead of two unpacks (Q4_K decode
 * ran 3-4 % faster with it on the 2-core test machine). */
AVX2 static inline __m256i q4k_scales2(const struct quant_block_q4_k *x)
{
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)x)),
                                        _mm_loadu_si128((const __m128i *)(x + 1)), 1);
    __m256i lo = _mm256_shuffle_epi8(v, _mm256_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11,
                                                         12, 13, 14, 15, 4, 5, 6, 7, 12, 13, 14, 15,
                                                         8, 9, 10, 11, 12, 13, 14, 15));
    lo = _mm256_blend_epi32(lo, _mm256_srli_epi16(lo, 4), 0x88);
    lo = _mm256_and_si256(lo, _mm256_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15,
                                               15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15, 63, 63,
                                               63, 63, 15, 15, 15, 15));
    __m256i hi =
        _mm256_shuffle_epi8(v, _mm256_setr_epi8(-128, -128, -128, -128, 4, 5, 6, 7, -128, -128,
                                                -128, -128, 8, 9, 10, 11, -128, -128, -128, -128, 4,
                                                5, 6, 7, -128, -128, -128, -128, 8, 9, 10, 11));
    hi = _mm256_and_si256(_mm256_srli_epi16(hi, 2), _mm256_set1_epi8(0x30));
    return _mm256_or_si256(lo, hi);
}

/* One Q4_K block b against T activation rows (T <= 4, a compile-time
 * constant after inlining), its scales already unpacked into sv: the
 * nibbles are unpacked once and used for every token. Per block and
 * token: 8 vpmaddubsw (nibble x activation), 8 vpmaddwd (times the
 * sub-block scale, widened from the scale bytes by vpshufb), then one FMA
 * for d and one for the mins, whose term needs only the activation's
 * 16-element sums. */
AVX2 static inline __attribute__((always_inline)) void q4k_block(const struct quant_block_q4_k *x,
                                                                 __m256i sv, const void *a,
                                                                 size_t a_stride, size_t b, int T,
                                                                 __m256 *acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    /* int16 pairs of the mins in the order of the 16 bsums: m0 m0 m1 m1 ... */
    const __m256i mpick = _mm256_setr_epi8(8, -128, 8, -128, 9, -128, 9, -128, 10, -128, 10, -128,
                                           11, -128, 11, -128, 12, -128, 12, -128, 13, -128, 13,
                                           -128, 14, -128, 14, -128, 15, -128, 15, -128);
    uint32_t dw;
    memcpy(&dw, x, 4);
    __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)dw)); /* d, dmin */
    __m256i isum[4];
    for (int t = 0; t < T; t++)
        isum[t] = _mm256_setzero_si256();
    for (int j = 0; j < QK_K / 64; j++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * j));
        __m256i lo = _mm256_and_si256(q, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        /* scale k as int16 in every slot: bytes k, 0x80 */
        __m256i s0 = _mm256_shuffle_epi8(sv, _mm256_set1_epi16((short)(0x8000 | (2 * j))));
        __m256i s1 = _mm256_shuffle_epi8(sv, _mm256_set1_epi16((short)(0x8000 | (2 * j + 1))));
        for (int t = 0; t < T; t++) {
            const struct quant_block_q8_k *yb =
                (const struct quant_block_q8_k *)((const uint8_t *)a + (size_t)t * a_stride) + b;
            __m256i p0 =
                _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(yb->qs + 64 * j)));
            __m256i p1 = _mm256_maddubs_epi16(
                hi, _mm256_loadu_si256((const __m256i *)(yb->qs + 64 * j + 32)));
            isum[t] = _mm256_add_epi32(
                isum[t], _mm256_add_epi32(_mm256_madd_epi16(p0, s0), _mm256_madd_epi16(p1, s1)));
        }
    }
    __m256i mdup = _mm256_shuffle_epi8(sv, mpick);
    for (int t = 0; t < T; t++) {
        const struct quant_block_q8_k *yb =
            (const struct quant_block_q8_k *)((const uint8_t *)a + (size_t)t * a_stride) + b;
        __m256i msum = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)yb->bsums), mdup);
        __m128 ddy = _mm_mul_ps(dd, _mm_set1_ps(yb->d)); /* d * yd, dmin * yd */
        acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(ddy), _mm256_cvtepi32_ps(isum[t]), acc[t]);
        acc[t] = _mm256_fnmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(ddy)),
                                  _mm256_cvtepi32_ps(msum), acc[t]);
    }
}

/* Q4_K rows against T activation rows at once (T <= 4), two blocks per
 * step so that their scales unpack together, then the odd block alone. A
 * token's operations do not depend on T or on the pairing, so decode and
 * prefill give the same bits. Decode (T = 1) asks for the five lines from
 * PF_DIST ahead on: the whole 288-byte step when it starts in the first 33
 * bytes of a line, else all but its last line, which the next step's first
 * prefetch or the hardware brings (rows with an odd block count start
 * steps anywhere in a line). */
AVX2 static inline __attribute__((always_inline)) void
q4k_tokens(size_t n, const void *w, const void *a, size_t a_stride, int T, float *y, size_t ldy)
{
    const struct quant_block_q4_k *x = w;
    const size_t nb = n / QK_K;
    __m256 acc[4];
    for (int t = 0; t < T; t++)
        acc[t] = _mm256_setzero_ps();
    size_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        if (T == 1) {
            const char *pf = (const char *)&x[b] + PF_DIST;
            for (int l = 0; l < 5; l++)
                _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
        }
        __m256i s2 = q4k_scales2(&x[b]);
        q4k_block(&x[b], _mm256_permute2x128_si256(s2, s2, 0x00), a, a_stride, b, T, acc);
        q4k_block(&x[b + 1], _mm256_permute2x128_si256(s2, s2, 0x11), a, a_stride, b + 1, T, acc);
    }
    if (b < nb) {
        if (T == 1) {
            const char *pf = (const char *)&x[b] + PF_DIST;
            for (int l = 0; l < 3; l++)
                _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
        }
        q4k_block(&x[b], q4k_scales(&x[b]), a, a_stride, b, T, acc);
    }
    for (int t = 0; t < T; t++)
        y[(size_t)t * ldy] = hsum_ps(acc[t]);
}

AVX2 static float avx2_dot_q4_k(size_t n, const void *w, const void *a)
{
    float y;
    q4k_tokens(n, w, a, 0, 1, &y, 0);
    return y;
}

/* ---- Q4_K packed eight rows at a time (the layout: kernels_impl.h) ---- */

/* Byte shuffles that put sub-block s' (of four) of each of a lane's four
 * rows in both int16 of the row's products. */
#define X8K_PICK(b)                                                                                \
    (b), -128, (b), -128, (b) + 1, -128, (b) + 1, -128, (b) + 2, -128, (b) + 2, -128, (b) + 3,     \
        -128, (b) + 3, -128
static const _Alignas(32) int8_t x8k_sc_pick[4][32] = {
    {X8K_PICK(0), X8K_PICK(0)},
    {X8K_PICK(4), X8K_PICK(4)},
    {X8K_PICK(8), X8K_PICK(8)},
    {X8K_PICK(12), X8K_PICK(12)},
};

/* One packed block of 8 rows against T tokens (T <= 4, a constant after
 * inlining). Per sub-block, eight vpmaddubsw of four elements of every
 * row add up in int16 (at most 8 x 2 x 15 x 127 = 30480), and one
 * vpmaddwd with the rows' scales (a byte shuffle of the scale bytes) takes
 * them to int32, a lane per row; the mins go against the activations'
 * 32-element sums two sub-blocks a vpmaddwd. Then d and dmin, eight of
 * each converted at once. About 400 instructions for the 1184 bytes in
 * decode, against 8 x 70 for the rows one at a time; the 64 activation
 * broadcasts, loads into vector registers, are what bound it in cache. (A
 * loop over two groups at once, each broadcast serving 16 rows, ran 1.8x
 * as fast in cache but streamed from memory slower than the rows one at a
 * time, so it is not here.) A token's operations do not depend on T, so
 * decode and prefill give the same bits. */
AVX2 static inline __attribute__((always_inline)) void
x8k_block(const uint8_t *xb, const struct quant_block_q8_k *const *yb, const int32_t *const *bp,
          int T, __m256 *acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i sc[2] = {_mm256_loadu_si256((const __m256i *)(xb + 32)),
                     _mm256_loadu_si256((const __m256i *)(xb + 64))};
    __m256i isum[4], msum[4];
    for (int t = 0; t < T; t++)
        isum[t] = msum[t] = _mm256_setzero_si256();
    UNROLL_ALL for (int s = 0; s < 8; s++)
    {
        __m256i s16[4];
        for (int t = 0; t < T; t++)
            s16[t] = _mm256_setzero_si256();
        UNROLL_ALL for (int c = 0; c < 4; c++)
        {
            __m256i q = _mm256_loadu_si256((const __m256i *)(xb + 160 + 128 * s + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            for (int t = 0; t < T; t++) {
                int32_t y0, y1;
                memcpy(&y0, yb[t]->qs + 32 * s + 4 * c, 4);
                memcpy(&y1, yb[t]->qs + 32 * s + 16 + 4 * c, 4);
                s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(lo, _mm256_set1_epi32(y0)));
                s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(hi, _mm256_set1_epi32(y1)));
            }
        }
        /* sub-block s's scale of row 4L + r' sits at byte 4 (s % 4) + r'
         * of lane L of sc[s / 4]: in both int16 of the row's products */
        __m256i scv =
            _mm256_shuffle_epi8(sc[s / 4], _mm256_load_si256((const __m256i *)x8k_sc_pick[s % 4]));
        for (int t = 0; t < T; t++)
            isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s16[t], scv));
    }
    UNROLL_ALL for (int p = 0; p < 4; p++)
    {
        __m256i mv = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(xb + 96 + 16 * p)));
        for (int t = 0; t < T; t++)
            msum[t] = _mm256_add_epi32(msum[t], _mm256_madd_epi16(mv, _mm256_set1_epi32(bp[t][p])));
    }
    __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
    __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xb + 16)));
    for (int t = 0; t < T; t++) {
        __m256 yd = _mm256_set1_ps(yb[t]->d);
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, yd), _mm256_cvtepi32_ps(isum[t]), acc[t]);
        acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, yd), _mm256_cvtepi32_ps(msum[t]), acc[t]);
    }
}

/* n_groups groups of 8 rows against T tokens; bpairs holds each token's
 * block sums of 32, two to an int32 (T x nb x 4). Decode asks for the
 * 1184 bytes of a block PF_DIST ahead. */
AVX2 static inline __attribute__((always_inline)) void
x8k_groups(size_t nb, const uint8_t *g0, size_t n_groups, const uint8_t *a, size_t a_stride, int T,
           const int32_t *bpairs, float *y, size_t ldy)
{
    for (size_t g = 0; g < n_groups; g++) {
        const uint8_t *gp = g0 + g * nb * KERN_Q4_K_X8_BLOCK;
        __m256 acc[4];
        for (int t = 0; t < T; t++)
            acc[t] = _mm256_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *xb = gp + b * KERN_Q4_K_X8_BLOCK;
            if (T == 1) {
                UNROLL_ALL for (int l = 0; l < KERN_Q4_K_X8_BLOCK; l += 64)
                    _mm_prefetch((const char *)xb + PF_DIST + l, _MM_HINT_T0);
            }
            const struct quant_block_q8_k *yb[4];
            const int32_t *bp[4];
            for (int t = 0; t < T; t++) {
                yb[t] = (const struct quant_block_q8_k *)(a + (size_t)t * a_stride) + b;
                bp[t] = bpairs + ((size_t)t * nb + b) * 4;
            }
            x8k_block(xb, yb, bp, T, acc);
        }
        for (int t = 0; t < T; t++)
            _mm256_storeu_ps(y + (size_t)t * ldy + g * KERN_PACK_ROWS, acc[t]);
    }
}

AVX2 static void avx2_matmul_packed_q4_k(size_t n, const void *wp, size_t n_groups, const void *a,
                                         size_t a_stride, size_t n_act, float *y, size_t ldy)
{
    size_t nb = n / QK_K;
    int32_t bpairs[4 * KERN_PACK_MAX_KBLOCKS * 4];
    for (size_t k = 0; k < n_act; k += 4) {
        int T = n_act - k >= 4 ? 4 : (int)(n_act - k);
        const uint8_t *ak = (const uint8_t *)a + k * a_stride;
        for (int t = 0; t < T; t++)
            for (size_t b = 0; b < nb; b++) {
                const struct quant_block_q8_k *yb =
                    (const struct quant_block_q8_k *)(ak + (size_t)t * a_stride) + b;
                for (int p = 0; p < 4; p++) {
                    int s0 = yb->bsums[4 * p] + yb->bsums[4 * p + 1];
                    int s1 = yb->bsums[4 * p + 2] + yb->bsums[4 * p + 3];
                    bpairs[((size_t)t * nb + b) * 4 + (size_t)p] =
                        (int32_t)((uint32_t)(uint16_t)s0 | (uint32_t)(uint16_t)s1 << 16);
                }
            }
        float *yk = y + k * ldy;
        if (T == 4)
            x8k_groups(nb, wp, n_groups, ak, a_stride, 4, bpairs, yk, ldy);
        else if (T == 3)
            x8k_groups(nb, wp, n_groups, ak, a_stride, 3, bpairs, yk, ldy);
        else if (T == 2)
            x8k_groups(nb, wp, n_groups, ak, a_stride, 2, bpairs, yk, ldy);
        else
            x8k_groups(nb, wp, n_groups, ak, a_stride, 1, bpairs, yk, ldy);
    }
}

/* Q6_K rows against T activation rows at once (T <= 4, a constant after
 * inlining): each block's quants and scales are unpacked once and used for
 * every token. Per block and token the integer part takes the unsigned
 * 6-bit quants (0..63) and starts from -32 * scale_g * bsum_g for each group
 * g of 16 (the offset that makes them signed), kept in eight int32 lanes.
 * Each vpmaddubsw covers 32 elements, two groups: the low 128-bit lane
 * group 2i, the high lane group 2i+1. The scales are widened once, even
 * groups in the low lane and odd ones in the high, so one byte shuffle with
 * the same control in both lanes gives each product its pair of scales (a
 * scalar load and broadcast per group cost four times the vector
 * operations). A token's operations do not depend on T, so decode and
 * prefill give the same bits. Decode (T = 1) asks for the weights PF_DIST
 * ahead, the four lines of a 210-byte block. */
AVX2 static inline __attribute__((always_inline)) void
q6k_tokens(size_t n, const void *w, const void *a, size_t a_stride, int T, float *y, size_t ldy)
{
    const struct quant_block_q6_k *x = w;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[4];
    for (int t = 0; t < T; t++)
        acc[t] = _mm256_setzero_ps();
    for (size_t b = 0; b < n / QK_K; b++) {
        if (T == 1) {
            const char *p = (const char *)&x[b] + PF_DIST;
            _mm_prefetch(p, _MM_HINT_T0);
            _mm_prefetch(p + 64, _MM_HINT_T0);
            _mm_prefetch(p + 128, _MM_HINT_T0);
            _mm_prefetch(p + 192, _MM_HINT_T0);
        }
        const struct quant_block_q8_k *yb[4];
        for (int t = 0; t < T; t++)
            yb[t] =
                (const struct quant_block_q8_k *)((const uint8_t *)a + (size_t)t * a_stride) + b;
        __m128i sc8 = _mm_loadu_si128((const __m128i *)x[b].scales);
        __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        __m256i eo = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
            sc8, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15)));
        __m256i isum[4];
        for (int t = 0; t < T; t++) {
            __m256i corr =
                _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)yb[t]->bsums));
            isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[b].ql + 64 * h;
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(x[b].qh + 32 * h));
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i q[4];
            q[0] =
                _mm256_or_si256(_mm256_and_si256(l0, m4),
                                _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4));
            q[1] =
                _mm256_or_si256(_mm256_and_si256(l1, m4),
                                _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
            q[3] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8((char)0xC0)), 2));
            for (int k = 0; k < 4; k++) {
                /* groups 8h + 2k (low lane) and 8h + 2k + 1 (high): int16 4h + k of eo */
                int m = 4 * h + k;
                __m256i sc =
                    _mm256_shuffle_epi8(eo, _mm256_set1_epi16((short)(2 * m | (2 * m + 1) << 8)));
                for (int t = 0; t < T; t++) {
                    __m256i p = _mm256_maddubs_epi16(
                        q[k], _mm256_loadu_si256((const __m256i *)(yb[t]->qs + 128 * h + 32 * k)));
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, sc));
                }
            }
        }
        float dx = f16_to_f32(x[b].d);
        for (int t = 0; t < T; t++)
            acc[t] =
                _mm256_fmadd_ps(_mm256_set1_ps(dx * yb[t]->d), _mm256_cvtepi32_ps(isum[t]), acc[t]);
    }
    for (int t = 0; t < T; t++)
        y[(size_t)t * ldy] = hsum_ps(acc[t]);
}

AVX2 static float avx2_dot_q6_k(size_t n, const void *w, const void *a)
{
    float y;
    q6k_tokens(n, w, a, 0, 1, &y, 0);
    return y;
}

/* The K-quant products for any number of activation rows, decode too (so
 * the row loop runs without a call through the kernel table per row): four
 * tokens per pass over a weight row, then one at a time; with one token the
 * tokens function prefetches the row ahead. */
#define KQUANT_MATMUL(fn, tokens)                                                                  \
    AVX2 static void fn(size_t n, const void *w, size_t w_stride, size_t n_rows, const void *a,    \
                        size_t a_stride, size_t n_act, float *y, size_t ldy)                       \
    {                                                                                              \
        for (size_t r = 0; r < n_rows; r++) {                                                      \
            const void *row = (const uint8_t *)w + r * w_stride;                                   \
            size_t k = 0;                                                                          \
            for (; k + 4 <= n_act; k += 4)                                                         \
                tokens(n, row, (const uint8_t *)a + k * a_stride, a_stride, 4, y + k * ldy + r,    \
                       ldy);                                                                       \
            for (; k < n_act; k++)                                                                 \
                tokens(n, row, (const uint8_t *)a + k * a_stride, a_stride, 1, y + k * ldy + r,    \
                       ldy);                                                                       \
        }                                                                                          \
    }
KQUANT_MATMUL(avx2_matmul_q4_k, q4k_tokens)
KQUANT_MATMUL(avx2_matmul_q6_k, q6k_tokens)

static const struct kern_impl avx2_table = {
    .name = "avx2",
    .dot =
        {
            [KS_F32] = avx2_dot_f32,
            [KS_F16] = avx2_dot_f16,
            [KS_BF16] = avx2_dot_bf16,
            [KS_Q8_0] = avx2_dot_q8_0,
            [KS_Q4_0] = avx2_dot_q4_0,
            [KS_Q5_0] = avx2_dot_q5_0,
            [KS_Q4_K] = avx2_dot_q4_k,
            [KS_Q6_K] = avx2_dot_q6_k,
        },
    .matmul_packed = {[KS_Q5_0] = avx2_matmul_packed_q5_0, [KS_Q4_K] = avx2_matmul_packed_q4_k},
    .matmul =
        {
            [KS_Q8_0] = avx2_matmul_q8_0,
            [KS_Q4_0] = avx2_matmul_q4_0,
            [KS_Q5_0] = avx2_matmul_q5_0,
            [KS_Q4_K] = avx2_matmul_q4_k,
            [KS_Q6_K] = avx2_matmul_q6_k,
        },
    .quantize_q8_0 = avx2_quantize_q8_0,
    .quantize_q8_k = avx2_quantize_q8_k,
    .f32_to_f16 = avx2_f32_to_f16,
    .axpy_f16 = avx2_axpy_f16,
    .dot_f16_rows = avx2_dot_f16_rows,
    .sum_f16_rows = avx2_sum_f16_rows,
    .sum_f16_rows_heads = avx2_sum_f16_rows_heads,
    .softmax = avx2_softmax,
    .swiglu = avx2_swiglu,
};

/* AVX2 and FMA through __builtin_cpu_supports (which also checks that the
 * OS saves the YMM registers); F16C from CPUID leaf 1, ECX bit 29, because
 * not every compiler's __builtin_cpu_supports knows "f16c". */
const struct kern_impl *kern_impl_avx2(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return NULL;
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 29)))
        return NULL;
    return &avx2_table;
}

#endif
