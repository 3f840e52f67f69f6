/* test_attention: as_mha_packed (register-tiled attention for 64-wide heads,
 * and its as_mha_lowmem fallback) against naive double-precision attention:
 * outputs and the probabilities of query row 0, token counts around the
 * 16-key panels and 6-row tiles, 1 and 2 threads, too little scratch. */
#include <stdint.h>

#include "check.h"
#include "cpu.h"
#include "activations.h"
#include "attention.h"
#include "pool.h"

static uint32_t rng_state = 777u;

static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

/* softmax(q k^T / sqrt(hd)) v per head, in double; row0 (heads, nk). */
static void naive(const float *qkv, int n, int dim, int heads, double *out, double *row0)
{
    const int hd = dim / heads, ld = 3 * dim;
    double *p = malloc((size_t)n * sizeof *p);
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < n; i++) {
            double mx = -INFINITY, sum = 0.0;
            for (int j = 0; j < n; j++) {
                double s = 0.0;
                for (int d = 0; d < hd; d++)
                    s += (double)qkv[(size_t)i * ld + h * hd + d] *
                         qkv[(size_t)j * ld + dim + h * hd + d];
                p[j] = s / sqrt((double)hd);
                mx = p[j] > mx ? p[j] : mx;
            }
            for (int j = 0; j < n; j++)
                sum += (p[j] = exp(p[j] - mx));
            for (int j = 0; j < n; j++)
                p[j] /= sum;
            if (i == 0)
                memcpy(row0 + (size_t)h * n, p, (size_t)n * sizeof *p);
            for (int d = 0; d < hd; d++) {
                double acc = 0.0;
                for (int j = 0; j < n; j++)
                    acc += p[j] * qkv[(size_t)j * ld + 2 * dim + h * hd + d];
                out[(size_t)i * dim + h * hd + d] = acc;
            }
        }
    free(p);
}

static void run_case(int n, int dim, int heads, int threads, bool short_scratch)
{
    as_pool_set_threads(threads);
    float *qkv = malloc((size_t)n * 3 * dim * sizeof *qkv);
    for (long i = 0; i < (long)n * 3 * dim; i++)
        qkv[i] = 2.0f * rnd();
    size_t sc = (size_t)n * n;
    const size_t pk = as_mha_packed_scratch(n, n, dim, heads, threads);
    if (!short_scratch && pk > sc)
        sc = pk;
    float *scratch = malloc(sc * sizeof *scratch);
    float *out = malloc((size_t)n * dim * sizeof *out);
    float *row0 = malloc((size_t)heads * n * sizeof *row0);
    double *want = malloc((size_t)n * dim * sizeof *want);
    double *want0 = malloc((size_t)heads * n * sizeof *want0);
    as_mha_packed(qkv, 3 * dim, qkv + dim, 3 * dim, qkv + 2 * dim, 3 * dim, n, n, dim, heads,
                  scratch, sc, row0, out);
    naive(qkv, n, dim, heads, want, want0);
    double e = 0.0, e0 = 0.0, s0 = 0.0;
    for (long i = 0; i < (long)n * dim; i++)
        e = fmax(e, fabs(out[i] - want[i]));
    for (long i = 0; i < (long)heads * n; i++) {
        e0 = fmax(e0, fabs(row0[i] - want0[i]));
        s0 += row0[i];
    }
    CHECK(e < 2e-5, "n=%d dim=%d heads=%d threads=%d%s: output off by %g", n, dim, heads,
          threads, short_scratch ? " (fallback)" : "", e);
    CHECK(e0 < 1e-6 && fabs(s0 - heads) < 1e-4 * heads,
          "n=%d dim=%d heads=%d: row-0 probabilities off by %g (sum %g)", n, dim, heads, e0, s0);
    free(qkv);
    free(scratch);
    free(out);
    free(row0);
    free(want);
    free(want0);
}

int main(void)
{
    static const int ns[] = { 1, 2, 5, 6, 7, 15, 16, 17, 50, 197 };
    for (int threads = 1; threads <= 2; threads++)
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            run_case(ns[i], 384, 6, threads, false); /* ViT-S: 64-wide heads */
            run_case(ns[i], 128, 2, threads, false);
        }
    run_case(40, 96, 3, 1, false);  /* 32-wide heads: the sgemm path */
    run_case(101, 384, 6, 2, true); /* too little scratch: the sgemm path */
    printf("fast path in use: %s\n", as_cpu_path() >= AS_CPU_AVX2 ? "yes" : "no (generic path)");
    return check_report("attention");
}
