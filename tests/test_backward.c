/* test_backward: finite-difference checks of every hand-written backward
 * kernel (backward.h) and of the two training losses (train.h). Each forward
 * function is re-written here naively in double precision; the gradient of
 * L = sum(r * y) (r random) by central differences must match the kernel's
 * analytic gradient. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "check.h"
#include "train.h"

static uint64_t lcg = 88172645463325252ull;
static double urand(void) /* [-1, 1) */
{
    lcg ^= lcg << 13;
    lcg ^= lcg >> 7;
    lcg ^= lcg << 17;
    return (double)(lcg >> 11) / 4503599627370496.0 - 1.0;
}
static void fill(double *x, int n, double s)
{
    for (int i = 0; i < n; i++)
        x[i] = s * urand();
}
static float *tof(const double *x, int n)
{
    float *f = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++)
        f[i] = (float)x[i];
    return f;
}

/* objective: a function of the parameter vector p (which the forward reads
 * through a context), returning sum(r * y). */
typedef double (*Objective)(void *ctx);

/* Compare analytic gradient g (float, n) against central differences of f
 * w.r.t. p[0..n) (double). Relative to the largest |gradient|. */
static void fd_check(const char *what, Objective f, void *ctx, double *p, int n, const float *g,
                     double h, double tol)
{
    double gmax = 1e-12, emax = 0.0;
    int worst = -1;
    for (int i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double fp = f(ctx);
        p[i] = keep - h;
        double fm = f(ctx);
        p[i] = keep;
        double num = (fp - fm) / (2 * h);
        if (fabs(num) > gmax)
            gmax = fabs(num);
        double e = fabs(num - g[i]);
        if (e > emax) {
            emax = e;
            worst = i;
        }
    }
    CHECK(emax <= tol * gmax, "%s: max error %g at %d (largest gradient %g)", what, emax, worst,
          gmax);
}

/* ---- linear ---- */
typedef struct { int n, in, out; double *x, *w, *b, *r; } LinCtx;
static double lin_f(void *v)
{
    LinCtx *c = v;
    double L = 0;
    for (int i = 0; i < c->n; i++)
        for (int o = 0; o < c->out; o++) {
            double y = c->b[o];
            for (int k = 0; k < c->in; k++)
                y += c->x[i * c->in + k] * c->w[o * c->in + k];
            L += c->r[i * c->out + o] * y;
        }
    return L;
}
static void test_linear(void)
{
    LinCtx c = { 4, 5, 3, NULL, NULL, NULL, NULL };
    double x[20], w[15], b[3], r[12];
    fill(x, 20, 1);
    fill(w, 15, 1);
    fill(b, 3, 1);
    fill(r, 12, 1);
    c.x = x, c.w = w, c.b = b, c.r = r;
    float *fx = tof(x, 20), *fw = tof(w, 15), *fr = tof(r, 12);
    float dx[20] = { 0 }, dw[15] = { 0 }, db[3] = { 0 };
    as_linear_backward(fx, 4, 5, 3, fw, fr, 3, dx, dw, db);
    fd_check("linear dx", lin_f, &c, x, 20, dx, 1e-5, 1e-4);
    fd_check("linear dw", lin_f, &c, w, 15, dw, 1e-5, 1e-4);
    fd_check("linear db", lin_f, &c, b, 3, db, 1e-5, 1e-4);
    /* accumulation: a second call doubles the gradients */
    float dw2[15];
    memcpy(dw2, dw, sizeof dw);
    as_linear_backward(fx, 4, 5, 3, fw, fr, 3, NULL, dw2, NULL);
    double e = 0;
    for (int i = 0; i < 15; i++)
        e = fmax(e, fabs(dw2[i] - 2 * dw[i]));
    CHECK(e < 1e-5, "linear backward accumulates (error %g)", e);
    free(fx), free(fw), free(fr);
}

