/* CSV writing and reading: every awkward byte survives a round trip, and a
 * malformed file is reported with its line and column. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "report/csv.h"

static void test_quoting_rules(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(csv_put_str(&b, 1, "plain"), 0);
    assert_int_equal(csv_put_str(&b, 0, "a,b"), 0);
    assert_int_equal(csv_put_str(&b, 0, "say \"hi\""), 0);
    assert_int_equal(csv_put_str(&b, 0, NULL), 0);
    assert_int_equal(csv_put_str(&b, 0, " pad"), 0);
    assert_int_equal(csv_end_row(&b), 0);
    assert_string_equal(buf_str(&b), "plain,\"a,b\",\"say \"\"hi\"\"\",,\" pad\"\r\n");
    buf_free(&b);
}

static void test_numbers(void **state)
{
    (void)state;
    struct buf b = {0};
    csv_put_num(&b, 1, 0.1);
    csv_put_num(&b, 0, NAN);
    csv_put_num(&b, 0, -0.0);
    csv_put_num(&b, 0, 1234567.891);
    csv_put_num(&b, 0, 2.5e-9);
    csv_put_int(&b, 0, -42);
    assert_string_equal(buf_str(&b), "0.1,,0,1234567.891,2.5e-09,-42");
    buf_free(&b);
}

/* Writes rows of awkward text, reads them back, compares byte for byte. */
static void test_round_trip(void **state)
{
    (void)state;
    const char *fields[][4] = {
        {"id", "text", "empty", "last"},
        {"r1", "comma, inside", "", "x"},
        {"r2", "quote \" and \"\"double\"\"", "", "y"},
        {"r3", "line\nbreak and CRLF\r\nend", "", "z"},
        {"r4", "UTF-8: naïve → 日本語 🚀", "", " spaced "},
        {"r5", "\"starts with a quote", ",", "\r"},
    };
    size_t nrows = sizeof fields / sizeof fields[0];
    struct buf b = {0};
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < 4; c++)
            assert_int_equal(csv_put_str(&b, c == 0, fields[r][c]), 0);
        csv_end_row(&b);
    }
    struct csv_row row = {0};
    size_t pos = 0, line = 1;
    char err[ERR_LEN];
    for (size_t r = 0; r < nrows; r++) {
        assert_int_equal(csv_next_row(b.data, b.len, &pos, &line, &row, err), 1);
        assert_int_equal(row.n, 4);
        for (size_t c = 0; c < 4; c++)
            assert_string_equal(csv_field(&row, c), fields[r][c]);
    }
    assert_int_equal(csv_next_row(b.data, b.len, &pos, &line, &row, err), 0);
    /* 6 rows, one of them spanning two extra lines (LF and CRLF inside). */
    assert_int_equal(line, 9);
    csv_row_free(&row);
    buf_free(&b);
}

static void test_nul_dropped(void **state)
{
    (void)state;
    struct buf b = {0};
    const char s[] = {'a', '\0', 'b'};
    csv_put_field(&b, 1, s, sizeof s);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "ab", 2);
    buf_free(&b);
}

static void test_lf_rows_and_missing_final_newline(void **state)
{
    (void)state;
    const char *text = "t_s,phase\n0.5,decode\n1.0,\"pre\nfill\"";
    struct csv_row row = {0};
    size_t pos = 0, line = 1;
    char err[ERR_LEN];
    assert_int_equal(csv_next_row(text, strlen(text), &pos, &line, &row, err), 1);
    assert_string_equal(csv_field(&row, 1), "phase");
    assert_int_equal(csv_next_row(text, strlen(text), &pos, &line, &row, err), 1);
    assert_string_equal(csv_field(&row, 0), "0.5");
    assert_int_equal(csv_next_row(text, strlen(text), &pos, &line, &row, err), 1);
    assert_string_equal(csv_field(&row, 1), "pre\nfill");
    assert_string_equal(csv_field(&row, 7), ""); /* past the end: empty */
    assert_int_equal(csv_next_row(text, strlen(text), &pos, &line, &row, err), 0);
    csv_row_free(&row);
}

static void test_malformed(void **state)
{
    (void)state;
    struct csv_row row = {0};
    char err[ERR_LEN] = "";
    size_t pos = 0, line = 1;
    const char *open_quote = "a,b\nc,\"never closed\n";
    assert_int_equal(csv_next_row(open_quote, strlen(open_quote), &pos, &line, &row, err), 1);
    assert_int_equal(csv_next_row(open_quote, strlen(open_quote), &pos, &line, &row, err),
                     JB_ERR_FORMAT);
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, "never closed"));

    pos = 0;
    line = 1;
    const char *stray = "x,\"ok\"y,z\n";
    assert_int_equal(csv_next_row(stray, strlen(stray), &pos, &line, &row, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "line 1, column 7"));
    csv_row_free(&row);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoting_rules),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_nul_dropped),
        cmocka_unit_test(test_lf_rows_and_missing_final_newline),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
