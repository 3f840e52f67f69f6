/* model: the DINO ViT encoder and the AlignSeg prototype decoder, as weights.
 * Configuration is inferred from tensor shapes. A loaded AsModel is immutable
 * and may be shared between threads; per-run scratch lives in workspaces
 * (see vit.h / decoder.h). All matrices are row-major float32; a linear layer
 * y = x W^T + b has W of shape (out, in) as in PyTorch. */
#ifndef ALIGNSEG_MODEL_H
#define ALIGNSEG_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "linear.h" /* AsLinear, AsNorm */
#include "tensor.h"

typedef struct {
    int dim;        /* D */
    int depth;      /* L */
    int heads;      /* encoder heads */
    int patch;      /* p: 8 or 16 */
    int pos_gh, pos_gw; /* grid of pos_embed (training grid), e.g. 14x14 */
    int mlp_hidden; /* 4D */
} AsEncoderConfig;

typedef struct {
    AsNorm norm1, norm2;
    AsLinear qkv, proj, fc1, fc2;
} AsEncoderBlock;

typedef struct {
    AsEncoderConfig cfg;
    float *cls_token;  /* (D) */
    float *pos_embed;  /* (1 + pos_gh*pos_gw, D) */
    AsLinear patch;    /* (D, 3*p*p) */
    AsEncoderBlock *blocks; /* depth */
    AsNorm norm;
} AsEncoder;

typedef struct {
    int dim;     /* D, equal to the encoder width */
    int queries; /* Q */
    int hidden;  /* H, FFN width */
    int layers;  /* number of decoder layers */
    int heads;   /* decoder heads (not stored in checkpoints; default 3) */
    bool chain_layers; /* false (default, the reference): every layer reads Q0 and
                          only the last layer's output is kept; true: layer j
                          reads layer j-1's output */
} AsDecoderConfig;

typedef struct {
    AsLinear in_proj;  /* (3D, D) */
    AsLinear out_proj; /* (D, D) */
    AsNorm norm;
} AsAttnLayer;

typedef struct {
    AsAttnLayer cross, self;
    AsLinear linear1, linear2; /* (H,D), (D,H) */
    AsNorm ffn_norm;
    /* rows D..3D of cross.in_proj (the key/value projection of the patch
     * tokens, most of the decoder's arithmetic) packed for gemm.h at load, in
     * AsModel.packed_dec; NULL once a trainer may change the weights
     * (as_trainer_init), and the decoder then packs them on every call */
    const float *cross_kv_packed;
} AsDecoderLayer;

typedef struct {
    AsDecoderConfig cfg;
    float *queries;          /* clsQueries.weight (Q, D) */
    AsDecoderLayer *layers;  /* cfg.layers */
} AsDecoder;

typedef struct {
    AsEncoder enc;
    bool has_decoder; /* false: backbone-only mode (k-means prototypes) */
    AsDecoder dec;
    bool untrained;   /* weights are a random initialisation */
    AsTensorMap weights; /* owns every tensor the structs point into */
    float *packed;       /* the encoder's linear weights packed for gemm.h (or NULL) */
    uint16_t *packed_bf16; /* their bfloat16 copies (--precision bf16), or NULL */
    float *packed_dec;   /* the decoder layers' cross_kv_packed (or NULL) */
    char *source;        /* human-readable origin (file names) */
} AsModel;

typedef struct {
    int encoder_heads; /* 0: D/64 */
    int decoder_heads; /* 0: 3 */
    bool decoder_chain; /* see AsDecoderConfig.chain_layers (default false) */
} AsModelOptions;

/* model_path: an AlignSeg checkpoint (encoder+decoder), a decoder-only file,
 * or a DINO backbone (then backbone-only mode: has_decoder false).
 * backbone_path (may be NULL): a DINO backbone supplying the encoder; when
 * given, its encoder replaces any encoder in model_path (of which only the
 * decoder is used). A decoder-only model_path without backbone_path is an
 * error saying so. Errors name the file, the tensor and both shapes. */
int as_model_load(const char *model_path, const char *backbone_path,
                  const AsModelOptions *opt, AsModel **out, AsError *err);
/* Build a model from a tensor map with normalised names (consumes map: it is
 * empty afterwards, on success and on error). Every tensor's shape is checked.
 * Encoder heads: opt->encoder_heads or D/64; decoder heads: opt->decoder_heads or 3. */
int as_model_from_tensors(AsTensorMap *map, const AsModelOptions *opt,
                          AsModel **out, AsError *err);

/* The encoder's linear layers (not its attention, not the decoder) compute
 * in bfloat16 from now on (gemm.h), their weights packed once more. Not
 * offered on the command line: on the reference cases it changes 2% of the
 * patch labels (docs/PERFORMANCE.md, "bfloat16"), more than the 1% allowed.
 * Refused with a one-line error (AS_ERR_UNSUPPORTED, nothing changed)
 * unless the CPU has AVX512_BF16 and the AVX-512 path is in use. */
int as_model_use_bf16(AsModel *m, AsError *err);

typedef enum { AS_ARCH_VIT_SMALL, AS_ARCH_VIT_BASE } AsArch;
/* Random initialisation of the published shapes (DINO ViT-S or ViT-B, patch
 * 8 or 16, 224 training grid; decoder Q=5, H=768, 1 layer, 3 heads), for
 * benchmarks and for trying the viewer without weights. Deterministic in seed. */
int as_model_random(AsArch arch, int patch, int queries, int dec_layers, uint64_t seed,
                    AsModel **out, AsError *err);
void as_model_free(AsModel *m);

#endif
