/*
 * joulebench gguf-info [--json] FILE|MODEL — the metadata and the tensor
 * table of a GGUF file, given by path or by Ollama model name. Long arrays
 * (the vocabulary) are abbreviated to their first items and their count.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/str.h"
#include "infer/gguf.h"
#include "infer/store.h"

#define SHOW_ITEMS 8       /* array items shown in text */
#define JSON_FULL_ITEMS 64 /* arrays up to this long are given whole in JSON */
#define SHOW_STRING 120    /* string bytes shown in text */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: joulebench gguf-info [--json] FILE|MODEL\n\n"
            "Prints the metadata and the tensor table of a GGUF model file: each\n"
            "tensor's name, type, shape, bytes and offset, with totals and the\n"
            "parameter count. MODEL is an Ollama name (qwen2.5-coder:7b), looked up in\n"
            "$OLLAMA_MODELS or ~/.ollama/models. Long arrays are shown as their first\n"
            "%d items and their length.\n\n"
            "  --json   one JSON object instead of text (arrays longer than %d items\n"
            "           become {\"array_of\", \"count\", \"first\"})\n",
            SHOW_ITEMS, JSON_FULL_ITEMS);
}

/* A string for a terminal: escapes for control bytes, cut at max bytes. */
static void put_escaped(struct buf *b, struct gguf_str s, size_t max)
{
    size_t n = s.len < max ? (size_t)s.len : max;
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c == '\n')
            buf_puts(b, "\\n");
        else if (c == '\t')
            buf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f)
            buf_printf(b, "\\x%02x", c);
        else
            buf_putc(b, (char)c);
    }
    buf_putc(b, '"');
    if (s.len > n)
        buf_printf(b, "... (%" PRIu64 " bytes)", s.len);
}

/* A key or tensor name: as it is when it has no control characters,
 * otherwise quoted and escaped as values are, so a name cannot forge a
 * line of the listing. */
static const char *name_text(struct buf *b, struct gguf_str s)
{
    buf_reset(b);
    int plain = s.len <= 256;
    for (uint64_t i = 0; plain && i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        plain = c >= 0x20 && c != 0x7f && c != '"' && c != '\\';
    }
    if (plain)
        buf_append(b, s.ptr, (size_t)s.len);
    else
        put_escaped(b, s, 256);
    return buf_str(b);
}

/* The shortest decimal that reads back as the same float (or double). */
static void put_real(struct buf *b, double x, int is_f32)
{
    char tmp[40];
    for (int prec = is_f32 ? 6 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        double back = strtod(tmp, NULL);
        if (is_f32 ? (float)back == (float)x : back == x)
            break;
    }
    buf_puts(b, tmp);
}

static void put_scalar(struct buf *b, enum gguf_type t, const uint8_t *p)
{
    switch (t) {
    case GGUF_TYPE_UINT8:
        buf_printf(b, "%u", p[0]);
        break;
    case GGUF_TYPE_INT8:
        buf_printf(b, "%d", (int8_t)p[0]);
        break;
    case GGUF_TYPE_BOOL:
        buf_puts(b, p[0] ? "true" : "false");
        break;
    case GGUF_TYPE_UINT16: {
        uint16_t x;
        memcpy(&x, p, 2);
        buf_printf(b, "%u", x);
        break;
    }
    case GGUF_TYPE_INT16: {
        int16_t x;
        memcpy(&x, p, 2);
        buf_printf(b, "%d", x);
        break;
    }
    case GGUF_TYPE_UINT32: {
        uint32_t x;
        memcpy(&x, p, 4);
        buf_printf(b, "%" PRIu32, x);
        break;
    }
    case GGUF_TYPE_INT32: {
        int32_t x;
        memcpy(&x, p, 4);
        buf_printf(b, "%" PRId32, x);
        break;
    }
    case GGUF_TYPE_FLOAT32: {
        float x;
        memcpy(&x, p, 4);
        put_real(b, x, 1);
        break;
    }
    case GGUF_TYPE_UINT64: {
        uint64_t x;
        memcpy(&x, p, 8);
        buf_printf(b, "%" PRIu64, x);
        break;
    }
    case GGUF_TYPE_INT64: {
        int64_t x;
        memcpy(&x, p, 8);
        buf_printf(b, "%" PRId64, x);
        break;
    }
    case GGUF_TYPE_FLOAT64: {
        double x;
        memcpy(&x, p, 8);
        put_real(b, x, 0);
        break;
    }
    default:
        buf_puts(b, "?");
    }
}

