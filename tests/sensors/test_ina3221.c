/* Jetson INA3221 rails on fixture trees shaped like a Jetson's /sys:
 * class/hwmon/hwmonN -> ../../devices/.../i2c-1/1-0040/hwmon/hwmonN, with
 * the driver's in<N>_label, in<N>_input (mV), curr<N>_input (mA). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/fs.h"
#include "sensors/ina3221.h"
#include "testutil.h"

struct rail {
    const char *label; /* NULL: no in<N>_label file */
    int mv, ma;
    int enabled;
};

/* One INA3221 at i2c-<bus>/<addr>, seen as class/hwmon/<hwmon>. */
static void add_monitor(const char *root, int bus, const char *addr, const char *hwmon,
                        const struct rail rails[3])
{
    char dev[512], rel[600], text[64];
    snprintf(dev, sizeof dev, "devices/platform/bus@0/c240000.i2c/i2c-%d/%s/hwmon/%s", bus, addr,
             hwmon);
    snprintf(rel, sizeof rel, "%s/name", dev);
    tu_write(root, rel, "ina3221\n");
    snprintf(rel, sizeof rel, "%s/update_interval", dev);
    tu_write(root, rel, "5\n");
    for (int i = 0; i < 3; i++) {
        int ch = i + 1;
        if (rails[i].label) {
            snprintf(rel, sizeof rel, "%s/in%d_label", dev, ch);
            snprintf(text, sizeof text, "%s\n", rails[i].label);
            tu_write(root, rel, text);
        }
        snprintf(rel, sizeof rel, "%s/in%d_enable", dev, ch);
        tu_write(root, rel, rails[i].enabled ? "1\n" : "0\n");
        snprintf(rel, sizeof rel, "%s/in%d_input", dev, ch);
        snprintf(text, sizeof text, "%d\n", rails[i].mv);
        tu_write(root, rel, text);
        snprintf(rel, sizeof rel, "%s/curr%d_input", dev, ch);
        snprintf(text, sizeof text, "%d\n", rails[i].ma);
        tu_write(root, rel, text);
        /* the shunt voltages and limits the driver also exposes */
        snprintf(rel, sizeof rel, "%s/in%d_input", dev, ch + 3);
        tu_write(root, rel, "12\n");
        snprintf(rel, sizeof rel, "%s/curr%d_crit", dev, ch);
        tu_write(root, rel, "9000\n");
    }
    char link[600];
    snprintf(rel, sizeof rel, "%s/device", dev);
    snprintf(link, sizeof link, "../../../%s", addr);
    tu_symlink(root, rel, link);
    snprintf(link, sizeof link, "../../%s", dev);
    snprintf(rel, sizeof rel, "class/hwmon/%s", hwmon);
    tu_symlink(root, rel, link);
}

/* A thermal hwmon that the backend must pass over. */
static void add_other(const char *root)
{
    tu_write(root, "devices/virtual/thermal/thermal_zone0/hwmon0/name", "cpu_thermal\n");
    tu_write(root, "devices/virtual/thermal/thermal_zone0/hwmon0/temp1_input", "45000\n");
    tu_symlink(root, "class/hwmon/hwmon0", "../../devices/virtual/thermal/thermal_zone0/hwmon0");
}

static void probe(const char *root, struct sensor_set *set)
{
    struct sensor_env env = {.sysfs_root = root, .procfs_root = "/nonexistent"};
    memset(set, 0, sizeof *set);
    assert_int_equal(sensor_ina3221.probe(&env, set), 0);
}

static double read_w(struct sensor *s)
{
    struct sensor_reading r;
    assert_int_equal(s->backend->read(s, &r), 0);
    return r.power_w;
}

