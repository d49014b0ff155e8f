/* Tokenizer encoding of any bytes with a real vocabulary
 * (tests/data/tokenizer/vocab.gguf, loaded once): the first byte picks
 * parse_special, the rest is the text. Byte-level BPE promises that
 * decoding the ids gives back exactly the bytes encoded, whatever they
 * are (invalid UTF-8 one byte a token, NULs inside, special-token text). */
#include "fuzz.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "infer/gguf.h"
#include "infer/tokenizer.h"

#ifndef JB_FUZZ_VOCAB
#error JB_FUZZ_VOCAB must name the vocabulary file
#endif

static struct tokenizer *vocab;

static void drop_vocab(void)
{
    tokenizer_free(vocab);
    vocab = NULL;
}

static struct tokenizer *load_vocab(void)
{
    if (vocab)
        return vocab;
    struct fs_map map;
    struct gguf_file f;
    char err[ERR_LEN] = "";
    if (gguf_open(JB_FUZZ_VOCAB, &map, &f, err))
        fuzz_fail("%s", err);
    if (tokenizer_from_gguf(&f, &vocab, err))
        fuzz_fail("%s", err);
    gguf_close(&map, &f);
    atexit(drop_vocab);
    return vocab;
}

int fuzz_tokenizer_encode(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct tokenizer *t = load_vocab();
    int special = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int *ids = NULL;
    size_t n = 0;
    char err[ERR_LEN] = "";
    int rc = tokenizer_encode(t, text, len, special, &ids, &n, err);
    if (rc) {
        free(ids);
        return rc;
    }
    struct buf out = {0};
    size_t nv = tokenizer_vocab_size(t);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= nv)
            fuzz_fail("encode gave id %d of a vocabulary of %zu", ids[i], nv);
        if (tokenizer_decode(t, ids[i], &out))
            fuzz_fail("id %d does not decode", ids[i]);
    }
    if (out.len != len || (len && memcmp(out.data, text, len) != 0))
        fuzz_fail("decode(encode(%zu bytes)) gave %zu other bytes", len, out.len);
    buf_free(&out);
    free(ids);
    return 0;
}
