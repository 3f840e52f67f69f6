/* alignseg/export.h: export label maps for annotation tools into one dataset
 * folder (PASCAL VOC as CVAT's "Segmentation mask 1.1", one PNG per group,
 * COCO JSON with RLE, labelme polygons; alignseg-export.json indexes them), as
 * `alignseg export` does. Group g is the class "prototype_<g>". Adding an image
 * whose name is in the folder already replaces it; nothing appears in the
 * folder before alignseg_exporter_finish, which switches it atomically. Part of
 * the public API: see alignseg/alignseg.h. */
#ifndef ALIGNSEG_PUBLIC_EXPORT_H
#define ALIGNSEG_PUBLIC_EXPORT_H

#include <alignseg/error.h>

#ifdef __cplusplus
extern "C" {
#endif

struct AlignsegModel;
struct AlignsegResult;

typedef struct AlignsegExporter AlignsegExporter;

enum {
    ALIGNSEG_EXPORT_VOC = 1,
    ALIGNSEG_EXPORT_MASKS = 2,
    ALIGNSEG_EXPORT_COCO = 4,
    ALIGNSEG_EXPORT_LABELME = 8,
    ALIGNSEG_EXPORT_ALL = 15
};

typedef struct {
    unsigned formats;       /* ALIGNSEG_EXPORT_* bits (default: all) */
    double polygon_epsilon; /* labelme: simplification tolerance in pixels (0.5; 0 = exact) */
    const char *generator;  /* recorded in alignseg-export.json (NULL: "libalignseg VERSION") */
    int reserved[8];
} AlignsegExportOptions;

ALIGNSEG_API void alignseg_export_options_init(AlignsegExportOptions *o);
/* Open (or create) the dataset in outdir. model (may be NULL) is recorded as
 * the labels' origin, with a mark when its weights are untrained. */
ALIGNSEG_API int alignseg_exporter_open(const char *outdir, const struct AlignsegModel *model,
                                        const AlignsegExportOptions *o, AlignsegExporter **out,
                                        AsError *err);
/* Add the current labels of a result. name: the output stem (e.g. the image's
 * file name without extension); image_path: the source image (labelme's
 * imagePath, COCO's file_name). */
ALIGNSEG_API int alignseg_exporter_add(AlignsegExporter *x, const char *name,
                                       const char *image_path, const struct AlignsegResult *r,
                                       AsError *err);
/* Commit: the folder switches to the dataset with the added images. */
ALIGNSEG_API int alignseg_exporter_finish(AlignsegExporter *x, AsError *err);
ALIGNSEG_API void alignseg_exporter_free(AlignsegExporter *x);

#ifdef __cplusplus
}
#endif

#endif
