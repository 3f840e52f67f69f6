/* linear: linear layers and every BLAS call of the project. Linear layers
 * run on our packed GEMM (gemm.h) on AVX2+FMA CPUs: the encoder's weights
 * are packed at model load, others on the fly when there are enough rows; a
 * few rows (the decoder's queries) use dot products; other CPUs use OpenBLAS
 * sgemm. Products are split over the thread pool (pool.h), each block one
 * single-threaded sgemm call. The as_sgemm / as_sdot wrappers are the only
 * way to OpenBLAS for the other layers (k-means, training). */
#ifndef ALIGNSEG_LINEAR_H
#define ALIGNSEG_LINEAR_H

#include <stdbool.h>
#include <stdint.h>

#include "activations.h"

/* A linear layer: weight W (out, in) row-major as PyTorch stores it, bias b
 * (out) or NULL, and W packed for gemm.h (or NULL); with packed_bf16 (W
 * packed by as_gemm_pack_bf16, only where as_gemm_bf16_available()) the
 * layer's products run in bfloat16 (as_model_use_bf16). */
typedef struct {
    float *w, *b;
    int out, in;
    const float *packed;
    const uint16_t *packed_bf16;
} AsLinear;

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

/* y (n, fc2.out) += fc2(GELU(fc1(LayerNorm(x)))): a transformer MLP with
 * its residual (y may be x). hidden (n, fc1.out) receives the GELU
 * activations; scratch (n, in) is used only without packed weights. With
 * packed float32 weights both products run block by block in one pass
 * (as_gemm_packed_mlp), with the same numbers as the separate calls. */
void as_linear_mlp(const float *x, int n, const AsNorm *nm, const AsLinear *fc1,
                   const AsLinear *fc2, float *scratch, float *hidden, float *y);

/* C (m,n) = alpha A (m,k) op(B) + beta C (row-major; op(B) = B^T when trans_b,
 * B is then (n,k)), rows of C split over as_threads() threads. */
void as_sgemm_rows(bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc);
/* The same product as one sgemm call on the calling thread only (OpenBLAS
 * set to one thread for it), for work items already split over the pool. */
void as_sgemm_serial(bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc);
/* C (m,n) = alpha op(A) op(B) + beta C, row-major, op(X) = X^T when trans_x
 * (A is then (k,m), B (n,k)): one OpenBLAS sgemm call on OpenBLAS's threads
 * (as many as as_pool_set_threads gave it). */
void as_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* x . y over n values (OpenBLAS sdot) */
float as_sdot(int n, const float *x, const float *y);

#endif
