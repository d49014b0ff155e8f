#include "fixture_sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#endif
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "testutil.h"

#define FX_MAX_COUNTERS 256
#define FX_MAX_SEGMENTS 32
#define FX_RAPL_RANGE_UJ 262143328850ull
#define FX_WIDTH 20 /* digits field; the file is FX_WIDTH + 1 bytes */

struct fx_segment {
    double t_s; /* from this instant on ... */
    double watts;
};

struct fx_counter {
    char path[FS_PATH_MAX]; /* the value file */
    char dir[FS_PATH_MAX];  /* its device folder (removed by fx_remove) */
    char link[FS_PATH_MAX]; /* its class/ symlink, "" if none */
    int fd;
    enum fx_kind kind;
    uint64_t start; /* µJ (energy) */
    uint64_t range; /* wraps at this value; 0 never */
    int driven;
    struct fx_segment seg[FX_MAX_SEGMENTS];
    int n_seg;
};

struct fx_sysfs {
    char *tmp;
    char sys[FS_PATH_MAX];
    char proc[FS_PATH_MAX];
    struct fx_counter c[FX_MAX_COUNTERS];
    int n;
    pthread_mutex_t lock;
    pthread_t thread;
    int running;
    int stop;
    double period_s;
    double t_start_s; /* when the writer started: the model's origin */
};

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fixture_sysfs: %s %s: %s\n", what, path, strerror(errno));
    abort();
}

struct fx_sysfs *fx_new(const char *tag)
{
    struct fx_sysfs *fx = calloc(1, sizeof *fx);
    if (!fx)
        abort();
    fx->tmp = tu_tmpdir(tag);
    snprintf(fx->sys, sizeof fx->sys, "%s/sys", fx->tmp);
    snprintf(fx->proc, sizeof fx->proc, "%s/proc", fx->tmp);
    char err[ERR_LEN];
    if (fs_mkdir_p(fx->sys, err) || fs_mkdir_p(fx->proc, err)) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    pthread_mutex_init(&fx->lock, NULL);
    return fx;
}

void fx_free(struct fx_sysfs *fx)
{
    if (!fx)
        return;
    fx_stop(fx);
    for (int i = 0; i < fx->n; i++)
        if (fx->c[i].fd >= 0)
            close(fx->c[i].fd);
    pthread_mutex_destroy(&fx->lock);
    tu_rmtree_free(fx->tmp);
    free(fx);
}

const char *fx_sysfs_root(const struct fx_sysfs *fx)
{
    return fx->sys;
}

const char *fx_procfs_root(const struct fx_sysfs *fx)
{
    return fx->proc;
}

void fx_write(struct fx_sysfs *fx, const char *rel, const char *text)
{
    tu_write(fx->sys, rel, text);
}

void fx_symlink(struct fx_sysfs *fx, const char *rel, const char *target)
{
    tu_symlink(fx->sys, rel, target);
}

/* The counter's value at t from its watts segments (µJ or µW). */
static uint64_t model_value(const struct fx_counter *c, double t)
{
    if (c->kind == FX_POWER_UW) {
        double w = 0;
        for (int k = 0; k < c->n_seg; k++)
            if (c->seg[k].t_s <= t)
                w = c->seg[k].watts;
        return (uint64_t)(w * 1e6 + 0.5);
    }
    double j = 0;
    for (int k = 0; k < c->n_seg; k++) {
        double a = c->seg[k].t_s;
        double b = k + 1 < c->n_seg ? c->seg[k + 1].t_s : t;
        if (b > t)
            b = t;
        if (b > a)
            j += c->seg[k].watts * (b - a);
    }
    uint64_t v = c->start + (uint64_t)(j * 1e6);
    return c->range ? v % c->range : v;
}

static void put_value(struct fx_counter *c, uint64_t v)
{
    char text[FX_WIDTH + 2];
    snprintf(text, sizeof text, "%-*llu\n", FX_WIDTH, (unsigned long long)v);
    if (pwrite(c->fd, text, FX_WIDTH + 1, 0) != FX_WIDTH + 1)
        die("cannot write", c->path);
}

static int new_counter(struct fx_sysfs *fx, const char *path, const char *dir, const char *link,
                       enum fx_kind kind, uint64_t start, uint64_t range)
{
    if (fx->n >= FX_MAX_COUNTERS) {
        fprintf(stderr, "fixture_sysfs: more than %d counters\n", FX_MAX_COUNTERS);
        abort();
    }
    struct fx_counter *c = &fx->c[fx->n];
    memset(c, 0, sizeof *c);
    str_lcpy(c->path, path, sizeof c->path);
    str_lcpy(c->dir, dir, sizeof c->dir);
    str_lcpy(c->link, link, sizeof c->link);
    c->kind = kind;
    c->start = start;
    c->range = range;
    c->driven = 1;
    c->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->fd < 0)
        die("cannot open", path);
    put_value(c, kind == FX_POWER_UW ? 0 : start);
    return fx->n++;
}

