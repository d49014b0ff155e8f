/*
 * nvml.c — NVIDIA GPUs through NVML, opened with dlopen (see nvml.h).
 *
 * Nothing here includes a CUDA or NVML header: the few types and functions
 * used are declared below with the signatures and values of NVML's public
 * nvml.h, so joulebench builds and runs on machines without the driver.
 */
#include "sensors/nvml.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/str.h"

/* nvmlReturn_t: the values joulebench tells apart (nvml.h). */
enum nvml_return {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
};

/* nvmlDevice_t is a pointer to this opaque struct. */
struct nvmlDevice_st;

/* Buffer sizes from nvml.h (the _V2 sizes are the larger ones). */
#define NVML_NAME_LEN 96   /* NVML_DEVICE_NAME_V2_BUFFER_SIZE */
#define NVML_UUID_LEN 96   /* NVML_DEVICE_UUID_V2_BUFFER_SIZE */
#define NVML_DRIVER_LEN 80 /* NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE */

/* The opened library, shared by the sensors of one probe. */
struct nvml_lib {
    void *handle;
    int refs;
    char path[128];
    /* required */
    int (*nvmlInit_v2)(void);
    int (*nvmlShutdown)(void);
    const char *(*nvmlErrorString)(int result);
    int (*nvmlDeviceGetCount_v2)(unsigned int *count);
    int (*nvmlDeviceGetHandleByIndex_v2)(unsigned int index, struct nvmlDevice_st **device);
    /* optional: identity */
    int (*nvmlDeviceGetName)(struct nvmlDevice_st *device, char *name, unsigned int length);
    int (*nvmlDeviceGetUUID)(struct nvmlDevice_st *device, char *uuid, unsigned int length);
    int (*nvmlSystemGetDriverVersion)(char *version, unsigned int length);
    /* optional: at least one of these two per GPU */
    int (*nvmlDeviceGetTotalEnergyConsumption)(struct nvmlDevice_st *device,
                                               unsigned long long *energy_mj);
    int (*nvmlDeviceGetPowerUsage)(struct nvmlDevice_st *device, unsigned int *power_mw);
};

#define NVML_SYM(name, required)                                                                   \
    {                                                                                              \
#name, offsetof(struct nvml_lib, name), required                                           \
    }
static const struct {
    const char *name;
    size_t offset;
    int required;
} nvml_symbols[] = {
    NVML_SYM(nvmlInit_v2, 1),
    NVML_SYM(nvmlShutdown, 1),
    NVML_SYM(nvmlErrorString, 1),
    NVML_SYM(nvmlDeviceGetCount_v2, 1),
    NVML_SYM(nvmlDeviceGetHandleByIndex_v2, 1),
    NVML_SYM(nvmlDeviceGetName, 0),
    NVML_SYM(nvmlDeviceGetUUID, 0),
    NVML_SYM(nvmlSystemGetDriverVersion, 0),
    NVML_SYM(nvmlDeviceGetTotalEnergyConsumption, 0),
    NVML_SYM(nvmlDeviceGetPowerUsage, 0),
};
#undef NVML_SYM

struct nvml_sensor {
    struct sensor base;
    struct nvml_lib *lib;
    struct nvmlDevice_st *device;
    unsigned int index;
    int use_energy; /* 1: energy counter (mJ); 0: power (mW) */
    int usable;     /* 0: probe already knows it cannot be read (reason set) */
};

static const char *const nvml_sonames[] = {"libnvidia-ml.so.1", "libnvidia-ml.so"};

static const char *lib_errstr(const struct nvml_lib *lib, int code)
{
    const char *s = lib->nvmlErrorString ? lib->nvmlErrorString(code) : NULL;
    return s ? s : "unknown NVML error";
}

static void lib_release(struct nvml_lib *lib)
{
    if (!lib || --lib->refs > 0)
        return;
    if (lib->nvmlShutdown)
        lib->nvmlShutdown();
    dlclose(lib->handle);
    free(lib);
}

/* What an NVML status means for the person at the keyboard: a reason and,
 * where there is one, the fix. Used for init failures and per-GPU errors. */
