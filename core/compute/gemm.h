/* gemm: our own float32 matrix product for linear layers whose weights are
 * packed once, when the model is built, into panels of 16 output columns
 * (OpenBLAS re-packs its B operand on every call). Register tiles of 8 rows x
 * 48 columns on AVX-512, 6 x 16 on AVX2+FMA, 4 x 16 in portable C (the path
 * of cpu.h; the packed weights are the same for all), the bias / residual /
 * GELU epilogue applied to each tile while it is in cache, rows split over
 * the kernels' thread pool. */
#ifndef ALIGNSEG_GEMM_H
#define ALIGNSEG_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Floats needed to pack a (out, in) weight matrix: out rounded up to 16, times in. */
size_t as_gemm_packed_floats(int out, int in);
/* Pack W (out, in), row-major as PyTorch stores a linear layer's weight, into
 * dst (as_gemm_packed_floats(out, in) floats, 32-byte aligned): panel p holds
 * W[16p .. 16p+15][k] for k = 0 .. in-1 as in rows of 16 floats, zero-padded
 * past out. */
void as_gemm_pack(const float *w, int out, int in, float *dst);

typedef enum {
    AS_EPI_STORE,      /* y = x W^T + b */
    AS_EPI_ACCUMULATE, /* y += x W^T + b (a residual connection) */
    AS_EPI_GELU,       /* y = GELU(x W^T + b), exact erf */
} AsEpilogue;

/* A LayerNorm applied to the rows of x while they are packed (x itself is
 * not changed): w, b of length `in`, the numbers of as_layernorm. */
typedef struct {
    const float *w, *b;
    float eps;
} AsGemmNorm;

/* y (n, out; row stride ldy) = epilogue(x' W^T + bias), x' = x (n, in; row
 * stride ldx) or its LayerNorm when norm is not NULL, W packed by
 * as_gemm_pack; bias (out) may be NULL. Rows are split over as_threads()
 * threads. */
void as_gemm_packed(const float *x, int n, int ldx, const AsGemmNorm *norm, const float *packed,
                    int out, int in, const float *bias, AsEpilogue epi, float *y, int ldy);

/* y (n, out) += GELU(x' W1^T + b1) W2^T + b2, the transformer MLP with its
 * residual: x (n, in, rows contiguous) or its LayerNorm as in as_gemm_packed,
 * W1 (hid, in) and W2 (out, hid) packed by as_gemm_pack. hidden (n, hid)
 * receives GELU(x' W1^T + b1). Each block of rows goes through both
 * products on one thread, so that its hidden rows are read back from that
 * core's cache; the numbers are those of the two separate as_gemm_packed
 * calls. y may be x (each row is read before it is written). */
void as_gemm_packed_mlp(const float *x, int n, int in, const AsGemmNorm *norm,
                        const float *packed1, const float *bias1, int hid, const float *packed2,
                        const float *bias2, int out, float *hidden, float *y, int ldy);

/* ---- bfloat16 (as_model_use_bf16; not on the command line, see model.h) ----
 * The same products with both operands rounded to bfloat16 (to nearest
 * even) and float32 sums (vdpbf16ps), on CPUs with AVX512_BF16 on the
 * AVX-512 path only. Weights are packed once into panels of 16 output
 * columns holding depth pairs; activations are rounded while they are
 * packed (after the LayerNorm when norm is given). */
bool as_gemm_bf16_available(void);
/* uint16 values needed to pack a (out, in) weight matrix */
size_t as_gemm_packed_bf16_count(int out, int in);
void as_gemm_pack_bf16(const float *w, int out, int in, uint16_t *dst);
/* As as_gemm_packed with bfloat16 weights packed by as_gemm_pack_bf16;
 * AS_ERR_UNSUPPORTED (nothing computed) when as_gemm_bf16_available() is
 * false. */
int as_gemm_packed_bf16(const float *x, int n, int ldx, const AsGemmNorm *norm,
                        const uint16_t *packed, int out, int in, const float *bias,
                        AsEpilogue epi, float *y, int ldy);

/* GFLOPS of a register-only loop of independent FMAs, as wide as the path's
 * vectors, on as_threads() threads for about `seconds`: the arithmetic
 * ceiling any kernel on this path works under. For benchmarks. */
double as_gemm_fma_peak(double seconds);
/* The registers that loop uses: "zmm", "ymm" or "scalar". */
const char *as_gemm_fma_unit(void);

#endif
