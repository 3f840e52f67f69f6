/* evalshard: see evalshard.h */
#include "evalshard.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"
#include "json.h"
#include "jsonw.h"

/* bounds of what a shard file may hold */
#define MAX_STR 8192           /* header strings, image names, error messages */
#define MAX_IMAGES 10000000    /* images in one list */
#define MAX_FILE ((uint64_t)1 << 30) /* the JSON reader's file limit (json.c) */

void as_eval_shard_init(AsEvalShard *s)
{
    memset(s, 0, sizeof *s);
}

static int dup_into(char **dst, const char *src, AsError *err)
{
    free(*dst);
    *dst = strdup(src ? src : "");
    return *dst ? 0 : as_error_set(err, AS_ERR_NOMEM, "eval shard: out of memory");
}

int as_eval_shard_set(AsEvalShard *s, const char *generator, const char *model,
                      const char *fingerprint, const char *settings, AsError *err)
{
    int rc = dup_into(&s->generator, generator, err);
    if (!rc)
        rc = dup_into(&s->model, model, err);
    if (!rc)
        rc = dup_into(&s->fingerprint, fingerprint, err);
    if (!rc)
        rc = dup_into(&s->settings, settings, err);
    return rc;
}

int as_eval_shard_add(AsEvalShard *s, const char *name, AsEvalConfusion *c, const char *error,
                      AsError *err)
{
    if (s->nimages == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        AsEvalShardImage *v = realloc(s->images, cap * sizeof *v);
        if (!v)
            return as_error_set(err, AS_ERR_NOMEM, "eval shard: out of memory");
        s->images = v;
        s->cap = cap;
    }
    AsEvalShardImage *im = &s->images[s->nimages];
    memset(im, 0, sizeof *im);
    if (dup_into(&im->name, name, err) || (error && dup_into(&im->error, error, err))) {
        free(im->name);
        free(im->error);
        return AS_ERR_NOMEM;
    }
    if (c && !error) {
        im->conf = *c;
        c->cells = NULL;
        c->n = 0;
    }
    s->nimages++;
    return 0;
}

void as_eval_shard_free(AsEvalShard *s)
{
    for (size_t i = 0; i < s->nimages; i++) {
        free(s->images[i].name);
        free(s->images[i].error);
        as_eval_confusion_free(&s->images[i].conf);
    }
    free(s->images);
    free(s->generator);
    free(s->model);
    free(s->fingerprint);
    free(s->settings);
    memset(s, 0, sizeof *s);
}

size_t as_eval_shard_failed(const AsEvalShard *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->nimages; i++)
        k += s->images[i].error != NULL;
    return k;
}

static int shard_path(const char *dir, char *buf, size_t len, AsError *err)
{
    if (snprintf(buf, len, "%s/" AS_EVAL_SHARD_FILE, dir) >= (int)len)
        return as_error_set(err, AS_ERR_ARG, "%s: path too long", dir);
    return 0;
}

bool as_eval_shard_exists(const char *dir)
{
    char p[PATH_MAX];
    return shard_path(dir, p, sizeof p, NULL) == 0 && access(p, F_OK) == 0;
}

