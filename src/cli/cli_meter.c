/*
 * cli_meter.c — the options every measuring command shares, parsed once.
 */
#include <string.h>

#include "cli/cli.h"
#include "common/str.h"

const char cli_meter_help[] =
    "  --interval-ms N   sample the sensors every N ms (1 to 60000; default 20, 50 Hz)\n"
    "  --baseline S      first measure S seconds of idle power (default 0: none); net\n"
    "                    joules are then gross joules minus idle power x duration\n"
    "  --cpu-watts W     full-load CPU power for the CPU-time estimate used where no\n"
    "                    CPU energy sensor can be read (default: a guess of 15 W +\n"
    "                    4 W per logical CPU, at most 400 W)\n";

void cli_meter_opts_init(struct cli_meter_opts *o, double default_baseline_s)
{
    o->interval_ms = 0;
    o->baseline_s = default_baseline_s;
    o->cpu_watts = 0;
}

/* Matches "--name" (value in the next argument) or "--name=value". */
static int match(const char *arg, const char *name, int argc, char **argv, int *i,
                 const char **value)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        *value = NULL;
    }
    return 1;
}

int cli_meter_arg(const char *cmd, int argc, char **argv, int *i, struct cli_meter_opts *o)
{
    const char *arg = argv[*i], *v = NULL;
    if (match(arg, "--interval-ms", argc, argv, i, &v)) {
        if (!v)
            return cli_usage_error(cmd, "--interval-ms needs a number of milliseconds");
        return cli_double(cmd, "--interval-ms", v, 1, 60000, &o->interval_ms) ? 2 : 1;
    }
    if (match(arg, "--baseline", argc, argv, i, &v)) {
        if (!v)
            return cli_usage_error(cmd, "--baseline needs a number of seconds");
        return cli_double(cmd, "--baseline", v, 0, 3600, &o->baseline_s) ? 2 : 1;
    }
    if (match(arg, "--cpu-watts", argc, argv, i, &v)) {
        if (!v)
            return cli_usage_error(cmd, "--cpu-watts needs a number of watts");
        return cli_double(cmd, "--cpu-watts", v, 0.1, 100000, &o->cpu_watts) ? 2 : 1;
    }
    return 0;
}

void cli_meter_apply(const struct cli_meter_opts *o, struct jb_meter_options *mo)
{
    mo->interval_ms = o->interval_ms;
    mo->cpu_watts = o->cpu_watts;
}

size_t cli_energy_flag_names(unsigned flags, const char **names, size_t max)
{
    static const struct {
        unsigned flag;
        const char *name;
    } table[] = {
        {JB_ENERGY_WRAPPED, "counter_wrap"},    {JB_ENERGY_RESET, "counter_reset"},
        {JB_ENERGY_SENSOR_LOST, "sensor_lost"}, {JB_ENERGY_SHORT, "short_window"},
        {JB_ENERGY_GAP, "interpolated"},
    };
    size_t n = 0;
    for (size_t k = 0; k < sizeof table / sizeof table[0] && n < max; k++)
        if (flags & table[k].flag)
            names[n++] = table[k].name;
    return n;
}
