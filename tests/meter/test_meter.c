/* The meter on fixture trees: counters advanced at known watts in real
 * time (measured joules against the writer's model), exact arithmetic with
 * hand-set counter values (wrap, reset, totals, marks, interpolation),
 * sensors that vanish or turn to garbage mid-run, windows that overlap,
 * baseline, timeline thinning, and many threads at once. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/timeutil.h"
#include "fixture_sysfs.h"
#include "joulebench/joulebench.h"
#include "meter/meter_int.h"

/* Real-time checks allow for the writer's lag at each edge on a busy
 * machine: 3 % of the truth plus 10 ms of the counter's power. */
#define REL_TOL 0.03
#define LAG_S 0.010

static struct jb_meter *open_meter(struct fx_sysfs *fx, double interval_ms, int no_estimate)
{
    struct jb_meter_options opt;
    jb_meter_options_init(&opt);
    opt.sysfs_root = fx_sysfs_root(fx);
    opt.procfs_root = fx_procfs_root(fx);
    opt.interval_ms = interval_ms;
    opt.no_estimate = no_estimate;
    struct jb_meter *m = NULL;
    char err[256];
    int rc = jb_meter_open(&m, &opt, err, sizeof err);
    if (rc)
        fprintf(stderr, "jb_meter_open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(jb_meter_start(m), 0);
    return m;
}

static int sensor_index(struct jb_meter *m, const char *name)
{
    for (size_t i = 0; i < jb_meter_sensor_count(m); i++)
        if (strcmp(jb_meter_sensor(m, i)->name, name) == 0)
            return (int)i;
    fprintf(stderr, "no sensor %s\n", name);
    fail();
    return -1;
}

static void near_truth(const char *what, double measured, double truth, double watts)
{
    double tol = REL_TOL * truth + watts * LAG_S;
    if (fabs(measured - truth) > tol) {
        fprintf(stderr, "%s: measured %.4f J, truth %.4f J, tolerance %.4f J\n", what, measured,
                truth, tol);
        fail();
    }
}

/* Sleeps while spinning on the CPU half the time: real work under the
 * meter, not only idle waiting. */
static void work_for(double seconds)
{
    double end = jb_clock_s() + seconds;
    volatile double x = 0;
    while (jb_clock_s() < end) {
        for (int i = 0; i < 20000; i++)
            x += i * 0.5;
        time_sleep_s(0.002, NULL);
    }
    (void)x;
}

static void test_known_watts(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-watts");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 5000000, 0);
    int core = fx_rapl_zone(fx, "intel-rapl:0:0", "core", 0, 0);
    int unc = fx_rapl_zone(fx, "intel-rapl:0:1", "uncore", 0, 0);
    int dram = fx_rapl_zone(fx, "intel-rapl:0:2", "dram", 123, 0);
    int psys = fx_rapl_zone(fx, "intel-rapl:1", "psys", 0, 0);
    fx_set_watts(fx, pkg, 20.0);
    fx_set_watts(fx, core, 12.0);
    fx_set_watts(fx, unc, 2.0);
    fx_set_watts(fx, dram, 3.0);
    fx_set_watts(fx, psys, 31.0);
    fx_start(fx, 1000);
    struct jb_meter *m = open_meter(fx, 20, 1);
    assert_int_equal(jb_meter_sensor_count(m), 5);
    assert_false(jb_meter_any_estimated(m));

    assert_int_equal(jb_meter_begin(m, "work"), 0);
    work_for(0.5);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "work", &e), 0);
    assert_true(e.duration_s >= 0.5);
    int ip = sensor_index(m, "rapl:package-0"), ic = sensor_index(m, "rapl:core-0");
    int iu = sensor_index(m, "rapl:uncore-0"), id = sensor_index(m, "rapl:dram-0");
    int is = sensor_index(m, "rapl:psys");
    double t0 = e.t_begin_s, t1 = e.t_end_s;
    for (int i = 0; i < 5; i++)
        assert_true(e.sensor_valid[i]);
    near_truth("package", e.sensor_j[ip], fx_true_joules(fx, pkg, t0, t1), 20);
    near_truth("core", e.sensor_j[ic], fx_true_joules(fx, core, t0, t1), 12);
    near_truth("uncore", e.sensor_j[iu], fx_true_joules(fx, unc, t0, t1), 2);
    near_truth("dram", e.sensor_j[id], fx_true_joules(fx, dram, t0, t1), 3);
    near_truth("psys", e.sensor_j[is], fx_true_joules(fx, psys, t0, t1), 31);
    /* Domains: each its own; the total is package + dram, never the core
     * and uncore inside the package, nor psys. */
    assert_true(e.domain_valid & (1u << JB_DOMAIN_CPU));
    assert_true(e.domain_j[JB_DOMAIN_CPU] == e.sensor_j[ip]);
    assert_true(e.domain_j[JB_DOMAIN_CORES] == e.sensor_j[ic]);
    assert_true(e.domain_j[JB_DOMAIN_UNCORE] == e.sensor_j[iu]);
    assert_true(e.domain_j[JB_DOMAIN_DRAM] == e.sensor_j[id]);
    assert_true(e.domain_j[JB_DOMAIN_SYSTEM] == e.sensor_j[is]);
    assert_false(e.domain_valid & (1u << JB_DOMAIN_GPU));
    assert_true(isnan(e.domain_j[JB_DOMAIN_GPU]));
    assert_true(e.total_valid);
    assert_false(e.total_estimated);
    assert_true(fabs(e.total_j - (e.sensor_j[ip] + e.sensor_j[id])) < 1e-9);
    near_truth("total", e.total_j,
               fx_true_joules(fx, pkg, t0, t1) + fx_true_joules(fx, dram, t0, t1), 23);
    assert_int_equal(e.flags & (JB_ENERGY_RESET | JB_ENERGY_SENSOR_LOST | JB_ENERGY_WRAPPED), 0);
    /* The sampler ran: the timeline has samples between the edges. */
    assert_true(jb_meter_timeline_len(m) > 10);
    assert_true(jb_meter_sampler_cpu_s(m) > 0);

    struct jb_power p;
    jb_energy_to_power(&e, &p);
    assert_true(p.total_valid);
    assert_true(fabs(p.total_w - 23.0) < 23.0 * REL_TOL + 23.0 * LAG_S / e.duration_s * 2);
    assert_true(fabs(p.domain_w[JB_DOMAIN_CORES] - 12.0) < 1.0);
    jb_meter_close(m);
    fx_free(fx);
}

