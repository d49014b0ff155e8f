/*
 * pool.h — a persistent thread pool for the forward pass. One job at a time:
 * pool_run() hands fn to every thread (the caller is thread 0) and returns
 * when all have finished, so a matrix product is one pool_run() and the
 * threads live as long as the model.
 *
 * Wait policy (it changes joules, so it is chosen once and recorded):
 *   INFER_WAIT_SPIN   idle workers busy-wait for the next job, up to
 *                     POOL_SPIN_BUDGET_S after their last one, then sleep;
 *                     the caller busy-waits for the job's end. Lowest
 *                     latency between the dozens of products in one token.
 *   INFER_WAIT_SLEEP  idle workers and the waiting caller block on condition
 *                     variables: no cycles burnt while waiting, a wake-up
 *                     cost on every product.
 * The spin budget keeps an idle engine (between requests, during the idle
 * baseline) from burning every core.
 *
 * Ownership: pool_new() allocates and starts n_threads - 1 workers;
 * pool_free() stops and joins them and frees the pool.
 */
#ifndef JB_INFER_POOL_H
#define JB_INFER_POOL_H

#include "infer/infer.h"

#define POOL_MAX_THREADS 256
/* A cache line on the machines the engine runs on (x86-64 and Apple's
 * arm64 cores keep 64 and 128 bytes; 128 covers both): what one thread
 * writes while the others read nearby goes on a line of its own. */
#define POOL_LINE 128
/* each worker thread's stack: room for the kernels' scratch whatever the
 * C library's default */
#define POOL_STACK_BYTES ((size_t)2 << 20)
#define POOL_SPIN_BUDGET_S 0.005

struct pool; /* opaque */

/* n_threads >= 1 (1: no workers, pool_run calls fn inline). */
int pool_new(struct pool **out, int n_threads, enum infer_wait wait, char *err);
void pool_free(struct pool *p);
int pool_threads(const struct pool *p);
enum infer_wait pool_wait(const struct pool *p);
/* Runs fn(ctx, thread, n_threads) on every thread, thread in [0, n_threads),
 * and returns when all calls have returned. Not reentrant: call it from one
 * thread, never from inside fn. */
void pool_run(struct pool *p, void (*fn)(void *ctx, int thread, int n_threads), void *ctx);
/* Online CPUs (at least 1). */
int pool_cpu_count(void);

#endif
