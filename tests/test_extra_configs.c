/* test_extra_configs: `alignseg segment --dump` reproduces independent PyTorch
 * ground truth on configurations beyond the published-code reference cases:
 * other widths, depths, encoder/decoder head counts, prototype counts, decoder
 * layers (Q0 into every layer, last kept), non-square inputs with the position
 * embedding resized in both directions, patch 8, float16 storage, a DINO full
 * checkpoint as -b with a decoder-only -m, a 3x5 grid (without the foreground
 * mask, which the reference cannot compute there). The cases in tests/data/extra/ are
 * made by tests/tools/make_extra_cases.py (see its header and each case.json). */
#include "testutil.h"
#include "npy.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    const char *name;
    const char *model;    /* -m, relative to the case folder */
    const char *backbone; /* -b or NULL */
    const char *opts;     /* as the case's case.json "options" */
} ExtraCase;

static const ExtraCase cases[] = {
    /* D=32, 1 block, 2 heads; Q=3, H=40, 2 decoder layers, 8 decoder heads;
     * 64x112 on a 5x5 training grid (pos_embed shrinks in h, grows in w) */
    { "d32_rect_2layers", "alignseg.pth", NULL,
      "--encoder-heads 2 --decoder-heads 8 --long-side 112" },
    /* D=96, 3 blocks, 6 heads, patch 8; Q=9, H=64, 3 layers, 4 decoder heads;
     * 40x56 on an 8x8 grid, threshold 0.3; float16 storage */
    { "d96_p8_3layers_f16", "alignseg.pth", NULL,
      "--encoder-heads 6 --decoder-heads 4 --threshold 0.3 --long-side 56" },
    /* D=64 (default 1 encoder head), 2 blocks, patch 8; Q=2, 1 decoder head;
     * 32x32 equal to the training grid; threshold 0.7 */
    { "d64_1head_q2", "alignseg.pth", NULL, "--decoder-heads 1 --threshold 0.7 --size 32" },
    /* D=48, 2 blocks, 3 heads; DINO full checkpoint (teacher/student,
     * module.backbone. keys, a module.head. tensor) + decoder-only state dict;
     * default 3 decoder heads; 96x64 on a 4x4 grid; threshold 0.5 */
    { "d48_dino_split", "decoder.pth", "dino_checkpoint.pth",
      "--encoder-heads 3 --threshold 0.5 --long-side 96" },
};

static const char *const f32_arrays[] = { "tokens", "cls_token", "cls_attn", "cls_attn_mean",
                                          "queries", "similarity", "assign" };
static const char *const exact_arrays[] = { "fg_mask", "labels_patch", "labels_full" };

static int segment(const ExtraCase *c, const char *opts, const char *image, const char *outdir)
{
    char cmd[8192], bb[2048] = "";
    const char *dir = test_path("extra");
    if (c->backbone)
        snprintf(bb, sizeof bb, "-b '%s/%s/%s'", dir, c->name, c->backbone);
    /* coreutils timeout: a deadlock shows up as exit 124, not a stuck test */
    snprintf(cmd, sizeof cmd,
             "timeout 120 '%s' segment -q -m '%s/%s/%s' %s %s --dump -o '%s' '%s/%s/%s.png'",
             test_bin(), dir, c->name, c->model, bb, opts, outdir, dir, c->name, image);
    int rc = test_run(cmd);
    CHECK(rc == 0, "%s: exit %d%s for %s", c->name, rc, rc == 124 ? " (timed out)" : "", cmd);
    return rc;
}

/* Segment IMAGE.png of case c with opts and compare the dumped arrays with the
 * case's reference ones (in refsub/, "." for the main input); the foreground
 * mask only when with_fg. */
static void check_image(const ExtraCase *c, const char *opts, const char *image,
                        const char *refsub, bool with_fg, const char *tmp)
{
    char outdir[1024];
    snprintf(outdir, sizeof outdir, "%s/%s%s", tmp, c->name, strstr(opts, "--threads") ? "_mt" : "");
    if (segment(c, opts, image, outdir) != 0)
        return;
    printf("%-20s %-5s%s", c->name, image, strstr(opts, "--threads") ? " mt" : "   ");
    for (size_t i = 0; i < sizeof f32_arrays / sizeof f32_arrays[0]; i++) {
        char got[2048], ref[2048];
        snprintf(got, sizeof got, "%s/%s/%s.npy", outdir, image, f32_arrays[i]);
        snprintf(ref, sizeof ref, "%s/%s/%s/%s.npy", test_path("extra"), c->name, refsub,
                 f32_arrays[i]);
        double m = test_npy_max_abs(got, ref, NULL);
        printf(" %s %.2g", f32_arrays[i], m);
        CHECK(m >= 0 && m <= 1e-4, "%s %s: max abs err %g", c->name, f32_arrays[i], m);
    }
    for (size_t i = with_fg ? 0 : 1; i < sizeof exact_arrays / sizeof exact_arrays[0]; i++) {
        char got[2048], ref[2048];
        snprintf(got, sizeof got, "%s/%s/%s.npy", outdir, image, exact_arrays[i]);
        snprintf(ref, sizeof ref, "%s/%s/%s/%s.npy", test_path("extra"), c->name, refsub,
                 exact_arrays[i]);
        double m = test_npy_max_abs(got, ref, NULL);
        printf(" %s %.2g", exact_arrays[i], m);
        CHECK(m == 0, "%s %s: differs (max %g)", c->name, exact_arrays[i], m);
    }
    printf("\n");
}

int main(void)
{
    char tmp[TEST_TMPDIR_MAX];
    CHECK(test_tmpdir_make(tmp, sizeof tmp, "extra") != NULL, "mkdtemp");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_image(&cases[i], cases[i].opts, "input", ".", true, tmp);
    /* again with 2 threads: meson's environment pins OPENBLAS_NUM_THREADS=1, so
     * without --threads the parallel kernels would never run here */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char opts[512];
        snprintf(opts, sizeof opts, "%s --threads 2", cases[i].opts);
        check_image(&cases[i], opts, "input", ".", true, tmp);
    }
    /* 48x80 on the first model: grid 3x5 from 5x5. The reference has no
     * foreground mask there (PyTorch's reflect padding of 3 needs >= 4 cells). */
    check_image(&cases[0], "--encoder-heads 2 --decoder-heads 8 --long-side 80", "small",
                "small", false, tmp);

    /* control: the comparison has teeth — a wrong decoder head count on the
     * first case moves the prototypes far beyond the tolerance */
    char outdir[1100], got[1300], ref[1300];
    snprintf(outdir, sizeof outdir, "%s/control", tmp);
    if (segment(&cases[0], "--encoder-heads 2 --decoder-heads 1 --long-side 112", "input",
                outdir) == 0) {
        snprintf(got, sizeof got, "%s/input/queries.npy", outdir);
        snprintf(ref, sizeof ref, "%s/%s/queries.npy", test_path("extra"), cases[0].name);
        double m = test_npy_max_abs(got, ref, NULL);
        printf("control: %s with --decoder-heads 1: queries max abs err %.2g\n", cases[0].name, m);
        CHECK(m > 1e-2, "wrong decoder heads should change the prototypes (max diff %g)", m);
    }

    test_tmpdir_remove(tmp);
    return check_report("extra_configs");
}
