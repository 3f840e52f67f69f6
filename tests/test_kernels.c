/* test_kernels: the forward kernels (compute/), the foreground-mask steps
 * and k-means against naive loops, closed-form values and hand-made maps. */
#include <stdint.h>

#include "check.h"
#include "activations.h"
#include "attention.h"
#include "fgmask.h"
#include "linear.h"
#include "pool.h"
#include "resample.h"
#include "kmeans.h"
#include "segment.h"

/* deterministic test values in [-1, 1) */
static float val(int i)
{
    uint32_t x = (uint32_t)i * 2654435761u + 12345u;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    return (float)(x % 20000) / 10000.0f - 1.0f;
}

/* as_linear on few rows (the decoder's queries: dot products, outputs split
 * over threads) and on many (the packed GEMM on a temporary packing), with
 * vector bodies and tails, against double sums. */
static void test_linear_shapes(void)
{
    static const int shapes[][3] = { { 5, 37, 50 }, { 8, 384, 600 }, { 1, 9, 3 }, { 9, 40, 33 },
                                     { 40, 37, 50 } };
    for (int threads = 1; threads <= 2; threads++) {
        as_pool_set_threads(threads);
        for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
            const int n = shapes[c][0], in = shapes[c][1], out = shapes[c][2];
            float *x = malloc(sizeof(float) * n * in), *w = malloc(sizeof(float) * out * in);
            float *b = malloc(sizeof(float) * out), *y = malloc(sizeof(float) * n * out);
            for (int i = 0; i < n * in; i++)
                x[i] = val(1000 + i);
            for (int i = 0; i < out * in; i++)
                w[i] = val(50000 + i);
            for (int i = 0; i < out; i++)
                b[i] = val(900000 + i);
            AsLinear l = { w, b, out, in, NULL, NULL };
            as_linear(x, n, &l, y);
            double worst = 0;
            for (int i = 0; i < n; i++)
                for (int o = 0; o < out; o++) {
                    double s = b[o];
                    for (int k = 0; k < in; k++)
                        s += (double)x[i * in + k] * w[o * in + k];
                    const double e = fabs(s - y[i * out + o]);
                    worst = e > worst ? e : worst;
                }
            CHECK(worst < 1e-4, "linear %dx%d -> %d, %d thread(s): worst error %g", n, in, out,
                  threads, worst);
            free(x);
            free(w);
            free(b);
            free(y);
        }
    }
    as_pool_set_threads(1);
}

static void test_linear(void)
{
    enum { N = 5, IN = 7, OUT = 3 };
    float x[N * IN], w[OUT * IN], b[OUT], y[N * OUT];
    for (int i = 0; i < N * IN; i++)
        x[i] = val(i);
    for (int i = 0; i < OUT * IN; i++)
        w[i] = val(100 + i);
    for (int i = 0; i < OUT; i++)
        b[i] = val(200 + i);
    AsLinear l = { w, b, OUT, IN, NULL, NULL };
    as_linear(x, N, &l, y);
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OUT; o++) {
            double s = b[o];
            for (int k = 0; k < IN; k++)
                s += (double)x[i * IN + k] * w[o * IN + k];
            CHECK_NEAR(y[i * OUT + o], s, 1e-5, "linear");
        }
    AsLinear nb = { w, NULL, OUT, IN, NULL, NULL };
    as_linear(x, N, &nb, y);
    double s = 0;
    for (int k = 0; k < IN; k++)
        s += (double)x[IN + k] * w[2 * IN + k];
    CHECK_NEAR(y[OUT + 2], s, 1e-5, "linear without bias");
}

