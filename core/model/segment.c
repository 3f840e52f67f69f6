/* segment: see segment.h */
#include "segment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "fgmask.h"
#include "linear.h"
#include "pool.h"
#include "resample.h"
#include "kmeans.h"

void as_segment_options_default(AsSegmentOptions *o)
{
    memset(o, 0, sizeof *o);
    o->size = 448;
    o->long_side = 0;
    o->prototypes = 5;
    o->mass_threshold = 0.6f;
}

void as_segment_workspace_init(AsSegmentWorkspace *ws)
{
    as_vit_workspace_init(&ws->vit);
    as_decoder_workspace_init(&ws->dec);
}

void as_segment_workspace_free(AsSegmentWorkspace *ws)
{
    if (!ws)
        return;
    as_vit_workspace_free(&ws->vit);
    as_decoder_workspace_free(&ws->dec);
}

void as_result_free(AsResult *r)
{
    if (!r)
        return;
    free(r->tokens);
    free(r->cls_token);
    free(r->cls_attn);
    free(r->cls_attn_mean);
    free(r->queries);
    free(r->cross_attn);
    free(r->similarity);
    free(r->assign);
    free(r->fg_mask);
    free(r->labels_patch);
    free(r->labels_full);
    memset(r, 0, sizeof *r);
}

static int round_to_patch(double v, int p)
{
    double k = floor(v / p + 0.5);
    if (k < 1.0)
        k = 1.0;
    if (k > (double)AS_IMAGE_MAX_SIDE / p)
        k = (double)AS_IMAGE_MAX_SIDE / p + 1; /* caught by the caller's range check */
    return (int)k * p;
}

int as_input_size(const AsModel *m, int img_w, int img_h, const AsSegmentOptions *o,
                  int *in_w, int *in_h, AsError *err)
{
    AsSegmentOptions def;
    if (!o) {
        as_segment_options_default(&def);
        o = &def;
    }
    const int p = m->enc.cfg.patch;
    if (img_w <= 0 || img_h <= 0)
        return as_error_set(err, AS_ERR_ARG, "image of %dx%d pixels", img_w, img_h);
    int w, h;
    if (o->long_side > 0) {
        const double scale = (double)o->long_side / (img_w > img_h ? img_w : img_h);
        w = round_to_patch(img_w * scale, p);
        h = round_to_patch(img_h * scale, p);
    } else {
        if (o->size <= 0)
            return as_error_set(err, AS_ERR_ARG, "input size %d must be positive", o->size);
        w = h = round_to_patch(o->size, p);
    }
    if (w > AS_IMAGE_MAX_SIDE || h > AS_IMAGE_MAX_SIDE)
        return as_error_set(err, AS_ERR_ARG, "input size %dx%d is too large (at most %d)", w, h,
                            AS_IMAGE_MAX_SIDE);
    *in_w = w;
    *in_h = h;
    return 0;
}

void as_attn_head_mean(const float *attn, int heads, int n, float *mean)
{
    /* reference: sum(attn[:, i] * (1 / heads) for i in heads), in float */
    const float r = 1.0f / (float)heads;
    for (int j = 0; j < n; j++) {
        float acc = 0.0f;
        for (int h = 0; h < heads; h++)
            acc += attn[(size_t)h * n + j] * r;
        mean[j] = acc;
    }
}

int as_cosine_similarity(const float *tokens, int n, const float *protos, int q, int dim,
                         float *sim, AsError *err)
{
    int rc = 0;
    float *fn = malloc((size_t)n * dim * sizeof *fn);
    float *pn = malloc((size_t)q * dim * sizeof *pn);
    if (!fn || !pn) {
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory for the similarity of %d tokens", n);
        goto fail;
    }
    as_l2norm_rows(tokens, n, dim, 1e-10f, fn);
    as_l2norm_rows(protos, q, dim, 1e-10f, pn);
    as_sgemm_rows(true, n, q, dim, 1.0f, fn, dim, pn, dim, 0.0f, sim, q);
fail:
    free(fn);
    free(pn);
    return rc;
}

