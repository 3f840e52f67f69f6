/* test_decoder_params: the decoder parameter table against checkpoints of the
 * published code (tests/data/reference) and of an independent PyTorch model
 * with 2 and 3 decoder layers (tests/data/extra): every decoder key, in the
 * checkpoint's order, is the table's walk with the file's shapes; every other
 * key is an encoder key; near-miss names ("clsQueries" without ".weight",
 * "clsQueriesX.weight", a prefix-only "decoder_" name) are not decoder keys.
 * Then the fresh decoder's initialisation rules. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "decoder_params.h"
#include "pth.h"

typedef struct {
    const char *path;
    int dim, queries, hidden, layers;
} Ckpt;

static void check_checkpoint(const Ckpt *c)
{
    AsPth pth;
    AsError err = { 0 };
    if (as_pth_read(test_path(c->path), &pth, 0, &err)) {
        CHECK(0, "%s: %s", c->path, err.msg);
        return;
    }
    const AsPValue *sd = as_pv_get(pth.root, "state_dict");
    CHECK(sd && sd->kind == AS_PV_DICT, "%s: state_dict", c->path);
    int k = 0, encoder = 0;
    const int count = as_decoder_param_count(c->layers);
    for (size_t i = 0; sd && i < sd->count; i++) {
        const char *name = sd->keys[i]->s;
        const AsPValue *v = sd->items[i];
        if (!strncmp(name, "backbone.", 9)) {
            CHECK(as_is_encoder_key(name + 9) && !as_is_decoder_key(name + 9),
                  "%s: %s is an encoder key", c->path, name);
            encoder++;
            continue;
        }
        CHECK(as_is_decoder_key(name) && !as_is_encoder_key(name), "%s: %s is a decoder key",
              c->path, name);
        if (k >= count) {
            CHECK(0, "%s: more decoder tensors than the table's %d", c->path, count);
            break;
        }
        AsDecoderParamId id;
        int layer;
        as_decoder_param_at(k, c->layers, &id, &layer);
        CHECK(as_decoder_param_index(id, layer, c->layers) == k, "index of %d", k);
        char want[160];
        as_decoder_param_name(id, layer, want, sizeof want);
        CHECK(!strcmp(want, name), "%s: tensor %d is %s, the table says %s", c->path, k, name,
              want);
        int64_t shape[2];
        int nd = as_decoder_param_shape(id, c->dim, c->queries, c->hidden, shape);
        CHECK(v->kind == AS_PV_TENSOR && v->t->ndim == nd && v->t->shape[0] == shape[0] &&
                  (nd == 1 || v->t->shape[1] == shape[1]),
              "%s: shape of %s", c->path, name);
        /* the published optimizer groups: biases and 1-D without decay, prototypes apart */
        size_t len = strlen(name);
        int group = (len > 5 && !strcmp(name + len - 5, ".bias")) || nd == 1 ? AS_GROUP_NO_DECAY
                    : strstr(name, "clsQueries") ? AS_GROUP_PROTOTYPES
                                                 : AS_GROUP_DECAY;
        CHECK(as_decoder_param_table[id].group == group, "%s: group of %s", c->path, name);
        k++;
    }
    CHECK(k == count, "%s: %d decoder tensors, the table %d", c->path, k, count);
    CHECK(encoder > 0, "%s: no encoder tensors", c->path);
    as_pth_free(&pth);
}

