/*
 * buf.h — a growable byte buffer with a size cap, for data that comes from
 * outside (HTTP bodies, stream lines, files). The data is always
 * NUL-terminated so text can be used as a C string.
 *
 * Ownership: the struct is the caller's (stack or embedded); buf_free()
 * releases the heap block. A zeroed struct is an empty buffer with no cap;
 * buf_init() sets a cap (0 = none).
 */
#ifndef JB_COMMON_BUF_H
#define JB_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "common/err.h"

struct buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* 0: no limit */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory */
/* Returns 0, or JB_ERR_NOMEM when out of memory or past the cap (the buffer
 * is unchanged then). */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) JB_PRINTF(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) JB_PRINTF(2, 0);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hands the heap block to the caller (never NULL on success: "" when empty)
 * and leaves b empty. */
char *buf_take(struct buf *b);
const char *buf_str(const struct buf *b); /* "" when empty */

#endif
