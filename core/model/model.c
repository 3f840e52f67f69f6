/* model: see model.h */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cpu.h"
#include "decoder_params.h"
#include "gemm.h"
#include "rng.h"
#include "zip.h"

#define NAME_MAX_LEN 160

/* ---- shape checking ------------------------------------------------------ */

/* Size of axis `axis` of tensor `name`, or -1 if absent / too few axes. */
static int64_t dim_of(const AsTensorMap *m, const char *name, int axis)
{
    const AsTensor *t = as_tmap_find(m, name);
    if (!t || axis >= t->ndim)
        return -1;
    return t->shape[axis];
}

/* Find tensor `name` and check that its shape is exactly `shape`. */
static int want(const AsTensorMap *m, const char *name, int ndim, const int64_t *shape,
                float **data, AsError *err)
{
    const AsTensor *t = as_tmap_find(m, name);
    char want_s[96];
    if (!t)
        return as_error_set(err, AS_ERR_SHAPE, "tensor %s is missing (expected shape %s)", name,
                            as_shape_str(ndim, shape, want_s, sizeof want_s));
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == shape[i];
    if (!ok) {
        char have_s[96];
        return as_error_set(err, AS_ERR_SHAPE, "%s has shape %s, expected %s", name,
                            as_shape_str(t->ndim, t->shape, have_s, sizeof have_s),
                            as_shape_str(ndim, shape, want_s, sizeof want_s));
    }
    *data = t->data;
    return 0;
}

static int want_linear(const AsTensorMap *m, const char *prefix, int out, int in, AsLinear *l,
                       AsError *err)
{
    char name[NAME_MAX_LEN + 64];
    int rc;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if ((rc = want(m, name, 2, (int64_t[]){ out, in }, &l->w, err)))
        return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if ((rc = want(m, name, 1, (int64_t[]){ out }, &l->b, err)))
        return rc;
    l->out = out;
    l->in = in;
    return 0;
}

static int want_norm(const AsTensorMap *m, const char *prefix, int d, float eps, AsNorm *nm,
                     AsError *err)
{
    char name[NAME_MAX_LEN + 64];
    int rc;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if ((rc = want(m, name, 1, (int64_t[]){ d }, &nm->w, err)))
        return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if ((rc = want(m, name, 1, (int64_t[]){ d }, &nm->b, err)))
        return rc;
    nm->dim = d;
    nm->eps = eps;
    return 0;
}

/* ---- configuration from shapes --------------------------------------------- */

#define AS_DIM_LIMIT 65536 /* widths beyond this are refused as absurd */

