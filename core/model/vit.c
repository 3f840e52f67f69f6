/* vit: see vit.h */
#include "vit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activations.h"
#include "attention.h"
#include "linear.h"
#include "resample.h"

#define VIT_MAX_FLOATS ((size_t)1 << 32) /* 16 GiB of scratch in one buffer: refuse */

void as_vit_workspace_init(AsVitWorkspace *ws)
{
    memset(ws, 0, sizeof *ws);
}

void as_vit_workspace_free(AsVitWorkspace *ws)
{
    if (!ws)
        return;
    free(ws->x);
    free(ws->cls_attn);
    free(ws->pos);
    free(ws->patches);
    free(ws->xn);
    free(ws->qkv);
    free(ws->attn_out);
    free(ws->hidden);
    free(ws->probs);
    free(ws->cls_row);
    memset(ws, 0, sizeof *ws);
}

/* a*b floats, or 0 when that exceeds the limit. */
static size_t mulf(size_t a, size_t b)
{
    if (a == 0 || b == 0)
        return 0;
    if (a > VIT_MAX_FLOATS / b)
        return 0;
    return a * b;
}

static float *alloc_floats(size_t n)
{
    return n ? malloc(n * sizeof(float)) : NULL;
}

/* Attention scratch: the (ntok, ntok) block of as_mha_lowmem, or the packed
 * keys/values of as_mha_packed_batch with one score block for each of up to
 * ATTN_THREADS threads (more threads fall back to as_mha_lowmem), whichever
 * is larger; 0 when too large. */
#define ATTN_THREADS 16
static size_t probs_floats(size_t ntok, size_t count, const AsEncoderConfig *c)
{
    size_t s = mulf(ntok, ntok);
    if (s && ntok <= INT32_MAX / 4 && count <= INT32_MAX / 4) {
        const size_t pk = as_mha_packed_batch_scratch((int)count, (int)ntok, (int)ntok, c->dim,
                                                      c->heads, ATTN_THREADS);
        if (pk > s)
            s = pk < VIT_MAX_FLOATS ? pk : 0;
    }
    return s;
}

int as_vit_workspace_prepare_batch(AsVitWorkspace *ws, const AsEncoder *enc, int h, int w,
                                   int count, AsError *err)
{
    const AsEncoderConfig *c = &enc->cfg;
    const int p = c->patch;
    if (h <= 0 || w <= 0 || h % p || w % p)
        return as_error_set(err, AS_ERR_ARG,
                            "input %dx%d: width and height must be positive multiples of the "
                            "patch size %d", w, h, p);
    if (count <= 0)
        return as_error_set(err, AS_ERR_ARG, "encoder batch of %d images", count);
    if (ws->x && ws->cap >= count && ws->h == h && ws->w == w && ws->dim == c->dim &&
        ws->heads == c->heads && ws->mlp_hidden == c->mlp_hidden && ws->patch == p) {
        ws->count = count;
        return 0;
    }
    as_vit_workspace_free(ws);
    const int gh = h / p, gw = w / p;
    const size_t n = (size_t)gh * gw, ntok = n + 1, d = (size_t)c->dim, b = (size_t)count;
    const size_t rows = mulf(b, ntok);
    const size_t s_pos = mulf(ntok, d), s_x = mulf(rows, d),
                 s_pp = mulf(mulf(b, n), 3 * (size_t)p * p), s_qkv = mulf(rows, 3 * d),
                 s_hid = mulf(rows, (size_t)c->mlp_hidden),
                 s_cls = mulf(b, mulf((size_t)c->heads, ntok));
    const size_t s_probs = probs_floats(ntok, b, c);
    if (!s_pos || !s_x || !s_pp || !s_qkv || !s_hid || !s_probs || !s_cls || rows > INT32_MAX)
        return as_error_set(err, AS_ERR_NOMEM, "input %dx%d is too large for the encoder", w, h);
    ws->x = alloc_floats(s_x);
    ws->pos = alloc_floats(s_pos);
    ws->xn = alloc_floats(s_x);
    ws->attn_out = alloc_floats(s_x);
    ws->patches = alloc_floats(s_pp);
    ws->qkv = alloc_floats(s_qkv);
    ws->hidden = alloc_floats(s_hid);
    ws->probs = alloc_floats(s_probs);
    ws->cls_row = alloc_floats(s_cls);
    ws->cls_attn = alloc_floats(mulf(b, mulf((size_t)c->heads, n)));
    if (!ws->x || !ws->pos || !ws->xn || !ws->attn_out || !ws->patches || !ws->qkv ||
        !ws->hidden || !ws->probs || !ws->cls_row || !ws->cls_attn) {
        as_vit_workspace_free(ws);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for a %dx%d encoder workspace%s",
                            w, h, count > 1 ? " batch" : "");
    }
    ws->cap = ws->count = count;
    ws->h = h;
    ws->w = w;
    ws->gh = gh;
    ws->gw = gw;
    ws->n = (int)n;
    ws->ntok = (int)ntok;
    ws->dim = c->dim;
    ws->heads = c->heads;
    ws->mlp_hidden = c->mlp_hidden;
    ws->patch = p;
    ws->probs_floats = s_probs;
    ws->tokens = ws->x + d;
    ws->cls = ws->x;
    return 0;
}

