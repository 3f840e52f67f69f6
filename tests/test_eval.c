/* test_eval: the Hungarian algorithm (against brute force, and a case where
 * greedy matching fails), both evaluation protocols on synthetic ground truth
 * whose scores are worked out by hand (ignore label, classes absent from an
 * image, more and fewer clusters than classes, a permuted perfect
 * prediction), and the nearest-neighbour resizes against PIL / PyTorch
 * output (tests/data/export/make_nearest.py). */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "eval.h"
#include "image.h"
#include "json.h"
#include "npy.h"

static void test_hungarian(void)
{
    AsError err;
    /* greedy takes the 5 and is left with 0 (total 5); optimal is 4 + 4 */
    const int64_t g[4] = { 5, 4, 4, 0 };
    int m[3];
    int64_t tot = 0;
    CHECK(as_hungarian_max(g, 2, 2, m, &tot, &err) == 0, "hungarian");
    CHECK(tot == 8 && m[0] == 1 && m[1] == 0, "greedy-failing case: total %lld, %d %d",
          (long long)tot, m[0], m[1]);
    /* rectangular: 3 rows, 2 columns -> one row unmatched */
    const int64_t r[6] = { 1, 9, 8, 7, 3, 3 };
    CHECK(as_hungarian_max(r, 3, 2, m, &tot, &err) == 0 && tot == 17 && m[0] == 1 && m[1] == 0 &&
              m[2] == -1,
          "3x2: total %lld, %d %d %d", (long long)tot, m[0], m[1], m[2]);
    const int64_t c[6] = { 1, 9, 8, 7, 3, 3 }; /* as 2x3 */
    CHECK(as_hungarian_max(c, 2, 3, m, &tot, &err) == 0 && tot == 16 && m[0] == 1 && m[1] == 0,
          "2x3: total %lld", (long long)tot);
    /* random matrices against brute force over all permutations (n <= 6) */
    uint32_t s = 99;
    for (int t = 0; t < 200; t++) {
        int rows = 1 + t % 6, cols = 1 + (t / 6) % 6;
        int64_t w[36];
        for (int i = 0; i < rows * cols; i++) {
            s = s * 1103515245u + 12345u;
            w[i] = (s >> 16) % (t % 3 == 0 ? 4 : 1000); /* many ties when small */
        }
        int mm[6];
        int64_t got = -1;
        as_hungarian_max(w, rows, cols, mm, &got, &err);
        /* brute force: assign each row a distinct column or none */
        int64_t best = 0;
        int n = rows, perm[6];
        long total = 1;
        for (int i = 0; i < n; i++)
            total *= cols + 1;
        for (long code = 0; code < total; code++) {
            long c2 = code;
            int used = 0, ok = 1;
            int64_t sum = 0;
            for (int i = 0; i < n; i++) {
                perm[i] = (int)(c2 % (cols + 1)) - 1;
                c2 /= cols + 1;
                if (perm[i] >= 0) {
                    if (used & (1 << perm[i]))
                        ok = 0;
                    used |= 1 << perm[i];
                    sum += w[i * cols + perm[i]];
                }
            }
            if (ok && sum > best)
                best = sum;
        }
        /* the reported matching is valid and its weight is the total */
        int used = 0, valid = 1, matched = 0;
        int64_t sum = 0;
        for (int i = 0; i < rows; i++) {
            if (mm[i] < 0)
                continue;
            matched++;
            if (mm[i] >= cols || (used & (1 << mm[i])))
                valid = 0;
            else
                sum += w[i * cols + mm[i]];
            used |= 1 << (mm[i] & 31);
        }
        CHECK(valid && sum == got && got == best &&
                  matched == (rows < cols ? rows : cols),
              "random %dx%d: got %lld best %lld", rows, cols, (long long)got, (long long)best);
    }
}

/* Image from two strings of equal length: pred digits, gt digits ('x' = 255). */
static void add_image(AsEval *e, const char *pred, const char *gt)
{
    size_t n = strlen(pred);
    int32_t p[256];
    uint8_t g[256];
    for (size_t i = 0; i < n; i++) {
        p[i] = pred[i] - '0';
        g[i] = gt[i] == 'x' ? 255 : (uint8_t)(gt[i] - '0');
    }
    AsError err;
    CHECK(as_eval_add(e, p, g, n, &err) == 0, "add: %s", err.msg);
}

static void report(const AsEval *e, AsEvalProtocol p, AsEvalReport *r)
{
    AsError err;
    CHECK(as_eval_report(e, p, r, &err) == 0, "report: %s", err.msg);
}

