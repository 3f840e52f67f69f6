/* gemm_kern: the variants behind gemm.c, one table per instruction-set path
 * (cpu.h): register tile, activation packing, weight packing, FMA ceiling
 * loop. Internal to core/compute (gemm.c, gemm_avx2.c, gemm_avx512.c). */
#ifndef ALIGNSEG_GEMM_KERN_H
#define ALIGNSEG_GEMM_KERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemm.h"

#define GEMM_NR 16      /* width of a packed weight panel (columns) */
#ifndef GEMM_KC
#define GEMM_KC 256 /* most depths of one pass */
#endif
#define GEMM_MC_MAX 128 /* most rows of activations packed per pass */
#define GEMM_NP_MAX 3   /* most weight panels one register tile spans */

/* What a tile does with its sums. */
typedef struct {
    bool load;         /* add the values already in y */
    const float *bias; /* add these biases, one per column (NULL: none) */
    bool gelu;         /* then apply GELU */
} GemmEpi;

/* y tile (mr x nr valid, nr <= np * 16) <- epilogue(sum over kc depths of
 * the packed activation panel a (kc x MR) times np weight panels starting at
 * b, bs floats apart (kc x 16 each)). */
typedef void (*GemmTileFn)(int kc, const float *a, const float *b, size_t bs, float *y, int ldy,
                           int mr, int nr, const GemmEpi *e);
/* Rows [r0, r0+mc) (mc a multiple of the tile's rows) and depths [k0, k0+kc)
 * of x into panels of mr rows: panel i holds x'[r0 + mr i + r][k0 + k] at
 * (k mr + r), zero rows past n, where x' is x or, with nm, its LayerNorm
 * (mean/rstd of row r0 + i at index i, the numbers of as_layernorm_apply).
 * May write up to 16 floats past the end of the panels. */
typedef void (*GemmPackFn)(int mr, const float *x, int n, int ldx, int r0, int mc, int k0, int kc,
                           const AsGemmNorm *nm, const float *mean, const float *rstd, float *dst);

typedef struct {
    int mr;                         /* rows of a register tile */
    int np;                         /* weight panels of a full register tile */
    int mc;                         /* rows packed per pass, a multiple of mr */
    GemmTileFn tile[GEMM_NP_MAX];   /* tile[p - 1] spans p panels */
    GemmPackFn pack_rows;
    /* the first depths of one full weight panel (16 rows of w from o0) into
     * d; returns how many depths it packed (the rest is done in C) */
    int (*pack_panel)(const float *w, int in, int o0, float *d);
    /* independent FMA chains, iters times each; a result using all of them */
    float (*fma_loop)(long iters, float seed);
    double fma_flops_per_iter;
} GemmKernels;

/* Write a tile held as MR x (np*16) floats in t (row stride ldt) into y. */
void gemm_tile_write(const float *t, int ldt, float *y, int ldy, int mr, int nr, const GemmEpi *e);
void gemm_pack_rows_c(int mr, const float *x, int n, int ldx, int r0, int mc, int k0, int kc,
                      const AsGemmNorm *nm, const float *mean, const float *rstd, float *dst);

/* bfloat16 variant (gemm.h as_gemm_packed_bf16): a tile over kc2 depth pairs
 * of the activation panel a (kc2 x MR pairs) and np weight panels from b (kc2
 * x 16 pairs each, bs uint16 apart), float32 sums, the same epilogue. */
typedef void (*GemmTileBf16Fn)(int kc2, const uint16_t *a, const uint16_t *b, size_t bs,
                               float *y, int ldy, int mr, int nr, const GemmEpi *e);
typedef struct {
    int mr, np, mc;
    GemmTileBf16Fn tile[GEMM_NP_MAX];
} GemmBf16Kernels;

#if defined(__x86_64__) && defined(__GNUC__)
extern const GemmBf16Kernels gemm_bf16;
extern const GemmKernels gemm_avx2;
extern const GemmKernels gemm_avx512;
void gemm_pack_rows_avx2(int mr, const float *x, int n, int ldx, int r0, int mc, int k0, int kc,
                         const AsGemmNorm *nm, const float *mean, const float *rstd, float *dst);
int gemm_pack_panel_avx2(const float *w, int in, int o0, float *d);
#endif

#endif
