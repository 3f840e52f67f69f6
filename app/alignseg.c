/* alignseg: command-line entry point; dispatches to the sub-commands. */
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "commands.h"
#include "cpu.h"

#ifndef ALIGNSEG_VERSION
#define ALIGNSEG_VERSION "unknown"
#endif

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    { "segment", cmd_segment, "segment images; write label maps, overlays, optional .npy dumps" },
    { "export", cmd_export, "segment and export masks for annotation tools (VOC, masks, COCO, labelme)" },
    { "train", cmd_train, "train the AlignSeg decoder on a folder of images (CPU)" },
    { "train-step", cmd_train_step, "run exactly one training step on given crops (reference check)" },
    { "merge", cmd_merge, "join the folders of a sharded export or eval (--shard I/N) into one" },
    { "eval", cmd_eval, "evaluate segmentations against ground-truth masks (mIoU)" },
    { "bench", cmd_bench, "measure per-stage speed on randomly initialised weights" },
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: alignseg COMMAND [OPTIONS...]\n"
            "\n"
            "Self-supervised semantic segmentation (AlignSeg, Liu et al., TPAMI 2024) on the CPU.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "Run 'alignseg COMMAND --help' for the options of a command.\n"
            "Checkpoints: DINO backbones (ViT-S/16, ViT-S/8, ViT-B/16, ViT-B/8) from the DINO\n"
            "release, AlignSeg checkpoints from the AlignSeg authors' release; see README.md.\n");
}

/* Memory a command frees stays with the process for its next image or step:
 * with glibc's defaults every image's result arrays and every temporary of
 * more than 128 KB were fresh mappings, each page faulted in again (page
 * faults are costly in virtual machines: about a tenth of a 480x480
 * `segment` image's time). Peak memory stays that of the largest image. */
static void keep_freed_memory(void)
{
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

int main(int argc, char **argv)
{
    keep_freed_memory();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    AsError err = { 0 };
    if (as_cpu_check(&err)) { /* ALIGNSEG_CPU names a path this CPU lacks, or none */
        fprintf(stderr, "alignseg: %s\n", err.msg);
        return 1;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("alignseg %s (kernels: %s)\n", ALIGNSEG_VERSION, as_cpu_path_name(as_cpu_path()));
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "alignseg: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
