/* test_checkpoint: .pth / .safetensors loading against values obtained
 * independently (tests/tools/make_ckpt_expected.py reads the reference files
 * with Python's zipfile + pickle + numpy, without torch), key normalisation,
 * dtypes, strided views, the pickle/pth writer round trip and, when Debian's
 * python3-torch is present, torch.load of what we write.
 * Usage: test_checkpoint [torch]   ("torch": only the PyTorch interop test;
 * exit 77 = skipped when python3-torch is missing). */
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "checkpoint.h"
#include "json.h"
#include "npy.h"
#include "pickle.h"
#include "pth.h"

/* ---- expected.tsv ---- */

typedef struct {
    char kind[8], file[128], name[160];
    int ndim;
    int64_t shape[8];
    double sum, asum, first;
} Expect;

static int parse_shape(const char *s, int64_t *shape)
{
    if (strcmp(s, "-") == 0)
        return 0;
    int n = 0;
    const char *p = s;
    while (*p && n < 8) {
        shape[n++] = strtoll(p, (char **)&p, 10);
        if (*p == ',')
            p++;
    }
    return n;
}

static Expect *load_expected(size_t *count)
{
    FILE *f = fopen(test_path("ckpt/expected.tsv"), "r");
    CHECK(f != NULL, "cannot open ckpt/expected.tsv");
    if (!f)
        return NULL;
    Expect *e = NULL;
    size_t n = 0, cap = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char shape[128];
        Expect x;
        memset(&x, 0, sizeof x);
        if (sscanf(line, "%7[^\t]\t%127[^\t]\t%159[^\t]\t%127[^\t]\t%lf\t%lf\t%lf", x.kind, x.file, x.name,
                   shape, &x.sum, &x.asum, &x.first) != 7) {
            CHECK(0, "bad expected.tsv line: %s", line);
            continue;
        }
        x.ndim = parse_shape(shape, x.shape);
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            e = realloc(e, cap * sizeof *e);
        }
        e[n++] = x;
    }
    fclose(f);
    *count = n;
    return e;
}

static void check_values(const char *what, int ndim, const int64_t *shape, const float *f, const int64_t *i,
                         int64_t numel, const Expect *x)
{
    CHECK(ndim == x->ndim, "%s: ndim %d, expected %d", what, ndim, x->ndim);
    for (int d = 0; d < ndim && d < x->ndim; d++)
        CHECK(shape[d] == x->shape[d], "%s: dim %d is %lld, expected %lld", what, d, (long long)shape[d],
              (long long)x->shape[d]);
    double s = 0, a = 0;
    for (int64_t k = 0; k < numel; k++) {
        double v = f ? (double)f[k] : (double)i[k];
        s += v;
        a += fabs(v);
    }
    double tol = 1e-6 * x->asum + 1e-9;
    CHECK(fabs(s - x->sum) <= tol, "%s: sum %.9g, expected %.9g", what, s, x->sum);
    CHECK(fabs(a - x->asum) <= tol, "%s: sum|x| %.9g, expected %.9g", what, a, x->asum);
    if (numel > 0) {
        double v0 = f ? (double)f[0] : (double)i[0];
        CHECK(fabs(v0 - x->first) <= 1e-6 * fabs(x->first) + 1e-12, "%s: first %.9g, expected %.9g", what, v0,
              x->first);
    }
}

/* follow "a/b/0/c" through dicts (str keys, then int keys) */
static const AsPValue *tree_get(const AsPValue *v, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *tok = strtok_r(buf, "/", &save); tok && v; tok = strtok_r(NULL, "/", &save)) {
        const AsPValue *n = as_pv_get(v, tok);
        if (!n) {
            char *end;
            long long k = strtoll(tok, &end, 10);
            if (*end == '\0')
                n = as_pv_get_int(v, k);
        }
        v = n;
    }
    return v;
}

