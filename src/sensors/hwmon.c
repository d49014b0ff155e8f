/*
 * hwmon.c — energy and power readings of the hwmon class.
 *
 * <sysfs>/class/hwmon/hwmonN is a symlink into the device's folder
 * (devices/pci.../0000:03:00.0/hwmon/hwmonN) with `name` (the driver) and
 * numbered attributes:
 *   energyN_input   µJ, cumulative (i915, xe, amd_energy; amdgpu where offered)
 *   powerN_input    µW, instantaneous (amdgpu on newer parts)
 *   powerN_average  µW, averaged by the firmware (amdgpu)
 *   energyN_label   what a counter covers (xe: "card", "pkg"; amd_energy:
 *                   "Esocket0", "Ecore000", ...)
 * A counter is preferred to a power reading of the same device; a power
 * reading is integrated by the meter. The driver decides the domain:
 * amdgpu, i915, xe, radeon, nouveau are GPUs; amd_energy's sockets are the
 * CPU packages (the same RAPL counter powercap reads, so a second route)
 * and its per-core counters are summed into one cores sensor (a machine may
 * have hundreds).
 */
#define _GNU_SOURCE /* strverscmp */
#include "sensors/sensor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/str.h"

#define HWMON_MAX_DEVICES 64
#define HWMON_MAX_INDEX 64
#define HWMON_MAX_CORES 1024

struct hwmon_sensor {
    struct sensor base;
    size_t n;     /* files summed: 1, or one per core for amd_energy */
    int *fds;     /* (n) */
    char **paths; /* (n) */
};

/* Hot path: one pread per file (several only for amd_energy's cores,
 * summed). Counters are µJ, power readings µW. */
static int hwmon_read(struct sensor *s, struct sensor_reading *r)
{
    struct hwmon_sensor *h = (struct hwmon_sensor *)s;
    uint64_t sum = 0;
    for (size_t i = 0; i < h->n; i++) {
        char text[32];
        ssize_t n = fs_pread_small(h->fds[i], text, sizeof text);
        if (n <= 0) {
            snprintf(s->error, sizeof s->error, "%s: %s", h->paths[i],
                     n == 0 ? "empty read: the device is gone" : jb_strerror((int)n));
            return n == 0 ? JB_ERR_NOTFOUND : (int)n;
        }
        uint64_t v;
        if (str_to_u64(text, (size_t)n, &v) || v > UINT64_MAX - sum) {
            str_trim(text);
            snprintf(s->error, sizeof s->error, "%s: '%.24s' is not a reading in micro-units",
                     h->paths[i], text);
            return JB_ERR_FORMAT;
        }
        sum += v;
    }
    if (s->info.kind == JB_SENSOR_POWER)
        r->power_w = (double)sum * 1e-6;
    else
        r->raw = sum;
    return 0;
}

/* Opens every file for the run and reads once; a root-only attribute
 * gets the udev rule that opens it, naming the file. */
static int hwmon_open(struct sensor *s)
{
    struct hwmon_sensor *h = (struct hwmon_sensor *)s;
    for (size_t i = 0; i < h->n; i++) {
        h->fds[i] = open(h->paths[i], O_RDONLY | O_CLOEXEC);
        if (h->fds[i] < 0) {
            int e = errno;
            const char *file = strrchr(h->paths[i], '/');
            file = file ? file + 1 : h->paths[i];
            if (e == EACCES || e == EPERM) {
                char fix[JB_TEXT_LEN];
                snprintf(fix, sizeof fix,
                         "run as root, or make it readable with the udev rule "
                         "SUBSYSTEM==\"hwmon\", ACTION==\"add\", RUN+=\"/bin/chmod a+r %%S%%p/%s\"",
                         file);
                return sensor_fail(s, JB_ERR_PERM, fix, "%s is readable by root only", file);
            }
            return sensor_fail(s, fs_errno_code(e), "", "%s: %s", h->paths[i], strerror(e));
        }
    }
    struct sensor_reading r;
    int rc = hwmon_read(s, &r);
    if (rc) {
        char why[JB_TEXT_LEN];
        str_lcpy(why, s->error, sizeof why);
        return sensor_fail(s, rc, "", "%s", why);
    }
    return 0;
}

static void hwmon_close(struct sensor *s)
{
    struct hwmon_sensor *h = (struct hwmon_sensor *)s;
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        if (h->fds && h->fds[i] >= 0)
            close(h->fds[i]);
        if (h->paths)
            free(h->paths[i]);
    }
    free(h->fds);
    free(h->paths);
    free(h);
}

