/* cpu: which instruction-set path the compute kernels take. The CPU is
 * detected once (cpuid, and xgetbv for the register state the operating
 * system saves: ymm for AVX2, zmm and opmask registers for AVX-512); every
 * kernel family picks its variant from as_cpu_path(). The environment
 * variable ALIGNSEG_CPU=avx512|avx2|generic forces a path; a path this CPU
 * lacks, or an unknown name, is refused: as_cpu_check reports it, and the
 * kernels then use the widest path the CPU has (never an instruction it
 * lacks). Thread-safe. */
#ifndef ALIGNSEG_CPU_H
#define ALIGNSEG_CPU_H

#include <stdbool.h>

#include "error.h"

typedef enum {
    AS_CPU_GENERIC = 0, /* portable C */
    AS_CPU_AVX2 = 1,    /* AVX2 + FMA, 8-wide */
    AS_CPU_AVX512 = 2,  /* AVX-512 F/BW/DQ/VL, 16-wide, 32 vector registers */
} AsCpuPath;

#define AS_CPU_PATHS 3

/* The path in use (detected, or forced by a valid ALIGNSEG_CPU). */
AsCpuPath as_cpu_path(void);
/* 0 when ALIGNSEG_CPU is unset or names a path this CPU has; otherwise a
 * one-line message in err (AS_ERR_UNSUPPORTED, or AS_ERR_ARG for an unknown
 * name). Programs call it at start and stop on an error. */
int as_cpu_check(AsError *err);
/* true when this CPU (and its operating system) can run path p */
bool as_cpu_supports(AsCpuPath p);
/* true when the CPU has AVX512_BF16 (and the AVX-512 path is supported) */
bool as_cpu_has_bf16(void);
/* "avx512", "avx2", "generic" */
const char *as_cpu_path_name(AsCpuPath p);
/* Path named name (one of the above), or -1. */
int as_cpu_path_from_name(const char *name);

#endif
