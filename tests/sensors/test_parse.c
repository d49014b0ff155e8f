/* The pure parsers of the sensors layer: perf event/format/scale/unit
 * files, CPU lists, powercap zone names, /proc/stat. Each case is an input
 * the kernel writes (or a malformed one) and the value it must give. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "joulebench/joulebench.h"
#include "sensors/parse.h"

#define S(x) x, strlen(x)

static void test_perf_event(void **state)
{
    (void)state;
    struct parse_term t[4];
    size_t n = 0;
    assert_int_equal(parse_perf_event(S("event=0x02\n"), t, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].name, "event");
    assert_true(t[0].value == 2);
    assert_int_equal(parse_perf_event(S("event=0x1f,umask=3"), t, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_true(t[0].value == 0x1f && t[1].value == 3);
    assert_string_equal(t[1].name, "umask");
    assert_int_equal(parse_perf_event(S("event=0x01,edge"), t, 4, &n), 0);
    assert_true(n == 2 && t[1].value == 1);
    /* Not NUL-terminated: only len bytes count. */
    assert_int_equal(parse_perf_event("event=0x04garbage", 10, t, 4, &n), 0);
    assert_true(t[0].value == 4);

    assert_int_not_equal(parse_perf_event(S(""), t, 4, &n), 0);
    assert_int_not_equal(parse_perf_event(S("event="), t, 4, &n), 0);
    assert_int_not_equal(parse_perf_event(S("event=0x"), t, 4, &n), 0);
    assert_int_not_equal(parse_perf_event(S("event=0xzz"), t, 4, &n), 0);
    assert_int_not_equal(parse_perf_event(S("event=0x02,"), t, 4, &n), 0);
    assert_int_not_equal(parse_perf_event(S("=3"), t, 4, &n), 0);
    assert_int_not_equal(parse_perf_event(S("ev ent=3"), t, 4, &n), 0);
    assert_int_not_equal(parse_perf_event(S("event=0x11111111111111111"), t, 4, &n), 0);
    assert_int_not_equal(parse_perf_event(S("a=1,b=2,c=3"), t, 2, &n), 0);
}

static void test_perf_format_place(void **state)
{
    (void)state;
    int word;
    unsigned lo, hi;
    assert_int_equal(parse_perf_format(S("config:0-7\n"), &word, &lo, &hi), 0);
    assert_true(word == 0 && lo == 0 && hi == 7);
    assert_int_equal(parse_perf_format(S("config1:12"), &word, &lo, &hi), 0);
    assert_true(word == 1 && lo == 12 && hi == 12);
    assert_int_not_equal(parse_perf_format(S("config:8-3"), &word, &lo, &hi), 0);
    assert_int_not_equal(parse_perf_format(S("config:0-64"), &word, &lo, &hi), 0);
    assert_int_not_equal(parse_perf_format(S("conf:0-7"), &word, &lo, &hi), 0);
    assert_int_not_equal(parse_perf_format(S("config"), &word, &lo, &hi), 0);

    uint64_t c = 0;
    assert_int_equal(parse_perf_place(&c, 0, 7, 0x02), 0);
    assert_int_equal(parse_perf_place(&c, 8, 15, 0xab), 0);
    assert_true(c == 0xab02);
    assert_int_not_equal(parse_perf_place(&c, 0, 7, 0x100), 0); /* does not fit */
    assert_int_equal(parse_perf_place(&c, 0, 63, UINT64_MAX), 0);
    assert_true(c == UINT64_MAX);
}

static void test_perf_scale_unit(void **state)
{
    (void)state;
    double v;
    assert_int_equal(parse_perf_scale(S("2.3283064365386962890625e-10\n"), &v), 0);
    assert_true(fabs(v - 2.3283064365386962890625e-10) < 1e-24);
    assert_int_equal(parse_perf_scale(S("6.103515625e-05"), &v), 0); /* AMD: 2^-14 J */
    assert_true(v == 6.103515625e-05);
    assert_int_not_equal(parse_perf_scale(S("0"), &v), 0);
    assert_int_not_equal(parse_perf_scale(S("-1e-10"), &v), 0);
    assert_int_not_equal(parse_perf_scale(S("nan"), &v), 0);
    assert_int_not_equal(parse_perf_scale(S("1e-10x"), &v), 0);
    assert_int_not_equal(parse_perf_scale(S(""), &v), 0);

    assert_int_equal(parse_perf_unit(S("Joules\n"), &v), 0);
    assert_true(v == 1.0);
    assert_int_equal(parse_perf_unit(S("joules"), &v), 0);
    assert_int_equal(parse_perf_unit(S("mJ"), &v), 0);
    assert_true(v == 1e-3);
    assert_int_equal(parse_perf_unit(S("microJoules"), &v), 0);
    assert_true(v == 1e-6);
    assert_int_equal(parse_perf_unit(S("Watts"), &v), JB_ERR_UNSUPPORTED);
    assert_int_equal(parse_perf_unit(S("Joulesx"), &v), JB_ERR_UNSUPPORTED);
    assert_int_not_equal(parse_perf_unit(S("  \n"), &v), 0);
}

