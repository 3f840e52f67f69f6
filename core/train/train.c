/* train: see train.h. Forward kernels come from core/compute, backward kernels
 * from backward.h. Decoder instances (one per crop and batch element) are
 * independent; the decoder weights get the sum of their gradients. */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "activations.h"
#include "attention.h"
#include "linear.h"

#define NORM_EPS 1e-10f

/* index in t->params of (kind, layer) of the last layer (the one trained) */
static int idx_last(const AsTrainer *t, AsDecoderParamId id)
{
    const int L = t->dec->cfg.layers;
    return as_decoder_param_index(id, L - 1, L);
}

/* ------------------------------------------------------------------------ */
/* losses */

double as_loss_query_ce(const float *zg, const float *zl, int q, int d, float temperature,
                        float scale, float *dzg, float *dzl)
{
    const int n2 = 2 * q;
    double *s = malloc(sizeof(double) * 2 * (size_t)n2 * n2);
    if (!s)
        return NAN;
    double *ds = s + (size_t)n2 * n2;
    const float *z[2] = { zg, zl };
#define ZROW(r) (z[(r) / q] + (size_t)((r) % q) * d)
    for (int r = 0; r < n2; r++)
        for (int c = 0; c < n2; c++) {
            const float *a = ZROW(r), *b = ZROW(c);
            double acc = 0.0;
            for (int i = 0; i < d; i++)
                acc += (double)a[i] * b[i];
            s[r * n2 + c] = acc / temperature;
        }
    double loss = 0.0;
    for (int r = 0; r < n2; r++) {
        int partner = (r + q) % n2;
        double mx = -INFINITY;
        for (int c = 0; c < n2; c++)
            if (c != r && s[r * n2 + c] > mx)
                mx = s[r * n2 + c];
        double se = 0.0;
        for (int c = 0; c < n2; c++)
            if (c != r)
                se += exp(s[r * n2 + c] - mx);
        double lse = mx + log(se);
        loss += lse - s[r * n2 + partner];
        for (int c = 0; c < n2; c++)
            ds[r * n2 + c] = c == r ? 0.0
                                    : (exp(s[r * n2 + c] - lse) - (c == partner ? 1.0 : 0.0)) /
                                          n2;
    }
    loss /= n2;
    if (dzg || dzl) {
        /* s = z z^T / T: dz_r = sum_c (ds[r,c] + ds[c,r]) z_c / T */
        for (int r = 0; r < n2; r++) {
            float *dst = r < q ? dzg : dzl;
            if (!dst)
                continue;
            dst += (size_t)(r % q) * d;
            for (int c = 0; c < n2; c++) {
                double g = (ds[r * n2 + c] + ds[c * n2 + r]) * scale / temperature;
                if (g == 0.0)
                    continue;
                const float *zc = ZROW(c);
                for (int i = 0; i < d; i++)
                    dst[i] += (float)(g * zc[i]);
            }
        }
    }
#undef ZROW
    free(s);
    return loss;
}

/* softmax over q of max(x, 0), one row */
static void clamp_softmax_row(const float *x, int q, float *p)
{
    float mx = 0.0f;
    for (int j = 0; j < q; j++) {
        p[j] = x[j] > 0.0f ? x[j] : 0.0f;
        if (p[j] > mx)
            mx = p[j];
    }
    double s = 0.0;
    for (int j = 0; j < q; j++) {
        p[j] = expf(p[j] - mx);
        s += p[j];
    }
    for (int j = 0; j < q; j++)
        p[j] = (float)(p[j] / s);
}

/* backward of clamp_softmax_row: dx += clamp' * softmax'(dp) */
static void clamp_softmax_row_backward(const float *x, const float *p, const float *dp, int q,
                                       float *dx)
{
    double s = 0.0;
    for (int j = 0; j < q; j++)
        s += (double)p[j] * dp[j];
    for (int j = 0; j < q; j++)
        if (x[j] >= 0.0f)
            dx[j] += (float)(p[j] * (dp[j] - s));
}

