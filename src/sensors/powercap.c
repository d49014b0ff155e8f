/*
 * powercap.c — RAPL energy counters through the Linux powercap class.
 *
 * <sysfs>/class/powercap/intel-rapl:N is a package (or psys, the platform)
 * and intel-rapl:N:M a zone inside it (core, uncore, dram), each a symlink
 * into devices/virtual/powercap/... with `name`, `energy_uj` (a µJ counter)
 * and `max_energy_range_uj` (where it wraps back to 0). AMD processors use
 * the same driver and names (package-N with a core zone, no dram). The
 * intel-rapl-mmio control type reaches the package counter a second way
 * and ranks below the MSR route.
 *
 * Since Linux 5.10 energy_uj is readable by root only; such a zone is
 * listed with the reason and the three fixes.
 */
#define _GNU_SOURCE /* strverscmp */
#include "sensors/sensor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/str.h"
#include "sensors/parse.h"

#define RAPL_MAX_ZONES 128

struct rapl_sensor {
    struct sensor base;
    int fd;
    char path[FS_PATH_MAX]; /* <zone>/energy_uj */
};

static const char rapl_perm_fix[] =
    "run as root; or make it readable with the udev rule SUBSYSTEM==\"powercap\", "
    "ACTION==\"add\", RUN+=\"/bin/chmod a+r %S%p/energy_uj\"; or read it through perf: "
    "sudo setcap cap_perfmon=ep $(which joulebench)";

static int cmp_names(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    return strverscmp(*x, *y); /* intel-rapl:10 after intel-rapl:9 */
}

/* "package-0" -> "0", "package-1-die-0" -> "1-die-0"; NULL for others. */
static const char *package_suffix(const char *name)
{
    return str_has_prefix(name, "package-") && name[8] ? name + 8 : NULL;
}

/* The sampler's hot path: one pread of energy_uj at offset 0 (sysfs
 * regenerates the value for each read at 0), no allocation. An empty read
 * means the zone went away; a value above the range is garbage. */
static int rapl_read(struct sensor *s, struct sensor_reading *r)
{
    struct rapl_sensor *z = (struct rapl_sensor *)s;
    char text[32];
    ssize_t n = fs_pread_small(z->fd, text, sizeof text);
    if (n < 0) {
        snprintf(s->error, sizeof s->error, "%s: %s", z->path, jb_strerror((int)n));
        return (int)n;
    }
    if (n == 0) {
        snprintf(s->error, sizeof s->error, "%s: empty read: the zone is gone", z->path);
        return JB_ERR_NOTFOUND;
    }
    uint64_t v;
    if (str_to_u64(text, (size_t)n, &v)) {
        str_trim(text);
        snprintf(s->error, sizeof s->error, "%s: '%.24s' is not a count of microjoules", z->path,
                 text);
        return JB_ERR_FORMAT;
    }
    if (s->raw_range && v > s->raw_range) {
        snprintf(s->error, sizeof s->error, "%s: %llu is above max_energy_range_uj (%llu)", z->path,
                 (unsigned long long)v, (unsigned long long)s->raw_range);
        return JB_ERR_FORMAT;
    }
    r->raw = v;
    return 0;
}

/* Opens energy_uj once for the whole run and reads it, so a zone that
 * cannot be read is known (and explained) before any window opens. */
static int rapl_open(struct sensor *s)
{
    struct rapl_sensor *z = (struct rapl_sensor *)s;
    z->fd = open(z->path, O_RDONLY | O_CLOEXEC);
    if (z->fd < 0) {
        int e = errno;
        if (e == EACCES || e == EPERM)
            return sensor_fail(s, JB_ERR_PERM, rapl_perm_fix,
                               "energy_uj is readable by root only (Linux 5.10 and later)");
        return sensor_fail(s, fs_errno_code(e), "", "%s: %s", z->path, strerror(e));
    }
    struct sensor_reading r;
    int rc = rapl_read(s, &r);
    if (rc) {
        char why[JB_TEXT_LEN];
        str_lcpy(why, s->error, sizeof why);
        close(z->fd);
        z->fd = -1;
        return sensor_fail(s, rc, rc == JB_ERR_PERM ? rapl_perm_fix : "", "%s", why);
    }
    return 0;
}

