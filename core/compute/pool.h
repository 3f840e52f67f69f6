/* pool: the process-wide thread pool the compute kernels split their work
 * over. Its thread count is alignseg's own (as_pool_set_threads, i.e.
 * --threads; one thread until set). Pool workers spin briefly between jobs,
 * then sleep. OpenBLAS is given the same count for the products that run
 * whole on it (training's, see linear.h); the kernels' own sgemm calls run on
 * one OpenBLAS thread each inside the pool (as_parallel_for_blas1), so
 * OpenBLAS's threads stay asleep during inference. */
#ifndef ALIGNSEG_POOL_H
#define ALIGNSEG_POOL_H

/* Threads the kernels use from now on: n, or all online cores when n <= 0
 * (at most 64). Also sets OpenBLAS's thread count to n (all cores for 0).
 * Not to be called while another thread runs kernels. */
void as_pool_set_threads(int n);
/* Threads the kernels use (at least 1). */
int as_threads(void);
/* Run fn(ctx, item, tid) for item in [0, nitems) on up to as_threads()
 * threads (tid 0 is the caller, tids are below as_threads() at the call). Runs
 * everything on the caller when single-threaded or when another thread's
 * parallel region is running. fn must not start parallel regions itself. */
typedef void (*AsTaskFn)(void *ctx, int item, int tid);
void as_parallel_for(int nitems, AsTaskFn fn, void *ctx);
/* The same with OpenBLAS set to one thread for the duration (for items that
 * call sgemm themselves). */
void as_parallel_for_blas1(int nitems, AsTaskFn fn, void *ctx);
/* Row ranges: rows(ctx, r0, r1) over n rows of m values each, split into up
 * to 4 chunks per thread, each of at least 16384 values and one row; small
 * jobs run on the caller. */
void as_parallel_rows(int n, int m, void (*rows)(void *ctx, int r0, int r1), void *ctx);

#endif
