/* decoder_params: see decoder_params.h */
#include "decoder_params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAYER(f) offsetof(AsDecoderLayer, f)
#define CROSS "decoder_cross_attention_layers.%d."
#define SELF "decoder_self_attention_layers.%d."
#define FFN "decoder_ffn_layers.%d."

/* torch.nn.MultiheadAttention keeps in_proj_weight / in_proj_bias unprefixed */
const AsDecoderParamSpec as_decoder_param_table[AS_DP_COUNT] = {
    [AS_DP_QUERIES] = { "clsQueries.weight", AS_DP_SECTION_QUERIES, AS_KIND_EMBEDDING, AS_DIM_Q,
                        AS_DIM_D, AS_GROUP_PROTOTYPES, AS_INIT_NORMAL,
                        offsetof(AsDecoder, queries) },
#define ATTN(ID, SEC, PRE, MOD, A)                                                               \
    [AS_DP_##ID##_IN_W] = { PRE MOD ".in_proj_weight", SEC, AS_KIND_WEIGHT, AS_DIM_3D, AS_DIM_D, \
                            AS_GROUP_DECAY, AS_INIT_XAVIER, LAYER(A.in_proj.w) },                \
    [AS_DP_##ID##_IN_B] = { PRE MOD ".in_proj_bias", SEC, AS_KIND_BIAS, AS_DIM_3D, AS_DIM_NONE,  \
                            AS_GROUP_NO_DECAY, AS_INIT_ZERO, LAYER(A.in_proj.b) },               \
    [AS_DP_##ID##_OUT_W] = { PRE MOD ".out_proj.weight", SEC, AS_KIND_WEIGHT, AS_DIM_D,          \
                             AS_DIM_D, AS_GROUP_DECAY, AS_INIT_TRUNC, LAYER(A.out_proj.w) },     \
    [AS_DP_##ID##_OUT_B] = { PRE MOD ".out_proj.bias", SEC, AS_KIND_BIAS, AS_DIM_D, AS_DIM_NONE, \
                             AS_GROUP_NO_DECAY, AS_INIT_ZERO, LAYER(A.out_proj.b) },             \
    [AS_DP_##ID##_NORM_W] = { PRE "norm.weight", SEC, AS_KIND_NORM_W, AS_DIM_D, AS_DIM_NONE,     \
                              AS_GROUP_NO_DECAY, AS_INIT_ONE, LAYER(A.norm.w) },                 \
    [AS_DP_##ID##_NORM_B] = { PRE "norm.bias", SEC, AS_KIND_NORM_B, AS_DIM_D, AS_DIM_NONE,       \
                              AS_GROUP_NO_DECAY, AS_INIT_ZERO, LAYER(A.norm.b) }
    ATTN(CROSS, AS_DP_SECTION_CROSS, CROSS, "multihead_attn", cross),
    ATTN(SELF, AS_DP_SECTION_SELF, SELF, "self_attn", self),
#undef ATTN
    [AS_DP_FFN_L1_W] = { FFN "linear1.weight", AS_DP_SECTION_FFN, AS_KIND_WEIGHT, AS_DIM_H,
                         AS_DIM_D, AS_GROUP_DECAY, AS_INIT_TRUNC, LAYER(linear1.w) },
    [AS_DP_FFN_L1_B] = { FFN "linear1.bias", AS_DP_SECTION_FFN, AS_KIND_BIAS, AS_DIM_H,
                         AS_DIM_NONE, AS_GROUP_NO_DECAY, AS_INIT_ZERO, LAYER(linear1.b) },
    [AS_DP_FFN_L2_W] = { FFN "linear2.weight", AS_DP_SECTION_FFN, AS_KIND_WEIGHT, AS_DIM_D,
                         AS_DIM_H, AS_GROUP_DECAY, AS_INIT_TRUNC, LAYER(linear2.w) },
    [AS_DP_FFN_L2_B] = { FFN "linear2.bias", AS_DP_SECTION_FFN, AS_KIND_BIAS, AS_DIM_D,
                         AS_DIM_NONE, AS_GROUP_NO_DECAY, AS_INIT_ZERO, LAYER(linear2.b) },
    [AS_DP_FFN_NORM_W] = { FFN "norm.weight", AS_DP_SECTION_FFN, AS_KIND_NORM_W, AS_DIM_D,
                           AS_DIM_NONE, AS_GROUP_NO_DECAY, AS_INIT_ONE, LAYER(ffn_norm.w) },
    [AS_DP_FFN_NORM_B] = { FFN "norm.bias", AS_DP_SECTION_FFN, AS_KIND_NORM_B, AS_DIM_D,
                           AS_DIM_NONE, AS_GROUP_NO_DECAY, AS_INIT_ZERO, LAYER(ffn_norm.b) },
};

