/*
 * perf_power.h — the seam between the perf power backend and the kernel.
 *
 * The backend reads everything it needs from sysfs (fixture trees work),
 * then opens one counter per event and package with perf_event_open(2).
 * Tests that have no power PMU swap the two system calls for fakes here;
 * nothing else calls this.
 */
#ifndef JB_SENSORS_PERF_POWER_H
#define JB_SENSORS_PERF_POWER_H

#include <stdint.h>

struct perf_power_ops {
    /* Opens a system-wide counter (pid -1) on one CPU: an fd (closed with
     * close(2)), or -errno. */
    int (*open)(uint32_t type, uint64_t config, int cpu);
    /* Reads the 64-bit count: 0, or -errno. */
    int (*read)(int fd, uint64_t *count);
};

/* Replaces the kernel calls (NULL restores them). Not thread-safe: call it
 * before opening a meter. The ops struct must outlive its use. */
void perf_power_set_ops(const struct perf_power_ops *ops);

#endif
