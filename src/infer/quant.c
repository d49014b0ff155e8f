/*
 * quant.c — reference conversions between floats and ggml's tensor block
 * formats (layouts in quant.h). Written for clarity, not speed: the kernels
 * are tested against these, and `synth` uses the quantizers.
 */
#include "infer/quant.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static_assert(sizeof(struct quant_block_q8_0) == 34, "Q8_0 block size");
static_assert(sizeof(struct quant_block_q4_0) == 18, "Q4_0 block size");
static_assert(sizeof(struct quant_block_q5_0) == 22, "Q5_0 block size");
static_assert(sizeof(struct quant_block_q4_k) == 144, "Q4_K block size");
static_assert(sizeof(struct quant_block_q6_k) == 210, "Q6_K block size");
static_assert(sizeof(struct quant_block_q8_k) == 292, "Q8_K block size");

static const struct quant_traits traits[] = {
    {GGML_TYPE_F32, "F32", 1, 4},       {GGML_TYPE_F16, "F16", 1, 2},
    {GGML_TYPE_BF16, "BF16", 1, 2},     {GGML_TYPE_Q4_0, "Q4_0", 32, 18},
    {GGML_TYPE_Q5_0, "Q5_0", 32, 22},   {GGML_TYPE_Q8_0, "Q8_0", 32, 34},
    {GGML_TYPE_Q4_K, "Q4_K", 256, 144}, {GGML_TYPE_Q6_K, "Q6_K", 256, 210},
    {GGML_TYPE_Q8_K, "Q8_K", 256, 292},
};

/* Types joulebench cannot compute with but whose size it knows, so that
 * the GGUF reader can still bound their data (ggml numbering). */
static const struct {
    int type;
    size_t elems, bytes;
} size_only[] = {
    {3, 32, 20},    /* Q4_1 */
    {7, 32, 24},    /* Q5_1 */
    {9, 32, 36},    /* Q8_1 */
    {10, 256, 84},  /* Q2_K */
    {11, 256, 110}, /* Q3_K */
    {13, 256, 176}, /* Q5_K */
    {20, 32, 18},   /* IQ4_NL */
    {23, 256, 136}, /* IQ4_XS */
    {24, 1, 1},     /* I8 */
    {25, 1, 2},     /* I16 */
    {26, 1, 4},     /* I32 */
    {27, 1, 8},     /* I64 */
    {28, 1, 8},     /* F64 */
};

const struct quant_traits *quant_traits(enum ggml_type t)
{
    for (size_t i = 0; i < sizeof traits / sizeof traits[0]; i++)
        if (traits[i].type == t)
            return &traits[i];
    return NULL;
}

int quant_block_size(enum ggml_type t, size_t *block_elems, size_t *block_bytes)
{
    const struct quant_traits *tr = quant_traits(t);
    if (tr) {
        *block_elems = tr->block_elems;
        *block_bytes = tr->block_bytes;
        return 0;
    }
    for (size_t i = 0; i < sizeof size_only / sizeof size_only[0]; i++) {
        if (size_only[i].type == (int)t) {
            *block_elems = size_only[i].elems;
            *block_bytes = size_only[i].bytes;
            return 0;
        }
    }
    return JB_ERR_UNSUPPORTED;
}

size_t quant_row_bytes(enum ggml_type t, uint64_t n)
{
    size_t be, bb;
    if (quant_block_size(t, &be, &bb) || n % be)
        return 0;
    uint64_t blocks = n / be;
    if (blocks > SIZE_MAX / bb)
        return 0;
    return (size_t)(blocks * bb);
}

/* ---- fp16 and bf16 ---- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float quant_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in binary32 */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) /* infinity, or NaN with its payload (quiet bit kept) */
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* Rounds the binary32 value to the nearest binary16, ties to even. Values
 * at or beyond 65520 (halfway between 65504 and the next power of two)
 * become infinity; below 2^-14 the result is subnormal, and at or below
 * 2^-25 it is a signed zero. */
uint16_t quant_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) {
        if (a == 0x7f800000u)
            return sign | 0x7c00u;
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* quiet NaN */
    }
    if (a >= 0x477ff000u) /* 65520 */
        return sign | 0x7c00u;
    uint32_t e = a >> 23;
    if (e < 113) {   /* below 2^-14: subnormal half */
        if (e < 102) /* below 2^-25 (and binary32 subnormals) */
            return sign;
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* value = m * 2^(e-150); unit 2^-24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ((e - 112) << 10) | ((a >> 13) & 0x3ffu);
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1)))
        r++; /* a carry into the exponent is still the right number */
    return (uint16_t)(sign | r);
}

