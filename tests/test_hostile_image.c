/* test_hostile_image: PNG/JPEG decoders against hostile input: truncation at
 * every cut point, empty/garbage files, headers claiming huge or zero sizes
 * (valid CRCs), corrupt EXIF, random byte flips. Every failure must be an
 * error whose message names the file; nothing may crash or leak (run under
 * ASan/UBSan). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include "image.h"
#include "image_io.h"

static int n_rejected = 0;

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *b = NULL;
    AsError err;
    if (as_read_whole_file(path, &b, len, &err)) {
        CHECK(0, "%s", err.msg);
        return NULL;
    }
    return b;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Load must fail with a message naming `name`, leaving no image. */
static int expect_fail_mem(const uint8_t *buf, size_t len, const char *name, const char *what)
{
    AsImage img = {1, 1, (uint8_t *)&img};
    AsError err;
    as_error_clear(&err);
    int st = as_image_load_mem(buf, len, name, &img, &err);
    int ok = st != 0 && err.msg[0] && strstr(err.msg, name) && img.rgb == NULL;
    CHECK(ok, "%s (len %zu): status %d, message '%s'", what, len, st, err.msg);
    if (st == 0)
        as_image_free(&img);
    n_rejected += ok;
    return ok;
}

static void expect_fail_file(const char *fname, const uint8_t *b, size_t n, const char *what,
                             const char *must_contain)
{
    char path[512];
    snprintf(path, sizeof path, "%s", test_tmp_path(fname));
    test_write_file(path, b, n);
    AsImage img;
    AsError err;
    as_error_clear(&err);
    int st = as_image_load(path, &img, &err);
    CHECK(st != 0 && strstr(err.msg, path) && img.rgb == NULL, "%s: status %d, message '%s'", what, st,
          err.msg);
    if (must_contain)
        CHECK(strstr(err.msg, must_contain) != NULL, "%s: message '%s' lacks '%s'", what, err.msg,
              must_contain);
    if (st == 0)
        as_image_free(&img);
    printf("  %-34s -> %s\n", what, err.msg);
    unlink(path);
}

/* Every prefix of a valid file must be refused. */
static void truncations(const char *rel)
{
    size_t len = 0;
    uint8_t *b = slurp(test_path(rel), &len);
    if (!b)
        return;
    AsImage img;
    AsError err;
    CHECK(as_image_load_mem(b, len, rel, &img, &err) == 0, "full %s: %s", rel, err.msg);
    as_image_free(&img);
    int before = n_rejected;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *c = malloc(cut ? cut : 1); /* exact-size copy so ASan sees overreads */
        memcpy(c, b, cut);
        expect_fail_mem(c, cut, rel, "truncated");
        free(c);
    }
    printf("truncated %-22s: %d of %zu cut points refused\n", rel, n_rejected - before, len);
    free(b);
}

/* ---- crafted PNGs ---- */

static size_t png_chunk(uint8_t *out, const char *tag, const uint8_t *data, uint32_t n)
{
    put_be32(out, n);
    memcpy(out + 4, tag, 4);
    if (n)
        memcpy(out + 8, data, n);
    put_be32(out + 8 + n, (uint32_t)crc32(crc32(0, NULL, 0), out + 4, n + 4));
    return 12 + n;
}

/* PNG with IHDR (w, h, depth, ctype) and one IDAT holding `data` deflated
 * (or as is when raw_idat), then an optional extra chunk, then IEND. */
static size_t make_png_ex(uint8_t *out, uint32_t w, uint32_t h, int depth, int ctype,
                          const uint8_t *data, size_t dlen, int raw_idat, const char *extra_tag,
                          uint32_t extra_len_claimed)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13];
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)ctype;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    size_t n = 0;
    memcpy(out, sig, 8);
    n += 8;
    n += png_chunk(out + n, "IHDR", ihdr, 13);
    if (extra_tag) { /* a chunk whose length field claims extra_len_claimed */
        put_be32(out + n, extra_len_claimed);
        memcpy(out + n + 4, extra_tag, 4);
        memset(out + n + 8, 'a', 16);
        n += 24;
    }
    uint8_t z[4096];
    uLongf zl = sizeof z;
    if (raw_idat) {
        memcpy(z, data, dlen);
        zl = dlen;
    } else {
        compress(z, &zl, data, dlen);
    }
    n += png_chunk(out + n, "IDAT", z, (uint32_t)zl);
    n += png_chunk(out + n, "IEND", NULL, 0);
    return n;
}