/* A 2 J counter range at 20 W wraps every 100 ms: five wraps in the
 * window, every one caught by the 50 Hz sampler. */
static void test_wrap_in_window(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-wrap");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1500000, 2000000);
    fx_set_watts(fx, pkg, 20.0);
    fx_start(fx, 1000);
    struct jb_meter *m = open_meter(fx, 20, 1);
    assert_true(fabs(jb_meter_sensor(m, 0)->max_range_j - 2.0) < 1e-12);
    assert_int_equal(jb_meter_begin(m, "w"), 0);
    time_sleep_s(0.5, NULL);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "w", &e), 0);
    assert_true(e.flags & JB_ENERGY_WRAPPED);
    assert_false(e.flags & JB_ENERGY_RESET);
    assert_true(e.sensor_valid[0]);
    near_truth("wrapped package", e.sensor_j[0], fx_true_joules(fx, pkg, e.t_begin_s, e.t_end_s),
               20);
    assert_true(e.sensor_j[0] > 2.0 * 4); /* more than four ranges */
    jb_meter_close(m);
    fx_free(fx);
}

static void test_two_sockets(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-2s");
    int p0 = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    int d0 = fx_rapl_zone(fx, "intel-rapl:0:0", "dram", 0, 0);
    int p1 = fx_rapl_zone(fx, "intel-rapl:1", "package-1", 0, 0);
    int d1 = fx_rapl_zone(fx, "intel-rapl:1:0", "dram", 0, 0);
    fx_set_watts(fx, p0, 15);
    fx_set_watts(fx, d0, 2);
    fx_set_watts(fx, p1, 25);
    fx_set_watts(fx, d1, 4);
    fx_start(fx, 1000);
    struct jb_meter *m = open_meter(fx, 20, 1);
    assert_int_equal(jb_meter_begin(m, "both"), 0);
    time_sleep_s(0.4, NULL);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "both", &e), 0);
    double t0 = e.t_begin_s, t1 = e.t_end_s;
    double cpu = fx_true_joules(fx, p0, t0, t1) + fx_true_joules(fx, p1, t0, t1);
    double mem = fx_true_joules(fx, d0, t0, t1) + fx_true_joules(fx, d1, t0, t1);
    near_truth("cpu (two packages)", e.domain_j[JB_DOMAIN_CPU], cpu, 40);
    near_truth("dram (two sockets)", e.domain_j[JB_DOMAIN_DRAM], mem, 6);
    near_truth("total", e.total_j, cpu + mem, 46);
    jb_meter_close(m);
    fx_free(fx);
}

