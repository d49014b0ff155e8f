/*
 * kernels.c — the portable scalar kernels and the run-time choice of
 * implementation (kernels.h). The scalar code is written for clarity: it is
 * the fallback on CPUs without a vector path and the yardstick the vector
 * paths are tested against.
 */
#include "infer/kernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "infer/kernels_impl.h"
#include "infer/quant.h"

/* ---- scalar activations ---- */

/* Q8_0 activations: d = max|x| / 127 rounded to f16, q = round(x * (1/d))
 * with the stored (rounded) d, so the pair dequantises as closely as the
 * format allows; ties round away from zero, as quant.c's reference
 * quantiser does (inputs that went through F16 hit exact ties often). Clamping keeps q in [-127,
 * 127] even when rounding d down pushed x / d a hair past 127, and turns NaN into a defined value.
 */
static void scalar_quantize_q8_0(const float *x, void *dst, size_t n)
{
    struct quant_block_q8_0 *y = dst;
    for (size_t b = 0; b < n / QK8_0; b++, x += QK8_0) {
        float amax = 0.0f;
        for (int i = 0; i < QK8_0; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        y[b].d = quant_f32_to_f16(amax / 127.0f);
        float d = quant_f16_to_f32(y[b].d);
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        for (int i = 0; i < QK8_0; i++)
            y[b].qs[i] = (int8_t)fmaxf(-127.0f, fminf(127.0f, roundf(x[i] * id)));
    }
}

/* Q8_K activations: f32 d = max|x| / 127, q = round(x * (1/d)), and the sum of
 * every 16 quants (the K-quant kernels use them for the mins and offsets). */
static void scalar_quantize_q8_k(const float *x, void *dst, size_t n)
{
    struct quant_block_q8_k *y = dst;
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float amax = 0.0f;
        for (int i = 0; i < QK_K; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f;
        float id = quant_q8_k_inverse(d);
        y[b].d = d;
        for (int i = 0; i < QK_K; i++)
            y[b].qs[i] = (int8_t)fmaxf(-127.0f, fminf(127.0f, roundf(x[i] * id)));
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += y[b].qs[g * 16 + i];
            y[b].bsums[g] = (int16_t)s;
        }
    }
}

static void scalar_f32_to_f16(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = quant_f32_to_f16(x[i]);
}

static void scalar_axpy_f16(size_t n, float a, const uint16_t *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] += a * quant_f16_to_f32(x[i]);
}

/* ---- scalar dot products ---- */

static float scalar_dot_f32(size_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static void scalar_softmax(float *x, size_t n, float scale)
{
    float max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        x[i] *= scale;
        if (x[i] > max)
            max = x[i];
    }
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (size_t i = 0; i < n; i++)
        x[i] *= inv;
}

static void scalar_swiglu(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static float scalar_dot_f16(size_t n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += quant_f16_to_f32(x[i]) * y[i];
    return s;
}

static float scalar_dot_bf16(size_t n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += quant_bf16_to_f32(x[i]) * y[i];
    return s;
}

static float scalar_dot_q8_0(size_t n, const void *w, const void *a)
{
    const struct quant_block_q8_0 *x = w;
    const struct quant_block_q8_0 *y = a;
    float s = 0.0f;
    for (size_t b = 0; b < n / QK8_0; b++) {
        int32_t is = 0;
        for (int i = 0; i < QK8_0; i++)
            is += x[b].qs[i] * y[b].qs[i];
        s += quant_f16_to_f32(x[b].d) * quant_f16_to_f32(y[b].d) * (float)is;
    }
    return s;
}

static float scalar_dot_q4_0(size_t n, const void *w, const void *a)
{
    const struct quant_block_q4_0 *x = w;
    const struct quant_block_q8_0 *y = a;
    float s = 0.0f;
    for (size_t b = 0; b < n / QK8_0; b++) {
        int32_t is = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            is += ((x[b].qs[j] & 0x0F) - 8) * y[b].qs[j];
            is += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
        }
        s += quant_f16_to_f32(x[b].d) * quant_f16_to_f32(y[b].d) * (float)is;
    }
    return s;
}

