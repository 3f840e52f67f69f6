/* test_image: PNG/JPEG decoding, EXIF orientation, resize and normalisation
 * against expected outputs made by python3-pil (tests/data/images, see
 * tests/tools/make_image_expected.py), plus PNG writer round trips. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "image.h"
#include "npy.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Compare img with an (H,W,3) uint8 npy holding rows/cols [::stride]. */
static void compare_npy(const AsImage *img, const char *npy_path, int stride, int tol,
                        const char *what, int *maxd_out, double *meand_out)
{
    AsNpy a;
    AsError err;
    as_error_clear(&err);
    *maxd_out = 999;
    *meand_out = 999;
    int st = as_npy_read(npy_path, &a, &err);
    CHECK(st == 0, "%s: %s", what, err.msg);
    if (st)
        return;
    int eh = (img->h + stride - 1) / stride, ew = (img->w + stride - 1) / stride;
    CHECK(a.dtype == AS_DT_U8 && a.ndim == 3 && a.shape[0] == eh && a.shape[1] == ew && a.shape[2] == 3,
          "%s: expected shape (%lld,%lld,%lld) vs image %dx%d stride %d", what, (long long)a.shape[0],
          (long long)a.shape[1], (long long)a.shape[2], img->w, img->h, stride);
    if (a.dtype == AS_DT_U8 && a.ndim == 3 && a.shape[0] == eh && a.shape[1] == ew && a.shape[2] == 3) {
        const uint8_t *e = a.data;
        int maxd = 0;
        double sum = 0;
        size_t n = 0;
        for (int y = 0; y < eh; y++)
            for (int x = 0; x < ew; x++)
                for (int c = 0; c < 3; c++) {
                    int v = img->rgb[((size_t)(y * stride) * img->w + (size_t)(x * stride)) * 3 + c];
                    int d = abs(v - e[((size_t)y * ew + x) * 3 + c]);
                    if (d > maxd)
                        maxd = d;
                    sum += d;
                    n++;
                }
        *maxd_out = maxd;
        *meand_out = sum / (double)n;
        CHECK(maxd <= tol, "%s: max abs difference %d > %d (mean %.4f)", what, maxd, tol, sum / n);
    }
    as_npy_free(&a);
}

static void test_decode(void)
{
    FILE *f = fopen(test_path("images/decode_cases.txt"), "r");
    CHECK(f != NULL, "cannot open decode_cases.txt");
    if (!f)
        return;
    char line[512];
    int ncases = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256];
        if (line[0] == '#' || sscanf(line, "%255s", name) != 1)
            continue;
        char rel[300], exp[300];
        snprintf(rel, sizeof rel, "images/%s", name);
        snprintf(exp, sizeof exp, "images/%.*s.rgb.npy", (int)(strrchr(name, '.') - name), name);
        AsImage img;
        AsError err;
        as_error_clear(&err);
        int st = as_image_load(test_path(rel), &img, &err);
        CHECK(st == 0, "%s: %s", name, err.msg);
        if (st)
            continue;
        /* CMYK goes through our own CMYK->RGB arithmetic: allow 1 level. */
        int tol = strncmp(name, "cmyk", 4) == 0 ? 1 : 0;
        int maxd;
        double meand;
        compare_npy(&img, test_path(exp), 1, tol, name, &maxd, &meand);
        if (maxd)
            printf("decode %-16s max diff %d mean %.4f\n", name, maxd, meand);
        as_image_free(&img);
        ncases++;
    }
    fclose(f);
    printf("decode: %d files compared with PIL\n", ncases);
    CHECK(ncases >= 40, "only %d decode cases", ncases);
}

static void test_resize(void)
{
    FILE *f = fopen(test_path("images/resize_cases.txt"), "r");
    CHECK(f != NULL, "cannot open resize_cases.txt");
    if (!f)
        return;
    char line[512];
    int ncases = 0;
    while (fgets(line, sizeof line, f)) {
        char src[256], exp[256];
        int w, h, stride;
        if (line[0] == '#' || sscanf(line, "%255s %d %d %d %255s", src, &w, &h, &stride, exp) != 5)
            continue;
        char rel[300], exprel[300];
        snprintf(rel, sizeof rel, "../../%s", src); /* relative to the repository root */
        snprintf(exprel, sizeof exprel, "images/%s", exp);
        AsImage img, out;
        AsError err;
        as_error_clear(&err);
        int st = as_image_load(test_path(rel), &img, &err);
        CHECK(st == 0, "%s", err.msg);
        if (st)
            continue;
        double t0 = now_ms();
        st = as_image_resize(&img, w, h, &out, &err);
        double t1 = now_ms();
        CHECK(st == 0, "%s", err.msg);
        if (!st) {
            CHECK(out.w == w && out.h == h, "resize size %dx%d", out.w, out.h);
            int maxd;
            double meand;
            compare_npy(&out, test_path(exprel), stride, 1, exp, &maxd, &meand);
            /* Allowed: +-1 on a few pixels. A systematic rounding difference
             * (e.g. a missing half-unit in one pass) shows up as mean ~0.5. */
            CHECK(meand <= 0.05, "%s: mean abs difference %.4f", exp, meand);
            printf("resize %-28s %4dx%-4d -> %4dx%-4d max diff %d mean %.5f (%.1f ms)\n", src, img.w,
                   img.h, w, h, maxd, meand, t1 - t0);
            as_image_free(&out);
        }
        as_image_free(&img);
        ncases++;
    }
    fclose(f);
    CHECK(ncases >= 8, "only %d resize cases", ncases);

    /* same size is a copy; in-place resize works */
    AsImage a = {0}, b = {0};
    AsError err;
    a.w = 5;
    a.h = 4;
    a.rgb = malloc(60);
    for (int i = 0; i < 60; i++)
        a.rgb[i] = (uint8_t)(i * 7);
    CHECK(as_image_resize(&a, 5, 4, &b, &err) == 0, "%s", err.msg);
    CHECK(b.rgb && memcmp(a.rgb, b.rgb, 60) == 0, "same-size resize is not a copy");
    as_image_free(&b);
    CHECK(as_image_resize(&a, 3, 2, &a, &err) == 0 && a.w == 3 && a.h == 2, "in-place resize");
    CHECK(as_image_resize(&a, 0, 2, &b, &err) == AS_ERR_ARG && err.msg[0], "zero size accepted");
    as_image_free(&a);
}

