/*
 * synth.c — synthetic GGUF models: the tensor names, shapes and metadata of
 * real qwen2 / llama models, seeded random weights scaled so activations
 * stay in range, and a byte-level BPE vocabulary trained on a small
 * embedded text, so the tokenizer really works on it.
 */
#include "infer/synth.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/embed.h"
#include "common/err.h"
#include "common/sig.h"
#include "common/fs.h"
#include "common/str.h"
#include "infer/quant.h"
#include "infer/tokenizer.h"

extern const struct embedded_file synth_corpus_files[];

#define SYNTH_VERSION 1 /* bump when the output of a given seed changes */
#define SYNTH_MAX_THREADS 16

static const char *const special_texts[] = {
    "<|endoftext|>",   "<|im_start|>",        "<|im_end|>",        "<|begin_of_text|>",
    "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
};
enum {
    SP_ENDOFTEXT,
    SP_IM_START,
    SP_IM_END,
    SP_BOT,
    SP_EOT_TEXT,
    SP_SHI,
    SP_EHI,
    SP_EOT_ID,
    N_SPECIAL
};

static const char CHATML_TEMPLATE[] =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";
static const char LLAMA3_TEMPLATE[] =
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}";

/* ---- options ---- */

void synth_options_default(struct synth_options *o)
{
    synth_preset("small", o);
}

int synth_preset(const char *name, struct synth_options *o)
{
    memset(o, 0, sizeof *o);
    o->arch = "qwen2";
    o->type = GGML_TYPE_Q8_0;
    o->seed = 42;
    if (strcmp(name, "tiny") == 0) {
        /* ~1.4 M parameters: rows of 256 so every type, K-quants too, fits */
        o->n_layers = 2, o->dim = 256, o->n_heads = 4, o->n_kv_heads = 2, o->ffn_dim = 512;
        o->vocab_size = 1024, o->ctx_len = 512;
    } else if (strcmp(name, "small") == 0) {
        /* ~27 M parameters */
        o->n_layers = 8, o->dim = 512, o->n_heads = 8, o->n_kv_heads = 2, o->ffn_dim = 1536;
        o->vocab_size = 4096, o->ctx_len = 2048;
    } else if (strcmp(name, "0.5b") == 0) {
        /* the shape of Qwen2.5-0.5B: 494 M parameters */
        o->n_layers = 24, o->dim = 896, o->n_heads = 14, o->n_kv_heads = 2, o->ffn_dim = 4864;
        o->vocab_size = 151936, o->ctx_len = 32768;
    } else {
        return JB_ERR_USAGE;
    }
    return 0;
}

static int is_llama(const struct synth_options *o)
{
    return o->arch && strcmp(o->arch, "llama") == 0;
}

uint64_t synth_param_count(const struct synth_options *o)
{
    uint64_t dim = (uint64_t)o->dim, hd = o->n_heads ? dim / (uint64_t)o->n_heads : 0;
    uint64_t kv = hd * (uint64_t)o->n_kv_heads, ffn = (uint64_t)o->ffn_dim;
    uint64_t vocab = (uint64_t)o->vocab_size;
    uint64_t layer = 2 * dim + dim * dim + 2 * dim * kv + dim * dim + 3 * dim * ffn;
    if (!is_llama(o))
        layer += dim + 2 * kv; /* q, k, v biases */
    uint64_t n = vocab * dim + (uint64_t)o->n_layers * layer + dim;
    if (is_llama(o))
        n += vocab * dim; /* output.weight; qwen2 ties it to the embedding */
    return n;
}

