/* test_parity: the inference core against the reference numbers produced by
 * the published PyTorch implementation (tests/data/reference, see its
 * README.md). Each inference case is run twice: with the full AlignSeg
 * checkpoint, and with the DINO backbone file plus the decoder from the
 * AlignSeg checkpoint. Real-valued arrays must agree to 1e-4 absolute; masks
 * and labels exactly, except where two prototypes' scores tie within 1e-5.
 * Prints the largest absolute error of every array. */
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "image.h"
#include "model.h"
#include "npy.h"
#include "resample.h"
#include "segment.h"
#include "vit.h"

#define TOL 1e-4
#define TIE 1e-5

/* Number after "key": in a flat JSON object (the reference's case.json). */
static double json_num(const char *json, const char *key, double def)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : def;
}

static int load_npy(const char *cs, const char *name, AsNpy *a)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/%s", cs, name);
    AsError err = { 0 };
    int rc = as_npy_read(test_path(rel), a, &err);
    CHECK(rc == 0, "%s", err.msg);
    return rc;
}

static double max_abs(const float *a, const float *b, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m))
            m = d; /* also catches NaN */
    }
    return m;
}

/* Compare a float array with a reference .npy of the same element count. */
static void cmp_f32(const char *tag, const char *cs, const char *name, const float *mine,
                    int64_t n)
{
    AsNpy a;
    if (load_npy(cs, name, &a))
        return;
    CHECK(a.dtype == AS_DT_F32 && a.numel == n, "%s %s: %lld values, expected %lld", tag, name,
          (long long)a.numel, (long long)n);
    if (a.dtype == AS_DT_F32 && a.numel == n) {
        double e = max_abs(mine, a.data, n);
        printf("  %-28s %-16s max abs err %.3g\n", tag, name, e);
        CHECK(e <= TOL, "%s %s: max abs error %g", tag, name, e);
    }
    as_npy_free(&a);
}

/* Labels may differ only where the reference's and our winners score within TIE. */
static void cmp_labels(const char *tag, const char *cs, const char *name, const int32_t *mine,
                       int64_t n, const float *scores, int q)
{
    AsNpy a;
    if (load_npy(cs, name, &a))
        return;
    CHECK(a.dtype == AS_DT_I32 && a.numel == n, "%s %s: wrong size", tag, name);
    if (a.dtype == AS_DT_I32 && a.numel == n) {
        const int32_t *ref = a.data;
        int64_t diff = 0, bad = 0;
        for (int64_t i = 0; i < n; i++) {
            if (ref[i] == mine[i])
                continue;
            diff++;
            if (ref[i] < 0 || ref[i] >= q ||
                fabsf(scores[i * q + ref[i]] - scores[i * q + mine[i]]) > TIE)
                bad++;
        }
        printf("  %-28s %-16s %lld differ (%lld not ties) of %lld\n", tag, name, (long long)diff,
               (long long)bad, (long long)n);
        CHECK(bad == 0, "%s %s: %lld labels differ beyond ties", tag, name, (long long)bad);
    }
    as_npy_free(&a);
}

/* Bilinearly upsampled scores (h*w, q), to judge ties of labels_full. */
static float *upsampled_scores(const AsResult *r)
{
    float *s = malloc((size_t)r->in_h * r->in_w * r->q * sizeof *s);
    if (!s)
        return NULL;
    for (int y = 0; y < r->in_h; y++) {
        int y0, y1, x0, x1;
        float wy0, wy1, wx0, wx1;
        as_bilinear_index(y, r->gh, r->in_h, &y0, &y1, &wy0, &wy1);
        for (int x = 0; x < r->in_w; x++) {
            as_bilinear_index(x, r->gw, r->in_w, &x0, &x1, &wx0, &wx1);
            for (int c = 0; c < r->q; c++) {
                const float *a = r->assign;
                const int gw = r->gw, q = r->q;
                s[((size_t)y * r->in_w + x) * q + c] =
                    wy0 * (wx0 * a[(y0 * gw + x0) * q + c] + wx1 * a[(y0 * gw + x1) * q + c]) +
                    wy1 * (wx0 * a[(y1 * gw + x0) * q + c] + wx1 * a[(y1 * gw + x1) * q + c]);
            }
        }
    }
    return s;
}