static void put_value(struct buf *b, const struct gguf_value *v)
{
    switch (v->type) {
    case GGUF_TYPE_STRING:
        put_escaped(b, v->v.s, SHOW_STRING);
        return;
    case GGUF_TYPE_ARRAY: {
        uint64_t n = v->v.arr.n;
        uint64_t show = n < SHOW_ITEMS ? n : SHOW_ITEMS;
        buf_putc(b, '[');
        for (uint64_t i = 0; i < show; i++) {
            if (i)
                buf_puts(b, ", ");
            if (v->v.arr.elem == GGUF_TYPE_STRING)
                put_escaped(b, v->v.arr.strs[i], 40);
            else if (v->v.arr.elem == GGUF_TYPE_ARRAY)
                put_value(b, &v->v.arr.items[i]);
            else
                put_scalar(b, v->v.arr.elem, v->v.arr.data + i * gguf_type_size(v->v.arr.elem));
        }
        if (n > show)
            buf_puts(b, ", ...");
        buf_putc(b, ']');
        if (n > show)
            buf_printf(b, " (%" PRIu64 " items)", n);
        return;
    }
    case GGUF_TYPE_UINT64:
        buf_printf(b, "%" PRIu64, v->v.u);
        return;
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_UINT32:
        buf_printf(b, "%" PRIu64, v->v.u);
        return;
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_INT16:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_INT64:
        buf_printf(b, "%" PRId64, v->v.i);
        return;
    case GGUF_TYPE_FLOAT32:
        put_real(b, v->v.f, 1);
        return;
    case GGUF_TYPE_FLOAT64:
        put_real(b, v->v.f, 0);
        return;
    case GGUF_TYPE_BOOL:
        buf_puts(b, v->v.b ? "true" : "false");
        return;
    default:
        buf_puts(b, "?");
    }
}

static void type_label(char *dst, size_t size, const struct gguf_value *v)
{
    if (v->type == GGUF_TYPE_ARRAY)
        snprintf(dst, size, "%s[%" PRIu64 "]", gguf_type_name(v->v.arr.elem), v->v.arr.n);
    else
        snprintf(dst, size, "%s", gguf_type_name(v->type));
}

static void shape_text(char *dst, size_t size, const struct gguf_tensor *t)
{
    dst[0] = '\0';
    for (uint32_t d = 0; d < t->n_dims; d++) {
        char part[32];
        snprintf(part, sizeof part, d ? " x %" PRIu64 : "%" PRIu64, t->ne[d]);
        str_lcat(dst, part, size);
    }
}

static void human_count(char *dst, size_t size, double n)
{
    if (n >= 1e9)
        snprintf(dst, size, "%.2f B", n / 1e9);
    else if (n >= 1e6)
        snprintf(dst, size, "%.2f M", n / 1e6);
    else if (n >= 1e3)
        snprintf(dst, size, "%.1f K", n / 1e3);
    else
        snprintf(dst, size, "%.0f", n);
}

struct totals {
    uint64_t bytes, params, unknown;
    uint64_t by_type[GGML_TYPE_COUNT];
};

static void count(const struct gguf_file *f, struct totals *t)
{
    memset(t, 0, sizeof *t);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *x = &f->tensors[i];
        t->bytes += x->size_bytes;
        /* saturating: tensors of a type of unknown size take no bytes, so
         * their declared counts were never checked against the file */
        t->params = x->n_elements > UINT64_MAX - t->params ? UINT64_MAX : t->params + x->n_elements;
        t->unknown += x->size_bytes == 0 && x->n_elements;
        t->by_type[x->type]++;
    }
}