static int hwmon_probe(const struct sensor_env *env, struct sensor_set *set);

const struct sensor_backend sensor_hwmon = {
    .name = "hwmon",
    .probe = hwmon_probe,
    .open = hwmon_open,
    .read = hwmon_read,
    .close = hwmon_close,
    .last_error = sensor_last_error,
};

static struct hwmon_sensor *new_sensor(const char *name, enum jb_domain domain,
                                       enum jb_sensor_kind kind, size_t n)
{
    struct hwmon_sensor *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->fds = malloc(n * sizeof *h->fds);
    h->paths = calloc(n, sizeof *h->paths);
    if (!h->fds || !h->paths) {
        free(h->fds);
        free(h->paths);
        free(h);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        h->fds[i] = -1;
    sensor_init(&h->base, &sensor_hwmon, name, domain, kind);
    return h;
}

static int set_path(struct hwmon_sensor *h, size_t i, const char *dir, const char *file)
{
    char path[FS_PATH_MAX];
    if (fs_path_join(path, sizeof path, dir, file))
        return JB_ERR_NOMEM;
    h->paths[i] = str_dup(path);
    if (!h->paths[i])
        return JB_ERR_NOMEM;
    h->n = i + 1 > h->n ? i + 1 : h->n;
    return 0;
}

/* What the folder of one hwmon device offers. */
struct hwmon_dev {
    char node[32];          /* "hwmon3" */
    char attr[FS_PATH_MAX]; /* where the attributes are */
    char driver[64];
    char ident[64]; /* "0000:03:00.0", or the node name */
    char device[JB_TEXT_LEN];
    int energy[HWMON_MAX_INDEX + 1]; /* energyN_input present */
    int power_input, power_average;  /* power1_* present */
};

static void scan_attrs(struct hwmon_dev *dev)
{
    DIR *d = opendir(dev->attr);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned idx;
        char tail[16];
        if (sscanf(e->d_name, "energy%u_%15s", &idx, tail) == 2 && strcmp(tail, "input") == 0 &&
            idx <= HWMON_MAX_INDEX)
            dev->energy[idx] = 1;
        else if (strcmp(e->d_name, "power1_input") == 0)
            dev->power_input = 1;
        else if (strcmp(e->d_name, "power1_average") == 0)
            dev->power_average = 1;
    }
    closedir(d);
}

/* The device's identity: its bus address from the `device` link, and the
 * PCI vendor:device pair where there is one. */
static void identify(const char *base, struct hwmon_dev *dev)
{
    char link[FS_PATH_MAX], target[FS_PATH_MAX];
    str_lcpy(dev->ident, dev->node, sizeof dev->ident);
    if (fs_path_join(link, sizeof link, base, "device") == 0) {
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            const char *slash = strrchr(target, '/');
            str_lcpy(dev->ident, slash ? slash + 1 : target, sizeof dev->ident);
        }
    }
    char vendor[16] = "", devid[16] = "";
    sensor_read_text(base, "device/vendor", vendor, sizeof vendor);
    sensor_read_text(base, "device/device", devid, sizeof devid);
    if (vendor[0] && devid[0])
        snprintf(dev->device, sizeof dev->device, "%s at %s (PCI %s:%s)", dev->driver, dev->ident,
                 str_has_prefix(vendor, "0x") ? vendor + 2 : vendor,
                 str_has_prefix(devid, "0x") ? devid + 2 : devid);
    else
        snprintf(dev->device, sizeof dev->device, "%s at %s", dev->driver, dev->ident);
}

static int is_gpu_driver(const char *d)
{
    return strcmp(d, "amdgpu") == 0 || strcmp(d, "i915") == 0 || strcmp(d, "xe") == 0 ||
           strcmp(d, "radeon") == 0 || strcmp(d, "nouveau") == 0;
}

/* A GPU's counters when it has any (exact, no integration), else its power
 * reading. Labels name the counters (xe: card, pkg) and give parents. */
