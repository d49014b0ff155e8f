/*
 * kernels_neon.c — AArch64 NEON kernels (Apple silicon, Arm servers).
 * The integer products accumulate in int32 lanes and are summed across
 * the vector once per block (or per scale group), the block scales
 * applied in float. Where the compiler targets the dot-product extension
 * (every Apple M-series chip; Arm v8.2 and later with +dotprod), one
 * vdotq_s32 does 16 byte products; otherwise widening byte multiplies do
 * (vmull_s8/vmlal_s8, two products per int16 lane, at most 2 * 128 * 127,
 * so no overflow). Every weight type the engine reads has a dot product
 * here, and the activation quantisers follow the scalar rule bit for bit.
 */
#include "infer/kernels_impl.h"

#if defined(__ARM_NEON) && defined(__aarch64__)

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "infer/quant.h"

/* acc + the products a[i] * b[i] of 16 signed bytes, in 4 int32 lanes. */
static inline int32x4_t dot_acc(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_s8(p, vget_high_s8(a), vget_high_s8(b));
    return vpadalq_s16(acc, p);
#endif
}

/* Sum of a[i] * b[i] over 32 signed bytes in two registers each. */
static inline int32_t dot32(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1)
{
    return vaddvq_s32(dot_acc(dot_acc(vdupq_n_s32(0), a0, b0), a1, b1));
}

static inline float f16_to_f32(uint16_t h)
{
    return quant_f16_to_f32(h);
}

static float neon_dot_f32(size_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), vld1q_f32(y + i));
        s1 = vfmaq_f32(s1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static float neon_dot_f16(size_t n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    float32x4_t s0 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t vx = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i)));
        s0 = vfmaq_f32(s0, vx, vld1q_f32(y + i));
    }
    float s = vaddvq_f32(s0);
    for (; i < n; i++)
        s += f16_to_f32(x[i]) * y[i];
    return s;
}

static void neon_f32_to_f16(const float *x, uint16_t *y, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++)
        y[i] = quant_f32_to_f16(x[i]);
}

static void neon_axpy_f16(size_t n, float a, const uint16_t *x, float *y)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t vx = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i)));
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vx, a));
    }
    for (; i < n; i++)
        y[i] += a * f16_to_f32(x[i]);
}

/* bf16 is the top half of an f32: widen each value by 16 bits. */
static float neon_dot_bf16(size_t n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t v = vld1q_u16(x + i);
        float32x4_t lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16));
        float32x4_t hi = vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(v), 16));
        s0 = vfmaq_f32(s0, lo, vld1q_f32(y + i));
        s1 = vfmaq_f32(s1, hi, vld1q_f32(y + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += quant_bf16_to_f32(x[i]) * y[i];
    return s;
}

/* Largest |x[i]| over n (a multiple of 16) floats; NaN is ignored, as
 * fmaxf does in the scalar quantisers. */
static inline float amax_f32(const float *x, size_t n)
{
    float32x4_t m = vdupq_n_f32(0.0f);
    for (size_t i = 0; i < n; i += 16) {
        float32x4_t a = vmaxnmq_f32(vabsq_f32(vld1q_f32(x + i)), vabsq_f32(vld1q_f32(x + i + 4)));
        float32x4_t b =
            vmaxnmq_f32(vabsq_f32(vld1q_f32(x + i + 8)), vabsq_f32(vld1q_f32(x + i + 12)));
        m = vmaxnmq_f32(m, vmaxnmq_f32(a, b));
    }
    return vmaxnmvq_f32(m);
}

/* 16 quants: round(x * id) with ties away from zero (vcvtaq, as roundf),
 * clamped to [-127, 127] before the conversion, so NaN gives 127 as the
 * scalar fminf/fmaxf order does. */
static inline int8x16_t quant16(const float *x, float id)
{
    const float32x4_t hi = vdupq_n_f32(127.0f), lo = vdupq_n_f32(-127.0f);
    int32x4_t q[4];
    for (int k = 0; k < 4; k++) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + 4 * k), id);
        q[k] = vcvtaq_s32_f32(vmaxnmq_f32(lo, vminnmq_f32(hi, v)));
    }
    int16x8_t a = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
    int16x8_t b = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
    return vcombine_s8(vmovn_s16(a), vmovn_s16(b));
}

