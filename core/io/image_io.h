/* image_io: internal decoder layer behind image.h, shared by image.c,
 * png_io.c (libpng) and jpeg_io.c (libjpeg-turbo + EXIF). Not for callers
 * outside the image module (tests may use it to probe the decoders). */
#ifndef ALIGNSEG_IMAGE_IO_H
#define ALIGNSEG_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "image.h"

/* Largest file as_image_load / as_png_read_u8 will read into memory. */
#define AS_IMAGE_MAX_FILE_BYTES (1LL << 30)

/* image.c: refuse empty or oversized dimensions (w x h as claimed by a header). */
int as_image_check_dims(const char *name, long long w, long long h, AsError *err);
/* image.c: read a whole file (hostile size checks), *buf is malloc'ed. */
int as_read_whole_file(const char *path, uint8_t **buf, size_t *len, AsError *err);

/* png_io.c: decode a PNG in memory to RGB8 the way PIL's convert('RGB') does;
 * *orientation receives the eXIf chunk's EXIF orientation (1..8, 1 if none). */
int as_png_decode_rgb(const uint8_t *buf, size_t len, const char *name, AsImage *out,
                      int *orientation, AsError *err);
/* png_io.c: decode an 8-bit gray PNG, or a palette PNG (1..8 bit) as its
 * index values, to one byte per pixel. */
int as_png_decode_u8(const uint8_t *buf, size_t len, const char *name, uint8_t **out, int *w,
                     int *h, AsError *err);

/* jpeg_io.c: decode a JPEG in memory to RGB8 (gray, YCbCr, RGB, CMYK/YCCK like
 * PIL). *orientation receives the EXIF orientation (1..8, 1 if none). */
int as_jpeg_decode_rgb(const uint8_t *buf, size_t len, const char *name, AsImage *out,
                       int *orientation, AsError *err);
/* jpeg_io.c: orientation (1..8) from a TIFF block (the APP1 payload after
 * "Exif\0\0"); 1 when absent or unreadable. Only IFD0 is read, bounds-checked. */
int as_exif_orientation(const uint8_t *tiff, size_t len);

/* image.c: apply an EXIF orientation in place like PIL's ImageOps.exif_transpose. */
int as_image_apply_orientation(AsImage *img, int orientation, const char *name, AsError *err);

#endif
