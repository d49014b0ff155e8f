/* NDJSON stream framing (Ollama's streams): the input fed whole, one byte
 * at a time, and in chunks whose sizes come from the data itself. The
 * parser promises the same lines, the same line numbers and the same
 * result however the stream is cut, so every split must give what the
 * whole feed gave. */
#include "fuzz.h"

#include "common/buf.h"
#include "common/err.h"
#include "engines/stream.h"

/* Small, so that the cap is reached by fuzzed inputs too. */
#define FUZZ_MAX_LINE 512

/* Records "line_no:len:bytes" for each line. */
static int collect(void *user, const char *line, size_t len, size_t line_no, char *err)
{
    struct buf *b = user;
    if (line[len] != '\0')
        fuzz_fail("line %zu is not NUL-terminated", line_no);
    if (len == 0)
        fuzz_fail("an empty line (%zu) was delivered", line_no);
    if (len > FUZZ_MAX_LINE)
        fuzz_fail("line %zu has %zu bytes, past the cap", line_no, len);
    if (buf_printf(b, "%zu:%zu:", line_no, len) || buf_append(b, line, len))
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    return 0;
}

/* Feeds data in chunks: step 0 = sizes taken from the data's bytes, else
 * a fixed step. Returns the first non-zero result, else finish's. */
static int run(const uint8_t *data, size_t size, size_t step, struct buf *lines, char *err)
{
    struct ndjson nd;
    ndjson_init(&nd, FUZZ_MAX_LINE);
    int rc = 0;
    size_t pos = 0, k = 0;
    while (pos < size && rc == 0) {
        size_t n = fuzz_chunk(data, size, pos, step, &k);
        rc = ndjson_feed(&nd, data + pos, n, collect, lines, err);
        pos += n;
    }
    if (rc == 0)
        rc = ndjson_finish(&nd, collect, lines, err);
    ndjson_free(&nd);
    return rc;
}

int fuzz_ndjson(const uint8_t *data, size_t size)
{
    return fuzz_same_however_split(data, size, run, "lines");
}
