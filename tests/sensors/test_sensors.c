/* The sensor backends and the registry on fixture trees shaped like /sys:
 * Intel and AMD RAPL layouts, two sockets, the MMIO duplicate, garbage and
 * unreadable counters, the perf PMU (through a fake perf_event_open), hwmon
 * GPUs and amd_energy, and the CPU-time estimator on a fixture /proc/stat. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fs.h"
#include "fixture_sysfs.h"
#include "sensors/perf_power.h"
#include "sensors/sensor.h"
#include "testutil.h"

struct reg {
    struct sensor_set set;
    char err[ERR_LEN];
    int rc;
};

static void reg_open(struct reg *r, struct fx_sysfs *fx, const char *only, double cpu_watts)
{
    memset(r, 0, sizeof *r);
    struct sensor_env env = {fx_sysfs_root(fx), fx_procfs_root(fx), NULL, cpu_watts};
    r->rc = sensor_registry_open(&env, only, 0, &r->set, r->err);
}

static struct sensor *find(struct reg *r, const char *name)
{
    for (size_t i = 0; i < r->set.n; i++)
        if (strcmp(r->set.items[i]->info.name, name) == 0)
            return r->set.items[i];
    return NULL;
}

static int index_of(struct reg *r, const char *name)
{
    for (size_t i = 0; i < r->set.n; i++)
        if (strcmp(r->set.items[i]->info.name, name) == 0)
            return (int)i;
    return -1;
}

static struct sensor *must(struct reg *r, const char *name)
{
    struct sensor *s = find(r, name);
    if (!s) {
        fprintf(stderr, "no sensor %s among:", name);
        for (size_t i = 0; i < r->set.n; i++)
            fprintf(stderr, " %s", r->set.items[i]->info.name);
        fprintf(stderr, "\n");
    }
    assert_non_null(s);
    return s;
}

static uint64_t read_raw(struct sensor *s)
{
    struct sensor_reading rd;
    assert_int_equal(s->backend->read(s, &rd), 0);
    return rd.raw;
}

static int has_note(struct reg *r, const char *part)
{
    for (size_t i = 0; i < r->set.n_notes; i++)
        if (strstr(r->set.notes[i], part))
            return 1;
    return 0;
}

/* A client Intel part: package, cores, uncore (graphics), dram, psys. */
static void intel_client(struct fx_sysfs *fx)
{
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1000000, 0);
    fx_rapl_zone(fx, "intel-rapl:0:0", "core", 2000000, 0);
    fx_rapl_zone(fx, "intel-rapl:0:1", "uncore", 3000000, 0);
    fx_rapl_zone(fx, "intel-rapl:0:2", "dram", 4000000, 0);
    fx_rapl_zone(fx, "intel-rapl:1", "psys", 5000000, 0);
}