static void test_expected(void)
{
    size_t n = 0;
    Expect *e = load_expected(&n);
    CHECK(n > 300, "expected.tsv has %zu lines", n);
    size_t checked_ckpt = 0, checked_tree = 0;
    for (size_t i = 0; i < n;) {
        /* group consecutive lines of the same file and kind */
        size_t j = i;
        while (j < n && strcmp(e[j].file, e[i].file) == 0 && strcmp(e[j].kind, e[i].kind) == 0)
            j++;
        const char *path = test_path(e[i].file);
        AsError err;
        if (strcmp(e[i].kind, "ckpt") == 0) {
            AsTensorMap m;
            as_tmap_init(&m);
            int rc = as_checkpoint_load(path, &m, &err);
            CHECK(rc == 0, "%s: %s", path, err.msg);
            if (rc == 0) {
                CHECK(m.count == j - i, "%s: %zu tensors loaded, expected %zu", e[i].file, m.count, j - i);
                for (size_t k = i; k < j; k++) {
                    const AsTensor *t = as_tmap_find(&m, e[k].name);
                    char what[400];
                    snprintf(what, sizeof what, "%s: %s", e[k].file, e[k].name);
                    CHECK(t != NULL, "%s: missing", what);
                    if (t) {
                        check_values(what, t->ndim, t->shape, t->data, NULL, t->numel, &e[k]);
                        checked_ckpt++;
                    }
                }
            }
            as_tmap_free(&m);
        } else {
            AsPth p;
            int rc = as_pth_read(path, &p, 0, &err);
            CHECK(rc == 0, "%s: %s", path, err.msg);
            for (size_t k = i; rc == 0 && k < j; k++) {
                const AsPValue *v = tree_get(p.root, e[k].name);
                char what[400];
                snprintf(what, sizeof what, "%s: %s", e[k].file, e[k].name);
                CHECK(v && v->kind == AS_PV_TENSOR, "%s: not found as a tensor", what);
                if (v && v->kind == AS_PV_TENSOR) {
                    CHECK((v->t->f32 != NULL) != (v->t->i64 != NULL), "%s: exactly one of f32/i64", what);
                    check_values(what, v->t->ndim, v->t->shape, v->t->f32, v->t->i64, v->t->numel, &e[k]);
                    checked_tree++;
                }
            }
            if (rc == 0)
                as_pth_free(&p);
        }
        i = j;
    }
    CHECK(checked_ckpt > 250 && checked_tree > 40, "checked %zu + %zu tensors", checked_ckpt, checked_tree);
    free(e);
}

static void compare_npy(const char *ckpt, const char *tensor, const char *npy)
{
    AsTensorMap m;
    AsNpy a;
    AsError err;
    as_tmap_init(&m);
    memset(&a, 0, sizeof a);
    int rc = as_checkpoint_load(test_path(ckpt), &m, &err);
    CHECK(rc == 0, "%s: %s", ckpt, err.msg);
    int rn = as_npy_read(test_path(npy), &a, &err);
    CHECK(rn == 0, "%s: %s", npy, err.msg);
    const AsTensor *t = rc ? NULL : as_tmap_find(&m, tensor);
    CHECK(t != NULL, "%s: no tensor %s", ckpt, tensor);
    if (t && rn == 0 && a.dtype == AS_DT_F32) {
        CHECK(t->numel == a.numel && t->ndim == a.ndim, "%s: size differs from %s", tensor, npy);
        if (t->numel == a.numel) {
            int64_t bad = 0;
            for (int64_t k = 0; k < t->numel; k++)
                bad += t->data[k] != ((const float *)a.data)[k];
            CHECK(bad == 0, "%s: %lld values differ from %s", tensor, (long long)bad, npy);
        }
    }
    if (rn == 0)
        as_npy_free(&a);
    as_tmap_free(&m);
}

static void test_npy_exact(void)
{
    compare_npy("reference/infer_small8/alignseg.pth", "blocks.0.attn.qkv.weight", "ckpt/small8_qkv0.npy");
    compare_npy("ckpt/views.pth", "slice", "ckpt/views_slice.npy");
    compare_npy("ckpt/views.pth", "transposed", "ckpt/views_transposed.npy");
    compare_npy("ckpt/dtypes.pth", "f16", "ckpt/dtypes_f16.npy");
}

