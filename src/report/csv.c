#include "report/csv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static int needs_quotes(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t')
        return 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
            return 1;
    return 0;
}

int csv_put_field(struct buf *b, int first, const char *s, size_t len)
{
    if (!first && buf_putc(b, ','))
        return JB_ERR_NOMEM;
    if (!s)
        return 0;
    int q = needs_quotes(s, len);
    if (q && buf_putc(b, '"'))
        return JB_ERR_NOMEM;
    /* Copy runs between the bytes that need care. */
    size_t run = 0;
    for (size_t i = 0; i <= len; i++) {
        int special = i < len && (s[i] == '"' || s[i] == '\0');
        if (i < len && !special)
            continue;
        if (buf_append(b, s + run, i - run))
            return JB_ERR_NOMEM;
        if (i < len && s[i] == '"' && buf_puts(b, "\"\""))
            return JB_ERR_NOMEM;
        run = i + 1;
    }
    if (q && buf_putc(b, '"'))
        return JB_ERR_NOMEM;
    return 0;
}

int csv_put_str(struct buf *b, int first, const char *s)
{
    return csv_put_field(b, first, s, s ? strlen(s) : 0);
}

int csv_put_num(struct buf *b, int first, double v)
{
    if (!isfinite(v))
        return csv_put_field(b, first, NULL, 0);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.10g", v == 0 ? 0.0 : v); /* no "-0" */
    return csv_put_str(b, first, tmp);
}

int csv_put_int(struct buf *b, int first, long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v);
    return csv_put_str(b, first, tmp);
}

int csv_end_row(struct buf *b)
{
    return buf_puts(b, "\r\n");
}

static int row_add(struct csv_row *row, size_t off, size_t len)
{
    if (row->n == row->cap) {
        size_t cap = row->cap ? row->cap * 2 : 16;
        size_t *o = realloc(row->off, cap * sizeof *o);
        if (!o)
            return JB_ERR_NOMEM;
        row->off = o;
        size_t *l = realloc(row->len, cap * sizeof *l);
        if (!l)
            return JB_ERR_NOMEM;
        row->len = l;
        row->cap = cap;
    }
    row->off[row->n] = off;
    row->len[row->n] = len;
    row->n++;
    return 0;
}

/* A small state machine over the bytes of one row: unquoted text, quoted
 * text, and the character after a closing quote. Fields are copied without
 * their quotes into row->text, each followed by a NUL. */
int csv_next_row(const char *buf, size_t len, size_t *pos, size_t *line, struct csv_row *row,
                 char *err)
{
    size_t i = *pos;
    row->n = 0;
    buf_reset(&row->text);
    if (i >= len)
        return 0;
    size_t row_line = *line, line_start = i;
    size_t field_off = 0;
    int quoted = 0, after_quote = 0;
    for (;;) {
        int at_end = i >= len;
        char c = at_end ? '\n' : buf[i];
        if (quoted && at_end)
            return err_setf(err, JB_ERR_FORMAT,
                            "line %zu: a quoted field is never closed (add the closing '\"')",
                            row_line);
        if (quoted) {
            if (c == '"') {
                if (i + 1 < len && buf[i + 1] == '"') {
                    if (buf_putc(&row->text, '"'))
                        return JB_ERR_NOMEM;
                    i += 2;
                    continue;
                }
                quoted = 0;
                after_quote = 1;
                i++;
                continue;
            }
            if (c == '\n') {
                (*line)++;
                line_start = i + 1;
            }
            if (c != '\0' && buf_putc(&row->text, c))
                return JB_ERR_NOMEM;
            i++;
            continue;
        }
        if (c == ',' || c == '\n' || (c == '\r' && (i + 1 >= len || buf[i + 1] == '\n'))) {
            if (row->n >= CSV_MAX_FIELDS)
                return err_setf(err, JB_ERR_FORMAT, "line %zu: more than %d fields", row_line,
                                CSV_MAX_FIELDS);
            size_t flen = row->text.len - field_off;
            if (buf_putc(&row->text, '\0') || row_add(row, field_off, flen))
                return JB_ERR_NOMEM;
            field_off = row->text.len;
            after_quote = 0;
            if (c == ',') {
                i++;
                continue;
            }
            i += at_end ? 0 : (c == '\r' ? 2 : 1);
            if (!at_end)
                (*line)++;
            break;
        }
        if (after_quote)
            return err_setf(err, JB_ERR_FORMAT,
                            "line %zu, column %zu: unexpected '%c' after a closing quote "
                            "(quotes inside a field are written twice: \"\")",
                            *line, i - line_start + 1, c);
        if (c == '"' && row->text.len == field_off) {
            quoted = 1;
            i++;
            continue;
        }
        if (c != '\0' && buf_putc(&row->text, c))
            return JB_ERR_NOMEM;
        i++;
    }
    *pos = i;
    return 1;
}

const char *csv_field(const struct csv_row *row, size_t i)
{
    if (i >= row->n)
        return "";
    return row->text.data + row->off[i];
}

void csv_row_free(struct csv_row *row)
{
    free(row->off);
    free(row->len);
    buf_free(&row->text);
    memset(row, 0, sizeof *row);
}
