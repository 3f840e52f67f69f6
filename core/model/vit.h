/* vit: the DINO Vision Transformer forward pass (METHOD.md section 2): patch
 * embedding, CLS token, position embedding (bicubic-resized when the patch
 * grid differs from the training grid), pre-norm blocks, final norm. The
 * encoder weights are read only; all per-run memory lives in an
 * AsVitWorkspace, allocated once per input size and reusable, so one loaded
 * model can serve several threads, each with its own workspace. */
#ifndef ALIGNSEG_VIT_H
#define ALIGNSEG_VIT_H

#include "error.h"
#include "hooks.h"
#include "model.h"

typedef struct {
    /* geometry of the current allocation */
    int cap;           /* images allocated for */
    int count;         /* images of the current pass (1 for as_vit_forward) */
    int h, w;          /* input size in pixels */
    int gh, gw, n;     /* patch grid, n = gh*gw */
    int ntok;          /* n + 1 (CLS first) */
    int dim, heads, mlp_hidden, patch;
    /* outputs, valid after as_vit_forward; a batched pass (as_vit_forward_batch)
     * stacks its count images: image i's rows start at x + i ntok D, its CLS
     * attention at cls_attn + i heads n (tokens and cls are image 0's) */
    float *x;          /* (count ntok, D): row 0 the CLS token, rows 1.. the patch tokens */
    float *tokens;     /* = x + D: (n, D) patch tokens after the final norm */
    float *cls;        /* = x: (D) CLS token after the final norm */
    float *cls_attn;   /* (count, heads, n) last block CLS->patch attention */
    float *pos;        /* (ntok, D) position embedding for this grid */
    /* scratch */
    float *patches;    /* (count n, 3*p*p) */
    float *xn;         /* (count ntok, D) */
    float *qkv;        /* (count ntok, 3D) */
    float *attn_out;   /* (count ntok, D) */
    float *hidden;     /* (count ntok, mlp_hidden) */
    float *probs;      /* attention scratch (as_mha_packed_batch) */
    size_t probs_floats;
    float *cls_row;    /* (count, heads, ntok) */
} AsVitWorkspace;

void as_vit_workspace_init(AsVitWorkspace *ws); /* all zero: no allocation yet */
/* (Re)allocate for an h x w input unless already sized for it. */
int as_vit_workspace_prepare(AsVitWorkspace *ws, const AsEncoder *enc, int h, int w,
                             AsError *err);
void as_vit_workspace_free(AsVitWorkspace *ws);
/* The same for batched passes of count images of h x w at once; a workspace
 * already sized for at least count such images is kept. */
int as_vit_workspace_prepare_batch(AsVitWorkspace *ws, const AsEncoder *enc, int h, int w,
                                   int count, AsError *err);

/* The patch part of pos_embed resized to a gh x gw grid as DINO does it
 * (bicubic, scale factors ((gh+0.1)/g, (gw+0.1)/g)); out (1 + gh*gw, D)
 * with the CLS position embedding first. Copies when the grid is the training grid. */
void as_vit_pos_embed(const AsEncoder *enc, int gh, int gw, float *out);

/* Forward pass on a normalised (3, h, w) input (h, w multiples of the patch).
 * Results in ws->tokens, ws->cls, ws->cls_attn. hooks (may be NULL): cancel
 * is checked before each block, progress "encoder" reports blocks done of depth. */
int as_vit_forward(const AsEncoder *enc, const float *input, int h, int w, AsVitWorkspace *ws,
                   const AsHooks *hooks, AsError *err);

/* The forward pass on count inputs of the same size at once (inputs[i] a
 * normalised (3, h, w) image): their tokens stacked into one matrix, so that
 * every linear layer is one matrix product over all images on the pool's
 * threads, and the attention of every (image, head) spread over the pool.
 * Each image's numbers are exactly those of as_vit_forward on it alone (the
 * products reduce every row in the same order whatever the rows around it).
 * Results in ws (see AsVitWorkspace); hooks as for as_vit_forward. */
int as_vit_forward_batch(const AsEncoder *enc, const float *const *inputs, int count, int h,
                         int w, AsVitWorkspace *ws, const AsHooks *hooks, AsError *err);

/* The stages of the forward pass, in the order they run (the block stages
 * once per block). */
typedef enum {
    AS_VIT_PATCH,     /* patch embedding, CLS token, position embedding */
    AS_VIT_QKV,       /* norm1 + qkv projection */
    AS_VIT_ATTENTION, /* multi-head attention */
    AS_VIT_PROJ,      /* output projection + residual */
    AS_VIT_FC1,       /* norm2 + fc1 + GELU */
    AS_VIT_FC2,       /* fc2 + residual */
    AS_VIT_NORM,      /* final LayerNorm */
    AS_VIT_STAGE_COUNT
} AsVitStage;
/* Short name of a stage ("norm1+qkv", ...). */
const char *as_vit_stage_name(AsVitStage s);
/* Wall-clock seconds per stage (CLOCK_MONOTONIC), summed over the blocks. */
typedef struct {
    double seconds[AS_VIT_STAGE_COUNT];
} AsVitTiming;
/* as_vit_forward that also times its stages (for benchmarks): timing (may be
 * NULL) is overwritten with this run's seconds per stage. */
int as_vit_forward_timed(const AsEncoder *enc, const float *input, int h, int w,
                         AsVitWorkspace *ws, const AsHooks *hooks, AsVitTiming *timing,
                         AsError *err);

#endif