static void test_borrow_and_errors(void)
{
    AsTensorMap m;
    AsError err;
    as_tmap_init(&m);
    int rc = as_checkpoint_load(test_path("reference/infer_tiny/alignseg.pth"), &m, &err);
    CHECK(rc == 0, "%s", err.msg);
    size_t borrowed = 0;
    for (size_t i = 0; i < m.count; i++)
        borrowed += m.items[i].borrowed;
    CHECK(borrowed == m.count && m.nregions == 1, "float32 tensors borrowed from the mapping: %zu of %zu",
          borrowed, m.count);
    /* the mapping is private: writing a weight must not crash nor touch the file */
    AsTensor *t = as_tmap_find(&m, "cls_token");
    CHECK(t != NULL, "cls_token present (backbone. stripped)");
    CHECK(as_tmap_find(&m, "clsQueries.weight") != NULL, "decoder key kept as is");
    float orig = t ? t->data[0] : 0;
    if (t)
        t->data[0] = 12345.0f;
    as_tmap_free(&m);
    as_tmap_init(&m);
    rc = as_checkpoint_load(test_path("reference/infer_tiny/alignseg.pth"), &m, &err);
    t = rc ? NULL : as_tmap_find(&m, "cls_token");
    CHECK(t && t->data[0] == orig, "file unchanged after writing to the mapping");
    as_tmap_free(&m);

    /* legacy file: a clear error with the re-save advice */
    as_tmap_init(&m);
    rc = as_checkpoint_load(test_path("ckpt/legacy.pth"), &m, &err);
    CHECK(rc == AS_ERR_UNSUPPORTED, "legacy: code %d", rc);
    CHECK(strstr(err.msg, "torch.save(torch.load(f), f2)") && strstr(err.msg, "legacy.pth"), "legacy: %s",
          err.msg);
    CHECK(m.count == 0, "nothing loaded on error");
    rc = as_checkpoint_load(test_path("ckpt/does_not_exist.pth"), &m, &err);
    CHECK(rc == AS_ERR_IO && strstr(err.msg, "does_not_exist.pth"), "missing file: %s", err.msg);
    as_tmap_free(&m);

    /* the tree keeps non-tensor values: epoch, args (inert Namespace) */
    AsPth p;
    rc = as_pth_read(test_path("ckpt/teacher.pth"), &p, 0, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc == 0) {
        const AsPValue *ep = as_pv_get(p.root, "epoch");
        CHECK(ep && ep->kind == AS_PV_INT && ep->i == 100, "epoch 100");
        const AsPValue *args = as_pv_get(p.root, "args");
        CHECK(args && args->kind == AS_PV_OBJECT, "args is an inert object");
        const AsPValue *arch = as_pv_get(args, "arch");
        CHECK(arch && arch->kind == AS_PV_STR && strcmp(arch->s, "vit_small") == 0, "args.arch");
        double lr = 0;
        CHECK(as_pv_number(as_pv_get(args, "lr"), &lr) && lr == 0.0005, "args.lr %g", lr);
        as_pth_free(&p);
    }
    /* optimizer state of the reference training step: int keys, step tensors, groups */
    rc = as_pth_read(test_path("reference/train_tiny/alignseg_after.pth"), &p, AS_PTH_BORROW, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc == 0) {
        const AsPValue *st = tree_get(p.root, "optimizer/state/0/step");
        double step = 0;
        CHECK(as_pv_number(st, &step) && step == 1.0, "optimizer step %g", step);
        const AsPValue *groups = tree_get(p.root, "optimizer/param_groups");
        CHECK(groups && groups->kind == AS_PV_LIST && groups->count == 3, "3 param groups");
        if (groups && groups->count) {
            const AsPValue *betas = as_pv_get(groups->items[0], "betas");
            CHECK(betas && betas->kind == AS_PV_TUPLE && betas->count == 2 && betas->items[0]->f == 0.9,
                  "betas tuple");
            double wd = -1;
            CHECK(as_pv_number(as_pv_get(groups->items[0], "weight_decay"), &wd) && wd == 0.04, "wd %g", wd);
            const AsPValue *fe = as_pv_get(groups->items[0], "foreach");
            CHECK(fe && fe->kind == AS_PV_NONE, "foreach None");
        }
        const AsPValue *sd = as_pv_get(p.root, "state_dict");
        CHECK(sd && sd->kind == AS_PV_DICT && sd->ordered, "state_dict is an OrderedDict");
        as_pth_free(&p);
    }
}

/* ---- writer ---- */

