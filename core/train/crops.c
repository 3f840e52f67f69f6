/* crops: see crops.h */
#include "crops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "fgmask.h"
#include "pool.h"
#include "segment.h"
#include "vit.h"

/* ------------------------------------------------------------------------ */
/* crops */

void as_random_resized_crop(AsRng *r, int img_w, int img_h, double smin, double smax,
                            AsBox *out)
{
    const double area = (double)img_w * img_h;
    const double lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * as_rng_uniform_range(r, smin, smax);
        double aspect = exp(as_rng_uniform_range(r, lr0, lr1));
        int w = (int)nearbyint(sqrt(target * aspect));
        int h = (int)nearbyint(sqrt(target / aspect));
        if (w > 0 && w <= img_w && h > 0 && h <= img_h) {
            out->y = (int)as_rng_int(r, 0, img_h - h);
            out->x = (int)as_rng_int(r, 0, img_w - w);
            out->w = w;
            out->h = h;
            return;
        }
    }
    double in_ratio = (double)img_w / img_h;
    int w = img_w, h = img_h;
    if (in_ratio < 3.0 / 4.0)
        h = (int)nearbyint(w / (3.0 / 4.0));
    else if (in_ratio > 4.0 / 3.0)
        w = (int)nearbyint(h * (4.0 / 3.0));
    if (h > img_h)
        h = img_h;
    if (w > img_w)
        w = img_w;
    out->w = w > 0 ? w : 1;
    out->h = h > 0 ? h : 1;
    out->x = (img_w - out->w) / 2;
    out->y = (img_h - out->h) / 2;
}

static long box_intersection(const AsBox *a, const AsBox *b)
{
    int x1 = a->x > b->x ? a->x : b->x, y1 = a->y > b->y ? a->y : b->y;
    int x2 = a->x + a->w < b->x + b->w ? a->x + a->w : b->x + b->w;
    int y2 = a->y + a->h < b->y + b->h ? a->y + a->h : b->y + b->h;
    if (x2 <= x1 || y2 <= y1)
        return 0;
    return (long)(x2 - x1) * (y2 - y1);
}

void as_sample_multicrop(AsRng *r, int img_w, int img_h, int nlocal, double min_inter,
                         AsBox *boxes)
{
    as_random_resized_crop(r, img_w, img_h, 0.5, 1.0, &boxes[0]);
    const long need = (long)((double)img_w * img_h * min_inter);
    for (int i = 1; i <= nlocal; i++) {
        int tries = 0;
        do
            as_random_resized_crop(r, img_w, img_h, 0.05, 0.25, &boxes[i]);
        while (box_intersection(&boxes[i], &boxes[0]) <= need && ++tries < 10000);
        if (tries >= 10000) { /* cannot happen for sane images: centre it in the global crop */
            AsBox *b = &boxes[i];
            if (b->w > boxes[0].w)
                b->w = boxes[0].w;
            if (b->h > boxes[0].h)
                b->h = boxes[0].h;
            b->x = boxes[0].x + (boxes[0].w - b->w) / 2;
            b->y = boxes[0].y + (boxes[0].h - b->h) / 2;
        }
    }
}

