/* cmd_export: 'alignseg export' — segment images and write the labels at the
 * original image size for annotation tools: PASCAL VOC (CVAT "Segmentation
 * mask 1.1"), one binary mask per prototype, COCO (compressed RLE) and
 * labelme polygons. The formats are described in core/output/export.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "export.h"
#include "image.h"
#include "merge.h"
#include "segment.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: alignseg export -m MODEL [-b BACKBONE] [OPTIONS] -o OUTDIR IMAGE...\n"
            "\n"
            "Segment each image (PNG or JPEG) and export the labels, at the original image\n"
            "size, for annotation tools. Into OUTDIR:\n"
            "  voc/SegmentationClass/NAME.png  8-bit indexed PNG, PASCAL VOC palette; index 0 =\n"
            "                          background, index k+1 = prototype k\n"
            "  voc/labelmap.txt        label names and colours, as CVAT's \"Segmentation mask\n"
            "                          1.1\" import expects (background first)\n"
            "  voc/ImageSets/Segmentation/default.txt  the exported NAMEs\n"
            "  masks/NAME/prototype_<k>.png  one 0/255 mask per prototype\n"
            "  coco/annotations.json   COCO with compressed RLE, area and bbox per region\n"
            "                          (one category per prototype, all images of this call)\n"
            "  labelme/NAME.json       labelme polygons (outer boundary of every connected\n"
            "                          region; holes joined by a zero-width slit)\n"
            "  alignseg-export.json    where the labels came from: alignseg version, model,\n"
            "                          and per image its size and the model input size\n"
            "NAME is the image file name without its extension.\n"
            "\n"
            "%s"
            "Export:\n"
            "  -o, --output DIR       output folder (created if missing; required)\n"
            "      --format LIST      comma-separated subset of voc,masks,coco,labelme\n"
            "                         (default: all four)\n"
            "      --foreground       label only the foreground (CLS attention mass kept by\n"
            "                         --threshold); other pixels become background\n"
            "      --polygon-tolerance E  labelme polygon simplification in pixels (default %g;\n"
            "                         0 = exact pixel outlines)\n"
            "  -q, --quiet            no progress lines\n"
            "  -h, --help             this help\n"
            "\n"
            "A bad image gives a one-line error naming the file; the other images are still\n"
            "exported and the exit status is 1. Usage errors exit with 2.\n"
            "\n"
            "Example:\n"
            "  alignseg export -m alignseg_vits16.pth --merge-to 3 --format voc,coco -o ann *.jpg\n",
            cli_model_help, AS_EXPORT_POLYGON_EPSILON);
}

static int export_one(const AsModel *model, const CliModelArgs *a, bool fg_only, AsExporter *x,
                      const char *path, AsError *err)
{
    AsImage img = { 0 };
    AsResult res;
    memset(&res, 0, sizeof res);
    int32_t *labels = NULL;
    int rc = as_image_load(path, &img, err);
    if (rc == 0) {
        rc = as_segment_image(model, &img, &a->sopt, &res, err);
        if (rc)
            as_error_prefix(err, "%s: ", path);
    }
    int g = 0;
    if (rc == 0) {
        labels = malloc(sizeof(int32_t) * (size_t)img.w * (size_t)img.h);
        if (!labels)
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory for %dx%d labels", path,
                              img.w, img.h);
    }
    if (rc == 0) {
        AsMergeOptions mo = { a->merge_to, a->merge_threshold };
        rc = as_result_relabel(&res, &mo, fg_only, img.h, img.w, NULL, labels, NULL, &g, err);
        if (rc)
            as_error_prefix(err, "%s: ", path);
    }
    if (rc == 0) {
        char name[PATH_MAX];
        cli_stem(path, name, sizeof name);
        rc = as_exporter_add(x, name, path, labels, img.w, img.h, g, err);
        if (rc == 0)
            as_exporter_set_input_size(x, res.in_w, res.in_h);
    }
    free(labels);
    as_result_free(&res);
    as_image_free(&img);
    return rc;
}

int cmd_export(int argc, char **argv)
{
    CliModelArgs a;
    cli_model_args_init(&a);
    AsExportOptions xo;
    as_export_options_default(&xo);
    const char *outdir = NULL;
    bool quiet = false, fg_only = false;
    int nimages = 0;
    char **images = calloc((size_t)argc + 1, sizeof *images);
    if (!images) {
        fprintf(stderr, "alignseg export: out of memory\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int r = cli_model_option(&a, "export", argc, argv, &i);
        if (r < 0)
            goto usage_error;
        if (r > 0)
            continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            free(images);
            return 0;
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            if (!v) {
                fprintf(stderr, "alignseg export: %s needs a folder\n", o);
                goto usage_error;
            }
            outdir = v;
            i++;
        } else if (!strcmp(o, "--format")) {
            AsError err;
            as_error_clear(&err);
            if (!v || as_export_parse_formats(v, &xo.formats, &err)) {
                fprintf(stderr, "alignseg export: --format: %s\n",
                        v ? err.msg : "needs a list such as voc,coco");
                goto usage_error;
            }
            i++;
        } else if (!strcmp(o, "--polygon-tolerance")) {
            float e;
            if (!cli_parse_float("export", o, v, 0.0, 100.0, &e))
                goto usage_error;
            xo.polygon_epsilon = e;
            i++;
        } else if (!strcmp(o, "--foreground")) {
            fg_only = true;
        } else if (!strcmp(o, "-q") || !strcmp(o, "--quiet")) {
            quiet = true;
        } else if (o[0] == '-' && o[1] != '\0') {
            fprintf(stderr, "alignseg export: unknown option '%s' (see 'alignseg export --help')\n",
                    o);
            goto usage_error;
        } else {
            images[nimages++] = argv[i];
        }
    }
    if (!outdir) {
        fprintf(stderr, "alignseg export: no output folder: give -o OUTDIR\n");
        goto usage_error;
    }
    if (nimages == 0) {
        fprintf(stderr, "alignseg export: no images given\n");
        goto usage_error;
    }
    if (!a.model) {
        fprintf(stderr, "alignseg export: no model: give -m FILE (see 'alignseg export --help')\n");
        goto usage_error;
    }

    AsModel *model = NULL;
    if (cli_load_model(&a, "export", &model) != 0) {
        free(images);
        return 1;
    }
    AsError err;
    as_error_clear(&err);
    AsExporter *x = NULL;
    xo.generator = "alignseg " ALIGNSEG_VERSION;
    xo.model = model->source;
    xo.untrained = model->untrained;
    if (as_exporter_open(outdir, &xo, &x, &err)) {
        fprintf(stderr, "alignseg export: %s\n", err.msg);
        as_model_free(model);
        free(images);
        return 1;
    }
    int failed = 0, done = 0;
    for (int k = 0; k < nimages; k++) {
        as_error_clear(&err);
        if (export_one(model, &a, fg_only, x, images[k], &err) != 0) {
            fprintf(stderr, "alignseg export: %s\n", err.msg);
            failed++;
            continue;
        }
        done++;
        if (!quiet)
            fprintf(stderr, "[%d/%d] %s\n", k + 1, nimages, images[k]);
    }
    as_error_clear(&err);
    if (as_exporter_finish(x, &err)) {
        fprintf(stderr, "alignseg export: %s\n", err.msg);
        failed++;
    }
    if (!quiet)
        fprintf(stderr, "exported %d of %d images to %s\n", done, nimages, outdir);
    as_exporter_free(x);
    as_model_free(model);
    free(images);
    return failed ? 1 : 0;

usage_error:
    free(images);
    return 2;
}
