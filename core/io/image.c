/* image: loading (format detection, EXIF orientation), normalisation and the
 * VOC palette; decoders live in png_io.c / jpeg_io.c, resizing in resize.c. */
#include "image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "image_io.h"

int as_image_check_dims(const char *name, long long w, long long h, AsError *err)
{
    if (w <= 0 || h <= 0)
        return as_error_set(err, AS_ERR_FORMAT, "%s: image header claims an empty %lldx%lld image",
                            name, w, h);
    if (w > AS_IMAGE_MAX_SIDE || h > AS_IMAGE_MAX_SIDE || w * h > AS_IMAGE_MAX_PIXELS)
        return as_error_set(err, AS_ERR_UNSUPPORTED,
                            "%s: image header claims %lldx%lld pixels, more than the limit "
                            "(%d per side, %lld in total)",
                            name, w, h, AS_IMAGE_MAX_SIDE, (long long)AS_IMAGE_MAX_PIXELS);
    return 0;
}

int as_read_whole_file(const char *path, uint8_t **buf, size_t *len, AsError *err)
{
    return as_file_read_all(path, AS_IMAGE_MAX_FILE_BYTES, 1, buf, len, err);
}

int as_image_load_mem(const uint8_t *buf, size_t len, const char *name, AsImage *out, AsError *err)
{
    out->w = out->h = 0;
    out->rgb = NULL;
    if (!name)
        name = "(memory)";
    if (!buf || len == 0)
        return as_error_set(err, AS_ERR_FORMAT, "%s: empty file, not a PNG or JPEG file", name);
    int orientation = 1, st;
    if (len >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0)
        st = as_png_decode_rgb(buf, len, name, out, &orientation, err);
    else if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        st = as_jpeg_decode_rgb(buf, len, name, out, &orientation, err);
    else
        return as_error_set(err, AS_ERR_FORMAT, "%s: not a PNG or JPEG file", name);
    if (st)
        return st;
    st = as_image_apply_orientation(out, orientation, name, err);
    if (st)
        as_image_free(out);
    return st;
}

int as_image_load(const char *path, AsImage *out, AsError *err)
{
    out->w = out->h = 0;
    out->rgb = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int st = as_read_whole_file(path, &buf, &len, err);
    if (st)
        return st;
    st = as_image_load_mem(buf, len, path, out, err);
    free(buf);
    return st;
}

void as_image_free(AsImage *img)
{
    if (!img)
        return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

/* Orientation o (EXIF 1..8) as PIL's exif_transpose applies it:
 * 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE,
 * 6 ROTATE_270 (clockwise 90), 7 TRANSVERSE, 8 ROTATE_90 (counter-clockwise).
 * Output pixel (x, y) takes source pixel (sx, sy) below. */
int as_image_apply_orientation(AsImage *img, int o, const char *name, AsError *err)
{
    if (o <= 1 || o > 8 || !img->rgb)
        return 0;
    const size_t W = (size_t)img->w, H = (size_t)img->h;
    const int swap = o >= 5;
    const size_t ow = swap ? H : W, oh = swap ? W : H;
    uint8_t *dst = malloc(W * H * 3);
    if (!dst)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory rotating a %zux%zu image", name, W, H);
    for (size_t y = 0; y < oh; y++) {
        for (size_t x = 0; x < ow; x++) {
            size_t sx, sy;
            switch (o) {
            case 2: sx = W - 1 - x; sy = y; break;
            case 3: sx = W - 1 - x; sy = H - 1 - y; break;
            case 4: sx = x; sy = H - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = H - 1 - x; break;
            case 7: sx = W - 1 - y; sy = H - 1 - x; break;
            default: sx = W - 1 - y; sy = x; break; /* 8 */
            }
            memcpy(dst + (y * ow + x) * 3, img->rgb + (sy * W + sx) * 3, 3);
        }
    }
    free(img->rgb);
    img->rgb = dst;
    img->w = (int)ow;
    img->h = (int)oh;
    return 0;
}

void as_image_normalize(const AsImage *img, float *out)
{
    /* Same float32 operations as torchvision ToTensor + Normalize. */
    static const float mean[3] = {0.485f, 0.456f, 0.406f};
    static const float std[3] = {0.229f, 0.224f, 0.225f};
    const size_t n = (size_t)img->w * (size_t)img->h;
    for (int c = 0; c < 3; c++) {
        float *o = out + (size_t)c * n;
        const uint8_t *s = img->rgb + c;
        for (size_t i = 0; i < n; i++)
            o[i] = ((float)s[3 * i] / 255.0f - mean[c]) / std[c];
    }
}

void as_voc_palette(uint8_t palette[768])
{
    /* Entry i: bits 0,1,2 of i go to the top bit of R,G,B, bits 3,4,5 to the
     * next bit down, and so on (the PASCAL VOC devkit's labelcolormap). */
    for (int i = 0; i < 256; i++) {
        int c = i, r = 0, g = 0, b = 0;
        for (int j = 0; j < 8; j++) {
            r |= ((c >> 0) & 1) << (7 - j);
            g |= ((c >> 1) & 1) << (7 - j);
            b |= ((c >> 2) & 1) << (7 - j);
            c >>= 3;
        }
        palette[3 * i] = (uint8_t)r;
        palette[3 * i + 1] = (uint8_t)g;
        palette[3 * i + 2] = (uint8_t)b;
    }
}
