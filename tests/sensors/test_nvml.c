/* The NVML backend against a fake libnvidia-ml built by the tests
 * (fake_nvml.c): two GPUs, a GPU without the energy counter, a GPU that
 * cannot be read, a missing required symbol, a library that is absent, a
 * driver that is not loaded, a GPU lost mid-run. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/timeutil.h"
#include "sensors/nvml.h"

/* The test's own handle on the fake keeps it loaded (the backend's dlopen
 * then returns the same instance) and reaches its control functions. */
static void *fake;
static void (*set_energy)(unsigned int, unsigned long long);
static void (*set_status)(unsigned int, int);
static int (*init_count)(void);
static unsigned long (*energy_reads)(void);

static int setup(void **state)
{
    (void)state;
    fake = dlopen(FAKE_NVML_LIB, RTLD_NOW | RTLD_LOCAL);
    if (!fake) {
        fprintf(stderr, "cannot load %s: %s\n", FAKE_NVML_LIB, dlerror());
        return -1;
    }
    void *p;
    p = dlsym(fake, "fake_nvml_set_energy");
    memcpy(&set_energy, &p, sizeof p);
    p = dlsym(fake, "fake_nvml_set_status");
    memcpy(&set_status, &p, sizeof p);
    p = dlsym(fake, "fake_nvml_init_count");
    memcpy(&init_count, &p, sizeof p);
    p = dlsym(fake, "fake_nvml_energy_reads");
    memcpy(&energy_reads, &p, sizeof p);
    return set_energy && set_status && init_count && energy_reads ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    dlclose(fake);
    return 0;
}

static int reset_env(void **state)
{
    (void)state;
    unsetenv("FAKE_NVML_INIT");
    unsetenv("FAKE_NVML_GPUS");
    unsetenv("FAKE_NVML_DRIVER");
    unsetenv("FAKE_NVML_READ_US");
    return 0;
}

static void probe_with(const char *lib, struct sensor_set *set)
{
    struct sensor_env env = {
        .sysfs_root = "/nonexistent", .procfs_root = "/nonexistent", .nvml_lib = lib};
    memset(set, 0, sizeof *set);
    assert_int_equal(sensor_nvml.probe(&env, set), 0);
}

static int any_note_has(const struct sensor_set *set, const char *needle)
{
    for (size_t i = 0; i < set->n_notes; i++)
        if (strstr(set->notes[i], needle))
            return 1;
    return 0;
}

static struct jb_meter *open_nvml_meter_tl(double interval_ms, size_t timeline_max)
{
    struct jb_meter_options opt;
    jb_meter_options_init(&opt);
    opt.timeline_max = timeline_max;
    opt.sysfs_root = "/nonexistent";
    opt.procfs_root = "/nonexistent";
    opt.nvml_lib = FAKE_NVML_LIB;
    opt.backends = "nvml";
    opt.interval_ms = interval_ms;
    struct jb_meter *m = NULL;
    char err[256];
    assert_int_equal(jb_meter_open(&m, &opt, err, sizeof err), 0);
    assert_int_equal(jb_meter_sensor_count(m), 1);
    assert_true(jb_meter_sensor(m, 0)->used);
    return m;
}

static struct jb_meter *open_nvml_meter(double interval_ms)
{
    return open_nvml_meter_tl(interval_ms, 0);
}

/* A counter that publishes in steps is read between its updates at the
 * edges of an interval: marks place every update, so the figures are
 * exact arithmetic on the marks' own timestamps. */