static void rapl_close(struct sensor *s)
{
    struct rapl_sensor *z = (struct rapl_sensor *)s;
    if (!z)
        return;
    if (z->fd >= 0)
        close(z->fd);
    free(z);
}

static int rapl_probe(const struct sensor_env *env, struct sensor_set *set);

const struct sensor_backend sensor_powercap = {
    .name = "powercap",
    .probe = rapl_probe,
    .open = rapl_open,
    .read = rapl_read,
    .close = rapl_close,
    .last_error = sensor_last_error,
};

/* What one zone folder is: its domain, the sensor name, the enclosing
 * sensor and the counter it shares with other routes. Returns 0 to take
 * the zone, 1 to skip it (with a note), JB_ERR_NOMEM never. */
struct zone_plan {
    enum jb_domain domain;
    char name[JB_NAME_LEN];
    char parent[JB_NAME_LEN];
    char key[32];
    char label[JB_TEXT_LEN];
};

static int plan_zone(const char *class_dir, const char *zone, const char *zname,
                     struct zone_plan *p)
{
    char prefix[32];
    unsigned idx[2];
    int depth;
    if (parse_rapl_zone(zone, strlen(zone), prefix, sizeof prefix, idx, &depth))
        return 1;
    int mmio = strstr(prefix, "mmio") != NULL;
    const char *route = mmio ? "rapl-mmio" : "rapl";
    memset(p, 0, sizeof *p);
    if (depth == 1) {
        const char *pkg = package_suffix(zname);
        if (pkg) {
            p->domain = JB_DOMAIN_CPU;
            snprintf(p->name, sizeof p->name, "%s:%s", route, zname);
            snprintf(p->key, sizeof p->key, "cpu-pkg-%s", pkg);
            snprintf(p->label, sizeof p->label, "RAPL package %s (%s)", pkg, zone);
        } else if (strcmp(zname, "psys") == 0) {
            p->domain = JB_DOMAIN_SYSTEM;
            snprintf(p->name, sizeof p->name, "%s:psys", route);
            str_lcpy(p->key, "psys", sizeof p->key);
            snprintf(p->label, sizeof p->label, "RAPL platform, psys (%s)", zone);
        } else if (strcmp(zname, "dram") == 0) {
            p->domain = JB_DOMAIN_DRAM;
            snprintf(p->name, sizeof p->name, "%s:dram-%u", route, idx[0]);
            snprintf(p->key, sizeof p->key, "dram-%u", idx[0]);
            snprintf(p->label, sizeof p->label, "RAPL DRAM (%s)", zone);
        } else {
            return 1;
        }
        return 0;
    }
    /* A zone inside a package: name it after the package it belongs to. */
    char parent_zone[64], parent_rel[FS_PATH_MAX], pname[64];
    snprintf(parent_zone, sizeof parent_zone, "%s:%u", prefix, idx[0]);
    snprintf(parent_rel, sizeof parent_rel, "%s/name", parent_zone);
    char idxs[16];
    snprintf(idxs, sizeof idxs, "%u", idx[0]);
    const char *pkg = idxs;
    if (sensor_read_text(class_dir, parent_rel, pname, sizeof pname) > 0 && package_suffix(pname))
        pkg = package_suffix(pname);
    else
        pname[0] = '\0';
    if (strcmp(zname, "core") == 0 || strcmp(zname, "cores") == 0) {
        p->domain = JB_DOMAIN_CORES;
        snprintf(p->key, sizeof p->key, "cpu-cores-%s", pkg);
        snprintf(p->label, sizeof p->label, "RAPL cores of package %s (%s)", pkg, zone);
    } else if (strcmp(zname, "uncore") == 0) {
        p->domain = JB_DOMAIN_UNCORE;
        snprintf(p->key, sizeof p->key, "uncore-%s", pkg);
        snprintf(p->label, sizeof p->label, "RAPL uncore of package %s (%s)", pkg, zone);
    } else if (strcmp(zname, "dram") == 0) {
        /* Listed under the package, but DRAM energy is not part of it. */
        p->domain = JB_DOMAIN_DRAM;
        snprintf(p->key, sizeof p->key, "dram-%s", pkg);
        snprintf(p->label, sizeof p->label, "RAPL DRAM of package %s (%s)", pkg, zone);
    } else {
        return 1;
    }
    snprintf(p->name, sizeof p->name, "%s:%s-%s", route,
             p->domain == JB_DOMAIN_CORES ? "core" : zname, pkg);
    if (pname[0] && p->domain != JB_DOMAIN_DRAM)
        snprintf(p->parent, sizeof p->parent, "%s:%s", route, pname);
    return 0;
}