static size_t make_png(uint8_t *out, uint32_t w, uint32_t h, int depth, int ctype, const uint8_t *raw,
                       size_t rawlen)
{
    return make_png_ex(out, w, h, depth, ctype, raw, rawlen, 0, NULL, 0);
}

static void crafted_png(void)
{
    printf("crafted PNG headers:\n");
    uint8_t png[8192], raw[64] = {0};
    /* sanity: a correct 3x2 RGB file from the same builder decodes */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 9; j++)
            raw[i * 10 + 1 + j] = (uint8_t)(i * 9 + j);
    size_t n = make_png(png, 3, 2, 8, 2, raw, 20);
    AsImage img;
    AsError err;
    CHECK(as_image_load_mem(png, n, "ok.png", &img, &err) == 0 && img.w == 3 && img.h == 2 &&
              img.rgb[17] == 17,
          "crafted valid PNG: %s", err.msg);
    as_image_free(&img);

    n = make_png(png, 0, 5, 8, 2, raw, 20);
    expect_fail_file("zero_w.png", png, n, "IHDR 0x5", "0x5");
    n = make_png(png, 5, 0, 8, 2, raw, 20);
    expect_fail_file("zero_h.png", png, n, "IHDR 5x0", "5x0");
    n = make_png(png, 65535, 65535, 8, 2, raw, 20);
    expect_fail_file("huge.png", png, n, "IHDR 65535x65535", "65535x65535");
    n = make_png(png, 40000, 1, 8, 0, raw, 20);
    expect_fail_file("wide.png", png, n, "IHDR 40000x1 (side limit)", "40000x1");
    n = make_png(png, 20000, 20000, 8, 0, raw, 20);
    expect_fail_file("many.png", png, n, "IHDR 20000x20000 (pixel limit)", "20000x20000");
    n = make_png(png, 0x80000000u, 1, 8, 0, raw, 20);
    expect_fail_file("neg.png", png, n, "IHDR 2^31 x 1", "2147483648x1");
    n = make_png(png, 16384, 16384, 8, 2, raw, 20);
    expect_fail_file("bomb.png", png, n, "IHDR 16384^2, 20-byte IDAT", "16384x16384");
    n = make_png(png, 3, 2, 3, 2, raw, 20);
    expect_fail_file("depth3.png", png, n, "bit depth 3", NULL);
    n = make_png(png, 3, 2, 8, 3, raw, 20);
    expect_fail_file("noplte.png", png, n, "palette without PLTE", NULL);
    n = make_png(png, 3, 2, 8, 2, raw, 20);
    png[8 + 8 + 13 + 3] ^= 1; /* last byte of the IHDR CRC */
    expect_fail_file("crc.png", png, n, "IHDR CRC mismatch", NULL);
    static const uint8_t notzlib[12] = {0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6};
    n = make_png_ex(png, 3, 2, 8, 2, notzlib, sizeof notzlib, 1, NULL, 0);
    expect_fail_file("zlib.png", png, n, "corrupt zlib stream in IDAT", NULL);
    n = make_png(png, 3, 2, 8, 2, raw, 6); /* too little pixel data */
    expect_fail_file("short.png", png, n, "IDAT shorter than the image", NULL);
    n = make_png_ex(png, 3, 2, 8, 2, raw, 20, 0, "tEXt", 0x7fffffffu);
    expect_fail_file("text.png", png, n, "tEXt length 2^31-1", NULL);
    n = make_png_ex(png, 3, 2, 8, 2, raw, 20, 0, "IDAT", 0xfffffff0u);
    expect_fail_file("idatlen.png", png, n, "IDAT length 0xfffffff0", NULL);
}

/* ---- crafted JPEGs ---- */

static size_t find_marker(const uint8_t *b, size_t n, uint8_t m)
{
    for (size_t i = 2; i + 1 < n; i++)
        if (b[i] == 0xFF && b[i + 1] == m)
            return i;
    return 0;
}

