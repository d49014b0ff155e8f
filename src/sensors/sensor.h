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
 *
 * Threads: a sensor is used by one thread at a time (the meter serialises).
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
    double t_s;     /* jb_clock_s() when read (set by the meter) */
    uint64_t raw;   /* JB_SENSOR_ENERGY: counter as the hardware reports it */
    double power_w; /* JB_SENSOR_POWER */
};

struct sensor_backend;

/* Route ranks: when two sensors read the same hardware counter (same
 * counter_key), the readable one with the highest rank is used. */
enum sensor_rank {
    SENSOR_RANK_ALT = 1,   /* a second route (hwmon amd_energy, RAPL over MMIO) */
    SENSOR_RANK_SYSFS = 2, /* powercap */
    SENSOR_RANK_PERF = 3   /* perf: needs no root under CAP_PERFMON */
};

struct sensor {
    const struct sensor_backend *backend;
    struct jb_sensor_info info;    /* info.parent is resolved by the registry */
    char parent_name[JB_NAME_LEN]; /* name of the enclosing sensor, "" if none */
    /* The hardware counter this reads, shared by every route to it
     * ("cpu-pkg-0", "cpu-cores-0", "dram-0", "uncore-0", "psys"); "" when
     * no other backend can reach it. */
    char counter_key[32];
    int route_rank;          /* enum sensor_rank; 0 when counter_key is "" */
    double joules_per_unit;  /* ENERGY: joules per raw count */
    uint64_t raw_range;      /* ENERGY: counter wraps to 0 at this value; 0: never */
    char error[JB_TEXT_LEN]; /* last read error, for last_error() */
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
     * error (return 0, maybe with a note); errors are out of memory only.
     * A full set is not an error either: the backend notes what it left
     * out and frees it. */
    int (*probe)(const struct sensor_env *env, struct sensor_set *set);
    /* Opens the device (files kept open for pread) and reads it once. On
     * failure sets info.readable = 0, info.reason and info.fix, returns a
     * JB_ERR_*; on success info.readable = 1. */
    int (*open)(struct sensor *s);
    /* Hot path: no allocation, no formatting on success. On failure fills
     * s->error (naming the file) and returns a JB_ERR_*. */
    int (*read)(struct sensor *s, struct sensor_reading *r);
    void (*close)(struct sensor *s); /* releases and frees s (NULL is fine) */
    const char *(*last_error)(const struct sensor *s);
};

/* Adds s to set; JB_ERR_NOMEM when full (the caller still owns s then). */
int sensor_set_add(struct sensor_set *set, struct sensor *s);
/* Adds s, or when the set is full, notes that s (by name) was left out
 * and closes it. Returns 0 either way. */
int sensor_set_add_or_drop(struct sensor_set *set, struct sensor *s);
void sensor_set_note(struct sensor_set *set, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Closes (frees) every sensor and empties the set. */
void sensor_set_clear(struct sensor_set *set);

/* Fills the common fields of a freshly allocated sensor. */
void sensor_init(struct sensor *s, const struct sensor_backend *b, const char *name,
                 enum jb_domain domain, enum jb_sensor_kind kind);
/* The default last_error(): s->error. */
const char *sensor_last_error(const struct sensor *s);
/* Marks s unreadable with a reason and a fix (either may be ""); returns code. */
int sensor_fail(struct sensor *s, int code, const char *fix, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Reads a small sysfs/procfs file under root ("class/powercap/x/name"),
 * trimmed. Returns the length or a negative JB_ERR_*. */
int sensor_read_text(const char *dir, const char *rel, char *dst, size_t size);
/* The CPU model from <procfs>/cpuinfo ("model name"), or "" when unknown. */
void sensor_cpu_model(const struct sensor_env *env, char *dst, size_t size);

/* The registry: probes the backends (only those named in the comma list
 * `only`, when given), opens every sensor, resolves parents, and decides
 * which sensors count (`used`): a counter reachable by two routes is used
 * once (perf preferred over powercap), the CPU-time estimator only where no
 * measured CPU sensor is readable. JB_ERR_USAGE for an unknown backend name
 * in `only` (err says which names exist). */
int sensor_registry_open(const struct sensor_env *env, const char *only, int no_estimate,
                         struct sensor_set *set, char *err);
/* The backend table, NULL-terminated. */
extern const struct sensor_backend *const sensor_backends[];

/* Backends (one file each). */
extern const struct sensor_backend sensor_powercap;
extern const struct sensor_backend sensor_perf_power;
extern const struct sensor_backend sensor_hwmon;
extern const struct sensor_backend sensor_estimate;
extern const struct sensor_backend sensor_ina3221; /* ina3221.h */
extern const struct sensor_backend sensor_nvml;    /* nvml.h */
#ifdef __APPLE__
extern const struct sensor_backend sensor_ioreport; /* ioreport.h */
#endif

#endif