int as_foreground_mask(const float *attn_mean, int gh, int gw, float mass_threshold,
                       uint8_t *mask)
{
    const size_t n = (size_t)gh * gw;
    memset(mask, 0, n);
    float k[AS_FG_BLUR_TAPS];
    as_gaussian_kernel(AS_FG_BLUR_TAPS, AS_FG_BLUR_SIGMA, k);
    float *blur = malloc(n * sizeof *blur);
    if (!blur)
        return AS_ERR_NOMEM;
    int rc = as_blur_separable(attn_mean, gh, gw, k, AS_FG_BLUR_TAPS, blur, NULL);
    if (!rc)
        rc = as_mass_threshold(blur, (int)n, mass_threshold, mask, NULL);
    free(blur);
    if (!rc && as_drop_small_components(mask, gh, gw, AS_FG_MIN_COMPONENT - 1) < 0)
        rc = AS_ERR_NOMEM;
    if (rc) {
        memset(mask, 0, n);
        return AS_ERR_NOMEM;
    }
    return 0;
}

typedef struct {
    const float *assign;
    int gh, gw, q, out_h, out_w;
    int32_t *labels;
} UpsampleJob;

#define UPSAMPLE_ROWS 16 /* output rows per work item */

/* Direct form: the four taps of every output pixel. Used when the separable
 * form's buffers cannot be allocated. */
static void upsample_rows(void *ctx, int item, int tid)
{
    (void)tid;
    const UpsampleJob *j = ctx;
    const float *assign = j->assign;
    const int gw = j->gw, q = j->q, out_w = j->out_w;
    const int y_end = (item + 1) * UPSAMPLE_ROWS < j->out_h ? (item + 1) * UPSAMPLE_ROWS : j->out_h;
    for (int y = item * UPSAMPLE_ROWS; y < y_end; y++) {
        int y0, y1;
        float wy0, wy1;
        as_bilinear_index(y, j->gh, j->out_h, &y0, &y1, &wy0, &wy1);
        for (int x = 0; x < out_w; x++) {
            int x0, x1;
            float wx0, wx1;
            as_bilinear_index(x, gw, out_w, &x0, &x1, &wx0, &wx1);
            const float *a00 = assign + ((size_t)y0 * gw + x0) * q;
            const float *a01 = assign + ((size_t)y0 * gw + x1) * q;
            const float *a10 = assign + ((size_t)y1 * gw + x0) * q;
            const float *a11 = assign + ((size_t)y1 * gw + x1) * q;
            int best = 0;
            float bv = -INFINITY;
            for (int c = 0; c < q; c++) {
                const float v = wy0 * (wx0 * a00[c] + wx1 * a01[c]) +
                                wy1 * (wx0 * a10[c] + wx1 * a11[c]);
                if (v > bv) {
                    bv = v;
                    best = c;
                }
            }
            j->labels[(size_t)y * out_w + x] = best;
        }
    }
}

/* Separable form: every patch row is interpolated horizontally once to the
 * output width (hrow, (gh, out_w, q)), then each output row mixes two of
 * those rows. The arithmetic is the direct form's, term by term
 * (wy0 * (wx0 a00 + wx1 a01) + wy1 * (wx0 a10 + wx1 a11)), so the labels are
 * bit-identical. */
typedef struct {
    const UpsampleJob *up;
    const int *x0, *x1;
    const float *wx0, *wx1;
    float *hrow;
} SepJob;

static void sep_horizontal(void *ctx, int r, int tid)
{
    (void)tid;
    const SepJob *s = ctx;
    const int q = s->up->q, out_w = s->up->out_w;
    const float *row = s->up->assign + (size_t)r * s->up->gw * q;
    float *o = s->hrow + (size_t)r * out_w * q;
    for (int x = 0; x < out_w; x++) {
        const float *p0 = row + (size_t)s->x0[x] * q, *p1 = row + (size_t)s->x1[x] * q;
        const float w0 = s->wx0[x], w1 = s->wx1[x];
        float *ox = o + (size_t)x * q;
        for (int c = 0; c < q; c++)
            ox[c] = w0 * p0[c] + w1 * p1[c];
    }
}