/* Orin NX / Orin Nano: VDD_IN is the module, the other two are inside it. */
static void test_orin_nx(void **state)
{
    (void)state;
    char *root = tu_tmpdir("ina3221");
    add_other(root);
    const struct rail rails[3] = {
        {"VDD_IN", 5080, 1450, 1},
        {"VDD_CPU_GPU_CV", 5072, 410, 1},
        {"VDD_SOC", 5076, 298, 1},
    };
    add_monitor(root, 1, "1-0040", "hwmon1", rails);

    struct sensor_set set;
    probe(root, &set);
    assert_int_equal(set.n, 3);
    struct sensor *in = set.items[0], *cgc = set.items[1], *soc = set.items[2];
    assert_string_equal(in->info.name, "ina3221:VDD_IN");
    assert_string_equal(cgc->info.name, "ina3221:VDD_CPU_GPU_CV");
    assert_string_equal(soc->info.name, "ina3221:VDD_SOC");
    assert_int_equal(in->info.domain, JB_DOMAIN_SYSTEM);
    assert_int_equal(cgc->info.domain, JB_DOMAIN_SOC);
    assert_int_equal(soc->info.domain, JB_DOMAIN_SOC);
    assert_string_equal(in->parent_name, "");
    assert_string_equal(cgc->parent_name, "ina3221:VDD_IN");
    assert_string_equal(soc->parent_name, "ina3221:VDD_IN");
    assert_int_equal(in->info.kind, JB_SENSOR_POWER);
    assert_non_null(strstr(in->info.label, "1-0040"));
    assert_non_null(strstr(in->info.label, "channel 1"));
    assert_true(fabs(in->info.update_period_s - 0.005) < 1e-12);

    for (size_t i = 0; i < set.n; i++) {
        assert_int_equal(set.items[i]->backend->open(set.items[i]), 0);
        assert_int_equal(set.items[i]->info.readable, 1);
    }
    assert_true(fabs(read_w(in) - 5.080 * 1.450) < 1e-9);
    assert_true(fabs(read_w(cgc) - 5.072 * 0.410) < 1e-9);

    /* The files stay open: a new value is seen on the next read. */
    tu_write(root, "devices/platform/bus@0/c240000.i2c/i2c-1/1-0040/hwmon/hwmon1/curr1_input",
             "2900\n");
    assert_true(fabs(read_w(in) - 5.080 * 2.900) < 1e-9);

    /* Garbage is an error that names the file, never 0 W. */
    tu_write(root, "devices/platform/bus@0/c240000.i2c/i2c-1/1-0040/hwmon/hwmon1/in2_input",
             "n/a\n");
    struct sensor_reading r;
    assert_int_equal(cgc->backend->read(cgc, &r), JB_ERR_FORMAT);
    assert_non_null(strstr(cgc->backend->last_error(cgc), "in2_input"));

    sensor_set_clear(&set);
    tu_rmtree_free(root);
}

/* AGX Orin: two monitors, "NC" channels, no whole-module rail, so every
 * rail is top level. */
static void test_agx_orin(void **state)
{
    (void)state;
    char *root = tu_tmpdir("ina3221");
    const struct rail a[3] = {
        {"VDD_GPU_SOC", 5000, 1200, 1},
        {"VDD_CPU_CV", 5000, 800, 1},
        {"VIN_SYS_5V0", 5000, 600, 1},
    };
    const struct rail b[3] = {
        {"NC", 0, 0, 0},
        {"VDDQ_VDD2_1V8AO", 5000, 150, 1},
        {"NC", 0, 0, 0},
    };
    add_monitor(root, 1, "1-0040", "hwmon2", a);
    add_monitor(root, 1, "1-0041", "hwmon3", b);
    struct sensor_set set;
    probe(root, &set);
    assert_int_equal(set.n, 4);
    assert_string_equal(set.items[0]->info.name, "ina3221:VDD_GPU_SOC");
    assert_int_equal(set.items[0]->info.domain, JB_DOMAIN_SOC);
    assert_int_equal(set.items[1]->info.domain, JB_DOMAIN_CPU);
    assert_int_equal(set.items[2]->info.domain, JB_DOMAIN_SOC);
    assert_string_equal(set.items[3]->info.name, "ina3221:VDDQ_VDD2_1V8AO");
    assert_int_equal(set.items[3]->info.domain, JB_DOMAIN_DRAM);
    assert_non_null(strstr(set.items[3]->info.label, "1-0041"));
    for (size_t i = 0; i < set.n; i++)
        assert_string_equal(set.items[i]->parent_name, "");
    sensor_set_clear(&set);
    tu_rmtree_free(root);
}

