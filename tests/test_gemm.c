/* gemm: the packed GEMM (core/compute/gemm.c) against a double-precision product
 * computed here, for shapes that exercise every edge: rows not a multiple of
 * any tile's rows (6 for AVX2, 8 for AVX-512, 4 in C), outputs not a multiple
 * of the 16-wide panel or of a tile's 1-3 panels, depths split into several
 * passes, row strides wider than the rows, each epilogue, one and two
 * threads. Runs on the path as_cpu_path() picks (meson runs it once per
 * path, ALIGNSEG_CPU set by tests/cpu_path.c). */
#include <cblas.h>
#include <stdint.h>

#include "check.h"
#include "cpu.h"
#include "gemm.h"
#include "activations.h"
#include "pool.h"

static float val(uint32_t i)
{
    i ^= i >> 16;
    i *= 0x7feb352dU;
    i ^= i >> 15;
    i *= 0x846ca68bU;
    i ^= i >> 16;
    return (float)(i & 0xffff) / 32768.0f - 1.0f;
}

static double gelu(double v)
{
    return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
}

/* one shape, one epilogue: every value within 2e-5 relative of the double product */
static void run_case(int n, int out, int in, int ldx, int ldy, bool with_bias, AsEpilogue epi)
{
    float *x = malloc((size_t)n * ldx * sizeof *x);
    float *w = malloc((size_t)out * in * sizeof *w);
    float *b = malloc((size_t)out * sizeof *b);
    float *y = malloc((size_t)n * ldy * sizeof *y);
    float *y0 = malloc((size_t)n * ldy * sizeof *y0);
    float *pk = aligned_alloc(64, (as_gemm_packed_floats(out, in) * sizeof(float) + 63) / 64 * 64);
    if (!x || !w || !b || !y || !y0 || !pk) {
        CHECK(0, "out of memory");
        return;
    }
    for (long i = 0; i < (long)n * ldx; i++)
        x[i] = val((uint32_t)i);
    for (long i = 0; i < (long)out * in; i++)
        w[i] = val((uint32_t)(1000003 + i)) * 0.2f;
    for (int i = 0; i < out; i++)
        b[i] = val((uint32_t)(7000001 + i));
    for (long i = 0; i < (long)n * ldy; i++)
        y0[i] = y[i] = val((uint32_t)(9000001 + i)); /* residual, and the guard past `out` */
    as_gemm_pack(w, out, in, pk);
    as_gemm_packed(x, n, ldx, NULL, pk, out, in, with_bias ? b : NULL, epi, y, ldy);
    double worst = 0.0;
    int guard_bad = 0;
    for (int r = 0; r < n; r++) {
        for (int o = 0; o < out; o++) {
            double s = with_bias ? b[o] : 0.0;
            for (int k = 0; k < in; k++)
                s += (double)x[(size_t)r * ldx + k] * w[(size_t)o * in + k];
            if (epi == AS_EPI_ACCUMULATE)
                s += y0[(size_t)r * ldy + o];
            else if (epi == AS_EPI_GELU)
                s = gelu(s);
            const double e = fabs(s - y[(size_t)r * ldy + o]) / (1.0 + fabs(s));
            if (e > worst)
                worst = e;
        }
        for (int o = out; o < ldy; o++)
            guard_bad += y[(size_t)r * ldy + o] != y0[(size_t)r * ldy + o];
    }
    CHECK(worst < 2e-5, "n=%d out=%d in=%d epi=%d bias=%d: worst relative error %g", n, out, in,
          (int)epi, with_bias, worst);
    CHECK(guard_bad == 0, "n=%d out=%d in=%d: %d values past the output columns changed", n, out,
          in, guard_bad);
    free(x);
    free(w);
    free(b);
    free(y);
    free(y0);
    free(pk);
}

/* LayerNorm fused into the packing gives the numbers of as_layernorm followed
 * by the plain product, bit for bit, and x is left as it was. */
