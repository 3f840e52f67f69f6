/* test_eval_shards: sharded evaluation (core/output/evalshard.h, issue 14).
 *
 * Unit (test_eval_shards): random images evaluated in one AsEval and, split
 * into 3 shards written to disk and merged (in any folder order), give the
 * same accumulator bit for bit and the same reports for both protocols; the
 * confusion split is checked against hand-counted cells; every way a set of
 * shards can be wrong (missing, duplicated, foreign in each header field,
 * short, of another list, not a shard) is refused with a message naming the
 * folder; hostile shard files (every truncation of a good one, wrong types,
 * bad cells, overflowing counts) are refused naming the file, and bad cells
 * leave the accumulator untouched; the model fingerprint follows the weights,
 * not their order in the file.
 *
 * CLI (test_eval_shards cli, meson test eval_shards_cli): `alignseg eval` of
 * 9 images (one without a mask) against `eval --shard I/3 -o DIR` (one shard
 * through --shard slurm) and `alignseg merge`: the printed report and the
 * JSON are byte-identical, for both protocols, and both runs exit 1 for the
 * failed image; a rerun skips a finished shard, a shard of other options in
 * the same folder is refused, and merges with a missing, duplicated or
 * foreign shard fail naming it. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "eval.h"
#include "evalshard.h"
#include "image.h"

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}

#define NPIX 97
#define NIMG 11
#define NPRED 4

/* image i: predictions and ground truth with classes {0, 2, 5, 9}, some 255 */
static void make_image(int i, int32_t *pred, uint8_t *gt)
{
    static const uint8_t cls[4] = { 0, 2, 5, 9 };
    for (int k = 0; k < NPIX; k++) {
        uint8_t c = cls[(k * (i + 1) / 17 + i) % (i % 3 + 2)];
        gt[k] = rnd(9) == 0 ? 255 : c;
        /* mostly a permutation of the class, sometimes noise */
        pred[k] = rnd(4) == 0 ? (int32_t)rnd(NPRED) : (int32_t)((c * 7 + i) % NPRED);
    }
    if (i == 4) /* an image without a valid pixel */
        memset(gt, 255, NPIX);
}

static void fill_header(AsEvalShard *s, int index, int count, const char *fp,
                        const char *settings)
{
    AsError err;
    CHECK(as_eval_shard_set(s, "alignseg test", "model.pth", fp, settings, &err) == 0, "%s",
          err.msg);
    s->clusters = NPRED;
    s->ignore = 255;
    s->protocol = AS_EVAL_REFERENCE;
    s->shard_index = index;
    s->shard_count = count;
    s->total_images = NIMG;
}

/* Write shard index of count of the NIMG images into dir (mkdir'ed). */
static void write_shard(const char *dir, int index, int count, const char *fp,
                        const char *settings, const char *name_prefix)
{
    mkdir(dir, 0755);
    AsEvalShard s;
    as_eval_shard_init(&s);
    fill_header(&s, index, count, fp, settings);
    AsEval tmp;
    AsError err;
    as_eval_init(&tmp, NPRED, 255, &err);
    int lo = index * NIMG / count, hi = (index + 1) * NIMG / count;
    rng_state = 12345;
    for (int i = 0; i < NIMG; i++) {
        int32_t pred[NPIX];
        uint8_t gt[NPIX];
        make_image(i, pred, gt);
        if (i < lo || i >= hi)
            continue;
        char name[64];
        snprintf(name, sizeof name, "%s%02d.png", name_prefix, i);
        AsEvalConfusion c;
        CHECK(as_eval_confusion(&tmp, pred, gt, NPIX, &c, &err) == 0, "%s", err.msg);
        CHECK(as_eval_shard_add(&s, name, &c, NULL, &err) == 0, "%s", err.msg);
        CHECK(c.cells == NULL, "the shard took the cells");
    }
    CHECK(as_eval_shard_write(&s, dir, &err) == 0, "write %s: %s", dir, err.msg);
    as_eval_shard_free(&s);
    as_eval_free(&tmp);
}