/* Counters set by hand, no sampler: every figure is exact. */
static void test_exact_arithmetic(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-exact");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1000000, 10000000);
    int core = fx_rapl_zone(fx, "intel-rapl:0:0", "core", 9000000, 10000000);
    int dram = fx_rapl_zone(fx, "intel-rapl:0:1", "dram", 1000000, 0);
    struct jb_meter *m = open_meter(fx, -1, 1);
    int ip = sensor_index(m, "rapl:package-0"), ic = sensor_index(m, "rapl:core-0");
    int id = sensor_index(m, "rapl:dram-0");
    assert_int_equal(jb_meter_begin(m, "x"), 0);
    fx_set_raw(fx, pkg, "6000000\n");  /* +5 J */
    fx_set_raw(fx, core, "1000000\n"); /* 9 J -> wrap at 10 J -> 1 J: +2 J */
    fx_set_raw(fx, dram, "2500000\n"); /* +1.5 J */
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "x", &e), 0);
    assert_true(fabs(e.sensor_j[ip] - 5.0) < 1e-9);
    assert_true(fabs(e.sensor_j[ic] - 2.0) < 1e-9);
    assert_true(fabs(e.sensor_j[id] - 1.5) < 1e-9);
    assert_true(e.flags & JB_ENERGY_WRAPPED);
    assert_true(fabs(e.total_j - 6.5) < 1e-9);
    assert_true(fabs(e.domain_j[JB_DOMAIN_CORES] - 2.0) < 1e-9);
    assert_true(e.flags & JB_ENERGY_SHORT); /* microseconds: below RAPL's 1 ms */
    jb_meter_close(m);
    fx_free(fx);
}

/* A counter that steps back with no range to wrap in was reset: the
 * window across it has no figure for it; the next window does. */
static void test_counter_reset(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-reset");
    fx_hwmon(fx, 0, "i915", "pci0000:00/0000:00:02.0");
    int gpu = fx_hwmon_counter(fx, 0, "energy1_input", FX_ENERGY_UJ, 50000000);
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1000000, 0);
    struct jb_meter *m = open_meter(fx, -1, 1);
    int ig = sensor_index(m, "i915:0000:00:02.0"), ip = sensor_index(m, "rapl:package-0");
    assert_int_equal(jb_meter_begin(m, "a"), 0);
    fx_set_raw(fx, gpu, "1000\n"); /* back from 50 J to 1 mJ */
    fx_set_raw(fx, pkg, "3000000\n");
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "a", &e), 0);
    assert_true(e.flags & JB_ENERGY_RESET);
    assert_false(e.sensor_valid[ig]);
    assert_true(isnan(e.sensor_j[ig]));
    assert_false(e.total_valid); /* the GPU is part of the total: unknown */
    assert_true(isnan(e.total_j));
    assert_true(e.sensor_valid[ip]);
    assert_true(fabs(e.sensor_j[ip] - 2.0) < 1e-9);

    assert_int_equal(jb_meter_begin(m, "b"), 0);
    fx_set_raw(fx, gpu, "3001000\n");
    assert_int_equal(jb_meter_end(m, "b", &e), 0);
    assert_false(e.flags & JB_ENERGY_RESET);
    assert_true(e.sensor_valid[ig]);
    assert_true(fabs(e.sensor_j[ig] - 3.0) < 1e-9);
    assert_true(e.total_valid);

    /* A RAPL counter that steps back by a little: a wrap would mean
     * ~262 kJ in microseconds, so it is a reset, not a wrap. */
    assert_int_equal(jb_meter_begin(m, "c"), 0);
    fx_set_raw(fx, pkg, "2999000\n");
    assert_int_equal(jb_meter_end(m, "c", &e), 0);
    assert_true(e.flags & JB_ENERGY_RESET);
    assert_false(e.flags & JB_ENERGY_WRAPPED);
    assert_false(e.sensor_valid[ip]);
    jb_meter_close(m);
    fx_free(fx);
}

