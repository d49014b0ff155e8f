/*
 * csv.h — RFC 4180 comma-separated values: a writer for metrics.csv and
 * responses.csv, and a reader for timeline.csv (and for the tests, which
 * read the writer's output back).
 *
 * Writing: a field is quoted when it holds a comma, a double quote, CR, LF,
 * or leading/trailing blanks; quotes inside are doubled; rows end in CRLF.
 * Text is copied byte for byte (UTF-8 stays UTF-8), except NUL bytes, which
 * a text file cannot carry and which are dropped.
 *
 * Reading is a pure function of (buf, len): csv_next_row() takes one row at
 * *pos and advances it. Rows may end in CRLF or LF; quoted fields may span
 * lines. Ownership: struct csv_row is the caller's; csv_row_free() releases
 * what the reader allocated into it.
 */
#ifndef JB_REPORT_CSV_H
#define JB_REPORT_CSV_H

#include <stddef.h>

#include "common/buf.h"

#define CSV_MAX_FIELDS 4096

/* Appends one field (len bytes of s; s may be NULL for an empty field),
 * preceded by a comma unless first. Returns 0 or JB_ERR_NOMEM. */
int csv_put_field(struct buf *b, int first, const char *s, size_t len);
int csv_put_str(struct buf *b, int first, const char *s); /* NULL: empty */
/* A number in the shortest form that keeps 10 significant digits; a
 * non-finite value (a missing measurement) is an empty field, never 0. */
int csv_put_num(struct buf *b, int first, double v);
int csv_put_int(struct buf *b, int first, long long v);
int csv_end_row(struct buf *b);

struct csv_row {
    size_t n;    /* fields in the row */
    size_t *off; /* (n) offsets of each field in text.data */
    size_t *len; /* (n) byte lengths (fields may contain NUL-free text only) */
    size_t cap;
    struct buf text; /* the unquoted fields, each NUL-terminated */
};

/* Reads the row starting at *pos (1-based line number in *line, updated).
 * Returns 1 with a row, 0 at the end of the data, or a negative JB_ERR_*
 * with err naming the line and column (an unterminated quote, a stray
 * character after a closing quote, too many fields). */
int csv_next_row(const char *buf, size_t len, size_t *pos, size_t *line, struct csv_row *row,
                 char *err);
/* Field i as a C string ("" when i >= n). */
const char *csv_field(const struct csv_row *row, size_t i);
void csv_row_free(struct csv_row *row);

#endif
