/*
 * fake_nvml.c — a stand-in for libnvidia-ml.so built by the tests. It
 * exports the real NVML function names with their real signatures, so the
 * nvml backend is driven through the same dlopen/dlsym path as with the
 * driver.
 *
 * Scripted by the environment, read at every nvmlInit_v2():
 *   FAKE_NVML_INIT    return code of nvmlInit_v2 (default 0, NVML_SUCCESS)
 *   FAKE_NVML_DRIVER  driver version string (default "550.54.15")
 *   FAKE_NVML_READ_US CPU time each energy or power reading burns, in µs
 *                    (default 0), as a slow driver's does
 *   FAKE_NVML_GPUS    GPUs separated by ';', each "name|uuid|mode[|watts]":
 *       energy|W   energy counter (mJ) advancing at W watts on the system's
 *                  monotonic clock (so two processes see one counter), power
 *                  reading W as well
 *       steps|W    the same counter published in steps, every 100 ms of
 *                  that clock, as a real GPU's is (an H100's: ~100 ms)
 *       power|W    no energy counter (NOT_SUPPORTED), power W
 *       none       neither energy nor power (NOT_SUPPORTED)
 *       noperm     energy and power answer NO_PERMISSION
 *       nohandle   nvmlDeviceGetHandleByIndex_v2 answers NO_PERMISSION
 * and, for exact values, by functions a test finds with dlsym on the same
 * library: fake_nvml_set_energy(), fake_nvml_set_status(),
 * fake_nvml_init_count(), fake_nvml_energy_reads().
 *
 * Built twice: libfake_nvml.so, and libfake_nvml_nocount.so with
 * FAKE_NVML_OMIT_COUNT, which lacks the required nvmlDeviceGetCount_v2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_MAX_GPUS 8

/* Values from NVML's nvml.h. */
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_GPU_IS_LOST = 15,
};

struct nvmlDevice_st {
    char name[96];
    char uuid[96];
    char mode[16];
    double watts;
    int fixed; /* 1: energy_mj is set by the test */
    unsigned long long energy_mj;
    int status; /* non-zero: every reading returns it */
};

static struct nvmlDevice_st gpus[FAKE_MAX_GPUS];
static unsigned int n_gpus;
static int init_count; /* nvmlInit_v2 successes minus nvmlShutdown calls */
static char driver[80];
static double read_cost_s;
static unsigned long energy_reads; /* nvmlDeviceGetTotalEnergyConsumption calls */

/* Exported so the fake is self-contained; not part of NVML. */
void fake_nvml_set_energy(unsigned int index, unsigned long long mj);
void fake_nvml_set_status(unsigned int index, int status);
int fake_nvml_init_count(void);
unsigned long fake_nvml_energy_reads(void);