double as_loss_correlation(const float *c, const float *sg, const float *sl, int n, int m,
                           int q, const uint8_t *fg_g, const uint8_t *fg_l, float b,
                           float coef, float scale, float *dsg, float *dsl)
{
    float *ag = malloc(sizeof(float) * ((size_t)n * q + (size_t)m * q * 2 + (size_t)n * q));
    if (!ag)
        return NAN;
    float *al = ag + (size_t)n * q, *dal = al + (size_t)m * q, *dag = dal + (size_t)m * q;
    memset(dal, 0, sizeof(float) * ((size_t)m * q + (size_t)n * q));
    for (int i = 0; i < n; i++)
        clamp_softmax_row(sg + (size_t)i * q, q, ag + (size_t)i * q);
    for (int j = 0; j < m; j++)
        clamp_softmax_row(sl + (size_t)j * q, q, al + (size_t)j * q);
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        if (!fg_g[i])
            continue;
        const float *agi = ag + (size_t)i * q;
        for (int j = 0; j < m; j++) {
            if (!fg_l[j])
                continue;
            const float *alj = al + (size_t)j * q;
            double g = 0.0;
            for (int k = 0; k < q; k++)
                g += (double)agi[k] * alj[k];
            double w = (double)c[(size_t)i * m + j] - b;
            loss += -g * w;
            float dg = (float)(-coef * w * scale);
            for (int k = 0; k < q; k++) {
                dag[(size_t)i * q + k] += dg * alj[k];
                dal[(size_t)j * q + k] += dg * agi[k];
            }
        }
    }
    if (dsg)
        for (int i = 0; i < n; i++)
            clamp_softmax_row_backward(sg + (size_t)i * q, ag + (size_t)i * q,
                                       dag + (size_t)i * q, q, dsg + (size_t)i * q);
    if (dsl)
        for (int j = 0; j < m; j++)
            clamp_softmax_row_backward(sl + (size_t)j * q, al + (size_t)j * q,
                                       dal + (size_t)j * q, q, dsl + (size_t)j * q);
    free(ag);
    return coef * loss;
}

/* ------------------------------------------------------------------------ */
/* forward with cache, backward
 *
 * All decoder instances (one per crop and batch element) are stacked: row
 * k*Q + i of every (R, .) matrix, R = instances * Q, is prototype i of
 * instance k. Row-wise operations (linear layers, LayerNorm, ReLU) run once
 * on all R rows, so each weight matrix is read once per step; only the
 * attention mixing is done per instance. Instance k < B is the global crop of
 * element k, instance B + b * nl + i the local entry (b, i): the order of
 * the tokens in AsTrainBatch. */

typedef struct {
    const float *F; /* (n, D) tokens, borrowed */
    int n;
    float *pc;      /* (heads, Q, n) cross-attention probabilities */
    float *ps;      /* (heads, Q, Q) self-attention probabilities */
    float *P, *nP, *dnP; /* (Q, D) rows of the stacked matrices below */
} Inst;

struct AsTrainCache {
    int B, nl, ng, nlt; /* geometry this cache was built for */
    int ninst;
    Inst *inst;
    float *arena;
    float *qc, *dqc;    /* (Q, D) cross-attention query projection of Q0 */
    float *qk, *dqk;    /* (heads, Q, D) queries folded with the key projection */
    /* stacked activations, R rows */
    float *pf;          /* (heads, R, D) probabilities times tokens */
    float *ac;          /* (R, D) cross-attention output before out_proj */
    float *r1, *t1;     /* (R, D) before / after LN_c */
    float *qkv;         /* (R, 3D) */
    float *as;          /* (R, D) self-attention output before out_proj */
    float *r2, *t2;     /* (R, D) */
    float *h1;          /* (R, H) after ReLU */
    float *r3, *P, *nP, *dnP; /* (R, D): before LN_f, prototypes, normalised, gradient */
    /* losses */
    float *nFg, *nFl;   /* normalised tokens (B, ng, D), (B, nl, nlt, D) */
    float *corr;        /* (B, ng, nlt) */
    float *sg, *dsg;    /* (B, ng, Q) */
    float *sl, *dsl;    /* (nlt, Q) scratch */
    /* backward, R rows */
    float *dP, *dr3, *dh1, *dt2, *dr2, *das, *dqkv, *dt1, *dr1, *dac, *dpf;
    float *mscratch;    /* Q * max(ng, nlt, Q) */
};