static AsPValue *make_tree(float *w, float *steps, int64_t *ids)
{
    AsError err;
    AsPValue *root = as_pv_dict(false);
    AsPValue *sd = as_pv_dict(true);
    int64_t shw[2] = { 3, 4 }, shb[1] = { 4 };
    as_pv_dict_set_str(sd, "module.backbone.blocks.0.attn.qkv.weight", as_pv_tensor_f32(2, shw, w, false), &err);
    as_pv_dict_set_str(sd, "module.model.norm.bias", as_pv_tensor_f32(1, shb, w + 12, true), &err);
    as_pv_dict_set_str(sd, "clsQueries.weight", as_pv_tensor_f32(2, shw, w + 16, false), &err);
    as_pv_dict_set_str(sd, "ids", as_pv_tensor_i64(1, shb, ids, false), &err);
    as_pv_dict_set_str(root, "epoch", as_pv_int(7), &err);
    as_pv_dict_set_str(root, "net", as_pv_str("vit_small"), &err);
    as_pv_dict_set_str(root, "state_dict", sd, &err);
    AsPValue *opt = as_pv_dict(false), *state = as_pv_dict(false), *groups = as_pv_list();
    for (int k = 0; k < 2; k++) {
        AsPValue *s = as_pv_dict(false);
        as_pv_dict_set_str(s, "step", as_pv_tensor_f32(0, NULL, &steps[k], false), &err);
        as_pv_dict_set_str(s, "exp_avg", as_pv_tensor_f32(2, shw, w + 4 * k, true), &err);
        as_pv_dict_set_int(state, k, s, &err);
    }
    AsPValue *g = as_pv_dict(false), *betas = as_pv_tuple(), *params = as_pv_list();
    as_pv_append(betas, as_pv_float(0.9), &err);
    as_pv_append(betas, as_pv_float(0.999), &err);
    as_pv_append(params, as_pv_int(0), &err);
    as_pv_append(params, as_pv_int(1), &err);
    as_pv_dict_set_str(g, "lr", as_pv_float(5e-4), &err);
    as_pv_dict_set_str(g, "betas", betas, &err);
    as_pv_dict_set_str(g, "amsgrad", as_pv_bool(false), &err);
    as_pv_dict_set_str(g, "maximize", as_pv_bool(true), &err);
    as_pv_dict_set_str(g, "foreach", as_pv_none(), &err);
    as_pv_dict_set_str(g, "params", params, &err);
    as_pv_dict_set_str(g, "big", as_pv_int(-((int64_t)1 << 40) - 3), &err);
    as_pv_dict_set_str(g, "mid", as_pv_int(70000), &err);
    as_pv_dict_set_str(g, "neg", as_pv_int(-5), &err);
    as_pv_dict_set_str(g, "blob", as_pv_bytes("a\0\xff\x80z", 5), &err);
    as_pv_append(groups, g, &err);
    as_pv_dict_set_str(opt, "state", state, &err);
    as_pv_dict_set_str(opt, "param_groups", groups, &err);
    as_pv_dict_set_str(root, "optimizer", opt, &err);
    return root;
}

static bool same_tree(const AsPValue *a, const AsPValue *b)
{
    if (!a || !b || a->kind != b->kind || a->count != b->count)
        return false;
    switch (a->kind) {
    case AS_PV_BOOL: return a->b == b->b;
    case AS_PV_INT: return a->i == b->i;
    case AS_PV_FLOAT: return a->f == b->f;
    case AS_PV_STR:
    case AS_PV_BYTES: return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    case AS_PV_TENSOR: {
        const AsPTensor *x = a->t, *y = b->t;
        if (x->ndim != y->ndim || x->numel != y->numel || !x->f32 != !y->f32)
            return false;
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] != y->shape[d])
                return false;
        return x->f32 ? memcmp(x->f32, y->f32, (size_t)x->numel * 4) == 0
                      : memcmp(x->i64, y->i64, (size_t)x->numel * 8) == 0;
    }
    case AS_PV_DICT:
        if (a->ordered != b->ordered)
            return false;
        for (size_t i = 0; i < a->count; i++)
            if (!same_tree(a->keys[i], b->keys[i]) || !same_tree(a->items[i], b->items[i]))
                return false;
        return true;
    default:
        for (size_t i = 0; i < a->count; i++)
            if (!same_tree(a->items[i], b->items[i]))
                return false;
        return true;
    }
}