static void test_stepped_counter_edges(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 80GB HBM3|GPU-1|energy|0", 1);
    set_energy(0, 1000000); /* 1000 J */
    struct jb_meter *m = open_nvml_meter(-1);
    double t0, t1, t2, t3, t5;
    assert_int_equal(jb_meter_mark(m, &t0), 0);
    set_energy(0, 1005000); /* an update: +5 J */
    time_sleep_s(0.02, NULL);
    assert_int_equal(jb_meter_mark(m, &t1), 0);
    time_sleep_s(0.1, NULL);
    assert_int_equal(jb_meter_mark(m, &t2), 0); /* between updates */
    set_energy(0, 1010000);
    time_sleep_s(0.02, NULL);
    assert_int_equal(jb_meter_mark(m, &t3), 0);

    /* From t2, between the updates seen at t1 and t3, to the update at t3:
     * the staircase would say 5 J (t2 reads the t1 value). */
    struct jb_energy e;
    assert_int_equal(jb_meter_energy_between(m, t2, t3, &e), 0);
    double at_t2 = 5.0 + 5.0 * (t2 - t1) / (t3 - t1);
    assert_true(fabs(e.sensor_j[0] - (10.0 - at_t2)) < 1e-9);
    assert_true(e.sensor_j[0] < 4.0); /* well off the staircase's 5 J */
    /* t0 has no update before it: the line through the two after it. */
    assert_int_equal(jb_meter_energy_between(m, t0, t2, &e), 0);
    double at_t0 = 5.0 + 5.0 * (t0 - t1) / (t3 - t1);
    assert_true(fabs(e.sensor_j[0] - (at_t2 - at_t0)) < 1e-9);

    /* A window's edges are read the same way; its end, after the last
     * update and with no sampler to wait for the next, on the line through
     * the last two. */
    time_sleep_s(0.1, NULL);
    assert_int_equal(jb_meter_begin(m, "w"), 0);
    time_sleep_s(0.02, NULL);
    set_energy(0, 1015000);
    time_sleep_s(0.02, NULL);
    assert_int_equal(jb_meter_mark(m, &t5), 0);
    assert_int_equal(jb_meter_end(m, "w", &e), 0);
    double at_begin = 10.0 + 5.0 * (e.t_begin_s - t3) / (t5 - t3);
    double at_end = 15.0 + 5.0 * (e.t_end_s - t5) / (t5 - t3);
    assert_true(fabs(e.sensor_j[0] - (at_end - at_begin)) < 1e-9);
    assert_true(fabs(e.sensor_j[0] - 5.0) > 1.0); /* the staircase's answer */
    jb_meter_close(m);
}

/* Two updates caught a few milliseconds apart (an edge's read right after
 * the sampler's) would make a line of kilowatts: extrapolation takes the
 * next update at least half a period away instead. */
static void test_stepped_counter_close_updates(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 80GB HBM3|GPU-1|energy|0", 1);
    struct jb_meter *m = open_nvml_meter(-1);
    double t0, t1, t2, t3;
    time_sleep_s(0.01, NULL);
    assert_int_equal(jb_meter_mark(m, &t0), 0);
    set_energy(0, 1005000);
    time_sleep_s(0.002, NULL);
    assert_int_equal(jb_meter_mark(m, &t1), 0);
    set_energy(0, 1010000);
    time_sleep_s(0.002, NULL);
    assert_int_equal(jb_meter_mark(m, &t2), 0);
    time_sleep_s(0.1, NULL);
    set_energy(0, 1015000);
    assert_int_equal(jb_meter_mark(m, &t3), 0);
    struct jb_energy e;
    assert_int_equal(jb_meter_energy_between(m, t0, t3, &e), 0);
    double at_t0 = 5.0 + 10.0 * (t0 - t1) / (t3 - t1); /* the line t1..t3, not t1..t2 */
    assert_true(fabs(e.sensor_j[0] - (15.0 - at_t0)) < 1e-9);
    assert_true(e.sensor_j[0] < 12.0);
    (void)t2;
    jb_meter_close(m);
}

/* Three windows of `seconds` each on a GPU drawing 100 W: each one's error
 * in J into err, and their median returned. */
static double windows_at_100w(struct jb_meter *m, double seconds, double err[3])
{
    for (int k = 0; k < 3; k++) {
        struct jb_energy e;
        assert_int_equal(jb_meter_begin(m, "w"), 0);
        time_sleep_s(seconds, NULL);
        assert_int_equal(jb_meter_end(m, "w", &e), 0);
        assert_true(e.sensor_valid[0]);
        err[k] = fabs(e.sensor_j[0] - 100.0 * e.duration_s);
    }
    double lo = err[0] < err[1] ? err[0] : err[1], hi = err[0] < err[1] ? err[1] : err[0];
    return err[2] < lo ? lo : err[2] > hi ? hi : err[2];
}

/* With the sampler running, a window on a counter that steps every 100 ms
 * comes out near the true energy, not a whole number of steps: end waits
 * for the update after it. At 100 W a step is 10 J, and a window of about
 * 0.25 s read as a staircase is off by about 5 J; read between updates it
 * is off by the sampler's timing alone (10 ms ticks: 1 J). The median of
 * three windows is checked, so one late tick on a busy machine does not
 * decide. */
