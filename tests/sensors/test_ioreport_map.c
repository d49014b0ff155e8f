/* The IOReport Energy Model mapping against channel inventories shaped like
 * M1 Max, M3 Pro, M4 Max, M5 and M2 Ultra (tests/data/ioreport/, one .tsv per chip).
 * Every channel that must be counted gets a known value; every other
 * channel gets a huge one, so a channel counted by mistake shows up in the
 * sums. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "sensors/ioreport_map.h"

#define MAX_CH 512

struct inventory {
    struct buf text;
    struct ioreport_channel_desc ch[MAX_CH];
    size_t n;
};

/* Reads name<TAB>unit lines (comments start with '#'). */
static void load(const char *file, struct inventory *inv)
{
    char path[FS_PATH_MAX], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/ioreport/%s", JB_TEST_DATA, file);
    memset(inv, 0, sizeof *inv);
    buf_init(&inv->text, 0);
    assert_int_equal(fs_read_file(path, 1 << 20, &inv->text, err), 0);
    assert_int_equal(buf_append(&inv->text, "", 1), 0);
    char *p = inv->text.data;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (*p && *p != '#') {
            char *tab = strchr(p, '\t');
            assert_non_null(tab);
            *tab = '\0';
            assert_true(inv->n < MAX_CH);
            inv->ch[inv->n].name = p;
            inv->ch[inv->n].unit = tab + 1;
            inv->n++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
}

static void unload(struct inventory *inv)
{
    buf_free(&inv->text);
}

static int in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

static uint64_t scale_of(const char *unit)
{
    if (strcmp(unit, "mJ") == 0)
        return 1000000;
    if (strcmp(unit, "uJ") == 0)
        return 1000;
    assert_string_equal(unit, "nJ");
    return 1;
}

struct expect {
    const char *file;
    const char *const *rail[IOREPORT_MAX_RAILS]; /* cpu, gpu, ane, dram */
    size_t n_detail, n_gpu_alt;
};

static const char *const rail_names[IOREPORT_MAX_RAILS] = {"cpu", "gpu", "ane", "dram"};

/* Builds the plan, feeds one sample, and checks every rail against sums
 * computed here from the expected channel lists. */
static void check(const struct expect *e)
{
    struct inventory inv;
    load(e->file, &inv);
    struct ioreport_plan *plan = malloc(sizeof *plan);
    assert_non_null(plan);
    char err[ERR_LEN];
    assert_int_equal(ioreport_plan_build(inv.ch, inv.n, plan, err), 0);
    assert_int_equal(plan->n_rails, 4);
    assert_int_equal(plan->n_detail, e->n_detail);
    assert_int_equal(plan->n_gpu_alt, e->n_gpu_alt);

    int64_t values[MAX_CH];
    uint64_t want[IOREPORT_MAX_RAILS] = {0};
    size_t want_n[IOREPORT_MAX_RAILS] = {0};
    for (size_t i = 0; i < inv.n; i++) {
        int r = -1;
        for (int k = 0; k < IOREPORT_MAX_RAILS; k++)
            if (in_list(inv.ch[i].name, e->rail[k]))
                r = k;
        if (r < 0) {
            values[i] = 1000000000; /* poison: 1e9 counts */
            continue;
        }
        values[i] = 1000 + 37 * (int64_t)i;
        want[r] += (uint64_t)values[i] * scale_of(inv.ch[i].unit);
        want_n[r]++;
    }
    uint64_t got[IOREPORT_MAX_RAILS];
    unsigned char valid[IOREPORT_MAX_RAILS];
    ioreport_plan_sum(plan, values, inv.n, got, valid);
    for (int k = 0; k < IOREPORT_MAX_RAILS; k++) {
        const struct ioreport_rail *r = &plan->rails[k];
        assert_string_equal(r->name, rail_names[k]);
        assert_int_equal(r->usable, 1);
        assert_int_equal(valid[k], 1);
        assert_int_equal(r->n_channels, want_n[k]);
        if (got[k] != want[k])
            fail_msg("%s rail %s: %llu nJ, want %llu nJ", e->file, r->name,
                     (unsigned long long)got[k], (unsigned long long)want[k]);
        for (const char *const *c = e->rail[k]; *c; c++)
            assert_non_null(strstr(r->channels, *c));
    }
    assert_int_equal(plan->rails[0].domain, JB_DOMAIN_CPU);
    assert_int_equal(plan->rails[1].domain, JB_DOMAIN_GPU);
    assert_int_equal(plan->rails[2].domain, JB_DOMAIN_ANE);
    assert_int_equal(plan->rails[3].domain, JB_DOMAIN_DRAM);
    /* "GPU Energy" publishes fast, the mJ channels in slow batches. */
    assert_true(plan->rails[1].update_period_s == IOREPORT_FAST_PERIOD_S);
    assert_true(plan->rails[0].update_period_s == IOREPORT_BATCHED_PERIOD_S);
    assert_true(plan->rails[3].update_period_s == IOREPORT_BATCHED_PERIOD_S);
    free(plan);
    unload(&inv);
}

static const char *const cpu_energy[] = {"CPU Energy", NULL};
static const char *const gpu_energy[] = {"GPU Energy", NULL};

static void test_m1_max(void **state)
{
    (void)state;
    static const char *const ane[] = {"ANE0", NULL}, *const dram[] = {"DRAM0", NULL};
    /* detail: 2 E + 8 P cores, 3 managers, 10 core SRAMs, 3 clusters */
    struct expect e = {"m1_max.tsv", {cpu_energy, gpu_energy, ane, dram}, 26, 1};
    check(&e);
}

static void test_m3_pro(void **state)
{
    (void)state;
    static const char *const ane[] = {"ANE", NULL}, *const dram[] = {"DRAM", NULL};
    /* detail: 6 E + 6 P cores, 2 managers, 12 SRAMs, 2 clusters */
    struct expect e = {"m3_pro.tsv", {cpu_energy, gpu_energy, ane, dram}, 28, 1};
    check(&e);
}

static void test_m4_max(void **state)
{
    (void)state;
    static const char *const ane[] = {"ANE0", NULL}, *const dram[] = {"DRAM0", NULL};
    /* detail: 16 cores, 3 managers, 10 SRAMs, 3 clusters, 40 DTL */
    struct expect e = {"m4_max.tsv", {cpu_energy, gpu_energy, ane, dram}, 72, 1};
    check(&e);
}

static void test_m5(void **state)
{
    (void)state;
    static const char *const ane[] = {"ANE0", NULL}, *const dram[] = {"DRAM0", NULL};
    /* detail: 10 cores, 2 managers, 12 SRAMs, 2 clusters, 32 DTL */
    struct expect e = {"m5.tsv", {cpu_energy, gpu_energy, ane, dram}, 58, 1};
    check(&e);
}

static void test_m2_ultra(void **state)
{
    (void)state;
    static const char *const cpu[] = {"DIE_0_CPU Energy", "DIE_1_CPU Energy", NULL};
    static const char *const ane[] = {"ANE0_0", "ANE0_1", NULL};
    static const char *const dram[] = {"DRAM0_0", "DRAM0_1", NULL};
    /* detail: 30 per die (cores, managers, SRAMs, clusters) + 8 DTL */
    struct expect e = {"m2_ultra.tsv", {cpu, gpu_energy, ane, dram}, 68, 1};
    check(&e);
}

/* Without "GPU Energy", the per-die GPU channel is the GPU, at the batched
 * cadence of the mJ channels. */
static void test_gpu_fallback(void **state)
{
    (void)state;
    struct inventory inv;
    load("m2_ultra.tsv", &inv);
    size_t k = 0;
    for (size_t i = 0; i < inv.n; i++)
        if (strcmp(inv.ch[i].name, "GPU Energy") != 0)
            inv.ch[k++] = inv.ch[i];
    assert_int_equal(k, inv.n - 1);
    inv.n = k;
    struct ioreport_plan *plan = malloc(sizeof *plan);
    char err[ERR_LEN];
    assert_int_equal(ioreport_plan_build(inv.ch, inv.n, plan, err), 0);
    assert_int_equal(plan->n_gpu_alt, 0);
    assert_string_equal(plan->rails[1].name, "gpu");
    assert_string_equal(plan->rails[1].channels, "GPU0_0");
    assert_true(plan->rails[1].update_period_s == IOREPORT_BATCHED_PERIOD_S);
    int64_t values[MAX_CH];
    for (size_t i = 0; i < inv.n; i++)
        values[i] = strcmp(inv.ch[i].name, "GPU0_0") == 0 ? 4321 : 7;
    uint64_t got[IOREPORT_MAX_RAILS];
    unsigned char valid[IOREPORT_MAX_RAILS];
    ioreport_plan_sum(plan, values, inv.n, got, valid);
    assert_int_equal(valid[1], 1);
    assert_true(got[1] == 4321ull * 1000000ull);
    free(plan);
    unload(&inv);
}

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum ioreport_role role;
        int die;
        const char *base;
    } cases[] = {
        {"CPU Energy", IOREPORT_CPU_TOTAL, -1, "CPU Energy"},
        {"DIE_1_CPU Energy", IOREPORT_CPU_TOTAL, 1, "CPU Energy"},
        {"DIE_12_CPU Energy", IOREPORT_CPU_TOTAL, 12, "CPU Energy"},
        {"DIE_x_CPU Energy", IOREPORT_IGNORE, -1, "DIE_x_CPU Energy"},
        {"DIE_0_", IOREPORT_IGNORE, -1, "DIE_0_"},
        {"DIE_1_PACC0_CPU3", IOREPORT_CPU_DETAIL, 1, "PACC0_CPU3"},
        {"ECPU", IOREPORT_CPU_DETAIL, -1, "ECPU"},
        {"PCPU1DTL3a", IOREPORT_CPU_DETAIL, -1, "PCPU1DTL3a"},
        {"MCPU0_5_SRAM", IOREPORT_CPU_DETAIL, -1, "MCPU0_5_SRAM"},
        {"PACC_4", IOREPORT_CPU_DETAIL, -1, "PACC_4"},
        {"EACC_CPM", IOREPORT_CPU_DETAIL, -1, "EACC_CPM"},
        {"GPU Energy", IOREPORT_GPU_TOTAL, -1, "GPU Energy"},
        {"GPU", IOREPORT_GPU_ALT, -1, "GPU"},
        {"GPU0", IOREPORT_GPU_ALT, -1, "GPU0"},
        {"GPU1_1", IOREPORT_GPU_ALT, -1, "GPU1_1"},
        {"GPU0_", IOREPORT_IGNORE, -1, "GPU0_"},
        {"GPU_0", IOREPORT_IGNORE, -1, "GPU_0"},
        {"GPU0_0_1", IOREPORT_IGNORE, -1, "GPU0_0_1"},
        {"GPUPH", IOREPORT_IGNORE, -1, "GPUPH"},
        {"GPU SRAM0_0", IOREPORT_IGNORE, -1, "GPU SRAM0_0"},
        {"GPU CS0_0", IOREPORT_IGNORE, -1, "GPU CS0_0"},
        {"ANE", IOREPORT_ANE, -1, "ANE"},
        {"ANE0_1", IOREPORT_ANE, -1, "ANE0_1"},
        {"ANE0_SRAM", IOREPORT_IGNORE, -1, "ANE0_SRAM"},
        {"DRAM0", IOREPORT_DRAM, -1, "DRAM0"},
        {"DRAM0_1", IOREPORT_DRAM, -1, "DRAM0_1"},
        {"DCS0_1", IOREPORT_IGNORE, -1, "DCS0_1"},
        {"apciec0 Energy", IOREPORT_IGNORE, -1, "apciec0 Energy"},
        {"PCIe Port 0 Energy", IOREPORT_IGNORE, -1, "PCIe Port 0 Energy"},
        {"", IOREPORT_IGNORE, -1, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ioreport_class c;
        ioreport_classify(cases[i].name, &c);
        if (c.role != cases[i].role || c.die != cases[i].die || strcmp(c.base, cases[i].base) != 0)
            fail_msg("\"%s\": role %d die %d base \"%s\", want role %d die %d base \"%s\"",
                     cases[i].name, c.role, c.die, c.base, cases[i].role, cases[i].die,
                     cases[i].base);
    }
}

