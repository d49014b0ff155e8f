/*
 * tokenizer.c — byte-level BPE from a GGUF vocabulary: special tokens,
 * pre-tokenizer regexes (PCRE2 with Unicode classes), GPT-2's byte
 * alphabet, merges by rank with a priority queue, decoding to raw bytes,
 * and the ChatML / Llama 3 chat templates.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "infer/tokenizer.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/str.h"

/* Pre-tokenizer rules, as the models' tokenizer.json files define them. */
static const char RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                               "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

enum pre_kind { PRE_GPT2 = 0, PRE_LLAMA3, PRE_QWEN2 };

struct merge_slot {
    uint64_t key; /* (left id + 1) << 32 | (right id + 1); 0 is empty */
    int32_t rank;
    int32_t result;
};

struct tokenizer {
    size_t n_vocab;
    char *text;            /* every token's text as stored, back to back */
    uint32_t *text_off;    /* n_vocab + 1 offsets into text */
    char *bytes;           /* every token's decoded bytes */
    uint32_t *bytes_off;   /* n_vocab + 1 offsets into bytes */
    uint8_t *type;         /* token_type per id */
    uint32_t *vocab_slots; /* open addressing over text: id + 1, 0 empty */
    size_t vocab_cap;
    struct merge_slot *merges;
    size_t merge_cap;
    int byte_id[256]; /* the token of each single byte, or -1 */
    /* special tokens by first byte, longest first: ids */
    int *special;
    size_t special_start[257];
    int bos, eos, eot, eom, unk;
    int add_bos;
    int eog[16];
    int n_eog;
    enum pre_kind pre;
    pcre2_code *re;
    int ignore_merges;
    enum tokenizer_template tmpl;
    uint64_t seed; /* of the text and merge tables (str_hash) */
};

/* ---- GPT-2's byte alphabet: printable Latin-1 bytes stand for
 * themselves, the other 68 bytes (controls, space, 0x7f-0xa0, 0xad) take
 * the code points 256.. in byte order ---- */

static int byte_is_self(int b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* The 68 other bytes in order: 0x00-0x20 -> U+0100-U+0120, 0x7f-0xa0 ->
 * U+0121-U+0142, 0xad -> U+0143. */
static unsigned byte_to_cp(int b)
{
    if (byte_is_self(b))
        return (unsigned)b;
    if (b <= 32)
        return 256u + (unsigned)b;
    if (b <= 160)
        return 289u + (unsigned)(b - 127);
    return 323u; /* 0xad */
}

/* The byte a code point stands for, or -1. */
static int cp_to_byte(unsigned cp)
{
    if (cp < 256)
        return byte_is_self((int)cp) ? (int)cp : -1;
    if (cp <= 288)
        return (int)(cp - 256);
    if (cp <= 322)
        return 127 + (int)(cp - 289);
    return cp == 323 ? 173 : -1;
}

static size_t put_utf8(unsigned cp, char *dst)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 character at p (n bytes available), or 0;
 * *cp gets the code point. Overlong forms, surrogates and code points past
 * U+10FFFF are invalid, as for PCRE2. */
static size_t utf8_char(const unsigned char *p, size_t n, unsigned *cp)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[k] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

int tokenizer_vocab_text(const void *bytes, size_t n, struct buf *out)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++) {
        char u[4];
        size_t k = put_utf8(byte_to_cp(p[i]), u);
        int rc = buf_append(out, u, k);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- hashing ---- */

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

int tokenizer_find(const struct tokenizer *t, const char *text, size_t len)
{
    size_t h = (size_t)str_hash(t->seed, text, len) & (t->vocab_cap - 1);
    for (;;) {
        uint32_t s = t->vocab_slots[h];
        if (!s)
            return -1;
        uint32_t id = s - 1;
        size_t a = t->text_off[id], b = t->text_off[id + 1];
        if (b - a == len && memcmp(t->text + a, text, len) == 0)
            return (int)id;
        h = (h + 1) & (t->vocab_cap - 1);
    }
}

static const struct merge_slot *merge_find(const struct tokenizer *t, int left, int right)
{
    uint64_t key = ((uint64_t)(uint32_t)(left + 1) << 32) | (uint32_t)(right + 1);
    size_t h = (size_t)str_hash_u64(t->seed, key) & (t->merge_cap - 1);
    for (;;) {
        const struct merge_slot *s = &t->merges[h];
        if (!s->key)
            return NULL;
        if (s->key == key)
            return s;
        h = (h + 1) & (t->merge_cap - 1);
    }
}

/* ---- loading ---- */

static int decode_text_of(struct tokenizer *t, size_t id, struct buf *out)
{
    const char *p = t->text + t->text_off[id];
    size_t n = t->text_off[id + 1] - t->text_off[id];
    int type = t->type[id];
    if (type == TOKENIZER_TYPE_UNUSED)
        return 0;
    if (type == TOKENIZER_TYPE_BYTE && n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' &&
        p[5] == '>') {
        char hex[3] = {p[3], p[4], 0};
        char *end;
        long v = strtol(hex, &end, 16);
        if (*end == '\0') {
            char c = (char)v;
            return buf_append(out, &c, 1);
        }
    }
    if (type != TOKENIZER_TYPE_NORMAL)
        return buf_append(out, p, n); /* control and user-defined: their text */
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t k = utf8_char((const unsigned char *)p + i, n - i, &cp);
        if (!k) { /* not UTF-8: the raw byte */
            int rc = buf_append(out, p + i, 1);
            if (rc)
                return rc;
            i++;
            continue;
        }
        int b = cp_to_byte(cp);
        int rc;
        if (b >= 0) {
            char c = (char)b;
            rc = buf_append(out, &c, 1);
        } else {
            rc = buf_append(out, p + i, k); /* outside the alphabet: as it is */
        }
        if (rc)
            return rc;
        i += k;
    }
    return 0;
}

