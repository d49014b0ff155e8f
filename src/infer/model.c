/*
 * model.c — llama and qwen2 models from GGUF, and their forward pass
 * (infer.h). Weights stay in the file mapping in their stored types; the
 * kernels (kernels.h) read them block by block. Small vectors (norms,
 * biases, RoPE frequency factors) are converted to F32 at load.
 *
 * One forward step takes up to `prefill_batch` tokens at consecutive
 * positions: each weight matrix is read once per step for all of them,
 * which is what makes prefill cheaper per token than decode.
 */
#include <math.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/str.h"
#include "infer/gguf.h"
#include "infer/infer.h"
#include "infer/kernels.h"
#include "infer/pool.h"
#include "infer/quant.h"

#define PREFILL_BATCH 32
#define DEFAULT_CTX 4096
/* multiply-adds below which attention runs on the calling thread alone:
 * waking sleeping workers costs tens of microseconds, spinning ones about
 * one */
#define ATTN_INLINE_WORK_SLEEP (1 << 18)
#define ATTN_INLINE_WORK_SPIN (1 << 13)
/* fewest rows in one claim of a matrix product's rows (see claim_rows) */
#define MM_MIN_ROWS 16
/* most weight bytes in one claim */
#define MM_CHUNK_MAX_BYTES (1u << 20)

/* A weight matrix used in place: n_out rows of n_in elements; or, where
 * the kernels have a packed layout for its type, read from a copy made at
 * load (packed, owned, packed_bytes of it), the file's pages of it given
 * back. */
struct wmat {
    enum ggml_type type;
    const uint8_t *data;
    int n_in, n_out;
    size_t row_bytes;
    uint8_t *packed;
    size_t packed_bytes;
};

struct layer {
    float *attn_norm;                 /* (dim) */
    struct wmat wq, wk, wv, wo;       /* (dim -> q_dim), (dim -> kv_dim) x2, (q_dim -> dim) */
    float *bq, *bk, *bv;              /* (q_dim), (kv_dim), (kv_dim); NULL without biases */
    float *ffn_norm;                  /* (dim) */
    struct wmat w_gate, w_up, w_down; /* (dim -> ffn) x2, (ffn -> dim) */
};

struct infer_model {
    struct infer_model_info info;
    struct fs_map map;
    struct gguf_file gguf;
    int gguf_ok;
    struct tokenizer *tok;
    struct pool *pool;

    int dim, n_layers, n_heads, n_kv_heads, head_dim, q_dim, kv_dim, ffn_dim, vocab;
    int rope_dim, rope_neox;
    float norm_eps;
    float *rope_inv_freq; /* (rope_dim / 2): base^(-2i/rope_dim) / rope_freqs[i] */
    struct wmat tok_embd; /* (dim -> vocab) rows are embeddings */
    struct wmat output;   /* (dim -> vocab); tok_embd when tied */
    float *output_norm;   /* (dim) */
    struct layer *layers;
    size_t max_act_row_bytes; /* largest activation row any matrix needs */
};

struct infer_session {
    struct infer_model *m;
    int ctx, pos, batch;
    uint16_t *k_cache, *v_cache;   /* (layer, ctx, kv_dim) F16 */
    float *x;                      /* (batch, dim) residual stream */
    float *xb;                     /* (batch, dim) normed input */
    float *tmp;                    /* (batch, dim) matrix output before the residual add */
    float *q;                      /* (batch, q_dim) */
    float *k, *v;                  /* (batch, kv_dim) */
    float *ao;                     /* (batch, q_dim) attention output */
    float *hb, *hb2;               /* (batch, ffn) */
    float *rope_cs;                /* (batch, rope_dim / 2, 2) cos, sin of each token's angles */
    float *att;                    /* (threads, heads per KV group, ctx) attention scores */
    uint8_t *act[3];               /* (batch, max_act_row_bytes) inputs as F32, Q8_0, Q8_K */
    uint8_t *act_ffn;              /* (batch, max_act_row_bytes) the FFN's hidden state made
                                    * for w_down by ffn_worker */
    float *logits;                 /* (vocab) */
    uint8_t *embd_row;             /* one embedding row, out of a packed copy */
    int (*should_stop)(void *ctx); /* asked between prefill batches, or NULL */
    void *stop_ctx;
};

/* ---- loading ---- */

static int arch_key_u64(const struct gguf_file *f, const char *arch, const char *key, uint64_t *out,
                        int required, char *err)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int rc = gguf_get_u64(f, full, out);
    if (rc == JB_ERR_NOTFOUND && !required)
        return JB_ERR_NOTFOUND;
    if (rc == JB_ERR_NOTFOUND)
        return err_setf(err, JB_ERR_FORMAT, "metadata key '%s' is missing", full);
    if (rc)
        return err_setf(err, JB_ERR_FORMAT, "metadata key '%s' is not a usable integer", full);
    return 0;
}

/* An optional number: *out unchanged when absent; JB_ERR_FORMAT, naming
 * the key, when it is there but not a number (the default would quietly
 * compute another model). */
static int arch_key_f64(const struct gguf_file *f, const char *arch, const char *key, double *out,
                        char *err)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int rc = gguf_get_f64(f, full, out);
    if (rc == JB_ERR_NOTFOUND)
        return 0;
    if (rc)
        return err_setf(err, JB_ERR_FORMAT, "metadata '%s' is not a number", full);
    return 0;
}

static int in_int_range(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v >= lo && v <= hi;
}

/* "[256, 1024, 2]": every dimension of t. */
static void shape_str(const struct gguf_tensor *t, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "[");
    for (uint32_t d = 0; d < t->n_dims && n < size; d++)
        n += (size_t)snprintf(out + n, size - n, "%s%llu", d ? ", " : "",
                              (unsigned long long)t->ne[d]);
    if (n < size)
        snprintf(out + n, size - n, "]");
}

/* Finds a tensor and checks its shape (ne[0] = n_in, ne[1] = n_out; n_out 0
 * for a vector). Errors name the tensor and what was expected. */
static int find_tensor(struct infer_model *m, const char *name, int n_in, int n_out, int optional,
                       const struct gguf_tensor **out, char *err)
{
    const struct gguf_tensor *t = gguf_find_tensor(&m->gguf, name);
    *out = t;
    if (!t) {
        if (optional)
            return 0;
        return err_setf(err, JB_ERR_FORMAT, "tensor '%s' is missing (architecture %s)", name,
                        m->info.arch);
    }
    int dims_ok =
        n_out ? (t->n_dims == 2 && t->ne[0] == (uint64_t)n_in && t->ne[1] == (uint64_t)n_out)
              : (t->n_dims == 1 && t->ne[0] == (uint64_t)n_in);
    if (!dims_ok) {
        char shape[128];
        shape_str(t, shape, sizeof shape);
        if (n_out)
            return err_setf(err, JB_ERR_FORMAT, "tensor '%s' has shape %s, expected [%d, %d]", name,
                            shape, n_in, n_out);
        return err_setf(err, JB_ERR_FORMAT, "tensor '%s' has shape %s, expected [%d]", name, shape,
                        n_in);
    }
    if (!t->data || !quant_traits(t->type))
        return err_setf(err, JB_ERR_UNSUPPORTED,
                        "tensor '%s' has type %s, which joulebench cannot compute with "
                        "(supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K)",
                        name, ggml_type_name(t->type));
    return 0;
}

