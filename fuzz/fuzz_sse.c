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
        size_t n = fuzz_chunk(data, size, pos, step, &k);
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
    return fuzz_same_however_split(data, size, run, "events");
}