static void neon_quantize_q8_0(const float *x, void *dst, size_t n)
{
    struct quant_block_q8_0 *y = dst;
    for (size_t b = 0; b < n / QK8_0; b++, x += QK8_0) {
        y[b].d = quant_f32_to_f16(amax_f32(x, QK8_0) / 127.0f);
        float d = f16_to_f32(y[b].d);
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        vst1q_s8(y[b].qs, quant16(x, id));
        vst1q_s8(y[b].qs + 16, quant16(x + 16, id));
    }
}

static void neon_quantize_q8_k(const float *x, void *dst, size_t n)
{
    struct quant_block_q8_k *y = dst;
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float d = amax_f32(x, QK_K) / 127.0f;
        float id = quant_q8_k_inverse(d);
        y[b].d = d;
        for (int g = 0; g < QK_K / 16; g++) {
            int8x16_t q = quant16(x + 16 * g, id);
            vst1q_s8(y[b].qs + 16 * g, q);
            y[b].bsums[g] = (int16_t)vaddlvq_s8(q);
        }
    }
}

static float neon_dot_q8_0(size_t n, const void *w, const void *a)
{
    const struct quant_block_q8_0 *x = w;
    const struct quant_block_q8_0 *y = a;
    float s = 0.0f;
    for (size_t b = 0; b < n / QK8_0; b++) {
        int32_t is = dot32(vld1q_s8(x[b].qs), vld1q_s8(x[b].qs + 16), vld1q_s8(y[b].qs),
                           vld1q_s8(y[b].qs + 16));
        s += f16_to_f32(x[b].d) * f16_to_f32(y[b].d) * (float)is;
    }
    return s;
}

/* The fifth bits of 16 Q5_0 elements (bits of the two bytes h[0], h[1])
 * as 0x10 in the bytes whose bit is set. */
static inline uint8x16_t q5_high(const uint8_t *h)
{
    const uint8x16_t bit = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t v = vcombine_u8(vdup_n_u8(h[0]), vdup_n_u8(h[1]));
    return vandq_u8(vtstq_u8(v, bit), vdupq_n_u8(0x10));
}

/* Q4_0 and Q5_0 (q5 set): element j is its nibble (the low nibbles are
 * elements 0-15) minus 8, or for Q5_0 (nibble | fifth bit << 4) minus 16,
 * the fifth bits in qh, bit j for element j. */
static inline float dot_nibbles(size_t n, const uint8_t *w, int q5,
                                const struct quant_block_q8_0 *y)
{
    size_t bsz = q5 ? sizeof(struct quant_block_q5_0) : sizeof(struct quant_block_q4_0);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t off = vdupq_n_s8(q5 ? 16 : 8);
    float s = 0.0f;
    for (size_t b = 0; b < n / QK8_0; b++) {
        const uint8_t *blk = w + b * bsz;
        uint16_t d;
        memcpy(&d, blk, 2);
        uint8x16_t v = vld1q_u8(blk + (q5 ? 6 : 2));
        uint8x16_t ulo = vandq_u8(v, m4), uhi = vshrq_n_u8(v, 4);
        if (q5) {
            ulo = vorrq_u8(ulo, q5_high(blk + 2));
            uhi = vorrq_u8(uhi, q5_high(blk + 4));
        }
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(ulo), off);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(uhi), off);
        int32_t is = dot32(lo, hi, vld1q_s8(y[b].qs), vld1q_s8(y[b].qs + 16));
        s += f16_to_f32(d) * f16_to_f32(y[b].d) * (float)is;
    }
    return s;
}

static float neon_dot_q4_0(size_t n, const void *w, const void *a)
{
    return dot_nibbles(n, w, 0, a);
}

static float neon_dot_q5_0(size_t n, const void *w, const void *a)
{
    return dot_nibbles(n, w, 1, a);
}

/* Q4_K: x = d * sc_j * q - dmin * m_j for the 8 sub-blocks j of 32.
 * Each sub-block's products stay in int32 lanes, times its scale, summed
 * across once per block; the mins need only the activation's sums. */
