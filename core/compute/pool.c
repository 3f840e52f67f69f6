/* pool: see pool.h */
#include "pool.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "simd.h"

#define POOL_MAX 64

/* One process-wide pool of workers. Between jobs a worker spins for a short
 * while (POOL_SPIN pauses, tens of microseconds: the encoder starts a new
 * region every few hundred microseconds) and then sleeps on a condition
 * variable; the caller wakes sleepers only when there are any, so a region on
 * warm workers costs no system call (measured 59-85 us per region with the
 * earlier always-sleep pool, ~3 us with this one). A parallel region holds
 * `run` for its whole length; a caller that finds it taken (another thread's
 * region) runs its items itself. */
static struct {
    pthread_mutex_t run;  /* one parallel region at a time */
    pthread_mutex_t lock; /* taken only to sleep and to wake sleepers */
    pthread_cond_t wake, done;
    int started;          /* workers created */
    atomic_uint gen;      /* bumped for every job */
    atomic_int sleepers;  /* workers asleep (or about to sleep) on `wake` */
    atomic_int caller_sleeps; /* the caller is asleep on `done` */
    atomic_int active;    /* workers taking part in the current job (ids 1..active) */
    atomic_int pending;   /* of those, not finished yet */
    AsTaskFn fn;
    void *ctx;
    int nitems;
    atomic_int next;
} g_pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
             PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, 0 };

static unsigned g_pool_born[POOL_MAX]; /* g_pool.gen when worker i was created */

/* pauses before sleeping: ~20k cycles, tens of microseconds. Longer spins
 * slowed regions down when other processes wanted the cores. */
#define POOL_SPIN 4000

static inline void cpu_pause(void)
{
#ifdef AS_X86_SIMD
    _mm_pause();
#endif
}

static void pool_drain(int tid)
{
    for (;;) {
        const int i = atomic_fetch_add(&g_pool.next, 1);
        if (i >= g_pool.nitems)
            return;
        g_pool.fn(g_pool.ctx, i, tid);
    }
}

static void *pool_worker(void *arg)
{
    const int tid = (int)(intptr_t)arg;
    unsigned seen = g_pool_born[tid]; /* jobs posted after creation are ours */
    for (;;) {
        for (int i = 0; i < POOL_SPIN && atomic_load(&g_pool.gen) == seen; i++)
            cpu_pause();
        if (atomic_load(&g_pool.gen) == seen) {
            pthread_mutex_lock(&g_pool.lock);
            atomic_fetch_add(&g_pool.sleepers, 1);
            while (atomic_load(&g_pool.gen) == seen)
                pthread_cond_wait(&g_pool.wake, &g_pool.lock);
            atomic_fetch_sub(&g_pool.sleepers, 1);
            pthread_mutex_unlock(&g_pool.lock);
        }
        seen = atomic_load(&g_pool.gen);
        const int active = atomic_load(&g_pool.active);
        /* active must belong to job `seen`: a worker left out of a job may
         * look late, after the next job was posted (then gen moved on and the
         * loop takes the new job) */
        if (atomic_load(&g_pool.gen) != seen || tid > active)
            continue;
        pool_drain(tid);
        if (atomic_fetch_sub(&g_pool.pending, 1) == 1 && atomic_load(&g_pool.caller_sleeps)) {
            pthread_mutex_lock(&g_pool.lock);
            pthread_cond_signal(&g_pool.done);
            pthread_mutex_unlock(&g_pool.lock);
        }
    }
    return NULL;
}

static atomic_int g_threads = 1; /* as_pool_set_threads */

void as_pool_set_threads(int n)
{
    if (n <= 0) {
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 && online < 1 << 20 ? (int)online : 1;
    }
    openblas_set_num_threads(n);
    atomic_store(&g_threads, n > POOL_MAX ? POOL_MAX : n);
}

int as_threads(void)
{
    return atomic_load_explicit(&g_threads, memory_order_relaxed);
}

/* Workers 1..want-1 exist afterwards (fewer if thread creation fails). Called
 * with g_pool.run held. */
