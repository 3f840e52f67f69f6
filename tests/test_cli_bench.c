/* test_cli_bench: `alignseg bench` on the smallest input runs and prints its
 * report (every stage line, total, relabel, peak RSS), its --json line carries
 * the fields bench/compare reads, --dump writes arrays of the right shapes and
 * kinds (softmax rows summing to 1, labels among the prototypes, a 0/1 mask),
 * --save-weights writes a checkpoint that loads back as a ViT-S/16 AlignSeg
 * model, --breakdown lists the encoder's stages, and bad options are usage
 * errors. The report and --json name the kernels' path, as does --version; an
 * ALIGNSEG_CPU the program cannot honour stops it with exit status 1. Output
 * format only: no timing is asserted. */
#include "testutil.h"
#include "cpu.h"
#include "model.h"
#include "npy.h"

#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int line_starting(const char *out, const char *prefix)
{
    const size_t n = strlen(prefix);
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, prefix, n))
            return 1;
    return 0;
}

int main(void)
{
    static char out[1 << 16];
    char cmd[8192], tmp[TEST_TMPDIR_MAX];
    CHECK(test_tmpdir_make(tmp, sizeof tmp, "bench") != NULL, "mkdtemp");

    /* the human-readable report */
    snprintf(cmd, sizeof cmd, "%s bench --size 32 --runs 1 --threads 1 --no-load --no-peak "
             "--arch vit_small --patch 16 --dump %s --save-weights %s/w.pth 2>&1",
             test_bin(), tmp, tmp);
    CHECK(test_run_capture(cmd, out, sizeof out) == 0, "bench exit status; output:\n%s", out);
    const char *stages[] = { "  encoder ", "  decoder ", "  assignment ", "  foreground ",
                             "  upsample ", "  total ", "relabel after a slider move",
                             "peak RSS: ", "alignseg bench: vit_small/16, 32x32 input" };
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
        CHECK(line_starting(out, stages[i]), "no line starting with '%s' in:\n%s", stages[i], out);
    /* the path in use, the one this process picks from the same environment */
    const char *path = as_cpu_path_name(as_cpu_path());
    char want[128];
    snprintf(want, sizeof want, "kernels: %s path", path);
    CHECK(line_starting(out, want), "no line starting with '%s' in:\n%s", want, out);
    snprintf(cmd, sizeof cmd, "%s --version 2>&1", test_bin());
    snprintf(want, sizeof want, "(kernels: %s)", path);
    CHECK(test_run_capture(cmd, out, sizeof out) == 0 && strstr(out, want), "--version: %s", out);
    /* a path name nobody knows, and (where the CPU lacks it) AVX-512: refused */
    snprintf(cmd, sizeof cmd, "ALIGNSEG_CPU=sse9 %s --version 2>&1", test_bin());
    CHECK(test_run_capture(cmd, out, sizeof out) == 1 &&
              !strncmp(out, "alignseg: ALIGNSEG_CPU: unknown path 'sse9'", 43) &&
              strchr(out, '\n') == out + strlen(out) - 1,
          "ALIGNSEG_CPU=sse9 should stop with one line: %s", out);
    for (int p = AS_CPU_GENERIC; p < AS_CPU_PATHS; p++) {
        snprintf(cmd, sizeof cmd, "ALIGNSEG_CPU=%s %s --version 2>&1",
                 as_cpu_path_name((AsCpuPath)p), test_bin());
        const int st = test_run_capture(cmd, out, sizeof out);
        if (as_cpu_supports((AsCpuPath)p)) {
            snprintf(want, sizeof want, "(kernels: %s)", as_cpu_path_name((AsCpuPath)p));
            CHECK(st == 0 && strstr(out, want), "ALIGNSEG_CPU=%s --version: %s",
                  as_cpu_path_name((AsCpuPath)p), out);
        } else {
            CHECK(st == 1 && strstr(out, "this CPU lacks"), "ALIGNSEG_CPU=%s: %s",
                  as_cpu_path_name((AsCpuPath)p), out);
        }
    }

    /* the dumped arrays */
    const struct { const char *name; AsDtype dt; int ndim; int64_t s0, s1; } arr[] = {
        { "tokens", AS_DT_F32, 2, 4, 384 }, { "prototypes", AS_DT_F32, 2, 5, 384 },
        { "cls_attn", AS_DT_F32, 2, 6, 4 }, { "assign", AS_DT_F32, 2, 4, 5 },
        { "labels_full", AS_DT_I32, 2, 32, 32 }, { "fg_mask", AS_DT_U8, 1, 4, 0 },
    };
    for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s.npy", tmp, arr[i].name);
        AsNpy a;
        AsError e;
        if (as_npy_read(p, &a, &e) != 0) {
            CHECK(0, "%s", e.msg);
            continue;
        }
        CHECK(a.dtype == arr[i].dt && a.ndim == arr[i].ndim && a.shape[0] == arr[i].s0 &&
                  (a.ndim == 1 || a.shape[1] == arr[i].s1),
              "%s: dtype %d ndim %d shape (%lld, %lld)", arr[i].name, (int)a.dtype, a.ndim,
              (long long)a.shape[0], (long long)(a.ndim > 1 ? a.shape[1] : 0));
        if (!strcmp(arr[i].name, "assign") && a.numel == 20)
            for (int r = 0; r < 4; r++) {
                double s = 0;
                for (int k = 0; k < 5; k++)
                    s += ((float *)a.data)[r * 5 + k];
                CHECK_NEAR(s, 1.0, 1e-5, "assignment row sums to 1");
            }
        if (!strcmp(arr[i].name, "labels_full"))
            for (int64_t j = 0; j < a.numel; j++)
                if (((int32_t *)a.data)[j] < 0 || ((int32_t *)a.data)[j] >= 5) {
                    CHECK(0, "label %d at %lld outside [0,5)", ((int32_t *)a.data)[j],
                          (long long)j);
                    break;
                }
        if (!strcmp(arr[i].name, "fg_mask"))
            for (int64_t j = 0; j < a.numel; j++)
                CHECK(((uint8_t *)a.data)[j] <= 1, "mask value %d", ((uint8_t *)a.data)[j]);
        if (!strcmp(arr[i].name, "tokens")) {
            int finite = 1;
            for (int64_t j = 0; j < a.numel; j++)
                finite &= isfinite(((float *)a.data)[j]);
            CHECK(finite, "tokens are finite");
        }
        as_npy_free(&a);
        unlink(p);
    }

    /* the saved weights load back as the published ViT-S/16 + 1-layer decoder */
    {
        char p[4200];
        snprintf(p, sizeof p, "%s/w.pth", tmp);
        AsModel *m = NULL;
        AsModelOptions opt;
        memset(&opt, 0, sizeof opt);
        AsError e;
        as_error_clear(&e);
        int rc = as_model_load(p, NULL, &opt, &m, &e);
        CHECK(rc == 0, "loading --save-weights output: %s", e.msg);
        if (rc == 0) {
            CHECK(m->enc.cfg.dim == 384 && m->enc.cfg.depth == 12 && m->enc.cfg.patch == 16 &&
                      m->enc.cfg.heads == 6 && m->enc.cfg.pos_gh == 14,
                  "encoder config %d/%d/%d/%d", m->enc.cfg.dim, m->enc.cfg.depth,
                  m->enc.cfg.patch, m->enc.cfg.heads);
            CHECK(m->has_decoder && m->dec.cfg.queries == 5 && m->dec.cfg.hidden == 768 &&
                      m->dec.cfg.layers == 1,
                  "decoder config");
            as_model_free(m);
        }
        unlink(p);
    }

    /* --breakdown: one line per encoder stage, from the real forward pass */
    snprintf(cmd, sizeof cmd, "%s bench --size 32 --runs 1 --threads 1 --no-load --no-peak "
             "--breakdown 2>&1", test_bin());
    CHECK(test_run_capture(cmd, out, sizeof out) == 0, "bench --breakdown exit status; output:\n%s",
          out);
    const char *bk[] = { "encoder breakdown", "  patch embed+pos ", "  norm1+qkv ", "  attention ",
                         "  proj+residual ", "  norm2+fc1+gelu ", "  fc2+residual ",
                         "  final layernorm " };
    for (size_t i = 0; i < sizeof bk / sizeof bk[0]; i++)
        CHECK(line_starting(out, bk[i]), "no line starting with '%s' in:\n%s", bk[i], out);

    /* one JSON line with the fields bench/compare reads */
    snprintf(cmd, sizeof cmd, "%s bench --size 32 --runs 2 --threads 1 --no-load --no-peak "
             "--json 2>&1", test_bin());
    CHECK(test_run_capture(cmd, out, sizeof out) == 0, "bench --json exit status; output:\n%s", out);
    const char *keys[] = { "\"kernels\": \"", "\"times_ms\": [", "\"stages_ms\": {",
                           "\"encoder\":", "\"gflop\":",
                           "\"peak_rss_mib\":", "\"relabel_ms\":", "\"encoder_share_of_peak\":" };
    CHECK(out[0] == '{', "JSON line starts with '{': %s", out);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK(strstr(out, keys[i]) != NULL, "no %s in %s", keys[i], out);

    /* the peaks (sgemm, our packed GEMM, the FMA-only ceiling) are measured
     * and reported; their values are timings, so only their presence and
     * sign are checked */
    snprintf(cmd, sizeof cmd, "%s bench --size 32 --runs 1 --threads 1 --no-load --json 2>&1",
             test_bin());
    CHECK(test_run_capture(cmd, out, sizeof out) == 0, "bench --json with peaks: %s", out);
    const char *peaks[] = { "\"sgemm_peak_gflops\": ", "\"packed_gemm_peak_gflops\": ",
                            "\"fma_peak_gflops\": " };
    for (size_t i = 0; i < sizeof peaks / sizeof peaks[0]; i++) {
        const char *v = strstr(out, peaks[i]);
        CHECK(v != NULL, "no %s in %s", peaks[i], out);
        if (v) {
            const double g = strtod(v + strlen(peaks[i]), NULL);
            CHECK(g > 0.0, "%s%g", peaks[i], g);
        }
    }

    /* usage errors */
    const char *bad[] = { "--size 33", "--arch vit_huge", "--patch 12", "--threads 0",
                          "--runs", "--frobnicate" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s bench %s --no-load --no-peak 2>&1", test_bin(), bad[i]);
        CHECK(test_run_capture(cmd, out, sizeof out) == 2, "'bench %s' should be a usage error: %s",
              bad[i], out);
    }
    test_tmpdir_remove(tmp);
    return check_report("cli_bench");
}
