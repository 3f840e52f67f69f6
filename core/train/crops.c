/* crops: see crops.h */
#include "crops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

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

typedef struct {
    const AsEncoder *enc;
    const float *crops;
    AsTrainCrops *tc;
    AsVitWorkspace *ws;
    float mass;
    int first, step, total; /* crops first, first+step, ... < total */
    const AsHooks *hooks;
    int rc;
    AsError err;
} EncodeJob;

static void *encode_worker(void *arg)
{
    EncodeJob *j = arg;
    AsTrainCrops *tc = j->tc;
    const size_t S = (size_t)tc->size, n = (size_t)tc->n, D = (size_t)tc->dim;
    float *mean = malloc(n * sizeof(float));
    if (!mean) {
        j->rc = as_error_set(&j->err, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int k = j->first; k < j->total; k += j->step) {
        if (as_hooks_cancelled(j->hooks)) {
            j->rc = as_error_set(&j->err, AS_ERR_CANCELLED, "cancelled");
            break;
        }
        j->rc = as_vit_forward(j->enc, j->crops + (size_t)k * 3 * S * S, (int)S, (int)S, j->ws,
                               NULL, &j->err);
        if (j->rc)
            break;
        memcpy(tc->tokens + (size_t)k * n * D, j->ws->tokens, n * D * sizeof(float));
        as_attn_head_mean(j->ws->cls_attn, j->ws->heads, (int)n, mean);
        if (as_foreground_mask(mean, tc->gh, tc->gw, j->mass, tc->fg + (size_t)k * n)) {
            j->rc = as_error_set(&j->err, AS_ERR_NOMEM, "out of memory (foreground mask)");
            break;
        }
    }
    free(mean);
    return NULL;
}

void as_train_crops_init(AsTrainCrops *tc)
{
    memset(tc, 0, sizeof *tc);
}

#define MAX_ENCODE_THREADS 16

static void free_workspaces(AsTrainCrops *tc)
{
    AsVitWorkspace *ws = tc->ws;
    for (int i = 0; ws && i < MAX_ENCODE_THREADS; i++)
        as_vit_workspace_free(&ws[i]);
    free(ws);
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
    if (threads < 1)
        threads = 1;
    if (threads > MAX_ENCODE_THREADS)
        threads = MAX_ENCODE_THREADS;
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
        tc->ws = calloc(MAX_ENCODE_THREADS, sizeof(AsVitWorkspace));
        if (!tc->ws)
            return as_error_set(err, AS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < MAX_ENCODE_THREADS; i++)
            as_vit_workspace_init(&((AsVitWorkspace *)tc->ws)[i]);
    }
    double t0 = as_train_clock();
    const int total = ncrops * batch;
    if (threads > total)
        threads = total;
    EncodeJob jobs[MAX_ENCODE_THREADS];
    pthread_t tid[MAX_ENCODE_THREADS];
    int started = 0;
    for (int i = 0; i < threads; i++) {
        EncodeJob *j = &jobs[i];
        memset(j, 0, sizeof *j);
        j->enc = enc;
        j->crops = crops;
        j->tc = tc;
        j->ws = &((AsVitWorkspace *)tc->ws)[i];
        j->mass = mass_threshold;
        j->first = i;
        j->step = threads;
        j->total = total;
        j->hooks = hooks;
        int rc = as_vit_workspace_prepare(j->ws, enc, size, size, err);
        if (rc)
            return rc;
    }
    for (int i = 1; i < threads; i++)
        if (pthread_create(&tid[i], NULL, encode_worker, &jobs[i]) == 0)
            started = i;
        else
            break;
    if (started < threads - 1) { /* could not start them all: run serially */
        for (int i = 1; i <= started; i++)
            pthread_join(tid[i], NULL);
        jobs[0].step = 1;
        jobs[0].first = 0;
        started = 0;
        threads = 1;
    }
    encode_worker(&jobs[0]);
    for (int i = 1; i <= started; i++)
        pthread_join(tid[i], NULL);
    tc->time_encoder += as_train_clock() - t0;
    for (int i = 0; i < threads; i++)
        if (jobs[i].rc) {
            if (err)
                *err = jobs[i].err;
            return jobs[i].rc;
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