static void test_normalize(void)
{
    AsImage img;
    AsError err;
    AsNpy ref;
    CHECK(as_image_load(test_path("reference/infer_tiny/input.png"), &img, &err) == 0, "%s", err.msg);
    CHECK(as_npy_read(test_path("reference/infer_tiny/input_norm.npy"), &ref, &err) == 0, "%s", err.msg);
    CHECK(ref.dtype == AS_DT_F32 && ref.ndim == 3 && ref.shape[0] == 3 && ref.shape[1] == img.h &&
              ref.shape[2] == img.w,
          "input_norm.npy shape");
    if (ref.dtype == AS_DT_F32 && ref.numel == 3LL * img.w * img.h) {
        float *out = malloc(sizeof(float) * (size_t)ref.numel);
        as_image_normalize(&img, out);
        const float *r = ref.data;
        double maxe = 0;
        for (int64_t i = 0; i < ref.numel; i++)
            if (fabs((double)out[i] - r[i]) > maxe)
                maxe = fabs((double)out[i] - r[i]);
        printf("normalize: max abs error %.3g vs reference input_norm.npy\n", maxe);
        CHECK(maxe <= 1e-5, "normalize max error %g", maxe);
        free(out);
    }
    as_npy_free(&ref);
    as_image_free(&img);
}