static void test_writer_roundtrip(void)
{
    float w[40], steps[2] = { 3.0f, 4.0f };
    int64_t ids[4] = { -1, 0, 1LL << 40, 7 };
    for (int i = 0; i < 40; i++)
        w[i] = (float)i * 0.25f - 3.0f;
    AsPValue *root = make_tree(w, steps, ids);
    AsPValue *copy = as_pv_copy(root);
    CHECK(same_tree(root, copy), "as_pv_copy gives an equal tree");
    as_pv_free(copy);
    AsError err;
    const char *path = test_tmp_path("written.pth");
    int rc = as_pth_write(path, NULL, root, &err);
    CHECK(rc == 0, "write: %s", err.msg);
    AsPth p;
    rc = as_pth_read(path, &p, 0, &err);
    CHECK(rc == 0, "read back: %s", err.msg);
    if (rc == 0) {
        CHECK(same_tree(root, p.root), "read-back tree equals the written one");
        as_pth_free(&p);
    }
    /* data entries are 64-byte aligned, archive named after the file */
    uint8_t *buf;
    size_t len;
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "open written");
    if (f) {
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(len);
        CHECK(fread(buf, 1, len, f) == len, "read written");
        fclose(f);
        CHECK(len > 30 && memcmp(buf + 30, "written/data.pkl", 16) == 0, "archive name 'written'");
        const uint8_t *hit = memmem(buf, len, "written/data/0", 14);
        CHECK(hit != NULL, "entry data/0");
        if (hit) {
            size_t lh = (size_t)(hit - buf) - 30;
            size_t doff = lh + 30 + (buf[lh + 26] | buf[lh + 27] << 8) + (buf[lh + 28] | buf[lh + 29] << 8);
            CHECK(doff % 64 == 0, "data/0 at offset %zu is 64-byte aligned", doff);
            float v;
            memcpy(&v, buf + doff, 4);
            CHECK(v == w[0], "data/0 holds the first weight");
        }
        free(buf);
    }
    /* checkpoint view: state_dict chosen, prefixes stripped, int tensor skipped */
    AsTensorMap m;
    as_tmap_init(&m);
    rc = as_checkpoint_load(path, &m, &err);
    CHECK(rc == 0, "%s", err.msg);
    CHECK(m.count == 3, "3 float tensors, got %zu", m.count);
    const AsTensor *t = as_tmap_find(&m, "blocks.0.attn.qkv.weight");
    CHECK(t && t->ndim == 2 && t->shape[0] == 3 && t->data[5] == w[5], "module.backbone. stripped");
    t = as_tmap_find(&m, "norm.bias");
    CHECK(t && t->numel == 4 && t->data[0] == w[12], "module.model. stripped");
    CHECK(as_tmap_find(&m, "clsQueries.weight") != NULL, "clsQueries.weight");
    CHECK(as_tmap_find(&m, "ids") == NULL, "int64 tensor skipped");
    as_tmap_free(&m);

    /* re-writing trees read from torch files (float16/bfloat16/float64 data
     * held as float32, strided views gathered, int64, scalars, Namespace-free) */
    static const char *const rewrite[] = { "ckpt/dtypes.pth", "ckpt/views.pth", "ckpt/module_model.pth",
                                           "reference/train_tiny/alignseg_after.pth" };
    for (size_t i = 0; i < sizeof rewrite / sizeof rewrite[0]; i++) {
        AsPth a, b;
        rc = as_pth_read(test_path(rewrite[i]), &a, AS_PTH_BORROW, &err);
        CHECK(rc == 0, "%s: %s", rewrite[i], err.msg);
        if (rc)
            continue;
        rc = as_pth_write(test_tmp_path("rewritten.pth"), NULL, a.root, &err);
        CHECK(rc == 0, "rewrite %s: %s", rewrite[i], err.msg);
        rc = rc ? rc : as_pth_read(test_tmp_path("rewritten.pth"), &b, 0, &err);
        CHECK(rc == 0, "re-read %s: %s", rewrite[i], err.msg);
        if (rc == 0) {
            CHECK(same_tree(a.root, b.root), "%s survives a write/read cycle", rewrite[i]);
            as_pth_free(&b);
        }
        as_pth_free(&a);
    }

    /* teacher nesting and a state dict with no float tensor */
    AsPValue *r2 = as_pv_dict(false);
    AsPValue *teacher = as_pv_dict(true), *student = as_pv_dict(true);
    int64_t sh[1] = { 2 };
    as_pv_dict_set_str(teacher, "backbone.pos_embed", as_pv_tensor_f32(1, sh, w + 2, true), &err);
    as_pv_dict_set_str(student, "module.backbone.pos_embed", as_pv_tensor_f32(1, sh, w + 8, true), &err);
    as_pv_dict_set_str(r2, "student", student, &err);
    as_pv_dict_set_str(r2, "teacher", teacher, &err);
    rc = as_pth_write(test_tmp_path("dino_full.pth"), "checkpoint", r2, &err);
    CHECK(rc == 0, "%s", err.msg);
    as_tmap_init(&m);
    rc = as_checkpoint_load(test_tmp_path("dino_full.pth"), &m, &err);
    t = rc ? NULL : as_tmap_find(&m, "pos_embed");
    CHECK(t && m.count == 1 && t->data[0] == w[2], "teacher chosen before student");
    as_tmap_free(&m);
    as_pv_free(r2);

    AsPValue *r3 = as_pv_dict(false);
    as_pv_dict_set_str(r3, "epoch", as_pv_int(3), &err);
    as_pv_dict_set_str(r3, "ids", as_pv_tensor_i64(1, sh, ids, true), &err);
    rc = as_pth_write(test_tmp_path("notensor.pth"), NULL, r3, &err);
    CHECK(rc == 0, "%s", err.msg);
    as_tmap_init(&m);
    rc = as_checkpoint_load(test_tmp_path("notensor.pth"), &m, &err);
    CHECK(rc == AS_ERR_FORMAT && strstr(err.msg, "no float tensors"), "no float tensors: %s", err.msg);
    as_tmap_free(&m);
    as_pv_free(r3);

    /* duplicate names after prefix stripping are an error */
    AsPValue *r4 = as_pv_dict(false);
    as_pv_dict_set_str(r4, "backbone.x", as_pv_tensor_f32(1, sh, w, true), &err);
    as_pv_dict_set_str(r4, "module.x", as_pv_tensor_f32(1, sh, w, true), &err);
    rc = as_pth_write(test_tmp_path("dup.pth"), NULL, r4, &err);
    as_tmap_init(&m);
    rc = as_checkpoint_load(test_tmp_path("dup.pth"), &m, &err);
    CHECK(rc != 0 && strstr(err.msg, "twice") && strstr(err.msg, "module.x"), "duplicate: %s", err.msg);
    as_tmap_free(&m);
    as_pv_free(r4);
    as_pv_free(root);
}

