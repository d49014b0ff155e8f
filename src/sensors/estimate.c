/*
 * estimate.c — a CPU energy estimate for machines whose sensors cannot be
 * read (virtual machines, locked-down hosts): the busy share of all CPUs
 * from <procfs>/stat times a full-load power figure.
 *
 * It is a counter, not a power reading: the busy ticks of /proc/stat are
 * cumulative, so joules = busy ticks / (USER_HZ × CPUs) × watts, and a
 * window's estimate comes from its edges like any measured counter (no
 * integration error). The watts figure is --cpu-watts when given, else the
 * built-in guess ESTIMATE_BASE_W + ESTIMATE_PER_CPU_W per logical CPU, at
 * most ESTIMATE_MAX_W: about what desktop and laptop processors draw flat
 * out. Always labelled estimated; the registry uses it only when no
 * measured CPU sensor can be read.
 */
#include "sensors/sensor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/str.h"
#include "sensors/parse.h"

#define ESTIMATE_BASE_W 15.0
#define ESTIMATE_PER_CPU_W 4.0
#define ESTIMATE_MAX_W 400.0

struct est_sensor {
    struct sensor base;
    int fd;
    double cpu_watts;       /* from the options; 0: guess */
    char path[FS_PATH_MAX]; /* <procfs>/stat */
};

static int est_read(struct sensor *s, struct sensor_reading *r)
{
    struct est_sensor *e = (struct est_sensor *)s;
    char text[512];
    ssize_t n = fs_pread_small(e->fd, text, sizeof text);
    uint64_t busy, total;
    int ncpu;
    if (n < 0) {
        snprintf(s->error, sizeof s->error, "%s: %s", e->path, jb_strerror((int)n));
        return (int)n;
    }
    if (parse_proc_stat(text, (size_t)n, &busy, &total, &ncpu)) {
        snprintf(s->error, sizeof s->error, "%s: the first line is not a 'cpu' tick count",
                 e->path);
        return JB_ERR_FORMAT;
    }
    r->raw = busy;
    return 0;
}

/* Reads all of /proc/stat once to count the CPUs, fixes the joules per
 * busy tick, and writes the figure used (and whether it is a guess) into
 * the label that every report prints. */
static int est_open(struct sensor *s)
{
    struct est_sensor *e = (struct est_sensor *)s;
    struct buf b = {0};
    char err[ERR_LEN];
    uint64_t busy, total;
    int ncpu = 0;
    int rc = fs_read_file(e->path, 16 << 20, &b, err);
    if (rc) {
        buf_free(&b);
        return sensor_fail(s, rc, "mount procfs, or point JOULEBENCH_PROCFS_ROOT at it", "%s", err);
    }
    rc = parse_proc_stat(b.data ? b.data : "", b.len, &busy, &total, &ncpu);
    buf_free(&b);
    if (rc)
        return sensor_fail(s, rc, "", "%s: the first line is not a 'cpu' tick count", e->path);
    if (ncpu <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        ncpu = online > 0 ? (int)online : 1;
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    double watts = e->cpu_watts;
    int guessed = !(watts > 0);
    if (guessed) {
        watts = ESTIMATE_BASE_W + ESTIMATE_PER_CPU_W * ncpu;
        if (watts > ESTIMATE_MAX_W)
            watts = ESTIMATE_MAX_W;
    }
    s->joules_per_unit = watts / ((double)hz * ncpu);
    s->info.update_period_s = 1.0 / (double)hz;
    if (guessed)
        snprintf(s->info.label, sizeof s->info.label,
                 "estimate: busy share of %d CPUs (%s) x %.0f W, a guess (%.0f W + %.0f W per "
                 "CPU); set --cpu-watts to this machine's full-load CPU power",
                 ncpu, e->path, watts, ESTIMATE_BASE_W, ESTIMATE_PER_CPU_W);
    else
        snprintf(s->info.label, sizeof s->info.label,
                 "estimate: busy share of %d CPUs (%s) x %g W (--cpu-watts)", ncpu, e->path, watts);
    e->fd = open(e->path, O_RDONLY | O_CLOEXEC);
    if (e->fd < 0)
        return sensor_fail(s, fs_errno_code(errno), "", "%s: %s", e->path, strerror(errno));
    struct sensor_reading r;
    rc = est_read(s, &r);
    if (rc) {
        char why[JB_TEXT_LEN];
        str_lcpy(why, s->error, sizeof why);
        return sensor_fail(s, rc, "", "%s", why);
    }
    return 0;
}

static void est_close(struct sensor *s)
{
    struct est_sensor *e = (struct est_sensor *)s;
    if (!e)
        return;
    if (e->fd >= 0)
        close(e->fd);
    free(e);
}

static int est_probe(const struct sensor_env *env, struct sensor_set *set)
{
    struct est_sensor *e = calloc(1, sizeof *e);
    if (!e)
        return JB_ERR_NOMEM;
    e->fd = -1;
    e->cpu_watts = env->cpu_watts;
    struct sensor *s = &e->base;
    sensor_init(s, &sensor_estimate, "estimate:cpu", JB_DOMAIN_CPU, JB_SENSOR_ENERGY);
    s->info.estimated = 1;
    str_lcpy(s->info.label, "estimate: busy share of the CPUs x a full-load power figure",
             sizeof s->info.label);
    sensor_cpu_model(env, s->info.device, sizeof s->info.device);
    if (fs_path_join(e->path, sizeof e->path, env->procfs_root, "stat")) {
        free(e);
        return 0;
    }
    return sensor_set_add_or_drop(set, s);
}

const struct sensor_backend sensor_estimate = {
    .name = "estimate",
    .probe = est_probe,
    .open = est_open,
    .read = est_read,
    .close = est_close,
    .last_error = sensor_last_error,
};