int synth_check(const struct synth_options *o, char *err)
{
    if (!o->arch || (strcmp(o->arch, "qwen2") != 0 && strcmp(o->arch, "llama") != 0))
        return err_setf(err, JB_ERR_USAGE, "architecture '%s': use qwen2 or llama",
                        o->arch ? o->arch : "");
    if (!quant_traits(o->type) || o->type == GGML_TYPE_Q8_K)
        return err_setf(err, JB_ERR_USAGE,
                        "type %s: use F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K or Q6_K",
                        ggml_type_name(o->type));
    if (o->n_layers < 1 || o->n_layers > 256)
        return err_setf(err, JB_ERR_USAGE, "--layers must be 1 to 256, not %d", o->n_layers);
    if (o->dim < 32 || o->dim > 65536 || o->n_heads < 1 || o->dim % o->n_heads)
        return err_setf(err, JB_ERR_USAGE,
                        "--dim %d must be 32 to 65536 and a multiple of --heads %d", o->dim,
                        o->n_heads);
    if ((o->dim / o->n_heads) % 2)
        return err_setf(err, JB_ERR_USAGE,
                        "--dim / --heads (head size %d) must be even: RoPE rotates pairs",
                        o->dim / o->n_heads);
    if (o->n_kv_heads < 1 || o->n_heads % o->n_kv_heads)
        return err_setf(err, JB_ERR_USAGE, "--kv-heads %d must divide --heads %d", o->n_kv_heads,
                        o->n_heads);
    if (o->ffn_dim < 32 || o->ffn_dim > 262144)
        return err_setf(err, JB_ERR_USAGE, "--ffn must be 32 to 262144, not %d", o->ffn_dim);
    if (quant_traits(o->type)->block_elems > 1 && (o->dim % 32 || o->ffn_dim % 32))
        return err_setf(err, JB_ERR_USAGE, "--dim %d and --ffn %d must be multiples of 32 for %s",
                        o->dim, o->ffn_dim, ggml_type_name(o->type));
    if (o->vocab_size < 256 + N_SPECIAL + 1 || o->vocab_size > 1000000)
        return err_setf(err, JB_ERR_USAGE, "--vocab must be %d to 1000000, not %d",
                        256 + N_SPECIAL + 1, o->vocab_size);
    if (o->ctx_len < 16 || o->ctx_len > 1048576)
        return err_setf(err, JB_ERR_USAGE, "--ctx must be 16 to 1048576, not %d", o->ctx_len);
    return 0;
}

/* ---- vocabulary: BPE trained on the embedded text ---- */

struct strset { /* raw byte strings -> index */
    char **s;
    size_t *len;
    size_t n, cap;
    uint32_t *slots;
    size_t slot_cap;
};

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

static long strset_find(const struct strset *set, const char *p, size_t n)
{
    if (!set->slot_cap)
        return -1;
    size_t h = (size_t)fnv(p, n) & (set->slot_cap - 1);
    for (; set->slots[h]; h = (h + 1) & (set->slot_cap - 1)) {
        size_t i = set->slots[h] - 1;
        if (set->len[i] == n && memcmp(set->s[i], p, n) == 0)
            return (long)i;
    }
    return -1;
}

/* Adds a string (copied); returns its index, or -1 when out of memory. */
static long strset_add(struct strset *set, const char *p, size_t n)
{
    if (set->n + 1 > set->slot_cap / 2) {
        size_t cap = set->slot_cap ? set->slot_cap * 2 : 1024;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < set->n; i++) {
            size_t h = (size_t)fnv(set->s[i], set->len[i]) & (cap - 1);
            while (slots[h])
                h = (h + 1) & (cap - 1);
            slots[h] = (uint32_t)(i + 1);
        }
        free(set->slots);
        set->slots = slots;
        set->slot_cap = cap;
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 1024;
        char **s = realloc(set->s, cap * sizeof *s);
        if (!s)
            return -1;
        set->s = s;
        size_t *len = realloc(set->len, cap * sizeof *len);
        if (!len)
            return -1;
        set->len = len;
        set->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, p, n);
    copy[n] = '\0';
    set->s[set->n] = copy;
    set->len[set->n] = n;
    size_t h = (size_t)fnv(p, n) & (set->slot_cap - 1);
    while (set->slots[h])
        h = (h + 1) & (set->slot_cap - 1);
    set->slots[h] = (uint32_t)(set->n + 1);
    return (long)set->n++;
}

static void strset_free(struct strset *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->s[i]);
    free(set->s);
    free(set->len);
    free(set->slots);
    memset(set, 0, sizeof *set);
}

struct word {
    int *sym;
    size_t n;
    uint64_t count;
};

struct trainer {
    struct strset words; /* distinct pre-tokens */
    struct word *w;      /* parallel to words */
    size_t w_cap;
};