static void test_layernorm(void)
{
    enum { N = 3, D = 16 };
    float x[N * D], y[N * D], w[D], b[D], one[D], zero[D];
    for (int i = 0; i < N * D; i++)
        x[i] = 3.0f * val(300 + i) + 5.0f;
    for (int j = 0; j < D; j++) {
        w[j] = val(400 + j);
        b[j] = val(500 + j);
        one[j] = 1.0f;
        zero[j] = 0.0f;
    }
    AsNorm plain = { one, zero, D, 1e-6f };
    as_layernorm(x, N, &plain, y);
    for (int i = 0; i < N; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < D; j++)
            m += y[i * D + j];
        m /= D;
        for (int j = 0; j < D; j++)
            v += (y[i * D + j] - m) * (y[i * D + j] - m);
        v /= D;
        CHECK_NEAR(m, 0.0, 1e-6, "layernorm mean");
        CHECK_NEAR(v, 1.0, 1e-4, "layernorm variance (biased)");
    }
    AsNorm aff = { w, b, D, 1e-5f };
    memcpy(y, x, sizeof y);
    as_layernorm(y, N, &aff, y); /* in place */
    for (int i = 0; i < N; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < D; j++)
            m += x[i * D + j];
        m /= D;
        for (int j = 0; j < D; j++)
            v += (x[i * D + j] - m) * (x[i * D + j] - m);
        v /= D;
        for (int j = 0; j < D; j++)
            CHECK_NEAR(y[i * D + j], (x[i * D + j] - m) / sqrt(v + 1e-5) * w[j] + b[j], 1e-5,
                       "layernorm affine");
    }
}

static void test_softmax(void)
{
    float x[3 * 4] = { 1, 2, 3, 4, -1000, 0, 1000, 999, 0.5f, 0.5f, 0.5f, 0.5f };
    float r[12];
    memcpy(r, x, sizeof r);
    as_softmax_rows(r, 3, 4);
    for (int i = 0; i < 3; i++) {
        double s = 0;
        for (int j = 0; j < 4; j++) {
            s += r[i * 4 + j];
            CHECK(r[i * 4 + j] >= 0 && isfinite(r[i * 4 + j]), "softmax finite");
        }
        CHECK_NEAR(s, 1.0, 1e-6, "softmax sums to 1");
    }
    double z = exp(-3) + exp(-2) + exp(-1) + 1;
    CHECK_NEAR(r[0], exp(-3) / z, 1e-7, "softmax value");
    CHECK_NEAR(r[6], 1 / (1 + exp(-1)), 1e-6, "softmax large logits");
    CHECK_NEAR(r[8], 0.25, 1e-7, "softmax uniform");
}

static void test_activations(void)
{
    /* GELU(x) = x * Phi(x); values from erf */
    float g[5] = { 0.0f, 1.0f, -1.0f, 2.0f, -3.0f };
    const double want[5] = { 0.0, 0.8413447460685429, -0.15865525393145707, 1.9544997361036416,
                             -0.0040496349341374 };
    as_gelu_inplace(g, 5);
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(g[i], want[i], 1e-6, "gelu");
    float r[4] = { -2.0f, 0.0f, 3.5f, -0.0f };
    as_relu_inplace(r, 4);
    CHECK(r[0] == 0 && r[1] == 0 && r[2] == 3.5f && r[3] == 0, "relu");
    float v[6] = { 3, 4, 0, 0, 0, 0 };
    as_l2norm_rows(v, 2, 3, 1e-10f, v);
    CHECK_NEAR(v[0], 0.6, 1e-7, "l2norm");
    CHECK_NEAR(v[1], 0.8, 1e-7, "l2norm");
    CHECK(v[3] == 0 && v[4] == 0 && v[5] == 0, "l2norm of a zero row stays zero");
}

