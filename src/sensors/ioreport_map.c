/*
 * ioreport_map.c — IOReport "Energy Model" channels to joulebench domains,
 * and their units to exact nanojoules (see ioreport_map.h).
 */
#include "sensors/ioreport_map.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/str.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Skips a run of digits; returns NULL if there is none. */
static const char *digits(const char *s)
{
    if (!is_digit(*s))
        return NULL;
    while (is_digit(*s))
        s++;
    return s;
}

/* A block's own channel: prefix, prefix<n> or prefix<n>_<m> (die), and
 * nothing after it ("ANE0_SRAM" or "GPU SRAM0" are parts, not the block). */
static int is_block(const char *s, const char *prefix)
{
    size_t len = strlen(prefix);
    if (strncmp(s, prefix, len) != 0)
        return 0;
    s += len;
    if (*s == '\0')
        return 1;
    s = digits(s);
    if (!s)
        return 0;
    if (*s == '\0')
        return 1;
    if (*s != '_')
        return 0;
    s = digits(s + 1);
    return s && *s == '\0';
}

/* The CPU's clusters, cores, managers and their SRAM/DTL telemetry: every
 * name that starts with one of the cluster stems Apple uses. */
static int is_cpu_detail(const char *s)
{
    static const char *const stems[] = {"ECPU", "PCPU", "MCPU", "EACC",
                                        "PACC", "ECPM", "PCPM", "MCPM"};
    for (size_t i = 0; i < sizeof stems / sizeof stems[0]; i++)
        if (strncmp(s, stems[i], 4) == 0)
            return 1;
    return 0;
}

void ioreport_classify(const char *name, struct ioreport_class *out)
{
    out->die = -1;
    out->base = name;
    if (strncmp(name, "DIE_", 4) == 0) {
        const char *end = digits(name + 4);
        if (end && *end == '_' && end[1] != '\0') {
            int die = 0;
            for (const char *p = name + 4; p < end && die < 1000; p++)
                die = die * 10 + (*p - '0');
            out->die = die;
            out->base = end + 1;
        }
    }
    const char *b = out->base;
    if (strcmp(b, "CPU Energy") == 0)
        out->role = IOREPORT_CPU_TOTAL;
    else if (strcmp(b, "GPU Energy") == 0)
        out->role = IOREPORT_GPU_TOTAL;
    else if (is_block(b, "GPU"))
        out->role = IOREPORT_GPU_ALT;
    else if (is_block(b, "ANE"))
        out->role = IOREPORT_ANE;
    else if (is_block(b, "DRAM"))
        out->role = IOREPORT_DRAM;
    else if (is_cpu_detail(b))
        out->role = IOREPORT_CPU_DETAIL;
    else
        out->role = IOREPORT_IGNORE;
}

int ioreport_unit_nj(const char *unit, uint64_t *nj_per_count)
{
    static const struct {
        const char *label;
        uint64_t nj;
    } units[] = {
        {"nJ", 1},           {"uJ", 1000},      {"\xc2\xb5J", 1000}, /* U+00B5 MICRO SIGN */
        {"\xce\xbcJ", 1000}, /* U+03BC GREEK SMALL LETTER MU */
        {"mJ", 1000000},     {"J", 1000000000},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (unit && strcmp(unit, units[i].label) == 0) {
            *nj_per_count = units[i].nj;
            return 0;
        }
    }
    return JB_ERR_FORMAT;
}

static const struct {
    const char *name;
    enum jb_domain domain;
} rail_defs[IOREPORT_MAX_RAILS] = {
    {"cpu", JB_DOMAIN_CPU},
    {"gpu", JB_DOMAIN_GPU},
    {"ane", JB_DOMAIN_ANE},
    {"dram", JB_DOMAIN_DRAM},
};

/* Which of rail_defs a role feeds, given whether "GPU Energy" exists. */
static int rail_def_of(enum ioreport_role role, int have_gpu_total)
{
    switch (role) {
    case IOREPORT_CPU_TOTAL:
        return 0;
    case IOREPORT_GPU_TOTAL:
        return 1;
    case IOREPORT_GPU_ALT:
        return have_gpu_total ? -1 : 1;
    case IOREPORT_ANE:
        return 2;
    case IOREPORT_DRAM:
        return 3;
    default:
        return -1;
    }
}