static void print_text(const char *shown, const char *path, const struct gguf_file *f)
{
    struct totals tot;
    count(f, &tot);
    struct buf b = {0};
    printf("file:      %s", path);
    if (strcmp(shown, path) != 0)
        printf(" (model %s)", shown);
    printf("\nsize:      %zu bytes\n", f->size);
    printf("format:    GGUF version %" PRIu32 ", alignment %" PRIu64
           ", tensor data at offset %" PRIu64 "\n",
           f->version, f->alignment, f->data_offset);
    printf("\nmetadata (%" PRIu64 " keys):\n", f->n_kv);
    size_t key_w = 10;
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (f->kv[i].key.len > key_w && f->kv[i].key.len < 48)
            key_w = (size_t)f->kv[i].key.len;
    struct buf nb = {0};
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kv[i];
        char type[48];
        type_label(type, sizeof type, &kv->value);
        buf_reset(&b);
        put_value(&b, &kv->value);
        printf("  %-*s  %-16s %s\n", (int)key_w, name_text(&nb, kv->key), type, buf_str(&b));
    }
    size_t name_w = 4;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].name.len > name_w)
            name_w = (size_t)f->tensors[i].name.len;
    printf("\ntensors (%" PRIu64 "):\n", f->n_tensors);
    printf("  %-*s  %-7s  %-24s %14s %14s\n", (int)name_w, "name", "type", "shape", "bytes",
           "offset");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        char shape[128], bytes[32];
        shape_text(shape, sizeof shape, t);
        if (t->size_bytes || !t->n_elements)
            snprintf(bytes, sizeof bytes, "%" PRIu64, t->size_bytes);
        else
            snprintf(bytes, sizeof bytes, "?");
        printf("  %-*s  %-7s  %-24s %14s %14" PRIu64 "\n", (int)name_w, name_text(&nb, t->name),
               ggml_type_name(t->type), shape, bytes, t->offset);
    }
    buf_free(&nb);
    char params[64];
    if (tot.params == UINT64_MAX)
        snprintf(params, sizeof params, "2^64 or more parameters");
    else {
        char human[32];
        human_count(human, sizeof human, (double)tot.params);
        snprintf(params, sizeof params, "%" PRIu64 " parameters (%s)", tot.params, human);
    }
    printf("\ntotal:     %" PRIu64 " tensors, %" PRIu64 " bytes (%.1f MiB), %s\n", f->n_tensors,
           tot.bytes, (double)tot.bytes / (1024.0 * 1024.0), params);
    if (tot.unknown)
        printf("           %" PRIu64 " tensors of types whose size joulebench does not know "
               "are not in the byte total\n",
               tot.unknown);
    printf("types:    ");
    for (int ty = 0; ty < GGML_TYPE_COUNT; ty++)
        if (tot.by_type[ty])
            printf(" %s x %" PRIu64, ggml_type_name((enum ggml_type)ty), tot.by_type[ty]);
    printf("\n");
    buf_free(&b);
}

/* A JSON string from file bytes: as they are when valid UTF-8, otherwise
 * with each invalid byte as U+FFFD. */
static json_t *json_str(struct gguf_str s)
{
    if (str_utf8_valid(s.ptr, (size_t)s.len))
        return json_stringn(s.ptr, (size_t)s.len);
    struct buf b = {0};
    for (uint64_t i = 0; i < s.len;) {
        size_t n = 1;
        while (n <= 4 && i + n <= s.len && !str_utf8_valid(s.ptr + i, n))
            n++;
        if (n <= 4 && i + n <= s.len) {
            buf_append(&b, s.ptr + i, n);
            i += n;
        } else {
            buf_puts(&b, "\xef\xbf\xbd");
            i++;
        }
    }
    json_t *j = json_stringn(buf_str(&b), b.len);
    buf_free(&b);
    return j;
}

/* A float for JSON, which has no NaN or infinities: those as the strings
 * "NaN", "Infinity", "-Infinity", so no value drops out of a key or an
 * array. */
static json_t *json_float(double x)
{
    if (isnan(x))
        return json_string("NaN");
    if (isinf(x))
        return json_string(x > 0 ? "Infinity" : "-Infinity");
    return json_real(x);
}

static json_t *json_scalar(enum gguf_type t, const uint8_t *p)
{
    switch (t) {
    case GGUF_TYPE_UINT8:
        return json_integer(p[0]);
    case GGUF_TYPE_INT8:
        return json_integer((int8_t)p[0]);
    case GGUF_TYPE_BOOL:
        return json_boolean(p[0]);
    case GGUF_TYPE_UINT16: {
        uint16_t x;
        memcpy(&x, p, 2);
        return json_integer(x);
    }
    case GGUF_TYPE_INT16: {
        int16_t x;
        memcpy(&x, p, 2);
        return json_integer(x);
    }
    case GGUF_TYPE_UINT32: {
        uint32_t x;
        memcpy(&x, p, 4);
        return json_integer(x);
    }
    case GGUF_TYPE_INT32: {
        int32_t x;
        memcpy(&x, p, 4);
        return json_integer(x);
    }
    case GGUF_TYPE_FLOAT32: {
        float x;
        memcpy(&x, p, 4);
        return json_float(x);
    }
    case GGUF_TYPE_UINT64: {
        uint64_t x;
        memcpy(&x, p, 8);
        return x > (uint64_t)INT64_MAX ? json_real((double)x) : json_integer((json_int_t)x);
    }
    case GGUF_TYPE_INT64: {
        int64_t x;
        memcpy(&x, p, 8);
        return json_integer(x);
    }
    case GGUF_TYPE_FLOAT64: {
        double x;
        memcpy(&x, p, 8);
        return json_float(x);
    }
    default:
        return json_null();
    }
}