static void cmp_mask(const char *tag, const char *cs, const AsResult *r)
{
    AsNpy a;
    if (load_npy(cs, "fg_mask.npy", &a))
        return;
    CHECK(a.dtype == AS_DT_F32 && a.numel == r->n, "%s fg_mask: wrong size", tag);
    if (a.dtype == AS_DT_F32 && a.numel == r->n) {
        int diff = 0, fg = 0;
        for (int i = 0; i < r->n; i++) {
            diff += (((const float *)a.data)[i] != 0.0f) != (r->fg_mask[i] != 0);
            fg += r->fg_mask[i] != 0;
        }
        printf("  %-28s %-16s %d differ of %d (%d foreground)\n", tag, "fg_mask.npy", diff, r->n,
               fg);
        CHECK(diff == 0, "%s fg_mask: %d patches differ", tag, diff);
    }
    as_npy_free(&a);
}

static int load_input(const char *cs, AsNpy *in)
{
    if (load_npy(cs, "input_norm.npy", in))
        return 1;
    CHECK(in->dtype == AS_DT_F32 && in->ndim == 3 && in->shape[0] == 3, "%s: input_norm shape",
          cs);
    return !(in->dtype == AS_DT_F32 && in->ndim == 3 && in->shape[0] == 3);
}

static void check_full_result(const char *tag, const char *cs, const AsResult *r)
{
    cmp_f32(tag, cs, "tokens.npy", r->tokens, (int64_t)r->n * r->dim);
    cmp_f32(tag, cs, "cls_token.npy", r->cls_token, r->dim);
    cmp_f32(tag, cs, "cls_attn.npy", r->cls_attn, (int64_t)r->heads * r->n);
    cmp_f32(tag, cs, "cls_attn_mean.npy", r->cls_attn_mean, r->n);
    cmp_f32(tag, cs, "queries.npy", r->queries, (int64_t)r->q * r->dim);
    cmp_f32(tag, cs, "similarity.npy", r->similarity, (int64_t)r->n * r->q);
    cmp_f32(tag, cs, "assign.npy", r->assign, (int64_t)r->n * r->q);
    cmp_mask(tag, cs, r);
    cmp_labels(tag, cs, "labels_patch.npy", r->labels_patch, r->n, r->assign, r->q);
    float *up = upsampled_scores(r);
    CHECK(up != NULL, "out of memory");
    if (up)
        cmp_labels(tag, cs, "labels_full.npy", r->labels_full, (int64_t)r->in_h * r->in_w, up,
                   r->q);
    free(up);
}

static AsModel *load_model(const char *cs, const char *model, const char *backbone,
                           const AsModelOptions *opt)
{
    char mp[256], bp[256];
    snprintf(mp, sizeof mp, "reference/%s/%s", cs, model);
    snprintf(bp, sizeof bp, "reference/%s/%s", cs, backbone ? backbone : "");
    AsModel *m = NULL;
    AsError err = { 0 };
    int rc = as_model_load(test_path(mp), backbone ? test_path(bp) : NULL, opt, &m, &err);
    CHECK(rc == 0 && m, "%s/%s: %s", cs, model, err.msg);
    return rc ? NULL : m;
}

/* as_segment_image on input.png (already at the model's input size) must
 * give what the input_norm.npy path gives. */
static void check_image_path(const char *cs, const AsModel *m, const AsSegmentOptions *o,
                             const AsResult *ref)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/input.png", cs);
    AsImage img = { 0 };
    AsError err = { 0 };
    int rc = as_image_load(test_path(rel), &img, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc)
        return;
    AsSegmentOptions oi = *o;
    if (img.w == img.h) {
        oi.size = img.w;
        oi.long_side = 0;
    } else {
        oi.long_side = img.w > img.h ? img.w : img.h;
    }
    AsResult r;
    rc = as_segment_image(m, &img, &oi, &r, &err);
    CHECK(rc == 0, "%s: as_segment_image: %s", cs, err.msg);
    if (!rc) {
        CHECK(r.in_w == ref->in_w && r.in_h == ref->in_h, "%s: image path input %dx%d, npy %dx%d",
              cs, r.in_w, r.in_h, ref->in_w, ref->in_h);
        if (r.in_w == ref->in_w && r.in_h == ref->in_h && r.q == ref->q) {
            double e = max_abs(r.tokens, ref->tokens, (int64_t)r.n * r.dim);
            printf("  %-28s %-16s max abs err %.3g\n", "image path vs npy path", "tokens", e);
            CHECK(e <= TOL, "%s: image path tokens differ by %g", cs, e);
            e = max_abs(r.assign, ref->assign, (int64_t)r.n * r.q);
            CHECK(e <= TOL, "%s: image path assign differs by %g", cs, e);
            int ld = 0, md = 0;
            for (int i = 0; i < r.n; i++) {
                ld += r.labels_patch[i] != ref->labels_patch[i];
                md += r.fg_mask[i] != ref->fg_mask[i];
            }
            CHECK(ld == 0 && md == 0, "%s: image path: %d labels, %d mask patches differ", cs, ld,
                  md);
        }
        as_result_free(&r);
    }
    as_image_free(&img);
}

