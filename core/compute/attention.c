/* attention: see attention.h */
#include "attention.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "activations.h"
#include "attn_avx512.h"
#include "cpu.h"
#include "linear.h"
#include "pool.h"
#include "simd.h"

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
    as_sgemm_serial(true, rows, j->nk, j->hd, j->scale, j->q + (size_t)r0 * j->ldq + ho, j->ldq,
                    j->k + ho, j->ldk, 0.0f, s, j->nk);
    for (int i = 0; i < rows; i++)
        inv[i] = as_softmax_row_unnorm(s + (size_t)i * j->nk, j->nk);
    if (j->row0 && r0 == 0) {
        float *dst = j->row0 + (size_t)h * j->nk;
        for (int c = 0; c < j->nk; c++)
            dst[c] = s[c] * inv[0];
    }
    float *o = j->out + (size_t)r0 * j->dim + ho;
    as_sgemm_serial(false, rows, j->hd, j->nk, 1.0f, s, j->nk, j->v + ho, j->ldv, 0.0f, o,
                    j->dim);
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

size_t as_mha_packed_batch_scratch(int count, int nq, int nk, int dim, int heads, int threads)
{
    (void)nq;
    if (count <= 0 || nk <= 0 || heads <= 0 || dim <= 0 || threads < 1)
        return 0;
    const size_t nkp = ((size_t)nk + 15) / 16 * 16;
    return (size_t)count * heads * PK_HD * (nkp + (size_t)nk) + (size_t)threads * PK_R * nkp;
}

size_t as_mha_packed_scratch(int nq, int nk, int dim, int heads, int threads)
{
    return as_mha_packed_batch_scratch(1, nq, nk, dim, heads, threads);
}

#ifdef AS_X86_SIMD
typedef struct {
    const float *q, *k, *v;
    int ldq, ldk, ldv, nq, nk, nkp, dim, heads, nblk;
    float *kp, *vp, *s; /* packed keys, packed values (per image and head), per-thread
                         * (PK_R, nkp) scores */
    float *row0, *out;
    bool avx512; /* the AVX-512 tiles (attn_avx512.h) instead of pk_tile */
} PackedAttn;