/* One sensor for a zone folder, with its range; a zone of a kind not
 * known is left out with a note rather than guessed at. */
static int add_zone(const struct sensor_env *env, const char *class_dir, const char *zone,
                    const char *cpu_model, struct sensor_set *set)
{
    char rel[FS_PATH_MAX], zname[64];
    snprintf(rel, sizeof rel, "%s/name", zone);
    if (sensor_read_text(class_dir, rel, zname, sizeof zname) <= 0)
        return 0; /* a control type or a zone without a name: not a counter */
    struct zone_plan plan;
    if (plan_zone(class_dir, zone, zname, &plan)) {
        sensor_set_note(set, "powercap: zone %s (\"%s\") is of a kind joulebench does not know",
                        zone, zname);
        return 0;
    }
    struct rapl_sensor *z = calloc(1, sizeof *z);
    if (!z)
        return JB_ERR_NOMEM;
    z->fd = -1;
    struct sensor *s = &z->base;
    sensor_init(s, &sensor_powercap, plan.name, plan.domain, JB_SENSOR_ENERGY);
    str_lcpy(s->info.label, plan.label, sizeof s->info.label);
    str_lcpy(s->info.device, cpu_model, sizeof s->info.device);
    str_lcpy(s->parent_name, plan.parent, sizeof s->parent_name);
    str_lcpy(s->counter_key, plan.key, sizeof s->counter_key);
    s->route_rank = str_has_prefix(plan.name, "rapl-mmio:") ? SENSOR_RANK_ALT : SENSOR_RANK_SYSFS;
    s->info.update_period_s = 0.001; /* RAPL refreshes about every millisecond */
    if (fs_path_join(z->path, sizeof z->path, class_dir, zone) ||
        str_lcat(z->path, "/energy_uj", sizeof z->path) >= sizeof z->path) {
        free(z);
        return 0;
    }
    char range[32];
    uint64_t r;
    snprintf(rel, sizeof rel, "%s/max_energy_range_uj", zone);
    if (sensor_read_text(class_dir, rel, range, sizeof range) > 0 &&
        str_to_u64(range, (size_t)-1, &r) == 0 && r > 0) {
        s->raw_range = r;
        s->info.max_range_j = (double)r * 1e-6;
    }
    (void)env;
    return sensor_set_add_or_drop(set, s);
}

/* Lists class/powercap in version order (packages before their zones,
 * intel-rapl:10 after :9) so sensor order and names are stable. */
static int rapl_probe(const struct sensor_env *env, struct sensor_set *set)
{
    char class_dir[FS_PATH_MAX];
    if (fs_path_join(class_dir, sizeof class_dir, env->sysfs_root, "class/powercap"))
        return 0;
    DIR *d = opendir(class_dir);
    if (!d) {
        sensor_set_note(set, "powercap: no %s (no RAPL driver: try 'sudo modprobe intel_rapl_msr')",
                        class_dir);
        return 0;
    }
    char *names[RAPL_MAX_ZONES];
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, "rapl") || !strchr(e->d_name, ':'))
            continue;
        if (n == RAPL_MAX_ZONES)
            break;
        names[n] = str_dup(e->d_name);
        if (!names[n]) {
            rc = JB_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    char cpu_model[JB_TEXT_LEN];
    sensor_cpu_model(env, cpu_model, sizeof cpu_model);
    size_t before = set->n;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = add_zone(env, class_dir, names[i], cpu_model, set);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    if (rc == 0 && set->n == before)
        sensor_set_note(set, "powercap: no RAPL zones under %s", class_dir);
    return rc;
}
