/* test_vit_batch: the batched encoder (as_vit_forward_batch) and the batched
 * training encode (as_train_crops_encode) give every image exactly, bit for
 * bit, the tokens and CLS attention of as_vit_forward on that image alone
 * with one thread: token counts that straddle the GEMM's row tiles, 1 and 2
 * threads, a batch larger than one pass, a short last pass, one rank's share
 * of a data-parallel batch; and cancellation. A random ViT-S/16 encoder. */
#include <stdint.h>

#include "check.h"
#include "cpu.h"
#include "crops.h"
#include "model.h"
#include "pool.h"
#include "vit.h"

static uint32_t rng_state = 4242u;

static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

/* tokens (n, D) and CLS attention (heads, n) of one image alone, one thread */
static int single(const AsModel *m, const float *in, int h, int w, float *tok, float *att)
{
    AsVitWorkspace ws;
    as_vit_workspace_init(&ws);
    AsError err = { 0 };
    const int saved = as_threads();
    as_pool_set_threads(1);
    int rc = as_vit_forward(&m->enc, in, h, w, &ws, NULL, &err);
    as_pool_set_threads(saved);
    CHECK(rc == 0, "as_vit_forward: %s", err.msg);
    if (!rc) {
        memcpy(tok, ws.tokens, (size_t)ws.n * ws.dim * sizeof *tok);
        memcpy(att, ws.cls_attn, (size_t)ws.heads * ws.n * sizeof *att);
    }
    as_vit_workspace_free(&ws);
    return rc;
}

static void batch_forward(const AsModel *m, int count, int h, int w, int threads)
{
    const int p = m->enc.cfg.patch, D = m->enc.cfg.dim, H = m->enc.cfg.heads;
    const int n = (h / p) * (w / p);
    const size_t img = (size_t)3 * h * w;
    float *in = malloc((size_t)count * img * sizeof *in);
    float *tok = malloc((size_t)count * n * D * sizeof *tok);
    float *att = malloc((size_t)count * H * n * sizeof *att);
    const float **ptr = malloc((size_t)count * sizeof *ptr);
    for (size_t i = 0; i < (size_t)count * img; i++)
        in[i] = 2.0f * rnd();
    int rc = 0;
    for (int i = 0; i < count && !rc; i++) {
        rc = single(m, in + (size_t)i * img, h, w, tok + (size_t)i * n * D,
                    att + (size_t)i * H * n);
        ptr[count - 1 - i] = in + (size_t)i * img; /* the batch in reverse order */
    }
    AsVitWorkspace ws;
    as_vit_workspace_init(&ws);
    AsError err = { 0 };
    as_pool_set_threads(threads);
    if (!rc)
        rc = as_vit_forward_batch(&m->enc, ptr, count, h, w, &ws, NULL, &err);
    CHECK(rc == 0, "as_vit_forward_batch: %s", err.msg);
    for (int b = 0; b < count && !rc; b++) {
        const int i = count - 1 - b;
        const float *bt = ws.x + ((size_t)b * ws.ntok + 1) * D;
        CHECK(!memcmp(bt, tok + (size_t)i * n * D, (size_t)n * D * sizeof(float)),
              "%d images of %dx%d, %d threads: tokens of image %d differ from its own pass",
              count, w, h, threads, b);
        CHECK(!memcmp(ws.cls_attn + (size_t)b * H * n, att + (size_t)i * H * n,
                      (size_t)H * n * sizeof(float)),
              "%d images of %dx%d, %d threads: CLS attention of image %d differs", count, w, h,
              threads, b);
    }
    /* a shorter pass on the same workspace (the training's last pass) */
    if (!rc && count > 2) {
        rc = as_vit_forward_batch(&m->enc, ptr + 1, 2, h, w, &ws, NULL, &err);
        CHECK(rc == 0 && ws.count == 2 && ws.cap == count, "short pass: %s (count %d cap %d)",
              err.msg, ws.count, ws.cap);
        const int i = count - 2; /* ptr[1] */
        CHECK(!rc && !memcmp(ws.x + D, tok + (size_t)i * n * D, (size_t)n * D * sizeof(float)),
              "short pass: tokens differ");
    }
    as_vit_workspace_free(&ws);
    free(in);
    free(tok);
    free(att);
    free(ptr);
}

static int share_calls;
static int share_noop(void *user, float *tokens, uint8_t *fg, int ncrops, int batch, int n,
                      int dim, const int *bounds, AsError *err)
{
    (void)user, (void)tokens, (void)fg, (void)ncrops, (void)batch, (void)n, (void)dim;
    (void)bounds, (void)err;
    share_calls++;
    return 0;
}

