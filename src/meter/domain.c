#include <string.h>

#include "joulebench/joulebench.h"

static const char *const domain_names[JB_DOMAIN_COUNT] = {
    "cpu", "cores", "uncore", "dram", "gpu", "ane", "soc", "system",
};

const char *jb_domain_name(enum jb_domain d)
{
    if ((unsigned)d >= JB_DOMAIN_COUNT)
        return "unknown";
    return domain_names[d];
}

unsigned jb_domains_in_total(unsigned domains)
{
    unsigned sys = 1u << JB_DOMAIN_SYSTEM;
    domains &= ~((1u << JB_DOMAIN_CORES) | (1u << JB_DOMAIN_UNCORE));
    return domains & ~sys ? domains & ~sys : domains;
}

int jb_domain_from_name(const char *name)
{
    for (int i = 0; i < JB_DOMAIN_COUNT; i++)
        if (strcmp(domain_names[i], name) == 0)
            return i;
    return -1;
}
