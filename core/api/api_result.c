/* api_result: alignseg/alignseg.h, segmenting, reading a result, merging and
 * relabelling, saving label maps and overlays. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "merge.h"

void alignseg_segment_options_init(AlignsegSegmentOptions *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    AsSegmentOptions d;
    as_segment_options_default(&d);
    o->size = d.size;
    o->long_side = d.long_side;
    o->prototypes = d.prototypes;
    o->mass_threshold = d.mass_threshold;
}

void alignseg_relabel_options_init(AlignsegRelabelOptions *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->merge_threshold = 2.0f; /* off */
}

void alignseg_result_free(AlignsegResult *r)
{
    if (!r)
        return;
    as_result_free(&r->r);
    as_image_free(&r->img);
    free(r->labels);
    free(r->groups);
    free(r);
}

/* Takes the photo (img is emptied, also on failure). */
static int segment(const AlignsegModel *m, AsImage *img, const AlignsegSegmentOptions *o,
                   AlignsegResult **out, AsError *err)
{
    AlignsegResult *r = calloc(1, sizeof *r);
    int rc = 0;
    if (!r) {
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    r->img = *img;
    memset(img, 0, sizeof *img);
    AsSegmentOptions so;
    as_segment_options_default(&so);
    if (o) {
        if (o->size < 0 || o->long_side < 0 || o->prototypes < 0 ||
            !(o->mass_threshold >= 0.0f && o->mass_threshold <= 1.0f)) {
            rc = as_error_set(err, AS_ERR_ARG, "alignseg_segment: bad options");
            goto fail;
        }
        so.size = o->size ? o->size : so.size;
        so.long_side = o->long_side;
        so.prototypes = o->prototypes ? o->prototypes : so.prototypes;
        so.mass_threshold = o->mass_threshold;
        so.hooks.cancel = o->cancel;
    }
    rc = as_segment_image(m->m, &r->img, &so, &r->r, err);
    if (rc)
        goto fail;
    r->labels = malloc((size_t)r->img.w * r->img.h * sizeof *r->labels);
    r->groups = malloc((size_t)r->r.q * sizeof *r->groups);
    if (!r->labels || !r->groups) {
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = alignseg_result_relabel(r, NULL, err);
    if (rc)
        goto fail;
    *out = r;
    return 0;
fail:
    as_image_free(img);
    alignseg_result_free(r);
    return rc;
}

int alignseg_segment_file(const AlignsegModel *m, const char *image_path,
                          const AlignsegSegmentOptions *o, AlignsegResult **out, AsError *err)
{
    if (!out)
        return as_error_set(err, AS_ERR_ARG, "alignseg_segment_file: out is NULL");
    *out = NULL;
    if (!m || !image_path)
        return as_error_set(err, AS_ERR_ARG, "alignseg_segment_file: no model or no image");
    AsImage img = { 0 };
    int rc = as_image_load(image_path, &img, err);
    if (rc)
        return rc;
    return segment(m, &img, o, out, err);
}

int alignseg_segment_rgb(const AlignsegModel *m, const uint8_t *rgb, int w, int h,
                         const AlignsegSegmentOptions *o, AlignsegResult **out, AsError *err)
{
    if (!out)
        return as_error_set(err, AS_ERR_ARG, "alignseg_segment_rgb: out is NULL");
    *out = NULL;
    if (!m || !rgb || w < 1 || h < 1 || w > AS_IMAGE_MAX_SIDE || h > AS_IMAGE_MAX_SIDE ||
        (long long)w * h > AS_IMAGE_MAX_PIXELS)
        return as_error_set(err, AS_ERR_ARG, "alignseg_segment_rgb: no model, or image %dx%d",
                            w, h);
    AsImage img = { w, h, malloc((size_t)w * h * 3) };
    if (!img.rgb)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    memcpy(img.rgb, rgb, (size_t)w * h * 3);
    return segment(m, &img, o, out, err);
}

void alignseg_result_info(const AlignsegResult *r, AlignsegResultInfo *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof *info);
    if (!r)
        return;
    info->width = r->img.w;
    info->height = r->img.h;
    info->input_w = r->r.in_w;
    info->input_h = r->r.in_h;
    info->grid_w = r->r.gw;
    info->grid_h = r->r.gh;
    info->dim = r->r.dim;
    info->prototypes = r->r.q;
    info->heads = r->r.heads;
    info->decoder_heads = r->r.cross_attn ? r->r.dec_heads : 0;
    info->groups = r->ngroups;
}

const float *alignseg_result_map(const AlignsegResult *r, AlignsegMap which, int shape[3],
                                 int *ndim)
{
    int s[3] = { 0, 0, 0 }, nd = 0;
    const float *p = NULL;
    if (r) {
        const AsResult *a = &r->r;
        switch (which) {
        case ALIGNSEG_MAP_TOKENS: p = a->tokens; nd = 2; s[0] = a->n; s[1] = a->dim; break;
        case ALIGNSEG_MAP_CLS_TOKEN: p = a->cls_token; nd = 1; s[0] = a->dim; break;
        case ALIGNSEG_MAP_CLS_ATTENTION: p = a->cls_attn; nd = 2; s[0] = a->heads; s[1] = a->n; break;
        case ALIGNSEG_MAP_CLS_ATTENTION_MEAN: p = a->cls_attn_mean; nd = 1; s[0] = a->n; break;
        case ALIGNSEG_MAP_PROTOTYPES: p = a->queries; nd = 2; s[0] = a->q; s[1] = a->dim; break;
        case ALIGNSEG_MAP_CROSS_ATTENTION:
            p = a->cross_attn;
            nd = 3;
            s[0] = a->dec_heads;
            s[1] = a->q;
            s[2] = a->n;
            break;
        case ALIGNSEG_MAP_SIMILARITY: p = a->similarity; nd = 2; s[0] = a->n; s[1] = a->q; break;
        case ALIGNSEG_MAP_ASSIGNMENT: p = a->assign; nd = 2; s[0] = a->n; s[1] = a->q; break;
        }
    }
    if (!p)
        nd = 0, s[0] = s[1] = s[2] = 0;
    if (shape)
        memcpy(shape, s, sizeof s);
    if (ndim)
        *ndim = nd;
    return p;
}

const uint8_t *alignseg_result_foreground(const AlignsegResult *r)
{
    return r ? r->r.fg_mask : NULL;
}

const int32_t *alignseg_result_labels(const AlignsegResult *r)
{
    return r ? r->labels : NULL;
}

const int32_t *alignseg_result_groups(const AlignsegResult *r)
{
    return r ? r->groups : NULL;
}

int alignseg_result_relabel(AlignsegResult *r, const AlignsegRelabelOptions *o, AsError *err)
{
    if (!r)
        return as_error_set(err, AS_ERR_ARG, "alignseg_result_relabel: no result");
    AsMergeOptions mo;
    as_merge_options_default(&mo);
    bool fg_only = false;
    if (o) {
        if (o->merge_to < 0 || o->merge_threshold != o->merge_threshold)
            return as_error_set(err, AS_ERR_ARG, "alignseg_result_relabel: bad options");
        mo.merge_to = o->merge_to;
        mo.threshold = o->merge_threshold;
        fg_only = o->foreground_only != 0;
    }
    int ngroups = r->r.q;
    int rc = as_result_relabel(&r->r, &mo, fg_only, r->img.h, r->img.w, NULL, r->labels,
                               r->groups, &ngroups, err);
    if (rc)
        return rc;
    r->ngroups = ngroups;
    r->background = fg_only;
    return 0;
}

int alignseg_result_save_labels(const AlignsegResult *r, const char *path, AsError *err)
{
    if (!r || !path)
        return as_error_set(err, AS_ERR_ARG, "alignseg_result_save_labels: no result or path");
    const size_t npx = (size_t)r->img.w * r->img.h;
    uint8_t *idx = malloc(npx);
    if (!idx)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < npx; i++)
        idx[i] = (uint8_t)r->labels[i];
    /* value k is drawn as the viewer and the exports draw group k (merge.h) */
    uint8_t pal[768];
    int ncolors = r->background ? 256 : (r->ngroups > 256 ? 256 : r->ngroups);
    for (int k = 0; k < ncolors; k++)
        as_label_colour(k, pal + 3 * k);
    int rc = as_png_write_indexed(path, idx, r->img.w, r->img.h, pal, ncolors, err);
    free(idx);
    return rc;
}

int alignseg_result_save_overlay(const AlignsegResult *r, const char *path, float opacity,
                                 AsError *err)
{
    if (!r || !path)
        return as_error_set(err, AS_ERR_ARG, "alignseg_result_save_overlay: no result or path");
    uint8_t *rgb = malloc((size_t)r->img.w * r->img.h * 3);
    if (!rgb)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
    as_colourise(r->labels, r->img.w, r->img.h, r->img.rgb, opacity, 3, rgb);
    int rc = as_png_write_rgb(path, rgb, r->img.w, r->img.h, err);
    free(rgb);
    return rc;
}