static int add_gpu(const struct hwmon_dev *dev, struct sensor_set *set)
{
    int any_energy = 0, have_card = 0;
    char labels[HWMON_MAX_INDEX + 1][32];
    for (int i = 0; i <= HWMON_MAX_INDEX; i++) {
        labels[i][0] = '\0';
        if (!dev->energy[i])
            continue;
        any_energy = 1;
        char rel[32];
        snprintf(rel, sizeof rel, "energy%d_label", i);
        if (sensor_read_text(dev->attr, rel, labels[i], sizeof labels[i]) < 0)
            labels[i][0] = '\0';
        if (strcmp(labels[i], "card") == 0)
            have_card = 1;
    }
    char card_name[JB_NAME_LEN] = "";
    for (int i = 0; i <= HWMON_MAX_INDEX && any_energy; i++) {
        if (!dev->energy[i])
            continue;
        char name[JB_NAME_LEN], file[32];
        if (labels[i][0])
            snprintf(name, sizeof name, "%s:%s:%s", dev->driver, dev->ident, labels[i]);
        else if (i == 1)
            snprintf(name, sizeof name, "%s:%s", dev->driver, dev->ident);
        else
            snprintf(name, sizeof name, "%s:%s:energy%d", dev->driver, dev->ident, i);
        if (strcmp(labels[i], "card") == 0)
            str_lcpy(card_name, name, sizeof card_name);
        struct hwmon_sensor *h = new_sensor(name, JB_DOMAIN_GPU, JB_SENSOR_ENERGY, 1);
        if (!h)
            return JB_ERR_NOMEM;
        snprintf(file, sizeof file, "energy%d_input", i);
        if (set_path(h, 0, dev->attr, file)) {
            hwmon_close(&h->base);
            return JB_ERR_NOMEM;
        }
        snprintf(h->base.info.label, sizeof h->base.info.label, "%s %s %s%s%s (%s)", dev->node,
                 dev->driver, file, labels[i][0] ? ", " : "", labels[i], dev->ident);
        str_lcpy(h->base.info.device, dev->device, sizeof h->base.info.device);
        /* xe: the GPU package is inside the whole card. */
        if (have_card && strcmp(labels[i], "pkg") == 0)
            snprintf(h->base.parent_name, sizeof h->base.parent_name, "%s:%s:card", dev->driver,
                     dev->ident);
        sensor_set_add_or_drop(set, &h->base);
    }
    if (any_energy || !(dev->power_input || dev->power_average))
        return 0;
    char name[JB_NAME_LEN];
    snprintf(name, sizeof name, "%s:%s", dev->driver, dev->ident);
    struct hwmon_sensor *h = new_sensor(name, JB_DOMAIN_GPU, JB_SENSOR_POWER, 1);
    if (!h)
        return JB_ERR_NOMEM;
    /* Prefer the instantaneous reading: the meter integrates it itself. */
    const char *file = dev->power_input ? "power1_input" : "power1_average";
    if (set_path(h, 0, dev->attr, file)) {
        hwmon_close(&h->base);
        return JB_ERR_NOMEM;
    }
    snprintf(h->base.info.label, sizeof h->base.info.label, "%s %s %s, integrated (%s)", dev->node,
             dev->driver, file, dev->ident);
    str_lcpy(h->base.info.device, dev->device, sizeof h->base.info.device);
    return sensor_set_add_or_drop(set, &h->base);
}

/* amd_energy numbers its counters from 1 with no gaps: every core first
 * ("Ecore000", ...), then every socket ("Esocket0", ...). A machine may
 * have hundreds of cores, so this walks the labels rather than the bounded
 * energy[] scan. */
