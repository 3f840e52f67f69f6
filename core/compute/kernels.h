/* kernels: small pure forward kernels shared by the encoder, the decoder and
 * training. Rows are contiguous. Linear layers run on our packed GEMM
 * (gemm.h) on AVX2+FMA CPUs: the encoder's weights are packed at model load,
 * others on the fly when there are enough rows; a few rows (the decoder's
 * queries) use dot products; other CPUs use OpenBLAS sgemm.
 * Threads: GEMMs, elementwise kernels, softmax, layernorm and attention split
 * their work over a small process-wide pool sized by OpenBLAS's current
 * thread count (openblas_set_num_threads, i.e. --threads). Pool workers spin
 * briefly between jobs, then sleep. The sgemm calls made here run on one
 * thread each (OpenBLAS set to one thread around them), so OpenBLAS's own
 * threads stay asleep during inference. exp and erf use AVX2+FMA
 * polynomials when the CPU has them (checked at run time), libm otherwise. */
#ifndef ALIGNSEG_KERNELS_H
#define ALIGNSEG_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Threads the kernels use: OpenBLAS's current setting (at least 1). */
int as_threads(void);
/* Run fn(ctx, item, tid) for item in [0, nitems) on up to as_threads()
 * threads (tid 0 is the caller, tids are below as_threads() at the call). Runs
 * everything on the caller when single-threaded or when another thread's
 * parallel region is running. fn must not start parallel regions itself
 * (inside as_parallel_for_blas1 items as_threads() reads 1). */
typedef void (*AsTaskFn)(void *ctx, int item, int tid);
void as_parallel_for(int nitems, AsTaskFn fn, void *ctx);
/* The same with OpenBLAS set to one thread for the duration (for items that
 * call sgemm themselves). */
void as_parallel_for_blas1(int nitems, AsTaskFn fn, void *ctx);
/* true when the AVX2+FMA exp/erf paths are in use */
bool as_kernels_simd(void);

/* C (m,n) = alpha A (m,k) op(B) + beta C (row-major; op(B) = B^T when trans_b,
 * B is then (n,k)), rows of C split over as_threads() threads. */
void as_sgemm_rows(bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc);
/* y (n,out) = x (n,in) W^T + b */
void as_linear(const float *x, int n, const AsLinear *l, float *y);
/* y (n,out) += x (n,in) W^T + b (a residual connection without a copy) */
void as_linear_accumulate(const float *x, int n, const AsLinear *l, float *y);
/* y (n,out) = GELU(x (n,in) W^T + b), exact-erf GELU */
void as_linear_gelu(const float *x, int n, const AsLinear *l, float *y);
/* y = LayerNorm(x) W^T + b, then GELU if gelu. With packed weights the
 * normalised rows exist only inside the GEMM's packing; otherwise they go
 * through scratch (n, in). */
void as_linear_norm(const float *x, int n, const AsNorm *nm, const AsLinear *l, bool gelu,
                    float *scratch, float *y);
/* LayerNorm of one row of d values in two steps (as_layernorm's numbers):
 * its mean and 1/sqrt(var + eps) (summed in double), then y[j - j0] =
 * (x[j] - mean) * rstd * w[j] + b[j] for j in [j0, j0+cnt). */
void as_layernorm_stats(const float *x, int d, float eps, float *mean, float *rstd);
void as_layernorm_apply(const float *x, int j0, int cnt, float mean, float rstd, const float *w,
                        const float *b, float *y);
/* y = LayerNorm(x) per row, with weight/bias; y may alias x. */
void as_layernorm(const float *x, int n, const AsNorm *nm, float *y);
/* in-place softmax of each of n rows of length m */
void as_softmax_rows(float *x, int n, int m);
void as_gelu_inplace(float *x, long n);   /* exact erf GELU */
/* x = GELU(x + b) on the calling thread only (b may be NULL) */
void as_bias_gelu_row(float *x, const float *b, long n);
void as_relu_inplace(float *x, long n);
/* y = x / max(||x||, eps) per row; y may alias x. */
void as_l2norm_rows(const float *x, int n, int d, float eps, float *y);
/* Multi-head scaled dot-product attention on already-projected q (nq, D),
 * k (nk, D), v (nk, D) with row strides ldq/ldk/ldv; out (nq, D).
 * probs (heads, nq, nk) is scratch and, on return, holds the probabilities. */
void as_mha(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
            int nq, int nk, int dim, int heads, float *probs, float *out);
/* As as_mha but with scratch for one head only: scratch (nq, nk). If row0 is
 * not NULL, the probabilities of query row 0 of every head are copied to
 * row0 (heads, nk) (the encoder's CLS attention). For large token counts. */
void as_mha_lowmem(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   int nq, int nk, int dim, int heads, float *scratch, float *row0,
                   float *out);

/* As as_mha_lowmem, faster for 64-wide heads on AVX2+FMA CPUs: keys and
 * values are laid out per head in scratch, then each block of query rows
 * runs scores, softmax and values with register tiles (no sgemm calls).
 * scratch holds scratch_floats floats; the fast path needs
 * as_mha_packed_scratch(nq, nk, dim, heads, as_threads()) of them, otherwise
 * (or for other head widths / CPUs) this calls as_mha_lowmem, which needs
 * nq * nk: give max of the two. */
size_t as_mha_packed_scratch(int nq, int nk, int dim, int heads, int threads);
void as_mha_packed(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   int nq, int nk, int dim, int heads, float *scratch, size_t scratch_floats,
                   float *row0, float *out);

/* x += y elementwise (n values). */
void as_add_inplace(float *x, const float *y, long n);

/* Bicubic resampling in PyTorch's semantics (a = -0.75, align_corners=False,
 * clamped borders) of a (sh, sw, c) grid, channels last, to (dh, dw, c).
 * scale_h/scale_w are source pixels per destination pixel:
 * src = (dst + 0.5) * scale - 0.5. */
void as_bicubic_resize_hwc(const float *src, int sh, int sw, int c, int dh, int dw,
                           double scale_h, double scale_w, float *dst);

/* Bilinear (align_corners=False, PyTorch semantics) source index and weights
 * for destination index i of an out-sized axis sampled from an in-sized one:
 * value = w0 * src[*i0] + w1 * src[*i1]. */
void as_bilinear_index(int i, int in, int out, int *i0, int *i1, float *w0, float *w1);

/* Normalised 1-D Gaussian of `taps` (odd) values with standard deviation sigma,
 * sampled at integer offsets -taps/2 .. taps/2. */
void as_gaussian_kernel(int taps, float sigma, float *k);
/* Separable 2-D convolution of an h x w map with the same 1-D kernel along
 * rows and columns, reflect padding (mirror without repeating the edge). */
int as_blur_separable(const float *in, int h, int w, const float *k, int taps, float *out,
                      AsError *err);
/* Cumulative-mass threshold: sort the n values ascending, divide by their sum,
 * cumulative sum; mask[i] = 1 where the cumulative mass up to and including
 * value i exceeds 1 - keep. Ties keep index order. */
int as_mass_threshold(const float *v, int n, float keep, uint8_t *mask, AsError *err);
/* Remove 8-connected components of mask (h x w, 0/1) with at most max_size
 * cells. Returns the number of components removed, or -1 if out of memory. */
int as_drop_small_components(uint8_t *mask, int h, int w, int max_size);

#endif
