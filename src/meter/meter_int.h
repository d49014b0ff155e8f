/*
 * meter_int.h — the meter's internals shared by its files: a point (one
 * reading of every sensor, cumulative joules), the timeline of points, and
 * the arithmetic that turns two points into a struct jb_energy.
 *
 * Ownership: the meter owns its timeline (timeline_init/timeline_free).
 * None of this locks: the meter calls it under its mutex.
 */
#ifndef JB_METER_METER_INT_H
#define JB_METER_METER_INT_H

#include <stddef.h>

#include "joulebench/joulebench.h"

/* Cumulative joules of every sensor at one instant. */
struct meter_point {
    double t_s;
    unsigned flags;                  /* JB_ENERGY_GAP when interpolated across a gap */
    double j[JB_MAX_SENSORS];        /* (n_sensors) joules since the first reading */
    unsigned char v[JB_MAX_SENSORS]; /* (n_sensors) 1: j[i] is a real reading */
};

/* Samples in time order, struct-of-arrays so a sample costs n × 9 bytes. */
struct meter_timeline {
    size_t n;           /* sensors per sample */
    size_t len;         /* samples held */
    size_t cap;         /* samples allocated */
    size_t max;         /* thin past this many */
    double *t;          /* (cap) seconds, jb_clock_s() */
    double *j;          /* (cap, n) */
    unsigned char *v;   /* (cap, n) */
    unsigned char *pin; /* (cap) 1: a mark or window edge, never thinned */
    /* 1: sensor i's counter moves in steps, and a sample where its joules
     * change is kept through thinning too (it places the step). */
    unsigned char keep_steps[JB_MAX_SENSORS];
};

int timeline_init(struct meter_timeline *tl, size_t n_sensors, size_t max);
void timeline_free(struct meter_timeline *tl);
/* Appends a copy of p. Growth doubles the arrays (amortised: no allocation
 * on most calls); at max the timeline is thinned instead. Out of memory
 * drops the sample (returns JB_ERR_NOMEM): windows keep their own points. */
int timeline_append(struct meter_timeline *tl, const struct meter_point *p, int pin);
/* The point at t: a copy of the sample at t, or linear interpolation of the
 * two around it (flags |= JB_ENERGY_GAP when they are more than gap_s
 * apart). JB_ERR_USAGE when t is outside the timeline. */
int timeline_at(const struct meter_timeline *tl, double t, double gap_s, struct meter_point *out);

/* Sensor i's cumulative joules at t for a counter that publishes in steps
 * (NVML's energy counter moves every ~100 ms): linear between the
 * counter's own updates around t, each placed at the first sample that
 * showed it, rather than the staircase of readings, whose value at an edge
 * is short by up to one whole step. With updates on one side of t only,
 * the line through the nearest there and the next at least gap_s from it
 * (two updates caught a few ms apart would give a slope of kilowatts).
 * Looks no further than span_s from t or from those updates.
 * JB_ERR_NOTFOUND when there is no such pair (the caller keeps the
 * readings then). */
int timeline_stepped_at(const struct meter_timeline *tl, size_t i, double t, double span_s,
                        double gap_s, double *out);

/* Per-sensor facts the arithmetic needs. */
struct meter_sensor_view {
    const struct jb_sensor_info *info;
    unsigned char valid; /* the meter's verdict for this interval */
};

/* Fills out from points a (begin) and b (end): per-sensor joules, domain
 * sums and the total, without counting a joule twice (see jb_energy).
 * flags are added to out->flags. */
void meter_fill_energy(const struct meter_sensor_view *views, size_t n, const struct meter_point *a,
                       const struct meter_point *b, unsigned flags, struct jb_energy *out);

#endif
