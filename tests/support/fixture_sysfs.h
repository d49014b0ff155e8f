/*
 * fixture_sysfs.h — fake /sys (and /proc) trees shaped like the real ones,
 * with counters that a writer thread advances at known watts in real time,
 * so a test can run real work under the meter and know the true joules.
 *
 *     struct fx_sysfs *fx = fx_new("rapl");
 *     int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
 *     fx_set_watts(fx, pkg, 25.0);
 *     fx_start(fx, 1000);                 // writer thread, 1 kHz
 *     setenv("JOULEBENCH_SYSFS_ROOT", fx_sysfs_root(fx), 1);  // or meter options
 *     ... jb_meter_begin / work / jb_meter_end ...
 *     double truth = fx_true_joules(fx, pkg, e.t_begin_s, e.t_end_s);
 *     fx_free(fx);                        // stops the writer, removes the tree
 *
 * Layout: <tmp>/sys is the sysfs root, <tmp>/proc the procfs root. Zones
 * and hwmon devices live under devices/ with class/ symlinks pointing at
 * them exactly as the kernel makes them (class/powercap/intel-rapl:0 ->
 * ../../devices/virtual/powercap/intel-rapl/intel-rapl:0).
 *
 * Values are written in place at offset 0 (never by rename) because the
 * meter keeps its files open; each write is one fixed-width pwrite, the
 * number left-aligned and padded with spaces before the newline, so a
 * reader never sees a half-old, half-new number of another length.
 *
 * Ownership: fx_new() allocates; fx_free() frees everything. Counter ids
 * are small integers valid until fx_free(). Not thread-safe except for the
 * writer, which the fixture starts and stops itself. Failures abort the
 * test (these are test helpers).
 */
#ifndef JB_TESTS_FIXTURE_SYSFS_H
#define JB_TESTS_FIXTURE_SYSFS_H

#include <stdint.h>

struct fx_sysfs;

struct fx_sysfs *fx_new(const char *tag);
void fx_free(struct fx_sysfs *fx);
const char *fx_sysfs_root(const struct fx_sysfs *fx);  /* <tmp>/sys */
const char *fx_procfs_root(const struct fx_sysfs *fx); /* <tmp>/proc */

/* Writes a file (parents created) or a symlink under the sysfs root. */
void fx_write(struct fx_sysfs *fx, const char *rel, const char *text);
void fx_symlink(struct fx_sysfs *fx, const char *rel, const char *target);

/* A RAPL zone: "intel-rapl:0" (a package or psys) or "intel-rapl:0:1"
 * (inside zone intel-rapl:0, which must exist), any control type
 * ("intel-rapl-mmio:0"). name is the `name` file ("package-0", "core",
 * "dram", "psys"); energy_uj starts at start_uj; max_energy_range_uj is
 * range_uj (0: 262143328850, what Intel parts report). Returns a counter
 * id for fx_set_watts. */
int fx_rapl_zone(struct fx_sysfs *fx, const char *zone, const char *name, uint64_t start_uj,
                 uint64_t range_uj);

/* An hwmon device: class/hwmon/hwmon<n> -> ../../devices/<devpath>/hwmon/hwmon<n>
 * with `name` (driver) and a `device` link to devices/<devpath> ("pci0000:00/
 * 0000:00:03.1/0000:0b:00.0" or "platform/amd_energy.0"). */
void fx_hwmon(struct fx_sysfs *fx, int n, const char *driver, const char *devpath);
/* A plain attribute of hwmon<n> ("energy1_label", "card"). */
void fx_hwmon_attr(struct fx_sysfs *fx, int n, const char *attr, const char *value);

enum fx_kind {
    FX_ENERGY_UJ = 0, /* a counter in µJ: advanced by watts × time */
    FX_POWER_UW = 1   /* an instantaneous reading in µW: watts × 1e6 */
};
/* A driven attribute of hwmon<n> ("energy1_input", FX_ENERGY_UJ, 0) or
 * ("power1_average", FX_POWER_UW, 0). Returns a counter id. */
int fx_hwmon_counter(struct fx_sysfs *fx, int n, const char *attr, enum fx_kind kind,
                     uint64_t start);

/* A perf power PMU: bus/event_source/devices/power -> ../../../devices/power
 * with type, cpumask ("0" or "0,28") and format/event ("config:0-7"). */
void fx_perf_pmu(struct fx_sysfs *fx, unsigned type, const char *cpumask);
/* One event of it: events/<name> ("energy-pkg", "event=0x02"), with
 * .scale ("2.3283064365386962890625e-10") and .unit ("Joules"). */
void fx_perf_event(struct fx_sysfs *fx, const char *name, const char *event, const char *scale,
                   const char *unit);

/* <procfs>/stat with `ncpu` CPUs and the given busy (user) and idle ticks
 * on the aggregate line (spread over the cpuN lines). Rewritten in place. */
void fx_proc_stat(struct fx_sysfs *fx, int ncpu, uint64_t busy_ticks, uint64_t idle_ticks);

/* A machine whose only CPU-side counter is psys: a powercap psys zone, an
 * Intel GPU's hwmon energy counter (i915, hwmon4) and 4 CPUs in /proc/stat.
 * Where the total is the GPU, psys cannot stand in for the CPU. */
void fx_psys_beside_igpu(struct fx_sysfs *fx);

/* Sets counter id's power from now on (before or while the writer runs). */
void fx_set_watts(struct fx_sysfs *fx, int id, double watts);
/* Starts the writer thread: every counter is rewritten hz times a second
 * from the model start + ∫ watts dt (modulo the range). */
void fx_start(struct fx_sysfs *fx, double hz);
/* Stops the writer (fx_free does it too). */
void fx_stop(struct fx_sysfs *fx);
/* The joules counter id gained between two jb_clock_s() instants, from the
 * model (exact): what a perfect meter would report. */
double fx_true_joules(const struct fx_sysfs *fx, int id, double t0_s, double t1_s);

/* Writes text into counter id's file now and stops driving it: garbage
 * ("12ab\n"), a counter reset ("5\n"), an empty file (""). A reader sees
 * the old value or the new, never a mix. */
void fx_set_raw(struct fx_sysfs *fx, int id, const char *text);
/* The device vanishes: the writer stops driving it, its file is emptied
 * and its folder and class link removed. (The kernel answers ENODEV on an
 * fd of a removed sysfs file; a regular file can only answer with
 * nothing, which the backends treat the same way.) */
void fx_remove(struct fx_sysfs *fx, int id);

/* Permission tests as root: root reads mode-0000 files anyway, so this
 * drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the calling thread's
 * effective set (the meter opens its files in the calling thread), making
 * chmod 0 bite like it does for a normal user. Returns 0 on success (or
 * when not root: nothing to drop), -1 if the capabilities could not be
 * dropped (the test should skip with that reason). fx_privileged_end()
 * raises them again. */
int fx_unprivileged_begin(void);
void fx_unprivileged_end(void);

#endif