int as_crop_normalized(const AsImage *img, const AsBox *box, int size, float *out,
                       AsError *err)
{
    if (box->x < 0 || box->y < 0 || box->w <= 0 || box->h <= 0 || box->x + box->w > img->w ||
        box->y + box->h > img->h)
        return as_error_set(err, AS_ERR_ARG, "crop %dx%d+%d+%d outside the %dx%d image", box->w,
                            box->h, box->x, box->y, img->w, img->h);
    AsImage sub = { box->w, box->h, malloc((size_t)box->w * box->h * 3) };
    if (!sub.rgb)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for a %dx%d crop", box->w, box->h);
    for (int y = 0; y < box->h; y++)
        memcpy(sub.rgb + (size_t)y * box->w * 3,
               img->rgb + ((size_t)(box->y + y) * img->w + box->x) * 3, (size_t)box->w * 3);
    AsImage res = { 0, 0, NULL };
    int rc = as_image_resize(&sub, size, size, &res, err);
    free(sub.rgb);
    if (rc)
        return rc;
    as_image_normalize(&res, out);
    as_image_free(&res);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* encoder outputs of the crops */

void as_pairing_source(AsPairing p, int batch, int nlocal, int b, int i, int *img, int *crop)
{
    if (p == AS_PAIRING_SAME_IMAGE) {
        *img = b;
        *crop = i;
        return;
    }
    /* locals are listed crop-major [crop 1 of images 0..B-1, crop 2 ...];
     * entry (b, i) is element b * nlocal + i of that list */
    int k = b * nlocal + i;
    *crop = k / batch;
    *img = k % batch;
}

/* Crops encoded per batched pass: enough rows (16 x 197 at 224) that every
 * product keeps both threads busy, few enough that the pass's activations
 * (about 4 MB per 224 crop) stay small next to the batch's tokens. */
#define ENCODE_CHUNK 16

/* The tokens and foreground mask of crop k (pass image i) into tc. */
static int keep_crop(AsTrainCrops *tc, const AsVitWorkspace *ws, int i, size_t k, float mass,
                     float *mean, AsError *err)
{
    const size_t n = (size_t)tc->n, D = (size_t)tc->dim;
    memcpy(tc->tokens + k * n * D, ws->x + ((size_t)i * ws->ntok + 1) * D,
           n * D * sizeof(float));
    as_attn_head_mean(ws->cls_attn + (size_t)i * ws->heads * n, ws->heads, (int)n, mean);
    if (as_foreground_mask(mean, tc->gh, tc->gw, mass, tc->fg + k * n))
        return as_error_set(err, AS_ERR_NOMEM, "out of memory (foreground mask)");
    return 0;
}

void as_train_crops_init(AsTrainCrops *tc)
{
    memset(tc, 0, sizeof *tc);
}

static void free_workspaces(AsTrainCrops *tc)
{
    as_vit_workspace_free(tc->ws);
    free(tc->ws);
    tc->ws = NULL;
}

void as_train_crops_free(AsTrainCrops *tc)
{
    free(tc->tokens);
    free(tc->fg);
    free(tc->lc);
    free_workspaces(tc);
    memset(tc, 0, sizeof *tc);
}

int as_train_crops_encode(AsTrainCrops *tc, const AsEncoder *enc, const float *crops,
                          int ncrops, int batch, int size, AsPairing pairing,
                          float mass_threshold, int threads, const AsHooks *hooks,
                          AsError *err)
{
    const int p = enc->cfg.patch;
    if (ncrops < 2 || batch <= 0 || size <= 0 || p <= 0 || size % p)
        return as_error_set(err, AS_ERR_ARG,
                            "crops: need a global and at least one local crop of a size that "
                            "is a multiple of the patch %d (got %d crops of %d)",
                            p, ncrops, size);
    const int g = size / p, n = g * g, D = enc->cfg.dim, nl = ncrops - 1;
    if (tc->batch != batch || tc->ncrops != ncrops || tc->size != size || tc->dim != D) {
        free(tc->tokens);
        free(tc->fg);
        free(tc->lc);
        tc->tokens = malloc((size_t)ncrops * batch * n * D * sizeof(float));
        tc->fg = malloc((size_t)ncrops * batch * n);
        tc->lc = malloc((size_t)batch * nl * n * D * sizeof(float));
        if (!tc->tokens || !tc->fg || !tc->lc) {
            as_train_crops_free(tc);
            return as_error_set(err, AS_ERR_NOMEM, "out of memory for the tokens of %d crops",
                                ncrops * batch);
        }
        tc->batch = batch;
        tc->ncrops = ncrops;
        tc->size = size;
        tc->gh = tc->gw = g;
        tc->n = n;
        tc->dim = D;
    }
    if (!tc->ws) {
        tc->ws = calloc(1, sizeof(AsVitWorkspace));
        if (!tc->ws)
            return as_error_set(err, AS_ERR_NOMEM, "out of memory");
        as_vit_workspace_init(tc->ws);
    }
    AsVitWorkspace *ws = tc->ws;
    double t0 = as_train_clock();
    const bool part = tc->world > 1 && tc->bounds && tc->share;
    const int lo = part ? tc->bounds[tc->rank] : 0, hi = part ? tc->bounds[tc->rank + 1] : batch;
    const int per = hi - lo, total = ncrops * per;
    const size_t S = (size_t)size;
    float *mean = malloc((size_t)n * sizeof(float));
    if (!mean)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    const int pool_before = as_threads();
    if (threads >= 1 && threads != pool_before)
        as_pool_set_threads(threads);
    int rc = 0;
    /* passes of up to ENCODE_CHUNK crops in the order crop-major (crop kind,
     * image): job j is crop kind j / per of image lo + j % per */
    for (int j0 = 0; j0 < total && !rc; j0 += ENCODE_CHUNK) {
        const int cnt = total - j0 < ENCODE_CHUNK ? total - j0 : ENCODE_CHUNK;
        if (as_hooks_cancelled(hooks)) {
            rc = as_error_set(err, AS_ERR_CANCELLED, "cancelled");
            break;
        }
        const float *in[ENCODE_CHUNK];
        size_t kk[ENCODE_CHUNK];
        for (int i = 0; i < cnt; i++) {
            const int j = j0 + i;
            kk[i] = (size_t)(j / per) * batch + lo + j % per;
            in[i] = crops + kk[i] * 3 * S * S;
        }
        /* sized for the first (largest) pass; later ones reuse it */
        rc = as_vit_forward_batch(enc, in, cnt, size, size, ws, NULL, err);
        for (int i = 0; i < cnt && !rc; i++)
            rc = keep_crop(tc, ws, i, kk[i], mass_threshold, mean, err);
    }
    free(mean);
    if (threads >= 1 && threads != pool_before)
        as_pool_set_threads(pool_before);
    tc->time_encoder += as_train_clock() - t0;
    if (rc)
        return rc;
    if (part) {
        rc = tc->share(tc->share_user, tc->tokens, tc->fg, ncrops, batch, n, D, tc->bounds, err);
        if (rc)
            return rc;
    }
    /* local tokens in the chosen pairing */
    const size_t nD = (size_t)n * D;
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < nl; i++) {
            int img, crop;
            as_pairing_source(pairing, batch, nl, b, i, &img, &crop);
            memcpy(tc->lc + ((size_t)b * nl + i) * nD,
                   tc->tokens + ((size_t)(1 + crop) * batch + img) * nD, nD * sizeof(float));
        }
    AsTrainBatch v = { batch, nl, n, n, tc->tokens, tc->lc, tc->fg, tc->fg + (size_t)batch * n };
    tc->batch_view = v;
    return 0;
}