static void test_json(void)
{
    const char *txt = "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {\"c\": 9007199254740993}}";
    AsJson *j;
    AsError err;
    int rc = as_json_parse(txt, strlen(txt), "t.json", &j, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc)
        return;
    const AsJson *a = as_json_get(j, "a");
    CHECK(a && a->count == 5, "array of 5");
    CHECK(as_json_num(as_json_at(a, 1), 0) == -2500.0, "number");
    CHECK(as_json_at(a, 2)->type == AS_JSON_BOOL && as_json_at(a, 2)->b, "true");
    CHECK(as_json_at(a, 3)->type == AS_JSON_NULL, "null");
    CHECK(strcmp(as_json_str(as_json_at(a, 4), ""), "x\xc3\xa9\xf0\x9f\x98\x80\n") == 0, "unicode escapes");
    const AsJson *c = as_json_get(as_json_get(j, "b"), "c");
    CHECK(c && c->is_int && c->i == 9007199254740993LL, "exact int64");
    as_json_free(j);
    static const char *bad[] = { "", "{", "[1,]", "{\"a\" 1}", "01", "\"abc", "[1] x", "\"\\x\"", "tru", "-", "1e" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = as_json_parse(bad[i], strlen(bad[i]), "bad.json", &j, &err);
        CHECK(rc == AS_ERR_FORMAT && strstr(err.msg, "bad.json"), "'%s' rejected: %s", bad[i], err.msg);
    }
    /* numbers do not depend on the locale (the viewer calls setlocale) */
    static const char *const comma_locales[] = { "de_DE.UTF-8", "fr_FR.UTF-8", "de_DE.utf8", "fr_FR.utf8" };
    for (size_t i = 0; i < 4; i++) {
        if (setlocale(LC_NUMERIC, comma_locales[i])) {
            AsJson *k;
            rc = as_json_parse("[0.5]", 5, "l.json", &k, &err);
            CHECK(rc == 0 && as_json_num(as_json_at(k, 0), 0) == 0.5, "0.5 under %s", comma_locales[i]);
            if (rc == 0)
                as_json_free(k);
            setlocale(LC_NUMERIC, "C");
            break;
        }
    }
    char deep[1000];
    memset(deep, '[', sizeof deep);
    rc = as_json_parse(deep, sizeof deep, "deep.json", &j, &err);
    CHECK(rc == AS_ERR_FORMAT && strstr(err.msg, "deeper"), "deep nesting: %s", err.msg);
}

/* Python's own pickles (protocols 0-5) of the literal in make_ckpt_expected.py:
 * {'a': [1, 2.5, None, True, False, 'é€', b'\x00\xff', (1, 2), (), (3,), (4, 5, 6, 7)],
 *  'big': 2**40, 'neg': -300, 'm': -2**63, 'n': 70000, 'nested': {'x': [[], {}]},
 *  1: 'one', 'od': OrderedDict([('k', 1.0), ('j', -0.5)])} */
