/* alignseg/alignseg.h: the public C API of libalignseg (AlignSeg, Liu et al.,
 * TPAMI 2024: self-supervised semantic segmentation with a DINO ViT, on the CPU).
 *
 *   #include <alignseg/alignseg.h>      cc prog.c $(pkg-config --cflags --libs alignseg)
 *
 * Load a model once, segment images with it, read the maps of each result,
 * merge prototypes and relabel without running the network again, save label
 * maps or export them for annotation tools, free. examples/segment_example.c
 * uses every group of functions.
 *
 * Conventions. Fallible functions return 0 or an AsStatus and fill the AsError
 * they are given (may be NULL) with one line naming the file and the problem
 * (alignseg/error.h). Objects are opaque and freed by their _free function
 * (NULL is accepted). Option structs are initialised by their _init function
 * before fields are set, so that fields added later get their defaults. A
 * loaded model is immutable and may be shared by threads; a result or an
 * exporter is used by one thread at a time. Maps are row-major float32.
 * Stability: the soname (libalignseg.so.0) changes when a function or struct
 * of this header changes incompatibly. */
#ifndef ALIGNSEG_PUBLIC_ALIGNSEG_H
#define ALIGNSEG_PUBLIC_ALIGNSEG_H

#include <stddef.h>
#include <stdint.h>

#include <alignseg/error.h>
#include <alignseg/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, e.g. "0.1.0". */
ALIGNSEG_API const char *alignseg_version(void);

/* CPU threads for the network (0: all cores). Process-wide; call it before
 * segmenting. */
ALIGNSEG_API void alignseg_set_threads(int threads);

/* ---- models ---------------------------------------------------------- */

typedef struct AlignsegModel AlignsegModel;

typedef struct {
    int encoder_heads; /* 0: width/64, as DINO's models */
    int decoder_heads; /* 0: 3, as the published decoders */
    int reserved[6];
} AlignsegModelOptions;

ALIGNSEG_API void alignseg_model_options_init(AlignsegModelOptions *o);

/* model_path: an AlignSeg checkpoint (.pth, .safetensors), a decoder-only file
 * (then backbone_path is needed) or a DINO backbone alone (the prototypes of
 * each image are then found by spherical k-means). backbone_path may be NULL.
 * o may be NULL (defaults). */
ALIGNSEG_API int alignseg_model_load(const char *model_path, const char *backbone_path,
                                     const AlignsegModelOptions *o, AlignsegModel **out,
                                     AsError *err);
/* A randomly initialised ViT-S (patch 8 or 16) with a 5-prototype decoder, to
 * try a program without weights: its labels mean nothing (info.untrained). */
ALIGNSEG_API int alignseg_model_random(int patch, uint64_t seed, AlignsegModel **out,
                                       AsError *err);

typedef struct {
    int dim, depth, heads, patch; /* encoder width, blocks, heads, patch size */
    int prototypes;               /* decoder prototypes (0 without a decoder) */
    int backbone_only;            /* 1: no decoder, k-means prototypes per image */
    int untrained;                /* 1: random weights */
    const char *source;           /* the file name(s) it was loaded from */
} AlignsegModelInfo;

ALIGNSEG_API void alignseg_model_info(const AlignsegModel *m, AlignsegModelInfo *info);
ALIGNSEG_API void alignseg_model_free(AlignsegModel *m);

/* ---- segmentation ----------------------------------------------------- */

typedef struct AlignsegResult AlignsegResult;

typedef struct {
    int size;             /* square model input side (default 448) */
    int long_side;        /* > 0: keep the aspect ratio, longer side about long_side */
    int prototypes;       /* backbone-only models: k-means prototypes (default 5) */
    float mass_threshold; /* fraction of CLS attention mass kept as foreground (0.6) */
    const volatile int *cancel; /* another thread sets *cancel != 0 to stop: AS_ERR_CANCELLED */
    int reserved[8];
} AlignsegSegmentOptions;

ALIGNSEG_API void alignseg_segment_options_init(AlignsegSegmentOptions *o);

/* Segment a PNG or JPEG file, or an RGB8 image (w*h*3 bytes, row-major; the
 * pixels are copied). o may be NULL (defaults). The labels of a new result are
 * the unmerged prototypes at the image's size. */
ALIGNSEG_API int alignseg_segment_file(const AlignsegModel *m, const char *image_path,
                                       const AlignsegSegmentOptions *o, AlignsegResult **out,
                                       AsError *err);