/* Two passes: the first learns whether "GPU Energy" exists (it decides
 * whether GPU0 and friends count), the second assigns channels to rails in
 * the fixed order cpu, gpu, ane, dram. A channel with a unit joulebench
 * cannot convert makes its whole rail unusable: a sum without it would be
 * a wrong number, not a missing one. */
int ioreport_plan_build(const struct ioreport_channel_desc *ch, size_t n,
                        struct ioreport_plan *plan, char *err)
{
    memset(plan, 0, sizeof *plan);
    if (n > IOREPORT_MAX_CHANNELS)
        return err_setf(err, JB_ERR_USAGE,
                        "IOReport Energy Model has %zu channels, more than the %d joulebench reads",
                        n, IOREPORT_MAX_CHANNELS);
    plan->n_channels = n;

    int have_gpu_total = 0;
    for (size_t i = 0; i < n; i++) {
        struct ioreport_class c;
        ioreport_classify(ch[i].name, &c);
        if (c.role == IOREPORT_GPU_TOTAL)
            have_gpu_total = 1;
    }

    int rail_index[IOREPORT_MAX_RAILS] = {-1, -1, -1, -1};
    int used[IOREPORT_MAX_RAILS] = {0};
    for (size_t i = 0; i < n; i++) {
        struct ioreport_class c;
        ioreport_classify(ch[i].name, &c);
        int d = rail_def_of(c.role, have_gpu_total);
        if (d >= 0)
            used[d] = 1;
    }
    for (int d = 0; d < IOREPORT_MAX_RAILS; d++) {
        if (!used[d])
            continue;
        struct ioreport_rail *r = &plan->rails[plan->n_rails];
        rail_index[d] = (int)plan->n_rails++;
        str_lcpy(r->name, rail_defs[d].name, sizeof r->name);
        r->domain = rail_defs[d].domain;
        r->usable = 1;
        r->update_period_s =
            (d == 1 && have_gpu_total) ? IOREPORT_FAST_PERIOD_S : IOREPORT_BATCHED_PERIOD_S;
    }

    for (size_t i = 0; i < n; i++) {
        struct ioreport_class c;
        ioreport_classify(ch[i].name, &c);
        plan->rail_of[i] = -1;
        int d = rail_def_of(c.role, have_gpu_total);
        if (d < 0) {
            if (c.role == IOREPORT_CPU_DETAIL)
                plan->n_detail++;
            else if (c.role == IOREPORT_GPU_ALT)
                plan->n_gpu_alt++;
            else
                plan->n_ignored++;
            continue;
        }
        struct ioreport_rail *r = &plan->rails[rail_index[d]];
        plan->rail_of[i] = (int8_t)rail_index[d];
        if (r->n_channels++)
            str_lcat(r->channels, " + ", sizeof r->channels);
        str_lcat(r->channels, ch[i].name, sizeof r->channels);
        if (ioreport_unit_nj(ch[i].unit, &plan->nj_per_count[i]) != 0 && r->usable) {
            r->usable = 0;
            snprintf(r->reason, sizeof r->reason,
                     "IOReport channel \"%s\" has the unit \"%s\", which joulebench cannot "
                     "convert to joules",
                     ch[i].name, ch[i].unit ? ch[i].unit : "(none)");
        }
    }
    return 0;
}

void ioreport_plan_sum(const struct ioreport_plan *plan, const int64_t *values, size_t n,
                       uint64_t *rail_nj, unsigned char *rail_valid)
{
    for (size_t r = 0; r < plan->n_rails; r++) {
        rail_nj[r] = 0;
        rail_valid[r] = (unsigned char)(plan->rails[r].usable && n == plan->n_channels);
    }
    if (n != plan->n_channels)
        return;
    for (size_t i = 0; i < n; i++) {
        int r = plan->rail_of[i];
        if (r < 0 || !rail_valid[r])
            continue;
        if (values[i] < 0) {
            rail_valid[r] = 0;
            continue;
        }
        uint64_t v = (uint64_t)values[i];
        uint64_t scale = plan->nj_per_count[i];
        if (v > UINT64_MAX / scale || v * scale > UINT64_MAX - rail_nj[r]) {
            rail_valid[r] = 0;
            continue;
        }
        rail_nj[r] += v * scale;
    }
}