static int load_vocab(struct tokenizer *t, const struct gguf_file *f, char *err)
{
    const struct gguf_value *tokens, *types = NULL;
    int rc = gguf_get_arr(f, "tokenizer.ggml.tokens", &tokens);
    if (rc == JB_ERR_NOTFOUND)
        return err_setf(err, JB_ERR_FORMAT,
                        "tokenizer.ggml.tokens is missing: the file has no "
                        "vocabulary");
    if (rc || tokens->v.arr.elem != GGUF_TYPE_STRING)
        return err_setf(err, JB_ERR_FORMAT, "tokenizer.ggml.tokens must be an array of strings");
    uint64_t n = tokens->v.arr.n;
    if (n == 0 || n > (uint64_t)INT32_MAX - 1)
        return err_setf(err, JB_ERR_FORMAT, "tokenizer.ggml.tokens has %llu entries",
                        (unsigned long long)n);
    rc = gguf_get_arr(f, "tokenizer.ggml.token_type", &types);
    if (rc == JB_ERR_NOTFOUND) {
        types = NULL;
    } else if (rc || types->v.arr.n != n) {
        return err_setf(err, JB_ERR_FORMAT,
                        "tokenizer.ggml.token_type must be an integer array as long as "
                        "tokenizer.ggml.tokens (%llu)",
                        (unsigned long long)n);
    }
    t->n_vocab = (size_t)n;
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        total += (size_t)tokens->v.arr.strs[i].len;
        if (total > UINT32_MAX / 2)
            return err_setf(err, JB_ERR_FORMAT, "tokenizer.ggml.tokens: text over 2 GiB");
    }
    t->text = malloc(total ? total : 1);
    t->text_off = malloc((t->n_vocab + 1) * sizeof *t->text_off);
    t->type = malloc(t->n_vocab);
    t->vocab_cap = pow2_at_least(t->n_vocab * 2);
    t->vocab_slots = calloc(t->vocab_cap, sizeof *t->vocab_slots);
    if (!t->text || !t->text_off || !t->type || !t->vocab_slots)
        return err_setf(err, JB_ERR_NOMEM, "out of memory for the vocabulary");
    size_t off = 0;
    for (size_t i = 0; i < t->n_vocab; i++) {
        struct gguf_str s = tokens->v.arr.strs[i];
        t->text_off[i] = (uint32_t)off;
        if (s.len)
            memcpy(t->text + off, s.ptr, (size_t)s.len);
        off += (size_t)s.len;
        int64_t ty = TOKENIZER_TYPE_NORMAL;
        if (types && gguf_arr_get_int(types, i, &ty))
            return err_setf(err, JB_ERR_FORMAT, "tokenizer.ggml.token_type[%zu] is not an integer",
                            i);
        if (ty == 0) /* llama.cpp's "undefined", which it reads as a plain token */
            ty = TOKENIZER_TYPE_NORMAL;
        if (ty < 1 || ty > 6)
            return err_setf(err, JB_ERR_FORMAT,
                            "tokenizer.ggml.token_type[%zu] is %lld; types are 0 to 6", i,
                            (long long)ty);
        t->type[i] = (uint8_t)ty;
    }
    t->text_off[t->n_vocab] = (uint32_t)off;
    /* index by text; the first of two equal texts wins */
    for (size_t i = 0; i < t->n_vocab; i++) {
        const char *p = t->text + t->text_off[i];
        size_t len = t->text_off[i + 1] - t->text_off[i];
        if (tokenizer_find(t, p, len) >= 0)
            continue;
        size_t h = (size_t)str_hash(t->seed, p, len) & (t->vocab_cap - 1);
        while (t->vocab_slots[h])
            h = (h + 1) & (t->vocab_cap - 1);
        t->vocab_slots[h] = (uint32_t)(i + 1);
    }
    /* decoded bytes of every token */
    struct buf b = {0};
    t->bytes_off = malloc((t->n_vocab + 1) * sizeof *t->bytes_off);
    if (!t->bytes_off)
        return err_setf(err, JB_ERR_NOMEM, "out of memory for the vocabulary");
    for (size_t i = 0; i < t->n_vocab; i++) {
        t->bytes_off[i] = (uint32_t)b.len;
        if (decode_text_of(t, i, &b) || b.len > UINT32_MAX / 2) {
            buf_free(&b);
            return err_setf(err, JB_ERR_NOMEM, "out of memory for the vocabulary");
        }
    }
    t->bytes_off[t->n_vocab] = (uint32_t)b.len;
    t->bytes = b.data ? b.data : calloc(1, 1);
    if (!t->bytes)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    /* single-byte tokens */
    for (int x = 0; x < 256; x++) {
        char u[4];
        size_t k = put_utf8(byte_to_cp(x), u);
        t->byte_id[x] = tokenizer_find(t, u, k);
        if (t->byte_id[x] >= 0 && t->type[t->byte_id[x]] != TOKENIZER_TYPE_NORMAL)
            t->byte_id[x] = -1;
        if (t->byte_id[x] < 0) { /* SentencePiece-style byte token */
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", x);
            int id = tokenizer_find(t, hex, 6);
            if (id >= 0 && t->type[id] == TOKENIZER_TYPE_BYTE)
                t->byte_id[x] = id;
        }
    }
    return 0;
}

