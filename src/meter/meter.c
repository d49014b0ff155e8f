/*
 * meter.c — the energy meter: opens the sensors, runs the sampler thread,
 * turns raw readings into cumulative joules (wrap-corrected counters,
 * integrated power), and answers windows, marks and intervals.
 *
 * One mutex guards everything that changes (sensor state, timeline,
 * windows); sensor reads happen under it, so a sensor is never read by two
 * threads at once. The sampler's loop allocates nothing except when the
 * timeline doubles.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "meter/meter_int.h"
#include "sensors/sensor.h"

#define METER_DEFAULT_INTERVAL_MS 20.0
#define METER_DEFAULT_TIMELINE_MAX ((size_t)1 << 17)
#define METER_TIMELINE_BYTES ((size_t)16 << 20) /* the default's memory bound */
/* A counter step implying more than this is a reset (or garbage), not
 * energy: no single sensor (a whole server's psys included) draws 20 kW. */
#define METER_PLAUSIBLE_W 20000.0
#define METER_EVENTS 16 /* resets and wraps remembered per sensor */
#define METER_MAX_WINDOWS 4096
/* Consecutive failed reads after which a sensor is lost for good. A single
 * failure (a busy driver, an interrupted read) only leaves a gap: the next
 * good reading of a cumulative counter accounts for the joules in between. */
#define METER_LOST_AFTER_FAILS 3
/* A counter that publishes this far apart or more (NVML's, every ~100 ms)
 * is read between its updates at window edges, not as a staircase. */
#define METER_STEPPED_S 0.05
/* The sampler's CPU time per sensor, as a share of one core: a sensor whose
 * read costs more (NVML's took 3.9 ms on an H100 machine: 20 % of a core
 * at 50 Hz) is read every few ticks instead, at least once a second.
 * Window edges and marks still read every sensor. */
#define METER_READ_BUDGET 0.02

struct span {
    double t0_s, t1_s;
};

/* The meter's view of one sensor; every field after s is guarded by the
 * meter's lock. */
struct msensor {
    struct sensor *s;
    int have_prev;
    uint64_t prev_raw;
    double prev_power_w;
    double prev_t_s;
    double cum_j;
    unsigned every; /* the sampler reads it every this many ticks (>= 1) */
    unsigned tick;  /* ticks since its last sampler read */
    /* A dear counter that publishes in steps is read in phase with them
     * (see phase_due): */
    int phased;          /* 1: read on the tick after each expected step */
    int hunting;         /* reading every tick until a step shows */
    double cycle_s;      /* time between phased reads: a whole number of periods */
    double due_s;        /* the next phased read: at the first tick from here */
    double hunt_since_s; /* when the hunt began */
    double retry_s;      /* after a hunt that found no step: when to hunt again */
    double read_s;       /* when the sampler last read it (the sweep's start) */
    double tick_j;       /* its joules at the sampler's last read */
    unsigned cycles;     /* phased reads since the lock, for the check reads */
    int fails;           /* consecutive failed reads */
    int lost;
    double lost_after_s; /* time of the last good reading */
    char lost_reason[JB_TEXT_LEN];
    struct span resets[METER_EVENTS]; /* ring: the reading before and the one that saw it */
    size_t n_resets;                  /* ever (ring index is n % METER_EVENTS) */
    double wraps[METER_EVENTS];       /* ring of the readings that saw a wrap */
    size_t n_wraps;
};

struct window {
    char *name;
    struct meter_point begin;
    struct window *next;
};

struct jb_meter {
    struct sensor_set set;
    struct msensor ms[JB_MAX_SENSORS];
    size_t n;
    double interval_s; /* < 0: no sampler */
    double t_open_s;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int running;
    int stop;
    int users;            /* threads inside an end or a baseline that may wait, unlocked */
    double sampler_cpu_s; /* total, once the thread has ended */

    struct meter_timeline tl;
    struct window *windows;
    size_t n_windows;
    struct meter_point scratch; /* the sampler's point, reused every tick */
};