int as_vit_workspace_prepare(AsVitWorkspace *ws, const AsEncoder *enc, int h, int w,
                             AsError *err)
{
    return as_vit_workspace_prepare_batch(ws, enc, h, w, 1, err);
}

void as_vit_pos_embed(const AsEncoder *enc, int gh, int gw, float *out)
{
    const AsEncoderConfig *c = &enc->cfg;
    const size_t d = (size_t)c->dim;
    memcpy(out, enc->pos_embed, d * sizeof *out);
    if (gh == c->pos_gh && gw == c->pos_gw) {
        memcpy(out + d, enc->pos_embed + d, (size_t)gh * gw * d * sizeof *out);
        return;
    }
    /* DINO: scale_factor = ((gh + 0.1) / g, (gw + 0.1) / g); PyTorch samples the
     * source at (dst + 0.5) / scale_factor - 0.5. */
    const double sf_h = ((double)gh + 0.1) / c->pos_gh;
    const double sf_w = ((double)gw + 0.1) / c->pos_gw;
    as_bicubic_resize_hwc(enc->pos_embed + d, c->pos_gh, c->pos_gw, c->dim, gh, gw, 1.0 / sf_h,
                          1.0 / sf_w, out + d);
}

/* (3, h, w) image -> (n, 3*p*p) rows of channel-major flattened patches. */
static void im2patches(const float *in, int h, int w, int p, float *out)
{
    const int gh = h / p, gw = w / p;
    const size_t row = 3 * (size_t)p * p;
    for (int py = 0; py < gh; py++)
        for (int px = 0; px < gw; px++) {
            float *o = out + ((size_t)py * gw + px) * row;
            for (int ch = 0; ch < 3; ch++)
                for (int ky = 0; ky < p; ky++) {
                    const float *src = in + ((size_t)ch * h + (size_t)py * p + ky) * w +
                                       (size_t)px * p;
                    memcpy(o, src, (size_t)p * sizeof *o);
                    o += p;
                }
        }
}