static void explain(const struct nvml_lib *lib, int code, char *reason, char *fix)
{
    const char *msg = lib_errstr(lib, code);
    switch (code) {
    case NVML_ERROR_NO_PERMISSION:
        snprintf(reason, JB_TEXT_LEN, "NVML: permission denied (%s)", msg);
        str_lcpy(fix,
                 "give this user access to /dev/nvidia* (on most systems: the video group) "
                 "and check that `nvidia-smi` works for it",
                 JB_TEXT_LEN);
        break;
    case NVML_ERROR_DRIVER_NOT_LOADED:
        snprintf(reason, JB_TEXT_LEN, "the NVIDIA kernel driver is not loaded (%s)", msg);
        str_lcpy(fix, "load it (`sudo modprobe nvidia`) or reinstall the NVIDIA driver",
                 JB_TEXT_LEN);
        break;
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        snprintf(reason, JB_TEXT_LEN, "libnvidia-ml and the kernel driver differ in version (%s)",
                 msg);
        str_lcpy(fix, "reboot after the driver update, or reinstall the NVIDIA driver",
                 JB_TEXT_LEN);
        break;
    case NVML_ERROR_GPU_IS_LOST:
        snprintf(reason, JB_TEXT_LEN, "the GPU stopped answering (%s)", msg);
        str_lcpy(fix, "see `dmesg` for Xid errors; the GPU needs a reset or a reboot", JB_TEXT_LEN);
        break;
    case NVML_ERROR_NOT_SUPPORTED:
        snprintf(reason, JB_TEXT_LEN, "this GPU reports neither an energy counter nor power (%s)",
                 msg);
        fix[0] = '\0';
        break;
    default:
        snprintf(reason, JB_TEXT_LEN, "NVML error %d (%s)", code, msg);
        str_lcpy(fix, "check that `nvidia-smi` works", JB_TEXT_LEN);
        break;
    }
}

/* dlopen the library and resolve its symbols. A missing library or a
 * missing required symbol is not an error of joulebench: it returns
 * JB_ERR_NOTFOUND with the reason (dlerror text kept) in why. */
static int lib_open(const char *path, struct nvml_lib **out, char *why)
{
    void *h = NULL;
    const char *tried = path;
    char first_err[JB_TEXT_LEN] = "";
    if (path && path[0]) {
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *e = dlerror();
            snprintf(why, JB_TEXT_LEN,
                     "cannot load %s (from JOULEBENCH_NVML_LIB): %s; point it at libnvidia-ml.so.1 "
                     "or unset it",
                     path, e ? e : "unknown error");
            return JB_ERR_NOTFOUND;
        }
    } else {
        for (size_t i = 0; !h && i < sizeof nvml_sonames / sizeof nvml_sonames[0]; i++) {
            tried = nvml_sonames[i];
            h = dlopen(tried, RTLD_NOW | RTLD_LOCAL);
            if (!h && i == 0) {
                const char *e = dlerror();
                str_lcpy(first_err, e ? e : "not found", sizeof first_err);
            }
        }
        if (!h) {
            snprintf(why, JB_TEXT_LEN,
                     "no NVIDIA driver found (%s); install the NVIDIA driver to measure NVIDIA "
                     "GPUs",
                     first_err);
            return JB_ERR_NOTFOUND;
        }
    }

    struct nvml_lib *lib = calloc(1, sizeof *lib);
    if (!lib) {
        dlclose(h);
        str_lcpy(why, "out of memory", JB_TEXT_LEN);
        return JB_ERR_NOMEM;
    }
    lib->handle = h;
    lib->refs = 1;
    str_lcpy(lib->path, tried, sizeof lib->path);
    for (size_t i = 0; i < sizeof nvml_symbols / sizeof nvml_symbols[0]; i++) {
        dlerror();
        void *sym = dlsym(h, nvml_symbols[i].name);
        const char *e = dlerror();
        if (!sym && nvml_symbols[i].required) {
            /* dlerror() names the file again: it goes last, where a cut
             * costs least. */
            snprintf(why, JB_TEXT_LEN,
                     "the library lacks %s (too old, or not NVML): update the NVIDIA driver (%s)",
                     nvml_symbols[i].name, e ? e : lib->path);
            dlclose(h);
            free(lib);
            return JB_ERR_NOTFOUND;
        }
        /* POSIX guarantees a data pointer from dlsym can hold a function. */
        memcpy((char *)lib + nvml_symbols[i].offset, &sym, sizeof sym);
    }
    *out = lib;
    return 0;
}

/* Fills identity and decides energy counter vs power for one GPU. The
 * choice is made here, at probe time, so `joulebench sensors` shows it. */
