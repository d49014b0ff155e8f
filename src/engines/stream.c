#include "engines/stream.h"

#include <string.h>

/* ---- NDJSON ------------------------------------------------------------ */

void ndjson_init(struct ndjson *nd, size_t max_line)
{
    memset(nd, 0, sizeof *nd);
    buf_init(&nd->line, 0);
    nd->max_line = max_line;
}

void ndjson_free(struct ndjson *nd)
{
    buf_free(&nd->line);
}

static int ndjson_too_long(const struct ndjson *nd, char *err)
{
    return err_setf(err, JB_ERR_FORMAT,
                    "stream line %zu (from byte offset %llu) is longer than %zu bytes "
                    "(a line without end)",
                    nd->line_no + 1, (unsigned long long)nd->line_start, nd->max_line);
}

/* Delivers the assembled line (its CR of a CRLF dropped) and starts the
 * next. Empty lines count but are not delivered. */
static int ndjson_emit(struct ndjson *nd, ndjson_line_fn fn, void *user, char *err)
{
    nd->line_no++;
    size_t n = nd->line.len;
    if (n && nd->line.data[n - 1] == '\r')
        n--;
    int rc = 0;
    if (n) {
        nd->line.data[n] = '\0';
        rc = fn(user, nd->line.data, n, nd->line_no, err);
    }
    buf_reset(&nd->line);
    return rc;
}

/* Appends each chunk up to a LF to the current line and hands complete
 * lines over. The line is copied even when it lies whole inside one chunk,
 * so the callback always gets a NUL-terminated string; lines are small and
 * the copy is cheap next to the JSON parse that follows. */
int ndjson_feed(struct ndjson *nd, const void *data, size_t len, ndjson_line_fn fn, void *user,
                char *err)
{
    const char *p = data;
    while (len) {
        const char *lf = memchr(p, '\n', len);
        size_t seg = lf ? (size_t)(lf - p) : len;
        if (nd->line.len == 0)
            nd->line_start = nd->offset;
        if (seg > nd->max_line - nd->line.len)
            return ndjson_too_long(nd, err);
        if (buf_append(&nd->line, p, seg))
            return err_setf(err, JB_ERR_NOMEM, "out of memory reading a stream line");
        nd->offset += seg;
        p += seg;
        len -= seg;
        if (!lf)
            break;
        nd->offset++;
        p++;
        len--;
        int rc = ndjson_emit(nd, fn, user, err);
        if (rc)
            return rc;
    }
    return 0;
}

int ndjson_finish(struct ndjson *nd, ndjson_line_fn fn, void *user, char *err)
{
    if (nd->line.len == 0)
        return 0;
    return ndjson_emit(nd, fn, user, err);
}

/* ---- Server-Sent Events ------------------------------------------------ */

static const unsigned char sse_bom[3] = {0xEF, 0xBB, 0xBF};

void sse_init(struct sse *s, size_t max_line)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->line, 0);
    buf_init(&s->data, 0);
    s->max_line = max_line;
    s->retry_ms = -1;
}

void sse_free(struct sse *s)
{
    buf_free(&s->line);
    buf_free(&s->data);
}

static int sse_dispatch(struct sse *s, sse_event_fn fn, void *user, char *err)
{
    int rc = 0;
    if (s->have_data) {
        struct sse_event ev = {
            .type = s->type[0] ? s->type : "message",
            .data = buf_str(&s->data),
            .data_len = s->data.len,
            .id = s->id,
            .line_no = s->line_no,
        };
        rc = fn(user, &ev, err);
    }
    buf_reset(&s->data);
    s->type[0] = '\0';
    s->have_data = 0;
    return rc;
}

/* One complete line (without its line end), interpreted as the standard's
 * "process the field" step. */