static int build_encoder(const AsTensorMap *m, const AsModelOptions *opt, AsEncoder *e,
                         AsError *err)
{
    const AsTensor *pe = as_tmap_find(m, "patch_embed.proj.weight");
    if (!pe)
        return as_error_set(err, AS_ERR_SHAPE,
                            "no DINO encoder: tensor patch_embed.proj.weight is missing");
    char s[96];
    if (pe->ndim != 4 || pe->shape[1] != 3 || pe->shape[2] != pe->shape[3] || pe->shape[0] < 1 ||
        pe->shape[0] > AS_DIM_LIMIT || pe->shape[2] < 1 || pe->shape[2] > 64)
        return as_error_set(err, AS_ERR_SHAPE,
                            "patch_embed.proj.weight has shape %s, expected (D, 3, p, p)",
                            as_shape_str(pe->ndim, pe->shape, s, sizeof s));
    AsEncoderConfig *c = &e->cfg;
    c->dim = (int)pe->shape[0];
    c->patch = (int)pe->shape[2];
    const int d = c->dim, p = c->patch;

    const AsTensor *pos = as_tmap_find(m, "pos_embed");
    if (!pos)
        return as_error_set(err, AS_ERR_SHAPE, "tensor pos_embed is missing");
    int64_t g = -1;
    if (pos->ndim == 3 && pos->shape[0] == 1 && pos->shape[2] == d && pos->shape[1] >= 2) {
        int64_t r = pos->shape[1] - 1;
        g = (int64_t)llround(sqrt((double)r));
        if (g * g != r)
            g = -1;
    }
    if (g < 1)
        return as_error_set(err, AS_ERR_SHAPE,
                            "pos_embed has shape %s, expected (1, 1 + g*g, %d) for a square "
                            "g x g training grid", as_shape_str(pos->ndim, pos->shape, s, sizeof s),
                            d);
    c->pos_gh = c->pos_gw = (int)g;
    e->pos_embed = pos->data;

    int depth = 0;
    char name[NAME_MAX_LEN];
    for (;; depth++) {
        snprintf(name, sizeof name, "blocks.%d.norm1.weight", depth);
        if (!as_tmap_find(m, name))
            break;
    }
    if (depth == 0)
        return as_error_set(err, AS_ERR_SHAPE, "no encoder blocks: blocks.0.norm1.weight is missing");
    c->depth = depth;
    int64_t hid = dim_of(m, "blocks.0.mlp.fc1.weight", 0);
    if (hid < 1 || hid > 16 * AS_DIM_LIMIT)
        return as_error_set(err, AS_ERR_SHAPE,
                            "blocks.0.mlp.fc1.weight is missing or has no rows");
    c->mlp_hidden = (int)hid;
    if (opt && opt->encoder_heads > 0) {
        c->heads = opt->encoder_heads;
    } else {
        if (d % 64)
            return as_error_set(err, AS_ERR_ARG,
                                "cannot infer the encoder heads: width %d is not a multiple of "
                                "64; give the head count", d);
        c->heads = d / 64;
    }
    if (c->heads < 1 || d % c->heads)
        return as_error_set(err, AS_ERR_ARG, "encoder heads %d do not divide the width %d",
                            c->heads, d);

    int rc;
    if ((rc = want(m, "cls_token", 3, (int64_t[]){ 1, 1, d }, &e->cls_token, err)))
        return rc;
    if ((rc = want(m, "patch_embed.proj.bias", 1, (int64_t[]){ d }, &e->patch.b, err)))
        return rc;
    e->patch.w = pe->data;
    e->patch.out = d;
    e->patch.in = 3 * p * p;
    e->blocks = calloc((size_t)depth, sizeof *e->blocks);
    if (!e->blocks)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for %d encoder blocks", depth);
    for (int i = 0; i < depth; i++) {
        AsEncoderBlock *b = &e->blocks[i];
        char pre[NAME_MAX_LEN];
#define BLK(suffix) (snprintf(pre, sizeof pre, "blocks.%d.%s", i, suffix), pre)
        if ((rc = want_norm(m, BLK("norm1"), d, 1e-6f, &b->norm1, err)) ||
            (rc = want_linear(m, BLK("attn.qkv"), 3 * d, d, &b->qkv, err)) ||
            (rc = want_linear(m, BLK("attn.proj"), d, d, &b->proj, err)) ||
            (rc = want_norm(m, BLK("norm2"), d, 1e-6f, &b->norm2, err)) ||
            (rc = want_linear(m, BLK("mlp.fc1"), c->mlp_hidden, d, &b->fc1, err)) ||
            (rc = want_linear(m, BLK("mlp.fc2"), d, c->mlp_hidden, &b->fc2, err)))
            return rc;
#undef BLK
    }
    return want_norm(m, "norm", d, 1e-6f, &e->norm, err);
}