static int load_merges(struct tokenizer *t, const struct gguf_file *f, char *err)
{
    const struct gguf_value *merges;
    int rc = gguf_get_arr(f, "tokenizer.ggml.merges", &merges);
    t->merge_cap = 16;
    if (rc == JB_ERR_NOTFOUND) {
        t->merges = calloc(t->merge_cap, sizeof *t->merges);
        return t->merges ? 0 : err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    if (rc || merges->v.arr.elem != GGUF_TYPE_STRING)
        return err_setf(err, JB_ERR_FORMAT, "tokenizer.ggml.merges must be an array of strings");
    uint64_t n = merges->v.arr.n;
    if (n > (uint64_t)INT32_MAX)
        return err_setf(err, JB_ERR_FORMAT, "tokenizer.ggml.merges has %llu entries",
                        (unsigned long long)n);
    t->merge_cap = pow2_at_least((size_t)n * 2);
    t->merges = calloc(t->merge_cap, sizeof *t->merges);
    if (!t->merges)
        return err_setf(err, JB_ERR_NOMEM, "out of memory for the merges");
    struct buf joined = {0};
    for (uint64_t i = 0; i < n; i++) {
        struct gguf_str s = merges->v.arr.strs[i];
        const char *sp = s.len ? memchr(s.ptr + 1, ' ', (size_t)s.len - 1) : NULL;
        if (!sp || sp == s.ptr + s.len - 1) {
            buf_free(&joined);
            return err_setf(err, JB_ERR_FORMAT,
                            "tokenizer.ggml.merges[%llu] is \"%.*s\", not two tokens joined by "
                            "a space",
                            (unsigned long long)i, (int)(s.len < 40 ? s.len : 40), s.ptr);
        }
        size_t ln = (size_t)(sp - s.ptr), rn = (size_t)s.len - ln - 1;
        int left = tokenizer_find(t, s.ptr, ln);
        int right = tokenizer_find(t, sp + 1, rn);
        buf_reset(&joined);
        if (buf_append(&joined, s.ptr, ln) || buf_append(&joined, sp + 1, rn)) {
            buf_free(&joined);
            return err_setf(err, JB_ERR_NOMEM, "out of memory");
        }
        int result = tokenizer_find(t, joined.data, joined.len);
        if (left < 0 || right < 0 || result < 0)
            continue; /* names a token the vocabulary lacks: can never apply */
        uint64_t key = ((uint64_t)(uint32_t)(left + 1) << 32) | (uint32_t)(right + 1);
        size_t h = (size_t)str_hash_u64(t->seed, key) & (t->merge_cap - 1);
        while (t->merges[h].key && t->merges[h].key != key)
            h = (h + 1) & (t->merge_cap - 1);
        if (t->merges[h].key)
            continue; /* a repeated merge keeps its first (best) rank */
        t->merges[h].key = key;
        t->merges[h].rank = (int32_t)i;
        t->merges[h].result = result;
    }
    buf_free(&joined);
    return 0;
}

static int get_id(struct tokenizer *t, const struct gguf_file *f, const char *key, int *out,
                  char *err)
{
    uint64_t v;
    *out = -1;
    int rc = gguf_get_u64(f, key, &v);
    if (rc == JB_ERR_NOTFOUND)
        return 0;
    if (rc)
        return err_setf(err, JB_ERR_FORMAT, "%s must be a non-negative integer", key);
    if (v >= t->n_vocab)
        return err_setf(err, JB_ERR_FORMAT, "%s is %llu, past the vocabulary of %zu tokens", key,
                        (unsigned long long)v, t->n_vocab);
    *out = (int)v;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Special tokens grouped by first byte, each group longest first, so a
 * scan tries few candidates and prefers the longest match. */
static int build_specials(struct tokenizer *t, char *err)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_vocab; i++)
        n += (t->type[i] == TOKENIZER_TYPE_CONTROL || t->type[i] == TOKENIZER_TYPE_USER_DEFINED) &&
             t->text_off[i + 1] > t->text_off[i];
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!t->special)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    size_t count[256] = {0};
    for (size_t i = 0; i < t->n_vocab; i++)
        if ((t->type[i] == TOKENIZER_TYPE_CONTROL || t->type[i] == TOKENIZER_TYPE_USER_DEFINED) &&
            t->text_off[i + 1] > t->text_off[i])
            count[(unsigned char)t->text[t->text_off[i]]]++;
    t->special_start[0] = 0;
    for (int c = 0; c < 256; c++)
        t->special_start[c + 1] = t->special_start[c] + count[c];
    size_t fill[256];
    memcpy(fill, t->special_start, sizeof fill);
    for (size_t i = 0; i < t->n_vocab; i++)
        if ((t->type[i] == TOKENIZER_TYPE_CONTROL || t->type[i] == TOKENIZER_TYPE_USER_DEFINED) &&
            t->text_off[i + 1] > t->text_off[i])
            t->special[fill[(unsigned char)t->text[t->text_off[i]]]++] = (int)i;
    /* each group longest first, then by id: sorted as 64-bit keys (a file
     * may hold many thousands of special tokens that share a first byte) */
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int id = t->special[i];
        uint64_t len = t->text_off[id + 1] - t->text_off[id];
        keys[i] = (UINT32_MAX - len) << 32 | (uint32_t)id;
    }
    for (int c = 0; c < 256; c++)
        qsort(keys + t->special_start[c], t->special_start[c + 1] - t->special_start[c],
              sizeof *keys, cmp_u64);
    for (size_t i = 0; i < n; i++)
        t->special[i] = (int)(uint32_t)keys[i];
    free(keys);
    return 0;
}

