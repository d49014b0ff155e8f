/*
 * joulebench.h — the joulebench energy meter, as a library.
 *
 * Open a meter (it finds and opens every energy sensor of the machine), start
 * its sampler, then wrap any piece of work in named windows:
 *
 *     struct jb_meter *m;
 *     char err[256];
 *     if (jb_meter_open(&m, NULL, err, sizeof err)) { fprintf(stderr, "%s\n", err); ... }
 *     jb_meter_start(m);
 *     jb_meter_begin(m, "work");
 *     do_work();
 *     struct jb_energy e;
 *     jb_meter_end(m, "work", &e);
 *     printf("%.3f J%s\n", e.total_j, e.total_estimated ? " (estimated)" : "");
 *     jb_meter_close(m);
 *
 * Ownership: jb_meter_open() allocates the meter and jb_meter_close() frees
 * it together with everything it handed out (the jb_sensor_info pointers
 * stay valid until then). struct jb_energy and struct jb_power are plain data
 * owned by the caller. Window names are copied.
 *
 * Threads: every function may be called from any thread; the meter
 * serialises sensor reads internally. Timestamps are jb_clock_s() seconds
 * (CLOCK_MONOTONIC).
 *
 * Missing is not zero: a sensor that could not be read in a window has
 * sensor_valid[i] == 0, its sensor_j[i] is NaN, and its joules are not part
 * of any total; a domain or total that lacks one of its used sensors is
 * invalid (its bit or flag is 0) and NaN.
 */
#ifndef JOULEBENCH_H
#define JOULEBENCH_H

#include <signal.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JB_MAX_SENSORS 64
#define JB_NAME_LEN 64
#define JB_TEXT_LEN 256

/* Status codes: 0 is success, every error is negative. */
enum jb_status {
    JB_OK = 0,
    JB_ERR_USAGE = -1,       /* bad argument or bad input (exit code 2) */
    JB_ERR_IO = -2,          /* a file or device could not be read or written */
    JB_ERR_NOMEM = -3,       /* out of memory, or a size cap was hit */
    JB_ERR_PERM = -4,        /* permission denied */
    JB_ERR_NOTFOUND = -5,    /* no such file, sensor, model or server */
    JB_ERR_STATE = -6,       /* call out of order (window already open, ...) */
    JB_ERR_NET = -7,         /* connection refused, reset, or HTTP error */
    JB_ERR_INTERRUPTED = -8, /* SIGINT/SIGTERM arrived */
    JB_ERR_FORMAT = -9,      /* malformed data (file, stream, counter value) */
    JB_ERR_TIMEOUT = -10,    /* nothing arrived within the time allowed */
    JB_ERR_UNSUPPORTED = -11 /* not available on this platform or build */
};
const char *jb_strerror(int status);

/* Energy domains. cores and uncore are inside cpu (the package); system
 * (psys, whole board) is a separate total and never added to the others. */
enum jb_domain {
    JB_DOMAIN_CPU = 0,
    JB_DOMAIN_CORES,
    JB_DOMAIN_UNCORE,
    JB_DOMAIN_DRAM,
    JB_DOMAIN_GPU,
    JB_DOMAIN_ANE,
    JB_DOMAIN_SOC,
    JB_DOMAIN_SYSTEM,
    JB_DOMAIN_COUNT
};
const char *jb_domain_name(enum jb_domain d); /* "cpu", "cores", ... */
int jb_domain_from_name(const char *name);    /* the domain, or -1 */
/* Of a set of domains (bit 1 << d each), those a total adds up: cores and
 * uncore are inside cpu and left out, and system only when nothing else is
 * there (beside other domains it is reported, not added). The meter's
 * totals follow this rule. */
unsigned jb_domains_in_total(unsigned domains);

enum jb_sensor_kind {
    JB_SENSOR_ENERGY = 0, /* a cumulative counter, read at the window edges */
    JB_SENSOR_POWER = 1   /* instantaneous power, integrated by the sampler */
};

