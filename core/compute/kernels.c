/* kernels: see kernels.h */
#include "kernels.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "simd.h"

/* ---- threads ---------------------------------------------------------------- */

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

int as_threads(void)
{
    int n = openblas_get_num_threads();
    if (n < 1)
        n = 1;
    return n > POOL_MAX ? POOL_MAX : n;
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

/* Row ranges: split n rows of m values into up to 4 chunks per thread, each of
 * at least ROW_MIN_WORK values and one row; small jobs run on the caller. */
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

static void parallel_rows(int n, int m, void (*rows)(void *, int, int), void *ctx)
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

/* ---- vector exp and erf ------------------------------------------------------- */

#ifdef AS_X86_SIMD
static int g_simd = -1; /* 1: AVX2 + FMA available */

static bool have_avx2(void)
{
    int s = __atomic_load_n(&g_simd, __ATOMIC_RELAXED);
    if (s < 0) {
        __builtin_cpu_init();
        s = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&g_simd, s, __ATOMIC_RELAXED);
    }
    return s == 1;
}

/* r[j] = exp(r[j] - mx) for j < m; returns the sum. */
__attribute__((target("avx2,fma"))) static float exp_sub_sum_avx2(float *r, int m, float mx)
{
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 acc = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= m; j += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(r + j), vm));
        _mm256_storeu_ps(r + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (j < m) { /* tail through a padded buffer */
        float buf[8];
        const int t = m - j;
        for (int i = 0; i < 8; i++)
            buf[i] = i < t ? r[j + i] : -INFINITY;
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(buf), vm));
        _mm256_storeu_ps(buf, e);
        acc = _mm256_add_ps(acc, e);
        memcpy(r + j, buf, (size_t)t * sizeof *r);
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static float max_avx2(const float *r, int m)
{
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= m; j += 8)
        vm = _mm256_max_ps(vm, _mm256_loadu_ps(r + j));
    float b[8];
    _mm256_storeu_ps(b, vm);
    float mx = b[0];
    for (int i = 1; i < 8; i++)
        mx = b[i] > mx ? b[i] : mx;
    for (; j < m; j++)
        mx = r[j] > mx ? r[j] : mx;
    return mx;
}

__attribute__((target("avx2,fma"))) static void scale_avx2(float *r, int m, float s)
{
    const __m256 vs = _mm256_set1_ps(s);
    int j = 0;
    for (; j + 8 <= m; j += 8)
        _mm256_storeu_ps(r + j, _mm256_mul_ps(_mm256_loadu_ps(r + j), vs));
    for (; j < m; j++)
        r[j] *= s;
}

/* x[j] = GELU(x[j] + b[j]) (b may be NULL). */
__attribute__((target("avx2,fma"))) static void bias_gelu_avx2(float *x, const float *b, long m)
{
    long j = 0;
    for (; j + 8 <= m; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        if (b)
            v = _mm256_add_ps(v, _mm256_loadu_ps(b + j));
        _mm256_storeu_ps(x + j, gelu8(v));
    }
    if (j < m) {
        float buf[8] = { 0 };
        const long t = m - j;
        for (long i = 0; i < t; i++)
            buf[i] = x[j + i] + (b ? b[j + i] : 0.0f);
        _mm256_storeu_ps(buf, gelu8(_mm256_loadu_ps(buf)));
        memcpy(x + j, buf, (size_t)t * sizeof *x);
    }
}
#else
static bool have_avx2(void)
{
    return false;
}
#endif

/* exp(x - max) of a row in place; returns 1 / the sum. */
static float softmax_row_unnorm(float *r, int m)
{
#ifdef AS_X86_SIMD
    if (have_avx2())
        return 1.0f / exp_sub_sum_avx2(r, m, max_avx2(r, m));
#endif
    float mx = -INFINITY;
    for (int j = 0; j < m; j++)
        if (r[j] > mx)
            mx = r[j];
    double s = 0.0;
    for (int j = 0; j < m; j++) {
        r[j] = expf(r[j] - mx);
        s += r[j];
    }
    return (float)(1.0 / s);
}

static void softmax_row(float *r, int m)
{
    const float inv = softmax_row_unnorm(r, m);
#ifdef AS_X86_SIMD
    if (have_avx2()) {
        scale_avx2(r, m, inv);
        return;
    }
#endif
    for (int j = 0; j < m; j++)
        r[j] *= inv;
}

static void bias_gelu(float *x, const float *b, long m)
{
#ifdef AS_X86_SIMD
    if (have_avx2()) {
        bias_gelu_avx2(x, b, m);
        return;
    }
#endif
    for (long i = 0; i < m; i++) {
        const float v = b ? x[i] + b[i] : x[i];
        x[i] = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    }
}

void as_bias_gelu_row(float *x, const float *b, long n)
{
    bias_gelu(x, b, n);
}

bool as_kernels_simd(void)
{
    return have_avx2();
}

/* ---- forward kernels ------------------------------------------------------------ */

/* One sgemm call that runs on the calling thread only. OpenBLAS's own
 * threads, once woken by a call it decides to split, poll the cores with
 * sched_yield for a long while afterwards and slow our pool's next regions
 * down (seen as ~5% of the samples and 20-30% slower encoder runs after a
 * decoder call); all our sgemm calls are either small or already split over
 * our own threads. */
static void sgemm_here(bool transb, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc)
{
    const int nt = openblas_get_num_threads();
    if (nt > 1)
        openblas_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, transb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                a, lda, b, ldb, beta, c, ldc);
    if (nt > 1)
        openblas_set_num_threads(nt);
}

