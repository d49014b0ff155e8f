/*
 * parse.h — pure parsers for what the sensor backends read from sysfs and
 * procfs: the perf PMU's event, format, scale and unit files, CPU lists,
 * powercap zone names, the first line of /proc/stat.
 *
 * Each is a function of (const char *buf, size_t len): buf need not be
 * NUL-terminated, nothing is allocated, and any input (fuzzed) gives 0 or a
 * negative JB_ERR_FORMAT without reading past len. Outputs are written only
 * on success.
 */
#ifndef JB_SENSORS_PARSE_H
#define JB_SENSORS_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* One term of a perf event string. */
struct parse_term {
    char name[16];  /* "event", "umask", ... */
    uint64_t value; /* a term without "=value" ("edge") is 1 */
};

/* "event=0x02" or "event=0x1,umask=0x3\n" → terms. Values are hex with
 * 0x, or decimal. At most max terms (JB_ERR_FORMAT beyond). */
int parse_perf_event(const char *buf, size_t len, struct parse_term *terms, size_t max, size_t *n);

/* A PMU format file, "config:0-7" or "config1:3" → which config word
 * (0 config, 1 config1, 2 config2) and the bit range lo..hi (hi < 64). */
int parse_perf_format(const char *buf, size_t len, int *word, unsigned *lo, unsigned *hi);

/* Puts value into bits lo..hi of *config; JB_ERR_FORMAT when it does not
 * fit. */
int parse_perf_place(uint64_t *config, unsigned lo, unsigned hi, uint64_t value);

/* A ".scale" file: a finite number > 0 ("2.3283064365386962890625e-10"). */
int parse_perf_scale(const char *buf, size_t len, double *scale);

/* A ".unit" file → joules per unit: "Joules" 1, "mJ"/"milliJoules" 1e-3,
 * "uJ"/"microJoules" 1e-6 (case-insensitive). Anything else (a power or
 * temperature unit) is JB_ERR_UNSUPPORTED. */
int parse_perf_unit(const char *buf, size_t len, double *joules_per_unit);

/* A kernel CPU list, "0", "0,28", "0-3,8-11\n" → cpus in order, at most
 * max (JB_ERR_FORMAT beyond, or for a CPU number above 1 << 20). */
int parse_cpulist(const char *buf, size_t len, int *cpus, size_t max, size_t *n);

/* A powercap zone folder name, "intel-rapl:0" or "intel-rapl-mmio:1:2" →
 * the control type ("intel-rapl", NUL-terminated in prefix) and up to two
 * indices (depth 1 or 2). JB_ERR_FORMAT for anything else. */
int parse_rapl_zone(const char *buf, size_t len, char *prefix, size_t prefix_size, unsigned *idx,
                    int *depth);

/* The aggregate line of /proc/stat ("cpu  user nice system idle iowait irq
 * softirq steal ...", in USER_HZ ticks) → busy ticks (user + nice + system
 * + irq + softirq) and all ticks (busy + idle + iowait + steal). Counts the
 * "cpuN" lines that follow within buf into *ncpu (0 when buf holds only the
 * first line). */
int parse_proc_stat(const char *buf, size_t len, uint64_t *busy, uint64_t *total, int *ncpu);

#endif
