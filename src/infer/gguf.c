/*
 * gguf.c — the GGUF reader (a pure function over a byte buffer) and the
 * streaming writer. Every length, count and offset that comes from the file
 * is checked before use; every error names the byte offset and the field.
 */
#include "infer/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/str.h"
#include "infer/quant.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "joulebench reads GGUF tensors in place and needs a little-endian host"
#endif

/* ---- names ---- */

static const char *const value_type_names[GGUF_TYPE_COUNT] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",   "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64",
};

const char *gguf_type_name(enum gguf_type t)
{
    return (unsigned)t < GGUF_TYPE_COUNT ? value_type_names[t] : "type?";
}

size_t gguf_type_size(enum gguf_type t)
{
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

const char *ggml_type_name(enum ggml_type t)
{
    static const char *const names[GGML_TYPE_COUNT] = {
        [0] = "F32",     [1] = "F16",      [2] = "Q4_0",   [3] = "Q4_1",    [6] = "Q5_0",
        [7] = "Q5_1",    [8] = "Q8_0",     [9] = "Q8_1",   [10] = "Q2_K",   [11] = "Q3_K",
        [12] = "Q4_K",   [13] = "Q5_K",    [14] = "Q6_K",  [15] = "Q8_K",   [16] = "IQ2_XXS",
        [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S", [20] = "IQ4_NL", [21] = "IQ3_S",
        [22] = "IQ2_S",  [23] = "IQ4_XS",  [24] = "I8",    [25] = "I16",    [26] = "I32",
        [27] = "I64",    [28] = "F64",     [29] = "IQ1_M", [30] = "BF16",   [34] = "TQ1_0",
        [35] = "TQ2_0",
    };
    if ((unsigned)t < GGML_TYPE_COUNT && names[t])
        return names[t];
    return "type?";
}

/* ---- arena: every array the parse allocates, freed together ---- */

struct anode {
    struct anode *next;
    alignas(max_align_t) unsigned char data[];
};

struct index {
    uint32_t *slots; /* entry index + 1; 0 is empty */
    size_t cap;      /* a power of two */
    uint64_t seed;   /* per index: names cannot be chosen to collide */
};

struct arena {
    struct anode *nodes;
    struct index kv_index, tensor_index;
};

static void *arena_alloc(struct arena *a, size_t size)
{
    if (size > SIZE_MAX - sizeof(struct anode))
        return NULL;
    struct anode *n = malloc(sizeof *n + size);
    if (!n)
        return NULL;
    n->next = a->nodes;
    a->nodes = n;
    return n->data;
}

/* What general.alignment may be, for the reader and the writer alike: a
 * power of two from 8 (the spec asks for a multiple of 8, which also keeps
 * every F32 and F16 weight naturally aligned in the mapped file). */
static int alignment_ok(uint64_t a)
{
    return a >= 8 && !(a & (a - 1)) && a <= GGUF_MAX_ALIGNMENT;
}

static int str_equal(struct gguf_str a, struct gguf_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Builds an open-addressing index over n names (name_at(i)). Returns the
 * index of the first duplicate found, or -1; -2 when out of memory. */
static long index_build(struct arena *a, struct index *ix, size_t n,
                        struct gguf_str (*name_at)(const void *, size_t), const void *ctx)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    ix->slots = arena_alloc(a, cap * sizeof *ix->slots);
    if (!ix->slots)
        return -2;
    memset(ix->slots, 0, cap * sizeof *ix->slots);
    ix->cap = cap;
    ix->seed = str_hash_seed(ix->slots); /* names cannot be chosen to collide */
    for (size_t i = 0; i < n; i++) {
        struct gguf_str s = name_at(ctx, i);
        size_t h = (size_t)str_hash(ix->seed, s.ptr, (size_t)s.len) & (cap - 1);
        while (ix->slots[h]) {
            if (str_equal(name_at(ctx, ix->slots[h] - 1), s))
                return (long)i;
            h = (h + 1) & (cap - 1);
        }
        ix->slots[h] = (uint32_t)(i + 1);
    }
    return -1;
}

static long index_find(const struct index *ix, const char *name,
                       struct gguf_str (*name_at)(const void *, size_t), const void *ctx)
{
    if (!ix->slots)
        return -1;
    struct gguf_str s = {name, strlen(name)};
    size_t h = (size_t)str_hash(ix->seed, s.ptr, (size_t)s.len) & (ix->cap - 1);
    while (ix->slots[h]) {
        if (str_equal(name_at(ctx, ix->slots[h] - 1), s))
            return (long)ix->slots[h] - 1;
        h = (h + 1) & (ix->cap - 1);
    }
    return -1;
}

/* The longest cluster of occupied slots (cyclic): the most any probe
 * walks. */
static size_t index_longest_run(const struct index *ix)
{
    if (!ix->slots)
        return 0;
    size_t best = 0, run = 0, start = 0;
    while (start < ix->cap && ix->slots[start]) /* begin after an empty slot */
        start++;
    if (start == ix->cap)
        return ix->cap;
    for (size_t k = 1; k <= ix->cap; k++) {
        size_t i = (start + k) & (ix->cap - 1);
        run = ix->slots[i] ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

size_t gguf_index_longest_probe(const struct gguf_file *f)
{
    const struct arena *a = f->arena;
    if (!a)
        return 0;
    size_t k = index_longest_run(&a->kv_index), t = index_longest_run(&a->tensor_index);
    return k > t ? k : t;
}

static struct gguf_str kv_name(const void *ctx, size_t i)
{
    return ((const struct gguf_kv *)ctx)[i].key;
}

static struct gguf_str tensor_name(const void *ctx, size_t i)
{
    return ((const struct gguf_tensor *)ctx)[i].name;
}

/* ---- the parser ---- */

struct parser {
    const uint8_t *b;
    size_t len;
    size_t pos;
    char *err;
    struct arena *arena;
    char field[160]; /* what is being read, for messages */
};

/* "offset N: <field>: <message>" */
static int perr(struct parser *p, size_t at, const char *fmt, ...) JB_PRINTF(3, 4);
static int perr(struct parser *p, size_t at, const char *fmt, ...)
{
    if (!p->err)
        return JB_ERR_FORMAT;
    char msg[ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_setf(p->err, JB_ERR_FORMAT, "offset %zu: %s: %s", at, p->field, msg);
}

static int nomem(struct parser *p)
{
    return err_setf(p->err, JB_ERR_NOMEM, "offset %zu: %s: out of memory", p->pos, p->field);
}

static size_t remaining(const struct parser *p)
{
    return p->len - p->pos;
}

static int need(struct parser *p, size_t n)
{
    if (remaining(p) < n)
        return perr(p, p->pos, "the file ends here (size %zu) but %zu more bytes were expected",
                    p->len, n);
    return 0;
}

static int rd_u32(struct parser *p, uint32_t *v)
{
    int rc = need(p, 4);
    if (rc)
        return rc;
    memcpy(v, p->b + p->pos, 4);
    p->pos += 4;
    return 0;
}

static int rd_u64(struct parser *p, uint64_t *v)
{
    int rc = need(p, 8);
    if (rc)
        return rc;
    memcpy(v, p->b + p->pos, 8);
    p->pos += 8;
    return 0;
}

/* A string: u64 length + bytes, at most max bytes. */
static int rd_str(struct parser *p, struct gguf_str *s, uint64_t max)
{
    size_t at = p->pos;
    uint64_t n;
    int rc = rd_u64(p, &n);
    if (rc)
        return rc;
    if (n > max)
        return perr(p, at, "string length %llu is over the limit of %llu bytes",
                    (unsigned long long)n, (unsigned long long)max);
    if (n > remaining(p))
        return perr(p, at, "string length %llu runs past the end of the file (%zu bytes left)",
                    (unsigned long long)n, remaining(p));
    s->ptr = (const char *)p->b + p->pos;
    s->len = n;
    p->pos += (size_t)n;
    return 0;
}

/* Smallest number of bytes one element of type t takes, for bounding
 * counts: a string is at least its length, an array its type and count. */
static size_t min_elem_size(enum gguf_type t)
{
    if (t == GGUF_TYPE_STRING)
        return 8;
    if (t == GGUF_TYPE_ARRAY)
        return 12;
    return gguf_type_size(t);
}

static int rd_value(struct parser *p, enum gguf_type type, struct gguf_value *v, int depth);
static void set_field(struct parser *p, const char *fmt, ...) JB_PRINTF(2, 3);

static int rd_array(struct parser *p, struct gguf_value *v, int depth)
{
    size_t at = p->pos;
    uint32_t et;
    uint64_t n;
    int rc = rd_u32(p, &et);
    if (rc)
        return rc;
    if (et >= GGUF_TYPE_COUNT)
        return perr(p, at, "unknown array element type %u", et);
    if (et == GGUF_TYPE_ARRAY && depth + 1 >= GGUF_MAX_DEPTH)
        return perr(p, at, "arrays nested deeper than %d levels", GGUF_MAX_DEPTH);
    rc = rd_u64(p, &n);
    if (rc)
        return rc;
    size_t esize = min_elem_size((enum gguf_type)et);
    if (n > remaining(p) / esize)
        return perr(p, at + 4,
                    "array of %llu %s elements cannot fit in the %zu bytes left in the file",
                    (unsigned long long)n, gguf_type_name((enum gguf_type)et), remaining(p));
    v->v.arr.elem = (enum gguf_type)et;
    v->v.arr.n = n;
    v->v.arr.data = NULL;
    v->v.arr.strs = NULL;
    v->v.arr.items = NULL;
    if (et == GGUF_TYPE_STRING) {
        struct gguf_str *strs = n ? arena_alloc(p->arena, (size_t)n * sizeof *strs) : NULL;
        if (n && !strs)
            return nomem(p);
        for (uint64_t i = 0; i < n; i++) {
            size_t start = p->pos;
            if ((rc = rd_str(p, &strs[i], GGUF_MAX_STRING))) {
                /* read it again under a field naming the element */
                char field[sizeof p->field];
                memcpy(field, p->field, sizeof field);
                set_field(p, "%s, element %llu", field, (unsigned long long)i);
                p->pos = start;
                return rd_str(p, &strs[i], GGUF_MAX_STRING);
            }
        }
        v->v.arr.strs = strs;
    } else if (et == GGUF_TYPE_ARRAY) {
        struct gguf_value *items = n ? arena_alloc(p->arena, (size_t)n * sizeof *items) : NULL;
        if (n && !items)
            return nomem(p);
        for (uint64_t i = 0; i < n; i++) {
            items[i].type = GGUF_TYPE_ARRAY;
            rc = rd_array(p, &items[i], depth + 1);
            if (rc)
                return rc;
        }
        v->v.arr.items = items;
    } else {
        if (et == GGUF_TYPE_BOOL) {
            for (uint64_t i = 0; i < n; i++)
                if (p->b[p->pos + i] > 1)
                    return perr(p, p->pos + (size_t)i, "bool array element %llu is %u, not 0 or 1",
                                (unsigned long long)i, p->b[p->pos + i]);
        }
        v->v.arr.data = p->b + p->pos;
        p->pos += (size_t)(n * esize);
    }
    return 0;
}

static int rd_value(struct parser *p, enum gguf_type type, struct gguf_value *v, int depth)
{
    v->type = type;
    size_t size = gguf_type_size(type);
    if (type == GGUF_TYPE_STRING)
        return rd_str(p, &v->v.s, GGUF_MAX_STRING);
    if (type == GGUF_TYPE_ARRAY)
        return rd_array(p, v, depth);
    int rc = need(p, size);
    if (rc)
        return rc;
    const uint8_t *q = p->b + p->pos;
    switch (type) {
    case GGUF_TYPE_UINT8:
        v->v.u = q[0];
        break;
    case GGUF_TYPE_INT8:
        v->v.i = (int8_t)q[0];
        break;
    case GGUF_TYPE_BOOL:
        if (q[0] > 1)
            return perr(p, p->pos, "bool value is %u, not 0 or 1", q[0]);
        v->v.b = q[0];
        break;
    case GGUF_TYPE_UINT16: {
        uint16_t x;
        memcpy(&x, q, 2);
        v->v.u = x;
        break;
    }
    case GGUF_TYPE_INT16: {
        int16_t x;
        memcpy(&x, q, 2);
        v->v.i = x;
        break;
    }
    case GGUF_TYPE_UINT32: {
        uint32_t x;
        memcpy(&x, q, 4);
        v->v.u = x;
        break;
    }
    case GGUF_TYPE_INT32: {
        int32_t x;
        memcpy(&x, q, 4);
        v->v.i = x;
        break;
    }
    case GGUF_TYPE_FLOAT32: {
        float x;
        memcpy(&x, q, 4);
        v->v.f = x;
        break;
    }
    case GGUF_TYPE_UINT64:
        memcpy(&v->v.u, q, 8);
        break;
    case GGUF_TYPE_INT64:
        memcpy(&v->v.i, q, 8);
        break;
    case GGUF_TYPE_FLOAT64:
        memcpy(&v->v.f, q, 8);
        break;
    default:
        return perr(p, p->pos, "unknown value type %d", (int)type);
    }
    p->pos += size;
    return 0;
}

static void set_field(struct parser *p, const char *fmt, ...) JB_PRINTF(2, 3);
static void set_field(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->field, sizeof p->field, fmt, ap);
    va_end(ap);
}

/* A name for messages: at most 64 bytes, non-printable bytes as '?'. */
static void printable(char *dst, size_t size, struct gguf_str s)
{
    size_t n = s.len < size - 1 ? (size_t)s.len : size - 1;
    if (n > 64)
        n = 64;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[n] = '\0';
}

static int parse_header(struct parser *p, struct gguf_file *out)
{
    set_field(p, "magic");
    if (p->len < 4)
        return perr(p, 0, "the file is %zu bytes, too short for a GGUF header", p->len);
    uint32_t magic;
    memcpy(&magic, p->b, 4);
    if (magic != GGUF_MAGIC) {
        char got[5];
        printable(got, sizeof got, (struct gguf_str){(const char *)p->b, 4});
        return perr(p, 0, "not a GGUF file: it starts with \"%s\" instead of \"GGUF\"", got);
    }
    p->pos = 4;
    set_field(p, "version");
    int rc = rd_u32(p, &out->version);
    if (rc)
        return rc;
    if (out->version == 1)
        return perr(p, 4,
                    "GGUF version 1 (files from before September 2023) is not supported; "
                    "convert the model again with a current llama.cpp");
    if (out->version == 0x02000000u || out->version == 0x03000000u)
        return perr(p, 4, "a big-endian GGUF file; joulebench reads little-endian files only");
    if (out->version != 2 && out->version != 3)
        return perr(p, 4, "unknown GGUF version %u (joulebench reads versions 2 and 3)",
                    out->version);
    set_field(p, "tensor count");
    if ((rc = rd_u64(p, &out->n_tensors)))
        return rc;
    set_field(p, "metadata count");
    if ((rc = rd_u64(p, &out->n_kv)))
        return rc;
    /* smallest pair: 8-byte key length, 1-byte key, 4-byte type, 1 byte */
    if (out->n_kv > remaining(p) / 14)
        return perr(p, 16, "%llu metadata pairs cannot fit in the %zu bytes left in the file",
                    (unsigned long long)out->n_kv, remaining(p));
    /* smallest tensor info: name length, 1-byte name, n_dims, one
     * dimension, type, offset */
    set_field(p, "tensor count");
    if (out->n_tensors > remaining(p) / 33)
        return perr(p, 8, "%llu tensors cannot fit in the %zu bytes left in the file",
                    (unsigned long long)out->n_tensors, remaining(p));
    if (out->n_tensors > UINT32_MAX - 1 || out->n_kv > UINT32_MAX - 1)
        return perr(p, 8, "too many entries");
    return 0;
}

static int parse_kvs(struct parser *p, struct gguf_file *out)
{
    if (out->n_kv) {
        out->kv = arena_alloc(p->arena, (size_t)out->n_kv * sizeof *out->kv);
        if (!out->kv)
            return nomem(p);
    }
    for (uint64_t i = 0; i < out->n_kv; i++) {
        struct gguf_kv *kv = &out->kv[i];
        memset(kv, 0, sizeof *kv);
        kv->offset = p->pos;
        set_field(p, "metadata pair %llu: key", (unsigned long long)i);
        int rc = rd_str(p, &kv->key, GGUF_MAX_KEY);
        if (rc)
            return rc;
        if (kv->key.len == 0)
            return perr(p, (size_t)kv->offset, "empty key");
        char name[72];
        printable(name, sizeof name, kv->key);
        set_field(p, "metadata '%s'", name);
        size_t at = p->pos;
        uint32_t type;
        if ((rc = rd_u32(p, &type)))
            return rc;
        if (type >= GGUF_TYPE_COUNT)
            return perr(p, at, "unknown value type %u", type);
        if ((rc = rd_value(p, (enum gguf_type)type, &kv->value, 0)))
            return rc;
    }
    set_field(p, "metadata");
    long dup = index_build(p->arena, &p->arena->kv_index, (size_t)out->n_kv, kv_name, out->kv);
    if (dup == -2)
        return nomem(p);
    if (dup >= 0) {
        char name[72];
        printable(name, sizeof name, out->kv[dup].key);
        return perr(p, (size_t)out->kv[dup].offset, "key '%s' appears twice", name);
    }
    return 0;
}

static int parse_alignment(struct parser *p, struct gguf_file *out)
{
    out->alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct gguf_kv *kv = gguf_find_kv(out, "general.alignment");
    if (!kv)
        return 0;
    set_field(p, "metadata 'general.alignment'");
    uint64_t a;
    if (gguf_get_u64(out, "general.alignment", &a))
        return perr(p, (size_t)kv->offset, "must be an unsigned integer, not %s",
                    gguf_type_name(kv->value.type));
    if (!alignment_ok(a))
        return perr(p, (size_t)kv->offset, "%llu is not a power of two from 8 to 2^30",
                    (unsigned long long)a);
    out->alignment = a;
    return 0;
}

static int parse_tensor_infos(struct parser *p, struct gguf_file *out)
{
    if (out->n_tensors) {
        out->tensors = arena_alloc(p->arena, (size_t)out->n_tensors * sizeof *out->tensors);
        if (!out->tensors)
            return nomem(p);
    }
    for (uint64_t i = 0; i < out->n_tensors; i++) {
        struct gguf_tensor *t = &out->tensors[i];
        memset(t, 0, sizeof *t);
        t->info_offset = p->pos;
        set_field(p, "tensor %llu: name", (unsigned long long)i);
        int rc = rd_str(p, &t->name, GGUF_MAX_NAME);
        if (rc)
            return rc;
        if (t->name.len == 0)
            return perr(p, (size_t)t->info_offset, "empty name");
        char name[72];
        printable(name, sizeof name, t->name);
        set_field(p, "tensor '%s'", name);
        size_t at = p->pos;
        if ((rc = rd_u32(p, &t->n_dims)))
            return rc;
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
            return perr(p, at, "n_dims is %u; it must be 1 to %d", t->n_dims, GGUF_MAX_DIMS);
        uint64_t n = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            at = p->pos;
            if ((rc = rd_u64(p, &t->ne[d])))
                return rc;
            if (t->ne[d] > (uint64_t)INT64_MAX)
                return perr(p, at, "dimension %u is %llu, past 2^63", d,
                            (unsigned long long)t->ne[d]);
            if (t->ne[d] && n > (uint64_t)INT64_MAX / t->ne[d])
                return perr(p, at, "the product of the dimensions overflows 2^63");
            n *= t->ne[d];
        }
        t->n_elements = n;
        at = p->pos;
        uint32_t type;
        if ((rc = rd_u32(p, &type)))
            return rc;
        if (type >= GGML_TYPE_COUNT)
            return perr(p, at, "unknown tensor type %u", type);
        t->type = (enum ggml_type)type;
        size_t be, bb;
        if (quant_block_size(t->type, &be, &bb) == 0) {
            if (t->ne[0] % be)
                return perr(p, at, "row length %llu is not a multiple of %s's block of %zu",
                            (unsigned long long)t->ne[0], ggml_type_name(t->type), be);
            uint64_t blocks = n / be;
            if (blocks > UINT64_MAX / bb)
                return perr(p, at, "the tensor's size overflows");
            t->size_bytes = blocks * bb;
        }
        at = p->pos;
        if ((rc = rd_u64(p, &t->offset)))
            return rc;
        if (t->offset % out->alignment)
            return perr(p, at, "data offset %llu is not a multiple of the alignment %llu",
                        (unsigned long long)t->offset, (unsigned long long)out->alignment);
    }
    set_field(p, "tensors");
    long dup = index_build(p->arena, &p->arena->tensor_index, (size_t)out->n_tensors, tensor_name,
                           out->tensors);
    if (dup == -2)
        return nomem(p);
    if (dup >= 0) {
        char name[72];
        printable(name, sizeof name, out->tensors[dup].name);
        set_field(p, "tensor '%s'", name);
        return perr(p, (size_t)out->tensors[dup].info_offset, "a tensor of this name came before");
    }
    return 0;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a;
    const struct gguf_tensor *y = *(const struct gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Tensor data: inside the file and no two tensors sharing a byte. */
static int place_tensors(struct parser *p, struct gguf_file *out)
{
    set_field(p, "tensor data");
    uint64_t a = out->alignment;
    if (p->pos > UINT64_MAX - a)
        return perr(p, p->pos, "data offset overflows");
    out->data_offset = ((uint64_t)p->pos + a - 1) / a * a;
    if (out->n_tensors == 0)
        return 0;
    struct gguf_tensor **order = malloc((size_t)out->n_tensors * sizeof *order);
    if (!order)
        return nomem(p);
    size_t n = 0;
    int rc = 0;
    for (uint64_t i = 0; i < out->n_tensors; i++) {
        struct gguf_tensor *t = &out->tensors[i];
        if (!t->size_bytes && t->n_elements)
            continue; /* size unknown: left unmapped */
        char name[72];
        printable(name, sizeof name, t->name);
        set_field(p, "tensor '%s'", name);
        uint64_t start = out->data_offset + t->offset, end = start + t->size_bytes;
        if (t->offset > UINT64_MAX - out->data_offset || start > UINT64_MAX - t->size_bytes ||
            end > p->len) {
            rc = perr(p, (size_t)t->info_offset,
                      "its %llu bytes at offset %llu of the data section (which starts at "
                      "%llu) run past the end of the file (size %zu)",
                      (unsigned long long)t->size_bytes, (unsigned long long)t->offset,
                      (unsigned long long)out->data_offset, p->len);
            goto out;
        }
        t->data = p->b + start;
        if (t->size_bytes)
            order[n++] = t;
    }
    qsort(order, n, sizeof *order, cmp_by_offset);
    for (size_t i = 1; i < n; i++) {
        const struct gguf_tensor *prev = order[i - 1], *t = order[i];
        if (prev->offset + prev->size_bytes > t->offset) {
            char a_name[72], b_name[72];
            printable(a_name, sizeof a_name, prev->name);
            printable(b_name, sizeof b_name, t->name);
            set_field(p, "tensor '%s'", b_name);
            rc = perr(p, (size_t)t->info_offset,
                      "data at offset %llu overlaps tensor '%s' (offset %llu, %llu bytes)",
                      (unsigned long long)t->offset, a_name, (unsigned long long)prev->offset,
                      (unsigned long long)prev->size_bytes);
            goto out;
        }
    }
out:
    free(order);
    return rc;
}

int gguf_parse(const void *buf, size_t len, struct gguf_file *out, char *err)
{
    memset(out, 0, sizeof *out);
    struct arena *a = calloc(1, sizeof *a);
    if (!a)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    out->arena = a;
    out->base = buf;
    out->size = len;
    struct parser p = {.b = buf, .len = len, .err = err, .arena = a};
    int rc = parse_header(&p, out);
    if (!rc)
        rc = parse_kvs(&p, out);
    if (!rc)
        rc = parse_alignment(&p, out);
    if (!rc)
        rc = parse_tensor_infos(&p, out);
    if (!rc)
        rc = place_tensors(&p, out);
    if (rc)
        gguf_free(out);
    return rc;
}

void gguf_free(struct gguf_file *f)
{
    if (!f)
        return;
    struct arena *a = f->arena;
    if (a) {
        struct anode *n = a->nodes;
        while (n) {
            struct anode *next = n->next;
            free(n);
            n = next;
        }
        free(a);
    }
    memset(f, 0, sizeof *f);
}

int gguf_open(const char *path, struct fs_map *map, struct gguf_file *out, char *err)
{
    memset(out, 0, sizeof *out);
    int rc = fs_map_file(path, map, err);
    if (rc)
        return rc;
    rc = gguf_parse(map->data, map->size, out, err);
    if (rc) {
        err_prefix(err, "%s", path);
        fs_unmap(map);
    }
    return rc;
}

void gguf_close(struct fs_map *map, struct gguf_file *f)
{
    gguf_free(f);
    fs_unmap(map);
}

/* ---- lookups ---- */

int gguf_str_eq(struct gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key)
{
    const struct arena *a = f->arena;
    if (!a)
        return NULL;
    long i = index_find(&a->kv_index, key, kv_name, f->kv);
    return i < 0 ? NULL : &f->kv[i];
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    const struct arena *a = f->arena;
    if (!a)
        return NULL;
    long i = index_find(&a->tensor_index, name, tensor_name, f->tensors);
    return i < 0 ? NULL : &f->tensors[i];
}

static int is_unsigned(enum gguf_type t)
{
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 ||
           t == GGUF_TYPE_UINT64;
}

static int is_signed(enum gguf_type t)
{
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_INT64;
}

int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return JB_ERR_NOTFOUND;
    if (is_unsigned(kv->value.type)) {
        *out = kv->value.v.u;
        return 0;
    }
    if (is_signed(kv->value.type) && kv->value.v.i >= 0) {
        *out = (uint64_t)kv->value.v.i;
        return 0;
    }
    return JB_ERR_FORMAT;
}

int gguf_get_f64(const struct gguf_file *f, const char *key, double *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return JB_ERR_NOTFOUND;
    if (is_unsigned(kv->value.type))
        *out = (double)kv->value.v.u;
    else if (is_signed(kv->value.type))
        *out = (double)kv->value.v.i;
    else if (kv->value.type == GGUF_TYPE_FLOAT32 || kv->value.type == GGUF_TYPE_FLOAT64)
        *out = kv->value.v.f;
    else
        return JB_ERR_FORMAT;
    return 0;
}

int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return JB_ERR_NOTFOUND;
    if (kv->value.type != GGUF_TYPE_STRING)
        return JB_ERR_FORMAT;
    *out = kv->value.v.s;
    return 0;
}

int gguf_get_bool(const struct gguf_file *f, const char *key, int *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return JB_ERR_NOTFOUND;
    if (kv->value.type != GGUF_TYPE_BOOL)
        return JB_ERR_FORMAT;
    *out = kv->value.v.b;
    return 0;
}

int gguf_get_arr(const struct gguf_file *f, const char *key, const struct gguf_value **out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return JB_ERR_NOTFOUND;
    if (kv->value.type != GGUF_TYPE_ARRAY)
        return JB_ERR_FORMAT;
    *out = &kv->value;
    return 0;
}

int gguf_arr_get_int(const struct gguf_value *arr, uint64_t i, int64_t *out)
{
    if (arr->type != GGUF_TYPE_ARRAY)
        return JB_ERR_FORMAT;
    if (i >= arr->v.arr.n)
        return JB_ERR_USAGE;
    const uint8_t *q = arr->v.arr.data;
    switch (arr->v.arr.elem) {
    case GGUF_TYPE_UINT8:
        *out = q[i];
        return 0;
    case GGUF_TYPE_INT8:
        *out = (int8_t)q[i];
        return 0;
    case GGUF_TYPE_UINT16: {
        uint16_t x;
        memcpy(&x, q + 2 * i, 2);
        *out = x;
        return 0;
    }
    case GGUF_TYPE_INT16: {
        int16_t x;
        memcpy(&x, q + 2 * i, 2);
        *out = x;
        return 0;
    }
    case GGUF_TYPE_UINT32: {
        uint32_t x;
        memcpy(&x, q + 4 * i, 4);
        *out = x;
        return 0;
    }
    case GGUF_TYPE_INT32: {
        int32_t x;
        memcpy(&x, q + 4 * i, 4);
        *out = x;
        return 0;
    }
    case GGUF_TYPE_UINT64: {
        uint64_t x;
        memcpy(&x, q + 8 * i, 8);
        if (x > (uint64_t)INT64_MAX)
            return JB_ERR_FORMAT;
        *out = (int64_t)x;
        return 0;
    }
    case GGUF_TYPE_INT64:
        memcpy(out, q + 8 * i, 8);
        return 0;
    default:
        return JB_ERR_FORMAT;
    }
}

int gguf_arr_get_f64(const struct gguf_value *arr, uint64_t i, double *out)
{
    if (arr->type != GGUF_TYPE_ARRAY)
        return JB_ERR_FORMAT;
    if (i >= arr->v.arr.n)
        return JB_ERR_USAGE;
    if (arr->v.arr.elem == GGUF_TYPE_FLOAT32) {
        float x;
        memcpy(&x, arr->v.arr.data + 4 * i, 4);
        *out = x;
        return 0;
    }
    if (arr->v.arr.elem == GGUF_TYPE_FLOAT64) {
        memcpy(out, arr->v.arr.data + 8 * i, 8);
        return 0;
    }
    if (arr->v.arr.elem == GGUF_TYPE_UINT64) {
        uint64_t x;
        memcpy(&x, arr->v.arr.data + 8 * i, 8);
        *out = (double)x;
        return 0;
    }
    int64_t x;
    int rc = gguf_arr_get_int(arr, i, &x);
    if (rc)
        return rc;
    *out = (double)x;
    return 0;
}

/* ---- writer ---- */

struct wtensor {
    char *name;
    enum ggml_type type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t size;
    uint64_t offset;
};

struct gguf_writer {
    FILE *fp;
    char path[FS_PATH_MAX];
    char tmp[FS_PATH_MAX];
    struct buf kvs; /* serialized pairs */
    uint64_t n_kv;
    char **keys;
    size_t n_keys, cap_keys;
    struct wtensor *tensors;
    size_t n_tensors, cap_tensors;
    uint64_t alignment;
    int header_done;
    size_t cur;        /* tensor receiving data */
    uint64_t cur_done; /* its bytes so far */
    uint64_t pos;      /* bytes written to the file */
    int rc;            /* sticky error */
    char err[ERR_LEN];
};

static int werr(struct gguf_writer *w, int code, const char *fmt, ...) JB_PRINTF(3, 4);
static int werr(struct gguf_writer *w, int code, const char *fmt, ...)
{
    if (w->rc)
        return w->rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    w->rc = code;
    return code;
}

int gguf_writer_open(struct gguf_writer **out, const char *path, char *err)
{
    *out = NULL;
    struct gguf_writer *w = calloc(1, sizeof *w);
    if (!w)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (str_lcpy(w->path, path, sizeof w->path) >= sizeof w->path ||
        snprintf(w->tmp, sizeof w->tmp, "%s.XXXXXX", path) >= (int)sizeof w->tmp) {
        free(w);
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", path);
    }
    int fd = mkstemp(w->tmp);
    if (fd < 0) {
        int e = errno;
        free(w);
        return err_setf(err, fs_errno_code(e), "%s: cannot create a file next to it: %s", path,
                        strerror(e));
    }
    (void)fchmod(fd, 0644);
    w->fp = fdopen(fd, "wb");
    if (!w->fp) {
        close(fd);
        unlink(w->tmp);
        free(w);
        return err_setf(err, JB_ERR_IO, "%s: %s", path, strerror(errno));
    }
    setvbuf(w->fp, NULL, _IOFBF, 1 << 20);
    *out = w;
    return 0;
}

static int w_put(struct gguf_writer *w, const void *p, size_t n)
{
    if (w->rc)
        return w->rc;
    if (n && fwrite(p, 1, n, w->fp) != n)
        return werr(w, JB_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    w->pos += n;
    return 0;
}

static int w_pad(struct gguf_writer *w)
{
    static const uint8_t zeros[64];
    while (w->pos % w->alignment) {
        size_t n = (size_t)(w->alignment - w->pos % w->alignment);
        int rc = w_put(w, zeros, n < sizeof zeros ? n : sizeof zeros);
        if (rc)
            return rc;
    }
    return 0;
}

static int kv_bytes(struct gguf_writer *w, const void *p, size_t n)
{
    if (buf_append(&w->kvs, p, n))
        return werr(w, JB_ERR_NOMEM, "out of memory for metadata");
    return 0;
}

static int kv_u32v(struct gguf_writer *w, uint32_t v)
{
    return kv_bytes(w, &v, 4);
}

static int kv_u64v(struct gguf_writer *w, uint64_t v)
{
    return kv_bytes(w, &v, 8);
}

static int kv_strv(struct gguf_writer *w, const char *s, uint64_t n)
{
    int rc = kv_u64v(w, n);
    return rc ? rc : kv_bytes(w, s, (size_t)n);
}

/* Starts a pair: checks order and the key, writes key and type. */
static int kv_begin(struct gguf_writer *w, const char *key, enum gguf_type t)
{
    if (w->rc)
        return w->rc;
    if (w->header_done)
        return werr(w, JB_ERR_STATE, "metadata '%s' added after tensor data began", key);
    size_t n = strlen(key);
    if (n == 0 || n > GGUF_MAX_KEY)
        return werr(w, JB_ERR_USAGE, "metadata key '%s' is empty or too long", key);
    /* the writer pads the data to the alignment it was given as a uint32;
     * the key in another type would say one thing and the file do another */
    if (t != GGUF_TYPE_UINT32 && strcmp(key, "general.alignment") == 0)
        return werr(w, JB_ERR_USAGE, "general.alignment must be a uint32 (gguf_writer_kv_u32)");
    for (size_t i = 0; i < w->n_keys; i++)
        if (strcmp(w->keys[i], key) == 0)
            return werr(w, JB_ERR_USAGE, "metadata key '%s' written twice", key);
    if (w->n_keys == w->cap_keys) {
        size_t cap = w->cap_keys ? w->cap_keys * 2 : 32;
        char **k = realloc(w->keys, cap * sizeof *k);
        if (!k)
            return werr(w, JB_ERR_NOMEM, "out of memory");
        w->keys = k;
        w->cap_keys = cap;
    }
    if (!(w->keys[w->n_keys] = str_dup(key)))
        return werr(w, JB_ERR_NOMEM, "out of memory");
    w->n_keys++;
    w->n_kv++;
    int rc = kv_strv(w, key, n);
    return rc ? rc : kv_u32v(w, (uint32_t)t);
}

int gguf_writer_kv_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
    if (strcmp(key, "general.alignment") == 0) {
        if (!alignment_ok(v))
            return werr(w, JB_ERR_USAGE, "general.alignment %u is not a power of two from 8", v);
        if (!w->rc && !w->header_done)
            w->alignment = v;
    }
    int rc = kv_begin(w, key, GGUF_TYPE_UINT32);
    return rc ? rc : kv_u32v(w, v);
}

int gguf_writer_kv_i32(struct gguf_writer *w, const char *key, int32_t v)
{
    int rc = kv_begin(w, key, GGUF_TYPE_INT32);
    return rc ? rc : kv_bytes(w, &v, 4);
}

int gguf_writer_kv_u64(struct gguf_writer *w, const char *key, uint64_t v)
{
    int rc = kv_begin(w, key, GGUF_TYPE_UINT64);
    return rc ? rc : kv_u64v(w, v);
}

int gguf_writer_kv_f32(struct gguf_writer *w, const char *key, float v)
{
    int rc = kv_begin(w, key, GGUF_TYPE_FLOAT32);
    return rc ? rc : kv_bytes(w, &v, 4);
}

int gguf_writer_kv_bool(struct gguf_writer *w, const char *key, int v)
{
    uint8_t b = v ? 1 : 0;
    int rc = kv_begin(w, key, GGUF_TYPE_BOOL);
    return rc ? rc : kv_bytes(w, &b, 1);
}

int gguf_writer_kv_str(struct gguf_writer *w, const char *key, const char *v)
{
    int rc = kv_begin(w, key, GGUF_TYPE_STRING);
    return rc ? rc : kv_strv(w, v, strlen(v));
}

static int kv_arr_head(struct gguf_writer *w, const char *key, enum gguf_type elem, size_t n)
{
    int rc = kv_begin(w, key, GGUF_TYPE_ARRAY);
    if (!rc)
        rc = kv_u32v(w, (uint32_t)elem);
    return rc ? rc : kv_u64v(w, n);
}

int gguf_writer_kv_arr_str(struct gguf_writer *w, const char *key, const char *const *v, size_t n)
{
    int rc = kv_arr_head(w, key, GGUF_TYPE_STRING, n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = kv_strv(w, v[i], strlen(v[i]));
    return rc;
}

int gguf_writer_kv_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, size_t n)
{
    int rc = kv_arr_head(w, key, GGUF_TYPE_INT32, n);
    if (!rc && n > SIZE_MAX / 4)
        return werr(w, JB_ERR_NOMEM, "array too large");
    return rc ? rc : kv_bytes(w, v, n * 4);
}

int gguf_writer_kv_arr_f32(struct gguf_writer *w, const char *key, const float *v, size_t n)
{
    int rc = kv_arr_head(w, key, GGUF_TYPE_FLOAT32, n);
    if (!rc && n > SIZE_MAX / 4)
        return werr(w, JB_ERR_NOMEM, "array too large");
    return rc ? rc : kv_bytes(w, v, n * 4);
}

/* The payload of a value (no type tag), recursing into arrays. */
static int kv_payload(struct gguf_writer *w, const struct gguf_value *v, int depth)
{
    if (depth >= GGUF_MAX_DEPTH)
        return werr(w, JB_ERR_USAGE, "arrays nested deeper than %d levels", GGUF_MAX_DEPTH);
    switch (v->type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_UINT64:
        return kv_bytes(w, &v->v.u, gguf_type_size(v->type)); /* little-endian low bytes */
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_INT16:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_INT64:
        return kv_bytes(w, &v->v.i, gguf_type_size(v->type));
    case GGUF_TYPE_FLOAT32: {
        float f = (float)v->v.f;
        return kv_bytes(w, &f, 4);
    }
    case GGUF_TYPE_FLOAT64:
        return kv_bytes(w, &v->v.f, 8);
    case GGUF_TYPE_BOOL: {
        uint8_t b = v->v.b ? 1 : 0;
        return kv_bytes(w, &b, 1);
    }
    case GGUF_TYPE_STRING:
        return kv_strv(w, v->v.s.ptr, v->v.s.len);
    case GGUF_TYPE_ARRAY: {
        enum gguf_type e = v->v.arr.elem;
        uint64_t n = v->v.arr.n;
        if ((unsigned)e >= GGUF_TYPE_COUNT)
            return werr(w, JB_ERR_USAGE, "unknown array element type %d", (int)e);
        int rc = kv_u32v(w, (uint32_t)e);
        if (!rc)
            rc = kv_u64v(w, n);
        if (rc || n == 0)
            return rc;
        if (e == GGUF_TYPE_STRING) {
            for (uint64_t i = 0; !rc && i < n; i++)
                rc = kv_strv(w, v->v.arr.strs[i].ptr, v->v.arr.strs[i].len);
            return rc;
        }
        if (e == GGUF_TYPE_ARRAY) {
            for (uint64_t i = 0; !rc && i < n; i++)
                rc = kv_payload(w, &v->v.arr.items[i], depth + 1);
            return rc;
        }
        size_t es = gguf_type_size(e);
        if (n > SIZE_MAX / es)
            return werr(w, JB_ERR_NOMEM, "array too large");
        return kv_bytes(w, v->v.arr.data, (size_t)n * es);
    }
    default:
        return werr(w, JB_ERR_USAGE, "unknown value type %d", (int)v->type);
    }
}

int gguf_writer_kv(struct gguf_writer *w, const char *key, const struct gguf_value *v)
{
    if ((unsigned)v->type >= GGUF_TYPE_COUNT)
        return werr(w, JB_ERR_USAGE, "metadata '%s': unknown value type %d", key, (int)v->type);
    if (strcmp(key, "general.alignment") == 0) {
        if (v->type != GGUF_TYPE_UINT32)
            return werr(w, JB_ERR_USAGE, "general.alignment must be a uint32");
        return gguf_writer_kv_u32(w, key, (uint32_t)v->v.u);
    }
    int rc = kv_begin(w, key, v->type);
    return rc ? rc : kv_payload(w, v, 0);
}

int gguf_writer_tensor(struct gguf_writer *w, const char *name, enum ggml_type type,
                       uint32_t n_dims, const uint64_t *ne)
{
    if (w->rc)
        return w->rc;
    if (w->header_done)
        return werr(w, JB_ERR_STATE, "tensor '%s' declared after tensor data began", name);
    size_t len = strlen(name);
    if (len == 0 || len > GGUF_MAX_NAME)
        return werr(w, JB_ERR_USAGE, "tensor name '%s' is empty or too long", name);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return werr(w, JB_ERR_USAGE, "tensor '%s': n_dims %u", name, n_dims);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] > (uint64_t)INT64_MAX || (ne[d] && n > (uint64_t)INT64_MAX / ne[d]))
            return werr(w, JB_ERR_USAGE, "tensor '%s': dimensions overflow", name);
        n *= ne[d];
    }
    size_t be, bb;
    if (quant_block_size(type, &be, &bb))
        return werr(w, JB_ERR_UNSUPPORTED, "tensor '%s': type %s has no known size", name,
                    ggml_type_name(type));
    if (ne[0] % be)
        return werr(w, JB_ERR_USAGE, "tensor '%s': row length %llu is not a multiple of %zu", name,
                    (unsigned long long)ne[0], be);
    if (n / be > (uint64_t)INT64_MAX / bb) /* as the reader refuses it */
        return werr(w, JB_ERR_USAGE, "tensor '%s': its size overflows", name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return werr(w, JB_ERR_USAGE, "tensor '%s' declared twice", name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        struct wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t)
            return werr(w, JB_ERR_NOMEM, "out of memory");
        w->tensors = t;
        w->cap_tensors = cap;
    }
    struct wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = str_dup(name)))
        return werr(w, JB_ERR_NOMEM, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < n_dims; d++)
        t->ne[d] = ne[d];
    t->size = n / be * bb;
    w->n_tensors++;
    return 0;
}