/* ---- layernorm ---- */
typedef struct { int n, d; double *x, *w, *b, *r; double eps; } LnCtx;
static double ln_f(void *v)
{
    LnCtx *c = v;
    double L = 0;
    for (int i = 0; i < c->n; i++) {
        const double *x = c->x + i * c->d;
        double m = 0, var = 0;
        for (int k = 0; k < c->d; k++)
            m += x[k];
        m /= c->d;
        for (int k = 0; k < c->d; k++)
            var += (x[k] - m) * (x[k] - m);
        var /= c->d;
        for (int k = 0; k < c->d; k++)
            L += c->r[i * c->d + k] * ((x[k] - m) / sqrt(var + c->eps) * c->w[k] + c->b[k]);
    }
    return L;
}
static void test_layernorm(void)
{
    enum { N = 3, D = 7 };
    double x[N * D], w[D], b[D], r[N * D];
    fill(x, N * D, 2);
    fill(w, D, 1);
    fill(b, D, 1);
    fill(r, N * D, 1);
    LnCtx c = { N, D, x, w, b, r, 1e-5 };
    float *fx = tof(x, N * D), *fw = tof(w, D), *fr = tof(r, N * D);
    float dx[N * D] = { 0 }, dw[D] = { 0 }, db[D] = { 0 };
    as_layernorm_backward(fx, N, D, fw, 1e-5f, fr, dx, dw, db);
    fd_check("layernorm dx", ln_f, &c, x, N * D, dx, 1e-5, 1e-4);
    fd_check("layernorm dw", ln_f, &c, w, D, dw, 1e-5, 1e-4);
    fd_check("layernorm db", ln_f, &c, b, D, db, 1e-5, 1e-4);
    free(fx), free(fw), free(fr);
}

/* ---- elementwise: relu, clamp ---- */
typedef struct { int n; double *x, *r; int kind; } EwCtx;
static double ew_f(void *v)
{
    EwCtx *c = v;
    double L = 0;
    for (int i = 0; i < c->n; i++)
        L += c->r[i] * (c->x[i] > 0 ? c->x[i] : 0.0);
    return L;
}
static void test_elementwise(void)
{
    enum { N = 40 };
    double x[N], r[N];
    fill(x, N, 1);
    fill(r, N, 1);
    for (int i = 0; i < N; i++) /* keep away from the kink */
        if (fabs(x[i]) < 0.05)
            x[i] = 0.3;
    EwCtx c = { N, x, r, 0 };
    float *fx = tof(x, N), *fr = tof(r, N);
    float y[N], dx[N] = { 0 }, dc[N] = { 0 };
    for (int i = 0; i < N; i++)
        y[i] = fx[i] > 0 ? fx[i] : 0.0f;
    as_relu_backward(y, fr, N, dx);
    fd_check("relu", ew_f, &c, x, N, dx, 1e-4, 1e-5);
    as_clamp_min_backward(fx, 0.0f, fr, N, dc);
    fd_check("clamp min 0", ew_f, &c, x, N, dc, 1e-4, 1e-5);
    free(fx), free(fr);
}

/* ---- softmax rows ---- */
typedef struct { int n, m; double *x, *r; } SmCtx;
static double sm_f(void *v)
{
    SmCtx *c = v;
    double L = 0;
    for (int i = 0; i < c->n; i++) {
        const double *x = c->x + i * c->m;
        double mx = x[0], s = 0;
        for (int j = 1; j < c->m; j++)
            mx = fmax(mx, x[j]);
        for (int j = 0; j < c->m; j++)
            s += exp(x[j] - mx);
        for (int j = 0; j < c->m; j++)
            L += c->r[i * c->m + j] * exp(x[j] - mx) / s;
    }
    return L;
}
static void test_softmax(void)
{
    enum { N = 3, M = 6 };
    double x[N * M], r[N * M];
    fill(x, N * M, 3);
    fill(r, N * M, 1);
    SmCtx c = { N, M, x, r };
    float p[N * M], dx[N * M] = { 0 };
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < M; j++)
            s += exp(x[i * M + j]);
        for (int j = 0; j < M; j++)
            p[i * M + j] = (float)(exp(x[i * M + j]) / s);
    }
    float *fr = tof(r, N * M);
    as_softmax_rows_backward(p, fr, N, M, dx);
    fd_check("softmax", sm_f, &c, x, N * M, dx, 1e-5, 1e-4);
    free(fr);
}

/* ---- l2 normalisation ---- */
typedef struct { int n, d; double *x, *r; double eps; } L2Ctx;
static double l2_f(void *v)
{
    L2Ctx *c = v;
    double L = 0;
    for (int i = 0; i < c->n; i++) {
        double s = 0;
        for (int k = 0; k < c->d; k++)
            s += c->x[i * c->d + k] * c->x[i * c->d + k];
        double nrm = fmax(sqrt(s), c->eps);
        for (int k = 0; k < c->d; k++)
            L += c->r[i * c->d + k] * c->x[i * c->d + k] / nrm;
    }
    return L;
}
static void test_l2norm(void)
{
    enum { N = 4, D = 5 };
    double x[N * D], r[N * D];
    fill(x, N * D, 1);
    fill(r, N * D, 1);
    L2Ctx c = { N, D, x, r, 1e-10 };
    float *fx = tof(x, N * D), *fr = tof(r, N * D);
    float dx[N * D] = { 0 };
    as_l2norm_rows_backward(fx, N, D, 1e-10f, fr, dx);
    fd_check("l2norm", l2_f, &c, x, N * D, dx, 1e-6, 1e-4);
    /* below eps the map is linear: x / eps */
    double xs[D];
    for (int k = 0; k < D; k++)
        xs[k] = 1e-3 * urand();
    L2Ctx cs = { 1, D, xs, r, 0.5 };
    float *fxs = tof(xs, D), dxs[D] = { 0 };
    as_l2norm_rows_backward(fxs, 1, D, 0.5f, fr, dxs);
    fd_check("l2norm below eps", l2_f, &cs, xs, D, dxs, 1e-6, 1e-4);
    free(fx), free(fr), free(fxs);
}