/* sgemm C (m,n) = alpha A (m,k) op(B) + beta C, row-major, split over our
 * threads into blocks of rows (of columns when there are few rows), each
 * block one single-threaded sgemm call; small products go to OpenBLAS
 * directly. `pre`/`post` (may be
 * NULL) run on each block of C (rows x cols from column col0, row stride ldc)
 * before/after its sgemm, while it is in cache. */
typedef struct {
    bool transb, split_cols;
    int m, n, k, lda, ldb, ldc, per;
    float alpha, beta;
    const float *a, *b;
    float *c;
    void (*pre)(void *ctx, float *c, int rows, int col0, int cols);
    void (*post)(void *ctx, float *c, int rows, int col0, int cols);
    void *ctx;
} GemmJob;

static void gemm_item(void *ctx, int item, int tid)
{
    (void)tid;
    const GemmJob *j = ctx;
    const int total = j->split_cols ? j->n : j->m;
    const int i0 = item * j->per;
    const int cnt = total - i0 < j->per ? total - i0 : j->per;
    if (cnt <= 0)
        return;
    const int rows = j->split_cols ? j->m : cnt, cols = j->split_cols ? cnt : j->n;
    const int col0 = j->split_cols ? i0 : 0;
    const float *a = j->split_cols ? j->a : j->a + (size_t)i0 * j->lda;
    const float *b = !j->split_cols ? j->b
                     : j->transb    ? j->b + (size_t)i0 * j->ldb
                                    : j->b + i0;
    float *c = j->split_cols ? j->c + i0 : j->c + (size_t)i0 * j->ldc;
    if (j->pre)
        j->pre(j->ctx, c, rows, col0, cols);
    sgemm_here(j->transb, rows, cols,
                j->k, j->alpha, a, j->lda, b, j->ldb, j->beta, c, j->ldc);
    if (j->post)
        j->post(j->ctx, c, rows, col0, cols);
}

#define GEMM_SPLIT_FLOPS 4e6 /* below this one sgemm call on the caller's thread */
#define GEMM_MIN_BLOCK 32
#define GEMM_BIG_BLOCK 128

static void gemm_run(GemmJob *j)
{
    if (j->m <= 0 || j->n <= 0)
        return;
    const int nt = as_threads();
    const double flops = 2.0 * j->m * (double)j->n * j->k;
    /* Each thread packs its own block of one operand and the whole other one:
     * about m/nt + n rows of length k when splitting rows, m + n/nt when
     * splitting columns. Rows unless columns save clearly (they gave no gain
     * at 901 tokens; they do at 197, where rows would repack the weights). */
    const double pack_rows = (double)j->m / nt + j->n, pack_cols = j->m + (double)j->n / nt;
    j->split_cols = pack_cols < 0.8 * pack_rows;
    const int total = j->split_cols ? j->n : j->m;
    int items = 1;
    if (nt > 1 && flops >= GEMM_SPLIT_FLOPS) {
        /* two equal blocks per thread when they stay large (a thread slowed by
         * other load then hands work over), else one */
        items = total >= 2 * nt * GEMM_BIG_BLOCK ? 2 * nt : nt;
        int per = (total + items - 1) / items;
        if (j->split_cols)
            per = (per + 15) / 16 * 16; /* whole register tiles of columns */
        if (per < GEMM_MIN_BLOCK)
            per = GEMM_MIN_BLOCK;
        j->per = per;
        items = (total + per - 1) / per;
    }
    if (items <= 1) {
        j->per = total;
        gemm_item(j, 0, 0);
        return;
    }
    as_parallel_for_blas1(items, gemm_item, j);
}

void as_sgemm_rows(bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc)
{
    GemmJob j = { trans_b, false, m, n, k, lda, ldb, ldc, 0, alpha, beta, a, b, c,
                  NULL, NULL, NULL };
    gemm_run(&j);
}

static void fill_bias(void *ctx, float *c, int rows, int col0, int cols)
{
    const AsLinear *l = ctx;
    for (int i = 0; i < rows; i++)
        memcpy(c + (size_t)i * l->out, l->b + col0, (size_t)cols * sizeof *c);
}

static void add_bias(void *ctx, float *c, int rows, int col0, int cols)
{
    const AsLinear *l = ctx;
    const float *b = l->b + col0;
    for (int i = 0; i < rows; i++) {
        float *cr = c + (size_t)i * l->out;
        for (int j = 0; j < cols; j++)
            cr[j] += b[j];
    }
}

static void bias_gelu_block(void *ctx, float *c, int rows, int col0, int cols)
{
    const AsLinear *l = ctx;
    for (int i = 0; i < rows; i++)
        bias_gelu(c + (size_t)i * l->out, l->b ? l->b + col0 : NULL, cols);
}

static GemmJob linear_job(const float *x, int n, const AsLinear *l, float *y, float beta)
{
    GemmJob j = { true, false, n, l->out, l->in, l->in, l->in, l->out, 0, 1.0f, beta, x, l->w,
                  y, NULL, NULL, (void *)l };
    return j;
}

/* Few rows (the decoder's Q queries): y = x W^T + b by dot products that read
 * each weight row once, outputs split over the threads. sgemm would first
 * copy the whole weight matrix into its packed layout for a handful of rows. */
#define SMALL_ROWS 8
typedef struct {
    const float *x;
    const AsLinear *l;
    float *y;
    int n, per;
} SmallJob;

