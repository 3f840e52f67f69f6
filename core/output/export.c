/* export: see export.h */
#include "export.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "image.h"
#include "jsonw.h"
#include "merge.h"
#include "polygon.h"
#include "rle.h"

#define LABELME_VERSION "5.2.1"

void as_export_options_default(AsExportOptions *o)
{
    o->formats = AS_EXPORT_ALL;
    o->polygon_epsilon = AS_EXPORT_POLYGON_EPSILON;
    o->generator = NULL;
    o->model = NULL;
    o->untrained = false;
}

int as_export_parse_formats(const char *list, unsigned *formats, AsError *err)
{
    unsigned f = 0;
    const char *p = list ? list : "";
    if (!*p)
        return as_error_set(err, AS_ERR_ARG, "empty format list (choose from voc,masks,coco,labelme)");
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 3 && !strncmp(p, "voc", 3))
            f |= AS_EXPORT_VOC;
        else if (n == 5 && !strncmp(p, "masks", 5))
            f |= AS_EXPORT_MASKS;
        else if (n == 4 && !strncmp(p, "coco", 4))
            f |= AS_EXPORT_COCO;
        else if (n == 7 && !strncmp(p, "labelme", 7))
            f |= AS_EXPORT_LABELME;
        else if (n == 3 && !strncmp(p, "all", 3))
            f |= AS_EXPORT_ALL;
        else
            return as_error_set(err, AS_ERR_ARG,
                                "unknown export format '%.*s' (choose from voc,masks,coco,labelme)",
                                (int)(n > 64 ? 64 : n), p);
        p += n;
        if (*p == ',')
            p++;
    }
    *formats = f;
    return 0;
}

void as_export_label_name(int group, char *buf, size_t len)
{
    snprintf(buf, len, "prototype_%d", group);
}

static int check_labels(const char *what, const int32_t *labels, int w, int h, int ngroups,
                        AsError *err)
{
    if (!labels || w < 1 || h < 1 || (int64_t)w * h > AS_IMAGE_MAX_PIXELS)
        return as_error_set(err, AS_ERR_ARG, "%s: bad label map size %dx%d", what, w, h);
    if (ngroups < 1 || ngroups > AS_MAX_GROUPS)
        return as_error_set(err, AS_ERR_ARG, "%s: %d groups (1..%d can be exported)", what,
                            ngroups, AS_MAX_GROUPS);
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++)
        if ((labels[i] < 0 || labels[i] >= ngroups) && labels[i] != AS_LABEL_BACKGROUND)
            return as_error_set(err, AS_ERR_ARG, "%s: label %d at pixel (%zu,%zu) is not a group",
                                what, (int)labels[i], i % (size_t)w, i / (size_t)w);
    return 0;
}

