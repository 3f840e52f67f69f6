/* export: write label maps (at the original image size) in the formats that
 * annotation tools import:
 *   OUTDIR/voc/SegmentationClass/NAME.png   8-bit indexed PNG, VOC palette;
 *        index 0 = background, index g+1 = group g (the viewer's colours)
 *   OUTDIR/voc/labelmap.txt                 CVAT "Segmentation mask 1.1":
 *        "# label:color_rgb:parts:actions", then "name:r,g,b::" per label,
 *        background first
 *   OUTDIR/voc/ImageSets/Segmentation/default.txt   one NAME per line
 *   OUTDIR/masks/NAME/prototype_<g>.png     one 8-bit gray PNG per group, 0/255
 *   OUTDIR/coco/annotations.json            COCO: one category per group
 *        (id g+1, name prototype_<g>), one annotation per (image, group) with
 *        pixels: compressed RLE (see rle.h), area, bbox as the COCO API
 *        computes them, iscrowd 0
 *   OUTDIR/labelme/NAME.json                labelme 5.x: one polygon per
 *        4-connected component (see polygon.h), label prototype_<g>,
 *        imagePath relative to the JSON file, imageData null
 * Labels are int32 group ids 0..ngroups-1; AS_LABEL_BACKGROUND (merge.h)
 * marks background, which no format exports as a group. Label names are
 * "background" and "prototype_<g>". Files of one call (labelmap.txt,
 * default.txt, annotations.json) list every image added to the exporter.
 *   OUTDIR/alignseg-export.json             where the labels came from: the
 *        generator, the model, whether its weights were a random
 *        initialisation ("untrained": labels that mean nothing), the formats,
 *        and per image its file, size and the model input size. Untrained exports are also marked inside
 *        COCO's info (description, "alignseg_untrained") and each labelme
 *        file's flags ("alignseg_untrained_model": true). */
#ifndef ALIGNSEG_EXPORT_H
#define ALIGNSEG_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum {
    AS_EXPORT_VOC = 1,
    AS_EXPORT_MASKS = 2,
    AS_EXPORT_COCO = 4,
    AS_EXPORT_LABELME = 8,
    AS_EXPORT_ALL = 15
} AsExportFormat;

/* Default labelme simplification tolerance (pixels); see polygon.h. */
#define AS_EXPORT_POLYGON_EPSILON 0.5

typedef struct {
    unsigned formats;       /* AsExportFormat bits */
    double polygon_epsilon; /* labelme polygons: Douglas-Peucker tolerance, 0 = exact */
    const char *generator;  /* e.g. "alignseg 0.1.0" (NULL: "alignseg") */
    const char *model;      /* the model's description (NULL: unknown) */
    bool untrained;         /* the model's weights are a random initialisation */
} AsExportOptions;

void as_export_options_default(AsExportOptions *o);
/* "voc,masks,coco,labelme" (any subset, comma-separated, or "all"). */
int as_export_parse_formats(const char *list, unsigned *formats, AsError *err);

/* "prototype_<g>" */
void as_export_label_name(int group, char *buf, size_t len);

typedef struct AsExporter AsExporter;

/* Create OUTDIR and the sub-folders of the chosen formats. */
int as_exporter_open(const char *outdir, const AsExportOptions *o, AsExporter **out,
                     AsError *err);
/* Export one image's labels (w x h, row-major). name: the output stem (e.g.
 * the image file name without extension; must be unique within the call);
 * image_path: the source image, for labelme's imagePath and COCO's file_name. */
int as_exporter_add(AsExporter *x, const char *name, const char *image_path,
                    const int32_t *labels, int w, int h, int ngroups, AsError *err);
/* The model input size (w x h) the last added image was segmented at, for
 * alignseg-export.json (otherwise null there). */
void as_exporter_set_input_size(AsExporter *x, int w, int h);
/* Write labelmap.txt, default.txt and annotations.json (categories for the
 * largest ngroups seen). */
int as_exporter_finish(AsExporter *x, AsError *err);
void as_exporter_free(AsExporter *x);

/* The single writers used by the exporter. */
int as_export_voc_png(const char *path, const int32_t *labels, int w, int h, int ngroups,
                      AsError *err);
int as_export_voc_labelmap(const char *path, int ngroups, AsError *err);
int as_export_masks(const char *dir, const int32_t *labels, int w, int h, int ngroups,
                    AsError *err);
int as_export_labelme(const char *path, const char *image_path_rel, const int32_t *labels, int w,
                      int h, int ngroups, double epsilon, bool untrained, AsError *err);

/* Path of `to` relative to directory `from_dir` (both resolved with
 * realpath when they exist, e.g. "../../photos/cat.jpg"); falls back to an
 * absolute path. Returns 0, or an error if buf is too small. */
int as_relative_path(const char *from_dir, const char *to, char *buf, size_t len, AsError *err);

#endif
