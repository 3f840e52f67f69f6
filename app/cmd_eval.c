/* cmd_eval: 'alignseg eval' — segment a folder of images and score the
 * predictions against ground-truth class maps (mIoU, per-class IoU, pixel
 * accuracy) with the reference (per-image, many-to-one) or the Hungarian
 * (dataset-wide, one-to-one) protocol of core/output/eval.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "eval.h"
#include "evalshard.h"
#include "image.h"
#include "merge.h"
#include "runlist.h"
#include "segment.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: alignseg eval -m MODEL [-b BACKBONE] --images DIR --masks DIR [OPTIONS]\n"
            "\n"
            "Segment every image in --images (.jpg, .jpeg, .png) and compare with the mask\n"
            "--masks/NAME.png of the same base name (8-bit gray or palette PNG holding class\n"
            "indices, e.g. VOC SegmentationClass). As the published evaluation: the image is\n"
            "resized to the model input (--size, default 448), patch labels are upsampled\n"
            "(nearest) to 100x100, the mask is resized (nearest) to the input size and then to\n"
            "100x100, and pixels with the --ignore value are left out.\n"
            "\n"
            "Protocols:\n"
            "  reference  per image: every predicted cluster goes to the class it overlaps most\n"
            "             (many-to-one, by precision); mIoU = mean over images of the mean IoU\n"
            "             of the classes present in the image (the published numbers)\n"
            "  hungarian  one one-to-one matching of clusters to classes over the whole dataset\n"
            "             (confusion matrix, Hungarian algorithm, most matched pixels); mIoU =\n"
            "             mean IoU over the classes that occur\n"
            "\n"
            "%s"
            "Evaluation:\n"
            "      --images DIR       folder of images (required)\n"
            "      --masks DIR        folder of ground-truth masks NAME.png (required)\n"
            "      --ignore V         ground-truth value to ignore (default 255; -1 = none)\n"
            "      --protocol P       reference (default) or hungarian\n"
            "      --eval-size N      side of the square maps compared (default 100)\n"
            "      --json FILE        also write the report as JSON\n"
            "%s"
            "  -o, --output DIR       write the confusion data of the images evaluated into\n"
            "                         DIR/" AS_EVAL_SHARD_FILE " (required with --shard; a\n"
            "                         sharded run prints no report: 'alignseg merge' of the N\n"
            "                         folders prints it, exactly the single run's)\n"
            "      --overwrite        redo a shard DIR has already (see below)\n"
            "  -q, --quiet            no progress lines\n"
            "  -h, --help             this help\n"
            "\n"
            "An unreadable image or a missing or bad mask gives a one-line error naming the file;\n"
            "the other images are still scored and the exit status is 1. Usage errors exit 2.\n"
            "\n"
            "Sharded: every task evaluates its block of the sorted list and writes, atomically,\n"
            "the per-image confusion (cluster, class, pixels) with the alignseg version, a\n"
            "fingerprint of the model's weights and the options; 'alignseg merge -o REPORT.json\n"
            "DIR...' adds the N shards' confusions in list order and prints the report a single\n"
            "run prints, for the per-image protocol and for Hungarian matching over the whole\n"
            "set. A task run again into a DIR that holds its finished shard (same run, same\n"
            "images, none failed) skips it; a DIR holding another run's shard is an error naming\n"
            "what differs, unless --overwrite.\n"
            "\n"
            "Example:\n"
            "  alignseg eval -m alignseg_vits16.pth --images VOC2012/val/JPEGImages \\\n"
            "      --masks VOC2012/val/SegmentationClass --json voc_val.json\n"
            "  sbatch --array=0-7 --wrap 'alignseg eval -m m.pth --images val/img --masks val/gt \\\n"
            "      --shard slurm -o evalshards/$SLURM_ARRAY_TASK_ID'\n"
            "  alignseg merge -o voc_val.json evalshards/*\n",
            cli_model_help, runlist_shard_help);
}

static bool is_image_name(const char *n)
{
    const char *dot = strrchr(n, '.');
    if (!dot || dot == n || n[0] == '.')
        return false;
    char ext[8] = { 0 };
    size_t l = strlen(dot + 1);
    if (l == 0 || l >= sizeof ext)
        return false;
    for (size_t i = 0; i < l && i < sizeof ext - 1; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    return !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of image file names in dir; returns count or -1. */
static int list_images(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "alignseg eval: %s: cannot open folder: %s\n", dir, strerror(errno));
        return -1;
    }
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_image_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                break;
            v = nv;
        }
        v[n] = strdup(e->d_name);
        if (!v[n])
            break;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return (int)n;
}

typedef struct {
    const AsModel *model;
    const CliModelArgs *a;
    int eval_size;
} EvalCtx;

