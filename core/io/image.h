/* image: decode PNG (libpng) and JPEG (libjpeg-turbo) to RGB8, honour EXIF
 * orientation, resize like PIL's Image.resize(BILINEAR) (antialiased),
 * normalise for the ViT, and write PNGs (RGB, gray, indexed with a palette).
 * All decoders treat files as hostile: size limits, truncation, bad headers
 * are errors with the file name, never crashes. */
#ifndef ALIGNSEG_IMAGE_H
#define ALIGNSEG_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Largest accepted image: width*height pixels (headers beyond are refused). */
#define AS_IMAGE_MAX_PIXELS (16384LL * 16384LL)
#define AS_IMAGE_MAX_SIDE 32768

typedef struct {
    int w, h;
    uint8_t *rgb; /* h*w*3, row-major, owned */
} AsImage;

/* Load PNG or JPEG (detected by content, not by name) to RGB8. */
int as_image_load(const char *path, AsImage *out, AsError *err);
int as_image_load_mem(const uint8_t *buf, size_t len, const char *name, AsImage *out, AsError *err);
void as_image_free(AsImage *img);

/* PIL-compatible antialiased bilinear resize (Image.resize(size, BILINEAR)). */
int as_image_resize(const AsImage *src, int out_w, int out_h, AsImage *dst, AsError *err);

/* (3,H,W) float32: x/255, then (x-mean)/std with ImageNet mean/std. */
void as_image_normalize(const AsImage *img, float *out);

/* Read an 8-bit single-channel PNG (gray or palette index, values unchanged),
 * e.g. label maps and exported masks. */
int as_png_read_u8(const char *path, uint8_t **out, int *w, int *h, AsError *err);

/* Write a PNG atomically (atomic.h): a failed write keeps the previous file. */
int as_png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, AsError *err);
int as_png_write_gray(const char *path, const uint8_t *gray, int w, int h, AsError *err);
/* Indexed PNG with ncolors palette entries (palette is ncolors*3 bytes). */
int as_png_write_indexed(const char *path, const uint8_t *idx, int w, int h,
                         const uint8_t *palette, int ncolors, AsError *err);

/* The same PNGs encoded into memory (*out malloc'ed, *len bytes); name is
 * for messages. Compression: zlib's Z_RLE strategy with the Up filter (RGB,
 * palette) or none (gray), the fastest per byte measured on label maps,
 * masks and overlays (e.g. a 600x400 overlay: 10.5 ms CPU, 395 KB, instead of
 * 91 ms, 369 KB with the libpng defaults). */
int as_png_encode_rgb(const char *name, const uint8_t *rgb, int w, int h, uint8_t **out,
                      size_t *len, AsError *err);
int as_png_encode_gray(const char *name, const uint8_t *gray, int w, int h, uint8_t **out,
                       size_t *len, AsError *err);
int as_png_encode_indexed(const char *name, const uint8_t *idx, int w, int h,
                          const uint8_t *palette, int ncolors, uint8_t **out, size_t *len,
                          AsError *err);

/* The PASCAL VOC colour map, 256 entries (768 bytes). */
void as_voc_palette(uint8_t palette[768]);

#endif