ALIGNSEG_API int alignseg_segment_rgb(const AlignsegModel *m, const uint8_t *rgb, int w, int h,
                                      const AlignsegSegmentOptions *o, AlignsegResult **out,
                                      AsError *err);
ALIGNSEG_API void alignseg_result_free(AlignsegResult *r);

/* ---- reading a result ------------------------------------------------- */

typedef struct {
    int width, height;       /* the image */
    int input_w, input_h;    /* the model input it was resized to */
    int grid_w, grid_h;      /* the patch grid; n = grid_w * grid_h patches */
    int dim;                 /* token width */
    int prototypes;          /* q, prototypes of this image */
    int heads;               /* encoder heads */
    int decoder_heads;       /* 0 without a decoder */
    int groups;              /* groups of the current labels (q until merged) */
} AlignsegResultInfo;

ALIGNSEG_API void alignseg_result_info(const AlignsegResult *r, AlignsegResultInfo *info);

/* The float maps at the patch grid, with their shapes (n = grid_h * grid_w). */
typedef enum {
    ALIGNSEG_MAP_TOKENS,          /* (n, dim) patch tokens */
    ALIGNSEG_MAP_CLS_TOKEN,       /* (dim) */
    ALIGNSEG_MAP_CLS_ATTENTION,   /* (heads, n) last block's CLS-to-patch attention */
    ALIGNSEG_MAP_CLS_ATTENTION_MEAN, /* (n) its mean over heads */
    ALIGNSEG_MAP_PROTOTYPES,      /* (q, dim) the adapted prototypes */
    ALIGNSEG_MAP_CROSS_ATTENTION, /* (decoder_heads, q, n); NULL without a decoder */
    ALIGNSEG_MAP_SIMILARITY,      /* (n, q) cosine similarity of patches and prototypes */
    ALIGNSEG_MAP_ASSIGNMENT       /* (n, q) softmax over prototypes */
} AlignsegMap;

/* The map, or NULL (unknown map, or none); shape[0..*ndim-1] receives its
 * dimensions (shape has room for 3; shape and ndim may be NULL). Valid until
 * the result is freed. */
ALIGNSEG_API const float *alignseg_result_map(const AlignsegResult *r, AlignsegMap which,
                                              int shape[3], int *ndim);
/* (n) 0/1: patches kept as foreground at the options' mass_threshold. */
ALIGNSEG_API const uint8_t *alignseg_result_foreground(const AlignsegResult *r);

/* Pixels outside the foreground when relabelled with foreground_only. */
#define ALIGNSEG_LABEL_BACKGROUND 255

/* The current labels at the image's size (width * height, row-major): group
 * ids 0..groups-1, or ALIGNSEG_LABEL_BACKGROUND. Valid until the next relabel
 * or free. */
ALIGNSEG_API const int32_t *alignseg_result_labels(const AlignsegResult *r);
/* (q) the group of each prototype under the current labels. */
ALIGNSEG_API const int32_t *alignseg_result_groups(const AlignsegResult *r);

/* ---- merging and relabelling (no network run) ------------------------- */

typedef struct {
    int merge_to;          /* merge prototypes until this many groups remain (0: off) */
    float merge_threshold; /* merge while the best pair's cosine >= this (> 1: off, default) */
    int foreground_only;   /* 1: pixels outside the foreground mask get the background label */
    int reserved[5];
} AlignsegRelabelOptions;

ALIGNSEG_API void alignseg_relabel_options_init(AlignsegRelabelOptions *o);
/* Merge the prototypes (cosine similarity, average linkage; group ids in
 * order of their smallest prototype) and recompute the labels at the image's
 * size from the cached assignment. o may be NULL (undo merging). */
ALIGNSEG_API int alignseg_result_relabel(AlignsegResult *r, const AlignsegRelabelOptions *o,
                                         AsError *err);

/* ---- saving ----------------------------------------------------------- */

/* The labels as an 8-bit indexed PNG (pixel = group id, PASCAL VOC colours:
 * group g has VOC colour g+1, background black), what `alignseg segment`
 * writes as NAME.labels.png. Written atomically. */
ALIGNSEG_API int alignseg_result_save_labels(const AlignsegResult *r, const char *path,
                                             AsError *err);
/* The photo blended with the group colours (opacity 0..1), an RGB PNG. */
ALIGNSEG_API int alignseg_result_save_overlay(const AlignsegResult *r, const char *path,
                                              float opacity, AsError *err);

#ifdef __cplusplus
}
#endif

#endif