/* The confusion of one image (eval.h) into *conf. */
static int eval_one(const EvalCtx *c, const AsEval *ev, const char *img_path,
                    const char *mask_path, AsEvalConfusion *conf, AsError *err)
{
    AsImage img = { 0 };
    AsResult res;
    memset(&res, 0, sizeof res);
    uint8_t *mask = NULL, *mask_in = NULL, *gt = NULL;
    int32_t *patch = NULL, *pred = NULL;
    int mw = 0, mh = 0, S = c->eval_size;
    int rc = as_png_read_u8(mask_path, &mask, &mw, &mh, err);
    if (rc == 0)
        rc = as_image_load(img_path, &img, err);
    if (rc == 0 && (mw != img.w || mh != img.h))
        rc = as_error_set(err, AS_ERR_SHAPE, "%s: mask is %dx%d but image %s is %dx%d", mask_path,
                          mw, mh, img_path, img.w, img.h);
    if (rc == 0) {
        rc = as_segment_image(c->model, &img, &c->a->sopt, &res, err);
        if (rc)
            as_error_prefix(err, "%s: ", img_path);
    }
    if (rc == 0) {
        patch = malloc(sizeof(int32_t) * (size_t)res.n);
        pred = malloc(sizeof(int32_t) * (size_t)S * S);
        gt = malloc((size_t)S * S);
        mask_in = malloc((size_t)res.in_w * res.in_h);
        if (!patch || !pred || !gt || !mask_in)
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", img_path);
    }
    if (rc == 0) {
        AsMergeOptions mo = { c->a->merge_to, c->a->merge_threshold };
        int g = 0;
        rc = as_result_relabel(&res, &mo, false, 0, 0, patch, NULL, NULL, &g, err);
        if (rc)
            as_error_prefix(err, "%s: ", img_path);
    }
    if (rc == 0) {
        as_resize_nearest_torch_i32(patch, res.gw, res.gh, pred, S, S);
        as_resize_nearest_pil_u8(mask, mw, mh, mask_in, res.in_w, res.in_h);
        as_resize_nearest_torch_u8(mask_in, res.in_w, res.in_h, gt, S, S);
        rc = as_eval_confusion(ev, pred, gt, (size_t)S * S, conf, err);
    }
    free(mask);
    free(mask_in);
    free(gt);
    free(patch);
    free(pred);
    as_result_free(&res);
    as_image_free(&img);
    return rc;
}

/* The options that change the scores, canonical (recorded in a shard:
 * `alignseg merge` refuses shards made with others). */
static void settings_string(const CliModelArgs *a, int ignore, int eval_size, char *buf,
                            size_t len)
{
    snprintf(buf, len,
             "size=%d long_side=%d prototypes=%d threshold=%.9g encoder_heads=%d "
             "decoder_heads=%d decoder_chain=%d merge_to=%d merge_threshold=%.9g ignore=%d "
             "eval_size=%d",
             a->sopt.size, a->sopt.long_side, a->sopt.prototypes, (double)a->sopt.mass_threshold,
             a->mopt.encoder_heads, a->mopt.decoder_heads, (int)a->mopt.decoder_chain,
             a->merge_to, (double)a->merge_threshold, ignore, eval_size);
}

/* -o DIR holds a shard already: 1 = this very shard, finished (skip it);
 * 0 = none, or one to redo (failed images; or --overwrite); -1 = another
 * run's or unreadable (message printed). */
static int existing_shard(const char *dir, const AsEvalShard *want, char **names, int n,
                          bool overwrite)
{
    if (!as_eval_shard_exists(dir))
        return 0;
    AsEvalShard old;
    AsError err;
    as_error_clear(&err);
    if (as_eval_shard_read(dir, &old, &err)) {
        if (overwrite)
            return 0;
        fprintf(stderr, "alignseg eval: %s; give another folder, or --overwrite to replace it\n",
                err.msg);
        return -1;
    }
    const char *what = as_eval_shard_differs(&old, want);
    if (!what && old.shard_index != want->shard_index)
        what = "shard index";
    if (!what && old.nimages != (size_t)n)
        what = "image list";
    for (int k = 0; !what && k < n; k++)
        if (strcmp(old.images[k].name, names[k]))
            what = "image list";
    size_t failed = as_eval_shard_failed(&old);
    as_eval_shard_free(&old);
    if (what && !overwrite) {
        fprintf(stderr,
                "alignseg eval: %s holds the eval shard of another run (its %s differs); give "
                "another folder, or --overwrite to replace it\n",
                dir, what);
        return -1;
    }
    if (what || overwrite)
        return 0;
    if (failed) {
        fprintf(stderr, "alignseg eval: %s: %zu images of this shard had failed; evaluating it "
                "again\n", dir, failed);
        return 0;
    }
    return 1;
}