static int pool_ensure(int want)
{
    while (g_pool.started < want - 1) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_mutex_lock(&g_pool.lock);
        const int id = g_pool.started + 1;
        g_pool_born[id] = atomic_load(&g_pool.gen);
        const int rc = pthread_create(&t, &at, pool_worker, (void *)(intptr_t)id);
        if (!rc)
            g_pool.started++;
        pthread_mutex_unlock(&g_pool.lock);
        pthread_attr_destroy(&at);
        if (rc)
            break;
    }
    return g_pool.started + 1;
}

static void run_parallel(int nitems, AsTaskFn fn, void *ctx, bool blas1)
{
    const int nt = as_threads();
    if (nitems <= 0)
        return;
    if (nt <= 1 || nitems == 1 || pthread_mutex_trylock(&g_pool.run) != 0) {
        for (int i = 0; i < nitems; i++)
            fn(ctx, i, 0);
        return;
    }
    int use = pool_ensure(nt); /* workers started for a larger count earlier stay out */
    if (use > nt)
        use = nt;
    if (use > nitems)
        use = nitems;
    if (blas1) /* our threads each call sgemm: keep OpenBLAS from adding its own */
        openblas_set_num_threads(1);
    /* every worker has seen the previous job's gen (pending was 0), so these
     * plain stores are read only after the gen bump below publishes them */
    g_pool.fn = fn;
    g_pool.ctx = ctx;
    g_pool.nitems = nitems;
    atomic_store(&g_pool.next, 0);
    atomic_store(&g_pool.active, use - 1);
    atomic_store(&g_pool.pending, use - 1);
    atomic_fetch_add(&g_pool.gen, 1);
    if (use > 1 && atomic_load(&g_pool.sleepers) > 0) {
        pthread_mutex_lock(&g_pool.lock);
        pthread_cond_broadcast(&g_pool.wake);
        pthread_mutex_unlock(&g_pool.lock);
    }
    pool_drain(0);
    for (int i = 0; i < POOL_SPIN && atomic_load(&g_pool.pending) > 0; i++)
        cpu_pause();
    if (atomic_load(&g_pool.pending) > 0) {
        pthread_mutex_lock(&g_pool.lock);
        atomic_store(&g_pool.caller_sleeps, 1);
        while (atomic_load(&g_pool.pending) > 0)
            pthread_cond_wait(&g_pool.done, &g_pool.lock);
        atomic_store(&g_pool.caller_sleeps, 0);
        pthread_mutex_unlock(&g_pool.lock);
    }
    if (blas1)
        openblas_set_num_threads(nt);
    pthread_mutex_unlock(&g_pool.run);
}

void as_parallel_for(int nitems, AsTaskFn fn, void *ctx)
{
    run_parallel(nitems, fn, ctx, false);
}

void as_parallel_for_blas1(int nitems, AsTaskFn fn, void *ctx)
{
    run_parallel(nitems, fn, ctx, true);
}

/* Row ranges (as_parallel_rows): chunks of at least ROW_MIN_WORK values. */
typedef struct {
    int n, m, rows_per;
    void (*rows)(void *ctx, int r0, int r1);
    void *ctx;
} RowJob;

static void row_item(void *ctx, int item, int tid)
{
    (void)tid;
    const RowJob *j = ctx;
    const int r0 = item * j->rows_per;
    int r1 = r0 + j->rows_per;
    if (r1 > j->n)
        r1 = j->n;
    if (r0 < r1)
        j->rows(j->ctx, r0, r1);
}

#define ROW_MIN_WORK 16384 /* values per item below which threads do not pay */

void as_parallel_rows(int n, int m, void (*rows)(void *ctx, int r0, int r1), void *ctx)
{
    if (n <= 0)
        return;
    const int nt = as_threads();
    const double work = (double)n * (m > 0 ? m : 1);
    if (nt <= 1 || work < 2.0 * ROW_MIN_WORK) {
        rows(ctx, 0, n);
        return;
    }
    int chunks = nt * 4;
    if (chunks > n)
        chunks = n;
    if ((double)chunks * ROW_MIN_WORK > work)
        chunks = (int)(work / ROW_MIN_WORK);
    if (chunks < 1)
        chunks = 1;
    RowJob j = { n, m, (n + chunks - 1) / chunks, rows, ctx };
    as_parallel_for((n + j.rows_per - 1) / j.rows_per, row_item, &j);
}
