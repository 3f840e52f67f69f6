/* test_viewer_units: the viewer's pure helpers (ui/vutil.h): viridis table,
 * colours (checked against core's VOC palette), cache keys, settings
 * clamping, zoom arithmetic, label shares, colourising, patch similarity,
 * cross-attention maps, file-name and index helpers. Also times the
 * slider path (merge + relabel + colourise) on a 480x480 ViT-S/16 sized result. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "image.h"
#include "merge.h"
#include "model.h"
#include "vutil.h"

static double luminance(const uint8_t c[3])
{
    /* relative luminance of sRGB (ITU-R BT.709 weights on linearised values) */
    double l[3];
    for (int i = 0; i < 3; i++) {
        double v = c[i] / 255.0;
        l[i] = v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
    }
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
}

static void test_viridis(void)
{
    uint8_t c[3];
    vu_viridis(0.0, c);
    CHECK(c[0] == 0x44 && c[1] == 0x01 && c[2] == 0x54, "viridis(0) = %02x%02x%02x", c[0], c[1], c[2]);
    vu_viridis(1.0, c);
    CHECK(c[0] == 0xfd && c[1] == 0xe7 && c[2] == 0x25, "viridis(1) = %02x%02x%02x", c[0], c[1], c[2]);
    vu_viridis(-3.0, c);
    CHECK(c[0] == 0x44 && c[2] == 0x54, "viridis clamps below");
    vu_viridis(7.0, c);
    CHECK(c[0] == 0xfd && c[1] == 0xe7, "viridis clamps above");
    vu_viridis(NAN, c);
    CHECK(c[0] == 0x44 && c[1] == 0x01, "viridis(NaN) is the low end");
    /* matplotlib's viridis at 0.5 is #21918c */
    vu_viridis(0.5, c);
    CHECK(abs(c[0] - 0x21) <= 6 && abs(c[1] - 0x91) <= 6 && abs(c[2] - 0x8c) <= 6,
          "viridis(0.5) = %02x%02x%02x, expected near 21918c", c[0], c[1], c[2]);
    /* perceptual property: luminance increases along the map (strictly at 64
     * steps; between 8-bit neighbours it may only stall within rounding) */
    double prev = -1;
    int mono = 1;
    for (int i = 0; i <= 64; i++) {
        vu_viridis(i / 64.0, c);
        double l = luminance(c);
        if (l <= prev)
            mono = 0;
        prev = l;
    }
    CHECK(mono, "viridis luminance increases at 64 steps");
    prev = -1;
    for (int i = 0; i <= 255; i++) {
        vu_viridis(i / 255.0, c);
        double l = luminance(c);
        if (l < prev - 1e-3)
            mono = 0;
        prev = l;
    }
    CHECK(mono, "viridis luminance never drops between 8-bit neighbours");
}

static void test_colours(void)
{
    uint8_t pal[768];
    as_voc_palette(pal);
    int same = 1;
    for (int i = 0; i < 256; i++) {
        uint8_t c[3];
        vu_voc_colour(i, c);
        if (memcmp(c, pal + 3 * i, 3))
            same = 0;
    }
    CHECK(same, "vu_voc_colour equals core's VOC palette for all 256 entries");
    uint8_t c[3];
    vu_voc_colour(1, c);
    CHECK(c[0] == 128 && c[1] == 0 && c[2] == 0, "VOC 1 (aeroplane) is 128,0,0");
    vu_voc_colour(15, c);
    CHECK(c[0] == 192 && c[1] == 128 && c[2] == 128, "VOC 15 (person) is 192,128,128");
    for (int k = 0; k < 20; k++) {
        uint8_t a[3], b[3];
        vu_prototype_colour(k, a);
        as_label_colour(k, b);
        CHECK(!memcmp(a, b, 3), "prototype %d colour matches the export colour", k);
        CHECK(a[0] || a[1] || a[2], "prototype %d is not black", k);
    }
}