static bool same_eval(const AsEval *a, const AsEval *b)
{
    return a->num_pred == b->num_pred && a->ignore == b->ignore &&
           !memcmp(a->conf, b->conf, sizeof(int64_t) * (size_t)a->num_pred * AS_EVAL_CLASSES) &&
           !memcmp(a->gt_pixels, b->gt_pixels, sizeof a->gt_pixels) &&
           a->valid_pixels == b->valid_pixels && a->nimages == b->nimages &&
           a->nscored == b->nscored && a->ref_correct == b->ref_correct &&
           /* bit for bit: the same additions in the same order */
           !memcmp(&a->sum_image_miou, &b->sum_image_miou, sizeof(double)) &&
           !memcmp(a->class_iou_sum, b->class_iou_sum, sizeof a->class_iou_sum) &&
           !memcmp(a->class_images, b->class_images, sizeof a->class_images);
}

static void test_confusion_cells(void)
{
    AsEval e;
    AsError err;
    as_eval_init(&e, 3, 255, &err);
    /* pixels (pred, gt): (2,7) (0,3) (2,7) (1,255) (0,0) (0,3) -> cells
     * (0,0)=1 (0,3)=2 (2,7)=2, in that order; the ignored pixel left out */
    const int32_t p[6] = { 2, 0, 2, 1, 0, 0 };
    const uint8_t g[6] = { 7, 3, 7, 255, 0, 3 };
    AsEvalConfusion c;
    CHECK(as_eval_confusion(&e, p, g, 6, &c, &err) == 0, "%s", err.msg);
    CHECK(c.n == 3, "3 cells, got %zu", c.n);
    if (c.n == 3) {
        CHECK(c.cells[0].pred == 0 && c.cells[0].cls == 0 && c.cells[0].count == 1, "cell 0");
        CHECK(c.cells[1].pred == 0 && c.cells[1].cls == 3 && c.cells[1].count == 2, "cell 1");
        CHECK(c.cells[2].pred == 2 && c.cells[2].cls == 7 && c.cells[2].count == 2, "cell 2");
    }
    /* reference score of this image by hand: cluster 0 -> class 3 (2 of 3
     * pixels), cluster 2 -> 7. IoU: class 0: 0/1, class 3: 2/3, class 7: 1 */
    CHECK(as_eval_add_confusion(&e, &c, &err) == 0, "%s", err.msg);
    AsEvalReport r;
    CHECK(as_eval_report(&e, AS_EVAL_REFERENCE, &r, &err) == 0, "%s", err.msg);
    CHECK_NEAR(r.miou, (0.0 + 2.0 / 3.0 + 1.0) / 3.0, 1e-15, "hand-computed mIoU");
    as_eval_report_free(&r);
    as_eval_confusion_free(&c);

    /* bad cells are refused and leave e as it was */
    AsEval before = e;
    before.conf = malloc(sizeof(int64_t) * 3 * AS_EVAL_CLASSES);
    memcpy(before.conf, e.conf, sizeof(int64_t) * 3 * AS_EVAL_CLASSES);
    AsEvalCell bad[][2] = {
        { { 3, 1, 5 }, { 0, 0, 0 } },            /* cluster 3 of 3 */
        { { -1, 1, 5 }, { 0, 0, 0 } },           /* negative cluster */
        { { 0, 255, 5 }, { 0, 0, 0 } },          /* the ignore class */
        { { 0, 256, 5 }, { 0, 0, 0 } },          /* not 8-bit */
        { { 0, 1, 0 }, { 0, 0, 0 } },            /* empty cell */
        { { 0, 1, -4 }, { 0, 0, 0 } },           /* negative count */
        { { 1, 1, 5 }, { 0, 2, 5 } },            /* out of order */
        { { 1, 1, 5 }, { 1, 1, 5 } },            /* repeated */
        { { 0, 1, INT64_MAX }, { 0, 0, 0 } },    /* overflowing */
        { { 0, 1, (int64_t)1 << 30 }, { 1, 1, (int64_t)1 << 31 } }, /* too many in one image */
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        AsEvalConfusion bc = { bad[t], bad[t][1].count ? 2u : 1u };
        as_error_clear(&err);
        CHECK(as_eval_add_confusion(&e, &bc, &err) == AS_ERR_FORMAT && err.msg[0],
              "bad cell set %zu refused", t);
    }
    CHECK(same_eval(&e, &before), "refused cells left the accumulator unchanged");
    free(before.conf);
    as_eval_free(&e);
}

static void report_both(const AsEval *e, AsEvalReport r[2])
{
    AsError err;
    for (int p = 0; p < 2; p++)
        CHECK(as_eval_report(e, (AsEvalProtocol)p, &r[p], &err) == 0, "%s", err.msg);
}

