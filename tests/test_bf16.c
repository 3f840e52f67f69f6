/* test_bf16: the bfloat16 encoder products (gemm.h as_gemm_packed_bf16,
 * model.h as_model_use_bf16; kept off the command line, see model.h).
 * Without AVX512_BF16 on the AVX-512 path: as_model_use_bf16 is refused with
 * one line naming AVX512_BF16, then the test skips (77) saying why. With it:
 * the bf16 GEMM equals a double-precision product of the bf16-rounded
 * operands (shapes around the tiles, odd depths, LayerNorm, residual, GELU);
 * the patch labels of the reference inference cases in bf16 and float32 are
 * printed (the agreement docs/PERFORMANCE.md reports: 192 of 196, below the
 * 99% an option would need) and must agree on at least 95% (a wrong bf16
 * path gives labels near chance). */
#include <stdint.h>

#include "check.h"
#include "cpu.h"
#include "gemm.h"
#include "image.h"
#include "activations.h"
#include "model.h"
#include "npy.h"
#include "pool.h"
#include "segment.h"

static uint32_t rng_state = 99u;

static float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

/* float -> bfloat16 -> float, to nearest even */
static double bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

static void gemm_case(int n, int out, int in, AsEpilogue epi, bool norm)
{
    float *x = malloc((size_t)n * in * sizeof *x), *w = malloc((size_t)out * in * sizeof *w);
    float *b = malloc((size_t)out * sizeof *b), *y = malloc((size_t)n * out * sizeof *y);
    float *y0 = malloc((size_t)n * out * sizeof *y0), *xn = malloc((size_t)in * sizeof *xn);
    float *nw = malloc((size_t)in * sizeof *nw), *nb = malloc((size_t)in * sizeof *nb);
    uint16_t *pk = malloc(as_gemm_packed_bf16_count(out, in) * sizeof *pk);
    for (long i = 0; i < (long)n * in; i++)
        x[i] = 3.0f * rnd();
    for (long i = 0; i < (long)out * in; i++)
        w[i] = rnd();
    for (int i = 0; i < out; i++)
        b[i] = rnd();
    for (int i = 0; i < in; i++) {
        nw[i] = 1.0f + 0.5f * rnd();
        nb[i] = 0.2f * rnd();
    }
    for (long i = 0; i < (long)n * out; i++)
        y[i] = y0[i] = rnd();
    as_gemm_pack_bf16(w, out, in, pk);
    const AsGemmNorm g = { nw, nb, 1e-6f };
    const int rc = as_gemm_packed_bf16(x, n, in, norm ? &g : NULL, pk, out, in, b, epi, y, out);
    CHECK(rc == 0, "as_gemm_packed_bf16: %d", rc);
    double worst = 0.0;
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * in;
        if (norm) {
            float mean, rstd;
            as_layernorm_stats(xr, in, g.eps, &mean, &rstd);
            as_layernorm_apply(xr, 0, in, mean, rstd, nw, nb, xn);
            xr = xn;
        }
        for (int o = 0; o < out; o++) {
            double s = 0.0, mag = 0.0;
            for (int k = 0; k < in; k++) {
                s += bf(xr[k]) * bf(w[(size_t)o * in + k]);
                mag += fabs(bf(xr[k]) * bf(w[(size_t)o * in + k]));
            }
            s += b[o];
            if (epi == AS_EPI_ACCUMULATE)
                s += y0[(size_t)r * out + o];
            if (epi == AS_EPI_GELU)
                s = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
            const double e = fabs(y[(size_t)r * out + o] - s) / (mag + 1.0);
            worst = e > worst ? e : worst;
        }
    }
    CHECK(worst < 2e-6, "bf16 gemm n=%d out=%d in=%d epi=%d norm=%d: off by %g (relative)", n,
          out, in, (int)epi, norm, worst);
    free(x), free(w), free(b), free(y), free(y0), free(xn), free(nw), free(nb), free(pk);
}

/* Patch labels of one reference case in float32 and bf16: patches that agree. */
static void agreement(const char *cs, int heads, int dec_heads, long *agree, long *total)
{
    char mp[256], ip[256];
    snprintf(mp, sizeof mp, "reference/%s/alignseg.pth", cs);
    snprintf(ip, sizeof ip, "reference/%s/input_norm.npy", cs);
    AsModel *m32 = NULL, *m16 = NULL;
    AsError err = { 0 };
    AsModelOptions opt = { heads, dec_heads, false };
    AsNpy in;
    memset(&in, 0, sizeof in);
    int rc = as_model_load(test_path(mp), NULL, &opt, &m32, &err);
    if (!rc)
        rc = as_model_load(test_path(mp), NULL, &opt, &m16, &err);
    if (!rc)
        rc = as_model_use_bf16(m16, &err);
    if (!rc)
        rc = as_npy_read(test_path(ip), &in, &err);
    CHECK(rc == 0, "%s: %s", cs, err.msg);
    AsSegmentOptions so;
    as_segment_options_default(&so);
    AsResult a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    const int h = rc ? 0 : (int)in.shape[1], w = rc ? 0 : (int)in.shape[2];
    if (!rc)
        rc = as_segment(m32, in.data, h, w, &so, &a, &err);
    if (!rc)
        rc = as_segment(m16, in.data, h, w, &so, &b, &err);
    CHECK(rc == 0, "%s: segment: %s", cs, err.msg);
    if (!rc) {
        long same = 0;
        for (int i = 0; i < a.n; i++)
            same += a.labels_patch[i] == b.labels_patch[i];
        printf("%-22s %4ld of %4d patches agree (%.2f%%)\n", cs, same, a.n, 100.0 * same / a.n);
        *agree += same;
        *total += a.n;
        as_result_free(&a);
        as_result_free(&b);
    }
    as_npy_free(&in);
    as_model_free(m32);
    as_model_free(m16);
}

