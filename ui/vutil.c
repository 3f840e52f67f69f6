/* vutil: pure helpers of the viewer (see vutil.h). */
#include "vutil.h"

#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* viridis at t = i/9, i = 0..9 (the ten-colour sampling published with the map) */
static const uint8_t viridis_anchor[10][3] = {
    { 0x44, 0x01, 0x54 }, { 0x48, 0x28, 0x78 }, { 0x3e, 0x4a, 0x89 }, { 0x31, 0x68, 0x8e },
    { 0x26, 0x82, 0x8e }, { 0x1f, 0x9e, 0x89 }, { 0x35, 0xb7, 0x79 }, { 0x6d, 0xcd, 0x59 },
    { 0xb4, 0xde, 0x2c }, { 0xfd, 0xe7, 0x25 },
};

void vu_viridis(double t, uint8_t rgb[3])
{
    if (!(t > 0.0)) /* also NaN */
        t = 0.0;
    if (t > 1.0)
        t = 1.0;
    double x = t * 9.0;
    int i = (int)x;
    if (i >= 9)
        i = 8;
    double f = x - i;
    for (int c = 0; c < 3; c++) {
        double v = viridis_anchor[i][c] * (1.0 - f) + viridis_anchor[i + 1][c] * f;
        rgb[c] = (uint8_t)lround(v);
    }
}

void vu_voc_colour(int i, uint8_t rgb[3])
{
    int r = 0, g = 0, b = 0, c = i & 255;
    for (int j = 0; j < 8; j++) {
        r |= ((c >> 0) & 1) << (7 - j);
        g |= ((c >> 1) & 1) << (7 - j);
        b |= ((c >> 2) & 1) << (7 - j);
        c >>= 3;
    }
    rgb[0] = (uint8_t)r;
    rgb[1] = (uint8_t)g;
    rgb[2] = (uint8_t)b;
}

void vu_prototype_colour(int k, uint8_t rgb[3])
{
    vu_voc_colour((k < 0 ? 0 : k % 255) + 1, rgb);
}

char *vu_cache_key(const char *path, int64_t mtime, int64_t size, const char *model_id,
                   int in_w, int in_h)
{
    if (!path)
        path = "";
    if (!model_id)
        model_id = "";
    int len = snprintf(NULL, 0, "%s|%" PRId64 "|%" PRId64 "|%s|%dx%d", path, mtime, size,
                       model_id, in_w, in_h);
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (s)
        snprintf(s, (size_t)len + 1, "%s|%" PRId64 "|%" PRId64 "|%s|%dx%d", path, mtime, size,
                 model_id, in_w, in_h);
    return s;
}

void vu_settings_default(VuSettings *s)
{
    s->k = 0;
    s->merge_threshold = 1.05; /* above 1: off */
    s->mass_threshold = 0.6;
    s->opacity = 0.6;
    s->width = 1200;
    s->height = 800;
    s->input_size = 448;
}

static double clampd(double v, double lo, double hi)
{
    if (!(v >= lo)) /* NaN too */
        return lo;
    return v > hi ? hi : v;
}

int vu_size_choices(int current, int *out, int cap)
{
    static const int std[] = { 224, 320, 448, 480, 640, 896 };
    int n = 0;
    bool placed = current < 32 || current > 2048;
    for (size_t i = 0; i < sizeof std / sizeof std[0]; i++) {
        if (!placed && current <= std[i]) {
            if (n < cap)
                out[n++] = current;
            placed = true;
            if (current == std[i])
                continue;
        }
        if (n < cap)
            out[n++] = std[i];
    }
    if (!placed && n < cap)
        out[n++] = current;
    return n;
}

void vu_settings_clamp(VuSettings *s, int q)
{
    if (s->k < 0)
        s->k = 0;
    if (q > 0 && s->k > q)
        s->k = q;
    s->merge_threshold = clampd(s->merge_threshold, 0.0, 1.05);
    s->mass_threshold = clampd(s->mass_threshold, 0.0, 1.0);
    s->opacity = clampd(s->opacity, 0.0, 1.0);
    if (s->width < 360)
        s->width = 360;
    if (s->height < 300)
        s->height = 300;
    if (s->width > 16384)
        s->width = 16384;
    if (s->height > 16384)
        s->height = 16384;
    if (s->input_size < 32)
        s->input_size = 32;
    if (s->input_size > 2048)
        s->input_size = 2048;
}

