/* test_merge: prototype merging (average linkage, thresholds, tie-breaking,
 * group numbering), relabelling (sums of probabilities, foreground), label
 * renumbering and colourising; parity of unmerged relabelling with the
 * reference labels; prints (does not assert) the timing of
 * merge + relabel + colourise at 480x480. */
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "image.h"
#include "merge.h"
#include "npy.h"
#include "segment.h"

static void groups_eq(const int32_t *g, const int32_t *want, int q, const char *what)
{
    int ok = 1;
    for (int i = 0; i < q; i++)
        ok &= g[i] == want[i];
    CHECK(ok, "%s: groups %d %d %d %d, want %d %d %d %d", what, g[0], g[1], g[2], q > 3 ? g[3] : -1,
          want[0], want[1], want[2], q > 3 ? want[3] : -1);
}

static void test_merge_groups(void)
{
    /* a=(1,0,0) b=(.8,.6,0) c=(0,1,0) d=(0,0,1): cos(a,b)=.8, cos(b,c)=.6,
     * cos(a,c)=0, d orthogonal. After merging a,b: average link to c = .3
     * (single linkage would say .6, complete 0). Stored in the order d,c,a,b
     * (scaled, so only directions matter). */
    const float p[4 * 3] = { 0, 0, 2,   0, 3, 0,   5, 0, 0,   4, 3, 0 };
    int32_t g[4];
    int ng = 0;
    AsMergeOptions o;
    AsError err;

    as_merge_options_default(&o);
    CHECK(as_merge_groups(p, 4, 3, &o, g, &ng, &err) == 0, "off");
    groups_eq(g, (const int32_t[]){ 0, 1, 2, 3 }, 4, "off");
    CHECK(ng == 4, "off: %d groups", ng);

    o.threshold = 0.5f; /* merges a,b (.8); {a,b}-c is .3 < .5 */
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    groups_eq(g, (const int32_t[]){ 0, 1, 2, 2 }, 4, "T=0.5");
    CHECK(ng == 3, "T=0.5: %d groups", ng);

    o.threshold = 0.25f; /* average linkage .3 >= .25: c joins */
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    groups_eq(g, (const int32_t[]){ 0, 1, 1, 1 }, 4, "T=0.25");
    CHECK(ng == 2, "T=0.25: %d groups", ng);

    o.threshold = 0.3f; /* "reaches": .3 >= .3 (in double: .3 from .6/2) */
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    CHECK(ng == 2 || ng == 3, "T=0.3: %d groups", ng);

    o.threshold = 0.9f;
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    CHECK(ng == 4, "T=0.9: %d groups", ng);

    o.threshold = 2.0f;
    o.merge_to = 3;
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    groups_eq(g, (const int32_t[]){ 0, 1, 2, 2 }, 4, "K=3");
    o.merge_to = 2;
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    groups_eq(g, (const int32_t[]){ 0, 1, 1, 1 }, 4, "K=2");
    o.merge_to = 1;
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    groups_eq(g, (const int32_t[]){ 0, 0, 0, 0 }, 4, "K=1");
    CHECK(ng == 1, "K=1: %d groups", ng);
    o.merge_to = 9; /* more than Q: nothing to do */
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    CHECK(ng == 4, "K=9: %d groups", ng);

    /* both: the coarser cut wins */
    o.merge_to = 3;
    o.threshold = 0.25f;
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    groups_eq(g, (const int32_t[]){ 0, 1, 1, 1 }, 4, "K=3,T=.25");
    o.merge_to = 2;
    o.threshold = 0.9f;
    as_merge_groups(p, 4, 3, &o, g, &ng, &err);
    groups_eq(g, (const int32_t[]){ 0, 1, 1, 1 }, 4, "K=2,T=.9");

    /* exact tie: (e0, e0+e1) and (e2, e2+e3) have bit-identical cosines; the
     * pair with the smaller first index is merged first */
    const float t[4 * 4] = { 1, 0, 0, 0,  1, 1, 0, 0,  0, 0, 1, 0,  0, 0, 1, 1 };
    as_merge_options_default(&o);
    o.merge_to = 3;
    as_merge_groups(t, 4, 4, &o, g, &ng, &err);
    groups_eq(g, (const int32_t[]){ 0, 0, 1, 2 }, 4, "tie K=3");
    /* and in the reversed storage order the tie goes to the pair at 0,1 again */
    const float t2[4 * 4] = { 0, 0, 1, 1,  0, 0, 1, 0,  1, 1, 0, 0,  1, 0, 0, 0 };
    as_merge_groups(t2, 4, 4, &o, g, &ng, &err);
    groups_eq(g, (const int32_t[]){ 0, 0, 1, 2 }, 4, "tie reversed K=3");

    /* zero vector: similarity 0 to everything, no NaN */
    const float z[3 * 2] = { 0, 0, 1, 0, 1, 0.001f };
    as_merge_options_default(&o);
    o.threshold = 0.5f;
    CHECK(as_merge_groups(z, 3, 2, &o, g, &ng, &err) == 0, "zero vector");
    groups_eq(g, (const int32_t[]){ 0, 1, 1 }, 3, "zero vector");

    /* errors */
    const float bad[2] = { NAN, 1 };
    CHECK(as_merge_groups(bad, 1, 2, &o, g, &ng, &err) == AS_ERR_ARG, "NaN prototype");
    CHECK(strstr(err.msg, "prototype 0") != NULL, "message names the prototype: %s", err.msg);
    CHECK(as_merge_groups(p, 0, 3, &o, g, &ng, &err) == AS_ERR_ARG, "q=0");
}

