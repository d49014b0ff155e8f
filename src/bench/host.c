#include "bench/host.h"

#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include "common/buf.h"
#include "common/fs.h"
#include "common/str.h"

/* The CPU's marketing name: /proc/cpuinfo "model name" (x86) or "Model"
 * (some Arm boards); sysctl machdep.cpu.brand_string on macOS. */
static json_t *cpu_model(void)
{
#if defined(__APPLE__)
    char name[256];
    size_t len = sizeof name;
    if (sysctlbyname("machdep.cpu.brand_string", name, &len, NULL, 0) == 0)
        return json_string(name);
    return json_null();
#else
    struct buf b = {0};
    json_t *out = json_null();
    if (fs_read_file("/proc/cpuinfo", 4u << 20, &b, NULL) == 0) {
        const char *keys[] = {"model name", "Model", "Hardware"};
        for (size_t k = 0; k < 3 && json_is_null(out); k++) {
            const char *p = strstr(buf_str(&b), keys[k]);
            if (!p)
                continue;
            const char *colon = strchr(p, ':');
            const char *nl = colon ? strchr(colon, '\n') : NULL;
            if (!colon || !nl)
                continue;
            char *v = str_ndup(colon + 1, (size_t)(nl - colon - 1));
            if (v) {
                json_decref(out);
                out = json_string(str_trim(v));
                free(v);
            }
        }
    }
    buf_free(&b);
    return out ? out : json_null();
#endif
}

static json_t *memory_bytes(void)
{
#if defined(__APPLE__)
    int64_t mem = 0;
    size_t len = sizeof mem;
    if (sysctlbyname("hw.memsize", &mem, &len, NULL, 0) == 0)
        return json_integer(mem);
    return json_null();
#else
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && size > 0)
        return json_integer((json_int_t)pages * size);
    return json_null();
#endif
}

json_t *host_describe(void)
{
    json_t *h = json_object();
    if (!h)
        return NULL;
    char name[256];
    if (gethostname(name, sizeof name) == 0) {
        name[sizeof name - 1] = '\0';
        json_object_set_new(h, "hostname", json_string(name));
    } else {
        json_object_set_new(h, "hostname", json_null());
    }
    struct utsname u;
    if (uname(&u) == 0) {
        json_object_set_new(h, "os", json_string(u.sysname));
        json_object_set_new(h, "kernel", json_string(u.release));
        json_object_set_new(h, "arch", json_string(u.machine));
    }
    json_object_set_new(h, "cpu_model", cpu_model());
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    json_object_set_new(h, "cpu_count", n > 0 ? json_integer(n) : json_null());
    json_object_set_new(h, "memory_bytes", memory_bytes());
    json_object_set_new(h, "gpus", json_array());
    return h;
}
