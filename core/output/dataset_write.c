/* dataset_write: the files that describe the whole dataset (COCO's
 * annotations.json, alignseg-export.json, the VOC image lists), staged in the
 * dataset's batch at commit; see dataset_impl.h. */
#include "dataset_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

static bool class_used(const AsDataset *d, int c)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->img[i].present[c])
            return true;
    return false;
}

static int put_text(AsDataset *d, const char *rel, AsJsonW *jw, AsError *err)
{
    int rc = as_jw_finish(jw, rel, err);
    if (!rc && !as_jw_append_newline(jw))
        rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", rel);
    if (!rc)
        rc = dataset_put(d, rel, jw->buf, jw->len, err);
    as_jw_free(jw);
    return rc;
}

int dataset_write_coco(AsDataset *d, AsError *err)
{
    AsJsonW jw;
    as_jw_init(&jw, 2);
    as_jw_object_begin(&jw);
    as_jw_key(&jw, "info");
    as_jw_object_begin(&jw);
    as_jw_key(&jw, "description");
    as_jw_string(&jw, d->opt.untrained
                          ? "AlignSeg prototype segmentation exported by alignseg; UNTRAINED "
                            "model (random weights): the labels mean nothing"
                          : "AlignSeg prototype segmentation exported by alignseg");
    if (d->model) {
        as_jw_key(&jw, "alignseg_model");
        as_jw_string(&jw, d->model);
    }
    as_jw_key(&jw, "alignseg_untrained");
    as_jw_bool(&jw, d->opt.untrained);
    as_jw_object_end(&jw);
    as_jw_key(&jw, "licenses");
    as_jw_array_begin(&jw);
    as_jw_array_end(&jw);
    as_jw_key(&jw, "images");
    as_jw_array_begin(&jw);
    for (size_t i = 0; i < d->n; i++) {
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "id");
        as_jw_int(&jw, d->img[i].id);
        as_jw_key(&jw, "file_name");
        as_jw_string(&jw, d->img[i].file);
        as_jw_key(&jw, "width");
        as_jw_int(&jw, d->img[i].w);
        as_jw_key(&jw, "height");
        as_jw_int(&jw, d->img[i].h);
        as_jw_object_end(&jw);
    }
    as_jw_array_end(&jw);
    as_jw_key(&jw, "categories");
    as_jw_array_begin(&jw);
    for (int c = 1; c <= AS_DATASET_MAX_CLASS; c++) {
        if (!d->cls[c].name[0] || !class_used(d, c))
            continue;
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "id");
        as_jw_int(&jw, c);
        as_jw_key(&jw, "name");
        as_jw_string(&jw, d->cls[c].name);
        as_jw_key(&jw, "supercategory");
        as_jw_string(&jw, "alignseg");
        as_jw_object_end(&jw);
    }
    as_jw_array_end(&jw);
    as_jw_key(&jw, "annotations");
    as_jw_array_begin(&jw);
    for (size_t i = 0; i < d->n; i++)
        for (const char *p = d->img[i].coco; p && *p;) {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            as_jw_raw_value(&jw, p, n);
            p += n + (e ? 1 : 0);
        }
    as_jw_array_end(&jw);
    as_jw_object_end(&jw);
    return put_text(d, "coco/annotations.json", &jw, err);
}

