/* vutil: the viewer's non-drawing logic as small pure functions (no GTK):
 * the viridis colour map, prototype colours, result-cache keys, settings
 * defaults and clamping, zoom arithmetic, label shares, colourising label
 * maps with visibility and contours, patch-to-patch similarity and
 * attention-map reductions. (Merging and relabelling live in core/model/merge.h.) Unit-tested in
 * tests/test_viewer_units.c. */
#ifndef ALIGNSEG_VUTIL_H
#define ALIGNSEG_VUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- colours ---- */

/* Viridis (van der Walt & Smith, matplotlib 1.5) evaluated at t in [0,1]
 * (clamped; NaN gives 0): piecewise-linear interpolation in sRGB between
 * the map's published colours at t = 0, 1/9, ..., 1. */
void vu_viridis(double t, uint8_t rgb[3]);
/* The PASCAL VOC colour map entry i (0..255), built by its bit-spreading rule. */
void vu_voc_colour(int i, uint8_t rgb[3]);
/* Colour shown for prototype k (0-based): VOC entry k+1, so no prototype is black. */
void vu_prototype_colour(int k, uint8_t rgb[3]);

/* ---- cache keys ---- */

/* "path|mtime|size|model_id|WxH", newly allocated (free()). NULL on OOM. */
char *vu_cache_key(const char *path, int64_t mtime, int64_t size, const char *model_id,
                   int in_w, int in_h);

/* ---- settings ---- */

typedef struct {
    int k;                 /* prototype count after merging (1..Q); 0 = all */
    double merge_threshold;/* merge groups whose similarity >= this (> 1: off) */
    double mass_threshold; /* CLS attention mass kept as foreground */
    double opacity;        /* label overlay opacity */
    int width, height;     /* window size */
    int input_size;        /* model input side */
} VuSettings;

void vu_settings_default(VuSettings *s);
/* Clamp every field to its valid range (q: number of prototypes, 0 if unknown). */
void vu_settings_clamp(VuSettings *s, int q);
/* The input sizes the viewer offers (224, 320, 448, 480, 640, 896) plus
 * `current` when it is not one of them (ignored unless 32..2048), ascending,
 * into out (cap entries); returns the count. */
int vu_size_choices(int current, int *out, int cap);

/* ---- zoom / pan ---- */

/* Scale that fits an img_w x img_h picture in view_w x view_h (never 0). */
double vu_fit_scale(int img_w, int img_h, int view_w, int view_h);
/* Zoom by factor around the view point (px,py): updates scale and offset so
 * that the image point under (px,py) stays there. Scale is clamped to
 * [0.02, 64]. Offset = view position of image point (0,0). */
void vu_zoom_at(double *scale, double *off_x, double *off_y, double factor, double px,
                double py);

/* ---- prototypes and labels ---- */

/* Area share of each label 0..g-1 over labels (n entries; labels outside
 * 0..g-1 and, when mask is non-NULL, pixels with mask 0 are not counted in the
 * shares' denominator either). share[g] must hold g doubles. */
void vu_label_shares(const int32_t *labels, size_t n, const uint8_t *mask, int g,
                     double *share);
/* Paint labels (w x h) as premultiplied ARGB32 (cairo's format, native
 * endianness), stride in bytes. colours: g*3 bytes. visible (g, NULL = all).
 * fg (gh x gw patch mask, NULL = none): pixels on background patches are
 * transparent. contours: draw label boundaries in white. alpha 0..1. */
void vu_colourise(const int32_t *labels, int w, int h, int g, const uint8_t *colours,
                  const bool *visible, const uint8_t *fg, int gh, int gw, bool contours,
                  double alpha, uint8_t *argb, int stride);

/* What an export writes: groups that are shown and cover some pixels, in
 * group order, numbered from 0 like the files (prototype_0, ...). index[g]
 * = the group's number in the export, or -1 (hidden or empty). visible may
 * be NULL (all shown). Returns how many groups are exported. */
