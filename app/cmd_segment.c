/* cmd_segment: 'alignseg segment' — segment images and write, per image,
 * NAME.labels.png (indexed, VOC palette, original size), NAME.overlay.png
 * (photo blended with label colours, label and foreground contours) and with
 * --dump the model-size arrays NAME/<array>.npy named as the reference files. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "atomic.h"
#include "cli.h"
#include "commands.h"
#include "image.h"
#include "merge.h"
#include "npy.h"
#include "pipeline.h"
#include "runlist.h"
#include "segment.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: alignseg segment -m MODEL [-b BACKBONE] [OPTIONS] [-o OUTDIR] [--dump] IMAGE...\n"
            "\n"
            "Segment each image (PNG or JPEG) and write into OUTDIR (default '.'):\n"
            "  NAME.labels.png   8-bit indexed PNG at the original image size; pixel value =\n"
            "                    prototype index (group index after --merge-*), coloured with\n"
            "                    the PASCAL VOC palette as the viewer shows it (value k has\n"
            "                    VOC colour k+1, so no prototype is black)\n"
            "  NAME.overlay.png  the photo blended with the label colours, label borders and\n"
            "                    the foreground (attention-map) contour drawn in white\n"
            "With --dump also NAME/<array>.npy at the model input size: tokens, cls_token, cls_attn,\n"
            "cls_attn_mean, fg_mask, queries, similarity, assign, labels_patch (int32),\n"
            "labels_full (int32), with the names and shapes of the reference arrays.\n"
            "\n"
            "%s"
            "Output:\n"
            "  -o, --output DIR       output folder (created if missing; default '.')\n"
            "      --dump             also write the .npy arrays\n"
            "      --overwrite        replace outputs that exist already\n"
            "%s"
            "  -q, --quiet            no progress lines\n"
            "  -h, --help             this help\n"
            "\n"
            "Outputs are never replaced silently. The outputs of one image appear together\n"
            "(each file is written to a temporary, synced, then renamed), so an image whose\n"
            "outputs all exist was finished by an earlier run: it is skipped (a re-run after\n"
            "a crash or kill redoes only the missing images); an image for which only some\n"
            "exist is an error naming the file. --overwrite redoes and replaces them. Two\n"
            "inputs with the same file name without extension (a/x.png b/x.jpg) would write\n"
            "the same outputs: that is a usage error naming both, and nothing is written.\n"
            "\n"
            "A bad image or checkpoint gives a one-line error naming the file; the other images\n"
            "are still processed and the exit status is 1. Usage errors exit with 2.\n"
            "\n"
            "Example:\n"
            "  alignseg segment -m alignseg_vits16.pth -o out data/samples/chelsea.png\n"
            "  alignseg segment -m dino_deitsmall16_pretrain.pth --prototypes 6 photo.jpg\n",
            cli_model_help, runlist_shard_help);
}

/* Stage DIR/NAME.npy (rel to the batch root) in the batch. */
static int put_npy(AsAtomicBatch *b, const char *stem, const char *name, AsDtype dt, int ndim,
                   const int64_t *shape, const void *d, AsError *err)
{
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/%s.npy", stem, name);
    uint8_t *buf;
    size_t len;
    int rc = as_npy_encode(rel, dt, ndim, shape, d, &buf, &len, err);
    if (!rc)
        rc = as_atomic_batch_put(b, rel, buf, len, err);
    free(buf);
    return rc;
}

static const char *const dump_names[] = { "tokens", "cls_token", "cls_attn", "cls_attn_mean",
                                          "fg_mask", "queries", "similarity", "assign",
                                          "labels_patch", "labels_full" };
#define NDUMP (sizeof dump_names / sizeof dump_names[0])