void jb_meter_options_init(struct jb_meter_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

/* Folds one reading into the sensor's cumulative joules. A counter that
 * steps back within its range wrapped; one that steps back otherwise, or
 * moves further than any real load could in the time, was reset (or read
 * garbage): the step is not counted and intervals across it are invalid. */
static void fold(struct msensor *ms, const struct sensor_reading *r, double t)
{
    struct sensor *s = ms->s;
    if (!ms->have_prev) {
        ms->have_prev = 1;
        ms->prev_raw = r->raw;
        ms->prev_power_w = r->power_w;
        ms->prev_t_s = t;
        return;
    }
    double dt = t - ms->prev_t_s;
    if (s->info.kind == JB_SENSOR_POWER) {
        if (dt > 0)
            ms->cum_j += 0.5 * (ms->prev_power_w + r->power_w) * dt;
        ms->prev_power_w = r->power_w;
        ms->prev_t_s = t;
        return;
    }
    double limit_j = METER_PLAUSIBLE_W * (dt > 1e-3 ? dt : 1e-3);
    uint64_t prev = ms->prev_raw, cur = r->raw, range = s->raw_range;
    int wrapped = 0, reset = 0;
    double dj = 0;
    if (cur >= prev) {
        dj = (double)(cur - prev) * s->joules_per_unit;
    } else if (range && prev <= range) {
        dj = (double)(range - prev + cur) * s->joules_per_unit;
        wrapped = 1;
    } else {
        reset = 1;
    }
    if (!reset && dj > limit_j)
        reset = 1;
    if (reset) {
        struct span *sp = &ms->resets[ms->n_resets++ % METER_EVENTS];
        sp->t0_s = ms->prev_t_s;
        sp->t1_s = t;
    } else {
        ms->cum_j += dj;
        if (wrapped)
            ms->wraps[ms->n_wraps++ % METER_EVENTS] = t;
    }
    ms->prev_raw = cur;
    ms->prev_t_s = t;
}

/* What a sweep reads: every used sensor (window edges, the first reading),
 * those due on a sampler tick, or all but the dear ones, which hold their
 * last reading (marks, and "until now" readings: these happen while the
 * work runs, at the first token say, where a 4 ms NVML read would stall
 * it). */
enum { SWEEP_ALL = 0, SWEEP_TICK = 1, SWEEP_CHEAP = 2 };

/* Whether the sampler reads a phased counter on this tick (at t0). Such a
 * counter publishes every period P (NVML: ~100 ms) and one read costs too
 * much to read it every tick. Read at random ticks, a step can be a whole
 * period old when seen, and its time unknown; read on the tick just after
 * each publication, it is at most one tick old. So: hunt (read every tick)
 * until a step shows between two consecutive ticks, which fixes the phase;
 * then read on the first tick from each due time, due times a whole number
 * of periods apart (cycle_s, what the budget allows). A scheduled read that
 * shows no step means the phase slipped later: hunt again. Every
 * METER_CHECK_CYCLES cycles one more read on the tick before the due time
 * takes the value there, so that a step published early shows as no step
 * at the due time: hunt again too. */
#define METER_CHECK_CYCLES 8
/* A step shows within this many ticks of the read before it: placed. */
#define METER_PLACED_TICKS 2.5
static int phase_due(const struct jb_meter *m, const struct msensor *ms, double t0)
{
    if (ms->hunting || t0 >= ms->due_s)
        return 1;
    /* The due tick is the one after the step's; the check is the tick
     * before the step's. */
    return ms->cycles % METER_CHECK_CYCLES == METER_CHECK_CYCLES - 1 &&
           t0 + 2.0 * m->interval_s >= ms->due_s && t0 + m->interval_s < ms->due_s;
}

/* After a phased counter's read by the sampler at t (changed: it showed a
 * step since the sampler's read before; edge and mark reads in between do
 * not count, so that one taken between a step and its due tick does not
 * pass for a slipped phase). */
static void phase_update(const struct jb_meter *m, struct msensor *ms, double t0, double t,
                         int changed)
{
    double period = ms->s->info.update_period_s;
    if (ms->hunting) {
        if (changed && t0 - ms->read_s <= METER_PLACED_TICKS * m->interval_s) {
            /* Due on the tick a cycle and a tick after this one: the step
             * may have come during this read, after its tick began, and
             * a due read must come after the step, whatever the jitter. */
            ms->hunting = 0;
            ms->due_s = t0 + ms->cycle_s + 0.5 * m->interval_s;
            ms->cycles = 0;
        } else if (t - ms->hunt_since_s > 4.0 * period) {
            /* No step placed in four periods: the counter does not publish
             * on the period it claims, or the ticks come too late to place
             * one (a busy machine). Plain pacing for a while, then again. */
            ms->phased = 0;
            ms->hunting = 0;
            ms->retry_s = t + 25.0 * period;
        }
    } else if (t0 >= ms->due_s) {
        if (changed) {
            while (ms->due_s <= t0) /* keep the grid: no drift from the ticks */
                ms->due_s += ms->cycle_s;
            ms->cycles++;
        } else {
            ms->hunting = 1;
            ms->hunt_since_s = t;
        }
    }
    ms->read_s = t0;
}

/* Reads the used sensors once, into p (and the timeline when record): all
 * of them, or what `tick` (SWEEP_*) selects; a sensor skipped keeps its
 * last reading, valid if that read was good. Called with the lock held;
 * this is the sampler's hot path. */
static void sweep_as(struct jb_meter *m, struct meter_point *p, int record, int pin, int tick)
{
    struct sensor_reading r[JB_MAX_SENSORS];
    unsigned char ok[JB_MAX_SENSORS], held[JB_MAX_SENSORS], pinned[JB_MAX_SENSORS];
    double t0 = jb_clock_s();
    for (size_t i = 0; i < m->n; i++) {
        struct msensor *ms = &m->ms[i];
        ok[i] = 0;
        held[i] = 0;
        pinned[i] = 1;
        if (!ms->s->info.used || ms->lost)
            continue;
        if (tick == SWEEP_TICK && !ms->phased && ms->retry_s > 0 && t0 >= ms->retry_s) {
            ms->phased = 1;
            ms->hunting = 1;
            ms->hunt_since_s = t0;
            ms->retry_s = 0;
        }
        int skip = tick == SWEEP_TICK
                       ? (ms->phased ? !phase_due(m, ms, t0) : ++ms->tick < ms->every)
                       : tick == SWEEP_CHEAP && (ms->phased || ms->every > 1);
        if (skip) {
            held[i] = ms->have_prev && ms->fails == 0;
            continue;
        }
        ms->tick = 0;
        /* A phased counter's steps are placed by its due reads alone,
         * which all come the same time after a step. Any other read (an
         * edge's, a check, a hunt) shows steps whose age differs, or may
         * be a whole cycle old. */
        if (ms->phased)
            pinned[i] = !ms->hunting && tick == SWEEP_TICK && t0 >= ms->due_s;
        if (ms->s->backend->read(ms->s, &r[i]) == 0) {
            ok[i] = 1;
            ms->fails = 0;
            continue;
        }
        if (++ms->fails < METER_LOST_AFTER_FAILS)
            continue;
        ms->lost = 1;
        ms->lost_after_s = ms->have_prev ? ms->prev_t_s : m->t_open_s;
        str_lcpy(ms->lost_reason, ms->s->backend->last_error(ms->s), sizeof ms->lost_reason);
    }
    double t = 0.5 * (t0 + jb_clock_s());
    p->t_s = t;
    p->flags = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct msensor *ms = &m->ms[i];
        if (ok[i]) {
            int had = ms->have_prev;
            fold(ms, &r[i], t);
            if (ms->phased && had && tick == SWEEP_TICK)
                phase_update(m, ms, t0, t, ms->cum_j != ms->tick_j);
            if (tick == SWEEP_TICK)
                ms->tick_j = ms->cum_j;
        }
        /* 1: read, and a step it shows is placed here; 2: valid, but the
         * value was held or its step time is unknown (timeline_stepped_at
         * takes no update from such a sample). */
        p->v[i] = ok[i] && pinned[i] ? 1 : ok[i] || held[i] ? 2 : 0;
        p->j[i] = p->v[i] ? ms->cum_j : NAN;
    }
    if (record)
        (void)timeline_append(&m->tl, p, pin);
}