static void test_units(void **state)
{
    (void)state;
    uint64_t s = 0;
    assert_int_equal(ioreport_unit_nj("mJ", &s), 0);
    assert_true(s == 1000000);
    assert_int_equal(ioreport_unit_nj("uJ", &s), 0);
    assert_true(s == 1000);
    assert_int_equal(ioreport_unit_nj("\xc2\xb5J", &s), 0); /* µJ, micro sign */
    assert_true(s == 1000);
    assert_int_equal(ioreport_unit_nj("\xce\xbcJ", &s), 0); /* μJ, Greek mu */
    assert_true(s == 1000);
    assert_int_equal(ioreport_unit_nj("nJ", &s), 0);
    assert_true(s == 1);
    assert_int_equal(ioreport_unit_nj("J", &s), 0);
    assert_true(s == 1000000000);
    assert_int_equal(ioreport_unit_nj("mj", &s), JB_ERR_FORMAT);
    assert_int_equal(ioreport_unit_nj("kWh", &s), JB_ERR_FORMAT);
    assert_int_equal(ioreport_unit_nj("", &s), JB_ERR_FORMAT);
    assert_int_equal(ioreport_unit_nj(NULL, &s), JB_ERR_FORMAT);
}

/* Mixed units in one rail add up exactly: 1 mJ + 1 nJ + 1 µJ is
 * 1001001 nJ, where a sum in mJ would have dropped the two small ones. */