static void test_protocols(void)
{
    AsEval e;
    AsEvalReport r;
    AsError err;

    /* permuted perfect prediction with ignored pixels: classes 0,3,7 */
    as_eval_init(&e, 3, 255, &err);
    add_image(&e, "0001112222", "777xx30000" /* pred 0->7, 1->3 (x ignored), 2->0 */);
    add_image(&e, "22110", "00337");
    report(&e, AS_EVAL_REFERENCE, &r);
    CHECK_NEAR(r.miou, 1.0, 1e-12, "perfect permuted: reference mIoU");
    CHECK_NEAR(r.pixel_acc, 1.0, 1e-12, "perfect permuted: pixel accuracy");
    CHECK(r.valid_pixels == 13, "ignored pixels left out: %lld", (long long)r.valid_pixels);
    CHECK(!isnan(r.class_iou[3]) && isnan(r.class_iou[1]), "class IoU defined only for GT classes");
    report(&e, AS_EVAL_HUNGARIAN, &r);
    CHECK_NEAR(r.miou, 1.0, 1e-12, "perfect permuted: hungarian mIoU");
    CHECK(r.match[0] == 7 && r.match[1] == 3 && r.match[2] == 0, "matching");
    as_eval_report_free(&r);
    as_eval_free(&e);

    /* more clusters than classes: 4 clusters split 2 classes in halves */
    as_eval_init(&e, 4, 255, &err);
    add_image(&e, "0011223300112233", "0000111100001111");
    report(&e, AS_EVAL_REFERENCE, &r);
    CHECK_NEAR(r.miou, 1.0, 1e-12, "over-clustering: many-to-one is perfect");
    report(&e, AS_EVAL_HUNGARIAN, &r);
    /* one cluster per class: TP 4 of 8 GT pixels, 4 predicted: IoU 4/8 */
    CHECK_NEAR(r.miou, 0.5, 1e-12, "over-clustering: hungarian mIoU");
    CHECK_NEAR(r.pixel_acc, 0.5, 1e-12, "over-clustering: hungarian accuracy");
    int unmatched = 0;
    for (int p = 0; p < 4; p++)
        unmatched += r.match[p] < 0;
    CHECK(unmatched == 2, "two clusters unmatched");
    as_eval_report_free(&r);
    as_eval_free(&e);

    /* fewer clusters than classes: 4x4, class 0 in columns 0-1, class 1 in
     * column 2, class 2 in column 3; cluster 0 = columns 0-1, 1 = columns 2-3.
     * Reference: cluster 1 overlaps classes 1 and 2 equally -> class 1.
     * IoU0 = 1, IoU1 = 4/(4+8-4) = .5, IoU2 = 0; accuracy 12/16. */
    as_eval_init(&e, 2, 255, &err);
    add_image(&e, "0011001100110011", "0012001200120012");
    report(&e, AS_EVAL_REFERENCE, &r);
    CHECK_NEAR(r.miou, 0.5, 1e-12, "under-clustering: reference mIoU");
    CHECK_NEAR(r.class_iou[1], 0.5, 1e-12, "under-clustering: tie goes to the smaller class");
    CHECK_NEAR(r.class_iou[2], 0.0, 1e-12, "under-clustering: class 2");
    CHECK_NEAR(r.pixel_acc, 0.75, 1e-12, "under-clustering: accuracy");
    report(&e, AS_EVAL_HUNGARIAN, &r);
    CHECK_NEAR(r.miou, 0.5, 1e-12, "under-clustering: hungarian mIoU");
    as_eval_report_free(&r);
    as_eval_free(&e);

    /* classes absent from an image: image 1 has classes 0,1 (perfect), image 2
     * classes 0 (12 px) and 2 (4 px) with one cluster for everything:
     * IoU0 = 12/16, IoU2 = 0 -> image score .375; mIoU = (1 + .375)/2. */
    as_eval_init(&e, 2, 255, &err);
    add_image(&e, "0000000011111111", "0000000011111111");
    add_image(&e, "0000000000000000", "0000002222000000");
    report(&e, AS_EVAL_REFERENCE, &r);
    CHECK_NEAR(r.miou, 0.6875, 1e-12, "absent classes: reference mIoU");
    CHECK_NEAR(r.class_iou[0], 0.875, 1e-12, "absent classes: class 0 averaged over 2 images");
    CHECK_NEAR(r.class_iou[1], 1.0, 1e-12, "absent classes: class 1 from image 1 only");
    CHECK_NEAR(r.class_iou[2], 0.0, 1e-12, "absent classes: class 2");
    CHECK_NEAR(r.pixel_acc, 28.0 / 32.0, 1e-12, "absent classes: accuracy");
    /* dataset confusion: cluster 0 = {class 0: 20, class 2: 4}, cluster 1 =
     * {class 1: 8}: 0->0, 1->1; IoU0 = 20/24, IoU1 = 1, IoU2 = 0 */
    report(&e, AS_EVAL_HUNGARIAN, &r);
    CHECK_NEAR(r.miou, (20.0 / 24.0 + 1.0 + 0.0) / 3.0, 1e-12, "absent classes: hungarian mIoU");
    CHECK_NEAR(r.pixel_acc, 28.0 / 32.0, 1e-12, "absent classes: hungarian accuracy");
    CHECK(r.nclasses == 3, "nclasses %d", r.nclasses);
    as_eval_report_free(&r);
    as_eval_free(&e);

    /* a dataset where greedy matching fails: cluster 0 = {c0: 5, c1: 4},
     * cluster 1 = {c0: 4}. Optimal: 0->1, 1->0 (8 px); greedy 0->0 (5 px). */
    as_eval_init(&e, 2, 255, &err);
    add_image(&e, "0000000001111", "0000011110000");
    report(&e, AS_EVAL_HUNGARIAN, &r);
    CHECK(r.match[0] == 1 && r.match[1] == 0, "greedy-failing: matching %d %d", r.match[0],
          r.match[1]);
    CHECK_NEAR(r.pixel_acc, 8.0 / 13.0, 1e-12, "greedy-failing: accuracy");
    CHECK_NEAR(r.miou, 4.0 / 9.0, 1e-12, "greedy-failing: mIoU");
    as_eval_report_free(&r);
    as_eval_free(&e);

    /* an image with only ignored pixels is not scored; ignore -1 keeps 255 */
    as_eval_init(&e, 2, 255, &err);
    add_image(&e, "01", "xx");
    add_image(&e, "01", "01");
    report(&e, AS_EVAL_REFERENCE, &r);
    CHECK(r.nimages == 2 && r.nscored == 1 && r.miou == 1.0, "all-ignored image skipped");
    as_eval_free(&e);
    as_eval_init(&e, 2, -1, &err);
    add_image(&e, "01", "xx");
    report(&e, AS_EVAL_REFERENCE, &r);
    CHECK(r.valid_pixels == 2 && r.nclasses == 256, "ignore -1: 255 is a class");
    as_eval_free(&e);

    /* bad predictions are errors */
    as_eval_init(&e, 2, 255, &err);
    int32_t p[2] = { 0, 5 };
    uint8_t g[2] = { 0, 0 };
    CHECK(as_eval_add(&e, p, g, 2, &err) == AS_ERR_ARG, "cluster out of range");
    as_eval_free(&e);
    CHECK(as_eval_init(&e, 0, 255, &err) == AS_ERR_ARG, "no clusters");
}