/* The sample photos (data/samples) on a random ViT-S/16 with a random
 * decoder at 224: patches that agree (reported, not asserted: a random
 * model is only a stand-in for a trained one). */
static void samples(long *agree, long *total)
{
    static const char *const names[] = { "astronaut.png", "chelsea.png", "coffee.png",
                                         "rocket.jpg" };
    AsModel *m32 = NULL, *m16 = NULL;
    AsError err = { 0 };
    int rc = as_model_random(AS_ARCH_VIT_SMALL, 16, 5, 1, 5, &m32, &err);
    if (!rc)
        rc = as_model_random(AS_ARCH_VIT_SMALL, 16, 5, 1, 5, &m16, &err);
    if (!rc)
        rc = as_model_use_bf16(m16, &err);
    CHECK(rc == 0, "random ViT-S/16: %s", err.msg);
    AsSegmentOptions so;
    as_segment_options_default(&so);
    so.size = 224;
    for (size_t i = 0; !rc && i < sizeof names / sizeof names[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "../../data/samples/%s", names[i]);
        AsImage img = { 0, 0, NULL };
        AsResult a, b;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        int r = as_image_load(test_path(rel), &img, &err);
        if (!r)
            r = as_segment_image(m32, &img, &so, &a, &err);
        if (!r)
            r = as_segment_image(m16, &img, &so, &b, &err);
        CHECK(r == 0, "%s: %s", names[i], err.msg);
        if (!r) {
            long same = 0;
            for (int k = 0; k < a.n; k++)
                same += a.labels_patch[k] == b.labels_patch[k];
            printf("%-22s %4ld of %4d patches agree (%.2f%%)\n", names[i], same, a.n,
                   100.0 * same / a.n);
            *agree += same;
            *total += a.n;
        }
        as_result_free(&a);
        as_result_free(&b);
        as_image_free(&img);
    }
    as_model_free(m32);
    as_model_free(m16);
}

int main(void)
{
    AsModel *m = NULL;
    AsError err = { 0 };
    AsModelOptions opt = { 3, 3, false };
    int rc = as_model_load(test_path("reference/infer_tiny/alignseg.pth"), NULL, &opt, &m, &err);
    CHECK(rc == 0, "infer_tiny: %s", err.msg);
    if (rc)
        return 1;
    rc = as_model_use_bf16(m, &err);
    as_model_free(m);
    if (!as_gemm_bf16_available()) {
        CHECK(rc == AS_ERR_UNSUPPORTED && strstr(err.msg, "AVX512_BF16") && !strchr(err.msg, '\n'),
              "refusal without AVX512_BF16: rc %d, '%s'", rc, err.msg);
        printf("SKIP bf16 agreement: %s path, AVX512_BF16 %s (refusal checked: %s)\n",
               as_cpu_path_name(as_cpu_path()), as_cpu_has_bf16() ? "present" : "absent",
               err.msg);
        return check_failed_ ? 1 : 77;
    }
    CHECK(rc == 0, "as_model_use_bf16: %s", err.msg);
    for (int t = 1; t <= 2; t++) {
        as_pool_set_threads(t);
        gemm_case(1, 16, 2, AS_EPI_STORE, false);
        gemm_case(7, 37, 33, AS_EPI_STORE, false);
        gemm_case(9, 48, 64, AS_EPI_ACCUMULATE, false);
        gemm_case(17, 100, 301, AS_EPI_GELU, true);
        gemm_case(130, 64, 513, AS_EPI_ACCUMULATE, true);
        gemm_case(200, 384, 384, AS_EPI_STORE, true);
    }
    /* the reference cases and their head counts (case.json) */
    static const struct { const char *name; int heads, dec_heads; } cases[] = {
        { "infer_tiny", 3, 3 }, { "infer_tiny_posinterp", 3, 3 }, { "infer_small8", 4, 2 },
    };
    long agree = 0, total = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        agreement(cases[i].name, cases[i].heads, cases[i].dec_heads, &agree, &total);
    printf("all reference cases: %ld of %ld patches agree (%.2f%%)\n", agree, total,
           total ? 100.0 * agree / total : 0.0);
    CHECK(total > 0 && agree >= 0.95 * total, "bf16 labels agree on %ld of %ld patches", agree,
          total);
    long sa = 0, st = 0;
    samples(&sa, &st);
    printf("sample photos (random ViT-S/16, 224): %ld of %ld patches agree (%.2f%%)\n", sa, st,
           st ? 100.0 * sa / st : 0.0);
    printf("%d checks passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ != 0;
}