static int load_matrix(struct infer_model *m, const char *name, int n_in, int n_out, struct wmat *w,
                       char *err)
{
    const struct gguf_tensor *t;
    int rc = find_tensor(m, name, n_in, n_out, 0, &t, err);
    if (rc)
        return rc;
    if (!kern_supported(t->type))
        return err_setf(err, JB_ERR_UNSUPPORTED,
                        "tensor '%s' has type %s, which has no matrix kernel (supported: F32, "
                        "F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K)",
                        name, ggml_type_name(t->type));
    w->type = t->type;
    w->data = t->data;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = quant_row_bytes(t->type, (uint64_t)n_in);
    if (w->row_bytes == 0 || w->row_bytes * (uint64_t)n_out != t->size_bytes)
        return err_setf(err, JB_ERR_FORMAT,
                        "tensor '%s': rows of %d elements do not fit %s blocks of %zu", name, n_in,
                        ggml_type_name(t->type), kern_block_elems(t->type));
    size_t ab = kern_act_row_bytes(t->type, (size_t)n_in);
    if (ab > m->max_act_row_bytes)
        m->max_act_row_bytes = ab;
    return 0;
}

/* A vector (norm weight, bias, frequency factors) converted to F32. */
static int load_vector(struct infer_model *m, const char *name, int n, int optional, float **out,
                       char *err)
{
    const struct gguf_tensor *t;
    *out = NULL;
    int rc = find_tensor(m, name, n, 0, optional, &t, err);
    if (rc || !t)
        return rc;
    float *v = malloc((size_t)n * sizeof(float));
    if (!v)
        return err_setf(err, JB_ERR_NOMEM, "out of memory for tensor '%s'", name);
    rc = quant_dequantize_row(t->type, t->data, v, (size_t)n);
    if (rc) {
        free(v);
        return err_setf(err, JB_ERR_FORMAT, "tensor '%s': %d elements are not whole %s blocks",
                        name, n, ggml_type_name(t->type));
    }
    *out = v;
    return 0;
}

/* llama.cpp's file-type numbers (general.file_type) for the labels people
 * know from model names. */
static const char *file_type_label(uint64_t ft)
{
    switch (ft) {
    case 0:
        return "F32";
    case 1:
        return "F16";
    case 2:
        return "Q4_0";
    case 3:
        return "Q4_1";
    case 7:
        return "Q8_0";
    case 8:
        return "Q5_0";
    case 9:
        return "Q5_1";
    case 10:
        return "Q2_K";
    case 11:
        return "Q3_K_S";
    case 12:
        return "Q3_K_M";
    case 13:
        return "Q3_K_L";
    case 14:
        return "Q4_K_S";
    case 15:
        return "Q4_K_M";
    case 16:
        return "Q5_K_S";
    case 17:
        return "Q5_K_M";
    case 18:
        return "Q6_K";
    case 32:
        return "BF16";
    default:
        return "";
    }
}