/* An optional string: out->ptr NULL when absent; JB_ERR_FORMAT, naming
 * the key, when it holds another type. */
static int opt_str(const struct gguf_file *f, const char *key, struct gguf_str *out, char *err)
{
    out->ptr = NULL;
    out->len = 0;
    int rc = gguf_get_str(f, key, out); /* leaves out as it is unless found */
    if (rc && rc != JB_ERR_NOTFOUND)
        return err_setf(err, JB_ERR_FORMAT, "%s is not a string", key);
    return 0;
}

/* A short name from the file into buf: NULs and control bytes shown as
 * '?', cut to fit, so it can be compared and printed. */
static void name_copy(char *buf, size_t size, struct gguf_str s)
{
    size_t n = s.len < size - 1 ? (size_t)s.len : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    buf[n] = '\0';
}

static void add_eog(struct tokenizer *t, int id)
{
    if (id < 0 || t->n_eog >= (int)(sizeof t->eog / sizeof t->eog[0]))
        return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return;
    t->eog[t->n_eog++] = id;
}

static pcre2_code *compile_pre(enum pre_kind k, char *err)
{
    const char *src = k == PRE_QWEN2 ? RE_QWEN2 : k == PRE_LLAMA3 ? RE_LLAMA3 : RE_GPT2;
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                   &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(code, msg, sizeof msg);
        err_setf(err, JB_ERR_UNSUPPORTED, "pre-tokenizer regex, offset %zu: %s", (size_t)at,
                 (const char *)msg);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: faster when available */
    return re;
}