static void test_cache_key(void)
{
    char *a = vu_cache_key("/x/cat.png", 100, 2000, "model@1", 448, 448);
    char *b = vu_cache_key("/x/cat.png", 100, 2000, "model@1", 448, 448);
    char *c = vu_cache_key("/x/cat.png", 100, 2000, "model@1", 480, 480);
    char *d = vu_cache_key("/x/cat.png", 100, 2000, "model@2", 448, 448);
    char *e = vu_cache_key("/x/cat.png", 101, 2000, "model@1", 448, 448);
    char *f = vu_cache_key(NULL, 0, 0, NULL, 0, 0);
    CHECK(a && b && c && d && e && f, "keys allocated");
    CHECK(!strcmp(a, b), "same inputs, same key");
    CHECK(strcmp(a, c), "input size changes the key");
    CHECK(strcmp(a, d), "model changes the key");
    CHECK(strcmp(a, e), "file modification changes the key");
    CHECK(strstr(a, "448x448") != NULL, "key names the input size: %s", a);
    free(a), free(b), free(c), free(d), free(e), free(f);
}

static void test_settings(void)
{
    VuSettings s;
    vu_settings_default(&s);
    CHECK_NEAR(s.mass_threshold, 0.6, 1e-12, "default mass threshold (METHOD.md 4.6)");
    CHECK(s.merge_threshold > 1.0, "merging by threshold is off by default");
    CHECK(s.k == 0, "no merging by count by default");
    s.k = 99;
    s.opacity = 3;
    s.mass_threshold = NAN;
    s.width = 5;
    s.input_size = 1;
    vu_settings_clamp(&s, 5);
    CHECK(s.k == 5, "K clamped to Q: %d", s.k);
    CHECK_NEAR(s.opacity, 1.0, 0, "opacity clamped");
    CHECK(s.mass_threshold >= 0 && s.mass_threshold <= 1, "NaN mass threshold replaced");
    CHECK(s.width >= 360, "window width clamped");
    CHECK(s.input_size >= 32, "input size clamped");
}

static void test_size_choices(void)
{
    int c[8];
    int n = vu_size_choices(448, c, 8);
    CHECK(n == 6 && c[0] == 224 && c[1] == 320 && c[2] == 448 && c[3] == 480 && c[4] == 640 &&
              c[5] == 896,
          "standard sizes, current among them: n=%d", n);
    n = vu_size_choices(400, c, 8);
    CHECK(n == 7 && c[1] == 320 && c[2] == 400 && c[3] == 448, "400 inserted in order: n=%d %d %d",
          n, c[2], c[3]);
    n = vu_size_choices(64, c, 8);
    CHECK(n == 7 && c[0] == 64 && c[1] == 224, "a small size first: n=%d %d", n, c[0]);
    n = vu_size_choices(1024, c, 8);
    CHECK(n == 7 && c[6] == 1024 && c[5] == 896, "a large size last: n=%d %d", n, c[6]);
    n = vu_size_choices(5000, c, 8);
    CHECK(n == 6 && c[5] == 896, "out-of-range current ignored: n=%d", n);
    n = vu_size_choices(300, c, 3);
    CHECK(n == 3 && c[0] == 224 && c[1] == 300 && c[2] == 320, "cap respected: n=%d", n);
}

static void test_zoom(void)
{
    CHECK_NEAR(vu_fit_scale(400, 200, 800, 800), 2.0, 1e-12, "fit wide image");
    CHECK_NEAR(vu_fit_scale(400, 200, 100, 800), 0.25, 1e-12, "fit narrow view");
    CHECK(vu_fit_scale(0, 10, 10, 10) > 0, "degenerate fit is positive");
    double s = 1.5, ox = 10, oy = 20;
    double px = 300, py = 140;
    double ix = (px - ox) / s, iy = (py - oy) / s;
    vu_zoom_at(&s, &ox, &oy, 2.0, px, py);
    CHECK_NEAR(s, 3.0, 1e-12, "zoomed scale");
    CHECK_NEAR((px - ox) / s, ix, 1e-9, "point under pointer stays (x)");
    CHECK_NEAR((py - oy) / s, iy, 1e-9, "point under pointer stays (y)");
    vu_zoom_at(&s, &ox, &oy, 1e9, px, py);
    CHECK(s <= 64.0, "zoom clamped");
}