static void copy_str(char *dst, size_t size, struct gguf_str s)
{
    size_t n = s.len < size - 1 ? (size_t)s.len : size - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static int load_hparams(struct infer_model *m, char *err)
{
    const struct gguf_file *f = &m->gguf;
    struct infer_model_info *in = &m->info;
    struct gguf_str s;
    if (gguf_get_str(f, "general.architecture", &s))
        return err_setf(err, JB_ERR_FORMAT, "metadata key 'general.architecture' is missing");
    if (gguf_str_eq(s, "llama"))
        m->rope_neox = 0;
    else if (gguf_str_eq(s, "qwen2"))
        m->rope_neox = 1;
    else {
        char a[64];
        copy_str(a, sizeof a, s);
        return err_setf(err, JB_ERR_UNSUPPORTED,
                        "architecture '%s' is not supported by the built-in engine (it runs "
                        "llama and qwen2); run this model with -e ollama or -e openai",
                        a);
    }
    copy_str(in->arch, sizeof in->arch, s);
    if (gguf_get_str(f, "general.name", &s) == 0)
        copy_str(in->name, sizeof in->name, s);
    uint64_t v;
    if (gguf_get_u64(f, "general.file_type", &v) == 0)
        str_lcpy(in->file_type, file_type_label(v), sizeof in->file_type);
    const struct gguf_kv *syn = gguf_find_kv(f, "general.joulebench.synthetic");
    in->synthetic = syn && syn->value.type == GGUF_TYPE_BOOL && syn->value.v.b;

    const char *arch = in->arch;
    uint64_t n_layers, dim, n_heads, n_kv = 0, ffn, ctx = 0, head_dim = 0, rope_dim = 0;
    int rc;
    if ((rc = arch_key_u64(f, arch, "block_count", &n_layers, 1, err)) ||
        (rc = arch_key_u64(f, arch, "embedding_length", &dim, 1, err)) ||
        (rc = arch_key_u64(f, arch, "attention.head_count", &n_heads, 1, err)) ||
        (rc = arch_key_u64(f, arch, "feed_forward_length", &ffn, 1, err)))
        return rc;
    if ((rc = arch_key_u64(f, arch, "attention.head_count_kv", &n_kv, 0, err)) == JB_ERR_NOTFOUND)
        n_kv = n_heads;
    else if (rc)
        return rc;
    if ((rc = arch_key_u64(f, arch, "context_length", &ctx, 0, err)) && rc != JB_ERR_NOTFOUND)
        return rc;
    if (!in_int_range(n_layers, 1, 4096) || !in_int_range(dim, 1, 1 << 20) ||
        !in_int_range(n_heads, 1, 4096) || !in_int_range(n_kv, 1, n_heads) || n_heads % n_kv != 0 ||
        !in_int_range(ffn, 1, 1 << 22))
        return err_setf(err, JB_ERR_FORMAT,
                        "%s: implausible shape (block_count %llu, embedding_length %llu, "
                        "head_count %llu, head_count_kv %llu, feed_forward_length %llu)",
                        arch, (unsigned long long)n_layers, (unsigned long long)dim,
                        (unsigned long long)n_heads, (unsigned long long)n_kv,
                        (unsigned long long)ffn);
    if ((rc = arch_key_u64(f, arch, "attention.key_length", &head_dim, 0, err)) &&
        rc != JB_ERR_NOTFOUND)
        return rc;
    if (head_dim == 0) {
        if (dim % n_heads)
            return err_setf(err, JB_ERR_FORMAT,
                            "%s.embedding_length %llu is not a multiple of head_count %llu", arch,
                            (unsigned long long)dim, (unsigned long long)n_heads);
        head_dim = dim / n_heads;
    }
    if (!in_int_range(head_dim, 2, 1024) || head_dim % 2)
        return err_setf(err, JB_ERR_FORMAT, "%s: head size %llu is not supported", arch,
                        (unsigned long long)head_dim);
    uint64_t v_dim = 0; /* the engine's attention has values as wide as keys */
    if ((rc = arch_key_u64(f, arch, "attention.value_length", &v_dim, 0, err)) &&
        rc != JB_ERR_NOTFOUND)
        return rc;
    if (v_dim && v_dim != head_dim)
        return err_setf(err, JB_ERR_UNSUPPORTED,
                        "%s.attention.value_length %llu differs from the key length %llu: "
                        "joulebench computes attention with equal lengths",
                        arch, (unsigned long long)v_dim, (unsigned long long)head_dim);
    if ((rc = arch_key_u64(f, arch, "rope.dimension_count", &rope_dim, 0, err)) &&
        rc != JB_ERR_NOTFOUND)
        return rc;
    if (rope_dim == 0)
        rope_dim = head_dim;
    if (rope_dim > head_dim || rope_dim % 2)
        return err_setf(err, JB_ERR_FORMAT,
                        "%s.rope.dimension_count %llu does not fit head size %llu", arch,
                        (unsigned long long)rope_dim, (unsigned long long)head_dim);
    double base = 10000.0, eps = m->rope_neox ? 1e-6 : 1e-5;
    if ((rc = arch_key_f64(f, arch, "rope.freq_base", &base, err)) ||
        (rc = arch_key_f64(f, arch, "attention.layer_norm_rms_epsilon", &eps, err)))
        return rc;
    if (!(base > 1.0) || !(eps > 0.0) || !(eps < 1.0))
        return err_setf(err, JB_ERR_FORMAT,
                        "%s: rope.freq_base %g or rms epsilon %g is out of range", arch, base, eps);

    m->n_layers = (int)n_layers;
    m->dim = (int)dim;
    m->n_heads = (int)n_heads;
    m->n_kv_heads = (int)n_kv;
    m->head_dim = (int)head_dim;
    m->q_dim = m->n_heads * m->head_dim;
    m->kv_dim = m->n_kv_heads * m->head_dim;
    m->ffn_dim = (int)ffn;
    m->rope_dim = (int)rope_dim;
    m->norm_eps = (float)eps;
    in->n_layers = m->n_layers;
    in->dim = m->dim;
    in->n_heads = m->n_heads;
    in->n_kv_heads = m->n_kv_heads;
    in->head_dim = m->head_dim;
    in->ffn_dim = m->ffn_dim;
    in->ctx_train = ctx > 0 && ctx < (1u << 30) ? (int)ctx : 0;
    in->rope_freq_base = base;
    return 0;
}

static int load_tensors(struct infer_model *m, char *err)
{
    int rc;
    const struct gguf_tensor *te = gguf_find_tensor(&m->gguf, "token_embd.weight");
    if (!te)
        return err_setf(err, JB_ERR_FORMAT, "tensor 'token_embd.weight' is missing");
    if (te->n_dims != 2 || te->ne[0] != (uint64_t)m->dim || te->ne[1] < 1 ||
        te->ne[1] > (1u << 24)) {
        char shape[128];
        shape_str(te, shape, sizeof shape);
        return err_setf(err, JB_ERR_FORMAT,
                        "tensor 'token_embd.weight' has shape %s, expected [%d, vocab] with a "
                        "vocabulary of 1 to 2^24 tokens",
                        shape, m->dim);
    }
    m->vocab = (int)te->ne[1];
    m->info.vocab_size = m->vocab;
    /* embeddings only need dequantising one row at a time: any known type */
    const struct gguf_tensor *dummy;
    if ((rc = find_tensor(m, "token_embd.weight", m->dim, m->vocab, 0, &dummy, err)))
        return rc;
    m->tok_embd.type = te->type;
    m->tok_embd.data = te->data;
    m->tok_embd.n_in = m->dim;
    m->tok_embd.n_out = m->vocab;
    m->tok_embd.row_bytes = quant_row_bytes(te->type, (uint64_t)m->dim);
    if (m->tok_embd.row_bytes == 0)
        return err_setf(err, JB_ERR_FORMAT,
                        "tensor 'token_embd.weight': rows of %d are not whole "
                        "%s blocks",
                        m->dim, ggml_type_name(te->type));

    if (gguf_find_tensor(&m->gguf, "output.weight")) {
        if ((rc = load_matrix(m, "output.weight", m->dim, m->vocab, &m->output, err)))
            return rc;
    } else {
        /* tied embeddings: the embedding table is the output matrix */
        if ((rc = load_matrix(m, "token_embd.weight", m->dim, m->vocab, &m->output, err)))
            return rc;
    }
    if ((rc = load_vector(m, "output_norm.weight", m->dim, 0, &m->output_norm, err)))
        return rc;

    float *freqs = NULL;
    if ((rc = load_vector(m, "rope_freqs.weight", m->rope_dim / 2, 1, &freqs, err)))
        return rc;
    m->rope_inv_freq = malloc((size_t)(m->rope_dim / 2) * sizeof(float));
    if (!m->rope_inv_freq) {
        free(freqs);
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < m->rope_dim / 2; i++) {
        double f = pow(m->info.rope_freq_base, -2.0 * i / m->rope_dim);
        if (freqs)
            f /= freqs[i];
        m->rope_inv_freq[i] = (float)f;
    }
    free(freqs);

    m->layers = calloc((size_t)m->n_layers, sizeof(*m->layers));
    if (!m->layers)
        return err_setf(err, JB_ERR_NOMEM, "out of memory for %d layers", m->n_layers);
    for (int l = 0; l < m->n_layers; l++) {
        struct layer *L = &m->layers[l];
        char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d." s, l), name)
        if ((rc = load_vector(m, NAME("attn_norm.weight"), m->dim, 0, &L->attn_norm, err)) ||
            (rc = load_matrix(m, NAME("attn_q.weight"), m->dim, m->q_dim, &L->wq, err)) ||
            (rc = load_matrix(m, NAME("attn_k.weight"), m->dim, m->kv_dim, &L->wk, err)) ||
            (rc = load_matrix(m, NAME("attn_v.weight"), m->dim, m->kv_dim, &L->wv, err)) ||
            (rc = load_matrix(m, NAME("attn_output.weight"), m->q_dim, m->dim, &L->wo, err)) ||
            (rc = load_vector(m, NAME("attn_q.bias"), m->q_dim, 1, &L->bq, err)) ||
            (rc = load_vector(m, NAME("attn_k.bias"), m->kv_dim, 1, &L->bk, err)) ||
            (rc = load_vector(m, NAME("attn_v.bias"), m->kv_dim, 1, &L->bv, err)) ||
            (rc = load_vector(m, NAME("ffn_norm.weight"), m->dim, 0, &L->ffn_norm, err)) ||
            (rc = load_matrix(m, NAME("ffn_gate.weight"), m->dim, m->ffn_dim, &L->w_gate, err)) ||
            (rc = load_matrix(m, NAME("ffn_up.weight"), m->dim, m->ffn_dim, &L->w_up, err)) ||
            (rc = load_matrix(m, NAME("ffn_down.weight"), m->ffn_dim, m->dim, &L->w_down, err)))
            return rc;
#undef NAME
    }
    return 0;
}

/* The matrices a token reads whole, one index each: seven a layer, then
 * the output matrix. */
static int n_matrices(const struct infer_model *m)
{
    return 7 * m->n_layers + 1;
}

static struct wmat *matrix_at(struct infer_model *m, int i)
{
    if (i == 7 * m->n_layers)
        return &m->output;
    struct layer *L = &m->layers[i / 7];
    struct wmat *ws[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return ws[i % 7];
}

/* The file's pages of a packed matrix, given back: only the copy is read.
 * Whole pages inside the matrix only (a neighbour may share the first and
 * the last); the mapping is a private read-only one of the file, so a page
 * read again would come back from the file, not as zeros. */
static void drop_source(const struct wmat *w)
{
#ifdef MADV_DONTNEED
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0)
        return;
    uintptr_t page = (uintptr_t)ps;
    uintptr_t lo = ((uintptr_t)w->data + page - 1) / page * page;
    uintptr_t hi = ((uintptr_t)w->data + w->row_bytes * (size_t)w->n_out) / page * page;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)w;
#endif
}