static void test_zone_disappears(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-gone");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    int dram = fx_rapl_zone(fx, "intel-rapl:0:0", "dram", 0, 0);
    fx_set_watts(fx, pkg, 10);
    fx_set_watts(fx, dram, 5);
    fx_start(fx, 1000);
    struct jb_meter *m = open_meter(fx, 20, 1);
    int ip = sensor_index(m, "rapl:package-0"), id = sensor_index(m, "rapl:dram-0");
    struct jb_energy before;
    assert_int_equal(jb_meter_begin(m, "before"), 0);
    time_sleep_s(0.1, NULL);
    assert_int_equal(jb_meter_end(m, "before", &before), 0);
    assert_int_equal(jb_meter_begin(m, "across"), 0);
    time_sleep_s(0.1, NULL);
    fx_remove(fx, dram);
    time_sleep_s(0.1, NULL);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "across", &e), 0);
    assert_true(e.flags & JB_ENERGY_SENSOR_LOST);
    assert_false(e.sensor_valid[id]);
    assert_false(e.domain_valid & (1u << JB_DOMAIN_DRAM));
    assert_true(isnan(e.domain_j[JB_DOMAIN_DRAM]));
    assert_false(e.total_valid);
    assert_true(e.sensor_valid[ip]);
    near_truth("package beside a lost dram", e.sensor_j[ip],
               fx_true_joules(fx, pkg, e.t_begin_s, e.t_end_s), 10);
    char why[256];
    assert_int_equal(jb_meter_sensor_error(m, (size_t)id, why, sizeof why), 1);
    assert_non_null(strstr(why, "energy_uj"));
    assert_non_null(strstr(why, "gone"));
    assert_int_equal(jb_meter_sensor_error(m, (size_t)ip, why, sizeof why), 0);
    assert_string_equal(why, "");
    /* Lost stays lost; a window that ended before the loss stays valid. */
    assert_int_equal(jb_meter_begin(m, "after"), 0);
    assert_int_equal(jb_meter_end(m, "after", &e), 0);
    assert_true(e.flags & JB_ENERGY_SENSOR_LOST);
    assert_false(e.sensor_valid[id]);
    assert_int_equal(jb_meter_energy_between(m, before.t_begin_s, before.t_end_s, &e), 0);
    assert_true(e.sensor_valid[id]);
    assert_true(fabs(e.sensor_j[id] - before.sensor_j[id]) < 1e-9);
    jb_meter_close(m);
    fx_free(fx);
}

static void test_garbage_midrun(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-garbage");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    fx_set_watts(fx, pkg, 10);
    fx_start(fx, 1000);
    struct jb_meter *m = open_meter(fx, 10, 1);
    assert_int_equal(jb_meter_begin(m, "g"), 0);
    time_sleep_s(0.05, NULL);
    fx_set_raw(fx, pkg, "12ab\n");
    time_sleep_s(0.05, NULL);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "g", &e), 0);
    assert_false(e.sensor_valid[0]);
    assert_true(e.flags & JB_ENERGY_SENSOR_LOST);
    char why[256];
    assert_int_equal(jb_meter_sensor_error(m, 0, why, sizeof why), 1);
    assert_non_null(strstr(why, "'12ab' is not a count"));
    jb_meter_close(m);
    fx_free(fx);
}

/* One failed read is a gap, not a loss: the next good reading of the
 * counter accounts for the joules in between. Three in a row lose it. */
static void test_transient_read_error(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-transient");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1000000, 0);
    struct jb_meter *m = open_meter(fx, -1, 1);
    double t;
    fx_set_raw(fx, pkg, "2000000\n");
    assert_int_equal(jb_meter_begin(m, "w"), 0);
    fx_set_raw(fx, pkg, "12ab\n");
    assert_int_equal(jb_meter_mark(m, &t), 0); /* one failed read */
    fx_set_raw(fx, pkg, "4000000\n");
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "w", &e), 0);
    assert_true(e.sensor_valid[0]);
    assert_false(e.flags & JB_ENERGY_SENSOR_LOST);
    assert_true(fabs(e.sensor_j[0] - 2.0) < 1e-9);
    char why[256];
    assert_int_equal(jb_meter_sensor_error(m, 0, why, sizeof why), 0);

    assert_int_equal(jb_meter_begin(m, "w2"), 0);
    fx_set_raw(fx, pkg, "12ab\n");
    for (int k = 0; k < 3; k++)
        assert_int_equal(jb_meter_mark(m, &t), 0);
    fx_set_raw(fx, pkg, "5000000\n");
    assert_int_equal(jb_meter_end(m, "w2", &e), 0);
    assert_false(e.sensor_valid[0]); /* lost for good after three */
    assert_true(e.flags & JB_ENERGY_SENSOR_LOST);
    assert_int_equal(jb_meter_sensor_error(m, 0, why, sizeof why), 1);
    jb_meter_close(m);
    fx_free(fx);
}

