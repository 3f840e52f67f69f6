/* train: see train.h. Forward kernels come from kernels.h, backward kernels
 * from backward.h. Decoder instances (one per crop and batch element) are
 * independent; the decoder weights get the sum of their gradients. */
#include "train.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backward.h"
#include "kernels.h"
#include "pth.h"
#include "segment.h"
#include "vit.h"

#define NORM_EPS 1e-10f

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void as_train_hyper_default(AsTrainHyper *h)
{
    h->lr = 5e-4;
    h->beta1 = 0.9;
    h->beta2 = 0.999;
    h->eps = 1e-8;
    h->weight_decay = 0.04;
    h->negative_pressure = 0.11f;
    h->corr_coef = 0.15f;
    h->temperature = 1.0f;
}

double as_train_lr_at_epoch(double base_lr, int epoch, int step_size, double gamma)
{
    if (step_size <= 0 || epoch <= 0)
        return base_lr;
    return base_lr * pow(gamma, (double)(epoch / step_size));
}

/* ------------------------------------------------------------------------ */
/* parameter table */

/* slots within one attention layer / ffn layer, in PyTorch's order */
enum { A_IN_W, A_IN_B, A_OUT_W, A_OUT_B, A_NORM_W, A_NORM_B, A_COUNT };
enum { F_L1_W, F_L1_B, F_L2_W, F_L2_B, F_NORM_W, F_NORM_B, F_COUNT };

static int idx_cross(int layers, int j, int s) { (void)layers; return 1 + j * A_COUNT + s; }
static int idx_self(int layers, int j, int s) { return 1 + layers * A_COUNT + j * A_COUNT + s; }
static int idx_ffn(int layers, int j, int s) { return 1 + 2 * layers * A_COUNT + j * F_COUNT + s; }

static void set_param(AsParam *p, const char *name, float **slot, int ndim, int64_t s0,
                      int64_t s1, bool is_query)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->slot = slot;
    p->orig = *slot;
    p->data = *slot;
    p->ndim = ndim;
    p->shape[0] = s0;
    p->shape[1] = ndim > 1 ? s1 : 1;
    p->numel = (long)(s0 * (ndim > 1 ? s1 : 1));
    size_t len = strlen(name);
    bool is_bias = len >= 5 && !strcmp(name + len - 5, ".bias");
    if (is_bias || ndim == 1)
        p->group = AS_GROUP_NO_DECAY;
    else if (is_query)
        p->group = AS_GROUP_PROTOTYPES;
    else
        p->group = AS_GROUP_DECAY;
}

static void set_attn(AsParam *p, const char *prefix, AsAttnLayer *a, int D)
{
    char nm[128];
    snprintf(nm, sizeof nm, "%s.in_proj_weight", prefix);
    set_param(&p[A_IN_W], nm, &a->in_proj.w, 2, 3 * D, D, false);
    snprintf(nm, sizeof nm, "%s.in_proj_bias", prefix);
    set_param(&p[A_IN_B], nm, &a->in_proj.b, 1, 3 * D, 0, false);
    snprintf(nm, sizeof nm, "%s.out_proj.weight", prefix);
    set_param(&p[A_OUT_W], nm, &a->out_proj.w, 2, D, D, false);
    snprintf(nm, sizeof nm, "%s.out_proj.bias", prefix);
    set_param(&p[A_OUT_B], nm, &a->out_proj.b, 1, D, 0, false);
}