/* ---- multi-head attention ---- */
typedef struct { int nq, nk, dim, heads; double *q, *k, *v, *r; } MhaCtx;
static double mha_f(void *vv)
{
    MhaCtx *c = vv;
    int d = c->dim / c->heads;
    double L = 0, s[64];
    for (int h = 0; h < c->heads; h++)
        for (int i = 0; i < c->nq; i++) {
            double mx = -1e300, sum = 0;
            for (int j = 0; j < c->nk; j++) {
                double a = 0;
                for (int e = 0; e < d; e++)
                    a += c->q[i * c->dim + h * d + e] * c->k[j * c->dim + h * d + e];
                s[j] = a / sqrt((double)d);
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < c->nk; j++)
                sum += (s[j] = exp(s[j] - mx));
            for (int e = 0; e < d; e++) {
                double o = 0;
                for (int j = 0; j < c->nk; j++)
                    o += s[j] / sum * c->v[j * c->dim + h * d + e];
                L += c->r[i * c->dim + h * d + e] * o;
            }
        }
    return L;
}
static void test_mha(void)
{
    enum { NQ = 3, NK = 5, DIM = 6, HEADS = 2 };
    double q[NQ * DIM], k[NK * DIM], v[NK * DIM], r[NQ * DIM];
    fill(q, NQ * DIM, 1.5);
    fill(k, NK * DIM, 1.5);
    fill(v, NK * DIM, 1);
    fill(r, NQ * DIM, 1);
    MhaCtx c = { NQ, NK, DIM, HEADS, q, k, v, r };
    /* probabilities as the forward leaves them */
    int d = DIM / HEADS;
    float probs[HEADS * NQ * NK];
    for (int h = 0; h < HEADS; h++)
        for (int i = 0; i < NQ; i++) {
            double s[NK], sum = 0;
            for (int j = 0; j < NK; j++) {
                double a = 0;
                for (int e = 0; e < d; e++)
                    a += q[i * DIM + h * d + e] * k[j * DIM + h * d + e];
                sum += (s[j] = exp(a / sqrt((double)d)));
            }
            for (int j = 0; j < NK; j++)
                probs[(h * NQ + i) * NK + j] = (float)(s[j] / sum);
        }
    /* strided inputs: q inside a (NQ, 2*DIM) buffer, k/v interleaved (NK, 2*DIM) */
    float fq[NQ * 2 * DIM], fkv[NK * 2 * DIM];
    for (int i = 0; i < NQ; i++)
        for (int e = 0; e < DIM; e++)
            fq[i * 2 * DIM + e] = (float)q[i * DIM + e], fq[i * 2 * DIM + DIM + e] = 99.0f;
    for (int j = 0; j < NK; j++)
        for (int e = 0; e < DIM; e++) {
            fkv[j * 2 * DIM + e] = (float)k[j * DIM + e];
            fkv[j * 2 * DIM + DIM + e] = (float)v[j * DIM + e];
        }
    float *fr = tof(r, NQ * DIM);
    float dq[NQ * 2 * DIM] = { 0 }, dkv[NK * 2 * DIM] = { 0 }, scratch[NQ * NK];
    as_mha_backward(fq, 2 * DIM, fkv, 2 * DIM, fkv + DIM, 2 * DIM, NQ, NK, DIM, HEADS, probs, fr,
                    dq, 2 * DIM, dkv, 2 * DIM, dkv + DIM, 2 * DIM, scratch);
    float gq[NQ * DIM], gk[NK * DIM], gv[NK * DIM];
    for (int i = 0; i < NQ; i++)
        for (int e = 0; e < DIM; e++)
            gq[i * DIM + e] = dq[i * 2 * DIM + e];
    for (int j = 0; j < NK; j++)
        for (int e = 0; e < DIM; e++) {
            gk[j * DIM + e] = dkv[j * 2 * DIM + e];
            gv[j * DIM + e] = dkv[j * 2 * DIM + DIM + e];
        }
    float pad = 0;
    for (int i = 0; i < NQ; i++)
        for (int e = 0; e < DIM; e++)
            pad += fabsf(dq[i * 2 * DIM + DIM + e]);
    CHECK(pad == 0.0f, "mha backward writes outside its columns (%g)", pad);
    fd_check("mha dq", mha_f, &c, q, NQ * DIM, gq, 1e-5, 1e-4);
    fd_check("mha dk", mha_f, &c, k, NK * DIM, gk, 1e-5, 1e-4);
    fd_check("mha dv", mha_f, &c, v, NK * DIM, gv, 1e-5, 1e-4);
    free(fr);
}

