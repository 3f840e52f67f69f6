/* dataset: an export folder that holds ONE dataset, consistent however often
 * it is added to. Every format in it describes the same set of images with
 * the same class table:
 *   OUTDIR/alignseg-export.json   the index: format_version 2, generator,
 *        model, formats, the class table ("classes": id, name, colour), the
 *        next free image id, optional shard {index, count}, and per image its
 *        id, name, source file, size, model input size, model and the class
 *        ids present. It is the dataset's source of truth: written last.
 *   OUTDIR/voc/SegmentationClass/NAME.png   8-bit indexed: pixel = class id
 *        (0 = background), palette: class colours over the VOC palette
 *   OUTDIR/voc/labelmap.txt       CVAT "Segmentation mask 1.1": background
 *        and every class used by an image, "name:r,g,b::"
 *   OUTDIR/voc/ImageSets/Segmentation/default.txt   NAMEs, by image id
 *   OUTDIR/masks/NAME/CLASS.png   0/255 per class present in the image
 *   OUTDIR/coco/annotations.json  categories = classes used by an image (id =
 *        class id), images by id, one annotation per (image, class present)
 *        with id = image_id * 1000 + class id (compressed RLE, area, bbox)
 *   OUTDIR/labelme/NAME.json      one polygon per connected region, label =
 *        class name, imagePath relative to the JSON file
 *
 * Classes. Ids 1..AS_DATASET_MAX_CLASS; 0 is background (name "background",
 * black), which no format exports as a class. A class keeps its id and colour
 * for the life of the dataset. A class gets the id it asks for (e.g.
 * prototype_<g> asks for g+1, the order of --class options asks 1, 2, ...)
 * when that id is free, else the smallest free id, so two fresh datasets built
 * with the same options number their classes alike. Names: 1..63 bytes, no
 * '/', ':', ',' or control bytes, not starting with '.'. Group numbers start
 * at 0 everywhere (group g is "prototype_<g>" in files and in the UI).
 * Hidden groups (the viewer's legend) are background or, when asked, the
 * class "ignore"; as_dataset_map_groups holds the rule.
 *
 * Images. NAME (the image file name without extension) is the key: adding an
 * image whose NAME is in the dataset replaces all its entries in every format
 * (its id stays; files of classes it no longer has are removed). New images
 * get the next free id (never reused). The caller decides whether replacing
 * is allowed (as_dataset_find).
 *
 * Consistency. Additions are staged as temporaries; as_dataset_commit writes
 * the index files and switches everything at once through a journaled batch
 * (atomic.h): the folder is always the old dataset or the new one, also when
 * the process is killed or the disk is full (a killed commit is finished by
 * the next open). Not thread-safe: one thread per dataset.
 *
 * Typical use (the viewer, `alignseg export`):
 *   as_dataset_open(dir, &opts, &d, err);
 *   for each image: ids[g] = class for group g (as_dataset_class, 0 = not
 *       exported); as_dataset_add(d, name, path, labels, w, h, ngroups, ids,
 *       in_w, in_h, err);
 *   as_dataset_commit(d, err); as_dataset_free(d); */
#ifndef ALIGNSEG_DATASET_H
#define ALIGNSEG_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "export.h"

#define AS_DATASET_MAX_CLASS 254
#define AS_DATASET_NAME_MAX 64
#define AS_DATASET_INDEX "alignseg-export.json"
/* annotation id = image id * AS_DATASET_ANN_STRIDE + class id */
#define AS_DATASET_ANN_STRIDE 1000

typedef struct {
    int id;                        /* 1..AS_DATASET_MAX_CLASS */
    char name[AS_DATASET_NAME_MAX];
    uint8_t rgb[3];
} AsClass;

typedef struct {
    int64_t id;
    const char *name; /* output stem */
    const char *file; /* source file name (no folder) */
    int w, h;
    int in_w, in_h;   /* model input size, 0 = unknown */
} AsDatasetImage;

typedef struct AsDataset AsDataset;

/* Open the dataset in dir (created with the folders of o->formats if
 * missing). An existing index is read (hostile-safe); one of another format
 * set, an older version or unreadable is refused naming the file. */
int as_dataset_open(const char *dir, const AsExportOptions *o, AsDataset **out, AsError *err);
/* The class called name (created when new: asks for want_id if > 0, colour
 * rgb or, when NULL, the VOC palette colour of its id). "background" gives 0.
 * *id receives the class id. */
int as_dataset_class(AsDataset *d, const char *name, int want_id, const uint8_t *rgb, int *id,
                     AsError *err);
/* The class table indexed by id: *n = AS_DATASET_MAX_CLASS + 1 entries,
 * those with an empty name are free (entry 0 is never used). */