static void test_stepped_counter_windows(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 80GB HBM3|GPU-1|steps|100", 1);
    struct jb_meter *m = open_nvml_meter(10);
    assert_int_equal(jb_meter_start(m), 0);
    time_sleep_s(0.15, NULL); /* updates on the timeline before the first edge */
    double err[3];
    double median = windows_at_100w(m, 0.25, err);
    jb_meter_close(m);
    if (median >= 3.0)
        fprintf(stderr, "errors: %.2f %.2f %.2f J\n", err[0], err[1], err[2]);
    assert_true(median < 3.0);
}

/* Power over each sampler interval, as timeline.csv gives it: a counter
 * that steps every 100 ms reads as its power between steps in every
 * interval, not as 0 W in four of five and five times the power in the
 * fifth. */
static void test_stepped_counter_interval_power(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 80GB HBM3|GPU-1|steps|100", 1);
    struct jb_meter *m = open_nvml_meter(20);
    assert_int_equal(jb_meter_start(m), 0);
    time_sleep_s(0.8, NULL);
    size_t n = jb_meter_timeline_len(m);
    int rows = 0, near = 0;
    double tp = 0, tc;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(jb_meter_timeline_get(m, i, &tc, NULL, NULL), 0);
        /* the middle of the timeline: steps on both sides of every row */
        if (i > 0 && tp > 0 && i > n / 4 && i < 3 * n / 4) {
            struct jb_energy e;
            assert_int_equal(jb_meter_energy_between(m, tp, tc, &e), 0);
            assert_true(e.sensor_valid[0]);
            double w = e.sensor_j[0] / (tc - tp);
            rows++;
            near += fabs(w - 100.0) < 25.0;
        }
        tp = tc;
    }
    jb_meter_close(m);
    assert_true(rows >= 10);
    /* read as a staircase, four rows in five would be 0 W */
    assert_true(near >= rows * 3 / 4);
}

/* A sensor whose read is dear is read every few ticks, so that the
 * sampler spends at most about 2 % of a core on it: here 2 ms of CPU per
 * read against ticks of 10 ms, so every 10th tick. The figures stay
 * valid in between (the last reading holds), and windows still read it at
 * both edges. (An older GPU's power reading: it has no steps to follow.) */
static void test_dear_sensor_is_paced(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "Tesla K80|GPU-1|power|100", 1);
    setenv("FAKE_NVML_READ_US", "2000", 1);
    struct jb_meter *m = open_nvml_meter(10);
    const struct jb_sensor_info *info = jb_meter_sensor(m, 0);
    assert_true(info->read_cost_s >= 0.002);
    assert_true(fabs(info->read_interval_s - 0.1) < 0.0105); /* 10 or 11 ticks */
    /* Marks, taken while the work runs, do not pay for it: ten reads would
     * burn 20 ms of this thread's CPU. */
    double c0 = time_thread_cpu_s();
    for (int k = 0; k < 10; k++)
        assert_int_equal(jb_meter_mark(m, NULL), 0);
    assert_true(time_thread_cpu_s() - c0 < 0.01);
    assert_int_equal(jb_meter_start(m), 0);
    struct jb_energy e;
    assert_int_equal(jb_meter_begin(m, "w"), 0);
    time_sleep_s(1.0, NULL);
    assert_int_equal(jb_meter_end(m, "w", &e), 0);
    double cpu = jb_meter_sampler_cpu_s(m);
    jb_meter_close(m);
    assert_true(e.sensor_valid[0]);
    assert_true(e.sensor_j[0] > 0);
    /* Read every tick, the sampler would have burnt about 0.2 s; paced,
     * about 0.02 s (a missed tick on a busy machine only lowers it). */
    assert_true(cpu < 0.08);
}

/* A dear counter that publishes in steps is read in phase with them: on
 * the tick after every other step here (3 ms a read, 100 ms steps, 2 % of
 * a core allows one read per 150 ms: every 200 ms). Each step it sees is
 * then at most a tick old, so windows come out as near the truth as with a
 * read every tick (see test_stepped_counter_windows), for a fraction of
 * the CPU. */