#ifdef AS_X86_SIMD
__attribute__((target("avx2,fma"))) static void small_item_avx2(const SmallJob *j, int o0, int o1)
{
    const int in = j->l->in, n = j->n;
    for (int o = o0; o < o1; o++) {
        const float *w = j->l->w + (size_t)o * in;
        __m256 acc[SMALL_ROWS];
        for (int r = 0; r < n; r++)
            acc[r] = _mm256_setzero_ps();
        int k = 0;
        for (; k + 8 <= in; k += 8) {
            const __m256 wv = _mm256_loadu_ps(w + k);
            for (int r = 0; r < n; r++)
                acc[r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(j->x + (size_t)r * in + k), acc[r]);
        }
        for (int r = 0; r < n; r++) {
            float b8[8];
            _mm256_storeu_ps(b8, acc[r]);
            float v = ((b8[0] + b8[1]) + (b8[2] + b8[3])) + ((b8[4] + b8[5]) + (b8[6] + b8[7]));
            for (int t = k; t < in; t++)
                v += j->x[(size_t)r * in + t] * w[t];
            j->y[(size_t)r * j->l->out + o] = v + (j->l->b ? j->l->b[o] : 0.0f);
        }
    }
}

static void small_item(void *ctx, int item, int tid)
{
    (void)tid;
    const SmallJob *j = ctx;
    const int o0 = item * j->per;
    const int o1 = o0 + j->per < j->l->out ? o0 + j->per : j->l->out;
    small_item_avx2(j, o0, o1);
}
#endif

/* true when done here (n <= SMALL_ROWS on an AVX2 CPU) */
static bool linear_small(const float *x, int n, const AsLinear *l, float *y)
{
#ifdef AS_X86_SIMD
    if (n > SMALL_ROWS || n <= 0 || !have_avx2())
        return false;
    const int nt = as_threads();
    const double work = (double)n * l->out * l->in;
    const int items = nt > 1 && work > 1e6 ? nt * 2 : 1;
    SmallJob j = { x, l, y, n, (l->out + items - 1) / items };
    if (items > 1)
        as_parallel_for(items, small_item, &j);
    else
        small_item(&j, 0, 0);
    return true;
#else
    (void)x, (void)n, (void)l, (void)y;
    return false;
#endif
}

/* Linear layers run on the packed GEMM: with their packed weights, or, for
 * weights without a packed copy (the decoder's, which training changes) and
 * enough rows to repay it, with weights packed into a temporary buffer. This
 * keeps inference off OpenBLAS, whose idle threads otherwise keep polling the
 * cores our own pool works on. Returns false when the caller must use sgemm. */
#define LINEAR_PACK_MIN_ROWS 32
static bool linear_packed(const float *x, int n, const AsLinear *l, AsEpilogue epi, float *y)
{
    if (l->packed) {
        as_gemm_packed(x, n, l->in, NULL, l->packed, l->out, l->in, l->b, epi, y, l->out);
        return true;
    }
    if (n < LINEAR_PACK_MIN_ROWS || !as_gemm_available())
        return false;
    const size_t nf = as_gemm_packed_floats(l->out, l->in);
    float *pk = nf ? aligned_alloc(64, (nf * sizeof(float) + 63) / 64 * 64) : NULL;
    if (!pk)
        return false;
    as_gemm_pack(l->w, l->out, l->in, pk);
    as_gemm_packed(x, n, l->in, NULL, pk, l->out, l->in, l->b, epi, y, l->out);
    free(pk);
    return true;
}

void as_linear(const float *x, int n, const AsLinear *l, float *y)
{
    if (linear_packed(x, n, l, AS_EPI_STORE, y) || linear_small(x, n, l, y))
        return;
    GemmJob j = linear_job(x, n, l, y, l->b ? 1.0f : 0.0f);
    if (l->b)
        j.pre = fill_bias;
    gemm_run(&j);
}

void as_linear_accumulate(const float *x, int n, const AsLinear *l, float *y)
{
    if (linear_packed(x, n, l, AS_EPI_ACCUMULATE, y))
        return;
    GemmJob j = linear_job(x, n, l, y, 1.0f);
    if (l->b)
        j.pre = add_bias;
    gemm_run(&j);
}

void as_linear_gelu(const float *x, int n, const AsLinear *l, float *y)
{
    if (linear_packed(x, n, l, AS_EPI_GELU, y))
        return;
    GemmJob j = linear_job(x, n, l, y, 0.0f);
    j.post = bias_gelu_block;
    gemm_run(&j);
}

void as_linear_norm(const float *x, int n, const AsNorm *nm, const AsLinear *l, bool gelu,
                    float *scratch, float *y)
{
    if (l->packed && nm->dim == l->in) {
        const AsGemmNorm g = { nm->w, nm->b, nm->eps };
        as_gemm_packed(x, n, l->in, &g, l->packed, l->out, l->in, l->b,
                       gelu ? AS_EPI_GELU : AS_EPI_STORE, y, l->out);
        return;
    }
    as_layernorm(x, n, nm, scratch);
    if (gelu)
        as_linear_gelu(scratch, n, l, y);
    else
        as_linear(scratch, n, l, y);
}

typedef struct { const float *x; float *y; const AsNorm *nm; } NormJob;