static void test_cpulist(void **state)
{
    (void)state;
    int cpus[8];
    size_t n;
    assert_int_equal(parse_cpulist(S("0\n"), cpus, 8, &n), 0);
    assert_true(n == 1 && cpus[0] == 0);
    assert_int_equal(parse_cpulist(S("0,28"), cpus, 8, &n), 0);
    assert_true(n == 2 && cpus[0] == 0 && cpus[1] == 28);
    assert_int_equal(parse_cpulist(S("0-2,8"), cpus, 8, &n), 0);
    assert_true(n == 4 && cpus[2] == 2 && cpus[3] == 8);
    assert_int_not_equal(parse_cpulist(S("0-9"), cpus, 8, &n), 0); /* more than max */
    assert_int_not_equal(parse_cpulist(S("3-1"), cpus, 8, &n), 0);
    assert_int_not_equal(parse_cpulist(S("1,"), cpus, 8, &n), 0);
    assert_int_not_equal(parse_cpulist(S("a"), cpus, 8, &n), 0);
    assert_int_not_equal(parse_cpulist(S(""), cpus, 8, &n), 0);
    assert_int_not_equal(parse_cpulist(S("99999999"), cpus, 8, &n), 0);
}

static void test_rapl_zone(void **state)
{
    (void)state;
    char prefix[32];
    unsigned idx[2];
    int depth;
    assert_int_equal(parse_rapl_zone(S("intel-rapl:0"), prefix, sizeof prefix, idx, &depth), 0);
    assert_string_equal(prefix, "intel-rapl");
    assert_true(depth == 1 && idx[0] == 0);
    assert_int_equal(parse_rapl_zone(S("intel-rapl-mmio:1:12"), prefix, sizeof prefix, idx, &depth),
                     0);
    assert_string_equal(prefix, "intel-rapl-mmio");
    assert_true(depth == 2 && idx[0] == 1 && idx[1] == 12);
    assert_int_not_equal(parse_rapl_zone(S("intel-rapl"), prefix, sizeof prefix, idx, &depth), 0);
    assert_int_not_equal(parse_rapl_zone(S("intel-rapl:"), prefix, sizeof prefix, idx, &depth), 0);
    assert_int_not_equal(parse_rapl_zone(S("intel-rapl:0:1:2"), prefix, sizeof prefix, idx, &depth),
                         0);
    assert_int_not_equal(parse_rapl_zone(S("intel-rapl:0x"), prefix, sizeof prefix, idx, &depth),
                         0);
    assert_int_not_equal(parse_rapl_zone(S(":0"), prefix, sizeof prefix, idx, &depth), 0);
    assert_int_not_equal(parse_rapl_zone(S("Intel Rapl:0"), prefix, sizeof prefix, idx, &depth), 0);
}

static void test_proc_stat(void **state)
{
    (void)state;
    const char *stat = "cpu  3274 10 3684 138616 523 5 189 1195 0 0\n"
                       "cpu0 1280 0 1562 70337 40 0 12 519 0 0\n"
                       "cpu1 1993 0 2121 68278 482 0 177 676 0 0\n"
                       "intr 1 2 3\n";
    uint64_t busy, total;
    int ncpu;
    assert_int_equal(parse_proc_stat(S(stat), &busy, &total, &ncpu), 0);
    assert_true(busy == 3274 + 10 + 3684 + 5 + 189);
    assert_true(total == busy + 138616 + 523 + 1195);
    assert_int_equal(ncpu, 2);
    /* The sampler reads only the first 511 bytes: a cut line is fine. */
    assert_int_equal(parse_proc_stat(stat, 60, &busy, &total, &ncpu), 0);
    assert_true(busy == 3274 + 10 + 3684 + 5 + 189);
    /* Old kernels: four fields. */
    assert_int_equal(parse_proc_stat(S("cpu 1 2 3 4\n"), &busy, &total, &ncpu), 0);
    assert_true(busy == 6 && total == 10 && ncpu == 0);
    assert_int_not_equal(parse_proc_stat(S("cpu 1 2 3\n"), &busy, &total, &ncpu), 0);
    assert_int_not_equal(parse_proc_stat(S("cpu0 1 2 3 4\n"), &busy, &total, &ncpu), 0);
    assert_int_not_equal(parse_proc_stat(S("intr 1 2 3 4\n"), &busy, &total, &ncpu), 0);
    assert_int_not_equal(
        parse_proc_stat(S("cpu 99999999999999999999 1 1 1\n"), &busy, &total, &ncpu), 0);
    assert_int_not_equal(parse_proc_stat(S(""), &busy, &total, &ncpu), 0);
    /* Sums that wrap, by a later term than the first. */
    assert_int_equal(parse_proc_stat(S("cpu 5 18446744073709551615 10 0\n"), &busy, &total, &ncpu),
                     JB_ERR_FORMAT);
    assert_int_equal(parse_proc_stat(S("cpu 1 0 0 18446744073709551615\n"), &busy, &total, &ncpu),
                     JB_ERR_FORMAT);
    assert_int_equal(parse_proc_stat(S("cpu 0 0 0 18446744073709551615\n"), &busy, &total, &ncpu),
                     0);
    assert_true(busy == 0 && total == UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perf_event),      cmocka_unit_test(test_perf_format_place),
        cmocka_unit_test(test_perf_scale_unit), cmocka_unit_test(test_cpulist),
        cmocka_unit_test(test_rapl_zone),       cmocka_unit_test(test_proc_stat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