static float scalar_dot_q5_0(size_t n, const void *w, const void *a)
{
    const struct quant_block_q5_0 *x = w;
    const struct quant_block_q8_0 *y = a;
    float s = 0.0f;
    for (size_t b = 0; b < n / QK8_0; b++) {
        uint32_t qh = (uint32_t)x[b].qh[0] | (uint32_t)x[b].qh[1] << 8 |
                      (uint32_t)x[b].qh[2] << 16 | (uint32_t)x[b].qh[3] << 24;
        int32_t is = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            int lo = (x[b].qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
            int hi = (x[b].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            is += (lo - 16) * y[b].qs[j] + (hi - 16) * y[b].qs[j + 16];
        }
        s += quant_f16_to_f32(x[b].d) * quant_f16_to_f32(y[b].d) * (float)is;
    }
    return s;
}

/* Q4_K: x = d * sc_j * q - dmin * m_j for the 8 sub-blocks j of 32. The
 * min term only needs each sub-block's activation sum, which Q8_K carries
 * (bsums, per 16). */
static float scalar_dot_q4_k(size_t n, const void *w, const void *a)
{
    const struct quant_block_q4_k *x = w;
    const struct quant_block_q8_k *y = a;
    float s = 0.0f;
    for (size_t b = 0; b < n / QK_K; b++) {
        const uint8_t *q = x[b].qs;
        const int8_t *qa = y[b].qs;
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < QK_K / 64; j++) {
            uint8_t sc0, m0, sc1, m1;
            kern_q4k_scale_min(2 * j, x[b].scales, &sc0, &m0);
            kern_q4k_scale_min(2 * j + 1, x[b].scales, &sc1, &m1);
            int32_t s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q[l] & 0x0F) * qa[l];
                s1 += (q[l] >> 4) * qa[l + 32];
            }
            isum += sc0 * s0 + sc1 * s1;
            msum += m0 * (y[b].bsums[4 * j] + y[b].bsums[4 * j + 1]) +
                    m1 * (y[b].bsums[4 * j + 2] + y[b].bsums[4 * j + 3]);
            q += 32;
            qa += 64;
        }
        s += y[b].d *
             (quant_f16_to_f32(x[b].d) * (float)isum - quant_f16_to_f32(x[b].dmin) * (float)msum);
    }
    return s;
}

/* Q6_K: x = d * scale_g * (q - 32) with q six bits (4 in ql, 2 in qh) and
 * one int8 scale per 16 elements. Each half of 128 elements takes 64 ql
 * bytes (low nibbles: elements 0..63, high nibbles: 64..127), 32 qh bytes
 * (bit pairs 0,2,4,6 for the four quarters) and 8 scales. */
static float scalar_dot_q6_k(size_t n, const void *w, const void *a)
{
    const struct quant_block_q6_k *x = w;
    const struct quant_block_q8_k *y = a;
    float s = 0.0f;
    for (size_t b = 0; b < n / QK_K; b++) {
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[b].ql + 64 * h;
            const uint8_t *qh = x[b].qh + 32 * h;
            const int8_t *sc = x[b].scales + 8 * h;
            const int8_t *qa = y[b].qs + 128 * h;
            for (int l = 0; l < 32; l++) {
                int g = l / 16;
                int q1 = ((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                isum += sc[g] * q1 * qa[l] + sc[g + 2] * q2 * qa[l + 32] +
                        sc[g + 4] * q3 * qa[l + 64] + sc[g + 6] * q4 * qa[l + 96];
            }
        }
        s += y[b].d * quant_f16_to_f32(x[b].d) * (float)isum;
    }
    return s;
}

const struct kern_impl kern_impl_scalar = {
    .name = "scalar",
    .dot =
        {
            [KS_F32] = scalar_dot_f32,
            [KS_F16] = scalar_dot_f16,
            [KS_BF16] = scalar_dot_bf16,
            [KS_Q8_0] = scalar_dot_q8_0,
            [KS_Q4_0] = scalar_dot_q4_0,
            [KS_Q5_0] = scalar_dot_q5_0,
            [KS_Q4_K] = scalar_dot_q4_k,
            [KS_Q6_K] = scalar_dot_q6_k,
        },
    .quantize_q8_0 = scalar_quantize_q8_0,
    .quantize_q8_k = scalar_quantize_q8_k,
    .f32_to_f16 = scalar_f32_to_f16,
    .axpy_f16 = scalar_axpy_f16,
    .softmax = scalar_softmax,
    .swiglu = scalar_swiglu,
};

#if !(defined(__x86_64__) || defined(__i386__))
const struct kern_impl *kern_impl_avx2(void)
{
    return NULL;
}
#endif
#if !(defined(__ARM_NEON) && defined(__aarch64__))
const struct kern_impl *kern_impl_neon(void)
{
    return NULL;
}
#endif

/* ---- dispatch ---- */

static _Atomic(const struct kern_impl *) g_impl;

static int slot_of(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_F32:
        return KS_F32;
    case GGML_TYPE_F16:
        return KS_F16;
    case GGML_TYPE_BF16:
        return KS_BF16;
    case GGML_TYPE_Q8_0:
        return KS_Q8_0;
    case GGML_TYPE_Q4_0:
        return KS_Q4_0;
    case GGML_TYPE_Q5_0:
        return KS_Q5_0;
    case GGML_TYPE_Q4_K:
        return KS_Q4_K;
    case GGML_TYPE_Q6_K:
        return KS_Q6_K;
    default:
        return -1;
    }
}