static void test_windows(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-windows");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1000000, 0);
    struct jb_meter *m = open_meter(fx, -1, 1);
    assert_int_equal(jb_meter_begin(m, "outer"), 0);
    fx_set_raw(fx, pkg, "2000000\n");
    assert_int_equal(jb_meter_begin(m, "inner"), 0);
    assert_int_equal(jb_meter_begin(m, "inner"), JB_ERR_STATE);
    fx_set_raw(fx, pkg, "4000000\n");
    struct jb_energy in, out;
    assert_int_equal(jb_meter_end(m, "nosuch", &in), JB_ERR_STATE);
    assert_int_equal(jb_meter_end(m, "inner", &in), 0);
    assert_int_equal(jb_meter_end(m, "inner", &in), JB_ERR_STATE);
    fx_set_raw(fx, pkg, "4500000\n");
    assert_int_equal(jb_meter_end(m, "outer", &out), 0);
    assert_true(fabs(in.total_j - 2.0) < 1e-9);
    assert_true(fabs(out.total_j - 3.5) < 1e-9);
    assert_true(out.t_begin_s < in.t_begin_s && out.t_end_s > in.t_end_s);
    /* The name is free again. */
    assert_int_equal(jb_meter_begin(m, "inner"), 0);
    assert_int_equal(jb_meter_end(m, "inner", &in), 0);
    assert_int_equal(jb_meter_begin(NULL, "x"), JB_ERR_USAGE);
    jb_meter_close(m);
    fx_free(fx);
}

/* Marks pin exact readings; between() interpolates the rest. */
static void test_marks_and_between(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-marks");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1000000, 0);
    struct jb_meter *m = open_meter(fx, -1, 1);
    double t0, t1, t2;
    assert_int_equal(jb_meter_mark(m, &t0), 0);
    fx_set_raw(fx, pkg, "5000000\n");
    time_sleep_s(0.01, NULL);
    assert_int_equal(jb_meter_mark(m, &t1), 0);
    fx_set_raw(fx, pkg, "11000000\n");
    time_sleep_s(0.01, NULL);
    assert_int_equal(jb_meter_mark(m, &t2), 0);
    struct jb_energy e;
    assert_int_equal(jb_meter_energy_between(m, t0, t1, &e), 0);
    assert_true(fabs(e.total_j - 4.0) < 1e-9);
    assert_false(e.flags & JB_ENERGY_GAP);
    assert_int_equal(jb_meter_energy_between(m, t1, t2, &e), 0);
    assert_true(fabs(e.total_j - 6.0) < 1e-9);
    assert_int_equal(jb_meter_energy_between(m, t0, t2, &e), 0);
    assert_true(fabs(e.total_j - 10.0) < 1e-9);
    /* Halfway between two marks: half the step, flagged as a guess. */
    double mid = 0.5 * (t1 + t2);
    assert_int_equal(jb_meter_energy_between(m, t1, mid, &e), 0);
    assert_true(fabs(e.total_j - 3.0) < 1e-6);
    assert_true(e.flags & JB_ENERGY_GAP);
    assert_true(fabs(e.duration_s - (mid - t1)) < 1e-12);
    /* Outside the timeline, or backwards: usage errors. */
    assert_int_equal(jb_meter_energy_between(m, t0 - 10, t1, &e), JB_ERR_USAGE);
    assert_int_equal(jb_meter_energy_between(m, t0, jb_clock_s() + 10, &e), JB_ERR_USAGE);
    assert_int_equal(jb_meter_energy_between(m, t2, t1, &e), JB_ERR_USAGE);
    /* Past the last sample, up to now: a reading is taken, and the step
     * since the last mark is shared out in proportion to the time. */
    fx_set_raw(fx, pkg, "12000000\n");
    time_sleep_s(0.01, NULL);
    double now = jb_clock_s();
    assert_int_equal(jb_meter_energy_between(m, t2, now, &e), 0);
    assert_true(e.total_valid);
    assert_true(e.total_j > 0 && e.total_j <= 1.0);
    double t3;
    assert_int_equal(jb_meter_mark(m, &t3), 0);
    assert_int_equal(jb_meter_energy_between(m, t2, t3, &e), 0);
    assert_true(fabs(e.total_j - 1.0) < 1e-9);
    jb_meter_close(m);
    fx_free(fx);
}