static void test_mha(void)
{
    enum { NQ = 3, NK = 5, D = 8, H = 2, HD = D / H };
    float q[NQ * D], kv[NK * 2 * D], probs[H * NQ * NK], out[NQ * D];
    for (int i = 0; i < NQ * D; i++)
        q[i] = 2.0f * val(600 + i);
    for (int i = 0; i < NK * 2 * D; i++)
        kv[i] = 2.0f * val(700 + i);
    /* k and v interleaved in rows of 2D, as the decoder's projected memory */
    as_mha(q, D, kv, 2 * D, kv + D, 2 * D, NQ, NK, D, H, probs, out);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < NQ; i++) {
            double s[NK], m = -1e300, z = 0;
            for (int j = 0; j < NK; j++) {
                s[j] = 0;
                for (int c = 0; c < HD; c++)
                    s[j] += (double)q[i * D + h * HD + c] * kv[j * 2 * D + h * HD + c];
                s[j] /= sqrt((double)HD);
                if (s[j] > m)
                    m = s[j];
            }
            for (int j = 0; j < NK; j++)
                z += exp(s[j] - m);
            for (int j = 0; j < NK; j++)
                CHECK_NEAR(probs[(h * NQ + i) * NK + j], exp(s[j] - m) / z, 1e-6, "mha probs");
            for (int c = 0; c < HD; c++) {
                double o = 0;
                for (int j = 0; j < NK; j++)
                    o += exp(s[j] - m) / z * kv[j * 2 * D + D + h * HD + c];
                CHECK_NEAR(out[i * D + h * HD + c], o, 1e-5, "mha output");
            }
        }
    float scratch[NQ * NK], row0[H * NK], out2[NQ * D];
    as_mha_lowmem(q, D, kv, 2 * D, kv + D, 2 * D, NQ, NK, D, H, scratch, row0, out2);
    CHECK(!memcmp(out, out2, sizeof out), "as_mha_lowmem output equals as_mha");
    for (int h = 0; h < H; h++)
        CHECK(!memcmp(row0 + h * NK, probs + h * NQ * NK, NK * sizeof(float)),
              "as_mha_lowmem row 0 of head %d", h);
}

static void test_bicubic(void)
{
    /* 1 x 4 grid, 2 channels, down to 1 x 2 with scale 2: sources at 0.5 and
     * 2.5, where the a = -0.75 weights are (-0.09375, 0.59375, 0.59375, -0.09375)
     * and borders are clamped. */
    const float src[8] = { 1, 10, 2, 20, 4, 40, 8, 80 };
    float dst[4];
    as_bicubic_resize_hwc(src, 1, 4, 2, 1, 2, 1.0, 2.0, dst);
    const double v0 = -0.09375 * 1 + 0.59375 * 1 + 0.59375 * 2 - 0.09375 * 4;
    const double v1 = -0.09375 * 2 + 0.59375 * 4 + 0.59375 * 8 - 0.09375 * 8;
    CHECK_NEAR(dst[0], v0, 1e-6, "bicubic at 0.5 (clamped left)");
    CHECK_NEAR(dst[1], 10 * v0, 1e-5, "bicubic channel 2");
    CHECK_NEAR(dst[2], v1, 1e-6, "bicubic at 2.5 (clamped right)");
    CHECK_NEAR(dst[3], 10 * v1, 1e-5, "bicubic channel 2");
    /* separable: an outer product stays an outer product of the 1-D results */
    const float fy[4] = { 1, -2, 3, 0.5f }, fx[4] = { 2, 1, -1, 4 };
    float grid[16], out[36], ry[6], rx[6];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            grid[y * 4 + x] = fy[y] * fx[x];
    as_bicubic_resize_hwc(grid, 4, 4, 1, 6, 6, 4.0 / 6.1, 4.0 / 6.1, out);
    as_bicubic_resize_hwc(fy, 4, 1, 1, 6, 1, 4.0 / 6.1, 1.0, ry);
    as_bicubic_resize_hwc(fx, 1, 4, 1, 1, 6, 1.0, 4.0 / 6.1, rx);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++)
            CHECK_NEAR(out[y * 6 + x], ry[y] * rx[x], 1e-5, "bicubic separable");
    /* constants are preserved (weights sum to 1) */
    float c[9] = { 2, 2, 2, 2, 2, 2, 2, 2, 2 }, co[25];
    as_bicubic_resize_hwc(c, 3, 3, 1, 5, 5, 3.0 / 5.1, 3.0 / 5.1, co);
    for (int i = 0; i < 25; i++)
        CHECK_NEAR(co[i], 2.0, 1e-5, "bicubic constant");
}