static void test_shares_colourise(void)
{
    int32_t labels[12] = { 0, 0, 0, 1, 1, 1, 1, 2, 2, 255, 255, 255 };
    double share[3];
    vu_label_shares(labels, 12, NULL, 3, share);
    CHECK_NEAR(share[0], 3.0 / 9, 1e-12, "share 0 ignores background");
    CHECK_NEAR(share[1], 4.0 / 9, 1e-12, "share 1");
    CHECK_NEAR(share[0] + share[1] + share[2], 1.0, 1e-12, "shares sum to 1");
    uint8_t mask[12] = { 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0 };
    vu_label_shares(labels, 12, mask, 3, share);
    CHECK_NEAR(share[0], 0.75, 1e-12, "masked share");

    /* 4x3 map: rows 0 0 0 1 / 1 1 1 2 / 2 B B B */
    uint8_t colours[9] = { 128, 0, 0, 0, 128, 0, 128, 128, 0 };
    bool vis[3] = { true, true, false };
    uint32_t px[12];
    vu_colourise(labels, 4, 3, 3, colours, vis, NULL, 0, 0, false, 1.0, (uint8_t *)px, 16);
    CHECK(px[0] == 0xff800000u, "label 0 opaque red: %08x", px[0]);
    CHECK(px[4] == 0xff008000u, "label 1 opaque green: %08x", px[4]);
    CHECK(px[7] == 0, "hidden label 2 transparent");
    CHECK(px[9] == 0, "background transparent");
    vu_colourise(labels, 4, 3, 3, colours, NULL, NULL, 0, 0, false, 0.5, (uint8_t *)px, 16);
    CHECK((px[0] >> 24) == 128 && ((px[0] >> 16) & 255) == 64, "premultiplied half alpha: %08x", px[0]);
    vu_colourise(labels, 4, 3, 3, colours, NULL, NULL, 0, 0, true, 1.0, (uint8_t *)px, 16);
    CHECK(px[2] == 0xffffffffu, "boundary pixel is a white contour: %08x", px[2]);
    CHECK(px[9] == 0, "background stays transparent with contours");
    /* foreground patch mask 1x2: right half background */
    uint8_t fg[2] = { 1, 0 };
    vu_colourise(labels, 4, 3, 3, colours, NULL, fg, 1, 2, false, 1.0, (uint8_t *)px, 16);
    CHECK(px[0] != 0 && px[3] == 0 && px[6] == 0, "background patches transparent");
}

static void test_maps(void)
{
    float tok[4 * 3] = { 1, 0, 0, 2, 0, 0, 0, 1, 0, -1, 0, 0 };
    float s[4];
    vu_patch_similarity(tok, 4, 3, 0, s);
    CHECK_NEAR(s[0], 1, 1e-6, "self similarity");
    CHECK_NEAR(s[1], 1, 1e-6, "scaled copy");
    CHECK_NEAR(s[2], 0, 1e-6, "orthogonal");
    CHECK_NEAR(s[3], -1, 1e-6, "opposite");
    vu_patch_similarity(tok, 4, 3, 9, s);
    CHECK(s[0] == 0 && s[3] == 0, "bad index gives zeros");

    /* attn (heads=2, q=2, n=3) */
    float attn[12] = { 1, 2, 3, 4, 5, 6, 3, 4, 5, 6, 7, 8 };
    float m[3];
    vu_cross_attn_map(attn, 2, 2, 3, 1, -1, m);
    CHECK_NEAR(m[0], 5, 1e-6, "mean over heads of prototype 1");
    CHECK_NEAR(m[2], 7, 1e-6, "mean over heads, last patch");
    vu_cross_attn_map(attn, 2, 2, 3, 0, 1, m);
    CHECK_NEAR(m[1], 4, 1e-6, "head 1 of prototype 0");
    float lo, hi;
    float v[4] = { 3, NAN, -2, 5 };
    vu_range(v, 4, &lo, &hi);
    CHECK(lo == -2 && hi == 5, "range ignores NaN");
    uint32_t hm[2];
    float hv[2] = { 0, 1 };
    vu_heatmap_argb(hv, 2, 1, 0, 1, 255, (uint8_t *)hm, 8);
    CHECK(hm[0] == 0xff440154u && hm[1] == 0xfffde725u, "heat map ends: %08x %08x", hm[0], hm[1]);
}

