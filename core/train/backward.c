/* backward: see backward.h. Matrix products are OpenBLAS sgemm calls (as_sgemm) with
 * beta = 1 (accumulation); row reductions use double accumulators. */
#include "backward.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "linear.h"

void as_linear_backward(const float *x, int n, int in, int out, const float *w,
                        const float *dy, int ldy, float *dx, float *dw, float *db)
{
    if (n <= 0)
        return;
    if (dx)
        as_sgemm(false, false, n, in, out, 1.0f, dy, ldy, w, in, 1.0f, dx, in);
    if (dw)
        as_sgemm(true, false, out, in, n, 1.0f, dy, ldy, x, in, 1.0f, dw, in);
    if (db) {
        /* rows outer (contiguous reads), double accumulators in small blocks */
        double acc[256];
        for (int o0 = 0; o0 < out; o0 += 256) {
            int bw = out - o0 < 256 ? out - o0 : 256;
            for (int o = 0; o < bw; o++)
                acc[o] = 0.0;
            for (int r = 0; r < n; r++) {
                const float *row = dy + (size_t)r * ldy + o0;
                for (int o = 0; o < bw; o++)
                    acc[o] += row[o];
            }
            for (int o = 0; o < bw; o++)
                db[o0 + o] += (float)acc[o];
        }
    }
}

void as_layernorm_backward(const float *x, int n, int dim, const float *w, float eps,
                           const float *dy, float *dx, float *dw, float *db)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * dim;
        const float *gr = dy + (size_t)r * dim;
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < dim; i++)
            mean += xr[i];
        mean /= dim;
        for (int i = 0; i < dim; i++) {
            double c = xr[i] - mean;
            var += c * c;
        }
        var /= dim;
        double rstd = 1.0 / sqrt(var + (double)eps);
        double sum_g = 0.0, sum_gx = 0.0;
        for (int i = 0; i < dim; i++) {
            double xh = (xr[i] - mean) * rstd;
            double g = (double)gr[i] * (w ? w[i] : 1.0f);
            sum_g += g;
            sum_gx += g * xh;
            if (dw)
                dw[i] += (float)(gr[i] * xh);
            if (db)
                db[i] += gr[i];
        }
        if (!dx)
            continue;
        double mg = sum_g / dim, mgx = sum_gx / dim;
        float *dr = dx + (size_t)r * dim;
        for (int i = 0; i < dim; i++) {
            double xh = (xr[i] - mean) * rstd;
            double g = (double)gr[i] * (w ? w[i] : 1.0f);
            dr[i] += (float)(rstd * (g - mg - xh * mgx));
        }
    }
}

void as_relu_backward(const float *y, const float *dy, long n, float *dx)
{
    for (long i = 0; i < n; i++)
        if (y[i] > 0.0f)
            dx[i] += dy[i];
}

void as_clamp_min_backward(const float *x, float lo, const float *dy, long n, float *dx)
{
    for (long i = 0; i < n; i++)
        if (x[i] >= lo)
            dx[i] += dy[i];
}

void as_softmax_rows_backward(const float *p, const float *dp, int n, int m, float *dx)
{
    for (int r = 0; r < n; r++) {
        const float *pr = p + (size_t)r * m, *gr = dp + (size_t)r * m;
        double s = 0.0;
        for (int j = 0; j < m; j++)
            s += (double)pr[j] * gr[j];
        float *dr = dx + (size_t)r * m;
        for (int j = 0; j < m; j++)
            dr[j] += (float)(pr[j] * (gr[j] - s));
    }
}

void as_l2norm_rows_backward(const float *x, int n, int d, float eps, const float *dy,
                             float *dx)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * d, *gr = dy + (size_t)r * d;
        float *dr = dx + (size_t)r * d;
        double ss = 0.0;
        for (int i = 0; i < d; i++)
            ss += (double)xr[i] * xr[i];
        double nrm = sqrt(ss);
        if (nrm <= (double)eps) {
            for (int i = 0; i < d; i++)
                dr[i] += (float)(gr[i] / (double)eps);
            continue;
        }
        double dot = 0.0;
        for (int i = 0; i < d; i++)
            dot += (double)xr[i] * gr[i];
        dot /= nrm; /* y . dy */
        for (int i = 0; i < d; i++)
            dr[i] += (float)((gr[i] - xr[i] / nrm * dot) / nrm);
    }
}

