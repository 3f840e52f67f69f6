/* png_io: PNG decoding (to RGB8 like PIL, or raw 8-bit indices) and writing
 * (RGB, gray, indexed) with libpng; hostile-input safe (see image_io.h). */
#include "image_io.h"

#include "atomic.h"

#include <png.h>
#include <zlib.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    const char *name;
    AsError *err;
    AsStatus code;     /* status to report when libpng errors out */
    char note[160];    /* message buffer for errors raised by us through png_error */
    char warning[160]; /* last libpng warning (not an error) */
} PngCtx;

static void png_ctx_error(png_structp png, png_const_charp msg)
{
    PngCtx *c = png_get_error_ptr(png);
    if (c->code == AS_OK)
        c->code = AS_ERR_FORMAT;
    as_error_set(c->err, c->code, "%s: %s PNG: %s", c->name,
                 c->buf ? "cannot decode" : "cannot write", msg);
    png_longjmp(png, 1);
}

static void png_ctx_warning(png_structp png, png_const_charp msg)
{
    PngCtx *c = png_get_error_ptr(png);
    snprintf(c->warning, sizeof c->warning, "%s", msg);
}

static void png_ctx_read(png_structp png, png_bytep data, size_t n)
{
    PngCtx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) {
        snprintf(c->note, sizeof c->note, "file is truncated (needed %zu bytes at offset %zu of %zu)",
                 n, c->pos, c->len);
        png_error(png, c->note);
    }
    memcpy(data, c->buf + c->pos, n);
    c->pos += n;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *color_type_name(int ct)
{
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY: return "gray";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "gray+alpha";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    default: return "unknown";
    }
}

/* Check the signature and the IHDR dimensions ourselves before libpng sees
 * the file, so the message can give the size the header claims. */
static int png_precheck(const uint8_t *buf, size_t len, const char *name, AsError *err)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 || memcmp(buf, sig, 8) != 0)
        return as_error_set(err, AS_ERR_FORMAT, "%s: not a PNG file", name);
    if (len < 8 + 8 + 13)
        return as_error_set(err, AS_ERR_FORMAT, "%s: PNG is truncated (%zu bytes, no complete IHDR)",
                            name, len);
    if (be32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4) != 0)
        return as_error_set(err, AS_ERR_FORMAT, "%s: PNG does not start with a valid IHDR chunk", name);
    const uint32_t w = be32(buf + 16), h = be32(buf + 20);
    int st = as_image_check_dims(name, w, h, err);
    if (st)
        return st;
    /* Deflate cannot compress better than about 1032:1, so a small file that
     * claims a big image is refused before any pixel buffer is allocated. */
    static const int channels_of[7] = {1, 0, 3, 1, 2, 0, 4};
    const unsigned depth = buf[24], ct = buf[25];
    if (ct > 6 || channels_of[ct] == 0 || depth == 0 || depth > 16)
        return 0; /* libpng reports the bad IHDR */
    const unsigned long long raw_min = (unsigned long long)w * h * channels_of[ct] * depth / 8;
    unsigned long long idat = 0;
    size_t pos = 8;
    while (len - pos >= 12) {
        const uint32_t clen = be32(buf + pos);
        if (memcmp(buf + pos + 4, "IDAT", 4) == 0)
            idat += clen;
        if (clen > len - pos - 12) {
            char tag[5];
            for (int i = 0; i < 4; i++) {
                uint8_t ch = buf[pos + 4 + (size_t)i];
                tag[i] = (char)(ch >= 32 && ch < 127 ? ch : '?');
            }
            tag[4] = '\0';
            return as_error_set(err, AS_ERR_FORMAT,
                                "%s: PNG chunk '%s' at offset %zu claims %u bytes but only %zu "
                                "remain (truncated or hostile)",
                                name, tag, pos, clen, len - pos - 12);
        }
        if (memcmp(buf + pos + 4, "IEND", 4) == 0)
            break;
        pos += 12 + (size_t)clen;
    }
    if (idat * 1032 + 4096 < raw_min)
        return as_error_set(err, AS_ERR_FORMAT,
                            "%s: PNG claims %ux%u pixels but holds only %llu bytes of image data "
                            "(truncated or hostile)",
                            name, w, h, idat);
    return 0;
}

enum { MODE_RGB, MODE_U8 };

