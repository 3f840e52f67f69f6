/* segment: the per-image inference pipeline of SPEC section 4 (encoder,
 * decoder or k-means prototypes, similarity, assignment, labels, foreground
 * mask) and the pure post-processing steps the viewer re-runs on slider moves. */
#ifndef ALIGNSEG_SEGMENT_H
#define ALIGNSEG_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "image.h"
#include "model.h"

typedef struct {
    int size;             /* square input side (default 448); used when long_side == 0 */
    int long_side;        /* >0: keep aspect ratio, longer side ~ long_side, both multiples of patch */
    int prototypes;       /* backbone-only mode: k of the spherical k-means (default 5) */
    float mass_threshold; /* fraction of CLS attention mass kept as foreground (default 0.6) */
    const volatile int *cancel; /* optional: non-zero stops the run with AS_ERR_CANCELLED */
    void (*progress)(void *user, const char *stage, double fraction); /* optional */
    void *progress_user;
} AsSegmentOptions;

void as_segment_options_default(AsSegmentOptions *o);

typedef struct {
    int in_w, in_h;   /* model input size */
    int gh, gw, n;    /* patch grid; n = gh*gw */
    int dim, q;       /* token width; number of prototypes */
    int heads;        /* encoder heads */
    int dec_heads;    /* decoder heads; 0 in backbone-only mode */
    bool backbone_only;
    float *tokens;        /* (n, dim) patch tokens after the final norm */
    float *cls_token;     /* (dim) */
    float *cls_attn;      /* (heads, n) last block CLS->patch attention */
    float *cls_attn_mean; /* (n) mean over heads */
    float *queries;       /* (q, dim) adapted prototypes */
    float *cross_attn;    /* (dec_heads, q, n) last decoder layer cross-attention, or NULL */
    float *similarity;    /* (n, q) cosine similarity */
    float *assign;        /* (n, q) softmax over prototypes */
    uint8_t *fg_mask;     /* (n) 0/1 */
    int32_t *labels_patch;/* (n) */
    int32_t *labels_full; /* (in_h, in_w) */
} AsResult;

/* Input size for an image of img_w x img_h under the options. */
int as_input_size(const AsModel *m, int img_w, int img_h, const AsSegmentOptions *o,
                  int *in_w, int *in_h, AsError *err);
/* Run on a normalised (3,H,W) input; H and W multiples of the patch size. */
int as_segment(const AsModel *m, const float *input, int h, int w,
               const AsSegmentOptions *o, AsResult *out, AsError *err);
/* Resize (PIL bilinear), normalise and run. */
int as_segment_image(const AsModel *m, const AsImage *img, const AsSegmentOptions *o,
                     AsResult *out, AsError *err);
void as_result_free(AsResult *r);

/* SPEC 4.6: blurred attention, cumulative-mass threshold, drop small components. */
void as_foreground_mask(const float *attn_mean, int gh, int gw, float mass_threshold,
                        uint8_t *mask);
/* Bilinear (align_corners=False) upsampling of q maps (n,q layout, patch grid
 * gh x gw) to out_h x out_w followed by argmax: labels (out_h*out_w). */
void as_upsample_argmax(const float *assign, int gh, int gw, int q, int out_h, int out_w,
                        int32_t *labels);

#endif