/* Each matrix the kernels in use have a packed layout for (Q5_0 and Q4_K
 * under avx2), copied into it, and the file's pages of it given back: the
 * copy has the rows' size (Q4_K: 2.8 % more, its scales as bytes). A tied
 * output matrix too: a token's embedding then comes from the copy
 * (kern_unpack_row). JOULEBENCH_PACK=0 keeps every matrix in place. */
static int pack_matrices(struct infer_model *m, char *err)
{
    const char *env = getenv("JOULEBENCH_PACK");
    if (env && strcmp(env, "0") == 0)
        return 0;
    for (int i = 0; i < n_matrices(m); i++) {
        struct wmat *w = matrix_at(m, i);
        size_t bytes = kern_pack_bytes(w->type, (size_t)w->n_in, (size_t)w->n_out);
        if (!bytes)
            continue;
        if (!(w->packed = aligned_alloc(64, (bytes + 63) / 64 * 64)))
            return err_setf(err, JB_ERR_NOMEM,
                            "out of memory for the kernels' copy of a %s matrix (%zu bytes); "
                            "JOULEBENCH_PACK=0 reads every matrix in place",
                            ggml_type_name(w->type), bytes);
        kern_pack(w->type, (size_t)w->n_in, w->data, w->row_bytes, (size_t)w->n_out, w->packed);
        w->packed_bytes = bytes;
        drop_source(w);
        m->info.packed_bytes += bytes;
    }
    return 0;
}

/* Size and type statistics for infer_model_info: the dominant matrix type
 * by bytes, and the bytes one decode step reads. */
static void fill_stats(struct infer_model *m)
{
    struct infer_model_info *in = &m->info;
    uint64_t by_type[GGML_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) {
        const struct gguf_tensor *t = &m->gguf.tensors[i];
        if (!t->data) /* a type of unknown size: its counts were never checked */
            continue;
        in->n_params += t->n_elements;
        in->weight_bytes += t->size_bytes;
        if (t->n_dims == 2 && (unsigned)t->type < GGML_TYPE_COUNT)
            by_type[t->type] += t->size_bytes;
    }
    int best = -1;
    for (int t = 0; t < GGML_TYPE_COUNT; t++)
        if (by_type[t] && (best < 0 || by_type[t] > by_type[best]))
            best = t;
    if (best >= 0)
        str_lcpy(in->weight_type, ggml_type_name((enum ggml_type)best), sizeof in->weight_type);
    /* the bytes actually read: a packed copy's where there is one */
    uint64_t b = m->tok_embd.row_bytes + (uint64_t)m->dim * 4 * (1 + 2 * (uint64_t)m->n_layers);
    for (int i = 0; i < n_matrices(m); i++) {
        const struct wmat *w = matrix_at(m, i);
        b += w->packed ? w->packed_bytes : w->row_bytes * (uint64_t)w->n_out;
    }
    in->decode_bytes = b;
    in->file_bytes = m->map.size;
}

int infer_model_load(struct infer_model **out, const char *path, const struct infer_options *opt,
                     char *err)
{
    *out = NULL;
    int rc;
    if (getenv("JOULEBENCH_KERNELS") && (rc = kern_select(KERN_AUTO, err)))
        return rc;
    struct infer_model *m = calloc(1, sizeof(*m));
    if (!m)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    str_lcpy(m->info.path, path, sizeof m->info.path);
    if ((rc = fs_map_file(path, &m->map, err)))
        goto fail;
    if ((rc = gguf_parse(m->map.data, m->map.size, &m->gguf, err)))
        goto fail_named;
    m->gguf_ok = 1;
    if ((rc = load_hparams(m, err)) || (rc = load_tensors(m, err)))
        goto fail_named;
    if ((rc = tokenizer_from_gguf(&m->gguf, &m->tok, err)))
        goto fail_named;
    if (tokenizer_vocab_size(m->tok) > (size_t)m->vocab) {
        rc = err_setf(err, JB_ERR_FORMAT,
                      "tokenizer.ggml.tokens has %zu tokens but token_embd.weight only %d rows: "
                      "the file is inconsistent",
                      tokenizer_vocab_size(m->tok), m->vocab);
        goto fail_named;
    }
    int threads = opt && opt->threads > 0 ? opt->threads : pool_cpu_count();
    enum infer_wait wait = opt ? opt->wait : INFER_WAIT_SPIN;
    if ((rc = pool_new(&m->pool, threads, wait, err)))
        goto fail;
    m->info.threads = threads;
    m->info.wait = wait;
    str_lcpy(m->info.kernels, kern_name(), sizeof m->info.kernels);
    if ((rc = pack_matrices(m, err)))
        goto fail_named;
    str_lcpy(m->info.kv_type, "F16", sizeof m->info.kv_type);
    m->info.prefill_batch = PREFILL_BATCH;
    fill_stats(m);
    *out = m;
    return 0;
fail_named:
    err_prefix(err, "%s", path);
fail:
    infer_model_free(m);
    return rc;
}