/* Decode to either RGB8 (3 bytes/pixel) or raw 8-bit single channel. */
static int png_decode(const uint8_t *buf, size_t len, const char *name, int mode, uint8_t **out,
                      int *out_w, int *out_h, int *orientation, AsError *err)
{
    *out = NULL;
    if (orientation)
        *orientation = 1;
    int st = png_precheck(buf, len, name, err);
    if (st)
        return st;

    PngCtx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.buf = buf;
    ctx.len = len;
    ctx.name = name;
    ctx.err = err;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_ctx_error, png_ctx_warning);
    if (!png)
        return as_error_set(err, AS_ERR_NOMEM, "%s: cannot create a PNG reader", name);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return as_error_set(err, AS_ERR_NOMEM, "%s: cannot create a PNG reader", name);
    }
    /* Locals changed after setjmp and used after a longjmp must be volatile;
     * ctx lives in memory (libpng holds its address), so it is safe to read. */
    uint8_t *volatile pix = NULL;    /* decoded rows as libpng delivers them */
    uint8_t *volatile rgb = NULL;    /* final RGB when conversion is needed */
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pix);
        free(rgb);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return ctx.code ? (int)ctx.code : AS_ERR_FORMAT;
    }
    png_set_read_fn(png, &ctx, png_ctx_read);
    png_set_user_limits(png, AS_IMAGE_MAX_SIDE, AS_IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(png, 16u << 20); /* ancillary chunks (text, iCCP) */
    png_read_info(png, info);

    png_uint_32 w32 = 0, h32 = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &w32, &h32, &bit_depth, &color_type, &interlace, NULL, NULL);
    const int dims_rc = as_image_check_dims(name, w32, h32, err);
    if (dims_rc) {
        ctx.code = (AsStatus)dims_rc;
        snprintf(ctx.note, sizeof ctx.note, "image is %ux%u, outside the accepted size",
                 (unsigned)w32, (unsigned)h32);
        png_error(png, ctx.note);
    }
    const size_t w = w32, h = h32;

    int gray16 = 0;
    size_t want_channels, want_depth;
    if (mode == MODE_U8) {
        if (!((color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 8) ||
              color_type == PNG_COLOR_TYPE_PALETTE)) {
            ctx.code = AS_ERR_UNSUPPORTED;
            snprintf(ctx.note, sizeof ctx.note,
                     "expected an 8-bit gray or palette (single channel) PNG, found %d-bit %s",
                     bit_depth, color_type_name(color_type));
            png_error(png, ctx.note);
        }
        if (bit_depth < 8)
            png_set_packing(png); /* palette indices, one per byte, unscaled */
        want_channels = 1;
        want_depth = 8;
    } else if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16) {
        /* PIL opens 16-bit gray as mode "I" and convert('RGB') clips each value
         * to 0..255 (checked with python3-pil 9.4: 256..65535 -> 255), so the
         * full 16-bit value is read and clipped below, not scaled. */
        gray16 = 1;
        want_channels = 1;
        want_depth = 16;
    } else {
        /* PIL reads 16-bit RGB/RGBA/LA through the ";16B" raw modes, which keep
         * the high byte: png_set_strip_16 does exactly that (no rounding).
         * 1/2/4-bit gray scale by 255/85/17 in both libpng and PIL ("1", "L;2",
         * "L;4"); alpha and tRNS are dropped; gAMA/iCCP are ignored like PIL. */
        if (color_type == PNG_COLOR_TYPE_PALETTE)
            png_set_palette_to_rgb(png);
        if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
            png_set_expand_gray_1_2_4_to_8(png);
        if (bit_depth == 16)
            png_set_strip_16(png);
        if (color_type & PNG_COLOR_MASK_ALPHA)
            png_set_strip_alpha(png);
        if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
            png_set_gray_to_rgb(png);
        want_channels = 3; /* 4 accepted too: alpha from a palette tRNS is dropped below */
        want_depth = 8;
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t channels = png_get_channels(png, info);
    size_t depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    int ok_channels = channels == want_channels || (want_channels == 3 && channels == 4);
    if (!ok_channels || depth != want_depth || rowbytes != w * channels * (depth / 8)) {
        ctx.code = AS_ERR_UNSUPPORTED;
        snprintf(ctx.note, sizeof ctx.note,
                 "unexpected layout after conversion (%zu channels, %zu bits, %zu bytes per row)",
                 channels, depth, rowbytes);
        png_error(png, ctx.note);
    }
    pix = malloc(rowbytes * h);
    rows = malloc(h * sizeof *rows);
    if (!pix || !rows) {
        ctx.code = AS_ERR_NOMEM;
        snprintf(ctx.note, sizeof ctx.note, "out of memory for a %zux%zu image", w, h);
        png_error(png, ctx.note);
    }
    for (size_t y = 0; y < h; y++)
        rows[y] = pix + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, info);
    if (orientation) { /* eXIf may come before or after IDAT; PIL honours it too */
        png_uint_32 exif_len = 0;
        png_bytep exif = NULL;
        if (png_get_eXIf_1(png, info, &exif_len, &exif) != 0 && exif && exif_len)
            *orientation = as_exif_orientation(exif, exif_len);
    }

    if (mode == MODE_RGB && (gray16 || channels == 4)) {
        rgb = malloc(w * h * 3);
        if (!rgb) {
            ctx.code = AS_ERR_NOMEM;
            snprintf(ctx.note, sizeof ctx.note, "out of memory for a %zux%zu image", w, h);
            png_error(png, ctx.note);
        }
        const uint8_t *s = pix;
        uint8_t *d = rgb;
        for (size_t i = 0; i < w * h; i++, d += 3) {
            if (gray16) {
                unsigned v = (unsigned)s[0] << 8 | s[1];
                d[0] = d[1] = d[2] = (uint8_t)(v > 255 ? 255 : v);
                s += 2;
            } else {
                d[0] = s[0];
                d[1] = s[1];
                d[2] = s[2];
                s += 4;
            }
        }
        free(pix);
        pix = rgb;
        rgb = NULL;
    }
    free(rows);
    rows = NULL;
    png_destroy_read_struct(&png, &info, NULL);
    *out = pix;
    *out_w = (int)w;
    *out_h = (int)h;
    return 0;
}