static const struct kern_impl *impl_for(enum kern_impl_id id)
{
    switch (id) {
    case KERN_SCALAR:
        return &kern_impl_scalar;
    case KERN_AVX2:
        return kern_impl_avx2();
    case KERN_NEON:
        return kern_impl_neon();
    default:
        return NULL;
    }
}

int kern_available(enum kern_impl_id id)
{
    if (id == KERN_AUTO)
        return 1;
    return impl_for(id) != NULL;
}

/* KERN_AUTO honours $JOULEBENCH_KERNELS, so a benchmark or a user can pin
 * the scalar path without rebuilding; otherwise the fastest available. */
int kern_select(enum kern_impl_id id, char *err)
{
    const struct kern_impl *impl = NULL;
    if (id == KERN_AUTO) {
        const char *env = getenv("JOULEBENCH_KERNELS");
        if (env && *env) {
            enum kern_impl_id want;
            if (strcmp(env, "scalar") == 0)
                want = KERN_SCALAR;
            else if (strcmp(env, "avx2") == 0)
                want = KERN_AVX2;
            else if (strcmp(env, "neon") == 0)
                want = KERN_NEON;
            else
                return err_setf(err, JB_ERR_USAGE,
                                "JOULEBENCH_KERNELS=%s is not a kernel set: use scalar, avx2 "
                                "or neon, or unset it",
                                env);
            impl = impl_for(want);
            if (!impl)
                return err_setf(err, JB_ERR_UNSUPPORTED,
                                "JOULEBENCH_KERNELS=%s: this CPU or build cannot run those "
                                "kernels; unset it to use the best available",
                                env);
        } else {
            impl = kern_impl_avx2();
            if (!impl)
                impl = kern_impl_neon();
            if (!impl)
                impl = &kern_impl_scalar;
        }
    } else {
        impl = impl_for(id);
        if (!impl)
            return err_setf(err, JB_ERR_UNSUPPORTED,
                            "kernel set %d is not available on this CPU or build", (int)id);
    }
    atomic_store(&g_impl, impl);
    return 0;
}

/* The implementation in use; the first caller picks one (a bad
 * $JOULEBENCH_KERNELS falls back to the automatic choice here; the model
 * loader calls kern_select() itself and reports that error). */
static const struct kern_impl *impl_get(void)
{
    const struct kern_impl *impl = atomic_load_explicit(&g_impl, memory_order_acquire);
    if (impl)
        return impl;
    if (kern_select(KERN_AUTO, NULL) != 0) {
        const struct kern_impl *best = kern_impl_avx2();
        if (!best)
            best = kern_impl_neon();
        if (!best)
            best = &kern_impl_scalar;
        const struct kern_impl *expected = NULL;
        atomic_compare_exchange_strong(&g_impl, &expected, best);
    }
    return atomic_load(&g_impl);
}

const char *kern_name(void)
{
    return impl_get()->name;
}

int kern_supported(enum ggml_type t)
{
    return slot_of(t) >= 0;
}

