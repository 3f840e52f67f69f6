/* make_photos SAMPLES_DIR N IMG_DIR [MASK_DIR]: N test photos for the
 * cluster tests and bench/scaling.sh, cut from the sample photos of
 * data/samples (astronaut, chelsea, coffee, rocket; see LICENSES.md there):
 * photo_NN.png, crop k of sample k % 4, 240x200 at an offset that moves with
 * k, mirrored every other round so no two are alike. With MASK_DIR, a ground
 * truth for `alignseg eval` beside each: MASK_DIR/photo_NN.png, 8-bit
 * classes 0..3 from the brightness bands of the crop and 255 (ignore) on a
 * 4-pixel frame. Deterministic: the same photos on every run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define CW 240
#define CH 200

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: make_photos SAMPLES_DIR N IMG_DIR [MASK_DIR]\n");
        return 2;
    }
    static const char *const samples[4] = { "astronaut.png", "chelsea.png", "coffee.png",
                                            "rocket.jpg" };
    const int n = atoi(argv[2]);
    if (n < 1 || n > 9999) {
        fprintf(stderr, "make_photos: N must be 1..9999\n");
        return 2;
    }
    AsImage src[4];
    memset(src, 0, sizeof src);
    AsError err;
    int rc = 0;
    for (int s = 0; s < 4 && !rc; s++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", argv[1], samples[s]);
        if (as_image_load(p, &src[s], &err) || src[s].w < CW || src[s].h < CH) {
            fprintf(stderr, "make_photos: %s\n", src[s].w ? "sample smaller than a crop" : err.msg);
            rc = 1;
        }
    }
    uint8_t *rgb = malloc(CW * CH * 3), *mask = malloc(CW * CH);
    if (!rgb || !mask)
        rc = 1;
    for (int k = 0; k < n && !rc; k++) {
        const AsImage *im = &src[k % 4];
        const int round = k / 4;
        const int ox = (round * 37) % (im->w - CW + 1), oy = (round * 23) % (im->h - CH + 1);
        const int mirror = round % 2;
        for (int y = 0; y < CH; y++)
            for (int x = 0; x < CW; x++) {
                const int sx = ox + (mirror ? CW - 1 - x : x);
                const uint8_t *px = im->rgb + ((size_t)(oy + y) * im->w + sx) * 3;
                memcpy(rgb + ((size_t)y * CW + x) * 3, px, 3);
                const int lum = (px[0] * 3 + px[1] * 6 + px[2]) / 10;
                const int frame = x < 4 || y < 4 || x >= CW - 4 || y >= CH - 4;
                mask[y * CW + x] = frame ? 255 : (uint8_t)(lum * 4 / 256);
            }
        char p[4096];
        snprintf(p, sizeof p, "%s/photo_%02d.png", argv[3], k + 1);
        if (as_png_write_rgb(p, rgb, CW, CH, &err)) {
            fprintf(stderr, "make_photos: %s\n", err.msg);
            rc = 1;
        }
        if (!rc && argc == 5) {
            snprintf(p, sizeof p, "%s/photo_%02d.png", argv[4], k + 1);
            if (as_png_write_gray(p, mask, CW, CH, &err)) {
                fprintf(stderr, "make_photos: %s\n", err.msg);
                rc = 1;
            }
        }
    }
    free(rgb);
    free(mask);
    for (int s = 0; s < 4; s++)
        as_image_free(&src[s]);
    return rc;
}
