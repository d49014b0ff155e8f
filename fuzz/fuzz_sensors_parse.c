/* The sysfs and procfs value parsers (src/sensors/parse.h): every one of
 * them on the same bytes, which need not be NUL-terminated (the fuzzer's
 * buffer is exactly size bytes, so a read past len is caught by ASan).
 * What they return on success is checked against their own contracts. */
#include "fuzz.h"

#include <math.h>

#include "common/err.h"
#include "sensors/parse.h"

int fuzz_sensors_parse(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    int worst = 0;
    int rc;
#define TAKE(r)                                                                                    \
    do {                                                                                           \
        rc = (r);                                                                                  \
        if (!fuzz_rc_known(rc))                                                                    \
            fuzz_fail("unknown result %d", rc);                                                    \
        if (rc < worst)                                                                            \
            worst = rc;                                                                            \
    } while (0)

    struct parse_term terms[8];
    size_t n = 99;
    TAKE(parse_perf_event(buf, size, terms, 8, &n));
    if (rc == 0) {
        if (n > 8)
            fuzz_fail("parse_perf_event: %zu terms of at most 8", n);
        for (size_t i = 0; i < n; i++)
            if (!memchr(terms[i].name, '\0', sizeof terms[i].name))
                fuzz_fail("term %zu's name is not NUL-terminated", i);
    }

    int word = -1;
    unsigned lo = 99, hi = 99;
    TAKE(parse_perf_format(buf, size, &word, &lo, &hi));
    if (rc == 0) {
        if (word < 0 || word > 2 || lo > hi || hi > 63)
            fuzz_fail("parse_perf_format: word %d bits %u..%u", word, lo, hi);
        uint64_t config = 0;
        uint64_t value = size ? data[0] : 0;
        rc = parse_perf_place(&config, lo, hi, value);
        if (rc == 0 &&
            ((config >> lo) & (hi - lo == 63 ? ~0ull : ((1ull << (hi - lo + 1)) - 1))) != value)
            fuzz_fail("parse_perf_place: %llu in bits %u..%u reads back otherwise",
                      (unsigned long long)value, lo, hi);
    }

    double scale = 0;
    TAKE(parse_perf_scale(buf, size, &scale));
    if (rc == 0 && !(isfinite(scale) && scale > 0))
        fuzz_fail("parse_perf_scale gave %g", scale);

    double jpu = 0;
    TAKE(parse_perf_unit(buf, size, &jpu));
    if (rc == 0 && !(jpu == 1 || jpu == 1e-3 || jpu == 1e-6))
        fuzz_fail("parse_perf_unit gave %g", jpu);

    int cpus[64];
    size_t ncpu = 99;
    TAKE(parse_cpulist(buf, size, cpus, 64, &ncpu));
    if (rc == 0) {
        if (ncpu > 64)
            fuzz_fail("parse_cpulist: %zu cpus of at most 64", ncpu);
        for (size_t i = 0; i < ncpu; i++)
            if (cpus[i] < 0 || cpus[i] > (1 << 20))
                fuzz_fail("parse_cpulist: cpu %d", cpus[i]);
    }

    char prefix[32];
    unsigned idx[2] = {0, 0};
    int depth = 0;
    TAKE(parse_rapl_zone(buf, size, prefix, sizeof prefix, idx, &depth));
    if (rc == 0 && ((depth != 1 && depth != 2) || !memchr(prefix, '\0', sizeof prefix)))
        fuzz_fail("parse_rapl_zone: depth %d", depth);

    uint64_t busy = 0, total = 0;
    int nstat = -1;
    TAKE(parse_proc_stat(buf, size, &busy, &total, &nstat));
    if (rc == 0 && (busy > total || nstat < 0))
        fuzz_fail("parse_proc_stat: busy %llu of %llu, %d cpus", (unsigned long long)busy,
                  (unsigned long long)total, nstat);
#undef TAKE
    return worst;
}