int as_png_decode_rgb(const uint8_t *buf, size_t len, const char *name, AsImage *out,
                      int *orientation, AsError *err)
{
    out->w = out->h = 0;
    out->rgb = NULL;
    return png_decode(buf, len, name, MODE_RGB, &out->rgb, &out->w, &out->h, orientation, err);
}

int as_png_decode_u8(const uint8_t *buf, size_t len, const char *name, uint8_t **out, int *w,
                     int *h, AsError *err)
{
    *w = *h = 0;
    return png_decode(buf, len, name, MODE_U8, out, w, h, NULL, err);
}

int as_png_read_u8(const char *path, uint8_t **out, int *w, int *h, AsError *err)
{
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int st = as_read_whole_file(path, &buf, &len, err);
    if (st)
        return st;
    st = as_png_decode_u8(buf, len, path, out, w, h, err);
    free(buf);
    return st;
}

/* ---- writing ---- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
    bool oom;
} PngSink;

static void png_sink_write(png_structp png, png_bytep data, size_t n)
{
    PngSink *s = png_get_io_ptr(png);
    if (s->oom)
        return;
    if (s->len + n > s->cap) {
        size_t nc = s->cap ? s->cap : 65536;
        while (nc < s->len + n)
            nc *= 2;
        uint8_t *nb = realloc(s->data, nc);
        if (!nb) {
            s->oom = true;
            return;
        }
        s->data = nb;
        s->cap = nc;
    }
    memcpy(s->data + s->len, data, n);
    s->len += n;
}

static void png_sink_flush(png_structp png)
{
    (void)png;
}

/* Encode into memory (name: for messages). */
static int png_encode(const char *name, const uint8_t *pix, int w, int h, int color_type,
                      int channels, const uint8_t *palette, int ncolors, uint8_t **out,
                      size_t *outlen, AsError *err)
{
    *out = NULL;
    *outlen = 0;
    if (!pix)
        return as_error_set(err, AS_ERR_ARG, "%s: no image data to write", name);
    if (w <= 0 || h <= 0 || w > AS_IMAGE_MAX_SIDE || h > AS_IMAGE_MAX_SIDE ||
        (long long)w * h > AS_IMAGE_MAX_PIXELS)
        return as_error_set(err, AS_ERR_ARG, "%s: cannot write a %dx%d image", name, w, h);

    PngCtx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.name = name;
    ctx.err = err;
    ctx.code = AS_ERR_IO;
    PngSink sink;
    memset(&sink, 0, sizeof sink);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_ctx_error, png_ctx_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        return as_error_set(err, AS_ERR_NOMEM, "%s: cannot create a PNG writer", name);
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(sink.data);
        png_destroy_write_struct(&png, &info);
        return ctx.code;
    }
    png_set_write_fn(png, &sink, png_sink_write, png_sink_flush);
    /* Measured fastest for their size (CPU time, 600x400 and 512x512 outputs
     * of the sample photos; see the writing notes in image.h): zlib's run-length
     * strategy, with the Up filter for RGB and palette images (overlay: 10 ms
     * instead of 91-112 ms at level 6 with adaptive filters, 3-7% larger;
     * labels: smaller and 35% faster) and no filter for gray masks (smaller and
     * 6x faster). The pixels are the same whatever the setting. */
    png_set_compression_strategy(png, Z_RLE);
    png_set_filter(png, PNG_FILTER_TYPE_BASE,
                   color_type == PNG_COLOR_TYPE_GRAY ? PNG_FILTER_NONE : PNG_FILTER_UP);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) {
        png_color pal[256];
        for (int i = 0; i < ncolors; i++) {
            pal[i].red = palette[3 * i];
            pal[i].green = palette[3 * i + 1];
            pal[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, pal, ncolors);
    }
    png_write_info(png, info);
    rows = malloc((size_t)h * sizeof *rows);
    if (!rows) {
        ctx.code = AS_ERR_NOMEM;
        png_error(png, "out of memory");
    }
    for (size_t y = 0; y < (size_t)h; y++)
        rows[y] = (png_bytep)(pix + y * (size_t)w * channels);
    png_write_image(png, rows);
    png_write_end(png, info);
    free(rows);
    rows = NULL;
    png_destroy_write_struct(&png, &info);
    if (sink.oom) {
        free(sink.data);
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory for the PNG data", name);
    }
    *out = sink.data;
    *outlen = sink.len;
    return 0;
}

