/* linear: see linear.h */
#include "linear.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "gemm.h"
#include "pool.h"
#include "simd.h"

/* One sgemm call that runs on the calling thread only. OpenBLAS's own
 * threads, once woken by a call it decides to split, poll the cores with
 * sched_yield for a long while afterwards and slow our pool's next regions
 * down (seen as ~5% of the samples and 20-30% slower encoder runs after a
 * decoder call); all our sgemm calls are either small or already split over
 * our own threads. */
void as_sgemm_serial(bool transb, int m, int n, int k, float alpha, const float *a, int lda,
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
    as_sgemm_serial(j->transb, rows, cols, j->k, j->alpha, a, j->lda, b, j->ldb, j->beta, c,
                    j->ldc);
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
        as_bias_gelu_row(c + (size_t)i * l->out, l->b ? l->b + col0 : NULL, cols);
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
    if (n > SMALL_ROWS || n <= 0 || as_cpu_path() < AS_CPU_AVX2)
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
    if (l->packed_bf16 && as_gemm_packed_bf16(x, n, l->in, NULL, l->packed_bf16, l->out, l->in,
                                              l->b, epi, y, l->out) == 0)
        return true;
    if (l->packed) {
        as_gemm_packed(x, n, l->in, NULL, l->packed, l->out, l->in, l->b, epi, y, l->out);
        return true;
    }
    if (n < LINEAR_PACK_MIN_ROWS)
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
    if (l->packed_bf16 && nm->dim == l->in) {
        const AsGemmNorm g = { nm->w, nm->b, nm->eps };
        if (as_gemm_packed_bf16(x, n, l->in, &g, l->packed_bf16, l->out, l->in, l->b,
                                gelu ? AS_EPI_GELU : AS_EPI_STORE, y, l->out) == 0)
            return;
    }
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

void as_linear_mlp(const float *x, int n, const AsNorm *nm, const AsLinear *fc1,
                   const AsLinear *fc2, float *scratch, float *hidden, float *y)
{
    if (fc1->packed && fc2->packed && !fc1->packed_bf16 && !fc2->packed_bf16 &&
        nm->dim == fc1->in && fc2->in == fc1->out) {
        const AsGemmNorm g = { nm->w, nm->b, nm->eps };
        as_gemm_packed_mlp(x, n, fc1->in, &g, fc1->packed, fc1->b, fc1->out, fc2->packed, fc2->b,
                           fc2->out, hidden, y, fc2->out);
        return;
    }
    as_linear_norm(x, n, nm, fc1, true, scratch, hidden);
    as_linear_accumulate(hidden, n, fc2, y);
}

void as_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

float as_sdot(int n, const float *x, const float *y)
{
    return cblas_sdot(n, x, 1, y, 1);
}