static void test_plain_pickles(void)
{
    for (int proto = 0; proto <= 5; proto++) {
        char rel[64];
        snprintf(rel, sizeof rel, "ckpt/plain_p%d.pkl", proto);
        FILE *f = fopen(test_path(rel), "rb");
        CHECK(f != NULL, "open %s", rel);
        if (!f)
            continue;
        uint8_t buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        uint8_t *exact = malloc(n);
        memcpy(exact, buf, n);
        AsPValue *v = NULL;
        AsError err;
        int rc = as_pickle_read(exact, n, rel, &v, &err);
        CHECK(rc == 0, "%s: %s", rel, err.msg);
        if (rc == 0) {
            const AsPValue *a = as_pv_get(v, "a");
            CHECK(a && a->kind == AS_PV_LIST && a->count == 11, "%s: list a", rel);
            if (a && a->count == 11) {
                CHECK(a->items[0]->kind == AS_PV_INT && a->items[0]->i == 1, "%s: 1", rel);
                CHECK(a->items[1]->kind == AS_PV_FLOAT && a->items[1]->f == 2.5, "%s: 2.5", rel);
                CHECK(a->items[2]->kind == AS_PV_NONE, "%s: None", rel);
                CHECK(a->items[3]->kind == AS_PV_BOOL && a->items[3]->b, "%s: True", rel);
                CHECK(a->items[4]->kind == AS_PV_BOOL && !a->items[4]->b, "%s: False", rel);
                CHECK(a->items[5]->kind == AS_PV_STR && strcmp(a->items[5]->s, "\xc3\xa9\xe2\x82\xac") == 0,
                      "%s: unicode '%s'", rel, a->items[5]->s ? a->items[5]->s : "");
                CHECK(a->items[6]->kind == AS_PV_BYTES && a->items[6]->len == 2 &&
                          memcmp(a->items[6]->s, "\x00\xff", 2) == 0, "%s: bytes", rel);
                CHECK(a->items[7]->kind == AS_PV_TUPLE && a->items[7]->count == 2 && a->items[7]->items[1]->i == 2,
                      "%s: (1, 2)", rel);
                CHECK(a->items[8]->kind == AS_PV_TUPLE && a->items[8]->count == 0, "%s: ()", rel);
                CHECK(a->items[9]->kind == AS_PV_TUPLE && a->items[9]->count == 1, "%s: (3,)", rel);
                CHECK(a->items[10]->kind == AS_PV_TUPLE && a->items[10]->count == 4 && a->items[10]->items[3]->i == 7,
                      "%s: 4-tuple", rel);
            }
            const AsPValue *x;
            x = as_pv_get(v, "big");
            CHECK(x && x->kind == AS_PV_INT && x->i == (1LL << 40), "%s: 2**40", rel);
            x = as_pv_get(v, "neg");
            CHECK(x && x->i == -300, "%s: -300", rel);
            x = as_pv_get(v, "m");
            CHECK(x && x->kind == AS_PV_INT && x->i == INT64_MIN, "%s: -2**63", rel);
            x = as_pv_get(v, "n");
            CHECK(x && x->i == 70000, "%s: 70000", rel);
            x = as_pv_get(as_pv_get(v, "nested"), "x");
            CHECK(x && x->kind == AS_PV_LIST && x->count == 2 && x->items[0]->kind == AS_PV_LIST &&
                      x->items[1]->kind == AS_PV_DICT, "%s: nested", rel);
            x = as_pv_get_int(v, 1);
            CHECK(x && x->kind == AS_PV_STR && strcmp(x->s, "one") == 0, "%s: int key", rel);
            x = as_pv_get(v, "od");
            CHECK(x && x->kind == AS_PV_DICT && x->ordered && x->count == 2, "%s: OrderedDict", rel);
            if (x && x->count == 2)
                CHECK(strcmp(x->keys[0]->s, "k") == 0 && x->items[1]->f == -0.5, "%s: OrderedDict order", rel);
            as_pv_free(v);
        }
        free(exact);
    }
    /* a repeated key keeps the last value, as in Python */
    static const uint8_t dup[] = { 0x80, 2, '}', 'X', 1, 0, 0, 0, 'a', 'K', 1, 's', 'X', 1, 0, 0, 0, 'a', 'K', 2, 's', '.' };
    AsPValue *v = NULL;
    AsError err;
    CHECK(as_pickle_read(dup, sizeof dup, "dup", &v, &err) == 0, "%s", err.msg);
    CHECK(v && v->count == 1 && as_pv_get(v, "a")->i == 2, "last value wins");
    as_pv_free(v);
}

/* ---- PyTorch interop (python3-torch) ---- */