static void test_merge_exact(void)
{
    /* one run */
    AsEval one;
    AsError err;
    as_eval_init(&one, NPRED, 255, &err);
    rng_state = 12345;
    for (int i = 0; i < NIMG; i++) {
        int32_t pred[NPIX];
        uint8_t gt[NPIX];
        make_image(i, pred, gt);
        CHECK(as_eval_add(&one, pred, gt, NPIX, &err) == 0, "%s", err.msg);
    }
    CHECK(one.nscored == NIMG - 1, "one image without valid pixels");
    const char *d[3] = { test_tmp_path("s0"), test_tmp_path("s1"), test_tmp_path("s2") };
    for (int s = 0; s < 3; s++)
        write_shard(d[s], s, 3, "00000000000000aa", "size=64", "img");
    /* every order of the folders */
    const int orders[6][3] = { { 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 },
                               { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 } };
    AsEvalReport r1[2];
    report_both(&one, r1);
    for (int o = 0; o < 6; o++) {
        const char *dirs[3] = { d[orders[o][0]], d[orders[o][1]], d[orders[o][2]] };
        AsEval m;
        AsEvalShard head;
        int64_t failed = -1;
        CHECK(as_eval_shards_merge(dirs, 3, &m, &head, &failed, &err) == 0, "merge: %s",
              err.msg);
        if (m.conf) {
            CHECK(same_eval(&one, &m), "order %d: merged accumulator = one run's", o);
            AsEvalReport r2[2];
            report_both(&m, r2);
            for (int p = 0; p < 2; p++) {
                CHECK(!memcmp(&r1[p].miou, &r2[p].miou, sizeof(double)) &&
                          !memcmp(&r1[p].pixel_acc, &r2[p].pixel_acc, sizeof(double)),
                      "protocol %d: mIoU %.17g vs %.17g", p, r1[p].miou, r2[p].miou);
                CHECK(!memcmp(r1[p].class_iou, r2[p].class_iou, sizeof r1[p].class_iou),
                      "protocol %d: per-class IoU", p);
                CHECK(p == 0 || !memcmp(r1[p].match, r2[p].match, sizeof(int32_t) * NPRED),
                      "hungarian matching");
                as_eval_report_free(&r2[p]);
            }
            CHECK(failed == 0 && head.shard_count == 3 && head.clusters == NPRED &&
                      !strcmp(head.fingerprint, "00000000000000aa"),
                  "merged header");
        }
        as_eval_shard_free(&head);
        as_eval_free(&m);
    }
    for (int p = 0; p < 2; p++)
        as_eval_report_free(&r1[p]);
    as_eval_free(&one);
}

/* A scratch path that stays (test_tmp_path's buffers rotate). */
static const char *keep_path(const char *name)
{
    static char buf[32][TEST_TMPDIR_MAX + 64];
    static int n = 0;
    char *b = buf[n++ % 32];
    snprintf(b, sizeof buf[0], "%s", test_tmp_path(name));
    return b;
}

/* Merge dirs; expect a failure whose message contains want (and want2). */
static void expect_refused(const char *const *dirs, int n, const char *want, const char *want2,
                           const char *what)
{
    AsEval m;
    AsEvalShard head;
    int64_t failed;
    AsError err;
    as_error_clear(&err);
    int rc = as_eval_shards_merge(dirs, n, &m, &head, &failed, &err);
    CHECK(rc != 0 && strstr(err.msg, want) && (!want2 || strstr(err.msg, want2)),
          "%s: refused naming '%s'%s%s (got rc %d: %s)", what, want, want2 ? " and " : "",
          want2 ? want2 : "", rc, err.msg);
    if (rc == 0) {
        as_eval_free(&m);
        as_eval_shard_free(&head);
    }
}

