/* GGUF reader: gguf_parse() over the raw bytes, then every lookup a model
 * loader makes on what it accepted, so a file that parses but lies (a
 * tensor past the end, an array longer than its bytes) shows up as a read
 * out of bounds under ASan. */
#include "fuzz.h"

#include "common/err.h"
#include "infer/gguf.h"

/* Walks one value the way a loader would: every array element through the
 * typed getters. Depth is bounded by the parser (GGUF_MAX_DEPTH). */
static void walk_value(const struct gguf_value *v)
{
    if (v->type == GGUF_TYPE_STRING) {
        if (v->v.s.len)
            (void)((const volatile char *)v->v.s.ptr)[v->v.s.len - 1];
        return;
    }
    if (v->type != GGUF_TYPE_ARRAY)
        return;
    uint64_t n = v->v.arr.n;
    for (uint64_t i = 0; i < n && i < 4096; i++) {
        int64_t iv;
        double fv;
        (void)gguf_arr_get_int(v, i, &iv);
        (void)gguf_arr_get_f64(v, i, &fv);
        if (v->v.arr.elem == GGUF_TYPE_STRING) {
            struct gguf_str s = v->v.arr.strs[i];
            if (s.len)
                (void)((const volatile char *)s.ptr)[s.len - 1];
        } else if (v->v.arr.elem == GGUF_TYPE_ARRAY) {
            walk_value(&v->v.arr.items[i]);
        }
    }
}

int fuzz_gguf(const uint8_t *data, size_t size)
{
    struct gguf_file f;
    char err[ERR_LEN] = "";
    int rc = gguf_parse(data, size, &f, err);
    if (rc) {
        if (!err[0])
            fuzz_fail("gguf_parse returned %d without a message", rc);
        gguf_free(&f);
        return rc;
    }
    char key[GGUF_MAX_KEY + 1];
    for (uint64_t i = 0; i < f.n_kv; i++) {
        const struct gguf_kv *kv = &f.kv[i];
        walk_value(&kv->value);
        /* Keys may hold NUL bytes; lookup by C string only for the rest. */
        if (kv->key.len <= GGUF_MAX_KEY && !memchr(kv->key.ptr, 0, kv->key.len)) {
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = '\0';
            if (gguf_find_kv(&f, key) != kv)
                fuzz_fail("key %llu is not found by its own name", (unsigned long long)i);
            uint64_t u;
            double d;
            struct gguf_str s;
            int b;
            const struct gguf_value *a;
            (void)gguf_get_u64(&f, key, &u);
            (void)gguf_get_f64(&f, key, &d);
            (void)gguf_get_str(&f, key, &s);
            (void)gguf_get_bool(&f, key, &b);
            (void)gguf_get_arr(&f, key, &a);
        }
    }
    char name[GGUF_MAX_NAME + 1];
    for (uint64_t i = 0; i < f.n_tensors; i++) {
        const struct gguf_tensor *t = &f.tensors[i];
        if (t->data && t->size_bytes) {
            const volatile uint8_t *p = t->data;
            (void)p[0];
            (void)p[t->size_bytes - 1];
            if ((const uint8_t *)t->data + t->size_bytes > (const uint8_t *)data + size)
                fuzz_fail("tensor %llu ends past the buffer", (unsigned long long)i);
        }
        (void)ggml_type_name(t->type);
        if (t->name.len <= GGUF_MAX_NAME && !memchr(t->name.ptr, 0, t->name.len)) {
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = '\0';
            if (gguf_find_tensor(&f, name) != t)
                fuzz_fail("tensor %llu is not found by its own name", (unsigned long long)i);
        }
    }
    gguf_free(&f);
    return 0;
}