static uint8_t *load_u8(const char *rel, int *w, int *h)
{
    AsNpy a;
    AsError err;
    if (as_npy_read(test_path(rel), &a, &err) || a.dtype != AS_DT_U8 || a.ndim != 2) {
        CHECK(0, "%s: %s", rel, err.msg);
        return NULL;
    }
    *h = (int)a.shape[0];
    *w = (int)a.shape[1];
    return a.data; /* owned by the caller now */
}

static void test_resize(void)
{
    int sw, sh;
    uint8_t *src = load_u8("export/nearest_src_23x37.npy", &sw, &sh);
    if (!src)
        return;
    const char *pil[] = { "export/nearest_pil_100x100.npy", "export/nearest_pil_29x41.npy",
                          "export/nearest_pil_57x113.npy", "export/nearest_pil_9x16.npy" };
    for (int k = 0; k < 4; k++) {
        int w, h;
        uint8_t *want = load_u8(pil[k], &w, &h);
        if (!want)
            continue;
        uint8_t *got = malloc((size_t)w * h);
        as_resize_nearest_pil_u8(src, sw, sh, got, w, h);
        CHECK(!memcmp(got, want, (size_t)w * h), "PIL nearest %dx%d", w, h);
        free(got);
        free(want);
    }
    const char *tch[] = { "export/nearest_torch_100x100.npy", "export/nearest_torch_29x41.npy" };
    for (int k = 0; k < 2; k++) {
        int w, h;
        uint8_t *want = load_u8(tch[k], &w, &h);
        if (!want)
            continue;
        uint8_t *got = malloc((size_t)w * h);
        as_resize_nearest_torch_u8(src, sw, sh, got, w, h);
        CHECK(!memcmp(got, want, (size_t)w * h), "torch nearest %dx%d", w, h);
        free(got);
        free(want);
    }
    int gw, gh, ww, wh;
    uint8_t *grid = load_u8("export/nearest_grid_28x28.npy", &gw, &gh);
    uint8_t *want = load_u8("export/nearest_torch_grid_100x100.npy", &ww, &wh);
    if (grid && want) {
        int32_t gi[28 * 28], out[100 * 100];
        for (int i = 0; i < gw * gh; i++)
            gi[i] = grid[i];
        as_resize_nearest_torch_i32(gi, gw, gh, out, 100, 100);
        int bad = 0;
        for (int i = 0; i < 100 * 100; i++)
            bad += out[i] != want[i];
        CHECK(bad == 0, "patch grid 28x28 -> 100x100: %d differ", bad);
    }
    free(grid);
    free(want);
    free(src);
}

