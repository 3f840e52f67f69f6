/* segment_example: the public API of libalignseg in one program. Loads a
 * model, segments an image, prints what the maps hold, merges the prototypes,
 * saves the labels and an overlay, and exports the labels as a PASCAL VOC
 * dataset. Build it against the installed library:
 *
 *   cc segment_example.c -o segment_example $(pkg-config --cflags --libs alignseg)
 *   ./segment_example [--encoder-heads N] [--size S] [--merge-to K] MODEL.pth photo.jpg OUTDIR
 *
 * Writes OUTDIR/NAME.labels.png (what `alignseg segment` writes), OUTDIR/
 * NAME.overlay.png and the dataset OUTDIR/export/ (voc/ and its index). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <alignseg/alignseg.h>

static void stem_of(const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, len, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

int main(int argc, char **argv)
{
    int heads = 0, size = 0, merge_to = 0, a = 1;
    for (; a + 1 < argc && !strncmp(argv[a], "--", 2); a += 2) {
        if (!strcmp(argv[a], "--encoder-heads"))
            heads = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--size"))
            size = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--merge-to"))
            merge_to = atoi(argv[a + 1]);
        else
            break;
    }
    if (argc - a != 3) {
        fprintf(stderr,
                "usage: %s [--encoder-heads N] [--size S] [--merge-to K] MODEL IMAGE OUTDIR\n",
                argv[0]);
        return 2;
    }
    const char *model_path = argv[a], *image_path = argv[a + 1], *outdir = argv[a + 2];
    AsError err = { 0 };
    AlignsegModel *model = NULL;
    AlignsegResult *res = NULL;
    AlignsegExporter *x = NULL;
    int status = 1;
    char stem[256], path[4096];
    stem_of(image_path, stem, sizeof stem);

    alignseg_set_threads(1);
    AlignsegModelOptions mo;
    alignseg_model_options_init(&mo);
    mo.encoder_heads = heads;
    if (alignseg_model_load(model_path, NULL, &mo, &model, &err))
        goto fail;
    AlignsegModelInfo mi;
    alignseg_model_info(model, &mi);
    printf("libalignseg %s: model %s: ViT dim %d, %d blocks, patch %d, %d prototypes%s\n",
           alignseg_version(), mi.source, mi.dim, mi.depth, mi.patch, mi.prototypes,
           mi.backbone_only ? " (backbone only: k-means)" : "");

    AlignsegSegmentOptions so;
    alignseg_segment_options_init(&so);
    if (size)
        so.size = size;
    if (alignseg_segment_file(model, image_path, &so, &res, &err))
        goto fail;
    AlignsegResultInfo ri;
    alignseg_result_info(res, &ri);
    int shape[3], nd;
    const float *sim = alignseg_result_map(res, ALIGNSEG_MAP_SIMILARITY, shape, &nd);
    const uint8_t *fg = alignseg_result_foreground(res);
    int nfg = 0;
    for (int i = 0; i < ri.grid_w * ri.grid_h; i++)
        nfg += fg[i];
    printf("%s: %dx%d, input %dx%d, grid %dx%d, %d prototypes, similarity %dx%d "
           "(patch 0, prototype 0: %.4f), %d foreground patches\n",
           image_path, ri.width, ri.height, ri.input_w, ri.input_h, ri.grid_w, ri.grid_h,
           ri.prototypes, shape[0], shape[1], sim ? sim[0] : 0.0f, nfg);

    if (merge_to > 0) {
        AlignsegRelabelOptions ro;
        alignseg_relabel_options_init(&ro);
        ro.merge_to = merge_to;
        if (alignseg_result_relabel(res, &ro, &err))
            goto fail;
        alignseg_result_info(res, &ri);
        const int32_t *groups = alignseg_result_groups(res);
        printf("merged to %d groups:", ri.groups);
        for (int k = 0; k < ri.prototypes; k++)
            printf(" %d->%d", k, groups[k]);
        printf("\n");
    }
    /* area of each group */
    const int32_t *labels = alignseg_result_labels(res);
    long count[256] = { 0 };
    for (long i = 0; i < (long)ri.width * ri.height; i++)
        count[labels[i] & 255]++;
    for (int g = 0; g < ri.groups; g++)
        printf("group %d: %ld pixels\n", g, count[g]);

    snprintf(path, sizeof path, "%s/%s.labels.png", outdir, stem);
    if (alignseg_result_save_labels(res, path, &err))
        goto fail;
    snprintf(path, sizeof path, "%s/%s.overlay.png", outdir, stem);
    if (alignseg_result_save_overlay(res, path, 0.5f, &err))
        goto fail;

    AlignsegExportOptions eo;
    alignseg_export_options_init(&eo);
    eo.formats = ALIGNSEG_EXPORT_VOC;
    snprintf(path, sizeof path, "%s/export", outdir);
    if (alignseg_exporter_open(path, model, &eo, &x, &err) ||
        alignseg_exporter_add(x, stem, image_path, res, &err) || alignseg_exporter_finish(x, &err))
        goto fail;
    printf("wrote %s/%s.labels.png, %s.overlay.png and %s/\n", outdir, stem, stem, path);
    status = 0;
fail:
    if (status)
        fprintf(stderr, "segment_example: %s (%s)\n", err.msg, alignseg_status_name(err.code));
    alignseg_exporter_free(x);
    alignseg_result_free(res);
    alignseg_model_free(model);
    return status;
}