/* as_train_crops_encode: nc crop kinds x B images of S pixels */
static void crops_encode(const AsModel *m, int nc, int B, int S, int threads)
{
    const int p = m->enc.cfg.patch, D = m->enc.cfg.dim;
    const int n = (S / p) * (S / p);
    const size_t img = (size_t)3 * S * S, total = (size_t)nc * B;
    float *crops = malloc(total * img * sizeof *crops);
    float *tok = malloc(total * n * D * sizeof *tok);
    float *att = malloc(total * m->enc.cfg.heads * n * sizeof *att);
    for (size_t i = 0; i < total * img; i++)
        crops[i] = 2.0f * rnd();
    int rc = 0;
    for (size_t k = 0; k < total && !rc; k++)
        rc = single(m, crops + k * img, S, S, tok + k * n * D, att);
    AsTrainCrops tc;
    as_train_crops_init(&tc);
    AsError err = { 0 };
    as_pool_set_threads(1);
    if (!rc)
        rc = as_train_crops_encode(&tc, &m->enc, crops, nc, B, S, AS_PAIRING_REFERENCE, 0.6f,
                                   threads, NULL, &err);
    CHECK(rc == 0, "as_train_crops_encode: %s", err.msg);
    CHECK(as_threads() == 1, "the pool's thread count is restored (%d)", as_threads());
    int bad = 0;
    for (size_t k = 0; k < total && !rc; k++)
        bad += memcmp(tc.tokens + k * n * D, tok + k * n * D, (size_t)n * D * sizeof(float)) != 0;
    CHECK(!rc && bad == 0, "%d x %d crops of %d, %d threads: %d crops differ from their own pass",
          nc, B, S, threads, bad);
    /* rank 1 of 2: its images only, then the share callback */
    int bounds[3] = { 0, B / 2, B };
    memset(tc.tokens, 0, total * n * D * sizeof(float));
    tc.rank = 1;
    tc.world = 2;
    tc.bounds = bounds;
    tc.share = share_noop;
    share_calls = 0;
    if (!rc)
        rc = as_train_crops_encode(&tc, &m->enc, crops, nc, B, S, AS_PAIRING_REFERENCE, 0.6f,
                                   threads, NULL, &err);
    CHECK(rc == 0 && share_calls == 1, "rank 1 of 2: %s, %d share calls", err.msg, share_calls);
    bad = 0;
    int untouched = 0;
    for (int c = 0; c < nc && !rc; c++)
        for (int b = 0; b < B; b++) {
            const size_t k = (size_t)c * B + b;
            const float *t = tc.tokens + k * n * D;
            if (b >= B / 2)
                bad += memcmp(t, tok + k * n * D, (size_t)n * D * sizeof(float)) != 0;
            else
                untouched += t[0] == 0.0f && t[(size_t)n * D - 1] == 0.0f;
        }
    CHECK(!rc && bad == 0 && untouched == nc * (B / 2),
          "rank 1 of 2: %d of its crops differ, %d of %d others left alone", bad, untouched,
          nc * (B / 2));
    /* cancellation before the first pass */
    tc.world = 0;
    static const volatile int stop = 1;
    AsHooks hooks = { &stop, NULL, NULL };
    rc = as_train_crops_encode(&tc, &m->enc, crops, nc, B, S, AS_PAIRING_REFERENCE, 0.6f,
                               threads, &hooks, &err);
    CHECK(rc == AS_ERR_CANCELLED, "cancel: rc %d", rc);
    as_train_crops_free(&tc);
    free(crops);
    free(tok);
    free(att);
}

int main(void)
{
    printf("cpu path: %s\n", as_cpu_path_name(as_cpu_path()));
    AsModel *m = NULL;
    AsError err = { 0 };
    int rc = as_model_random(AS_ARCH_VIT_SMALL, 16, 5, 1, 11, &m, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc)
        return 1;
    /* 25 and 13 tokens: images start inside the GEMM's row tiles */
    batch_forward(m, 3, 64, 96, 1);
    batch_forward(m, 3, 64, 96, 2);
    batch_forward(m, 5, 48, 64, 2);
    batch_forward(m, 1, 32, 32, 2);
    /* 3 crop kinds x 7 images = 21 crops: a pass of 16 and one of 5 */
    crops_encode(m, 3, 7, 48, 2);
    crops_encode(m, 2, 3, 32, 1);
    as_model_free(m);
    printf("%d checks passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ != 0;
}