static void test_merge_refused(void)
{
    const char *d0 = keep_path("r0"), *d1 = keep_path("r1"), *d2 = keep_path("r2");
    write_shard(d0, 0, 3, "00000000000000aa", "size=64", "img");
    write_shard(d1, 1, 3, "00000000000000aa", "size=64", "img");
    write_shard(d2, 2, 3, "00000000000000aa", "size=64", "img");
    const char *missing[2] = { d0, d2 };
    expect_refused(missing, 2, "shard 1 of 3 is missing", NULL, "missing shard");
    const char *dup[4] = { d0, d1, d2, d1 };
    expect_refused(dup, 4, "both shard 1 of 3", d1, "duplicated shard");
    /* foreign shards: one header field each */
    const char *fw = keep_path("fw"), *fo = keep_path("fo"), *fc = keep_path("fc");
    write_shard(fw, 1, 3, "00000000000000bb", "size=64", "img");
    write_shard(fo, 1, 3, "00000000000000aa", "size=96", "img");
    write_shard(fc, 1, 4, "00000000000000aa", "size=64", "img");
    const char *f1[3] = { d0, fw, d2 }, *f2[3] = { d0, fo, d2 }, *f3[3] = { d0, fc, d2 };
    expect_refused(f1, 3, fw, "model weights", "other weights");
    expect_refused(f2, 3, fo, "options", "other options");
    expect_refused(f3, 3, fc, "shard count", "other shard count");
    /* shards of another list of the same size */
    const char *fl = keep_path("fl");
    write_shard(fl, 1, 3, "00000000000000aa", "size=64", "aaa");
    const char *f4[3] = { d0, fl, d2 };
    expect_refused(f4, 3, "different image lists", fl, "other list");
    /* not a shard folder */
    const char *empty = keep_path("empty");
    mkdir(empty, 0755);
    const char *f5[3] = { d0, empty, d2 };
    expect_refused(f5, 3, empty, "not an eval shard folder", "empty folder");
    /* a shard missing an image of its block: rewrite shard 1 without its last */
    const char *fs = keep_path("fs");
    mkdir(fs, 0755);
    AsEvalShard s;
    AsError err;
    CHECK(as_eval_shard_read(d1, &s, &err) == 0, "%s", err.msg);
    if (s.nimages > 0) {
        s.nimages--;
        free(s.images[s.nimages].name);
        as_eval_confusion_free(&s.images[s.nimages].conf);
        CHECK(as_eval_shard_write(&s, fs, &err) == 0, "%s", err.msg);
    }
    as_eval_shard_free(&s);
    const char *f6[3] = { d0, fs, d2 };
    expect_refused(f6, 3, fs, "holds 3 images", "short shard");
    /* a cluster outside the header's count: caught when added, naming file and image */
    char p[TEST_TMPDIR_MAX + 64];
    const char *fb = keep_path("fb");
    mkdir(fb, 0755);
    snprintf(p, sizeof p, "%s/" AS_EVAL_SHARD_FILE, fb);
    const char *text =
        "{\"format\":\"alignseg-eval-shard\",\"version\":1,\"generator\":\"alignseg test\","
        "\"model\":\"m\",\"model_fingerprint\":\"00000000000000aa\",\"settings\":\"size=64\","
        "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":1,"
        "\"count\":3},\"total_images\":11,\"images\":[{\"name\":\"img03.png\",\"cells\":[9,0,5]},"
        "{\"name\":\"img04.png\",\"cells\":[]},{\"name\":\"img05.png\",\"error\":\"x\"},"
        "{\"name\":\"img06.png\",\"cells\":[0,0,1]}]}";
    test_write_file(p, text, strlen(text));
    const char *f7[3] = { d0, fb, d2 };
    expect_refused(f7, 3, "img03.png", "cluster 9", "cluster out of range");
}