static void test_files(void)
{
    CHECK(vu_is_image_name("a/b/cat.PNG"), "PNG");
    CHECK(vu_is_image_name("x.jpeg") && vu_is_image_name("x.JpG"), "JPEG");
    CHECK(!vu_is_image_name("x.pth") && !vu_is_image_name(".png") && !vu_is_image_name("png"),
          "not images");
    CHECK(vu_step_index(2, 3, +1) == 0, "next wraps");
    CHECK(vu_step_index(0, 3, -1) == 2, "previous wraps");
    CHECK(vu_step_index(-1, 3, -1) == 2 && vu_step_index(-1, 3, 1) == 0, "no current");
    CHECK(vu_step_index(0, 0, 1) == -1, "empty list");
}

static void test_pyramid(void)
{
    /* 3x3 -> 2x2: corner block averages, odd edges average what exists */
    uint32_t src[9] = { 0xff000000u, 0xff040404u, 0xff080808u, 0xff0c0c0cu, 0xff101010u,
                        0xff141414u, 0xff181818u, 0xff1c1c1cu, 0xff202020u };
    uint32_t dst[4] = { 0 };
    vu_halve_xrgb((const uint8_t *)src, 3, 3, 12, (uint8_t *)dst, 8);
    CHECK(dst[0] == 0xff080808u, "2x2 block mean: %08x", dst[0]); /* (0+4+12+16)/4 = 8 */
    CHECK(dst[1] == 0xff0e0e0eu, "right edge mean: %08x", dst[1]); /* (8+8+20+20)/4 = 14 */
    CHECK(dst[3] == 0xff202020u, "corner pixel kept: %08x", dst[3]);
    CHECK(vu_pyramid_level(1.0, 5) == 0 && vu_pyramid_level(2.0, 5) == 0, "no level above 1:1");
    CHECK(vu_pyramid_level(0.5, 5) == 1, "half size uses level 1");
    CHECK(vu_pyramid_level(0.3, 5) == 1, "0.3 uses level 1 (0.5 >= 0.3)");
    CHECK(vu_pyramid_level(0.2, 5) == 2, "0.2 uses level 2");
    CHECK(vu_pyramid_level(0.001, 5) == 4, "clamped to the last level");
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The work of one slider move for a 480x480 ViT-S/16 result (30x30 patches,
 * Q=5, D=384): merge, foreground mask, relabel to 480x480, colourise, shares. */
static void bench_slider(void)
{
    enum { GH = 30, GW = 30, N = GH * GW, Q = 5, D = 384, S = 480 };
    float *assign = malloc(sizeof(float) * N * Q), *queries = malloc(sizeof(float) * Q * D);
    float *attn = malloc(sizeof(float) * N);
    int32_t *labels = malloc(sizeof(int32_t) * S * S);
    uint8_t *argb = malloc((size_t)S * S * 4), fg[N];
    uint32_t seed = 7;
    for (int i = 0; i < N * Q; i++) {
        seed = seed * 1664525u + 1013904223u;
        assign[i] = (seed >> 8) / 16777216.0f;
    }
    for (int i = 0; i < Q * D; i++) {
        seed = seed * 1664525u + 1013904223u;
        queries[i] = (seed >> 8) / 16777216.0f - 0.5f;
    }
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        attn[i] = (seed >> 8) / 16777216.0f;
    }
    double best = 1e9, total = 0;
    int reps = 20, ok = 1;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        AsMergeOptions mo;
        as_merge_options_default(&mo);
        mo.merge_to = 1 + r % Q;
        int32_t group[Q];
        int ng = 0;
        AsError err = { 0 };
        ok &= as_merge_groups(queries, Q, D, &mo, group, &ng, &err) == 0;
        ok &= as_foreground_mask(attn, GH, GW, 0.3f + 0.05f * (r % 8), fg) == 0;
        ok &= as_relabel(assign, GH, GW, Q, group, ng, (r & 1) ? fg : NULL, S, S, NULL, labels,
                         &err) == 0;
        uint8_t colours[Q * 3];
        for (int g = 0; g < ng; g++)
            as_label_colour(g, colours + 3 * g);
        vu_colourise(labels, S, S, ng, colours, NULL, NULL, 0, 0, true, 1.0, argb, S * 4);
        double share[Q];
        vu_label_shares(labels, (size_t)S * S, NULL, ng, share);
        double dt = now_ms() - t0;
        total += dt;
        if (dt < best)
            best = dt;
    }
    CHECK(ok, "slider path ran without errors");
    printf("slider update (merge+mask+relabel+colourise+shares, 480x480, Q=5): "
           "mean %.2f ms, best %.2f ms over %d moves\n", total / reps, best, reps);
    free(assign), free(queries), free(attn), free(labels), free(argb);
}

