/* decoder_params: the one description of the AlignSeg decoder's tensors
 * (METHOD.md section 3): their state-dict names, where each lives in an
 * AsDecoder, its shape, its AdamW parameter group and how a fresh decoder
 * initialises it (METHOD.md section 5). Loading (model.c), random models,
 * the trainer's parameter list, a fresh decoder and checkpoint saving all
 * walk this table; no other file spells a decoder tensor name.
 *
 * Order: the table lists the parameters of the published PyTorch module in
 * its named_parameters() order: the prototypes, then the 6 tensors of every
 * cross-attention layer, every self-attention layer, every FFN layer. */
#ifndef ALIGNSEG_DECODER_PARAMS_H
#define ALIGNSEG_DECODER_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model.h"
#include "rng.h"
#include "tensor.h"

/* One entry per tensor kind; a per-layer kind exists once per decoder layer. */
typedef enum {
    AS_DP_QUERIES, /* clsQueries.weight */
    AS_DP_CROSS_IN_W, AS_DP_CROSS_IN_B, AS_DP_CROSS_OUT_W, AS_DP_CROSS_OUT_B,
    AS_DP_CROSS_NORM_W, AS_DP_CROSS_NORM_B,
    AS_DP_SELF_IN_W, AS_DP_SELF_IN_B, AS_DP_SELF_OUT_W, AS_DP_SELF_OUT_B,
    AS_DP_SELF_NORM_W, AS_DP_SELF_NORM_B,
    AS_DP_FFN_L1_W, AS_DP_FFN_L1_B, AS_DP_FFN_L2_W, AS_DP_FFN_L2_B,
    AS_DP_FFN_NORM_W, AS_DP_FFN_NORM_B,
    AS_DP_COUNT
} AsDecoderParamId;

/* Sections in PyTorch order; AS_DP_SECTION_* */
enum { AS_DP_SECTION_QUERIES, AS_DP_SECTION_CROSS, AS_DP_SECTION_SELF, AS_DP_SECTION_FFN };

/* AdamW parameter groups of the published training */
enum { AS_GROUP_DECAY = 0, AS_GROUP_NO_DECAY = 1, AS_GROUP_PROTOTYPES = 2 };

/* Symbolic sizes of a shape: the width D, 3D, prototypes Q, FFN width H. */
typedef enum { AS_DIM_NONE, AS_DIM_D, AS_DIM_3D, AS_DIM_Q, AS_DIM_H } AsDimRule;

/* How a fresh decoder fills a tensor (METHOD.md section 5). */
typedef enum {
    AS_INIT_ZERO,   /* biases, LayerNorm shift */
    AS_INIT_ONE,    /* LayerNorm scale */
    AS_INIT_NORMAL, /* prototypes: N(0, 1), or given vectors */
    AS_INIT_XAVIER, /* attention in_proj: uniform(+-sqrt(6 / (fan_in + fan_out))) */
    AS_INIT_TRUNC   /* other linear weights: normal(0, 0.02), truncated */
} AsInitRule;

typedef enum { AS_KIND_EMBEDDING, AS_KIND_WEIGHT, AS_KIND_BIAS, AS_KIND_NORM_W, AS_KIND_NORM_B } AsParamKind;

typedef struct {
    const char *pattern; /* state-dict name; "%d" is the layer index */
    int section;         /* AS_DP_SECTION_* */
    AsParamKind kind;
    AsDimRule rows, cols; /* shape (rows) or (rows, cols); cols NONE: 1-D */
    int group;           /* AS_GROUP_* */
    AsInitRule init;
    size_t field;        /* offset of the float * in AsDecoderLayer (in AsDecoder for
                            the prototypes) */
} AsDecoderParamSpec;

extern const AsDecoderParamSpec as_decoder_param_table[AS_DP_COUNT];

/* Number of decoder tensors for `layers` layers, and the k-th of them in
 * PyTorch order: its kind and layer (0 for the prototypes; also for a k
 * outside [0, count)). */
int as_decoder_param_count(int layers);
void as_decoder_param_at(int k, int layers, AsDecoderParamId *id, int *layer);
/* Inverse: position of (id, layer) in PyTorch order. */
int as_decoder_param_index(AsDecoderParamId id, int layer, int layers);

/* Name of (id, layer) into buf; returns buf. */
char *as_decoder_param_name(AsDecoderParamId id, int layer, char *buf, size_t len);
/* Shape of (id) for the given sizes; returns ndim (1 or 2). */
int as_decoder_param_shape(AsDecoderParamId id, int dim, int queries, int hidden,
                           int64_t shape[2]);
/* Where the decoder keeps (id, layer). */
float **as_decoder_param_slot(AsDecoder *dec, AsDecoderParamId id, int layer);
/* After every slot is filled: the sizes of the linear layers and norms. */
void as_decoder_set_sizes(AsDecoder *dec);

/* State-dict names: the decoder's (exactly the table's names) and the DINO
 * ViT encoder's (a backbone file may hold more, e.g. DINO's projection head,
 * which is neither). */
bool as_is_decoder_key(const char *name);
bool as_is_encoder_key(const char *name);

/* Add a fresh decoder's tensors to map in PyTorch order, drawing from rng:
 * prototypes N(0,1) (or copies of the given (Q, D) prototypes), in_proj
 * Xavier-uniform, other weights normal(0, 0.02) truncated to
 * [-trunc_bound, trunc_bound], biases 0, LayerNorm 1 / 0. */
int as_decoder_params_init(AsTensorMap *map, int dim, int queries, int hidden, int layers,
                           const float *prototypes, double trunc_bound, AsRng *rng,
                           AsError *err);
/* The training's fresh decoder (truncation at +-2, as timm's trunc_normal_). */
int as_decoder_init_tensors(AsTensorMap *map, int dim, int queries, int hidden, int layers,
                            const float *prototypes, AsRng *rng, AsError *err);

#endif
