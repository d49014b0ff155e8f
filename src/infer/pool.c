/* pool.c — the persistent thread pool (see pool.h for the wait policies). */
#include "infer/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/timeutil.h"

struct pool_worker {
    struct pool *pool;
    int index;
    pthread_t thread;
    /* Spin policy: the last generation this worker finished, on a line of
     * its own. The caller reads each worker's line once its job is done,
     * where one shared counter took every worker's decrement in turn. */
    alignas(POOL_LINE) atomic_uint_fast64_t done;
};

struct pool {
    int n_threads;
    enum infer_wait wait;
    struct pool_worker *workers; /* n_threads - 1 */
    int n_started;

    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* a new generation or quit */
    pthread_cond_t cv_done; /* pending reached 0 (sleep policy) */

    /* The job: written by pool_run before gen is bumped (release), read by
     * workers after they see the bump (acquire). One cache line holds what
     * a job's start writes and the spinning workers read; what finishing
     * workers write lives elsewhere (their done lines, or pending). When
     * all of it shared one line, each finishing worker took the line from
     * every worker still spinning on gen. */
    alignas(POOL_LINE) void (*fn)(void *ctx, int thread, int n_threads);
    void *ctx;
    atomic_uint_fast64_t gen;
    atomic_int sleepers; /* workers blocked on cv_work */
    atomic_int quit;
    /* sleep policy: workers still running the current job */
    alignas(POOL_LINE) atomic_int pending;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Waits until the generation differs from seen. Spinning first (spin policy)
 * keeps the wake-up in the sub-microsecond range between the products of
 * one token; the mutex path is the fallback that lets an idle engine sleep.
 * sleepers and gen are both sequentially consistent, so either pool_run sees
 * this worker counted as a sleeper and broadcasts, or the worker sees the
 * new generation before it blocks. */
static uint64_t worker_wait(struct pool *p, uint64_t seen)
{
    uint64_t g;
    if (p->wait == INFER_WAIT_SPIN) {
        double until = jb_clock_s() + POOL_SPIN_BUDGET_S;
        for (unsigned i = 1;; i++) {
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
            if (g != seen || atomic_load_explicit(&p->quit, memory_order_relaxed))
                return g;
            cpu_relax();
            if ((i & 1023) == 0) {
                if (jb_clock_s() > until)
                    break;
                sched_yield(); /* lets a busy thread sharing this core finish */
            }
        }
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit))
        pthread_cond_wait(&p->cv_work, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg)
{
    struct pool_worker *w = arg;
    struct pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        seen = worker_wait(p, seen);
        if (atomic_load(&p->quit))
            break;
        p->fn(p->ctx, w->index, p->n_threads);
        if (p->wait == INFER_WAIT_SLEEP) {
            pthread_mutex_lock(&p->mu);
            if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1)
                pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        } else {
            atomic_store_explicit(&w->done, seen, memory_order_release);
        }
    }
    return NULL;
}

int pool_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)n;
}

int pool_new(struct pool **out, int n_threads, enum infer_wait wait, char *err)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > POOL_MAX_THREADS)
        return err_setf(err, JB_ERR_USAGE, "thread count %d is out of range: use 1 to %d",
                        n_threads, POOL_MAX_THREADS);
    if (wait != INFER_WAIT_SPIN && wait != INFER_WAIT_SLEEP)
        return err_setf(err, JB_ERR_USAGE, "unknown wait policy %d", (int)wait);
    /* sizeof is a whole number of lines, as aligned_alloc requires */
    struct pool *p = aligned_alloc(POOL_LINE, sizeof(*p));
    if (!p)
        return err_setf(err, JB_ERR_NOMEM, "out of memory for the thread pool");
    memset(p, 0, sizeof(*p));
    p->n_threads = n_threads;
    p->wait = wait;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, 0);
    if (n_threads > 1) {
        size_t bytes = ((size_t)n_threads - 1) * sizeof(*p->workers);
        p->workers = aligned_alloc(POOL_LINE, bytes);
        if (!p->workers) {
            pool_free(p);
            return err_setf(err, JB_ERR_NOMEM, "out of memory for the thread pool");
        }
        memset(p->workers, 0, bytes);
        /* A stack of known size: the kernels keep per-call scratch on it
         * (about 150 KiB at most, decode of long rows), more than some C
         * libraries give a thread by default (musl: 128 KiB). If the size
         * cannot be set, the default it is. */
        pthread_attr_t attr;
        int have_attr = pthread_attr_init(&attr) == 0;
        if (have_attr)
            pthread_attr_setstacksize(&attr, POOL_STACK_BYTES);
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].index = i + 1;
            atomic_init(&p->workers[i].done, 0);
            int rc = pthread_create(&p->workers[i].thread, have_attr ? &attr : NULL, worker_main,
                                    &p->workers[i]);
            if (rc) {
                if (have_attr)
                    pthread_attr_destroy(&attr);
                pool_free(p);
                return err_setf(err, JB_ERR_NOMEM, "cannot start worker thread %d of %d: %s", i + 1,
                                n_threads - 1, strerror(rc));
            }
            p->n_started++;
        }
        if (have_attr)
            pthread_attr_destroy(&attr);
    }
    *out = p;
    return 0;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_work);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int pool_threads(const struct pool *p)
{
    return p->n_threads;
}

enum infer_wait pool_wait(const struct pool *p)
{
    return p->wait;
}

void pool_run(struct pool *p, void (*fn)(void *ctx, int thread, int n_threads), void *ctx)
{
    if (p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    if (p->wait == INFER_WAIT_SLEEP)
        atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    /* seq_cst: publishes fn/ctx, pairs with sleepers */
    uint64_t g = atomic_fetch_add(&p->gen, 1) + 1;
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, p->n_threads);
    if (p->wait == INFER_WAIT_SLEEP) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
            pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    } else {
        /* A worker may have lost its core to another process; after a
         * while, yield rather than spin through its time slice. */
        unsigned spins = 0;
        for (int k = 0; k < p->n_threads - 1; k++)
            while (atomic_load_explicit(&p->workers[k].done, memory_order_acquire) != g) {
                if (++spins < 1u << 10)
                    cpu_relax();
                else
                    sched_yield();
            }
    }
}