const AsClass *as_dataset_classes(const AsDataset *d, size_t *n);
/* A class table outside a dataset (the viewer's, before it opens one):
 * tab[id] as as_dataset_classes gives, entry 0 unused. The class called name
 * in tab, added when new by the dataset's rule (asks for want_id when free,
 * else the smallest free id; colour rgb or, when NULL, the VOC palette colour
 * of its id). "background" gives 0 and adds nothing. as_dataset_class uses
 * the same rule on the dataset's own table. */
int as_class_table_add(AsClass tab[AS_DATASET_MAX_CLASS + 1], const char *name, int want_id,
                       const uint8_t *rgb, int *id, AsError *err);
/* Id of the class called name in tab, 0 if none (or "background"). */
int as_class_table_find(const AsClass tab[AS_DATASET_MAX_CLASS + 1], const char *name);
/* Read the class table and the image names of the dataset in dir without
 * opening it for writing (nothing is created or changed): tab receives the
 * classes (all free when dir holds no dataset), *names (may be NULL) a
 * NULL-terminated array of the images' NAMEs to free with
 * as_dataset_free_names. 0, or an error naming the index file. */
int as_dataset_peek(const char *dir, AsClass tab[AS_DATASET_MAX_CLASS + 1], char ***names,
                    AsError *err);
void as_dataset_free_names(char **names);
/* as_dataset_peek of the index file's bytes already in memory (path: the
 * file, for messages); the folder variant reads through base/file. */
int as_dataset_peek_mem(const uint8_t *data, size_t len, const char *path,
                        AsClass tab[AS_DATASET_MAX_CLASS + 1], char ***names, AsError *err);
/* What as_dataset_open checks of an existing dataset, on bytes in memory and
 * without a folder: the index (with the formats and --shard of o) and, when
 * coco != NULL, coco/annotations.json. Nothing is written. 0 or the error
 * as_dataset_open would give (name: the file, for messages). */
int as_dataset_check_mem(const AsExportOptions *o, const uint8_t *index, size_t index_len,
                         const uint8_t *coco, size_t coco_len, const char *name, AsError *err);

/* The class of each group of one export, by one rule for the viewer and
 * `alignseg export`:
 *   hidden (visible[g] false; visible NULL = all shown): background, or the
 *     class "ignore" when hidden_ignore (its id in tab, else the last id
 *     AS_DATASET_MAX_CLASS when free);
 *   named "background": background;
 *   named (names[g] non-empty): that class, created when new with the id and
 *     colour it has in tab (tab may be NULL);
 *   unnamed (names NULL or names[g] NULL/""): AS_DATASET_PROTOTYPE, the class
 *     "prototype_<g>" (id g+1 when free) created only if the group has pixels.
 * Groups without pixels are never exported (as_dataset_add). group_class
 * receives ngroups entries for as_dataset_add. */
#define AS_DATASET_PROTOTYPE (-1)
int as_dataset_map_groups(AsDataset *d, const AsClass *tab, int ngroups, const char *const *names,
                          const bool *visible, bool hidden_ignore, int *group_class,
                          AsError *err);

/* Validate a class name (see above); 0 or an AS_ERR_ARG naming it. */
int as_dataset_check_class_name(const char *name, AsError *err);
/* Images, by id. */
size_t as_dataset_image_count(const AsDataset *d);
int as_dataset_image(const AsDataset *d, size_t i, AsDatasetImage *out);
/* Index of the image called name, or -1. */
long as_dataset_find(const AsDataset *d, const char *name);
/* Stage one image: labels w x h, values 0..ngroups-1 or AS_LABEL_BACKGROUND;
 * group_class[g] is the class id of group g (0 = not exported: background,
 * AS_DATASET_PROTOTYPE: class "prototype_<g>"), or group_class NULL: every
 * group g is class "prototype_<g>". Groups without
 * pixels are not exported. image_path: the source, for labelme's imagePath
 * and COCO's file_name. in_w/in_h: model input size (0 = unknown). */
int as_dataset_add(AsDataset *d, const char *name, const char *image_path, const int32_t *labels,
                   int w, int h, int ngroups, const int *group_class, int in_w, int in_h,
                   AsError *err);
/* Set image i's model input size (before the commit). */
void as_dataset_set_input_size(AsDataset *d, size_t i, int in_w, int in_h);
/* Number of images staged since the last commit. */
size_t as_dataset_pending(const AsDataset *d);
/* Write the index files and switch the folder to the new dataset at once.
 * After a failed commit the folder is unchanged; free the dataset (and open
 * it again to retry). */
int as_dataset_commit(AsDataset *d, AsError *err);
/* Free; staged, uncommitted images are dropped (the folder is unchanged). */
void as_dataset_free(AsDataset *d);

#endif
