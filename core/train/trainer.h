/* trainer: the decoder's trainable parameters and AdamW (METHOD.md section 5).
 * The parameters are listed in PyTorch's named_parameters() order (the table of
 * decoder_params.h), each with its gradient and AdamW moments, in the
 * parameter groups of the published training: weights with decay, biases and
 * 1-D parameters without, prototypes without. AdamW is PyTorch's algorithm;
 * the learning rate follows a step schedule. */
#ifndef ALIGNSEG_TRAINER_H
#define ALIGNSEG_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "decoder_params.h"
#include "error.h"
#include "model.h"

typedef struct {
    char name[128];   /* state-dict key, e.g. "decoder_ffn_layers.0.linear1.weight" */
    float *data;      /* the values, in trainer-owned memory (AsTrainer.weights) */
    float **slot;     /* the decoder's pointer to this parameter */
    float *orig;      /* what it pointed to before the trainer took over */
    int ndim;
    int64_t shape[2];
    long numel;
    int group;        /* AS_GROUP_* */
    int opt_index;    /* index in the optimizer state dict (group order) */
    bool trained;     /* reached by the loss; PyTorch gives the others no
                         gradient, so AdamW leaves them alone */
    long off;         /* offset of this parameter in grad / exp_avg / exp_avg_sq */
    double step;      /* AdamW step count (0: no state yet) */
} AsParam;

typedef struct {
    double lr;           /* current learning rate (5e-4) */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0.04 for AS_GROUP_DECAY */
    float negative_pressure; /* b of the correlation loss (0.11 VOC) */
    float corr_coef;     /* 0.15 */
    float temperature;   /* of the prototype cross-entropy (1) */
} AsTrainHyper;

void as_train_hyper_default(AsTrainHyper *h);

typedef struct AsTrainCache AsTrainCache; /* per-step activations (train.c) */
void as_train_cache_free(AsTrainCache *c);

typedef struct {
    AsDecoder *dec;      /* not owned; its weights are updated in place */
    AsTrainHyper hyper;
    int nparams;
    AsParam *params;     /* PyTorch's named_parameters() order */
    long total;          /* floats in each of weights / grad / exp_avg / exp_avg_sq */
    float *weights;      /* the decoder's parameters (dec points here while training) */
    float *grad, *exp_avg, *exp_avg_sq;
    float *queries;      /* after a step: (1 + nlocal, B, Q, D) adapted prototypes */
    int q_batch, q_crops;
    AsTrainCache *cache;
    double time_forward, time_backward, time_optim; /* seconds, accumulated */
} AsTrainer;

/* Build the parameter table of dec (which must stay alive). The parameters
 * are copied into t->weights and dec is re-pointed there, so training works
 * on read-only mapped checkpoints; as_trainer_free points dec back at the
 * original (untrained) values. */
int as_trainer_init(AsTrainer *t, AsDecoder *dec, const AsTrainHyper *h, AsError *err);
void as_trainer_free(AsTrainer *t);
AsParam *as_trainer_find(AsTrainer *t, const char *name);

/* One AdamW step (PyTorch semantics) with the current t->hyper.lr on every
 * trained parameter. */
void as_train_adamw_step(AsTrainer *t);

/* StepLR: base_lr * gamma^floor(epoch / step_size) (published: 3, 0.5). */
double as_train_lr_at_epoch(double base_lr, int epoch, int step_size, double gamma);

/* 0 if every weight, gradient and AdamW moment is finite; else an error
 * naming `what` (e.g. the file the state came from), the parameter and
 * which of its arrays holds the first non-finite value. */
int as_trainer_check_finite(const AsTrainer *t, const char *what, AsError *err);

/* Monotonic clock in seconds, for the time spent per phase. */
double as_train_clock(void);

#endif