static int add_word(void *user, const char *p, size_t n)
{
    struct trainer *tr = user;
    long i = strset_find(&tr->words, p, n);
    if (i >= 0) {
        tr->w[i].count++;
        return 0;
    }
    i = strset_add(&tr->words, p, n);
    if (i < 0)
        return JB_ERR_NOMEM;
    if ((size_t)i >= tr->w_cap) {
        size_t cap = tr->w_cap ? tr->w_cap * 2 : 1024;
        struct word *w = realloc(tr->w, cap * sizeof *w);
        if (!w)
            return JB_ERR_NOMEM;
        tr->w = w;
        tr->w_cap = cap;
    }
    struct word *w = &tr->w[i];
    w->sym = malloc(n * sizeof *w->sym);
    if (!w->sym)
        return JB_ERR_NOMEM;
    for (size_t k = 0; k < n; k++)
        w->sym[k] = (unsigned char)p[k];
    w->n = n;
    w->count = 1;
    return 0;
}

struct pair_slot {
    uint64_t key; /* (a + 1) << 32 | (b + 1) */
    uint64_t count;
};

struct vocab {
    struct strset tokens; /* raw bytes of each id */
    int (*merges)[2];     /* pairs of ids, in rank order */
    size_t n_merges;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    x ^= x >> 33;
    return x;
}

/* Greedy BPE training: repeatedly merge the most frequent adjacent pair
 * (ties to the smaller pair of ids, so the result is the same everywhere)
 * while it occurs at least twice and merges are wanted. */
