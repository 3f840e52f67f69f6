/* test_kernels_fast: the vectorised exp/erf paths (softmax, GELU) against
 * double-precision libm, and the multi-threaded kernels (row-split linear
 * layers, blocked attention, layernorm, the thread pool) against naive loops
 * and against their own single-threaded results. Sizes are large enough that
 * the threaded paths are taken. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cpu.h"
#include "activations.h"
#include "attention.h"
#include "linear.h"
#include "pool.h"

/* CHECK_NEAR with a formatted description */
#define NEARF(a, b, tol, ...)                                                      \
    CHECK(fabs((double)(a) - (double)(b)) <= (tol), __VA_ARGS__)

/* deterministic test values in [-1, 1) */
static float val(uint32_t i)
{
    uint32_t x = i * 2654435761u + 12345u;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    return (float)(x % 20000) / 10000.0f - 1.0f;
}

static double gelu_ref(double x)
{
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

static void test_gelu_accuracy(void)
{
    enum { N = 200003 }; /* not a multiple of 8: the tail path too */
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    CHECK(x && y, "alloc");
    for (int i = 0; i < N; i++)
        x[i] = -12.0f + 24.0f * (float)i / (float)(N - 1);
    x[0] = 0.0f;
    x[1] = -0.0f;
    x[2] = 1e-30f;
    x[3] = -1e-30f;
    x[4] = 60.0f;
    x[5] = -60.0f;
    x[6] = 0.70710678f; /* the switch between the two erf approximations */
    x[7] = -0.70710678f;
    memcpy(y, x, N * sizeof *y);
    as_gelu_inplace(y, N);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        const double ref = gelu_ref(x[i]);
        const double tol = 3e-7 * fmax(1.0, fabs((double)x[i]));
        const double e = fabs(y[i] - ref);
        if (e / tol > worst)
            worst = e / tol;
        if (e > tol) {
            NEARF(y[i], ref, tol, "gelu(%g)", (double)x[i]);
            break;
        }
    }
    printf("gelu: worst error %.2f of the tolerance (%s path)\n", worst, as_cpu_path_name(as_cpu_path()));
    CHECK(y[0] == 0.0f && y[5] == 0.0f && y[4] == 60.0f, "gelu at 0, -60, 60");
    float inf[2] = { INFINITY, NAN };
    as_gelu_inplace(inf, 2);
    CHECK(isinf(inf[0]) && inf[0] > 0 && isnan(inf[1]), "gelu(inf) = inf, gelu(nan) = nan");
    free(x);
    free(y);
}

static void test_softmax_accuracy(void)
{
    const int lens[] = { 1, 7, 8, 9, 64, 901 };
    for (size_t t = 0; t < sizeof lens / sizeof *lens; t++) {
        const int m = lens[t], n = 40;
        float *x = malloc((size_t)n * m * sizeof *x), *y = malloc((size_t)n * m * sizeof *y);
        CHECK(x && y, "alloc");
        for (int i = 0; i < n * m; i++)
            x[i] = 30.0f * val((uint32_t)(i + 1000 * t));
        x[0] = -1e30f; /* underflows to exactly 0 */
        memcpy(y, x, (size_t)n * m * sizeof *y);
        as_softmax_rows(y, n, m);
        for (int i = 0; i < n; i++) {
            double mx = -INFINITY, z = 0.0, sum = 0.0;
            for (int j = 0; j < m; j++)
                mx = fmax(mx, x[i * m + j]);
            for (int j = 0; j < m; j++)
                z += exp((double)x[i * m + j] - mx);
            for (int j = 0; j < m; j++) {
                const double ref = exp((double)x[i * m + j] - mx) / z;
                NEARF(y[i * m + j], ref, 1e-6 * fmax(ref, 1e-3),
                           "softmax row %d of length %d, entry %d", i, m, j);
                sum += y[i * m + j];
            }
            NEARF(sum, 1.0, 1e-5, "softmax row %d of length %d sums to 1", i, m);
        }
        if (m > 1)
            CHECK(y[0] == 0.0f, "exp of -1e30 is 0 (length %d)", m);
        free(x);
        free(y);
    }
}