/* per-layer kinds of a section: [first, first + PER_SECTION) */
#define PER_SECTION 6
static const AsDecoderParamId section_first[4] = { AS_DP_QUERIES, AS_DP_CROSS_IN_W,
                                                   AS_DP_SELF_IN_W, AS_DP_FFN_L1_W };

int as_decoder_param_count(int layers)
{
    return 1 + 3 * PER_SECTION * layers;
}

void as_decoder_param_at(int k, int layers, AsDecoderParamId *id, int *layer)
{
    if (k <= 0 || layers <= 0 || k >= as_decoder_param_count(layers)) {
        *id = AS_DP_QUERIES;
        *layer = 0;
        return;
    }
    k -= 1;
    const int sec = 1 + k / (PER_SECTION * layers), r = k % (PER_SECTION * layers);
    *layer = r / PER_SECTION;
    *id = (AsDecoderParamId)(section_first[sec] + r % PER_SECTION);
}

int as_decoder_param_index(AsDecoderParamId id, int layer, int layers)
{
    const int sec = as_decoder_param_table[id].section;
    if (sec == AS_DP_SECTION_QUERIES)
        return 0;
    return 1 + (sec - 1) * PER_SECTION * layers + layer * PER_SECTION +
           (int)(id - section_first[sec]);
}

char *as_decoder_param_name(AsDecoderParamId id, int layer, char *buf, size_t len)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(buf, len, as_decoder_param_table[id].pattern, layer);
#pragma GCC diagnostic pop
    return buf;
}

static int64_t dim_value(AsDimRule r, int dim, int queries, int hidden)
{
    switch (r) {
    case AS_DIM_D: return dim;
    case AS_DIM_3D: return 3 * (int64_t)dim;
    case AS_DIM_Q: return queries;
    case AS_DIM_H: return hidden;
    case AS_DIM_NONE: break;
    }
    return 1;
}

int as_decoder_param_shape(AsDecoderParamId id, int dim, int queries, int hidden,
                           int64_t shape[2])
{
    const AsDecoderParamSpec *s = &as_decoder_param_table[id];
    shape[0] = dim_value(s->rows, dim, queries, hidden);
    shape[1] = dim_value(s->cols, dim, queries, hidden);
    return s->cols == AS_DIM_NONE ? 1 : 2;
}

float **as_decoder_param_slot(AsDecoder *dec, AsDecoderParamId id, int layer)
{
    const AsDecoderParamSpec *s = &as_decoder_param_table[id];
    char *base = s->section == AS_DP_SECTION_QUERIES ? (char *)dec : (char *)&dec->layers[layer];
    return (float **)(void *)(base + s->field);
}

void as_decoder_set_sizes(AsDecoder *dec)
{
    const int d = dec->cfg.dim, h = dec->cfg.hidden;
    for (int j = 0; j < dec->cfg.layers; j++) {
        AsDecoderLayer *L = &dec->layers[j];
        AsAttnLayer *att[2] = { &L->cross, &L->self };
        for (int a = 0; a < 2; a++) {
            att[a]->in_proj.out = 3 * d;
            att[a]->in_proj.in = d;
            att[a]->out_proj.out = att[a]->out_proj.in = d;
            att[a]->norm.dim = d;
            att[a]->norm.eps = 1e-5f; /* torch.nn.LayerNorm's default */
        }
        L->linear1.out = h;
        L->linear1.in = d;
        L->linear2.out = d;
        L->linear2.in = h;
        L->ffn_norm.dim = d;
        L->ffn_norm.eps = 1e-5f;
    }
}