static void crafted_jpeg(void)
{
    printf("crafted JPEG headers:\n");
    size_t len = 0;
    uint8_t *b = slurp(test_path("images/rgb.jpg"), &len);
    if (!b)
        return;
    size_t sof = find_marker(b, len, 0xC0);
    CHECK(sof > 0, "no SOF0 in rgb.jpg");
    uint8_t *c = malloc(len);
    static const unsigned dims[][2] = {{65535, 65535}, {0, 15}, {21, 0}, {40000, 10}, {20000, 20000}};
    static const char *names[] = {"sof_huge.jpg", "sof_w0.jpg", "sof_h0.jpg", "sof_wide.jpg", "sof_many.jpg"};
    static const char *expect[] = {"65535x65535", "0x15", "21x0", "40000x10", "20000x20000"};
    for (int i = 0; i < 5 && sof; i++) {
        memcpy(c, b, len);
        c[sof + 5] = (uint8_t)(dims[i][1] >> 8); /* height */
        c[sof + 6] = (uint8_t)dims[i][1];
        c[sof + 7] = (uint8_t)(dims[i][0] >> 8); /* width */
        c[sof + 8] = (uint8_t)dims[i][0];
        char what[64];
        snprintf(what, sizeof what, "SOF claims %ux%u", dims[i][0], dims[i][1]);
        expect_fail_file(names[i], c, len, what, expect[i]);
    }
    /* SOF with 2 components, and a DHT segment length running past the end */
    memcpy(c, b, len);
    if (sof)
        c[sof + 9] = 2;
    expect_fail_file("ncomp.jpg", c, len, "SOF with 2 components", NULL);
    size_t dht = find_marker(b, len, 0xC4);
    memcpy(c, b, len);
    if (dht) {
        c[dht + 2] = 0xFF;
        c[dht + 3] = 0xF0;
    }
    expect_fail_file("dhtlen.jpg", c, len, "DHT length past end of file", NULL);
    free(c);
    free(b);
}

/* rgb.jpg (21x15) with an APP1 Exif segment holding `tiff` spliced after SOI.
 * Like PIL, broken EXIF is ignored (the image loads), only the readable
 * orientation is applied. seglen_override != 0 forces the segment length. */
static void exif_case(const char *what, const uint8_t *tiff, size_t tn, int expect_w, int expect_h,
                      unsigned seglen_override)
{
    size_t len = 0;
    uint8_t *b = slurp(test_path("images/rgb.jpg"), &len);
    if (!b)
        return;
    size_t n = len + 4 + 6 + tn;
    uint8_t *j = malloc(n);
    memcpy(j, b, 2);
    unsigned seglen = seglen_override ? seglen_override : (unsigned)(2 + 6 + tn);
    j[2] = 0xFF;
    j[3] = 0xE1;
    j[4] = (uint8_t)(seglen >> 8);
    j[5] = (uint8_t)seglen;
    memcpy(j + 6, "Exif\0\0", 6);
    memcpy(j + 12, tiff, tn);
    memcpy(j + 12 + tn, b + 2, len - 2);
    AsImage img;
    AsError err;
    as_error_clear(&err);
    int st = as_image_load_mem(j, n, "exif.jpg", &img, &err);
    if (expect_w < 0) { /* either outcome is fine, but no crash and a named error */
        CHECK(st == 0 || strstr(err.msg, "exif.jpg"), "%s: status %d '%s'", what, st, err.msg);
        printf("  corrupt EXIF %-36s -> %s\n", what, st ? err.msg : "loads (libjpeg skips it)");
        if (!st)
            as_image_free(&img);
    } else if (expect_w) {
        CHECK(st == 0 && img.w == expect_w && img.h == expect_h, "%s: status %d (%s), %dx%d", what, st,
              err.msg, img.w, img.h);
        printf("  corrupt EXIF %-36s -> loads %dx%d\n", what, img.w, img.h);
        as_image_free(&img);
    } else {
        CHECK(st != 0 && strstr(err.msg, "exif.jpg"), "%s: status %d '%s'", what, st, err.msg);
        printf("  corrupt EXIF %-36s -> %s\n", what, err.msg);
        if (!st)
            as_image_free(&img);
    }
    free(j);
    free(b);
}

