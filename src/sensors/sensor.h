/*
 * sensor.h — the interface every energy sensor backend implements.
 *
 * A backend is a const table of functions (struct sensor_backend) listed in
 * the registry (registry.c, a plain array guarded by #ifdef). probe() finds
 * the backend's devices and appends one struct sensor per counter; each
 * backend embeds struct sensor as the first member of its own per-device
 * struct:
 *
 *     struct rapl_sensor { struct sensor base; int fd; ... };
 *
 * Ownership: probe() allocates each sensor and hands it to the set; the set's
 * owner (the meter) calls backend->close(s), which frees it.
 *
 * A sensor either reads a cumulative energy counter (JB_SENSOR_ENERGY: raw
 * units × joules_per_unit, wrapping at raw_range) or an instantaneous power
 * (JB_SENSOR_POWER, watts), which the meter integrates. A sensor that exists
 * but cannot be read stays in the set with info.readable = 0 and says why
 * (info.reason) and what to do (info.fix): it is never read as 0 J.
 */
#ifndef JB_SENSORS_SENSOR_H
#define JB_SENSORS_SENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "joulebench/joulebench.h"

/* Where backends look. Paths are never hard-coded elsewhere: tests point
 * these at fixture trees and a fake NVML. */
struct sensor_env {
    const char *sysfs_root;  /* "/sys" or $JOULEBENCH_SYSFS_ROOT */
    const char *procfs_root; /* "/proc" or $JOULEBENCH_PROCFS_ROOT */
    const char *nvml_lib;    /* NULL: the usual sonames */
    double cpu_watts;        /* estimator: full-load CPU watts; 0 = guess */
};

struct sensor_reading {
    double t_s;      /* jb_clock_s() when read */
    uint64_t raw;    /* JB_SENSOR_ENERGY: counter as the hardware reports it */
    double power_w;  /* JB_SENSOR_POWER */
};

struct sensor_backend;

struct sensor {
    const struct sensor_backend *backend;
    struct jb_sensor_info info;    /* info.parent is resolved by the registry */
    char parent_name[JB_NAME_LEN]; /* name of the enclosing sensor, "" if none */
    double joules_per_unit;        /* ENERGY: joules per raw count */
    uint64_t raw_range;            /* ENERGY: counter wraps to 0 at this value; 0: never */
    char error[JB_TEXT_LEN];       /* last read error, for last_error() */
};

struct sensor_set {
    struct sensor *items[JB_MAX_SENSORS];
    size_t n;
    /* Notes for `joulebench sensors` about backends that found nothing
     * usable ("no powercap zones under /sys/class/powercap"). */
    char notes[8][JB_TEXT_LEN];
    size_t n_notes;
};

struct sensor_backend {
    const char *name;
    /* Appends this backend's sensors to set. Finding nothing is not an
     * error (return 0, maybe with a note); errors are out of memory only. */
    int (*probe)(const struct sensor_env *env, struct sensor_set *set);
    /* Opens the device (files kept open for pread). On failure sets
     * info.readable = 0, info.reason and info.fix, returns a JB_ERR_*. */
    int (*open)(struct sensor *s);
    /* Hot path: no allocation, no formatting on success. */
    int (*read)(struct sensor *s, struct sensor_reading *r);
    void (*close)(struct sensor *s); /* releases and frees s */
    const char *(*last_error)(const struct sensor *s);
};

/* Adds s to set; JB_ERR_NOMEM when full (the caller still owns s then). */
int sensor_set_add(struct sensor_set *set, struct sensor *s);
void sensor_set_note(struct sensor_set *set, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Closes (frees) every sensor and empties the set. */
void sensor_set_clear(struct sensor_set *set);

/* The registry: probes the backends (only those named in the comma list
 * `only`, when given), opens every sensor, resolves parents, and decides
 * which sensors count (`used`): a counter reachable by two routes is used
 * once (perf preferred over powercap), the CPU-time estimator only where no
 * measured CPU sensor is readable. */
int sensor_registry_open(const struct sensor_env *env, const char *only, int no_estimate,
                         struct sensor_set *set, char *err);
/* The backend table, NULL-terminated. */
extern const struct sensor_backend *const sensor_backends[];

#endif