static void run_inference_case(const char *cs)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/case.json", cs);
    char *json = test_slurp(test_path(rel));
    CHECK(json != NULL, "%s: cannot read case.json", cs);
    AsModelOptions opt = { .encoder_heads = (int)json_num(json, "heads", 0),
                           .decoder_heads = (int)json_num(json, "dec_heads", 0) };
    AsSegmentOptions so;
    as_segment_options_default(&so);
    so.mass_threshold = (float)json_num(json, "mass_threshold", 0.6);
    free(json);
    AsNpy in;
    if (load_input(cs, &in))
        return;
    const int h = (int)in.shape[1], w = (int)in.shape[2];
    for (int variant = 0; variant < 2; variant++) {
        AsModel *m = variant == 0 ? load_model(cs, "alignseg.pth", NULL, &opt)
                                  : load_model(cs, "alignseg.pth", "dino_backbone.pth", &opt);
        if (!m)
            continue;
        char tag[128];
        snprintf(tag, sizeof tag, "%s%s", cs, variant == 0 ? "" : " (backbone+dec)");
        CHECK(m->has_decoder, "%s: decoder expected", tag);
        AsResult r;
        AsError err = { 0 };
        int rc = as_segment(m, in.data, h, w, &so, &r, &err);
        CHECK(rc == 0, "%s: %s", tag, err.msg);
        if (!rc) {
            check_full_result(tag, cs, &r);
            CHECK(r.cross_attn != NULL && r.dec_heads == opt.decoder_heads,
                  "%s: cross-attention missing", tag);
            if (variant == 0)
                check_image_path(cs, m, &so, &r);
            as_result_free(&r);
        }
        as_model_free(m);
    }
    /* the backbone alone: backbone-only mode with k-means prototypes */
    AsModel *b = load_model(cs, "dino_backbone.pth", NULL, &opt);
    if (b) {
        CHECK(!b->has_decoder, "%s: dino_backbone.pth must give backbone-only mode", cs);
        AsResult r1, r2;
        AsError err = { 0 };
        so.prototypes = 3;
        int rc1 = as_segment(b, in.data, h, w, &so, &r1, &err);
        CHECK(rc1 == 0, "%s backbone-only: %s", cs, err.msg);
        int rc2 = as_segment(b, in.data, h, w, &so, &r2, &err);
        CHECK(rc2 == 0, "%s backbone-only: %s", cs, err.msg);
        if (!rc1 && !rc2) {
            char tag[128];
            snprintf(tag, sizeof tag, "%s (backbone only)", cs);
            cmp_f32(tag, cs, "tokens.npy", r1.tokens, (int64_t)r1.n * r1.dim);
            cmp_mask(tag, cs, &r1);
            CHECK(r1.backbone_only && r1.q == 3 && r1.cross_attn == NULL,
                  "%s: backbone-only result q=%d", cs, r1.q);
            CHECK(!memcmp(r1.queries, r2.queries, (size_t)r1.q * r1.dim * sizeof(float)),
                  "%s: k-means prototypes are not deterministic", cs);
            for (int c = 0; c < r1.q; c++) {
                double s = 0.0;
                for (int j = 0; j < r1.dim; j++)
                    s += (double)r1.queries[c * r1.dim + j] * r1.queries[c * r1.dim + j];
                CHECK_NEAR(s, 1.0, 1e-4, "k-means centre norm");
            }
            /* every patch carries the label of its most similar centre */
            int used[64] = { 0 };
            for (int i = 0; i < r1.n; i++) {
                const int l = r1.labels_patch[i];
                CHECK(l >= 0 && l < r1.q, "label %d out of range", l);
                if (l >= 0 && l < 64)
                    used[l] = 1;
            }
            int nused = 0;
            for (int c = 0; c < r1.q; c++)
                nused += used[c];
            CHECK(nused >= 2, "%s: k-means used only %d of %d prototypes", cs, nused, r1.q);
        }
        if (!rc1)
            as_result_free(&r1);
        if (!rc2)
            as_result_free(&r2);
        as_model_free(b);
    }
    as_npy_free(&in);
}