/* Every truncation of a good shard file and a list of hostile ones. */
static void test_hostile_files(void)
{
    const char *good = test_tmp_path("good");
    write_shard(good, 0, 2, "00000000000000aa", "size=64", "img");
    char p[TEST_TMPDIR_MAX + 64];
    snprintf(p, sizeof p, "%s/" AS_EVAL_SHARD_FILE, good);
    char *text = test_slurp(p);
    CHECK(text != NULL, "read %s", p);
    if (!text)
        return;
    size_t len = strlen(text);
    const char *bad = test_tmp_path("bad");
    mkdir(bad, 0755);
    char bp[TEST_TMPDIR_MAX + 64];
    snprintf(bp, sizeof bp, "%s/" AS_EVAL_SHARD_FILE, bad);
    int refused = 0, tried = 0;
    for (size_t cut = 0; cut + 2 < len; cut += 1 + cut / 40) {
        test_write_file(bp, text, cut);
        AsEvalShard s;
        AsError err;
        as_error_clear(&err);
        tried++;
        if (as_eval_shard_read(bad, &s, &err) != 0 && strstr(err.msg, bp))
            refused++;
        else if (err.msg[0] == '\0')
            as_eval_shard_free(&s);
    }
    CHECK(refused == tried, "every truncation refused naming the file (%d of %d)", refused,
          tried);
    free(text);
    const char *head = "{\"format\":\"alignseg-eval-shard\",\"version\":1,\"generator\":\"g\","
                       "\"model\":\"m\",\"model_fingerprint\":\"f\",\"settings\":\"s\",";
    const struct {
        const char *body, *want;
    } cases[] = {
        { "\"clusters\":0,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":1,\"images\":[]}", "\"clusters\"" },
        { "\"clusters\":4.5,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":1,\"images\":[]}", "\"clusters\"" },
        { "\"clusters\":4,\"ignore\":256,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":1,\"images\":[]}", "\"ignore\"" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"greedy\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":1,\"images\":[]}", "\"protocol\"" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":3,"
          "\"count\":3},\"total_images\":1,\"images\":[]}", "\"index\"" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":-1,\"images\":[]}", "\"total_images\"" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":1,\"images\":[{\"name\":\"a\",\"cells\":[]},"
          "{\"name\":\"b\",\"cells\":[]}]}", "longer than" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":2,\"images\":[{\"name\":\"b\",\"cells\":[]},"
          "{\"name\":\"a\",\"cells\":[]}]}", "sorted order" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":2,\"images\":[{\"name\":\"a\",\"cells\":[0,1]}]}",
          "triples" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":2,\"images\":[{\"name\":\"a\",\"cells\":[0,1,-3]}]}",
          "cell 0" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":2,\"images\":[{\"name\":\"a\",\"cells\":[0,1,\"5\"]}]}",
          "cell 0" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":2,\"images\":[{\"name\":\"\",\"cells\":[]}]}",
          "empty name" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":2,\"images\":[7]}", "not an object" },
        { "\"clusters\":4,\"ignore\":255,\"protocol\":\"reference\",\"shard\":{\"index\":0,"
          "\"count\":1},\"total_images\":2}", "\"images\"" },
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s%s", head, cases[t].body);
        test_write_file(bp, buf, strlen(buf));
        AsEvalShard s;
        AsError err;
        as_error_clear(&err);
        int rc = as_eval_shard_read(bad, &s, &err);
        CHECK(rc != 0 && strstr(err.msg, bp) && strstr(err.msg, cases[t].want),
              "hostile case %zu refused naming the file and %s: %s", t, cases[t].want, err.msg);
        if (rc == 0)
            as_eval_shard_free(&s);
    }
    /* not a shard at all, another version */
    const char *other[] = { "[1,2,3]", "{\"format\":\"coco\"}",
                            "{\"format\":\"alignseg-eval-shard\",\"version\":2}" };
    for (size_t t = 0; t < 3; t++) {
        test_write_file(bp, other[t], strlen(other[t]));
        AsEvalShard s;
        AsError err;
        as_error_clear(&err);
        CHECK(as_eval_shard_read(bad, &s, &err) != 0 && strstr(err.msg, bp),
              "'%s' refused: %s", other[t], err.msg);
    }
}

static void test_fingerprint(void)
{
    AsError err;
    AsModel a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    as_tmap_init(&a.weights);
    as_tmap_init(&b.weights);
    const int64_t s1[1] = { 3 }, s2[2] = { 2, 2 };
    float *x = malloc(3 * sizeof *x), *y = malloc(4 * sizeof *y);
    float *x2 = malloc(3 * sizeof *x2), *y2 = malloc(4 * sizeof *y2);
    for (int i = 0; i < 4; i++) {
        if (i < 3)
            x[i] = x2[i] = 0.5f * (float)i;
        y[i] = y2[i] = -1.25f * (float)i;
    }
    /* the same tensors in the other order */
    CHECK(as_tmap_add(&a.weights, "enc.x", 1, s1, x, false, &err) == 0, "%s", err.msg);
    CHECK(as_tmap_add(&a.weights, "dec.y", 2, s2, y, false, &err) == 0, "%s", err.msg);
    CHECK(as_tmap_add(&b.weights, "dec.y", 2, s2, y2, false, &err) == 0, "%s", err.msg);
    CHECK(as_tmap_add(&b.weights, "enc.x", 1, s1, x2, false, &err) == 0, "%s", err.msg);
    char fa[17], fb[17];
    CHECK(as_eval_model_fingerprint(&a, fa, &err) == 0, "%s", err.msg);
    CHECK(as_eval_model_fingerprint(&b, fb, &err) == 0, "%s", err.msg);
    CHECK(strlen(fa) == 16 && !strcmp(fa, fb), "same weights, other order: %s %s", fa, fb);
    as_tmap_find(&b.weights, "dec.y")->data[3] += 1e-6f;
    CHECK(as_eval_model_fingerprint(&b, fb, &err) == 0 && strcmp(fa, fb),
          "one value changed: %s %s", fa, fb);
    as_tmap_free(&a.weights);
    as_tmap_free(&b.weights);
}

