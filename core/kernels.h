/* kernels: small pure forward kernels shared by the encoder, the decoder and
 * training. Rows are contiguous; every linear layer is one sgemm call. */
#ifndef ALIGNSEG_KERNELS_H
#define ALIGNSEG_KERNELS_H

#include "model.h"

/* y (n,out) = x (n,in) W^T + b */
void as_linear(const float *x, int n, const AsLinear *l, float *y);
/* y = LayerNorm(x) per row, with weight/bias; y may alias x. */
void as_layernorm(const float *x, int n, const AsNorm *nm, float *y);
/* in-place softmax of each of n rows of length m */
void as_softmax_rows(float *x, int n, int m);
void as_gelu_inplace(float *x, long n);   /* exact erf GELU */
void as_relu_inplace(float *x, long n);
/* y = x / max(||x||, eps) per row; y may alias x. */
void as_l2norm_rows(const float *x, int n, int d, float eps, float *y);
/* Multi-head scaled dot-product attention on already-projected q (nq, D),
 * k (nk, D), v (nk, D) with row strides ldq/ldk/ldv; out (nq, D).
 * probs (heads, nq, nk) is scratch and, on return, holds the probabilities. */
void as_mha(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
            int nq, int nk, int dim, int heads, float *probs, float *out);

#endif
