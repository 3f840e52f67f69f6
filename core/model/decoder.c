/* decoder: see decoder.h */
#include "decoder.h"

#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "attention.h"
#include "linear.h"

void as_decoder_workspace_init(AsDecoderWorkspace *ws)
{
    memset(ws, 0, sizeof *ws);
}

void as_decoder_workspace_free(AsDecoderWorkspace *ws)
{
    if (!ws)
        return;
    free(ws->out);
    free(ws->cross_attn);
    free(ws->qp);
    free(ws->kv);
    free(ws->attn);
    free(ws->tmp);
    free(ws->qkv);
    free(ws->self_probs);
    free(ws->hidden);
    memset(ws, 0, sizeof *ws);
}

int as_decoder_workspace_prepare(AsDecoderWorkspace *ws, const AsDecoder *dec, int n,
                                 AsError *err)
{
    const AsDecoderConfig *c = &dec->cfg;
    if (n <= 0)
        return as_error_set(err, AS_ERR_ARG, "decoder: no tokens");
    if (ws->out && ws->n == n && ws->q == c->queries && ws->dim == c->dim &&
        ws->hid == c->hidden && ws->heads == c->heads)
        return 0;
    as_decoder_workspace_free(ws);
    const size_t q = (size_t)c->queries, d = (size_t)c->dim, nn = (size_t)n;
    if (nn > ((size_t)1 << 40) / (q * d * c->heads + 2 * d))
        return as_error_set(err, AS_ERR_NOMEM, "decoder: %d tokens are too many", n);
    ws->out = malloc(q * d * sizeof(float));
    ws->cross_attn = malloc((size_t)c->heads * q * nn * sizeof(float));
    ws->qp = malloc(q * d * sizeof(float));
    ws->kv = malloc(nn * 2 * d * sizeof(float));
    ws->attn = malloc(q * d * sizeof(float));
    ws->tmp = malloc(q * d * sizeof(float));
    ws->qkv = malloc(q * 3 * d * sizeof(float));
    ws->self_probs = malloc((size_t)c->heads * q * q * sizeof(float));
    ws->hidden = malloc(q * (size_t)c->hidden * sizeof(float));
    if (!ws->out || !ws->cross_attn || !ws->qp || !ws->kv || !ws->attn || !ws->tmp ||
        !ws->qkv || !ws->self_probs || !ws->hidden) {
        as_decoder_workspace_free(ws);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for the decoder workspace");
    }
    ws->n = n;
    ws->q = c->queries;
    ws->dim = c->dim;
    ws->hid = c->hidden;
    ws->heads = c->heads;
    return 0;
}

/* Rows [r0, r0+rows) of a linear layer as a linear layer of its own. */
static AsLinear linear_rows(const AsLinear *l, int r0, int rows)
{
    AsLinear s = { l->w + (size_t)r0 * l->in, l->b ? l->b + r0 : NULL, rows, l->in, NULL,
                   NULL };
    return s;
}

/* One decoder layer on input queries q_in (Q, D); result in ws->out. */
static void layer_forward(const AsDecoderLayer *L, const AsDecoderConfig *c, const float *q_in,
                          const float *tokens, int n, AsDecoderWorkspace *ws)
{
    const int q = c->queries, d = c->dim;
    const long qd = (long)q * d;
    /* cross-attention: query = q_in, key = value = tokens */
    const AsLinear wq = linear_rows(&L->cross.in_proj, 0, d);
    AsLinear wkv = linear_rows(&L->cross.in_proj, d, 2 * d);
    wkv.packed = L->cross_kv_packed;
    as_linear(q_in, q, &wq, ws->qp);
    as_linear(tokens, n, &wkv, ws->kv);
    as_mha(ws->qp, d, ws->kv, 2 * d, ws->kv + d, 2 * d, q, n, d, c->heads, ws->cross_attn,
           ws->attn);
    as_linear(ws->attn, q, &L->cross.out_proj, ws->tmp);
    float *t = ws->out;
    memmove(t, q_in, (size_t)qd * sizeof *t);
    as_add_inplace(t, ws->tmp, qd);
    as_layernorm(t, q, &L->cross.norm, t);
    /* self-attention */
    as_linear(t, q, &L->self.in_proj, ws->qkv);
    as_mha(ws->qkv, 3 * d, ws->qkv + d, 3 * d, ws->qkv + 2 * d, 3 * d, q, q, d, c->heads,
           ws->self_probs, ws->attn);
    as_linear(ws->attn, q, &L->self.out_proj, ws->tmp);
    as_add_inplace(t, ws->tmp, qd);
    as_layernorm(t, q, &L->self.norm, t);
    /* FFN */
    as_linear(t, q, &L->linear1, ws->hidden);
    as_relu_inplace(ws->hidden, (long)q * c->hidden);
    as_linear(ws->hidden, q, &L->linear2, ws->tmp);
    as_add_inplace(t, ws->tmp, qd);
    as_layernorm(t, q, &L->ffn_norm, t);
}

int as_decoder_forward(const AsDecoder *dec, const float *tokens, int n,
                       AsDecoderWorkspace *ws, AsError *err)
{
    const AsDecoderConfig *c = &dec->cfg;
    int rc = as_decoder_workspace_prepare(ws, dec, n, err);
    if (rc)
        return rc;
    if (c->layers <= 0)
        return as_error_set(err, AS_ERR_ARG, "decoder has no layers");
    if (c->chain_layers) {
        for (int j = 0; j < c->layers; j++)
            layer_forward(&dec->layers[j], c, j == 0 ? dec->queries : ws->out, tokens, n, ws);
    } else {
        /* Every layer reads Q0 and only the last result is kept, so the
         * earlier layers cannot change the output: run the last one only. */
        layer_forward(&dec->layers[c->layers - 1], c, dec->queries, tokens, n, ws);
    }
    return 0;
}