#ifdef AS_X86_SIMD
/* One row: mean and variance accumulated in double, as the scalar path. */
/* mean and 1/sqrt(var + eps) of one row, summed in double */
__attribute__((target("avx2,fma"))) static void layernorm_stats_avx2(const float *xr, int d,
                                                                     float eps, float *fm,
                                                                     float *rstd)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int j = 0;
    for (; j + 8 <= d; j += 8) {
        const __m256 v = _mm256_loadu_ps(xr + j);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double b4[4];
    _mm256_storeu_pd(b4, _mm256_add_pd(s0, s1));
    double s = (b4[0] + b4[1]) + (b4[2] + b4[3]);
    for (int t = j; t < d; t++)
        s += xr[t];
    const double mean = s / d;
    const __m256d vm = _mm256_set1_pd(mean);
    s0 = _mm256_setzero_pd();
    s1 = _mm256_setzero_pd();
    for (j = 0; j + 8 <= d; j += 8) {
        const __m256 v = _mm256_loadu_ps(xr + j);
        const __m256d a = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vm);
        const __m256d b = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vm);
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
    }
    _mm256_storeu_pd(b4, _mm256_add_pd(s0, s1));
    double v = (b4[0] + b4[1]) + (b4[2] + b4[3]);
    for (int t = j; t < d; t++) {
        const double q = xr[t] - mean;
        v += q * q;
    }
    *rstd = (float)(1.0 / sqrt(v / d + (double)eps));
    *fm = (float)mean;
}

/* yr[j0 .. j0+cnt) of the normalised row (see as_layernorm_apply) */
__attribute__((target("avx2,fma"))) static void layernorm_apply_avx2(const float *xr, int j0,
                                                                     int cnt, float fm,
                                                                     float rstd, const float *w,
                                                                     const float *b, float *yr)
{
    const __m256 vfm = _mm256_set1_ps(fm), vr = _mm256_set1_ps(rstd);
    int j = j0;
    for (; j + 8 <= j0 + cnt; j += 8) {
        const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), vfm), vr);
        _mm256_storeu_ps(yr + j - j0, _mm256_fmadd_ps(t, _mm256_loadu_ps(w + j),
                                                      _mm256_loadu_ps(b + j)));
    }
    for (; j < j0 + cnt; j++)
        yr[j - j0] = (xr[j] - fm) * rstd * w[j] + b[j];
}

__attribute__((target("avx2,fma"))) static void layernorm_row_avx2(const float *xr, int d,
                                                                   const AsNorm *nm, float *yr)
{
    float fm, rstd;
    layernorm_stats_avx2(xr, d, nm->eps, &fm, &rstd);
    layernorm_apply_avx2(xr, 0, d, fm, rstd, nm->w, nm->b, yr);
}
#endif

static void layernorm_stats_c(const float *xr, int d, float eps, float *fm, float *rstd)
{
    double s = 0.0;
    for (int j = 0; j < d; j++)
        s += xr[j];
    const double mean = s / d;
    double v = 0.0;
    for (int j = 0; j < d; j++) {
        const double t = xr[j] - mean;
        v += t * t;
    }
    *rstd = (float)(1.0 / sqrt(v / d + (double)eps));
    *fm = (float)mean;
}

void as_layernorm_stats(const float *x, int d, float eps, float *mean, float *rstd)
{
#ifdef AS_X86_SIMD
    if (have_avx2()) {
        layernorm_stats_avx2(x, d, eps, mean, rstd);
        return;
    }
#endif
    layernorm_stats_c(x, d, eps, mean, rstd);
}

void as_layernorm_apply(const float *x, int j0, int cnt, float mean, float rstd, const float *w,
                        const float *b, float *y)
{
#ifdef AS_X86_SIMD
    if (have_avx2()) {
        layernorm_apply_avx2(x, j0, cnt, mean, rstd, w, b, y);
        return;
    }
#endif
    for (int j = j0; j < j0 + cnt; j++)
        y[j - j0] = (x[j] - mean) * rstd * w[j] + b[j];
}

static void layernorm_rows(void *ctx, int r0, int r1)
{
    const NormJob *jb = ctx;
    const AsNorm *nm = jb->nm;
    const int d = nm->dim;
#ifdef AS_X86_SIMD
    if (have_avx2()) {
        for (int i = r0; i < r1; i++)
            layernorm_row_avx2(jb->x + (size_t)i * d, d, nm, jb->y + (size_t)i * d);
        return;
    }
#endif
    for (int i = r0; i < r1; i++) {
        const float *xr = jb->x + (size_t)i * d;
        float fm, rstd;
        layernorm_stats_c(xr, d, nm->eps, &fm, &rstd);
        float *yr = jb->y + (size_t)i * d;
        for (int j = 0; j < d; j++)
            yr[j] = (xr[j] - fm) * rstd * nm->w[j] + nm->b[j];
    }
}

void as_layernorm(const float *x, int n, const AsNorm *nm, float *y)
{
    NormJob j = { x, y, nm };
    parallel_rows(n, nm->dim, layernorm_rows, &j);
}

typedef struct { float *x; int m; } SoftmaxJob;

static void softmax_rows_range(void *ctx, int r0, int r1)
{
    const SoftmaxJob *j = ctx;
    for (int i = r0; i < r1; i++)
        softmax_row(j->x + (size_t)i * j->m, j->m);
}

void as_softmax_rows(float *x, int n, int m)
{
    SoftmaxJob j = { x, m };
    parallel_rows(n, m, softmax_rows_range, &j);
}

#define GELU_CHUNK 4096

typedef struct { float *y; const float *b; int m; } GeluJob;

static void gelu_chunks(void *ctx, int r0, int r1)
{
    const GeluJob *j = ctx;
    const long total = (long)j->m; /* here m is the element count */
    for (int c = r0; c < r1; c++) {
        const long a = (long)c * GELU_CHUNK;
        const long e = a + GELU_CHUNK < total ? a + GELU_CHUNK : total;
        bias_gelu(j->y + a, NULL, e - a);
    }
}

