/*
 * registry.c — the table of sensor backends, and the rules that turn what
 * they found into one set of sensors the meter can add up without counting
 * a joule twice.
 */
#include "sensors/sensor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/str.h"
#include "common/timeutil.h"

/* Order matters twice: `joulebench sensors` lists in this order, and the
 * estimator must come after every measured backend. */
const struct sensor_backend *const sensor_backends[] = {
#if defined(__linux__)
    &sensor_perf_power,
    &sensor_powercap,
    &sensor_hwmon,
    &sensor_ina3221,
    &sensor_nvml,
#endif
#if defined(__APPLE__)
    &sensor_ioreport,
#endif
#if defined(__linux__)
    &sensor_estimate,
#endif
    NULL,
};

int sensor_set_add(struct sensor_set *set, struct sensor *s)
{
    if (set->n >= JB_MAX_SENSORS)
        return JB_ERR_NOMEM;
    set->items[set->n++] = s;
    return 0;
}

int sensor_set_add_or_drop(struct sensor_set *set, struct sensor *s)
{
    if (sensor_set_add(set, s) == 0)
        return 0;
    sensor_set_note(set, "more than %d sensors: %s left out", JB_MAX_SENSORS, s->info.name);
    s->backend->close(s);
    return 0;
}

void sensor_set_note(struct sensor_set *set, const char *fmt, ...)
{
    if (set->n_notes >= sizeof set->notes / sizeof set->notes[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(set->notes[set->n_notes++], JB_TEXT_LEN, fmt, ap);
    va_end(ap);
}

void sensor_set_clear(struct sensor_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        set->items[i]->backend->close(set->items[i]);
    set->n = 0;
    set->n_notes = 0;
}

void sensor_init(struct sensor *s, const struct sensor_backend *b, const char *name,
                 enum jb_domain domain, enum jb_sensor_kind kind)
{
    s->backend = b;
    str_lcpy(s->info.name, name, sizeof s->info.name);
    str_lcpy(s->info.backend, b->name, sizeof s->info.backend);
    s->info.domain = domain;
    s->info.kind = kind;
    s->info.parent = -1;
    s->joules_per_unit = 1e-6;
}

const char *sensor_last_error(const struct sensor *s)
{
    return s->error;
}

int sensor_fail(struct sensor *s, int code, const char *fix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->info.reason, sizeof s->info.reason, fmt, ap);
    va_end(ap);
    str_lcpy(s->info.fix, fix ? fix : "", sizeof s->info.fix);
    str_lcpy(s->error, s->info.reason, sizeof s->error);
    s->info.readable = 0;
    s->info.used = 0;
    return code;
}

int sensor_read_text(const char *dir, const char *rel, char *dst, size_t size)
{
    char path[FS_PATH_MAX];
    if (fs_path_join(path, sizeof path, dir, rel))
        return JB_ERR_NOMEM;
    ssize_t n = fs_read_small(path, dst, size);
    if (n < 0)
        return (int)n;
    str_trim(dst);
    return (int)strlen(dst);
}

/* The CPU model names the hardware behind the CPU sensors in run.json; the
 * first "model name" line is enough (every package of a machine is alike),
 * and it comes in the first record, so one small read does. */
void sensor_cpu_model(const struct sensor_env *env, char *dst, size_t size)
{
    dst[0] = '\0';
    char path[FS_PATH_MAX], text[4096];
    if (fs_path_join(path, sizeof path, env->procfs_root, "cpuinfo") ||
        fs_read_small(path, text, sizeof text) <= 0)
        return;
    char *p = strstr(text, "model name");
    if (!p)
        return;
    char *colon = strchr(p, ':');
    char *nl = strchr(p, '\n');
    if (!colon || (nl && nl < colon))
        return;
    if (nl)
        *nl = '\0';
    str_lcpy(dst, str_trim(colon + 1), size);
}

static int backend_wanted(const char *only, const char *name)
{
    if (!only || !*only)
        return 1;
    size_t len = strlen(name);
    for (const char *p = only; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static int check_only(const char *only, char *err)
{
    if (!only || !*only)
        return 0;
    for (const char *p = only; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        int found = 0;
        for (size_t i = 0; sensor_backends[i]; i++)
            if (strlen(sensor_backends[i]->name) == n &&
                strncmp(sensor_backends[i]->name, p, n) == 0)
                found = 1;
        if (!found) {
            char known[128] = "";
            for (size_t i = 0; sensor_backends[i]; i++) {
                if (i)
                    str_lcat(known, ", ", sizeof known);
                str_lcat(known, sensor_backends[i]->name, sizeof known);
            }
            return err_setf(err, JB_ERR_USAGE, "unknown sensor backend '%.*s' (this build has: %s)",
                            (int)n, p, known);
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static int find_name(const struct sensor_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i]->info.name, name) == 0)
            return (int)i;
    return -1;
}

/* Two backends may name two sensors alike (two GPUs of one driver without
 * a PCI address): the later one gets "#2", "#3", ... so names stay keys. */
static void make_names_unique(struct sensor_set *set)
{
    for (size_t i = 1; i < set->n; i++) {
        struct jb_sensor_info *info = &set->items[i]->info;
        for (int k = 2; k < 100; k++) {
            int dup = 0;
            for (size_t j = 0; j < i; j++)
                if (strcmp(set->items[j]->info.name, info->name) == 0)
                    dup = 1;
            if (!dup)
                break;
            char suffix[8];
            snprintf(suffix, sizeof suffix, "#%d", k);
            char *hash = strrchr(info->name, '#');
            if (k > 2 && hash)
                *hash = '\0';
            size_t room = sizeof info->name - strlen(suffix) - 1;
            if (strlen(info->name) > room)
                info->name[room] = '\0';
            str_lcat(info->name, suffix, sizeof info->name);
        }
    }
}

/* A hardware counter that two routes reach (perf and powercap both read
 * the package's RAPL MSR) is used once: the readable route of highest rank.
 * The others stay listed, saying which sensor stands in for them. */
static void pick_routes(struct sensor_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        struct sensor *s = set->items[i];
        if (!s->counter_key[0])
            continue;
        int best = -1;
        for (size_t j = 0; j < set->n; j++) {
            struct sensor *o = set->items[j];
            if (!o->info.readable || strcmp(o->counter_key, s->counter_key) != 0)
                continue;
            if (best < 0 || o->route_rank > set->items[best]->route_rank)
                best = (int)j;
        }
        if (best < 0 || (size_t)best == i)
            continue;
        const char *other = set->items[best]->info.name;
        if (s->info.readable) {
            s->info.used = 0;
            snprintf(s->info.reason, sizeof s->info.reason,
                     "measures the same as %s, which is read instead", other);
        } else {
            char old[JB_TEXT_LEN];
            str_lcpy(old, s->info.reason, sizeof old);
            snprintf(s->info.reason, sizeof s->info.reason, "not needed: %s measures the same (%s)",
                     other, old);
        }
        s->info.fix[0] = '\0';
    }
}

/* Parents are named by the backends; here they become indices. A parent
 * left unused because another route reads its counter hands its children
 * to that route, so "cores inside package" holds whichever route counts. */
static void resolve_parents(struct sensor_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        struct sensor *s = set->items[i];
        s->info.parent = s->parent_name[0] ? find_name(set, s->parent_name) : -1;
        if (s->info.parent < 0)
            continue;
        struct sensor *p = set->items[s->info.parent];
        if (p->info.used || !p->counter_key[0])
            continue;
        for (size_t j = 0; j < set->n; j++) {
            struct sensor *o = set->items[j];
            if (o->info.used && strcmp(o->counter_key, p->counter_key) == 0)
                s->info.parent = (int)j;
        }
    }
}

/* How long a counter that reads 0 gets to move before it counts as empty:
 * three of its update periods, at least DEAD_WAIT_MIN_S, at most
 * DEAD_WAIT_MAX_S. Live RAPL counters move within a millisecond. */
#define DEAD_WAIT_MIN_S 0.05
#define DEAD_WAIT_MAX_S 0.3
#define DEAD_POLL_S 0.005

/* An energy counter that reads 0 and stays there is exposed but never
 * filled: a virtual machine's perf power PMU answers every read with 0,
 * and so does a DRAM zone on boards whose firmware does not count it.
 * Used, it would report 0 J as a measurement, and a psys read that way
 * would even stand in for the CPU. Counters that run from boot (powercap,
 * NVML) are never 0 on a working machine; perf counts from the open, so
 * 0 right after it is normal: each counter that reads 0 gets a short wait
 * to move, and the wait ends as soon as all of them have. Healthy machines
 * pay nothing, or a few milliseconds where perf is the route. */
static void drop_dead_counters(struct sensor_set *set)
{
    size_t zero[JB_MAX_SENSORS], n_zero = 0;
    double wait = 0;
    for (size_t i = 0; i < set->n; i++) {
        struct sensor *s = set->items[i];
        struct sensor_reading r = {0};
        if (!s->info.readable || s->info.estimated || s->info.kind != JB_SENSOR_ENERGY)
            continue;
        /* Only where a true 0 over the wait is impossible: an idle iGPU
         * (uncore) or an unused ANE can draw nothing for seconds, and a
         * counter that updates more slowly than the wait cannot show
         * that it moves. */
        if (s->info.domain == JB_DOMAIN_UNCORE || s->info.domain == JB_DOMAIN_ANE ||
            s->info.update_period_s > DEAD_WAIT_MAX_S / 3.0)
            continue;
        if (s->backend->read(s, &r) != 0 || r.raw != 0)
            continue;
        zero[n_zero++] = i;
        double w = 3.0 * s->info.update_period_s;
        w = w < DEAD_WAIT_MIN_S ? DEAD_WAIT_MIN_S : w > DEAD_WAIT_MAX_S ? DEAD_WAIT_MAX_S : w;
        if (w > wait)
            wait = w;
    }
    double t0 = jb_clock_s(), waited = 0;
    while (n_zero && waited < wait) {
        time_sleep_s(DEAD_POLL_S, NULL);
        waited = jb_clock_s() - t0;
        size_t keep = 0;
        for (size_t k = 0; k < n_zero; k++) {
            struct sensor *s = set->items[zero[k]];
            struct sensor_reading r = {0};
            int rc = s->backend->read(s, &r);
            if (rc == 0 && r.raw == 0)
                zero[keep++] = zero[k];
        }
        n_zero = keep;
    }
    for (size_t k = 0; k < n_zero; k++) {
        struct sensor *s = set->items[zero[k]];
        s->info.readable = 0;
        s->info.used = 0;
        snprintf(s->info.reason, sizeof s->info.reason,
                 "its counter reads 0 and did not move in %.2f s: this machine exposes it "
                 "without counting (a virtual machine, or firmware that leaves it empty)",
                 waited);
        str_lcpy(s->info.fix,
                 "none here: measure on the host or on bare metal, where the counter runs",
                 sizeof s->info.fix);
    }
}

/* The CPU counts as measured when a readable sensor covers it: a package
 * or its cores, or a rail or board sensor the CPU draws from (a Jetson's
 * VDD_CPU_GPU_CV is soc, its VDD_IN system). An estimate added beside the
 * latter would count the CPU twice, or stand in for the measured total.
 * A system sensor covers the CPU only while it is the total, though: the
 * total leaves system sensors out as soon as another domain is measured
 * (psys beside a GPU's counter, on a machine with no package counter), and
 * the CPU would then be missing from it. There the estimate stands in for
 * the CPU, labelled as such, and the system figure is reported beside. */
static void decide_estimator(struct sensor_set *set)
{
    const char *measured = NULL, *system = NULL;
    unsigned top = 0; /* the domains of the measured sensors nothing contains */
    for (size_t i = 0; i < set->n; i++) {
        const struct jb_sensor_info *info = &set->items[i]->info;
        if (!info->used || info->estimated)
            continue;
        if (!measured && (info->domain == JB_DOMAIN_CPU || info->domain == JB_DOMAIN_CORES ||
                          info->domain == JB_DOMAIN_SOC))
            measured = info->name;
        else if (!system && info->domain == JB_DOMAIN_SYSTEM)
            system = info->name;
        if (info->parent < 0 || !set->items[info->parent]->info.used)
            top |= 1u << info->domain;
    }
    if (!measured && (jb_domains_in_total(top) & (1u << JB_DOMAIN_SYSTEM)))
        measured = system;
    if (!measured)
        return;
    for (size_t i = 0; i < set->n; i++) {
        struct jb_sensor_info *info = &set->items[i]->info;
        if (info->estimated && info->used &&
            (info->domain == JB_DOMAIN_CPU || info->domain == JB_DOMAIN_CORES)) {
            info->used = 0;
            snprintf(info->reason, sizeof info->reason, "not needed: the CPU is measured by %s",
                     measured);
            info->fix[0] = '\0';
        }
    }
}

int sensor_registry_open(const struct sensor_env *env, const char *only, int no_estimate,
                         struct sensor_set *set, char *err)
{
    int rc = check_only(only, err);
    if (rc)
        return rc;
    for (size_t b = 0; sensor_backends[b]; b++) {
        const struct sensor_backend *be = sensor_backends[b];
        if (!backend_wanted(only, be->name))
            continue;
        if (no_estimate && be == &sensor_estimate)
            continue;
        rc = be->probe(env, set);
        if (rc) {
            sensor_set_clear(set);
            return err_setf(err, rc, "%s: cannot probe sensors: %s", be->name, jb_strerror(rc));
        }
    }
    make_names_unique(set);
    for (size_t i = 0; i < set->n; i++) {
        struct sensor *s = set->items[i];
        if (s->backend->open(s) == 0) {
            s->info.readable = 1;
            s->info.used = 1;
        } else {
            s->info.readable = 0;
            s->info.used = 0;
        }
    }
    drop_dead_counters(set);
    pick_routes(set);
    resolve_parents(set);
    decide_estimator(set);
    return 0;
}