/* name matches pattern, whose "%d" stands for 1 to 4 decimal digits */
static bool match_pattern(const char *pattern, const char *name)
{
    const char *pd = strstr(pattern, "%d");
    if (!pd)
        return !strcmp(pattern, name);
    const size_t pre = (size_t)(pd - pattern);
    if (strncmp(pattern, name, pre))
        return false;
    const char *p = name + pre;
    int digits = 0;
    while (p[digits] >= '0' && p[digits] <= '9')
        digits++;
    if (digits < 1 || digits > 4 || (digits > 1 && p[0] == '0'))
        return false;
    return !strcmp(pd + 2, p + digits);
}

bool as_is_decoder_key(const char *name)
{
    for (int i = 0; i < AS_DP_COUNT; i++)
        if (match_pattern(as_decoder_param_table[i].pattern, name))
            return true;
    return false;
}

bool as_is_encoder_key(const char *name)
{
    return !strncmp(name, "blocks.", 7) || !strncmp(name, "patch_embed.", 12) ||
           !strcmp(name, "cls_token") || !strcmp(name, "pos_embed") ||
           !strcmp(name, "norm.weight") || !strcmp(name, "norm.bias");
}

int as_decoder_params_init(AsTensorMap *map, int dim, int queries, int hidden, int layers,
                           const float *prototypes, double trunc_bound, AsRng *rng,
                           AsError *err)
{
    if (dim <= 0 || queries <= 0 || hidden <= 0 || layers <= 0)
        return as_error_set(err, AS_ERR_ARG, "decoder: bad size D=%d Q=%d H=%d layers=%d", dim,
                            queries, hidden, layers);
    const int count = as_decoder_param_count(layers);
    for (int k = 0; k < count; k++) {
        AsDecoderParamId id;
        int layer;
        as_decoder_param_at(k, layers, &id, &layer);
        char name[160];
        as_decoder_param_name(id, layer, name, sizeof name);
        int64_t shape[2];
        const int ndim = as_decoder_param_shape(id, dim, queries, hidden, shape);
        const size_t n = (size_t)shape[0] * (size_t)(ndim > 1 ? shape[1] : 1);
        float *d = malloc(n * sizeof(float));
        if (!d)
            return as_error_set(err, AS_ERR_NOMEM, "out of memory for %s", name);
        /* fan_in = in, fan_out = out for an (out, in) weight */
        const double bound = sqrt(6.0 / (double)(shape[0] + shape[1]));
        for (size_t i = 0; i < n; i++) {
            switch (as_decoder_param_table[id].init) {
            case AS_INIT_ZERO: d[i] = 0.0f; break;
            case AS_INIT_ONE: d[i] = 1.0f; break;
            case AS_INIT_NORMAL:
                d[i] = prototypes ? prototypes[i] : (float)as_rng_normal(rng);
                break;
            case AS_INIT_XAVIER: d[i] = (float)as_rng_uniform_range(rng, -bound, bound); break;
            case AS_INIT_TRUNC:
                d[i] = (float)as_rng_trunc_normal(rng, 0.02, -trunc_bound, trunc_bound);
                break;
            }
        }
        int rc = as_tmap_add(map, name, ndim, shape, d, false, err);
        if (rc)
            return rc;
    }
    return 0;
}

int as_decoder_init_tensors(AsTensorMap *map, int dim, int queries, int hidden, int layers,
                            const float *prototypes, AsRng *rng, AsError *err)
{
    return as_decoder_params_init(map, dim, queries, hidden, layers, prototypes, 2.0, rng, err);
}
