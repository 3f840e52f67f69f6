/* gemm_micro: single-thread GFLOPS of the packed GEMM on the ViT-S/16
 * encoder's shapes (qkv, proj, fc1, fc2 at 197..901 tokens), measured in
 * thread CPU time (CLOCK_THREAD_CPUTIME_ID) so that other work on a shared
 * machine does not count; best of several repetitions. The path is the one
 * as_cpu_path() picks (force one with ALIGNSEG_CPU=avx512|avx2|generic).
 * Usage: OPENBLAS_NUM_THREADS=1 build/bench/gemm_micro [reps] (one thread:
 * the kernels' pool follows OpenBLAS's thread count). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cpu.h"
#include "gemm.h"
#include "activations.h"
#include "pool.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    AsError err = { 0 };
    if (as_cpu_check(&err)) {
        fprintf(stderr, "gemm_micro: %s\n", err.msg);
        return 1;
    }
    if (as_threads() != 1) {
        fprintf(stderr, "gemm_micro: run with OPENBLAS_NUM_THREADS=1 (one thread)\n");
        return 2;
    }
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    static const int ms[] = { 197, 401, 785, 901 };
    static const struct { const char *name; int n, k; AsEpilogue e; } sh[] = {
        { "qkv", 1152, 384, AS_EPI_STORE },    { "proj", 384, 384, AS_EPI_ACCUMULATE },
        { "fc1", 1536, 384, AS_EPI_GELU },     { "fc2", 384, 1536, AS_EPI_ACCUMULATE },
        { "fc1-plain", 1536, 384, AS_EPI_STORE },
    };
    printf("path %s, 1 thread, best of %d, GFLOPS (thread CPU time)\n",
           as_cpu_path_name(as_cpu_path()), reps);
    printf("%-10s", "M");
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++)
        printf(" %10s", sh[s].name);
    printf("\n");
    double tot_flop = 0, tot_t = 0;
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
        const int m = ms[mi];
        printf("%-10d", m);
        for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
            const int n = sh[s].n, k = sh[s].k;
            float *x = malloc((size_t)m * k * sizeof *x), *w = malloc((size_t)n * k * sizeof *w);
            float *b = malloc((size_t)n * sizeof *b), *y = calloc((size_t)m * n, sizeof *y);
            float *pk = aligned_alloc(64, (as_gemm_packed_floats(n, k) * 4 + 63) / 64 * 64);
            if (!x || !w || !b || !y || !pk)
                return 1;
            for (long i = 0; i < (long)m * k; i++)
                x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
            for (long i = 0; i < (long)n * k; i++)
                w[i] = (float)((i * 104729) % 1000) / 20000.0f - 0.025f;
            for (int i = 0; i < n; i++)
                b[i] = 0.01f * (float)(i % 7);
            as_gemm_pack(w, n, k, pk);
            double best = 1e30;
            for (int r = 0; r <= reps; r++) { /* the first is a warm-up */
                const double t0 = cpu_s();
                as_gemm_packed(x, m, k, NULL, pk, n, k, b, sh[s].e, y, n);
                const double dt = cpu_s() - t0;
                if (r > 0 && dt < best)
                    best = dt;
            }
            const double flop = 2.0 * m * n * (double)k;
            printf(" %10.1f", flop / best * 1e-9);
            if (s < 4) {
                tot_flop += flop;
                tot_t += best;
            }
            free(x);
            free(w);
            free(b);
            free(y);
            free(pk);
        }
        printf("\n");
    }
    printf("all qkv/proj/fc1/fc2 shapes: %.1f GFLOPS\n", tot_flop / tot_t * 1e-9);
    return 0;
}
