/* cpu_path: run a test program on one instruction-set path of the kernels.
 * Usage: cpu_path PATH PROGRAM [ARGS...] with PATH avx512, avx2 or generic.
 * Exits 77 (skipped) when this CPU lacks PATH; otherwise sets ALIGNSEG_CPU
 * (read by core/compute/cpu.c, inherited by `alignseg` run from the test)
 * and runs PROGRAM in its place. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cpu.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cpu_path avx512|avx2|generic PROGRAM [ARGS...]\n");
        return 2;
    }
    const int p = as_cpu_path_from_name(argv[1]);
    if (p < 0) {
        fprintf(stderr, "cpu_path: unknown path '%s'\n", argv[1]);
        return 2;
    }
    if (!as_cpu_supports((AsCpuPath)p)) {
        printf("cpu_path: this CPU has no %s path, skipped\n", argv[1]);
        return 77;
    }
    if (setenv("ALIGNSEG_CPU", argv[1], 1) != 0) {
        perror("cpu_path: setenv");
        return 1;
    }
    printf("cpu_path: running %s with ALIGNSEG_CPU=%s\n", argv[2], argv[1]);
    fflush(stdout);
    execv(argv[2], argv + 2);
    perror("cpu_path: exec");
    return 1;
}