static int mkdir_p(const char *path, AsError *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return as_error_set(err, AS_ERR_ARG, "%s: path too long", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return as_error_set(err, AS_ERR_IO, "%s: cannot create folder: %s", tmp,
                                strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        return as_error_set(err, AS_ERR_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
        return as_error_set(err, AS_ERR_IO, "%s: not a folder", tmp);
    return 0;
}

int as_export_voc_png(const char *path, const int32_t *labels, int w, int h, int ngroups,
                      AsError *err)
{
    int rc = check_labels(path, labels, w, h, ngroups, err);
    if (rc)
        return rc;
    size_t n = (size_t)w * h;
    uint8_t *idx = malloc(n);
    if (!idx)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++)
        idx[i] = labels[i] == AS_LABEL_BACKGROUND ? 0 : (uint8_t)(labels[i] + 1);
    uint8_t pal[768];
    as_voc_palette(pal);
    rc = as_png_write_indexed(path, idx, w, h, pal, 256, err);
    free(idx);
    return rc;
}

int as_export_voc_labelmap(const char *path, int ngroups, AsError *err)
{
    if (ngroups < 1 || ngroups > AS_MAX_GROUPS)
        return as_error_set(err, AS_ERR_ARG, "%s: %d groups (1..%d can be exported)", path,
                            ngroups, AS_MAX_GROUPS);
    uint8_t pal[768];
    as_voc_palette(pal);
    char *t = malloc(64 + (size_t)ngroups * 64);
    if (!t)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
    size_t n = (size_t)sprintf(t, "# label:color_rgb:parts:actions\nbackground:%d,%d,%d::\n",
                               pal[0], pal[1], pal[2]);
    for (int g = 0; g < ngroups; g++) {
        char name[32];
        as_export_label_name(g, name, sizeof name);
        const uint8_t *c = pal + 3 * (g + 1);
        n += (size_t)sprintf(t + n, "%s:%d,%d,%d::\n", name, c[0], c[1], c[2]);
    }
    int rc = as_atomic_write_file(path, t, n, err);
    free(t);
    return rc;
}

int as_export_masks(const char *dir, const int32_t *labels, int w, int h, int ngroups,
                    AsError *err)
{
    int rc = check_labels(dir, labels, w, h, ngroups, err);
    if (rc)
        return rc;
    if ((rc = mkdir_p(dir, err)))
        return rc;
    size_t n = (size_t)w * h;
    uint8_t *m = malloc(n);
    if (!m)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", dir);
    rc = 0;
    for (int g = 0; g < ngroups && rc == 0; g++) {
        for (size_t i = 0; i < n; i++)
            m[i] = labels[i] == g ? 255 : 0;
        char path[PATH_MAX], name[32];
        as_export_label_name(g, name, sizeof name);
        if (snprintf(path, sizeof path, "%s/%s.png", dir, name) >= (int)sizeof path)
            rc = as_error_set(err, AS_ERR_ARG, "%s: path too long", dir);
        else
            rc = as_png_write_gray(path, m, w, h, err);
    }
    free(m);
    return rc;
}

int as_export_labelme(const char *path, const char *image_path_rel, const int32_t *labels, int w,
                      int h, int ngroups, double epsilon, bool untrained, AsError *err)
{
    int rc = check_labels(path, labels, w, h, ngroups, err);
    if (rc)
        return rc;
    AsPolygonSet ps;
    if (as_trace_polygons(labels, w, h, ngroups, epsilon, &ps, err))
        return as_error_prefix(err, "%s: ", path);
    AsJsonW jw;
    as_jw_init(&jw, 2);
    as_jw_object_begin(&jw);
    as_jw_key(&jw, "version");
    as_jw_string(&jw, LABELME_VERSION);
    as_jw_key(&jw, "flags");
    as_jw_object_begin(&jw);
    if (untrained) { /* labelme shows image-level flags as check boxes */
        as_jw_key(&jw, "alignseg_untrained_model");
        as_jw_bool(&jw, true);
    }
    as_jw_object_end(&jw);
    as_jw_key(&jw, "shapes");
    as_jw_array_begin(&jw);
    for (size_t k = 0; k < ps.count; k++) {
        const AsPolygon *p = &ps.items[k];
        char name[32];
        as_export_label_name(p->label, name, sizeof name);
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "label");
        as_jw_string(&jw, name);
        as_jw_key(&jw, "points");
        as_jw_array_begin(&jw);
        for (size_t i = 0; i < p->n; i++) {
            as_jw_array_begin_inline(&jw);
            as_jw_int(&jw, p->xy[2 * i]);
            as_jw_int(&jw, p->xy[2 * i + 1]);
            as_jw_array_end(&jw);
        }
        as_jw_array_end(&jw);
        as_jw_key(&jw, "group_id");
        as_jw_null(&jw);
        as_jw_key(&jw, "description");
        as_jw_string(&jw, "");
        as_jw_key(&jw, "shape_type");
        as_jw_string(&jw, "polygon");
        as_jw_key(&jw, "flags");
        as_jw_object_begin(&jw);
        as_jw_object_end(&jw);
        as_jw_object_end(&jw);
    }
    as_jw_array_end(&jw);
    as_jw_key(&jw, "imagePath");
    as_jw_string(&jw, image_path_rel ? image_path_rel : "");
    as_jw_key(&jw, "imageData");
    as_jw_null(&jw);
    as_jw_key(&jw, "imageHeight");
    as_jw_int(&jw, h);
    as_jw_key(&jw, "imageWidth");
    as_jw_int(&jw, w);
    as_jw_object_end(&jw);
    as_polygon_set_free(&ps);
    rc = as_jw_write_file(&jw, path, err);
    as_jw_free(&jw);
    return rc;
}

/* ---- relative paths ---- */
static void resolve(const char *p, char *out, size_t len)
{
    char buf[PATH_MAX];
    if (realpath(p, buf)) {
        snprintf(out, len, "%s", buf);
        return;
    }
    if (p[0] == '/') {
        snprintf(out, len, "%s", p);
        return;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd) || snprintf(out, len, "%s/%s", cwd, p) >= (int)len)
        snprintf(out, len, "%s", p);
}