void as_mha_backward(const float *q, int ldq, const float *k, int ldk, const float *v,
                     int ldv, int nq, int nk, int dim, int heads, const float *probs,
                     const float *dout, float *dq, int lddq, float *dk, int lddk, float *dv,
                     int lddv, float *scratch)
{
    int d = dim / heads;
    float scale = 1.0f / sqrtf((float)d);
    for (int h = 0; h < heads; h++) {
        const float *p = probs + (size_t)h * nq * nk;
        const float *go = dout + h * d;
        /* dV_h += P^T dO_h */
        if (dv)
            as_sgemm(true, false, nk, d, nq, 1.0f, p, nk, go, dim, 1.0f, dv + h * d, lddv);
        if (!dq && !dk)
            continue;
        /* dP = dO_h V_h^T, then dS = P * (dP - rowsum(P dP)) * scale */
        as_sgemm(false, true, nq, nk, d, 1.0f, go, dim, v + h * d, ldv, 0.0f, scratch, nk);
        for (int i = 0; i < nq; i++) {
            const float *pr = p + (size_t)i * nk;
            float *sr = scratch + (size_t)i * nk;
            double s = 0.0;
            for (int j = 0; j < nk; j++)
                s += (double)pr[j] * sr[j];
            for (int j = 0; j < nk; j++)
                sr[j] = (float)(pr[j] * (sr[j] - s)) * scale;
        }
        if (dq)
            as_sgemm(false, false, nq, d, nk, 1.0f, scratch, nk, k + h * d, ldk, 1.0f, dq + h * d,
                     lddq);
        if (dk)
            as_sgemm(true, false, nk, d, nq, 1.0f, scratch, nk, q + h * d, ldq, 1.0f, dk + h * d,
                     lddk);
    }
}

void as_cross_fold_queries(const float *q, int nq, int dim, int heads, const float *wk,
                           float *qk)
{
    const int d = dim / heads;
    const float scale = 1.0f / sqrtf((float)d);
    for (int h = 0; h < heads; h++)
        as_sgemm(false, false, nq, dim, d, scale, q + h * d, dim, wk + (size_t)h * d * dim, dim,
                 0.0f, qk + (size_t)h * nq * dim, dim);
}

void as_cross_attend(const float *qk, const float *F, int nq, int n, int dim, int heads,
                     float *probs, float *pf, long head_stride)
{
    for (int h = 0; h < heads; h++) {
        float *p = probs + (size_t)h * nq * n;
        as_sgemm(false, true, nq, n, dim, 1.0f, qk + (size_t)h * nq * dim, dim, F, dim, 0.0f, p, n);
        for (int i = 0; i < nq; i++) { /* softmax of each row */
            float *r = p + (size_t)i * n, mx = r[0];
            for (int j = 1; j < n; j++)
                mx = r[j] > mx ? r[j] : mx;
            double s = 0.0;
            for (int j = 0; j < n; j++) {
                r[j] = expf(r[j] - mx);
                s += r[j];
            }
            float inv = (float)(1.0 / s);
            for (int j = 0; j < n; j++)
                r[j] *= inv;
        }
        as_sgemm(false, false, nq, dim, n, 1.0f, p, n, F, dim, 0.0f, pf + (size_t)h * head_stride,
                 dim);
    }
}

