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
#include "image.h"
#include "merge.h"
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
            "  -q, --quiet            no progress lines\n"
            "  -h, --help             this help\n"
            "\n"
            "An unreadable image or a missing or bad mask gives a one-line error naming the file;\n"
            "the other images are still scored and the exit status is 1. Usage errors exit 2.\n"
            "\n"
            "Example:\n"
            "  alignseg eval -m alignseg_vits16.pth --images VOC2012/val/JPEGImages \\\n"
            "      --masks VOC2012/val/SegmentationClass --json voc_val.json\n",
            cli_model_help);
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

static int eval_one(const EvalCtx *c, AsEval *ev, const char *img_path, const char *mask_path,
                    AsError *err)
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
        rc = as_eval_add(ev, pred, gt, (size_t)S * S, err);
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

static void print_report(const AsEvalReport *r)
{
    printf("protocol        %s\n", r->protocol == AS_EVAL_HUNGARIAN ? "hungarian" : "reference");
    printf("images          %lld (%lld with labelled pixels)\n", (long long)r->nimages,
           (long long)r->nscored);
    printf("mIoU            %.4f\n", r->miou);
    printf("pixel accuracy  %.4f\n", r->pixel_acc);
    printf("per-class IoU:\n");
    for (int c = 0; c < r->nclasses; c++)
        if (!isnan(r->class_iou[c]))
            printf("  class %3d     %.4f\n", c, r->class_iou[c]);
    if (r->match) {
        printf("matching (cluster -> class):");
        for (int p = 0; p < r->num_pred; p++) {
            if (r->match[p] >= 0)
                printf(" %d->%d", p, r->match[p]);
            else
                printf(" %d->none", p);
        }
        printf("\n");
    }
}

int cmd_eval(int argc, char **argv)
{
    CliModelArgs a;
    cli_model_args_init(&a);
    const char *images_dir = NULL, *masks_dir = NULL, *json = NULL;
    int ignore = 255, eval_size = 100;
    AsEvalProtocol proto = AS_EVAL_REFERENCE;
    bool quiet = false;
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
        } else if (!strcmp(o, "--images")) {
            images_dir = v;
        } else if (!strcmp(o, "--masks")) {
            masks_dir = v;
        } else if (!strcmp(o, "--json")) {
            json = v;
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
    if (!images_dir || !masks_dir) {
        fprintf(stderr, "alignseg eval: give --images DIR and --masks DIR\n");
        return 2;
    }
    if (!a.model) {
        fprintf(stderr, "alignseg eval: no model: give -m FILE (see 'alignseg eval --help')\n");
        return 2;
    }
    char **names = NULL;
    int n = list_images(images_dir, &names);
    if (n < 0)
        return 1;
    if (n == 0) {
        fprintf(stderr, "alignseg eval: %s: no .jpg/.jpeg/.png images\n", images_dir);
        free(names);
        return 1;
    }
    AsModel *model = NULL;
    if (cli_load_model(&a, "eval", &model) != 0) {
        for (int k = 0; k < n; k++)
            free(names[k]);
        free(names);
        return 1;
    }
    AsError err;
    as_error_clear(&err);
    AsEval ev;
    /* clusters: the model's prototypes (decoder) or the k-means k */
    int nq = model->has_decoder ? model->dec.cfg.queries
                                : (a.sopt.prototypes > 0 ? a.sopt.prototypes : 5);
    int status = 0;
    if (as_eval_init(&ev, nq, ignore, &err)) {
        fprintf(stderr, "alignseg eval: %s\n", err.msg);
        status = 1;
        goto out;
    }
    EvalCtx ctx = { model, &a, eval_size };
    int failed = 0;
    for (int k = 0; k < n; k++) {
        char ip[PATH_MAX], mp[PATH_MAX], stem[PATH_MAX];
        const char *dot = strrchr(names[k], '.');
        snprintf(stem, sizeof stem, "%.*s", (int)(dot - names[k]), names[k]);
        if (snprintf(ip, sizeof ip, "%s/%s", images_dir, names[k]) >= (int)sizeof ip ||
            snprintf(mp, sizeof mp, "%s/%s.png", masks_dir, stem) >= (int)sizeof mp) {
            fprintf(stderr, "alignseg eval: %s: path too long\n", names[k]);
            failed++;
            continue;
        }
        as_error_clear(&err);
        if (eval_one(&ctx, &ev, ip, mp, &err) != 0) {
            fprintf(stderr, "alignseg eval: %s\n", err.msg);
            failed++;
            continue;
        }
        if (!quiet)
            fprintf(stderr, "[%d/%d] %s\n", k + 1, n, names[k]);
    }
    AsEvalReport rep;
    as_error_clear(&err);
    if (as_eval_report(&ev, proto, &rep, &err)) {
        fprintf(stderr, "alignseg eval: %s\n", err.msg);
        status = 1;
    } else {
        print_report(&rep);
        if (json) {
            as_error_clear(&err);
            if (as_eval_report_json(&rep, json, &err)) {
                fprintf(stderr, "alignseg eval: %s\n", err.msg);
                status = 1;
            }
        }
        as_eval_report_free(&rep);
    }
    if (failed) {
        fprintf(stderr, "alignseg eval: %d of %d images failed\n", failed, n);
        status = 1;
    }
    as_eval_free(&ev);
out:
    as_model_free(model);
    for (int k = 0; k < n; k++)
        free(names[k]);
    free(names);
    return status;
}
