/* decoder: the AlignSeg prototype decoder forward pass (METHOD.md section 3):
 * cross-attention of the prototypes to the patch tokens, self-attention,
 * FFN, each post-norm (LayerNorm eps 1e-5), torch.nn.MultiheadAttention
 * semantics. By default every layer takes the learned prototypes Q0 as input
 * and only the last layer's output is kept (the reference's behaviour, which
 * published multi-layer checkpoints depend on); cfg.chain_layers feeds each
 * layer the previous layer's output instead. Weights are read only; per-run
 * memory lives in an AsDecoderWorkspace. */
#ifndef ALIGNSEG_DECODER_H
#define ALIGNSEG_DECODER_H

#include "error.h"
#include "model.h"

typedef struct {
    int n, q, dim, hid, heads; /* geometry of the current allocation */
    float *out;        /* (Q, D) adapted prototypes (output of the last layer) */
    float *cross_attn; /* (heads, Q, N) last layer's cross-attention probabilities */
    /* scratch */
    float *qp;         /* (Q, D) projected queries */
    float *kv;         /* (N, 2D) projected keys and values */
    float *attn;       /* (Q, D) */
    float *tmp;        /* (Q, D) */
    float *qkv;        /* (Q, 3D) */
    float *self_probs; /* (heads, Q, Q) */
    float *hidden;     /* (Q, H) */
} AsDecoderWorkspace;

void as_decoder_workspace_init(AsDecoderWorkspace *ws);
/* (Re)allocate for n tokens unless already sized for them. */
int as_decoder_workspace_prepare(AsDecoderWorkspace *ws, const AsDecoder *dec, int n,
                                 AsError *err);
void as_decoder_workspace_free(AsDecoderWorkspace *ws);

/* Adapt dec->queries to the patch tokens (n, D). Result in ws->out and
 * ws->cross_attn. */
int as_decoder_forward(const AsDecoder *dec, const float *tokens, int n,
                       AsDecoderWorkspace *ws, AsError *err);

#endif
