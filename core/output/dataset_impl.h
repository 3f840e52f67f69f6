/* dataset_impl: what dataset.c (reading, adding, committing) and
 * dataset_write.c (the whole-dataset files: COCO, the index, the VOC lists)
 * share. Private to core/output; the API is dataset.h. */
#ifndef AS_DATASET_IMPL_H
#define AS_DATASET_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomic.h"
#include "dataset.h"

#define FORMAT_VERSION 2
#define MAX_JSON_FILE ((uint64_t)1 << 30) /* the JSON reader's file limit (json.c) */

typedef struct {
    int64_t id;
    char *name, *file, *model;
    bool untrained;
    int w, h, in_w, in_h;
    uint8_t present[AS_DATASET_MAX_CLASS + 1]; /* class ids with pixels */
    char *coco; /* compact COCO annotations, one per line */
} Img;

struct AsDataset {
    char *dir;
    AsExportOptions opt;
    char *generator, *model, *settings; /* owned copies of opt's strings */
    AsAtomicBatch *batch;
    AsClass cls[AS_DATASET_MAX_CLASS + 1]; /* by id; name[0] == 0: free */
    Img *img;
    size_t n, cap;
    int64_t next_id;
    size_t pending;
    char **newdirs; /* masks/NAME folders made since the last commit: removed
                       (when still empty) if the additions are dropped */
    size_t nnew;
};

static const struct {
    unsigned bit;
    const char *name;
} fmt_names[] = { { AS_EXPORT_VOC, "voc" },
                  { AS_EXPORT_MASKS, "masks" },
                  { AS_EXPORT_COCO, "coco" },
                  { AS_EXPORT_LABELME, "labelme" } };

/* stage one file of the dataset in the open batch */
int dataset_put(AsDataset *d, const char *rel, const void *data, size_t len, AsError *err);
/* the files that describe the whole dataset, staged from d's image list */
int dataset_write_coco(AsDataset *d, AsError *err);
int dataset_write_index(AsDataset *d, AsError *err);
int dataset_write_voc_lists(AsDataset *d, AsError *err);

#endif
