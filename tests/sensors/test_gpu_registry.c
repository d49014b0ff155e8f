/* GPU and board sensors through the registry: an AMD GPU's hwmon
 * energy1_input counter (hwmon backend), Jetson rails with their parent
 * resolved (ina3221), NVIDIA GPUs from the fake NVML (nvml), all opened and
 * marked used by sensor_registry_open() as the meter will. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/timeutil.h"
#include "fixture_sysfs.h"
#include "sensors/sensor.h"

static int find(const struct sensor_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i]->info.name, name) == 0)
            return (int)i;
    return -1;
}

/* amdgpu with both an energy counter (µJ) and a power reading: the counter
 * is the sensor, the power reading is not added a second time. */
static void test_amdgpu_energy_counter(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("amdgpu");
    fx_hwmon(fx, 2, "amdgpu", "pci0000:00/0000:00:03.1/0000:0b:00.0");
    int energy = fx_hwmon_counter(fx, 2, "energy1_input", FX_ENERGY_UJ, 5000000);
    int power = fx_hwmon_counter(fx, 2, "power1_average", FX_POWER_UW, 0);
    fx_set_watts(fx, energy, 150.0);
    fx_set_watts(fx, power, 150.0);
    fx_start(fx, 1000);

    struct sensor_env env = {.sysfs_root = fx_sysfs_root(fx),
                             .procfs_root = fx_procfs_root(fx),
                             .nvml_lib = "/nonexistent/libnvidia-ml.so.1"};
    struct sensor_set set = {0};
    char err[ERR_LEN];
    assert_int_equal(sensor_registry_open(&env, "hwmon", 1, &set, err), 0);
    assert_int_equal(set.n, 1);
    struct sensor *s = set.items[0];
    assert_string_equal(s->info.name, "amdgpu:0000:0b:00.0");
    assert_int_equal(s->info.domain, JB_DOMAIN_GPU);
    assert_int_equal(s->info.kind, JB_SENSOR_ENERGY);
    assert_int_equal(s->info.readable, 1);
    assert_int_equal(s->info.used, 1);
    assert_non_null(strstr(s->info.label, "energy1_input"));

    /* The meter stamps readings itself (sensor_reading.t_s): so does this. */
    struct sensor_reading a, b;
    double ta = jb_clock_s();
    assert_int_equal(s->backend->read(s, &a), 0);
    time_sleep_s(0.3, NULL);
    double tb = jb_clock_s();
    assert_int_equal(s->backend->read(s, &b), 0);
    double got = (double)(b.raw - a.raw) * s->joules_per_unit;
    double truth = fx_true_joules(fx, energy, ta, tb);
    /* The writer runs at 1 kHz but may lag on a loaded machine: allow each
     * reading 10 ms of staleness at 150 W. */
    assert_true(truth > 40.0);
    assert_true(fabs(got - truth) <= 0.02 * truth + 2 * 150.0 * 0.010);
    sensor_set_clear(&set);
    fx_free(fx);
}

/* An Orin NX's INA3221 at i2c-1/1-0040, as class/hwmon/hwmon1. */
static void add_orin_nx(struct fx_sysfs *fx)
{
    const char *dev = "devices/platform/bus@0/c240000.i2c/i2c-1/1-0040/hwmon/hwmon1";
    const char *files[][2] = {
        {"name", "ina3221\n"},     {"in1_label", "VDD_IN\n"},         {"in1_input", "5080\n"},
        {"curr1_input", "1450\n"}, {"in2_label", "VDD_CPU_GPU_CV\n"}, {"in2_input", "5072\n"},
        {"curr2_input", "410\n"},  {"in3_label", "VDD_SOC\n"},        {"in3_input", "5076\n"},
        {"curr3_input", "298\n"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "%s/%s", dev, files[i][0]);
        fx_write(fx, rel, files[i][1]);
    }
    char rel[256], target[256];
    snprintf(rel, sizeof rel, "%s/device", dev);
    fx_symlink(fx, rel, "../../../1-0040");
    snprintf(target, sizeof target, "../../%s", dev);
    fx_symlink(fx, "class/hwmon/hwmon1", target);
}

