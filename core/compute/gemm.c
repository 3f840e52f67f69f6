/* gemm: see gemm.h. The driver (blocking, threads, epilogue flags) and the
 * portable C variant; the AVX2 and AVX-512 variants live in gemm_avx2.c and
 * gemm_avx512.c (gemm_kern.h), chosen from as_cpu_path(). */
#include "gemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu.h"
#include "gemm_kern.h"
#include "activations.h"
#include "pool.h"
#include "simd512.h"

#define NR GEMM_NR
#define KC GEMM_KC

/* ---- portable C variant ---------------------------------------------------------- */

#define C_MR 4 /* rows of the C tile (4 x 16 sums) */

void gemm_tile_write(const float *t, int ldt, float *y, int ldy, int mr, int nr, const GemmEpi *e)
{
    for (int r = 0; r < mr; r++) {
        float *yr = y + (size_t)r * ldy;
        const float *tr = t + (size_t)r * ldt;
        for (int j = 0; j < nr; j++) {
            float v = tr[j];
            if (e->load)
                v += yr[j];
            if (e->bias)
                v += e->bias[j];
            yr[j] = v;
        }
        if (e->gelu)
            as_bias_gelu_row(yr, NULL, nr);
    }
}

void gemm_pack_rows_c(int mr, const float *x, int n, int ldx, int r0, int mc, int k0, int kc,
                      const AsGemmNorm *nm, const float *mean, const float *rstd, float *dst)
{
    float t[KC];
    for (int i = 0; i < mc; i += mr) {
        float *d = dst + (size_t)i * kc;
        for (int r = 0; r < mr; r++) {
            const int row = r0 + i + r;
            const float *src = NULL;
            if (row < n && nm) {
                as_layernorm_apply(x + (size_t)row * ldx, k0, kc, mean[i + r], rstd[i + r],
                                   nm->w, nm->b, t);
                src = t;
            } else if (row < n) {
                src = x + (size_t)row * ldx + k0;
            }
            for (int k = 0; k < kc; k++)
                d[(size_t)k * mr + r] = src ? src[k] : 0.0f;
        }
    }
}

static void tile_c(int kc, const float *a, const float *b, size_t bs, float *y, int ldy, int mr,
                   int nr, const GemmEpi *e)
{
    (void)bs;
    float t[C_MR * NR] = { 0 };
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < C_MR; r++) {
            const float av = a[k * C_MR + r];
            for (int j = 0; j < NR; j++)
                t[r * NR + j] += av * b[k * NR + j];
        }
    gemm_tile_write(t, NR, y, ldy, mr, nr, e);
}

static int pack_panel_c(const float *w, int in, int o0, float *d)
{
    (void)w, (void)in, (void)o0, (void)d;
    return 0;
}

static float fma_loop_c(long iters, float seed)
{
    float c[8];
    for (int i = 0; i < 8; i++)
        c[i] = seed + 1e-4f * i;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++)
            c[j] = c[j] * 0.999f + 1e-4f;
    return c[0] + c[1] + c[2] + c[3] + c[4] + c[5] + c[6] + c[7];
}

static const GemmKernels gemm_generic = {
    C_MR, 1, 128, { tile_c, NULL, NULL }, gemm_pack_rows_c, pack_panel_c, fma_loop_c, 16.0,
};

/* ---- dispatch ----------------------------------------------------------------- */

static const GemmKernels *kernels(void)
{
    switch (as_cpu_path()) {
#if defined(__x86_64__) && defined(__GNUC__)
    case AS_CPU_AVX512:
        return &gemm_avx512;
    case AS_CPU_AVX2:
        return &gemm_avx2;
#endif
    default:
        return &gemm_generic;
    }
}

size_t as_gemm_packed_floats(int out, int in)
{
    if (out <= 0 || in <= 0)
        return 0;
    return (size_t)(out + NR - 1) / NR * NR * (size_t)in;
}