double vu_fit_scale(int img_w, int img_h, int view_w, int view_h)
{
    if (img_w <= 0 || img_h <= 0 || view_w <= 0 || view_h <= 0)
        return 1.0;
    double sx = (double)view_w / img_w, sy = (double)view_h / img_h;
    double s = sx < sy ? sx : sy;
    return s > 1e-6 ? s : 1e-6;
}

void vu_zoom_at(double *scale, double *off_x, double *off_y, double factor, double px, double py)
{
    double s0 = *scale, s1 = s0 * factor;
    if (s1 < 0.02)
        s1 = 0.02;
    if (s1 > 64.0)
        s1 = 64.0;
    /* image point under the pointer: (px - off)/s0 must map to px again */
    double ix = (px - *off_x) / s0, iy = (py - *off_y) / s0;
    *off_x = px - ix * s1;
    *off_y = py - iy * s1;
    *scale = s1;
}

void vu_label_shares(const int32_t *labels, size_t n, const uint8_t *mask, int g, double *share)
{
    size_t total = 0;
    for (int t = 0; t < g; t++)
        share[t] = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i])
            continue;
        int32_t l = labels[i];
        if (l < 0 || l >= g)
            continue;
        share[l] += 1;
        total++;
    }
    for (int t = 0; t < g; t++)
        share[t] = total ? share[t] / (double)total : 0.0;
}

static inline uint32_t premul(uint8_t r, uint8_t g, uint8_t b, uint8_t a)
{
    uint32_t pr = (r * a + 127) / 255, pg = (g * a + 127) / 255, pb = (b * a + 127) / 255;
    return ((uint32_t)a << 24) | (pr << 16) | (pg << 8) | pb;
}

void vu_colourise(const int32_t *labels, int w, int h, int g, const uint8_t *colours,
                  const bool *visible, const uint8_t *fg, int gh, int gw, bool contours,
                  double alpha, uint8_t *argb, int stride)
{
    uint8_t a = (uint8_t)lround(clampd(alpha, 0.0, 1.0) * 255.0);
    uint32_t lut[256];
    int ncol = g < 256 ? g : 256;
    for (int t = 0; t < ncol; t++) {
        bool vis = !visible || visible[t];
        lut[t] = vis ? premul(colours[t * 3], colours[t * 3 + 1], colours[t * 3 + 2], a) : 0;
    }
    /* patch-row/column lookup for the foreground test */
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(void *)(argb + (size_t)y * stride);
        const int32_t *lr = labels + (size_t)y * w;
        int py = fg ? (int)((int64_t)y * gh / h) : 0;
        for (int x = 0; x < w; x++) {
            int32_t l = lr[x];
            uint32_t px = (l >= 0 && l < ncol) ? lut[l] : 0;
            if (fg && px) {
                int pxg = (int)((int64_t)x * gw / w);
                if (!fg[py * gw + pxg])
                    px = 0;
            }
            if (contours && px) {
                bool edge = (x + 1 < w && lr[x + 1] != l) || (y + 1 < h && lr[x + w] != l) ||
                            (x > 0 && lr[x - 1] != l) || (y > 0 && lr[x - w] != l);
                if (edge)
                    px = 0xffffffffu;
            }
            row[x] = px;
        }
    }
}

void vu_patch_similarity(const float *tokens, int n, int dim, int idx, float *out)
{
    if (idx < 0 || idx >= n) {
        for (int j = 0; j < n; j++)
            out[j] = 0.0f;
        return;
    }
    const float *a = tokens + (size_t)idx * dim;
    double na = 0;
    for (int d = 0; d < dim; d++)
        na += (double)a[d] * a[d];
    na = sqrt(na) > 1e-10 ? sqrt(na) : 1e-10;
    for (int j = 0; j < n; j++) {
        const float *b = tokens + (size_t)j * dim;
        double s = 0, nb = 0;
        for (int d = 0; d < dim; d++) {
            s += (double)a[d] * b[d];
            nb += (double)b[d] * b[d];
        }
        nb = sqrt(nb) > 1e-10 ? sqrt(nb) : 1e-10;
        out[j] = (float)(s / (na * nb));
    }
}