static int sse_line(struct sse *s, sse_event_fn fn, void *user, char *err)
{
    s->line_no++;
    const char *line = buf_str(&s->line);
    size_t len = s->line.len;
    int rc = 0;
    if (len == 0) {
        rc = sse_dispatch(s, fn, user, err);
        goto out;
    }
    if (line[0] == ':')
        goto out; /* comment: servers send these as keep-alives */
    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - val);
    if (vlen && val[0] == ' ') {
        val++;
        vlen--;
    }
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        size_t need = vlen + (s->have_data ? 1 : 0);
        if (need > s->max_line - s->data.len) {
            rc = err_setf(err, JB_ERR_FORMAT,
                          "event data ending at stream line %zu is longer than %zu bytes",
                          s->line_no, s->max_line);
            goto out;
        }
        if ((s->have_data && buf_putc(&s->data, '\n')) || buf_append(&s->data, val, vlen)) {
            rc = err_setf(err, JB_ERR_NOMEM, "out of memory reading a stream event");
            goto out;
        }
        s->have_data = 1;
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = vlen < sizeof s->type - 1 ? vlen : sizeof s->type - 1;
        memcpy(s->type, val, n);
        s->type[n] = '\0';
    } else if (flen == 2 && memcmp(line, "id", 2) == 0) {
        if (!memchr(val, '\0', vlen)) {
            size_t n = vlen < sizeof s->id - 1 ? vlen : sizeof s->id - 1;
            memcpy(s->id, val, n);
            s->id[n] = '\0';
        }
    } else if (flen == 5 && memcmp(line, "retry", 5) == 0) {
        long v = 0;
        size_t i = 0;
        for (; i < vlen && val[i] >= '0' && val[i] <= '9' && v < 100000000; i++)
            v = v * 10 + (val[i] - '0');
        if (vlen && i == vlen)
            s->retry_ms = v;
    }
    /* other fields are ignored, as the standard says */
out:
    buf_reset(&s->line);
    return rc;
}

/* Splits the chunk into lines at CR, LF or CRLF. A CR at the end of one
 * chunk and a LF at the start of the next are one line end (after_cr). The
 * optional BOM is matched byte by byte because it too may be split. */
int sse_feed(struct sse *s, const void *data, size_t len, sse_event_fn fn, void *user, char *err)
{
    const unsigned char *p = data;
    size_t i = 0;
    while (i < len) {
        if (!s->started) {
            if (p[i] == sse_bom[s->bom_seen]) {
                s->bom_seen++;
                s->offset++;
                i++;
                if (s->bom_seen == sizeof sse_bom)
                    s->started = 1;
                continue;
            }
            s->started = 1;
            /* not a BOM after all: the bytes matched so far are text */
            if (s->bom_seen && buf_append(&s->line, sse_bom, s->bom_seen))
                return err_setf(err, JB_ERR_NOMEM, "out of memory reading a stream line");
        }
        unsigned char c = p[i];
        if (s->after_cr) {
            s->after_cr = 0;
            if (c == '\n') {
                s->offset++;
                i++;
                continue;
            }
        }
        if (c == '\r' || c == '\n') {
            s->after_cr = c == '\r';
            s->offset++;
            i++;
            int rc = sse_line(s, fn, user, err);
            if (rc)
                return rc;
            continue;
        }
        size_t j = i;
        while (j < len && p[j] != '\r' && p[j] != '\n')
            j++;
        if (s->line.len == 0)
            s->line_start = s->offset;
        if (j - i > s->max_line - s->line.len)
            return err_setf(err, JB_ERR_FORMAT,
                            "stream line %zu (from byte offset %llu) is longer than %zu bytes "
                            "(a line without end)",
                            s->line_no + 1, (unsigned long long)s->line_start, s->max_line);
        if (buf_append(&s->line, p + i, j - i))
            return err_setf(err, JB_ERR_NOMEM, "out of memory reading a stream line");
        s->offset += j - i;
        i = j;
    }
    return 0;
}

int sse_finish(struct sse *s, sse_event_fn fn, void *user, char *err)
{
    buf_reset(&s->line); /* torn last line */
    return sse_dispatch(s, fn, user, err);
}
