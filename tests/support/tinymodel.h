/*
 * tinymodel.h — writes tiny llama/qwen2 GGUF models for the engine tests,
 * with every feature switchable: tensor types per role, Q/K/V biases, tied
 * or separate output, rope_freqs, a missing or retyped tensor for the
 * error paths. The vocabulary is byte-level BPE in GPT-2's byte alphabet:
 * 256 byte tokens, a few merges of ASCII letter pairs, two control tokens.
 * Weights are seeded uniform random values, quantised by quant.c.
 */
#ifndef JB_TESTS_TINYMODEL_H
#define JB_TESTS_TINYMODEL_H

#include <stdint.h>

#include "infer/gguf.h"

struct tm_options {
    const char *arch;           /* "llama", "qwen2", or any string for error tests */
    enum ggml_type type;        /* attention and FFN matrices */
    enum ggml_type embd_type;   /* token_embd.weight */
    enum ggml_type output_type; /* output.weight (unless tied) */
    int tied;                   /* no output.weight: the embeddings are the output */
    int biases;                 /* attn_q/k/v.bias */
    int rope_freqs;             /* rope_freqs.weight (llama 3 style) */
    int n_layers, dim, n_heads, n_kv_heads, ffn_dim;
    float rope_base;
    uint64_t seed;
    const char *skip_tensor; /* leave this tensor out */
    const char *odd_tensor;  /* write this tensor as odd_type instead */
    enum ggml_type odd_type;
    int embd_rows;         /* rows of token_embd (and output); 0: the vocabulary's */
    int freq_base_str;     /* rope.freq_base written as a string */
    uint32_t value_length; /* attention.value_length; 0: not written */
};

/* Defaults: 2 layers, dim 256, 4 heads, 2 KV heads, FFN 512; qwen2 gets
 * biases and tied embeddings, llama an output matrix and rope_freqs;
 * every tensor of type `type` (norms and biases F32). */
void tm_defaults(struct tm_options *o, const char *arch, enum ggml_type type);
/* Writes the model; 0 or a JB_ERR_* code with err filled. */
int tm_write(const char *path, const struct tm_options *o, char *err);
/* Tokens in the vocabulary every tiny model has. */
int tm_vocab_size(void);

#endif
