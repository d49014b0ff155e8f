/* The IOReport channel mapper (src/sensors/ioreport_map.h), fed a channel
 * inventory as text: one "name<TAB>unit" per line, as macOS hands the
 * names and units over. Every name is classified, the plan built, and a
 * sample summed with counts taken from the input's bytes (negative and
 * huge ones included). No CoreFoundation: this runs everywhere. */
#include "fuzz.h"

#include "common/err.h"
#include "sensors/ioreport_map.h"

#define FUZZ_MAX_CH 512

int fuzz_ioreport(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    static struct ioreport_channel_desc ch[FUZZ_MAX_CH];
    size_t n = 0;
    char *p = text;
    while (*p && n < FUZZ_MAX_CH) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        char *tab = strchr(p, '\t');
        if (tab)
            *tab = '\0';
        ch[n].name = p;
        ch[n].unit = tab ? tab + 1 : "";
        n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    for (size_t i = 0; i < n; i++) {
        struct ioreport_class c;
        ioreport_classify(ch[i].name, &c);
        if (c.base < ch[i].name || c.base > ch[i].name + strlen(ch[i].name))
            fuzz_fail("channel %zu: base points outside its name", i);
        uint64_t nj;
        int rc = ioreport_unit_nj(ch[i].unit, &nj);
        if (rc != 0 && rc != JB_ERR_FORMAT)
            fuzz_fail("ioreport_unit_nj: %d", rc);
    }
    static struct ioreport_plan plan;
    char err[ERR_LEN] = "";
    int rc = ioreport_plan_build(ch, n, &plan, err);
    if (rc == 0) {
        if (plan.n_channels != n || plan.n_rails > IOREPORT_MAX_RAILS)
            fuzz_fail("plan of %zu channels, %zu rails", plan.n_channels, plan.n_rails);
        int64_t values[FUZZ_MAX_CH];
        for (size_t i = 0; i < n; i++) {
            /* Counts from the input: small, huge and negative ones. */
            uint64_t x = 0;
            for (size_t k = 0; k < 8; k++)
                x = x << 8 | (size ? data[(i * 8 + k) % size] : 0);
            values[i] = (int64_t)(x >> (data[i % size] & 63));
        }
        uint64_t rail_nj[IOREPORT_MAX_RAILS];
        unsigned char valid[IOREPORT_MAX_RAILS];
        ioreport_plan_sum(&plan, values, n, rail_nj, valid);
        for (size_t r = 0; r < plan.n_rails; r++)
            if (!memchr(plan.rails[r].channels, '\0', sizeof plan.rails[r].channels))
                fuzz_fail("rail %zu: channel list not NUL-terminated", r);
    } else if (!fuzz_rc_known(rc)) {
        fuzz_fail("unknown result %d", rc);
    }
    free(text);
    return rc;
}