static void describe_gpu(struct nvml_sensor *g, const char *driver)
{
    struct nvml_lib *lib = g->lib;
    struct jb_sensor_info *info = &g->base.info;
    char name[NVML_NAME_LEN] = "NVIDIA GPU";
    char uuid[NVML_UUID_LEN] = "unknown UUID";
    if (lib->nvmlDeviceGetName && lib->nvmlDeviceGetName(g->device, name, sizeof name) != 0)
        str_lcpy(name, "NVIDIA GPU", sizeof name);
    if (lib->nvmlDeviceGetUUID && lib->nvmlDeviceGetUUID(g->device, uuid, sizeof uuid) != 0)
        str_lcpy(uuid, "unknown UUID", sizeof uuid);
    name[sizeof name - 1] = uuid[sizeof uuid - 1] = '\0';

    snprintf(info->name, sizeof info->name, "nvml:gpu%u", g->index);
    str_lcpy(info->backend, "nvml", sizeof info->backend);
    snprintf(info->device, sizeof info->device, "%s, %s, driver %s", name, uuid, driver);
    info->domain = JB_DOMAIN_GPU;
    info->estimated = 0;
    info->parent = -1;
    info->update_period_s = NVML_UPDATE_PERIOD_S;
    info->max_range_j = 0;

    int rc = NVML_ERROR_NOT_SUPPORTED;
    if (lib->nvmlDeviceGetTotalEnergyConsumption) {
        unsigned long long mj;
        rc = lib->nvmlDeviceGetTotalEnergyConsumption(g->device, &mj);
    }
    if (rc == NVML_SUCCESS) {
        g->use_energy = 1;
        info->kind = JB_SENSOR_ENERGY;
        g->base.joules_per_unit = 1e-3; /* mJ */
        g->base.raw_range = 0;          /* 64-bit mJ: no wrap in practice */
        snprintf(info->label, sizeof info->label, "GPU %u: %s (NVML energy counter)", g->index,
                 name);
        g->usable = 1;
        return;
    }
    if (rc == NVML_ERROR_NOT_SUPPORTED) {
        /* Older than Volta: the power reading, integrated by the meter. */
        g->use_energy = 0;
        info->kind = JB_SENSOR_POWER;
        snprintf(info->label, sizeof info->label,
                 "GPU %u: %s (NVML power, integrated; no energy counter before Volta)", g->index,
                 name);
        if (lib->nvmlDeviceGetPowerUsage) {
            unsigned int mw;
            rc = lib->nvmlDeviceGetPowerUsage(g->device, &mw);
            if (rc == NVML_SUCCESS) {
                g->usable = 1;
                return;
            }
        }
    }
    g->usable = 0;
    explain(lib, rc, info->reason, info->fix);
}