typedef struct { int *hits; int nt_bad, nt; } PoolCtx;

static void count_item(void *ctx, int item, int tid)
{
    PoolCtx *c = ctx;
    __atomic_add_fetch(&c->hits[item], 1, __ATOMIC_RELAXED);
    if (tid < 0 || tid >= c->nt)
        __atomic_store_n(&c->nt_bad, 1, __ATOMIC_RELAXED);
}

static void test_pool(void)
{
    enum { N = 1000 };
    int hits[N] = { 0 };
    PoolCtx c = { hits, 0, as_threads() };
    for (int rep = 0; rep < 50; rep++)
        as_parallel_for(N, count_item, &c);
    as_parallel_for_blas1(N, count_item, &c);
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += hits[i] != 51;
    CHECK(bad == 0, "every item ran exactly once per region (%d wrong)", bad);
    CHECK(!c.nt_bad, "thread ids below as_threads() (%d)", c.nt);
    CHECK(openblas_get_num_threads() == as_threads(), "blas1 restores OpenBLAS's thread count");
}

/* More threads than items: workers left out of one region must not take part
 * in (or finish) the next one by reading its settings late. Every item runs
 * exactly once, and none is still running when its region returns. */
typedef struct { int running, hits, late; } BusyCtx;

static void busy_item(void *ctx, int item, int tid)
{
    (void)item;
    (void)tid;
    BusyCtx *c = ctx;
    __atomic_add_fetch(&c->running, 1, __ATOMIC_SEQ_CST);
    volatile int spin = 0;
    for (int i = 0; i < 200 + 50 * item; i++)
        spin += i;
    __atomic_add_fetch(&c->hits, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(&c->running, 1, __ATOMIC_SEQ_CST);
}

static void test_pool_few_items(void)
{
    as_pool_set_threads(4);
    BusyCtx c = { 0, 0, 0 };
    int expect = 0;
    for (int rep = 0; rep < 20000; rep++) {
        const int n = 2 + rep % 3; /* 2..4 items on 4 threads */
        as_parallel_for(n, busy_item, &c);
        expect += n;
        if (__atomic_load_n(&c.running, __ATOMIC_SEQ_CST) != 0)
            c.late++;
    }
    CHECK(c.hits == expect, "items run: %d, expected %d", c.hits, expect);
    CHECK(c.late == 0, "%d regions returned while an item was still running", c.late);
    /* back to 2 threads: the workers started for 4 must stay out (kernels size
     * per-thread scratch by as_threads()) */
    as_pool_set_threads(2);
    int hits[64] = { 0 };
    PoolCtx pc = { hits, 0, 2 };
    for (int rep = 0; rep < 200; rep++)
        as_parallel_for(64, count_item, &pc);
    CHECK(!pc.nt_bad, "a thread id at or above 2 ran after going from 4 threads to 2");
    /* the count is alignseg's own: 0 means every online core (at most 64),
     * and OpenBLAS is given the same count */
    as_pool_set_threads(0);
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(as_threads() == (online > 64 ? 64 : online < 1 ? 1 : online),
          "as_pool_set_threads(0): %d threads, %ld cores online", as_threads(), online);
    as_pool_set_threads(3);
    CHECK(as_threads() == 3 && openblas_get_num_threads() == 3,
          "as_pool_set_threads(3): pool %d, OpenBLAS %d", as_threads(), openblas_get_num_threads());
    as_pool_set_threads(1);
}

/* Encoder-like shapes: 301 tokens, width 384, 6 heads, hidden 1536. */
enum { NT = 301, D = 384, HID = 1536, HEADS = 6 };

typedef struct {
    float *y_lin, *y_gelu, *y_acc, *y_norm, *attn, *row0;
} Outputs;

static void run_all(const float *x, const AsLinear *l1, const AsLinear *l2, const AsNorm *nm,
                    const float *qkv, Outputs *o)
{
    as_linear(x, NT, l1, o->y_lin);
    as_linear_gelu(x, NT, l1, o->y_gelu);
    for (int i = 0; i < NT * D; i++)
        o->y_acc[i] = val((uint32_t)(900000 + i));
    as_linear_accumulate(o->y_gelu, NT, l2, o->y_acc);
    as_layernorm(x, NT, nm, o->y_norm);
    float *scratch = malloc((size_t)NT * NT * sizeof *scratch);
    CHECK(scratch != NULL, "alloc");
    as_mha_lowmem(qkv, 3 * D, qkv + D, 3 * D, qkv + 2 * D, 3 * D, NT, NT, D, HEADS, scratch,
                  o->row0, o->attn);
    free(scratch);
}

static float *falloc(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p)
        abort();
    return p;
}