void as_gemm_pack(const float *w, int out, int in, float *dst)
{
    const GemmKernels *kn = kernels();
    const int panels = (out + NR - 1) / NR;
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * in * NR;
        const int k0 = (p + 1) * NR <= out ? kn->pack_panel(w, in, p * NR, d) : 0;
        for (int j = 0; j < NR; j++) {
            const int o = p * NR + j;
            for (int k = k0; k < in; k++)
                d[(size_t)k * NR + j] = o < out ? w[(size_t)o * in + k] : 0.0f;
        }
    }
}

/* ---- the driver ----------------------------------------------------------------- */

/* Rows of block `item` of `items` over n rows in whole tiles of mr rows: the
 * tiles are dealt out as evenly as possible (block sizes differ by at most
 * one tile), so that no thread waits at the end of a product for a short
 * last block (901 rows in 8 blocks of 15 tiles and one of 8 left one of two
 * threads idle for 6% of the product). */
static void block_rows(int item, int items, int n, int mr, int *r_begin, int *r_end)
{
    const int tiles = (n + mr - 1) / mr;
    const int t0 = (int)((long)item * tiles / items), t1 = (int)((long)(item + 1) * tiles / items);
    *r_begin = t0 * mr;
    *r_end = t1 * mr < n ? t1 * mr : n;
}

typedef struct {
    const GemmKernels *kn;
    const float *x, *packed, *bias;
    const AsGemmNorm *norm;
    int n, ldx, out, in, ldy, items;
    AsEpilogue epi;
    float *y;
} PackedJob;

/* packed activations: one buffer per thread (two callers on different threads
 * may both run as tid 0 when one finds the pool busy) */
static _Thread_local float g_abuf[GEMM_MC_MAX * KC + 64] __attribute__((aligned(64)));

/* Rows [r_begin, r_end) of the product (r_begin a multiple of the tile's rows). */
static void packed_rows(const PackedJob *j, int r_begin, int r_end)
{
    const GemmKernels *kn = j->kn;
    const int mr_full = kn->mr, np = kn->np, mcb = kn->mc;
    float *abuf = g_abuf;
    const int panels = (j->out + NR - 1) / NR;
    const size_t bs = (size_t)j->in * NR; /* floats between weight panels */
    const int passes = (j->in + KC - 1) / KC;
    const int kc_even = (j->in + passes - 1) / passes; /* equal depths, at most KC */
    for (int r0 = r_begin; r0 < r_end; r0 += mcb) {
        const int mc = r_end - r0 < mcb ? r_end - r0 : mcb;
        const int mc_pad = (mc + mr_full - 1) / mr_full * mr_full;
        float mean[GEMM_MC_MAX], rstd[GEMM_MC_MAX];
        if (j->norm)
            for (int r = 0; r < mc; r++)
                as_layernorm_stats(j->x + (size_t)(r0 + r) * j->ldx, j->in, j->norm->eps,
                                   &mean[r], &rstd[r]);
        for (int k0 = 0; k0 < j->in; k0 += kc_even) {
            const int kc = j->in - k0 < kc_even ? j->in - k0 : kc_even;
            const bool first = k0 == 0, last = k0 + kc == j->in;
            kn->pack_rows(mr_full, j->x, r0 + mc, j->ldx, r0, mc_pad, k0, kc, j->norm, mean,
                          rstd, abuf);
            for (int p = 0; p < panels; p += np) {
                const int pn = panels - p < np ? panels - p : np; /* panels of this tile */
                const int c0 = p * NR;
                const int nr = j->out - c0 < pn * NR ? j->out - c0 : pn * NR;
                const float *bp = j->packed + (size_t)p * bs + (size_t)k0 * NR;
                const GemmEpi e = { !first || j->epi == AS_EPI_ACCUMULATE,
                                    first && j->bias ? j->bias + c0 : NULL,
                                    last && j->epi == AS_EPI_GELU };
                const GemmTileFn tile = kn->tile[pn - 1];
                for (int i = 0; i < mc; i += mr_full) {
                    const int mr = mc - i < mr_full ? mc - i : mr_full;
                    tile(kc, abuf + (size_t)i * kc, bp, bs, j->y + (size_t)(r0 + i) * j->ldy + c0,
                         j->ldy, mr, nr, &e);
                }
            }
        }
    }
}