static void sweep(struct jb_meter *m, struct meter_point *p, int record, int pin)
{
    sweep_as(m, p, record, pin, SWEEP_ALL);
}

/* One read's CPU time for each used sensor (the least of three), and the
 * sampler's pace for it: every tick, or every few where a read costs more
 * than METER_READ_BUDGET of a core at the sampler's rate. */
static void pace_sensors(struct jb_meter *m)
{
    for (size_t i = 0; i < m->n; i++) {
        struct msensor *ms = &m->ms[i];
        ms->every = 1;
        if (!ms->s->info.used)
            continue;
        double best = INFINITY;
        for (int k = 0; k < 3; k++) {
            struct sensor_reading r;
            double c0 = time_thread_cpu_s();
            int rc = ms->s->backend->read(ms->s, &r);
            double c = time_thread_cpu_s() - c0;
            if (rc == 0 && c < best)
                best = c;
        }
        ms->s->info.read_cost_s = isfinite(best) ? best : 0.0;
        if (m->interval_s <= 0)
            continue;
        double per_tick = METER_READ_BUDGET * m->interval_s;
        if (ms->s->info.read_cost_s > per_tick) {
            double every = ceil(ms->s->info.read_cost_s / per_tick);
            double most = ceil(1.0 / m->interval_s);
            ms->every = (unsigned)(every < most ? every : most);
            if (ms->every < 1)
                ms->every = 1;
        }
        ms->s->info.read_interval_s = ms->every * m->interval_s;
        /* A dear counter that publishes in steps: read in phase with them,
         * every whole number of periods the budget allows. */
        double period = ms->s->info.update_period_s;
        if (ms->every > 1 && ms->s->info.kind == JB_SENSOR_ENERGY && period >= METER_STEPPED_S &&
            period >= 2.0 * m->interval_s) {
            double n = ceil(ms->s->info.read_cost_s / (METER_READ_BUDGET * period));
            ms->phased = 1;
            ms->hunting = 1;
            ms->hunt_since_s = jb_clock_s();
            ms->cycle_s = (n < 1 ? 1 : n) * period;
            ms->s->info.read_interval_s = ms->cycle_s;
        }
    }
}

