/* cmd_export: 'alignseg export' — segment images and write the labels at the
 * original image size for annotation tools: PASCAL VOC (CVAT "Segmentation
 * mask 1.1"), one binary mask per prototype, COCO (compressed RLE) and
 * labelme polygons. The formats are described in core/output/export.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "cli.h"
#include "commands.h"
#include "dataset.h"
#include "export.h"
#include "image.h"
#include "merge.h"
#include "pipeline.h"
#include "runlist.h"
#include "segment.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: alignseg export -m MODEL [-b BACKBONE] [OPTIONS] -o OUTDIR IMAGE...\n"
            "\n"
            "Segment each image (PNG or JPEG) and export the labels, at the original image\n"
            "size, for annotation tools. Into OUTDIR:\n"
            "  voc/SegmentationClass/NAME.png  8-bit indexed PNG, PASCAL VOC palette; index 0 =\n"
            "                          background, index = class id (prototype_k: k+1)\n"
            "  voc/labelmap.txt        label names and colours, as CVAT's \"Segmentation mask\n"
            "                          1.1\" import expects (background first)\n"
            "  voc/ImageSets/Segmentation/default.txt  the exported NAMEs\n"
            "  masks/NAME/CLASS.png    one 0/255 mask per class present in the image\n"
            "  coco/annotations.json   COCO with compressed RLE, area and bbox per region\n"
            "                          (one category per class, all images of the dataset)\n"
            "  labelme/NAME.json       labelme polygons (outer boundary of every connected\n"
            "                          region; holes joined by a zero-width slit)\n"
            "  alignseg-export.json    the index: classes (id, name, colour), where the labels\n"
            "                          came from (alignseg version, model, options), per image\n"
            "                          its id, size, model input size and classes\n"
            "NAME is the image file name without its extension.\n"
            "\n"
            "OUTDIR holds one dataset: exporting more images into it later adds them, and\n"
            "every file above lists all of its images (COCO image ids are kept, annotation\n"
            "id = image id * 1000 + class id). An image whose NAME is in the dataset already\n"
            "is skipped (so a re-run after a kill redoes only the missing images: the index\n"
            "alignseg-export.json lists the finished ones) unless --overwrite, which replaces\n"
            "all its entries. Two inputs with the same NAME in one call are a usage error\n"
            "naming both. The folder is switched to the new dataset at once (temporaries,\n"
            "then a journaled rename); a killed or failed run leaves the previous dataset.\n"
            "With --shard the folder also records {\"shard\": {\"index\": I, \"count\": N}} and\n"
            "the options (\"settings\") in alignseg-export.json: the shard format that joins\n"
            "the N folders into one export.\n"
            "\n"
            "%s"
            "Export:\n"
            "  -o, --output DIR       output folder (created if missing; required)\n"
            "      --format LIST      comma-separated subset of voc,masks,coco,labelme\n"
            "                         (default: all four)\n"
            "      --class G=NAME     name group G (0-based, as in prototype_G): its pixels\n"
            "                         become class NAME (repeat; several groups may share a\n"
            "                         name; NAME background = not exported). With --class,\n"
            "                         groups not named are background (default) or, with\n"
            "                         --unnamed ignore, the class \"ignore\". Without it,\n"
            "                         group G is class prototype_G. Groups without pixels\n"
            "                         are never exported.\n"
            "      --unnamed W        background or ignore (see --class)\n"
            "      --overwrite        replace images the dataset has already\n"
            "      --commit-every S   make the finished images final every S seconds (default\n"
            "                         60; 0 = after every image): a killed run loses at most\n"
            "                         the last S seconds of work\n"
            "%s"
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
            "  alignseg export -m alignseg_vits16.pth --merge-to 3 --format voc,coco -o ann *.jpg\n"
            "  alignseg export -m alignseg_vits16.pth --merge-to 2 --class 0=cat --class 1=background \\\n"
            "      -o ann more/*.jpg\n"
            "  sbatch --array=0-7 --wrap 'alignseg export -m m.pth --shard slurm \\\n"
            "      -o shards/$SLURM_ARRAY_TASK_ID photos/*.jpg'\n",
            cli_model_help, runlist_shard_help, AS_EXPORT_POLYGON_EPSILON);
}

/* One image on its way through the pipeline (pipeline.h). */
typedef struct {
    const char *path;
    bool skip;
    int rc;
    AsError err;
    AsImage img;
    AsResult res;
} Job;