void as_gelu_inplace(float *x, long n)
{
    if (n <= 0)
        return;
    if (n > INT32_MAX) {
        bias_gelu(x, NULL, n);
        return;
    }
    GeluJob j = { x, NULL, (int)n };
    parallel_rows((int)((n + GELU_CHUNK - 1) / GELU_CHUNK), GELU_CHUNK, gelu_chunks, &j);
}

void as_relu_inplace(float *x, long n)
{
    for (long i = 0; i < n; i++)
        if (!(x[i] > 0.0f))
            x[i] = 0.0f;
}

void as_l2norm_rows(const float *x, int n, int d, float eps, float *y)
{
    for (int i = 0; i < n; i++) {
        const float *xr = x + (size_t)i * d;
        float *yr = y + (size_t)i * d;
        double s = 0.0;
        for (int j = 0; j < d; j++)
            s += (double)xr[j] * xr[j];
        double nrm = sqrt(s);
        if (nrm < eps)
            nrm = eps;
        const float inv = (float)(1.0 / nrm);
        for (int j = 0; j < d; j++)
            yr[j] = xr[j] * inv;
    }
}

/* ---- attention ------------------------------------------------------------------ */

/* Query rows per attention work item: the (rows, nk) probability block of one
 * head stays in L2 between the two sgemm calls. */
#define ATTN_ROWS 128

typedef struct {
    const float *q, *k, *v;
    int ldq, ldk, ldv, nq, nk, hd, heads, blk, nblk, dim;
    float scale;
    float *scratch; /* per thread (blk, nk), or the whole (heads, nq, nk) when full */
    bool full;      /* keep every head's probabilities */
    float *row0;
    float *out;
} AttnJob;

/* One (head, block of query rows) item: probabilities, then their values. The
 * rows multiply the values unnormalised and the (rows, hd) output is scaled
 * instead (hd values per row rather than nk); as_mha normalises the kept
 * probabilities afterwards. */
static void attn_item(void *ctx, int item, int tid)
{
    const AttnJob *j = ctx;
    const int h = item / j->nblk, b = item % j->nblk;
    const int r0 = b * j->blk;
    const int rows = j->nq - r0 < j->blk ? j->nq - r0 : j->blk;
    float *s = j->full ? j->scratch + ((size_t)h * j->nq + r0) * j->nk
                       : j->scratch + (size_t)tid * j->blk * j->nk;
    const size_t ho = (size_t)h * j->hd;
    float inv[ATTN_ROWS];
    sgemm_here(true, rows, j->nk, j->hd, j->scale,
                j->q + (size_t)r0 * j->ldq + ho, j->ldq, j->k + ho, j->ldk, 0.0f, s, j->nk);
    for (int i = 0; i < rows; i++)
        inv[i] = softmax_row_unnorm(s + (size_t)i * j->nk, j->nk);
    if (j->row0 && r0 == 0) {
        float *dst = j->row0 + (size_t)h * j->nk;
        for (int c = 0; c < j->nk; c++)
            dst[c] = s[c] * inv[0];
    }
    float *o = j->out + (size_t)r0 * j->dim + ho;
    sgemm_here(false, rows, j->hd, j->nk, 1.0f, s, j->nk,
                j->v + ho, j->ldv, 0.0f, o, j->dim);
    for (int i = 0; i < rows; i++) {
        float *orow = o + (size_t)i * j->dim;
        for (int c = 0; c < j->hd; c++)
            orow[c] *= inv[i];
    }
    if (j->full) /* keep the normalised probabilities */
        for (int i = 0; i < rows; i++) {
            float *r = s + (size_t)i * j->nk;
            for (int c = 0; c < j->nk; c++)
                r[c] *= inv[i];
        }
}

static void attn_run(AttnJob *j)
{
    if (j->blk > ATTN_ROWS) /* attn_item keeps one scale per row on its stack */
        j->blk = ATTN_ROWS;
    j->nblk = (j->nq + j->blk - 1) / j->blk;
    const int items = j->heads * j->nblk;
    /* Our threads each run single-threaded sgemm calls on their own items; a
     * tiny problem runs on the caller's thread with OpenBLAS as configured. */
    const double flops = 4.0 * j->nq * (double)j->nk * j->hd * j->heads;
    if (items >= 2 && flops >= 4e6)
        as_parallel_for_blas1(items, attn_item, j);
    else
        for (int i = 0; i < items; i++)
            attn_item(j, i, 0);
}

void as_mha(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
            int nq, int nk, int dim, int heads, float *probs, float *out)
{
    if (nq <= 0 || nk <= 0 || heads <= 0)
        return;
    const int hd = dim / heads;
    AttnJob j = { q, k, v, ldq, ldk, ldv, nq, nk, hd, heads, ATTN_ROWS, 0, dim,
                  1.0f / sqrtf((float)hd), probs, true, NULL, out };
    attn_run(&j);
}

void as_mha_lowmem(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   int nq, int nk, int dim, int heads, float *scratch, float *row0,
                   float *out)
{
    if (nq <= 0 || nk <= 0 || heads <= 0)
        return;
    const int hd = dim / heads;
    /* scratch holds nq * nk floats: as many (blk, nk) blocks as threads fit */
    int nt = as_threads();
    int blk = nq / nt;
    if (blk > ATTN_ROWS)
        blk = ATTN_ROWS;
    if (blk < 1)
        blk = nq; /* fewer rows than threads: one block, one thread */
    AttnJob j = { q, k, v, ldq, ldk, ldv, nq, nk, hd, heads, blk, 0, dim,
                  1.0f / sqrtf((float)hd), scratch, false, row0, out };
    if (blk == nq && nt > 1) { /* only one block fits: one thread */
        j.nblk = 1;
        for (int h = 0; h < heads; h++)
            attn_item(&j, h, 0);
        return;
    }
    attn_run(&j);
}

