/*
 * ioreport_map.h — the plain-C half of Apple Silicon energy reading: which
 * IOReport "Energy Model" channels joulebench counts, in which domain, and
 * how their units convert. No CoreFoundation here, so this builds and is
 * tested on every platform; ioreport_darwin.c is the thin macOS layer that
 * feeds it channel names, units and values.
 *
 * What the Energy Model group looks like (public inventories of M1 Ultra,
 * M2 Ultra and M5 Max machines, and debug dumps of others):
 *   - "CPU Energy" (mJ) is the CPU roll-up. Ultra chips have one per die,
 *     "DIE_0_CPU Energy", "DIE_1_CPU Energy": those are summed.
 *   - Clusters, cores and their parts sit inside that roll-up: ECPU, PCPU,
 *     EACC_CPU, PACC0_CPU, MCPU0 (clusters), ECPU0, PACC0_CPU2, MCPU0_3,
 *     PACC_4 (cores), ECPM/PCPM/EACC_CPM (managers), *_SRAM, *DTL*
 *     telemetry; on Ultra chips with a DIE_<n>_ prefix. They are detail:
 *     counted (n_detail), never added to anything.
 *   - "GPU Energy" (nJ) is the GPU. "GPU", "GPU0" or "GPU0_0" (mJ) carry the
 *     same energy again and are used only when "GPU Energy" is absent.
 *   - "ANE", "ANE0", "ANE0_1" and "DRAM", "DRAM0", "DRAM0_1": one per block
 *     and die, summed. Sub-channels of a block (a name with anything else
 *     after the number) would be inside it and are not counted.
 *   - Everything else (ISP, AVE, MSR, AMCC, DCS, DISP, GPU SRAM, GPU CS,
 *     the µJ "PCIe Port N Energy"/"apciecN Energy" channels) is ignored.
 *
 * Units: each channel says its own ("mJ", "uJ"/"µJ", "nJ"). Counts stay
 * integers: a rail's value is the exact sum in nanojoules (uint64), and
 * joules appear only at the edge (× 1e-9), so 1 nJ is never lost to a mJ
 * channel beside it.
 *
 * Publication is uneven: "GPU Energy" moves about every 120 ms, while the
 * mJ channels (CPU, ANE, DRAM, GPU0) are published in batches, twice per
 * ~2 s at drifting spans of 0.4 to 1.7 s on the recorded machines. The
 * rails carry that as update_period_s, so the meter flags windows too short
 * for them (JB_ENERGY_SHORT) instead of reporting a zero or a spike.
 *
 * Ownership: struct ioreport_plan is plain data owned by the caller (it is
 * large: allocate it, don't put it on a thread's stack). Nothing here
 * allocates.
 */
#ifndef JB_SENSORS_IOREPORT_MAP_H
#define JB_SENSORS_IOREPORT_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "joulebench/joulebench.h"

#define IOREPORT_MAX_CHANNELS 2048 /* an M5 Max has 364, an M1 Ultra 321 */
#define IOREPORT_MAX_RAILS 4       /* cpu, gpu, ane, dram */

#define IOREPORT_FAST_PERIOD_S 0.12   /* "GPU Energy" */
#define IOREPORT_BATCHED_PERIOD_S 2.0 /* the mJ channels */

enum ioreport_role {
    IOREPORT_IGNORE = 0,
    IOREPORT_CPU_TOTAL,  /* "CPU Energy", "DIE_<n>_CPU Energy" */
    IOREPORT_CPU_DETAIL, /* clusters, cores, managers, SRAM, DTL: inside CPU_TOTAL */
    IOREPORT_GPU_TOTAL,  /* "GPU Energy" */
    IOREPORT_GPU_ALT,    /* "GPU", "GPU<n>", "GPU<n>_<m>": only without GPU_TOTAL */
    IOREPORT_ANE,        /* "ANE", "ANE<n>", "ANE<n>_<m>" */
    IOREPORT_DRAM,       /* "DRAM", "DRAM<n>", "DRAM<n>_<m>" */
};

struct ioreport_class {
    enum ioreport_role role;
    int die;          /* n of a "DIE_<n>_" prefix, -1 without one */
    const char *base; /* the name past that prefix (points into the name) */
};

/* Classifies one channel name. Pure; never fails. */
void ioreport_classify(const char *name, struct ioreport_class *out);

/* Exact nanojoules per count for a unit label: "mJ" 1000000, "uJ", "µJ"
 * (U+00B5) and "μJ" (U+03BC) 1000, "nJ" 1, "J" 1e9. JB_ERR_FORMAT for
 * anything else (the caller names the channel). */
int ioreport_unit_nj(const char *unit, uint64_t *nj_per_count);

struct ioreport_channel_desc {
    const char *name;
    const char *unit;
};

struct ioreport_rail {
    char name[16]; /* "cpu", "gpu", "ane", "dram" */
    enum jb_domain domain;
    double update_period_s;
    size_t n_channels;          /* channels summed into it */
    char channels[JB_TEXT_LEN]; /* "DIE_0_CPU Energy + DIE_1_CPU Energy" (cut if long) */
    int usable;                 /* 0: a channel's unit is unknown (reason says which) */
    char reason[JB_TEXT_LEN];
};

struct ioreport_plan {
    size_t n_channels;
    int8_t rail_of[IOREPORT_MAX_CHANNELS];          /* rail index, -1: not counted */
    uint64_t nj_per_count[IOREPORT_MAX_CHANNELS];   /* for counted channels */
    struct ioreport_rail rails[IOREPORT_MAX_RAILS]; /* cpu, gpu, ane, dram: those present */
    size_t n_rails;
    size_t n_detail;  /* CPU detail channels seen (not added) */
    size_t n_gpu_alt; /* GPU channels left out because "GPU Energy" is there */
    size_t n_ignored; /* everything else */
};

/* Decides, once per subscription, which channel goes into which rail.
 * JB_ERR_USAGE if there are more than IOREPORT_MAX_CHANNELS channels. */
int ioreport_plan_build(const struct ioreport_channel_desc *ch, size_t n,
                        struct ioreport_plan *plan, char *err);

/* Sums one sample: values[i] is channel i's cumulative count in its own
 * unit (n must equal plan->n_channels). rail_nj[r] gets rail r's exact sum
 * in nanojoules and rail_valid[r] 1, or 0 when the rail is unusable or a
 * value is negative or would overflow. Hot path: no allocation. */
void ioreport_plan_sum(const struct ioreport_plan *plan, const int64_t *values, size_t n,
                       uint64_t *rail_nj, unsigned char *rail_valid);

#endif