static int build_decoder(const AsTensorMap *m, const AsModelOptions *opt, int enc_dim,
                         AsDecoder *dc, AsError *err)
{
    char name[NAME_MAX_LEN], s[96];
    const char *qname = as_decoder_param_table[AS_DP_QUERIES].pattern;
    const AsTensor *qt = as_tmap_find(m, qname);
    if (!qt || qt->ndim != 2 || qt->shape[0] < 1 || qt->shape[0] > 4096)
        return as_error_set(err, AS_ERR_SHAPE, "%s has shape %s, expected (Q, %d)", qname,
                            qt ? as_shape_str(qt->ndim, qt->shape, s, sizeof s) : "(missing)",
                            enc_dim);
    if (qt->shape[1] != enc_dim)
        return as_error_set(err, AS_ERR_SHAPE,
                            "%s has shape %s, expected (%lld, %d): the decoder "
                            "does not fit the encoder width %d", qname,
                            as_shape_str(qt->ndim, qt->shape, s, sizeof s),
                            (long long)qt->shape[0], enc_dim, enc_dim);
    AsDecoderConfig *c = &dc->cfg;
    c->dim = enc_dim;
    c->queries = (int)qt->shape[0];
    int layers = 0;
    for (; layers < 1000; layers++)
        if (!as_tmap_find(m, as_decoder_param_name(AS_DP_CROSS_NORM_W, layers, name,
                                                   sizeof name)))
            break;
    if (layers == 0)
        return as_error_set(err, AS_ERR_SHAPE, "no decoder layers: %s is missing",
                            as_decoder_param_name(AS_DP_CROSS_NORM_W, 0, name, sizeof name));
    c->layers = layers;
    as_decoder_param_name(AS_DP_FFN_L1_W, 0, name, sizeof name);
    int64_t hid = dim_of(m, name, 0);
    if (hid < 1 || hid > 16 * AS_DIM_LIMIT)
        return as_error_set(err, AS_ERR_SHAPE, "%s is missing or has no rows", name);
    c->hidden = (int)hid;
    c->heads = opt && opt->decoder_heads > 0 ? opt->decoder_heads : 3;
    c->chain_layers = opt ? opt->decoder_chain : false;
    if (enc_dim % c->heads)
        return as_error_set(err, AS_ERR_ARG, "decoder heads %d do not divide the width %d",
                            c->heads, enc_dim);
    dc->layers = calloc((size_t)layers, sizeof *dc->layers);
    if (!dc->layers)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for %d decoder layers", layers);
    const int count = as_decoder_param_count(layers);
    for (int k = 0; k < count; k++) {
        AsDecoderParamId id;
        int j;
        as_decoder_param_at(k, layers, &id, &j);
        int64_t shape[2];
        const int ndim = as_decoder_param_shape(id, c->dim, c->queries, c->hidden, shape);
        as_decoder_param_name(id, j, name, sizeof name);
        int rc = want(m, name, ndim, shape, as_decoder_param_slot(dc, id, j), err);
        if (rc)
            return rc;
    }
    as_decoder_set_sizes(dc);
    return 0;
}

/* Give the whole pages of a tensor that lies in a memory-mapped checkpoint
 * file (borrowed, never written: the encoder is frozen) back to the page
 * cache. A later reader (a checkpoint writer) faults them in again from the
 * file. Only file mappings: dropping pages of anonymous memory would zero it. */
static void release_pages(const AsTensorMap *map, const float *p)
{
    const AsTensor *t = NULL;
    for (size_t i = 0; i < map->count && !t; i++)
        if (map->items[i].data == p && map->items[i].borrowed)
            t = &map->items[i];
    if (!t)
        return;
    const uintptr_t a = (uintptr_t)p, z = (uintptr_t)(p + t->numel);
    bool in_file = false;
    for (size_t i = 0; i < map->nregions && !in_file; i++) {
        const AsRegion *r = &map->regions[i];
        in_file = r->release == as_file_unmap && a >= (uintptr_t)r->base &&
                  z <= (uintptr_t)r->base + r->len;
    }
    if (!in_file)
        return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t b = (a + page - 1) / page * page, e = z / page * page;
    if (e > b)
        madvise((void *)b, e - b, MADV_DONTNEED);
}