/* Whether sensor i counts between a and b, and which flags it raises. */
static int sensor_valid_between(const struct jb_meter *m, size_t i, const struct meter_point *a,
                                const struct meter_point *b, unsigned *flags)
{
    const struct msensor *ms = &m->ms[i];
    if (!ms->s->info.used)
        return 0;
    int valid = a->v[i] && b->v[i];
    if (ms->lost && b->t_s > ms->lost_after_s) {
        *flags |= JB_ENERGY_SENSOR_LOST;
        valid = 0;
    }
    size_t kept = ms->n_resets < METER_EVENTS ? ms->n_resets : METER_EVENTS;
    for (size_t k = 0; k < kept; k++) {
        const struct span *sp = &ms->resets[k];
        if (sp->t1_s > a->t_s && sp->t0_s < b->t_s) {
            *flags |= JB_ENERGY_RESET;
            valid = 0;
        }
    }
    /* Older resets were forgotten: an interval that reaches back before
     * the oldest one remembered cannot be vouched for. */
    if (ms->n_resets > METER_EVENTS) {
        double oldest = INFINITY;
        for (size_t k = 0; k < METER_EVENTS; k++)
            if (ms->resets[k].t0_s < oldest)
                oldest = ms->resets[k].t0_s;
        if (a->t_s < oldest) {
            *flags |= JB_ENERGY_RESET;
            valid = 0;
        }
    }
    if (valid) {
        size_t wk = ms->n_wraps < METER_EVENTS ? ms->n_wraps : METER_EVENTS;
        for (size_t k = 0; k < wk; k++)
            if (ms->wraps[k] > a->t_s && ms->wraps[k] <= b->t_s)
                *flags |= JB_ENERGY_WRAPPED;
    }
    return valid;
}

static void energy_between_points(const struct jb_meter *m, const struct meter_point *a,
                                  const struct meter_point *b, struct jb_energy *out)
{
    struct meter_sensor_view views[JB_MAX_SENSORS];
    unsigned flags = 0;
    for (size_t i = 0; i < m->n; i++) {
        views[i].info = &m->ms[i].s->info;
        views[i].valid = (unsigned char)sensor_valid_between(m, i, a, b, &flags);
    }
    meter_fill_energy(views, m->n, a, b, flags, out);
}

/* Whether a sensor's readings move in steps: the counter publishes every
 * 50 ms or more (NVML's), or the sampler reads it every few ticks (a dear
 * read) and holds the value in between. */
static int steps_at_all(const struct msensor *ms)
{
    const struct jb_sensor_info *info = &ms->s->info;
    return info->used &&
           ((info->kind == JB_SENSOR_ENERGY && info->update_period_s >= METER_STEPPED_S) ||
            ms->every > 1);
}

/* Whether a sensor's edges are read between its steps (refine_edges).
 * Placing a step at the first sample that
 * showed it is sound when either the samples are dense next to the
 * publications (read at least twice per update period), or the value is
 * fresh when read (it updates at least twice per read interval). A counter
 * that publishes about as often as it is read is neither: a step seen may
 * be up to a whole period old, and the readings (the staircase) are kept. */
static int stepped(const struct jb_meter *m, const struct msensor *ms)
{
    const struct jb_sensor_info *info = &ms->s->info;
    if (!steps_at_all(ms))
        return 0;
    if (ms->phased) /* read on the tick after each step it sees */
        return 1;
    double read = m->interval_s > 0 ? ms->every * m->interval_s : 0.0;
    double period = info->update_period_s;
    if (info->kind == JB_SENSOR_ENERGY && period >= METER_STEPPED_S)
        return read <= 0.5 * period;
    return period <= 0.5 * read; /* every > 1 here */
}