static enum pre_kind pre_from_name(const char *name, int *known)
{
    *known = 1;
    if (strcmp(name, "qwen2") == 0)
        return PRE_QWEN2;
    if (strcmp(name, "llama-bpe") == 0 || strcmp(name, "llama3") == 0 ||
        strcmp(name, "smaug-bpe") == 0)
        return PRE_LLAMA3;
    if (strcmp(name, "gpt2") == 0 || strcmp(name, "default") == 0 || name[0] == '\0')
        return PRE_GPT2;
    *known = 0;
    return PRE_GPT2;
}

int tokenizer_from_gguf(const struct gguf_file *f, struct tokenizer **out, char *err)
{
    *out = NULL;
    struct gguf_str model;
    int rc = gguf_get_str(f, "tokenizer.ggml.model", &model);
    if (rc == JB_ERR_NOTFOUND)
        return err_setf(err, JB_ERR_FORMAT,
                        "tokenizer.ggml.model is missing: the file has no "
                        "tokenizer");
    if (rc)
        return err_setf(err, JB_ERR_FORMAT, "tokenizer.ggml.model must be a string");
    if (!gguf_str_eq(model, "gpt2"))
        return err_setf(err, JB_ERR_UNSUPPORTED,
                        "tokenizer.ggml.model is \"%.*s\"; joulebench reads byte-level BPE "
                        "vocabularies (\"gpt2\": Qwen, Llama 3 and the like) only",
                        (int)(model.len < 32 ? model.len : 32), model.ptr);
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    t->seed = str_hash_seed(t);
    if ((rc = load_vocab(t, f, err)) || (rc = load_merges(t, f, err)) ||
        (rc = build_specials(t, err)))
        goto fail;
    if ((rc = get_id(t, f, "tokenizer.ggml.bos_token_id", &t->bos, err)) ||
        (rc = get_id(t, f, "tokenizer.ggml.eos_token_id", &t->eos, err)) ||
        (rc = get_id(t, f, "tokenizer.ggml.eot_token_id", &t->eot, err)) ||
        (rc = get_id(t, f, "tokenizer.ggml.eom_token_id", &t->eom, err)) ||
        (rc = get_id(t, f, "tokenizer.ggml.unknown_token_id", &t->unk, err)))
        goto fail;
    char pre[64] = "default";
    struct gguf_str ps;
    if ((rc = opt_str(f, "tokenizer.ggml.pre", &ps, err)))
        goto fail;
    if (ps.ptr) /* a NUL inside is kept, so such a name is no known one */
        name_copy(pre, sizeof pre, ps);
    int known;
    t->pre = pre_from_name(pre, &known);
    if (!known)
        log_warn("tokenizer.ggml.pre \"%s\" is not one joulebench knows; splitting text with "
                 "the GPT-2 rule, so token ids may differ from the model's own tokenizer",
                 pre);
    t->ignore_merges = t->pre == PRE_LLAMA3;
    if (!(t->re = compile_pre(t->pre, err))) {
        rc = JB_ERR_UNSUPPORTED;
        goto fail;
    }
    int add_bos;
    rc = gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos);
    if (rc == 0)
        t->add_bos = add_bos;
    else if (rc == JB_ERR_NOTFOUND)
        t->add_bos = t->pre == PRE_LLAMA3;
    else {
        rc = err_setf(err, JB_ERR_FORMAT, "tokenizer.ggml.add_bos_token is not a bool");
        goto fail;
    }
    rc = 0;
    if (t->bos < 0)
        t->add_bos = 0;
    /* end of generation: the named ids and the end-of-turn texts */
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    add_eog(t, t->eom);
    static const char *const eog_texts[] = {"<|im_end|>",      "<|eot_id|>", "<|endoftext|>",
                                            "<|end_of_text|>", "<|eom_id|>", "<|end|>"};
    for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) {
        int id = tokenizer_find(t, eog_texts[i], strlen(eog_texts[i]));
        if (id >= 0 && t->type[id] == TOKENIZER_TYPE_CONTROL)
            add_eog(t, id);
    }
    /* chat template: from the template text, else from the vocabulary */
    struct gguf_str tmpl;
    t->tmpl = TOKENIZER_TEMPLATE_NONE;
    if ((rc = opt_str(f, "tokenizer.chat_template", &tmpl, err)))
        goto fail;
    if (tmpl.ptr) {
        struct gguf_str probe = tmpl;
        for (uint64_t i = 0; i + 12 <= probe.len && !t->tmpl; i++) {
            if (memcmp(probe.ptr + i, "<|im_start|>", 12) == 0)
                t->tmpl = TOKENIZER_TEMPLATE_CHATML;
            else if (i + 19 <= probe.len && memcmp(probe.ptr + i, "<|start_header_id|>", 19) == 0)
                t->tmpl = TOKENIZER_TEMPLATE_LLAMA3;
        }
    }
    if (!t->tmpl) {
        if (tokenizer_find(t, "<|im_start|>", 12) >= 0 && tokenizer_find(t, "<|im_end|>", 10) >= 0)
            t->tmpl = TOKENIZER_TEMPLATE_CHATML;
        else if (tokenizer_find(t, "<|start_header_id|>", 19) >= 0 &&
                 tokenizer_find(t, "<|eot_id|>", 10) >= 0)
            t->tmpl = TOKENIZER_TEMPLATE_LLAMA3;
    }
    *out = t;
    return 0;