float quant_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t quant_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN, sign kept */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ---- helpers ---- */

/* Nearest integer, ties away from zero; NaN reads as 0 and huge values are
 * clamped first so the conversion is always defined. Inline arithmetic
 * with lroundf's exact result: synth quantizes half a billion weights. */
static inline int nearest(float x)
{
    if (!(x == x))
        return 0;
    if (x > 1e6f)
        x = 1e6f;
    if (x < -1e6f)
        x = -1e6f;
    /* exact: |x| <= 1e6, so x - trunc(x) has no rounding error, and the
     * result equals lroundf(x) */
    int i = (int)x;
    float frac = x - (float)i;
    return i + (frac >= 0.5f) - (frac <= -0.5f);
}

static inline int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static inline float finite_or_zero(float x)
{
    return isfinite(x) ? x : 0.0f;
}

/* An fp16 scale for a block; saturates at the largest finite half so a
 * block too large for the format stays finite. */
static uint16_t f16_scale(float d)
{
    if (d > 65504.0f)
        d = 65504.0f;
    if (d < -65504.0f)
        d = -65504.0f;
    return quant_f32_to_f16(d);
}

/* The element of largest magnitude, with its sign. */
static float signed_absmax(const float *x, size_t n)
{
    float best = 0.0f, amax = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float v = finite_or_zero(x[i]);
        if (fabsf(v) > amax) {
            amax = fabsf(v);
            best = v;
        }
    }
    return best;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* ---- Q8_0 ---- */

static void deq_q8_0(const struct quant_block_q8_0 *b, float *y)
{
    float d = quant_f16_to_f32(b->d);
    for (int i = 0; i < 32; i++)
        y[i] = d * (float)b->qs[i];
}

static void q_q8_0(const float *x, struct quant_block_q8_0 *b)
{
    float xs[32], amax = 0.0f;
    for (int i = 0; i < 32; i++) {
        xs[i] = finite_or_zero(x[i]);
        float a = fabsf(xs[i]);
        amax = a > amax ? a : amax;
    }
    b->d = f16_scale(amax / 127.0f);
    float d = quant_f16_to_f32(b->d);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; i++) {
        float v = xs[i] * id;
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        b->qs[i] = (int8_t)nearest(v);
    }
}

/* ---- Q4_0 and Q5_0: the largest magnitude maps to the most negative
 * level (-8 or -16) so the whole asymmetric range is used ---- */

static void deq_q4_0(const struct quant_block_q4_0 *b, float *y)
{
    float d = quant_f16_to_f32(b->d);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((b->qs[j] & 15) - 8);
        y[j + 16] = d * (float)((b->qs[j] >> 4) - 8);
    }
}

static void q_q4_0(const float *x, struct quant_block_q4_0 *b)
{
    b->d = f16_scale(signed_absmax(x, 32) / -8.0f);
    float d = quant_f16_to_f32(b->d);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 16; j++) {
        int lo = clampi(nearest(finite_or_zero(x[j]) * id) + 8, 0, 15);
        int hi = clampi(nearest(finite_or_zero(x[j + 16]) * id) + 8, 0, 15);
        b->qs[j] = (uint8_t)(lo | (hi << 4));
    }
}