/* The time between its steps, at most. */
static double step_s(const struct jb_meter *m, const struct msensor *ms)
{
    double read = m->interval_s > 0 ? ms->every * m->interval_s : 0.0;
    if (ms->phased)
        read = ms->cycle_s;
    return ms->s->info.update_period_s > read ? ms->s->info.update_period_s : read;
}

/* An edge of an interval, read from a counter that publishes in steps,
 * holds the last update's joules: short by up to one whole step (7.5 J on
 * an idle H100, for a request of 0.2 s). Each such sensor's joules at both
 * edges are moved onto the counter's line between its updates. Both or
 * neither: an interval with one edge on the line and one on the staircase
 * would be off by half a step on average. What the sampler's timing
 * shifts, it shifts at both edges alike, and that cancels. */
static void refine_edges(const struct jb_meter *m, struct meter_point *a, struct meter_point *b)
{
    for (size_t i = 0; i < m->n; i++) {
        if (!a->v[i] || !b->v[i] || !stepped(m, &m->ms[i]))
            continue;
        double step = step_s(m, &m->ms[i]), ja, jb;
        if (timeline_stepped_at(&m->tl, i, a->t_s, 4.0 * step, 0.5 * step, &ja) == 0 &&
            timeline_stepped_at(&m->tl, i, b->t_s, 4.0 * step, 0.5 * step, &jb) == 0) {
            a->j[i] = ja;
            b->j[i] = jb;
        }
    }
}

/* Waits on the meter's condition for at most `seconds` (the lock released
 * meanwhile; close broadcasts on it). */
static void cond_wait_s(struct jb_meter *m, double seconds)
{
#if defined(__APPLE__) /* no monotonic condition variables there: wait relative */
    struct timespec rel = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    (void)pthread_cond_timedwait_relative_np(&m->cond, &m->lock, &rel);
#else
    double until = jb_clock_s() + seconds;
    struct timespec ts = {(time_t)until, (long)((until - (double)(time_t)until) * 1e9)};
    (void)pthread_cond_timedwait(&m->cond, &m->lock, &ts);
#endif
}

/* With the sampler running, waits (the lock released meanwhile) until every
 * stepped sensor has published once after `end`, so that its end can be
 * placed; at most one and a half update periods and two ticks. */
static void await_updates(struct jb_meter *m, const struct meter_point *end)
{
    if (!m->running || m->interval_s <= 0)
        return;
    double deadline = -INFINITY;
    for (size_t i = 0; i < m->n; i++)
        if (end->v[i] && stepped(m, &m->ms[i])) {
            double d = end->t_s + 1.5 * step_s(m, &m->ms[i]) + 2.0 * m->interval_s;
            if (d > deadline)
                deadline = d;
        }
    while (!m->stop && jb_clock_s() < deadline) {
        int waiting = 0;
        for (size_t i = 0; i < m->n; i++) {
            if (!end->v[i] || !stepped(m, &m->ms[i]) || m->ms[i].lost)
                continue;
            /* a placed read after the end that shows a step since it */
            int seen = 0;
            size_t n = m->tl.n;
            for (size_t k = m->tl.len; k-- > 0 && m->tl.t[k] > end->t_s && !seen;)
                seen = m->tl.v[k * n + i] == 1 && m->tl.j[k * n + i] != end->j[i];
            if (!seen)
                waiting = 1;
        }
        if (!waiting)
            return;
        cond_wait_s(m, m->interval_s);
    }
}

/* Sweeps on absolute deadlines (no drift), skipping ticks it missed
 * rather than bunching them. It waits on the condition variable so that
 * close() wakes it at once. */
