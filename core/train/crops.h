/* crops: the multi-crop views of a training batch (METHOD.md section 5):
 * random resized crops with the intersection rule, cropping and
 * normalising, and the frozen encoder run on every crop (tokens, foreground
 * masks) to give the step's batch in the chosen pairing. */
#ifndef ALIGNSEG_CROPS_H
#define ALIGNSEG_CROPS_H

#include <stdint.h>

#include "error.h"
#include "hooks.h"
#include "image.h"
#include "model.h"
#include "rng.h"
#include "train.h"

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
    /* Data parallel (set by the caller before encoding; zero: one process
     * encodes everything): this process encodes only the crops of images
     * bounds[rank] .. bounds[rank + 1] - 1 of the batch, then share fills
     * in the tokens (ncrops, batch, n, D) and masks (ncrops, batch, n) of
     * the others' images (e.g. MPI_Allgatherv), before the pairing. */
    int rank, world;
    const int *bounds; /* world + 1 image boundaries, bounds[world] == batch */
    int (*share)(void *user, float *tokens, uint8_t *fg, int ncrops, int batch, int n, int dim,
                 const int *bounds, AsError *err);
    void *share_user;
    double time_encoder; /* seconds, accumulated */
} AsTrainCrops;

void as_train_crops_init(AsTrainCrops *tc);
void as_train_crops_free(AsTrainCrops *tc);
/* Run the frozen encoder on every crop: crops (ncrops, B, 3, size, size),
 * crop 0 the global one; tokens, foreground masks (mass threshold t), and
 * the batch view in the given pairing. The crops go through the encoder in
 * batched passes (as_vit_forward_batch) on the pool's threads: threads >= 1
 * sets the pool to that many for the call (as_pool_set_threads, restored
 * after), 0 keeps it. Each crop's tokens are those of as_vit_forward on it
 * alone, whatever the batch and threads. hooks (may be NULL): cancel stops
 * early with AS_ERR_CANCELLED (checked before each pass); no progress calls. */
int as_train_crops_encode(AsTrainCrops *tc, const AsEncoder *enc, const float *crops,
                          int ncrops, int batch, int size, AsPairing pairing,
                          float mass_threshold, int threads, const AsHooks *hooks,
                          AsError *err);

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

#endif