static void run_backbone_rect(void)
{
    const char *cs = "backbone_rect";
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/case.json", cs);
    char *json = test_slurp(test_path(rel));
    AsModelOptions opt = { .encoder_heads = (int)json_num(json, "heads", 0) };
    free(json);
    AsModel *m = load_model(cs, "dino_backbone.pth", NULL, &opt);
    AsNpy in;
    if (!m || load_input(cs, &in)) {
        as_model_free(m);
        return;
    }
    const int h = (int)in.shape[1], w = (int)in.shape[2];
    CHECK(!m->has_decoder, "backbone_rect: backbone-only expected");
    const int gh = h / m->enc.cfg.patch, gw = w / m->enc.cfg.patch, d = m->enc.cfg.dim;
    float *pos = malloc((size_t)(1 + gh * gw) * d * sizeof *pos);
    if (pos) {
        as_vit_pos_embed(&m->enc, gh, gw, pos);
        cmp_f32(cs, cs, "pos_embed_resized.npy", pos, (int64_t)(1 + gh * gw) * d);
        free(pos);
    }
    AsSegmentOptions so;
    as_segment_options_default(&so);
    AsResult r;
    AsError err = { 0 };
    int rc = as_segment(m, in.data, h, w, &so, &r, &err);
    CHECK(rc == 0, "%s: %s", cs, err.msg);
    if (!rc) {
        cmp_f32(cs, cs, "tokens.npy", r.tokens, (int64_t)r.n * r.dim);
        cmp_f32(cs, cs, "cls_token.npy", r.cls_token, r.dim);
        cmp_f32(cs, cs, "cls_attn.npy", r.cls_attn, (int64_t)r.heads * r.n);
        CHECK(r.gh == 5 && r.gw == 8 && r.q == 5, "backbone_rect: grid %dx%d q %d", r.gh, r.gw,
              r.q);
        check_image_path(cs, m, &so, &r);
        as_result_free(&r);
    }
    as_npy_free(&in);
    as_model_free(m);
}