static void test_no_truncation(void **state)
{
    (void)state;
    const struct ioreport_channel_desc ch[] = {
        {"DIE_0_CPU Energy", "mJ"},
        {"DIE_1_CPU Energy", "nJ"},
        {"DIE_2_CPU Energy", "\xc2\xb5J"},
        {"GPU Energy", "nJ"},
    };
    struct ioreport_plan *plan = malloc(sizeof *plan);
    char err[ERR_LEN];
    assert_int_equal(ioreport_plan_build(ch, 4, plan, err), 0);
    assert_int_equal(plan->n_rails, 2);
    int64_t v[4] = {1, 1, 1, 999999999999};
    uint64_t got[IOREPORT_MAX_RAILS];
    unsigned char valid[IOREPORT_MAX_RAILS];
    ioreport_plan_sum(plan, v, 4, got, valid);
    assert_true(valid[0] && valid[1]);
    assert_true(got[0] == 1001001);
    assert_true(got[1] == 999999999999ull);

    /* A negative count or an overflow makes that rail invalid, not zero. */
    int64_t neg[4] = {-5, 1, 1, 10};
    ioreport_plan_sum(plan, neg, 4, got, valid);
    assert_int_equal(valid[0], 0);
    assert_int_equal(valid[1], 1);
    int64_t huge[4] = {INT64_MAX, 0, 0, 10};
    ioreport_plan_sum(plan, huge, 4, got, valid);
    assert_int_equal(valid[0], 0);
    /* A sample with a different channel count is not this subscription. */
    ioreport_plan_sum(plan, v, 3, got, valid);
    assert_int_equal(valid[0], 0);
    assert_int_equal(valid[1], 0);
    free(plan);
}