static Outputs outputs_alloc(void)
{
    Outputs o = { falloc((size_t)NT * HID), falloc((size_t)NT * HID), falloc((size_t)NT * D),
                  falloc((size_t)NT * D), falloc((size_t)NT * D), falloc((size_t)HEADS * NT) };
    return o;
}

static void outputs_free(Outputs *o)
{
    free(o->y_lin);
    free(o->y_gelu);
    free(o->y_acc);
    free(o->y_norm);
    free(o->attn);
    free(o->row0);
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void test_threaded_kernels(void)
{
    float *x = falloc((size_t)NT * D), *w1 = falloc((size_t)HID * D), *b1 = falloc(HID),
          *w2 = falloc((size_t)D * HID), *b2 = falloc(D), *nw = falloc(D), *nb = falloc(D),
          *qkv = falloc((size_t)NT * 3 * D);
    for (int i = 0; i < NT * D; i++)
        x[i] = 2.0f * val((uint32_t)i);
    for (int i = 0; i < HID * D; i++) {
        w1[i] = 0.05f * val((uint32_t)(100000 + i));
        w2[i] = 0.05f * val((uint32_t)(800000 + i));
    }
    for (int i = 0; i < HID; i++)
        b1[i] = val((uint32_t)(700000 + i));
    for (int i = 0; i < D; i++) {
        b2[i] = val((uint32_t)(710000 + i));
        nw[i] = 1.0f + 0.5f * val((uint32_t)(720000 + i));
        nb[i] = val((uint32_t)(730000 + i));
    }
    for (int i = 0; i < NT * 3 * D; i++)
        qkv[i] = 3.0f * val((uint32_t)(2000000 + i));
    AsLinear l1 = { w1, b1, HID, D, NULL, NULL }, l2 = { w2, b2, D, HID, NULL, NULL };
    AsNorm nm = { nw, nb, D, 1e-6f };

    Outputs one = outputs_alloc(), two = outputs_alloc();
    as_pool_set_threads(1);
    run_all(x, &l1, &l2, &nm, qkv, &one);
    as_pool_set_threads(2);
    CHECK(as_threads() == 2, "as_threads follows as_pool_set_threads");
    run_all(x, &l1, &l2, &nm, qkv, &two);
    CHECK(openblas_get_num_threads() == 2, "OpenBLAS threads restored after attention");

    /* naive references (double) on sampled rows */
    for (int i = 0; i < NT; i += 37)
        for (int o = 0; o < HID; o += 101) {
            double s = b1[o];
            for (int k = 0; k < D; k++)
                s += (double)x[i * D + k] * w1[o * D + k];
            NEARF(two.y_lin[i * HID + o], s, 1e-4, "linear row %d col %d", i, o);
            NEARF(two.y_gelu[i * HID + o], gelu_ref(s), 1e-4, "linear+gelu row %d", i);
        }
    for (int i = 0; i < NT; i += 50) {
        double mean = 0.0, var = 0.0;
        for (int k = 0; k < D; k++)
            mean += x[i * D + k];
        mean /= D;
        for (int k = 0; k < D; k++)
            var += (x[i * D + k] - mean) * (x[i * D + k] - mean);
        var /= D;
        for (int k = 0; k < D; k += 13)
            NEARF(two.y_norm[i * D + k], (x[i * D + k] - mean) / sqrt(var + 1e-6) * nw[k] + nb[k],
                       1e-5, "layernorm row %d", i);
    }
    const int hd = D / HEADS;
    for (int h = 0; h < HEADS; h++)
        for (int i = 0; i < NT; i += 60) {
            double *s = malloc(NT * sizeof *s), mx = -1e300, z = 0.0;
            CHECK(s != NULL, "alloc");
            for (int j = 0; j < NT; j++) {
                s[j] = 0.0;
                for (int c = 0; c < hd; c++)
                    s[j] += (double)qkv[i * 3 * D + h * hd + c] * qkv[j * 3 * D + D + h * hd + c];
                s[j] /= sqrt((double)hd);
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < NT; j++)
                z += exp(s[j] - mx);
            if (i == 0)
                for (int j = 0; j < NT; j += 7)
                    NEARF(two.row0[h * NT + j], exp(s[j] - mx) / z, 1e-6, "row0 head %d", h);
            for (int c = 0; c < hd; c += 9) {
                double o = 0.0;
                for (int j = 0; j < NT; j++)
                    o += exp(s[j] - mx) / z * qkv[j * 3 * D + 2 * D + h * hd + c];
                NEARF(two.attn[i * D + h * hd + c], o, 1e-5, "attention head %d row %d", h,
                           i);
            }
            free(s);
        }
    /* few rows, many outputs: the products are split by columns */
    {
        enum { FEW = 40 };
        float *yl = falloc((size_t)FEW * HID), *yg = falloc((size_t)FEW * HID);
        as_linear(x, FEW, &l1, yl);
        as_linear_gelu(x, FEW, &l1, yg);
        for (int i = 0; i < FEW; i += 3)
            for (int o = 0; o < HID; o += 7) {
                double s = b1[o];
                for (int k = 0; k < D; k++)
                    s += (double)x[i * D + k] * w1[o * D + k];
                NEARF(yl[i * HID + o], s, 1e-4, "column-split linear row %d col %d", i, o);
                NEARF(yg[i * HID + o], gelu_ref(s), 1e-4, "column-split gelu row %d col %d", i,
                      o);
            }
        free(yl);
        free(yg);
    }
    /* one thread and two threads agree */
    CHECK(max_diff(one.y_lin, two.y_lin, (size_t)NT * HID) <= 1e-5, "linear: 1 vs 2 threads");
    CHECK(max_diff(one.y_gelu, two.y_gelu, (size_t)NT * HID) <= 1e-5, "gelu: 1 vs 2 threads");
    CHECK(max_diff(one.y_acc, two.y_acc, (size_t)NT * D) <= 1e-5, "accumulate: 1 vs 2 threads");
    CHECK(max_diff(one.y_norm, two.y_norm, (size_t)NT * D) == 0.0, "layernorm: 1 vs 2 threads");
    CHECK(max_diff(one.attn, two.attn, (size_t)NT * D) <= 1e-5, "attention: 1 vs 2 threads");
    CHECK(max_diff(one.row0, two.row0, (size_t)HEADS * NT) <= 1e-7, "row0: 1 vs 2 threads");
    outputs_free(&one);
    outputs_free(&two);
    free(x);
    free(w1);
    free(b1);
    free(w2);
    free(b2);
    free(nw);
    free(nb);
    free(qkv);
}

int main(void)
{
    test_gelu_accuracy();
    test_softmax_accuracy();
    as_pool_set_threads(2);
    test_pool();
    test_pool_few_items();
    test_threaded_kernels();
    return check_report("kernels_fast");
}