void vu_cross_attn_map(const float *attn, int heads, int q, int n, int k, int head, float *out)
{
    if (!attn || heads <= 0 || k < 0 || k >= q) {
        for (int j = 0; j < n; j++)
            out[j] = 0.0f;
        return;
    }
    if (head >= 0 && head < heads) {
        memcpy(out, attn + ((size_t)head * q + k) * n, (size_t)n * sizeof *out);
        return;
    }
    for (int j = 0; j < n; j++) {
        double s = 0;
        for (int hh = 0; hh < heads; hh++)
            s += attn[((size_t)hh * q + k) * n + j];
        out[j] = (float)(s / heads);
    }
}

void vu_range(const float *v, size_t n, float *lo, float *hi)
{
    float a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i]))
            continue;
        if (v[i] < a)
            a = v[i];
        if (v[i] > b)
            b = v[i];
    }
    if (!(a <= b)) {
        a = 0.0f;
        b = 1.0f;
    }
    *lo = a;
    *hi = b;
}

void vu_heatmap_argb(const float *v, int w, int h, float lo, float hi, uint8_t alpha,
                     uint8_t *argb, int stride)
{
    double span = (double)hi - lo;
    if (!(span > 1e-12))
        span = 1e-12;
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(void *)(argb + (size_t)y * stride);
        for (int x = 0; x < w; x++) {
            uint8_t c[3];
            vu_viridis(((double)v[(size_t)y * w + x] - lo) / span, c);
            row[x] = premul(c[0], c[1], c[2], alpha);
        }
    }
}

void vu_halve_xrgb(const uint8_t *src, int sw, int sh, int sstride, uint8_t *dst, int dstride)
{
    int dw = (sw + 1) / 2, dh = (sh + 1) / 2;
    for (int y = 0; y < dh; y++) {
        const uint32_t *r0 = (const uint32_t *)(const void *)(src + (size_t)(2 * y) * sstride);
        int y1 = 2 * y + 1 < sh ? 2 * y + 1 : 2 * y;
        const uint32_t *r1 = (const uint32_t *)(const void *)(src + (size_t)y1 * sstride);
        uint32_t *o = (uint32_t *)(void *)(dst + (size_t)y * dstride);
        for (int x = 0; x < dw; x++) {
            int x0 = 2 * x, x1 = 2 * x + 1 < sw ? 2 * x + 1 : 2 * x;
            uint32_t p[4] = { r0[x0], r0[x1], r1[x0], r1[x1] };
            uint32_t out = 0;
            for (int sh8 = 0; sh8 < 32; sh8 += 8) {
                uint32_t sum = 0;
                for (int k = 0; k < 4; k++)
                    sum += (p[k] >> sh8) & 255u;
                out |= ((sum + 2) / 4) << sh8;
            }
            o[x] = out;
        }
    }
}

int vu_pyramid_level(double scale, int nlevels)
{
    if (nlevels <= 1 || !(scale > 0) || scale >= 1.0)
        return 0;
    int l = (int)floor(log2(1.0 / scale) + 1e-9);
    if (l < 0)
        l = 0;
    return l < nlevels ? l : nlevels - 1;
}

bool vu_is_image_name(const char *name)
{
    if (!name)
        return false;
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return false;
    static const char *ext[] = { ".png", ".jpg", ".jpeg" };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        const char *e = ext[i];
        size_t len = strlen(e);
        if (strlen(dot) != len)
            continue;
        bool same = true;
        for (size_t j = 0; j < len; j++)
            if (tolower((unsigned char)dot[j]) != e[j])
                same = false;
        if (same)
            return true;
    }
    return false;
}

int vu_step_index(int cur, int count, int step)
{
    if (count <= 0)
        return -1;
    if (cur < 0 || cur >= count)
        return step >= 0 ? 0 : count - 1;
    int i = (cur + step) % count;
    return i < 0 ? i + count : i;
}

/* ---- attention mass ---- */