/* ---- attention for 64-wide heads -------------------------------------------------- */

/* Keys and values of every head are laid out once per call in the scratch:
 * keys as panels of 16 keys, transposed and pre-scaled by 1/8 = 1/sqrt(64)
 * (exact: a power of two), K (heads, nkp/16, 64, 16); values as column chunks
 * of 16, V (heads, 4, nk, 16). Each (head, block of PK_BLK query rows) item
 * then computes, PK_R query rows at a time, their scores, the softmax and
 * the values product with 6x16 register tiles; the tile's scores stay in L1,
 * the head's keys and values in L2. */
#define PK_HD 64
#define PK_BLK 48 /* query rows per item, a multiple of PK_R */
#define PK_R 6

size_t as_mha_packed_scratch(int nq, int nk, int dim, int heads, int threads)
{
    (void)nq;
    if (nk <= 0 || heads <= 0 || dim <= 0 || threads < 1)
        return 0;
    const size_t nkp = ((size_t)nk + 15) / 16 * 16;
    return (size_t)heads * PK_HD * (nkp + (size_t)nk) + (size_t)threads * PK_R * nkp;
}

#ifdef AS_X86_SIMD
typedef struct {
    const float *q, *k, *v;
    int ldq, ldk, ldv, nq, nk, nkp, dim, heads, nblk;
    float *kp, *vp, *s; /* packed keys, packed values, per-thread (PK_R, nkp) scores */
    float *row0, *out;
} PackedAttn;

static void pk_pack(void *ctx, int h, int tid)
{
    (void)tid;
    const PackedAttn *j = ctx;
    float *kp = j->kp + (size_t)h * j->nkp * PK_HD;
    for (int p = 0; p < j->nkp / 16; p++) {
        float *panel = kp + (size_t)p * PK_HD * 16;
        for (int jj = 0; jj < 16; jj++) {
            const int key = p * 16 + jj;
            const float *kr = j->k + (size_t)key * j->ldk + (size_t)h * PK_HD;
            for (int d = 0; d < PK_HD; d++)
                panel[d * 16 + jj] = key < j->nk ? kr[d] * 0.125f : 0.0f;
        }
    }
    float *vp = j->vp + (size_t)h * j->nk * PK_HD;
    for (int c = 0; c < PK_HD / 16; c++)
        for (int key = 0; key < j->nk; key++)
            memcpy(vp + ((size_t)c * j->nk + key) * 16,
                   j->v + (size_t)key * j->ldv + (size_t)h * PK_HD + c * 16, 16 * sizeof(float));
}

/* s (R, nkp) = q (R, 64) kp^T for R query rows. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
pk_scores(const float *q, int ldq, const float *kp, int nkp, float *s, const int R)
{
    for (int p = 0; p < nkp / 16; p++) {
        const float *panel = kp + (size_t)p * PK_HD * 16;
        __m256 acc[PK_R][2];
        for (int r = 0; r < R; r++)
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int d = 0; d < PK_HD; d++) {
            const __m256 k0 = _mm256_loadu_ps(panel + d * 16);
            const __m256 k1 = _mm256_loadu_ps(panel + d * 16 + 8);
            for (int r = 0; r < R; r++) {
                const __m256 qv = _mm256_broadcast_ss(q + (size_t)r * ldq + d);
                acc[r][0] = _mm256_fmadd_ps(qv, k0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(qv, k1, acc[r][1]);
            }
        }
        for (int r = 0; r < R; r++) {
            _mm256_storeu_ps(s + (size_t)r * nkp + p * 16, acc[r][0]);
            _mm256_storeu_ps(s + (size_t)r * nkp + p * 16 + 8, acc[r][1]);
        }
    }
}

/* o (R, 64) = diag(inv) p (R, nk) vp for R rows (row stride ldo). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
pk_values(const float *p, int nkp, int nk, const float *vp, const float *inv, float *o, int ldo,
          const int R)
{
    for (int c = 0; c < PK_HD / 16; c++) {
        const float *vc = vp + (size_t)c * nk * 16;
        __m256 acc[PK_R][2];
        for (int r = 0; r < R; r++)
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int key = 0; key < nk; key++) {
            const __m256 v0 = _mm256_loadu_ps(vc + (size_t)key * 16);
            const __m256 v1 = _mm256_loadu_ps(vc + (size_t)key * 16 + 8);
            for (int r = 0; r < R; r++) {
                const __m256 pv = _mm256_broadcast_ss(p + (size_t)r * nkp + key);
                acc[r][0] = _mm256_fmadd_ps(pv, v0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(pv, v1, acc[r][1]);
            }
        }
        for (int r = 0; r < R; r++) {
            const __m256 sc = _mm256_set1_ps(inv[r]);
            _mm256_storeu_ps(o + (size_t)r * ldo + c * 16, _mm256_mul_ps(acc[r][0], sc));
            _mm256_storeu_ps(o + (size_t)r * ldo + c * 16 + 8, _mm256_mul_ps(acc[r][1], sc));
        }
    }
}

__attribute__((target("avx2,fma"))) static void pk_tile(const PackedAttn *j, const float *q,
                                                        const float *kp, const float *vp,
                                                        float *s, float *o, int rows,
                                                        float *row0)
{
    float inv[PK_R];
    switch (rows) {
    case 6: pk_scores(q, j->ldq, kp, j->nkp, s, 6); break;
    case 5: pk_scores(q, j->ldq, kp, j->nkp, s, 5); break;
    case 4: pk_scores(q, j->ldq, kp, j->nkp, s, 4); break;
    case 3: pk_scores(q, j->ldq, kp, j->nkp, s, 3); break;
    case 2: pk_scores(q, j->ldq, kp, j->nkp, s, 2); break;
    default: pk_scores(q, j->ldq, kp, j->nkp, s, 1); break;
    }
    for (int r = 0; r < rows; r++) {
        float *sr = s + (size_t)r * j->nkp;
        inv[r] = 1.0f / exp_sub_sum_avx2(sr, j->nk, max_avx2(sr, j->nk));
    }
    if (row0) /* this tile holds query row 0: keep its probabilities */
        for (int c = 0; c < j->nk; c++)
            row0[c] = s[c] * inv[0];
    switch (rows) {
    case 6: pk_values(s, j->nkp, j->nk, vp, inv, o, j->dim, 6); break;
    case 5: pk_values(s, j->nkp, j->nk, vp, inv, o, j->dim, 5); break;
    case 4: pk_values(s, j->nkp, j->nk, vp, inv, o, j->dim, 4); break;
    case 3: pk_values(s, j->nkp, j->nk, vp, inv, o, j->dim, 3); break;
    case 2: pk_values(s, j->nkp, j->nk, vp, inv, o, j->dim, 2); break;
    default: pk_values(s, j->nkp, j->nk, vp, inv, o, j->dim, 1); break;
    }
}