int as_relative_path(const char *from_dir, const char *to, char *buf, size_t len, AsError *err)
{
    char a[PATH_MAX], b[PATH_MAX];
    resolve(from_dir, a, sizeof a);
    resolve(to, b, sizeof b);
    /* common prefix on whole components */
    size_t i = 0, last = 0;
    while (a[i] && b[i] && a[i] == b[i]) {
        if (a[i] == '/')
            last = i;
        i++;
    }
    if ((a[i] == '\0' && b[i] == '/') || (a[i] == '\0' && b[i] == '\0'))
        last = i;
    else if (a[i] == '/' && b[i] == '\0')
        last = i;
    size_t o = 0;
    buf[0] = '\0';
    /* one ".." per remaining component of a */
    for (const char *p = a + last; *p; p++) {
        if (*p == '/' && p[1] != '\0') {
            int n = snprintf(buf + o, len - o, "../");
            if (n < 0 || (size_t)n >= len - o)
                return as_error_set(err, AS_ERR_ARG, "%s: relative path too long", to);
            o += (size_t)n;
        }
    }
    const char *rest = b + last;
    while (*rest == '/')
        rest++;
    int n = snprintf(buf + o, len - o, "%s", rest);
    if (n < 0 || (size_t)n >= len - o)
        return as_error_set(err, AS_ERR_ARG, "%s: relative path too long", to);
    return 0;
}

/* ---- the exporter ---- */
typedef struct {
    char *name;
    char *file;
    int w, h;
    int in_w, in_h; /* model input size, 0 = not given */
} ExpImage;

struct AsExporter {
    char *outdir;
    AsExportOptions opt;
    ExpImage *images;
    size_t nimages, capimages;
    int max_groups;
    /* COCO annotations, each already a compact JSON object, back to back in
     * ann; annoff[i] is where annotation i starts (annoff[nann] = annlen) */
    char *ann;
    size_t annlen, anncap;
    size_t *annoff;
    size_t nann, capann;
    int64_t next_ann_id;
};

static int sub_path(const AsExporter *x, char *out, size_t len, AsError *err, const char *fmt,
                    const char *a, const char *b)
{
    int n = snprintf(out, len, fmt, x->outdir, a, b);
    if (n < 0 || (size_t)n >= len)
        return as_error_set(err, AS_ERR_ARG, "%s: output path too long", x->outdir);
    return 0;
}

int as_exporter_open(const char *outdir, const AsExportOptions *o, AsExporter **out,
                     AsError *err)
{
    *out = NULL;
    AsExporter *x = calloc(1, sizeof *x);
    if (!x)
        return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
    if (o)
        x->opt = *o;
    else
        as_export_options_default(&x->opt);
    if (!x->opt.formats)
        x->opt.formats = AS_EXPORT_ALL;
    x->outdir = strdup(outdir && *outdir ? outdir : ".");
    x->next_ann_id = 1;
    if (!x->outdir) {
        free(x);
        return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
    }
    static const struct {
        unsigned f;
        const char *sub;
    } dirs[] = { { AS_EXPORT_VOC, "voc/SegmentationClass" },
                 { AS_EXPORT_VOC, "voc/ImageSets/Segmentation" },
                 { AS_EXPORT_MASKS, "masks" },
                 { AS_EXPORT_COCO, "coco" },
                 { AS_EXPORT_LABELME, "labelme" } };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (!(x->opt.formats & dirs[i].f))
            continue;
        char p[PATH_MAX];
        int rc = sub_path(x, p, sizeof p, err, "%s/%s%s", dirs[i].sub, "");
        if (!rc)
            rc = mkdir_p(p, err);
        if (rc) {
            as_exporter_free(x);
            return rc;
        }
    }
    *out = x;
    return 0;
}