static void test_dear_stepped_sensor_is_phased(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 80GB HBM3|GPU-1|steps|100", 1);
    setenv("FAKE_NVML_READ_US", "3000", 1);
    struct jb_meter *m = open_nvml_meter(10);
    assert_true(fabs(jb_meter_sensor(m, 0)->read_interval_s - 0.2) < 1e-9);
    assert_int_equal(jb_meter_start(m), 0);
    time_sleep_s(0.3, NULL); /* the phase is found, and updates precede the edges */
    double err[3];
    double median = windows_at_100w(m, 0.25, err);
    double cpu = jb_meter_sampler_cpu_s(m);
    jb_meter_close(m);
    if (median >= 3.0 || cpu >= 0.15)
        fprintf(stderr, "errors: %.2f %.2f %.2f J, sampler %.3f s\n", err[0], err[1], err[2], cpu);
    assert_true(median < 3.0);
    /* Read every tick: about 0.33 s of CPU over these 1.1 s. */
    assert_true(cpu < 0.15);
}

/* Locked in phase, the sampler stays locked: its check reads, one cycle in
 * eight, must not read the step the due read is waiting for (they did,
 * and every eighth cycle began a hunt of a read per tick). Over 8 s at one
 * read per 200 ms (20 ms ticks): 40 due reads, 5 checks, the first hunt,
 * and the reads at open: 45 to 47 here, busy or not; a hunt every eighth
 * cycle made it 60 or 61. */
static void test_phase_stays_locked(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 80GB HBM3|GPU-1|steps|100", 1);
    setenv("FAKE_NVML_READ_US", "3000", 1);
    struct jb_meter *m = open_nvml_meter(20);
    unsigned long r0 = energy_reads();
    assert_int_equal(jb_meter_start(m), 0);
    time_sleep_s(8.0, NULL);
    jb_meter_close(m);
    unsigned long reads = energy_reads() - r0;
    if (reads > 53)
        fprintf(stderr, "%lu reads in 8 s\n", reads);
    assert_true(reads <= 53);
}

struct ender {
    struct jb_meter *m;
    volatile int started;
    int rc;
    struct jb_energy e;
};

static void *end_window(void *p)
{
    struct ender *a = p;
    a->started = 1;
    a->rc = jb_meter_end(a->m, "w", &a->e);
    return NULL;
}

/* A window's end waits for the counter's next step with the lock
 * released; a close meanwhile lets it finish before the meter goes (under
 * ASan, the build the tests also run in, a use after free otherwise). */
static void test_close_while_an_end_waits(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 80GB HBM3|GPU-1|steps|100", 1);
    struct jb_meter *m = open_nvml_meter(10);
    assert_int_equal(jb_meter_start(m), 0);
    time_sleep_s(0.25, NULL);
    assert_int_equal(jb_meter_begin(m, "w"), 0);
    time_sleep_s(0.1, NULL);
    struct ender a;
    memset(&a, 0, sizeof a);
    a.m = m;
    a.rc = -1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, end_window, &a), 0);
    while (!a.started)
        time_sleep_s(0.001, NULL);
    time_sleep_s(0.01, NULL); /* inside its wait, most likely */
    jb_meter_close(m);
    pthread_join(th, NULL);
    assert_int_equal(a.rc, 0);
    assert_true(a.e.sensor_valid[0]);
}

/* A long run thins the older half of the timeline. Samples where a stepped
 * counter moves are kept, or its steps there would be placed late and an
 * interval reaching back into that half read high (windows of 1 s at
 * 100 W, with a timeline of 16 samples). */
static void test_thinning_keeps_the_steps(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 80GB HBM3|GPU-1|steps|100", 1);
    struct jb_meter *m = open_nvml_meter_tl(10, 16);
    assert_int_equal(jb_meter_start(m), 0);
    time_sleep_s(0.15, NULL);
    double err[3];
    (void)windows_at_100w(m, 1.0, err);
    jb_meter_close(m);
    double hi = err[0] < err[1] ? err[1] : err[0];
    double worst = hi > err[2] ? hi : err[2];
    if (worst >= 2.0)
        fprintf(stderr, "errors: %.2f %.2f %.2f J\n", err[0], err[1], err[2]);
    assert_true(worst < 2.0); /* one window in three 4 to 5.6 J off, before */
}