static float neon_dot_q4_k(size_t n, const void *w, const void *a)
{
    const struct quant_block_q4_k *x = w;
    const struct quant_block_q8_k *y = a;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float s = 0.0f;
    for (size_t b = 0; b < n / QK_K; b++) {
        const uint8_t *q = x[b].qs;
        const int8_t *qa = y[b].qs;
        int32x4_t acc = vdupq_n_s32(0);
        int32_t msum = 0;
        for (int j = 0; j < QK_K / 64; j++) {
            uint8_t sc0, m0, sc1, m1;
            kern_q4k_scale_min(2 * j, x[b].scales, &sc0, &m0);
            kern_q4k_scale_min(2 * j + 1, x[b].scales, &sc1, &m1);
            uint8x16_t v0 = vld1q_u8(q), v1 = vld1q_u8(q + 16);
            int32x4_t p0 = dot_acc(
                dot_acc(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(v0, m4)), vld1q_s8(qa)),
                vreinterpretq_s8_u8(vandq_u8(v1, m4)), vld1q_s8(qa + 16));
            int32x4_t p1 = dot_acc(
                dot_acc(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), vld1q_s8(qa + 32)),
                vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)), vld1q_s8(qa + 48));
            acc = vmlaq_n_s32(acc, p0, sc0);
            acc = vmlaq_n_s32(acc, p1, sc1);
            msum += m0 * (y[b].bsums[4 * j] + y[b].bsums[4 * j + 1]) +
                    m1 * (y[b].bsums[4 * j + 2] + y[b].bsums[4 * j + 3]);
            q += 32;
            qa += 64;
        }
        int32_t isum = vaddvq_s32(acc);
        s += y[b].d * (f16_to_f32(x[b].d) * (float)isum - f16_to_f32(x[b].dmin) * (float)msum);
    }
    return s;
}

/* Q6_K: as the scalar kernel, 16 elements of each quarter at a time, each
 * group of 16 times its scale in int32 lanes, summed across once a block. */
static float neon_dot_q6_k(size_t n, const void *w, const void *a)
{
    const struct quant_block_q6_k *x = w;
    const struct quant_block_q8_k *y = a;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(0x03);
    const int8x16_t off = vdupq_n_s8(32);
    float s = 0.0f;
    for (size_t b = 0; b < n / QK_K; b++) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[b].ql + 64 * h;
            const uint8_t *qh = x[b].qh + 32 * h;
            const int8_t *sc = x[b].scales + 8 * h;
            const int8_t *qa = y[b].qs + 128 * h;
            for (int l = 0; l < 32; l += 16) {
                int g = l / 16;
                uint8x16_t l0 = vld1q_u8(ql + l), l1 = vld1q_u8(ql + 32 + l);
                uint8x16_t hb = vld1q_u8(qh + l);
                uint8x16_t u1 = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m2), 4));
                uint8x16_t u2 =
                    vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m2), 4));
                uint8x16_t u3 =
                    vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m2), 4));
                uint8x16_t u4 = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4));
                int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(u1), off);
                int8x16_t q2 = vsubq_s8(vreinterpretq_s8_u8(u2), off);
                int8x16_t q3 = vsubq_s8(vreinterpretq_s8_u8(u3), off);
                int8x16_t q4 = vsubq_s8(vreinterpretq_s8_u8(u4), off);
                const int32x4_t z = vdupq_n_s32(0);
                acc = vmlaq_n_s32(acc, dot_acc(z, q1, vld1q_s8(qa + l)), sc[g]);
                acc = vmlaq_n_s32(acc, dot_acc(z, q2, vld1q_s8(qa + 32 + l)), sc[g + 2]);
                acc = vmlaq_n_s32(acc, dot_acc(z, q3, vld1q_s8(qa + 64 + l)), sc[g + 4]);
                acc = vmlaq_n_s32(acc, dot_acc(z, q4, vld1q_s8(qa + 96 + l)), sc[g + 6]);
            }
        }
        s += y[b].d * f16_to_f32(x[b].d) * (float)vaddvq_s32(acc);
    }
    return s;
}

/* out = sum over rows p of w[p] * (v row p), 64 columns at a time held in
 * sixteen registers across all the rows instead of stored and reloaded by
 * axpy for every row; each column adds its rows in order with one fused
 * multiply-add, as axpy did. */
static void neon_sum_f16_rows(size_t n, const uint16_t *v, size_t stride, size_t n_rows,
                              const float *w, float *out)
{
    size_t c = 0;
    for (; c + 64 <= n; c += 64) {
        float32x4_t a[16];
        for (int i = 0; i < 16; i++)
            a[i] = vdupq_n_f32(0.0f);
        for (size_t p = 0; p < n_rows; p++) {
            const uint16_t *row = v + p * stride + c;
            for (int i = 0; i < 16; i++)
                a[i] = vfmaq_n_f32(a[i], vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(row + 4 * i))),
                                   w[p]);
        }
        for (int i = 0; i < 16; i++)
            vst1q_f32(out + c + 4 * (size_t)i, a[i]);
    }
    for (; c + 4 <= n; c += 4) {
        float32x4_t a = vdupq_n_f32(0.0f);
        for (size_t p = 0; p < n_rows; p++)
            a = vfmaq_n_f32(a, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(v + p * stride + c))),
                            w[p]);
        vst1q_f32(out + c, a);
    }
    for (; c < n; c++) {
        float a = 0.0f;
        for (size_t p = 0; p < n_rows; p++)
            a += w[p] * f16_to_f32(v[p * stride + c]);
        out[c] = a;
    }
}

