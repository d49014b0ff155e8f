/* tinymodel.c — tiny GGUF models for the engine tests (tinymodel.h). */
#include "tinymodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "infer/quant.h"

#define TM_MERGES 40
#define TM_SPECIALS 2
#define TM_VOCAB (256 + TM_MERGES + TM_SPECIALS)

int tm_vocab_size(void)
{
    return TM_VOCAB;
}

void tm_defaults(struct tm_options *o, const char *arch, enum ggml_type type)
{
    memset(o, 0, sizeof(*o));
    o->arch = arch;
    o->type = type;
    o->embd_type = type;
    o->output_type = type;
    int qwen = strcmp(arch, "qwen2") == 0;
    o->tied = qwen;
    o->biases = qwen;
    o->rope_freqs = !qwen;
    o->n_layers = 2;
    o->dim = 256;
    o->n_heads = 4;
    o->n_kv_heads = 2;
    o->ffn_dim = 512;
    o->rope_base = qwen ? 1000000.0f : 500000.0f;
    o->seed = 1;
}

struct rng {
    uint64_t s;
};
static float rng_uniform(struct rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (float)((r->s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

/* GPT-2's byte alphabet: printable bytes stand for themselves, the others
 * (0-32, 127-160, 173) for code points 256, 257, ... in byte order. */
static void byte_token(int b, char *out)
{
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
        cp = b;
    } else {
        int k = 0;
        for (int i = 0; i < b; i++)
            if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255)))
                k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

struct tensor_spec {
    char name[64];
    enum ggml_type type;
    uint32_t n_dims;
    uint64_t ne[2];
    int kind; /* 0 matrix, 1 norm (around 1), 2 bias (small), 3 rope factors (1..4) */
};

static int add_spec(struct tensor_spec *specs, int *n, const struct tm_options *o, const char *name,
                    enum ggml_type type, uint32_t n_dims, uint64_t ne0, uint64_t ne1, int kind)
{
    if (o->skip_tensor && strcmp(o->skip_tensor, name) == 0)
        return 0;
    struct tensor_spec *t = &specs[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = (o->odd_tensor && strcmp(o->odd_tensor, name) == 0) ? o->odd_type : type;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->kind = kind;
    return 0;
}

int tm_write(const char *path, const struct tm_options *o, char *err)
{
    int head_dim = o->dim / o->n_heads;
    int q_dim = o->n_heads * head_dim, kv_dim = o->n_kv_heads * head_dim;
    int n_specs = 0;
    struct tensor_spec *specs = calloc((size_t)(8 + 16 * o->n_layers), sizeof(*specs));
    if (!specs)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    uint64_t rows = o->embd_rows > 0 ? (uint64_t)o->embd_rows : TM_VOCAB;
    add_spec(specs, &n_specs, o, "token_embd.weight", o->embd_type, 2, (uint64_t)o->dim, rows, 0);
    add_spec(specs, &n_specs, o, "output_norm.weight", GGML_TYPE_F32, 1, (uint64_t)o->dim, 1, 1);
    if (!o->tied)
        add_spec(specs, &n_specs, o, "output.weight", o->output_type, 2, (uint64_t)o->dim, rows, 0);
    if (o->rope_freqs)
        add_spec(specs, &n_specs, o, "rope_freqs.weight", GGML_TYPE_F32, 1, (uint64_t)head_dim / 2,
                 1, 3);
    for (int l = 0; l < o->n_layers; l++) {
        char nm[64];
#define T(s, ty, nd, a, b, k)                                                                      \
    (snprintf(nm, sizeof nm, "blk.%d." s, l), add_spec(specs, &n_specs, o, nm, ty, nd, a, b, k))
        T("attn_norm.weight", GGML_TYPE_F32, 1, (uint64_t)o->dim, 1, 1);
        T("attn_q.weight", o->type, 2, (uint64_t)o->dim, (uint64_t)q_dim, 0);
        T("attn_k.weight", o->type, 2, (uint64_t)o->dim, (uint64_t)kv_dim, 0);
        T("attn_v.weight", o->type, 2, (uint64_t)o->dim, (uint64_t)kv_dim, 0);
        if (o->biases) {
            T("attn_q.bias", GGML_TYPE_F32, 1, (uint64_t)q_dim, 1, 2);
            T("attn_k.bias", GGML_TYPE_F32, 1, (uint64_t)kv_dim, 1, 2);
            T("attn_v.bias", GGML_TYPE_F32, 1, (uint64_t)kv_dim, 1, 2);
        }
        T("attn_output.weight", o->type, 2, (uint64_t)q_dim, (uint64_t)o->dim, 0);
        T("ffn_norm.weight", GGML_TYPE_F32, 1, (uint64_t)o->dim, 1, 1);
        T("ffn_gate.weight", o->type, 2, (uint64_t)o->dim, (uint64_t)o->ffn_dim, 0);
        T("ffn_up.weight", o->type, 2, (uint64_t)o->dim, (uint64_t)o->ffn_dim, 0);
        T("ffn_down.weight", o->type, 2, (uint64_t)o->ffn_dim, (uint64_t)o->dim, 0);
#undef T
    }

    struct gguf_writer *w;
    int rc = gguf_writer_open(&w, path, err);
    if (rc) {
        free(specs);
        return rc;
    }
    char key[96];
#define KEY(s) (snprintf(key, sizeof key, "%s." s, o->arch), key)
    gguf_writer_kv_str(w, "general.architecture", o->arch);
    gguf_writer_kv_str(w, "general.name", "tiny test model");
    gguf_writer_kv_u32(w, KEY("block_count"), (uint32_t)o->n_layers);
    gguf_writer_kv_u32(w, KEY("context_length"), 256);
    gguf_writer_kv_u32(w, KEY("embedding_length"), (uint32_t)o->dim);
    gguf_writer_kv_u32(w, KEY("feed_forward_length"), (uint32_t)o->ffn_dim);
    gguf_writer_kv_u32(w, KEY("attention.head_count"), (uint32_t)o->n_heads);
    gguf_writer_kv_u32(w, KEY("attention.head_count_kv"), (uint32_t)o->n_kv_heads);
    if (o->freq_base_str)
        gguf_writer_kv_str(w, KEY("rope.freq_base"), "1000000");
    else
        gguf_writer_kv_f32(w, KEY("rope.freq_base"), o->rope_base);
    if (o->value_length)
        gguf_writer_kv_u32(w, KEY("attention.value_length"), o->value_length);
    gguf_writer_kv_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
#undef KEY

    /* vocabulary: bytes, merges of letter pairs, control tokens */
    static char tok_store[TM_VOCAB][16];
    static char merge_store[TM_MERGES][16];
    const char *tokens[TM_VOCAB];
    const char *merges[TM_MERGES];
    int32_t types[TM_VOCAB];
    for (int b = 0; b < 256; b++) {
        byte_token(b, tok_store[b]);
        types[b] = 1;
    }
    for (int i = 0; i < TM_MERGES; i++) {
        char a = (char)('a' + i % 26), c = (char)('a' + (i * 7 + 3) % 26);
        snprintf(merge_store[i], sizeof merge_store[i], "%c %c", a, c);
        snprintf(tok_store[256 + i], sizeof tok_store[256 + i], "%c%c", a, c);
        types[256 + i] = 1;
        merges[i] = merge_store[i];
    }
    snprintf(tok_store[256 + TM_MERGES], 16, "<|endoftext|>");
    snprintf(tok_store[256 + TM_MERGES + 1], 16, "<|im_end|>");
    types[256 + TM_MERGES] = 3;
    types[256 + TM_MERGES + 1] = 3;
    for (int i = 0; i < TM_VOCAB; i++)
        tokens[i] = tok_store[i];
    gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_kv_str(w, "tokenizer.ggml.pre",
                       strcmp(o->arch, "llama") == 0 ? "llama-bpe" : "qwen2");
    gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", tokens, TM_VOCAB);
    gguf_writer_kv_arr_i32(w, "tokenizer.ggml.token_type", types, TM_VOCAB);
    gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", merges, TM_MERGES);
    gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", 256 + TM_MERGES);
    gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", 256 + TM_MERGES + 1);

    for (int i = 0; i < n_specs; i++)
        gguf_writer_tensor(w, specs[i].name, specs[i].type, specs[i].n_dims, specs[i].ne);

    struct rng r = {o->seed * 0x9E3779B97F4A7C15ull + 1};
    for (int i = 0; i < n_specs && !rc; i++) {
        const struct tensor_spec *t = &specs[i];
        size_t n_in = (size_t)t->ne[0], n_out = t->n_dims > 1 ? (size_t)t->ne[1] : 1;
        size_t rb = quant_row_bytes(t->type, n_in);
        float *row = malloc(n_in * sizeof(float));
        uint8_t *q = calloc(1, rb ? rb : 1);
        if (rb && q && !quant_traits(t->type)) {
            /* a type joulebench only knows the size of: zero blocks */
            for (size_t k = 0; k < n_out && !rc; k++)
                rc = gguf_writer_data(w, q, rb);
            free(row);
            free(q);
            continue;
        }
        if (!row || !q || !rb) {
            free(row);
            free(q);
            rc = err_setf(err, JB_ERR_USAGE, "tensor '%s': cannot make rows of %zu as %s", t->name,
                          n_in, ggml_type_name(t->type));
            break;
        }
        /* matrices scaled so outputs keep roughly unit size */
        float scale = t->kind == 0 ? 1.7f / sqrtf((float)n_in) : 1.0f;
        if (strcmp(t->name, "token_embd.weight") == 0)
            scale = 1.0f;
        for (size_t k = 0; k < n_out && !rc; k++) {
            for (size_t j = 0; j < n_in; j++) {
                float u = rng_uniform(&r);
                switch (t->kind) {
                case 0:
                    row[j] = u * scale;
                    break;
                case 1:
                    row[j] = 1.0f + 0.2f * u;
                    break;
                case 2:
                    row[j] = 0.3f * u;
                    break;
                default:
                    row[j] = 1.0f + 1.5f * (u + 1.0f);
                    break;
                }
            }
            if ((rc = quant_quantize_row(t->type, row, q, n_in)) == 0)
                rc = gguf_writer_data(w, q, rb);
        }
        free(row);
        free(q);
        if (rc && err && !err[0])
            err_setf(err, rc, "tensor '%s': quantising or writing failed", t->name);
    }
    free(specs);
    if (rc) {
        gguf_writer_abort(w);
        return rc;
    }
    return gguf_writer_finish(w, err);
}
