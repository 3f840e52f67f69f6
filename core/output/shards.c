/* shards: see shards.h */
#include "shards.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "image.h"
#include "json.h"
#include "merge.h"

typedef struct {
    const char *dir;
    AsJson *index;
    int shard;
    AsDataset *d;
} Shard;

static const char *str_or(const AsJson *j, const char *key)
{
    const AsJson *v = as_json_get(j, key);
    return v && v->type == AS_JSON_STRING ? v->str : "";
}

static bool same_json_str(const AsJson *a, const AsJson *b, const char *key)
{
    const AsJson *x = as_json_get(a, key), *y = as_json_get(b, key);
    if (!x || !y)
        return x == y;
    if (x->type != y->type)
        return false;
    if (x->type == AS_JSON_STRING)
        return !strcmp(x->str, y->str);
    if (x->type == AS_JSON_BOOL)
        return x->b == y->b;
    return x->type == AS_JSON_NULL;
}

static unsigned formats_of(const AsJson *index)
{
    const AsJson *fm = as_json_get(index, "formats");
    unsigned f = 0;
    for (size_t i = 0; fm && i < fm->count; i++) {
        unsigned one = 0;
        AsError e;
        if (as_export_parse_formats(as_json_str(fm->items[i], ""), &one, &e) == 0)
            f |= one;
    }
    return f;
}

/* the class tables agree: every id named alike (with the same colour) */
static bool same_classes(const AsJson *a, const AsJson *b)
{
    const AsJson *ca = as_json_get(a, "classes"), *cb = as_json_get(b, "classes");
    for (size_t i = 0; ca && i < ca->count; i++)
        for (size_t k = 0; cb && k < cb->count; k++) {
            const AsJson *x = ca->items[i], *y = cb->items[k];
            if (as_json_num(as_json_get(x, "id"), -1) != as_json_num(as_json_get(y, "id"), -2))
                continue;
            if (strcmp(str_or(x, "name"), str_or(y, "name")))
                return false;
            for (size_t t = 0; t < 3; t++)
                if (as_json_num(as_json_at(as_json_get(x, "color"), t), -1) !=
                    as_json_num(as_json_at(as_json_get(y, "color"), t), -1))
                    return false;
        }
    return true;
}

static int cmp_shard(const void *a, const void *b)
{
    const Shard *x = a, *y = b;
    return (x->shard > y->shard) - (x->shard < y->shard);
}

/* The source image path that a shard's labelme file points to. */
static void source_path(const Shard *s, const char *name, const char *file, char *buf, size_t len)
{
    char p[PATH_MAX];
    snprintf(buf, len, "%s", file);
    snprintf(p, sizeof p, "%s/labelme/%s.json", s->dir, name);
    AsJson *j = NULL;
    AsError e;
    if (access(p, F_OK) == 0 && as_json_read_file(p, &j, &e) == 0) {
        const char *ip = as_json_str(as_json_get(j, "imagePath"), NULL);
        if (ip && ip[0] == '/')
            snprintf(buf, len, "%s", ip);
        else if (ip)
            snprintf(buf, len, "%s/labelme/%s", s->dir, ip);
        as_json_free(j);
    }
}

static int merge_image(AsDataset *out, const Shard *s, size_t i, AsError *err)
{
    AsDatasetImage im;
    as_dataset_image(s->d, i, &im);
    char p[PATH_MAX], src[PATH_MAX];
    snprintf(p, sizeof p, "%s/voc/SegmentationClass/%s.png", s->dir, im.name);
    uint8_t *cls = NULL;
    int w = 0, h = 0;
    int st = as_png_read_u8(p, &cls, &w, &h, err);
    if (st)
        return st;
    int rc = 0;
    int32_t *lab = malloc((size_t)w * h * sizeof *lab);
    int gc[AS_MAX_GROUPS];
    if (!lab || w != im.w || h != im.h) {
        rc = as_error_set(err, lab ? AS_ERR_FORMAT : AS_ERR_NOMEM,
                          "%s: %dx%d, but the index says %dx%d", p, w, h, im.w, im.h);
    } else {
        /* group k-1 = class k: the class ids are the same in every shard */
        for (size_t k = 0; k < (size_t)w * h; k++)
            lab[k] = cls[k] ? cls[k] - 1 : AS_LABEL_BACKGROUND;
        for (int g = 0; g < AS_MAX_GROUPS; g++)
            gc[g] = g + 1;
        source_path(s, im.name, im.file, src, sizeof src);
        rc = as_dataset_add(out, im.name, src, lab, w, h, AS_MAX_GROUPS, gc, im.in_w, im.in_h,
                            err);
        if (rc)
            as_error_prefix(err, "%s: ", s->dir);
    }
    free(lab);
    free(cls);
    return rc;
}