int fx_rapl_zone(struct fx_sysfs *fx, const char *zone, const char *name, uint64_t start_uj,
                 uint64_t range_uj)
{
    char type[64], rel[FS_PATH_MAX], devrel[FS_PATH_MAX], link[FS_PATH_MAX], target[FS_PATH_MAX];
    const char *colon = strchr(zone, ':');
    if (!colon)
        abort();
    snprintf(type, sizeof type, "%.*s", (int)(colon - zone), zone);
    const char *second = strchr(colon + 1, ':');
    if (second) /* intel-rapl:0:1 lives inside intel-rapl:0 */
        snprintf(devrel, sizeof devrel, "devices/virtual/powercap/%s/%.*s/%s", type,
                 (int)(second - zone), zone, zone);
    else
        snprintf(devrel, sizeof devrel, "devices/virtual/powercap/%s/%s", type, zone);
    if (range_uj == 0)
        range_uj = FX_RAPL_RANGE_UJ;
    char num[32];
    snprintf(rel, sizeof rel, "%s/name", devrel);
    char line[80];
    snprintf(line, sizeof line, "%s\n", name);
    fx_write(fx, rel, line);
    snprintf(rel, sizeof rel, "%s/max_energy_range_uj", devrel);
    snprintf(num, sizeof num, "%llu\n", (unsigned long long)range_uj);
    fx_write(fx, rel, num);
    snprintf(rel, sizeof rel, "%s/enabled", devrel);
    fx_write(fx, rel, "1\n");
    /* The control type's own folder and link, as the kernel has them. */
    snprintf(rel, sizeof rel, "devices/virtual/powercap/%s/enabled", type);
    fx_write(fx, rel, "1\n");
    snprintf(rel, sizeof rel, "class/powercap/%s", type);
    snprintf(target, sizeof target, "../../devices/virtual/powercap/%s", type);
    fx_symlink(fx, rel, target);
    snprintf(rel, sizeof rel, "class/powercap/%s", zone);
    snprintf(target, sizeof target, "../../%s", devrel);
    fx_symlink(fx, rel, target);
    snprintf(link, sizeof link, "%s/%s", fx->sys, rel);

    char path[FS_PATH_MAX], dir[FS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", fx->sys, devrel);
    snprintf(path, sizeof path, "%s/energy_uj", dir);
    return new_counter(fx, path, dir, link, FX_ENERGY_UJ, start_uj, range_uj);
}

static void hwmon_dir(struct fx_sysfs *fx, int n, char *dst, size_t size)
{
    char link[FS_PATH_MAX], target[FS_PATH_MAX];
    snprintf(link, sizeof link, "%s/class/hwmon/hwmon%d", fx->sys, n);
    ssize_t len = readlink(link, dst, size - 1);
    if (len <= 0)
        die("no hwmon device", link);
    dst[len] = '\0';
    /* ../../devices/... relative to class/hwmon */
    snprintf(target, sizeof target, "%s/class/hwmon/%s", fx->sys, dst);
    str_lcpy(dst, target, size);
}

void fx_hwmon(struct fx_sysfs *fx, int n, const char *driver, const char *devpath)
{
    char rel[FS_PATH_MAX], target[FS_PATH_MAX], line[80];
    snprintf(rel, sizeof rel, "devices/%s/hwmon/hwmon%d/name", devpath, n);
    snprintf(line, sizeof line, "%s\n", driver);
    fx_write(fx, rel, line);
    const char *slash = strrchr(devpath, '/');
    snprintf(rel, sizeof rel, "devices/%s/hwmon/hwmon%d/device", devpath, n);
    snprintf(target, sizeof target, "../../../%s", slash ? slash + 1 : devpath);
    fx_symlink(fx, rel, target);
    snprintf(rel, sizeof rel, "class/hwmon/hwmon%d", n);
    snprintf(target, sizeof target, "../../devices/%s/hwmon/hwmon%d", devpath, n);
    fx_symlink(fx, rel, target);
}

void fx_hwmon_attr(struct fx_sysfs *fx, int n, const char *attr, const char *value)
{
    char dir[FS_PATH_MAX], line[256];
    hwmon_dir(fx, n, dir, sizeof dir);
    snprintf(line, sizeof line, "%s\n", value);
    tu_write(dir, attr, line);
}

int fx_hwmon_counter(struct fx_sysfs *fx, int n, const char *attr, enum fx_kind kind,
                     uint64_t start)
{
    char dir[FS_PATH_MAX], path[FS_PATH_MAX], link[FS_PATH_MAX];
    hwmon_dir(fx, n, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, attr);
    snprintf(link, sizeof link, "%s/class/hwmon/hwmon%d", fx->sys, n);
    return new_counter(fx, path, dir, link, kind, start, 0);
}

void fx_perf_pmu(struct fx_sysfs *fx, unsigned type, const char *cpumask)
{
    char num[32], line[128];
    snprintf(num, sizeof num, "%u\n", type);
    fx_write(fx, "devices/power/type", num);
    snprintf(line, sizeof line, "%s\n", cpumask);
    fx_write(fx, "devices/power/cpumask", line);
    fx_write(fx, "devices/power/format/event", "config:0-7\n");
    fx_symlink(fx, "bus/event_source/devices/power", "../../../devices/power");
}

void fx_perf_event(struct fx_sysfs *fx, const char *name, const char *event, const char *scale,
                   const char *unit)
{
    char rel[FS_PATH_MAX], line[128];
    snprintf(rel, sizeof rel, "devices/power/events/%s", name);
    snprintf(line, sizeof line, "%s\n", event);
    fx_write(fx, rel, line);
    snprintf(rel, sizeof rel, "devices/power/events/%s.scale", name);
    snprintf(line, sizeof line, "%s\n", scale);
    fx_write(fx, rel, line);
    snprintf(rel, sizeof rel, "devices/power/events/%s.unit", name);
    snprintf(line, sizeof line, "%s\n", unit);
    fx_write(fx, rel, line);
}

void fx_proc_stat(struct fx_sysfs *fx, int ncpu, uint64_t busy_ticks, uint64_t idle_ticks)
{
    struct buf b = {0};
    /* user nice system idle iowait irq softirq steal guest guest_nice */
    buf_printf(&b, "cpu  %llu 0 0 %llu 0 0 0 0 0 0\n", (unsigned long long)busy_ticks,
               (unsigned long long)idle_ticks);
    for (int i = 0; i < ncpu; i++)
        buf_printf(&b, "cpu%d %llu 0 0 %llu 0 0 0 0 0 0\n", i,
                   (unsigned long long)(busy_ticks / (uint64_t)ncpu),
                   (unsigned long long)(idle_ticks / (uint64_t)ncpu));
    buf_puts(&b, "intr 0\nctxt 0\nbtime 0\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n");
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/stat", fx->proc);
    /* In place, so a meter that keeps the file open sees the new text. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        die("cannot open", path);
    if (ftruncate(fd, 0) || pwrite(fd, b.data, b.len, 0) != (ssize_t)b.len)
        die("cannot write", path);
    close(fd);
    buf_free(&b);
}

void fx_psys_beside_igpu(struct fx_sysfs *fx)
{
    fx_rapl_zone(fx, "intel-rapl:0", "psys", 5000000, 0);
    fx_hwmon(fx, 4, "i915", "pci0000:00/0000:00:01.0/0000:03:00.0");
    fx_hwmon_counter(fx, 4, "energy1_input", FX_ENERGY_UJ, 777);
    fx_proc_stat(fx, 4, 1000, 9000);
}

void fx_set_watts(struct fx_sysfs *fx, int id, double watts)
{
    pthread_mutex_lock(&fx->lock);
    struct fx_counter *c = &fx->c[id];
    double now = jb_clock_s();
    if (!fx->running || c->n_seg == 0) {
        /* Before the writer starts, the first segment begins at start. */
        if (c->n_seg == 0)
            c->n_seg = 1;
        c->seg[0].t_s = fx->running ? now : 0;
        c->seg[0].watts = watts;
        if (!fx->running && c->driven) /* a power reading shows at once */
            put_value(c, model_value(c, 0));
    } else if (c->n_seg < FX_MAX_SEGMENTS) {
        c->seg[c->n_seg].t_s = now;
        c->seg[c->n_seg].watts = watts;
        c->n_seg++;
    }
    pthread_mutex_unlock(&fx->lock);
}

