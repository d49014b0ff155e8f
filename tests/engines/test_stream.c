/* The NDJSON and SSE parsers: a reference stream fed in every possible
 * split (two chunks at every boundary, three chunks at every pair of
 * boundaries, byte by byte) must give the same lines and events as the
 * whole; CRLF, lone CR, UTF-8 sequences and the BOM may all be cut; line
 * caps hold memory down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engines/stream.h"

/* ---- NDJSON ------------------------------------------------------------ */

/* Lines with CRLF, an empty line, a blank CRLF line, and multi-byte UTF-8
 * (é, €, an emoji) so that cuts fall inside sequences. */
static const char nd_stream[] = "{\"a\":\"h\xc3\xa9llo\"}\r\n"
                                "\n"
                                "{\"b\":2}\n"
                                "\r\n"
                                "{\"c\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}\r\n"
                                "{\"d\":true}\n";
static const char nd_expect[] = "1:{\"a\":\"h\xc3\xa9llo\"}|"
                                "3:{\"b\":2}|"
                                "5:{\"c\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}|"
                                "6:{\"d\":true}|";

static int nd_collect(void *user, const char *line, size_t len, size_t line_no, char *err)
{
    (void)err;
    struct buf *b = user;
    assert_int_equal(strlen(line), len); /* NUL-terminated at len */
    buf_printf(b, "%zu:%.*s|", line_no, (int)len, line);
    return 0;
}

/* Feeds stream in the chunks given by cut points (ascending, within len). */
static void nd_run(const char *s, size_t len, const size_t *cuts, size_t ncuts, struct buf *out)
{
    struct ndjson nd;
    char err[ERR_LEN] = "";
    ndjson_init(&nd, 1024);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_int_equal(ndjson_feed(&nd, s + at, end - at, nd_collect, out, err), 0);
        at = end;
    }
    assert_int_equal(ndjson_finish(&nd, nd_collect, out, err), 0);
    assert_true(nd.offset == len);
    ndjson_free(&nd);
}

static void test_ndjson_every_split(void **state)
{
    (void)state;
    size_t len = sizeof nd_stream - 1;
    struct buf out = {0};
    nd_run(nd_stream, len, NULL, 0, &out);
    assert_string_equal(buf_str(&out), nd_expect);
    for (size_t i = 0; i <= len; i++) {
        buf_reset(&out);
        nd_run(nd_stream, len, &i, 1, &out);
        assert_string_equal(buf_str(&out), nd_expect);
    }
    for (size_t i = 0; i <= len; i++)
        for (size_t j = i; j <= len; j++) {
            size_t cuts[2] = {i, j};
            buf_reset(&out);
            nd_run(nd_stream, len, cuts, 2, &out);
            assert_string_equal(buf_str(&out), nd_expect);
        }
    /* byte by byte */
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    buf_reset(&out);
    nd_run(nd_stream, len, cuts, len - 1, &out);
    assert_string_equal(buf_str(&out), nd_expect);
    free(cuts);
    buf_free(&out);
}

static void test_ndjson_last_line_without_lf(void **state)
{
    (void)state;
    struct ndjson nd;
    struct buf out = {0};
    char err[ERR_LEN];
    ndjson_init(&nd, 64);
    assert_int_equal(ndjson_feed(&nd, "{\"x\":1}\n{\"y\"", 12, nd_collect, &out, err), 0);
    assert_string_equal(buf_str(&out), "1:{\"x\":1}|");
    assert_int_equal(ndjson_feed(&nd, ":2}", 3, nd_collect, &out, err), 0);
    assert_int_equal(ndjson_finish(&nd, nd_collect, &out, err), 0);
    assert_string_equal(buf_str(&out), "1:{\"x\":1}|2:{\"y\":2}|");
    ndjson_free(&nd);
    buf_free(&out);
}

/* An endless line is an error once it passes the cap, wherever the chunks
 * fall, and the buffer never grows far beyond the cap. */
