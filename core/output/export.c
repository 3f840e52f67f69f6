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

#include "dataset.h"
#include "image.h"
#include "jsonw.h"
#include "merge.h"
#include "polygon.h"

#define LABELME_VERSION "5.2.1"

void as_export_options_default(AsExportOptions *o)
{
    o->formats = AS_EXPORT_ALL;
    o->polygon_epsilon = AS_EXPORT_POLYGON_EPSILON;
    o->generator = NULL;
    o->model = NULL;
    o->untrained = false;
    o->settings = NULL;
    o->shard_index = o->shard_count = 0;
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

int as_export_check_labels(const char *what, const int32_t *labels, int w, int h, int ngroups,
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

int as_export_mkdirs(const char *path, AsError *err)
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

int as_export_voc_encode(const char *name, const uint8_t *cls, int w, int h,
                         const uint8_t palette[768], uint8_t **out, size_t *len, AsError *err)
{
    return as_png_encode_indexed(name, cls, w, h, palette, 256, out, len, err);
}

int as_export_labelme_encode(const char *name, const char *image_path_rel, const int32_t *labels,
                             int w, int h, int nlabels, const char *const *label_names,
                             double epsilon, bool untrained, char **out, size_t *len,
                             AsError *err)
{
    *out = NULL;
    *len = 0;
    AsPolygonSet ps;
    if (as_trace_polygons(labels, w, h, nlabels, epsilon, &ps, err))
        return as_error_prefix(err, "%s: ", name);
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
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "label");
        as_jw_string(&jw, label_names[p->label]);
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
    int rc = as_jw_finish(&jw, name, err);
    if (rc == 0) { /* the text plus a final newline */
        char *t = realloc(jw.buf, jw.len + 2);
        if (!t) {
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", name);
        } else {
            t[jw.len] = '\n';
            t[jw.len + 1] = '\0';
            *out = t;
            *len = jw.len + 1;
            jw.buf = NULL;
        }
    }
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

/* ---- the one-call exporter, on top of the dataset ---- */
struct AsExporter {
    AsDataset *d;
    char **names; /* added in this call */
    size_t n, cap;
    long last;    /* index of the last added image, -1 none */
};

int as_exporter_open(const char *outdir, const AsExportOptions *o, AsExporter **out,
                     AsError *err)
{
    *out = NULL;
    AsExporter *x = calloc(1, sizeof *x);
    if (!x)
        return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
    x->last = -1;
    int rc = as_dataset_open(outdir && *outdir ? outdir : ".", o, &x->d, err);
    if (rc) {
        free(x);
        return rc;
    }
    *out = x;
    return 0;
}

int as_exporter_add(AsExporter *x, const char *name, const char *image_path,
                    const int32_t *labels, int w, int h, int ngroups, AsError *err)
{
    for (size_t i = 0; name && i < x->n; i++)
        if (!strcmp(x->names[i], name)) {
            long k = as_dataset_find(x->d, name);
            AsDatasetImage im = { 0 };
            if (k >= 0)
                as_dataset_image(x->d, (size_t)k, &im);
            return as_error_set(err, AS_ERR_ARG,
                                "%s: another image of this call (%s) is already exported as '%s'",
                                image_path ? image_path : name, im.file ? im.file : name, name);
        }
    if (x->n == x->cap) {
        size_t nc = x->cap ? 2 * x->cap : 16;
        char **nn = realloc(x->names, nc * sizeof *nn);
        if (!nn)
            return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
        x->names = nn;
        x->cap = nc;
    }
    int rc = as_dataset_add(x->d, name, image_path, labels, w, h, ngroups, NULL, 0, 0, err);
    if (rc)
        return rc;
    x->names[x->n] = strdup(name);
    if (!x->names[x->n])
        return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
    x->n++;
    x->last = as_dataset_find(x->d, name);
    return 0;
}

void as_exporter_set_input_size(AsExporter *x, int w, int h)
{
    if (x && x->last >= 0)
        as_dataset_set_input_size(x->d, (size_t)x->last, w, h);
}

int as_exporter_finish(AsExporter *x, AsError *err)
{
    return as_dataset_commit(x->d, err);
}

void as_exporter_free(AsExporter *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n; i++)
        free(x->names[i]);
    free(x->names);
    as_dataset_free(x->d);
    free(x);
}
