/* export: the single-format encoders of the dataset export (dataset.h
 * describes the folder and its files), the export options, and AsExporter,
 * the one-call interface kept for callers that export a list of images with
 * the default classes (group g = class "prototype_<g>", id g+1).
 * Labels are int32 group ids 0..ngroups-1; AS_LABEL_BACKGROUND (merge.h)
 * marks background, which no format exports as a group.
 *   alignseg-export.json also records where the labels came from: the
 *   generator, the model, whether its weights were a random initialisation
 *   ("untrained": labels that mean nothing), the formats, and per image its
 *   file, size and the model input size. Untrained exports are also marked
 *   inside COCO's info (description, "alignseg_untrained") and each labelme
 *   file's flags ("alignseg_untrained_model": true). */
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
    const char *settings;   /* the segmentation options, recorded so that shards made
                               with other options are told apart (NULL: none) */
    int shard_index, shard_count; /* this folder is shard index of count (0/0: not a shard) */
} AsExportOptions;

void as_export_options_default(AsExportOptions *o);
/* "voc,masks,coco,labelme" (any subset, comma-separated, or "all"). */
int as_export_parse_formats(const char *list, unsigned *formats, AsError *err);

/* "prototype_<g>" */
void as_export_label_name(int group, char *buf, size_t len);

typedef struct AsExporter AsExporter;

/* Open (or create) the dataset in OUTDIR (dataset.h). */
int as_exporter_open(const char *outdir, const AsExportOptions *o, AsExporter **out,
                     AsError *err);
/* Export one image's labels (w x h, row-major), group g as class
 * "prototype_<g>". name: the output stem (e.g. the image file name without
 * extension; unique within the call, an image of that name already in the
 * dataset is replaced); image_path: the source image, for labelme's imagePath
 * and COCO's file_name. */
int as_exporter_add(AsExporter *x, const char *name, const char *image_path,
                    const int32_t *labels, int w, int h, int ngroups, AsError *err);
/* The model input size (w x h) the last added image was segmented at, for
 * alignseg-export.json (otherwise null there). */
void as_exporter_set_input_size(AsExporter *x, int w, int h);
/* Commit: the folder switches to the dataset with the added images. */
int as_exporter_finish(AsExporter *x, AsError *err);
void as_exporter_free(AsExporter *x);

/* Check a label map (sizes, values 0..ngroups-1 or background); what names it. */
int as_export_check_labels(const char *what, const int32_t *labels, int w, int h, int ngroups,
                           AsError *err);
/* mkdir -p */
int as_export_mkdirs(const char *path, AsError *err);

/* Encoders (into memory, *out malloc'ed; name is for messages).
 * VOC: cls holds class ids 0..255 per pixel; palette: 256 colours. */
int as_export_voc_encode(const char *name, const uint8_t *cls, int w, int h,
                         const uint8_t palette[768], uint8_t **out, size_t *len, AsError *err);
/* labelme 5.x JSON: one polygon per 4-connected component of labels with a
 * value v in 0..nlabels-1, labelled label_names[v]. */
int as_export_labelme_encode(const char *name, const char *image_path_rel, const int32_t *labels,
                             int w, int h, int nlabels, const char *const *label_names,
                             double epsilon, bool untrained, char **out, size_t *len,
                             AsError *err);

/* Path of `to` relative to directory `from_dir` (both resolved with
 * realpath when they exist, e.g. "../../photos/cat.jpg"); falls back to an
 * absolute path. Returns 0, or an error if buf is too small. */
int as_relative_path(const char *from_dir, const char *to, char *buf, size_t len, AsError *err);

#endif
