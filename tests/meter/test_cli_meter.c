/* `joulebench sensors` and `joulebench measure`, run as a user would: usage
 * errors exit 2, CMD's exit status comes back, SIGTERM reaches CMD, the
 * JSON has the documented fields, a machine without sensors gets figures
 * marked estimated, and a fixture driven at known watts is measured
 * within a few percent by the separate joulebench process. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/timeutil.h"
#include "fixture_sysfs.h"
#include "testutil.h"

struct result {
    int status;
    struct buf out, err;
};

/* Runs joulebench with args (NULL-terminated) and extra environment. */
static void run(struct result *r, char *const env[], const char *first, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)JB_TOOL;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 31; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    memset(r, 0, sizeof *r);
    r->status = tu_run(argv, env, &r->out, &r->err);
}

static void done(struct result *r)
{
    buf_free(&r->out);
    buf_free(&r->err);
}

/* The last line of stdout as JSON (CMD's own output may come first). */
static json_t *last_json(struct result *r)
{
    const char *s = buf_str(&r->out);
    const char *line = s, *p;
    size_t len = strlen(s);
    while (len && s[len - 1] == '\n')
        len--;
    for (p = s; p < s + len; p++)
        if (*p == '\n')
            line = p + 1;
    json_error_t je;
    json_t *j = json_loadb(line, (size_t)(s + len - line), 0, &je);
    if (!j)
        fprintf(stderr, "not JSON (%s): %s\nstderr: %s\n", je.text, s, buf_str(&r->err));
    assert_non_null(j);
    return j;
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fprintf(stderr, "%s is not a number\n", key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void expect_usage(char *const env[], const char *a, const char *b, const char *c,
                         const char *d, const char *needle)
{
    struct result r;
    run(&r, env, a, b, c, d, NULL);
    if (r.status != 2)
        fprintf(stderr, "%s %s %s: status %d\n%s", a, b ? b : "", c ? c : "", r.status,
                buf_str(&r.err));
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(buf_str(&r.err), needle));
    done(&r);
}

static void test_usage(void **state)
{
    (void)state;
    struct result r;
    run(&r, NULL, "sensors", "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.out), "usage: joulebench sensors"));
    done(&r);
    run(&r, NULL, "measure", "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.out), "--interval-ms"));
    assert_non_null(strstr(buf_str(&r.out), "--cpu-watts"));
    done(&r);
    expect_usage(NULL, "sensors", "--bogus", NULL, NULL, "--bogus");
    expect_usage(NULL, "sensors", "--cpu-watts", NULL, NULL, "--cpu-watts");
    expect_usage(NULL, "measure", NULL, NULL, NULL, "no command");
    expect_usage(NULL, "measure", "--json", "--", NULL, "no command");
    expect_usage(NULL, "measure", "--interval-ms", "abc", "true", "--interval-ms");
    expect_usage(NULL, "measure", "--interval-ms", "0", "true", "1 to 60000");
    expect_usage(NULL, "measure", "--interval-ms=99999", "true", NULL, "--interval-ms");
    expect_usage(NULL, "measure", "--baseline", NULL, NULL, "--baseline");
    expect_usage(NULL, "measure", "--cpu-watts=-5", "--", "true", "--cpu-watts");
    expect_usage(NULL, "measure", "--frobnicate", "--", "true", "--frobnicate");
}

/* This VM has no energy sensor; an empty sysfs root makes any machine
 * look like it. */
static void test_measure_sleep_without_sensors(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("cli-none");
    char root[4200];
    snprintf(root, sizeof root, "JOULEBENCH_SYSFS_ROOT=%s", fx_sysfs_root(fx));
    char *env[] = {root, NULL};
    struct result r;
    run(&r, env, "measure", "--", "sleep", "1", NULL);
    assert_int_equal(r.status, 0);
    const char *err = buf_str(&r.err);
    assert_non_null(strstr(err, "duration"));
    assert_non_null(strstr(err, "(estimated)"));
    assert_non_null(strstr(err, "ESTIMATED"));
    assert_non_null(strstr(err, "--cpu-watts"));
    done(&r);

    run(&r, env, "measure", "--json", "--", "sleep", "1", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = last_json(&r);
    assert_true(num(j, "duration_s") >= 1.0);
    assert_true(num(j, "duration_s") < 5.0);
    assert_true(json_is_true(json_object_get(j, "estimated")));
    assert_true(json_is_true(json_object_get(j, "total_estimated")));
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 0);
    assert_true(num(j, "total_j") >= 0);
    json_t *doms = json_object_get(j, "domains");
    assert_true(json_is_number(json_object_get(doms, "cpu")));
    assert_null(json_object_get(doms, "cores")); /* top-level domains only */
    json_t *sensors = json_object_get(j, "sensors");
    assert_int_equal(json_array_size(sensors), 1);
    json_t *s0 = json_array_get(sensors, 0);
    assert_string_equal(json_string_value(json_object_get(s0, "name")), "estimate:cpu");
    assert_string_equal(json_string_value(json_object_get(s0, "domain")), "cpu");
    assert_true(json_is_true(json_object_get(s0, "estimated")));
    assert_true(json_is_number(json_object_get(s0, "energy_j")));
    json_t *est = json_object_get(j, "estimated_domains");
    assert_string_equal(json_string_value(json_array_get(est, 0)), "cpu");
    assert_null(json_object_get(j, "baseline")); /* not asked for */
    json_decref(j);
    done(&r);
    fx_free(fx);
}

/* The machine as it is (this VM has no energy sensor): measure -- sleep 1
 * works, and where no measured CPU sensor is readable it says so. */
static void test_measure_real_machine(void **state)
{
    (void)state;
    struct result r;
    run(&r, NULL, "measure", "--json", "--", "true", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = last_json(&r);
    assert_true(json_is_object(json_object_get(j, "domains")));
    assert_true(json_is_array(json_object_get(j, "sensors")));
    assert_true(json_is_boolean(json_object_get(j, "estimated")));
    int estimated = json_is_true(json_object_get(j, "estimated"));
    json_decref(j);
    done(&r);
    run(&r, NULL, "measure", "--", "sleep", "1", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.err), "duration"));
    if (estimated)
        assert_non_null(strstr(buf_str(&r.err), "ESTIMATED"));
    else
        fprintf(stderr, "this machine has measured sensors: %s", buf_str(&r.err));
    done(&r);
    run(&r, NULL, "sensors", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.out), "Energy sensors"));
    done(&r);
}