static void write_all(struct fx_sysfs *fx, double t)
{
    for (int i = 0; i < fx->n; i++) {
        struct fx_counter *c = &fx->c[i];
        if (c->driven && c->n_seg)
            put_value(c, model_value(c, t));
    }
}

static void *writer_main(void *arg)
{
    struct fx_sysfs *fx = arg;
#if defined(__linux__)
    /* A real energy counter never lags the hardware it counts. This thread
     * stands in for one, and on a busy 2-core machine (ctest -j2 beside a
     * test that forks interpreters) it has been kept from running for tens
     * of milliseconds, leaving its files that stale. Where the process may
     * (root, as in CI), it runs ahead of ordinary work; elsewhere the call
     * fails and the thread keeps its priority. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -10);
#endif
    double next = jb_clock_s();
    for (;;) {
        pthread_mutex_lock(&fx->lock);
        int stop = fx->stop;
        if (!stop)
            write_all(fx, jb_clock_s());
        pthread_mutex_unlock(&fx->lock);
        if (stop)
            break;
        next += fx->period_s;
        double now = jb_clock_s();
        if (next < now)
            next = now;
        struct timespec ts;
        ts.tv_sec = (time_t)next;
        ts.tv_nsec = (long)((next - (double)ts.tv_sec) * 1e9);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    return NULL;
}

void fx_start(struct fx_sysfs *fx, double hz)
{
    pthread_mutex_lock(&fx->lock);
    if (fx->running) {
        pthread_mutex_unlock(&fx->lock);
        return;
    }
    fx->period_s = 1.0 / hz;
    fx->t_start_s = jb_clock_s();
    for (int i = 0; i < fx->n; i++) {
        struct fx_counter *c = &fx->c[i];
        if (c->n_seg == 0) { /* no watts set: a counter that stands still */
            c->n_seg = 1;
            c->seg[0].watts = 0;
        }
        c->seg[0].t_s = fx->t_start_s;
    }
    write_all(fx, fx->t_start_s);
    fx->running = 1;
    fx->stop = 0;
    pthread_mutex_unlock(&fx->lock);
    if (pthread_create(&fx->thread, NULL, writer_main, fx))
        abort();
}