/* A disabled channel is skipped, one without a label too, one without its
 * current file is noted; a label used twice gets the monitor in its name. */
static void test_odd_channels(void **state)
{
    (void)state;
    char *root = tu_tmpdir("ina3221");
    const struct rail a[3] = {
        {"VDD_IN", 5000, 1000, 1},
        {"VDD_GPU", 5000, 300, 0},
        {NULL, 5000, 100, 1},
    };
    const struct rail b[3] = {
        {"VDD_IN", 5000, 200, 1},
        {"VDD_CPU", 5000, 100, 1},
        {"NC", 0, 0, 1},
    };
    add_monitor(root, 1, "1-0040", "hwmon1", a);
    add_monitor(root, 7, "7-0041", "hwmon4", b);
    char rel[600];
    snprintf(rel, sizeof rel,
             "%s/devices/platform/bus@0/c240000.i2c/i2c-7/7-0041/hwmon/hwmon4/curr2_input", root);
    assert_int_equal(remove(rel), 0);
    struct sensor_set set;
    probe(root, &set);
    assert_int_equal(set.n, 2);
    assert_string_equal(set.items[0]->info.name, "ina3221:VDD_IN");
    assert_string_equal(set.items[1]->info.name, "ina3221:7-0041:VDD_IN");
    assert_int_equal(set.n_notes, 1);
    assert_non_null(strstr(set.notes[0], "7-0041 channel 2 (VDD_CPU)"));
    sensor_set_clear(&set);
    tu_rmtree_free(root);
}

static void test_no_hwmon(void **state)
{
    (void)state;
    char *root = tu_tmpdir("ina3221");
    struct sensor_set set;
    probe(root, &set);
    assert_int_equal(set.n, 0);
    add_other(root);
    probe(root, &set);
    assert_int_equal(set.n, 0);
    tu_rmtree_free(root);
}

static void test_domains(void **state)
{
    (void)state;
    static const struct {
        const char *label;
        enum jb_domain domain;
        int whole;
    } cases[] = {
        {"VDD_IN", JB_DOMAIN_SYSTEM, 1},    {"5V_IN", JB_DOMAIN_SYSTEM, 1},
        {"POM_5V_IN", JB_DOMAIN_SYSTEM, 1}, {"POM_5V_GPU", JB_DOMAIN_GPU, 0},
        {"POM_5V_CPU", JB_DOMAIN_CPU, 0},   {"VDD_CPU_GPU_CV", JB_DOMAIN_SOC, 0},
        {"VDD_GPU_SOC", JB_DOMAIN_SOC, 0},  {"VDD_CPU_CV", JB_DOMAIN_CPU, 0},
        {"VDD_SOC", JB_DOMAIN_SOC, 0},      {"GPU", JB_DOMAIN_GPU, 0},
        {"CPU", JB_DOMAIN_CPU, 0},          {"CV", JB_DOMAIN_SOC, 0},
        {"VDDRQ", JB_DOMAIN_DRAM, 0},       {"VDDQ_VDD2_1V8AO", JB_DOMAIN_DRAM, 0},
        {"SYS5V", JB_DOMAIN_SOC, 0},        {"VIN_SYS_5V0", JB_DOMAIN_SOC, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int whole = -1;
        enum jb_domain d = ina3221_domain(cases[i].label, &whole);
        if (d != cases[i].domain || whole != cases[i].whole)
            fail_msg("%s: domain %d whole %d, want %d %d", cases[i].label, d, whole,
                     cases[i].domain, cases[i].whole);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orin_nx),      cmocka_unit_test(test_agx_orin),
        cmocka_unit_test(test_odd_channels), cmocka_unit_test(test_no_hwmon),
        cmocka_unit_test(test_domains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