static void test_relabel(void)
{
    AsError err;
    /* 2x2 grid, q=3, groups {0,1} -> 0, {2} -> 1 */
    const float a[4 * 3] = {
        0.30f, 0.30f, 0.40f, /* unmerged 2, merged 0 (0.6) */
        0.10f, 0.20f, 0.70f, /* 2 -> 1 */
        0.50f, 0.10f, 0.40f, /* 0 -> 0 */
        0.20f, 0.45f, 0.35f, /* 1 -> 0 */
    };
    const int32_t grp[3] = { 0, 0, 1 };
    int32_t lp[4], lf[8 * 8], want[8 * 8];
    CHECK(as_relabel(a, 2, 2, 3, grp, 2, NULL, 8, 8, lp, lf, &err) == 0, "relabel: %s", err.msg);
    CHECK(lp[0] == 0 && lp[1] == 1 && lp[2] == 0 && lp[3] == 0, "patch labels %d %d %d %d",
          lp[0], lp[1], lp[2], lp[3]);
    float s[4 * 2];
    for (int i = 0; i < 4; i++) {
        s[2 * i] = a[3 * i] + a[3 * i + 1];
        s[2 * i + 1] = a[3 * i + 2];
    }
    as_upsample_argmax(s, 2, 2, 2, 8, 8, want);
    CHECK(!memcmp(lf, want, sizeof want), "full labels = upsampled sums");
    /* identity grouping (NULL) equals the unmerged argmax */
    CHECK(as_relabel(a, 2, 2, 3, NULL, 3, NULL, 8, 8, lp, lf, &err) == 0, "identity");
    CHECK(lp[0] == 2 && lp[1] == 2 && lp[2] == 0 && lp[3] == 1, "identity patch labels");
    as_upsample_argmax(a, 2, 2, 3, 8, 8, want);
    CHECK(!memcmp(lf, want, sizeof want), "identity full labels");

    /* foreground: only patch 0 (top-left) is foreground. 2 -> 8: source
     * x = (dst+0.5)/4 - 0.5; mask value on row 0 = weight of column 0:
     * 1, 1, .875, .625, .375, .125, 0, 0  -> fg for x <= 3. Row 3 has row
     * weight .625: x=0 -> .625 fg, x=2 -> .547 fg, x=3 -> .39 bg. */
    const uint8_t fg[4] = { 1, 0, 0, 0 };
    CHECK(as_relabel(a, 2, 2, 3, grp, 2, fg, 8, 8, lp, lf, &err) == 0, "fg");
    CHECK(lp[0] == 0 && lp[1] == AS_LABEL_BACKGROUND && lp[2] == AS_LABEL_BACKGROUND &&
          lp[3] == AS_LABEL_BACKGROUND, "fg patch labels");
    CHECK(lf[0] == 0 && lf[3] != AS_LABEL_BACKGROUND && lf[4] == AS_LABEL_BACKGROUND, "fg row 0: %d %d %d", lf[0],
          lf[3], lf[4]);
    CHECK(lf[3 * 8 + 0] != AS_LABEL_BACKGROUND && lf[3 * 8 + 2] != AS_LABEL_BACKGROUND &&
          lf[3 * 8 + 3] == AS_LABEL_BACKGROUND, "fg row 3");
    CHECK(lf[7 * 8 + 7] == AS_LABEL_BACKGROUND, "fg far corner");

    /* bad groups */
    const int32_t badg[3] = { 0, 5, 1 };
    CHECK(as_relabel(a, 2, 2, 3, badg, 2, NULL, 8, 8, lp, lf, &err) == AS_ERR_ARG, "bad group");

    /* parity: unmerged relabelling reproduces the reference labels exactly */
    AsNpy as, lfull, lpatch;
    if (as_npy_read(test_path("reference/infer_tiny/assign.npy"), &as, &err) == 0 &&
        as_npy_read(test_path("reference/infer_tiny/labels_full.npy"), &lfull, &err) == 0 &&
        as_npy_read(test_path("reference/infer_tiny/labels_patch.npy"), &lpatch, &err) == 0) {
        as_npy_to_f32(&as, &err);
        int n = (int)as.shape[0], q = (int)as.shape[1];
        int gh = (int)lpatch.shape[0], gw = (int)lpatch.shape[1];
        int H = (int)lfull.shape[0], W = (int)lfull.shape[1];
        int32_t *p2 = malloc(sizeof(int32_t) * n), *f2 = malloc(sizeof(int32_t) * H * W);
        CHECK(as_relabel(as.data, gh, gw, q, NULL, q, NULL, H, W, p2, f2, &err) == 0, "parity");
        int bad = 0;
        for (int i = 0; i < n; i++)
            bad += p2[i] != ((int32_t *)lpatch.data)[i];
        for (int i = 0; i < H * W; i++)
            bad += f2[i] != ((int32_t *)lfull.data)[i];
        CHECK(bad == 0, "reference labels differ at %d places", bad);
        free(p2);
        free(f2);
        as_npy_free(&as);
        as_npy_free(&lfull);
        as_npy_free(&lpatch);
    } else {
        CHECK(0, "reference data: %s", err.msg);
    }
}

