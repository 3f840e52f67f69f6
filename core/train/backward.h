/* backward: hand-written backward kernels for every operation of the AlignSeg
 * decoder and its training losses (linear, multi-head attention, LayerNorm,
 * ReLU, clamp, softmax, row L2 normalisation). Each kernel is the exact
 * derivative of the matching forward kernel (activations.h, linear.h, attention.h).
 *
 * Convention: every gradient output is ACCUMULATED (+=), so residual
 * branches and shared inputs simply add up; callers zero buffers first.
 * A NULL gradient pointer means "not needed" and is skipped. Matrices are
 * row-major; a linear layer y = x W^T + b has W of shape (out, in). */
#ifndef ALIGNSEG_BACKWARD_H
#define ALIGNSEG_BACKWARD_H

/* y (n,out) = x (n,in) W^T + b.  Given dy (n,out, row stride ldy):
 *   dx (n,in) += dy W,  dw (out,in) += dy^T x,  db (out) += sum_rows dy. */
void as_linear_backward(const float *x, int n, int in, int out, const float *w,
                        const float *dy, int ldy, float *dx, float *dw, float *db);

/* y = (x - mean) / sqrt(var + eps) * w + b per row of length dim.
 * x is the forward input (the statistics are recomputed from it). */
void as_layernorm_backward(const float *x, int n, int dim, const float *w, float eps,
                           const float *dy, float *dx, float *dw, float *db);

/* y = max(x, 0): dx += dy where y > 0 (y: the forward output). */
void as_relu_backward(const float *y, const float *dy, long n, float *dx);

/* y = clamp(x, min=lo): dx += dy where x >= lo (PyTorch's convention). */
void as_clamp_min_backward(const float *x, float lo, const float *dy, long n, float *dx);

/* p = softmax(x) per row of length m: dx += p * (dp - sum(p * dp)). */
void as_softmax_rows_backward(const float *p, const float *dp, int n, int m, float *dx);

/* y = x / max(||x||, eps) per row: dx += (dy - y (y.dy)) / ||x|| when
 * ||x|| > eps, else dy / eps. */
void as_l2norm_rows_backward(const float *x, int n, int d, float eps, const float *dy,
                             float *dx);

/* Backward of as_mha (attention.h): q (nq, ldq), k and v (nk, ldk / ldv),
 * probs (heads, nq, nk) as left by the forward call, dout (nq, dim).
 * Accumulates dq (nq, lddq), dk (nk, lddk), dv (nk, lddv); each may be NULL.
 * scratch: nq*nk floats. */
void as_mha_backward(const float *q, int ldq, const float *k, int ldk, const float *v,
                     int ldv, int nq, int nk, int dim, int heads, const float *probs,
                     const float *dout, float *dq, int lddq, float *dk, int lddk, float *dv,
                     int lddv, float *scratch);

/* Cross-attention of nq queries to n frozen tokens with the key / value
 * projections folded into the queries ("absorbed"), exact in real numbers:
 * for head h with Wk_h, Wv_h (d, D) the rows of the key / value projection,
 *   scores = (q_h Wk_h) F^T * d^-0.5   (the key bias shifts a whole row of
 *                                       scores and cancels in the softmax)
 *   P_h    = softmax(scores)           (nq, n)
 *   PF_h   = P_h F                     (nq, D)
 *   out_h  = PF_h Wv_h^T + bv_h        (rows of P_h sum to 1)
 * which is torch.nn.MultiheadAttention(query=q-projected, key=F, value=F)
 * for ~n/nq times less work than projecting every token.
 * q (nq, D) already projected; wk, wv (D, D) the key / value blocks of
 * in_proj_weight, bv (D); F (n, D). probs (heads, nq, n) and pf
 * (heads, nq, D) are kept for the backward pass; out (nq, D); scratch:
 * unused (may be NULL). These single-set forms allocate small temporaries;
 * training uses the split kernels below. */
void as_cross_attn_tokens_forward(const float *q, const float *F, int nq, int n, int dim,
                                  int heads, const float *wk, const float *wv, const float *bv,
                                  float *probs, float *pf, float *out, float *scratch);
/* Its backward: given dout (nq, D), accumulates dq (nq, D), dwk, dwv (D, D)
 * and dbv (D) (the key bias has an exactly zero gradient). scratch: nq*n
 * floats. */
void as_cross_attn_tokens_backward(const float *q, const float *F, int nq, int n, int dim,
                                   int heads, const float *wk, const float *wv,
                                   const float *probs, const float *pf, const float *dout,
                                   float *dq, float *dwk, float *dwv, float *dbv,
                                   float *scratch);

/* The same cross-attention split for many token sets sharing the queries
 * (training runs every crop against the same prototypes):
 *  as_cross_fold_queries: qk (heads, nq, D) = d^-0.5 q_h Wk_h, shared;
 *  as_cross_attend: per token set, probs (heads, nq, n) and
 *    PF_h = P_h F written at pf + h * head_stride (rows nq, width D);
 *  the value projection out_h = PF_h Wv_h^T + bv_h is then one product over
 *  all sets (the caller's);
 *  as_cross_attend_backward: given dPF (same layout), accumulates
 *    dqk (heads, nq, D); scratch nq*n floats;
 *  as_cross_fold_queries_backward: from the summed dqk, accumulates
 *    dq (nq, D) and dwk (D, D). */
void as_cross_fold_queries(const float *q, int nq, int dim, int heads, const float *wk,
                           float *qk);
void as_cross_attend(const float *qk, const float *F, int nq, int n, int dim, int heads,
                     float *probs, float *pf, long head_stride);
void as_cross_attend_backward(const float *F, int nq, int n, int dim, int heads,
                              const float *probs, const float *dpf, long head_stride,
                              float *dqk, float *scratch);
void as_cross_fold_queries_backward(const float *q, int nq, int dim, int heads,
                                    const float *wk, const float *dqk, float *dq, float *dwk);

#endif