fail:
    tokenizer_free(t);
    return rc;
}

void tokenizer_free(struct tokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->text_off);
    free(t->bytes);
    free(t->bytes_off);
    free(t->type);
    free(t->vocab_slots);
    free(t->merges);
    free(t->special);
    if (t->re)
        pcre2_code_free(t->re);
    free(t);
}

/* ---- accessors ---- */

size_t tokenizer_vocab_size(const struct tokenizer *t)
{
    return t->n_vocab;
}

int tokenizer_token_type(const struct tokenizer *t, int id)
{
    return (id >= 0 && (size_t)id < t->n_vocab) ? t->type[id] : 0;
}

const char *tokenizer_pre_name(const struct tokenizer *t)
{
    return t->pre == PRE_QWEN2 ? "qwen2" : t->pre == PRE_LLAMA3 ? "llama-bpe" : "gpt2";
}

int tokenizer_bos(const struct tokenizer *t)
{
    return t->bos;
}

int tokenizer_eos(const struct tokenizer *t)
{
    return t->eos;
}

int tokenizer_add_bos(const struct tokenizer *t)
{
    return t->add_bos;
}

int tokenizer_is_eog(const struct tokenizer *t, int id)
{
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return 1;
    return 0;
}

enum tokenizer_template tokenizer_template(const struct tokenizer *t)
{
    return t->tmpl;
}

int tokenizer_decode(const struct tokenizer *t, int id, struct buf *out)
{
    if (id < 0 || (size_t)id >= t->n_vocab)
        return JB_ERR_USAGE;
    return buf_append(out, t->bytes + t->bytes_off[id], t->bytes_off[id + 1] - t->bytes_off[id]);
}

/* ---- encoding ---- */

/* The pre-tokenizer over one stretch of text: valid UTF-8 runs go through
 * the regex (whatever it does not match becomes a piece too), invalid
 * bytes come one per piece. */
