/* dataset: see dataset.h */
#include "dataset.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic.h"
#include "file.h"
#include "image.h"
#include "json.h"
#include "jsonw.h"
#include "merge.h"
#include "rle.h"

#include "dataset_impl.h"

int as_dataset_check_class_name(const char *name, AsError *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= AS_DATASET_NAME_MAX || name[0] == '.')
        return as_error_set(err, AS_ERR_ARG,
                            "class name '%.80s': 1..%d bytes, not starting with '.'",
                            name ? name : "", AS_DATASET_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == ':' || c == ',' || c == '\\')
            return as_error_set(err, AS_ERR_ARG,
                                "class name '%.80s': no '/', '\\', ':', ',' or control characters",
                                name);
    }
    return 0;
}

static void img_free(Img *m)
{
    free(m->name);
    free(m->file);
    free(m->model);
    free(m->coco);
    memset(m, 0, sizeof *m);
}

static char *dupe(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- reading the index ---- */

/* Re-encode a parsed JSON value exactly as our writer wrote it. */
static void jw_value(AsJsonW *w, const AsJson *v)
{
    switch (v->type) {
    case AS_JSON_NULL: as_jw_null(w); break;
    case AS_JSON_BOOL: as_jw_bool(w, v->b); break;
    case AS_JSON_NUMBER:
        if (v->is_int)
            as_jw_int(w, v->i);
        else
            as_jw_double(w, v->num);
        break;
    case AS_JSON_STRING: as_jw_string(w, v->str); break;
    case AS_JSON_ARRAY:
        as_jw_array_begin(w);
        for (size_t i = 0; i < v->count; i++)
            jw_value(w, v->items[i]);
        as_jw_array_end(w);
        break;
    case AS_JSON_OBJECT:
        as_jw_object_begin(w);
        for (size_t i = 0; i < v->count; i++) {
            as_jw_key(w, v->keys[i]);
            jw_value(w, v->items[i]);
        }
        as_jw_object_end(w);
        break;
    }
}

static bool append_line(char **s, const char *t, size_t n)
{
    size_t old = *s ? strlen(*s) : 0;
    char *ns = realloc(*s, old + n + 2);
    if (!ns)
        return false;
    memcpy(ns + old, t, n);
    ns[old + n] = '\n';
    ns[old + n + 1] = '\0';
    *s = ns;
    return true;
}

/* a whole JSON number in [lo, hi] (what the writer stores): numbers outside
 * it are refused before any conversion to a narrower type */
static bool whole_in(const AsJson *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!v || v->type != AS_JSON_NUMBER || !v->is_int || v->i < lo || v->i > hi)
        return false;
    *out = v->i;
    return true;
}

static long find_id(const AsDataset *d, int64_t id)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->img[i].id == id)
            return (long)i;
    return -1;
}

static int read_coco_mem(AsDataset *d, const uint8_t *data, size_t len, const char *path,
                         AsError *err);

/* coco/annotations.json: keep each image's annotations (re-encoded compactly) */
static int read_coco(AsDataset *d, const char *path, AsError *err)
{
    if (access(path, F_OK) != 0)
        return d->n ? as_error_set(err, AS_ERR_FORMAT,
                                   "%s: missing, although %s/" AS_DATASET_INDEX " lists images",
                                   path, d->dir)
                    : 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int st = as_file_read_all(path, MAX_JSON_FILE, 1, &buf, &len, err);
    if (st)
        return st;
    st = read_coco_mem(d, buf, len, path, err);
    free(buf);
    return st;
}

static int read_coco_mem(AsDataset *d, const uint8_t *data, size_t len, const char *path,
                         AsError *err)
{
    AsJson *root = NULL;
    int st = as_json_parse((const char *)data, len, path, &root, err);
    if (st)
        return st;
    const AsJson *anns = as_json_get(root, "annotations");
    int rc = 0;
    if (!anns || anns->type != AS_JSON_ARRAY)
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: no annotations array", path);
    for (size_t k = 0; !rc && k < anns->count; k++) {
        const AsJson *a = anns->items[k];
        const AsJson *iid = as_json_get(a, "image_id");
        long i = iid && iid->is_int ? find_id(d, iid->i) : -1;
        if (i < 0 || a->type != AS_JSON_OBJECT) {
            rc = as_error_set(err, AS_ERR_FORMAT,
                              "%s: annotation %zu belongs to no image of the index", path, k);
            break;
        }
        AsJsonW w;
        as_jw_init(&w, 0);
        jw_value(&w, a);
        rc = as_jw_finish(&w, path, err);
        if (!rc && !append_line(&d->img[i].coco, w.buf, w.len))
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
        as_jw_free(&w);
    }
    as_json_free(root);
    return rc;
}

