/*
 * infer.h — the built-in engine's model and forward pass: llama and qwen2
 * architectures from GGUF, weights used in place from the mapping, CPU
 * threads. engines/builtin.c wraps this as `-e builtin`.
 *
 *     struct infer_model *m;     infer_model_load(&m, path, &opt, err);
 *     struct infer_session *s;   infer_session_new(m, 2048, &s, err);
 *     const float *logits;
 *     infer_prefill(s, ids, n, &logits, err);     (logits of the last position)
 *     id = sampler_sample(&smp, logits, vocab);
 *     infer_decode(s, id, &logits, err);
 *
 * Numbers: weights are used in their stored types; activations are
 * quantised to 8 bits per product for the quantised types (kernels.h); the
 * KV cache holds F16; norms, RoPE, softmax and residuals are F32.
 *
 * Ownership: infer_model_load() maps the file and allocates the model;
 * infer_model_free() unmaps and frees it. A session (KV cache, scratch
 * buffers) belongs to one model and must be freed before it. logits point
 * into the session and are valid until the next call on it.
 */
#ifndef JB_INFER_INFER_H
#define JB_INFER_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "infer/tokenizer.h"

enum infer_wait { INFER_WAIT_SPIN = 0, INFER_WAIT_SLEEP = 1 };

struct infer_options {
    int threads;          /* 0: every online core */
    enum infer_wait wait; /* how idle pool threads wait between matrix products */
};

struct infer_model_info {
    char path[1024];
    char arch[16];        /* "llama", "qwen2" */
    char name[128];       /* general.name */
    char weight_type[16]; /* the most common matrix type: "Q4_K" */
    char file_type[32];   /* "Q4_K_M"-style label from general.file_type, or "" */
    uint64_t n_params;
    uint64_t weight_bytes; /* bytes of all tensors */
    uint64_t file_bytes;
    int n_layers, dim, n_heads, n_kv_heads, head_dim, ffn_dim, vocab_size, ctx_train;
    double rope_freq_base;
    int synthetic; /* written by `joulebench synth` (general.joulebench.synthetic) */
    int threads;   /* threads in use */
    enum infer_wait wait;
    char kernels[16];      /* kernel set chosen at load: "avx2", "neon", "scalar" */
    char kv_type[8];       /* KV cache element type: "F16" */
    int prefill_batch;     /* prompt tokens computed together (weights read once per batch) */
    uint64_t decode_bytes; /* weight bytes one decoded token reads: every layer matrix,
                              the output matrix, norms, one embedding row (packed copies
                              at their own size) */
    uint64_t packed_bytes; /* of those, matrices copied at load into the kernels' packed
                              layout (kern_pack), read from the copy; 0 when none */
};

struct infer_model;
struct infer_session;

int infer_model_load(struct infer_model **out, const char *path, const struct infer_options *opt,
                     char *err);
void infer_model_free(struct infer_model *m);
const struct infer_model_info *infer_model_info(const struct infer_model *m);
const struct tokenizer *infer_model_tokenizer(const struct infer_model *m);
/* Reads every weight page once so the first request measures no disk I/O. */
void infer_model_touch(struct infer_model *m);

/* ctx_len <= 0: the training context, at most 4096 (4096 when unknown). */
int infer_session_new(struct infer_model *m, int ctx_len, struct infer_session **out, char *err);
void infer_session_free(struct infer_session *s);
void infer_session_reset(struct infer_session *s); /* empties the KV cache */
int infer_session_pos(const struct infer_session *s);
int infer_session_ctx(const struct infer_session *s);
/* Asked before each batch of a prefill (a long prompt takes a while):
 * non-zero stops it. NULL: never. */
void infer_session_set_stop(struct infer_session *s, int (*should_stop)(void *ctx), void *ctx);
/* Processes n prompt tokens after those already in the cache; *logits gets
 * the last position's logits (vocab_size floats). JB_ERR_USAGE if the
 * context would overflow; JB_ERR_INTERRUPTED when should_stop said so (the
 * tokens processed so far stay in the cache). */
int infer_prefill(struct infer_session *s, const int *ids, size_t n, const float **logits,
                  char *err);
/* One token: appends it and returns the next position's logits. */
int infer_decode(struct infer_session *s, int id, const float **logits, char *err);

/* Sampling: temperature 0 is greedy (lowest id wins ties); otherwise
 * softmax with temperature, then top-p (nucleus) when top_p < 1 (0 keeps
 * the most likely token alone), drawn from a seeded xorshift generator so
 * a seed repeats a run. */
struct sampler {
    double temperature;
    double top_p;
    uint64_t state;
};
void sampler_init(struct sampler *s, double temperature, double top_p, uint64_t seed);
int sampler_sample(struct sampler *s, const float *logits, int n);

#endif