/* e^x for x <= 0, the AVX2 kernels' method: x = k ln 2 + r (ln 2 in two
 * parts), e^r by its Taylor series to r^6 / 720, 2^k in the exponent
 * bits; clamped at -87, near the smallest normal float. vmaxq keeps NaN. */
static inline float32x4_t exp_neg(float32x4_t x)
{
    x = vmaxq_f32(x, vdupq_n_f32(-87.0f));
    float32x4_t k = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504f)));
    float32x4_t r = vfmsq_f32(x, k, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, k, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

static inline float exp_neg1(float x)
{
    return vgetq_lane_f32(exp_neg(vdupq_n_f32(x)), 0);
}

/* Softmax of scale * x in three passes, four values at a time, the tail
 * through the same exponential one value at a time. */
static void neon_softmax(float *x, size_t n, float scale)
{
    size_t n4 = n / 4 * 4;
    float32x4_t vmax = vdupq_n_f32(-INFINITY);
    for (size_t i = 0; i < n4; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), scale);
        vst1q_f32(x + i, v);
        vmax = vmaxnmq_f32(vmax, v); /* ignores NaN, as the scalar maximum does */
    }
    float max = vmaxnmvq_f32(vmax);
    for (size_t i = n4; i < n; i++) {
        x[i] *= scale;
        if (x[i] > max)
            max = x[i];
    }
    float32x4_t vm = vdupq_n_f32(max), vsum = vdupq_n_f32(0.0f);
    for (size_t i = 0; i < n4; i += 4) {
        float32x4_t e = exp_neg(vsubq_f32(vld1q_f32(x + i), vm));
        vst1q_f32(x + i, e);
        vsum = vaddq_f32(vsum, e);
    }
    float sum = vaddvq_f32(vsum);
    for (size_t i = n4; i < n; i++) {
        x[i] = exp_neg1(x[i] - max);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (size_t i = 0; i < n4; i += 4)
        vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    for (size_t i = n4; i < n; i++)
        x[i] *= inv;
}

/* silu(g) * u, the sigmoid from t = e^-|x|: 1 / (1 + t) for x >= 0,
 * t / (1 + t) below. */
static void neon_swiglu(float *g, const float *u, size_t n)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t x = vld1q_f32(g + i);
        float32x4_t t = exp_neg(vnegq_f32(vabsq_f32(x)));
        float32x4_t r = vdivq_f32(one, vaddq_f32(one, t));
        float32x4_t sig = vbslq_f32(vcgeq_f32(x, vdupq_n_f32(0.0f)), r, vmulq_f32(t, r));
        vst1q_f32(g + i, vmulq_f32(vmulq_f32(x, sig), vld1q_f32(u + i)));
    }
    for (; i < n; i++) {
        float x = g[i], t = exp_neg1(-fabsf(x)), r = 1.0f / (1.0f + t);
        g[i] = x * (x >= 0.0f ? r : t * r) * u[i];
    }
}

static const struct kern_impl neon_table = {
    .name = "neon",
    .dot =
        {
            [KS_F32] = neon_dot_f32,
            [KS_F16] = neon_dot_f16,
            [KS_BF16] = neon_dot_bf16,
            [KS_Q8_0] = neon_dot_q8_0,
            [KS_Q4_0] = neon_dot_q4_0,
            [KS_Q5_0] = neon_dot_q5_0,
            [KS_Q4_K] = neon_dot_q4_k,
            [KS_Q6_K] = neon_dot_q6_k,
        },
    .quantize_q8_0 = neon_quantize_q8_0,
    .quantize_q8_k = neon_quantize_q8_k,
    .f32_to_f16 = neon_f32_to_f16,
    .axpy_f16 = neon_axpy_f16,
    .sum_f16_rows = neon_sum_f16_rows,
    .softmax = neon_softmax,
    .swiglu = neon_swiglu,
};

/* NEON is part of every AArch64 CPU. */
const struct kern_impl *kern_impl_neon(void)
{
    return &neon_table;
}

#else
/* Keeps the translation unit non-empty where NEON is not built. */
int kern_neon_unused(void);
int kern_neon_unused(void)
{
    return 0;
}
#endif