void fx_stop(struct fx_sysfs *fx)
{
    pthread_mutex_lock(&fx->lock);
    int running = fx->running;
    fx->stop = 1;
    pthread_mutex_unlock(&fx->lock);
    if (running)
        pthread_join(fx->thread, NULL);
    pthread_mutex_lock(&fx->lock);
    fx->running = 0;
    pthread_mutex_unlock(&fx->lock);
}

double fx_true_joules(const struct fx_sysfs *fx, int id, double t0_s, double t1_s)
{
    const struct fx_counter *c = &fx->c[id];
    double j = 0;
    for (int k = 0; k < c->n_seg; k++) {
        double a = c->seg[k].t_s;
        double b = k + 1 < c->n_seg ? c->seg[k + 1].t_s : t1_s;
        if (a < t0_s)
            a = t0_s;
        if (b > t1_s)
            b = t1_s;
        if (b > a)
            j += c->seg[k].watts * (b - a);
    }
    return j;
}

void fx_set_raw(struct fx_sysfs *fx, int id, const char *text)
{
    pthread_mutex_lock(&fx->lock);
    struct fx_counter *c = &fx->c[id];
    c->driven = 0;
    /* One system call, so a reader sees the old text or the new: the
     * empty file by truncation, anything else padded with spaces to the
     * writer's width (what was there is never longer). */
    size_t len = strlen(text);
    char padded[256];
    if (len == 0) {
        if (ftruncate(c->fd, 0))
            die("cannot empty", c->path);
    } else {
        if (len >= sizeof padded)
            abort();
        size_t n = len > FX_WIDTH + 1 ? len : FX_WIDTH + 1;
        memset(padded, ' ', n);
        memcpy(padded, text, len);
        if (pwrite(c->fd, padded, n, 0) != (ssize_t)n)
            die("cannot write", c->path);
    }
    pthread_mutex_unlock(&fx->lock);
}

void fx_remove(struct fx_sysfs *fx, int id)
{
    pthread_mutex_lock(&fx->lock);
    struct fx_counter *c = &fx->c[id];
    c->driven = 0;
    if (ftruncate(c->fd, 0))
        die("cannot empty", c->path);
    unlink(c->path);
    if (c->link[0])
        unlink(c->link);
    pthread_mutex_unlock(&fx->lock);
}

#if defined(__linux__)
#include <linux/capability.h>
#include <sys/syscall.h>

/* Capabilities by the raw system calls: two calls do not justify a
 * library dependency for the tests. */
static int caps(int get, struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    return (int)syscall(get ? SYS_capget : SYS_capset, &h, data);
}

static const unsigned fx_dac_caps[] = {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH};

static int set_dac_caps(int on)
{
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (caps(1, data))
        return -1;
    for (size_t i = 0; i < sizeof fx_dac_caps / sizeof fx_dac_caps[0]; i++) {
        unsigned cap = fx_dac_caps[i];
        if (on)
            data[cap / 32].effective |= data[cap / 32].permitted & (1u << (cap % 32));
        else
            data[cap / 32].effective &= ~(1u << (cap % 32));
    }
    return caps(0, data) ? -1 : 0;
}
#else
static int set_dac_caps(int on)
{
    (void)on;
    errno = ENOTSUP;
    return -1;
}
#endif

int fx_unprivileged_begin(void)
{
    if (geteuid() != 0)
        return 0;
    return set_dac_caps(0);
}

void fx_unprivileged_end(void)
{
    if (geteuid() == 0)
        set_dac_caps(1);
}
