/* cmd_merge: 'alignseg merge' — join the export folders of a sharded
 * `alignseg export --shard I/N` into one (core/output/shards.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "shards.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: alignseg merge -o OUTDIR SHARD_DIR...\n"
            "\n"
            "Join the folders written by 'alignseg export --shard I/N' (one per shard) into\n"
            "one export in OUTDIR, byte for byte what a single 'alignseg export' of the same\n"
            "inputs writes (image ids in sorted input order, annotation ids derived from\n"
            "them). All N shards must be given once, made by the same alignseg, model,\n"
            "options, formats and classes (recorded in each alignseg-export.json); a missing,\n"
            "duplicated or foreign shard is an error naming it. The shards must include the\n"
            "voc format (the label maps are read back from it). OUTDIR must not hold a\n"
            "dataset yet; it appears at once (atomic.h), never half-written.\n"
            "\n"
            "  -o, --output DIR   the merged export (required)\n"
            "  -h, --help         this help\n"
            "\n"
            "Example:\n"
            "  sbatch --array=0-7 --wrap 'alignseg export -m m.pth --shard slurm \\\n"
            "      -o shards/$SLURM_ARRAY_TASK_ID photos/*.jpg'\n"
            "  alignseg merge -o dataset shards/*\n");
}

int cmd_merge(int argc, char **argv)
{
    const char *out = NULL;
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    int n = 0;
    if (!dirs)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            free(dirs);
            return 0;
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "alignseg merge: %s needs a folder\n", o);
                free(dirs);
                return 2;
            }
            out = argv[++i];
        } else if (o[0] == '-' && o[1] != '\0') {
            fprintf(stderr, "alignseg merge: unknown option '%s' (see 'alignseg merge --help')\n", o);
            free(dirs);
            return 2;
        } else {
            dirs[n++] = o;
        }
    }
    if (!out || n == 0) {
        fprintf(stderr, "alignseg merge: give -o OUTDIR and the shard folders (see --help)\n");
        free(dirs);
        return 2;
    }
    AsError err;
    as_error_clear(&err);
    int rc = cli_mkdirs("merge", out) != 0 ? 1 : as_shards_merge(out, dirs, n, &err);
    if (rc && err.msg[0])
        fprintf(stderr, "alignseg merge: %s\n", err.msg);
    free(dirs);
    return rc ? 1 : 0;
}