/* ---- prototype cross-entropy ---- */
typedef struct { int q, d; double *z; double T; } CeCtx; /* z: (2q, d) */
static double ce_f(void *v)
{
    CeCtx *c = v;
    int n2 = 2 * c->q;
    double L = 0;
    for (int r = 0; r < n2; r++) {
        double s[16], mx = -1e300, se = 0;
        for (int k = 0; k < n2; k++) {
            double a = 0;
            for (int e = 0; e < c->d; e++)
                a += c->z[r * c->d + e] * c->z[k * c->d + e];
            s[k] = a / c->T;
            if (k != r)
                mx = fmax(mx, s[k]);
        }
        for (int k = 0; k < n2; k++)
            if (k != r)
                se += exp(s[k] - mx);
        L += mx + log(se) - s[(r + c->q) % n2];
    }
    return L / n2;
}
static void test_query_ce(void)
{
    enum { Q = 4, D = 6 };
    double z[2 * Q * D];
    fill(z, 2 * Q * D, 1);
    CeCtx c = { Q, D, z, 0.7 };
    float *fz = tof(z, 2 * Q * D);
    float dz[2 * Q * D] = { 0 };
    double loss = as_loss_query_ce(fz, fz + Q * D, Q, D, 0.7f, 1.0f, dz, dz + Q * D);
    CHECK_NEAR(loss, ce_f(&c), 1e-5, "query ce value");
    fd_check("query ce dz", ce_f, &c, z, 2 * Q * D, dz, 1e-5, 1e-4);
    free(fz);
}

/* ---- correlation alignment ---- */
typedef struct { int n, m, q; double *c, *sg, *sl; const uint8_t *fg, *fl; double b, coef; } CoCtx;
static void csm(const double *x, int q, double *p)
{
    double mx = 0, s = 0;
    for (int k = 0; k < q; k++)
        mx = fmax(mx, fmax(x[k], 0));
    for (int k = 0; k < q; k++)
        s += (p[k] = exp(fmax(x[k], 0) - mx));
    for (int k = 0; k < q; k++)
        p[k] /= s;
}
static double co_f(void *v)
{
    CoCtx *c = v;
    double L = 0, pa[8], pb[8];
    for (int i = 0; i < c->n; i++) {
        if (!c->fg[i])
            continue;
        csm(c->sg + i * c->q, c->q, pa);
        for (int j = 0; j < c->m; j++) {
            if (!c->fl[j])
                continue;
            csm(c->sl + j * c->q, c->q, pb);
            double g = 0;
            for (int k = 0; k < c->q; k++)
                g += pa[k] * pb[k];
            L += -g * (c->c[i * c->m + j] - c->b);
        }
    }
    return c->coef * L;
}
static void test_correlation(void)
{
    enum { N = 5, M = 4, Q = 3 };
    double cc[N * M], sg[N * Q], sl[M * Q];
    fill(cc, N * M, 1);
    fill(sg, N * Q, 1);
    fill(sl, M * Q, 1);
    for (int i = 0; i < N * Q; i++)
        if (fabs(sg[i]) < 0.05)
            sg[i] = 0.2;
    for (int i = 0; i < M * Q; i++)
        if (fabs(sl[i]) < 0.05)
            sl[i] = -0.2;
    const uint8_t fg[N] = { 1, 0, 1, 1, 1 }, fl[M] = { 1, 1, 0, 1 };
    CoCtx c = { N, M, Q, cc, sg, sl, fg, fl, 0.11, 0.15 };
    float *fc = tof(cc, N * M), *fsg = tof(sg, N * Q), *fsl = tof(sl, M * Q);
    float dsg[N * Q] = { 0 }, dsl[M * Q] = { 0 };
    double loss = as_loss_correlation(fc, fsg, fsl, N, M, Q, fg, fl, 0.11f, 0.15f, 1.0f, dsg, dsl);
    CHECK_NEAR(loss, co_f(&c), 1e-5, "correlation loss value");
    fd_check("correlation dsg", co_f, &c, sg, N * Q, dsg, 1e-5, 1e-4);
    fd_check("correlation dsl", co_f, &c, sl, M * Q, dsl, 1e-5, 1e-4);
    /* masked-out rows get no gradient */
    CHECK(dsg[1 * Q] == 0.0f && dsg[1 * Q + 1] == 0.0f, "background row has gradient");
    free(fc), free(fsg), free(fsl);
}