const char *as_vit_stage_name(AsVitStage s)
{
    static const char *const names[AS_VIT_STAGE_COUNT] = {
        [AS_VIT_PATCH] = "patch embed+pos", [AS_VIT_QKV] = "norm1+qkv",
        [AS_VIT_ATTENTION] = "attention",   [AS_VIT_PROJ] = "proj+residual",
        [AS_VIT_FC1] = "norm2+fc1+gelu",    [AS_VIT_FC2] = "fc2+residual",
        [AS_VIT_NORM] = "final layernorm",
    };
    return (unsigned)s < AS_VIT_STAGE_COUNT ? names[s] : "?";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* With timing: add the seconds since *t to stage s, restart *t. */
static void lap(AsVitTiming *timing, AsVitStage s, double *t)
{
    if (!timing)
        return;
    const double now = now_s();
    timing->seconds[s] += now - *t;
    *t = now;
}

/* One block on the ws->count images stacked in ws->x. */
static void block_forward(const AsEncoderBlock *b, const AsEncoderConfig *c, AsVitWorkspace *ws,
                          float *cls_row, AsVitTiming *timing)
{
    const int nt = ws->ntok * ws->count, d = c->dim;
    double t = timing ? now_s() : 0.0;
    as_linear_norm(ws->x, nt, &b->norm1, &b->qkv, false, ws->xn, ws->qkv);
    lap(timing, AS_VIT_QKV, &t);
    as_mha_packed_batch(ws->count, ws->qkv, 3 * d, ws->qkv + d, 3 * d, ws->qkv + 2 * d, 3 * d,
                        ws->ntok, ws->ntok, d, c->heads, ws->probs, ws->probs_floats, cls_row,
                        ws->attn_out);
    lap(timing, AS_VIT_ATTENTION, &t);
    as_linear_accumulate(ws->attn_out, nt, &b->proj, ws->x); /* x += proj(attn) */
    lap(timing, AS_VIT_PROJ, &t);
    /* x += fc2(GELU(fc1(norm2(x)))), both products block by block in one
     * pass (hidden rows read back from cache; 1-2% of the encoder at 480).
     * The timed run (bench --breakdown) keeps them apart to time each; the
     * numbers are the same. */
    if (!timing) {
        as_linear_mlp(ws->x, nt, &b->norm2, &b->fc1, &b->fc2, ws->xn, ws->hidden, ws->x);
        return;
    }
    as_linear_norm(ws->x, nt, &b->norm2, &b->fc1, true, ws->xn, ws->hidden);
    lap(timing, AS_VIT_FC1, &t);
    as_linear_accumulate(ws->hidden, nt, &b->fc2, ws->x); /* x += fc2(GELU(fc1(xn))) */
    lap(timing, AS_VIT_FC2, &t);
}

static int forward(const AsEncoder *enc, const float *const *inputs, int count, int h, int w,
                   AsVitWorkspace *ws, const AsHooks *hooks, AsVitTiming *timing, AsError *err)
{
    const AsEncoderConfig *c = &enc->cfg;
    if (timing)
        memset(timing, 0, sizeof *timing);
    int rc = as_vit_workspace_prepare_batch(ws, enc, h, w, count, err);
    if (rc)
        return rc;
    const int d = c->dim, n = ws->n, ntok = ws->ntok;
    const size_t pp = 3 * (size_t)c->patch * c->patch, td = (size_t)ntok * d;
    double t = timing ? now_s() : 0.0;
    as_vit_pos_embed(enc, ws->gh, ws->gw, ws->pos);
    for (int i = 0; i < count; i++)
        im2patches(inputs[i], h, w, c->patch, ws->patches + (size_t)i * n * pp);
    if (count == 1) {
        as_linear(ws->patches, n, &enc->patch, ws->x + d);
    } else { /* one product for all patches, then each image's rows after its CLS row */
        as_linear(ws->patches, count * n, &enc->patch, ws->attn_out);
        for (int i = count - 1; i >= 0; i--)
            memcpy(ws->x + i * td + d, ws->attn_out + (size_t)i * n * d,
                   (size_t)n * d * sizeof *ws->x);
    }
    for (int i = 0; i < count; i++) {
        memcpy(ws->x + i * td, enc->cls_token, (size_t)d * sizeof *ws->x);
        as_add_inplace(ws->x + i * td, ws->pos, (long)td);
    }
    lap(timing, AS_VIT_PATCH, &t);
    for (int i = 0; i < c->depth; i++) {
        if (as_hooks_cancelled(hooks))
            return as_error_set(err, AS_ERR_CANCELLED, "cancelled in encoder block %d", i);
        const bool last = i == c->depth - 1;
        block_forward(&enc->blocks[i], c, ws, last ? ws->cls_row : NULL, timing);
        as_hooks_progress(hooks, "encoder", i + 1, c->depth);
    }
    for (int i = 0; i < count; i++)
        for (int hd = 0; hd < c->heads; hd++)
            memcpy(ws->cls_attn + ((size_t)i * c->heads + hd) * n,
                   ws->cls_row + ((size_t)i * c->heads + hd) * ntok + 1,
                   (size_t)n * sizeof *ws->cls_attn);
    if (timing)
        t = now_s();
    as_layernorm(ws->x, ntok * count, &enc->norm, ws->x);
    lap(timing, AS_VIT_NORM, &t);
    return 0;
}

int as_vit_forward_timed(const AsEncoder *enc, const float *input, int h, int w,
                         AsVitWorkspace *ws, const AsHooks *hooks, AsVitTiming *timing,
                         AsError *err)
{
    return forward(enc, &input, 1, h, w, ws, hooks, timing, err);
}

int as_vit_forward(const AsEncoder *enc, const float *input, int h, int w, AsVitWorkspace *ws,
                   const AsHooks *hooks, AsError *err)
{
    return forward(enc, &input, 1, h, w, ws, hooks, NULL, err);
}

int as_vit_forward_batch(const AsEncoder *enc, const float *const *inputs, int count, int h,
                         int w, AsVitWorkspace *ws, const AsHooks *hooks, AsError *err)
{
    return forward(enc, inputs, count, h, w, ws, hooks, NULL, err);
}