static void test_two_gpus(void **state)
{
    (void)state;
    setenv("FAKE_NVML_DRIVER", "550.54.15", 1);
    setenv("FAKE_NVML_GPUS",
           "NVIDIA H100 80GB HBM3|GPU-1f2e3d4c-0000-1111-2222-333344445555|energy|300;"
           "NVIDIA A100-SXM4-40GB|GPU-9a8b7c6d-6666-7777-8888-999900001111|energy|250",
           1);
    struct sensor_set set;
    probe_with(FAKE_NVML_LIB, &set);
    assert_int_equal(set.n, 2);
    assert_int_equal(init_count(), 1);

    struct sensor *g0 = set.items[0], *g1 = set.items[1];
    assert_string_equal(g0->info.name, "nvml:gpu0");
    assert_string_equal(g1->info.name, "nvml:gpu1");
    assert_string_equal(g0->info.backend, "nvml");
    assert_int_equal(g0->info.domain, JB_DOMAIN_GPU);
    assert_int_equal(g0->info.kind, JB_SENSOR_ENERGY);
    assert_int_equal(g0->info.estimated, 0);
    assert_non_null(strstr(g0->info.device, "NVIDIA H100 80GB HBM3"));
    assert_non_null(strstr(g0->info.device, "GPU-1f2e3d4c-0000-1111-2222-333344445555"));
    assert_non_null(strstr(g0->info.device, "driver 550.54.15"));
    assert_non_null(strstr(g1->info.device, "GPU-9a8b7c6d-6666-7777-8888-999900001111"));
    assert_true(g0->info.update_period_s > 0.0 && g0->info.update_period_s <= 0.2);
    assert_true(g0->joules_per_unit == 1e-3);

    assert_int_equal(g0->backend->open(g0), 0);
    assert_int_equal(g1->backend->open(g1), 0);
    assert_int_equal(g0->info.readable, 1);

    /* Exact counter values pass through untouched (mJ). */
    struct sensor_reading a, b;
    set_energy(0, 123456789012ull);
    assert_int_equal(g0->backend->read(g0, &a), 0);
    set_energy(0, 123456791512ull);
    assert_int_equal(g0->backend->read(g0, &b), 0);
    assert_true(a.raw == 123456789012ull);
    assert_true((b.raw - a.raw) * g0->joules_per_unit == 2.5);
    assert_true(b.t_s >= a.t_s);

    /* A counter advancing at 250 W reads as 250 W over its own timestamps. */
    assert_int_equal(g1->backend->read(g1, &a), 0);
    time_sleep_s(0.2, NULL);
    assert_int_equal(g1->backend->read(g1, &b), 0);
    double watts = (double)(b.raw - a.raw) * g1->joules_per_unit / (b.t_s - a.t_s);
    assert_true(fabs(watts - 250.0) < 250.0 * 0.03);

    g0->backend->close(g0);
    assert_int_equal(init_count(), 1); /* still shared with gpu1 */
    g1->backend->close(g1);
    assert_int_equal(init_count(), 0); /* the last close shuts NVML down */
}

static void test_power_fallback(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "Tesla K80|GPU-0b0b0b0b-1212-3434-5656-787878787878|power|149.5", 1);
    struct sensor_set set;
    probe_with(FAKE_NVML_LIB, &set);
    assert_int_equal(set.n, 1);
    struct sensor *s = set.items[0];
    assert_int_equal(s->info.kind, JB_SENSOR_POWER);
    assert_non_null(strstr(s->info.label, "power"));
    assert_int_equal(s->backend->open(s), 0);
    assert_int_equal(s->info.readable, 1);
    struct sensor_reading r;
    assert_int_equal(s->backend->read(s, &r), 0);
    assert_true(r.power_w == 149.5);
    sensor_set_clear(&set);
    assert_int_equal(init_count(), 0);
}

static void test_neither_energy_nor_power(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "Quadro K420|GPU-1|none", 1);
    struct sensor_set set;
    probe_with(FAKE_NVML_LIB, &set);
    assert_int_equal(set.n, 1);
    struct sensor *s = set.items[0];
    assert_int_not_equal(s->backend->open(s), 0);
    assert_int_equal(s->info.readable, 0);
    assert_non_null(strstr(s->info.reason, "neither an energy counter nor power"));
    sensor_set_clear(&set);
}

static void test_no_permission(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA L4|GPU-2|noperm;NVIDIA L4|GPU-3|nohandle", 1);
    struct sensor_set set;
    probe_with(FAKE_NVML_LIB, &set);
    assert_int_equal(set.n, 2);
    for (size_t i = 0; i < 2; i++) {
        struct sensor *s = set.items[i];
        assert_int_not_equal(s->backend->open(s), 0);
        assert_int_equal(s->info.readable, 0);
        assert_non_null(strstr(s->info.reason, "permission denied"));
        assert_non_null(strstr(s->info.fix, "/dev/nvidia"));
    }
    assert_string_equal(set.items[1]->info.name, "nvml:gpu1");
    sensor_set_clear(&set);
    assert_int_equal(init_count(), 0);
}

