/*
 * stream.h — the two framings streamed LLM answers come in, as pure
 * parsers over byte chunks that may be cut anywhere (inside a UTF-8
 * sequence, between the CR and LF of a CRLF, inside a field name):
 *
 *   NDJSON (Ollama): one JSON document per line, lines end in LF or CRLF.
 *   SSE (OpenAI-compatible servers): Server-Sent Events as the WHATWG HTML
 *   standard defines them: lines end in CRLF, LF or a lone CR; "field:
 *   value" lines; ':' starts a comment; an empty line dispatches the event;
 *   several data lines join with '\n'; a BOM at the very start is dropped.
 *
 *     struct ndjson nd;
 *     ndjson_init(&nd, 1 << 20);
 *     rc = ndjson_feed(&nd, chunk, len, on_line, user, err);  (repeat)
 *     rc = ndjson_finish(&nd, on_line, user, err);
 *     ndjson_free(&nd);
 *
 * A line (or an SSE event's data) longer than the cap is JB_ERR_FORMAT with
 * a message giving the line number and byte offset: an endless line costs
 * at most the cap in memory. The callbacks' non-zero return stops the feed
 * and is returned as is (they may write err).
 *
 * Ownership: the structs are the caller's; *_free() releases their heap
 * buffers. Pointers passed to callbacks are valid only during the call; the
 * line or data is NUL-terminated at [len].
 */
#ifndef JB_ENGINES_STREAM_H
#define JB_ENGINES_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Called for every non-empty line, without its line end. line_no counts
 * from 1 (empty lines included). */
typedef int (*ndjson_line_fn)(void *user, const char *line, size_t len, size_t line_no, char *err);

struct ndjson {
    struct buf line;     /* the line being assembled */
    size_t max_line;     /* bytes */
    size_t line_no;      /* lines completed so far */
    uint64_t offset;     /* bytes fed so far */
    uint64_t line_start; /* stream offset of the line being assembled */
};

void ndjson_init(struct ndjson *nd, size_t max_line);
void ndjson_free(struct ndjson *nd);
int ndjson_feed(struct ndjson *nd, const void *data, size_t len, ndjson_line_fn fn, void *user,
                char *err);
/* End of stream: a last line without its LF is still delivered. */
int ndjson_finish(struct ndjson *nd, ndjson_line_fn fn, void *user, char *err);

/* One dispatched event. type is "message" unless an event: field said
 * otherwise; id is the last id: seen ("" if none). */
struct sse_event {
    const char *type;
    const char *data;
    size_t data_len;
    const char *id;
    size_t line_no; /* line of the empty line that dispatched it */
};
typedef int (*sse_event_fn)(void *user, const struct sse_event *ev, char *err);

struct sse {
    struct buf line; /* the line being assembled */
    struct buf data; /* data lines of the current event, joined by '\n' */
    char type[64];
    char id[128];
    int have_data;   /* a data: field was seen in this event */
    int after_cr;    /* the last byte was CR: a following LF belongs to it */
    int started;     /* past the optional BOM */
    size_t bom_seen; /* BOM bytes matched so far */
    size_t max_line; /* cap for one line and for one event's data */
    size_t line_no;
    uint64_t offset;
    uint64_t line_start;
    long retry_ms; /* last retry: field, -1 none */
};

void sse_init(struct sse *s, size_t max_line);
void sse_free(struct sse *s);
int sse_feed(struct sse *s, const void *data, size_t len, sse_event_fn fn, void *user, char *err);
/* End of stream. A line cut off without its line end is torn and dropped,
 * as the standard says. An event whose data lines are complete but whose
 * closing empty line never came is still dispatched: the standard drops
 * it, but some servers end their stream that way, and its data is whole. */
int sse_finish(struct sse *s, sse_event_fn fn, void *user, char *err);

#endif
