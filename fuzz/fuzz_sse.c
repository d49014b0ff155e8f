/* Server-Sent Events framing (OpenAI-compatible streams): the input fed
 * whole, one byte at a time, and in chunks whose sizes come from the data
 * itself. Events (type, data, id, line number) and the result must be the
 * same whichever way the stream is cut: a CR at a chunk's end followed by
 * an LF in the next, a BOM split in two, a field name cut in half. */
#include "fuzz.h"

#include "common/buf.h"
#include "common/err.h"
#include "engines/stream.h"

#define FUZZ_MAX_LINE 512

static int collect(void *user, const struct sse_event *ev, char *err)
{
    struct buf *b = user;
    if (ev->data[ev->data_len] != '\0')
        fuzz_fail("event data at line %zu is not NUL-terminated", ev->line_no);
    if (ev->data_len > FUZZ_MAX_LINE)
        fuzz_fail("event data of %zu bytes, past the cap", ev->data_len);
    if (buf_printf(b, "%zu|%s|%s|%zu:", ev->line_no, ev->type, ev->id, ev->data_len) ||
        buf_append(b, ev->data, ev->data_len))
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    return 0;
}

static int run(const uint8_t *data, size_t size, size_t step, struct buf *events, char *err)
{
    struct sse s;
    sse_init(&s, FUZZ_MAX_LINE);
    int rc = 0;
    size_t pos = 0, k = 0;
    while (pos < size && rc == 0) {
        size_t n = step ? step : 1 + (size_t)(data[k++ % size] % 37);
        if (n > size - pos)
            n = size - pos;
        rc = sse_feed(&s, data + pos, n, collect, events, err);
        pos += n;
    }
    if (rc == 0)
        rc = sse_finish(&s, collect, events, err);
    if (buf_printf(events, "retry=%ld", s.retry_ms))
        abort();
    sse_free(&s);
    return rc;
}

int fuzz_sse(const uint8_t *data, size_t size)
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
            fuzz_fail("step %zu gave other events than the whole feed", steps[i]);
        if (rc && strcmp(err, err2) != 0)
            fuzz_fail("step %zu: \"%s\" vs \"%s\"", steps[i], err2, err);
    }
    buf_free(&whole);
    buf_free(&split);
    return rc;
}