static void test_gpu_lost_mid_run(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 PCIe|GPU-4|energy|200", 1);
    struct sensor_set set;
    probe_with(FAKE_NVML_LIB, &set);
    struct sensor *s = set.items[0];
    assert_int_equal(s->backend->open(s), 0);
    struct sensor_reading r;
    assert_int_equal(s->backend->read(s, &r), 0);
    set_status(0, 15); /* NVML_ERROR_GPU_IS_LOST */
    assert_int_equal(s->backend->read(s, &r), JB_ERR_NOTFOUND);
    assert_non_null(strstr(s->backend->last_error(s), "GPU is lost"));
    assert_non_null(strstr(s->backend->last_error(s), "nvml:gpu0"));
    set_status(0, 0);
    sensor_set_clear(&set);
}

static void test_required_symbol_missing(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "NVIDIA H100|GPU-5|energy|300", 1);
    struct sensor_set set;
    probe_with(FAKE_NVML_NOCOUNT_LIB, &set);
    assert_int_equal(set.n, 0);
    assert_true(any_note_has(&set, "nvmlDeviceGetCount_v2"));
    assert_true(any_note_has(&set, "update the NVIDIA driver"));
}

static void test_library_absent(void **state)
{
    (void)state;
    struct sensor_set set;
    probe_with("/nonexistent/libnvidia-ml.so.1", &set);
    assert_int_equal(set.n, 0);
    assert_true(any_note_has(&set, "/nonexistent/libnvidia-ml.so.1"));
    assert_true(any_note_has(&set, "JOULEBENCH_NVML_LIB"));

    /* The usual sonames: absent on a machine without the NVIDIA driver. */
    void *real = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (real) {
        dlclose(real);
        printf("test_library_absent: libnvidia-ml.so.1 is installed here; the no-driver "
               "message is not checked\n");
        skip();
    }
    probe_with(NULL, &set);
    assert_int_equal(set.n, 0);
    assert_true(any_note_has(&set, "no NVIDIA driver found (libnvidia-ml.so.1"));
    assert_true(any_note_has(&set, "install the NVIDIA driver"));
}

static void test_init_fails(void **state)
{
    (void)state;
    setenv("FAKE_NVML_INIT", "9", 1); /* NVML_ERROR_DRIVER_NOT_LOADED */
    setenv("FAKE_NVML_GPUS", "NVIDIA H100|GPU-6|energy|300", 1);
    struct sensor_set set;
    probe_with(FAKE_NVML_LIB, &set);
    assert_int_equal(set.n, 0);
    assert_true(any_note_has(&set, "kernel driver is not loaded"));
    assert_true(any_note_has(&set, "modprobe nvidia"));
    assert_int_equal(init_count(), 0);
}

static void test_no_gpu(void **state)
{
    (void)state;
    setenv("FAKE_NVML_GPUS", "", 1);
    struct sensor_set set;
    probe_with(FAKE_NVML_LIB, &set);
    assert_int_equal(set.n, 0);
    assert_true(any_note_has(&set, "reports no GPU"));
    assert_int_equal(init_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_two_gpus, reset_env),
        cmocka_unit_test_setup(test_stepped_counter_edges, reset_env),
        cmocka_unit_test_setup(test_stepped_counter_close_updates, reset_env),
        cmocka_unit_test_setup(test_stepped_counter_windows, reset_env),
        cmocka_unit_test_setup(test_stepped_counter_interval_power, reset_env),
        cmocka_unit_test_setup(test_dear_sensor_is_paced, reset_env),
        cmocka_unit_test_setup(test_dear_stepped_sensor_is_phased, reset_env),
        cmocka_unit_test_setup(test_phase_stays_locked, reset_env),
        cmocka_unit_test_setup(test_close_while_an_end_waits, reset_env),
        cmocka_unit_test_setup(test_thinning_keeps_the_steps, reset_env),
        cmocka_unit_test_setup(test_power_fallback, reset_env),
        cmocka_unit_test_setup(test_neither_energy_nor_power, reset_env),
        cmocka_unit_test_setup(test_no_permission, reset_env),
        cmocka_unit_test_setup(test_gpu_lost_mid_run, reset_env),
        cmocka_unit_test_setup(test_required_symbol_missing, reset_env),
        cmocka_unit_test_setup(test_library_absent, reset_env),
        cmocka_unit_test_setup(test_init_fails, reset_env),
        cmocka_unit_test_setup(test_no_gpu, reset_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