int as_eval_shard_write(const AsEvalShard *s, const char *dir, AsError *err)
{
    char p[PATH_MAX];
    int rc = shard_path(dir, p, sizeof p, err);
    if (rc)
        return rc;
    AsJsonW w;
    as_jw_init(&w, 1);
    as_jw_object_begin(&w);
    as_jw_key(&w, "format");
    as_jw_string(&w, AS_EVAL_SHARD_FORMAT);
    as_jw_key(&w, "version");
    as_jw_int(&w, AS_EVAL_SHARD_VERSION);
    as_jw_key(&w, "generator");
    as_jw_string(&w, s->generator ? s->generator : "");
    as_jw_key(&w, "model");
    as_jw_string(&w, s->model ? s->model : "");
    as_jw_key(&w, "model_fingerprint");
    as_jw_string(&w, s->fingerprint ? s->fingerprint : "");
    as_jw_key(&w, "settings");
    as_jw_string(&w, s->settings ? s->settings : "");
    as_jw_key(&w, "clusters");
    as_jw_int(&w, s->clusters);
    as_jw_key(&w, "ignore");
    as_jw_int(&w, s->ignore);
    as_jw_key(&w, "protocol");
    as_jw_string(&w, s->protocol == AS_EVAL_HUNGARIAN ? "hungarian" : "reference");
    as_jw_key(&w, "shard");
    as_jw_object_begin(&w);
    as_jw_key(&w, "index");
    as_jw_int(&w, s->shard_index);
    as_jw_key(&w, "count");
    as_jw_int(&w, s->shard_count);
    as_jw_object_end(&w);
    as_jw_key(&w, "total_images");
    as_jw_int(&w, s->total_images);
    as_jw_key(&w, "images");
    as_jw_array_begin(&w);
    for (size_t i = 0; i < s->nimages; i++) {
        const AsEvalShardImage *im = &s->images[i];
        as_jw_object_begin(&w);
        as_jw_key(&w, "name");
        as_jw_string(&w, im->name);
        if (im->error) {
            as_jw_key(&w, "error");
            as_jw_string(&w, im->error);
        } else {
            as_jw_key(&w, "cells");
            as_jw_array_begin_inline(&w);
            for (size_t k = 0; k < im->conf.n; k++) {
                as_jw_int(&w, im->conf.cells[k].pred);
                as_jw_int(&w, im->conf.cells[k].cls);
                as_jw_int(&w, im->conf.cells[k].count);
            }
            as_jw_array_end(&w);
        }
        as_jw_object_end(&w);
    }
    as_jw_array_end(&w);
    as_jw_object_end(&w);
    rc = as_jw_write_file(&w, p, err);
    as_jw_free(&w);
    return rc;
}

/* ---- reading (hostile input) ---- */

static int get_str(const AsJson *o, const char *key, const char *path, char **out, AsError *err)
{
    const AsJson *v = as_json_get(o, key);
    if (!v || v->type != AS_JSON_STRING || v->len > MAX_STR || strlen(v->str) != v->len)
        return as_error_set(err, AS_ERR_FORMAT, "%s: \"%s\" is missing or not a string of at "
                            "most %d bytes", path, key, MAX_STR);
    return dup_into(out, v->str, err);
}

static bool is_int_in(const AsJson *v, int64_t lo, int64_t hi)
{
    return v && v->type == AS_JSON_NUMBER && v->is_int && v->i >= lo && v->i <= hi;
}

static int get_int(const AsJson *o, const char *key, int64_t lo, int64_t hi, const char *path,
                   int64_t *out, AsError *err)
{
    const AsJson *v = as_json_get(o, key);
    if (!is_int_in(v, lo, hi))
        return as_error_set(err, AS_ERR_FORMAT, "%s: \"%s\" is missing or not a whole number "
                            "in %lld..%lld", path, key, (long long)lo, (long long)hi);
    *out = v->i;
    return 0;
}

static int read_image(const AsJson *o, size_t i, const char *path, AsEvalShard *s, AsError *err)
{
    if (!o || o->type != AS_JSON_OBJECT)
        return as_error_set(err, AS_ERR_FORMAT, "%s: image %zu is not an object", path, i);
    char *name = NULL, *error = NULL;
    AsEvalConfusion c = { NULL, 0 };
    int rc = get_str(o, "name", path, &name, err);
    if (!rc && !name[0])
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: image %zu has an empty name", path, i);
    const AsJson *cells = as_json_get(o, "cells");
    if (!rc && as_json_get(o, "error")) {
        rc = get_str(o, "error", path, &error, err);
    } else if (!rc) {
        if (!cells || cells->type != AS_JSON_ARRAY || cells->count % 3 != 0)
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: image '%s': \"cells\" is missing or not "
                              "an array of [cluster, class, pixels] triples", path, name);
        else if (cells->count > 0 &&
                 !(c.cells = malloc(cells->count / 3 * sizeof *c.cells)))
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
        for (size_t k = 0; !rc && k < cells->count / 3; k++) {
            const AsJson *p = cells->items[3 * k], *l = cells->items[3 * k + 1],
                         *n = cells->items[3 * k + 2];
            if (!is_int_in(p, 0, INT32_MAX) || !is_int_in(l, 0, INT32_MAX) ||
                !is_int_in(n, 1, INT64_MAX))
                rc = as_error_set(err, AS_ERR_FORMAT, "%s: image '%s': cell %zu is not three "
                                  "whole numbers (cluster, class, pixels > 0)", path, name, k);
            else
                c.cells[c.n++] = (AsEvalCell){ (int32_t)p->i, (int32_t)l->i, n->i };
        }
    }
    if (!rc)
        rc = as_eval_shard_add(s, name, &c, error, err);
    free(name);
    free(error);
    as_eval_confusion_free(&c);
    return rc;
}

