#include "common/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "common/err.h"

double jb_clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts))
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double time_process_cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

double time_thread_cpu_s(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

int time_sleep_s(double seconds, const volatile sig_atomic_t *stop)
{
    double end = jb_clock_s() + seconds;
    for (;;) {
        if (stop && *stop)
            return JB_ERR_INTERRUPTED;
        double left = end - jb_clock_s();
        if (left <= 0)
            return 0;
        double step = stop && left > 0.05 ? 0.05 : left;
        struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
        while (nanosleep(&ts, &ts) && errno == EINTR) {
            if (stop && *stop)
                return JB_ERR_INTERRUPTED;
        }
    }
}

void time_iso8601(char *dst, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(dst, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void time_stamp_compact(char *dst, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(dst, size, "%Y%m%d-%H%M%S", &tm);
}