static void test_exit_status(void **state)
{
    (void)state;
    struct result r;
    run(&r, NULL, "measure", "--", "sh", "-c", "exit 3", NULL);
    assert_int_equal(r.status, 3);
    done(&r);
    run(&r, NULL, "measure", "--json", "sh", "-c", "kill -TERM $$", NULL);
    assert_int_equal(r.status, 128 + SIGTERM);
    json_t *j = last_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 128 + SIGTERM);
    json_decref(j);
    done(&r);
    run(&r, NULL, "measure", "--", "/nonexistent/joulebench-test-cmd", NULL);
    assert_int_equal(r.status, 127);
    assert_non_null(strstr(buf_str(&r.err), "/nonexistent/joulebench-test-cmd"));
    done(&r);
}

/* A fixture at known watts, read by the joulebench process while this
 * process's writer thread drives it. Constant power makes the truth
 * watts × the duration the tool reports. */
static void test_measure_known_watts(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("cli-watts");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    int core = fx_rapl_zone(fx, "intel-rapl:0:0", "core", 0, 0);
    int dram = fx_rapl_zone(fx, "intel-rapl:0:1", "dram", 0, 0);
    fx_set_watts(fx, pkg, 20);
    fx_set_watts(fx, core, 9);
    fx_set_watts(fx, dram, 5);
    fx_start(fx, 1000);
    char root[4200];
    snprintf(root, sizeof root, "JOULEBENCH_SYSFS_ROOT=%s", fx_sysfs_root(fx));
    char *env[] = {root, NULL};
    struct result r;
    run(&r, env, "measure", "--json", "--interval-ms", "10", "--", "sleep", "0.5", NULL);
    assert_int_equal(r.status, 0);
    json_t *j = last_json(&r);
    double d = num(j, "duration_s"), total = num(j, "total_j");
    double want = 25.0 * d, tol = 0.03 * want + 25.0 * 0.02;
    if (fabs(total - want) > tol)
        fprintf(stderr, "total %.3f J, want %.3f J (+-%.3f)\n", total, want, tol);
    assert_true(fabs(total - want) <= tol);
    json_t *doms = json_object_get(j, "domains");
    assert_true(fabs(num(doms, "cpu") - 20.0 * d) <= 0.03 * 20 * d + 20 * 0.02);
    assert_true(fabs(num(doms, "dram") - 5.0 * d) <= 0.03 * 5 * d + 5 * 0.02);
    assert_null(json_object_get(doms, "cores"));
    assert_true(json_is_false(json_object_get(j, "estimated")));
    assert_int_equal(json_array_size(json_object_get(j, "sensors")), 3);
    assert_true(fabs(num(json_object_get(j, "avg_power_w"), "cpu") - 20.0) < 1.5);
    json_decref(j);
    done(&r);

    /* With a baseline: constant power, so the net is about nothing. */
    run(&r, env, "measure", "--json", "--baseline", "0.3", "--", "sleep", "0.3", NULL);
    assert_int_equal(r.status, 0);
    j = last_json(&r);
    json_t *b = json_object_get(j, "baseline");
    assert_true(json_is_object(b));
    assert_true(fabs(num(json_object_get(b, "power_w"), "cpu") - 20.0) < 1.5);
    assert_true(fabs(num(b, "total_w") - 25.0) < 2.0);
    assert_true(fabs(num(j, "net_total_j")) < 0.1 * num(j, "total_j") + 0.5);
    json_decref(j);
    done(&r);

    /* The human report names the domains and says nothing is estimated. */
    run(&r, env, "measure", "--", "true", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.err), "rapl:package-0"));
    assert_non_null(strstr(buf_str(&r.err), "inside rapl:package-0"));
    assert_null(strstr(buf_str(&r.err), "estimated"));
    done(&r);
    fx_free(fx);
}