int as_eval_shard_read(const char *dir, AsEvalShard *s, AsError *err)
{
    as_eval_shard_init(s);
    char p[PATH_MAX];
    int rc = shard_path(dir, p, sizeof p, err);
    if (rc)
        return rc;
    uint8_t *buf = NULL;
    size_t len = 0;
    if ((rc = as_file_read_all(p, MAX_FILE, 1, &buf, &len, err)))
        return rc;
    rc = as_eval_shard_read_mem(buf, len, p, s, err);
    free(buf);
    return rc;
}

int as_eval_shard_read_mem(const uint8_t *data, size_t len, const char *p, AsEvalShard *s,
                           AsError *err)
{
    as_eval_shard_init(s);
    AsJson *j = NULL;
    int rc = as_json_parse((const char *)data, len, p, &j, err);
    if (rc)
        return rc;
    int64_t v = 0;
    const AsJson *fmt = as_json_get(j, "format");
    if (j->type != AS_JSON_OBJECT || !fmt || fmt->type != AS_JSON_STRING ||
        strcmp(fmt->str, AS_EVAL_SHARD_FORMAT)) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: not an alignseg eval shard (no \"format\": "
                          "\"" AS_EVAL_SHARD_FORMAT "\")", p);
        goto fail;
    }
    if ((rc = get_int(j, "version", 0, INT32_MAX, p, &v, err)))
        goto fail;
    if (v != AS_EVAL_SHARD_VERSION) {
        rc = as_error_set(err, AS_ERR_UNSUPPORTED, "%s: shard format version %lld; this alignseg "
                          "reads version %d", p, (long long)v, AS_EVAL_SHARD_VERSION);
        goto fail;
    }
    if ((rc = get_str(j, "generator", p, &s->generator, err)) ||
        (rc = get_str(j, "model", p, &s->model, err)) ||
        (rc = get_str(j, "model_fingerprint", p, &s->fingerprint, err)) ||
        (rc = get_str(j, "settings", p, &s->settings, err)))
        goto fail;
    if ((rc = get_int(j, "clusters", 1, 4096, p, &v, err)))
        goto fail;
    s->clusters = (int)v;
    if ((rc = get_int(j, "ignore", -1, 255, p, &v, err)))
        goto fail;
    s->ignore = (int)v;
    const char *proto = as_json_str(as_json_get(j, "protocol"), "");
    if (strcmp(proto, "reference") && strcmp(proto, "hungarian")) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: \"protocol\" is not reference or hungarian", p);
        goto fail;
    }
    s->protocol = strcmp(proto, "hungarian") ? AS_EVAL_REFERENCE : AS_EVAL_HUNGARIAN;
    const AsJson *sh = as_json_get(j, "shard");
    int64_t idx = 0, cnt = 0;
    if ((rc = get_int(sh, "count", 1, 100000, p, &cnt, err)) ||
        (rc = get_int(sh, "index", 0, cnt - 1, p, &idx, err))) {
        as_error_prefix(err, "in \"shard\": ");
        goto fail;
    }
    s->shard_index = (int)idx;
    s->shard_count = (int)cnt;
    if ((rc = get_int(j, "total_images", 0, MAX_IMAGES, p, &s->total_images, err)))
        goto fail;
    const AsJson *im = as_json_get(j, "images");
    if (!im || im->type != AS_JSON_ARRAY || im->count > (size_t)s->total_images) {
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: \"images\" is missing, not an array or longer "
                          "than \"total_images\" (%lld)", p, (long long)s->total_images);
        goto fail;
    }
    for (size_t i = 0; i < im->count && !rc; i++)
        rc = read_image(im->items[i], i, p, s, err);
    for (size_t i = 1; i < s->nimages && !rc; i++)
        if (strcmp(s->images[i - 1].name, s->images[i].name) >= 0)
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: images '%s' and '%s' are not in sorted "
                              "order", p, s->images[i - 1].name, s->images[i].name);