int as_trainer_init(AsTrainer *t, AsDecoder *dec, const AsTrainHyper *h, AsError *err)
{
    memset(t, 0, sizeof *t);
    t->dec = dec;
    if (h)
        t->hyper = *h;
    else
        as_train_hyper_default(&t->hyper);
    const AsDecoderConfig *c = &dec->cfg;
    const int D = c->dim, L = c->layers;
    if (D <= 0 || c->queries <= 0 || c->hidden <= 0 || L <= 0 || c->heads <= 0 ||
        D % c->heads)
        return as_error_set(err, AS_ERR_ARG,
                            "decoder: cannot train D=%d Q=%d H=%d layers=%d heads=%d", D,
                            c->queries, c->hidden, L, c->heads);
    if (c->chain_layers)
        return as_error_set(err, AS_ERR_UNSUPPORTED,
                            "decoder: training chained decoder layers is not supported (the "
                            "reference feeds the prototypes to every layer)");
    t->nparams = 1 + L * (2 * A_COUNT + F_COUNT);
    t->params = calloc((size_t)t->nparams, sizeof *t->params);
    if (!t->params)
        return as_error_set(err, AS_ERR_NOMEM, "trainer: out of memory");
    AsParam *P = t->params;
    set_param(&P[0], "clsQueries.weight", &dec->queries, 2, c->queries, D, true);
    char nm[128];
    for (int j = 0; j < L; j++) {
        AsDecoderLayer *ly = &dec->layers[j];
        AsParam *pc = &P[idx_cross(L, j, 0)], *ps = &P[idx_self(L, j, 0)];
        AsParam *pf = &P[idx_ffn(L, j, 0)];
        snprintf(nm, sizeof nm, "decoder_cross_attention_layers.%d.multihead_attn", j);
        set_attn(pc, nm, &ly->cross, D);
        snprintf(nm, sizeof nm, "decoder_cross_attention_layers.%d.norm.weight", j);
        set_param(&pc[A_NORM_W], nm, &ly->cross.norm.w, 1, D, 0, false);
        snprintf(nm, sizeof nm, "decoder_cross_attention_layers.%d.norm.bias", j);
        set_param(&pc[A_NORM_B], nm, &ly->cross.norm.b, 1, D, 0, false);
        snprintf(nm, sizeof nm, "decoder_self_attention_layers.%d.self_attn", j);
        set_attn(ps, nm, &ly->self, D);
        snprintf(nm, sizeof nm, "decoder_self_attention_layers.%d.norm.weight", j);
        set_param(&ps[A_NORM_W], nm, &ly->self.norm.w, 1, D, 0, false);
        snprintf(nm, sizeof nm, "decoder_self_attention_layers.%d.norm.bias", j);
        set_param(&ps[A_NORM_B], nm, &ly->self.norm.b, 1, D, 0, false);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.linear1.weight", j);
        set_param(&pf[F_L1_W], nm, &ly->linear1.w, 2, c->hidden, D, false);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.linear1.bias", j);
        set_param(&pf[F_L1_B], nm, &ly->linear1.b, 1, c->hidden, 0, false);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.linear2.weight", j);
        set_param(&pf[F_L2_W], nm, &ly->linear2.w, 2, D, c->hidden, false);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.linear2.bias", j);
        set_param(&pf[F_L2_B], nm, &ly->linear2.b, 1, D, 0, false);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.norm.weight", j);
        set_param(&pf[F_NORM_W], nm, &ly->ffn_norm.w, 1, D, 0, false);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.norm.bias", j);
        set_param(&pf[F_NORM_B], nm, &ly->ffn_norm.b, 1, D, 0, false);
    }
    /* Only the last layer's output is used (every layer reads Q0), so only
     * it and the prototypes receive gradients. */
    long off = 0;
    for (int k = 0; k < t->nparams; k++) {
        AsParam *p = &P[k];
        if (!p->data) {
            as_trainer_free(t);
            return as_error_set(err, AS_ERR_ARG, "decoder: parameter %s has no data", p->name);
        }
        p->trained = k == 0 || (k >= idx_cross(L, L - 1, 0) && k < idx_cross(L, L, 0)) ||
                     (k >= idx_self(L, L - 1, 0) && k < idx_self(L, L, 0)) ||
                     k >= idx_ffn(L, L - 1, 0);
        p->off = off;
        off += p->numel;
    }
    t->total = off;
    /* optimizer indices: group 0, then 1, then 2, each in parameter order */
    int oi = 0;
    for (int g = 0; g < 3; g++)
        for (int k = 0; k < t->nparams; k++)
            if (P[k].group == g)
                P[k].opt_index = oi++;
    /* the parameters move into memory of our own (a loaded checkpoint may be
     * a read-only mapping) */
    t->weights = malloc((size_t)off * sizeof(float));
    if (!t->weights) {
        as_trainer_free(t);
        return as_error_set(err, AS_ERR_NOMEM, "trainer: out of memory (%ld parameters)", off);
    }
    for (int k = 0; k < t->nparams; k++) {
        AsParam *p = &P[k];
        memcpy(t->weights + p->off, p->orig, (size_t)p->numel * sizeof(float));
        p->data = t->weights + p->off;
        *p->slot = p->data;
    }
    t->grad = calloc((size_t)off, sizeof(float));
    t->exp_avg = calloc((size_t)off, sizeof(float));
    t->exp_avg_sq = calloc((size_t)off, sizeof(float));
    if (!t->grad || !t->exp_avg || !t->exp_avg_sq) {
        as_trainer_free(t);
        return as_error_set(err, AS_ERR_NOMEM, "trainer: out of memory (%ld parameters)", off);
    }
    return 0;
}