void as_train_cache_free(AsTrainCache *c)
{
    if (!c)
        return;
    free(c->inst);
    free(c->arena);
    free(c);
}

static int cache_prepare(AsTrainer *t, const AsTrainBatch *b, AsError *err)
{
    AsTrainCache *c = t->cache;
    if (c && c->B == b->batch && c->nl == b->nlocal && c->ng == b->n_g && c->nlt == b->n_l)
        return 0;
    as_train_cache_free(c);
    t->cache = NULL;
    const AsDecoderConfig *cf = &t->dec->cfg;
    const size_t D = (size_t)cf->dim, Q = (size_t)cf->queries, H = (size_t)cf->hidden;
    const size_t heads = (size_t)cf->heads;
    const size_t B = (size_t)b->batch, nl = (size_t)b->nlocal;
    const size_t ng = (size_t)b->n_g, nlt = (size_t)b->n_l;
    size_t nmax = ng > nlt ? ng : nlt;
    if (nmax < Q) /* the self-attention backward needs Q * Q */
        nmax = Q;
    const size_t ninst = (1 + nl) * B, R = ninst * Q;
    size_t total = B * heads * Q * ng + B * nl * heads * Q * nlt + ninst * heads * Q * Q;
    total += 2 * Q * D + 2 * heads * Q * D;           /* qc, dqc, qk, dqk */
    total += 2 * heads * R * D;                        /* pf, dpf */
    total += R * D * 18 + 2 * R * 3 * D + 2 * R * H;   /* stacked activations + grads */
    total += B * ng * D + B * nl * nlt * D;            /* nFg, nFl */
    total += B * ng * nlt + 2 * B * ng * Q + 2 * nlt * Q;
    total += Q * nmax;
    if (total > ((size_t)1 << 33))
        return as_error_set(err, AS_ERR_NOMEM, "trainer: batch too large (%zu floats)", total);
    c = calloc(1, sizeof *c);
    if (c) {
        c->inst = calloc(ninst, sizeof *c->inst);
        c->arena = malloc(total * sizeof(float));
    }
    if (!c || !c->inst || !c->arena) {
        as_train_cache_free(c);
        return as_error_set(err, AS_ERR_NOMEM, "trainer: out of memory for %zu activations",
                            total);
    }
    float *a = c->arena;
#define TAKE(n) (a += (n), a - (n))
    c->qc = TAKE(Q * D);
    c->dqc = TAKE(Q * D);
    c->qk = TAKE(heads * Q * D);
    c->dqk = TAKE(heads * Q * D);
    c->pf = TAKE(heads * R * D);
    c->dpf = TAKE(heads * R * D);
    c->ac = TAKE(R * D);
    c->r1 = TAKE(R * D);
    c->t1 = TAKE(R * D);
    c->qkv = TAKE(R * 3 * D);
    c->as = TAKE(R * D);
    c->r2 = TAKE(R * D);
    c->t2 = TAKE(R * D);
    c->h1 = TAKE(R * H);
    c->r3 = TAKE(R * D);
    c->P = TAKE(R * D);
    c->nP = TAKE(R * D);
    c->dnP = TAKE(R * D);
    c->dP = TAKE(R * D);
    c->dr3 = TAKE(R * D);
    c->dh1 = TAKE(R * H);
    c->dt2 = TAKE(R * D);
    c->dr2 = TAKE(R * D);
    c->das = TAKE(R * D);
    c->dqkv = TAKE(R * 3 * D);
    c->dt1 = TAKE(R * D);
    c->dr1 = TAKE(R * D);
    c->dac = TAKE(R * D);
    for (size_t k = 0; k < ninst; k++) {
        Inst *in = &c->inst[k];
        size_t n = k < B ? ng : nlt;
        in->n = (int)n;
        in->pc = TAKE(heads * Q * n);
        in->ps = TAKE(heads * Q * Q);
        in->P = c->P + k * Q * D;
        in->nP = c->nP + k * Q * D;
        in->dnP = c->dnP + k * Q * D;
    }
    c->nFg = TAKE(B * ng * D);
    c->nFl = TAKE(B * nl * nlt * D);
    c->corr = TAKE(B * ng * nlt);
    c->sg = TAKE(B * ng * Q);
    c->dsg = TAKE(B * ng * Q);
    c->sl = TAKE(nlt * Q);
    c->dsl = TAKE(nlt * Q);
    c->mscratch = TAKE(Q * nmax);
#undef TAKE
    const size_t used = (size_t)(a - c->arena);
    if (used != total) { /* the size formula above is out of date */
        as_train_cache_free(c);
        return as_error_set(err, AS_ERR_ARG, "trainer: internal error: activation arena of "
                            "%zu floats used %zu", total, used);
    }
    c->B = b->batch;
    c->nl = b->nlocal;
    c->ng = b->n_g;
    c->nlt = b->n_l;
    c->ninst = (int)ninst;
    t->cache = c;
    return 0;
}