/* A Jetson Orin NX next to a machine with an NVIDIA GPU: every sensor
 * opened and used, the rails inside VDD_IN by index. */
static void test_jetson_and_nvml(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("jetson");
    add_orin_nx(fx);
    setenv("FAKE_NVML_GPUS",
           "NVIDIA RTX 6000 Ada Generation|GPU-77777777-0000-1111-2222-3333|"
           "energy|90",
           1);
    struct sensor_env env = {.sysfs_root = fx_sysfs_root(fx),
                             .procfs_root = fx_procfs_root(fx),
                             .nvml_lib = FAKE_NVML_LIB};
    struct sensor_set set = {0};
    char err[ERR_LEN];
    assert_int_equal(sensor_registry_open(&env, "ina3221,nvml", 1, &set, err), 0);
    assert_int_equal(set.n, 4);
    int in = find(&set, "ina3221:VDD_IN"), cgc = find(&set, "ina3221:VDD_CPU_GPU_CV");
    int soc = find(&set, "ina3221:VDD_SOC"), gpu = find(&set, "nvml:gpu0");
    assert_true(in >= 0 && cgc >= 0 && soc >= 0 && gpu >= 0);
    for (size_t i = 0; i < set.n; i++) {
        assert_int_equal(set.items[i]->info.readable, 1);
        assert_int_equal(set.items[i]->info.used, 1);
    }
    assert_int_equal(set.items[in]->info.parent, -1);
    assert_int_equal(set.items[cgc]->info.parent, in);
    assert_int_equal(set.items[soc]->info.parent, in);
    assert_int_equal(set.items[gpu]->info.parent, -1);
    assert_non_null(strstr(set.items[gpu]->info.device, "GPU-77777777-0000-1111-2222-3333"));
    sensor_set_clear(&set);
    unsetenv("FAKE_NVML_GPUS");
    fx_free(fx);
}

/* On a Jetson the CPU draws from measured rails: the CPU-time estimate is
 * not used, and the meter's total is VDD_IN, the whole module, measured. */
static void test_jetson_total_is_the_module(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("jetson");
    add_orin_nx(fx);
    fx_proc_stat(fx, 8, 1000, 9000);

    struct sensor_env env = {.sysfs_root = fx_sysfs_root(fx),
                             .procfs_root = fx_procfs_root(fx),
                             .nvml_lib = "/nonexistent/libnvidia-ml.so.1"};
    struct sensor_set set = {0};
    char err[ERR_LEN];
    assert_int_equal(sensor_registry_open(&env, "ina3221,estimate", 0, &set, err), 0);
    int est = find(&set, "estimate:cpu");
    assert_true(est >= 0);
    assert_int_equal(set.items[est]->info.used, 0);
    assert_non_null(strstr(set.items[est]->info.reason, "ina3221:"));
    sensor_set_clear(&set);

    struct jb_meter_options opt;
    jb_meter_options_init(&opt);
    opt.sysfs_root = fx_sysfs_root(fx);
    opt.procfs_root = fx_procfs_root(fx);
    opt.backends = "ina3221,estimate";
    opt.interval_ms = 10;
    struct jb_meter *m = NULL;
    char merr[256];
    assert_int_equal(jb_meter_open(&m, &opt, merr, sizeof merr), 0);
    assert_int_equal(jb_meter_start(m), 0);
    assert_int_equal(jb_meter_any_estimated(m), 0);
    assert_int_equal(jb_meter_begin(m, "w"), 0);
    time_sleep_s(0.3, NULL);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "w", &e), 0);
    double module_w = 5.080 * 1.450, soc_w = 5.072 * 0.410 + 5.076 * 0.298;
    assert_true(e.total_valid);
    assert_int_equal(e.total_estimated, 0);
    assert_true(fabs(e.total_j - module_w * e.duration_s) < 0.01 * module_w * e.duration_s);
    assert_true(e.domain_valid & (1u << JB_DOMAIN_SOC));
    assert_true(fabs(e.domain_j[JB_DOMAIN_SOC] - soc_w * e.duration_s) <
                0.01 * soc_w * e.duration_s);
    jb_meter_close(m);
    fx_free(fx);
}