static int train(struct vocab *v, struct trainer *tr, size_t max_merges, char *err)
{
    size_t n_pairs_cap = 1;
    for (size_t i = 0; i < tr->words.n; i++)
        n_pairs_cap += tr->w[i].n;
    size_t cap = 16;
    while (cap < n_pairs_cap * 2)
        cap *= 2;
    struct pair_slot *slots = malloc(cap * sizeof *slots);
    v->merges = malloc((max_merges ? max_merges : 1) * sizeof *v->merges);
    if (!slots || !v->merges) {
        free(slots);
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    struct buf joined = {0};
    int rc = 0;
    while (v->n_merges < max_merges) {
        memset(slots, 0, cap * sizeof *slots);
        uint64_t best_key = 0, best_count = 0;
        for (size_t i = 0; i < tr->words.n; i++) {
            const struct word *w = &tr->w[i];
            for (size_t k = 0; k + 1 < w->n; k++) {
                uint64_t key = ((uint64_t)(w->sym[k] + 1) << 32) | (uint64_t)(w->sym[k + 1] + 1);
                size_t h = (size_t)mix(key) & (cap - 1);
                while (slots[h].key && slots[h].key != key)
                    h = (h + 1) & (cap - 1);
                slots[h].key = key;
                slots[h].count += w->count;
                uint64_t c = slots[h].count;
                if (c > best_count || (c == best_count && key < best_key))
                    best_count = c, best_key = key;
            }
        }
        if (best_count < 2)
            break;
        int a = (int)(best_key >> 32) - 1, b = (int)(best_key & 0xffffffffu) - 1;
        buf_reset(&joined);
        if (buf_append(&joined, v->tokens.s[a], v->tokens.len[a]) ||
            buf_append(&joined, v->tokens.s[b], v->tokens.len[b])) {
            rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
            break;
        }
        long id = strset_find(&v->tokens, joined.data, joined.len);
        if (id < 0 && (id = strset_add(&v->tokens, joined.data, joined.len)) < 0) {
            rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
            break;
        }
        v->merges[v->n_merges][0] = a;
        v->merges[v->n_merges][1] = b;
        v->n_merges++;
        for (size_t i = 0; i < tr->words.n; i++) {
            struct word *w = &tr->w[i];
            size_t o = 0;
            for (size_t k = 0; k < w->n; k++) {
                if (k + 1 < w->n && w->sym[k] == a && w->sym[k + 1] == b) {
                    w->sym[o++] = (int)id;
                    k++;
                } else {
                    w->sym[o++] = w->sym[k];
                }
            }
            w->n = o;
        }
    }
    buf_free(&joined);
    free(slots);
    return rc;
}

/* Filler words for vocabularies larger than the training text supports:
 * pronounceable, distinct from every learned token, and never built by a
 * merge (a sampled one still decodes to readable text). */
static int add_fillers(struct vocab *v, size_t want, char *err)
{
    static const char cons[] = "bcdfghjklmnprstvwz";
    static const char vow[] = "aeiou";
    for (uint64_t k = 0; v->tokens.n < want; k++) {
        char w[32];
        size_t n = 0;
        if (k % 2 == 0)
            w[n++] = ' ';
        uint64_t x = k / 2 + 90; /* at least two syllables */
        while (x && n < sizeof w - 2) {
            w[n++] = cons[x % 18];
            x /= 18;
            w[n++] = vow[x % 5];
            x /= 5;
        }
        if (strset_find(&v->tokens, w, n) >= 0)
            continue;
        if (strset_add(&v->tokens, w, n) < 0)
            return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int build_vocab(const struct synth_options *o, struct vocab *v, char *err)
{
    memset(v, 0, sizeof *v);
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        if (strset_add(&v->tokens, &ch, 1) < 0)
            return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    const struct embedded_file *corpus = embed_find(synth_corpus_files, "synth_corpus.txt");
    if (!corpus)
        return err_setf(err, JB_ERR_STATE, "the synthetic training text is not built in");
    struct trainer tr = {0};
    int rc = tokenizer_split(is_llama(o) ? "llama-bpe" : "qwen2", (const char *)corpus->data,
                             corpus->size, add_word, &tr, err);
    size_t room = (size_t)o->vocab_size - N_SPECIAL;
    if (!rc)
        rc = train(v, &tr, room - 256, err);
    for (size_t i = 0; i < tr.words.n; i++)
        free(tr.w[i].sym);
    free(tr.w);
    strset_free(&tr.words);
    if (!rc)
        rc = add_fillers(v, room, err);
    return rc;
}

static void vocab_free(struct vocab *v)
{
    strset_free(&v->tokens);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

/* Writes the tokenizer.* keys. */
static int write_tokenizer(struct gguf_writer *w, const struct synth_options *o,
                           const struct vocab *v, char *err)
{
    size_t n = (size_t)o->vocab_size;
    char **texts = calloc(n, sizeof *texts);
    int32_t *types = malloc(n * sizeof *types);
    char **merges = calloc(v->n_merges ? v->n_merges : 1, sizeof *merges);
    int rc = 0;
    if (!texts || !types || !merges) {
        rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    struct buf b = {0};
    for (size_t i = 0; i < v->tokens.n; i++) {
        buf_reset(&b);
        if (tokenizer_vocab_text(v->tokens.s[i], v->tokens.len[i], &b) ||
            !(texts[i] = str_dup(buf_str(&b)))) {
            rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
            break;
        }
        types[i] = TOKENIZER_TYPE_NORMAL;
    }
    for (size_t i = 0; !rc && i < N_SPECIAL; i++) {
        size_t id = v->tokens.n + i;
        if (!(texts[id] = str_dup(special_texts[i])))
            rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
        types[id] = TOKENIZER_TYPE_CONTROL;
    }
    for (size_t i = 0; !rc && i < v->n_merges; i++) {
        int a = v->merges[i][0], c = v->merges[i][1];
        buf_reset(&b);
        if (tokenizer_vocab_text(v->tokens.s[a], v->tokens.len[a], &b) || buf_putc(&b, ' ') ||
            tokenizer_vocab_text(v->tokens.s[c], v->tokens.len[c], &b) ||
            !(merges[i] = str_dup(buf_str(&b))))
            rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    buf_free(&b);
    if (rc)
        goto out;
    uint32_t first_special = (uint32_t)v->tokens.n;
    gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_kv_str(w, "tokenizer.ggml.pre", is_llama(o) ? "llama-bpe" : "qwen2");
    gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts, n);
    gguf_writer_kv_arr_i32(w, "tokenizer.ggml.token_type", types, n);
    gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, v->n_merges);
    if (is_llama(o)) {
        gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", first_special + SP_BOT);
        gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", first_special + SP_EOT_ID);
        gguf_writer_kv_u32(w, "tokenizer.ggml.eot_token_id", first_special + SP_EOT_ID);
        gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", 1);
        gguf_writer_kv_str(w, "tokenizer.chat_template", LLAMA3_TEMPLATE);
    } else {
        gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", first_special + SP_ENDOFTEXT);
        gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", first_special + SP_IM_END);
        gguf_writer_kv_u32(w, "tokenizer.ggml.padding_token_id", first_special + SP_ENDOFTEXT);
        gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", 0);
        gguf_writer_kv_str(w, "tokenizer.chat_template", CHATML_TEMPLATE);
    }
out:
    if (texts)
        for (size_t i = 0; i < n; i++)
            free(texts[i]);
    if (merges)
        for (size_t i = 0; i < v->n_merges; i++)
            free(merges[i]);
    free(texts);
    free(types);
    free(merges);
    return rc;
}

/* ---- tensors ---- */

enum fill { FILL_UNIFORM, FILL_NORM };

struct plan {
    char name[64];
    enum ggml_type type;
    uint32_t n_dims;
    uint64_t ne[2];
    enum fill fill;
    float scale; /* standard deviation of the weights */
};

/* A row type the tensor's row length allows: K-quants need rows of 256
 * and fall back as llama.cpp's quantizer does (Q4_K -> Q5_0, Q6_K ->
 * Q8_0). */
static enum ggml_type row_type(enum ggml_type t, uint64_t row)
{
    if (row % 256 == 0)
        return t;
    if (t == GGML_TYPE_Q4_K)
        return GGML_TYPE_Q5_0;
    if (t == GGML_TYPE_Q6_K)
        return GGML_TYPE_Q8_0;
    return t;
}

/* llama.cpp's choice of layers that get more bits in a Q4_K_M file. */
static int more_bits(int layer, int n_layers)
{
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

enum ggml_type synth_tensor_type(const struct synth_options *o, const char *name, uint64_t row_len)
{
    enum ggml_type t = o->type;
    if (o->q4_k_m && o->type == GGML_TYPE_Q4_K) {
        int layer;
        char rest[32];
        if (strcmp(name, is_llama(o) ? "output.weight" : "token_embd.weight") == 0)
            t = GGML_TYPE_Q6_K;
        else if (sscanf(name, "blk.%d.%31s", &layer, rest) == 2 &&
                 (strcmp(rest, "attn_v.weight") == 0 || strcmp(rest, "ffn_down.weight") == 0) &&
                 more_bits(layer, o->n_layers))
            t = GGML_TYPE_Q6_K;
    }
    return row_type(t, row_len);
}

const char *synth_type_name(const struct synth_options *o)
{
    return o->q4_k_m && o->type == GGML_TYPE_Q4_K ? "Q4_K_M" : ggml_type_name(o->type);
}

static void plan_add(struct plan *p, size_t *n, const char *name, const struct synth_options *o,
                     uint32_t n_dims, uint64_t ne0, uint64_t ne1, enum fill fill, float scale)
{
    struct plan *x = &p[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->type = fill == FILL_NORM ? GGML_TYPE_F32 : synth_tensor_type(o, name, ne0);
    x->n_dims = n_dims;
    x->ne[0] = ne0;
    x->ne[1] = ne1;
    x->fill = fill;
    x->scale = scale;
}

/* Weight scales keep activations near unit size: a matrix reading n
 * inputs has standard deviation 1/sqrt(n); matrices writing into the
 * residual stream are further divided by sqrt(2 * layers) so the stream
 * grows slowly; the output projection gives logits a spread of about 2.5
 * so that sampling sees varied, finite scores. Norm weights are near 1. */
static size_t make_plan(const struct synth_options *o, struct plan *p)
{
    size_t n = 0;
    uint64_t dim = (uint64_t)o->dim, hd = dim / (uint64_t)o->n_heads;
    uint64_t kv = hd * (uint64_t)o->n_kv_heads, ffn = (uint64_t)o->ffn_dim;
    uint64_t vocab = (uint64_t)o->vocab_size;
    float in_dim = 1.0f / sqrtf((float)dim), res = 1.0f / sqrtf(2.0f * (float)o->n_layers);
    float logit = 2.5f / sqrtf((float)dim);
    int llama = is_llama(o);
    /* tied (qwen2): the embedding is also the output projection */
    plan_add(p, &n, "token_embd.weight", o, 2, dim, vocab, FILL_UNIFORM, llama ? 1.0f : logit);
    for (int l = 0; l < o->n_layers; l++) {
        char name[64];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d." s, l), name)
        plan_add(p, &n, NAME("attn_norm.weight"), o, 1, dim, 1, FILL_NORM, 0);
        plan_add(p, &n, NAME("attn_q.weight"), o, 2, dim, dim, FILL_UNIFORM, in_dim);
        if (!llama)
            plan_add(p, &n, NAME("attn_q.bias"), o, 1, dim, 1, FILL_UNIFORM, 0.1f);
        plan_add(p, &n, NAME("attn_k.weight"), o, 2, dim, kv, FILL_UNIFORM, in_dim);
        if (!llama)
            plan_add(p, &n, NAME("attn_k.bias"), o, 1, kv, 1, FILL_UNIFORM, 0.1f);
        plan_add(p, &n, NAME("attn_v.weight"), o, 2, dim, kv, FILL_UNIFORM, in_dim);
        if (!llama)
            plan_add(p, &n, NAME("attn_v.bias"), o, 1, kv, 1, FILL_UNIFORM, 0.1f);
        plan_add(p, &n, NAME("attn_output.weight"), o, 2, dim, dim, FILL_UNIFORM, in_dim * res);
        plan_add(p, &n, NAME("ffn_norm.weight"), o, 1, dim, 1, FILL_NORM, 0);
        plan_add(p, &n, NAME("ffn_gate.weight"), o, 2, dim, ffn, FILL_UNIFORM, in_dim);
        plan_add(p, &n, NAME("ffn_up.weight"), o, 2, dim, ffn, FILL_UNIFORM, in_dim);
        plan_add(p, &n, NAME("ffn_down.weight"), o, 2, ffn, dim, FILL_UNIFORM,
                 res / sqrtf((float)ffn));
#undef NAME
    }
    plan_add(p, &n, "output_norm.weight", o, 1, dim, 1, FILL_NORM, 0);
    if (llama)
        plan_add(p, &n, "output.weight", o, 2, dim, vocab, FILL_UNIFORM, logit);
    /* biases are F32 whatever the matrix type */
    for (size_t i = 0; i < n; i++)
        if (p[i].n_dims == 1 && p[i].fill == FILL_UNIFORM)
            p[i].type = GGML_TYPE_F32;
    return n;
}

/* xorshift64*, one stream per row seeded from the seed, the tensor's name
 * and the row, so values depend neither on the other tensors nor on how
 * rows are shared out among threads. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

struct job {
    const struct plan *p;
    uint64_t tensor_seed;
    uint64_t row0;         /* first row of the chunk */
    size_t r_begin, r_end; /* rows of the chunk this job fills */
    size_t row_bytes;
    float *rowf;  /* one row of scratch */
    uint8_t *out; /* the chunk's output */
    int rc;
};

static void *fill_rows(void *arg)
{
    struct job *j = arg;
    const struct plan *p = j->p;
    size_t row = (size_t)p->ne[0];
    /* uniform in [-a, a] has standard deviation a/sqrt(3) */
    float a = p->scale * 1.7320508f;
    for (size_t r = j->r_begin; r < j->r_end; r++) {
        uint64_t s = mix(j->tensor_seed + j->row0 + r);
        if (!s)
            s = 1;
        for (size_t i = 0; i < row; i++) {
            float u = (float)(rng_next(&s) >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
            j->rowf[i] = p->fill == FILL_NORM ? 1.0f + 0.05f * u : a * u;
        }
        int rc = quant_quantize_row(p->type, j->rowf, j->out + r * j->row_bytes, row);
        if (rc) {
            j->rc = rc;
            break;
        }
    }
    return NULL;
}

struct pool {
    int n_threads;
    float *rowf; /* n_threads rows */
    struct job jobs[SYNTH_MAX_THREADS];
    pthread_t tids[SYNTH_MAX_THREADS];
};

/* Fills and quantizes a tensor chunk by chunk, the rows of a chunk shared
 * among the threads, and streams each chunk to the file in order. */
static int write_tensor(struct gguf_writer *w, const struct plan *p, uint64_t seed,
                        struct pool *pool, uint8_t *out, size_t out_cap)
{
    uint64_t tseed = mix(seed ^ mix(fnv(p->name, strlen(p->name))));
    size_t row = (size_t)p->ne[0];
    size_t row_bytes = quant_row_bytes(p->type, row);
    size_t rows_per_chunk = out_cap / row_bytes;
    if (rows_per_chunk == 0)
        rows_per_chunk = 1;
    for (uint64_t r0 = 0; r0 < p->ne[1]; r0 += rows_per_chunk) {
        size_t nr = (size_t)(p->ne[1] - r0 < rows_per_chunk ? p->ne[1] - r0 : rows_per_chunk);
        int nt = pool->n_threads;
        if ((size_t)nt > nr)
            nt = (int)nr;
        int started = 0;
        for (int t = 0; t < nt; t++) {
            struct job *j = &pool->jobs[t];
            *j = (struct job){p,
                              tseed,
                              r0,
                              nr * (size_t)t / (size_t)nt,
                              nr * (size_t)(t + 1) / (size_t)nt,
                              row_bytes,
                              pool->rowf + (size_t)t * row,
                              out,
                              0};
            if (t == 0 || pthread_create(&pool->tids[t], NULL, fill_rows, j) != 0)
                continue; /* the calling thread does job 0 and any not started */
            started |= 1 << t;
        }
        fill_rows(&pool->jobs[0]);
        for (int t = 1; t < nt; t++) {
            if (started & (1 << t))
                pthread_join(pool->tids[t], NULL);
            else
                fill_rows(&pool->jobs[t]);
        }
        for (int t = 0; t < nt; t++)
            if (pool->jobs[t].rc)
                return pool->jobs[t].rc;
        int rc = gguf_writer_data(w, out, nr * row_bytes);
        if (rc)
            return rc;
    }
    return 0;
}

static uint32_t file_type_of(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_F32:
        return 0;
    case GGML_TYPE_F16:
        return 1;
    case GGML_TYPE_Q4_0:
        return 2;
    case GGML_TYPE_Q8_0:
        return 7;
    case GGML_TYPE_Q5_0:
        return 8;
    case GGML_TYPE_Q4_K:
        return 14; /* Q4_K_S: one type, no mix (the Q4_K_M mix is 15) */
    case GGML_TYPE_Q6_K:
        return 18;
    case GGML_TYPE_BF16:
        return 32;
    default:
        return 0;
    }
}

int synth_write(const char *path, const struct synth_options *o, char *err)
{
    int rc = synth_check(o, err);
    if (rc)
        return rc;
    int llama = is_llama(o);
    const char *arch = llama ? "llama" : "qwen2";
    struct vocab v;
    if ((rc = build_vocab(o, &v, err))) {
        vocab_free(&v);
        return rc;
    }
    size_t max_tensors = 16 + (size_t)o->n_layers * 16;
    struct plan *plan = malloc(max_tensors * sizeof *plan);
    size_t max_row = (size_t)(o->dim > o->ffn_dim ? o->dim : o->ffn_dim);
    size_t out_cap = (size_t)4 << 20;
    struct pool pool;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pool.n_threads = cpus < 1 ? 1 : cpus > SYNTH_MAX_THREADS ? SYNTH_MAX_THREADS : (int)cpus;
    pool.rowf = malloc((size_t)pool.n_threads * max_row * sizeof *pool.rowf);
    uint8_t *out = malloc(out_cap > max_row * 4 ? out_cap : max_row * 4);
    struct gguf_writer *w = NULL;
    if (!plan || !pool.rowf || !out) {
        rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t n_plan = make_plan(o, plan);
    if ((rc = gguf_writer_open(&w, path, err)))
        goto out;
    char key[96], name[128];
#define KEY(s) (snprintf(key, sizeof key, "%s." s, arch), key)
    gguf_writer_kv_str(w, "general.architecture", arch);
    snprintf(name, sizeof name, "synthetic %s %dL-%dd %s (seed %llu)", arch, o->n_layers, o->dim,
             synth_type_name(o), (unsigned long long)o->seed);
    gguf_writer_kv_str(w, "general.name", name);
    gguf_writer_kv_bool(w, "general.joulebench.synthetic", 1);
    gguf_writer_kv_u64(w, "general.joulebench.seed", o->seed);
    gguf_writer_kv_u32(w, "general.joulebench.synth_version", SYNTH_VERSION);
    gguf_writer_kv_u32(w, "general.file_type",
                       o->q4_k_m && o->type == GGML_TYPE_Q4_K ? 15 : file_type_of(o->type));
    if (quant_traits(o->type)->block_elems > 1)
        gguf_writer_kv_u32(w, "general.quantization_version", 2);
    gguf_writer_kv_u32(w, KEY("block_count"), (uint32_t)o->n_layers);
    gguf_writer_kv_u32(w, KEY("context_length"), (uint32_t)o->ctx_len);
    gguf_writer_kv_u32(w, KEY("embedding_length"), (uint32_t)o->dim);
    gguf_writer_kv_u32(w, KEY("feed_forward_length"), (uint32_t)o->ffn_dim);
    gguf_writer_kv_u32(w, KEY("attention.head_count"), (uint32_t)o->n_heads);
    gguf_writer_kv_u32(w, KEY("attention.head_count_kv"), (uint32_t)o->n_kv_heads);
    gguf_writer_kv_f32(w, KEY("rope.freq_base"), llama ? 500000.0f : 1000000.0f);
    gguf_writer_kv_f32(w, KEY("attention.layer_norm_rms_epsilon"), llama ? 1e-5f : 1e-6f);
    if (llama) {
        gguf_writer_kv_u32(w, KEY("rope.dimension_count"), (uint32_t)(o->dim / o->n_heads));
        gguf_writer_kv_u32(w, KEY("vocab_size"), (uint32_t)o->vocab_size);
    }
#undef KEY
    if ((rc = write_tokenizer(w, o, &v, err)))
        goto out;
    for (size_t i = 0; i < n_plan; i++)
        gguf_writer_tensor(w, plan[i].name, plan[i].type, plan[i].n_dims, plan[i].ne);
    for (size_t i = 0; i < n_plan && !rc; i++) {
        if (sig_stop) { /* Ctrl-C: the temporary file goes with the writer */
            rc = err_setf(err, JB_ERR_INTERRUPTED, "interrupted: %s was not written", path);
            goto out;
        }
        rc = write_tensor(w, &plan[i], o->seed, &pool, out, out_cap);
    }
    if (rc == JB_ERR_UNSUPPORTED || rc == JB_ERR_USAGE) {
        err_setf(err, rc, "%s: cannot quantize to %s", path, ggml_type_name(o->type));
        goto out;
    }
    /* finish also reports any write error (they are sticky) */
    rc = gguf_writer_finish(w, err);
    w = NULL;
out:
    if (w)
        gguf_writer_abort(w);
    vocab_free(&v);
    free(plan);
    free(pool.rowf);
    free(out);
    return rc;
}

int synth_default_model(char *path, size_t size, char *err)
{
    char dir[FS_PATH_MAX];
    const char *xdg = fs_env_or("XDG_CACHE_HOME", NULL);
    const char *home = fs_env_or("HOME", NULL);
    if (xdg) {
        if (fs_path_join(dir, sizeof dir, xdg, "joulebench"))
            return err_setf(err, JB_ERR_USAGE, "XDG_CACHE_HOME is too long");
    } else if (home) {
        if (fs_path_join(dir, sizeof dir, home, ".cache/joulebench"))
            return err_setf(err, JB_ERR_USAGE, "HOME is too long");
    } else {
        return err_setf(err, JB_ERR_NOTFOUND,
                        "no cache folder for the synthetic model: set XDG_CACHE_HOME or HOME");
    }
    struct synth_options o;
    synth_options_default(&o);
    char file[96];
    snprintf(file, sizeof file, "synthetic-small-%s-%s-v%d.gguf", o.arch, ggml_type_name(o.type),
             SYNTH_VERSION);
    if (fs_path_join(path, size, dir, file))
        return err_setf(err, JB_ERR_USAGE, "cache path too long");
    if (fs_exists(path))
        return 0;
    int rc = fs_mkdir_p(dir, err);
    if (rc)
        return rc;
    /* the writer renames a complete temporary file into place, so a
     * concurrent or interrupted writer never leaves a partial model */
    return synth_write(path, &o, err);
}