static int read_index_mem(AsDataset *d, const uint8_t *data, size_t len, const char *path,
                          AsError *err);

static int read_index(AsDataset *d, const char *path, AsError *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int st = as_file_read_all(path, MAX_JSON_FILE, 1, &buf, &len, err);
    if (st)
        return st;
    st = read_index_mem(d, buf, len, path, err);
    free(buf);
    return st;
}

static int read_index_mem(AsDataset *d, const uint8_t *data, size_t len, const char *path,
                          AsError *err)
{
    AsJson *j = NULL;
    int st = as_json_parse((const char *)data, len, path, &j, err);
    if (st)
        return st;
    int rc = 0;
    const AsJson *ver = as_json_get(j, "format_version");
    const AsJson *fm = as_json_get(j, "formats"), *cl = as_json_get(j, "classes"),
                 *ims = as_json_get(j, "images");
    if (!ver || as_json_num(ver, 0) != FORMAT_VERSION) {
        rc = as_error_set(err, AS_ERR_UNSUPPORTED,
                          "%s: written by another alignseg version (format_version %g, this one "
                          "reads %d): export into a new folder",
                          path, as_json_num(ver, 1), FORMAT_VERSION);
        goto out;
    }
    if (!fm || fm->type != AS_JSON_ARRAY || !cl || cl->type != AS_JSON_ARRAY || !ims ||
        ims->type != AS_JSON_ARRAY) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: formats, classes or images missing", path);
        goto out;
    }
    unsigned formats = 0;
    for (size_t i = 0; i < fm->count; i++)
        for (size_t k = 0; k < sizeof fmt_names / sizeof fmt_names[0]; k++)
            if (!strcmp(as_json_str(fm->items[i], ""), fmt_names[k].name))
                formats |= fmt_names[k].bit;
    if (formats != d->opt.formats) {
        char have[64] = "";
        for (size_t k = 0; k < sizeof fmt_names / sizeof fmt_names[0]; k++)
            if (formats & fmt_names[k].bit)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s",
                         have[0] ? "," : "", fmt_names[k].name);
        rc = as_error_set(err, AS_ERR_ARG,
                          "%s: this dataset holds the formats %s; add to it with the same "
                          "formats, or export into another folder",
                          path, have[0] ? have : "(none)");
        goto out;
    }
    for (size_t i = 0; i < cl->count && !rc; i++) {
        const AsJson *c = cl->items[i], *rgb = as_json_get(c, "color");
        double id = as_json_num(as_json_get(c, "id"), -1);
        const char *name = as_json_str(as_json_get(c, "name"), NULL);
        int64_t col[3] = { 0, 0, 0 };
        bool col_ok = rgb && rgb->type == AS_JSON_ARRAY && rgb->count == 3;
        for (int t = 0; t < 3 && col_ok; t++)
            col_ok = whole_in(rgb->items[t], 0, 255, &col[t]);
        if (id < 1 || id > AS_DATASET_MAX_CLASS || id != (int)id || !name ||
            as_dataset_check_class_name(name, err) || d->cls[(int)id].name[0] || !col_ok) {
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: class %zu is not valid", path, i);
            break;
        }
        AsClass *k = &d->cls[(int)id];
        k->id = (int)id;
        snprintf(k->name, sizeof k->name, "%s", name);
        for (int t = 0; t < 3; t++)
            k->rgb[t] = (uint8_t)col[t];
    }
    if (rc)
        goto out;
    const AsJson *sh = as_json_get(j, "shard");
    int64_t si = 0, sc = 0;
    if (sh && (!whole_in(as_json_get(sh, "count"), 1, INT32_MAX, &sc) ||
               !whole_in(as_json_get(sh, "index"), 0, sc - 1, &si))) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: \"shard\" is not an index below a count",
                          path);
        goto out;
    }
    if (si != d->opt.shard_index || sc != d->opt.shard_count) {
        char what[64];
        if (sc)
            snprintf(what, sizeof what, "shard %lld/%lld", (long long)si, (long long)sc);
        else
            snprintf(what, sizeof what, "an export made without --shard");
        rc = as_error_set(err, AS_ERR_ARG,
                          "%s: this folder holds %s; export into it with the same --shard, or "
                          "into another folder",
                          path, what);
        goto out;
    }
    if (!whole_in(as_json_get(j, "next_image_id"), 1, INT64_MAX / AS_DATASET_ANN_STRIDE + 1,
                  &d->next_id)) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: next_image_id is not a valid image id", path);
        goto out;
    }
    for (size_t i = 0; i < ims->count && !rc; i++) {
        const AsJson *m = ims->items[i], *size = as_json_get(m, "size"),
                     *in = as_json_get(m, "input_size"), *pc = as_json_get(m, "classes");
        const AsJson *jid = as_json_get(m, "id");
        int64_t sw = 0, sh_ = 0, iw = 0, ih = 0;
        const char *name = as_json_str(as_json_get(m, "name"), NULL),
                   *file = as_json_str(as_json_get(m, "file"), NULL);
        if (!jid || !jid->is_int || jid->i < 1 || jid->i >= d->next_id ||
            jid->i > INT64_MAX / AS_DATASET_ANN_STRIDE || find_id(d, jid->i) >= 0 || !name ||
            !*name || strchr(name, '/') || !file || !size || size->type != AS_JSON_ARRAY ||
            size->count != 2 || !whole_in(size->items[0], 1, AS_IMAGE_MAX_SIDE, &sw) ||
            !whole_in(size->items[1], 1, AS_IMAGE_MAX_SIDE, &sh_) ||
            (in && in->type != AS_JSON_NULL && (in->type != AS_JSON_ARRAY || in->count != 2 ||
                    !whole_in(in->items[0], 0, AS_IMAGE_MAX_SIDE, &iw) ||
                    !whole_in(in->items[1], 0, AS_IMAGE_MAX_SIDE, &ih))) ||
            !pc || pc->type != AS_JSON_ARRAY || as_dataset_find(d, name) >= 0) {
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: image %zu is not valid", path, i);
            break;
        }
        if (d->n == d->cap) {
            size_t nc = d->cap ? 2 * d->cap : 64;
            Img *ni = realloc(d->img, nc * sizeof *ni);
            if (!ni) {
                rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            d->img = ni;
            d->cap = nc;
        }
        Img *g = &d->img[d->n];
        memset(g, 0, sizeof *g);
        g->id = jid->i;
        g->name = strdup(name);
        g->file = strdup(file);
        g->model = dupe(as_json_str(as_json_get(m, "model"), NULL));
        const AsJson *ut = as_json_get(m, "untrained");
        g->untrained = ut && ut->type == AS_JSON_BOOL && ut->b;
        g->w = (int)sw;
        g->h = (int)sh_;
        g->in_w = (int)iw;
        g->in_h = (int)ih;
        d->n++;
        if (!g->name || !g->file)
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
        for (size_t k = 0; k < pc->count && !rc; k++) {
            double c = as_json_num(pc->items[k], -1);
            if (c < 1 || c > AS_DATASET_MAX_CLASS || c != (int)c || !d->cls[(int)c].name[0])
                rc = as_error_set(err, AS_ERR_FORMAT, "%s: image %zu: unknown class", path, i);
            else
                g->present[(int)c] = 1;
        }
    }
out:
    as_json_free(j);
    return rc;
}