void infer_model_free(struct infer_model *m)
{
    if (!m)
        return;
    pool_free(m->pool);
    tokenizer_free(m->tok);
    if (m->layers) {
        for (int i = 0; i < n_matrices(m); i++)
            free(matrix_at(m, i)->packed);
        for (int l = 0; l < m->n_layers; l++) {
            struct layer *L = &m->layers[l];
            free(L->attn_norm);
            free(L->ffn_norm);
            free(L->bq);
            free(L->bk);
            free(L->bv);
        }
        free(m->layers);
    }
    free(m->output_norm);
    free(m->rope_inv_freq);
    if (m->gguf_ok)
        gguf_free(&m->gguf);
    fs_unmap(&m->map);
    free(m);
}

const struct infer_model_info *infer_model_info(const struct infer_model *m)
{
    return &m->info;
}

const struct tokenizer *infer_model_tokenizer(const struct infer_model *m)
{
    return m->tok;
}

static volatile uint8_t touch_sink;

/* One read per page, so the first request pays no page faults or disk
 * reads. The volatile sink keeps the loop from being optimised away. */
void infer_model_touch(struct infer_model *m)
{
    const volatile uint8_t *p = m->map.data;
#ifdef MADV_WILLNEED
    madvise((void *)(uintptr_t)m->map.data, m->map.size, MADV_WILLNEED);
#endif
    uint8_t sink = 0;
    for (size_t i = 0; i < m->map.size; i += 4096)
        sink ^= p[i];
    touch_sink = sink;
    for (int i = 0; i < n_matrices(m); i++) /* read again above; only the copies are used */
        if (matrix_at(m, i)->packed)
            drop_source(matrix_at(m, i));
}

/* ---- sessions ---- */

int infer_session_new(struct infer_model *m, int ctx_len, struct infer_session **out, char *err)
{
    *out = NULL;
    if (ctx_len <= 0)
        ctx_len = m->info.ctx_train > 0 && m->info.ctx_train < DEFAULT_CTX ? m->info.ctx_train
                                                                           : DEFAULT_CTX;
    if (ctx_len > (1 << 22))
        return err_setf(err, JB_ERR_USAGE, "context of %d tokens is too large", ctx_len);
    struct infer_session *s = calloc(1, sizeof(*s));
    if (!s)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    s->m = m;
    s->ctx = ctx_len;
    s->batch = PREFILL_BATCH;
    size_t B = (size_t)s->batch;
    size_t cache = (size_t)m->n_layers * (size_t)ctx_len * (size_t)m->kv_dim;
    s->k_cache = malloc(cache * sizeof(uint16_t));
    s->v_cache = malloc(cache * sizeof(uint16_t));
    s->x = malloc(B * (size_t)m->dim * sizeof(float));
    s->xb = malloc(B * (size_t)m->dim * sizeof(float));
    s->tmp = malloc(B * (size_t)m->dim * sizeof(float));
    s->q = malloc(B * (size_t)m->q_dim * sizeof(float));
    s->k = malloc(B * (size_t)m->kv_dim * sizeof(float));
    s->v = malloc(B * (size_t)m->kv_dim * sizeof(float));
    s->ao = malloc(B * (size_t)m->q_dim * sizeof(float));
    s->hb = malloc(B * (size_t)m->ffn_dim * sizeof(float));
    s->hb2 = malloc(B * (size_t)m->ffn_dim * sizeof(float));
    s->rope_cs = malloc(B * (size_t)m->rope_dim * sizeof(float));
    s->att = malloc((size_t)pool_threads(m->pool) * (size_t)(m->n_heads / m->n_kv_heads) *
                    (size_t)ctx_len * sizeof(float));
    for (int i = 0; i < 3; i++)
        s->act[i] = malloc(B * m->max_act_row_bytes);
    s->act_ffn = malloc(B * m->max_act_row_bytes);
    s->logits = malloc((size_t)m->vocab * sizeof(float));
    s->embd_row = malloc(m->tok_embd.row_bytes);
    if (!s->embd_row || !s->act_ffn || !s->k_cache || !s->v_cache || !s->x || !s->xb || !s->tmp ||
        !s->q || !s->k || !s->v || !s->ao || !s->hb || !s->hb2 || !s->rope_cs || !s->att ||
        !s->act[0] || !s->act[1] || !s->act[2] || !s->logits) {
        infer_session_free(s);
        return err_setf(err, JB_ERR_NOMEM,
                        "out of memory for a session of %d tokens (KV cache %zu MiB)", ctx_len,
                        cache * 4 >> 20);
    }
    *out = s;
    return 0;
}

void infer_session_free(struct infer_session *s)
{
    if (!s)
        return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->embd_row);
    free(s->x);
    free(s->xb);
    free(s->tmp);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->ao);
    free(s->hb);
    free(s->hb2);
    free(s->rope_cs);
    free(s->att);
    for (int i = 0; i < 3; i++)
        free(s->act[i]);
    free(s->act_ffn);
    free(s->logits);
    free(s);
}

void infer_session_reset(struct infer_session *s)
{
    s->pos = 0;
}
int infer_session_pos(const struct infer_session *s)
{
    return s->pos;
}
int infer_session_ctx(const struct infer_session *s)
{
    return s->ctx;
}

/* ---- the forward pass ---- */

/* Guided self-scheduling of rows [0, total) in multiples of unit: each
 * claim takes 1 / (2 * n_threads) of what is left, at least MM_MIN_ROWS and
 * at most max_rows, and never reaches past end(r0) (the end of the span r0
 * is in). Long claims first stream well (each is one run of rows for the
 * prefetcher); short ones at the end let the threads finish together, where
 * equal chunks left one thread waiting for the other's last one (about 4 %
 * of decode on 2 threads). The cap bounds how long a thread that lost its
 * core to another process holds up the others. Returns the rows claimed
 * from *r0, 0 when none are left. */