/* Forward of the last decoder layer for every instance (every layer reads
 * Q0 and only the last one's output is used). */
static void decoder_forward(AsTrainer *t)
{
    AsTrainCache *c = t->cache;
    const AsDecoder *dec = t->dec;
    const AsDecoderConfig *cf = &dec->cfg;
    const int D = cf->dim, Q = cf->queries, heads = cf->heads, d = D / heads;
    const int R = c->ninst * Q;
    const AsDecoderLayer *ly = &dec->layers[cf->layers - 1];
    const float *W = ly->cross.in_proj.w, *bias = ly->cross.in_proj.b;
    /* cross-attention: q = Q0 Wq^T + bq and its fold with the key projection
     * are shared by all instances; then attention per instance, the value
     * projection on all rows at once */
    AsLinear lq = { (float *)W, (float *)bias, D, D, NULL, NULL };
    as_linear(dec->queries, Q, &lq, c->qc);
    as_cross_fold_queries(c->qc, Q, D, heads, W + (size_t)D * D, c->qk);
    for (int k = 0; k < c->ninst; k++) {
        Inst *in = &c->inst[k];
        as_cross_attend(c->qk, in->F, Q, in->n, D, heads, in->pc, c->pf + (size_t)k * Q * D,
                        (long)R * D);
    }
    for (int h = 0; h < heads; h++) {
        for (int r = 0; r < R; r++)
            memcpy(c->ac + (size_t)r * D + h * d, bias + 2 * D + h * d, (size_t)d * sizeof(float));
        as_sgemm(false, true, R, d, D, 1.0f,
                    c->pf + (size_t)h * R * D, D, W + (size_t)(2 * D + h * d) * D, D, 1.0f,
                    c->ac + h * d, D);
    }
    as_linear(c->ac, R, &ly->cross.out_proj, c->r1);
    for (int k = 0; k < c->ninst; k++) /* residual: the prototypes */
        for (long i = 0; i < (long)Q * D; i++)
            c->r1[(size_t)k * Q * D + i] += dec->queries[i];
    as_layernorm(c->r1, R, &ly->cross.norm, c->t1);
    /* self-attention */
    as_linear(c->t1, R, &ly->self.in_proj, c->qkv);
    for (int k = 0; k < c->ninst; k++) {
        const float *qkv = c->qkv + (size_t)k * Q * 3 * D;
        as_mha(qkv, 3 * D, qkv + D, 3 * D, qkv + 2 * D, 3 * D, Q, Q, D, heads, c->inst[k].ps,
               c->as + (size_t)k * Q * D);
    }
    as_linear(c->as, R, &ly->self.out_proj, c->r2);
    for (size_t i = 0; i < (size_t)R * D; i++)
        c->r2[i] += c->t1[i];
    as_layernorm(c->r2, R, &ly->self.norm, c->t2);
    /* FFN */
    as_linear(c->t2, R, &ly->linear1, c->h1);
    as_relu_inplace(c->h1, (long)R * cf->hidden);
    as_linear(c->h1, R, &ly->linear2, c->r3);
    for (size_t i = 0; i < (size_t)R * D; i++)
        c->r3[i] += c->t2[i];
    as_layernorm(c->r3, R, &ly->ffn_norm, c->P);
    as_l2norm_rows(c->P, R, D, NORM_EPS, c->nP);
}