static void test_compact(void)
{
    int32_t l[6] = { 3, 3, 7, AS_LABEL_BACKGROUND, 1, 7 };
    int32_t map[8];
    int u = as_labels_compact(l, 6, 8, map);
    CHECK(u == 3, "compact: %d labels", u);
    CHECK(l[0] == 1 && l[1] == 1 && l[2] == 2 && l[3] == AS_LABEL_BACKGROUND && l[4] == 0 &&
          l[5] == 2, "compact values");
    CHECK(map[0] == -1 && map[1] == 0 && map[3] == 1 && map[7] == 2 && map[2] == -1, "compact map");
}

static void test_colourise(void)
{
    uint8_t pal[768];
    as_voc_palette(pal);
    /* VOC palette: entry 0 black, 1 (128,0,0), 2 (0,128,0) */
    CHECK(pal[3] == 128 && pal[4] == 0 && pal[6] == 0 && pal[7] == 128, "VOC palette");
    const int32_t l[3] = { 0, 1, AS_LABEL_BACKGROUND };
    const uint8_t photo[9] = { 100, 100, 100, 0, 255, 10, 7, 8, 9 };
    uint8_t out[12];
    as_colourise(l, 3, 1, photo, 0.5f, 4, out);
    CHECK(abs(out[0] - 114) <= 1 && abs(out[1] - 50) <= 1 && abs(out[2] - 50) <= 1 && out[3] == 255,
          "blend label 0: %d %d %d %d", out[0], out[1], out[2], out[3]);
    CHECK(abs(out[4] - 0) <= 1 && abs(out[5] - 192) <= 1 && abs(out[6] - 5) <= 1,
          "blend label 1: %d %d %d", out[4], out[5], out[6]);
    CHECK(out[8] == 7 && out[9] == 8 && out[10] == 9 && out[11] == 255, "background = photo");
    as_colourise(l, 3, 1, photo, 1.0f, 3, out);
    CHECK(out[0] == 128 && out[1] == 0 && out[2] == 0, "opacity 1 = palette colour");
    as_colourise(l, 3, 1, photo, 0.0f, 3, out);
    CHECK(out[0] == 100 && out[4] == 255 && out[5] == 10, "opacity 0 = photo");
    as_colourise(l, 3, 1, NULL, 0.5f, 4, out);
    CHECK(out[0] == 128 && out[1] == 0 && abs(out[3] - 128) <= 1 && out[11] == 0,
          "no photo: colour + alpha");
    uint8_t rgb[3];
    as_label_colour(1, rgb);
    CHECK(rgb[0] == 0 && rgb[1] == 128 && rgb[2] == 0, "label colour");
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Timing only (printed, not asserted): a 30x30 grid (480 / patch 16). */
static void time_pipeline(int q)
{
    const int gh = 30, gw = 30, n = gh * gw, dim = 384, W = 480, H = 480;
    float *a = malloc(sizeof(float) * n * q), *pr = malloc(sizeof(float) * q * dim);
    int32_t *lab = malloc(sizeof(int32_t) * W * H), grp[64];
    uint8_t *photo = malloc(W * H * 3), *out = malloc(W * H * 4);
    uint32_t s = 12345;
    for (int i = 0; i < q * dim; i++) {
        s = s * 1664525u + 1013904223u;
        pr[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    for (int i = 0; i < n; i++) {
        float sum = 0;
        for (int k = 0; k < q; k++) {
            s = s * 1664525u + 1013904223u;
            a[i * q + k] = (float)(s >> 8) / 16777216.0f;
            sum += a[i * q + k];
        }
        for (int k = 0; k < q; k++)
            a[i * q + k] /= sum;
    }
    memset(photo, 90, W * H * 3);
    AsMergeOptions o;
    AsError err;
    for (int variant = 0; variant < 2; variant++) {
        as_merge_options_default(&o);
        if (variant)
            o.merge_to = q / 2 > 0 ? q / 2 : 1;
        double best = 1e9, bm = 1e9, br = 1e9, bc = 1e9;
        for (int rep = 0; rep < 7; rep++) {
            double t0 = now_ms();
            int ng;
            as_merge_groups(pr, q, dim, &o, grp, &ng, &err);
            double t1 = now_ms();
            as_relabel(a, gh, gw, q, grp, ng, NULL, H, W, NULL, lab, &err);
            double t2 = now_ms();
            as_colourise(lab, W, H, photo, 0.6f, 4, out);
            double t3 = now_ms();
            if (t3 - t0 < best)
                best = t3 - t0;
            bm = fmin(bm, t1 - t0);
            br = fmin(br, t2 - t1);
            bc = fmin(bc, t3 - t2);
        }
        printf("timing: Q=%d %s: merge+relabel+colourise 480x480 = %.2f ms (best of 7; "
               "merge %.3f, relabel/upsample %.2f, colourise %.2f)\n",
               q, variant ? "merge-to Q/2" : "no merging", best, bm, br, bc);
    }
    free(a);
    free(pr);
    free(lab);
    free(photo);
    free(out);
}

int main(void)
{
    test_merge_groups();
    test_relabel();
    test_compact();
    test_colourise();
    time_pipeline(5);
    time_pipeline(20);
    return check_report("merge");
}