static bool ann_append(AsExporter *x, const char *s, size_t n)
{
    if (x->annlen + n + 1 > x->anncap) {
        size_t nc = x->anncap ? x->anncap : 4096;
        while (nc < x->annlen + n + 1)
            nc *= 2;
        char *nb = realloc(x->ann, nc);
        if (!nb)
            return false;
        x->ann = nb;
        x->anncap = nc;
    }
    memcpy(x->ann + x->annlen, s, n);
    x->annlen += n;
    x->ann[x->annlen] = '\0';
    return true;
}

static int coco_add(AsExporter *x, int64_t image_id, const int32_t *labels, int w, int h,
                    int ngroups, AsError *err)
{
    for (int g = 0; g < ngroups; g++) {
        AsRle r;
        int rc = as_rle_encode_labels(labels, w, h, g, &r, err);
        if (rc)
            return rc;
        uint64_t area = as_rle_area(&r);
        if (area == 0) {
            as_rle_free(&r);
            continue;
        }
        double bb[4];
        as_rle_bbox(&r, bb);
        char *counts = as_rle_to_string(&r);
        as_rle_free(&r);
        if (!counts)
            return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
        AsJsonW jw;
        as_jw_init(&jw, 0);
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "id");
        as_jw_int(&jw, x->next_ann_id++);
        as_jw_key(&jw, "image_id");
        as_jw_int(&jw, image_id);
        as_jw_key(&jw, "category_id");
        as_jw_int(&jw, g + 1);
        as_jw_key(&jw, "segmentation");
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "size");
        as_jw_array_begin(&jw);
        as_jw_int(&jw, h);
        as_jw_int(&jw, w);
        as_jw_array_end(&jw);
        as_jw_key(&jw, "counts");
        as_jw_string(&jw, counts);
        as_jw_object_end(&jw);
        as_jw_key(&jw, "area");
        as_jw_int(&jw, (int64_t)area);
        as_jw_key(&jw, "bbox");
        as_jw_array_begin(&jw);
        for (int k = 0; k < 4; k++)
            as_jw_double(&jw, bb[k]);
        as_jw_array_end(&jw);
        as_jw_key(&jw, "iscrowd");
        as_jw_int(&jw, 0);
        as_jw_object_end(&jw);
        free(counts);
        bool ok = as_jw_finish(&jw, "annotations.json", err) == 0;
        if (ok && x->nann + 2 > x->capann) {
            size_t nc = x->capann ? x->capann * 2 : 64;
            size_t *no = realloc(x->annoff, nc * sizeof *no);
            if (no) {
                x->annoff = no;
                x->capann = nc;
            } else {
                ok = false;
            }
        }
        if (ok)
            ok = ann_append(x, jw.buf, jw.len);
        if (ok) {
            x->annoff[x->nann++] = x->annlen - jw.len;
            x->annoff[x->nann] = x->annlen;
        }
        as_jw_free(&jw);
        if (!ok)
            return as_error_set(err, AS_ERR_NOMEM, "export: out of memory for COCO annotations");
    }
    return 0;
}

