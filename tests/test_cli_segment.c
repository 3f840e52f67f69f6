/* test_cli_segment: `alignseg segment --dump` reproduces the reference arrays
 * of every inference case (through the command line, as a user runs it), and
 * a bad image among good ones is reported by name without stopping the rest. */
#include "testutil.h"
#include "image.h"
#include "npy.h"

#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void check_case(const char *name, const char *opts, const char *tmp)
{
    char cmd[8192], outdir[1024], refdir[1024];
    snprintf(outdir, sizeof outdir, "%s/%s", tmp, name);
    snprintf(refdir, sizeof refdir, "%s", test_path("reference"));
    snprintf(cmd, sizeof cmd,
             "'%s' segment -q -m '%s/%s/alignseg.pth' %s --dump -o '%s' '%s/%s/input.png'", test_bin(),
             refdir, name, opts, outdir, refdir, name);
    int rc = test_run(cmd);
    CHECK(rc == 0, "%s: exit %d for %s", name, rc, cmd);
    static const char *f32[] = { "tokens", "cls_token", "cls_attn", "cls_attn_mean", "queries",
                                 "similarity", "assign" };
    for (size_t i = 0; i < sizeof f32 / sizeof f32[0]; i++) {
        char got[2048], ref[2048];
        snprintf(got, sizeof got, "%s/input/%s.npy", outdir, f32[i]);
        snprintf(ref, sizeof ref, "%s/%s/%s.npy", refdir, name, f32[i]);
        long nd;
        double m = test_npy_max_abs(got, ref, &nd);
        printf("%s %-14s max abs err %.3g\n", name, f32[i], m);
        CHECK(m >= 0 && m <= 1e-4, "%s %s: max abs err %g", name, f32[i], m);
    }
    static const char *exact[] = { "fg_mask", "labels_patch", "labels_full" };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        char got[2048], ref[2048];
        snprintf(got, sizeof got, "%s/input/%s.npy", outdir, exact[i]);
        snprintf(ref, sizeof ref, "%s/%s/%s.npy", refdir, name, exact[i]);
        long nd;
        double m = test_npy_max_abs(got, ref, &nd);
        printf("%s %-14s %ld entries differ\n", name, exact[i], nd);
        CHECK(m == 0, "%s %s: %ld entries differ (max %g)", name, exact[i], nd, m);
    }
    /* the label PNG is at the original size and holds valid prototype indices */
    char png[2048];
    snprintf(png, sizeof png, "%s/input.labels.png", outdir);
    uint8_t *lab = NULL;
    int w = 0, h = 0;
    AsError e;
    CHECK(as_png_read_u8(png, &lab, &w, &h, &e) == 0, "%s", e.msg);
    AsImage img = { 0 };
    snprintf(png, sizeof png, "%s/%s/input.png", refdir, name);
    CHECK(as_image_load(png, &img, &e) == 0, "%s", e.msg);
    CHECK(w == img.w && h == img.h, "%s labels %dx%d, image %dx%d", name, w, h, img.w, img.h);
    /* input.png is already at model size, so the labels equal labels_full */
    AsNpy ref;
    snprintf(png, sizeof png, "%s/%s/labels_full.npy", refdir, name);
    if (lab && as_npy_read(png, &ref, &e) == 0) {
        long nd = 0;
        for (long i = 0; i < (long)w * h && i < ref.numel; i++)
            nd += lab[i] != ((int32_t *)ref.data)[i];
        CHECK(nd == 0, "%s labels.png: %ld pixels differ from labels_full", name, nd);
        as_npy_free(&ref);
    }
    free(lab);
    as_image_free(&img);
}

int main(void)
{
    char tmp[TEST_TMPDIR_MAX];
    CHECK(test_tmpdir_make(tmp, sizeof tmp, "cli") != NULL, "mkdtemp");
    check_case("infer_tiny", "--encoder-heads 3 --size 64", tmp);
    check_case("infer_tiny_posinterp", "--encoder-heads 3 --size 96", tmp);
    check_case("infer_small8", "--encoder-heads 4 --decoder-heads 2 --threshold 0.5 --size 96", tmp);

    /* one bad image among good ones: named in the error, others still written */
    char bad[1200], cmd[8192], out[1200];
    snprintf(bad, sizeof bad, "%s/broken.png", tmp);
    FILE *f = fopen(bad, "wb");
    if (f) {
        fputs("\x89PNG\r\n\x1a\n not really", f);
        fclose(f);
    }
    snprintf(out, sizeof out, "%s/mixed", tmp);
    snprintf(cmd, sizeof cmd,
             "'%s' segment -q -m '%s' --encoder-heads 3 --size 64 -o '%s' '%s' '%s' 2>'%s/err.txt'",
             test_bin(), test_path("reference/infer_tiny/alignseg.pth"), out, bad,
             test_path("reference/infer_tiny/input.png"), tmp);
    CHECK(test_run(cmd) == 1, "exit status 1 when one image fails");
    char errf[1300], line[2048] = "";
    snprintf(errf, sizeof errf, "%s/err.txt", tmp);
    f = fopen(errf, "r");
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
    }
    CHECK(strstr(line, "broken.png") != NULL, "error names the file: '%s'", line);
    char good[1300];
    snprintf(good, sizeof good, "%s/input.labels.png", out);
    struct stat st;
    CHECK(stat(good, &st) == 0 && st.st_size > 0, "good image still written");

    /* a hostile checkpoint: one-line error, exit 1, no crash */
    snprintf(cmd, sizeof cmd, "'%s' segment -q -m '%s' '%s' 2>'%s/err2.txt'", test_bin(), bad,
             test_path("reference/infer_tiny/input.png"), tmp);
    CHECK(test_run(cmd) == 1, "bad checkpoint exits 1");
    /* usage errors exit 2 */
    snprintf(cmd, sizeof cmd, "'%s' segment --size 7 x.png 2>/dev/null", test_bin());
    CHECK(test_run(cmd) == 2, "bad --size is a usage error");
    snprintf(cmd, sizeof cmd, "'%s' segment --help >/dev/null", test_bin());
    CHECK(test_run(cmd) == 0, "--help exits 0");

    test_tmpdir_remove(tmp);
    return check_report("cli_segment");
}