void as_cross_attend_backward(const float *F, int nq, int n, int dim, int heads,
                              const float *probs, const float *dpf, long head_stride,
                              float *dqk, float *scratch)
{
    for (int h = 0; h < heads; h++) {
        const float *p = probs + (size_t)h * nq * n;
        /* PF_h = P_h F: dP = dPF F^T, then the softmax backward */
        as_sgemm(false, true, nq, n, dim, 1.0f, dpf + (size_t)h * head_stride, dim, F, dim, 0.0f,
                 scratch, n);
        for (int i = 0; i < nq; i++) {
            const float *pr = p + (size_t)i * n;
            float *gr = scratch + (size_t)i * n;
            double s = 0.0;
            for (int j = 0; j < n; j++)
                s += (double)pr[j] * gr[j];
            for (int j = 0; j < n; j++)
                gr[j] = (float)(pr[j] * (gr[j] - s));
        }
        /* scores = qk_h F^T */
        as_sgemm(false, false, nq, dim, n, 1.0f, scratch, n, F, dim, 1.0f,
                 dqk + (size_t)h * nq * dim, dim);
    }
}

void as_cross_fold_queries_backward(const float *q, int nq, int dim, int heads,
                                    const float *wk, const float *dqk, float *dq, float *dwk)
{
    const int d = dim / heads;
    const float scale = 1.0f / sqrtf((float)d);
    for (int h = 0; h < heads; h++) {
        const float *g = dqk + (size_t)h * nq * dim;
        if (dq)
            as_sgemm(false, true, nq, d, dim, scale, g, dim, wk + (size_t)h * d * dim, dim, 1.0f,
                     dq + h * d, dim);
        if (dwk)
            as_sgemm(true, false, d, dim, nq, scale, q + h * d, dim, g, dim, 1.0f,
                     dwk + (size_t)h * d * dim, dim);
    }
}

/* The single-set forms, built from the pieces above. */
void as_cross_attn_tokens_forward(const float *q, const float *F, int nq, int n, int dim,
                                  int heads, const float *wk, const float *wv, const float *bv,
                                  float *probs, float *pf, float *out, float *scratch)
{
    const int d = dim / heads;
    (void)scratch;
    float *qk = malloc((size_t)heads * nq * dim * sizeof(float));
    if (!qk)
        return;
    as_cross_fold_queries(q, nq, dim, heads, wk, qk);
    as_cross_attend(qk, F, nq, n, dim, heads, probs, pf, (long)nq * dim);
    free(qk);
    for (int h = 0; h < heads; h++) {
        for (int i = 0; i < nq; i++)
            memcpy(out + (size_t)i * dim + h * d, bv + h * d, (size_t)d * sizeof(float));
        as_sgemm(false, true, nq, d, dim, 1.0f, pf + (size_t)h * nq * dim, dim,
                 wv + (size_t)h * d * dim, dim, 1.0f, out + h * d, dim);
    }
}

void as_cross_attn_tokens_backward(const float *q, const float *F, int nq, int n, int dim,
                                   int heads, const float *wk, const float *wv,
                                   const float *probs, const float *pf, const float *dout,
                                   float *dq, float *dwk, float *dwv, float *dbv,
                                   float *scratch)
{
    const int d = dim / heads;
    float *dpf = calloc((size_t)heads * nq * dim * 2, sizeof(float));
    if (!dpf)
        return;
    float *dqk = dpf + (size_t)heads * nq * dim;
    for (int h = 0; h < heads; h++) {
        const float *go = dout + h * d;
        if (dwv)
            as_sgemm(true, false, d, dim, nq, 1.0f, go, dim, pf + (size_t)h * nq * dim, dim, 1.0f,
                     dwv + (size_t)h * d * dim, dim);
        if (dbv)
            for (int i = 0; i < nq; i++)
                for (int e = 0; e < d; e++)
                    dbv[h * d + e] += go[(size_t)i * dim + e];
        as_sgemm(false, false, nq, dim, d, 1.0f, go, dim, wv + (size_t)h * d * dim, dim, 0.0f,
                 dpf + (size_t)h * nq * dim, dim);
    }
    as_cross_attend_backward(F, nq, n, dim, heads, probs, dpf, (long)nq * dim, dqk, scratch);
    as_cross_fold_queries_backward(q, nq, dim, heads, wk, dqk, dq, dwk);
    free(dpf);
}