/* What the meter knows about one sensor. */
struct jb_sensor_info {
    char name[JB_NAME_LEN];   /* unique, e.g. "rapl:package-0", "nvml:gpu0" */
    char backend[16];         /* "powercap", "perf", "hwmon", "nvml", "ioreport", "estimate" */
    char label[JB_TEXT_LEN];  /* for people: "RAPL package 0 (intel-rapl:0)" */
    char device[JB_TEXT_LEN]; /* hardware identity: CPU model, GPU name and UUID */
    enum jb_domain domain;
    enum jb_sensor_kind kind;
    int estimated;            /* 1: a model, not a measurement */
    int parent;               /* index of the sensor this one is inside, or -1 */
    int readable;             /* 1: opened and read at least once */
    int used;                 /* 1: part of the totals (0: unreadable, or a duplicate route) */
    char reason[JB_TEXT_LEN]; /* why it is unreadable or unused; "" otherwise */
    char fix[JB_TEXT_LEN];    /* what the user can do about it; "" if nothing */
    double update_period_s;   /* how often the hardware refreshes it; 0 unknown */
    double max_range_j;       /* counter range in joules before it wraps; 0 none */
    double read_cost_s;       /* CPU time one read takes, measured at open; 0 unknown */
    double read_interval_s;   /* how often the sampler reads it: its interval, or less often
                                 where one read costs more than 2 % of a core at that rate
                                 (a stepped counter then on the tick after its steps, every
                                 whole number of update periods); 0 without a sampler */
};

struct jb_meter_options {
    double interval_ms;      /* sampler period; 0 = 20 ms (50 Hz); < 0: no sampler */
    const char *sysfs_root;  /* NULL: $JOULEBENCH_SYSFS_ROOT, else "/sys" */
    const char *procfs_root; /* NULL: $JOULEBENCH_PROCFS_ROOT, else "/proc" */
    const char *nvml_lib;    /* NULL: $JOULEBENCH_NVML_LIB, else the usual sonames */
    double cpu_watts;        /* estimator: CPU power at full load; 0 = built-in guess */
    int no_estimate;         /* 1: never add the CPU-time estimator */
    const char *backends;    /* comma-separated backends to try; NULL = all */
    size_t timeline_max;     /* samples kept before the timeline is thinned; 0 = 131072
                                (44 minutes at 50 Hz) or what fits in 16 MiB */
};
void jb_meter_options_init(struct jb_meter_options *opt);

struct jb_meter; /* opaque */

/* Finds and opens every sensor. Succeeds even when no sensor is readable
 * (each then says why); fails only on bad options or out of memory. */
int jb_meter_open(struct jb_meter **out, const struct jb_meter_options *opt, char *err,
                  size_t err_len);
/* Starts the sampler thread (no-op if interval_ms < 0 or already started).
 * The thread blocks every signal, so SIGINT reaches the caller's threads. */
int jb_meter_start(struct jb_meter *m);
/* Stops the sampler, closes every sensor and frees the meter. NULL is fine. */
void jb_meter_close(struct jb_meter *m);

size_t jb_meter_sensor_count(const struct jb_meter *m);
const struct jb_sensor_info *jb_meter_sensor(const struct jb_meter *m, size_t i);
/* 1 if any used sensor is estimated; 0 if everything used is measured. */
int jb_meter_any_estimated(const struct jb_meter *m);
/* Notes from backends that found nothing usable ("powercap: no
 * /sys/class/powercap ..."), for `joulebench sensors`. Valid until close. */
size_t jb_meter_note_count(const struct jb_meter *m);
const char *jb_meter_note(const struct jb_meter *m, size_t i);
/* 1 and the reason in buf (NUL-terminated, cut to len) if sensor i stopped
 * answering since the meter opened; 0 if it has not (buf is then ""). */
int jb_meter_sensor_error(struct jb_meter *m, size_t i, char *buf, size_t len);
/* CPU seconds the sampler thread has used so far (after close of the
 * thread: in total), to report the meter's own overhead. 0 without one. */
double jb_meter_sampler_cpu_s(struct jb_meter *m);

double jb_clock_s(void); /* CLOCK_MONOTONIC in seconds: the timebase of the meter */

/* Flags on a measurement. */
#define JB_ENERGY_WRAPPED 0x1u /* a counter wrapped and was corrected */
/* A counter stepped back (not a wrap) or jumped past any plausible power:
 * that sensor is invalid in the interval. */
#define JB_ENERGY_RESET 0x2u
#define JB_ENERGY_SENSOR_LOST 0x4u /* a sensor stopped answering during the window */
#define JB_ENERGY_SHORT 0x8u       /* shorter than a used sensor's update period */
#define JB_ENERGY_GAP 0x10u        /* the timeline had no sample near an edge (interpolated) */