/* The real API, as declared in nvml.h (nvmlReturn_t is an int-sized enum). */
int nvmlInit_v2(void);
int nvmlShutdown(void);
const char *nvmlErrorString(int result);
#ifndef FAKE_NVML_OMIT_COUNT
int nvmlDeviceGetCount_v2(unsigned int *count);
#endif
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, struct nvmlDevice_st **device);
int nvmlDeviceGetName(struct nvmlDevice_st *device, char *name, unsigned int length);
int nvmlDeviceGetUUID(struct nvmlDevice_st *device, char *uuid, unsigned int length);
int nvmlSystemGetDriverVersion(char *version, unsigned int length);
int nvmlDeviceGetTotalEnergyConsumption(struct nvmlDevice_st *device, unsigned long long *energy);
int nvmlDeviceGetPowerUsage(struct nvmlDevice_st *device, unsigned int *power);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void copy(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* "name|uuid|mode[|watts]" into gpus[n_gpus]. */
static void parse_gpu(const char *s, size_t len)
{
    if (n_gpus >= FAKE_MAX_GPUS || len == 0)
        return;
    struct nvmlDevice_st *g = &gpus[n_gpus++];
    memset(g, 0, sizeof *g);
    const char *field[4] = {0};
    size_t flen[4] = {0};
    size_t k = 0;
    field[0] = s;
    for (size_t i = 0; i < len && k < 4; i++) {
        if (s[i] == '|') {
            flen[k] = (size_t)(s + i - field[k]);
            if (++k < 4)
                field[k] = s + i + 1;
        }
    }
    if (k < 4)
        flen[k] = (size_t)(s + len - field[k]);
    copy(g->name, sizeof g->name, field[0] ? field[0] : "", flen[0]);
    copy(g->uuid, sizeof g->uuid, field[1] ? field[1] : "", flen[1]);
    copy(g->mode, sizeof g->mode, field[2] ? field[2] : "energy", flen[2]);
    if (field[3]) {
        char num[32];
        copy(num, sizeof num, field[3], flen[3]);
        g->watts = strtod(num, NULL);
    }
}

int nvmlInit_v2(void)
{
    const char *rc = getenv("FAKE_NVML_INIT");
    if (rc && *rc && strtol(rc, NULL, 10) != 0)
        return (int)strtol(rc, NULL, 10);
    const char *d = getenv("FAKE_NVML_DRIVER");
    copy(driver, sizeof driver, d ? d : "550.54.15", strlen(d ? d : "550.54.15"));
    n_gpus = 0;
    const char *spec = getenv("FAKE_NVML_GPUS");
    if (spec) {
        const char *p = spec;
        while (*p) {
            const char *end = strchr(p, ';');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            parse_gpu(p, len);
            p += len;
            if (*p == ';')
                p++;
        }
    }
    const char *us = getenv("FAKE_NVML_READ_US");
    read_cost_s = us ? strtod(us, NULL) * 1e-6 : 0.0;
    init_count++;
    return NVML_SUCCESS;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Burns read_cost_s of this thread's CPU time. */
static void burn(void)
{
    if (read_cost_s <= 0)
        return;
    double end = thread_cpu_s() + read_cost_s;
    volatile unsigned long spin = 0;
    while (thread_cpu_s() < end)
        spin++;
}

int nvmlShutdown(void)
{
    if (init_count <= 0)
        return NVML_ERROR_UNINITIALIZED;
    init_count--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(int result)
{
    switch (result) {
    case NVML_SUCCESS:
        return "Success";
    case NVML_ERROR_UNINITIALIZED:
        return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
        return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
        return "Not Supported";
    case NVML_ERROR_NO_PERMISSION:
        return "Insufficient Permissions";
    case NVML_ERROR_DRIVER_NOT_LOADED:
        return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST:
        return "GPU is lost";
    default:
        return "Unknown Error";
    }
}

#ifndef FAKE_NVML_OMIT_COUNT
int nvmlDeviceGetCount_v2(unsigned int *count)
{
    if (init_count <= 0)
        return NVML_ERROR_UNINITIALIZED;
    *count = n_gpus;
    return NVML_SUCCESS;
}
#endif

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, struct nvmlDevice_st **device)
{
    if (init_count <= 0)
        return NVML_ERROR_UNINITIALIZED;
    if (index >= n_gpus)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strcmp(gpus[index].mode, "nohandle") == 0)
        return NVML_ERROR_NO_PERMISSION;
    *device = &gpus[index];
    return NVML_SUCCESS;
}

static int copy_out(char *dst, unsigned int length, const char *src)
{
    size_t n = strlen(src);
    if (n + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, n + 1);
    return NVML_SUCCESS;
}

int nvmlDeviceGetName(struct nvmlDevice_st *device, char *name, unsigned int length)
{
    return copy_out(name, length, device->name);
}

int nvmlDeviceGetUUID(struct nvmlDevice_st *device, char *uuid, unsigned int length)
{
    return copy_out(uuid, length, device->uuid);
}

int nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    return copy_out(version, length, driver);
}

int nvmlDeviceGetTotalEnergyConsumption(struct nvmlDevice_st *device, unsigned long long *energy)
{
    if (init_count <= 0)
        return NVML_ERROR_UNINITIALIZED;
    if (device->status)
        return device->status;
    if (strcmp(device->mode, "noperm") == 0)
        return NVML_ERROR_NO_PERMISSION;
    energy_reads++;
    burn();
    int steps = strcmp(device->mode, "steps") == 0;
    if (strcmp(device->mode, "energy") != 0 && !steps)
        return NVML_ERROR_NOT_SUPPORTED;
    double t = now_s();
    if (steps)
        t = (double)(long long)(t / 0.1) * 0.1; /* t > 0: the cast floors */
    if (device->fixed)
        *energy = device->energy_mj;
    else
        *energy = 1000000ull + (unsigned long long)(device->watts * t * 1e3);
    return NVML_SUCCESS;
}

int nvmlDeviceGetPowerUsage(struct nvmlDevice_st *device, unsigned int *power)
{
    if (init_count <= 0)
        return NVML_ERROR_UNINITIALIZED;
    if (device->status)
        return device->status;
    if (strcmp(device->mode, "noperm") == 0)
        return NVML_ERROR_NO_PERMISSION;
    if (strcmp(device->mode, "energy") != 0 && strcmp(device->mode, "steps") != 0 &&
        strcmp(device->mode, "power") != 0)
        return NVML_ERROR_NOT_SUPPORTED;
    burn();
    *power = (unsigned int)(device->watts * 1000.0 + 0.5);
    return NVML_SUCCESS;
}

void fake_nvml_set_energy(unsigned int index, unsigned long long mj)
{
    if (index < FAKE_MAX_GPUS) {
        gpus[index].fixed = 1;
        gpus[index].energy_mj = mj;
    }
}

void fake_nvml_set_status(unsigned int index, int status)
{
    if (index < FAKE_MAX_GPUS)
        gpus[index].status = status;
}

int fake_nvml_init_count(void)
{
    return init_count;
}

unsigned long fake_nvml_energy_reads(void)
{
    return energy_reads;
}