static void corrupt_exif(void)
{
    printf("corrupt EXIF (PIL ignores broken EXIF; so do we):\n");
    /* II, IFD0 at 8, one entry: Orientation SHORT 1 = 6 */
    uint8_t t[64] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0};
    exif_case("valid orientation 6 (control)", t, 26, 15, 21, 0);
    uint8_t u[64];
    memcpy(u, t, 26);
    u[4] = 0x88; u[5] = 0x13; /* IFD0 at 5000 */
    exif_case("IFD0 offset outside", u, 26, 21, 15, 0);
    memcpy(u, t, 26);
    u[4] = u[5] = u[6] = u[7] = 0xFF; /* IFD0 at 2^32-1 */
    exif_case("IFD0 offset 0xffffffff", u, 26, 21, 15, 0);
    memcpy(u, t, 26);
    u[4] = 25; /* count would be read past the end */
    exif_case("IFD0 offset at last byte", u, 26, 21, 15, 0);
    memcpy(u, t, 26);
    u[8] = 0xFF; u[9] = 0xFF; /* 65535 entries, one present */
    exif_case("entry count 65535", u, 26, 15, 21, 0);
    memcpy(u, t, 26);
    u[22] = 8; /* next-IFD pointer back to IFD0: a loop */
    exif_case("IFD loop", u, 26, 15, 21, 0);
    memcpy(u, t, 26);
    u[4] = 0; /* IFD0 at 0: the header itself */
    exif_case("IFD0 offset 0 (self)", u, 26, 21, 15, 0);
    memcpy(u, t, 26);
    u[0] = 'X';
    exif_case("bad byte order", u, 26, 21, 15, 0);
    memcpy(u, t, 26);
    u[14] = 4; u[18] = 0x10; u[19] = 0x27; /* count 4, value offset 10000 */
    exif_case("orientation count 4, offset outside", u, 26, 21, 15, 0);
    memcpy(u, t, 26);
    u[18] = 9;
    exif_case("orientation 9", u, 26, 21, 15, 0);
    memcpy(u, t, 26);
    u[12] = 7; /* UNDEFINED type */
    exif_case("orientation of type UNDEFINED", u, 26, 21, 15, 0);
    exif_case("empty TIFF block", t, 0, 21, 15, 0);
    exif_case("TIFF cut inside the entry", t, 15, 21, 15, 0);
    exif_case("APP1 length past end of file", t, 26, 0, 0, 0xFFF0);
    exif_case("APP1 length 1 (invalid)", t, 26, -1, 0, 1);

    /* the TIFF reader alone on random blobs: always 1..8, never out of bounds */
    srand(7);
    int bad = 0;
    for (int it = 0; it < 20000; it++) {
        size_t n = (size_t)(rand() % 48);
        uint8_t *blob = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            blob[i] = (uint8_t)(rand() % 4 == 0 ? rand() : (i < 26 ? t[i] : 0));
        int o = as_exif_orientation(blob, n);
        bad += o < 1 || o > 8;
        free(blob);
    }
    CHECK(bad == 0, "%d random TIFF blobs gave an orientation outside 1..8", bad);
}

/* Recompute every chunk CRC so mutated PNGs get past the CRC checks. */
static void fix_png_crcs(uint8_t *b, size_t len)
{
    size_t pos = 8;
    while (len >= 12 && pos <= len - 12) {
        uint32_t n = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 | (uint32_t)b[pos + 2] << 8 | b[pos + 3];
        if (n > len - pos - 12)
            break;
        put_be32(b + pos + 8 + n, (uint32_t)crc32(crc32(0, NULL, 0), b + pos + 4, n + 4));
        pos += 12 + n;
    }
}