static void packed_item(void *ctx, int item, int tid)
{
    (void)tid;
    const PackedJob *j = ctx;
    int r_begin, r_end;
    block_rows(item, j->items, j->n, j->kn->mr, &r_begin, &r_end);
    packed_rows(j, r_begin, r_end);
}

#define GEMM_PAR_FLOPS 2e6 /* below this the caller's thread does it all */

/* How many row blocks n rows are split into: whole tiles, at most mc rows
 * each, their count a multiple of the threads so that every thread gets the
 * same share; as few as that allows (one block per thread measured 65-69 ms
 * for the ViT-S/16 encoder at 224, two or four 71-73 ms: each block re-reads
 * all of the weights). */
static int row_blocks(const GemmKernels *kn, int n, int nt, int maxrows)
{
    const int tiles = (n + kn->mr - 1) / kn->mr;
    int items = nt;
    if (items > tiles)
        items = tiles;
    while ((tiles + items - 1) / items * kn->mr > maxrows)
        items += nt;
    return items;
}

void as_gemm_packed(const float *x, int n, int ldx, const AsGemmNorm *norm, const float *packed,
                    int out, int in, const float *bias, AsEpilogue epi, float *y, int ldy)
{
    if (n <= 0 || out <= 0 || in <= 0)
        return;
    const GemmKernels *kn = kernels();
    int nt = as_threads();
    if (2.0 * n * out * (double)in < GEMM_PAR_FLOPS)
        nt = 1;
    const int items = row_blocks(kn, n, nt, kn->mc);
    PackedJob j = { kn, x, packed, bias, norm, n, ldx, out, in, ldy, items, epi, y };
    if (nt > 1 && items > 1)
        as_parallel_for(items, packed_item, &j);
    else
        for (int i = 0; i < items; i++)
            packed_item(&j, i, 0);
}

/* ---- a transformer MLP in one pass over the rows ---------------------------------- */

#ifndef MLP_ROWS
#define MLP_ROWS 128
#endif
typedef struct {
    PackedJob fc1, fc2;
} MlpJob;

/* One row block through fc1 (+GELU) into hidden, then, while those hidden
 * rows are still in this core's cache, through fc2 into y. Every row is
 * reduced exactly as by the two separate products. */
static void mlp_item(void *ctx, int item, int tid)
{
    (void)tid;
    const MlpJob *j = ctx;
    int r_begin, r_end;
    block_rows(item, j->fc1.items, j->fc1.n, j->fc1.kn->mr, &r_begin, &r_end);
    packed_rows(&j->fc1, r_begin, r_end);
    packed_rows(&j->fc2, r_begin, r_end);
}

void as_gemm_packed_mlp(const float *x, int n, int in, const AsGemmNorm *norm,
                        const float *packed1, const float *bias1, int hid, const float *packed2,
                        const float *bias2, int out, float *hidden, float *y, int ldy)
{
    if (n <= 0 || out <= 0 || hid <= 0 || in <= 0)
        return;
    const GemmKernels *kn = kernels();
    int nt = as_threads();
    if (4.0 * n * hid * (double)out < GEMM_PAR_FLOPS)
        nt = 1;
    const int items = row_blocks(kn, n, nt, MLP_ROWS);
    MlpJob j = {
        { kn, x, packed1, bias1, norm, n, in, hid, in, hid, items, AS_EPI_GELU, hidden },
        { kn, hidden, packed2, bias2, NULL, n, hid, out, hid, ldy, items, AS_EPI_ACCUMULATE, y },
    };
    if (nt > 1 && items > 1)
        as_parallel_for(items, mlp_item, &j);
    else
        for (int i = 0; i < items; i++)
            mlp_item(&j, i, 0);
}

/* ---- bfloat16 products ------------------------------------------------------------ */

bool as_gemm_bf16_available(void)
{
    return as_cpu_path() == AS_CPU_AVX512 && as_cpu_has_bf16();
}