static void test_ndjson_line_cap(void **state)
{
    (void)state;
    enum { CAP = 64 * 1024 };
    struct ndjson nd;
    struct buf out = {0};
    char err[ERR_LEN] = "";
    ndjson_init(&nd, CAP);
    assert_int_equal(ndjson_feed(&nd, "{}\n", 3, nd_collect, &out, err), 0);
    char chunk[4000];
    memset(chunk, 'a', sizeof chunk);
    int rc = 0;
    size_t fed = 0;
    while (!rc && fed < 10u * CAP) {
        rc = ndjson_feed(&nd, chunk, sizeof chunk, nd_collect, &out, err);
        fed += sizeof chunk;
    }
    assert_int_equal(rc, JB_ERR_FORMAT);
    assert_true(fed <= CAP + sizeof chunk);
    assert_true(nd.line.cap <= 2 * CAP);
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, "byte offset 3"));
    ndjson_free(&nd);

    /* exactly at the cap is fine, one more byte is not */
    ndjson_init(&nd, 8);
    buf_reset(&out);
    assert_int_equal(ndjson_feed(&nd, "12345678\n", 9, nd_collect, &out, err), 0);
    assert_string_equal(buf_str(&out), "1:12345678|");
    assert_int_equal(ndjson_feed(&nd, "123456789\n", 10, nd_collect, &out, err), JB_ERR_FORMAT);
    ndjson_free(&nd);
    buf_free(&out);
}

static int nd_stop_at_2(void *user, const char *line, size_t len, size_t line_no, char *err)
{
    (void)user;
    (void)line;
    (void)len;
    if (line_no == 2)
        return err_setf(err, JB_ERR_INTERRUPTED, "stopped");
    return 0;
}

static void test_ndjson_callback_stops(void **state)
{
    (void)state;
    struct ndjson nd;
    char err[ERR_LEN] = "";
    ndjson_init(&nd, 64);
    assert_int_equal(ndjson_feed(&nd, "a\nb\nc\n", 6, nd_stop_at_2, NULL, err), JB_ERR_INTERRUPTED);
    assert_string_equal(err, "stopped");
    ndjson_free(&nd);
}

/* ---- SSE --------------------------------------------------------------- */

/* A BOM, a comment, a named event with two data lines (one without the
 * space after the colon), CRLF, a lone-CR event, an id, an event with an
 * empty data line, an unknown field, and a retry. */
static const char sse_stream[] = "\xef\xbb\xbf"
                                 ": keep-alive\r\n"
                                 "event: ping\r\n"
                                 "data: a\r\n"
                                 "data:b\r\n"
                                 "\r\n"
                                 "data: {\"x\":\"\xe2\x82\xac\"}\r"
                                 "\r"
                                 "id: 7\n"
                                 "foo: bar\n"
                                 "retry: 1500\n"
                                 "data: [DONE]\n"
                                 "\n"
                                 "event: nothing\n"
                                 "\n"
                                 "data\n"
                                 "\n";
static const char sse_expect[] = "ping||a\nb|5;"
                                 "message||{\"x\":\"\xe2\x82\xac\"}|7;"
                                 "message|7|[DONE]|12;"
                                 "message|7||16;";

static int sse_collect(void *user, const struct sse_event *ev, char *err)
{
    (void)err;
    struct buf *b = user;
    assert_int_equal(strlen(ev->data), ev->data_len);
    buf_printf(b, "%s|%s|%.*s|%zu;", ev->type, ev->id, (int)ev->data_len, ev->data, ev->line_no);
    return 0;
}

static void sse_run(const char *s, size_t len, const size_t *cuts, size_t ncuts, struct buf *out,
                    long *retry)
{
    struct sse p;
    char err[ERR_LEN] = "";
    sse_init(&p, 1024);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_int_equal(sse_feed(&p, s + at, end - at, sse_collect, out, err), 0);
        at = end;
    }
    assert_int_equal(sse_finish(&p, sse_collect, out, err), 0);
    assert_true(p.offset == len);
    if (retry)
        *retry = p.retry_ms;
    sse_free(&p);
}

static void test_sse_every_split(void **state)
{
    (void)state;
    size_t len = sizeof sse_stream - 1;
    struct buf out = {0};
    long retry = 0;
    sse_run(sse_stream, len, NULL, 0, &out, &retry);
    assert_string_equal(buf_str(&out), sse_expect);
    assert_int_equal(retry, 1500);
    for (size_t i = 0; i <= len; i++) {
        buf_reset(&out);
        sse_run(sse_stream, len, &i, 1, &out, NULL);
        assert_string_equal(buf_str(&out), sse_expect);
    }
    for (size_t i = 0; i <= len; i++)
        for (size_t j = i; j <= len; j++) {
            size_t cuts[2] = {i, j};
            buf_reset(&out);
            sse_run(sse_stream, len, cuts, 2, &out, NULL);
            assert_string_equal(buf_str(&out), sse_expect);
        }
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    buf_reset(&out);
    sse_run(sse_stream, len, cuts, len - 1, &out, NULL);
    assert_string_equal(buf_str(&out), sse_expect);
    free(cuts);
    buf_free(&out);
}

