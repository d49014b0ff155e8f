/* The base helpers: strict number parsing, buffers with caps, statistics
 * against hand-computed values, atomic writes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/stats.h"
#include "common/str.h"
#include "testutil.h"

static void test_u64(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(str_to_u64("123456789\n", (size_t)-1, &v), 0);
    assert_true(v == 123456789u);
    assert_int_equal(str_to_u64(" 18446744073709551615 ", (size_t)-1, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_not_equal(str_to_u64("18446744073709551616", (size_t)-1, &v), 0);
    assert_int_not_equal(str_to_u64("12x", (size_t)-1, &v), 0);
    assert_int_not_equal(str_to_u64("-1", (size_t)-1, &v), 0);
    assert_int_not_equal(str_to_u64("", (size_t)-1, &v), 0);
    assert_int_not_equal(str_to_u64("\n", (size_t)-1, &v), 0);
    assert_int_equal(str_to_u64("42abc", 2, &v), 0);
    assert_true(v == 42);
}

static void test_i64_double(void **state)
{
    (void)state;
    int64_t i;
    assert_int_equal(str_to_i64("-42", (size_t)-1, &i), 0);
    assert_true(i == -42);
    assert_int_equal(str_to_i64("-9223372036854775808", (size_t)-1, &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_not_equal(str_to_i64("9223372036854775808", (size_t)-1, &i), 0);
    double d;
    assert_int_equal(str_to_double("2.3283064365386962890625e-10\n", (size_t)-1, &d), 0);
    assert_true(fabs(d - 2.3283064365386962890625e-10) < 1e-24);
    assert_int_not_equal(str_to_double("nan", (size_t)-1, &d), 0);
    assert_int_not_equal(str_to_double("inf", (size_t)-1, &d), 0);
    assert_int_not_equal(str_to_double("0x10", (size_t)-1, &d), 0);
    assert_int_not_equal(str_to_double("1e999", (size_t)-1, &d), 0);
    int n;
    assert_int_equal(str_to_int_range("7", 1, 10, &n), 0);
    assert_int_equal(n, 7);
    assert_int_not_equal(str_to_int_range("11", 1, 10, &n), 0);
}

static void test_lcpy_utf8(void **state)
{
    (void)state;
    char small[4];
    assert_int_equal(str_lcpy(small, "abcdef", sizeof small), 6);
    assert_string_equal(small, "abc");
    char s[16] = "ab";
    str_lcat(s, "cd", sizeof s);
    assert_string_equal(s, "abcd");
    assert_true(str_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_false(str_utf8_valid("\xc3", 1));             /* truncated */
    assert_false(str_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(str_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(str_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    struct buf b = {0};
    assert_int_equal(str_utf8_sanitize("a\xff"
                                       "b\xe2\x82",
                                       5, &b),
                     0);
    assert_string_equal(buf_str(&b), "a\xef\xbf\xbd"
                                     "b\xef\xbf\xbd\xef\xbf\xbd");
    buf_free(&b);
    assert_int_equal(str_utf8_seq_len("\xe2\x82\xac", 3), 3);
    assert_int_equal(str_utf8_seq_len("\xe2\x82", 2), 0);
    char t[] = "  x y \n";
    assert_string_equal(str_trim(t), "x y");
}

static void test_buf_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_puts(&b, "12345678"), 0);
    assert_int_not_equal(buf_putc(&b, '9'), 0); /* over the cap, unchanged */
    assert_int_equal(b.len, 8);
    assert_string_equal(buf_str(&b), "12345678");
    buf_consume(&b, 3);
    assert_string_equal(buf_str(&b), "45678");
    assert_int_equal(buf_printf(&b, "%d", 9), 0);
    assert_string_equal(buf_str(&b), "456789");
    char *p = buf_take(&b);
    assert_string_equal(p, "456789");
    free(p);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_stats(void **state)
{
    (void)state;
    /* Hand-computed: mean 5, sample sd sqrt(32/7)=2.13809, t(7)=2.365,
     * ci = 2.365 * 2.13809 / sqrt(8) = 1.78776 */
    double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
    struct stats_summary s;
    assert_int_equal(stats_summarize(x, 8, &s), 0);
    assert_int_equal(s.n, 8);
    assert_true(fabs(s.mean - 5.0) < 1e-12);
    assert_true(fabs(s.sd - 2.1380899353) < 1e-9);
    assert_true(fabs(s.ci95 - 1.78776) < 1e-4);
    assert_true(fabs(s.p50 - 4.5) < 1e-12);
    /* p90: position 0.9*7 = 6.3 -> 7 + 0.3*(9-7) = 7.6 */
    assert_true(fabs(s.p90 - 7.6) < 1e-12);
    double y[] = {NAN, 1, 3};
    assert_true(fabs(stats_mean(y, 3) - 2.0) < 1e-12);
    double none[] = {NAN};
    assert_true(isnan(stats_mean(none, 1)));
    assert_true(isnan(stats_sd(y + 1, 1)));
    double t[] = {0, 1, 2, 3}, p[] = {10, 12, 14, 16};
    assert_true(fabs(stats_slope(t, p, 4) - 2.0) < 1e-12);
    /* Student's t, 97.5 % quantile, past the table: the true values
     * (numerical integration of the density) to 0.002. */
    const struct {
        size_t df;
        double t;
    } tq[] = {{30, 2.0423}, {31, 2.0395}, {35, 2.0301},  {40, 2.0211},  {45, 2.0141},
              {50, 2.0086}, {80, 1.9901}, {121, 1.9798}, {200, 1.9719}, {1000, 1.9623}};
    for (size_t i = 0; i < sizeof tq / sizeof tq[0]; i++)
        if (fabs(stats_t975(tq[i].df) - tq[i].t) > 0.002)
            fail_msg("t975(%zu) = %.4f, want %.4f", tq[i].df, stats_t975(tq[i].df), tq[i].t);
    assert_true(stats_t975(1000000) > 1.959 && stats_t975(1000000) < 1.961);
}

static void test_atomic_write(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("common");
    char sub[FS_PATH_MAX], path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(sub, sizeof sub, dir, "a/b/c");
    assert_int_equal(fs_mkdir_p(sub, err), 0);
    assert_true(fs_is_dir(sub));
    fs_path_join(path, sizeof path, sub, "x.json");
    assert_int_equal(fs_write_atomic(path, "{}\n", 3, err), 0);
    struct buf b = {0};
    assert_int_equal(fs_read_file(path, 0, &b, err), 0);
    assert_string_equal(buf_str(&b), "{}\n");
    buf_free(&b);
    struct buf small = {0};
    assert_int_equal(fs_read_file(path, 2, &small, err), JB_ERR_NOMEM);
    assert_non_null(strstr(err, "x.json"));
    buf_free(&small);
    char v[8];
    assert_int_equal(fs_read_small(path, v, sizeof v), 3);
    assert_int_equal(fs_read_small("/nonexistent/joulebench", v, sizeof v), JB_ERR_NOTFOUND);
    tu_rmtree_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64),       cmocka_unit_test(test_i64_double),
        cmocka_unit_test(test_lcpy_utf8), cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_stats),     cmocka_unit_test(test_atomic_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