int vu_export_index(const double *share, const bool *visible, int g, int32_t *index);
/* Apply that to a label map (n pixels, labels 0..g-1, others background):
 * counts each group's pixels, drops hidden and empty groups (their pixels
 * become background_label) and renumbers the rest 0..m-1 in place. index
 * (g entries, may be NULL) receives the mapping. Returns m. */
int vu_compact_labels(int32_t *labels, size_t n, int g, const bool *visible,
                      int32_t background_label, int32_t *index);

/* ---- maps ---- */

/* Cosine similarity of token idx to every token: out (n). tokens (n, dim). */
void vu_patch_similarity(const float *tokens, int n, int dim, int idx, float *out);
/* Cross-attention map of prototype k: mean over heads (head < 0) or one head
 * of attn (heads, q, n). out (n). */
void vu_cross_attn_map(const float *attn, int heads, int q, int n, int k, int head, float *out);
/* Min and max of n values (ignores NaN; 0,1 if none or all equal -> max = min + 1e-12). */
void vu_range(const float *v, size_t n, float *lo, float *hi);
/* Map values to viridis RGBA (ARGB32 premultiplied with given alpha 0..255),
 * normalised by lo..hi. w x h values, row-major; stride in bytes. */
void vu_heatmap_argb(const float *v, int w, int h, float lo, float hi, uint8_t alpha,
                     uint8_t *argb, int stride);

/* Halve a 32-bit-per-pixel image (cairo RGB24/ARGB32 words) with a 2x2 box
 * filter: dst is (sw+1)/2 x (sh+1)/2; odd edges average the pixels that exist.
 * Strides in bytes. Used for the display pyramid of large photos. */
void vu_halve_xrgb(const uint8_t *src, int sw, int sh, int sstride, uint8_t *dst, int dstride);
/* Pyramid level to draw an image at display scale s (1 = 1:1): the level l
 * (size 2^-l) with 2^-l >= s, i.e. floor(log2(1/s)), clamped to 0..nlevels-1. */
int vu_pyramid_level(double scale, int nlevels);

/* ---- attention mass ---- */

/* The cumulative attention-mass curve: curve[i] = share of the total mass in
 * the i+1 largest of the n values (negative values count as 0; all zero:
 * a straight line). curve[n-1] = 1. */
void vu_mass_curve(const float *attn, int n, float *curve);
/* How many of the largest values it takes to reach mass (0..1) of the total,
 * by the same curve (before the blur and small-component removal of the
 * foreground mask). */
int vu_mass_count(const float *curve, int n, double mass);

/* ---- model options ---- */

/* A hint for a model that failed to load over a head count, from core's
 * message ("encoder heads H do not divide the width W", "decoder heads H ...",
 * "cannot infer the encoder heads: width W is not a multiple of 64"): the
 * head counts that divide W and the one nearest to H, e.g. "Decoder heads
 * must divide the width 64: 1, 2, 4, 8, 16, 32 or 64; try 2 or 4 (Model…,
 * Decoder heads)". Writes buf and returns true when msg is such a message;
 * false (buf empty) otherwise. */
bool vu_heads_hint(const char *msg, char *buf, size_t len);

/* ---- files ---- */

/* True if name ends in .png, .jpg or .jpeg (case-insensitive). */
bool vu_is_image_name(const char *name);
/* Index of the next (step = +1) or previous (-1) entry in a list of count,
 * wrapping around; cur < 0 gives the first (or last) entry. -1 if count == 0. */
int vu_step_index(int cur, int count, int step);

/* ---- where the program runs from ---- */

/* True when the file exe_path lies directly in the directory dir, both
 * resolved with realpath (symbolic links, "..", "." and trailing slashes do
 * not matter): the viewer runs from its build tree (build/ui) and takes its
 * translations and settings schema from there. False when either does not
 * exist or is NULL. */
bool vu_exe_in_dir(const char *exe_path, const char *dir);
/* The folder a file chooser starts in: remembered when it is an existing
 * directory, else fallback (e.g. the home folder). Either may be NULL. */
const char *vu_start_folder(const char *remembered, const char *fallback);

#endif