static int check_palette(const char *name, const uint8_t *idx, int w, int h,
                         const uint8_t *palette, int ncolors, AsError *err)
{
    if (!palette || ncolors < 1 || ncolors > 256)
        return as_error_set(err, AS_ERR_ARG, "%s: palette must have 1..256 colours, got %d", name,
                            ncolors);
    if (idx && w > 0 && h > 0 && (long long)w * h <= AS_IMAGE_MAX_PIXELS) {
        for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
            if (idx[i] >= ncolors)
                return as_error_set(err, AS_ERR_ARG,
                                    "%s: index %d at pixel (%zu,%zu) is outside the %d-colour palette",
                                    name, idx[i], i % (size_t)w, i / (size_t)w, ncolors);
    }
    return 0;
}

int as_png_encode_rgb(const char *name, const uint8_t *rgb, int w, int h, uint8_t **out,
                      size_t *len, AsError *err)
{
    return png_encode(name, rgb, w, h, PNG_COLOR_TYPE_RGB, 3, NULL, 0, out, len, err);
}

int as_png_encode_gray(const char *name, const uint8_t *gray, int w, int h, uint8_t **out,
                       size_t *len, AsError *err)
{
    return png_encode(name, gray, w, h, PNG_COLOR_TYPE_GRAY, 1, NULL, 0, out, len, err);
}

int as_png_encode_indexed(const char *name, const uint8_t *idx, int w, int h,
                          const uint8_t *palette, int ncolors, uint8_t **out, size_t *len,
                          AsError *err)
{
    *out = NULL;
    *len = 0;
    int rc = check_palette(name, idx, w, h, palette, ncolors, err);
    if (rc)
        return rc;
    return png_encode(name, idx, w, h, PNG_COLOR_TYPE_PALETTE, 1, palette, ncolors, out, len, err);
}

/* encoded PNG (rc from the encoder) replaces path atomically (atomic.h) */
static int png_save(const char *path, int rc, uint8_t *data, size_t len, AsError *err)
{
    if (rc == 0)
        rc = as_atomic_write_file(path, data, len, err);
    free(data);
    return rc;
}

int as_png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, AsError *err)
{
    uint8_t *d = NULL;
    size_t n = 0;
    int rc = as_png_encode_rgb(path ? path : "(null)", rgb, w, h, &d, &n, err);
    return png_save(path, rc, d, n, err);
}

int as_png_write_gray(const char *path, const uint8_t *gray, int w, int h, AsError *err)
{
    uint8_t *d = NULL;
    size_t n = 0;
    int rc = as_png_encode_gray(path ? path : "(null)", gray, w, h, &d, &n, err);
    return png_save(path, rc, d, n, err);
}

int as_png_write_indexed(const char *path, const uint8_t *idx, int w, int h,
                         const uint8_t *palette, int ncolors, AsError *err)
{
    uint8_t *d = NULL;
    size_t n = 0;
    int rc = as_png_encode_indexed(path ? path : "(null)", idx, w, h, palette, ncolors, &d, &n,
                                   err);
    return png_save(path, rc, d, n, err);
}