/* ---- `alignseg eval --shard` + `alignseg merge` end to end ---- */

static int run(const char *cmd)
{
    return test_run(cmd);
}

static bool same_file(const char *a, const char *b)
{
    char *x = test_slurp(a), *y = test_slurp(b);
    bool same = x && y && !strcmp(x, y);
    free(x);
    free(y);
    return same;
}

static void test_cli(void)
{
    char dir[TEST_TMPDIR_MAX];
    if (!test_tmpdir_make(dir, sizeof dir, "eval_shards_cli")) {
        CHECK(0, "mkdtemp");
        return;
    }
    char cmd[8192], p[1024], q[1024];
    char model[1024], other[1024]; /* test_path's buffers rotate */
    snprintf(model, sizeof model, "%s", test_path("reference/infer_tiny/alignseg.pth"));
    snprintf(other, sizeof other, "%s", test_path("reference/infer_tiny/dino_backbone.pth"));
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/img' '%s/gt' '%s/sh'", dir, dir, dir);
    CHECK(run(cmd) == 0, "mkdir");
    /* 9 images: 8 small photos and the reference input; masks for all but one */
    AsError err;
    for (int i = 1; i <= 9; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, i <= 8 ? "images/exif_ii_%d.jpg" : "reference/infer_tiny/input.png", i);
        const char *src = test_path(rel);
        snprintf(p, sizeof p, "%s/img/im%d%s", dir, i, i <= 8 ? ".jpg" : ".png");
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, p);
        CHECK(run(cmd) == 0, "copy %s", src);
        AsImage im = { 0 };
        if (as_image_load(p, &im, &err) != 0) {
            CHECK(0, "%s", err.msg);
            continue;
        }
        uint8_t *gt = malloc((size_t)im.w * im.h);
        for (int y = 0; y < im.h; y++)
            for (int x = 0; x < im.w; x++)
                gt[y * im.w + x] = (x + y) % 7 == 0 ? 255
                                   : (uint8_t)((x * 3 / im.w + y * 2 / im.h + i) % 4) * 3;
        snprintf(q, sizeof q, "%s/gt/im%d.png", dir, i);
        if (i != 5)
            CHECK(as_png_write_gray(q, gt, im.w, im.h, &err) == 0, "%s", err.msg);
        free(gt);
        as_image_free(&im);
    }
    const char *common = "-q --encoder-heads 3 --size 64";
    for (int proto = 0; proto < 2; proto++) {
        const char *pn = proto ? "hungarian" : "reference";
        snprintf(cmd, sizeof cmd,
                 "'%s' eval %s -m '%s' --images '%s/img' --masks '%s/gt' --protocol %s "
                 "--json '%s/one.json' > '%s/one.txt' 2> '%s/one.err'",
                 test_bin(), common, model, dir, dir, pn, dir, dir, dir);
        CHECK(run(cmd) == 1, "%s: single run exits 1 (im5 has no mask)", pn);
        snprintf(p, sizeof p, "%s/one.err", dir);
        char *e = test_slurp(p);
        CHECK(e && strstr(e, "im5.png"), "single run names the missing mask");
        free(e);
        if (proto == 0) {
            /* shards 0 and 1 by I/N, shard 2 as task 7 of an array 5..7 */
            for (int s = 0; s < 3; s++) {
                snprintf(cmd, sizeof cmd,
                         "%s '%s' eval %s -m '%s' --images '%s/img' --masks '%s/gt' "
                         "--shard %s -o '%s/sh/%d' > '%s/sh%d.out' 2> '%s/sh%d.err'",
                         s == 2 ? "SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_MIN=5 "
                                  "SLURM_ARRAY_TASK_COUNT=3"
                                : "",
                         test_bin(), common, model, dir, dir,
                         s == 0 ? "0/3" : s == 1 ? "1/3" : "slurm", dir, s, dir, s, dir, s);
                /* shard 1 holds im4..im6: the failed image makes it exit 1 */
                CHECK(run(cmd) == (s == 1 ? 1 : 0), "shard %d exit status", s);
                snprintf(p, sizeof p, "%s/sh%d.out", dir, s);
                char *o = test_slurp(p);
                CHECK(o && o[0] == '\0', "a shard prints no report");
                free(o);
                snprintf(p, sizeof p, "%s/sh/%d/" AS_EVAL_SHARD_FILE, dir, s);
                CHECK(access(p, F_OK) == 0, "shard %d wrote %s", s, p);
            }
            snprintf(p, sizeof p, "%s/sh2.err", dir);
            char *o = test_slurp(p);
            CHECK(o && strstr(o, "shard 2 of 3"), "--shard slurm: task 7 of 5..7 = shard 2: %s",
                  o ? o : "");
            free(o);
        }
        snprintf(cmd, sizeof cmd,
                 "'%s' merge %s -o '%s/merged.json' '%s/sh/2' '%s/sh/0' '%s/sh/1' "
                 "> '%s/merged.txt' 2> '%s/merged.err'",
                 test_bin(), proto ? "--protocol hungarian" : "", dir, dir, dir, dir, dir, dir);
        CHECK(run(cmd) == 1, "%s: merge exits 1 like the single run (a failed image)", pn);
        snprintf(p, sizeof p, "%s/one.txt", dir);
        snprintf(q, sizeof q, "%s/merged.txt", dir);
        char *t = test_slurp(p);
        CHECK(t && strstr(t, "mIoU") && strstr(t, "images          8"),
              "single report: %s", t ? t : "");
        free(t);
        CHECK(same_file(p, q), "%s: merged report = single report", pn);
        snprintf(p, sizeof p, "%s/one.json", dir);
        snprintf(q, sizeof q, "%s/merged.json", dir);
        CHECK(same_file(p, q), "%s: merged JSON = single JSON, byte for byte", pn);
        snprintf(p, sizeof p, "%s/merged.err", dir);
        char *e2 = test_slurp(p);
        CHECK(e2 && strstr(e2, "1 of 9 images failed"), "merge counts the failed image: %s",
              e2 ? e2 : "");
        free(e2);
    }

    /* without --shard, -o DIR keeps the data of the whole list (shard 0 of 1) and
     * the report is still printed; twice in a row, the second run evaluates again */
    for (int twice = 0; twice < 2; twice++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' eval %s -m '%s' --images '%s/img' --masks '%s/gt' --protocol hungarian "
                 "-o '%s/whole' > '%s/whole.txt' 2>/dev/null",
                 test_bin(), common, model, dir, dir, dir, dir);
        CHECK(run(cmd) == 1, "unsharded -o: exit 1 (a failed image)");
        snprintf(p, sizeof p, "%s/one.txt", dir); /* the Hungarian single run */
        snprintf(q, sizeof q, "%s/whole.txt", dir);
        CHECK(same_file(p, q), "unsharded -o prints the report (run %d)", twice + 1);
    }
    snprintf(cmd, sizeof cmd, "'%s' merge '%s/whole' > '%s/whole-merged.txt' 2>/dev/null",
             test_bin(), dir, dir);
    CHECK(run(cmd) == 1, "merge of the one shard: exit 1 (a failed image)");
    snprintf(q, sizeof q, "%s/whole-merged.txt", dir);
    CHECK(same_file(p, q), "one shard of 1 merged = the single report (its protocol recorded)");

    /* a rerun skips the finished shard 0 (file untouched) */
    snprintf(p, sizeof p, "%s/sh/0/" AS_EVAL_SHARD_FILE, dir);
    struct stat st0, st1;
    CHECK(stat(p, &st0) == 0, "stat");
    snprintf(cmd, sizeof cmd,
             "'%s' eval %s -m '%s' --images '%s/img' --masks '%s/gt' --shard 0/3 -o '%s/sh/0' "
             "2> '%s/rerun.err'",
             test_bin(), common, model, dir, dir, dir, dir);
    CHECK(run(cmd) == 0, "rerun of a finished shard exits 0");
    CHECK(stat(p, &st1) == 0 && st1.st_ino == st0.st_ino, "the finished shard file was kept");
    snprintf(q, sizeof q, "%s/rerun.err", dir);
    char *e = test_slurp(q);
    CHECK(e && strstr(e, "skipped"), "rerun says it skipped: %s", e ? e : "");
    free(e);
    /* other options into the same folder: refused, file kept */
    snprintf(cmd, sizeof cmd,
             "'%s' eval %s -m '%s' --images '%s/img' --masks '%s/gt' --eval-size 50 --shard 0/3 "
             "-o '%s/sh/0' 2> '%s/rerun.err'",
             test_bin(), common, model, dir, dir, dir, dir);
    CHECK(run(cmd) == 1, "another run's shard in the folder: exit 1");
    e = test_slurp(q);
    CHECK(e && strstr(e, "options") && strstr(e, "--overwrite"), "names what differs: %s",
          e ? e : "");
    free(e);
    CHECK(stat(p, &st1) == 0 && st1.st_ino == st0.st_ino, "the other run's file was kept");

    /* merges that must fail, naming the shard */
    snprintf(cmd, sizeof cmd,
             "'%s' eval %s -m '%s' --prototypes 5 --images '%s/img' --masks '%s/gt' "
             "--shard 1/3 -o '%s/foreign' 2>/dev/null; "
             "'%s' eval %s -m '%s' --images '%s/img' --masks '%s/gt' --size 48 "
             "--shard 1/3 -o '%s/foreign2' 2>/dev/null; true",
             test_bin(), common, other, dir, dir, dir, test_bin(), common, model, dir, dir, dir);
    run(cmd);
    const struct {
        const char *dirs, *want, *want2;
    } bad[] = {
        { "sh/0 sh/2", "shard 1 of 3 is missing", NULL },
        { "sh/0 sh/1 sh/2 sh/1", "both shard 1 of 3", NULL },
        { "sh/0 foreign sh/2", "foreign", "model weights" },
        { "sh/0 foreign2 sh/2", "foreign2 is a foreign shard", "options" },
        { "sh/0 img sh/2", "img is not an eval shard folder", NULL },
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        char list[512] = "";
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", bad[t].dirs);
        for (char *tok = strtok(tmp, " "); tok; tok = strtok(NULL, " ")) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, " '%s/%s'", dir, tok);
        }
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' merge %s > /dev/null 2> '%s/bad.err'", dir,
                 test_bin(), list, dir);
        CHECK(run(cmd) == 1, "bad merge %zu exits 1", t);
        snprintf(q, sizeof q, "%s/bad.err", dir);
        e = test_slurp(q);
        CHECK(e && strstr(e, bad[t].want) && (!bad[t].want2 || strstr(e, bad[t].want2)),
              "bad merge %zu names '%s': %s", t, bad[t].want, e ? e : "");
        free(e);
    }
    /* usage errors */
    snprintf(cmd, sizeof cmd, "'%s' eval -m '%s' --images '%s/img' --masks '%s/gt' --shard 0/3 "
             "2>/dev/null", test_bin(), model, dir, dir);
    CHECK(run(cmd) == 2, "--shard without -o is a usage error");
    snprintf(cmd, sizeof cmd, "'%s' eval -m '%s' --images '%s/img' --masks '%s/gt' --shard 3/3 "
             "-o x 2>/dev/null", test_bin(), model, dir, dir);
    CHECK(run(cmd) == 2, "--shard 3/3 is a usage error");
    snprintf(cmd, sizeof cmd, "env -u SLURM_ARRAY_TASK_ID '%s' eval -m '%s' --images '%s/img' "
             "--masks '%s/gt' --shard slurm -o x 2> '%s/bad.err'", test_bin(), model, dir, dir,
             dir);
    CHECK(run(cmd) == 2, "--shard slurm outside an array is a usage error");
    CHECK(test_tmpdir_remove(dir) == 0, "cleanup");
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "cli")) {
        test_cli();
        return check_report("eval_shards_cli");
    }
    test_confusion_cells();
    test_merge_exact();
    test_merge_refused();
    test_hostile_files();
    test_fingerprint();
    return check_report("eval_shards");
}
