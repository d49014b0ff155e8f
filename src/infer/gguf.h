/*
 * gguf.h — GGUF v2/v3 model files: a reader that is a pure function over a
 * byte buffer (usually the mmap of the file), and a writer (used by
 * `joulebench synth` and by the tests).
 *
 * Facts from the GGUF specification: little-endian; magic "GGUF"; u32
 * version; u64 tensor count; u64 metadata count; metadata key/value pairs
 * (key: u64 length + bytes; value: u32 type + payload); tensor infos (name,
 * u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset); padding to
 * general.alignment (default 32); tensor data, each tensor at data_offset +
 * its offset, which must be a multiple of the alignment.
 *
 * Limits the reader enforces (a file past them is JB_ERR_FORMAT): keys up to
 * GGUF_MAX_KEY bytes and non-empty, tensor names up to GGUF_MAX_NAME bytes,
 * strings up to GGUF_MAX_STRING bytes, arrays nested at most GGUF_MAX_DEPTH
 * deep, every count no larger than the remaining bytes could hold, n_dims
 * 1..4, dimensions and their product below 2^63, no duplicate keys or
 * tensor names, tensors aligned, inside the file and not overlapping,
 * general.alignment a power of two up to 2^30. Only little-endian files
 * (every GGUF in use) on little-endian hosts.
 *
 * Ownership: gguf_parse() fills a caller-owned struct gguf_file whose arrays
 * live in one heap arena freed by gguf_free(). Strings (struct gguf_str)
 * and tensor data point INTO the caller's buffer, which must outlive the
 * struct. Nothing is NUL-terminated: compare with gguf_str_eq().
 * gguf_open() maps a file and parses it; gguf_close() frees both.
 */
#ifndef JB_INFER_GGUF_H
#define JB_INFER_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_KEY 65535
#define GGUF_MAX_NAME 256
#define GGUF_MAX_STRING (64u << 20)
#define GGUF_MAX_DEPTH 8
#define GGUF_MAX_ALIGNMENT (1u << 30)

enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

/* Tensor element types (ggml numbering). Only those joulebench computes
 * with are named; others parse but cannot be used. */
enum ggml_type {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_COUNT = 40
};

struct gguf_str {
    const char *ptr; /* into the buffer; not NUL-terminated */
    uint64_t len;
};

struct gguf_value {
    enum gguf_type type;
    union {
        uint64_t u;        /* UINT8..UINT64 */
        int64_t i;         /* INT8..INT64 */
        double f;          /* FLOAT32, FLOAT64 */
        int b;             /* BOOL */
        struct gguf_str s; /* STRING */
        struct {
            enum gguf_type elem;
            uint64_t n;
            const uint8_t *data;            /* fixed-size elements, in the buffer */
            const struct gguf_str *strs;    /* STRING elements (arena) */
            const struct gguf_value *items; /* ARRAY elements (arena) */
        } arr;
    } v;
};

struct gguf_kv {
    struct gguf_str key;
    struct gguf_value value;
    uint64_t offset; /* where the pair starts in the file, for messages */
};

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length (contiguous) */
    enum ggml_type type;
    uint64_t offset;      /* relative to the data section */
    uint64_t info_offset; /* where its tensor info starts in the file */
    uint64_t n_elements;
    uint64_t size_bytes; /* 0 when the type's size is unknown (quant_block_size) */
    const void *data;    /* NULL when the size is unknown; may be unaligned
                          * for the C type only if general.alignment < 4 */
};

struct gguf_file {
    uint32_t version;
    uint64_t n_kv;
    struct gguf_kv *kv;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;
    const uint8_t *base;
    size_t size;
    void *arena; /* owns kv, tensors, arrays */
};

/* Parses buf. Every length, count and offset is checked against the buffer
 * and against overflow; a truncated or hostile file is JB_ERR_FORMAT with a
 * message naming the byte offset and the field ("offset 1234: tensor
 * 'blk.0.attn_q.weight': data runs past the end of the file (size 4096)"). */
int gguf_parse(const void *buf, size_t len, struct gguf_file *out, char *err);
void gguf_free(struct gguf_file *f); /* also on a zeroed or failed struct */