static void sep_vertical(void *ctx, int item, int tid)
{
    (void)tid;
    const SepJob *s = ctx;
    const UpsampleJob *j = s->up;
    const int q = j->q, out_w = j->out_w;
    const int y_end = (item + 1) * UPSAMPLE_ROWS < j->out_h ? (item + 1) * UPSAMPLE_ROWS : j->out_h;
    for (int y = item * UPSAMPLE_ROWS; y < y_end; y++) {
        int y0, y1;
        float wy0, wy1;
        as_bilinear_index(y, j->gh, j->out_h, &y0, &y1, &wy0, &wy1);
        const float *h0 = s->hrow + (size_t)y0 * out_w * q, *h1 = s->hrow + (size_t)y1 * out_w * q;
        int32_t *lab = j->labels + (size_t)y * out_w;
        for (int x = 0; x < out_w; x++) {
            const float *a0 = h0 + (size_t)x * q, *a1 = h1 + (size_t)x * q;
            int best = 0;
            float bv = -INFINITY;
            for (int c = 0; c < q; c++) {
                const float v = wy0 * a0[c] + wy1 * a1[c];
                if (v > bv) {
                    bv = v;
                    best = c;
                }
            }
            lab[x] = best;
        }
    }
}

void as_upsample_argmax(const float *assign, int gh, int gw, int q, int out_h, int out_w,
                        int32_t *labels)
{
    if (out_h <= 0 || out_w <= 0)
        return;
    UpsampleJob j = { assign, gh, gw, q, out_h, out_w, labels };
    const int items = (out_h + UPSAMPLE_ROWS - 1) / UPSAMPLE_ROWS;
    int *xi = gh > 0 && q > 0 ? malloc((size_t)out_w * 2 * sizeof *xi) : NULL;
    float *xw = xi ? malloc((size_t)out_w * 2 * sizeof *xw) : NULL;
    float *hrow = xw ? malloc((size_t)gh * out_w * q * sizeof *hrow) : NULL;
    if (!hrow) {
        free(xi);
        free(xw);
        as_parallel_for(items, upsample_rows, &j);
        return;
    }
    for (int x = 0; x < out_w; x++)
        as_bilinear_index(x, gw, out_w, &xi[x], &xi[out_w + x], &xw[x], &xw[out_w + x]);
    SepJob s = { &j, xi, xi + out_w, xw, xw + out_w, hrow };
    as_parallel_for(gh, sep_horizontal, &s);
    as_parallel_for(items, sep_vertical, &s);
    free(xi);
    free(xw);
    free(hrow);
}

static void progress(const AsSegmentOptions *o, const char *stage)
{
    as_hooks_progress(&o->hooks, stage, 1, 1);
}

static bool cancelled(const AsSegmentOptions *o)
{
    return as_hooks_cancelled(&o->hooks);
}