static int write_dump(AsAtomicBatch *b, const char *stem, const AsResult *r, AsError *err)
{
    int rc = 0;
    int64_t s_nd[2] = { r->n, r->dim }, s_d[1] = { r->dim }, s_hn[2] = { r->heads, r->n },
            s_g[2] = { r->gh, r->gw }, s_qd[2] = { r->q, r->dim }, s_nq[2] = { r->n, r->q },
            s_hw[2] = { r->in_h, r->in_w };
    float *fg = malloc((size_t)r->n * sizeof *fg);
    if (!fg)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < r->n; i++)
        fg[i] = (float)r->fg_mask[i];
    const struct {
        AsDtype dt;
        int nd;
        const int64_t *shape;
        const void *d;
    } a[NDUMP] = { { AS_DT_F32, 2, s_nd, r->tokens },       { AS_DT_F32, 1, s_d, r->cls_token },
                   { AS_DT_F32, 2, s_hn, r->cls_attn },     { AS_DT_F32, 2, s_g, r->cls_attn_mean },
                   { AS_DT_F32, 2, s_g, fg },               { AS_DT_F32, 2, s_qd, r->queries },
                   { AS_DT_F32, 2, s_nq, r->similarity },   { AS_DT_F32, 2, s_nq, r->assign },
                   { AS_DT_I32, 2, s_g, r->labels_patch },  { AS_DT_I32, 2, s_hw, r->labels_full } };
    for (size_t i = 0; i < NDUMP && !rc; i++)
        rc = put_npy(b, stem, dump_names[i], a[i].dt, a[i].nd, a[i].shape, a[i].d, err);
    free(fg);
    return rc;
}

/* Photo blended with the label colours (as_colourise, 50%); label borders
 * darkened; the foreground contour (patch mask, nearest upsampled) in white. */
static void draw_overlay(const AsImage *img, const int32_t *labels, const AsResult *r,
                         uint8_t *out)
{
    int w = img->w, h = img->h;
    as_colourise(labels, w, h, img->rgb, 0.5f, 3, out);
    for (int y = 0; y < h; y++) {
        int py = (int)((long)y * r->gh / h);
        int py1 = y + 1 < h ? (int)((long)(y + 1) * r->gh / h) : py;
        for (int x = 0; x < w; x++) {
            int px = (int)((long)x * r->gw / w);
            int px1 = x + 1 < w ? (int)((long)(x + 1) * r->gw / w) : px;
            long i = (long)y * w + x;
            uint8_t *o = out + 3 * i;
            int fg = r->fg_mask[py * r->gw + px];
            if (fg != r->fg_mask[py * r->gw + px1] || fg != r->fg_mask[py1 * r->gw + px]) {
                o[0] = o[1] = o[2] = 255;
            } else if ((x + 1 < w && labels[i + 1] != labels[i]) ||
                       (y + 1 < h && labels[i + w] != labels[i])) {
                o[0] /= 3;
                o[1] /= 3;
                o[2] /= 3;
            }
        }
    }
}

/* The outputs of one image, relative to the output folder. */
static int output_names(const char *stem, bool dump, char names[][PATH_MAX], int max)
{
    int n = 0;
    snprintf(names[n++], PATH_MAX, "%s.labels.png", stem);
    snprintf(names[n++], PATH_MAX, "%s.overlay.png", stem);
    for (size_t i = 0; dump && i < NDUMP && n < max; i++)
        snprintf(names[n++], PATH_MAX, "%s/%s.npy", stem, dump_names[i]);
    return n;
}

enum { KEEP_NONE, KEEP_ALL, KEEP_SOME };

/* Which of the image's outputs exist already: none, all (a finished run:
 * they are committed together), or some (*which names the first). */
static int existing_outputs(const char *outdir, const char *stem, bool dump, char *which,
                            size_t len)
{
    char names[2 + NDUMP][PATH_MAX];
    int n = output_names(stem, dump, names, 2 + (int)NDUMP), have = 0;
    for (int i = 0; i < n; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", outdir, names[i]);
        if (access(p, F_OK) == 0) {
            if (have++ == 0)
                snprintf(which, len, "%s", p);
        }
    }
    return have == 0 ? KEEP_NONE : have == n ? KEEP_ALL : KEEP_SOME;
}

/* One image on its way through the pipeline (pipeline.h). */
typedef struct {
    const char *path;
    int skip; /* KEEP_* before the run: only KEEP_NONE is processed */
    int rc;
    AsError err;
    AsImage img;
    AsResult r;
} Job;

typedef struct {
    const AsModel *m;
    const CliModelArgs *a;
    const char *outdir;
    AsAtomicBatch *batch;
    bool dump, quiet;
    Job *jobs;
    int failed;
} Run;

/* stage 1 (reader thread): decode */
static void stage_read(int i, void *ctx)
{
    Run *u = ctx;
    Job *j = &u->jobs[i];
    if (j->skip == KEEP_NONE)
        j->rc = as_image_load(j->path, &j->img, &j->err);
}

