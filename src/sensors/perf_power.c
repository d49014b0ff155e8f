/*
 * perf_power.c — RAPL energy counters through the perf "power" PMU.
 *
 * <sysfs>/bus/event_source/devices/power has the PMU's `type`, a `cpumask`
 * with one CPU per package, and events/energy-{pkg,cores,ram,gpu,psys}
 * ("event=0x02") with `.scale` (joules per count) and `.unit` ("Joules").
 * Each event is opened system-wide (pid -1) on each package's CPU. The
 * counts are 64-bit and start at 0, so they do not wrap in practice.
 *
 * The same counters are reachable through powercap; perf is preferred when
 * it can be opened because it needs no root: perf_event_paranoid <= 0 or
 * CAP_PERFMON on the binary is enough.
 */
#include "sensors/perf_power.h"

#include <dirent.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/str.h"
#include "sensors/parse.h"
#include "sensors/sensor.h"

#define PERF_MAX_CPUS 64
#define PERF_MAX_EVENTS 16

struct perf_sensor {
    struct sensor base;
    int fd;
    uint32_t type;
    uint64_t config;
    int cpu;
    char paranoid_path[FS_PATH_MAX]; /* <procfs>/sys/kernel/perf_event_paranoid */
};

static int kernel_open(uint32_t type, uint64_t config, int cpu)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = type;
    attr.size = sizeof attr;
    attr.config = config;
    long fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

static int kernel_read(int fd, uint64_t *count)
{
    uint64_t v;
    ssize_t n;
    do
        n = read(fd, &v, sizeof v);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n != (ssize_t)sizeof v)
        return -EIO;
    *count = v;
    return 0;
}

static const struct perf_power_ops kernel_ops = {kernel_open, kernel_read};
static const struct perf_power_ops *ops = &kernel_ops;

void perf_power_set_ops(const struct perf_power_ops *o)
{
    ops = o ? o : &kernel_ops;
}

static int perf_read(struct sensor *s, struct sensor_reading *r)
{
    struct perf_sensor *p = (struct perf_sensor *)s;
    uint64_t v;
    int e = ops->read(p->fd, &v);
    if (e) {
        snprintf(s->error, sizeof s->error, "perf counter %s (CPU %d): %s", s->info.name, p->cpu,
                 strerror(-e));
        return fs_errno_code(-e);
    }
    r->raw = v;
    return 0;
}

/* The permission failure is the common one (perf_event_paranoid is 2 on
 * most distributions): name the setting's value and both ways out. */
static int perf_open(struct sensor *s)
{
    struct perf_sensor *p = (struct perf_sensor *)s;
    int fd = ops->open(p->type, p->config, p->cpu);
    if (fd < 0) {
        int e = -fd;
        if (e == EACCES || e == EPERM) {
            char level[16] = "?";
            if (fs_read_small(p->paranoid_path, level, sizeof level) > 0)
                str_trim(level);
            return sensor_fail(s, JB_ERR_PERM,
                               "sudo sysctl kernel.perf_event_paranoid=0, or give the binary the "
                               "capability: sudo setcap cap_perfmon=ep $(which joulebench)",
                               "perf_event_open refused: system-wide events need "
                               "kernel.perf_event_paranoid <= 0 (it is %s) or CAP_PERFMON",
                               level);
        }
        return sensor_fail(s, fs_errno_code(e), "",
                           "perf_event_open(type %u, config 0x%llx, CPU %d): %s", p->type,
                           (unsigned long long)p->config, p->cpu, strerror(e));
    }
    p->fd = fd;
    struct sensor_reading r;
    int rc = perf_read(s, &r);
    if (rc) {
        char why[JB_TEXT_LEN];
        str_lcpy(why, s->error, sizeof why);
        close(p->fd);
        p->fd = -1;
        return sensor_fail(s, rc, "", "%s", why);
    }
    return 0;
}

static void perf_close(struct sensor *s)
{
    struct perf_sensor *p = (struct perf_sensor *)s;
    if (!p)
        return;
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}

static int perf_probe(const struct sensor_env *env, struct sensor_set *set);

const struct sensor_backend sensor_perf_power = {
    .name = "perf",
    .probe = perf_probe,
    .open = perf_open,
    .read = perf_read,
    .close = perf_close,
    .last_error = sensor_last_error,
};

struct perf_event_desc {
    char name[32]; /* "pkg", "cores", ... (after "energy-") */
    uint64_t config;
    double joules_per_count;
};

/* Turns events/<ev> ("event=0x02") into a config word using the PMU's
 * format/ files ("config:0-7"); without a format file, "event" is the
 * whole config (what the power PMU has always meant). */
