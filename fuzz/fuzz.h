/*
 * fuzz.h — what the libFuzzer targets share.
 *
 * Each target is one file fuzz_<name>.c with one function
 *
 *     int fuzz_<name>(const uint8_t *data, size_t size);
 *
 * that hands the bytes to the real parser (nothing re-implemented here) and
 * returns what the parser returned: 0 or a negative JB_ERR_* code. Where a
 * parser promises a property that can be checked without a second
 * implementation (the same lines whatever the chunking, a decode that gives
 * back the encoded bytes), the target checks it and calls fuzz_fail(),
 * which aborts so libFuzzer keeps the input.
 *
 * fuzz_main.c is libFuzzer's entry point for the target named by
 * JB_FUZZ_TARGET (one executable per target, fuzz/CMakeLists.txt); the
 * unit test tests/fuzz/test_fuzz_replay.c links the same files without it
 * and replays the seed corpora and every kept crash through them.
 *
 * Ownership: fuzz_cstr() returns a heap copy the caller frees.
 */
#ifndef JB_FUZZ_FUZZ_H
#define JB_FUZZ_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "joulebench/joulebench.h"

/* The input as a NUL-terminated string (it may hold NULs before the end;
 * the parsers that take C strings then see the part before the first). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A broken promise: say which, and abort so the fuzzer keeps the input.
 * In the replay test (JB_FUZZ_REPLAY) it fails the test instead, naming
 * the file that was being replayed, and the other files still run. */
#ifdef JB_FUZZ_REPLAY
_Noreturn void fuzz_replay_fail(const char *file, int line, const char *msg);
#define fuzz_fail(...)                                                                             \
    do {                                                                                           \
        char fuzz_msg_[512];                                                                       \
        snprintf(fuzz_msg_, sizeof fuzz_msg_, __VA_ARGS__);                                        \
        fuzz_replay_fail(__FILE__, __LINE__, fuzz_msg_);                                           \
    } while (0)
#else
#define fuzz_fail(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "fuzz: %s:%d: ", __FILE__, __LINE__);                                      \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)
#endif

/* A parser result must be 0 or one of the JB_ERR_* codes. */
static inline int fuzz_rc_known(int rc)
{
    return rc <= 0 && rc >= JB_ERR_UNSUPPORTED;
}

/* The next piece of a stream fed in chunks from pos: step bytes, or with
 * step 0 a size taken from the data's own bytes (*k counts the bytes used
 * for that); never past the end. */
static inline size_t fuzz_chunk(const uint8_t *data, size_t size, size_t pos, size_t step,
                                size_t *k)
{
    size_t n = step ? step : 1 + (size_t)(data[(*k)++ % size] % 37);
    return n > size - pos ? size - pos : n;
}

/* For the stream framings (NDJSON, SSE): run(data, size, step, out, err)
 * feeds data in pieces of step bytes (0: sizes taken from the data) and
 * writes what it parsed to out. The result, the output and the message
 * must not depend on how the stream was cut. what names the output
 * ("lines", "events"). Returns the whole feed's result. */
typedef int (*fuzz_split_fn)(const uint8_t *data, size_t size, size_t step, struct buf *out,
                             char *err);
static inline int fuzz_same_however_split(const uint8_t *data, size_t size, fuzz_split_fn run,
                                          const char *what)
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
            fuzz_fail("step %zu gave other %s than the whole feed", steps[i], what);
        if (rc && strcmp(err, err2) != 0)
            fuzz_fail("step %zu: \"%s\" vs \"%s\"", steps[i], err2, err);
    }
    buf_free(&whole);
    buf_free(&split);
    return rc;
}

/* The targets, by name (fuzz_main.c calls the one named by
 * JB_FUZZ_TARGET; the replay test calls them all). */
int fuzz_gguf(const uint8_t *data, size_t size);
int fuzz_tokenizer_load(const uint8_t *data, size_t size);
int fuzz_tokenizer_encode(const uint8_t *data, size_t size);
int fuzz_ndjson(const uint8_t *data, size_t size);
int fuzz_sse(const uint8_t *data, size_t size);
int fuzz_sensors_parse(const uint8_t *data, size_t size);
int fuzz_manifest(const uint8_t *data, size_t size);
int fuzz_csv(const uint8_t *data, size_t size);
int fuzz_grade_extract(const uint8_t *data, size_t size);
int fuzz_ioreport(const uint8_t *data, size_t size);
int fuzz_report_load(const uint8_t *data, size_t size);
int fuzz_report_charts(const uint8_t *data, size_t size);
int fuzz_suite(const uint8_t *data, size_t size);

#endif
