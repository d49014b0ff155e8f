/*
 * kernels.h — the arithmetic of the built-in engine: dot products of weight
 * rows, stored in their GGUF block formats (quant.h), with activation
 * vectors, and the small vector helpers of the F16 KV cache.
 *
 * Weights are never dequantised as a whole: each kernel walks the blocks of
 * one row. Activations come in the format the weight type pairs with, made
 * ONCE per matrix product by kern_quantize_act():
 *
 *   weights F32, F16, BF16   activations F32 (plain floats)
 *   weights Q8_0, Q4_0, Q5_0 activations Q8_0 (32 per block, f16 scale)
 *   weights Q4_K, Q6_K       activations Q8_K (256 per block, f32 scale,
 *                            16 sums of 16 quants)
 *
 * so the block products are exact integer sums scaled once per block.
 * Activation quants stay within [-127, 127], which the AVX2 byte products
 * (vpmaddubsw) need to stay clear of int16 saturation.
 *
 * Implementations: "scalar" (portable C, the fallback and the reference),
 * "avx2" (x86-64 with AVX2, FMA and F16C; compiled with target attributes
 * and chosen at run time, so the binary still runs on older CPUs), "neon"
 * (AArch64). The choice is process-wide: kern_select() or, at first use,
 * $JOULEBENCH_KERNELS (scalar|avx2|neon) or the best the CPU supports.
 *
 * Rows and activations are caller-owned; nothing here allocates.
 */
#ifndef JB_INFER_KERNELS_H
#define JB_INFER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "infer/gguf.h"

enum kern_impl_id { KERN_AUTO = 0, KERN_SCALAR, KERN_AVX2, KERN_NEON };

/* Chooses the implementation for the whole process. JB_ERR_UNSUPPORTED
 * when this CPU or build lacks it (the current choice is kept), JB_ERR_USAGE
 * for a bad $JOULEBENCH_KERNELS under KERN_AUTO. Call it while no kernel
 * runs (before the model's threads compute). */
int kern_select(enum kern_impl_id id, char *err);
/* 1 if this CPU and build can run id. */
int kern_available(enum kern_impl_id id);
/* Name of the implementation in use: "scalar", "avx2", "neon". */
const char *kern_name(void);

/* 1 if there is a kernel for weights of type t. */
int kern_supported(enum ggml_type t);
/* The activation format weights of type t pair with (GGML_TYPE_F32,
 * GGML_TYPE_Q8_0 or GGML_TYPE_Q8_K); GGML_TYPE_COUNT if unsupported. */
enum ggml_type kern_act_type(enum ggml_type t);
/* Elements per weight block (1 for the float types). Rows passed to the
 * kernels hold a multiple of this. */
size_t kern_block_elems(enum ggml_type t);
/* Bytes of one activation row of n elements for weights of type t. */
size_t kern_act_row_bytes(enum ggml_type t, size_t n);
/* Converts n floats x (n a multiple of kern_block_elems(t)) into the
 * activation format for weights of type t: dst has kern_act_row_bytes(). */
void kern_quantize_act(enum ggml_type t, const float *x, void *dst, size_t n);

/* Dot product of one weight row (n elements of type t) with one activation
 * row made by kern_quantize_act(t, ...). */
float kern_dot(enum ggml_type t, size_t n, const void *w_row, const void *act);

/* y[k * ldy + r] = dot(row r of w, activation row k) for rows r in [r0, r1)
 * and activation rows k in [0, n_act). w: rows of w_row_bytes; act: rows of
 * act_row_bytes. Several activation rows (prefill) share each weight row
 * while it is in cache, so the weights are read from memory once. */
void kern_matmul(enum ggml_type t, size_t n, const void *w, size_t w_row_bytes, size_t r0,
                 size_t r1, const void *act, size_t act_row_bytes, size_t n_act, float *y,
                 size_t ldy);

/* Packed copies. Where an implementation has a layout that reads a type's
 * rows with fewer instructions, a matrix can be copied into it once, at
 * load, and multiplied from the copy: Q5_0 and Q4_K under avx2 interleave
 * their rows eight at a time, so one vector holds four elements of eight
 * rows and one activation broadcast serves them all (kernels_impl.h has
 * the layouts). The copy has the rows' size (Q5_0) or 2.8 % more (Q4_K,
 * whose scales it keeps as bytes).
 *
 * kern_pack_bytes: bytes of the packed copy of n_rows rows of n elements,
 * or 0 when the implementation in use has no packed layout for t, n_rows
 * is not a multiple of KERN_PACK_ROWS, or a row is longer than the
 * kernels take (1024 Q5_0 blocks, 256 Q4_K blocks). */
#define KERN_PACK_ROWS 8
size_t kern_pack_bytes(enum ggml_type t, size_t n, size_t n_rows);
/* Copies the n_rows rows of w (w_row_bytes apart) into dst
 * (kern_pack_bytes() of them). */
void kern_pack(enum ggml_type t, size_t n, const void *w, size_t w_row_bytes, size_t n_rows,
               void *dst);
/* kern_matmul over a packed copy, r0 and r1 multiples of KERN_PACK_ROWS.
 * Under any implementation: one without the layout, or rows longer than
 * its kernels take, unpacks each row and uses its dot (so a copy made under
 * avx2 still works after kern_select(KERN_SCALAR)). Decode and prefill give
 * the same bits for a token, but not kern_dot's: the packed layout adds in
 * another order. */
void kern_matmul_packed(enum ggml_type t, size_t n, const void *wp, size_t r0, size_t r1,
                        const void *act, size_t act_row_bytes, size_t n_act, float *y, size_t ldy);

/* Row r of a packed copy back in its own layout (n / kern_block_elems(t)
 * blocks into row): how a packed embedding table gives a token's row. */
void kern_unpack_row(enum ggml_type t, size_t n, const void *wp, size_t r, void *row);

/* The F16 KV cache: y[i] = f16(x[i]); y += a * x (x in f16). */
void kern_f32_to_f16(const float *x, uint16_t *y, size_t n);
void kern_axpy_f16(size_t n, float a, const uint16_t *x, float *y);
/* Attention over the F16 cache, one kernel choice per call instead of per
 * position: out[p] = dot(k + p * stride, q) for p < n_rows (rows of n
 * halves); out = sum over p of w[p] * (v + p * stride) (out overwritten). */
void kern_dot_f16_rows(size_t n, const uint16_t *k, size_t stride, size_t n_rows, const float *q,
                       float *out);
void kern_sum_f16_rows(size_t n, const uint16_t *v, size_t stride, size_t n_rows, const float *w,
                       float *out);
/* The same for the g query heads of one KV group at once (q and the
 * weights one head after another): out + h * out_stride gets head h's dot
 * products with q + h * n, and out + h * n its sum weighted by
 * w + h * w_stride. An implementation may read each cache row once for all
 * the heads (AVX2 does in the weighted sum; dot products made that way
 * measured no faster, so they go one head at a time), and each head's
 * results are the single-head functions' bit for bit. */
void kern_dot_f16_rows_heads(size_t n, const uint16_t *k, size_t stride, size_t n_rows,
                             const float *q, size_t g, float *out, size_t out_stride);
void kern_sum_f16_rows_heads(size_t n, const uint16_t *v, size_t stride, size_t n_rows,
                             const float *w, size_t w_stride, size_t g, float *out);
/* x = softmax(scale * x) over n > 0 values, in place. */
void kern_softmax(float *x, size_t n, float scale);
/* The FFN's SwiGLU: g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + e^-x). */
void kern_swiglu(float *g, const float *u, size_t n);

#endif