typedef struct {
    const AsModel *model;
    const CliModelArgs *a;
    bool fg_only, quiet;
    AsDataset *x;
    const int *group_class;
    Job *jobs;
    int n, failed, done;
    time_t last_commit;
    int commit_every; /* seconds between commits (--commit-every) */
    bool stop; /* a commit failed: nothing more is written */
} Run;

/* stage 1 (reader thread): decode */
static void stage_read(int i, void *ctx)
{
    Run *u = ctx;
    Job *j = &u->jobs[i];
    if (!j->skip)
        j->rc = as_image_load(j->path, &j->img, &j->err);
}

/* stage 2 (calling thread, core thread pool): the network */
static void stage_work(int i, void *ctx)
{
    Run *u = ctx;
    Job *j = &u->jobs[i];
    if (!j->skip && !j->rc) {
        j->rc = as_segment_image(u->model, &j->img, &u->a->sopt, &j->res, &j->err);
        if (j->rc)
            as_error_prefix(&j->err, "%s: ", j->path);
    }
}

/* stage 3 (writer thread): labels at the image size, staged in the dataset */
static int export_one(Run *u, Job *j)
{
    AsError *err = &j->err;
    int32_t *labels = NULL;
    const AsImage img = j->img;
    const char *path = j->path;
    int rc = j->rc;
    int g = 0;
    if (rc == 0) {
        labels = malloc(sizeof(int32_t) * (size_t)img.w * (size_t)img.h);
        if (!labels)
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory for %dx%d labels", path,
                              img.w, img.h);
    }
    if (rc == 0) {
        AsMergeOptions mo = { u->a->merge_to, u->a->merge_threshold };
        rc = as_result_relabel(&j->res, &mo, u->fg_only, img.h, img.w, NULL, labels, NULL, &g,
                               err);
        if (rc)
            as_error_prefix(err, "%s: ", path);
    }
    if (rc == 0) {
        char name[PATH_MAX];
        cli_stem(path, name, sizeof name);
        rc = as_dataset_add(u->x, name, path, labels, img.w, img.h, g, u->group_class,
                            j->res.in_w, j->res.in_h, err);
    }
    free(labels);
    return rc;
}

static void stage_write(int i, void *ctx)
{
    Run *u = ctx;
    Job *j = &u->jobs[i];
    if (!j->skip && !u->stop) {
        if (export_one(u, j) != 0) {
            fprintf(stderr, "alignseg export: %s\n", j->err.msg);
            u->failed++;
        } else {
            u->done++;
            if (!u->quiet)
                fprintf(stderr, "[%d/%d] %s\n", i + 1, u->n, j->path);
            /* a long run commits now and then, so a kill loses little */
            if (time(NULL) - u->last_commit >= u->commit_every) {
                if (as_dataset_commit(u->x, &j->err)) {
                    fprintf(stderr, "alignseg export: %s\n", j->err.msg);
                    u->failed = u->n;
                    u->stop = true;
                }
                u->last_commit = time(NULL);
            }
        }
    }
    as_result_free(&j->res);
    as_image_free(&j->img);
}

typedef struct {
    int group;
    const char *name;
} ClassArg;

/* The options that change labels, recorded in the index (shards made with
 * other options are refused by `alignseg merge`), sorted by option name (a
 * repeated option keeps its order) so that the same options in another order
 * give the same index. */
typedef struct {
    const char *opt, *value;
    int at;
} SettingArg;

