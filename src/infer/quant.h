/*
 * quant.h — tensor element types: sizes, and reference (scalar, obviously
 * correct) conversion between floats and each type's blocks. The fast dot
 * products live in kernels.h and are tested against these.
 *
 * Block layouts (ggml's, as GGUF files store them; d = fp16 scale):
 *   Q8_0: {f16 d; i8 q[32]}                                34 B / 32
 *   Q4_0: {f16 d; u8 q[16]} x = d*(nibble-8), low nibbles first 18 B / 32
 *   Q5_0: {f16 d; u8 qh[4]; u8 q[16]} 5-bit, x = d*(q-16)  22 B / 32
 *   Q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 q[128]}     144 B / 256
 *   Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}   210 B / 256
 *   Q8_K: {f32 d; i8 q[256]; i16 bsums[16]}               292 B / 256
 */
#ifndef JB_INFER_QUANT_H
#define JB_INFER_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "infer/gguf.h"

struct quant_traits {
    enum ggml_type type;
    const char *name;
    size_t block_elems; /* elements per block (1 for F32/F16/BF16) */
    size_t block_bytes; /* bytes per block */
};

/* NULL for a type joulebench cannot compute with. */
const struct quant_traits *quant_traits(enum ggml_type t);
/* Bytes of n elements; 0 if the type is unknown or n is not a whole number
 * of blocks. */
size_t quant_row_bytes(enum ggml_type t, uint64_t n);
/* Reference conversions of one row of n elements (n a multiple of the
 * block size). JB_ERR_UNSUPPORTED for unknown types. */
int quant_dequantize_row(enum ggml_type t, const void *src, float *dst, size_t n);
int quant_quantize_row(enum ggml_type t, const float *src, void *dst, size_t n);

float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

#endif