/* JOULEBENCH_NVML_LIB reaches the backend through jb_meter_open(), and the
 * GPU's energy counter gives the window's GPU joules. */
static void test_meter_nvml_env(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("nvml");
    setenv("FAKE_NVML_GPUS", "NVIDIA H100 80GB HBM3|GPU-88888888-0000-1111-2222-3333|energy|300",
           1);
    setenv("JOULEBENCH_NVML_LIB", FAKE_NVML_LIB, 1);
    struct jb_meter_options opt;
    jb_meter_options_init(&opt);
    opt.sysfs_root = fx_sysfs_root(fx);
    opt.procfs_root = fx_procfs_root(fx);
    opt.backends = "nvml";
    opt.interval_ms = 20;
    struct jb_meter *m = NULL;
    char merr[256];
    assert_int_equal(jb_meter_open(&m, &opt, merr, sizeof merr), 0);
    assert_int_equal(jb_meter_sensor_count(m), 1);
    const struct jb_sensor_info *info = jb_meter_sensor(m, 0);
    assert_string_equal(info->name, "nvml:gpu0");
    assert_int_equal(info->used, 1);
    assert_int_equal(jb_meter_start(m), 0);
    assert_int_equal(jb_meter_begin(m, "w"), 0);
    time_sleep_s(0.5, NULL);
    struct jb_energy e;
    assert_int_equal(jb_meter_end(m, "w", &e), 0);
    assert_true(e.sensor_valid[0]);
    assert_true(fabs(e.domain_j[JB_DOMAIN_GPU] - 300.0 * e.duration_s) <
                0.03 * 300.0 * e.duration_s);
    assert_int_equal(e.flags & JB_ENERGY_SHORT, 0);
    /* a window shorter than NVML's ~100 ms refresh is flagged */
    assert_int_equal(jb_meter_begin(m, "short"), 0);
    assert_int_equal(jb_meter_end(m, "short", &e), 0);
    assert_true(e.flags & JB_ENERGY_SHORT);
    jb_meter_close(m);
    unsetenv("JOULEBENCH_NVML_LIB");
    unsetenv("FAKE_NVML_GPUS");
    fx_free(fx);
}

/* The backends answer to their names in `only`, and list themselves when
 * a name is wrong. */
static void test_backend_names(void **state)
{
    (void)state;
    struct sensor_env env = {.sysfs_root = "/nonexistent",
                             .procfs_root = "/nonexistent",
                             .nvml_lib = "/nonexistent/libnvidia-ml.so.1"};
    struct sensor_set set = {0};
    char err[ERR_LEN] = "";
    assert_int_equal(sensor_registry_open(&env, "cuda", 1, &set, err), JB_ERR_USAGE);
    assert_non_null(strstr(err, "nvml"));
    assert_non_null(strstr(err, "ina3221"));
    assert_int_equal(sensor_registry_open(&env, "nvml", 1, &set, err), 0);
    assert_int_equal(set.n, 0);
    assert_int_equal(set.n_notes, 1);
    assert_non_null(strstr(set.notes[0], "/nonexistent/libnvidia-ml.so.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amdgpu_energy_counter),
        cmocka_unit_test(test_jetson_and_nvml),
        cmocka_unit_test(test_jetson_total_is_the_module),
        cmocka_unit_test(test_meter_nvml_env),
        cmocka_unit_test(test_backend_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
