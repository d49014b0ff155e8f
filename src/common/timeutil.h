/*
 * timeutil.h — clocks. Every timestamp inside joulebench is jb_clock_s()
 * (CLOCK_MONOTONIC seconds); wall-clock time appears only in file names and
 * in run.json.
 */
#ifndef JB_COMMON_TIMEUTIL_H
#define JB_COMMON_TIMEUTIL_H

#include <signal.h>
#include <stddef.h>

/* Sleeps for seconds; returns early (JB_ERR_INTERRUPTED) when *stop becomes
 * non-zero (checked every 50 ms; stop may be NULL). */
int time_sleep_s(double seconds, const volatile sig_atomic_t *stop);
/* Current UTC time as "2026-11-25T22:30:00Z". */
void time_iso8601(char *dst, size_t size);
/* Current local time as "20261125-223000", for results/<timestamp>. */
void time_stamp_compact(char *dst, size_t size);
/* CPU time used by this process (user + system) in seconds. */
double time_process_cpu_s(void);
/* CPU time used by the calling thread in seconds. */
double time_thread_cpu_s(void);

#endif