/* item: image item / heads, head item % heads */
__attribute__((target("avx2,fma"))) static void pk_pack(void *ctx, int item, int tid)
{
    (void)tid;
    const PackedAttn *j = ctx;
    const int img = item / j->heads, h = item % j->heads;
    const float *kimg = j->k + (size_t)img * j->nk * j->ldk;
    const float *vimg = j->v + (size_t)img * j->nk * j->ldv;
    float *kp = j->kp + (size_t)item * j->nkp * PK_HD;
    const __m256 eighth = _mm256_set1_ps(0.125f);
    for (int p = 0; p < j->nkp / 16; p++) {
        float *panel = kp + (size_t)p * PK_HD * 16;
        if (p * 16 + 16 <= j->nk) { /* 16 keys: 8x8 transposes, 8 depths at a time */
            const float *k0 = kimg + (size_t)p * 16 * j->ldk + (size_t)h * PK_HD;
            for (int d = 0; d < PK_HD; d += 8) {
                __m256 lo[8], hi[8];
                for (int jj = 0; jj < 8; jj++) {
                    lo[jj] = _mm256_loadu_ps(k0 + (size_t)jj * j->ldk + d);
                    hi[jj] = _mm256_loadu_ps(k0 + (size_t)(8 + jj) * j->ldk + d);
                }
                transpose8(lo);
                transpose8(hi);
                for (int q = 0; q < 8; q++) {
                    _mm256_storeu_ps(panel + (d + q) * 16, _mm256_mul_ps(lo[q], eighth));
                    _mm256_storeu_ps(panel + (d + q) * 16 + 8, _mm256_mul_ps(hi[q], eighth));
                }
            }
            continue;
        }
        for (int jj = 0; jj < 16; jj++) {
            const int key = p * 16 + jj;
            const float *kr = kimg + (size_t)key * j->ldk + (size_t)h * PK_HD;
            for (int d = 0; d < PK_HD; d++)
                panel[d * 16 + jj] = key < j->nk ? kr[d] * 0.125f : 0.0f;
        }
    }
    float *vp = j->vp + (size_t)item * j->nk * PK_HD;
    for (int c = 0; c < PK_HD / 16; c++)
        for (int key = 0; key < j->nk; key++)
            memcpy(vp + ((size_t)c * j->nk + key) * 16,
                   vimg + (size_t)key * j->ldv + (size_t)h * PK_HD + c * 16, 16 * sizeof(float));
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
        inv[r] = as_softmax_row_unnorm(sr, j->nk);
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

/* item: (image, head) item / nblk, block of query rows item % nblk */
static void pk_item(void *ctx, int item, int tid)
{
    const PackedAttn *j = ctx;
    const int ih = item / j->nblk, b = item % j->nblk;
    const int img = ih / j->heads, h = ih % j->heads;
    const int r0 = b * PK_BLK;
    const int r1 = j->nq - r0 < PK_BLK ? j->nq : r0 + PK_BLK;
    const float *kp = j->kp + (size_t)ih * j->nkp * PK_HD;
    const float *vp = j->vp + (size_t)ih * j->nk * PK_HD;
    float *s = j->s + (size_t)tid * PK_R * j->nkp; /* one tile's scores, in L1 */
    const float *qimg = j->q + (size_t)img * j->nq * j->ldq;
    float *oimg = j->out + (size_t)img * j->nq * j->dim;
    for (int r = r0; r < r1; r += PK_R) {
        const int rows = r1 - r < PK_R ? r1 - r : PK_R;
        const float *q = qimg + (size_t)r * j->ldq + (size_t)h * PK_HD;
        float *o = oimg + (size_t)r * j->dim + (size_t)h * PK_HD;
        float *r0w = r == 0 && j->row0 ? j->row0 + (size_t)ih * j->nk : NULL;
        if (j->avx512)
            attn_tile_avx512(q, j->ldq, kp, j->nkp, vp, j->nk, s, o, j->dim, rows, r0w);
        else
            pk_tile(j, q, kp, vp, s, o, rows, r0w);
    }
}
#endif

void as_mha_packed_batch(int count, const float *q, int ldq, const float *k, int ldk,
                         const float *v, int ldv, int nq, int nk, int dim, int heads,
                         float *scratch, size_t scratch_floats, float *row0, float *out)
{
    if (count <= 0 || nq <= 0 || nk <= 0 || heads <= 0)
        return;
#ifdef AS_X86_SIMD
    const int nt = as_threads();
    if (as_cpu_path() >= AS_CPU_AVX2 && dim == heads * PK_HD &&
        (size_t)nk * PK_HD * heads * count < INT32_MAX && (size_t)count * heads < INT32_MAX / 64 &&
        as_mha_packed_batch_scratch(count, nq, nk, dim, heads, nt) <= scratch_floats) {
        const int nkp = (nk + 15) / 16 * 16;
        const size_t ih = (size_t)count * heads;
        PackedAttn j = { q, k, v, ldq, ldk, ldv, nq, nk, nkp, dim, heads,
                         (nq + PK_BLK - 1) / PK_BLK, scratch,
                         scratch + ih * nkp * PK_HD,
                         scratch + ih * PK_HD * ((size_t)nkp + nk), row0, out,
                         as_cpu_path() == AS_CPU_AVX512 };
        as_parallel_for((int)ih, pk_pack, &j);
        as_parallel_for((int)ih * j.nblk, pk_item, &j);
        return;
    }
#endif
    /* one image at a time, each on all threads, in blocks of rows that do not
     * depend on the thread count (every row's numbers are then the same
     * with any threads and batch); as_mha_lowmem when the scratch is short */
    const int nthr = as_threads(), blk = nq < ATTN_ROWS ? nq : ATTN_ROWS;
    if ((size_t)nthr * blk * nk <= scratch_floats) {
        const int hd = dim / heads;
        for (int i = 0; i < count; i++) {
            AttnJob j = { q + (size_t)i * nq * ldq, k + (size_t)i * nk * ldk,
                          v + (size_t)i * nk * ldv, ldq, ldk, ldv, nq, nk, hd, heads, blk, 0,
                          dim, 1.0f / sqrtf((float)hd), scratch, false,
                          row0 ? row0 + (size_t)i * heads * nk : NULL,
                          out + (size_t)i * nq * dim };
            attn_run(&j);
        }
        return;
    }
    for (int i = 0; i < count; i++)
        as_mha_lowmem(q + (size_t)i * nq * ldq, ldq, k + (size_t)i * nk * ldk, ldk,
                      v + (size_t)i * nk * ldv, ldv, nq, nk, dim, heads, scratch,
                      row0 ? row0 + (size_t)i * heads * nk : NULL, out + (size_t)i * nq * dim);
}

void as_mha_packed(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   int nq, int nk, int dim, int heads, float *scratch, size_t scratch_floats,
                   float *row0, float *out)
{
    as_mha_packed_batch(1, q, ldq, k, ldk, v, ldv, nq, nk, dim, heads, scratch, scratch_floats,
                        row0, out);
}
