/* jpeg_io: JPEG decoding to RGB8 with libjpeg-turbo (gray, YCbCr, RGB,
 * Adobe CMYK/YCCK like PIL) and a bounds-checked EXIF orientation reader. */
#include "image_io.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* A progressive JPEG may hold any number of scans; each is a full pass over
 * the coefficients, so a hostile file with thousands is a CPU bomb. */
#define AS_JPEG_MAX_SCANS 1000

typedef struct {
    struct jpeg_error_mgr pub; /* must be first: libjpeg casts cinfo->err */
    jmp_buf jump;
    const char *name;
    AsError *err;
    AsStatus code;
    char warning[JMSG_LENGTH_MAX];
} JpegErr;

static void jpeg_fail(j_common_ptr cinfo, const char *what)
{
    JpegErr *e = (JpegErr *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, msg);
    if (e->code == AS_OK)
        e->code = AS_ERR_FORMAT;
    as_error_set(e->err, e->code, "%s: cannot decode JPEG: %s%s", e->name, what, msg);
    longjmp(e->jump, 1);
}

static void jpeg_error_exit(j_common_ptr cinfo)
{
    jpeg_fail(cinfo, "");
}

/* Warnings (level -1) are kept, not printed; running out of data is an error
 * (PIL refuses truncated images too). Trace messages (level >= 0) are dropped. */
static void jpeg_emit_message(j_common_ptr cinfo, int level)
{
    JpegErr *e = (JpegErr *)cinfo->err;
    if (level >= 0)
        return;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF)
        jpeg_fail(cinfo, "file is truncated: ");
    if (cinfo->err->num_warnings++ == 0)
        (*cinfo->err->format_message)(cinfo, e->warning);
}

static void jpeg_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never write to stderr */
}

static void jpeg_progress(j_common_ptr cinfo)
{
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (cinfo->is_decompressor && d->input_scan_number > AS_JPEG_MAX_SCANS) {
        JpegErr *e = (JpegErr *)cinfo->err;
        e->code = AS_ERR_FORMAT;
        as_error_set(e->err, e->code, "%s: cannot decode JPEG: more than %d scans (hostile file?)",
                     e->name, AS_JPEG_MAX_SCANS);
        longjmp(e->jump, 1);
    }
}

static unsigned rd16(const uint8_t *p, int le)
{
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | p[1];
}