static void *sampler_main(void *arg)
{
    struct jb_meter *m = arg;
    /* Named, so top, ps and scripts/soak.sh can tell the meter's own CPU
     * time from the program's (/proc/PID/task/TID/comm). */
#if defined(__APPLE__)
    pthread_setname_np("jb-meter");
#elif defined(__linux__)
    pthread_setname_np(pthread_self(), "jb-meter");
#endif
    pthread_mutex_lock(&m->lock);
    double next = jb_clock_s() + m->interval_s;
    while (!m->stop) {
        struct timespec ts;
        ts.tv_sec = (time_t)next;
        ts.tv_nsec = (long)((next - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
#if defined(__APPLE__) /* no monotonic condition variables there: wait relative */
        double left = next - jb_clock_s();
        if (left < 0)
            left = 0;
        struct timespec rel = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        int rc = pthread_cond_timedwait_relative_np(&m->cond, &m->lock, &rel);
#else
        int rc = pthread_cond_timedwait(&m->cond, &m->lock, &ts);
#endif
        if (m->stop)
            break;
        if (rc != ETIMEDOUT)
            continue;
        sweep_as(m, &m->scratch, 1, 0, SWEEP_TICK);
        next += m->interval_s;
        double now = jb_clock_s();
        if (next < now) /* we were held up: skip the missed ticks */
            next = now + m->interval_s;
    }
    m->sampler_cpu_s = time_thread_cpu_s();
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

static int copy_err(char *err, size_t err_len, int code, const char *msg)
{
    if (err && err_len)
        str_lcpy(err, msg, err_len);
    return code;
}

/* Options are checked before anything is opened; paths come from the
 * options, then the environment, then the defaults. The first sweep is
 * every counter's zero point. */
int jb_meter_open(struct jb_meter **out, const struct jb_meter_options *opt_in, char *err,
                  size_t err_len)
{
    struct jb_meter_options opt;
    char msg[ERR_LEN];
    *out = NULL;
    if (opt_in)
        opt = *opt_in;
    else
        jb_meter_options_init(&opt);
    if (!(opt.interval_ms < 0) && !(opt.interval_ms == 0) &&
        !(opt.interval_ms >= 1 && opt.interval_ms <= 60000))
        return copy_err(err, err_len, JB_ERR_USAGE,
                        "the sampling interval must be 1 to 60000 ms (or 0 for the default)");
    if (!(opt.cpu_watts >= 0 && opt.cpu_watts <= 100000))
        return copy_err(err, err_len, JB_ERR_USAGE, "cpu_watts must be 0 to 100000 W");

    struct jb_meter *m = calloc(1, sizeof *m);
    if (!m)
        return copy_err(err, err_len, JB_ERR_NOMEM, "out of memory");
    m->interval_s =
        opt.interval_ms < 0
            ? -1.0
            : (opt.interval_ms == 0 ? METER_DEFAULT_INTERVAL_MS : opt.interval_ms) / 1e3;
    struct sensor_env env;
    env.sysfs_root = opt.sysfs_root ? opt.sysfs_root : fs_env_or("JOULEBENCH_SYSFS_ROOT", "/sys");
    env.procfs_root =
        opt.procfs_root ? opt.procfs_root : fs_env_or("JOULEBENCH_PROCFS_ROOT", "/proc");
    env.nvml_lib = opt.nvml_lib ? opt.nvml_lib : fs_env_or("JOULEBENCH_NVML_LIB", NULL);
    env.cpu_watts = opt.cpu_watts;
    int rc = sensor_registry_open(&env, opt.backends, opt.no_estimate, &m->set, msg);
    if (rc) {
        free(m);
        return copy_err(err, err_len, rc, msg);
    }
    m->n = m->set.n;
    for (size_t i = 0; i < m->n; i++)
        m->ms[i].s = m->set.items[i];
    /* By default the timeline holds 131072 samples (44 minutes at 50 Hz)
     * or what fits in 16 MiB with this many sensors, whichever is less. */
    size_t tl_max = opt.timeline_max;
    if (!tl_max) {
        tl_max = METER_TIMELINE_BYTES / (sizeof(double) + 1 + m->n * (sizeof(double) + 1));
        if (tl_max > METER_DEFAULT_TIMELINE_MAX)
            tl_max = METER_DEFAULT_TIMELINE_MAX;
    }
    timeline_init(&m->tl, m->n, tl_max);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
#if !defined(__APPLE__)
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the sampler's deadlines are jb_clock_s() */
#endif
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&m->lock, NULL);

    pace_sensors(m);
    for (size_t i = 0; i < m->n; i++)
        m->tl.keep_steps[i] = (unsigned char)steps_at_all(&m->ms[i]);
    /* The first reading: every counter's zero point, and the timeline's
     * first sample. */
    m->t_open_s = jb_clock_s();
    sweep(m, &m->scratch, 1, 1);
    *out = m;
    return 0;
}

/* The check and the thread's creation happen under one hold of the lock,
 * so two threads starting the meter at once start one sampler (the new
 * thread waits for the lock before its first tick). */
int jb_meter_start(struct jb_meter *m)
{
    if (!m)
        return JB_ERR_USAGE;
    pthread_mutex_lock(&m->lock);
    if (m->running || m->interval_s < 0) {
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
    /* The sampler blocks every signal: a SIGINT meant for the program must
     * not interrupt it, nor be swallowed by it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&m->thread, NULL, sampler_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        m->running = 1;
    pthread_mutex_unlock(&m->lock);
    return rc ? JB_ERR_NOMEM : 0;
}

void jb_meter_close(struct jb_meter *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    int running = m->running;
    m->stop = 1;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    if (running)
        pthread_join(m->thread, NULL);
    /* A thread still inside jb_meter_end's wait for a step sees stop, and
     * finishes before the meter goes. */
    pthread_mutex_lock(&m->lock);
    while (m->users > 0)
        pthread_cond_wait(&m->cond, &m->lock);
    pthread_mutex_unlock(&m->lock);
    while (m->windows) {
        struct window *w = m->windows;
        m->windows = w->next;
        free(w->name);
        free(w);
    }
    timeline_free(&m->tl);
    sensor_set_clear(&m->set);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
}

size_t jb_meter_sensor_count(const struct jb_meter *m)
{
    return m ? m->n : 0;
}

const struct jb_sensor_info *jb_meter_sensor(const struct jb_meter *m, size_t i)
{
    return m && i < m->n ? &m->ms[i].s->info : NULL;
}

int jb_meter_any_estimated(const struct jb_meter *m)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (m->ms[i].s->info.used && m->ms[i].s->info.estimated)
            return 1;
    return 0;
}

size_t jb_meter_note_count(const struct jb_meter *m)
{
    return m ? m->set.n_notes : 0;
}

const char *jb_meter_note(const struct jb_meter *m, size_t i)
{
    return m && i < m->set.n_notes ? m->set.notes[i] : NULL;
}

int jb_meter_sensor_error(struct jb_meter *m, size_t i, char *buf, size_t len)
{
    if (len)
        buf[0] = '\0';
    if (!m || i >= m->n)
        return 0;
    pthread_mutex_lock(&m->lock);
    int lost = m->ms[i].lost;
    if (lost && len)
        str_lcpy(buf, m->ms[i].lost_reason, len);
    pthread_mutex_unlock(&m->lock);
    return lost;
}

double jb_meter_sampler_cpu_s(struct jb_meter *m)
{
    if (!m)
        return 0;
    pthread_mutex_lock(&m->lock);
    double cpu = m->sampler_cpu_s;
#if !defined(__APPLE__)
    if (m->running && !m->stop) {
        clockid_t cid;
        struct timespec ts;
        if (pthread_getcpuclockid(m->thread, &cid) == 0 && clock_gettime(cid, &ts) == 0)
            cpu = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
#endif
    pthread_mutex_unlock(&m->lock);
    return cpu;
}

static struct window *find_window(struct jb_meter *m, const char *name, struct window ***link)
{
    struct window **pp = &m->windows;
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0) {
            if (link)
                *link = pp;
            return *pp;
        }
    return NULL;
}

int jb_meter_begin(struct jb_meter *m, const char *name)
{
    if (!m || !name)
        return JB_ERR_USAGE;
    struct window *w = calloc(1, sizeof *w);
    char *copy = str_dup(name);
    if (!w || !copy) {
        free(w);
        free(copy);
        return JB_ERR_NOMEM;
    }
    w->name = copy;
    pthread_mutex_lock(&m->lock);
    int rc = 0;
    if (find_window(m, name, NULL))
        rc = JB_ERR_STATE;
    else if (m->n_windows >= METER_MAX_WINDOWS)
        rc = JB_ERR_NOMEM;
    if (rc == 0) {
        sweep(m, &w->begin, 1, 1);
        w->next = m->windows;
        m->windows = w;
        m->n_windows++;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc) {
        free(w->name);
        free(w);
    }
    return rc;
}

int jb_meter_end(struct jb_meter *m, const char *name, struct jb_energy *out)
{
    if (!m || !name || !out)
        return JB_ERR_USAGE;
    struct meter_point *end = malloc(sizeof *end);
    if (!end)
        return JB_ERR_NOMEM;
    pthread_mutex_lock(&m->lock);
    struct window **link = NULL;
    struct window *w = find_window(m, name, &link);
    if (w) {
        sweep(m, end, 1, 1);
        /* Unlinked first: await_updates lets other threads in. */
        *link = w->next;
        m->n_windows--;
        m->users++;
        await_updates(m, end);
        refine_edges(m, &w->begin, end);
        energy_between_points(m, &w->begin, end, out);
        if (--m->users == 0 && m->stop)
            pthread_cond_broadcast(&m->cond); /* close is waiting for us */
    }
    pthread_mutex_unlock(&m->lock);
    free(end);
    if (!w)
        return JB_ERR_STATE;
    free(w->name);
    free(w);
    return 0;
}

int jb_meter_mark(struct jb_meter *m, double *t_s)
{
    if (!m)
        return JB_ERR_USAGE;
    pthread_mutex_lock(&m->lock);
    sweep_as(m, &m->scratch, 1, 1, SWEEP_CHEAP);
    if (t_s)
        *t_s = m->scratch.t_s;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

/* Interval energy from the timeline. An end past the last sample takes a
 * fresh reading first, so "from t until now" needs no mark. */
int jb_meter_energy_between(struct jb_meter *m, double t0_s, double t1_s, struct jb_energy *out)
{
    if (!m || !out || !(t1_s >= t0_s))
        return JB_ERR_USAGE;
    struct meter_point *pts = malloc(2 * sizeof *pts);
    if (!pts)
        return JB_ERR_NOMEM;
    pthread_mutex_lock(&m->lock);
    int rc = 0;
    double last = m->tl.len ? m->tl.t[m->tl.len - 1] : -INFINITY;
    if (t1_s > last) {
        if (t1_s > jb_clock_s())
            rc = JB_ERR_USAGE; /* the future */
        else
            sweep_as(m, &m->scratch, 1, 0, SWEEP_CHEAP);
    }
    /* With a sampler, samples lie one interval apart; without one, only
     * marks and edges exist and any interpolation is a guess. */
    double gap_s = m->running && m->interval_s > 0 ? 2.5 * m->interval_s : 0.0;
    if (rc == 0)
        rc = timeline_at(&m->tl, t0_s, gap_s, &pts[0]);
    if (rc == 0)
        rc = timeline_at(&m->tl, t1_s, gap_s, &pts[1]);
    if (rc == 0) {
        refine_edges(m, &pts[0], &pts[1]);
        energy_between_points(m, &pts[0], &pts[1], out);
    }
    pthread_mutex_unlock(&m->lock);
    free(pts);
    return rc;
}

void jb_energy_to_power(const struct jb_energy *e, struct jb_power *out)
{
    memset(out, 0, sizeof *out);
    out->duration_s = e->duration_s;
    out->n_sensors = e->n_sensors;
    double d = e->duration_s;
    int ok = d > 0;
    for (size_t i = 0; i < JB_MAX_SENSORS; i++) {
        out->sensor_valid[i] = ok && e->sensor_valid[i];
        out->sensor_w[i] = out->sensor_valid[i] ? e->sensor_j[i] / d : NAN;
    }
    for (int k = 0; k < JB_DOMAIN_COUNT; k++)
        out->domain_w[k] = ok && (e->domain_valid & (1u << k)) ? e->domain_j[k] / d : NAN;
    out->domain_valid = ok ? e->domain_valid : 0;
    out->domain_estimated = e->domain_estimated;
    out->total_valid = ok && e->total_valid;
    out->total_w = out->total_valid ? e->total_j / d : NAN;
    out->total_estimated = e->total_estimated;
}

int jb_meter_baseline(struct jb_meter *m, double seconds, const volatile sig_atomic_t *stop,
                      struct jb_power *out)
{
    if (!m || !out || !(seconds >= 0))
        return JB_ERR_USAGE;
    struct meter_point *pts = malloc(2 * sizeof *pts);
    if (!pts)
        return JB_ERR_NOMEM;
    pthread_mutex_lock(&m->lock);
    sweep(m, &pts[0], 1, 1);
    pthread_mutex_unlock(&m->lock);
    int rc = time_sleep_s(seconds, stop);
    pthread_mutex_lock(&m->lock);
    sweep(m, &pts[1], 1, 1);
    m->users++;
    if (rc == 0)
        await_updates(m, &pts[1]);
    refine_edges(m, &pts[0], &pts[1]);
    struct jb_energy e;
    energy_between_points(m, &pts[0], &pts[1], &e);
    if (--m->users == 0 && m->stop)
        pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    jb_energy_to_power(&e, out);
    free(pts);
    return rc;
}

size_t jb_meter_timeline_len(struct jb_meter *m)
{
    if (!m)
        return 0;
    pthread_mutex_lock(&m->lock);
    size_t len = m->tl.len;
    pthread_mutex_unlock(&m->lock);
    return len;
}

int jb_meter_timeline_get(struct jb_meter *m, size_t i, double *t_s, double *joules,
                          unsigned char *valid)
{
    if (!m)
        return JB_ERR_USAGE;
    pthread_mutex_lock(&m->lock);
    int rc = 0;
    if (i >= m->tl.len) {
        rc = JB_ERR_NOTFOUND;
    } else {
        size_t n = m->tl.n;
        if (t_s)
            *t_s = m->tl.t[i];
        if (joules)
            memcpy(joules, m->tl.j + i * n, n * sizeof *joules);
        if (valid)
            for (size_t k = 0; k < n; k++)
                valid[k] = m->tl.v[i * n + k] != 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}
