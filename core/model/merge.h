/* merge: post-processing of one segmentation that the viewer re-runs on every
 * slider move and `alignseg segment/export` run once: agglomerative merging
 * of the adapted prototypes (cosine similarity, average linkage), relabelling
 * of patches and pixels from the cached assignment probabilities, label
 * renumbering, and colourising label maps (VOC palette, blended over the photo).
 *
 * Conventions shared with the exports (core/output/export.h):
 *  - group ids are 0..G-1, numbered in increasing order of the smallest
 *    prototype index they contain (group 0 always holds prototype 0);
 *  - AS_LABEL_BACKGROUND (255) marks pixels outside the foreground mask when
 *    labels are restricted to the foreground; it is never a group id, so at
 *    most AS_MAX_GROUPS groups exist;
 *  - group g is drawn with VOC palette entry g+1, background with entry 0
 *    (black), the same indices as the exported VOC PNGs. */
#ifndef ALIGNSEG_MERGE_H
#define ALIGNSEG_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "segment.h"

#define AS_LABEL_BACKGROUND 255
#define AS_MAX_GROUPS 254

typedef struct {
    int merge_to;    /* K: merge until K groups remain; 0 (or >= Q) = off */
    float threshold; /* T: keep merging while the best pair's similarity >= T; > 1 = off */
} AsMergeOptions;

void as_merge_options_default(AsMergeOptions *o); /* both off */

/* Agglomerative merging of q prototypes (q, dim), row-major.
 * Similarity of two prototypes: cosine, n(x) = x / max(||x||, 1e-10), in double.
 * Similarity of two groups (average linkage): the mean cosine over all pairs
 * (a in A, b in B). Each step merges the most similar pair of groups; ties go
 * to the pair whose smaller group (by its smallest prototype index) comes first,
 * then the second. Merging continues while (merge_to > 0 and more than merge_to
 * groups remain) or (threshold <= 1 and the best pair's similarity >= threshold),
 * and stops at one group. Average-linkage merge similarities never increase,
 * so both criteria cut the same dendrogram; with both set the coarser cut wins.
 * Output: group[k] in 0..G-1 for every prototype k (numbering: see above) and
 * *ngroups = G. Errors: q < 1, dim < 1, a non-finite prototype value. */
int as_merge_groups(const float *protos, int q, int dim, const AsMergeOptions *o,
                    int32_t *group, int *ngroups, AsError *err);

/* Relabel from the cached assignment probabilities assign (n = gh*gw, q),
 * row-major (the AsResult layout). The probability of group g is the SUM of
 * the probabilities of its prototypes (so the result is again a distribution
 * over groups, and without merging the labels are exactly the unmerged ones).
 * group may be NULL (identity, ngroups == q).
 * labels_patch (n, may be NULL): argmax over groups per patch (first maximum).
 * labels_full (out_h*out_w, may be NULL): as_upsample_argmax of the group
 * probabilities to out_h x out_w (bilinear, align_corners=False, then argmax),
 * e.g. the original image size.
 * fg_mask (n, may be NULL): restrict labels to the foreground; patches with
 * fg_mask == 0 get AS_LABEL_BACKGROUND, and a pixel is background where the
 * bilinear upsampling of the 0/1 mask is <= 0.5 (same upsampling as the labels,
 * computed as the argmax of the two maps (1-m, m)); then ngroups must be at
 * most AS_MAX_GROUPS. */
int as_relabel(const float *assign, int gh, int gw, int q, const int32_t *group, int ngroups,
               const uint8_t *fg_mask, int out_h, int out_w, int32_t *labels_patch,
               int32_t *labels_full, AsError *err);

/* Merge and relabel one segmentation result in one call: groups from
 * r->queries, labels from r->assign (restricted to r->fg_mask if fg_only).
 * group (r->q entries) may be NULL. */
int as_result_relabel(const AsResult *r, const AsMergeOptions *mo, bool fg_only, int out_h,
                      int out_w, int32_t *labels_patch, int32_t *labels_full, int32_t *group,
                      int *ngroups, AsError *err);

/* Renumber labels in place so that the values 0..nlabels-1 that occur become
 * 0..U-1 in increasing order of their old value (stable); other values
 * (e.g. AS_LABEL_BACKGROUND) are left as they are. map (nlabels entries, may
 * be NULL) receives old -> new, or -1 for values that do not occur.
 * Returns U, or -1 if nlabels < 0 or memory runs out. */
int as_labels_compact(int32_t *labels, size_t n, int nlabels, int32_t *map);

/* Colour of a label: VOC palette entry label+1 for groups (label 0..254),
 * entry 0 (black) for AS_LABEL_BACKGROUND and anything out of range. */
void as_label_colour(int32_t label, uint8_t rgb[3]);

/* Colourise a label map (w x h). channels: 3 (RGB) or 4 (RGBA).
 * photo (w*h*3 RGB, may be NULL):
 *  - with a photo: group pixels = (1-opacity)*photo + opacity*colour,
 *    background pixels = photo; alpha 255;
 *  - without: group pixels = colour, background black; alpha = opacity*255
 *    for groups and 0 for background.
 * opacity is clamped to [0,1]; the blend uses 8-bit fixed point (error <= 1). */
void as_colourise(const int32_t *labels, int w, int h, const uint8_t *photo, float opacity,
                  int channels, uint8_t *out);

#endif