static void test_bilinear(void)
{
    int i0, i1;
    float w0, w1;
    as_bilinear_index(0, 4, 8, &i0, &i1, &w0, &w1); /* source -0.25 clamps to 0 */
    CHECK(i0 == 0 && i1 == 1 && w0 == 1.0f && w1 == 0.0f, "bilinear left edge");
    as_bilinear_index(1, 4, 8, &i0, &i1, &w0, &w1); /* source 0.25 */
    CHECK(i0 == 0 && i1 == 1 && fabsf(w1 - 0.25f) < 1e-7f, "bilinear 0.25");
    as_bilinear_index(7, 4, 8, &i0, &i1, &w0, &w1); /* source 3.25: right edge */
    CHECK(i0 == 3 && i1 == 3, "bilinear right edge");
    /* two prototypes on a 1x2 grid upsampled to 1x4 */
    const float assign[4] = { 0.9f, 0.1f, 0.2f, 0.8f };
    int32_t lab[4];
    as_upsample_argmax(assign, 1, 2, 2, 1, 4, lab);
    CHECK(lab[0] == 0 && lab[1] == 0 && lab[2] == 1 && lab[3] == 1, "upsample argmax %d%d%d%d",
          lab[0], lab[1], lab[2], lab[3]);
}

static void test_blur(void)
{
    float k[7];
    as_gaussian_kernel(7, 0.6f, k);
    double s = 0;
    for (int i = 0; i < 7; i++)
        s += k[i];
    CHECK_NEAR(s, 1.0, 1e-6, "gaussian kernel normalised");
    CHECK_NEAR(k[3] / k[4], exp(0.5 / 0.36), 1e-3, "gaussian sigma 0.6");
    CHECK(k[0] == k[6] && k[1] == k[5], "gaussian symmetric");
    /* impulse away from the borders: the outer product of the kernel */
    float in[81] = { 0 }, out[81];
    in[4 * 9 + 4] = 1.0f;
    CHECK(as_blur_separable(in, 9, 9, k, 7, out, NULL) == 0, "blur");
    for (int y = 0; y < 9; y++)
        for (int x = 0; x < 9; x++) {
            const int dy = y - 4, dx = x - 4;
            const double want = (abs(dy) <= 3 && abs(dx) <= 3) ? (double)k[dy + 3] * k[dx + 3]
                                                                 : 0.0;
            CHECK_NEAR(out[y * 9 + x], want, 1e-7, "blur impulse");
        }
    /* impulse in a corner: reflect padding mirrors without repeating the edge,
     * so the corner reaches pixel x with weight k[3 - x] (x < 4) */
    float c[25] = { 0 }, co[25];
    c[0] = 1.0f;
    as_blur_separable(c, 5, 5, k, 7, co, NULL);
    const double kk[5] = { k[3], k[2], k[1], k[0], 0.0 };
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 5; x++)
            CHECK_NEAR(co[y * 5 + x], kk[y] * kk[x], 1e-7, "blur reflect");
    float cst[12], cso[12];
    for (int i = 0; i < 12; i++)
        cst[i] = 0.25f;
    as_blur_separable(cst, 2, 6, k, 7, cso, NULL); /* map smaller than the kernel */
    for (int i = 0; i < 12; i++)
        CHECK_NEAR(cso[i], 0.25, 1e-7, "blur constant on a tiny map");
}

