/*
 * stats.h — the statistics the reports print: mean, sample standard
 * deviation, 95 % confidence interval of the mean (Student's t), percentiles
 * with linear interpolation between order statistics, least-squares slope.
 * Every function ignores NaN entries (a missing value is not a zero).
 */
#ifndef JB_COMMON_STATS_H
#define JB_COMMON_STATS_H

#include <stddef.h>

struct stats_summary {
    size_t n;              /* finite values counted */
    double mean, sd, ci95; /* ci95: half-width; NaN when n < 2 (sd too) */
    double min, max;
    double p50, p90, p99;
};

/* Fills out from x[0..n-1] (x is not modified). All NaN when no finite value. */
int stats_summarize(const double *x, size_t n, struct stats_summary *out);
double stats_mean(const double *x, size_t n);
double stats_sd(const double *x, size_t n);
/* Two-sided 97.5 % quantile of Student's t with df degrees of freedom. */
double stats_t975(size_t df);
/* p in [0, 100]; NaN when no finite value. */
double stats_percentile(const double *x, size_t n, double p);
/* Slope of the least-squares line through (x[i], y[i]); NaN if undefined. */
double stats_slope(const double *x, const double *y, size_t n);

#endif