static int test_torch(void)
{
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("checkpoint_torch: python3-torch not available: skipped\n");
        return 77;
    }
    float w[40], steps[2] = { 3.0f, 4.0f };
    int64_t ids[4] = { -1, 0, 1LL << 40, 7 };
    for (int i = 0; i < 40; i++)
        w[i] = (float)i * 0.25f - 3.0f;
    AsPValue *root = make_tree(w, steps, ids);
    AsError err;
    int rc = as_pth_write(test_tmp_path("ours.pth"), NULL, root, &err);
    CHECK(rc == 0, "%s", err.msg);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 - '%s' '%s' '%s' <<'EOF'\n"
             "import sys, json, collections, torch\n"
             "d = torch.load(sys.argv[1])\n"
             "sd = d['state_dict']; o = d['optimizer']; g = o['param_groups'][0]\n"
             "r = {'ordered': isinstance(sd, collections.OrderedDict), 'plain': type(d) is dict,\n"
             "     'keys': list(sd.keys()), 'epoch': d['epoch'], 'net': d['net'],\n"
             "     'qkv_sum': float(sd['module.backbone.blocks.0.attn.qkv.weight'].double().sum()),\n"
             "     'qkv_shape': list(sd['module.backbone.blocks.0.attn.qkv.weight'].shape),\n"
             "     'ids': sd['ids'].tolist(), 'ids_dtype': str(sd['ids'].dtype),\n"
             "     'step1': float(o['state'][1]['step']), 'step_dim': o['state'][1]['step'].dim(),\n"
             "     'state_keys': sorted(o['state'].keys()), 'betas_tuple': isinstance(g['betas'], tuple),\n"
             "     'betas': list(g['betas']), 'lr': g['lr'], 'params': g['params'], 'big': g['big'],\n"
             "     'mid': g['mid'], 'neg': g['neg'], 'blob': list(g['blob']), 'foreach': g['foreach'],\n"
             "     'maximize': g['maximize']}\n"
             "json.dump(r, open(sys.argv[2], 'w'))\n"
             "d['state_dict']['added'] = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()\n"
             "torch.save(d, sys.argv[3])\n"
             "EOF",
             test_tmp_path("ours.pth"), test_tmp_path("torch.json"), test_tmp_path("resaved.pth"));
    rc = system(cmd);
    CHECK(rc == 0, "python torch.load of our file failed (exit %d)", rc);
    AsJson *j = NULL;
    if (rc == 0 && as_json_read_file(test_tmp_path("torch.json"), &j, &err) == 0) {
        CHECK(as_json_get(j, "ordered")->b, "state_dict is an OrderedDict in torch");
        CHECK(as_json_get(j, "plain")->b, "root is a dict in torch");
        CHECK(as_json_num(as_json_get(j, "epoch"), 0) == 7, "epoch");
        CHECK(strcmp(as_json_str(as_json_get(j, "net"), ""), "vit_small") == 0, "net");
        double s = 0;
        for (int i = 0; i < 12; i++)
            s += w[i];
        CHECK_NEAR(as_json_num(as_json_get(j, "qkv_sum"), 0), s, 1e-9, "qkv sum in torch");
        CHECK(as_json_at(as_json_get(j, "qkv_shape"), 0)->i == 3, "shape");
        const AsJson *ij = as_json_get(j, "ids");
        CHECK(ij && ij->count == 4 && as_json_at(ij, 2)->i == (1LL << 40) && as_json_at(ij, 0)->i == -1, "ids");
        CHECK(strcmp(as_json_str(as_json_get(j, "ids_dtype"), ""), "torch.int64") == 0, "int64 dtype");
        CHECK(as_json_num(as_json_get(j, "step1"), 0) == 4.0, "step");
        CHECK(as_json_num(as_json_get(j, "step_dim"), -1) == 0, "0-dim step");
        CHECK(as_json_get(j, "betas_tuple")->b, "betas tuple");
        CHECK(as_json_num(as_json_at(as_json_get(j, "betas"), 1), 0) == 0.999, "beta2");
        CHECK(as_json_num(as_json_get(j, "lr"), 0) == 5e-4, "lr");
        CHECK(as_json_get(j, "big")->i == -((int64_t)1 << 40) - 3, "big int");
        CHECK(as_json_get(j, "mid")->i == 70000 && as_json_get(j, "neg")->i == -5, "ints");
        const AsJson *blob = as_json_get(j, "blob");
        CHECK(blob && blob->count == 5 && as_json_at(blob, 2)->i == 255 && as_json_at(blob, 1)->i == 0,
              "bytes via _codecs.encode");
        CHECK(as_json_get(j, "foreach")->type == AS_JSON_NULL, "None");
        CHECK(as_json_get(j, "maximize")->b, "True");
        as_json_free(j);
    } else {
        CHECK(0, "torch.json: %s", err.msg);
    }
    /* and read back what torch re-saved (with a transposed view added) */
    AsTensorMap m;
    as_tmap_init(&m);
    rc = as_checkpoint_load(test_tmp_path("resaved.pth"), &m, &err);
    CHECK(rc == 0, "%s", err.msg);
    const AsTensor *t = rc ? NULL : as_tmap_find(&m, "added");
    CHECK(t && t->shape[0] == 3 && t->shape[1] == 2, "added (3,2)");
    if (t) {
        static const float want[6] = { 0, 3, 1, 4, 2, 5 };
        for (int i = 0; i < 6; i++)
            CHECK(t->data[i] == want[i], "added[%d] = %g", i, t->data[i]);
    }
    t = rc ? NULL : as_tmap_find(&m, "blocks.0.attn.qkv.weight");
    CHECK(t && t->data[11] == w[11], "weights survive torch re-save");
    as_tmap_free(&m);
    as_pv_free(root);
    return check_report("checkpoint_torch");
}

int main(int argc, char **argv)
{
    if (!test_tmpdir())
        return 1;
    int rc;
    if (argc > 1 && strcmp(argv[1], "torch") == 0) {
        rc = test_torch();
    } else {
        test_expected();
        test_npy_exact();
        test_borrow_and_errors();
        test_writer_roundtrip();
        test_json();
        test_plain_pickles();
        rc = check_report("checkpoint");
    }
    return rc;
}