/* Random byte flips: may decode or fail, but never crash; failures name the file. */
static void mutations(const char *rel, int rounds)
{
    size_t len = 0;
    uint8_t *b = slurp(test_path(rel), &len);
    if (!b)
        return;
    srand(12345);
    int ok = 0, failed = 0, unnamed = 0;
    uint8_t *c = malloc(len);
    for (int r = 0; r < rounds; r++) {
        memcpy(c, b, len);
        int flips = 1 + rand() % 4;
        for (int k = 0; k < flips; k++)
            c[(size_t)rand() % len] = (uint8_t)rand();
        if (len > 8 && c[1] == 'P')
            fix_png_crcs(c, len);
        AsImage img;
        AsError err;
        as_error_clear(&err);
        if (as_image_load_mem(c, len, rel, &img, &err) == 0) {
            ok += img.rgb && img.w > 0 && img.h > 0;
            as_image_free(&img);
        } else {
            failed++;
            unnamed += strstr(err.msg, rel) == NULL;
        }
    }
    CHECK(ok + failed == rounds && unnamed == 0, "%s: %d ok, %d failed, %d messages without name", rel, ok,
          failed, unnamed);
    printf("mutated %-22s: %d decoded, %d refused\n", rel, ok, failed);
    free(c);
    free(b);
}

static void misc_files(void)
{
    printf("misc files:\n");
    expect_fail_file("empty.png", NULL, 0, "empty file", "empty");
    static const uint8_t gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    expect_fail_file("x.gif", gif, sizeof gif - 1, "GIF", "x.gif: not a PNG or JPEG file");
    uint8_t g[4096];
    srand(99);
    for (size_t i = 0; i < sizeof g; i++)
        g[i] = (uint8_t)rand();
    expect_fail_file("garbage.bin", g, sizeof g, "random bytes", "not a PNG or JPEG");
    memcpy(g, "\x89PNG\r\n\x1a\n", 8);
    expect_fail_file("garbage.png", g, sizeof g, "PNG signature + random", NULL);
    g[0] = 0xFF; g[1] = 0xD8; g[2] = 0xFF;
    expect_fail_file("garbage.jpg", g, sizeof g, "JPEG SOI + random", NULL);
    expect_fail_file("soi.jpg", g, 3, "JPEG SOI only", NULL);
    expect_fail_file("sig.png", (const uint8_t *)"\x89PNG\r\n\x1a\n", 8, "PNG signature only", NULL);

    AsImage img;
    AsError err;
    CHECK(as_image_load("/nonexistent/none.png", &img, &err) == AS_ERR_IO &&
              strstr(err.msg, "/nonexistent/none.png"),
          "%s", err.msg);
    CHECK(as_image_load(test_tmpdir(), &img, &err) != 0 && strstr(err.msg, test_tmpdir()), "directory: %s", err.msg);
    uint8_t *u = NULL;
    int w, h;
    CHECK(as_png_read_u8("/nonexistent/none.png", &u, &w, &h, &err) == AS_ERR_IO && u == NULL, "%s",
          err.msg);
    /* u8 reader on truncated files */
    size_t len = 0;
    uint8_t *b = slurp(test_path("images/p4_i.png"), &len);
    char path[512];
    snprintf(path, sizeof path, "%s", test_tmp_path("cut.png"));
    int refused = 0, total = 0;
    for (size_t cut = 0; b && cut < len; cut += 3) {
        test_write_file(path, b, cut);
        u = NULL;
        int st = as_png_read_u8(path, &u, &w, &h, &err);
        refused += st != 0 && u == NULL && strstr(err.msg, path) != NULL;
        total++;
        free(u);
    }
    CHECK(refused == total, "as_png_read_u8: %d of %d truncated files refused", refused, total);
    unlink(path);
    free(b);
}

int main(void)
{
    if (!test_tmpdir())
        return 1;
    misc_files();
    crafted_png();
    crafted_jpeg();
    corrupt_exif();
    static const char *trunc_files[] = {"images/rgb8.png",     "images/rgb8_i.png",  "images/p8_trns.png",
                                        "images/g16_i.png",    "images/rgba16_i.png", "images/rgb.jpg",
                                        "images/rgb_prog.jpg", "images/gray.jpg",    "images/cmyk_ycck.jpg",
                                        "images/exif_mm_6.jpg"};
    for (size_t i = 0; i < sizeof trunc_files / sizeof trunc_files[0]; i++)
        truncations(trunc_files[i]);
    mutations("images/rgb8_i.png", 300);
    mutations("images/p8_trns.png", 300);
    mutations("images/rgba16_i.png", 300);
    mutations("images/g16.png", 300);
    mutations("images/rgb.jpg", 300);
    mutations("images/rgb_prog.jpg", 300);
    mutations("images/exif_ii_8.jpg", 300);
    return check_report("hostile_image");
}