static int add_amd_energy(const struct sensor_env *env, const struct hwmon_dev *dev,
                          struct sensor_set *set)
{
    char cpu_model[JB_TEXT_LEN];
    sensor_cpu_model(env, cpu_model, sizeof cpu_model);
    struct hwmon_sensor *cores =
        new_sensor("amd_energy:cores", JB_DOMAIN_CORES, JB_SENSOR_ENERGY, HWMON_MAX_CORES);
    if (!cores)
        return JB_ERR_NOMEM;
    int sockets = 0, first_socket = -1, rc = 0;
    size_t k = 0;
    for (int i = 1; i <= HWMON_MAX_CORES + 64 && rc == 0; i++) {
        char rel[32], label[32], file[32];
        snprintf(rel, sizeof rel, "energy%d_label", i);
        snprintf(file, sizeof file, "energy%d_input", i);
        if (sensor_read_text(dev->attr, rel, label, sizeof label) <= 0)
            break;
        unsigned sock;
        if (sscanf(label, "Esocket%u", &sock) == 1) {
            char name[JB_NAME_LEN];
            snprintf(name, sizeof name, "amd_energy:socket%u", sock);
            struct hwmon_sensor *h = new_sensor(name, JB_DOMAIN_CPU, JB_SENSOR_ENERGY, 1);
            if (!h || set_path(h, 0, dev->attr, file)) {
                if (h)
                    hwmon_close(&h->base);
                rc = JB_ERR_NOMEM;
                break;
            }
            snprintf(h->base.info.label, sizeof h->base.info.label, "%s amd_energy %s (socket %u)",
                     dev->node, file, sock);
            str_lcpy(h->base.info.device, cpu_model, sizeof h->base.info.device);
            snprintf(h->base.counter_key, sizeof h->base.counter_key, "cpu-pkg-%u", sock);
            h->base.route_rank = SENSOR_RANK_ALT;
            sensor_set_add_or_drop(set, &h->base);
            if (sockets++ == 0)
                first_socket = (int)sock;
        } else if (str_has_prefix(label, "Ecore") && k < HWMON_MAX_CORES) {
            if (set_path(cores, k++, dev->attr, file))
                rc = JB_ERR_NOMEM;
        }
    }
    if (rc || k == 0) {
        hwmon_close(&cores->base);
        return rc;
    }
    snprintf(cores->base.info.label, sizeof cores->base.info.label,
             "%s amd_energy, sum of %zu per-core counters", dev->node, k);
    str_lcpy(cores->base.info.device, cpu_model, sizeof cores->base.info.device);
    /* With one socket the sum is that package's cores, the counter the
     * powercap core zone reads; with more, no single package holds it. */
    if (sockets == 1) {
        snprintf(cores->base.parent_name, sizeof cores->base.parent_name, "amd_energy:socket%d",
                 first_socket);
        snprintf(cores->base.counter_key, sizeof cores->base.counter_key, "cpu-cores-%d",
                 first_socket);
        cores->base.route_rank = SENSOR_RANK_ALT;
    }
    return sensor_set_add_or_drop(set, &cores->base);
}

static int cmp_nodes(const void *a, const void *b)
{
    return strverscmp(*(const char *const *)a, *(const char *const *)b); /* hwmon10 after 9 */
}

/* Looks at one hwmon node and hands it to the driver's handler; drivers
 * that offer energy but are not known are noted, never guessed at. */
static int add_device(const struct sensor_env *env, const char *class_dir, const char *node,
                      struct sensor_set *set)
{
    struct hwmon_dev *dev = calloc(1, sizeof *dev);
    if (!dev)
        return JB_ERR_NOMEM;
    char base[FS_PATH_MAX];
    int rc = 0;
    str_lcpy(dev->node, node, sizeof dev->node);
    if (fs_path_join(base, sizeof base, class_dir, node))
        goto out;
    /* Old drivers keep their attributes in device/ rather than beside it. */
    str_lcpy(dev->attr, base, sizeof dev->attr);
    if (sensor_read_text(base, "name", dev->driver, sizeof dev->driver) <= 0) {
        if (fs_path_join(dev->attr, sizeof dev->attr, base, "device") ||
            sensor_read_text(dev->attr, "name", dev->driver, sizeof dev->driver) <= 0)
            goto out;
    }
    identify(base, dev);
    scan_attrs(dev);
    int any_energy = 0;
    for (int i = 0; i <= HWMON_MAX_INDEX; i++)
        any_energy |= dev->energy[i];
    if (is_gpu_driver(dev->driver))
        rc = add_gpu(dev, set);
    else if (strcmp(dev->driver, "amd_energy") == 0)
        rc = add_amd_energy(env, dev, set);
    else if (any_energy)
        sensor_set_note(set,
                        "hwmon: %s (%s) has energy counters of a kind joulebench does not know",
                        node, dev->driver);
out:
    free(dev);
    return rc;
}

static int hwmon_probe(const struct sensor_env *env, struct sensor_set *set)
{
    char class_dir[FS_PATH_MAX];
    if (fs_path_join(class_dir, sizeof class_dir, env->sysfs_root, "class/hwmon"))
        return 0;
    DIR *d = opendir(class_dir);
    if (!d) {
        sensor_set_note(set, "hwmon: no %s", class_dir);
        return 0;
    }
    char *nodes[HWMON_MAX_DEVICES];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < HWMON_MAX_DEVICES) {
        if (!str_has_prefix(e->d_name, "hwmon") || !(nodes[n] = str_dup(e->d_name)))
            continue;
        n++;
    }
    closedir(d);
    qsort(nodes, n, sizeof nodes[0], cmp_nodes);
    size_t before = set->n;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = add_device(env, class_dir, nodes[i], set);
    for (size_t i = 0; i < n; i++)
        free(nodes[i]);
    if (rc == 0 && set->n == before)
        sensor_set_note(set, "hwmon: no energy or power sensors of a known driver under %s",
                        class_dir);
    return rc;
}
