/*
 * ina3221.c — Jetson INA3221 power rails through hwmon (see ina3221.h).
 */
#include "sensors/ina3221.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/str.h"

#define INA3221_CHANNELS 3

struct ina3221_sensor {
    struct sensor base;
    char in_path[FS_PATH_MAX];   /* in<N>_input, mV */
    char curr_path[FS_PATH_MAX]; /* curr<N>_input, mA */
    int in_fd, curr_fd;
};

static int has_word(const char *label, const char *word)
{
    return strstr(label, word) != NULL;
}

enum jb_domain ina3221_domain(const char *label, int *whole_module)
{
    static const char *const whole[] = {"VDD_IN", "5V_IN", "POM_5V_IN"};
    *whole_module = 0;
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        if (strcmp(label, whole[i]) == 0) {
            *whole_module = 1;
            return JB_DOMAIN_SYSTEM;
        }
    }
    int cpu = has_word(label, "CPU"), gpu = has_word(label, "GPU");
    if (gpu && (cpu || has_word(label, "SOC")))
        return JB_DOMAIN_SOC; /* one rail feeds both: cannot be split */
    if (cpu)
        return JB_DOMAIN_CPU;
    if (gpu)
        return JB_DOMAIN_GPU;
    if (has_word(label, "DDR") || has_word(label, "VDDQ") || has_word(label, "VDDRQ"))
        return JB_DOMAIN_DRAM;
    return JB_DOMAIN_SOC; /* SOC, CV, the module's 5 V system rail, ... */
}

/* Reads a small sysfs text file into dst, trimmed; "" if absent. */
static void read_text(const char *dir, const char *file, char *dst, size_t size)
{
    char path[FS_PATH_MAX];
    dst[0] = '\0';
    if (fs_path_join(path, sizeof path, dir, file) || fs_read_small(path, dst, size) < 0) {
        dst[0] = '\0';
        return;
    }
    str_trim(dst);
}

/* The monitor's I2C address as the kernel names it ("1-0040"): the target
 * of the hwmon folder's `device` link. */
static void device_id(const char *dir, char *dst, size_t size)
{
    char path[FS_PATH_MAX], target[FS_PATH_MAX];
    str_lcpy(dst, "?", size);
    if (fs_path_join(path, sizeof path, dir, "device"))
        return;
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0)
        return;
    target[n] = '\0';
    const char *slash = strrchr(target, '/');
    str_lcpy(dst, slash ? slash + 1 : target, size);
}

static int name_taken(const struct sensor_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i]->info.name, name) == 0)
            return 1;
    return 0;
}

/* One hwmon folder of an INA3221: a sensor per labelled, enabled channel
 * that has both a voltage and a current file. */
static int probe_monitor(const char *dir, struct sensor_set *set, size_t *first, char *whole_name)
{
    char dev[64], text[64];
    device_id(dir, dev, sizeof dev);
    double period_s = 0;
    read_text(dir, "update_interval", text, sizeof text);
    uint64_t ms;
    if (text[0] && str_to_u64(text, (size_t)-1, &ms) == 0)
        period_s = (double)ms / 1000.0;

    for (int ch = 1; ch <= INA3221_CHANNELS; ch++) {
        char file[32], label[JB_NAME_LEN];
        snprintf(file, sizeof file, "in%d_label", ch);
        read_text(dir, file, label, sizeof label);
        if (!label[0] || strcmp(label, "NC") == 0)
            continue;
        snprintf(file, sizeof file, "in%d_enable", ch);
        read_text(dir, file, text, sizeof text);
        if (strcmp(text, "0") == 0)
            continue;

        struct ina3221_sensor *s = calloc(1, sizeof *s);
        if (!s)
            return JB_ERR_NOMEM;
        s->in_fd = s->curr_fd = -1;
        snprintf(file, sizeof file, "in%d_input", ch);
        int bad = fs_path_join(s->in_path, sizeof s->in_path, dir, file);
        snprintf(file, sizeof file, "curr%d_input", ch);
        bad |= fs_path_join(s->curr_path, sizeof s->curr_path, dir, file);
        if (bad || !fs_exists(s->in_path) || !fs_exists(s->curr_path)) {
            sensor_set_note(set, "ina3221: %s channel %d (%s) has no in%d_input/curr%d_input", dev,
                            ch, label, ch, ch);
            free(s);
            continue;
        }

        struct jb_sensor_info *info = &s->base.info;
        s->base.backend = &sensor_ina3221;
        snprintf(info->name, sizeof info->name, "ina3221:%s", label);
        if (name_taken(set, info->name))
            snprintf(info->name, sizeof info->name, "ina3221:%s:%s", dev, label);
        str_lcpy(info->backend, "ina3221", sizeof info->backend);
        snprintf(info->label, sizeof info->label, "Jetson rail %s (INA3221 %s channel %d)", label,
                 dev, ch);
        snprintf(info->device, sizeof info->device, "INA3221 power monitor %s", dev);
        int whole = 0;
        info->domain = ina3221_domain(label, &whole);
        info->kind = JB_SENSOR_POWER;
        info->estimated = 0;
        info->parent = -1;
        info->update_period_s = period_s;
        size_t before = set->n;
        sensor_set_add_or_drop(set, &s->base);
        if (set->n == before)
            return 0; /* the set is full (noted) */
        if (*first == (size_t)-1)
            *first = set->n - 1;
        if (whole && !whole_name[0])
            str_lcpy(whole_name, set->items[set->n - 1]->info.name, JB_NAME_LEN);
    }
    return 0;
}