static void test_powercap_intel(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("pc-intel");
    intel_client(fx);
    /* The fixture has the kernel's shape: class entries are symlinks. */
    char link[FS_PATH_MAX];
    snprintf(link, sizeof link, "%s/class/powercap/intel-rapl:0:0", fx_sysfs_root(fx));
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));

    struct reg r;
    reg_open(&r, fx, "powercap", 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.set.n, 5);
    struct sensor *pkg = must(&r, "rapl:package-0");
    struct sensor *core = must(&r, "rapl:core-0");
    struct sensor *uncore = must(&r, "rapl:uncore-0");
    struct sensor *dram = must(&r, "rapl:dram-0");
    struct sensor *psys = must(&r, "rapl:psys");
    assert_int_equal(pkg->info.domain, JB_DOMAIN_CPU);
    assert_int_equal(core->info.domain, JB_DOMAIN_CORES);
    assert_int_equal(uncore->info.domain, JB_DOMAIN_UNCORE);
    assert_int_equal(dram->info.domain, JB_DOMAIN_DRAM);
    assert_int_equal(psys->info.domain, JB_DOMAIN_SYSTEM);
    int ipkg = index_of(&r, "rapl:package-0");
    assert_int_equal(core->info.parent, ipkg);
    assert_int_equal(uncore->info.parent, ipkg);
    assert_int_equal(dram->info.parent, -1); /* DRAM is not part of the package */
    assert_int_equal(psys->info.parent, -1);
    for (size_t i = 0; i < r.set.n; i++) {
        const struct jb_sensor_info *in = &r.set.items[i]->info;
        assert_true(in->readable && in->used && !in->estimated);
        assert_string_equal(in->backend, "powercap");
        assert_int_equal(in->kind, JB_SENSOR_ENERGY);
        assert_true(fabs(in->max_range_j - 262143.32885) < 1e-6);
        assert_true(in->update_period_s > 0);
    }
    assert_true(pkg->raw_range == 262143328850ull);
    assert_true(pkg->joules_per_unit == 1e-6);
    assert_true(read_raw(core) == 2000000);
    assert_true(read_raw(psys) == 5000000);
    assert_non_null(strstr(pkg->info.label, "intel-rapl:0"));
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* Two sockets, each with a dram zone inside (server layout). */
static void test_powercap_two_sockets(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("pc-2s");
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 10, 0);
    fx_rapl_zone(fx, "intel-rapl:0:0", "dram", 20, 0);
    fx_rapl_zone(fx, "intel-rapl:1", "package-1", 30, 0);
    fx_rapl_zone(fx, "intel-rapl:1:0", "dram", 40, 0);
    struct reg r;
    reg_open(&r, fx, "powercap", 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.set.n, 4);
    assert_true(read_raw(must(&r, "rapl:package-0")) == 10);
    assert_true(read_raw(must(&r, "rapl:dram-0")) == 20);
    assert_true(read_raw(must(&r, "rapl:package-1")) == 30);
    assert_true(read_raw(must(&r, "rapl:dram-1")) == 40);
    assert_string_equal(must(&r, "rapl:dram-1")->counter_key, "dram-1");
    assert_string_equal(must(&r, "rapl:package-1")->counter_key, "cpu-pkg-1");
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* AMD: the same driver, package-N with a core zone and no dram; and a
 * control type named by another vendor. */
static void test_powercap_amd(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("pc-amd");
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 100, 0);
    fx_rapl_zone(fx, "intel-rapl:0:0", "core", 50, 0);
    fx_rapl_zone(fx, "amd-rapl:1", "package-1", 7, 4294967295ull);
    fx_rapl_zone(fx, "amd-rapl:1:0", "core", 3, 0);
    struct reg r;
    reg_open(&r, fx, "powercap", 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.set.n, 4);
    struct sensor *core1 = must(&r, "rapl:core-1");
    assert_int_equal(core1->info.domain, JB_DOMAIN_CORES);
    assert_int_equal(core1->info.parent, index_of(&r, "rapl:package-1"));
    assert_true(must(&r, "rapl:package-1")->raw_range == 4294967295ull);
    assert_int_equal(must(&r, "rapl:core-0")->info.parent, index_of(&r, "rapl:package-0"));
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* intel-rapl-mmio reaches the same package counter: listed, not used. */
static void test_powercap_mmio_duplicate(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("pc-mmio");
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1, 0);
    fx_rapl_zone(fx, "intel-rapl-mmio:0", "package-0", 1, 0);
    fx_proc_stat(fx, 2, 10, 10);
    struct reg r;
    reg_open(&r, fx, NULL, 0);
    assert_int_equal(r.rc, 0);
    struct sensor *msr = must(&r, "rapl:package-0");
    struct sensor *mmio = must(&r, "rapl-mmio:package-0");
    assert_true(msr->info.used);
    assert_true(mmio->info.readable);
    assert_false(mmio->info.used);
    assert_non_null(strstr(mmio->info.reason, "rapl:package-0"));
    /* A readable measured CPU sensor: the estimator stays out. */
    struct sensor *est = must(&r, "estimate:cpu");
    assert_false(est->info.used);
    assert_non_null(strstr(est->info.reason, "rapl:package-0"));
    sensor_set_clear(&r.set);
    fx_free(fx);
}