/* ---- `alignseg eval` end to end (run as: test_eval cli) ---- */
/* Ground truth = the reference patch labels blown up to 64x64 (patch 16)
 * with a 255 block, permuted (class = 7 - label): the reference protocol then
 * scores exactly 1; image b.png has no mask (reported, status 1). */
static void test_cli(void)
{
    char dir[TEST_TMPDIR_MAX];
    if (!test_tmpdir_make(dir, sizeof dir, "eval_cli")) {
        CHECK(0, "mkdtemp");
        return;
    }
    char cmd[4096], p[1024];
    const char *model = test_path("reference/infer_tiny/alignseg.pth");
    const char *img = test_path("reference/infer_tiny/input.png");
    snprintf(cmd, sizeof cmd, "'%s' eval --help > '%s/help.txt'", test_bin(), dir);
    CHECK(test_run(cmd) == 0, "--help exits 0");
    snprintf(p, sizeof p, "%s/help.txt", dir);
    char *help = test_slurp(p);
    const char *opts[] = { "--model", "--backbone", "--images", "--masks", "--size", "--ignore",
                           "--protocol", "--json", "--eval-size" };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        CHECK(help && strstr(help, opts[i]), "help documents %s", opts[i]);
    free(help);
    snprintf(cmd, sizeof cmd, "'%s' eval --protocol greedy 2>/dev/null", test_bin());
    CHECK(test_run(cmd) == 2, "bad protocol exits 2");

    snprintf(cmd, sizeof cmd, "mkdir -p '%s/img' '%s/gt' && cp '%s' '%s/img/a.png' && cp '%s' '%s/img/b.png'",
             dir, dir, img, dir, img, dir);
    CHECK(test_run(cmd) == 0, "setup");
    AsNpy lp;
    AsError err;
    if (as_npy_read(test_path("reference/infer_tiny/labels_patch.npy"), &lp, &err) == 0) {
        uint8_t gt[64 * 64];
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++)
                gt[y * 64 + x] = (uint8_t)(7 - ((int32_t *)lp.data)[(y / 16) * 4 + x / 16]);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 5; x++)
                gt[y * 64 + x] = 255;
        snprintf(p, sizeof p, "%s/gt/a.png", dir);
        CHECK(as_png_write_gray(p, gt, 64, 64, &err) == 0, "%s", err.msg);
        as_npy_free(&lp);
    }
    for (int proto = 0; proto < 2; proto++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' eval -q -m '%s' --encoder-heads 3 --size 64 --images '%s/img' --masks '%s/gt' "
                 "--protocol %s --json '%s/r.json' > '%s/out.txt' 2> '%s/err.txt'",
                 test_bin(), model, dir, dir, proto ? "hungarian" : "reference", dir, dir, dir);
        CHECK(test_run(cmd) == 1, "missing mask makes the status 1");
        snprintf(p, sizeof p, "%s/err.txt", dir);
        char *e = test_slurp(p);
        CHECK(e && strstr(e, "b.png"), "error names the missing mask: %s", e ? e : "");
        free(e);
        snprintf(p, sizeof p, "%s/out.txt", dir);
        char *o = test_slurp(p);
        CHECK(o && strstr(o, "mIoU") && strstr(o, "pixel accuracy"), "printed report: %s",
              o ? o : "");
        free(o);
        snprintf(p, sizeof p, "%s/r.json", dir);
        AsJson *j = NULL;
        CHECK(as_json_read_file(p, &j, &err) == 0, "json: %s", err.msg);
        if (j) {
            CHECK(as_json_num(as_json_get(j, "miou"), 0) == 1.0, "%s: mIoU 1",
                  proto ? "hungarian" : "reference");
            CHECK(as_json_num(as_json_get(j, "images"), 0) == 1, "one image scored");
            /* 100x100 minus the ignored block (5 of 64 px -> 8 of 100 rows/cols) */
            CHECK(as_json_num(as_json_get(j, "valid_pixels"), 0) == 10000 - 64,
                  "valid pixels %g", as_json_num(as_json_get(j, "valid_pixels"), 0));
            if (proto) {
                const AsJson *m = as_json_get(j, "matching");
                CHECK(m && m->count == 5, "matching of 5 clusters");
            }
            as_json_free(j);
        }
    }
    CHECK(test_tmpdir_remove(dir) == 0, "cleanup");
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "cli")) {
        test_cli();
        return check_report("eval_cli");
    }
    test_hungarian();
    test_protocols();
    test_resize();
    return check_report("eval");
}