/* Everything the encoder reads at inference, in one allocation (m->packed):
 * its linear weights packed once for the packed GEMM (gemm.h), and copies of
 * its biases, LayerNorm parameters, class token and position embedding. Only
 * on CPUs that run the packed GEMM. The plain tensors stay in the map for
 * anything else that reads them; those in a memory-mapped checkpoint have
 * their pages released, and since inference no longer touches that part of
 * the mapping at all, they stay out (while inference still read the biases
 * and norms from the mapping, ~80 MB of released pages came back). */
typedef struct {
    float **p;
    size_t n;
} Vec;

static size_t round16(size_t n)
{
    return (n + 15) / 16 * 16;
}

static int pack_encoder(AsModel *m, AsError *err)
{
    AsEncoder *e = &m->enc;
    const int depth = e->cfg.depth, d = e->cfg.dim;
    const int nl = 1 + depth * 4, nv_max = 2 * nl + 4 * depth + 4;
    AsLinear **ls = malloc((size_t)nl * sizeof *ls);
    Vec *vs = malloc((size_t)nv_max * sizeof *vs);
    if (!ls || !vs) {
        free(ls);
        free(vs);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory packing the encoder");
    }
    int k = 0, nv = 0;
    ls[k++] = &e->patch;
    for (int i = 0; i < depth; i++) {
        AsEncoderBlock *b = &e->blocks[i];
        ls[k++] = &b->qkv;
        ls[k++] = &b->proj;
        ls[k++] = &b->fc1;
        ls[k++] = &b->fc2;
        vs[nv++] = (Vec){ &b->norm1.w, (size_t)d };
        vs[nv++] = (Vec){ &b->norm1.b, (size_t)d };
        vs[nv++] = (Vec){ &b->norm2.w, (size_t)d };
        vs[nv++] = (Vec){ &b->norm2.b, (size_t)d };
    }
    for (int i = 0; i < nl; i++)
        if (ls[i]->b)
            vs[nv++] = (Vec){ &ls[i]->b, (size_t)ls[i]->out };
    vs[nv++] = (Vec){ &e->norm.w, (size_t)d };
    vs[nv++] = (Vec){ &e->norm.b, (size_t)d };
    vs[nv++] = (Vec){ &e->cls_token, (size_t)d };
    vs[nv++] = (Vec){ &e->pos_embed, (size_t)(1 + e->cfg.pos_gh * e->cfg.pos_gw) * d };
    size_t total = 0;
    for (int i = 0; i < nl; i++)
        total += round16(as_gemm_packed_floats(ls[i]->out, ls[i]->in));
    for (int i = 0; i < nv; i++)
        total += round16(vs[i].n);
    m->packed = total ? aligned_alloc(64, total * sizeof(float)) : NULL;
    if (!m->packed) {
        free(ls);
        free(vs);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory packing the encoder (%zu MiB)",
                            total * sizeof(float) >> 20);
    }
    float *dst = m->packed;
    for (int i = 0; i < nv; i++) {
        float *src = *vs[i].p;
        memcpy(dst, src, vs[i].n * sizeof *dst);
        *vs[i].p = dst;
        release_pages(&m->weights, src);
        dst += round16(vs[i].n);
    }
    for (int i = 0; i < nl; i++) {
        as_gemm_pack(ls[i]->w, ls[i]->out, ls[i]->in, dst);
        ls[i]->packed = dst;
        dst += round16(as_gemm_packed_floats(ls[i]->out, ls[i]->in));
        release_pages(&m->weights, ls[i]->w);
    }
    free(ls);
    free(vs);
    return 0;
}

/* The decoder's key/value projections packed once (AsDecoderLayer.cross_kv_packed):
 * packing them on every call cost a third of the decoder's time at 224. */
