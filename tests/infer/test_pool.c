/* The thread pool: every thread runs every job exactly once, results are
 * visible to the caller when pool_run returns, for both wait policies,
 * also after workers have fallen asleep past the spin budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/timeutil.h"
#include "infer/pool.h"

struct job {
    int n_threads;
    atomic_int calls;
    int seen[POOL_MAX_THREADS];
    uint64_t *out; /* plain writes, checked by the caller after pool_run */
    size_t n_out;
};

static void job_fn(void *ctx, int thread, int n_threads)
{
    struct job *j = ctx;
    atomic_fetch_add(&j->calls, 1);
    j->seen[thread]++;
    /* each thread fills its own slice: the caller sees all of it */
    size_t per = (j->n_out + (size_t)n_threads - 1) / (size_t)n_threads;
    size_t lo = per * (size_t)thread, hi = lo + per > j->n_out ? j->n_out : lo + per;
    for (size_t i = lo; i < hi; i++)
        j->out[i] += i + 1;
}

static void run_policy(enum infer_wait wait, int n_threads)
{
    char err[ERR_LEN] = "";
    struct pool *p = NULL;
    assert_int_equal(pool_new(&p, n_threads, wait, err), 0);
    assert_int_equal(pool_threads(p), n_threads);
    assert_int_equal(pool_wait(p), wait);

    struct job j;
    memset(&j, 0, sizeof(j));
    atomic_init(&j.calls, 0);
    j.n_out = 1000;
    j.out = calloc(j.n_out, sizeof(*j.out));
    assert_non_null(j.out);
    const int runs = 2000;
    for (int r = 0; r < runs; r++) {
        pool_run(p, job_fn, &j);
        /* everything written by the job is there when pool_run returns */
        assert_true(j.out[r % j.n_out] == (uint64_t)(r + 1) * (r % j.n_out + 1));
        if (r == runs / 2)
            time_sleep_s(3 * POOL_SPIN_BUDGET_S, NULL); /* workers go to sleep */
    }
    assert_int_equal(atomic_load(&j.calls), runs * n_threads);
    for (int t = 0; t < n_threads; t++)
        assert_int_equal(j.seen[t], runs);
    for (size_t i = 0; i < j.n_out; i++)
        assert_true(j.out[i] == (uint64_t)runs * (i + 1));
    free(j.out);
    pool_free(p);
}

static void test_spin(void **state)
{
    (void)state;
    run_policy(INFER_WAIT_SPIN, 4);
}

static void test_sleep(void **state)
{
    (void)state;
    run_policy(INFER_WAIT_SLEEP, 4);
}

static void test_one_thread(void **state)
{
    (void)state;
    run_policy(INFER_WAIT_SPIN, 1);
    run_policy(INFER_WAIT_SLEEP, 1);
}

/* One thread finishes late, a different one each job: pool_run must wait
 * for whichever it is, not only for the first workers or for a count. */
struct late_job {
    int late;     /* the thread that sleeps before writing */
    int wrote[8]; /* plain writes, read by the caller */
};

static void late_fn(void *ctx, int thread, int n_threads)
{
    (void)n_threads;
    struct late_job *j = ctx;
    if (thread == j->late)
        time_sleep_s(0.002, NULL);
    j->wrote[thread] = 1;
}

static void test_waits_for_the_last_thread(void **state)
{
    (void)state;
    for (int policy = 0; policy < 2; policy++) {
        enum infer_wait wait = policy ? INFER_WAIT_SLEEP : INFER_WAIT_SPIN;
        char err[ERR_LEN] = "";
        struct pool *p = NULL;
        const int n = 5;
        assert_int_equal(pool_new(&p, n, wait, err), 0);
        for (int r = 0; r < 4 * n; r++) {
            struct late_job j;
            memset(&j, 0, sizeof(j));
            j.late = r % n;
            pool_run(p, late_fn, &j);
            for (int t = 0; t < n; t++)
                assert_int_equal(j.wrote[t], 1);
        }
        pool_free(p);
    }
}

static void test_bad_args(void **state)
{
    (void)state;
    char err[ERR_LEN] = "";
    struct pool *p = (struct pool *)1;
    assert_int_equal(pool_new(&p, 0, INFER_WAIT_SPIN, err), JB_ERR_USAGE);
    assert_null(p);
    assert_non_null(strstr(err, "thread count"));
    assert_int_equal(pool_new(&p, 2, (enum infer_wait)7, err), JB_ERR_USAGE);
    assert_true(pool_cpu_count() >= 1);
    pool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spin),       cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_one_thread), cmocka_unit_test(test_waits_for_the_last_thread),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