static void norm_case(int n, int out, int in, int ldx)
{
    float *x = malloc((size_t)n * ldx * sizeof *x), *x0 = malloc((size_t)n * ldx * sizeof *x0);
    float *xn = malloc((size_t)n * in * sizeof *xn), *w = malloc((size_t)out * in * sizeof *w);
    float *g = malloc((size_t)in * sizeof *g), *be = malloc((size_t)in * sizeof *be);
    float *bias = malloc((size_t)out * sizeof *bias);
    float *y1 = malloc((size_t)n * out * sizeof *y1), *y2 = malloc((size_t)n * out * sizeof *y2);
    float *pk = aligned_alloc(64, (as_gemm_packed_floats(out, in) * sizeof(float) + 63) / 64 * 64);
    if (!x || !x0 || !xn || !w || !g || !be || !bias || !y1 || !y2 || !pk) {
        CHECK(0, "out of memory");
        return;
    }
    for (long i = 0; i < (long)n * ldx; i++)
        x0[i] = x[i] = 3.0f * val((uint32_t)(300 + i)) + 0.5f;
    for (long i = 0; i < (long)out * in; i++)
        w[i] = val((uint32_t)(800000 + i)) * 0.1f;
    for (int i = 0; i < in; i++) {
        g[i] = 1.0f + 0.5f * val((uint32_t)(600000 + i));
        be[i] = val((uint32_t)(650000 + i));
    }
    for (int i = 0; i < out; i++)
        bias[i] = val((uint32_t)(660000 + i));
    as_gemm_pack(w, out, in, pk);
    const AsGemmNorm gn = { g, be, 1e-6f };
    const AsNorm nm = { g, be, in, 1e-6f };
    for (int r = 0; r < n; r++)
        as_layernorm(x + (size_t)r * ldx, 1, &nm, xn + (size_t)r * in);
    for (int gelu = 0; gelu < 2; gelu++) {
        const AsEpilogue e = gelu ? AS_EPI_GELU : AS_EPI_STORE;
        as_gemm_packed(xn, n, in, NULL, pk, out, in, bias, e, y1, out);
        as_gemm_packed(x, n, ldx, &gn, pk, out, in, bias, e, y2, out);
        long differ = 0;
        for (long i = 0; i < (long)n * out; i++)
            differ += y1[i] != y2[i];
        CHECK(differ == 0, "n=%d out=%d in=%d gelu=%d: %ld values differ from LayerNorm then GEMM",
              n, out, in, gelu, differ);
    }
    CHECK(!memcmp(x, x0, (size_t)n * ldx * sizeof *x), "the fused LayerNorm changed its input");
    free(x);
    free(x0);
    free(xn);
    free(w);
    free(g);
    free(be);
    free(bias);
    free(y1);
    free(y2);
    free(pk);
}

int main(void)
{
    printf("gemm: %s path\n", as_cpu_path_name(as_cpu_path()));
    /* packing: panel p, depth k, lane j holds W[16p + j][k]; zero past out */
    {
        const int out = 20, in = 3;
        float w[60], pk[96];
        for (int i = 0; i < 60; i++)
            w[i] = (float)i + 1.0f;
        as_gemm_pack(w, out, in, pk);
        CHECK(as_gemm_packed_floats(out, in) == 96, "packed floats %zu",
              as_gemm_packed_floats(out, in));
        CHECK(pk[0] == w[0] && pk[1] == w[3] && pk[16] == w[1] && pk[2 * 16 + 15] == w[15 * 3 + 2],
              "first panel layout");
        CHECK(pk[48 + 16 + 3] == w[19 * 3 + 1], "second panel layout");
        CHECK(pk[48 + 4] == 0.0f && pk[95] == 0.0f, "padding lanes are zero");
    }
    static const struct { int n, out, in; } shapes[] = {
        { 1, 16, 8 },     { 5, 7, 3 },      { 6, 16, 256 },  { 13, 33, 257 },
        { 17, 48, 768 },  { 197, 64, 384 }, { 130, 40, 600 }, { 251, 96, 1536 },
        { 9, 80, 40 },    { 25, 112, 50 },  { 129, 144, 300 },
    };
    const int nthreads[] = { 1, 2 };
    for (size_t t = 0; t < 2; t++) {
        as_pool_set_threads(nthreads[t]);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int n = shapes[s].n, out = shapes[s].out, in = shapes[s].in;
            for (int e = 0; e < 3; e++) {
                run_case(n, out, in, in, out, true, (AsEpilogue)e);
                run_case(n, out, in, in + 5, out + 3, e != 1, (AsEpilogue)e);
            }
        }
    }
    for (size_t t = 0; t < 2; t++) {
        as_pool_set_threads(nthreads[t]);
        norm_case(197, 64, 384, 384);
        norm_case(13, 40, 600, 611);
        norm_case(130, 48, 20, 20);
    }
    as_pool_set_threads(1);
    return check_report("gemm");
}