static int pack_decoder(AsModel *m, AsError *err)
{
    AsDecoder *dc = &m->dec;
    const int d = dc->cfg.dim, L = dc->cfg.layers;
    const size_t per = round16(as_gemm_packed_floats(2 * d, d));
    if (L <= 0 || per == 0)
        return 0;
    m->packed_dec = aligned_alloc(64, (size_t)L * per * sizeof(float));
    if (!m->packed_dec)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory packing the decoder");
    for (int j = 0; j < L; j++) {
        AsDecoderLayer *ly = &dc->layers[j];
        float *dst = m->packed_dec + (size_t)j * per;
        as_gemm_pack(ly->cross.in_proj.w + (size_t)d * d, 2 * d, d, dst);
        ly->cross_kv_packed = dst;
    }
    return 0;
}

int as_model_use_bf16(AsModel *m, AsError *err)
{
    if (!as_gemm_bf16_available())
        return as_error_set(err, AS_ERR_UNSUPPORTED,
                            "bf16 products need a CPU with AVX512_BF16 on the avx512 path "
                            "(this one runs the %s path%s)",
                            as_cpu_path_name(as_cpu_path()),
                            as_cpu_has_bf16() ? "" : " and has no AVX512_BF16");
    if (m->packed_bf16)
        return 0;
    AsEncoder *e = &m->enc;
    const int depth = e->cfg.depth, nl = 1 + 4 * depth;
    AsLinear **ls = malloc((size_t)nl * sizeof *ls);
    if (!ls)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory packing the encoder (bf16)");
    int k = 0;
    ls[k++] = &e->patch;
    for (int i = 0; i < depth; i++) {
        ls[k++] = &e->blocks[i].qkv;
        ls[k++] = &e->blocks[i].proj;
        ls[k++] = &e->blocks[i].fc1;
        ls[k++] = &e->blocks[i].fc2;
    }
    size_t total = 0;
    for (int i = 0; i < nl; i++)
        total += round16(as_gemm_packed_bf16_count(ls[i]->out, ls[i]->in));
    m->packed_bf16 = total ? aligned_alloc(64, total * sizeof(uint16_t)) : NULL;
    if (!m->packed_bf16) {
        free(ls);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory packing the encoder in bf16 "
                            "(%zu MiB)", total * sizeof(uint16_t) >> 20);
    }
    uint16_t *dst = m->packed_bf16;
    for (int i = 0; i < nl; i++) {
        as_gemm_pack_bf16(ls[i]->w, ls[i]->out, ls[i]->in, dst);
        ls[i]->packed_bf16 = dst;
        release_pages(&m->weights, ls[i]->w);
        dst += round16(as_gemm_packed_bf16_count(ls[i]->out, ls[i]->in));
    }
    free(ls);
    return 0;
}