size_t as_gemm_packed_bf16_count(int out, int in)
{
    if (out <= 0 || in <= 0)
        return 0;
    return (size_t)(out + NR - 1) / NR * NR * (size_t)((in + 1) / 2 * 2);
}

/* float -> bfloat16, rounded to nearest even (as vcvtneps2bf16 for normal
 * numbers) */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) /* inf, nan: keep */
        return (uint16_t)((u >> 16) | ((u & 0xffffu) ? 0x40u : 0u));
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void as_gemm_pack_bf16(const float *w, int out, int in, uint16_t *dst)
{
    const int in2 = (in + 1) / 2, panels = (out + NR - 1) / NR;
    for (int p = 0; p < panels; p++) {
        uint16_t *d = dst + (size_t)p * in2 * 32;
        for (int k2 = 0; k2 < in2; k2++)
            for (int j = 0; j < NR; j++) {
                const int o = p * NR + j;
                for (int t = 0; t < 2; t++) {
                    const int k = 2 * k2 + t;
                    d[((size_t)k2 * NR + j) * 2 + t] =
                        o < out && k < in ? to_bf16(w[(size_t)o * in + k]) : 0;
                }
            }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define AS_TARGET_BF16C                                                                         \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma")))

/* The float32 panels of pack_rows (kc x mr each, mr = 8) as bfloat16 depth
 * pairs: panel i (kc2 x 8 pairs) at dst + i kc2 16; an odd last depth pairs
 * with zero. */
AS_TARGET_BF16C static void panels_to_bf16(const float *src, int npanels, int kc, uint16_t *dst)
{
    const int kc2 = (kc + 1) / 2;
    const __m512i idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int i = 0; i < npanels; i++) {
        const float *s = src + (size_t)i * kc * 8;
        uint16_t *d = dst + (size_t)i * kc2 * 16;
        for (int k2 = 0; k2 < kc2; k2++) {
            const __m256 ev = _mm256_loadu_ps(s + (size_t)2 * k2 * 8);
            const __m256 od = 2 * k2 + 1 < kc ? _mm256_loadu_ps(s + (size_t)(2 * k2 + 1) * 8)
                                              : _mm256_setzero_ps();
            const __m512 v = _mm512_permutex2var_ps(_mm512_castps256_ps512(ev), idx,
                                                    _mm512_castps256_ps512(od));
            _mm256_storeu_si256((__m256i *)(void *)(d + (size_t)k2 * 16),
                                (__m256i)_mm512_cvtneps_pbh(v));
        }
    }
}

typedef struct {
    const float *x, *bias;
    const uint16_t *packed;
    const AsGemmNorm *norm;
    int n, ldx, out, in, ldy, items;
    AsEpilogue epi;
    float *y;
} Bf16Job;

static _Thread_local uint16_t g_hbuf[GEMM_MC_MAX * (KC + 2) + 64] __attribute__((aligned(64)));

static void bf16_item(void *ctx, int item, int tid)
{
    (void)tid;
    const Bf16Job *j = ctx;
    const GemmKernels *kf = &gemm_avx512; /* float32 packing of the activations */
    const GemmBf16Kernels *kn = &gemm_bf16;
    const int mr_full = kn->mr, np = kn->np, mcb = kn->mc;
    const int panels = (j->out + NR - 1) / NR;
    const size_t bs = (size_t)(j->in + 1) / 2 * 32; /* uint16 between weight panels */
    int r_begin, r_end;
    block_rows(item, j->items, j->n, mr_full, &r_begin, &r_end);
    const int passes = (j->in + KC - 1) / KC;
    int kc_even = (j->in + passes - 1) / passes;
    kc_even += kc_even & 1; /* whole depth pairs per pass */
    for (int r0 = r_begin; r0 < r_end; r0 += mcb) {
        const int mc = r_end - r0 < mcb ? r_end - r0 : mcb;
        const int mc_pad = (mc + mr_full - 1) / mr_full * mr_full;
        float mean[GEMM_MC_MAX], rstd[GEMM_MC_MAX];
        if (j->norm)
            for (int r = 0; r < mc; r++)
                as_layernorm_stats(j->x + (size_t)(r0 + r) * j->ldx, j->in, j->norm->eps,
                                   &mean[r], &rstd[r]);
        for (int k0 = 0; k0 < j->in; k0 += kc_even) {
            const int kc = j->in - k0 < kc_even ? j->in - k0 : kc_even;
            const int kc2 = (kc + 1) / 2;
            const bool first = k0 == 0, last = k0 + kc == j->in;
            kf->pack_rows(mr_full, j->x, r0 + mc, j->ldx, r0, mc_pad, k0, kc, j->norm, mean,
                          rstd, g_abuf);
            panels_to_bf16(g_abuf, mc_pad / mr_full, kc, g_hbuf);
            for (int p = 0; p < panels; p += np) {
                const int pn = panels - p < np ? panels - p : np;
                const int c0 = p * NR;
                const int nr = j->out - c0 < pn * NR ? j->out - c0 : pn * NR;
                const uint16_t *bp = j->packed + (size_t)p * bs + (size_t)(k0 / 2) * 32;
                const GemmEpi e = { !first || j->epi == AS_EPI_ACCUMULATE,
                                    first && j->bias ? j->bias + c0 : NULL,
                                    last && j->epi == AS_EPI_GELU };
                const GemmTileBf16Fn tile = kn->tile[pn - 1];
                for (int i = 0; i < mc; i += mr_full) {
                    const int mr = mc - i < mr_full ? mc - i : mr_full;
                    tile(kc2, g_hbuf + (size_t)i * kc2 * 2, bp, bs,
                         j->y + (size_t)(r0 + i) * j->ldy + c0, j->ldy, mr, nr, &e);
                }
            }
        }
    }
}
#endif

int as_gemm_packed_bf16(const float *x, int n, int ldx, const AsGemmNorm *norm,
                        const uint16_t *packed, int out, int in, const float *bias,
                        AsEpilogue epi, float *y, int ldy)
{
    if (!as_gemm_bf16_available())
        return AS_ERR_UNSUPPORTED;
    if (n <= 0 || out <= 0 || in <= 0)
        return 0;
#if defined(__x86_64__) && defined(__GNUC__)
    const GemmBf16Kernels *kn = &gemm_bf16;
    int nt = as_threads();
    if (2.0 * n * out * (double)in < GEMM_PAR_FLOPS)
        nt = 1;
    const int tiles = (n + kn->mr - 1) / kn->mr;
    int items = nt;
    if (items > tiles)
        items = tiles;
    while ((tiles + items - 1) / items * kn->mr > kn->mc)
        items += nt;
    Bf16Job j = { x, bias, packed, norm, n, ldx, out, in, ldy, items, epi, y };
    if (nt > 1 && items > 1)
        as_parallel_for(items, bf16_item, &j);
    else
        for (int i = 0; i < items; i++)
            bf16_item(&j, i, 0);
#else
    (void)x, (void)ldx, (void)norm, (void)packed, (void)bias, (void)epi, (void)y, (void)ldy;
#endif
    return 0;
}

/* ---- arithmetic ceiling ---------------------------------------------------------- */

typedef struct {
    const GemmKernels *kn;
    long iters;
    float sink[64];
} FmaJob;

static void fma_item(void *ctx, int item, int tid)
{
    (void)tid;
    FmaJob *j = ctx;
    j->sink[item & 63] = j->kn->fma_loop(j->iters, (float)item);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double as_gemm_fma_peak(double seconds)
{
    const int nt = as_threads();
    FmaJob j = { kernels(), 200000, { 0 } };
    double best = 0.0;
    const double end = now_s() + seconds;
    do {
        const double t0 = now_s();
        as_parallel_for(nt, fma_item, &j);
        const double dt = now_s() - t0;
        const double g = (double)nt * j.iters * j.kn->fma_flops_per_iter / dt * 1e-9;
        if (g > best)
            best = g;
    } while (now_s() < end);
    return best;
}

const char *as_gemm_fma_unit(void)
{
    static const char *const unit[AS_CPU_PATHS] = { "scalar", "ymm", "zmm" };
    return unit[as_cpu_path()];
}