static int nvml_probe(const struct sensor_env *env, struct sensor_set *set)
{
    char why[JB_TEXT_LEN];
    struct nvml_lib *lib = NULL;
    int rc = lib_open(env ? env->nvml_lib : NULL, &lib, why);
    if (rc == JB_ERR_NOMEM)
        return rc;
    if (rc) {
        sensor_set_note(set, "nvml: %s", why);
        return 0;
    }

    rc = lib->nvmlInit_v2();
    if (rc != NVML_SUCCESS) {
        char reason[JB_TEXT_LEN], fix[JB_TEXT_LEN];
        explain(lib, rc, reason, fix);
        sensor_set_note(set, "nvml: %s: %s%s%s", lib->path, reason, fix[0] ? "; " : "", fix);
        lib->nvmlShutdown = NULL; /* nothing to shut down */
        lib_release(lib);
        return 0;
    }

    unsigned int count = 0;
    rc = lib->nvmlDeviceGetCount_v2(&count);
    if (rc != NVML_SUCCESS || count == 0) {
        if (rc != NVML_SUCCESS)
            sensor_set_note(set, "nvml: cannot count GPUs: %s", lib_errstr(lib, rc));
        else
            sensor_set_note(set, "nvml: the NVIDIA driver is loaded but reports no GPU");
        lib_release(lib);
        return 0;
    }

    char driver[NVML_DRIVER_LEN] = "unknown";
    if (lib->nvmlSystemGetDriverVersion &&
        lib->nvmlSystemGetDriverVersion(driver, sizeof driver) != NVML_SUCCESS)
        str_lcpy(driver, "unknown", sizeof driver);
    driver[sizeof driver - 1] = '\0';

    int out = 0;
    for (unsigned int i = 0; i < count; i++) {
        struct nvmlDevice_st *dev = NULL;
        rc = lib->nvmlDeviceGetHandleByIndex_v2(i, &dev);
        struct nvml_sensor *g = calloc(1, sizeof *g);
        if (!g) {
            out = JB_ERR_NOMEM;
            break;
        }
        g->base.backend = &sensor_nvml;
        g->lib = lib;
        g->device = dev;
        g->index = i;
        if (rc == NVML_SUCCESS) {
            describe_gpu(g, driver);
        } else {
            /* The GPU exists but NVML will not hand it out (no permission,
             * lost): listed, unreadable, with the reason. */
            snprintf(g->base.info.name, sizeof g->base.info.name, "nvml:gpu%u", i);
            str_lcpy(g->base.info.backend, "nvml", sizeof g->base.info.backend);
            snprintf(g->base.info.label, sizeof g->base.info.label, "GPU %u (NVML)", i);
            snprintf(g->base.info.device, sizeof g->base.info.device, "NVIDIA GPU %u, driver %s", i,
                     driver);
            g->base.info.domain = JB_DOMAIN_GPU;
            g->base.info.parent = -1;
            g->base.info.update_period_s = NVML_UPDATE_PERIOD_S;
            g->usable = 0;
            explain(lib, rc, g->base.info.reason, g->base.info.fix);
        }
        lib->refs++; /* the sensor's; released by close(), also when the set is full */
        sensor_set_add_or_drop(set, &g->base);
    }
    lib_release(lib); /* the probe's own reference; the sensors keep theirs */
    return out;
}

static int read_failed(struct nvml_sensor *g, int code)
{
    snprintf(g->base.error, sizeof g->base.error, "%s: %s", g->base.info.name,
             lib_errstr(g->lib, code));
    switch (code) {
    case NVML_ERROR_NO_PERMISSION:
        return JB_ERR_PERM;
    case NVML_ERROR_NOT_SUPPORTED:
        return JB_ERR_UNSUPPORTED;
    case NVML_ERROR_GPU_IS_LOST:
    case NVML_ERROR_NOT_FOUND:
        return JB_ERR_NOTFOUND;
    default:
        return JB_ERR_IO;
    }
}

/* Hot path: one NVML call, timestamped at its midpoint (an NVML query takes
 * from tens of microseconds to a millisecond). */
static int nvml_read(struct sensor *s, struct sensor_reading *r)
{
    struct nvml_sensor *g = (struct nvml_sensor *)s;
    int rc;
    double t0 = jb_clock_s();
    if (g->use_energy) {
        unsigned long long mj = 0;
        rc = g->lib->nvmlDeviceGetTotalEnergyConsumption(g->device, &mj);
        r->raw = (uint64_t)mj;
        r->power_w = 0;
    } else {
        unsigned int mw = 0;
        rc = g->lib->nvmlDeviceGetPowerUsage(g->device, &mw);
        r->raw = 0;
        r->power_w = mw / 1000.0;
    }
    r->t_s = 0.5 * (t0 + jb_clock_s());
    if (rc != NVML_SUCCESS)
        return read_failed(g, rc);
    return 0;
}

/* Confirms with one reading; a GPU that cannot be read stays listed with
 * the reason. */
static int nvml_open(struct sensor *s)
{
    struct nvml_sensor *g = (struct nvml_sensor *)s;
    s->info.readable = 0;
    if (!g->usable)
        return JB_ERR_UNSUPPORTED; /* reason and fix were set by probe */
    struct sensor_reading r;
    int rc = nvml_read(s, &r);
    if (rc) {
        s->info.readable = 0;
        str_lcpy(s->info.reason, s->error, JB_TEXT_LEN);
        return rc;
    }
    s->info.readable = 1;
    return 0;
}

static void nvml_close(struct sensor *s)
{
    struct nvml_sensor *g = (struct nvml_sensor *)s;
    if (!g)
        return;
    lib_release(g->lib);
    free(g);
}

static const char *nvml_last_error(const struct sensor *s)
{
    return s->error;
}

const struct sensor_backend sensor_nvml = {
    .name = "nvml",
    .probe = nvml_probe,
    .open = nvml_open,
    .read = nvml_read,
    .close = nvml_close,
    .last_error = nvml_last_error,
};