static int cmp_setting(const void *a, const void *b)
{
    const SettingArg *x = a, *y = b;
    int c = strcmp(x->opt, y->opt);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

static void settings_string(int argc, char **argv, char *buf, size_t len)
{
    static const char *const skip_with_value[] = { "-o", "--output", "--threads", "--shard",
                                                   "--commit-every" };
    static const char *const skip_flag[] = { "-q", "--quiet", "--overwrite" };
    size_t n = 0, na = 0;
    buf[0] = '\0';
    SettingArg *v = calloc((size_t)argc + 1, sizeof *v);
    if (!v)
        return;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        bool skip = o[0] != '-';
        for (size_t k = 0; k < sizeof skip_flag / sizeof skip_flag[0]; k++)
            skip |= !strcmp(o, skip_flag[k]);
        for (size_t k = 0; k < sizeof skip_with_value / sizeof skip_with_value[0]; k++)
            if (!strcmp(o, skip_with_value[k])) {
                skip = true;
                i++;
            }
        if (skip)
            continue;
        /* an option and, when it takes one, its value */
        bool value = i + 1 < argc && argv[i + 1][0] != '-' && strcmp(o, "--foreground") != 0;
        v[na++] = (SettingArg){ o, value ? argv[i + 1] : NULL, i };
        if (value)
            i++;
    }
    qsort(v, na, sizeof *v, cmp_setting);
    for (size_t k = 0; k < na; k++) {
        int w = snprintf(buf + n, len - n, "%s%s%s%s", n ? " " : "", v[k].opt,
                         v[k].value ? " " : "", v[k].value ? v[k].value : "");
        if (w < 0 || (size_t)w >= len - n)
            break;
        n += (size_t)w;
    }
    free(v);
}