static int event_config(const char *pmu, const char *ev, uint64_t *config, char *why,
                        size_t why_len)
{
    char rel[FS_PATH_MAX], text[128];
    snprintf(rel, sizeof rel, "events/%s", ev);
    int n = sensor_read_text(pmu, rel, text, sizeof text);
    if (n <= 0) {
        snprintf(why, why_len, "%s/%s is unreadable", pmu, rel);
        return JB_ERR_FORMAT;
    }
    struct parse_term terms[8];
    size_t nt;
    if (parse_perf_event(text, (size_t)n, terms, 8, &nt)) {
        snprintf(why, why_len, "%s/%s: cannot parse '%s'", pmu, rel, text);
        return JB_ERR_FORMAT;
    }
    uint64_t c = 0;
    for (size_t i = 0; i < nt; i++) {
        char fmt[64];
        snprintf(rel, sizeof rel, "format/%s", terms[i].name);
        int fl = sensor_read_text(pmu, rel, fmt, sizeof fmt);
        int word;
        unsigned lo, hi;
        if (fl <= 0 && strcmp(terms[i].name, "event") == 0) {
            c |= terms[i].value;
            continue;
        }
        if (fl <= 0 || parse_perf_format(fmt, (size_t)fl, &word, &lo, &hi) || word != 0 ||
            parse_perf_place(&c, lo, hi, terms[i].value)) {
            snprintf(why, why_len, "%s/events/%s: term '%s' has no usable format", pmu, ev,
                     terms[i].name);
            return JB_ERR_FORMAT;
        }
    }
    *config = c;
    return 0;
}