/* Writes everything before the tensor data: header, metadata, tensor
 * infos with their offsets, padding. */
static int write_header(struct gguf_writer *w)
{
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        w->tensors[i].offset = off;
        if (w->tensors[i].size > (uint64_t)INT64_MAX - off)
            return werr(w, JB_ERR_USAGE, "the tensors' data passes 2^63 bytes at tensor '%s'",
                        w->tensors[i].name);
        uint64_t end = off + w->tensors[i].size;
        off = (end + w->alignment - 1) / w->alignment * w->alignment;
    }
    uint32_t magic = GGUF_MAGIC, version = 3;
    uint64_t nt = w->n_tensors;
    int rc = w_put(w, &magic, 4);
    if (!rc)
        rc = w_put(w, &version, 4);
    if (!rc)
        rc = w_put(w, &nt, 8);
    if (!rc)
        rc = w_put(w, &w->n_kv, 8);
    if (!rc)
        rc = w_put(w, w->kvs.data, w->kvs.len);
    for (size_t i = 0; !rc && i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        uint64_t len = strlen(t->name);
        uint32_t type = (uint32_t)t->type;
        rc = w_put(w, &len, 8);
        if (!rc)
            rc = w_put(w, t->name, (size_t)len);
        if (!rc)
            rc = w_put(w, &t->n_dims, 4);
        if (!rc)
            rc = w_put(w, t->ne, 8 * (size_t)t->n_dims);
        if (!rc)
            rc = w_put(w, &type, 4);
        if (!rc)
            rc = w_put(w, &t->offset, 8);
    }
    if (!rc)
        rc = w_pad(w);
    w->header_done = 1;
    buf_free(&w->kvs);
    /* zero-sized tensors at the front take no data */
    while (!rc && w->cur < w->n_tensors && w->tensors[w->cur].size == 0)
        w->cur++;
    return rc;
}