static void test_unknown_unit(void **state)
{
    (void)state;
    const struct ioreport_channel_desc ch[] = {
        {"CPU Energy", "kWh"},
        {"GPU Energy", "nJ"},
        {"ANE", NULL},
    };
    struct ioreport_plan *plan = malloc(sizeof *plan);
    char err[ERR_LEN];
    assert_int_equal(ioreport_plan_build(ch, 3, plan, err), 0);
    assert_int_equal(plan->n_rails, 3);
    assert_int_equal(plan->rails[0].usable, 0);
    assert_non_null(strstr(plan->rails[0].reason, "\"CPU Energy\""));
    assert_non_null(strstr(plan->rails[0].reason, "\"kWh\""));
    assert_int_equal(plan->rails[1].usable, 1);
    assert_int_equal(plan->rails[2].usable, 0);
    int64_t v[3] = {5, 6, 7};
    uint64_t got[IOREPORT_MAX_RAILS];
    unsigned char valid[IOREPORT_MAX_RAILS];
    ioreport_plan_sum(plan, v, 3, got, valid);
    assert_int_equal(valid[0], 0);
    assert_int_equal(valid[1], 1);
    assert_true(got[1] == 6);
    free(plan);
}

static void test_too_many_channels(void **state)
{
    (void)state;
    struct ioreport_plan *plan = malloc(sizeof *plan);
    static struct ioreport_channel_desc ch[IOREPORT_MAX_CHANNELS + 1];
    for (size_t i = 0; i < IOREPORT_MAX_CHANNELS + 1; i++)
        ch[i] = (struct ioreport_channel_desc){"PCPUDTL00", "mJ"};
    char err[ERR_LEN] = "";
    assert_int_equal(ioreport_plan_build(ch, IOREPORT_MAX_CHANNELS + 1, plan, err), JB_ERR_USAGE);
    assert_non_null(strstr(err, "2049 channels"));
    free(plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_m1_max),
        cmocka_unit_test(test_m3_pro),
        cmocka_unit_test(test_m4_max),
        cmocka_unit_test(test_m5),
        cmocka_unit_test(test_m2_ultra),
        cmocka_unit_test(test_gpu_fallback),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_no_truncation),
        cmocka_unit_test(test_unknown_unit),
        cmocka_unit_test(test_too_many_channels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