static void deq_q5_0(const struct quant_block_q5_0 *b, float *y)
{
    float d = quant_f16_to_f32(b->d);
    uint32_t qh = (uint32_t)b->qh[0] | (uint32_t)b->qh[1] << 8 | (uint32_t)b->qh[2] << 16 |
                  (uint32_t)b->qh[3] << 24;
    for (int j = 0; j < 16; j++) {
        int lo = (b->qs[j] & 15) | (int)((qh >> j) & 1) << 4;
        int hi = (b->qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

static void q_q5_0(const float *x, struct quant_block_q5_0 *b)
{
    b->d = f16_scale(signed_absmax(x, 32) / -16.0f);
    float d = quant_f16_to_f32(b->d);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        int lo = clampi(nearest(finite_or_zero(x[j]) * id) + 16, 0, 31);
        int hi = clampi(nearest(finite_or_zero(x[j + 16]) * id) + 16, 0, 31);
        b->qs[j] = (uint8_t)((lo & 15) | (hi & 15) << 4);
        qh |= (uint32_t)(lo >> 4) << j;
        qh |= (uint32_t)(hi >> 4) << (j + 16);
    }
    for (int i = 0; i < 4; i++)
        b->qh[i] = (uint8_t)(qh >> (8 * i));
}

/* ---- Q4_K ---- */

static void q4k_get_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void q4k_set_scale_min(uint8_t *s, int j, int sc, int m)
{
    if (j < 4) {
        s[j] = (uint8_t)((s[j] & 0xc0) | (sc & 63));
        s[j + 4] = (uint8_t)((s[j + 4] & 0xc0) | (m & 63));
    } else {
        s[j + 4] = (uint8_t)((sc & 15) | (m & 15) << 4);
        s[j - 4] = (uint8_t)((s[j - 4] & 63) | (sc >> 4) << 6);
        s[j] = (uint8_t)((s[j] & 63) | (m >> 4) << 6);
    }
}

static void deq_q4_k(const struct quant_block_q4_k *b, float *y)
{
    float d = quant_f16_to_f32(b->d);
    float dmin = quant_f16_to_f32(b->dmin);
    for (int s = 0; s < 8; s++) {
        int sc, m;
        q4k_get_scale_min(b->scales, s, &sc, &m);
        const uint8_t *q = b->qs + 32 * (s / 2);
        for (int l = 0; l < 32; l++) {
            int nib = (s & 1) ? q[l] >> 4 : q[l] & 15;
            y[32 * s + l] = d * (float)sc * (float)nib - dmin * (float)m;
        }
    }
}

/* A level in 0..nmax for t (any float): clamped first, then rounded half
 * up, which is exact for these small non-negative values. */
static inline int level(float t, int nmax)
{
    if (!(t > 0.0f))
        return 0;
    if (t > (float)nmax)
        return nmax;
    return (int)(t + 0.5f);
}

/* Fits x ~ scale*q - min with q in 0..nmax, scale >= 0, min >= 0, for one
 * sub-block of n <= 32 values: three candidate step sizes around
 * (max-min)/nmax, each refined once by least squares on its levels; the
 * smallest squared error wins. */
static void fit_scale_min(const float *x, int n, int nmax, float *scale_out, float *min_out)
{
    float xs[32], lo = 0.0f, hi = 0.0f;
    for (int i = 0; i < n; i++) {
        float v = finite_or_zero(x[i]);
        xs[i] = v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (hi - lo <= 0.0f) {
        *scale_out = 0.0f;
        *min_out = -lo;
        return;
    }
    double best_err = INFINITY;
    float best_scale = (hi - lo) / (float)nmax, best_min = -lo;
    for (int step = -1; step <= 1; step++) {
        float scale = (hi - lo) / ((float)nmax + 0.5f * (float)step);
        float mn = lo, inv = 1.0f / scale;
        /* levels for this (scale, mn), then least squares for both */
        double sq = 0, sx = 0, sqq = 0, sqx = 0;
        for (int i = 0; i < n; i++) {
            int q = level((xs[i] - mn) * inv, nmax);
            sq += q;
            sx += xs[i];
            sqq += (double)q * q;
            sqx += (double)q * xs[i];
        }
        double det = n * sqq - sq * sq;
        if (det > 0) {
            double a = (n * sqx - sq * sx) / det;
            double b = (sx - a * sq) / n;
            if (b > 0) /* the offset must be a non-positive minimum */
                b = 0, a = sqx / sqq;
            if (a > 0 && isfinite(a) && isfinite(b)) {
                scale = (float)a;
                mn = (float)b;
                inv = 1.0f / scale;
            }
        }
        double err = 0.0;
        for (int i = 0; i < n; i++) {
            int q = level((xs[i] - mn) * inv, nmax);
            double e = (double)scale * q + mn - xs[i];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_scale = scale;
            best_min = -mn;
        }
    }
    *scale_out = best_scale;
    *min_out = best_min;
}

static void q_q4_k(const float *x, struct quant_block_q4_k *b)
{
    float scales[8], mins[8], max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; s++) {
        fit_scale_min(x + 32 * s, 32, 15, &scales[s], &mins[s]);
        max_scale = scales[s] > max_scale ? scales[s] : max_scale;
        max_min = mins[s] > max_min ? mins[s] : max_min;
    }
    b->d = f16_scale(max_scale / 63.0f);
    b->dmin = f16_scale(max_min / 63.0f);
    float d = quant_f16_to_f32(b->d), dmin = quant_f16_to_f32(b->dmin);
    memset(b->scales, 0, sizeof b->scales);
    memset(b->qs, 0, sizeof b->qs);
    for (int s = 0; s < 8; s++) {
        int ls = d > 0.0f ? clampi(nearest(scales[s] / d), 0, 63) : 0;
        int lm = dmin > 0.0f ? clampi(nearest(mins[s] / dmin), 0, 63) : 0;
        q4k_set_scale_min(b->scales, s, ls, lm);
        float step = d * (float)ls, off = dmin * (float)lm;
        float inv = step > 0.0f ? 1.0f / step : 0.0f;
        uint8_t *q = b->qs + 32 * (s / 2);
        for (int l = 0; l < 32; l++) {
            float v = finite_or_zero(x[32 * s + l]);
            int nib = level((v + off) * inv, 15);
            q[l] |= (uint8_t)((s & 1) ? nib << 4 : nib);
        }
    }
}

/* ---- Q6_K ---- */

static void deq_q6_k(const struct quant_block_q6_k *b, float *y)
{
    float d = quant_f16_to_f32(b->d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        const int8_t *sc = b->scales + 8 * h;
        float *yh = y + 128 * h;
        for (int l = 0; l < 32; l++) {
            int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
            int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
            int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            yh[l] = d * (float)sc[l / 16] * (float)q1;
            yh[l + 32] = d * (float)sc[l / 16 + 2] * (float)q2;
            yh[l + 64] = d * (float)sc[l / 16 + 4] * (float)q3;
            yh[l + 96] = d * (float)sc[l / 16 + 6] * (float)q4;
        }
    }
}

/* Sub-block scales map each 16-element group's largest magnitude to level
 * -32; the super-block scale maps the largest sub-block scale to -128, so
 * both d and the int8 scales may be negative. */
static void q_q6_k(const float *x, struct quant_block_q6_k *b)
{
    float sub[16], best = 0.0f;
    for (int s = 0; s < 16; s++) {
        sub[s] = signed_absmax(x + 16 * s, 16) / -32.0f;
        if (fabsf(sub[s]) > fabsf(best))
            best = sub[s];
    }
    b->d = f16_scale(best / -128.0f);
    float d = quant_f16_to_f32(b->d);
    int L[256];
    for (int s = 0; s < 16; s++) {
        int ls = d != 0.0f ? clampi(nearest(sub[s] / d), -128, 127) : 0;
        b->scales[s] = (int8_t)ls;
        float step = d * (float)ls;
        for (int i = 0; i < 16; i++) {
            float v = finite_or_zero(x[16 * s + i]);
            int q = step != 0.0f ? clampi(nearest(v / step), -32, 31) : 0;
            L[16 * s + i] = q + 32;
        }
    }
    for (int h = 0; h < 2; h++) {
        uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        const int *Lh = L + 128 * h;
        for (int l = 0; l < 32; l++) {
            int q1 = Lh[l], q2 = Lh[l + 32], q3 = Lh[l + 64], q4 = Lh[l + 96];
            ql[l] = (uint8_t)((q1 & 15) | (q3 & 15) << 4);
            ql[l + 32] = (uint8_t)((q2 & 15) | (q4 & 15) << 4);
            qh[l] = (uint8_t)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
        }
    }
}

/* ---- Q8_K ---- */

static void deq_q8_k(const struct quant_block_q8_k *b, float *y)
{
    for (int i = 0; i < 256; i++)
        y[i] = b->d * (float)b->qs[i];
}

static void q_q8_k(const float *x, struct quant_block_q8_k *b)
{
    float amax = fabsf(signed_absmax(x, 256));
    b->d = amax / 127.0f;
    float id = quant_q8_k_inverse(b->d);
    for (int k = 0; k < 16; k++) {
        int sum = 0;
        for (int i = 16 * k; i < 16 * k + 16; i++) {
            int q = clampi(nearest(finite_or_zero(x[i]) * id), -127, 127);
            b->qs[i] = (int8_t)q;
            sum += q;
        }
        b->bsums[k] = (int16_t)sum;
    }
}

/* ---- rows ---- */

int quant_dequantize_row(enum ggml_type t, const void *src, float *dst, size_t n)
{
    const struct quant_traits *tr = quant_traits(t);
    if (!tr)
        return JB_ERR_UNSUPPORTED;
    if (n % tr->block_elems)
        return JB_ERR_USAGE;
    const uint8_t *p = src;
    size_t nb = n / tr->block_elems;
    for (size_t i = 0; i < nb; i++, p += tr->block_bytes) {
        float *y = dst + i * tr->block_elems;
        switch (t) {
        case GGML_TYPE_F32:
            memcpy(y, p, 4);
            break;
        case GGML_TYPE_F16:
            *y = quant_f16_to_f32(rd16(p));
            break;
        case GGML_TYPE_BF16:
            *y = quant_bf16_to_f32(rd16(p));
            break;
        case GGML_TYPE_Q8_0: {
            struct quant_block_q8_0 b;
            memcpy(&b, p, sizeof b);
            deq_q8_0(&b, y);
            break;
        }
        case GGML_TYPE_Q4_0: {
            struct quant_block_q4_0 b;
            memcpy(&b, p, sizeof b);
            deq_q4_0(&b, y);
            break;
        }
        case GGML_TYPE_Q5_0: {
            struct quant_block_q5_0 b;
            memcpy(&b, p, sizeof b);
            deq_q5_0(&b, y);
            break;
        }
        case GGML_TYPE_Q4_K: {
            struct quant_block_q4_k b;
            memcpy(&b, p, sizeof b);
            deq_q4_k(&b, y);
            break;
        }
        case GGML_TYPE_Q6_K: {
            struct quant_block_q6_k b;
            memcpy(&b, p, sizeof b);
            deq_q6_k(&b, y);
            break;
        }
        case GGML_TYPE_Q8_K: {
            struct quant_block_q8_k b;
            memcpy(&b, p, sizeof b);
            deq_q8_k(&b, y);
            break;
        }
        default:
            return JB_ERR_UNSUPPORTED;
        }
    }
    return 0;
}

int quant_quantize_row(enum ggml_type t, const float *src, void *dst, size_t n)
{
    const struct quant_traits *tr = quant_traits(t);
    if (!tr)
        return JB_ERR_UNSUPPORTED;
    if (n % tr->block_elems)
        return JB_ERR_USAGE;
    uint8_t *p = dst;
    size_t nb = n / tr->block_elems;
    /* Blocks are built in a local struct and copied out, so dst needs no
     * alignment (file buffers pack 34-byte blocks back to back). */
    for (size_t i = 0; i < nb; i++, p += tr->block_bytes) {
        const float *x = src + i * tr->block_elems;
        switch (t) {
        case GGML_TYPE_F32:
            memcpy(p, x, 4);
            break;
        case GGML_TYPE_F16:
            wr16(p, quant_f32_to_f16(*x));
            break;
        case GGML_TYPE_BF16:
            wr16(p, quant_f32_to_bf16(*x));
            break;
        case GGML_TYPE_Q8_0: {
            struct quant_block_q8_0 b;
            q_q8_0(x, &b);
            memcpy(p, &b, sizeof b);
            break;
        }
        case GGML_TYPE_Q4_0: {
            struct quant_block_q4_0 b;
            q_q4_0(x, &b);
            memcpy(p, &b, sizeof b);
            break;
        }
        case GGML_TYPE_Q5_0: {
            struct quant_block_q5_0 b;
            q_q5_0(x, &b);
            memcpy(p, &b, sizeof b);
            break;
        }
        case GGML_TYPE_Q4_K: {
            struct quant_block_q4_k b;
            q_q4_k(x, &b);
            memcpy(p, &b, sizeof b);
            break;
        }
        case GGML_TYPE_Q6_K: {
            struct quant_block_q6_k b;
            q_q6_k(x, &b);
            memcpy(p, &b, sizeof b);
            break;
        }
        case GGML_TYPE_Q8_K: {
            struct quant_block_q8_k b;
            q_q8_k(x, &b);
            memcpy(p, &b, sizeof b);
            break;
        }
        default:
            return JB_ERR_UNSUPPORTED;
        }
    }
    return 0;
}