static void test_baseline(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-baseline");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    fx_set_watts(fx, pkg, 8.0);
    fx_start(fx, 1000);
    struct jb_meter *m = open_meter(fx, 20, 1);
    struct jb_power p;
    assert_int_equal(jb_meter_baseline(m, 0.4, NULL, &p), 0);
    assert_true(p.total_valid);
    /* never shorter than asked; a busy machine may make it longer */
    assert_true(p.duration_s >= 0.4 - 0.02);
    assert_true(fabs(p.total_w - 8.0) < 8.0 * REL_TOL + 8.0 * 2 * LAG_S / p.duration_s);
    assert_true(fabs(p.domain_w[JB_DOMAIN_CPU] - p.total_w) < 1e-9);
    volatile sig_atomic_t stop = 1;
    double t = jb_clock_s();
    assert_int_equal(jb_meter_baseline(m, 5.0, &stop, &p), JB_ERR_INTERRUPTED);
    assert_true(jb_clock_s() - t < 5.0); /* stopped before the 5 s asked for */
    jb_meter_close(m);
    fx_free(fx);
}

/* amdgpu reports power only: the meter integrates it. */
static void test_power_sensor(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-power");
    fx_hwmon(fx, 1, "amdgpu", "pci0000:00/0000:00:03.1/0000:0b:00.0");
    int gpu = fx_hwmon_counter(fx, 1, "power1_input", FX_POWER_UW, 0);
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    fx_set_watts(fx, gpu, 40.0);
    fx_set_watts(fx, pkg, 10.0);
    fx_start(fx, 1000);
    struct jb_meter *m = open_meter(fx, 20, 1);
    int ig = sensor_index(m, "amdgpu:0000:0b:00.0");
    assert_int_equal(jb_meter_sensor(m, (size_t)ig)->kind, JB_SENSOR_POWER);
    assert_int_equal(jb_meter_begin(m, "gpu"), 0);
    time_sleep_s(0.3, NULL);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "gpu", &e), 0);
    assert_true(e.sensor_valid[ig]);
    assert_true(fabs(e.sensor_j[ig] - 40.0 * e.duration_s) < 1e-6); /* constant power: exact */
    assert_true(fabs(e.domain_j[JB_DOMAIN_GPU] - e.sensor_j[ig]) < 1e-12);
    near_truth("total with gpu", e.total_j,
               40.0 * e.duration_s + fx_true_joules(fx, pkg, e.t_begin_s, e.t_end_s), 50);
    jb_meter_close(m);
    fx_free(fx);
}

static void test_timeline_thinning(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-thin");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    fx_set_watts(fx, pkg, 10.0);
    fx_start(fx, 1000);
    struct jb_meter_options opt;
    jb_meter_options_init(&opt);
    opt.sysfs_root = fx_sysfs_root(fx);
    opt.procfs_root = fx_procfs_root(fx);
    opt.interval_ms = 1;
    opt.no_estimate = 1;
    opt.timeline_max = 64;
    struct jb_meter *m;
    char err[256];
    assert_int_equal(jb_meter_open(&m, &opt, err, sizeof err), 0);
    assert_int_equal(jb_meter_start(m), 0);
    double t1, t2;
    assert_int_equal(jb_meter_mark(m, &t1), 0);
    time_sleep_s(0.3, NULL); /* ~300 samples into a 64-sample timeline */
    assert_int_equal(jb_meter_mark(m, &t2), 0);
    size_t len = jb_meter_timeline_len(m);
    assert_true(len <= 64);
    assert_true(len >= 16);
    /* Samples stay in time order and cumulative joules never fall. */
    double prev_t = -1, prev_j = -1;
    for (size_t i = 0; i < len; i++) {
        double t, j[JB_MAX_SENSORS];
        unsigned char v[JB_MAX_SENSORS];
        assert_int_equal(jb_meter_timeline_get(m, i, &t, j, v), 0);
        assert_true(t > prev_t);
        assert_true(v[0]);
        assert_true(j[0] >= prev_j);
        prev_t = t;
        prev_j = j[0];
    }
    assert_int_equal(jb_meter_timeline_get(m, len + 5, NULL, NULL, NULL), JB_ERR_NOTFOUND);
    /* The marks survived thinning: exact readings, no interpolation. */
    struct jb_energy e;
    assert_int_equal(jb_meter_energy_between(m, t1, t2, &e), 0);
    assert_false(e.flags & JB_ENERGY_GAP);
    near_truth("between marks", e.total_j, fx_true_joules(fx, pkg, t1, t2), 10);
    jb_meter_close(m);
    fx_free(fx);
}

/* Thinning on the timeline itself, with hand-made samples one second
 * apart: past the cap the older half gets coarser, while the newer half
 * (the request in progress) keeps every sample, and pinned samples stay. */