static void test_powercap_garbage(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("pc-garbage");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1, 0);
    int core = fx_rapl_zone(fx, "intel-rapl:0:0", "core", 1, 1000);
    int dram = fx_rapl_zone(fx, "intel-rapl:0:1", "dram", 1, 0);
    fx_set_raw(fx, pkg, "12ab\n");
    fx_set_raw(fx, core, "5000\n"); /* above its max_energy_range_uj */
    fx_set_raw(fx, dram, "");
    struct reg r;
    reg_open(&r, fx, "powercap", 0);
    assert_int_equal(r.rc, 0);
    struct sensor *p = must(&r, "rapl:package-0");
    assert_false(p->info.readable);
    assert_false(p->info.used);
    assert_non_null(strstr(p->info.reason, "energy_uj"));
    assert_non_null(strstr(p->info.reason, "12ab"));
    struct sensor *c = must(&r, "rapl:core-0");
    assert_false(c->info.readable);
    assert_non_null(strstr(c->info.reason, "max_energy_range_uj"));
    struct sensor *d = must(&r, "rapl:dram-0");
    assert_false(d->info.readable);
    assert_non_null(strstr(d->info.reason, "empty"));
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* energy_uj is mode 0400 root since Linux 5.10. Tests run as root here,
 * so the fixture drops CAP_DAC_OVERRIDE for the open: chmod 0 then bites
 * as it does for a normal user. */
static void test_powercap_unreadable(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("pc-perm");
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1, 0);
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/class/powercap/intel-rapl:0/energy_uj", fx_sysfs_root(fx));
    assert_int_equal(chmod(path, 0000), 0);
    if (fx_unprivileged_begin() != 0) {
        fprintf(stderr, "skipped: cannot drop CAP_DAC_OVERRIDE here (%s)\n", strerror(errno));
        fx_free(fx);
        skip();
    }
    struct reg r;
    reg_open(&r, fx, NULL, 0);
    fx_unprivileged_end();
    assert_int_equal(r.rc, 0);
    struct sensor *p = must(&r, "rapl:package-0");
    assert_false(p->info.readable);
    assert_non_null(strstr(p->info.reason, "root only"));
    assert_non_null(strstr(p->info.fix, "chmod a+r %S%p/energy_uj"));
    assert_non_null(strstr(p->info.fix, "SUBSYSTEM==\"powercap\""));
    assert_non_null(strstr(p->info.fix, "cap_perfmon"));
    /* Nothing measured is readable: the estimate stands in, labelled. */
    struct sensor *est = must(&r, "estimate:cpu");
    (void)est; /* no /proc/stat in this fixture: it says so */
    assert_false(est->info.used);
    assert_non_null(strstr(est->info.reason, "stat"));
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* ---- perf, through a fake perf_event_open ---- */

static int fake_errno;          /* what open returns, 0 = succeed */
static uint64_t fake_count[64]; /* per fd */
static int fake_opened;

static int fake_open(uint32_t type, uint64_t config, int cpu)
{
    (void)cpu;
    if (fake_errno)
        return -fake_errno;
    if (type != 23)
        return -ENOENT;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fd < 64)
        fake_count[fd] = 1000 * config + (uint64_t)cpu;
    fake_opened++;
    return fd;
}

/* fake_mode 0: each counter holds its fixed value; 1: every counter reads
 * 0 for ever (a virtual machine's PMU); 2: every counter starts at 0 and
 * moves by 1000 counts per read after the first (a live PMU just opened). */
static int fake_mode;

static int fake_read(int fd, uint64_t *count)
{
    if (fd < 0 || fd >= 64)
        return -EBADF;
    if (fake_mode == 1) {
        *count = 0;
        return 0;
    }
    if (fake_mode == 2) {
        static uint64_t reads[64];
        *count = reads[fd]++ * 1000;
        return 0;
    }
    *count = fake_count[fd];
    return 0;
}

static const struct perf_power_ops fake_ops = {fake_open, fake_read};