static int claim_rows(atomic_int *next, int total, int unit, int n_threads,
                      int (*end)(const void *ctx, int r0, int *max_rows), const void *ctx, int *r0)
{
    int at = atomic_load_explicit(next, memory_order_relaxed);
    for (;;) {
        if (at >= total)
            return 0;
        int max_rows, stop = end(ctx, at, &max_rows);
        int min_rows = (MM_MIN_ROWS + unit - 1) / unit * unit;
        int size = (total - at) / (2 * n_threads);
        size = (size + unit - 1) / unit * unit;
        max_rows = max_rows / unit * unit;
        if (size > max_rows)
            size = max_rows;
        if (size < min_rows)
            size = min_rows;
        int to = at + size < stop ? at + size : stop;
        if (atomic_compare_exchange_weak_explicit(next, &at, to, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *r0 = at;
            return to - at;
        }
    }
}

/* Up to three matrices that read the same input, run as one pool job so
 * the threads meet once: their rows, one after the other, are handed out
 * by claim_rows, which also balances threads that lose their core to
 * another process. */
struct mm_task {
    const struct wmat *w;
    const uint8_t *act; /* (n_tok, act_row_bytes) */
    size_t act_row_bytes;
    float *y;          /* (n_tok, w->n_out) */
    const float *bias; /* (w->n_out) or NULL */
    int first_row;     /* of the job's rows */
};

struct mm_job {
    struct mm_task task[3];
    int n_task;
    int n_tok;
    int n_rows; /* all the tasks' */
    int unit;   /* claims are multiples of it: KERN_PACK_ROWS when the rows allow */
    /* Every claim writes it; on the tasks' line it took that line from
     * every thread reading its task (the qkv job took half as long again at
     * 16 threads). */
    alignas(POOL_LINE) atomic_int next;
};

static int mm_task_of(const struct mm_job *j, int row)
{
    int ti = 0;
    while (ti + 1 < j->n_task && row >= j->task[ti + 1].first_row)
        ti++;
    return ti;
}

/* claims stay within one matrix, and within MM_CHUNK_MAX_BYTES of it */
static int mm_span_end(const void *ctx, int row, int *max_rows)
{
    const struct mm_job *j = ctx;
    const struct mm_task *t = &j->task[mm_task_of(j, row)];
    size_t cap = MM_CHUNK_MAX_BYTES / t->w->row_bytes;
    *max_rows = cap < 1 ? 1 : cap > (size_t)t->w->n_out ? t->w->n_out : (int)cap;
    return t->first_row + t->w->n_out;
}

/* Rows [r0, r1) of w against n_tok activation rows: from the packed copy
 * when there is one and the job's claims are whole packed groups
 * (whole_groups), so that which path a row takes does not depend on where
 * the thread count puts the claims' edges. */
static void wmat_matmul(const struct wmat *w, int whole_groups, size_t r0, size_t r1,
                        const uint8_t *act, size_t act_row_bytes, int n_tok, float *y, size_t ldy)
{
    if (w->packed && whole_groups)
        kern_matmul_packed(w->type, (size_t)w->n_in, w->packed, r0, r1, act, act_row_bytes,
                           (size_t)n_tok, y, ldy);
    else
        kern_matmul(w->type, (size_t)w->n_in, w->data, w->row_bytes, r0, r1, act, act_row_bytes,
                    (size_t)n_tok, y, ldy);
}

static void mm_worker(void *ctx, int thread, int n_threads)
{
    (void)thread;
    struct mm_job *j = ctx;
    int v0, n;
    while ((n = claim_rows(&j->next, j->n_rows, j->unit, n_threads, mm_span_end, j, &v0)) > 0) {
        const struct mm_task *t = &j->task[mm_task_of(j, v0)];
        int r0 = v0 - t->first_row, r1 = r0 + n;
        wmat_matmul(t->w, j->unit == KERN_PACK_ROWS, (size_t)r0, (size_t)r1, t->act,
                    t->act_row_bytes, j->n_tok, t->y, (size_t)t->w->n_out);
        if (t->bias)
            for (int k = 0; k < j->n_tok; k++)
                for (int r = r0; r < r1; r++)
                    t->y[(size_t)k * (size_t)t->w->n_out + (size_t)r] += t->bias[r];
    }
}

/* The session's activation buffer for weights of type t: one per format. */
static int act_slot(enum ggml_type t)
{
    enum ggml_type at = kern_act_type(t);
    return at == GGML_TYPE_F32 ? 0 : at == GGML_TYPE_Q8_0 ? 1 : 2;
}

/* x (n_tok, n_in) made into the activation format weights of type t take,
 * in the session's buffer for that format, which it returns. */
static const uint8_t *quantize_input(struct infer_session *s, enum ggml_type t, const float *x,
                                     int n_tok, size_t n_in)
{
    uint8_t *dst = s->act[act_slot(t)];
    size_t arb = kern_act_row_bytes(t, n_in);
    for (int k = 0; k < n_tok; k++)
        kern_quantize_act(t, x + (size_t)k * n_in, dst + (size_t)k * arb, n_in);
    return dst;
}

/* y_i = W_i x (+ b_i) for n_tok input rows x (n_tok, n_in). The input is
 * quantised once per activation format the matrices need, unless pre_act
 * holds it already (one matrix only: n_tok rows of its activation format). */
static void matmul(struct infer_session *s, const float *x, const uint8_t *pre_act, int n_tok,
                   int n_mats, const struct wmat *const *w, float *const *y,
                   const float *const *bias)
{
    struct mm_job j;
    memset(&j, 0, sizeof(j));
    int done[3] = {0, 0, 0};
    int n_in = w[0]->n_in;
    int rows = 0;
    for (int i = 0; i < n_mats; i++) {
        int slot = act_slot(w[i]->type);
        size_t arb = kern_act_row_bytes(w[i]->type, (size_t)n_in);
        if (!pre_act && !done[slot]) {
            done[slot] = 1;
            quantize_input(s, w[i]->type, x, n_tok, (size_t)n_in);
        }
        struct mm_task *t = &j.task[i];
        t->w = w[i];
        t->act = pre_act ? pre_act : s->act[slot];
        t->act_row_bytes = arb;
        t->y = y[i];
        t->bias = bias ? bias[i] : NULL;
        t->first_row = rows;
        rows += w[i]->n_out;
    }
    j.n_task = n_mats;
    j.n_tok = n_tok;
    j.n_rows = rows;
    /* claims of whole packed groups when every matrix's rows come in them
     * (then every task starts on a group); else packed copies are not used
     * and the file's rows are read again */
    j.unit = KERN_PACK_ROWS;
    for (int i = 0; i < n_mats; i++)
        if (w[i]->n_out % KERN_PACK_ROWS != 0)
            j.unit = 1;
    atomic_init(&j.next, 0);
    pool_run(s->m->pool, mm_worker, &j);
}

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

/* The cos and sin of position pos's rotation angles, into cs (rope_dim / 2
 * pairs). They are the same for every layer and for Q and K, so forward()
 * makes them once per token. */
static void rope_angles(const struct infer_model *m, int pos, float *cs)
{
    for (int i = 0; i < m->rope_dim / 2; i++) {
        double theta = (double)pos * m->rope_inv_freq[i];
        cs[2 * i] = (float)cos(theta);
        cs[2 * i + 1] = (float)sin(theta);
    }
}

/* Rotates the first rope_dim dimensions of each head of vec (n_heads
 * heads of head_dim) by the angles in cs (rope_angles() of the token's
 * position). NORM (llama) pairs dimensions 2i and 2i+1; NEOX (qwen2) pairs
 * i and i + rope_dim/2. */
static void rope(const struct infer_model *m, float *vec, int n_heads, const float *cs)
{
    int half = m->rope_dim / 2;
    for (int i = 0; i < half; i++) {
        float c = cs[2 * i], sn = cs[2 * i + 1];
        for (int h = 0; h < n_heads; h++) {
            float *v = vec + (size_t)h * (size_t)m->head_dim;
            int a = m->rope_neox ? i : 2 * i;
            int b = m->rope_neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * sn;
            v[b] = x0 * sn + x1 * c;
        }
    }
}

struct attn_job {
    struct infer_session *s;
    int layer, n_tok, pos0;
    alignas(POOL_LINE) atomic_int next; /* as in mm_job */
};

/* One (token, head) pair per item: causal softmax attention over the
 * cache rows 0..pos of the head's KV group. */
static void attn_worker(void *ctx, int thread, int n_threads)
{
    struct attn_job *j = ctx;
    struct infer_session *s = j->s;
    const struct infer_model *m = s->m;
    int hd = m->head_dim, group = m->n_heads / m->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    size_t layer_off = (size_t)j->layer * (size_t)s->ctx * (size_t)m->kv_dim;
    /* One item is a token's query heads of one KV group, which read each
     * cache row once for all of them; groups are split into parts only
     * when there would be fewer items than threads. Each head's result is
     * the same whichever part computes it. */
    int groups = j->n_tok * m->n_kv_heads;
    int parts = groups >= n_threads ? 1 : (n_threads + groups - 1) / groups;
    if (parts > group)
        parts = group;
    int per = (group + parts - 1) / parts;
    int items = groups * parts;
    float *sc = s->att + (size_t)thread * (size_t)group * (size_t)s->ctx;
    for (;;) {
        int it = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (it >= items)
            break;
        int t = it / (m->n_kv_heads * parts), kvh = it / parts % m->n_kv_heads;
        int h0 = kvh * group + it % parts * per;
        int h1 = h0 + per < (kvh + 1) * group ? h0 + per : (kvh + 1) * group;
        if (h0 >= h1)
            continue;
        size_t g = (size_t)(h1 - h0), n_pos = (size_t)(j->pos0 + t + 1);
        size_t kv_off = layer_off + (size_t)kvh * (size_t)hd;
        size_t q_off = (size_t)t * (size_t)m->q_dim + (size_t)h0 * (size_t)hd;
        kern_dot_f16_rows_heads((size_t)hd, s->k_cache + kv_off, (size_t)m->kv_dim, n_pos,
                                s->q + q_off, g, sc, (size_t)s->ctx);
        for (size_t h = 0; h < g; h++)
            kern_softmax(sc + h * (size_t)s->ctx, n_pos, scale);
        kern_sum_f16_rows_heads((size_t)hd, s->v_cache + kv_off, (size_t)m->kv_dim, n_pos, sc,
                                (size_t)s->ctx, g, s->ao + q_off);
    }
}

/* The FFN's hidden state as one pool job: each chunk of rows computes its
 * gate and up rows, applies silu(gate) * up, and quantises those rows for
 * w_down. Chunks are whole activation blocks of w_down, so the blocks come
 * out as a serial quantisation of the row would make them, and the
 * elementwise product and quantisation no longer run on one thread while
 * the others wait. */
struct ffn_job {
    struct infer_session *s;
    const struct layer *L;
    const uint8_t *act_gate, *act_up; /* (n_tok, arb_gate / arb_up) */
    size_t arb_gate, arb_up, arb_down;
    int n_tok, blk;                     /* claims are whole w_down blocks of rows */
    alignas(POOL_LINE) atomic_int next; /* as in mm_job */
};

static int ffn_span_end(const void *ctx, int row, int *max_rows)
{
    const struct ffn_job *j = ctx;
    (void)row;
    size_t row_bytes = j->L->w_gate.row_bytes + j->L->w_up.row_bytes;
    size_t cap = MM_CHUNK_MAX_BYTES / row_bytes;
    *max_rows = cap < (size_t)j->blk ? j->blk : (int)cap; /* cap <= 1 Mi */
    return j->s->m->ffn_dim;
}

static void ffn_worker(void *ctx, int thread, int n_threads)
{
    (void)thread;
    struct ffn_job *j = ctx;
    struct infer_session *s = j->s;
    const struct layer *L = j->L;
    size_t ffn = (size_t)s->m->ffn_dim;
    int v0, n;
    while ((n = claim_rows(&j->next, (int)ffn, j->blk, n_threads, ffn_span_end, j, &v0)) > 0) {
        size_t r0 = (size_t)v0, r1 = r0 + (size_t)n;
        int whole = j->blk % KERN_PACK_ROWS == 0;
        wmat_matmul(&L->w_gate, whole, r0, r1, j->act_gate, j->arb_gate, j->n_tok, s->hb, ffn);
        wmat_matmul(&L->w_up, whole, r0, r1, j->act_up, j->arb_up, j->n_tok, s->hb2, ffn);
        size_t off = kern_act_row_bytes(L->w_down.type, r0);
        for (size_t k = 0; k < (size_t)j->n_tok; k++) {
            float *h = s->hb + k * ffn, *h2 = s->hb2 + k * ffn;
            kern_swiglu(h + r0, h2 + r0, r1 - r0);
            kern_quantize_act(L->w_down.type, h + r0, s->act_ffn + k * j->arb_down + off, r1 - r0);
        }
    }
}

/* s->hb = silu(W_gate xb) * (W_up xb) for n_tok rows, and s->act_ffn = hb
 * made for w_down. */
static void ffn_hidden(struct infer_session *s, const struct layer *L, int n_tok)
{
    struct infer_model *m = s->m;
    size_t dim = (size_t)m->dim;
    struct ffn_job j;
    memset(&j, 0, sizeof(j));
    j.s = s;
    j.L = L;
    j.n_tok = n_tok;
    j.arb_gate = kern_act_row_bytes(L->w_gate.type, dim);
    j.arb_up = kern_act_row_bytes(L->w_up.type, dim);
    j.arb_down = kern_act_row_bytes(L->w_down.type, (size_t)m->ffn_dim);
    j.act_gate = quantize_input(s, L->w_gate.type, s->xb, n_tok, dim);
    j.act_up = act_slot(L->w_up.type) == act_slot(L->w_gate.type)
                   ? j.act_gate
                   : quantize_input(s, L->w_up.type, s->xb, n_tok, dim);
    j.blk = (int)kern_block_elems(L->w_down.type);
    /* a float w_down takes claims of any size: whole packed groups then,
     * so gate and up are read from their copies whatever the claims */
    if (j.blk < KERN_PACK_ROWS && m->ffn_dim % KERN_PACK_ROWS == 0)
        j.blk = KERN_PACK_ROWS;
    atomic_init(&j.next, 0);
    pool_run(m->pool, ffn_worker, &j);
}

/* n_tok tokens at positions s->pos..: the whole network for all of them,
 * logits for the last one when want_logits. */
static void forward(struct infer_session *s, const int *ids, int n_tok, int want_logits)
{
    struct infer_model *m = s->m;
    int dim = m->dim, pos0 = s->pos;
    /* a tied embedding table packed as the output matrix: the row from the
     * copy, since the file's pages of it were given back */
    int packed_embd = m->output.packed && m->output.data == m->tok_embd.data;
    for (int t = 0; t < n_tok; t++) {
        const uint8_t *row = m->tok_embd.data + (size_t)ids[t] * m->tok_embd.row_bytes;
        if (packed_embd) {
            kern_unpack_row(m->tok_embd.type, (size_t)dim, m->output.packed, (size_t)ids[t],
                            s->embd_row);
            row = s->embd_row;
        }
        quant_dequantize_row(m->tok_embd.type, row, s->x + (size_t)t * (size_t)dim, (size_t)dim);
        rope_angles(m, pos0 + t, s->rope_cs + (size_t)t * (size_t)m->rope_dim);
    }
    for (int l = 0; l < m->n_layers; l++) {
        const struct layer *L = &m->layers[l];
        for (int t = 0; t < n_tok; t++)
            rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->attn_norm, dim,
                    m->norm_eps);
        {
            const struct wmat *w[3] = {&L->wq, &L->wk, &L->wv};
            float *y[3] = {s->q, s->k, s->v};
            const float *b[3] = {L->bq, L->bk, L->bv};
            matmul(s, s->xb, NULL, n_tok, 3, w, y, b);
        }
        size_t cache_row = ((size_t)l * (size_t)s->ctx + (size_t)pos0) * (size_t)m->kv_dim;
        for (int t = 0; t < n_tok; t++) {
            const float *cs = s->rope_cs + (size_t)t * (size_t)m->rope_dim;
            rope(m, s->q + (size_t)t * m->q_dim, m->n_heads, cs);
            rope(m, s->k + (size_t)t * m->kv_dim, m->n_kv_heads, cs);
        }
        kern_f32_to_f16(s->k, s->k_cache + cache_row, (size_t)n_tok * (size_t)m->kv_dim);
        kern_f32_to_f16(s->v, s->v_cache + cache_row, (size_t)n_tok * (size_t)m->kv_dim);
        struct attn_job aj = {.s = s, .layer = l, .n_tok = n_tok, .pos0 = pos0};
        atomic_init(&aj.next, 0);
        /* short contexts: less work than waking the threads costs */
        size_t inline_work =
            pool_wait(m->pool) == INFER_WAIT_SPIN ? ATTN_INLINE_WORK_SPIN : ATTN_INLINE_WORK_SLEEP;
        if ((size_t)n_tok * (size_t)m->n_heads * (size_t)(pos0 + n_tok) * (size_t)m->head_dim <
            inline_work)
            attn_worker(&aj, 0, 1);
        else
            pool_run(m->pool, attn_worker, &aj);
        {
            const struct wmat *w[1] = {&L->wo};
            float *y[1] = {s->tmp};
            matmul(s, s->ao, NULL, n_tok, 1, w, y, NULL);
        }
        for (size_t i = 0; i < (size_t)n_tok * (size_t)dim; i++)
            s->x[i] += s->tmp[i];

        for (int t = 0; t < n_tok; t++)
            rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->ffn_norm, dim, m->norm_eps);
        ffn_hidden(s, L, n_tok);
        {
            const struct wmat *w[1] = {&L->w_down};
            float *y[1] = {s->tmp};
            matmul(s, s->hb, s->act_ffn, n_tok, 1, w, y, NULL);
        }
        for (size_t i = 0; i < (size_t)n_tok * (size_t)dim; i++)
            s->x[i] += s->tmp[i];
    }
    s->pos += n_tok;
    if (want_logits) {
        rmsnorm(s->xb, s->x + (size_t)(n_tok - 1) * dim, m->output_norm, dim, m->norm_eps);
        const struct wmat *w[1] = {&m->output};
        float *y[1] = {s->logits};
        matmul(s, s->xb, NULL, 1, 1, w, y, NULL);
    }
}