/* ---- cross-attention with folded key / value projections ---- */
typedef struct { int nq, n, dim, heads; double *q, *F, *wk, *bk, *wv, *bv, *r; } CxCtx;
static double cx_f(void *vv)
{
    /* the plain form: project every token to k and v, then attention */
    CxCtx *c = vv;
    int D = c->dim, d = D / c->heads;
    double *k = malloc(sizeof(double) * c->n * D), *v = malloc(sizeof(double) * c->n * D);
    for (int j = 0; j < c->n; j++)
        for (int o = 0; o < D; o++) {
            double a = c->bk[o], b = c->bv[o];
            for (int e = 0; e < D; e++) {
                a += c->F[j * D + e] * c->wk[o * D + e];
                b += c->F[j * D + e] * c->wv[o * D + e];
            }
            k[j * D + o] = a, v[j * D + o] = b;
        }
    MhaCtx m = { c->nq, c->n, D, c->heads, c->q, k, v, c->r };
    double L = mha_f(&m);
    (void)d;
    free(k), free(v);
    return L;
}
static void test_cross_tokens(void)
{
    enum { NQ = 3, N = 7, D = 6, HEADS = 2 };
    double q[NQ * D], F[N * D], wk[D * D], bk[D], wv[D * D], bv[D], r[NQ * D];
    fill(q, NQ * D, 1);
    fill(F, N * D, 1);
    fill(wk, D * D, 0.8);
    fill(bk, D, 1);
    fill(wv, D * D, 0.8);
    fill(bv, D, 1);
    fill(r, NQ * D, 1);
    CxCtx c = { NQ, N, D, HEADS, q, F, wk, bk, wv, bv, r };
    float *fq = tof(q, NQ * D), *fF = tof(F, N * D), *fwk = tof(wk, D * D);
    float *fwv = tof(wv, D * D), *fbv = tof(bv, D), *fr = tof(r, NQ * D);
    float probs[HEADS * NQ * N], pf[HEADS * NQ * D], out[NQ * D], scratch[2 * NQ * D + NQ * N];
    as_cross_attn_tokens_forward(fq, fF, NQ, N, D, HEADS, fwk, fwv, fbv, probs, pf, out, scratch);
    /* forward value against the plain form: L = sum(r * out) */
    double L = 0;
    for (int i = 0; i < NQ * D; i++)
        L += r[i] * out[i];
    CHECK_NEAR(L, cx_f(&c), 1e-4, "folded cross-attention forward");
    float dq[NQ * D] = { 0 }, dwk[D * D] = { 0 }, dwv[D * D] = { 0 }, dbv[D] = { 0 };
    float zero[D] = { 0 };
    as_cross_attn_tokens_backward(fq, fF, NQ, N, D, HEADS, fwk, fwv, probs, pf, fr, dq, dwk, dwv,
                                  dbv, scratch);
    fd_check("cross tokens dq", cx_f, &c, q, NQ * D, dq, 1e-5, 1e-4);
    fd_check("cross tokens dwk", cx_f, &c, wk, D * D, dwk, 1e-5, 1e-4);
    fd_check("cross tokens dwv", cx_f, &c, wv, D * D, dwv, 1e-5, 1e-4);
    fd_check("cross tokens dbv", cx_f, &c, bv, D, dbv, 1e-5, 1e-4);
    /* the key bias: zero gradient (compared with a unit scale) */
    double gmax = 0;
    for (int i = 0; i < D; i++) {
        double keep = bk[i];
        bk[i] = keep + 1e-4;
        double fp = cx_f(&c);
        bk[i] = keep - 1e-4;
        double fm = cx_f(&c);
        bk[i] = keep;
        gmax = fmax(gmax, fabs((fp - fm) / 2e-4 - zero[i]));
    }
    CHECK(gmax < 1e-6, "key bias gradient %g, expected 0", gmax);
    free(fq), free(fF), free(fwk), free(fwv), free(fbv), free(fr);
}

int main(void)
{
    test_cross_tokens();
    test_linear();
    test_layernorm();
    test_elementwise();
    test_softmax();
    test_l2norm();
    test_mha();
    test_query_ce();
    test_correlation();
    return check_report("backward");
}