static json_t *json_value(const struct gguf_value *v)
{
    switch (v->type) {
    case GGUF_TYPE_STRING:
        return json_str(v->v.s);
    case GGUF_TYPE_ARRAY: {
        uint64_t n = v->v.arr.n;
        uint64_t show = n <= JSON_FULL_ITEMS ? n : SHOW_ITEMS;
        json_t *a = json_array();
        for (uint64_t i = 0; i < show; i++) {
            json_t *item;
            if (v->v.arr.elem == GGUF_TYPE_STRING)
                item = json_str(v->v.arr.strs[i]);
            else if (v->v.arr.elem == GGUF_TYPE_ARRAY)
                item = json_value(&v->v.arr.items[i]);
            else
                item =
                    json_scalar(v->v.arr.elem, v->v.arr.data + i * gguf_type_size(v->v.arr.elem));
            json_array_append_new(a, item);
        }
        if (n <= JSON_FULL_ITEMS)
            return a;
        return json_pack("{s:s, s:I, s:o}", "array_of", gguf_type_name(v->v.arr.elem), "count",
                         (json_int_t)n, "first", a);
    }
    case GGUF_TYPE_BOOL:
        return json_boolean(v->v.b);
    case GGUF_TYPE_FLOAT32:
    case GGUF_TYPE_FLOAT64:
        return json_float(v->v.f);
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_UINT64:
        return v->v.u > (uint64_t)INT64_MAX ? json_real((double)v->v.u)
                                            : json_integer((json_int_t)v->v.u);
    default:
        return json_integer(v->v.i);
    }
}

static int print_json(const char *shown, const char *path, const struct gguf_file *f)
{
    struct totals tot;
    count(f, &tot);
    json_t *meta = json_object();
    for (uint64_t i = 0; i < f->n_kv; i++) {
        /* keys are bytes from the file: made valid, and NUL-free for jansson */
        json_t *k = json_str(f->kv[i].key);
        const char *key = json_string_value(k);
        if (key && strlen(key) == json_string_length(k))
            json_object_set_new(meta, key, json_value(&f->kv[i].value));
        json_decref(k);
    }
    json_t *tensors = json_array();
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        json_t *shape = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->ne[d]));
        json_t *o = json_pack("{s:o, s:s, s:o, s:I, s:I}", "name", json_str(t->name), "type",
                              ggml_type_name(t->type), "shape", shape, "n_elements",
                              (json_int_t)t->n_elements, "offset", (json_int_t)t->offset);
        json_object_set_new(o, "bytes",
                            (t->size_bytes || !t->n_elements)
                                ? json_integer((json_int_t)t->size_bytes)
                                : json_null());
        json_array_append_new(tensors, o);
    }
    json_t *types = json_object();
    for (int ty = 0; ty < GGML_TYPE_COUNT; ty++)
        if (tot.by_type[ty])
            json_object_set_new(types, ggml_type_name((enum ggml_type)ty),
                                json_integer((json_int_t)tot.by_type[ty]));
    json_t *root = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:o, s:o}", "path", path, "file_bytes",
        (json_int_t)f->size, "version", (json_int_t)f->version, "alignment",
        (json_int_t)f->alignment, "data_offset", (json_int_t)f->data_offset, "metadata", meta,
        "n_tensors", (json_int_t)f->n_tensors, "tensor_bytes", (json_int_t)tot.bytes, "n_params",
        (json_int_t)(tot.params > (uint64_t)INT64_MAX ? INT64_MAX : tot.params), "types", types,
        "tensors", tensors);
    if (!root)
        return 1;
    if (strcmp(shown, path) != 0)
        json_object_set_new(root, "model", json_string(shown));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!s)
        return 1;
    printf("%s\n", s);
    free(s);
    return 0;
}

int cmd_gguf_info(int argc, char **argv)
{
    int json = 0;
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--") == 0 && i + 1 < argc && !target) {
            target = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("gguf-info", "unknown option '%s'", a);
        } else if (target) {
            return cli_usage_error("gguf-info", "one FILE or MODEL only ('%s' is extra)", a);
        } else {
            target = a;
        }
    }
    if (!target)
        return cli_usage_error("gguf-info", "name a GGUF file or an Ollama model");
    char err[ERR_LEN];
    char path[FS_PATH_MAX];
    int rc;
    if (store_is_path(target)) {
        str_lcpy(path, target, sizeof path);
    } else if ((rc = store_resolve(NULL, target, path, sizeof path, NULL, 0, err))) {
        log_error("%s", err);
        return rc == JB_ERR_NOTFOUND ? 2 : err_exit_code(rc); /* the name given is wrong */
    }
    struct fs_map map;
    struct gguf_file f;
    if ((rc = gguf_open(path, &map, &f, err))) {
        log_error("%s", err);
        return rc == JB_ERR_NOTFOUND ? 2 : err_exit_code(rc); /* the file given is not there */
    }
    int status = 0;
    if (json)
        status = print_json(target, path, &f);
    else
        print_text(target, path, &f);
    gguf_close(&map, &f);
    if (fflush(stdout) || ferror(stdout))
        status = 1;
    return status;
}