static void pk_item(void *ctx, int item, int tid)
{
    const PackedAttn *j = ctx;
    const int h = item / j->nblk, b = item % j->nblk;
    const int r0 = b * PK_BLK;
    const int r1 = j->nq - r0 < PK_BLK ? j->nq : r0 + PK_BLK;
    const float *kp = j->kp + (size_t)h * j->nkp * PK_HD;
    const float *vp = j->vp + (size_t)h * j->nk * PK_HD;
    float *s = j->s + (size_t)tid * PK_R * j->nkp; /* one tile's scores, in L1 */
    for (int r = r0; r < r1; r += PK_R) {
        const int rows = r1 - r < PK_R ? r1 - r : PK_R;
        pk_tile(j, j->q + (size_t)r * j->ldq + (size_t)h * PK_HD, kp, vp, s,
                j->out + (size_t)r * j->dim + (size_t)h * PK_HD, rows,
                r == 0 && j->row0 ? j->row0 + (size_t)h * j->nk : NULL);
    }
}
#endif

void as_mha_packed(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   int nq, int nk, int dim, int heads, float *scratch, size_t scratch_floats,
                   float *row0, float *out)
{
    if (nq <= 0 || nk <= 0 || heads <= 0)
        return;
#ifdef AS_X86_SIMD
    const int nt = as_threads();
    if (have_avx2() && dim == heads * PK_HD && (size_t)nk * PK_HD * heads < INT32_MAX &&
        as_mha_packed_scratch(nq, nk, dim, heads, nt) <= scratch_floats) {
        const int nkp = (nk + 15) / 16 * 16;
        PackedAttn j = { q, k, v, ldq, ldk, ldv, nq, nk, nkp, dim, heads,
                         (nq + PK_BLK - 1) / PK_BLK, scratch,
                         scratch + (size_t)heads * nkp * PK_HD,
                         scratch + (size_t)heads * PK_HD * ((size_t)nkp + nk), row0, out };
        as_parallel_for(heads, pk_pack, &j);
        as_parallel_for(heads * j.nblk, pk_item, &j);
        return;
    }
#endif
    as_mha_lowmem(q, ldq, k, ldk, v, ldv, nq, nk, dim, heads, scratch, row0, out);
}

void as_add_inplace(float *x, const float *y, long n)
{
    for (long i = 0; i < n; i++)
        x[i] += y[i];
}

/* Cubic convolution weights (Keys, a = -0.75) for fractional offset t in [0,1). */
static void cubic_weights(float t, float w[4])
{
    const float a = -0.75f;
    float x;
    x = t + 1.0f; /* 1 < x < 2 */
    w[0] = ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
    x = t; /* |x| <= 1 */
    w[1] = ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
    x = 1.0f - t;
    w[2] = ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
    x = 2.0f - t;
    w[3] = ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

typedef struct {
    const float *src;
    int sh, sw, c, dh, dw;
    float fsh, fsw;
    float *dst;
} BicubicJob;

/* Output rows [r0, r1): per pixel, the 4x4 clamped taps are fixed first and
 * the channel loop (contiguous, vectorisable) runs inside; every channel sums
 * in the same order as a per-channel loop would. */
static void bicubic_rows(void *ctx, int r0, int r1)
{
    const BicubicJob *j = ctx;
    const int c = j->c;
    for (int oy = r0; oy < r1; oy++) {
        const float ry = j->fsh * ((float)oy + 0.5f) - 0.5f;
        const int iy = (int)floorf(ry);
        float wy[4];
        cubic_weights(ry - (float)iy, wy);
        for (int ox = 0; ox < j->dw; ox++) {
            const float rx = j->fsw * ((float)ox + 0.5f) - 0.5f;
            const int ix = (int)floorf(rx);
            float wx[4];
            cubic_weights(rx - (float)ix, wx);
            const float *tap[4][4];
            for (int a = 0; a < 4; a++) {
                const int yy = clampi(iy - 1 + a, 0, j->sh - 1);
                for (int b = 0; b < 4; b++) {
                    const int xx = clampi(ix - 1 + b, 0, j->sw - 1);
                    tap[a][b] = j->src + ((size_t)yy * j->sw + xx) * c;
                }
            }
            float *o = j->dst + ((size_t)oy * j->dw + ox) * c;
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int a = 0; a < 4; a++) {
                    float row = 0.0f;
                    for (int b = 0; b < 4; b++)
                        row += wx[b] * tap[a][b][ch];
                    acc += wy[a] * row;
                }
                o[ch] = acc;
            }
        }
    }
}