struct fs_map;
/* Maps path read-only and parses it; errors start with the path. On
 * failure nothing stays mapped or allocated. */
int gguf_open(const char *path, struct fs_map *map, struct gguf_file *out, char *err);
void gguf_close(struct fs_map *map, struct gguf_file *f);

int gguf_str_eq(struct gguf_str s, const char *c);
const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key);
/* Typed getters. Integers accept any integer type whose value fits;
 * gguf_get_f64 accepts any number. JB_ERR_NOTFOUND when absent,
 * JB_ERR_FORMAT when of the wrong type. */
int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out);
int gguf_get_f64(const struct gguf_file *f, const char *key, double *out);
int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out);
int gguf_get_bool(const struct gguf_file *f, const char *key, int *out);
int gguf_get_arr(const struct gguf_file *f, const char *key, const struct gguf_value **out);
/* Element i of an ARRAY value: any integer element type whose value fits
 * an int64, or any number as a double. JB_ERR_FORMAT for another element
 * type, JB_ERR_USAGE when i is out of range. */
int gguf_arr_get_int(const struct gguf_value *arr, uint64_t i, int64_t *out);
int gguf_arr_get_f64(const struct gguf_value *arr, uint64_t i, double *out);
/* Lookups use a hash index built by gguf_parse: O(1), with a per-file
 * seed, so names chosen to collide cannot make them linear. */
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);
/* The most slots any lookup in the key or tensor index walks (tests). */
size_t gguf_index_longest_probe(const struct gguf_file *f);

const char *gguf_type_name(enum gguf_type t);
const char *ggml_type_name(enum ggml_type t); /* "Q4_K"; "type?" for unknown numbers */
/* Bytes a fixed-size value type takes in the file (0 for STRING, ARRAY). */
size_t gguf_type_size(enum gguf_type t);

/* ---- writer ---- */
struct gguf_writer; /* opaque */

/* Writes GGUF v3. Metadata and tensor infos are kept in memory; tensor data
 * streams straight to the file, so a model larger than memory can be
 * written. The file appears under its name only when complete: data goes to
 * a temporary file in the same folder, renamed by gguf_writer_finish().
 * "general.alignment" (kv_u32, before the first data) sets the alignment.
 * Errors are sticky: after one, every call returns it and finish reports
 * the message.
 *
 * Ownership: gguf_writer_open() allocates; gguf_writer_finish() writes the
 * file and frees the writer (also on error, then removing the temporary
 * file); gguf_writer_abort() frees it and removes the partial file. Keys,
 * values and data are copied. */
int gguf_writer_open(struct gguf_writer **out, const char *path, char *err);
int gguf_writer_kv_u32(struct gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_kv_i32(struct gguf_writer *w, const char *key, int32_t v);
int gguf_writer_kv_u64(struct gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_kv_f32(struct gguf_writer *w, const char *key, float v);
int gguf_writer_kv_bool(struct gguf_writer *w, const char *key, int v);
int gguf_writer_kv_str(struct gguf_writer *w, const char *key, const char *v);
int gguf_writer_kv_arr_str(struct gguf_writer *w, const char *key, const char *const *v, size_t n);
int gguf_writer_kv_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, size_t n);
int gguf_writer_kv_arr_f32(struct gguf_writer *w, const char *key, const float *v, size_t n);
/* Any value, nested arrays included, in the reader's representation (so a
 * parsed file's metadata can be copied): fixed-size array elements from
 * arr.data (little-endian), strings from arr.strs, arrays from arr.items. */
int gguf_writer_kv(struct gguf_writer *w, const char *key, const struct gguf_value *v);
/* Declares a tensor; its data follows later through gguf_writer_data(), in
 * declaration order, after all tensors are declared, in chunks of any size
 * (a chunk may end or begin mid-tensor, or span tensors). */
int gguf_writer_tensor(struct gguf_writer *w, const char *name, enum ggml_type type,
                       uint32_t n_dims, const uint64_t *ne);
int gguf_writer_data(struct gguf_writer *w, const void *data, size_t size);
int gguf_writer_finish(struct gguf_writer *w, char *err);
void gguf_writer_abort(struct gguf_writer *w);

#endif