enum ggml_type kern_act_type(enum ggml_type t)
{
    switch (slot_of(t)) {
    case KS_F32:
    case KS_F16:
    case KS_BF16:
        return GGML_TYPE_F32;
    case KS_Q8_0:
    case KS_Q4_0:
    case KS_Q5_0:
        return GGML_TYPE_Q8_0;
    case KS_Q4_K:
    case KS_Q6_K:
        return GGML_TYPE_Q8_K;
    default:
        return GGML_TYPE_COUNT;
    }
}

size_t kern_block_elems(enum ggml_type t)
{
    switch (kern_act_type(t)) {
    case GGML_TYPE_F32:
        return 1;
    case GGML_TYPE_Q8_0:
        return QK8_0;
    case GGML_TYPE_Q8_K:
        return QK_K;
    default:
        return 0;
    }
}

size_t kern_act_row_bytes(enum ggml_type t, size_t n)
{
    switch (kern_act_type(t)) {
    case GGML_TYPE_F32:
        return n * sizeof(float);
    case GGML_TYPE_Q8_0:
        return n / QK8_0 * sizeof(struct quant_block_q8_0);
    case GGML_TYPE_Q8_K:
        return n / QK_K * sizeof(struct quant_block_q8_k);
    default:
        return 0;
    }
}

void kern_quantize_act(enum ggml_type t, const float *x, void *dst, size_t n)
{
    const struct kern_impl *impl = impl_get();
    switch (kern_act_type(t)) {
    case GGML_TYPE_F32:
        memcpy(dst, x, n * sizeof(float));
        break;
    case GGML_TYPE_Q8_0:
        (impl->quantize_q8_0 ? impl->quantize_q8_0 : scalar_quantize_q8_0)(x, dst, n);
        break;
    case GGML_TYPE_Q8_K:
        (impl->quantize_q8_k ? impl->quantize_q8_k : scalar_quantize_q8_k)(x, dst, n);
        break;
    default:
        break;
    }
}

float kern_dot(enum ggml_type t, size_t n, const void *w_row, const void *act)
{
    int slot = slot_of(t);
    if (slot < 0)
        return NAN;
    const struct kern_impl *impl = impl_get();
    float (*dot)(size_t, const void *, const void *) = impl->dot[slot];
    if (!dot)
        dot = kern_impl_scalar.dot[slot];
    return dot(n, w_row, act);
}

size_t kern_pack_bytes(enum ggml_type t, size_t n, size_t n_rows)
{
    int slot = slot_of(t);
    if (slot < 0 || !impl_get()->matmul_packed[slot] || n_rows % KERN_PACK_ROWS != 0 ||
        n % kern_block_elems(t) != 0 ||
        n / kern_block_elems(t) >
            (t == GGML_TYPE_Q4_K ? KERN_PACK_MAX_KBLOCKS : KERN_PACK_MAX_BLOCKS))
        return 0;
    return n_rows / KERN_PACK_ROWS * kern_pack_group_bytes((enum kern_slot)slot, n);
}

/* One Q5_0 block of row r (0..7) of a packed block, back in its own layout:
 * the inverse of the copy below. */
static void q5_0_x8_unpack(const uint8_t *xb, int r, struct quant_block_q5_0 *out)
{
    memcpy(&out->d, xb + 2 * r, 2);
    uint32_t qh = 0;
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 8; k++)
            qh |= (uint32_t)((xb[16 + 4 * r + i] >> k) & 1) << (4 * k + i);
    memcpy(out->qh, &qh, 4);
    for (int c = 0; c < 4; c++)
        memcpy(out->qs + 4 * c, xb + 48 + 32 * c + 4 * r, 4);
}

/* Bits 0-3 of x to bit 0 of bytes 0-3: the four shifted copies the
 * product makes never overlap, so nothing carries. */
static uint32_t spread4(uint32_t x)
{
    return (x & 0x0Fu) * 0x00204081u & 0x01010101u;
}

/* A Q5_0 block's 32 fifth bits (bit e for element e) as the packed layout
 * keeps them: byte i, bit k = bit 4k + i. qh byte j holds elements 8j..8j+7,
 * which are bits 2j (element 8j + i) and 2j + 1 (8j + 4 + i) of byte i. */