/* stage 2 (calling thread, core thread pool): the network */
static void stage_work(int i, void *ctx)
{
    Run *u = ctx;
    Job *j = &u->jobs[i];
    if (j->skip == KEEP_NONE && !j->rc)
        j->rc = as_segment_image(u->m, &j->img, &u->a->sopt, &j->r, &j->err);
}

static int process(const Run *u, Job *j);

/* stage 3 (writer thread): labels, overlay, encode, write */
static void stage_write(int i, void *ctx)
{
    Run *u = ctx;
    Job *j = &u->jobs[i];
    if (j->skip == KEEP_NONE && process(u, j) != 0)
        u->failed++;
    as_result_free(&j->r);
    as_image_free(&j->img);
}

static int process(const Run *u, Job *j)
{
    const AsModel *m = u->m;
    const CliModelArgs *a = u->a;
    const char *path = j->path, *outdir = u->outdir;
    AsAtomicBatch *batch = u->batch;
    const bool dump = u->dump, quiet = u->quiet;
    AsError err = j->err;
    AsImage img = j->img;
    AsResult r = j->r;
    uint8_t *labels = NULL, *overlay = NULL, *png = NULL;
    size_t pnglen = 0;
    int32_t *full = NULL;
    int rc = j->rc;
    if (rc) {
        fprintf(stderr, "alignseg segment: %s\n", err.msg);
        goto out;
    }
    char stem[256], file[PATH_MAX], name[PATH_MAX];
    cli_stem(path, stem, sizeof stem);
    long npx = (long)img.w * img.h;
    full = malloc((size_t)npx * sizeof *full);
    labels = malloc((size_t)npx);
    overlay = malloc((size_t)npx * 3);
    if (!full || !labels || !overlay) {
        fprintf(stderr, "alignseg segment: %s: out of memory\n", path);
        rc = AS_ERR_NOMEM;
        goto out;
    }
    AsMergeOptions mo;
    as_merge_options_default(&mo);
    mo.merge_to = a->merge_to;
    mo.threshold = a->merge_threshold;
    int ngroups = r.q;
    rc = as_result_relabel(&r, &mo, false, img.h, img.w, NULL, full, NULL, &ngroups, &err);
    if (rc) {
        fprintf(stderr, "alignseg segment: %s: %s\n", path, err.msg);
        goto out;
    }
    for (long i = 0; i < npx; i++)
        labels[i] = (uint8_t)full[i];
    /* value k is drawn as the viewer and the exports draw group k */
    uint8_t pal[768];
    int ncolors = ngroups > 256 ? 256 : ngroups;
    for (int k = 0; k < ncolors; k++)
        as_label_colour(k, pal + 3 * k);
    /* all outputs of the image are staged, then appear together */
    snprintf(file, sizeof file, "%s.labels.png", stem);
    snprintf(name, sizeof name, "%s/%s", outdir, file);
    rc = as_png_encode_indexed(name, labels, img.w, img.h, pal, ncolors, &png, &pnglen, &err);
    if (!rc)
        rc = as_atomic_batch_put(batch, file, png, pnglen, &err);
    free(png);
    png = NULL;
    if (!rc) {
        draw_overlay(&img, full, &r, overlay);
        snprintf(file, sizeof file, "%s.overlay.png", stem);
        snprintf(name, sizeof name, "%s/%s", outdir, file);
        rc = as_png_encode_rgb(name, overlay, img.w, img.h, &png, &pnglen, &err);
        if (!rc)
            rc = as_atomic_batch_put(batch, file, png, pnglen, &err);
    }
    if (!rc && dump) {
        snprintf(file, sizeof file, "%s/%s", outdir, stem);
        if (cli_mkdirs("segment", file) != 0)
            rc = AS_ERR_IO;
        else
            rc = write_dump(batch, stem, &r, &err);
    }
    if (!rc)
        rc = as_atomic_batch_commit(batch, &err);
    if (rc)
        fprintf(stderr, "alignseg segment: %s\n", err.msg);
    else if (!quiet)
        printf("%s: %dx%d -> input %dx%d, %d prototypes (%d after merging)%s -> %s/%s.labels.png\n",
               path, img.w, img.h, r.in_w, r.in_h, r.q, ngroups,
               m->untrained ? " (untrained model)" : "", outdir, stem);
out:
    if (rc)
        as_atomic_batch_discard(batch);
    free(png);
    free(full);
    free(labels);
    free(overlay);
    return rc;
}