fail:
    as_json_free(j);
    if (rc)
        as_eval_shard_free(s);
    return rc;
}

const char *as_eval_shard_differs(const AsEvalShard *a, const AsEvalShard *b)
{
    return strcmp(a->generator, b->generator)       ? "alignseg version"
           : strcmp(a->fingerprint, b->fingerprint) ? "model weights"
           : strcmp(a->settings, b->settings)       ? "options"
           : a->clusters != b->clusters             ? "cluster count"
           : a->ignore != b->ignore                 ? "ignore value"
           : a->shard_count != b->shard_count       ? "shard count"
           : a->total_images != b->total_images     ? "image count"
                                                    : NULL;
}

/* the size of shard i of count over n images (app/runlist.h's blocks) */
static int64_t block_size(int64_t n, int i, int count)
{
    return (int64_t)(i + 1) * n / count - (int64_t)i * n / count;
}

static int cmp_index(const void *a, const void *b)
{
    const AsEvalShard *x = a, *y = b;
    return (x->shard_index > y->shard_index) - (x->shard_index < y->shard_index);
}

int as_eval_shards_merge(const char *const *dirs, int n, AsEval *e, AsEvalShard *head,
                         int64_t *failed, AsError *err)
{
    memset(e, 0, sizeof *e);
    as_eval_shard_init(head);
    *failed = 0;
    if (n < 1)
        return as_error_set(err, AS_ERR_ARG, "no eval shard folders given");
    AsEvalShard *s = calloc((size_t)n, sizeof *s);
    const char **dir_of = calloc((size_t)n, sizeof *dir_of);
    int rc = 0, nread = 0;
    if (!s || !dir_of) {
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n && !rc; i++) {
        if (!as_eval_shard_exists(dirs[i])) {
            rc = as_error_set(err, AS_ERR_ARG, "%s is not an eval shard folder (no %s in it)",
                              dirs[i], AS_EVAL_SHARD_FILE);
            break;
        }
        if ((rc = as_eval_shard_read(dirs[i], &s[i], err)))
            break;
        nread++;
        const char *what = as_eval_shard_differs(&s[0], &s[i]);
        if (what)
            rc = as_error_set(err, AS_ERR_ARG, "%s is a foreign shard: it differs from %s in "
                              "its %s", dirs[i], dirs[0], what);
        else if ((int64_t)s[i].nimages !=
                 block_size(s[i].total_images, s[i].shard_index, s[i].shard_count))
            rc = as_error_set(err, AS_ERR_FORMAT, "%s: shard %d of %d holds %zu images, but its "
                              "block of the %lld-image list has %lld", dirs[i], s[i].shard_index,
                              s[i].shard_count, s[i].nimages, (long long)s[i].total_images,
                              (long long)block_size(s[i].total_images, s[i].shard_index,
                                                    s[i].shard_count));
    }
    if (rc)
        goto fail;
    /* sort by shard index, keeping each one's folder name */
    typedef struct {
        AsEvalShard sh;
        const char *dir;
    } Tagged;
    Tagged *t = calloc((size_t)n, sizeof *t);
    if (!t) {
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        t[i].sh = s[i];
        t[i].dir = dirs[i];
    }
    qsort(t, (size_t)n, sizeof *t, cmp_index);
    for (int i = 0; i < n; i++) {
        s[i] = t[i].sh;
        dir_of[i] = t[i].dir;
    }
    free(t);
    const int count = s[0].shard_count;
    for (int i = 1; i < n && !rc; i++)
        if (s[i].shard_index == s[i - 1].shard_index)
            rc = as_error_set(err, AS_ERR_ARG, "%s and %s are both shard %d of %d", dir_of[i - 1],
                              dir_of[i], s[i].shard_index, count);
    for (int k = 0, i = 0; !rc && k < count; k++) {
        if (i < n && s[i].shard_index == k)
            i++;
        else
            rc = as_error_set(err, AS_ERR_ARG, "eval shard %d of %d is missing (%d folders given)",
                              k, count, n);
    }
    /* the blocks follow each other in the sorted list */
    const char *last = NULL, *last_dir = NULL;
    int last_index = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (s[i].nimages == 0)
            continue;
        if (last && strcmp(last, s[i].images[0].name) >= 0)
            rc = as_error_set(err, AS_ERR_ARG, "%s and %s are shards of different image lists "
                              "('%s' of shard %d does not sort before '%s' of shard %d)",
                              last_dir, dir_of[i], last, last_index, s[i].images[0].name,
                              s[i].shard_index);
        last = s[i].images[s[i].nimages - 1].name;
        last_dir = dir_of[i];
        last_index = s[i].shard_index;
    }
    if (!rc)
        rc = as_eval_init(e, s[0].clusters, s[0].ignore, err);
    for (int i = 0; i < n && !rc; i++)
        for (size_t k = 0; k < s[i].nimages && !rc; k++) {
            const AsEvalShardImage *im = &s[i].images[k];
            if (im->error) {
                (*failed)++;
                continue;
            }
            rc = as_eval_add_confusion(e, &im->conf, err);
            if (rc)
                as_error_prefix(err, "%s/" AS_EVAL_SHARD_FILE ": image '%s': ", dir_of[i],
                                im->name);
        }
    if (!rc) {
        /* the header, without the images */
        *head = s[0];
        head->images = NULL;
        head->nimages = head->cap = 0;
        for (size_t k = 0; k < s[0].nimages; k++) {
            free(s[0].images[k].name);
            free(s[0].images[k].error);
            as_eval_confusion_free(&s[0].images[k].conf);
        }
        free(s[0].images);
        memset(&s[0], 0, sizeof s[0]);
    } else {
        as_eval_free(e);
    }