int cmd_eval(int argc, char **argv)
{
    CliModelArgs a;
    cli_model_args_init(&a);
    const char *images_dir = NULL, *masks_dir = NULL, *json = NULL, *outdir = NULL;
    int ignore = 255, eval_size = 100;
    AsEvalProtocol proto = AS_EVAL_REFERENCE;
    bool quiet = false, overwrite = false;
    RunShard shard = { 0, 0 };
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int r = cli_model_option(&a, "eval", argc, argv, &i);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(o, "-q") || !strcmp(o, "--quiet")) {
            quiet = true;
            takes = false;
        } else if (!strcmp(o, "--overwrite")) {
            overwrite = true;
            takes = false;
        } else if (!strcmp(o, "--images")) {
            images_dir = v;
        } else if (!strcmp(o, "--masks")) {
            masks_dir = v;
        } else if (!strcmp(o, "--json")) {
            json = v;
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            outdir = v;
        } else if (!strcmp(o, "--shard")) {
            if (runlist_parse_shard("eval", v, &shard) != 0)
                return 2;
        } else if (!strcmp(o, "--ignore")) {
            if (!cli_parse_int("eval", o, v, -1, 255, &ignore))
                return 2;
        } else if (!strcmp(o, "--eval-size")) {
            if (!cli_parse_int("eval", o, v, 1, 4096, &eval_size))
                return 2;
        } else if (!strcmp(o, "--protocol")) {
            if (v && !strcmp(v, "reference")) {
                proto = AS_EVAL_REFERENCE;
            } else if (v && !strcmp(v, "hungarian")) {
                proto = AS_EVAL_HUNGARIAN;
            } else {
                fprintf(stderr, "alignseg eval: --protocol is reference or hungarian (got '%s')\n",
                        v ? v : "");
                return 2;
            }
        } else {
            fprintf(stderr, "alignseg eval: unknown argument '%s' (see 'alignseg eval --help')\n",
                    o);
            return 2;
        }
        if (takes) {
            if (!v) {
                fprintf(stderr, "alignseg eval: %s needs a value\n", o);
                return 2;
            }
            i++;
        }
    }
    const bool sharded = shard.count > 0;
    if (!images_dir || !masks_dir) {
        fprintf(stderr, "alignseg eval: give --images DIR and --masks DIR\n");
        return 2;
    }
    if (sharded && !outdir) {
        fprintf(stderr, "alignseg eval: --shard needs -o DIR for the shard's confusion data\n");
        return 2;
    }
    if (sharded && json) {
        fprintf(stderr, "alignseg eval: --json reports on the whole list: give it to 'alignseg "
                "merge' (-o FILE), not to a shard\n");
        return 2;
    }
    if (!a.model) {
        fprintf(stderr, "alignseg eval: no model: give -m FILE (see 'alignseg eval --help')\n");
        return 2;
    }
    char **names = NULL;
    int total = list_images(images_dir, &names);
    if (total < 0)
        return 1;
    if (total == 0) {
        fprintf(stderr, "alignseg eval: %s: no .jpg/.jpeg/.png images\n", images_dir);
        free(names);
        return 1;
    }
    /* this process's block of the sorted list (the names stay owned by
     * names[0..total) whatever order the block leaves them in) */
    char **todo = malloc(sizeof *todo * (size_t)total);
    if (!todo) {
        fprintf(stderr, "alignseg eval: out of memory\n");
        for (int k = 0; k < total; k++)
            free(names[k]);
        free(names);
        return 1;
    }
    memcpy(todo, names, sizeof *todo * (size_t)total);
    int n = runlist_apply_shard((const char **)todo, total, &shard);
    AsModel *model = NULL;
    AsError err;
    as_error_clear(&err);
    AsEval ev;
    memset(&ev, 0, sizeof ev);
    AsEvalShard sh;
    as_eval_shard_init(&sh);
    int status = 0;
    if (outdir && cli_mkdirs("eval", outdir) != 0) {
        status = 1;
        goto out;
    }
    if (cli_load_model(&a, "eval", &model) != 0) {
        status = 1;
        goto out;
    }
    /* clusters: the model's prototypes (decoder) or the k-means k */
    int nq = model->has_decoder ? model->dec.cfg.queries
                                : (a.sopt.prototypes > 0 ? a.sopt.prototypes : 5);
    if (as_eval_init(&ev, nq, ignore, &err)) {
        fprintf(stderr, "alignseg eval: %s\n", err.msg);
        status = 1;
        goto out;
    }
    if (outdir) {
        char fp[17], settings[512];
        settings_string(&a, ignore, eval_size, settings, sizeof settings);
        if (as_eval_model_fingerprint(model, fp, &err) ||
            as_eval_shard_set(&sh, "alignseg " ALIGNSEG_VERSION, model->source, fp, settings,
                              &err)) {
            fprintf(stderr, "alignseg eval: %s\n", err.msg);
            status = 1;
            goto out;
        }
        sh.clusters = nq;
        sh.ignore = ignore;
        sh.protocol = proto;
        sh.shard_index = sharded ? shard.index : 0;
        sh.shard_count = sharded ? shard.count : 1;
        sh.total_images = total;
        int had = existing_shard(outdir, &sh, todo, n, overwrite);
        if (had < 0) {
            status = 1;
            goto out;
        }
        if (had > 0 && sharded) { /* (an unsharded run evaluates again: it prints the report) */
            fprintf(stderr,
                    "alignseg eval: %s has shard %d of %d of this run already (%d images, the "
                    "same model, options and list): skipped (--overwrite evaluates it again)\n",
                    outdir, sh.shard_index, sh.shard_count, n);
            goto out;
        }
    }
    EvalCtx ctx = { model, &a, eval_size };
    int failed = 0;
    for (int k = 0; k < n; k++) {
        char ip[PATH_MAX], mp[PATH_MAX], stem[PATH_MAX];
        const char *dot = strrchr(todo[k], '.');
        snprintf(stem, sizeof stem, "%.*s", (int)(dot - todo[k]), todo[k]);
        AsEvalConfusion conf = { NULL, 0 };
        as_error_clear(&err);
        int rc = 0;
        if (snprintf(ip, sizeof ip, "%s/%s", images_dir, todo[k]) >= (int)sizeof ip ||
            snprintf(mp, sizeof mp, "%s/%s.png", masks_dir, stem) >= (int)sizeof mp)
            rc = as_error_set(&err, AS_ERR_ARG, "%s: path too long", todo[k]);
        if (rc == 0)
            rc = eval_one(&ctx, &ev, ip, mp, &conf, &err);
        if (rc == 0 && outdir)
            rc = as_eval_shard_add(&sh, todo[k], &conf, NULL, &err);
        else if (rc == 0)
            rc = as_eval_add_confusion(&ev, &conf, &err);
        as_eval_confusion_free(&conf);
        if (rc != 0) {
            fprintf(stderr, "alignseg eval: %s\n", err.msg);
            failed++;
            if (outdir && as_eval_shard_add(&sh, todo[k], NULL, err.msg, &err)) {
                fprintf(stderr, "alignseg eval: %s\n", err.msg);
                status = 1;
                goto out;
            }
            continue;
        }
        if (!quiet)
            fprintf(stderr, "[%d/%d] %s\n", k + 1, n, todo[k]);
    }
    if (outdir) {
        as_error_clear(&err);
        if (as_eval_shard_write(&sh, outdir, &err)) {
            fprintf(stderr, "alignseg eval: %s\n", err.msg);
            status = 1;
            goto out;
        }
        /* the report of an unsharded run with -o: from the data just written */
        for (size_t k = 0; !sharded && k < sh.nimages; k++)
            if (!sh.images[k].error && as_eval_add_confusion(&ev, &sh.images[k].conf, &err)) {
                fprintf(stderr, "alignseg eval: %s\n", err.msg);
                status = 1;
                goto out;
            }
        if (!quiet || sharded)
            fprintf(stderr, "alignseg eval: shard %d of %d: %d images (%d failed) -> %s/%s%s\n",
                    sh.shard_index, sh.shard_count, n, failed, outdir, AS_EVAL_SHARD_FILE,
                    sharded ? "; join the shards with 'alignseg merge'" : "");
    }
    if (!sharded) {
        AsEvalReport rep;
        as_error_clear(&err);
        if (as_eval_report(&ev, proto, &rep, &err)) {
            fprintf(stderr, "alignseg eval: %s\n", err.msg);
            status = 1;
        } else {
            as_eval_report_print(&rep, stdout);
            if (json) {
                as_error_clear(&err);
                if (as_eval_report_json(&rep, json, &err)) {
                    fprintf(stderr, "alignseg eval: %s\n", err.msg);
                    status = 1;
                }
            }
            as_eval_report_free(&rep);
        }
    }
    if (failed) {
        fprintf(stderr, "alignseg eval: %d of %d images failed\n", failed, n);
        status = 1;
    }
out:
    as_eval_shard_free(&sh);
    as_eval_free(&ev);
    as_model_free(model);
    for (int k = 0; k < total; k++)
        free(names[k]);
    free(names);
    free(todo);
    return status;
}
