/* runlist: the list of input images of segment/export/eval: the output name
 * each maps to (its file name without extension), refused duplicates (two
 * inputs that would write the same outputs), and sharding (--shard I/N,
 * --shard slurm) of the sorted list. */
#ifndef ALIGNSEG_RUNLIST_H
#define ALIGNSEG_RUNLIST_H

#include <stdbool.h>
#include <stddef.h>

/* Two inputs with the same output stem: prints one line naming both and the
 * output they would share (outfmt: e.g. "%s/%s.labels.png" with outdir, stem)
 * and returns -1; 0 when all stems differ. */
int runlist_check_unique(const char *cmd, const char *const *images, int n, const char *outdir,
                         const char *outfmt);

/* --shard: this process handles shard index (0-based) of count; count 0
 * means all images. */
typedef struct {
    int index, count;
} RunShard;

/* Help text for --shard (one block, ends with a newline). */
extern const char runlist_shard_help[];

/* Parse "I/N" (0 <= I < N <= 100000) or "slurm" (I = SLURM_ARRAY_TASK_ID -
 * SLURM_ARRAY_TASK_MIN, N = SLURM_ARRAY_TASK_COUNT; an error outside an
 * array job). Prints the error and returns -1 on a bad value. */
int runlist_parse_shard(const char *cmd, const char *v, RunShard *s);

/* Sort images (byte order of the paths as given) and keep shard s's block:
 * images [I*n/N, (I+1)*n/N) of the sorted list, so the N shards are disjoint,
 * cover the list exactly and, taken in shard order, give the sorted list.
 * Returns the new count (images is reordered in place). */
int runlist_apply_shard(const char **images, int n, const RunShard *s);

#endif