/* gradient of (id) of the last layer */
static float *G(AsTrainer *t, AsDecoderParamId id)
{
    return t->grad + t->params[idx_last(t, id)].off;
}

/* Backward of decoder_forward given c->dnP: parameter gradients. */
static void decoder_backward(AsTrainer *t)
{
    AsTrainCache *c = t->cache;
    const AsDecoder *dec = t->dec;
    const AsDecoderConfig *cf = &dec->cfg;
    const int D = cf->dim, Q = cf->queries, H = cf->hidden, heads = cf->heads, L = cf->layers;
    const int d = D / heads, j = L - 1, R = c->ninst * Q;
    const AsDecoderLayer *ly = &dec->layers[j];
    const size_t RD = (size_t)R * D;
    memset(c->dP, 0, RD * sizeof(float));
    as_l2norm_rows_backward(c->P, R, D, NORM_EPS, c->dnP, c->dP);
    /* LN_f, FFN */
    memset(c->dr3, 0, RD * sizeof(float));
    as_layernorm_backward(c->r3, R, D, ly->ffn_norm.w, ly->ffn_norm.eps, c->dP, c->dr3,
                          G(t, AS_DP_FFN_NORM_W), G(t, AS_DP_FFN_NORM_B));
    memcpy(c->dt2, c->dr3, RD * sizeof(float)); /* residual */
    memset(c->dh1, 0, (size_t)R * H * sizeof(float));
    as_linear_backward(c->h1, R, H, D, ly->linear2.w, c->dr3, D, c->dh1,
                       G(t, AS_DP_FFN_L2_W), G(t, AS_DP_FFN_L2_B));
    for (size_t i = 0; i < (size_t)R * H; i++) /* ReLU: zero where the output was 0 */
        if (!(c->h1[i] > 0.0f))
            c->dh1[i] = 0.0f;
    as_linear_backward(c->t2, R, D, H, ly->linear1.w, c->dh1, H, c->dt2,
                       G(t, AS_DP_FFN_L1_W), G(t, AS_DP_FFN_L1_B));
    /* LN_s, self-attention */
    memset(c->dr2, 0, RD * sizeof(float));
    as_layernorm_backward(c->r2, R, D, ly->self.norm.w, ly->self.norm.eps, c->dt2, c->dr2,
                          G(t, AS_DP_SELF_NORM_W), G(t, AS_DP_SELF_NORM_B));
    memcpy(c->dt1, c->dr2, RD * sizeof(float)); /* residual */
    memset(c->das, 0, RD * sizeof(float));
    as_linear_backward(c->as, R, D, D, ly->self.out_proj.w, c->dr2, D, c->das,
                       G(t, AS_DP_SELF_OUT_W), G(t, AS_DP_SELF_OUT_B));
    memset(c->dqkv, 0, 3 * RD * sizeof(float));
    for (int k = 0; k < c->ninst; k++) {
        const size_t o3 = (size_t)k * Q * 3 * D;
        const float *qkv = c->qkv + o3;
        float *g = c->dqkv + o3;
        as_mha_backward(qkv, 3 * D, qkv + D, 3 * D, qkv + 2 * D, 3 * D, Q, Q, D, heads,
                        c->inst[k].ps, c->das + (size_t)k * Q * D, g, 3 * D, g + D, 3 * D,
                        g + 2 * D, 3 * D, c->mscratch);
    }
    as_linear_backward(c->t1, R, D, 3 * D, ly->self.in_proj.w, c->dqkv, 3 * D, c->dt1,
                       G(t, AS_DP_SELF_IN_W), G(t, AS_DP_SELF_IN_B));
    /* LN_c, cross-attention */
    memset(c->dr1, 0, RD * sizeof(float));
    as_layernorm_backward(c->r1, R, D, ly->cross.norm.w, ly->cross.norm.eps, c->dt1, c->dr1,
                          G(t, AS_DP_CROSS_NORM_W), G(t, AS_DP_CROSS_NORM_B));
    float *dq0 = G(t, AS_DP_QUERIES);
    for (int k = 0; k < c->ninst; k++) /* residual into the prototypes */
        for (size_t i = 0; i < (size_t)Q * D; i++)
            dq0[i] += c->dr1[(size_t)k * Q * D + i];
    memset(c->dac, 0, RD * sizeof(float));
    as_linear_backward(c->ac, R, D, D, ly->cross.out_proj.w, c->dr1, D, c->dac,
                       G(t, AS_DP_CROSS_OUT_W), G(t, AS_DP_CROSS_OUT_B));
    const float *W = ly->cross.in_proj.w;
    float *gw = G(t, AS_DP_CROSS_IN_W), *gb = G(t, AS_DP_CROSS_IN_B);
    /* value projection out_h = PF_h Wv_h^T + bv_h, all rows at once */
    for (int h = 0; h < heads; h++) {
        const float *go = c->dac + h * d;
        as_sgemm(true, false, d, D, R, 1.0f, go, D,
                    c->pf + (size_t)h * RD, D, 1.0f, gw + (size_t)(2 * D + h * d) * D, D);
        as_sgemm(false, false, R, D, d, 1.0f, go, D,
                    W + (size_t)(2 * D + h * d) * D, D, 0.0f, c->dpf + (size_t)h * RD, D);
    }
    as_linear_backward(NULL, R, D, D, NULL, c->dac, D, NULL, NULL, gb + 2 * D);
    /* attention per instance, into the shared folded queries */
    memset(c->dqk, 0, (size_t)heads * Q * D * sizeof(float));
    for (int k = 0; k < c->ninst; k++)
        as_cross_attend_backward(c->inst[k].F, Q, c->inst[k].n, D, heads, c->inst[k].pc,
                                 c->dpf + (size_t)k * Q * D, (long)RD, c->dqk, c->mscratch);
    memset(c->dqc, 0, (size_t)Q * D * sizeof(float));
    as_cross_fold_queries_backward(c->qc, Q, D, heads, W + (size_t)D * D, c->dqk, c->dqc,
                                   gw + (size_t)D * D);
    /* the shared query projection q = Q0 Wq^T + bq */
    as_linear_backward(dec->queries, Q, D, D, W, c->dqc, D, dq0, gw, gb);
}