/* Energy over one interval. Sensors are indexed as jb_meter_sensor(). */
struct jb_energy {
    double t_begin_s, t_end_s, duration_s;
    size_t n_sensors;
    double sensor_j[JB_MAX_SENSORS];            /* NaN where !sensor_valid[i] */
    unsigned char sensor_valid[JB_MAX_SENSORS]; /* 0 also for sensors not used */
    /* Per domain, the sum of its used sensors (a sensor inside another of
     * the same domain, like xe's pkg inside its card, is left out); cores
     * and uncore hold their own sums; NaN when not valid. */
    double domain_j[JB_DOMAIN_COUNT];
    unsigned domain_valid;     /* bit (1u << domain): the domain has used sensors and every
                                  one of them was valid */
    unsigned domain_estimated; /* bit (1u << domain): an estimated sensor contributed */
    double total_j;            /* used top-level sensors (no parent) of every domain but
                                  cores, uncore and system: no joule counted twice; the
                                  system sensors alone if there is nothing else; NaN when
                                  not valid */
    int total_valid;           /* 1: there were such sensors and every one was valid */
    int total_estimated;
    unsigned flags; /* JB_ENERGY_* */
};

/* Windows: begin takes a reading of every sensor now, end takes another and
 * returns the difference. Windows may overlap; names must be unique among
 * open windows (JB_ERR_STATE otherwise).
 *
 * A counter that publishes in steps (update_period_s of 50 ms or more, as
 * NVML's energy counter) is read at each edge of a window or interval on
 * its line between the updates around the edge, not as the last update's
 * value, which can be short by a whole step. So with the sampler running,
 * end waits for such a counter's next update after the end: up to one and
 * a half of its update period or read interval, whichever is longer, and
 * two ticks (190 ms for NVML read every tick, 340 ms paced to 200 ms). */
int jb_meter_begin(struct jb_meter *m, const char *name);
int jb_meter_end(struct jb_meter *m, const char *name, struct jb_energy *out);

/* Takes a reading of every sensor now and adds it to the timeline; returns
 * its timestamp in *t_s. Use it to pin phase boundaries exactly. A sensor
 * the sampler paces because one read is dear (read_interval_s above the
 * sampler's interval) holds its last reading instead: a mark is taken
 * while the work runs, and a 4 ms read there would stall it. */
int jb_meter_mark(struct jb_meter *m, double *t_s);

/* Energy between two timestamps, interpolated linearly on the timeline.
 * t0_s must not be before the meter opened, nor t1_s in the future
 * (JB_ERR_USAGE); t1_s after the last sample takes a reading now (as a
 * mark does). */
int jb_meter_energy_between(struct jb_meter *m, double t0_s, double t1_s, struct jb_energy *out);

/* Mean power over an interval. */
struct jb_power {
    double duration_s;
    size_t n_sensors;
    double sensor_w[JB_MAX_SENSORS];
    unsigned char sensor_valid[JB_MAX_SENSORS];
    double domain_w[JB_DOMAIN_COUNT];
    unsigned domain_valid, domain_estimated;
    double total_w;
    int total_valid, total_estimated;
};
void jb_energy_to_power(const struct jb_energy *e, struct jb_power *out);

/* Idle baseline: waits `seconds` (sleeping; the sampler keeps reading) and
 * returns the mean power per sensor and domain over that time. Returns
 * JB_ERR_INTERRUPTED early if *stop becomes non-zero (stop may be NULL). */
int jb_meter_baseline(struct jb_meter *m, double seconds, const volatile sig_atomic_t *stop,
                      struct jb_power *out);

/* The timeline: cumulative joules per sensor at each sample, counted from
 * the meter's first reading. Copies sample i into t_s and
 * joules[0..n_sensors-1] (valid[] as in jb_energy; either array may be
 * NULL). Returns JB_ERR_NOTFOUND past the end. Past timeline_max samples
 * the older half is thinned (every other sample that is not a mark or a
 * window edge goes), so indices move: read it when the work is done. */
size_t jb_meter_timeline_len(struct jb_meter *m);
int jb_meter_timeline_get(struct jb_meter *m, size_t i, double *t_s, double *joules,
                          unsigned char *valid);

#ifdef __cplusplus
}
#endif
#endif