int gguf_writer_data(struct gguf_writer *w, const void *data, size_t size)
{
    if (w->rc)
        return w->rc;
    int rc = 0;
    if (!w->header_done && (rc = write_header(w)))
        return rc;
    const uint8_t *p = data;
    while (size) {
        if (w->cur >= w->n_tensors)
            return werr(w, JB_ERR_USAGE, "%zu bytes of data past the last declared tensor", size);
        struct wtensor *t = &w->tensors[w->cur];
        uint64_t left = t->size - w->cur_done;
        size_t n = left < size ? (size_t)left : size;
        if ((rc = w_put(w, p, n)))
            return rc;
        p += n;
        size -= n;
        w->cur_done += n;
        if (w->cur_done == t->size) {
            if ((rc = w_pad(w)))
                return rc;
            w->cur++;
            w->cur_done = 0;
            while (w->cur < w->n_tensors && w->tensors[w->cur].size == 0)
                w->cur++;
        }
    }
    return 0;
}

static void writer_free(struct gguf_writer *w)
{
    buf_free(&w->kvs);
    for (size_t i = 0; i < w->n_keys; i++)
        free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w);
}

int gguf_writer_finish(struct gguf_writer *w, char *err)
{
    int rc = w->rc;
    if (!rc && !w->header_done)
        rc = write_header(w);
    if (!rc && w->cur < w->n_tensors)
        rc = werr(w, JB_ERR_STATE, "tensor '%s' is missing %llu bytes of data",
                  w->tensors[w->cur].name,
                  (unsigned long long)(w->tensors[w->cur].size - w->cur_done));
    if (!rc && fflush(w->fp))
        rc = werr(w, JB_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    if (!rc && fsync(fileno(w->fp)))
        rc = werr(w, JB_ERR_IO, "%s: fsync failed: %s", w->tmp, strerror(errno));
    if (fclose(w->fp) && !rc)
        rc = werr(w, JB_ERR_IO, "%s: close failed: %s", w->tmp, strerror(errno));
    w->fp = NULL;
    if (!rc && rename(w->tmp, w->path))
        rc = werr(w, fs_errno_code(errno), "%s: cannot rename to %s: %s", w->tmp, w->path,
                  strerror(errno));
    if (rc) {
        unlink(w->tmp);
        err_setf(err, rc, "%s: %s", w->path, w->err);
    }
    writer_free(w);
    return rc;
}

void gguf_writer_abort(struct gguf_writer *w)
{
    if (!w)
        return;
    if (w->fp)
        fclose(w->fp);
    unlink(w->tmp);
    writer_free(w);
}