int as_exporter_add(AsExporter *x, const char *name, const char *image_path,
                    const int32_t *labels, int w, int h, int ngroups, AsError *err)
{
    if (!name || !*name || strchr(name, '/'))
        return as_error_set(err, AS_ERR_ARG, "%s: bad export name '%s'",
                            image_path ? image_path : "image", name ? name : "");
    int rc = check_labels(name, labels, w, h, ngroups, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < x->nimages; i++)
        if (!strcmp(x->images[i].name, name))
            return as_error_set(err, AS_ERR_ARG,
                                "%s: another image of this call (%s) is already exported as '%s'",
                                image_path ? image_path : name, x->images[i].file, name);
    char p[PATH_MAX];
    rc = 0;
    const unsigned f = x->opt.formats;
    if (f & AS_EXPORT_VOC) {
        rc = sub_path(x, p, sizeof p, err, "%s/voc/SegmentationClass/%s%s", name, ".png");
        if (!rc)
            rc = as_export_voc_png(p, labels, w, h, ngroups, err);
        if (rc)
            return rc;
    }
    if (f & AS_EXPORT_MASKS) {
        rc = sub_path(x, p, sizeof p, err, "%s/masks/%s%s", name, "");
        if (!rc)
            rc = as_export_masks(p, labels, w, h, ngroups, err);
        if (rc)
            return rc;
    }
    if (f & AS_EXPORT_LABELME) {
        char dir[PATH_MAX], rel[PATH_MAX];
        rc = sub_path(x, dir, sizeof dir, err, "%s/%s%s", "labelme", "");
        if (!rc)
            rc = sub_path(x, p, sizeof p, err, "%s/labelme/%s%s", name, ".json");
        if (!rc)
            rc = as_relative_path(dir, image_path ? image_path : name, rel, sizeof rel, err);
        if (!rc)
            rc = as_export_labelme(p, rel, labels, w, h, ngroups, x->opt.polygon_epsilon,
                                   x->opt.untrained, err);
        if (rc)
            return rc;
    }
    int64_t image_id = (int64_t)x->nimages + 1;
    if (f & AS_EXPORT_COCO) {
        rc = coco_add(x, image_id, labels, w, h, ngroups, err);
        if (rc)
            return rc;
    }
    if (x->nimages == x->capimages) {
        size_t nc = x->capimages ? x->capimages * 2 : 16;
        ExpImage *ni = realloc(x->images, nc * sizeof *ni);
        if (!ni)
            return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
        x->images = ni;
        x->capimages = nc;
    }
    const char *base = image_path ? strrchr(image_path, '/') : NULL;
    base = base ? base + 1 : (image_path ? image_path : name);
    ExpImage *im = &x->images[x->nimages];
    im->name = strdup(name);
    im->file = strdup(base);
    im->w = w;
    im->h = h;
    im->in_w = im->in_h = 0;
    if (!im->name || !im->file) {
        free(im->name);
        free(im->file);
        return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
    }
    x->nimages++;
    if (ngroups > x->max_groups)
        x->max_groups = ngroups;
    return 0;
}

static int write_coco(AsExporter *x, const char *path, AsError *err)
{
    AsJsonW jw;
    as_jw_init(&jw, 2);
    as_jw_object_begin(&jw);
    as_jw_key(&jw, "info");
    as_jw_object_begin(&jw);
    as_jw_key(&jw, "description");
    as_jw_string(&jw, x->opt.untrained
                          ? "AlignSeg prototype segmentation exported by alignseg; UNTRAINED "
                            "model (random weights): the labels mean nothing"
                          : "AlignSeg prototype segmentation exported by alignseg");
    if (x->opt.model) {
        as_jw_key(&jw, "alignseg_model");
        as_jw_string(&jw, x->opt.model);
    }
    as_jw_key(&jw, "alignseg_untrained");
    as_jw_bool(&jw, x->opt.untrained);
    as_jw_object_end(&jw);
    as_jw_key(&jw, "licenses");
    as_jw_array_begin(&jw);
    as_jw_array_end(&jw);
    as_jw_key(&jw, "images");
    as_jw_array_begin(&jw);
    for (size_t i = 0; i < x->nimages; i++) {
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "id");
        as_jw_int(&jw, (int64_t)i + 1);
        as_jw_key(&jw, "file_name");
        as_jw_string(&jw, x->images[i].file);
        as_jw_key(&jw, "width");
        as_jw_int(&jw, x->images[i].w);
        as_jw_key(&jw, "height");
        as_jw_int(&jw, x->images[i].h);
        as_jw_object_end(&jw);
    }
    as_jw_array_end(&jw);
    as_jw_key(&jw, "categories");
    as_jw_array_begin(&jw);
    for (int g = 0; g < x->max_groups; g++) {
        char name[32];
        as_export_label_name(g, name, sizeof name);
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "id");
        as_jw_int(&jw, g + 1);
        as_jw_key(&jw, "name");
        as_jw_string(&jw, name);
        as_jw_key(&jw, "supercategory");
        as_jw_string(&jw, "prototype");
        as_jw_object_end(&jw);
    }
    as_jw_array_end(&jw);
    as_jw_key(&jw, "annotations");
    as_jw_array_begin(&jw);
    for (size_t i = 0; i < x->nann; i++)
        as_jw_raw_value(&jw, x->ann + x->annoff[i], x->annoff[i + 1] - x->annoff[i]);
    as_jw_array_end(&jw);
    as_jw_object_end(&jw);
    int rc = as_jw_write_file(&jw, path, err);
    as_jw_free(&jw);
    return rc;
}