/* A CR that ends one chunk must not turn the LF starting the next chunk
 * into an extra (dispatching) empty line. */
static void test_sse_crlf_split_is_one_line_end(void **state)
{
    (void)state;
    struct sse p;
    struct buf out = {0};
    char err[ERR_LEN];
    sse_init(&p, 64);
    assert_int_equal(sse_feed(&p, "data: a\r", 8, sse_collect, &out, err), 0);
    assert_int_equal(sse_feed(&p, "\ndata: b\r", 9, sse_collect, &out, err), 0);
    assert_int_equal(sse_feed(&p, "\n\r", 2, sse_collect, &out, err), 0);
    assert_int_equal(sse_feed(&p, "\n", 1, sse_collect, &out, err), 0);
    assert_string_equal(buf_str(&out), "message||a\nb|3;");
    sse_free(&p);
    buf_free(&out);
}

static void test_sse_no_bom_and_partial_bom(void **state)
{
    (void)state;
    struct sse p;
    struct buf out = {0};
    char err[ERR_LEN];
    /* "\xef\xbb" then text: not a BOM, the bytes stay in the line */
    sse_init(&p, 64);
    assert_int_equal(sse_feed(&p, "\xef\xbb", 2, sse_collect, &out, err), 0);
    assert_int_equal(sse_feed(&p, "x\ndata: 1\n\n", 11, sse_collect, &out, err), 0);
    assert_string_equal(buf_str(&out), "message||1|3;");
    sse_free(&p);
    buf_free(&out);
}

static void test_sse_finish(void **state)
{
    (void)state;
    struct sse p;
    struct buf out = {0};
    char err[ERR_LEN];
    /* complete data line, no closing empty line: dispatched at the end */
    sse_init(&p, 64);
    assert_int_equal(sse_feed(&p, "data: [DONE]\n", 13, sse_collect, &out, err), 0);
    assert_string_equal(buf_str(&out), "");
    assert_int_equal(sse_finish(&p, sse_collect, &out, err), 0);
    assert_string_equal(buf_str(&out), "message||[DONE]|1;");
    sse_free(&p);
    /* a torn line is dropped */
    buf_reset(&out);
    sse_init(&p, 64);
    assert_int_equal(sse_feed(&p, "data: {\"a\":", 11, sse_collect, &out, err), 0);
    assert_int_equal(sse_finish(&p, sse_collect, &out, err), 0);
    assert_string_equal(buf_str(&out), "");
    sse_free(&p);
    buf_free(&out);
}

static void test_sse_caps(void **state)
{
    (void)state;
    enum { CAP = 32 * 1024 };
    struct sse p;
    struct buf out = {0};
    char err[ERR_LEN] = "";
    /* an endless line */
    sse_init(&p, CAP);
    char chunk[3000];
    memset(chunk, 'z', sizeof chunk);
    memcpy(chunk, "data: ", 6);
    int rc = 0;
    size_t fed = 0;
    while (!rc && fed < 10u * CAP) {
        rc = sse_feed(&p, chunk, sizeof chunk, sse_collect, &out, err);
        fed += sizeof chunk;
    }
    assert_int_equal(rc, JB_ERR_FORMAT);
    assert_true(fed <= CAP + sizeof chunk);
    assert_true(p.line.cap <= 2 * CAP);
    assert_non_null(strstr(err, "line 1"));
    sse_free(&p);
    /* endless event: many short data lines, never an empty line */
    sse_init(&p, CAP);
    rc = 0;
    fed = 0;
    while (!rc && fed < 10u * CAP) {
        rc = sse_feed(&p, "data: 0123456789\n", 17, sse_collect, &out, err);
        fed += 17;
    }
    assert_int_equal(rc, JB_ERR_FORMAT);
    assert_true(p.data.cap <= 2 * CAP);
    assert_non_null(strstr(err, "event data"));
    assert_string_equal(buf_str(&out), "");
    sse_free(&p);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ndjson_every_split),
        cmocka_unit_test(test_ndjson_last_line_without_lf),
        cmocka_unit_test(test_ndjson_line_cap),
        cmocka_unit_test(test_ndjson_callback_stops),
        cmocka_unit_test(test_sse_every_split),
        cmocka_unit_test(test_sse_crlf_split_is_one_line_end),
        cmocka_unit_test(test_sse_no_bom_and_partial_bom),
        cmocka_unit_test(test_sse_finish),
        cmocka_unit_test(test_sse_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
