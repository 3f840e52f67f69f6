/* segment: the per-image inference pipeline of METHOD.md section 4 (encoder,
 * decoder or k-means prototypes, similarity, assignment, labels, foreground
 * mask) and the pure post-processing steps the viewer re-runs on slider moves. */
#ifndef ALIGNSEG_SEGMENT_H
#define ALIGNSEG_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hooks.h"
#include "image.h"
#include "model.h"
#include "vit.h"
#include "decoder.h"

typedef struct {
    int size;             /* square input side (default 448; rounded to the nearest
                             multiple of the patch); used when long_side == 0 */
    int long_side;        /* >0: keep aspect ratio, longer side ~ long_side, both multiples of patch */
    int prototypes;       /* backbone-only mode: k of the spherical k-means (default 5) */
    float mass_threshold; /* fraction of CLS attention mass kept as foreground (default 0.6) */
    AsHooks hooks;        /* optional cancel flag (AS_ERR_CANCELLED) and progress: stages
                             "resize", "encoder" (blocks), "decoder"/"prototypes", "done" */
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

/* Reusable per-thread memory for repeated runs (e.g. many images of one
 * size): as_segment_with keeps it between calls. Zero-initialise, then
 * as_segment_workspace_free when done. */
typedef struct {
    AsVitWorkspace vit;
    AsDecoderWorkspace dec;
} AsSegmentWorkspace;

void as_segment_workspace_init(AsSegmentWorkspace *ws);
void as_segment_workspace_free(AsSegmentWorkspace *ws);

/* Input size for an image of img_w x img_h under the options. */
int as_input_size(const AsModel *m, int img_w, int img_h, const AsSegmentOptions *o,
                  int *in_w, int *in_h, AsError *err);
/* Run on a normalised (3,H,W) input; H and W multiples of the patch size. */
int as_segment(const AsModel *m, const float *input, int h, int w,
               const AsSegmentOptions *o, AsResult *out, AsError *err);
/* The same with caller-owned workspace memory (reused across calls). */
int as_segment_with(const AsModel *m, AsSegmentWorkspace *ws, const float *input, int h, int w,
                    const AsSegmentOptions *o, AsResult *out, AsError *err);
/* Resize (PIL bilinear), normalise and run. */
int as_segment_image(const AsModel *m, const AsImage *img, const AsSegmentOptions *o,
                     AsResult *out, AsError *err);
void as_result_free(AsResult *r);

/* METHOD.md 4.6: blurred attention (7 taps, sigma 0.6), cumulative-mass threshold,
 * drop 8-connected components of <= 2 patches. Returns 0, or AS_ERR_NOMEM
 * (mask then all zero). */
#define AS_FG_BLUR_TAPS 7
#define AS_FG_BLUR_SIGMA 0.6f
#define AS_FG_MIN_COMPONENT 3
int as_foreground_mask(const float *attn_mean, int gh, int gw, float mass_threshold,
                       uint8_t *mask);
/* Mean over heads of (heads, n) attention as the reference computes it. */
void as_attn_head_mean(const float *attn, int heads, int n, float *mean);
/* sim (n, q) = n(tokens) n(protos)^T with n(x) = x / max(||x||, 1e-10). */
int as_cosine_similarity(const float *tokens, int n, const float *protos, int q, int dim,
                         float *sim, AsError *err);
/* Bilinear (align_corners=False) upsampling of q maps (n,q layout, patch grid
 * gh x gw) to out_h x out_w followed by argmax: labels (out_h*out_w). */
void as_upsample_argmax(const float *assign, int gh, int gw, int q, int out_h, int out_w,
                        int32_t *labels);

#endif