/* OUTDIR/alignseg-export.json: where the labels came from. */
static int write_provenance(const AsExporter *x, const char *path, AsError *err)
{
    static const struct { unsigned bit; const char *name; } fmts[] = {
        { AS_EXPORT_VOC, "voc" }, { AS_EXPORT_MASKS, "masks" },
        { AS_EXPORT_COCO, "coco" }, { AS_EXPORT_LABELME, "labelme" } };
    AsJsonW jw;
    as_jw_init(&jw, 2);
    as_jw_object_begin(&jw);
    as_jw_key(&jw, "generator");
    as_jw_string(&jw, x->opt.generator ? x->opt.generator : "alignseg");
    as_jw_key(&jw, "model");
    if (x->opt.model)
        as_jw_string(&jw, x->opt.model);
    else
        as_jw_null(&jw);
    as_jw_key(&jw, "untrained");
    as_jw_bool(&jw, x->opt.untrained);
    if (x->opt.untrained) {
        as_jw_key(&jw, "warning");
        as_jw_string(&jw, "the model's weights are a random initialisation: these labels mean "
                          "nothing and are for trying the tools only");
    }
    as_jw_key(&jw, "groups");
    as_jw_int(&jw, x->max_groups);
    as_jw_key(&jw, "formats");
    as_jw_array_begin_inline(&jw);
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
        if (x->opt.formats & fmts[i].bit)
            as_jw_string(&jw, fmts[i].name);
    as_jw_array_end(&jw);
    as_jw_key(&jw, "images");
    as_jw_array_begin(&jw);
    for (size_t i = 0; i < x->nimages; i++) {
        const ExpImage *im = &x->images[i];
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "file");
        as_jw_string(&jw, im->file);
        as_jw_key(&jw, "size");
        as_jw_array_begin_inline(&jw);
        as_jw_int(&jw, im->w);
        as_jw_int(&jw, im->h);
        as_jw_array_end(&jw);
        as_jw_key(&jw, "input_size");
        if (im->in_w > 0 && im->in_h > 0) {
            as_jw_array_begin_inline(&jw);
            as_jw_int(&jw, im->in_w);
            as_jw_int(&jw, im->in_h);
            as_jw_array_end(&jw);
        } else {
            as_jw_null(&jw);
        }
        as_jw_object_end(&jw);
    }
    as_jw_array_end(&jw);
    as_jw_object_end(&jw);
    int rc = as_jw_write_file(&jw, path, err);
    as_jw_free(&jw);
    return rc;
}

void as_exporter_set_input_size(AsExporter *x, int w, int h)
{
    if (x && x->nimages > 0) {
        x->images[x->nimages - 1].in_w = w;
        x->images[x->nimages - 1].in_h = h;
    }
}

int as_exporter_finish(AsExporter *x, AsError *err)
{
    char p[PATH_MAX];
    int rc, groups = x->max_groups > 0 ? x->max_groups : 1;
    if (x->opt.formats & AS_EXPORT_VOC) {
        if ((rc = sub_path(x, p, sizeof p, err, "%s/%s%s", "voc/labelmap.txt", "")) ||
            (rc = as_export_voc_labelmap(p, groups, err)))
            return rc;
        if ((rc = sub_path(x, p, sizeof p, err, "%s/%s%s",
                           "voc/ImageSets/Segmentation/default.txt", "")))
            return rc;
        size_t n = 0;
        for (size_t i = 0; i < x->nimages; i++)
            n += strlen(x->images[i].name) + 1;
        char *t = malloc(n + 1), *q = t;
        if (!t)
            return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", p);
        for (size_t i = 0; i < x->nimages; i++)
            q += sprintf(q, "%s\n", x->images[i].name);
        rc = as_atomic_write_file(p, t, n, err);
        free(t);
        if (rc)
            return rc;
    }
    if (x->opt.formats & AS_EXPORT_COCO) {
        if ((rc = sub_path(x, p, sizeof p, err, "%s/%s%s", "coco/annotations.json", "")) ||
            (rc = write_coco(x, p, err)))
            return rc;
    }
    if ((rc = sub_path(x, p, sizeof p, err, "%s/%s%s", "alignseg-export.json", "")) ||
        (rc = write_provenance(x, p, err)))
        return rc;
    return 0;
}

void as_exporter_free(AsExporter *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->nimages; i++) {
        free(x->images[i].name);
        free(x->images[i].file);
    }
    free(x->images);
    free(x->ann);
    free(x->annoff);
    free(x->outdir);
    free(x);
}
