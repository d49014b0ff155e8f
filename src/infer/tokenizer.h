/*
 * tokenizer.h — byte-level BPE as GGUF models describe it
 * (tokenizer.ggml.model "gpt2"): tokenizer.ggml.tokens, .merges,
 * .token_type, .bos_token_id / .eos_token_id / .eot_token_id, and
 * tokenizer.ggml.pre naming the pre-tokenizer rules ("qwen2", "llama-bpe";
 * others fall back to the GPT-2 rule with a warning). Special (control and
 * user-defined) tokens are matched first, whole; the rest is split by the
 * pre-tokenizer regex (PCRE2, Unicode classes), mapped to GPT-2's byte
 * alphabet, and merged by rank. Decoding maps back to raw bytes.
 *
 * Special tokens: CONTROL (token_type 3) texts are matched only when the
 * caller asks (parse_special); USER_DEFINED (4) texts are matched always,
 * as llama.cpp and Hugging Face's tokenizers do for non-special added
 * tokens, so the ids are the ones the model was trained with. With
 * tokenizer.ggml.pre "llama-bpe" a pre-token that is itself in the
 * vocabulary is taken whole before any merge (Llama 3's ignore_merges).
 * Bytes that are not valid UTF-8 are tokenized one byte each.
 *
 * Chat templates: ChatML (qwen2: <|im_start|>role\n...<|im_end|>\n) and
 * Llama 3 (<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>),
 * chosen from tokenizer.chat_template when present, else from the special
 * tokens the vocabulary has. The formatted text carries no BOS: callers add
 * tokenizer_bos() when tokenizer_add_bos() says so. No default system
 * message is invented when system is NULL.
 *
 * Ownership: tokenizer_from_gguf() allocates; it copies what it needs, so
 * the GGUF buffer may go away afterwards. tokenizer_free() releases it.
 * Encoded id arrays are heap blocks the caller frees. A tokenizer is
 * read-only after loading: encode and decode may run on several threads.
 */
#ifndef JB_INFER_TOKENIZER_H
#define JB_INFER_TOKENIZER_H

#include <stddef.h>

#include "common/buf.h"
#include "infer/gguf.h"

struct tokenizer;

enum tokenizer_template {
    TOKENIZER_TEMPLATE_NONE = 0,
    TOKENIZER_TEMPLATE_CHATML,
    TOKENIZER_TEMPLATE_LLAMA3
};

/* token_type values (GGUF tokenizer.ggml.token_type) */
enum tokenizer_token_type {
    TOKENIZER_TYPE_NORMAL = 1,
    TOKENIZER_TYPE_UNKNOWN = 2,
    TOKENIZER_TYPE_CONTROL = 3,
    TOKENIZER_TYPE_USER_DEFINED = 4,
    TOKENIZER_TYPE_UNUSED = 5,
    TOKENIZER_TYPE_BYTE = 6
};

/* JB_ERR_UNSUPPORTED for vocabularies that are not byte-level BPE
 * (tokenizer.ggml.model other than "gpt2"); JB_ERR_FORMAT, naming the key
 * and index, for malformed ones. An unknown tokenizer.ggml.pre falls back
 * to the GPT-2 rule with a warning on stderr. */
int tokenizer_from_gguf(const struct gguf_file *f, struct tokenizer **out, char *err);
void tokenizer_free(struct tokenizer *t);

size_t tokenizer_vocab_size(const struct tokenizer *t);
/* Encodes UTF-8 text. parse_special: 1 = special-token text such as
 * "<|im_start|>" becomes the special id (used on templated prompts); 0 =
 * it is ordinary text. *ids is a heap array the caller frees. */
int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, int parse_special,
                     int **ids, size_t *n_ids, char *err);
/* Appends the bytes of one token (may be part of a UTF-8 sequence; special
 * tokens give their text). */
int tokenizer_decode(const struct tokenizer *t, int id, struct buf *out);
/* The id of a vocabulary entry by its text as stored (GPT-2 alphabet for
 * ordinary tokens: " the" is "\xc4\xa0the"), or -1. */
int tokenizer_find(const struct tokenizer *t, const char *text, size_t len);
int tokenizer_token_type(const struct tokenizer *t, int id); /* 0 for a bad id */
const char *tokenizer_pre_name(const struct tokenizer *t);   /* "qwen2", "llama-bpe", "gpt2" */
int tokenizer_bos(const struct tokenizer *t);                /* -1 if none */
int tokenizer_eos(const struct tokenizer *t);
int tokenizer_add_bos(const struct tokenizer *t); /* tokenizer.ggml.add_bos_token */
/* 1 for ids that end a generation (eos, eot, <|im_end|>, <|eot_id|>, ...). */
int tokenizer_is_eog(const struct tokenizer *t, int id);
enum tokenizer_template tokenizer_template(const struct tokenizer *t);
/* Formats one system + user turn and opens the assistant turn. system may
 * be NULL. With TOKENIZER_TEMPLATE_NONE the prompt is used as it is. */
int tokenizer_chat_format(const struct tokenizer *t, const char *system, const char *user,
                          struct buf *out);

/* Shared with synth, which trains a vocabulary with the same rules. */
/* Appends the GPT-2 byte-alphabet form of raw bytes (space -> U+0120 ...). */
int tokenizer_vocab_text(const void *bytes, size_t n, struct buf *out);
/* Splits UTF-8 text into pre-tokens by the rule named pre ("qwen2",
 * "llama-bpe", anything else: GPT-2), calling piece() for each in order;
 * bytes that are not valid UTF-8 come one per piece. A non-zero return
 * from piece() stops the split and is returned. */
int tokenizer_split(const char *pre, const char *text, size_t len,
                    int (*piece)(void *user, const char *p, size_t n), void *user, char *err);

#endif