int as_model_from_tensors(AsTensorMap *map, const AsModelOptions *opt, AsModel **out,
                          AsError *err)
{
    *out = NULL;
    AsModel *m = calloc(1, sizeof *m);
    if (!m) {
        as_tmap_free(map);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    }
    m->weights = *map;
    as_tmap_init(map);
    int rc = build_encoder(&m->weights, opt, &m->enc, err);
    if (!rc)
        rc = pack_encoder(m, err);
    if (!rc && as_tmap_find(&m->weights, as_decoder_param_table[AS_DP_QUERIES].pattern)) {
        m->has_decoder = true;
        rc = build_decoder(&m->weights, opt, m->enc.cfg.dim, &m->dec, err);
        if (!rc)
            rc = pack_decoder(m, err);
    }
    if (rc) {
        as_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void as_model_free(AsModel *m)
{
    if (!m)
        return;
    free(m->enc.blocks);
    free(m->dec.layers);
    free(m->packed);
    free(m->packed_dec);
    free(m->packed_bf16);
    as_tmap_free(&m->weights);
    free(m->source);
    free(m);
}

/* ---- loading files ------------------------------------------------------------ */

int as_model_load(const char *model_path, const char *backbone_path,
                  const AsModelOptions *opt, AsModel **out, AsError *err)
{
    *out = NULL;
    AsTensorMap mm, bm, final;
    as_tmap_init(&mm);
    as_tmap_init(&bm);
    as_tmap_init(&final);
    int rc = as_checkpoint_load(model_path, &mm, err);
    if (rc)
        return rc;
    const bool m_enc = as_tmap_find(&mm, "patch_embed.proj.weight") != NULL;
    const char *qname = as_decoder_param_table[AS_DP_QUERIES].pattern;
    const bool m_dec = as_tmap_find(&mm, qname) != NULL;
    if (!m_enc && !m_dec) {
        as_tmap_free(&mm);
        return as_error_set(err, AS_ERR_FORMAT,
                            "%s: neither a DINO encoder (patch_embed.proj.weight) nor an "
                            "AlignSeg decoder (%s) found", model_path, qname);
    }
    char *source = NULL;
    if (backbone_path) {
        rc = as_checkpoint_load(backbone_path, &bm, err);
        if (rc) {
            as_tmap_free(&mm);
            return rc;
        }
        if (!as_tmap_find(&bm, "patch_embed.proj.weight")) {
            as_tmap_free(&mm);
            as_tmap_free(&bm);
            return as_error_set(err, AS_ERR_FORMAT,
                                "%s: not a DINO backbone (patch_embed.proj.weight missing)",
                                backbone_path);
        }
        rc = as_tmap_take(&final, &bm, as_is_encoder_key, err);
        if (!rc)
            rc = as_tmap_take(&final, &mm, as_is_decoder_key, err);
        as_tmap_free(&bm);
        as_tmap_free(&mm);
        if (rc) {
            as_tmap_free(&final);
            return rc;
        }
        if (asprintf(&source, "%s + backbone %s", model_path, backbone_path) < 0)
            source = NULL;
    } else {
        if (!m_enc) {
            as_tmap_free(&mm);
            return as_error_set(err, AS_ERR_ARG,
                                "%s holds only the AlignSeg decoder (no encoder tensors): give "
                                "the DINO backbone too (-b/--backbone)", model_path);
        }
        rc = as_tmap_take(&final, &mm, NULL, err);
        as_tmap_free(&mm);
        if (rc) {
            as_tmap_free(&final);
            return rc;
        }
        source = strdup(model_path);
    }
    if (!source) {
        as_tmap_free(&final);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    }
    rc = as_model_from_tensors(&final, opt, out, err);
    if (rc) {
        as_error_prefix(err, "%s: ", source);
        free(source);
        return rc;
    }
    (*out)->source = source;
    return 0;
}

/* ---- random initialisation ---------------------------------------------------- */

/* the encoder's tensors (the decoder's: as_decoder_params_init) */
typedef enum { INIT_ZERO, INIT_ONE, INIT_TRUNC } InitKind;

static int add_init(AsTensorMap *m, AsRng *r, InitKind kind, const char *name, int ndim,
                    const int64_t *shape, AsError *err)
{
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    float *data = malloc((size_t)numel * sizeof *data);
    if (!data)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for %s", name);
    for (int64_t i = 0; i < numel; i++) {
        double v = 0.0;
        switch (kind) {
        case INIT_ZERO: v = 0.0; break;
        case INIT_ONE: v = 1.0; break;
        case INIT_TRUNC: v = as_rng_trunc_normal(r, 0.02, -0.04, 0.04); break;
        }
        data[i] = (float)v;
    }
    return as_tmap_add(m, name, ndim, shape, data, false, err);
}

#define ADD(kind, nd, ...) \
    add_init(&map, &rng, kind, name, nd, (int64_t[]){ __VA_ARGS__ }, err)

static int add_linear(AsTensorMap *m, AsRng *r, const char *prefix, int64_t out, int64_t in,
                      AsError *err)
{
    char name[NAME_MAX_LEN + 64];
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc = add_init(m, r, INIT_TRUNC, name, 2, (int64_t[]){ out, in }, err);
    if (rc)
        return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return add_init(m, r, INIT_ZERO, name, 1, (int64_t[]){ out }, err);
}

static int add_norm(AsTensorMap *m, AsRng *r, const char *prefix, int64_t d, AsError *err)
{
    char name[NAME_MAX_LEN + 64];
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc = add_init(m, r, INIT_ONE, name, 1, (int64_t[]){ d }, err);
    if (rc)
        return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return add_init(m, r, INIT_ZERO, name, 1, (int64_t[]){ d }, err);
}

int as_model_random(AsArch arch, int patch, int queries, int dec_layers, uint64_t seed,
                    AsModel **out, AsError *err)
{
    *out = NULL;
    if (arch != AS_ARCH_VIT_SMALL && arch != AS_ARCH_VIT_BASE)
        return as_error_set(err, AS_ERR_ARG, "unknown architecture %d", (int)arch);
    if (patch != 8 && patch != 16)
        return as_error_set(err, AS_ERR_ARG, "patch size %d: the published models use 8 or 16",
                            patch);
    if (queries < 1 || queries > 4096 || dec_layers < 1 || dec_layers > 64)
        return as_error_set(err, AS_ERR_ARG, "random model: %d prototypes, %d decoder layers",
                            queries, dec_layers);
    const int64_t d = arch == AS_ARCH_VIT_SMALL ? 384 : 768, depth = 12, g = 224 / patch;
    const int64_t hidden = 768;
    AsRng rng;
    as_rng_seed(&rng, seed);
    AsTensorMap map;
    as_tmap_init(&map);
    char name[NAME_MAX_LEN], pre[NAME_MAX_LEN];
    int rc = 0;
    snprintf(name, sizeof name, "cls_token");
    rc = rc ? rc : ADD(INIT_TRUNC, 3, 1, 1, d);
    snprintf(name, sizeof name, "pos_embed");
    rc = rc ? rc : ADD(INIT_TRUNC, 3, 1, 1 + g * g, d);
    snprintf(name, sizeof name, "patch_embed.proj.weight");
    rc = rc ? rc : ADD(INIT_TRUNC, 4, d, 3, patch, patch);
    snprintf(name, sizeof name, "patch_embed.proj.bias");
    rc = rc ? rc : ADD(INIT_ZERO, 1, d);
    for (int i = 0; i < depth && !rc; i++) {
#define P(s) (snprintf(pre, sizeof pre, "blocks.%d.%s", i, s), pre)
        if ((rc = add_norm(&map, &rng, P("norm1"), d, err)) ||
            (rc = add_linear(&map, &rng, P("attn.qkv"), 3 * d, d, err)) ||
            (rc = add_linear(&map, &rng, P("attn.proj"), d, d, err)) ||
            (rc = add_norm(&map, &rng, P("norm2"), d, err)) ||
            (rc = add_linear(&map, &rng, P("mlp.fc1"), 4 * d, d, err)) ||
            (rc = add_linear(&map, &rng, P("mlp.fc2"), d, 4 * d, err)))
            break;
#undef P
    }
    rc = rc ? rc : add_norm(&map, &rng, "norm", d, err);
    rc = rc ? rc
            : as_decoder_params_init(&map, (int)d, queries, (int)hidden, dec_layers, NULL,
                                     0.04, &rng, err);
    if (rc) {
        as_tmap_free(&map);
        return rc;
    }
    AsModelOptions opt = { .encoder_heads = (int)(d / 64), .decoder_heads = 3 };
    if ((rc = as_model_from_tensors(&map, &opt, out, err)))
        return rc;
    (*out)->untrained = true;
    char src[96];
    snprintf(src, sizeof src, "random ViT-%c/%d (untrained, seed %llu)",
             arch == AS_ARCH_VIT_SMALL ? 'S' : 'B', patch, (unsigned long long)seed);
    (*out)->source = strdup(src);
    return 0;
}
