/*
 * quant.h — tensor element types: sizes, block layouts, and reference
 * (scalar, obviously correct) conversion between floats and each type's
 * blocks. The fast dot products live in kernels.h and are tested against
 * these.
 *
 * Block layouts (ggml's, as GGUF files store them; d = fp16 scale; every
 * struct below has exactly the size on disk, no padding):
 *   Q8_0: {f16 d; i8 q[32]}                                34 B / 32
 *         x[i] = d*q[i]
 *   Q4_0: {f16 d; u8 q[16]}                                18 B / 32
 *         x[j] = d*((q[j] & 15) - 8), x[j+16] = d*((q[j] >> 4) - 8)
 *   Q5_0: {f16 d; u8 qh[4]; u8 q[16]}                      22 B / 32
 *         like Q4_0 with a fifth bit: bit i of the little-endian u32 qh is
 *         bit 4 of element i; x = d*(q5 - 16)
 *   Q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 q[128]}     144 B / 256
 *         8 sub-blocks of 32 with 6-bit scale sc[s] and min m[s]:
 *         s < 4: sc = scales[s] & 63, m = scales[s+4] & 63;
 *         s >= 4: sc = (scales[s+4] & 15) | (scales[s-4] >> 6) << 4,
 *                 m  = (scales[s+4] >> 4) | (scales[s] >> 6) << 4.
 *         Element e (s = e/32, c = e/64, l = e%32): nibble of q[32c + l],
 *         low for even s, high for odd s; x = d*sc[s]*nib - dmin*m[s]
 *   Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}   210 B / 256
 *         two halves of 128 (h); within a half, for l < 32, the four
 *         elements l, l+32, l+64, l+96 take their low 4 bits from
 *         ql[64h+l] & 15, ql[64h+l+32] & 15, ql[64h+l] >> 4,
 *         ql[64h+l+32] >> 4 and their high 2 bits from qh[32h+l] bits
 *         0-1, 2-3, 4-5, 6-7; x = d*scales[e/16]*(q6 - 32)
 *   Q8_K: {f32 d; i8 q[256]; i16 bsums[16]}               292 B / 256
 *         x = d*q; bsums[k] = sum of q[16k .. 16k+15] (activations only)
 */
#ifndef JB_INFER_QUANT_H
#define JB_INFER_QUANT_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

#include "infer/gguf.h"

#define QUANT_QK 32    /* elements per Q4_0/Q5_0/Q8_0 block */
#define QUANT_QK_K 256 /* elements per K-quant super-block */

struct quant_block_q8_0 {
    uint16_t d;
    int8_t qs[32];
};
struct quant_block_q4_0 {
    uint16_t d;
    uint8_t qs[16];
};
struct quant_block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
};
struct quant_block_q4_k {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[128];
};
struct quant_block_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
};
struct quant_block_q8_k {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
};

struct quant_traits {
    enum ggml_type type;
    const char *name;
    size_t block_elems; /* elements per block (1 for F32/F16/BF16) */
    size_t block_bytes; /* bytes per block */
};

/* NULL for a type joulebench cannot compute with (F32, F16, BF16, Q4_0,
 * Q5_0, Q8_0, Q4_K, Q6_K, Q8_K can). */
const struct quant_traits *quant_traits(enum ggml_type t);
/* Block geometry of any ggml type whose layout size is known, including
 * types joulebench only measures (Q4_1, Q5_1, Q8_1, Q2_K, Q3_K, Q5_K,
 * IQ4_NL, IQ4_XS, I8..I64, F64): 0 and the two sizes, or JB_ERR_UNSUPPORTED.
 * The GGUF reader uses it to bound every tensor's bytes. */
int quant_block_size(enum ggml_type t, size_t *block_elems, size_t *block_bytes);
/* Bytes of n elements; 0 if the type is unknown (to quant_block_size) or n
 * is not a whole number of blocks or the size overflows. */
size_t quant_row_bytes(enum ggml_type t, uint64_t n);
/* Reference conversions of one row of n elements (n a multiple of the
 * block size). JB_ERR_UNSUPPORTED for types quant_traits() does not know,
 * JB_ERR_USAGE when n is not a whole number of blocks. Quantizing expects
 * finite input (NaN reads as 0); magnitudes past what a type's fp16 scale
 * can express saturate. Q8_K is symmetric (q in -127..127). */
int quant_dequantize_row(enum ggml_type t, const void *src, float *dst, size_t n);
int quant_quantize_row(enum ggml_type t, const float *src, void *dst, size_t n);

/* IEEE binary16 and bfloat16, round to nearest even; subnormals, infinities
 * and NaNs (kept quiet, sign kept) as IEEE 754 says. */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

/* 1 / d for a Q8_K block's scale d = amax / 127, or 0 where a subnormal d
 * would overflow it and send every value to +-127: such a block (values
 * below 1.5e-36) is quantised as zero. The reference quantiser and every
 * kernel table use this, so they give the same bits. */
static inline float quant_q8_k_inverse(float d)
{
    return d >= FLT_MIN ? 1.0f / d : 0.0f;
}

#endif
