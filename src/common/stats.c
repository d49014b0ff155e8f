#include "common/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

double stats_mean(const double *x, size_t n)
{
    double s = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
            s += x[i];
            k++;
        }
    return k ? s / (double)k : NAN;
}

double stats_sd(const double *x, size_t n)
{
    double m = stats_mean(x, n);
    double s = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
            s += (x[i] - m) * (x[i] - m);
            k++;
        }
    return k >= 2 ? sqrt(s / (double)(k - 1)) : NAN;
}

double stats_t975(size_t df)
{
    /* Table for small samples (the usual case: 3-10 repetitions). Past 30
     * the quantile is linear in 1/df to within 0.001 between the usual
     * anchors (40, 60, 120 and the normal 1.960), so it is interpolated:
     * the value of the next anchor up would make every CI there too
     * narrow, by up to 1 % (df 41: 2.000 for 2.020). */
    static const double t[] = {NAN,   12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365,
                               2.306, 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                               2.120, 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
                               2.064, 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
    if (df < sizeof t / sizeof t[0])
        return t[df];
    static const double anchor_df[] = {30, 40, 60, 120, INFINITY};
    static const double anchor_t[] = {2.042, 2.021, 2.000, 1.980, 1.960};
    double inv = 1.0 / (double)df;
    size_t k = 1;
    while (k < 4 && (double)df > anchor_df[k])
        k++;
    double inv_lo = 1.0 / anchor_df[k - 1], inv_hi = 1.0 / anchor_df[k]; /* inv_hi < inv_lo */
    double f = (inv_lo - inv) / (inv_lo - inv_hi);
    return anchor_t[k - 1] + f * (anchor_t[k] - anchor_t[k - 1]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Copies the finite values into a sorted array; returns its length. */
static size_t sorted_finite(const double *x, size_t n, double **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    double *v = malloc(n * sizeof *v);
    if (!v)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]))
            v[k++] = x[i];
    qsort(v, k, sizeof *v, cmp_double);
    *out = v;
    return k;
}

static double pct_sorted(const double *v, size_t k, double p)
{
    if (k == 0)
        return NAN;
    if (p <= 0)
        return v[0];
    if (p >= 100)
        return v[k - 1];
    double pos = p / 100.0 * (double)(k - 1);
    size_t lo = (size_t)pos;
    double frac = pos - (double)lo;
    if (lo + 1 >= k)
        return v[k - 1];
    return v[lo] + frac * (v[lo + 1] - v[lo]);
}

double stats_percentile(const double *x, size_t n, double p)
{
    double *v;
    size_t k = sorted_finite(x, n, &v);
    double r = pct_sorted(v, k, p);
    free(v);
    return r;
}

int stats_summarize(const double *x, size_t n, struct stats_summary *out)
{
    memset(out, 0, sizeof *out);
    double *v;
    size_t k = sorted_finite(x, n, &v);
    if (n && !v)
        return JB_ERR_NOMEM;
    out->n = k;
    out->mean = stats_mean(x, n);
    out->sd = stats_sd(x, n);
    out->ci95 = k >= 2 ? stats_t975(k - 1) * out->sd / sqrt((double)k) : NAN;
    out->min = k ? v[0] : NAN;
    out->max = k ? v[k - 1] : NAN;
    out->p50 = pct_sorted(v, k, 50);
    out->p90 = pct_sorted(v, k, 90);
    out->p99 = pct_sorted(v, k, 99);
    free(v);
    return 0;
}

double stats_slope(const double *x, const double *y, size_t n)
{
    double sx = 0, sy = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) {
            sx += x[i];
            sy += y[i];
            k++;
        }
    if (k < 2)
        return NAN;
    double mx = sx / (double)k, my = sy / (double)k, sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) {
            sxx += (x[i] - mx) * (x[i] - mx);
            sxy += (x[i] - mx) * (y[i] - my);
        }
    return sxx > 0 ? sxy / sxx : NAN;
}
