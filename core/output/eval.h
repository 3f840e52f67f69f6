/* eval: unsupervised segmentation metrics against ground-truth class maps.
 *
 * Two protocols, accumulated in one pass over the images (as_eval_add) on
 * label maps that were brought to the same size (the CLI uses 100x100 as
 * the reference evaluation: METHOD.md section 4):
 *
 * reference (the published AlignSeg evaluation), per image, over the pixels
 *   whose ground truth is not the ignore value:
 *   - every predicted cluster p that occurs is mapped to the GT class c
 *     present in the image with the highest precision |p and c| / |p|, i.e.
 *     the largest overlap (many-to-one: several clusters may map to one
 *     class); ties go to the smallest class value;
 *   - for every GT class c present in the image: IoU_c = TP / (|GT = c| +
 *     |mapped prediction = c| - TP) with TP = |GT = c and mapped = c|;
 *   - image score = mean of IoU_c over the classes present in that image;
 *   mIoU = mean image score over the images that have at least one valid
 *   pixel. Per-class IoU = mean of IoU_c over the images where c is present;
 *   pixel accuracy = correctly mapped pixels / valid pixels, all images.
 *
 * hungarian: one confusion matrix over all images (rows = clusters, columns =
 *   GT classes that occur in the dataset); one one-to-one matching of
 *   clusters to those classes that maximises the number of matched pixels
 *   (Hungarian algorithm; with more clusters than classes some clusters stay
 *   unmatched and all their pixels count as errors; with fewer, some classes
 *   get IoU 0). IoU_c = TP / (|GT = c| + |cluster matched to c| - TP),
 *   mIoU = mean over the classes that occur, pixel accuracy = matched pixels /
 *   valid pixels.
 *
 * Classes that do not occur in the ground truth have no IoU (NaN). */
#ifndef ALIGNSEG_EVAL_H
#define ALIGNSEG_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

#define AS_EVAL_CLASSES 256 /* GT maps are 8-bit */

typedef enum { AS_EVAL_REFERENCE = 0, AS_EVAL_HUNGARIAN = 1 } AsEvalProtocol;

typedef struct {
    int num_pred; /* clusters 0..num_pred-1 */
    int ignore;   /* GT value to ignore (0..255), or -1 for none */
    int64_t *conf; /* (num_pred, 256) pixel counts over all images */
    int64_t gt_pixels[AS_EVAL_CLASSES];
    int64_t valid_pixels;
    int64_t nimages;   /* images added */
    int64_t nscored;   /* images with at least one valid pixel */
    double sum_image_miou;
    double class_iou_sum[AS_EVAL_CLASSES];
    int64_t class_images[AS_EVAL_CLASSES];
    int64_t ref_correct;
} AsEval;

typedef struct {
    AsEvalProtocol protocol;
    int nclasses;       /* largest GT class seen + 1 (0 if none) */
    int num_pred;
    double miou;        /* NaN if no valid pixel */
    double pixel_acc;
    double class_iou[AS_EVAL_CLASSES]; /* NaN for classes absent from the GT */
    int32_t *match;     /* hungarian: cluster -> class or -1 (num_pred entries); NULL for reference */
    int64_t nimages, nscored, valid_pixels;
} AsEvalReport;

int as_eval_init(AsEval *e, int num_pred, int ignore, AsError *err);
void as_eval_free(AsEval *e);
/* Add one image: pred (n) cluster ids 0..num_pred-1, gt (n) class values.
 * The same as as_eval_confusion followed by as_eval_add_confusion. */
int as_eval_add(AsEval *e, const int32_t *pred, const uint8_t *gt, size_t n, AsError *err);

/* One image's confusion: the pixel count of every (cluster, GT class) pair
 * that occurs among its valid pixels, in increasing (pred, cls) order. It is
 * all that as_eval_add keeps of an image, so images evaluated in several
 * processes (alignseg eval --shard, core/output/evalshard.h) and added here in
 * the same order give exactly the scores of one run. */
typedef struct {
    int32_t pred, cls;
    int64_t count; /* > 0 */
} AsEvalCell;

typedef struct {
    AsEvalCell *cells;
    size_t n;
} AsEvalConfusion;

/* c = the confusion of one image (e gives the cluster count and the ignore
 * value; e itself is not changed). Free with as_eval_confusion_free. */
int as_eval_confusion(const AsEval *e, const int32_t *pred, const uint8_t *gt, size_t n,
                      AsEvalConfusion *c, AsError *err);
/* Add one image given by its confusion. c may come from a file: cells out of
 * order or repeated, a cluster outside 0..num_pred-1, the ignore class, a
 * count < 1 or totals that would overflow are refused (e unchanged). */
int as_eval_add_confusion(AsEval *e, const AsEvalConfusion *c, AsError *err);
void as_eval_confusion_free(AsEvalConfusion *c);
int as_eval_report(const AsEval *e, AsEvalProtocol p, AsEvalReport *r, AsError *err);
void as_eval_report_free(AsEvalReport *r);
/* Write the report as JSON (miou, pixel_accuracy, per-class IoU, matching). */
int as_eval_report_json(const AsEvalReport *r, const char *path, AsError *err);
/* Print the report as `alignseg eval` does (protocol, images, mIoU, pixel
 * accuracy, per-class IoU, the matching). */
void as_eval_report_print(const AsEvalReport *r, FILE *f);

/* Maximum-weight assignment on a rows x cols matrix w (row-major, weights
 * >= 0): row_to_col[i] is the column of row i or -1 (when rows > cols).
 * Kuhn-Munkres with potentials (shortest augmenting paths), O(n^3) for
 * n = max(rows, cols) <= 4096. Returns the total weight in *total if not NULL. */
int as_hungarian_max(const int64_t *w, int rows, int cols, int *row_to_col, int64_t *total,
                     AsError *err);

/* Nearest-neighbour resizing as PIL's Image.resize(NEAREST) does it
 * (source = floor of a running sum: scale/2 + k*scale, scale = in/out). */
void as_resize_nearest_pil_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);
/* As torch.nn.functional.interpolate(mode='nearest'): source =
 * min(floor(k * (float)(in/out)), in-1) in single precision. */
void as_resize_nearest_torch_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);
void as_resize_nearest_torch_i32(const int32_t *src, int sw, int sh, int32_t *dst, int dw,
                                 int dh);

#endif