static void test_keys(void)
{
    static const Ckpt cks[] = {
        { "reference/infer_tiny/alignseg.pth", 48, 5, 96, 1 },
        { "reference/train_tiny/alignseg_before.pth", 48, 5, 96, 1 },
        { "extra/d32_rect_2layers/alignseg.pth", 32, 0, 0, 2 },
        { "extra/d96_p8_3layers_f16/alignseg.pth", 96, 0, 0, 3 },
    };
    for (size_t i = 0; i < sizeof cks / sizeof *cks; i++) {
        Ckpt c = cks[i];
        if (!c.queries) { /* sizes from the file itself */
            AsPth pth;
            AsError err = { 0 };
            if (as_pth_read(test_path(c.path), &pth, 0, &err) == 0) {
                const AsPValue *sd = as_pv_get(pth.root, "state_dict");
                const AsPValue *q = sd ? as_pv_get(sd, "clsQueries.weight") : NULL;
                const AsPValue *h = sd ? as_pv_get(sd, "decoder_ffn_layers.0.linear1.weight")
                                       : NULL;
                if (q && h && q->kind == AS_PV_TENSOR && h->kind == AS_PV_TENSOR) {
                    c.queries = (int)q->t->shape[0];
                    c.hidden = (int)h->t->shape[0];
                }
                as_pth_free(&pth);
            }
        }
        check_checkpoint(&c);
    }
    static const char *const not_decoder[] = {
        "clsQueries", "clsQueries.", "clsQueriesX.weight", "clsQueries.weight.extra",
        "decoder_norm.weight", "decoder_ffn_layers.x.norm.weight",
        "decoder_ffn_layers.0.norm.weights", "decoder_ffn_layers..norm.weight",
        "decoder_ffn_layers.01.norm.weight", "backbone.clsQueries.weight", "",
    };
    for (size_t i = 0; i < sizeof not_decoder / sizeof *not_decoder; i++)
        CHECK(!as_is_decoder_key(not_decoder[i]), "'%s' taken for a decoder key",
              not_decoder[i]);
    CHECK(as_is_decoder_key("decoder_self_attention_layers.12.self_attn.in_proj_bias"),
          "layer 12");
    CHECK(!as_is_encoder_key("head.mlp.0.weight") && !as_is_encoder_key("clsQueries.weight"),
          "DINO head / decoder are not encoder keys");
}

/* METHOD.md 5: prototypes N(0,1), in_proj Xavier-uniform, other weights
 * trunc-normal std 0.02, biases 0, LayerNorm 1 / 0. */
static void test_init(void)
{
    AsTensorMap map;
    as_tmap_init(&map);
    AsRng rng;
    as_rng_seed(&rng, 1);
    AsError err = { 0 };
    const int D = 96, Q = 40, H = 200, L = 2;
    CHECK(as_decoder_init_tensors(&map, D, Q, H, L, NULL, &rng, &err) == 0, "%s", err.msg);
    CHECK((int)map.count == as_decoder_param_count(L), "%zu tensors", map.count);
    for (size_t i = 0; i < map.count; i++) {
        const AsTensor *t = &map.items[i];
        AsDecoderParamId id;
        int layer;
        as_decoder_param_at((int)i, L, &id, &layer);
        double s = 0, s2 = 0, mx = 0;
        for (int64_t e = 0; e < t->numel; e++) {
            s += t->data[e];
            s2 += (double)t->data[e] * t->data[e];
            mx = fmax(mx, fabs(t->data[e]));
        }
        const double mean = s / t->numel, sd = sqrt(s2 / t->numel - mean * mean);
        const char *n = t->name;
        size_t len = strlen(n);
        if (len > 4 && !strcmp(n + len - 4, "bias")) /* ".bias", "in_proj_bias" */
            CHECK(mx == 0.0, "%s: bias not zero", n);
        else if (strstr(n, "norm.weight"))
            CHECK(mean == 1.0 && sd == 0.0, "%s: LayerNorm weight not 1", n);
        else if (strstr(n, "in_proj_weight"))
            CHECK(mx <= sqrt(6.0 / (4.0 * D)) && sd > 0.8 * sqrt(2.0 / (4.0 * D)),
                  "%s: not Xavier-uniform (max %g, sd %g)", n, mx, sd);
        else if (!strcmp(n, "clsQueries.weight"))
            CHECK(fabs(sd - 1.0) < 0.1 && fabs(mean) < 0.1, "%s: not N(0,1): sd %g", n, sd);
        else
            CHECK(fabs(sd - 0.02) < 0.002 && fabs(mean) < 0.002, "%s: not std 0.02: %g", n,
                  sd);
    }
    as_tmap_free(&map);
}

int main(void)
{
    test_keys();
    test_init();
    return check_report("decoder_params");
}