/* The attention-mass curve and count behind the attention view's read-out. */
static void test_mass_curve(void)
{
    const float attn[5] = { 0.1f, 0.4f, -1.0f, 0.3f, 0.2f };
    float curve[5];
    vu_mass_curve(attn, 5, curve);
    const float want[5] = { 0.4f, 0.7f, 0.9f, 1.0f, 1.0f };
    for (int i = 0; i < 5; i++)
        CHECK(fabsf(curve[i] - want[i]) < 1e-6f, "curve[%d] = %g, want %g", i, curve[i], want[i]);
    CHECK(vu_mass_count(curve, 5, 0.6) == 2, "0.6 of the mass: the 2 largest");
    CHECK(vu_mass_count(curve, 5, 0.7) == 2, "exactly 0.7: still 2");
    CHECK(vu_mass_count(curve, 5, 0.05) == 1, "a little mass: 1");
    CHECK(vu_mass_count(curve, 5, 1.0) == 4, "all the mass: the positive ones");
    const float zero[4] = { 0, 0, 0, 0 };
    float zc[4];
    vu_mass_curve(zero, 4, zc);
    CHECK(fabsf(zc[1] - 0.5f) < 1e-6f && zc[3] == 1.0f, "no mass: a straight line");
}

/* Head-count hints from core's own load errors (issue 11, item 9: infer_small8
 * failed with "decoder heads 3 do not divide the width 64" and no hint). */
static void test_heads_hint(void)
{
    char hint[256];
    const char *dir = getenv("ALIGNSEG_TESTDATA") ? getenv("ALIGNSEG_TESTDATA") : "tests/data";
    char path[1024];
    snprintf(path, sizeof path, "%s/reference/infer_small8/alignseg.pth", dir);
    AsModel *m = NULL;
    AsError err = { 0 };
    AsModelOptions mo = { 0 };
    mo.encoder_heads = 4; /* the decoder keeps its default of 3 */
    int rc = as_model_load(path, NULL, &mo, &m, &err);
    CHECK(rc != 0, "infer_small8 with 3 decoder heads does not load");
    as_model_free(m);
    CHECK(vu_heads_hint(err.msg, hint, sizeof hint), "a hint for: %s", err.msg);
    CHECK(strstr(hint, "Decoder heads must divide the width 64: 1, 2, 4, 8, 16, 32 or 64") &&
              strstr(hint, "try 2 or 4"),
          "hint: %s", hint);
    CHECK(vu_heads_hint("x: encoder heads 5 do not divide the width 48", hint, sizeof hint) &&
              strstr(hint, "Encoder heads must divide the width 48: 1, 2, 3, 4, 6, 8, 12, 16, 24 or 48") &&
              strstr(hint, "try 4 or 6"),
          "encoder hint: %s", hint);
    CHECK(vu_heads_hint("m.pth: cannot infer the encoder heads: width 48 is not a multiple of 64; "
                        "give the head count", hint, sizeof hint) && strstr(hint, "width 48"),
          "inferring hint: %s", hint);
    CHECK(!vu_heads_hint("m.pth: truncated file", hint, sizeof hint) && hint[0] == 0,
          "no hint for other errors");
}

/* Hidden and empty groups are not exported; the rest are numbered from 0
 * like the files (issue 11, item 4: at K=3 "Prototype 5" became prototype_2,
 * groups at 0 % got categories, hiding did not change the export). */
static void test_export_numbering(void)
{
    const double share[4] = { 0.5, 0.0, 0.3, 0.2 };
    const bool vis[4] = { true, true, false, true };
    int32_t idx[4];
    CHECK(vu_export_index(share, vis, 4, idx) == 2 && idx[0] == 0 && idx[1] == -1 &&
              idx[2] == -1 && idx[3] == 1,
          "export index %d %d %d %d", idx[0], idx[1], idx[2], idx[3]);
    CHECK(vu_export_index(share, NULL, 4, idx) == 3 && idx[2] == 1 && idx[3] == 2,
          "all shown: only the empty group drops");
    int32_t labels[8] = { 0, 2, 3, 3, AS_LABEL_BACKGROUND, 0, 2, 3 };
    const int m = vu_compact_labels(labels, 8, 4, vis, AS_LABEL_BACKGROUND, idx);
    const int32_t want[8] = { 0, AS_LABEL_BACKGROUND, 1, 1, AS_LABEL_BACKGROUND, 0,
                              AS_LABEL_BACKGROUND, 1 };
    CHECK(m == 2 && !memcmp(labels, want, sizeof want), "compacted labels (m = %d)", m);
}