/* ---- peeking (read only) ---- */

void as_dataset_free_names(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

int as_dataset_peek(const char *dir, AsClass tab[AS_DATASET_MAX_CLASS + 1], char ***names,
                    AsError *err)
{
    memset(tab, 0, sizeof(AsClass) * (AS_DATASET_MAX_CLASS + 1));
    if (names)
        *names = NULL;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : ".", AS_DATASET_INDEX) >=
        (int)sizeof path)
        return as_error_set(err, AS_ERR_ARG, "%s: output path too long", dir);
    if (access(path, F_OK) != 0)
        return 0; /* no dataset yet */
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = as_file_read_all(path, MAX_JSON_FILE, 1, &buf, &len, err);
    if (rc)
        return rc;
    rc = as_dataset_peek_mem(buf, len, path, tab, names, err);
    free(buf);
    return rc;
}

int as_dataset_peek_mem(const uint8_t *data, size_t len, const char *path,
                        AsClass tab[AS_DATASET_MAX_CLASS + 1], char ***names, AsError *err)
{
    memset(tab, 0, sizeof(AsClass) * (AS_DATASET_MAX_CLASS + 1));
    if (names)
        *names = NULL;
    AsJson *j = NULL;
    int rc = as_json_parse((const char *)data, len, path, &j, err);
    if (rc)
        return rc;
    const AsJson *cl = as_json_get(j, "classes"), *ims = as_json_get(j, "images");
    char **nm = NULL;
    if (!cl || cl->type != AS_JSON_ARRAY || !ims || ims->type != AS_JSON_ARRAY) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: classes or images missing", path);
        goto out;
    }
    for (size_t i = 0; i < cl->count; i++) {
        const AsJson *c = cl->items[i], *rgb = as_json_get(c, "color");
        double id = as_json_num(as_json_get(c, "id"), -1);
        const char *name = as_json_str(as_json_get(c, "name"), NULL);
        if (id < 1 || id > AS_DATASET_MAX_CLASS || id != (int)id || !name ||
            as_dataset_check_class_name(name, NULL) || tab[(int)id].name[0] || !rgb ||
            rgb->type != AS_JSON_ARRAY || rgb->count != 3) {
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: class %zu is not valid", path, i);
            goto out;
        }
        AsClass *k = &tab[(int)id];
        k->id = (int)id;
        snprintf(k->name, sizeof k->name, "%s", name);
        for (int t = 0; t < 3; t++) {
            double v = as_json_num(rgb->items[t], 0);
            k->rgb[t] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    if (names) {
        nm = calloc(ims->count + 1, sizeof *nm);
        if (!nm) {
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
            goto out;
        }
        for (size_t i = 0; i < ims->count; i++) {
            const char *n = as_json_str(as_json_get(ims->items[i], "name"), NULL);
            if (!n || !*n) {
                rc = as_error_set(err, AS_ERR_FORMAT, "%s: image %zu is not valid", path, i);
                goto out;
            }
            if (!(nm[i] = strdup(n))) {
                rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
                goto out;
            }
        }
        *names = nm;
        nm = NULL;
    }
out:
    as_dataset_free_names(nm);
    if (rc)
        memset(tab, 0, sizeof(AsClass) * (AS_DATASET_MAX_CLASS + 1));
    as_json_free(j);
    return rc;
}

int as_dataset_check_mem(const AsExportOptions *o, const uint8_t *index, size_t index_len,
                         const uint8_t *coco, size_t coco_len, const char *name, AsError *err)
{
    AsDataset *d = calloc(1, sizeof *d);
    if (!d)
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", name);
    if (o)
        d->opt = *o;
    else
        as_export_options_default(&d->opt);
    if (!d->opt.formats)
        d->opt.formats = AS_EXPORT_ALL;
    d->next_id = 1;
    int rc = read_index_mem(d, index, index_len, name, err);
    if (!rc && coco)
        rc = read_coco_mem(d, coco, coco_len, name, err);
    as_dataset_free(d);
    return rc;
}

/* ---- opening ---- */

static int sub(const AsDataset *d, char *buf, size_t len, const char *fmt, const char *a,
               const char *b, AsError *err)
{
    char rel[PATH_MAX];
    if (snprintf(rel, sizeof rel, fmt, a, b) >= (int)sizeof rel ||
        snprintf(buf, len, "%s/%s", d->dir, rel) >= (int)len)
        return as_error_set(err, AS_ERR_ARG, "%s: output path too long", d->dir);
    return 0;
}

/* Temporaries of killed runs anywhere in the dataset's folders (two levels:
 * masks/NAME/), also in folders this run will not write to. */
static void clean_tree(const char *root)
{
    static const char *const subs[] = { "voc", "voc/SegmentationClass", "voc/ImageSets/Segmentation",
                                        "coco", "labelme", "masks" };
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (snprintf(p, sizeof p, "%s/%s", root, subs[i]) >= (int)sizeof p)
            continue;
        as_atomic_clean_dir(p, false);
    }
    if (snprintf(p, sizeof p, "%s/masks", root) >= (int)sizeof p)
        return;
    DIR *dd = opendir(p);
    struct dirent *e;
    while (dd && (e = readdir(dd)) != NULL) {
        char q[PATH_MAX];
        if (e->d_name[0] == '.' || snprintf(q, sizeof q, "%s/%s", p, e->d_name) >= (int)sizeof q)
            continue;
        as_atomic_clean_dir(q, false);
    }
    if (dd)
        closedir(dd);
}