int cmd_segment(int argc, char **argv)
{
    CliModelArgs a;
    cli_model_args_init(&a);
    const char *outdir = ".";
    bool dump = false, quiet = false, overwrite = false;
    RunShard shard = { 0, 0 };
    const char **images = calloc((size_t)argc, sizeof *images);
    int nimages = 0;
    if (!images)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int c = cli_model_option(&a, "segment", argc, argv, &i);
        if (c < 0) {
            free(images);
            return 2;
        }
        if (c > 0)
            continue;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            free(images);
            return 0;
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "alignseg segment: %s needs a value\n", o);
                free(images);
                return 2;
            }
            outdir = argv[++i];
        } else if (!strcmp(o, "--dump")) {
            dump = true;
        } else if (!strcmp(o, "--overwrite")) {
            overwrite = true;
        } else if (!strcmp(o, "--shard")) {
            if (runlist_parse_shard("segment", i + 1 < argc ? argv[i + 1] : NULL, &shard) != 0) {
                free(images);
                return 2;
            }
            i++;
        } else if (!strcmp(o, "-q") || !strcmp(o, "--quiet")) {
            quiet = true;
        } else if (o[0] == '-' && o[1] != '\0') {
            fprintf(stderr, "alignseg segment: unknown option '%s' (see --help)\n", o);
            free(images);
            return 2;
        } else {
            images[nimages++] = o;
        }
    }
    if (nimages == 0) {
        fprintf(stderr, "alignseg segment: no images given (see --help)\n");
        free(images);
        return 2;
    }
    if (runlist_check_unique("segment", images, nimages, outdir, "%s/%s.labels.png") != 0) {
        free(images);
        return 2;
    }
    nimages = runlist_apply_shard(images, nimages, &shard);
    AsModel *m = NULL;
    if (cli_load_model(&a, "segment", &m) != 0) {
        free(images);
        return 1;
    }
    AsAtomicBatch *batch = NULL;
    AsError err;
    if (cli_mkdirs("segment", outdir) != 0 || as_atomic_batch_open(outdir, &batch, &err) != 0) {
        if (!batch)
            fprintf(stderr, "alignseg segment: %s\n", err.msg);
        as_model_free(m);
        free(images);
        return 1;
    }
    int failed = 0, skipped = 0;
    Job *jobs = calloc((size_t)nimages, sizeof *jobs);
    if (!jobs) {
        fprintf(stderr, "alignseg segment: out of memory\n");
        as_atomic_batch_free(batch);
        as_model_free(m);
        free(images);
        return 1;
    }
    for (int i = 0; i < nimages; i++) {
        char stem[256], which[PATH_MAX];
        cli_stem(images[i], stem, sizeof stem);
        jobs[i].path = images[i];
        as_error_clear(&jobs[i].err);
        int have = overwrite ? KEEP_NONE : existing_outputs(outdir, stem, dump, which, sizeof which);
        jobs[i].skip = have;
        if (have == KEEP_ALL) {
            skipped++;
            if (!quiet)
                fprintf(stderr, "alignseg segment: %s: skipped, its outputs exist (%s ...)\n",
                        images[i], which);
        } else if (have == KEEP_SOME) {
            fprintf(stderr,
                    "alignseg segment: %s: %s exists and is not replaced (--overwrite replaces "
                    "it)\n",
                    images[i], which);
            failed++;
        }
    }
    Run run = { m, &a, outdir, batch, dump, quiet, jobs, 0 };
    pipeline_run(nimages, stage_read, stage_work, stage_write, &run);
    failed += run.failed;
    free(jobs);
    if (skipped)
        fprintf(stderr,
                "alignseg segment: %d of %d images skipped: their outputs exist in %s "
                "(--overwrite replaces them)\n",
                skipped, nimages, outdir);
    if (failed && !quiet)
        fprintf(stderr, "alignseg segment: %d of %d images failed\n", failed, nimages);
    as_atomic_batch_free(batch);
    as_model_free(m);
    free(images);
    return failed ? 1 : 0;
}
