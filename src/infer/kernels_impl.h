/*
 * kernels_impl.h — what the kernel implementations (kernels.c scalar,
 * kernels_avx2.c, kernels_neon.c) share: the block structs of quant.h's
 * layouts, and the table of functions each implementation fills.
 * Internal to src/infer/kernels*.c.
 */
#ifndef JB_INFER_KERNELS_IMPL_H
#define JB_INFER_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "infer/kernels.h"
#include "infer/quant.h"

/* The block structs are quant.h's (struct quant_block_q8_0, ...). */
#define QK8_0 QUANT_QK
#define QK_K QUANT_QK_K

/* Kernel slots, one per weight type with a kernel. */
enum kern_slot { KS_F32, KS_F16, KS_BF16, KS_Q8_0, KS_Q4_0, KS_Q5_0, KS_Q4_K, KS_Q6_K, KS_COUNT };

/* Entries left NULL fall back to the scalar ones. */
struct kern_impl {
    const char *name;
    /* dot(n, w_row, act) for n elements */
    float (*dot[KS_COUNT])(size_t n, const void *w, const void *a);
    /* Rows [0, n_rows) of w (rows w_stride bytes apart) against n_act
     * activation rows a + k * a_stride, results to y[k * ldy + r], for any
     * n_act >= 1 (decode too); each result must equal dot's bit for bit.
     * NULL: kern_matmul loops over dot. */
    void (*matmul[KS_COUNT])(size_t n, const void *w, size_t w_stride, size_t n_rows, const void *a,
                             size_t a_stride, size_t n_act, float *y, size_t ldy);
    /* kern_matmul_packed for groups of KERN_PACK_ROWS rows (wp at the first
     * group, n_groups of them, each kern_pack_group_bytes()); NULL: this
     * implementation has no packed layout for the type */
    void (*matmul_packed[KS_COUNT])(size_t n, const void *wp, size_t n_groups, const void *a,
                                    size_t a_stride, size_t n_act, float *y, size_t ldy);
    void (*quantize_q8_0)(const float *x, void *dst, size_t n);
    void (*quantize_q8_k)(const float *x, void *dst, size_t n);
    void (*f32_to_f16)(const float *x, uint16_t *y, size_t n);
    void (*axpy_f16)(size_t n, float a, const uint16_t *x, float *y);
    /* kern_dot_f16_rows, kern_sum_f16_rows; NULL: loops over dot[KS_F16]
     * and axpy_f16 */
    void (*dot_f16_rows)(size_t n, const uint16_t *k, size_t stride, size_t n_rows, const float *q,
                         float *out);
    void (*sum_f16_rows)(size_t n, const uint16_t *v, size_t stride, size_t n_rows, const float *w,
                         float *out);
    /* kern_sum_f16_rows_heads; NULL: kern_sum_f16_rows per head */
    void (*sum_f16_rows_heads)(size_t n, const uint16_t *v, size_t stride, size_t n_rows,
                               const float *w, size_t w_stride, size_t g, float *out);
    /* kern_softmax, kern_swiglu; NULL: the scalar ones */
    void (*softmax)(float *x, size_t n, float scale);
    void (*swiglu)(float *g, const float *u, size_t n);
};

/* The scalar table (always present); the others exist when their build
 * condition holds and return NULL when the CPU lacks the instructions. */
extern const struct kern_impl kern_impl_scalar;
const struct kern_impl *kern_impl_avx2(void);
const struct kern_impl *kern_impl_neon(void);

/* Q5_0 packed eight rows at a time: per block, 176 bytes (the 8 blocks'
 * own size):
 *   d[8]         the rows' f16 scales
 *   hbits[32]    byte 4r + i, bit k: the fifth bit of row r's element 4k + i
 *   qs[4][32]    chunk c, bytes 4r..4r+3: row r's qs[4c..4c+3], whose low
 *                nibbles are elements 4c..4c+3 and high nibbles 16+4c..
 * Vector k (elements 4k..4k+3 of every row, k < 4 from chunk k's low
 * nibbles, k >= 4 from chunk k-4's high ones) gets its fifth bits from
 * hbits shifted by 4 - k and masked to bit 4. */
#define KERN_Q5_0_X8_BLOCK 176

/* Q4_K packed eight rows at a time: per block, 1184 bytes (the 8 blocks'
 * 1152 and 32 more: the six-bit scales and mins kept as bytes):
 *   d[8], dmin[8]  the rows' f16 scales
 *   sc[2][32]      scales: half h (sub-blocks 4h..4h+3), 128-bit lane L
 *                  (rows 4L..4L+3), byte 16L + 4s' + r' for sub-block
 *                  4h + s', row 4L + r' (a byte shuffle in each lane picks
 *                  a sub-block's four rows)
 *   mn[4][16]      mins: pair p, byte 2r + i: row r, sub-block 2p + i
 *   qs[8][4][32]   sub-block s, chunk c, bytes 4r..4r+3: row r's elements
 *                  32s + 4c + i in the low nibbles, 32s + 16 + 4c + i in
 *                  the high ones (i = 0..3)
 * One vector again holds four elements of the eight rows. */
#define KERN_Q4_K_X8_BLOCK 1184

/* rows of at most this many blocks are packed (the kernels' scratch):
 * 32768 elements of Q5_0, 65536 of Q4_K */
#define KERN_PACK_MAX_BLOCKS 1024
#define KERN_PACK_MAX_KBLOCKS 256

/* Bytes of one packed group of KERN_PACK_ROWS rows of n elements. */
static inline size_t kern_pack_group_bytes(enum kern_slot s, size_t n)
{
    return s == KS_Q5_0   ? n / QK8_0 * KERN_Q5_0_X8_BLOCK
           : s == KS_Q4_K ? n / QK_K * KERN_Q4_K_X8_BLOCK
                          : 0;
}

/* Six-bit scale and min j (0..7) of a Q4_K block. */
static inline void kern_q4k_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

#endif
