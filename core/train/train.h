/* train: one cached training step of the AlignSeg decoder on the CPU
 * (METHOD.md section 5). The encoder is frozen and only run forward (crops.h);
 * here the decoder's forward pass on every crop with every activation cached,
 * both losses (correlation alignment, prototype cross-entropy) and the full
 * backward pass written by hand (backward.h), into the trainer's gradients
 * (trainer.h). */
#ifndef ALIGNSEG_TRAIN_H
#define ALIGNSEG_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "trainer.h"

/* One batch of encoder outputs. Local entry (b, i) is what feeds prototype
 * set P_i of batch element b and meets the global crop of image b in the
 * correlation (the pairing, reference or same-image, is the caller's
 * choice); its foreground mask is fg_lc[i][b] (crop i of image b). */
typedef struct {
    int batch;              /* B */
    int nlocal;             /* local crops per image */
    int n_g, n_l;           /* tokens per global / local crop */
    const float *gc_tokens; /* (B, n_g, D) */
    const float *lc_tokens; /* (B, nlocal, n_l, D) */
    const uint8_t *fg_gc;   /* (B, n_g) 0/1 */
    const uint8_t *fg_lc;   /* (nlocal, B, n_l) 0/1 */
} AsTrainBatch;

typedef struct {
    double loss, loss_ce, loss_corr;
} AsTrainLosses;

/* Decoder forward on every crop with cached activations, both losses, and
 * the backward pass into t->grad (zeroed first). */
int as_train_forward_backward(AsTrainer *t, const AsTrainBatch *b, AsTrainLosses *out,
                              AsError *err);

/* ---- losses alone (exposed for the finite-difference tests) ----
 * Prototype cross-entropy for one image: zg, zl (Q, D) normalised prototypes.
 * Returns the mean over the 2Q rows; if dzg/dzl are given, accumulates
 * scale * d(loss)/dz. */
double as_loss_query_ce(const float *zg, const float *zl, int q, int d, float temperature,
                        float scale, float *dzg, float *dzl);
/* Correlation alignment for one (global, local) pair of one image, given the
 * (already centred) correlation c (n, m), assignment logits before clamp
 * sg (n, Q) and sl (m, Q) and masks. Returns coef * sum over masked entries
 * of -G (c - b) with G = softmax(max(sg,0)) softmax(max(sl,0))^T;
 * accumulates scale * d/dsg and d/dsl when given. */
double as_loss_correlation(const float *c, const float *sg, const float *sl, int n, int m,
                           int q, const uint8_t *fg_g, const uint8_t *fg_l, float b,
                           float coef, float scale, float *dsg, float *dsl);

#endif
