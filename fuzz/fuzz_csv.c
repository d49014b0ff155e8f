/* The CSV reader (timeline.csv, and the writer's output read back): every
 * row of the input, then each row written again by the writer and read
 * back, which must give the same fields (RFC 4180 both ways). */
#include "fuzz.h"

#include "common/buf.h"
#include "common/err.h"
#include "report/csv.h"

/* Writes row and reads it back; the fields must match. */
static void round_trip(const struct csv_row *row)
{
    struct buf out = {0};
    for (size_t i = 0; i < row->n; i++)
        if (csv_put_field(&out, i == 0, csv_field(row, i), row->len[i]))
            abort();
    if (csv_end_row(&out))
        abort();
    struct csv_row back = {0};
    size_t pos = 0, line = 1;
    char err[ERR_LEN] = "";
    int rc = csv_next_row(out.data, out.len, &pos, &line, &back, err);
    if (rc != 1)
        fuzz_fail("the writer's row does not read back (%d: %s)", rc, rc < 0 ? err : "");
    if (pos != out.len)
        fuzz_fail("the writer's row read back as %zu of its %zu bytes", pos, out.len);
    if (back.n != row->n)
        fuzz_fail("%zu fields written, %zu read back", row->n, back.n);
    for (size_t i = 0; i < row->n; i++)
        if (back.len[i] != row->len[i] ||
            memcmp(csv_field(&back, i), csv_field(row, i), row->len[i]) != 0)
            fuzz_fail("field %zu changed in the round trip", i);
    csv_row_free(&back);
    buf_free(&out);
}

int fuzz_csv(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct csv_row row = {0};
    size_t pos = 0, line = 1;
    char err[ERR_LEN] = "";
    int rc;
    size_t rows = 0;
    while ((rc = csv_next_row(buf, size, &pos, &line, &row, err)) == 1) {
        if (pos > size)
            fuzz_fail("position %zu past the end (%zu)", pos, size);
        if (++rows > size + 1)
            fuzz_fail("more rows than bytes: the reader does not advance");
        for (size_t i = 0; i < row.n; i++)
            if (strlen(csv_field(&row, i)) != row.len[i])
                fuzz_fail("field %zu holds a NUL", i);
        round_trip(&row);
    }
    if (!fuzz_rc_known(rc))
        fuzz_fail("unknown result %d", rc);
    csv_row_free(&row);
    return rc;
}