static int cmp_float_desc(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

void vu_mass_curve(const float *attn, int n, float *curve)
{
    if (n <= 0)
        return;
    double total = 0;
    for (int i = 0; i < n; i++) {
        curve[i] = attn[i] > 0 && attn[i] == attn[i] ? attn[i] : 0.0f;
        total += curve[i];
    }
    qsort(curve, (size_t)n, sizeof *curve, cmp_float_desc);
    double acc = 0;
    for (int i = 0; i < n; i++) {
        acc += curve[i];
        curve[i] = total > 0 ? (float)(acc / total) : (float)(i + 1) / (float)n;
    }
    curve[n - 1] = 1.0f;
}

int vu_mass_count(const float *curve, int n, double mass)
{
    for (int i = 0; i < n; i++)
        if (curve[i] >= mass - 1e-7)
            return i + 1;
    return n;
}

/* ---- model options ---- */

bool vu_heads_hint(const char *msg, char *buf, size_t len)
{
    int heads = 0, width = 0;
    const char *which = NULL;
    const char *p;
    if (len)
        buf[0] = 0;
    if (!msg || !len)
        return false;
    if ((p = strstr(msg, "encoder heads ")) && sscanf(p, "encoder heads %d do not divide the width %d",
                                                     &heads, &width) == 2)
        which = "Encoder";
    else if ((p = strstr(msg, "decoder heads ")) &&
             sscanf(p, "decoder heads %d do not divide the width %d", &heads, &width) == 2)
        which = "Decoder";
    else if ((p = strstr(msg, "cannot infer the encoder heads: width ")) &&
             sscanf(p, "cannot infer the encoder heads: width %d", &width) == 1)
        which = "Encoder";
    if (!which || width < 1 || width > 1 << 20)
        return false;
    char list[256] = "";
    size_t used = 0;
    int below = 0, above = 0, count = 0, last = 0;
    for (int h = 1; h <= width && h <= 64; h++) {
        if (width % h)
            continue;
        if (count++ && used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, ", ");
        if (used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%d", h);
        last = h;
        if (h <= heads)
            below = h;
        if (h >= heads && !above)
            above = h;
    }
    /* "a, b or c": the last separator reads "or" */
    char *comma = count > 1 ? strrchr(list, ',') : NULL;
    char tail[32] = "";
    if (comma) {
        snprintf(tail, sizeof tail, " or %d", last);
        *comma = 0;
    }
    char nearest[64] = "";
    if (heads > 0 && below && above && below != above)
        snprintf(nearest, sizeof nearest, "; try %d or %d", below, above);
    else if (heads > 0 && (below || above))
        snprintf(nearest, sizeof nearest, "; try %d", above ? above : below);
    else if (heads <= 0 && width % 64 != 0)
        snprintf(nearest, sizeof nearest, "; ViT-S uses 6, ViT-B 12 (width / 64)");
    snprintf(buf, len, "%s heads must divide the width %d: %s%s%s (Model…, %s heads).", which,
             width, list, tail, nearest, which);
    return true;
}

/* ---- export numbering ---- */

int vu_export_index(const double *share, const bool *visible, int g, int32_t *index)
{
    int m = 0;
    for (int i = 0; i < g; i++)
        index[i] = (!visible || visible[i]) && share[i] > 0 ? m++ : -1;
    return m;
}

int vu_compact_labels(int32_t *labels, size_t n, int g, const bool *visible,
                      int32_t background_label, int32_t *index)
{
    if (g <= 0)
        return 0;
    double *count = calloc((size_t)g, sizeof *count);
    int32_t *map = index ? index : malloc((size_t)g * sizeof *map);
    if (!count || !map) {
        free(count);
        if (!index)
            free(map);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < g)
            count[labels[i]] += 1;
    const int m = vu_export_index(count, visible, g, map);
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < g)
            labels[i] = map[labels[i]] >= 0 ? map[labels[i]] : background_label;
    free(count);
    if (!index)
        free(map);
    return m;
}

/* ---------------------------------------------------------------- install location */

bool vu_exe_in_dir(const char *exe_path, const char *dir)
{
    if (!exe_path || !dir || !*exe_path || !*dir)
        return false;
    bool same = false;
    char *exe = realpath(exe_path, NULL), *rdir = realpath(dir, NULL);
    if (exe && rdir) {
        char *slash = strrchr(exe, '/');
        if (slash) {
            /* the executable's folder: "/" for "/x" */
            if (slash == exe)
                slash[1] = 0;
            else
                *slash = 0;
            same = !strcmp(exe, rdir);
        }
    }
    free(exe);
    free(rdir);
    return same;
}

const char *vu_start_folder(const char *remembered, const char *fallback)
{
    struct stat st;
    if (remembered && *remembered && stat(remembered, &st) == 0 && S_ISDIR(st.st_mode))
        return remembered;
    return fallback;
}