static int split_with(pcre2_code *re, pcre2_match_data *md, const char *text, size_t len,
                      int (*piece)(void *, const char *, size_t), void *user)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        /* the longest valid run from i */
        size_t j = i;
        unsigned cp;
        size_t k;
        while (j < len && (k = utf8_char(p + j, len - j, &cp)))
            j += k;
        if (j == i) {
            int rc = piece(user, text + i, 1);
            if (rc)
                return rc;
            i++;
            continue;
        }
        size_t pos = i;
        while (pos < j) {
            /* the run [i, j) was checked above: PCRE2 need not check it */
            int m = pcre2_match(re, (PCRE2_SPTR)text, j, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            size_t s, e;
            if (m < 0) {
                s = e = j; /* no match: the rest is one piece */
            } else {
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                s = ov[0], e = ov[1];
            }
            if (s > pos) {
                int rc = piece(user, text + pos, s - pos);
                if (rc)
                    return rc;
            }
            if (e <= s) { /* an empty match: step over one character */
                if (s >= j)
                    break;
                size_t adv = utf8_char(p + s, j - s, &cp);
                int rc = piece(user, text + s, adv);
                if (rc)
                    return rc;
                pos = s + adv;
                continue;
            }
            int rc = piece(user, text + s, e - s);
            if (rc)
                return rc;
            pos = e;
        }
        i = j;
    }
    return 0;
}

int tokenizer_split(const char *pre, const char *text, size_t len,
                    int (*piece)(void *user, const char *p, size_t n), void *user, char *err)
{
    int known;
    pcre2_code *re = compile_pre(pre_from_name(pre ? pre : "", &known), err);
    if (!re)
        return JB_ERR_UNSUPPORTED;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = md ? split_with(re, md, text, len, piece, user) : JB_ERR_NOMEM;
    if (md)
        pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (rc == JB_ERR_NOMEM)
        err_setf(err, rc, "out of memory");
    return rc;
}

struct heap_item {
    int32_t rank;
    int32_t pos;
    int32_t left, right;
};

struct sym {
    int id;
    int prev, next;
};

struct enc {
    const struct tokenizer *t;
    int *ids;
    size_t n, cap;
    struct sym *syms;
    size_t syms_cap;
    struct heap_item *heap;
    size_t heap_n, heap_cap;
    struct buf word; /* vocabulary form of a piece */
    char *err;
};

static int emit(struct enc *e, int id)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        int *p = realloc(e->ids, cap * sizeof *p);
        if (!p)
            return err_setf(e->err, JB_ERR_NOMEM, "out of memory");
        e->ids = p;
        e->cap = cap;
    }
    e->ids[e->n++] = id;
    return 0;
}

static int heap_less(const struct heap_item *a, const struct heap_item *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int heap_push(struct enc *e, struct heap_item it)
{
    if (e->heap_n == e->heap_cap) {
        size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
        struct heap_item *h = realloc(e->heap, cap * sizeof *h);
        if (!h)
            return err_setf(e->err, JB_ERR_NOMEM, "out of memory");
        e->heap = h;
        e->heap_cap = cap;
    }
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&it, &e->heap[parent]))
            break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = it;
    return 0;
}

static struct heap_item heap_pop(struct enc *e)
{
    struct heap_item top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= e->heap_n)
            break;
        if (c + 1 < e->heap_n && heap_less(&e->heap[c + 1], &e->heap[c]))
            c++;
        if (!heap_less(&e->heap[c], &last))
            break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (e->heap_n)
        e->heap[i] = last;
    return top;
}

static int push_pair(struct enc *e, int a)
{
    if (a < 0 || e->syms[a].next < 0)
        return 0;
    int b = e->syms[a].next;
    const struct merge_slot *m = merge_find(e->t, e->syms[a].id, e->syms[b].id);
    if (!m)
        return 0;
    struct heap_item it = {m->rank, a, e->syms[a].id, e->syms[b].id};
    return heap_push(e, it);
}

/* Byte-level BPE of one pre-token: every byte starts as its own token;
 * the adjacent pair with the lowest merge rank (leftmost on ties) merges
 * until no pair has a merge. */