int as_segment_with(const AsModel *m, AsSegmentWorkspace *ws, const float *input, int h, int w,
                    const AsSegmentOptions *o, AsResult *out, AsError *err)
{
    memset(out, 0, sizeof *out);
    AsSegmentOptions def;
    if (!o) {
        as_segment_options_default(&def);
        o = &def;
    }
    if (!(o->mass_threshold >= 0.0f && o->mass_threshold <= 1.0f))
        return as_error_set(err, AS_ERR_ARG, "mass threshold %g is not in [0, 1]",
                            (double)o->mass_threshold);
    const AsEncoder *enc = &m->enc;
    int rc = as_vit_forward(enc, input, h, w, &ws->vit, &o->hooks, err);
    if (rc)
        return rc;
    const AsVitWorkspace *v = &ws->vit;
    const int n = v->n, d = enc->cfg.dim, heads = enc->cfg.heads;
    AsResult *r = out;
    r->in_w = w;
    r->in_h = h;
    r->gh = v->gh;
    r->gw = v->gw;
    r->n = n;
    r->dim = d;
    r->heads = heads;
    r->backbone_only = !m->has_decoder;
    r->dec_heads = m->has_decoder ? m->dec.cfg.heads : 0;
    int q = m->has_decoder ? m->dec.cfg.queries : (o->prototypes > 0 ? o->prototypes : 5);
    if (q > n && !m->has_decoder)
        q = n;
    r->q = q;
    r->tokens = malloc((size_t)n * d * sizeof *r->tokens);
    r->cls_token = malloc((size_t)d * sizeof *r->cls_token);
    r->cls_attn = malloc((size_t)heads * n * sizeof *r->cls_attn);
    r->cls_attn_mean = malloc((size_t)n * sizeof *r->cls_attn_mean);
    r->queries = malloc((size_t)q * d * sizeof *r->queries);
    r->cross_attn =
        m->has_decoder ? malloc((size_t)r->dec_heads * q * n * sizeof *r->cross_attn) : NULL;
    r->similarity = malloc((size_t)n * q * sizeof *r->similarity);
    r->assign = malloc((size_t)n * q * sizeof *r->assign);
    r->fg_mask = malloc((size_t)n * sizeof *r->fg_mask);
    r->labels_patch = malloc((size_t)n * sizeof *r->labels_patch);
    r->labels_full = malloc((size_t)h * w * sizeof *r->labels_full);
    if (!r->tokens || !r->cls_token || !r->cls_attn || !r->cls_attn_mean || !r->queries ||
        (m->has_decoder && !r->cross_attn) || !r->similarity || !r->assign || !r->fg_mask ||
        !r->labels_patch || !r->labels_full) {
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory for the result of a %dx%d input", w,
                          h);
        goto fail;
    }
    memcpy(r->tokens, v->tokens, (size_t)n * d * sizeof(float));
    memcpy(r->cls_token, v->cls, (size_t)d * sizeof(float));
    memcpy(r->cls_attn, v->cls_attn, (size_t)heads * n * sizeof(float));
    as_attn_head_mean(r->cls_attn, heads, n, r->cls_attn_mean);

    if (cancelled(o)) {
        rc = as_error_set(err, AS_ERR_CANCELLED, "cancelled after the encoder");
        goto fail;
    }
    if (m->has_decoder) {
        rc = as_decoder_forward(&m->dec, r->tokens, n, &ws->dec, err);
        if (rc)
            goto fail;
        memcpy(r->queries, ws->dec.out, (size_t)q * d * sizeof(float));
        memcpy(r->cross_attn, ws->dec.cross_attn, (size_t)r->dec_heads * q * n * sizeof(float));
        progress(o, "decoder");
    } else {
        rc = as_spherical_kmeans(r->tokens, n, d, q, AS_KMEANS_MAX_ITER, r->queries, NULL, NULL,
                                 err);
        if (rc)
            goto fail;
        progress(o, "prototypes");
    }
    if (cancelled(o)) {
        rc = as_error_set(err, AS_ERR_CANCELLED, "cancelled after the prototypes");
        goto fail;
    }
    rc = as_cosine_similarity(r->tokens, n, r->queries, q, d, r->similarity, err);
    if (rc)
        goto fail;
    memcpy(r->assign, r->similarity, (size_t)n * q * sizeof(float));
    as_softmax_rows(r->assign, n, q);
    for (int i = 0; i < n; i++) {
        const float *a = r->assign + (size_t)i * q;
        int best = 0;
        for (int c = 1; c < q; c++)
            if (a[c] > a[best])
                best = c;
        r->labels_patch[i] = best;
    }
    as_upsample_argmax(r->assign, r->gh, r->gw, q, h, w, r->labels_full);
    if (as_foreground_mask(r->cls_attn_mean, r->gh, r->gw, o->mass_threshold, r->fg_mask)) {
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory for the foreground mask");
        goto fail;
    }
    progress(o, "done");
    return 0;
fail:
    as_result_free(r);
    return rc;
}

int as_segment(const AsModel *m, const float *input, int h, int w,
               const AsSegmentOptions *o, AsResult *out, AsError *err)
{
    AsSegmentWorkspace ws;
    as_segment_workspace_init(&ws);
    int rc = as_segment_with(m, &ws, input, h, w, o, out, err);
    as_segment_workspace_free(&ws);
    return rc;
}

int as_segment_image(const AsModel *m, const AsImage *img, const AsSegmentOptions *o,
                     AsResult *out, AsError *err)
{
    memset(out, 0, sizeof *out);
    int w, h;
    int rc = as_input_size(m, img->w, img->h, o, &w, &h, err);
    if (rc)
        return rc;
    AsImage resized = { 0 };
    const AsImage *src = img;
    if (img->w != w || img->h != h) {
        if (o)
            as_hooks_progress(&o->hooks, "resize", 0, 1);
        rc = as_image_resize(img, w, h, &resized, err);
        if (rc)
            return rc;
        src = &resized;
    }
    float *input = malloc((size_t)3 * w * h * sizeof *input);
    if (!input) {
        as_image_free(&resized);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for a %dx%d input", w, h);
    }
    as_image_normalize(src, input);
    as_image_free(&resized);
    rc = as_segment(m, input, h, w, o, out, err);
    free(input);
    return rc;
}