/* psys beside a GPU's counter: the listing's totals are the meter's, the
 * CPU estimate and the GPU, and psys is said to be reported beside. */
static void test_sensors_totals_beside_system(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("cli-psys-gpu");
    fx_psys_beside_igpu(fx);
    char root[4200], proc[4200];
    snprintf(root, sizeof root, "JOULEBENCH_SYSFS_ROOT=%s", fx_sysfs_root(fx));
    snprintf(proc, sizeof proc, "JOULEBENCH_PROCFS_ROOT=%s", fx_procfs_root(fx));
    char nvml[] = "JOULEBENCH_NVML_LIB=/nonexistent/libnvidia-ml.so.1";
    char *env[] = {root, proc, nvml, NULL};
    struct result r;
    run(&r, env, "sensors", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.out), "Totals will count: cpu (estimated) gpu\n"));
    assert_non_null(strstr(buf_str(&r.out), "system (the whole platform) is reported beside"));
    done(&r);
    fx_free(fx);
}

/* `sensors` lists what cannot be read with the reason. */
static void test_sensors_listing(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("cli-sensors");
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1000000, 0);
    int dram = fx_rapl_zone(fx, "intel-rapl:0:0", "dram", 0, 0);
    fx_set_raw(fx, dram, "garbage\n");
    char root[4200];
    snprintf(root, sizeof root, "JOULEBENCH_SYSFS_ROOT=%s", fx_sysfs_root(fx));
    char *env[] = {root, NULL};
    struct result r;
    run(&r, env, "sensors", "--json", NULL);
    assert_int_equal(r.status, 0);
    json_error_t je;
    json_t *j = json_loads(buf_str(&r.out), 0, &je);
    assert_non_null(j);
    json_t *arr = json_object_get(j, "sensors");
    int seen = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *s = json_array_get(arr, i);
        const char *name = json_string_value(json_object_get(s, "name"));
        if (strcmp(name, "rapl:package-0") == 0) {
            assert_true(json_is_true(json_object_get(s, "used")));
            assert_string_equal(json_string_value(json_object_get(s, "domain")), "cpu");
            seen++;
        } else if (strcmp(name, "rapl:dram-0") == 0) {
            assert_true(json_is_false(json_object_get(s, "readable")));
            assert_non_null(strstr(json_string_value(json_object_get(s, "reason")), "garbage"));
            seen++;
        } else if (strcmp(name, "estimate:cpu") == 0) {
            assert_true(json_is_false(json_object_get(s, "used")));
            seen++;
        }
    }
    assert_int_equal(seen, 3);
    assert_true(json_array_size(json_object_get(j, "notes")) >= 2); /* perf, hwmon */
    assert_true(json_is_false(json_object_get(j, "estimated")));
    json_decref(j);
    done(&r);

    run(&r, env, "sensors", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(buf_str(&r.out), "unreadable"));
    assert_non_null(strstr(buf_str(&r.out), "why:"));
    done(&r);
    run(&r, env, "measure", "--", "true", NULL);
    assert_non_null(strstr(buf_str(&r.err), "not readable:"));
    assert_non_null(strstr(buf_str(&r.err), "rapl:dram-0"));
    done(&r);
    fx_free(fx);
}

/* SIGTERM sent to joulebench reaches CMD; joulebench then reports and
 * exits with CMD's status. */
static void test_signal_forwarding(void **state)
{
    (void)state;
    int out[2];
    assert_int_equal(pipe(out), 0);
    double t0 = jb_clock_s();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(out[1], 2);
        close(out[0]);
        execl(JB_TOOL, JB_TOOL, "measure", "--json", "--", "sleep", "20", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    time_sleep_s(0.5, NULL);
    kill(pid, SIGTERM);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    assert_true(jb_clock_s() - t0 < 10);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 128 + SIGTERM);
    char text[8192];
    ssize_t n = read(out[0], text, sizeof text - 1);
    close(out[0]);
    assert_true(n > 0);
    text[n] = '\0';
    assert_non_null(strstr(text, "\"exit_code\":143"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_measure_sleep_without_sensors),
        cmocka_unit_test(test_measure_real_machine),
        cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_measure_known_watts),
        cmocka_unit_test(test_sensors_listing),
        cmocka_unit_test(test_sensors_totals_beside_system),
        cmocka_unit_test(test_signal_forwarding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