static uint32_t q5_0_x8_hbits(uint32_t qh)
{
    uint32_t v = 0;
    for (int j = 0; j < 4; j++) {
        uint32_t b = qh >> (8 * j) & 0xFFu;
        v |= (spread4(b) | spread4(b >> 4) << 1) << (2 * j);
    }
    return v;
}

/* The Q4_K layout's place of sub-block s's scale of row r. */
static size_t q4k_x8_sc_at(int s, int r)
{
    return 32 + 32 * (size_t)(s / 4) + 16 * (size_t)(r / 4) + 4 * (size_t)(s % 4) + (size_t)(r % 4);
}

static void q4k_x8_pack_block(const struct quant_block_q4_k *x, int r, uint8_t *o)
{
    memcpy(o + 2 * r, &x->d, 2);
    memcpy(o + 16 + 2 * r, &x->dmin, 2);
    for (int s = 0; s < 8; s++) {
        uint8_t sc, mn;
        kern_q4k_scale_min(s, x->scales, &sc, &mn);
        o[q4k_x8_sc_at(s, r)] = sc;
        o[96 + 16 * (s / 2) + 2 * r + s % 2] = mn;
    }
    /* element e: the low nibble of qs[32 (e / 64) + e % 32] when e % 64 <
     * 32, else its high nibble */
    for (int s = 0; s < 8; s++)
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < 4; i++) {
                int e0 = 32 * s + 4 * c + i, e1 = e0 + 16;
                uint8_t b0 = x->qs[32 * (e0 / 64) + e0 % 32], b1 = x->qs[32 * (e1 / 64) + e1 % 32];
                uint8_t q0 = (e0 % 64 < 32 ? b0 : b0 >> 4) & 0x0F;
                uint8_t q1 = (e1 % 64 < 32 ? b1 : b1 >> 4) & 0x0F;
                o[160 + 128 * s + 32 * c + 4 * r + i] = (uint8_t)(q0 | q1 << 4);
            }
}

/* Row r's Q4_K block back from a packed one: the six-bit scales packed
 * again as kern_q4k_scale_min() reads them. */
