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

/* Outputs are never replaced silently: duplicates refused, a finished image
 * skipped, a read-only output kept, --overwrite replaces; a full disk keeps
 * the previous overlay. */
static void check_outputs(const char *tmp)
{
    char cmd[8192], out[1200], p[1400], a[1200], b[1200];
    const char *model = test_path("reference/infer_tiny/alignseg.pth");
    const char *img = test_path("reference/infer_tiny/input.png");
    snprintf(out, sizeof out, "%s/dup", tmp);
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s' && cp '%s' '%s/x.png' && cp '%s' '%s/x.png'", a,
             b, img, a, img, b);
    CHECK(test_run(cmd) == 0, "copies");
    const char *seg = "segment -q --encoder-heads 3 --size 64";
    snprintf(cmd, sizeof cmd, "'%s' %s -m '%s' -o '%s' '%s/x.png' '%s/x.png' 2>'%s/dup.txt'",
             test_bin(), seg, model, out, a, b, tmp);
    CHECK(test_run(cmd) == 2, "two inputs with one output name: usage error");
    snprintf(p, sizeof p, "%s/dup.txt", tmp);
    char *msg = test_slurp(p);
    CHECK(msg && strstr(msg, "a/x.png") && strstr(msg, "b/x.png") && strstr(msg, "x.labels.png"),
          "message names both inputs and the output: %s", msg ? msg : "");
    free(msg);
    snprintf(p, sizeof p, "%s/x.labels.png", out);
    CHECK(access(p, F_OK) != 0, "nothing written");

    /* first run, then a re-run: skipped with a message, files untouched */
    snprintf(out, sizeof out, "%s/again", tmp);
    snprintf(cmd, sizeof cmd, "'%s' %s -m '%s' -o '%s' '%s/x.png'", test_bin(), seg, model, out, a);
    CHECK(test_run(cmd) == 0, "first run");
    snprintf(p, sizeof p, "%s/x.overlay.png", out);
    struct stat st0, st1;
    CHECK(stat(p, &st0) == 0, "overlay written");
    snprintf(cmd, sizeof cmd, "chmod a-w '%s/x.labels.png' && '%s' %s -m '%s' -o '%s' '%s/x.png' 2>'%s/again.txt'",
             out, test_bin(), seg, model, out, a, tmp);
    CHECK(test_run(cmd) == 0, "re-run of a finished image exits 0");
    snprintf(p, sizeof p, "%s/again.txt", tmp);
    msg = test_slurp(p);
    CHECK(msg && strstr(msg, "skipped") && strstr(msg, "--overwrite"), "re-run says so: %s",
          msg ? msg : "");
    free(msg);
    snprintf(p, sizeof p, "%s/x.overlay.png", out);
    CHECK(stat(p, &st1) == 0 && st1.st_ino == st0.st_ino && st1.st_mtime == st0.st_mtime,
          "overlay not replaced");
    /* only some outputs there (the read-only labels): an error naming it, kept */
    snprintf(cmd, sizeof cmd, "rm '%s/x.overlay.png' && '%s' %s -m '%s' -o '%s' '%s/x.png' 2>'%s/some.txt'",
             out, test_bin(), seg, model, out, a, tmp);
    CHECK(test_run(cmd) == 1, "partial outputs: exit 1");
    snprintf(p, sizeof p, "%s/some.txt", tmp);
    msg = test_slurp(p);
    CHECK(msg && strstr(msg, "x.labels.png") && strstr(msg, "not replaced"),
          "message names the existing file: %s", msg ? msg : "");
    free(msg);
    snprintf(p, sizeof p, "%s/x.labels.png", out);
    CHECK(stat(p, &st1) == 0 && !(st1.st_mode & 0222), "read-only labels kept as they were");
    snprintf(cmd, sizeof cmd, "'%s' %s --overwrite -m '%s' -o '%s' '%s/x.png'", test_bin(), seg,
             model, out, a);
    CHECK(test_run(cmd) == 0, "--overwrite");
    CHECK(stat(p, &st1) == 0 && (st1.st_mode & 0200), "--overwrite replaced the read-only file");

    /* --shard: 3 images over 2 shards, each written once, in sorted blocks */
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/sh' && cp '%s' '%s/sh/c.png' && cp '%s' '%s/sh/a.png' && cp '%s' '%s/sh/b.png' && "
             "'%s' %s --shard 0/2 -m '%s' -o '%s/sh0' '%s/sh/c.png' '%s/sh/a.png' '%s/sh/b.png' && "
             "'%s' %s --shard 1/2 -m '%s' -o '%s/sh1' '%s/sh/c.png' '%s/sh/a.png' '%s/sh/b.png'",
             tmp, img, tmp, img, tmp, img, tmp, test_bin(), seg, model, tmp, tmp, tmp, tmp,
             test_bin(), seg, model, tmp, tmp, tmp, tmp);
    CHECK(test_run(cmd) == 0, "two shards");
    const char *where[3][2] = { { "sh0", "a" }, { "sh1", "b" }, { "sh1", "c" } };
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/%s/%s.labels.png", tmp, where[k][0], where[k][1]);
        CHECK(access(p, F_OK) == 0, "%s in %s", where[k][1], where[k][0]);
        snprintf(p, sizeof p, "%s/%s/%s.labels.png", tmp, where[k][0][2] == '0' ? "sh1" : "sh0",
                 where[k][1]);
        CHECK(access(p, F_OK) != 0, "%s only in one shard", where[k][1]);
    }
    snprintf(cmd, sizeof cmd, "'%s' %s --shard 2/2 -m '%s' x.png 2>/dev/null", test_bin(), seg, model);
    CHECK(test_run(cmd) == 2, "--shard 2/2 refused");

    /* full disk: a 100 KiB tmpfs nearly filled; the re-run fails, overlay kept */
    char mnt[1200];
    snprintf(mnt, sizeof mnt, "%s/small", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && mount -t tmpfs -o size=100k tmpfs '%s' 2>/dev/null", mnt, mnt);
    if (test_run(cmd) != 0) {
        printf("full-disk case skipped: cannot mount a tmpfs (needs root)\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' %s -m '%s' -o '%s' '%s/x.png'", test_bin(), seg, model, mnt, a);
    CHECK(test_run(cmd) == 0, "run on the small disk");
    snprintf(p, sizeof p, "%s/x.overlay.png", mnt);
    char *before = test_slurp(p);
    CHECK(stat(p, &st0) == 0, "overlay there");
    snprintf(cmd, sizeof cmd, "dd if=/dev/zero of='%s/filler' bs=1k count=200 2>/dev/null; "
             "'%s' %s --overwrite -m '%s' -o '%s' '%s/x.png' 2>'%s/full.txt'",
             mnt, test_bin(), seg, model, mnt, a, tmp);
    CHECK(test_run(cmd) == 1, "full disk: exit 1");
    snprintf(p, sizeof p, "%s/full.txt", tmp);
    msg = test_slurp(p);
    CHECK(msg && strstr(msg, "small/x."), "names the file: %s", msg ? msg : "");
    free(msg);
    snprintf(p, sizeof p, "%s/x.overlay.png", mnt);
    char *after = test_slurp(p);
    CHECK(before && after && stat(p, &st1) == 0 && st1.st_size == st0.st_size &&
              !memcmp(before, after, (size_t)st0.st_size),
          "previous overlay intact");
    free(before);
    free(after);
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c alignseg- >/dev/null", mnt);
    CHECK(test_run(cmd) == 1, "no temporaries or journals left on the full disk");
    snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
    test_run(cmd);
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

    check_outputs(tmp);

    test_tmpdir_remove(tmp);
    return check_report("cli_segment");
}
