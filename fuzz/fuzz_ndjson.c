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
        size_t n = step ? step : 1 + (size_t)(data[k++ % size] % 37);
        if (n > size - pos)
            n = size - pos;
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
    struct buf whole = {0}, split = {0};
    char err[ERR_LEN] = "", err2[ERR_LEN] = "";
    int rc = run(data, size, size ? size : 1, &whole, err);
    if (!fuzz_rc_known(rc))
        fuzz_fail("unknown result %d", rc);
    static const size_t steps[] = {1, 0, 2, 7};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        buf_reset(&split);
        int rc2 = run(data, size, steps[i], &split, err2);
        if (rc2 != rc)
            fuzz_fail("step %zu gave %d, the whole feed %d", steps[i], rc2, rc);
        if (split.len != whole.len || (whole.len && memcmp(split.data, whole.data, whole.len)))
            fuzz_fail("step %zu gave other lines than the whole feed", steps[i]);
        if (rc && strcmp(err, err2) != 0)
            fuzz_fail("step %zu: \"%s\" vs \"%s\"", steps[i], err2, err);
    }
    buf_free(&whole);
    buf_free(&split);
    return rc;
}