static void q4k_x8_unpack(const uint8_t *o, int r, struct quant_block_q4_k *x)
{
    memcpy(&x->d, o + 2 * r, 2);
    memcpy(&x->dmin, o + 16 + 2 * r, 2);
    uint8_t sc[8], mn[8];
    for (int s = 0; s < 8; s++) {
        sc[s] = o[q4k_x8_sc_at(s, r)];
        mn[s] = o[96 + 16 * (s / 2) + 2 * r + s % 2];
    }
    for (int j = 0; j < 4; j++) {
        x->scales[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        x->scales[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
        x->scales[j + 8] = (uint8_t)((sc[j + 4] & 0x0F) | (mn[j + 4] & 0x0F) << 4);
    }
    memset(x->qs, 0, sizeof x->qs);
    for (int s = 0; s < 8; s++)
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < 4; i++) {
                uint8_t v = o[160 + 128 * s + 32 * c + 4 * r + i];
                int es[2] = {32 * s + 4 * c + i, 32 * s + 16 + 4 * c + i};
                for (int k = 0; k < 2; k++) {
                    int e = es[k];
                    uint8_t q = (uint8_t)(k ? v >> 4 : v & 0x0F);
                    x->qs[32 * (e / 64) + e % 32] |= (uint8_t)(e % 64 < 32 ? q : q << 4);
                }
            }
}

/* Row r's Q5_0 block into a packed one: the inverse of q5_0_x8_unpack. */
static void q5_0_x8_pack_block(const struct quant_block_q5_0 *x, int r, uint8_t *o)
{
    memcpy(o + 2 * r, &x->d, 2);
    uint32_t qh;
    memcpy(&qh, x->qh, 4);
    uint32_t hb = q5_0_x8_hbits(qh);
    for (int i = 0; i < 4; i++)
        o[16 + 4 * r + i] = (uint8_t)(hb >> (8 * i));
    for (int c = 0; c < 4; c++)
        memcpy(o + 48 + 32 * c + 4 * r, x->qs + 4 * c, 4);
}

void kern_pack(enum ggml_type t, size_t n, const void *w, size_t w_row_bytes, size_t n_rows,
               void *dst)
{
    int q4k = t == GGML_TYPE_Q4_K;
    if (!q4k && t != GGML_TYPE_Q5_0)
        return;
    size_t nb = n / kern_block_elems(t);
    size_t bb = q4k ? sizeof(struct quant_block_q4_k) : sizeof(struct quant_block_q5_0);
    uint8_t *o = dst;
    for (size_t g = 0; g < n_rows / KERN_PACK_ROWS; g++)
        for (size_t b = 0; b < nb; b++, o += q4k ? KERN_Q4_K_X8_BLOCK : KERN_Q5_0_X8_BLOCK)
            for (int r = 0; r < KERN_PACK_ROWS; r++) {
                const uint8_t *x =
                    (const uint8_t *)w + (g * KERN_PACK_ROWS + (size_t)r) * w_row_bytes + b * bb;
                if (q4k)
                    q4k_x8_pack_block((const struct quant_block_q4_k *)x, r, o);
                else
                    q5_0_x8_pack_block((const struct quant_block_q5_0 *)x, r, o);
            }
}

void kern_unpack_row(enum ggml_type t, size_t n, const void *wp, size_t r, void *row)
{
    int slot = slot_of(t);
    if (slot < 0 || (t != GGML_TYPE_Q5_0 && t != GGML_TYPE_Q4_K))
        return;
    size_t nb = n / kern_block_elems(t);
    const uint8_t *g =
        (const uint8_t *)wp + r / KERN_PACK_ROWS * kern_pack_group_bytes((enum kern_slot)slot, n);
    int rr = (int)(r % KERN_PACK_ROWS);
    for (size_t b = 0; b < nb; b++) {
        if (t == GGML_TYPE_Q4_K)
            q4k_x8_unpack(g + b * KERN_Q4_K_X8_BLOCK, rr, (struct quant_block_q4_k *)row + b);
        else
            q5_0_x8_unpack(g + b * KERN_Q5_0_X8_BLOCK, rr, (struct quant_block_q5_0 *)row + b);
    }
}

void kern_matmul_packed(enum ggml_type t, size_t n, const void *wp, size_t r0, size_t r1,
                        const void *act, size_t act_row_bytes, size_t n_act, float *y, size_t ldy)
{
    int slot = slot_of(t);
    if (slot < 0 || (t != GGML_TYPE_Q5_0 && t != GGML_TYPE_Q4_K))
        return;
    size_t gb = kern_pack_group_bytes((enum kern_slot)slot, n);
    const uint8_t *g0 = (const uint8_t *)wp + r0 / KERN_PACK_ROWS * gb;
    const struct kern_impl *impl = impl_get();
    size_t max_blocks = t == GGML_TYPE_Q4_K ? KERN_PACK_MAX_KBLOCKS : KERN_PACK_MAX_BLOCKS;
    /* the kernels' scratch holds rows up to max_blocks; a copy made
     * without asking kern_pack_bytes may be longer */
    if (impl->matmul_packed[slot] && n / kern_block_elems(t) <= max_blocks) {
        impl->matmul_packed[slot](n, g0, (r1 - r0) / KERN_PACK_ROWS, act, act_row_bytes, n_act,
                                  y + r0, ldy);
        return;
    }
    /* no packed layout here: each row back into its blocks, then dot */
    float (*dot)(size_t, const void *, const void *) = impl->dot[slot];
    if (!dot)
        dot = kern_impl_scalar.dot[slot];
    size_t be = kern_block_elems(t), nb = n / be;
    size_t bb =
        t == GGML_TYPE_Q4_K ? sizeof(struct quant_block_q4_k) : sizeof(struct quant_block_q5_0);
    uint8_t *row = malloc(nb * bb);
    for (size_t r = r0; r < r1; r++) {
        if (row)
            kern_unpack_row(t, n, wp, r, row);
        for (size_t k = 0; k < n_act; k++) /* NaN, not a number that looks right, without memory */
            y[k * ldy + r] = row ? dot(n, row, (const uint8_t *)act + k * act_row_bytes) : NAN;
    }
    free(row);
}

void kern_matmul(enum ggml_type t, size_t n, const void *w, size_t w_row_bytes, size_t r0,
                 size_t r1, const void *act, size_t act_row_bytes, size_t n_act, float *y,
                 size_t ldy)
{
    int slot = slot_of(t);
    if (slot < 0)
        return;
    const struct kern_impl *impl = impl_get();
    float (*dot)(size_t, const void *, const void *) = impl->dot[slot];
    if (!dot)
        dot = kern_impl_scalar.dot[slot];
    void (*tile)(size_t, const void *, size_t, size_t, const void *, size_t, size_t, float *,
                 size_t) = impl->matmul[slot];
    const uint8_t *wb = w;
    const uint8_t *ab = act;
    if (tile) {
        tile(n, wb + r0 * w_row_bytes, w_row_bytes, r1 - r0, act, act_row_bytes, n_act, y + r0,
             ldy);
        return;
    }
    for (size_t r = r0; r < r1; r++) {
        const void *row = wb + r * w_row_bytes;
        for (size_t k = 0; k < n_act; k++)
            y[k * ldy + r] = dot(n, row, ab + k * act_row_bytes);
    }
}

void kern_f32_to_f16(const float *x, uint16_t *y, size_t n)
{
    const struct kern_impl *impl = impl_get();
    (impl->f32_to_f16 ? impl->f32_to_f16 : scalar_f32_to_f16)(x, y, n);
}

void kern_axpy_f16(size_t n, float a, const uint16_t *x, float *y)
{
    const struct kern_impl *impl = impl_get();
    (impl->axpy_f16 ? impl->axpy_f16 : scalar_axpy_f16)(n, a, x, y);
}

void kern_dot_f16_rows(size_t n, const uint16_t *k, size_t stride, size_t n_rows, const float *q,
                       float *out)
{
    const struct kern_impl *impl = impl_get();
    if (impl->dot_f16_rows) {
        impl->dot_f16_rows(n, k, stride, n_rows, q, out);
        return;
    }
    float (*dot)(size_t, const void *, const void *) =
        impl->dot[KS_F16] ? impl->dot[KS_F16] : scalar_dot_f16;
    for (size_t p = 0; p < n_rows; p++)
        out[p] = dot(n, k + p * stride, q);
}

void kern_sum_f16_rows(size_t n, const uint16_t *v, size_t stride, size_t n_rows, const float *w,
                       float *out)
{
    const struct kern_impl *impl = impl_get();
    if (impl->sum_f16_rows) {
        impl->sum_f16_rows(n, v, stride, n_rows, w, out);
        return;
    }
    void (*axpy)(size_t, float, const uint16_t *, float *) =
        impl->axpy_f16 ? impl->axpy_f16 : scalar_axpy_f16;
    memset(out, 0, n * sizeof(*out));
    for (size_t p = 0; p < n_rows; p++)
        axpy(n, w[p], v + p * stride, out);
}

void kern_dot_f16_rows_heads(size_t n, const uint16_t *k, size_t stride, size_t n_rows,
                             const float *q, size_t g, float *out, size_t out_stride)
{
    for (size_t h = 0; h < g; h++)
        kern_dot_f16_rows(n, k, stride, n_rows, q + h * n, out + h * out_stride);
}

void kern_sum_f16_rows_heads(size_t n, const uint16_t *v, size_t stride, size_t n_rows,
                             const float *w, size_t w_stride, size_t g, float *out)
{
    const struct kern_impl *impl = impl_get();
    if (impl->sum_f16_rows_heads) {
        impl->sum_f16_rows_heads(n, v, stride, n_rows, w, w_stride, g, out);
        return;
    }
    for (size_t h = 0; h < g; h++)
        kern_sum_f16_rows(n, v, stride, n_rows, w + h * w_stride, out + h * n);
}

void kern_softmax(float *x, size_t n, float scale)
{
    const struct kern_impl *impl = impl_get();
    (impl->softmax ? impl->softmax : scalar_softmax)(x, n, scale);
}

void kern_swiglu(float *g, const float *u, size_t n)
{
    const struct kern_impl *impl = impl_get();
    (impl->swiglu ? impl->swiglu : scalar_swiglu)(g, u, n);
}