static int check_ids(const struct infer_session *s, const int *ids, size_t n, char *err)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->m->vocab)
            return err_setf(err, JB_ERR_USAGE,
                            "token id %d (position %zu) is outside the vocabulary 0..%d", ids[i], i,
                            s->m->vocab - 1);
    return 0;
}

void infer_session_set_stop(struct infer_session *s, int (*should_stop)(void *ctx), void *ctx)
{
    s->should_stop = should_stop;
    s->stop_ctx = ctx;
}

int infer_prefill(struct infer_session *s, const int *ids, size_t n, const float **logits,
                  char *err)
{
    if (n == 0)
        return err_setf(err, JB_ERR_USAGE, "empty prompt: prefill needs at least one token");
    if (n > (size_t)(s->ctx - s->pos))
        return err_setf(err, JB_ERR_USAGE,
                        "context full: %d tokens in the cache + %zu new exceed the session's "
                        "context of %d tokens",
                        s->pos, n, s->ctx);
    int rc = check_ids(s, ids, n, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i += (size_t)s->batch) {
        if (s->should_stop && s->should_stop(s->stop_ctx))
            return err_setf(err, JB_ERR_INTERRUPTED,
                            "interrupted during the prompt, after %zu of its %zu tokens", i, n);
        size_t k = n - i < (size_t)s->batch ? n - i : (size_t)s->batch;
        forward(s, ids + i, (int)k, i + k == n);
    }
    if (logits)
        *logits = s->logits;
    return 0;
}

int infer_decode(struct infer_session *s, int id, const float **logits, char *err)
{
    if (s->pos >= s->ctx)
        return err_setf(err, JB_ERR_USAGE,
                        "context full: the session's %d tokens are used; start a new request",
                        s->ctx);
    int rc = check_ids(s, &id, 1, err);
    if (rc)
        return rc;
    forward(s, &id, 1, 1);
    if (logits)
        *logits = s->logits;
    return 0;
}
