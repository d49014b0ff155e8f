/* Tokenizer loading from a GGUF: gguf_parse(), then tokenizer_from_gguf()
 * on whatever parsed, then one short encode/decode round trip and a chat
 * template with what was loaded. Inputs are bounded by the runner
 * (-max_len), so a vocabulary stays small. */
#include "fuzz.h"

#include "common/buf.h"
#include "common/err.h"
#include "infer/gguf.h"
#include "infer/tokenizer.h"

static const char sample[] = "Hello, world! <|im_start|>user\n  x = 3.14;\xe4\xbd\xa0\xff";

int fuzz_tokenizer_load(const uint8_t *data, size_t size)
{
    struct gguf_file f;
    char err[ERR_LEN] = "";
    int rc = gguf_parse(data, size, &f, err);
    if (rc) {
        gguf_free(&f);
        return rc;
    }
    struct tokenizer *t = NULL;
    rc = tokenizer_from_gguf(&f, &t, err);
    gguf_free(&f); /* the tokenizer copies what it needs */
    if (rc) {
        if (t)
            fuzz_fail("tokenizer_from_gguf failed (%d) but left a tokenizer", rc);
        return rc;
    }
    size_t nv = tokenizer_vocab_size(t);
    struct buf out = {0};
    for (int special = 0; special < 2; special++) {
        int *ids = NULL;
        size_t n = 0;
        if (tokenizer_encode(t, sample, sizeof sample - 1, special, &ids, &n, err) == 0) {
            buf_reset(&out);
            for (size_t i = 0; i < n; i++) {
                if (ids[i] < 0 || (size_t)ids[i] >= nv)
                    fuzz_fail("encode gave id %d of a vocabulary of %zu", ids[i], nv);
                (void)tokenizer_decode(t, ids[i], &out);
                (void)tokenizer_token_type(t, ids[i]);
                (void)tokenizer_is_eog(t, ids[i]);
            }
        }
        free(ids);
    }
    buf_reset(&out);
    (void)tokenizer_chat_format(t, "sys", "hi", &out);
    (void)tokenizer_bos(t);
    (void)tokenizer_eos(t);
    (void)tokenizer_find(t, "a", 1);
    buf_free(&out);
    tokenizer_free(t);
    return 0;
}