AsParam *as_trainer_find(AsTrainer *t, const char *name)
{
    for (int k = 0; k < t->nparams; k++)
        if (!strcmp(t->params[k].name, name))
            return &t->params[k];
    return NULL;
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

static void cache_free(AsTrainCache *c)
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
    cache_free(c);
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
        cache_free(c);
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
        cache_free(c);
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
    AsLinear lq = { (float *)W, (float *)bias, D, D, NULL };
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, d, D, 1.0f,
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

static float *G(AsTrainer *t, int idx)
{
    return t->grad + t->params[idx].off;
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
                          G(t, idx_ffn(L, j, F_NORM_W)), G(t, idx_ffn(L, j, F_NORM_B)));
    memcpy(c->dt2, c->dr3, RD * sizeof(float)); /* residual */
    memset(c->dh1, 0, (size_t)R * H * sizeof(float));
    as_linear_backward(c->h1, R, H, D, ly->linear2.w, c->dr3, D, c->dh1,
                       G(t, idx_ffn(L, j, F_L2_W)), G(t, idx_ffn(L, j, F_L2_B)));
    for (size_t i = 0; i < (size_t)R * H; i++) /* ReLU: zero where the output was 0 */
        if (!(c->h1[i] > 0.0f))
            c->dh1[i] = 0.0f;
    as_linear_backward(c->t2, R, D, H, ly->linear1.w, c->dh1, H, c->dt2,
                       G(t, idx_ffn(L, j, F_L1_W)), G(t, idx_ffn(L, j, F_L1_B)));
    /* LN_s, self-attention */
    memset(c->dr2, 0, RD * sizeof(float));
    as_layernorm_backward(c->r2, R, D, ly->self.norm.w, ly->self.norm.eps, c->dt2, c->dr2,
                          G(t, idx_self(L, j, A_NORM_W)), G(t, idx_self(L, j, A_NORM_B)));
    memcpy(c->dt1, c->dr2, RD * sizeof(float)); /* residual */
    memset(c->das, 0, RD * sizeof(float));
    as_linear_backward(c->as, R, D, D, ly->self.out_proj.w, c->dr2, D, c->das,
                       G(t, idx_self(L, j, A_OUT_W)), G(t, idx_self(L, j, A_OUT_B)));
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
                       G(t, idx_self(L, j, A_IN_W)), G(t, idx_self(L, j, A_IN_B)));
    /* LN_c, cross-attention */
    memset(c->dr1, 0, RD * sizeof(float));
    as_layernorm_backward(c->r1, R, D, ly->cross.norm.w, ly->cross.norm.eps, c->dt1, c->dr1,
                          G(t, idx_cross(L, j, A_NORM_W)), G(t, idx_cross(L, j, A_NORM_B)));
    float *dq0 = G(t, 0);
    for (int k = 0; k < c->ninst; k++) /* residual into the prototypes */
        for (size_t i = 0; i < (size_t)Q * D; i++)
            dq0[i] += c->dr1[(size_t)k * Q * D + i];
    memset(c->dac, 0, RD * sizeof(float));
    as_linear_backward(c->ac, R, D, D, ly->cross.out_proj.w, c->dr1, D, c->dac,
                       G(t, idx_cross(L, j, A_OUT_W)), G(t, idx_cross(L, j, A_OUT_B)));
    const float *W = ly->cross.in_proj.w;
    float *gw = G(t, idx_cross(L, j, A_IN_W)), *gb = G(t, idx_cross(L, j, A_IN_B));
    /* value projection out_h = PF_h Wv_h^T + bv_h, all rows at once */
    for (int h = 0; h < heads; h++) {
        const float *go = c->dac + h * d;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, D, R, 1.0f, go, D,
                    c->pf + (size_t)h * RD, D, 1.0f, gw + (size_t)(2 * D + h * d) * D, D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, D, d, 1.0f, go, D,
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
    double t0 = now_sec();
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ng, Q, D, 1.0f,
                    c->nFg + (size_t)bi * ng * D, D, c->inst[bi].nP, D, 0.0f,
                    c->sg + (size_t)bi * ng * Q, Q);
    memset(c->dsg, 0, (size_t)B * ng * Q * sizeof(float));
    double t1 = now_sec();
    t->time_forward += t1 - t0;

    double loss_corr = 0.0, loss_ce = 0.0;
    const float np = t->hyper.negative_pressure;
    for (int i = 0; i < nl; i++) {
        /* correlation target, centred over the whole batch as the reference */
        double m0 = 0.0;
        for (int bi = 0; bi < B; bi++) {
            float *C = c->corr + (size_t)bi * ng * nlt;
            const float *fl = c->nFl + ((size_t)bi * nl + i) * nlt * D;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ng, nlt, D, 1.0f,
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nlt, Q, D, 1.0f, fl, D, il->nP,
                        D, 0.0f, c->sl, Q);
            memset(c->dsl, 0, (size_t)nlt * Q * sizeof(float));
            double lc = as_loss_correlation(
                c->corr + (size_t)bi * ng * nlt, c->sg + (size_t)bi * ng * Q, c->sl, ng, nlt, Q,
                b->fg_gc + (size_t)bi * ng, b->fg_lc + ((size_t)i * B + bi) * nlt, np,
                t->hyper.corr_coef, 1.0f / nl, c->dsg + (size_t)bi * ng * Q, c->dsl);
            loss_corr += lc;
            /* dn(Pi) += dsl^T n(Fl) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Q, D, nlt, 1.0f, c->dsl, Q, fl,
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
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Q, D, ng, 1.0f,
                    c->dsg + (size_t)bi * ng * Q, Q, c->nFg + (size_t)bi * ng * D, D, 1.0f,
                    c->inst[bi].dnP, D);

    /* backward through every decoder instance */
    memset(t->grad, 0, (size_t)t->total * sizeof(float));
    decoder_backward(t);
    t->time_backward += now_sec() - t1;

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

void as_train_adamw_step(AsTrainer *t)
{
    double t0 = now_sec();
    const AsTrainHyper *h = &t->hyper;
    for (int k = 0; k < t->nparams; k++) {
        AsParam *p = &t->params[k];
        if (!p->trained)
            continue;
        p->step += 1.0;
        double wd = p->group == AS_GROUP_DECAY ? h->weight_decay : 0.0;
        float decay = (float)(1.0 - h->lr * wd);
        double bc1 = 1.0 - pow(h->beta1, p->step);
        double bc2 = 1.0 - pow(h->beta2, p->step);
        float step_size = (float)(h->lr / bc1);
        float bc2_sqrt = (float)sqrt(bc2);
        float b1 = (float)h->beta1, b2 = (float)h->beta2, eps = (float)h->eps;
        float *w = p->data, *g = t->grad + p->off;
        float *m = t->exp_avg + p->off, *v = t->exp_avg_sq + p->off;
        for (long i = 0; i < p->numel; i++) {
            w[i] *= decay;
            m[i] = m[i] * b1 + g[i] * (1.0f - b1);
            v[i] = v[i] * b2 + g[i] * g[i] * (1.0f - b2);
            float denom = sqrtf(v[i]) / bc2_sqrt + eps;
            w[i] -= step_size * m[i] / denom;
        }
    }
    t->time_optim += now_sec() - t0;
}

void as_trainer_free(AsTrainer *t)
{
    if (!t)
        return;
    for (int k = 0; t->params && k < t->nparams; k++)
        if (t->params[k].slot && t->params[k].orig)
            *t->params[k].slot = t->params[k].orig;
    free(t->weights);
    free(t->params);
    free(t->grad);
    free(t->exp_avg);
    free(t->exp_avg_sq);
    free(t->queries);
    cache_free(t->cache);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------------ */
/* a fresh decoder */

static int add_tensor(AsTensorMap *map, const char *name, int ndim, int64_t s0, int64_t s1,
                      AsRng *rng, int kind, const float *src, AsError *err)
{
    /* kind: 0 zeros, 1 ones, 2 normal(0,1) or src, 3 xavier uniform, 4 trunc normal 0.02 */
    int64_t shape[2] = { s0, s1 };
    size_t n = (size_t)s0 * (size_t)(ndim > 1 ? s1 : 1);
    float *d = malloc(n * sizeof(float));
    if (!d)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for %s", name);
    if (kind == 3) {
        /* fan_in = in, fan_out = out for a (out, in) weight */
        double bound = sqrt(6.0 / (double)(s0 + s1));
        for (size_t i = 0; i < n; i++)
            d[i] = (float)as_rng_uniform_range(rng, -bound, bound);
    } else {
        for (size_t i = 0; i < n; i++) {
            switch (kind) {
            case 0: d[i] = 0.0f; break;
            case 1: d[i] = 1.0f; break;
            case 2: d[i] = src ? src[i] : (float)as_rng_normal(rng); break;
            default: d[i] = (float)as_rng_trunc_normal(rng, 0.02, -2.0, 2.0); break;
            }
        }
    }
    return as_tmap_add(map, name, ndim, shape, d, false, err);
}

int as_decoder_init_tensors(AsTensorMap *map, int dim, int queries, int hidden, int layers,
                            const float *prototypes, AsRng *rng, AsError *err)
{
    if (dim <= 0 || queries <= 0 || hidden <= 0 || layers <= 0)
        return as_error_set(err, AS_ERR_ARG, "decoder: bad size D=%d Q=%d H=%d layers=%d", dim,
                            queries, hidden, layers);
    char nm[160];
    int rc = add_tensor(map, "clsQueries.weight", 2, queries, dim, rng, 2, prototypes, err);
    static const char *const kinds[2] = { "decoder_cross_attention_layers.%d.multihead_attn",
                                          "decoder_self_attention_layers.%d.self_attn" };
    static const char *const norms[2] = { "decoder_cross_attention_layers.%d.norm",
                                          "decoder_self_attention_layers.%d.norm" };
    for (int a = 0; a < 2 && !rc; a++)
        for (int j = 0; j < layers && !rc; j++) {
            char pre[128];
            snprintf(pre, sizeof pre, kinds[a], j);
            snprintf(nm, sizeof nm, "%s.in_proj_weight", pre);
            rc = add_tensor(map, nm, 2, 3 * dim, dim, rng, 3, NULL, err);
            snprintf(nm, sizeof nm, "%s.in_proj_bias", pre);
            if (!rc)
                rc = add_tensor(map, nm, 1, 3 * dim, 0, rng, 0, NULL, err);
            snprintf(nm, sizeof nm, "%s.out_proj.weight", pre);
            if (!rc)
                rc = add_tensor(map, nm, 2, dim, dim, rng, 4, NULL, err);
            snprintf(nm, sizeof nm, "%s.out_proj.bias", pre);
            if (!rc)
                rc = add_tensor(map, nm, 1, dim, 0, rng, 0, NULL, err);
            snprintf(pre, sizeof pre, norms[a], j);
            snprintf(nm, sizeof nm, "%s.weight", pre);
            if (!rc)
                rc = add_tensor(map, nm, 1, dim, 0, rng, 1, NULL, err);
            snprintf(nm, sizeof nm, "%s.bias", pre);
            if (!rc)
                rc = add_tensor(map, nm, 1, dim, 0, rng, 0, NULL, err);
        }
    for (int j = 0; j < layers && !rc; j++) {
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.linear1.weight", j);
        rc = add_tensor(map, nm, 2, hidden, dim, rng, 4, NULL, err);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.linear1.bias", j);
        if (!rc)
            rc = add_tensor(map, nm, 1, hidden, 0, rng, 0, NULL, err);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.linear2.weight", j);
        if (!rc)
            rc = add_tensor(map, nm, 2, dim, hidden, rng, 4, NULL, err);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.linear2.bias", j);
        if (!rc)
            rc = add_tensor(map, nm, 1, dim, 0, rng, 0, NULL, err);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.norm.weight", j);
        if (!rc)
            rc = add_tensor(map, nm, 1, dim, 0, rng, 1, NULL, err);
        snprintf(nm, sizeof nm, "decoder_ffn_layers.%d.norm.bias", j);
        if (!rc)
            rc = add_tensor(map, nm, 1, dim, 0, rng, 0, NULL, err);
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* crops */

void as_random_resized_crop(AsRng *r, int img_w, int img_h, double smin, double smax,
                            AsBox *out)
{
    const double area = (double)img_w * img_h;
    const double lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * as_rng_uniform_range(r, smin, smax);
        double aspect = exp(as_rng_uniform_range(r, lr0, lr1));
        int w = (int)nearbyint(sqrt(target * aspect));
        int h = (int)nearbyint(sqrt(target / aspect));
        if (w > 0 && w <= img_w && h > 0 && h <= img_h) {
            out->y = (int)as_rng_int(r, 0, img_h - h);
            out->x = (int)as_rng_int(r, 0, img_w - w);
            out->w = w;
            out->h = h;
            return;
        }
    }
    double in_ratio = (double)img_w / img_h;
    int w = img_w, h = img_h;
    if (in_ratio < 3.0 / 4.0)
        h = (int)nearbyint(w / (3.0 / 4.0));
    else if (in_ratio > 4.0 / 3.0)
        w = (int)nearbyint(h * (4.0 / 3.0));
    if (h > img_h)
        h = img_h;
    if (w > img_w)
        w = img_w;
    out->w = w > 0 ? w : 1;
    out->h = h > 0 ? h : 1;
    out->x = (img_w - out->w) / 2;
    out->y = (img_h - out->h) / 2;
}

static long box_intersection(const AsBox *a, const AsBox *b)
{
    int x1 = a->x > b->x ? a->x : b->x, y1 = a->y > b->y ? a->y : b->y;
    int x2 = a->x + a->w < b->x + b->w ? a->x + a->w : b->x + b->w;
    int y2 = a->y + a->h < b->y + b->h ? a->y + a->h : b->y + b->h;
    if (x2 <= x1 || y2 <= y1)
        return 0;
    return (long)(x2 - x1) * (y2 - y1);
}

void as_sample_multicrop(AsRng *r, int img_w, int img_h, int nlocal, double min_inter,
                         AsBox *boxes)
{
    as_random_resized_crop(r, img_w, img_h, 0.5, 1.0, &boxes[0]);
    const long need = (long)((double)img_w * img_h * min_inter);
    for (int i = 1; i <= nlocal; i++) {
        int tries = 0;
        do
            as_random_resized_crop(r, img_w, img_h, 0.05, 0.25, &boxes[i]);
        while (box_intersection(&boxes[i], &boxes[0]) <= need && ++tries < 10000);
        if (tries >= 10000) { /* cannot happen for sane images: centre it in the global crop */
            AsBox *b = &boxes[i];
            if (b->w > boxes[0].w)
                b->w = boxes[0].w;
            if (b->h > boxes[0].h)
                b->h = boxes[0].h;
            b->x = boxes[0].x + (boxes[0].w - b->w) / 2;
            b->y = boxes[0].y + (boxes[0].h - b->h) / 2;
        }
    }
}

int as_crop_normalized(const AsImage *img, const AsBox *box, int size, float *out,
                       AsError *err)
{
    if (box->x < 0 || box->y < 0 || box->w <= 0 || box->h <= 0 || box->x + box->w > img->w ||
        box->y + box->h > img->h)
        return as_error_set(err, AS_ERR_ARG, "crop %dx%d+%d+%d outside the %dx%d image", box->w,
                            box->h, box->x, box->y, img->w, img->h);
    AsImage sub = { box->w, box->h, malloc((size_t)box->w * box->h * 3) };
    if (!sub.rgb)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for a %dx%d crop", box->w, box->h);
    for (int y = 0; y < box->h; y++)
        memcpy(sub.rgb + (size_t)y * box->w * 3,
               img->rgb + ((size_t)(box->y + y) * img->w + box->x) * 3, (size_t)box->w * 3);
    AsImage res = { 0, 0, NULL };
    int rc = as_image_resize(&sub, size, size, &res, err);
    free(sub.rgb);
    if (rc)
        return rc;
    as_image_normalize(&res, out);
    as_image_free(&res);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* checkpoints */

/* The DINO ViT's own tensors (a backbone file may hold more, e.g. DINO's
 * projection head, which the published layout does not have). */
static bool is_encoder_name(const char *name)
{
    return !strncmp(name, "blocks.", 7) || !strncmp(name, "patch_embed.", 12) ||
           !strcmp(name, "cls_token") || !strcmp(name, "pos_embed") ||
           !strcmp(name, "norm.weight") || !strcmp(name, "norm.bias");
}

#define PV_SET(dict, key, val)                                                   \
    do {                                                                         \
        if (!rc)                                                                 \
            rc = as_pv_dict_set_str((dict), (key), (val), err);                  \
        else                                                                     \
            as_pv_free(val);                                                     \
    } while (0)

static AsPValue *param_group(const AsTrainer *t, int g, bool with_initial_lr,
                             double initial_lr, AsError *err)
{
    const AsTrainHyper *h = &t->hyper;
    AsPValue *d = as_pv_dict(false);
    if (!d) {
        as_error_set(err, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    int rc = 0;
    PV_SET(d, "weight_decay", as_pv_float(g == AS_GROUP_DECAY ? h->weight_decay : 0.0));
    PV_SET(d, "lr", as_pv_float(h->lr));
    AsPValue *betas = as_pv_tuple();
    if (betas && as_pv_append(betas, as_pv_float(h->beta1), err) == 0 &&
        as_pv_append(betas, as_pv_float(h->beta2), err) == 0)
        PV_SET(d, "betas", betas);
    else {
        as_pv_free(betas);
        rc = rc ? rc : AS_ERR_NOMEM;
    }
    PV_SET(d, "eps", as_pv_float(h->eps));
    PV_SET(d, "amsgrad", as_pv_bool(false));
    PV_SET(d, "foreach", as_pv_none());
    PV_SET(d, "maximize", as_pv_bool(false));
    PV_SET(d, "capturable", as_pv_bool(false));
    if (with_initial_lr)
        PV_SET(d, "initial_lr", as_pv_float(initial_lr));
    AsPValue *plist = as_pv_list();
    for (int k = 0; plist && k < t->nparams && !rc; k++)
        if (t->params[k].group == g)
            rc = as_pv_append(plist, as_pv_int(t->params[k].opt_index), err);
    if (!plist)
        rc = rc ? rc : AS_ERR_NOMEM;
    PV_SET(d, "params", plist);
    if (rc) {
        as_pv_free(d);
        if (err && !err->code)
            as_error_set(err, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return d;
}

int as_train_save(const char *path, const AsModel *m, const AsTrainer *t, int64_t epoch,
                  const char *net, bool with_initial_lr, double initial_lr, AsPValue *extra,
                  AsError *err)
{
    int rc = 0;
    AsPValue *root = as_pv_dict(false);
    AsPValue *sd = as_pv_dict(true);
    AsPValue *opt = as_pv_dict(false);
    AsPValue *state = as_pv_dict(false);
    AsPValue *groups = as_pv_list();
    float *steps = malloc(sizeof(float) * (size_t)(t->nparams > 0 ? t->nparams : 1));
    if (!root || !sd || !opt || !state || !groups || !steps) {
        rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    /* state dict: encoder under backbone., then the decoder in parameter order */
    char nm[320];
    for (size_t i = 0; i < m->weights.count && !rc; i++) {
        const AsTensor *tt = &m->weights.items[i];
        if (!tt->data || !is_encoder_name(tt->name))
            continue;
        snprintf(nm, sizeof nm, "backbone.%s", tt->name);
        AsPValue *tv = as_pv_tensor_f32(tt->ndim, tt->shape, tt->data, false);
        if (!tv)
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
        else
            rc = as_pv_dict_set_str(sd, nm, tv, err);
    }
    for (int k = 0; k < t->nparams && !rc; k++) {
        const AsParam *p = &t->params[k];
        AsPValue *tv = as_pv_tensor_f32(p->ndim, p->shape, p->data, false);
        if (!tv)
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
        else
            rc = as_pv_dict_set_str(sd, p->name, tv, err);
    }
    /* optimizer: state in index order, then the three groups */
    for (int oi = 0; oi < t->nparams && !rc; oi++) {
        const AsParam *p = NULL;
        for (int k = 0; k < t->nparams; k++)
            if (t->params[k].opt_index == oi)
                p = &t->params[k];
        if (!p || p->step <= 0.0)
            continue;
        steps[oi] = (float)p->step;
        AsPValue *st = as_pv_dict(false);
        if (!st) {
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
            break;
        }
        PV_SET(st, "step", as_pv_tensor_f32(0, NULL, &steps[oi], false));
        PV_SET(st, "exp_avg", as_pv_tensor_f32(p->ndim, p->shape, t->exp_avg + p->off, false));
        PV_SET(st, "exp_avg_sq",
               as_pv_tensor_f32(p->ndim, p->shape, t->exp_avg_sq + p->off, false));
        if (rc)
            as_pv_free(st);
        else
            rc = as_pv_dict_set_int(state, oi, st, err);
    }
    for (int g = 0; g < 3 && !rc; g++) {
        AsPValue *gv = param_group(t, g, with_initial_lr, initial_lr, err);
        rc = gv ? as_pv_append(groups, gv, err) : AS_ERR_NOMEM;
    }
    if (rc)
        goto done;
    rc = as_pv_dict_set_str(opt, "state", state, err);
    state = NULL;
    if (!rc)
        rc = as_pv_dict_set_str(opt, "param_groups", groups, err);
    groups = NULL;
    PV_SET(root, "epoch", as_pv_int(epoch));
    PV_SET(root, "net", as_pv_str(net ? net : "vit_small"));
    if (!rc)
        rc = as_pv_dict_set_str(root, "state_dict", sd, err);
    sd = NULL;
    if (!rc)
        rc = as_pv_dict_set_str(root, "optimizer", opt, err);
    opt = NULL;
    for (size_t i = 0; extra && i < extra->count && !rc; i++) {
        rc = as_pv_dict_set(root, extra->keys[i], extra->items[i], err);
        extra->keys[i] = extra->items[i] = NULL;
    }
    if (!rc)
        rc = as_pth_write(path, NULL, root, err);
done:
    as_pv_free(root);
    as_pv_free(sd);
    as_pv_free(opt);
    as_pv_free(state);
    as_pv_free(groups);
    as_pv_free(extra);
    free(steps);
    return rc;
}

int as_train_load_optimizer(AsTrainer *t, const AsPValue *opt, const char *what,
                            AsError *err)
{
    if (!opt || opt->kind != AS_PV_DICT)
        return as_error_set(err, AS_ERR_FORMAT, "%s: no optimizer state (a dict) found", what);
    const AsPValue *state = as_pv_get(opt, "state");
    const AsPValue *groups = as_pv_get(opt, "param_groups");
    if (!state || state->kind != AS_PV_DICT || !groups || groups->kind != AS_PV_LIST)
        return as_error_set(err, AS_ERR_FORMAT,
                            "%s: optimizer lacks 'state' (dict) or 'param_groups' (list)", what);
    if (groups->count != 3)
        return as_error_set(err, AS_ERR_FORMAT,
                            "%s: optimizer has %zu parameter groups, expected 3", what,
                            groups->count);
    for (int g = 0; g < 3; g++) {
        const AsPValue *pl = as_pv_get(groups->items[g], "params");
        int expect = 0;
        for (int k = 0; k < t->nparams; k++)
            expect += t->params[k].group == g;
        if (!pl || pl->kind != AS_PV_LIST || (int)pl->count != expect)
            return as_error_set(err, AS_ERR_FORMAT,
                                "%s: optimizer group %d has %zu parameters, expected %d", what,
                                g, pl && pl->kind == AS_PV_LIST ? pl->count : 0, expect);
    }
    double lr;
    if (as_pv_number(as_pv_get(groups->items[0], "lr"), &lr) && lr > 0.0 && lr < 10.0)
        t->hyper.lr = lr;
    for (int k = 0; k < t->nparams; k++) {
        AsParam *p = &t->params[k];
        const AsPValue *st = as_pv_get_int(state, p->opt_index);
        p->step = 0.0;
        memset(t->exp_avg + p->off, 0, (size_t)p->numel * sizeof(float));
        memset(t->exp_avg_sq + p->off, 0, (size_t)p->numel * sizeof(float));
        if (!st)
            continue;
        double step;
        const AsPValue *ea = as_pv_get(st, "exp_avg"), *es = as_pv_get(st, "exp_avg_sq");
        if (!as_pv_number(as_pv_get(st, "step"), &step) || step < 0 || step > 1e12 || !ea ||
            !es || ea->kind != AS_PV_TENSOR || es->kind != AS_PV_TENSOR || !ea->t->f32 ||
            !es->t->f32)
            return as_error_set(err, AS_ERR_FORMAT,
                                "%s: optimizer state %d (%s) lacks step / exp_avg / exp_avg_sq",
                                what, p->opt_index, p->name);
        if (ea->t->numel != p->numel || es->t->numel != p->numel)
            return as_error_set(err, AS_ERR_SHAPE,
                                "%s: optimizer state %d (%s) has %lld values, the parameter %ld",
                                what, p->opt_index, p->name, (long long)ea->t->numel,
                                p->numel);
        p->step = step;
        memcpy(t->exp_avg + p->off, ea->t->f32, (size_t)p->numel * sizeof(float));
        memcpy(t->exp_avg_sq + p->off, es->t->f32, (size_t)p->numel * sizeof(float));
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* encoder outputs of the crops */

void as_pairing_source(AsPairing p, int batch, int nlocal, int b, int i, int *img, int *crop)
{
    if (p == AS_PAIRING_SAME_IMAGE) {
        *img = b;
        *crop = i;
        return;
    }
    /* locals are listed crop-major [crop 1 of images 0..B-1, crop 2 ...];
     * entry (b, i) is element b * nlocal + i of that list */
    int k = b * nlocal + i;
    *crop = k / batch;
    *img = k % batch;
}

typedef struct {
    const AsEncoder *enc;
    const float *crops;
    AsTrainCrops *tc;
    AsVitWorkspace *ws;
    float mass;
    int first, step, total; /* crops first, first+step, ... < total */
    const AsHooks *hooks;
    int rc;
    AsError err;
} EncodeJob;

static void *encode_worker(void *arg)
{
    EncodeJob *j = arg;
    AsTrainCrops *tc = j->tc;
    const size_t S = (size_t)tc->size, n = (size_t)tc->n, D = (size_t)tc->dim;
    float *mean = malloc(n * sizeof(float));
    if (!mean) {
        j->rc = as_error_set(&j->err, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int k = j->first; k < j->total; k += j->step) {
        if (as_hooks_cancelled(j->hooks)) {
            j->rc = as_error_set(&j->err, AS_ERR_CANCELLED, "cancelled");
            break;
        }
        j->rc = as_vit_forward(j->enc, j->crops + (size_t)k * 3 * S * S, (int)S, (int)S, j->ws,
                               NULL, &j->err);
        if (j->rc)
            break;
        memcpy(tc->tokens + (size_t)k * n * D, j->ws->tokens, n * D * sizeof(float));
        as_attn_head_mean(j->ws->cls_attn, j->ws->heads, (int)n, mean);
        if (as_foreground_mask(mean, tc->gh, tc->gw, j->mass, tc->fg + (size_t)k * n)) {
            j->rc = as_error_set(&j->err, AS_ERR_NOMEM, "out of memory (foreground mask)");
            break;
        }
    }
    free(mean);
    return NULL;
}

void as_train_crops_init(AsTrainCrops *tc)
{
    memset(tc, 0, sizeof *tc);
}

#define MAX_ENCODE_THREADS 16

static void free_workspaces(AsTrainCrops *tc)
{
    AsVitWorkspace *ws = tc->ws;
    for (int i = 0; ws && i < MAX_ENCODE_THREADS; i++)
        as_vit_workspace_free(&ws[i]);
    free(ws);
    tc->ws = NULL;
}

void as_train_crops_free(AsTrainCrops *tc)
{
    free(tc->tokens);
    free(tc->fg);
    free(tc->lc);
    free_workspaces(tc);
    memset(tc, 0, sizeof *tc);
}

int as_train_crops_encode(AsTrainCrops *tc, const AsEncoder *enc, const float *crops,
                          int ncrops, int batch, int size, AsPairing pairing,
                          float mass_threshold, int threads, const AsHooks *hooks,
                          AsError *err)
{
    const int p = enc->cfg.patch;
    if (ncrops < 2 || batch <= 0 || size <= 0 || p <= 0 || size % p)
        return as_error_set(err, AS_ERR_ARG,
                            "crops: need a global and at least one local crop of a size that "
                            "is a multiple of the patch %d (got %d crops of %d)",
                            p, ncrops, size);
    if (threads < 1)
        threads = 1;
    if (threads > MAX_ENCODE_THREADS)
        threads = MAX_ENCODE_THREADS;
    const int g = size / p, n = g * g, D = enc->cfg.dim, nl = ncrops - 1;
    if (tc->batch != batch || tc->ncrops != ncrops || tc->size != size || tc->dim != D) {
        free(tc->tokens);
        free(tc->fg);
        free(tc->lc);
        tc->tokens = malloc((size_t)ncrops * batch * n * D * sizeof(float));
        tc->fg = malloc((size_t)ncrops * batch * n);
        tc->lc = malloc((size_t)batch * nl * n * D * sizeof(float));
        if (!tc->tokens || !tc->fg || !tc->lc) {
            as_train_crops_free(tc);
            return as_error_set(err, AS_ERR_NOMEM, "out of memory for the tokens of %d crops",
                                ncrops * batch);
        }
        tc->batch = batch;
        tc->ncrops = ncrops;
        tc->size = size;
        tc->gh = tc->gw = g;
        tc->n = n;
        tc->dim = D;
    }
    if (!tc->ws) {
        tc->ws = calloc(MAX_ENCODE_THREADS, sizeof(AsVitWorkspace));
        if (!tc->ws)
            return as_error_set(err, AS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < MAX_ENCODE_THREADS; i++)
            as_vit_workspace_init(&((AsVitWorkspace *)tc->ws)[i]);
    }
    double t0 = now_sec();
    const int total = ncrops * batch;
    if (threads > total)
        threads = total;
    EncodeJob jobs[MAX_ENCODE_THREADS];
    pthread_t tid[MAX_ENCODE_THREADS];
    int started = 0;
    for (int i = 0; i < threads; i++) {
        EncodeJob *j = &jobs[i];
        memset(j, 0, sizeof *j);
        j->enc = enc;
        j->crops = crops;
        j->tc = tc;
        j->ws = &((AsVitWorkspace *)tc->ws)[i];
        j->mass = mass_threshold;
        j->first = i;
        j->step = threads;
        j->total = total;
        j->hooks = hooks;
        int rc = as_vit_workspace_prepare(j->ws, enc, size, size, err);
        if (rc)
            return rc;
    }
    for (int i = 1; i < threads; i++)
        if (pthread_create(&tid[i], NULL, encode_worker, &jobs[i]) == 0)
            started = i;
        else
            break;
    if (started < threads - 1) { /* could not start them all: run serially */
        for (int i = 1; i <= started; i++)
            pthread_join(tid[i], NULL);
        jobs[0].step = 1;
        jobs[0].first = 0;
        started = 0;
        threads = 1;
    }
    encode_worker(&jobs[0]);
    for (int i = 1; i <= started; i++)
        pthread_join(tid[i], NULL);
    tc->time_encoder += now_sec() - t0;
    for (int i = 0; i < threads; i++)
        if (jobs[i].rc) {
            if (err)
                *err = jobs[i].err;
            return jobs[i].rc;
        }
    /* local tokens in the chosen pairing */
    const size_t nD = (size_t)n * D;
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < nl; i++) {
            int img, crop;
            as_pairing_source(pairing, batch, nl, b, i, &img, &crop);
            memcpy(tc->lc + ((size_t)b * nl + i) * nD,
                   tc->tokens + ((size_t)(1 + crop) * batch + img) * nD, nD * sizeof(float));
        }
    AsTrainBatch v = { batch, nl, n, n, tc->tokens, tc->lc, tc->fg, tc->fg + (size_t)batch * n };
    tc->batch_view = v;
    return 0;
}