/* Running uninstalled (issue 11, bug 11: run from build/ the UI stayed
 * English): the executable's folder is compared with the build folder after
 * resolving links, so a symbolic link to either, "..", or a trailing slash do
 * not fool it, and an installed copy elsewhere is not taken for the build. */
static void test_exe_in_dir(void)
{
    char root[] = "/tmp/viewer_units_XXXXXX";
    CHECK(mkdtemp(root) != NULL, "mkdtemp");
    char ui[300], exe[320], other[300], other_exe[320], link_dir[300], link_exe[320], dotdot[400];
    snprintf(ui, sizeof ui, "%s/build/ui", root);
    snprintf(exe, sizeof exe, "%s/alignseg-viewer", ui);
    snprintf(other, sizeof other, "%s/bin", root);
    snprintf(other_exe, sizeof other_exe, "%s/alignseg-viewer", other);
    snprintf(link_dir, sizeof link_dir, "%s/linked-ui", root);
    snprintf(link_exe, sizeof link_exe, "%s/viewer-link", other);
    snprintf(dotdot, sizeof dotdot, "%s/build/ui/../ui/", root);
    char build[300];
    snprintf(build, sizeof build, "%s/build", root);
    CHECK(mkdir(build, 0700) == 0 && mkdir(ui, 0700) == 0 && mkdir(other, 0700) == 0, "mkdir");
    FILE *f = fopen(exe, "w");
    FILE *g = fopen(other_exe, "w");
    CHECK(f && g, "create files");
    if (f)
        fclose(f);
    if (g)
        fclose(g);
    CHECK(symlink(ui, link_dir) == 0 && symlink(exe, link_exe) == 0, "symlinks");

    CHECK(vu_exe_in_dir(exe, ui), "the build binary is in build/ui");
    CHECK(vu_exe_in_dir(exe, dotdot), "build/ui/../ui/ is build/ui");
    CHECK(vu_exe_in_dir(exe, link_dir), "a link to build/ui is build/ui");
    CHECK(vu_exe_in_dir(link_exe, ui), "a link to the build binary runs the build binary");
    CHECK(!vu_exe_in_dir(other_exe, ui), "a copy elsewhere (installed) is not the build");
    CHECK(!vu_exe_in_dir(exe, build), "build/ is not build/ui");
    CHECK(!vu_exe_in_dir(exe, "/nonexistent/build/ui"), "a build folder that is gone");
    CHECK(!vu_exe_in_dir(NULL, ui) && !vu_exe_in_dir(exe, NULL) && !vu_exe_in_dir("", ui),
          "NULL or empty");

    /* the export dialog starts in the last export folder, or home when it is gone */
    CHECK(vu_start_folder(ui, "/home") == ui, "an existing remembered folder");
    CHECK(!strcmp(vu_start_folder("/nonexistent/exports", "/home"), "/home"), "gone: home");
    CHECK(!strcmp(vu_start_folder(exe, "/home"), "/home"), "a file is not a folder");
    CHECK(!strcmp(vu_start_folder(NULL, "/home"), "/home") &&
              !strcmp(vu_start_folder("", "/home"), "/home"),
          "nothing remembered: home");

    unlink(link_exe);
    unlink(link_dir);
    unlink(exe);
    unlink(other_exe);
    rmdir(ui);
    rmdir(build);
    rmdir(other);
    rmdir(root);
}

int main(void)
{
    test_viridis();
    test_colours();
    test_cache_key();
    test_settings();
    test_size_choices();
    test_zoom();
    test_shares_colourise();
    test_maps();
    test_files();
    test_pyramid();
    test_mass_curve();
    test_heads_hint();
    test_export_numbering();
    test_exe_in_dir();
    bench_slider();
    return check_report("viewer_units");
}