static int bpe_piece(void *user, const char *p, size_t n)
{
    struct enc *e = user;
    const struct tokenizer *t = e->t;
    int rc;
    if (n == 0)
        return 0;
    if (t->ignore_merges) {
        buf_reset(&e->word);
        if (tokenizer_vocab_text(p, n, &e->word))
            return err_setf(e->err, JB_ERR_NOMEM, "out of memory");
        int id = tokenizer_find(t, e->word.data, e->word.len);
        if (id >= 0 && t->type[id] == TOKENIZER_TYPE_NORMAL)
            return emit(e, id);
    }
    if (n > e->syms_cap) {
        struct sym *s = realloc(e->syms, n * sizeof *s);
        if (!s)
            return err_setf(e->err, JB_ERR_NOMEM, "out of memory");
        e->syms = s;
        e->syms_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        int id = t->byte_id[(unsigned char)p[i]];
        if (id < 0)
            id = t->unk;
        if (id < 0)
            return err_setf(e->err, JB_ERR_FORMAT,
                            "byte 0x%02x cannot be encoded: the vocabulary has no token for it "
                            "and no unknown token",
                            (unsigned char)p[i]);
        e->syms[i].id = id;
        e->syms[i].prev = (int)i - 1;
        e->syms[i].next = i + 1 < n ? (int)i + 1 : -1;
    }
    e->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if ((rc = push_pair(e, (int)i)))
            return rc;
    while (e->heap_n) {
        struct heap_item it = heap_pop(e);
        struct sym *a = &e->syms[it.pos];
        if (a->id != it.left || a->next < 0)
            continue; /* stale: this symbol changed since */
        struct sym *b = &e->syms[a->next];
        if (b->id != it.right)
            continue;
        const struct merge_slot *m = merge_find(t, it.left, it.right);
        a->id = m->result;
        b->id = -1;
        a->next = b->next;
        if (b->next >= 0)
            e->syms[b->next].prev = it.pos;
        if ((rc = push_pair(e, a->prev)) || (rc = push_pair(e, it.pos)))
            return rc;
    }
    for (int i = 0; i >= 0; i = e->syms[i].next)
        if ((rc = emit(e, e->syms[i].id)))
            return rc;
    return 0;
}

/* The special token whose text starts at p (longest wins), or -1. */
static int match_special(const struct tokenizer *t, const char *p, size_t n, int parse_special)
{
    unsigned char c = (unsigned char)p[0];
    for (size_t k = t->special_start[c]; k < t->special_start[c + 1]; k++) {
        int id = t->special[k];
        if (t->type[id] == TOKENIZER_TYPE_CONTROL && !parse_special)
            continue;
        size_t len = t->text_off[id + 1] - t->text_off[id];
        if (len <= n && memcmp(p, t->text + t->text_off[id], len) == 0)
            return id;
    }
    return -1;
}

int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, int parse_special,
                     int **ids, size_t *n_ids, char *err)
{
    *ids = NULL;
    *n_ids = 0;
    struct enc e = {.t = t, .err = err};
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    int rc = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len && !rc;) {
        int sp = i < len ? match_special(t, text + i, len - i, parse_special) : -1;
        if (i < len && sp < 0) {
            i++;
            continue;
        }
        if (i > start)
            rc = split_with(t->re, md, text + start, i - start, bpe_piece, &e);
        if (rc || i == len)
            break;
        rc = emit(&e, sp);
        i += t->text_off[sp + 1] - t->text_off[sp];
        start = i;
    }
    pcre2_match_data_free(md);
    free(e.syms);
    free(e.heap);
    buf_free(&e.word);
    if (rc) {
        free(e.ids);
        return rc;
    }
    if (!e.ids && !(e.ids = malloc(sizeof *e.ids)))
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    *ids = e.ids;
    *n_ids = e.n;
    return 0;
}

/* ---- chat templates ---- */

int tokenizer_chat_format(const struct tokenizer *t, const char *system, const char *user,
                          struct buf *out)
{
    int rc = 0;
    switch (t->tmpl) {
    case TOKENIZER_TEMPLATE_CHATML:
        if (system)
            rc = buf_printf(out, "<|im_start|>system\n%s<|im_end|>\n", system);
        if (!rc)
            rc = buf_printf(out, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", user);
        return rc;
    case TOKENIZER_TEMPLATE_LLAMA3:
        if (system)
            rc = buf_printf(out, "<|start_header_id|>system<|end_header_id|>\n\n%s<|eot_id|>",
                            system);
        if (!rc)
            rc = buf_printf(out,
                            "<|start_header_id|>user<|end_header_id|>\n\n%s<|eot_id|>"
                            "<|start_header_id|>assistant<|end_header_id|>\n\n",
                            user);
        return rc;
    default:
        if (system)
            rc = buf_printf(out, "%s\n\n", system);
        return rc ? rc : buf_puts(out, user);
    }
}