int dataset_write_index(AsDataset *d, AsError *err)
{
    AsJsonW jw;
    as_jw_init(&jw, 2);
    as_jw_object_begin(&jw);
    as_jw_key(&jw, "format_version");
    as_jw_int(&jw, FORMAT_VERSION);
    as_jw_key(&jw, "generator");
    as_jw_string(&jw, d->generator);
    as_jw_key(&jw, "model");
    if (d->model)
        as_jw_string(&jw, d->model);
    else
        as_jw_null(&jw);
    as_jw_key(&jw, "untrained");
    as_jw_bool(&jw, d->opt.untrained);
    if (d->opt.untrained) {
        as_jw_key(&jw, "warning");
        as_jw_string(&jw, "the model's weights are a random initialisation: these labels mean "
                          "nothing and are for trying the tools only");
    }
    as_jw_key(&jw, "settings");
    if (d->settings)
        as_jw_string(&jw, d->settings);
    else
        as_jw_null(&jw);
    if (d->opt.shard_count > 0) {
        as_jw_key(&jw, "shard");
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "index");
        as_jw_int(&jw, d->opt.shard_index);
        as_jw_key(&jw, "count");
        as_jw_int(&jw, d->opt.shard_count);
        as_jw_object_end(&jw);
    }
    as_jw_key(&jw, "formats");
    as_jw_array_begin_inline(&jw);
    for (size_t i = 0; i < sizeof fmt_names / sizeof fmt_names[0]; i++)
        if (d->opt.formats & fmt_names[i].bit)
            as_jw_string(&jw, fmt_names[i].name);
    as_jw_array_end(&jw);
    as_jw_key(&jw, "classes");
    as_jw_array_begin(&jw);
    for (int c = 1; c <= AS_DATASET_MAX_CLASS; c++) {
        if (!d->cls[c].name[0])
            continue;
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "id");
        as_jw_int(&jw, c);
        as_jw_key(&jw, "name");
        as_jw_string(&jw, d->cls[c].name);
        as_jw_key(&jw, "color");
        as_jw_array_begin_inline(&jw);
        for (int t = 0; t < 3; t++)
            as_jw_int(&jw, d->cls[c].rgb[t]);
        as_jw_array_end(&jw);
        as_jw_object_end(&jw);
    }
    as_jw_array_end(&jw);
    as_jw_key(&jw, "next_image_id");
    as_jw_int(&jw, d->next_id);
    as_jw_key(&jw, "images");
    as_jw_array_begin(&jw);
    for (size_t i = 0; i < d->n; i++) {
        const Img *im = &d->img[i];
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "id");
        as_jw_int(&jw, im->id);
        as_jw_key(&jw, "name");
        as_jw_string(&jw, im->name);
        as_jw_key(&jw, "file");
        as_jw_string(&jw, im->file);
        as_jw_key(&jw, "size");
        as_jw_array_begin_inline(&jw);
        as_jw_int(&jw, im->w);
        as_jw_int(&jw, im->h);
        as_jw_array_end(&jw);
        as_jw_key(&jw, "input_size");
        if (im->in_w > 0 && im->in_h > 0) {
            as_jw_array_begin_inline(&jw);
            as_jw_int(&jw, im->in_w);
            as_jw_int(&jw, im->in_h);
            as_jw_array_end(&jw);
        } else {
            as_jw_null(&jw);
        }
        as_jw_key(&jw, "model");
        if (im->model)
            as_jw_string(&jw, im->model);
        else
            as_jw_null(&jw);
        as_jw_key(&jw, "untrained");
        as_jw_bool(&jw, im->untrained);
        as_jw_key(&jw, "classes");
        as_jw_array_begin_inline(&jw);
        for (int c = 1; c <= AS_DATASET_MAX_CLASS; c++)
            if (im->present[c])
                as_jw_int(&jw, c);
        as_jw_array_end(&jw);
        as_jw_object_end(&jw);
    }
    as_jw_array_end(&jw);
    as_jw_object_end(&jw);
    return put_text(d, AS_DATASET_INDEX, &jw, err);
}

int dataset_write_voc_lists(AsDataset *d, AsError *err)
{
    size_t cap = 64 + (size_t)AS_DATASET_MAX_CLASS * (AS_DATASET_NAME_MAX + 20);
    for (size_t i = 0; i < d->n; i++)
        cap += strlen(d->img[i].name) + 1;
    char *t = malloc(cap);
    if (!t)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", d->dir);
    size_t n = (size_t)sprintf(t, "# label:color_rgb:parts:actions\nbackground:0,0,0::\n");
    for (int c = 1; c <= AS_DATASET_MAX_CLASS; c++)
        if (d->cls[c].name[0] && class_used(d, c))
            n += (size_t)sprintf(t + n, "%s:%d,%d,%d::\n", d->cls[c].name, d->cls[c].rgb[0],
                                 d->cls[c].rgb[1], d->cls[c].rgb[2]);
    int rc = dataset_put(d, "voc/labelmap.txt", t, n, err);
    n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += (size_t)sprintf(t + n, "%s\n", d->img[i].name);
    if (!rc)
        rc = dataset_put(d, "voc/ImageSets/Segmentation/default.txt", t, n, err);
    free(t);
    return rc;
}