/* Shape checking and configuration errors. */
static void run_model_errors(void)
{
    AsTensorMap map;
    as_tmap_init(&map);
    AsError err = { 0 };
    int rc = as_checkpoint_load(test_path("reference/infer_tiny/alignseg.pth"), &map, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc)
        return;
    /* wrong fc1 shape: the message names the tensor and both shapes */
    as_tmap_remove(&map, "blocks.1.mlp.fc1.weight");
    float *bad = calloc(96 * 40, sizeof *bad);
    as_tmap_add(&map, "blocks.1.mlp.fc1.weight", 2, (int64_t[]){ 96, 40 }, bad, false, &err);
    AsModelOptions opt = { .encoder_heads = 3, .decoder_heads = 3 };
    AsModel *m = NULL;
    rc = as_model_from_tensors(&map, &opt, &m, &err);
    CHECK(rc == AS_ERR_SHAPE && m == NULL, "bad shape accepted (%d)", rc);
    CHECK(strstr(err.msg, "blocks.1.mlp.fc1.weight has shape (96, 40), expected (") != NULL,
          "message: %s", err.msg);
    printf("  shape error: %s\n", err.msg);

    /* D = 48 is not a multiple of 64: heads cannot be inferred */
    rc = as_checkpoint_load(test_path("reference/infer_tiny/alignseg.pth"), &map, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (!rc) {
        rc = as_model_from_tensors(&map, NULL, &m, &err);
        CHECK(rc == AS_ERR_ARG && strstr(err.msg, "heads"), "heads error: %s", err.msg);
    }
    /* decoder heads must divide the width */
    rc = as_checkpoint_load(test_path("reference/infer_tiny/alignseg.pth"), &map, &err);
    if (!rc) {
        AsModelOptions o5 = { .encoder_heads = 3, .decoder_heads = 5 };
        rc = as_model_from_tensors(&map, &o5, &m, &err);
        CHECK(rc == AS_ERR_ARG && strstr(err.msg, "decoder heads 5"), "dec heads: %s", err.msg);
    }
    /* only decoder tensors: no encoder */
    rc = as_checkpoint_load(test_path("reference/infer_tiny/alignseg.pth"), &map, &err);
    if (!rc) {
        for (size_t i = map.count; i-- > 0;)
            if (strncmp(map.items[i].name, "decoder_", 8) && strcmp(map.items[i].name,
                                                                   "clsQueries.weight"))
                as_tmap_remove(&map, map.items[i].name);
        rc = as_model_from_tensors(&map, &opt, &m, &err);
        CHECK(rc != 0 && strstr(err.msg, "patch_embed.proj.weight"), "decoder only: %s",
              err.msg);
    }
    /* a backbone of another width (64) than the decoder (48) */
    AsModelOptions o42 = { .encoder_heads = 4, .decoder_heads = 2 };
    rc = as_model_load(test_path("reference/infer_tiny/alignseg.pth"),
                       test_path("reference/infer_small8/dino_backbone.pth"), &o42, &m, &err);
    CHECK(rc == AS_ERR_SHAPE && strstr(err.msg, "clsQueries.weight"), "width mismatch: %s",
          err.msg);
    printf("  width mismatch: %s\n", err.msg);
}

/* Write the tensors of map accepted by keep to a .safetensors file (the
 * format is public and simple: u64 header length, JSON header, raw data). */
static int write_safetensors(const char *path, const AsTensorMap *map,
                             int (*keep)(const char *name))
{
    size_t cap = 1 << 16, len = 0, off = 0;
    char *hdr = malloc(cap);
    if (!hdr)
        return -1;
    len += (size_t)snprintf(hdr + len, cap - len, "{");
    for (size_t i = 0; i < map->count; i++) {
        const AsTensor *t = &map->items[i];
        if (!keep(t->name))
            continue;
        char shape[128] = "";
        size_t sl = 0;
        for (int d = 0; d < t->ndim; d++)
            sl += (size_t)snprintf(shape + sl, sizeof shape - sl, d ? ",%lld" : "%lld",
                                   (long long)t->shape[d]);
        const size_t bytes = (size_t)t->numel * 4;
        len += (size_t)snprintf(hdr + len, cap - len,
                                "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                                len > 1 ? "," : "", t->name, shape, off, off + bytes);
        off += bytes;
        if (len + 512 > cap) {
            free(hdr);
            return -1;
        }
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8)
        hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return -1;
    }
    uint8_t n8[8];
    for (int b = 0; b < 8; b++)
        n8[b] = (uint8_t)((uint64_t)len >> (8 * b));
    int ok = fwrite(n8, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len;
    for (size_t i = 0; ok && i < map->count; i++)
        if (keep(map->items[i].name))
            ok = fwrite(map->items[i].data, 4, (size_t)map->items[i].numel, f) ==
                 (size_t)map->items[i].numel;
    free(hdr);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int decoder_name(const char *name)
{
    return !strncmp(name, "decoder_", 8) || !strcmp(name, "clsQueries.weight");
}

/* A decoder-only file must be paired with a backbone; with one it gives the
 * reference prototypes. */
static void run_decoder_only(void)
{
    AsTensorMap map;
    as_tmap_init(&map);
    AsError err = { 0 };
    if (as_checkpoint_load(test_path("reference/infer_tiny/alignseg.pth"), &map, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    char path[] = "/tmp/alignseg_test_decoder_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) {
        as_tmap_free(&map);
        return;
    }
    close(fd);
    CHECK(write_safetensors(path, &map, decoder_name) == 0, "writing %s", path);
    as_tmap_free(&map);
    AsModelOptions opt = { .encoder_heads = 3, .decoder_heads = 3 };
    AsModel *m = NULL;
    int rc = as_model_load(path, NULL, &opt, &m, &err);
    CHECK(rc != 0 && m == NULL && strstr(err.msg, "backbone") && strstr(err.msg, path),
          "decoder only without backbone: %s", err.msg);
    printf("  decoder only: %s\n", err.msg);
    rc = as_model_load(path, test_path("reference/infer_tiny/dino_backbone.pth"), &opt, &m, &err);
    CHECK(rc == 0 && m && m->has_decoder, "decoder + backbone: %s", err.msg);
    AsNpy in;
    if (m && !load_input("infer_tiny", &in)) {
        AsResult r;
        rc = as_segment(m, in.data, (int)in.shape[1], (int)in.shape[2], NULL, &r, &err);
        CHECK(rc == 0, "%s", err.msg);
        if (!rc) {
            cmp_f32("infer_tiny (decoder file+bb)", "infer_tiny", "queries.npy", r.queries,
                    (int64_t)r.q * r.dim);
            cmp_f32("infer_tiny (decoder file+bb)", "infer_tiny", "assign.npy", r.assign,
                    (int64_t)r.n * r.q);
            as_result_free(&r);
        }
        as_npy_free(&in);
    }
    as_model_free(m);
    unlink(path);
}

/* Two decoder layers: the reference feeds Q0 to every layer and keeps the
 * last output, so a model whose layer 1 holds the trained layer must give the
 * reference prototypes whatever layer 0 holds; chaining the layers must not. */
static void run_decoder_layers(void)
{
    AsTensorMap map;
    as_tmap_init(&map);
    AsError err = { 0 };
    if (as_checkpoint_load(test_path("reference/infer_tiny/alignseg.pth"), &map, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    const size_t count = map.count;
    for (size_t i = 0; i < count; i++) {
        const AsTensor t = map.items[i];
        const char *dot = strstr(t.name, "_layers.0.");
        if (strncmp(t.name, "decoder_", 8) || !dot)
            continue;
        char n1[256];
        snprintf(n1, sizeof n1, "%.*s_layers.1.%s", (int)(dot - t.name), t.name, dot + 10);
        float *copy = malloc((size_t)t.numel * sizeof *copy);
        if (!copy)
            continue;
        memcpy(copy, t.data, (size_t)t.numel * sizeof *copy);
        as_tmap_add(&map, n1, t.ndim, t.shape, copy, false, &err);
        for (int64_t j = 0; j < t.numel; j++) /* scramble layer 0 */
            map.items[i].data[j] = 0.5f * map.items[i].data[(j * 7 + 3) % t.numel] + 0.1f;
    }
    AsNpy in;
    if (load_input("infer_tiny", &in)) {
        as_tmap_free(&map);
        return;
    }
    for (int chain = 0; chain < 2; chain++) {
        AsTensorMap copy;
        as_tmap_init(&copy);
        for (size_t i = 0; i < map.count; i++) {
            const AsTensor *t = &map.items[i];
            float *d = malloc((size_t)t->numel * sizeof *d);
            if (d)
                memcpy(d, t->data, (size_t)t->numel * sizeof *d);
            as_tmap_add(&copy, t->name, t->ndim, t->shape, d, false, &err);
        }
        AsModelOptions opt = { .encoder_heads = 3, .decoder_heads = 3, .decoder_chain = chain };
        AsModel *m = NULL;
        int rc = as_model_from_tensors(&copy, &opt, &m, &err);
        CHECK(rc == 0 && m->dec.cfg.layers == 2, "two-layer decoder: %s", err.msg);
        if (rc)
            continue;
        AsResult r;
        rc = as_segment(m, in.data, (int)in.shape[1], (int)in.shape[2], NULL, &r, &err);
        CHECK(rc == 0, "%s", err.msg);
        if (!rc) {
            AsNpy q;
            if (!load_npy("infer_tiny", "queries.npy", &q)) {
                double e = max_abs(r.queries, q.data, q.numel);
                if (!chain) {
                    printf("  %-28s %-16s max abs err %.3g\n", "2 layers (reference quirk)",
                           "queries.npy", e);
                    CHECK(e <= TOL, "2-layer decoder (Q0 into every layer): error %g", e);
                } else {
                    CHECK(e > 1e-2, "chained layers should differ from one layer (%g)", e);
                }
                as_npy_free(&q);
            }
            as_result_free(&r);
        }
        as_model_free(m);
    }
    as_npy_free(&in);
    as_tmap_free(&map);
}

typedef struct { int calls; double last; int bad; int cancel_at; volatile int flag; } Progress;

static void on_progress(void *user, const char *stage, long done, long total)
{
    Progress *p = user;
    double f = (double)done / (double)total;
    if (strcmp(stage, "encoder"))
        return;
    if (f < p->last || f > 1.0)
        p->bad++;
    p->last = f;
    if (++p->calls == p->cancel_at)
        p->flag = 1;
}

static void run_hooks(void)
{
    AsModelOptions opt = { .encoder_heads = 3, .decoder_heads = 3 };
    AsModel *m = load_model("infer_tiny", "alignseg.pth", NULL, &opt);
    AsNpy in;
    if (!m || load_input("infer_tiny", &in)) {
        as_model_free(m);
        return;
    }
    Progress p = { 0 };
    AsSegmentOptions so;
    as_segment_options_default(&so);
    so.hooks = (AsHooks){ &p.flag, on_progress, &p };
    AsResult r;
    AsError err = { 0 };
    int rc = as_segment(m, in.data, 64, 64, &so, &r, &err);
    CHECK(rc == 0 && p.calls == m->enc.cfg.depth && p.last == 1.0 && !p.bad,
          "progress: %d calls, last %g", p.calls, p.last);
    if (!rc)
        as_result_free(&r);
    p = (Progress){ .cancel_at = 1 };
    rc = as_segment(m, in.data, 64, 64, &so, &r, &err);
    CHECK(rc == AS_ERR_CANCELLED && p.calls == 1, "cancel after block 1: rc %d, %d calls", rc,
          p.calls);
    CHECK(r.tokens == NULL, "no result after cancel");
    /* the stage-timing hook: the timed forward pass is the forward pass
     * (reference tokens and CLS attention), and it reports its stages */
    AsVitWorkspace ws;
    as_vit_workspace_init(&ws);
    AsVitTiming tm;
    memset(&tm, 0xff, sizeof tm); /* must be overwritten */
    rc = as_vit_forward_timed(&m->enc, in.data, 64, 64, &ws, NULL, &tm, &err);
    CHECK(rc == 0, "as_vit_forward_timed: %s", err.msg);
    if (!rc) {
        cmp_f32("infer_tiny (timed)", "infer_tiny", "tokens.npy", ws.tokens, (int64_t)ws.n * ws.dim);
        cmp_f32("infer_tiny (timed)", "infer_tiny", "cls_attn.npy", ws.cls_attn,
                (int64_t)ws.heads * ws.n);
        double sum = 0;
        int bad = 0;
        for (int k = 0; k < AS_VIT_STAGE_COUNT; k++) {
            bad += !(tm.seconds[k] >= 0.0) || !strcmp(as_vit_stage_name((AsVitStage)k), "?");
            sum += tm.seconds[k];
        }
        CHECK(!bad && sum > 0.0, "stage timings: %d bad, %g s in all", bad, sum);
        CHECK(!strcmp(as_vit_stage_name(AS_VIT_QKV), "norm1+qkv") &&
                  !strcmp(as_vit_stage_name(AS_VIT_STAGE_COUNT), "?"),
              "stage names");
    }
    as_vit_workspace_free(&ws);
    as_npy_free(&in);
    as_model_free(m);
}

static void run_random_model(void)
{
    AsModel *a = NULL, *b = NULL, *c = NULL;
    AsError err = { 0 };
    int rc = as_model_random(AS_ARCH_VIT_SMALL, 16, 5, 1, 7, &a, &err);
    CHECK(rc == 0, "%s", err.msg);
    rc = as_model_random(AS_ARCH_VIT_SMALL, 16, 5, 1, 7, &b, &err);
    CHECK(rc == 0, "%s", err.msg);
    rc = as_model_random(AS_ARCH_VIT_SMALL, 16, 5, 1, 8, &c, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (!a || !b || !c)
        goto done;
    const AsEncoderConfig *e = &a->enc.cfg;
    CHECK(e->dim == 384 && e->heads == 6 && e->depth == 12 && e->patch == 16 &&
          e->pos_gh == 14 && e->pos_gw == 14 && e->mlp_hidden == 1536,
          "ViT-S/16 config %d %d %d %d %d %d", e->dim, e->heads, e->depth, e->patch, e->pos_gh,
          e->mlp_hidden);
    CHECK(a->has_decoder && a->dec.cfg.queries == 5 && a->dec.cfg.hidden == 768 &&
          a->dec.cfg.heads == 3 && a->dec.cfg.layers == 1 && a->untrained,
          "random decoder config");
    CHECK(!memcmp(a->enc.blocks[5].qkv.w, b->enc.blocks[5].qkv.w, 384 * 1152 * sizeof(float)),
          "same seed, different weights");
    CHECK(memcmp(a->enc.blocks[5].qkv.w, c->enc.blocks[5].qkv.w, 384 * 1152 * sizeof(float)),
          "different seeds, same weights");
    /* initialisation statistics (METHOD.md 5) */
    double s = 0, s2 = 0, mx = 0;
    const long nw = 1152L * 384;
    for (long i = 0; i < nw; i++) {
        double v = a->enc.blocks[0].qkv.w[i];
        s += v;
        s2 += v * v;
        if (fabs(v) > mx)
            mx = fabs(v);
    }
    CHECK(fabs(s / nw) < 1e-3 && fabs(sqrt(s2 / nw) - 0.0176) < 2e-3 && mx <= 0.04 + 1e-6,
          "trunc normal: mean %g std %g max %g", s / nw, sqrt(s2 / nw), mx);
    const float *ip = a->dec.layers[0].cross.in_proj.w;
    const double bound = sqrt(6.0 / (384 + 1152));
    mx = 0;
    for (long i = 0; i < nw; i++)
        if (fabs(ip[i]) > mx)
            mx = fabs(ip[i]);
    CHECK(mx <= bound && mx > 0.95 * bound, "xavier bound %g, max %g", bound, mx);
    CHECK(a->enc.blocks[0].norm1.w[3] == 1.0f && a->enc.blocks[0].norm1.b[3] == 0.0f,
          "layernorm init");
    /* runs at a non-training size */
    float *in = calloc(3 * 64 * 96, sizeof *in);
    AsSegmentOptions so;
    as_segment_options_default(&so);
    AsResult r;
    rc = as_segment(a, in, 64, 96, &so, &r, &err);
    CHECK(rc == 0 && r.gh == 4 && r.gw == 6 && r.q == 5, "random model forward: %s", err.msg);
    if (!rc)
        as_result_free(&r);
    free(in);
    int iw, ih;
    so.long_side = 448;
    rc = as_input_size(a, 1000, 600, &so, &iw, &ih, &err);
    CHECK(rc == 0 && iw == 448 && ih == 272, "long side: %dx%d", iw, ih);
    rc = as_input_size(a, 10, 2000, &so, &iw, &ih, &err);
    CHECK(rc == 0 && iw == 16 && ih == 448, "long side, thin: %dx%d", iw, ih);
    so.long_side = 0;
    rc = as_input_size(a, 1000, 600, &so, &iw, &ih, &err);
    CHECK(rc == 0 && iw == 448 && ih == 448, "square: %dx%d", iw, ih);
done:
    as_model_free(a);
    as_model_free(b);
    as_model_free(c);
}

static void free_region(void *base, size_t len)
{
    (void)len;
    free(base);
}

/* After the encoder is packed, its plain weights still read as in the file:
 * pages released from a mapped checkpoint come back from the file, and
 * borrowed tensors in ordinary memory are left alone (releasing those pages
 * would zero them). */
static void run_plain_weights_kept(void)
{
    const char *path = test_path("reference/infer_tiny/alignseg.pth");
    AsError err = { 0 };
    AsTensorMap ref;
    as_tmap_init(&ref);
    CHECK(as_checkpoint_load(path, &ref, &err) == 0, "%s", err.msg);
    /* the same tensors, borrowed from one malloc'd block the map owns */
    size_t total = 0;
    for (size_t i = 0; i < ref.count; i++)
        total += (size_t)ref.items[i].numel;
    float *block = malloc(total * sizeof *block);
    AsTensorMap mem;
    as_tmap_init(&mem);
    CHECK(block && as_tmap_add_region(&mem, block, total * sizeof *block, free_region, &err) == 0,
          "region: %s", err.msg);
    size_t off = 0;
    for (size_t i = 0; block && i < ref.count; i++) {
        const AsTensor *t = &ref.items[i];
        memcpy(block + off, t->data, (size_t)t->numel * sizeof *block);
        CHECK(as_tmap_add(&mem, t->name, t->ndim, t->shape, block + off, true, &err) == 0, "%s",
              err.msg);
        off += (size_t)t->numel;
    }
    const AsModelOptions opt = { 3, 3, false };
    AsModel *fm = NULL, *mm = NULL;
    CHECK(as_model_load(path, NULL, &opt, &fm, &err) == 0, "load: %s", err.msg);
    CHECK(as_model_from_tensors(&mem, &opt, &mm, &err) == 0, "from tensors: %s", err.msg);
    const AsTensor *w = as_tmap_find(&ref, "blocks.0.mlp.fc1.weight");
    CHECK(w != NULL, "fc1 weight in the reference checkpoint");
    if (fm && mm && w) {
        const size_t bytes = (size_t)w->numel * sizeof(float);
        CHECK(!memcmp(fm->enc.blocks[0].fc1.w, w->data, bytes),
              "mapped checkpoint: plain fc1 weights read back as in the file");
        CHECK(!memcmp(mm->enc.blocks[0].fc1.w, w->data, bytes),
              "borrowed malloc'd tensors: plain fc1 weights unchanged");
    }
    as_model_free(fm);
    as_model_free(mm);
    as_tmap_free(&mem);
    as_tmap_free(&ref);
}

int main(void)
{
    const char *cases[] = { "infer_tiny", "infer_tiny_posinterp", "infer_small8" };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_inference_case(cases[i]);
    run_backbone_rect();
    run_model_errors();
    run_decoder_only();
    run_decoder_layers();
    run_hooks();
    run_random_model();
    run_plain_weights_kept();
    return check_report("parity");
}