int cmd_export(int argc, char **argv)
{
    CliModelArgs a;
    cli_model_args_init(&a);
    AsExportOptions xo;
    as_export_options_default(&xo);
    const char *outdir = NULL, *unnamed = "background";
    bool quiet = false, fg_only = false, overwrite = false;
    RunShard shard = { 0, 0 };
    int nimages = 0, nclass = 0, commit_every = 60;
    char **images = calloc((size_t)argc + 1, sizeof *images);
    ClassArg *classes = calloc((size_t)argc + 1, sizeof *classes);
    if (!images || !classes) {
        fprintf(stderr, "alignseg export: out of memory\n");
        free(images);
        free(classes);
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
            free(classes);
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
        } else if (!strcmp(o, "--class")) {
            const char *eq = v ? strchr(v, '=') : NULL;
            char *end = NULL;
            long g = v ? strtol(v, &end, 10) : -1;
            AsError err;
            as_error_clear(&err);
            if (!eq || end != eq || g < 0 || g >= AS_MAX_GROUPS ||
                (strcmp(eq + 1, "background") && as_dataset_check_class_name(eq + 1, &err))) {
                fprintf(stderr, "alignseg export: --class needs GROUP=NAME (group 0..%d)%s%s\n",
                        AS_MAX_GROUPS - 1, err.msg[0] ? ": " : "", err.msg);
                goto usage_error;
            }
            for (int k = 0; k < nclass; k++)
                if (classes[k].group == (int)g) {
                    fprintf(stderr, "alignseg export: --class: group %ld named twice\n", g);
                    goto usage_error;
                }
            classes[nclass].group = (int)g;
            classes[nclass++].name = eq + 1;
            i++;
        } else if (!strcmp(o, "--unnamed")) {
            if (!v || (strcmp(v, "background") && strcmp(v, "ignore"))) {
                fprintf(stderr, "alignseg export: --unnamed is background or ignore\n");
                goto usage_error;
            }
            unnamed = v;
            i++;
        } else if (!strcmp(o, "--polygon-tolerance")) {
            float e;
            if (!cli_parse_float("export", o, v, 0.0, 100.0, &e))
                goto usage_error;
            xo.polygon_epsilon = e;
            i++;
        } else if (!strcmp(o, "--commit-every")) {
            if (!cli_parse_int("export", o, v, 0, 86400, &commit_every))
                goto usage_error;
            i++;
        } else if (!strcmp(o, "--foreground")) {
            fg_only = true;
        } else if (!strcmp(o, "--overwrite")) {
            overwrite = true;
        } else if (!strcmp(o, "--shard")) {
            if (runlist_parse_shard("export", v, &shard) != 0)
                goto usage_error;
            i++;
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
    if (runlist_check_unique("export", (const char *const *)images, nimages, outdir,
                             "%s/labelme/%s.json") != 0)
        goto usage_error;
    nimages = runlist_apply_shard((const char **)images, nimages, &shard);
    xo.shard_index = shard.index;
    xo.shard_count = shard.count;

    AsModel *model = NULL;
    if (cli_load_model(&a, "export", &model) != 0) {
        free(images);
        free(classes);
        return 1;
    }
    AsError err;
    as_error_clear(&err);
    AsDataset *x = NULL;
    char settings[2048];
    settings_string(argc, argv, settings, sizeof settings);
    xo.generator = "alignseg " ALIGNSEG_VERSION;
    xo.model = model->source;
    xo.untrained = model->untrained;
    xo.settings = settings;
    int group_class[AS_MAX_GROUPS];
    int rc = as_dataset_open(outdir, &xo, &x, &err);
    if (!rc && nclass > 0) {
        /* named groups (ids in the order of the --class options); the rest
         * background or "ignore": the viewer's rule (as_dataset_map_groups) */
        AsClass tab[AS_DATASET_MAX_CLASS + 1];
        memset(tab, 0, sizeof tab);
        const char *names[AS_MAX_GROUPS] = { 0 };
        int id = 0;
        for (int k = 0; k < nclass && !rc; k++) {
            rc = as_class_table_add(tab, classes[k].name, k + 1, NULL, &id, &err);
            names[classes[k].group] = classes[k].name;
        }
        if (!rc && !strcmp(unnamed, "ignore"))
            rc = as_class_table_add(tab, "ignore", nclass + 1, NULL, &id, &err);
        for (int g = 0; g < AS_MAX_GROUPS; g++)
            if (!names[g])
                names[g] = unnamed;
        if (!rc)
            rc = as_dataset_map_groups(x, tab, AS_MAX_GROUPS, names, NULL, false, group_class,
                                       &err);
    }
    if (rc) {
        fprintf(stderr, "alignseg export: %s\n", err.msg);
        as_dataset_free(x);
        as_model_free(model);
        free(images);
        free(classes);
        return 1;
    }
    int skipped = 0;
    Job *jobs = calloc((size_t)nimages, sizeof *jobs);
    if (!jobs) {
        fprintf(stderr, "alignseg export: out of memory\n");
        as_dataset_free(x);
        as_model_free(model);
        free(images);
        free(classes);
        return 1;
    }
    for (int k = 0; k < nimages; k++) {
        char stem[PATH_MAX];
        cli_stem(images[k], stem, sizeof stem);
        jobs[k].path = images[k];
        as_error_clear(&jobs[k].err);
        long at = as_dataset_find(x, stem);
        if (at >= 0 && !overwrite) {
            AsDatasetImage im;
            as_dataset_image(x, (size_t)at, &im);
            jobs[k].skip = true;
            skipped++;
            if (!quiet)
                fprintf(stderr,
                        "alignseg export: %s: skipped, the dataset has '%s' already (from %s)\n",
                        images[k], stem, im.file);
        }
    }
    Run run = { model, &a, fg_only, quiet, x, nclass ? group_class : NULL, jobs, nimages,
                0, 0, time(NULL), commit_every, false };
    pipeline_run(nimages, stage_read, stage_work, stage_write, &run);
    free(jobs);
    int failed = run.failed, done = run.done;
    as_error_clear(&err);
    if (failed < nimages && (as_dataset_pending(x) > 0 || as_dataset_image_count(x) == 0) &&
        as_dataset_commit(x, &err)) {
        fprintf(stderr, "alignseg export: %s\n", err.msg);
        failed++;
    }
    if (skipped)
        fprintf(stderr,
                "alignseg export: %d of %d images skipped: %s has them already (--overwrite "
                "replaces them)\n",
                skipped, nimages, outdir);
    if (!quiet)
        fprintf(stderr, "exported %d of %d images to %s\n", done, nimages, outdir);
    as_dataset_free(x);
    as_model_free(model);
    free(images);
    free(classes);
    return failed ? 1 : 0;

usage_error:
    free(images);
    free(classes);
    return 2;
}