int as_dataset_open(const char *dir, const AsExportOptions *o, AsDataset **out, AsError *err)
{
    *out = NULL;
    AsDataset *d = calloc(1, sizeof *d);
    if (!d)
        return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
    if (o)
        d->opt = *o;
    else
        as_export_options_default(&d->opt);
    if (!d->opt.formats)
        d->opt.formats = AS_EXPORT_ALL;
    d->dir = strdup(dir && *dir ? dir : ".");
    d->generator = dupe(d->opt.generator ? d->opt.generator : "alignseg");
    d->model = dupe(d->opt.model);
    d->settings = dupe(d->opt.settings);
    d->next_id = 1;
    int rc = 0;
    if (!d->dir || !d->generator)
        rc = as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
    static const struct {
        unsigned f;
        const char *sub;
    } dirs[] = { { AS_EXPORT_ALL, "" },
                 { AS_EXPORT_VOC, "voc/SegmentationClass" },
                 { AS_EXPORT_VOC, "voc/ImageSets/Segmentation" },
                 { AS_EXPORT_MASKS, "masks" },
                 { AS_EXPORT_COCO, "coco" },
                 { AS_EXPORT_LABELME, "labelme" } };
    char p[PATH_MAX];
    for (size_t i = 0; !rc && i < sizeof dirs / sizeof dirs[0]; i++)
        if (d->opt.formats & dirs[i].f) {
            rc = sub(d, p, sizeof p, "%s%s", dirs[i].sub, "", err);
            if (!rc)
                rc = as_export_mkdirs(p, err);
        }
    if (!rc)
        rc = as_atomic_batch_open(d->dir, &d->batch, err); /* finishes a killed commit */
    if (!rc)
        clean_tree(d->dir);
    if (!rc && sub(d, p, sizeof p, "%s%s", AS_DATASET_INDEX, "", err) == 0 &&
        access(p, F_OK) == 0) {
        rc = read_index(d, p, err);
        if (!rc && (d->opt.formats & AS_EXPORT_COCO) &&
            sub(d, p, sizeof p, "%s%s", "coco/annotations.json", "", err) == 0)
            rc = read_coco(d, p, err);
    }
    if (rc) {
        as_dataset_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* ---- classes ---- */

int as_class_table_find(const AsClass tab[AS_DATASET_MAX_CLASS + 1], const char *name)
{
    for (int k = 1; name && k <= AS_DATASET_MAX_CLASS; k++)
        if (tab[k].name[0] && !strcmp(tab[k].name, name))
            return k;
    return 0;
}

int as_class_table_add(AsClass tab[AS_DATASET_MAX_CLASS + 1], const char *name, int want_id,
                       const uint8_t *rgb, int *id, AsError *err)
{
    *id = 0;
    if (name && !strcmp(name, "background"))
        return 0;
    int st = as_dataset_check_class_name(name, err);
    if (st)
        return st;
    int k = as_class_table_find(tab, name);
    if (k) {
        *id = k;
        return 0;
    }
    k = want_id >= 1 && want_id <= AS_DATASET_MAX_CLASS && !tab[want_id].name[0] ? want_id : 0;
    for (int t = 1; !k && t <= AS_DATASET_MAX_CLASS; t++)
        if (!tab[t].name[0])
            k = t;
    if (!k)
        return as_error_set(err, AS_ERR_ARG, "class '%s': the table has %d classes already", name,
                            AS_DATASET_MAX_CLASS);
    AsClass *c = &tab[k];
    c->id = k;
    snprintf(c->name, sizeof c->name, "%s", name);
    if (rgb) {
        memcpy(c->rgb, rgb, 3);
    } else {
        uint8_t pal[768];
        as_voc_palette(pal);
        memcpy(c->rgb, pal + 3 * k, 3);
    }
    *id = k;
    return 0;
}

int as_dataset_class(AsDataset *d, const char *name, int want_id, const uint8_t *rgb, int *id,
                     AsError *err)
{
    int st = as_class_table_add(d->cls, name, want_id, rgb, id, err);
    if (st)
        as_error_prefix(err, "%s: ", d->dir);
    return st;
}

int as_dataset_map_groups(AsDataset *d, const AsClass *tab, int ngroups, const char *const *names,
                          const bool *visible, bool hidden_ignore, int *group_class,
                          AsError *err)
{
    for (int g = 0; g < ngroups; g++) {
        const char *n = names && names[g] && names[g][0] ? names[g] : NULL;
        int rc = 0;
        group_class[g] = 0;
        if (visible && !visible[g]) {
            if (hidden_ignore) {
                /* asks for the last id when the table has none, so that
                 * prototype_<g> keeps g+1 */
                int t = tab ? as_class_table_find(tab, "ignore") : 0;
                rc = as_dataset_class(d, "ignore", t ? t : AS_DATASET_MAX_CLASS,
                                      t ? tab[t].rgb : NULL, &group_class[g], err);
            }
        } else if (n) {
            int t = tab ? as_class_table_find(tab, n) : 0;
            rc = as_dataset_class(d, n, t, t ? tab[t].rgb : NULL, &group_class[g], err);
        } else {
            group_class[g] = AS_DATASET_PROTOTYPE;
        }
        if (rc)
            return rc;
    }
    return 0;
}

const AsClass *as_dataset_classes(const AsDataset *d, size_t *n)
{
    *n = AS_DATASET_MAX_CLASS + 1;
    return d->cls;
}

size_t as_dataset_image_count(const AsDataset *d)
{
    return d->n;
}

int as_dataset_image(const AsDataset *d, size_t i, AsDatasetImage *out)
{
    if (i >= d->n)
        return AS_ERR_ARG;
    const Img *g = &d->img[i];
    out->id = g->id;
    out->name = g->name;
    out->file = g->file;
    out->w = g->w;
    out->h = g->h;
    out->in_w = g->in_w;
    out->in_h = g->in_h;
    return 0;
}

long as_dataset_find(const AsDataset *d, const char *name)
{
    for (size_t i = 0; name && i < d->n; i++)
        if (!strcmp(d->img[i].name, name))
            return (long)i;
    return -1;
}

void as_dataset_set_input_size(AsDataset *d, size_t i, int in_w, int in_h)
{
    if (i < d->n) {
        d->img[i].in_w = in_w;
        d->img[i].in_h = in_h;
    }
}

size_t as_dataset_pending(const AsDataset *d)
{
    return d->pending;
}

/* ---- adding an image ---- */

int dataset_put(AsDataset *d, const char *rel, const void *data, size_t len, AsError *err)
{
    return as_atomic_batch_put(d->batch, rel, data, len, err);
}

static int coco_annotations(const Img *g, const int32_t *clsmap, char **out, AsError *err)
{
    for (int c = 1; c <= AS_DATASET_MAX_CLASS; c++) {
        if (!g->present[c])
            continue;
        AsRle r;
        int st = as_rle_encode_labels(clsmap, g->w, g->h, c, &r, err);
        if (st)
            return st;
        double bb[4];
        as_rle_bbox(&r, bb);
        uint64_t area = as_rle_area(&r);
        char *counts = as_rle_to_string(&r);
        as_rle_free(&r);
        if (!counts)
            return as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
        AsJsonW jw;
        as_jw_init(&jw, 0);
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "id");
        as_jw_int(&jw, g->id * AS_DATASET_ANN_STRIDE + c);
        as_jw_key(&jw, "image_id");
        as_jw_int(&jw, g->id);
        as_jw_key(&jw, "category_id");
        as_jw_int(&jw, c);
        as_jw_key(&jw, "segmentation");
        as_jw_object_begin(&jw);
        as_jw_key(&jw, "size");
        as_jw_array_begin(&jw);
        as_jw_int(&jw, g->h);
        as_jw_int(&jw, g->w);
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
        int rc = as_jw_finish(&jw, "annotations.json", err);
        if (!rc && !append_line(out, jw.buf, jw.len))
            rc = as_error_set(err, AS_ERR_NOMEM, "export: out of memory");
        as_jw_free(&jw);
        if (rc)
            return rc;
    }
    return 0;
}

/* Stage the per-image files of g (class per pixel in cls). */
static int stage_files(AsDataset *d, Img *g, const Img *old, const uint8_t *cls,
                       const char *image_path, AsError *err)
{
    const size_t npx = (size_t)g->w * g->h;
    const unsigned f = d->opt.formats;
    char rel[PATH_MAX], path[PATH_MAX];
    int rc = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (f & AS_EXPORT_VOC) {
        uint8_t pal[768];
        as_voc_palette(pal);
        for (int c = 1; c <= AS_DATASET_MAX_CLASS; c++)
            if (d->cls[c].name[0])
                memcpy(pal + 3 * c, d->cls[c].rgb, 3);
        snprintf(rel, sizeof rel, "voc/SegmentationClass/%s.png", g->name);
        snprintf(path, sizeof path, "%s/%s", d->dir, rel);
        rc = as_export_voc_encode(path, cls, g->w, g->h, pal, &buf, &len, err);
        if (!rc)
            rc = dataset_put(d, rel, buf, len, err);
        free(buf);
        buf = NULL;
        if (rc)
            return rc;
    }
    if (f & AS_EXPORT_MASKS) {
        snprintf(path, sizeof path, "%s/masks/%s", d->dir, g->name);
        bool existed = access(path, F_OK) == 0;
        int st = as_export_mkdirs(path, err);
        if (st)
            return st;
        char **nd = existed ? NULL : realloc(d->newdirs, (d->nnew + 1) * sizeof *nd);
        if (nd) {
            d->newdirs = nd;
            if ((nd[d->nnew] = strdup(path)) != NULL)
                d->nnew++;
        }
        uint8_t *m = malloc(npx);
        if (!m)
            return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
        for (int c = 1; c <= AS_DATASET_MAX_CLASS && !rc; c++) {
            if (!g->present[c]) {
                if (old && old->present[c]) { /* a class the image no longer has */
                    snprintf(rel, sizeof rel, "masks/%s/%s.png", g->name, d->cls[c].name);
                    rc = as_atomic_batch_remove(d->batch, rel, err);
                }
                continue;
            }
            for (size_t i = 0; i < npx; i++)
                m[i] = cls[i] == c ? 255 : 0;
            snprintf(rel, sizeof rel, "masks/%s/%s.png", g->name, d->cls[c].name);
            snprintf(path, sizeof path, "%s/%s", d->dir, rel);
            rc = as_png_encode_gray(path, m, g->w, g->h, &buf, &len, err);
            if (!rc)
                rc = dataset_put(d, rel, buf, len, err);
            free(buf);
            buf = NULL;
        }
        free(m);
        if (rc)
            return rc;
    }
    if (f & AS_EXPORT_LABELME) {
        /* value = class id - 1, background outside the traced range */
        int32_t *lab = malloc(npx * sizeof *lab);
        const char *names[AS_DATASET_MAX_CLASS];
        for (int c = 1; c <= AS_DATASET_MAX_CLASS; c++)
            names[c - 1] = d->cls[c].name;
        char dir[PATH_MAX], relimg[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/labelme", d->dir);
        snprintf(rel, sizeof rel, "labelme/%s.json", g->name);
        snprintf(path, sizeof path, "%s/%s", d->dir, rel);
        if (!lab)
            return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
        for (size_t i = 0; i < npx; i++)
            lab[i] = cls[i] ? cls[i] - 1 : AS_LABEL_BACKGROUND;
        char *t = NULL;
        rc = as_relative_path(dir, image_path ? image_path : g->name, relimg, sizeof relimg, err);
        if (!rc)
            rc = as_export_labelme_encode(path, relimg, lab, g->w, g->h, AS_DATASET_MAX_CLASS,
                                          names, d->opt.polygon_epsilon, g->untrained, &t, &len,
                                          err);
        free(lab);
        if (!rc)
            rc = dataset_put(d, rel, t, len, err);
        free(t);
        if (rc)
            return rc;
    }
    return 0;
}

int as_dataset_add(AsDataset *d, const char *name, const char *image_path, const int32_t *labels,
                   int w, int h, int ngroups, const int *group_class, int in_w, int in_h,
                   AsError *err)
{
    if (!name || !*name || strchr(name, '/') || name[0] == '.' || strlen(name) > 200)
        return as_error_set(err, AS_ERR_ARG, "%s: bad export name '%s'",
                            image_path ? image_path : "image", name ? name : "");
    int st = as_export_check_labels(name, labels, w, h, ngroups, err);
    if (st)
        return st;
    int gc[AS_MAX_GROUPS];
    for (int g = 0; g < ngroups; g++) {
        if (group_class) {
            gc[g] = group_class[g];
            if (gc[g] < AS_DATASET_PROTOTYPE || gc[g] > AS_DATASET_MAX_CLASS)
                return as_error_set(err, AS_ERR_ARG, "%s: group %d: no class %d in the dataset",
                                    name, g, gc[g]);
        } else {
            gc[g] = AS_DATASET_PROTOTYPE; /* created when the group has pixels */
        }
    }
    const size_t npx = (size_t)w * h;
    uint8_t *cls = malloc(npx);
    int32_t *clsmap = malloc(npx * sizeof *clsmap);
    Img g;
    memset(&g, 0, sizeof g);
    int rc = 0;
    if (!cls || !clsmap) {
        rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory for %dx%d labels", name, w, h);
        goto fail;
    }
    for (size_t i = 0; i < npx && !rc; i++) {
        int32_t l = labels[i];
        int c = 0;
        if (l != AS_LABEL_BACKGROUND) {
            if (gc[l] < 0) {
                char cname[32];
                as_export_label_name(l, cname, sizeof cname);
                rc = as_dataset_class(d, cname, l + 1, NULL, &gc[l], err);
            }
            c = gc[l];
            if (c > 0 && !d->cls[c].name[0] && !rc)
                rc = as_error_set(err, AS_ERR_ARG, "%s: group %d: no class %d in the dataset",
                                  name, (int)l, c);
        }
        cls[i] = (uint8_t)c;
        clsmap[i] = c;
        g.present[c] = 1;
    }
    if (rc)
        goto fail;
    g.present[0] = 0;
    long at = as_dataset_find(d, name);
    const char *base = image_path ? strrchr(image_path, '/') : NULL;
    base = base ? base + 1 : (image_path ? image_path : name);
    g.id = at >= 0 ? d->img[at].id : d->next_id;
    g.name = strdup(name);
    g.file = strdup(base);
    g.model = dupe(d->model);
    g.untrained = d->opt.untrained;
    g.w = w;
    g.h = h;
    g.in_w = in_w;
    g.in_h = in_h;
    if (!g.name || !g.file) {
        rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    rc = stage_files(d, &g, at >= 0 ? &d->img[at] : NULL, cls, image_path, err);
    if (!rc && (d->opt.formats & AS_EXPORT_COCO))
        rc = coco_annotations(&g, clsmap, &g.coco, err);
    if (rc)
        goto fail;
    if (at < 0 && d->n == d->cap) {
        size_t nc = d->cap ? 2 * d->cap : 64;
        Img *ni = realloc(d->img, nc * sizeof *ni);
        if (!ni) {
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", name);
            goto fail;
        }
        d->img = ni;
        d->cap = nc;
    }
    if (at >= 0) {
        img_free(&d->img[at]);
        d->img[at] = g;
    } else {
        d->img[d->n++] = g;
        d->next_id++;
    }
    d->pending++;
    free(cls);
    free(clsmap);
    return 0;
fail:
    img_free(&g);
    free(cls);
    free(clsmap);
    return rc;
}

/* ---- the index files ---- */

static void forget_newdirs(AsDataset *d, bool remove)
{
    for (size_t i = d->nnew; i-- > 0;) {
        if (remove)
            rmdir(d->newdirs[i]); /* only when empty */
        free(d->newdirs[i]);
    }
    free(d->newdirs);
    d->newdirs = NULL;
    d->nnew = 0;
}

static int cmp_img(const void *a, const void *b)
{
    const Img *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int as_dataset_commit(AsDataset *d, AsError *err)
{
    qsort(d->img, d->n, sizeof *d->img, cmp_img);
    int rc = 0;
    if (d->opt.formats & AS_EXPORT_VOC)
        rc = dataset_write_voc_lists(d, err);
    if (!rc && (d->opt.formats & AS_EXPORT_COCO))
        rc = dataset_write_coco(d, err);
    if (!rc)
        rc = dataset_write_index(d, err); /* staged last: renamed last */
    if (!rc)
        rc = as_atomic_batch_commit(d->batch, err);
    if (rc) {
        as_atomic_batch_discard(d->batch);
    } else {
        d->pending = 0;
        forget_newdirs(d, false);
    }
    return rc;
}

void as_dataset_free(AsDataset *d)
{
    if (!d)
        return;
    as_atomic_batch_free(d->batch);
    forget_newdirs(d, true); /* dropped additions leave no empty folders */
    for (size_t i = 0; i < d->n; i++)
        img_free(&d->img[i]);
    free(d->img);
    free(d->dir);
    free(d->generator);
    free(d->model);
    free(d->settings);
    free(d);
}