static int describe_event(const char *pmu, const char *ev, struct perf_event_desc *d, char *why,
                          size_t why_len)
{
    str_lcpy(d->name, ev + strlen("energy-"), sizeof d->name);
    if (event_config(pmu, ev, &d->config, why, why_len))
        return JB_ERR_FORMAT;
    char rel[FS_PATH_MAX], text[64];
    double scale, unit;
    snprintf(rel, sizeof rel, "events/%s.scale", ev);
    int n = sensor_read_text(pmu, rel, text, sizeof text);
    if (n <= 0 || parse_perf_scale(text, (size_t)n, &scale)) {
        snprintf(why, why_len, "%s/%s: no usable scale", pmu, rel);
        return JB_ERR_FORMAT;
    }
    snprintf(rel, sizeof rel, "events/%s.unit", ev);
    n = sensor_read_text(pmu, rel, text, sizeof text);
    if (n <= 0 || parse_perf_unit(text, (size_t)n, &unit)) {
        snprintf(why, why_len, "%s/%s: unit '%s' is not an energy", pmu, rel, n > 0 ? text : "");
        return JB_ERR_FORMAT;
    }
    d->joules_per_count = scale * unit;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Package (and, on multi-die parts, die) of each CPU in the cpumask, as the
 * powercap zones name them ("0", "1", "0-die-1"), so both routes share
 * counter keys. */
static void package_names(const struct sensor_env *env, const int *cpus, size_t n, char names[][16])
{
    unsigned pkg[PERF_MAX_CPUS], die[PERF_MAX_CPUS];
    int have_die = 1, dup = 0;
    for (size_t i = 0; i < n; i++) {
        char dir[FS_PATH_MAX], text[16];
        uint64_t v;
        snprintf(dir, sizeof dir, "%s/devices/system/cpu/cpu%d/topology", env->sysfs_root, cpus[i]);
        pkg[i] = (unsigned)i;
        if (sensor_read_text(dir, "physical_package_id", text, sizeof text) > 0 &&
            str_to_u64(text, (size_t)-1, &v) == 0 && v < 4096)
            pkg[i] = (unsigned)v;
        die[i] = 0;
        if (sensor_read_text(dir, "die_id", text, sizeof text) > 0 &&
            str_to_u64(text, (size_t)-1, &v) == 0 && v < 4096)
            die[i] = (unsigned)v;
        else
            have_die = 0;
        for (size_t j = 0; j < i; j++)
            if (pkg[j] == pkg[i])
                dup = 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (dup && have_die)
            snprintf(names[i], 16, "%u-die-%u", pkg[i], die[i]);
        else if (dup)
            snprintf(names[i], 16, "%zu", i);
        else
            snprintf(names[i], 16, "%u", pkg[i]);
    }
}

/* One sensor per event and package. Domains follow the kernel's RAPL
 * names (pkg, cores, gpu = PP1 = uncore, ram, psys), and counter keys
 * match powercap's so the registry can pick one route. */
static int add_event(const struct sensor_env *env, const struct perf_event_desc *d, uint32_t type,
                     int cpu, const char *pkg, const char *cpu_model, struct sensor_set *set)
{
    enum jb_domain domain;
    char name[JB_NAME_LEN], key[32], parent[JB_NAME_LEN] = "";
    if (strcmp(d->name, "pkg") == 0) {
        domain = JB_DOMAIN_CPU;
        snprintf(key, sizeof key, "cpu-pkg-%s", pkg);
    } else if (strcmp(d->name, "cores") == 0) {
        domain = JB_DOMAIN_CORES;
        snprintf(key, sizeof key, "cpu-cores-%s", pkg);
        snprintf(parent, sizeof parent, "perf:pkg-%s", pkg);
    } else if (strcmp(d->name, "gpu") == 0) {
        /* PP1, the integrated graphics: powercap calls it "uncore". */
        domain = JB_DOMAIN_UNCORE;
        snprintf(key, sizeof key, "uncore-%s", pkg);
        snprintf(parent, sizeof parent, "perf:pkg-%s", pkg);
    } else if (strcmp(d->name, "ram") == 0) {
        domain = JB_DOMAIN_DRAM;
        snprintf(key, sizeof key, "dram-%s", pkg);
    } else {
        domain = JB_DOMAIN_SYSTEM;
        str_lcpy(key, "psys", sizeof key);
    }
    if (domain == JB_DOMAIN_SYSTEM)
        snprintf(name, sizeof name, "perf:psys");
    else
        snprintf(name, sizeof name, "perf:%s-%s", d->name, pkg);
    struct perf_sensor *p = calloc(1, sizeof *p);
    if (!p)
        return JB_ERR_NOMEM;
    p->fd = -1;
    p->type = type;
    p->config = d->config;
    p->cpu = cpu;
    fs_path_join(p->paranoid_path, sizeof p->paranoid_path, env->procfs_root,
                 "sys/kernel/perf_event_paranoid");
    struct sensor *s = &p->base;
    sensor_init(s, &sensor_perf_power, name, domain, JB_SENSOR_ENERGY);
    snprintf(s->info.label, sizeof s->info.label, "perf power/energy-%s/ on CPU %d (package %s)",
             d->name, cpu, pkg);
    str_lcpy(s->info.device, cpu_model, sizeof s->info.device);
    str_lcpy(s->parent_name, parent, sizeof s->parent_name);
    str_lcpy(s->counter_key, key, sizeof s->counter_key);
    s->route_rank = SENSOR_RANK_PERF;
    s->joules_per_unit = d->joules_per_count;
    s->info.update_period_s = 0.001;
    return sensor_set_add_or_drop(set, s);
}

/* Everything but the system call comes from sysfs, so a fixture tree
 * exercises all of it; malformed events are noted and skipped. */
static int perf_probe(const struct sensor_env *env, struct sensor_set *set)
{
    char pmu[FS_PATH_MAX], text[256];
    if (fs_path_join(pmu, sizeof pmu, env->sysfs_root, "bus/event_source/devices/power"))
        return 0;
    if (!fs_is_dir(pmu)) {
        sensor_set_note(set, "perf: no power PMU at %s (the kernel has no RAPL perf events)", pmu);
        return 0;
    }
    uint64_t type;
    int n = sensor_read_text(pmu, "type", text, sizeof text);
    if (n <= 0 || str_to_u64(text, (size_t)n, &type) || type > UINT32_MAX) {
        sensor_set_note(set, "perf: %s/type is unreadable or not a number", pmu);
        return 0;
    }
    int cpus[PERF_MAX_CPUS];
    size_t ncpu = 0;
    n = sensor_read_text(pmu, "cpumask", text, sizeof text);
    if (n <= 0 || parse_cpulist(text, (size_t)n, cpus, PERF_MAX_CPUS, &ncpu) || ncpu == 0) {
        sensor_set_note(set, "perf: %s/cpumask is unreadable or not a CPU list", pmu);
        return 0;
    }
    char pkg[PERF_MAX_CPUS][16];
    package_names(env, cpus, ncpu, pkg);

    char events_dir[FS_PATH_MAX];
    fs_path_join(events_dir, sizeof events_dir, pmu, "events");
    DIR *d = opendir(events_dir);
    if (!d) {
        sensor_set_note(set, "perf: %s has no events", pmu);
        return 0;
    }
    char *evs[PERF_MAX_EVENTS];
    size_t nev = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && nev < PERF_MAX_EVENTS) {
        if (!str_has_prefix(e->d_name, "energy-") || strchr(e->d_name, '.'))
            continue;
        if (!(evs[nev] = str_dup(e->d_name)))
            break;
        nev++;
    }
    closedir(d);
    qsort(evs, nev, sizeof evs[0], cmp_str);
    int rc = 0;
    size_t before = set->n;
    char cpu_model[JB_TEXT_LEN];
    sensor_cpu_model(env, cpu_model, sizeof cpu_model);
    for (size_t i = 0; i < nev && rc == 0; i++) {
        struct perf_event_desc desc;
        char why[JB_TEXT_LEN];
        if (describe_event(pmu, evs[i], &desc, why, sizeof why)) {
            sensor_set_note(set, "perf: %s", why);
            continue;
        }
        if (strcmp(desc.name, "pkg") && strcmp(desc.name, "cores") && strcmp(desc.name, "gpu") &&
            strcmp(desc.name, "ram") && strcmp(desc.name, "psys")) {
            sensor_set_note(set, "perf: event %s is of a kind joulebench does not know", evs[i]);
            continue;
        }
        /* psys is one counter for the whole platform: read it once. */
        size_t ncpu_ev = strcmp(desc.name, "psys") == 0 ? 1 : ncpu;
        for (size_t c = 0; c < ncpu_ev && rc == 0; c++)
            rc = add_event(env, &desc, (uint32_t)type, cpus[c], pkg[c], cpu_model, set);
    }
    for (size_t i = 0; i < nev; i++)
        free(evs[i]);
    if (rc == 0 && set->n == before)
        sensor_set_note(set, "perf: the power PMU at %s has no energy events", pmu);
    return rc;
}
