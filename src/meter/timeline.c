#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "meter/meter_int.h"

#define TIMELINE_FIRST_CAP 1024

int timeline_init(struct meter_timeline *tl, size_t n_sensors, size_t max)
{
    memset(tl, 0, sizeof *tl);
    tl->n = n_sensors;
    tl->max = max < 16 ? 16 : max;
    return 0;
}

void timeline_free(struct meter_timeline *tl)
{
    free(tl->t);
    free(tl->j);
    free(tl->v);
    free(tl->pin);
    memset(tl, 0, sizeof *tl);
}

static int grow(struct meter_timeline *tl, size_t cap)
{
    size_t n = tl->n ? tl->n : 1;
    double *t = realloc(tl->t, cap * sizeof *t);
    if (t)
        tl->t = t;
    double *j = realloc(tl->j, cap * n * sizeof *j);
    if (j)
        tl->j = j;
    unsigned char *v = realloc(tl->v, cap * n);
    if (v)
        tl->v = v;
    unsigned char *pin = realloc(tl->pin, cap);
    if (pin)
        tl->pin = pin;
    if (!t || !j || !v || !pin)
        return JB_ERR_NOMEM; /* what grew stays grown; cap is unchanged */
    tl->cap = cap;
    return 0;
}

/* Drops every other sample of the older half that is neither pinned, nor
 * the first, nor a step of a stepped counter (a sample where its joules
 * change: dropping it would place the step at a later sample, in the older
 * half alone, and bias every interval that reaches back there). Keeps the
 * rest in order: the newer half, where the work in progress lies, keeps the
 * sampler's full rate, and the past gets coarser with each pass. Returns
 * how many went. */
static size_t thin(struct meter_timeline *tl)
{
    size_t n = tl->n, w = 0, drop = 0, half = tl->len / 2;
    double last_j[JB_MAX_SENSORS];
    unsigned char have[JB_MAX_SENSORS] = {0};
    int skip = 0;
    for (size_t r = 0; r < tl->len; r++) {
        int step = 0;
        for (size_t i = 0; i < n && i < JB_MAX_SENSORS; i++) {
            if (!tl->v[r * n + i])
                continue;
            double j = tl->j[r * n + i];
            if (tl->keep_steps[i] && have[i] && j != last_j[i])
                step = 1;
            last_j[i] = j;
            have[i] = 1;
        }
        int may_go = r != 0 && r < half && !tl->pin[r] && !step;
        int keep = !may_go || !skip;
        if (may_go)
            skip = !skip;
        if (!keep) {
            drop++;
            continue;
        }
        if (w != r) {
            tl->t[w] = tl->t[r];
            tl->pin[w] = tl->pin[r];
            memcpy(tl->j + w * n, tl->j + r * n, n * sizeof *tl->j);
            memcpy(tl->v + w * n, tl->v + r * n, n);
        }
        w++;
    }
    tl->len = w;
    return drop;
}

int timeline_append(struct meter_timeline *tl, const struct meter_point *p, int pin)
{
    if (tl->len == tl->cap) {
        size_t want = tl->cap ? tl->cap * 2 : TIMELINE_FIRST_CAP;
        if (tl->cap >= tl->max) {
            /* Full: thin, and grow (best effort) only when marks and
             * window edges hold most of the older half (thinning frees
             * a quarter when nothing there is pinned). */
            size_t before = tl->len;
            if (thin(tl) < before / 8)
                (void)grow(tl, tl->cap * 2);
        } else {
            if (want > tl->max)
                want = tl->max;
            if (grow(tl, want))
                return JB_ERR_NOMEM;
        }
        if (tl->len == tl->cap)
            return JB_ERR_NOMEM;
    }
    size_t i = tl->len++, n = tl->n;
    tl->t[i] = p->t_s;
    tl->pin[i] = pin ? 1 : 0;
    memcpy(tl->j + i * n, p->j, n * sizeof *tl->j);
    memcpy(tl->v + i * n, p->v, n);
    return 0;
}