static void test_thinning_keeps_recent(void **state)
{
    (void)state;
    struct meter_timeline tl;
    assert_int_equal(timeline_init(&tl, 1, 64), 0);
    struct meter_point p;
    memset(&p, 0, sizeof p);
    p.v[0] = 1;
    for (int i = 0; i < 1000; i++) {
        p.t_s = i;
        p.j[0] = 2.0 * i;
        assert_int_equal(timeline_append(&tl, &p, i == 100 || i == 990), 0);
        assert_true(tl.len <= 64);
    }
    assert_true(tl.len >= 32);
    assert_true(tl.t[0] == 0);
    assert_true(tl.t[tl.len - 1] == 999);
    /* The newest quarter of the cap is at the full rate. */
    for (size_t k = tl.len - 16; k < tl.len; k++)
        if (tl.t[k] - tl.t[k - 1] != 1.0)
            fail_msg("sample %zu at %.0f s follows one at %.0f s: recent samples were thinned", k,
                     tl.t[k], tl.t[k - 1]);
    int saw100 = 0, saw990 = 0;
    for (size_t k = 0; k < tl.len; k++) {
        if (k)
            assert_true(tl.t[k] > tl.t[k - 1]);
        assert_true(tl.j[k] == 2.0 * tl.t[k]);
        saw100 |= tl.t[k] == 100;
        saw990 |= tl.t[k] == 990;
    }
    assert_true(saw100 && saw990);
    /* Between samples, thinned or not, the joules are interpolated. */
    struct meter_point q;
    assert_int_equal(timeline_at(&tl, 501.5, 2.5, &q), 0);
    assert_true(fabs(q.j[0] - 1003.0) < 1e-9);
    timeline_free(&tl);
}

/* CPU-time estimate on a fixture /proc/stat, through the meter. */
static void test_estimator(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-estimate");
    fx_proc_stat(fx, 4, 1000, 9000);
    struct jb_meter_options opt;
    jb_meter_options_init(&opt);
    opt.sysfs_root = fx_sysfs_root(fx);
    opt.procfs_root = fx_procfs_root(fx);
    opt.interval_ms = -1;
    opt.cpu_watts = 50;
    struct jb_meter *m;
    char err[256];
    assert_int_equal(jb_meter_open(&m, &opt, err, sizeof err), 0);
    assert_int_equal(jb_meter_sensor_count(m), 1);
    assert_true(jb_meter_any_estimated(m));
    assert_true(jb_meter_note_count(m) >= 3); /* perf, powercap, hwmon found nothing */
    assert_non_null(jb_meter_note(m, 0));
    assert_null(jb_meter_note(m, 99));
    assert_int_equal(jb_meter_begin(m, "e"), 0);
    fx_proc_stat(fx, 4, 1000 + 200, 9100); /* 200 busy ticks over 4 CPUs */
    /* 25 J must take a plausible time, or the meter calls it a reset. */
    time_sleep_s(0.05, NULL);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "e", &e), 0);
    double hz = (double)sysconf(_SC_CLK_TCK);
    double want = 200.0 / (hz * 4) * 50;
    assert_true(fabs(e.sensor_j[0] - want) < 1e-9);
    assert_true(e.total_valid && e.total_estimated);
    assert_true(e.domain_estimated & (1u << JB_DOMAIN_CPU));
    assert_true(fabs(e.total_j - want) < 1e-9);
    jb_meter_close(m);
    fx_free(fx);
}

static void test_no_sensors(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-none");
    struct jb_meter *m = open_meter(fx, 20, 1);
    assert_int_equal(jb_meter_sensor_count(m), 0);
    assert_false(jb_meter_any_estimated(m));
    assert_int_equal(jb_meter_begin(m, "nothing"), 0);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "nothing", &e), 0);
    assert_false(e.total_valid);
    assert_true(isnan(e.total_j)); /* missing, not zero */
    assert_int_equal(e.domain_valid, 0);
    jb_meter_close(m);
    fx_free(fx);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct jb_meter_options opt;
    struct jb_meter *m = (struct jb_meter *)&opt;
    char err[256];
    jb_meter_options_init(&opt);
    opt.interval_ms = 0.5;
    assert_int_equal(jb_meter_open(&m, &opt, err, sizeof err), JB_ERR_USAGE);
    assert_null(m);
    assert_non_null(strstr(err, "interval"));
    jb_meter_options_init(&opt);
    opt.cpu_watts = -3;
    assert_int_equal(jb_meter_open(&m, &opt, err, sizeof err), JB_ERR_USAGE);
    jb_meter_options_init(&opt);
    opt.backends = "powercap,bogus";
    assert_int_equal(jb_meter_open(&m, &opt, err, sizeof err), JB_ERR_USAGE);
    assert_non_null(strstr(err, "bogus"));
    jb_meter_close(NULL);
}