/* Finds every hwmon folder named ina3221, then puts the rails inside the
 * whole-module rail when the board has one. */
static int ina3221_probe(const struct sensor_env *env, struct sensor_set *set)
{
    char root[FS_PATH_MAX];
    const char *sysfs = env && env->sysfs_root ? env->sysfs_root : "/sys";
    if (fs_path_join(root, sizeof root, sysfs, "class/hwmon"))
        return 0;
    DIR *d = opendir(root);
    if (!d)
        return 0; /* no hwmon at all: nothing to say, the hwmon backend says it */

    /* hwmon numbering is not stable: sort names so sensor order is. */
    char names[64][32];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64)
        if (strncmp(e->d_name, "hwmon", 5) == 0)
            str_lcpy(names[n++], e->d_name, sizeof names[0]);
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[32];
            memcpy(t, names[j], sizeof t);
            memcpy(names[j], names[j - 1], sizeof t);
            memcpy(names[j - 1], t, sizeof t);
        }

    size_t first = (size_t)-1;
    char whole_name[JB_NAME_LEN] = "";
    for (size_t i = 0; i < n; i++) {
        char dir[FS_PATH_MAX], kind[32];
        if (fs_path_join(dir, sizeof dir, root, names[i]))
            continue;
        read_text(dir, "name", kind, sizeof kind);
        if (strcmp(kind, "ina3221") != 0)
            continue;
        int rc = probe_monitor(dir, set, &first, whole_name);
        if (rc)
            return rc;
    }
    if (first != (size_t)-1 && whole_name[0]) {
        for (size_t i = first; i < set->n; i++) {
            struct sensor *s = set->items[i];
            if (s->backend == &sensor_ina3221 && strcmp(s->info.name, whole_name) != 0)
                str_lcpy(s->parent_name, whole_name, sizeof s->parent_name);
        }
    }
    return 0;
}

static int read_milli(struct ina3221_sensor *s, int fd, const char *path, int64_t *out)
{
    char text[32];
    ssize_t n = fs_pread_small(fd, text, sizeof text);
    if (n < 0) {
        snprintf(s->base.error, sizeof s->base.error, "%s: %s", path, jb_strerror((int)n));
        return (int)n;
    }
    if (str_to_i64(text, (size_t)n, out)) {
        snprintf(s->base.error, sizeof s->base.error, "%s: not a number: \"%.16s\"", path, text);
        return JB_ERR_FORMAT;
    }
    return 0;
}

/* Hot path: two preads, no allocation. Voltage and current are read back
 * to back and timestamped at their midpoint. */
static int ina3221_read(struct sensor *base, struct sensor_reading *r)
{
    struct ina3221_sensor *s = (struct ina3221_sensor *)base;
    int64_t mv = 0, ma = 0;
    double t0 = jb_clock_s();
    int rc = read_milli(s, s->in_fd, s->in_path, &mv);
    if (!rc)
        rc = read_milli(s, s->curr_fd, s->curr_path, &ma);
    r->t_s = 0.5 * (t0 + jb_clock_s());
    r->raw = 0;
    r->power_w = (double)mv * (double)ma * 1e-6;
    return rc;
}

static int open_one(struct ina3221_sensor *s, const char *path, int *fd)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd >= 0)
        return 0;
    int e = errno;
    struct jb_sensor_info *info = &s->base.info;
    snprintf(info->reason, sizeof info->reason, "cannot open %s: %s", path, strerror(e));
    if (e == EACCES || e == EPERM)
        str_lcpy(info->fix,
                 "run joulebench as root once, or make the INA3221 hwmon files "
                 "readable with a udev rule (see docs/privileges.md)",
                 sizeof info->fix);
    return fs_errno_code(e);
}

static int ina3221_open(struct sensor *base)
{
    struct ina3221_sensor *s = (struct ina3221_sensor *)base;
    base->info.readable = 0;
    int rc = open_one(s, s->in_path, &s->in_fd);
    if (!rc)
        rc = open_one(s, s->curr_path, &s->curr_fd);
    if (rc)
        return rc;
    struct sensor_reading r;
    rc = ina3221_read(base, &r);
    if (rc) {
        str_lcpy(base->info.reason, base->error, sizeof base->info.reason);
        return rc;
    }
    base->info.readable = 1;
    return 0;
}

static void ina3221_close(struct sensor *base)
{
    struct ina3221_sensor *s = (struct ina3221_sensor *)base;
    if (!s)
        return;
    if (s->in_fd >= 0)
        close(s->in_fd);
    if (s->curr_fd >= 0)
        close(s->curr_fd);
    free(s);
}

static const char *ina3221_last_error(const struct sensor *s)
{
    return s->error;
}

const struct sensor_backend sensor_ina3221 = {
    .name = "ina3221",
    .probe = ina3221_probe,
    .open = ina3221_open,
    .read = ina3221_read,
    .close = ina3221_close,
    .last_error = ina3221_last_error,
};