int timeline_at(const struct meter_timeline *tl, double t, double gap_s, struct meter_point *out)
{
    size_t n = tl->n;
    if (tl->len == 0 || !(t >= tl->t[0]) || t > tl->t[tl->len - 1])
        return JB_ERR_USAGE;
    /* First sample at or after t. */
    size_t lo = 0, hi = tl->len - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tl->t[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    out->t_s = t;
    out->flags = 0;
    if (tl->t[lo] == t) {
        memcpy(out->j, tl->j + lo * n, n * sizeof *out->j);
        memcpy(out->v, tl->v + lo * n, n);
        return 0;
    }
    size_t a = lo - 1, b = lo; /* lo > 0: t > t[0] here */
    double span = tl->t[b] - tl->t[a];
    double f = span > 0 ? (t - tl->t[a]) / span : 0.0;
    if (span > gap_s)
        out->flags |= JB_ENERGY_GAP;
    for (size_t i = 0; i < n; i++) {
        double ja = tl->j[a * n + i], jb = tl->j[b * n + i];
        out->v[i] = tl->v[a * n + i] && tl->v[b * n + i];
        out->j[i] = out->v[i] ? ja + f * (jb - ja) : NAN;
    }
    return 0;
}

/* Updates: a sample whose joules differ from the valid sample before it,
 * placed at that sample, when the sample is a placed read (v 1, not 2: a
 * held value, or a read whose step may be old). */

/* The index of the update at or before sample k, stopping at samples
 * earlier than t_min; -1 if none. */
static long update_before(const struct meter_timeline *tl, size_t i, long k, double t_min)
{
    size_t n = tl->n;
    for (; k > 0 && tl->t[k] >= t_min; k--) {
        if (!tl->v[(size_t)k * n + i])
            continue;
        long p = k - 1;
        while (p >= 0 && !tl->v[(size_t)p * n + i])
            p--;
        if (p < 0)
            return -1;
        if (tl->v[(size_t)k * n + i] == 1 && tl->j[(size_t)k * n + i] != tl->j[(size_t)p * n + i])
            return k;
        k = p + 1; /* the loop's k-- lands on p */
    }
    return -1;
}

/* The first update after sample k, up to samples later than t_max; -1 if
 * none. */
static long update_after(const struct meter_timeline *tl, size_t i, size_t k, double t_max)
{
    size_t n = tl->n;
    long prev = -1;
    for (size_t q = k; q < tl->len && tl->t[q] <= t_max; q++) {
        if (!tl->v[q * n + i])
            continue;
        if (prev >= 0 && q > k && tl->v[q * n + i] == 1 &&
            tl->j[q * n + i] != tl->j[(size_t)prev * n + i])
            return (long)q;
        prev = (long)q;
    }
    return -1;
}

/* The line through two updates (samples p and q), at t. */
static double line_at(const struct meter_timeline *tl, size_t i, long p, long q, double t)
{
    double tp = tl->t[p], jp = tl->j[(size_t)p * tl->n + i];
    double tq = tl->t[q], jq = tl->j[(size_t)q * tl->n + i];
    return jp + (t - tp) / (tq - tp) * (jq - jp);
}

int timeline_stepped_at(const struct meter_timeline *tl, size_t i, double t, double span_s,
                        double gap_s, double *out)
{
    if (tl->len < 2 || i >= tl->n || !(t >= tl->t[0]) || t > tl->t[tl->len - 1])
        return JB_ERR_NOTFOUND;
    /* The last sample at or before t. */
    size_t lo = 0, hi = tl->len - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (tl->t[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    long a = update_before(tl, i, (long)lo, t - span_s);
    if (a >= 0 && tl->t[a] == t) { /* t is the update itself */
        *out = tl->j[(size_t)a * tl->n + i];
        return 0;
    }
    long b = update_after(tl, i, lo, t + span_s);
    if (a >= 0 && b >= 0) {
        *out = line_at(tl, i, a, b, t);
        return 0;
    }
    /* An update on one side only: the line through the two nearest on
     * that side. Before the first update the sampler saw (a window that
     * begins as the meter opens), and after the last one (no sampler to
     * wait for the next). */
    if (b >= 0) {
        long c = update_after(tl, i, (size_t)b, tl->t[b] + span_s);
        while (c >= 0 && tl->t[c] - tl->t[b] < gap_s)
            c = update_after(tl, i, (size_t)c, tl->t[b] + span_s);
        if (c >= 0) {
            *out = line_at(tl, i, b, c, t);
            return 0;
        }
    } else if (a > 0) {
        long z = update_before(tl, i, a - 1, tl->t[a] - span_s);
        while (z > 0 && tl->t[a] - tl->t[z] < gap_s)
            z = update_before(tl, i, z - 1, tl->t[a] - span_s);
        if (z >= 0 && tl->t[a] - tl->t[z] >= gap_s) {
            *out = line_at(tl, i, z, a, t);
            return 0;
        }
    }
    return JB_ERR_NOTFOUND;
}

void meter_fill_energy(const struct meter_sensor_view *views, size_t n, const struct meter_point *a,
                       const struct meter_point *b, unsigned flags, struct jb_energy *out)
{
    memset(out, 0, sizeof *out);
    out->t_begin_s = a->t_s;
    out->t_end_s = b->t_s;
    out->duration_s = b->t_s - a->t_s;
    out->n_sensors = n;
    out->flags = flags | a->flags | b->flags;
    for (size_t i = 0; i < JB_MAX_SENSORS; i++)
        out->sensor_j[i] = NAN;
    for (size_t i = 0; i < n; i++) {
        if (!views[i].valid || !views[i].info->used)
            continue;
        double d = b->j[i] - a->j[i];
        out->sensor_j[i] = d > 0 ? d : 0.0; /* cumulative joules never fall */
        out->sensor_valid[i] = 1;
    }

    unsigned used_count[JB_DOMAIN_COUNT] = {0}, valid_count[JB_DOMAIN_COUNT] = {0};
    double sum[JB_DOMAIN_COUNT] = {0};
    unsigned top_used = 0, top_valid = 0, sys_used = 0, sys_valid = 0;
    double top_j = 0, sys_j = 0;
    int top_est = 0, sys_est = 0;
    for (size_t i = 0; i < n; i++) {
        const struct jb_sensor_info *info = views[i].info;
        if (!info->used)
            continue;
        enum jb_domain d = info->domain;
        int parent = info->parent;
        int nested_same = parent >= 0 && (size_t)parent < n && views[parent].info->used &&
                          views[parent].info->domain == d;
        int valid = out->sensor_valid[i];
        if (!nested_same) {
            used_count[d]++;
            if (valid) {
                valid_count[d]++;
                sum[d] += out->sensor_j[i];
            }
            if (info->estimated)
                out->domain_estimated |= 1u << d;
        }
        int top = parent < 0 || (size_t)parent >= n || !views[parent].info->used;
        if (!top)
            continue;
        if (d == JB_DOMAIN_SYSTEM) {
            sys_used++;
            sys_valid += valid ? 1u : 0u;
            sys_j += valid ? out->sensor_j[i] : 0.0;
            sys_est |= info->estimated;
        } else if (d != JB_DOMAIN_CORES && d != JB_DOMAIN_UNCORE) {
            top_used++;
            top_valid += valid ? 1u : 0u;
            top_j += valid ? out->sensor_j[i] : 0.0;
            top_est |= info->estimated;
        }
    }
    for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
        if (used_count[d] && valid_count[d] == used_count[d]) {
            out->domain_valid |= 1u << d;
            out->domain_j[d] = sum[d];
        } else {
            out->domain_j[d] = NAN;
        }
    }
    if (top_used) {
        out->total_valid = top_valid == top_used;
        out->total_j = out->total_valid ? top_j : NAN;
        out->total_estimated = top_est;
    } else if (sys_used) {
        out->total_valid = sys_valid == sys_used;
        out->total_j = out->total_valid ? sys_j : NAN;
        out->total_estimated = sys_est;
    } else {
        out->total_valid = 0;
        out->total_j = NAN;
    }
    /* A window shorter than a sensor's refresh period sees at most one
     * update of it: say so. */
    for (size_t i = 0; i < n; i++)
        if (out->sensor_valid[i] && views[i].info->update_period_s > 0 &&
            out->duration_s < views[i].info->update_period_s)
            out->flags |= JB_ENERGY_SHORT;
}
