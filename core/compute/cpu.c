/* cpu: see cpu.h */
#include "cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#define AS_CPU_X86 1
#endif

static const char *const path_names[AS_CPU_PATHS] = { "generic", "avx2", "avx512" };

static struct {
    bool supports[AS_CPU_PATHS];
    bool bf16;
    AsCpuPath path;
    AsStatus status; /* of ALIGNSEG_CPU */
    char msg[160];
} g_cpu;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#ifdef AS_CPU_X86
/* The register state the OS saves (XCR0); 0 without OSXSAVE. */
static unsigned long long xcr0(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE */
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

static void detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    const bool fma = c & (1u << 12), avx = c & (1u << 28);
    const unsigned long long x = xcr0();
    const bool ymm_os = (x & 0x6) == 0x6;    /* SSE and AVX state */
    const bool zmm_os = (x & 0xE6) == 0xE6;  /* + opmask, ZMM0-15 upper halves, ZMM16-31 */
    if (__get_cpuid_max(0, NULL) < 7)
        return;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5);
    const bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    g_cpu.supports[AS_CPU_AVX2] = avx && fma && avx2 && ymm_os;
    g_cpu.supports[AS_CPU_AVX512] = g_cpu.supports[AS_CPU_AVX2] && f && dq && bw && vl && zmm_os;
    __cpuid_count(7, 1, a, b, c, d);
    g_cpu.bf16 = g_cpu.supports[AS_CPU_AVX512] && (a & (1u << 5));
}
#else
static void detect(void)
{
}
#endif

static const char *const path_needs[AS_CPU_PATHS] = {
    "", "AVX2 and FMA", "AVX-512 (F, BW, DQ, VL, with the zmm state enabled by the OS)"
};

static void init(void)
{
    g_cpu.supports[AS_CPU_GENERIC] = true;
    detect();
    AsCpuPath best = AS_CPU_GENERIC;
    for (int p = 0; p < AS_CPU_PATHS; p++)
        if (g_cpu.supports[p])
            best = (AsCpuPath)p;
    g_cpu.path = best;
    const char *env = getenv("ALIGNSEG_CPU");
    if (!env || !*env)
        return;
    const int want = as_cpu_path_from_name(env);
    if (want < 0) {
        g_cpu.status = AS_ERR_ARG;
        snprintf(g_cpu.msg, sizeof g_cpu.msg,
                 "ALIGNSEG_CPU: unknown path '%.40s' (avx512, avx2 or generic)", env);
    } else if (!g_cpu.supports[want]) {
        g_cpu.status = AS_ERR_UNSUPPORTED;
        snprintf(g_cpu.msg, sizeof g_cpu.msg, "ALIGNSEG_CPU=%s: this CPU lacks %s", env,
                 path_needs[want]);
    } else {
        g_cpu.path = (AsCpuPath)want;
    }
}

AsCpuPath as_cpu_path(void)
{
    pthread_once(&g_once, init);
    return g_cpu.path;
}

int as_cpu_check(AsError *err)
{
    pthread_once(&g_once, init);
    if (g_cpu.status != AS_OK)
        return as_error_set(err, g_cpu.status, "%s", g_cpu.msg);
    return 0;
}

bool as_cpu_supports(AsCpuPath p)
{
    pthread_once(&g_once, init);
    return (int)p >= 0 && p < AS_CPU_PATHS && g_cpu.supports[p];
}

bool as_cpu_has_bf16(void)
{
    pthread_once(&g_once, init);
    return g_cpu.bf16;
}

const char *as_cpu_path_name(AsCpuPath p)
{
    return (int)p >= 0 && p < AS_CPU_PATHS ? path_names[p] : "?";
}

int as_cpu_path_from_name(const char *name)
{
    for (int p = 0; p < AS_CPU_PATHS; p++)
        if (name && !strcmp(name, path_names[p]))
            return p;
    return -1;
}