int as_train_forward_backward(AsTrainer *t, const AsTrainBatch *b, AsTrainLosses *out,
                              AsError *err)
{
    if (b->batch <= 0 || b->nlocal <= 0 || b->n_g <= 0 || b->n_l <= 0)
        return as_error_set(err, AS_ERR_ARG, "train: empty batch (B=%d, local crops=%d)",
                            b->batch, b->nlocal);
    int rc = cache_prepare(t, b, err);
    if (rc)
        return rc;
    double t0 = as_train_clock();
    AsTrainCache *c = t->cache;
    const AsDecoder *dec = t->dec;
    const AsDecoderConfig *cf = &dec->cfg;
    const int D = cf->dim, Q = cf->queries;
    const int B = b->batch, nl = b->nlocal, ng = b->n_g, nlt = b->n_l;
    const size_t QD = (size_t)Q * D;

    /* forward of every instance */
    for (int k = 0; k < c->ninst; k++)
        c->inst[k].F = k < B ? b->gc_tokens + (size_t)k * ng * D
                             : b->lc_tokens + (size_t)(k - B) * nlt * D;
    decoder_forward(t);
    memset(c->dnP, 0, (size_t)c->ninst * QD * sizeof(float));
    /* normalised tokens (no gradient: the encoder is frozen) */
    as_l2norm_rows(b->gc_tokens, B * ng, D, NORM_EPS, c->nFg);
    as_l2norm_rows(b->lc_tokens, B * nl * nlt, D, NORM_EPS, c->nFl);
    /* global assignment logits sg = n(Fg) n(P0)^T */
    for (int bi = 0; bi < B; bi++)
        as_sgemm(false, true, ng, Q, D, 1.0f,
                    c->nFg + (size_t)bi * ng * D, D, c->inst[bi].nP, D, 0.0f,
                    c->sg + (size_t)bi * ng * Q, Q);
    memset(c->dsg, 0, (size_t)B * ng * Q * sizeof(float));
    double t1 = as_train_clock();
    t->time_forward += t1 - t0;

    double loss_corr = 0.0, loss_ce = 0.0;
    const float np = t->hyper.negative_pressure;
    for (int i = 0; i < nl; i++) {
        /* correlation target, centred over the whole batch as the reference */
        double m0 = 0.0;
        for (int bi = 0; bi < B; bi++) {
            float *C = c->corr + (size_t)bi * ng * nlt;
            const float *fl = c->nFl + ((size_t)bi * nl + i) * nlt * D;
            as_sgemm(false, true, ng, nlt, D, 1.0f,
                        c->nFg + (size_t)bi * ng * D, D, fl, D, 0.0f, C, nlt);
            for (size_t e = 0; e < (size_t)ng * nlt; e++)
                m0 += C[e];
        }
        const double count = (double)B * ng * nlt;
        m0 /= count;
        double m1 = 0.0;
        for (int r = 0; r < B * ng; r++) {
            float *row = c->corr + (size_t)r * nlt;
            double s = 0.0;
            for (int e = 0; e < nlt; e++)
                s += row[e];
            float mean = (float)(s / nlt);
            for (int e = 0; e < nlt; e++) {
                row[e] -= mean;
                m1 += row[e];
            }
        }
        m1 /= count;
        float shift = (float)(m0 - m1);
        for (size_t e = 0; e < (size_t)B * ng * nlt; e++)
            c->corr[e] += shift;
        for (int bi = 0; bi < B; bi++) {
            Inst *il = &c->inst[B + bi * nl + i];
            const float *fl = c->nFl + ((size_t)bi * nl + i) * nlt * D;
            as_sgemm(false, true, nlt, Q, D, 1.0f, fl, D, il->nP,
                        D, 0.0f, c->sl, Q);
            memset(c->dsl, 0, (size_t)nlt * Q * sizeof(float));
            double lc = as_loss_correlation(
                c->corr + (size_t)bi * ng * nlt, c->sg + (size_t)bi * ng * Q, c->sl, ng, nlt, Q,
                b->fg_gc + (size_t)bi * ng, b->fg_lc + ((size_t)i * B + bi) * nlt, np,
                t->hyper.corr_coef, 1.0f / nl, c->dsg + (size_t)bi * ng * Q, c->dsl);
            loss_corr += lc;
            /* dn(Pi) += dsl^T n(Fl) */
            as_sgemm(true, false, Q, D, nlt, 1.0f, c->dsl, Q, fl,
                        D, 1.0f, il->dnP, D);
            /* prototype cross-entropy */
            Inst *ig = &c->inst[bi];
            loss_ce += as_loss_query_ce(ig->nP, il->nP, Q, D, t->hyper.temperature,
                                        1.0f / ((float)nl * B), ig->dnP, il->dnP);
        }
    }
    loss_corr /= nl;
    loss_ce /= (double)nl * B;
    for (int bi = 0; bi < B; bi++)
        as_sgemm(true, false, Q, D, ng, 1.0f,
                    c->dsg + (size_t)bi * ng * Q, Q, c->nFg + (size_t)bi * ng * D, D, 1.0f,
                    c->inst[bi].dnP, D);

    /* backward through every decoder instance */
    memset(t->grad, 0, (size_t)t->total * sizeof(float));
    decoder_backward(t);
    t->time_backward += as_train_clock() - t1;

    /* adapted prototypes, crop-major */
    size_t need = (size_t)(1 + nl) * B * QD;
    if (!t->queries || t->q_batch != B || t->q_crops != 1 + nl) {
        free(t->queries);
        t->queries = malloc(need * sizeof(float));
        if (!t->queries)
            return as_error_set(err, AS_ERR_NOMEM, "trainer: out of memory");
        t->q_batch = B;
        t->q_crops = 1 + nl;
    }
    for (int cr = 0; cr <= nl; cr++)
        for (int bi = 0; bi < B; bi++) {
            const Inst *in = cr == 0 ? &c->inst[bi] : &c->inst[B + bi * nl + cr - 1];
            memcpy(t->queries + ((size_t)cr * B + bi) * QD, in->P, QD * sizeof(float));
        }
    if (out) {
        out->loss_corr = loss_corr;
        out->loss_ce = loss_ce;
        out->loss = loss_corr + loss_ce;
    }
    return 0;
}