int as_shards_merge(const char *out, const char *const *dirs, int n, AsError *err)
{
    if (n < 1)
        return as_error_set(err, AS_ERR_ARG, "no shard folders given");
    Shard *s = calloc((size_t)n, sizeof *s);
    if (!s)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    AsDataset *d = NULL;
    int rc = 0, count = 0;
    char p[PATH_MAX];
    for (int i = 0; i < n && !rc; i++) {
        s[i].dir = dirs[i];
        snprintf(p, sizeof p, "%s/" AS_DATASET_INDEX, dirs[i]);
        if (as_json_read_file(p, &s[i].index, err)) {
            rc = as_error_prefix(err, "%s is not an export folder: ", dirs[i]);
            break;
        }
        const AsJson *sh = as_json_get(s[i].index, "shard");
        double idx = as_json_num(as_json_get(sh, "index"), -1),
               cnt = as_json_num(as_json_get(sh, "count"), -1);
        if (!sh || idx < 0 || cnt < 1 || cnt > INT_MAX || idx >= cnt || idx != (int)idx ||
            cnt != (int)cnt) {
            rc = as_error_set(err, AS_ERR_ARG, "%s is not a shard (exported without --shard)",
                              dirs[i]);
            break;
        }
        s[i].shard = (int)idx;
        if (i == 0)
            count = (int)cnt;
        const AsJson *a = s[0].index, *b = s[i].index;
        const char *what = (int)cnt != count              ? "shard count"
                           : !same_json_str(a, b, "model")     ? "model"
                           : !same_json_str(a, b, "settings")  ? "options"
                           : !same_json_str(a, b, "generator") ? "alignseg version"
                           : !same_json_str(a, b, "untrained") ? "model weights"
                           : formats_of(a) != formats_of(b)    ? "formats"
                           : !same_classes(a, b)               ? "class table"
                                                               : NULL;
        if (what)
            rc = as_error_set(err, AS_ERR_ARG,
                              "%s is a foreign shard: it differs from %s in its %s", dirs[i],
                              dirs[0], what);
    }
    if (!rc && !(formats_of(s[0].index) & AS_EXPORT_VOC))
        rc = as_error_set(err, AS_ERR_UNSUPPORTED,
                          "%s has no voc folder; export the shards with the voc format",
                          dirs[0]);
    if (!rc) {
        qsort(s, (size_t)n, sizeof *s, cmp_shard);
        for (int i = 0; i < n && !rc; i++)
            if (i > 0 && s[i].shard == s[i - 1].shard)
                rc = as_error_set(err, AS_ERR_ARG, "%s and %s are both shard %d of %d",
                                  s[i - 1].dir, s[i].dir, s[i].shard, count);
        for (int k = 0, i = 0; !rc && k < count; k++) {
            if (i < n && s[i].shard == k)
                i++;
            else
                rc = as_error_set(err, AS_ERR_ARG, "shard %d of %d is missing", k, count);
        }
    }
    snprintf(p, sizeof p, "%s/" AS_DATASET_INDEX, out);
    if (!rc && access(p, F_OK) == 0)
        rc = as_error_set(err, AS_ERR_ARG, "%s holds a dataset already; merge into a new folder",
                          out);
    AsExportOptions o;
    as_export_options_default(&o);
    if (!rc) {
        const AsJson *a = s[0].index;
        o.formats = formats_of(a);
        o.generator = str_or(a, "generator");
        o.model = as_json_str(as_json_get(a, "model"), NULL);
        o.settings = as_json_str(as_json_get(a, "settings"), NULL);
        const AsJson *ut = as_json_get(a, "untrained");
        o.untrained = ut && ut->type == AS_JSON_BOOL && ut->b;
        o.polygon_epsilon = AS_EXPORT_POLYGON_EPSILON;
        rc = as_dataset_open(out, &o, &d, err);
    }
    for (int i = 0; i < n && !rc; i++) {
        AsExportOptions so = o;
        so.shard_index = s[i].shard;
        so.shard_count = count;
        rc = as_dataset_open(s[i].dir, &so, &s[i].d, err);
        /* the classes, with the ids and colours the shard gave them */
        const AsJson *cl = as_json_get(s[i].index, "classes");
        for (size_t k = 0; !rc && cl && k < cl->count; k++) {
            const AsJson *c = cl->items[k], *rgb = as_json_get(c, "color");
            uint8_t col[3];
            for (int t = 0; t < 3; t++)
                col[t] = (uint8_t)as_json_num(as_json_at(rgb, (size_t)t), 0);
            int id = 0, want = (int)as_json_num(as_json_get(c, "id"), 0);
            rc = as_dataset_class(d, str_or(c, "name"), want, col, &id, err);
            if (!rc && id != want)
                rc = as_error_set(err, AS_ERR_FORMAT, "%s: class '%s' has id %d, not %d",
                                  s[i].dir, str_or(c, "name"), want, id);
        }
        for (size_t k = 0; !rc && k < as_dataset_image_count(s[i].d); k++) {
            AsDatasetImage im;
            as_dataset_image(s[i].d, k, &im);
            if (as_dataset_find(d, im.name) >= 0)
                rc = as_error_set(err, AS_ERR_ARG, "%s: image '%s' is in another shard too",
                                  s[i].dir, im.name);
            else
                rc = merge_image(d, &s[i], k, err);
        }
    }
    if (!rc)
        rc = as_dataset_commit(d, err);
    as_dataset_free(d);
    for (int i = 0; i < n; i++) {
        as_dataset_free(s[i].d);
        as_json_free(s[i].index);
    }
    free(s);
    return rc;
}