void as_bicubic_resize_hwc(const float *src, int sh, int sw, int c, int dh, int dw,
                           double scale_h, double scale_w, float *dst)
{
    BicubicJob j = { src, sh, sw, c, dh, dw, (float)scale_h, (float)scale_w, dst };
    parallel_rows(dh, dw * c * 16, bicubic_rows, &j);
}

void as_bilinear_index(int i, int in, int out, int *i0, int *i1, float *w0, float *w1)
{
    const float scale = (float)in / (float)out;
    float s = scale * ((float)i + 0.5f) - 0.5f;
    if (s < 0.0f)
        s = 0.0f;
    int a = (int)s;
    if (a > in - 1)
        a = in - 1;
    const int b = a + (a < in - 1 ? 1 : 0);
    const float l1 = s - (float)a;
    *i0 = a;
    *i1 = b;
    *w0 = 1.0f - l1;
    *w1 = l1;
}

void as_gaussian_kernel(int taps, float sigma, float *k)
{
    const float half = (float)(taps - 1) * 0.5f;
    float s = 0.0f;
    for (int i = 0; i < taps; i++) {
        const float x = ((float)i - half) / sigma;
        k[i] = expf(-0.5f * x * x);
        s += k[i];
    }
    for (int i = 0; i < taps; i++)
        k[i] /= s;
}

/* Mirror index i into [0, n) without repeating the edge (period 2n-2). */
static int reflect_index(int i, int n)
{
    if (n == 1)
        return 0;
    const int period = 2 * n - 2;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

int as_blur_separable(const float *in, int h, int w, const float *k, int taps, float *out,
                      AsError *err)
{
    float *tmp = malloc((size_t)h * w * sizeof *tmp);
    if (!tmp)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory blurring a %dx%d map", h, w);
    const int r = taps / 2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float acc = 0.0f;
            for (int t = 0; t < taps; t++)
                acc += k[t] * in[(size_t)y * w + reflect_index(x + t - r, w)];
            tmp[(size_t)y * w + x] = acc;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float acc = 0.0f;
            for (int t = 0; t < taps; t++)
                acc += k[t] * tmp[(size_t)reflect_index(y + t - r, h) * w + x];
            out[(size_t)y * w + x] = acc;
        }
    free(tmp);
    return 0;
}

typedef struct { float v; int i; } ValIdx;

static int cmp_validx(const void *a, const void *b)
{
    const ValIdx *x = a, *y = b;
    if (x->v < y->v)
        return -1;
    if (x->v > y->v)
        return 1;
    return (x->i > y->i) - (x->i < y->i);
}

int as_mass_threshold(const float *v, int n, float keep, uint8_t *mask, AsError *err)
{
    if (n <= 0)
        return 0;
    ValIdx *s = malloc((size_t)n * sizeof *s);
    if (!s)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory sorting %d values", n);
    for (int i = 0; i < n; i++) /* NaN would make the order inconsistent */
        s[i] = (ValIdx){ isnan(v[i]) ? -INFINITY : v[i], i };
    qsort(s, (size_t)n, sizeof *s, cmp_validx);
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += s[i].v;
    const float fsum = (float)sum;
    const float limit = 1.0f - keep;
    double cum = 0.0; /* PyTorch's CPU cumsum accumulates in double */
    for (int i = 0; i < n; i++) {
        cum += (double)(s[i].v / fsum);
        mask[s[i].i] = (float)cum > limit ? 1 : 0;
    }
    free(s);
    return 0;
}

int as_drop_small_components(uint8_t *mask, int h, int w, int max_size)
{
    const size_t n = (size_t)h * w;
    if (n == 0)
        return 0;
    int *stack = malloc(n * sizeof *stack);
    int *comp = malloc(n * sizeof *comp);
    uint8_t *seen = calloc(n, 1);
    if (!stack || !comp || !seen) {
        free(stack);
        free(comp);
        free(seen);
        return -1;
    }
    int removed = 0;
    for (size_t start = 0; start < n; start++) {
        if (!mask[start] || seen[start])
            continue;
        size_t sp = 0, nc = 0;
        stack[sp++] = (int)start;
        seen[start] = 1;
        while (sp) {
            const int c = stack[--sp];
            comp[nc++] = c;
            const int cy = c / w, cx = c % w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    const int y = cy + dy, x = cx + dx;
                    if (y < 0 || y >= h || x < 0 || x >= w)
                        continue;
                    const size_t j = (size_t)y * w + x;
                    if (mask[j] && !seen[j]) {
                        seen[j] = 1;
                        stack[sp++] = (int)j;
                    }
                }
        }
        if (nc <= (size_t)max_size) {
            for (size_t i = 0; i < nc; i++)
                mask[comp[i]] = 0;
            removed++;
        }
    }
    free(stack);
    free(comp);
    free(seen);
    return removed;
}
