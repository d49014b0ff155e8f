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
 * Chat templates: ChatML (qwen2: <|im_start|>role\n...<|im_end|>\n) and
 * Llama 3 (<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>),
 * chosen from tokenizer.chat_template when present, else from the
 * architecture and the special tokens the vocabulary has.
 *
 * Ownership: tokenizer_from_gguf() allocates; it copies what it needs, so
 * the GGUF buffer may go away afterwards. tokenizer_free() releases it.
 * Encoded id arrays are heap blocks the caller frees.
 */
#ifndef JB_INFER_TOKENIZER_H
#define JB_INFER_TOKENIZER_H

#include <stddef.h>

#include "common/buf.h"
#include "infer/gguf.h"

struct tokenizer;

enum tokenizer_template { TOKENIZER_TEMPLATE_NONE = 0, TOKENIZER_TEMPLATE_CHATML, TOKENIZER_TEMPLATE_LLAMA3 };

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
int tokenizer_bos(const struct tokenizer *t); /* -1 if none */
int tokenizer_eos(const struct tokenizer *t);
int tokenizer_add_bos(const struct tokenizer *t); /* tokenizer.ggml.add_bos_token */
/* 1 for ids that end a generation (eos, eot, <|im_end|>, <|eot_id|>, ...). */
int tokenizer_is_eog(const struct tokenizer *t, int id);
enum tokenizer_template tokenizer_template(const struct tokenizer *t);
/* Formats one system + user turn and opens the assistant turn. system may
 * be NULL. With TOKENIZER_TEMPLATE_NONE the prompt is used as it is. */
int tokenizer_chat_format(const struct tokenizer *t, const char *system, const char *user,
                          struct buf *out);

#endif
