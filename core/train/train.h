/* train: training of the AlignSeg decoder on the CPU (METHOD.md section 5).
 * The encoder is frozen and only run forward (vit.h); this module holds
 *  - the decoder's trainable parameters in PyTorch's order, with gradients
 *    and AdamW moments (parameter groups as the published training: weights
 *    with decay, biases / 1-D parameters without, prototypes without);
 *  - the decoder forward pass with every activation cached, both losses
 *    (correlation alignment, prototype cross-entropy) and the full backward
 *    pass written by hand (backward.h);
 *  - AdamW (PyTorch's algorithm), the step learning-rate schedule, the
 *    initialisation of a fresh decoder, multi-crop sampling with the
 *    intersection rule, and checkpoints as PyTorch .pth files with the
 *    published layout ({epoch, net, state_dict, optimizer}). */
#ifndef ALIGNSEG_TRAIN_H
#define ALIGNSEG_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hooks.h"
#include "image.h"
#include "model.h"
#include "pickle.h"
#include "rng.h"

/* ---- parameters ---- */

enum { AS_GROUP_DECAY = 0, AS_GROUP_NO_DECAY = 1, AS_GROUP_PROTOTYPES = 2 };

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

typedef struct AsTrainCache AsTrainCache; /* per-step activations (train.c) */

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

/* Decoder forward on every crop with cached activations, both losses, and
 * the backward pass into t->grad (zeroed first). */
int as_train_forward_backward(AsTrainer *t, const AsTrainBatch *b, AsTrainLosses *out,
                              AsError *err);
/* One AdamW step (PyTorch semantics) with the current t->hyper.lr on every
 * trained parameter. */
void as_train_adamw_step(AsTrainer *t);

/* StepLR: base_lr * gamma^floor(epoch / step_size) (published: 3, 0.5). */
double as_train_lr_at_epoch(double base_lr, int epoch, int step_size, double gamma);

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

/* ---- encoder outputs of the crops of a batch ---- */

typedef enum {
    AS_PAIRING_REFERENCE, /* the published code's crop-major quirk (METHOD.md 5), default */
    AS_PAIRING_SAME_IMAGE /* local crop i of image b meets the global crop of image b */
} AsPairing;

/* Which encoded crop feeds local entry (b, i): image *img, local crop *crop
 * (0-based among the local crops). */
void as_pairing_source(AsPairing p, int batch, int nlocal, int b, int i, int *img, int *crop);

typedef struct {
    int batch, ncrops, size; /* B, 1 + local crops, square crop side */
    int gh, gw, n, dim;
    float *tokens;   /* (ncrops, B, n, D) as encoded: crop-major */
    uint8_t *fg;     /* (ncrops, B, n) foreground masks */
    float *lc;       /* (B, nlocal, n, D) local tokens in the chosen pairing */
    AsTrainBatch batch_view; /* ready for as_train_forward_backward */
    void *ws;        /* encoder workspace(s) */
    double time_encoder; /* seconds, accumulated */
} AsTrainCrops;

void as_train_crops_init(AsTrainCrops *tc);
void as_train_crops_free(AsTrainCrops *tc);
/* Run the frozen encoder on every crop: crops (ncrops, B, 3, size, size),
 * crop 0 the global one; tokens, foreground masks (mass threshold t), and
 * the batch view in the given pairing. threads > 1 encodes crops in
 * parallel, each thread with its own workspace (set OpenBLAS to one thread
 * meanwhile: openblas_set_num_threads(1)). hooks (may be NULL): cancel stops
 * early with AS_ERR_CANCELLED (checked before each crop); no progress calls. */
int as_train_crops_encode(AsTrainCrops *tc, const AsEncoder *enc, const float *crops,
                          int ncrops, int batch, int size, AsPairing pairing,
                          float mass_threshold, int threads, const AsHooks *hooks,
                          AsError *err);

/* ---- a fresh decoder ----
 * Adds the decoder tensors (METHOD.md 5 initialisation: prototypes N(0,1) or the
 * given (Q, D) vectors, in_proj Xavier-uniform, other linear weights
 * truncated normal std 0.02, biases 0, LayerNorm 1 / 0) to map. */
int as_decoder_init_tensors(AsTensorMap *map, int dim, int queries, int hidden, int layers,
                            const float *prototypes, AsRng *rng, AsError *err);

/* ---- crops ---- */
typedef struct {
    int x, y, w, h; /* in source pixels */
} AsBox;

/* torchvision RandomResizedCrop.get_params: area scale [smin, smax],
 * aspect ratio [3/4, 4/3], 10 tries then a centre crop. */
void as_random_resized_crop(AsRng *r, int img_w, int img_h, double smin, double smax,
                            AsBox *out);
/* Global crop (scale [0.5, 1]) then nlocal local crops (scale [0.05, 0.25]),
 * each resampled until its intersection with the global crop exceeds
 * int(min_inter * w * h) pixels. boxes: 1 + nlocal. */
void as_sample_multicrop(AsRng *r, int img_w, int img_h, int nlocal, double min_inter,
                         AsBox *boxes);
/* Crop, resize to size x size (PIL bilinear) and normalise: out (3, size, size). */
int as_crop_normalized(const AsImage *img, const AsBox *box, int size, float *out,
                       AsError *err);

/* ---- checkpoints ----
 * {"epoch", "net", "state_dict" (the ViT's tensors under "backbone.", then
 * the decoder), "optimizer" {"state", "param_groups"}} plus, when extra is not
 * NULL, extra's entries (our resume data; taken over, freed). with_initial_lr
 * adds "initial_lr" to every group as PyTorch's schedulers do. */
int as_train_save(const char *path, const AsModel *m, const AsTrainer *t, int64_t epoch,
                  const char *net, bool with_initial_lr, double initial_lr, AsPValue *extra,
                  AsError *err);
/* Restore AdamW moments, step counts and the learning rate from a checkpoint's
 * "optimizer" value (PyTorch layout). Shapes are checked. */
int as_train_load_optimizer(AsTrainer *t, const AsPValue *opt, const char *what,
                            AsError *err);

#endif
