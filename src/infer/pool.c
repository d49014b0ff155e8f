/* pool.c — the persistent thread pool (see pool.h for the wait policies). */
#include "infer/pool.h"

#include <pthread.h>
#include <sched.h>
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
     * workers after they see the bump (acquire). */
    void (*fn)(void *ctx, int thread, int n_threads);
    void *ctx;
    atomic_uint_fast64_t gen;
    atomic_int pending;  /* workers still running the current job */
    atomic_int sleepers; /* workers blocked on cv_work */
    atomic_int quit;
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
            atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
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
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return err_setf(err, JB_ERR_NOMEM, "out of memory for the thread pool");
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
        p->workers = calloc((size_t)n_threads - 1, sizeof(*p->workers));
        if (!p->workers) {
            pool_free(p);
            return err_setf(err, JB_ERR_NOMEM, "out of memory for the thread pool");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].index = i + 1;
            int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
            if (rc) {
                pool_free(p);
                return err_setf(err, JB_ERR_NOMEM, "cannot start worker thread %d of %d: %s", i + 1,
                                n_threads - 1, strerror(rc));
            }
            p->n_started++;
        }
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
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes fn/ctx, pairs with sleepers */
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
        for (unsigned i = 1; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
            if (i < 1u << 10)
                cpu_relax();
            else
                sched_yield();
        }
    }
}
