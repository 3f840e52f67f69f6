/* activations: the row-wise and elementwise kernels of the network:
 * LayerNorm, softmax, exact-erf GELU, ReLU, L2 normalisation, residual adds.
 * Rows are contiguous; the larger jobs split their rows over the thread pool
 * (pool.h). exp and erf use 16-wide (simd512.h) or 8-wide (simd.h)
 * polynomials on the avx512 and avx2 paths (cpu.h), libm on the generic one. */
#ifndef ALIGNSEG_ACTIVATIONS_H
#define ALIGNSEG_ACTIVATIONS_H

#include <stdbool.h>

/* A LayerNorm's parameters: weight and bias (dim), epsilon. */
typedef struct { float *w, *b; int dim; float eps; } AsNorm;

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
/* The unnormalised softmax of one row on the calling thread: r[j] =
 * exp(r[j] - max(r)); returns 1 / their sum (the attention kernels scale
 * their outputs by it instead of the probabilities). */
float as_softmax_row_unnorm(float *r, int m);
void as_gelu_inplace(float *x, long n);   /* exact erf GELU */
/* x = GELU(x + b) on the calling thread only (b may be NULL) */
void as_bias_gelu_row(float *x, const float *b, long n);
void as_relu_inplace(float *x, long n);
/* y = x / max(||x||, eps) per row; y may alias x. */
void as_l2norm_rows(const float *x, int n, int d, float eps, float *y);
/* x += y elementwise (n values). */
void as_add_inplace(float *x, const float *y, long n);

#endif