fail:
    for (int i = 0; s && i < nread; i++)
        as_eval_shard_free(&s[i]);
    free(s);
    free(dir_of);
    return rc;
}

/* ---- the model's fingerprint ---- */

static int cmp_tensor_name(const void *a, const void *b)
{
    const AsTensor *x = *(const AsTensor *const *)a, *y = *(const AsTensor *const *)b;
    return strcmp(x->name, y->name);
}

/* FNV-1a over 64-bit words (bytes for the tail) */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t k = 0;
    for (; k + 8 <= len; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    for (; k < len; k++)
        h = (h ^ p[k]) * 0x100000001b3ull;
    return h;
}

int as_eval_model_fingerprint(const AsModel *m, char out[17], AsError *err)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t n = m->weights.count;
    const AsTensor **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return as_error_set(err, AS_ERR_NOMEM, "model fingerprint: out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = &m->weights.items[i];
    qsort(v, n, sizeof *v, cmp_tensor_name);
    for (size_t i = 0; i < n; i++) {
        h = hash_bytes(h, v[i]->name, strlen(v[i]->name) + 1);
        h = hash_bytes(h, &v[i]->ndim, sizeof v[i]->ndim);
        h = hash_bytes(h, v[i]->shape, sizeof(int64_t) * (size_t)v[i]->ndim);
        if (v[i]->data)
            h = hash_bytes(h, v[i]->data, sizeof(float) * (size_t)v[i]->numel);
    }
    free(v);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 0;
}