static void test_png_u8_and_writers(const char *dir)
{
    AsError err;
    char path[512];
    const int w = 37, h = 11;
    uint8_t gray[37 * 11], idx[37 * 11], rgb[37 * 11 * 3];
    for (int i = 0; i < w * h; i++) {
        gray[i] = (uint8_t)(i * 13 + 5);
        idx[i] = (uint8_t)((i * 5) % 21);
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = (uint8_t)(i * (c + 3) + c);
    }
    uint8_t pal[768];
    as_voc_palette(pal);

    /* gray round trip, values unchanged; as_image_load gives R=G=B */
    snprintf(path, sizeof path, "%s/gray.png", dir);
    CHECK(as_png_write_gray(path, gray, w, h, &err) == 0, "%s", err.msg);
    uint8_t *u = NULL;
    int uw = 0, uh = 0;
    CHECK(as_png_read_u8(path, &u, &uw, &uh, &err) == 0, "%s", err.msg);
    CHECK(u && uw == w && uh == h && memcmp(u, gray, sizeof gray) == 0, "gray round trip");
    free(u);
    AsImage img;
    CHECK(as_image_load(path, &img, &err) == 0, "%s", err.msg);
    int same = img.w == w && img.h == h;
    for (int i = 0; same && i < w * h; i++)
        same = img.rgb[3 * i] == gray[i] && img.rgb[3 * i + 1] == gray[i] && img.rgb[3 * i + 2] == gray[i];
    CHECK(same, "gray PNG loads as R=G=B");
    as_image_free(&img);

    /* indexed round trip: indices unchanged, colours from the palette */
    snprintf(path, sizeof path, "%s/idx.png", dir);
    CHECK(as_png_write_indexed(path, idx, w, h, pal, 21, &err) == 0, "%s", err.msg);
    CHECK(as_png_read_u8(path, &u, &uw, &uh, &err) == 0, "%s", err.msg);
    CHECK(u && uw == w && uh == h && memcmp(u, idx, sizeof idx) == 0, "indexed round trip");
    free(u);
    CHECK(as_image_load(path, &img, &err) == 0, "%s", err.msg);
    same = img.w == w && img.h == h;
    for (int i = 0; same && i < w * h; i++)
        same = memcmp(img.rgb + 3 * i, pal + 3 * idx[i], 3) == 0;
    CHECK(same, "indexed PNG loads with the palette colours");
    as_image_free(&img);
    CHECK(as_png_write_indexed(path, idx, w, h, pal, 20, &err) == AS_ERR_ARG &&
              strstr(err.msg, "idx.png"),
          "index 20 with a 20-colour palette accepted: %s", err.msg);

    /* rgb round trip */
    snprintf(path, sizeof path, "%s/rgb.png", dir);
    CHECK(as_png_write_rgb(path, rgb, w, h, &err) == 0, "%s", err.msg);
    CHECK(as_image_load(path, &img, &err) == 0, "%s", err.msg);
    CHECK(img.w == w && img.h == h && memcmp(img.rgb, rgb, sizeof rgb) == 0, "rgb round trip");
    as_image_free(&img);
    /* u8 reader refuses RGB (and 16-bit gray), naming the file */
    CHECK(as_png_read_u8(path, &u, &uw, &uh, &err) != 0 && strstr(err.msg, "rgb.png"), "%s", err.msg);
    CHECK(u == NULL, "no buffer on error");
    CHECK(as_png_read_u8(test_path("images/g16.png"), &u, &uw, &uh, &err) != 0 &&
              strstr(err.msg, "g16.png"),
          "%s", err.msg);
    /* u8 reader on PIL-checked files: gray 8-bit equals its expected gray */
    AsNpy e;
    CHECK(as_png_read_u8(test_path("images/g8.png"), &u, &uw, &uh, &err) == 0, "%s", err.msg);
    CHECK(as_npy_read(test_path("images/g8.rgb.npy"), &e, &err) == 0, "%s", err.msg);
    if (u && e.data && e.numel == 3LL * uw * uh) {
        same = 1;
        for (int i = 0; i < uw * uh; i++)
            same &= u[i] == ((uint8_t *)e.data)[3 * i];
        CHECK(same, "g8.png u8 values differ from PIL");
    }
    free(u);
    as_npy_free(&e);
    /* 4-bit palette: indices (unscaled) are < 16 and map to PIL's colours */
    CHECK(as_png_read_u8(test_path("images/p4.png"), &u, &uw, &uh, &err) == 0, "%s", err.msg);
    if (u) {
        int maxi = 0;
        for (int i = 0; i < uw * uh; i++)
            maxi = u[i] > maxi ? u[i] : maxi;
        CHECK(maxi < 16 && maxi > 8, "p4 indices max %d", maxi);
    }
    free(u);
    /* writer errors name the file */
    CHECK(as_png_write_rgb("/nonexistent-dir/x.png", rgb, w, h, &err) == AS_ERR_IO &&
              strstr(err.msg, "/nonexistent-dir/x.png"),
          "%s", err.msg);
    CHECK(as_png_write_gray(path, gray, 0, h, &err) == AS_ERR_ARG, "zero width written");
}

static void test_voc_palette(void)
{
    uint8_t p[768];
    as_voc_palette(p);
    /* PASCAL VOC colours: background, aeroplane, bicycle, bird, person, and
     * the 255 "void" boundary colour. */
    static const int known[][4] = {{0, 0, 0, 0},     {1, 128, 0, 0},    {2, 0, 128, 0},
                                   {3, 128, 128, 0}, {15, 192, 128, 128}, {255, 224, 224, 192}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const uint8_t *c = p + 3 * known[i][0];
        CHECK(c[0] == known[i][1] && c[1] == known[i][2] && c[2] == known[i][3],
              "VOC colour %d is (%d,%d,%d)", known[i][0], c[0], c[1], c[2]);
    }
    /* the map is a bijection on 256 entries */
    int distinct = 1;
    for (int i = 0; i < 256 && distinct; i++)
        for (int j = i + 1; j < 256; j++)
            if (memcmp(p + 3 * i, p + 3 * j, 3) == 0)
                distinct = 0;
    CHECK(distinct, "VOC palette has duplicates");
}

static void test_sample_timings(void)
{
    static const char *samples[] = {"chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg"};
    static const int sizes[][2] = {{451, 300}, {512, 512}, {600, 400}, {640, 427}};
    for (int i = 0; i < 4; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "../../data/samples/%s", samples[i]);
        AsImage img;
        AsError err;
        double best = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_ms();
            int st = as_image_load(test_path(rel), &img, &err);
            double t = now_ms() - t0;
            CHECK(st == 0, "%s", err.msg);
            if (st)
                break;
            CHECK(img.w == sizes[i][0] && img.h == sizes[i][1], "%s is %dx%d", samples[i], img.w, img.h);
            as_image_free(&img);
            best = t < best ? t : best;
        }
        printf("decode %-14s %dx%d: %.2f ms (best of 3)\n", samples[i], sizes[i][0], sizes[i][1], best);
    }
}

int main(void)
{
    char dir[TEST_TMPDIR_MAX];
    if (!test_tmpdir_make(dir, sizeof dir, "image"))
        return 1;
    test_decode();
    test_resize();
    test_normalize();
    test_png_u8_and_writers(dir);
    test_voc_palette();
    test_sample_timings();
    test_tmpdir_remove(dir);
    return check_report("image");
}