static void test_threshold(void)
{
    const float v[4] = { 3, 1, 4, 2 }; /* masses .3 .1 .4 .2; ascending cum .1 .3 .6 1 */
    uint8_t m[4];
    as_mass_threshold(v, 4, 0.6f, m, NULL);
    CHECK(m[0] == 1 && m[1] == 0 && m[2] == 1 && m[3] == 0, "keep 60%%: %d%d%d%d", m[0], m[1],
          m[2], m[3]);
    as_mass_threshold(v, 4, 0.75f, m, NULL);
    CHECK(m[0] == 1 && m[1] == 0 && m[2] == 1 && m[3] == 1, "keep 75%%");
    as_mass_threshold(v, 4, 0.0f, m, NULL);
    CHECK(m[0] + m[1] + m[2] + m[3] == 0, "keep nothing");
    as_mass_threshold(v, 4, 1.0f, m, NULL);
    CHECK(m[0] + m[1] + m[2] + m[3] == 4, "keep everything");
}

static void test_components(void)
{
    uint8_t m[25] = {
        1, 1, 0, 0, 1,
        0, 0, 0, 0, 1,
        0, 0, 1, 0, 0,
        0, 1, 0, 0, 0,
        1, 0, 0, 1, 1,
    };
    /* the diagonal chain (2,2),(3,1),(4,0) is one 8-connected component of 3 */
    const uint8_t want[25] = {
        0, 0, 0, 0, 0,
        0, 0, 0, 0, 0,
        0, 0, 1, 0, 0,
        0, 1, 0, 0, 0,
        1, 0, 0, 0, 0,
    };
    int removed = as_drop_small_components(m, 5, 5, 2);
    CHECK(removed == 3, "removed %d components", removed);
    CHECK(!memcmp(m, want, 25), "components kept");
    /* the whole pipeline on a map with one bright blob */
    float att[36] = { 0 };
    for (int i = 0; i < 36; i++)
        att[i] = 0.01f;
    att[2 * 6 + 3] = 0.5f;
    att[3 * 6 + 3] = 0.4f;
    uint8_t fg[36];
    CHECK(as_foreground_mask(att, 6, 6, 0.6f, fg) == 0, "foreground mask");
    CHECK(fg[2 * 6 + 3] && fg[3 * 6 + 3] && !fg[0] && !fg[35], "blob is foreground");
    int cnt = 0;
    for (int i = 0; i < 36; i++)
        cnt += fg[i];
    CHECK(cnt >= 3, "blob of %d patches", cnt);
}

static void test_kmeans(void)
{
    /* two direction groups in 3-D, with different lengths */
    enum { N = 8, D = 3 };
    float x[N * D];
    for (int i = 0; i < N; i++) {
        const float s = 1.0f + (float)i;
        const float e = 0.05f * val(900 + i);
        if (i % 2 == 0) {
            x[i * D] = s;
            x[i * D + 1] = s * e;
            x[i * D + 2] = 0;
        } else {
            x[i * D] = 0;
            x[i * D + 1] = s * e;
            x[i * D + 2] = -s;
        }
    }
    float c[2 * D];
    int32_t lab[N];
    int k = 0;
    CHECK(as_spherical_kmeans(x, N, D, 2, AS_KMEANS_MAX_ITER, c, lab, &k, NULL) == 0, "kmeans");
    CHECK(k == 2, "k %d", k);
    for (int i = 2; i < N; i++)
        CHECK(lab[i] == lab[i % 2], "point %d grouped with its direction", i);
    CHECK(lab[0] != lab[1], "the two directions are separated");
    const int a = lab[0];
    CHECK(c[a * D] > 0.99f && fabsf(c[(1 - a) * D + 2] + 1.0f) < 0.01f, "centres");
    float c8[N * D];
    CHECK(as_spherical_kmeans(x, 3, D, 8, 10, c8, NULL, &k, NULL) == 0 && k == 3,
          "k clamps to n: %d", k);
}

int main(void)
{
    test_linear();
    test_linear_shapes();
    test_layernorm();
    test_softmax();
    test_activations();
    test_mha();
    test_bicubic();
    test_bilinear();
    test_blur();
    test_threshold();
    test_components();
    test_kmeans();
    return check_report("kernels");
}
