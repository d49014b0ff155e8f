#include <stdarg.h>
#include <stdio.h>

#include "cli/cli.h"
#include "common/str.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "joulebench %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'joulebench %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

int cli_double(const char *cmd, const char *opt, const char *s, double min, double max, double *out)
{
    double v;
    if (str_to_double(s, (size_t)-1, &v) || v < min || v > max)
        return cli_usage_error(cmd, "%s takes a number from %g to %g, not '%s'", opt, min, max, s);
    *out = v;
    return 0;
}

int cli_int(const char *cmd, const char *opt, const char *s, int min, int max, int *out)
{
    if (str_to_int_range(s, min, max, out))
        return cli_usage_error(cmd, "%s takes a whole number from %d to %d, not '%s'", opt, min,
                               max, s);
    return 0;
}