struct thread_arg {
    struct jb_meter *m;
    int id;
    int failures;
};

static void *window_thread(void *p)
{
    struct thread_arg *a = p;
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "t%d-%d", a->id, i);
        struct jb_energy e;
        double t;
        if (jb_meter_begin(a->m, name) || jb_meter_mark(a->m, &t) || jb_meter_end(a->m, name, &e) ||
            !e.total_valid || e.total_j < 0)
            a->failures++;
        if (jb_meter_energy_between(a->m, e.t_begin_s, e.t_end_s, &e) || !e.total_valid)
            a->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-threads");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    fx_set_watts(fx, pkg, 10);
    fx_start(fx, 500);
    struct jb_meter *m = open_meter(fx, 5, 1);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){m, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, window_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    jb_meter_close(m);
    fx_free(fx);
}

static pthread_barrier_t start_barrier;

static void *start_thread(void *p)
{
    pthread_barrier_wait(&start_barrier);
    return (void *)(intptr_t)jb_meter_start(p);
}

/* Eight threads start one meter at the same moment: exactly one sampler
 * runs (a second one would double the timeline's rate, and close() would
 * join only one of them). */
static void test_concurrent_start(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("m-start");
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    struct jb_meter_options opt;
    jb_meter_options_init(&opt);
    opt.sysfs_root = fx_sysfs_root(fx);
    opt.procfs_root = fx_procfs_root(fx);
    opt.interval_ms = 10;
    opt.no_estimate = 1;
    struct jb_meter *m;
    char err[256];
    assert_int_equal(jb_meter_open(&m, &opt, err, sizeof err), 0);
    pthread_t th[8];
    assert_int_equal(pthread_barrier_init(&start_barrier, NULL, 8), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, start_thread, m), 0);
    for (int i = 0; i < 8; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        assert_int_equal((int)(intptr_t)rc, 0);
    }
    pthread_barrier_destroy(&start_barrier);
    double t0 = jb_clock_s();
    time_sleep_s(0.2, NULL);
    size_t len = jb_meter_timeline_len(m);
    double elapsed = jb_clock_s() - t0;
    /* One sampler: the first reading plus at most one per 10 ms (it skips
     * the ticks it misses rather than catching up), and some slack. */
    size_t most = 1 + (size_t)(elapsed / 0.010) + 1 + 3;
    if (len > most)
        fail_msg("%zu samples in %.3f s at 10 ms: more than one sampler runs (at most %zu)", len,
                 elapsed, most);
    assert_true(len >= 2); /* and one does run */
    jb_meter_close(m);
    fx_free(fx);
}

/* The domains a total adds up: cores and uncore sit inside cpu, and
 * system (psys, a board's input) counts only when nothing else does. */
static void test_domains_in_total(void **state)
{
    (void)state;
#define D(x) (1u << JB_DOMAIN_##x)
    assert_int_equal(jb_domains_in_total(D(CPU) | D(CORES) | D(UNCORE) | D(DRAM) | D(SYSTEM)),
                     D(CPU) | D(DRAM));
    assert_int_equal(jb_domains_in_total(D(GPU) | D(SYSTEM)), D(GPU));
    assert_int_equal(jb_domains_in_total(D(SYSTEM) | D(UNCORE)), D(SYSTEM));
    assert_int_equal(jb_domains_in_total(D(SYSTEM)), D(SYSTEM));
    assert_int_equal(jb_domains_in_total(D(CORES)), 0);
    assert_int_equal(jb_domains_in_total(0), 0);
#undef D
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_watts),
        cmocka_unit_test(test_domains_in_total),
        cmocka_unit_test(test_wrap_in_window),
        cmocka_unit_test(test_two_sockets),
        cmocka_unit_test(test_exact_arithmetic),
        cmocka_unit_test(test_counter_reset),
        cmocka_unit_test(test_zone_disappears),
        cmocka_unit_test(test_garbage_midrun),
        cmocka_unit_test(test_transient_read_error),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_marks_and_between),
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_power_sensor),
        cmocka_unit_test(test_timeline_thinning),
        cmocka_unit_test(test_estimator),
        cmocka_unit_test(test_no_sensors),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_concurrent_start),
        cmocka_unit_test(test_thinning_keeps_recent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