static void perf_fixture(struct fx_sysfs *fx)
{
    fx_perf_pmu(fx, 23, "0,28");
    fx_write(fx, "devices/system/cpu/cpu0/topology/physical_package_id", "0\n");
    fx_write(fx, "devices/system/cpu/cpu28/topology/physical_package_id", "1\n");
    const char *scale = "2.3283064365386962890625e-10";
    fx_perf_event(fx, "energy-pkg", "event=0x02", scale, "Joules");
    fx_perf_event(fx, "energy-ram", "event=0x03", scale, "Joules");
    fx_perf_event(fx, "energy-psys", "event=0x05", scale, "Joules");
    /* powercap on the same machine: package, core and dram of two sockets */
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1, 0);
    fx_rapl_zone(fx, "intel-rapl:0:0", "core", 1, 0);
    fx_rapl_zone(fx, "intel-rapl:0:1", "dram", 1, 0);
    fx_rapl_zone(fx, "intel-rapl:1", "package-1", 1, 0);
    fx_rapl_zone(fx, "intel-rapl:1:0", "core", 1, 0);
    fx_rapl_zone(fx, "intel-rapl:1:1", "dram", 1, 0);
}

static void test_perf_preferred(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("perf-ok");
    perf_fixture(fx);
    fake_errno = 0;
    fake_opened = 0;
    perf_power_set_ops(&fake_ops);
    struct reg r;
    reg_open(&r, fx, "perf,powercap", 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(fake_opened, 5); /* pkg and ram on two CPUs, psys once */
    struct sensor *pkg1 = must(&r, "perf:pkg-1");
    assert_true(pkg1->info.used);
    assert_int_equal(pkg1->info.domain, JB_DOMAIN_CPU);
    assert_true(pkg1->joules_per_unit == 2.3283064365386962890625e-10);
    assert_true(read_raw(pkg1) == 2000 + 28); /* config 2, CPU 28 */
    assert_true(must(&r, "perf:ram-0")->info.used);
    assert_int_equal(must(&r, "perf:psys")->info.domain, JB_DOMAIN_SYSTEM);
    /* powercap's package and dram counters are the same: not used. */
    struct sensor *rp = must(&r, "rapl:package-1");
    assert_true(rp->info.readable);
    assert_false(rp->info.used);
    assert_non_null(strstr(rp->info.reason, "perf:pkg-1"));
    assert_false(must(&r, "rapl:dram-0")->info.used);
    /* perf has no energy-cores here: powercap's core zone counts, and its
     * parent is the package route that is used. */
    struct sensor *core1 = must(&r, "rapl:core-1");
    assert_true(core1->info.used);
    assert_int_equal(core1->info.parent, index_of(&r, "perf:pkg-1"));
    sensor_set_clear(&r.set);
    perf_power_set_ops(NULL);
    fx_free(fx);
}

static void test_perf_refused(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("perf-refused");
    perf_fixture(fx);
    tu_write(fx_procfs_root(fx), "sys/kernel/perf_event_paranoid", "2\n");
    fake_errno = EACCES;
    perf_power_set_ops(&fake_ops);
    struct reg r;
    reg_open(&r, fx, "perf,powercap", 0);
    perf_power_set_ops(NULL);
    fake_errno = 0;
    assert_int_equal(r.rc, 0);
    /* psys has no other route: the reason and both fixes. */
    struct sensor *psys = must(&r, "perf:psys");
    assert_false(psys->info.readable);
    assert_non_null(strstr(psys->info.reason, "perf_event_paranoid <= 0 (it is 2)"));
    assert_non_null(strstr(psys->info.fix, "sysctl kernel.perf_event_paranoid=0"));
    assert_non_null(strstr(psys->info.fix, "setcap cap_perfmon=ep"));
    /* pkg is read by powercap: nothing to fix, and it says so. */
    struct sensor *pkg = must(&r, "perf:pkg-0");
    assert_false(pkg->info.readable);
    assert_non_null(strstr(pkg->info.reason, "not needed: rapl:package-0"));
    assert_string_equal(pkg->info.fix, "");
    /* powercap reads the counter instead. */
    assert_true(must(&r, "rapl:package-0")->info.used);
    assert_true(must(&r, "rapl:dram-1")->info.used);
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* A virtual machine that exposes the perf power PMU without counting:
 * psys opens and reads 0 for ever. It is not used (it would report 0 J,
 * and as psys it would stand in for the CPU), it says why, and the CPU
 * falls back to the estimate. */
static void test_perf_counter_that_never_counts(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("perf-dead");
    fx_perf_pmu(fx, 23, "0");
    fx_write(fx, "devices/system/cpu/cpu0/topology/physical_package_id", "0\n");
    fx_perf_event(fx, "energy-psys", "event=0x05", "2.3283064365386962890625e-10", "Joules");
    fx_proc_stat(fx, 16, 1000, 9000);
    perf_power_set_ops(&fake_ops);
    fake_mode = 1;
    struct reg r;
    reg_open(&r, fx, "perf,estimate", 0);
    fake_mode = 0;
    perf_power_set_ops(NULL);
    assert_int_equal(r.rc, 0);
    struct sensor *psys = must(&r, "perf:psys");
    assert_false(psys->info.readable);
    assert_false(psys->info.used);
    assert_non_null(strstr(psys->info.reason, "reads 0 and did not move"));
    assert_non_null(strstr(psys->info.fix, "bare metal"));
    struct sensor *est = must(&r, "estimate:cpu");
    assert_true(est->info.used);
    assert_string_equal(est->info.reason, "");
    sensor_set_clear(&r.set);

    /* The same PMU counting: perf starts at 0 when opened, and a counter
     * that moves within the wait is kept. */
    perf_power_set_ops(&fake_ops);
    fake_mode = 2;
    reg_open(&r, fx, "perf,estimate", 0);
    fake_mode = 0;
    perf_power_set_ops(NULL);
    assert_int_equal(r.rc, 0);
    psys = must(&r, "perf:psys");
    assert_true(psys->info.used);
    /* psys alone is the total, and it holds the CPU: no estimate. */
    est = must(&r, "estimate:cpu");
    assert_false(est->info.used);
    assert_non_null(strstr(est->info.reason, "perf:psys"));
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* A powercap zone that reads 0 and stays there (a DRAM zone the firmware
 * leaves empty) is listed as not counting; a zone at 0 that a writer is
 * advancing is a live counter and stays, and so does an uncore (iGPU)
 * zone at 0, which an idle iGPU can leave there for seconds. */
static void test_powercap_zone_that_never_counts(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("pc-dead");
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 123456789, 0);
    fx_rapl_zone(fx, "intel-rapl:0:0", "dram", 0, 0);
    int core = fx_rapl_zone(fx, "intel-rapl:0:1", "core", 0, 0);
    fx_rapl_zone(fx, "intel-rapl:0:2", "uncore", 0, 0); /* an idle iGPU draws nothing */
    fx_set_watts(fx, core, 10.0);
    fx_start(fx, 500);
    struct reg r;
    reg_open(&r, fx, "powercap", 0);
    fx_stop(fx);
    assert_int_equal(r.rc, 0);
    struct sensor *dram = must(&r, "rapl:dram-0");
    assert_false(dram->info.used);
    assert_non_null(strstr(dram->info.reason, "reads 0 and did not move"));
    assert_true(must(&r, "rapl:core-0")->info.used);
    assert_true(must(&r, "rapl:package-0")->info.used);
    assert_true(must(&r, "rapl:uncore-0")->info.used);
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* psys beside a GPU's counter, with no package counter: the total is the
 * GPU plus the CPU, and psys is reported beside it, so psys cannot stand
 * in for the CPU. The estimate does, labelled as one. */
static void test_psys_beside_a_gpu(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("psys-gpu");
    fx_psys_beside_igpu(fx);
    struct reg r;
    reg_open(&r, fx, "powercap,hwmon,estimate", 0);
    assert_int_equal(r.rc, 0);
    assert_true(must(&r, "rapl:psys")->info.used);
    struct sensor *est = must(&r, "estimate:cpu");
    assert_true(est->info.used);
    assert_string_equal(est->info.reason, "");
    sensor_set_clear(&r.set);

    /* Without the GPU, psys is the total and holds the CPU. */
    struct fx_sysfs *fx2 = fx_new("psys-only");
    fx_rapl_zone(fx2, "intel-rapl:0", "psys", 5000000, 0);
    fx_proc_stat(fx2, 4, 1000, 9000);
    reg_open(&r, fx2, "powercap,hwmon,estimate", 0);
    assert_int_equal(r.rc, 0);
    est = must(&r, "estimate:cpu");
    assert_false(est->info.used);
    assert_non_null(strstr(est->info.reason, "rapl:psys"));
    sensor_set_clear(&r.set);
    fx_free(fx2);
    fx_free(fx);
}

static void test_perf_bad_events(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("perf-bad");
    fx_perf_pmu(fx, 23, "0");
    fx_perf_event(fx, "energy-pkg", "event=0x02", "not-a-number", "Joules");
    fx_perf_event(fx, "energy-ram", "event=0x03", "1e-10", "Watts");
    fx_perf_event(fx, "energy-cores", "bogus event", "1e-10", "Joules");
    fx_perf_event(fx, "energy-gpu", "event=0x04", "1e-10", "Joules");
    perf_power_set_ops(&fake_ops);
    struct reg r;
    reg_open(&r, fx, "perf", 0);
    perf_power_set_ops(NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.set.n, 1); /* only energy-gpu is well-formed */
    struct sensor *gpu = must(&r, "perf:gpu-0");
    assert_int_equal(gpu->info.domain, JB_DOMAIN_UNCORE);
    assert_true(has_note(&r, "energy-pkg.scale"));
    assert_true(has_note(&r, "energy-ram.unit"));
    assert_true(has_note(&r, "energy-cores"));
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* The kernel path itself, with no power PMU on this machine: a fixture
 * PMU whose type is the software PMU (1) and whose event is cpu-clock
 * (config 0) makes perf_event_open(2) and read(2) run for real. Where
 * system-wide events are not allowed, the sensor must say why instead. */
static void test_perf_real_syscall(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("perf-real");
    fx_perf_pmu(fx, 1 /* PERF_TYPE_SOFTWARE */, "0");
    fx_perf_event(fx, "energy-pkg", "event=0x00", "1e-9", "Joules");
    tu_write(fx_procfs_root(fx), "sys/kernel/perf_event_paranoid", "2\n");
    struct reg r;
    reg_open(&r, fx, "perf", 0);
    assert_int_equal(r.rc, 0);
    struct sensor *s = must(&r, "perf:pkg-0");
    if (!s->info.readable) {
        fprintf(stderr, "perf_event_open refused here: %s\n", s->info.reason);
        assert_non_null(strstr(s->info.reason, "perf_event"));
    } else {
        uint64_t a = read_raw(s);
        volatile double x = 0;
        for (int i = 0; i < 1000000; i++)
            x += i;
        (void)x;
        uint64_t b = read_raw(s);
        assert_true(b > a); /* cpu-clock nanoseconds on CPU 0 advance */
    }
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* ---- hwmon ---- */

static void test_hwmon(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("hwmon");
    /* amdgpu: power only (µW), integrated by the meter */
    fx_hwmon(fx, 3, "amdgpu", "pci0000:00/0000:00:03.1/0000:0b:00.0");
    fx_write(fx, "devices/pci0000:00/0000:00:03.1/0000:0b:00.0/vendor", "0x1002\n");
    fx_write(fx, "devices/pci0000:00/0000:00:03.1/0000:0b:00.0/device", "0x73bf\n");
    int amd = fx_hwmon_counter(fx, 3, "power1_average", FX_POWER_UW, 0);
    fx_set_watts(fx, amd, 42.5);
    /* i915 discrete: one energy counter (µJ) */
    fx_hwmon(fx, 4, "i915", "pci0000:00/0000:00:01.0/0000:03:00.0");
    fx_hwmon_counter(fx, 4, "energy1_input", FX_ENERGY_UJ, 777);
    /* xe: card and pkg counters, pkg inside card */
    fx_hwmon(fx, 5, "xe", "pci0000:00/0000:00:02.0/0000:04:00.0");
    fx_hwmon_counter(fx, 5, "energy1_input", FX_ENERGY_UJ, 10);
    fx_hwmon_attr(fx, 5, "energy1_label", "card");
    fx_hwmon_counter(fx, 5, "energy2_input", FX_ENERGY_UJ, 20);
    fx_hwmon_attr(fx, 5, "energy2_label", "pkg");
    /* something else with energy counters */
    fx_hwmon(fx, 6, "mystery", "platform/mystery.0");
    fx_hwmon_counter(fx, 6, "energy1_input", FX_ENERGY_UJ, 1);
    /* a temperature sensor: not ours, no note */
    fx_hwmon(fx, 7, "k10temp", "pci0000:00/0000:00:18.3");
    fx_hwmon_attr(fx, 7, "temp1_input", "45000");

    struct reg r;
    reg_open(&r, fx, "hwmon", 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.set.n, 4);
    struct sensor *gpu = must(&r, "amdgpu:0000:0b:00.0");
    assert_int_equal(gpu->info.domain, JB_DOMAIN_GPU);
    assert_int_equal(gpu->info.kind, JB_SENSOR_POWER);
    assert_true(gpu->info.used);
    assert_non_null(strstr(gpu->info.device, "PCI 1002:73bf"));
    struct sensor_reading rd;
    assert_int_equal(gpu->backend->read(gpu, &rd), 0);
    assert_true(fabs(rd.power_w - 42.5) < 1e-9);
    struct sensor *i915 = must(&r, "i915:0000:03:00.0");
    assert_int_equal(i915->info.kind, JB_SENSOR_ENERGY);
    assert_true(read_raw(i915) == 777);
    struct sensor *card = must(&r, "xe:0000:04:00.0:card");
    struct sensor *xpkg = must(&r, "xe:0000:04:00.0:pkg");
    assert_int_equal(xpkg->info.parent, index_of(&r, "xe:0000:04:00.0:card"));
    assert_int_equal(card->info.parent, -1);
    assert_true(read_raw(xpkg) == 20);
    assert_true(has_note(&r, "mystery"));
    assert_false(has_note(&r, "k10temp"));
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* amd_energy: per-core counters summed into one cores sensor; the socket
 * counter is the package's RAPL counter, which powercap reads first. */
static void test_hwmon_amd_energy(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("amd-energy");
    fx_hwmon(fx, 2, "amd_energy", "platform/amd_energy.0");
    char attr[32], label[32];
    for (int i = 1; i <= 70; i++) { /* 70 cores: more than the plain attribute scan */
        snprintf(attr, sizeof attr, "energy%d_input", i);
        fx_hwmon_counter(fx, 2, attr, FX_ENERGY_UJ, 100);
        snprintf(attr, sizeof attr, "energy%d_label", i);
        snprintf(label, sizeof label, "Ecore%03d", i - 1);
        fx_hwmon_attr(fx, 2, attr, label);
    }
    fx_hwmon_attr(fx, 2, "energy71_input", "5000");
    fx_hwmon_attr(fx, 2, "energy71_label", "Esocket0");
    struct reg r;
    reg_open(&r, fx, "hwmon", 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.set.n, 2);
    struct sensor *sock = must(&r, "amd_energy:socket0");
    struct sensor *cores = must(&r, "amd_energy:cores");
    assert_int_equal(sock->info.domain, JB_DOMAIN_CPU);
    assert_true(read_raw(sock) == 5000);
    assert_int_equal(cores->info.domain, JB_DOMAIN_CORES);
    assert_true(read_raw(cores) == 70 * 100);
    assert_int_equal(cores->info.parent, index_of(&r, "amd_energy:socket0"));
    assert_true(sock->info.used && cores->info.used);
    sensor_set_clear(&r.set);

    /* With powercap present, the package route wins. */
    fx_rapl_zone(fx, "intel-rapl:0", "package-0", 1, 0);
    fx_rapl_zone(fx, "intel-rapl:0:0", "core", 1, 0);
    reg_open(&r, fx, "powercap,hwmon", 0);
    assert_int_equal(r.rc, 0);
    assert_false(must(&r, "amd_energy:socket0")->info.used);
    assert_false(must(&r, "amd_energy:cores")->info.used);
    assert_true(must(&r, "rapl:package-0")->info.used);
    sensor_set_clear(&r.set);
    fx_free(fx);
}

/* ---- estimator ---- */

static void test_estimate(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("estimate");
    fx_proc_stat(fx, 4, 1000, 5000);
    struct reg r;
    reg_open(&r, fx, NULL, 40.0);
    assert_int_equal(r.rc, 0);
    struct sensor *e = must(&r, "estimate:cpu");
    assert_true(e->info.used && e->info.estimated && e->info.readable);
    assert_int_equal(e->info.domain, JB_DOMAIN_CPU);
    assert_true(read_raw(e) == 1000);
    long hz = sysconf(_SC_CLK_TCK);
    /* 40 W for 4 CPUs: one busy tick is 40 / (hz × 4) J */
    assert_true(fabs(e->joules_per_unit - 40.0 / ((double)hz * 4)) < 1e-12);
    assert_non_null(strstr(e->info.label, "40 W"));
    assert_non_null(strstr(e->info.label, "--cpu-watts"));
    /* nothing measured here: notes say what each backend missed */
    assert_true(has_note(&r, "powercap"));
    assert_true(has_note(&r, "hwmon"));
    assert_true(has_note(&r, "perf"));
    fx_proc_stat(fx, 4, 1500, 5100);
    assert_true(read_raw(e) == 1500);
    sensor_set_clear(&r.set);

    /* Without --cpu-watts: the documented guess, said to be a guess. */
    reg_open(&r, fx, "estimate", 0);
    e = must(&r, "estimate:cpu");
    assert_true(fabs(e->joules_per_unit - (15.0 + 4.0 * 4) / ((double)hz * 4)) < 1e-12);
    assert_non_null(strstr(e->info.label, "guess"));
    sensor_set_clear(&r.set);
    fx_free(fx);
}

static void test_registry_only(void **state)
{
    (void)state;
    struct fx_sysfs *fx = fx_new("only");
    intel_client(fx);
    fx_proc_stat(fx, 2, 1, 1);
    struct reg r;
    reg_open(&r, fx, "estimate", 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.set.n, 1);
    assert_true(r.set.items[0]->info.used);
    sensor_set_clear(&r.set);
    reg_open(&r, fx, "powercap,nosuch", 0);
    assert_int_equal(r.rc, JB_ERR_USAGE);
    assert_non_null(strstr(r.err, "nosuch"));
    assert_non_null(strstr(r.err, "powercap"));
    assert_int_equal(r.set.n, 0);
    fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_powercap_intel),
        cmocka_unit_test(test_powercap_two_sockets),
        cmocka_unit_test(test_powercap_amd),
        cmocka_unit_test(test_powercap_mmio_duplicate),
        cmocka_unit_test(test_powercap_garbage),
        cmocka_unit_test(test_powercap_unreadable),
        cmocka_unit_test(test_perf_preferred),
        cmocka_unit_test(test_perf_refused),
        cmocka_unit_test(test_perf_counter_that_never_counts),
        cmocka_unit_test(test_powercap_zone_that_never_counts),
        cmocka_unit_test(test_psys_beside_a_gpu),
        cmocka_unit_test(test_perf_bad_events),
        cmocka_unit_test(test_perf_real_syscall),
        cmocka_unit_test(test_hwmon),
        cmocka_unit_test(test_hwmon_amd_energy),
        cmocka_unit_test(test_estimate),
        cmocka_unit_test(test_registry_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