static uint32_t rd32(const uint8_t *p, int le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Like PIL, a damaged EXIF block is not fatal: entries that can be read are
 * used, the rest ignored. Only IFD0 is visited (no IFD links are followed, so
 * loops cannot happen). Orientation must be a single BYTE/SHORT/LONG 1..8. */
int as_exif_orientation(const uint8_t *t, size_t n)
{
    if (!t || n < 8)
        return 1;
    int le;
    if (t[0] == 'I' && t[1] == 'I')
        le = 1;
    else if (t[0] == 'M' && t[1] == 'M')
        le = 0;
    else
        return 1;
    if (rd16(t + 2, le) != 42)
        return 1;
    uint32_t ifd = rd32(t + 4, le);
    if (ifd > n || n - ifd < 2)
        return 1;
    unsigned count = rd16(t + ifd, le);
    size_t pos = (size_t)ifd + 2;
    for (unsigned i = 0; i < count && n - pos >= 12; i++, pos += 12) {
        const uint8_t *e = t + pos;
        if (rd16(e, le) != 0x0112)
            continue;
        unsigned type = rd16(e + 2, le);
        uint32_t cnt = rd32(e + 4, le);
        uint32_t v;
        if (cnt != 1)
            return 1;
        if (type == 1)
            v = e[8];
        else if (type == 3)
            v = rd16(e + 8, le);
        else if (type == 4)
            v = rd32(e + 8, le);
        else
            return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* Entropy-coded data cannot describe pixels more densely than this: a
 * sequential scan spends at least 2 bits (DC code + end of block) on each 8x8
 * block of each component, 256 gray pixels per byte; a progressive one can
 * skip runs of up to 32767 blocks with one end-of-band code, so it is given
 * far more room. Claims beyond this are refused before anything is decoded,
 * like the PNG reader does with deflate's ratio. */
#define JPEG_MAX_PIXELS_PER_BYTE_SEQ 512ull
#define JPEG_MAX_PIXELS_PER_BYTE_PROG 8192ull
#define JPEG_FREE_PIXELS (1ull << 16)

/* Walk the marker segments before the first scan (bounds-checked) to find the
 * frame size and the first APP1 "Exif" block. Anything odd just stops the walk:
 * libjpeg then reports the problem itself. Returns 1 if a SOF was found;
 * *progressive tells its kind, *scan the offset of the first SOS (n if none). */
static int jpeg_scan_markers(const uint8_t *b, size_t n, unsigned *w, unsigned *h, int *progressive,
                             size_t *scan, const uint8_t **exif, size_t *exif_len)
{
    int found = 0;
    size_t pos = 2; /* after SOI */
    *exif = NULL;
    *exif_len = 0;
    *progressive = 0;
    *scan = n;
    while (pos < n) {
        if (b[pos] != 0xFF)
            break;
        while (pos < n && b[pos] == 0xFF)
            pos++;
        if (pos >= n)
            break;
        unsigned m = b[pos++];
        if (m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7))
            continue; /* standalone markers */
        if (m == 0xDA)
            *scan = pos;
        if (m == 0xD9 || m == 0xDA)
            break; /* EOI, SOS */
        if (n - pos < 2)
            break;
        size_t seglen = (size_t)b[pos] << 8 | b[pos + 1];
        if (seglen < 2 || seglen > n - pos)
            break;
        const uint8_t *seg = b + pos + 2;
        size_t sl = seglen - 2;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC && sl >= 5 && !found) {
            *h = (unsigned)seg[1] << 8 | seg[2];
            *w = (unsigned)seg[3] << 8 | seg[4];
            *progressive = m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE;
            found = 1;
        } else if (m == 0xE1 && sl >= 6 && !*exif && memcmp(seg, "Exif\0\0", 6) == 0) {
            *exif = seg + 6;
            *exif_len = sl - 6;
        }
        pos += seglen;
    }
    return found;
}

/* a*b/255 rounded to nearest, for a, b in 0..255 */
static inline unsigned mul_div255(unsigned a, unsigned b)
{
    unsigned t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

int as_jpeg_decode_rgb(const uint8_t *buf, size_t len, const char *name, AsImage *out,
                       int *orientation, AsError *err)
{
    out->w = out->h = 0;
    out->rgb = NULL;
    *orientation = 1;
    if (len < 3 || buf[0] != 0xFF || buf[1] != 0xD8 || buf[2] != 0xFF)
        return as_error_set(err, AS_ERR_FORMAT, "%s: not a JPEG file", name);
    if (len > 0xFFFFFFFFu)
        return as_error_set(err, AS_ERR_UNSUPPORTED, "%s: JPEG larger than 4 GB", name);

    unsigned fw = 0, fh = 0;
    int progressive;
    size_t scan;
    const uint8_t *exif = NULL;
    size_t exif_len = 0;
    if (jpeg_scan_markers(buf, len, &fw, &fh, &progressive, &scan, &exif, &exif_len)) {
        int st = as_image_check_dims(name, fw, fh, err);
        if (st)
            return st;
        unsigned long long data = len - scan, px = (unsigned long long)fw * fh;
        unsigned long long most = data * (progressive ? JPEG_MAX_PIXELS_PER_BYTE_PROG
                                                      : JPEG_MAX_PIXELS_PER_BYTE_SEQ) + JPEG_FREE_PIXELS;
        if (px > most)
            return as_error_set(err, AS_ERR_FORMAT, "%s: JPEG header claims %ux%u pixels but the file has "
                                "only %llu bytes of image data (at most %llu pixels): truncated or hostile",
                                name, fw, fh, data, most);
    }

    struct jpeg_decompress_struct cinfo;
    JpegErr jerr;
    struct jpeg_progress_mgr progress;
    memset(&jerr, 0, sizeof jerr);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit;
    jerr.pub.emit_message = jpeg_emit_message;
    jerr.pub.output_message = jpeg_output_message;
    jerr.name = name;
    jerr.err = err;
    uint8_t *volatile pix = NULL;
    uint8_t *volatile rgb = NULL;
    if (setjmp(jerr.jump)) {
        free(pix);
        free(rgb);
        jpeg_destroy_decompress(&cinfo);
        return jerr.code ? (int)jerr.code : AS_ERR_FORMAT;
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = jpeg_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    const int dims_rc = as_image_check_dims(name, cinfo.image_width, cinfo.image_height, err);
    if (dims_rc) {
        jerr.code = (AsStatus)dims_rc;
        longjmp(jerr.jump, 1);
    }
    /* the same bound as above with the whole file, in case the marker walk stopped early */
    if ((unsigned long long)cinfo.image_width * cinfo.image_height >
        (unsigned long long)len * (cinfo.progressive_mode ? JPEG_MAX_PIXELS_PER_BYTE_PROG
                                                          : JPEG_MAX_PIXELS_PER_BYTE_SEQ) + JPEG_FREE_PIXELS) {
        jerr.code = AS_ERR_FORMAT;
        as_error_set(err, jerr.code, "%s: JPEG header claims %ux%u pixels, more than %zu bytes can hold: "
                     "truncated or hostile", name, (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, len);
        longjmp(jerr.jump, 1);
    }
    int cmyk = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo.out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default: cinfo.out_color_space = JCS_RGB; break;
    }
    jpeg_start_decompress(&cinfo);
    const size_t w = cinfo.output_width, h = cinfo.output_height;
    const size_t nc = (size_t)cinfo.output_components;
    if (w != cinfo.image_width || h != cinfo.image_height || nc != (cmyk ? 4u : (cinfo.out_color_space == JCS_GRAYSCALE ? 1u : 3u))) {
        jerr.code = AS_ERR_UNSUPPORTED;
        as_error_set(err, jerr.code, "%s: unexpected JPEG output layout (%zux%zu, %zu components)",
                     name, w, h, nc);
        longjmp(jerr.jump, 1);
    }
    rgb = malloc(w * h * 3);
    if (nc != 3)
        pix = malloc(w * nc);
    if (!rgb || (nc != 3 && !pix)) {
        jerr.code = AS_ERR_NOMEM;
        as_error_set(err, jerr.code, "%s: out of memory for a %zux%zu image", name, w, h);
        longjmp(jerr.jump, 1);
    }
    while (cinfo.output_scanline < h) {
        size_t y = cinfo.output_scanline;
        uint8_t *dst = rgb + y * w * 3;
        JSAMPROW row = nc == 3 ? dst : pix;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            jerr.code = AS_ERR_FORMAT;
            as_error_set(err, jerr.code, "%s: cannot decode JPEG: no data for row %zu", name, y);
            longjmp(jerr.jump, 1);
        }
        if (nc == 1) {
            for (size_t x = 0; x < w; x++)
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = pix[x];
        } else if (nc == 4) {
            /* Adobe CMYK is stored inverted; PIL reads it as "CMYK;I" (c = 255 - v)
             * and converts with R = (255-k) - c*(255-k)/255 (rounded), i.e. with
             * the stored values: R = vk - mul_div255(255 - vc, vk). */
            for (size_t x = 0; x < w; x++) {
                const uint8_t *s = pix + 4 * x;
                unsigned nk = s[3];
                for (int c = 0; c < 3; c++)
                    dst[3 * x + c] = (uint8_t)(nk - mul_div255(255u - s[c], nk));
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(pix);
    out->w = (int)w;
    out->h = (int)h;
    out->rgb = rgb;
    if (exif)
        *orientation = as_exif_orientation(exif, exif_len);
    return 0;
}
